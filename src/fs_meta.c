/*
 * fs_meta.c - metadata through the mount: user.* xattrs on live files,
 * the DIR/.dmfs.meta control file, .dmfs/schema, and the background
 * thread that shares changes through the bucket.
 *
 * Writes commit locally first (meta_apply: validated, one LMDB
 * transaction, queued durably), so setfattr returns as soon as the value
 * is safe on this machine; the sync thread sends the queue to the bucket
 * about once a second and merges other writers' logs every `refresh`
 * seconds.  `echo refresh > .dmfs/ctl` does both at once.
 *
 * Locking: struct meta is safe for concurrent use (LMDB transactions);
 * meta_lock only keeps flush and refresh (network I/O) from running twice
 * at once, and is never held by the xattr and control-file operations.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>

#include "dmfs/fs.h"
#include "dmfs/log.h"
#include "dmfs/metaq.h"

/* --- sync with the bucket --- */

int fs_meta_sync(struct dmfs_fs *fs, bool refresh, char *msg, size_t msgsz)
{
	bool changed = false;
	int rc;

	pthread_mutex_lock(&fs->meta_lock);
	rc = meta_flush(fs->meta, msg, msgsz);
	if (!rc && refresh)
		rc = meta_refresh(fs->meta, &changed, msg, msgsz);
	pthread_mutex_unlock(&fs->meta_lock);
	if (changed)
		atomic_fetch_add(&fs->meta_gen, 1);
	return rc;
}

static void *sync_thread(void *arg)
{
	struct dmfs_fs *fs = arg;
	double refresh = fs->opts->refresh, since = 0;
	char msg[512];

	pthread_mutex_lock(&fs->sync_lock);
	while (!fs->sync_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&fs->sync_cond, &fs->sync_lock, &ts);
		if (fs->sync_stop)
			break;
		pthread_mutex_unlock(&fs->sync_lock);
		since += 1;
		bool want_refresh = refresh > 0 && since >= refresh;
		if (want_refresh)
			since = 0;
		if ((meta_pending(fs->meta) || want_refresh) &&
		    fs_meta_sync(fs, want_refresh, msg, sizeof(msg)))
			dmfs_log(DMFS_LOG_WARN, "metadata: %s (will retry)",
				 msg);
		pthread_mutex_lock(&fs->sync_lock);
	}
	pthread_mutex_unlock(&fs->sync_lock);
	return NULL;
}

int fs_meta_start(struct dmfs_fs *fs)
{
	pthread_mutex_init(&fs->meta_lock, NULL);
	pthread_mutex_init(&fs->sync_lock, NULL);
	pthread_cond_init(&fs->sync_cond, NULL);
	if (pthread_create(&fs->sync_tid, NULL, sync_thread, fs) != 0)
		return DMFS_ERR_NOMEM;
	fs->sync_running = true;
	return 0;
}

void fs_meta_stop(struct dmfs_fs *fs)
{
	char msg[512];

	if (!fs->sync_running)
		return;
	pthread_mutex_lock(&fs->sync_lock);
	fs->sync_stop = true;
	pthread_cond_signal(&fs->sync_cond);
	pthread_mutex_unlock(&fs->sync_lock);
	pthread_join(fs->sync_tid, NULL);
	fs->sync_running = false;
	/* What was set just before the unmount goes out now; if it cannot,
	 * it stays queued for the next mount or dmfs command. */
	if (meta_pending(fs->meta) && fs_meta_sync(fs, false, msg, sizeof(msg)))
		dmfs_log(DMFS_LOG_WARN,
			 "metadata: %s; %llu changes stay "
			 "queued in the cache directory",
			 msg, (unsigned long long)meta_pending(fs->meta));
	pthread_mutex_destroy(&fs->meta_lock);
	pthread_mutex_destroy(&fs->sync_lock);
	pthread_cond_destroy(&fs->sync_cond);
}

/* --- applying a batch --- */

/* Apply b; on failure record why for .dmfs/last-error.  0 or -errno. */
static int apply(struct dmfs_fs *fs, const char *what, struct meta_batch *b)
{
	char msg[1024];
	int rc = meta_apply(fs->meta, b, msg, sizeof(msg));

	if (rc) {
		fs_set_last_error(fs, "%s: nothing applied: %s", what, msg);
		return -dmfs_err_to_errno(rc);
	}
	atomic_fetch_add(&fs->meta_gen, 1);
	return 0;
}

/* --- user.* xattrs on live files --- */

/* Only files carry metadata: 0, or -errno. */
static int check_file(struct dmfs_fs *fs, const char *key)
{
	struct stat st;
	int rc = fs_live_getattr(fs, key, &st);

	if (rc)
		return rc;
	return S_ISREG(st.st_mode) ? 0 : -EPERM;
}

int fs_meta_getxattr(struct dmfs_fs *fs, const char *key, const char *field,
		     char *value, size_t size)
{
	struct meta_row row = {0};
	const struct mval *v;
	char *text = NULL;
	size_t len;
	int rc = meta_get(fs->meta, key, &row);

	if (rc)
		return -dmfs_err_to_errno(rc);
	v = meta_row_get(&row, field);
	if (!v) {
		meta_row_clear(&row);
		rc = check_file(fs, key);
		return rc ? rc : -ENODATA;
	}
	rc = mval_to_text(v, &text, &len);
	meta_row_clear(&row);
	if (rc)
		return -ENOMEM;
	rc = fs_xattr_reply(text, len, value, size);
	free(text);
	return rc;
}

int fs_meta_listxattr(struct dmfs_fs *fs, const char *key, char *buf,
		      size_t *len, size_t cap)
{
	struct meta_row row = {0};
	int rc = meta_get(fs->meta, key, &row);

	if (rc)
		return -dmfs_err_to_errno(rc);
	for (size_t i = 0; !rc && i < row.n; i++) {
		size_t n = strlen(row.f[i].name) + 5;
		if (*len + n + 1 > cap) {
			rc = -E2BIG;
			break;
		}
		memcpy(buf + *len, "user.", 5);
		memcpy(buf + *len + 5, row.f[i].name, n - 5);
		buf[*len + n] = '\0';
		*len += n + 1;
	}
	meta_row_clear(&row);
	return rc;
}

/* Set (v not NULL) or remove one field of one file. */
static int set_one(struct dmfs_fs *fs, const char *key, const char *field,
		   const struct mval *v, int flags)
{
	struct meta_batch *b = NULL;
	struct meta_row row = {0};
	char what[600];
	int rc = check_file(fs, key);

	if (rc)
		return rc;
	if (flags & (XATTR_CREATE | XATTR_REPLACE) || !v) {
		rc = meta_get(fs->meta, key, &row);
		if (rc)
			return -dmfs_err_to_errno(rc);
		bool have = meta_row_get(&row, field) != NULL;
		meta_row_clear(&row);
		if ((flags & XATTR_CREATE) && have)
			return -EEXIST;
		if (((flags & XATTR_REPLACE) || !v) && !have)
			return -ENODATA;
	}
	if (meta_batch_new(&b))
		return -ENOMEM;
	snprintf(what, sizeof(what), "user.%s on live/%s", field, key);
	rc = meta_batch_add(b, key, field, v) ? -ENOMEM : apply(fs, what, b);
	meta_batch_free(b);
	return rc;
}

int fs_meta_setxattr(struct dmfs_fs *fs, const char *key, const char *field,
		     const char *value, size_t size, int flags)
{
	struct mval v = {0};
	char msg[512];
	int rc = meta_check_field_name(field, msg, sizeof(msg));

	if (!rc)
		rc = mval_from_text(value, size,
				    meta_field_type(fs->meta, field), &v, msg,
				    sizeof(msg));
	if (rc) {
		fs_set_last_error(fs, "user.%s on live/%s: %s", field, key,
				  msg);
		return rc == DMFS_ERR_TOO_BIG ? -E2BIG : -EINVAL;
	}
	rc = set_one(fs, key, field, &v, flags);
	mval_clear(&v);
	return rc;
}

int fs_meta_removexattr(struct dmfs_fs *fs, const char *key, const char *field)
{
	return set_one(fs, key, field, NULL, 0);
}

/* --- labels follow the files --- */

/* Queue the moves of one row (to NULL: its removal). */
static int move_row(struct meta_batch *b, const struct meta_row *r,
		    const char *to)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < r->n; i++) {
		rc = meta_batch_add(b, r->path, r->f[i].name, NULL);
		if (!rc && to)
			rc = meta_batch_add(b, to, r->f[i].name, &r->f[i].v);
	}
	return rc;
}

void fs_meta_moved(struct dmfs_fs *fs, const char *from, const char *to)
{
	struct meta_batch *b = NULL;
	struct meta_cursor *cur = NULL;
	struct meta_row r = {0};
	char prefix[4200], dest[8400], what[8500];
	size_t pl;
	int rc, more;

	if (meta_batch_new(&b))
		goto fail;
	/* what the target had is replaced, as an overwritten object's
	 * metadata is */
	rc = to ? meta_get(fs->meta, to, &r) : 0;
	if (!rc && r.n)
		rc = move_row(b, &r, NULL);
	meta_row_clear(&r);
	/* the file itself */
	if (!rc)
		rc = meta_get(fs->meta, from, &r);
	if (!rc && r.n)
		rc = move_row(b, &r, to);
	meta_row_clear(&r);
	/* or everything under the directory */
	snprintf(prefix, sizeof(prefix), "%s/", from);
	pl = strlen(prefix);
	if (!rc)
		rc = meta_cursor_open(fs->meta, prefix, &cur);
	while (!rc && (more = meta_cursor_next(cur, &r)) > 0) {
		snprintf(dest, sizeof(dest), "%s/%s", to ? to : "",
			 r.path + pl);
		rc = move_row(b, &r, to ? dest : NULL);
		meta_row_clear(&r);
	}
	if (!rc && more < 0)
		rc = -more;
	meta_cursor_close(cur);
	if (rc)
		goto fail;
	if (!meta_batch_count(b)) {
		meta_batch_free(b);
		return;
	}
	snprintf(what, sizeof(what), "labels of live/%s%s%s", from,
		 to ? " moving to live/" : " (removed)", to ? to : "");
	if (apply(fs, what, b) == 0) {
		meta_batch_free(b);
		return;
	}
	meta_batch_free(b);
	return; /* apply said why */
fail:
	meta_batch_free(b);
	dmfs_log(DMFS_LOG_WARN, "labels of live/%s did not follow it", from);
}

/* --- whole-document control files --- */

int fs_doc_append(struct fs_handle *h, const char *buf, size_t size, off_t off,
		  size_t max)
{
	/* Written in order (cat, cp, a shell's >): a document, not a
	 * random-access file. */
	if ((size_t)off != h->wlen)
		return -ESPIPE;
	if (h->wlen + size > max)
		return -EFBIG;
	if (h->wlen + size > h->wcap) {
		size_t cap = h->wcap ? h->wcap : 65536;
		while (cap < h->wlen + size)
			cap *= 2;
		char *n = realloc(h->wbuf, cap + 1);
		if (!n)
			return -ENOMEM;
		h->wbuf = n;
		h->wcap = cap;
	}
	memcpy(h->wbuf + h->wlen, buf, size);
	h->wlen += size;
	h->wbuf[h->wlen] = '\0';
	h->written = true;
	return (int)size;
}

/* --- DIR/.dmfs.meta --- */

struct capture_env fs_capture_env(struct dmfs_fs *fs)
{
	return (struct capture_env){
	    .st = fs->store,
	    .store_uri = fs->store_uri,
	    .mx = fs->mx,
	    .cache_dir = fs->opts->cache_dir,
	    .meta = fs->meta,
	};
}

int fs_meta_ctl_getattr(struct dmfs_fs *fs, const char *dir, struct stat *st)
{
	struct stat d;
	int rc = fs_live_getattr(fs, dir, &d);

	if (rc)
		return rc;
	if (!S_ISDIR(d.st_mode))
		return -ENOENT;
	/* Size 0: the content is made at open (direct_io). */
	fs_fill_file_stat(fs, st, fs->opts->ro ? 0444 : 0644, 0, time(NULL));
	return 0;
}

/* The rows under spec as JSON Lines into *out (caller frees). */
int fs_meta_export(struct dmfs_fs *fs, const char *spec, const struct query *q,
		   bool with_auto, char **out, size_t *len)
{
	struct capture_env env = fs_capture_env(fs);
	char msg[1024];
	FILE *f = open_memstream(out, len);
	int rc;

	if (!f)
		return -ENOMEM;
	rc = metaq_export(&env, fs->meta, spec, q, METAQ_JSONL, with_auto, f,
			  msg, sizeof(msg));
	fclose(f);
	if (rc) {
		fs_set_last_error(fs, "%s: %s", spec, msg);
		free(*out);
		*out = NULL;
		return -dmfs_err_to_errno(rc);
	}
	return 0;
}

int fs_meta_ctl_open(struct dmfs_fs *fs, const char *dir,
		     struct fuse_file_info *fi, struct fs_handle *h)
{
	struct stat st;
	char spec[4200];
	int acc = fi->flags & O_ACCMODE, rc;

	rc = fs_meta_ctl_getattr(fs, dir, &st);
	if (rc)
		return rc;
	h->ns = NS_META;
	h->key = strdup(dir);
	if (!h->key)
		return -ENOMEM;
	if (acc != O_WRONLY) {
		snprintf(spec, sizeof(spec), "live%s%s", *dir ? "/" : "", dir);
		rc = fs_meta_export(fs, spec, NULL, false, &h->data, &h->len);
		if (rc)
			return rc;
	}
	fi->direct_io = 1;
	return 0;
}

void fs_meta_ctl_release(struct fs_handle *h)
{
	metaq_parser_free(h->mp);
	meta_batch_free(h->mb);
	h->mp = NULL;
	h->mb = NULL;
}

static void ctl_name(const struct fs_handle *h, char *out, size_t outsz)
{
	snprintf(out, outsz, "live/%s%s.dmfs.meta", h->key, *h->key ? "/" : "");
}

int fs_meta_ctl_write(struct dmfs_fs *fs, struct fs_handle *h, const char *buf,
		      size_t size, off_t off)
{
	char msg[1024], what[4200];
	int rc;

	/* Written in order (cat, cp, a shell's >): a document, not a
	 * random-access file. */
	if ((size_t)off != h->wlen)
		return -ESPIPE;
	if (!h->mb && (meta_batch_new(&h->mb) ||
		       metaq_parser_new(fs->meta, h->key, h->mb, &h->mp)))
		return -ENOMEM;
	h->written = true;
	h->wlen += size;
	rc = metaq_parser_feed(h->mp, buf, size, msg, sizeof(msg));
	if (rc) {
		ctl_name(h, what, sizeof(what));
		fs_set_last_error(fs, "%s: nothing applied: %s", what, msg);
		return -dmfs_err_to_errno(rc);
	}
	return (int)size;
}

int fs_meta_ctl_flush(struct dmfs_fs *fs, struct fs_handle *h)
{
	struct capture_env env = fs_capture_env(fs);
	char msg[1024], what[4200];
	int rc;

	if (!h->written)
		return 0;
	h->written = false;
	h->wlen = 0;
	ctl_name(h, what, sizeof(what));
	rc = metaq_parser_end(h->mp, msg, sizeof(msg));
	if (!rc)
		rc = metaq_check_paths(&env, h->key, h->mb, msg, sizeof(msg));
	if (rc) {
		fs_set_last_error(fs, "%s: nothing applied: %s", what, msg);
		rc = -dmfs_err_to_errno(rc);
	} else {
		rc = apply(fs, what, h->mb);
		if (!rc)
			dmfs_log(DMFS_LOG_INFO, "%s: applied %zu changes", what,
				 meta_batch_count(h->mb));
	}
	fs_meta_ctl_release(h);
	return rc;
}

/* --- .dmfs/schema --- */

char *fs_meta_schema_text(struct dmfs_fs *fs)
{
	char *json = NULL;
	if (meta_schema_get(fs->meta, &json))
		return NULL;
	size_t n = strlen(json);
	char *nl = realloc(json, n + 2);
	if (!nl) {
		free(json);
		return NULL;
	}
	nl[n] = '\n';
	nl[n + 1] = '\0';
	return nl;
}

int fs_meta_schema_apply(struct dmfs_fs *fs, const char *text, char *msg,
			 size_t msgsz)
{
	int rc;

	pthread_mutex_lock(&fs->meta_lock);
	rc = meta_schema_set(fs->meta, text, msg, msgsz);
	pthread_mutex_unlock(&fs->meta_lock);
	if (!rc)
		atomic_fetch_add(&fs->meta_gen, 1);
	return rc;
}
