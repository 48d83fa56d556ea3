/*
 * bcache.c - the block cache: file blocks in one LMDB environment.
 *
 * Layout.  One environment per cache directory, opened by every dmfs
 * process on the machine at once (LMDB's lock file coordinates them; no
 * MDB_NOLOCK).  Four named databases:
 *
 *   blocks  key -> 16-byte header {magic, version, header size, CRC-32C of
 *           the data, data length}, then the data
 *   lru     8-byte big-endian stamp || key -> empty: eviction order, oldest
 *           first under a cursor
 *   atime   key -> the same 8-byte stamp, to find a key's lru entry
 *   meta    "bytes" (block data stored, all processes), "stamp" (the last
 *           stamp handed out), "format"
 *
 * The total in meta is updated in the same transaction as every put and
 * delete, so it is exact for the whole environment whichever process wrote.
 *
 * Stamps.  A counter kept in meta and advanced inside the write transaction
 * that uses it, not the wall clock: write transactions are serialized across
 * processes, so stamps are strictly increasing machine-wide and immune to
 * clock steps.  A stamp is handed out when the writer applies an access,
 * not when it happened; accesses wait at most BC_FLUSH_SEC in memory, and
 * within one batch they are applied in the order they happened, so the
 * order is exact in a process and right to a second between processes.
 *
 * Writes.  bcache_put() copies the block into a queue entry, links it in a
 * FIFO and in a hash of pending keys, and returns.  One writer thread per
 * process takes the FIFO in batches (BC_BATCH_OPS blocks or BC_BATCH_BYTES,
 * whichever comes first), computes the checksums outside the transaction,
 * and then in ONE write transaction applies the recorded hits, stores the
 * blocks and, if the total passed the limit, evicts the oldest lru entries
 * down to 90% of the limit.  Only after the commit does it unlink the
 * entries from the pending hash, so a block is always visible either in
 * the queue or in a read transaction begun after the commit: a put is
 * readable at once and never disappears in between.  The queue holds at
 * most BC_QUEUE_MAX bytes; bcache_put() waits for room beyond that.
 * bcache_sync() queues a marker and waits until the writer has passed it.
 *
 * Reads.  bcache_get() looks in the pending hash first (newest entry for a
 * key first; a reference keeps the entry alive while its data is copied
 * out without the lock), then in a read-only transaction: header checked,
 * CRC-32C of the whole data verified, only then anything copied.  A block
 * that fails is deleted at once in a write transaction of its own (only
 * if the stored value still fails, in case a good copy replaced it) and
 * reported as DMFS_ERR_CORRUPT.  A hit only records the key in a bounded
 * in-memory table (BC_HITS_MAX keys, later hits dropped until the writer
 * empties it); the hit path never opens a write transaction.
 *
 * Full map or disk.  The cache shares its disk with the staged copies of
 * files being written through live/ and with the metadata table, and a
 * write that finds the disk full fails with ENOSPC.  So the cache never
 * takes the last of it: before a batch, when the disk would keep less than
 * a reserve free (10% of its size, at most BC_DISK_RESERVE_MAX) after
 * the batch, the writer first evicts as many bytes as the batch brings,
 * so the batch reuses freed pages and the file stops growing (the cache
 * keeps its size; it gives way entirely when something else fills the
 * disk).  Pages a reader still pins are not reusable, so the file can
 * grow all the same: below half the reserve no block is cached at all.
 * MDB_MAP_FULL, ENOSPC and EIO (LMDB's short write) abort the
 * batch; the writer clears stale readers (they pin old pages), evicts
 * beyond the limit in a transaction of its own, and retries; then block
 * by block; a block that still does not fit is dropped and counted in
 * put_errors.  Either is logged once until a commit succeeds again; reads
 * go on working.  A commit that failed for disk leaves the file longer
 * by what it wrote; that tail is cut off again (bcache_db_trim).  Else
 * the file never shrinks: space it once took stays the cache's (evicted
 * pages are reused; cache_size bounds it).
 *
 * Limits.  Each process evicts to its own limit when it commits; processes
 * sharing a directory should be given the same one.
 *
 * Durability.  MDB_NOSYNC: commits reach the page cache only, and the
 * environment is synced once at close.  A killed process loses nothing
 * (the kernel keeps its pages); a power loss could leave a broken tree,
 * which the block checksums would not catch, so bcache_guard.c discards a
 * cache that was open when the machine went down.  Syncing each commit
 * instead halved cold reads here (the disk's sync speed, ~300 MB/s).
 * MDB_WRITEMAP is not used: a stray write through a pointer must not be
 * able to reach the file, and a full disk must be an error, not SIGBUS
 * (the lock file is allocated for the same reason: lmdb_lockfile.h).
 *
 * Concurrency.  MDB_NOTLS ties read slots to transactions, not threads, so
 * any FUSE thread may read.  Every transaction is begun under env_lock held
 * for reading; it is taken for writing only to adopt a map size grown by
 * another process (MDB_MAP_RESIZED), which LMDB allows only with no
 * transaction active in the process.  Lock order: lock and hits_lock are
 * never held while a transaction is begun, and never together.  Stale
 * reader slots (processes killed inside a read) are cleared at open and
 * every BC_READER_CHECK_SEC by the writer.
 */
#include "config.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "bcache_guard.h"
#include "bcache_int.h"
#include "dmfs/bcache.h"
#include "dmfs/crc32c.h"
#include "dmfs/lmdb_lockfile.h"
#include "dmfs/lmdb_txn.h"
#include "dmfs/log.h"

/*
 * The pending queue.  Callers hold bc->lock.
 */

static struct op *pending_find(struct bcache *bc, const void *key, size_t klen,
			       uint32_t hash)
{
	struct op *op = bc->pending[hash & (BC_HASH_SIZE - 1)];

	for (; op; op = op->hnext)
		if (op->hash == hash && op->klen == klen &&
		    memcmp(op->key, key, klen) == 0)
			return op;
	return NULL;
}

static void pending_unlink(struct bcache *bc, struct op *op)
{
	struct op **pp = &bc->pending[op->hash & (BC_HASH_SIZE - 1)];

	while (*pp && *pp != op)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = op->hnext;
}

static void op_unref(struct op *op)
{
	if (--op->refs > 0)
		return;
	if (op->release)
		op->release(op->release_ctx);
	free(op);
}

static uint64_t op_cost(const struct op *op)
{
	return sizeof(*op) + op->klen + op->len;
}

/* Copy a queued block out, if one is queued.  0 or DMFS_ERR_NOT_FOUND. */
static int pending_get(struct bcache *bc, const void *key, size_t klen,
		       uint32_t hash, void *buf, size_t off, size_t len,
		       size_t *got)
{
	struct op *op;

	pthread_mutex_lock(&bc->lock);
	op = pending_find(bc, key, klen, hash);
	if (op)
		op->refs++;
	pthread_mutex_unlock(&bc->lock);
	if (!op)
		return DMFS_ERR_NOT_FOUND;
	if (off < op->len && len) {
		*got = op->len - off < len ? op->len - off : len;
		memcpy(buf, op->data + off, *got);
	}
	pthread_mutex_lock(&bc->lock);
	op_unref(op);
	pthread_mutex_unlock(&bc->lock);
	return 0;
}

/* Append to the FIFO (and the hash for puts); called with bc->lock held. */
static void queue_add(struct bcache *bc, struct op *op)
{
	op->seq = ++bc->seq_last;
	op->next = NULL;
	if (bc->tail)
		bc->tail->next = op;
	else
		bc->head = op;
	bc->tail = op;
	if (op->type == OP_PUT) {
		struct op **b = &bc->pending[op->hash & (BC_HASH_SIZE - 1)];

		op->hnext = *b; /* newest first */
		*b = op;
		bc->queued_bytes += op_cost(op);
	}
	pthread_cond_signal(&bc->wake);
}

/*
 * Recent hits.
 */

static void hit_record(struct bcache *bc, const void *key, size_t klen,
		       uint32_t hash)
{
	struct hits *h;
	struct hit *e;
	size_t i;
	int wake = 0;

	pthread_mutex_lock(&bc->hits_lock);
	h = bc->hits;
	for (i = hash & (BC_HIT_SLOTS - 1); h->slot[i];
	     i = (i + 1) & (BC_HIT_SLOTS - 1)) {
		e = &h->e[h->slot[i] - 1];
		if (e->klen == klen && memcmp(e->key, key, klen) == 0) {
			e->seq = ++bc->hit_clock;
			goto out;
		}
	}
	if (h->n < BC_HITS_MAX) { /* else dropped until the next flush */
		e = &h->e[h->n];
		e->seq = ++bc->hit_clock;
		e->klen = (uint16_t)klen;
		memcpy(e->key, key, klen);
		h->slot[i] = (uint16_t)++h->n;
		wake = h->n == BC_HITS_MAX / 2;
	}
out:
	pthread_mutex_unlock(&bc->hits_lock);
	if (wake) {
		pthread_mutex_lock(&bc->lock);
		bc->hits_wanted = 1;
		pthread_cond_signal(&bc->wake);
		pthread_mutex_unlock(&bc->lock);
	}
}

struct hit_order {
	uint64_t seq;
	size_t i;
};

static int hit_order_cmp(const void *a, const void *b)
{
	const struct hit_order *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * The writer thread.
 */

static void put_failed(struct bcache *bc, uint64_t nblocks, int rc)
{
	count(&bc->n_put_errors, nblocks);
	if (bc->full_logged)
		return;
	bc->full_logged = 1;
	dmfs_log(DMFS_LOG_WARN,
		 "block cache %s: cannot store blocks: %s; reads go on, new "
		 "blocks are not cached until space returns",
		 bc->dir, mdb_strerror(rc));
}

/*
 * One write transaction: the hits in h (in the order they happened), then
 * the first n ops of the list, then eviction if the total passed the limit.
 */
static int batch_commit(struct bcache *bc, const struct hits *h,
			struct hit_order *order, struct op *ops, size_t n)
{
	uint64_t total, stamp, evicted = 0;
	MDB_txn *txn;
	int rc;

	rc = bcache_db_txn_begin(bc, 0, &txn);
	if (rc)
		return rc;
	total = bcache_db_meta_get(bc, txn, "bytes");
	stamp = bcache_db_meta_get(bc, txn, "stamp");
	for (size_t i = 0; h && !rc && i < h->n; i++) {
		const struct hit *e = &h->e[order[i].i];

		rc = bcache_db_block_touch(bc, txn, e->key, e->klen, ++stamp);
	}
	for (struct op *op = ops; !rc && op && n; op = op->next, n--)
		if (op->type == OP_PUT)
			rc = bcache_db_block_put(bc, txn, op, ++stamp, &total);
	if (!rc && total > bc->limit)
		rc = bcache_db_evict(bc, txn, bc->limit / 10 * 9, &total, &evicted);
	if (!rc)
		rc = bcache_db_meta_put(bc, txn, "bytes", total);
	if (!rc)
		rc = bcache_db_meta_put(bc, txn, "stamp", stamp);
	if (rc) {
		bcache_db_txn_abort(bc, txn);
		return rc;
	}
	rc = bcache_db_txn_commit(bc, txn);
	if (!rc)
		count(&bc->n_evictions, evicted);
	if (rc == ENOSPC || rc == EDQUOT || rc == EIO)
		bc->trim_wanted = 1;
	return rc;
}

static void reader_check(struct bcache *bc)
{
	int dead = 0;

	clock_gettime(CLOCK_MONOTONIC, &bc->last_reader_check);
	if (mdb_reader_check(bc->env, &dead) == 0 && dead > 0)
		dmfs_log(DMFS_LOG_INFO,
			 "block cache %s: cleared %d stale reader slot(s)",
			 bc->dir, dead);
}

/*
 * The map or the disk is full: evict, in a transaction of its own, `drop`
 * bytes more than the usual target (why: for the log; NULL: log at debug
 * level only, it happens at every block).  Returns the bytes evicted.
 */
static uint64_t make_room(struct bcache *bc, uint64_t drop, const char *why)
{
	uint64_t total, before, target, evicted = 0;
	MDB_txn *txn;
	int rc;

	reader_check(bc);
	if (bcache_db_txn_begin(bc, 0, &txn))
		return 0;
	before = total = bcache_db_meta_get(bc, txn, "bytes");
	target = total > drop ? total - drop : 0;
	if (target > bc->limit / 10 * 9)
		target = bc->limit / 10 * 9;
	rc = bcache_db_evict(bc, txn, target, &total, &evicted);
	if (!rc)
		rc = bcache_db_meta_put(bc, txn, "bytes", total);
	if (rc) {
		bcache_db_txn_abort(bc, txn);
	} else {
		rc = bcache_db_txn_commit(bc, txn);
		if (!rc)
			count(&bc->n_evictions, evicted);
		if (rc == ENOSPC || rc == EDQUOT || rc == EIO)
			bc->trim_wanted = 1;
	}
	/*
	 * Pages freed by transaction N are reused from N + 2 on (N + 1 still
	 * reads N's snapshot): one more small commit makes them available to
	 * the retry.
	 */
	if (!rc && evicted && bcache_db_txn_begin(bc, 0, &txn) == 0) {
		if (bcache_db_meta_put(bc, txn, "stamp", bcache_db_meta_get(bc, txn, "stamp")))
			bcache_db_txn_abort(bc, txn);
		else
			bcache_db_txn_commit(bc, txn);
	}
	dmfs_log(why ? DMFS_LOG_INFO : DMFS_LOG_DEBUG,
		 "block cache %s: %s, evicted %llu block(s): %s", bc->dir,
		 why ? why : "disk reserve", (unsigned long long)evicted,
		 rc ? mdb_strerror(rc) : "ok");
	return rc || total > before ? 0 : before - total;
}

/* Whether the disk under the cache keeps less than its reserve free
 * once `need` more bytes are written (see "Full map or disk").  floor:
 * half the reserve instead, the line a commit never crosses. */
static int disk_short(struct bcache *bc, uint64_t need, int floor)
{
	struct statvfs sv;

	if (statvfs(bc->dir, &sv) != 0)
		return 0; /* the commit will tell */
	uint64_t size = (uint64_t)sv.f_blocks * sv.f_frsize;
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	uint64_t reserve = size / 10;
	if (reserve > BC_DISK_RESERVE_MAX)
		reserve = BC_DISK_RESERVE_MAX;
	if (floor)
		return avail < reserve / 2 + need;
	if (avail >= reserve + need) {
		bc->disk_logged = 0;
		return 0;
	}
	if (!bc->disk_logged)
		dmfs_log(DMFS_LOG_WARN,
			 "block cache %s: %llu MiB free on its disk, the "
			 "cache leaves %llu MiB for files being written: it "
			 "stops growing and evicts to store new blocks",
			 bc->dir, (unsigned long long)(avail / MiB),
			 (unsigned long long)(reserve / MiB));
	bc->disk_logged = 1;
	return 1;
}

/* A commit failed for want of room (map or disk): worth evicting. */
static int room_err(int rc)
{
	return rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT ||
	       rc == EIO;
}

static const char *room_why(int rc)
{
	return rc == MDB_MAP_FULL ? "map full" : "disk full";
}

/* Write one batch (possibly empty) and the recorded hits. */
static void batch_run(struct bcache *bc, struct op *ops)
{
	struct hit_order order[BC_HITS_MAX];
	uint64_t bytes = 0;
	size_t n = 0, nputs = 0;
	struct hits *h;
	struct op *op;
	int rc;

	/* take the hit table; readers go on filling the other one */
	pthread_mutex_lock(&bc->hits_lock);
	h = bc->hits;
	bc->hits = bc->hits_spare;
	pthread_mutex_unlock(&bc->hits_lock);
	bc->hits_spare = h;
	for (size_t i = 0; i < h->n; i++) {
		order[i].seq = h->e[i].seq;
		order[i].i = i;
	}
	if (h->n > 1)
		qsort(order, h->n, sizeof(order[0]), hit_order_cmp);

	for (op = ops; op; op = op->next, n++) {
		if (op->type != OP_PUT)
			continue;
		op->crc = crc32c(0, op->data, op->len);
		bytes += op->len;
		nputs++;
	}
	if (!nputs && !h->n)
		goto out;

	/* A commit that runs out of disk leaves the file grown by what it
	 * wrote (LMDB does not shrink it): near the reserve, never try a
	 * whole batch. */
	int short_disk = nputs && disk_short(bc, bytes, 0);
	rc = short_disk ? ENOSPC : batch_commit(bc, h, order, ops, n);
	if (!short_disk && room_err(rc)) {
		make_room(bc, 2 * bytes, room_why(rc));
		rc = batch_commit(bc, h, order, ops, n);
	}
	if (room_err(rc) && (nputs > 1 || short_disk)) {
		/* block by block; the recency updates are given up */
		rc = 0;
		for (op = ops; op; op = op->next) {
			int rc1;

			if (op->type != OP_PUT)
				continue;
			/* Evicted pages are reused, so the file stays as it
			 * is; with nothing to evict (the disk is full of
			 * something else) the block is not cached.  Pages a
			 * reader still pins cannot be reused, and the file
			 * grows anyway: below half the reserve no block is
			 * cached at all, so writers always find that much. */
			if (disk_short(bc, op->len, 0) &&
			    (make_room(bc, op->len, NULL) < op->len ||
			     disk_short(bc, op->len, 1))) {
				put_failed(bc, 1, ENOSPC);
				rc = ENOSPC;
				continue;
			}
			rc1 = batch_commit(bc, NULL, NULL, op, 1);
			if (room_err(rc1)) {
				make_room(bc, 2 * op->len, room_why(rc1));
				rc1 = batch_commit(bc, NULL, NULL, op, 1);
			}
			if (rc1) {
				put_failed(bc, 1, rc1);
				rc = rc1;
			}
		}
		if (!rc)
			bc->full_logged = 0;
	} else if (rc && nputs) {
		put_failed(bc, nputs, rc);
	} else if (rc) {
		dmfs_log(DMFS_LOG_DEBUG, "block cache %s: recording hits: %s",
			 bc->dir, mdb_strerror(rc));
	} else {
		bc->full_logged = 0;
	}
out:
	if (bc->trim_wanted) {
		bc->trim_wanted = 0;
		bcache_db_trim(bc);
	}
	h->n = 0;
	memset(h->slot, 0, sizeof(h->slot));
}

/* Detach up to one batch from the FIFO; called with bc->lock held. */
static struct op *batch_take(struct bcache *bc)
{
	struct op *first = bc->head, *last = NULL, *op;
	uint64_t bytes = 0;
	size_t n = 0;

	for (op = bc->head; op; op = op->next) {
		if (n &&
		    (n >= BC_BATCH_OPS || bytes + op->len > BC_BATCH_BYTES))
			break;
		bytes += op->len;
		n++;
		last = op;
	}
	if (!last)
		return NULL;
	bc->head = last->next;
	if (!bc->head)
		bc->tail = NULL;
	last->next = NULL;
	return first;
}

/* Forget a written batch; called with bc->lock held. */
static void batch_retire(struct bcache *bc, struct op *ops)
{
	struct op *next;

	for (struct op *op = ops; op; op = next) {
		next = op->next;
		if (op->type == OP_PUT) {
			pending_unlink(bc, op);
			bc->queued_bytes -= op_cost(op);
		}
		bc->seq_done = op->seq;
		op_unref(op);
	}
	if (ops) {
		pthread_cond_broadcast(&bc->room);
		pthread_cond_broadcast(&bc->done);
	}
}

static void *writer_main(void *arg)
{
	struct bcache *bc = arg;
	struct timespec now, until;

	pthread_mutex_lock(&bc->lock);
	for (;;) {
		struct op *batch;
		int stop;

		if (!bc->head && !bc->stopping && !bc->hits_wanted) {
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += BC_FLUSH_SEC;
			pthread_cond_timedwait(&bc->wake, &bc->lock, &until);
		}
		batch = batch_take(bc);
		stop = bc->stopping && !bc->head;
		bc->hits_wanted = 0;
		pthread_mutex_unlock(&bc->lock);

		batch_run(bc, batch);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - bc->last_reader_check.tv_sec >=
		    BC_READER_CHECK_SEC)
			reader_check(bc);

		pthread_mutex_lock(&bc->lock);
		batch_retire(bc, batch);
		if (stop)
			break;
	}
	pthread_mutex_unlock(&bc->lock);
	return NULL;
}

/*
 * Opening and closing.
 */

/* mkdir -p; new directories get mode 0700. */
static int mkdir_p(const char *dir)
{
	char *path = strdup(dir), *p, c;
	struct stat st;
	int rc = 0;

	if (!path)
		return DMFS_ERR_NOMEM;
	for (p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		c = *p;
		*p = '\0';
		if (mkdir(path, 0700) && errno != EEXIST) {
			dmfs_log(DMFS_LOG_ERROR, "block cache: mkdir %s: %s",
				 path, strerror(errno));
			rc = DMFS_ERR_IO;
			break;
		}
		*p = c;
		if (!c)
			break;
	}
	if (!rc && (stat(dir, &st) || !S_ISDIR(st.st_mode))) {
		dmfs_log(DMFS_LOG_ERROR, "block cache %s: not a directory",
			 dir);
		rc = DMFS_ERR_IO;
	}
	free(path);
	return rc;
}

static uint64_t map_size_for(const struct bcache_opts *opts)
{
	uint64_t size = opts->map_size;

	if (!size) {
		if (opts->limit > (UINT64_MAX - BC_MAP_SLACK) / 2)
			size = UINT64_MAX / 2;
		else
			size = opts->limit * 2 + BC_MAP_SLACK;
		if (size < BC_MAP_MIN)
			size = BC_MAP_MIN;
	}
	if (size > SIZE_MAX / 2)
		size = SIZE_MAX / 2;
	return (size + MiB - 1) / MiB * MiB;
}

/* Open the named databases and check the format, in one write txn. */
static int open_dbs(struct bcache *bc)
{
	MDB_txn *txn;
	int rc;

	rc = bcache_db_txn_begin(bc, 0, &txn);
	if (rc)
		return rc;
	rc = mdb_dbi_open(txn, "blocks", MDB_CREATE, &bc->db_blocks);
	if (!rc)
		rc = mdb_dbi_open(txn, "lru", MDB_CREATE, &bc->db_lru);
	if (!rc)
		rc = mdb_dbi_open(txn, "atime", MDB_CREATE, &bc->db_atime);
	if (!rc)
		rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &bc->db_meta);
	if (!rc) {
		uint64_t format = bcache_db_meta_get(bc, txn, "format");

		if (!format) {
			rc = bcache_db_meta_put(bc, txn, "format", BC_FORMAT);
		} else if (format != BC_FORMAT) {
			dmfs_log(DMFS_LOG_ERROR,
				 "block cache %s: format %llu, expected %d",
				 bc->dir, (unsigned long long)format,
				 BC_FORMAT);
			rc = MDB_INCOMPATIBLE;
		}
	}
	if (rc) {
		bcache_db_txn_abort(bc, txn);
		return rc;
	}
	return bcache_db_txn_commit(bc, txn);
}

static void bcache_free(struct bcache *bc)
{
	if (bc->env) {
		/* MDB_NOSYNC: this is where the data reaches the disk. */
		int src = mdb_env_sync(bc->env, 1);
		mdb_env_close(bc->env);
		if (src == 0)
			bcache_guard_leave(bc->guard);
		else
			free(bc->guard); /* keep the marker: not synced */
	} else {
		bcache_guard_leave(bc->guard);
	}
	pthread_rwlock_destroy(&bc->env_lock);
	pthread_mutex_destroy(&bc->lock);
	pthread_cond_destroy(&bc->wake);
	pthread_cond_destroy(&bc->room);
	pthread_cond_destroy(&bc->done);
	pthread_mutex_destroy(&bc->hits_lock);
	free(bc->hits);
	free(bc->hits_spare);
	free(bc->dir);
	free(bc);
}

int bcache_open(const struct bcache_opts *opts, struct bcache **out)
{
	pthread_rwlockattr_t rwa;
	pthread_condattr_t ca;
	struct bcache *bc;
	int rc, dead = 0;

	if (out)
		*out = NULL;
	if (!opts || !opts->dir || !*opts->dir || !out)
		return DMFS_ERR_INVAL;
	rc = mkdir_p(opts->dir);
	if (rc)
		return rc;

	bc = calloc(1, sizeof(*bc));
	if (!bc)
		return DMFS_ERR_NOMEM;
	pthread_rwlockattr_init(&rwa);
	/* a waiting map resize must not starve behind endless readers */
	pthread_rwlockattr_setkind_np(
	    &rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&bc->env_lock, &rwa);
	pthread_rwlockattr_destroy(&rwa);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&bc->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&bc->room, NULL);
	pthread_cond_init(&bc->done, NULL);
	pthread_mutex_init(&bc->lock, NULL);
	pthread_mutex_init(&bc->hits_lock, NULL);
	bc->limit = opts->limit;
	bc->dir = strdup(opts->dir);
	bc->hits = calloc(1, sizeof(*bc->hits));
	bc->hits_spare = calloc(1, sizeof(*bc->hits_spare));
	if (!bc->dir || !bc->hits || !bc->hits_spare) {
		bcache_free(bc);
		return DMFS_ERR_NOMEM;
	}

	rc = bcache_guard_enter(bc->dir, &bc->guard);
	if (rc) {
		dmfs_log(DMFS_LOG_ERROR, "block cache %s: %s", bc->dir,
			 dmfs_strerror(rc));
		bcache_free(bc);
		return rc;
	}
	rc = mdb_env_create(&bc->env);
	if (rc) {
		bc->env = NULL;
		goto fail;
	}
	rc = mdb_env_set_maxdbs(bc->env, BC_MAXDBS);
	if (!rc)
		rc = mdb_env_set_maxreaders(bc->env, BC_MAXREADERS);
	if (!rc)
		rc = mdb_env_set_mapsize(bc->env, map_size_for(opts));
	/* An errno value is an LMDB code too. */
	if (!rc)
		rc = lmdb_lockfile_alloc(bc->dir, BC_MAXREADERS);
	if (!rc)
		rc = mdb_env_open(bc->env, bc->dir, MDB_NOTLS | MDB_NOSYNC,
				  0600);
	if (rc)
		goto fail;
	rc = mdb_reader_check(bc->env, &dead);
	if (rc)
		goto fail;
	clock_gettime(CLOCK_MONOTONIC, &bc->last_reader_check);
	/* Stale slots mean a process died inside a read (kill -9): worth a
	 * warning, since they would otherwise pin pages forever. */
	dmfs_log(dead ? DMFS_LOG_WARN : DMFS_LOG_INFO,
		 "block cache %s: opened, %d stale reader slot(s) cleared",
		 bc->dir, dead);
	rc = open_dbs(bc);
	if (rc)
		goto fail;
	rc = pthread_create(&bc->writer, NULL, writer_main, bc);
	if (rc) {
		dmfs_log(DMFS_LOG_ERROR, "block cache %s: writer thread: %s",
			 bc->dir, strerror(rc));
		bcache_free(bc);
		return DMFS_ERR_NOMEM;
	}
	bc->writer_started = 1;
	*out = bc;
	return 0;

fail:
	dmfs_log(DMFS_LOG_ERROR, "block cache %s: cannot open: %s", bc->dir,
		 mdb_strerror(rc));
	bcache_free(bc);
	return rc == ENOMEM ? DMFS_ERR_NOMEM : DMFS_ERR_IO;
}

void bcache_close(struct bcache *bc)
{
	if (!bc)
		return;
	if (bc->writer_started) {
		pthread_mutex_lock(&bc->lock);
		bc->stopping = 1;
		pthread_cond_signal(&bc->wake);
		pthread_mutex_unlock(&bc->lock);
		pthread_join(bc->writer, NULL);
	}
	bcache_free(bc);
}

/*
 * The operations.
 */

/*
 * Delete a block that failed its check, in a write transaction of its own,
 * unless it is gone or a good copy replaced it meanwhile.
 */
static void drop_corrupt(struct bcache *bc, const void *key, size_t klen)
{
	MDB_val k = {klen, (void *)key}, v;
	uint64_t total;
	MDB_txn *txn;
	int rc;

	if (bcache_db_txn_begin(bc, 0, &txn))
		return;
	rc = mdb_get(txn, bc->db_blocks, &k, &v);
	if (rc || bcache_db_block_ok(&v)) {
		bcache_db_txn_abort(bc, txn);
		return;
	}
	total = bcache_db_meta_get(bc, txn, "bytes");
	rc = bcache_db_block_del(bc, txn, key, klen, &total);
	if (!rc)
		rc = bcache_db_meta_put(bc, txn, "bytes", total);
	if (rc)
		bcache_db_txn_abort(bc, txn);
	else
		rc = bcache_db_txn_commit(bc, txn);
	if (rc)
		dmfs_log(DMFS_LOG_WARN,
			 "block cache %s: dropping a corrupt block: %s",
			 bc->dir, mdb_strerror(rc));
}

int bcache_get(struct bcache *bc, const void *key, size_t klen, void *buf,
	       size_t off, size_t len, size_t *got)
{
	MDB_val k = {klen, (void *)key}, v;
	MDB_txn *txn;
	uint32_t hash;
	size_t n;
	int rc;

	if (got)
		*got = 0;
	if (!bc || !key_ok(key, klen) || !got || (!buf && len))
		return DMFS_ERR_INVAL;
	hash = key_hash(key, klen);
	if (pending_get(bc, key, klen, hash, buf, off, len, got) == 0) {
		count(&bc->n_hits, 1);
		return 0;
	}

	rc = bcache_db_txn_begin(bc, MDB_RDONLY, &txn);
	if (rc) {
		count(&bc->n_misses, 1);
		/* DMFS_ERR_CORRUPT from bcache_get means one bad block,
		 * dropped; a corrupt environment is not that. */
		return lmdb_err_to_dmfs(rc, DMFS_ERR_IO);
	}
	rc = mdb_get(txn, bc->db_blocks, &k, &v);
	if (rc) {
		bcache_db_txn_abort(bc, txn);
		count(&bc->n_misses, 1);
		return rc == MDB_NOTFOUND ? DMFS_ERR_NOT_FOUND : DMFS_ERR_IO;
	}
	if (!bcache_db_block_ok(&v)) {
		bcache_db_txn_abort(bc, txn);
		count(&bc->n_corrupt, 1);
		count(&bc->n_misses, 1);
		dmfs_log(DMFS_LOG_WARN,
			 "block cache %s: checksum mismatch, block dropped",
			 bc->dir);
		drop_corrupt(bc, key, klen);
		return DMFS_ERR_CORRUPT;
	}
	n = bcache_db_value_data_len(&v);
	if (off < n && len) {
		*got = n - off < len ? n - off : len;
		memcpy(buf, (const unsigned char *)v.mv_data + BC_HDR + off,
		       *got);
	}
	bcache_db_txn_abort(bc, txn);
	hit_record(bc, key, klen, hash);
	count(&bc->n_hits, 1);
	return 0;
}

/* Queue a put whose data is `data` (copied when copy is set). */
static int put_op(struct bcache *bc, const void *key, size_t klen,
		  const void *data, size_t len, int copy,
		  void (*release)(void *), void *ctx)
{
	struct op *op;

	if (!bc || !key_ok(key, klen) || len > BC_VALUE_MAX || (!data && len))
		return DMFS_ERR_INVAL;
	op = malloc(sizeof(*op) + klen + (copy ? len : 0));
	if (!op) {
		count(&bc->n_put_errors, 1);
		return DMFS_ERR_NOMEM;
	}
	memset(op, 0, sizeof(*op));
	op->type = OP_PUT;
	op->refs = 1; /* the pending hash's */
	op->hash = key_hash(key, klen);
	op->klen = klen;
	op->len = len;
	memcpy(op->key, key, klen);
	if (copy) {
		op->data = op->key + klen;
		if (len)
			memcpy(op->data, data, len);
	} else {
		op->data = (unsigned char *)data;
		op->release = release;
		op->release_ctx = ctx;
	}

	pthread_mutex_lock(&bc->lock);
	while (bc->queued_bytes &&
	       bc->queued_bytes + op_cost(op) > BC_QUEUE_MAX)
		pthread_cond_wait(&bc->room, &bc->lock);
	queue_add(bc, op);
	pthread_mutex_unlock(&bc->lock);
	count(&bc->n_puts, 1);
	return 0;
}

int bcache_put(struct bcache *bc, const void *key, size_t klen,
	       const void *data, size_t len)
{
	return put_op(bc, key, klen, data, len, 1, NULL, NULL);
}

int bcache_put_shared(struct bcache *bc, const void *key, size_t klen,
		      const void *data, size_t len, void (*release)(void *),
		      void *ctx)
{
	return put_op(bc, key, klen, data, len, 0, release, ctx);
}

int bcache_contains(struct bcache *bc, const void *key, size_t klen)
{
	MDB_val k = {klen, (void *)key}, v;
	MDB_txn *txn;
	int found;

	if (!bc || !key_ok(key, klen))
		return 0;
	pthread_mutex_lock(&bc->lock);
	found = pending_find(bc, key, klen, key_hash(key, klen)) != NULL;
	pthread_mutex_unlock(&bc->lock);
	if (found)
		return 1;
	if (bcache_db_txn_begin(bc, MDB_RDONLY, &txn))
		return 0;
	found = mdb_get(txn, bc->db_blocks, &k, &v) == 0;
	bcache_db_txn_abort(bc, txn);
	return found;
}

/*
 * Stored blocks under the prefix, by value size (no data page is touched),
 * then each queued key under it: its queued length replaces the stored
 * one.  Queued entries are held by reference, so the writer may retire them
 * meanwhile without a block being counted twice or not at all.
 */
uint64_t bcache_bytes_with_prefix(struct bcache *bc, const void *prefix,
				  size_t plen)
{
	struct op **mine = NULL, *op, *o;
	size_t nmine = 0, cap = 0;
	uint64_t total = 0;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;

	if (!bc || (!prefix && plen) || plen > BCACHE_KEY_MAX)
		return 0;

	pthread_mutex_lock(&bc->lock);
	for (size_t b = 0; b < BC_HASH_SIZE; b++) {
		for (op = bc->pending[b]; op; op = op->hnext) {
			if (op->klen < plen || memcmp(op->key, prefix, plen))
				continue;
			for (o = bc->pending[b]; o != op; o = o->hnext)
				if (o->klen == op->klen &&
				    !memcmp(o->key, op->key, op->klen))
					break;
			if (o != op)
				continue; /* an older copy of a newer put */
			if (nmine == cap) {
				size_t ncap = cap ? 2 * cap : 64;
				struct op **m =
				    realloc(mine, ncap * sizeof(*mine));

				if (!m)
					continue; /* undercount, no crash */
				mine = m;
				cap = ncap;
			}
			op->refs++;
			mine[nmine++] = op;
		}
	}
	pthread_mutex_unlock(&bc->lock);

	if (bcache_db_txn_begin(bc, MDB_RDONLY, &txn) == 0) {
		int rc = mdb_cursor_open(txn, bc->db_blocks, &cur);

		if (!rc) {
			k.mv_size = plen;
			k.mv_data = (void *)prefix;
			rc = mdb_cursor_get(cur, &k, &v,
					    plen ? MDB_SET_RANGE : MDB_FIRST);
			while (!rc && k.mv_size >= plen &&
			       memcmp(k.mv_data, prefix, plen) == 0) {
				total += bcache_db_value_data_len(&v);
				rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			}
			mdb_cursor_close(cur);
		}
		for (size_t i = 0; i < nmine; i++) {
			k.mv_size = mine[i]->klen;
			k.mv_data = mine[i]->key;
			if (mdb_get(txn, bc->db_blocks, &k, &v) == 0)
				total -= bcache_db_value_data_len(&v);
		}
		bcache_db_txn_abort(bc, txn);
	}

	pthread_mutex_lock(&bc->lock);
	for (size_t i = 0; i < nmine; i++) {
		total += mine[i]->len;
		op_unref(mine[i]);
	}
	pthread_mutex_unlock(&bc->lock);
	free(mine);
	return total;
}

void bcache_sync(struct bcache *bc)
{
	struct op *op;
	uint64_t target;

	if (!bc)
		return;
	op = calloc(1, sizeof(*op));
	pthread_mutex_lock(&bc->lock);
	if (op) {
		/* a marker also makes the writer flush the hits now */
		op->type = OP_SYNC;
		op->refs = 1;
		queue_add(bc, op);
	}
	target = bc->seq_last;
	while (bc->seq_done < target)
		pthread_cond_wait(&bc->done, &bc->lock);
	pthread_mutex_unlock(&bc->lock);
}

void bcache_get_stats(struct bcache *bc, struct bcache_stats *out)
{
	MDB_txn *txn;

	memset(out, 0, sizeof(*out));
	if (!bc)
		return;
	out->limit = bc->limit;
	out->hits = atomic_load_explicit(&bc->n_hits, memory_order_relaxed);
	out->misses = atomic_load_explicit(&bc->n_misses, memory_order_relaxed);
	out->evictions =
	    atomic_load_explicit(&bc->n_evictions, memory_order_relaxed);
	out->corrupt =
	    atomic_load_explicit(&bc->n_corrupt, memory_order_relaxed);
	out->puts = atomic_load_explicit(&bc->n_puts, memory_order_relaxed);
	out->put_errors =
	    atomic_load_explicit(&bc->n_put_errors, memory_order_relaxed);
	if (bcache_db_txn_begin(bc, MDB_RDONLY, &txn) == 0) {
		out->bytes = bcache_db_meta_get(bc, txn, "bytes");
		bcache_db_txn_abort(bc, txn);
	}
}
