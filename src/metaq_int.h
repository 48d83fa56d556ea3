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

#endif
