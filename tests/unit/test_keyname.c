/*
 * test_keyname.c - which keys can be paths and which names may be
 * created: UTF-8 well-formedness (overlongs, surrogates, truncated and
 * stray bytes, the U+10FFFF bound), one component's faults, the hidden
 * unit of a path, the check of a new key, quoting for the log, and the
 * once-per-unit count of hidden keys.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "dmfs/err.h"
#include "dmfs/keyname.h"
#include "unit.h"

static bool utf8(const char *s)
{
	return keyname_utf8_valid(s, strlen(s));
}

static enum keyname_fault check(const char *s)
{
	return keyname_check(s, strlen(s));
}

/* The hidden unit of a path, in a static buffer ("" when none). */
static const char *unit_of(const char *path, enum keyname_fault *f)
{
	static char buf[2048];
	size_t n;

	*f = keyname_check_path(path, &n);
	memcpy(buf, path, n);
	buf[n] = '\0';
	return buf;
}

static void test_utf8(void)
{
	CHECK(utf8(""));
	CHECK(utf8("plain ascii/with slash\n\\"));
	CHECK(utf8("caf\xc3\xa9"));		    /* é */
	CHECK(utf8("\xe2\x82\xac"));		    /* € */
	CHECK(utf8("\xf0\x9f\x98\x80"));	    /* U+1F600 */
	CHECK(utf8("\xf4\x8f\xbf\xbf"));	    /* U+10FFFF */
	CHECK(utf8("\xed\x9f\xbf"));		    /* U+D7FF */
	CHECK(!utf8("\xff"));
	CHECK(!utf8("bad\xfe.txt"));
	CHECK(!utf8("\x80"));			    /* stray continuation */
	CHECK(!utf8("\xc3"));			    /* truncated */
	CHECK(!utf8("\xe2\x82"));		    /* truncated */
	CHECK(!utf8("\xc0\xaf"));		    /* overlong '/' */
	CHECK(!utf8("\xc1\xbf"));		    /* overlong */
	CHECK(!utf8("\xe0\x80\xaf"));		    /* overlong '/' */
	CHECK(!utf8("\xf0\x80\x80\xaf"));	    /* overlong '/' */
	CHECK(!utf8("\xed\xa0\x80"));		    /* surrogate U+D800 */
	CHECK(!utf8("\xf4\x90\x80\x80"));	    /* above U+10FFFF */
	CHECK(!utf8("\xf5\x80\x80\x80"));
	CHECK(!utf8("\xc3\x28"));		    /* bad continuation */
	CHECK(!utf8("caf\xe9"));		    /* Latin-1 é */
	/* Length-bounded: a valid prefix of a longer buffer. */
	CHECK(keyname_utf8_valid("ab\xff", 2));
	CHECK(!keyname_utf8_valid("a\xc3\xa9", 2));
}

static void test_component(void)
{
	char name[300];

	CHECK(check("a") == KEYNAME_OK);
	CHECK(check("...") == KEYNAME_OK);
	CHECK(check(".hidden") == KEYNAME_OK);
	CHECK(check("new\nline") == KEYNAME_OK);
	CHECK(check("back\\slash") == KEYNAME_OK);
	CHECK(check("") == KEYNAME_EMPTY);
	CHECK(check(".") == KEYNAME_DOT);
	CHECK(check("..") == KEYNAME_DOT);
	CHECK(check("bad\xff") == KEYNAME_NOT_UTF8);
	memset(name, 'n', sizeof(name));
	CHECK(keyname_check(name, 255) == KEYNAME_OK);
	CHECK(keyname_check(name, 256) == KEYNAME_TOO_LONG);
	CHECK(strcmp(keyname_fault_str(KEYNAME_DOT), "unknown") != 0);
}

static void test_path(void)
{
	enum keyname_fault f;
	char k[1100];

	CHECK_STR(unit_of("a/b/c", &f), "");
	CHECK(f == KEYNAME_OK);
	CHECK_STR(unit_of("trail/", &f), ""); /* a directory marker */
	CHECK(f == KEYNAME_OK);
	CHECK_STR(unit_of("a/../b", &f), "a/../");
	CHECK(f == KEYNAME_DOT);
	CHECK_STR(unit_of("../up", &f), "../");
	CHECK_STR(unit_of("./x", &f), "./");
	CHECK_STR(unit_of("x/./y", &f), "x/./");
	CHECK_STR(unit_of("a//b", &f), "a//");
	CHECK(f == KEYNAME_EMPTY);
	CHECK_STR(unit_of("//lead", &f), "/");
	CHECK_STR(unit_of("/lead", &f), "/");
	CHECK_STR(unit_of("a//", &f), "a//");
	CHECK_STR(unit_of(".", &f), ".");
	CHECK_STR(unit_of("..", &f), "..");
	CHECK_STR(unit_of("x/..", &f), "x/..");
	CHECK_STR(unit_of("ok/bad\xff.txt", &f), "ok/bad\xff.txt");
	CHECK(f == KEYNAME_NOT_UTF8);
	CHECK_STR(unit_of("bad\xfe/inner", &f), "bad\xfe/");
	/* A 1 019-byte key of components up to 214 bytes is a path. */
	memset(k, 'k', 1019);
	k[1019] = '\0';
	for (int i = 200; i < 1019; i += 201)
		k[i] = '/';
	CHECK_STR(unit_of(k, &f), "");
	CHECK(f == KEYNAME_OK);
	/* One of 300 bytes is not. */
	memcpy(k, "long/", 5);
	memset(k + 5, 'n', 300);
	memcpy(k + 305, "/x", 3);
	unit_of(k, &f);
	CHECK(f == KEYNAME_TOO_LONG);
	size_t n;
	keyname_check_path(k, &n);
	CHECK(n == 306);
}

static void test_new(void)
{
	char msg[256], k[1100];

	CHECK(keyname_check_new("a/b.txt", msg, sizeof(msg)) == 0);
	CHECK(keyname_check_new("caf\xc3\xa9/new\nline", msg, sizeof(msg)) ==
	      0);
	msg[0] = '\0';
	CHECK(keyname_check_new("dir/bad\xff", msg, sizeof(msg)) ==
	      DMFS_ERR_BAD_NAME);
	CHECK(strstr(msg, "dir/bad\\xff") != NULL);
	CHECK(strstr(msg, "UTF-8") != NULL);
	CHECK(dmfs_err_to_errno(DMFS_ERR_BAD_NAME) == EILSEQ);
	memset(k, 'k', 1025);
	k[1025] = '\0';
	CHECK(keyname_check_new(k, msg, sizeof(msg)) ==
	      DMFS_ERR_NAME_TOO_LONG);
	CHECK(dmfs_err_to_errno(DMFS_ERR_NAME_TOO_LONG) == ENAMETOOLONG);
	/* 1024 bytes in components of at most 255: fine. */
	for (int i = 200; i < 1024; i += 201)
		k[i] = '/';
	k[1024] = '\0';
	CHECK(keyname_check_new(k, msg, sizeof(msg)) == 0);
	/* One component over 255 bytes (what listings would hide): no. */
	memset(k, 'n', 300);
	memcpy(k, "dir/", 4);
	k[259] = '\0'; /* "dir/" + 255 */
	CHECK(keyname_check_new(k, msg, sizeof(msg)) == 0);
	k[259] = 'n';
	k[260] = '\0'; /* "dir/" + 256 */
	CHECK(keyname_check_new(k, msg, sizeof(msg)) ==
	      DMFS_ERR_NAME_TOO_LONG);
	CHECK(strstr(msg, "256 bytes") != NULL);
	memcpy(k + 260, "/x", 3); /* not only the last component */
	CHECK(keyname_check_new(k, msg, sizeof(msg)) ==
	      DMFS_ERR_NAME_TOO_LONG);
}

static void test_quote(void)
{
	char out[64];

	keyname_quote("a/../b", 6, out, sizeof(out));
	CHECK_STR(out, "a/../b");
	keyname_quote("new\nline\\\xff\xc3\xa9", 12, out, sizeof(out));
	CHECK_STR(out, "new\\x0aline\\x5c\\xff\xc3\xa9");
	keyname_quote("abcdef", 6, out, 4); /* cut, still terminated */
	CHECK_STR(out, "abc");
	keyname_quote("\xff\xff", 2, out, 6); /* no half escape */
	CHECK_STR(out, "\\xff");
}

static void test_hidden_count(void)
{
	uint64_t c0 = keyname_hidden_count();

	keyname_note_hidden("a/../", 5, "test");
	keyname_note_hidden("a/../", 5, "test");
	CHECK(keyname_hidden_count() == c0 + 1);
	keyname_note_hidden("a//", 3, "test");
	CHECK(keyname_hidden_count() == c0 + 2);
	keyname_note_hidden("a//b", 3, "test"); /* the same unit */
	CHECK(keyname_hidden_count() == c0 + 2);
}

int main(void)
{
	test_utf8();
	test_component();
	test_path();
	test_new();
	test_quote();
	test_hidden_count();
	return unit_done("test_keyname");
}
