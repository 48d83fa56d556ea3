/*
 * fs.h - the filesystem: what a mount holds and how a FUSE path is split
 * into the namespaces that serve it (fs.c dispatches; fs_live.c serves the
 * bucket, fs_ctl.c the control files in .dmfs/).
 */
#ifndef DMFS_FS_H
#define DMFS_FS_H

#define FUSE_USE_VERSION 312
#include <fuse.h>

#include <pthread.h>
#include <stdatomic.h>

#include "dmfs/bcache.h"
#include "dmfs/dircache.h"
#include "dmfs/options.h"
#include "dmfs/reader.h"
#include "dmfs/store.h"

/* Everything one mount owns.  Built in main before the FUSE loop starts,
 * read-only afterwards (the parts have their own locks). */
struct dmfs_fs {
	const struct dmfs_options *opts; /* borrowed */
	struct dmfs_store *store;	 /* owned by main */
	struct bcache *bc;		 /* owned by main */
	struct dircache *dc;		 /* owned by main */
	struct reader *rd;		 /* owned by main */
	char *store_uri;		 /* "s3://bucket/prefix" */
	char *live_base;		 /* key prefix of the view, "" or "a/b" */
	int view_is_live;		 /* mount root is inside live/ */
	uid_t uid;
	gid_t gid;
	double started_at;		 /* CLOCK_MONOTONIC seconds */
	time_t mounted_at;		 /* wall clock */
	char *mountpoint;		 /* absolute; owned by main */
	atomic_int tuned;		 /* read-ahead raised once */
	pthread_mutex_t handles_lock;
	struct fs_handle *handles;	 /* open files; protected by
					    handles_lock */
};

/* The FUSE operation table.  private_data must be a struct dmfs_fs. */
extern const struct fuse_operations dmfs_fuse_ops;

enum fs_ns { NS_NONE, NS_ROOT, NS_LIVE, NS_CTL };

/* The file handle of every open file (fi->fh points at one). */
struct fs_handle {
	struct fs_handle *prev, *next;	/* fs->handles; protected by
					   fs->handles_lock */
	enum fs_ns ns;
	struct rd_file *rf;	/* NS_LIVE */
	char *data;		/* NS_CTL: the content, owned */
	size_t len;
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

/* --- fs_ctl.c: .dmfs/ --- */
int fs_ctl_getattr(struct dmfs_fs *fs, const char *name, struct stat *st);
int fs_ctl_readdir(struct dmfs_fs *fs, const char *name, void *buf,
		   fuse_fill_dir_t filler);
int fs_ctl_open(struct dmfs_fs *fs, const char *name,
		struct fuse_file_info *fi, struct fs_handle *h);
/* The status JSON.  Caller frees with free().  NULL on failure. */
char *fs_ctl_status_json(struct dmfs_fs *fs);

/* Raise the kernel read-ahead of the mount at mountpoint to kb KiB (root
 * only; silently nothing otherwise).  In cli_mount.c. */
void fs_tune_read_ahead(const char *mountpoint, int kb);

/* --- fs.c helpers shared by the namespaces --- */
void fs_fill_dir_stat(struct dmfs_fs *fs, struct stat *st, mode_t perm);
void fs_fill_file_stat(struct dmfs_fs *fs, struct stat *st, mode_t perm,
		       uint64_t size, int64_t mtime);

#endif
