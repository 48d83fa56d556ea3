/*
 * test_store_meta.c - object metadata as s3fs writes it: parsing and
 * formatting the attribute values, the headers a put or copy sends, and
 * what an answer's headers give back (the attributes apart, the rest kept
 * verbatim for a metadata rewrite).  Run under ASan: every path must free
 * what it built.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../src/store_s3_int.h"
#include "unit.h"

/* The value of header name among m's, or NULL. */
static const char *hdr(const struct s3_meta_hdrs *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->kv[i].name, name))
			return m->kv[i].value;
	return NULL;
}

static void test_parse(void)
{
	struct dmfs_attrs a = {0};
	char v[24];
	const char *name;

	CHECK(dmfs_attrs_parse(&a, "mode", "33188") == 1);
	CHECK(a.have == DMFS_ATTR_MODE && a.mode == (S_IFREG | 0644));
	CHECK(dmfs_attrs_parse(&a, "mtime", "1700000000.250") == 1);
	CHECK(a.mtime == 1700000000 && (a.have & DMFS_ATTR_MTIME));
	CHECK(dmfs_attrs_parse(&a, "uid", "12x") == 1); /* ignored */
	CHECK(!(a.have & DMFS_ATTR_UID));
	CHECK(dmfs_attrs_parse(&a, "gid", "-1") == 1);
	CHECK(!(a.have & DMFS_ATTR_GID));
	CHECK(dmfs_attrs_parse(&a, "uid", "99999999999") == 1);
	CHECK(!(a.have & DMFS_ATTR_UID));
	CHECK(dmfs_attrs_parse(&a, "atime", "5") == 0); /* not ours */
	CHECK(dmfs_attrs_parse(&a, "gid", "") == 1);
	CHECK(!(a.have & DMFS_ATTR_GID));
	dmfs_attrs_format(&a, DMFS_ATTR_MODE, &name, v);
	CHECK_STR(name, "mode");
	CHECK_STR(v, "33188");
	dmfs_attrs_format(&a, DMFS_ATTR_MTIME, &name, v);
	CHECK_STR(name, "mtime");
	CHECK_STR(v, "1700000000");
}

static void test_headers(void)
{
	struct dmfs_attrs a = {.have = DMFS_ATTR_MODE | DMFS_ATTR_UID,
			       .mode = S_IFLNK | 0777,
			       .uid = 1000};
	struct dmfs_put_opts o = {
	    .sha256 = "ab", .attrs = &a, .user_meta = "atime:5\nxattr:a:b\n"};
	struct s3_meta_hdrs m;

	CHECK(s3_meta_hdrs_build(&o, &m) == 0);
	CHECK(m.n == 5);
	CHECK_STR(hdr(&m, "x-amz-meta-dmfs-sha256"), "ab");
	CHECK_STR(hdr(&m, "x-amz-meta-mode"), "41471");
	CHECK_STR(hdr(&m, "x-amz-meta-uid"), "1000");
	CHECK(hdr(&m, "x-amz-meta-gid") == NULL);
	CHECK_STR(hdr(&m, "x-amz-meta-atime"), "5");
	CHECK_STR(hdr(&m, "x-amz-meta-xattr"), "a:b"); /* first ':' splits */
	s3_meta_hdrs_free(&m);

	CHECK(s3_meta_hdrs_build(NULL, &m) == 0 && m.n == 0);
	s3_meta_hdrs_free(&m);

	/* More entries than a request may sign: refused, not cut. */
	char many[2048] = "";
	for (int i = 0; i < DMFS_USER_META_ENTRIES + 1; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
			 "k%d:v\n", i);
	o.user_meta = many;
	CHECK(s3_meta_hdrs_build(&o, &m) == DMFS_ERR_TOO_BIG);
	s3_meta_hdrs_free(&m);
}

static void test_response(void)
{
	struct http_response r;
	struct dmfs_obj_info info = {0};

	memset(&r, 0, sizeof(r));
	snprintf(r.meta, sizeof(r.meta),
		 "mode:16877\nuid:0\natime:17\nmtime:1600000000\nctime:2\n");
	r.meta_len = strlen(r.meta);
	r.meta_n = 5;
	snprintf(r.content_type, sizeof(r.content_type),
		 "application/x-directory");
	CHECK(s3_meta_from_response(&r, &info) == 0);
	CHECK(info.attrs.have ==
	      (DMFS_ATTR_MODE | DMFS_ATTR_UID | DMFS_ATTR_MTIME));
	CHECK(S_ISDIR(info.attrs.mode) && (info.attrs.mode & 07777) == 0755);
	CHECK(info.attrs.mtime == 1600000000);
	CHECK_STR(info.user_meta, "atime:17\nctime:2\n");
	CHECK_STR(info.content_type, "application/x-directory");
	CHECK(!info.user_meta_lost);
	dmfs_obj_info_clear(&info);

	/* Nothing but the attributes: no other metadata. */
	memset(&r, 0, sizeof(r));
	snprintf(r.meta, sizeof(r.meta), "gid:5\n");
	r.meta_len = strlen(r.meta);
	CHECK(s3_meta_from_response(&r, &info) == 0);
	CHECK(info.user_meta == NULL && info.attrs.gid == 5);
	dmfs_obj_info_clear(&info);

	/* Too many others: flagged, so a rewrite is refused. */
	memset(&r, 0, sizeof(r));
	for (int i = 0; i < DMFS_USER_META_ENTRIES + 1; i++)
		r.meta_len +=
		    (size_t)snprintf(r.meta + r.meta_len,
				     sizeof(r.meta) - r.meta_len, "k%d:v\n", i);
	CHECK(s3_meta_from_response(&r, &info) == 0);
	CHECK(info.user_meta_lost);
	dmfs_obj_info_clear(&info);
}

int main(void)
{
	test_parse();
	test_headers();
	test_response();
	return unit_done("test_store_meta");
}
