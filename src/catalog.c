/*
 * catalog.c - the mount's view of the refs (see catalog.h).
 *
 * Generations.  A ref list read at one time is a generation: an immutable
 * array of (name, manifest, created) sorted by name, and the .dmfs/log
 * text made from it.  The catalog points at the newest one; a reader takes
 * a hold on it under the lock and then works without the lock, so a
 * refresh that installs a new generation never waits for readers and
 * never frees what a reader still uses (the last holder frees it).
 *
 * Refreshing.  Reading the refs is a LIST and one GET per ref: it happens
 * with no lock held.  A lazy refresh is started by the first operation
 * that finds the list older than `refresh` seconds (counted from the last
 * attempt, so a store that is down is asked once per interval, not once
 * per operation); while it runs, the others use the list they have.  Only
 * the very first load is waited for (an empty list would be a wrong
 * answer, not a stale one).  catalog_refresh always reads the list itself
 * (a refresh already running may have started before the change its
 * caller wants to see).  Each read gets a sequence number when it starts;
 * a result is installed only if no later-started read was installed
 * first, so the list never goes back in time.
 *
 * Order.  Names are compared with '/' as the smallest byte, so the refs
 * of one dataset sort together and dataset names come in byte order
 * ("a" before "a-b", which plain strcmp of "datasets/a/..." and
 * "datasets/a-b/..." would not give).
 *
 * Indexing.  catalog_ensure_indexed runs one job per manifest hash: the
 * first caller fetches and indexes it without the lock; callers arriving
 * meanwhile wait on the job (held by a count, freed by its last holder).
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "dmfs/catalog.h"
#include "dmfs/fmt.h"
#include "dmfs/log.h"

#define CAT_FIRST_RETRY_SEC 1.0 /* a failed first load is retried so often */
#define CAT_FAIL_SEC                                                           \
	5.0		  /* a manifest that failed is not tried again         \
			     for so long (find would ask per file) */
#define CAT_FAILS 8	  /* failures remembered */
#define LOG_MSG_MAX 300	  /* bytes of a message shown in the log */
#define LOG_NAME_COL 40	  /* widest name column */
#define LOG_AUTHOR_COL 24 /* widest author column */

struct cat_ref {
	char *name; /* "snapshots/ID", "datasets/NAME/VERSION" */
	char manifest[65];
	int64_t created;
	int64_t order;	/* manifest_header_order: newest wins */
};

struct cat_gen {
	int holders;	   /* protected by catalog.lock */
	struct cat_ref *v; /* sorted by ref_cmp; immutable */
	size_t n;
	char *log; /* .dmfs/log text; immutable */
};

struct index_job {
	struct index_job *next; /* protected by catalog.lock */
	char hash[65];
	int holders; /* the worker and its waiters; protected by lock */
	bool done;   /* protected by lock */
	int rc;	     /* set before done */
	char msg[512];
};

/* A manifest that could not be indexed, remembered for a while. */
struct index_fail {
	char hash[65];
	int rc;
	double at;
	char msg[512];
};

struct catalog {
	struct dmfs_store *st; /* borrowed */
	struct mindex *mx;     /* borrowed */
	char *cache_dir;
	double refresh;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a refresh or an index job ended */
	struct cat_gen *gen; /* never NULL; protected by lock */
	bool loaded;	     /* a list was read; protected by lock */
	bool refreshing;     /* a lazy refresh runs; protected by lock */
	double tried_at;     /* last read started; protected by lock */
	uint64_t seq, installed_seq;	    /* protected by lock */
	struct index_job *jobs;		    /* protected by lock */
	struct index_fail fails[CAT_FAILS]; /* protected by lock */
	size_t next_fail;		    /* protected by lock */
};

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* strcmp with '/' below every other byte. */
static int path_cmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned ca = (unsigned char)*a, cb = (unsigned char)*b;
		if (ca == '/')
			ca = 1;
		if (cb == '/')
			cb = 1;
		if (ca != cb || !ca)
			return (int)ca - (int)cb;
	}
}

static int ref_cmp(const void *a, const void *b)
{
	return path_cmp(((const struct cat_ref *)a)->name,
			((const struct cat_ref *)b)->name);
}

/* --- generations --- */

static void gen_free(struct cat_gen *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n; i++)
		free(g->v[i].name);
	free(g->v);
	free(g->log);
	free(g);
}

/* A hold on the current generation.  Release with gen_put. */
static struct cat_gen *gen_get(struct catalog *c)
{
	pthread_mutex_lock(&c->lock);
	struct cat_gen *g = c->gen;
	g->holders++;
	pthread_mutex_unlock(&c->lock);
	return g;
}

static void gen_put(struct catalog *c, struct cat_gen *g)
{
	pthread_mutex_lock(&c->lock);
	int last = --g->holders == 0;
	pthread_mutex_unlock(&c->lock);
	if (last)
		gen_free(g);
}

/* A generation of refs (not taken).  NULL on ENOMEM. */
static struct cat_gen *gen_build(const struct ref_info *refs, size_t n)
{
	struct cat_gen *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->v = n ? calloc(n, sizeof(*g->v)) : NULL;
	g->log = catalog_format_log(refs, n);
	if ((n && !g->v) || !g->log)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		g->v[i].name = strdup(refs[i].name);
		if (!g->v[i].name)
			goto fail;
		g->n++;
		memcpy(g->v[i].manifest, refs[i].manifest, 65);
		g->v[i].created = refs[i].h.created;
		g->v[i].order = manifest_header_order(&refs[i].h);
	}
	if (g->n > 1)
		qsort(g->v, g->n, sizeof(*g->v), ref_cmp);
	g->holders = 1; /* the catalog's */
	return g;
fail:
	gen_free(g);
	return NULL;
}

static const struct cat_ref *gen_find(const struct cat_gen *g, const char *name)
{
	struct cat_ref key = {.name = (char *)name};

	if (!g->n)
		return NULL;
	return bsearch(&key, g->v, g->n, sizeof(*g->v), ref_cmp);
}

/* --- refreshing --- */

/* Read the refs and install them unless a later read was installed. */
static int load(struct catalog *c, uint64_t seq, char *msg, size_t msgsz)
{
	struct dmfs_err_detail d = {0};
	struct ref_info *refs = NULL;
	struct cat_gen *g, *old = NULL;
	size_t n = 0;
	double t0 = now_mono();
	int rc = refs_list(c->st, &refs, &n, &d);

	if (rc) {
		snprintf(msg, msgsz, "reading the refs: %s%s%s",
			 dmfs_strerror(rc), d.message[0] ? ": " : "",
			 d.message);
		dmfs_log(DMFS_LOG_WARN, "catalog: %s", msg);
		return rc;
	}
	g = gen_build(refs, n);
	refs_free(refs, n);
	if (!g) {
		snprintf(msg, msgsz, "reading the refs: %s",
			 dmfs_strerror(DMFS_ERR_NOMEM));
		return DMFS_ERR_NOMEM;
	}
	pthread_mutex_lock(&c->lock);
	if (seq > c->installed_seq) {
		old = c->gen;
		c->gen = g;
		c->installed_seq = seq;
		c->loaded = true;
		g = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (old)
		gen_put(c, old);
	if (g)
		gen_free(g); /* overtaken by a later read */
	dmfs_log(DMFS_LOG_DEBUG, "catalog: %zu refs read in %.3f s", n,
		 now_mono() - t0);
	return 0;
}

/* The lazy refresh (see the top of the file). */
static void maybe_refresh(struct catalog *c)
{
	char msg[512];
	uint64_t seq;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		double t = now_mono();
		bool stale =
		    c->loaded ? c->refresh > 0 && t - c->tried_at >= c->refresh
			      : t - c->tried_at >= CAT_FIRST_RETRY_SEC;
		if (!stale)
			break;
		if (c->refreshing) {
			if (c->loaded)
				break; /* go on with the list we have */
			pthread_cond_wait(&c->cond, &c->lock);
			continue;
		}
		c->refreshing = true;
		c->tried_at = t;
		seq = ++c->seq;
		pthread_mutex_unlock(&c->lock);
		(void)load(c, seq, msg, sizeof(msg)); /* logged there */
		pthread_mutex_lock(&c->lock);
		c->refreshing = false;
		pthread_cond_broadcast(&c->cond);
		break;
	}
	pthread_mutex_unlock(&c->lock);
}

int catalog_refresh(struct catalog *c, char *msg, size_t msgsz)
{
	uint64_t seq;

	pthread_mutex_lock(&c->lock);
	seq = ++c->seq;
	c->tried_at = now_mono();
	pthread_mutex_unlock(&c->lock);
	return load(c, seq, msg, msgsz);
}

/* --- life --- */

int catalog_new(struct dmfs_store *st, struct mindex *mx, const char *cache_dir,
		double refresh, struct catalog **out)
{
	struct catalog *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return DMFS_ERR_NOMEM;
	c->st = st;
	c->mx = mx;
	c->refresh = refresh;
	c->tried_at = -1e9;
	c->cache_dir = strdup(cache_dir);
	c->gen = gen_build(NULL, 0);
	if (!c->cache_dir || !c->gen) {
		gen_free(c->gen);
		free(c->cache_dir);
		free(c);
		return DMFS_ERR_NOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	*out = c;
	return 0;
}

void catalog_free(struct catalog *c)
{
	if (!c)
		return;
	/* Every operation has ended: no holder, no job is left. */
	gen_free(c->gen);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c->cache_dir);
	free(c);
}

/* --- lookups --- */

int catalog_lookup(struct catalog *c, const char *name, char manifest[65],
		   int64_t *created)
{
	struct cat_gen *g = gen_get(c);
	const struct cat_ref *r = gen_find(g, name);

	if (!r) {
		/* Perhaps made since: ask again, if the list is stale. */
		gen_put(c, g);
		maybe_refresh(c);
		g = gen_get(c);
		r = gen_find(g, name);
	}
	if (r && manifest)
		memcpy(manifest, r->manifest, 65);
	if (r && created)
		*created = r->created;
	gen_put(c, g);
	return r ? 0 : DMFS_ERR_NOT_FOUND;
}

/*
 * Walk the children of dir in g: cb(name, len, created) once per child
 * (a dataset name once, with its newest version's time).  Returns 0,
 * cb's value, or DMFS_ERR_NOT_FOUND for an unknown or empty dir (but
 * "snapshots" and "datasets" always exist).
 */
typedef int (*walk_cb)(void *ctx, const char *name, size_t len,
		       int64_t created, int64_t order);

static int walk(const struct cat_gen *g, const char *dir, walk_cb cb, void *ctx)
{
	char prefix[REF_NAME_MAX + 2];
	size_t plen;
	bool top = !strcmp(dir, "snapshots") || !strcmp(dir, "datasets");
	bool any = false;

	if (!top &&
	    (strncmp(dir, "datasets/", 9) || !dir[9] || strchr(dir + 9, '/')))
		return DMFS_ERR_NOT_FOUND;
	plen = (size_t)snprintf(prefix, sizeof(prefix), "%s/", dir);
	if (plen >= sizeof(prefix))
		return DMFS_ERR_NOT_FOUND;
	for (size_t i = 0; i < g->n;) {
		const char *name = g->v[i].name;
		if (strncmp(name, prefix, plen)) {
			i++;
			continue;
		}
		const char *child = name + plen;
		size_t len = strcspn(child, "/");
		int64_t created = g->v[i].created, order = g->v[i].order;
		/* "datasets": one child per name, its versions follow it */
		size_t j = i + 1;
		while (j < g->n && !strncmp(g->v[j].name, name, plen + len) &&
		       g->v[j].name[plen + len] == '/') {
			if (g->v[j].created > created)
				created = g->v[j].created;
			if (g->v[j].order > order)
				order = g->v[j].order;
			j++;
		}
		any = true;
		int rc = cb(ctx, child, len, created, order);
		if (rc)
			return rc;
		i = j;
	}
	return any || top ? 0 : DMFS_ERR_NOT_FOUND;
}

struct children_ctx {
	catalog_child_cb cb;
	void *ctx;
};

static int children_one(void *ctx, const char *name, size_t len,
			int64_t created, int64_t order)
{
	(void)order;
	struct children_ctx *cc = ctx;
	char buf[REF_NAME_MAX];

	if (len >= sizeof(buf))
		return 0;
	memcpy(buf, name, len);
	buf[len] = '\0';
	return cc->cb(cc->ctx, buf, created);
}

int catalog_children(struct catalog *c, const char *dir, catalog_child_cb cb,
		     void *ctx)
{
	struct children_ctx cc = {cb, ctx};
	struct cat_gen *g;
	int rc;

	maybe_refresh(c);
	g = gen_get(c);
	rc = walk(g, dir, children_one, &cc);
	gen_put(c, g);
	return rc;
}

struct latest_ctx {
	char name[REF_NAME_MAX];
	int64_t created;
	int64_t order;
	bool found;
};

static int latest_one(void *ctx, const char *name, size_t len, int64_t created,
		      int64_t order)
{
	struct latest_ctx *lc = ctx;

	/* The newest by creation order (microseconds); on an exact tie,
	 * the later name, as `dmfs log` lists it first. */
	if (len < sizeof(lc->name) && (!lc->found || order >= lc->order)) {
		memcpy(lc->name, name, len);
		lc->name[len] = '\0';
		lc->created = created;
		lc->order = order;
		lc->found = true;
	}
	return 0;
}

int catalog_latest(struct catalog *c, const char *dir, char *name,
		   size_t namesz, int64_t *created)
{
	struct latest_ctx lc = {.found = false};
	struct cat_gen *g;
	int rc;

	maybe_refresh(c);
	g = gen_get(c);
	rc = walk(g, dir, latest_one, &lc);
	gen_put(c, g);
	if (rc)
		return rc;
	if (!lc.found || strlen(lc.name) >= namesz)
		return DMFS_ERR_NOT_FOUND;
	memcpy(name, lc.name, strlen(lc.name) + 1);
	if (created)
		*created = lc.created;
	return 0;
}

char *catalog_log_text(struct catalog *c)
{
	struct cat_gen *g;
	char *s;

	maybe_refresh(c);
	g = gen_get(c);
	s = strdup(g->log);
	gen_put(c, g);
	return s;
}

/* --- indexing --- */

static void job_put(struct index_job *j)
{
	/* called with the catalog lock held */
	if (--j->holders == 0)
		free(j);
}

static int index_now(struct catalog *c, const char *hash, char *msg,
		     size_t msgsz)
{
	struct dmfs_err_detail d = {0};
	char path[4096];
	uint64_t n = 0;
	double t0 = now_mono();
	int rc =
	    manifest_fetch(c->st, c->cache_dir, hash, path, sizeof(path), &d);

	if (rc) {
		snprintf(msg, msgsz, "manifest %.16s: %s%s%.200s", hash,
			 rc == DMFS_ERR_NOT_FOUND ? "not in the store"
						  : dmfs_strerror(rc),
			 d.message[0] ? ": " : "", d.message);
		dmfs_log(DMFS_LOG_ERROR, "catalog: %s", msg);
		return rc;
	}
	rc = mindex_add(c->mx, hash, path, &n, msg, msgsz);
	if (rc) {
		dmfs_log(DMFS_LOG_ERROR, "catalog: indexing manifest %.16s: %s",
			 hash, msg);
		return rc;
	}
	dmfs_log(DMFS_LOG_INFO,
		 "catalog: manifest %.16s: %" PRIu64
		 " entries indexed in %.2f s",
		 hash, n, now_mono() - t0);
	return 0;
}

int catalog_ensure_indexed(struct catalog *c, const char *hash_hex, char *msg,
			   size_t msgsz)
{
	struct index_job *j;
	int rc;

	if (mindex_has(c->mx, hash_hex))
		return 0;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < CAT_FAILS; i++) {
		const struct index_fail *f = &c->fails[i];
		if (!strcmp(f->hash, hash_hex) &&
		    now_mono() - f->at < CAT_FAIL_SEC) {
			snprintf(msg, msgsz, "%s", f->msg);
			pthread_mutex_unlock(&c->lock);
			return f->rc;
		}
	}
	for (j = c->jobs; j && strcmp(j->hash, hash_hex); j = j->next)
		;
	if (j) {
		/* Someone is at it: wait for the result. */
		j->holders++;
		while (!j->done)
			pthread_cond_wait(&c->cond, &c->lock);
		rc = j->rc;
		snprintf(msg, msgsz, "%s", j->msg);
		job_put(j);
		pthread_mutex_unlock(&c->lock);
		return rc;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		pthread_mutex_unlock(&c->lock);
		snprintf(msg, msgsz, "%s", dmfs_strerror(DMFS_ERR_NOMEM));
		return DMFS_ERR_NOMEM;
	}
	snprintf(j->hash, sizeof(j->hash), "%s", hash_hex);
	j->holders = 1;
	j->next = c->jobs;
	c->jobs = j;
	pthread_mutex_unlock(&c->lock);

	rc = index_now(c, hash_hex, j->msg, sizeof(j->msg));

	pthread_mutex_lock(&c->lock);
	if (rc) {
		struct index_fail *f = &c->fails[c->next_fail++ % CAT_FAILS];
		snprintf(f->hash, sizeof(f->hash), "%s", hash_hex);
		snprintf(f->msg, sizeof(f->msg), "%s", j->msg);
		f->rc = rc;
		f->at = now_mono();
	}
	j->rc = rc;
	j->done = true;
	for (struct index_job **pp = &c->jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	snprintf(msg, msgsz, "%s", j->msg);
	pthread_cond_broadcast(&c->cond);
	job_put(j);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* --- the log text --- */

/* s on one line: control characters become spaces, at most max bytes
 * (cut at a character boundary, "..." added).  Into out (max + 4). */
static void one_line(const char *s, char *out, size_t max)
{
	size_t n = 0;

	for (; s && *s && n < max; s++)
		out[n++] = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
	if (s && *s) {
		while (n && ((unsigned char)out[n - 1] & 0xc0) == 0x80)
			n--; /* continuation bytes of a cut character */
		if (n && (unsigned char)out[n - 1] >= 0xc0)
			n--;
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

char *catalog_format_log(const struct ref_info *refs, size_t n)
{
	char *text = NULL, when[32], bytes[32], msg[LOG_MSG_MAX + 4];
	char author[LOG_AUTHOR_COL * 4 + 4];
	size_t len = 0;
	int wname = 4, wauthor = 1;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int l = (int)strlen(refs[i].name);
		int a = refs[i].h.author ? (int)strlen(refs[i].h.author) : 1;
		if (l > wname)
			wname = l < LOG_NAME_COL ? l : LOG_NAME_COL;
		if (a > wauthor)
			wauthor = a < LOG_AUTHOR_COL ? a : LOG_AUTHOR_COL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct manifest_header *h = &refs[i].h;
		time_t t = (time_t)h->created;
		struct tm tm;

		if (gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%SZ", &tm);
		else
			snprintf(when, sizeof(when), "%" PRId64, h->created);
		dmfs_format_bytes((double)h->bytes, bytes, sizeof(bytes));
		one_line(h->author ? h->author : "-", author, LOG_AUTHOR_COL);
		one_line(h->message, msg, LOG_MSG_MAX);
		fprintf(f,
			"%-*s  %s  %-*s  %-9s  %8" PRIu64 " files  %10s%s%s\n",
			wname, refs[i].name, when, wauthor, author,
			h->zero_copy ? "zero-copy" : "copy", h->files, bytes,
			msg[0] ? "  " : "", msg);
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

char *catalog_format_log_json(const struct ref_info *refs, size_t n)
{
	cJSON *arr = cJSON_CreateArray();
	char *txt = NULL, *out = NULL;
	bool ok = arr != NULL;

	for (size_t i = 0; ok && i < n; i++) {
		char *ht = manifest_header_to_json(&refs[i].h);
		cJSON *o = ht ? cJSON_Parse(ht) : NULL;
		free(ht);
		ok = o && cJSON_AddStringToObject(o, "ref", refs[i].name) &&
		     cJSON_AddStringToObject(o, "manifest", refs[i].manifest);
		if (o && !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			ok = false;
		}
	}
	if (ok)
		txt = cJSON_Print(arr);
	cJSON_Delete(arr);
	if (txt && asprintf(&out, "%s\n", txt) < 0)
		out = NULL;
	free(txt);
	return out;
}
