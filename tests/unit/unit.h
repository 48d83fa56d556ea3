/*
 * unit.h - a minimal test harness for the C unit tests: CHECK() records a
 * failure with its line and goes on; unit_done() prints the tally in the
 * "N passed, N failed" form and returns the exit status (0 or 1);
 * unit_rm_tree() removes a test's scratch directory.
 */
#ifndef DMFS_UNIT_H
#define DMFS_UNIT_H

#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int unit_passed, unit_failed;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (cond) {                                                    \
			unit_passed++;                                         \
		} else {                                                       \
			unit_failed++;                                         \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
		}                                                              \
	} while (0)

#define CHECK_STR(got, want)                                                   \
	do {                                                                   \
		const char *g_ = (got), *w_ = (want);                          \
		if (g_ && w_ && strcmp(g_, w_) == 0) {                         \
			unit_passed++;                                         \
		} else {                                                       \
			unit_failed++;                                         \
			fprintf(stderr,                                        \
				"%s:%d: %s\n  got:  %s\n  want: %s\n",         \
				__FILE__, __LINE__, #got, g_ ? g_ : "(null)",  \
				w_ ? w_ : "(null)");                           \
		}                                                              \
	} while (0)

static inline int unit_rm_one_(const char *path, const struct stat *sb,
				int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove the test's scratch tree dir and everything in it. */
static inline void unit_rm_tree(const char *dir)
{
	nftw(dir, unit_rm_one_, 16, FTW_DEPTH | FTW_PHYS);
}

static inline int unit_done(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}

#endif
