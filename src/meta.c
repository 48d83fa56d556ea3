/*
 * meta.c - the metadata table's local side (see meta.h, meta_int.h for the
 * LMDB layout): opening the environment, the writer id, reading rows and
 * field types, and the rules for field names.
 *
 * Durability.  Unlike the block cache and the manifest index, this
 * environment is not a cache: the outbox holds changes nobody else has
 * yet, so it is opened without MDB_NOSYNC and every commit reaches the
 * disk.  Batches are large (one transaction per batch), so that costs one
 * sync per batch, not per row.
 *
 * Concurrency.  MDB_NOTLS: any thread may read, a cursor may be used from
 * another thread than the one that opened it.  Transactions are begun
 * with env_lock held for reading; it is taken for writing only to adopt a
 * map grown by another process.  LMDB serialises writers itself (also
 * across processes sharing the cache directory).
 */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "dmfs/lmdb_lockfile.h"
#include "dmfs/lmdb_txn.h"
#include "dmfs/log.h"
#include "dmfs/mkdir_p.h"
#include "meta_int.h"

#define META_MAP_SIZE (16ull << 30) /* sparse: only what is used is on disk */
#define META_MAXREADERS 1024
#define META_MAXDBS 8 /* 6 used */
#define META_ROW_MAX 100000 /* fields of one row read back */

/* --- small helpers shared by the meta_*.c files --- */

int meta_mdb_err(int rc)
{
	return lmdb_err_to_dmfs(rc, DMFS_ERR_CORRUPT);
}

void meta_put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (v >> (56 - 8 * i)) & 0xff;
}

uint64_t meta_get_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

int64_t meta_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

size_t meta_row_key(const struct meta *m, const char *path, size_t plen,
		    unsigned char *key)
{
	if (META_SID_LEN + plen > META_KEY_MAX)
		return 0;
	memcpy(key, m->sid, META_SID_LEN);
	memcpy(key + META_SID_LEN, path, plen);
	return META_SID_LEN + plen;
}

size_t meta_small_key(const struct meta *m, const char *name, size_t nlen,
		      unsigned char *key)
{
	if (META_SID_LEN + nlen > META_KEY_MAX)
		return 0;
	memcpy(key, m->sid, META_SID_LEN);
	memcpy(key + META_SID_LEN, name, nlen);
	return META_SID_LEN + nlen;
}

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24, p[1] = (v >> 16) & 0xff, p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

int meta_rowrec_reserve(struct meta_rowrec *r, size_t n)
{
	size_t nc;
	void *p;

	if (n <= r->cap)
		return 0;
	if (n > META_ROW_MAX)
		return DMFS_ERR_TOO_BIG;
	nc = r->cap ? r->cap : 16;
	while (nc < n)
		nc *= 2;
	p = realloc(r->f, nc * sizeof(*r->f));
	if (!p)
		return DMFS_ERR_NOMEM;
	r->f = p;
	r->cap = nc;
	return 0;
}

int meta_row_decode(const MDB_val *v, struct meta_rowrec *r)
{
	const unsigned char *p = v->mv_data, *end = p + v->mv_size;
	const unsigned char *wp[256];
	size_t wl[256], nw, nf;
	int rc;

	r->n = 0;
	if (v->mv_size < 6 || p[0] != 1)
		return DMFS_ERR_CORRUPT;
	nw = p[1];
	p += 2;
	for (size_t i = 0; i < nw; i++) {
		if (p >= end || (size_t)(end - p) < 1u + p[0])
			return DMFS_ERR_CORRUPT;
		wl[i] = p[0];
		wp[i] = p + 1;
		p += 1 + p[0];
	}
	if (end - p < 4)
		return DMFS_ERR_CORRUPT;
	nf = get_be32(p);
	p += 4;
	if ((rc = meta_rowrec_reserve(r, nf)))
		return rc;
	for (size_t i = 0; i < nf; i++) {
		struct meta_rf *f = &r->f[i];
		size_t vl;
		if (p >= end || (size_t)(end - p) < 1u + p[0] + 14)
			return DMFS_ERR_CORRUPT;
		f->nlen = p[0];
		f->name = (const char *)p + 1;
		p += 1 + f->nlen;
		f->t = (int64_t)meta_get_be64(p);
		if (p[8] >= nw || p[9] > MV_BLOB)
			return DMFS_ERR_CORRUPT;
		f->w = (const char *)wp[p[8]];
		f->wlen = wl[p[8]];
		f->type = p[9];
		vl = get_be32(p + 10);
		p += 14;
		if ((size_t)(end - p) < vl)
			return DMFS_ERR_CORRUPT;
		f->val = (const char *)p;
		f->vlen = vl;
		p += vl;
	}
	r->n = nf;
	return p == end ? 0 : DMFS_ERR_CORRUPT;
}

/* Bytewise order of two names (the order strcmp gives). */
static int name_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	return c ? c : (al > bl) - (al < bl);
}

long meta_rowrec_find(const struct meta_rowrec *r, const char *name,
		      size_t nlen)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = name_cmp(r->f[mid].name, r->f[mid].nlen, name, nlen);
		if (!c)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

int meta_row_encode(const struct meta_rf *f, size_t n, struct meta_buf *out)
{
	const char *wp[256];
	size_t wl[256], nw = 0, size;
	unsigned char wix[256], *p;
	unsigned char *ix = n <= sizeof(wix) ? wix : malloc(n);

	out->n = 0;
	if (!ix)
		return out->err = DMFS_ERR_NOMEM;
	size = 2 + 4;
	for (size_t i = 0; i < n; i++) {
		size_t j = 0;
		while (j < nw && !(wl[j] == f[i].wlen &&
				   !memcmp(wp[j], f[i].w, f[i].wlen)))
			j++;
		if (j == nw) {
			if (nw == 255 || f[i].wlen > 255) {
				if (ix != wix)
					free(ix);
				return DMFS_ERR_TOO_BIG;
			}
			wp[nw] = f[i].w;
			wl[nw++] = f[i].wlen;
			size += 1 + f[i].wlen;
		}
		ix[i] = (unsigned char)j;
		size += 1 + f[i].nlen + 14 + f[i].vlen;
	}
	meta_buf_put(out, NULL, size);
	if (out->err) {
		if (ix != wix)
			free(ix);
		return out->err;
	}
	p = (unsigned char *)out->p;
	*p++ = 1;
	*p++ = (unsigned char)nw;
	for (size_t j = 0; j < nw; j++) {
		*p++ = (unsigned char)wl[j];
		memcpy(p, wp[j], wl[j]);
		p += wl[j];
	}
	put_be32(p, (uint32_t)n);
	p += 4;
	for (size_t i = 0; i < n; i++) {
		*p++ = (unsigned char)f[i].nlen;
		memcpy(p, f[i].name, f[i].nlen);
		p += f[i].nlen;
		meta_put_be64(p, (uint64_t)f[i].t);
		p[8] = ix[i];
		p[9] = (unsigned char)f[i].type;
		put_be32(p + 10, (uint32_t)f[i].vlen);
		p += 14;
		if (f[i].vlen)
			memcpy(p, f[i].val, f[i].vlen);
		p += f[i].vlen;
	}
	if (ix != wix)
		free(ix);
	return 0;
}

bool meta_rowrec_live(const struct meta_rf *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].type != MV_NULL)
			return true;
	return false;
}

int meta_state_get(struct meta *m, MDB_txn *txn, const char *name, MDB_val *out)
{
	unsigned char key[META_KEY_MAX];
	MDB_val k = {meta_small_key(m, name, strlen(name), key), key};

	return mdb_get(txn, m->db_state, &k, out);
}

int meta_state_put(struct meta *m, MDB_txn *txn, const char *name,
		   const void *p, size_t n)
{
	unsigned char key[META_KEY_MAX];
	MDB_val k = {meta_small_key(m, name, strlen(name), key), key};
	MDB_val v = {n, (void *)p};

	return mdb_put(txn, m->db_state, &k, &v, 0);
}

int meta_state_get_u64(struct meta *m, MDB_txn *txn, const char *name,
		       uint64_t *out)
{
	MDB_val v;
	int rc = meta_state_get(m, txn, name, &v);

	if (rc)
		return rc;
	if (v.mv_size != 8)
		return MDB_CORRUPTED;
	*out = meta_get_be64(v.mv_data);
	return 0;
}

int meta_state_put_u64(struct meta *m, MDB_txn *txn, const char *name,
		       uint64_t val)
{
	unsigned char b[8];

	meta_put_be64(b, val);
	return meta_state_put(m, txn, name, b, 8);
}

enum mval_type meta_types_get(struct meta *m, MDB_txn *txn, const char *field,
			      size_t flen)
{
	unsigned char key[META_KEY_MAX];
	MDB_val k = {meta_small_key(m, field, flen, key), key}, v;

	if (!k.mv_size || mdb_get(txn, m->db_types, &k, &v) || v.mv_size != 1 ||
	    ((unsigned char *)v.mv_data)[0] > MV_BLOB)
		return MV_NULL;
	return ((unsigned char *)v.mv_data)[0];
}

int meta_types_put(struct meta *m, MDB_txn *txn, const char *field, size_t flen,
		   enum mval_type t)
{
	unsigned char key[META_KEY_MAX], b = (unsigned char)t;
	MDB_val k = {meta_small_key(m, field, flen, key), key}, v = {1, &b};

	if (!k.mv_size)
		return MDB_BAD_VALSIZE;
	return mdb_put(txn, m->db_types, &k, &v, 0);
}

/* --- transactions --- */

/* On success env_lock is held until meta_txn_end.  An LMDB code. */
int meta_txn_begin(struct meta *m, unsigned flags, MDB_txn **txn)
{
	return lmdb_txn_begin(m->env, &m->env_lock, flags, txn, "meta",
			      m->dir);
}

int meta_txn_end(struct meta *m, MDB_txn *txn, int commit)
{
	int rc = 0;

	if (commit)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	pthread_rwlock_unlock(&m->env_lock);
	if (rc)
		dmfs_log(DMFS_LOG_ERROR, "meta %s: commit failed: %s", m->dir,
			 mdb_strerror(rc));
	return rc;
}

/* --- opening --- */

static int store_sid(const char *uri, unsigned char sid[META_SID_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(uri, strlen(uri), md, &mdlen, EVP_sha256(), NULL) != 1)
		return DMFS_ERR_NOMEM;
	memcpy(sid, md, META_SID_LEN);
	return 0;
}

static void set_who(struct meta *m)
{
	const char *user = getenv("USER");
	char host[128] = "";
	struct passwd *pw;

	if (!user || !*user) {
		pw = getpwuid(getuid());
		user = pw ? pw->pw_name : "unknown";
	}
	if (gethostname(host, sizeof(host) - 1) != 0 || !*host)
		snprintf(host, sizeof(host), "localhost");
	snprintf(m->who, sizeof(m->who), "%s@%s", user, host);
}

/* Write the row of the fields f[0..n) (values at offsets into vals) under
 * key k.  An LMDB code. */
static int migrate_put(struct meta *m, MDB_txn *txn, const MDB_val *k,
		       struct meta_rf *f, size_t n, const struct meta_buf *vals,
		       struct meta_buf *rec)
{
	MDB_val key = *k, v;

	for (size_t i = 0; i < n; i++)
		f[i].val = vals->p ? vals->p + (uintptr_t)f[i].val : "";
	if (meta_row_encode(f, n, rec))
		return ENOMEM;
	v.mv_size = rec->n;
	v.mv_data = rec->p;
	return mdb_put(txn, m->db_rows, &key, &v, 0);
}

/* The stored form of a value of the earlier record format (its JSON
 * text) appended to vals.  0, or -1 when it does not read back. */
static int migrate_value(enum mval_type type, const char *json, size_t len,
			 struct meta_buf *vals)
{
	struct mval mv = {0};
	cJSON *j;
	char why[128];
	int rc;

	if (type == MV_NULL)
		return 0;
	if (type != MV_STRING && type != MV_FLOAT) {
		meta_buf_put(vals, json, len);
		return vals->err ? -1 : 0;
	}
	j = cJSON_ParseWithLength(json, len);
	rc = j ? mval_from_json(j, type, &mv, why, sizeof(why)) : -1;
	cJSON_Delete(j);
	if (!rc && mv.t == type)
		rc = meta_buf_stored(vals, &mv);
	else
		rc = -1;
	mval_clear(&mv);
	return rc || vals->err ? -1 : 0;
}

/*
 * Caches made before rows were grouped by path hold one record per (path,
 * field) in "vals" (key sid || path || 0 || field; value: 8-byte time,
 * type, writer length, writer, JSON text).  Turn them into rows once,
 * then delete that database.  An LMDB code.
 */
static int migrate_vals(struct meta *m, MDB_txn *txn)
{
	struct meta_buf vals = {0}, rec = {0};
	struct meta_rowrec row = {0};
	unsigned char cur_key[META_KEY_MAX];
	MDB_val ck = {0, cur_key}, k, v;
	MDB_cursor *cur;
	MDB_dbi db;
	size_t nrows = 0;
	int rc = mdb_dbi_open(txn, "vals", 0, &db);

	if (rc)
		return rc == MDB_NOTFOUND ? 0 : rc;
	rc = mdb_cursor_open(txn, db, &cur);
	if (rc)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (!rc) {
		const unsigned char *kp = k.mv_data, *vp = v.mv_data, *z;
		struct meta_rf *f;
		size_t plen;
		z = k.mv_size > META_SID_LEN
			? memchr(kp + META_SID_LEN, 0, k.mv_size - META_SID_LEN)
			: NULL;
		if (!z || v.mv_size < 10 || vp[8] > MV_BLOB ||
		    10u + vp[9] > v.mv_size ||
		    k.mv_size - (size_t)(z - kp) - 1 > 255) {
			rc = MDB_CORRUPTED;
			break;
		}
		plen = (size_t)(z - kp);
		if (ck.mv_size != plen || memcmp(cur_key, kp, plen)) {
			if (row.n && (rc = migrate_put(m, txn, &ck, row.f, row.n,
						       &vals, &rec)))
				break;
			nrows += row.n > 0;
			row.n = 0;
			vals.n = 0;
			memcpy(cur_key, kp, plen);
			ck.mv_size = plen;
		}
		if (meta_rowrec_reserve(&row, row.n + 1)) {
			rc = ENOMEM;
			break;
		}
		f = &row.f[row.n];
		f->name = (const char *)z + 1;
		f->nlen = k.mv_size - plen - 1;
		f->t = (int64_t)meta_get_be64(vp);
		f->type = vp[8];
		f->wlen = vp[9];
		f->w = (const char *)vp + 10;
		f->val = (const char *)(uintptr_t)vals.n; /* fixed up later */
		if (migrate_value(f->type, f->w + f->wlen,
				  v.mv_size - 10 - f->wlen, &vals)) {
			dmfs_log(DMFS_LOG_WARN,
				 "meta %s: an old value of %.*s could not be "
				 "read: dropped",
				 m->dir, (int)(plen - META_SID_LEN),
				 (const char *)kp + META_SID_LEN);
			vals.err = 0;
			vals.n = (uintptr_t)f->val;
		} else {
			f->vlen = vals.n - (uintptr_t)f->val;
			row.n++;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND)
		rc = row.n ? migrate_put(m, txn, &ck, row.f, row.n, &vals, &rec)
			   : 0;
	nrows += row.n > 0;
	mdb_cursor_close(cur);
	if (!rc)
		rc = mdb_drop(txn, db, 1);
	if (!rc)
		dmfs_log(DMFS_LOG_INFO,
			 "meta %s: %zu row(s) moved to the per-path format",
			 m->dir, nrows);
	free(row.f);
	free(vals.p);
	free(rec.p);
	return rc;
}

/* Open the field index; a cache made before it has none: build it now,
 * in one pass over the rows.  An LMDB code. */
static int open_qidx(struct meta *m, MDB_txn *txn)
{
	int rc = mdb_dbi_open(txn, "qidx", 0, &m->db_qidx);

	if (rc != MDB_NOTFOUND)
		return rc;
	rc = mdb_dbi_open(txn, "qidx", MDB_CREATE, &m->db_qidx);
	if (rc)
		return rc;
	dmfs_log(DMFS_LOG_INFO, "meta %s: building the field index", m->dir);
	switch (meta_qidx_build(m, txn)) {
	case 0:
		return 0;
	case DMFS_ERR_NOMEM:
		return ENOMEM;
	case DMFS_ERR_NOSPC:
		return MDB_MAP_FULL;
	default:
		return MDB_CORRUPTED;
	}
}

/* Open the databases and load or make the writer id.  An LMDB code, or
 * -1 with msg. */
static int open_dbs(struct meta *m, char *msg, size_t msgsz)
{
	MDB_txn *txn;
	MDB_val v;
	int rc = meta_txn_begin(m, 0, &txn);

	if (rc)
		return rc;
	rc = mdb_dbi_open(txn, "rows", MDB_CREATE, &m->db_rows);
	if (!rc)
		rc = mdb_dbi_open(txn, "types", MDB_CREATE, &m->db_types);
	if (!rc)
		rc = mdb_dbi_open(txn, "outbox", MDB_CREATE, &m->db_outbox);
	if (!rc)
		rc = mdb_dbi_open(txn, "seen", MDB_CREATE, &m->db_seen);
	if (!rc)
		rc = mdb_dbi_open(txn, "state", MDB_CREATE, &m->db_state);
	if (!rc)
		rc = migrate_vals(m, txn);
	if (!rc)
		rc = open_qidx(m, txn);
	if (!rc)
		rc = meta_state_get(m, txn, "writer", &v);
	if (!rc) {
		if (v.mv_size == 0 || v.mv_size >= sizeof(m->writer)) {
			dmfs_say(msg, msgsz, "meta %s: bad writer id", m->dir);
			meta_txn_end(m, txn, 0);
			return MDB_CORRUPTED;
		}
		memcpy(m->writer, v.mv_data, v.mv_size);
		m->writer[v.mv_size] = '\0';
		/* Committed: handles opened in an aborted txn are closed. */
		return meta_txn_end(m, txn, 1);
	}
	if (rc == MDB_NOTFOUND) {
		/* Random, so that two caches of one store never share an
		 * id (the merge orders equal times by writer). */
		unsigned char raw[META_WRITER_LEN / 2];
		if (RAND_bytes(raw, sizeof(raw)) != 1) {
			dmfs_say(msg, msgsz, "meta: no random bytes");
			meta_txn_end(m, txn, 0);
			return EIO;
		}
		for (size_t i = 0; i < sizeof(raw); i++)
			snprintf(m->writer + 2 * i, 3, "%02x", raw[i]);
		rc = meta_state_put(m, txn, "writer", m->writer,
				    strlen(m->writer));
	}
	if (rc) {
		meta_txn_end(m, txn, 0);
		return rc;
	}
	return meta_txn_end(m, txn, 1);
}

void meta_close(struct meta *m)
{
	if (!m)
		return;
	if (m->env)
		mdb_env_close(m->env);
	meta_schema_free(&m->schema);
	pthread_rwlock_destroy(&m->env_lock);
	pthread_mutex_destroy(&m->sync_lock);
	pthread_mutex_destroy(&m->schema_lock);
	for (size_t i = 0; i < m->tcache_cap; i++)
		free(m->tcache[i].name);
	free(m->tcache);
	pthread_mutex_destroy(&m->tcache_lock);
	free(m->dir);
	free(m->store_uri);
	free(m);
}

int meta_open(const char *cache_dir, struct dmfs_store *st,
	      const char *store_uri, struct meta **out, char *msg, size_t msgsz)
{
	struct meta *m;
	int rc, dead = 0;

	*out = NULL;
	dmfs_say(msg, msgsz, "%s", "");
	if (!cache_dir || !*cache_dir || !store_uri || !*store_uri) {
		dmfs_say(msg, msgsz, "meta: no cache directory or store");
		return DMFS_ERR_INVAL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return DMFS_ERR_NOMEM;
	pthread_rwlock_init(&m->env_lock, NULL);
	pthread_mutex_init(&m->sync_lock, NULL);
	pthread_mutex_init(&m->schema_lock, NULL);
	pthread_mutex_init(&m->tcache_lock, NULL);
	m->st = st;
	set_who(m);
	if (asprintf(&m->dir, "%s/meta", cache_dir) < 0) {
		m->dir = NULL;
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	m->store_uri = strdup(store_uri);
	if (!m->store_uri) {
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	rc = store_sid(store_uri, m->sid);
	if (rc)
		goto out;
	rc = dmfs_mkdir_p(m->dir);
	if (rc) {
		dmfs_say(msg, msgsz, "meta %s: cannot create: %s", m->dir,
			 strerror(errno));
		goto out;
	}
	rc = mdb_env_create(&m->env);
	if (rc) {
		m->env = NULL;
		goto lmdb_fail;
	}
	rc = mdb_env_set_maxdbs(m->env, META_MAXDBS);
	if (!rc)
		rc = mdb_env_set_maxreaders(m->env, META_MAXREADERS);
	if (!rc)
		rc = mdb_env_set_mapsize(m->env, META_MAP_SIZE);
	/* An errno value is an LMDB code too. */
	if (!rc)
		rc = lmdb_lockfile_alloc(m->dir, META_MAXREADERS);
	if (!rc)
		rc = mdb_env_open(m->env, m->dir, MDB_NOTLS | MDB_NORDAHEAD,
				  0600);
	if (!rc)
		rc = mdb_reader_check(m->env, &dead);
	if (!rc && dead)
		dmfs_log(DMFS_LOG_WARN,
			 "meta %s: %d stale reader slot(s) cleared", m->dir,
			 dead);
	if (!rc)
		rc = open_dbs(m, msg, msgsz);
	if (!rc) {
		rc = meta_schema_load(m, msg, msgsz);
		goto out;
	}
lmdb_fail:
	if (!msg || !*msg)
		dmfs_say(msg, msgsz, "meta %s: cannot open: %s", m->dir,
			 mdb_strerror(rc));
	rc = meta_mdb_err(rc);
	if (rc == DMFS_ERR_NOT_FOUND)
		rc = DMFS_ERR_IO;
out:
	if (rc) {
		meta_close(m);
		return rc;
	}
	*out = m;
	return 0;
}

const char *meta_writer_id(const struct meta *m) { return m->writer; }

/* --- rows --- */

void meta_row_clear(struct meta_row *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->f[i].name);
		mval_clear(&r->f[i].v);
	}
	free(r->f);
	free(r->path);
	memset(r, 0, sizeof(*r));
}

const struct mval *meta_row_get(const struct meta_row *r, const char *field)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) { /* fields are sorted by name (bytewise) */
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->f[mid].name, field);
		if (!c)
			return &r->f[mid].v;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

cJSON *meta_row_to_json(const struct meta_row *r)
{
	cJSON *o = cJSON_CreateObject();

	for (size_t i = 0; o && i < r->n; i++) {
		cJSON *v = mval_to_json(&r->f[i].v);
		if (!v || !cJSON_AddItemToObject(o, r->f[i].name, v)) {
			cJSON_Delete(v);
			cJSON_Delete(o);
			return NULL;
		}
	}
	return o;
}

int meta_stored_to_mval(enum mval_type type, const char *val, size_t vlen,
			struct mval *out)
{
	char why[256], num[64], *end;
	cJSON *j;
	int rc;

	memset(out, 0, sizeof(*out));
	if (type == MV_STRING) {
		/* Numbers, bools and strings are read straight from their
		 * stored form: cJSON would round ints beyond 2^53. */
		out->s = malloc(vlen + 1);
		if (!out->s)
			return DMFS_ERR_NOMEM;
		memcpy(out->s, val, vlen);
		out->s[vlen] = '\0';
		out->len = vlen;
		out->t = MV_STRING;
		return 0;
	}
	if (type == MV_FLOAT) {
		if (vlen != 8)
			return DMFS_ERR_CORRUPT;
		out->t = MV_FLOAT;
		out->f = meta_stored_float(val);
		return 0;
	}
	if (type == MV_INT && vlen < sizeof(num)) {
		memcpy(num, val, vlen);
		num[vlen] = '\0';
		errno = 0;
		out->i = strtoll(num, &end, 10);
		if (errno || end == num || *end)
			return DMFS_ERR_CORRUPT;
		out->t = type;
		return 0;
	}
	if (type == MV_BOOL) {
		out->t = MV_BOOL;
		out->b = vlen == 4 && !memcmp(val, "true", 4);
		return 0;
	}
	j = cJSON_ParseWithLength(val, vlen);
	if (!j)
		return DMFS_ERR_CORRUPT;
	rc = mval_from_json(j, type, out, why, sizeof(why));
	cJSON_Delete(j);
	if (rc == DMFS_ERR_INVAL)
		rc = DMFS_ERR_CORRUPT;
	return rc;
}

/* The live fields of a row record (k, v) into r (path from the key).
 * 0 or DMFS_ERR_*; r->n == 0 when every field is removed. */
static int read_row(struct meta *m, const MDB_val *k, const MDB_val *v,
		    struct meta_row *r)
{
	struct meta_rowrec rec = {0};
	size_t n = 0;
	int rc;

	(void)m;
	r->path = strndup((const char *)k->mv_data + META_SID_LEN,
			  k->mv_size - META_SID_LEN);
	if (!r->path)
		return DMFS_ERR_NOMEM;
	rc = meta_row_decode(v, &rec);
	for (size_t i = 0; !rc && i < rec.n; i++)
		n += rec.f[i].type != MV_NULL;
	if (!rc && n && !(r->f = calloc(n, sizeof(*r->f))))
		rc = DMFS_ERR_NOMEM;
	for (size_t i = 0; !rc && i < rec.n; i++) {
		const struct meta_rf *f = &rec.f[i];
		struct meta_field *o = &r->f[r->n];
		if (f->type == MV_NULL)
			continue;
		o->name = strndup(f->name, f->nlen);
		if (!o->name) {
			rc = DMFS_ERR_NOMEM;
			break;
		}
		rc = meta_stored_to_mval(f->type, f->val, f->vlen, &o->v);
		if (rc) {
			free(o->name);
			break;
		}
		r->n++;
	}
	free(rec.f);
	return rc;
}

int meta_get(struct meta *m, const char *path, struct meta_row *r)
{
	unsigned char key[META_KEY_MAX];
	size_t plen = strlen(path);
	MDB_txn *txn;
	MDB_val k, v;
	int rc;

	memset(r, 0, sizeof(*r));
	k.mv_size = meta_row_key(m, path, plen, key);
	k.mv_data = key;
	if (!k.mv_size || !plen) {
		r->path = strdup(path);
		return r->path ? 0 : DMFS_ERR_NOMEM;
	}
	rc = meta_txn_begin(m, MDB_RDONLY, &txn);
	if (rc)
		return meta_mdb_err(rc);
	rc = mdb_get(txn, m->db_rows, &k, &v);
	if (!rc) {
		rc = read_row(m, &k, &v, r);
	} else if (rc == MDB_NOTFOUND) {
		rc = 0;
		r->path = strdup(path);
		if (!r->path)
			rc = DMFS_ERR_NOMEM;
	} else {
		rc = meta_mdb_err(rc);
	}
	meta_txn_end(m, txn, 0);
	if (rc)
		meta_row_clear(r);
	return rc;
}

struct meta_cursor {
	struct meta *m;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int mrc; /* LMDB code of the last move: nonzero at the end */
	size_t plen;
	unsigned char prefix[META_KEY_MAX];
};

int meta_cursor_open(struct meta *m, const char *prefix,
		     struct meta_cursor **out)
{
	struct meta_cursor *c;
	size_t n = strlen(prefix);
	int rc;

	*out = NULL;
	if (META_SID_LEN + n > META_KEY_MAX)
		return DMFS_ERR_INVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return DMFS_ERR_NOMEM;
	c->m = m;
	memcpy(c->prefix, m->sid, META_SID_LEN);
	memcpy(c->prefix + META_SID_LEN, prefix, n);
	c->plen = META_SID_LEN + n;
	rc = meta_txn_begin(m, MDB_RDONLY, &c->txn);
	if (rc) {
		free(c);
		return meta_mdb_err(rc);
	}
	rc = mdb_cursor_open(c->txn, m->db_rows, &c->cur);
	if (rc) {
		meta_txn_end(m, c->txn, 0);
		free(c);
		return meta_mdb_err(rc);
	}
	c->k.mv_size = c->plen;
	c->k.mv_data = c->prefix;
	c->mrc = mdb_cursor_get(c->cur, &c->k, &c->v, MDB_SET_RANGE);
	*out = c;
	return 0;
}

int meta_cursor_next(struct meta_cursor *c, struct meta_row *r)
{
	memset(r, 0, sizeof(*r));
	for (;;) {
		int rc;
		if (c->mrc)
			return c->mrc == MDB_NOTFOUND ? 0
						      : -meta_mdb_err(c->mrc);
		if (c->k.mv_size < c->plen ||
		    memcmp(c->k.mv_data, c->prefix, c->plen) != 0) {
			c->mrc = MDB_NOTFOUND;
			return 0;
		}
		rc = c->k.mv_size > META_SID_LEN
			 ? read_row(c->m, &c->k, &c->v, r)
			 : 0;
		if (rc) {
			meta_row_clear(r);
			c->mrc = MDB_CORRUPTED;
			return -rc;
		}
		c->mrc = mdb_cursor_get(c->cur, &c->k, &c->v, MDB_NEXT);
		if (r->n)
			return 1;
		meta_row_clear(r); /* only removed fields: no row */
	}
}

void meta_cursor_close(struct meta_cursor *c)
{
	if (!c)
		return;
	mdb_cursor_close(c->cur);
	meta_txn_end(c->m, c->txn, 0);
	free(c);
}

/* --- fields --- */

static uint64_t hash_name(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

/* The cache slot of field (empty when absent).  tcache_lock held. */
static struct meta_tcache *tcache_slot(struct meta_tcache *tc, size_t cap,
				       const char *field)
{
	size_t i = hash_name(field) & (cap - 1);

	while (tc[i].name && strcmp(tc[i].name, field))
		i = (i + 1) & (cap - 1);
	return &tc[i];
}

/* Remember field's type as of transaction txnid (best effort: a failed
 * allocation only means a slower next lookup). */
static void tcache_put(struct meta *m, const char *field, enum mval_type t,
		       size_t txnid)
{
	struct meta_tcache *s;

	pthread_mutex_lock(&m->tcache_lock);
	if ((m->tcache_n + 1) * 2 > m->tcache_cap) {
		size_t nc = m->tcache_cap ? 2 * m->tcache_cap : 64;
		struct meta_tcache *n = calloc(nc, sizeof(*n));
		if (!n) {
			pthread_mutex_unlock(&m->tcache_lock);
			return;
		}
		for (size_t i = 0; i < m->tcache_cap; i++)
			if (m->tcache[i].name)
				*tcache_slot(n, nc, m->tcache[i].name) =
				    m->tcache[i];
		free(m->tcache);
		m->tcache = n;
		m->tcache_cap = nc;
	}
	s = tcache_slot(m->tcache, m->tcache_cap, field);
	if (!s->name && (s->name = strdup(field)))
		m->tcache_n++;
	if (s->name) {
		s->t = t;
		s->txnid = txnid;
	}
	pthread_mutex_unlock(&m->tcache_lock);
}

/* The environment's last committed transaction: a field found without a
 * type stays so until it changes. */
static size_t last_txnid(struct meta *m)
{
	MDB_envinfo info;
	int rc;

	pthread_rwlock_rdlock(&m->env_lock); /* the map may be replaced */
	rc = mdb_env_info(m->env, &info);
	pthread_rwlock_unlock(&m->env_lock);
	return rc ? 0 : info.me_last_txnid;
}

/* The cached type of field: 1 with *t when known (MV_NULL: no type as of
 * the current transaction), else 0. */
static int tcache_get(struct meta *m, const char *field, size_t txnid,
		      enum mval_type *t)
{
	int found = 0;

	pthread_mutex_lock(&m->tcache_lock);
	if (m->tcache_cap) {
		struct meta_tcache *s =
		    tcache_slot(m->tcache, m->tcache_cap, field);
		if (s->name && (s->t != MV_NULL || s->txnid == txnid)) {
			*t = s->t;
			found = 1;
		}
	}
	pthread_mutex_unlock(&m->tcache_lock);
	return found;
}

enum mval_type meta_field_type(struct meta *m, const char *field)
{
	enum mval_type t = MV_NULL;
	const struct meta_sfield *sf;
	MDB_txn *txn;
	size_t txnid;

	pthread_mutex_lock(&m->schema_lock);
	sf = meta_schema_find(&m->schema, field);
	if (sf)
		t = sf->t;
	pthread_mutex_unlock(&m->schema_lock);
	if (t != MV_NULL)
		return t;
	/* A known type needs no look at the environment. */
	if (tcache_get(m, field, SIZE_MAX, &t) && t != MV_NULL)
		return t;
	txnid = last_txnid(m);
	if (txnid && tcache_get(m, field, txnid, &t))
		return t;
	if (meta_txn_begin(m, MDB_RDONLY, &txn))
		return MV_NULL;
	t = meta_types_get(m, txn, field, strlen(field));
	txnid = mdb_txn_id(txn);
	meta_txn_end(m, txn, 0);
	/* A type, once committed, never changes; its absence holds until
	 * the next commit (of any process sharing the environment). */
	tcache_put(m, field, t, txnid);
	return t;
}

bool meta_is_auto_field(const char *name)
{
	static const char *const autos[] = {"path", "name",  "ext", "dir",
					    "size", "mtime", "etag"};
	size_t n;

	/* Called for every value parsed: most names are not 3-5 bytes
	 * starting with one of these letters. */
	if (!strchr("pnedsm", name[0]) || !name[0] ||
	    (n = strlen(name)) < 3 || n > 5)
		return false;
	for (size_t i = 0; i < sizeof(autos) / sizeof(autos[0]); i++)
		if (!strcmp(name, autos[i]))
			return true;
	return false;
}

/* Length of the UTF-8 sequence at p (at most n bytes), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		len = 2, cp = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		len = 3, cp = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	if (cp >= 0x80 && cp < 0xa0) /* C1 control characters */
		return 0;
	return len;
}

int meta_check_field_name(const char *name, char *msg, size_t msgsz)
{
	size_t n = name ? strlen(name) : 0;
	const unsigned char *p = (const unsigned char *)name;

	if (n == 0) {
		dmfs_say(msg, msgsz, "empty field name");
		return DMFS_ERR_INVAL;
	}
	if (n > META_FIELD_MAX) {
		dmfs_say(msg, msgsz, "field name longer than %d bytes",
			 META_FIELD_MAX);
		return DMFS_ERR_INVAL;
	}
	for (size_t i = 0; i < n;) {
		size_t l;
		if (p[i] < 0x20 || p[i] == 0x7f) {
			dmfs_say(msg, msgsz,
				 "field name \"%s\": control character", name);
			return DMFS_ERR_INVAL;
		}
		l = utf8_len(p + i, n - i);
		if (!l) {
			dmfs_say(msg, msgsz, "field name: not UTF-8 text");
			return DMFS_ERR_INVAL;
		}
		i += l;
	}
	if (meta_is_auto_field(name)) {
		dmfs_say(msg, msgsz, "field %s is automatic: it cannot be set",
			 name);
		return DMFS_ERR_INVAL;
	}
	return 0;
}
