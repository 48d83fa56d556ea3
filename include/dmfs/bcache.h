/*
 * bcache.h - the block cache: file blocks in one LMDB environment.
 *
 * One environment per cache directory, shared by every dmfs process on the
 * machine and surviving remounts.  Keys are opaque byte strings chosen by the
 * caller (content names: object key + ETag + size + block number for live
 * objects); the value is the block with a CRC-32C that is verified on every
 * read.  A block that fails its check is deleted and reported as
 * DMFS_ERR_CORRUPT so the caller refetches it: corrupt bytes are never
 * returned.
 *
 * Writes are batched by one writer thread (LMDB allows one writer at a
 * time, and a commit per 1 MiB block would be slow): bcache_put() queues the
 * block and returns; until the writer has committed it, bcache_get() serves
 * it from the queue, so a put is readable at once.
 *
 * Size is bounded by `limit`: when the stored bytes pass it, the least
 * recently used blocks are evicted (recency is recorded in memory on every
 * hit and written by the writer thread in batches).
 */
#ifndef DMFS_BCACHE_H
#define DMFS_BCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "dmfs/err.h"

#define BCACHE_KEY_MAX 480 /* LMDB's default max key size is 511 */

struct bcache;

struct bcache_opts {
	const char *dir;	/* created if missing (mode 0700) */
	uint64_t limit;		/* bytes of block data to keep */
	uint64_t map_size;	/* LMDB map size; 0 = derived from limit */
};

struct bcache_stats {
	uint64_t bytes;		/* block bytes stored (whole environment) */
	uint64_t limit;
	uint64_t hits;		/* this process */
	uint64_t misses;
	uint64_t evictions;
	uint64_t corrupt;
	uint64_t puts;
	uint64_t put_errors;	/* blocks that could not be stored */
};

/*
 * Open (or create) the cache in opts->dir, clearing stale reader slots left
 * by killed processes (mdb_reader_check), and start the writer thread.
 * Caller frees with bcache_close.  0 or DMFS_ERR_*.
 */
int bcache_open(const struct bcache_opts *opts, struct bcache **out)
	__attribute__((warn_unused_result));

/* Flush queued puts, stop the writer, close the environment.  NULL-safe. */
void bcache_close(struct bcache *bc);

/*
 * Copy bytes [off, off + len) of the block named by key into buf
 * (caller-owned).  *got is set to the bytes copied (short when the block is
 * shorter).  Returns 0, DMFS_ERR_NOT_FOUND on a miss, DMFS_ERR_CORRUPT when
 * the checksum failed (the block has been dropped), DMFS_ERR_IO.
 * Counts a hit or a miss.
 */
int bcache_get(struct bcache *bc, const void *key, size_t klen, void *buf,
	       size_t off, size_t len, size_t *got);

/*
 * Store a block (copies data; len <= 64 MiB).  Queued for the writer thread;
 * readable at once.  Returns 0 or DMFS_ERR_NOMEM / DMFS_ERR_INVAL.  A later
 * failure to commit (full disk) is counted in put_errors and logged; the
 * block is then simply not cached.
 */
int bcache_put(struct bcache *bc, const void *key, size_t klen,
	       const void *data, size_t len);

/*
 * bcache_put without the copy: data is borrowed until the cache calls
 * release(ctx), once, after the block was committed (or dropped).  release
 * runs in a cache thread with the cache's lock held: it must not call back
 * into the cache.  On an error return release is not called.
 */
int bcache_put_shared(struct bcache *bc, const void *key, size_t klen,
		      const void *data, size_t len, void (*release)(void *),
		      void *ctx);

/* Whether a block is stored (or queued), without counting a hit or a miss. */
int bcache_contains(struct bcache *bc, const void *key, size_t klen);

/*
 * Sum of the data lengths of every block whose key starts with prefix
 * (stored or queued).  Used for the dmfs.cached xattr.
 */
uint64_t bcache_bytes_with_prefix(struct bcache *bc, const void *prefix,
				  size_t plen);

/* Wait until every queued put has been committed (or failed). */
void bcache_sync(struct bcache *bc);

/* Counters.  Cannot fail. */
void bcache_get_stats(struct bcache *bc, struct bcache_stats *out);

#endif
