/*
 * metaq_int.h - what the metaq_*.c files share: one query row (a tree
 * entry, its user fields and the automatic fields derived on demand).
 */
#ifndef DMFS_METAQ_INT_H
#define DMFS_METAQ_INT_H

#include "dmfs/metaq.h"

struct metaq_row {
	const char *path;		/* borrowed */
	const struct manifest_entry *e; /* borrowed; may be NULL */
	const struct meta_row *user;	/* borrowed; may be NULL */
	struct mval tmp;		/* the last automatic value */
	char scratch[4096];		/* its bytes, when copied */
};

/* Borrowed for the call: the row does not copy path, e or user. */
void metaq_row_init(struct metaq_row *r, const char *path,
		    const struct manifest_entry *e,
		    const struct meta_row *user);
/* A field's value (user field, then automatic, then path segment), or
 * NULL.  Borrowed; valid until the next call on r. */
const struct mval *metaq_row_get(struct metaq_row *r, const char *field);
/* query_get_fn over a struct metaq_row.  Cannot fail. */
int metaq_row_query_get(void *row, const char *field, const struct mval **out);
/* The type of an automatic field, MV_NULL for others. */
enum mval_type metaq_auto_type(const char *field);
/* The user fields frozen in a manifest entry (json may be NULL: none).
 * Caller clears out with meta_row_clear.  0 or DMFS_ERR_* with msg. */
int metaq_row_from_json(const char *path, const char *json,
			struct meta_row *out, char *msg, size_t msgsz)
    __attribute__((warn_unused_result));

/* --- metaq_index.c: queries answered through the field index --- */

/* Candidate object keys, sorted, distinct.  Owned. */
struct metaq_cands {
	char **p;
	size_t n, cap;
};
void metaq_cands_free(struct metaq_cands *c);
/*
 * Whether query q over the live tree under key prefix pfx is better
 * answered from the field index of m: *use set, and c filled with the
 * keys to look up (every key the walk would match is among them).  q
 * must have passed metaq_check.  0 or DMFS_ERR_* with msg.
 */
int metaq_index_plan(const struct capture_env *env, struct meta *m,
		     const char *pfx, const struct query *q,
		     struct metaq_cands *c, int *use, char *msg, size_t msgsz)
	__attribute__((warn_unused_result));

#endif
