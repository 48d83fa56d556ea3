/*
 * mindex.c - the local index: manifests in LMDB, and the content hash memo
 * (see mindex.h).
 *
 * Layout.  One environment at CACHE_DIR/index/, four named databases:
 *
 *   manifests  32-byte hash -> {8-byte id, 8-byte entry count, 8-byte time
 *              indexed}: the "complete" marker.  Written last, in the same
 *              transaction as the entries, so a manifest whose marker is
 *              there is fully indexed and one without has no entries.
 *   entries    8-byte id || path -> the entry in a compact binary form
 *              (below).  Only files have records; directories are the
 *              common prefixes of their paths.
 *   memo       sha256("dmfs-memo-1" 0 store 0 key 0 etag 0 size) -> the
 *              32-byte content hash.
 *   meta       "format" (MX_FORMAT), "next_id" (the next manifest id).
 *
 * Ids.  A manifest's id is a counter handed out inside the transaction
 * that indexes it, not bits of its hash: then every key a new manifest
 * adds sorts after every key already stored, and since a manifest lists
 * its paths in byte order, all its entries go in with MDB_APPEND (no
 * search, pages filled completely).  Ids are never reused, and two
 * manifests cannot collide.
 *
 * Directories.  A directory's children are the keys under id || dir/.  A
 * range scan walks them in key order; on meeting "dir/c/..." it reports
 * the subdirectory c and jumps over its whole subtree by seeking to
 * "dir/c0" ('0' is '/' + 1).  So the order is byte order of the key: a
 * subdirectory sorts as its name followed by '/', the order of an S3
 * listing with a delimiter ("c-1", "c.txt", then directory "c").  The
 * `after` argument of mindex_readdir continues in the same order.
 *
 * A path that is both a file and a directory ("a" and "a/b" are both
 * keys in the bucket): the directory wins, as in live/ (dircache.c).  The
 * index drops the file when it is built, so every name is one or the
 * other: a new directory is noticed when a path's parent directories
 * differ from the previous path's, and the file of the same name, which
 * sorts before it, is looked up and removed then.
 *
 * Entry values: a flags byte, then varints for size, mode and mtime
 * (zigzag), then the 32-byte sha256 if any, then length-prefixed key,
 * version id and metadata JSON, each only when its flag says so.
 *
 * Durability.  As the block cache (bcache.c): MDB_NOSYNC, one sync at
 * close, and the crash guard of bcache_guard.c, which throws the index
 * away when a process had it open when the machine went down.  It is a
 * cache of what the bucket holds: manifests are indexed again on use,
 * hashes recomputed.  A memo record costs one cheap commit that way.
 *
 * Concurrency.  MDB_NOTLS: any thread may read.  Every transaction is
 * begun with env_lock held for reading; it is taken for writing only to
 * adopt a map grown by another process (MDB_MAP_RESIZED).  LMDB allows one
 * write transaction at a time per environment (all processes): indexing
 * a large manifest holds it for the time it takes (about a second per
 * 100 000 entries at worst), during which memo writes wait.
 */
#include "config.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>

#include "bcache_guard.h"
#include "dmfs/fmt.h"
#include "dmfs/keyname.h"
#include "dmfs/lmdb_lockfile.h"
#include "dmfs/lmdb_txn.h"
#include "dmfs/log.h"
#include "dmfs/mkdir_p.h"
#include "dmfs/mindex.h"

#define MX_FORMAT 1
#define MX_MAP_SIZE (64ull << 30) /* sparse: only what is used is on disk */
#define MX_MAXREADERS 1024
#define MX_MAXDBS 8
#define MX_ID_LEN 8
#define MX_KEY_MAX 511			     /* LMDB's compiled-in limit */
#define MX_PATH_MAX (MX_KEY_MAX - MX_ID_LEN) /* longest indexable path */
#define MX_SKIP_LOG_MAX 10 /* skipped paths logged one by one */
#define MX_MAN_VAL_LEN 24

enum { F_SHA = 1, F_KEY = 2, F_VID = 4, F_META = 8 };

struct mindex {
	MDB_env *env;
	MDB_dbi db_man, db_ent, db_memo, db_meta;
	char *dir;
	struct bcache_guard *guard;
	pthread_rwlock_t env_lock; /* read: any transaction; write: adopting
				      a grown map */
};

/* --- byte helpers --- */

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

/* 64 hex digits into 32 bytes.  0 or DMFS_ERR_INVAL. */
static int unhex32(const char *hex, unsigned char out[32])
{
	if (!hex || strlen(hex) != 64)
		return DMFS_ERR_INVAL;
	for (int i = 0; i < 32; i++) {
		int hi = dmfs_hex_value(hex[2 * i]), lo = dmfs_hex_value(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return DMFS_ERR_INVAL;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static void hex32(const unsigned char in[32], char out[65])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[64] = '\0';
}

static size_t put_varint(unsigned char *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

/* 0, or DMFS_ERR_CORRUPT when the varint runs past end. */
static int get_varint(const unsigned char **p, const unsigned char *end,
		      uint64_t *v)
{
	uint64_t r = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return DMFS_ERR_CORRUPT;
		unsigned char b = *(*p)++;
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return DMFS_ERR_CORRUPT;
}

/* The index's callers have always seen MDB_CORRUPTED as DMFS_ERR_IO;
 * its DMFS_ERR_CORRUPT is an entry that does not decode. */
static int mdb_to_err(int rc)
{
	return lmdb_err_to_dmfs(rc, DMFS_ERR_IO);
}

/* For LMDB calls where "not found" would be a broken index. */
static int io_err(int rc)
{
	return rc == MDB_NOTFOUND ? DMFS_ERR_IO : mdb_to_err(rc);
}

/* --- transactions: all begun and ended here, under env_lock --- */

/* Begin a transaction (MDB_RDONLY or 0).  On success env_lock is held
 * until txn_end.  Returns an LMDB code. */
static int txn_begin(struct mindex *mx, unsigned flags, MDB_txn **txn)
{
	return lmdb_txn_begin(mx->env, &mx->env_lock, flags, txn, "index",
			      mx->dir);
}

/* Commit (commit != 0) or abort.  Returns an LMDB code (0 on abort). */
static int txn_end(struct mindex *mx, MDB_txn *txn, int commit)
{
	int rc = 0;

	if (commit)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	pthread_rwlock_unlock(&mx->env_lock);
	return rc;
}

/* --- opening --- */

static int meta_get_u64(struct mindex *mx, MDB_txn *txn, const char *name,
			uint64_t *out)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	int rc = mdb_get(txn, mx->db_meta, &k, &v);

	if (rc)
		return rc;
	if (v.mv_size != 8)
		return MDB_CORRUPTED;
	*out = get_be64(v.mv_data);
	return 0;
}

static int meta_put_u64(struct mindex *mx, MDB_txn *txn, const char *name,
			uint64_t val)
{
	unsigned char b[8];
	MDB_val k = {strlen(name), (void *)name}, v = {8, b};

	put_be64(b, val);
	return mdb_put(txn, mx->db_meta, &k, &v, 0);
}

/* Open the databases and check the format; an index of another format is
 * emptied (it is a cache).  Returns an LMDB code. */
static int open_dbs(struct mindex *mx)
{
	MDB_txn *txn;
	uint64_t format = 0;
	int rc = txn_begin(mx, 0, &txn);

	if (rc)
		return rc;
	rc = mdb_dbi_open(txn, "manifests", MDB_CREATE, &mx->db_man);
	if (!rc)
		rc = mdb_dbi_open(txn, "entries", MDB_CREATE, &mx->db_ent);
	if (!rc)
		rc = mdb_dbi_open(txn, "memo", MDB_CREATE, &mx->db_memo);
	if (!rc)
		rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &mx->db_meta);
	if (!rc) {
		rc = meta_get_u64(mx, txn, "format", &format);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	if (!rc && format != MX_FORMAT) {
		if (format)
			dmfs_log(DMFS_LOG_WARN,
				 "index %s: format %llu, expected %d: "
				 "starting afresh",
				 mx->dir, (unsigned long long)format,
				 MX_FORMAT);
		rc = mdb_drop(txn, mx->db_man, 0);
		if (!rc)
			rc = mdb_drop(txn, mx->db_ent, 0);
		if (!rc)
			rc = mdb_drop(txn, mx->db_memo, 0);
		if (!rc)
			rc = mdb_drop(txn, mx->db_meta, 0);
		if (!rc)
			rc = meta_put_u64(mx, txn, "format", MX_FORMAT);
	}
	if (rc) {
		txn_end(mx, txn, 0);
		return rc;
	}
	return txn_end(mx, txn, 1);
}

void mindex_close(struct mindex *mx)
{
	if (!mx)
		return;
	if (mx->env) {
		/* MDB_NOSYNC: this is where the index reaches the disk. */
		int src = mdb_env_sync(mx->env, 1);
		mdb_env_close(mx->env);
		if (src == 0)
			bcache_guard_leave(mx->guard);
		else
			free(mx->guard); /* keep the marker: not synced */
	} else {
		bcache_guard_leave(mx->guard);
	}
	pthread_rwlock_destroy(&mx->env_lock);
	free(mx->dir);
	free(mx);
}

int mindex_open(const char *cache_dir, struct mindex **out)
{
	struct mindex *mx;
	int rc, dead = 0;

	*out = NULL;
	if (!cache_dir || !*cache_dir)
		return DMFS_ERR_INVAL;
	mx = calloc(1, sizeof(*mx));
	if (!mx)
		return DMFS_ERR_NOMEM;
	pthread_rwlock_init(&mx->env_lock, NULL);
	if (asprintf(&mx->dir, "%s/index", cache_dir) < 0) {
		mx->dir = NULL;
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	rc = dmfs_mkdir_p(mx->dir);
	if (rc) {
		dmfs_log(DMFS_LOG_ERROR, "index %s: cannot create: %s", mx->dir,
			 strerror(errno));
		goto out;
	}
	rc = bcache_guard_enter(mx->dir, &mx->guard);
	if (rc)
		goto out;
	rc = mdb_env_create(&mx->env);
	if (rc) {
		mx->env = NULL;
		goto lmdb_fail;
	}
	rc = mdb_env_set_maxdbs(mx->env, MX_MAXDBS);
	if (!rc)
		rc = mdb_env_set_maxreaders(mx->env, MX_MAXREADERS);
	if (!rc)
		rc = mdb_env_set_mapsize(mx->env, MX_MAP_SIZE);
	/* An errno value is an LMDB code too. */
	if (!rc)
		rc = lmdb_lockfile_alloc(mx->dir, MX_MAXREADERS);
	if (!rc)
		rc = mdb_env_open(mx->env, mx->dir,
				  MDB_NOTLS | MDB_NORDAHEAD | MDB_NOSYNC, 0600);
	if (!rc)
		rc = mdb_reader_check(mx->env, &dead);
	if (!rc && dead)
		dmfs_log(DMFS_LOG_WARN,
			 "index %s: %d stale reader slot(s) cleared", mx->dir,
			 dead);
	if (!rc)
		rc = open_dbs(mx);
	if (!rc)
		goto out;
lmdb_fail:
	dmfs_log(DMFS_LOG_ERROR, "index %s: cannot open: %s", mx->dir,
		 mdb_strerror(rc));
	rc = io_err(rc);
out:
	if (rc) {
		mindex_close(mx);
		return rc;
	}
	*out = mx;
	return 0;
}

/* --- entry values --- */

/* Bytes the encoded entry needs at most. */
static size_t ent_max_len(const struct manifest_entry *e)
{
	return 1 + 3 * 10 + 32 + 3 * 10 + (e->key ? strlen(e->key) : 0) +
	       (e->version_id ? strlen(e->version_id) : 0) +
	       (e->meta_json ? strlen(e->meta_json) : 0);
}

static size_t put_str(unsigned char *p, const char *s)
{
	size_t n = strlen(s), k = put_varint(p, n);

	memcpy(p + k, s, n);
	return k + n;
}

/* Encode e into buf (ent_max_len bytes).  Returns the length. */
static size_t ent_encode(const struct manifest_entry *e, unsigned char *buf)
{
	unsigned char flags = 0;
	size_t n = 1;
	int64_t t = e->mtime;

	if (e->sha256[0])
		flags |= F_SHA;
	if (e->key)
		flags |= F_KEY;
	if (e->version_id)
		flags |= F_VID;
	if (e->meta_json)
		flags |= F_META;
	buf[0] = flags;
	n += put_varint(buf + n, e->size);
	n += put_varint(buf + n, e->mode);
	/* zigzag: small negative times stay short too */
	n += put_varint(buf + n, ((uint64_t)t << 1) ^ (t < 0 ? UINT64_MAX : 0));
	if (flags & F_SHA) {
		/* checked as 64 hex digits by the manifest reader */
		(void)unhex32(e->sha256, buf + n);
		n += 32;
	}
	if (flags & F_KEY)
		n += put_str(buf + n, e->key);
	if (flags & F_VID)
		n += put_str(buf + n, e->version_id);
	if (flags & F_META)
		n += put_str(buf + n, e->meta_json);
	return n;
}

/* A length-prefixed string at *p as a new C string.  Caller frees. */
static int get_str(const unsigned char **p, const unsigned char *end,
		   char **out)
{
	uint64_t n;
	int rc = get_varint(p, end, &n);

	if (rc)
		return rc;
	if (n > (uint64_t)(end - *p))
		return DMFS_ERR_CORRUPT;
	*out = strndup((const char *)*p, (size_t)n);
	if (!*out)
		return DMFS_ERR_NOMEM;
	*p += n;
	return 0;
}

/* Decode a stored value into e (caller frees with mindex_ent_clear). */
static int ent_decode(const MDB_val *v, struct mindex_ent *e)
{
	const unsigned char *p = v->mv_data, *end = p + v->mv_size;
	uint64_t size, mode, zz;
	unsigned char flags;
	int rc;

	memset(e, 0, sizeof(*e));
	if (v->mv_size < 1)
		return DMFS_ERR_CORRUPT;
	flags = *p++;
	rc = get_varint(&p, end, &size);
	if (!rc)
		rc = get_varint(&p, end, &mode);
	if (!rc)
		rc = get_varint(&p, end, &zz);
	if (rc)
		goto out;
	e->size = size;
	e->mode = (uint32_t)mode;
	e->mtime = (int64_t)(zz >> 1) ^ -(int64_t)(zz & 1);
	if (flags & F_SHA) {
		if (end - p < 32) {
			rc = DMFS_ERR_CORRUPT;
			goto out;
		}
		hex32(p, e->sha256);
		p += 32;
	}
	if (flags & F_KEY)
		rc = get_str(&p, end, &e->key);
	if (!rc && (flags & F_VID))
		rc = get_str(&p, end, &e->version_id);
	if (!rc && (flags & F_META))
		rc = get_str(&p, end, &e->meta_json);
out:
	if (rc)
		mindex_ent_clear(e);
	return rc;
}

void mindex_ent_clear(struct mindex_ent *e)
{
	if (!e)
		return;
	free(e->key);
	free(e->version_id);
	free(e->meta_json);
	memset(e, 0, sizeof(*e));
}

/* --- manifests --- */

/* The id of an indexed manifest, within txn.  0 or an LMDB code
 * (MDB_NOTFOUND when it is not indexed). */
static int man_id(struct mindex *mx, MDB_txn *txn, const unsigned char h[32],
		  uint64_t *id, uint64_t *count)
{
	MDB_val k = {32, (void *)h}, v;
	int rc = mdb_get(txn, mx->db_man, &k, &v);

	if (rc)
		return rc;
	if (v.mv_size < MX_MAN_VAL_LEN)
		return MDB_CORRUPTED;
	*id = get_be64(v.mv_data);
	if (count)
		*count = get_be64((const unsigned char *)v.mv_data + 8);
	return 0;
}

int mindex_has(struct mindex *mx, const char *hash_hex)
{
	unsigned char h[32];
	MDB_txn *txn;
	uint64_t id;
	int rc;

	if (unhex32(hash_hex, h) || txn_begin(mx, MDB_RDONLY, &txn))
		return 0;
	rc = man_id(mx, txn, h, &id, NULL);
	txn_end(mx, txn, 0);
	return rc == 0;
}

/*
 * Index state of one mindex_add: the write transaction, the key buffer
 * (id || path) and the previous path, to notice new directories.
 */
struct adder {
	struct mindex *mx;
	MDB_txn *txn;
	unsigned char key[MX_KEY_MAX];
	char prev[MX_PATH_MAX + 1];
	size_t prev_len;
	unsigned char *val;
	size_t valcap;
	uint64_t count, skipped, shadowed;
};

/*
 * Path p is about to be added: each of its parent directories that the
 * previous path did not have is new, and a file of that name (stored
 * before, since it sorts first) is dropped: the directory wins.
 */
static int drop_shadowed(struct adder *a, const char *p, size_t len)
{
	size_t common = 0;

	while (common < len && common < a->prev_len &&
	       p[common] == a->prev[common])
		common++;
	for (size_t i = common; i < len; i++) {
		if (p[i] != '/')
			continue;
		MDB_val k = {MX_ID_LEN + i, a->key}, v;
		int rc = mdb_get(a->txn, a->mx->db_ent, &k, &v);
		if (rc == MDB_NOTFOUND)
			continue;
		if (!rc)
			rc = mdb_del(a->txn, a->mx->db_ent, &k, NULL);
		if (rc)
			return rc;
		a->count--;
		a->shadowed++;
		dmfs_log(DMFS_LOG_WARN,
			 "index: '%.*s' is both a file and a directory; "
			 "showing the directory",
			 (int)i, p);
	}
	return 0;
}

static int add_entry(struct adder *a, const struct manifest_entry *e)
{
	size_t len = strlen(e->path), need = ent_max_len(e);
	int rc;

	if (len > MX_PATH_MAX) {
		if (a->skipped++ < MX_SKIP_LOG_MAX)
			dmfs_log(DMFS_LOG_WARN,
				 "index: path longer than %d bytes left out: "
				 "%.80s...",
				 MX_PATH_MAX, e->path);
		return 0;
	}
	/* A manifest made elsewhere (or before these rules) may hold a path
	 * live/ would hide (keyname.c): a version shows the same names. */
	size_t unit;
	enum keyname_fault f = keyname_check_path(e->path, &unit);
	if (f || (len && e->path[len - 1] == '/')) {
		if (a->skipped++ < MX_SKIP_LOG_MAX) {
			char q[200];
			keyname_quote(e->path, len < 120 ? len : 120, q,
				      sizeof(q));
			dmfs_log(DMFS_LOG_WARN, "index: path '%s' left out: %s",
				 q, f ? keyname_fault_str(f)
				      : "a directory marker is not a file");
		}
		return 0;
	}
	if (need > a->valcap) {
		size_t cap = a->valcap ? a->valcap : 4096;
		while (cap < need)
			cap *= 2;
		unsigned char *nv = realloc(a->val, cap);
		if (!nv)
			return ENOMEM;
		a->val = nv;
		a->valcap = cap;
	}
	memcpy(a->key + MX_ID_LEN, e->path, len);
	rc = drop_shadowed(a, e->path, len);
	if (rc)
		return rc;
	MDB_val k = {MX_ID_LEN + len, a->key};
	MDB_val v = {ent_encode(e, a->val), a->val};
	rc = mdb_put(a->txn, a->mx->db_ent, &k, &v, MDB_APPEND);
	if (rc)
		return rc;
	memcpy(a->prev, e->path, len);
	a->prev_len = len;
	a->count++;
	return 0;
}

int mindex_add(struct mindex *mx, const char *hash_hex,
	       const char *manifest_path, uint64_t *nentries, char *msg,
	       size_t msgsz)
{
	struct adder a = {.mx = mx};
	struct manifest_reader *r = NULL;
	struct manifest_entry e;
	unsigned char h[32], mv[MX_MAN_VAL_LEN];
	uint64_t id = 0, have = 0;
	int rc, mrc = 0, in_txn = 0;

	if (nentries)
		*nentries = 0;
	if (msg && msgsz)
		msg[0] = '\0';
	if (unhex32(hash_hex, h)) {
		snprintf(msg, msgsz, "not a manifest hash: %.80s", hash_hex);
		return DMFS_ERR_INVAL;
	}
	/* Open (and check the header) before taking the write lock. */
	rc = manifest_reader_open(manifest_path, &r, msg, msgsz);
	if (rc)
		return rc;
	mrc = txn_begin(mx, 0, &a.txn);
	if (mrc)
		goto out;
	in_txn = 1;
	/* Another thread or process may have indexed it meanwhile. */
	mrc = man_id(mx, a.txn, h, &id, &have);
	if (!mrc) {
		if (nentries)
			*nentries = have;
		goto out; /* aborts: nothing written */
	}
	if (mrc != MDB_NOTFOUND)
		goto out;
	mrc = meta_get_u64(mx, a.txn, "next_id", &id);
	if (mrc == MDB_NOTFOUND) {
		id = 1;
		mrc = 0;
	}
	if (mrc)
		goto out;
	put_be64(a.key, id);
	for (;;) {
		int n = manifest_reader_next(r, &e, msg, msgsz);
		if (n == 0)
			break;
		if (n < 0) {
			rc = -n;
			goto out;
		}
		mrc = add_entry(&a, &e);
		manifest_entry_clear(&e);
		if (mrc)
			goto out;
	}
	put_be64(mv, id);
	put_be64(mv + 8, a.count);
	put_be64(mv + 16, (uint64_t)time(NULL));
	MDB_val k = {32, h}, v = {sizeof(mv), mv};
	mrc = mdb_put(a.txn, mx->db_man, &k, &v, MDB_NOOVERWRITE);
	if (!mrc)
		mrc = meta_put_u64(mx, a.txn, "next_id", id + 1);
	if (mrc)
		goto out;
	in_txn = 0;
	mrc = txn_end(mx, a.txn, 1);
	if (mrc)
		goto out;
	if (nentries)
		*nentries = a.count;
	if (a.skipped)
		dmfs_log(DMFS_LOG_WARN,
			 "index: manifest %.16s: %llu path(s) left out (longer "
			 "than %d bytes, or not valid names)",
			 hash_hex, (unsigned long long)a.skipped, MX_PATH_MAX);
	dmfs_log(DMFS_LOG_INFO, "index: manifest %.16s: %llu entries", hash_hex,
		 (unsigned long long)a.count);
out:
	if (in_txn)
		txn_end(mx, a.txn, 0);
	if (!rc && mrc) {
		rc = io_err(mrc);
		snprintf(msg, msgsz, "index %s: %s", mx->dir,
			 mdb_strerror(mrc));
		dmfs_log(DMFS_LOG_ERROR, "index: manifest %.16s: %s", hash_hex,
			 msg);
	}
	manifest_reader_close(r);
	free(a.val);
	return rc;
}

int mindex_remove(struct mindex *mx, const char *hash_hex)
{
	unsigned char h[32], key[MX_ID_LEN];
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	MDB_val k, v;
	uint64_t id;
	int rc;

	if (unhex32(hash_hex, h))
		return DMFS_ERR_INVAL;
	rc = txn_begin(mx, 0, &txn);
	if (rc)
		return io_err(rc);
	rc = man_id(mx, txn, h, &id, NULL);
	if (rc == MDB_NOTFOUND) {
		txn_end(mx, txn, 0);
		return 0;
	}
	if (!rc) {
		k = (MDB_val){32, h};
		rc = mdb_del(txn, mx->db_man, &k, NULL);
	}
	if (!rc)
		rc = mdb_cursor_open(txn, mx->db_ent, &cur);
	put_be64(key, id);
	k = (MDB_val){MX_ID_LEN, key};
	if (!rc)
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (!rc && k.mv_size >= MX_ID_LEN &&
	       !memcmp(k.mv_data, key, MX_ID_LEN)) {
		rc = mdb_cursor_del(cur, 0);
		/* after a delete, MDB_NEXT gives the record that followed */
		if (!rc)
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (cur)
		mdb_cursor_close(cur);
	if (rc) {
		dmfs_log(DMFS_LOG_ERROR, "index: removing %.16s: %s", hash_hex,
			 mdb_strerror(rc));
		txn_end(mx, txn, 0);
		return io_err(rc);
	}
	return io_err(txn_end(mx, txn, 1));
}

/* --- lookups --- */

/*
 * The key prefix of path inside manifest hash_hex, in a read transaction
 * the caller ends: key receives id || path, *klen its length.  path has
 * no leading or trailing '/'.
 */
static int lookup_begin(struct mindex *mx, const char *hash_hex,
			const char *path, MDB_txn **txn,
			unsigned char key[MX_KEY_MAX + 1], size_t *klen)
{
	unsigned char h[32];
	uint64_t id;
	size_t len = strlen(path);
	int rc;

	if (unhex32(hash_hex, h))
		return DMFS_ERR_INVAL;
	if (len > MX_PATH_MAX)
		return DMFS_ERR_NOT_FOUND; /* never indexed */
	rc = txn_begin(mx, MDB_RDONLY, txn);
	if (rc)
		return io_err(rc);
	rc = man_id(mx, *txn, h, &id, NULL);
	if (rc) {
		txn_end(mx, *txn, 0);
		return mdb_to_err(rc);
	}
	put_be64(key, id);
	memcpy(key + MX_ID_LEN, path, len);
	*klen = MX_ID_LEN + len;
	return 0;
}

/* Whether any key starts with prefix (klen bytes). */
static int has_prefix(MDB_cursor *cur, const unsigned char *prefix, size_t klen)
{
	MDB_val k = {klen, (void *)prefix}, v;

	if (mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE))
		return 0;
	return k.mv_size >= klen && !memcmp(k.mv_data, prefix, klen);
}

/* Copy path without leading and trailing '/' into buf.  0 or
 * DMFS_ERR_NOT_FOUND when it cannot be an indexed path. */
static int clean_path(const char *path, char *buf, size_t bufsz)
{
	while (*path == '/')
		path++;
	size_t n = strlen(path);
	while (n && path[n - 1] == '/')
		n--;
	if (n >= bufsz)
		return DMFS_ERR_NOT_FOUND;
	memcpy(buf, path, n);
	buf[n] = '\0';
	return 0;
}

int mindex_stat(struct mindex *mx, const char *hash_hex, const char *path,
		bool *is_dir, struct mindex_ent *e)
{
	unsigned char key[MX_KEY_MAX + 1];
	char p[MX_PATH_MAX + 1];
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	MDB_val k, v;
	size_t klen;
	int rc;

	if (e)
		memset(e, 0, sizeof(*e));
	if (clean_path(path, p, sizeof(p)))
		return DMFS_ERR_NOT_FOUND;
	rc = lookup_begin(mx, hash_hex, p, &txn, key, &klen);
	if (rc)
		return rc;
	*is_dir = false;
	if (!*p) {
		*is_dir = true;
		goto out;
	}
	k = (MDB_val){klen, key};
	rc = mdb_get(txn, mx->db_ent, &k, &v);
	if (!rc) {
		if (e)
			rc = ent_decode(&v, e);
		goto out;
	}
	if (rc != MDB_NOTFOUND) {
		rc = mdb_to_err(rc);
		goto out;
	}
	key[klen++] = '/';
	rc = mdb_cursor_open(txn, mx->db_ent, &cur);
	if (rc) {
		rc = mdb_to_err(rc);
		goto out;
	}
	if (has_prefix(cur, key, klen))
		*is_dir = true;
	else
		rc = DMFS_ERR_NOT_FOUND;
	mdb_cursor_close(cur);
out:
	txn_end(mx, txn, 0);
	return rc;
}

int mindex_readdir(struct mindex *mx, const char *hash_hex, const char *dir,
		   const char *after, mindex_dir_cb cb, void *ctx)
{
	unsigned char key[MX_KEY_MAX + 2];
	char d[MX_PATH_MAX + 1], name[MX_KEY_MAX + 1];
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	MDB_val k, v;
	MDB_cursor_op op = MDB_SET_RANGE;
	size_t plen, alen = after ? strlen(after) : 0;
	int rc;

	if (clean_path(dir, d, sizeof(d)))
		return DMFS_ERR_NOT_FOUND;
	rc = lookup_begin(mx, hash_hex, d, &txn, key, &plen);
	if (rc)
		return rc;
	rc = mdb_cursor_open(txn, mx->db_ent, &cur);
	if (rc) {
		rc = mdb_to_err(rc);
		goto out;
	}
	if (*d) {
		k = (MDB_val){plen, key};
		if (!mdb_get(txn, mx->db_ent, &k, &v)) {
			rc = DMFS_ERR_NOT_DIR;
			goto out;
		}
		key[plen++] = '/';
		if (!has_prefix(cur, key, plen)) {
			rc = DMFS_ERR_NOT_FOUND;
			goto out;
		}
	}
	/*
	 * Where to start: the first key, or past the child `after`: past its
	 * key for a file, past its subtree for a directory, and at the first
	 * key beyond where it would be for a name that is neither.
	 */
	k = (MDB_val){plen, key};
	if (alen) {
		if (plen + alen + 1 > MX_KEY_MAX) {
			rc = DMFS_ERR_INVAL; /* no child has so long a name */
			goto out;
		}
		memcpy(key + plen, after, alen);
		k.mv_size = plen + alen;
		if (mdb_get(txn, mx->db_ent, &k, &v) == 0) {
			rc = io_err(mdb_cursor_get(cur, &k, &v, MDB_SET));
			if (rc)
				goto out;
			op = MDB_NEXT;
		} else {
			key[plen + alen] = '/';
			if (has_prefix(cur, key, plen + alen + 1)) {
				key[plen + alen] = '/' + 1;
				k.mv_size = plen + alen + 1;
			}
			k.mv_data = key;
		}
	}
	for (;;) {
		rc = mdb_cursor_get(cur, &k, &v, op);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			break;
		}
		if (rc) {
			rc = mdb_to_err(rc);
			break;
		}
		if (k.mv_size <= plen || memcmp(k.mv_data, key, plen))
			break;
		const char *rest = (const char *)k.mv_data + plen;
		size_t rlen = k.mv_size - plen;
		const char *slash = memchr(rest, '/', rlen);
		size_t nlen = slash ? (size_t)(slash - rest) : rlen;
		memcpy(name, rest, nlen);
		name[nlen] = '\0';
		if (slash) {
			rc = cb(ctx, name, true, NULL);
			if (rc)
				break;
			/* Jump over the subdirectory: to "name0". */
			memcpy(key + plen, name, nlen);
			key[plen + nlen] = '/' + 1;
			k = (MDB_val){plen + nlen + 1, key};
			op = MDB_SET_RANGE;
			continue;
		}
		struct mindex_ent e;
		rc = ent_decode(&v, &e);
		if (!rc)
			rc = cb(ctx, name, false, &e);
		mindex_ent_clear(&e);
		if (rc)
			break;
		op = MDB_NEXT;
	}
out:
	if (cur)
		mdb_cursor_close(cur);
	txn_end(mx, txn, 0);
	return rc;
}

/* --- the hash memo --- */

static int memo_key(const char *store_uri, const char *key, const char *etag,
		    uint64_t size, unsigned char out[32])
{
	static const char tag[] = "dmfs-memo-1";
	const char *parts[] = {store_uri, key, etag};
	unsigned char sz[8];
	unsigned int len = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(c, tag, sizeof(tag)) == 1;

	/* NUL-separated, so ("ab","c") and ("a","bc") differ. */
	for (int i = 0; ok && i < 3; i++)
		ok =
		    EVP_DigestUpdate(c, parts[i] ? parts[i] : "",
				     strlen(parts[i] ? parts[i] : "") + 1) == 1;
	put_be64(sz, size);
	ok = ok && EVP_DigestUpdate(c, sz, sizeof(sz)) == 1 &&
	     EVP_DigestFinal_ex(c, out, &len) == 1 && len == 32;
	EVP_MD_CTX_free(c);
	return ok ? 0 : DMFS_ERR_NOMEM;
}

int mindex_memo_get(struct mindex *mx, const char *store_uri, const char *key,
		    const char *etag, uint64_t size, char sha_hex[65])
{
	unsigned char mk[32];
	MDB_txn *txn;
	MDB_val k = {32, mk}, v;
	int rc;

	if (!etag || !*etag)
		return DMFS_ERR_NOT_FOUND; /* an unknown ETag names nothing */
	rc = memo_key(store_uri, key, etag, size, mk);
	if (rc)
		return rc;
	rc = txn_begin(mx, MDB_RDONLY, &txn);
	if (rc)
		return DMFS_ERR_IO;
	rc = mdb_get(txn, mx->db_memo, &k, &v);
	if (!rc && v.mv_size == 32)
		hex32(v.mv_data, sha_hex);
	else if (!rc)
		rc = MDB_CORRUPTED;
	txn_end(mx, txn, 0);
	return mdb_to_err(rc);
}

int mindex_memo_put(struct mindex *mx, const char *store_uri, const char *key,
		    const char *etag, uint64_t size, const char *sha_hex)
{
	unsigned char mk[32], sha[32];
	MDB_txn *txn;
	MDB_val k = {32, mk}, v = {32, sha};
	int rc;

	if (!etag || !*etag)
		return 0; /* nothing to key it by: not remembered */
	if (unhex32(sha_hex, sha))
		return DMFS_ERR_INVAL;
	rc = memo_key(store_uri, key, etag, size, mk);
	if (rc)
		return rc;
	rc = txn_begin(mx, 0, &txn);
	if (rc)
		return DMFS_ERR_IO;
	rc = mdb_put(txn, mx->db_memo, &k, &v, 0);
	if (rc) {
		txn_end(mx, txn, 0);
	} else {
		rc = txn_end(mx, txn, 1);
	}
	if (rc)
		dmfs_log(DMFS_LOG_WARN, "index: memo: %s", mdb_strerror(rc));
	return io_err(rc);
}
