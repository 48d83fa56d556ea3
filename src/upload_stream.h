/*
 * upload_stream.h - a multipart upload sent while its file is still being
 * written (upload_stream.c).  Internal to stage.c and upload.c.
 */
#ifndef DMFS_UPLOAD_STREAM_H
#define DMFS_UPLOAD_STREAM_H

#include <stdint.h>

#include "dmfs/store.h"

struct upload_opts;
struct upload_stream;

/* Create the multipart upload (with the marker and attrs) and the
 * threads that send its parts from fd (borrowed; must outlive the
 * stream).  0 with *out (freed by upload_stream_cancel or upload_fd),
 * DMFS_ERR_UNSUPPORTED for a store without multipart, or the store's
 * error (d filled). */
int upload_stream_start(struct dmfs_store *st, const char *key, int fd,
			const struct dmfs_attrs *attrs,
			const struct upload_opts *o, struct upload_stream **out,
			struct dmfs_err_detail *d)
	__attribute__((warn_unused_result));
/* Bytes [0, len) of fd are written and stay as they are: send the whole
 * parts in them.  0, or the error that stopped the stream (a failed part;
 * DMFS_ERR_TOO_BIG past S3's 10 000 parts): cancel it then. */
int upload_stream_grow(struct upload_stream *s, uint64_t len)
	__attribute__((warn_unused_result));
/* Bytes handed to the upload: changing one of them must cancel it. */
uint64_t upload_stream_fixed(const struct upload_stream *s);
/* The marker's value (32 hex digits) and the multipart upload's id, for
 * the staged copy's sidecar (a crash leaves the upload to abort).
 * Borrowed from s: valid until it is cancelled or completed. */
const char *upload_stream_token(const struct upload_stream *s);
const char *upload_stream_id(const struct upload_stream *s);
/* Stop sending, abort the multipart upload, free s.  NULL-safe. */
void upload_stream_cancel(struct upload_stream *s);
/* The rest of upload_fd's steps 2-3 for a stream (frees s): the last
 * parts, the stale check, the completion, the metadata.  0 when the key
 * holds the file with its metadata; DMFS_ERR_STALE; any other error: the
 * file must be sent whole, and ours_etag (else "") is the ETag of our
 * own streamed object, in place without its metadata. */
int upload_stream_complete(struct upload_stream *s, uint64_t len,
			   const char *sha, const char *expect_etag,
			   const struct dmfs_attrs *attrs,
			   char ours_etag[DMFS_ETAG_MAX],
			   struct dmfs_err_detail *d)
	__attribute__((warn_unused_result));

#endif
