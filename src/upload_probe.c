/*
 * upload_probe.c - whether the store honours If-None-Match: * on PUT
 * (see upload.h).
 *
 * A new file is uploaded with If-None-Match: *.  Where the server honours
 * it (RGW, AWS since 2024, the file:// store) that condition alone makes
 * the upload fail, instead of replacing an object another writer created
 * meanwhile; where it ignores the header (s3rver, older servers) a HEAD
 * just before the PUT has to look.  Knowing which saves that HEAD, one
 * round trip of the three a small new file costs.
 *
 * The only way to know is to try: PUT a scratch object twice with the
 * condition; the second must fail with 412.  That costs three requests
 * once per mount, at the first upload of a new file, and leaves nothing
 * behind (the scratch object is deleted; on a versioned bucket its
 * versions stay, under .dmfs/probe/, as every dmfs control object's do).
 * A server that answers 501 to the header (some S3 clones) gets uploads
 * without it, checked by the HEAD alone.  A probe that fails otherwise
 * (the network, the server) counts as "not honoured" for that upload (the
 * HEAD is made, which is always safe) and is tried again at the next.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "dmfs/log.h"
#include "upload.h"

#define PROBE_PREFIX ".dmfs/probe/"

/* PUT the scratch body to key with If-None-Match: *. */
static int put_once(struct dmfs_store *st, const char *key,
		    struct dmfs_err_detail *d)
{
	static const char body[] = "dmfs: If-None-Match probe\n";
	struct dmfs_put_src src = {.buf = body, .fd = -1,
				   .len = sizeof(body) - 1};
	struct dmfs_put_opts po = {.if_none_match = true};

	return st->ops->put(st, key, &src, &po, NULL, d);
}

static int probe(struct dmfs_store *st)
{
	unsigned char rnd[8];
	char key[64];
	struct dmfs_err_detail d = {0};
	int rc, honoured;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return 0;
	int n = snprintf(key, sizeof(key), PROBE_PREFIX "%ld-", (long)getpid());
	for (size_t i = 0; i < sizeof(rnd) && n + 2 < (int)sizeof(key); i++)
		n += snprintf(key + n, sizeof(key) - (size_t)n, "%02x", rnd[i]);
	rc = put_once(st, key, &d);
	if (rc == DMFS_ERR_UNSUPPORTED) {
		/* 501 NotImplemented for the header: new files go without
		 * it, checked by the HEAD alone. */
		dmfs_log(DMFS_LOG_INFO, "the store refuses If-None-Match on "
			 "PUT: new files are checked with a HEAD first");
		return UPLOAD_COND_REFUSED;
	}
	if (rc) {
		dmfs_log(DMFS_LOG_DEBUG, "If-None-Match probe: PUT %s: %s; "
			 "asked again at the next upload", key,
			 dmfs_strerror(rc));
		return -1;
	}
	rc = put_once(st, key, &d);
	honoured = rc == DMFS_ERR_EXISTS;
	if (rc && !honoured)
		dmfs_log(DMFS_LOG_DEBUG, "If-None-Match probe: second PUT %s: "
			 "%s", key, dmfs_strerror(rc));
	if ((rc = st->ops->del(st, key, &d)))
		dmfs_log(DMFS_LOG_WARN, "If-None-Match probe: the scratch "
			 "object %s was not deleted: %s", key,
			 dmfs_strerror(rc));
	dmfs_log(DMFS_LOG_INFO, "the store %s If-None-Match on PUT%s",
		 honoured ? "honours" : "ignores",
		 honoured ? "" : ": new files are checked with a HEAD first");
	return honoured ? UPLOAD_COND_HONOURED : UPLOAD_COND_IGNORED;
}

/* Lock order: c->lock is taken under a staged file's lock (the upload
 * holds it) and takes nothing else. */
int upload_cond_put(struct upload_caps *c, struct dmfs_store *st)
{
	int v;

	pthread_mutex_lock(&c->lock);
	if (c->cond_put < 0)
		c->cond_put = probe(st);
	v = c->cond_put < 0 ? UPLOAD_COND_IGNORED : c->cond_put;
	pthread_mutex_unlock(&c->lock);
	return v;
}
