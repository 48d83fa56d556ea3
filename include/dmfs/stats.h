/*
 * stats.h - counters since mount, read by .dmfs/status.
 *
 * Plain atomics: every thread bumps them without a lock, readers take a
 * relaxed snapshot (the numbers are for people and tests, not for control).
 */
#ifndef DMFS_STATS_H
#define DMFS_STATS_H

#include <stdatomic.h>
#include <stdint.h>

struct dmfs_s3_stats {
	atomic_uint_fast64_t requests;	    /* HTTP attempts sent */
	atomic_uint_fast64_t bytes_fetched; /* object bytes received */
	atomic_uint_fast64_t retries;	    /* attempts that were retries */
	atomic_uint_fast64_t errors;	    /* requests that finally failed */
	atomic_uint_fast64_t not_found;	    /* of which: 404 (not counted as
					       errors: normal for lookups) */
};

/* The process-wide counters.  Zero at start. */
extern struct dmfs_s3_stats dmfs_s3_stats;

#define DMFS_STAT_ADD(field, n)                                                \
	atomic_fetch_add_explicit(&dmfs_s3_stats.field, (n),                   \
				  memory_order_relaxed)
#define DMFS_STAT_GET(field)                                                   \
	atomic_load_explicit(&dmfs_s3_stats.field, memory_order_relaxed)

#endif
