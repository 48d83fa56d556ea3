/*
 * upload.h - send a staged file to the store and check that it arrived
 * (upload.c).  Internal to stage.c.
 */
#ifndef DMFS_UPLOAD_H
#define DMFS_UPLOAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmfs/store.h"
#include "upload_stream.h"

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
	bool stream;		 /* send the parts of a file written in
				    order while it is written
				    (upload_stream.c) */
	struct upload_caps *caps; /* borrowed; NULL: assume nothing */
};

/* What the store does with If-None-Match: * on PUT (an UPLOAD_COND_*),
 * found out by a probe the first time (upload_probe.c).  Never fails: a
 * probe that fails for the network says IGNORED this time and is tried
 * again at the next upload. */
int upload_cond_put(struct upload_caps *c, struct dmfs_store *st);

/* The x-amz-meta- name of a streamed upload's marker (upload_stream.c). */
#define UPLOAD_STREAM_META "dmfs-stream"

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
 *
 * stream (may be NULL; consumed: freed whatever happens) is an upload
 * begun while the file was written: it is finished first, and when it
 * cannot be, the file is sent whole.  token (may be NULL): the marker of
 * an earlier stream of this staged copy; an object carrying it is ours,
 * not another writer's.  streamed (may be NULL): set true when the
 * stream carried the upload to the end.  When the upload fails after the
 * stream's object landed (with the bytes, without its metadata),
 * out->etag is that object's ETag: the key holds our own bytes.
 */
int upload_fd(struct dmfs_store *st, const char *key, int fd, uint64_t len,
	      const char *sha256, const char *expect_etag,
	      const struct dmfs_attrs *attrs, const struct upload_opts *o,
	      struct upload_stream *stream, const char *token,
	      bool *streamed, struct dmfs_obj_info *out,
	      struct dmfs_err_detail *d)
	__attribute__((warn_unused_result));

/* The stale-writer check of upload_fd (step 2 in upload.c), on its own. */
int upload_check_not_stale(struct dmfs_store *st, const char *key,
			   const char *expect_etag, const char *sha,
			   uint64_t len, const char *token,
			   struct dmfs_err_detail *d)
	__attribute__((warn_unused_result));

/* Abort a multipart upload; a failure is logged (nothing else to do). */
void upload_abort(struct dmfs_store *st, const char *key,
		  const char *upload_id);

/* Whether user_meta ("name:value\n" lines, may be NULL) has exactly the
 * line name:value. */
bool upload_meta_has(const char *user_meta, const char *name,
		     const char *value);

/* Whether got (a HEAD's answer) is what the caller wrote: 0, or an
 * error with the reason in why. */
typedef int (*upload_verdict_fn)(const struct dmfs_obj_info *got, void *arg,
				 char *why, size_t whysz);

/* HEAD key until verdict says 0, for about a second at most: some servers
 * answer a write before the object is readable.  0 with *got filled
 * (caller clears it either way); the verdict's last error (why filled),
 * DMFS_ERR_PROTOCOL when the key stayed absent, or the HEAD's error. */
int upload_head_settled(struct dmfs_store *st, const char *key,
			upload_verdict_fn verdict, void *arg,
			struct dmfs_obj_info *got, char *why, size_t whysz,
			struct dmfs_err_detail *d)
	__attribute__((warn_unused_result));

#endif
