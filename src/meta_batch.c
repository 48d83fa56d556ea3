/*
 * meta_batch.c - changing the table: batches, their validation, and
 * applying them (see meta.h).
 *
 * A batch keeps its changes in the order they were added, the strings in
 * one arena (no allocation per change but a string value's copy).
 * meta_apply works in one write transaction, so the established types it
 * checks against cannot change under it and a failure anywhere aborts
 * everything:
 *
 *   1. every change in order: field name, key length, type (schema, else
 *      established, else the first value of the field in this batch),
 *      the schema's allowed values;
 *   2. the changes sorted by (path, field, order added): the last change
 *      of a (path, field) is the one applied;
 *   3. each applied change is written to vals and its log line to the
 *      outbox, in the same transaction;
 *   4. rows with any field must have the schema's required fields
 *      (checked on the result, before the commit).
 *
 * Time.  A change is stamped with the current time, but never less than
 * the stamp of the value it replaces plus 1 µs: the merge orders changes
 * by time, and a value this machine writes must beat the one the user saw
 * even when another machine's clock runs ahead.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmfs/log.h"
#include "meta_int.h"

#define BATCH_MAX ((size_t)1 << 26) /* changes in one batch */
#define ARENA_MAX ((size_t)1 << 34)

struct change {
	size_t path_off, field_off; /* into the arena */
	struct mval v;
};

struct meta_batch {
	struct change *c;
	size_t n, cap;
	char *arena;
	size_t alen, acap;
	size_t last_path; /* offset of the last path added (shared) */
};

int meta_batch_new(struct meta_batch **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : DMFS_ERR_NOMEM;
}

void meta_batch_free(struct meta_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		mval_clear(&b->c[i].v);
	free(b->c);
	free(b->arena);
	free(b);
}

size_t meta_batch_count(const struct meta_batch *b) { return b->n; }

/* Copy s into the arena; its offset in *off.  0 or DMFS_ERR_*. */
static int arena_add(struct meta_batch *b, const char *s, size_t *off)
{
	size_t n = strlen(s) + 1;

	if (b->alen + n > b->acap) {
		size_t nc = b->acap ? b->acap : 4096;
		char *p;
		while (nc < b->alen + n)
			nc *= 2;
		if (nc > ARENA_MAX)
			return DMFS_ERR_TOO_BIG;
		p = realloc(b->arena, nc);
		if (!p)
			return DMFS_ERR_NOMEM;
		b->arena = p;
		b->acap = nc;
	}
	memcpy(b->arena + b->alen, s, n);
	*off = b->alen;
	b->alen += n;
	return 0;
}

int meta_batch_add(struct meta_batch *b, const char *path, const char *field,
		   const struct mval *v)
{
	struct change *c;
	int rc;

	if (b->n == b->cap) {
		size_t nc = b->cap ? 2 * b->cap : 64;
		void *p =
		    nc > BATCH_MAX ? NULL : realloc(b->c, nc * sizeof(*b->c));
		if (!p)
			return nc > BATCH_MAX ? DMFS_ERR_TOO_BIG
					      : DMFS_ERR_NOMEM;
		b->c = p;
		b->cap = nc;
	}
	c = &b->c[b->n];
	memset(c, 0, sizeof(*c));
	/* Batches usually set several fields of one path in a row. */
	if (b->n && !strcmp(b->arena + b->last_path, path))
		c->path_off = b->last_path;
	else if ((rc = arena_add(b, path, &c->path_off)))
		return rc;
	b->last_path = c->path_off;
	rc = arena_add(b, field, &c->field_off);
	if (!rc && v && v->t != MV_NULL)
		rc = mval_copy(&c->v, v);
	if (rc)
		return rc;
	b->n++;
	return 0;
}

/* qsort has no context argument: the arena being sorted over. */
static __thread const struct meta_batch *sort_batch;

static int cmp_change(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	const struct change *cx = &sort_batch->c[x], *cy = &sort_batch->c[y];
	const char *ar = sort_batch->arena;
	int r = 0;

	if (cx->path_off != cy->path_off)
		r = strcmp(ar + cx->path_off, ar + cy->path_off);
	if (!r)
		r = strcmp(ar + cx->field_off, ar + cy->field_off);
	if (!r)
		r = x < y ? -1 : x > y;
	return r;
}

/* The change indexes sorted by (path, field, order added).  Caller frees
 * *out with free(). */
static int sorted_order(const struct meta_batch *b, size_t **out)
{
	size_t *ix = malloc((b->n ? b->n : 1) * sizeof(*ix));

	if (!ix)
		return DMFS_ERR_NOMEM;
	for (size_t i = 0; i < b->n; i++)
		ix[i] = i;
	sort_batch = b;
	qsort(ix, b->n, sizeof(*ix), cmp_change);
	sort_batch = NULL;
	*out = ix;
	return 0;
}

static const char *path_of(const struct meta_batch *b, size_t i)
{
	return b->arena + b->c[i].path_off;
}

static const char *field_of(const struct meta_batch *b, size_t i)
{
	return b->arena + b->c[i].field_off;
}

int meta_batch_paths(const struct meta_batch *b,
		     int (*cb)(void *ctx, const char *path), void *ctx)
{
	size_t *ix = NULL;
	int rc = sorted_order(b, &ix);

	for (size_t i = 0; !rc && i < b->n; i++) {
		if (i && !strcmp(path_of(b, ix[i]), path_of(b, ix[i - 1])))
			continue;
		rc = cb(ctx, path_of(b, ix[i]));
	}
	free(ix);
	return rc;
}

/* --- the fields of a batch: a small open-addressing hash table --- */

struct ftype {
	const char *name; /* borrowed from the arena; NULL: empty slot */
	enum mval_type t; /* the field's type so far; MV_NULL: none yet */
	bool is_new;	  /* no type before this batch: record it */
	const struct meta_sfield *sf; /* the schema's entry, or NULL */
};

struct ftable {
	struct ftype *s;
	size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

/* The slot of name (empty when absent).  The table is never full. */
static struct ftype *ft_slot(struct ftable *t, const char *name)
{
	size_t i = hash_str(name) & (t->cap - 1);

	while (t->s[i].name && strcmp(t->s[i].name, name))
		i = (i + 1) & (t->cap - 1);
	return &t->s[i];
}

static int ft_grow(struct ftable *t)
{
	struct ftable n = {.cap = t->cap ? 2 * t->cap : 64};

	n.s = calloc(n.cap, sizeof(*n.s));
	if (!n.s)
		return DMFS_ERR_NOMEM;
	for (size_t i = 0; i < t->cap; i++)
		if (t->s[i].name)
			*ft_slot(&n, t->s[i].name) = t->s[i];
	n.n = t->n;
	free(t->s);
	*t = n;
	return 0;
}

/* --- meta_apply --- */

struct apply {
	struct meta *m;
	const struct meta_batch *b;
	MDB_txn *txn;
	struct ftable ft;
	struct meta_buf line, val; /* reused for every change */
	uint64_t outseq;
	int64_t now;
	char *msg;
	size_t msgsz;
};

/* Field entry of change i (looked up, name checked, created on first
 * sight).  0 or DMFS_ERR_*. */
static int field_entry(struct apply *a, size_t i, struct ftype **out)
{
	const char *field = field_of(a->b, i), *path = path_of(a->b, i);
	struct ftype *f;
	char why[300];
	int rc;

	if ((a->ft.n + 1) * 2 > a->ft.cap && (rc = ft_grow(&a->ft)))
		return rc;
	f = ft_slot(&a->ft, field);
	if (f->name) {
		*out = f;
		return 0;
	}
	if (meta_check_field_name(field, why, sizeof(why))) {
		dmfs_say(a->msg, a->msgsz, "%s: %s", path, why);
		return DMFS_ERR_INVAL;
	}
	f->name = field;
	f->sf = meta_schema_find(&a->m->schema, field);
	f->t = f->sf ? f->sf->t
		     : meta_types_get(a->m, a->txn, field, strlen(field));
	f->is_new = !f->sf && f->t == MV_NULL;
	a->ft.n++;
	*out = f;
	return 0;
}

/* Step 1 for change i. */
static int check_change(struct apply *a, size_t i)
{
	const struct change *c = &a->b->c[i];
	const char *path = path_of(a->b, i), *field = field_of(a->b, i);
	unsigned char key[META_KEY_MAX];
	char why[300], pre[META_KEY_MAX + 8];
	struct ftype *f;
	int rc = field_entry(a, i, &f);

	if (rc)
		return rc;
	if (!*path || !meta_vals_key(a->m, path, strlen(path), field,
				     strlen(field), key)) {
		dmfs_say(a->msg, a->msgsz, "%s: %s: %s", path, field,
			 *path ? "path and field name too long together"
			       : "empty path");
		return DMFS_ERR_INVAL;
	}
	if (c->v.t == MV_NULL)
		return 0;
	if ((c->v.t == MV_STRING || c->v.t == MV_BLOB) &&
	    c->v.len > MVAL_MAX_LEN) {
		dmfs_say(a->msg, a->msgsz, "%s: %s: value longer than %d bytes",
			 path, field, MVAL_MAX_LEN);
		return DMFS_ERR_INVAL;
	}
	if (c->v.t == MV_FLOAT && !isfinite(c->v.f)) {
		dmfs_say(a->msg, a->msgsz, "%s: %s: not a finite number", path,
			 field);
		return DMFS_ERR_INVAL;
	}
	if (f->t == MV_NULL)
		f->t = c->v.t; /* the first value fixes the type */
	if (!mval_fits(c->v.t, f->t)) {
		snprintf(pre, sizeof(pre), "%s: %s: ", path, field);
		meta_say_mismatch(a->msg, a->msgsz, pre, f->t, &c->v);
		return DMFS_ERR_INVAL;
	}
	if (f->sf && meta_sfield_check(f->sf, &c->v, why, sizeof(why))) {
		dmfs_say(a->msg, a->msgsz, "%s: %s: %s", path, field, why);
		return DMFS_ERR_INVAL;
	}
	return 0;
}

/* Whether the stored value record old holds exactly the JSON text json. */
static bool same_value(const struct meta_rec *old, const char *json,
		       size_t jlen)
{
	return old->type != MV_NULL && old->jlen == jlen &&
	       memcmp(old->json, json, jlen) == 0;
}

/* Step 3 for the change i (the last of its path and field). */
static int apply_change(struct apply *a, size_t i)
{
	const struct change *c = &a->b->c[i];
	const char *path = path_of(a->b, i), *field = field_of(a->b, i);
	size_t plen = strlen(path), flen = strlen(field), wlen;
	unsigned char key[META_KEY_MAX];
	MDB_val k = {meta_vals_key(a->m, path, plen, field, flen, key), key};
	MDB_val v, ok;
	struct meta_rec old = {0};
	struct mval fv;
	struct ftype *f = ft_slot(&a->ft, field);
	const struct mval *nv = &c->v;
	bool had;
	int64_t t = a->now;
	unsigned char ob[META_SID_LEN + 8];
	int rc;

	rc = mdb_get(a->txn, a->m->db_vals, &k, &v);
	if (rc && rc != MDB_NOTFOUND)
		return meta_mdb_err(rc);
	had = !rc;
	if (had && (rc = meta_rec_decode(&v, &old)))
		return rc;
	if (nv->t == MV_INT && f->t == MV_FLOAT) {
		fv = *nv; /* an int into a float field is stored as a float */
		fv.t = MV_FLOAT;
		fv.f = (double)nv->i;
		nv = &fv;
	}
	a->val.n = 0;
	if (nv->t != MV_NULL && (rc = meta_buf_mval(&a->val, nv)))
		return rc;
	if (nv->t == MV_NULL ? !had || old.type == MV_NULL
			     : had && same_value(&old, a->val.p, a->val.n))
		return 0; /* changes nothing: not logged either */
	if (had && old.t >= t)
		t = old.t + 1;

	/* The log line, while old is still readable (the put below may
	 * move pages). */
	a->line.n = 0;
	meta_buf_puts(&a->line, "{\"t\":");
	meta_buf_i64(&a->line, t);
	meta_buf_puts(&a->line, ",\"w\":");
	meta_buf_jstr(&a->line, a->m->writer, strlen(a->m->writer));
	meta_buf_puts(&a->line, ",\"who\":");
	meta_buf_jstr(&a->line, a->m->who, strlen(a->m->who));
	meta_buf_puts(&a->line, ",\"path\":");
	meta_buf_jstr(&a->line, path, plen);
	meta_buf_puts(&a->line, ",\"field\":");
	meta_buf_jstr(&a->line, field, flen);
	meta_buf_puts(&a->line, ",\"new\":");
	if (nv->t == MV_NULL) {
		meta_buf_puts(&a->line, "null");
	} else {
		meta_buf_put(&a->line, a->val.p, a->val.n);
		/* JSON cannot tell 5.0 from 5: the type travels along. */
		meta_buf_puts(&a->line, ",\"type\":\"");
		meta_buf_puts(&a->line, mval_type_name(nv->t));
		meta_buf_puts(&a->line, "\"");
	}
	meta_buf_puts(&a->line, ",\"old\":");
	if (had && old.type != MV_NULL)
		meta_buf_put(&a->line, old.json, old.jlen);
	else
		meta_buf_puts(&a->line, "null");
	meta_buf_puts(&a->line, "}");
	if (a->line.err)
		return a->line.err;

	wlen = strlen(a->m->writer);
	v.mv_size = 10 + wlen + (nv->t == MV_NULL ? 0 : a->val.n);
	rc = mdb_put(a->txn, a->m->db_vals, &k, &v, MDB_RESERVE);
	if (rc)
		return meta_mdb_err(rc);
	meta_put_be64(v.mv_data, (uint64_t)t);
	((unsigned char *)v.mv_data)[8] = (unsigned char)nv->t;
	((unsigned char *)v.mv_data)[9] = (unsigned char)wlen;
	memcpy((char *)v.mv_data + 10, a->m->writer, wlen);
	if (nv->t != MV_NULL)
		memcpy((char *)v.mv_data + 10 + wlen, a->val.p, a->val.n);

	memcpy(ob, a->m->sid, META_SID_LEN);
	meta_put_be64(ob + META_SID_LEN, a->outseq++);
	k.mv_size = sizeof(ob);
	k.mv_data = ob;
	ok.mv_size = a->line.n;
	ok.mv_data = a->line.p;
	rc = mdb_put(a->txn, a->m->db_outbox, &k, &ok, 0);
	return meta_mdb_err(rc);
}

/* Whether path has a record of field that is not removed. */
static bool has_field(struct apply *a, const char *path, const char *field)
{
	unsigned char key[META_KEY_MAX];
	MDB_val k = {meta_vals_key(a->m, path, strlen(path), field,
				   strlen(field), key),
		     key},
		v;
	struct meta_rec r;

	return k.mv_size && !mdb_get(a->txn, a->m->db_vals, &k, &v) &&
	       !meta_rec_decode(&v, &r) && r.type != MV_NULL;
}

/* Whether path has any field left. */
static int has_any(struct apply *a, const char *path, bool *any)
{
	unsigned char key[META_KEY_MAX];
	size_t plen = strlen(path);
	MDB_val k = {meta_vals_key(a->m, path, plen, "", 0, key), key}, v;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(a->txn, a->m->db_vals, &cur);

	*any = false;
	if (rc)
		return meta_mdb_err(rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (!rc && k.mv_size > META_SID_LEN + plen &&
	       !memcmp(k.mv_data, key, META_SID_LEN + plen + 1)) {
		struct meta_rec r;
		if (!meta_rec_decode(&v, &r) && r.type != MV_NULL) {
			*any = true;
			break;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc && rc != MDB_NOTFOUND ? meta_mdb_err(rc) : 0;
}

/* Step 4: required fields of every path the batch touched. */
static int check_required(struct apply *a, const size_t *ix)
{
	const struct meta_schema *s = &a->m->schema;
	bool need = false, any;
	int rc;

	for (size_t j = 0; j < s->n; j++)
		need |= s->f[j].required;
	for (size_t i = 0; need && i < a->b->n; i++) {
		const char *path = path_of(a->b, ix[i]);
		if (i && !strcmp(path, path_of(a->b, ix[i - 1])))
			continue;
		if ((rc = has_any(a, path, &any)))
			return rc;
		for (size_t j = 0; any && j < s->n; j++) {
			if (!s->f[j].required ||
			    has_field(a, path, s->f[j].name))
				continue;
			dmfs_say(a->msg, a->msgsz,
				 "%s: %s: required field missing", path,
				 s->f[j].name);
			return DMFS_ERR_INVAL;
		}
	}
	return 0;
}

int meta_apply(struct meta *m, const struct meta_batch *b, char *msg,
	       size_t msgsz)
{
	struct apply a = {.m = m, .b = b, .msg = msg, .msgsz = msgsz};
	size_t *ix = NULL;
	int rc, lrc;

	dmfs_say(msg, msgsz, "%s", "");
	if (!b->n)
		return 0;
	a.now = meta_now_us();
	rc = sorted_order(b, &ix);
	if (rc)
		return rc;
	lrc = meta_txn_begin(m, 0, &a.txn);
	if (lrc) {
		rc = meta_mdb_err(lrc);
		dmfs_say(msg, msgsz, "metadata table: %s", mdb_strerror(lrc));
		goto out;
	}
	/* The schema cannot change while a batch is checked against it.
	 * Lock order, as in meta_log.c: the write transaction, then
	 * schema_lock. */
	pthread_mutex_lock(&m->schema_lock);
	lrc = meta_state_get_u64(m, a.txn, "outseq", &a.outseq);
	if (lrc && lrc != MDB_NOTFOUND) {
		rc = meta_mdb_err(lrc);
		goto abort;
	}
	for (size_t i = 0; !rc && i < b->n; i++)
		rc = check_change(&a, i);
	for (size_t j = 0; !rc && j < a.ft.cap; j++) {
		struct ftype *f = &a.ft.s[j];
		if (f->name && f->is_new && f->t != MV_NULL)
			rc = meta_mdb_err(meta_types_put(
			    m, a.txn, f->name, strlen(f->name), f->t));
	}
	for (size_t i = 0; !rc && i < b->n; i++) {
		/* Only the last change of a (path, field) counts. */
		if (i + 1 < b->n &&
		    !strcmp(field_of(b, ix[i]), field_of(b, ix[i + 1])) &&
		    !strcmp(path_of(b, ix[i]), path_of(b, ix[i + 1])))
			continue;
		rc = apply_change(&a, ix[i]);
	}
	if (!rc)
		rc = check_required(&a, ix);
	if (!rc)
		rc = meta_mdb_err(
		    meta_state_put_u64(m, a.txn, "outseq", a.outseq));
abort:
	pthread_mutex_unlock(&m->schema_lock);
	if (rc) {
		meta_txn_end(m, a.txn, 0);
		if (msg && !*msg)
			dmfs_say(msg, msgsz, "metadata table: %s",
				 dmfs_strerror(rc));
	} else if ((lrc = meta_txn_end(m, a.txn, 1))) {
		rc = meta_mdb_err(lrc);
		dmfs_say(msg, msgsz, "metadata table: %s%s", mdb_strerror(lrc),
			 lrc == MDB_MAP_FULL ? " (the table is full)" : "");
	}
out:
	free(a.ft.s);
	free(a.line.p);
	free(a.val.p);
	free(ix);
	return rc;
}
