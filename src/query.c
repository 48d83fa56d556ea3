/*
 * query.c - the query language (see query.h and man/dmfs-query.7): a
 * recursive-descent parser over the tokens of query_lex.c, the syntax
 * tree it builds, the normalised text of a tree, type checking and
 * evaluation.
 *
 * Grammar, loosest first:
 *
 *   or    = and { ("or" | "|") and }
 *   and   = not { ("and" | "&") not }
 *   not   = ("not" | "~") not | "(" or ")" | test
 *   test  = field [ cmpop value | ("contains" | "startswith" | "glob")
 *                   string | "is" ["not"] "null" ]
 *
 * A field alone tests a bool field for true (`not is_train`).
 *
 * Types are checked where they can be: a literal that an operator cannot
 * take (`x < true`, `x contains 5`) is a syntax error; a field whose type
 * does not suit the literal is a type error, found by query_check against
 * the known field types, or at the latest by query_eval on the first row
 * that has the field.  Either way it is an error and never a silent
 * false: `label == 5` on a string label is a mistake worth telling.
 */
#include "config.h"

#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmfs/fmt.h"
#include "dmfs/err.h"
#include "dmfs/query.h"
#include "query_int.h"

/* Nesting deeper than this is refused, so that the recursive parser,
 * printer and evaluator cannot run out of stack. */
#define QUERY_MAX_DEPTH 200

enum qnode_kind { QN_OR, QN_AND, QN_NOT, QN_TEST };

enum qop {
	QO_EQ,
	QO_NE,
	QO_LT,
	QO_LE,
	QO_GT,
	QO_GE,
	QO_CONTAINS,
	QO_STARTSWITH,
	QO_GLOB,
	QO_IS_NULL,
	QO_NOT_NULL,
	QO_TRUE, /* a bare bool field */
};

static const char *const op_text[] = {
    [QO_EQ] = "==",
    [QO_NE] = "!=",
    [QO_LT] = "<",
    [QO_LE] = "<=",
    [QO_GT] = ">",
    [QO_GE] = ">=",
    [QO_CONTAINS] = "contains",
    [QO_STARTSWITH] = "startswith",
    [QO_GLOB] = "glob",
    [QO_IS_NULL] = "is null",
    [QO_NOT_NULL] = "is not null",
    [QO_TRUE] = "",
};

/* One node.  a, b (children), field and lit are owned by the node. */
struct qnode {
	enum qnode_kind kind;
	struct qnode *a, *b; /* QN_OR, QN_AND: both; QN_NOT: a */
	enum qop op;	     /* QN_TEST */
	char *field;	     /* QN_TEST */
	struct mval lit;     /* QN_TEST with a literal; else null */
	size_t off;	     /* QN_TEST: where the field is in src */
};

struct query {
	struct qnode *root;
	char *src;     /* the expression as given, for error positions */
	char *text;    /* normalised */
	char **fields; /* distinct, in order of first appearance */
	size_t nfields;
};

/* --- parser --- */

struct parser {
	const char *src;
	size_t pos;
	struct qtok tok; /* the current token */
	int depth;
	struct query *q;
	char *msg;
	size_t msgsz;
};

static void node_free(struct qnode *n)
{
	if (!n)
		return;
	node_free(n->a);
	node_free(n->b);
	free(n->field);
	mval_clear(&n->lit);
	free(n);
}

static int advance(struct parser *p)
{
	free(p->tok.s);
	p->tok.s = NULL;
	return qlex_next(p->src, &p->pos, &p->tok, p->msg, p->msgsz);
}

static int fail(struct parser *p, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct parser *p, size_t off, const char *fmt, ...)
{
	char what[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	qlex_error(p->src, off, p->msg, p->msgsz, "%s", what);
	return DMFS_ERR_INVAL;
}

/* The source text of the current token, shortened for messages. */
static int tok_width(const struct parser *p)
{
	return (int)(p->tok.len < 40 ? p->tok.len : 40);
}

static int unexpected(struct parser *p)
{
	if (p->tok.k == QT_EOF)
		return fail(p, p->tok.off, "unexpected end of the query");
	return fail(p, p->tok.off, "unexpected '%.*s'", tok_width(p),
		    p->src + p->tok.off);
}

static int note_field(struct query *q, const char *field)
{
	char **f;

	for (size_t i = 0; i < q->nfields; i++) {
		if (strcmp(q->fields[i], field) == 0)
			return 0;
	}
	f = realloc(q->fields, (q->nfields + 1) * sizeof(*f));
	if (!f)
		return DMFS_ERR_NOMEM;
	q->fields = f;
	f[q->nfields] = strdup(field);
	if (!f[q->nfields])
		return DMFS_ERR_NOMEM;
	q->nfields++;
	return 0;
}

static int parse_or(struct parser *p, struct qnode **out);

static bool is_value(enum qtok_kind k)
{
	return k == QT_INT || k == QT_FLOAT || k == QT_STRING || k == QT_TRUE ||
	       k == QT_FALSE || k == QT_FIELD;
}

/* The literal after operator op (whose text starts at op_off). */
static int parse_literal(struct parser *p, enum qop op, size_t op_off,
			 size_t op_len, struct mval *lit)
{
	const struct qtok *t = &p->tok;
	bool string_op =
	    op == QO_CONTAINS || op == QO_STARTSWITH || op == QO_GLOB;
	int rc;

	if (t->k == QT_NULL)
		return fail(p, t->off,
			    "a field is compared with null by 'is null' or "
			    "'is not null', not '%s'",
			    op_text[op]);
	if (!is_value(t->k) || t->k == QT_FIELD) {
		if (t->k == QT_FIELD)
			return fail(p, t->off,
				    "expected a value after '%.*s' (a field "
				    "cannot be compared with a field; quote "
				    "a string)",
				    (int)op_len, p->src + op_off);
		return fail(p, t->off, "expected a %s after '%.*s'",
			    string_op ? "string" : "value", (int)op_len,
			    p->src + op_off);
	}
	if (string_op && t->k != QT_STRING)
		return fail(p, t->off, "expected a string after '%.*s'",
			    (int)op_len, p->src + op_off);
	if ((t->k == QT_TRUE || t->k == QT_FALSE) && op != QO_EQ && op != QO_NE)
		return fail(p, t->off,
			    "'%s' cannot compare bools (true, false)",
			    op_text[op]);
	switch (t->k) {
	case QT_INT:
		*lit = (struct mval){.t = MV_INT, .i = t->i};
		break;
	case QT_FLOAT:
		*lit = (struct mval){.t = MV_FLOAT, .f = t->f};
		break;
	case QT_TRUE:
	case QT_FALSE:
		*lit = (struct mval){.t = MV_BOOL, .b = t->k == QT_TRUE};
		break;
	default: {
		char why[120];

		/* A string literal must be UTF-8 text like a string
		 * value. */
		rc = mval_from_text(t->s, t->slen, MV_STRING, lit, why,
				    sizeof(why));
		if (rc == DMFS_ERR_NOMEM)
			return rc;
		if (rc)
			return fail(p, t->off, "%s", why);
		break;
	}
	}
	return advance(p);
}

/* test = field [ op value | "is" ["not"] "null" ] */
static int parse_test(struct parser *p, struct qnode **out)
{
	struct qnode *n;
	size_t op_off, op_len, field_off = p->tok.off, field_len = p->tok.len;
	enum qop op;
	int rc;

	if (p->tok.k != QT_FIELD) {
		if (p->tok.k == QT_EOF)
			return fail(p, p->tok.off, "expected a field name");
		return fail(p, p->tok.off, "expected a field name, not '%.*s'",
			    tok_width(p), p->src + p->tok.off);
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return DMFS_ERR_NOMEM;
	n->kind = QN_TEST;
	n->field = p->tok.s;
	n->off = field_off;
	p->tok.s = NULL;
	rc = note_field(p->q, n->field);
	if (!rc)
		rc = advance(p);
	if (rc)
		goto out;

	op_off = p->tok.off;
	op_len = p->tok.len;
	switch (p->tok.k) {
	case QT_EQ:
		op = QO_EQ;
		break;
	case QT_NE:
		op = QO_NE;
		break;
	case QT_LT:
		op = QO_LT;
		break;
	case QT_LE:
		op = QO_LE;
		break;
	case QT_GT:
		op = QO_GT;
		break;
	case QT_GE:
		op = QO_GE;
		break;
	case QT_CONTAINS:
		op = QO_CONTAINS;
		break;
	case QT_STARTSWITH:
		op = QO_STARTSWITH;
		break;
	case QT_GLOB:
		op = QO_GLOB;
		break;
	case QT_IS:
		rc = advance(p);
		op = QO_IS_NULL;
		if (!rc && p->tok.k == QT_NOT) {
			op = QO_NOT_NULL;
			rc = advance(p);
		}
		if (!rc && p->tok.k != QT_NULL)
			rc = fail(p, p->tok.off, "expected 'null' after '%s'",
				  op == QO_IS_NULL ? "is" : "is not");
		if (!rc)
			rc = advance(p);
		n->op = op;
		goto out;
	default:
		if (is_value(p->tok.k) || p->tok.k == QT_NULL) {
			/* `label "cat"`: the operator is missing. */
			rc = fail(p, p->tok.off,
				  "expected an operator after '%.*s'",
				  (int)(field_len < 40 ? field_len : 40),
				  p->src + field_off);
			goto out;
		}
		/* A bare field: a bool that must be true. */
		n->op = QO_TRUE;
		goto out;
	}
	n->op = op;
	rc = advance(p);
	if (!rc)
		rc = parse_literal(p, op, op_off, op_len, &n->lit);
out:
	if (rc) {
		node_free(n);
		return rc;
	}
	*out = n;
	return 0;
}

/* not = ("not" | "~") not | "(" or ")" | test */
static int parse_not(struct parser *p, struct qnode **out)
{
	struct qnode *n, *inner = NULL;
	size_t open;
	int rc;

	if (++p->depth > QUERY_MAX_DEPTH) {
		rc = fail(p, p->tok.off, "the query is nested too deeply");
		goto out;
	}
	if (p->tok.k == QT_NOT) {
		rc = advance(p);
		if (!rc)
			rc = parse_not(p, &inner);
		if (rc)
			goto out;
		n = calloc(1, sizeof(*n));
		if (!n) {
			node_free(inner);
			rc = DMFS_ERR_NOMEM;
			goto out;
		}
		n->kind = QN_NOT;
		n->a = inner;
		*out = n;
		goto out;
	}
	if (p->tok.k == QT_LPAREN) {
		open = p->tok.off;
		rc = advance(p);
		if (!rc)
			rc = parse_or(p, &inner);
		if (!rc && p->tok.k != QT_RPAREN) {
			if (p->tok.k == QT_EOF)
				rc = fail(p, p->tok.off,
					  "expected ')' (to close the '(' at "
					  "column %zu)",
					  open + 1);
			else
				rc = fail(p, p->tok.off,
					  "expected ')', not '%.*s'",
					  tok_width(p), p->src + p->tok.off);
		}
		if (!rc)
			rc = advance(p);
		if (rc) {
			node_free(inner);
			goto out;
		}
		*out = inner;
		goto out;
	}
	rc = parse_test(p, out);
out:
	p->depth--;
	return rc;
}

/* One level of a left-associative binary operator. */
static int parse_binary(struct parser *p, enum qtok_kind tk,
			enum qnode_kind kind,
			int (*operand)(struct parser *, struct qnode **),
			struct qnode **out)
{
	struct qnode *left = NULL, *right, *n;
	int rc = operand(p, &left);

	while (!rc && p->tok.k == tk) {
		rc = advance(p);
		if (!rc)
			rc = operand(p, &right);
		if (rc)
			break;
		n = calloc(1, sizeof(*n));
		if (!n) {
			node_free(right);
			rc = DMFS_ERR_NOMEM;
			break;
		}
		n->kind = kind;
		n->a = left;
		n->b = right;
		left = n;
	}
	if (rc) {
		node_free(left);
		return rc;
	}
	*out = left;
	return 0;
}

static int parse_and(struct parser *p, struct qnode **out)
{
	return parse_binary(p, QT_AND, QN_AND, parse_not, out);
}

static int parse_or(struct parser *p, struct qnode **out)
{
	return parse_binary(p, QT_OR, QN_OR, parse_and, out);
}

/* --- normalised text --- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		char *q;

		while (cap < b->len + n + 1)
			cap *= 2;
		q = realloc(b->p, cap);
		if (!q) {
			b->oom = true;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* A field as it would be typed: bare when it can be, else in backticks
 * with each backtick doubled. */
static void sb_field(struct sbuf *b, const char *field)
{
	if (qlex_bare_field(field)) {
		sb_str(b, field);
		return;
	}
	sb_add(b, "`", 1);
	for (const char *c = field; *c; c++) {
		if (*c == '`')
			sb_add(b, "`", 1);
		sb_add(b, c, 1);
	}
	sb_add(b, "`", 1);
}

/* A string literal in double quotes: quotes, backslashes and control
 * characters escaped, other UTF-8 as is. */
static void sb_string(struct sbuf *b, const char *s, size_t len)
{
	char esc[8];

	sb_add(b, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			sb_add(b, esc, 2);
		} else if (c == '\n') {
			sb_str(b, "\\n");
		} else if (c == '\t') {
			sb_str(b, "\\t");
		} else if (c == '\r') {
			sb_str(b, "\\r");
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04X", c);
			sb_str(b, esc);
		} else {
			sb_add(b, s + i, 1);
		}
	}
	sb_add(b, "\"", 1);
}

static void sb_literal(struct sbuf *b, const struct mval *v)
{
	char *t = NULL;
	size_t n;

	if (v->t == MV_STRING) {
		sb_string(b, v->s, v->len);
		return;
	}
	if (mval_to_text(v, &t, &n)) {
		b->oom = true;
		return;
	}
	sb_add(b, t, n);
	/* A float stays a float when read back: 1000.0, not 1000. */
	if (v->t == MV_FLOAT && strspn(t, "-0123456789") == n)
		sb_str(b, ".0");
	free(t);
}

/* Binding strength: a child looser than its parent needs parentheses. */
static int strength(const struct qnode *n)
{
	switch (n->kind) {
	case QN_OR:
		return 1;
	case QN_AND:
		return 2;
	case QN_NOT:
		return 3;
	default:
		return 4;
	}
}

static void sb_node(struct sbuf *b, const struct qnode *n);

static void sb_child(struct sbuf *b, const struct qnode *child, int need)
{
	bool paren = strength(child) < need;

	if (paren)
		sb_add(b, "(", 1);
	sb_node(b, child);
	if (paren)
		sb_add(b, ")", 1);
}

static void sb_node(struct sbuf *b, const struct qnode *n)
{
	switch (n->kind) {
	case QN_OR:
	case QN_AND:
		/* and/or are associative: a right operand of the same kind
		 * needs no parentheses either. */
		sb_child(b, n->a, strength(n));
		sb_str(b, n->kind == QN_OR ? " or " : " and ");
		sb_child(b, n->b, strength(n));
		break;
	case QN_NOT:
		sb_str(b, "not ");
		sb_child(b, n->a, strength(n));
		break;
	case QN_TEST:
		sb_field(b, n->field);
		if (n->op == QO_TRUE)
			break;
		sb_add(b, " ", 1);
		sb_str(b, op_text[n->op]);
		if (n->op == QO_IS_NULL || n->op == QO_NOT_NULL)
			break;
		sb_add(b, " ", 1);
		sb_literal(b, &n->lit);
		break;
	}
}

/* --- the query object --- */

int query_parse(const char *expr, struct query **out, char *msg, size_t msgsz)
{
	struct parser p = {.src = expr, .msg = msg, .msgsz = msgsz};
	struct sbuf text = {0};
	struct query *q;
	int rc;

	*out = NULL;
	if (strlen(expr) > QUERY_MAX_LEN) {
		dmfs_say(msg, msgsz, "the query is longer than %d bytes",
			 QUERY_MAX_LEN);
		return DMFS_ERR_INVAL;
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		return DMFS_ERR_NOMEM;
	p.q = q;
	q->src = strdup(expr);
	rc = q->src ? 0 : DMFS_ERR_NOMEM;
	if (!rc)
		rc = advance(&p);
	if (!rc)
		rc = parse_or(&p, &q->root);
	if (!rc && p.tok.k != QT_EOF) {
		/* `a == 1 b`, `a == 1)`: something after a whole
		 * expression. */
		if (p.tok.k == QT_RPAREN)
			rc = fail(&p, p.tok.off,
				  "unexpected ')' (no '(' to "
				  "close)");
		else
			rc = unexpected(&p);
	}
	free(p.tok.s);
	if (!rc) {
		sb_node(&text, q->root);
		q->text = text.p;
		rc = text.oom || !text.p ? DMFS_ERR_NOMEM : 0;
	}
	if (rc) {
		query_free(q);
		return rc;
	}
	*out = q;
	return 0;
}

void query_free(struct query *q)
{
	if (!q)
		return;
	node_free(q->root);
	for (size_t i = 0; i < q->nfields; i++)
		free(q->fields[i]);
	free(q->fields);
	free(q->src);
	free(q->text);
	free(q);
}

const char *query_text(const struct query *q) { return q->text; }

int query_fields(const struct query *q, int (*cb)(void *ctx, const char *field),
		 void *ctx)
{
	for (size_t i = 0; i < q->nfields; i++) {
		int rc = cb(ctx, q->fields[i]);

		if (rc)
			return rc;
	}
	return 0;
}

/* --- types --- */

static const char *a_type(enum mval_type t)
{
	switch (t) {
	case MV_INT:
		return "an int";
	case MV_FLOAT:
		return "a float";
	case MV_BOOL:
		return "a bool";
	case MV_STRING:
		return "a string";
	case MV_BLOB:
		return "a blob";
	default:
		return "null";
	}
}

/*
 * Whether a value of type have suits test n: 0, or DMFS_ERR_INVAL with
 * "LINE:COL: FIELD is a T, compared with a L".  Numbers go with numbers,
 * bools with bools, string literals with strings and blobs (bytewise),
 * except that glob needs a string.
 */
static int type_ok(const struct query *q, const struct qnode *n,
		   enum mval_type have, char *msg, size_t msgsz)
{
	enum mval_type lit = n->lit.t;
	struct sbuf name = {0};
	int line, col;
	bool ok;

	switch (n->op) {
	case QO_IS_NULL:
	case QO_NOT_NULL:
		return 0;
	case QO_TRUE:
		ok = have == MV_BOOL;
		lit = MV_BOOL;
		break;
	case QO_GLOB:
		ok = have == MV_STRING;
		break;
	default:
		if (lit == MV_INT || lit == MV_FLOAT)
			ok = have == MV_INT || have == MV_FLOAT;
		else if (lit == MV_STRING)
			ok = have == MV_STRING || have == MV_BLOB;
		else
			ok = have == lit;
		break;
	}
	if (ok)
		return 0;
	qlex_position(q->src, n->off, &line, &col);
	sb_field(&name, n->field);
	if (n->op == QO_TRUE)
		dmfs_say(msg, msgsz,
			 "%d:%d: %s is %s, used as a bool (compare it with "
			 "a value)",
			 line, col, name.p ? name.p : n->field, a_type(have));
	else if (n->op == QO_GLOB && have == MV_BLOB)
		dmfs_say(msg, msgsz, "%d:%d: %s is a blob; glob needs a string",
			 line, col, name.p ? name.p : n->field);
	else
		dmfs_say(msg, msgsz, "%d:%d: %s is %s, compared with %s", line,
			 col, name.p ? name.p : n->field, a_type(have),
			 a_type(lit));
	free(name.p);
	return DMFS_ERR_INVAL;
}

struct check_ctx {
	const struct query *q;
	query_type_fn type_of;
	void *ctx;
	char *msg;
	size_t msgsz;
};

static int check_node(struct check_ctx *c, const struct qnode *n)
{
	enum mval_type t;
	int rc;

	switch (n->kind) {
	case QN_OR:
	case QN_AND:
		rc = check_node(c, n->a);
		return rc ? rc : check_node(c, n->b);
	case QN_NOT:
		return check_node(c, n->a);
	case QN_TEST:
		t = c->type_of(c->ctx, n->field);
		return t == MV_NULL ? 0 : type_ok(c->q, n, t, c->msg, c->msgsz);
	}
	return 0;
}

int query_check(const struct query *q, query_type_fn type_of, void *ctx,
		char *msg, size_t msgsz)
{
	struct check_ctx c = {q, type_of, ctx, msg, msgsz};

	return check_node(&c, q->root);
}

/* --- what an index can answer --- */

/* The i-th indexable test under n (an and-chain), counting down *i. */
static const struct qnode *nth_cmp(const struct qnode *n, size_t *i)
{
	const struct qnode *r;

	if (n->kind == QN_AND) {
		r = nth_cmp(n->a, i);
		return r ? r : nth_cmp(n->b, i);
	}
	if (n->kind != QN_TEST || n->lit.t == MV_NULL)
		return NULL;
	switch (n->op) {
	case QO_EQ:
	case QO_LT:
	case QO_LE:
	case QO_GT:
	case QO_GE:
	case QO_STARTSWITH:
		break;
	default:
		return NULL;
	}
	return (*i)-- == 0 ? n : NULL;
}

int query_conjunct(const struct query *q, size_t i, const char **field,
		   enum query_cmp *op, const struct mval **lit)
{
	const struct qnode *n = q ? nth_cmp(q->root, &i) : NULL;

	if (!n)
		return 0;
	*field = n->field;
	*lit = &n->lit;
	*op = n->op == QO_EQ   ? QC_EQ
	      : n->op == QO_LT ? QC_LT
	      : n->op == QO_LE ? QC_LE
	      : n->op == QO_GT ? QC_GT
	      : n->op == QO_GE ? QC_GE
			       : QC_STARTSWITH;
	return 1;
}

/* --- evaluation --- */

struct eval_ctx {
	const struct query *q;
	query_get_fn get;
	void *row;
	char *msg;
	size_t msgsz;
};

static bool starts_with(const struct mval *v, const struct mval *lit)
{
	return v->len >= lit->len &&
	       (lit->len == 0 || memcmp(v->s, lit->s, lit->len) == 0);
}

static bool has_part(const struct mval *v, const struct mval *lit)
{
	return lit->len == 0 ||
	       (v->len >= lit->len && memmem(v->s, v->len, lit->s, lit->len));
}

static int eval_test(struct eval_ctx *e, const struct qnode *n, bool *match)
{
	const struct mval *v = NULL;
	int rc = e->get(e->row, n->field, &v);
	int c;

	if (rc)
		return rc;
	if (!v || v->t == MV_NULL) {
		/* No value: only "is null" and != hold. */
		*match = n->op == QO_IS_NULL || n->op == QO_NE;
		return 0;
	}
	rc = type_ok(e->q, n, v->t, e->msg, e->msgsz);
	if (rc)
		return rc;
	switch (n->op) {
	case QO_IS_NULL:
		*match = false;
		break;
	case QO_NOT_NULL:
		*match = true;
		break;
	case QO_TRUE:
		*match = v->b;
		break;
	case QO_CONTAINS:
		*match = has_part(v, &n->lit);
		break;
	case QO_STARTSWITH:
		*match = starts_with(v, &n->lit);
		break;
	case QO_GLOB:
		/* Flags 0: '*' and '?' match '/' too, so "*.jpg" matches a
		 * path in any directory; a leading '.' is not special. */
		*match = fnmatch(n->lit.s, v->s, 0) == 0;
		break;
	default:
		/* A blob against a string literal compares bytes. */
		if (v->t == MV_BLOB) {
			struct mval as_blob = n->lit;

			as_blob.t = MV_BLOB;
			c = mval_cmp(v, &as_blob);
		} else {
			c = mval_cmp(v, &n->lit);
		}
		*match =
		    (n->op == QO_EQ && c == 0) || (n->op == QO_NE && c != 0) ||
		    (n->op == QO_LT && c < 0) || (n->op == QO_LE && c <= 0) ||
		    (n->op == QO_GT && c > 0) || (n->op == QO_GE && c >= 0);
		break;
	}
	return 0;
}

static int eval_node(struct eval_ctx *e, const struct qnode *n, bool *match)
{
	bool left = false, right = false;
	int rc;

	switch (n->kind) {
	case QN_OR:
	case QN_AND:
		/* Both sides always: a type error on the right must not
		 * depend on whether the left happened to decide the row. */
		rc = eval_node(e, n->a, &left);
		if (!rc)
			rc = eval_node(e, n->b, &right);
		*match = n->kind == QN_OR ? left || right : left && right;
		return rc;
	case QN_NOT:
		rc = eval_node(e, n->a, match);
		*match = !*match;
		return rc;
	case QN_TEST:
		return eval_test(e, n, match);
	}
	return 0;
}

int query_eval(const struct query *q, query_get_fn get, void *row, bool *match,
	       char *msg, size_t msgsz)
{
	struct eval_ctx e = {q, get, row, msg, msgsz};

	*match = false;
	return eval_node(&e, q->root, match);
}

/* --- ad-hoc query directories --- */

int query_url_decode(const char *in, char **out)
{
	size_t n = strlen(in), o = 0;
	char *s = malloc(n + 1);

	*out = NULL;
	if (!s)
		return DMFS_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (in[i] != '%') {
			s[o++] = in[i];
			continue;
		}
		hi = dmfs_hex_value(in[i + 1]);
		lo = hi < 0 ? -1 : dmfs_hex_value(in[i + 2]);
		/* %00 would cut the expression short: refused. */
		if (lo < 0 || (hi == 0 && lo == 0)) {
			free(s);
			return DMFS_ERR_INVAL;
		}
		s[o++] = (char)(hi * 16 + lo);
		i += 2;
	}
	s[o] = '\0';
	*out = s;
	return 0;
}
