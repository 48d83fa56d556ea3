/*
 * log.h - the one logging entry point.
 *
 * Levels are checked before anything is formatted, so debug lines cost one
 * comparison when off.  Output goes to stderr in the foreground and to syslog
 * once the mount has daemonized.  Never pass a secret or a signature.
 */
#ifndef DMFS_LOG_H
#define DMFS_LOG_H

enum dmfs_log_level {
	DMFS_LOG_ERROR = 0,
	DMFS_LOG_WARN = 1,
	DMFS_LOG_INFO = 2,
	DMFS_LOG_DEBUG = 3,
};

extern int dmfs_log_level_current;

/* Set the threshold; lines above it are dropped. Cannot fail. */
void dmfs_log_set_level(int level);
/* Switch to syslog (after daemonizing). Cannot fail. */
void dmfs_log_use_syslog(int on);

/* Append log lines to a file instead (-o log_file=).  0, or -1 with errno.
 * Call before starting threads. */
int dmfs_log_to_file(const char *path);

void dmfs_log_write(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define dmfs_log(level, ...)                                                   \
	do {                                                                   \
		if ((level) <= dmfs_log_level_current)                         \
			dmfs_log_write((level), __VA_ARGS__);                  \
	} while (0)

#endif
