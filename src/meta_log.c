/*
 * meta_log.c - the metadata table shared through the bucket: uploading
 * the outbox as log objects, merging everyone's logs, checkpoints, and
 * the history of changes.
 *
 * The merge.  Each (path, field) keeps the change with the greatest
 * (time, writer id), whatever order the logs are read in; a removal is a
 * tombstone record, so an older value read later cannot come back.  This
 * table's own changes are already in vals with the same (time, writer)
 * when its logs are read back: merging them again changes nothing.  Every
 * mount that has read the same set of logs holds the same values.
 *
 * Which logs are new.  Log names start with their time, but a slow writer
 * can upload a log whose name sorts before names already read, so the
 * whole prefix is listed and every name not in the seen set (LMDB) is
 * read, in name order.  A log is merged and marked seen in one
 * transaction: a refresh interrupted halfway leaves no log half-merged.
 *
 * Checkpoints.  A checkpoint is the merged state (with tombstones, each
 * value's time and writer) plus the names of the logs it covers.  A table
 * that has never refreshed starts from the newest checkpoint, marks its
 * logs seen, then reads the other logs as usual.
 *
 * Flushing.  The outbox is uploaded with If-None-Match and removed only
 * after the upload succeeded; a crash in between uploads the same changes
 * again in a later log, which the merge takes as a no-op.
 *
 * Locking: sync_lock serialises flush, refresh, compact and schema_set
 * of one handle; LMDB serialises the writers of different processes.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmfs/log.h"
#include "meta_int.h"

#define FLUSH_BYTES_MAX ((size_t)64 << 20) /* one log object at most */
#define LIST_MAX 10000000		   /* log names listed at most */
#define MERGE_BYTES_MAX ((size_t)64 << 20) /* logs merged in one txn */

static const char *err_text(int rc, const struct dmfs_err_detail *d)
{
	return *d->message ? d->message : dmfs_strerror(rc);
}

/* "YYYYMMDDTHHMMSS.uuuuuuZ" of t (µs). */
static void time_name(int64_t t, char out[32])
{
	time_t s = (time_t)(t / 1000000);
	struct tm tm;
	size_t n;

	gmtime_r(&s, &tm);
	n = strftime(out, 32, "%Y%m%dT%H%M%S", &tm);
	snprintf(out + n, 32 - n, ".%06dZ", (int)(t % 1000000));
}

uint64_t meta_pending(struct meta *m)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k = {META_SID_LEN, m->sid}, v;
	uint64_t n = 0;
	int rc;

	if (meta_txn_begin(m, MDB_RDONLY, &txn))
		return 0;
	rc = mdb_cursor_open(txn, m->db_outbox, &cur);
	if (!rc) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		while (!rc && k.mv_size > META_SID_LEN &&
		       !memcmp(k.mv_data, m->sid, META_SID_LEN)) {
			n++;
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		mdb_cursor_close(cur);
	}
	meta_txn_end(m, txn, 0);
	return n;
}

/* Mark name seen in txn.  An LMDB code. */
static int seen_put(struct meta *m, MDB_txn *txn, const char *name)
{
	unsigned char key[META_KEY_MAX];
	MDB_val k = {meta_small_key(m, name, strlen(name), key), key};
	MDB_val v = {0, ""};

	if (!k.mv_size)
		return MDB_BAD_VALSIZE;
	return mdb_put(txn, m->db_seen, &k, &v, 0);
}

static bool seen_has(struct meta *m, MDB_txn *txn, const char *name)
{
	unsigned char key[META_KEY_MAX];
	MDB_val k = {meta_small_key(m, name, strlen(name), key), key}, v;

	return k.mv_size && !mdb_get(txn, m->db_seen, &k, &v);
}

/* --- flush --- */

/* Collect queued lines (up to FLUSH_BYTES_MAX) into buf; *last is the
 * outbox seq of the last one, *n their number.  0 or DMFS_ERR_*. */
static int collect_outbox(struct meta *m, struct meta_buf *buf, uint64_t *last,
			  size_t *n)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k = {META_SID_LEN, m->sid}, v;
	int rc = meta_txn_begin(m, MDB_RDONLY, &txn);

	*n = 0;
	if (rc)
		return meta_mdb_err(rc);
	rc = mdb_cursor_open(txn, m->db_outbox, &cur);
	if (!rc) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		while (!rc && k.mv_size == META_SID_LEN + 8 &&
		       !memcmp(k.mv_data, m->sid, META_SID_LEN)) {
			if (*n && buf->n + v.mv_size + 1 > FLUSH_BYTES_MAX)
				break;
			meta_buf_put(buf, v.mv_data, v.mv_size);
			meta_buf_put(buf, "\n", 1);
			*last = meta_get_be64((unsigned char *)k.mv_data +
					      META_SID_LEN);
			(*n)++;
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		mdb_cursor_close(cur);
	}
	meta_txn_end(m, txn, 0);
	if (rc && rc != MDB_NOTFOUND)
		return meta_mdb_err(rc);
	return buf->err;
}

/* After name was uploaded: drop outbox entries up to last, bump the log
 * seq past seq, mark name seen.  0 or DMFS_ERR_*. */
static int flushed(struct meta *m, uint64_t last, uint64_t seq,
		   const char *name)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k = {META_SID_LEN, m->sid}, v;
	int rc = meta_txn_begin(m, 0, &txn);

	if (rc)
		return meta_mdb_err(rc);
	rc = mdb_cursor_open(txn, m->db_outbox, &cur);
	if (!rc) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		while (!rc && k.mv_size == META_SID_LEN + 8 &&
		       !memcmp(k.mv_data, m->sid, META_SID_LEN) &&
		       meta_get_be64((unsigned char *)k.mv_data +
				     META_SID_LEN) <= last) {
			rc = mdb_cursor_del(cur, 0);
			/* After a delete, MDB_NEXT gives the entry that
			 * followed the deleted one. */
			if (!rc)
				rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		if (rc == MDB_NOTFOUND)
			rc = 0;
		mdb_cursor_close(cur);
	}
	if (!rc)
		rc = meta_state_put_u64(m, txn, "logseq", seq + 1);
	if (!rc)
		rc = seen_put(m, txn, name);
	return meta_mdb_err(meta_txn_end(m, txn, !rc) ?: rc);
}

static int flush_locked(struct meta *m, char *msg, size_t msgsz)
{
	struct meta_buf buf = {.max = FLUSH_BYTES_MAX + 1};
	struct dmfs_err_detail d;
	char key[256], tn[32];
	uint64_t last = 0, seq = 0;
	size_t n;
	MDB_txn *txn;
	int rc;

	for (;;) {
		buf.n = 0;
		rc = collect_outbox(m, &buf, &last, &n);
		if (rc || !n)
			break;
		if (!m->st) {
			dmfs_say(
			    msg, msgsz,
			    "metadata: no store to upload %zu change(s) to", n);
			rc = DMFS_ERR_UNSUPPORTED;
			break;
		}
		rc = meta_mdb_err(meta_txn_begin(m, MDB_RDONLY, &txn));
		if (rc)
			break;
		if (meta_state_get_u64(m, txn, "logseq", &seq))
			seq = 0;
		meta_txn_end(m, txn, 0);
		for (int tries = 0; tries < 5; tries++, seq++) {
			struct dmfs_put_src src = {
			    .buf = buf.p, .fd = -1, .len = buf.n};
			struct dmfs_put_opts po = {.if_none_match = true,
						   .content_type =
						       "application/x-ndjson"};
			time_name(meta_now_us(), tn);
			snprintf(key, sizeof(key),
				 "%s%s-%s-%08" PRIu64 ".jsonl", META_LOG_PREFIX,
				 tn, m->writer, seq);
			dmfs_err_detail_clear(&d);
			rc = m->st->ops->put(m->st, key, &src, &po, NULL, &d);
			if (rc != DMFS_ERR_EXISTS)
				break;
		}
		if (rc) {
			dmfs_say(msg, msgsz, "metadata: uploading %s: %s", key,
				 err_text(rc, &d));
			break;
		}
		dmfs_log(DMFS_LOG_DEBUG, "metadata: %zu change(s) in %s", n,
			 key);
		rc = flushed(m, last, seq, key + strlen(META_LOG_PREFIX));
		if (rc) {
			dmfs_say(msg, msgsz,
				 "metadata: %s uploaded but the queue could "
				 "not be updated: %s",
				 key, dmfs_strerror(rc));
			break;
		}
	}
	free(buf.p);
	if (rc && msg && !*msg)
		dmfs_say(msg, msgsz, "metadata: flush: %s", dmfs_strerror(rc));
	return rc;
}

int meta_flush(struct meta *m, char *msg, size_t msgsz)
{
	int rc;

	dmfs_say(msg, msgsz, "%s", "");
	pthread_mutex_lock(&m->sync_lock);
	rc = flush_locked(m, msg, msgsz);
	pthread_mutex_unlock(&m->sync_lock);
	return rc;
}

/* --- merge --- */

/* (t, w) compared with a record's (time, writer): <0, 0, >0. */
static int cmp_stamp(int64_t t, const char *w, const struct meta_rec *r)
{
	size_t wl = strlen(w), n = wl < r->wlen ? wl : r->wlen;
	int c;

	if (t != r->t)
		return t < r->t ? -1 : 1;
	c = memcmp(w, r->w, n);
	if (c)
		return c;
	return wl < r->wlen ? -1 : wl > r->wlen;
}

int meta_merge_one(struct meta *m, MDB_txn *txn, const char *path,
		   const char *field, int64_t t, const char *w,
		   const cJSON *val, enum mval_type hint, bool *changed)
{
	unsigned char key[META_KEY_MAX];
	size_t plen = strlen(path), flen = strlen(field);
	MDB_val k = {meta_vals_key(m, path, plen, field, flen, key), key}, v;
	struct meta_rec old = {0};
	struct mval mv = {0};
	struct meta_buf text = {0};
	const struct meta_sfield *sf;
	enum mval_type want;
	unsigned char *rec = NULL;
	size_t reclen;
	char why[300];
	bool had, differs;
	int rc;

	if (!*path || !k.mv_size ||
	    meta_check_field_name(field, why, sizeof(why))) {
		dmfs_log(DMFS_LOG_WARN,
			 "metadata: dropping change of %s: %s: %s", path, field,
			 k.mv_size ? why : "key too long");
		return 0;
	}
	rc = mdb_get(txn, m->db_vals, &k, &v);
	if (rc && rc != MDB_NOTFOUND)
		return meta_mdb_err(rc);
	had = !rc;
	if (had && (rc = meta_rec_decode(&v, &old)))
		return rc;
	if (had && cmp_stamp(t, w, &old) <= 0)
		return 0; /* what we hold is as new or newer */
	if (!val || cJSON_IsNull(val)) {
		if (had && old.type != MV_NULL)
			*changed = true;
		rc = meta_rec_encode(t, MV_NULL, w, NULL, 0, &rec, &reclen);
		goto put;
	}
	sf = meta_schema_find(&m->schema, field);
	want = sf ? sf->t : meta_types_get(m, txn, field, flen);
	/* A field without a type yet takes the writer's type (5.0 is a
	 * float even though JSON writes it 5). */
	rc = mval_from_json(val, want != MV_NULL ? want : hint, &mv, why,
			    sizeof(why));
	if (rc == DMFS_ERR_NOMEM)
		return rc;
	if (!rc && mv.t == MV_NULL)
		rc = DMFS_ERR_INVAL;
	if (!rc)
		rc = meta_buf_mval(&text, &mv);
	if (rc) {
		char *shown = cJSON_PrintUnformatted(val);
		dmfs_log(DMFS_LOG_WARN,
			 "metadata: dropping %s: %s = %.80s from writer %s: "
			 "expected %s",
			 path, field, shown ? shown : "?", w,
			 mval_type_name(want));
		free(shown);
		mval_clear(&mv);
		free(text.p);
		return 0;
	}
	if (want == MV_NULL) {
		rc = meta_mdb_err(meta_types_put(m, txn, field, flen, mv.t));
		if (rc)
			goto out;
	}
	differs = !had || old.type == MV_NULL || old.jlen != text.n ||
		  memcmp(old.json, text.p, text.n) != 0;
	if (differs)
		*changed = true;
	rc = meta_rec_encode(t, mv.t, w, text.p, text.n, &rec, &reclen);
put:
	if (!rc) {
		MDB_val nv = {reclen, rec};
		rc = meta_mdb_err(mdb_put(txn, m->db_vals, &k, &nv, 0));
	}
out:
	free(rec);
	free(text.p);
	mval_clear(&mv);
	return rc;
}

/* Merge one JSONL object (a log, or a checkpoint's rows) in txn.  Log
 * lines carry "new", checkpoint lines "v"; lines that are neither are
 * skipped with a log line. */
static int merge_text(struct meta *m, MDB_txn *txn, const char *name,
		      const char *text, size_t len, bool *changed)
{
	const char *p = text, *end = text + len;
	size_t lineno = 0;
	int rc = 0;

	while (!rc && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		cJSON *j, *t, *w, *path, *field, *val, *ty;
		enum mval_type hint = MV_NULL;
		lineno++;
		if (le == p) {
			p = le + 1;
			continue;
		}
		j = cJSON_ParseWithLength(p, (size_t)(le - p));
		p = le + 1;
		t = cJSON_GetObjectItemCaseSensitive(j, "t");
		w = cJSON_GetObjectItemCaseSensitive(j, "w");
		path = cJSON_GetObjectItemCaseSensitive(j, "path");
		field = cJSON_GetObjectItemCaseSensitive(j, "field");
		val = cJSON_GetObjectItemCaseSensitive(j, "new");
		if (!val)
			val = cJSON_GetObjectItemCaseSensitive(j, "v");
		ty = cJSON_GetObjectItemCaseSensitive(j, "type");
		if (cJSON_IsString(ty) &&
		    mval_type_parse(ty->valuestring, &hint) != 0)
			hint = MV_NULL;
		if (j &&
		    cJSON_GetObjectItemCaseSensitive(j, "dmfs_checkpoint")) {
			cJSON_Delete(j);
			continue; /* the header */
		}
		if (!cJSON_IsNumber(t) || !cJSON_IsString(w) ||
		    !cJSON_IsString(path) || !cJSON_IsString(field) || !val) {
			dmfs_log(DMFS_LOG_WARN,
				 "metadata: %s line %zu: not a change: skipped",
				 name, lineno);
			cJSON_Delete(j);
			continue;
		}
		rc = meta_merge_one(m, txn, path->valuestring,
				    field->valuestring, (int64_t)t->valuedouble,
				    w->valuestring, val, hint, changed);
		cJSON_Delete(j);
	}
	return rc;
}

/* --- listing --- */

struct names {
	char **v;
	size_t n, cap;
};

static void names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
	memset(ns, 0, sizeof(*ns));
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names (without prefix) of the .jsonl objects under prefix, sorted. */
static int list_names(struct meta *m, const char *prefix, struct names *ns,
		      char *msg, size_t msgsz)
{
	struct dmfs_list_page page = {0};
	struct dmfs_err_detail d;
	size_t plen = strlen(prefix);
	char *token = NULL;
	int rc;

	do {
		dmfs_err_detail_clear(&d);
		rc = m->st->ops->list(m->st, prefix, NULL, token, 1000, &page,
				      &d);
		free(token);
		token = NULL;
		for (size_t i = 0; !rc && i < page.nobjs; i++) {
			const char *key = page.objs[i].key, *nm = key + plen;
			size_t kl = strlen(key);
			if (strncmp(key, prefix, plen) || strchr(nm, '/') ||
			    kl < plen + 7 || strcmp(key + kl - 6, ".jsonl"))
				continue;
			if (ns->n == ns->cap) {
				size_t nc = ns->cap ? 2 * ns->cap : 64;
				void *np =
				    nc > LIST_MAX
					? NULL
					: realloc(ns->v, nc * sizeof(char *));
				if (!np) {
					rc = nc > LIST_MAX ? DMFS_ERR_TOO_BIG
							   : DMFS_ERR_NOMEM;
					break;
				}
				ns->v = np;
				ns->cap = nc;
			}
			ns->v[ns->n] = strdup(nm);
			if (!ns->v[ns->n]) {
				rc = DMFS_ERR_NOMEM;
				break;
			}
			ns->n++;
		}
		if (!rc && page.truncated && page.next_token) {
			token = page.next_token;
			page.next_token = NULL;
		}
		dmfs_list_page_free(&page);
	} while (!rc && token);
	free(token);
	if (rc)
		dmfs_say(msg, msgsz, "metadata: listing %s: %s", prefix,
			 err_text(rc, &d));
	else if (ns->n)
		qsort(ns->v, ns->n, sizeof(char *), cmp_name);
	return rc;
}

/* Read a whole object (caller frees *out).  0 or DMFS_ERR_* with msg. */
static int get_object(struct meta *m, const char *key, char **out, size_t *len,
		      char *msg, size_t msgsz)
{
	struct dmfs_err_detail d;
	int rc;

	dmfs_err_detail_clear(&d);
	rc = dmfs_store_get_all(m->st, key, META_OBJ_MAX, out, len, &d);
	if (rc)
		dmfs_say(msg, msgsz, "metadata: reading %s: %s", key,
			 err_text(rc, &d));
	return rc;
}

/* --- refresh --- */

/* Start a fresh table from the newest checkpoint, if any.  Marks the table
 * as started either way. */
static int load_checkpoint(struct meta *m, bool *changed, char *msg,
			   size_t msgsz)
{
	struct names ns = {0};
	char key[512], *text = NULL;
	size_t len = 0;
	cJSON *head = NULL, *logs, *it;
	MDB_txn *txn;
	int rc = list_names(m, META_CKPT_PREFIX, &ns, msg, msgsz);

	if (!rc && ns.n) {
		snprintf(key, sizeof(key), "%s%s", META_CKPT_PREFIX,
			 ns.v[ns.n - 1]);
		rc = get_object(m, key, &text, &len, msg, msgsz);
	}
	if (!rc && text) {
		const char *nl = memchr(text, '\n', len);
		head =
		    cJSON_ParseWithLength(text, nl ? (size_t)(nl - text) : len);
		if (!cJSON_GetObjectItemCaseSensitive(head,
						      "dmfs_checkpoint")) {
			dmfs_say(msg, msgsz, "metadata: %s: not a checkpoint",
				 key);
			rc = DMFS_ERR_PROTOCOL;
		}
	}
	if (rc)
		goto out;
	rc = meta_mdb_err(meta_txn_begin(m, 0, &txn));
	if (rc)
		goto out;
	pthread_mutex_lock(&m->schema_lock);
	if (text) {
		logs = cJSON_GetObjectItemCaseSensitive(head, "logs");
		cJSON_ArrayForEach(it, logs)
		{
			if (!rc && cJSON_IsString(it))
				rc = meta_mdb_err(
				    seen_put(m, txn, it->valuestring));
		}
		if (!rc)
			rc = merge_text(m, txn, key, text, len, changed);
	}
	pthread_mutex_unlock(&m->schema_lock);
	if (!rc)
		rc = meta_mdb_err(meta_state_put(m, txn, "started", "1", 1));
	rc = meta_mdb_err(meta_txn_end(m, txn, !rc)) ?: rc;
	if (rc && msg && !*msg)
		dmfs_say(msg, msgsz, "metadata: loading %s: %s", key,
			 dmfs_strerror(rc));
	else if (!rc && text)
		dmfs_log(DMFS_LOG_INFO, "metadata: started from checkpoint %s",
			 key);
out:
	cJSON_Delete(head);
	free(text);
	names_free(&ns);
	return rc;
}

static int refresh_schema(struct meta *m, bool *changed, char *msg,
			  size_t msgsz)
{
	struct dmfs_err_detail d;
	char *text = NULL, why[512];
	size_t len;
	MDB_txn *txn;
	bool ch = false;
	int rc;

	dmfs_err_detail_clear(&d);
	rc = dmfs_store_get_all(m->st, META_SCHEMA_KEY, 1 << 20, &text, &len,
				&d);
	if (rc == DMFS_ERR_NOT_FOUND)
		text = strdup("{}"), rc = text ? 0 : DMFS_ERR_NOMEM;
	if (rc) {
		dmfs_say(msg, msgsz, "metadata: reading %s: %s",
			 META_SCHEMA_KEY, err_text(rc, &d));
		return rc;
	}
	rc = meta_mdb_err(meta_txn_begin(m, 0, &txn));
	if (!rc) {
		rc = meta_schema_stage(m, txn, text, &ch, why, sizeof(why));
		if (rc == DMFS_ERR_INVAL) {
			dmfs_log(DMFS_LOG_WARN, "metadata: %s ignored: %s",
				 META_SCHEMA_KEY, why);
			rc = 0;
		}
		rc = meta_mdb_err(meta_txn_end(m, txn, !rc && ch)) ?: rc;
	}
	free(text);
	if (!rc && ch) {
		*changed = true;
		rc = meta_schema_load(m, msg, msgsz);
	}
	return rc;
}

/*
 * Download the unseen logs from ns->v[*i] on (up to MERGE_BYTES_MAX of
 * them, at least one), then merge them and mark them seen in one write
 * transaction: one sync for many small logs, and no download while
 * holding LMDB's writer lock.  *i moves past the names handled.
 */
static int merge_group(struct meta *m, const struct names *ns, size_t *i,
		       bool *changed, char *msg, size_t msgsz)
{
	char **texts = calloc(ns->n - *i, sizeof(char *));
	size_t *lens = calloc(ns->n - *i, sizeof(size_t));
	size_t n = 0, bytes = 0, first = *i;
	char key[512];
	MDB_txn *txn;
	int rc = texts && lens ? 0 : DMFS_ERR_NOMEM;

	while (!rc && *i < ns->n && (!n || bytes < MERGE_BYTES_MAX)) {
		bool seen;
		rc = meta_mdb_err(meta_txn_begin(m, MDB_RDONLY, &txn));
		if (rc)
			break;
		seen = seen_has(m, txn, ns->v[*i]);
		meta_txn_end(m, txn, 0);
		if (!seen) {
			snprintf(key, sizeof(key), "%s%s", META_LOG_PREFIX,
				 ns->v[*i]);
			rc = get_object(m, key, &texts[*i - first],
					&lens[*i - first], msg, msgsz);
			if (rc == DMFS_ERR_NOT_FOUND) {
				/* Listed, then gone: not ours to judge
				 * (left unseen, tried again next time). */
				dmfs_log(DMFS_LOG_WARN,
					 "metadata: %s vanished after listing",
					 key);
				dmfs_say(msg, msgsz, "%s", "");
				rc = 0;
			}
			if (rc)
				break;
			bytes += lens[*i - first];
			n += texts[*i - first] != NULL;
		}
		(*i)++;
	}
	if (!rc && n) {
		rc = meta_mdb_err(meta_txn_begin(m, 0, &txn));
		if (!rc) {
			pthread_mutex_lock(&m->schema_lock);
			for (size_t k = first; !rc && k < *i; k++) {
				if (!texts[k - first])
					continue;
				snprintf(key, sizeof(key), "%s%s",
					 META_LOG_PREFIX, ns->v[k]);
				rc = merge_text(m, txn, key, texts[k - first],
						lens[k - first], changed);
				if (!rc)
					rc = meta_mdb_err(
					    seen_put(m, txn, ns->v[k]));
			}
			pthread_mutex_unlock(&m->schema_lock);
			rc = meta_mdb_err(meta_txn_end(m, txn, !rc)) ?: rc;
			if (rc && msg && !*msg)
				dmfs_say(msg, msgsz, "metadata: merging %s: %s",
					 key, dmfs_strerror(rc));
		}
	}
	for (size_t k = 0; texts && k < *i - first; k++)
		free(texts[k]);
	free(texts);
	free(lens);
	return rc;
}

static int refresh_locked(struct meta *m, bool *changed, char *msg,
			  size_t msgsz)
{
	struct names ns = {0};
	MDB_txn *txn;
	MDB_val v;
	bool started;
	size_t nnew = 0;
	int rc;

	rc = refresh_schema(m, changed, msg, msgsz);
	if (rc)
		return rc;
	rc = meta_mdb_err(meta_txn_begin(m, MDB_RDONLY, &txn));
	if (rc)
		return rc;
	started = !meta_state_get(m, txn, "started", &v);
	meta_txn_end(m, txn, 0);
	if (!started && (rc = load_checkpoint(m, changed, msg, msgsz)))
		return rc;
	rc = list_names(m, META_LOG_PREFIX, &ns, msg, msgsz);
	for (size_t i = 0; !rc && i < ns.n;) {
		size_t j = i;
		rc = merge_group(m, &ns, &j, changed, msg, msgsz);
		nnew += j - i;
		i = j;
	}
	if (nnew)
		dmfs_log(DMFS_LOG_DEBUG,
			 "metadata: read up to %zu log(s) after the listing",
			 nnew);
	names_free(&ns);
	return rc;
}

int meta_refresh(struct meta *m, bool *changed, char *msg, size_t msgsz)
{
	bool ch = false;
	int rc = 0;

	dmfs_say(msg, msgsz, "%s", "");
	if (m->st) {
		pthread_mutex_lock(&m->sync_lock);
		rc = refresh_locked(m, &ch, msg, msgsz);
		pthread_mutex_unlock(&m->sync_lock);
	}
	if (changed)
		*changed = ch;
	return rc;
}

/* --- compact --- */

/* The checkpoint text: a header line, then one line per record. */
static int checkpoint_text(struct meta *m, struct meta_buf *b)
{
	MDB_txn *txn;
	MDB_cursor *cur = NULL;
	MDB_val k = {META_SID_LEN, m->sid}, v;
	bool first = true;
	int rc = meta_txn_begin(m, MDB_RDONLY, &txn);

	if (rc)
		return meta_mdb_err(rc);
	meta_buf_puts(b, "{\"dmfs_checkpoint\":1,\"w\":");
	meta_buf_jstr(b, m->writer, strlen(m->writer));
	meta_buf_puts(b, ",\"time\":");
	meta_buf_i64(b, meta_now_us());
	meta_buf_puts(b, ",\"logs\":[");
	rc = mdb_cursor_open(txn, m->db_seen, &cur);
	if (!rc)
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (!rc && k.mv_size > META_SID_LEN &&
	       !memcmp(k.mv_data, m->sid, META_SID_LEN)) {
		if (!first)
			meta_buf_put(b, ",", 1);
		first = false;
		meta_buf_jstr(b, (char *)k.mv_data + META_SID_LEN,
			      k.mv_size - META_SID_LEN);
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	meta_buf_puts(b, "]}\n");
	if (cur)
		mdb_cursor_close(cur);
	cur = NULL;
	if (rc == MDB_NOTFOUND)
		rc = 0;
	k.mv_size = META_SID_LEN;
	k.mv_data = m->sid;
	if (!rc)
		rc = mdb_cursor_open(txn, m->db_vals, &cur);
	if (!rc)
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (!rc && !b->err && k.mv_size > META_SID_LEN &&
	       !memcmp(k.mv_data, m->sid, META_SID_LEN)) {
		const char *kp = (const char *)k.mv_data + META_SID_LEN;
		size_t kl = k.mv_size - META_SID_LEN;
		const char *z = memchr(kp, 0, kl);
		struct meta_rec r;
		if (!z || meta_rec_decode(&v, &r)) {
			rc = MDB_CORRUPTED;
			break;
		}
		meta_buf_puts(b, "{\"path\":");
		meta_buf_jstr(b, kp, (size_t)(z - kp));
		meta_buf_puts(b, ",\"field\":");
		meta_buf_jstr(b, z + 1, kl - (size_t)(z - kp) - 1);
		meta_buf_puts(b, ",\"t\":");
		meta_buf_i64(b, r.t);
		meta_buf_puts(b, ",\"w\":");
		meta_buf_jstr(b, r.w, r.wlen);
		meta_buf_puts(b, ",\"v\":");
		if (r.type == MV_NULL) {
			meta_buf_puts(b, "null");
		} else {
			meta_buf_put(b, r.json, r.jlen);
			meta_buf_puts(b, ",\"type\":\"");
			meta_buf_puts(b, mval_type_name(r.type));
			meta_buf_puts(b, "\"");
		}
		meta_buf_puts(b, "}\n");
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (cur)
		mdb_cursor_close(cur);
	meta_txn_end(m, txn, 0);
	if (rc && rc != MDB_NOTFOUND)
		return meta_mdb_err(rc);
	return b->err;
}

int meta_compact(struct meta *m, char *msg, size_t msgsz)
{
	struct meta_buf b = {.max = META_OBJ_MAX};
	struct dmfs_err_detail d;
	char key[256], tn[32];
	bool ch;
	int rc;

	dmfs_say(msg, msgsz, "%s", "");
	if (!m->st) {
		dmfs_say(msg, msgsz, "metadata: no store to compact into");
		return DMFS_ERR_UNSUPPORTED;
	}
	pthread_mutex_lock(&m->sync_lock);
	/* Our own queue first, then everyone's logs: the checkpoint then
	 * holds only what is in logs it names. */
	rc = flush_locked(m, msg, msgsz);
	if (!rc)
		rc = refresh_locked(m, &ch, msg, msgsz);
	if (!rc) {
		rc = checkpoint_text(m, &b);
		if (rc)
			dmfs_say(msg, msgsz, "metadata: checkpoint: %s",
				 dmfs_strerror(rc));
	}
	if (!rc) {
		struct dmfs_put_src src = {.buf = b.p, .fd = -1, .len = b.n};
		struct dmfs_put_opts po = {.if_none_match = true,
					   .content_type =
					       "application/x-ndjson"};
		time_name(meta_now_us(), tn);
		snprintf(key, sizeof(key), "%s%s-%s.jsonl", META_CKPT_PREFIX,
			 tn, m->writer);
		dmfs_err_detail_clear(&d);
		rc = m->st->ops->put(m->st, key, &src, &po, NULL, &d);
		if (rc)
			dmfs_say(msg, msgsz, "metadata: uploading %s: %s", key,
				 err_text(rc, &d));
		else
			dmfs_log(DMFS_LOG_INFO, "metadata: wrote %s", key);
	}
	pthread_mutex_unlock(&m->sync_lock);
	free(b.p);
	return rc;
}

/* --- history --- */

/* A value of a log line as an mval (null when absent or null); hint is
 * the line's type of the new value. */
static int history_value(const cJSON *j, enum mval_type hint, struct mval *out)
{
	char why[256];

	memset(out, 0, sizeof(*out));
	if (!j || cJSON_IsNull(j))
		return 0;
	if (hint != MV_NULL && !mval_from_json(j, hint, out, why, sizeof(why)))
		return 0;
	return mval_from_json(j, MV_NULL, out, why, sizeof(why));
}

int meta_history(struct meta *m, const char *path,
		 int (*cb)(void *ctx, const struct meta_change *c), void *ctx,
		 char *msg, size_t msgsz)
{
	struct names ns = {0};
	int rc;

	dmfs_say(msg, msgsz, "%s", "");
	if (!m->st)
		return 0;
	rc = list_names(m, META_LOG_PREFIX, &ns, msg, msgsz);
	for (size_t i = 0; !rc && i < ns.n; i++) {
		char key[512], *text = NULL;
		const char *p, *end;
		size_t len = 0;

		snprintf(key, sizeof(key), "%s%s", META_LOG_PREFIX, ns.v[i]);
		rc = get_object(m, key, &text, &len, msg, msgsz);
		if (rc)
			break;
		for (p = text, end = text + len; !rc && p < end;) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *le = nl ? nl : end;
			cJSON *j = cJSON_ParseWithLength(p, (size_t)(le - p));
			cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "t");
			cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "w");
			cJSON *who = cJSON_GetObjectItemCaseSensitive(j, "who");
			cJSON *pa = cJSON_GetObjectItemCaseSensitive(j, "path");
			cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "field");
			struct mval nv, ov;
			p = le + 1;
			if (!cJSON_IsNumber(t) || !cJSON_IsString(w) ||
			    !cJSON_IsString(pa) || !cJSON_IsString(f) ||
			    (path && strcmp(path, pa->valuestring))) {
				cJSON_Delete(j);
				continue;
			}
			cJSON *ty = cJSON_GetObjectItemCaseSensitive(j, "type");
			enum mval_type hint = MV_NULL;
			if (cJSON_IsString(ty) &&
			    mval_type_parse(ty->valuestring, &hint))
				hint = MV_NULL;
			/* The old value has the field's type too (or is an
			 * int in a float field). */
			if (history_value(
				cJSON_GetObjectItemCaseSensitive(j, "new"),
				hint, &nv) ||
			    history_value(
				cJSON_GetObjectItemCaseSensitive(j, "old"),
				hint, &ov)) {
				mval_clear(&nv);
				cJSON_Delete(j);
				continue; /* a value we cannot read */
			}
			struct meta_change c = {
			    .path = pa->valuestring,
			    .field = f->valuestring,
			    .old_v = &ov,
			    .new_v = &nv,
			    .time_us = (int64_t)t->valuedouble,
			    .writer = w->valuestring,
			    .who = cJSON_IsString(who) ? who->valuestring : ""};
			rc = cb(ctx, &c);
			mval_clear(&nv);
			mval_clear(&ov);
			cJSON_Delete(j);
		}
		free(text);
	}
	names_free(&ns);
	return rc;
}
