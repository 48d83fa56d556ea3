/*
 * meta_log.c - the metadata table shared through the bucket: uploading
 * the outbox as log objects, merging everyone's logs, checkpoints, and
 * the history of changes.
 *
 * The merge.  Each (path, field) keeps the change with the greatest
 * (time, writer id), whatever order the logs are read in; a removal is a
 * tombstone field, so an older value read later cannot come back.  A log
 * line (one path) is merged with one read-modify-write of the path's row.
 * This table's own changes are already in its rows with the same (time,
 * writer) when its logs are read back: merging them again changes
 * nothing.  Every
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

/* The log line of an outbox entry (borrowed) and its number of changes. */
static void outbox_entry(const MDB_val *v, const char **line, size_t *len,
			 uint64_t *n)
{
	const unsigned char *p = v->mv_data;

	if (v->mv_size >= 4 && p[0] != '{') {
		*n = (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 |
		     (uint64_t)p[2] << 8 | p[3];
		*line = (const char *)p + 4;
		*len = v->mv_size - 4;
	} else { /* the earlier format: one change, no head */
		*n = 1;
		*line = (const char *)p;
		*len = v->mv_size;
	}
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
			const char *line;
			size_t len;
			uint64_t c;
			outbox_entry(&v, &line, &len, &c);
			n += c;
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

/* Add a copy of name.  0, DMFS_ERR_NOMEM, or DMFS_ERR_TOO_BIG once the
 * list would pass LIST_MAX names. */
static int names_add(struct names *ns, const char *name)
{
	if (ns->n == ns->cap) {
		size_t nc = ns->cap ? 2 * ns->cap : 64;
		if (nc > LIST_MAX)
			return DMFS_ERR_TOO_BIG;
		void *p = realloc(ns->v, nc * sizeof(char *));
		if (!p)
			return DMFS_ERR_NOMEM;
		ns->v = p;
		ns->cap = nc;
	}
	ns->v[ns->n] = strdup(name);
	if (!ns->v[ns->n])
		return DMFS_ERR_NOMEM;
	ns->n++;
	return 0;
}


/* Collect queued lines from seq from on (up to FLUSH_BYTES_MAX) into
 * buf; *last is the outbox seq of the last one, *n the number of
 * entries.  0 or DMFS_ERR_*. */
static int collect_outbox(struct meta *m, uint64_t from, struct meta_buf *buf,
			  uint64_t *last, size_t *n)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	unsigned char key[META_SID_LEN + 8];
	MDB_val k = {sizeof(key), key}, v;
	int rc = meta_txn_begin(m, MDB_RDONLY, &txn);

	memcpy(key, m->sid, META_SID_LEN);
	meta_put_be64(key + META_SID_LEN, from);
	*n = 0;
	if (rc)
		return meta_mdb_err(rc);
	rc = mdb_cursor_open(txn, m->db_outbox, &cur);
	if (!rc) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		while (!rc && k.mv_size == META_SID_LEN + 8 &&
		       !memcmp(k.mv_data, m->sid, META_SID_LEN)) {
			const char *line;
			size_t len;
			uint64_t c;
			outbox_entry(&v, &line, &len, &c);
			if (*n && buf->n + len + 1 > FLUSH_BYTES_MAX)
				break;
			/* Straight from the map into the upload buffer. */
			meta_buf_put(buf, line, len);
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

/* Whether every entry of the outbox (all stores) is ours and at most
 * last: then it can be emptied whole. */
static bool outbox_all_ours(struct meta *m, MDB_txn *txn, uint64_t last)
{
	MDB_cursor *cur;
	MDB_val k, v;
	bool all = false;

	if (mdb_cursor_open(txn, m->db_outbox, &cur))
		return false;
	if (!mdb_cursor_get(cur, &k, &v, MDB_FIRST) &&
	    k.mv_size == META_SID_LEN + 8 &&
	    !memcmp(k.mv_data, m->sid, META_SID_LEN) &&
	    !mdb_cursor_get(cur, &k, &v, MDB_LAST) &&
	    k.mv_size == META_SID_LEN + 8 &&
	    !memcmp(k.mv_data, m->sid, META_SID_LEN))
		all = meta_get_be64((unsigned char *)k.mv_data +
				    META_SID_LEN) <= last;
	mdb_cursor_close(cur);
	return all;
}

/* After the logs names[0..n) were uploaded: drop outbox entries up to
 * last, bump the log seq past seq, mark the logs seen; one transaction
 * (one sync) for all of them.  0 or DMFS_ERR_*. */
static int flushed(struct meta *m, uint64_t last, uint64_t seq,
		   char *const *names, size_t n)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k = {META_SID_LEN, m->sid}, v;
	int rc = meta_txn_begin(m, 0, &txn);

	if (rc)
		return meta_mdb_err(rc);
	if (outbox_all_ours(m, txn, last)) {
		/* Frees the pages, not entry by entry. */
		rc = mdb_drop(txn, m->db_outbox, 0);
	} else if (!(rc = mdb_cursor_open(txn, m->db_outbox, &cur))) {
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
	for (size_t i = 0; !rc && i < n; i++)
		rc = seen_put(m, txn, names[i]);
	return meta_mdb_err(meta_txn_end(m, txn, !rc) ?: rc);
}

/* Upload the queue as log objects of up to FLUSH_BYTES_MAX, then drop
 * what was uploaded from it in one transaction.  A crash in between
 * uploads those lines again later: the merge takes them as no-ops. */
static int flush_locked(struct meta *m, char *msg, size_t msgsz)
{
	struct meta_buf buf = {.max = FLUSH_BYTES_MAX + 1};
	struct dmfs_err_detail d;
	struct names done = {0};
	char key[256], tn[32];
	uint64_t last = 0, from = 0, seq = 0, used = 0;
	size_t n;
	MDB_txn *txn;
	int rc, frc;

	rc = meta_mdb_err(meta_txn_begin(m, MDB_RDONLY, &txn));
	if (rc)
		return rc;
	if (meta_state_get_u64(m, txn, "logseq", &seq))
		seq = 0;
	meta_txn_end(m, txn, 0);
	for (;;) {
		buf.n = 0;
		rc = collect_outbox(m, from, &buf, &last, &n);
		if (rc || !n)
			break;
		if (!m->st) {
			dmfs_say(
			    msg, msgsz,
			    "metadata: no store to upload %zu line(s) to", n);
			rc = DMFS_ERR_UNSUPPORTED;
			break;
		}
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
		dmfs_log(DMFS_LOG_DEBUG, "metadata: %zu line(s) in %s", n,
			 key);
		rc = names_add(&done, key + strlen(META_LOG_PREFIX));
		if (rc)
			break;
		from = last + 1;
		used = seq++;
	}
	/* What was uploaded leaves the queue, even when a later part
	 * failed. */
	if (done.n && (frc = flushed(m, from - 1, used, done.v, done.n))) {
		dmfs_say(msg, msgsz,
			 "metadata: %s uploaded but the queue could not be "
			 "updated: %s",
			 done.v[done.n - 1], dmfs_strerror(frc));
		rc = rc ? rc : frc;
	}
	names_free(&done);
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

/* (t, w) compared with a field's (time, writer): <0, 0, >0. */
static int cmp_stamp(int64_t t, const char *w, const struct meta_rf *r)
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

/* A change that passed the stamp check, its value in stored form. */
struct accepted {
	const struct meta_mchange *c;
	enum mval_type type; /* MV_NULL: removal */
	size_t voff, vlen;   /* in the merge's value buffer */
};

/* Type-check c's value and append its stored form to vals.  0 with
 * *keep false when the value is dropped (logged), or DMFS_ERR_*. */
static int merge_value(struct meta *m, MDB_txn *txn, const char *path,
		       const struct meta_mchange *c, struct meta_buf *vals,
		       struct accepted *out, bool *keep)
{
	const struct meta_sfield *sf = meta_schema_find(&m->schema, c->field);
	size_t flen = strlen(c->field);
	enum mval_type want;
	struct mval mv = {0};
	char why[300];
	int rc;

	*keep = true;
	out->c = c;
	out->voff = vals->n;
	out->vlen = 0;
	out->type = MV_NULL;
	if (!c->val || cJSON_IsNull(c->val))
		return 0;
	want = sf ? sf->t : meta_types_get(m, txn, c->field, flen);
	/* A field without a type yet takes the writer's type (5.0 is a
	 * float even though JSON writes it 5). */
	rc = mval_from_json(c->val, want != MV_NULL ? want : c->hint, &mv, why,
			    sizeof(why));
	if (rc == DMFS_ERR_NOMEM)
		return rc;
	if (!rc && mv.t == MV_NULL)
		rc = DMFS_ERR_INVAL;
	if (!rc)
		rc = meta_buf_stored(vals, &mv);
	if (rc == DMFS_ERR_NOMEM || vals->err) {
		mval_clear(&mv);
		return vals->err ? vals->err : rc;
	}
	if (rc) {
		char *shown = cJSON_PrintUnformatted(c->val);
		dmfs_log(DMFS_LOG_WARN,
			 "metadata: dropping %s: %s = %.80s from writer %s: "
			 "expected %s",
			 path, c->field, shown ? shown : "?", c->w,
			 mval_type_name(want));
		free(shown);
		mval_clear(&mv);
		vals->n = out->voff;
		*keep = false;
		return 0;
	}
	out->type = mv.t;
	out->vlen = vals->n - out->voff;
	mval_clear(&mv);
	if (want == MV_NULL)
		return meta_mdb_err(meta_types_put(m, txn, c->field, flen,
						   out->type));
	return 0;
}

int meta_merge_row(struct meta *m, MDB_txn *txn, const char *path,
		   const struct meta_mchange *c, size_t n, bool *changed)
{
	unsigned char key[META_KEY_MAX];
	size_t plen = strlen(path), na = 0;
	MDB_val k = {meta_row_key(m, path, plen, key), key}, v;
	struct meta_rowrec row = {0};
	struct meta_buf vals = {0}, rec = {0};
	struct accepted *acc = NULL;
	char why[300];
	int rc;

	if (!*path || !k.mv_size) {
		dmfs_log(DMFS_LOG_WARN, "metadata: dropping change of %.200s: %s",
			 path, *path ? "path too long" : "empty path");
		return 0;
	}
	rc = mdb_get(txn, m->db_rows, &k, &v);
	if (rc && rc != MDB_NOTFOUND)
		return meta_mdb_err(rc);
	if (!rc && (rc = meta_row_decode(&v, &row)))
		goto out;
	rc = 0;
	acc = calloc(n + 1, sizeof(*acc));
	if (!acc) {
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	/* Pass 1: what is newer than what we hold, type-checked. */
	for (size_t i = 0; !rc && i < n; i++) {
		long j;
		bool keep;
		if (meta_check_field_name(c[i].field, why, sizeof(why))) {
			dmfs_log(DMFS_LOG_WARN,
				 "metadata: dropping change of %s: %s: %s",
				 path, c[i].field, why);
			continue;
		}
		j = meta_rowrec_find(&row, c[i].field, strlen(c[i].field));
		if (j >= 0 && cmp_stamp(c[i].t, c[i].w, &row.f[j]) <= 0)
			continue; /* what we hold is as new or newer */
		rc = merge_value(m, txn, path, &c[i], &vals, &acc[na], &keep);
		na += !rc && keep;
	}
	if (rc || !na)
		goto out;
	/* Pass 2: into the row (the value buffer no longer moves). */
	for (size_t i = 0; !rc && i < na; i++) {
		const struct accepted *a = &acc[i];
		const char *val = vals.p ? vals.p + a->voff : "";
		long j = meta_rowrec_find(&row, a->c->field,
					  strlen(a->c->field));
		struct meta_rf *f;
		if (j >= 0) {
			f = &row.f[j];
			if (cmp_stamp(a->c->t, a->c->w, f) <= 0)
				continue; /* a duplicate key of one line */
			if (f->type != a->type ||
			    (a->type != MV_NULL &&
			     (f->vlen != a->vlen || memcmp(f->val, val, a->vlen))))
				*changed = true;
		} else {
			if ((rc = meta_rowrec_reserve(&row, row.n + 1)))
				break;
			j = -j - 1;
			memmove(&row.f[j + 1], &row.f[j],
				(row.n - (size_t)j) * sizeof(*row.f));
			row.n++;
			f = &row.f[j];
			f->name = a->c->field;
			f->nlen = strlen(a->c->field);
			if (a->type != MV_NULL)
				*changed = true;
		}
		f->t = a->c->t;
		f->w = a->c->w;
		f->wlen = strlen(a->c->w);
		f->type = a->type;
		f->val = val;
		f->vlen = a->vlen;
	}
	if (!rc)
		rc = meta_row_encode(row.f, row.n, &rec);
	if (!rc) {
		MDB_val nv = {rec.n, rec.p}, ov;
		int g = mdb_get(txn, m->db_rows, &k, &ov);
		if (g && g != MDB_NOTFOUND)
			rc = meta_mdb_err(g);
		if (!rc)
			rc = meta_qidx_update(m, txn, &k, g ? NULL : &ov, &nv);
		if (!rc)
			rc = meta_mdb_err(mdb_put(txn, m->db_rows, &k, &nv, 0));
	}
out:
	free(acc);
	free(row.f);
	free(vals.p);
	free(rec.p);
	return rc;
}

/* Whether the "types" object of a line names field as a float (the
 * writer's hint; MV_NULL when absent). */
static enum mval_type line_hint(const cJSON *types, const char *field)
{
	const cJSON *ty = cJSON_GetObjectItemCaseSensitive(types, field);
	enum mval_type t = MV_NULL;

	if (cJSON_IsString(ty) && mval_type_parse(ty->valuestring, &t) != 0)
		t = MV_NULL;
	return t;
}

/* Merge one line of a log or a checkpoint.  Formats (meta_int.h): a
 * grouped log line ("set"), a checkpoint row ("f": {field: [t, w, v]}),
 * or one change of the earlier format ("field" with "new" or "v").
 * *skip set for a line that is none of these. */
static int merge_line(struct meta *m, MDB_txn *txn, const cJSON *j,
		      bool *changed, bool *skip)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "t");
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "w");
	const cJSON *path = cJSON_GetObjectItemCaseSensitive(j, "path");
	const cJSON *set = cJSON_GetObjectItemCaseSensitive(j, "set");
	const cJSON *ckf = cJSON_GetObjectItemCaseSensitive(j, "f");
	const cJSON *types = cJSON_GetObjectItemCaseSensitive(j, "types");
	struct meta_mchange one, *c = &one;
	const cJSON *it;
	size_t n = 0;
	int rc;

	*skip = true;
	if (!cJSON_IsString(path))
		return 0;
	if (cJSON_IsObject(set) || cJSON_IsObject(ckf)) {
		const cJSON *o = cJSON_IsObject(set) ? set : ckf;
		if (o == set && (!cJSON_IsNumber(t) || !cJSON_IsString(w)))
			return 0;
		c = calloc((size_t)cJSON_GetArraySize(o) + 1, sizeof(*c));
		if (!c)
			return DMFS_ERR_NOMEM;
		cJSON_ArrayForEach(it, o)
		{
			struct meta_mchange *x = &c[n];
			x->field = it->string;
			x->hint = line_hint(types, it->string);
			if (o == set) {
				x->t = (int64_t)t->valuedouble;
				x->w = w->valuestring;
				x->val = it;
			} else {
				const cJSON *ft = cJSON_GetArrayItem(it, 0);
				const cJSON *fw = cJSON_GetArrayItem(it, 1);
				if (!cJSON_IsArray(it) ||
				    cJSON_GetArraySize(it) != 3 ||
				    !cJSON_IsNumber(ft) || !cJSON_IsString(fw))
					continue;
				x->t = (int64_t)ft->valuedouble;
				x->w = fw->valuestring;
				x->val = cJSON_GetArrayItem(it, 2);
			}
			n++;
		}
	} else {
		const cJSON *field = cJSON_GetObjectItemCaseSensitive(j, "field");
		const cJSON *val = cJSON_GetObjectItemCaseSensitive(j, "new");
		if (!val)
			val = cJSON_GetObjectItemCaseSensitive(j, "v");
		if (!cJSON_IsNumber(t) || !cJSON_IsString(w) ||
		    !cJSON_IsString(field) || !val)
			return 0;
		one = (struct meta_mchange){
		    .field = field->valuestring,
		    .t = (int64_t)t->valuedouble,
		    .w = w->valuestring,
		    .val = val,
		    .hint = line_hint(j, "type")};
		n = 1;
	}
	*skip = false;
	rc = meta_merge_row(m, txn, path->valuestring, c, n, changed);
	if (c != &one)
		free(c);
	return rc;
}

/* Merge one JSONL object (a log, or a checkpoint's rows) in txn; lines
 * that are not changes are skipped with a log line. */
static int merge_text(struct meta *m, MDB_txn *txn, const char *name,
		      const char *text, size_t len, bool *changed)
{
	const char *p = text, *end = text + len;
	size_t lineno = 0;
	int rc = 0;

	while (!rc && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		cJSON *j;
		bool skip = true;
		lineno++;
		if (le == p) {
			p = le + 1;
			continue;
		}
		j = cJSON_ParseWithLength(p, (size_t)(le - p));
		p = le + 1;
		if (j &&
		    cJSON_GetObjectItemCaseSensitive(j, "dmfs_checkpoint")) {
			cJSON_Delete(j);
			continue; /* the header */
		}
		if (j)
			rc = merge_line(m, txn, j, changed, &skip);
		if (!rc && skip)
			dmfs_log(DMFS_LOG_WARN,
				 "metadata: %s line %zu: not a change: skipped",
				 name, lineno);
		cJSON_Delete(j);
	}
	return rc;
}

/* --- listing --- */

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct list_ctx {
	const char *prefix;
	size_t plen;
	struct names *ns;
};

/* dmfs_store_list_each's callback: keep o's name when it is a .jsonl
 * object directly under the prefix.  0 or DMFS_ERR_*. */
static int list_one(void *ctx, const struct dmfs_obj_info *o)
{
	struct list_ctx *l = ctx;
	struct names *ns = l->ns;
	const char *key = o->key, *nm = key + l->plen;
	size_t kl = strlen(key);

	if (strncmp(key, l->prefix, l->plen) || strchr(nm, '/') ||
	    kl < l->plen + 7 || strcmp(key + kl - 6, ".jsonl"))
		return 0;
	return names_add(ns, nm);
}

/* The names (without prefix) of the .jsonl objects under prefix, sorted. */
static int list_names(struct meta *m, const char *prefix, struct names *ns,
		      char *msg, size_t msgsz)
{
	struct list_ctx l = {
	    .prefix = prefix, .plen = strlen(prefix), .ns = ns};
	struct dmfs_err_detail d;
	int rc;

	dmfs_err_detail_clear(&d);
	rc = dmfs_store_list_each(m->st, prefix, NULL, list_one, &l, &d);
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

/* The checkpoint text: a header line, then one line per path (each field
 * with its time and writer, removals as null). */
static int checkpoint_text(struct meta *m, struct meta_buf *b)
{
	MDB_txn *txn;
	MDB_cursor *cur = NULL;
	MDB_val k = {META_SID_LEN, m->sid}, v;
	struct meta_rowrec row = {0};
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
		rc = mdb_cursor_open(txn, m->db_rows, &cur);
	if (!rc)
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	/* One line per path: {"path":P,"f":{F:[T,W,V],...},"types":...}. */
	while (!rc && !b->err && k.mv_size > META_SID_LEN &&
	       !memcmp(k.mv_data, m->sid, META_SID_LEN)) {
		bool any = false;
		if (meta_row_decode(&v, &row)) {
			rc = MDB_CORRUPTED;
			break;
		}
		meta_buf_puts(b, "{\"path\":");
		meta_buf_jstr(b, (char *)k.mv_data + META_SID_LEN,
			      k.mv_size - META_SID_LEN);
		meta_buf_puts(b, ",\"f\":{");
		for (size_t i = 0; i < row.n; i++) {
			const struct meta_rf *f = &row.f[i];
			if (i)
				meta_buf_put(b, ",", 1);
			meta_buf_jstr(b, f->name, f->nlen);
			meta_buf_puts(b, ":[");
			meta_buf_i64(b, f->t);
			meta_buf_put(b, ",", 1);
			meta_buf_jstr(b, f->w, f->wlen);
			meta_buf_put(b, ",", 1);
			meta_buf_stored_json(b, f->type, f->val, f->vlen);
			meta_buf_put(b, "]", 1);
		}
		meta_buf_put(b, "}", 1);
		for (size_t i = 0; i < row.n; i++) {
			const struct meta_rf *f = &row.f[i];
			if (f->type != MV_FLOAT)
				continue;
			meta_buf_puts(b, any ? "," : ",\"types\":{");
			any = true;
			meta_buf_jstr(b, f->name, f->nlen);
			meta_buf_puts(b, ":\"float\"");
		}
		meta_buf_puts(b, any ? "}}\n" : "}\n");
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	free(row.f);
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

/* Report one change of a log line to cb; values that cannot be read are
 * skipped.  cb's result. */
static int history_one(const char *path, const char *field,
		       const cJSON *newj, const cJSON *oldj,
		       enum mval_type hint, int64_t t, const char *w,
		       const char *who,
		       int (*cb)(void *ctx, const struct meta_change *c),
		       void *ctx)
{
	struct mval nv, ov;
	int rc;

	/* The old value has the field's type too (or is an int in a float
	 * field). */
	if (history_value(newj, hint, &nv))
		return 0;
	if (history_value(oldj, hint, &ov)) {
		mval_clear(&nv);
		return 0;
	}
	struct meta_change c = {.path = path,
				.field = field,
				.old_v = &ov,
				.new_v = &nv,
				.time_us = t,
				.writer = w,
				.who = who};
	rc = cb(ctx, &c);
	mval_clear(&nv);
	mval_clear(&ov);
	return rc;
}

/* The changes of one log line (either format) to cb. */
static int history_line(const cJSON *j, const char *path,
			int (*cb)(void *ctx, const struct meta_change *c),
			void *ctx)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "t");
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "w");
	const cJSON *who = cJSON_GetObjectItemCaseSensitive(j, "who");
	const cJSON *pa = cJSON_GetObjectItemCaseSensitive(j, "path");
	const cJSON *set = cJSON_GetObjectItemCaseSensitive(j, "set");
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "field");
	const char *whos = cJSON_IsString(who) ? who->valuestring : "";
	const cJSON *it;
	int rc = 0;

	if (!cJSON_IsNumber(t) || !cJSON_IsString(w) || !cJSON_IsString(pa) ||
	    (path && strcmp(path, pa->valuestring)))
		return 0;
	if (cJSON_IsObject(set)) {
		const cJSON *types = cJSON_GetObjectItemCaseSensitive(j, "types");
		const cJSON *old = cJSON_GetObjectItemCaseSensitive(j, "old");
		cJSON_ArrayForEach(it, set)
		{
			rc = history_one(
			    pa->valuestring, it->string, it,
			    cJSON_GetObjectItemCaseSensitive(old, it->string),
			    line_hint(types, it->string),
			    (int64_t)t->valuedouble, w->valuestring, whos, cb,
			    ctx);
			if (rc)
				break;
		}
		return rc;
	}
	if (!cJSON_IsString(f))
		return 0;
	return history_one(pa->valuestring, f->valuestring,
			   cJSON_GetObjectItemCaseSensitive(j, "new"),
			   cJSON_GetObjectItemCaseSensitive(j, "old"),
			   line_hint(j, "type"), (int64_t)t->valuedouble,
			   w->valuestring, whos, cb, ctx);
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
			p = le + 1;
			if (j)
				rc = history_line(j, path, cb, ctx);
			cJSON_Delete(j);
		}
		free(text);
	}
	names_free(&ns);
	return rc;
}
