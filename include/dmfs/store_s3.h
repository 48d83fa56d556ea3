/*
 * store_s3.h - the S3 backend of the store interface.
 */
#ifndef DMFS_STORE_S3_H
#define DMFS_STORE_S3_H

#include <stddef.h>

#include "dmfs/creds.h"
#include "dmfs/http.h"
#include "dmfs/store.h"

struct s3_config {
	const char *bucket;   /* borrowed for the call */
	const char *prefix;   /* "" or "a/b" (no leading or trailing '/') */
	const char *endpoint; /* "http://host:port"; NULL: AWS for region */
	const char *region;   /* NULL: "us-east-1" */
	int path_style;	      /* 1 path, 0 virtual-hosted, -1 auto (path
				 style for IP addresses and localhost) */
	struct dmfs_creds creds; /* copied; wiped when the store is freed */
	struct http_opts http;
	uint64_t multipart_copy_size; /* sources larger than this are copied
					 in parts of this size (5M..5G; 0:
					 5G, S3's limit for one copy) */
	int copy_parallel;	      /* parts of one copy in flight (1..64;
					 0: 4) */
};

/* S3's limits for UploadPartCopy. */
#define S3_PART_MIN (5ull << 20)
#define S3_PART_MAX (5ull << 30)
#define S3_PARTS_MAX 10000u

/*
 * How to copy `size` bytes in parts of at most `part_size` (the option):
 * *part out is the size of every part but the last (which holds the rest,
 * 1..*part bytes), *nparts their number (at least 1).  When `size` needs
 * more than S3_PARTS_MAX parts the parts grow (in whole MiB) so that the
 * count fits.  DMFS_ERR_INVAL when part_size is outside S3_PART_MIN..
 * S3_PART_MAX, DMFS_ERR_TOO_BIG when even S3_PART_MAX parts cannot hold
 * size.  Pure; exposed for unit tests.
 */
int s3_copy_plan(uint64_t size, uint64_t part_size, uint64_t *part,
		 uint32_t *nparts) __attribute__((warn_unused_result));

/* Create an S3 store.  Nothing is sent yet.  Caller frees with
 * st->ops->destroy(st).  Returns 0 or DMFS_ERR_* with a message in msg. */
int store_s3_new(const struct s3_config *cfg, struct dmfs_store **out,
		 char *msg, size_t msgsz) __attribute__((warn_unused_result));

/* Map a final HTTP status and S3 error code to a dmfs error (exposed for
 * unit tests).  Cannot fail. */
int s3_status_to_err(long status, const char *s3_code);

#endif
