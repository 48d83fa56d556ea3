/*
 * mkdir_p.c - make a directory and its parents (see mkdir_p.h).
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "dmfs/err.h"
#include "dmfs/mkdir_p.h"

int dmfs_mkdir_p(const char *dir)
{
	char p[4096];
	size_t n = strlen(dir);

	if (n >= sizeof(p))
		return DMFS_ERR_TOO_BIG;
	memcpy(p, dir, n + 1);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			return DMFS_ERR_IO;
		*s = '/';
	}
	if (mkdir(p, 0700) != 0 && errno != EEXIST)
		return errno == ENOSPC ? DMFS_ERR_NOSPC : DMFS_ERR_IO;
	return 0;
}
