/*
 * lmdb_txn.h - beginning an LMDB transaction the same way in every
 * environment dmfs keeps (block cache, manifest index, metadata table).
 *
 * Each environment is shared with other processes (every dmfs on the
 * machine) and guarded in this process by a rwlock: transactions hold it
 * shared, growing the map to the size another process set takes it
 * exclusively (LMDB requires no transaction in this process then).
 */
#ifndef DMFS_LMDB_TXN_H
#define DMFS_LMDB_TXN_H

#include <pthread.h>

#include <lmdb.h>

/*
 * Begin a transaction (flags: MDB_RDONLY or 0) in env.  On success *lock
 * is held shared until the caller ends the transaction and unlocks it.
 * MDB_MAP_RESIZED (another process grew the map) is adopted and retried;
 * MDB_READERS_FULL is retried after clearing dead readers.  kind and
 * dir name the environment in log lines ("index", "/var/cache/dmfs").
 * Returns an LMDB code.
 */
int lmdb_txn_begin(MDB_env *env, pthread_rwlock_t *lock, unsigned flags,
		   MDB_txn **txn, const char *kind, const char *dir);

#endif
