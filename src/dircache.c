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
#include "dmfs/keyname.h"
#include "hash.h"
#include "dmfs/log.h"

#define MAX_SLOTS 4096
#define PREFETCH_THREADS 2	/* tree prefetches running at once */
#define PREFETCH_MAX_PAGES 100	/* keys per tree prefetch: 100 000 */
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
	double tree_at;		   /* protected by dc->lock: when a tree
				      prefetch of this directory started */
	double changed_at;	   /* protected by dc->lock: when this mount
				      last changed the directory (a listing
				      fetched before then is not published
				      as fresh) */
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
	/* tree prefetch (see prefetch_main) */
	int prefetching;	   /* protected by lock: threads running */
	int stopping;		   /* protected by lock */
	char *prefetch_dirs[PREFETCH_THREADS]; /* protected by lock */
	pthread_cond_t prefetch_done;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t hash_str(const char *s)
{
	return (size_t)dmfs_hash(s, strlen(s));
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
	pthread_cond_init(&dc->prefetch_done, NULL);
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
	pthread_mutex_lock(&dc->lock);
	dc->stopping = 1;
	while (dc->prefetching)
		pthread_cond_wait(&dc->prefetch_done, &dc->lock);
	pthread_mutex_unlock(&dc->lock);
	pthread_cond_destroy(&dc->prefetch_done);
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

/*
 * A name that cannot be a directory entry (keyname.c: empty, "." or "..",
 * over NAME_MAX, not UTF-8) is skipped, and noted as hidden: `unit` is the
 * store-relative key, or the prefix that stands for every key under it.
 */
static int bad_name(const char *name, size_t n, const char *unit,
		    size_t ulen)
{
	if (memchr(name, '/', n))
		return 1; /* a store that does not group by '/' */
	enum keyname_fault f = keyname_check(name, n);
	if (f)
		keyname_note_hidden(unit, ulen, keyname_fault_str(f));
	return f != KEYNAME_OK;
}

/* Note the file dir/name hidden by the directory of the same name. */
static void note_shadowed(const char *dir, const char *name)
{
	size_t dl = strlen(dir), nl = strlen(name);
	char key[dl + nl + 2];
	snprintf(key, sizeof(key), "%s%s%s", dir, dl ? "/" : "", name);
	keyname_note_hidden(key, strlen(key),
			    "a directory has the same name (the directory "
			    "is shown)");
}

/* Sort a listing of directory `dir` and drop duplicate names.  A name
 * that is both a file and a directory shows as the directory, as in
 * s3fs; the file is hidden (noted). */
static void listing_finish(struct dc_listing *l, const char *dir)
{
	size_t j = 0;
	if (l->n > 1) /* v is NULL for an empty directory */
		qsort(l->v, l->n, sizeof(*l->v), entry_cmp);
	for (size_t i = 0; i < l->n; i++) {
		if (j && !strcmp(l->v[j - 1].name, l->v[i].name)) {
			if (l->v[i].is_dir != l->v[j - 1].is_dir)
				note_shadowed(dir, l->v[i].name);
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
			if (strncmp(pg.prefixes[i], prefix, plen) != 0)
				continue;
			const char *name = pg.prefixes[i] + plen;
			size_t n = strlen(name);
			if (n && name[n - 1] == '/')
				n--;
			if (bad_name(name, n, pg.prefixes[i],
				     strlen(pg.prefixes[i])))
				continue;
			char tmp[n + 1];
			memcpy(tmp, name, n);
			tmp[n] = '\0';
			if (hidden(dc, dir, tmp))
				continue;
			rc = push_entry(l, &cap, name, n, 1, NULL);
		}
		for (size_t i = 0; !rc && i < pg.nobjs; i++) {
			if (strncmp(pg.objs[i].key, prefix, plen) != 0)
				continue;
			const char *name = pg.objs[i].key + plen;
			size_t n = strlen(name);
			if (n == 0)
				continue; /* this directory's own marker */
			if (name[n - 1] == '/') {
				/* "dir/" marker of a subdirectory. */
				n--;
				if (bad_name(name, n, pg.objs[i].key,
					     plen + n + 1))
					continue;
				rc = push_entry(l, &cap, name, n, 1, NULL);
				continue;
			}
			if (hidden(dc, dir, name) ||
			    bad_name(name, n, pg.objs[i].key, plen + n))
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
	listing_finish(l, dir);
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

static int double_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/*
 * Over the bound: drop the idle slots used longest ago, down to three
 * quarters of it, in two passes over the table (so a tree prefetch that
 * publishes thousands of listings costs one trim, not one scan each).
 * Under lock.
 */
static void trim_slots(struct dircache *dc)
{
	size_t n = 0, drop;
	double *ages, cutoff;

	if (dc->nslots <= MAX_SLOTS)
		return;
	ages = malloc(dc->nslots * sizeof(*ages));
	if (!ages)
		return; /* try again at the next load */
	for (size_t i = 0; i < dc->nbuckets; i++)
		for (struct slot *s = dc->buckets[i]; s; s = s->next)
			if (!s->loading && !s->waiters)
				ages[n++] = s->used_at;
	drop = dc->nslots - MAX_SLOTS * 3 / 4;
	if (drop > n)
		drop = n;
	if (!drop) {
		free(ages);
		return;
	}
	qsort(ages, n, sizeof(*ages), double_cmp);
	cutoff = ages[drop - 1];
	free(ages);
	for (size_t i = 0; i < dc->nbuckets && drop; i++) {
		struct slot **pp = &dc->buckets[i];
		while (*pp && drop) {
			struct slot *s = *pp;
			if (s->loading || s->waiters || s->used_at > cutoff) {
				pp = &s->next;
				continue;
			}
			*pp = s->next;
			if (s->cur && --s->cur->refs == 0)
				listing_free(s->cur);
			s->cur = NULL;
			slot_free(s);
			dc->nslots--;
			drop--;
		}
	}
}

static int fresh(struct dircache *dc, double fetched_at)
{
	return now_s() - fetched_at < dc->ttl;
}


/*
 * Tree prefetch.  `ls -lR`, `find` and `du` walk every directory below the
 * one they start in; listing each with its own delimiter LIST costs one
 * round trip per directory.  So when a listing shows subdirectories, a
 * background thread lists the whole subtree flat (no delimiter: 1 000 keys
 * a request whatever the shape of the tree), builds the listing of every
 * directory in it and publishes them, so the walk finds them cached.
 * Bounded: PREFETCH_MAX_PAGES requests; when the subtree is larger, only
 * the directories whose keys were all seen are published.  A listing is
 * published only if the slot holds nothing newer and is not being loaded.
 */
struct tree_dir {
	char *dir;		/* "" or "a/b", relative to the store root */
	struct dc_listing *l;
	size_t cap;
	struct tree_dir *next;	/* hash chain */
};

struct tree {
	struct tree_dir **b;	/* hash buckets */
	size_t nb;
	struct tree_dir **list;
	size_t n, cap;
};

static struct tree_dir *tree_get(struct tree *t, const char *dir, size_t len)
{
	size_t h = (size_t)(dmfs_hash(dir, len) % t->nb);
	for (struct tree_dir *d = t->b[h]; d; d = d->next)
		if (strlen(d->dir) == len && !memcmp(d->dir, dir, len))
			return d;
	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 256;
		struct tree_dir **nl = realloc(t->list, nc * sizeof(*nl));
		if (!nl)
			return NULL;
		t->list = nl;
		t->cap = nc;
	}
	struct tree_dir *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->dir = strndup(dir, len);
	d->l = calloc(1, sizeof(*d->l));
	if (!d->dir || !d->l) {
		free(d->dir);
		free(d->l);
		free(d);
		return NULL;
	}
	d->next = t->b[h];
	t->b[h] = d;
	t->list[t->n++] = d;
	return d;
}

/* Add one key (relative to the store root) below `base` to the tree:
 * every directory on its path gets its child. */
static int tree_add(struct dircache *dc, struct tree *t, const char *base,
		    const struct dmfs_obj_info *o)
{
	const char *key = o->key;
	size_t bl = strlen(base);
	const char *p = key + bl + (bl ? 1 : 0); /* first component */
	const char *dir_end = key + bl;
	int rc = 0;

	while (!rc && *p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		struct tree_dir *d = tree_get(t, key, (size_t)(dir_end - key));
		if (!d)
			return DMFS_ERR_NOMEM;
		const char *dirname = d->dir;
		if (bad_name(p, n, key,
			     (size_t)(p - key) + n + (slash ? 1 : 0)))
			return 0;
		char name[n + 1];
		memcpy(name, p, n);
		name[n] = '\0';
		if (!hidden(dc, dirname, name)) {
			struct dc_entry *last = d->l->n ? &d->l->v[d->l->n - 1]
						       : NULL;
			/* Keys arrive sorted: a subdirectory's entries are
			 * consecutive, so one check dedups them. */
			if (!(slash && last && last->is_dir &&
			      !strcmp(last->name, name)))
				rc = push_entry(d->l, &d->cap, p, n, slash != NULL,
						slash ? NULL : o);
		}
		if (slash && !slash[1]) {
			/* A "dir/" marker: the directory exists even if
			 * nothing is in it, so it gets a listing too. */
			if (!tree_get(t, key, (size_t)(slash - key)))
				return DMFS_ERR_NOMEM;
			break;
		}
		if (!slash)
			break; /* a file */
		dir_end = slash;
		p = slash + 1;
	}
	return rc;
}

static void tree_free(struct tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		listing_free(t->list[i]->l);
		free(t->list[i]->dir);
		free(t->list[i]);
	}
	free(t->list);
	free(t->b);
}

/* Publish the tree's listings; `cut` is the first key not seen (NULL when
 * the whole subtree was listed). */
static void tree_publish(struct dircache *dc, struct tree *t, const char *cut,
			 double started)
{
	int published = 0;
	pthread_mutex_lock(&dc->lock);
	for (size_t i = 0; i < t->n; i++) {
		struct tree_dir *d = t->list[i];
		if (cut) {
			/* Complete only if every key of the directory sorts
			 * before the cut: the cut is not inside it, and the
			 * directory comes before it. */
			size_t dl = strlen(d->dir);
			if (strncmp(cut, d->dir, dl) == 0 &&
			    (dl == 0 || cut[dl] == '/'))
				continue;
			if (strcmp(d->dir, cut) > 0)
				continue;
		}
		struct slot *s = slot_find(dc, d->dir, 1);
		if (!s || s->loading || s->changed_at >= started ||
		    (s->cur && s->cur->fetched_at >= started))
			continue;
		listing_finish(d->l, d->dir);
		d->l->fetched_at = started;
		d->l->refs = 1;
		if (s->cur && --s->cur->refs == 0)
			listing_free(s->cur);
		s->cur = d->l;
		s->missing_at = 0;
		s->used_at = started;
		d->l = NULL;
		published++;
	}
	trim_slots(dc);
	pthread_mutex_unlock(&dc->lock);
	dmfs_log(DMFS_LOG_DEBUG, "tree prefetch: %d listings published",
		 published);
}

struct prefetch_arg {
	struct dircache *dc;
	char *dir;
	int slot; /* index in dc->prefetch_dirs */
};

static void *prefetch_main(void *arg)
{
	struct prefetch_arg *a = arg;
	struct dircache *dc = a->dc;
	struct tree t = {.nb = 4096};
	size_t plen = strlen(a->dir) + (*a->dir ? 1 : 0);
	char *prefix = malloc(plen + 1);
	char *token = NULL, *last = NULL;
	double started = now_s();
	int rc = 0, pages = 0, truncated = 1;

	t.b = calloc(t.nb, sizeof(*t.b));
	if (!prefix || !t.b)
		rc = DMFS_ERR_NOMEM;
	else
		snprintf(prefix, plen + 1, "%s%s", a->dir, *a->dir ? "/" : "");
	while (!rc && truncated && pages < PREFETCH_MAX_PAGES) {
		struct dmfs_list_page pg;
		struct dmfs_err_detail d = {0};
		pthread_mutex_lock(&dc->lock);
		int stop = dc->stopping;
		pthread_mutex_unlock(&dc->lock);
		if (stop)
			break;
		rc = dc->st->ops->list(dc->st, prefix, NULL, token, 1000, &pg, &d);
		free(token);
		token = NULL;
		if (rc)
			break;
		pages++;
		for (size_t i = 0; !rc && i < pg.nobjs; i++)
			rc = tree_add(dc, &t, a->dir, &pg.objs[i]);
		if (pg.nobjs) {
			free(last);
			last = strdup(pg.objs[pg.nobjs - 1].key);
		}
		truncated = pg.truncated && pg.next_token;
		if (truncated) {
			token = pg.next_token;
			pg.next_token = NULL;
		}
		dmfs_list_page_free(&pg);
	}
	if (!rc && pages) {
		/* Stopped early: what is after the last key was not seen.
		 * "last\x01" sorts right after last and before anything
		 * longer that starts with it but for '\0'. */
		char *cut = NULL;
		if (truncated && last) {
			size_t ll = strlen(last);
			cut = malloc(ll + 2);
			if (cut) {
				memcpy(cut, last, ll);
				cut[ll] = '\x01';
				cut[ll + 1] = '\0';
			}
		}
		if (!truncated || cut)
			tree_publish(dc, &t, cut, started);
		free(cut);
	}
	free(token);
	free(last);
	free(prefix);
	tree_free(&t);
	pthread_mutex_lock(&dc->lock);
	free(dc->prefetch_dirs[a->slot]);
	dc->prefetch_dirs[a->slot] = NULL;
	dc->prefetching--;
	pthread_cond_broadcast(&dc->prefetch_done);
	pthread_mutex_unlock(&dc->lock);
	free(a->dir);
	free(a);
	return NULL;
}

/* Whether `dir` is `anc` or below it. */
static int is_within(const char *dir, const char *anc)
{
	size_t al = strlen(anc);
	return al == 0 || (!strncmp(dir, anc, al) &&
			   (dir[al] == '\0' || dir[al] == '/'));
}

/* Start a tree prefetch of dir unless one covers it already.  Under
 * dc->lock. */
static void maybe_prefetch(struct dircache *dc, struct slot *s)
{
	int free_slot = -1;
	if (dc->stopping || (s->tree_at && fresh(dc, s->tree_at)))
		return;
	for (int i = 0; i < PREFETCH_THREADS; i++) {
		if (!dc->prefetch_dirs[i])
			free_slot = i;
		else if (is_within(s->dir, dc->prefetch_dirs[i]))
			return; /* an ancestor's walk covers this one */
	}
	if (free_slot < 0)
		return;
	struct prefetch_arg *a = calloc(1, sizeof(*a));
	char *copy = strdup(s->dir);
	if (!a || !copy || !(a->dir = strdup(s->dir))) {
		free(a);
		free(copy);
		return;
	}
	a->dc = dc;
	a->slot = free_slot;
	pthread_attr_t attr;
	pthread_t th;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, prefetch_main, a) != 0) {
		free(a->dir);
		free(a);
		free(copy);
	} else {
		dc->prefetch_dirs[free_slot] = copy;
		dc->prefetching++;
		s->tree_at = now_s();
	}
	pthread_attr_destroy(&attr);
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
	double load_started = now_s();
	pthread_mutex_unlock(&dc->lock);

	rc = load_listing(dc, dir, &l);

	pthread_mutex_lock(&dc->lock);
	s->loading = 0;
	s->missing_at = 0;
	if (!rc) {
		/* Changed by this mount while the LIST ran: the LIST may
		 * not show it, so the next call lists again. */
		l->fetched_at = s->changed_at >= load_started ? -1e18 : now_s();
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
		for (size_t i = 0; i < s->cur->n; i++)
			if (s->cur->v[i].is_dir) {
				maybe_prefetch(dc, s);
				break;
			}
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

/*
 * Local changes (writes through this mount).  Listings are immutable and
 * shared, so a change makes a new listing with the entry replaced, added
 * or removed and puts it in the slot; readers holding the old one keep
 * it.  The new listing keeps the old one's fetch time: the TTL still
 * says when the store is asked again.  O(entries) per change.
 */

/* The parent directory and the name of path; *parent caller frees. */
static int split_path(const char *path, char **parent, const char **name)
{
	const char *slash = strrchr(path, '/');
	*parent = slash ? strndup(path, (size_t)(slash - path)) : strdup("");
	*name = slash ? slash + 1 : path;
	return *parent ? 0 : DMFS_ERR_NOMEM;
}

/* A copy of l without `skip` (may be NULL) and with `add` (may be NULL)
 * inserted in order.  NULL on allocation failure. */
static struct dc_listing *listing_edit(const struct dc_listing *l,
				       const char *skip,
				       const struct dc_entry *add,
				       const char *add_name)
{
	struct dc_listing *n = calloc(1, sizeof(*n));
	size_t cap = l->n + 1, j = 0;
	int added = 0;

	if (!n || !(n->v = calloc(cap, sizeof(*n->v)))) {
		free(n);
		return NULL;
	}
	for (size_t i = 0; i <= l->n; i++) {
		const struct dc_entry *e = i < l->n ? &l->v[i] : NULL;
		if (add && !added &&
		    (!e || strcmp(add_name, e->name) <= 0)) {
			n->v[j] = *add;
			n->v[j].name = strdup(add_name);
			if (!n->v[j].name)
				goto fail;
			j++;
			added = 1;
			if (e && !strcmp(add_name, e->name))
				continue; /* replaced */
		}
		if (!e || (skip && !strcmp(skip, e->name)))
			continue;
		n->v[j] = *e;
		n->v[j].name = strdup(e->name);
		if (!n->v[j].name)
			goto fail;
		j++;
	}
	n->n = j;
	n->fetched_at = l->fetched_at;
	return n;
fail:
	n->n = j;
	listing_free(n);
	return NULL;
}

/* Replace a slot's listing.  Under dc->lock. */
static void slot_set(struct slot *s, struct dc_listing *n)
{
	n->refs = 1;
	if (s->cur && --s->cur->refs == 0)
		listing_free(s->cur);
	s->cur = n;
}

int dircache_upsert(struct dircache *dc, const char *path,
		    const struct dc_entry *e)
{
	char *parent;
	const char *name;
	int rc = split_path(path, &parent, &name);

	if (rc)
		return rc;
	pthread_mutex_lock(&dc->lock);
	struct slot *s = slot_find(dc, parent, 1);
	if (s) {
		s->changed_at = now_s();
		s->missing_at = 0; /* it has something in it now */
		if (s->cur) {
			struct dc_listing *n = listing_edit(s->cur, NULL, e,
							    name);
			if (n)
				slot_set(s, n);
			else {
				s->cur->fetched_at = -1e18;
				rc = DMFS_ERR_NOMEM;
			}
		}
	}
	if (e->is_dir && (s = slot_find(dc, path, 0))) {
		s->missing_at = 0;
		if (s->cur)
			s->cur->fetched_at = -1e18;
	}
	pthread_mutex_unlock(&dc->lock);
	free(parent);
	return rc;
}

void dircache_remove(struct dircache *dc, const char *path)
{
	char *parent;
	const char *name;

	if (split_path(path, &parent, &name))
		return;
	pthread_mutex_lock(&dc->lock);
	struct slot *s = slot_find(dc, parent, 1);
	if (s)
		s->changed_at = now_s();
	if (s && s->cur) {
		struct dc_listing *n = listing_edit(s->cur, name, NULL, NULL);
		if (n)
			slot_set(s, n);
		else
			s->cur->fetched_at = -1e18;
	}
	if ((s = slot_find(dc, path, 0))) {
		if (s->cur)
			s->cur->fetched_at = -1e18;
		s->missing_at = 0;
	}
	pthread_mutex_unlock(&dc->lock);
	free(parent);
}
