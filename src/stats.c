/*
 * stats.c - the process-wide S3 counters (see stats.h).
 */
#include "config.h"

#include "dmfs/stats.h"

struct dmfs_s3_stats dmfs_s3_stats;
