/*
 * tree.h - a file tree as a sorted stream: the live bucket under a prefix,
 * the latest object versions under a prefix, or (part of) a snapshot or
 * dataset version.  Captures, diffs and fsck read trees through this one
 * interface, one entry at a time, so no tree is ever held in memory.
 *
 * A tree is named as users name it:
 *   "live" or "live/SUB"                      the bucket as it is now
 *   "snapshots/ID" or "snapshots/ID/SUB"      a snapshot (or part of it)
 *   "datasets/NAME/VERSION[/SUB]"             a dataset version
 * Entries come in byte order of path; paths are relative to the tree's
 * root (SUB stripped).  The store's own ".dmfs/" is never part of live.
 */
#ifndef DMFS_TREE_H
#define DMFS_TREE_H

#include <stdbool.h>

#include "dmfs/capture.h"
#include "dmfs/manifest.h"
#include "dmfs/refs.h"

struct tree;

enum tree_kind { TREE_LIVE, TREE_REF };

/*
 * Open a tree.  versions: for a live tree, list the latest object versions
 * (entries then carry key and version_id) instead of plain keys.  msg says
 * why on failure (DMFS_ERR_NOT_FOUND: no such snapshot or version;
 * DMFS_ERR_INVAL: a malformed name).  Caller frees with tree_close.
 */
int tree_open(const struct capture_env *env, const char *spec, bool versions,
	      struct tree **out, char *msg, size_t msgsz)
	__attribute__((warn_unused_result));
/* What the tree is. */
enum tree_kind tree_kind(const struct tree *t);
/* For a TREE_REF: the ref (borrowed; valid until tree_close). */
const struct ref_info *tree_ref(const struct tree *t);
/* For a TREE_LIVE: the key prefix of its root ("" or "a/b/"). */
const char *tree_live_prefix(const struct tree *t);
/*
 * The next entry: 1 with e filled (caller frees with
 * manifest_entry_clear; for live trees e->key is the object key and sha256
 * is "" unless known), 0 at the end, or a negated DMFS_ERR_* (as
 * manifest_reader_next: DMFS_ERR_NOMEM is 1) with msg.
 */
int tree_next(struct tree *t, struct manifest_entry *e, char *msg,
	      size_t msgsz) __attribute__((warn_unused_result));
/*
 * For a TREE_LIVE opened without versions: the entry the walk would give
 * for object key (one HEAD instead of a listing), as tree_next fills it.
 * 1 with e filled (caller frees with manifest_entry_clear), 0 when the
 * walk would not give key (no such object, outside the tree, hidden), or
 * a negated DMFS_ERR_* with msg.
 */
int tree_live_lookup(struct tree *t, const char *key,
		     struct manifest_entry *e, char *msg, size_t msgsz)
	__attribute__((warn_unused_result));
void tree_close(struct tree *t);

#endif
