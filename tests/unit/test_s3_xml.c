/*
 * test_s3_xml.c - the XML parsers of S3 answers.
 *
 * The listings of examples 1, 3 and 4, the version listing, the
 * versioning states, the copy result and the NoSuchKey error are the
 * sample responses published by AWS (Amazon S3 API Reference,
 * ListObjectsV2, ListObjectVersions, GetBucketVersioning, CopyObject and
 * "Error responses").  The rest is what real keys look
 * like (entities, unicode, newlines, "+"), what hostile or broken servers
 * send, and every bound.  Run under ASan: every failure path must free
 * what it built.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmfs/err.h"
#include "dmfs/s3_xml.h"
#include "dmfs/store.h"
#include "unit.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"
#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

/* A growable string for the large documents; aborts on OOM (test only). */
struct sbuf {
	char *s;
	size_t len, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	if (b->len + (size_t)n + 1 > b->cap) {
		b->cap = (b->len + (size_t)n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		if (!b->s)
			abort();
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static int parse_list(const char *xml, struct dmfs_list_page *p)
{
	return s3_xml_parse_list(xml, strlen(xml), p);
}

/* A failed parse leaves an empty page behind, nothing to free. */
static int page_is_empty(const struct dmfs_list_page *p)
{
	return !p->objs && !p->nobjs && !p->prefixes && !p->nprefixes &&
	       !p->next_token && !p->truncated;
}

static void check_list_fails(const char *xml, int want, int line)
{
	struct dmfs_list_page p;
	int rc = parse_list(xml, &p);

	if (rc != want)
		fprintf(stderr, "  (case at line %d: rc %d, want %d)\n", line,
			rc, want);
	CHECK(rc == want);
	CHECK(page_is_empty(&p));
	dmfs_list_page_free(&p);
}

#define LIST_FAILS(xml, want) check_list_fails((xml), (want), __LINE__)

/* --- AWS published examples ---------------------------------------------- */

static void test_aws_example_listing(void)
{
	static const char xml[] = XML_DECL
	    "<ListBucketResult xmlns=\"" S3_NS "\">\n"
	    "    <Name>bucket</Name>\n"
	    "    <Prefix/>\n"
	    "    <KeyCount>205</KeyCount>\n"
	    "    <MaxKeys>1000</MaxKeys>\n"
	    "    <IsTruncated>false</IsTruncated>\n"
	    "    <Contents>\n"
	    "        <Key>my-image.jpg</Key>\n"
	    "        <LastModified>2009-10-12T17:50:30.000Z</LastModified>\n"
	    "        "
	    "<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag>\n"
	    "        <Size>434234</Size>\n"
	    "        <StorageClass>STANDARD</StorageClass>\n"
	    "    </Contents>\n"
	    "</ListBucketResult>\n";
	struct dmfs_list_page p;

	CHECK(parse_list(xml, &p) == 0);
	CHECK(p.nobjs == 1);
	CHECK(p.nprefixes == 0);
	CHECK(!p.truncated);
	CHECK(p.next_token == NULL);
	if (p.nobjs == 1) {
		CHECK_STR(p.objs[0].key, "my-image.jpg");
		CHECK(p.objs[0].size == 434234);
		CHECK(p.objs[0].mtime == 1255369830);
		CHECK_STR(p.objs[0].etag, "fba9dede5f27731c9771645a39863328");
	}
	dmfs_list_page_free(&p);
	CHECK(page_is_empty(&p));
}

/* Prefix and delimiter: the top-level <Prefix> is not a common prefix. */
static void test_aws_example_prefix_delimiter(void)
{
	static const char xml[] = XML_DECL
	    "<ListBucketResult xmlns=\"" S3_NS "\">\n"
	    "  <Name>example-bucket</Name>\n"
	    "  <Prefix>photos/2006/</Prefix>\n"
	    "  <KeyCount>3</KeyCount>\n"
	    "  <MaxKeys>1000</MaxKeys>\n"
	    "  <Delimiter>/</Delimiter>\n"
	    "  <IsTruncated>false</IsTruncated>\n"
	    "  <Contents>\n"
	    "    <Key>photos/2006/</Key>\n"
	    "    <LastModified>2016-04-30T23:51:29.000Z</LastModified>\n"
	    "    <ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag>\n"
	    "    <Size>0</Size>\n"
	    "    <StorageClass>STANDARD</StorageClass>\n"
	    "  </Contents>\n"
	    "\n"
	    "  <CommonPrefixes>\n"
	    "    <Prefix>photos/2006/February/</Prefix>\n"
	    "  </CommonPrefixes>\n"
	    "  <CommonPrefixes>\n"
	    "    <Prefix>photos/2006/January/</Prefix>\n"
	    "  </CommonPrefixes>\n"
	    "</ListBucketResult>\n";
	struct dmfs_list_page p;

	CHECK(parse_list(xml, &p) == 0);
	CHECK(p.nobjs == 1);
	if (p.nobjs == 1) {
		CHECK_STR(p.objs[0].key, "photos/2006/");
		CHECK(p.objs[0].size == 0);
		CHECK(p.objs[0].mtime == 1462060289);
		CHECK_STR(p.objs[0].etag, "d41d8cd98f00b204e9800998ecf8427e");
	}
	CHECK(p.nprefixes == 2);
	if (p.nprefixes == 2) {
		CHECK_STR(p.prefixes[0], "photos/2006/February/");
		CHECK_STR(p.prefixes[1], "photos/2006/January/");
	}
	dmfs_list_page_free(&p);
}

static void test_aws_example_continuation(void)
{
	static const char xml[] = XML_DECL
	    "<ListBucketResult xmlns=\"" S3_NS "\">\n"
	    "  <Name>bucket</Name>\n"
	    "  <Prefix></Prefix>\n"
	    "  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/"
	    "wm36Hy4vbOwM=</NextContinuationToken>\n"
	    "  <KeyCount>1000</KeyCount>\n"
	    "  <MaxKeys>1000</MaxKeys>\n"
	    "  <IsTruncated>true</IsTruncated>\n"
	    "  <Contents>\n"
	    "    <Key>happyface.jpg</Key>\n"
	    "    <LastModified>2014-11-21T19:40:05.000Z</LastModified>\n"
	    "    <ETag>&quot;70ee1738b6b21e2c8a43f3a5ab0eee71&quot;</ETag>\n"
	    "    <Size>11</Size>\n"
	    "    <StorageClass>STANDARD</StorageClass>\n"
	    "  </Contents>\n"
	    "</ListBucketResult>\n";
	struct dmfs_list_page p;

	CHECK(parse_list(xml, &p) == 0);
	CHECK(p.truncated);
	CHECK_STR(p.next_token,
		  "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	CHECK(p.nobjs == 1);
	if (p.nobjs == 1) {
		CHECK_STR(p.objs[0].key, "happyface.jpg");
		CHECK(p.objs[0].size == 11);
		CHECK(p.objs[0].mtime == 1416598805);
		CHECK_STR(p.objs[0].etag, "70ee1738b6b21e2c8a43f3a5ab0eee71");
	}
	dmfs_list_page_free(&p);
}

/* --- keys as users write them -------------------------------------------- */

static void test_keys_with_entities_and_unicode(void)
{
	/* Literal UTF-8 and character references must read the same. */
	static const char xml[] =
	    XML_DECL "<ListBucketResult xmlns=\"" S3_NS "\">"
		     "<IsTruncated>false</IsTruncated>"
		     "<Contents><Key>R&amp;D &lt;draft&gt; &quot;v2&quot; "
		     "&apos;x&apos;.txt</Key><Size>1</Size></Contents>"
		     "<Contents><Key>donn\xc3\xa9"
		     "es/\xc3\xa9t\xc3\xa9.txt</Key><Size>2</Size></Contents>"
		     "<Contents><Key>donn&#233;es/&#xE9;t&#xe9;.txt</Key>"
		     "<Size>3</Size></Contents>"
		     "<Contents><Key>line one&#10;line two</Key><Size>4</Size>"
		     "</Contents>"
		     "<Contents><Key>my file + more.txt</Key><Size>5</Size>"
		     "</Contents>"
		     "<Contents><Key>\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80"
		     "</Key><Size>6</Size></Contents>"
		     "<Contents><Key> leading and trailing </Key><Size>7</Size>"
		     "</Contents>"
		     "<Contents><Key><![CDATA[a<b>&c]]></Key><Size>8</Size>"
		     "</Contents>"
		     "</ListBucketResult>";
	struct dmfs_list_page p;

	CHECK(parse_list(xml, &p) == 0);
	CHECK(p.nobjs == 8);
	if (p.nobjs == 8) {
		CHECK_STR(p.objs[0].key, "R&D <draft> \"v2\" 'x'.txt");
		CHECK_STR(p.objs[1].key, "donn\xc3\xa9"
					 "es/\xc3\xa9t\xc3\xa9.txt");
		CHECK_STR(p.objs[2].key, "donn\xc3\xa9"
					 "es/\xc3\xa9t\xc3\xa9.txt");
		CHECK_STR(p.objs[3].key, "line one\nline two");
		CHECK_STR(p.objs[4].key, "my file + more.txt");
		CHECK_STR(p.objs[5].key,
			  "\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80");
		/* Keys are never trimmed: the blanks are part of them. */
		CHECK_STR(p.objs[6].key, " leading and trailing ");
		CHECK_STR(p.objs[7].key, "a<b>&c");
		for (size_t i = 0; i < 8; i++)
			CHECK(p.objs[i].size == i + 1);
	}
	dmfs_list_page_free(&p);
}

/* Compatible servers answer without a namespace, or with a prefix. */
static void test_namespaces(void)
{
	static const char none[] =
	    "<ListBucketResult><IsTruncated>false</IsTruncated>"
	    "<Contents><Key>a</Key><Size>1</Size>"
	    "<ETag>&#34;abc&#34;</ETag></Contents>"
	    "<CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes>"
	    "</ListBucketResult>";
	static const char prefixed[] =
	    "<s3:ListBucketResult xmlns:s3=\"" S3_NS "\">"
	    "<s3:IsTruncated>false</s3:IsTruncated>"
	    "<s3:Contents><s3:Key>a</s3:Key><s3:Size>1</s3:Size>"
	    "<s3:ETag>\"abc\"</s3:ETag></s3:Contents>"
	    "<s3:CommonPrefixes><s3:Prefix>d/</s3:Prefix>"
	    "</s3:CommonPrefixes></s3:ListBucketResult>";
	const char *docs[] = {none, prefixed};

	for (size_t i = 0; i < 2; i++) {
		struct dmfs_list_page p;

		CHECK(parse_list(docs[i], &p) == 0);
		CHECK(p.nobjs == 1 && p.nprefixes == 1);
		if (p.nobjs == 1 && p.nprefixes == 1) {
			CHECK_STR(p.objs[0].key, "a");
			CHECK_STR(p.objs[0].etag, "abc");
			CHECK(p.objs[0].size == 1);
			CHECK_STR(p.prefixes[0], "d/");
		}
		dmfs_list_page_free(&p);
	}
	/* An unbound prefix is not well-formed XML with namespaces. */
	LIST_FAILS("<s3:ListBucketResult></s3:ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
}

/*
 * Only elements at their place count: a <Key> under <Owner> or at the top,
 * a <Prefix> at the top or inside <Contents>, a <Contents> inside
 * <CommonPrefixes> are nobody's entries.
 */
static void test_nesting(void)
{
	static const char xml[] =
	    "<ListBucketResult xmlns=\"" S3_NS "\">"
	    "<Prefix>top/</Prefix>"
	    "<Key>not-a-key</Key>"
	    "<StartAfter>top/a</StartAfter>"
	    "<ContinuationToken>old-token</ContinuationToken>"
	    "<IsTruncated>false</IsTruncated>"
	    "<Contents><Key>top/real</Key>"
	    "<Owner><ID>owner-id</ID><Key>owner-key</Key>"
	    "<Size>999</Size></Owner>"
	    "<Prefix>not-a-prefix/</Prefix>"
	    "<RestoreStatus><Key>x</Key></RestoreStatus>"
	    "<Size>10</Size></Contents>"
	    "<CommonPrefixes><Prefix>top/dir/</Prefix>"
	    "<Contents><Key>not-an-object</Key></Contents>"
	    "</CommonPrefixes>"
	    "<Extra><Contents><Key>deep</Key></Contents>"
	    "<CommonPrefixes><Prefix>deep/</Prefix></CommonPrefixes>"
	    "</Extra>"
	    "</ListBucketResult>";
	struct dmfs_list_page p;

	CHECK(parse_list(xml, &p) == 0);
	CHECK(p.nobjs == 1);
	if (p.nobjs == 1) {
		CHECK_STR(p.objs[0].key, "top/real");
		CHECK(p.objs[0].size == 10);
	}
	CHECK(p.nprefixes == 1);
	if (p.nprefixes == 1)
		CHECK_STR(p.prefixes[0], "top/dir/");
	CHECK(p.next_token == NULL);
	dmfs_list_page_free(&p);
}

/*
 * Character data arrives in pieces: at every entity reference, and at the
 * boundaries of the pieces the body is fed in.  A document over 64 KiB of
 * keys made of entities crosses several.
 */
static void test_text_in_pieces(void)
{
	struct sbuf b = {0};
	struct dmfs_list_page p;
	int rc;
	enum { N = 3000 };

	sb_printf(&b,
		  XML_DECL "<ListBucketResult xmlns=\"%s\">"
			   "<IsTruncated>false</IsTruncated>",
		  S3_NS);
	for (int i = 0; i < N; i++)
		sb_printf(&b,
			  "<Contents><Key>dir&amp;%d/f&#105;le&lt;%d&gt;"
			  "&#233;t&#xE9; &quot;%0*d&quot;</Key>"
			  "<Size>%d</Size>"
			  "<LastModified>2009-10-12T17:50:30.%dZ</LastModified>"
			  "<ETag>&quot;e%d&quot;</ETag></Contents>",
			  i, i, i % 40, i, i, i % 1000, i);
	sb_printf(&b, "</ListBucketResult>");
	CHECK(b.len > 4 * 64 * 1024);

	rc = s3_xml_parse_list(b.s, b.len, &p);
	CHECK(rc == 0);
	CHECK(p.nobjs == N);
	if (p.nobjs == N) {
		int bad = 0;

		for (int i = 0; i < N; i++) {
			char want[256], etag[32];

			snprintf(want, sizeof(want),
				 "dir&%d/file<%d>\xc3\xa9t\xc3\xa9 \"%0*d\"", i,
				 i, i % 40, i);
			snprintf(etag, sizeof(etag), "e%d", i);
			if (strcmp(p.objs[i].key, want) != 0 ||
			    p.objs[i].size != (uint64_t)i ||
			    p.objs[i].mtime != 1255369830 ||
			    strcmp(p.objs[i].etag, etag) != 0) {
				if (!bad)
					fprintf(stderr, "  entry %d: %s\n", i,
						p.objs[i].key);
				bad++;
			}
		}
		CHECK(bad == 0);
	}
	dmfs_list_page_free(&p);
	free(b.s);
}

static void test_truncated_listing(void)
{
	static const char xml[] =
	    "<ListBucketResult>"
	    "<Contents><Key>a</Key><Size>1</Size></Contents>"
	    "<IsTruncated> true </IsTruncated>"
	    "<NextContinuationToken>tok+/=</NextContinuationToken>"
	    "</ListBucketResult>";
	struct dmfs_list_page p;

	CHECK(parse_list(xml, &p) == 0);
	CHECK(p.truncated);
	CHECK_STR(p.next_token, "tok+/=");
	dmfs_list_page_free(&p);

	/* Truncated but no token: nothing to continue from. */
	LIST_FAILS("<ListBucketResult><IsTruncated>true</IsTruncated>"
		   "<Contents><Key>a</Key></Contents></ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><IsTruncated>true</IsTruncated>"
		   "<NextContinuationToken/></ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><IsTruncated>yes</IsTruncated>"
		   "</ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><IsTruncated>false</IsTruncated>"
		   "<IsTruncated>true</IsTruncated></ListBucketResult>",
		   DMFS_ERR_PROTOCOL);

	/* A token on a complete listing means nothing: not handed out. */
	CHECK(parse_list("<ListBucketResult><IsTruncated>false</IsTruncated>"
			 "<NextContinuationToken>t</NextContinuationToken>"
			 "</ListBucketResult>",
			 &p) == 0);
	CHECK(!p.truncated && p.next_token == NULL);
	dmfs_list_page_free(&p);
}

static void test_empty_listing(void)
{
	static const char xml[] =
	    XML_DECL "<ListBucketResult xmlns=\"" S3_NS "\">"
		     "<Name>bucket</Name><Prefix>nothing/</Prefix>"
		     "<KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>"
		     "<Delimiter>/</Delimiter><IsTruncated>false</IsTruncated>"
		     "</ListBucketResult>";
	struct dmfs_list_page p;

	CHECK(parse_list(xml, &p) == 0);
	CHECK(p.nobjs == 0 && p.objs == NULL);
	CHECK(p.nprefixes == 0 && p.prefixes == NULL);
	CHECK(!p.truncated && p.next_token == NULL);
	dmfs_list_page_free(&p);

	CHECK(parse_list("<ListBucketResult/>", &p) == 0);
	CHECK(page_is_empty(&p));
	dmfs_list_page_free(&p);
}

/*
 * EncodingType=url: keys and common prefixes percent-encoded, "+" for a
 * space.  <EncodingType> may come after the keys; the token is left alone.
 */
static void test_url_encoding(void)
{
	static const char xml[] =
	    "<ListBucketResult xmlns=\"" S3_NS "\">"
	    "<Prefix>d%C3%A9j%C3%A0%2F</Prefix>"
	    "<IsTruncated>true</IsTruncated>"
	    "<NextContinuationToken>a%2Bb+c</NextContinuationToken>"
	    "<Contents><Key>my+file%2B1.txt</Key><Size>1</Size></Contents>"
	    "<Contents><Key>d%C3%A9j%C3%A0/%C3%A9t%C3%A9</Key>"
	    "<Size>2</Size></Contents>"
	    "<Contents><Key>ctl%01%0A%0d%7f</Key><Size>3</Size></Contents>"
	    "<Contents><Key>100%25 &amp; more</Key><Size>4</Size>"
	    "</Contents>"
	    "<CommonPrefixes><Prefix>sub+dir%2F</Prefix></CommonPrefixes>"
	    "<EncodingType>url</EncodingType>"
	    "</ListBucketResult>";
	struct dmfs_list_page p;

	CHECK(parse_list(xml, &p) == 0);
	CHECK(p.nobjs == 4 && p.nprefixes == 1);
	if (p.nobjs == 4 && p.nprefixes == 1) {
		CHECK_STR(p.objs[0].key, "my file+1.txt");
		CHECK_STR(p.objs[1].key,
			  "d\xc3\xa9j\xc3\xa0/\xc3\xa9t\xc3\xa9");
		CHECK_STR(p.objs[2].key, "ctl\x01\n\r\x7f");
		CHECK_STR(p.objs[3].key, "100% & more");
		CHECK_STR(p.prefixes[0], "sub dir/");
	}
	CHECK_STR(p.next_token, "a%2Bb+c");
	dmfs_list_page_free(&p);

	/* Without EncodingType the same text is taken literally. */
	CHECK(parse_list("<ListBucketResult><Contents><Key>my+file%2B1.txt"
			 "</Key></Contents></ListBucketResult>",
			 &p) == 0);
	if (p.nobjs == 1)
		CHECK_STR(p.objs[0].key, "my+file%2B1.txt");
	dmfs_list_page_free(&p);

	/* Broken escapes, a NUL byte, an encoding nobody knows. */
	LIST_FAILS("<ListBucketResult><EncodingType>url</EncodingType>"
		   "<Contents><Key>bad%G1</Key></Contents></ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><EncodingType>url</EncodingType>"
		   "<Contents><Key>bad%4</Key></Contents></ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><EncodingType>url</EncodingType>"
		   "<Contents><Key>nul%00</Key></Contents></ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><CommonPrefixes><Prefix>p%</Prefix>"
		   "</CommonPrefixes><EncodingType>url</EncodingType>"
		   "</ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><EncodingType>base64</EncodingType>"
		   "<Contents><Key>a</Key></Contents></ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
}

/* --- bounds -------------------------------------------------------------- */

static char *key_doc(const char *unit, size_t count, int url)
{
	struct sbuf b = {0};

	sb_printf(&b, "<ListBucketResult>%s<Contents><Key>",
		  url ? "<EncodingType>url</EncodingType>" : "");
	for (size_t i = 0; i < count; i++)
		sb_printf(&b, "%s", unit);
	sb_printf(&b, "</Key></Contents></ListBucketResult>");
	return b.s;
}

static void test_key_bounds(void)
{
	struct dmfs_list_page p;
	char *doc;

	/* 4096 bytes is the longest key. */
	doc = key_doc("k", 4096, 0);
	CHECK(parse_list(doc, &p) == 0);
	CHECK(p.nobjs == 1 && strlen(p.objs[0].key) == 4096);
	dmfs_list_page_free(&p);
	free(doc);

	/* Also when it arrives as 12288 bytes of escapes. */
	doc = key_doc("%6B", 4096, 1);
	CHECK(parse_list(doc, &p) == 0);
	CHECK(p.nobjs == 1 && strlen(p.objs[0].key) == 4096);
	dmfs_list_page_free(&p);
	free(doc);

	/* One more byte is too big, whatever its form. */
	doc = key_doc("k", 4097, 0);
	LIST_FAILS(doc, DMFS_ERR_TOO_BIG);
	free(doc);
	doc = key_doc("%6B", 4097, 1);
	LIST_FAILS(doc, DMFS_ERR_TOO_BIG);
	free(doc);
	/* Multi-byte characters count in bytes. */
	doc = key_doc("\xc3\xa9", 2049, 0);
	LIST_FAILS(doc, DMFS_ERR_TOO_BIG);
	free(doc);

	/* Far over the text buffer, and in entities that expand. */
	doc = key_doc("0123456789", 100000, 0);
	LIST_FAILS(doc, DMFS_ERR_TOO_BIG);
	free(doc);
	doc = key_doc("&amp;", 20000, 0);
	LIST_FAILS(doc, DMFS_ERR_TOO_BIG);
	free(doc);
}

static char *entries_doc(size_t nobjs, size_t nprefixes)
{
	struct sbuf b = {0};

	sb_printf(&b, "<ListBucketResult>");
	for (size_t i = 0; i < nobjs; i++)
		sb_printf(&b, "<Contents><Key>k%zu</Key></Contents>", i);
	for (size_t i = 0; i < nprefixes; i++)
		sb_printf(&b,
			  "<CommonPrefixes><Prefix>p%zu/</Prefix>"
			  "</CommonPrefixes>",
			  i);
	sb_printf(&b, "</ListBucketResult>");
	return b.s;
}

static void test_entry_bounds(void)
{
	struct dmfs_list_page p;
	char *doc;

	doc = entries_doc(60000, 40000);
	CHECK(parse_list(doc, &p) == 0);
	CHECK(p.nobjs == 60000 && p.nprefixes == 40000);
	if (p.nobjs == 60000 && p.nprefixes == 40000) {
		CHECK_STR(p.objs[59999].key, "k59999");
		CHECK_STR(p.prefixes[39999], "p39999/");
	}
	dmfs_list_page_free(&p);
	free(doc);

	/* One more, of either kind. */
	doc = entries_doc(60000, 40001);
	LIST_FAILS(doc, DMFS_ERR_TOO_BIG);
	free(doc);
	doc = entries_doc(100001, 0);
	LIST_FAILS(doc, DMFS_ERR_TOO_BIG);
	free(doc);
}

static void test_etag(void)
{
	struct dmfs_list_page p;

	CHECK(parse_list("<ListBucketResult><Contents><Key>a</Key>"
			 "<ETag>\"9b2cf535f27731c974343645a3985328-12\"</ETag>"
			 "</Contents><Contents><Key>b</Key>"
			 "<ETag>noquotes</ETag></Contents>"
			 "<Contents><Key>c</Key></Contents>"
			 "</ListBucketResult>",
			 &p) == 0);
	CHECK(p.nobjs == 3);
	if (p.nobjs == 3) {
		CHECK_STR(p.objs[0].etag,
			  "9b2cf535f27731c974343645a3985328-12");
		CHECK_STR(p.objs[1].etag, "noquotes");
		/* Missing fields read as zero. */
		CHECK_STR(p.objs[2].etag, "");
		CHECK(p.objs[2].size == 0 && p.objs[2].mtime == 0);
	}
	dmfs_list_page_free(&p);

	/* 79 characters fit DMFS_ETAG_MAX, 80 do not. */
	CHECK(parse_list("<ListBucketResult><Contents><Key>a</Key><ETag>\""
			 "0123456789012345678901234567890123456789"
			 "012345678901234567890123456789012345678\"</ETag>"
			 "</Contents></ListBucketResult>",
			 &p) == 0);
	CHECK(p.nobjs == 1 && strlen(p.objs[0].etag) == 79);
	dmfs_list_page_free(&p);
	LIST_FAILS("<ListBucketResult><Contents><Key>a</Key><ETag>\""
		   "0123456789012345678901234567890123456789"
		   "0123456789012345678901234567890123456789\"</ETag>"
		   "</Contents></ListBucketResult>",
		   DMFS_ERR_TOO_BIG);
}

static void test_sizes(void)
{
	struct dmfs_list_page p;

	CHECK(parse_list("<ListBucketResult><Contents><Key>a</Key>"
			 "<Size>18446744073709551615</Size></Contents>"
			 "<Contents><Key>b</Key><Size>\n 5368709120 \n</Size>"
			 "</Contents></ListBucketResult>",
			 &p) == 0);
	CHECK(p.nobjs == 2);
	if (p.nobjs == 2) {
		CHECK(p.objs[0].size == UINT64_MAX);
		CHECK(p.objs[1].size == 5368709120ULL);
	}
	dmfs_list_page_free(&p);

	LIST_FAILS("<ListBucketResult><Contents><Key>a</Key>"
		   "<Size>18446744073709551616</Size></Contents>"
		   "</ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><Contents><Key>a</Key><Size>-1</Size>"
		   "</Contents></ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><Contents><Key>a</Key><Size>12a</Size>"
		   "</Contents></ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><Contents><Key>a</Key><Size>0x10</Size>"
		   "</Contents></ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><Contents><Key>a</Key><Size></Size>"
		   "</Contents></ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><Contents><Key>a</Key><Size>1 2</Size>"
		   "</Contents></ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><Contents><Key>a</Key>"
		   "<LastModified>yesterday</LastModified></Contents>"
		   "</ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
}

/* Documents that are not a usable listing, each failing cleanly. */
static void test_bad_listings(void)
{
	struct dmfs_list_page p;
	static const char good[] =
	    "<ListBucketResult><IsTruncated>true</IsTruncated>"
	    "<NextContinuationToken>t</NextContinuationToken>"
	    "<Contents><Key>a</Key><Size>1</Size></Contents>"
	    "<Contents><Key>b</Key><Size>2</Size></Contents>"
	    "<CommonPrefixes><Prefix>c/</Prefix></CommonPrefixes>"
	    "</ListBucketResult>";

	/* Malformed XML, including every cut of a good document. */
	LIST_FAILS("", DMFS_ERR_PROTOCOL);
	LIST_FAILS("   ", DMFS_ERR_PROTOCOL);
	LIST_FAILS("not xml at all", DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><Contents><Key>a</Key></Content>"
		   "</ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><Contents><Key>a&b</Key></Contents>"
		   "</ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><Contents><Key>a&nbsp;</Key>"
		   "</Contents></ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><Contents><Key>a&#0;</Key>"
		   "</Contents></ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult></ListBucketResult><ListBucketResult/>",
		   DMFS_ERR_PROTOCOL);
	CHECK(s3_xml_parse_list(NULL, 0, &p) == DMFS_ERR_PROTOCOL);
	CHECK(page_is_empty(&p));
	for (size_t cut = 0; cut < sizeof(good) - 1; cut++) {
		int rc = s3_xml_parse_list(good, cut, &p);

		if (rc != DMFS_ERR_PROTOCOL)
			fprintf(stderr, "  cut at %zu: rc %d\n", cut, rc);
		CHECK(rc == DMFS_ERR_PROTOCOL);
		CHECK(page_is_empty(&p));
	}
	CHECK(s3_xml_parse_list(good, sizeof(good) - 1, &p) == 0);
	CHECK(p.nobjs == 2 && p.nprefixes == 1);
	dmfs_list_page_free(&p);

	/* Wrong root: an error sent with 200, another listing, HTML. */
	LIST_FAILS("<Error><Code>InternalError</Code></Error>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListAllMyBucketsResult xmlns=\"" S3_NS "\">"
		   "<Buckets/></ListAllMyBucketsResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListVersionsResult><Version><Key>a</Key></Version>"
		   "</ListVersionsResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<html><body>502 Bad Gateway</body></html>",
		   DMFS_ERR_PROTOCOL);

	/* Objects that cannot be shown. */
	LIST_FAILS("<ListBucketResult><Contents><Size>1</Size></Contents>"
		   "</ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><Contents><Key></Key></Contents>"
		   "</ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><Contents><Key>a</Key><Key>b</Key>"
		   "</Contents></ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><Contents><Key>a</Key><Size>1</Size>"
		   "<Size>2</Size></Contents></ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><Contents><Key>a<b/>c</Key>"
		   "</Contents></ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<ListBucketResult><CommonPrefixes><Prefix/>"
		   "</CommonPrefixes></ListBucketResult>",
		   DMFS_ERR_PROTOCOL);

	/* Nesting far deeper than any S3 document. */
	{
		struct sbuf b = {0};

		sb_printf(&b, "<ListBucketResult>");
		for (int i = 0; i < 40; i++)
			sb_printf(&b, "<a>");
		for (int i = 0; i < 40; i++)
			sb_printf(&b, "</a>");
		sb_printf(&b, "</ListBucketResult>");
		LIST_FAILS(b.s, DMFS_ERR_PROTOCOL);
		free(b.s);
	}

	CHECK(s3_xml_parse_list("<ListBucketResult/>", 19, NULL) ==
	      DMFS_ERR_INVAL);
}

/* No DTD, so no entity expansion and no external entity, ever. */
static void test_hostile_dtd(void)
{
	LIST_FAILS(
	    "<?xml version=\"1.0\"?>\n"
	    "<!DOCTYPE lolz [\n"
	    " <!ENTITY lol \"lol\">\n"
	    " <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
	    " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
	    " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
	    "]>\n"
	    "<ListBucketResult><Contents><Key>&lol4;</Key></Contents>"
	    "</ListBucketResult>",
	    DMFS_ERR_PROTOCOL);
	LIST_FAILS("<?xml version=\"1.0\"?>\n"
		   "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n"
		   "<ListBucketResult><Contents><Key>&x;</Key></Contents>"
		   "</ListBucketResult>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<!DOCTYPE ListBucketResult SYSTEM "
		   "\"http://example.invalid/s3.dtd\">"
		   "<ListBucketResult/>",
		   DMFS_ERR_PROTOCOL);
	LIST_FAILS("<?xml version=\"1.0\"?>\n"
		   "<!DOCTYPE r [<!ENTITY % p SYSTEM \"file:///etc/passwd\">"
		   "%p;]>\n<ListBucketResult/>",
		   DMFS_ERR_PROTOCOL);
}

/* --- ListVersionsResult -------------------------------------------------- */

static int parse_versions(const char *xml, struct dmfs_list_page *p, char **nk,
			  char **nv)
{
	return s3_xml_parse_versions(xml, strlen(xml), p, nk, nv);
}

/* Something no parser would return, to see that the markers are reset. */
static char not_a_marker[] = "stale";

static void check_versions_fails(const char *xml, size_t len, int want,
				 int line)
{
	struct dmfs_list_page p;
	char *nk = not_a_marker, *nv = not_a_marker;
	int rc = s3_xml_parse_versions(xml, len, &p, &nk, &nv);

	if (rc != want)
		fprintf(stderr, "  (case at line %d: rc %d, want %d)\n", line,
			rc, want);
	CHECK(rc == want);
	CHECK(page_is_empty(&p));
	CHECK(nk == NULL && nv == NULL);
	dmfs_list_page_free(&p);
}

#define VERSIONS_FAILS(xml, want)                                              \
	check_versions_fails((xml), strlen(xml), (want), __LINE__)

/* One entry of a version listing, checked field by field. */
static void check_version(const struct dmfs_obj_info *o, const char *key,
			  const char *vid, int latest, int dm, uint64_t size,
			  long long mtime, const char *etag, int line)
{
	int ok = o->key && strcmp(o->key, key) == 0 && o->version_id &&
		 strcmp(o->version_id, vid) == 0 && o->is_latest == latest &&
		 o->is_delete_marker == dm && o->size == size &&
		 o->mtime == mtime && strcmp(o->etag, etag) == 0;

	if (!ok)
		fprintf(stderr,
			"  (entry at line %d: %s %s latest %d dm %d size %llu "
			"mtime %lld etag %s)\n",
			line, o->key ? o->key : "(null)",
			o->version_id ? o->version_id : "(null)", o->is_latest,
			o->is_delete_marker, (unsigned long long)o->size,
			(long long)o->mtime, o->etag);
	CHECK(ok);
}

#define VERSION_IS(o, key, vid, latest, dm, size, mtime, etag)                 \
	check_version((o), (key), (vid), (latest), (dm), (size), (mtime),      \
		      (etag), __LINE__)

/*
 * The sample response of ListObjectVersions (Amazon S3 API Reference,
 * example 1): versions and delete markers interleaved, in key order.  AWS
 * writes the namespace without its final slash; it does not matter here.
 */
static void test_aws_example_versions(void)
{
	static const char xml[] = XML_DECL
	    "<ListVersionsResult "
	    "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01\">\n"
	    "    <Name>bucket</Name>\n"
	    "    <Prefix>my</Prefix>\n"
	    "    <KeyMarker/>\n"
	    "    <VersionIdMarker/>\n"
	    "    <MaxKeys>5</MaxKeys>\n"
	    "    <IsTruncated>false</IsTruncated>\n"
	    "    <Version>\n"
	    "        <Key>my-image.jpg</Key>\n"
	    "        <VersionId>3/L4kqtJl40Nr8X8gdRQBpUMLUo</VersionId>\n"
	    "        <IsLatest>true</IsLatest>\n"
	    "         <LastModified>2009-10-12T17:50:30.000Z</LastModified>\n"
	    "        "
	    "<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag>\n"
	    "        <Size>434234</Size>\n"
	    "        <StorageClass>STANDARD</StorageClass>\n"
	    "        <Owner>\n"
	    "            "
	    "<ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7"
	    "c6caea54ba06a</ID>\n"
	    "            <DisplayName>mtd@amazon.com</DisplayName>\n"
	    "        </Owner>\n"
	    "    </Version>\n"
	    "    <DeleteMarker>\n"
	    "        <Key>my-second-image.jpg</Key>\n"
	    "        <VersionId>03jpff543dhffds434rfdsFDN943fdsFkdmqnh892"
	    "</VersionId>\n"
	    "        <IsLatest>true</IsLatest>\n"
	    "        <LastModified>2009-11-12T17:50:30.000Z</LastModified>\n"
	    "        <Owner>\n"
	    "            "
	    "<ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7"
	    "c6caea54ba06a</ID>\n"
	    "            <DisplayName>mtd@amazon.com</DisplayName>\n"
	    "        </Owner>    \n"
	    "    </DeleteMarker>\n"
	    "    <Version>\n"
	    "        <Key>my-second-image.jpg</Key>\n"
	    "        "
	    "<VersionId>QUpfdndhfd8438MNFDN93jdnJFkdmqnh893</VersionId>\n"
	    "        <IsLatest>false</IsLatest>\n"
	    "        <LastModified>2009-10-10T17:50:30.000Z</LastModified>\n"
	    "        "
	    "<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>\n"
	    "        <Size>166434</Size>\n"
	    "        <StorageClass>STANDARD</StorageClass>\n"
	    "        <Owner>\n"
	    "            "
	    "<ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7"
	    "c6caea54ba06a</ID>\n"
	    "            <DisplayName>mtd@amazon.com</DisplayName>\n"
	    "        </Owner>\n"
	    "    </Version>\n"
	    "    <DeleteMarker>\n"
	    "        <Key>my-third-image.jpg</Key>\n"
	    "        <VersionId>03jpff543dhffds434rfdsFDN943fdsFkdmqnh892"
	    "</VersionId>\n"
	    "        <IsLatest>true</IsLatest>\n"
	    "        <LastModified>2009-10-15T17:50:30.000Z</LastModified>\n"
	    "        <Owner>\n"
	    "            "
	    "<ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7"
	    "c6caea54ba06a</ID>\n"
	    "            <DisplayName>mtd@amazon.com</DisplayName>\n"
	    "        </Owner>    \n"
	    "    </DeleteMarker>   \n"
	    "    <Version>\n"
	    "        <Key>my-third-image.jpg</Key>\n"
	    "        <VersionId>UIORUnfndfhnw89493jJFJ</VersionId>\n"
	    "        <IsLatest>false</IsLatest>\n"
	    "        <LastModified>2009-10-11T12:50:30.000Z</LastModified>\n"
	    "        "
	    "<ETag>&quot;772cf535f27731c974343645a3985328&quot;</ETag>\n"
	    "        <Size>64</Size>\n"
	    "        <StorageClass>STANDARD</StorageClass>\n"
	    "        <Owner>\n"
	    "            "
	    "<ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7"
	    "c6caea54ba06a</ID>\n"
	    "            <DisplayName>mtd@amazon.com</DisplayName>\n"
	    "        </Owner>\n"
	    "     </Version>\n"
	    "</ListVersionsResult>\n";
	struct dmfs_list_page p;
	char *nk = not_a_marker, *nv = not_a_marker;

	CHECK(parse_versions(xml, &p, &nk, &nv) == 0);
	CHECK(!p.truncated);
	CHECK(nk == NULL && nv == NULL);
	CHECK(p.next_token == NULL);
	CHECK(p.nprefixes == 0 && p.prefixes == NULL);
	CHECK(p.nobjs == 5);
	if (p.nobjs == 5) {
		VERSION_IS(&p.objs[0], "my-image.jpg",
			   "3/L4kqtJl40Nr8X8gdRQBpUMLUo", 1, 0, 434234,
			   1255369830, "fba9dede5f27731c9771645a39863328");
		VERSION_IS(&p.objs[1], "my-second-image.jpg",
			   "03jpff543dhffds434rfdsFDN943fdsFkdmqnh892", 1, 1, 0,
			   1258048230, "");
		VERSION_IS(&p.objs[2], "my-second-image.jpg",
			   "QUpfdndhfd8438MNFDN93jdnJFkdmqnh893", 0, 0, 166434,
			   1255197030, "9b2cf535f27731c974343645a3985328");
		VERSION_IS(&p.objs[3], "my-third-image.jpg",
			   "03jpff543dhffds434rfdsFDN943fdsFkdmqnh892", 1, 1, 0,
			   1255629030, "");
		VERSION_IS(&p.objs[4], "my-third-image.jpg",
			   "UIORUnfndfhnw89493jJFJ", 0, 0, 64, 1255265430,
			   "772cf535f27731c974343645a3985328");
	}
	dmfs_list_page_free(&p);
	CHECK(page_is_empty(&p));
}

/*
 * "null" is the version id of an object written before versioning was
 * enabled (or while it was suspended), and a legal marker.  The markers
 * of a truncated page are handed out; those of a complete one are not.
 */
static void test_versions_null_and_markers(void)
{
	static const char truncated[] =
	    "<ListVersionsResult xmlns=\"" S3_NS "\">"
	    "<IsTruncated>true</IsTruncated>"
	    "<NextKeyMarker>b.txt</NextKeyMarker>"
	    "<NextVersionIdMarker>null</NextVersionIdMarker>"
	    "<Version><Key>a.txt</Key><VersionId>v2</VersionId>"
	    "<IsLatest>true</IsLatest><Size>2</Size></Version>"
	    "<Version><Key>a.txt</Key><VersionId>null</VersionId>"
	    "<IsLatest>false</IsLatest><Size>1</Size></Version>"
	    "<Version><Key>b.txt</Key><VersionId>null</VersionId>"
	    "<IsLatest>true</IsLatest><Size>3</Size></Version>"
	    "</ListVersionsResult>";
	struct dmfs_list_page p;
	char *nk = NULL, *nv = NULL;

	CHECK(parse_versions(truncated, &p, &nk, &nv) == 0);
	CHECK(p.truncated);
	CHECK_STR(nk, "b.txt");
	CHECK_STR(nv, "null");
	CHECK(p.next_token == NULL);
	CHECK(p.nobjs == 3);
	if (p.nobjs == 3) {
		VERSION_IS(&p.objs[0], "a.txt", "v2", 1, 0, 2, 0, "");
		VERSION_IS(&p.objs[1], "a.txt", "null", 0, 0, 1, 0, "");
		VERSION_IS(&p.objs[2], "b.txt", "null", 1, 0, 3, 0, "");
	}
	dmfs_list_page_free(&p);
	free(nk);
	free(nv);

	/* Markers not wanted: still parsed, nothing leaks (ASan). */
	CHECK(parse_versions(truncated, &p, NULL, NULL) == 0);
	CHECK(p.nobjs == 3 && p.truncated);
	dmfs_list_page_free(&p);

	/* A complete listing hands out no marker, even if sent. */
	nk = nv = not_a_marker;
	CHECK(parse_versions("<ListVersionsResult>"
			     "<NextKeyMarker>k</NextKeyMarker>"
			     "<NextVersionIdMarker>v</NextVersionIdMarker>"
			     "<IsTruncated>false</IsTruncated>"
			     "</ListVersionsResult>",
			     &p, &nk, &nv) == 0);
	CHECK(nk == NULL && nv == NULL);
	CHECK(page_is_empty(&p));
	dmfs_list_page_free(&p);

	/* Truncated with a key marker only: still a way on. */
	nk = nv = not_a_marker;
	CHECK(parse_versions("<ListVersionsResult>"
			     "<IsTruncated>true</IsTruncated>"
			     "<NextKeyMarker>k</NextKeyMarker>"
			     "<NextVersionIdMarker/>"
			     "</ListVersionsResult>",
			     &p, &nk, &nv) == 0);
	CHECK_STR(nk, "k");
	CHECK(nv == NULL);
	dmfs_list_page_free(&p);
	free(nk);

	/* Truncated without a key marker: nowhere to go on from. */
	VERSIONS_FAILS("<ListVersionsResult><IsTruncated>true</IsTruncated>"
		       "<NextVersionIdMarker>v</NextVersionIdMarker>"
		       "<Version><Key>a</Key><VersionId>v</VersionId>"
		       "</Version></ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<ListVersionsResult><IsTruncated>true</IsTruncated>"
		       "<NextKeyMarker></NextKeyMarker>"
		       "</ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<ListVersionsResult><IsTruncated>maybe</IsTruncated>"
		       "</ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<ListVersionsResult><IsTruncated>true</IsTruncated>"
		       "<NextKeyMarker>a</NextKeyMarker>"
		       "<NextKeyMarker>b</NextKeyMarker>"
		       "</ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<ListVersionsResult><IsTruncated>true</IsTruncated>"
		       "<NextKeyMarker>a</NextKeyMarker>"
		       "<NextVersionIdMarker>v\x01</NextVersionIdMarker>"
		       "</ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);
}

/*
 * encoding-type=url: keys and NextKeyMarker are percent-encoded (the
 * EncodingType element may come last); version ids and the version-id
 * marker are not, so their "+", "/" and "%2B" stay as sent.
 */
static void test_versions_url_encoding(void)
{
	static const char xml[] =
	    "<ListVersionsResult xmlns=\"" S3_NS "\">"
	    "<Prefix>d%C3%A9j%C3%A0</Prefix>"
	    "<KeyMarker>old%2Bmarker</KeyMarker>"
	    "<IsTruncated>true</IsTruncated>"
	    "<NextKeyMarker>next+key%0A%26%C3%A9</NextKeyMarker>"
	    "<NextVersionIdMarker>a+b/c%2B=</NextVersionIdMarker>"
	    "<Version><Key>d%C3%A9j%C3%A0/%E6%97%A5%E6%9C%AC%F0%9F%98%80</Key>"
	    "<VersionId>3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8"
	    "gdRQBpUMLUo</VersionId><IsLatest>true</IsLatest>"
	    "<Size>1</Size></Version>"
	    "<DeleteMarker><Key>R%26D+%3Cdraft%3E%0Aline+two</Key>"
	    "<VersionId>x%2By</VersionId><IsLatest>true</IsLatest>"
	    "</DeleteMarker>"
	    "<Version><Key>R%26D+%3Cdraft%3E%0Aline+two</Key>"
	    "<VersionId>null</VersionId><IsLatest>false</IsLatest>"
	    "<Size>2</Size></Version>"
	    "<Version><Key>100%25 &amp; my%2Bfile</Key>"
	    "<VersionId>v</VersionId><Size>3</Size></Version>"
	    "<EncodingType>url</EncodingType>"
	    "</ListVersionsResult>";
	struct dmfs_list_page p;
	char *nk = NULL, *nv = NULL;

	CHECK(parse_versions(xml, &p, &nk, &nv) == 0);
	CHECK(p.truncated);
	CHECK_STR(nk, "next key\n&\xc3\xa9");
	CHECK_STR(nv, "a+b/c%2B=");
	CHECK(p.nobjs == 4);
	if (p.nobjs == 4) {
		VERSION_IS(&p.objs[0],
			   "d\xc3\xa9j\xc3\xa0/\xe6\x97\xa5\xe6\x9c\xac"
			   "\xf0\x9f\x98\x80",
			   "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8"
			   "X8gdRQBpUMLUo",
			   1, 0, 1, 0, "");
		VERSION_IS(&p.objs[1], "R&D <draft>\nline two", "x%2By", 1, 1,
			   0, 0, "");
		VERSION_IS(&p.objs[2], "R&D <draft>\nline two", "null", 0, 0, 2,
			   0, "");
		/* IsLatest missing reads as false. */
		VERSION_IS(&p.objs[3], "100% & my+file", "v", 0, 0, 3, 0, "");
	}
	dmfs_list_page_free(&p);
	free(nk);
	free(nv);

	/* Without EncodingType, the same text is taken literally. */
	CHECK(parse_versions("<ListVersionsResult>"
			     "<IsTruncated>true</IsTruncated>"
			     "<NextKeyMarker> a+b%2B </NextKeyMarker>"
			     "<Version><Key>my+file%2B1.txt</Key>"
			     "<VersionId>v</VersionId></Version>"
			     "</ListVersionsResult>",
			     &p, &nk, &nv) == 0);
	/* A key marker is a key: its blanks are part of it. */
	CHECK_STR(nk, " a+b%2B ");
	CHECK(nv == NULL);
	if (p.nobjs == 1)
		CHECK_STR(p.objs[0].key, "my+file%2B1.txt");
	CHECK(p.nobjs == 1);
	dmfs_list_page_free(&p);
	free(nk);

	/* Entities, unicode and newlines without url encoding. */
	CHECK(parse_versions("<ListVersionsResult>"
			     "<Version><Key>R&amp;D &lt;x&gt;&#10;donn&#233;es"
			     "</Key><VersionId>v</VersionId></Version>"
			     "</ListVersionsResult>",
			     &p, NULL, NULL) == 0);
	CHECK(p.nobjs == 1);
	if (p.nobjs == 1)
		CHECK_STR(p.objs[0].key, "R&D <x>\ndonn\xc3\xa9"
					 "es");
	dmfs_list_page_free(&p);

	/* Broken escapes in a key or in the key marker. */
	VERSIONS_FAILS("<ListVersionsResult><EncodingType>url</EncodingType>"
		       "<Version><Key>bad%G1</Key><VersionId>v</VersionId>"
		       "</Version></ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<ListVersionsResult><IsTruncated>true</IsTruncated>"
		       "<NextKeyMarker>nul%00</NextKeyMarker>"
		       "<EncodingType>url</EncodingType></ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<ListVersionsResult><EncodingType>base64"
		       "</EncodingType></ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);
}

/* The three spellings of the namespace read the same. */
static void test_versions_namespaces(void)
{
	static const char none[] =
	    "<ListVersionsResult><IsTruncated>true</IsTruncated>"
	    "<NextKeyMarker>k</NextKeyMarker>"
	    "<NextVersionIdMarker>nv</NextVersionIdMarker>"
	    "<Version><Key>a</Key><VersionId>v1</VersionId>"
	    "<IsLatest>true</IsLatest><ETag>&#34;e&#34;</ETag>"
	    "<Size>5</Size></Version>"
	    "<DeleteMarker><Key>b</Key><VersionId>null</VersionId>"
	    "<IsLatest>false</IsLatest></DeleteMarker>"
	    "</ListVersionsResult>";
	static const char dflt[] =
	    "<ListVersionsResult xmlns=\"" S3_NS "\">"
	    "<IsTruncated>true</IsTruncated>"
	    "<NextKeyMarker>k</NextKeyMarker>"
	    "<NextVersionIdMarker>nv</NextVersionIdMarker>"
	    "<Version><Key>a</Key><VersionId>v1</VersionId>"
	    "<IsLatest>true</IsLatest><ETag>\"e\"</ETag>"
	    "<Size>5</Size></Version>"
	    "<DeleteMarker><Key>b</Key><VersionId>null</VersionId>"
	    "<IsLatest>false</IsLatest></DeleteMarker>"
	    "</ListVersionsResult>";
	static const char prefixed[] =
	    "<s3:ListVersionsResult xmlns:s3=\"" S3_NS "\">"
	    "<s3:IsTruncated>true</s3:IsTruncated>"
	    "<s3:NextKeyMarker>k</s3:NextKeyMarker>"
	    "<s3:NextVersionIdMarker>nv</s3:NextVersionIdMarker>"
	    "<s3:Version><s3:Key>a</s3:Key><s3:VersionId>v1</s3:VersionId>"
	    "<s3:IsLatest>true</s3:IsLatest><s3:ETag>&quot;e&quot;</s3:ETag>"
	    "<s3:Size>5</s3:Size></s3:Version>"
	    "<s3:DeleteMarker><s3:Key>b</s3:Key>"
	    "<s3:VersionId>null</s3:VersionId>"
	    "<s3:IsLatest>false</s3:IsLatest></s3:DeleteMarker>"
	    "</s3:ListVersionsResult>";
	const char *docs[] = {none, dflt, prefixed};

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct dmfs_list_page p;
		char *nk = NULL, *nv = NULL;

		CHECK(parse_versions(docs[i], &p, &nk, &nv) == 0);
		CHECK(p.truncated);
		CHECK_STR(nk, "k");
		CHECK_STR(nv, "nv");
		CHECK(p.nobjs == 2);
		if (p.nobjs == 2) {
			VERSION_IS(&p.objs[0], "a", "v1", 1, 0, 5, 0, "e");
			VERSION_IS(&p.objs[1], "b", "null", 0, 1, 0, 0, "");
		}
		dmfs_list_page_free(&p);
		free(nk);
		free(nv);
	}
	VERSIONS_FAILS("<s3:ListVersionsResult></s3:ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);
}

/*
 * Position, not name: a VersionId under Owner, a Key at the top, a
 * Version inside something else, the Contents of the other listing, the
 * Size and ETag a delete marker does not have, are nobody's.
 */
static void test_versions_nesting(void)
{
	static const char xml[] =
	    "<ListVersionsResult>"
	    "<Key>top-key</Key><VersionId>top-vid</VersionId>"
	    "<KeyMarker>km</KeyMarker><VersionIdMarker>vm</VersionIdMarker>"
	    "<IsTruncated>false</IsTruncated>"
	    "<Contents><Key>not-a-version</Key></Contents>"
	    "<CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes>"
	    "<Version><Key>a</Key>"
	    "<Owner><ID>o</ID><VersionId>owner-vid</VersionId>"
	    "<IsLatest>garbage</IsLatest></Owner>"
	    "<VersionId>real</VersionId>"
	    "<RestoreStatus><Key>x</Key></RestoreStatus>"
	    "<Size>7</Size></Version>"
	    "<DeleteMarker><Key>b</Key><VersionId>dm</VersionId>"
	    "<Size>99</Size><ETag>\"ignored\"</ETag></DeleteMarker>"
	    "<Extra><Version><Key>deep</Key><VersionId>d</VersionId>"
	    "</Version></Extra>"
	    "</ListVersionsResult>";
	struct dmfs_list_page p;

	CHECK(parse_versions(xml, &p, NULL, NULL) == 0);
	CHECK(p.nprefixes == 0);
	CHECK(p.nobjs == 2);
	if (p.nobjs == 2) {
		VERSION_IS(&p.objs[0], "a", "real", 0, 0, 7, 0, "");
		VERSION_IS(&p.objs[1], "b", "dm", 0, 1, 0, 0, "");
	}
	dmfs_list_page_free(&p);
}

/* Text in pieces: well over 64 KiB of entity-laden keys and ids. */
static void test_versions_in_pieces(void)
{
	struct sbuf b = {0};
	struct dmfs_list_page p;
	enum { N = 2000 };

	sb_printf(&b, "<ListVersionsResult xmlns=\"%s\">", S3_NS);
	for (int i = 0; i < N; i++)
		sb_printf(&b,
			  "<%s><Key>k&amp;%d&#233;</Key>"
			  "<VersionId>v&#43;%d</VersionId>"
			  "<IsLatest>%s</IsLatest></%s>",
			  i % 3 ? "Version" : "DeleteMarker", i, i,
			  i % 2 ? "true" : "false",
			  i % 3 ? "Version" : "DeleteMarker");
	sb_printf(&b, "</ListVersionsResult>");
	CHECK(b.len > 2 * 64 * 1024);
	CHECK(s3_xml_parse_versions(b.s, b.len, &p, NULL, NULL) == 0);
	CHECK(p.nobjs == N);
	if (p.nobjs == N) {
		int bad = 0;

		for (int i = 0; i < N; i++) {
			char key[64], vid[64];

			snprintf(key, sizeof(key), "k&%d\xc3\xa9", i);
			snprintf(vid, sizeof(vid), "v+%d", i);
			if (strcmp(p.objs[i].key, key) != 0 ||
			    strcmp(p.objs[i].version_id, vid) != 0 ||
			    p.objs[i].is_latest != (i % 2 == 1) ||
			    p.objs[i].is_delete_marker != (i % 3 == 0))
				bad++;
		}
		CHECK(bad == 0);
	}
	dmfs_list_page_free(&p);
	free(b.s);
}

static char *vid_doc(size_t len, const char *where)
{
	struct sbuf b = {0};
	char *id = malloc(len + 1);

	if (!id)
		abort();
	memset(id, 'v', len);
	id[len] = '\0';
	if (strcmp(where, "marker") == 0)
		sb_printf(&b,
			  "<ListVersionsResult><IsTruncated>true</IsTruncated>"
			  "<NextKeyMarker>k</NextKeyMarker>"
			  "<NextVersionIdMarker>%s</NextVersionIdMarker>"
			  "</ListVersionsResult>",
			  id);
	else
		sb_printf(&b,
			  "<ListVersionsResult><Version><Key>k</Key>"
			  "<VersionId>%s</VersionId></Version>"
			  "</ListVersionsResult>",
			  id);
	free(id);
	return b.s;
}

static void test_bad_versions(void)
{
	static const char good[] =
	    "<ListVersionsResult><IsTruncated>true</IsTruncated>"
	    "<NextKeyMarker>b</NextKeyMarker>"
	    "<NextVersionIdMarker>v</NextVersionIdMarker>"
	    "<Version><Key>a</Key><VersionId>1</VersionId></Version>"
	    "<DeleteMarker><Key>b</Key><VersionId>2</VersionId>"
	    "</DeleteMarker></ListVersionsResult>";
	struct dmfs_list_page p;
	char *nk, *nv, *doc;

	/* Every cut of a good document fails, leaving nothing behind. */
	for (size_t cut = 0; cut < sizeof(good) - 1; cut++)
		check_versions_fails(good, cut, DMFS_ERR_PROTOCOL, __LINE__);
	nk = nv = NULL;
	CHECK(s3_xml_parse_versions(good, sizeof(good) - 1, &p, &nk, &nv) == 0);
	CHECK(p.nobjs == 2);
	CHECK_STR(nk, "b");
	CHECK_STR(nv, "v");
	dmfs_list_page_free(&p);
	free(nk);
	free(nv);
	check_versions_fails(NULL, 0, DMFS_ERR_PROTOCOL, __LINE__);

	/* Not a version listing. */
	VERSIONS_FAILS("not xml", DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<ListBucketResult><Contents><Key>a</Key></Contents>"
		       "</ListBucketResult>",
		       DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<Error><Code>NoSuchBucket</Code></Error>",
		       DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<html><body>502 Bad Gateway</body></html>",
		       DMFS_ERR_PROTOCOL);

	/* Entries that cannot be read back. */
	VERSIONS_FAILS("<ListVersionsResult><Version><Key>a</Key></Version>"
		       "</ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<ListVersionsResult><DeleteMarker><Key>a</Key>"
		       "</DeleteMarker></ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<ListVersionsResult><Version>"
		       "<VersionId>v</VersionId></Version>"
		       "</ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<ListVersionsResult><Version><Key>a</Key>"
		       "<VersionId> </VersionId></Version>"
		       "</ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<ListVersionsResult><Version><Key>a</Key>"
		       "<VersionId>v</VersionId><VersionId>w</VersionId>"
		       "</Version></ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<ListVersionsResult><Version><Key>a</Key>"
		       "<VersionId>v&#10;w</VersionId></Version>"
		       "</ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<ListVersionsResult><Version><Key>a</Key>"
		       "<VersionId>v</VersionId><IsLatest>yes</IsLatest>"
		       "</Version></ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<ListVersionsResult><Version><Key>a</Key>"
		       "<VersionId>v</VersionId><IsLatest>true</IsLatest>"
		       "<IsLatest>false</IsLatest></Version>"
		       "</ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<ListVersionsResult><Version><Key>a</Key>"
		       "<VersionId>v</VersionId><Size>-1</Size></Version>"
		       "</ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<ListVersionsResult><Version><Key>a</Key>"
		       "<VersionId>v<b/></VersionId></Version>"
		       "</ListVersionsResult>",
		       DMFS_ERR_PROTOCOL);

	/* Version ids: 1024 bytes fit, 1025 do not, in entries and marker. */
	doc = vid_doc(1024, "entry");
	CHECK(parse_versions(doc, &p, NULL, NULL) == 0);
	CHECK(p.nobjs == 1 && strlen(p.objs[0].version_id) == 1024);
	dmfs_list_page_free(&p);
	free(doc);
	doc = vid_doc(1025, "entry");
	VERSIONS_FAILS(doc, DMFS_ERR_TOO_BIG);
	free(doc);
	doc = vid_doc(1024, "marker");
	nv = NULL;
	CHECK(parse_versions(doc, &p, NULL, &nv) == 0);
	CHECK(nv && strlen(nv) == 1024);
	dmfs_list_page_free(&p);
	free(nv);
	free(doc);
	doc = vid_doc(1025, "marker");
	VERSIONS_FAILS(doc, DMFS_ERR_TOO_BIG);
	free(doc);

	/* Keys: the same bound as in listings, also for the key marker. */
	{
		struct sbuf b = {0};
		char k[4098];

		memset(k, 'k', sizeof(k) - 1);
		k[sizeof(k) - 1] = '\0';
		sb_printf(&b,
			  "<ListVersionsResult><IsTruncated>true"
			  "</IsTruncated><NextKeyMarker>%s</NextKeyMarker>"
			  "</ListVersionsResult>",
			  k);
		VERSIONS_FAILS(b.s, DMFS_ERR_TOO_BIG);
		free(b.s);
		b = (struct sbuf){0};
		sb_printf(&b,
			  "<ListVersionsResult><Version><Key>%s</Key>"
			  "<VersionId>v</VersionId></Version>"
			  "</ListVersionsResult>",
			  k);
		VERSIONS_FAILS(b.s, DMFS_ERR_TOO_BIG);
		free(b.s);
	}

	nk = nv = not_a_marker;
	CHECK(s3_xml_parse_versions("<ListVersionsResult/>", 21, NULL, &nk,
				    &nv) == DMFS_ERR_INVAL);
	CHECK(nk == NULL && nv == NULL);
}

/* No DTD, whatever the document. */
static void test_versions_hostile_dtd(void)
{
	VERSIONS_FAILS(
	    "<?xml version=\"1.0\"?>\n"
	    "<!DOCTYPE lolz [\n"
	    " <!ENTITY lol \"lol\">\n"
	    " <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
	    "]>\n"
	    "<ListVersionsResult><Version><Key>&lol2;</Key>"
	    "<VersionId>v</VersionId></Version></ListVersionsResult>",
	    DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS(
	    "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
	    "<ListVersionsResult><Version><Key>&x;</Key>"
	    "<VersionId>v</VersionId></Version>"
	    "</ListVersionsResult>",
	    DMFS_ERR_PROTOCOL);
	VERSIONS_FAILS("<!DOCTYPE ListVersionsResult><ListVersionsResult/>",
		       DMFS_ERR_PROTOCOL);
}

/* --- errors -------------------------------------------------------------- */

static void fill_detail(struct dmfs_err_detail *d)
{
	memset(d, 0, sizeof(*d));
	d->http_status = 503;
	strcpy(d->s3_code, "before");
	strcpy(d->request_id, "HEADER-ID");
	strcpy(d->message, "before message");
}

static void check_error_fails(const char *xml, size_t len, int line)
{
	struct dmfs_err_detail d, orig;
	int rc;

	fill_detail(&d);
	orig = d;
	rc = s3_xml_parse_error(xml, len, &d);
	if (rc != DMFS_ERR_PROTOCOL)
		fprintf(stderr, "  (case at line %d: rc %d)\n", line, rc);
	CHECK(rc == DMFS_ERR_PROTOCOL);
	CHECK(memcmp(&d, &orig, sizeof(d)) == 0);
}

#define ERROR_FAILS(xml) check_error_fails((xml), strlen(xml), __LINE__)

static void test_error_bodies(void)
{
	/* AWS "Error responses" sample. */
	static const char nosuchkey[] = XML_DECL
	    "<Error>\n"
	    "  <Code>NoSuchKey</Code>\n"
	    "  <Message>The resource you requested does not exist</Message>\n"
	    "  <Resource>/mybucket/myfoto.jpg</Resource> \n"
	    "  <RequestId>4442587FB7D0A2F9</RequestId>\n"
	    "</Error>";
	static const char slowdown[] = XML_DECL
	    "<Error><Code>SlowDown</Code>"
	    "<Message>Please reduce your request rate.</Message>"
	    "<RequestId>7K2D9S3BV4JQH1NZ</RequestId>"
	    "<HostId>jX1n3Lp6C+ZdVq0u2f/RkQ8wT5yE9mO7aHbGcI4sN=</HostId>"
	    "</Error>";
	static const char denied[] =
	    "<Error xmlns=\"" S3_NS "\"><Code>AccessDenied</Code>"
	    "<Message>Access Denied &amp; &lt;logged&gt;</Message>"
	    "<Details><Code>Nested</Code><RequestId>no</RequestId>"
	    "</Details>"
	    "<RequestId>\n  A1B2C3D4E5F6A7B8  \n</RequestId></Error>";
	struct dmfs_err_detail d;

	fill_detail(&d);
	CHECK(s3_xml_parse_error(nosuchkey, strlen(nosuchkey), &d) == 0);
	CHECK_STR(d.s3_code, "NoSuchKey");
	CHECK_STR(d.message, "The resource you requested does not exist");
	CHECK_STR(d.request_id, "4442587FB7D0A2F9");
	CHECK(d.http_status == 503);

	fill_detail(&d);
	CHECK(s3_xml_parse_error(slowdown, strlen(slowdown), &d) == 0);
	CHECK_STR(d.s3_code, "SlowDown");
	CHECK_STR(d.message, "Please reduce your request rate.");
	CHECK_STR(d.request_id, "7K2D9S3BV4JQH1NZ");

	fill_detail(&d);
	CHECK(s3_xml_parse_error(denied, strlen(denied), &d) == 0);
	CHECK_STR(d.s3_code, "AccessDenied");
	CHECK_STR(d.message, "Access Denied & <logged>");
	CHECK_STR(d.request_id, "A1B2C3D4E5F6A7B8");

	/* A body without RequestId keeps the one from the header. */
	fill_detail(&d);
	CHECK(s3_xml_parse_error("<Error><Code>InternalError</Code></Error>",
				 41, &d) == 0);
	CHECK_STR(d.s3_code, "InternalError");
	CHECK_STR(d.request_id, "HEADER-ID");
	CHECK_STR(d.message, "before message");
}

/* Long fields are cut to their array, never inside a UTF-8 character. */
static void test_error_truncation(void)
{
	struct sbuf b = {0};
	struct dmfs_err_detail d;
	size_t len;

	sb_printf(&b, "<Error><Code>");
	for (int i = 0; i < 100; i++)
		sb_printf(&b, "C");
	sb_printf(&b, "</Code><Message>");
	/* 2 * 20000 bytes: over the text buffer too. */
	for (int i = 0; i < 20000; i++)
		sb_printf(&b, "\xc3\xa9");
	sb_printf(&b, "</Message><RequestId>");
	for (int i = 0; i < 500; i++)
		sb_printf(&b, "&amp;");
	sb_printf(&b, "</RequestId></Error>");

	fill_detail(&d);
	CHECK(s3_xml_parse_error(b.s, b.len, &d) == 0);
	CHECK(strlen(d.s3_code) == sizeof(d.s3_code) - 1);
	len = strlen(d.message);
	/* 255 bytes would split an "é": 254 are 127 whole ones... */
	CHECK(len == 254);
	/* ...or, said otherwise, the last byte ends a character. */
	CHECK(len >= 2 && (unsigned char)d.message[len - 2] == 0xc3 &&
	      (unsigned char)d.message[len - 1] == 0xa9);
	CHECK(strlen(d.request_id) == sizeof(d.request_id) - 1);
	CHECK(d.request_id[0] == '&');
	free(b.s);
}

static void test_bad_error_bodies(void)
{
	check_error_fails("", 0, __LINE__);
	check_error_fails(NULL, 0, __LINE__);
	ERROR_FAILS("   \n");
	ERROR_FAILS("<ListBucketResult/>");
	ERROR_FAILS("<html><body>Service Unavailable</body></html>");
	ERROR_FAILS("<Error><Code>NoSuchKey</Code>");
	ERROR_FAILS("<Error><Code>NoSuchKey</Code></Eror>");
	ERROR_FAILS("<Error><Message>no code</Message></Error>");
	ERROR_FAILS("<Error><Code> </Code></Error>");
	ERROR_FAILS("<Error><Details><Code>Nested</Code></Details></Error>");
	ERROR_FAILS("<!DOCTYPE Error [<!ENTITY e \"SlowDown\">]>"
		    "<Error><Code>&e;</Code></Error>");
	CHECK(s3_xml_parse_error("<Error/>", 8, NULL) == DMFS_ERR_INVAL);
}

/* --- VersioningConfiguration --------------------------------------------- */

static int versioning(const char *xml)
{
	int enabled = 42;
	int rc = s3_xml_parse_versioning(xml, strlen(xml), &enabled);

	return rc ? -rc : enabled;
}

static void test_versioning(void)
{
	/* AWS GetBucketVersioning samples. */
	CHECK(versioning(XML_DECL "<VersioningConfiguration xmlns=\"" S3_NS
				  "\">\n  <Status>Enabled</Status>\n"
				  "</VersioningConfiguration>") == 1);
	CHECK(versioning("<VersioningConfiguration xmlns=\"" S3_NS "\">"
			 "<Status>Suspended</Status>"
			 "</VersioningConfiguration>") == 0);
	/* Never versioned: an empty configuration, in every spelling. */
	CHECK(versioning(XML_DECL "<VersioningConfiguration xmlns=\"" S3_NS
				  "\"/>") == 0);
	CHECK(versioning("<VersioningConfiguration>"
			 "</VersioningConfiguration>") == 0);
	CHECK(versioning("<VersioningConfiguration><Status/>"
			 "</VersioningConfiguration>") == 0);
	/* MFA delete, blanks, a prefix, no namespace. */
	CHECK(versioning("<VersioningConfiguration><MfaDelete>Disabled"
			 "</MfaDelete><Status>\n Enabled \n</Status>"
			 "</VersioningConfiguration>") == 1);
	CHECK(versioning("<s3:VersioningConfiguration xmlns:s3=\"" S3_NS "\">"
			 "<s3:Status>Enabled</s3:Status>"
			 "</s3:VersioningConfiguration>") == 1);
	CHECK(versioning("<s3:VersioningConfiguration xmlns:s3=\"" S3_NS "\">"
			 "<s3:Status>Suspended</s3:Status>"
			 "</s3:VersioningConfiguration>") == 0);
	/* A Status elsewhere is not the bucket's. */
	CHECK(versioning("<VersioningConfiguration><Rule><Status>Enabled"
			 "</Status></Rule></VersioningConfiguration>") == 0);

	/* Unknown states, repeats, other documents, garbage. */
	CHECK(versioning("<VersioningConfiguration><Status>enabled</Status>"
			 "</VersioningConfiguration>") == -DMFS_ERR_PROTOCOL);
	CHECK(versioning("<VersioningConfiguration><Status>On</Status>"
			 "</VersioningConfiguration>") == -DMFS_ERR_PROTOCOL);
	CHECK(versioning("<VersioningConfiguration><Status>Suspended</Status>"
			 "<Status>Enabled</Status>"
			 "</VersioningConfiguration>") == -DMFS_ERR_PROTOCOL);
	CHECK(versioning("<Error><Code>AccessDenied</Code></Error>") ==
	      -DMFS_ERR_PROTOCOL);
	CHECK(versioning("<VersioningConfiguration><Status>Enabled</Status>") ==
	      -DMFS_ERR_PROTOCOL);
	CHECK(versioning("") == -DMFS_ERR_PROTOCOL);
	CHECK(versioning("Enabled") == -DMFS_ERR_PROTOCOL);
	CHECK(versioning("<html><body>Bad Gateway</body></html>") ==
	      -DMFS_ERR_PROTOCOL);
	CHECK(versioning("<!DOCTYPE v [<!ENTITY e \"Enabled\">]>"
			 "<VersioningConfiguration><Status>&e;</Status>"
			 "</VersioningConfiguration>") == -DMFS_ERR_PROTOCOL);
	CHECK(s3_xml_parse_versioning("<VersioningConfiguration/>", 26, NULL) ==
	      DMFS_ERR_INVAL);

	/* A failed parse leaves *enabled as it was. */
	{
		static const char bad[] = "<VersioningConfiguration>"
					  "<Status>Enabled</Status>"
					  "<Status>Enabled</Status>"
					  "</VersioningConfiguration>";
		int enabled = 42;

		CHECK(s3_xml_parse_versioning(bad, strlen(bad), &enabled) ==
		      DMFS_ERR_PROTOCOL);
		CHECK(enabled == 42);
	}
}

/* --- CopyObjectResult ---------------------------------------------------- */

static int copy_result(const char *xml, char *etag, size_t etagsz,
		       struct dmfs_err_detail *d)
{
	return s3_xml_parse_copy_result(xml, xml ? strlen(xml) : 0, etag,
					etagsz, d);
}

/* Not a copy result and not an error: PROTOCOL, nothing written. */
static void check_copy_garbage(const char *xml, int want, int line)
{
	struct dmfs_err_detail d, orig;
	char etag[DMFS_ETAG_MAX] = "stale";
	int rc;

	fill_detail(&d);
	orig = d;
	rc = copy_result(xml, etag, sizeof(etag), &d);
	if (rc != want)
		fprintf(stderr, "  (case at line %d: rc %d, want %d)\n", line,
			rc, want);
	CHECK(rc == want);
	CHECK_STR(etag, "");
	CHECK(memcmp(&d, &orig, sizeof(d)) == 0);
}

#define COPY_FAILS(xml, want) check_copy_garbage((xml), (want), __LINE__)

/* UploadPartCopy: a CopyPartResult is the answer, a CopyObjectResult or
 * an <Error> after 200 is not. */
static void test_copy_part(void)
{
	static const char ok[] =
	    XML_DECL "<CopyPartResult xmlns=\"" S3_NS "\">\n"
		     "  <LastModified>2011-04-11T20:34:56.000Z</LastModified>\n"
		     "  <ETag>\"9b2cf535f27731c974343645a3985328\"</ETag>\n"
		     "</CopyPartResult>";
	static const char failed[] =
	    XML_DECL "<Error><Code>PreconditionFailed</Code><Message>At "
		     "least one of the pre-conditions you specified did not "
		     "hold</Message><RequestId>r1</RequestId></Error>";
	struct dmfs_err_detail d;
	char etag[DMFS_ETAG_MAX] = "stale";

	fill_detail(&d);
	CHECK(s3_xml_parse_copy_part(ok, strlen(ok), etag, sizeof(etag),
				     &d) == 0);
	CHECK_STR(etag, "9b2cf535f27731c974343645a3985328");
	strcpy(etag, "stale");
	memset(&d, 0, sizeof(d));
	CHECK(s3_xml_parse_copy_part(failed, strlen(failed), etag,
				     sizeof(etag), &d) == DMFS_ERR_SERVER);
	CHECK_STR(d.s3_code, "PreconditionFailed");
	CHECK_STR(etag, "");
	/* The answer of another request, an empty body, no ETag. */
	static const char *const bad[] = {
	    "<CopyObjectResult><ETag>\"x\"</ETag></CopyObjectResult>", "",
	    "<CopyPartResult></CopyPartResult>",
	    "<CopyPartResult><ETag>\"a\"</ETag><ETag>\"b\"</ETag>"
	    "</CopyPartResult>"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(etag, "stale");
		memset(&d, 0, sizeof(d));
		CHECK(s3_xml_parse_copy_part(bad[i], strlen(bad[i]), etag,
					     sizeof(etag), &d) ==
		      DMFS_ERR_PROTOCOL);
		CHECK_STR(etag, "");
	}
}

static void test_copy_result(void)
{
	/* AWS CopyObject sample response. */
	static const char ok[] =
	    XML_DECL "<CopyObjectResult>\n"
		     "   <LastModified>2009-10-28T22:32:00</LastModified>\n"
		     "   <ETag>\"9b2cf535f27731c974343645a3985328\"</ETag>\n"
		     "</CopyObjectResult>";
	struct dmfs_err_detail d, orig;
	char etag[DMFS_ETAG_MAX] = "stale";
	char small[8];

	fill_detail(&d);
	orig = d;
	CHECK(copy_result(ok, etag, sizeof(etag), &d) == 0);
	CHECK_STR(etag, "9b2cf535f27731c974343645a3985328");
	CHECK(memcmp(&d, &orig, sizeof(d)) == 0);

	strcpy(etag, "stale");
	CHECK(copy_result("<CopyObjectResult xmlns=\"" S3_NS "\">"
			  "<LastModified>2024-01-01T00:00:00.000Z"
			  "</LastModified>"
			  "<ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;"
			  "</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32>"
			  "</CopyObjectResult>",
			  etag, sizeof(etag), &d) == 0);
	CHECK_STR(etag, "d41d8cd98f00b204e9800998ecf8427e");
	strcpy(etag, "stale");
	CHECK(copy_result("<s3:CopyObjectResult xmlns:s3=\"" S3_NS "\">"
			  "<s3:ETag>&#34;abc-2&#34;</s3:ETag>"
			  "</s3:CopyObjectResult>",
			  etag, sizeof(etag), &d) == 0);
	CHECK_STR(etag, "abc-2");

	/* The buffer bounds the ETag: 7 characters fit in 8 bytes. */
	CHECK(copy_result("<CopyObjectResult><ETag>\"1234567\"</ETag>"
			  "</CopyObjectResult>",
			  small, sizeof(small), &d) == 0);
	CHECK_STR(small, "1234567");
	strcpy(small, "stale");
	CHECK(copy_result("<CopyObjectResult><ETag>\"12345678\"</ETag>"
			  "</CopyObjectResult>",
			  small, sizeof(small), &d) == DMFS_ERR_TOO_BIG);
	CHECK_STR(small, "");
	CHECK(memcmp(&d, &orig, sizeof(d)) == 0);

	CHECK(copy_result(ok, NULL, 0, &d) == DMFS_ERR_INVAL);
	CHECK(copy_result(ok, etag, 0, &d) == DMFS_ERR_INVAL);
	CHECK(copy_result(ok, etag, sizeof(etag), NULL) == DMFS_ERR_INVAL);
}

/* "200 OK" and yet the copy failed: the error is in the body. */
static void test_copy_200_with_error(void)
{
	static const char internal[] = XML_DECL
	    "<Error>\n"
	    "  <Code>InternalError</Code>\n"
	    "  <Message>We encountered an internal error. Please try again."
	    "</Message>\n"
	    "  <RequestId>656c76696e6727732072657175657374</RequestId>\n"
	    "  <HostId>Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtRPfTaOFg=="
	    "</HostId>\n"
	    "</Error>";
	struct dmfs_err_detail d;
	char etag[DMFS_ETAG_MAX] = "stale";

	fill_detail(&d);
	CHECK(copy_result(internal, etag, sizeof(etag), &d) == DMFS_ERR_SERVER);
	CHECK_STR(etag, "");
	CHECK_STR(d.s3_code, "InternalError");
	CHECK_STR(d.message,
		  "We encountered an internal error. Please try again.");
	CHECK_STR(d.request_id, "656c76696e6727732072657175657374");
	CHECK(d.http_status == 503); /* not the parser's to change */

	fill_detail(&d);
	strcpy(etag, "stale");
	CHECK(copy_result("<Error xmlns=\"" S3_NS "\"><Code>SlowDown</Code>"
			  "</Error>",
			  etag, sizeof(etag), &d) == DMFS_ERR_SERVER);
	CHECK_STR(d.s3_code, "SlowDown");
	CHECK_STR(d.request_id, "HEADER-ID");
	CHECK_STR(etag, "");

	/* An ETag inside the error does not make it a success. */
	fill_detail(&d);
	strcpy(etag, "stale");
	CHECK(copy_result("<Error><Code>InternalError</Code>"
			  "<ETag>\"abc\"</ETag></Error>",
			  etag, sizeof(etag), &d) == DMFS_ERR_SERVER);
	CHECK_STR(etag, "");

	/* An error that says nothing is no error we can report. */
	COPY_FAILS("<Error><Message>no code</Message></Error>",
		   DMFS_ERR_PROTOCOL);
	COPY_FAILS("<Error><Code>InternalError</Code>", DMFS_ERR_PROTOCOL);
	COPY_FAILS("<!DOCTYPE Error [<!ENTITY c \"InternalError\">]>"
		   "<Error><Code>&c;</Code></Error>",
		   DMFS_ERR_PROTOCOL);
}

static void test_copy_garbage(void)
{
	static const char good[] =
	    "<CopyObjectResult><ETag>\"abc\"</ETag></CopyObjectResult>";

	COPY_FAILS(NULL, DMFS_ERR_PROTOCOL);
	COPY_FAILS("", DMFS_ERR_PROTOCOL);
	COPY_FAILS("OK", DMFS_ERR_PROTOCOL);
	COPY_FAILS("<html><body>200 OK</body></html>", DMFS_ERR_PROTOCOL);
	COPY_FAILS("<ListBucketResult/>", DMFS_ERR_PROTOCOL);
	COPY_FAILS("<CopyPartResult><ETag>\"abc\"</ETag></CopyPartResult>",
		   DMFS_ERR_PROTOCOL);
	COPY_FAILS("<CopyObjectResult/>", DMFS_ERR_PROTOCOL);
	COPY_FAILS("<CopyObjectResult><LastModified>2009-10-28T22:32:00"
		   "</LastModified></CopyObjectResult>",
		   DMFS_ERR_PROTOCOL);
	COPY_FAILS("<CopyObjectResult><ETag>\"\"</ETag></CopyObjectResult>",
		   DMFS_ERR_PROTOCOL);
	COPY_FAILS("<CopyObjectResult><ETag>a</ETag><ETag>b</ETag>"
		   "</CopyObjectResult>",
		   DMFS_ERR_PROTOCOL);
	COPY_FAILS("<CopyObjectResult><Owner><ETag>a</ETag></Owner>"
		   "</CopyObjectResult>",
		   DMFS_ERR_PROTOCOL);
	COPY_FAILS("<!DOCTYPE CopyObjectResult [<!ENTITY e \"abc\">]>"
		   "<CopyObjectResult><ETag>&e;</ETag></CopyObjectResult>",
		   DMFS_ERR_PROTOCOL);
	COPY_FAILS("<CopyObjectResult><ETag>\"0123456789012345678901234567890"
		   "1234567890123456789012345678901234567890123456789\"</ETag>"
		   "</CopyObjectResult>",
		   DMFS_ERR_TOO_BIG);
	/* Every cut of a good answer, including one after its ETag. */
	for (size_t cut = 0; cut < sizeof(good) - 1; cut++) {
		struct dmfs_err_detail d, orig;
		char etag[DMFS_ETAG_MAX] = "stale";
		int rc;

		fill_detail(&d);
		orig = d;
		rc =
		    s3_xml_parse_copy_result(good, cut, etag, sizeof(etag), &d);
		if (rc != DMFS_ERR_PROTOCOL)
			fprintf(stderr, "  cut at %zu: rc %d\n", cut, rc);
		CHECK(rc == DMFS_ERR_PROTOCOL);
		CHECK_STR(etag, "");
		CHECK(memcmp(&d, &orig, sizeof(d)) == 0);
	}
}

/* --- time ---------------------------------------------------------------- */

static void test_time(void)
{
	CHECK(s3_xml_parse_time("2009-10-12T17:50:30.000Z") == 1255369830);
	CHECK(s3_xml_parse_time("2009-10-12T17:50:30Z") == 1255369830);
	CHECK(s3_xml_parse_time("2009-10-12T17:50:30.5Z") == 1255369830);
	CHECK(s3_xml_parse_time("2009-10-12T17:50:30.123456789Z") ==
	      1255369830);
	CHECK(s3_xml_parse_time("2013-09-17T18:07:53.000Z") == 1379441273);
	CHECK(s3_xml_parse_time("1970-01-01T00:00:00Z") == 0);
	CHECK(s3_xml_parse_time("2000-01-01T00:00:00.000Z") == 946684800);
	CHECK(s3_xml_parse_time("2024-02-29T12:00:00Z") == 1709208000);
	CHECK(s3_xml_parse_time("9999-12-31T23:59:59Z") == 253402300799LL);

	CHECK(s3_xml_parse_time(NULL) == -1);
	CHECK(s3_xml_parse_time("") == -1);
	CHECK(s3_xml_parse_time("2009-10-12") == -1);
	CHECK(s3_xml_parse_time("2009-10-12T17:50:30") == -1);
	CHECK(s3_xml_parse_time("2009-10-12T17:50:30.Z") == -1);
	CHECK(s3_xml_parse_time("2009-10-12T17:50:30.000") == -1);
	CHECK(s3_xml_parse_time("2009-10-12T17:50:30Zjunk") == -1);
	CHECK(s3_xml_parse_time("2009-10-12 17:50:30Z") == -1);
	CHECK(s3_xml_parse_time("2009-10-12T17:50:30+02:00") == -1);
	CHECK(s3_xml_parse_time(" 2009-10-12T17:50:30Z") == -1);
	CHECK(s3_xml_parse_time("+009-10-12T17:50:30Z") == -1);
	CHECK(s3_xml_parse_time("2009-1-12T17:50:30Z") == -1);
	CHECK(s3_xml_parse_time("2009-00-12T17:50:30Z") == -1);
	CHECK(s3_xml_parse_time("2009-13-12T17:50:30Z") == -1);
	CHECK(s3_xml_parse_time("2009-10-00T17:50:30Z") == -1);
	CHECK(s3_xml_parse_time("2009-10-32T17:50:30Z") == -1);
	CHECK(s3_xml_parse_time("2009-02-29T17:50:30Z") == -1);
	CHECK(s3_xml_parse_time("2100-02-29T00:00:00Z") == -1);
	CHECK(s3_xml_parse_time("2009-04-31T17:50:30Z") == -1);
	CHECK(s3_xml_parse_time("2009-10-12T24:00:00Z") == -1);
	CHECK(s3_xml_parse_time("2009-10-12T17:60:30Z") == -1);
	CHECK(s3_xml_parse_time("2009-10-12T17:50:61Z") == -1);
	CHECK(s3_xml_parse_time("2009-10-12t17:50:30z") == -1);
}

int main(void)
{
	test_aws_example_listing();
	test_aws_example_prefix_delimiter();
	test_aws_example_continuation();
	test_keys_with_entities_and_unicode();
	test_namespaces();
	test_nesting();
	test_text_in_pieces();
	test_truncated_listing();
	test_empty_listing();
	test_url_encoding();
	test_key_bounds();
	test_entry_bounds();
	test_etag();
	test_sizes();
	test_bad_listings();
	test_hostile_dtd();
	test_aws_example_versions();
	test_versions_null_and_markers();
	test_versions_url_encoding();
	test_versions_namespaces();
	test_versions_nesting();
	test_versions_in_pieces();
	test_bad_versions();
	test_versions_hostile_dtd();
	test_error_bodies();
	test_error_truncation();
	test_bad_error_bodies();
	test_versioning();
	test_copy_result();
	test_copy_part();
	test_copy_200_with_error();
	test_copy_garbage();
	test_time();
	return unit_done("test_s3_xml");
}
