/*
 * test_qidx.c - the field index of the metadata table (meta_qidx.c) and
 * the queries answered from it (metaq_index.c), against a file:// store.
 *
 * Two tables share a store; random rows are written on both in batches
 * (sets, removals, moves of a row's labels to another path), exchanged
 * through their logs (merge), one table is compacted and a third starts
 * from the checkpoint, and a cache is made to look older than the index
 * (its index dropped) so that it is built at open.  After each step the
 * index must name exactly the rows whose value passes each comparison
 * (checked against a scan of every row), and for many random queries the
 * results through the index must equal the walk's (DMFS_QUERY_INDEX=0),
 * files deleted from the store included; values and literals too long
 * for a key.
 */
#include "config.h"

#include <ftw.h>
#include <lmdb.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dmfs/log.h"
#include "dmfs/meta.h"
#include "dmfs/metaq.h"
#include "dmfs/query.h"
#include "dmfs/store_open.h"
#include "../../src/metaq_int.h" /* metaq_index_plan */
#include "unit.h"

#define NFILES 200
#define NGHOST 20

static char root[] = "/tmp/test_qidx.XXXXXX";
static char bucket[4100], store_uri[4200];
static struct dmfs_store *st;
static unsigned rnd_state = 12345;

static unsigned rnd(unsigned n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) % n;
}

static const char *const strs[] = {"", "a", "ab", "abc", "a\001", "a\001b",
				   "b", "ba", "\001", "zz"};
static const double floats[] = {-1.5, -0.0, 0.0, 0.5, 2.25, 1e300};

static struct meta *open_table(const char *name)
{
	char dir[4200], msg[512] = "";
	struct meta *m = NULL;

	snprintf(dir, sizeof(dir), "%s/%s", root, name);
	if (meta_open(dir, st, store_uri, &m, msg, sizeof(msg))) {
		fprintf(stderr, "meta_open %s: %s\n", name, msg);
		exit(1);
	}
	return m;
}

static void path_of(unsigned i, char *out, size_t n)
{
	if (i < NFILES)
		snprintf(out, n, "d%u/f%03u.txt", i % 4, i);
	else
		snprintf(out, n, "ghost/g%03u.txt", i); /* no such file */
}

static struct mval random_value(const char *field)
{
	const char *s;

	switch (field[0]) {
	case 'n':
		return (struct mval){.t = MV_INT, .i = (int64_t)rnd(11) - 5};
	case 'x':
		return (struct mval){.t = MV_FLOAT, .f = floats[rnd(6)]};
	case 'b':
		return (struct mval){.t = MV_BOOL, .b = rnd(2)};
	default:
		s = strs[rnd(10)];
		return (struct mval){.t = MV_STRING, .s = (char *)s,
				     .len = strlen(s)};
	}
}

static const char *const fields[] = {"n", "x", "b", "s"};

/* One batch of random changes on m: sets, removals, and moves of a whole
 * row (as a rename does: removals on one path, sets on the other). */
static void random_batch(struct meta *m, unsigned nchanges)
{
	struct meta_batch *b = NULL;
	char msg[512] = "", p[64], q[64];
	int rc;

	CHECK(meta_batch_new(&b) == 0);
	for (unsigned c = 0; c < nchanges; c++) {
		unsigned i = rnd(NFILES + NGHOST), op = rnd(10);
		path_of(i, p, sizeof(p));
		if (op == 0) {
			struct meta_row r;
			path_of((i + 1 + rnd(NFILES)) % (NFILES + NGHOST), q,
				sizeof(q));
			if (!strcmp(p, q) || meta_get(m, p, &r))
				continue;
			for (size_t k = 0; k < r.n; k++) {
				CHECK(meta_batch_add(b, p, r.f[k].name, NULL) ==
				      0);
				CHECK(meta_batch_add(b, q, r.f[k].name,
						     &r.f[k].v) == 0);
			}
			meta_row_clear(&r);
			continue;
		}
		const char *f = fields[rnd(4)];
		struct mval v = random_value(f);
		CHECK(meta_batch_add(b, p, f, op == 1 ? NULL : &v) == 0);
	}
	rc = meta_apply(m, b, msg, sizeof(msg));
	CHECK(rc == 0);
	if (rc)
		fprintf(stderr, "  apply: %s\n", msg);
	meta_batch_free(b);
}

static void flush_refresh(struct meta *from, struct meta *to)
{
	char msg[512] = "";
	bool changed;

	CHECK(meta_flush(from, msg, sizeof(msg)) == 0);
	CHECK(meta_refresh(to, &changed, msg, sizeof(msg)) == 0);
}

/* --- the index against a scan of every row --- */

struct list {
	char **p;
	size_t n, cap;
};

static void list_add(struct list *l, const char *s, size_t n)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->p = realloc(l->p, l->cap * sizeof(*l->p));
	}
	l->p[l->n++] = strndup(s, n);
}

static int sort_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted, duplicates dropped, joined with newlines (caller frees). */
static char *list_text(struct list *l)
{
	size_t len = 1;
	char *t;

	if (l->n) /* qsort wants a non-NULL base even for none */
		qsort(l->p, l->n, sizeof(*l->p), sort_cmp);
	for (size_t i = 0; i < l->n; i++)
		len += strlen(l->p[i]) + 1;
	t = calloc(1, len);
	for (size_t i = 0; i < l->n; i++) {
		if (i && !strcmp(l->p[i], l->p[i - 1]))
			continue;
		strcat(t, l->p[i]);
		strcat(t, "\n");
	}
	for (size_t i = 0; i < l->n; i++)
		free(l->p[i]);
	free(l->p);
	memset(l, 0, sizeof(*l));
	return t;
}

static int scan_cb(void *ctx, const char *path, size_t plen)
{
	list_add(ctx, path, plen);
	return 0;
}

static bool passes(const struct mval *v, enum meta_qop op,
		   const struct mval *lit)
{
	int c;

	if (!v || v->t != lit->t)
		return false;
	if (op == MQ_PREFIX)
		return v->len >= lit->len && !memcmp(v->s, lit->s, lit->len);
	c = mval_cmp(v, lit);
	return (op == MQ_EQ && !c) || (op == MQ_LT && c < 0) ||
	       (op == MQ_LE && c <= 0) || (op == MQ_GT && c > 0) ||
	       (op == MQ_GE && c >= 0);
}

static void check_index(struct meta *m, const char *what)
{
	int bad = 0;

	for (int round = 0; round < 60; round++) {
		const char *f = fields[rnd(4)];
		enum meta_qop op = (enum meta_qop)rnd(f[0] == 's' ? 6 : 5);
		struct mval lit = random_value(f);
		struct list want = {0}, got = {0};
		struct meta_cursor *c;
		struct meta_row r;
		int rc;

		CHECK(meta_cursor_open(m, "", &c) == 0);
		while ((rc = meta_cursor_next(c, &r)) > 0) {
			if (passes(meta_row_get(&r, f), op, &lit))
				list_add(&want, r.path, strlen(r.path));
			meta_row_clear(&r);
		}
		meta_cursor_close(c);
		CHECK(rc == 0);
		CHECK(meta_qidx_scan(m, f, op, &lit, scan_cb, &got) == 0);
		char *w = list_text(&want), *g = list_text(&got);
		if (strcmp(w, g) && bad++ < 3)
			fprintf(stderr, "%s: %s op %d: index\n%s---\nrows\n%s",
				what, f, (int)op, g, w);
		CHECK(!strcmp(w, g));
		free(w);
		free(g);
	}
}

/* --- queries: index against walk --- */

static int hit_cb(void *ctx, const struct metaq_hit *h)
{
	struct list *l = ctx;
	cJSON *j = meta_row_to_json(h->row);
	char *js = j ? cJSON_PrintUnformatted(j) : NULL;
	char line[1024];

	snprintf(line, sizeof(line), "%s %llu %s %s", h->path,
		 (unsigned long long)h->e->size, h->e->etag, js ? js : "?");
	list_add(l, line, strlen(line));
	free(js);
	cJSON_Delete(j);
	return 0;
}

/* Results in order, one per line (caller frees), or NULL on error. */
static char *run(struct meta *m, const char *spec, const char *expr,
		 bool walk)
{
	struct capture_env env = {.st = st, .store_uri = store_uri,
				  .cache_dir = root};
	struct list l = {0};
	struct query *q = NULL;
	char msg[1024] = "", *out;
	size_t len = 1;
	int rc;

	if (walk)
		setenv("DMFS_QUERY_INDEX", "0", 1);
	else
		unsetenv("DMFS_QUERY_INDEX");
	rc = query_parse(expr, &q, msg, sizeof(msg));
	if (!rc)
		rc = metaq_run(&env, m, spec, q, hit_cb, &l, msg,
			       sizeof(msg));
	query_free(q);
	unsetenv("DMFS_QUERY_INDEX");
	for (size_t i = 0; i < l.n; i++)
		len += strlen(l.p[i]) + 1;
	out = calloc(1, len);
	for (size_t i = 0; i < l.n; i++) { /* in the order given */
		strcat(out, l.p[i]);
		strcat(out, "\n");
		free(l.p[i]);
	}
	free(l.p);
	if (rc) {
		char *e = NULL;
		if (asprintf(&e, "error %d: %s", rc, msg) < 0)
			e = NULL;
		free(out);
		return e;
	}
	return out;
}

static bool uses_index(struct meta *m, const char *expr)
{
	struct capture_env env = {.st = st, .store_uri = store_uri,
				  .cache_dir = root};
	struct metaq_cands c = {0};
	struct query *q = NULL;
	char msg[512];
	int use = 0;

	if (query_parse(expr, &q, msg, sizeof(msg)) == 0 &&
	    metaq_index_plan(&env, m, "", q, &c, &use, msg, sizeof(msg)))
		use = 0;
	metaq_cands_free(&c);
	query_free(q);
	return use;
}

static const char *const qops[] = {"==", "<", "<=", ">", ">="};
static const char *const qstrs[] = {"", "a", "ab", "abc", "b", "ba", "zz"};
static const char *const qfloats[] = {"-1.5", "-0.0", "0.0", "0.5", "2.25",
				      "1e300"};

static void random_expr(char *out, size_t n)
{
	unsigned f = rnd(4);
	const char *op = qops[rnd(5)];
	char one[128];

	switch (f) {
	case 0:
		snprintf(one, sizeof(one), "n %s %d", op, (int)rnd(11) - 5);
		break;
	case 1:
		snprintf(one, sizeof(one), "x %s %s", op, qfloats[rnd(6)]);
		break;
	case 2:
		snprintf(one, sizeof(one), "b == %s",
			 rnd(2) ? "true" : "false");
		break;
	default:
		snprintf(one, sizeof(one), "s %s \"%s\"",
			 rnd(3) ? op : "startswith", qstrs[rnd(7)]);
		break;
	}
	switch (rnd(4)) {
	case 0:
		snprintf(out, n, "%s", one);
		break;
	case 1:
		snprintf(out, n, "%s and b", one);
		break;
	case 2:
		snprintf(out, n, "size >= 0 and %s and n != 0", one);
		break;
	default:
		snprintf(out, n, "(%s or n == 1) and name glob \"*.txt\"", one);
		break;
	}
}

static void check_queries(struct meta *m, const char *what)
{
	char expr[300];
	int bad = 0, indexed = 0;

	for (int round = 0; round < 80; round++) {
		const char *spec = rnd(3) ? "live" : "live/d1";
		random_expr(expr, sizeof(expr));
		char *w = run(m, spec, expr, true), *i = run(m, spec, expr,
							      false);
		CHECK(w && i && !strcmp(w, i));
		if (w && i && strcmp(w, i) && bad++ < 3)
			fprintf(stderr, "%s: %s %s\nwalk:\n%sindex:\n%s", what,
				spec, expr, w, i);
		indexed += uses_index(m, expr);
		free(w);
		free(i);
	}
	/* Most are answerable from the index ("(... or n == 1)" is not). */
	CHECK(indexed > 30);
	CHECK(uses_index(m, "n == 3"));
	CHECK(uses_index(m, "s startswith \"a\" and b"));
	CHECK(!uses_index(m, "n == 3.0"));	/* int field, float literal */
	CHECK(!uses_index(m, "n == 3 or b"));
	CHECK(!uses_index(m, "n == 3 and nosuchfield == 1"));
	setenv("DMFS_QUERY_INDEX", "0", 1);
	CHECK(!uses_index(m, "n == 3"));
	unsetenv("DMFS_QUERY_INDEX");
}

/* A value too long for an index key is still found (as a candidate of
 * every scan of its field), a literal too long for a key walks, and the
 * long value's entry goes when the value does. */
static void test_long(struct meta *m)
{
	char longv[700], expr[800], msg[512] = "";
	struct meta_batch *b = NULL;
	struct mval v;

	memset(longv, 'a', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	v = (struct mval){.t = MV_STRING, .s = longv, .len = strlen(longv)};
	CHECK(meta_batch_new(&b) == 0);
	CHECK(meta_batch_add(b, "d1/f001.txt", "s", &v) == 0);
	CHECK(meta_apply(m, b, msg, sizeof(msg)) == 0);
	meta_batch_free(b);
	snprintf(expr, sizeof(expr), "s == \"%s\"", longv);
	const char *const exprs[] = {"s startswith \"aa\"", "s > \"a\"", expr};
	for (size_t i = 0; i < 3; i++) {
		char *w = run(m, "live", exprs[i], true);
		char *x = run(m, "live", exprs[i], false);
		CHECK(w && x && !strcmp(w, x));
		CHECK(w && strstr(w, "d1/f001.txt"));
		free(w);
		free(x);
	}
	CHECK(uses_index(m, "s startswith \"aa\""));
	CHECK(!uses_index(m, expr));
	CHECK(meta_batch_new(&b) == 0);
	CHECK(meta_batch_add(b, "d1/f001.txt", "s", NULL) == 0);
	CHECK(meta_apply(m, b, msg, sizeof(msg)) == 0);
	meta_batch_free(b);
	check_index(m, "long value removed");
}

/* Make the cache of table name look older than the index. */
static void drop_index(const char *name)
{
	char dir[4200];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;

	snprintf(dir, sizeof(dir), "%s/%s/meta", root, name);
	CHECK(mdb_env_create(&env) == 0);
	mdb_env_set_maxdbs(env, 16);
	mdb_env_set_mapsize(env, 16ull << 30);
	CHECK(mdb_env_open(env, dir, 0, 0600) == 0);
	CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
	CHECK(mdb_dbi_open(txn, "qidx", 0, &dbi) == 0);
	CHECK(mdb_drop(txn, dbi, 1) == 0);
	CHECK(mdb_txn_commit(txn) == 0);
	mdb_env_close(env);
}

int main(void)
{
	char msg[512] = "", p[4300];
	struct meta *a, *b, *c;

	dmfs_log_set_level(DMFS_LOG_ERROR);
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(bucket, sizeof(bucket), "%s/bucket", root);
	mkdir(bucket, 0700);
	for (unsigned i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/d%u", bucket, i);
		mkdir(p, 0700);
	}
	for (unsigned i = 0; i < NFILES; i++) {
		char rel[64];
		path_of(i, rel, sizeof(rel));
		snprintf(p, sizeof(p), "%s/%s", bucket, rel);
		FILE *f = fopen(p, "w");
		if (f) {
			fprintf(f, "%u", i);
			fclose(f);
		}
	}
	snprintf(store_uri, sizeof(store_uri), "file://%s", bucket);
	if (dmfs_store_open(store_uri, NULL, 0, &st, msg, sizeof(msg))) {
		fprintf(stderr, "store: %s\n", msg);
		return 1;
	}
	a = open_table("a");
	b = open_table("b");

	for (int round = 0; round < 6; round++) {
		random_batch(a, 150);
		random_batch(b, 80);
		flush_refresh(a, b);
		flush_refresh(b, a);
	}
	check_index(a, "a");
	check_index(b, "b");
	check_queries(a, "a");

	/* Files deleted behind dmfs's back keep their labels: never
	 * returned, through the index or the walk. */
	for (unsigned i = 0; i < NFILES; i += 7) {
		char rel[64];
		path_of(i, rel, sizeof(rel));
		snprintf(p, sizeof(p), "%s/%s", bucket, rel);
		unlink(p);
	}
	random_batch(b, 100);
	flush_refresh(b, a);
	check_index(a, "a after rm");
	check_queries(a, "a after rm");

	test_long(a);

	/* A fresh table from a checkpoint. */
	CHECK(meta_compact(a, msg, sizeof(msg)) == 0);
	c = open_table("c");
	flush_refresh(a, c);
	check_index(c, "c from checkpoint");
	check_queries(c, "c from checkpoint");

	/* A cache older than the index: built at open. */
	meta_close(b);
	drop_index("b");
	b = open_table("b");
	check_index(b, "b rebuilt");
	check_queries(b, "b rebuilt");

	meta_close(a);
	meta_close(b);
	meta_close(c);
	st->ops->destroy(st);
	unit_rm_tree(root);
	return unit_done("test_qidx");
}
