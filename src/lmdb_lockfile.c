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

#define LOCKFILE_PAGE 4096 /* LMDB's header and first reader slots */

int lmdb_lockfile_alloc(const char *dir)
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
	off_t len = sb.st_size > LOCKFILE_PAGE ? sb.st_size : LOCKFILE_PAGE;
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
