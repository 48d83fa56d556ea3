/*
 * test_bcache.c - the block cache against real LMDB environments in a
 * temporary directory: round trips, persistence, LRU eviction, checksum
 * failures on disk, stale readers of killed processes, concurrency, a full
 * map.  BCACHE_BENCH=1 adds a throughput measurement (256 x 1 MiB).
 */
#include "config.h"

#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../src/bcache_int.h" /* bcache_db_trim */
#include "dmfs/bcache.h"
#include "dmfs/crc32c.h"
#include "dmfs/log.h"
#include "unit.h"

#ifndef MiB
#define MiB (1024ull * 1024)
#endif

static char root[] = "/tmp/test_bcache.XXXXXX";

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", root, name);
}

/* Deterministic bytes: the same seed always gives the same block. */
static void fill(unsigned char *p, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)(x >> 24);
	}
}

static unsigned char *pattern(size_t len, uint64_t seed)
{
	unsigned char *p = malloc(len ? len : 1);

	if (!p)
		abort();
	fill(p, len, seed);
	return p;
}

static struct bcache *open_cache(const char *dir, uint64_t limit,
				 uint64_t map_size)
{
	struct bcache_opts o = {
	    .dir = dir, .limit = limit, .map_size = map_size};
	struct bcache *bc = NULL;
	int rc = bcache_open(&o, &bc);

	CHECK(rc == 0 && bc != NULL);
	if (!bc) {
		fprintf(stderr, "cannot open %s: %s\n", dir, dmfs_strerror(rc));
		exit(1);
	}
	return bc;
}

/* get the whole block and compare; 1 when it matches */
static int get_is(struct bcache *bc, const char *key, const void *want,
		  size_t len)
{
	unsigned char *buf = malloc(len + 16);
	size_t got = 0;
	int rc, ok;

	rc = bcache_get(bc, key, strlen(key), buf, 0, len + 16, &got);
	ok = rc == 0 && got == len && memcmp(buf, want, len) == 0;
	free(buf);
	return ok;
}

static int get_rc(struct bcache *bc, const char *key)
{
	unsigned char buf[64];
	size_t got = 0;

	return bcache_get(bc, key, strlen(key), buf, 0, sizeof(buf), &got);
}

static uint32_t crc_bitwise(const unsigned char *p, size_t n)
{
	uint32_t c = ~0u;

	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
	}
	return ~c;
}

static void test_crc32c(void)
{
	static const size_t lens[] = {0,     1,	    7,	   8,	  9,
				      63,    767,   768,   769,	  24575,
				      24576, 24577, 49152, 100003};
	unsigned char zeros[32] = {0}, ones[32];
	unsigned char *p = pattern(100010, 42);

	memset(ones, 0xff, sizeof(ones));
	CHECK(crc32c(0, "123456789", 9) == 0xE3069283u);
	CHECK(crc32c(0, "", 0) == 0);
	CHECK(crc32c(0, zeros, 32) == 0x8A9136AAu); /* RFC 3720 B.4 */
	CHECK(crc32c(0, ones, 32) == 0x62A8AB43u);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (size_t off = 0; off < 4; off++) {
			size_t n = lens[i], half = n / 3;
			uint32_t want = crc_bitwise(p + off, n);

			CHECK(crc32c(0, p + off, n) == want);
			CHECK(crc32c(crc32c(0, p + off, half), p + off + half,
				     n - half) == want);
		}
	}
	free(p);
}

static void test_roundtrip(void)
{
	unsigned char *a = pattern(100000, 1), *b = pattern(50000, 2);
	unsigned char buf[4096];
	struct bcache_stats st;
	struct bcache *bc;
	char dir[128];
	size_t got;

	path_of(dir, sizeof(dir), "roundtrip/sub/dir");
	bc = open_cache(dir, 64 * MiB, 0);

	CHECK(bcache_put(bc, "k1", 2, a, 100000) == 0);
	/* readable at once, from the queue */
	CHECK(get_is(bc, "k1", a, 100000)); /* hit 1 */
	CHECK(bcache_contains(bc, "k1", 2) == 1);
	bcache_sync(bc);
	CHECK(get_is(bc, "k1", a, 100000)); /* 2 */

	/* partial reads */
	CHECK(bcache_get(bc, "k1", 2, buf, 1000, 500, &got) == 0); /* 3 */
	CHECK(got == 500 && memcmp(buf, a + 1000, 500) == 0);
	CHECK(bcache_get(bc, "k1", 2, buf, 99990, 100, &got) == 0); /* 4 */
	CHECK(got == 10 && memcmp(buf, a + 99990, 10) == 0);
	CHECK(bcache_get(bc, "k1", 2, buf, 100000, 100, &got) == 0); /* 5 */
	CHECK(got == 0);
	CHECK(bcache_get(bc, "k1", 2, buf, 1u << 30, 100, &got) == 0); /* 6 */
	CHECK(got == 0);

	/* a short block */
	CHECK(bcache_put(bc, "short", 5, "0123456789", 10) == 0);
	CHECK(bcache_get(bc, "short", 5, buf, 0, sizeof(buf), &got) == 0);
	CHECK(got == 10 && memcmp(buf, "0123456789", 10) == 0); /* 7 */
	bcache_sync(bc);
	CHECK(bcache_get(bc, "short", 5, buf, 4, sizeof(buf), &got) == 0);
	CHECK(got == 6 && memcmp(buf, "456789", 6) == 0); /* 8 */

	/* an empty block */
	CHECK(bcache_put(bc, "empty", 5, NULL, 0) == 0);
	bcache_sync(bc);
	CHECK(bcache_get(bc, "empty", 5, buf, 0, sizeof(buf), &got) == 0);
	CHECK(got == 0); /* 9 */

	/* a miss */
	got = 123;
	CHECK(bcache_get(bc, "nope", 4, buf, 0, sizeof(buf), &got) ==
	      DMFS_ERR_NOT_FOUND);
	CHECK(got == 0);
	CHECK(bcache_contains(bc, "nope", 4) == 0);

	/* overwrite: the newer copy wins, queued and stored */
	CHECK(bcache_put(bc, "k1", 2, b, 50000) == 0);
	CHECK(get_is(bc, "k1", b, 50000)); /* 10 */
	bcache_sync(bc);
	CHECK(get_is(bc, "k1", b, 50000)); /* 11 */

	bcache_get_stats(bc, &st);
	CHECK(st.bytes == 50000 + 10 + 0);
	CHECK(st.limit == 64 * MiB);
	CHECK(st.hits == 11);
	CHECK(st.misses == 1);
	CHECK(st.puts == 4);
	CHECK(st.corrupt == 0 && st.put_errors == 0 && st.evictions == 0);
	bcache_close(bc);
	free(a);
	free(b);
}

static void test_persist(void)
{
	unsigned char *a = pattern(300000, 3), *b = pattern(1, 4),
		      *c = pattern(2 * MiB, 5);
	struct bcache_stats st;
	struct bcache *bc;
	char dir[128];

	path_of(dir, sizeof(dir), "persist");
	bc = open_cache(dir, 64 * MiB, 0);
	CHECK(bcache_put(bc, "a", 1, a, 300000) == 0);
	CHECK(bcache_put(bc, "b", 1, b, 1) == 0);
	CHECK(bcache_put(bc, "c", 1, c, 2 * MiB) == 0);
	bcache_close(bc); /* no sync: close drains the queue */

	bc = open_cache(dir, 64 * MiB, 0);
	CHECK(get_is(bc, "a", a, 300000));
	CHECK(get_is(bc, "b", b, 1));
	CHECK(get_is(bc, "c", c, 2 * MiB));
	bcache_get_stats(bc, &st);
	CHECK(st.bytes == 300000 + 1 + 2 * MiB);
	CHECK(st.hits == 3 && st.puts == 0);
	bcache_close(bc);
	free(a);
	free(b);
	free(c);
}

static int released;
static void count_release(void *ctx)
{
	released += *(int *)ctx;
}

/* bcache_put_shared: readable at once, borrowed until committed, released
 * exactly once; a rejected put does not release. */
static void test_put_shared(void)
{
	unsigned char *a = pattern(200000, 11);
	int one = 1;
	char dir[128];
	struct bcache *bc;

	path_of(dir, sizeof(dir), "shared");
	bc = open_cache(dir, 64 * MiB, 0);
	released = 0;
	CHECK(bcache_put_shared(bc, "s", 1, a, 200000, count_release, &one) == 0);
	CHECK(get_is(bc, "s", a, 200000));
	bcache_sync(bc);
	CHECK(released == 1);
	CHECK(get_is(bc, "s", a, 200000));
	CHECK(bcache_put_shared(bc, "", 0, a, 10, count_release, &one) ==
	      DMFS_ERR_INVAL);
	bcache_close(bc);
	CHECK(released == 1);
	bc = open_cache(dir, 64 * MiB, 0);
	CHECK(get_is(bc, "s", a, 200000));
	bcache_close(bc);
	free(a);
}

/* Leave a writer marker as a process of another boot would have. */
static void fake_marker(const char *dir, const char *name)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/writers/%s", dir, name);
	FILE *f = fopen(p, "w");
	CHECK(f != NULL);
	if (f)
		fclose(f);
}

/*
 * The crash guard: a marker of this boot whose process is gone (kill -9)
 * keeps the cache; a marker of another boot (a power loss while writing)
 * discards it.
 */
static void test_guard(void)
{
	unsigned char *a = pattern(5000, 9);
	char dir[128], boot[64] = "", name[128];
	struct bcache *bc;
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");

	if (f) {
		if (!fgets(boot, sizeof(boot), f))
			boot[0] = '\0';
		fclose(f);
	}
	boot[strcspn(boot, "\n")] = '\0';
	path_of(dir, sizeof(dir), "guard");
	bc = open_cache(dir, 64 * MiB, 0);
	CHECK(bcache_put(bc, "g", 1, a, 5000) == 0);
	bcache_close(bc);

	snprintf(name, sizeof(name), "%s.999999999", boot);
	fake_marker(dir, name); /* same boot, dead pid: keep */
	bc = open_cache(dir, 64 * MiB, 0);
	CHECK(get_is(bc, "g", a, 5000));
	bcache_close(bc);

	fake_marker(dir, "00000000-0000-0000-0000-000000000000.1");
	bc = open_cache(dir, 64 * MiB, 0);
	CHECK(get_rc(bc, "g") == DMFS_ERR_NOT_FOUND);
	CHECK(bcache_put(bc, "g", 1, a, 5000) == 0);
	CHECK(get_is(bc, "g", a, 5000));
	bcache_close(bc);
	free(a);
}

/*
 * 16 old blocks fill the limit, then 32 new ones arrive while the first 4
 * old ones keep being read: those 4 survive, the 12 unread ones go.
 */
static void test_evict(void)
{
	const uint64_t limit = 16 * MiB;
	unsigned char *blk = malloc(MiB);
	struct bcache_stats st;
	struct bcache *bc;
	char dir[128], key[32];
	int ok = 1;

	path_of(dir, sizeof(dir), "evict");
	bc = open_cache(dir, limit, 0);
	for (int i = 0; i < 16; i++) {
		snprintf(key, sizeof(key), "a/%02d", i);
		fill(blk, MiB, 100 + i);
		CHECK(bcache_put(bc, key, strlen(key), blk, MiB) == 0);
	}
	bcache_sync(bc);
	bcache_get_stats(bc, &st);
	CHECK(st.bytes == 16 * MiB && st.evictions == 0);
	for (int r = 0; r < 9; r++) {
		for (int i = 0; i < 4; i++) {
			snprintf(key, sizeof(key), "a/%02d", i);
			fill(blk, MiB, 100 + i);
			ok &= get_is(bc, key, blk, MiB);
		}
		if (r == 8)
			break;
		for (int j = 0; j < 4; j++) {
			snprintf(key, sizeof(key), "b/%02d", r * 4 + j);
			fill(blk, MiB, 200 + r * 4 + j);
			CHECK(bcache_put(bc, key, strlen(key), blk, MiB) == 0);
		}
		bcache_sync(bc);
	}
	CHECK(ok);
	bcache_sync(bc);
	bcache_get_stats(bc, &st);
	CHECK(st.bytes <= limit);
	CHECK(st.bytes % MiB == 0);
	CHECK(st.evictions == 48 - st.bytes / MiB);
	for (int i = 0; i < 16; i++) {
		snprintf(key, sizeof(key), "a/%02d", i);
		CHECK(bcache_contains(bc, key, strlen(key)) == (i < 4));
	}
	for (int j = 28; j < 32; j++) { /* the newest survive too */
		snprintf(key, sizeof(key), "b/%02d", j);
		CHECK(bcache_contains(bc, key, strlen(key)) == 1);
	}
	CHECK(bcache_contains(bc, "b/00", 4) == 0);
	bcache_close(bc);

	/* a smaller limit on reopen evicts at the next commit */
	bc = open_cache(dir, 4 * MiB, 0);
	CHECK(bcache_put(bc, "c", 1, "x", 1) == 0);
	bcache_sync(bc);
	bcache_get_stats(bc, &st);
	CHECK(st.bytes <= 4 * MiB);
	CHECK(bcache_contains(bc, "c", 1) == 1);
	/* room for 3 blocks under 90%: the last 3 read, newest first */
	CHECK(bcache_contains(bc, "a/03", 4) == 1);
	CHECK(bcache_contains(bc, "a/02", 4) == 1);
	CHECK(bcache_contains(bc, "a/01", 4) == 1);
	CHECK(bcache_contains(bc, "a/00", 4) == 0);
	CHECK(bcache_contains(bc, "b/31", 4) == 0);
	bcache_close(bc);
	free(blk);
}

/* Flip one byte of every copy of needle in the file; returns the copies. */
static int corrupt_file(const char *file, const unsigned char *needle,
			size_t nlen, size_t at)
{
	int fd = open(file, O_RDWR);
	struct stat sb;
	unsigned char *all;
	int found = 0;

	if (fd < 0 || fstat(fd, &sb))
		return -1;
	all = malloc(sb.st_size);
	if (!all || pread(fd, all, sb.st_size, 0) != sb.st_size) {
		free(all);
		close(fd);
		return -1;
	}
	for (off_t i = 0; i + (off_t)nlen <= sb.st_size; i++) {
		if (memcmp(all + i, needle, nlen))
			continue;
		unsigned char c = all[i + at] ^ 0x55;

		if (pwrite(fd, &c, 1, i + at) != 1)
			found = -1000;
		found++;
	}
	free(all);
	close(fd);
	return found;
}

static void test_corrupt(void)
{
	unsigned char *victim = pattern(256 * 1024, 777),
		      *good = pattern(200000, 778);
	struct bcache_stats st;
	struct bcache *bc;
	char dir[128], file[160];
	size_t got = 99;
	unsigned char buf[100];

	path_of(dir, sizeof(dir), "corrupt");
	bc = open_cache(dir, 64 * MiB, 0);
	CHECK(bcache_put(bc, "victim", 6, victim, 256 * 1024) == 0);
	CHECK(bcache_put(bc, "good", 4, good, 200000) == 0);
	bcache_close(bc);

	snprintf(file, sizeof(file), "%s/data.mdb", dir);
	CHECK(corrupt_file(file, victim + 100000, 64, 10) == 1);

	bc = open_cache(dir, 64 * MiB, 0);
	/* the flipped byte is far from the range asked: still caught */
	CHECK(bcache_get(bc, "victim", 6, buf, 0, sizeof(buf), &got) ==
	      DMFS_ERR_CORRUPT);
	CHECK(got == 0);
	bcache_get_stats(bc, &st);
	CHECK(st.corrupt == 1);
	CHECK(st.bytes == 200000);
	CHECK(get_rc(bc, "victim") == DMFS_ERR_NOT_FOUND);
	CHECK(bcache_contains(bc, "victim", 6) == 0);
	CHECK(get_is(bc, "good", good, 200000));
	bcache_get_stats(bc, &st);
	CHECK(st.corrupt == 1 && st.misses == 2 && st.hits == 1);
	/* and it can be stored again */
	CHECK(bcache_put(bc, "victim", 6, victim, 256 * 1024) == 0);
	bcache_sync(bc);
	CHECK(get_is(bc, "victim", victim, 256 * 1024));
	bcache_close(bc);
	free(victim);
	free(good);
}

static void test_prefix(void)
{
	static const struct {
		const char *key;
		size_t len;
	} blocks[] = {{"obj1/0", 1000},
		      {"obj1/1", 2000},
		      {"obj10/0", 4000},
		      {"obj2/0", 8000},
		      {"obj0", 16000}};
	unsigned char *p = pattern(16000, 9);
	struct bcache *bc;
	char dir[128];

	path_of(dir, sizeof(dir), "prefix");
	bc = open_cache(dir, 64 * MiB, 0);
	for (size_t i = 0; i < 5; i++)
		CHECK(bcache_put(bc, blocks[i].key, strlen(blocks[i].key), p,
				 blocks[i].len) == 0);
	for (int pass = 0; pass < 2; pass++) { /* queued, then stored */
		CHECK(bcache_bytes_with_prefix(bc, "obj1/", 5) == 3000);
		CHECK(bcache_bytes_with_prefix(bc, "obj1", 4) == 7000);
		CHECK(bcache_bytes_with_prefix(bc, "obj", 3) == 31000);
		CHECK(bcache_bytes_with_prefix(bc, "", 0) == 31000);
		CHECK(bcache_bytes_with_prefix(bc, "obj2/0", 6) == 8000);
		CHECK(bcache_bytes_with_prefix(bc, "obj3", 4) == 0);
		CHECK(bcache_bytes_with_prefix(bc, "zzz", 3) == 0);
		bcache_sync(bc);
	}
	/* queued copies replace the stored one, the newest counts */
	CHECK(bcache_put(bc, "obj1/1", 6, p, 500) == 0);
	CHECK(bcache_bytes_with_prefix(bc, "obj1/", 5) == 1500);
	CHECK(bcache_put(bc, "obj1/1", 6, p, 700) == 0);
	CHECK(bcache_put(bc, "obj1/2", 6, p, 300) == 0);
	CHECK(bcache_bytes_with_prefix(bc, "obj1/", 5) == 2000);
	bcache_sync(bc);
	CHECK(bcache_bytes_with_prefix(bc, "obj1/", 5) == 2000);
	bcache_close(bc);
	free(p);
}

struct reader_find {
	pid_t pid;
	int found;
};

static int reader_line(const char *msg, void *ctx)
{
	struct reader_find *f = ctx;
	int pid;

	if (sscanf(msg, "%d", &pid) == 1 && pid == f->pid)
		f->found = 1;
	return 0;
}

/* Whether pid holds a slot in the reader table of the env in dir. */
static int reader_listed(const char *dir, pid_t pid)
{
	struct reader_find f = {pid, 0};
	MDB_env *env;

	if (mdb_env_create(&env))
		return -1;
	mdb_env_set_maxdbs(env, 32);
	if (mdb_env_open(env, dir, MDB_NOTLS, 0600)) {
		mdb_env_close(env);
		return -1;
	}
	mdb_reader_list(env, reader_line, &f);
	mdb_env_close(env);
	return f.found;
}

/*
 * A process killed inside a read transaction leaves its slot behind while
 * another process (the holder, another mount) keeps the environment open;
 * the next bcache_open clears it.
 */
static void test_stale_reader(void)
{
	int hold[2], go[2], ready[2], status;
	struct bcache *bc;
	pid_t holder, victim;
	char dir[128], c;

	path_of(dir, sizeof(dir), "stale");
	bc = open_cache(dir, 64 * MiB, 0);
	CHECK(bcache_put(bc, "x", 1, "payload", 7) == 0);
	bcache_close(bc);

	if (pipe(hold) || pipe(go) || pipe(ready)) {
		CHECK(!"pipe");
		return;
	}
	fflush(NULL);
	holder = fork();
	if (holder == 0) {
		struct bcache_opts o = {.dir = dir, .limit = 64 * MiB};
		struct bcache *b;

		close(hold[0]);
		close(go[1]);
		if (bcache_open(&o, &b))
			_exit(2);
		if (write(hold[1], "r", 1) != 1)
			_exit(3);
		while (read(go[0], &c, 1) > 0)
			;
		bcache_close(b);
		_exit(0);
	}
	close(hold[1]);
	close(go[0]);
	CHECK(read(hold[0], &c, 1) == 1);

	victim = fork();
	if (victim == 0) {
		MDB_env *env;
		MDB_txn *txn;

		if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 32) ||
		    mdb_env_open(env, dir, MDB_NOTLS, 0600) ||
		    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))
			_exit(2);
		if (write(ready[1], "r", 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	close(ready[1]);
	CHECK(read(ready[0], &c, 1) == 1);
	kill(victim, SIGKILL);
	CHECK(waitpid(victim, &status, 0) == victim);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	CHECK(reader_listed(dir, victim) == 1);

	dmfs_log_set_level(DMFS_LOG_INFO); /* shows "1 stale reader" */
	bc = open_cache(dir, 64 * MiB, 0);
	dmfs_log_set_level(DMFS_LOG_WARN);
	CHECK(get_rc(bc, "x") == 0);
	CHECK(bcache_put(bc, "y", 1, "more", 4) == 0);
	bcache_sync(bc);
	bcache_close(bc);
	CHECK(reader_listed(dir, victim) == 0);

	close(go[1]); /* the holder closes and exits */
	CHECK(waitpid(holder, &status, 0) == holder);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(hold[0]);
	close(ready[0]);
}

/* key n of writer p (keys 0-9 are written by both) */
static int twoproc_key(int p, int i, char *key, size_t ksz)
{
	int n = i < 10 ? i : 100 * (p + 1) + i;

	snprintf(key, ksz, "p/%d", n);
	return n;
}

static int twoproc_child(const char *dir, int p, unsigned char *blk, size_t len)
{
	struct bcache_opts o = {.dir = dir, .limit = 64 * MiB};
	struct bcache *b;
	char key[32];

	if (bcache_open(&o, &b))
		return 2;
	for (int i = 0; i < 40; i++) {
		fill(blk, len, 1000 + twoproc_key(p, i, key, sizeof(key)));
		if (bcache_put(b, key, strlen(key), blk, len))
			return 3;
	}
	bcache_close(b);
	return 0;
}

/*
 * Two processes write into one directory at once, 10 keys in common: every
 * block is readable afterwards and the shared total is exact.
 */
static void test_two_processes(void)
{
	const size_t len = 256 * 1024;
	unsigned char *blk = malloc(len);
	struct bcache_stats st;
	struct bcache *bc;
	char dir[128], key[32];
	pid_t pid[2];
	int ok = 1, status;

	path_of(dir, sizeof(dir), "twoproc");
	fflush(NULL);
	for (int p = 0; p < 2; p++) {
		pid[p] = fork();
		if (pid[p] == 0)
			_exit(twoproc_child(dir, p, blk, len));
	}
	for (int p = 0; p < 2; p++) {
		CHECK(waitpid(pid[p], &status, 0) == pid[p]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	bc = open_cache(dir, 64 * MiB, 0);
	bcache_get_stats(bc, &st);
	CHECK(st.bytes == 70 * len);
	for (int p = 0; p < 2; p++) {
		for (int i = 0; i < 40; i++) {
			fill(blk, len,
			     1000 + twoproc_key(p, i, key, sizeof(key)));
			ok &= get_is(bc, key, blk, len);
		}
	}
	CHECK(ok);
	bcache_close(bc);
	free(blk);
}

#define CONC_THREADS 8
#define CONC_OPS 200

struct worker {
	struct bcache *bc;
	int id;
	atomic_int *bad;
};

/* the block named t<thread>/<i>: its length and bytes follow from the key */
static size_t conc_block(int t, int i, char *key, size_t ksz,
			 unsigned char *data)
{
	uint32_t seed;
	size_t len;

	snprintf(key, ksz, "t%d/%d", t, i);
	seed = crc32c(0, key, strlen(key));
	len = 1 + seed % (64 * 1024);
	if (data)
		fill(data, len, seed);
	return len;
}

static void *conc_main(void *arg)
{
	struct worker *w = arg;
	unsigned char *data = malloc(64 * 1024), *want = malloc(64 * 1024),
		      *buf = malloc(64 * 1024);
	uint64_t x = (uint64_t)w->id * 7919 + 1;
	char key[32];

	for (int i = 0; i < CONC_OPS; i++) {
		size_t len = conc_block(w->id, i, key, sizeof(key), data);

		if (bcache_put(w->bc, key, strlen(key), data, len))
			atomic_fetch_add(w->bad, 1);
		/* read 3 blocks of any thread, stored, queued or absent */
		for (int k = 0; k < 3; k++) {
			size_t got, off;
			int t, j, rc;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			t = (int)(x % CONC_THREADS);
			j = (int)((x >> 8) % (i + 1));
			len = conc_block(t, j, key, sizeof(key), want);
			off = k == 2 ? (x >> 20) % len : 0;
			rc = bcache_get(w->bc, key, strlen(key), buf, off,
					64 * 1024, &got);
			if (rc == DMFS_ERR_NOT_FOUND)
				continue;
			if (rc || got != len - off ||
			    memcmp(buf, want + off, got))
				atomic_fetch_add(w->bad, 1);
		}
		if (i % 50 == 49) {
			bcache_sync(w->bc);
			(void)bcache_bytes_with_prefix(w->bc, "t", 1);
		}
	}
	free(data);
	free(want);
	free(buf);
	return NULL;
}

static void test_concurrent(void)
{
	struct worker w[CONC_THREADS];
	pthread_t th[CONC_THREADS];
	struct bcache_stats st;
	unsigned char *want = malloc(64 * 1024);
	atomic_int bad = 0;
	struct bcache *bc;
	char dir[128], key[32];
	int ok = 1, present = 0;

	path_of(dir, sizeof(dir), "concurrent");
	bc = open_cache(dir, 4 * MiB, 0); /* small: evicting all along */
	for (int i = 0; i < CONC_THREADS; i++) {
		w[i] = (struct worker){bc, i, &bad};
		CHECK(pthread_create(&th[i], NULL, conc_main, &w[i]) == 0);
	}
	for (int i = 0; i < CONC_THREADS; i++)
		pthread_join(th[i], NULL);
	CHECK(atomic_load(&bad) == 0);
	bcache_sync(bc);
	bcache_get_stats(bc, &st);
	CHECK(st.puts == CONC_THREADS * CONC_OPS);
	CHECK(st.corrupt == 0 && st.put_errors == 0);
	CHECK(st.evictions > 0);
	CHECK(st.bytes <= 4 * MiB);
	for (int t = 0; t < CONC_THREADS; t++) {
		for (int i = 0; i < CONC_OPS; i++) {
			size_t len = conc_block(t, i, key, sizeof(key), want);

			if (bcache_contains(bc, key, strlen(key))) {
				present++;
				ok &= get_is(bc, key, want, len);
			}
		}
	}
	CHECK(ok);
	CHECK(present > 0);
	CHECK(bcache_bytes_with_prefix(bc, "t", 1) == st.bytes);
	bcache_close(bc);
	free(want);
}

static void test_invalid(void)
{
	static char big[BCACHE_KEY_MAX + 1];
	struct bcache_opts o = {.dir = NULL, .limit = MiB};
	struct bcache_stats st;
	struct bcache *bc, *none = (struct bcache *)1;
	char dir[128], file[160];
	unsigned char buf[8];
	size_t got;
	int fd;

	memset(big, 'k', sizeof(big));
	path_of(dir, sizeof(dir), "invalid");
	bc = open_cache(dir, 64 * MiB, 0);
	CHECK(bcache_put(bc, big, BCACHE_KEY_MAX + 1, "x", 1) ==
	      DMFS_ERR_INVAL);
	CHECK(bcache_get(bc, big, BCACHE_KEY_MAX + 1, buf, 0, 1, &got) ==
	      DMFS_ERR_INVAL);
	CHECK(bcache_contains(bc, big, BCACHE_KEY_MAX + 1) == 0);
	CHECK(bcache_put(bc, "", 0, "x", 1) == DMFS_ERR_INVAL);
	/* rejected before the data is read */
	CHECK(bcache_put(bc, "v", 1, big, 64 * MiB + 1) == DMFS_ERR_INVAL);
	CHECK(bcache_put(bc, big, BCACHE_KEY_MAX, "x", 1) == 0);
	bcache_sync(bc);
	CHECK(bcache_get(bc, big, BCACHE_KEY_MAX, buf, 0, 8, &got) == 0);
	CHECK(got == 1 && buf[0] == 'x');
	bcache_get_stats(bc, &st);
	CHECK(st.puts == 1 && st.bytes == 1);
	bcache_close(bc);
	bcache_close(NULL);

	CHECK(bcache_open(&o, &none) == DMFS_ERR_INVAL && none == NULL);
	snprintf(file, sizeof(file), "%s/plainfile", root);
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	close(fd);
	o.dir = file;
	dmfs_log_set_level(-1); /* the expected error is not news */
	CHECK(bcache_open(&o, &none) == DMFS_ERR_IO && none == NULL);
	dmfs_log_set_level(DMFS_LOG_WARN);
}

/* A map too small for the data: evicts or drops, never fails a read. */
static void test_map_full(void)
{
	unsigned char *blk = malloc(MiB);
	struct bcache_stats st;
	struct bcache *bc;
	char dir[128], key[32];
	int ok = 1, present = 0;

	path_of(dir, sizeof(dir), "mapfull");
	dmfs_log_set_level(DMFS_LOG_ERROR); /* map full is expected here */
	bc = open_cache(dir, 1024 * MiB, 4 * MiB);
	for (int i = 0; i < 12; i++) {
		snprintf(key, sizeof(key), "m/%02d", i);
		fill(blk, MiB, 300 + i);
		CHECK(bcache_put(bc, key, strlen(key), blk, MiB) == 0);
	}
	bcache_sync(bc);
	bcache_get_stats(bc, &st);
	CHECK(st.bytes < 4 * MiB);
	CHECK(st.evictions + st.put_errors > 0);
	for (int i = 0; i < 12; i++) {
		snprintf(key, sizeof(key), "m/%02d", i);
		if (!bcache_contains(bc, key, strlen(key)))
			continue;
		present++;
		fill(blk, MiB, 300 + i);
		ok &= get_is(bc, key, blk, MiB);
	}
	CHECK(ok);
	CHECK(present > 0 && (uint64_t)present * MiB == st.bytes);
	CHECK(get_rc(bc, "m/11") == 0); /* the last put fits after evicting */
	bcache_close(bc);
	dmfs_log_set_level(DMFS_LOG_WARN);
	fprintf(stderr, "map full: %llu evictions, %llu put errors\n",
		(unsigned long long)st.evictions,
		(unsigned long long)st.put_errors);
	free(blk);
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct bench_reader {
	struct bcache *bc;
	int first, step, n, bad;
};

static void *bench_read(void *arg)
{
	struct bench_reader *r = arg;
	unsigned char *buf = malloc(MiB);
	char key[32];
	size_t got;

	for (int i = r->first; i < r->n; i += r->step) {
		snprintf(key, sizeof(key), "bench/%04d", i);
		if (bcache_get(r->bc, key, strlen(key), buf, 0, MiB, &got) ||
		    got != MiB)
			r->bad++;
	}
	free(buf);
	return NULL;
}

static void bench(void)
{
	const int n = 256;
	unsigned char *blk = pattern(MiB, 1);
	struct bench_reader r[4];
	pthread_t th[4];
	struct bcache *bc;
	char dir[128], key[32];
	double t0, t1;

	path_of(dir, sizeof(dir), "bench");
	bc = open_cache(dir, 2048 * MiB, 0);
	t0 = now_sec();
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "bench/%04d", i);
		memcpy(blk, &i, sizeof(i));
		CHECK(bcache_put(bc, key, strlen(key), blk, MiB) == 0);
	}
	bcache_sync(bc);
	t1 = now_sec();
	printf("bench: put+sync %d x 1 MiB: %.0f MB/s\n", n,
	       n * MiB / 1e6 / (t1 - t0));
	for (int pass = 0; pass < 2; pass++) {
		r[0] = (struct bench_reader){bc, 0, 1, n, 0};
		t0 = now_sec();
		bench_read(&r[0]);
		t1 = now_sec();
		CHECK(r[0].bad == 0);
		printf("bench: get %d x 1 MiB, 1 thread, pass %d: %.0f MB/s\n",
		       n, pass + 1, n * MiB / 1e6 / (t1 - t0));
	}
	t0 = now_sec();
	for (int i = 0; i < 4; i++) {
		r[i] = (struct bench_reader){bc, i, 4, n, 0};
		pthread_create(&th[i], NULL, bench_read, &r[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(r[i].bad == 0);
	}
	t1 = now_sec();
	printf("bench: get %d x 1 MiB, 4 threads: %.0f MB/s\n", n,
	       n * MiB / 1e6 / (t1 - t0));
	bcache_close(bc);
	free(blk);
}

/*
 * What a commit that failed for a full disk leaves (the file longer than
 * its last committed page) is cut off by bcache_db_trim, and the cache
 * reads, writes and reopens as before.
 */
static void test_trim(void)
{
	unsigned char *blk = malloc(256 * 1024);
	struct bcache *bc;
	struct stat sb;
	char dir[128], data[160], key[32];
	off_t size0;
	int ok = 1;

	path_of(dir, sizeof(dir), "trim");
	snprintf(data, sizeof(data), "%s/data.mdb", dir);
	bc = open_cache(dir, 64 * MiB, 0);
	for (int i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "t/%d", i);
		fill(blk, 256 * 1024, 500 + i);
		CHECK(bcache_put(bc, key, strlen(key), blk, 256 * 1024) == 0);
	}
	bcache_sync(bc);
	CHECK(stat(data, &sb) == 0);
	size0 = sb.st_size;
	CHECK(truncate(data, size0 + 8 * (off_t)MiB) == 0);
	bcache_db_trim(bc);
	CHECK(stat(data, &sb) == 0 && sb.st_size <= size0 && sb.st_size > 0);
	for (int i = 0; i < 16; i++) {
		snprintf(key, sizeof(key), "t/%d", i);
		fill(blk, 256 * 1024, 500 + i);
		if (i >= 8)
			CHECK(bcache_put(bc, key, strlen(key), blk,
					 256 * 1024) == 0);
	}
	bcache_sync(bc);
	bcache_close(bc);
	bc = open_cache(dir, 64 * MiB, 0);
	for (int i = 0; i < 16; i++) {
		snprintf(key, sizeof(key), "t/%d", i);
		fill(blk, 256 * 1024, 500 + i);
		ok &= get_is(bc, key, blk, 256 * 1024);
	}
	CHECK(ok);
	bcache_close(bc);
	free(blk);
}

int main(void)
{
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	test_crc32c();
	test_roundtrip();
	test_persist();
	test_guard();
	test_put_shared();
	test_evict();
	test_corrupt();
	test_prefix();
	test_stale_reader();
	test_two_processes();
	test_concurrent();
	test_invalid();
	test_map_full();
	test_trim();
	if (getenv("BCACHE_BENCH"))
		bench();
	unit_rm_tree(root);
	return unit_done("test_bcache");
}
