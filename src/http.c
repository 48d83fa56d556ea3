/*
 * http.c - the transport under the S3 client.
 *
 * Connections: a pool of curl easy handles, each keeping its connection
 * alive between requests.  A request takes any idle handle (so connections
 * are reused across threads), or makes a new one; at most max_handles idle
 * handles are kept.  DNS results are shared between handles.
 *
 * Retries: the one retry policy of dmfs lives here.  An attempt that got no
 * HTTP answer (connect refused, reset, timeout) or answered 5xx / 429 is
 * retried after an exponential backoff with full jitter:
 *     sleep = random(0, min(retry_max, retry_base * 2^attempt))
 * up to max_retries times.  Everything else is final and handed back to the
 * caller with its status and body; this file never interprets S3 codes.
 *
 * Bodies: 2xx bodies go to the caller's sink (a fixed buffer, or a growable
 * one bounded by cap); other bodies go to a fixed error buffer.  The status
 * line is known before the first body byte, so an error page is never
 * written into file data.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "dmfs/http.h"
#include "dmfs/log.h"
#include "dmfs/stats.h"

struct http_pool {
	struct http_opts opts;
	CURLSH *share;		   /* DNS cache shared by every handle */
	pthread_mutex_t share_lock; /* for curl's share callbacks */
	pthread_mutex_t lock;	   /* protects idle, nidle */
	CURL **idle;		   /* protected by lock */
	int nidle;		   /* protected by lock */
};

/* One attempt's state, reached from curl's callbacks. */
struct transfer {
	const struct http_request *req;
	struct http_response *resp;
	CURL *curl;
	long status;		/* known once the headers are in */
	size_t cap_grow;	/* allocated size of resp->body */
	int overflow;		/* body exceeded its bound */
	int sink_rc;		/* the streaming sink's error */
	uint64_t up_off;	/* request body bytes sent so far */
	int up_err;		/* reading the request body failed */
};

static void share_lock_cb(CURL *h, curl_lock_data data,
			  curl_lock_access access, void *userp)
{
	struct http_pool *p = userp;
	pthread_mutex_lock(&p->share_lock);
}

static void share_unlock_cb(CURL *h, curl_lock_data data, void *userp)
{
	struct http_pool *p = userp;
	pthread_mutex_unlock(&p->share_lock);
}

int http_pool_new(const struct http_opts *opts, struct http_pool **out)
{
	struct http_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return DMFS_ERR_NOMEM;
	p->opts = *opts;
	if (p->opts.max_handles <= 0)
		p->opts.max_handles = 32;
	p->idle = calloc((size_t)p->opts.max_handles, sizeof(*p->idle));
	p->share = curl_share_init();
	if (!p->idle || !p->share) {
		free(p->idle);
		if (p->share)
			curl_share_cleanup(p->share);
		free(p);
		return DMFS_ERR_NOMEM;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->share_lock, NULL);
	curl_share_setopt(p->share, CURLSHOPT_LOCKFUNC, share_lock_cb);
	curl_share_setopt(p->share, CURLSHOPT_UNLOCKFUNC, share_unlock_cb);
	curl_share_setopt(p->share, CURLSHOPT_USERDATA, p);
	curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	*out = p;
	return 0;
}

void http_pool_free(struct http_pool *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nidle; i++)
		curl_easy_cleanup(p->idle[i]);
	free(p->idle);
	curl_share_cleanup(p->share);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->share_lock);
	free(p);
}

static CURL *pool_take(struct http_pool *p)
{
	CURL *c = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->nidle > 0)
		c = p->idle[--p->nidle];
	pthread_mutex_unlock(&p->lock);
	if (c) {
		curl_easy_reset(c);
		return c;
	}
	return curl_easy_init();
}

static void pool_give(struct http_pool *p, CURL *c)
{
	pthread_mutex_lock(&p->lock);
	if (p->nidle < p->opts.max_handles) {
		p->idle[p->nidle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	if (c)
		curl_easy_cleanup(c);
}

static size_t body_cb(char *data, size_t size, size_t n, void *userp)
{
	struct transfer *t = userp;
	struct http_response *r = t->resp;
	size_t len = size * n;

	if (!t->status)
		curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->status);
	if (t->status < 200 || t->status > 299) {
		size_t room = sizeof(r->errbody) - 1 - r->errlen;
		size_t take = len < room ? len : room;
		memcpy(r->errbody + r->errlen, data, take);
		r->errlen += take;
		r->errbody[r->errlen] = '\0';
		return len; /* the rest of an oversized error page is dropped */
	}
	if (t->req->sink) {
		int rc = t->req->sink->data(t->req->sink->ctx, data, len);
		if (rc) {
			t->sink_rc = rc;
			return 0; /* aborts the transfer */
		}
		r->len += len;
		DMFS_STAT_ADD(bytes_fetched, len);
		return len;
	}
	if (r->len + len > t->req->cap) {
		t->overflow = 1;
		return 0; /* aborts the transfer */
	}
	if (t->req->buf) {
		memcpy((char *)t->req->buf + r->len, data, len);
	} else {
		if (r->len + len + 1 > t->cap_grow) {
			size_t want = t->cap_grow ? t->cap_grow * 2 : 65536;
			while (want < r->len + len + 1)
				want *= 2;
			char *nb = realloc(r->body, want);
			if (!nb)
				return 0;
			r->body = nb;
			t->cap_grow = want;
		}
		memcpy(r->body + r->len, data, len);
		r->body[r->len + len] = '\0';
	}
	r->len += len;
	if (t->req->buf) /* object data, not listings */
		DMFS_STAT_ADD(bytes_fetched, len);
	return len;
}

/* Copy a header value, trimmed of space and CR/LF, into out. */
static void header_value(const char *v, size_t n, char *out, size_t outsz)
{
	while (n && isspace((unsigned char)*v)) {
		v++;
		n--;
	}
	while (n && isspace((unsigned char)v[n - 1]))
		n--;
	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, v, n);
	out[n] = '\0';
}

static int header_is(const char *line, size_t n, const char *name,
		     const char **val, size_t *vlen)
{
	size_t nl = strlen(name);
	if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return 0;
	*val = line + nl + 1;
	*vlen = n - nl - 1;
	return 1;
}

/* One more user metadata header ("name: value\r\n" after the
 * x-amz-meta- prefix) into r->meta, name in lower case. */
static void meta_line(struct http_response *r, const char *p, size_t n)
{
	const char *colon = memchr(p, ':', n);
	char val[HTTP_META_MAX];

	if (!colon || colon == p)
		return;
	size_t nl = (size_t)(colon - p);
	header_value(colon + 1, n - nl - 1, val, sizeof(val));
	size_t vl = strlen(val);
	if (r->meta_n >= HTTP_META_ENTRIES ||
	    r->meta_len + nl + vl + 3 > sizeof(r->meta)) {
		r->meta_lost = 1;
		return;
	}
	for (size_t i = 0; i < nl; i++)
		r->meta[r->meta_len++] = (char)tolower((unsigned char)p[i]);
	r->meta[r->meta_len++] = ':';
	memcpy(r->meta + r->meta_len, val, vl);
	r->meta_len += vl;
	r->meta[r->meta_len++] = '\n';
	r->meta[r->meta_len] = '\0';
	r->meta_n++;
}

static size_t header_cb(char *line, size_t size, size_t n, void *userp)
{
	struct transfer *t = userp;
	struct http_response *r = t->resp;
	size_t len = size * n;
	const char *v;
	size_t vl;
	char tmp[128];

	if (header_is(line, len, "ETag", &v, &vl)) {
		header_value(v, vl, tmp, sizeof(tmp));
		size_t tl = strlen(tmp);
		const char *s = tmp;
		if (tl >= 2 && tmp[0] == '"' && tmp[tl - 1] == '"') {
			tmp[tl - 1] = '\0';
			s = tmp + 1;
		}
		size_t sl = strlen(s);
		if (sl >= sizeof(r->etag))
			sl = sizeof(r->etag) - 1;
		memcpy(r->etag, s, sl);
		r->etag[sl] = '\0';
	} else if (header_is(line, len, "x-amz-meta-dmfs-sha256", &v, &vl)) {
		header_value(v, vl, r->meta_sha256, sizeof(r->meta_sha256));
	} else if (len > 11 && !strncasecmp(line, "x-amz-meta-", 11)) {
		meta_line(r, line + 11, len - 11);
	} else if (header_is(line, len, "Content-Type", &v, &vl)) {
		header_value(v, vl, r->content_type, sizeof(r->content_type));
	} else if (header_is(line, len, "x-amz-version-id", &v, &vl)) {
		header_value(v, vl, r->version_id, sizeof(r->version_id));
	} else if (header_is(line, len, "x-amz-request-id", &v, &vl)) {
		header_value(v, vl, r->request_id, sizeof(r->request_id));
	} else if (header_is(line, len, "Content-Range", &v, &vl)) {
		header_value(v, vl, tmp, sizeof(tmp));
		const char *slash = strrchr(tmp, '/');
		if (slash && slash[1] != '*')
			r->range_total = strtoll(slash + 1, NULL, 10);
	} else if (header_is(line, len, "Last-Modified", &v, &vl)) {
		header_value(v, vl, tmp, sizeof(tmp));
		time_t tm = curl_getdate(tmp, NULL);
		r->last_modified = tm == -1 ? -1 : (int64_t)tm;
	}
	return len;
}

static void response_reset(struct http_response *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
	r->last_modified = -1;
	r->content_length = -1;
	r->range_total = -1;
}

void http_response_free(struct http_response *resp)
{
	if (!resp)
		return;
	free(resp->body);
	resp->body = NULL;
}

static int curl_code_to_err(CURLcode cc)
{
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		return DMFS_ERR_TIMEOUT;
	case CURLE_OUT_OF_MEMORY:
		return DMFS_ERR_NOMEM;
	default:
		return DMFS_ERR_NETWORK;
	}
}

/* Whether curl's failure is worth another attempt.  TLS verification
 * failures and bad URLs are not: retrying cannot fix them. */
static int curl_code_transient(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

static void backoff_sleep(const struct http_opts *o, int attempt)
{
	long cap = o->retry_base_ms;
	for (int i = 0; i < attempt && cap < o->retry_max_ms; i++)
		cap *= 2;
	if (cap > o->retry_max_ms)
		cap = o->retry_max_ms;
	static __thread unsigned int seed;
	if (!seed)
		seed = (unsigned int)time(NULL) ^ (unsigned int)pthread_self() ^
		       (unsigned int)getpid();
	long ms = cap > 0 ? (long)(rand_r(&seed) % (cap + 1)) : 0;
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* CURLOPT_READFUNCTION: the request body, from memory or a file. */
static size_t upload_cb(char *out, size_t size, size_t n, void *userp)
{
	struct transfer *t = userp;
	const struct http_request *req = t->req;
	size_t want = size * n;
	uint64_t left = req->upload_len - t->up_off;

	if (want > left)
		want = (size_t)left;
	if (!want)
		return 0;
	if (req->upload_buf) {
		memcpy(out, (const char *)req->upload_buf + t->up_off, want);
	} else {
		ssize_t got;
		do
			got = pread(req->upload_fd, out, want,
				    (off_t)(req->upload_off + t->up_off));
		while (got < 0 && errno == EINTR);
		if (got <= 0) {
			/* A file that shrank or failed must not be sent as a
			 * short object. */
			t->up_err = 1;
			return CURL_READFUNC_ABORT;
		}
		want = (size_t)got;
	}
	t->up_off += want;
	return want;
}

/* CURLOPT_SEEKFUNCTION: curl rewinds the body to resend it. */
static int upload_seek_cb(void *userp, curl_off_t off, int origin)
{
	struct transfer *t = userp;
	if (origin != SEEK_SET || off < 0 ||
	    (uint64_t)off > t->req->upload_len)
		return CURL_SEEKFUNC_FAIL;
	t->up_off = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

static void setup_handle(struct http_pool *p, CURL *c,
			 const struct http_request *req, struct transfer *t,
			 struct curl_slist *headers, char *errbuf)
{
	const struct http_opts *o = &p->opts;

	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_SHARE, p->share);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, o->stall_timeout_s);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, o->insecure ? 0L : 2L);
	if (o->ca_bundle)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_bundle);
	if (req->upload) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_cb);
		curl_easy_setopt(c, CURLOPT_READDATA, t);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, upload_seek_cb);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, t);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)req->upload_len);
		if (strcmp(req->method, "PUT") != 0)
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
	} else if (strcmp(req->method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (strcmp(req->method, "GET") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
}

int http_perform(struct http_pool *p, const struct http_request *req,
		 struct http_response *resp, struct dmfs_err_detail *d)
{
	const struct http_opts *o = &p->opts;
	int rc = DMFS_ERR_NETWORK;

	for (int attempt = 0; attempt <= o->max_retries; attempt++) {
		struct curl_slist *headers = NULL;
		char errbuf[CURL_ERROR_SIZE] = "";
		struct transfer t = {.req = req, .resp = resp};
		CURLcode cc;
		int transient;

		if (attempt > 0) {
			DMFS_STAT_ADD(retries, 1);
			backoff_sleep(o, attempt - 1);
		}
		response_reset(resp);
		resp->attempts = attempt + 1;
		if (req->sink && req->sink->restart)
			req->sink->restart(req->sink->ctx);
		rc = req->sign ? req->sign(req->sign_ctx, &headers) : 0;
		if (rc)
			return rc;
		t.curl = pool_take(p);
		if (!t.curl) {
			curl_slist_free_all(headers);
			return DMFS_ERR_NOMEM;
		}
		setup_handle(p, t.curl, req, &t, headers, errbuf);
		DMFS_STAT_ADD(requests, 1);
		cc = curl_easy_perform(t.curl);
		curl_easy_getinfo(t.curl, CURLINFO_RESPONSE_CODE, &resp->status);
		curl_off_t cl = -1;
		curl_easy_getinfo(t.curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
				  &cl);
		resp->content_length = cl;
		curl_slist_free_all(headers);
		if (cc == CURLE_OK || resp->status >= 400)
			pool_give(p, t.curl);
		else
			curl_easy_cleanup(t.curl); /* connection state unknown */

		if (t.overflow)
			return DMFS_ERR_TOO_BIG;
		if (t.sink_rc)
			return t.sink_rc;
		if (t.up_err)
			return DMFS_ERR_IO;
		if (cc == CURLE_WRITE_ERROR)
			return DMFS_ERR_NOMEM; /* the growable sink failed */
		if (cc != CURLE_OK) {
			rc = curl_code_to_err(cc);
			transient = curl_code_transient(cc);
			if (d) {
				d->http_status = (int)resp->status;
				snprintf(d->message, sizeof(d->message), "%s",
					 errbuf[0] ? errbuf
						   : curl_easy_strerror(cc));
			}
			dmfs_log(DMFS_LOG_DEBUG, "%s attempt %d: %s",
				 req->method, attempt + 1,
				 errbuf[0] ? errbuf : curl_easy_strerror(cc));
			if (!transient)
				return rc;
			continue;
		}
		rc = 0;
		/* 501 Not Implemented says what the server is, not how it
		 * feels: asking again cannot help. */
		if ((resp->status >= 500 && resp->status != 501) ||
		    resp->status == 429) {
			dmfs_log(DMFS_LOG_DEBUG, "%s attempt %d: HTTP %ld",
				 req->method, attempt + 1, resp->status);
			continue; /* transient: retry while attempts remain */
		}
		return 0;
	}
	return rc;
}
