/*
 * hash.h - the one string hash of dmfs's in-memory tables (FNV-1a, 64-bit):
 * fast, no allocation, good enough spread for keys and paths.  Not for
 * anything that must resist an adversary.
 */
#ifndef DMFS_HASH_H
#define DMFS_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Hash of n bytes at p.  Cannot fail. */
static inline uint64_t dmfs_hash(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 1099511628211ull;
	return h;
}

#endif
