/*
 * err.c - text and errno for enum dmfs_err.  The only place where a dmfs
 * error becomes an errno; the FUSE operations call dmfs_err_to_errno().
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include <errno.h>
#include <string.h>

#include "dmfs/err.h"

static const struct {
	const char *text;
	int eno;
	int transient;
} err_table[DMFS_ERR__COUNT] = {
	[DMFS_OK] = {"success", 0, 0},
	[DMFS_ERR_NOMEM] = {"out of memory", ENOMEM, 0},
	[DMFS_ERR_INVAL] = {"invalid argument", EINVAL, 0},
	[DMFS_ERR_NOT_FOUND] = {"not found", ENOENT, 0},
	[DMFS_ERR_DENIED] = {"access denied", EACCES, 0},
	[DMFS_ERR_THROTTLED] = {"throttled by the server (SlowDown)", EAGAIN, 1},
	[DMFS_ERR_NETWORK] = {"network error", EIO, 1},
	[DMFS_ERR_TIMEOUT] = {"timed out", ETIMEDOUT, 1},
	[DMFS_ERR_SERVER] = {"server error", EIO, 1},
	[DMFS_ERR_CHANGED] = {"object changed while being read", EIO, 0},
	[DMFS_ERR_PROTOCOL] = {"unexpected answer from the server", EIO, 0},
	[DMFS_ERR_IO] = {"local I/O error", EIO, 0},
	[DMFS_ERR_TOO_BIG] = {"too large", EFBIG, 0},
	[DMFS_ERR_CORRUPT] = {"checksum mismatch", EIO, 0},
	[DMFS_ERR_NOSPC] = {"no space left", ENOSPC, 0},
	[DMFS_ERR_ROFS] = {"read-only", EROFS, 0},
	[DMFS_ERR_CONFIG] = {"configuration error", EINVAL, 0},
	[DMFS_ERR_UNSUPPORTED] = {"not supported", ENOTSUP, 0},
	[DMFS_ERR_RANGE] = {"range not satisfiable", EINVAL, 0},
	[DMFS_ERR_EXISTS] = {"already exists", EEXIST, 0},
	[DMFS_ERR_NOT_DIR] = {"not a directory", ENOTDIR, 0},
	[DMFS_ERR_IS_DIR] = {"is a directory", EISDIR, 0},
	[DMFS_ERR_STALE] = {"changed in the bucket by another writer", ESTALE, 0},
	[DMFS_ERR_NOT_EMPTY] = {"directory not empty", ENOTEMPTY, 0},
	[DMFS_ERR_BAD_NAME] = {"name is not valid UTF-8", EILSEQ, 0},
	[DMFS_ERR_NAME_TOO_LONG] = {"key longer than 1024 bytes", ENAMETOOLONG,
				    0},
};

static int err_valid(int err)
{
	return err >= 0 && err < DMFS_ERR__COUNT && err_table[err].text;
}

const char *dmfs_strerror(int err)
{
	return err_valid(err) ? err_table[err].text : "unknown error";
}

int dmfs_err_to_errno(int err)
{
	return err_valid(err) ? err_table[err].eno : EIO;
}

int dmfs_err_is_transient(int err)
{
	return err_valid(err) && err_table[err].transient;
}

void dmfs_err_detail_clear(struct dmfs_err_detail *d)
{
	if (d)
		memset(d, 0, sizeof(*d));
}

void dmfs_say(char *msg, size_t msgsz, const char *fmt, ...)
{
	va_list ap;

	if (!msg || !msgsz)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, msgsz, fmt, ap);
	va_end(ap);
}
