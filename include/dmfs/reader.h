/*
 * reader.h - the read path of live objects: block cache first, then
 * parallel ranged GETs, with sequential read-ahead.
 *
 * An open file is pinned to the ETag and size it was opened with: every
 * GET carries If-Match, and cache keys name (key, ETag, size, block size),
 * so bytes of two versions of an object are never mixed.
 */
#ifndef DMFS_READER_H
#define DMFS_READER_H

#include <stddef.h>
#include <stdint.h>

#include "dmfs/bcache.h"
#include "dmfs/store.h"

#define READER_VID_MAX 256 /* longest version id */

struct reader_opts {
	size_t block_size;	 /* cache block size */
	int parallel;		 /* fetch threads */
	uint64_t readahead_max;	 /* largest read-ahead window */
	uint64_t small_file_max; /* fetched whole on first read */
	uint64_t fetch_max;	 /* largest single GET */
};

struct reader;
struct rd_file;

/* Start the fetch threads.  st and bc are borrowed and must outlive the
 * reader.  Caller frees with reader_free. */
int reader_new(struct dmfs_store *st, struct bcache *bc,
	       const struct reader_opts *o, struct reader **out)
	__attribute__((warn_unused_result));
void reader_free(struct reader *r);

/* Open an object for reading.  Caller frees with reader_close. */
int reader_open(struct reader *r, const char *key, const char *etag,
		uint64_t size, struct rd_file **out)
	__attribute__((warn_unused_result));
/*
 * Open immutable content: the object `key` (at `version_id` when not
 * NULL), whose bytes are named by content_id ("sha256:<hex>" for a
 * content object, "version:<key>@<id>" for a pinned version).  Blocks are
 * cached under content_id, so the same content opened through different
 * keys shares them.  No If-Match is sent.  Caller frees with reader_close.
 */
int reader_open_content(struct reader *r, const char *key,
			const char *version_id, const char *content_id,
			uint64_t size, struct rd_file **out)
	__attribute__((warn_unused_result));
void reader_close(struct rd_file *f);

/*
 * Read up to len bytes at off into buf.  *got is short only at end of
 * file.  Returns 0 or DMFS_ERR_* (DMFS_ERR_CHANGED when the object was
 * replaced since open).
 */
int reader_read(struct rd_file *f, char *buf, size_t len, uint64_t off,
		size_t *got) __attribute__((warn_unused_result));

/* Bytes of this object (this ETag and size) held in the block cache. */
uint64_t reader_cached_bytes(struct reader *r, const char *key,
			     const char *etag, uint64_t size);

/* Bytes of content opened with reader_open_content held in the cache. */
uint64_t reader_content_cached_bytes(struct reader *r, const char *content_id,
				     uint64_t size);
/* Fetch every block of an object into the cache and wait (prefetch). */
int reader_prefetch_all(struct rd_file *f)
	__attribute__((warn_unused_result));

#endif
