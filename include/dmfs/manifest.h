/*
 * manifest.h - manifests: the immutable list of files a snapshot or a
 * dataset version holds.
 *
 * A manifest is JSON Lines: the first line is the header (who, when, what,
 * counts), every further line one file, sorted by path in byte order.  It
 * is stored in the bucket at .dmfs/manifests/sha256/<hash of the file> and
 * never changes.  It is written and read as a stream, never held whole in
 * memory: the writer spools entries to a temporary file (the header, which
 * carries the totals, is known only at the end), the reader parses one
 * line at a time.
 *
 * Header line (format 1):
 *   {"dmfs_manifest":1,"kind":"snapshot"|"dataset","name":"ID or NAME",
 *    "version":"V" (datasets),"created":UNIX,"created_iso":"…Z",
 *    "author":"user@host","message":"…","parent":"<manifest hash>"|null,
 *    "source":"live/…","mode":"copy"|"zero-copy","files":N,"bytes":B,
 *    "dirs":{"<top-level dir>":{"files":n,"bytes":b},…}}
 *   Files at the root are counted under the name "." in "dirs".
 * Entry line:
 *   {"path":"a/b.txt","size":N,"mode":420,"mtime":UNIX,
 *    "sha256":"<hex>"            content in .dmfs/objects/sha256/…, or
 *    "key":"a/b.txt","version_id":"…"   a zero-copy pin of a live object,
 *    "etag":"…" (of the source object, may be absent),
 *    "meta":{…} (the file's metadata at capture time, may be absent)}
 */
#ifndef DMFS_MANIFEST_H
#define DMFS_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dmfs/store.h"

#define MANIFEST_FORMAT 1
#define MANIFEST_LINE_MAX (1u << 20) /* longest line a reader accepts */
#define MANIFEST_PATH_MAX 1024	     /* S3 keys are at most 1024 bytes */
/* Per-directory totals in a header: at most this many top-level
 * directories (or this many bytes of their names), the first ones in path
 * order; the files of any further directory are counted under
 * MANIFEST_DIRS_OTHER, a name no directory can have. */
#define MANIFEST_DIRS_MAX 1000
#define MANIFEST_DIRS_BYTES (64u * 1024)
#define MANIFEST_DIRS_OTHER "/other"

/* One file of a manifest.  Strings are owned by the entry (free with
 * manifest_entry_clear) when filled by the reader; when passed to the
 * writer they are borrowed for the call. */
struct manifest_entry {
	char *path;		/* relative, no leading '/' */
	uint64_t size;
	uint32_t mode;		/* permission bits, e.g. 0644 */
	int64_t mtime;		/* seconds since the epoch */
	char sha256[65];	/* hex, "" for a zero-copy pin */
	char etag[DMFS_ETAG_MAX]; /* of the source object, "" unknown */
	char *key;		/* zero-copy: the live key; else NULL */
	char *version_id;	/* zero-copy: its version id; else NULL */
	char *meta_json;	/* a JSON object text, or NULL */
};

struct manifest_dirstat {
	char *name;		/* top-level directory, "." for root files */
	uint64_t files;
	uint64_t bytes;
};

/* The header.  Strings owned by the struct (free with
 * manifest_header_clear); any may be NULL except kind and name. */
struct manifest_header {
	int format;
	char *kind;		/* "snapshot" or "dataset" */
	char *name;		/* snapshot id or dataset name */
	char *version;		/* dataset version; NULL for snapshots */
	int64_t created;	/* seconds since the epoch */
	int64_t created_us;	/* the same in microseconds, to order
				   versions made within one second; 0 in
				   manifests that lack it */
	char *author;
	char *message;
	char *parent;		/* manifest hash hex of the parent, or NULL */
	char *source;		/* what was captured: "live/x", "datasets/a/v1" */
	bool zero_copy;		/* entries pin version ids */
	uint64_t files;
	uint64_t bytes;
	struct manifest_dirstat *dirs;
	size_t ndirs;
};

/* The order of creation: created_us, or created in microseconds.
 * Newest first everywhere (log, latest, parent) compares this. */
int64_t manifest_header_order(const struct manifest_header *h);

void manifest_entry_clear(struct manifest_entry *e);
void manifest_header_clear(struct manifest_header *h);

/* The header as a cJSON object text (one line, no newline); the same text
 * is embedded in refs.  Caller frees with free(); NULL on ENOMEM. */
char *manifest_header_to_json(const struct manifest_header *h);
/* Parse a header object (a manifest's first line or a ref's "header").
 * Fills out (caller frees with manifest_header_clear).  DMFS_ERR_INVAL
 * with a reason in msg when it is not a valid header. */
int manifest_header_from_json(const char *text, size_t len,
			      struct manifest_header *out, char *msg,
			      size_t msgsz) __attribute__((warn_unused_result));

/* One entry as a JSON object text (one line, no newline).  Caller frees
 * with free(); NULL on ENOMEM or when meta_json is not a JSON object. */
char *manifest_entry_to_json(const struct manifest_entry *e);
/* Parse one entry line.  Fills e (caller frees with manifest_entry_clear);
 * DMFS_ERR_INVAL with a reason in msg. */
int manifest_entry_from_json(const char *text, size_t len,
			     struct manifest_entry *e, char *msg, size_t msgsz)
	__attribute__((warn_unused_result));

/* --- writing --- */
struct manifest_writer;

/*
 * Start a manifest; entries are spooled to a temporary file in tmpdir
 * (NULL: $TMPDIR or /tmp), unlinked at once.  Caller frees with
 * manifest_writer_finish or manifest_writer_abort.
 */
int manifest_writer_open(const char *tmpdir, struct manifest_writer **out)
	__attribute__((warn_unused_result));
/* Add one entry; paths must strictly increase in byte order
 * (DMFS_ERR_INVAL otherwise).  Counts and per-directory totals are kept. */
int manifest_writer_add(struct manifest_writer *w,
			const struct manifest_entry *e)
	__attribute__((warn_unused_result));
/*
 * Write the final manifest to out_path: h (its files/bytes/dirs are
 * overwritten with the totals; h owns the new dirs array) followed by the
 * entries.  The file is fsynced; hash_hex receives its sha256.  Frees w
 * whatever the result.
 */
int manifest_writer_finish(struct manifest_writer *w,
			   struct manifest_header *h, const char *out_path,
			   char hash_hex[65]) __attribute__((warn_unused_result));
/* Drop a manifest being written.  NULL-safe. */
void manifest_writer_abort(struct manifest_writer *w);

/* --- reading --- */
struct manifest_reader;

/*
 * Read a manifest file (a local copy).  The header is parsed at once
 * (DMFS_ERR_INVAL with a reason in msg when it is malformed).  Caller frees
 * with manifest_reader_close.
 */
int manifest_reader_open(const char *path, struct manifest_reader **out,
			 char *msg, size_t msgsz)
	__attribute__((warn_unused_result));
/* The header.  Borrowed; valid until manifest_reader_close. */
const struct manifest_header *
manifest_reader_header(const struct manifest_reader *r);
/*
 * The next entry: returns 1 with e filled (caller frees with
 * manifest_entry_clear), 0 at the end, or DMFS_ERR_INVAL (a malformed or
 * out-of-order line; msg says which line and why) / DMFS_ERR_IO.
 * Errors are returned negated (-DMFS_ERR_INVAL, -DMFS_ERR_IO,
 * -DMFS_ERR_NOMEM), so that none reads as 1 (DMFS_ERR_NOMEM is 1); after
 * one, every call returns it again.
 */
int manifest_reader_next(struct manifest_reader *r, struct manifest_entry *e,
			 char *msg, size_t msgsz)
	__attribute__((warn_unused_result));
void manifest_reader_close(struct manifest_reader *r);

/*
 * Make sure a verified local copy of the manifest is at
 * CACHE_DIR/manifests/<hex> (downloaded to a temporary file, checked
 * against its hash, renamed into place; concurrent fetchers are safe).
 * path receives the local path.  DMFS_ERR_NOT_FOUND when the store has no
 * such manifest, DMFS_ERR_CORRUPT when its bytes do not match the hash.
 */
int manifest_fetch(struct dmfs_store *st, const char *cache_dir,
		   const char *hash_hex, char *path, size_t pathsz,
		   struct dmfs_err_detail *d) __attribute__((warn_unused_result));

/* Key of the manifest with this hash in the store:
 * ".dmfs/manifests/sha256/<hex>".  Writes into out (>= 96 bytes). */
void manifest_store_key(const char *hash_hex, char *out, size_t outsz);
/* Key of a content object: ".dmfs/objects/sha256/<2 hex>/<62 hex>". */
void manifest_object_key(const char *hash_hex, char *out, size_t outsz);

#endif
