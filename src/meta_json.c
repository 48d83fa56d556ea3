/*
 * meta_json.c - JSON text for log lines, value records and checkpoints,
 * appended to one reused buffer: a 100 000-row batch must not build (and
 * free) a cJSON tree per row.  Parsing stays with cJSON.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta_int.h"

static int reserve(struct meta_buf *b, size_t more)
{
	size_t nc;
	char *p;

	if (b->err)
		return b->err;
	if (b->n + more + 1 <= b->cap)
		return 0;
	if (b->max && b->n + more + 1 > b->max)
		return b->err = DMFS_ERR_TOO_BIG;
	nc = b->cap ? b->cap : 256;
	while (nc < b->n + more + 1)
		nc *= 2;
	p = realloc(b->p, nc);
	if (!p)
		return b->err = DMFS_ERR_NOMEM;
	b->p = p;
	b->cap = nc;
	return 0;
}

void meta_buf_put(struct meta_buf *b, const void *p, size_t n)
{
	if (reserve(b, n))
		return;
	if (p)
		memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = '\0';
}

void meta_buf_puts(struct meta_buf *b, const char *s)
{
	meta_buf_put(b, s, strlen(s));
}

void meta_buf_jstr(struct meta_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = 0;

	meta_buf_put(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		meta_buf_put(b, s + start, i - start);
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			meta_buf_put(b, e, 2);
		} else if (c == '\n') {
			meta_buf_put(b, "\\n", 2);
		} else if (c == '\t') {
			meta_buf_put(b, "\\t", 2);
		} else {
			meta_buf_put(b, esc, 6);
		}
		start = i + 1;
	}
	meta_buf_put(b, s + start, n - start);
	meta_buf_put(b, "\"", 1);
}

void meta_buf_i64(struct meta_buf *b, int64_t v)
{
	char t[32];
	int n = snprintf(t, sizeof(t), "%" PRId64, v);

	meta_buf_put(b, t, (size_t)n);
}

/* Digits of a float looked at: 3 past the 17 that tell any double apart,
 * so that rounding them to 15 or 16 is (but for a near tie, left to
 * printf) rounding the exact value. */
#define DIGITS 20

/* The %.{prec}g form of the decimal digits dig[0..DIGITS) times 10^ex
 * (the first digit before the point), rounded to prec digits, into t.
 * Its length, or -1 when the digits are too close to a tie to tell. */
static int format_g(char *t, bool neg, const char *dig, int ex, int prec)
{
	char r[DIGITS];
	int k = prec, n = 0;
	bool nines = true, zeros = true;

	for (int i = prec + 1; i < DIGITS; i++) {
		nines &= dig[i] == '9';
		zeros &= dig[i] == '0';
	}
	if ((dig[prec] == '4' && nines) || (dig[prec] == '5' && zeros))
		return -1;
	memcpy(r, dig, (size_t)prec);
	if (dig[prec] >= '5') {
		int i = prec - 1;
		while (i >= 0 && r[i] == '9')
			r[i--] = '0';
		if (i >= 0) {
			r[i]++;
		} else { /* 9.99... rounds up to 10 */
			r[0] = '1';
			ex++;
		}
	}
	while (k > 1 && r[k - 1] == '0')
		k--;
	if (neg)
		t[n++] = '-';
	if (ex < -4 || ex >= prec) {
		t[n++] = r[0];
		if (k > 1) {
			t[n++] = '.';
			memcpy(t + n, r + 1, (size_t)k - 1);
			n += k - 1;
		}
		n += sprintf(t + n, "e%c%02d", ex < 0 ? '-' : '+', abs(ex));
	} else if (ex >= 0) {
		for (int i = 0; i <= ex; i++)
			t[n++] = i < k ? r[i] : '0';
		if (k > ex + 1) {
			t[n++] = '.';
			memcpy(t + n, r + ex + 1, (size_t)(k - ex - 1));
			n += k - ex - 1;
		}
	} else {
		t[n++] = '0';
		t[n++] = '.';
		for (int i = 0; i < -ex - 1; i++)
			t[n++] = '0';
		memcpy(t + n, r, (size_t)k);
		n += k;
	}
	t[n] = '\0';
	return n;
}

/* The shortest %g form of d (15 to 17 digits) that reads back as d, with
 * ".0" added when it would otherwise look like an int.  printf is the
 * cost of a float: it formats once, and the shorter forms are made from
 * those digits, each checked by reading it back. */
static void put_float(struct meta_buf *b, double d)
{
	char e[64], dig[DIGITS], t[48];
	const char *p = e;
	int n = 0, ex;
	bool neg;

	snprintf(e, sizeof(e), "%.*e", DIGITS - 1, d);
	neg = *p == '-';
	p += neg;
	dig[0] = *p++;
	p++; /* the point */
	for (int i = 1; i < DIGITS; i++)
		dig[i] = *p++;
	ex = atoi(p + 1);
	for (int prec = 15; prec <= 17; prec++) {
		n = format_g(t, neg, dig, ex, prec);
		if (n < 0)
			n = snprintf(t, sizeof(t), "%.*g", prec, d);
		if (prec == 17 || strtod(t, NULL) == d)
			break;
	}
	if (!strpbrk(t, ".eE")) {
		memcpy(t + n, ".0", 3);
		n += 2;
	}
	meta_buf_put(b, t, (size_t)n);
}

int meta_buf_mval(struct meta_buf *b, const struct mval *v)
{
	cJSON *j;
	char *text;

	switch (v->t) {
	case MV_NULL:
		meta_buf_put(b, "null", 4);
		break;
	case MV_INT:
		meta_buf_i64(b, v->i);
		break;
	case MV_BOOL:
		meta_buf_puts(b, v->b ? "true" : "false");
		break;
	case MV_FLOAT:
		if (!isfinite(v->f))
			return DMFS_ERR_INVAL;
		put_float(b, v->f);
		break;
	case MV_STRING:
		meta_buf_jstr(b, v->s ? v->s : "", v->s ? v->len : 0);
		break;
	default: /* blob: its JSON form is mval's business */
		j = mval_to_json(v);
		text = j ? cJSON_PrintUnformatted(j) : NULL;
		cJSON_Delete(j);
		if (!text)
			return b->err = DMFS_ERR_NOMEM;
		meta_buf_puts(b, text);
		free(text);
		break;
	}
	return b->err;
}

/* A float's JSON in 17 digits (always enough to read back as d, and one
 * printf: the shortest form costs three times as much, for a log line
 * nobody reads by eye), with ".0" added when it would look like an int. */
static void put_float17(struct meta_buf *b, double d)
{
	char t[40];
	int n = snprintf(t, sizeof(t), "%.17g", d);

	if (!strpbrk(t, ".eE"))
		n += snprintf(t + n, sizeof(t) - (size_t)n, ".0");
	meta_buf_put(b, t, (size_t)n);
}

int meta_buf_stored(struct meta_buf *b, const struct mval *v)
{
	unsigned char bits[8];
	uint64_t u;

	if (v->t == MV_STRING) {
		meta_buf_put(b, v->s ? v->s : "", v->s ? v->len : 0);
		return b->err;
	}
	if (v->t == MV_FLOAT) {
		if (!isfinite(v->f))
			return DMFS_ERR_INVAL;
		memcpy(&u, &v->f, 8);
		for (int i = 0; i < 8; i++)
			bits[i] = (unsigned char)(u >> (56 - 8 * i));
		meta_buf_put(b, bits, 8);
		return b->err;
	}
	return meta_buf_mval(b, v);
}

double meta_stored_float(const char *val)
{
	const unsigned char *p = (const unsigned char *)val;
	uint64_t u = 0;
	double d;

	for (int i = 0; i < 8; i++)
		u = u << 8 | p[i];
	memcpy(&d, &u, 8);
	return d;
}

void meta_buf_stored_json(struct meta_buf *b, enum mval_type type,
			  const char *val, size_t vlen)
{
	if (type == MV_NULL)
		meta_buf_put(b, "null", 4);
	else if (type == MV_STRING)
		meta_buf_jstr(b, val, vlen);
	else if (type == MV_FLOAT && vlen == 8)
		put_float17(b, meta_stored_float(val));
	else
		meta_buf_put(b, val, vlen);
}
