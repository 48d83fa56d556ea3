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
};

/* Create an S3 store.  Nothing is sent yet.  Caller frees with
 * st->ops->destroy(st).  Returns 0 or DMFS_ERR_* with a message in msg. */
int store_s3_new(const struct s3_config *cfg, struct dmfs_store **out,
		 char *msg, size_t msgsz) __attribute__((warn_unused_result));

/* Map a final HTTP status and S3 error code to a dmfs error (exposed for
 * unit tests).  Cannot fail. */
int s3_status_to_err(long status, const char *s3_code);

#endif
