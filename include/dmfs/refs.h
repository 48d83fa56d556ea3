/*
 * refs.h - refs: the names of snapshots and dataset versions.
 *
 * A ref is a small JSON object in the bucket, at
 *   .dmfs/refs/snapshots/<ID>
 *   .dmfs/refs/datasets/<NAME>/<VERSION>
 * holding the manifest hash and a copy of the manifest header (so `dmfs
 * log` reads refs only):  {"manifest":"<hex>","writer":"<nonce>",
 * "header":{…as in manifest.h…}}.
 *
 * Refs are never overwritten.  Creating one is a conditional PUT
 * (If-None-Match: *, exact where the server honours it) followed by a
 * read-back that checks our own writer nonce is what the bucket holds:
 * where the server ignores the condition, of two racing writers the one
 * whose write landed last wins and the other sees the mismatch and
 * reports DMFS_ERR_EXISTS.
 *
 * A ref name ("snapshots/ID" or "datasets/NAME/VERSION") is what users
 * type and what the mount shows under its root.
 */
#ifndef DMFS_REFS_H
#define DMFS_REFS_H

#include <stddef.h>

#include "dmfs/manifest.h"
#include "dmfs/store.h"

#define REFS_PREFIX ".dmfs/refs/"
#define REF_NAME_MAX 512

struct ref_info {
	char name[REF_NAME_MAX];	/* "snapshots/ID", "datasets/N/V" */
	char manifest[65];		/* hex */
	struct manifest_header h;	/* owned */
};

void ref_info_clear(struct ref_info *r);
/* Free an array from refs_list.  NULL-safe. */
void refs_free(struct ref_info *refs, size_t n);

/*
 * Whether a ref name is well formed: "snapshots/ID" or
 * "datasets/NAME/VERSION", each part 1-200 bytes of [A-Za-z0-9._@+=-],
 * not "." / ".." / "latest" (reserved for the symlink).  0 or
 * DMFS_ERR_INVAL with a reason in msg.
 */
int refs_check_name(const char *name, char *msg, size_t msgsz);

/*
 * Every ref in the store (listing plus one GET each, in parallel),
 * sorted newest first (by manifest_header_order, then name descending).  Caller frees with
 * refs_free.  A ref that cannot be parsed is logged and skipped.
 */
int refs_list(struct dmfs_store *st, struct ref_info **out, size_t *n,
	      struct dmfs_err_detail *d) __attribute__((warn_unused_result));

/* Read one ref.  DMFS_ERR_NOT_FOUND when it does not exist.  Caller frees
 * out with ref_info_clear. */
int refs_read(struct dmfs_store *st, const char *name, struct ref_info *out,
	      struct dmfs_err_detail *d) __attribute__((warn_unused_result));

/*
 * Create a ref pointing at a manifest.  DMFS_ERR_EXISTS when the name is
 * taken (also when another writer won a race for it).
 */
int refs_create(struct dmfs_store *st, const char *name,
		const char *manifest_hex, const struct manifest_header *h,
		struct dmfs_err_detail *d) __attribute__((warn_unused_result));

/* Delete a ref.  DMFS_ERR_NOT_FOUND when there is none. */
int refs_delete(struct dmfs_store *st, const char *name,
		struct dmfs_err_detail *d) __attribute__((warn_unused_result));

#endif
