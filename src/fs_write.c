/*
 * fs_write.c - the operations that change live/, with s3fs semantics.
 *
 * Files: a file opened for writing gets a staged copy (stage.c), shared
 * by every descriptor of that key in this mount; reads through any of
 * them come from the copy (read-after-write).  Each close(2) (FUSE flush)
 * and fsync(2) uploads the copy when it changed and waits: close returns
 * the upload's error, and the object in the bucket is replaced only by a
 * complete, verified upload.  A write that fails (a full cache disk:
 * ENOSPC) fails write(2), and every later flush, fsync and close of the
 * file returns that error and uploads nothing (stage.c): the bucket keeps
 * what it had, and the listing shows that again.
 *
 * Directories are s3fs's: mkdir makes an empty "dir/" marker object;
 * a directory also exists while any key is under it.  rmdir deletes the
 * marker and fails with ENOTEMPTY while anything else is under it.
 *
 * Renames are server-side copies followed by deletes.  A directory is
 * renamed object by object: every object is copied first, then the old
 * ones are deleted, so a crash in the middle never loses an object: it
 * leaves the new tree partly copied beside the complete old one, or (in
 * the delete phase) the complete new tree beside what was not deleted
 * yet.  The log names the directory pair when it starts and ends.
 *
 * Modes, owners and times are object metadata as s3fs has them
 * (fs_attr.c): every upload stores the file's mode, uid, gid and mtime,
 * mkdir stores them on the marker, and a rename carries them (with the
 * rest of the metadata) to the new key.
 *
 * Every change is put into the listing cache at once (dircache_upsert /
 * dircache_remove), so new and removed names show without waiting for
 * the listing TTL.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmfs/fs.h"
#include "dmfs/log.h"

#define RENAME_PAGE 1000
#define RENAME_MAX_KEYS 1000000 /* keys one directory rename may move */

/* Put what the bucket holds now for key into the listing cache. */
static void note_file(struct dmfs_fs *fs, const char *key, uint64_t size,
		      int64_t mtime, const char *etag)
{
	struct dc_entry e = {.size = size, .mtime = mtime};
	snprintf(e.etag, sizeof(e.etag), "%s", etag ? etag : "");
	if (dircache_upsert(fs->dc, key, &e))
		dmfs_log(DMFS_LOG_WARN, "listing cache of %s not updated", key);
}

/* An upload's result (what the HEAD after it saw) into the caches. */
static void note_upload(struct dmfs_fs *fs, const struct dmfs_obj_info *info)
{
	note_file(fs, info->key, info->size, info->mtime, info->etag);
	fs_attr_note(fs, info->key, info->etag, &info->attrs);
}

/*
 * An upload did not happen: the listing shows what the bucket holds,
 * not the staged size a create or O_TRUNC put there (a file that never
 * reached the bucket disappears).  When the bucket cannot be asked, the
 * entry stays until the listing's TTL.
 */
static void note_bucket_now(struct dmfs_fs *fs, const char *key)
{
	struct dmfs_obj_info info = {0};
	struct dmfs_err_detail d = {0};
	int rc = fs->store->ops->head(fs->store, key, &info, &d);

	if (rc == DMFS_ERR_NOT_FOUND) {
		dircache_remove(fs->dc, key);
		fs_attr_forget(fs, key);
	} else if (!rc) {
		note_file(fs, key, info.size, info.mtime, info.etag);
		fs_attr_note(fs, key, info.etag, &info.attrs);
	}
	dmfs_obj_info_clear(&info);
}

static void note_dir(struct dmfs_fs *fs, const char *key)
{
	struct dc_entry e = {.is_dir = 1, .mtime = (int64_t)time(NULL)};
	if (dircache_upsert(fs->dc, key, &e))
		dmfs_log(DMFS_LOG_WARN, "listing cache of %s not updated", key);
}

/* Whether key exists (staged or in the listing); *is_dir set. */
static int exists(struct dmfs_fs *fs, const char *key, int *is_dir)
{
	struct dc_entry e;
	uint64_t sz;
	int64_t mt;

	*is_dir = 0;
	if (stage_lookup(fs->sg, key, &sz, &mt))
		return 1;
	if (dircache_stat(fs->dc, key, &e))
		return 0;
	*is_dir = e.is_dir;
	return 1;
}

/* The parent of key must be a directory. */
static int parent_ok(struct dmfs_fs *fs, const char *key)
{
	const char *slash = strrchr(key, '/');
	struct dc_entry e;
	int rc;

	if (!slash)
		return 0;
	char *parent = strndup(key, (size_t)(slash - key));
	if (!parent)
		return -ENOMEM;
	rc = dircache_stat(fs->dc, parent, &e);
	free(parent);
	if (rc)
		return -dmfs_err_to_errno(rc);
	return e.is_dir ? 0 : -ENOTDIR;
}

/* defaults: the attributes the file gets when the object has none. */
static int open_staged(struct dmfs_fs *fs, const char *key,
		       enum stage_how how, const struct dmfs_attrs *defaults,
		       struct fuse_file_info *fi, struct fs_handle *h)
{
	int rc = stage_open(fs->sg, key, how, &h->sf);
	if (rc) {
		dmfs_log(DMFS_LOG_ERROR, "open %s for writing: %s", key,
			 dmfs_strerror(rc));
		return -dmfs_err_to_errno(rc);
	}
	stage_default_attrs(h->sf, defaults);
	h->writable = 1;
	fi->keep_cache = 0;
	/* Shows in listings at once, with its size from the stage. */
	if (how != STAGE_EXISTING)
		note_file(fs, key, 0, (int64_t)time(NULL), "");
	return 0;
}

int fs_live_create(struct dmfs_fs *fs, const char *key, mode_t mode,
		   struct fuse_file_info *fi, struct fs_handle *h)
{
	struct dmfs_attrs a;
	int is_dir, rc;

	if (!*key)
		return -EISDIR;
	if ((rc = parent_ok(fs, key)))
		return rc;
	enum stage_how how = STAGE_EMPTY;
	if (exists(fs, key, &is_dir)) {
		if (is_dir)
			return -EISDIR;
		if (fi->flags & O_EXCL)
			return -EEXIST;
	} else {
		/* The listing (not a failure to list) says there is no such
		 * object: the usual case of cp, tar x, an editor's new file,
		 * saved a HEAD per file. */
		struct dc_entry e;
		if (dircache_stat(fs->dc, key, &e) == DMFS_ERR_NOT_FOUND)
			how = STAGE_NEW;
	}
	/* An existing object keeps its own mode and owner. */
	fs_attr_new(fs, S_IFREG | (mode & 07777), &a);
	return open_staged(fs, key, how, &a, fi, h);
}

int fs_live_open_write(struct dmfs_fs *fs, const char *key,
		       struct fuse_file_info *fi, struct fs_handle *h)
{
	struct dmfs_attrs a;
	struct stat st;
	int is_dir, rc;

	if (!exists(fs, key, &is_dir))
		return -ENOENT;
	if (is_dir)
		return -EISDIR;
	/* An object without stored attributes gets those it was shown
	 * with. */
	if ((rc = fs_live_getattr(fs, key, &st)))
		return rc;
	fs_attr_from_stat(&st, DMFS_ATTR_MODE | DMFS_ATTR_UID | DMFS_ATTR_GID,
			  &a);
	return open_staged(fs, key,
			   (fi->flags & O_TRUNC) ? STAGE_EMPTY : STAGE_EXISTING,
			   &a, fi, h);
}

int fs_live_write(struct dmfs_fs *fs, struct fs_handle *h, const char *buf,
		  size_t size, off_t off)
{
	if (!h->sf || !h->writable)
		return -EBADF;
	if (off < 0)
		return -EINVAL;
	int rc = stage_write(h->sf, buf, size, (uint64_t)off);
	if (rc) {
		char key[4096];
		stage_key(h->sf, key, sizeof(key));
		/* stage.c logged the first failure of this file. */
		fs_set_last_error_quiet(fs, "live/%s: write at offset %lld "
					"failed: %s (the disk under "
					"cache_dir); the file will not be "
					"uploaded, the bucket keeps what it "
					"had", key, (long long)off,
					dmfs_strerror(rc));
		return -dmfs_err_to_errno(rc);
	}
	return (int)size;
}

int fs_live_read_staged(struct fs_handle *h, char *buf, size_t size,
			off_t off)
{
	size_t got = 0;
	int rc = stage_read(h->sf, buf, size, (uint64_t)off, &got);
	return rc ? -dmfs_err_to_errno(rc) : (int)got;
}

int fs_live_truncate(struct dmfs_fs *fs, const char *key, off_t size,
		     struct fs_handle *h)
{
	struct stage_file *sf = h && h->sf ? h->sf : NULL;
	int rc, is_dir;

	if (size < 0)
		return -EINVAL;
	if (!sf) {
		/* truncate(2) by path: the open copy when there is one,
		 * else a staged copy for this change alone. */
		if (!stage_find(fs->sg, key, &sf)) {
			if (!exists(fs, key, &is_dir))
				return -ENOENT;
			if (is_dir)
				return -EISDIR;
			rc = stage_open(fs->sg, key,
					size ? STAGE_EXISTING : STAGE_EMPTY,
					&sf);
			if (rc)
				return -dmfs_err_to_errno(rc);
		}
		rc = stage_truncate(sf, (uint64_t)size);
		struct dmfs_obj_info info;
		if (!rc)
			rc = stage_sync(sf, &info);
		if (!rc && info.key)
			note_upload(fs, &info);
		if (!rc)
			dmfs_obj_info_clear(&info);
		stage_close(sf);
		return rc ? -dmfs_err_to_errno(rc) : 0;
	}
	rc = stage_truncate(sf, (uint64_t)size);
	return rc ? -dmfs_err_to_errno(rc) : 0;
}

int fs_live_flush(struct dmfs_fs *fs, struct fs_handle *h)
{
	struct dmfs_obj_info info;
	int rc;

	if (!h->sf || !h->writable)
		return 0;
	rc = stage_sync(h->sf, &info);
	if (rc) {
		char key[4096];
		stage_key(h->sf, key, sizeof(key));
		fs_set_last_error(fs, "live/%s: not uploaded: %s; the object "
				  "in the bucket is unchanged", key,
				  dmfs_strerror(rc));
		/* Not when the server could not be reached: one more
		 * request would only retry as long again. */
		if (rc != DMFS_ERR_NETWORK && rc != DMFS_ERR_TIMEOUT &&
		    rc != DMFS_ERR_THROTTLED && rc != DMFS_ERR_SERVER)
			note_bucket_now(fs, key);
		return -dmfs_err_to_errno(rc);
	}
	if (info.key)
		note_upload(fs, &info);
	dmfs_obj_info_clear(&info);
	return 0;
}

int fs_live_unlink(struct dmfs_fs *fs, const char *key)
{
	struct dmfs_err_detail d = {0};
	int is_dir, rc;

	if (!exists(fs, key, &is_dir))
		return -ENOENT;
	if (is_dir)
		return -EISDIR;
	stage_forget(fs->sg, key);
	rc = fs->store->ops->del(fs->store, key, &d);
	if (rc) {
		dmfs_log(DMFS_LOG_ERROR, "unlink %s: %s", key,
			 dmfs_strerror(rc));
		return -dmfs_err_to_errno(rc);
	}
	dircache_remove(fs->dc, key);
	fs_attr_forget(fs, key);
	return 0;
}

/* "key/" (caller frees with free()). */
static char *marker_key(const char *key)
{
	size_t n = strlen(key) + 2;
	char *m = malloc(n);
	if (m)
		snprintf(m, n, "%s/", key);
	return m;
}

int fs_live_mkdir(struct dmfs_fs *fs, const char *key, mode_t mode)
{
	struct dmfs_err_detail d = {0};
	struct dmfs_put_src src = {.buf = "", .fd = -1, .len = 0};
	struct dmfs_put_opts po = {.content_type = "application/x-directory"};
	struct dmfs_attrs a;
	int is_dir, rc;
	char *m;

	fs_attr_new(fs, S_IFDIR | (mode & 07777), &a);
	po.attrs = &a;
	if (!*key || exists(fs, key, &is_dir))
		return -EEXIST;
	if ((rc = parent_ok(fs, key)))
		return rc;
	m = marker_key(key);
	if (!m)
		return -ENOMEM;
	rc = fs->store->ops->put(fs->store, m, &src, &po, NULL, &d);
	if (!rc)
		fs_attr_note(fs, m, NULL, &a);
	free(m);
	if (rc) {
		dmfs_log(DMFS_LOG_ERROR, "mkdir %s: %s", key, dmfs_strerror(rc));
		return -dmfs_err_to_errno(rc);
	}
	note_dir(fs, key);
	return 0;
}

/* Whether anything but the marker is under "key/" (in the bucket, asked
 * now, or staged).  1, 0, or DMFS_ERR_*. */
static int dir_has_children(struct dmfs_fs *fs, const char *prefix)
{
	struct dmfs_list_page pg;
	struct dmfs_err_detail d = {0};
	int rc, found = 0;

	if (stage_has_prefix(fs->sg, prefix))
		return 1;
	rc = fs->store->ops->list(fs->store, prefix, NULL, NULL, 2, &pg, &d);
	if (rc)
		return -rc;
	for (size_t i = 0; i < pg.nobjs; i++)
		if (strcmp(pg.objs[i].key, prefix) != 0)
			found = 1;
	dmfs_list_page_free(&pg);
	return found;
}

int fs_live_rmdir(struct dmfs_fs *fs, const char *key)
{
	struct dmfs_err_detail d = {0};
	int is_dir, rc;
	char *m;

	if (!*key)
		return -EBUSY;
	if (!exists(fs, key, &is_dir))
		return -ENOENT;
	if (!is_dir)
		return -ENOTDIR;
	m = marker_key(key);
	if (!m)
		return -ENOMEM;
	rc = dir_has_children(fs, m);
	if (rc < 0) {
		rc = -dmfs_err_to_errno(-rc);
		goto out;
	}
	if (rc) {
		rc = -ENOTEMPTY;
		goto out;
	}
	rc = fs->store->ops->del(fs->store, m, &d);
	if (rc) {
		dmfs_log(DMFS_LOG_ERROR, "rmdir %s: %s", key, dmfs_strerror(rc));
		rc = -dmfs_err_to_errno(rc);
		goto out;
	}
	dircache_remove(fs->dc, key);
	fs_attr_forget(fs, m);
out:
	free(m);
	return rc;
}

/*
 * One object: copy (pinned to the ETag it has; its metadata goes with
 * it: sha256, Content-Type, attributes and the rest) and, when
 * delete_after, delete the old one.  A "dir/" marker is made anew (with
 * the old one's attributes) rather than copied.  *info (may be NULL) receives what
 * `to` holds now (caller frees with dmfs_obj_info_clear).
 */
static int move_object(struct dmfs_fs *fs, const char *from, const char *to,
		       int delete_after, struct dmfs_obj_info *now)
{
	struct dmfs_err_detail d = {0};
	struct dmfs_obj_info info = {0};
	int rc;

	if (to[strlen(to) - 1] == '/') {
		struct dmfs_put_src src = {.buf = "", .fd = -1, .len = 0};
		struct dmfs_put_opts po = {
			.content_type = "application/x-directory"};
		rc = fs->store->ops->head(fs->store, from, &info, &d);
		if (!rc)
			po.attrs = &info.attrs;
		else if (rc == DMFS_ERR_NOT_FOUND)
			rc = 0;
		if (!rc)
			rc = fs->store->ops->put(fs->store, to, &src, &po,
						 NULL, &d);
		dmfs_obj_info_clear(&info);
	} else {
		rc = fs->store->ops->head(fs->store, from, &info, &d);
		struct dmfs_pin pin = {.if_match = info.etag,
				       .size_hint = info.size};
		struct dmfs_put_opts po =
		    dmfs_put_opts_keeping(&info, &info.attrs);
		if (!rc && info.user_meta_lost)
			dmfs_log(DMFS_LOG_WARN, "rename %s -> %s: some of its "
				 "metadata is not carried over", from, to);
		if (!rc)
			rc = fs->store->ops->copy(fs->store, from, &pin, to,
						  &po, &d);
		dmfs_obj_info_clear(&info);
		if (!rc && now)
			rc = fs->store->ops->head(fs->store, to, now, &d);
	}
	if (!rc && delete_after)
		rc = fs->store->ops->del(fs->store, from, &d);
	/* Logged, and kept for .dmfs/last-error: the errno alone cannot say
	 * why a rename of a big object failed (a server without multipart
	 * copy, say). */
	if (rc)
		fs_set_last_error(fs, "rename %s -> %s: %s%s%s", from, to,
				  dmfs_strerror(rc), d.message[0] ? ": " : "",
				  d.message);
	return rc;
}

static int rename_file(struct dmfs_fs *fs, const char *from, const char *to)
{
	struct stage_file *sf = NULL;
	struct dmfs_err_detail d = {0};
	struct dmfs_obj_info info = {0};
	int rc = stage_rename(fs->sg, from, to, &sf);

	if (sf) {
		/* Open or unflushed: the staged copy becomes `to` now. */
		if (!rc)
			rc = stage_sync(sf, &info);
		stage_close(sf);
		if (rc)
			return rc;
		rc = fs->store->ops->del(fs->store, from, &d);
	} else if (!rc) {
		rc = move_object(fs, from, to, 1, &info);
	}
	if (!rc) {
		note_file(fs, to, info.size, info.mtime, info.etag);
		fs_attr_note(fs, to, info.etag, &info.attrs);
		dmfs_obj_info_clear(&info);
	}
	if (!rc) {
		dircache_remove(fs->dc, from);
		fs_attr_forget(fs, from);
	}
	return rc;
}

/* Every key under prefix (no delimiter), into *keys. */
static int list_all(struct dmfs_fs *fs, const char *prefix, char ***keys,
		    size_t *n)
{
	char *token = NULL;
	size_t cap = 0;
	int rc;

	*keys = NULL;
	*n = 0;
	do {
		struct dmfs_list_page pg;
		struct dmfs_err_detail d = {0};
		rc = fs->store->ops->list(fs->store, prefix, NULL, token,
					  RENAME_PAGE, &pg, &d);
		free(token);
		token = NULL;
		if (rc)
			break;
		for (size_t i = 0; !rc && i < pg.nobjs; i++) {
			if (*n >= RENAME_MAX_KEYS) {
				rc = DMFS_ERR_TOO_BIG;
				break;
			}
			if (*n == cap) {
				size_t nc = cap ? cap * 2 : 256;
				char **nk = realloc(*keys, nc * sizeof(*nk));
				if (!nk) {
					rc = DMFS_ERR_NOMEM;
					break;
				}
				*keys = nk;
				cap = nc;
			}
			(*keys)[(*n)++] = pg.objs[i].key;
			pg.objs[i].key = NULL;
		}
		if (!rc && pg.truncated && pg.next_token) {
			token = pg.next_token;
			pg.next_token = NULL;
		}
		dmfs_list_page_free(&pg);
	} while (!rc && token);
	free(token);
	return rc;
}

static int rename_dir(struct dmfs_fs *fs, const char *from, const char *to)
{
	char *pf = marker_key(from), *pt = marker_key(to);
	char **keys = NULL;
	size_t n = 0, i;
	int rc = 0;

	if (!pf || !pt) {
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	if (stage_has_prefix(fs->sg, pf)) {
		/* Files open for writing under it: close them first. */
		rc = DMFS_ERR_UNSUPPORTED;
		goto out;
	}
	rc = list_all(fs, pf, &keys, &n);
	if (rc)
		goto out;
	dmfs_log(DMFS_LOG_INFO, "rename of directory %s -> %s: %zu objects; "
		 "copying", from, to, n);
	for (i = 0; !rc && i < n; i++) {
		const char *rest = keys[i] + strlen(pf);
		size_t kn = strlen(pt) + strlen(rest) + 1;
		char *nk = malloc(kn);
		if (!nk) {
			rc = DMFS_ERR_NOMEM;
			break;
		}
		snprintf(nk, kn, "%s%s", pt, rest);
		rc = move_object(fs, keys[i], nk, 0, NULL);
		free(nk);
	}
	if (rc) {
		dmfs_log(DMFS_LOG_ERROR, "rename of directory %s -> %s stopped "
			 "after %zu of %zu copies; %s is complete, %s partial",
			 from, to, i, n, from, to);
		goto out;
	}
	for (i = 0; !rc && i < n; i++) {
		struct dmfs_err_detail d = {0};
		rc = fs->store->ops->del(fs->store, keys[i], &d);
	}
	if (rc)
		dmfs_log(DMFS_LOG_ERROR, "rename of directory %s -> %s: %s is "
			 "complete; deleting %s stopped at %zu of %zu",
			 from, to, to, from, i, n);
	else
		dmfs_log(DMFS_LOG_INFO, "rename of directory %s -> %s: done",
			 from, to);
out:
	/* Listings of every directory below both names changed. */
	dircache_invalidate_all(fs->dc);
	for (i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	free(pf);
	free(pt);
	return rc;
}

int fs_live_rename(struct dmfs_fs *fs, const char *from, const char *to,
		   unsigned int flags)
{
	int from_dir, to_dir, to_exists, rc;

	if (flags & RENAME_EXCHANGE)
		return -EINVAL;
	if (!*from || !*to)
		return -EBUSY;
	if (!exists(fs, from, &from_dir))
		return -ENOENT;
	if ((rc = parent_ok(fs, to)))
		return rc;
	to_exists = exists(fs, to, &to_dir);
	if (to_exists && (flags & RENAME_NOREPLACE))
		return -EEXIST;
	if (!strcmp(from, to))
		return 0;
	if (from_dir) {
		size_t n = strlen(from);
		if (!strncmp(to, from, n) && to[n] == '/')
			return -EINVAL; /* into itself */
		if (to_exists && !to_dir)
			return -ENOTDIR;
		if (to_exists) {
			char *m = marker_key(to);
			if (!m)
				return -ENOMEM;
			rc = dir_has_children(fs, m);
			free(m);
			if (rc)
				return rc > 0 ? -ENOTEMPTY
					      : -dmfs_err_to_errno(-rc);
		}
		rc = rename_dir(fs, from, to);
	} else {
		if (to_exists && to_dir)
			return -EISDIR;
		rc = rename_file(fs, from, to);
	}
	return rc ? -dmfs_err_to_errno(rc) : 0;
}
