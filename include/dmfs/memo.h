/*
 * memo.h - the content hash memo: (store, key, ETag, size) -> sha256 of a
 * live object, so an unchanged object is never read twice to be hashed.
 *
 * An LMDB environment at CACHE_DIR/memo/, shared by every dmfs process on
 * the machine.  It is apart from the block cache's environment on purpose:
 * LMDB allows one writer per environment, and a capture that remembers
 * thousands of hashes must not stall the block cache's writer.
 */
#ifndef DMFS_MEMO_H
#define DMFS_MEMO_H

#include <stdint.h>

struct memo;

/* Open (or create) CACHE_DIR/memo.  Caller frees with memo_close. */
int memo_open(const char *cache_dir, struct memo **out)
	__attribute__((warn_unused_result));
/* NULL-safe. */
void memo_close(struct memo *m);
/* 0 with sha_hex filled, or DMFS_ERR_NOT_FOUND (also on any LMDB error:
 * the memo is an optimisation). */
int memo_get(struct memo *m, const char *store_uri, const char *key,
	     const char *etag, uint64_t size, char sha_hex[65]);
/* Remember a hash.  0 or DMFS_ERR_*. */
int memo_put(struct memo *m, const char *store_uri, const char *key,
	     const char *etag, uint64_t size, const char *sha_hex);

#endif
