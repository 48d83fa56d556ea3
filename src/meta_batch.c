/*
 * meta_batch.c - changing the table: batches, their validation, and
 * applying them (see meta.h).
 *
 * A batch keeps its changes in the order they were added, the strings in
 * one arena (no allocation per change but a string value's copy), each
 * distinct field name once.
 * meta_apply works in one write transaction, so the established types it
 * checks against cannot change under it and a failure anywhere aborts
 * everything:
 *
 *   1. every change in order: field name, key length, type (schema, else
 *      established, else the first value of the field in this batch),
 *      the schema's allowed values;
 *   2. the changes sorted by (path, field, order added) (sorted once per
 *      batch, by rank: see make_order); the last change of a (path,
 *      field) is the one applied;
 *   3. per path, one read-modify-write of its row record and one log
 *      line (all its changed fields) into the outbox, all in the same
 *      transaction;
 *   4. rows with any field must have the schema's required fields
 *      (checked on the new row, before it is written).
 *
 * Time.  A path's changes are stamped with the current time, but never
 * less than the stamp of a value they replace plus 1 µs: the merge orders
 * changes by time, and a value this machine writes must beat the one the
 * user saw even when another machine's clock runs ahead.
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
#define SMALL_SORT 16 /* groups this small are insertion-sorted */

struct change {
	size_t path_off; /* into the arena */
	uint32_t field;	 /* index into fields */
	/* The value.  A string's or blob's bytes are in the arena (no
	 * allocation per value): s is NULL and i their offset; see
	 * value_of. */
	struct mval v;
};

/* One change in the sorted order, with what sorting and grouping look at
 * (read in sequence, not through the change: a 1 000 000-row batch does
 * not fit in the cache). */
struct oent {
	uint32_t ci;	/* the change's index */
	uint32_t prank; /* rank of its path (equal paths equal) */
	uint32_t frank; /* rank of its field name */
};

/* The batch in (path, field, order added) order, made once on first use
 * (meta_batch_paths, then meta_apply) and dropped by meta_batch_add. */
struct order {
	bool valid;
	struct oent *e;	  /* the changes, sorted */
	uint32_t *frank;  /* per field: rank of its name */
};

struct meta_batch {
	struct change *c;
	size_t n, cap;
	char *arena;
	size_t alen, acap;
	size_t last_path;  /* offset of the last path added (shared) */
	size_t *fields;	   /* arena offsets of the distinct field names */
	size_t *flens;	   /* and their lengths */
	size_t nfields, fcap;
	uint32_t *fhash;   /* open addressing: field index + 1, 0 empty */
	size_t fhcap;
	struct order *ord; /* always allocated: filled through a const batch */
};

int meta_batch_new(struct meta_batch **out)
{
	struct meta_batch *b = calloc(1, sizeof(*b));

	if (b && !(b->ord = calloc(1, sizeof(*b->ord)))) {
		free(b);
		b = NULL;
	}
	*out = b;
	return b ? 0 : DMFS_ERR_NOMEM;
}

static void order_drop(struct order *o)
{
	free(o->e);
	free(o->frank);
	memset(o, 0, sizeof(*o));
}

void meta_batch_free(struct meta_batch *b)
{
	if (!b)
		return;
	free(b->c);
	free(b->arena);
	free(b->fields);
	free(b->flens);
	free(b->fhash);
	order_drop(b->ord);
	free(b->ord);
	free(b);
}

size_t meta_batch_count(const struct meta_batch *b) { return b->n; }

/* Copy n bytes of s and a '\0' into the arena; their offset in *off.
 * 0 or DMFS_ERR_*. */
static int arena_put(struct meta_batch *b, const char *s, size_t len,
		     size_t *off)
{
	size_t n = len + 1;

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
	if (len)
		memcpy(b->arena + b->alen, s, len);
	b->arena[b->alen + len] = '\0';
	*off = b->alen;
	b->alen += n;
	return 0;
}

static int arena_add(struct meta_batch *b, const char *s, size_t *off)
{
	return arena_put(b, s, strlen(s), off);
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

/* The hash slot of name (0 inside: absent).  Never full. */
static uint32_t *field_slot(const struct meta_batch *b, uint32_t *tab,
			    size_t cap, const char *name)
{
	size_t i = hash_str(name) & (cap - 1);

	while (tab[i] && strcmp(b->arena + b->fields[tab[i] - 1], name))
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

/* The index of field name, added when new: a batch names few fields many
 * times, so each is stored and checked once.  0 or DMFS_ERR_*. */
static int field_id(struct meta_batch *b, const char *name, uint32_t *out)
{
	uint32_t *slot;
	int rc;

	if ((b->nfields + 1) * 2 > b->fhcap) {
		size_t nc = b->fhcap ? 2 * b->fhcap : 64;
		uint32_t *t = calloc(nc, sizeof(*t));
		if (!t)
			return DMFS_ERR_NOMEM;
		for (size_t i = 0; i < b->fhcap; i++)
			if (b->fhash[i])
				*field_slot(b, t, nc,
					    b->arena +
						b->fields[b->fhash[i] - 1]) =
				    b->fhash[i];
		free(b->fhash);
		b->fhash = t;
		b->fhcap = nc;
	}
	slot = field_slot(b, b->fhash, b->fhcap, name);
	if (*slot) {
		*out = *slot - 1;
		return 0;
	}
	if (b->nfields == b->fcap) {
		size_t nc = b->fcap ? 2 * b->fcap : 16;
		void *p = realloc(b->fields, nc * sizeof(*b->fields));
		if (!p)
			return DMFS_ERR_NOMEM;
		b->fields = p;
		p = realloc(b->flens, nc * sizeof(*b->flens));
		if (!p)
			return DMFS_ERR_NOMEM;
		b->flens = p;
		b->fcap = nc;
	}
	b->flens[b->nfields] = strlen(name);
	if ((rc = arena_put(b, name, b->flens[b->nfields],
			    &b->fields[b->nfields])))
		return rc;
	*slot = (uint32_t)++b->nfields;
	*out = *slot - 1;
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
	order_drop(b->ord);
	c = &b->c[b->n];
	memset(c, 0, sizeof(*c));
	/* Batches usually set several fields of one path in a row. */
	if (b->n && !strcmp(b->arena + b->last_path, path))
		c->path_off = b->last_path;
	else if ((rc = arena_add(b, path, &c->path_off)))
		return rc;
	b->last_path = c->path_off;
	rc = field_id(b, field, &c->field);
	if (!rc && v && v->t != MV_NULL) {
		c->v = *v;
		c->v.s = NULL; /* never owned: see struct change */
		c->v.len = 0;
		if (v->t == MV_STRING || v->t == MV_BLOB) {
			size_t off = 0;
			c->v.len = v->s ? v->len : 0;
			rc = arena_put(b, v->s ? v->s : "", c->v.len, &off);
			c->v.i = (int64_t)off;
		}
	}
	if (rc)
		return rc;
	b->n++;
	return 0;
}

static const char *path_of(const struct meta_batch *b, size_t i)
{
	return b->arena + b->c[i].path_off;
}

static const char *field_of(const struct meta_batch *b, size_t i)
{
	return b->arena + b->fields[b->c[i].field];
}

static size_t field_len(const struct meta_batch *b, size_t i)
{
	return b->flens[b->c[i].field];
}

/* The value of change i, borrowed (valid until the batch changes). */
static struct mval value_of(const struct meta_batch *b, size_t i)
{
	struct mval v = b->c[i].v;

	if (v.t == MV_STRING || v.t == MV_BLOB) {
		v.s = b->arena + v.i;
		v.i = 0;
	}
	return v;
}

/* qsort has no context argument: the arena being sorted over. */
static __thread const char *sort_arena;

/* Offsets into sort_arena, by string, then offset (stable). */
static int cmp_off(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int r = strcmp(sort_arena + x, sort_arena + y);

	return r ? r : (x > y) - (x < y);
}

/* A path to sort: its first 16 bytes as two numbers (compared without
 * touching the arena), its offset, its run. */
struct pkey {
	uint64_t k1, k2;
	size_t off;
	uint32_t run;
};

static void pkey_make(const char *arena, size_t off, uint32_t run,
		      struct pkey *k)
{
	const unsigned char *p = (const unsigned char *)arena + off;
	uint64_t w[2] = {0, 0};
	bool end = false;

	for (int i = 0; i < 16; i++) {
		end = end || !p[i]; /* nothing read past the '\0' */
		w[i / 8] = w[i / 8] << 8 | (end ? 0 : p[i]);
	}
	k->k1 = w[0], k->k2 = w[1], k->off = off, k->run = run;
}

/* The byte order of the paths of x and y (0: equal). */
static int pkey_strcmp(const struct pkey *x, const struct pkey *y)
{
	if (x->k1 != y->k1)
		return x->k1 < y->k1 ? -1 : 1;
	if (x->k2 != y->k2)
		return x->k2 < y->k2 ? -1 : 1;
	/* Equal 16 bytes: both end within them (the 16th is padding), or
	 * both go on. */
	if (!(x->k2 & 0xff))
		return 0;
	return strcmp(sort_arena + x->off + 16, sort_arena + y->off + 16);
}

static int cmp_pkey(const void *a, const void *b)
{
	const struct pkey *x = a, *y = b;
	int r = pkey_strcmp(x, y);

	return r ? r : (x->off > y->off) - (x->off < y->off);
}

/* Per-field name ranks into o->frank.  0 or DMFS_ERR_NOMEM. */
static int rank_fields(const struct meta_batch *b, struct order *o)
{
	size_t *offs = malloc((b->nfields + 1) * sizeof(*offs));

	o->frank = malloc((b->nfields + 1) * sizeof(*o->frank));
	if (!offs || !o->frank) {
		free(offs);
		return DMFS_ERR_NOMEM;
	}
	memcpy(offs, b->fields, b->nfields * sizeof(*offs));
	sort_arena = b->arena;
	qsort(offs, b->nfields, sizeof(*offs), cmp_off);
	/* Offsets of fields grow with their index: find each by bsearch. */
	for (size_t r = 0; r < b->nfields; r++) {
		size_t lo = 0, hi = b->nfields;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (b->fields[mid] < offs[r])
				lo = mid + 1;
			else
				hi = mid;
		}
		o->frank[lo] = (uint32_t)r;
	}
	free(offs);
	return 0;
}

static int cmp_oent(const void *a, const void *b)
{
	const struct oent *x = a, *y = b;

	if (x->frank != y->frank)
		return x->frank < y->frank ? -1 : 1;
	return (x->ci > y->ci) - (x->ci < y->ci);
}

/* Sort e[0..n) (one path, in the order added) by field rank. */
static void sort_group(struct oent *e, size_t n)
{
	if (n > SMALL_SORT) {
		qsort(e, n, sizeof(*e), cmp_oent);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		struct oent x = e[i];
		size_t j = i;
		/* Equal ranks stay in the order added. */
		while (j && e[j - 1].frank > x.frank) {
			e[j] = e[j - 1];
			j--;
		}
		e[j] = x;
	}
}

/*
 * Make the batch's order (once): the distinct runs of one path are sorted
 * by path (a string compare per run, not per change), equal paths get one
 * rank, the changes are bucketed by path rank in the order added, then
 * each path's changes sorted by field rank.  0 or DMFS_ERR_NOMEM.
 */
static int make_order(const struct meta_batch *b)
{
	struct order *o = b->ord;
	size_t nruns = 0, *runs = NULL, *start = NULL;
	struct pkey *sorted = NULL;
	uint32_t *rrank = NULL, *prank = NULL, nranks = 0;
	int rc = DMFS_ERR_NOMEM;

	if (o->valid)
		return 0;
	order_drop(o);
	if (b->n > UINT32_MAX)
		goto out;
	o->e = malloc((b->n + 1) * sizeof(*o->e));
	prank = malloc((b->n + 1) * sizeof(*prank));
	runs = malloc((b->n + 1) * sizeof(*runs));
	if (!o->e || !prank || !runs || rank_fields(b, o))
		goto out;
	for (size_t i = 0; i < b->n; i++)
		if (!i || b->c[i].path_off != b->c[i - 1].path_off)
			runs[nruns++] = b->c[i].path_off;
	/* Sort the runs by path, rank equal paths alike. */
	sorted = malloc((nruns + 1) * sizeof(*sorted));
	rrank = malloc((nruns + 1) * sizeof(*rrank));
	if (!sorted || !rrank)
		goto out;
	for (size_t r = 0; r < nruns; r++)
		pkey_make(b->arena, runs[r], (uint32_t)r, &sorted[r]);
	sort_arena = b->arena;
	qsort(sorted, nruns, sizeof(*sorted), cmp_pkey);
	for (size_t r = 0; r < nruns; r++) {
		if (r && pkey_strcmp(&sorted[r], &sorted[r - 1]))
			nranks++;
		rrank[sorted[r].run] = nranks;
	}
	nranks += nruns ? 1 : 0;
	for (size_t i = 0, r = 0; i < b->n; i++) {
		if (i && b->c[i].path_off != b->c[i - 1].path_off)
			r++;
		prank[i] = rrank[r];
	}
	/* Bucket by path rank (stable), then sort each bucket by field. */
	start = calloc((size_t)nranks + 1, sizeof(*start));
	if (!start)
		goto out;
	for (size_t i = 0; i < b->n; i++)
		start[prank[i] + 1]++;
	for (size_t r = 0; r < nranks; r++)
		start[r + 1] += start[r];
	for (size_t i = 0; i < b->n; i++)
		o->e[start[prank[i]]++] = (struct oent){
		    .ci = (uint32_t)i,
		    .prank = prank[i],
		    .frank = o->frank[b->c[i].field]};
	for (size_t r = 0, s = 0; r < nranks; r++) {
		/* start[r] is now the end of bucket r. */
		sort_group(o->e + s, start[r] - s);
		s = start[r];
	}
	o->valid = true;
	rc = 0;
out:
	if (rc)
		order_drop(o);
	free(runs);
	free(prank);
	free(sorted);
	free(rrank);
	free(start);
	return rc;
}

int meta_batch_paths(const struct meta_batch *b,
		     int (*cb)(void *ctx, const char *path), void *ctx)
{
	const struct order *o = b->ord;
	int rc = make_order(b);

	for (size_t i = 0; !rc && i < b->n; i++) {
		if (i && o->e[i].prank == o->e[i - 1].prank)
			continue;
		rc = cb(ctx, path_of(b, o->e[i].ci));
	}
	return rc;
}

/* --- meta_apply --- */

/* What the batch knows of one of its fields. */
struct ftype {
	bool seen;	  /* name checked, type looked up */
	enum mval_type t; /* the field's type so far; MV_NULL: none yet */
	bool is_new;	  /* no type before this batch: record it */
	const struct meta_sfield *sf; /* the schema's entry, or NULL */
};

/* One field of the current path that the batch changes. */
struct pend {
	size_t ci;	     /* the change (its last one) */
	enum mval_type type; /* of the stored value; MV_NULL: removal */
	size_t voff, vlen;   /* stored form in apply.vals */
	long oi;	     /* index in the old row, or < 0 */
};

struct apply {
	struct meta *m;
	const struct meta_batch *b;
	MDB_txn *txn;
	/* Kept open: the paths come in order, and a cursor already on the
	 * right page finds the next key without a search from the root. */
	MDB_cursor *rows, *outbox;
	struct ftype *ft; /* per field of the batch */
	struct meta_buf line, vals, rec; /* reused for every path */
	struct meta_rowrec old;
	struct meta_rf *nf; /* the new row */
	size_t nfcap;
	struct pend *pd;
	size_t pdcap;
	const struct meta_sfield **req; /* the schema's required fields */
	size_t nreq;
	uint64_t outseq;
	int64_t now;
	size_t wlen, wholen;	   /* of m->writer, m->who */
	size_t last_path, last_plen; /* check_change: the path seen last */
	char *msg;
	size_t msgsz;
};

/* Field entry of change i (name checked and type looked up on first
 * sight).  0 or DMFS_ERR_*. */
static int field_entry(struct apply *a, size_t i, struct ftype **out)
{
	const char *field = field_of(a->b, i), *path = path_of(a->b, i);
	struct ftype *f = &a->ft[a->b->c[i].field];
	char why[300];

	*out = f;
	if (f->seen)
		return 0;
	if (meta_check_field_name(field, why, sizeof(why))) {
		dmfs_say(a->msg, a->msgsz, "%s: %s", path, why);
		return DMFS_ERR_INVAL;
	}
	f->seen = true;
	f->sf = meta_schema_find(&a->m->schema, field);
	f->t = f->sf ? f->sf->t
		     : meta_types_get(a->m, a->txn, field, field_len(a->b, i));
	f->is_new = !f->sf && f->t == MV_NULL;
	return 0;
}

/* Step 1 for change i. */
static int check_change(struct apply *a, size_t i)
{
	const struct mval v = value_of(a->b, i);
	const struct mval *cv = &v;
	const char *path = path_of(a->b, i), *field = field_of(a->b, i);
	char why[300], pre[META_KEY_MAX + 8];
	struct ftype *f;
	int rc = field_entry(a, i, &f);

	if (rc)
		return rc;
	if (a->b->c[i].path_off != a->last_path) { /* runs share a path */
		a->last_path = a->b->c[i].path_off;
		a->last_plen = strlen(path);
	}
	if (!*path || META_SID_LEN + a->last_plen > META_KEY_MAX) {
		dmfs_say(a->msg, a->msgsz, "%s: %s: %s", path, field,
			 *path ? "path too long" : "empty path");
		return DMFS_ERR_INVAL;
	}
	if (cv->t == MV_NULL)
		return 0;
	if ((cv->t == MV_STRING || cv->t == MV_BLOB) &&
	    cv->len > MVAL_MAX_LEN) {
		dmfs_say(a->msg, a->msgsz, "%s: %s: value longer than %d bytes",
			 path, field, MVAL_MAX_LEN);
		return DMFS_ERR_INVAL;
	}
	if (cv->t == MV_FLOAT && !isfinite(cv->f)) {
		dmfs_say(a->msg, a->msgsz, "%s: %s: not a finite number", path,
			 field);
		return DMFS_ERR_INVAL;
	}
	if (f->t == MV_NULL)
		f->t = cv->t; /* the first value fixes the type */
	if (!mval_fits(cv->t, f->t)) {
		snprintf(pre, sizeof(pre), "%s: %s: ", path, field);
		meta_say_mismatch(a->msg, a->msgsz, pre, f->t, cv);
		return DMFS_ERR_INVAL;
	}
	if (f->sf && meta_sfield_check(f->sf, cv, why, sizeof(why))) {
		dmfs_say(a->msg, a->msgsz, "%s: %s: %s", path, field, why);
		return DMFS_ERR_INVAL;
	}
	return 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t nc;
	void *np;

	if (need <= *cap)
		return 0;
	nc = *cap ? *cap : 16;
	while (nc < need)
		nc *= 2;
	np = realloc(*p, nc * size);
	if (!np)
		return DMFS_ERR_NOMEM;
	*p = np;
	*cap = nc;
	return 0;
}

/* The log line of the current path into a->line: 4 bytes for the number
 * of changes (the outbox entry's head), then the JSON. */
static void make_line(struct apply *a, const char *path, size_t plen,
		      size_t np, int64_t t)
{
	struct meta_buf *l = &a->line;
	const struct meta_rf *of;
	bool any;

	l->n = 0;
	meta_buf_put(l, NULL, 4);
	if (l->err)
		return;
	l->p[0] = (char)((np >> 24) & 0xff), l->p[1] = (char)((np >> 16) & 0xff);
	l->p[2] = (char)((np >> 8) & 0xff), l->p[3] = (char)(np & 0xff);
	meta_buf_puts(l, "{\"t\":");
	meta_buf_i64(l, t);
	meta_buf_puts(l, ",\"w\":");
	meta_buf_jstr(l, a->m->writer, a->wlen);
	meta_buf_puts(l, ",\"who\":");
	meta_buf_jstr(l, a->m->who, a->wholen);
	meta_buf_puts(l, ",\"path\":");
	meta_buf_jstr(l, path, plen);
	meta_buf_puts(l, ",\"set\":{");
	for (size_t j = 0; j < np; j++) {
		const struct pend *p = &a->pd[j];
		const char *f = field_of(a->b, p->ci);
		if (j)
			meta_buf_put(l, ",", 1);
		meta_buf_jstr(l, f, field_len(a->b, p->ci));
		meta_buf_put(l, ":", 1);
		meta_buf_stored_json(l, p->type, a->vals.p + p->voff, p->vlen);
	}
	meta_buf_put(l, "}", 1);
	/* JSON cannot tell 5.0 from 5: float fields are named (for the
	 * old value too). */
	any = false;
	for (size_t j = 0; j < np; j++) {
		const struct pend *p = &a->pd[j];
		const char *f = field_of(a->b, p->ci);
		of = p->oi >= 0 ? &a->old.f[p->oi] : NULL;
		if (p->type != MV_FLOAT && !(of && of->type == MV_FLOAT))
			continue;
		meta_buf_puts(l, any ? "," : ",\"types\":{");
		any = true;
		meta_buf_jstr(l, f, field_len(a->b, p->ci));
		meta_buf_puts(l, ":\"float\"");
	}
	if (any)
		meta_buf_put(l, "}", 1);
	any = false;
	for (size_t j = 0; j < np; j++) {
		const struct pend *p = &a->pd[j];
		const char *f = field_of(a->b, p->ci);
		of = p->oi >= 0 ? &a->old.f[p->oi] : NULL;
		if (!of || of->type == MV_NULL)
			continue;
		meta_buf_puts(l, any ? "," : ",\"old\":{");
		any = true;
		meta_buf_jstr(l, f, field_len(a->b, p->ci));
		meta_buf_put(l, ":", 1);
		meta_buf_stored_json(l, of->type, of->val, of->vlen);
	}
	if (any)
		meta_buf_put(l, "}", 1);
	meta_buf_put(l, "}", 1);
}

/* The required fields the new row lacks (a row with any field must have
 * them all).  0 or DMFS_ERR_INVAL with msg. */
static int check_required(struct apply *a, const char *path, size_t n)
{
	if (!a->nreq || !meta_rowrec_live(a->nf, n))
		return 0;
	for (size_t j = 0; j < a->nreq; j++) {
		const char *name = a->req[j]->name;
		size_t nl = strlen(name);
		struct meta_rowrec r = {.f = a->nf, .n = n};
		long k = meta_rowrec_find(&r, name, nl);
		if (k >= 0 && a->nf[k].type != MV_NULL)
			continue;
		dmfs_say(a->msg, a->msgsz, "%s: %s: required field missing",
			 path, name);
		return DMFS_ERR_INVAL;
	}
	return 0;
}

/* The field index follows the row keyed k from what is stored to
 * newrec.  0 or DMFS_ERR_*. */
static int qidx_old_new(struct apply *a, const MDB_val *k,
			const MDB_val *newrec)
{
	MDB_val key = *k, ov;
	int rc = mdb_get(a->txn, a->m->db_rows, &key, &ov);

	if (rc && rc != MDB_NOTFOUND)
		return meta_mdb_err(rc);
	return meta_qidx_update(a->m, a->txn, k, rc ? NULL : &ov, newrec);
}

/* Steps 2-4 for the changes e[0..n) of one path (sorted by field). */
static int apply_path(struct apply *a, const struct oent *e, size_t n)
{
	const char *path = path_of(a->b, e[0].ci);
	size_t plen = strlen(path), np = 0, nn = 0;
	unsigned char key[META_KEY_MAX], ob[META_SID_LEN + 8];
	MDB_val k = {meta_row_key(a->m, path, plen, key), key}, v, ok;
	int64_t t = a->now;
	int rc;

	a->old.n = 0;
	ok = k; /* the cursor points ok at the stored key */
	rc = mdb_cursor_get(a->rows, &ok, &v, MDB_SET_KEY);
	if (rc && rc != MDB_NOTFOUND)
		return meta_mdb_err(rc);
	if (!rc && (rc = meta_row_decode(&v, &a->old)))
		return rc;
	a->vals.n = 0;
	for (size_t i = 0; i < n; i++) {
		const struct change *c;
		const char *field;
		const struct mval *nv;
		struct mval cv;
		const struct meta_rf *of;
		struct mval fv;
		struct pend *p;
		/* Only the last change of a (path, field) counts. */
		if (i + 1 < n && e[i + 1].frank == e[i].frank)
			continue;
		c = &a->b->c[e[i].ci];
		field = field_of(a->b, e[i].ci);
		cv = value_of(a->b, e[i].ci);
		nv = &cv;
		if ((rc = grow((void **)&a->pd, &a->pdcap, np + 1,
			       sizeof(*a->pd))))
			return rc;
		p = &a->pd[np];
		p->ci = e[i].ci;
		p->oi = meta_rowrec_find(&a->old, field,
					 field_len(a->b, e[i].ci));
		of = p->oi >= 0 ? &a->old.f[p->oi] : NULL;
		if (nv->t == MV_INT && a->ft[c->field].t == MV_FLOAT) {
			fv = *nv; /* an int into a float field is a float */
			fv.t = MV_FLOAT;
			fv.f = (double)nv->i;
			nv = &fv;
		}
		p->type = nv->t;
		p->voff = a->vals.n;
		if (nv->t != MV_NULL && (rc = meta_buf_stored(&a->vals, nv)))
			return rc;
		p->vlen = a->vals.n - p->voff;
		if (nv->t == MV_NULL ? !of || of->type == MV_NULL
				     : of && of->type == nv->t &&
					   of->vlen == p->vlen &&
					   !memcmp(of->val, a->vals.p + p->voff,
						   p->vlen))
			continue; /* changes nothing: not logged either */
		if (of && of->t >= t)
			t = of->t + 1;
		np++;
	}
	if (!np)
		return 0;

	/* The new row: the old one with the changed fields replaced or
	 * inserted, both sorted by name. */
	if ((rc = grow((void **)&a->nf, &a->nfcap, a->old.n + np,
		       sizeof(*a->nf))))
		return rc;
	for (size_t i = 0, j = 0; i < a->old.n || j < np;) {
		const struct pend *p = j < np ? &a->pd[j] : NULL;
		long pos = p ? (p->oi >= 0 ? p->oi : -p->oi - 1) : -1;
		if (!p || (long)i < pos) {
			a->nf[nn++] = a->old.f[i++];
			continue;
		}
		const char *f = field_of(a->b, p->ci);
		a->nf[nn++] = (struct meta_rf){
		    .name = f,
		    .nlen = field_len(a->b, p->ci),
		    .t = t,
		    .w = a->m->writer,
		    .wlen = a->wlen,
		    .type = p->type,
		    .val = a->vals.p + p->voff,
		    .vlen = p->vlen};
		if (p->oi >= 0)
			i++;
		j++;
	}
	if ((rc = check_required(a, path, nn)))
		return rc;
	/* Line and record while the old row is still readable (the put
	 * below may move pages). */
	make_line(a, path, plen, np, t);
	if (a->line.err)
		return a->line.err;
	if ((rc = meta_row_encode(a->nf, nn, &a->rec)))
		return rc;
	v.mv_size = a->rec.n;
	v.mv_data = a->rec.p;
	if ((rc = qidx_old_new(a, &k, &v)))
		return rc;
	rc = mdb_cursor_put(a->rows, &k, &v, 0);
	if (rc)
		return meta_mdb_err(rc);
	memcpy(ob, a->m->sid, META_SID_LEN);
	meta_put_be64(ob + META_SID_LEN, a->outseq++);
	k.mv_size = sizeof(ob);
	k.mv_data = ob;
	ok.mv_size = a->line.n;
	ok.mv_data = a->line.p;
	return meta_mdb_err(mdb_cursor_put(a->outbox, &k, &ok, 0));
}

int meta_apply(struct meta *m, const struct meta_batch *b, char *msg,
	       size_t msgsz)
{
	struct apply a = {.m = m, .b = b, .msg = msg, .msgsz = msgsz};
	const struct oent *e;
	int rc, lrc;

	dmfs_say(msg, msgsz, "%s", "");
	if (!b->n)
		return 0;
	a.now = meta_now_us();
	a.wlen = strlen(m->writer);
	a.wholen = strlen(m->who);
	a.last_path = SIZE_MAX;
	rc = make_order(b);
	if (rc)
		return rc;
	e = b->ord->e;
	a.ft = calloc(b->nfields + 1, sizeof(*a.ft));
	if (!a.ft)
		return DMFS_ERR_NOMEM;
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
	a.req = calloc(m->schema.n + 1, sizeof(*a.req));
	if (!a.req) {
		rc = DMFS_ERR_NOMEM;
		goto abort;
	}
	for (size_t j = 0; j < m->schema.n; j++)
		if (m->schema.f[j].required)
			a.req[a.nreq++] = &m->schema.f[j];
	for (size_t i = 0; !rc && i < b->n; i++)
		rc = check_change(&a, i);
	for (size_t j = 0; !rc && j < b->nfields; j++) {
		struct ftype *f = &a.ft[j];
		const char *name = b->arena + b->fields[j];
		if (f->seen && f->is_new && f->t != MV_NULL)
			rc = meta_mdb_err(meta_types_put(m, a.txn, name,
							 strlen(name), f->t));
	}
	/* One read-modify-write per path, in path order. */
	if (!rc)
		rc = meta_mdb_err(mdb_cursor_open(a.txn, m->db_rows, &a.rows));
	if (!rc)
		rc = meta_mdb_err(
		    mdb_cursor_open(a.txn, m->db_outbox, &a.outbox));
	for (size_t i = 0, j; !rc && i < b->n; i = j) {
		for (j = i + 1; j < b->n && e[j].prank == e[i].prank; j++)
			;
		rc = apply_path(&a, e + i, j - i);
	}
	if (a.rows)
		mdb_cursor_close(a.rows);
	if (a.outbox)
		mdb_cursor_close(a.outbox);
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
	free(a.ft);
	free(a.req);
	free(a.line.p);
	free(a.vals.p);
	free(a.rec.p);
	free(a.old.f);
	free(a.nf);
	free(a.pd);
	return rc;
}
