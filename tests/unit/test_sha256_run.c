/*
 * test_sha256_run.c - the running sha256 of a staged copy: after every
 * kind of change a file can see (appends, a rewrite inside, a write past
 * the end, truncations), it either equals the hash of the file's bytes
 * as they are (computed by dmfs_sha256_fd from a real file kept in step)
 * or declines; it never gives a wrong hash.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dmfs/sha256.h"
#include "unit.h"

static int fd = -1;
static struct dmfs_sha256_run *run;
static uint64_t size;

static void w(const char *s, uint64_t off)
{
	size_t n = strlen(s);
	if (pwrite(fd, s, n, (off_t)off) != (ssize_t)n)
		abort();
	if (off + n > size)
		size = off + n;
	dmfs_sha256_run_write(run, s, n, off);
}

static void tr(uint64_t to)
{
	if (ftruncate(fd, (off_t)to) != 0)
		abort();
	size = to;
	dmfs_sha256_run_truncate(run, to);
}

/* 1 when the run gives the file's hash, 0 when it declines; a wrong hash
 * is a failed check. */
static int gives(void)
{
	char got[65], want[65];

	if (!dmfs_sha256_run_get(run, size, got))
		return 0;
	CHECK(dmfs_sha256_fd(fd, 0, size, want) == 0);
	CHECK_STR(got, want);
	return 1;
}

int main(void)
{
	char path[] = "/tmp/test_sha256_run.XXXXXX";
	fd = mkstemp(path);
	CHECK(fd >= 0);
	unlink(path);
	run = dmfs_sha256_run_new();
	CHECK(run != NULL);

	CHECK(gives() == 1); /* empty */
	w("hello ", 0);
	w("world", 6);
	CHECK(gives() == 1);
	/* The hash can be taken again and the file grows on. */
	w("!", 11);
	CHECK(gives() == 1);

	/* A write past the end: no hash while the gap is there ... */
	w("tail", 20);
	CHECK(gives() == 0);
	/* ... nor after it is filled: the run does not cover "tail". */
	w("12345678", 12);
	CHECK(gives() == 0);
	/* A truncation to where the run ends makes it whole again. */
	tr(20);
	CHECK(gives() == 1);

	/* A rewrite inside what was hashed breaks it for good ... */
	w("J", 0);
	CHECK(gives() == 0);
	w("more", size);
	CHECK(gives() == 0);
	/* ... until the file is emptied (O_TRUNC). */
	tr(0);
	CHECK(gives() == 1);
	w("again", 0);
	CHECK(gives() == 1);

	/* Shrinking below the hashed part breaks it; growing past it
	 * (zeros) leaves no hash until the zeros are cut off again. */
	tr(10);
	CHECK(gives() == 0);
	tr(0);
	w("abc", 0);
	tr(100);
	CHECK(gives() == 0);
	tr(3);
	CHECK(gives() == 1);

	/* A zero-length write changes nothing. */
	dmfs_sha256_run_write(run, "", 0, 1);
	CHECK(gives() == 1);

	/* NULL-safe: a run that could not be made never gives a hash. */
	char out[65];
	dmfs_sha256_run_write(NULL, "x", 1, 0);
	dmfs_sha256_run_truncate(NULL, 0);
	CHECK(!dmfs_sha256_run_get(NULL, 0, out));

	dmfs_sha256_run_free(run);
	close(fd);
	return unit_done("test_sha256_run");
}
