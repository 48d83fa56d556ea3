/*
 * bcache_guard.c - crash safety of the block cache without an fsync per
 * commit.
 *
 * The cache runs LMDB with MDB_NOSYNC: commits go to the page cache and the
 * kernel writes them back when it likes.  A killed process loses nothing
 * (the kernel still has every page), but after a power loss or kernel crash
 * the file may hold a newer meta page than the pages it points to, which
 * the block checksums cannot detect.  Syncing every commit costs cold reads
 * about half their speed here, so instead:
 *
 *   - every process using the cache leaves a marker "writers/BOOT.PID",
 *     where BOOT is the kernel's boot id, and removes it after a final
 *     mdb_env_sync() at close;
 *   - at open, a marker from another boot means a process was writing when
 *     the machine went down: the environment is discarded (it is a cache;
 *     the data is in S3) and recreated empty;
 *   - markers of this boot whose process is gone (kill -9) are just
 *     removed: the kernel kept their pages.
 *
 * The scan and the discard happen under an flock on writers.lock, so two
 * processes starting together after a reboot do not both discard.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bcache_guard.h"
#include "dmfs/err.h"
#include "dmfs/log.h"

struct bcache_guard {
	char marker[PATH_MAX + 128];
};

static void boot_id(char out[64])
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (!f || !fgets(out, 64, f))
		snprintf(out, 64, "unknown");
	if (f)
		fclose(f);
	out[strcspn(out, "\n")] = '\0';
}

static int pid_alive(long pid)
{
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* Scan markers; returns 1 when a writer of another boot did not close. */
static int scan_markers(const char *wdir, const char *boot)
{
	DIR *d = opendir(wdir);
	struct dirent *de;
	int unsafe = 0;
	char path[PATH_MAX + 512];

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char *dot = strrchr(de->d_name, '.');
		if (de->d_name[0] == '.' || !dot)
			continue;
		size_t bl = (size_t)(dot - de->d_name);
		int same_boot = bl == strlen(boot) &&
				!strncmp(de->d_name, boot, bl);
		if (same_boot && pid_alive(strtol(dot + 1, NULL, 10)))
			continue;
		if (!same_boot)
			unsafe = 1;
		snprintf(path, sizeof(path), "%s/%s", wdir, de->d_name);
		unlink(path);
	}
	closedir(d);
	return unsafe;
}

int bcache_guard_enter(const char *dir, struct bcache_guard **out)
{
	char wdir[PATH_MAX], path[PATH_MAX], boot[64];
	struct bcache_guard *g;
	int lock_fd, fd, rc = 0;

	*out = NULL;
	if (snprintf(wdir, sizeof(wdir), "%s/writers", dir) >= (int)sizeof(wdir))
		return DMFS_ERR_INVAL;
	if (mkdir(wdir, 0700) != 0 && errno != EEXIST)
		return errno == ENOSPC ? DMFS_ERR_NOSPC : DMFS_ERR_IO;
	snprintf(path, sizeof(path), "%s/writers.lock", dir);
	lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd < 0)
		return DMFS_ERR_IO;
	while (flock(lock_fd, LOCK_EX) != 0 && errno == EINTR)
		;
	boot_id(boot);
	if (scan_markers(wdir, boot)) {
		dmfs_log(DMFS_LOG_WARN,
			 "block cache %s was in use when the machine went "
			 "down; discarding it (a cache: nothing is lost)",
			 dir);
		snprintf(path, sizeof(path), "%s/data.mdb", dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/lock.mdb", dir);
		unlink(path);
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	snprintf(g->marker, sizeof(g->marker), "%s/%s.%ld", wdir, boot,
		 (long)getpid());
	fd = open(g->marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = errno == ENOSPC ? DMFS_ERR_NOSPC : DMFS_ERR_IO;
		free(g);
		goto out;
	}
	close(fd);
	*out = g;
out:
	close(lock_fd); /* releases the flock */
	return rc;
}

void bcache_guard_leave(struct bcache_guard *g)
{
	if (!g)
		return;
	unlink(g->marker);
	free(g);
}
