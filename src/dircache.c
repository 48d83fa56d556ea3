/*
 * dircache.c - TTL cache of directory listings (see dircache.h).
 *
 * Concurrency: one mutex (dc->lock) protects the table of slots.  Loading a
 * listing happens outside the lock; a slot being loaded is marked so other
 * threads asking for the same directory wait on the slot's condition
 * variable instead of sending a second listing (so 8 readers opening files
 * of one directory cost one LIST, not eight).
 *
 * Memory is bounded: at most MAX_SLOTS directories are kept; beyond that,
 * the least recently used unloaded slots are dropped.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmfs/dircache.h"
#include "dmfs/log.h"

#define MAX_SLOTS 4096
#define MAX_ENTRIES_PER_DIR 5000000u

struct slot {
	char *dir;		   /* "" or "a/b" */
	struct dc_listing *cur;	   /* protected by dc->lock; may be NULL */
	int loading;		   /* protected by dc->lock */
	int waiters;		   /* protected by dc->lock */
	pthread_cond_t cv;	   /* signalled when loading ends */
	double used_at;		   /* protected by dc->lock */
	double missing_at;	   /* protected by dc->lock: when a listing
				      last found nothing (negative cache) */
	struct slot *next;	   /* hash chain */
};

struct dircache {
	struct dmfs_store *st;	   /* borrowed */
	double ttl;
	const char *const *hide;   /* borrowed */
	pthread_mutex_t lock;
	struct slot **buckets;	   /* protected by lock */
	size_t nbuckets;
	size_t nslots;		   /* protected by lock */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t hash_str(const char *s)
{
	size_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void listing_free(struct dc_listing *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	free(l);
}

int dircache_new(struct dmfs_store *st, double ttl,
		 const char *const *hide_root_names, struct dircache **out)
{
	struct dircache *dc = calloc(1, sizeof(*dc));
	if (!dc)
		return DMFS_ERR_NOMEM;
	dc->nbuckets = 8192;
	dc->buckets = calloc(dc->nbuckets, sizeof(*dc->buckets));
	if (!dc->buckets) {
		free(dc);
		return DMFS_ERR_NOMEM;
	}
	dc->st = st;
	dc->ttl = ttl;
	dc->hide = hide_root_names;
	pthread_mutex_init(&dc->lock, NULL);
	*out = dc;
	return 0;
}

static void slot_free(struct slot *s)
{
	listing_free(s->cur);
	pthread_cond_destroy(&s->cv);
	free(s->dir);
	free(s);
}

void dircache_free(struct dircache *dc)
{
	if (!dc)
		return;
	for (size_t i = 0; i < dc->nbuckets; i++) {
		struct slot *s = dc->buckets[i], *n;
		for (; s; s = n) {
			n = s->next;
			slot_free(s);
		}
	}
	free(dc->buckets);
	pthread_mutex_destroy(&dc->lock);
	free(dc);
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dc_entry *)a)->name,
		      ((const struct dc_entry *)b)->name);
}

const struct dc_entry *dc_listing_find(const struct dc_listing *l,
				       const char *name)
{
	struct dc_entry key = {.name = (char *)name};
	if (!l->n)
		return NULL;
	return bsearch(&key, l->v, l->n, sizeof(*l->v), entry_cmp);
}

static int hidden(struct dircache *dc, const char *dir, const char *name)
{
	if (*dir || !dc->hide)
		return 0;
	for (int i = 0; dc->hide[i]; i++)
		if (!strcmp(dc->hide[i], name))
			return 1;
	return 0;
}

static int push_entry(struct dc_listing *l, size_t *cap, const char *name,
		      size_t nlen, int is_dir, const struct dmfs_obj_info *o)
{
	if (l->n >= MAX_ENTRIES_PER_DIR)
		return DMFS_ERR_TOO_BIG;
	if (l->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct dc_entry *nv = realloc(l->v, nc * sizeof(*nv));
		if (!nv)
			return DMFS_ERR_NOMEM;
		l->v = nv;
		*cap = nc;
	}
	struct dc_entry *e = &l->v[l->n];
	memset(e, 0, sizeof(*e));
	e->name = strndup(name, nlen);
	if (!e->name)
		return DMFS_ERR_NOMEM;
	e->is_dir = is_dir;
	if (o) {
		e->size = o->size;
		e->mtime = o->mtime;
		memcpy(e->etag, o->etag, sizeof(e->etag));
	}
	l->n++;
	return 0;
}

/* A name that cannot be a path component is skipped. */
static int bad_name(const char *name, size_t n)
{
	return n == 0 || (n == 1 && name[0] == '.') ||
	       (n == 2 && name[0] == '.' && name[1] == '.') ||
	       memchr(name, '/', n) != NULL;
}

/*
 * List `dir` from the store.  Returns a new listing (refs 0) in *out.
 * DMFS_ERR_NOT_FOUND when nothing is under the prefix and dir is not "".
 */
static int load_listing(struct dircache *dc, const char *dir,
			struct dc_listing **out)
{
	struct dc_listing *l = calloc(1, sizeof(*l));
	size_t cap = 0, plen = strlen(dir) + (*dir ? 1 : 0);
	char *prefix = malloc(plen + 1);
	char *token = NULL;
	int rc = 0, seen_any = 0;

	if (!l || !prefix) {
		free(l);
		free(prefix);
		return DMFS_ERR_NOMEM;
	}
	snprintf(prefix, plen + 1, "%s%s", dir, *dir ? "/" : "");
	do {
		struct dmfs_list_page pg;
		struct dmfs_err_detail d = {0};
		rc = dc->st->ops->list(dc->st, prefix, "/", token, 1000, &pg,
				       &d);
		free(token);
		token = NULL;
		if (rc)
			break;
		seen_any |= pg.nobjs || pg.nprefixes;
		for (size_t i = 0; !rc && i < pg.nprefixes; i++) {
			const char *name = pg.prefixes[i] + plen;
			size_t n = strlen(name);
			if (n && name[n - 1] == '/')
				n--;
			if (bad_name(name, n))
				continue;
			char tmp[n + 1];
			memcpy(tmp, name, n);
			tmp[n] = '\0';
			if (hidden(dc, dir, tmp))
				continue;
			rc = push_entry(l, &cap, name, n, 1, NULL);
		}
		for (size_t i = 0; !rc && i < pg.nobjs; i++) {
			const char *name = pg.objs[i].key + plen;
			size_t n = strlen(name);
			if (strncmp(pg.objs[i].key, prefix, plen) != 0)
				continue;
			if (n && name[n - 1] == '/') {
				/* "dir/" marker of a subdirectory (or of this
				 * directory itself when n == 0 after strip). */
				n--;
				if (bad_name(name, n))
					continue;
				rc = push_entry(l, &cap, name, n, 1, NULL);
				continue;
			}
			if (bad_name(name, n) || hidden(dc, dir, name))
				continue;
			rc = push_entry(l, &cap, name, n, 0, &pg.objs[i]);
		}
		if (!rc && pg.truncated && pg.next_token) {
			token = pg.next_token;
			pg.next_token = NULL;
		}
		dmfs_list_page_free(&pg);
	} while (!rc && token);
	free(token);
	free(prefix);
	if (!rc && !seen_any && *dir)
		rc = DMFS_ERR_NOT_FOUND;
	if (rc) {
		listing_free(l);
		return rc;
	}
	qsort(l->v, l->n, sizeof(*l->v), entry_cmp);
	/* A name that is both a file and a directory shows as the directory
	 * (the file stays reachable through the store, as in s3fs). */
	size_t j = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (j && !strcmp(l->v[j - 1].name, l->v[i].name)) {
			if (l->v[i].is_dir && !l->v[j - 1].is_dir) {
				free(l->v[j - 1].name);
				l->v[j - 1] = l->v[i];
			} else {
				free(l->v[i].name);
			}
			continue;
		}
		l->v[j++] = l->v[i];
	}
	l->n = j;
	*out = l;
	return 0;
}

static struct slot *slot_find(struct dircache *dc, const char *dir,
			      int create)
{
	size_t b = hash_str(dir) % dc->nbuckets;
	for (struct slot *s = dc->buckets[b]; s; s = s->next)
		if (!strcmp(s->dir, dir))
			return s;
	if (!create)
		return NULL;
	struct slot *s = calloc(1, sizeof(*s));
	if (!s || !(s->dir = strdup(dir))) {
		free(s);
		return NULL;
	}
	pthread_cond_init(&s->cv, NULL);
	s->next = dc->buckets[b];
	dc->buckets[b] = s;
	dc->nslots++;
	return s;
}

/* Drop idle slots used longest ago until under the bound.  Under lock. */
static void trim_slots(struct dircache *dc)
{
	while (dc->nslots > MAX_SLOTS) {
		struct slot **victim = NULL;
		double oldest = 0;
		for (size_t i = 0; i < dc->nbuckets; i++)
			for (struct slot **pp = &dc->buckets[i]; *pp;
			     pp = &(*pp)->next) {
				struct slot *s = *pp;
				if (s->loading || s->waiters)
					continue;
				if (!victim || s->used_at < oldest) {
					victim = pp;
					oldest = s->used_at;
				}
			}
		if (!victim)
			return;
		struct slot *s = *victim;
		*victim = s->next;
		if (s->cur && --s->cur->refs == 0)
			listing_free(s->cur);
		s->cur = NULL;
		slot_free(s);
		dc->nslots--;
	}
}

static int fresh(struct dircache *dc, double fetched_at)
{
	return now_s() - fetched_at < dc->ttl;
}

int dircache_list(struct dircache *dc, const char *dir,
		  struct dc_listing **out)
{
	struct dc_listing *l = NULL;
	struct slot *s;
	int rc;

	pthread_mutex_lock(&dc->lock);
	s = slot_find(dc, dir, 1);
	if (!s) {
		pthread_mutex_unlock(&dc->lock);
		return DMFS_ERR_NOMEM;
	}
	s->used_at = now_s();
	while (s->loading) { /* one LIST per directory at a time */
		s->waiters++;
		pthread_cond_wait(&s->cv, &dc->lock);
		s->waiters--;
	}
	if (s->cur && fresh(dc, s->cur->fetched_at)) {
		s->cur->refs++;
		*out = s->cur;
		pthread_mutex_unlock(&dc->lock);
		return 0;
	}
	if (s->missing_at && fresh(dc, s->missing_at)) {
		pthread_mutex_unlock(&dc->lock);
		return DMFS_ERR_NOT_FOUND;
	}
	s->loading = 1;
	pthread_mutex_unlock(&dc->lock);

	rc = load_listing(dc, dir, &l);

	pthread_mutex_lock(&dc->lock);
	s->loading = 0;
	s->missing_at = 0;
	if (!rc) {
		l->fetched_at = now_s();
		l->refs = 1; /* the slot's reference */
		if (s->cur && --s->cur->refs == 0)
			listing_free(s->cur);
		s->cur = l;
	} else if (rc == DMFS_ERR_NOT_FOUND) {
		if (s->cur && --s->cur->refs == 0)
			listing_free(s->cur);
		s->cur = NULL;
		s->missing_at = now_s();
	} else if (s->cur && dmfs_err_is_transient(rc)) {
		/* Store unreachable: keep serving what we had, and try again
		 * in a second rather than on every call. */
		dmfs_log(DMFS_LOG_WARN,
			 "listing /%s failed (%s); serving the cached listing",
			 dir, dmfs_strerror(rc));
		s->cur->fetched_at = now_s() - dc->ttl + 1;
		rc = 0;
	}
	if (!rc) {
		s->cur->refs++;
		*out = s->cur;
	}
	pthread_cond_broadcast(&s->cv);
	trim_slots(dc);
	pthread_mutex_unlock(&dc->lock);
	return rc;
}

void dircache_release(struct dircache *dc, struct dc_listing *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&dc->lock);
	int last = --l->refs == 0;
	pthread_mutex_unlock(&dc->lock);
	if (last)
		listing_free(l);
}

int dircache_stat(struct dircache *dc, const char *path, struct dc_entry *out)
{
	struct dc_listing *l;
	const char *slash = strrchr(path, '/');
	int rc;

	memset(out, 0, sizeof(*out));
	if (!*path) {
		out->is_dir = 1;
		return 0;
	}
	char *parent = slash ? strndup(path, (size_t)(slash - path))
			     : strdup("");
	if (!parent)
		return DMFS_ERR_NOMEM;
	rc = dircache_list(dc, parent, &l);
	free(parent);
	if (rc)
		return rc;
	const struct dc_entry *e = dc_listing_find(l, slash ? slash + 1 : path);
	if (e) {
		*out = *e;
		out->name = NULL;
	} else {
		rc = DMFS_ERR_NOT_FOUND;
	}
	dircache_release(dc, l);
	return rc;
}

void dircache_invalidate_all(struct dircache *dc)
{
	pthread_mutex_lock(&dc->lock);
	for (size_t i = 0; i < dc->nbuckets; i++)
		for (struct slot *s = dc->buckets[i]; s; s = s->next)
		{
			if (s->cur)
				s->cur->fetched_at = -1e18;
			s->missing_at = 0;
		}
	pthread_mutex_unlock(&dc->lock);
}
