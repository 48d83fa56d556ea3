/*
 * err.h - the one error type of dmfs.
 *
 * Every layer below the FUSE boundary returns an `enum dmfs_err` (0 is
 * success).  The S3 layer reports *what happened* (throttled, not found,
 * denied, network) and leaves policy to its callers; exactly one function,
 * dmfs_err_to_errno(), turns an error into an errno, and only the FUSE
 * operations call it.
 *
 * The enum is append-only: values are logged and tested by number.
 */
#ifndef DMFS_ERR_H
#define DMFS_ERR_H

#include <stddef.h>

enum dmfs_err {
	DMFS_OK = 0,
	DMFS_ERR_NOMEM = 1,	   /* allocation failed */
	DMFS_ERR_INVAL = 2,	   /* bad argument or malformed input */
	DMFS_ERR_NOT_FOUND = 3,	   /* no such key / file (S3 NoSuchKey, 404) */
	DMFS_ERR_DENIED = 4,	   /* S3 AccessDenied, bad signature, 403 */
	DMFS_ERR_THROTTLED = 5,	   /* S3 SlowDown / 503: retry later */
	DMFS_ERR_NETWORK = 6,	   /* resolve, connect, reset, TLS */
	DMFS_ERR_TIMEOUT = 7,	   /* request did not finish in time */
	DMFS_ERR_SERVER = 8,	   /* other 5xx from the server */
	DMFS_ERR_CHANGED = 9,	   /* 412: object changed under a pinned ETag */
	DMFS_ERR_PROTOCOL = 10,	   /* response we cannot make sense of */
	DMFS_ERR_IO = 11,	   /* local I/O failed */
	DMFS_ERR_TOO_BIG = 12,	   /* a bounded buffer would overflow */
	DMFS_ERR_CORRUPT = 13,	   /* checksum mismatch in the cache */
	DMFS_ERR_NOSPC = 14,	   /* cache or disk full */
	DMFS_ERR_ROFS = 15,	   /* write to a read-only namespace */
	DMFS_ERR_CONFIG = 16,	   /* bad option, credentials file, ... */
	DMFS_ERR_UNSUPPORTED = 17, /* the store cannot do this */
	DMFS_ERR_RANGE = 18,	   /* 416: range not satisfiable */
	DMFS_ERR_EXISTS = 19,	   /* already exists (412 on If-None-Match) */
	DMFS_ERR_NOT_DIR = 20,	   /* a path component is a file */
	DMFS_ERR_IS_DIR = 21,	   /* a directory where a file was expected */
	DMFS_ERR_STALE = 22,	   /* changed in the bucket by another writer */
	DMFS_ERR_NOT_EMPTY = 23,   /* directory not empty */
	DMFS_ERR_BAD_NAME = 24,	   /* a name to create is not valid UTF-8 */
	DMFS_ERR_NAME_TOO_LONG = 25, /* a key to create is over 1024 bytes */
	DMFS_ERR__COUNT
};

/*
 * What a failed remote request said, for the log line and for tests.  The
 * caller owns the struct (usually on its stack) and passes it down; layers
 * fill what they know.  Never holds a secret.
 */
struct dmfs_err_detail {
	int http_status;	 /* 0 when no HTTP answer arrived */
	char s3_code[64];	 /* e.g. "NoSuchKey", "SlowDown" */
	char request_id[128];	 /* x-amz-request-id or <RequestId> */
	char message[256];	 /* human text: S3 <Message> or curl error */
};

/* Static English text for an error.  Cannot fail. */
const char *dmfs_strerror(int err);

/* The errno (positive) for an error, for the FUSE boundary.  Cannot fail. */
int dmfs_err_to_errno(int err);

/* Whether an error is worth retrying (throttled, network, 5xx, timeout). */
int dmfs_err_is_transient(int err);

/* Format a reason for people into msg (NULL or msgsz 0: nothing).
 * Cannot fail. */
void dmfs_say(char *msg, size_t msgsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Reset every field of a detail struct.  Cannot fail. */
void dmfs_err_detail_clear(struct dmfs_err_detail *d);

#endif
