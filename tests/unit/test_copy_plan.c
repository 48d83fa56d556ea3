/*
 * test_copy_plan.c - how a server-side copy too big for one CopyObject is
 * cut into UploadPartCopy ranges (s3_copy_plan): part counts at the
 * boundaries of the part size, the size of the last part, and parts that
 * grow so a huge source fits in S3's 10 000 parts without any part
 * passing 5 GiB; and what the errors of a part copy mean.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>

#include "dmfs/store_s3.h"
#include "unit.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define TIB (1ull << 40)

/* The ranges a plan makes cover [0, size) exactly, every part but the
 * last of the planned size, the last 1..part bytes, all within S3's
 * limits (every part but the last at least 5 MiB). */
static int plan_ok(uint64_t size, uint64_t part, uint32_t n)
{
	uint64_t last;

	if (n < 1 || n > S3_PARTS_MAX || part > S3_PART_MAX ||
	    part < S3_PART_MIN)
		return 0;
	if (size == 0)
		return n == 1;
	if ((uint64_t)(n - 1) * part >= size)
		return 0; /* an empty last part */
	last = size - (uint64_t)(n - 1) * part;
	return last >= 1 && last <= part;
}

static void check(uint64_t size, uint64_t limit, uint64_t want_part,
		  uint32_t want_n, int line)
{
	uint64_t part;
	uint32_t n;
	int rc = s3_copy_plan(size, limit, &part, &n);

	if (rc || part != want_part || n != want_n || !plan_ok(size, part, n))
		fprintf(stderr, "  (line %d: size %llu limit %llu: rc %d, "
			"part %llu x %u; want %llu x %u)\n", line,
			(unsigned long long)size, (unsigned long long)limit, rc,
			(unsigned long long)part, n,
			(unsigned long long)want_part, want_n);
	CHECK(rc == 0 && part == want_part && n == want_n &&
	      plan_ok(size, part, n));
}
#define PLAN(size, limit, part, n) check((size), (limit), (part), (n), __LINE__)

static void test_boundaries(void)
{
	/* 5 MiB parts: one byte either side of a part boundary. */
	PLAN(5 * MIB, 5 * MIB, 5 * MIB, 1);
	PLAN(5 * MIB + 1, 5 * MIB, 5 * MIB, 2);
	PLAN(10 * MIB - 1, 5 * MIB, 5 * MIB, 2);
	PLAN(10 * MIB, 5 * MIB, 5 * MIB, 2);
	PLAN(10 * MIB + 1, 5 * MIB, 5 * MIB, 3);
	/* The integration test's 23 MiB file: 4 full parts and 3 MiB. */
	PLAN(23 * MIB, 5 * MIB, 5 * MIB, 5);
	/* The default: S3's 5 GiB for one copy. */
	PLAN(5 * GIB + 1, 5 * GIB, 5 * GIB, 2);
	PLAN(12 * GIB, 5 * GIB, 5 * GIB, 3);
	PLAN(1, 5 * MIB, 5 * MIB, 1);
	PLAN(0, 5 * MIB, 5 * MIB, 1);
}

static void test_part_count_limit(void)
{
	/* Exactly 10 000 parts still fit; one byte more grows the parts to
	 * the next whole MiB. */
	PLAN(10000 * 5 * MIB, 5 * MIB, 5 * MIB, 10000);
	PLAN(10000 * 5 * MIB + 1, 5 * MIB, 6 * MIB, 8334);
	/* S3's largest object, 5 TiB, with the smallest parts: 525 MiB
	 * parts (ceil(5 TiB / 10000) rounded up to a MiB). */
	PLAN(5 * TIB, 5 * MIB, 525 * MIB, 9987);
	PLAN(5 * TIB, 5 * GIB, 5 * GIB, 1024);
	/* The most that 10 000 parts of 5 GiB can hold, and one byte more. */
	PLAN(S3_PARTS_MAX * S3_PART_MAX, 5 * MIB, 5 * GIB, 10000);
	uint64_t part;
	uint32_t n;
	CHECK(s3_copy_plan(S3_PARTS_MAX * S3_PART_MAX + 1, 5 * MIB, &part,
			   &n) == DMFS_ERR_TOO_BIG);
	CHECK(part == 0 && n == 0);
}

static void test_bad_limits(void)
{
	uint64_t part = 1;
	uint32_t n = 1;

	CHECK(s3_copy_plan(GIB, 5 * MIB - 1, &part, &n) == DMFS_ERR_INVAL);
	CHECK(part == 0 && n == 0);
	CHECK(s3_copy_plan(GIB, 5 * GIB + 1, &part, &n) == DMFS_ERR_INVAL);
	CHECK(s3_copy_plan(GIB, 0, &part, &n) == DMFS_ERR_INVAL);
}

/* Every size around the boundaries of a few limits makes a valid plan. */
static void test_sweep(void)
{
	static const uint64_t limits[] = {5 * MIB, 7 * MIB + 3, 64 * MIB,
					  5 * GIB};
	int bad = 0;

	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
		for (uint64_t k = 1; k < 40; k++)
			for (int dlt = -1; dlt <= 1; dlt++) {
				uint64_t size = k * limits[i] + (uint64_t)dlt;
				uint64_t part;
				uint32_t n;
				if (s3_copy_plan(size, limits[i], &part, &n) ||
				    !plan_ok(size, part, n) ||
				    n != (size + limits[i] - 1) / limits[i])
					bad++;
			}
	CHECK(bad == 0);
}

/* What the answers a multipart copy can meet mean: a server without
 * UploadPartCopy is "not supported" (ENOTSUP, not retried as a 5xx), a
 * part whose source changed is "changed". */
static void test_errors(void)
{
	CHECK(s3_status_to_err(501, "NotImplemented") == DMFS_ERR_UNSUPPORTED);
	CHECK(s3_status_to_err(501, "") == DMFS_ERR_UNSUPPORTED);
	CHECK(s3_status_to_err(500, "NotImplemented") == DMFS_ERR_UNSUPPORTED);
	CHECK(s3_status_to_err(412, "PreconditionFailed") == DMFS_ERR_CHANGED);
	CHECK(s3_status_to_err(500, "PreconditionFailed") == DMFS_ERR_CHANGED);
	CHECK(s3_status_to_err(416, "InvalidRange") == DMFS_ERR_RANGE);
	CHECK(s3_status_to_err(500, "InternalError") == DMFS_ERR_SERVER);
	CHECK(s3_status_to_err(503, "SlowDown") == DMFS_ERR_THROTTLED);
}

int main(void)
{
	test_errors();
	test_boundaries();
	test_part_count_limit();
	test_bad_limits();
	test_sweep();
	return unit_done("test_copy_plan");
}
