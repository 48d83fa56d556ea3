/*
 * query_int.h - what the query lexer (query_lex.c) hands the parser and
 * evaluator (query.c).  Internal to those two files.
 */
#ifndef DMFS_QUERY_INT_H
#define DMFS_QUERY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest expression accepted: a saved query is a small file, and the
 * caret line of an error repeats a line of it. */
#define QUERY_MAX_LEN 65536

enum qtok_kind {
	QT_EOF,
	QT_LPAREN,
	QT_RPAREN,
	QT_AND,
	QT_OR,
	QT_NOT,
	QT_EQ,
	QT_NE,
	QT_LT,
	QT_LE,
	QT_GT,
	QT_GE,
	QT_CONTAINS,
	QT_STARTSWITH,
	QT_GLOB,
	QT_IS,
	QT_NULL,
	QT_TRUE,
	QT_FALSE,
	QT_INT,
	QT_FLOAT,
	QT_STRING,
	QT_FIELD,
};

/* One token.  off/len locate its source text (for EOF: just after the
 * last non-blank character).  s (QT_STRING: the decoded UTF-8 text;
 * QT_FIELD: the field name) is owned by the token: free it, or take it
 * and set it to NULL. */
struct qtok {
	enum qtok_kind k;
	size_t off, len;
	char *s;
	size_t slen;
	int64_t i;
	double f;
};

/*
 * The token at *pos of src; *pos moves past it.  0, DMFS_ERR_INVAL with
 * the full error message (position and caret line) in msg, or
 * DMFS_ERR_NOMEM.
 */
int qlex_next(const char *src, size_t *pos, struct qtok *t, char *msg,
	      size_t msgsz) __attribute__((warn_unused_result));

/* Format "LINE:COL: what" for byte offset off of src, then a newline,
 * the line holding off and a caret under the column.  Cannot fail. */
void qlex_error(const char *src, size_t off, char *msg, size_t msgsz,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The 1-based line and byte column of offset off in src.  Cannot fail. */
void qlex_position(const char *src, size_t off, int *line, int *col);

/* Whether name may be written bare: [A-Za-z_][A-Za-z0-9_.-]* and not a
 * keyword (any case). */
bool qlex_bare_field(const char *name);

#endif
