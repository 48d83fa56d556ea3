/*
 * s3_xml.h - parse the XML answers of S3 with expat.
 *
 * Keys may hold any character (entities, unicode, newlines): they are
 * decoded by the XML parser, never by string searching.
 */
#ifndef DMFS_S3_XML_H
#define DMFS_S3_XML_H

#include <stddef.h>

#include "dmfs/store.h"

/*
 * Parse a ListBucketResult (ListObjectsV2).  Keys and prefixes are returned
 * as S3 sent them (full keys, prefix not stripped).  LastModified is
 * converted to epoch seconds, ETag stripped of its quotes.  `out` is
 * overwritten; caller frees with dmfs_list_page_free.  Returns 0,
 * DMFS_ERR_PROTOCOL for malformed XML or a non-list document,
 * DMFS_ERR_NOMEM.
 */
int s3_xml_parse_list(const char *xml, size_t len, struct dmfs_list_page *out);

/*
 * Parse a ListVersionsResult (ListObjectVersions, no delimiter).  Every
 * <Version> and <DeleteMarker> becomes one entry of out->objs, in document
 * order: key (url-decoded when EncodingType is url), version_id (as sent;
 * "null" for an object written before versioning was enabled), is_latest,
 * is_delete_marker, mtime; size and etag (quotes stripped) for versions,
 * 0 and "" for delete markers.  out->next_token stays NULL.  `out` is
 * overwritten; caller frees with dmfs_list_page_free (version ids
 * included).
 * *next_key_marker (url-decoded like keys) and *next_vid_marker (as sent)
 * receive NextKeyMarker and NextVersionIdMarker of a truncated listing,
 * NULL when absent or when the listing is complete; caller frees each
 * with free().  Either pointer may be NULL when not wanted; both are set
 * to NULL on failure.  Version ids are bounded (1024 bytes) and may not
 * hold control characters.  Returns 0, DMFS_ERR_PROTOCOL (malformed XML,
 * another document, an entry without Key or VersionId, a truncated
 * listing without NextKeyMarker), DMFS_ERR_TOO_BIG, DMFS_ERR_NOMEM.
 */
int s3_xml_parse_versions(const char *xml, size_t len,
			  struct dmfs_list_page *out, char **next_key_marker,
			  char **next_vid_marker)
    __attribute__((warn_unused_result));

/*
 * Parse a VersioningConfiguration (GetBucketVersioning): *enabled is 1 for
 * <Status>Enabled</Status>, 0 for Suspended or no Status (a bucket never
 * versioned answers <VersioningConfiguration/>).  Returns 0, or
 * DMFS_ERR_PROTOCOL (malformed, another document, an unknown Status) with
 * *enabled unchanged.
 */
int s3_xml_parse_versioning(const char *xml, size_t len, int *enabled)
    __attribute__((warn_unused_result));

/*
 * Parse the body of a CopyObject answered with 200.  A <CopyObjectResult>
 * with an <ETag> writes the ETag, quotes stripped, into `etag` (caller-
 * owned, `etagsz` bytes) and returns 0.  S3 may answer 200 and still fail
 * the copy: an <Error> body fills d as s3_xml_parse_error does and returns
 * DMFS_ERR_SERVER (the S3 code in d->s3_code says more: InternalError,
 * SlowDown...).  Anything else is DMFS_ERR_PROTOCOL, an ETag of etagsz
 * bytes or more DMFS_ERR_TOO_BIG.  On failure `etag` is "".
 */
int s3_xml_parse_copy_result(const char *xml, size_t len, char *etag,
			     size_t etagsz, struct dmfs_err_detail *d)
    __attribute__((warn_unused_result));

/*
 * The body of an UploadPartCopy answered with 200: a <CopyPartResult>
 * with an <ETag>, as s3_xml_parse_copy_result reads a CopyObjectResult
 * (the same errors, and an <Error> body is DMFS_ERR_SERVER with d filled).
 */
int s3_xml_parse_copy_part(const char *xml, size_t len, char *etag,
			   size_t etagsz, struct dmfs_err_detail *d)
    __attribute__((warn_unused_result));

/*
 * InitiateMultipartUploadResult: its <UploadId> into id (idsz bytes).
 * DMFS_ERR_PROTOCOL when absent or too long.
 */
int s3_xml_parse_initiate(const char *xml, size_t len, char *id, size_t idsz)
    __attribute__((warn_unused_result));

/*
 * CompleteMultipartUploadResult: its <ETag> (quotes stripped).  As with a
 * copy, a failure can arrive after "200 OK" as an <Error> body: then
 * DMFS_ERR_SERVER with d filled.
 */
int s3_xml_parse_complete(const char *xml, size_t len, char *etag,
			  size_t etagsz, struct dmfs_err_detail *d)
    __attribute__((warn_unused_result));

/*
 * Parse an <Error> body into d->s3_code, d->message, d->request_id (each
 * truncated to its field).  Returns 0 or DMFS_ERR_PROTOCOL (d unchanged
 * then).  An empty body is DMFS_ERR_PROTOCOL.
 */
int s3_xml_parse_error(const char *xml, size_t len, struct dmfs_err_detail *d);

/* ISO 8601 "2009-10-12T17:50:30.000Z" to epoch seconds; -1 if malformed. */
long long s3_xml_parse_time(const char *iso);

#endif
