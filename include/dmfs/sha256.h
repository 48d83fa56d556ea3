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

/* Whether s is 64 lower-case hex digits and nothing more (NULL: no). */
bool dmfs_is_sha256_hex(const char *s);

#endif
