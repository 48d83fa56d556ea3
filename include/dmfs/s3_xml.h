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
 * Parse an <Error> body into d->s3_code, d->message, d->request_id (each
 * truncated to its field).  Returns 0 or DMFS_ERR_PROTOCOL (d unchanged
 * then).  An empty body is DMFS_ERR_PROTOCOL.
 */
int s3_xml_parse_error(const char *xml, size_t len,
		       struct dmfs_err_detail *d);

/* ISO 8601 "2009-10-12T17:50:30.000Z" to epoch seconds; -1 if malformed. */
long long s3_xml_parse_time(const char *iso);

#endif
