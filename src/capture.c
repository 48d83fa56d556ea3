/*
 * capture.c - snapshots and dataset versions (see capture.h).
 *
 * The pipeline, and why it is shaped so:
 *
 *  1. Check the name is free (fail fast, before hours of hashing) and read
 *     the refs to find the parent (the newest version of the same dataset,
 *     or the newest snapshot).
 *  2. List what the content store already holds (.dmfs/objects/): one
 *     LIST per 1 000 objects instead of one HEAD per file.
 *  3. Walk the source tree in batches of BATCH entries.  Each batch is
 *     worked on by `parallel` threads: a file whose hash is known (from a
 *     manifest, from object metadata, or from the local memo of (key,
 *     ETag) -> sha256) is not read again; otherwise it is read once and
 *     hashed.  Content the store lacks is moved into .dmfs/objects/ by a
 *     server-side copy pinned to the ETag that was hashed (If-Match), so
 *     the bytes stored are the bytes hashed; if the object changed in
 *     between, it is hashed again.  A batch is finished before its entries
 *     go to the manifest writer, in order, so memory stays bounded by
 *     BATCH whatever the size of the tree.
 *  4. Zero-copy (a versioned bucket): the walk lists object versions and
 *     the manifest pins each file's version id; nothing is read or copied.
 *  5. Write the manifest (it is kept in the local manifest cache, so this
 *     machine never downloads it), upload it unless the store has it, and
 *     create the ref last: a crash before that leaves unreferenced objects
 *     that gc collects, never a ref to something missing.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "dmfs/capture.h"
#include "dmfs/log.h"
#include "dmfs/tree.h"
#include "hashset.h"

#define BATCH 2048
#define COPY_TRIES 3

/* --- one capture --- */

struct job_entry {
	struct manifest_entry e;
	int rc;
	char msg[256];
};

struct cap {
	const struct capture_env *env;
	const struct capture_req *rq;
	struct capture_result *res;
	struct hashset have;		/* objects in the store */
	pthread_mutex_t have_lock;	/* protects have */
	bool source_live;
	/* the current batch */
	struct job_entry *batch;
	size_t nbatch;
	atomic_size_t next;		/* next index to take */
	atomic_uint_fast64_t hashed_bytes, copied_objects, copied_bytes,
		reused_objects;
};

static void set_msg(struct job_entry *j, int rc, const char *fmt,
		    const char *a, const char *b)
{
	j->rc = rc;
	snprintf(j->msg, sizeof(j->msg), fmt, a, b);
}

/* Know the content hash of a live entry: memo, metadata, or read it. */
static int ensure_hash(struct cap *c, struct job_entry *j)
{
	struct manifest_entry *e = &j->e;
	struct dmfs_obj_info info;
	struct dmfs_err_detail d = {0};
	struct dmfs_pin pin = {.if_match = e->etag};
	int rc;

	if (e->sha256[0])
		return 0;
	if (!mindex_memo_get(c->env->mx, c->env->store_uri, e->key, e->etag,
			     e->size, e->sha256))
		return 0;
	rc = dmfs_store_hash(c->env->st, e->key, &pin, e->sha256, &info, &d);
	if (rc) {
		set_msg(j, rc, "reading %s: %s", e->key, dmfs_strerror(rc));
		return rc;
	}
	atomic_fetch_add(&c->hashed_bytes, info.size);
	if (info.size != e->size) {
		/* The listing was older than the object we read. */
		e->size = info.size;
		snprintf(e->etag, sizeof(e->etag), "%s", info.etag);
	}
	dmfs_obj_info_clear(&info);
	if (mindex_memo_put(c->env->mx, c->env->store_uri, e->key, e->etag,
			    e->size, e->sha256))
		dmfs_log(DMFS_LOG_WARN, "hash memo: cannot remember %s", e->key);
	return 0;
}

/* After DMFS_ERR_CHANGED: the object was replaced since it was listed. */
static int refresh_entry(struct cap *c, struct job_entry *j)
{
	struct dmfs_obj_info info;
	struct dmfs_err_detail d = {0};
	int rc = c->env->st->ops->head(c->env->st, j->e.key, &info, &d);
	if (rc) {
		set_msg(j, rc, "%s changed during the capture: %s", j->e.key,
			dmfs_strerror(rc));
		return rc;
	}
	j->e.size = info.size;
	j->e.mtime = info.mtime;
	snprintf(j->e.etag, sizeof(j->e.etag), "%s", info.etag);
	snprintf(j->e.sha256, sizeof(j->e.sha256), "%s", info.sha256);
	dmfs_obj_info_clear(&info);
	return 0;
}

/* A server-side copy of j's object into the content store failed: the
 * message names the key, the error and what the server said (the reason
 * a big copy is refused, say). */
static void copy_failed(struct job_entry *j, int rc,
			const struct dmfs_err_detail *d)
{
	char why[220];

	snprintf(why, sizeof(why), "%s (HTTP %d %s)%s%.120s",
		 dmfs_strerror(rc), d->http_status,
		 d->s3_code[0] ? d->s3_code : "-", d->message[0] ? ": " : "",
		 d->message);
	set_msg(j, rc, "copying %s into the content store: %s", j->e.key,
		why);
}

/* Make sure the entry's content is in the content store. */
static int ensure_object(struct cap *c, struct job_entry *j)
{
	char okey[128];
	struct dmfs_err_detail d = {0};
	int rc = 0;

	for (int attempt = 0; attempt < COPY_TRIES; attempt++) {
		rc = ensure_hash(c, j);
		if (rc)
			return rc;
		pthread_mutex_lock(&c->have_lock);
		bool have = hashset_get(&c->have, j->e.sha256, NULL);
		pthread_mutex_unlock(&c->have_lock);
		if (have) {
			atomic_fetch_add(&c->reused_objects, 1);
			return 0;
		}
		manifest_object_key(j->e.sha256, okey, sizeof(okey));
		struct dmfs_pin pin = {.if_match = j->e.etag,
				       .size_hint = j->e.size};
		struct dmfs_put_opts po = {.sha256 = j->e.sha256};
		rc = c->env->st->ops->copy(c->env->st, j->e.key, &pin, okey,
					   &po, &d);
		if (rc == DMFS_ERR_CHANGED) {
			rc = refresh_entry(c, j);
			if (rc)
				return rc;
			continue;
		}
		if (rc) {
			copy_failed(j, rc, &d);
			return rc;
		}
		atomic_fetch_add(&c->copied_objects, 1);
		atomic_fetch_add(&c->copied_bytes, j->e.size);
		pthread_mutex_lock(&c->have_lock);
		rc = hashset_add(&c->have, j->e.sha256, j->e.size);
		pthread_mutex_unlock(&c->have_lock);
		return rc;
	}
	set_msg(j, DMFS_ERR_CHANGED, "%s keeps changing; capture it again%s",
		j->e.key, "");
	return DMFS_ERR_CHANGED;
}

/* Store the content of a version-pinned entry (hashing it first). */
static int ensure_pinned_object(struct cap *c, struct job_entry *j)
{
	struct manifest_entry *e = &j->e;
	struct dmfs_err_detail d = {0};
	struct dmfs_pin pin = {.version_id = e->version_id,
			       .size_hint = e->size};
	char okey[128];
	int rc = dmfs_store_hash(c->env->st, e->key, &pin, e->sha256, NULL, &d);

	if (rc) {
		set_msg(j, rc, "reading %s: %s", e->key, dmfs_strerror(rc));
		return rc;
	}
	atomic_fetch_add(&c->hashed_bytes, e->size);
	pthread_mutex_lock(&c->have_lock);
	bool have = hashset_get(&c->have, e->sha256, NULL);
	pthread_mutex_unlock(&c->have_lock);
	if (have) {
		atomic_fetch_add(&c->reused_objects, 1);
		return 0;
	}
	manifest_object_key(e->sha256, okey, sizeof(okey));
	struct dmfs_put_opts po = {.sha256 = e->sha256};
	rc = c->env->st->ops->copy(c->env->st, e->key, &pin, okey, &po, &d);
	if (rc) {
		copy_failed(j, rc, &d);
		return rc;
	}
	atomic_fetch_add(&c->copied_objects, 1);
	atomic_fetch_add(&c->copied_bytes, e->size);
	pthread_mutex_lock(&c->have_lock);
	rc = hashset_add(&c->have, e->sha256, e->size);
	pthread_mutex_unlock(&c->have_lock);
	return rc;
}

/* Work on one entry of the batch. */
static void work_one(struct cap *c, struct job_entry *j)
{
	struct manifest_entry *e = &j->e;

	if (c->res->zero_copy) {
		/* Pinned by version id: nothing to read or copy. */
		if (!e->version_id)
			set_msg(j, DMFS_ERR_PROTOCOL,
				"%s: the listing gave no version id%s", e->key,
				"");
	} else if (c->source_live) {
		(void)ensure_object(c, j);
		/* The manifest names content, not the live key. */
		free(e->key);
		e->key = NULL;
		free(e->version_id);
		e->version_id = NULL;
	} else if (!e->sha256[0] && e->key && e->version_id) {
		/* From a zero-copy snapshot into a copied version: the
		 * pinned bytes become a content object. */
		(void)ensure_pinned_object(c, j);
		free(e->key);
		e->key = NULL;
		free(e->version_id);
		e->version_id = NULL;
	}
	progress_add(c->rq->progress, 1, e->size);
}

static void *worker(void *arg)
{
	struct cap *c = arg;
	for (;;) {
		size_t i = atomic_fetch_add(&c->next, 1);
		if (i >= c->nbatch)
			return NULL;
		work_one(c, &c->batch[i]);
	}
}

/* Run the batch on the worker threads; the calling thread works too. */
static int run_batch(struct cap *c, int nthreads)
{
	pthread_t th[64];
	int started = 0;

	atomic_store(&c->next, 0);
	for (int i = 0; i < nthreads - 1 && i < 64; i++)
		if (pthread_create(&th[i], NULL, worker, c) == 0)
			started++;
	worker(c);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	return 0;
}

/* "alice@build-3" for the header's author. */
static void default_author(char *out, size_t outsz)
{
	char host[256] = "localhost";
	const char *user = getenv("USER");
	struct passwd *pw = user && *user ? NULL : getpwuid(getuid());
	if (pw)
		user = pw->pw_name;
	(void)gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	snprintf(out, outsz, "%s@%s", user && *user ? user : "unknown", host);
}

/* Snapshot ids default to the UTC time "YYYYMMDDTHHMMSSZ". */
static void default_id(int64_t when, char out[32])
{
	time_t t = (time_t)when;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y%m%dT%H%M%SZ", &tm);
}

/*
 * A lease tells `dmfs gc` that a capture is running: it may reuse objects
 * no ref reaches yet, so gc must not delete them now (see cli_gc.c).
 * key receives the lease's key ("" when it could not be written: the
 * capture goes on, gc just cannot see it).
 */
static void lease_take(const struct capture_env *env, const char *ref,
		       int64_t now, char *key, size_t keysz)
{
	char author[300], body[1024];
	struct dmfs_err_detail d = {0};
	unsigned char rnd[8];
	FILE *ur = fopen("/dev/urandom", "rb");
	size_t got = ur ? fread(rnd, 1, sizeof(rnd), ur) : 0;

	if (ur)
		fclose(ur);
	if (got != sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	default_author(author, sizeof(author));
	snprintf(key, keysz, "%s%lld-%02x%02x%02x%02x%02x%02x%02x%02x",
		 CAPTURE_LEASES_PREFIX, (long long)now, rnd[0], rnd[1], rnd[2],
		 rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	int n = snprintf(body, sizeof(body),
			 "{\"ref\":\"%s\",\"by\":\"%s\",\"pid\":%ld,"
			 "\"started\":%lld}\n",
			 ref, author, (long)getpid(), (long long)now);
	struct dmfs_put_src src = {.buf = body, .fd = -1,
				   .len = (uint64_t)(n > 0 ? n : 0)};
	struct dmfs_put_opts po = {.content_type = "application/json"};
	if (env->st->ops->put(env->st, key, &src, &po, NULL, &d)) {
		dmfs_log(DMFS_LOG_WARN, "cannot write the capture lease %s",
			 key);
		key[0] = '\0';
	}
}

static void lease_drop(const struct capture_env *env, const char *key)
{
	struct dmfs_err_detail d = {0};
	if (key[0] && env->st->ops->del(env->st, key, &d))
		dmfs_log(DMFS_LOG_WARN, "cannot remove the capture lease %s "
			 "(gc ignores it after a day)", key);
}

/* Upload the manifest unless the store has it already. */
static int upload_manifest(const struct capture_env *env, const char *path,
			   const char *hash, char *msg, size_t msgsz)
{
	char key[128];
	struct dmfs_obj_info info;
	struct dmfs_err_detail d = {0};
	struct stat sb;
	int fd, rc;

	manifest_store_key(hash, key, sizeof(key));
	rc = env->st->ops->head(env->st, key, &info, &d);
	if (!rc) {
		dmfs_obj_info_clear(&info);
		return 0;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) != 0) {
		snprintf(msg, msgsz, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return DMFS_ERR_IO;
	}
	struct dmfs_put_src src = {.fd = fd, .len = (uint64_t)sb.st_size};
	struct dmfs_put_opts po = {.sha256 = hash,
				   .content_type = "application/x-ndjson"};
	rc = env->st->ops->put(env->st, key, &src, &po, NULL, &d);
	close(fd);
	if (rc)
		snprintf(msg, msgsz, "uploading manifest %s: %s%s%s", hash,
			 dmfs_strerror(rc), d.s3_code[0] ? " " : "", d.s3_code);
	return rc;
}

/* The ref name this request creates. */
static int ref_name(const struct capture_req *rq, const char *id, char *out,
		    size_t outsz, char *msg, size_t msgsz)
{
	if (!strcmp(rq->kind, "snapshot"))
		snprintf(out, outsz, "snapshots/%s", id);
	else if (!strcmp(rq->kind, "dataset") && rq->name && rq->version)
		snprintf(out, outsz, "datasets/%s/%s", rq->name, rq->version);
	else {
		snprintf(msg, msgsz, "a dataset version needs a name and a "
			 "version");
		return DMFS_ERR_INVAL;
	}
	return refs_check_name(out, msg, msgsz);
}

/* The parent: the newest ref of the same dataset (or the newest
 * snapshot), or NULL.  Caller frees with free(). */
static char *find_parent(const struct capture_env *env, const char *name)
{
	struct ref_info *refs = NULL;
	size_t n = 0;
	struct dmfs_err_detail d = {0};
	char dir[REF_NAME_MAX];
	char *parent = NULL;

	snprintf(dir, sizeof(dir), "%s", name);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return NULL;
	slash[1] = '\0';
	if (refs_list(env->st, &refs, &n, &d))
		return NULL;
	for (size_t i = 0; i < n && !parent; i++) /* newest first */
		if (!strncmp(refs[i].name, dir, strlen(dir)) &&
		    !strchr(refs[i].name + strlen(dir), '/'))
			parent = strdup(refs[i].manifest);
	refs_free(refs, n);
	return parent;
}

/* Walk the source, batch by batch, into the writer. */
static int walk(struct cap *c, struct tree *t, struct manifest_writer *w,
		char *msg, size_t msgsz)
{
	int nthreads = c->rq->parallel > 0 ? c->rq->parallel : 16;
	int rc = 0, more = 1;

	c->batch = calloc(BATCH, sizeof(*c->batch));
	if (!c->batch)
		return DMFS_ERR_NOMEM;
	while (!rc && more) {
		c->nbatch = 0;
		while (c->nbatch < BATCH) {
			struct job_entry *j = &c->batch[c->nbatch];
			memset(j, 0, sizeof(*j));
			more = tree_next(t, &j->e, msg, msgsz);
			if (more <= 0)
				break;
			bool keep = true;
			if (c->rq->filter &&
			    (rc = c->rq->filter(c->rq->filter_ctx, &j->e, &keep,
						msg, msgsz)) != 0) {
				manifest_entry_clear(&j->e);
				break;
			}
			if (!keep) {
				manifest_entry_clear(&j->e);
				continue;
			}
			c->nbatch++;
		}
		if (more < 0)
			rc = -more;
		if (rc) {
			for (size_t i = 0; i < c->nbatch; i++)
				manifest_entry_clear(&c->batch[i].e);
			break;
		}
		run_batch(c, nthreads);
		for (size_t i = 0; i < c->nbatch && !rc; i++) {
			struct job_entry *j = &c->batch[i];
			if (j->rc) {
				rc = j->rc;
				snprintf(msg, msgsz, "%s", j->msg);
			} else if ((rc = manifest_writer_add(w, &j->e))) {
				snprintf(msg, msgsz, "%s: cannot go into a "
					 "manifest: %s", j->e.path,
					 dmfs_strerror(rc));
			}
		}
		for (size_t i = 0; i < c->nbatch; i++)
			manifest_entry_clear(&c->batch[i].e);
	}
	free(c->batch);
	c->batch = NULL;
	return rc;
}

/* Decide copy or zero-copy.  Only a live source can be pinned. */
static int choose_mode(struct cap *c, char *msg, size_t msgsz)
{
	int enabled = 0;
	struct dmfs_err_detail d = {0};

	c->res->zero_copy = false;
	if (c->rq->zero_copy == 0 || !c->source_live)
		goto check;
	if (c->rq->zero_copy < 0 && strcmp(c->rq->kind, "snapshot") != 0)
		return 0; /* versions are copies unless asked otherwise */
	int rc = c->env->st->ops->versioning(c->env->st, &enabled, &d);
	if (rc && c->rq->zero_copy > 0) {
		snprintf(msg, msgsz, "cannot tell whether the bucket keeps "
			 "versions: %s", dmfs_strerror(rc));
		return rc;
	}
	c->res->zero_copy = !rc && enabled;
check:
	if (c->rq->zero_copy > 0 && !c->res->zero_copy) {
		snprintf(msg, msgsz, "a zero-copy capture needs a live source "
			 "on a bucket with versioning enabled");
		return DMFS_ERR_UNSUPPORTED;
	}
	return 0;
}

int capture_run(const struct capture_env *env, const struct capture_req *rq,
		struct capture_result *res, char *msg, size_t msgsz)
{
	struct cap c = {.env = env, .rq = rq, .res = res};
	struct manifest_header h = {.format = MANIFEST_FORMAT};
	struct manifest_writer *w = NULL;
	struct tree *t = NULL;
	struct ref_info existing = {0};
	struct dmfs_err_detail d = {0};
	char id[32], author[512], dir[4096], tmp[4200], final[4200];
	char lease[256] = "";
	int64_t now = rq->created ? rq->created : (int64_t)time(NULL);
	int rc;

	memset(res, 0, sizeof(*res));
	msg[0] = '\0';
	pthread_mutex_init(&c.have_lock, NULL);
	default_id(now, id);
	rc = ref_name(rq, rq->name && !strcmp(rq->kind, "snapshot") ? rq->name
								    : id,
		      res->ref, sizeof(res->ref), msg, msgsz);
	if (rc)
		goto out;
	rc = refs_read(env->st, res->ref, &existing, &d);
	if (!rc) {
		snprintf(msg, msgsz, "%s: version exists", res->ref);
		rc = DMFS_ERR_EXISTS;
		goto out;
	}
	if (rc != DMFS_ERR_NOT_FOUND) {
		snprintf(msg, msgsz, "%s: cannot read refs: %s", res->ref,
			 dmfs_strerror(rc));
		goto out;
	}
	lease_take(env, res->ref, now, lease, sizeof(lease));
	c.source_live = !strcmp(rq->from, "live") ||
			!strncmp(rq->from, "live/", 5);
	rc = choose_mode(&c, msg, msgsz);
	if (!rc && !res->zero_copy)
		rc = hashset_load_objects(env->st, &c.have, msg, msgsz);
	if (!rc)
		rc = tree_open(env, rq->from, res->zero_copy, &t, msg, msgsz);
	if (!rc && tree_ref(t) && !strcmp(tree_ref(t)->name, rq->from))
		progress_total(rq->progress, tree_ref(t)->h.files,
			       tree_ref(t)->h.bytes);
	snprintf(dir, sizeof(dir), "%s/manifests", env->cache_dir);
	if (!rc && mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(msg, msgsz, "%s: %s", dir, strerror(errno));
		rc = DMFS_ERR_IO;
	}
	if (!rc)
		rc = manifest_writer_open(dir, &w);
	if (!rc)
		rc = walk(&c, t, w, msg, msgsz);
	if (rc)
		goto out;

	default_author(author, sizeof(author));
	h.kind = strdup(rq->kind);
	h.name = strdup(strcmp(rq->kind, "snapshot") ? rq->name
						     : res->ref + 10);
	h.version = rq->version ? strdup(rq->version) : NULL;
	h.created = now;
	if (!rq->created) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		if (ts.tv_sec == now)
			h.created_us = (int64_t)ts.tv_sec * 1000000 +
				       ts.tv_nsec / 1000;
	}
	h.author = strdup(rq->author ? rq->author : author);
	h.message = rq->message ? strdup(rq->message) : NULL;
	h.parent = find_parent(env, res->ref);
	h.source = strdup(rq->from);
	h.zero_copy = res->zero_copy;
	if (!h.kind || !h.name || !h.author || !h.source ||
	    (rq->version && !h.version) || (rq->message && !h.message)) {
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	static atomic_uint seq;
	snprintf(tmp, sizeof(tmp), "%s/.new-%ld-%u", dir, (long)getpid(),
		 atomic_fetch_add(&seq, 1));
	rc = manifest_writer_finish(w, &h, tmp, res->manifest);
	w = NULL;
	if (rc) {
		snprintf(msg, msgsz, "writing the manifest: %s",
			 dmfs_strerror(rc));
		unlink(tmp);
		goto out;
	}
	snprintf(final, sizeof(final), "%s/%s", dir, res->manifest);
	if (rename(tmp, final) != 0) {
		snprintf(msg, msgsz, "%s: %s", final, strerror(errno));
		unlink(tmp);
		rc = DMFS_ERR_IO;
		goto out;
	}
	res->files = h.files;
	res->bytes = h.bytes;
	rc = upload_manifest(env, final, res->manifest, msg, msgsz);
	if (!rc) {
		rc = refs_create(env->st, res->ref, res->manifest, &h, &d);
		if (rc == DMFS_ERR_EXISTS)
			snprintf(msg, msgsz, "%s: version exists (another "
				 "writer created it first)", res->ref);
		else if (rc)
			snprintf(msg, msgsz, "%s: creating the ref: %s%s%s",
				 res->ref, dmfs_strerror(rc),
				 d.s3_code[0] ? " " : "", d.s3_code);
	}
out:
	res->hashed_bytes = atomic_load(&c.hashed_bytes);
	res->copied_objects = atomic_load(&c.copied_objects);
	res->copied_bytes = atomic_load(&c.copied_bytes);
	res->reused_objects = atomic_load(&c.reused_objects);
	if (rc && !msg[0])
		snprintf(msg, msgsz, "%s", dmfs_strerror(rc));
	if (rc)
		dmfs_log(rc == DMFS_ERR_EXISTS ? DMFS_LOG_INFO : DMFS_LOG_ERROR,
			 "capture of %s failed: %s", rq->from, msg);
	lease_drop(env, lease);
	manifest_writer_abort(w);
	tree_close(t);
	ref_info_clear(&existing);
	manifest_header_clear(&h);
	hashset_free(&c.have);
	pthread_mutex_destroy(&c.have_lock);
	return rc;
}
