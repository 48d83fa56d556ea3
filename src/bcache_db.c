/*
 * bcache_db.c - the LMDB side of the block cache: transactions (all begun
 * under env_lock, see bcache.c), the stored block format with its CRC-32C,
 * access stamps, and least-recently-used eviction.  The design essay is at
 * the top of bcache.c.
 */
#include "config.h"

#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bcache_int.h"
#include "dmfs/crc32c.h"
#include "dmfs/lmdb_txn.h"
#include "dmfs/log.h"

/* Byte order helpers: the stored format is fixed, whatever the CPU. */

static void put_le16(unsigned char *p, uint16_t v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (v >> (8 * i)) & 0xff;
}

static uint16_t get_le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (v >> (56 - 8 * i)) & 0xff;
}

static uint64_t get_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * Transactions.  Every one is begun and ended through these so env_lock is
 * held while it lives.
 */

int bcache_db_txn_begin(struct bcache *bc, unsigned flags, MDB_txn **txn)
{
	return lmdb_txn_begin(bc->env, &bc->env_lock, flags, txn, "block cache",
			      bc->dir);
}

void bcache_db_txn_abort(struct bcache *bc, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&bc->env_lock);
}

/* Commit; the transaction is gone whatever the result. */
int bcache_db_txn_commit(struct bcache *bc, MDB_txn *txn)
{
	int rc = mdb_txn_commit(txn);

	pthread_rwlock_unlock(&bc->env_lock);
	return rc;
}

/*
 * Give back the disk a failed commit took.  LMDB writes a commit's pages
 * past the end of the file before its meta page; when the disk fills in
 * between, the commit fails but the file keeps what was written.  No
 * committed page lies past the meta's last page, and readers (in every
 * process) touch only committed pages, so that tail can go; the write
 * transaction held meanwhile keeps every writer out.  Cannot fail (at
 * worst the space stays the cache's).
 */
void bcache_db_trim(struct bcache *bc)
{
	MDB_envinfo info;
	MDB_stat st;
	MDB_txn *txn;
	struct stat sb;
	int fd;

	if (bcache_db_txn_begin(bc, 0, &txn))
		return;
	if (mdb_env_info(bc->env, &info) == 0 &&
	    mdb_env_stat(bc->env, &st) == 0 &&
	    mdb_env_get_fd(bc->env, &fd) == 0 && fstat(fd, &sb) == 0) {
		off_t used = (off_t)(info.me_last_pgno + 1) * st.ms_psize;
		if (sb.st_size > used && ftruncate(fd, used) == 0)
			dmfs_log(DMFS_LOG_INFO,
				 "block cache %s: %lld KiB a failed commit "
				 "wrote given back to the disk",
				 bc->dir,
				 (long long)(sb.st_size - used) / 1024);
	}
	bcache_db_txn_abort(bc, txn);
}

/* A meta counter; 0 when absent. */
uint64_t bcache_db_meta_get(struct bcache *bc, MDB_txn *txn, const char *name)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	uint64_t n = 0;

	if (mdb_get(txn, bc->db_meta, &k, &v) == 0 && v.mv_size == 8)
		n = get_be64(v.mv_data);
	return n;
}

int bcache_db_meta_put(struct bcache *bc, MDB_txn *txn, const char *name,
		       uint64_t n)
{
	unsigned char buf[8];
	MDB_val k = {strlen(name), (void *)name}, v = {8, buf};

	put_be64(buf, n);
	return mdb_put(txn, bc->db_meta, &k, &v, 0);
}

/* Bytes of block data in a stored value, from its size alone. */
size_t bcache_db_value_data_len(const MDB_val *v)
{
	return v->mv_size >= BC_HDR ? v->mv_size - BC_HDR : 0;
}

/*
 * Whether a stored value is a well-formed block whose data matches its
 * checksum.  Reads the whole value.
 */
int bcache_db_block_ok(const MDB_val *v)
{
	const unsigned char *p = v->mv_data;

	if (v->mv_size < BC_HDR || get_le32(p) != BC_MAGIC ||
	    get_le16(p + 4) != BC_VERSION || get_le16(p + 6) != BC_HDR ||
	    get_le32(p + 12) != v->mv_size - BC_HDR)
		return 0;
	return crc32c(0, p + BC_HDR, v->mv_size - BC_HDR) == get_le32(p + 8);
}

/*
 * Write-transaction steps.  Each returns 0 or an LMDB error, after which
 * the caller must abort.
 */

/* Give key the recency `stamp`: its lru entry and atime (none before). */
static int stamp_set(struct bcache *bc, MDB_txn *txn, const void *key,
		     size_t klen, uint64_t stamp)
{
	unsigned char lk[BC_STAMP + BCACHE_KEY_MAX];
	MDB_val k = {klen, (void *)key}, l = {BC_STAMP + klen, lk};
	MDB_val v = {BC_STAMP, lk}, empty = {0, NULL};
	int rc;

	put_be64(lk, stamp);
	memcpy(lk + BC_STAMP, key, klen);
	rc = mdb_put(txn, bc->db_lru, &l, &empty, 0);
	if (!rc)
		rc = mdb_put(txn, bc->db_atime, &k, &v, 0);
	return rc;
}

/* Remove key's lru entry and atime, if any. */
static int stamp_del(struct bcache *bc, MDB_txn *txn, const void *key,
		     size_t klen)
{
	unsigned char lk[BC_STAMP + BCACHE_KEY_MAX];
	MDB_val k = {klen, (void *)key}, l = {BC_STAMP + klen, lk}, v;
	int rc;

	rc = mdb_get(txn, bc->db_atime, &k, &v);
	if (rc)
		return rc == MDB_NOTFOUND ? 0 : rc;
	if (v.mv_size == BC_STAMP) {
		memcpy(lk, v.mv_data, BC_STAMP);
		memcpy(lk + BC_STAMP, key, klen);
		rc = mdb_del(txn, bc->db_lru, &l, NULL);
		if (rc && rc != MDB_NOTFOUND)
			return rc;
	}
	return mdb_del(txn, bc->db_atime, &k, NULL);
}

/* Delete a block and its recency; *total loses its length.  Absent is 0. */
int bcache_db_block_del(struct bcache *bc, MDB_txn *txn, const void *key,
			size_t klen, uint64_t *total)
{
	MDB_val k = {klen, (void *)key}, v;
	int rc;

	rc = mdb_get(txn, bc->db_blocks, &k, &v);
	if (!rc) {
		size_t n = bcache_db_value_data_len(&v);

		*total = *total > n ? *total - n : 0;
		rc = mdb_del(txn, bc->db_blocks, &k, NULL);
	}
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	return stamp_del(bc, txn, key, klen);
}

/* Store a queued block (replacing any older copy) with recency `stamp`. */
int bcache_db_block_put(struct bcache *bc, MDB_txn *txn, const struct op *op,
			uint64_t stamp, uint64_t *total)
{
	MDB_val k = {op->klen, (void *)op->key}, v = {BC_HDR + op->len, NULL};
	unsigned char *p;
	int rc;

	rc = bcache_db_block_del(bc, txn, op->key, op->klen, total);
	if (!rc)
		rc = mdb_put(txn, bc->db_blocks, &k, &v, MDB_RESERVE);
	if (rc)
		return rc;
	p = v.mv_data;
	put_le32(p, BC_MAGIC);
	put_le16(p + 4, BC_VERSION);
	put_le16(p + 6, BC_HDR);
	put_le32(p + 8, op->crc);
	put_le32(p + 12, (uint32_t)op->len);
	memcpy(p + BC_HDR, op->data, op->len);
	*total += op->len;
	return stamp_set(bc, txn, op->key, op->klen, stamp);
}

/* Record a read of key; a key evicted or deleted meanwhile is skipped. */
int bcache_db_block_touch(struct bcache *bc, MDB_txn *txn, const void *key,
			  size_t klen, uint64_t stamp)
{
	MDB_val k = {klen, (void *)key}, v;
	int rc;

	rc = mdb_get(txn, bc->db_atime, &k, &v);
	if (rc)
		return rc == MDB_NOTFOUND ? 0 : rc;
	rc = stamp_del(bc, txn, key, klen);
	if (!rc)
		rc = stamp_set(bc, txn, key, klen, stamp);
	return rc;
}

/*
 * Delete blocks in the key order of `dbi` until *total <= target: the first
 * entry's key holds a block key `skip` bytes in; that block (with its
 * stamps) and the entry go.  Entries that cannot hold a block key are
 * dropped.  Returns MDB_NOTFOUND when dbi ran empty first.
 */
static int evict_in_order(struct bcache *bc, MDB_txn *txn, MDB_dbi dbi,
			  size_t skip, uint64_t target, uint64_t *total,
			  uint64_t *evicted)
{
	unsigned char key[BC_STAMP + BCACHE_KEY_MAX];
	MDB_cursor *cur;
	MDB_val k, v;
	size_t n;
	int rc = mdb_cursor_open(txn, dbi, &cur);

	if (rc)
		return rc;
	while (*total > target) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		if (rc)
			break;
		n = k.mv_size;
		if (n <= skip || n - skip > BCACHE_KEY_MAX) {
			rc = mdb_cursor_del(cur, 0); /* not ours: drop it */
			if (rc)
				break;
			continue;
		}
		/* copy: the deletes below may move the page under k */
		memcpy(key, k.mv_data, n);
		rc = bcache_db_block_del(bc, txn, key + skip, n - skip, total);
		if (rc)
			break;
		k.mv_size = n; /* gone already unless the stamps disagreed */
		k.mv_data = key;
		rc = mdb_del(txn, dbi, &k, NULL);
		if (rc && rc != MDB_NOTFOUND)
			break;
		rc = 0;
		(*evicted)++;
	}
	mdb_cursor_close(cur);
	return rc;
}

/*
 * Evict least recently used blocks until *total <= target.  Blocks with no
 * lru entry (none should exist) go next, in key order; if nothing is left
 * the total is reset, so a drifted total heals itself.
 */
int bcache_db_evict(struct bcache *bc, MDB_txn *txn, uint64_t target,
		    uint64_t *total, uint64_t *evicted)
{
	int rc = evict_in_order(bc, txn, bc->db_lru, BC_STAMP, target, total,
				evicted);
	if (rc == MDB_NOTFOUND)
		rc = evict_in_order(bc, txn, bc->db_blocks, 0, target, total,
				    evicted);
	if (rc == MDB_NOTFOUND) {
		*total = 0;
		rc = 0;
	}
	return rc;
}
