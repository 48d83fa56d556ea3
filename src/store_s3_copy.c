/*
 * store_s3_copy.c - server-side copies too big for one CopyObject.
 *
 * S3 copies at most 5 GiB in one request.  A bigger source is copied as a
 * multipart upload whose parts are UploadPartCopy requests, each naming a
 * byte range of the source (x-amz-copy-source-range).  The order:
 *
 *   1. CreateMultipartUpload on the destination, carrying the metadata.
 *      dmfs copies always replace the metadata (x-amz-metadata-directive
 *      REPLACE, see s3_copy), so what the caller passes in o is all the
 *      new object gets, exactly as with a single copy;
 *   2. the parts, `copy_parallel` at a time.  Every part is pinned to the
 *      source's ETag (x-amz-copy-source-if-match): a source replaced
 *      mid-copy fails the part with 412 instead of mixing two objects;
 *   3. a HEAD of the source: it must still have the ETag the parts were
 *      pinned to, since some servers ignore the pin on parts (Ceph RGW
 *      copies a part whatever x-amz-copy-source-if-match says), then
 *      CompleteMultipartUpload: only now does the destination change;
 *   4. HEAD the destination: its size must be the source's, and the
 *      sha256 and mode sent in step 1 must be there (a completion whose
 *      answer was not understood, or a server that kept the old object,
 *      is caught here).
 * Any failure in 1-3 aborts the upload, so no parts are left to bill and
 * the destination keeps what it held.  Each request goes through
 * s3_perform, so http.c retries transient failures of a part on its own;
 * a part that fails after "200 OK" (an <Error> body) fails the copy, as
 * a single copy does.
 *
 * Servers without UploadPartCopy (s3rver answers 501 NotImplemented) get
 * DMFS_ERR_UNSUPPORTED, logged once with the reason, and nothing changes.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmfs/log.h"
#include "dmfs/s3_xml.h"
#include "dmfs/store_s3.h"
#include "part_pool.h"
#include "store_s3_int.h"

#define PART_BODY_MAX (64u << 10) /* a CopyPartResult or an <Error> */
#define MIB (1ull << 20)

int s3_copy_plan(uint64_t size, uint64_t part_size, uint64_t *part,
		 uint32_t *nparts)
{
	uint64_t p = part_size, n;

	*part = 0;
	*nparts = 0;
	if (part_size < S3_PART_MIN || part_size > S3_PART_MAX)
		return DMFS_ERR_INVAL;
	if (size > p * S3_PARTS_MAX) {
		/* The smallest whole-MiB part that fits the count. */
		p = (size + S3_PARTS_MAX - 1) / S3_PARTS_MAX;
		p = (p + MIB - 1) / MIB * MIB;
		if (p > S3_PART_MAX)
			return DMFS_ERR_TOO_BIG;
	}
	n = size ? (size + p - 1) / p : 1;
	*part = p;
	*nparts = (uint32_t)n;
	return 0;
}

struct copy_job {
	struct s3_store *s;
	const char *fdst;      /* full destination key */
	const char *source;    /* x-amz-copy-source */
	const char *etag_q;    /* the source's ETag, quoted */
	const char *upload_id;
	uint64_t size, part;
	uint32_t nparts;
	char (*etags)[DMFS_ETAG_MAX]; /* one per part; written by the part's
					 thread only, read after the join */
};

/* One UploadPartCopy: part p (0-based) of the job. */
static int copy_part(struct copy_job *j, uint32_t p,
		     struct dmfs_err_detail *d)
{
	uint64_t off = (uint64_t)p * j->part;
	uint64_t len = j->size - off < j->part ? j->size - off : j->part;
	char pn[16], range[64];
	struct http_response resp = {0};
	struct http_request hr = {.upload = true, .upload_buf = "",
				  .cap = PART_BODY_MAX};
	struct s3_req r = {.method = "PUT"};
	struct sigv4_kv q[2], amz[3], plain[1];
	char label[64];
	int rc;

	snprintf(pn, sizeof(pn), "%u", p + 1);
	snprintf(range, sizeof(range), "bytes=%llu-%llu",
		 (unsigned long long)off, (unsigned long long)(off + len - 1));
	q[0] = (struct sigv4_kv){"partNumber", pn};
	q[1] = (struct sigv4_kv){"uploadId", j->upload_id};
	amz[0] = (struct sigv4_kv){"x-amz-copy-source", j->source};
	amz[1] = (struct sigv4_kv){"x-amz-copy-source-if-match", j->etag_q};
	amz[2] = (struct sigv4_kv){"x-amz-copy-source-range", range};
	plain[0] = (struct sigv4_kv){"Expect", ""};
	r.query = q;
	r.nquery = 2;
	r.amz = amz;
	r.namz = 3;
	r.plain = plain;
	r.nplain = 1;
	snprintf(label, sizeof(label), "part %u of %u", p + 1, j->nparts);
	rc = s3_perform(j->s, "COPY-PART", j->fdst, j->fdst, &r, &hr, &resp,
			d);
	if (!rc) {
		rc = s3_xml_parse_copy_part(resp.body ? resp.body : "",
					    resp.len, j->etags[p],
					    DMFS_ETAG_MAX, d);
		/* An <Error> after 200 means what its code means. */
		if (rc == DMFS_ERR_SERVER && d->s3_code[0])
			rc = s3_status_to_err(500, d->s3_code);
		if (rc)
			dmfs_log(DMFS_LOG_ERROR,
				 "S3 COPY-PART %s %s failed after 200: %s (%s)",
				 j->fdst, label, dmfs_strerror(rc),
				 d->s3_code[0] ? d->s3_code : "-");
	}
	http_response_free(&resp);
	return rc;
}

static int copy_send_part(void *ctx, uint32_t p, struct dmfs_err_detail *d)
{
	return copy_part(ctx, p, d);
}

/* Step 2: all parts; the first error (its detail in *d) or 0. */
static int copy_parts(struct copy_job *j, struct dmfs_err_detail *d)
{
	struct part_pool *pool;
	int n = j->s->copy_parallel;
	int rc = part_pool_start((uint32_t)n > j->nparts ? (int)j->nparts : n,
				 copy_send_part, j, &pool);

	return rc ? rc : part_pool_finish(pool, j->nparts, d);
}

/*
 * Between steps 2 and 3: the source still has the ETag the parts were
 * pinned to.  Every part has finished, so if it has, every part read it;
 * this catches servers that ignore x-amz-copy-source-if-match on parts.
 */
static int check_source(struct s3_store *s, const char *src_key,
			const struct dmfs_pin *pin, const char *src_label,
			const char *etag, struct dmfs_err_detail *d)
{
	struct dmfs_pin vpin = {.version_id = pin ? pin->version_id : NULL};
	struct dmfs_obj_info now = {0};
	int rc = s3_head_pinned(s, src_key, &vpin, &now, d);

	if (rc == DMFS_ERR_NOT_FOUND)
		rc = DMFS_ERR_CHANGED; /* deleted under the copy */
	else if (!rc && strcmp(now.etag, etag) != 0)
		rc = DMFS_ERR_CHANGED;
	if (rc == DMFS_ERR_CHANGED)
		dmfs_log(DMFS_LOG_WARN, "S3 multipart copy %s: the source "
			 "changed during the copy (ETag %s, was %s)", src_label,
			 now.etag[0] ? now.etag : "none", etag);
	dmfs_obj_info_clear(&now);
	return rc;
}

/* Step 4: the destination is the copy asked for. */
static int check_result(struct s3_store *s, const char *src_label,
			const char *dst_key, uint64_t size,
			const struct dmfs_put_opts *o, struct dmfs_err_detail *d)
{
	struct dmfs_obj_info got = {0};
	int rc = s3_head_pinned(s, dst_key, NULL, &got, d);
	const char *why = NULL;

	if (rc)
		return rc;
	if (got.size != size)
		why = "size";
	else if (o && o->sha256 && o->sha256[0] &&
		 strcmp(got.sha256, o->sha256) != 0)
		why = "sha256 metadata";
	else if (o && o->attrs && (o->attrs->have & DMFS_ATTR_MODE) &&
		 (!(got.attrs.have & DMFS_ATTR_MODE) ||
		  got.attrs.mode != o->attrs->mode))
		why = "mode metadata";
	if (why) {
		dmfs_log(DMFS_LOG_ERROR, "S3 multipart copy %s -> %s: the "
			 "result has another %s (%llu bytes, %llu expected)",
			 src_label, dst_key, why,
			 (unsigned long long)got.size,
			 (unsigned long long)size);
		rc = DMFS_ERR_PROTOCOL;
	}
	dmfs_obj_info_clear(&got);
	return rc;
}

int s3_copy_multipart(struct s3_store *s, const char *src_key,
		      const struct dmfs_pin *pin, const char *src_label,
		      const char *source, const char *src_etag,
		      uint64_t src_size, const char *dst_key,
		      const struct dmfs_put_opts *o, struct dmfs_err_detail *d)
{
	struct copy_job j = {.s = s, .source = source, .size = src_size};
	char etag_q[DMFS_ETAG_MAX + 2];
	char *upload_id = NULL, *fdst = s3_full_key(s, dst_key);
	int rc;

	if (!fdst)
		return DMFS_ERR_NOMEM;
	if (!src_etag[0]) {
		/* Nothing to pin the parts to: refuse rather than risk
		 * joining two objects. */
		dmfs_log(DMFS_LOG_ERROR, "S3 multipart copy %s: the source "
			 "has no ETag to pin the parts to", src_label);
		free(fdst);
		return DMFS_ERR_PROTOCOL;
	}
	rc = s3_copy_plan(src_size, s->copy_part_size, &j.part, &j.nparts);
	if (rc) {
		dmfs_log(DMFS_LOG_ERROR, "S3 multipart copy %s: %llu bytes "
			 "cannot be copied in parts: %s", src_label,
			 (unsigned long long)src_size, dmfs_strerror(rc));
		free(fdst);
		return rc;
	}
	snprintf(etag_q, sizeof(etag_q), "\"%s\"", src_etag);
	j.fdst = fdst;
	j.etag_q = etag_q;
	j.etags = calloc(j.nparts, sizeof(*j.etags));
	if (!j.etags) {
		free(fdst);
		return DMFS_ERR_NOMEM;
	}
	dmfs_log(DMFS_LOG_DEBUG, "S3 multipart copy %s -> %s: %llu bytes in "
		 "%u parts", src_label, fdst, (unsigned long long)src_size,
		 j.nparts);
	rc = s3_mp_create(&s->base, dst_key, o, &upload_id, d);
	if (rc)
		goto out;
	j.upload_id = upload_id;
	rc = copy_parts(&j, d);
	if (!rc)
		rc = check_source(s, src_key, pin, src_label, src_etag, d);
	if (!rc)
		rc = s3_mp_complete(&s->base, dst_key, upload_id,
				    (const char(*)[DMFS_ETAG_MAX])j.etags,
				    j.nparts, d);
	if (rc) {
		struct dmfs_err_detail ad = {0};
		if (s3_mp_abort(&s->base, dst_key, upload_id, &ad))
			dmfs_log(DMFS_LOG_WARN, "S3 multipart copy %s: abort "
				 "of upload %s failed too", fdst, upload_id);
	}
	if (!rc)
		rc = check_result(s, src_label, dst_key, src_size, o, d);
out:
	if (rc == DMFS_ERR_UNSUPPORTED)
		dmfs_log(DMFS_LOG_ERROR, "S3 copy %s -> %s: the server does "
			 "not implement UploadPartCopy, so objects over "
			 "multipart_copy_size (%llu bytes) cannot be copied "
			 "(renamed, chmod'ed, snapshotted) there; nothing "
			 "was changed", src_label, fdst,
			 (unsigned long long)s->copy_part_size);
	if (rc == DMFS_ERR_UNSUPPORTED)
		snprintf(d->message, sizeof(d->message), "the S3 server has "
			 "no UploadPartCopy, needed to copy objects over "
			 "multipart_copy_size (%llu bytes)",
			 (unsigned long long)s->copy_part_size);
	free(j.etags);
	free(upload_id);
	free(fdst);
	return rc;
}
