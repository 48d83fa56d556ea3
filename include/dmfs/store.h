/*
 * store.h - the one interface every backend implements.
 *
 * A store is a flat namespace of keys (relative to the store root: for
 * s3://bucket/prefix the prefix is already stripped) with the operations a
 * read-only filesystem needs: list with a delimiter and pagination, head, and
 * ranged get; and what snapshots and versions need: streaming get, put
 * (optionally conditional), server-side copy, delete, and the object
 * versions of a versioned bucket.
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

/*
 * POSIX attributes kept in object metadata the way s3fs keeps them:
 * x-amz-meta-mode (decimal st_mode, file type bits included),
 * x-amz-meta-uid, x-amz-meta-gid and x-amz-meta-mtime (decimal seconds
 * since the epoch).  `have` says which were present or are to be set.
 */
#define DMFS_ATTR_MODE 1u
#define DMFS_ATTR_UID 2u
#define DMFS_ATTR_GID 4u
#define DMFS_ATTR_MTIME 8u
struct dmfs_attrs {
	unsigned have;	/* DMFS_ATTR_* */
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	int64_t mtime;
};

/* Most bytes of other user metadata one object may carry ("name:value\n"
 * lines; S3 itself allows 2 KiB) and most entries. */
#define DMFS_USER_META_MAX 4096
#define DMFS_USER_META_ENTRIES 16

struct dmfs_obj_info {
	char *key;		   /* owned by the struct; relative to root */
	uint64_t size;
	int64_t mtime;		   /* seconds since the epoch */
	char etag[DMFS_ETAG_MAX];  /* without surrounding quotes */
	char sha256[65];	   /* hex content hash from the object's
				      metadata (x-amz-meta-dmfs-sha256) when
				      a HEAD or GET saw it; "" otherwise */
	char *version_id;	   /* owned; S3 version id when known */
	struct dmfs_attrs attrs;   /* head, get_stream: from metadata */
	char content_type[128];	   /* head: the Content-Type, "" unknown */
	char *user_meta;	   /* owned; head: the other x-amz-meta-*
				      entries as "name:value\n" lines (name
				      without the prefix, lower case), NULL
				      when none */
	bool user_meta_lost;	   /* head: some entries did not fit in
				      DMFS_USER_META_MAX/_ENTRIES, so a
				      metadata rewrite would drop them */
	bool is_latest;		   /* list_versions only */
	bool is_delete_marker;	   /* list_versions only */
};

/*
 * Which bytes a read must return.  if_match: fail with DMFS_ERR_CHANGED
 * when the object no longer has this ETag.  version_id: read this object
 * version (a versioned bucket).  Either may be NULL or "".
 */
struct dmfs_pin {
	const char *if_match;
	const char *version_id;
	uint64_t size_hint; /* copy only: the source's size when the caller
			       knows it (from a HEAD or a listing), 0 when
			       not; spares the store a HEAD to choose between
			       a single and a multipart copy */
};

/*
 * A streaming body consumer.  data(ctx, p, n) gets the body in order and
 * returns 0 to go on or DMFS_ERR_* to abort; restart(ctx) is called before
 * a retried attempt, so the consumer starts over (may be NULL when data
 * can be re-received harmlessly, which it usually cannot).
 */
struct dmfs_sink {
	int (*data)(void *ctx, const void *p, size_t n);
	void (*restart)(void *ctx);
	void *ctx;
};

/* What to upload: a buffer (fd < 0) or `len` bytes of a file from offset
 * 0 (fd >= 0; borrowed, read with pread). */
struct dmfs_put_src {
	const void *buf;
	int fd;
	uint64_t len;
	const char *sha256;	/* hex hash of the bytes when the caller
				   knows it (saves hashing them again to
				   sign the request); may be NULL */
};

struct dmfs_put_opts {
	bool if_none_match;	/* fail with DMFS_ERR_EXISTS if the key exists
				   (If-None-Match: *; exact where the server
				   honours it, see refs.c for the rest) */
	const char *sha256;	/* hex; stored as x-amz-meta-dmfs-sha256 */
	const char *content_type; /* NULL: application/octet-stream */
	const struct dmfs_attrs *attrs; /* may be NULL: x-amz-meta-mode,
					   -uid, -gid, -mtime */
	const char *user_meta;	/* may be NULL: more x-amz-meta-* entries,
				   as dmfs_obj_info.user_meta has them */
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
	/* As head, but only what a listing tells (key, size, mtime, etag),
	 * when that is cheaper to learn than head's metadata.  May be NULL:
	 * use head. */
	int (*head_listed)(struct dmfs_store *st, const char *key,
			   struct dmfs_obj_info *out,
			   struct dmfs_err_detail *d);
	/*
	 * Read `len` bytes at `off` into `buf` (caller-owned, >= len bytes).
	 * pin (may be NULL) names the bytes: with if_match the read fails
	 * with DMFS_ERR_CHANGED if the object no longer has that ETag; with
	 * version_id it reads that version.  `*got` is the number of bytes
	 * stored (short only at end of object).  Error bodies never reach buf.
	 */
	int (*get_range)(struct dmfs_store *st, const char *key,
			 const struct dmfs_pin *pin, uint64_t off, size_t len,
			 void *buf, size_t *got, struct dmfs_err_detail *d);
	/* A URI naming the key, for xattrs ("s3://bucket/prefix/key").
	 * Caller frees with free(). NULL on allocation failure. */
	char *(*uri)(struct dmfs_store *st, const char *key);
	/*
	 * Stream a whole object (pin as for get_range) into sink.  When info
	 * is not NULL it receives size, ETag, mtime, sha256 metadata and
	 * version id from the response (caller frees with
	 * dmfs_obj_info_clear).
	 */
	int (*get_stream)(struct dmfs_store *st, const char *key,
			  const struct dmfs_pin *pin, const struct dmfs_sink *sink,
			  struct dmfs_obj_info *info, struct dmfs_err_detail *d);
	/* Upload an object.  out (may be NULL) receives the new ETag and
	 * version id (caller frees with dmfs_obj_info_clear).  Returns
	 * DMFS_ERR_EXISTS when if_none_match and the key exists. */
	int (*put)(struct dmfs_store *st, const char *key,
		   const struct dmfs_put_src *src, const struct dmfs_put_opts *o,
		   struct dmfs_obj_info *out, struct dmfs_err_detail *d);
	/*
	 * Server-side copy of src_key (pinned by pin: the copy fails with
	 * DMFS_ERR_CHANGED when the source no longer has pin->if_match) to
	 * dst_key.  The metadata is replaced by what o (may be NULL) says:
	 * sha256, content_type, attrs and user_meta (if_none_match is not
	 * used).  src_key == dst_key changes an object's metadata alone.
	 * Sources too big for one copy request are copied in parts, each
	 * pinned to the source's ETag; the destination changes only when
	 * the whole copy succeeded (a check of the result after that which
	 * fails is an error with the new copy already in place).
	 */
	int (*copy)(struct dmfs_store *st, const char *src_key,
		    const struct dmfs_pin *pin, const char *dst_key,
		    const struct dmfs_put_opts *o, struct dmfs_err_detail *d);
	/* Delete a key (the latest version on a versioned bucket).  Deleting
	 * a missing key succeeds. */
	int (*del)(struct dmfs_store *st, const char *key,
		   struct dmfs_err_detail *d);
	/* Whether the bucket keeps object versions (1) or not (0). */
	int (*versioning)(struct dmfs_store *st, int *enabled,
			  struct dmfs_err_detail *d);
	/*
	 * One page of object versions under prefix (no delimiter), in key
	 * order, newest version first within a key; version_id,
	 * is_latest and is_delete_marker are set.  *token is NULL for the
	 * first page; on return it is the next page's token or NULL at the
	 * end (caller frees with free()).  DMFS_ERR_UNSUPPORTED where the
	 * store has no versions.
	 */
	int (*list_versions)(struct dmfs_store *st, const char *prefix,
			     char **token, struct dmfs_list_page *out,
			     struct dmfs_err_detail *d);
	/*
	 * Multipart upload; all four NULL where the store has none (then a
	 * single put is used whatever the size).  mp_create starts one,
	 * with the metadata o (may be NULL) names, as put; *upload_id: caller
	 * frees with free().  mp_part sends len bytes of fd (borrowed) from
	 * off as part part_no (1-based) and fills etag.  mp_complete joins
	 * parts 1..n (their ETags in order); only then does the key change.
	 * mp_abort drops the parts.
	 */
	int (*mp_create)(struct dmfs_store *st, const char *key,
			 const struct dmfs_put_opts *o, char **upload_id,
			 struct dmfs_err_detail *d);
	int (*mp_part)(struct dmfs_store *st, const char *key,
		       const char *upload_id, uint32_t part_no, int fd,
		       uint64_t off, uint64_t len, char etag[DMFS_ETAG_MAX],
		       struct dmfs_err_detail *d);
	int (*mp_complete)(struct dmfs_store *st, const char *key,
			   const char *upload_id,
			   const char (*etags)[DMFS_ETAG_MAX], uint32_t n,
			   struct dmfs_err_detail *d);
	int (*mp_abort)(struct dmfs_store *st, const char *key,
			const char *upload_id, struct dmfs_err_detail *d);
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

/*
 * Parse one s3fs attribute header value (x-amz-meta-mode, -uid, -gid,
 * -mtime; name without the prefix, lower case) into a.  s3fs writes
 * mtime as seconds, newer versions with a fraction: the fraction is
 * dropped.  0 when name is not one of them.  Cannot fail (a value that is
 * not a number is ignored).
 */
int dmfs_attrs_parse(struct dmfs_attrs *a, const char *name,
		     const char *value);
/* The decimal text of one attribute a has (bit: one DMFS_ATTR_*), into
 * out; its header name without "x-amz-meta-" into *name.  Cannot fail. */
void dmfs_attrs_format(const struct dmfs_attrs *a, unsigned bit,
		       const char **name, char out[24]);

/*
 * The options of a copy (or put) that keeps the metadata info has (its
 * sha256, Content-Type and other user metadata) and gives it the s3fs
 * attributes attrs (may be NULL).  The result borrows from info and
 * attrs: valid while they are.  Cannot fail.
 */
struct dmfs_put_opts dmfs_put_opts_keeping(const struct dmfs_obj_info *info,
					   const struct dmfs_attrs *attrs);

/*
 * Read a whole small object into memory (refs, saved queries).  Fails with
 * DMFS_ERR_TOO_BIG beyond max bytes.  *out is NUL-terminated; caller frees
 * with free().
 */
int dmfs_store_get_all(struct dmfs_store *st, const char *key, size_t max,
		       char **out, size_t *len, struct dmfs_err_detail *d)
	__attribute__((warn_unused_result));

/*
 * Download an object into fd (truncated first; written from offset 0),
 * computing its sha256 on the way (sha_hex may be NULL).  info as for
 * get_stream (may be NULL).
 */
int dmfs_store_get_to_fd(struct dmfs_store *st, const char *key,
			 const struct dmfs_pin *pin, int fd, char sha_hex[65],
			 struct dmfs_obj_info *info, struct dmfs_err_detail *d)
	__attribute__((warn_unused_result));

/*
 * Call cb for every object under prefix (one listing page at a time; with
 * delimiter "/" only those directly under it), in key order.  cb returns
 * nonzero to stop: that value is returned.  Otherwise 0 or the listing's
 * DMFS_ERR_* (d filled).
 */
int dmfs_store_list_each(struct dmfs_store *st, const char *prefix,
			 const char *delimiter,
			 int (*cb)(void *ctx, const struct dmfs_obj_info *o),
			 void *ctx, struct dmfs_err_detail *d)
	__attribute__((warn_unused_result));

/* sha256 of an object's bytes, read through get_stream.  info as there. */
int dmfs_store_hash(struct dmfs_store *st, const char *key,
		    const struct dmfs_pin *pin, char sha_hex[65],
		    struct dmfs_obj_info *info, struct dmfs_err_detail *d)
	__attribute__((warn_unused_result));

#endif
