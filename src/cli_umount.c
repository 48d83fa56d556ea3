/*
 * cli_umount.c - `dmfs umount MOUNTPOINT`: the same as fusermount3 -u, which
 * also works for a user who mounted without root.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dmfs/cli.h"

int cli_umount(int argc, char **argv)
{
	if (argc != 1 || argv[0][0] == '-') {
		fprintf(stderr, "usage: dmfs umount MOUNTPOINT\n");
		return 2;
	}
	const char *mp = argv[0];
	if (geteuid() == 0 && umount2(mp, 0) == 0)
		return 0;
	pid_t pid = fork();
	if (pid < 0) {
		perror("dmfs umount: fork");
		return 1;
	}
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", mp, (char *)NULL);
		fprintf(stderr, "dmfs umount: cannot run fusermount3: %s\n",
			strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
