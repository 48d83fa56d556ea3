/*
 * mindex.h - the local index: manifests indexed in LMDB so stat and readdir
 * inside a version are local lookups, and the memo of content hashes of
 * live objects ((store, key, ETag, size) -> sha256) so an unchanged object
 * is never hashed twice.
 *
 * One LMDB environment per cache directory, at CACHE_DIR/index/, shared by
 * every dmfs process (and the dmfs commands) on the machine.  It is kept
 * apart from the block cache's environment on purpose: LMDB allows one
 * writer per environment, and indexing a 1 000 000-entry manifest is one
 * long write transaction that must not stall the block cache's writer.
 *
 * Manifests are identified by their hash (hex); an index is complete or
 * absent (it is written in one transaction, so a crash mid-way leaves
 * nothing).  Entries are keyed by (manifest id, path); a directory's
 * children are found by cursor range scans, skipping over each
 * subdirectory's subtree, so readdir costs O(children log n).
 */
#ifndef DMFS_MINDEX_H
#define DMFS_MINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmfs/manifest.h"

struct mindex;

/* Open (or create) CACHE_DIR/index.  Caller frees with mindex_close. */
int mindex_open(const char *cache_dir, struct mindex **out)
	__attribute__((warn_unused_result));
void mindex_close(struct mindex *mx);

/* Whether the manifest with this hash is indexed (1) or not (0). */
int mindex_has(struct mindex *mx, const char *hash_hex);

/*
 * Index a manifest from its local file (already verified against its
 * hash).  Entries whose path does not fit an LMDB key are logged and left
 * out of the index.  *nentries (may be NULL) receives the count indexed.
 * DMFS_ERR_INVAL (msg says why) for a malformed manifest; nothing is
 * indexed then.
 */
int mindex_add(struct mindex *mx, const char *hash_hex,
	       const char *manifest_path, uint64_t *nentries, char *msg,
	       size_t msgsz) __attribute__((warn_unused_result));

/* Drop a manifest's index (gc of local state).  0 also when absent. */
int mindex_remove(struct mindex *mx, const char *hash_hex);

/* One indexed file.  Owned by the struct (free with mindex_ent_clear). */
struct mindex_ent {
	uint64_t size;
	uint32_t mode;
	int64_t mtime;
	char sha256[65];	/* "" for a zero-copy pin */
	char *key;		/* zero-copy pin: live key and version id */
	char *version_id;
	char *meta_json;	/* frozen metadata, or NULL */
};
void mindex_ent_clear(struct mindex_ent *e);

/*
 * Look up path ("" is the root) in an indexed manifest: 0 with *is_dir set
 * (and e filled for a file; e may be NULL), or DMFS_ERR_NOT_FOUND.
 */
int mindex_stat(struct mindex *mx, const char *hash_hex, const char *path,
		bool *is_dir, struct mindex_ent *e)
	__attribute__((warn_unused_result));

/*
 * Call cb once per child of directory dir ("" is the root), in byte order
 * of name, starting after the child named `after` (NULL: from the first).
 * name is borrowed for the call; e is NULL for a subdirectory.  cb returns
 * 0 to go on or nonzero to stop (that value is returned).
 */
typedef int (*mindex_dir_cb)(void *ctx, const char *name, bool is_dir,
			     const struct mindex_ent *e);
int mindex_readdir(struct mindex *mx, const char *hash_hex, const char *dir,
		   const char *after, mindex_dir_cb cb, void *ctx);

/* --- the content hash memo --- */

/* Look up the sha256 of (store_uri, key, etag, size): 0 with sha_hex
 * filled, or DMFS_ERR_NOT_FOUND. */
int mindex_memo_get(struct mindex *mx, const char *store_uri, const char *key,
		    const char *etag, uint64_t size, char sha_hex[65]);
/* Remember it.  0 or DMFS_ERR_*. */
int mindex_memo_put(struct mindex *mx, const char *store_uri, const char *key,
		    const char *etag, uint64_t size, const char *sha_hex);

#endif
