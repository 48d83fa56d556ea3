/*
 * meta_qidx.c - the index of user field values (named database "qidx" of
 * the metadata environment), which lets a selective query read the few
 * paths that can match instead of walking every file.
 *
 * Key: sid || field || 0 || type byte || value || path, no value.  The
 * value is encoded so that byte order is value order: an int as 8 bytes
 * big-endian with the sign bit flipped; a float as its IEEE bits, all
 * flipped when negative, else with the sign bit set (-0 stored as 0, so
 * that == 0.0 finds both); a bool as one byte 0/1; a string with byte 0
 * written 1 1 and byte 1 written 1 2, then a 0 (a prefix-free code, so
 * "ab" < "ab\0" < "ab\1" as bytewise comparison wants).  Blobs and
 * tombstones are not indexed.  A key over LMDB's limit (long value or
 * path) is written as type 'L' with no value: a scan returns every such
 * path of the field as a candidate, so the index stays a superset.
 *
 * Callers only ever take candidates from the index and evaluate the whole
 * query on each, so what matters is that no matching path is missing.
 * meta_qidx_update runs in the transaction that rewrites a row, before
 * the put, so rows and index change together.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dmfs/log.h"
#include "meta_int.h"

#define QI_INT 'i'
#define QI_FLOAT 'f'
#define QI_BOOL 'b'
#define QI_STRING 's'
#define QI_LONG 'L'

static char type_byte(enum mval_type t)
{
	switch (t) {
	case MV_INT:
		return QI_INT;
	case MV_FLOAT:
		return QI_FLOAT;
	case MV_BOOL:
		return QI_BOOL;
	case MV_STRING:
		return QI_STRING;
	default:
		return 0;
	}
}

static void enc_int(struct meta_buf *b, int64_t v)
{
	unsigned char p[8];
	meta_put_be64(p, (uint64_t)v ^ ((uint64_t)1 << 63));
	meta_buf_put(b, p, 8);
}

static void enc_float(struct meta_buf *b, double d)
{
	unsigned char p[8];
	uint64_t u;

	if (d == 0)
		d = 0; /* -0 == 0 */
	memcpy(&u, &d, 8);
	u = (u >> 63) ? ~u : u | ((uint64_t)1 << 63);
	meta_put_be64(p, u);
	meta_buf_put(b, p, 8);
}

/* A string's escaped bytes; the terminator only when term. */
static void enc_str(struct meta_buf *b, const char *s, size_t n, bool term)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 1) {
			unsigned char e[2] = {1, (unsigned char)(c + 1)};
			meta_buf_put(b, e, 2);
		} else {
			meta_buf_put(b, &c, 1);
		}
	}
	if (term)
		meta_buf_put(b, "", 1);
}

/* The encoding of v (int, float, bool, string).  0 or b's error. */
static int enc_mval(struct meta_buf *b, const struct mval *v)
{
	unsigned char c;

	switch (v->t) {
	case MV_INT:
		enc_int(b, v->i);
		break;
	case MV_FLOAT:
		enc_float(b, v->f);
		break;
	case MV_BOOL:
		c = v->b ? 1 : 0;
		meta_buf_put(b, &c, 1);
		break;
	case MV_STRING:
		enc_str(b, v->s, v->len, true);
		break;
	default:
		return DMFS_ERR_INVAL;
	}
	return b->err;
}

/* The length of the encoded value at p (n bytes available), or 0 when
 * malformed. */
static size_t enc_len(char tb, const unsigned char *p, size_t n)
{
	switch (tb) {
	case QI_INT:
	case QI_FLOAT:
		return n >= 8 ? 8 : 0;
	case QI_BOOL:
		return n >= 1 ? 1 : 0;
	case QI_STRING:
		for (size_t i = 0; i < n; i++) {
			if (p[i] == 0)
				return i + 1;
			if (p[i] == 1)
				i++;
		}
		return 0;
	default:
		return 0;
	}
}

/* The index key of one field of the row keyed rk (sid || path) into key
 * (reset first).  0, or DMFS_ERR_* (1: the field is not indexed). */
static int field_key(const MDB_val *rk, const struct meta_rf *f,
		     struct meta_buf *key)
{
	char tb = type_byte(f->type);
	struct mval v;
	size_t plen = rk->mv_size - META_SID_LEN;
	int rc;

	key->n = 0;
	key->err = 0;
	if (!tb)
		return 1;
	meta_buf_put(key, rk->mv_data, META_SID_LEN);
	meta_buf_put(key, f->name, f->nlen);
	meta_buf_put(key, "", 1);
	meta_buf_put(key, &tb, 1);
	rc = meta_stored_to_mval(f->type, f->val, f->vlen, &v);
	if (rc)
		return rc;
	rc = enc_mval(key, &v);
	mval_clear(&v);
	if (rc)
		return rc;
	if (key->n + plen > META_KEY_MAX) {
		key->n = META_SID_LEN + f->nlen + 1;
		tb = QI_LONG;
		meta_buf_put(key, &tb, 1);
	}
	meta_buf_put(key, (const char *)rk->mv_data + META_SID_LEN, plen);
	return key->n > META_KEY_MAX ? 1 : key->err;
}

/* Byte order of two field names (the order of a row's fields). */
static int name_cmp(const struct meta_rf *a, const struct meta_rf *b)
{
	size_t l = a->nlen < b->nlen ? a->nlen : b->nlen;
	int c = memcmp(a->name, b->name, l);

	if (c)
		return c;
	return (a->nlen > b->nlen) - (a->nlen < b->nlen);
}

/* Whether old field o and new field n are the same indexed value. */
static bool same_value(const struct meta_rf *o, const struct meta_rf *n)
{
	return o->type == n->type && o->vlen == n->vlen &&
	       (!o->vlen || !memcmp(o->val, n->val, o->vlen));
}

/* Put (put) or delete the index entry of field f of row rk. */
static int entry(struct meta *m, MDB_txn *txn, const MDB_val *rk,
		 const struct meta_rf *f, struct meta_buf *key, bool put)
{
	MDB_val k, v = {0, ""};
	int rc = field_key(rk, f, key);

	if (rc == 1)
		return 0;
	if (rc)
		return rc;
	k.mv_size = key->n;
	k.mv_data = key->p;
	rc = put ? mdb_put(txn, m->db_qidx, &k, &v, 0)
		 : mdb_del(txn, m->db_qidx, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : meta_mdb_err(rc);
}

int meta_qidx_update(struct meta *m, MDB_txn *txn, const MDB_val *rk,
		     const MDB_val *oldrec, const MDB_val *newrec)
{
	struct meta_rowrec o = {0}, n = {0};
	struct meta_buf key = {0};
	char *copy = NULL;
	MDB_val ov = {0, NULL};
	int rc = 0;

	/* The old record may be in LMDB memory that a put to the index
	 * moves: decode a copy. */
	if (oldrec && oldrec->mv_size) {
		copy = malloc(oldrec->mv_size);
		if (!copy)
			return DMFS_ERR_NOMEM;
		memcpy(copy, oldrec->mv_data, oldrec->mv_size);
		ov.mv_size = oldrec->mv_size;
		ov.mv_data = copy;
		rc = meta_row_decode(&ov, &o);
	}
	if (!rc && newrec && newrec->mv_size)
		rc = meta_row_decode(newrec, &n);
	/* Both sorted by name: one merge pass. */
	for (size_t i = 0, j = 0; !rc && (i < o.n || j < n.n);) {
		int c = i >= o.n   ? 1
			: j >= n.n ? -1
				   : name_cmp(&o.f[i], &n.f[j]);
		if (c == 0 && same_value(&o.f[i], &n.f[j])) {
			i++;
			j++;
			continue;
		}
		if (c <= 0)
			rc = entry(m, txn, rk, &o.f[i++], &key, false);
		if (!rc && c >= 0)
			rc = entry(m, txn, rk, &n.f[j++], &key, true);
	}
	free(o.f);
	free(n.f);
	free(copy);
	free(key.p);
	return rc;
}

int meta_qidx_build(struct meta *m, MDB_txn *txn)
{
	MDB_cursor *cur;
	MDB_val k, v;
	size_t rows = 0;
	int rc = 0, mrc = mdb_cursor_open(txn, m->db_rows, &cur);

	if (mrc)
		return meta_mdb_err(mrc);
	mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (!mrc) {
		if (k.mv_size > META_SID_LEN) {
			rc = meta_qidx_update(m, txn, &k, NULL, &v);
			if (rc)
				break;
			rows++;
		}
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (!rc && mrc != MDB_NOTFOUND)
		rc = meta_mdb_err(mrc);
	if (!rc)
		dmfs_log(DMFS_LOG_INFO,
			 "meta %s: field index built over %zu row(s)", m->dir,
			 rows);
	return rc;
}

/* memcmp of two byte strings, then length. */
static int bytes_cmp(const unsigned char *a, size_t an, const unsigned char *b,
		     size_t bn)
{
	size_t n = an < bn ? an : bn;
	int c = n ? memcmp(a, b, n) : 0; /* a or b may be NULL when empty */
	if (c)
		return c;
	return (an > bn) - (an < bn);
}

/* Report every key under prefix pfx (of n bytes) whose value part matches:
 * lit (encoded, ln bytes) with op, or, for op MQ_ALL, all. */
static int scan(struct meta *m, MDB_txn *txn, const unsigned char *pfx,
		size_t pn, char tb, enum meta_qop op, const unsigned char *lit,
		size_t ln, int (*cb)(void *ctx, const char *path, size_t plen),
		void *ctx)
{
	unsigned char start[META_KEY_MAX + 1];
	MDB_cursor *cur;
	MDB_val k, v;
	size_t sn = pn;
	int rc, crc = 0;

	if (pn + ln > META_KEY_MAX)
		return DMFS_ERR_UNSUPPORTED; /* a literal longer than a key */
	memcpy(start, pfx, pn);
	if (op == MQ_EQ || op == MQ_GE || op == MQ_GT || op == MQ_PREFIX) {
		if (ln) /* lit may be NULL when empty */
			memcpy(start + pn, lit, ln);
		sn += ln;
	}
	rc = mdb_cursor_open(txn, m->db_qidx, &cur);
	if (rc)
		return meta_mdb_err(rc);
	k.mv_size = sn;
	k.mv_data = start;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (!rc) {
		const unsigned char *kp = k.mv_data;
		if (k.mv_size < pn || memcmp(kp, pfx, pn) != 0)
			break;
		size_t vl = op == MQ_ALL ? 0 : enc_len(tb, kp + pn,
							k.mv_size - pn);
		bool take = true, stop = false;
		if (op == MQ_PREFIX) {
			take = vl && vl - 1 >= ln && !memcmp(kp + pn, lit, ln);
			stop = !take;
		} else if (op != MQ_ALL) {
			int c = bytes_cmp(kp + pn, vl, lit, ln);
			if (!vl)
				c = 0, take = false; /* malformed: skip */
			else if (op == MQ_EQ)
				take = c == 0, stop = c > 0;
			else if (op == MQ_LT)
				take = c < 0, stop = c >= 0;
			else if (op == MQ_LE)
				take = c <= 0, stop = c > 0;
			else if (op == MQ_GT)
				take = c > 0;
			else
				take = c >= 0;
		}
		if (stop)
			break;
		if (take) {
			crc = cb(ctx, (const char *)kp + pn + vl,
				 k.mv_size - pn - vl);
			if (crc)
				break;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (crc)
		return crc;
	return rc == MDB_NOTFOUND ? 0 : meta_mdb_err(rc);
}

int meta_qidx_scan(struct meta *m, const char *field, enum meta_qop op,
		   const struct mval *lit,
		   int (*cb)(void *ctx, const char *path, size_t plen),
		   void *ctx)
{
	unsigned char pfx[META_KEY_MAX + 2];
	struct meta_buf enc = {0};
	size_t fl = strlen(field), pn;
	char tb = type_byte(lit->t);
	MDB_txn *txn;
	int rc;

	if (!tb || (op == MQ_PREFIX && lit->t != MV_STRING))
		return DMFS_ERR_INVAL;
	if (META_SID_LEN + fl + 2 > META_KEY_MAX)
		return DMFS_ERR_UNSUPPORTED;
	if (op == MQ_PREFIX)
		enc_str(&enc, lit->s, lit->len, false);
	else
		enc_mval(&enc, lit);
	if (enc.err) {
		free(enc.p);
		return enc.err;
	}
	memcpy(pfx, m->sid, META_SID_LEN);
	memcpy(pfx + META_SID_LEN, field, fl + 1);
	pn = META_SID_LEN + fl + 1;
	rc = meta_txn_begin(m, MDB_RDONLY, &txn);
	if (rc) {
		free(enc.p);
		return meta_mdb_err(rc);
	}
	pfx[pn] = (unsigned char)tb;
	rc = scan(m, txn, pfx, pn + 1, tb, op,
		  (const unsigned char *)(enc.p ? enc.p : ""), enc.n, cb, ctx);
	if (!rc) {
		pfx[pn] = QI_LONG;
		rc = scan(m, txn, pfx, pn + 1, QI_LONG, MQ_ALL, NULL, 0, cb,
			  ctx);
	}
	meta_txn_end(m, txn, 0);
	free(enc.p);
	return rc;
}

size_t meta_row_estimate(struct meta *m)
{
	MDB_txn *txn;
	MDB_stat s;
	size_t n = 0;

	if (meta_txn_begin(m, MDB_RDONLY, &txn))
		return 0;
	if (!mdb_stat(txn, m->db_rows, &s))
		n = s.ms_entries;
	meta_txn_end(m, txn, 0);
	return n;
}
