/*
 * fs_live.c - the live/ namespace: the bucket as it is now (reading;
 * fs_write.c changes it).  Files being written through this mount are
 * read, listed and stat'ed from their staged copies (stage.c).
 *
 * Names, sizes and ETags come from directory listings (dircache); modes,
 * owners, times and symlinks from object metadata (fs_attr.c).  Opening a file pins the ETag and size of that listing; the
 * kernel's page cache is kept across opens only while the ETag stays the
 * same (keep_cache), so an object replaced by someone else is read fresh
 * once its listing has been refreshed.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmfs/fs.h"
#include "dmfs/log.h"
#include "hash.h"

/*
 * The ETag each path was last opened with, so keep_cache is only set when
 * the kernel's cached pages are of the same content.  A fixed table of
 * hashes: a collision can only make us drop the page cache, never keep a
 * stale one (both the path hash and the ETag hash must match).
 */
#define OPENED_SLOTS 65536
static struct {
	uint64_t path_hash;
	uint64_t etag_hash;
} opened[OPENED_SLOTS];			/* protected by opened_lock */
static pthread_mutex_t opened_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t fnv64(const char *s)
{
	return dmfs_hash(s, strlen(s)) | 1; /* never 0, the empty slot */
}

static int same_as_last_open(const char *key, const char *etag)
{
	uint64_t ph = fnv64(key), eh = fnv64(etag);
	size_t slot = ph % OPENED_SLOTS;
	int same;
	pthread_mutex_lock(&opened_lock);
	same = opened[slot].path_hash == ph && opened[slot].etag_hash == eh;
	opened[slot].path_hash = ph;
	opened[slot].etag_hash = eh;
	pthread_mutex_unlock(&opened_lock);
	return same;
}

int fs_live_getattr(struct dmfs_fs *fs, const char *key, struct stat *st)
{
	struct dc_entry e;
	uint64_t size;
	int64_t mtime;

	/* A file being written: its size is the staged copy's. */
	if (*key && stage_lookup(fs->sg, key, &size, &mtime)) {
		fs_attr_staged_stat(fs, key, size, mtime, st);
		return 0;
	}
	int rc = dircache_stat(fs->dc, key, &e);
	if (rc)
		return -dmfs_err_to_errno(rc);
	fs_attr_stat(fs, key, &e, st);
	return 0;
}

int fs_live_readdir(struct dmfs_fs *fs, const char *key, void *buf,
		    fuse_fill_dir_t filler, enum fuse_readdir_flags flags)
{
	struct dc_listing *l;
	struct stat st;
	int rc = dircache_list(fs->dc, key, &l);
	if (rc)
		return -dmfs_err_to_errno(rc);
	/* Files being written under here show their staged sizes. */
	size_t kn = strlen(key);
	char pfx[kn + 2];
	snprintf(pfx, sizeof(pfx), "%s%s", key, kn ? "/" : "");
	int staged_any = stage_has_prefix(fs->sg, pfx);
	fs_attr_prefetch(fs, key, l);
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	for (size_t i = 0; i < l->n; i++) {
		const struct dc_entry *e = &l->v[i];
		uint64_t size;
		int64_t mtime;
		char k[kn + strlen(e->name) + 2];
		snprintf(k, sizeof(k), "%s%s%s", key, kn ? "/" : "", e->name);
		if (!e->is_dir && staged_any &&
		    stage_lookup(fs->sg, k, &size, &mtime))
			fs_attr_staged_stat(fs, k, size, mtime, &st);
		else
			fs_attr_stat(fs, k, e, &st);
		/* With readdirplus the kernel takes these attributes and
		 * sends no lookup per entry. */
		if (filler(buf, e->name, &st, 0, FUSE_FILL_DIR_PLUS))
			break;
	}
	dircache_release(fs->dc, l);
	return 0;
}

int fs_live_open(struct dmfs_fs *fs, const char *key,
		 struct fuse_file_info *fi, struct fs_handle *h)
{
	struct dc_entry e;
	int rc;

	/* Being written through this mount: read the staged copy. */
	if (stage_find(fs->sg, key, &h->sf)) {
		fi->keep_cache = 0;
		return 0;
	}
	rc = dircache_stat(fs->dc, key, &e);
	if (rc)
		return -dmfs_err_to_errno(rc);
	if (e.is_dir)
		return -EISDIR;
	rc = reader_open(fs->rd, key, e.etag, e.size, &h->rf);
	if (rc)
		return -dmfs_err_to_errno(rc);
	fi->keep_cache = same_as_last_open(key, e.etag);
	return 0;
}

int fs_live_getxattr(struct dmfs_fs *fs, const char *key, const char *name,
		     char *value, size_t size)
{
	struct dc_entry e;
	char buf[128];
	int rc = dircache_stat(fs->dc, key, &e);
	if (rc)
		return -dmfs_err_to_errno(rc);
	if (!strcmp(name, "dmfs.s3uri")) {
		char *u = fs->store->ops->uri(fs->store, key);
		if (!u)
			return -ENOMEM;
		rc = fs_xattr_reply(u, strlen(u), value, size);
		free(u);
		return rc;
	}
	if (e.is_dir)
		return -ENODATA;
	if (!strcmp(name, "dmfs.etag"))
		return fs_xattr_reply(e.etag, strlen(e.etag), value, size);
	if (!strcmp(name, "dmfs.size")) {
		int n = snprintf(buf, sizeof(buf), "%llu",
				 (unsigned long long)e.size);
		return fs_xattr_reply(buf, (size_t)n, value, size);
	}
	if (!strcmp(name, "dmfs.sha256")) {
		/* Known when this machine hashed or wrote the object (the
		 * memo is keyed by ETag, so never stale). */
		char sha[65];
		if (mindex_memo_get(fs->mx, fs->store_uri, key, e.etag, e.size,
				    sha))
			return -ENODATA;
		return fs_xattr_reply(sha, 64, value, size);
	}
	if (!strcmp(name, "dmfs.cached")) {
		uint64_t c = reader_cached_bytes(fs->rd, key, e.etag, e.size);
		int n = snprintf(buf, sizeof(buf), "%llu",
				 (unsigned long long)c);
		return fs_xattr_reply(buf, (size_t)n, value, size);
	}
	return -ENODATA;
}

int fs_live_listxattr(struct dmfs_fs *fs, const char *key, char *list,
		      size_t size)
{
	static const char file_names[] =
		"dmfs.etag\0dmfs.size\0dmfs.cached\0dmfs.s3uri";
	static const char file_names_sha[] =
		"dmfs.etag\0dmfs.size\0dmfs.cached\0dmfs.s3uri\0dmfs.sha256";
	static const char dir_names[] = "dmfs.s3uri";
	struct dc_entry e;
	int rc = dircache_stat(fs->dc, key, &e);
	if (rc)
		return -dmfs_err_to_errno(rc);
	if (e.is_dir)
		return fs_xattr_reply(dir_names, sizeof(dir_names), list, size);
	char sha[65];
	if (!mindex_memo_get(fs->mx, fs->store_uri, key, e.etag, e.size, sha))
		return fs_xattr_reply(file_names_sha, sizeof(file_names_sha), list,
				   size);
	return fs_xattr_reply(file_names, sizeof(file_names), list, size);
}
