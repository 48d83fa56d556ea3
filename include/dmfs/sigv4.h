/*
 * sigv4.h - AWS Signature Version 4, header signing.
 *
 * Pure functions: no I/O, no clock, no allocation failures hidden.  The
 * caller supplies the timestamp, so tests can check against AWS's published
 * examples.  Nothing here ever logs.
 */
#ifndef DMFS_SIGV4_H
#define DMFS_SIGV4_H

#include <stdbool.h>
#include <stddef.h>

struct sigv4_kv {
	const char *name;
	const char *value;
};

struct sigv4_request {
	const char *method;	     /* "GET" */
	const char *path;	     /* raw (unencoded) absolute path, e.g.
					"/bucket/my key+1.txt" */
	const struct sigv4_kv *query; /* raw (unencoded) query parameters */
	size_t nquery;
	const struct sigv4_kv *headers; /* headers to sign; must include host
					   and x-amz-date (and
					   x-amz-content-sha256 for S3) */
	size_t nheaders;
	const char *payload_hash;    /* hex sha256 of body, or
					"UNSIGNED-PAYLOAD" */
	const char *amz_date;	     /* "20130524T000000Z" */
	const char *region;	     /* "us-east-1" */
	const char *service;	     /* "s3" */
	bool double_encode_path;     /* false for S3; true for other services
					(the generic test suite) */
};

struct sigv4_creds {
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* may be NULL */
};

/*
 * URI-encode per SigV4: unreserved characters (A-Z a-z 0-9 - _ . ~) kept,
 * everything else as %XX upper-case; '/' kept when keep_slash.
 * Caller frees the result with free(); NULL on allocation failure.
 */
char *sigv4_uri_encode(const char *in, bool keep_slash);

/* Canonical request text.  Caller frees with free(); NULL on failure. */
char *sigv4_canonical_request(const struct sigv4_request *req);

/* String to sign for a canonical request.  Caller frees with free(). */
char *sigv4_string_to_sign(const struct sigv4_request *req,
			   const char *canonical_request);

/* Lower-case hex signature (64 chars + NUL) into sig_hex.  0 or DMFS_ERR_*. */
int sigv4_signature(const struct sigv4_request *req,
		    const struct sigv4_creds *creds, const char *string_to_sign,
		    char sig_hex[65]);

/*
 * The full Authorization header value ("AWS4-HMAC-SHA256 Credential=...,
 * SignedHeaders=..., Signature=...").  Caller frees with free().
 * NULL on allocation failure.
 */
char *sigv4_authorization(const struct sigv4_request *req,
			  const struct sigv4_creds *creds);

/* Hex sha256 of a buffer into out (65 bytes).  Cannot fail. */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

#endif
