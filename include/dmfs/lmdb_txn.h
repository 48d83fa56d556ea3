/*
 * lmdb_txn.h - beginning an LMDB transaction, and reading what LMDB
 * returns, the same way in every environment dmfs keeps (block cache,
 * manifest index, metadata table).
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

/*
 * The DMFS_ERR_* for an LMDB return code (0 stays 0; MDB_NOTFOUND is
 * DMFS_ERR_NOT_FOUND, a full map or disk DMFS_ERR_NOSPC, what is not
 * known DMFS_ERR_IO).  corrupted: what MDB_CORRUPTED becomes, normally
 * DMFS_ERR_CORRUPT; DMFS_ERR_IO where the caller gives DMFS_ERR_CORRUPT a
 * meaning of its own (the block cache: one block failed its checksum and
 * is dropped).  Cannot fail.
 */
int lmdb_err_to_dmfs(int rc, int corrupted);

#endif
