/*
 * query.h - the metadata query language (grammar in man/dmfs-query.7).
 *
 *   episode > 5 and (label == "cat" or label contains "yoda")
 *       and not split is null
 *
 * Comparison == != < <= > >=, contains, startswith, glob (strings and
 * paths), is null, is not null; and, or, not (also &, |, ~); parentheses;
 * int, float, string ('..' or "..", backslash escapes, \uXXXX) and bool
 * literals.  A field is a bare name ([A-Za-z_][A-Za-z0-9_.-]*) or any text
 * in backticks (`my field`, `` `` `` for a backtick).  Keywords are
 * case-insensitive.  Precedence, loosest first: or, and, not, comparison.
 *
 * A field with no value (null) makes every comparison false except
 * "is null" (and != is true: `label != "cat"` matches a file without a
 * label).  Comparing a value with a literal of another type (a string
 * field with a number, ...) is an error, never a silent false; int and
 * float compare as numbers.
 *
 * One parser serves `dmfs query`, query directories and --from-query.
 */
#ifndef DMFS_QUERY_H
#define DMFS_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#include "dmfs/mval.h"

struct query;

/*
 * Compile expr.  On a syntax error DMFS_ERR_INVAL with msg
 * "LINE:COL: what went wrong" (e.g. "1:12: expected a value after '>'"),
 * then a newline, the offending line and a caret line under the column.
 * Caller frees *out with query_free.
 */
int query_parse(const char *expr, struct query **out, char *msg,
		size_t msgsz) __attribute__((warn_unused_result));
void query_free(struct query *q);

/* The expression text, normalised (one space between tokens, minimal
 * parentheses): what .query files and saved queries show.  Borrowed. */
const char *query_text(const struct query *q);

/*
 * The value of field in the row being evaluated: 0 with *out pointing at
 * a value owned by the row (valid until query_eval returns), or 0 with
 * *out NULL when the row has no such field.
 */
typedef int (*query_get_fn)(void *row, const char *field,
			    const struct mval **out);

/*
 * Check the query against known field types before running it (so a type
 * error is reported even when no row has the field).  type_of returns
 * MV_NULL for a field of unknown type.  0, or DMFS_ERR_INVAL with msg
 * "LINE:COL: label is a string, compared with an int".
 */
typedef enum mval_type (*query_type_fn)(void *ctx, const char *field);
int query_check(const struct query *q, query_type_fn type_of, void *ctx,
		char *msg, size_t msgsz);

/*
 * Evaluate for one row: 0 with *match set, or DMFS_ERR_INVAL with msg on a
 * type error (a value compared with a literal of another type).
 */
int query_eval(const struct query *q, query_get_fn get, void *row,
	       bool *match, char *msg, size_t msgsz)
	__attribute__((warn_unused_result));

/*
 * Call cb once per distinct field name the query reads, in order of first
 * appearance.  cb returns nonzero to stop (returned).
 */
int query_fields(const struct query *q, int (*cb)(void *ctx,
						  const char *field),
		 void *ctx);

/*
 * Percent-decode the name of an ad-hoc query directory
 * (queries/@/<percent-encoded expression>/): %XX (either case) is the byte
 * XX, everything else, '+' included, stands for itself.  0, or
 * DMFS_ERR_INVAL for a '%' without two hex digits or %00, or
 * DMFS_ERR_NOMEM.  Caller frees *out.
 */
int query_url_decode(const char *in, char **out)
	__attribute__((warn_unused_result));

/* A comparison an index can answer. */
enum query_cmp { QC_EQ, QC_LT, QC_LE, QC_GT, QC_GE, QC_STARTSWITH };

/*
 * The i-th (from 0) comparison of a field with a literal (==, <, <=, >,
 * >=, startswith) that the whole query requires: the query itself, or a
 * term of its top-level and-chain.  1 with field and lit (borrowed from
 * q) and op filled, or 0 when there are fewer.  A row the query matches
 * passes each such comparison, so the rows passing one are a superset.
 */
int query_conjunct(const struct query *q, size_t i, const char **field,
		   enum query_cmp *op, const struct mval **lit);

#endif
