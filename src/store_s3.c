/*
 * store_s3.c - the store interface over S3's REST API.
 *
 * This file knows S3: how URLs are addressed (path-style or
 * virtual-hosted), how requests are signed, what ListObjectsV2 looks like,
 * and what S3 error codes mean (s3_status_to_err).  It does not retry:
 * http.c does, for every request, by one policy.  A request that finally
 * fails is logged here once, with its S3 code and request id; secrets and
 * signatures never reach the log.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "dmfs/log.h"
#include "dmfs/s3_xml.h"
#include "dmfs/sha256.h"
#include "dmfs/sigv4.h"
#include "dmfs/stats.h"
#include "dmfs/store_s3.h"
#include "store_s3_int.h"

int s3_status_to_err(long status, const char *code)
{
	if (code && *code) {
		if (!strcmp(code, "SlowDown") || !strcmp(code, "Throttling") ||
		    !strcmp(code, "RequestLimitExceeded") ||
		    !strcmp(code, "ServiceUnavailable"))
			return DMFS_ERR_THROTTLED;
		if (!strcmp(code, "NoSuchKey") || !strcmp(code, "NoSuchBucket"))
			return DMFS_ERR_NOT_FOUND;
		if (!strcmp(code, "AccessDenied") ||
		    !strcmp(code, "InvalidAccessKeyId") ||
		    !strcmp(code, "SignatureDoesNotMatch") ||
		    !strcmp(code, "ExpiredToken") ||
		    !strcmp(code, "InvalidToken") ||
		    !strcmp(code, "RequestTimeTooSkewed"))
			return DMFS_ERR_DENIED;
		if (!strcmp(code, "PreconditionFailed"))
			return DMFS_ERR_CHANGED;
		if (!strcmp(code, "InvalidRange"))
			return DMFS_ERR_RANGE;
		if (!strcmp(code, "InternalError"))
			return DMFS_ERR_SERVER;
		if (!strcmp(code, "NotImplemented"))
			return DMFS_ERR_UNSUPPORTED;
	}
	if (status >= 200 && status <= 299)
		return 0;
	switch (status) {
	case 404:
		return DMFS_ERR_NOT_FOUND;
	case 401:
	case 403:
		return DMFS_ERR_DENIED;
	case 412:
		return DMFS_ERR_CHANGED;
	case 416:
		return DMFS_ERR_RANGE;
	case 429:
	case 503:
		return DMFS_ERR_THROTTLED;
	case 501:
		return DMFS_ERR_UNSUPPORTED;
	case 301:
	case 307:
	case 400:
		return DMFS_ERR_INVAL;
	default:
		return status >= 500 ? DMFS_ERR_SERVER : DMFS_ERR_PROTOCOL;
	}
}

static void amz_now(char out[17])
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int add_header(struct curl_slist **h, const char *name,
		      const char *value)
{
	char line[4300];
	/* "Name:" with nothing after the colon makes curl drop a header it
	 * would add by itself (Expect). */
	int n = *value ? snprintf(line, sizeof(line), "%s: %s", name, value)
		       : snprintf(line, sizeof(line), "%s:", name);
	if (n < 0 || (size_t)n >= sizeof(line))
		return DMFS_ERR_TOO_BIG;
	struct curl_slist *nh = curl_slist_append(*h, line);
	if (!nh)
		return DMFS_ERR_NOMEM;
	*h = nh;
	return 0;
}

/* http_sign_fn: the headers for one attempt, signed with a fresh date. */
static int s3_sign(void *ctx, struct curl_slist **out)
{
	struct s3_req *r = ctx;
	struct s3_store *s = r->s;
	struct curl_slist *h = NULL;
	char date[17], etag_q[DMFS_ETAG_MAX + 2];
	struct sigv4_kv signed_h[4 + S3_AMZ_MAX];
	const char *payload = r->payload_hash ? r->payload_hash : EMPTY_SHA256;
	size_t nh = 0;
	int rc = 0;

	if (r->namz > S3_AMZ_MAX)
		return DMFS_ERR_INVAL;
	amz_now(date);
	signed_h[nh++] = (struct sigv4_kv){"host", s->host};
	signed_h[nh++] = (struct sigv4_kv){"x-amz-content-sha256", payload};
	signed_h[nh++] = (struct sigv4_kv){"x-amz-date", date};
	if (s->creds.session_token[0])
		signed_h[nh++] = (struct sigv4_kv){"x-amz-security-token",
						   s->creds.session_token};
	for (size_t i = 0; i < r->namz; i++)
		signed_h[nh++] = r->amz[i];
	for (size_t i = 0; i < nh && !rc; i++)
		rc = add_header(&h, signed_h[i].name, signed_h[i].value);
	for (size_t i = 0; i < r->nplain && !rc; i++)
		rc = add_header(&h, r->plain[i].name, r->plain[i].value);
	if (!rc && r->range)
		rc = add_header(&h, "Range", r->range);
	if (!rc && r->if_match) {
		snprintf(etag_q, sizeof(etag_q), "\"%s\"", r->if_match);
		rc = add_header(&h, "If-Match", etag_q);
	}
	/* curl adds Accept; GETs send no Expect header. */
	if (!rc && !s->creds.anonymous) {
		struct sigv4_request sr = {
			.method = r->method,
			.path = r->path,
			.query = r->query,
			.nquery = r->nquery,
			.headers = signed_h,
			.nheaders = nh,
			.payload_hash = payload,
			.amz_date = date,
			.region = s->region,
			.service = "s3",
		};
		struct sigv4_creds c = {s->creds.access_key,
					s->creds.secret_key,
					s->creds.session_token[0]
						? s->creds.session_token
						: NULL};
		char *auth = sigv4_authorization(&sr, &c);
		if (!auth)
			rc = DMFS_ERR_NOMEM;
		else
			rc = add_header(&h, "Authorization", auth);
		if (auth) {
			OPENSSL_cleanse(auth, strlen(auth));
			free(auth);
		}
	}
	if (rc) {
		curl_slist_free_all(h);
		return rc;
	}
	*out = h;
	return 0;
}

/* "/bucket/key" (path style) or "/key" (virtual-hosted), raw.
 * Caller frees with free(). */
static char *request_path(struct s3_store *s, const char *full_key)
{
	size_t n = strlen(s->bucket) + strlen(full_key) + 3;
	char *p = malloc(n);
	if (!p)
		return NULL;
	if (s->path_style)
		snprintf(p, n, "/%s/%s", s->bucket, full_key);
	else
		snprintf(p, n, "/%s", full_key);
	return p;
}

/* The URL for a raw path and query.  Caller frees with free(). */
static char *request_url(struct s3_store *s, const char *path,
			 const struct sigv4_kv *q, size_t nq)
{
	char *epath = sigv4_uri_encode(path, true);
	size_t cap, len;
	char *url = NULL;
	int ok = epath != NULL;

	if (!ok)
		return NULL;
	cap = strlen(s->scheme) + strlen(s->host) + strlen(s->bucket) +
	      strlen(epath) + 16;
	for (size_t i = 0; i < nq; i++)
		cap += 3 * (strlen(q[i].name) + strlen(q[i].value)) + 2;
	url = malloc(cap);
	if (!url)
		goto out;
	len = (size_t)snprintf(url, cap, "%s://%s%s", s->scheme, s->host,
			       epath);
	for (size_t i = 0; i < nq && ok; i++) {
		char *en = sigv4_uri_encode(q[i].name, false);
		char *ev = sigv4_uri_encode(q[i].value, false);
		ok = en && ev;
		if (ok)
			len += (size_t)snprintf(url + len, cap - len, "%c%s=%s",
						i ? '&' : '?', en, ev);
		free(en);
		free(ev);
	}
	if (!ok) {
		free(url);
		url = NULL;
	}
out:
	free(epath);
	return url;
}

/* Apply a pin to a request: If-Match and/or ?versionId= (q must have
 * room for one parameter and outlive the request). */
static void pin_request(struct s3_req *r, const struct dmfs_pin *pin,
			struct sigv4_kv *q)
{
	if (!pin)
		return;
	if (pin->if_match && pin->if_match[0])
		r->if_match = pin->if_match;
	if (pin->version_id && pin->version_id[0]) {
		q[0] = (struct sigv4_kv){"versionId", pin->version_id};
		r->query = q;
		r->nquery = 1;
	}
}

/* Log a request that finally failed, once, and count it. */
static void log_failure(const char *what, const char *key, int rc,
			const struct http_response *resp,
			const struct dmfs_err_detail *d)
{
	if (rc == DMFS_ERR_NOT_FOUND) {
		DMFS_STAT_ADD(not_found, 1);
		return; /* lookups of missing names are normal */
	}
	DMFS_STAT_ADD(errors, 1);
	dmfs_log(rc == DMFS_ERR_CHANGED ? DMFS_LOG_WARN : DMFS_LOG_ERROR,
		 "S3 %s %s failed: %s (HTTP %ld, code %s, request id %s, "
		 "after %d attempt%s)%s%s",
		 what, key, dmfs_strerror(rc), resp->status,
		 d->s3_code[0] ? d->s3_code : "-",
		 d->request_id[0] ? d->request_id : "-", resp->attempts,
		 resp->attempts == 1 ? "" : "s", d->message[0] ? ": " : "",
		 d->message);
}

/* Turn a finished exchange into a dmfs error, filling d. */
static int exchange_result(int rc, struct http_response *resp,
			   struct dmfs_err_detail *d)
{
	if (rc)
		return rc;
	d->http_status = (int)resp->status;
	if (resp->request_id[0])
		snprintf(d->request_id, sizeof(d->request_id), "%s",
			 resp->request_id);
	if (resp->status >= 200 && resp->status <= 299)
		return 0;
	if (resp->errlen)
		(void)s3_xml_parse_error(resp->errbody, resp->errlen, d);
	return s3_status_to_err(resp->status, d->s3_code);
}

int s3_perform(struct s3_store *s, const char *what, const char *key,
		      const char *label, struct s3_req *r,
		      struct http_request *hr, struct http_response *resp,
		      struct dmfs_err_detail *d)
{
	char *path = request_path(s, key);
	char *url = path ? request_url(s, path, r->query, r->nquery) : NULL;
	int rc;

	if (!url) {
		free(path);
		return DMFS_ERR_NOMEM;
	}
	r->s = s;
	r->path = path;
	hr->method = r->method;
	hr->url = url;
	hr->sign = s3_sign;
	hr->sign_ctx = r;
	rc = http_perform(s->http, hr, resp, d);
	rc = exchange_result(rc, resp, d);
	if (rc)
		log_failure(what, label, rc, resp, d);
	else
		dmfs_log(DMFS_LOG_DEBUG, "S3 %s %s (host %s): HTTP %ld, %zu "
			 "bytes%s", what, label, s->host, resp->status,
			 resp->len,
			 r->payload_hash &&
				 !strcmp(r->payload_hash, S3_UNSIGNED_PAYLOAD)
			     ? ", body not hashed (TLS)"
			     : "");
	free(url);
	free(path);
	return rc;
}

bool s3_unsigned_body(const struct s3_store *s)
{
	return strcmp(s->scheme, "https") == 0;
}

char *s3_full_key(struct s3_store *s, const char *key)
{
	size_t n = strlen(s->prefix) + strlen(key) + 1;
	char *k = malloc(n);
	if (k)
		snprintf(k, n, "%s%s", s->prefix, key);
	return k;
}

/* Strip the store prefix in place; 0 if the key was outside it. */
static int strip_prefix(struct s3_store *s, char **key)
{
	size_t pl = strlen(s->prefix);
	if (strncmp(*key, s->prefix, pl) != 0)
		return 0;
	memmove(*key, *key + pl, strlen(*key + pl) + 1);
	return 1;
}

static int s3_list(struct dmfs_store *st, const char *prefix,
		   const char *delimiter, const char *token, size_t max_keys,
		   struct dmfs_list_page *out, struct dmfs_err_detail *d)
{
	struct s3_store *s = (struct s3_store *)st;
	struct sigv4_kv q[6];
	size_t nq = 0;
	char maxk[24];
	char *fprefix = s3_full_key(s, prefix);
	struct http_response resp = {0};
	struct http_request hr = {.cap = LIST_BODY_MAX};
	struct s3_req r = {.method = "GET"};
	int rc;

	memset(out, 0, sizeof(*out));
	if (!fprefix)
		return DMFS_ERR_NOMEM;
	snprintf(maxk, sizeof(maxk), "%zu", max_keys ? max_keys : 1000);
	q[nq++] = (struct sigv4_kv){"list-type", "2"};
	q[nq++] = (struct sigv4_kv){"prefix", fprefix};
	if (delimiter && *delimiter)
		q[nq++] = (struct sigv4_kv){"delimiter", delimiter};
	q[nq++] = (struct sigv4_kv){"max-keys", maxk};
	q[nq++] = (struct sigv4_kv){"encoding-type", "url"};
	if (token)
		q[nq++] = (struct sigv4_kv){"continuation-token", token};
	r.query = q;
	r.nquery = nq;
	rc = s3_perform(s, "LIST", "", fprefix, &r, &hr, &resp, d);
	if (!rc) {
		rc = s3_xml_parse_list(resp.body ? resp.body : "", resp.len,
				       out);
		if (rc)
			dmfs_log(DMFS_LOG_ERROR,
				 "S3 LIST %s: cannot parse the answer: %s",
				 fprefix, dmfs_strerror(rc));
	}
	if (!rc) {
		/* Keep only names under the store prefix, relative to it. */
		size_t j = 0;
		for (size_t i = 0; i < out->nobjs; i++) {
			if (strip_prefix(s, &out->objs[i].key))
				out->objs[j++] = out->objs[i];
			else
				free(out->objs[i].key);
		}
		out->nobjs = j;
		j = 0;
		for (size_t i = 0; i < out->nprefixes; i++) {
			if (strip_prefix(s, &out->prefixes[i]))
				out->prefixes[j++] = out->prefixes[i];
			else
				free(out->prefixes[i]);
		}
		out->nprefixes = j;
	}
	if (rc)
		dmfs_list_page_free(out);
	http_response_free(&resp);
	free(fprefix);
	return rc;
}

int s3_head_pinned(struct s3_store *s, const char *key,
		   const struct dmfs_pin *pin, struct dmfs_obj_info *out,
		   struct dmfs_err_detail *d)
{
	char *fk = s3_full_key(s, key);
	struct http_response resp = {0};
	struct http_request hr = {.cap = 0};
	struct s3_req r = {.method = "HEAD"};
	struct sigv4_kv q[1];
	int rc;

	memset(out, 0, sizeof(*out));
	if (!fk)
		return DMFS_ERR_NOMEM;
	pin_request(&r, pin, q);
	rc = s3_perform(s, "HEAD", fk, fk, &r, &hr, &resp, d);
	if (!rc) {
		out->key = strdup(key);
		if (!out->key)
			rc = DMFS_ERR_NOMEM;
		out->size = resp.content_length > 0
				    ? (uint64_t)resp.content_length
				    : 0;
		out->mtime = resp.last_modified > 0 ? resp.last_modified : 0;
		snprintf(out->etag, sizeof(out->etag), "%s", resp.etag);
		snprintf(out->sha256, sizeof(out->sha256), "%s",
			 resp.meta_sha256);
		if (!rc)
			rc = s3_meta_from_response(&resp, out);
		if (!rc && resp.version_id[0]) {
			out->version_id = strdup(resp.version_id);
			if (!out->version_id)
				rc = DMFS_ERR_NOMEM;
		}
		if (rc)
			dmfs_obj_info_clear(out);
	}
	http_response_free(&resp);
	free(fk);
	return rc;
}

static int s3_head(struct dmfs_store *st, const char *key,
		   struct dmfs_obj_info *out, struct dmfs_err_detail *d)
{
	return s3_head_pinned((struct s3_store *)st, key, NULL, out, d);
}

static int s3_get_range(struct dmfs_store *st, const char *key,
			const struct dmfs_pin *pin, uint64_t off, size_t len,
			void *buf, size_t *got, struct dmfs_err_detail *d)
{
	struct s3_store *s = (struct s3_store *)st;
	char range[64];
	char *fk;
	struct http_response resp = {0};
	struct http_request hr = {.buf = buf, .cap = len};
	struct s3_req r = {.method = "GET"};
	struct sigv4_kv q[1];
	int rc;

	pin_request(&r, pin, q);
	*got = 0;
	if (len == 0)
		return 0;
	fk = s3_full_key(s, key);
	if (!fk)
		return DMFS_ERR_NOMEM;
	snprintf(range, sizeof(range), "bytes=%llu-%llu",
		 (unsigned long long)off,
		 (unsigned long long)(off + len - 1));
	r.range = range;
	rc = s3_perform(s, "GET", fk, fk, &r, &hr, &resp, d);
	if (!rc && resp.status == 200 && off != 0) {
		/* The server ignored Range: these bytes are not ours. */
		dmfs_log(DMFS_LOG_ERROR, "S3 GET %s: range ignored by server",
			 fk);
		rc = DMFS_ERR_PROTOCOL;
	}
	if (!rc && resp.status == 206 && resp.range_total >= 0) {
		uint64_t want = (uint64_t)resp.range_total > off
					? (uint64_t)resp.range_total - off
					: 0;
		if (want > len)
			want = len;
		if (resp.len != want) {
			dmfs_log(DMFS_LOG_ERROR,
				 "S3 GET %s: short body (%zu of %llu bytes)",
				 fk, resp.len, (unsigned long long)want);
			rc = DMFS_ERR_PROTOCOL;
		}
	}
	if (!rc)
		*got = resp.len;
	http_response_free(&resp);
	free(fk);
	return rc;
}


/* Fill an obj_info from the headers of an answer. */
static int info_from_response(const char *key, const struct http_response *resp,
			      struct dmfs_obj_info *out)
{
	memset(out, 0, sizeof(*out));
	out->key = strdup(key);
	out->version_id = resp->version_id[0] ? strdup(resp->version_id) : NULL;
	if (!out->key || (resp->version_id[0] && !out->version_id)) {
		dmfs_obj_info_clear(out);
		return DMFS_ERR_NOMEM;
	}
	out->size = resp->content_length > 0 ? (uint64_t)resp->content_length
					      : 0;
	out->mtime = resp->last_modified > 0 ? resp->last_modified : 0;
	snprintf(out->etag, sizeof(out->etag), "%s", resp->etag);
	snprintf(out->sha256, sizeof(out->sha256), "%s", resp->meta_sha256);
	int rc = s3_meta_from_response(resp, out);
	if (rc)
		dmfs_obj_info_clear(out);
	return rc;
}

static int s3_get_stream(struct dmfs_store *st, const char *key,
			 const struct dmfs_pin *pin,
			 const struct dmfs_sink *sink,
			 struct dmfs_obj_info *info, struct dmfs_err_detail *d)
{
	struct s3_store *s = (struct s3_store *)st;
	char *fk = s3_full_key(s, key);
	struct http_response resp = {0};
	struct http_request hr = {.sink = sink};
	struct s3_req r = {.method = "GET"};
	struct sigv4_kv q[1];
	int rc;

	if (info)
		memset(info, 0, sizeof(*info));
	if (!fk)
		return DMFS_ERR_NOMEM;
	pin_request(&r, pin, q);
	rc = s3_perform(s, "GET", fk, fk, &r, &hr, &resp, d);
	if (!rc && resp.content_length >= 0 &&
	    (uint64_t)resp.content_length != resp.len) {
		dmfs_log(DMFS_LOG_ERROR, "S3 GET %s: short body (%zu of %lld "
			 "bytes)", fk, resp.len, (long long)resp.content_length);
		rc = DMFS_ERR_PROTOCOL;
	}
	if (!rc && info)
		rc = info_from_response(key, &resp, info);
	http_response_free(&resp);
	free(fk);
	return rc;
}

/* Hex sha256 of what a put sends (the signed payload hash). */
static int payload_sha256(const struct dmfs_put_src *src, char out[65])
{
	if (src->sha256 && dmfs_is_sha256_hex(src->sha256)) {
		memcpy(out, src->sha256, 65);
		return 0;
	}
	if (src->buf) {
		sigv4_sha256_hex(src->buf, (size_t)src->len, out);
		return 0;
	}
	return dmfs_sha256_fd(src->fd, 0, src->len, out);
}

static int s3_put(struct dmfs_store *st, const char *key,
		  const struct dmfs_put_src *src, const struct dmfs_put_opts *o,
		  struct dmfs_obj_info *out, struct dmfs_err_detail *d)
{
	struct s3_store *s = (struct s3_store *)st;
	char *fk = s3_full_key(s, key);
	char payload[65];
	struct http_response resp = {0};
	struct http_request hr = {
		.upload = true,
		.upload_buf = src->buf ? src->buf : (src->len ? NULL : ""),
		.upload_fd = src->fd,
		.upload_len = src->len,
	};
	struct s3_req r = {.method = "PUT", .payload_hash = payload};
	struct s3_meta_hdrs mh;
	struct sigv4_kv plain[3];
	int rc;

	if (out)
		memset(out, 0, sizeof(*out));
	rc = s3_meta_hdrs_build(o, &mh);
	if (!fk || rc) {
		s3_meta_hdrs_free(&mh);
		free(fk);
		return rc ? rc : DMFS_ERR_NOMEM;
	}
	rc = payload_sha256(src, payload);
	r.amz = mh.kv;
	r.namz = mh.n;
	plain[r.nplain++] = (struct sigv4_kv){
		"Content-Type", o && o->content_type ? o->content_type
						     : "application/octet-stream"};
	/* No "100 Continue" round trip: one request, one answer. */
	plain[r.nplain++] = (struct sigv4_kv){"Expect", ""};
	if (o && o->if_none_match)
		plain[r.nplain++] = (struct sigv4_kv){"If-None-Match", "*"};
	r.plain = plain;
	if (!rc)
		rc = s3_perform(s, "PUT", fk, fk, &r, &hr, &resp, d);
	if (rc == DMFS_ERR_CHANGED && o && o->if_none_match)
		rc = DMFS_ERR_EXISTS; /* 412: the key exists */
	if (!rc && out) {
		rc = info_from_response(key, &resp, out);
		if (!rc)
			out->size = src->len;
	}
	s3_meta_hdrs_free(&mh);
	http_response_free(&resp);
	free(fk);
	return rc;
}

/* The x-amz-copy-source value: "/bucket/key[?versionId=V]", encoded. */
char *s3_copy_source(struct s3_store *s, const char *fk,
		     const struct dmfs_pin *pin)
{
	size_t n = strlen(s->bucket) + strlen(fk) + 3; /* "/" "/" NUL */
	char *raw = malloc(n), *enc, *out;
	const char *vid = pin && pin->version_id && pin->version_id[0]
				  ? pin->version_id
				  : NULL;

	if (!raw)
		return NULL;
	snprintf(raw, n, "/%s/%s", s->bucket, fk);
	enc = sigv4_uri_encode(raw, true);
	free(raw);
	if (!enc || !vid)
		return enc;
	char *evid = sigv4_uri_encode(vid, false);
	n = strlen(enc) + (evid ? strlen(evid) : 0) + 12;
	out = evid ? malloc(n) : NULL;
	if (out)
		snprintf(out, n, "%s?versionId=%s", enc, evid);
	free(enc);
	free(evid);
	return out;
}

/* One CopyObject request: sources up to S3's 5 GiB. */
static int copy_single(struct s3_store *s, const char *src_key,
		       const struct dmfs_pin *pin, const char *dst_key,
		       const struct dmfs_put_opts *o, struct dmfs_err_detail *d)
{
	char *fsrc = s3_full_key(s, src_key), *fdst = s3_full_key(s, dst_key);
	char *source = fsrc ? s3_copy_source(s, fsrc, pin) : NULL;
	char etag_q[DMFS_ETAG_MAX + 2], etag[DMFS_ETAG_MAX];
	struct http_response resp = {0};
	struct http_request hr = {.upload = true, .upload_buf = "",
				  .cap = LIST_BODY_MAX};
	struct s3_req r = {.method = "PUT"};
	struct s3_meta_hdrs mh;
	struct sigv4_kv amz[S3_AMZ_MAX], plain[1];
	int rc = s3_meta_hdrs_build(o, &mh);

	if (!rc && (!fdst || !source))
		rc = DMFS_ERR_NOMEM;
	if (rc)
		goto out;
	amz[r.namz++] = (struct sigv4_kv){"x-amz-copy-source", source};
	if (pin && pin->if_match && pin->if_match[0]) {
		snprintf(etag_q, sizeof(etag_q), "\"%s\"", pin->if_match);
		amz[r.namz++] = (struct sigv4_kv){"x-amz-copy-source-if-match",
						  etag_q};
	}
	amz[r.namz++] = (struct sigv4_kv){"x-amz-metadata-directive",
					  "REPLACE"};
	for (size_t i = 0; i < mh.n && r.namz < S3_AMZ_MAX; i++)
		amz[r.namz++] = mh.kv[i];
	plain[r.nplain++] = (struct sigv4_kv){
		"Content-Type", o && o->content_type && o->content_type[0]
					? o->content_type
					: "application/octet-stream"};
	r.amz = amz;
	r.plain = plain;
	rc = s3_perform(s, "COPY", fdst, fdst, &r, &hr, &resp, d);
	/* A copy can fail after "200 OK": the verdict is in the body. */
	if (!rc) {
		rc = s3_xml_parse_copy_result(resp.body ? resp.body : "",
					      resp.len, etag, sizeof(etag), d);
		if (rc)
			dmfs_log(DMFS_LOG_ERROR,
				 "S3 COPY %s -> %s failed after 200: %s (%s)",
				 fsrc, fdst, dmfs_strerror(rc),
				 d->s3_code[0] ? d->s3_code : "-");
	}
out:
	s3_meta_hdrs_free(&mh);
	http_response_free(&resp);
	free(source);
	free(fsrc);
	free(fdst);
	return rc;
}

/*
 * A copy is one CopyObject when the source fits in one part, else a
 * multipart copy (store_s3_copy.c).  The source's size decides: the
 * caller's hint when it has one, else a HEAD (pinned as the copy is, so
 * the size is the size of the bytes the copy will read).  The multipart
 * copy pins every part to the source's ETag even when the caller pinned
 * only a version or nothing, so it never joins parts of two objects.
 */
static int s3_copy(struct dmfs_store *st, const char *src_key,
		   const struct dmfs_pin *pin, const char *dst_key,
		   const struct dmfs_put_opts *o, struct dmfs_err_detail *d)
{
	struct s3_store *s = (struct s3_store *)st;
	struct dmfs_obj_info src = {0};
	char *fsrc = NULL, *source = NULL;
	int rc;

	if (pin && pin->size_hint && pin->size_hint <= s->copy_part_size)
		return copy_single(s, src_key, pin, dst_key, o, d);
	rc = s3_head_pinned(s, src_key, pin, &src, d);
	if (rc)
		return rc;
	if (src.size <= s->copy_part_size) {
		dmfs_obj_info_clear(&src);
		return copy_single(s, src_key, pin, dst_key, o, d);
	}
	fsrc = s3_full_key(s, src_key);
	source = fsrc ? s3_copy_source(s, fsrc, pin) : NULL;
	if (!source)
		rc = DMFS_ERR_NOMEM;
	else if (pin && pin->if_match && pin->if_match[0] &&
		 strcmp(pin->if_match, src.etag) != 0)
		rc = DMFS_ERR_CHANGED; /* a server that ignored If-Match */
	else
		rc = s3_copy_multipart(s, src_key, pin, fsrc, source, src.etag,
				       src.size, dst_key, o, d);
	dmfs_obj_info_clear(&src);
	free(source);
	free(fsrc);
	return rc;
}

static int s3_del(struct dmfs_store *st, const char *key,
		  struct dmfs_err_detail *d)
{
	struct s3_store *s = (struct s3_store *)st;
	char *fk = s3_full_key(s, key);
	struct http_response resp = {0};
	struct http_request hr = {.cap = LIST_BODY_MAX};
	struct s3_req r = {.method = "DELETE"};
	int rc;

	if (!fk)
		return DMFS_ERR_NOMEM;
	rc = s3_perform(s, "DELETE", fk, fk, &r, &hr, &resp, d);
	if (rc == DMFS_ERR_NOT_FOUND)
		rc = 0;
	http_response_free(&resp);
	free(fk);
	return rc;
}

static int s3_versioning(struct dmfs_store *st, int *enabled,
			 struct dmfs_err_detail *d)
{
	struct s3_store *s = (struct s3_store *)st;
	struct http_response resp = {0};
	struct http_request hr = {.cap = LIST_BODY_MAX};
	struct s3_req r = {.method = "GET"};
	struct sigv4_kv q[1] = {{"versioning", ""}};
	int rc;

	*enabled = 0;
	r.query = q;
	r.nquery = 1;
	rc = s3_perform(s, "GET-VERSIONING", "", s->bucket, &r, &hr, &resp, d);
	if (!rc)
		rc = s3_xml_parse_versioning(resp.body ? resp.body : "",
					     resp.len, enabled);
	http_response_free(&resp);
	return rc;
}

/* Version-listing tokens are "key-marker\nversion-id-marker". */
static int s3_list_versions(struct dmfs_store *st, const char *prefix,
			    char **token, struct dmfs_list_page *out,
			    struct dmfs_err_detail *d)
{
	struct s3_store *s = (struct s3_store *)st;
	struct sigv4_kv q[6];
	size_t nq = 0;
	char *fprefix = s3_full_key(s, prefix), *kmark = NULL, *vmark = NULL;
	char *nk = NULL, *nv = NULL;
	struct http_response resp = {0};
	struct http_request hr = {.cap = LIST_BODY_MAX};
	struct s3_req r = {.method = "GET"};
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!fprefix)
		return DMFS_ERR_NOMEM;
	if (*token) {
		kmark = strdup(*token);
		/* Keys may hold newlines; version ids cannot. */
		char *nl = kmark ? strrchr(kmark, '\n') : NULL;
		if (!kmark) {
			rc = DMFS_ERR_NOMEM;
			goto out;
		}
		if (nl) {
			*nl = '\0';
			vmark = nl + 1;
		}
	}
	q[nq++] = (struct sigv4_kv){"versions", ""};
	q[nq++] = (struct sigv4_kv){"prefix", fprefix};
	q[nq++] = (struct sigv4_kv){"max-keys", "1000"};
	q[nq++] = (struct sigv4_kv){"encoding-type", "url"};
	if (kmark)
		q[nq++] = (struct sigv4_kv){"key-marker", kmark};
	if (vmark && *vmark)
		q[nq++] = (struct sigv4_kv){"version-id-marker", vmark};
	r.query = q;
	r.nquery = nq;
	rc = s3_perform(s, "LIST-VERSIONS", "", fprefix, &r, &hr, &resp, d);
	if (!rc)
		rc = s3_xml_parse_versions(resp.body ? resp.body : "",
					   resp.len, out, &nk, &nv);
	if (!rc) {
		size_t j = 0;
		for (size_t i = 0; i < out->nobjs; i++) {
			if (strip_prefix(s, &out->objs[i].key)) {
				out->objs[j++] = out->objs[i];
			} else {
				free(out->objs[i].key);
				free(out->objs[i].version_id);
			}
		}
		out->nobjs = j;
	}
	free(*token);
	*token = NULL;
	if (!rc && out->truncated && nk) {
		size_t n = strlen(nk) + (nv ? strlen(nv) : 0) + 2;
		*token = malloc(n);
		if (*token)
			snprintf(*token, n, "%s\n%s", nk, nv ? nv : "");
		else
			rc = DMFS_ERR_NOMEM;
	}
out:
	if (rc)
		dmfs_list_page_free(out);
	free(nk);
	free(nv);
	free(kmark);
	http_response_free(&resp);
	free(fprefix);
	return rc;
}

static char *s3_uri(struct dmfs_store *st, const char *key)
{
	struct s3_store *s = (struct s3_store *)st;
	size_t n = strlen(s->bucket) + strlen(s->prefix) + strlen(key) + 8;
	char *u = malloc(n);
	if (u)
		snprintf(u, n, "s3://%s/%s%s", s->bucket, s->prefix, key);
	return u;
}

static void s3_destroy(struct dmfs_store *st)
{
	struct s3_store *s = (struct s3_store *)st;
	if (!s)
		return;
	http_pool_free(s->http);
	dmfs_creds_wipe(&s->creds);
	free(s->bucket);
	free(s->prefix);
	free(s->scheme);
	free(s->host);
	free(s->region);
	free(s);
}

static const struct dmfs_store_ops s3_ops = {
	.scheme = "s3",
	.list = s3_list,
	.head = s3_head,
	.get_range = s3_get_range,
	.uri = s3_uri,
	.destroy = s3_destroy,
	.get_stream = s3_get_stream,
	.put = s3_put,
	.copy = s3_copy,
	.del = s3_del,
	.versioning = s3_versioning,
	.list_versions = s3_list_versions,
	.mp_create = s3_mp_create,
	.mp_part = s3_mp_part,
	.mp_complete = s3_mp_complete,
	.mp_abort = s3_mp_abort,
};

/* Whether a host (without port) is an IP literal or localhost, where
 * virtual-hosted addressing cannot work. */
static int host_is_ip(const char *hostport)
{
	char h[256];
	struct in6_addr a6;
	struct in_addr a4;
	if (hostport[0] == '[')
		return 1;
	snprintf(h, sizeof(h), "%s", hostport);
	char *colon = strrchr(h, ':');
	if (colon)
		*colon = '\0';
	return inet_pton(AF_INET, h, &a4) == 1 ||
	       inet_pton(AF_INET6, h, &a6) == 1 || !strcmp(h, "localhost");
}

int store_s3_new(const struct s3_config *cfg, struct dmfs_store **out,
		 char *msg, size_t msgsz)
{
	struct s3_store *s = calloc(1, sizeof(*s));
	char hostbuf[512];
	const char *ep = cfg->endpoint;
	int rc;

	if (!s)
		return DMFS_ERR_NOMEM;
	s->base.ops = &s3_ops;
	s->creds = cfg->creds;
	s->region = strdup(cfg->region ? cfg->region : "us-east-1");
	s->bucket = strdup(cfg->bucket);
	size_t pl = strlen(cfg->prefix ? cfg->prefix : "");
	s->prefix = malloc(pl + 2);
	if (s->prefix)
		snprintf(s->prefix, pl + 2, "%s%s", pl ? cfg->prefix : "",
			 pl ? "/" : "");
	if (ep && *ep) {
		const char *sep = strstr(ep, "://");
		if (!sep || (strncmp(ep, "http", 4) != 0)) {
			snprintf(msg, msgsz,
				 "endpoint %s: expected http://HOST[:PORT] or "
				 "https://HOST[:PORT]",
				 ep);
			s3_destroy(&s->base);
			return DMFS_ERR_CONFIG;
		}
		s->scheme = strndup(ep, (size_t)(sep - ep));
		snprintf(hostbuf, sizeof(hostbuf), "%s", sep + 3);
		char *slash = strchr(hostbuf, '/');
		if (slash)
			*slash = '\0'; /* a path on the endpoint is ignored */
	} else {
		s->scheme = strdup("https");
		snprintf(hostbuf, sizeof(hostbuf), "s3.%s.amazonaws.com",
			 s->region ? s->region : "us-east-1");
	}
	s->host = strdup(hostbuf);
	if (!s->region || !s->bucket || !s->prefix || !s->scheme || !s->host) {
		s3_destroy(&s->base);
		return DMFS_ERR_NOMEM;
	}
	if (strcmp(s->scheme, "http") != 0 && strcmp(s->scheme, "https") != 0) {
		snprintf(msg, msgsz, "endpoint: unknown scheme %s", s->scheme);
		s3_destroy(&s->base);
		return DMFS_ERR_CONFIG;
	}
	s->path_style = cfg->path_style >= 0 ? cfg->path_style
					     : host_is_ip(s->host) ||
						       strchr(s->bucket, '.');
	if (!s->path_style) {
		/* Virtual-hosted: the bucket is part of the host name. */
		char *vh = malloc(strlen(s->bucket) + strlen(s->host) + 2);
		if (!vh) {
			s3_destroy(&s->base);
			return DMFS_ERR_NOMEM;
		}
		sprintf(vh, "%s.%s", s->bucket, s->host);
		free(s->host);
		s->host = vh;
	}
	s->copy_part_size = cfg->multipart_copy_size ? cfg->multipart_copy_size
						     : S3_PART_MAX;
	s->copy_parallel = cfg->copy_parallel ? cfg->copy_parallel : 4;
	if (s->copy_part_size < S3_PART_MIN || s->copy_part_size > S3_PART_MAX ||
	    s->copy_parallel < 1 || s->copy_parallel > 64) {
		snprintf(msg, msgsz, "multipart_copy_size must be 5M..5G (the "
			 "S3 limits of a part) and parallel_uploads 1..64");
		s3_destroy(&s->base);
		return DMFS_ERR_CONFIG;
	}
	rc = http_pool_new(&cfg->http, &s->http);
	if (rc) {
		s3_destroy(&s->base);
		return rc;
	}
	*out = &s->base;
	return 0;
}
