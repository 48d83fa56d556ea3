/*
 * memo.c - the content hash memo (see memo.h).
 *
 * Keys are the sha256 of (store URI, key, ETag, size) joined with NULs, so
 * they have a fixed length whatever the key (LMDB keys are at most 511
 * bytes); values are the 32 raw bytes of the content hash.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>
#include <openssl/evp.h>

#include "dmfs/err.h"
#include "dmfs/log.h"
#include "dmfs/memo.h"

#define MEMO_MAP_SIZE (1ull << 32) /* 4 GiB of address space, sparse */

struct memo {
	MDB_env *env;
	MDB_dbi dbi;
};

int memo_open(const char *cache_dir, struct memo **out)
{
	char dir[4096];
	struct memo *m = calloc(1, sizeof(*m));
	MDB_txn *txn = NULL;
	int dead, rc;

	if (!m)
		return DMFS_ERR_NOMEM;
	if (snprintf(dir, sizeof(dir), "%s/memo", cache_dir) >= (int)sizeof(dir)) {
		free(m);
		return DMFS_ERR_INVAL;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		dmfs_log(DMFS_LOG_ERROR, "memo: mkdir %s: %s", dir,
			 strerror(errno));
		free(m);
		return DMFS_ERR_IO;
	}
	rc = mdb_env_create(&m->env);
	if (!rc)
		rc = mdb_env_set_mapsize(m->env, MEMO_MAP_SIZE);
	if (!rc)
		rc = mdb_env_open(m->env, dir, MDB_NOTLS | MDB_NOSYNC, 0600);
	if (!rc)
		(void)mdb_reader_check(m->env, &dead);
	if (!rc)
		rc = mdb_txn_begin(m->env, NULL, 0, &txn);
	if (!rc)
		rc = mdb_dbi_open(txn, NULL, 0, &m->dbi);
	if (!rc)
		rc = mdb_txn_commit(txn);
	else if (txn)
		mdb_txn_abort(txn);
	if (rc) {
		dmfs_log(DMFS_LOG_ERROR, "memo %s: %s", dir, mdb_strerror(rc));
		if (m->env)
			mdb_env_close(m->env);
		free(m);
		return DMFS_ERR_IO;
	}
	*out = m;
	return 0;
}

void memo_close(struct memo *m)
{
	if (!m)
		return;
	mdb_env_close(m->env);
	free(m);
}

static void memo_key(const char *store_uri, const char *key, const char *etag,
		     uint64_t size, unsigned char out[32])
{
	char sz[24];
	unsigned int n = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	memset(out, 0, 32);
	if (!c)
		return;
	snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, store_uri, strlen(store_uri) + 1);
	EVP_DigestUpdate(c, key, strlen(key) + 1);
	EVP_DigestUpdate(c, etag, strlen(etag) + 1);
	EVP_DigestUpdate(c, sz, strlen(sz));
	EVP_DigestFinal_ex(c, out, &n);
	EVP_MD_CTX_free(c);
}

int memo_get(struct memo *m, const char *store_uri, const char *key,
	     const char *etag, uint64_t size, char sha_hex[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char k[32];
	MDB_txn *txn;
	MDB_val kv = {sizeof(k), k}, v;
	int rc;

	if (!m || !etag[0]) /* without an ETag nothing pins the content */
		return DMFS_ERR_NOT_FOUND;
	memo_key(store_uri, key, etag, size, k);
	if (mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn))
		return DMFS_ERR_NOT_FOUND;
	rc = mdb_get(txn, m->dbi, &kv, &v);
	if (!rc && v.mv_size == 32) {
		/* v is valid only until the transaction ends: copy now. */
		const unsigned char *d = v.mv_data;
		for (int i = 0; i < 32; i++) {
			sha_hex[2 * i] = hex[d[i] >> 4];
			sha_hex[2 * i + 1] = hex[d[i] & 15];
		}
		sha_hex[64] = '\0';
	}
	mdb_txn_abort(txn);
	return !rc && v.mv_size == 32 ? 0 : DMFS_ERR_NOT_FOUND;
}

int memo_put(struct memo *m, const char *store_uri, const char *key,
	     const char *etag, uint64_t size, const char *sha_hex)
{
	unsigned char k[32], d[32];
	MDB_txn *txn;
	MDB_val kv = {sizeof(k), k}, v = {sizeof(d), d};
	int rc;

	if (!m || !etag[0] || strlen(sha_hex) != 64)
		return DMFS_ERR_INVAL;
	for (int i = 0; i < 32; i++) {
		unsigned int b;
		if (sscanf(sha_hex + 2 * i, "%2x", &b) != 1)
			return DMFS_ERR_INVAL;
		d[i] = (unsigned char)b;
	}
	memo_key(store_uri, key, etag, size, k);
	rc = mdb_txn_begin(m->env, NULL, 0, &txn);
	if (rc)
		return rc == MDB_MAP_FULL ? DMFS_ERR_NOSPC : DMFS_ERR_IO;
	rc = mdb_put(txn, m->dbi, &kv, &v, 0);
	if (!rc)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	if (rc)
		return rc == MDB_MAP_FULL ? DMFS_ERR_NOSPC : DMFS_ERR_IO;
	return 0;
}
