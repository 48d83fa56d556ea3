/*
 * refs.c - refs: the names of snapshots and dataset versions (see refs.h).
 *
 * Creating a ref.  Two machines may commit the same version name at the
 * same moment, and at most one may be told it succeeded.  The steps:
 *
 *   1. HEAD the key: if it exists, DMFS_ERR_EXISTS without writing.
 *   2. PUT with If-None-Match: * and a random writer nonce in the body.
 *      A server that honours the condition (RGW, AWS since 2024) answers
 *      412 to the loser, which the store reports as DMFS_ERR_EXISTS.
 *   3. Wait REFS_SETTLE_MS, so that a racing PUT the server accepted
 *      after ours has landed, then GET the key back and compare the
 *      nonce.  On a server that ignores the condition both PUTs succeed
 *      and the later one wins; the earlier writer reads the other's nonce
 *      and reports DMFS_ERR_EXISTS.
 *
 * The read-back cannot close every window (a writer stalled for longer
 * than the settle time between its PUT and the other's read-back would
 * still overwrite a ref the other already reported), but with a server
 * that honours If-None-Match the PUT alone is exact.
 *
 * Listing.  One flat listing of REFS_PREFIX, then one GET per ref on
 * REFS_LIST_THREADS threads: a bucket with a nightly snapshot has
 * hundreds of refs, and one at a time would cost a round trip each.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/rand.h>

#include "dmfs/log.h"
#include "dmfs/sha256.h"
#include "dmfs/refs.h"

#define REF_PART_MAX 200
#define REF_BYTES_MAX (MANIFEST_LINE_MAX + 64 * 1024) /* one ref object */
#define REFS_LIST_MAX 1000000u /* refs one listing may hold */
#define REFS_LIST_THREADS 8
#define REFS_SETTLE_MS 200
#define NONCE_BYTES 16

void ref_info_clear(struct ref_info *r)
{
	if (!r)
		return;
	manifest_header_clear(&r->h);
	memset(r, 0, sizeof(*r));
}

void refs_free(struct ref_info *refs, size_t n)
{
	if (!refs)
		return;
	for (size_t i = 0; i < n; i++)
		ref_info_clear(&refs[i]);
	free(refs);
}

/* Check one part of a name ([s, s+n)).  0 or DMFS_ERR_INVAL. */
static int check_part(const char *what, const char *s, size_t n, char *msg,
		      size_t msgsz)
{
	if (n == 0 || n > REF_PART_MAX) {
		dmfs_say(msg, msgsz, "%s must be 1 to %d characters", what,
		    REF_PART_MAX);
		return DMFS_ERR_INVAL;
	}
	if ((n == 1 && s[0] == '.') || (n == 2 && !memcmp(s, "..", 2)) ||
	    (n == 6 && !memcmp(s, "latest", 6))) {
		dmfs_say(msg, msgsz, "%s cannot be '%.*s'", what, (int)n, s);
		return DMFS_ERR_INVAL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || strchr("._@+=-", c))
			continue;
		if (c >= 0x20 && c < 0x7f)
			dmfs_say(msg, msgsz,
			    "%s: '%c' is not allowed (only letters, digits and "
			    ". _ @ + = -)",
			    what, c);
		else
			dmfs_say(msg, msgsz,
			    "%s: byte 0x%02x is not allowed (only letters, "
			    "digits and . _ @ + = -)",
			    what, c);
		return DMFS_ERR_INVAL;
	}
	return 0;
}

int refs_check_name(const char *name, char *msg, size_t msgsz)
{
	static const char *const ds_parts[] = {"dataset name", "version"};
	const char *s;
	int nparts, rc = 0;

	if (!name)
		return DMFS_ERR_INVAL;
	if (!strncmp(name, "snapshots/", 10)) {
		s = name + 10;
		nparts = 1;
	} else if (!strncmp(name, "datasets/", 9)) {
		s = name + 9;
		nparts = 2;
	} else {
		dmfs_say(msg, msgsz,
		    "'%.*s': a ref is snapshots/ID or datasets/NAME/VERSION",
		    200, name);
		return DMFS_ERR_INVAL;
	}
	for (int i = 0; !rc && i < nparts; i++) {
		const char *e = strchrnul(s, '/');
		bool last = i == nparts - 1;
		if (last != !*e) {
			dmfs_say(msg, msgsz,
			    "'%.*s': a ref is snapshots/ID or "
			    "datasets/NAME/VERSION",
			    200, name);
			return DMFS_ERR_INVAL;
		}
		rc = check_part(nparts == 1 ? "snapshot id" : ds_parts[i], s,
				(size_t)(e - s), msg, msgsz);
		s = *e ? e + 1 : e;
	}
	return rc;
}

/* REFS_PREFIX + name into key.  DMFS_ERR_INVAL when it does not fit. */
static int ref_key(const char *name, char *key, size_t keysz)
{
	int n = snprintf(key, keysz, "%s%s", REFS_PREFIX, name);

	return n < 0 || (size_t)n >= keysz ? DMFS_ERR_INVAL : 0;
}

/*
 * Parse a ref object.  Fills out->manifest and out->h (caller frees with
 * ref_info_clear) and copies the writer nonce into writer (may be NULL).
 */
static int ref_parse(const char *text, size_t len, struct ref_info *out,
		     char *writer, size_t writersz, char *msg, size_t msgsz)
{
	cJSON *o = cJSON_ParseWithLength(text, len);
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "manifest");
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "writer");
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "header");
	char *htext = NULL;
	int rc = 0;

	if (!cJSON_IsObject(o)) {
		dmfs_say(msg, msgsz, "not a JSON object");
		rc = DMFS_ERR_INVAL;
	} else if (!cJSON_IsString(m) || !dmfs_is_sha256_hex(m->valuestring)) {
		dmfs_say(msg, msgsz, "no manifest hash");
		rc = DMFS_ERR_INVAL;
	} else if (!cJSON_IsObject(h)) {
		dmfs_say(msg, msgsz, "no header");
		rc = DMFS_ERR_INVAL;
	}
	if (!rc) {
		memcpy(out->manifest, m->valuestring, 65);
		htext = cJSON_PrintUnformatted(h);
		rc = htext ? manifest_header_from_json(htext, strlen(htext),
						       &out->h, msg, msgsz)
			   : DMFS_ERR_NOMEM;
	}
	if (!rc && writer)
		snprintf(writer, writersz, "%s",
			 cJSON_IsString(w) ? w->valuestring : "");
	free(htext);
	cJSON_Delete(o);
	return rc;
}

int refs_read(struct dmfs_store *st, const char *name, struct ref_info *out,
	      struct dmfs_err_detail *d)
{
	char key[REF_NAME_MAX + 32], why[256];
	char *body = NULL;
	size_t len = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (refs_check_name(name, why, sizeof(why)) ||
	    ref_key(name, key, sizeof(key)))
		return DMFS_ERR_INVAL;
	rc = dmfs_store_get_all(st, key, REF_BYTES_MAX, &body, &len, d);
	if (rc) {
		if (rc != DMFS_ERR_NOT_FOUND)
			dmfs_log(DMFS_LOG_DEBUG, "refs: GET %s: %s", key,
				 dmfs_strerror(rc));
		return rc;
	}
	snprintf(out->name, sizeof(out->name), "%s", name);
	rc = ref_parse(body, len, out, NULL, 0, why, sizeof(why));
	if (rc) {
		dmfs_log(DMFS_LOG_WARN, "refs: %s: %s", key, why);
		ref_info_clear(out);
	}
	free(body);
	return rc;
}

/* The ref object for a new ref.  Caller frees with free(); NULL on
 * ENOMEM (or an unprintable header). */
static char *ref_text(const char *manifest_hex, const char *writer,
		      const struct manifest_header *h)
{
	char *htext = manifest_header_to_json(h), *text = NULL;
	cJSON *o = cJSON_CreateObject();
	cJSON *hobj = htext ? cJSON_Parse(htext) : NULL;

	if (o && hobj && cJSON_AddStringToObject(o, "manifest", manifest_hex) &&
	    cJSON_AddStringToObject(o, "writer", writer) &&
	    cJSON_AddItemToObject(o, "header", hobj)) {
		hobj = NULL;
		text = cJSON_PrintUnformatted(o);
	}
	cJSON_Delete(hobj);
	cJSON_Delete(o);
	free(htext);
	return text;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int refs_create(struct dmfs_store *st, const char *name,
		const char *manifest_hex, const struct manifest_header *h,
		struct dmfs_err_detail *d)
{
	char key[REF_NAME_MAX + 32], why[256] = "";
	char nonce[2 * NONCE_BYTES + 1], theirs[2 * NONCE_BYTES + 1];
	unsigned char raw[NONCE_BYTES];
	struct dmfs_obj_info info = {0};
	struct dmfs_put_opts po = {.if_none_match = true,
				   .content_type = "application/json"};
	struct dmfs_put_src src = {.fd = -1};
	struct ref_info back = {0};
	char *text = NULL, *body = NULL;
	size_t len = 0;
	int rc;

	if (refs_check_name(name, why, sizeof(why)) ||
	    ref_key(name, key, sizeof(key))) {
		dmfs_log(DMFS_LOG_ERROR, "refs: %s", why);
		return DMFS_ERR_INVAL;
	}
	if (!dmfs_is_sha256_hex(manifest_hex))
		return DMFS_ERR_INVAL;
	rc = st->ops->head(st, key, &info, d);
	dmfs_obj_info_clear(&info);
	if (!rc)
		return DMFS_ERR_EXISTS;
	if (rc != DMFS_ERR_NOT_FOUND)
		return rc;
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		dmfs_log(DMFS_LOG_ERROR, "refs: no random bytes for a nonce");
		return DMFS_ERR_IO;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(nonce + 2 * i, 3, "%02x", raw[i]);
	text = ref_text(manifest_hex, nonce, h);
	if (!text)
		return DMFS_ERR_NOMEM;
	src.buf = text;
	src.len = strlen(text);
	rc = st->ops->put(st, key, &src, &po, NULL, d);
	if (rc)
		goto out;
	sleep_ms(REFS_SETTLE_MS);
	rc = dmfs_store_get_all(st, key, REF_BYTES_MAX, &body, &len, d);
	if (rc == DMFS_ERR_NOT_FOUND) {
		dmfs_log(DMFS_LOG_WARN,
			 "refs: %s vanished right after it was written", key);
		rc = DMFS_ERR_EXISTS;
	}
	if (rc)
		goto out;
	if (ref_parse(body, len, &back, theirs, sizeof(theirs), why,
		      sizeof(why)) != 0 ||
	    strcmp(theirs, nonce) != 0) {
		dmfs_log(DMFS_LOG_WARN,
			 "refs: %s: another writer created it at the same "
			 "time, and won",
			 key);
		rc = DMFS_ERR_EXISTS;
		goto out;
	}
	dmfs_log(DMFS_LOG_INFO, "refs: created %s -> %s", name, manifest_hex);
out:
	ref_info_clear(&back);
	free(body);
	free(text);
	return rc;
}

int refs_delete(struct dmfs_store *st, const char *name,
		struct dmfs_err_detail *d)
{
	char key[REF_NAME_MAX + 32], why[256];
	struct dmfs_obj_info info = {0};
	int rc;

	if (refs_check_name(name, why, sizeof(why)) ||
	    ref_key(name, key, sizeof(key)))
		return DMFS_ERR_INVAL;
	rc = st->ops->head(st, key, &info, d);
	dmfs_obj_info_clear(&info);
	if (!rc)
		rc = st->ops->del(st, key, d);
	if (!rc)
		dmfs_log(DMFS_LOG_INFO, "refs: deleted %s", name);
	return rc;
}

/* --- listing --- */

/*
 * The parallel GETs.  Workers take the next index from `next`; each slot
 * is written by the one worker that took its index.
 */
struct list_job {
	struct dmfs_store *st;
	struct ref_info *refs; /* names filled in; one slot per ref */
	int *rcs;	       /* per slot */
	size_t n;
	atomic_size_t next;
	atomic_bool stop; /* set at the first hard error */
	pthread_mutex_t lock;
	int err;		  /* protected by lock: first hard error */
	struct dmfs_err_detail d; /* protected by lock: its detail */
};

/* An error that fails the whole listing (a ref that is gone or broken
 * is only skipped). */
static bool hard_error(int rc)
{
	return rc && rc != DMFS_ERR_NOT_FOUND && rc != DMFS_ERR_INVAL &&
	       rc != DMFS_ERR_TOO_BIG;
}

static void *list_worker(void *arg)
{
	struct list_job *j = arg;

	for (;;) {
		size_t i = atomic_fetch_add(&j->next, 1);
		struct dmfs_err_detail d = {0};
		char name[REF_NAME_MAX];
		if (i >= j->n || atomic_load(&j->stop))
			break;
		memcpy(name, j->refs[i].name, sizeof(name));
		j->rcs[i] = refs_read(j->st, name, &j->refs[i], &d);
		if (hard_error(j->rcs[i])) {
			pthread_mutex_lock(&j->lock);
			if (!j->err) {
				j->err = j->rcs[i];
				j->d = d;
			}
			pthread_mutex_unlock(&j->lock);
			atomic_store(&j->stop, true);
		}
	}
	return NULL;
}

struct names_ctx {
	struct ref_info **refs;
	size_t *n, cap;
};

static int add_name(void *ctx, const struct dmfs_obj_info *o)
{
	struct names_ctx *c = ctx;
	size_t plen = strlen(REFS_PREFIX);
	char why[256];

	if (strncmp(o->key, REFS_PREFIX, plen) != 0 ||
	    refs_check_name(o->key + plen, why, sizeof(why))) {
		dmfs_log(DMFS_LOG_DEBUG, "refs: skipping %s", o->key);
		return 0;
	}
	if (*c->n == c->cap) {
		size_t nc = c->cap ? 2 * c->cap : 64;
		void *p = nc > REFS_LIST_MAX
			      ? NULL
			      : realloc(*c->refs, nc * sizeof(**c->refs));
		if (!p)
			return nc > REFS_LIST_MAX ? DMFS_ERR_TOO_BIG
						  : DMFS_ERR_NOMEM;
		*c->refs = p;
		c->cap = nc;
	}
	memset(&(*c->refs)[*c->n], 0, sizeof(**c->refs));
	snprintf((*c->refs)[*c->n].name, REF_NAME_MAX, "%s", o->key + plen);
	(*c->n)++;
	return 0;
}

/* Append the ref names under REFS_PREFIX (from a flat listing) to *refs.
 * Keys that are not well-formed ref names are skipped. */
static int list_names(struct dmfs_store *st, struct ref_info **refs, size_t *n,
		      struct dmfs_err_detail *d)
{
	struct names_ctx c = {.refs = refs, .n = n};

	return dmfs_store_list_each(st, REFS_PREFIX, NULL, add_name, &c, d);
}

/* Newest first, then by name. */
static int cmp_ref(const void *a, const void *b)
{
	const struct ref_info *x = a, *y = b;

	int64_t ox = manifest_header_order(&x->h);
	int64_t oy = manifest_header_order(&y->h);

	if (ox != oy)
		return ox > oy ? -1 : 1;
	return strcmp(y->name, x->name); /* as catalog_latest breaks ties */
}

int refs_list(struct dmfs_store *st, struct ref_info **out, size_t *n,
	      struct dmfs_err_detail *d)
{
	struct list_job j = {.st = st};
	pthread_t th[REFS_LIST_THREADS];
	size_t nth = 0, k = 0;
	int rc;

	*out = NULL;
	*n = 0;
	pthread_mutex_init(&j.lock, NULL);
	rc = list_names(st, &j.refs, &j.n, d);
	if (rc || !j.n)
		goto out;
	j.rcs = calloc(j.n, sizeof(*j.rcs));
	if (!j.rcs) {
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	while (nth < REFS_LIST_THREADS && nth < j.n &&
	       pthread_create(&th[nth], NULL, list_worker, &j) == 0)
		nth++;
	if (!nth)
		list_worker(&j); /* no threads to be had: do it here */
	for (size_t i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	rc = j.err;
	if (rc) {
		if (d)
			*d = j.d;
		goto out;
	}
	/* Keep the refs that were read; the others were logged. */
	for (size_t i = 0; i < j.n; i++)
		if (!j.rcs[i])
			j.refs[k++] = j.refs[i];
	qsort(j.refs, k, sizeof(*j.refs), cmp_ref);
	*out = j.refs;
	*n = k;
	j.refs = NULL;
out:
	if (j.refs)
		refs_free(j.refs, j.n);
	free(j.rcs);
	pthread_mutex_destroy(&j.lock);
	return rc;
}
