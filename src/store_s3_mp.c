/*
 * store_s3_mp.c - S3 multipart uploads: CreateMultipartUpload, UploadPart,
 * CompleteMultipartUpload, AbortMultipartUpload.
 *
 * Each request is one s3_perform (so http.c retries a part on its own).
 * The answers are parsed with expat (s3_xml.c); a Complete can fail after
 * "200 OK" with an <Error> body, which is an error here too.  The key
 * changes only when Complete succeeds; the caller (upload.c) aborts on any
 * failure so no parts are left to bill.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "dmfs/log.h"
#include "dmfs/s3_xml.h"
#include "dmfs/sha256.h"
#include "dmfs/sigv4.h"
#include "store_s3_int.h"

#define MP_BODY_MAX (1u << 20)	      /* an Initiate / Complete answer */
#define UPLOAD_ID_MAX 1024
#define PART_XML_MAX (64 + DMFS_ETAG_MAX) /* one <Part> of the Complete body */

int s3_mp_create(struct dmfs_store *st, const char *key,
		 const struct dmfs_put_opts *o, char **upload_id,
		 struct dmfs_err_detail *d)
{
	struct s3_store *s = (struct s3_store *)st;
	char *fk = s3_full_key(s, key);
	char id[UPLOAD_ID_MAX];
	struct http_response resp = {0};
	struct http_request hr = {.upload = true, .upload_buf = "",
				  .cap = MP_BODY_MAX};
	struct s3_req r = {.method = "POST"};
	struct sigv4_kv q[1] = {{"uploads", ""}};
	struct s3_meta_hdrs mh;
	struct sigv4_kv plain[2];
	int rc;

	*upload_id = NULL;
	rc = s3_meta_hdrs_build(o, &mh);
	if (!fk || rc) {
		s3_meta_hdrs_free(&mh);
		free(fk);
		return rc ? rc : DMFS_ERR_NOMEM;
	}
	r.query = q;
	r.nquery = 1;
	plain[r.nplain++] = (struct sigv4_kv){
		"Content-Type", o && o->content_type ? o->content_type
						     : "application/octet-stream"};
	plain[r.nplain++] = (struct sigv4_kv){"Expect", ""};
	r.amz = mh.kv;
	r.namz = mh.n;
	r.plain = plain;
	rc = s3_perform(s, "MPU-CREATE", fk, fk, &r, &hr, &resp, d);
	if (!rc) {
		rc = s3_xml_parse_initiate(resp.body ? resp.body : "",
					   resp.len, id, sizeof(id));
		if (rc)
			dmfs_log(DMFS_LOG_ERROR, "S3 MPU-CREATE %s: cannot "
				 "parse the answer: %s", fk, dmfs_strerror(rc));
	}
	if (!rc && !(*upload_id = strdup(id)))
		rc = DMFS_ERR_NOMEM;
	s3_meta_hdrs_free(&mh);
	http_response_free(&resp);
	free(fk);
	return rc;
}

int s3_mp_part(struct dmfs_store *st, const char *key, const char *upload_id,
	       uint32_t part_no, int fd, uint64_t off, uint64_t len,
	       char etag[DMFS_ETAG_MAX], struct dmfs_err_detail *d)
{
	struct s3_store *s = (struct s3_store *)st;
	char *fk = s3_full_key(s, key);
	char payload[65], pn[16];
	struct http_response resp = {0};
	struct http_request hr = {
		.upload = true,
		.upload_buf = len ? NULL : "",
		.upload_fd = fd,
		.upload_off = off,
		.upload_len = len,
	};
	struct s3_req r = {.method = "PUT", .payload_hash = payload};
	struct sigv4_kv q[2], plain[1];
	int rc;

	etag[0] = '\0';
	if (!fk)
		return DMFS_ERR_NOMEM;
	snprintf(pn, sizeof(pn), "%u", part_no);
	q[0] = (struct sigv4_kv){"partNumber", pn};
	q[1] = (struct sigv4_kv){"uploadId", upload_id};
	r.query = q;
	r.nquery = 2;
	plain[r.nplain++] = (struct sigv4_kv){"Expect", ""};
	r.plain = plain;
	rc = 0;
	if (s3_unsigned_body(s))
		snprintf(payload, sizeof(payload), "%s", S3_UNSIGNED_PAYLOAD);
	else
		rc = dmfs_sha256_fd(fd, off, len, payload);
	if (!rc)
		rc = s3_perform(s, "MPU-PART", fk, fk, &r, &hr, &resp, d);
	if (!rc && !resp.etag[0]) {
		dmfs_log(DMFS_LOG_ERROR, "S3 MPU-PART %s #%u: no ETag in the "
			 "answer", fk, part_no);
		rc = DMFS_ERR_PROTOCOL;
	}
	if (!rc)
		snprintf(etag, DMFS_ETAG_MAX, "%s", resp.etag);
	http_response_free(&resp);
	free(fk);
	return rc;
}

int s3_mp_complete(struct dmfs_store *st, const char *key,
		   const char *upload_id, const char (*etags)[DMFS_ETAG_MAX],
		   uint32_t n, struct dmfs_err_detail *d)
{
	struct s3_store *s = (struct s3_store *)st;
	char *fk = s3_full_key(s, key);
	size_t cap = 64 + (size_t)n * PART_XML_MAX, len = 0;
	char *body = malloc(cap);
	char payload[65], etag[DMFS_ETAG_MAX];
	struct http_response resp = {0};
	struct http_request hr = {.upload = true, .cap = MP_BODY_MAX};
	struct s3_req r = {.method = "POST", .payload_hash = payload};
	struct sigv4_kv q[1] = {{"uploadId", upload_id}};
	struct sigv4_kv plain[2];
	int rc = 0;

	if (!fk || !body) {
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	len += (size_t)snprintf(body + len, cap - len,
				"<CompleteMultipartUpload>");
	for (uint32_t i = 0; i < n; i++) {
		/* ETags are quoted hex: nothing to escape. */
		if (strpbrk(etags[i], "<>&\"")) {
			rc = DMFS_ERR_PROTOCOL;
			goto out;
		}
		len += (size_t)snprintf(body + len, cap - len,
					"<Part><PartNumber>%u</PartNumber>"
					"<ETag>\"%s\"</ETag></Part>",
					i + 1, etags[i]);
	}
	len += (size_t)snprintf(body + len, cap - len,
				"</CompleteMultipartUpload>");
	sigv4_sha256_hex(body, len, payload);
	hr.upload_buf = body;
	hr.upload_len = len;
	r.query = q;
	r.nquery = 1;
	plain[r.nplain++] = (struct sigv4_kv){"Content-Type",
					      "application/xml"};
	plain[r.nplain++] = (struct sigv4_kv){"Expect", ""};
	r.plain = plain;
	rc = s3_perform(s, "MPU-COMPLETE", fk, fk, &r, &hr, &resp, d);
	if (!rc) {
		rc = s3_xml_parse_complete(resp.body ? resp.body : "",
					   resp.len, etag, sizeof(etag), d);
		/* A 200 whose body is neither the result nor an <Error>
		 * (some servers answer the result in another shape): the
		 * HEAD after the upload (upload.c) decides. */
		if (rc == DMFS_ERR_PROTOCOL) {
			dmfs_log(DMFS_LOG_DEBUG, "S3 MPU-COMPLETE %s: 200 with "
				 "a body not understood (%.120s)", fk,
				 resp.body ? resp.body : "");
			rc = 0;
		}
		if (rc)
			dmfs_log(DMFS_LOG_ERROR, "S3 MPU-COMPLETE %s failed "
				 "after 200: %s (%s)", fk, dmfs_strerror(rc),
				 d->s3_code[0] ? d->s3_code : "-");
	}
out:
	http_response_free(&resp);
	free(body);
	free(fk);
	return rc;
}

int s3_mp_abort(struct dmfs_store *st, const char *key,
		const char *upload_id, struct dmfs_err_detail *d)
{
	struct s3_store *s = (struct s3_store *)st;
	char *fk = s3_full_key(s, key);
	struct http_response resp = {0};
	struct http_request hr = {.cap = MP_BODY_MAX};
	struct s3_req r = {.method = "DELETE"};
	struct sigv4_kv q[1] = {{"uploadId", upload_id}};
	int rc;

	if (!fk)
		return DMFS_ERR_NOMEM;
	r.query = q;
	r.nquery = 1;
	rc = s3_perform(s, "MPU-ABORT", fk, fk, &r, &hr, &resp, d);
	if (rc == DMFS_ERR_NOT_FOUND)
		rc = 0; /* already gone */
	http_response_free(&resp);
	free(fk);
	return rc;
}
