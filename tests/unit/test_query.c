/*
 * test_query.c - the query language: every operator on a sample row,
 * precedence and parentheses, null semantics, type errors (at evaluation
 * and from query_check), int/float comparison, unicode strings and
 * backticked field names, syntax errors with their exact positions and
 * caret lines, the normalised text and its round trip, the list of
 * fields, and percent-decoding of ad-hoc query directory names.
 */
#include "config.h"

#include <stdlib.h>

#include "dmfs/err.h"
#include "dmfs/query.h"
#include "unit.h"

static char msg[400];

/* A row: fields and their values, ended by a NULL name. */
struct kv {
	const char *k;
	struct mval v;
};

#define STR(x)                                                                 \
	{                                                                      \
		.t = MV_STRING, .s = (char *)(x), .len = sizeof(x) - 1         \
	}

static struct kv row1[] = {
    {"label", STR("cat")},
    {"episode", {.t = MV_INT, .i = 7}},
    {"score", {.t = MV_FLOAT, .f = 0.5}},
    {"flag", {.t = MV_BOOL, .b = true}},
    {"off", {.t = MV_BOOL, .b = false}},
    {"path", STR("a/b/c.jpg")},
    {"name", STR("caf\xc3\xa9")},
    {"emoji", STR("\xf0\x9f\x98\x80")},
    {"my \"field\"", STR("x")},
    {"a`b", {.t = MV_INT, .i = 1}},
    {"data", {.t = MV_BLOB, .s = "\x00\x01z", .len = 3}},
    {"x", {.t = MV_INT, .i = 1}},
    {"star", STR("*.txt")},
    {"nothing", {.t = MV_NULL}},
    {NULL, {0}},
};

static int get_row(void *row, const char *field, const struct mval **out)
{
	for (struct kv *kv = row; kv->k; kv++) {
		if (strcmp(kv->k, field) == 0) {
			*out = &kv->v;
			return 0;
		}
	}
	*out = NULL;
	return 0;
}

static int get_fails(void *row, const char *field, const struct mval **out)
{
	*out = NULL;
	return DMFS_ERR_IO;
}

/* 1 match, 0 no match, -1 parse error, -2 evaluation error (msg). */
static int eval(const char *expr)
{
	struct query *q;
	bool m = false;
	int rc;

	msg[0] = '\0';
	if (query_parse(expr, &q, msg, sizeof(msg)))
		return -1;
	rc = query_eval(q, get_row, row1, &m, msg, sizeof(msg));
	query_free(q);
	if (rc)
		return -2;
	return m ? 1 : 0;
}

/* The parse error of expr ("" when it parses). */
static const char *parse_error(const char *expr)
{
	struct query *q = NULL;

	msg[0] = '\0';
	if (query_parse(expr, &q, msg, sizeof(msg)) == 0) {
		query_free(q);
		return "";
	}
	return msg;
}

/* The normalised text of expr, checking that it parses back to the
 * same text.  Static buffer. */
static const char *norm(const char *expr)
{
	static char buf[512];
	struct query *q, *q2;

	if (query_parse(expr, &q, msg, sizeof(msg))) {
		snprintf(buf, sizeof(buf), "ERROR %s", msg);
		return buf;
	}
	snprintf(buf, sizeof(buf), "%s", query_text(q));
	query_free(q);
	if (query_parse(buf, &q2, msg, sizeof(msg))) {
		fprintf(stderr, "normalised text does not parse: %s\n%s\n", buf,
			msg);
		return "ERROR round trip";
	}
	if (strcmp(query_text(q2), buf) != 0) {
		fprintf(stderr, "round trip changed %s into %s\n", buf,
			query_text(q2));
		query_free(q2);
		return "ERROR round trip";
	}
	query_free(q2);
	return buf;
}

static void test_operators(void)
{
	CHECK(eval("label == \"cat\"") == 1);
	CHECK(eval("label == 'cat'") == 1);
	CHECK(eval("label == \"dog\"") == 0);
	CHECK(eval("label != \"cat\"") == 0);
	CHECK(eval("label != \"dog\"") == 1);
	CHECK(eval("label < \"dog\"") == 1);
	CHECK(eval("label > \"ca\"") == 1);
	CHECK(eval("episode > 5") == 1);
	CHECK(eval("episode > 7") == 0);
	CHECK(eval("episode >= 7") == 1);
	CHECK(eval("episode < 7") == 0);
	CHECK(eval("episode <= 7") == 1);
	CHECK(eval("episode == -7") == 0);
	CHECK(eval("episode > -8") == 1);
	CHECK(eval("episode>5") == 1);
	CHECK(eval("label contains \"a\"") == 1);
	CHECK(eval("label contains \"\"") == 1);
	CHECK(eval("label contains \"dog\"") == 0);
	CHECK(eval("label startswith \"ca\"") == 1);
	CHECK(eval("label startswith \"at\"") == 0);
	/* glob with flags 0: '*' crosses '/'. */
	CHECK(eval("path glob \"*.jpg\"") == 1);
	CHECK(eval("path glob \"a/*\"") == 1);
	CHECK(eval("path glob \"a/?/c.[jp]pg\"") == 1);
	CHECK(eval("path glob \"*.png\"") == 0);
	/* A backslash (\\ in the query) quotes a glob character. */
	CHECK(eval("star glob \"\\\\*.txt\"") == 1);
	CHECK(eval("path glob \"\\\\*.jpg\"") == 0);
	CHECK(eval("label is not null") == 1);
	CHECK(eval("label is null") == 0);
	CHECK(eval("flag") == 1);
	CHECK(eval("off") == 0);
	CHECK(eval("flag == true") == 1);
	CHECK(eval("flag != false") == 1);
	CHECK(eval("off == false") == 1);
	/* Symbols and keywords in any case. */
	CHECK(eval("label == \"cat\" & episode > 5") == 1);
	CHECK(eval("label == \"dog\" | episode > 5") == 1);
	CHECK(eval("~flag") == 0);
	CHECK(eval("~ ~flag") == 1);
	CHECK(eval("label == \"cat\" AND NOT split IS NOT NULL") == 1);
	CHECK(eval("label CONTAINS 'a' Or episode < 0") == 1);
	CHECK(eval("flag == TRUE") == 1);
	/* Blobs compare bytewise with strings. */
	CHECK(eval("data == '\\u0001z'") == 0);
	CHECK(eval("data contains 'z'") == 1);
	CHECK(eval("data > ''") == 1);
}

static void test_numbers(void)
{
	/* int and float compare as numbers. */
	CHECK(eval("episode == 7.0") == 1);
	CHECK(eval("episode > 6.5") == 1);
	CHECK(eval("episode < 7.25") == 1);
	CHECK(eval("score == 0.5") == 1);
	CHECK(eval("score == 5e-1") == 1);
	CHECK(eval("score < 1") == 1);
	CHECK(eval("score > 0") == 1);
	CHECK(eval("score >= 1") == 0);
	CHECK(eval("episode == 7e0") == 1);
}

static void test_precedence(void)
{
	/* or is looser than and: x == 1 or (x == 2 and x == 3). */
	CHECK(eval("x == 1 or x == 2 and x == 3") == 1);
	CHECK(eval("(x == 1 or x == 2) and x == 3") == 0);
	CHECK(eval("x == 3 and x == 2 or x == 1") == 1);
	CHECK(eval("x == 3 and (x == 2 or x == 1)") == 0);
	/* not is looser than a comparison but tighter than and. */
	CHECK(eval("not x == 1 and label == \"cat\"") == 0);
	CHECK(eval("not x == 2 and label == \"cat\"") == 1);
	CHECK(eval("not (x == 1 and label == \"dog\")") == 1);
	CHECK(eval("not x == 1 or flag") == 1);
	CHECK(eval("not (x == 1 or flag)") == 0);
	CHECK(eval("((((x == 1))))") == 1);
	CHECK(eval("episode > 5 and (label == \"cat\" or label contains "
		   "\"yoda\") and not split is null") == 0);
	CHECK(eval("episode > 5 and (label == \"cat\" or label contains "
		   "\"yoda\") and not label is null") == 1);
	CHECK_STR(norm("x == 1 or x == 2 and x == 3"),
		  "x == 1 or x == 2 and x == 3");
	CHECK_STR(norm("(x == 1 or x == 2) and x == 3"),
		  "(x == 1 or x == 2) and x == 3");
	CHECK_STR(norm("not x == 1 and b"), "not x == 1 and b");
	CHECK_STR(norm("not (x == 1 and b)"), "not (x == 1 and b)");
}

static void test_nulls(void)
{
	/* split has no value; nothing is an explicit null. */
	CHECK(eval("split is null") == 1);
	CHECK(eval("split is not null") == 0);
	CHECK(eval("split == \"x\"") == 0);
	CHECK(eval("split != \"x\"") == 1);
	CHECK(eval("split < 3") == 0);
	CHECK(eval("split >= 3") == 0);
	CHECK(eval("split contains \"x\"") == 0);
	CHECK(eval("split startswith \"x\"") == 0);
	CHECK(eval("split glob \"*\"") == 0);
	CHECK(eval("split") == 0);
	CHECK(eval("not split == \"x\"") == 1);
	CHECK(eval("nothing is null") == 1);
	CHECK(eval("nothing != 1") == 1);
	CHECK(eval("nothing == 1") == 0);
}

static enum mval_type types_of(void *ctx, const char *field)
{
	if (strcmp(field, "label") == 0)
		return MV_STRING;
	if (strcmp(field, "episode") == 0)
		return MV_INT;
	if (strcmp(field, "score") == 0)
		return MV_FLOAT;
	return MV_NULL;
}

static int check(const char *expr)
{
	struct query *q;
	int rc;

	msg[0] = '\0';
	if (query_parse(expr, &q, msg, sizeof(msg)))
		return -1;
	rc = query_check(q, types_of, NULL, msg, sizeof(msg));
	query_free(q);
	return rc;
}

static void test_type_errors(void)
{
	struct query *q;
	bool m = true;

	CHECK(eval("label == 5") == -2);
	CHECK_STR(msg, "1:1: label is a string, compared with an int");
	CHECK(eval("x > 0 and label > 3.5") == -2);
	CHECK_STR(msg, "1:11: label is a string, compared with a float");
	CHECK(eval("episode == \"7\"") == -2);
	CHECK_STR(msg, "1:1: episode is an int, compared with a string");
	CHECK(eval("episode contains \"7\"") == -2);
	CHECK_STR(msg, "1:1: episode is an int, compared with a string");
	CHECK(eval("score startswith \"0\"") == -2);
	CHECK(eval("flag glob \"t*\"") == -2);
	CHECK_STR(msg, "1:1: flag is a bool, compared with a string");
	CHECK(eval("flag < 1") == -2);
	CHECK_STR(msg, "1:1: flag is a bool, compared with an int");
	CHECK(eval("episode == true") == -2);
	CHECK_STR(msg, "1:1: episode is an int, compared with a bool");
	CHECK(eval("data glob \"*\"") == -2);
	CHECK_STR(msg, "1:1: data is a blob; glob needs a string");
	CHECK(eval("episode") == -2);
	CHECK(strncmp(msg, "1:1: episode is an int, used as a bool", 38) == 0);
	CHECK(eval("x == 1 and\n  `my \"field\"` == 2") == -2);
	CHECK_STR(msg, "2:3: `my \"field\"` is a string, compared with an int");
	/* Never a silent false, even under not, nor hidden when the
	 * other side of and/or already decides the row. */
	CHECK(eval("not label == 5") == -2);
	CHECK(eval("x == 1 or label == 5") == -2);
	CHECK(eval("x == 2 and label == 5") == -2);
	/* A bool literal cannot be ordered at all: a syntax error. */
	CHECK(eval("flag < true") == -1);

	/* Against known types, before any row. */
	CHECK(check("label == \"cat\" and episode > 2.5 and score < 1") == 0);
	CHECK(check("label == 1") == DMFS_ERR_INVAL);
	CHECK_STR(msg, "1:1: label is a string, compared with an int");
	CHECK(check("unknown == 1 or unknown contains 'x'") == 0);
	CHECK(check("label is null or score contains 'x'") == DMFS_ERR_INVAL);
	CHECK_STR(msg, "1:18: score is a float, compared with a string");
	CHECK(check("episode") == DMFS_ERR_INVAL);

	/* A failing row lookup is passed up. */
	CHECK(query_parse("a == 1", &q, msg, sizeof(msg)) == 0);
	CHECK(query_eval(q, get_fails, NULL, &m, msg, sizeof(msg)) ==
	      DMFS_ERR_IO);
	query_free(q);
}

static void test_unicode(void)
{
	CHECK(eval("name == \"caf\\u00e9\"") == 1);
	CHECK(eval("name == \"caf\\u00E9\"") == 1);
	CHECK(eval("name == 'caf\xc3\xa9'") == 1);
	CHECK(eval("name startswith \"caf\"") == 1);
	CHECK(eval("name contains \"\xc3\xa9\"") == 1);
	CHECK(eval("emoji == \"\\uD83D\\uDE00\"") == 1);
	CHECK(eval("emoji == \"\\ud83d\\ude00\"") == 1);
	CHECK(eval("`my \"field\"` == \"x\"") == 1);
	CHECK(eval("`a``b` == 1") == 1);
	CHECK(eval("`label` == 'cat'") == 1);
	CHECK(eval("path glob '*c.jpg'") == 1);
	CHECK_STR(norm("name == 'caf\\u00e9'"), "name == \"caf\xc3\xa9\"");
	CHECK_STR(norm("emoji == \"\\uD83D\\uDE00\""),
		  "emoji == \"\xf0\x9f\x98\x80\"");
	CHECK_STR(parse_error("a == \"\\uD83D\""),
		  "1:7: \\uD83D is half of a surrogate pair\n"
		  "a == \"\\uD83D\"\n"
		  "      ^");
	CHECK(strncmp(parse_error("a == \"\\uDE00x\""), "1:7: \\uDE00 is half",
		      19) == 0);
	CHECK(strncmp(parse_error("a == \"\\u12\""), "1:7: \\u needs four hex",
		      22) == 0);
	CHECK(strncmp(parse_error("a == \"\\u0000\""), "1:7: \\u0000 (NUL)",
		      17) == 0);
	/* A string literal is UTF-8 text. */
	CHECK(strncmp(parse_error("a == \"caf\xe9\""),
		      "1:6: value is not UTF-8", 23) == 0);
}

static void test_parse_errors(void)
{
	CHECK_STR(parse_error("score >"),
		  "1:8: expected a value after '>'\nscore >\n       ^");
	CHECK_STR(parse_error("score >   "),
		  "1:8: expected a value after '>'\nscore >   \n       ^");
	CHECK_STR(parse_error("(a == 1"),
		  "1:8: expected ')' (to close the '(' at column 1)\n"
		  "(a == 1\n"
		  "       ^");
	CHECK_STR(parse_error("(a == 1 b == 2)"),
		  "1:9: expected ')', not 'b'\n(a == 1 b == 2)\n        ^");
	CHECK_STR(parse_error("a == 1 xyz"),
		  "1:8: unexpected 'xyz'\na == 1 xyz\n       ^");
	CHECK_STR(parse_error("a == 1)"),
		  "1:7: unexpected ')' (no '(' to close)\na == 1)\n      ^");
	CHECK_STR(parse_error("a == 'abc"),
		  "1:6: unterminated string\na == 'abc\n     ^");
	CHECK_STR(parse_error("a == \"ab\\\""),
		  "1:6: unterminated string\na == \"ab\\\"\n     ^");
	CHECK_STR(parse_error("== 3"),
		  "1:1: expected a field name, not '=='\n== 3\n^");
	CHECK_STR(parse_error(""), "1:1: expected a field name\n\n^");
	CHECK_STR(parse_error("a == 1 and"),
		  "1:11: expected a field name\na == 1 and\n          ^");
	CHECK_STR(parse_error("a == 1 and\n  b >< 2"),
		  "2:6: expected a value after '>'\n  b >< 2\n     ^");
	CHECK_STR(parse_error("a == 1\n\tand b >"),
		  "2:9: expected a value after '>'\n\tand b >\n\t       ^");
	CHECK_STR(parse_error("a = 1"),
		  "1:3: unexpected '=' (compare with == or !=)\na = 1\n  ^");
	CHECK_STR(parse_error("a is 1"),
		  "1:6: expected 'null' after 'is'\na is 1\n     ^");
	CHECK_STR(parse_error("a is not"),
		  "1:9: expected 'null' after 'is not'\na is not\n        ^");
	CHECK_STR(parse_error("label \"cat\""),
		  "1:7: expected an operator after 'label'\nlabel \"cat\"\n"
		  "      ^");
	CHECK_STR(parse_error("a contains 5"),
		  "1:12: expected a string after 'contains'\na contains 5\n"
		  "           ^");
	CHECK_STR(parse_error("a == b"),
		  "1:6: expected a value after '==' (a field cannot be "
		  "compared with a field; quote a string)\na == b\n     ^");
	CHECK_STR(parse_error("a == null"),
		  "1:6: a field is compared with null by 'is null' or 'is "
		  "not null', not '=='\na == null\n     ^");
	CHECK_STR(parse_error("a < false"),
		  "1:5: '<' cannot compare bools (true, false)\na < false\n"
		  "    ^");
	CHECK_STR(parse_error("a == \"\\q\""),
		  "1:7: unknown escape '\\q' (use \\n \\t \\r \\\\ \\' \\\" or "
		  "\\uXXXX)\na == \"\\q\"\n      ^");
	CHECK_STR(parse_error("5abc == 1"),
		  "1:1: bad number '5abc'\n5abc == 1\n^");
	CHECK_STR(parse_error("a == 1.5.2"),
		  "1:6: bad number '1.5.2'\na == 1.5.2\n     ^");
	CHECK_STR(parse_error("a == 99999999999999999999"),
		  "1:6: 99999999999999999999 is out of range for an int\n"
		  "a == 99999999999999999999\n     ^");
	CHECK_STR(parse_error("`ab == 1"),
		  "1:1: unterminated field name (a ` without its closing `)\n"
		  "`ab == 1\n^");
	CHECK_STR(parse_error("`` == 1"), "1:1: empty field name\n`` == 1\n^");
	CHECK_STR(parse_error("a == 1 and $"),
		  "1:12: unexpected character '$'\na == 1 and $\n           ^");
	CHECK_STR(parse_error("a == 1 and \xc3\xa9"),
		  "1:12: unexpected character '\xc3\xa9'\na == 1 and "
		  "\xc3\xa9\n           ^");
	CHECK_STR(parse_error("not"), "1:4: expected a field name\nnot\n   ^");
	CHECK_STR(parse_error("()"),
		  "1:2: expected a field name, not ')'\n()\n ^");
	CHECK_STR(parse_error("null == 1"),
		  "1:1: expected a field name, not 'null'\nnull == 1\n^");

	/* Nesting is bounded. */
	{
		char deep[1200];
		size_t n = 0;

		for (int i = 0; i < 300; i++)
			deep[n++] = '(';
		memcpy(deep + n, "a == 1", 6);
		n += 6;
		for (int i = 0; i < 300; i++)
			deep[n++] = ')';
		deep[n] = '\0';
		CHECK(strstr(parse_error(deep), "nested too deeply") != NULL);
		CHECK(strcmp(parse_error(deep + 150), "") != 0);
	}
	/* A small msg buffer is never overrun. */
	{
		struct query *q = NULL;
		char small[8];

		memset(small, 'x', sizeof(small));
		CHECK(query_parse("score >", &q, small, 6) == DMFS_ERR_INVAL);
		CHECK(strcmp(small, "1:8: ") == 0 && small[6] == 'x');
		CHECK(q == NULL);
		CHECK(query_parse("score >", &q, NULL, 0) == DMFS_ERR_INVAL);
	}
}

static void test_normalised(void)
{
	static const char *const round_trips[] = {
	    "a == 1",
	    "  a==1&(b>2|c<3)  ",
	    "NOT (a == 1)",
	    "not not a",
	    "a == 1 or (b == 2 or c == 3)",
	    "(a == 1 and b == 2) and c == 3",
	    "not (a == 1 or b == 2) and c",
	    "x == 1e3 or x == -0.25 or x == 1e300 or x == 5e-324",
	    "`my field` is not null and `and` == 'x' and `a``b` glob '*'",
	    "s == 'tab\\there\\nnew \"q\" \\\\ \\'' or s startswith '\\u0001'",
	    "a.b-c_d contains 'x' or _x is null",
	    "f == TRUE or f != False",
	};

	CHECK_STR(norm("  a==1&(b>2|c<3)  "), "a == 1 and (b > 2 or c < 3)");
	CHECK_STR(norm("NOT (a == 1)"), "not a == 1");
	CHECK_STR(norm("not not a"), "not not a");
	CHECK_STR(norm("((a == 1))"), "a == 1");
	CHECK_STR(norm("a == 1 or (b == 2 or c == 3)"),
		  "a == 1 or b == 2 or c == 3");
	CHECK_STR(norm("a == 1 and (b == 2 or c == 3)"),
		  "a == 1 and (b == 2 or c == 3)");
	CHECK_STR(norm("not (a == 1 or b == 2) and c"),
		  "not (a == 1 or b == 2) and c");
	CHECK_STR(norm("x == 1e3"), "x == 1000.0");
	CHECK_STR(norm("x == 0.1"), "x == 0.1");
	CHECK_STR(norm("x==-7"), "x == -7");
	CHECK_STR(norm("x == 1E21"), "x == 1e+21");
	CHECK_STR(norm("s == 'it\\'s'"), "s == \"it's\"");
	CHECK_STR(norm("s == 'a\\tb\\nc\\r\\\\\"'"),
		  "s == \"a\\tb\\nc\\r\\\\\\\"\"");
	CHECK_STR(norm("s == '\\u001f'"), "s == \"\\u001F\"");
	CHECK_STR(norm("`my field` IS NOT NULL"), "`my field` is not null");
	CHECK_STR(norm("`label` == 'x'"), "label == \"x\"");
	CHECK_STR(norm("`and` == 1"), "`and` == 1");
	CHECK_STR(norm("`NULL` == 1"), "`NULL` == 1");
	CHECK_STR(norm("`1st` == 1"), "`1st` == 1");
	CHECK_STR(norm("`a``b` == 1"), "`a``b` == 1");
	CHECK_STR(norm("`my \"field\"`=='x'"), "`my \"field\"` == \"x\"");
	CHECK_STR(norm("f == TRUE"), "f == true");
	CHECK_STR(norm("a CONTAINS 'x' AND b StartsWith 'y' OR c GLOB 'z'"),
		  "a contains \"x\" and b startswith \"y\" or c glob \"z\"");
	CHECK_STR(norm("~a|b&c"), "not a or b and c");
	CHECK_STR(norm("a ==\n 1"), "a == 1");
	for (size_t i = 0; i < sizeof(round_trips) / sizeof(round_trips[0]);
	     i++)
		CHECK(strncmp(norm(round_trips[i]), "ERROR", 5) != 0);
}

static int collect(void *ctx, const char *field)
{
	char *buf = ctx;

	strcat(buf, field);
	strcat(buf, ";");
	return strcmp(field, "stop") == 0 ? 42 : 0;
}

static void test_fields(void)
{
	struct query *q;
	char got[256] = "";

	CHECK(query_parse("b == 1 or a == 2 and b == 3 or `c d` is null "
			  "or not `a``b`",
			  &q, msg, sizeof(msg)) == 0);
	CHECK(query_fields(q, collect, got) == 0);
	CHECK_STR(got, "b;a;c d;a`b;");
	query_free(q);

	got[0] = '\0';
	CHECK(query_parse("a == 1 or stop == 2 or z == 3", &q, msg,
			  sizeof(msg)) == 0);
	CHECK(query_fields(q, collect, got) == 42);
	CHECK_STR(got, "a;stop;");
	query_free(q);
}

static void test_url_decode(void)
{
	char *s = NULL;

	CHECK(query_url_decode("episode%20%3E%205", &s) == 0);
	CHECK_STR(s, "episode > 5");
	free(s);
	CHECK(query_url_decode("a+b%2b%2Fc", &s) == 0);
	CHECK_STR(s, "a+b+/c");
	free(s);
	CHECK(query_url_decode("name%20%3D%3D%20%22caf%C3%A9%22", &s) == 0);
	CHECK_STR(s, "name == \"caf\xc3\xa9\"");
	free(s);
	CHECK(query_url_decode("", &s) == 0);
	CHECK_STR(s, "");
	free(s);
	s = (char *)"untouched";
	CHECK(query_url_decode("%zz", &s) == DMFS_ERR_INVAL && s == NULL);
	CHECK(query_url_decode("a%4", &s) == DMFS_ERR_INVAL);
	CHECK(query_url_decode("a%", &s) == DMFS_ERR_INVAL);
	CHECK(query_url_decode("a%g0", &s) == DMFS_ERR_INVAL);
	CHECK(query_url_decode("a%00b", &s) == DMFS_ERR_INVAL);
}

int main(void)
{
	test_operators();
	test_numbers();
	test_precedence();
	test_nulls();
	test_type_errors();
	test_unicode();
	test_parse_errors();
	test_normalised();
	test_fields();
	test_url_decode();
	return unit_done("test_query");
}
