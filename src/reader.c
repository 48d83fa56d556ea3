/*
 * reader.c - read live objects through the block cache.
 *
 * Shape of a read: the blocks a read covers are looked up in the block
 * cache; the missing ones become *jobs* - runs of consecutive blocks
 * fetched with one ranged GET each (at most fetch_max bytes) - executed by
 * a pool of fetch threads, so a FUSE thread never talks to the network
 * itself and many GETs run in parallel.  A FUSE thread waits only for the
 * jobs that hold its own blocks, then copies from the job's buffer (not
 * from the cache: a tiny cache may already have evicted the block).
 *
 * In-flight table: every block being fetched maps to its job, so two
 * readers of one block share one GET.  Jobs are reference-counted: the
 * table, the fetch thread and each waiter hold a reference.
 *
 * Read-ahead: per open file, a read that starts near where the previous
 * one ended is sequential; the window then doubles (from 4 blocks up to
 * readahead_max), and blocks up to that far ahead are queued as
 * read-ahead jobs.  A seek resets the window.  Demand jobs always go
 * before read-ahead jobs in the queue.  Objects up to small_file_max are
 * fetched whole by their first read.
 *
 * Locks: r->lock protects the queues and the in-flight table and each
 * job's done/rc fields; f->lock protects one file's read-ahead state.
 * r->lock is never held across I/O or a cache call.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "dmfs/log.h"
#include "dmfs/reader.h"

#define PREFIX_LEN 33 /* 'B' + sha256 */
#define KEY_LEN (PREFIX_LEN + 8)
#define INFLIGHT_BUCKETS 4096

struct job {
	struct reader *r;
	unsigned char prefix[PREFIX_LEN];
	char *key;			/* owned */
	char etag[DMFS_ETAG_MAX];	/* If-Match, "" for none */
	char version_id[READER_VID_MAX]; /* "" for the latest */
	uint64_t first;			/* first block */
	uint32_t nblocks;
	uint64_t obj_size;
	char *buf;			/* owned; the fetched bytes */
	size_t len;			/* bytes fetched */
	int rc;				/* protected by r->lock */
	int done;			/* protected by r->lock */
	int refs;			/* protected by r->lock */
	pthread_cond_t cv;		/* signalled when done */
	struct job *qnext;		/* protected by r->lock */
};

struct inflight {
	unsigned char prefix[PREFIX_LEN];
	uint64_t block;
	struct job *job;
	struct inflight *next;
};

struct reader {
	struct dmfs_store *st;		/* borrowed */
	struct bcache *bc;		/* borrowed */
	struct reader_opts o;
	pthread_mutex_t lock;
	pthread_cond_t qcv;		/* work queued, or stopping */
	struct job *dq_head, *dq_tail;	/* demand queue; protected by lock */
	struct job *aq_head, *aq_tail;	/* read-ahead queue; protected */
	struct inflight *table[INFLIGHT_BUCKETS]; /* protected by lock */
	int stopping;			/* protected by lock */
	pthread_t *threads;
	int nthreads;
};

struct rd_file {
	struct reader *r;
	char *key;			/* owned */
	char etag[DMFS_ETAG_MAX];	/* If-Match, "" for none */
	char version_id[READER_VID_MAX]; /* "" for the latest */
	uint64_t size;
	uint64_t nblocks;
	unsigned char prefix[PREFIX_LEN];
	pthread_mutex_t lock;
	uint64_t max_end;		/* protected by lock */
	uint64_t window;		/* protected by lock; bytes */
	uint64_t ra_next;		/* protected by lock; first block not
					   yet queued for read-ahead */
	int whole_fetched;		/* protected by lock */
};

/*
 * The cache name of an object's blocks: a hash of (namespace, name, tag,
 * size, block size).  Live objects use ("live", key, ETag); immutable
 * content uses ("content", content id, ""), so identical files of
 * different versions share their blocks.
 */
static void make_prefix_ns(const char *ns, const char *key, const char *etag,
			   uint64_t size, size_t bs,
			   unsigned char out[PREFIX_LEN])
{
	char tail[64];
	unsigned int dl = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	out[0] = 'B';
	snprintf(tail, sizeof(tail), "%llu:%zu", (unsigned long long)size, bs);
	/* On allocation failure the prefix degrades to a hash of nothing
	 * useful; make that impossible to confuse by zeroing it. */
	if (!c) {
		memset(out + 1, 0, PREFIX_LEN - 1);
		return;
	}
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, ns, strlen(ns) + 1);
	EVP_DigestUpdate(c, key, strlen(key) + 1);
	EVP_DigestUpdate(c, etag, strlen(etag) + 1);
	EVP_DigestUpdate(c, tail, strlen(tail));
	EVP_DigestFinal_ex(c, out + 1, &dl);
	EVP_MD_CTX_free(c);
}

static void make_prefix(const char *key, const char *etag, uint64_t size,
			size_t bs, unsigned char out[PREFIX_LEN])
{
	make_prefix_ns("live", key, etag, size, bs, out);
}

static void block_key(const unsigned char prefix[PREFIX_LEN], uint64_t b,
		      unsigned char out[KEY_LEN])
{
	memcpy(out, prefix, PREFIX_LEN);
	for (int i = 0; i < 8; i++)
		out[PREFIX_LEN + i] = (unsigned char)(b >> (56 - 8 * i));
}

static size_t inflight_hash(const unsigned char *prefix, uint64_t b)
{
	uint64_t h;
	memcpy(&h, prefix + 1, sizeof(h));
	return (size_t)((h ^ (b * 0x9E3779B97F4A7C15ull)) % INFLIGHT_BUCKETS);
}

/* Under r->lock. */
static struct job *inflight_find(struct reader *r,
				 const unsigned char *prefix, uint64_t b)
{
	for (struct inflight *e = r->table[inflight_hash(prefix, b)]; e;
	     e = e->next)
		if (e->block == b && !memcmp(e->prefix, prefix, PREFIX_LEN))
			return e->job;
	return NULL;
}

/* Under r->lock. */
static int inflight_add(struct reader *r, struct job *j, uint64_t b)
{
	struct inflight *e = malloc(sizeof(*e));
	if (!e)
		return DMFS_ERR_NOMEM;
	size_t h = inflight_hash(j->prefix, b);
	memcpy(e->prefix, j->prefix, PREFIX_LEN);
	e->block = b;
	e->job = j;
	e->next = r->table[h];
	r->table[h] = e;
	return 0;
}

/* Under r->lock. */
static void inflight_remove(struct reader *r, struct job *j, uint64_t b)
{
	struct inflight **pp = &r->table[inflight_hash(j->prefix, b)];
	for (; *pp; pp = &(*pp)->next) {
		struct inflight *e = *pp;
		if (e->job == j && e->block == b) {
			*pp = e->next;
			free(e);
			return;
		}
	}
}


/*
 * Drop a reference; under r->lock.  At zero the job leaves the in-flight
 * table and is freed.  A finished job stays in the table while anything
 * (a waiter, or the cache committing its blocks) still holds it, so reads
 * of just-fetched blocks are served from its buffer without touching LMDB.
 */
static void job_unref_locked(struct job *j)
{
	if (--j->refs > 0)
		return;
	for (uint32_t i = 0; i < j->nblocks; i++)
		inflight_remove(j->r, j, j->first + i);
	pthread_cond_destroy(&j->cv);
	free(j->buf);
	free(j->key);
	free(j);
}

static void job_release(struct reader *r, struct job *j);

/* bcache_put_shared's release: the cache is done with a block of j->buf.
 * Called with the cache's lock held; takes r->lock (order: cache, then
 * reader - the reader never calls the cache holding r->lock). */
static void job_release_cb(void *ctx)
{
	struct job *j = ctx;
	job_release(j->r, j);
}

static void enqueue_locked(struct reader *r, struct job *j, int demand)
{
	struct job **head = demand ? &r->dq_head : &r->aq_head;
	struct job **tail = demand ? &r->dq_tail : &r->aq_tail;
	j->qnext = NULL;
	if (*tail)
		(*tail)->qnext = j;
	else
		*head = j;
	*tail = j;
	pthread_cond_signal(&r->qcv);
}

static struct job *dequeue_locked(struct reader *r)
{
	struct job **head = r->dq_head ? &r->dq_head : &r->aq_head;
	struct job **tail = r->dq_head ? &r->dq_tail : &r->aq_tail;
	struct job *j = *head;
	if (j) {
		*head = j->qnext;
		if (!*head)
			*tail = NULL;
	}
	return j;
}

static void run_job(struct reader *r, struct job *j)
{
	const size_t bs = r->o.block_size;
	uint64_t off = j->first * bs;
	size_t want = (size_t)(j->nblocks * bs);
	struct dmfs_err_detail d = {0};
	size_t got = 0;
	int rc;

	struct dmfs_pin pin = {.if_match = j->etag,
			       .version_id = j->version_id};

	if (off + want > j->obj_size)
		want = (size_t)(j->obj_size - off);
	j->buf = malloc(want ? want : 1);
	rc = j->buf ? 0 : DMFS_ERR_NOMEM;
	if (!rc)
		rc = r->st->ops->get_range(r->st, j->key, &pin, off, want,
					   j->buf, &got, &d);
	if (!rc && got != want) {
		dmfs_log(DMFS_LOG_ERROR,
			 "%s: got %zu bytes at %llu, expected %zu", j->key,
			 got, (unsigned long long)off, want);
		rc = DMFS_ERR_PROTOCOL;
	}
	if (!rc)
		j->len = got;
	/* Wake the readers first: they copy from j->buf, and must not wait
	 * for the cache to store the blocks. */
	pthread_mutex_lock(&r->lock);
	j->rc = rc;
	j->done = 1;
	pthread_cond_broadcast(&j->cv);
	/* The cache borrows j->buf (one reference per block) rather than
	 * copying it; the references are taken here, with the lock above. */
	if (!rc)
		j->refs += j->nblocks;
	pthread_mutex_unlock(&r->lock);
	for (uint32_t i = 0; !rc && i < j->nblocks; i++) {
		unsigned char k[KEY_LEN];
		size_t boff = (size_t)i * bs;
		size_t blen = got - boff < bs ? got - boff : bs;
		block_key(j->prefix, j->first + i, k);
		/* A block that cannot be cached is still returned to its
		 * readers; bcache counts the failure. */
		if (bcache_put_shared(r->bc, k, sizeof(k), j->buf + boff, blen,
				      job_release_cb, j) != 0)
			job_release(r, j);
	}
	pthread_mutex_lock(&r->lock);
	job_unref_locked(j);
	pthread_mutex_unlock(&r->lock);
}

static void *fetch_thread(void *arg)
{
	struct reader *r = arg;
	pthread_mutex_lock(&r->lock);
	for (;;) {
		struct job *j = dequeue_locked(r);
		if (!j) {
			if (r->stopping)
				break;
			pthread_cond_wait(&r->qcv, &r->lock);
			continue;
		}
		pthread_mutex_unlock(&r->lock);
		run_job(r, j);
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int reader_new(struct dmfs_store *st, struct bcache *bc,
	       const struct reader_opts *o, struct reader **out)
{
	struct reader *r = calloc(1, sizeof(*r));
	if (!r)
		return DMFS_ERR_NOMEM;
	r->st = st;
	r->bc = bc;
	r->o = *o;
	if (r->o.parallel < 1)
		r->o.parallel = 1;
	if (r->o.fetch_max < r->o.block_size)
		r->o.fetch_max = r->o.block_size;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->qcv, NULL);
	r->threads = calloc((size_t)r->o.parallel, sizeof(*r->threads));
	if (!r->threads) {
		reader_free(r);
		return DMFS_ERR_NOMEM;
	}
	for (int i = 0; i < r->o.parallel; i++) {
		if (pthread_create(&r->threads[i], NULL, fetch_thread, r)) {
			reader_free(r);
			return DMFS_ERR_NOMEM;
		}
		r->nthreads++;
	}
	*out = r;
	return 0;
}

void reader_free(struct reader *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = 1;
	pthread_cond_broadcast(&r->qcv);
	pthread_mutex_unlock(&r->lock);
	for (int i = 0; i < r->nthreads; i++)
		pthread_join(r->threads[i], NULL);
	/* The cache still borrows buffers of finished jobs and calls back
	 * into this reader when it is done with them: let it finish now,
	 * while the reader exists. */
	if (r->bc)
		bcache_sync(r->bc);
	free(r->threads);
	pthread_cond_destroy(&r->qcv);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static int file_new(struct reader *r, const char *key, uint64_t size,
		    struct rd_file **out)
{
	struct rd_file *f = calloc(1, sizeof(*f));
	if (!f)
		return DMFS_ERR_NOMEM;
	f->key = strdup(key);
	if (!f->key) {
		free(f);
		return DMFS_ERR_NOMEM;
	}
	f->r = r;
	f->size = size;
	f->nblocks = (size + r->o.block_size - 1) / r->o.block_size;
	pthread_mutex_init(&f->lock, NULL);
	*out = f;
	return 0;
}

int reader_open(struct reader *r, const char *key, const char *etag,
		uint64_t size, struct rd_file **out)
{
	int rc = file_new(r, key, size, out);
	if (rc)
		return rc;
	snprintf((*out)->etag, sizeof((*out)->etag), "%s", etag);
	make_prefix(key, etag, size, r->o.block_size, (*out)->prefix);
	return 0;
}

int reader_open_content(struct reader *r, const char *key,
			const char *version_id, const char *content_id,
			uint64_t size, struct rd_file **out)
{
	if (version_id && strlen(version_id) >= READER_VID_MAX)
		return DMFS_ERR_TOO_BIG;
	int rc = file_new(r, key, size, out);
	if (rc)
		return rc;
	snprintf((*out)->version_id, sizeof((*out)->version_id), "%s",
		 version_id ? version_id : "");
	make_prefix_ns("content", content_id, "", size, r->o.block_size,
		       (*out)->prefix);
	return 0;
}

void reader_close(struct rd_file *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->lock);
	free(f->key);
	free(f);
}

/*
 * Make sure blocks [first, last] are cached or being fetched.  Blocks not
 * yet in flight become new jobs (runs split at fetch_max).  When `held` is
 * not NULL, held[b - first] receives a referenced job for every block that
 * is in flight after the call (NULL for blocks known to be cached).
 * `skip_cached`: check the cache first (read-ahead); demand callers have
 * just missed in it.
 */
static int schedule(struct rd_file *f, uint64_t first, uint64_t last,
		    int demand, int skip_cached, struct job **held)
{
	struct reader *r = f->r;
	const uint64_t run_max = r->o.fetch_max / r->o.block_size;
	unsigned char k[KEY_LEN];
	struct job *cur = NULL; /* the run being built: not queued yet, so no
				   fetch thread can see its size change */
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	for (uint64_t b = first; b <= last && !rc; b++) {
		struct job *j = inflight_find(r, f->prefix, b);
		if (j && j->done && j->rc)
			j = NULL; /* failed: fetch again */
		if (!j && skip_cached) {
			block_key(f->prefix, b, k);
			pthread_mutex_unlock(&r->lock);
			int cached = bcache_contains(r->bc, k, sizeof(k));
			pthread_mutex_lock(&r->lock);
			j = inflight_find(r, f->prefix, b);
			if (j && j->done && j->rc)
				j = NULL;
			if (cached && !j) {
				if (cur)
					enqueue_locked(r, cur, demand);
				cur = NULL;
				continue;
			}
		}
		if (j && j != cur) {
			/* Runs do not jump over blocks others fetch. */
			if (cur)
				enqueue_locked(r, cur, demand);
			cur = NULL;
		} else if (!j) {
			if (cur && (cur->nblocks >= run_max ||
				    cur->first + cur->nblocks != b)) {
				enqueue_locked(r, cur, demand);
				cur = NULL;
			}
			if (cur) {
				cur->nblocks++;
			} else {
				cur = calloc(1, sizeof(*cur));
				if (cur)
					cur->key = strdup(f->key);
				if (!cur || !cur->key) {
					free(cur);
					cur = NULL;
					rc = DMFS_ERR_NOMEM;
					break;
				}
				memcpy(cur->prefix, f->prefix, PREFIX_LEN);
				snprintf(cur->etag, sizeof(cur->etag), "%s",
					 f->etag);
				snprintf(cur->version_id,
					 sizeof(cur->version_id), "%s",
					 f->version_id);
				cur->first = b;
				cur->nblocks = 1;
				cur->obj_size = f->size;
				cur->refs = 1; /* the fetch thread's */
				cur->r = r;
				pthread_cond_init(&cur->cv, NULL);
			}
			rc = inflight_add(r, cur, b);
			j = cur;
		}
		if (held && !rc) {
			j->refs++;
			held[b - first] = j;
		}
	}
	if (cur) /* also on error: its blocks are in the table, and waiters
		    must be woken by a finished job */
		enqueue_locked(r, cur, demand);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* Wait for a job; under no lock.  Returns its rc. */
static int job_wait(struct reader *r, struct job *j)
{
	pthread_mutex_lock(&r->lock);
	while (!j->done)
		pthread_cond_wait(&j->cv, &r->lock);
	int rc = j->rc;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

static void job_release(struct reader *r, struct job *j)
{
	pthread_mutex_lock(&r->lock);
	job_unref_locked(j);
	pthread_mutex_unlock(&r->lock);
}

/* Update the read-ahead state for a read of [off, end); returns the block
 * range to queue for read-ahead in ra_first..ra_last (empty when
 * ra_first > ra_last), and whether to fetch the whole object. */
static void plan_readahead(struct rd_file *f, uint64_t off, uint64_t end,
			   uint64_t *ra_first, uint64_t *ra_last, int *whole)
{
	const struct reader_opts *o = &f->r->o;
	const uint64_t bs = o->block_size;

	*ra_first = 1;
	*ra_last = 0;
	*whole = 0;
	pthread_mutex_lock(&f->lock);
	if (f->size <= o->small_file_max && !f->whole_fetched) {
		f->whole_fetched = 1;
		*whole = 1;
	}
	/* Kernel read-ahead sends several reads at once and threads may take
	 * them out of order: "near the furthest end so far" is sequential. */
	int seq = f->max_end && off + 4 * bs >= f->max_end &&
		  off <= f->max_end + 4 * bs;
	if (off == 0 && !f->max_end)
		seq = 1; /* reading from the start is the common case */
	if (seq) {
		f->window = f->window ? f->window * 2 : 4 * bs;
		if (f->window > o->readahead_max)
			f->window = o->readahead_max;
	} else {
		f->window = 0;
		f->ra_next = 0;
	}
	if (end > f->max_end || !seq)
		f->max_end = end;
	if (f->window && f->size) {
		/* Queue read-ahead in large batches: only when what is
		 * already queued reaches less than half a window past this
		 * read, and then up to a whole window.  Big batches become
		 * GETs of fetch_max bytes instead of one block each. */
		uint64_t from = (end + bs - 1) / bs;
		uint64_t to = (end + f->window - 1) / bs;
		if (to >= f->nblocks)
			to = f->nblocks - 1;
		if (from < f->ra_next)
			from = f->ra_next;
		if (from <= to && from * bs < end + f->window / 2) {
			*ra_first = from;
			*ra_last = to;
			f->ra_next = to + 1;
		}
	}
	pthread_mutex_unlock(&f->lock);
}

int reader_read(struct rd_file *f, char *buf, size_t len, uint64_t off,
		size_t *got)
{
	struct reader *r = f->r;
	const uint64_t bs = r->o.block_size;
	uint64_t first, last, ra_first, ra_last, end;
	int whole, rc = 0;

	*got = 0;
	if (off >= f->size || len == 0)
		return 0;
	if (len > f->size - off)
		len = (size_t)(f->size - off);
	end = off + len;
	first = off / bs;
	last = (end - 1) / bs;
	plan_readahead(f, off, end, &ra_first, &ra_last, &whole);

	/* A FUSE read spans a block or two: keep the bookkeeping on the
	 * stack for those, and allocate only for unusually large reads. */
	uint64_t nb = last - first + 1;
	struct job *held_stack[16] = {0};
	char missing_stack[16] = {0};
	struct job **held = held_stack;
	char *missing = missing_stack;
	if (nb > 16) {
		held = calloc((size_t)nb, sizeof(*held));
		missing = calloc((size_t)nb, 1);
		if (!held || !missing) {
			free(held);
			free(missing);
			return DMFS_ERR_NOMEM;
		}
	}
	/* 1. The cache. */
	int nmissing = 0;
	for (uint64_t b = first; b <= last; b++) {
		unsigned char k[KEY_LEN];
		uint64_t bstart = b * bs;
		uint64_t lo = off > bstart ? off - bstart : 0;
		uint64_t hi = end < bstart + bs ? end - bstart : bs;
		size_t g = 0;
		/* A block fetched moments ago: copy from the job's buffer
		 * (no LMDB transaction, no checksum pass, no page faults). */
		pthread_mutex_lock(&r->lock);
		struct job *j = inflight_find(r, f->prefix, b);
		if (j && j->done && !j->rc)
			j->refs++;
		else
			j = NULL;
		pthread_mutex_unlock(&r->lock);
		if (j) {
			uint64_t joff = bstart - j->first * bs;
			int ok = joff + hi <= j->len;
			if (ok)
				memcpy(buf + (bstart + lo - off),
				       j->buf + joff + lo, (size_t)(hi - lo));
			job_release(r, j);
			if (ok)
				continue;
		}
		block_key(f->prefix, b, k);
		int grc = bcache_get(r->bc, k, sizeof(k),
				     buf + (bstart + lo - off), (size_t)lo,
				     (size_t)(hi - lo), &g);
		if (grc || g != hi - lo) {
			missing[b - first] = 1;
			nmissing++;
		}
	}
	/* 2. Fetch what is missing; a small object comes whole. */
	for (int attempt = 0; nmissing && !rc && attempt < 3; attempt++) {
		if (whole && attempt == 0 && f->nblocks)
			rc = schedule(f, 0, f->nblocks - 1, 1, 1, NULL);
		for (uint64_t b = first; b <= last && !rc; b++)
			if (missing[b - first])
				rc = schedule(f, b, b, 1, 0,
					      &held[b - first]);
		if (ra_first <= ra_last && attempt == 0)
			(void)schedule(f, ra_first, ra_last, 0, 1, NULL);
		ra_first = 1;
		ra_last = 0;
		for (uint64_t b = first; b <= last; b++) {
			struct job *j = held[b - first];
			if (!j)
				continue;
			held[b - first] = NULL;
			int jrc = job_wait(r, j);
			if (!jrc && !rc) {
				uint64_t bstart = b * bs;
				uint64_t lo = off > bstart ? off - bstart : 0;
				uint64_t hi = end < bstart + bs ? end - bstart
								: bs;
				uint64_t joff = bstart - j->first * bs;
				if (joff + hi <= j->len) {
					memcpy(buf + (bstart + lo - off),
					       j->buf + joff + lo,
					       (size_t)(hi - lo));
					missing[b - first] = 0;
					nmissing--;
				}
			} else if (!rc) {
				rc = jrc;
			}
			job_release(r, j);
		}
	}
	if (!rc && ra_first <= ra_last)
		(void)schedule(f, ra_first, ra_last, 0, 1, NULL);
	if (!rc && nmissing)
		rc = DMFS_ERR_IO;
	if (held != held_stack) {
		free(held);
		free(missing);
	}
	if (!rc)
		*got = len;
	return rc;
}

uint64_t reader_cached_bytes(struct reader *r, const char *key,
			     const char *etag, uint64_t size)
{
	unsigned char prefix[PREFIX_LEN];
	make_prefix(key, etag, size, r->o.block_size, prefix);
	return bcache_bytes_with_prefix(r->bc, prefix, sizeof(prefix));
}

uint64_t reader_content_cached_bytes(struct reader *r, const char *content_id,
				     uint64_t size)
{
	unsigned char prefix[PREFIX_LEN];
	make_prefix_ns("content", content_id, "", size, r->o.block_size,
		       prefix);
	return bcache_bytes_with_prefix(r->bc, prefix, sizeof(prefix));
}

int reader_prefetch_all(struct rd_file *f)
{
	struct reader *r = f->r;
	int rc = 0;
	if (!f->nblocks)
		return 0;
	struct job **held = calloc((size_t)f->nblocks, sizeof(*held));
	if (!held)
		return DMFS_ERR_NOMEM;
	rc = schedule(f, 0, f->nblocks - 1, 0, 1, held);
	for (uint64_t b = 0; b < f->nblocks; b++) {
		if (!held[b])
			continue;
		int jrc = job_wait(r, held[b]);
		if (!rc)
			rc = jrc;
		job_release(r, held[b]);
	}
	free(held);
	return rc;
}
