/*
 * store.h - the one interface every backend implements.
 *
 * A store is a flat namespace of keys (relative to the store root: for
 * s3://bucket/prefix the prefix is already stripped) with the operations a
 * read-only filesystem needs: list with a delimiter and pagination, head, and
 * ranged get.  put/delete/copy come with writing.
 *
 * Implementations: store_s3.c (S3 over HTTP) and store_file.c (a local
 * directory laid out as a bucket would be).  All operations are safe to
 * call from many threads at once.
 */
#ifndef DMFS_STORE_H
#define DMFS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmfs/err.h"

#define DMFS_ETAG_MAX 80

struct dmfs_obj_info {
	char *key;		   /* owned by the struct; relative to root */
	uint64_t size;
	int64_t mtime;		   /* seconds since the epoch */
	char etag[DMFS_ETAG_MAX];  /* without surrounding quotes */
};

/* One page of a listing.  Everything in it is owned by the page. */
struct dmfs_list_page {
	struct dmfs_obj_info *objs;
	size_t nobjs;
	char **prefixes;	/* common prefixes, each ending in the delimiter */
	size_t nprefixes;
	char *next_token;	/* NULL when the listing is complete */
	bool truncated;
};

struct dmfs_store;

struct dmfs_store_ops {
	const char *scheme; /* "s3", "file" */
	/*
	 * List keys starting with `prefix`; with a delimiter, keys that have
	 * it after the prefix are rolled up into prefixes.  `token` is NULL
	 * for the first page, else the previous page's next_token.  Fills
	 * `out` (caller frees with dmfs_list_page_free).
	 */
	int (*list)(struct dmfs_store *st, const char *prefix,
		    const char *delimiter, const char *token, size_t max_keys,
		    struct dmfs_list_page *out, struct dmfs_err_detail *d);
	/* Attributes of one key.  `out->key` is set (caller frees with
	 * dmfs_obj_info_clear). */
	int (*head)(struct dmfs_store *st, const char *key,
		    struct dmfs_obj_info *out, struct dmfs_err_detail *d);
	/*
	 * Read `len` bytes at `off` into `buf` (caller-owned, >= len bytes).
	 * When `if_match` is not NULL the read fails with DMFS_ERR_CHANGED if
	 * the object no longer has that ETag.  `*got` is the number of bytes
	 * stored (short only at end of object).  Error bodies never reach buf.
	 */
	int (*get_range)(struct dmfs_store *st, const char *key,
			 const char *if_match, uint64_t off, size_t len,
			 void *buf, size_t *got, struct dmfs_err_detail *d);
	/* A URI naming the key, for xattrs ("s3://bucket/prefix/key").
	 * Caller frees with free(). NULL on allocation failure. */
	char *(*uri)(struct dmfs_store *st, const char *key);
	/* Free the store and everything it owns. */
	void (*destroy)(struct dmfs_store *st);
};

struct dmfs_store {
	const struct dmfs_store_ops *ops;
};

/* Free what a page owns and zero it.  Cannot fail; NULL-safe. */
void dmfs_list_page_free(struct dmfs_list_page *p);
/* Free the key an info owns and zero it.  Cannot fail; NULL-safe. */
void dmfs_obj_info_clear(struct dmfs_obj_info *o);

#endif
