/*
 * store.c - helpers shared by every store backend.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "dmfs/store.h"

void dmfs_obj_info_clear(struct dmfs_obj_info *o)
{
	if (!o)
		return;
	free(o->key);
	free(o->version_id);
	free(o->user_meta);
	memset(o, 0, sizeof(*o));
}

static const struct {
	unsigned bit;
	const char *name;
} attr_names[] = {
	{DMFS_ATTR_MODE, "mode"},
	{DMFS_ATTR_UID, "uid"},
	{DMFS_ATTR_GID, "gid"},
	{DMFS_ATTR_MTIME, "mtime"},
};

int dmfs_attrs_parse(struct dmfs_attrs *a, const char *name,
		     const char *value)
{
	size_t i;
	char *end;

	for (i = 0; i < sizeof(attr_names) / sizeof(attr_names[0]); i++)
		if (!strcmp(name, attr_names[i].name))
			break;
	if (i == sizeof(attr_names) / sizeof(attr_names[0]))
		return 0;
	errno = 0;
	long long v = strtoll(value, &end, 10);
	/* "1700000000.123" from newer s3fs: the seconds are enough. */
	if (errno || end == value || (*end && *end != '.') || v < 0)
		return 1;
	switch (attr_names[i].bit) {
	case DMFS_ATTR_MODE:
		if (v > 0xffffffffLL)
			return 1;
		a->mode = (uint32_t)v;
		break;
	case DMFS_ATTR_UID:
		if (v > 0xffffffffLL)
			return 1;
		a->uid = (uint32_t)v;
		break;
	case DMFS_ATTR_GID:
		if (v > 0xffffffffLL)
			return 1;
		a->gid = (uint32_t)v;
		break;
	default:
		a->mtime = (int64_t)v;
	}
	a->have |= attr_names[i].bit;
	return 1;
}

void dmfs_attrs_format(const struct dmfs_attrs *a, unsigned bit,
		       const char **name, char out[24])
{
	long long v = 0;

	*name = "mtime";
	for (size_t i = 0; i < sizeof(attr_names) / sizeof(attr_names[0]); i++)
		if (attr_names[i].bit == bit)
			*name = attr_names[i].name;
	switch (bit) {
	case DMFS_ATTR_MODE: v = a->mode; break;
	case DMFS_ATTR_UID: v = a->uid; break;
	case DMFS_ATTR_GID: v = a->gid; break;
	default: v = a->mtime;
	}
	snprintf(out, 24, "%lld", v);
}

struct dmfs_put_opts dmfs_put_opts_keeping(const struct dmfs_obj_info *info,
					   const struct dmfs_attrs *attrs)
{
	struct dmfs_put_opts po = {
	    .sha256 = info->sha256[0] ? info->sha256 : NULL,
	    .content_type = info->content_type[0] ? info->content_type : NULL,
	    .attrs = attrs,
	    .user_meta = info->user_meta,
	};
	return po;
}

void dmfs_list_page_free(struct dmfs_list_page *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nobjs; i++) {
		free(p->objs[i].key);
		free(p->objs[i].version_id);
	}
	free(p->objs);
	for (size_t i = 0; i < p->nprefixes; i++)
		free(p->prefixes[i]);
	free(p->prefixes);
	free(p->next_token);
	memset(p, 0, sizeof(*p));
}

/* --- whole-object helpers over get_stream --- */

struct mem_sink {
	char *buf;
	size_t len, cap, max;
};

static int mem_data(void *ctx, const void *p, size_t n)
{
	struct mem_sink *m = ctx;
	if (n > m->max - m->len)
		return DMFS_ERR_TOO_BIG;
	if (m->len + n + 1 > m->cap) {
		size_t want = m->cap ? m->cap * 2 : 4096;
		while (want < m->len + n + 1)
			want *= 2;
		char *nb = realloc(m->buf, want);
		if (!nb)
			return DMFS_ERR_NOMEM;
		m->buf = nb;
		m->cap = want;
	}
	memcpy(m->buf + m->len, p, n);
	m->len += n;
	m->buf[m->len] = '\0';
	return 0;
}

static void mem_restart(void *ctx)
{
	((struct mem_sink *)ctx)->len = 0;
}

int dmfs_store_get_all(struct dmfs_store *st, const char *key, size_t max,
		       char **out, size_t *len, struct dmfs_err_detail *d)
{
	struct mem_sink m = {.max = max};
	struct dmfs_sink sink = {mem_data, mem_restart, &m};
	int rc = st->ops->get_stream(st, key, NULL, &sink, NULL, d);

	if (!rc && !m.buf)
		m.buf = calloc(1, 1); /* an empty object */
	if (!rc && !m.buf)
		rc = DMFS_ERR_NOMEM;
	if (rc) {
		free(m.buf);
		return rc;
	}
	*out = m.buf;
	*len = m.len;
	return 0;
}

/* Bytes to a file (optional) and through sha256. */
struct fd_sink {
	int fd;			/* -1: hash only */
	uint64_t off;
	EVP_MD_CTX *md;
	int failed;
};

static int fd_data(void *ctx, const void *p, size_t n)
{
	struct fd_sink *f = ctx;
	const char *c = p;
	size_t left = n;

	while (f->fd >= 0 && left) {
		ssize_t w = pwrite(f->fd, c, left, (off_t)f->off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno == ENOSPC ? DMFS_ERR_NOSPC : DMFS_ERR_IO;
		c += w;
		left -= (size_t)w;
		f->off += (uint64_t)w;
	}
	if (EVP_DigestUpdate(f->md, p, n) != 1)
		return DMFS_ERR_NOMEM;
	return 0;
}

static void fd_restart(void *ctx)
{
	struct fd_sink *f = ctx;
	f->off = 0;
	if (f->fd >= 0 && ftruncate(f->fd, 0) != 0)
		f->failed = 1;
	if (EVP_DigestInit_ex(f->md, EVP_sha256(), NULL) != 1)
		f->failed = 1;
}

static void hex_digest(EVP_MD_CTX *md, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;

	EVP_DigestFinal_ex(md, d, &dl);
	for (unsigned int i = 0; i < 32 && i < dl; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[64] = '\0';
}

static int stream_through(struct dmfs_store *st, const char *key,
			  const struct dmfs_pin *pin, int fd, char sha_hex[65],
			  struct dmfs_obj_info *info, struct dmfs_err_detail *d)
{
	struct fd_sink f = {.fd = fd, .md = EVP_MD_CTX_new()};
	struct dmfs_sink sink = {fd_data, fd_restart, &f};
	int rc;

	if (!f.md)
		return DMFS_ERR_NOMEM;
	fd_restart(&f);
	rc = f.failed ? DMFS_ERR_IO : 0;
	if (!rc)
		rc = st->ops->get_stream(st, key, pin, &sink, info, d);
	if (!rc && f.failed)
		rc = DMFS_ERR_IO;
	if (!rc && sha_hex)
		hex_digest(f.md, sha_hex);
	EVP_MD_CTX_free(f.md);
	return rc;
}

int dmfs_store_get_to_fd(struct dmfs_store *st, const char *key,
			 const struct dmfs_pin *pin, int fd, char sha_hex[65],
			 struct dmfs_obj_info *info, struct dmfs_err_detail *d)
{
	return stream_through(st, key, pin, fd, sha_hex, info, d);
}

int dmfs_store_hash(struct dmfs_store *st, const char *key,
		    const struct dmfs_pin *pin, char sha_hex[65],
		    struct dmfs_obj_info *info, struct dmfs_err_detail *d)
{
	return stream_through(st, key, pin, -1, sha_hex, info, d);
}

int dmfs_store_list_each(struct dmfs_store *st, const char *prefix,
			 const char *delimiter,
			 int (*cb)(void *ctx, const struct dmfs_obj_info *o),
			 void *ctx, struct dmfs_err_detail *d)
{
	struct dmfs_list_page page = {0};
	char *token = NULL;
	int rc;

	do {
		rc = st->ops->list(st, prefix, delimiter, token, 1000, &page, d);
		free(token);
		token = NULL;
		for (size_t i = 0; !rc && i < page.nobjs; i++)
			rc = cb(ctx, &page.objs[i]);
		if (!rc && page.truncated && page.next_token) {
			token = page.next_token;
			page.next_token = NULL;
		}
		dmfs_list_page_free(&page);
	} while (!rc && token);
	free(token);
	return rc;
}
