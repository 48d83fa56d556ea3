/*
 * sigv4.c - AWS Signature Version 4 for the Authorization header.
 *
 * A signature is built in three layers, each exported so the tests can
 * check it against AWS's published examples:
 *
 *   canonical request  METHOD \n URI \n QUERY \n HEADERS \n SIGNED \n HASH
 *   string to sign     "AWS4-HMAC-SHA256" \n DATE \n SCOPE \n hex(sha256(CR))
 *   signature          hex(HMAC(signing key, string to sign)), where the
 *                      signing key is the HMAC chain "AWS4"+secret -> date ->
 *                      region -> service -> "aws4_request"
 *
 * Paths.  S3 signs the object key exactly as stored: the path is
 * URI-encoded once with '/' kept, and nothing is normalised, because "a//b",
 * "./x" and "x/.." are distinct, valid S3 keys; collapsing them would sign
 * a different object than the one requested.  Every other AWS service
 * signs the path twice encoded: the HTTP layer encodes the raw path once
 * for the wire and the signer encodes that result again, so a raw "a b"
 * signs as "a%2520b".  double_encode_path selects the second rule.  (AWS's
 * generic test suite only has paths whose request line is not yet encoded,
 * e.g. "/example space/"; its expected value is the request line encoded
 * once, which is what the S3 rule computes from that text.)
 *
 * Query parameters are encoded with '/' encoded too and sorted by encoded
 * name, then encoded value.  Header names are lower-cased; values are
 * trimmed and runs of blanks collapsed; repeated names are merged into
 * one line, their values joined with ',' in the order given, as AWS
 * specifies.  The caller passes exactly the headers to sign.
 *
 * Limits.  Every input string is at most SIGV4_MAX_INPUT bytes, there are
 * at most SIGV4_MAX_ITEMS query parameters and as many headers, and no text
 * built here grows past SIGV4_MAX_TEXT; anything larger is refused (NULL or
 * DMFS_ERR_INVAL) rather than allocated.  S3 keys are at most 1 KiB and S3
 * headers at most 8 KiB, so the limits only stop garbage.  Control bytes
 * (CR, LF, ...) in a header or a scope field are refused: they would let one
 * field forge another line of the canonical request.
 *
 * Secrets.  The secret key and every key derived from it live only in
 * stack buffers that are wiped with OPENSSL_cleanse() before returning.
 * The canonical request may carry x-amz-security-token, so internal text
 * buffers are wiped when they grow and when they are freed.  Nothing here
 * logs.
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "dmfs/err.h"
#include "dmfs/sigv4.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"

#define SIGV4_MAX_INPUT (64 * 1024) /* one name, value, path or key */
#define SIGV4_MAX_ITEMS 256	    /* query parameters; headers */
#define SIGV4_MAX_TEXT (256 * 1024) /* any string built here */
#define SIGV4_MAX_SECRET 256	    /* secret access key */
#define SIGV4_MAX_SCOPE 128	    /* region, service, access key */

#define SHA256_LEN 32

/* ------------------------------------------------------------------ */
/* Bounded string builder                                              */
/* ------------------------------------------------------------------ */

/*
 * A growable string that never passes SIGV4_MAX_TEXT.  The first error is
 * remembered and later appends do nothing, so a builder can run a whole
 * sequence of appends and check once at the end.
 */
struct sbuf {
	char *p;
	size_t len;
	size_t cap;
	int err;
};

/* Free a string that may hold a session token.  Takes ownership of p. */
static void free_wiped(char *p)
{
	if (p) {
		OPENSSL_cleanse(p, strlen(p));
		free(p);
	}
}

static void sb_free(struct sbuf *b)
{
	if (b->p) {
		OPENSSL_cleanse(b->p, b->cap);
		free(b->p);
	}
	b->p = NULL;
	b->len = b->cap = 0;
}

/*
 * Make room for n more bytes plus the NUL; returns where to write them,
 * or NULL (and sets b->err).  Grows by copying rather than realloc() so
 * the old block can be wiped before it goes back to the allocator.
 */
static char *sb_reserve(struct sbuf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->err)
		return NULL;
	if (n > SIGV4_MAX_TEXT - b->len) {
		b->err = DMFS_ERR_TOO_BIG;
		return NULL;
	}
	if (b->len + n + 1 <= b->cap)
		return b->p + b->len;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n + 1)
		cap *= 2;
	if (cap > SIGV4_MAX_TEXT + 1)
		cap = SIGV4_MAX_TEXT + 1;
	p = malloc(cap);
	if (!p) {
		b->err = DMFS_ERR_NOMEM;
		return NULL;
	}
	if (b->p) {
		memcpy(p, b->p, b->len + 1);
		OPENSSL_cleanse(b->p, b->cap);
		free(b->p);
	} else {
		p[0] = '\0';
	}
	b->p = p;
	b->cap = cap;
	return b->p + b->len;
}

static void sb_addn(struct sbuf *b, const char *s, size_t n)
{
	char *dst = sb_reserve(b, n);

	if (!dst)
		return;
	memcpy(dst, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_adds(struct sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }

static void sb_addc(struct sbuf *b, char c) { sb_addn(b, &c, 1); }

/*
 * The built string, or NULL if any append failed (the buffer is then
 * freed).  Caller frees the result with free().
 */
static char *sb_take(struct sbuf *b)
{
	char *p;

	sb_reserve(b, 0); /* an empty result is still an allocated "" */
	if (b->err) {
		sb_free(b);
		return NULL;
	}
	p = b->p;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

/* ------------------------------------------------------------------ */
/* Input checks                                                        */
/* ------------------------------------------------------------------ */

/* A bounded string; its length goes to *len.  NULL is never bounded. */
static bool bounded(const char *s, size_t max, size_t *len)
{
	size_t n;

	if (!s)
		return false;
	n = strnlen(s, max + 1);
	if (n > max)
		return false;
	if (len)
		*len = n;
	return true;
}

/*
 * A non-empty single-line field that goes into the canonical request or
 * the scope as it is: no control bytes, no space; inside the credential
 * scope also no '/' or ',', which delimit the Authorization value.
 */
static bool field_ok(const char *s, size_t max, bool in_scope)
{
	size_t n, i;

	if (!bounded(s, max, &n) || n == 0)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == 0x7f ||
		    (in_scope && (c == '/' || c == ',')))
			return false;
	}
	return true;
}

/* "YYYYMMDDTHHMMSSZ": the scope takes its first 8 characters. */
static bool amz_date_ok(const char *d)
{
	int i;

	if (!bounded(d, 16, NULL) || strlen(d) != 16)
		return false;
	for (i = 0; i < 16; i++) {
		char c = d[i];
		bool ok;

		if (i == 8)
			ok = c == 'T';
		else if (i == 15)
			ok = c == 'Z';
		else
			ok = c >= '0' && c <= '9';
		if (!ok)
			return false;
	}
	return true;
}

static bool scope_ok(const struct sigv4_request *req)
{
	return amz_date_ok(req->amz_date) &&
	       field_ok(req->region, SIGV4_MAX_SCOPE, true) &&
	       field_ok(req->service, SIGV4_MAX_SCOPE, true);
}

/* RFC 7230 token characters, the only ones allowed in a header name. */
static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* ------------------------------------------------------------------ */
/* Encoding and hashing                                                */
/* ------------------------------------------------------------------ */

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
	       c == '~';
}

/* Append the SigV4 URI encoding of in[0..n) to b. */
static void uri_encode_into(struct sbuf *b, const char *in, size_t n,
			    bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char *dst;
	size_t i, o = 0;

	if (n > SIGV4_MAX_TEXT / 3) {
		b->err = b->err ? b->err : DMFS_ERR_TOO_BIG;
		return;
	}
	dst = sb_reserve(b, 3 * n);
	if (!dst)
		return;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (is_unreserved(c) || (c == '/' && keep_slash)) {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '%';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	b->len += o;
	b->p[b->len] = '\0';
}

static void hex_lower(const unsigned char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Hex SHA-256; OpenSSL 3 fails only when it cannot allocate. */
static int __attribute__((warn_unused_result))
sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[SHA256_LEN];
	unsigned int mdlen = 0;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) ||
	    mdlen != SHA256_LEN) {
		out[0] = '\0';
		return DMFS_ERR_NOMEM;
	}
	hex_lower(md, SHA256_LEN, out);
	return 0;
}

static int __attribute__((warn_unused_result))
hmac_sha256(const void *key, size_t klen, const void *data, size_t dlen,
	    unsigned char out[SHA256_LEN])
{
	unsigned int outlen = 0;

	if (klen > INT_MAX)
		return DMFS_ERR_INVAL;
	if (!HMAC(EVP_sha256(), key, (int)klen, data, dlen, out, &outlen) ||
	    outlen != SHA256_LEN)
		return DMFS_ERR_NOMEM;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Canonical request                                                   */
/* ------------------------------------------------------------------ */

struct qparam {
	char *name;  /* encoded */
	char *value; /* encoded */
};

struct hdr {
	char *name;   /* lower-cased */
	char *value;  /* trimmed, blanks collapsed */
	size_t order; /* position in the request, to keep repeats in order */
};

static int qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

static int hdr_cmp(const void *a, const void *b)
{
	const struct hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Encode one string into a fresh allocation.  Caller frees with free(). */
static char *encode_dup(const char *in, bool keep_slash)
{
	struct sbuf b = {0};
	size_t n;

	if (!bounded(in, SIGV4_MAX_INPUT, &n))
		return NULL;
	uri_encode_into(&b, in, n, keep_slash);
	return sb_take(&b);
}

char *sigv4_uri_encode(const char *in, bool keep_slash)
{
	return encode_dup(in, keep_slash);
}

/* The canonical URI; an empty path signs as "/". */
static int add_canonical_uri(struct sbuf *b, const struct sigv4_request *req)
{
	const char *path = req->path && *req->path ? req->path : "/";
	char *once;
	size_t n;

	if (!bounded(path, SIGV4_MAX_INPUT, &n) || path[0] != '/')
		return DMFS_ERR_INVAL;
	if (!req->double_encode_path) {
		uri_encode_into(b, path, n, true);
		return 0;
	}
	once = encode_dup(path, true);
	if (!once)
		return DMFS_ERR_NOMEM;
	uri_encode_into(b, once, strlen(once), true);
	free(once);
	return 0;
}

static int add_canonical_query(struct sbuf *b, const struct sigv4_request *req)
{
	struct qparam *q;
	size_t i, n = req->nquery;
	int rc = 0;

	if (n == 0)
		return 0;
	if (!req->query || n > SIGV4_MAX_ITEMS)
		return DMFS_ERR_INVAL;
	q = calloc(n, sizeof(*q));
	if (!q)
		return DMFS_ERR_NOMEM;
	for (i = 0; i < n && !rc; i++) {
		const char *v = req->query[i].value ? req->query[i].value : "";
		if (!req->query[i].name) {
			rc = DMFS_ERR_INVAL;
			break;
		}
		q[i].name = encode_dup(req->query[i].name, false);
		q[i].value = encode_dup(v, false);
		if (!q[i].name || !q[i].value)
			rc = DMFS_ERR_NOMEM; /* or past SIGV4_MAX_INPUT */
	}
	if (!rc) {
		if (n > 1) /* q may be NULL when n == 0 */
			qsort(q, n, sizeof(*q), qparam_cmp);
		for (i = 0; i < n; i++) {
			if (i)
				sb_addc(b, '&');
			sb_adds(b, q[i].name);
			sb_addc(b, '=');
			sb_adds(b, q[i].value);
		}
	}
	for (i = 0; i < n; i++) {
		free(q[i].name);
		free(q[i].value);
	}
	free(q);
	return rc;
}

/*
 * Lower-case a header name; NULL if it is not a valid HTTP token.
 * Caller frees with free().
 */
static char *hdr_name_dup(const char *in)
{
	size_t n, i;
	char *out;

	if (!bounded(in, SIGV4_MAX_INPUT, &n) || n == 0)
		return NULL;
	for (i = 0; i < n; i++)
		if (!is_tchar((unsigned char)in[i]))
			return NULL;
	out = malloc(n + 1);
	if (!out)
		return NULL;
	for (i = 0; i < n; i++) {
		char c = in[i];
		out[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	out[n] = '\0';
	return out;
}

/*
 * Trim a header value and collapse each run of blanks to one space.  NULL
 * if it holds a control byte (a CR or LF would forge a header line).
 * Caller frees with free().
 */
static char *hdr_value_dup(const char *in)
{
	size_t n, i, o = 0;
	bool blank = false;
	char *out;

	if (!in)
		in = "";
	if (!bounded(in, SIGV4_MAX_INPUT, &n))
		return NULL;
	out = malloc(n + 1);
	if (!out)
		return NULL;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == ' ' || c == '\t') {
			blank = true;
			continue;
		}
		if (c < ' ' || c == 0x7f) {
			OPENSSL_cleanse(out, n + 1);
			free(out);
			return NULL;
		}
		if (blank && o)
			out[o++] = ' ';
		blank = false;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

/* Append the canonical header lines to b and the SignedHeaders to sh. */
static int add_canonical_headers(struct sbuf *b, struct sbuf *sh,
				 const struct sigv4_request *req)
{
	struct hdr *h;
	size_t i, n = req->nheaders;
	int rc = 0;

	/* host and x-amz-date are always signed, so never zero headers */
	if (n == 0 || !req->headers || n > SIGV4_MAX_ITEMS)
		return DMFS_ERR_INVAL;
	h = calloc(n, sizeof(*h));
	if (!h)
		return DMFS_ERR_NOMEM;
	for (i = 0; i < n && !rc; i++) {
		h[i].order = i;
		h[i].name = hdr_name_dup(req->headers[i].name);
		h[i].value = hdr_value_dup(req->headers[i].value);
		/* both fail on bad input as well as on allocation */
		if (!h[i].name || !h[i].value)
			rc = DMFS_ERR_INVAL;
	}
	if (!rc) {
		if (n > 1)
			qsort(h, n, sizeof(*h), hdr_cmp);
		for (i = 0; i < n; i++) {
			bool repeat =
			    i && strcmp(h[i].name, h[i - 1].name) == 0;
			if (repeat) {
				/* same name: one line, values joined by ',' */
				sb_addc(b, ',');
			} else {
				if (i) {
					sb_addc(b, '\n');
					sb_addc(sh, ';');
				}
				sb_adds(b, h[i].name);
				sb_addc(b, ':');
				sb_adds(sh, h[i].name);
			}
			sb_adds(b, h[i].value);
		}
		sb_addc(b, '\n');
	}
	for (i = 0; i < n; i++) {
		free(h[i].name);
		free_wiped(h[i].value);
	}
	free(h);
	return rc;
}

struct canon {
	char *text;	      /* the canonical request */
	char *signed_headers; /* "host;x-amz-date" */
};

static void canon_free(struct canon *c)
{
	free_wiped(c->text);
	free(c->signed_headers);
	c->text = c->signed_headers = NULL;
}

static int __attribute__((warn_unused_result))
canon_build(const struct sigv4_request *req, struct canon *c)
{
	struct sbuf b = {0}, sh = {0};
	int rc = 0;

	c->text = c->signed_headers = NULL;
	if (!req || !field_ok(req->method, SIGV4_MAX_SCOPE, false) ||
	    !field_ok(req->payload_hash, SIGV4_MAX_SCOPE, false))
		return DMFS_ERR_INVAL;

	sb_adds(&b, req->method);
	sb_addc(&b, '\n');
	rc = add_canonical_uri(&b, req);
	sb_addc(&b, '\n');
	if (!rc)
		rc = add_canonical_query(&b, req);
	sb_addc(&b, '\n');
	if (!rc)
		rc = add_canonical_headers(&b, &sh, req);
	if (!rc)
		rc = b.err ? b.err : sh.err;
	if (!rc) {
		sb_addc(&b, '\n');
		sb_adds(&b, sh.p);
		sb_addc(&b, '\n');
		sb_adds(&b, req->payload_hash);
		rc = b.err;
	}
	if (!rc) {
		c->text = sb_take(&b);
		c->signed_headers = sb_take(&sh);
		if (!c->text || !c->signed_headers) {
			canon_free(c);
			rc = DMFS_ERR_NOMEM;
		}
	}
	sb_free(&b);
	sb_free(&sh);
	return rc;
}

char *sigv4_canonical_request(const struct sigv4_request *req)
{
	struct canon c;

	if (canon_build(req, &c))
		return NULL;
	free(c.signed_headers);
	return c.text;
}

/* ------------------------------------------------------------------ */
/* String to sign, signature, header                                   */
/* ------------------------------------------------------------------ */

/* Append "DATE/REGION/SERVICE/aws4_request". */
static void add_scope(struct sbuf *b, const struct sigv4_request *req)
{
	sb_addn(b, req->amz_date, 8);
	sb_addc(b, '/');
	sb_adds(b, req->region);
	sb_addc(b, '/');
	sb_adds(b, req->service);
	sb_addc(b, '/');
	sb_adds(b, SIGV4_TERMINATOR);
}

char *sigv4_string_to_sign(const struct sigv4_request *req,
			   const char *canonical_request)
{
	struct sbuf b = {0};
	char hash[65];
	size_t n;

	if (!req || !scope_ok(req) ||
	    !bounded(canonical_request, SIGV4_MAX_TEXT, &n))
		return NULL;
	if (sha256_hex(canonical_request, n, hash))
		return NULL;
	sb_adds(&b, SIGV4_ALGORITHM "\n");
	sb_adds(&b, req->amz_date);
	sb_addc(&b, '\n');
	add_scope(&b, req);
	sb_addc(&b, '\n');
	sb_adds(&b, hash);
	return sb_take(&b);
}

/*
 * The signing key: HMAC chain from "AWS4"+secret through date, region,
 * service and "aws4_request".  key[] is secret: the caller wipes it.
 */
static int __attribute__((warn_unused_result))
derive_key(const char *secret, const struct sigv4_request *req,
	   unsigned char key[SHA256_LEN])
{
	unsigned char ksecret[4 + SIGV4_MAX_SECRET];
	unsigned char k1[SHA256_LEN], k2[SHA256_LEN];
	size_t n;
	int rc = 0;

	if (!bounded(secret, SIGV4_MAX_SECRET, &n) || n == 0)
		return DMFS_ERR_INVAL;
	memcpy(ksecret, "AWS4", 4);
	memcpy(ksecret + 4, secret, n);

	/* two buffers in turn: never HMAC a key into itself */
	rc = hmac_sha256(ksecret, 4 + n, req->amz_date, 8, k1);
	if (!rc)
		rc = hmac_sha256(k1, sizeof(k1), req->region,
				 strlen(req->region), k2);
	if (!rc)
		rc = hmac_sha256(k2, sizeof(k2), req->service,
				 strlen(req->service), k1);
	if (!rc)
		rc = hmac_sha256(k1, sizeof(k1), SIGV4_TERMINATOR,
				 strlen(SIGV4_TERMINATOR), key);

	OPENSSL_cleanse(ksecret, sizeof(ksecret));
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	return rc;
}

int sigv4_signature(const struct sigv4_request *req,
		    const struct sigv4_creds *creds, const char *string_to_sign,
		    char sig_hex[65])
{
	unsigned char key[SHA256_LEN], sig[SHA256_LEN];
	size_t n;
	int rc;

	sig_hex[0] = '\0';
	if (!req || !creds || !scope_ok(req) ||
	    !bounded(string_to_sign, SIGV4_MAX_TEXT, &n))
		return DMFS_ERR_INVAL;
	rc = derive_key(creds->secret_key, req, key);
	if (!rc)
		rc = hmac_sha256(key, sizeof(key), string_to_sign, n, sig);
	if (!rc)
		hex_lower(sig, sizeof(sig), sig_hex);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(sig, sizeof(sig));
	return rc;
}

char *sigv4_authorization(const struct sigv4_request *req,
			  const struct sigv4_creds *creds)
{
	struct canon c = {0};
	struct sbuf b = {0};
	char *sts = NULL, *out = NULL;
	char sig[65] = "";

	if (!creds || !field_ok(creds->access_key, SIGV4_MAX_SCOPE, true))
		return NULL;
	if (canon_build(req, &c))
		goto out;
	sts = sigv4_string_to_sign(req, c.text);
	if (!sts)
		goto out;
	if (sigv4_signature(req, creds, sts, sig))
		goto out;

	sb_adds(&b, SIGV4_ALGORITHM " Credential=");
	sb_adds(&b, creds->access_key);
	sb_addc(&b, '/');
	add_scope(&b, req);
	sb_adds(&b, ", SignedHeaders=");
	sb_adds(&b, c.signed_headers);
	sb_adds(&b, ", Signature=");
	sb_adds(&b, sig);
	out = sb_take(&b);
out:
	OPENSSL_cleanse(sig, sizeof(sig));
	free_wiped(sts);
	canon_free(&c);
	return out;
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	/*
	 * Only an allocation failure inside OpenSSL gets here.  The prototype
	 * promises success, so write a value that is the hash of no body:
	 * the server rejects the request (XAmzContentSHA256Mismatch) instead
	 * of storing data under a wrong checksum.
	 */
	if (sha256_hex(data, len, out)) {
		memset(out, '0', 64);
		out[64] = '\0';
	}
}
