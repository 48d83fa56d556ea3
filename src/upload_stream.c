/*
 * upload_stream.c - a multipart upload that starts while cp is still
 * writing the file.
 *
 * A staged file written in order from its first byte can be sent part by
 * part as it grows: by the time cp closes it, most of it is in the
 * bucket, and close() waits for the last parts only.  What stands in the
 * way is the sha256 every upload stores in its metadata: S3 fixes an
 * object's metadata at CreateMultipartUpload, before the bytes are
 * known.  So the upload is created with a marker instead
 * (x-amz-meta-dmfs-stream: a random token), completed, and then given its
 * metadata (sha256, mode, mtime ...) by a copy of the object onto itself
 * pinned to the ETag the completion produced.  On RGW that copy rewrites
 * the metadata alone; on AWS it is a server-side copy of the bytes (see
 * -o stream_upload in dmfs(1)).
 *
 * Between the completion and the copy the key holds the new bytes with
 * the marker and without a sha256.  A crash there leaves the staged copy
 * dirty with the token in its sidecar: the next mount sees the marker,
 * knows the object is its own and uploads the file again whole.
 *
 * The stream never decides anything about the file: stage.c offers parts
 * only of bytes that are written and will not change (a change below
 * upload_stream_fixed() cancels the stream), and falls back to a whole
 * upload (upload_fd) whenever the stream cannot finish.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "dmfs/log.h"
#include "part_pool.h"
#include "upload.h"

#define S3_PARTS_MAX 10000

struct upload_stream {
	struct dmfs_store *st;	      /* borrowed */
	char *key;		      /* owned */
	int fd;			      /* borrowed: the staged copy */
	char *upload_id;	      /* owned */
	uint64_t part_size;
	uint32_t offered;	      /* parts handed to the pool */
	char (*etags)[DMFS_ETAG_MAX]; /* S3_PARTS_MAX of them; part p's is
					 written by its thread only */
	struct part_pool *pool;
	char token[33];
};

static int send_part(void *ctx, uint32_t p, struct dmfs_err_detail *d)
{
	struct upload_stream *s = ctx;

	/* Parts are offered only once whole: every one but the last, sent
	 * by upload_stream_complete, is exactly part_size. */
	return s->st->ops->mp_part(s->st, s->key, s->upload_id, p + 1, s->fd,
				   (uint64_t)p * s->part_size, s->part_size,
				   s->etags[p], d);
}

static void stream_free(struct upload_stream *s)
{
	free(s->key);
	free(s->upload_id);
	free(s->etags);
	free(s);
}

int upload_stream_start(struct dmfs_store *st, const char *key, int fd,
			const struct dmfs_attrs *attrs,
			const struct upload_opts *o, struct upload_stream **out,
			struct dmfs_err_detail *d)
{
	struct upload_stream *s;
	unsigned char rnd[16];
	char meta[64];
	int rc;

	*out = NULL;
	if (!st->ops->mp_create)
		return DMFS_ERR_UNSUPPORTED;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->key = strdup(key)) ||
	    !(s->etags = calloc(S3_PARTS_MAX, sizeof(*s->etags)))) {
		if (s)
			stream_free(s);
		return DMFS_ERR_NOMEM;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		stream_free(s);
		return DMFS_ERR_NOMEM;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(s->token + 2 * i, 3, "%02x", rnd[i]);
	s->st = st;
	s->fd = fd;
	s->part_size = o->multipart_size;
	snprintf(meta, sizeof(meta), UPLOAD_STREAM_META ":%s", s->token);
	struct dmfs_put_opts po = {.attrs = attrs, .user_meta = meta};
	rc = st->ops->mp_create(st, key, &po, &s->upload_id, d);
	if (!rc)
		rc = part_pool_start(o->parallel, send_part, s, &s->pool);
	if (rc) {
		if (s->upload_id)
			upload_abort(st, key, s->upload_id);
		stream_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

const char *upload_stream_token(const struct upload_stream *s)
{
	return s->token;
}

const char *upload_stream_id(const struct upload_stream *s)
{
	return s->upload_id;
}

uint64_t upload_stream_fixed(const struct upload_stream *s)
{
	return (uint64_t)s->offered * s->part_size;
}

int upload_stream_grow(struct upload_stream *s, uint64_t len)
{
	uint64_t whole = len / s->part_size;

	/* The last part is sent at completion; one past the limit would
	 * leave it no room. */
	if (whole >= S3_PARTS_MAX)
		return DMFS_ERR_TOO_BIG;
	if (whole > s->offered) {
		s->offered = (uint32_t)whole;
		part_pool_offer(s->pool, s->offered);
	}
	return part_pool_error(s->pool);
}

void upload_stream_cancel(struct upload_stream *s)
{
	if (!s)
		return;
	part_pool_cancel(s->pool);
	upload_abort(s->st, s->key, s->upload_id);
	stream_free(s);
}

struct ours_args {
	const char *token;
	uint64_t len;
};

/* The verdict: the key holds this stream's completed upload. */
static int is_ours(const struct dmfs_obj_info *got, void *arg, char *why,
		   size_t whysz)
{
	const struct ours_args *a = arg;

	if (got->size == a->len &&
	    upload_meta_has(got->user_meta, UPLOAD_STREAM_META, a->token))
		return 0;
	snprintf(why, whysz, "the bucket does not hold the streamed upload "
		 "after its completion");
	return DMFS_ERR_PROTOCOL;
}

int upload_stream_complete(struct upload_stream *s, uint64_t len,
			   const char *sha, const char *expect_etag,
			   const struct dmfs_attrs *attrs,
			   char ours_etag[DMFS_ETAG_MAX],
			   struct dmfs_err_detail *d)
{
	struct dmfs_store *st = s->st;
	struct dmfs_obj_info cur = {0};
	uint32_t nparts;
	int rc;

	ours_etag[0] = '\0';
	if (len < upload_stream_fixed(s) || len == 0) {
		upload_stream_cancel(s);
		return DMFS_ERR_INVAL;
	}
	nparts = (uint32_t)((len + s->part_size - 1) / s->part_size);
	if (nparts > S3_PARTS_MAX) {
		upload_stream_cancel(s);
		return DMFS_ERR_TOO_BIG;
	}
	/* The whole parts the writer left unoffered, then the tail (sent
	 * here: it may be shorter than s->part_size, which only the last
	 * part may be), unless the file ends on a part's end and the pool
	 * has sent it already. */
	uint32_t pooled = s->offered == nparts ? nparts : nparts - 1;
	uint64_t tail_off = (uint64_t)(nparts - 1) * s->part_size;
	rc = part_pool_finish(s->pool, pooled, d);
	s->pool = NULL;
	if (!rc && pooled < nparts)
		rc = st->ops->mp_part(st, s->key, s->upload_id, nparts, s->fd,
				      tail_off, len - tail_off,
				      s->etags[nparts - 1], d);
	if (!rc)
		rc = upload_check_not_stale(st, s->key, expect_etag, sha, len,
					    NULL, d);
	if (rc) {
		upload_abort(st, s->key, s->upload_id);
		goto out;
	}
	rc = st->ops->mp_complete(st, s->key, s->upload_id,
				  (const char(*)[DMFS_ETAG_MAX])s->etags, nparts,
				  d);
	/* An answer lost on the way does not say whether the completion
	 * happened: the marker does. */
	struct dmfs_err_detail hd = {0};
	struct ours_args oa = {.token = s->token, .len = len};
	char why[160] = "";
	int head = upload_head_settled(st, s->key, is_ours, &oa, &cur, why,
				       sizeof(why), &hd);
	if (head) {
		if (!rc) {
			rc = head;
			dmfs_log(DMFS_LOG_WARN, "upload %s: %s", s->key,
				 why[0] ? why : dmfs_strerror(head));
		}
		upload_abort(st, s->key, s->upload_id);
		goto out;
	}
	snprintf(ours_etag, DMFS_ETAG_MAX, "%s", cur.etag);
	/* The metadata the upload could not carry from the start. */
	struct dmfs_pin pin = {.if_match = cur.etag, .size_hint = len};
	struct dmfs_put_opts po = {.sha256 = sha, .attrs = attrs};
	rc = st->ops->copy(st, s->key, &pin, s->key, &po, d);
	if (!rc)
		dmfs_log(DMFS_LOG_DEBUG, "upload %s: %u of %u parts sent while "
			 "the file was written", s->key, s->offered, nparts);
	else
		dmfs_log(DMFS_LOG_WARN, "upload %s: the streamed upload is in "
			 "the bucket but its metadata could not be set (%s); "
			 "sending the file again whole", s->key,
			 dmfs_strerror(rc));
out:
	dmfs_obj_info_clear(&cur);
	stream_free(s);
	return rc;
}
