/*
 * lmdb_lockfile.c - allocate the blocks of LMDB's lock file (see
 * lmdb_lockfile.h for why).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dmfs/lmdb_lockfile.h"

/* LMDB's lock file: a header of a few cache lines, then one 64-byte
 * slot per reader; a page more than that, in whole pages. */
#define LOCKFILE_PAGE 4096
#define LOCKFILE_SLOT 64

int lmdb_lockfile_alloc(const char *dir, unsigned maxreaders)
{
	char path[4096];
	struct stat sb;
	int fd, rc = 0;

	if (snprintf(path, sizeof(path), "%s/lock.mdb", dir) >=
	    (int)sizeof(path))
		return ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	if (fstat(fd, &sb) != 0) {
		rc = errno;
		goto out;
	}
	off_t len =
	    ((off_t)maxreaders * LOCKFILE_SLOT + 2 * LOCKFILE_PAGE - 1) /
	    LOCKFILE_PAGE * LOCKFILE_PAGE;
	if (sb.st_size > len)
		len = sb.st_size;
	/* fallocate, not posix_fallocate: where the filesystem cannot, the
	 * C library would write zeros itself, racing the processes that
	 * write their reader slots. */
	if (fallocate(fd, 0, 0, len) != 0 && errno != EOPNOTSUPP &&
	    errno != ENOSYS)
		rc = errno;
out:
	close(fd);
	return rc;
}
