/*
 * lmdb_lockfile.h - give an LMDB environment's lock file real disk blocks.
 *
 * LMDB keeps its reader table in DIR/lock.mdb, which it sizes with
 * ftruncate (a sparse file) and writes through a shared mmap.  When the
 * disk under the cache directory is full, the first store to a page of
 * that map that has no block yet (a new reader slot, or the header of a
 * new lock file) kills the process with SIGBUS: tmpfs and most disk
 * filesystems cannot fail a store to a mapped page any other way.  Every
 * environment dmfs opens (block cache, manifest index, metadata table)
 * therefore has its lock file allocated (fallocate) before LMDB maps it,
 * at a size that holds its whole reader table (LMDB keeps a bigger lock
 * file's size), so that a full disk makes opening fail with ENOSPC, and
 * never a crash later.
 *
 * Only before mdb_env_open: closing any descriptor of the lock file
 * drops every POSIX lock this process holds on it, LMDB's included
 * (then another process would take the environment for unused and reset
 * its reader table).
 */
#ifndef DMFS_LMDB_LOCKFILE_H
#define DMFS_LMDB_LOCKFILE_H

/*
 * Create DIR/lock.mdb when missing and allocate blocks for all of it, at
 * least enough for maxreaders reader slots (what the caller passes to
 * mdb_env_set_maxreaders).  Call before mdb_env_open, never after.  0, or
 * an errno value (ENOSPC when the disk is full).  A filesystem without
 * fallocate is not an error: nothing can be reserved there.
 */
int lmdb_lockfile_alloc(const char *dir, unsigned maxreaders)
	__attribute__((warn_unused_result));

#endif
