/*
 * store_s3_int.h - what store_s3.c (objects, listings) and store_s3_mp.c
 * (multipart uploads) share.  Internal.
 */
#ifndef DMFS_STORE_S3_INT_H
#define DMFS_STORE_S3_INT_H

#include "dmfs/http.h"
#include "dmfs/creds.h"
#include "dmfs/sigv4.h"
#include "dmfs/store.h"

#define LIST_BODY_MAX (16u << 20) /* a listing page is ~1000 keys */
#define EMPTY_SHA256                                                           \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3_store {
	struct dmfs_store base;
	struct http_pool *http;
	char *bucket;
	char *prefix;	  /* "" or "a/b/" (with the trailing '/') */
	char *scheme;	  /* "http" / "https" */
	char *host;	  /* host[:port] as sent in Host (with the bucket
			     in front when virtual-hosted) */
	char *region;
	int path_style;
	struct dmfs_creds creds; /* wiped in destroy */
	uint64_t copy_part_size; /* sources above this: multipart copy */
	int copy_parallel;	 /* parts of one copy in flight */
};

/* What a request needs to be signed again on each attempt. */
/* extra x-amz-* headers one request may sign: a copy's 3, the sha256,
 * 4 attributes and the other user metadata */
#define S3_AMZ_MAX (8 + DMFS_USER_META_ENTRIES)

struct s3_req {
	struct s3_store *s;
	const char *method;
	const char *path;	       /* raw, unencoded */
	const struct sigv4_kv *query;  /* raw */
	size_t nquery;
	const char *range;	       /* "bytes=a-b" or NULL */
	const char *if_match;	       /* ETag without quotes, or NULL */
	const char *payload_hash;      /* hex sha256 of the body; NULL:
					  the empty body's; or
					  S3_UNSIGNED_PAYLOAD */
	const struct sigv4_kv *amz;    /* more x-amz-* headers, signed */
	size_t namz;
	const struct sigv4_kv *plain;  /* more headers, not signed */
	size_t nplain;
};

/* The payload "hash" of a body not hashed for the signature (SigV4's
 * UNSIGNED-PAYLOAD): only over TLS, which protects the body already. */
#define S3_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

/* Whether bodies sent to s go unhashed: over https, where TLS guards
 * them, as AWS's SDKs do (hashing a multipart upload's parts for the
 * signature costs one more sha256 pass over every byte).  Over plain
 * http the signed hash is the only check that the server got the bytes
 * sent, so they are hashed. */
bool s3_unsigned_body(const struct s3_store *s);

/* One request: `key` names the object ("" for bucket-level requests such
 * as LIST); `label` is what the log shows.  Fills and frees nothing of r
 * but its s and path. */
int s3_perform(struct s3_store *s, const char *what, const char *key,
	       const char *label, struct s3_req *r, struct http_request *hr,
	       struct http_response *resp, struct dmfs_err_detail *d)
	__attribute__((warn_unused_result));

/*
 * The metadata headers of a put, copy or multipart create (store_s3_meta.c):
 * x-amz-meta-dmfs-sha256, the s3fs attributes and the other user metadata
 * of o (may be NULL).  kv[0..n) point into the struct and buf.
 */
struct s3_meta_hdrs {
	struct sigv4_kv kv[5 + DMFS_USER_META_ENTRIES];
	size_t n;
	char vals[4][24];
	char *buf; /* owned: names and values from o->user_meta */
};
/* DMFS_ERR_TOO_BIG when o->user_meta has more than
 * DMFS_USER_META_ENTRIES entries.  Free with s3_meta_hdrs_free, also on
 * error. */
int s3_meta_hdrs_build(const struct dmfs_put_opts *o, struct s3_meta_hdrs *m)
	__attribute__((warn_unused_result));
void s3_meta_hdrs_free(struct s3_meta_hdrs *m);
/* Attributes and other user metadata of an answer into out.  0 or
 * DMFS_ERR_NOMEM. */
int s3_meta_from_response(const struct http_response *resp,
			  struct dmfs_obj_info *out)
	__attribute__((warn_unused_result));

/* Prepend the store prefix.  Caller frees with free(). */
char *s3_full_key(struct s3_store *s, const char *key);

/* The x-amz-copy-source value of full key fk: "/bucket/key[?versionId=V]"
 * (the version of pin, may be NULL), encoded.  Caller frees with free();
 * NULL when out of memory. */
char *s3_copy_source(struct s3_store *s, const char *fk,
		     const struct dmfs_pin *pin);

/* HEAD of a key (relative to the prefix), pinned by pin (may be NULL:
 * then as the store's head).  Caller frees out with dmfs_obj_info_clear. */
int s3_head_pinned(struct s3_store *s, const char *key,
		   const struct dmfs_pin *pin, struct dmfs_obj_info *out,
		   struct dmfs_err_detail *d) __attribute__((warn_unused_result));

/*
 * The copy of a source of src_size bytes whose ETag is src_etag (the
 * source (src_key pinned by pin, may be NULL; src_label its full key)
 * as s3_copy_source built it: a multipart
 * upload of UploadPartCopy parts (store_s3_copy.c), with the metadata o
 * names (as a single copy with the REPLACE directive would set it).
 * Aborted on any failure, so dst_key keeps what it held.
 */
int s3_copy_multipart(struct s3_store *s, const char *src_key,
		      const struct dmfs_pin *pin, const char *src_label,
		      const char *source, const char *src_etag,
		      uint64_t src_size, const char *dst_key,
		      const struct dmfs_put_opts *o, struct dmfs_err_detail *d)
	__attribute__((warn_unused_result));

/* The multipart operations (store_s3_mp.c), for the ops table. */
int s3_mp_create(struct dmfs_store *st, const char *key,
		 const struct dmfs_put_opts *o, char **upload_id,
		 struct dmfs_err_detail *d);
int s3_mp_part(struct dmfs_store *st, const char *key, const char *upload_id,
	       uint32_t part_no, int fd, uint64_t off, uint64_t len,
	       char etag[DMFS_ETAG_MAX], struct dmfs_err_detail *d);
int s3_mp_complete(struct dmfs_store *st, const char *key,
		   const char *upload_id, const char (*etags)[DMFS_ETAG_MAX],
		   uint32_t n, struct dmfs_err_detail *d);
int s3_mp_abort(struct dmfs_store *st, const char *key,
		const char *upload_id, struct dmfs_err_detail *d);

#endif
