/*
 * sha256.h - content hashes as dmfs writes them: 64 lower-case hex digits.
 * (A buffer's hash: sigv4_sha256_hex in sigv4.h.)
 */
#ifndef DMFS_SHA256_H
#define DMFS_SHA256_H

#include <stdbool.h>
#include <stdint.h>

/* Hex sha256 of len bytes of fd from offset off (read with pread).
 * 0, DMFS_ERR_IO when the file is shorter or unreadable, DMFS_ERR_NOMEM. */
int dmfs_sha256_fd(int fd, uint64_t off, uint64_t len, char out[65])
	__attribute__((warn_unused_result));

/*
 * A sha256 of a file kept up to date while the file is written in order
 * (a staged copy being filled by cp), so an upload need not read the file
 * again to hash it.  It covers the bytes [0, len) as they are now: a
 * write at len extends it, a write or truncation inside it breaks it for
 * good (until a truncation to 0 starts it afresh), a write past len
 * leaves it as it is.  Not thread-safe: the owner's lock serialises it.
 */
struct dmfs_sha256_run;
/* NULL when out of memory (callers then hash the file when needed).
 * Caller frees with dmfs_sha256_run_free (NULL-safe). */
struct dmfs_sha256_run *dmfs_sha256_run_new(void);
void dmfs_sha256_run_free(struct dmfs_sha256_run *r);
/* Bytes [off, off + n) of the file are now buf.  NULL-safe. */
void dmfs_sha256_run_write(struct dmfs_sha256_run *r, const void *buf,
			   size_t n, uint64_t off);
/* The file was truncated (or extended) to size.  NULL-safe. */
void dmfs_sha256_run_truncate(struct dmfs_sha256_run *r, uint64_t size);
/* How many bytes from the start it covers: the file's first bytes, all
 * written in order (0 once broken).  NULL-safe. */
uint64_t dmfs_sha256_run_len(const struct dmfs_sha256_run *r);
/* True with the hex hash in out when it covers exactly the file's size
 * bytes; false (out untouched) otherwise.  NULL-safe. */
bool dmfs_sha256_run_get(const struct dmfs_sha256_run *r, uint64_t size,
			 char out[65]);

/* Whether s is 64 lower-case hex digits and nothing more (NULL: no). */
bool dmfs_is_sha256_hex(const char *s);

#endif
