/*
 * stage.c - staged copies of files being written (see stage.h).
 *
 * Layout: CACHE_DIR/staging/ID.data holds the bytes, ID.json the sidecar
 * {"store", "key", "etag", "state", "size", "mtime", and "mode", "uid",
 * "gid" when known}; ID is unique per process and
 * file (pid, time, counter).  The sidecar is replaced atomically (write a
 * temporary, fsync, rename), so after a crash it is either the old or the
 * new one.  It is rewritten only on state changes (clean -> dirty on the
 * first write after an upload, dirty -> clean after one), not per write.
 *
 * Concurrency: sg->lock protects the table of staged files (a list; few
 * files are open for writing at once) and the counters.  Each staged file
 * has its own lock, held for every read, write, truncate and for the
 * whole of an upload, so an upload sends a consistent copy and writes
 * wait for it.  Lock order: sg->lock, then f->lock (stage_rename,
 * stage_forget, stage_get_stats); nothing takes sg->lock while holding an
 * f->lock (the counters are atomics).  So .dmfs/status waits while an
 * upload holds a file's lock.
 *
 * Failure and crash handling: the data file is flock'ed while open, so
 * stage_recover (at mount) uploads only what a dead process left.
 *
 * A write that fails (ENOSPC on a full cache disk, EIO) leaves the copy
 * with bytes the writer did not mean: a hole, a short tail.  Such a copy
 * is never uploaded: from the failed write on (f->write_err), flush,
 * fsync and close return the write's error and send nothing, so the
 * bucket keeps the old object (or none), never a truncated one.  Its
 * sidecar is unlinked at once (unlinking needs no space), so a crash
 * before close leaves nothing stage_recover would upload, and the last
 * close removes the data file, which gives the space back.  The writer
 * was told (write(2) failed) and has the source to write again; keeping
 * the broken copy would only keep the disk full.  Truncating the file to
 * at most the offset of the first failed write (O_TRUNC, ftruncate) makes
 * the copy whole again.  Data files without a sidecar that no process
 * holds are removed by stage_recover.
 */
#include "config.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dmfs/err.h"
#include "dmfs/log.h"
#include "dmfs/mindex.h"
#include "dmfs/sha256.h"
#include "dmfs/stage.h"
#include "upload.h"

#define SIDECAR_MAX 65536 /* a sidecar is a key and a few words */
#define IO_CHUNK (1u << 20)

enum st_state { ST_CLEAN, ST_DIRTY, ST_FAILED, ST_STALE };
static const char *const state_names[] = {"clean", "dirty", "failed",
					  "stale"};

struct stage_file {
	struct stage *sg;
	struct stage_file *next;   /* sg->files; protected by sg->lock */
	int refs;		   /* protected by sg->lock */
	int in_table;		   /* protected by sg->lock: reachable by key */
	pthread_mutex_t lock;
	char *key;		   /* protected by lock (and sg->lock to
				      change: both held) */
	char *base;		   /* ".../staging/ID" (no suffix); owned */
	int fd;			   /* the data file, flock'ed */
	uint64_t size;		   /* protected by lock */
	int64_t mtime;		   /* protected by lock */
	char etag[DMFS_ETAG_MAX];  /* protected by lock: what the bucket
				      has for key as far as we know; ""
				      when it had nothing */
	int check_stale;	   /* protected by lock: 0 after a rename
				      (the target is replaced on purpose) */
	enum st_state state;	   /* protected by lock */
	int forgotten;		   /* protected by lock: unlinked */
	struct dmfs_attrs attrs;   /* protected by lock: mode, uid, gid
				      to store with the upload (the mtime
				      stored is always `mtime`) */
	int write_err;		   /* protected by lock: DMFS_ERR_* of the
				      first failed write since the copy was
				      last whole; never uploaded while set */
	uint64_t write_err_off;	   /* protected by lock: its offset */
	struct dmfs_sha256_run *hash; /* protected by lock: the copy's
				      sha256 as cp fills it; NULL when out
				      of memory (then hashed at upload) */
	struct upload_stream *stream; /* protected by lock: the upload
				      begun while cp writes the file in
				      order; NULL when none */
	struct upload_stream *stream_gone; /* protected by lock: a cancelled
				      one, to reap once the lock is let go */
	int stream_refused;	   /* protected by lock: one could not
				      start; none until the file is clean */
	char stream_token[33];	   /* protected by lock: the marker of the
				      latest stream, in the sidecar ("" when
				      none) so a crash after its completion
				      knows the object for its own */
	char *stream_id;	   /* protected by lock: its multipart
				      upload, in the sidecar so a crash
				      before its completion can abort it;
				      owned, NULL when none */
};

struct stage {
	struct dmfs_store *st;	   /* borrowed */
	char *dir;
	char *store_uri;
	struct upload_opts uo;
	struct upload_caps caps;   /* uo.caps */
	struct mindex *memo;	   /* borrowed; may be NULL */
	pthread_mutex_t lock;
	struct stage_file *files;  /* protected by lock */
	atomic_ullong counter;
	atomic_ullong done, failed;
	atomic_ullong streamed;	   /* of done: sent while being written */
};

int stage_new(struct dmfs_store *st, const struct stage_opts *o,
	      struct stage **out)
{
	struct stage *sg = calloc(1, sizeof(*sg));
	if (!sg)
		return DMFS_ERR_NOMEM;
	sg->st = st;
	sg->dir = strdup(o->dir);
	sg->store_uri = strdup(o->store_uri);
	sg->uo.multipart_size = o->multipart_size;
	sg->uo.parallel = o->parallel_uploads;
	sg->uo.stream = o->stream_upload;
	pthread_mutex_init(&sg->caps.lock, NULL);
	sg->caps.cond_put = -1;
	sg->uo.caps = &sg->caps;
	sg->memo = o->memo;
	pthread_mutex_init(&sg->lock, NULL);
	if (!sg->dir || !sg->store_uri) {
		stage_free(sg);
		return DMFS_ERR_NOMEM;
	}
	if (mkdir(sg->dir, 0700) != 0 && errno != EEXIST) {
		dmfs_log(DMFS_LOG_ERROR, "staging directory %s: %s", sg->dir,
			 strerror(errno));
		stage_free(sg);
		return DMFS_ERR_IO;
	}
	*out = sg;
	return 0;
}

static void file_free(struct stage_file *f)
{
	upload_stream_cancel(f->stream);
	upload_stream_cancel(f->stream_gone);
	free(f->stream_id);
	if (f->fd >= 0)
		close(f->fd); /* drops the flock */
	dmfs_sha256_run_free(f->hash);
	pthread_mutex_destroy(&f->lock);
	free(f->key);
	free(f->base);
	free(f);
}

/* path of f's data or sidecar. */
static void path_of(const struct stage_file *f, const char *suffix,
		    char *out, size_t n)
{
	snprintf(out, n, "%s%s", f->base, suffix);
}

/* Replace the sidecar.  Under f->lock. */
static int write_sidecar(struct stage_file *f)
{
	char tmp[4096], dst[4096];
	cJSON *o = cJSON_CreateObject();
	char *txt = NULL;
	int fd = -1, rc = 0;

	path_of(f, ".json.tmp", tmp, sizeof(tmp));
	path_of(f, ".json", dst, sizeof(dst));
	if (f->write_err)
		goto out; /* a broken copy has no sidecar: never recovered */
	if (!o || !cJSON_AddStringToObject(o, "store", f->sg->store_uri) ||
	    !cJSON_AddStringToObject(o, "key", f->key) ||
	    !cJSON_AddStringToObject(o, "etag", f->etag) ||
	    !cJSON_AddStringToObject(o, "state", state_names[f->state]) ||
	    !cJSON_AddNumberToObject(o, "size", (double)f->size) ||
	    !cJSON_AddNumberToObject(o, "mtime", (double)f->mtime) ||
	    ((f->attrs.have & DMFS_ATTR_MODE) &&
	     !cJSON_AddNumberToObject(o, "mode", f->attrs.mode)) ||
	    ((f->attrs.have & DMFS_ATTR_UID) &&
	     !cJSON_AddNumberToObject(o, "uid", f->attrs.uid)) ||
	    ((f->attrs.have & DMFS_ATTR_GID) &&
	     !cJSON_AddNumberToObject(o, "gid", f->attrs.gid)) ||
	    (f->stream_token[0] &&
	     !cJSON_AddStringToObject(o, "stream", f->stream_token)) ||
	    (f->stream_id &&
	     !cJSON_AddStringToObject(o, "stream_upload", f->stream_id)) ||
	    !(txt = cJSON_PrintUnformatted(o))) {
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t len = strlen(txt);
	if (fd < 0 || write(fd, txt, len) != (ssize_t)len || fsync(fd) != 0 ||
	    rename(tmp, dst) != 0) {
		int e = errno;
		rc = e == ENOSPC || e == EDQUOT ? DMFS_ERR_NOSPC : DMFS_ERR_IO;
		dmfs_log(DMFS_LOG_ERROR, "staging sidecar %s: %s", dst,
			 strerror(e));
		unlink(tmp);
	}
out:
	if (fd >= 0)
		close(fd);
	free(txt);
	cJSON_Delete(o);
	return rc;
}

static void remove_files(struct stage_file *f)
{
	char p[4096];
	path_of(f, ".json", p, sizeof(p));
	unlink(p);
	path_of(f, ".data", p, sizeof(p));
	unlink(p);
}

static int set_state(struct stage_file *f, enum st_state s)
{
	if (f->state == s)
		return 0;
	f->state = s;
	return write_sidecar(f);
}

static struct dmfs_attrs upload_attrs(const struct stage_file *f);
static struct upload_stream *stream_drop(struct stage_file *f);

/* Give up the upload begun while writing (the file is sent whole at
 * close).  Its abort, and the wait for the parts in flight, happen in
 * unlock_reap: not while getattr and the other writers wait for f->lock.
 * Under f->lock. */
static void stream_cancel(struct stage_file *f)
{
	struct upload_stream *s = stream_drop(f);

	if (!s)
		return;
	upload_stream_cancel(f->stream_gone); /* NULL: reaped at each unlock */
	f->stream_gone = s;
}

/* Let go of f->lock, then cancel the stream stream_cancel set aside. */
static void unlock_reap(struct stage_file *f)
{
	struct upload_stream *s = f->stream_gone;

	f->stream_gone = NULL;
	pthread_mutex_unlock(&f->lock);
	upload_stream_cancel(s);
}

/* Take the stream away from f, to finish it.  Under f->lock. */
static struct upload_stream *stream_take(struct stage_file *f)
{
	struct upload_stream *s = f->stream;
	f->stream = NULL;
	return s;
}

/* Take the stream away from f, to cancel it (outside a lock that others
 * wait for): nothing of it is left to recover.  Under f->lock. */
static struct upload_stream *stream_drop(struct stage_file *f)
{
	f->stream_token[0] = '\0';
	free(f->stream_id);
	f->stream_id = NULL;
	return stream_take(f);
}

/*
 * After a write: send the parts of the file's first bytes that cp has
 * written in order, starting the stream once the file is sure to be a
 * multipart upload.  Failing to start or to go on is no error of the
 * write: close() then uploads the whole file.  Under f->lock.
 */
static void stream_grow(struct stage_file *f)
{
	struct stage *sg = f->sg;
	uint64_t done = dmfs_sha256_run_len(f->hash);
	struct dmfs_err_detail d = {0};
	int rc;

	if (!sg->uo.stream || f->forgotten || f->write_err ||
	    f->stream_refused || f->state != ST_DIRTY)
		return;
	if (!f->stream) {
		if (done <= sg->uo.multipart_size)
			return;
		struct dmfs_attrs ua = upload_attrs(f);
		rc = upload_stream_start(sg->st, f->key, f->fd, &ua, &sg->uo,
					 &f->stream, &d);
		if (rc) {
			f->stream_refused = 1;
			if (rc != DMFS_ERR_UNSUPPORTED)
				dmfs_log(DMFS_LOG_INFO, "%s: no upload while "
					 "writing (%s); it goes at close",
					 f->key, dmfs_strerror(rc));
			return;
		}
		snprintf(f->stream_token, sizeof(f->stream_token), "%s",
			 upload_stream_token(f->stream));
		free(f->stream_id);
		f->stream_id = strdup(upload_stream_id(f->stream));
		if (!f->stream_id || write_sidecar(f)) {
			stream_cancel(f);
			f->stream_refused = 1;
			return;
		}
	}
	rc = upload_stream_grow(f->stream, done);
	if (rc) {
		dmfs_log(DMFS_LOG_INFO, "%s: the upload begun while writing "
			 "stopped (%s); the file goes whole at close", f->key,
			 dmfs_strerror(rc));
		stream_cancel(f);
		f->stream_refused = 1;
	}
}

/* The bucket has the copy's bytes.  Under f->lock.  Cannot fail: when
 * the "clean" sidecar cannot be written (full disk), the old one is
 * unlinked instead, since a "dirty" one would make stage_recover upload
 * the same bytes again (and fail the stale check); without a sidecar
 * there is nothing to recover, which is right. */
static void mark_clean(struct stage_file *f)
{
	char p[4096];

	f->stream_refused = 0;
	upload_stream_cancel(stream_drop(f)); /* none: taken by the upload */
	if (set_state(f, ST_CLEAN) == 0)
		return;
	path_of(f, ".json", p, sizeof(p));
	if (unlink(p) != 0 && errno != ENOENT)
		dmfs_log(DMFS_LOG_WARN, "staging sidecar %s: %s", p,
			 strerror(errno));
}

/* A write failed with rc at off: the copy is broken (see the top of the
 * file).  Under f->lock. */
static void mark_broken(struct stage_file *f, int rc, uint64_t off)
{
	char p[4096];

	if (f->write_err) {
		if (off < f->write_err_off)
			f->write_err_off = off;
		return;
	}
	f->write_err = rc;
	f->write_err_off = off;
	stream_cancel(f);
	path_of(f, ".json", p, sizeof(p));
	if (unlink(p) != 0 && errno != ENOENT)
		dmfs_log(DMFS_LOG_WARN, "staging sidecar %s: %s", p,
			 strerror(errno));
	if (!f->forgotten)
		dmfs_log(DMFS_LOG_ERROR,
			 "%s: a write at offset %llu failed (%s): the file "
			 "will not be uploaded, the object in the bucket is "
			 "unchanged", f->key, (unsigned long long)off,
			 dmfs_strerror(rc));
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static int errno_err(int e)
{
	if (e == ENOSPC || e == EDQUOT)
		return DMFS_ERR_NOSPC;
	if (e == EFBIG)
		return DMFS_ERR_TOO_BIG; /* past the cache filesystem's limit */
	return e == EINVAL ? DMFS_ERR_INVAL : DMFS_ERR_IO;
}

/* A new, empty staged file for key, flock'ed.  Not in the table yet. */
static int file_new(struct stage *sg, const char *key, struct stage_file **out)
{
	struct stage_file *f = calloc(1, sizeof(*f));
	char p[4096];
	size_t n = strlen(sg->dir) + 64;
	int rc = 0;

	if (!f)
		return DMFS_ERR_NOMEM;
	f->fd = -1;
	f->sg = sg;
	f->check_stale = 1;
	f->mtime = now_s();
	pthread_mutex_init(&f->lock, NULL);
	f->hash = dmfs_sha256_run_new();
	f->key = strdup(key);
	f->base = malloc(n);
	if (!f->key || !f->base) {
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	/* A mount starting in another process may lock a new data file
	 * between our open and flock, taking it for a dead process's
	 * (recover_orphans) and unlinking it: then take another. */
	for (int tries = 0; tries < 3; tries++) {
		snprintf(f->base, n, "%s/%ld-%lld-%llu", sg->dir,
			 (long)getpid(), (long long)now_s(),
			 (unsigned long long)++sg->counter);
		path_of(f, ".data", p, sizeof(p));
		f->fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (f->fd < 0)
			break;
		if (flock(f->fd, LOCK_EX | LOCK_NB) == 0) {
			/* Taken and already unlinked by that mount between
			 * our open and flock: the data would have no name
			 * for crash recovery.  Take another. */
			struct stat lsb;
			if (fstat(f->fd, &lsb) != 0 || lsb.st_nlink > 0)
				break;
		} else if (errno != EWOULDBLOCK) {
			break;
		}
		close(f->fd);
		f->fd = -1;
	}
	if (f->fd < 0 || flock(f->fd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno_err(errno);
		dmfs_log(DMFS_LOG_ERROR, "staging file %s: %s", p,
			 strerror(errno));
	}
out:
	if (rc) {
		if (f->fd >= 0)
			unlink(p);
		file_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

/* The table entry for key.  Under sg->lock. */
static struct stage_file *table_find(struct stage *sg, const char *key)
{
	for (struct stage_file *f = sg->files; f; f = f->next)
		if (f->in_table && !strcmp(f->key, key))
			return f;
	return NULL;
}

static void table_remove(struct stage *sg, struct stage_file *f)
{
	for (struct stage_file **pp = &sg->files; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	f->in_table = 0;
}

int stage_find(struct stage *sg, const char *key, struct stage_file **out)
{
	pthread_mutex_lock(&sg->lock);
	struct stage_file *f = table_find(sg, key);
	if (f)
		f->refs++;
	pthread_mutex_unlock(&sg->lock);
	*out = f;
	return f != NULL;
}

/* Fill a new staged file with key's current bytes (or nothing). */
static int fill_existing(struct stage_file *f)
{
	struct dmfs_err_detail d = {0};
	struct dmfs_obj_info info = {0};
	struct stat sb;
	int rc = dmfs_store_get_to_fd(f->sg->st, f->key, NULL, f->fd, NULL,
				      &info, &d);
	if (rc == DMFS_ERR_NOT_FOUND) {
		f->etag[0] = '\0';
		return ftruncate(f->fd, 0) == 0 ? 0 : errno_err(errno);
	}
	if (rc)
		return rc;
	snprintf(f->etag, sizeof(f->etag), "%s", info.etag);
	f->attrs = info.attrs;
	f->mtime = (info.attrs.have & DMFS_ATTR_MTIME) ? info.attrs.mtime
		   : info.mtime				? info.mtime
							: now_s();
	dmfs_obj_info_clear(&info);
	if (fstat(f->fd, &sb) != 0)
		return errno_err(errno);
	f->size = (uint64_t)sb.st_size;
	return 0;
}

int stage_open(struct stage *sg, const char *key, enum stage_how how,
	       struct stage_file **out)
{
	struct stage_file *f;
	int rc;

	if (stage_find(sg, key, &f)) {
		if (how != STAGE_EXISTING) {
			rc = stage_truncate(f, 0);
			if (rc) {
				stage_close(f);
				return rc;
			}
		}
		*out = f;
		return 0;
	}
	rc = file_new(sg, key, &f);
	if (rc)
		return rc;
	if (how == STAGE_EXISTING) {
		rc = fill_existing(f);
		f->state = ST_CLEAN;
		if (!rc)
			rc = write_sidecar(f);
	} else {
		/* The ETag now, for the stale check: a file created over
		 * an object this mount did not know of replaces it.  A new
		 * name skips the round trip: f->etag "" already means "no
		 * object", which the upload checks. */
		struct dmfs_obj_info cur;
		struct dmfs_err_detail d = {0};
		rc = how == STAGE_NEW ? DMFS_ERR_NOT_FOUND
				      : sg->st->ops->head(sg->st, key, &cur, &d);
		if (!rc) {
			/* O_TRUNC keeps the mode and owner. */
			snprintf(f->etag, sizeof(f->etag), "%s", cur.etag);
			f->attrs = cur.attrs;
			dmfs_obj_info_clear(&cur);
		} else if (rc == DMFS_ERR_NOT_FOUND) {
			rc = 0;
		}
		/* An empty file is already something to upload. */
		f->state = ST_DIRTY;
		if (!rc)
			rc = write_sidecar(f);
	}
	if (rc) {
		remove_files(f);
		file_free(f);
		return rc;
	}
	pthread_mutex_lock(&sg->lock);
	struct stage_file *other = table_find(sg, key);
	if (other) {
		/* Opened meanwhile by another thread: share that one. */
		other->refs++;
		pthread_mutex_unlock(&sg->lock);
		remove_files(f);
		file_free(f);
		*out = other;
		if (how != STAGE_EXISTING &&
		    (rc = stage_truncate(other, 0))) {
			stage_close(other);
			return rc;
		}
		return 0;
	}
	f->refs = 1;
	f->in_table = 1;
	f->next = sg->files;
	sg->files = f;
	pthread_mutex_unlock(&sg->lock);
	*out = f;
	return 0;
}

void stage_close(struct stage_file *f)
{
	if (!f)
		return;
	struct stage *sg = f->sg;
	pthread_mutex_lock(&sg->lock);
	int last = --f->refs == 0;
	if (last)
		table_remove(sg, f);
	pthread_mutex_unlock(&sg->lock);
	if (!last)
		return;
	if (f->state == ST_CLEAN || f->forgotten || f->write_err) {
		remove_files(f);
	} else {
		char p[4096];
		path_of(f, ".data", p, sizeof(p));
		dmfs_log(DMFS_LOG_WARN,
			 "%s: closed with bytes not in the bucket (%s); the "
			 "staged copy is kept at %s", f->key,
			 state_names[f->state], p);
	}
	file_free(f);
}

/* Called under f->lock before a change of the bytes. */
static int make_dirty(struct stage_file *f)
{
	f->mtime = now_s();
	if (f->forgotten)
		return 0;
	return set_state(f, ST_DIRTY);
}

int stage_write(struct stage_file *f, const void *buf, size_t n, uint64_t off)
{
	size_t done = 0;
	int rc;

	pthread_mutex_lock(&f->lock);
	if (f->write_err) {
		/* Broken: more bytes could not make it uploadable. */
		rc = f->write_err;
		pthread_mutex_unlock(&f->lock);
		return rc;
	}
	/* Bytes already sent cannot change under the upload. */
	if (f->stream && off < upload_stream_fixed(f->stream))
		stream_cancel(f);
	rc = make_dirty(f);
	while (!rc && done < n) {
		ssize_t w = pwrite(f->fd, (const char *)buf + done, n - done,
				   (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = errno_err(w < 0 ? errno : EIO);
			break;
		}
		done += (size_t)w;
	}
	if (off + done > f->size)
		f->size = off + done;
	dmfs_sha256_run_write(f->hash, buf, done, off);
	/* A refused offset (EFBIG, EINVAL) wrote nothing: the copy is
	 * whole and the error the writer's alone.  Space and I/O errors
	 * may leave part of the bytes: the copy is broken. */
	if (rc && (rc == DMFS_ERR_NOSPC || rc == DMFS_ERR_IO || done))
		mark_broken(f, rc, off);
	if (!rc)
		stream_grow(f);
	unlock_reap(f);
	return rc;
}

int stage_read(struct stage_file *f, void *buf, size_t n, uint64_t off,
	       size_t *got)
{
	size_t done = 0;
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	if (off >= f->size)
		n = 0;
	else if (n > f->size - off)
		n = (size_t)(f->size - off);
	while (done < n) {
		ssize_t r = pread(f->fd, (char *)buf + done, n - done,
				  (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = DMFS_ERR_IO;
			break;
		}
		if (r == 0) { /* a hole past the written end: zeros */
			memset((char *)buf + done, 0, n - done);
			done = n;
			break;
		}
		done += (size_t)r;
	}
	pthread_mutex_unlock(&f->lock);
	*got = done;
	return rc;
}

int stage_truncate(struct stage_file *f, uint64_t size)
{
	int rc;
	pthread_mutex_lock(&f->lock);
	if (f->write_err) {
		/* Broken: the copy becomes whole again only once what the
		 * failed write spoiled is really cut off AND its sidecar
		 * says dirty; until both happened it stays broken, so a
		 * truncation that fails (the disk still full) can never
		 * let the partial copy be uploaded. */
		int was = f->write_err;
		rc = ftruncate(f->fd, (off_t)size) == 0 ? 0 : errno_err(errno);
		if (!rc) {
			f->size = size;
			dmfs_sha256_run_truncate(f->hash, size);
			if (size < f->write_err_off)
				f->write_err_off = size;
		}
		if (!rc && size <= f->write_err_off) {
			f->write_err = 0;
			f->state = ST_CLEAN;
			rc = make_dirty(f);
			if (rc) {
				/* No sidecar: broken again (and for crash
				 * recovery, never uploaded). */
				f->write_err = was;
				f->write_err_off = size;
			}
		}
		unlock_reap(f);
		return rc;
	}
	if (f->stream && size < upload_stream_fixed(f->stream))
		stream_cancel(f);
	rc = make_dirty(f);
	if (!rc && ftruncate(f->fd, (off_t)size) != 0)
		rc = errno_err(errno);
	if (!rc) {
		f->size = size;
		dmfs_sha256_run_truncate(f->hash, size);
	}
	unlock_reap(f);
	return rc;
}

/* The attributes an upload of f stores.  Under f->lock. */
static struct dmfs_attrs upload_attrs(const struct stage_file *f)
{
	struct dmfs_attrs a = f->attrs;
	a.mtime = f->mtime;
	a.have |= DMFS_ATTR_MTIME;
	return a;
}

void stage_default_attrs(struct stage_file *f, const struct dmfs_attrs *a)
{
	pthread_mutex_lock(&f->lock);
	unsigned add = a->have & ~f->attrs.have;
	if (add & DMFS_ATTR_MODE)
		f->attrs.mode = a->mode;
	if (add & DMFS_ATTR_UID)
		f->attrs.uid = a->uid;
	if (add & DMFS_ATTR_GID)
		f->attrs.gid = a->gid;
	f->attrs.have |= add & ~DMFS_ATTR_MTIME;
	pthread_mutex_unlock(&f->lock);
}

int stage_set_attrs(struct stage_file *f, const struct dmfs_attrs *a,
		    int *pending)
{
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	if (a->have & DMFS_ATTR_MODE)
		f->attrs.mode = a->mode;
	if (a->have & DMFS_ATTR_UID)
		f->attrs.uid = a->uid;
	if (a->have & DMFS_ATTR_GID)
		f->attrs.gid = a->gid;
	if (a->have & DMFS_ATTR_MTIME)
		f->mtime = a->mtime;
	f->attrs.have |= a->have & ~DMFS_ATTR_MTIME;
	*pending = f->forgotten || f->state != ST_CLEAN;
	/* A dirty copy's sidecar carries the attributes to a recovery. */
	if (!f->forgotten && f->state == ST_DIRTY)
		rc = write_sidecar(f);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int stage_lookup_attrs(struct stage *sg, const char *key,
		       struct dmfs_attrs *out)
{
	pthread_mutex_lock(&sg->lock);
	struct stage_file *f = table_find(sg, key);
	if (f) {
		pthread_mutex_lock(&f->lock);
		*out = upload_attrs(f);
		pthread_mutex_unlock(&f->lock);
	}
	pthread_mutex_unlock(&sg->lock);
	return f != NULL;
}

void stage_key(struct stage_file *f, char *buf, size_t n)
{
	pthread_mutex_lock(&f->lock);
	snprintf(buf, n, "%s", f->key);
	pthread_mutex_unlock(&f->lock);
}

void stage_attr(struct stage_file *f, uint64_t *size, int64_t *mtime)
{
	pthread_mutex_lock(&f->lock);
	*size = f->size;
	*mtime = f->mtime;
	pthread_mutex_unlock(&f->lock);
}

int stage_sync(struct stage_file *f, struct dmfs_obj_info *out)
{
	struct stage *sg = f->sg;
	struct dmfs_obj_info got = {0};
	struct dmfs_err_detail d = {0};
	char p[4096];
	int rc = 0;

	if (out)
		memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&f->lock);
	if (f->forgotten)
		goto out;
	if (f->write_err) {
		/* Reported again at every flush and close: a copy with a
		 * failed write must never look uploaded. */
		rc = f->write_err;
		goto out;
	}
	if (f->state == ST_CLEAN)
		goto out;
	if (f->state == ST_STALE) {
		rc = DMFS_ERR_STALE;
		goto out;
	}
	/* Data first, then the upload: what S3 acknowledged is also on
	 * disk here until the sidecar says clean. */
	struct dmfs_attrs ua = upload_attrs(f);
	char sha[65];
	bool hashed = dmfs_sha256_run_get(f->hash, f->size, sha);
	bool streamed = false;
	rc = upload_fd(sg->st, f->key, f->fd, f->size, hashed ? sha : NULL,
		       f->check_stale ? f->etag : NULL, &ua, &sg->uo,
		       stream_take(f), f->stream_token, &streamed, &got, &d);
	path_of(f, ".data", p, sizeof(p));
	if (rc == DMFS_ERR_STALE) {
		atomic_fetch_add(&sg->failed, 1);
		(void)set_state(f, ST_STALE);
		dmfs_log(DMFS_LOG_ERROR,
			 "%s: not uploaded: another writer changed it in the "
			 "bucket since it was opened; this mount's version is "
			 "kept at %s", f->key, p);
		goto out;
	}
	if (rc && got.etag[0]) {
		/* Our streamed object is in the bucket without its sha256:
		 * the next upload replaces it, not "another writer's". */
		snprintf(f->etag, sizeof(f->etag), "%s", got.etag);
		f->check_stale = 1;
		dmfs_log(DMFS_LOG_ERROR,
			 "%s: upload failed: %s (HTTP %d %s); the bucket holds "
			 "these bytes without their sha256 and attributes, the "
			 "staged copy is at %s", f->key, dmfs_strerror(rc),
			 d.http_status, d.s3_code[0] ? d.s3_code : "-", p);
	} else if (rc) {
		dmfs_log(DMFS_LOG_ERROR,
			 "%s: upload failed: %s (HTTP %d %s); the object in "
			 "the bucket is unchanged, the staged copy is at %s",
			 f->key, dmfs_strerror(rc), d.http_status,
			 d.s3_code[0] ? d.s3_code : "-", p);
	}
	if (rc) {
		atomic_fetch_add(&sg->failed, 1);
		if (f->state != ST_FAILED)
			(void)set_state(f, ST_FAILED);
		goto out;
	}
	atomic_fetch_add(&sg->done, 1);
	if (streamed)
		atomic_fetch_add(&sg->streamed, 1);
	if (sg->memo && mindex_memo_put(sg->memo, sg->store_uri, f->key,
					got.etag, got.size, got.sha256))
		dmfs_log(DMFS_LOG_DEBUG, "%s: hash not remembered", f->key);
	snprintf(f->etag, sizeof(f->etag), "%s", got.etag);
	f->check_stale = 1;
	mark_clean(f);
	if (out) {
		*out = got; /* out->key: the key it was uploaded to */
		memset(&got, 0, sizeof(got));
		out->mtime = out->mtime ? out->mtime : f->mtime;
	}
out:
	pthread_mutex_unlock(&f->lock);
	dmfs_obj_info_clear(&got);
	return rc;
}

int stage_lookup(struct stage *sg, const char *key, uint64_t *size,
		 int64_t *mtime)
{
	struct stage_file *f;
	if (!stage_find(sg, key, &f))
		return 0;
	stage_attr(f, size, mtime);
	stage_close(f);
	return 1;
}

int stage_has_prefix(struct stage *sg, const char *prefix)
{
	size_t n = strlen(prefix);
	int found = 0;
	pthread_mutex_lock(&sg->lock);
	for (struct stage_file *f = sg->files; f && !found; f = f->next)
		found = f->in_table && !strncmp(f->key, prefix, n);
	pthread_mutex_unlock(&sg->lock);
	return found;
}

void stage_forget(struct stage *sg, const char *key)
{
	pthread_mutex_lock(&sg->lock);
	struct stage_file *f = table_find(sg, key);
	struct upload_stream *gone = NULL;
	if (f) {
		table_remove(sg, f);
		pthread_mutex_lock(&f->lock);
		f->forgotten = 1;
		gone = stream_drop(f);
		pthread_mutex_unlock(&f->lock);
		/* Nothing to recover after a crash: the file is gone. */
		char p[4096];
		path_of(f, ".json", p, sizeof(p));
		unlink(p);
	}
	pthread_mutex_unlock(&sg->lock);
	upload_stream_cancel(gone);
}

int stage_rename(struct stage *sg, const char *from, const char *to,
		 struct stage_file **out)
{
	int rc = 0;
	char *nk = strdup(to);

	*out = NULL;
	if (!nk)
		return DMFS_ERR_NOMEM;
	pthread_mutex_lock(&sg->lock);
	struct stage_file *f = table_find(sg, from);
	struct stage_file *old = table_find(sg, to);
	if (!f) {
			pthread_mutex_unlock(&sg->lock);
		free(nk);
		return 0;
	}
	struct upload_stream *gone[2] = {NULL, NULL};
	if (old) { /* the target's own staged copy is replaced */
		table_remove(sg, old);
		pthread_mutex_lock(&old->lock);
		old->forgotten = 1;
		gone[0] = stream_drop(old);
		pthread_mutex_unlock(&old->lock);
	}
	pthread_mutex_lock(&f->lock);
	/* Its upload went to the old key. */
	gone[1] = stream_drop(f);
	free(f->key);
	f->key = nk;
	f->check_stale = 0;
	f->etag[0] = '\0';
	f->state = ST_CLEAN; /* so that set_state writes the sidecar */
	rc = set_state(f, ST_DIRTY);
	pthread_mutex_unlock(&f->lock);
	f->refs++;
	pthread_mutex_unlock(&sg->lock);
	upload_stream_cancel(gone[0]);
	upload_stream_cancel(gone[1]);
	*out = f;
	return rc;
}

/* --- recovery --- */

/* Read and parse a sidecar.  Caller frees with cJSON_Delete. */
static cJSON *read_sidecar(const char *path)
{
	char buf[SIDECAR_MAX];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return cJSON_Parse(buf);
}

static const char *jstr(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* One leftover: upload it if it is ours and dirty.  base without
 * suffix. */
static int recover_one(struct stage *sg, const char *base, int *recovered)
{
	char jp[4096], dp[4096];
	struct stat sb;
	cJSON *o;
	int fd = -1, rc = 0;

	snprintf(jp, sizeof(jp), "%s.json", base);
	snprintf(dp, sizeof(dp), "%s.data", base);
	o = read_sidecar(jp);
	const char *store = o ? jstr(o, "store") : NULL;
	const char *key = o ? jstr(o, "key") : NULL;
	const char *etag = o ? jstr(o, "etag") : NULL;
	const char *state = o ? jstr(o, "state") : NULL;
	if (!store || !key || !etag || !state || strcmp(store, sg->store_uri))
		goto out; /* another store's, or unreadable: not ours */
	fd = open(dp, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		goto out;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0)
		goto out; /* a live process is writing it */
	if (!strcmp(state, "clean")) {
		unlink(jp);
		unlink(dp);
		goto out;
	}
	if (strcmp(state, "dirty") != 0) {
		dmfs_log(DMFS_LOG_WARN,
			 "staged copy of %s left %s by an earlier mount: kept "
			 "at %s (not uploaded)", key, state, dp);
		goto out;
	}
	if (fstat(fd, &sb) != 0) {
		rc = DMFS_ERR_IO;
		goto out;
	}
	struct dmfs_err_detail d = {0};
	struct dmfs_attrs ua = {.have = DMFS_ATTR_MTIME,
				.mtime = (int64_t)sb.st_mtim.tv_sec};
	static const char *const an[] = {"mode", "uid", "gid", "mtime"};
	for (unsigned i = 0; i < 4; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, an[i]);
		char num[32];
		if (!cJSON_IsNumber(v))
			continue;
		snprintf(num, sizeof(num), "%.0f", v->valuedouble);
		(void)dmfs_attrs_parse(&ua, an[i], num);
	}
	/* A multipart upload begun while it was written and never
	 * completed would stay in the bucket (and be billed) for ever. */
	const char *mpu = jstr(o, "stream_upload");
	if (mpu && sg->st->ops->mp_abort)
		upload_abort(sg->st, key, mpu);
	/* etag "" (a new file) still means "the key must not exist": a key
	 * another client created meanwhile is not overwritten. */
	rc = upload_fd(sg->st, key, fd, (uint64_t)sb.st_size, NULL, etag,
		       &ua, &sg->uo, NULL, jstr(o, "stream"), NULL, NULL, &d);
	if (!rc) {
		dmfs_log(DMFS_LOG_INFO,
			 "recovered %s: %llu bytes staged by an earlier mount "
			 "uploaded", key, (unsigned long long)sb.st_size);
		atomic_fetch_add(&sg->done, 1);
		++*recovered;
		unlink(jp);
		unlink(dp);
	} else {
		atomic_fetch_add(&sg->failed, 1);
		dmfs_log(DMFS_LOG_ERROR,
			 "staged copy of %s left by an earlier mount could not "
			 "be uploaded (%s); kept at %s", key,
			 dmfs_strerror(rc), dp);
	}
out:
	if (fd >= 0)
		close(fd);
	cJSON_Delete(o);
	return rc;
}

/*
 * Data files without a sidecar that no process holds: broken copies
 * (a write failed, see the top of the file) and clean ones whose
 * sidecar could not be rewritten, left by a process that died.  Nothing
 * in them is to be uploaded; they only take space.
 */
static void recover_orphans(struct stage *sg)
{
	DIR *d = opendir(sg->dir);
	struct dirent *de;
	unsigned removed = 0;

	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char dp[4096], jp[4096];
		struct stat sb;
		if (n < 6 || strcmp(de->d_name + n - 5, ".data"))
			continue;
		snprintf(dp, sizeof(dp), "%s/%s", sg->dir, de->d_name);
		snprintf(jp, sizeof(jp), "%s/%.*s.json", sg->dir,
			 (int)(n - 5), de->d_name);
		if (stat(jp, &sb) == 0)
			continue;
		int fd = open(dp, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* Locked: a live process's.  The sidecar is looked for
		 * again under the lock: its writer may just have made it. */
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 && stat(jp, &sb) != 0 &&
		    unlink(dp) == 0)
			removed++;
		close(fd);
	}
	closedir(d);
	if (removed)
		dmfs_log(DMFS_LOG_INFO,
			 "staging: removed %u staged copies left without a "
			 "sidecar (nothing to upload)", removed);
}

int stage_recover(struct stage *sg, int *recovered)
{
	DIR *d = opendir(sg->dir);
	struct dirent *de;
	int rc = 0;

	*recovered = 0;
	if (!d)
		return DMFS_ERR_IO;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char base[4096];
		if (n < 6 || strcmp(de->d_name + n - 5, ".json"))
			continue;
		snprintf(base, sizeof(base), "%s/%.*s", sg->dir, (int)(n - 5),
			 de->d_name);
		int r = recover_one(sg, base, recovered);
		if (r && !rc)
			rc = r;
	}
	closedir(d);
	recover_orphans(sg);
	return rc;
}

void stage_get_stats(struct stage *sg, struct stage_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->done = atomic_load(&sg->done);
	out->failed = atomic_load(&sg->failed);
	out->streamed = atomic_load(&sg->streamed);
	pthread_mutex_lock(&sg->lock);
	for (struct stage_file *f = sg->files; f; f = f->next) {
		pthread_mutex_lock(&f->lock);
		if (f->state != ST_CLEAN && !f->forgotten && !f->write_err) {
			out->pending++;
			out->bytes_pending += f->size;
		}
		pthread_mutex_unlock(&f->lock);
	}
	pthread_mutex_unlock(&sg->lock);
}

void stage_free(struct stage *sg)
{
	if (!sg)
		return;
	while (sg->files) {
		struct stage_file *f = sg->files;
		sg->files = f->next;
		if (f->state == ST_CLEAN || f->forgotten || f->write_err)
			remove_files(f);
		file_free(f);
	}
	pthread_mutex_destroy(&sg->lock);
	pthread_mutex_destroy(&sg->caps.lock);
	free(sg->dir);
	free(sg->store_uri);
	free(sg);
}
