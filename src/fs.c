/*
 * fs.c - the FUSE operations: split each path into its namespace and hand
 * it to fs_live.c / fs_write.c, fs_version.c or fs_ctl.c.  Errors from the
 * lower layers are turned into errno values at this boundary only
 * (dmfs_err_to_errno, in the namespace files).  live/ takes writes
 * (fs_write.c; EROFS with -o ro); snapshots/ and datasets/ are read-only
 * (EROFS); in .dmfs/ only the control files take writes.
 *
 * A view (-o view=PATH) mounts a subtree: a FUSE path is the view joined
 * with the path, then split as from the top.  .dmfs/ stays at the mount
 * root whatever the view.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <linux/limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "dmfs/fs.h"
#include "dmfs/keyname.h"
#include "dmfs/log.h"

#define CTL_DIR ".dmfs"
#define LIVE_DIR "live"
#define SNAP_DIR "snapshots"
#define DATA_DIR "datasets"
#define QUERY_DIR "queries"
#define META_CTL ".dmfs.meta"

static struct dmfs_fs *ctx_fs(void)
{
	struct dmfs_fs *fs = fuse_get_context()->private_data;
	/* The first operation runs after FUSE_INIT has been answered: only
	 * now does a larger kernel read-ahead stick (see cli_mount.c). */
	if (!atomic_load_explicit(&fs->tuned, memory_order_relaxed) &&
	    !atomic_exchange(&fs->tuned, 1) && fs->mountpoint)
		fs_tune_read_ahead(fs->mountpoint, fs->opts->read_ahead_kb);
	return fs;
}

void fs_fill_dir_stat(struct dmfs_fs *fs, struct stat *st, mode_t perm)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFDIR | perm;
	st->st_nlink = 2;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 4096;
	/* S3 has no directory times: show when the mount started. */
	st->st_mtim.tv_sec = fs->mounted_at;
	st->st_ctim.tv_sec = fs->mounted_at;
	st->st_atim.tv_sec = fs->mounted_at;
}

void fs_fill_file_stat(struct dmfs_fs *fs, struct stat *st, mode_t perm,
		       uint64_t size, int64_t mtime)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | perm;
	st->st_nlink = 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	st->st_blksize = (blksize_t)fs->opts->block_size;
	st->st_mtim.tv_sec = mtime;
	st->st_ctim.tv_sec = mtime;
	st->st_atim.tv_sec = mtime;
}

int fs_xattr_reply(const void *val, size_t len, char *out, size_t size)
{
	if (len > XATTR_SIZE_MAX)
		return -E2BIG; /* the kernel would refuse it anyway */
	if (size == 0)
		return (int)len;
	if (size < len)
		return -ERANGE;
	memcpy(out, val, len);
	return (int)len;
}

/* Whether path is the directory top or inside it. */
static int under(const char *path, const char *top)
{
	size_t n = strlen(top);
	return !strncmp(path, top, n) && (path[n] == '\0' || path[n] == '/');
}

/*
 * Split a FUSE path.  For NS_LIVE, `sub` receives the object key (no
 * leading or trailing '/'); for NS_VER the path from the top
 * ("datasets/x/v1/a"); for NS_CTL the name inside .dmfs/.  Returns the
 * namespace, NS_NONE for a name that does not exist.
 */
static enum fs_ns resolve(struct dmfs_fs *fs, const char *path, char *sub,
			  size_t subsz)
{
	int n;

	sub[0] = '\0';
	while (path[0] == '/')
		path++;
	if (under(path, CTL_DIR)) {
		const char *rest = path + strlen(CTL_DIR);
		snprintf(sub, subsz, "%s", *rest ? rest + 1 : "");
		return NS_CTL;
	}
	n = snprintf(sub, subsz, "%s%s%s", fs->view,
		     *fs->view && *path ? "/" : "", path);
	if (n < 0 || (size_t)n >= subsz)
		return NS_NONE;
	if (!*sub)
		return NS_ROOT;
	if (under(sub, SNAP_DIR) || under(sub, DATA_DIR))
		return NS_VER;
	if (under(sub, QUERY_DIR)) {
		const char *q = sub + strlen(QUERY_DIR);
		memmove(sub, *q ? q + 1 : q, strlen(*q ? q + 1 : q) + 1);
		return NS_QUERY;
	}
	if (!under(sub, LIVE_DIR))
		return NS_NONE;
	const char *rest = sub + strlen(LIVE_DIR);
	if (*rest == '/')
		rest++;
	memmove(sub, rest, strlen(rest) + 1);
	/* The store's own bookkeeping is not part of live/. */
	if (under(sub, CTL_DIR))
		return NS_NONE;
	/* DIR/.dmfs.meta: sub becomes DIR's key. */
	char *last = strrchr(sub, '/');
	if (!strcmp(last ? last + 1 : sub, META_CTL)) {
		if (last)
			*last = '\0';
		else
			sub[0] = '\0';
		return NS_META;
	}
	return NS_LIVE;
}

#define KEYBUF 4096

/*
 * The one check of a name being created in live/ (create, mkdir, the
 * target of rename, symlink): a key S3 could hold (keyname.c), the same
 * for every store kind.  0, or -errno with the reason kept for
 * .dmfs/last-error.
 */
static int live_new_key(struct dmfs_fs *fs, const char *key)
{
	char msg[512];
	int rc = keyname_check_new(key, msg, sizeof(msg));

	if (!rc)
		return 0;
	fs_set_last_refusal(fs, "live/: %s", msg);
	return -dmfs_err_to_errno(rc);
}

static int op_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	struct dmfs_fs *fs = ctx_fs();
	char sub[KEYBUF];

	switch (resolve(fs, path, sub, sizeof(sub))) {
	case NS_ROOT:
		fs_fill_dir_stat(fs, st, 0755);
		return 0;
	case NS_LIVE:
		return fs_live_getattr(fs, sub, st);
	case NS_VER:
		return fs_version_getattr(fs, sub, st);
	case NS_CTL:
		return fs_ctl_getattr(fs, sub, st);
	case NS_META:
		return fs_meta_ctl_getattr(fs, sub, st);
	case NS_QUERY:
		return fs_query_getattr(fs, sub, st);
	default:
		return -ENOENT;
	}
}

static int op_readlink(const char *path, char *buf, size_t size)
{
	struct dmfs_fs *fs = ctx_fs();
	char sub[KEYBUF];

	switch (resolve(fs, path, sub, sizeof(sub))) {
	case NS_LIVE:
		return fs_live_readlink(fs, sub, buf, size);
	case NS_VER:
		return fs_version_readlink(fs, sub, buf, size);
	default:
		return -EINVAL;
	}
}

/* Whether a path in namespace ns may be changed. */
static int live_writable(struct dmfs_fs *fs, enum fs_ns ns)
{
	return ns == NS_LIVE && !fs->opts->ro;
}

/* The errno for a change to a path that is not in a writable live/. */
static int not_writable(enum fs_ns ns)
{
	return ns == NS_NONE ? -ENOENT : -EROFS;
}

static void handle_link(struct dmfs_fs *fs, struct fs_handle *h)
{
	pthread_mutex_lock(&fs->handles_lock);
	h->next = fs->handles;
	if (h->next)
		h->next->prev = h;
	fs->handles = h;
	pthread_mutex_unlock(&fs->handles_lock);
}

static void handle_unlink(struct dmfs_fs *fs, struct fs_handle *h)
{
	pthread_mutex_lock(&fs->handles_lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		fs->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&fs->handles_lock);
}

static void handle_free(struct fs_handle *h)
{
	reader_close(h->rf);
	stage_close(h->sf);
	fs_version_dirpos_free(h->dir);
	free(h->data);
	free(h->wbuf);
	free(h->key);
	fs_meta_ctl_release(h);
	free(h);
}

void fs_close_all(struct dmfs_fs *fs)
{
	pthread_mutex_lock(&fs->handles_lock);
	struct fs_handle *h = fs->handles;
	fs->handles = NULL;
	pthread_mutex_unlock(&fs->handles_lock);
	while (h) {
		struct fs_handle *next = h->next;
		handle_free(h);
		h = next;
	}
}

/* Directories of versions keep their readdir position in a handle; the
 * others need none (fh 0). */
static int op_opendir(const char *path, struct fuse_file_info *fi)
{
	struct dmfs_fs *fs = ctx_fs();
	char sub[KEYBUF];
	struct fs_handle *h;

	fi->fh = 0;
	if (resolve(fs, path, sub, sizeof(sub)) != NS_VER)
		return 0;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->ns = NS_VER;
	handle_link(fs, h);
	fi->fh = (uint64_t)(uintptr_t)h;
	return 0;
}

static int op_releasedir(const char *path, struct fuse_file_info *fi)
{
	struct dmfs_fs *fs = ctx_fs();
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;

	if (h) {
		handle_unlink(fs, h);
		handle_free(h);
	}
	return 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
		      off_t offset, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	struct dmfs_fs *fs = ctx_fs();
	struct fs_handle *h = fi ? (struct fs_handle *)(uintptr_t)fi->fh : NULL;
	char sub[KEYBUF];
	struct stat st;

	switch (resolve(fs, path, sub, sizeof(sub))) {
	case NS_ROOT:
		filler(buf, ".", NULL, 0, 0);
		filler(buf, "..", NULL, 0, 0);
		fs_fill_dir_stat(fs, &st, 0755);
		filler(buf, LIVE_DIR, &st, 0, FUSE_FILL_DIR_PLUS);
		/* as fs_version_getattr has them, without asking the store */
		fs_fill_dir_stat(fs, &st, 0555);
		filler(buf, SNAP_DIR, &st, 0, FUSE_FILL_DIR_PLUS);
		filler(buf, DATA_DIR, &st, 0, FUSE_FILL_DIR_PLUS);
		fs_fill_dir_stat(fs, &st, 0755);
		filler(buf, QUERY_DIR, &st, 0, FUSE_FILL_DIR_PLUS);
		/* .dmfs is hidden on purpose: open by name only. */
		return 0;
	case NS_LIVE:
		return fs_live_readdir(fs, sub, buf, filler, flags);
	case NS_VER:
		return fs_version_readdir(fs, sub, buf, filler, offset, h);
	case NS_CTL:
		return fs_ctl_readdir(fs, sub, buf, filler);
	case NS_QUERY:
		return fs_query_readdir(fs, sub, buf, filler);
	case NS_META:
		return -ENOTDIR;
	default:
		return -ENOENT;
	}
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	struct dmfs_fs *fs = ctx_fs();
	char sub[KEYBUF];
	struct fs_handle *h;
	int rc;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->ns = resolve(fs, path, sub, sizeof(sub));
	int writing = (fi->flags & O_ACCMODE) != O_RDONLY ||
		      (fi->flags & O_TRUNC);
	/* Control files and live/ take writes (query dirs say which). */
	if (writing && h->ns != NS_CTL && h->ns != NS_QUERY &&
	    !(h->ns == NS_META && !fs->opts->ro) &&
	    !live_writable(fs, h->ns)) {
		rc = h->ns == NS_NONE ? -ENOENT : -EROFS;
		free(h);
		return rc;
	}
	switch (h->ns) {
	case NS_ROOT:
		rc = -EISDIR;
		break;
	case NS_LIVE:
		rc = writing ? fs_live_open_write(fs, sub, fi, h)
			     : fs_live_open(fs, sub, fi, h);
		break;
	case NS_VER:
		rc = fs_version_open(fs, sub, fi, h);
		break;
	case NS_CTL:
		rc = fs_ctl_open(fs, sub, fi, h);
		break;
	case NS_META:
		rc = fs_meta_ctl_open(fs, sub, fi, h);
		break;
	case NS_QUERY:
		rc = fs_query_open(fs, sub, fi, h);
		break;
	default:
		rc = -ENOENT;
	}
	if (rc) {
		handle_free(h);
		return rc;
	}
	handle_link(fs, h);
	fi->fh = (uint64_t)(uintptr_t)h;
	return 0;
}

static int op_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	size_t got = 0;

	if (off < 0)
		return -EINVAL;
	if (h->sf)
		return fs_live_read_staged(h, buf, size, off);
	if (h->ns == NS_CTL || h->ns == NS_META ||
	    (h->ns == NS_QUERY && !h->rf)) {
		if ((size_t)off >= h->len)
			return 0;
		got = h->len - (size_t)off < size ? h->len - (size_t)off : size;
		memcpy(buf, h->data + off, got);
		return (int)got;
	}
	dmfs_log(DMFS_LOG_DEBUG, "read %s %zu@%lld", path, size,
		 (long long)off);
	int rc = reader_read(h->rf, buf, size, (uint64_t)off, &got);
	if (rc) {
		dmfs_log(DMFS_LOG_DEBUG, "read %s at %lld: %s", path,
			 (long long)off, dmfs_strerror(rc));
		return -dmfs_err_to_errno(rc);
	}
	return (int)got;
}

static int op_write(const char *path, const char *buf, size_t size,
		    off_t off, struct fuse_file_info *fi)
{
	struct dmfs_fs *fs = ctx_fs();
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;

	if (h && h->ns == NS_LIVE && h->writable)
		return fs_live_write(fs, h, buf, size, off);
	if (h && h->ns == NS_META)
		return fs_meta_ctl_write(fs, h, buf, size, off);
	if (h && h->ns == NS_QUERY)
		return fs_query_write(fs, h, buf, size, off);
	if (!h || h->ns != NS_CTL)
		return -EROFS;
	return fs_ctl_write(fs, h, buf, size);
}

static int op_flush(const char *path, struct fuse_file_info *fi)
{
	struct dmfs_fs *fs = ctx_fs();
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;

	if (h && h->ns == NS_LIVE)
		return fs_live_flush(fs, h);
	if (h && h->ns == NS_META)
		return fs_meta_ctl_flush(fs, h);
	if (h && h->ns == NS_QUERY)
		return fs_query_flush(fs, h);
	if (!h || h->ns != NS_CTL)
		return 0;
	return fs_ctl_flush(fs, h);
}

static int op_fsync(const char *path, int datasync,
		    struct fuse_file_info *fi)
{
	struct dmfs_fs *fs = ctx_fs();
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;

	if (h && h->ns == NS_LIVE)
		return fs_live_flush(fs, h);
	return 0;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct dmfs_fs *fs = ctx_fs();
	char sub[KEYBUF];
	struct fs_handle *h;
	enum fs_ns ns = resolve(fs, path, sub, sizeof(sub));
	int rc;

	if (!live_writable(fs, ns))
		return not_writable(ns);
	if ((rc = live_new_key(fs, sub)))
		return rc;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->ns = NS_LIVE;
	rc = fs_live_create(fs, sub, mode, fi, h);
	if (rc) {
		handle_free(h);
		return rc;
	}
	handle_link(fs, h);
	fi->fh = (uint64_t)(uintptr_t)h;
	return 0;
}

static int op_unlink(const char *path)
{
	struct dmfs_fs *fs = ctx_fs();
	char sub[KEYBUF];
	enum fs_ns ns = resolve(fs, path, sub, sizeof(sub));

	if (!live_writable(fs, ns))
		return not_writable(ns);
	int rc = fs_live_unlink(fs, sub);
	if (!rc)
		fs_meta_moved(fs, sub, NULL);
	return rc;
}

static int op_mkdir(const char *path, mode_t mode)
{
	struct dmfs_fs *fs = ctx_fs();
	char sub[KEYBUF];
	enum fs_ns ns = resolve(fs, path, sub, sizeof(sub));

	if (ns == NS_QUERY)
		return fs_query_mkdir(fs, sub);
	if (!live_writable(fs, ns))
		return ns == NS_NONE ? -EROFS : not_writable(ns);
	int rc = live_new_key(fs, sub);
	return rc ? rc : fs_live_mkdir(fs, sub, mode);
}

static int op_rmdir(const char *path)
{
	struct dmfs_fs *fs = ctx_fs();
	char sub[KEYBUF];
	enum fs_ns ns = resolve(fs, path, sub, sizeof(sub));

	if (ns == NS_QUERY)
		return fs_query_rmdir(fs, sub);
	if (!live_writable(fs, ns))
		return not_writable(ns);
	return fs_live_rmdir(fs, sub);
}

static int op_rename(const char *from, const char *to, unsigned int flags)
{
	struct dmfs_fs *fs = ctx_fs();
	char a[KEYBUF], b[KEYBUF];
	enum fs_ns na = resolve(fs, from, a, sizeof(a));
	enum fs_ns nb = resolve(fs, to, b, sizeof(b));

	if (!live_writable(fs, na))
		return not_writable(na);
	if (!live_writable(fs, nb))
		return nb == NS_NONE ? -EXDEV : not_writable(nb);
	int rc = live_new_key(fs, b);
	if (rc)
		return rc;
	rc = fs_live_rename(fs, a, b, flags);
	if (!rc)
		fs_meta_moved(fs, a, b);
	return rc;
}

/* The path of a change to a live/ file's attributes: 0 with sub set, or
 * -errno.  *h: the open file (fchmod, fchown, futimens), or NULL. */
static int live_attr_path(struct dmfs_fs *fs, const char *path, char *sub,
			  size_t subsz, struct fuse_file_info *fi,
			  struct fs_handle **h)
{
	enum fs_ns ns = resolve(fs, path, sub, subsz);
	struct fs_handle *fh = fi ? (struct fs_handle *)(uintptr_t)fi->fh
				  : NULL;

	if (!live_writable(fs, ns))
		return not_writable(ns);
	*h = fh && fh->ns == NS_LIVE && fh->writable ? fh : NULL;
	return 0;
}

static int op_chmod(const char *p, mode_t m, struct fuse_file_info *fi)
{
	struct dmfs_fs *fs = ctx_fs();
	char sub[KEYBUF];
	struct fs_handle *h;
	int rc = live_attr_path(fs, p, sub, sizeof(sub), fi, &h);
	return rc ? rc : fs_live_chmod(fs, sub, m, h);
}

static int op_chown(const char *p, uid_t u, gid_t g,
		    struct fuse_file_info *fi)
{
	struct dmfs_fs *fs = ctx_fs();
	char sub[KEYBUF];
	struct fs_handle *h;
	int rc = live_attr_path(fs, p, sub, sizeof(sub), fi, &h);
	return rc ? rc : fs_live_chown(fs, sub, u, g, h);
}

static int op_utimens(const char *p, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	struct dmfs_fs *fs = ctx_fs();
	char sub[KEYBUF];
	struct fs_handle *h;
	int rc = live_attr_path(fs, p, sub, sizeof(sub), fi, &h);
	return rc ? rc : fs_live_utimens(fs, sub, tv, h);
}

static int op_symlink(const char *target, const char *path)
{
	struct dmfs_fs *fs = ctx_fs();
	char sub[KEYBUF];
	enum fs_ns ns = resolve(fs, path, sub, sizeof(sub));

	if (!live_writable(fs, ns))
		return ns == NS_NONE ? -EROFS : not_writable(ns);
	int rc = live_new_key(fs, sub);
	return rc ? rc : fs_live_symlink(fs, target, sub);
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	struct dmfs_fs *fs = ctx_fs();
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	if (!h)
		return 0;
	handle_unlink(fs, h);
	handle_free(h);
	return 0;
}

static int op_truncate(const char *path, off_t size,
		       struct fuse_file_info *fi)
{
	struct dmfs_fs *fs = ctx_fs();
	char sub[KEYBUF];

	struct fs_handle *h = fi ? (struct fs_handle *)(uintptr_t)fi->fh
				 : NULL;
	enum fs_ns ns = resolve(fs, path, sub, sizeof(sub));

	/* A shell's ">" truncates a control file before writing to it. */
	if (ns == NS_CTL && size == 0)
		return fs_ctl_truncate(fs, sub);
	if (ns == NS_META && size == 0)
		return fs->opts->ro ? -EROFS : 0;
	if (ns == NS_QUERY && size == 0)
		return fs_query_truncate(fs, sub);
	if (live_writable(fs, ns))
		return fs_live_truncate(fs, sub, size,
					h && h->ns == NS_LIVE ? h : NULL);
	return not_writable(ns);
}

static int op_getxattr(const char *path, const char *name, char *value,
		       size_t size)
{
	struct dmfs_fs *fs = ctx_fs();
	char sub[KEYBUF];

	enum fs_ns ns = resolve(fs, path, sub, sizeof(sub));
	if (ns == NS_QUERY) {
		/* a match reads as the live file, labels included */
		char key[KEYBUF];
		int rc = fs_query_file_key(fs, sub, key, sizeof(key));
		if (rc)
			return rc;
		memcpy(sub, key, strlen(key) + 1);
		ns = NS_LIVE;
	}
	switch (ns) {
	case NS_LIVE:
		if (!strncmp(name, "user.", 5))
			return fs_meta_getxattr(fs, sub, name + 5, value, size);
		return fs_live_getxattr(fs, sub, name, value, size);
	case NS_VER:
		return fs_version_getxattr(fs, sub, name, value, size);
	default:
		return -ENODATA;
	}
}

#define XATTR_LIST_MAX_BYTES 65536

static int op_listxattr(const char *path, char *list, size_t size)
{
	struct dmfs_fs *fs = ctx_fs();
	char sub[KEYBUF];
	char *buf;
	size_t len;
	int rc;

	enum fs_ns ns = resolve(fs, path, sub, sizeof(sub));
	if (ns == NS_QUERY) {
		char key[KEYBUF];
		if (fs_query_file_key(fs, sub, key, sizeof(key)))
			return 0;
		memcpy(sub, key, strlen(key) + 1);
		ns = NS_LIVE;
	}
	switch (ns) {
	case NS_LIVE:
		break;
	case NS_VER:
		return fs_version_listxattr(fs, sub, list, size);
	default:
		return 0;
	}
	/* dmfs.* names, then the file's user.* fields */
	buf = malloc(XATTR_LIST_MAX_BYTES);
	if (!buf)
		return -ENOMEM;
	rc = fs_live_listxattr(fs, sub, buf, XATTR_LIST_MAX_BYTES);
	len = rc > 0 ? (size_t)rc : 0;
	if (rc >= 0)
		rc = fs_meta_listxattr(fs, sub, buf, &len,
				       XATTR_LIST_MAX_BYTES);
	if (rc >= 0)
		rc = fs_xattr_reply(buf, len, list, size);
	free(buf);
	return rc;
}

static int op_setxattr(const char *path, const char *name, const char *value,
		       size_t size, int flags)
{
	struct dmfs_fs *fs = ctx_fs();
	char sub[KEYBUF];
	enum fs_ns ns = resolve(fs, path, sub, sizeof(sub));

	if (ns != NS_LIVE || fs->opts->ro)
		return not_writable(ns);
	if (!strncmp(name, "user.", 5))
		return fs_meta_setxattr(fs, sub, name + 5, value, size, flags);
	/* dmfs.* are computed; other namespaces are not stored */
	return !strncmp(name, "dmfs.", 5) ? -EPERM : -ENOTSUP;
}

static int op_removexattr(const char *path, const char *name)
{
	struct dmfs_fs *fs = ctx_fs();
	char sub[KEYBUF];
	enum fs_ns ns = resolve(fs, path, sub, sizeof(sub));

	if (ns != NS_LIVE || fs->opts->ro)
		return not_writable(ns);
	if (!strncmp(name, "user.", 5))
		return fs_meta_removexattr(fs, sub, name + 5);
	return !strncmp(name, "dmfs.", 5) ? -EPERM : -ENODATA;
}

static int op_statfs(const char *path, struct statvfs *sv)
{
	struct dmfs_fs *fs = ctx_fs();
	memset(sv, 0, sizeof(*sv));
	/* A bucket has no size: report a large, mostly free filesystem so
	 * tools that check free space before copying do not refuse. */
	sv->f_bsize = (unsigned long)fs->opts->block_size;
	sv->f_frsize = (unsigned long)fs->opts->block_size;
	sv->f_blocks = 1ull << 30;
	sv->f_bfree = 1ull << 30;
	sv->f_bavail = 1ull << 30;
	sv->f_files = 1ull << 30;
	sv->f_ffree = 1ull << 30;
	sv->f_namemax = 255; /* KEYNAME_NAME_MAX: longer names are refused */
	return 0;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* Not ctx_fs(): read-ahead must be raised after INIT, not during. */
	struct dmfs_fs *fs = fuse_get_context()->private_data;
	double ttl = fs->opts->stat_ttl;

	cfg->use_ino = 0;
	/* One timeout for every path (the high-level API has no other):
	 * versions are immutable, but live/ is not. */
	cfg->entry_timeout = ttl;
	cfg->attr_timeout = ttl;
	cfg->negative_timeout = ttl < 1 ? ttl : 1;
	/* Page cache kept or dropped per open: keep_cache (fs_live.c,
	 * fs_version.c). */
	cfg->kernel_cache = 0;
	cfg->auto_cache = 0;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	return fs;
}

static int op_erofs_2path(const char *a, const char *b) { return -EROFS; }
static int op_erofs_mknod(const char *p, mode_t m, dev_t d) { return -EROFS; }

const struct fuse_operations dmfs_fuse_ops = {
	.init = op_init,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.statfs = op_statfs,
	.fsync = op_fsync,
	.mkdir = op_mkdir,
	.mknod = op_erofs_mknod,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.link = op_erofs_2path,
	.rename = op_rename,
	.chmod = op_chmod,
	.chown = op_chown,
	.truncate = op_truncate,
	.create = op_create,
	.setxattr = op_setxattr,
	.removexattr = op_removexattr,
	.utimens = op_utimens,
};
