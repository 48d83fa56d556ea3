/*
 * test_s3_xml.c - the XML parsers of S3 answers.
 *
 * The listings of examples 1, 3 and 4 and the NoSuchKey error are the
 * sample responses published by AWS (Amazon S3 API Reference,
 * ListObjectsV2 and "Error responses").  The rest is what real keys look
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
	test_error_bodies();
	test_error_truncation();
	test_bad_error_bodies();
	test_time();
	return unit_done("test_s3_xml");
}
