/*
 * capture.h - creating snapshots and dataset versions.
 *
 * A capture walks a source tree (the live bucket under a prefix, or an
 * existing snapshot or version), makes sure every file's content is in the
 * content-addressed store (.dmfs/objects/sha256/…: hashed once per (key,
 * ETag) thanks to the memo in mindex.h, moved there by server-side copy,
 * never uploaded twice), writes the manifest, uploads it, and creates the
 * ref.  On a versioned bucket a snapshot can instead pin each object's
 * version id (zero-copy).  Used by the dmfs commands and by .dmfs/ctl.
 */
#ifndef DMFS_CAPTURE_H
#define DMFS_CAPTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "dmfs/manifest.h"
#include "dmfs/mindex.h"
#include "dmfs/progress.h"
#include "dmfs/refs.h"
#include "dmfs/store.h"

/* Where running captures leave a lease for gc to see. */
#define CAPTURE_LEASES_PREFIX ".dmfs/leases/"
/* A lease older than this is a crashed capture's, and ignored. */
#define CAPTURE_LEASE_TTL (24 * 3600)

struct meta;

struct capture_req {
	const char *kind;	/* "snapshot" or "dataset" */
	const char *name;	/* snapshot id (NULL: UTC now,
				   YYYYMMDDTHHMMSSZ) or dataset name */
	const char *version;	/* dataset version */
	const char *from;	/* "live[/SUB]", "snapshots/ID[/SUB]",
				   "datasets/NAME/VERSION[/SUB]" */
	const char *message;	/* may be NULL */
	const char *author;	/* NULL: user@host */
	int zero_copy;		/* -1 auto (snapshots of live on a versioned
				   bucket), 0 never, 1 required */
	int64_t created;	/* 0: now */
	int parallel;		/* worker threads; 0: 16 */
	struct progress *progress; /* may be NULL */
	/* Keep only the entries filter says match (dmfs commit
	 * --from-query): 0 with *keep set, or DMFS_ERR_* with msg, which
	 * fails the capture.  NULL: every entry. */
	int (*filter)(void *ctx, const struct manifest_entry *e, bool *keep,
		      char *msg, size_t msgsz);
	void *filter_ctx;
};

struct capture_result {
	char ref[REF_NAME_MAX];
	char manifest[65];
	bool zero_copy;
	uint64_t files, bytes;	     /* in the new version */
	uint64_t hashed_bytes;	     /* read to compute hashes */
	uint64_t copied_objects;     /* new content objects (server-side copy) */
	uint64_t copied_bytes;
	uint64_t reused_objects;     /* already stored */
};

/* The environment a capture (and diff, fsck, gc) runs in.  Borrowed. */
struct capture_env {
	struct dmfs_store *st;
	const char *store_uri;	/* memo key: "s3://bucket/prefix" */
	struct mindex *mx;	/* hash memo and manifest index */
	const char *cache_dir;	/* manifests are kept under it */
	struct meta *meta;	/* live metadata frozen into versions (and
				   filled into live tree entries); NULL:
				   none */
};

/*
 * Capture rq->from as a new snapshot or dataset version.  0, or DMFS_ERR_*
 * with a human-readable reason in msg (DMFS_ERR_EXISTS: "version exists").
 */
int capture_run(const struct capture_env *env, const struct capture_req *rq,
		struct capture_result *res, char *msg, size_t msgsz)
	__attribute__((warn_unused_result));

#endif
