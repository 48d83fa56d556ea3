/*
 * fs.h - the filesystem: what a mount holds and how a FUSE path is split
 * into the namespaces that serve it (fs.c dispatches; fs_live.c serves the
 * bucket, fs_version.c snapshots/ and datasets/, fs_ctl.c the control
 * files in .dmfs/).
 */
#ifndef DMFS_FS_H
#define DMFS_FS_H

#define FUSE_USE_VERSION 312
#include <fuse.h>

#include <pthread.h>
#include <stdatomic.h>

#include "dmfs/bcache.h"
#include "dmfs/capture.h"
#include "dmfs/catalog.h"
#include "dmfs/dircache.h"
#include "dmfs/meta.h"
#include "dmfs/mindex.h"
#include "dmfs/options.h"
#include "dmfs/query.h"
#include "dmfs/reader.h"
#include "dmfs/stage.h"
#include "dmfs/store.h"

/* Everything one mount owns.  Built in main before the FUSE loop starts,
 * read-only afterwards (the parts have their own locks). */
struct dmfs_fs {
	const struct dmfs_options *opts; /* borrowed */
	struct dmfs_store *store;	 /* owned by main */
	struct bcache *bc;		 /* owned by main */
	struct dircache *dc;		 /* owned by main */
	struct reader *rd;		 /* owned by main */
	struct mindex *mx;		 /* manifest index; owned by main */
	struct catalog *cat;		 /* the refs; owned by main */
	struct stage *sg;		 /* files being written; owned by
					    main */
	char *store_uri;		 /* "s3://bucket/prefix" */
	char *view;			 /* the subtree mounted: "" for all,
					    "live/a", "datasets/x/v1"; no '/'
					    at either end */
	uid_t uid;
	gid_t gid;
	double started_at;		 /* CLOCK_MONOTONIC seconds */
	time_t mounted_at;		 /* wall clock */
	char *mountpoint;		 /* absolute; owned by main */
	atomic_int tuned;		 /* read-ahead raised once */
	pthread_mutex_t handles_lock;
	struct fs_handle *handles;	 /* open files; protected by
					    handles_lock */
	pthread_mutex_t err_lock;
	char last_error[1024];		 /* .dmfs/last-error; protected by
					    err_lock */
	/* metadata (fs_meta.c) and queries/ (fs_query.c) */
	struct meta *meta;		 /* owned by main; thread-safe */
	pthread_mutex_t meta_lock;	 /* one flush/refresh at a time */
	atomic_uint meta_gen;		 /* bumped on every change seen */
	pthread_t sync_tid;
	bool sync_running;
	pthread_mutex_t sync_lock;
	pthread_cond_t sync_cond;
	bool sync_stop;			 /* protected by sync_lock */
	struct fs_qcache *qc;		 /* query results; own lock */
};

/* The FUSE operation table.  private_data must be a struct dmfs_fs. */
extern const struct fuse_operations dmfs_fuse_ops;

enum fs_ns { NS_NONE, NS_ROOT, NS_LIVE, NS_CTL, NS_VER, NS_META, NS_QUERY };

struct fs_dirpos;
struct metaq_batch_parser;

/* The handle of every open file, and of directories in NS_VER (fi->fh
 * points at one).  Used by one operation at a time. */
struct fs_handle {
	struct fs_handle *prev, *next;	/* fs->handles; protected by
					   fs->handles_lock */
	enum fs_ns ns;
	struct rd_file *rf;	/* NS_LIVE, NS_VER files */
	struct stage_file *sf;	/* NS_LIVE files open for writing, or
				   read while staged: the staged copy */
	int writable;		/* NS_LIVE: opened for writing */
	char *data;		/* NS_CTL: the content, owned */
	size_t len;
	const char *ctl;	/* NS_CTL: the file's name (static) */
	char *wbuf;		/* NS_CTL written: an unfinished line;
				   NS_META, NS_QUERY, schema: the document
				   written so far; owned */
	size_t wlen, wcap;
	bool written;		/* a document was written, not applied */
	char *key;		/* NS_META: the directory; NS_QUERY: the
				   query name; owned */
	struct meta_batch *mb;	/* NS_META written: the batch so far and */
	struct metaq_batch_parser *mp; /* its parser; owned */
	struct fs_dirpos *dir;	/* NS_VER directories: readdir position */
};

/*
 * Free the handles of files still open when the FUSE loop ends: the kernel
 * sends RELEASE asynchronously, and an unmount can overtake it.  Call after
 * the loop, before the reader is freed.  Cannot fail.
 */
void fs_close_all(struct dmfs_fs *fs);

/* --- fs_live.c: the bucket --- */
int fs_live_getattr(struct dmfs_fs *fs, const char *key, struct stat *st);
int fs_live_readdir(struct dmfs_fs *fs, const char *key, void *buf,
		    fuse_fill_dir_t filler, enum fuse_readdir_flags flags);
int fs_live_open(struct dmfs_fs *fs, const char *key,
		 struct fuse_file_info *fi, struct fs_handle *h);
int fs_live_getxattr(struct dmfs_fs *fs, const char *key, const char *name,
		     char *value, size_t size);
int fs_live_listxattr(struct dmfs_fs *fs, const char *key, char *list,
		      size_t size);

/*
 * --- fs_attr.c: modes, owners, times and symlinks of live/, stored as
 * s3fs stores them (object metadata) ---
 */
/* The stat of key, listed as e: the listing's size, with the mode,
 * owner and mtime stored on the object (asked for once per ETag) or the
 * defaults.  Cannot fail (without an answer: the defaults). */
void fs_attr_stat(struct dmfs_fs *fs, const char *key,
		  const struct dc_entry *e, struct stat *st);
/* The stat of key's staged copy (size, mtime as stage_lookup has them). */
void fs_attr_staged_stat(struct dmfs_fs *fs, const char *key, uint64_t size,
			 int64_t mtime, struct stat *st);
/* Before a directory's entries are stat'ed: ask for every attribute not
 * known yet, in parallel.  Cannot fail. */
void fs_attr_prefetch(struct dmfs_fs *fs, const char *dir,
		      const struct dc_listing *l);
/* This mount stored attributes a on key ("a/b"; "a/b/" for a
 * directory's marker, etag NULL), now with etag: remember them. */
void fs_attr_note(struct dmfs_fs *fs, const char *key, const char *etag,
		  const struct dmfs_attrs *a);
/* key (as for fs_attr_note) was removed or renamed. */
void fs_attr_forget(struct dmfs_fs *fs, const char *key);
/* The attributes of something new this mount makes: mode (type bits
 * included), the caller's uid and gid, mtime now.  Cannot fail. */
void fs_attr_new(struct dmfs_fs *fs, mode_t mode, struct dmfs_attrs *a);
/* The attributes st shows, only those in have (DMFS_ATTR_*; the others
 * zero), for an object that is to keep what the mount showed of it.
 * Cannot fail. */
void fs_attr_from_stat(const struct stat *st, unsigned have,
		       struct dmfs_attrs *a);
/* h: the open file of fchmod, fchown, futimens (may be NULL). */
int fs_live_chmod(struct dmfs_fs *fs, const char *key, mode_t mode,
		  struct fs_handle *h);
int fs_live_chown(struct dmfs_fs *fs, const char *key, uid_t uid, gid_t gid,
		  struct fs_handle *h);
int fs_live_utimens(struct dmfs_fs *fs, const char *key,
		    const struct timespec tv[2], struct fs_handle *h);
int fs_live_symlink(struct dmfs_fs *fs, const char *target, const char *key);
int fs_live_readlink(struct dmfs_fs *fs, const char *key, char *buf,
		     size_t size);

/*
 * --- fs_write.c: what changes live/ (keys as for fs_live_*) ---
 * Each returns 0 (or a byte count) or -errno.
 */
int fs_live_create(struct dmfs_fs *fs, const char *key, mode_t mode,
		   struct fuse_file_info *fi, struct fs_handle *h);
/* open(2) for writing (O_WRONLY, O_RDWR, O_TRUNC). */
int fs_live_open_write(struct dmfs_fs *fs, const char *key,
		       struct fuse_file_info *fi, struct fs_handle *h);
int fs_live_write(struct dmfs_fs *fs, struct fs_handle *h, const char *buf,
		  size_t size, off_t off);
int fs_live_read_staged(struct fs_handle *h, char *buf, size_t size,
			off_t off);
/* truncate(2) or ftruncate(2) (h not NULL). */
int fs_live_truncate(struct dmfs_fs *fs, const char *key, off_t size,
		     struct fs_handle *h);
/* flush (each close(2)) and fsync: upload and wait. */
int fs_live_flush(struct dmfs_fs *fs, struct fs_handle *h);
int fs_live_unlink(struct dmfs_fs *fs, const char *key);
int fs_live_mkdir(struct dmfs_fs *fs, const char *key, mode_t mode);
int fs_live_rmdir(struct dmfs_fs *fs, const char *key);
int fs_live_rename(struct dmfs_fs *fs, const char *from, const char *to,
		   unsigned int flags);

/*
 * --- fs_version.c: snapshots/ and datasets/, read-only ---
 * path is relative to the whole tree (view applied), e.g. "datasets",
 * "datasets/vmeval/latest", "snapshots/ID/a/b.txt".
 */
int fs_version_getattr(struct dmfs_fs *fs, const char *path, struct stat *st);
/* off as FUSE gives it; h (may be NULL) keeps the position between
 * calls. */
int fs_version_readdir(struct dmfs_fs *fs, const char *path, void *buf,
		       fuse_fill_dir_t filler, off_t off, struct fs_handle *h);
int fs_version_open(struct dmfs_fs *fs, const char *path,
		    struct fuse_file_info *fi, struct fs_handle *h);
int fs_version_readlink(struct dmfs_fs *fs, const char *path, char *buf,
			size_t size);
int fs_version_getxattr(struct dmfs_fs *fs, const char *path,
			const char *name, char *value, size_t size);
int fs_version_listxattr(struct dmfs_fs *fs, const char *path, char *list,
			 size_t size);
/* Free a readdir position.  NULL-safe. */
void fs_version_dirpos_free(struct fs_dirpos *d);
/*
 * After an explicit refresh: make the kernel forget the names it cached
 * in snapshots/ and datasets/ (a name looked up before it existed stays
 * "missing" for negative_timeout otherwise).  Only from an operation on
 * another file (a control file).  Cannot fail.
 */
void fs_version_invalidate(struct dmfs_fs *fs);
/*
 * A view inside snapshots/ or datasets/ (in place, viewsz bytes): its
 * `latest` component is replaced by the name it points at now (a view is
 * pinned), and it must be a directory.  0, or DMFS_ERR_* with msg.
 */
int fs_version_resolve_view(struct dmfs_fs *fs, char *view, size_t viewsz,
			    char *msg, size_t msgsz)
	__attribute__((warn_unused_result));

/* --- fs_ctl.c: .dmfs/ --- */
int fs_ctl_getattr(struct dmfs_fs *fs, const char *name, struct stat *st);
int fs_ctl_readdir(struct dmfs_fs *fs, const char *name, void *buf,
		   fuse_fill_dir_t filler);
int fs_ctl_open(struct dmfs_fs *fs, const char *name,
		struct fuse_file_info *fi, struct fs_handle *h);
/* truncate(2) of a control file: 0 for a writable one (a shell's ">"
 * truncates before writing), else -EROFS or -ENOENT. */
int fs_ctl_truncate(struct dmfs_fs *fs, const char *name);
/* write(2) to an open control file: each complete line is executed now;
 * the byte count or -errno of the first failing line. */
int fs_ctl_write(struct dmfs_fs *fs, struct fs_handle *h, const char *buf,
		 size_t size);
/* flush (each close(2)): an unfinished last line is executed.  0 or
 * -errno. */
int fs_ctl_flush(struct dmfs_fs *fs, struct fs_handle *h);
/* The status JSON.  Caller frees with free().  NULL on failure. */
char *fs_ctl_status_json(struct dmfs_fs *fs);
/*
 * A write to a control file failed: the reason is logged and kept for
 * .dmfs/last-error (any namespace's control files use this).  Cannot
 * fail.
 */
void fs_set_last_error(struct dmfs_fs *fs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The same for a refusal caused by the caller (a name that cannot be a
 * key): kept for .dmfs/last-error, logged at warning level only.  Cannot
 * fail. */
void fs_set_last_refusal(struct dmfs_fs *fs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The same, not logged: for an error the module where it happened has
 * logged already (once, where the same error would otherwise be logged
 * at every call).  Cannot fail. */
void fs_set_last_error_quiet(struct dmfs_fs *fs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Raise the kernel read-ahead of the mount at mountpoint to kb KiB (root
 * only; silently nothing otherwise).  In cli_mount.c. */
void fs_tune_read_ahead(const char *mountpoint, int kb);

/* --- fs_meta.c: user.* xattrs, DIR/.dmfs.meta, sync with the bucket --- */
/* Start / stop the thread that sends changes and merges others'. */
int fs_meta_start(struct dmfs_fs *fs);
void fs_meta_stop(struct dmfs_fs *fs);
/* Send queued changes; with refresh also merge other writers' logs.
 * 0 or DMFS_ERR_* with msg. */
int fs_meta_sync(struct dmfs_fs *fs, bool refresh, char *msg, size_t msgsz);
int fs_meta_getxattr(struct dmfs_fs *fs, const char *key, const char *field,
		     char *value, size_t size);
/* Append "user.FIELD\0" of each field to buf (*len bytes used of cap). */
int fs_meta_listxattr(struct dmfs_fs *fs, const char *key, char *buf,
		      size_t *len, size_t cap);
int fs_meta_setxattr(struct dmfs_fs *fs, const char *key, const char *field,
		     const char *value, size_t size, int flags);
int fs_meta_removexattr(struct dmfs_fs *fs, const char *key,
			const char *field);
/* A live file or directory was renamed (to) or deleted (to NULL): its
 * labels (those of every file under it) follow, as s3fs's object metadata
 * would.  A failure is logged; the rename or unlink stands.  Cannot
 * fail. */
void fs_meta_moved(struct dmfs_fs *fs, const char *from, const char *to);
/* DIR/.dmfs.meta (dir: the live key of DIR, "" at the top). */
int fs_meta_ctl_getattr(struct dmfs_fs *fs, const char *dir, struct stat *st);
int fs_meta_ctl_open(struct dmfs_fs *fs, const char *dir,
		     struct fuse_file_info *fi, struct fs_handle *h);
/* Parse the complete rows of a write (a bad row fails it: EINVAL). */
int fs_meta_ctl_write(struct dmfs_fs *fs, struct fs_handle *h,
		      const char *buf, size_t size, off_t off);
/* Apply what was written (all or nothing).  0 or -errno. */
int fs_meta_ctl_flush(struct dmfs_fs *fs, struct fs_handle *h);
/* Free what an NS_META handle owns.  NULL-safe parts; cannot fail. */
void fs_meta_ctl_release(struct fs_handle *h);
/* Rows of tree spec matching q (NULL: all) as JSON Lines into *out
 * (caller frees).  0 or -errno (reason in .dmfs/last-error). */
int fs_meta_export(struct dmfs_fs *fs, const char *spec, const struct query *q,
		   bool with_auto, char **out, size_t *len);
/* .dmfs/schema: the text (caller frees; NULL on ENOMEM) and a new one. */
char *fs_meta_schema_text(struct dmfs_fs *fs);
int fs_meta_schema_apply(struct dmfs_fs *fs, const char *text, char *msg,
			 size_t msgsz);
/* Append a write at off to a whole-document control file (written in
 * order, at most max bytes).  The byte count or -errno. */
int fs_doc_append(struct fs_handle *h, const char *buf, size_t size,
		  off_t off, size_t max);
/* What captures and queries of this mount run in (borrows fs). */
struct capture_env fs_capture_env(struct dmfs_fs *fs);

/* --- fs_query.c: queries/ (sub: the path inside it, "" for itself) --- */
int fs_query_init(struct dmfs_fs *fs);
void fs_query_free(struct dmfs_fs *fs);
int fs_query_getattr(struct dmfs_fs *fs, const char *sub, struct stat *st);
int fs_query_readdir(struct dmfs_fs *fs, const char *sub, void *buf,
		     fuse_fill_dir_t filler);
int fs_query_open(struct dmfs_fs *fs, const char *sub,
		  struct fuse_file_info *fi, struct fs_handle *h);
int fs_query_write(struct dmfs_fs *fs, struct fs_handle *h, const char *buf,
		   size_t size, off_t off);
int fs_query_flush(struct dmfs_fs *fs, struct fs_handle *h);
int fs_query_truncate(struct dmfs_fs *fs, const char *sub);
int fs_query_mkdir(struct dmfs_fs *fs, const char *sub);
/* The live key of a matching file in a query directory (its xattrs are
 * the live file's): 0, or -ENODATA for anything else, or -errno. */
int fs_query_file_key(struct dmfs_fs *fs, const char *sub, char *key,
		      size_t keysz);
int fs_query_rmdir(struct dmfs_fs *fs, const char *sub);

/* --- fs.c helpers shared by the namespaces --- */
/* An xattr answer: the size when size is 0, -ERANGE when it does not fit,
 * else len bytes of val copied to out. */
int fs_xattr_reply(const void *val, size_t len, char *out, size_t size);
void fs_fill_dir_stat(struct dmfs_fs *fs, struct stat *st, mode_t perm);
void fs_fill_file_stat(struct dmfs_fs *fs, struct stat *st, mode_t perm,
		       uint64_t size, int64_t mtime);

#endif
