/*
 * fs_attr.c - modes, owners, times and symlinks of live/, kept the way
 * s3fs keeps them: in object metadata (x-amz-meta-mode with the file type
 * bits, -uid, -gid, -mtime), a symlink being an object whose body is its
 * target and whose mode has S_IFLNK.  A directory's attributes are on its
 * "dir/" marker object.
 *
 * Reading: listings carry no metadata, so a file's attributes take one
 * HEAD, remembered for stat_ttl and only while the listing shows the same
 * ETag.  The time bound is needed: a metadata change by another client (a
 * copy onto itself) keeps the ETag of the content.  A directory's marker
 * is remembered for stat_ttl too.  Reading a
 * directory HEADs what it lists in parallel first (as s3fs does), so
 * `ls -l` waits for one round of requests, not one per name.  With
 * -o object_attrs=0 nothing is asked: attributes come from listings, as
 * before, plus what this mount stored itself.
 *
 * Writing: a file open for writing takes the change into its staged copy
 * (stage_set_attrs) and the next upload stores it; otherwise the object is
 * copied onto itself with the REPLACE directive, sending back every other
 * piece of metadata a HEAD just saw (sha256, Content-Type, the rest), the
 * copy pinned to that HEAD's ETag.  A marker that does not exist yet is
 * made.  chmod and chown are not checked against the caller (dmfs checks
 * no permissions; mount with default_permissions for the kernel to).
 *
 * The remembered attributes are a fixed table of slots (a key hashes to
 * one slot; a collision evicts), protected by slots_lock.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmfs/fs.h"
#include "dmfs/log.h"
#include "hash.h"

#define ATTR_SLOTS 65536
#define LINK_MAX_BYTES 4096 /* a symlink's target, as PATH_MAX */
/* HEADs carry no body: their time is the round trip, so more of them
 * are in flight than ranged GETs (-o parallel). */
#define PREFETCH_PER_FETCH_THREAD 4
#define PREFETCH_THREADS_MAX 64

struct attr_slot {
	const struct dmfs_fs *fs; /* the mount it belongs to */
	char *key;		  /* owned; "a/b" for a file, "a/b/" dir */
	char etag[DMFS_ETAG_MAX]; /* files: the content these are of */
	time_t until;		  /* directories: trusted until */
	struct dmfs_attrs a;
	char *target; /* owned; a symlink's target when read */
};

static struct attr_slot slots[ATTR_SLOTS]; /* protected by slots_lock */
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t slot_of(const struct dmfs_fs *fs, const char *key)
{
	return (dmfs_hash(key, strlen(key)) ^ (uintptr_t)fs) % ATTR_SLOTS;
}

/* Whether slot s holds key's attributes, still in time, and for files
 * (etag not NULL) of that content.  Under slots_lock. */
static int slot_valid(const struct attr_slot *s, const struct dmfs_fs *fs,
		      const char *key, const char *etag)
{
	if (s->fs != fs || !s->key || strcmp(s->key, key))
		return 0;
	if (etag && strcmp(s->etag, etag))
		return 0;
	return s->until >= time(NULL);
}

/* key's remembered attributes: 1 with *a (and the target, when asked
 * for and known: caller frees with free()) set, else 0. */
static int cache_get(struct dmfs_fs *fs, const char *key, const char *etag,
		     struct dmfs_attrs *a, char **target)
{
	size_t i = slot_of(fs, key);
	int hit;

	pthread_mutex_lock(&slots_lock);
	hit = slot_valid(&slots[i], fs, key, etag);
	if (hit) {
		*a = slots[i].a;
		if (target)
			*target =
			    slots[i].target ? strdup(slots[i].target) : NULL;
	}
	pthread_mutex_unlock(&slots_lock);
	return hit;
}

/* Remember; etag NULL for a directory (trusted for stat_ttl).  target
 * may be NULL.  Cannot fail (without memory, nothing is remembered). */
static void cache_put(struct dmfs_fs *fs, const char *key, const char *etag,
		      const struct dmfs_attrs *a, const char *target)
{
	size_t i = slot_of(fs, key);
	char *k = strdup(key);
	char *t = target ? strdup(target) : NULL;

	if (!k || (target && !t)) {
		free(k);
		free(t);
		return;
	}
	pthread_mutex_lock(&slots_lock);
	struct attr_slot *s = &slots[i];
	free(s->key);
	free(s->target);
	s->fs = fs;
	s->key = k;
	s->target = t;
	snprintf(s->etag, sizeof(s->etag), "%s", etag ? etag : "");
	s->until = time(NULL) + (time_t)fs->opts->stat_ttl;
	s->a = *a;
	pthread_mutex_unlock(&slots_lock);
}

void fs_attr_forget(struct dmfs_fs *fs, const char *key)
{
	size_t i = slot_of(fs, key);
	pthread_mutex_lock(&slots_lock);
	if (slots[i].fs == fs && slots[i].key && !strcmp(slots[i].key, key)) {
		free(slots[i].key);
		free(slots[i].target);
		memset(&slots[i], 0, sizeof(slots[i]));
	}
	pthread_mutex_unlock(&slots_lock);
}

void fs_attr_note(struct dmfs_fs *fs, const char *key, const char *etag,
		  const struct dmfs_attrs *a)
{
	cache_put(fs, key, etag, a, NULL);
}

/* "key/" (caller frees with free()). */
static char *dir_key(const char *key)
{
	size_t n = strlen(key) + 2;
	char *m = malloc(n);
	if (m)
		snprintf(m, n, "%s/", key);
	return m;
}

/*
 * Ask the bucket for key's attributes (key ends in '/' for a directory's
 * marker) and remember them.  A missing object has none (0 with
 * a->have == 0).
 */
static int fetch(struct dmfs_fs *fs, const char *key, struct dmfs_attrs *a)
{
	struct dmfs_obj_info info;
	struct dmfs_err_detail d = {0};
	int is_dir = key[strlen(key) - 1] == '/';
	int rc = fs->store->ops->head(fs->store, key, &info, &d);

	memset(a, 0, sizeof(*a));
	if (rc == DMFS_ERR_NOT_FOUND) {
		if (is_dir)
			cache_put(fs, key, NULL, a, NULL);
		return 0;
	}
	if (rc)
		return rc;
	*a = info.attrs;
	cache_put(fs, key, is_dir ? NULL : info.etag, a, NULL);
	dmfs_obj_info_clear(&info);
	return 0;
}

/* key's attributes as stored (a->have 0 when none or not asked).
 * e: its listing entry. */
static void attrs_of(struct dmfs_fs *fs, const char *key,
		     const struct dc_entry *e, struct dmfs_attrs *a)
{
	memset(a, 0, sizeof(*a));
	if (!*key)
		return; /* the root has no marker */
	char *dk = e->is_dir ? dir_key(key) : NULL;
	const char *ck = e->is_dir ? dk : key;
	if (!ck)
		return;
	if (!cache_get(fs, ck, e->is_dir ? NULL : e->etag, a, NULL) &&
	    fs->opts->object_attrs) {
		int rc = fetch(fs, ck, a);
		if (rc)
			dmfs_log(DMFS_LOG_DEBUG, "attributes of %s: %s", ck,
				 dmfs_strerror(rc));
	}
	free(dk);
}

/* A stat from a listing entry and the stored attributes. */
static void fill(struct dmfs_fs *fs, const struct dc_entry *e,
		 const struct dmfs_attrs *a, struct stat *st)
{
	if (e->is_dir)
		fs_fill_dir_stat(fs, st, 0755);
	else
		fs_fill_file_stat(fs, st, 0644, e->size, e->mtime);
	if (a->have & DMFS_ATTR_MODE) {
		mode_t type = st->st_mode & S_IFMT;
		/* A file whose mode says symlink is one (s3fs's); other
		 * type bits cannot change what the listing says it is. */
		if (!e->is_dir && S_ISLNK(a->mode))
			type = S_IFLNK;
		st->st_mode = type | (a->mode & 07777);
	}
	if (a->have & DMFS_ATTR_UID)
		st->st_uid = a->uid;
	if (a->have & DMFS_ATTR_GID)
		st->st_gid = a->gid;
	if (a->have & DMFS_ATTR_MTIME) {
		st->st_mtim.tv_sec = a->mtime;
		st->st_ctim.tv_sec = a->mtime;
		st->st_atim.tv_sec = a->mtime;
	}
}

void fs_attr_stat(struct dmfs_fs *fs, const char *key, const struct dc_entry *e,
		  struct stat *st)
{
	struct dmfs_attrs a;
	attrs_of(fs, key, e, &a);
	fill(fs, e, &a, st);
}

void fs_attr_staged_stat(struct dmfs_fs *fs, const char *key, uint64_t size,
			 int64_t mtime, struct stat *st)
{
	struct dc_entry e = {.size = size, .mtime = mtime};
	struct dmfs_attrs a;
	if (!stage_lookup_attrs(fs->sg, key, &a))
		memset(&a, 0, sizeof(a));
	fill(fs, &e, &a, st);
}

/* --- reading a directory: ask for what is not known, in parallel --- */

struct prefetch {
	struct dmfs_fs *fs;
	char **keys; /* the keys to ask for */
	size_t n;
	atomic_size_t next;
};

static void *prefetch_worker(void *arg)
{
	struct prefetch *p = arg;
	size_t i;
	struct dmfs_attrs a;

	while ((i = atomic_fetch_add(&p->next, 1)) < p->n) {
		int rc = fetch(p->fs, p->keys[i], &a);
		if (rc)
			dmfs_log(DMFS_LOG_DEBUG, "attributes of %s: %s",
				 p->keys[i], dmfs_strerror(rc));
	}
	return NULL;
}

void fs_attr_prefetch(struct dmfs_fs *fs, const char *dir,
		      const struct dc_listing *l)
{
	struct prefetch p = {.fs = fs};
	pthread_t th[PREFETCH_THREADS_MAX];
	int nth = fs->opts->parallel * PREFETCH_PER_FETCH_THREAD, started = 0;
	size_t dn = strlen(dir);

	if (!fs->opts->object_attrs || !l->n)
		return;
	p.keys = calloc(l->n, sizeof(*p.keys));
	if (!p.keys)
		return; /* each getattr asks for itself */
	for (size_t i = 0; i < l->n; i++) {
		const struct dc_entry *e = &l->v[i];
		size_t kn = dn + strlen(e->name) + 3;
		char *k = malloc(kn);
		struct dmfs_attrs a;
		if (!k)
			break;
		snprintf(k, kn, "%s%s%s%s", dir, dn ? "/" : "", e->name,
			 e->is_dir ? "/" : "");
		if (cache_get(fs, k, e->is_dir ? NULL : e->etag, &a, NULL) ||
		    (!e->is_dir && !e->etag[0])) {
			free(k); /* known, or being written here */
			continue;
		}
		p.keys[p.n++] = k;
	}
	if (nth < 1)
		nth = 1;
	if (nth > PREFETCH_THREADS_MAX)
		nth = PREFETCH_THREADS_MAX;
	if ((size_t)nth > p.n)
		nth = (int)p.n;
	for (int i = 0; i < nth; i++) {
		if (pthread_create(&th[i], NULL, prefetch_worker, &p) != 0)
			break;
		started++;
	}
	if (!started)
		prefetch_worker(&p);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (size_t i = 0; i < p.n; i++)
		free(p.keys[i]);
	free(p.keys);
}

/* --- changing them --- */

void fs_attr_new(struct dmfs_fs *fs, mode_t mode, struct dmfs_attrs *a)
{
	struct fuse_context *c = fuse_get_context();
	memset(a, 0, sizeof(*a));
	a->have =
	    DMFS_ATTR_MODE | DMFS_ATTR_UID | DMFS_ATTR_GID | DMFS_ATTR_MTIME;
	a->mode = (uint32_t)mode;
	a->uid = c && c->pid ? (uint32_t)c->uid : (uint32_t)fs->uid;
	a->gid = c && c->pid ? (uint32_t)c->gid : (uint32_t)fs->gid;
	a->mtime = (int64_t)time(NULL);
}

void fs_attr_from_stat(const struct stat *st, unsigned have,
		       struct dmfs_attrs *a)
{
	memset(a, 0, sizeof(*a));
	a->have = have;
	if (have & DMFS_ATTR_MODE)
		a->mode = (uint32_t)st->st_mode;
	if (have & DMFS_ATTR_UID)
		a->uid = (uint32_t)st->st_uid;
	if (have & DMFS_ATTR_GID)
		a->gid = (uint32_t)st->st_gid;
	if (have & DMFS_ATTR_MTIME)
		a->mtime = (int64_t)st->st_mtim.tv_sec;
}

/* b's attributes over a's. */
static void merge(struct dmfs_attrs *a, const struct dmfs_attrs *b)
{
	if (b->have & DMFS_ATTR_MODE)
		a->mode = b->mode;
	if (b->have & DMFS_ATTR_UID)
		a->uid = b->uid;
	if (b->have & DMFS_ATTR_GID)
		a->gid = b->gid;
	if (b->have & DMFS_ATTR_MTIME)
		a->mtime = b->mtime;
	a->have |= b->have;
}

/*
 * Store the attributes `ch` has on the object `okey` ("a/b", or "a/b/"
 * for a directory's marker), over those it has and the defaults the mount
 * showed (`shown`), keeping its other metadata.  A failed copy leaves
 * the server's words in why (whysz bytes, "" when none).
 */
static int store_attrs(struct dmfs_fs *fs, const char *okey,
		       const struct dmfs_attrs *shown,
		       const struct dmfs_attrs *ch, char *why, size_t whysz)
{
	struct dmfs_obj_info info, now;
	struct dmfs_err_detail d = {0};
	struct dmfs_attrs a = *shown;
	int is_dir = okey[strlen(okey) - 1] == '/';
	int rc = fs->store->ops->head(fs->store, okey, &info, &d);

	if (rc == DMFS_ERR_NOT_FOUND && is_dir) {
		/* A directory that is only a prefix: it gets a marker. */
		struct dmfs_put_src src = {.buf = "", .fd = -1, .len = 0};
		struct dmfs_put_opts po = {
		    .content_type = "application/x-directory", .attrs = &a};
		merge(&a, ch);
		rc = fs->store->ops->put(fs->store, okey, &src, &po, NULL, &d);
		if (!rc)
			cache_put(fs, okey, NULL, &a, NULL);
		return rc;
	}
	if (rc)
		return rc;
	if (info.user_meta_lost) {
		dmfs_log(DMFS_LOG_ERROR,
			 "%s: more metadata than dmfs can "
			 "carry over; its attributes are left unchanged",
			 okey);
		dmfs_obj_info_clear(&info);
		return DMFS_ERR_UNSUPPORTED;
	}
	merge(&a, &info.attrs);
	merge(&a, ch);
	struct dmfs_pin pin = {.if_match = info.etag, .size_hint = info.size};
	struct dmfs_put_opts po = dmfs_put_opts_keeping(&info, &a);
	rc = fs->store->ops->copy(fs->store, okey, &pin, okey, &po, &d);
	dmfs_obj_info_clear(&info);
	if (rc) {
		snprintf(why, whysz, "%s", d.message);
		return rc;
	}
	if (is_dir) {
		cache_put(fs, okey, NULL, &a, NULL);
		return 0;
	}
	/* The copy may have a new ETag and time: list it as it is now. */
	rc = fs->store->ops->head(fs->store, okey, &now, &d);
	if (rc)
		return rc;
	struct dc_entry e = {.size = now.size, .mtime = now.mtime};
	snprintf(e.etag, sizeof(e.etag), "%s", now.etag);
	if (dircache_upsert(fs->dc, okey, &e))
		dmfs_log(DMFS_LOG_WARN, "listing cache of %s not updated",
			 okey);
	cache_put(fs, okey, now.etag, &now.attrs, NULL);
	dmfs_obj_info_clear(&now);
	return 0;
}

/* chmod, chown and utimens: the attributes in ch, on key. */
static int set_attrs(struct dmfs_fs *fs, const char *key, struct fs_handle *h,
		     const struct dmfs_attrs *ch)
{
	struct stage_file *sf = NULL;
	struct dc_entry e;
	struct stat st;
	int rc, pending = 0;

	if (!ch->have)
		return 0;
	if (!*key)
		return 0; /* the root has nowhere to keep them */
	/* Open for writing here: the staged copy takes them. */
	if (h && h->sf)
		sf = h->sf;
	else if (!stage_find(fs->sg, key, &sf))
		sf = NULL;
	if (sf) {
		rc = stage_set_attrs(sf, ch, &pending);
		if (!(h && h->sf == sf))
			stage_close(sf);
		if (rc)
			return -dmfs_err_to_errno(rc);
		if (pending)
			return 0;
	}
	rc = dircache_stat(fs->dc, key, &e);
	if (rc)
		return -dmfs_err_to_errno(rc);
	/* What the mount shows now is what the object gets, changed. */
	struct dmfs_attrs shown;
	fs_attr_stat(fs, key, &e, &st);
	fs_attr_from_stat(&st,
			  DMFS_ATTR_MODE | DMFS_ATTR_UID | DMFS_ATTR_GID |
			      DMFS_ATTR_MTIME,
			  &shown);
	char *dk = e.is_dir ? dir_key(key) : NULL;
	if (e.is_dir && !dk)
		return -ENOMEM;
	char why[256] = "";
	rc = store_attrs(fs, e.is_dir ? dk : key, &shown, ch, why, sizeof(why));
	/* Logged, and kept for .dmfs/last-error: the errno alone cannot say
	 * why (a server without multipart copy, say). */
	if (rc)
		fs_set_last_error(fs, "attributes of %s not stored: %s%s%s",
				  e.is_dir ? dk : key, dmfs_strerror(rc),
				  why[0] ? ": " : "", why);
	free(dk);
	return rc ? -dmfs_err_to_errno(rc) : 0;
}

int fs_live_chmod(struct dmfs_fs *fs, const char *key, mode_t mode,
		  struct fs_handle *h)
{
	struct stat st;
	struct dmfs_attrs ch = {.have = DMFS_ATTR_MODE};
	int rc = fs_live_getattr(fs, key, &st);

	if (rc)
		return rc;
	/* The type stays what it is; s3fs stores it with the bits. */
	ch.mode = (uint32_t)((st.st_mode & S_IFMT) | (mode & 07777));
	return set_attrs(fs, key, h, &ch);
}

int fs_live_chown(struct dmfs_fs *fs, const char *key, uid_t uid, gid_t gid,
		  struct fs_handle *h)
{
	struct dmfs_attrs ch = {0};
	struct stat st;
	int rc = fs_live_getattr(fs, key, &st);

	if (rc)
		return rc;
	if (uid != (uid_t)-1) {
		ch.have |= DMFS_ATTR_UID;
		ch.uid = (uint32_t)uid;
	}
	if (gid != (gid_t)-1) {
		ch.have |= DMFS_ATTR_GID;
		ch.gid = (uint32_t)gid;
	}
	return set_attrs(fs, key, h, &ch);
}

int fs_live_utimens(struct dmfs_fs *fs, const char *key,
		    const struct timespec tv[2], struct fs_handle *h)
{
	struct dmfs_attrs ch = {0};
	struct stat st;
	int rc = fs_live_getattr(fs, key, &st);

	if (rc)
		return rc;
	/* Only the modification time is kept (s3fs's x-amz-meta-mtime). */
	if (!tv || tv[1].tv_nsec == UTIME_NOW) {
		ch.have = DMFS_ATTR_MTIME;
		ch.mtime = (int64_t)time(NULL);
	} else if (tv[1].tv_nsec != UTIME_OMIT) {
		ch.have = DMFS_ATTR_MTIME;
		ch.mtime = (int64_t)tv[1].tv_sec;
	}
	return set_attrs(fs, key, h, &ch);
}

/* --- symlinks --- */

int fs_live_symlink(struct dmfs_fs *fs, const char *target, const char *key)
{
	struct dmfs_err_detail d = {0};
	struct dmfs_obj_info out;
	struct dmfs_attrs a;
	struct dc_entry e;
	size_t tn = strlen(target);
	uint64_t ssize;
	int64_t smtime;
	int rc;

	if (!*key)
		return -EEXIST;
	if (tn >= LINK_MAX_BYTES)
		return -ENAMETOOLONG;
	if (!dircache_stat(fs->dc, key, &e) ||
	    stage_lookup(fs->sg, key, &ssize, &smtime))
		return -EEXIST;
	const char *slash = strrchr(key, '/');
	if (slash) {
		char *parent = strndup(key, (size_t)(slash - key));
		if (!parent)
			return -ENOMEM;
		rc = dircache_stat(fs->dc, parent, &e);
		free(parent);
		if (rc)
			return -dmfs_err_to_errno(rc);
		if (!e.is_dir)
			return -ENOTDIR;
	}
	fs_attr_new(fs, S_IFLNK | 0777, &a);
	struct dmfs_put_src src = {.buf = target, .fd = -1, .len = tn};
	struct dmfs_put_opts po = {.attrs = &a, .if_none_match = true};
	rc = fs->store->ops->put(fs->store, key, &src, &po, &out, &d);
	if (rc) {
		dmfs_log(DMFS_LOG_ERROR, "symlink %s: %s", key,
			 dmfs_strerror(rc));
		return -dmfs_err_to_errno(rc);
	}
	struct dc_entry ne = {.size = tn, .mtime = a.mtime};
	snprintf(ne.etag, sizeof(ne.etag), "%s", out.etag);
	if (dircache_upsert(fs->dc, key, &ne))
		dmfs_log(DMFS_LOG_WARN, "listing cache of %s not updated", key);
	cache_put(fs, key, out.etag, &a, target);
	dmfs_obj_info_clear(&out);
	return 0;
}

int fs_live_readlink(struct dmfs_fs *fs, const char *key, char *buf,
		     size_t size)
{
	struct dmfs_err_detail d = {0};
	struct dmfs_attrs a;
	struct dc_entry e;
	char *target = NULL;
	size_t len = 0;
	int rc;

	if (!size)
		return -EINVAL;
	rc = dircache_stat(fs->dc, key, &e);
	if (rc)
		return -dmfs_err_to_errno(rc);
	if (e.is_dir)
		return -EINVAL;
	if (!cache_get(fs, key, e.etag, &a, &target)) {
		rc = fetch(fs, key, &a);
		if (rc)
			return -dmfs_err_to_errno(rc);
	}
	if (!(a.have & DMFS_ATTR_MODE) || !S_ISLNK(a.mode)) {
		free(target);
		return -EINVAL;
	}
	if (!target) {
		rc = dmfs_store_get_all(fs->store, key, LINK_MAX_BYTES, &target,
					&len, &d);
		if (rc)
			return -dmfs_err_to_errno(
			    rc == DMFS_ERR_TOO_BIG ? DMFS_ERR_INVAL : rc);
		/* Read once per content. */
		cache_put(fs, key, e.etag, &a, target);
	}
	snprintf(buf, size, "%s", target);
	free(target);
	return 0;
}
