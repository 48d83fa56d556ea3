/*
 * bcache_int.h - internals shared by the block cache's two files:
 * bcache.c (queue, writer thread, API) and bcache_db.c (the LMDB side:
 * transactions, the stored block format, stamps and eviction).  Not for
 * other modules.
 */
#ifndef DMFS_BCACHE_INT_H
#define DMFS_BCACHE_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "dmfs/bcache.h"
#include "dmfs/crc32c.h"

#define MiB (1024ull * 1024)

#define BC_VALUE_MAX (64 * MiB)	  /* largest block */
#define BC_QUEUE_MAX (256 * MiB)  /* pending bytes before puts wait */
#define BC_BATCH_BYTES (64 * MiB) /* per write transaction */
#define BC_BATCH_OPS 64		  /* blocks per write transaction */
#define BC_MAP_MIN (256 * MiB)	  /* smallest derived map size */
#define BC_MAP_SLACK (64 * MiB)	  /* derived map: 2 * limit + this */
#define BC_DISK_RESERVE_MAX (1024 * MiB) /* free disk the cache leaves:
					    10% of the disk, at most this */
#define BC_HASH_SIZE 4096	  /* pending buckets; power of two */
#define BC_HITS_MAX 1024	  /* distinct keys remembered between flushes */
#define BC_HIT_SLOTS 2048	  /* their open-addressing table; power of 2 */
#define BC_FLUSH_SEC 1		  /* hits wait at most this long */
#define BC_READER_CHECK_SEC 60	  /* stale reader sweep by the writer */
#define BC_MAXDBS 32		  /* named DBs; other modules share the env */
#define BC_MAXREADERS 1024	  /* read slots, all processes */

#define BC_MAGIC 0x43424d44u /* "DMBC" read as little-endian */
#define BC_VERSION 1
#define BC_HDR 16   /* magic(4) version(2) hdr size(2) crc(4) length(4) */
#define BC_FORMAT 1 /* meta "format" */
#define BC_STAMP 8  /* big-endian stamp, prefix of lru keys */

enum op_type {
	OP_PUT,
	OP_SYNC, /* marker: bcache_sync() waits until it is retired */
};

/*
 * A queued put (or sync marker).  One allocation: the struct, the key, the
 * data.  Referenced by the pending hash (one reference, dropped when
 * retired) and by each reader copying its data out.
 */
struct op {
	struct op *next;  /* FIFO; protected by bcache.lock while queued, the
			     writer's own once taken into a batch */
	struct op *hnext; /* hash chain; protected by bcache.lock */
	unsigned refs;	  /* protected by bcache.lock */
	uint32_t crc;	  /* writer thread only */
	/* the rest is immutable once queued */
	enum op_type type;
	uint32_t hash;
	uint64_t seq;
	size_t klen;
	size_t len;
	unsigned char *data; /* points after key, or into the caller's
				buffer (bcache_put_shared) */
	void (*release)(void *ctx); /* bcache_put_shared: called when the
				       op is freed, under bcache.lock */
	void *release_ctx;
	unsigned char key[];
};

/* Keys read since the last flush, by the time of their last read. */
struct hit {
	uint64_t seq;
	uint16_t klen;
	unsigned char key[BCACHE_KEY_MAX];
};

struct hits {
	size_t n;
	uint16_t slot[BC_HIT_SLOTS]; /* index + 1 into e[]; 0 = empty */
	struct hit e[BC_HITS_MAX];
};

struct bcache {
	/* set by bcache_open, immutable afterwards */
	MDB_env *env;
	MDB_dbi db_blocks, db_lru, db_atime, db_meta;
	uint64_t limit;
	char *dir;
	pthread_t writer;
	int writer_started;
	struct bcache_guard *guard; /* this process's writer marker */

	/* read-held around every transaction; write-held to adopt a map size */
	pthread_rwlock_t env_lock;

	pthread_mutex_t lock;
	pthread_cond_t wake;		  /* writer: work, hits or stop */
	pthread_cond_t room;		  /* putters: queue shrank */
	pthread_cond_t done;		  /* syncers: seq_done advanced */
	struct op *head, *tail;		  /* protected by lock */
	struct op *pending[BC_HASH_SIZE]; /* protected by lock */
	uint64_t queued_bytes;		  /* protected by lock */
	uint64_t seq_last;		  /* protected by lock */
	uint64_t seq_done;		  /* protected by lock */
	int hits_wanted;		  /* protected by lock */
	int stopping;			  /* protected by lock */

	pthread_mutex_t hits_lock;
	struct hits *hits;  /* protected by hits_lock (the table filled) */
	uint64_t hit_clock; /* protected by hits_lock */

	/* writer thread only */
	struct hits *hits_spare;
	int full_logged;
	int disk_logged; /* the disk-reserve warning was given */
	int trim_wanted; /* a commit failed for disk: bcache_db_trim */
	struct timespec last_reader_check;

	/* this process; atomic, relaxed */
	_Atomic uint64_t n_hits, n_misses, n_evictions, n_corrupt, n_puts,
	    n_put_errors;
};

static inline void count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline int key_ok(const void *key, size_t klen)
{
	return key && klen > 0 && klen <= BCACHE_KEY_MAX;
}

static inline uint32_t key_hash(const void *key, size_t klen)
{
	return crc32c(0, key, klen);
}

/* bcache_db.c: each returns 0 or an LMDB error unless it says otherwise;
 * every transaction goes through bcache_db_txn_* (see bcache_db.c). */
int bcache_db_txn_begin(struct bcache *bc, unsigned flags, MDB_txn **txn);
void bcache_db_txn_abort(struct bcache *bc, MDB_txn *txn);
int bcache_db_txn_commit(struct bcache *bc, MDB_txn *txn);
void bcache_db_trim(struct bcache *bc);
uint64_t bcache_db_meta_get(struct bcache *bc, MDB_txn *txn, const char *name);
int bcache_db_meta_put(struct bcache *bc, MDB_txn *txn, const char *name,
		    uint64_t n);
size_t bcache_db_value_data_len(const MDB_val *v);
int bcache_db_block_ok(const MDB_val *v);
int bcache_db_block_del(struct bcache *bc, MDB_txn *txn, const void *key,
		     size_t klen, uint64_t *total);
int bcache_db_block_put(struct bcache *bc, MDB_txn *txn, const struct op *op,
		     uint64_t stamp, uint64_t *total);
int bcache_db_block_touch(struct bcache *bc, MDB_txn *txn, const void *key,
		       size_t klen, uint64_t stamp);
int bcache_db_evict(struct bcache *bc, MDB_txn *txn, uint64_t target,
		 uint64_t *total, uint64_t *evicted);

#endif
