/*
 * fs_query.c - the queries/ namespace: metadata queries as directories.
 *
 *   queries/NAME/            a saved query (.dmfs/queries/NAME.json, on
 *                            every mount): the matching live files at
 *                            their own relative paths, read-only
 *   queries/NAME/.query      its expression; write one to change it
 *   queries/NAME/.results.jsonl  path + metadata of every match
 *   queries/@/ENCODED/       an ad-hoc query: ENCODED is the expression,
 *                            percent-encoded (man dmfs-query(7))
 *
 * `mkdir queries/NAME` makes an empty query (only on this mount) until an
 * expression is written to .query, which saves it in the bucket; `rmdir`
 * deletes it.  The control files are hidden from readdir (open by name),
 * so `find queries/NAME` lists exactly the matches.
 *
 * Results are computed on demand (one walk of the live listing joined with
 * the metadata table) and kept for the refresh interval, or until the
 * metadata changes on this mount or is merged from another one (meta_gen),
 * in a small cache.  Saved expressions are cached for the same interval.
 * Both caches are protected by qc->lock, held while a query runs, so a
 * directory listed by ten readers is computed once.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmfs/fs.h"
#include "dmfs/log.h"
#include "dmfs/metaq.h"

#define QRES_SLOTS 8
#define SAVED_SLOTS 64
#define QUERY_DOC_MAX (64u * 1024)

struct qhit {
	char *path;
	uint64_t size;
	int64_t mtime;
};

struct qres {
	char *expr; /* the key; NULL: free slot */
	unsigned gen;
	double at;
	struct qhit *v; /* sorted by path */
	size_t n, cap;
	int refs; /* readers; freed when 0 and evicted */
	bool evicted;
};

struct qsaved {
	char *name; /* NULL: free slot */
	char *expr; /* NULL: made by mkdir, no expression yet */
	double at;
	bool pending; /* mkdir'ed here, not in the bucket */
};

struct fs_qcache {
	pthread_mutex_t lock;
	struct qres *res[QRES_SLOTS];	  /* protected by lock */
	struct qsaved saved[SAVED_SLOTS]; /* protected by lock */
};

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double ttl(struct dmfs_fs *fs)
{
	return fs->opts->refresh > 0 ? fs->opts->refresh : fs->opts->stat_ttl;
}

int fs_query_init(struct dmfs_fs *fs)
{
	fs->qc = calloc(1, sizeof(*fs->qc));
	if (!fs->qc)
		return DMFS_ERR_NOMEM;
	pthread_mutex_init(&fs->qc->lock, NULL);
	return 0;
}

static void qres_free(struct qres *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].path);
	free(r->v);
	free(r->expr);
	free(r);
}

void fs_query_free(struct dmfs_fs *fs)
{
	if (!fs->qc)
		return;
	for (int i = 0; i < QRES_SLOTS; i++)
		qres_free(fs->qc->res[i]);
	for (int i = 0; i < SAVED_SLOTS; i++) {
		free(fs->qc->saved[i].name);
		free(fs->qc->saved[i].expr);
	}
	pthread_mutex_destroy(&fs->qc->lock);
	free(fs->qc);
	fs->qc = NULL;
}

/* --- results --- */

static int collect(void *ctx, const struct metaq_hit *h)
{
	struct qres *r = ctx;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 256;
		struct qhit *v = realloc(r->v, cap * sizeof(*v));
		if (!v)
			return DMFS_ERR_NOMEM;
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n].path = strdup(h->path);
	if (!r->v[r->n].path)
		return DMFS_ERR_NOMEM;
	r->v[r->n].size = h->e->size;
	r->v[r->n].mtime = h->e->mtime;
	r->n++;
	return 0;
}

static void release(struct dmfs_fs *fs, struct qres *r)
{
	pthread_mutex_lock(&fs->qc->lock);
	bool gone = --r->refs == 0 && r->evicted;
	pthread_mutex_unlock(&fs->qc->lock);
	if (gone)
		qres_free(r);
}

/* Drop slot i (caller holds the lock). */
static void evict(struct fs_qcache *qc, int i)
{
	struct qres *r = qc->res[i];
	qc->res[i] = NULL;
	if (!r)
		return;
	if (r->refs)
		r->evicted = true;
	else
		qres_free(r);
}

/*
 * The results of expr, fresh enough: 0 with *out referenced (release it),
 * or -errno with the reason in .dmfs/last-error.
 */
static int results(struct dmfs_fs *fs, const char *expr, struct qres **out)
{
	struct fs_qcache *qc = fs->qc;
	unsigned gen = atomic_load(&fs->meta_gen);
	struct capture_env env = fs_capture_env(fs);
	struct query *q = NULL;
	struct qres *r = NULL;
	char msg[2048];
	int rc, slot = 0;
	double t = now_mono();

	pthread_mutex_lock(&qc->lock);
	for (int i = 0; i < QRES_SLOTS; i++) {
		struct qres *c = qc->res[i];
		if (c && !strcmp(c->expr, expr)) {
			if (c->gen == gen && t - c->at < ttl(fs)) {
				c->refs++;
				*out = c;
				pthread_mutex_unlock(&qc->lock);
				return 0;
			}
			slot = i;
			break;
		}
		if (!c || (qc->res[slot] && c->at < qc->res[slot]->at))
			slot = i;
	}
	evict(qc, slot);
	rc = query_parse(expr, &q, msg, sizeof(msg));
	r = rc ? NULL : calloc(1, sizeof(*r));
	if (!rc && (!r || !(r->expr = strdup(expr))))
		rc = DMFS_ERR_NOMEM;
	env.meta = NULL;
	if (!rc)
		rc = metaq_run(&env, fs->meta, "live", q, collect, r, msg,
			       sizeof(msg));
	if (!rc) {
		/* The tree is walked in key order, which is path order. */
		r->gen = gen;
		r->at = t;
		r->refs = 1;
		qc->res[slot] = r;
		*out = r;
	}
	pthread_mutex_unlock(&qc->lock);
	query_free(q);
	if (rc) {
		qres_free(r);
		fs_set_last_error(fs, "query %s: %s", expr, msg);
		return rc == DMFS_ERR_INVAL ? -EINVAL : -dmfs_err_to_errno(rc);
	}
	return 0;
}

/* Index of the first hit with path >= p. */
static size_t lower_bound(const struct qres *r, const char *p)
{
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (strcmp(r->v[mid].path, p) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* --- saved queries --- */

/* The expression of saved query name into *expr (caller frees; NULL for
 * a pending mkdir).  0, or -ENOENT. */
static int saved_expr(struct dmfs_fs *fs, const char *name, char **expr)
{
	struct fs_qcache *qc = fs->qc;
	struct qsaved *s = NULL, *free_slot = NULL, *oldest = NULL;
	double t = now_mono();
	char *loaded = NULL;
	int rc;

	*expr = NULL;
	pthread_mutex_lock(&qc->lock);
	for (int i = 0; i < SAVED_SLOTS; i++) {
		struct qsaved *c = &qc->saved[i];
		if (c->name && !strcmp(c->name, name))
			s = c;
		else if (!c->name && !free_slot)
			free_slot = c;
		else if (c->name && !c->pending &&
			 (!oldest || c->at < oldest->at))
			oldest = c;
	}
	if (s && (s->pending || t - s->at < ttl(fs))) {
		rc = 0;
		if (s->expr && !(*expr = strdup(s->expr)))
			rc = -ENOMEM;
		pthread_mutex_unlock(&qc->lock);
		return rc;
	}
	pthread_mutex_unlock(&qc->lock);
	rc = metaq_load(fs->store, name, &loaded);
	pthread_mutex_lock(&qc->lock);
	if (!s)
		s = free_slot ? free_slot : oldest;
	if (s && (!s->name || strcmp(s->name, name))) {
		free(s->name);
		free(s->expr);
		memset(s, 0, sizeof(*s));
		s->name = strdup(name);
	}
	if (s && s->name && !rc) {
		free(s->expr);
		s->expr = strdup(loaded);
		s->at = t;
	} else if (s && s->name) {
		/* gone from the bucket (or unreadable): forget it */
		free(s->name);
		free(s->expr);
		memset(s, 0, sizeof(*s));
	}
	pthread_mutex_unlock(&qc->lock);
	if (rc) {
		free(loaded);
		return rc == DMFS_ERR_NOT_FOUND ? -ENOENT
						: -dmfs_err_to_errno(rc);
	}
	*expr = loaded;
	return 0;
}

/* Remember name's expression (NULL: pending mkdir) or forget it. */
static void saved_set(struct dmfs_fs *fs, const char *name, const char *expr,
		      bool pending, bool forget)
{
	struct fs_qcache *qc = fs->qc;
	struct qsaved *s = NULL;

	pthread_mutex_lock(&qc->lock);
	for (int i = 0; i < SAVED_SLOTS && !s; i++)
		if (qc->saved[i].name && !strcmp(qc->saved[i].name, name))
			s = &qc->saved[i];
	for (int i = 0; i < SAVED_SLOTS && !s && !forget; i++)
		if (!qc->saved[i].name)
			s = &qc->saved[i];
	if (s) {
		free(s->name);
		free(s->expr);
		memset(s, 0, sizeof(*s));
		if (!forget) {
			s->name = strdup(name);
			s->expr = expr ? strdup(expr) : NULL;
			s->pending = pending;
			s->at = now_mono();
		}
	}
	pthread_mutex_unlock(&qc->lock);
}

/* --- paths --- */

struct qpath {
	char name[256];	  /* the saved query, or "" for ad-hoc */
	char *expr;	  /* owned; NULL: pending or none */
	const char *rest; /* inside the query dir: "", ".query", "a/b" */
	bool at_root;	  /* queries/ itself */
	bool adhoc_root;  /* queries/@ */
};

/* Split a path inside queries/ ("" is queries/ itself).  0 or -errno. */
static int qparse(struct dmfs_fs *fs, const char *sub, struct qpath *qp)
{
	const char *slash;
	size_t n;

	memset(qp, 0, sizeof(*qp));
	if (!*sub) {
		qp->at_root = true;
		return 0;
	}
	if (!strcmp(sub, "@")) {
		qp->adhoc_root = true;
		return 0;
	}
	if (!strncmp(sub, "@/", 2)) {
		const char *enc = sub + 2;
		char tmp[4096];
		slash = strchr(enc, '/');
		n = slash ? (size_t)(slash - enc) : strlen(enc);
		if (n >= sizeof(tmp))
			return -ENAMETOOLONG;
		memcpy(tmp, enc, n);
		tmp[n] = '\0';
		if (query_url_decode(tmp, &qp->expr))
			return -ENOENT;
		qp->rest = slash ? slash + 1 : "";
		return 0;
	}
	slash = strchr(sub, '/');
	n = slash ? (size_t)(slash - sub) : strlen(sub);
	if (n >= sizeof(qp->name))
		return -ENAMETOOLONG;
	memcpy(qp->name, sub, n);
	qp->name[n] = '\0';
	qp->rest = slash ? slash + 1 : "";
	if (metaq_check_name(qp->name, NULL, 0))
		return -ENOENT;
	return saved_expr(fs, qp->name, &qp->expr);
}

static bool is_ctl(const char *rest)
{
	return !strcmp(rest, ".query") || !strcmp(rest, ".results.jsonl");
}

int fs_query_getattr(struct dmfs_fs *fs, const char *sub, struct stat *st)
{
	struct qpath qp;
	struct qres *r = NULL;
	int rc = qparse(fs, sub, &qp);

	if (rc)
		return rc;
	if (qp.at_root || qp.adhoc_root || !*qp.rest) {
		fs_fill_dir_stat(fs, st, qp.at_root ? 0755 : 0555);
		goto out;
	}
	if (is_ctl(qp.rest)) {
		size_t len = !strcmp(qp.rest, ".query") && qp.expr
				 ? strlen(qp.expr) + 1
				 : 0;
		fs_fill_file_stat(
		    fs, st,
		    !strcmp(qp.rest, ".query") && qp.name[0] ? 0644 : 0444, len,
		    time(NULL));
		goto out;
	}
	if (!qp.expr) {
		rc = -ENOENT;
		goto out;
	}
	rc = results(fs, qp.expr, &r);
	if (rc)
		goto out;
	size_t i = lower_bound(r, qp.rest), n = strlen(qp.rest);
	if (i < r->n && !strcmp(r->v[i].path, qp.rest)) {
		fs_fill_file_stat(fs, st, 0444, r->v[i].size, r->v[i].mtime);
	} else {
		/* a directory when some match lies below it */
		for (; i < r->n && !strncmp(r->v[i].path, qp.rest, n); i++)
			if (r->v[i].path[n] == '/')
				break;
		if (i < r->n && !strncmp(r->v[i].path, qp.rest, n) &&
		    r->v[i].path[n] == '/')
			fs_fill_dir_stat(fs, st, 0555);
		else
			rc = -ENOENT;
	}
	release(fs, r);
out:
	free(qp.expr);
	return rc;
}

struct list_ctx {
	void *buf;
	fuse_fill_dir_t filler;
	struct dmfs_fs *fs;
	char **names; /* pending names already listed */
};

static int fill_name(void *ctx, const char *name)
{
	struct list_ctx *l = ctx;
	struct stat st;
	fs_fill_dir_stat(l->fs, &st, 0555);
	l->filler(l->buf, name, &st, 0, FUSE_FILL_DIR_PLUS);
	return 0;
}

int fs_query_readdir(struct dmfs_fs *fs, const char *sub, void *buf,
		     fuse_fill_dir_t filler)
{
	struct list_ctx l = {.buf = buf, .filler = filler, .fs = fs};
	struct qpath qp;
	struct qres *r = NULL;
	int rc = qparse(fs, sub, &qp);

	if (rc)
		return rc;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	if (qp.adhoc_root)
		goto out;
	if (qp.at_root) {
		/* pending ones first (they are not in the bucket) */
		pthread_mutex_lock(&fs->qc->lock);
		for (int i = 0; i < SAVED_SLOTS; i++)
			if (fs->qc->saved[i].name && fs->qc->saved[i].pending)
				fill_name(&l, fs->qc->saved[i].name);
		pthread_mutex_unlock(&fs->qc->lock);
		rc = metaq_list(fs->store, fill_name, &l);
		if (rc) {
			fs_set_last_error(fs,
					  "queries/: listing saved "
					  "queries: %s",
					  dmfs_strerror(rc));
			rc = -dmfs_err_to_errno(rc);
		}
		goto out;
	}
	if (is_ctl(qp.rest)) {
		rc = -ENOTDIR;
		goto out;
	}
	if (!qp.expr)
		goto out; /* a new, empty query */
	rc = results(fs, qp.expr, &r);
	if (rc)
		goto out;
	char prefix[4200];
	snprintf(prefix, sizeof(prefix), "%s%s", qp.rest, *qp.rest ? "/" : "");
	size_t pl = strlen(prefix), i = lower_bound(r, prefix);
	char last[4200] = "";
	bool any = !*qp.rest;
	for (; i < r->n && !strncmp(r->v[i].path, prefix, pl); i++) {
		const char *child = r->v[i].path + pl;
		const char *slash = strchr(child, '/');
		size_t cn = slash ? (size_t)(slash - child) : strlen(child);
		struct stat st;
		char name[4200];
		any = true;
		if (cn >= sizeof(name))
			continue;
		memcpy(name, child, cn);
		name[cn] = '\0';
		if (!strcmp(name, last))
			continue;
		snprintf(last, sizeof(last), "%s", name);
		if (slash)
			fs_fill_dir_stat(fs, &st, 0555);
		else
			fs_fill_file_stat(fs, &st, 0444, r->v[i].size,
					  r->v[i].mtime);
		filler(buf, name, &st, 0, FUSE_FILL_DIR_PLUS);
	}
	if (!any)
		rc = -ENOENT;
	release(fs, r);
out:
	free(qp.expr);
	return rc;
}

int fs_query_file_key(struct dmfs_fs *fs, const char *sub, char *key,
		      size_t keysz)
{
	struct qpath qp;
	struct stat st;
	int rc = qparse(fs, sub, &qp);

	if (!rc &&
	    (qp.at_root || qp.adhoc_root || !*qp.rest || is_ctl(qp.rest)))
		rc = -ENODATA;
	free(qp.expr);
	if (!rc)
		rc = fs_query_getattr(fs, sub, &st);
	if (!rc && !S_ISREG(st.st_mode))
		rc = -ENODATA;
	if (!rc && (size_t)snprintf(key, keysz, "%s", qp.rest) >= keysz)
		rc = -ENAMETOOLONG;
	return rc;
}

int fs_query_open(struct dmfs_fs *fs, const char *sub,
		  struct fuse_file_info *fi, struct fs_handle *h)
{
	struct qpath qp;
	int acc = fi->flags & O_ACCMODE;
	int rc = qparse(fs, sub, &qp);

	if (rc)
		return rc;
	h->ns = NS_QUERY;
	if (qp.at_root || qp.adhoc_root || !*qp.rest) {
		rc = -EISDIR;
	} else if (!strcmp(qp.rest, ".query")) {
		if (acc != O_RDONLY && !qp.name[0])
			rc = -EROFS; /* an ad-hoc query is its name */
		else if (!(h->key = strdup(qp.name)))
			rc = -ENOMEM;
		else if (acc != O_WRONLY && qp.expr &&
			 asprintf(&h->data, "%s\n", qp.expr) < 0)
			rc = -ENOMEM;
		h->len = h->data ? strlen(h->data) : 0;
		h->ctl = ".query";
		fi->direct_io = 1;
	} else if (!strcmp(qp.rest, ".results.jsonl")) {
		if (acc != O_RDONLY)
			rc = -EROFS;
		else if (!qp.expr)
			h->data = strdup(""), h->len = 0;
		else {
			struct query *q = NULL;
			char msg[2048];
			rc = query_parse(qp.expr, &q, msg, sizeof(msg));
			if (rc) {
				fs_set_last_error(fs, "query %s: %s", qp.expr,
						  msg);
				rc = -EINVAL;
			} else {
				rc = fs_meta_export(fs, "live", q, true,
						    &h->data, &h->len);
			}
			query_free(q);
		}
		fi->direct_io = 1;
	} else if (acc != O_RDONLY) {
		rc = -EROFS;
	} else {
		/* A match: the live file itself, read-only. */
		struct stat st;
		rc = fs_query_getattr(fs, sub, &st);
		if (!rc && S_ISDIR(st.st_mode))
			rc = -EISDIR;
		if (!rc) {
			h->ns = NS_LIVE;
			rc = fs_live_open(fs, qp.rest, fi, h);
		}
	}
	free(qp.expr);
	return rc;
}

int fs_query_write(struct dmfs_fs *fs, struct fs_handle *h, const char *buf,
		   size_t size, off_t off)
{
	struct query *q = NULL;
	char msg[2048];
	int rc;

	if (!h->ctl || strcmp(h->ctl, ".query"))
		return -EROFS;
	rc = fs_doc_append(h, buf, size, off, QUERY_DOC_MAX);
	if (rc < 0 || h->wbuf[h->wlen - 1] != '\n')
		return rc;
	/* A complete line (echo EXPR > .query): check it now, so the
	 * write fails where a shell sees it; close(2) saves it. */
	if (query_parse(h->wbuf, &q, msg, sizeof(msg)) ||
	    metaq_check(fs->meta, "live", q, msg, sizeof(msg))) {
		fs_set_last_error(fs, "queries/%s/.query: %s", h->key, msg);
		h->written = false;
		h->wlen = 0;
		rc = -EINVAL;
	}
	query_free(q);
	return rc;
}

int fs_query_flush(struct dmfs_fs *fs, struct fs_handle *h)
{
	struct query *q = NULL;
	char msg[2048];
	int rc;

	if (!h->written || !h->ctl || strcmp(h->ctl, ".query"))
		return 0;
	h->written = false;
	/* one expression: trailing newlines are the shell's */
	while (h->wlen &&
	       (h->wbuf[h->wlen - 1] == '\n' || h->wbuf[h->wlen - 1] == '\r'))
		h->wbuf[--h->wlen] = '\0';
	rc = query_parse(h->wbuf ? h->wbuf : "", &q, msg, sizeof(msg));
	if (!rc)
		rc = metaq_check(fs->meta, "live", q, msg, sizeof(msg));
	if (!rc)
		rc = metaq_save(fs->store, h->key, h->wbuf, msg, sizeof(msg));
	query_free(q);
	if (rc) {
		fs_set_last_error(fs, "queries/%s/.query: %s", h->key, msg);
		h->wlen = 0;
		return rc == DMFS_ERR_INVAL ? -EINVAL : -dmfs_err_to_errno(rc);
	}
	saved_set(fs, h->key, h->wbuf, false, false);
	h->wlen = 0;
	return 0;
}

int fs_query_truncate(struct dmfs_fs *fs, const char *sub)
{
	struct qpath qp;
	int rc = qparse(fs, sub, &qp);

	if (!rc && (strcmp(qp.rest, ".query") || !qp.name[0]))
		rc = -EROFS;
	free(qp.expr);
	return rc;
}

int fs_query_mkdir(struct dmfs_fs *fs, const char *sub)
{
	char msg[512];
	char *expr = NULL;

	if (strchr(sub, '/') || !*sub)
		return -EROFS;
	if (metaq_check_name(sub, msg, sizeof(msg))) {
		fs_set_last_error(fs, "queries/%s: %s", sub, msg);
		return -EINVAL;
	}
	int rc = saved_expr(fs, sub, &expr);
	free(expr);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	saved_set(fs, sub, NULL, true, false);
	return 0;
}

int fs_query_rmdir(struct dmfs_fs *fs, const char *sub)
{
	char *expr = NULL;
	int rc;

	if (strchr(sub, '/') || !*sub || sub[0] == '@')
		return -EROFS;
	rc = saved_expr(fs, sub, &expr);
	free(expr);
	if (rc)
		return rc;
	rc = metaq_delete(fs->store, sub);
	if (rc) {
		fs_set_last_error(fs, "queries/%s: %s", sub, dmfs_strerror(rc));
		return -dmfs_err_to_errno(rc);
	}
	saved_set(fs, sub, NULL, false, true);
	return 0;
}
