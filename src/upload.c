/*
 * upload.c - one staged file to one key, checked after the fact.
 *
 * The order of an upload:
 *   1. sha256 of the staged bytes (stored as x-amz-meta-dmfs-sha256, so
 *      snapshots need not read the object again);
 *   2. the stale-writer check: HEAD the key and compare its ETag with the
 *      one it had when the file was opened (a new file: the key must
 *      still be absent, and the PUT carries If-None-Match: * where the
 *      server honours it).  Between this HEAD and the PUT another writer
 *      can still slip in: S3 offers no If-Match on PUT everywhere, so the
 *      window is one round trip, not the whole time the file was open;
 *   3. a single PUT up to multipart_size, else a multipart upload with
 *      `parallel` parts in flight (stores that have no multipart get a
 *      single PUT whatever the size); a failed multipart is aborted;
 *   4. HEAD again: the size must be the staged size and, for a single
 *      PUT, the ETag the PUT answered, so a "200 OK" that hides a short
 *      or different object is an error, never a silent loss.
 * Nothing here touches the previous object before step 3 succeeds: S3
 * replaces an object only when a PUT or a multipart completion succeeds.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "dmfs/log.h"
#include "dmfs/sha256.h"
#include "part_pool.h"
#include "upload.h"


bool upload_meta_has(const char *user_meta, const char *name,
		     const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);

	/* "name:value\n" lines, as dmfs_obj_info.user_meta has them. */
	for (const char *p = user_meta; p && *p;) {
		const char *end = strchr(p, '\n');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n == nl + 1 + vl && !memcmp(p, name, nl) && p[nl] == ':' &&
		    !memcmp(p + nl + 1, value, vl))
			return true;
		p = end ? end + 1 : p + n;
	}
	return false;
}

/* Step 2: 0 when the key is as the writer last saw it, or holds these
 * very bytes already (sha256 and size: our own earlier upload whose
 * answer was lost, or a crash before the staged copy was marked clean;
 * or the marker of our own streamed upload, token: a crash before its
 * metadata was set; writing them again loses nothing). */
int upload_check_not_stale(struct dmfs_store *st, const char *key,
			   const char *expect_etag, const char *sha,
			   uint64_t len, const char *token,
			   struct dmfs_err_detail *d)
{
	struct dmfs_obj_info cur;
	int rc;

	if (!expect_etag)
		return 0;
	rc = st->ops->head(st, key, &cur, d);
	if (rc == DMFS_ERR_NOT_FOUND)
		/* Deleted meanwhile: writing it back loses nothing. */
		return 0;
	if (rc)
		return rc;
	if (strcmp(cur.etag, expect_etag) != 0 &&
	    !(cur.size == len && !strcmp(cur.sha256, sha)) &&
	    !(token && *token && cur.size == len &&
	      upload_meta_has(cur.user_meta, UPLOAD_STREAM_META, token))) {
		dmfs_log(DMFS_LOG_WARN,
			 "upload %s: the object changed in the bucket since "
			 "it was opened (ETag %s, expected %s)",
			 key, cur.etag, *expect_etag ? expect_etag : "none");
		rc = DMFS_ERR_STALE;
	}
	dmfs_obj_info_clear(&cur);
	return rc;
}

void upload_abort(struct dmfs_store *st, const char *key,
		  const char *upload_id)
{
	struct dmfs_err_detail ad = {0};
	int rc = st->ops->mp_abort(st, key, upload_id, &ad);

	/* NoSuchUpload: completed or aborted already - nothing is left. */
	if (rc && rc != DMFS_ERR_NOT_FOUND)
		dmfs_log(DMFS_LOG_WARN, "upload %s: abort of multipart upload "
			 "%s failed too (HTTP %d %s)", key, upload_id,
			 ad.http_status, ad.s3_code[0] ? ad.s3_code : "-");
}

/* --- multipart --- */

struct mp_job {
	struct dmfs_store *st;
	const char *key;
	const char *upload_id;
	int fd;
	uint64_t len, part_size;
	char (*etags)[DMFS_ETAG_MAX]; /* one per part; written by the part's
					 thread only */
};

static int mp_send_part(void *ctx, uint32_t p, struct dmfs_err_detail *d)
{
	struct mp_job *j = ctx;
	uint64_t off = (uint64_t)p * j->part_size;
	uint64_t n = j->len - off < j->part_size ? j->len - off : j->part_size;

	return j->st->ops->mp_part(j->st, j->key, j->upload_id, p + 1, j->fd,
				   off, n, j->etags[p], d);
}

static int put_multipart(struct dmfs_store *st, const char *key, int fd,
			 uint64_t len, const struct dmfs_put_opts *po,
			 const char *expect_etag, const char *token,
			 const struct upload_opts *o, struct dmfs_err_detail *d)
{
	struct mp_job j = {.st = st, .key = key, .fd = fd, .len = len};
	struct part_pool *pool = NULL;
	char *upload_id = NULL;
	uint32_t nparts;
	int rc;

	j.part_size = o->multipart_size;
	/* S3 allows 10 000 parts: grow the parts for huge files. */
	while ((len + j.part_size - 1) / j.part_size > 10000)
		j.part_size *= 2;
	nparts = (uint32_t)((len + j.part_size - 1) / j.part_size);
	j.etags = calloc(nparts, sizeof(*j.etags));
	if (!j.etags)
		return DMFS_ERR_NOMEM;
	rc = st->ops->mp_create(st, key, po, &upload_id, d);
	if (rc)
		goto out;
	j.upload_id = upload_id;
	rc = part_pool_start((int)(o->parallel < (int)nparts ? o->parallel
							     : (int)nparts),
			     mp_send_part, &j, &pool);
	if (!rc)
		rc = part_pool_finish(pool, nparts, d);
	/* The stale check once more, just before the object is replaced. */
	if (!rc)
		rc = upload_check_not_stale(st, key, expect_etag, po->sha256,
					    len, token, d);
	if (!rc)
		rc = st->ops->mp_complete(st, key, upload_id,
					  (const char(*)[DMFS_ETAG_MAX])j.etags,
					  nparts, d);
	if (rc)
		upload_abort(st, key, upload_id);
out:
	free(j.etags);
	free(upload_id);
	return rc;
}

/*
 * Step 4's verdict on what a HEAD after the upload saw: 0 when got is
 * the object just sent, else DMFS_ERR_PROTOCOL with the reason in why.
 * put_etag: the single PUT's answer (NULL or "" when unknown).
 */
static int judge(const struct dmfs_obj_info *got, uint64_t len,
		 const char *put_etag, int multipart, const char *sha,
		 const char *expect_etag, char *why, size_t whysz)
{
	if (got->size != len) {
		snprintf(why, whysz, "the bucket holds %llu bytes, %llu were "
			 "sent", (unsigned long long)got->size,
			 (unsigned long long)len);
		return DMFS_ERR_PROTOCOL;
	}
	if (!multipart && put_etag && put_etag[0] &&
	    strcmp(put_etag, got->etag)) {
		snprintf(why, whysz, "the bucket holds ETag %s, the PUT "
			 "answered %s", got->etag, put_etag);
		return DMFS_ERR_PROTOCOL;
	}
	/* A completion whose answer was not understood is judged here: the
	 * object must be the new one, not the old one of the same size.
	 * Its sha256 decides (the old object with the same sha256 holds the
	 * same bytes: rewriting a file unchanged is no error); without one,
	 * an ETag equal to the old object's says the completion did not
	 * happen. */
	if (multipart && (got->sha256[0] ? strcmp(got->sha256, sha) != 0
					 : expect_etag && *expect_etag &&
						   !strcmp(got->etag, expect_etag))) {
		snprintf(why, whysz, "the bucket still holds the previous "
			 "object after the multipart upload");
		return DMFS_ERR_PROTOCOL;
	}
	return 0;
}

struct judge_args {
	uint64_t len;
	const char *put_etag, *sha, *expect_etag;
	int multipart;
};

static int judge_cb(const struct dmfs_obj_info *got, void *arg, char *why,
		    size_t whysz)
{
	const struct judge_args *a = arg;

	return judge(got, a->len, a->put_etag, a->multipart, a->sha,
		     a->expect_etag, why, whysz);
}

int upload_head_settled(struct dmfs_store *st, const char *key,
			upload_verdict_fn verdict, void *arg,
			struct dmfs_obj_info *got, char *why, size_t whysz,
			struct dmfs_err_detail *d)
{
	/* Some servers answer a write before the object is readable
	 * (s3rver writes the bytes after its 200): a wrong answer is asked
	 * again a few times, within about a second. */
	static const unsigned wait_ms[] = {0, 20, 50, 100, 250, 500};
	unsigned waited = 0;
	int rc = 0;

	for (unsigned i = 0; i < sizeof(wait_ms) / sizeof(wait_ms[0]); i++) {
		if (wait_ms[i])
			usleep(wait_ms[i] * 1000u);
		waited += wait_ms[i];
		dmfs_obj_info_clear(got);
		rc = st->ops->head(st, key, got, d);
		if (rc == DMFS_ERR_NOT_FOUND) {
			snprintf(why, whysz, "the bucket has no object under "
				 "the key after the upload");
			rc = DMFS_ERR_PROTOCOL;
			continue;
		}
		if (rc)
			return rc;
		rc = verdict(got, arg, why, whysz);
		if (!rc) {
			if (waited)
				dmfs_log(DMFS_LOG_INFO, "upload %s: the bucket "
					 "showed the object %u ms after the "
					 "upload's answer", key, waited);
			return 0;
		}
	}
	return rc;
}

int upload_fd(struct dmfs_store *st, const char *key, int fd, uint64_t len,
	      const char *sha256, const char *expect_etag,
	      const struct dmfs_attrs *attrs, const struct upload_opts *o,
	      struct upload_stream *stream, const char *token,
	      bool *streamed, struct dmfs_obj_info *out,
	      struct dmfs_err_detail *d)
{
	char sha[65], ours[DMFS_ETAG_MAX] = "";
	struct dmfs_obj_info put = {0}, got = {0};
	int multipart = st->ops->mp_create && len > o->multipart_size &&
			o->multipart_size > 0;
	int rc = 0;

	if (out)
		memset(out, 0, sizeof(*out));
	if (streamed)
		*streamed = false;
	if (sha256)
		snprintf(sha, sizeof(sha), "%s", sha256);
	else
		rc = dmfs_sha256_fd(fd, 0, len, sha);
	if (rc) {
		upload_stream_cancel(stream);
		goto out;
	}
	if (stream) {
		rc = upload_stream_complete(stream, len, sha, expect_etag,
					    attrs, ours, d);
		if (!rc || rc == DMFS_ERR_STALE) {
			multipart = 1;
			if (streamed)
				*streamed = !rc;
			goto check;
		}
		/* Whatever stopped the stream, a whole upload does it the
		 * plain way (and reports what really fails). */
		dmfs_log(DMFS_LOG_INFO, "upload %s: the upload begun while "
			 "writing did not finish (%s); sending the file whole",
			 key, dmfs_strerror(rc));
		if (ours[0])
			expect_etag = ours; /* it replaces our own object */
		memset(d, 0, sizeof(*d));
		rc = 0;
	}
	/* A new file in one PUT: If-None-Match alone is the check where the
	 * server honours it. */
	int cond = !multipart && expect_etag && !*expect_etag && o->caps
			   ? upload_cond_put(o->caps, st)
			   : UPLOAD_COND_IGNORED;
	int cond_only = cond == UPLOAD_COND_HONOURED;
	if (!cond_only)
		rc = upload_check_not_stale(st, key, expect_etag, sha, len,
					    token, d);
	if (rc)
		goto out;
	struct dmfs_put_opts po = {.sha256 = sha, .attrs = attrs};
	if (multipart) {
		rc = put_multipart(st, key, fd, len, &po, expect_etag, token, o,
				   d);
	} else {
		struct dmfs_put_src src = {.fd = fd, .len = len,
					   .sha256 = sha};
		po.if_none_match = expect_etag && !*expect_etag &&
				   cond != UPLOAD_COND_REFUSED;
		rc = st->ops->put(st, key, &src, &po, &put, d);
		/* 412: someone's object is there - unless it is ours (a PUT
		 * retried after a lost answer finds the first one). */
		if (rc == DMFS_ERR_EXISTS)
			rc = upload_check_not_stale(st, key, "", sha, len,
						    NULL, d);
	}
check:
	if (rc)
		goto out;
	/* Step 4: what the bucket holds now. */
	struct judge_args ja = {.len = len,
				.put_etag = multipart ? NULL : put.etag,
				.multipart = multipart,
				.sha = sha,
				.expect_etag = expect_etag};
	char why[256] = "";
	rc = upload_head_settled(st, key, judge_cb, &ja, &got, why,
				 sizeof(why), d);
	if (rc)
		dmfs_log(DMFS_LOG_ERROR, "upload %s: %s", key,
			 why[0] ? why : dmfs_strerror(rc));
	if (!rc && out) {
		*out = got;
		memset(&got, 0, sizeof(got));
		snprintf(out->sha256, sizeof(out->sha256), "%s", sha);
	}
out:
	/* The streamed object is ours, whatever failed after it landed. */
	if (rc && out && ours[0])
		snprintf(out->etag, sizeof(out->etag), "%s", ours);
	dmfs_obj_info_clear(&put);
	dmfs_obj_info_clear(&got);
	return rc;
}
