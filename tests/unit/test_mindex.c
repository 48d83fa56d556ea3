/*
 * test_mindex.c - the manifest index and the hash memo against a real
 * LMDB environment in a temporary directory: stat and readdir of files,
 * directories, the root and missing paths; children in order and
 * continued after a name; a name that is both a file and a directory;
 * paths too long for a key; malformed manifests; has/remove; the memo;
 * two processes indexing the same manifest at once; and a 100 000-entry
 * manifest indexed and timed (entries/s is printed).
 */
#include "config.h"

#include <ftw.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "dmfs/log.h"
#include "dmfs/mindex.h"
#include "unit.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define BIG_N 100000

static char root[] = "/tmp/test_mindex.XXXXXX";
static char cache_dir[4096];

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", root, name);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct mindex *open_index(void)
{
	struct mindex *mx = NULL;
	int rc = mindex_open(cache_dir, &mx);

	CHECK(rc == 0 && mx != NULL);
	if (!mx) {
		fprintf(stderr, "cannot open the index: %s\n",
			dmfs_strerror(rc));
		exit(1);
	}
	return mx;
}

/* --- writing manifests --- */

struct sample {
	const char *path;
	uint64_t size;
	const char *sha; /* NULL: a zero-copy pin */
	const char *meta;
};

/* In byte order, as a manifest is.  "c" is both a file and a directory:
 * the index shows the directory. */
static const struct sample samples[] = {
    {"a.txt", 10, HEX_A, "{\"label\":\"cat\",\"episode\":5}"},
    {"b/c.txt", 3, HEX_B, NULL},
    {"b/d/e.bin", 1u << 20, HEX_A, NULL},
    {"b/d/f.bin", 0, HEX_B, NULL},
    {"b/g", 7, HEX_A, NULL},
    {"c", 1, HEX_A, NULL},
    {"c-1", 2, HEX_A, NULL},
    {"c.txt", 3, HEX_B, NULL},
    {"c/x", 4, HEX_A, NULL},
    {"zz", 5497558138880ull, NULL, NULL},
};
#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

static void header(struct manifest_header *h, const char *name)
{
	memset(h, 0, sizeof(*h));
	h->format = MANIFEST_FORMAT;
	h->kind = strdup("snapshot");
	h->name = strdup(name);
	h->created = 1736937000;
	h->author = strdup("test@host");
}

/* Write a manifest of n entries made by make(i, e) to file name. */
static int write_manifest(const char *name,
			  void (*make)(size_t i, struct manifest_entry *e,
				       char *buf, size_t bufsz),
			  size_t n, char hash[65])
{
	struct manifest_writer *w = NULL;
	struct manifest_header h;
	char path[4096], buf[2048];
	int rc;

	path_of(path, sizeof(path), name);
	header(&h, name);
	rc = manifest_writer_open(root, &w);
	for (size_t i = 0; !rc && i < n; i++) {
		struct manifest_entry e;
		make(i, &e, buf, sizeof(buf));
		rc = manifest_writer_add(w, &e);
		if (rc)
			fprintf(stderr, "entry %zu (%s): %s\n", i, e.path,
				dmfs_strerror(rc));
	}
	if (!rc)
		rc = manifest_writer_finish(w, &h, path, hash);
	else
		manifest_writer_abort(w);
	manifest_header_clear(&h);
	return rc;
}

static void make_sample(size_t i, struct manifest_entry *e, char *buf,
			size_t bufsz)
{
	const struct sample *s = &samples[i];

	memset(e, 0, sizeof(*e));
	e->path = (char *)s->path;
	e->size = s->size;
	e->mode = i % 2 ? 0644 : 0755;
	e->mtime = i == 4 ? -12345 : 1736937000 + (int64_t)i; /* b/g */
	if (s->sha) {
		snprintf(e->sha256, sizeof(e->sha256), "%s", s->sha);
	} else {
		e->key = (char *)s->path;
		e->version_id = "v-0001.xyz";
	}
	e->meta_json = (char *)s->meta;
	(void)buf;
	(void)bufsz;
}

static void make_big(size_t i, struct manifest_entry *e, char *buf,
		     size_t bufsz)
{
	memset(e, 0, sizeof(*e));
	snprintf(buf, bufsz, "train/shard%03zu/sample%06zu.png", i / 1000, i);
	e->path = buf;
	e->size = 1000 + i;
	e->mode = 0644;
	e->mtime = 1736937000;
	snprintf(e->sha256, sizeof(e->sha256), "%064zx", i);
	if (i % 4 == 0)
		e->meta_json = "{\"split\":\"train\",\"score\":0.5}";
}

/* --- collecting readdir --- */

struct listing {
	char names[64][600];
	bool dirs[64];
	uint64_t sizes[64];
	size_t n;
	size_t stop_at; /* stop after this many (0: never) */
};

static int collect(void *ctx, const char *name, bool is_dir,
		   const struct mindex_ent *e)
{
	struct listing *l = ctx;

	if (l->n < 64) {
		snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
		l->dirs[l->n] = is_dir;
		l->sizes[l->n] = e ? e->size : 0;
		CHECK(is_dir == (e == NULL));
	}
	l->n++;
	return l->stop_at && l->n == l->stop_at ? 42 : 0;
}

/* "name/" for directories, joined by spaces. */
static const char *joined(const struct listing *l)
{
	static char out[8192];
	size_t k = 0;

	out[0] = '\0';
	for (size_t i = 0; i < l->n && i < 64; i++)
		k += (size_t)snprintf(out + k, sizeof(out) - k, "%s%s%s",
				      i ? " " : "", l->names[i],
				      l->dirs[i] ? "/" : "");
	return out;
}

static const char *list(struct mindex *mx, const char *hash, const char *dir,
			const char *after, int *rc)
{
	static struct listing l;

	memset(&l, 0, sizeof(l));
	*rc = mindex_readdir(mx, hash, dir, after, collect, &l);
	return joined(&l);
}

/* --- the tests --- */

static void test_small(void)
{
	struct mindex *mx = open_index();
	struct mindex_ent e;
	char hash[65], path[4096], msg[512];
	uint64_t n = 0;
	bool is_dir = false;
	int rc;

	CHECK(write_manifest("small", make_sample, NSAMPLES, hash) == 0);
	path_of(path, sizeof(path), "small");
	CHECK(!mindex_has(mx, hash));
	CHECK(mindex_stat(mx, hash, "", &is_dir, NULL) == DMFS_ERR_NOT_FOUND);
	rc = mindex_add(mx, hash, path, &n, msg, sizeof(msg));
	CHECK(rc == 0);
	if (rc)
		fprintf(stderr, "mindex_add: %s\n", msg);
	CHECK(n == NSAMPLES - 1); /* the file "c" gave way to the directory */
	CHECK(mindex_has(mx, hash));

	/* stat: root, files, directories, missing */
	CHECK(mindex_stat(mx, hash, "", &is_dir, &e) == 0 && is_dir);
	CHECK(mindex_stat(mx, hash, "a.txt", &is_dir, &e) == 0 && !is_dir);
	CHECK(e.size == 10 && e.mode == 0755 && e.mtime == 1736937000);
	CHECK_STR(e.sha256, HEX_A);
	CHECK(e.key == NULL && e.version_id == NULL);
	CHECK_STR(e.meta_json, "{\"label\":\"cat\",\"episode\":5}");
	mindex_ent_clear(&e);
	CHECK(mindex_stat(mx, hash, "b", &is_dir, &e) == 0 && is_dir);
	CHECK(mindex_stat(mx, hash, "/b/d/", &is_dir, NULL) == 0 && is_dir);
	CHECK(mindex_stat(mx, hash, "b/d/e.bin", &is_dir, &e) == 0 && !is_dir &&
	      e.size == 1u << 20 && e.meta_json == NULL);
	mindex_ent_clear(&e);
	CHECK(mindex_stat(mx, hash, "c", &is_dir, NULL) == 0 && is_dir);
	CHECK(mindex_stat(mx, hash, "zz", &is_dir, &e) == 0 && !is_dir);
	CHECK(e.size == 5497558138880ull && e.sha256[0] == '\0');
	CHECK_STR(e.key, "zz");
	CHECK_STR(e.version_id, "v-0001.xyz");
	mindex_ent_clear(&e);
	CHECK(mindex_stat(mx, hash, "missing", &is_dir, &e) ==
	      DMFS_ERR_NOT_FOUND);
	CHECK(mindex_stat(mx, hash, "b/d/e", &is_dir, &e) ==
	      DMFS_ERR_NOT_FOUND);
	CHECK(mindex_stat(mx, hash, "b/d/e.bin/x", &is_dir, &e) ==
	      DMFS_ERR_NOT_FOUND);
	CHECK(mindex_stat(mx, hash, "a", &is_dir, &e) == DMFS_ERR_NOT_FOUND);
	CHECK(mindex_stat(mx, HEX_A, "a.txt", &is_dir, &e) ==
	      DMFS_ERR_NOT_FOUND); /* no such manifest indexed */

	/* readdir: S3 listing order (a directory sorts as "name/") */
	CHECK_STR(list(mx, hash, "", NULL, &rc), "a.txt b/ c-1 c.txt c/ zz");
	CHECK(rc == 0);
	CHECK_STR(list(mx, hash, "b", NULL, &rc), "c.txt d/ g");
	CHECK(rc == 0);
	CHECK_STR(list(mx, hash, "b/d", NULL, &rc), "e.bin f.bin");
	CHECK(rc == 0);
	CHECK_STR(list(mx, hash, "c", NULL, &rc), "x");
	CHECK(rc == 0);
	list(mx, hash, "a.txt", NULL, &rc);
	CHECK(rc == DMFS_ERR_NOT_DIR);
	list(mx, hash, "nope", NULL, &rc);
	CHECK(rc == DMFS_ERR_NOT_FOUND);
	list(mx, hash, "b/d/e", NULL, &rc);
	CHECK(rc == DMFS_ERR_NOT_FOUND);

	/* continuing after a child: a file, a directory, neither */
	CHECK_STR(list(mx, hash, "", "a.txt", &rc), "b/ c-1 c.txt c/ zz");
	CHECK_STR(list(mx, hash, "", "b", &rc), "c-1 c.txt c/ zz");
	CHECK_STR(list(mx, hash, "", "c-1", &rc), "c.txt c/ zz");
	CHECK_STR(list(mx, hash, "", "c", &rc), "zz");
	CHECK_STR(list(mx, hash, "", "bb", &rc), "c-1 c.txt c/ zz");
	CHECK_STR(list(mx, hash, "", "zz", &rc), "");
	CHECK(rc == 0);
	CHECK_STR(list(mx, hash, "b", "d", &rc), "g");
	CHECK_STR(list(mx, hash, "b/d", "e.bin", &rc), "f.bin");

	/* a callback that stops: its value comes back */
	struct listing l = {.stop_at = 2};
	CHECK(mindex_readdir(mx, hash, "", NULL, collect, &l) == 42);
	CHECK(l.n == 2);

	/* indexing again is a no-op; remove; index again */
	n = 0;
	CHECK(mindex_add(mx, hash, path, &n, msg, sizeof(msg)) == 0);
	CHECK(n == NSAMPLES - 1);
	CHECK(mindex_remove(mx, hash) == 0);
	CHECK(!mindex_has(mx, hash));
	CHECK(mindex_stat(mx, hash, "a.txt", &is_dir, NULL) ==
	      DMFS_ERR_NOT_FOUND);
	CHECK(mindex_remove(mx, hash) == 0);
	CHECK(mindex_remove(mx, "nothex") == DMFS_ERR_INVAL);
	CHECK(mindex_add(mx, hash, path, NULL, msg, sizeof(msg)) == 0);
	CHECK(mindex_has(mx, hash));
	CHECK_STR(list(mx, hash, "b", NULL, &rc), "c.txt d/ g");

	/* survives a reopen */
	mindex_close(mx);
	mx = open_index();
	CHECK(mindex_has(mx, hash));
	CHECK(mindex_stat(mx, hash, "b/g", &is_dir, &e) == 0 && e.size == 7 &&
	      e.mtime == -12345);
	mindex_ent_clear(&e);
	mindex_close(mx);
}

static int write_text(const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	path_of(path, sizeof(path), name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

#define HDR(files, bytes)                                                      \
	"{\"dmfs_manifest\":1,\"kind\":\"snapshot\",\"name\":\"x\","           \
	"\"created\":1,\"files\":" #files ",\"bytes\":" #bytes "}\n"

static void test_malformed(void)
{
	struct mindex *mx = open_index();
	char path[4096], msg[512];
	bool is_dir;

	/* out of order: nothing may be indexed */
	CHECK(
	    write_text(
		"bad1",
		HDR(2, 2) "{\"path\":\"b\",\"size\":1,\"mode\":420,\"mtime\":1,"
			  "\"sha256\":\"" HEX_A "\"}\n"
			  "{\"path\":\"a\",\"size\":1,\"mode\":420,\"mtime\":1,"
			  "\"sha256\":\"" HEX_A "\"}\n") == 0);
	path_of(path, sizeof(path), "bad1");
	msg[0] = '\0';
	CHECK(mindex_add(mx, HEX_B, path, NULL, msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK(strstr(msg, "out of order") != NULL);
	CHECK(!mindex_has(mx, HEX_B));
	CHECK(mindex_stat(mx, HEX_B, "b", &is_dir, NULL) == DMFS_ERR_NOT_FOUND);

	/* no header */
	CHECK(write_text("bad2", "not json\n") == 0);
	path_of(path, sizeof(path), "bad2");
	CHECK(mindex_add(mx, HEX_B, path, NULL, msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK(!mindex_has(mx, HEX_B));

	/* missing file, bad hash */
	path_of(path, sizeof(path), "nonexistent");
	CHECK(mindex_add(mx, HEX_B, path, NULL, msg, sizeof(msg)) ==
	      DMFS_ERR_NOT_FOUND);
	CHECK(mindex_add(mx, "xyz", path, NULL, msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	mindex_close(mx);
}

/* Paths that do not fit an LMDB key are left out, the rest indexed. */
static char long_path[800];

static void make_long(size_t i, struct manifest_entry *e, char *buf,
		      size_t bufsz)
{
	static const char *names[] = {"a", NULL, "z"};

	memset(e, 0, sizeof(*e));
	e->path = (char *)(names[i] ? names[i] : long_path);
	e->size = 1;
	e->mode = 0644;
	snprintf(e->sha256, sizeof(e->sha256), "%s", HEX_A);
	(void)buf;
	(void)bufsz;
}

static void test_long_path(void)
{
	struct mindex *mx = open_index();
	char hash[65], path[4096], msg[512];
	uint64_t n = 0;
	bool is_dir;
	int rc;

	memset(long_path, 'q', 600);
	memcpy(long_path, "m/", 2);
	long_path[600] = '\0';
	CHECK(write_manifest("long", make_long, 3, hash) == 0);
	path_of(path, sizeof(path), "long");
	CHECK(mindex_add(mx, hash, path, &n, msg, sizeof(msg)) == 0);
	CHECK(n == 2);
	CHECK(mindex_stat(mx, hash, long_path, &is_dir, NULL) ==
	      DMFS_ERR_NOT_FOUND);
	CHECK_STR(list(mx, hash, "", NULL, &rc), "a z");
	mindex_close(mx);
}

/* A component over NAME_MAX fits a manifest but not a directory entry:
 * left out, as live/ hides it (keyname.c). */
static char odd_path[320];

static void make_odd(size_t i, struct manifest_entry *e, char *buf,
		     size_t bufsz)
{
	static const char *names[] = {"a", NULL, "z"};

	memset(e, 0, sizeof(*e));
	e->path = (char *)(names[i] ? names[i] : odd_path);
	e->size = 1;
	e->mode = 0644;
	snprintf(e->sha256, sizeof(e->sha256), "%s", HEX_A);
	(void)buf;
	(void)bufsz;
}

static void test_odd_name(void)
{
	struct mindex *mx = open_index();
	char hash[65], path[4096], msg[512];
	uint64_t n = 0;
	bool is_dir;
	int rc;

	memcpy(odd_path, "n/", 2);
	memset(odd_path + 2, 'n', 300);
	odd_path[302] = '\0';
	CHECK(write_manifest("odd", make_odd, 3, hash) == 0);
	path_of(path, sizeof(path), "odd");
	CHECK(mindex_add(mx, hash, path, &n, msg, sizeof(msg)) == 0);
	CHECK(n == 2);
	CHECK(mindex_stat(mx, hash, odd_path, &is_dir, NULL) ==
	      DMFS_ERR_NOT_FOUND);
	CHECK(mindex_stat(mx, hash, "n", &is_dir, NULL) == DMFS_ERR_NOT_FOUND);
	CHECK_STR(list(mx, hash, "", NULL, &rc), "a z");
	mindex_close(mx);
}

static void test_memo(void)
{
	struct mindex *mx = open_index();
	const char *uri = "s3://bucket/prefix";
	char sha[65] = "";

	CHECK(mindex_memo_get(mx, uri, "k/a.bin", "etag-1", 10, sha) ==
	      DMFS_ERR_NOT_FOUND);
	CHECK(mindex_memo_put(mx, uri, "k/a.bin", "etag-1", 10, HEX_B) == 0);
	CHECK(mindex_memo_get(mx, uri, "k/a.bin", "etag-1", 10, sha) == 0);
	CHECK_STR(sha, HEX_B);
	/* every field is part of the key */
	CHECK(mindex_memo_get(mx, uri, "k/a.bin", "etag-2", 10, sha) ==
	      DMFS_ERR_NOT_FOUND);
	CHECK(mindex_memo_get(mx, uri, "k/a.bin", "etag-1", 11, sha) ==
	      DMFS_ERR_NOT_FOUND);
	CHECK(mindex_memo_get(mx, uri, "k/a.bi", "etag-1", 10, sha) ==
	      DMFS_ERR_NOT_FOUND);
	CHECK(mindex_memo_get(mx, "s3://other", "k/a.bin", "etag-1", 10, sha) ==
	      DMFS_ERR_NOT_FOUND);
	/* fields are separated: ("k/a.bin", "etag-1") is not
	 * ("k/a.bine", "tag-1") */
	CHECK(mindex_memo_get(mx, uri, "k/a.bine", "tag-1", 10, sha) ==
	      DMFS_ERR_NOT_FOUND);
	/* replaced */
	CHECK(mindex_memo_put(mx, uri, "k/a.bin", "etag-1", 10, HEX_A) == 0);
	CHECK(mindex_memo_get(mx, uri, "k/a.bin", "etag-1", 10, sha) == 0);
	CHECK_STR(sha, HEX_A);
	/* an unknown ETag names no content */
	CHECK(mindex_memo_put(mx, uri, "k/b", "", 1, HEX_A) == 0);
	CHECK(mindex_memo_get(mx, uri, "k/b", "", 1, sha) ==
	      DMFS_ERR_NOT_FOUND);
	CHECK(mindex_memo_put(mx, uri, "k/c", "e", 1, "nothex") ==
	      DMFS_ERR_INVAL);
	mindex_close(mx);
}

/* Memo writes and index reads from many threads at once. */
struct worker {
	struct mindex *mx;
	const char *hash;
	int id, errors;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char key[64], sha[65], want[65];
	bool is_dir;

	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "w%d/%d", w->id, i);
		snprintf(want, sizeof(want), "%064x", w->id * 1000 + i);
		if (mindex_memo_put(w->mx, "s3://b", key, "e", 1, want))
			w->errors++;
		if (mindex_memo_get(w->mx, "s3://b", key, "e", 1, sha) ||
		    strcmp(sha, want))
			w->errors++;
		if (mindex_stat(w->mx, w->hash, "b/d", &is_dir, NULL) ||
		    !is_dir)
			w->errors++;
	}
	return NULL;
}

static void test_threads(const char *hash)
{
	struct mindex *mx = open_index();
	struct worker w[8];
	pthread_t th[8];

	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){.mx = mx, .hash = hash, .id = i};
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		CHECK(w[i].errors == 0);
	}
	mindex_close(mx);
}

/* Two processes index the same manifest at the same moment: both
 * succeed, and one complete index results. */
static void test_two_processes(void)
{
	char hash[65], path[4096], msg[512];
	pid_t pid[2];
	int status;
	struct mindex *mx;
	uint64_t n = 0;

	CHECK(write_manifest("twice", make_big, 20000, hash) == 0);
	path_of(path, sizeof(path), "twice");
	for (int i = 0; i < 2; i++) {
		pid[i] = fork();
		if (pid[i] == 0) {
			struct mindex *c = NULL;
			int rc = mindex_open(cache_dir, &c);
			if (!rc)
				rc = mindex_add(c, hash, path, &n, msg,
						sizeof(msg));
			mindex_close(c);
			_exit(rc || n != 20000 ? 1 : 0);
		}
	}
	for (int i = 0; i < 2; i++) {
		CHECK(waitpid(pid[i], &status, 0) == pid[i]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	mx = open_index();
	CHECK(mindex_has(mx, hash));
	struct listing l = {0};
	CHECK(mindex_readdir(mx, hash, "train", NULL, collect, &l) == 0);
	CHECK(l.n == 20);
	mindex_close(mx);
}

/* Records in the index's "entries" database, read with LMDB directly
 * (the index must be closed: one environment per process). */
static size_t count_entries(void)
{
	char dir[sizeof(cache_dir) + 16];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat st = {0};

	snprintf(dir, sizeof(dir), "%s/index", cache_dir);
	if (mdb_env_create(&env))
		return (size_t)-1;
	mdb_env_set_maxdbs(env, 8);
	if (mdb_env_open(env, dir, MDB_RDONLY, 0600) ||
	    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) {
		mdb_env_close(env);
		return (size_t)-1;
	}
	if (!mdb_dbi_open(txn, "entries", 0, &dbi))
		mdb_stat(txn, dbi, &st);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return st.ms_entries;
}

static void test_big(void)
{
	size_t before = count_entries();
	struct mindex *mx = open_index();
	char hash[65], path[4096], msg[512], name[64];
	struct mindex_ent e;
	struct rusage ru;
	uint64_t n = 0;
	bool is_dir;
	double t0, t1;
	int rc;

	CHECK(write_manifest("big", make_big, BIG_N, hash) == 0);
	path_of(path, sizeof(path), "big");
	t0 = now();
	rc = mindex_add(mx, hash, path, &n, msg, sizeof(msg));
	t1 = now();
	CHECK(rc == 0 && n == BIG_N);
	getrusage(RUSAGE_SELF, &ru);
	printf("indexed %d entries in %.3f s: %.0f entries/s (max RSS %ld "
	       "MiB)\n",
	       BIG_N, t1 - t0, BIG_N / (t1 - t0), ru.ru_maxrss / 1024);

	struct listing l = {0};
	CHECK(mindex_readdir(mx, hash, "", NULL, collect, &l) == 0);
	CHECK_STR(joined(&l), "train/");
	memset(&l, 0, sizeof(l));
	t0 = now();
	CHECK(mindex_readdir(mx, hash, "train", NULL, collect, &l) == 0);
	t1 = now();
	CHECK(l.n == BIG_N / 1000);
	CHECK_STR(l.names[0], "shard000");
	CHECK_STR(l.names[63], "shard063");
	printf("readdir of 100 directories over %d entries: %.3f ms\n", BIG_N,
	       (t1 - t0) * 1e3);
	memset(&l, 0, sizeof(l));
	CHECK(mindex_readdir(mx, hash, "train/shard042", "sample042997.png",
			     collect, &l) == 0);
	CHECK_STR(joined(&l), "sample042998.png sample042999.png");
	CHECK(l.sizes[1] == 1000 + 42999);

	t0 = now();
	for (int i = 0; i < BIG_N; i += 7) {
		snprintf(name, sizeof(name), "train/shard%03d/sample%06d.png",
			 i / 1000, i);
		if (mindex_stat(mx, hash, name, &is_dir, &e) || is_dir ||
		    e.size != 1000u + (unsigned)i) {
			CHECK(!"stat of an indexed file");
			break;
		}
		mindex_ent_clear(&e);
	}
	t1 = now();
	printf("stat: %.0f lookups/s\n", (BIG_N / 7) / (t1 - t0));
	CHECK(mindex_remove(mx, hash) == 0);
	CHECK(!mindex_has(mx, hash));
	mindex_close(mx);
	/* every entry of it went */
	CHECK(before != (size_t)-1 && count_entries() == before);
}

int main(void)
{
	char hash[65];

	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	/* Shadowed files and skipped paths are logged as warnings. */
	dmfs_log_set_level(DMFS_LOG_ERROR);
	path_of(cache_dir, sizeof(cache_dir), "cache");
	test_small();
	test_malformed();
	test_long_path();
	test_odd_name();
	test_memo();
	CHECK(write_manifest("small2", make_sample, NSAMPLES, hash) == 0);
	{
		struct mindex *mx = open_index();
		char path[4096], msg[256];
		path_of(path, sizeof(path), "small2");
		CHECK(mindex_add(mx, hash, path, NULL, msg, sizeof(msg)) == 0);
		mindex_close(mx);
	}
	test_threads(hash);
	test_two_processes();
	test_big();
	unit_rm_tree(root);
	return unit_done("test_mindex");
}
