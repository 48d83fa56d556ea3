/*
 * lmdb_txn.c - one way to begin LMDB transactions and to read LMDB's
 * return codes (see lmdb_txn.h).
 */
#include "config.h"

#include <errno.h>

#include "dmfs/err.h"
#include "dmfs/lmdb_txn.h"
#include "dmfs/log.h"

/* Another process grew the map: take its size (no transaction of ours
 * may be open, hence the exclusive lock). */
static void adopt_map_size(MDB_env *env, pthread_rwlock_t *lock,
			   const char *kind, const char *dir)
{
	pthread_rwlock_wrlock(lock);
	int rc = mdb_env_set_mapsize(env, 0);
	pthread_rwlock_unlock(lock);
	if (rc)
		dmfs_log(DMFS_LOG_WARN, "%s %s: adopting map size: %s", kind,
			 dir, mdb_strerror(rc));
	else
		dmfs_log(DMFS_LOG_INFO, "%s %s: map grown by another process",
			 kind, dir);
}

int lmdb_txn_begin(MDB_env *env, pthread_rwlock_t *lock, unsigned flags,
		   MDB_txn **txn, const char *kind, const char *dir)
{
	int rc = 0;

	for (int tries = 0; tries < 3; tries++) {
		pthread_rwlock_rdlock(lock);
		rc = mdb_txn_begin(env, NULL, flags, txn);
		if (!rc)
			return 0;
		pthread_rwlock_unlock(lock);
		if (rc == MDB_MAP_RESIZED) {
			adopt_map_size(env, lock, kind, dir);
		} else if (rc == MDB_READERS_FULL) {
			int dead = 0;
			mdb_reader_check(env, &dead);
			if (!dead)
				break;
		} else {
			break;
		}
	}
	dmfs_log(DMFS_LOG_WARN, "%s %s: cannot begin a transaction: %s", kind,
		 dir, mdb_strerror(rc));
	return rc;
}

int lmdb_err_to_dmfs(int rc, int corrupted)
{
	switch (rc) {
	case 0:
		return 0;
	case MDB_NOTFOUND:
		return DMFS_ERR_NOT_FOUND;
	case ENOMEM:
		return DMFS_ERR_NOMEM;
	case MDB_MAP_FULL:
	case ENOSPC:
		return DMFS_ERR_NOSPC;
	case MDB_CORRUPTED:
		return corrupted;
	default:
		return DMFS_ERR_IO;
	}
}
