/*
 * store_s3_int.h - what store_s3.c (objects, listings) and store_s3_mp.c
 * (multipart uploads) share.  Internal.
 */
#ifndef DMFS_STORE_S3_INT_H
#define DMFS_STORE_S3_INT_H

#include "dmfs/http.h"
#include "dmfs/creds.h"
#include "dmfs/sigv4.h"
#include "dmfs/store.h"

#define LIST_BODY_MAX (16u << 20) /* a listing page is ~1000 keys */
#define EMPTY_SHA256                                                           \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3_store {
	struct dmfs_store base;
	struct http_pool *http;
	char *bucket;
	char *prefix;	  /* "" or "a/b/" (with the trailing '/') */
	char *scheme;	  /* "http" / "https" */
	char *host;	  /* host[:port] as sent in Host (with the bucket
			     in front when virtual-hosted) */
	char *region;
	int path_style;
	struct dmfs_creds creds; /* wiped in destroy */
};

/* What a request needs to be signed again on each attempt. */
#define S3_AMZ_MAX 6 /* extra x-amz-* headers one request may sign */

struct s3_req {
	struct s3_store *s;
	const char *method;
	const char *path;	       /* raw, unencoded */
	const struct sigv4_kv *query;  /* raw */
	size_t nquery;
	const char *range;	       /* "bytes=a-b" or NULL */
	const char *if_match;	       /* ETag without quotes, or NULL */
	const char *payload_hash;      /* hex sha256 of the body; NULL:
					  the empty body's */
	const struct sigv4_kv *amz;    /* more x-amz-* headers, signed */
	size_t namz;
	const struct sigv4_kv *plain;  /* more headers, not signed */
	size_t nplain;
};

/* One request: `key` names the object ("" for bucket-level requests such
 * as LIST); `label` is what the log shows.  Fills and frees nothing of r
 * but its s and path. */
int s3_perform(struct s3_store *s, const char *what, const char *key,
	       const char *label, struct s3_req *r, struct http_request *hr,
	       struct http_response *resp, struct dmfs_err_detail *d)
	__attribute__((warn_unused_result));

/* Prepend the store prefix.  Caller frees with free(). */
char *s3_full_key(struct s3_store *s, const char *key);

/* The multipart operations (store_s3_mp.c), for the ops table. */
int s3_mp_create(struct dmfs_store *st, const char *key, const char *sha256,
		 char **upload_id, struct dmfs_err_detail *d);
int s3_mp_part(struct dmfs_store *st, const char *key, const char *upload_id,
	       uint32_t part_no, int fd, uint64_t off, uint64_t len,
	       char etag[DMFS_ETAG_MAX], struct dmfs_err_detail *d);
int s3_mp_complete(struct dmfs_store *st, const char *key,
		   const char *upload_id, const char (*etags)[DMFS_ETAG_MAX],
		   uint32_t n, struct dmfs_err_detail *d);
int s3_mp_abort(struct dmfs_store *st, const char *key,
		const char *upload_id, struct dmfs_err_detail *d);

#endif
