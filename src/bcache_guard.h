/*
 * bcache_guard.h - is a cache directory safe to open after a system crash?
 * (Internal to the block cache.)
 */
#ifndef DMFS_BCACHE_GUARD_H
#define DMFS_BCACHE_GUARD_H

struct bcache_guard;

/*
 * Register this process as a writer of the cache in dir, first discarding
 * the LMDB files if a writer of an earlier boot never closed cleanly.
 * Caller frees with bcache_guard_leave.  0 or DMFS_ERR_*.
 */
int bcache_guard_enter(const char *dir, struct bcache_guard **out)
	__attribute__((warn_unused_result));

/* Unregister; call only after the environment was synced to disk.
 * NULL-safe. */
void bcache_guard_leave(struct bcache_guard *g);

#endif
