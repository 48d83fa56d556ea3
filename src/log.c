/*
 * log.c - dmfs_log(): stderr in the foreground, syslog once daemonized.
 * Callers must never pass secrets; the level check happens in the macro so
 * arguments of suppressed lines are not even formatted.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

#include "dmfs/log.h"

int dmfs_log_level_current = DMFS_LOG_WARN;
static int log_to_syslog;
static FILE *log_file; /* set once at start-up, before threads */

void dmfs_log_set_level(int level)
{
	dmfs_log_level_current = level;
}

void dmfs_log_use_syslog(int on)
{
	log_to_syslog = on;
	if (on)
		openlog("dmfs", LOG_PID, LOG_DAEMON);
}

int dmfs_log_to_file(const char *path)
{
	FILE *f = fopen(path, "ae");
	if (!f)
		return -1;
	setvbuf(f, NULL, _IOLBF, 0);
	log_file = f;
	return 0;
}

void dmfs_log_write(int level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warning", "info",
					    "debug"};
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char line[2048];
	va_list ap;

	if (level < 0 || level > DMFS_LOG_DEBUG)
		level = DMFS_LOG_ERROR;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log_to_syslog && !log_file) {
		syslog(prio[level], "%s", line);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	fprintf(log_file ? log_file : stderr, "dmfs %s.%03ld %s: %s\n", stamp,
		ts.tv_nsec / 1000000, names[level], line);
}
