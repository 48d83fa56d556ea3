/*
 * store_s3_meta.c - object metadata on S3: which x-amz-meta-* headers a
 * put, copy or multipart create sends, and what a HEAD or GET answer
 * says about the s3fs attributes (mode, uid, gid, mtime) and the rest.
 *
 * A metadata rewrite (chmod on a closed file) is a copy with the REPLACE
 * directive, which drops every header not sent again: so the other user
 * metadata a HEAD saw travels back in dmfs_put_opts.user_meta verbatim.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_s3_int.h"

#define META_PREFIX "x-amz-meta-"

static const unsigned attr_bits[] = {DMFS_ATTR_MODE, DMFS_ATTR_UID,
				     DMFS_ATTR_GID, DMFS_ATTR_MTIME};
static const char *const attr_hdr[] = {META_PREFIX "mode", META_PREFIX "uid",
				       META_PREFIX "gid", META_PREFIX "mtime"};

int s3_meta_hdrs_build(const struct dmfs_put_opts *o, struct s3_meta_hdrs *m)
{
	memset(m, 0, sizeof(*m));
	if (!o)
		return 0;
	if (o->sha256 && o->sha256[0])
		m->kv[m->n++] =
		    (struct sigv4_kv){META_PREFIX "dmfs-sha256", o->sha256};
	for (size_t i = 0; o->attrs && i < 4; i++) {
		const char *name;
		if (!(o->attrs->have & attr_bits[i]))
			continue;
		dmfs_attrs_format(o->attrs, attr_bits[i], &name, m->vals[i]);
		m->kv[m->n++] = (struct sigv4_kv){attr_hdr[i], m->vals[i]};
	}
	if (!o->user_meta || !*o->user_meta)
		return 0;
	/* "name:value\n..." becomes "x-amz-meta-name\0value\0...". */
	size_t len = strlen(o->user_meta);
	size_t cap = len + (DMFS_USER_META_ENTRIES + 1) * sizeof(META_PREFIX);
	m->buf = malloc(cap);
	if (!m->buf)
		return DMFS_ERR_NOMEM;
	char *w = m->buf;
	const char *p = o->user_meta;
	int nuser = 0;
	while (*p) {
		const char *nl = strchr(p, '\n');
		const char *end = nl ? nl : p + strlen(p);
		const char *colon = memchr(p, ':', (size_t)(end - p));
		if (colon && colon > p) {
			if (++nuser > DMFS_USER_META_ENTRIES ||
			    (size_t)(w - m->buf) + sizeof(META_PREFIX) +
				    (size_t)(end - p) + 1 >
				cap)
				return DMFS_ERR_TOO_BIG;
			const char *name = w;
			w += sprintf(w, META_PREFIX "%.*s", (int)(colon - p),
				     p) +
			     1;
			const char *val = w;
			w += sprintf(w, "%.*s", (int)(end - colon - 1),
				     colon + 1) +
			     1;
			m->kv[m->n++] = (struct sigv4_kv){name, val};
		}
		p = nl ? nl + 1 : end;
	}
	return 0;
}

void s3_meta_hdrs_free(struct s3_meta_hdrs *m)
{
	free(m->buf);
	memset(m, 0, sizeof(*m));
}

int s3_meta_from_response(const struct http_response *resp,
			  struct dmfs_obj_info *out)
{
	char other[HTTP_META_MAX];
	size_t olen = 0;
	int nother = 0;
	const char *p = resp->meta;

	memset(&out->attrs, 0, sizeof(out->attrs));
	snprintf(out->content_type, sizeof(out->content_type), "%s",
		 resp->content_type);
	out->user_meta_lost = resp->meta_lost != 0;
	while (p < resp->meta + resp->meta_len) {
		const char *nl = strchr(p, '\n');
		const char *colon = memchr(p, ':', (size_t)(nl - p));
		char name[64];
		size_t n = (size_t)(colon - p);
		int known = 0;
		if (n < sizeof(name)) {
			memcpy(name, p, n);
			name[n] = '\0';
			char val[64];
			snprintf(val, sizeof(val), "%.*s",
				 (int)(nl - colon - 1), colon + 1);
			known = dmfs_attrs_parse(&out->attrs, name, val);
		}
		if (!known && ++nother > DMFS_USER_META_ENTRIES)
			out->user_meta_lost = true;
		else if (!known) {
			memcpy(other + olen, p, (size_t)(nl - p) + 1);
			olen += (size_t)(nl - p) + 1;
		}
		p = nl + 1;
	}
	free(out->user_meta);
	out->user_meta = NULL;
	if (!olen)
		return 0;
	out->user_meta = strndup(other, olen);
	return out->user_meta ? 0 : DMFS_ERR_NOMEM;
}
