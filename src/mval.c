/*
 * mval.c - typed metadata values (see mval.h): parsing them from text and
 * JSON, printing them back, copying and ordering them.
 *
 * Text inference follows JSON's number grammar so that a value typed on a
 * command line and the same value in a JSON Lines batch get the same type:
 * "5" and "-12" are ints, "0.5" and "1e3" floats, "007" or "+5" (not JSON
 * numbers) stay strings, so leading zeros of identifiers are never lost.
 * Once a field's type is fixed the text is read more leniently as that
 * type ("+5" and "007" are fine for an int field).
 *
 * A string is valid UTF-8 without NUL bytes (so it is also a C string);
 * anything else is a blob.  Floats are always finite: JSON cannot carry
 * inf or nan and queries could not compare them sensibly.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmfs/err.h"
#include "dmfs/mval.h"

/* Integral doubles up to 2^53 are exact; beyond it JSON numbers (doubles
 * in cJSON) would silently round an int64, so such ints travel as raw
 * decimal text. */
#define MVAL_EXACT_DOUBLE 9007199254740992.0

static const char *const type_names[] = {
    [MV_NULL] = "null", [MV_INT] = "int",	[MV_FLOAT] = "float",
    [MV_BOOL] = "bool", [MV_STRING] = "string", [MV_BLOB] = "blob",
};

const char *mval_type_name(enum mval_type t)
{
	if ((unsigned)t < sizeof(type_names) / sizeof(type_names[0]))
		return type_names[t];
	return "?";
}

int mval_type_parse(const char *name, enum mval_type *out)
{
	for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]);
	     i++) {
		if (strcmp(name, type_names[i]) == 0) {
			*out = (enum mval_type)i;
			return 0;
		}
	}
	return DMFS_ERR_INVAL;
}

/* --- UTF-8 --- */

/* Whether p[0..len) is well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF) without NUL bytes. */
static bool utf8_text(const unsigned char *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned c = p[i];
		size_t n;
		uint32_t cp;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += n + 1;
	}
	return true;
}

/* --- base64 (RFC 4648, with padding) --- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Caller frees the result.  NULL on ENOMEM. */
static char *b64_encode(const unsigned char *p, size_t len)
{
	char *out = malloc((len + 2) / 3 * 4 + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

static int b64_digit(char c)
{
	const char *at = c ? strchr(b64_alphabet, c) : NULL;

	return at ? (int)(at - b64_alphabet) : -1;
}

/* Decode text into out (malloc'd, '\0'-terminated, caller frees).  0,
 * DMFS_ERR_INVAL with msg, DMFS_ERR_TOO_BIG or DMFS_ERR_NOMEM. */
static int b64_decode(const char *text, char **out, size_t *outlen, char *msg,
		      size_t msgsz)
{
	size_t len = strlen(text), pad = 0, o = 0;
	char *buf;

	if (len % 4) {
		dmfs_say(msg, msgsz,
			 "$base64 text has %zu characters, not a multiple of 4",
			 len);
		return DMFS_ERR_INVAL;
	}
	while (pad < 2 && pad < len && text[len - 1 - pad] == '=')
		pad++;
	if (len / 4 * 3 - pad > MVAL_MAX_LEN) {
		dmfs_say(msg, msgsz, "blob is longer than %d bytes",
			 MVAL_MAX_LEN);
		return DMFS_ERR_TOO_BIG;
	}
	buf = malloc(len / 4 * 3 + 1);
	if (!buf)
		return DMFS_ERR_NOMEM;
	for (size_t i = 0; i < len; i += 4) {
		uint32_t v = 0;

		for (size_t k = 0; k < 4; k++) {
			int d = i + k >= len - pad ? 0 : b64_digit(text[i + k]);

			if (d < 0) {
				dmfs_say(msg, msgsz,
					 "$base64 text has a bad character at "
					 "offset %zu",
					 i + k);
				free(buf);
				return DMFS_ERR_INVAL;
			}
			v = (v << 6) | (uint32_t)d;
		}
		buf[o++] = (char)(v >> 16);
		buf[o++] = (char)(v >> 8);
		buf[o++] = (char)v;
	}
	o -= pad;
	buf[o] = '\0';
	*out = buf;
	*outlen = o;
	return 0;
}

/* --- numbers in text --- */

/* Whether text is a JSON number (-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?
 * [0-9]+)?); *is_int tells whether it has neither fraction nor exponent. */
static bool json_number(const char *s, size_t len, bool *is_int)
{
	size_t i = 0, d;

	*is_int = true;
	if (i < len && s[i] == '-')
		i++;
	if (i < len && s[i] == '0') {
		i++;
	} else {
		for (d = i; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d || s[d] == '0')
			return false;
	}
	if (i < len && s[i] == '.') {
		*is_int = false;
		for (d = ++i; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return false;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		*is_int = false;
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		for (d = i; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return false;
	}
	return i == len;
}

/* strtoll over exactly the whole of s (a '\0'-terminated copy).  0, or
 * DMFS_ERR_INVAL (not an integer, or out of range: *range says which). */
static int parse_int(const char *s, int64_t *out, bool *range)
{
	char *end;
	long long v;

	*range = false;
	if (!*s ||
	    !(s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')))
		return DMFS_ERR_INVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end)
		return DMFS_ERR_INVAL;
	if (errno == ERANGE) {
		*range = true;
		return DMFS_ERR_INVAL;
	}
	*out = v;
	return 0;
}

/* strtod over the whole of s, finite only.  Hex floats, "inf" and "nan"
 * are refused: they are not numbers in JSON or in queries. */
static int parse_float(const char *s, double *out)
{
	char *end;
	double v;

	if (!*s || strpbrk(s, "xXnNiI") ||
	    !(s[0] == '-' || s[0] == '+' || s[0] == '.' ||
	      (s[0] >= '0' && s[0] <= '9')))
		return DMFS_ERR_INVAL;
	errno = 0;
	v = strtod(s, &end);
	/* ERANGE with a nonzero finite result is a subnormal, which is
	 * exact enough; overflow and underflow to zero are refused. */
	if (*end || !isfinite(v) || (errno == ERANGE && v == 0))
		return DMFS_ERR_INVAL;
	*out = v;
	return 0;
}

/* Take a copy of bytes as the string or blob of out. */
static int set_bytes(struct mval *out, enum mval_type t, const char *p,
		     size_t len)
{
	char *s = malloc(len + 1);

	if (!s)
		return DMFS_ERR_NOMEM;
	if (len)
		memcpy(s, p, len);
	s[len] = '\0';
	*out = (struct mval){.t = t, .s = s, .len = len};
	return 0;
}

int mval_from_text(const char *text, size_t len, enum mval_type want,
		   struct mval *out, char *msg, size_t msgsz)
{
	char num[64];
	bool is_int = false, range;
	int64_t i;
	double f;

	if (len > MVAL_MAX_LEN) {
		dmfs_say(msg, msgsz, "value is %zu bytes, longer than %d", len,
			 MVAL_MAX_LEN);
		return DMFS_ERR_TOO_BIG;
	}
	/* Numbers are short: a '\0'-terminated copy for strtoll/strtod. */
	num[0] = '\0';
	if (len < sizeof(num)) {
		memcpy(num, text, len);
		num[len] = '\0';
	}

	switch (want) {
	case MV_NULL:
		if (len < sizeof(num) && json_number(text, len, &is_int)) {
			if (is_int && parse_int(num, &i, &range) == 0) {
				*out = (struct mval){.t = MV_INT, .i = i};
				return 0;
			}
			/* A fraction, an exponent, or an integer beyond
			 * int64: a float, as a JSON reader would make it. */
			if (parse_float(num, &f) == 0) {
				*out = (struct mval){.t = MV_FLOAT, .f = f};
				return 0;
			}
		}
		if (len == 4 && memcmp(text, "true", 4) == 0) {
			*out = (struct mval){.t = MV_BOOL, .b = true};
			return 0;
		}
		if (len == 5 && memcmp(text, "false", 5) == 0) {
			*out = (struct mval){.t = MV_BOOL, .b = false};
			return 0;
		}
		return set_bytes(out,
				 utf8_text((const unsigned char *)text, len)
				     ? MV_STRING
				     : MV_BLOB,
				 text, len);
	case MV_INT:
		if (len >= sizeof(num) || strlen(num) != len ||
		    parse_int(num, &i, &range)) {
			dmfs_say(msg, msgsz, "'%.*s' is not an int%s",
				 (int)(len < 40 ? len : 40), text,
				 range ? " (out of range)" : "");
			return DMFS_ERR_INVAL;
		}
		*out = (struct mval){.t = MV_INT, .i = i};
		return 0;
	case MV_FLOAT:
		if (len >= sizeof(num) || strlen(num) != len ||
		    parse_float(num, &f)) {
			dmfs_say(msg, msgsz, "'%.*s' is not a float",
				 (int)(len < 40 ? len : 40), text);
			return DMFS_ERR_INVAL;
		}
		*out = (struct mval){.t = MV_FLOAT, .f = f};
		return 0;
	case MV_BOOL:
		if (len == 4 && memcmp(text, "true", 4) == 0) {
			*out = (struct mval){.t = MV_BOOL, .b = true};
			return 0;
		}
		if (len == 5 && memcmp(text, "false", 5) == 0) {
			*out = (struct mval){.t = MV_BOOL, .b = false};
			return 0;
		}
		dmfs_say(msg, msgsz, "'%.*s' is not a bool (true or false)",
			 (int)(len < 40 ? len : 40), text);
		return DMFS_ERR_INVAL;
	case MV_STRING:
		if (!utf8_text((const unsigned char *)text, len)) {
			dmfs_say(msg, msgsz,
				 "value is not UTF-8 text (or holds a NUL "
				 "byte): a string field needs text");
			return DMFS_ERR_INVAL;
		}
		return set_bytes(out, MV_STRING, text, len);
	case MV_BLOB:
		return set_bytes(out, MV_BLOB, text, len);
	}
	dmfs_say(msg, msgsz, "unknown value type %d", (int)want);
	return DMFS_ERR_INVAL;
}

/* --- JSON --- */

static int type_mismatch(enum mval_type have, enum mval_type want, char *msg,
			 size_t msgsz)
{
	dmfs_say(msg, msgsz, "a JSON %s where a %s is expected",
		 mval_type_name(have), mval_type_name(want));
	return DMFS_ERR_INVAL;
}

/* A JSON number: an int when integral and exactly representable (cJSON
 * keeps no trace of how the number was written, so 5.0 reads as the int
 * 5; a float field takes it back as 5.0). */
static int number_from_json(double d, enum mval_type want, struct mval *out,
			    char *msg, size_t msgsz)
{
	bool integral = d == floor(d) && fabs(d) <= MVAL_EXACT_DOUBLE;

	if (!isfinite(d)) {
		dmfs_say(msg, msgsz, "a number that is not finite");
		return DMFS_ERR_INVAL;
	}
	if (want == MV_FLOAT || (want == MV_NULL && !integral)) {
		*out = (struct mval){.t = MV_FLOAT, .f = d};
		return 0;
	}
	if (want == MV_INT || want == MV_NULL) {
		if (!integral) {
			dmfs_say(msg, msgsz, "%.17g is not an int", d);
			return DMFS_ERR_INVAL;
		}
		*out = (struct mval){.t = MV_INT, .i = (int64_t)d};
		return 0;
	}
	return type_mismatch(integral ? MV_INT : MV_FLOAT, want, msg, msgsz);
}

int mval_from_json(const cJSON *j, enum mval_type want, struct mval *out,
		   char *msg, size_t msgsz)
{
	const cJSON *b64;
	enum mval_type have;
	size_t len;
	char *bytes;
	int rc;

	if (!j || cJSON_IsNull(j)) {
		*out = (struct mval){.t = MV_NULL};
		return 0;
	}
	if (cJSON_IsNumber(j))
		return number_from_json(j->valuedouble, want, out, msg, msgsz);
	if (cJSON_IsRaw(j)) {
		/* Our own big ints (see mval_to_json). */
		if (!j->valuestring ||
		    mval_from_text(j->valuestring, strlen(j->valuestring),
				   want == MV_FLOAT ? MV_FLOAT : MV_INT, out,
				   msg, msgsz)) {
			dmfs_say(msg, msgsz, "raw JSON that is not a number");
			return DMFS_ERR_INVAL;
		}
		if (want != MV_NULL && !mval_fits(out->t, want))
			return type_mismatch(out->t, want, msg, msgsz);
		return 0;
	}
	if (cJSON_IsBool(j)) {
		if (want != MV_NULL && want != MV_BOOL)
			return type_mismatch(MV_BOOL, want, msg, msgsz);
		*out = (struct mval){.t = MV_BOOL, .b = cJSON_IsTrue(j)};
		return 0;
	}
	if (cJSON_IsString(j)) {
		if (want != MV_NULL && want != MV_STRING)
			return type_mismatch(MV_STRING, want, msg, msgsz);
		/* A string, typed as such even if it reads "5": JSON already
		 * says it is text. */
		return mval_from_text(j->valuestring, strlen(j->valuestring),
				      MV_STRING, out, msg, msgsz);
	}
	b64 = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "$base64")
				: NULL;
	if (!b64 || cJSON_GetArraySize(j) != 1 || !cJSON_IsString(b64)) {
		dmfs_say(msg, msgsz,
			 "a JSON %s is not a value (a blob is "
			 "{\"$base64\": \"...\"})",
			 cJSON_IsArray(j) ? "array" : "object");
		return DMFS_ERR_INVAL;
	}
	have = MV_BLOB;
	if (want != MV_NULL && want != have)
		return type_mismatch(have, want, msg, msgsz);
	rc = b64_decode(b64->valuestring, &bytes, &len, msg, msgsz);
	if (rc)
		return rc;
	*out = (struct mval){.t = MV_BLOB, .s = bytes, .len = len};
	return 0;
}

cJSON *mval_to_json(const struct mval *v)
{
	char num[32];
	cJSON *j, *o;
	char *enc;

	switch (v->t) {
	case MV_INT:
		if (v->i >= -(int64_t)MVAL_EXACT_DOUBLE &&
		    v->i <= (int64_t)MVAL_EXACT_DOUBLE)
			return cJSON_CreateNumber((double)v->i);
		snprintf(num, sizeof(num), "%" PRId64, v->i);
		return cJSON_CreateRaw(num);
	case MV_FLOAT:
		return cJSON_CreateNumber(v->f);
	case MV_BOOL:
		return cJSON_CreateBool(v->b);
	case MV_STRING:
		return cJSON_CreateString(v->s ? v->s : "");
	case MV_BLOB:
		enc = b64_encode((const unsigned char *)v->s, v->len);
		o = enc ? cJSON_CreateObject() : NULL;
		j = o ? cJSON_AddStringToObject(o, "$base64", enc) : NULL;
		free(enc);
		if (!j) {
			cJSON_Delete(o);
			return NULL;
		}
		return o;
	case MV_NULL:
		break;
	}
	return cJSON_CreateNull();
}

/* --- text --- */

/* The shortest of %.15g, %.16g, %.17g that reads back as the same
 * double. */
static void float_text(double f, char *buf, size_t bufsz)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, bufsz, "%.*g", prec, f);
		if (strtod(buf, NULL) == f)
			return;
	}
}

int mval_to_text(const struct mval *v, char **out, size_t *len)
{
	char buf[40];
	const char *p = buf;
	size_t n;
	char *s;

	switch (v->t) {
	case MV_INT:
		snprintf(buf, sizeof(buf), "%" PRId64, v->i);
		n = strlen(buf);
		break;
	case MV_FLOAT:
		float_text(v->f, buf, sizeof(buf));
		n = strlen(buf);
		break;
	case MV_BOOL:
		p = v->b ? "true" : "false";
		n = strlen(p);
		break;
	case MV_STRING:
	case MV_BLOB:
		p = v->s ? v->s : "";
		n = v->s ? v->len : 0;
		break;
	default:
		p = "";
		n = 0;
		break;
	}
	s = malloc(n + 1);
	if (!s)
		return DMFS_ERR_NOMEM;
	if (n)
		memcpy(s, p, n);
	s[n] = '\0';
	*out = s;
	*len = n;
	return 0;
}

/* --- copy, order --- */

int mval_copy(struct mval *dst, const struct mval *src)
{
	*dst = *src;
	if (src->t == MV_STRING || src->t == MV_BLOB) {
		dst->s = malloc(src->len + 1);
		if (!dst->s) {
			*dst = (struct mval){.t = MV_NULL};
			return DMFS_ERR_NOMEM;
		}
		if (src->len)
			memcpy(dst->s, src->s, src->len);
		dst->s[src->len] = '\0';
	} else {
		dst->s = NULL;
		dst->len = 0;
	}
	return 0;
}

void mval_clear(struct mval *v)
{
	if (!v)
		return;
	free(v->s);
	*v = (struct mval){.t = MV_NULL};
}

bool mval_fits(enum mval_type have, enum mval_type want)
{
	return have == want || have == MV_NULL || want == MV_NULL ||
	       (have == MV_INT && want == MV_FLOAT);
}

static bool numeric(enum mval_type t) { return t == MV_INT || t == MV_FLOAT; }

static int sign_of(long double d) { return (d > 0) - (d < 0); }

int mval_cmp(const struct mval *a, const struct mval *b)
{
	size_t n;
	int c;

	if (numeric(a->t) && numeric(b->t)) {
		if (a->t == MV_INT && b->t == MV_INT)
			return (a->i > b->i) - (a->i < b->i);
		/* long double holds every int64 exactly on the platforms we
		 * build for (x86-64 80-bit, aarch64 128-bit). */
		return sign_of(
		    (a->t == MV_INT ? (long double)a->i : (long double)a->f) -
		    (b->t == MV_INT ? (long double)b->i : (long double)b->f));
	}
	if (a->t != b->t)
		/* Not comparable: a fixed order (null first) so that
		 * sorting mixed values is still deterministic. */
		return (a->t > b->t) - (a->t < b->t);
	switch (a->t) {
	case MV_BOOL:
		return (int)a->b - (int)b->b;
	case MV_STRING:
	case MV_BLOB:
		n = a->len < b->len ? a->len : b->len;
		c = n ? memcmp(a->s, b->s, n) : 0;
		if (c)
			return c < 0 ? -1 : 1;
		return (a->len > b->len) - (a->len < b->len);
	default:
		return 0;
	}
}

bool mval_equal(const struct mval *a, const struct mval *b)
{
	if (a->t != b->t && !(numeric(a->t) && numeric(b->t)))
		return false;
	return mval_cmp(a, b) == 0;
}
