/*
 * query_lex.c - the tokens of the query language (see query.h and
 * man/dmfs-query.7), and the one format of its error messages.
 *
 * Positions are byte offsets into the expression; they become a line and
 * a 1-based byte column only when an error is reported, so tokens stay
 * small and a multi-line saved query reports the line it went wrong on.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dmfs/err.h"
#include "query_int.h"

static const struct {
	const char *word;
	enum qtok_kind k;
} keywords[] = {
    {"and", QT_AND},
    {"or", QT_OR},
    {"not", QT_NOT},
    {"contains", QT_CONTAINS},
    {"startswith", QT_STARTSWITH},
    {"glob", QT_GLOB},
    {"is", QT_IS},
    {"null", QT_NULL},
    {"true", QT_TRUE},
    {"false", QT_FALSE},
};

void qlex_position(const char *src, size_t off, int *line, int *col)
{
	size_t line_start = 0;

	*line = 1;
	for (size_t i = 0; i < off && src[i]; i++) {
		if (src[i] == '\n') {
			(*line)++;
			line_start = i + 1;
		}
	}
	*col = (int)(off - line_start) + 1;
}

void qlex_error(const char *src, size_t off, char *msg, size_t msgsz,
		const char *fmt, ...)
{
	size_t start = off, end = off, n;
	int line, col;
	va_list ap;

	if (!msg || !msgsz)
		return;
	qlex_position(src, off, &line, &col);
	n = (size_t)snprintf(msg, msgsz, "%d:%d: ", line, col);
	if (n < msgsz) {
		va_start(ap, fmt);
		n += (size_t)vsnprintf(msg + n, msgsz - n, fmt, ap);
		va_end(ap);
	}
	while (start > 0 && src[start - 1] != '\n')
		start--;
	while (src[end] && src[end] != '\n')
		end++;
	if (n < msgsz)
		n += (size_t)snprintf(msg + n, msgsz - n, "\n%.*s\n",
				      (int)(end - start), src + start);
	/* The caret line keeps the tabs of the line so that the caret
	 * lands under the column in a terminal. */
	for (size_t i = start; i < off && n + 1 < msgsz; i++)
		msg[n++] = src[i] == '\t' ? '\t' : ' ';
	if (n + 1 < msgsz)
		msg[n++] = '^';
	if (n < msgsz)
		msg[n] = '\0';
}

static bool field_start(int c)
{
	return isascii(c) && (isalpha(c) || c == '_');
}

static bool field_char(int c)
{
	return isascii(c) && (isalnum(c) || c == '_' || c == '.' || c == '-');
}

static enum qtok_kind keyword(const char *p, size_t len)
{
	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		if (strlen(keywords[i].word) == len &&
		    strncasecmp(keywords[i].word, p, len) == 0)
			return keywords[i].k;
	}
	return QT_FIELD;
}

bool qlex_bare_field(const char *name)
{
	size_t n = 0;

	if (!field_start((unsigned char)name[0]))
		return false;
	while (name[n] && field_char((unsigned char)name[n]))
		n++;
	return !name[n] && keyword(name, n) == QT_FIELD;
}

/* A growable byte buffer for decoded strings and field names, bounded by
 * the expression length. */
struct lbuf {
	char *p;
	size_t len, cap;
};

static int lbuf_add(struct lbuf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 32;
		char *q;

		while (cap < b->len + n + 1)
			cap *= 2;
		q = realloc(b->p, cap);
		if (!q)
			return DMFS_ERR_NOMEM;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int lbuf_utf8(struct lbuf *b, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return lbuf_add(b, u, n);
}

/* Four hex digits at p as a code unit, or -1. */
static long hex4(const char *p)
{
	long v = 0;

	for (int i = 0; i < 4; i++) {
		int c = (unsigned char)p[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* A quoted string starting at src[*pos] (the quote). */
static int lex_string(const char *src, size_t *pos, struct qtok *t, char *msg,
		      size_t msgsz)
{
	char quote = src[*pos];
	size_t i = *pos + 1;
	struct lbuf b = {0};
	long u, lo;
	int rc = 0;

	/* Start with an empty string so that "" has a buffer. */
	rc = lbuf_add(&b, "", 0);
	while (!rc) {
		size_t run = i;

		while (src[i] && src[i] != quote && src[i] != '\\')
			i++;
		rc = lbuf_add(&b, src + run, i - run);
		if (rc)
			break;
		if (!src[i]) {
			qlex_error(src, *pos, msg, msgsz,
				   "unterminated string");
			rc = DMFS_ERR_INVAL;
			break;
		}
		if (src[i] == quote) {
			i++;
			break;
		}
		/* A backslash escape. */
		switch (src[i + 1]) {
		case 'n':
			rc = lbuf_add(&b, "\n", 1);
			break;
		case 't':
			rc = lbuf_add(&b, "\t", 1);
			break;
		case 'r':
			rc = lbuf_add(&b, "\r", 1);
			break;
		case '\\':
		case '\'':
		case '"':
			rc = lbuf_add(&b, src + i + 1, 1);
			break;
		case 'u':
			u = hex4(src + i + 2);
			if (u < 0) {
				qlex_error(src, i, msg, msgsz,
					   "\\u needs four hex digits");
				rc = DMFS_ERR_INVAL;
				break;
			}
			if (u >= 0xd800 && u <= 0xdbff) {
				/* A high surrogate: the low one must follow
				 * as a second \u escape. */
				lo = src[i + 6] == '\\' && src[i + 7] == 'u'
					 ? hex4(src + i + 8)
					 : -1;
				if (lo < 0xdc00 || lo > 0xdfff) {
					qlex_error(src, i, msg, msgsz,
						   "\\u%04lX is half of a "
						   "surrogate pair",
						   u);
					rc = DMFS_ERR_INVAL;
					break;
				}
				u = 0x10000 + ((u - 0xd800) << 10) +
				    (lo - 0xdc00);
				i += 6;
			} else if ((u >= 0xdc00 && u <= 0xdfff) || u == 0) {
				qlex_error(src, i, msg, msgsz,
					   u ? "\\u%04lX is half of a "
					       "surrogate pair"
					     : "\\u%04lX (NUL) cannot be in a "
					       "string",
					   u);
				rc = DMFS_ERR_INVAL;
				break;
			}
			rc = lbuf_utf8(&b, (uint32_t)u);
			i += 4;
			break;
		case '\0':
			qlex_error(src, *pos, msg, msgsz,
				   "unterminated string");
			rc = DMFS_ERR_INVAL;
			break;
		default:
			qlex_error(src, i, msg, msgsz,
				   "unknown escape '\\%c' (use \\n \\t \\r "
				   "\\\\ \\' \\\" or \\uXXXX)",
				   src[i + 1]);
			rc = DMFS_ERR_INVAL;
			break;
		}
		i += 2;
	}
	if (rc) {
		free(b.p);
		return rc;
	}
	t->k = QT_STRING;
	t->s = b.p;
	t->slen = b.len;
	*pos = i;
	return 0;
}

/* A backticked field name at src[*pos]; `` inside stands for a
 * backtick. */
static int lex_quoted_field(const char *src, size_t *pos, struct qtok *t,
			    char *msg, size_t msgsz)
{
	size_t i = *pos + 1;
	struct lbuf b = {0};
	int rc = lbuf_add(&b, "", 0);

	while (!rc) {
		size_t run = i;

		while (src[i] && src[i] != '`')
			i++;
		rc = lbuf_add(&b, src + run, i - run);
		if (rc)
			break;
		if (!src[i]) {
			qlex_error(src, *pos, msg, msgsz,
				   "unterminated field name (a ` without its "
				   "closing `)");
			rc = DMFS_ERR_INVAL;
		} else if (src[i + 1] == '`') {
			rc = lbuf_add(&b, "`", 1);
			i += 2;
		} else {
			i++;
			break;
		}
	}
	if (!rc && b.len == 0) {
		qlex_error(src, *pos, msg, msgsz, "empty field name");
		rc = DMFS_ERR_INVAL;
	}
	if (rc) {
		free(b.p);
		return rc;
	}
	t->k = QT_FIELD;
	t->s = b.p;
	t->slen = b.len;
	*pos = i;
	return 0;
}

/* A number: -?digits(.digits)?([eE][+-]?digits)?, not followed by a
 * letter or digit. */
static int lex_number(const char *src, size_t *pos, struct qtok *t, char *msg,
		      size_t msgsz)
{
	size_t i = *pos, d;
	bool is_int = true;
	char num[64], *end;

	if (src[i] == '-')
		i++;
	while (isdigit((unsigned char)src[i]))
		i++;
	if (src[i] == '.' && isdigit((unsigned char)src[i + 1])) {
		is_int = false;
		for (i++; isdigit((unsigned char)src[i]); i++)
			;
	}
	if (src[i] == 'e' || src[i] == 'E') {
		d = i + 1;
		if (src[d] == '+' || src[d] == '-')
			d++;
		if (isdigit((unsigned char)src[d])) {
			is_int = false;
			for (i = d; isdigit((unsigned char)src[i]); i++)
				;
		}
	}
	if (field_char((unsigned char)src[i]) || i - *pos >= sizeof(num)) {
		d = i;
		while (field_char((unsigned char)src[d]))
			d++;
		qlex_error(src, *pos, msg, msgsz, "bad number '%.*s'",
			   (int)(d - *pos < 40 ? d - *pos : 40), src + *pos);
		return DMFS_ERR_INVAL;
	}
	memcpy(num, src + *pos, i - *pos);
	num[i - *pos] = '\0';
	errno = 0;
	if (is_int) {
		t->k = QT_INT;
		t->i = strtoll(num, &end, 10);
	} else {
		t->k = QT_FLOAT;
		t->f = strtod(num, &end);
		if (errno == ERANGE && t->f != 0 && t->f > -1e308 &&
		    t->f < 1e308)
			errno = 0; /* a subnormal: fine */
	}
	if (errno == ERANGE) {
		qlex_error(src, *pos, msg, msgsz, "%s is out of range for %s",
			   num, is_int ? "an int" : "a float");
		return DMFS_ERR_INVAL;
	}
	*pos = i;
	return 0;
}

int qlex_next(const char *src, size_t *pos, struct qtok *t, char *msg,
	      size_t msgsz)
{
	size_t i = *pos, start;
	int rc = 0;

	*t = (struct qtok){.k = QT_EOF};
	while (src[i] == ' ' || src[i] == '\t' || src[i] == '\n' ||
	       src[i] == '\r')
		i++;
	start = i;
	t->off = start;
	switch (src[i]) {
	case '\0':
		/* Errors at the end point just past the last token. */
		while (start > 0 && strchr(" \t\n\r", src[start - 1]))
			start--;
		t->off = start;
		*pos = i;
		return 0;
	case '(':
		t->k = QT_LPAREN;
		i++;
		break;
	case ')':
		t->k = QT_RPAREN;
		i++;
		break;
	case '&':
		t->k = QT_AND;
		i++;
		break;
	case '|':
		t->k = QT_OR;
		i++;
		break;
	case '~':
		t->k = QT_NOT;
		i++;
		break;
	case '<':
	case '>':
		t->k = src[i] == '<' ? QT_LT : QT_GT;
		if (src[i + 1] == '=')
			t->k = src[i] == '<' ? QT_LE : QT_GE;
		i += src[i + 1] == '=' ? 2 : 1;
		break;
	case '=':
	case '!':
		if (src[i + 1] != '=') {
			qlex_error(src, i, msg, msgsz,
				   "unexpected '%c' (compare with == or !=)",
				   src[i]);
			return DMFS_ERR_INVAL;
		}
		t->k = src[i] == '=' ? QT_EQ : QT_NE;
		i += 2;
		break;
	case '"':
	case '\'':
		rc = lex_string(src, &i, t, msg, msgsz);
		break;
	case '`':
		rc = lex_quoted_field(src, &i, t, msg, msgsz);
		break;
	default:
		if (isdigit((unsigned char)src[i]) ||
		    (src[i] == '-' && isdigit((unsigned char)src[i + 1]))) {
			rc = lex_number(src, &i, t, msg, msgsz);
			break;
		}
		if (!field_start((unsigned char)src[i])) {
			/* Show a whole UTF-8 character, not a lone byte. */
			size_t n = 1;

			while (n < 4 &&
			       ((unsigned char)src[i + n] & 0xc0) == 0x80)
				n++;
			qlex_error(src, i, msg, msgsz,
				   "unexpected character '%.*s'", (int)n,
				   src + i);
			return DMFS_ERR_INVAL;
		}
		while (field_char((unsigned char)src[i]))
			i++;
		t->k = keyword(src + start, i - start);
		if (t->k == QT_FIELD) {
			t->s = strndup(src + start, i - start);
			if (!t->s)
				return DMFS_ERR_NOMEM;
			t->slen = i - start;
		}
		break;
	}
	if (rc)
		return rc;
	t->len = i - start;
	*pos = i;
	return 0;
}
