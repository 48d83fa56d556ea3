/*
 * metaq.c - queries over trees (see metaq.h).
 *
 * A query walks the tree in path order (tree.h: one listing page or one
 * manifest line in memory at a time) and joins each file with its user
 * fields: for live/ the row of its key in the metadata table, for a
 * version the metadata frozen in its manifest line.  Nothing is held in
 * memory beyond the current row, so a query over ten million files costs
 * one listing, never ten million rows of RAM.
 *
 * A live query that one comparison of a user field makes selective reads
 * its candidates from the field index instead and looks each up
 * (metaq_index.c); it gives what the walk gives.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dmfs/log.h"
#include "dmfs/tree.h"
#include "metaq_int.h"

struct check_ctx {
	struct meta *m;
	bool live;
};

/* Field types known before the walk: user fields (live only: a version's
 * frozen values are checked row by row) and automatic fields. */
static enum mval_type type_of(void *ctx, const char *field)
{
	struct check_ctx *c = ctx;
	enum mval_type t =
	    c->live && c->m ? meta_field_type(c->m, field) : MV_NULL;
	return t != MV_NULL ? t : metaq_auto_type(field);
}

int metaq_check(struct meta *m, const char *spec, const struct query *q,
		char *msg, size_t msgsz)
{
	struct check_ctx c = {
	    .m = m,
	    .live = !strcmp(spec, "live") || !strncmp(spec, "live/", 5),
	};
	return q ? query_check(q, type_of, &c, msg, msgsz) : 0;
}

int metaq_match_entry(const struct query *q, const struct manifest_entry *e,
		      bool *match, char *msg, size_t msgsz)
{
	struct meta_row user;
	struct metaq_row *row;
	int rc;

	*match = true;
	if (!q)
		return 0;
	row = malloc(sizeof(*row));
	if (!row)
		return DMFS_ERR_NOMEM;
	rc = metaq_row_from_json(e->path, e->meta_json, &user, msg, msgsz);
	if (!rc) {
		metaq_row_init(row, e->path, e, &user);
		rc = query_eval(q, metaq_row_query_get, row, match, msg, msgsz);
		if (rc)
			*match = false;
	}
	meta_row_clear(&user);
	free(row);
	return rc;
}

int metaq_filter_prepare(struct dmfs_store *st, struct meta *m,
			 const char *from, const char *arg, struct query **q,
			 char *msg, size_t msgsz)
{
	char *expr = NULL;
	int rc = metaq_load(st, arg, &expr);

	*q = NULL;
	if (rc && rc != DMFS_ERR_NOT_FOUND) {
		dmfs_say(msg, msgsz, "saved query %s: %s", arg,
			 dmfs_strerror(rc));
		return rc;
	}
	rc = query_parse(expr ? expr : arg, q, msg, msgsz);
	free(expr);
	if (!rc)
		rc = metaq_check(m, from, *q, msg, msgsz);
	if (rc) {
		query_free(*q);
		*q = NULL;
	}
	return rc;
}

int metaq_capture_filter(void *q, const struct manifest_entry *e, bool *keep,
			 char *msg, size_t msgsz)
{
	return metaq_match_entry(q, e, keep, msg, msgsz);
}

/* Join entry e with its user fields, evaluate q and report a match.  0 or
 * DMFS_ERR_* with msg. */
static int visit(struct meta *m, bool live, const struct query *q,
		 struct manifest_entry *e, struct metaq_row *row,
		 int (*cb)(void *ctx, const struct metaq_hit *h), void *ctx,
		 char *msg, size_t msgsz)
{
	struct meta_row user;
	bool match = true;
	int rc;

	if (live && m)
		rc = meta_get(m, e->key, &user);
	else if (live)
		rc = metaq_row_from_json(e->path, NULL, &user, msg, msgsz);
	else
		rc = metaq_row_from_json(e->path, e->meta_json, &user, msg,
					 msgsz);
	if (rc) {
		if (!msg[0])
			dmfs_say(msg, msgsz, "metadata of %s: %s", e->path,
				 dmfs_strerror(rc));
		return rc;
	}
	metaq_row_init(row, e->path, e, &user);
	if (q)
		rc = query_eval(q, metaq_row_query_get, row, &match, msg,
				msgsz);
	if (!rc && match) {
		struct metaq_hit h = {.path = e->path, .e = e, .row = &user};
		rc = cb(ctx, &h);
	}
	meta_row_clear(&user);
	return rc;
}

/* The files a walk would give, in the same order, from the paths the
 * field index names (metaq_index.c), or the whole tree. */
static int run_walk(struct tree *t, struct meta *m, const struct query *q,
		    struct metaq_row *row,
		    int (*cb)(void *ctx, const struct metaq_hit *h), void *ctx,
		    char *msg, size_t msgsz)
{
	struct manifest_entry e;
	bool live = tree_kind(t) == TREE_LIVE;
	int rc = 0, more;

	while ((more = tree_next(t, &e, msg, msgsz)) > 0) {
		rc = visit(m, live, q, &e, row, cb, ctx, msg, msgsz);
		manifest_entry_clear(&e);
		if (rc)
			return rc;
	}
	return more < 0 ? -more : 0;
}

static int run_index(struct tree *t, struct meta *m, const struct query *q,
		     const struct metaq_cands *c, struct metaq_row *row,
		     int (*cb)(void *ctx, const struct metaq_hit *h),
		     void *ctx, char *msg, size_t msgsz)
{
	struct manifest_entry e;
	int rc = 0;

	for (size_t i = 0; !rc && i < c->n; i++) {
		int got = tree_live_lookup(t, c->p[i], &e, msg, msgsz);
		if (got < 0)
			return -got;
		if (!got)
			continue; /* deleted, or hidden from live/ */
		rc = visit(m, true, q, &e, row, cb, ctx, msg, msgsz);
		manifest_entry_clear(&e);
	}
	return rc;
}

int metaq_run(const struct capture_env *env, struct meta *m, const char *spec,
	      const struct query *q,
	      int (*cb)(void *ctx, const struct metaq_hit *h), void *ctx,
	      char *msg, size_t msgsz)
{
	/* The tree must not fill meta_json itself (that is for captures):
	 * live rows come straight from the table here, without JSON. */
	struct capture_env plain = *env;
	struct metaq_cands c = {0};
	struct tree *t = NULL;
	struct metaq_row *row = malloc(sizeof(*row));
	int rc, use = 0;

	plain.meta = NULL;
	if (!row)
		return DMFS_ERR_NOMEM;
	msg[0] = '\0';
	rc = metaq_check(m, spec, q, msg, msgsz);
	if (!rc)
		rc = tree_open(&plain, spec, false, &t, msg, msgsz);
	if (!rc && tree_kind(t) == TREE_LIVE && m)
		rc = metaq_index_plan(&plain, m, tree_live_prefix(t), q, &c,
				      &use, msg, msgsz);
	if (!rc && use) {
		dmfs_log(DMFS_LOG_DEBUG, "query %s: %zu candidate(s) from the "
			 "field index", query_text(q), c.n);
		rc = run_index(t, m, q, &c, row, cb, ctx, msg, msgsz);
	}
	else if (!rc)
		rc = run_walk(t, m, q, row, cb, ctx, msg, msgsz);
	metaq_cands_free(&c);
	tree_close(t);
	free(row);
	return rc;
}

int metaq_format_parse(const char *name, enum metaq_format *out)
{
	static const char *const names[] = {"paths", "jsonl", "csv"};
	for (int i = 0; i < 3; i++)
		if (!strcmp(name, names[i])) {
			*out = (enum metaq_format)i;
			return 0;
		}
	return DMFS_ERR_INVAL;
}

/* --- checking that a batch's files exist --- */

struct path_cursor {
	char **paths;
	size_t n, cap;
};

static int collect_path(void *ctx, const char *path)
{
	struct path_cursor *pc = ctx;
	if (pc->n == pc->cap) {
		size_t cap = pc->cap ? pc->cap * 2 : 1024;
		char **p = realloc(pc->paths, cap * sizeof(*p));
		if (!p)
			return DMFS_ERR_NOMEM;
		pc->paths = p;
		pc->cap = cap;
	}
	pc->paths[pc->n++] = (char *)path; /* borrowed from the batch */
	return 0;
}

int metaq_check_paths(const struct capture_env *env, const char *dir,
		      const struct meta_batch *b, char *msg, size_t msgsz)
{
	struct path_cursor pc = {0};
	struct capture_env plain = *env;
	struct tree *t = NULL;
	struct manifest_entry e;
	char spec[4200];
	size_t i = 0;
	int rc, more = 0;

	plain.meta = NULL;
	msg[0] = '\0';
	rc = meta_batch_paths(b, collect_path, &pc);
	if (rc || !pc.n)
		goto out;
	snprintf(spec, sizeof(spec), "live%s%s", *dir ? "/" : "", dir);
	rc = tree_open(&plain, spec, false, &t, msg, msgsz);
	/* Both sorted by byte order of the key: one merge pass. */
	while (!rc && i < pc.n && (more = tree_next(t, &e, msg, msgsz)) > 0) {
		int c;
		while (i < pc.n && (c = strcmp(pc.paths[i], e.key)) <= 0) {
			if (c < 0) {
				dmfs_say(msg, msgsz, "%s: no such file",
					 pc.paths[i]);
				rc = DMFS_ERR_NOT_FOUND;
				break;
			}
			i++;
		}
		manifest_entry_clear(&e);
	}
	if (!rc && more < 0)
		rc = -more;
	if (!rc && i < pc.n) {
		dmfs_say(msg, msgsz, "%s: no such file", pc.paths[i]);
		rc = DMFS_ERR_NOT_FOUND;
	}
out:
	tree_close(t);
	free(pc.paths);
	return rc;
}
