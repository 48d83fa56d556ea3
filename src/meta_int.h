/*
 * meta_int.h - what the files of the metadata table share (meta.c,
 * meta_batch.c, meta_log.c, meta_schema.c).  Not for other modules.
 *
 * LMDB layout (environment CACHE_DIR/meta/, named databases):
 *
 *   rows    sid || path -> row record (below): all the fields of one path
 *           ever written, removals kept as tombstones so that a
 *           late-arriving older change cannot bring a value back.  A batch
 *           or a merged log line is one read-modify-write per path.
 *   types   sid || field -> 1 byte enum mval_type: the established type.
 *   outbox  sid || 8-byte big-endian seq -> 4-byte big-endian number of
 *           changes, then one JSON log line (one path of one batch): what
 *           was applied here and not yet uploaded.  (An entry starting
 *           with '{' is a line of the earlier format: one change.)
 *   seen    sid || log object name -> "": logs merged (or written) here.
 *   qidx    sid || field || 0 || type || value || path -> "": the index
 *           of field values (meta_qidx.c), kept with every row write.
 *   state   sid || name -> bytes: "writer", "logseq", "outseq",
 *           "schema" (JSON text), "started" (absent until the first
 *           refresh has looked for a checkpoint).
 *
 * sid is the first 8 bytes of sha256(store_uri): rows of many stores live
 * side by side.
 *
 * Row record: 1 byte format (1), 1 byte number of writers, each writer as
 * 1 byte length + bytes; 4-byte big-endian number of fields, then each
 * field, sorted by name (bytewise): 1 byte name length, the name, 8-byte
 * big-endian time (µs since the epoch), 1 byte writer index, 1 byte type
 * (MV_NULL for a tombstone), 4-byte big-endian value length, the stored
 * value: a string's raw bytes, a float's 8 bytes (big-endian IEEE 754),
 * the JSON text of any other value, nothing for a tombstone.
 *
 * Log lines (JSON, one per path and batch):
 *   {"t":T,"w":W,"who":WHO,"path":P,"set":{"f1":v1,"f2":null},
 *    "types":{"f1":"float"},"old":{"f1":old1}}
 * null in set removes; "types" names float fields (JSON writes 5.0 as a
 * number an int could be); "old" holds the non-null old values.  Lines of
 * the earlier format (one change: "field", "new", "type", "old") are read
 * too.
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
	MDB_dbi db_rows, db_types, db_outbox, db_seen, db_state, db_qidx;
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
	/* Established field types already read (they never change once
	 * set; "none" holds until the next commit): meta_field_type is
	 * called for every value parsed. */
	pthread_mutex_t tcache_lock;
	struct meta_tcache *tcache; /* open addressing; name NULL: empty */
	size_t tcache_cap, tcache_n;
};

struct meta_tcache {
	char *name;
	enum mval_type t; /* MV_NULL: none as of txnid */
	size_t txnid;
};

/* One field of a decoded row record.  Borrowed: name, w and val point into
 * LMDB memory (valid until the transaction ends or the record is
 * rewritten) or into a caller's buffer. */
struct meta_rf {
	const char *name;
	size_t nlen;
	int64_t t;
	const char *w;
	size_t wlen;
	enum mval_type type; /* MV_NULL: removed (tombstone) */
	const char *val;     /* stored form (see the row record above) */
	size_t vlen;
};

/* A decoded row: fields sorted by name.  f is owned (reused between
 * decodes; free with free()), what its entries point to is not. */
struct meta_rowrec {
	struct meta_rf *f;
	size_t n, cap;
};

/* --- meta_json.c: JSON text written without a tree per row --- */

/* A growable byte buffer.  Caller frees p with free(). */
struct meta_buf {
	char *p;
	size_t n, cap, max;
	int err; /* first error (DMFS_ERR_NOMEM / DMFS_ERR_TOO_BIG), sticky */
};
/* Appends keep b->p '\0'-terminated; on failure they set b->err and
 * append nothing more.  meta_buf_put with p NULL appends n bytes left for
 * the caller to fill. */
/* --- meta.c --- */
int meta_mdb_err(int rc);
int meta_txn_begin(struct meta *m, unsigned flags, MDB_txn **txn);
/* Commit (commit != 0) or abort.  Returns an LMDB code. */
int meta_txn_end(struct meta *m, MDB_txn *txn, int commit);
void meta_put_be64(unsigned char *p, uint64_t v);
uint64_t meta_get_be64(const unsigned char *p);
/* sid || path into key (META_KEY_MAX bytes): its length, or 0 when too
 * long. */
size_t meta_row_key(const struct meta *m, const char *path, size_t plen,
		    unsigned char *key);
/* sid || name into key (META_KEY_MAX bytes): its length, or 0. */
size_t meta_small_key(const struct meta *m, const char *name, size_t nlen,
		      unsigned char *key);
/* Decode a row record into r (entries borrowed from v).  0 or
 * DMFS_ERR_CORRUPT when malformed / DMFS_ERR_NOMEM. */
int meta_row_decode(const MDB_val *v, struct meta_rowrec *r);
/* Make room for n fields in r.  0 or DMFS_ERR_NOMEM. */
int meta_rowrec_reserve(struct meta_rowrec *r, size_t n);
/* The index of field name in r, or -(insertion point) - 1. */
long meta_rowrec_find(const struct meta_rowrec *r, const char *name,
		      size_t nlen);
/* Encode n fields (sorted by name) as a row record into out (reset
 * first).  0 or out's error / DMFS_ERR_TOO_BIG (over 255 writers). */
int meta_row_encode(const struct meta_rf *f, size_t n, struct meta_buf *out);
/* Whether the row has a field that is not removed. */
bool meta_rowrec_live(const struct meta_rf *f, size_t n);
/* A stored value as an mval (out overwritten).  0 or DMFS_ERR_*. */
int meta_stored_to_mval(enum mval_type type, const char *val, size_t vlen,
			struct mval *out);
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

void meta_buf_put(struct meta_buf *b, const void *p, size_t n);
void meta_buf_puts(struct meta_buf *b, const char *s);
/* A JSON string literal of n bytes of s. */
void meta_buf_jstr(struct meta_buf *b, const char *s, size_t n);
void meta_buf_i64(struct meta_buf *b, int64_t v);
/* The JSON of v (null for a null value); a float always carries a '.' or
 * an exponent so that it reads back as a float.  0, or DMFS_ERR_INVAL for
 * a float that JSON cannot carry (NaN, infinity), or the buffer's error. */
int meta_buf_mval(struct meta_buf *b, const struct mval *v);
/* The stored form of v (non-null): a string's raw bytes, a float's 8
 * bytes (big-endian IEEE 754), else its JSON.  0, DMFS_ERR_INVAL (a float
 * JSON cannot carry) or the buffer's error. */
int meta_buf_stored(struct meta_buf *b, const struct mval *v);
/* The float of a stored form (8 bytes). */
double meta_stored_float(const char *val);
/* The JSON of a stored value (null for a tombstone). */
void meta_buf_stored_json(struct meta_buf *b, enum mval_type type,
			  const char *val, size_t vlen);

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

/* --- meta_qidx.c --- */
/* Bring the index in line with the row keyed rk (sid || path) changing
 * from oldrec to newrec (either NULL or empty: no row).  Call it in the
 * transaction of the change, before the row is put.  0 or DMFS_ERR_*. */
int meta_qidx_update(struct meta *m, MDB_txn *txn, const MDB_val *rk,
		     const MDB_val *oldrec, const MDB_val *newrec);
/* Index every row (of every store) of an empty index.  0 or DMFS_ERR_*. */
int meta_qidx_build(struct meta *m, MDB_txn *txn);

/* --- meta_log.c --- */
/* One change read from a log line or a checkpoint. */
struct meta_mchange {
	const char *field;
	int64_t t;
	const char *w;
	const cJSON *val;    /* NULL or null: removal */
	enum mval_type hint; /* the writer's type of val (MV_NULL: unknown) */
};
/* Merge changes (remote or checkpoint) of path into rows in txn, one
 * read-modify-write.  *changed set when the state changed.  Values of the
 * wrong type are dropped with a log line (0 returned). */
int meta_merge_row(struct meta *m, MDB_txn *txn, const char *path,
		   const struct meta_mchange *c, size_t n, bool *changed);

#endif
