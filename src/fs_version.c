/*
 * fs_version.c - the snapshots/ and datasets/ namespaces: every snapshot
 * and dataset version as a read-only directory, and `latest` links.
 *
 *   snapshots/ID/...              a snapshot's files
 *   snapshots/latest -> ID        the newest snapshot
 *   datasets/NAME/VERSION/...     a dataset version's files
 *   datasets/NAME/latest -> V     its newest version
 *
 * Which refs exist comes from the catalog (catalog.c); what is inside one
 * from its manifest's index (mindex.c), built on the first access to the
 * version, so stat and readdir never cost an S3 request per file.  File
 * contents are immutable: they are read through the reader by content
 * (the sha256 object, or the pinned object version), cached under that
 * name, and the kernel may keep their pages across opens (keep_cache).
 *
 * Attributes: a version's directories carry its creation time; files
 * their manifest mode without write bits and their own mtime.  Nothing
 * here can be modified: fs.c answers EROFS to every change.
 *
 * Large directories are listed a batch at a time: FUSE hands back the
 * offset of the last entry it used, and the names of the last batch are
 * kept with the open directory, so the listing continues after that name
 * in the index (mindex_readdir's `after`) instead of starting over.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dmfs/fs.h"
#include "dmfs/mval.h" /* before fuse_lowlevel.h: FUSE_USE_VERSION */
#include "dmfs/log.h"

#include <fuse_lowlevel.h>

#define SNAP_DIR "snapshots"
#define DATA_DIR "datasets"
#define LATEST "latest"
#define CID_MAX (2 * MANIFEST_PATH_MAX + 16) /* "version:<key>@<id>" */
#define OBJKEY_MAX 128			     /* .dmfs/objects/sha256/xx/... */
#define XATTR_VALUE_MAX (64 * 1024)	     /* the kernel's XATTR_SIZE_MAX */
#define DIRPOS_NAMES_MAX (256 * 1024)	     /* names kept of one batch */
#define OFF_FIRST 3    /* off of the first entry: 1 ".", 2 ".." */
#define FILL_FULL (-1) /* a readdir callback: the reply is full */

/* Where the last readdir batch of an open directory went. */
struct fs_dirpos {
	uint64_t first_off; /* off of the first name kept */
	size_t n;	    /* names kept */
	size_t *at;	    /* start of name i in names */
	size_t cap;
	char *names;
	size_t used, names_cap;
};

/* A path of these namespaces, taken apart. */
enum vp_kind {
	VP_TOP,	    /* "snapshots", "datasets" */
	VP_DATASET, /* "datasets/NAME" */
	VP_LATEST,  /* the link in dir */
	VP_VERSION, /* inside ref, at sub ("" its root) */
};

struct vpath {
	enum vp_kind kind;
	char dir[REF_NAME_MAX]; /* VP_TOP, VP_DATASET, VP_LATEST */
	char ref[REF_NAME_MAX]; /* VP_VERSION */
	const char *sub;	/* VP_VERSION: borrowed from the path */
};

/* The first n components of path end at the returned pointer ('\0' or
 * '/'), or NULL when path has fewer. */
static const char *after_components(const char *path, int n)
{
	const char *p = path;

	for (int i = 0; i < n; i++) {
		if (i)
			p++;
		if (!*p || *p == '/')
			return NULL;
		p = strchrnul(p, '/');
	}
	return p;
}

static int copy_part(char *out, size_t outsz, const char *s, size_t n)
{
	if (n >= outsz)
		return DMFS_ERR_NOT_FOUND;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

/* Take a path apart.  DMFS_ERR_NOT_FOUND for one that cannot exist. */
static int parse(const char *path, struct vpath *vp)
{
	bool snap = !strncmp(path, SNAP_DIR, strlen(SNAP_DIR));
	int depth = snap ? 2 : 3; /* components naming a ref */
	const char *top = after_components(path, 1);
	const char *end;

	memset(vp, 0, sizeof(*vp));
	vp->sub = "";
	if (!top ||
	    (strncmp(path, SNAP_DIR "/", 10) && strcmp(path, SNAP_DIR) &&
	     strncmp(path, DATA_DIR "/", 9) && strcmp(path, DATA_DIR)))
		return DMFS_ERR_NOT_FOUND;
	if (!*top) {
		vp->kind = VP_TOP;
		return copy_part(vp->dir, sizeof(vp->dir), path, strlen(path));
	}
	end = after_components(path, 2);
	if (!end)
		return DMFS_ERR_NOT_FOUND;
	if (!snap && !*end) {
		vp->kind = VP_DATASET;
		return copy_part(vp->dir, sizeof(vp->dir), path, strlen(path));
	}
	end = after_components(path, depth);
	if (!end)
		return DMFS_ERR_NOT_FOUND;
	/* the last component of the ref: a name or "latest" */
	const char *last = after_components(path, depth - 1) + 1;
	if ((size_t)(end - last) == strlen(LATEST) &&
	    !strncmp(last, LATEST, strlen(LATEST))) {
		if (*end) /* the kernel follows links itself */
			return DMFS_ERR_NOT_FOUND;
		vp->kind = VP_LATEST;
		return copy_part(vp->dir, sizeof(vp->dir), path,
				 (size_t)(last - 1 - path));
	}
	vp->kind = VP_VERSION;
	vp->sub = *end ? end + 1 : "";
	return copy_part(vp->ref, sizeof(vp->ref), path, (size_t)(end - path));
}

/* The manifest of a version, indexed.  0 or DMFS_ERR_*. */
static int version_manifest(struct dmfs_fs *fs, const char *ref,
			    char manifest[65], int64_t *created)
{
	char msg[512];
	int rc = catalog_lookup(fs->cat, ref, manifest, created);

	if (rc)
		return rc;
	rc = catalog_ensure_indexed(fs->cat, manifest, msg, sizeof(msg));
	if (rc) {
		dmfs_log(DMFS_LOG_ERROR, "%s: %s", ref, msg);
		/* the ref exists: its manifest missing is an I/O error */
		return rc == DMFS_ERR_NOT_FOUND ? DMFS_ERR_IO : rc;
	}
	return 0;
}

static void set_times(struct stat *st, int64_t t)
{
	st->st_mtim.tv_sec = t;
	st->st_ctim.tv_sec = t;
	st->st_atim.tv_sec = t;
}

static void dir_stat(struct dmfs_fs *fs, struct stat *st, int64_t t)
{
	fs_fill_dir_stat(fs, st, 0555);
	set_times(st, t);
}

static void file_stat(struct dmfs_fs *fs, struct stat *st,
		      const struct mindex_ent *e)
{
	mode_t perm = (mode_t)(e->mode & 0555);

	fs_fill_file_stat(fs, st, perm ? perm : 0444, e->size, e->mtime);
}

static void link_stat(struct dmfs_fs *fs, struct stat *st, const char *target,
		      int64_t t)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFLNK | 0777;
	st->st_nlink = 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = (off_t)strlen(target);
	set_times(st, t);
}

int fs_version_getattr(struct dmfs_fs *fs, const char *path, struct stat *st)
{
	char manifest[65], name[REF_NAME_MAX];
	struct mindex_ent e;
	struct vpath vp;
	int64_t created = fs->mounted_at;
	bool is_dir;
	int rc = parse(path, &vp);

	if (rc)
		return -ENOENT;
	switch (vp.kind) {
	case VP_TOP:
		/* always there; no need to ask the store (see fs.c) */
		fs_fill_dir_stat(fs, st, 0555);
		return 0;
	case VP_DATASET:
		/* a directory as recent as its newest version */
		rc = catalog_latest(fs->cat, vp.dir, name, sizeof(name),
				    &created);
		if (rc)
			return -dmfs_err_to_errno(rc);
		dir_stat(fs, st, created);
		return 0;
	case VP_LATEST:
		rc = catalog_latest(fs->cat, vp.dir, name, sizeof(name),
				    &created);
		if (rc)
			return -dmfs_err_to_errno(rc);
		link_stat(fs, st, name, created);
		return 0;
	case VP_VERSION:
		break;
	}
	if (!*vp.sub) {
		/* the version's root: no need to index it yet */
		rc = catalog_lookup(fs->cat, vp.ref, NULL, &created);
		if (rc)
			return -dmfs_err_to_errno(rc);
		dir_stat(fs, st, created);
		return 0;
	}
	rc = version_manifest(fs, vp.ref, manifest, &created);
	if (!rc)
		rc = mindex_stat(fs->mx, manifest, vp.sub, &is_dir, &e);
	if (rc)
		return -dmfs_err_to_errno(rc);
	if (is_dir)
		dir_stat(fs, st, created);
	else
		file_stat(fs, st, &e);
	mindex_ent_clear(&e);
	return 0;
}

int fs_version_readlink(struct dmfs_fs *fs, const char *path, char *buf,
			size_t size)
{
	struct vpath vp;
	int rc = parse(path, &vp);

	if (rc)
		return -ENOENT;
	if (vp.kind != VP_LATEST)
		return -EINVAL;
	if (!size)
		return -EINVAL;
	rc = catalog_latest(fs->cat, vp.dir, buf, size, NULL);
	return rc ? -dmfs_err_to_errno(rc) : 0;
}

/* --- readdir --- */

void fs_version_dirpos_free(struct fs_dirpos *d)
{
	if (!d)
		return;
	free(d->at);
	free(d->names);
	free(d);
}

/* Remember that the entry `name` went out with offset off.  Forgetting
 * (out of memory, too many names) only costs a slower continuation. */
static void dirpos_keep(struct fs_dirpos *d, uint64_t off, const char *name)
{
	size_t len = strlen(name) + 1;

	if (d->n && off != d->first_off + d->n)
		return;
	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 64;
		size_t *na = realloc(d->at, nc * sizeof(*na));
		if (!na)
			return;
		d->at = na;
		d->cap = nc;
	}
	if (d->used + len > d->names_cap) {
		size_t nc = d->names_cap ? d->names_cap * 2 : 4096;
		while (nc < d->used + len)
			nc *= 2;
		if (nc > DIRPOS_NAMES_MAX)
			return;
		char *nn = realloc(d->names, nc);
		if (!nn)
			return;
		d->names = nn;
		d->names_cap = nc;
	}
	if (!d->n)
		d->first_off = off;
	memcpy(d->names + d->used, name, len);
	d->at[d->n++] = d->used;
	d->used += len;
}

/* The name that went out with offset off, or NULL. */
static const char *dirpos_find(const struct fs_dirpos *d, uint64_t off)
{
	if (!d || !d->n || off < d->first_off || off - d->first_off >= d->n)
		return NULL;
	return d->names + d->at[off - d->first_off];
}

struct fill_ctx {
	struct dmfs_fs *fs;
	void *buf;
	fuse_fill_dir_t filler;
	int64_t created;       /* of the version */
	uint64_t next_off;     /* off of the next entry */
	uint64_t skip;	       /* entries still to pass over */
	struct fs_dirpos *pos; /* may be NULL */
};

static int fill_version_entry(void *ctx, const char *name, bool is_dir,
			      const struct mindex_ent *e)
{
	struct fill_ctx *fc = ctx;
	struct stat st;

	if (fc->skip) {
		fc->skip--;
		return 0;
	}
	if (is_dir)
		dir_stat(fc->fs, &st, fc->created);
	else
		file_stat(fc->fs, &st, e);
	/* With readdirplus the kernel takes these attributes and sends no
	 * lookup per entry. */
	if (fc->filler(fc->buf, name, &st, (off_t)fc->next_off,
		       FUSE_FILL_DIR_PLUS))
		return FILL_FULL; /* this one goes out next time */
	if (fc->pos)
		dirpos_keep(fc->pos, fc->next_off, name);
	fc->next_off++;
	return 0;
}

static int readdir_version(struct dmfs_fs *fs, const struct vpath *vp,
			   void *buf, fuse_fill_dir_t filler, off_t off,
			   struct fs_handle *h)
{
	char manifest[65];
	struct fill_ctx fc = {.fs = fs, .buf = buf, .filler = filler};
	const char *after = NULL;
	char *after_copy = NULL;
	bool is_dir = false;
	int rc = version_manifest(fs, vp->ref, manifest, &fc.created);

	if (!rc)
		rc = mindex_stat(fs->mx, manifest, vp->sub, &is_dir, NULL);
	if (!rc && !is_dir)
		rc = DMFS_ERR_NOT_DIR;
	if (rc)
		return -dmfs_err_to_errno(rc);
	if (h && !h->dir)
		h->dir = calloc(1, sizeof(*h->dir));
	fc.pos = h ? h->dir : NULL;
	if (off < 1 && filler(buf, ".", NULL, 1, 0))
		return 0;
	if (off < 2 && filler(buf, "..", NULL, 2, 0))
		return 0;
	fc.next_off = (uint64_t)(off < 2 ? 2 : off) + 1;
	if (off >= OFF_FIRST) {
		/* continue after the entry that went out with `off` */
		after = dirpos_find(fc.pos, (uint64_t)off);
		if (after) {
			after_copy = strdup(after);
			if (!after_copy)
				return -ENOMEM;
		} else {
			fc.skip = (uint64_t)off - OFF_FIRST + 1;
		}
	}
	if (fc.pos)
		fc.pos->n = fc.pos->used = 0;
	rc = mindex_readdir(fs->mx, manifest, vp->sub, after_copy,
			    fill_version_entry, &fc);
	free(after_copy);
	return rc && rc != FILL_FULL ? -dmfs_err_to_errno(rc) : 0;
}

struct catdir_ctx {
	struct dmfs_fs *fs;
	void *buf;
	fuse_fill_dir_t filler;
};

static int fill_catalog_entry(void *ctx, const char *name, int64_t created)
{
	struct catdir_ctx *cc = ctx;
	struct stat st;

	dir_stat(cc->fs, &st, created);
	return cc->filler(cc->buf, name, &st, 0, FUSE_FILL_DIR_PLUS) ? FILL_FULL
								     : 0;
}

int fs_version_readdir(struct dmfs_fs *fs, const char *path, void *buf,
		       fuse_fill_dir_t filler, off_t off, struct fs_handle *h)
{
	struct catdir_ctx cc = {fs, buf, filler};
	char name[REF_NAME_MAX];
	struct vpath vp;
	struct stat st;
	int64_t created;
	int rc = parse(path, &vp);

	if (rc)
		return -ENOENT;
	if (vp.kind == VP_VERSION)
		return readdir_version(fs, &vp, buf, filler, off, h);
	if (vp.kind == VP_LATEST)
		return -ENOTDIR;
	/* A catalog directory: a few names, filled in one go. */
	if (vp.kind == VP_DATASET &&
	    catalog_latest(fs->cat, vp.dir, name, sizeof(name), NULL))
		return -ENOENT;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	if (strcmp(vp.dir, DATA_DIR) &&
	    !catalog_latest(fs->cat, vp.dir, name, sizeof(name), &created)) {
		link_stat(fs, &st, name, created);
		filler(buf, LATEST, &st, 0, FUSE_FILL_DIR_PLUS);
	}
	rc = catalog_children(fs->cat, vp.dir, fill_catalog_entry, &cc);
	return rc && rc != FILL_FULL ? -dmfs_err_to_errno(rc) : 0;
}

/* --- files --- */

/* Where a file's bytes are: key, version id (or NULL) and content id. */
static void content_of(const struct mindex_ent *e, char *key, size_t keysz,
		       const char **vid, char *cid, size_t cidsz)
{
	if (e->sha256[0]) {
		manifest_object_key(e->sha256, key, keysz);
		snprintf(cid, cidsz, "sha256:%s", e->sha256);
		*vid = NULL;
	} else {
		snprintf(key, keysz, "%s", e->key ? e->key : "");
		snprintf(cid, cidsz, "version:%s@%s", e->key ? e->key : "",
			 e->version_id ? e->version_id : "");
		*vid = e->version_id;
	}
}

/* The file at a VP_VERSION path.  0 with e filled (caller clears), or
 * DMFS_ERR_*. */
static int version_file(struct dmfs_fs *fs, const struct vpath *vp,
			struct mindex_ent *e)
{
	char manifest[65];
	bool is_dir;
	int rc;

	memset(e, 0, sizeof(*e));
	if (vp->kind != VP_VERSION)
		return DMFS_ERR_IS_DIR;
	if (!*vp->sub)
		return DMFS_ERR_IS_DIR;
	rc = version_manifest(fs, vp->ref, manifest, NULL);
	if (!rc)
		rc = mindex_stat(fs->mx, manifest, vp->sub, &is_dir, e);
	if (!rc && is_dir)
		rc = DMFS_ERR_IS_DIR;
	return rc;
}

int fs_version_open(struct dmfs_fs *fs, const char *path,
		    struct fuse_file_info *fi, struct fs_handle *h)
{
	char key[MANIFEST_PATH_MAX + OBJKEY_MAX], cid[CID_MAX];
	struct mindex_ent e;
	struct vpath vp;
	const char *vid;
	int rc = parse(path, &vp);

	if (rc)
		return -ENOENT;
	rc = version_file(fs, &vp, &e);
	if (rc)
		return -dmfs_err_to_errno(rc);
	content_of(&e, key, sizeof(key), &vid, cid, sizeof(cid));
	rc = reader_open_content(fs->rd, key, vid, cid, e.size, &h->rf);
	mindex_ent_clear(&e);
	if (rc)
		return -dmfs_err_to_errno(rc);
	/* Immutable content: the kernel's pages stay valid forever. */
	fi->keep_cache = 1;
	return 0;
}

/* --- xattrs --- */

/* user.FIELD of a file in a version: the value frozen in its manifest
 * line, as getfattr shows a live one (mval_to_text). */
static int user_xattr(const struct mindex_ent *e, const char *field,
		      char *value, size_t size)
{
	cJSON *meta = e->meta_json ? cJSON_Parse(e->meta_json) : NULL;
	const cJSON *v =
	    meta ? cJSON_GetObjectItemCaseSensitive(meta, field) : NULL;
	struct mval mv = {0};
	char msg[200], *text = NULL;
	size_t len;
	int rc = -ENODATA;

	if (v && !cJSON_IsNull(v)) {
		if (mval_from_json(v, MV_NULL, &mv, msg, sizeof(msg)) != 0)
			rc = -EIO; /* a manifest we wrote cannot hold this */
		else if (mval_to_text(&mv, &text, &len) != 0)
			rc = -ENOMEM;
		else
			rc = fs_xattr_reply(text, len, value, size);
	}
	free(text);
	mval_clear(&mv);
	cJSON_Delete(meta);
	return rc;
}

static int number_reply(uint64_t v, char *value, size_t size)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%" PRIu64, v);

	return fs_xattr_reply(buf, (size_t)n, value, size);
}

static int file_xattr(struct dmfs_fs *fs, const struct vpath *vp,
		      const struct mindex_ent *e, const char *name, char *value,
		      size_t size)
{
	char key[MANIFEST_PATH_MAX + OBJKEY_MAX], cid[CID_MAX];
	const char *vid;
	int rc;

	content_of(e, key, sizeof(key), &vid, cid, sizeof(cid));
	if (!strcmp(name, "dmfs.size"))
		return number_reply(e->size, value, size);
	if (!strcmp(name, "dmfs.sha256"))
		return e->sha256[0] ? fs_xattr_reply(e->sha256, 64, value, size)
				    : -ENODATA;
	if (!strcmp(name, "dmfs.cached"))
		return number_reply(
		    reader_content_cached_bytes(fs->rd, cid, e->size), value,
		    size);
	if (!strcmp(name, "dmfs.s3uri")) {
		char *u = fs->store->ops->uri(fs->store, key), *full = NULL;
		if (!u)
			return -ENOMEM;
		if (vid && asprintf(&full, "%s?versionId=%s", u, vid) < 0)
			full = NULL;
		if (vid && !full)
			rc = -ENOMEM;
		else
			rc = fs_xattr_reply(full ? full : u,
					 strlen(full ? full : u), value, size);
		free(full);
		free(u);
		return rc;
	}
	if (!strncmp(name, "user.", 5))
		return user_xattr(e, name + 5, value, size);
	return -ENODATA;
}

int fs_version_getxattr(struct dmfs_fs *fs, const char *path, const char *name,
			char *value, size_t size)
{
	struct mindex_ent e;
	struct vpath vp;
	int rc;

	/* ls -l asks every file for security.* and system.*: no lookup */
	if (strncmp(name, "dmfs.", 5) && strncmp(name, "user.", 5))
		return -ENODATA;
	rc = parse(path, &vp);
	if (rc)
		return -ENOENT;
	if (vp.kind != VP_VERSION)
		return -ENODATA;
	rc = version_file(fs, &vp, &e);
	if (rc == DMFS_ERR_IS_DIR) {
		/* a directory of a version: which version it is */
		if (!strcmp(name, "dmfs.version"))
			return fs_xattr_reply(vp.ref, strlen(vp.ref), value, size);
		return -ENODATA;
	}
	if (rc)
		return -dmfs_err_to_errno(rc);
	if (!strcmp(name, "dmfs.version"))
		rc = fs_xattr_reply(vp.ref, strlen(vp.ref), value, size);
	else
		rc = file_xattr(fs, &vp, &e, name, value, size);
	mindex_ent_clear(&e);
	return rc;
}

/* Append name and its NUL to the list being built (bounded). */
static int list_add(char *buf, size_t *len, size_t cap, const char *p, size_t n)
{
	if (*len + n + 1 > cap)
		return -E2BIG;
	memcpy(buf + *len, p, n);
	buf[*len + n] = '\0';
	*len += n + 1;
	return 0;
}

int fs_version_listxattr(struct dmfs_fs *fs, const char *path, char *list,
			 size_t size)
{
	static const char fixed[] = "dmfs.version\0dmfs.size\0dmfs.cached\0"
				    "dmfs.s3uri";
	struct mindex_ent e;
	struct vpath vp;
	cJSON *meta = NULL;
	char *buf = NULL;
	size_t len = 0;
	int rc = parse(path, &vp);

	if (rc)
		return -ENOENT;
	if (vp.kind != VP_VERSION)
		return 0;
	rc = version_file(fs, &vp, &e);
	if (rc == DMFS_ERR_IS_DIR)
		return fs_xattr_reply("dmfs.version", sizeof("dmfs.version"), list,
				   size);
	if (rc)
		return -dmfs_err_to_errno(rc);
	buf = malloc(XATTR_VALUE_MAX);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(buf, fixed, sizeof(fixed));
	len = sizeof(fixed);
	if (e.sha256[0])
		rc = list_add(buf, &len, XATTR_VALUE_MAX, "dmfs.sha256", 11);
	meta = e.meta_json ? cJSON_Parse(e.meta_json) : NULL;
	for (const cJSON *f = meta ? meta->child : NULL; !rc && f;
	     f = f->next) {
		char name[300];
		int n = snprintf(name, sizeof(name), "user.%s", f->string);
		if (cJSON_IsNull(f) || n < 0 || (size_t)n >= sizeof(name))
			continue; /* longer than XATTR_NAME_MAX: unreachable */
		rc = list_add(buf, &len, XATTR_VALUE_MAX, name, (size_t)n);
	}
	if (!rc)
		rc = fs_xattr_reply(buf, len, list, size);
out:
	cJSON_Delete(meta);
	free(buf);
	mindex_ent_clear(&e);
	return rc;
}

/* --- kernel caches --- */

struct inval_ctx {
	struct fuse_session *se;
};

static int inval_child(void *ctx, const char *name, int64_t created)
{
	struct inval_ctx *ic = ctx;

	fuse_lowlevel_notify_inval_entry(ic->se, FUSE_ROOT_ID, name,
					 strlen(name));
	return 0;
}

void fs_version_invalidate(struct dmfs_fs *fs)
{
	struct fuse_context *fc = fuse_get_context();
	struct inval_ctx ic = {fc && fc->fuse ? fuse_get_session(fc->fuse)
					      : NULL};
	struct vpath vp;

	if (!ic.se)
		return;
	if (!*fs->view) {
		/* Dropping a directory's entry drops everything cached below
		 * it, also names cached as missing. */
		fuse_lowlevel_notify_inval_entry(ic.se, FUSE_ROOT_ID, SNAP_DIR,
						 strlen(SNAP_DIR));
		fuse_lowlevel_notify_inval_entry(ic.se, FUSE_ROOT_ID, DATA_DIR,
						 strlen(DATA_DIR));
		return;
	}
	/* A view of a catalog directory: its names are at the root. */
	if (parse(fs->view, &vp) ||
	    (vp.kind != VP_TOP && vp.kind != VP_DATASET))
		return;
	if (strcmp(vp.dir, DATA_DIR))
		inval_child(&ic, LATEST, 0);
	(void)catalog_children(fs->cat, vp.dir, inval_child, &ic);
}

/* --- views --- */

int fs_version_resolve_view(struct dmfs_fs *fs, char *view, size_t viewsz,
			    char *msg, size_t msgsz)
{
	int depth = !strncmp(view, SNAP_DIR, strlen(SNAP_DIR)) ? 2 : 3;
	const char *end = after_components(view, depth);
	const char *last = end ? after_components(view, depth - 1) + 1 : NULL;
	char dir[REF_NAME_MAX], target[REF_NAME_MAX], *fixed = NULL;
	struct stat st;
	int rc = 0;

	if (last && (size_t)(end - last) == strlen(LATEST) &&
	    !strncmp(last, LATEST, strlen(LATEST))) {
		/* pin the version `latest` names now */
		snprintf(dir, sizeof(dir), "%.*s", (int)(last - 1 - view),
			 view);
		rc = catalog_latest(fs->cat, dir, target, sizeof(target), NULL);
		if (!rc && asprintf(&fixed, "%s/%s%s", dir, target, end) < 0)
			rc = DMFS_ERR_NOMEM;
	}
	if (fixed) {
		if (strlen(fixed) >= viewsz) {
			rc = DMFS_ERR_TOO_BIG;
		} else {
			dmfs_log(DMFS_LOG_INFO, "view=%s is %s", view, fixed);
			memcpy(view, fixed, strlen(fixed) + 1);
		}
		free(fixed);
	}
	if (!rc) {
		int e = fs_version_getattr(fs, view, &st);
		if (e)
			rc = e == -ENOENT ? DMFS_ERR_NOT_FOUND : DMFS_ERR_IO;
		else if (!S_ISDIR(st.st_mode))
			rc = DMFS_ERR_NOT_DIR;
	}
	if (rc)
		snprintf(msg, msgsz, "view=%s: %s", view,
			 rc == DMFS_ERR_NOT_FOUND
			     ? "no such snapshot, version or directory"
			     : dmfs_strerror(rc));
	return rc;
}
