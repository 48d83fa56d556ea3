/*
 * part_pool.c - numbered parts run on a few threads.  See part_pool.h.
 */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "part_pool.h"

#define POOL_THREADS_MAX 64

struct part_pool {
	part_pool_fn fn;
	void *ctx;
	pthread_mutex_t lock;
	pthread_cond_t more;	   /* offered grew, or the end is known */
	uint32_t offered;	   /* protected by lock: parts that may run */
	uint32_t next;		   /* protected by lock: next part to take */
	bool last;		   /* protected by lock: offered is final */
	bool stop;		   /* protected by lock: cancelled */
	int rc;			   /* protected by lock: first error */
	struct dmfs_err_detail d;  /* protected by lock: its detail */
	pthread_t th[POOL_THREADS_MAX];
	int nthreads;
};

/* Take parts and send them until there are no more, or an error or a
 * cancel stops the pool.  wait: block for parts not yet offered (the
 * threads); false: return when none is ready (finish's caller). */
static void run_parts(struct part_pool *p, bool wait)
{
	pthread_mutex_lock(&p->lock);
	for (;;) {
		if (p->rc || p->stop)
			break;
		if (p->next >= p->offered) {
			if (p->last || !wait)
				break;
			pthread_cond_wait(&p->more, &p->lock);
			continue;
		}
		uint32_t idx = p->next++;
		pthread_mutex_unlock(&p->lock);
		struct dmfs_err_detail d = {0};
		int rc = p->fn(p->ctx, idx, &d);
		pthread_mutex_lock(&p->lock);
		if (rc && !p->rc) {
			p->rc = rc;
			p->d = d;
		}
	}
	pthread_mutex_unlock(&p->lock);
}

static void *worker(void *arg)
{
	run_parts(arg, true);
	return NULL;
}

int part_pool_start(int nthreads, part_pool_fn fn, void *ctx,
		    struct part_pool **out)
{
	struct part_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return DMFS_ERR_NOMEM;
	p->fn = fn;
	p->ctx = ctx;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->more, NULL);
	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > POOL_THREADS_MAX)
		nthreads = POOL_THREADS_MAX;
	/* Fewer threads than asked is slower, not wrong: finish's caller
	 * sends what they leave. */
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&p->th[i], NULL, worker, p) != 0)
			break;
		p->nthreads++;
	}
	*out = p;
	return 0;
}

void part_pool_offer(struct part_pool *p, uint32_t n)
{
	pthread_mutex_lock(&p->lock);
	if (n > p->offered && !p->last) {
		p->offered = n;
		pthread_cond_broadcast(&p->more);
	}
	pthread_mutex_unlock(&p->lock);
}

int part_pool_error(struct part_pool *p)
{
	pthread_mutex_lock(&p->lock);
	int rc = p->rc;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

/* Say that no more parts come (stop: none more starts either), join the
 * threads and free p; the first error with its detail. */
static int end_pool(struct part_pool *p, bool stop, struct dmfs_err_detail *d)
{
	pthread_mutex_lock(&p->lock);
	p->last = true;
	p->stop = p->stop || stop;
	pthread_cond_broadcast(&p->more);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->th[i], NULL);
	int rc = p->rc;
	if (rc && d)
		*d = p->d;
	pthread_cond_destroy(&p->more);
	pthread_mutex_destroy(&p->lock);
	free(p);
	return rc;
}

int part_pool_finish(struct part_pool *p, uint32_t n,
		     struct dmfs_err_detail *d)
{
	part_pool_offer(p, n);
	/* The caller helps (and sends everything when no thread started). */
	run_parts(p, false);
	return end_pool(p, false, d);
}

void part_pool_cancel(struct part_pool *p)
{
	if (p)
		(void)end_pool(p, true, NULL);
}
