/*
 * part_pool.h - numbered parts run on a few threads (part_pool.c).
 *
 * Multipart uploads, multipart copies and uploads that start while the
 * file is still being written all do the same thing: parts 0, 1, 2 ...
 * each sent by whichever thread is free, the first error stopping the
 * rest.  The parts may be known all at once (offer them all, then
 * finish) or become ready one by one (offer them as they do).
 */
#ifndef DMFS_PART_POOL_H
#define DMFS_PART_POOL_H

#include <stdint.h>

#include "dmfs/err.h"

/* Send part idx (0-based).  0 or a DMFS_ERR_* with d filled.  Called on
 * the pool's threads, at most once per idx, several at a time. */
typedef int (*part_pool_fn)(void *ctx, uint32_t idx,
			    struct dmfs_err_detail *d);

struct part_pool;

/* Start nthreads (clamped to 1..64) threads calling fn(ctx, ...) for the
 * parts offered (ctx borrowed: it must outlive the pool).  0, or DMFS_ERR_NOMEM.  When no thread can be created
 * the parts are sent by part_pool_finish's caller. */
int part_pool_start(int nthreads, part_pool_fn fn, void *ctx,
		    struct part_pool **out)
	__attribute__((warn_unused_result));

/* Parts [0, n) may be sent now.  n never shrinks (a smaller n is
 * ignored). */
void part_pool_offer(struct part_pool *p, uint32_t n);

/* The first error so far (0 when none): no part starts after it. */
int part_pool_error(struct part_pool *p);

/* Parts [0, n) are all there will be: wait until each has been sent or
 * an error stopped them, end the threads and free p.  The first error
 * (its detail in *d, d may be NULL) or 0. */
int part_pool_finish(struct part_pool *p, uint32_t n,
		     struct dmfs_err_detail *d)
	__attribute__((warn_unused_result));

/* Stop: no further part starts; waits for the parts being sent, ends
 * the threads, frees p.  NULL-safe. */
void part_pool_cancel(struct part_pool *p);

#endif
