/*
 * meta_int.h - what the files of the metadata table share (meta.c,
 * meta_batch.c, meta_log.c, meta_schema.c).  Not for other modules.
 *
 * LMDB layout (environment CACHE_DIR/meta/, named databases):
 *
 *   vals    sid || path || 0 || field -> value record (below).  One record
 *           per (path, field) ever written, removals kept as tombstones so
 *           that a late-arriving older change cannot bring a value back.
 *           Since 0 is the smallest byte, keys sort by path then field,
 *           and a row is one contiguous range.
 *   types   sid || field -> 1 byte enum mval_type: the established type.
 *   outbox  sid || 8-byte big-endian seq -> one JSON log line: changes
 *           applied here and not yet uploaded.
 *   seen    sid || log object name -> "": logs merged (or written) here.
 *   state   sid || name -> bytes: "writer", "logseq", "outseq",
 *           "schema" (JSON text), "started" (absent until the first
 *           refresh has looked for a checkpoint).
 *
 * sid is the first 8 bytes of sha256(store_uri): rows of many stores live
 * side by side.
 *
 * Value record: 8-byte big-endian time (µs since the epoch), 1 byte type
 * (MV_NULL for a tombstone), 1 byte writer length, the writer id, then the
 * value's JSON text (empty for a tombstone).
 */
#ifndef DMFS_META_INT_H
#define DMFS_META_INT_H

#include <lmdb.h>
#include <pthread.h>

#include "dmfs/meta.h"

#define META_SID_LEN 8
#define META_KEY_MAX 511 /* LMDB's compiled-in key limit */
#define META_WRITER_LEN 16
#define META_WRITER_MAX 64
#define META_LOG_PREFIX META_PREFIX "log/"
#define META_CKPT_PREFIX META_PREFIX "checkpoints/"
#define META_SCHEMA_KEY META_PREFIX "schema.json"
/* The largest log object or checkpoint read or written in one piece. */
#define META_OBJ_MAX ((size_t)1 << 30)

/* One schema field. */
struct meta_sfield {
	char *name;
	enum mval_type t;
	bool required;
	struct mval *allowed; /* NULL: any value */
	size_t nallowed;
};

/* A parsed schema, fields sorted by name. */
struct meta_schema {
	struct meta_sfield *f;
	size_t n;
	char *text; /* the JSON as stored ("{}" when empty) */
};

struct meta {
	MDB_env *env;
	MDB_dbi db_vals, db_types, db_outbox, db_seen, db_state;
	char *dir;
	char *store_uri;
	struct dmfs_store *st; /* borrowed; NULL for a local table */
	unsigned char sid[META_SID_LEN];
	char writer[META_WRITER_MAX];
	char who[256];
	pthread_rwlock_t env_lock;   /* read: any transaction; write: adopting
					a map grown by another process */
	pthread_mutex_t sync_lock;   /* one flush / refresh / compact at a time
					(each uploads or merges in order) */
	pthread_mutex_t schema_lock; /* protects schema; taken after (never
					before) beginning a write txn */
	struct meta_schema schema;   /* protected by schema_lock */
};

/* A decoded value record.  Borrowed: points into LMDB memory, valid until
 * the transaction ends. */
struct meta_rec {
	int64_t t;
	enum mval_type type;
	const char *w;
	size_t wlen;
	const char *json;
	size_t jlen;
};

/* --- meta.c --- */
int meta_mdb_err(int rc);
int meta_txn_begin(struct meta *m, unsigned flags, MDB_txn **txn);
/* Commit (commit != 0) or abort.  Returns an LMDB code. */
int meta_txn_end(struct meta *m, MDB_txn *txn, int commit);
void meta_put_be64(unsigned char *p, uint64_t v);
uint64_t meta_get_be64(const unsigned char *p);
/* The vals key of (path, field) into key (META_KEY_MAX bytes).  Its
 * length, or 0 when too long. */
size_t meta_vals_key(const struct meta *m, const char *path, size_t plen,
		     const char *field, size_t flen, unsigned char *key);
/* sid || name into key (META_KEY_MAX bytes): its length, or 0. */
size_t meta_small_key(const struct meta *m, const char *name, size_t nlen,
		      unsigned char *key);
/* Decode a record: r points into v (borrowed; valid until the
 * transaction ends).  0 or DMFS_ERR_CORRUPT when malformed. */
int meta_rec_decode(const MDB_val *v, struct meta_rec *r);
/* Encode a record into *buf (caller frees with free()).  json NULL: a
 * tombstone.  0 or DMFS_ERR_NOMEM / DMFS_ERR_INVAL (writer too long). */
int meta_rec_encode(int64_t t, enum mval_type type, const char *w,
		    const char *json, size_t jlen, unsigned char **buf,
		    size_t *len);
/* The state value called name: out borrowed, valid until the transaction
 * ends.  An LMDB code (MDB_NOTFOUND when absent). */
int meta_state_get(struct meta *m, MDB_txn *txn, const char *name,
		   MDB_val *out);
/* Store n bytes of p (copied) as state name.  An LMDB code. */
int meta_state_put(struct meta *m, MDB_txn *txn, const char *name,
		   const void *p, size_t n);
/* A counter in state: an LMDB code (MDB_NOTFOUND when absent). */
int meta_state_get_u64(struct meta *m, MDB_txn *txn, const char *name,
		       uint64_t *out);
int meta_state_put_u64(struct meta *m, MDB_txn *txn, const char *name,
		       uint64_t v);
/* The established type of field in txn (types db only): MV_NULL when none. */
enum mval_type meta_types_get(struct meta *m, MDB_txn *txn, const char *field,
			      size_t flen);
/* Record field's established type.  An LMDB code. */
int meta_types_put(struct meta *m, MDB_txn *txn, const char *field, size_t flen,
		   enum mval_type t);
/* Wall-clock time in µs since the epoch.  Cannot fail. */
int64_t meta_now_us(void);

/* --- meta_json.c: JSON text written without a tree per row --- */

/* A growable byte buffer.  Caller frees p with free(). */
struct meta_buf {
	char *p;
	size_t n, cap, max;
	int err; /* first error (DMFS_ERR_NOMEM / DMFS_ERR_TOO_BIG), sticky */
};
/* Appends keep b->p '\0'-terminated; on failure they set b->err and
 * append nothing more. */
void meta_buf_put(struct meta_buf *b, const void *p, size_t n);
void meta_buf_puts(struct meta_buf *b, const char *s);
/* A JSON string literal of n bytes of s. */
void meta_buf_jstr(struct meta_buf *b, const char *s, size_t n);
void meta_buf_i64(struct meta_buf *b, int64_t v);
/* The JSON of v (null for a null value); a float always carries a '.' or
 * an exponent so that it reads back as a float.  0, or DMFS_ERR_INVAL for
 * a float that JSON cannot carry (NaN, infinity), or the buffer's error. */
int meta_buf_mval(struct meta_buf *b, const struct mval *v);

/* --- meta_schema.c --- */
/* Parse schema JSON into s (caller frees with meta_schema_free).  0 or
 * DMFS_ERR_INVAL with msg / DMFS_ERR_NOMEM. */
int meta_schema_parse(const char *json, struct meta_schema *s, char *msg,
		      size_t msgsz);
void meta_schema_free(struct meta_schema *s);
/* The schema's entry for field, or NULL.  Borrowed from s. */
const struct meta_sfield *meta_schema_find(const struct meta_schema *s,
					   const char *field);
/* Whether v passes the schema field's type and allowed values: 0 or
 * DMFS_ERR_INVAL with msg (without path/field prefix). */
int meta_sfield_check(const struct meta_sfield *sf, const struct mval *v,
		      char *msg, size_t msgsz);
/* Store a new schema text in LMDB (txn) when it differs from the one in
 * use (*changed then true); meta_schema_load after the commit puts it in
 * use.  0 or DMFS_ERR_INVAL with msg (a schema that does not parse). */
int meta_schema_stage(struct meta *m, MDB_txn *txn, const char *json,
		      bool *changed, char *msg, size_t msgsz);
/* (Re)load the schema in use from LMDB (at open and after a change). */
int meta_schema_load(struct meta *m, char *msg, size_t msgsz);
/* "PREFIXexpected int, got string \"abc\"" into msg. */
void meta_say_mismatch(char *msg, size_t msgsz, const char *prefix,
		       enum mval_type want, const struct mval *v);

/* --- meta_log.c --- */
/* Merge one change (remote or checkpoint) into vals in txn; hint is the
 * writer's type of val (MV_NULL: unknown).  *changed set when the state
 * changed.  Values of the wrong type are dropped with a
 * log line (0 returned). */
int meta_merge_one(struct meta *m, MDB_txn *txn, const char *path,
		   const char *field, int64_t t, const char *w,
		   const cJSON *val, enum mval_type hint, bool *changed);

#endif
