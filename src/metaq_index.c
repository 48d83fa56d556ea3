/*
 * metaq_index.c - when and how a live query reads the field index
 * (meta_qidx.c) instead of walking the tree.
 *
 * The index names the paths whose user field passes one comparison the
 * whole query requires (query_conjunct: `f == 7`, or one term of a
 * top-level and-chain).  They are sorted into path order, and each is
 * then looked up in the store (tree_live_lookup: the entry the walk
 * would list, or nothing for a file deleted behind dmfs's back) and the
 * whole query evaluated on it as the walk does.  So results are the
 * walk's, for a fraction of its cost when few files match.
 *
 * When it is used: DMFS_QUERY_INDEX is not "0"; every field the query
 * names is a user field with a type or an automatic field (a path
 * segment `k=v` or an unknown field could raise a type error on rows the
 * index does not name, so those queries walk); the comparison's field
 * is a user field of exactly the literal's type (int with an int, float
 * with a float, string, bool; a mixed int/float comparison walks); and
 * the candidates are few enough: at most a tenth of the rows of the table
 * (or 5000), as a lookup, its row and sorting cost more per file than
 * the walk's share of a listing (measured: 500 000 of 1 000 000 files
 * took 4x the walk's time on file://); for S3 at most a hundredth of
 * the rows (at least 20, at most METAQ_INDEX_MAX_REMOTE), as a HEAD per
 * candidate costs about a tenth of a listing page of 1000 keys.  On
 * file:// a lookup is one stat (head_listed).  The table's row count
 * stands for the number of files (it counts every store sharing the
 * cache, and labelled files only).  Of several usable comparisons the one with the fewest
 * candidates is taken.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "metaq_int.h"

#define METAQ_INDEX_MAX_REMOTE 2000
#define METAQ_INDEX_REMOTE_FRACTION 100 /* S3: at most 1/100 of the rows, */
#define METAQ_INDEX_MIN_REMOTE 20	/* or this many, and at most 2000 */
#define METAQ_INDEX_FRACTION 10 /* at most 1/10 of the rows... */
#define METAQ_INDEX_MIN 5000	/* ...or this many */

void metaq_cands_free(struct metaq_cands *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->p[i]);
	free(c->p);
	memset(c, 0, sizeof(*c));
}

struct cand_scan {
	struct metaq_cands *c;
	const char *pfx;
	size_t pl;
	size_t limit;
	bool over;
};

static int collect(void *ctx, const char *path, size_t plen)
{
	struct cand_scan *k = ctx;
	struct metaq_cands *c = k->c;

	if (plen < k->pl || memcmp(path, k->pfx, k->pl) != 0)
		return 0; /* outside the queried directory */
	if (c->n >= k->limit) {
		k->over = true;
		return DMFS_ERR_TOO_BIG;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		char **p = realloc(c->p, cap * sizeof(*p));
		if (!p)
			return DMFS_ERR_NOMEM;
		c->p = p;
		c->cap = cap;
	}
	c->p[c->n] = strndup(path, plen);
	if (!c->p[c->n])
		return DMFS_ERR_NOMEM;
	c->n++;
	return 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct fields_ok {
	struct meta *m;
	bool ok;
};

static int field_known(void *ctx, const char *field)
{
	struct fields_ok *f = ctx;

	if (metaq_auto_type(field) == MV_NULL &&
	    meta_field_type(f->m, field) == MV_NULL)
		f->ok = false;
	return 0;
}

/* Whether the store answers a lookup as cheaply as a local stat. */
static bool store_is_local(struct dmfs_store *st)
{
	return st->ops->scheme && !strcmp(st->ops->scheme, "file");
}

static enum meta_qop qop_of(enum query_cmp op)
{
	switch (op) {
	case QC_EQ:
		return MQ_EQ;
	case QC_LT:
		return MQ_LT;
	case QC_LE:
		return MQ_LE;
	case QC_GT:
		return MQ_GT;
	case QC_GE:
		return MQ_GE;
	default:
		return MQ_PREFIX;
	}
}

int metaq_index_plan(const struct capture_env *env, struct meta *m,
		     const char *pfx, const struct query *q,
		     struct metaq_cands *c, int *use, char *msg, size_t msgsz)
{
	const char *sw = getenv("DMFS_QUERY_INDEX");
	struct fields_ok fo = {.m = m, .ok = true};
	size_t limit, rows;
	const struct mval *lit;
	const char *field;
	enum query_cmp op;
	int rc = 0;

	*use = 0;
	if (!q || !m || (sw && !strcmp(sw, "0")))
		return 0;
	query_fields(q, field_known, &fo);
	if (!fo.ok)
		return 0;
	/* A lookup per candidate against the walk's share of a listing per
	 * file: a broad query walks.  Small tables always use the index
	 * (both plans are cheap there). */
	rows = meta_row_estimate(m);
	limit = rows / METAQ_INDEX_FRACTION;
	if (limit < METAQ_INDEX_MIN)
		limit = METAQ_INDEX_MIN;
	if (!store_is_local(env->st)) {
		/* A HEAD costs about a tenth of a listing page of 1000 keys:
		 * the walk's pages are about rows / 1000. */
		limit = rows / METAQ_INDEX_REMOTE_FRACTION;
		if (limit < METAQ_INDEX_MIN_REMOTE)
			limit = METAQ_INDEX_MIN_REMOTE;
		if (limit > METAQ_INDEX_MAX_REMOTE)
			limit = METAQ_INDEX_MAX_REMOTE;
	}
	for (size_t i = 0; query_conjunct(q, i, &field, &op, &lit); i++) {
		struct metaq_cands try = {0};
		struct cand_scan k = {.c = &try, .pfx = pfx, .pl = strlen(pfx)};
		enum mval_type ft = meta_field_type(m, field);

		if (metaq_auto_type(field) != MV_NULL || ft != lit->t ||
		    ft == MV_BLOB || (op == QC_STARTSWITH && ft != MV_STRING))
			continue;
		/* Never more than the best so far: a worse one stops. */
		k.limit = *use ? c->n : limit;
		rc = meta_qidx_scan(m, field, qop_of(op), lit, collect, &k);
		if (k.over || rc == DMFS_ERR_UNSUPPORTED) {
			metaq_cands_free(&try);
			rc = 0;
			continue;
		}
		if (rc) {
			metaq_cands_free(&try);
			dmfs_say(msg, msgsz, "field index: %s",
				 dmfs_strerror(rc));
			break;
		}
		metaq_cands_free(c);
		*c = try;
		*use = 1;
	}
	if (rc) {
		metaq_cands_free(c);
		*use = 0;
		return rc;
	}
	if (*use && c->n > 1) {
		size_t n = 1;
		qsort(c->p, c->n, sizeof(*c->p), str_cmp);
		for (size_t i = 1; i < c->n; i++) {
			if (!strcmp(c->p[i], c->p[n - 1]))
				free(c->p[i]);
			else
				c->p[n++] = c->p[i];
		}
		c->n = n;
	}
	return 0;
}
