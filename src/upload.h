/*
 * upload.h - send a staged file to the store and check that it arrived
 * (upload.c).  Internal to stage.c.
 */
#ifndef DMFS_UPLOAD_H
#define DMFS_UPLOAD_H

#include <pthread.h>
#include <stdint.h>

#include "dmfs/store.h"

/* What the uploads of one mount learnt about the store. */
struct upload_caps {
	pthread_mutex_t lock;
	int cond_put;		 /* protected by lock: an UPLOAD_COND_*, or
				    -1 while not known */
};

/* What a server does with If-None-Match: * on PUT. */
enum {
	UPLOAD_COND_IGNORED = 0,   /* writes anyway (s3rver): HEAD first */
	UPLOAD_COND_HONOURED = 1,  /* 412 when the key exists (RGW, AWS) */
	UPLOAD_COND_REFUSED = 2,   /* 501 for the header: do not send it */
};

struct upload_opts {
	uint64_t multipart_size; /* above this, multipart (when the store
				    has it) */
	int parallel;		 /* parts in flight */
	struct upload_caps *caps; /* borrowed; NULL: assume nothing */
};

/* What the store does with If-None-Match: * on PUT (an UPLOAD_COND_*),
 * found out by a probe the first time (upload_probe.c).  Never fails: a
 * probe that fails for the network says IGNORED this time and is tried
 * again at the next upload. */
int upload_cond_put(struct upload_caps *c, struct dmfs_store *st);

/*
 * Upload len bytes of fd (borrowed; read with pread) to key, with its
 * sha256 as x-amz-meta-dmfs-sha256, then HEAD it: the size must match,
 * and for a single PUT the ETag the PUT answered.  sha256 (hex, may be
 * NULL: computed from fd) is the bytes' hash when the caller knows it.
 *
 * expect_etag is the stale-writer check, done just before sending: NULL
 * for none, "" when the key must not exist (sent as If-None-Match; a HEAD
 * looks first unless o->caps says the server honours the condition),
 * else the ETag the key must still have.  DMFS_ERR_STALE when it does
 * not.  A multipart upload that fails is aborted.  out (may be NULL)
 * receives size, ETag, mtime and sha256 (caller frees with
 * dmfs_obj_info_clear).  attrs (may be NULL) are stored with it as
 * s3fs stores them.
 */
int upload_fd(struct dmfs_store *st, const char *key, int fd, uint64_t len,
	      const char *sha256, const char *expect_etag, const struct dmfs_attrs *attrs,
	      const struct upload_opts *o,
	      struct dmfs_obj_info *out, struct dmfs_err_detail *d)
	__attribute__((warn_unused_result));

#endif
