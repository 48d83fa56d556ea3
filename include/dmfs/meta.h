/*
 * meta.h - the metadata table: one row per file path (relative to the
 * store root), typed user fields (mval.h), kept locally in LMDB and
 * shared through the bucket.
 *
 * Local: one LMDB environment per cache directory, CACHE_DIR/meta/ (apart
 * from the index and the block cache: a 1 000 000-row import is one long
 * write transaction that must not stall their writers).  Rows of many
 * stores live side by side, keyed by store.
 *
 * Shared: every applied batch is queued (in LMDB, so it survives kill -9)
 * and uploaded as one append-only log object
 *   .dmfs/meta/log/<YYYYMMDDTHHMMSS.uuuuuuZ>-<writer>-<seq>.jsonl
 * (never overwritten; unique by writer id), one JSON line per path of a
 * batch: the time it was made (µs), the writer id and user@host, the
 * path, and each changed field's new value and old one.  Every mount merges all log objects
 * deterministically: per (path, field) the change with the greatest
 * (time, writer id) wins, so two machines writing different fields of one
 * file both keep theirs, and all mounts agree whatever order they read the
 * logs in.  `meta_compact` writes a checkpoint (.dmfs/meta/checkpoints/:
 * the merged state with each field's time and writer) so a fresh cache
 * starts from the newest checkpoint plus the logs after it.  The schema is
 * .dmfs/meta/schema.json.
 *
 * Types: a field's type is fixed by the schema, else by its first value
 * (in merge order); a value of another type is refused (DMFS_ERR_INVAL)
 * when written here, and a remote one is dropped at merge with a log line.
 */
#ifndef DMFS_META_H
#define DMFS_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmfs/mval.h"
#include "dmfs/store.h"

#define META_PREFIX ".dmfs/meta/"
/* The longest field name. */
#define META_FIELD_MAX 200

struct meta;

/*
 * Open the table of store_uri in CACHE_DIR/meta (created when absent).
 * st is borrowed (must outlive the handle) and used for the bucket's log;
 * NULL for a purely local table (unit tests).  msg says why on failure.
 * Caller frees with meta_close (which does not flush).
 */
int meta_open(const char *cache_dir, struct dmfs_store *st,
	      const char *store_uri, struct meta **out, char *msg,
	      size_t msgsz) __attribute__((warn_unused_result));
void meta_close(struct meta *m);

/* This table's writer id (stable per cache directory and store). */
const char *meta_writer_id(const struct meta *m);

/* --- rows --- */

struct meta_field {
	char *name;
	struct mval v;
};

/* One file's user fields, sorted by name.  Owned by the struct. */
struct meta_row {
	char *path;
	size_t n;
	struct meta_field *f;
};
void meta_row_clear(struct meta_row *r);
/* The value of field, or NULL. */
const struct mval *meta_row_get(const struct meta_row *r, const char *field);
/* The fields as a JSON object (no "path").  NULL on ENOMEM. */
cJSON *meta_row_to_json(const struct meta_row *r);

/* The row of path: 0 (r->n == 0 when it has no fields) or DMFS_ERR_*. */
int meta_get(struct meta *m, const char *path, struct meta_row *r)
	__attribute__((warn_unused_result));

/* A cursor over the rows whose path starts with prefix ("" all, "a/b/" one
 * directory's subtree), in byte order of path.  Holds a read transaction:
 * close it soon.  Caller frees with meta_cursor_close. */
struct meta_cursor;
int meta_cursor_open(struct meta *m, const char *prefix,
		     struct meta_cursor **out)
	__attribute__((warn_unused_result));
/* 1 with r filled (caller clears), 0 at the end, or -DMFS_ERR_*. */
int meta_cursor_next(struct meta_cursor *c, struct meta_row *r);
void meta_cursor_close(struct meta_cursor *c);

/* --- fields --- */

/* The type of field: the schema's, else the established one, else
 * MV_NULL (no value yet). */
enum mval_type meta_field_type(struct meta *m, const char *field);

/* --- the field index (meta_qidx.c) --- */

/* How a scan of the index compares a field's value with a literal. */
enum meta_qop { MQ_EQ, MQ_LT, MQ_LE, MQ_GT, MQ_GE, MQ_PREFIX, MQ_ALL };

/*
 * Call cb(ctx, path, plen) (path not NUL-terminated) for every path of
 * this store whose field has a value of lit's type (int, float, bool,
 * string) that compares with lit as op says (MQ_PREFIX: a string
 * starting with lit), in no useful order; a path may come more than once.
 * A superset: a few rows whose key was too long to index are always
 * reported.  Values of another type than lit's are not.  Returns 0,
 * cb's nonzero value, DMFS_ERR_UNSUPPORTED when the index cannot answer
 * (a literal or field name too long for a key), or DMFS_ERR_*.
 */
int meta_qidx_scan(struct meta *m, const char *field, enum meta_qop op,
		   const struct mval *lit,
		   int (*cb)(void *ctx, const char *path, size_t plen),
		   void *ctx) __attribute__((warn_unused_result));

/* How many rows the table holds (of every store sharing the cache): an
 * estimate of a store's file count, for choosing a query plan.  0 when
 * it cannot be read. */
size_t meta_row_estimate(struct meta *m);

/* Whether name is an automatic field (path name ext dir size mtime etag),
 * which cannot be written. */
bool meta_is_auto_field(const char *name);

/* Whether name may be a field: 1..META_FIELD_MAX bytes of UTF-8, no
 * control characters, not automatic.  0 or DMFS_ERR_INVAL with msg. */
int meta_check_field_name(const char *name, char *msg, size_t msgsz);

/* --- changing --- */

struct meta_batch;
int meta_batch_new(struct meta_batch **out)
	__attribute__((warn_unused_result));
void meta_batch_free(struct meta_batch *b);
/* Queue setting path's field to v (copied); v NULL or null removes the
 * field.  0 or DMFS_ERR_NOMEM. */
int meta_batch_add(struct meta_batch *b, const char *path, const char *field,
		   const struct mval *v) __attribute__((warn_unused_result));
size_t meta_batch_count(const struct meta_batch *b);
/* Call cb for each distinct path in the batch, in byte order (to check
 * that the files exist).  cb returns nonzero to stop (returned). */
int meta_batch_paths(const struct meta_batch *b,
		     int (*cb)(void *ctx, const char *path), void *ctx);

/*
 * Validate the whole batch (field names, types against the schema, the
 * established types and earlier values in the same batch, the schema's
 * allowed values and required fields), then apply it in one transaction
 * and queue it for upload.  All or nothing: on DMFS_ERR_INVAL nothing
 * changed and msg names the first bad change ("path: field: expected
 * int, got string \"abc\"").  b is not consumed.
 */
int meta_apply(struct meta *m, const struct meta_batch *b, char *msg,
	       size_t msgsz) __attribute__((warn_unused_result));

/* Changes applied here and not yet in the bucket. */
uint64_t meta_pending(struct meta *m);

/* Upload what is queued as one log object (retrying as the store does).
 * 0 also when nothing was queued; on failure the queue is kept. */
int meta_flush(struct meta *m, char *msg, size_t msgsz)
	__attribute__((warn_unused_result));

/* Read log objects (and schema) written since the last refresh, by anyone,
 * and merge them.  *changed (may be NULL) tells whether any row or the
 * schema changed. */
int meta_refresh(struct meta *m, bool *changed, char *msg, size_t msgsz)
	__attribute__((warn_unused_result));

/* Write a checkpoint of the merged state up to the logs read so far. */
int meta_compact(struct meta *m, char *msg, size_t msgsz)
	__attribute__((warn_unused_result));

/* --- history --- */

struct meta_change {
	const char *path, *field;
	const struct mval *old_v, *new_v; /* null: absent / removed */
	int64_t time_us;
	const char *writer, *who;
};
/* Every recorded change (of path, or all when NULL), oldest first, read
 * from the bucket's log objects.  cb returns nonzero to stop. */
int meta_history(struct meta *m, const char *path,
		 int (*cb)(void *ctx, const struct meta_change *c), void *ctx,
		 char *msg, size_t msgsz) __attribute__((warn_unused_result));

/* --- schema: {"FIELD": {"type": T, "required": B, "allowed": [...]}} or
 * {"FIELD": "T"} --- */

/* The schema's JSON text (caller frees; "{}" when there is none). */
int meta_schema_get(struct meta *m, char **json)
	__attribute__((warn_unused_result));
/* Replace the schema: validated (syntax, types, and that existing values
 * fit), stored in the bucket and locally.  DMFS_ERR_INVAL with msg. */
int meta_schema_set(struct meta *m, const char *json, char *msg,
		    size_t msgsz) __attribute__((warn_unused_result));

#endif
