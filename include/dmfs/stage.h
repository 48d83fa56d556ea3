/*
 * stage.h - files being written through live/: kept in staging files under
 * CACHE_DIR/staging/ and uploaded on flush, fsync and close.
 *
 * A staged file is a local file (NAME.data) plus a small JSON sidecar
 * (NAME.json: store, key, the ETag the object had when it was opened, and
 * a state).  While a process has a staged file open it holds an flock on
 * the data file, so a mount that starts later (stage_recover) can tell a
 * live writer from the leftovers of a process that died.
 *
 * States in the sidecar:
 *   "clean"    the bucket has exactly these bytes (nothing to do)
 *   "dirty"    written and not yet uploaded: uploaded by stage_recover
 *   "failed"   the last upload was refused; kept for the user, not retried
 *   "stale"    the object changed in the bucket since it was opened: the
 *              upload was refused with ESTALE; kept for the user
 *
 * A copy in which a write failed (a full cache disk: ENOSPC) has no
 * sidecar: it is never uploaded, by this mount or a later one, and its
 * last close removes it.
 */
#ifndef DMFS_STAGE_H
#define DMFS_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "dmfs/store.h"

struct stage_opts {
	const char *dir;	   /* the staging directory; borrowed */
	const char *store_uri;	   /* recorded in sidecars; borrowed */
	uint64_t multipart_size;   /* above this, multipart upload */
	int parallel_uploads;	   /* parts in flight at once */
	bool stream_upload;	   /* upload while writing (upload_stream.c) */
	struct mindex *memo;	   /* borrowed, may be NULL: uploads are
				      remembered there as (key, ETag) ->
				      sha256, so a snapshot never reads
				      them back to hash them */
};

struct stage_stats {
	uint64_t pending;	/* staged files with bytes not in the bucket */
	uint64_t bytes_pending; /* their sizes */
	uint64_t done;		/* uploads completed by this mount */
	uint64_t failed;	/* uploads that failed */
	uint64_t streamed;	/* of done: uploads whose parts went while
				   the file was being written */
};

/* How stage_open starts a staged file. */
enum stage_how {
	STAGE_EXISTING = 0, /* the object's bytes (downloaded now) */
	STAGE_EMPTY = 1,    /* an empty file (create, O_TRUNC) */
	STAGE_NEW = 2,	    /* an empty file where the caller's listing
			       has no object: no HEAD to learn its ETag;
			       one that appears before the upload makes
			       it ESTALE */
};

struct mindex;
struct stage;
struct stage_file;

/* st is borrowed and must outlive the stage.  Creates o->dir.  Caller
 * frees with stage_free. */
int stage_new(struct dmfs_store *st, const struct stage_opts *o,
	      struct stage **out) __attribute__((warn_unused_result));
/* Frees the table; staged files still open are closed (and kept on disk
 * when dirty, for the next mount).  NULL-safe. */
void stage_free(struct stage *sg);

/*
 * Open the staged copy of key.  When key is staged already (open through
 * another descriptor), that copy is shared (and emptied when how is
 * STAGE_EMPTY or STAGE_NEW).  Otherwise a new staged file is made; for
 * STAGE_EXISTING the object is downloaded into it first (missing: empty).
 * The ETag of the object now (STAGE_NEW: none) is recorded for the
 * stale-writer check.  Caller releases
 * with stage_close.
 */
int stage_open(struct stage *sg, const char *key, enum stage_how how,
	       struct stage_file **out) __attribute__((warn_unused_result));
/*
 * Take another reference to key's staged copy when there is one (a reader
 * opening a file being written).  1 with *out set (caller releases with
 * stage_close), 0 when key is not staged.
 */
int stage_find(struct stage *sg, const char *key, struct stage_file **out);
/* Drop a reference.  The last one removes the staged files when clean;
 * a dirty, failed or stale copy stays on disk (logged).  NULL-safe. */
void stage_close(struct stage_file *f);

/* 0 or DMFS_ERR_* (DMFS_ERR_NOSPC for a full disk; the first failure of
 * a copy is logged).  After a failure the copy is broken: later writes
 * and every stage_sync return the same error, and nothing is uploaded,
 * until stage_truncate cuts the file at or before the failed offset. */
int stage_write(struct stage_file *f, const void *buf, size_t n,
		uint64_t off) __attribute__((warn_unused_result));
/* *got is short only at end of file. */
int stage_read(struct stage_file *f, void *buf, size_t n, uint64_t off,
	       size_t *got) __attribute__((warn_unused_result));
int stage_truncate(struct stage_file *f, uint64_t size)
	__attribute__((warn_unused_result));
/*
 * chmod, chown, utimens of a staged copy: the attributes a has replace
 * f's (a's mtime becomes the copy's).  *pending is 1 when the copy has
 * bytes still to upload (the attributes go with them), 0 when it is clean:
 * then the caller changes the object's metadata in the bucket itself (f
 * keeps the attributes for later uploads).  0 or DMFS_ERR_*.
 */
int stage_set_attrs(struct stage_file *f, const struct dmfs_attrs *a,
		    int *pending) __attribute__((warn_unused_result));
/* Attributes a new staged copy lacks (a new file's mode and owner).
 * Cannot fail. */
void stage_default_attrs(struct stage_file *f, const struct dmfs_attrs *a);
/* The attributes an upload of key's staged copy would store (mtime
 * included) when key is staged (1), else 0. */
int stage_lookup_attrs(struct stage *sg, const char *key,
		       struct dmfs_attrs *out);
/* The key f is staged for, into buf (truncated to n).  Cannot fail. */
void stage_key(struct stage_file *f, char *buf, size_t n);
/* Size and modification time of a staged copy.  Cannot fail. */
void stage_attr(struct stage_file *f, uint64_t *size, int64_t *mtime);

/*
 * Upload the staged copy when it has bytes the bucket has not (flush,
 * fsync, close), and wait.  On success out (may be NULL) receives the
 * key uploaded to, the new object's size, ETag and mtime (caller frees
 * with dmfs_obj_info_clear; out->key is NULL when nothing was sent).  DMFS_ERR_STALE
 * when the object changed in the bucket since it was opened (the copy is
 * kept); the error of a failed stage_write when the copy is broken
 * (nothing sent); any other error leaves the copy dirty and the old
 * object intact.
 */
int stage_sync(struct stage_file *f, struct dmfs_obj_info *out)
	__attribute__((warn_unused_result));

/* Size and mtime of key's staged copy, when key is staged (1), else 0. */
int stage_lookup(struct stage *sg, const char *key, uint64_t *size,
		 int64_t *mtime);
/* Whether any staged key starts with prefix ("a/b/"). */
int stage_has_prefix(struct stage *sg, const char *prefix);
/* unlink(2) of key while open: the staged copy is no longer key's and is
 * never uploaded; open descriptors keep reading and writing it. */
void stage_forget(struct stage *sg, const char *key);
/*
 * rename(2) of a staged key: the copy now belongs to `to` (which it will
 * replace on upload, whatever `to` held).  When from was staged, *out
 * is a new reference to the copy (marked dirty; caller releases with
 * stage_close, also on error), else NULL.  0 or DMFS_ERR_*.
 */
int stage_rename(struct stage *sg, const char *from, const char *to,
		 struct stage_file **out);

/*
 * At mount: upload what a dead process left dirty for this store (logged
 * per file); leave failed and stale copies (logged with their paths).
 * *recovered counts the uploads.  0 or the first error (the rest is still
 * tried).
 */
int stage_recover(struct stage *sg, int *recovered)
	__attribute__((warn_unused_result));

/* Counters for .dmfs/status.  Cannot fail. */
void stage_get_stats(struct stage *sg, struct stage_stats *out);

#endif
