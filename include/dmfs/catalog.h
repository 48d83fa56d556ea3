/*
 * catalog.h - the mount's view of the refs: which snapshots and dataset
 * versions exist, the manifest each names, and when it was created.
 *
 * The ref list (refs_list) is held in memory and read again when it is
 * older than `refresh` seconds, lazily, by the first operation that needs
 * the list of names (a listing of snapshots/ or datasets/, a `latest` link,
 * a name not known yet).  Paths inside a known version never wait for a
 * refresh: refs are never overwritten.  No lock is held during S3 I/O; an
 * operation that finds the list stale refreshes it itself while the others
 * go on with the list they have.  catalog_refresh reads the list now (the
 * "refresh" control command, and after a capture).
 *
 * Manifests are indexed (mindex) on first use, once: concurrent callers
 * for the same manifest wait for the one doing the work.
 */
#ifndef DMFS_CATALOG_H
#define DMFS_CATALOG_H

#include <stdint.h>

#include "dmfs/mindex.h"
#include "dmfs/refs.h"
#include "dmfs/store.h"

struct catalog;

/*
 * A catalog of the refs in st.  st and mx are borrowed and must outlive
 * it; manifests are fetched to cache_dir/manifests/.  refresh: seconds a
 * ref list is trusted (0: only catalog_refresh reads it again).  Nothing
 * is read until first use.  Caller frees with catalog_free.
 */
int catalog_new(struct dmfs_store *st, struct mindex *mx, const char *cache_dir,
		double refresh, struct catalog **out)
    __attribute__((warn_unused_result));
/* NULL-safe. */
void catalog_free(struct catalog *c);

/* Read the ref list now.  0, or DMFS_ERR_* with the reason in msg (the
 * list known before is kept). */
int catalog_refresh(struct catalog *c, char *msg, size_t msgsz)
    __attribute__((warn_unused_result));

/*
 * The manifest (hex) and creation time of a ref ("snapshots/ID",
 * "datasets/NAME/VERSION"); either out may be NULL.  DMFS_ERR_NOT_FOUND
 * when there is no such ref.
 */
int catalog_lookup(struct catalog *c, const char *name, char manifest[65],
		   int64_t *created) __attribute__((warn_unused_result));

/*
 * Call cb once per child of a catalog directory: "snapshots" (snapshot
 * ids), "datasets" (dataset names) or "datasets/NAME" (its versions), in
 * byte order of name.  created is the ref's creation time; for a dataset
 * name, its newest version's.  name is borrowed for the call.  cb returns
 * 0 to go on or nonzero to stop (that value is returned).
 * DMFS_ERR_NOT_FOUND for a dataset without versions or another name.
 * "snapshots" and "datasets" always exist (maybe empty).
 */
typedef int (*catalog_child_cb)(void *ctx, const char *name, int64_t created);
int catalog_children(struct catalog *c, const char *dir, catalog_child_cb cb,
		     void *ctx);

/*
 * The newest child of a catalog directory (as for catalog_children; the
 * newest by creation time, the greater name among equals): its name into
 * name (the last component, e.g. "v1.1") and its creation time (may be
 * NULL).  DMFS_ERR_NOT_FOUND when the directory has none.
 */
int catalog_latest(struct catalog *c, const char *dir, char *name,
		   size_t namesz, int64_t *created)
    __attribute__((warn_unused_result));

/*
 * Make sure the manifest with this hash is indexed: fetched to the
 * manifest cache and indexed (mindex_add), once.  0, or DMFS_ERR_* with
 * the reason in msg (DMFS_ERR_NOT_FOUND: the store has no such manifest).
 */
int catalog_ensure_indexed(struct catalog *c, const char *hash_hex, char *msg,
			   size_t msgsz) __attribute__((warn_unused_result));

/* The text of .dmfs/log for the refs known now (refreshed first when
 * stale).  Caller frees with free(); NULL on ENOMEM. */
char *catalog_log_text(struct catalog *c);

/*
 * A ref list (newest first, as refs_list gives it) as the log text: one
 * line per ref - name, creation time (UTC), author, kind (copy or
 * zero-copy), files, bytes, message - shared by `dmfs log` and
 * .dmfs/log.  Caller frees with free(); NULL on ENOMEM.
 */
char *catalog_format_log(const struct ref_info *refs, size_t n);
/* The same as a JSON array of objects: "ref", "manifest" and the manifest
 * header's fields.  Caller frees with free(); NULL on ENOMEM. */
char *catalog_format_log_json(const struct ref_info *refs, size_t n);

#endif
