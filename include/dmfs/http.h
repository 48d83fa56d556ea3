/*
 * http.h - HTTP transport for the S3 client: a pool of kept-alive curl
 * handles, timeouts, and the one retry policy of dmfs.
 *
 * http_perform() sends a request and retries transient failures (network
 * errors, timeouts, 5xx, 429) with exponential backoff and full jitter,
 * bounded by http_opts.max_retries.  It does not interpret S3 error codes:
 * it reports the HTTP status and keeps the error body so the S3 layer can.
 * A 2xx body goes to the caller's sink; any other body goes to the bounded
 * error buffer, so an error page is never mistaken for file data.
 */
#ifndef DMFS_HTTP_H
#define DMFS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "dmfs/err.h"
#include "dmfs/store.h"

struct http_opts {
	long connect_timeout_ms; /* per attempt */
	long stall_timeout_s;	 /* abort when < 1 byte/s for this long */
	int max_retries;	 /* attempts after the first */
	long retry_base_ms;	 /* first backoff; doubles per attempt */
	long retry_max_ms;	 /* cap on one backoff */
	const char *ca_bundle;	 /* NULL: system default; borrowed */
	bool insecure;		 /* skip TLS verification (never default) */
	int max_handles;	 /* kept-alive handles in the pool */
};

struct http_pool;

/* Called before each attempt to (re)build the signed headers; a retry
 * after a backoff gets a fresh x-amz-date.  Returns 0 or DMFS_ERR_*. On
 * success *headers is a list the transport frees with curl_slist_free_all. */
typedef int (*http_sign_fn)(void *ctx, struct curl_slist **headers);

struct http_request {
	const char *method;	/* "GET", "HEAD" */
	const char *url;	/* complete, already encoded */
	http_sign_fn sign;	/* builds headers per attempt */
	void *sign_ctx;
	/* 2xx body sink: a caller buffer of `cap` bytes (fixed, e.g. a block)
	 * or, when buf is NULL, a growable buffer up to `cap` bytes that the
	 * response owns (for listings). */
	void *buf;
	size_t cap;
	/* When not NULL, the 2xx body streams here instead (buf and cap are
	 * ignored); restarted before every retried attempt. */
	const struct dmfs_sink *sink;
	/* Request body (PUT): sent when upload is true; from upload_buf, or
	 * from upload_fd (borrowed, read with pread from upload_off) when
	 * upload_buf is NULL.  Re-sent from the start on a retry. */
	bool upload;
	const void *upload_buf;
	int upload_fd;
	uint64_t upload_off;	/* upload_fd: where the body starts */
	uint64_t upload_len;
};

#define HTTP_META_MAX 4608	/* S3 allows 2 KiB of user metadata */
#define HTTP_META_ENTRIES 24 /* s3fs's 4 attributes and 20 more */

struct http_response {
	long status;		/* final HTTP status, 0 if none */
	char *body;		/* growable sink result (buf == NULL); caller
				   frees with http_response_free */
	size_t len;		/* 2xx body bytes stored */
	char errbody[8192];	/* non-2xx body, NUL-terminated, truncated */
	size_t errlen;
	char etag[80];		/* from the ETag header, quotes stripped */
	int64_t last_modified;	/* from Last-Modified, -1 if absent */
	int64_t content_length; /* -1 if absent */
	int64_t range_total;	/* from Content-Range ".../TOTAL", -1 */
	char request_id[128];	/* x-amz-request-id */
	char meta_sha256[65];	/* x-amz-meta-dmfs-sha256, "" if absent */
	char content_type[128]; /* Content-Type, "" if absent */
	char meta[HTTP_META_MAX]; /* the other x-amz-meta-* headers, as
				   "name:value\n" lines (name without the
				   prefix, lower case) */
	size_t meta_len;
	int meta_n;		/* lines in meta */
	int meta_lost;		/* some did not fit */
	char version_id[256];	/* x-amz-version-id, "" if absent */
	int attempts;
};

/* Create a pool.  opts is copied (ca_bundle must outlive the pool).
 * Caller frees with http_pool_free. */
int http_pool_new(const struct http_opts *opts, struct http_pool **out)
	__attribute__((warn_unused_result));
void http_pool_free(struct http_pool *p);

/*
 * Perform with retries.  Returns 0 when an HTTP answer arrived (any
 * status: look at resp->status), DMFS_ERR_NETWORK / DMFS_ERR_TIMEOUT when
 * none did after all retries, DMFS_ERR_TOO_BIG when the body exceeded cap,
 * DMFS_ERR_NOMEM.  d gets the curl error text when no answer arrived.
 * Statuses 5xx and 429 are retried; every other status is final.
 */
int http_perform(struct http_pool *p, const struct http_request *req,
		 struct http_response *resp, struct dmfs_err_detail *d)
	__attribute__((warn_unused_result));

/* Free the growable body. Cannot fail; NULL-safe. */
void http_response_free(struct http_response *resp);

#endif
