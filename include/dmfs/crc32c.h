/*
 * crc32c.h - CRC-32C (Castagnoli), the per-block checksum of the cache.
 * Uses the SSE4.2 instruction when the CPU has it, a table otherwise.
 */
#ifndef DMFS_CRC32C_H
#define DMFS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend `crc` (0 to start) over `len` bytes of `data`.  Cannot fail. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

#endif
