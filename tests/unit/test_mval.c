/*
 * test_mval.c - typed metadata values: type inference from text, parsing
 * as a fixed type, the length limit, JSON both ways (blobs as $base64,
 * big ints), the shortest round-tripping float text, copy, and the order
 * of values (int/float as numbers, strings bytewise).
 */
#include "config.h"

#include <stdlib.h>

#include "dmfs/err.h"
#include "dmfs/mval.h"
#include "unit.h"

static char msg[256];

static enum mval_type infer(const char *text)
{
	struct mval v;
	enum mval_type t;

	if (mval_from_text(text, strlen(text), MV_NULL, &v, msg, sizeof(msg)))
		return (enum mval_type) - 1;
	t = v.t;
	mval_clear(&v);
	return t;
}

/* The text of a value, in a static buffer. */
static const char *text_of(const struct mval *v)
{
	static char buf[256];
	char *s;
	size_t n;

	if (mval_to_text(v, &s, &n))
		return "(nomem)";
	snprintf(buf, sizeof(buf), "%s", s);
	free(s);
	return buf;
}

static void test_infer(void)
{
	struct mval v;

	CHECK(infer("5") == MV_INT);
	CHECK(infer("-12") == MV_INT);
	CHECK(infer("0") == MV_INT);
	CHECK(infer("0.5") == MV_FLOAT);
	CHECK(infer("1e3") == MV_FLOAT);
	CHECK(infer("-2.5E-3") == MV_FLOAT);
	CHECK(infer("true") == MV_BOOL);
	CHECK(infer("false") == MV_BOOL);
	CHECK(infer("True") == MV_STRING);
	CHECK(infer("007") == MV_STRING); /* not a JSON number */
	CHECK(infer("+5") == MV_STRING);
	CHECK(infer("5 ") == MV_STRING);
	CHECK(infer("1.") == MV_STRING);
	CHECK(infer("inf") == MV_STRING);
	CHECK(infer("nan") == MV_STRING);
	CHECK(infer("") == MV_STRING);
	CHECK(infer("cat") == MV_STRING);
	CHECK(infer("caf\xc3\xa9") == MV_STRING);
	CHECK(infer("\xf0\x9f\x90\xb1") == MV_STRING); /* U+1F431 */
	CHECK(infer("caf\xe9") == MV_BLOB);	       /* Latin-1 */
	CHECK(infer("\xc0\xaf") == MV_BLOB);	       /* overlong '/' */
	CHECK(infer("\xed\xa0\x80") == MV_BLOB);       /* surrogate */
	CHECK(infer("\xf4\x90\x80\x80") == MV_BLOB);   /* > U+10FFFF */
	CHECK(infer("\xe2\x82") == MV_BLOB);	       /* truncated */
	/* Beyond int64: a float, as a JSON reader would make it. */
	CHECK(infer("99999999999999999999") == MV_FLOAT);

	/* A NUL byte makes a blob: strings are C strings. */
	CHECK(mval_from_text("a\0b", 3, MV_NULL, &v, msg, sizeof(msg)) == 0);
	CHECK(v.t == MV_BLOB && v.len == 3 && v.s[1] == '\0' && v.s[3] == '\0');
	mval_clear(&v);
	CHECK(v.t == MV_NULL && v.s == NULL);

	CHECK(mval_from_text("9223372036854775807", 19, MV_NULL, &v, msg,
			     sizeof(msg)) == 0);
	CHECK(v.t == MV_INT && v.i == INT64_MAX);
	CHECK(mval_from_text("1e3", 3, MV_NULL, &v, msg, sizeof(msg)) == 0);
	CHECK(v.t == MV_FLOAT && v.f == 1000.0);
	/* Not terminated: only len bytes count. */
	CHECK(mval_from_text("123456", 2, MV_NULL, &v, msg, sizeof(msg)) == 0);
	CHECK(v.t == MV_INT && v.i == 12);
}

static void test_fixed(void)
{
	struct mval v;

	CHECK(mval_from_text("007", 3, MV_INT, &v, msg, sizeof(msg)) == 0);
	CHECK(v.t == MV_INT && v.i == 7);
	CHECK(mval_from_text("5", 1, MV_FLOAT, &v, msg, sizeof(msg)) == 0);
	CHECK(v.t == MV_FLOAT && v.f == 5.0);
	CHECK(mval_from_text("5", 1, MV_STRING, &v, msg, sizeof(msg)) == 0);
	CHECK(v.t == MV_STRING && v.len == 1 && strcmp(v.s, "5") == 0);
	mval_clear(&v);
	CHECK(mval_from_text("true", 4, MV_BOOL, &v, msg, sizeof(msg)) == 0);
	CHECK(v.t == MV_BOOL && v.b);
	CHECK(mval_from_text("abc", 3, MV_BLOB, &v, msg, sizeof(msg)) == 0);
	CHECK(v.t == MV_BLOB && v.len == 3);
	mval_clear(&v);

	msg[0] = '\0';
	CHECK(mval_from_text("cat", 3, MV_INT, &v, msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK_STR(msg, "'cat' is not an int");
	CHECK(mval_from_text("0.5", 3, MV_INT, &v, msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK(mval_from_text("99999999999999999999", 20, MV_INT, &v, msg,
			     sizeof(msg)) == DMFS_ERR_INVAL);
	CHECK_STR(msg, "'99999999999999999999' is not an int (out of range)");
	CHECK(mval_from_text(" 5", 2, MV_INT, &v, msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK(mval_from_text("inf", 3, MV_FLOAT, &v, msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK(mval_from_text("0x10", 4, MV_FLOAT, &v, msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK(mval_from_text("1e999", 5, MV_FLOAT, &v, msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK(mval_from_text("yes", 3, MV_BOOL, &v, msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK_STR(msg, "'yes' is not a bool (true or false)");
	CHECK(mval_from_text("caf\xe9", 4, MV_STRING, &v, msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK(strstr(msg, "UTF-8") != NULL);
}

static void test_limit(void)
{
	char *big = malloc(MVAL_MAX_LEN + 1);
	struct mval v;

	memset(big, 'x', MVAL_MAX_LEN + 1);
	CHECK(mval_from_text(big, MVAL_MAX_LEN, MV_NULL, &v, msg,
			     sizeof(msg)) == 0);
	CHECK(v.t == MV_STRING && v.len == MVAL_MAX_LEN);
	mval_clear(&v);
	CHECK(mval_from_text(big, MVAL_MAX_LEN + 1, MV_NULL, &v, msg,
			     sizeof(msg)) == DMFS_ERR_TOO_BIG);
	CHECK(mval_from_text(big, MVAL_MAX_LEN + 1, MV_BLOB, &v, msg,
			     sizeof(msg)) == DMFS_ERR_TOO_BIG);
	free(big);
}

static void test_type_names(void)
{
	enum mval_type t = MV_NULL;

	CHECK_STR(mval_type_name(MV_INT), "int");
	CHECK_STR(mval_type_name(MV_FLOAT), "float");
	CHECK_STR(mval_type_name(MV_BOOL), "bool");
	CHECK_STR(mval_type_name(MV_STRING), "string");
	CHECK_STR(mval_type_name(MV_BLOB), "blob");
	CHECK_STR(mval_type_name(MV_NULL), "null");
	CHECK(mval_type_parse("blob", &t) == 0 && t == MV_BLOB);
	CHECK(mval_type_parse("float", &t) == 0 && t == MV_FLOAT);
	CHECK(mval_type_parse("integer", &t) == DMFS_ERR_INVAL);
}

/* JSON text of a value, in a static buffer. */
static const char *json_of(const struct mval *v)
{
	static char buf[512];
	cJSON *j = mval_to_json(v);
	char *s = j ? cJSON_PrintUnformatted(j) : NULL;

	snprintf(buf, sizeof(buf), "%s", s ? s : "(null)");
	free(s);
	cJSON_Delete(j);
	return buf;
}

/* Parse JSON text into a value of type want: the error, or 0. */
static int from_json_text(const char *text, enum mval_type want, struct mval *v)
{
	cJSON *j = cJSON_Parse(text);
	int rc;

	if (!j)
		return -1;
	rc = mval_from_json(j, want, v, msg, sizeof(msg));
	cJSON_Delete(j);
	return rc;
}

static void test_json(void)
{
	struct mval v = {0}, w = {0};
	/* Every byte value, so that every base64 digit and padding case
	 * shows up. */
	char all[256];

	CHECK_STR(json_of(&(struct mval){.t = MV_INT, .i = -42}), "-42");
	CHECK_STR(json_of(&(struct mval){.t = MV_FLOAT, .f = 0.1}), "0.1");
	CHECK_STR(json_of(&(struct mval){.t = MV_BOOL, .b = true}), "true");
	CHECK_STR(json_of(&(struct mval){.t = MV_NULL}), "null");
	CHECK_STR(json_of(&(struct mval){
		      .t = MV_STRING, .s = "say \"hi\"", .len = 8}),
		  "\"say \\\"hi\\\"\"");
	CHECK_STR(json_of(&(struct mval){
		      .t = MV_BLOB, .s = "\xff\x00\x01", .len = 3}),
		  "{\"$base64\":\"/wAB\"}");
	CHECK_STR(json_of(&(struct mval){.t = MV_BLOB, .s = "ab", .len = 2}),
		  "{\"$base64\":\"YWI=\"}");
	CHECK_STR(json_of(&(struct mval){.t = MV_BLOB, .s = "a", .len = 1}),
		  "{\"$base64\":\"YQ==\"}");
	CHECK_STR(json_of(&(struct mval){.t = MV_BLOB, .s = "", .len = 0}),
		  "{\"$base64\":\"\"}");
	/* Beyond 2^53 an int is exact raw text, and reads back. */
	CHECK_STR(json_of(&(struct mval){.t = MV_INT, .i = INT64_MAX}),
		  "9223372036854775807");
	v = (struct mval){.t = MV_INT, .i = INT64_MIN + 1};
	{
		cJSON *j = mval_to_json(&v);

		CHECK(j &&
		      mval_from_json(j, MV_NULL, &w, msg, sizeof(msg)) == 0);
		CHECK(w.t == MV_INT && w.i == INT64_MIN + 1);
		cJSON_Delete(j);
	}

	for (int i = 0; i < 256; i++)
		all[i] = (char)i;
	for (size_t n = 0; n <= 256; n += 1 + n / 3) {
		cJSON *j;

		v = (struct mval){.t = MV_BLOB, .s = all, .len = n};
		j = mval_to_json(&v);
		w = (struct mval){0};
		CHECK(j &&
		      mval_from_json(j, MV_NULL, &w, msg, sizeof(msg)) == 0);
		CHECK(w.t == MV_BLOB && w.len == n &&
		      memcmp(w.s, all, n) == 0 && w.s[n] == '\0');
		mval_clear(&w);
		cJSON_Delete(j);
	}

	CHECK(from_json_text("5", MV_NULL, &v) == 0 && v.t == MV_INT &&
	      v.i == 5);
	CHECK(from_json_text("5", MV_FLOAT, &v) == 0 && v.t == MV_FLOAT &&
	      v.f == 5.0);
	CHECK(from_json_text("2.5", MV_NULL, &v) == 0 && v.t == MV_FLOAT &&
	      v.f == 2.5);
	CHECK(from_json_text("2.5", MV_INT, &v) == DMFS_ERR_INVAL);
	CHECK(from_json_text("null", MV_INT, &v) == 0 && v.t == MV_NULL);
	CHECK(from_json_text("false", MV_NULL, &v) == 0 && v.t == MV_BOOL &&
	      !v.b);
	CHECK(from_json_text("\"5\"", MV_NULL, &v) == 0 && v.t == MV_STRING &&
	      strcmp(v.s, "5") == 0);
	mval_clear(&v);
	CHECK(from_json_text("\"5\"", MV_INT, &v) == DMFS_ERR_INVAL);
	CHECK_STR(msg, "a JSON string where a int is expected");
	CHECK(from_json_text("5", MV_STRING, &v) == DMFS_ERR_INVAL);
	CHECK(from_json_text("true", MV_INT, &v) == DMFS_ERR_INVAL);
	CHECK(from_json_text("\"caf\\u00e9\"", MV_STRING, &v) == 0 &&
	      strcmp(v.s, "caf\xc3\xa9") == 0);
	mval_clear(&v);
	CHECK(from_json_text("{\"$base64\":\"YWI=\"}", MV_BLOB, &v) == 0 &&
	      v.t == MV_BLOB && v.len == 2 && memcmp(v.s, "ab", 2) == 0);
	mval_clear(&v);
	CHECK(from_json_text("{\"$base64\":\"YWI=\"}", MV_STRING, &v) ==
	      DMFS_ERR_INVAL);
	CHECK(from_json_text("{\"$base64\":\"YWI\"}", MV_NULL, &v) ==
	      DMFS_ERR_INVAL);
	CHECK(from_json_text("{\"$base64\":\"Y!I=\"}", MV_NULL, &v) ==
	      DMFS_ERR_INVAL);
	CHECK(from_json_text("{\"$base64\":\"YWI=\",\"x\":1}", MV_NULL, &v) ==
	      DMFS_ERR_INVAL);
	CHECK(from_json_text("{\"a\":1}", MV_NULL, &v) == DMFS_ERR_INVAL);
	CHECK(from_json_text("[1]", MV_NULL, &v) == DMFS_ERR_INVAL);
}

static void test_text(void)
{
	struct mval v;
	/* Floats whose shortest forms need 15, 16 and 17 digits. */
	static const double floats[] = {0.1,
					0.5,
					1e3,
					-2.5e-300,
					1.0 / 3,
					2.0 / 3,
					1e21,
					123456789.125,
					0.3,
					5e-324,
					1.7976931348623157e308};

	CHECK_STR(text_of(&(struct mval){.t = MV_INT, .i = INT64_MIN}),
		  "-9223372036854775808");
	CHECK_STR(text_of(&(struct mval){.t = MV_FLOAT, .f = 0.1}), "0.1");
	CHECK_STR(text_of(&(struct mval){.t = MV_FLOAT, .f = 1e3}), "1000");
	CHECK_STR(text_of(&(struct mval){.t = MV_FLOAT, .f = 1.0 / 3}),
		  "0.3333333333333333");
	CHECK_STR(text_of(&(struct mval){.t = MV_FLOAT, .f = 0.1 + 0.2}),
		  "0.30000000000000004");
	CHECK_STR(text_of(&(struct mval){.t = MV_BOOL, .b = false}), "false");
	CHECK_STR(text_of(&(struct mval){.t = MV_STRING, .s = "x y", .len = 3}),
		  "x y");
	for (size_t i = 0; i < sizeof(floats) / sizeof(floats[0]); i++) {
		struct mval f = {.t = MV_FLOAT, .f = floats[i]};
		const char *t = text_of(&f);

		CHECK(mval_from_text(t, strlen(t), MV_FLOAT, &v, msg,
				     sizeof(msg)) == 0);
		CHECK(v.f == floats[i]);
	}
}

static void test_copy_order(void)
{
	struct mval a = {0}, b = {0};
	struct mval i5 = {.t = MV_INT, .i = 5}, f5 = {.t = MV_FLOAT, .f = 5.0};
	struct mval f55 = {.t = MV_FLOAT, .f = 5.5};
	struct mval big = {.t = MV_INT, .i = INT64_MAX};
	struct mval fbig = {.t = MV_FLOAT, .f = 9223372036854775807.0};
	struct mval sa = {.t = MV_STRING, .s = "a", .len = 1};
	struct mval sab = {.t = MV_STRING, .s = "ab", .len = 2};
	struct mval sb = {.t = MV_STRING, .s = "b", .len = 1};
	struct mval ba = {.t = MV_BLOB, .s = "a", .len = 1};
	struct mval t = {.t = MV_BOOL, .b = true}, f = {.t = MV_BOOL};

	CHECK(mval_from_text("caf\xc3\xa9", 5, MV_NULL, &a, msg, sizeof(msg)) ==
	      0);
	CHECK(mval_copy(&b, &a) == 0);
	CHECK(b.s != a.s && mval_equal(&a, &b) && b.s[5] == '\0');
	mval_clear(&a);
	CHECK(b.len == 5 && memcmp(b.s, "caf\xc3\xa9", 5) == 0);
	mval_clear(&b);
	mval_clear(NULL);
	CHECK(mval_copy(&b, &i5) == 0 && b.t == MV_INT && b.i == 5 && !b.s);

	CHECK(mval_cmp(&i5, &f5) == 0 && mval_equal(&i5, &f5));
	CHECK(mval_cmp(&i5, &f55) < 0 && mval_cmp(&f55, &i5) > 0);
	/* INT64_MAX is one below the double 2^63: not equal. */
	CHECK(mval_cmp(&big, &fbig) < 0);
	CHECK(mval_cmp(&sa, &sab) < 0 && mval_cmp(&sab, &sb) < 0);
	CHECK(mval_cmp(&sb, &sa) > 0 && mval_cmp(&sa, &sa) == 0);
	CHECK(mval_cmp(&f, &t) < 0 && mval_cmp(&t, &t) == 0);
	CHECK(!mval_equal(&sa, &ba));
	CHECK(!mval_equal(&t, &i5));
	CHECK(mval_equal(&(struct mval){0}, &(struct mval){0}));

	CHECK(mval_fits(MV_INT, MV_FLOAT));
	CHECK(!mval_fits(MV_FLOAT, MV_INT));
	CHECK(mval_fits(MV_STRING, MV_STRING));
	CHECK(!mval_fits(MV_STRING, MV_BLOB));
	CHECK(!mval_fits(MV_BOOL, MV_INT));
	CHECK(mval_fits(MV_NULL, MV_INT));
	CHECK(mval_fits(MV_BLOB, MV_NULL));
}

int main(void)
{
	test_infer();
	test_fixed();
	test_limit();
	test_type_names();
	test_json();
	test_text();
	test_copy_order();
	return unit_done("test_mval");
}
