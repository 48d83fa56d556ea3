/*
 * dircache.h - directory listings of the live tree, cached with a TTL.
 *
 * A directory's listing (one ListObjectsV2 walk with delimiter '/') gives
 * the names, sizes, mtimes and ETags of everything in it, so `ls -l` costs
 * one listing and stat of a sibling costs nothing.  Directories come from
 * common prefixes and from s3fs-style "dir/" marker objects.
 *
 * Listings are immutable and reference-counted: a reader holds one while
 * it iterates, even if a refresh replaces it meanwhile.  When a refresh
 * fails because the store is unreachable, the stale listing keeps being
 * served (with a warning), so cached files stay readable with the server
 * down.
 */
#ifndef DMFS_DIRCACHE_H
#define DMFS_DIRCACHE_H

#include <stdint.h>

#include "dmfs/store.h"

struct dc_entry {
	char *name;	/* one path component */
	int is_dir;
	uint64_t size;
	int64_t mtime;
	char etag[DMFS_ETAG_MAX];
};

struct dc_listing {
	struct dc_entry *v; /* sorted by name (strcmp) */
	size_t n;
	/* private */
	int refs;
	double fetched_at;
};

struct dircache;

/* ttl in seconds.  hide_root_names: NULL-ended names hidden at the root
 * (dmfs's own ".dmfs").  Caller frees with dircache_free. */
int dircache_new(struct dmfs_store *st, double ttl,
		 const char *const *hide_root_names, struct dircache **out)
	__attribute__((warn_unused_result));
void dircache_free(struct dircache *dc);

/*
 * The listing of directory `dir` ("" for the root, else "a/b" without
 * slashes at either end).  On success *out holds a reference: release
 * it with dircache_release.  DMFS_ERR_NOT_FOUND if the directory does not
 * exist (no object under "dir/" and no marker).
 */
int dircache_list(struct dircache *dc, const char *dir,
		  struct dc_listing **out) __attribute__((warn_unused_result));
void dircache_release(struct dircache *dc, struct dc_listing *l);

/* Find a name in a listing.  Borrowed; valid while the listing is held. */
const struct dc_entry *dc_listing_find(const struct dc_listing *l,
				       const char *name);

/*
 * Attributes of `path` ("" root, else "a/b/c").  Copies the entry into out
 * (out->name is NULL).  DMFS_ERR_NOT_FOUND when absent.
 */
int dircache_stat(struct dircache *dc, const char *path, struct dc_entry *out)
	__attribute__((warn_unused_result));

/*
 * This mount changed `path` ("a/b/c"): put the entry (name NULL; the
 * name is taken from path) into its directory's cached listing, replacing
 * one of the same name, so it shows at once without a new LIST.  A
 * directory not cached is left alone (its next LIST sees the change).
 * 0 or DMFS_ERR_NOMEM.
 */
int dircache_upsert(struct dircache *dc, const char *path,
		    const struct dc_entry *e) __attribute__((warn_unused_result));
/* This mount removed `path`: drop it from its directory's cached listing;
 * when it was a directory, its own listing is forgotten too.  Cannot
 * fail (on allocation failure the directory is listed again). */
void dircache_remove(struct dircache *dc, const char *path);

/* Forget every listing (the "refresh" command, tests).  Cannot fail. */
void dircache_invalidate_all(struct dircache *dc);

#endif
