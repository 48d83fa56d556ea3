/*
 * metaq.h - running a query over a tree, and the row formats of the
 * metadata files and commands.
 *
 * A query's rows are the files of a tree (tree.h): the live bucket under a
 * prefix, with each file's user fields from the metadata table (meta.h),
 * or a snapshot or version, with the metadata frozen in its manifest.
 * Each row also has the automatic fields: path (relative to the store
 * root for live, to the version's root otherwise), name, ext (without the
 * dot, "" when none), dir ("" at the top), size, mtime (seconds, int),
 * etag, and one string field per "key=value" path segment
 * (provider=hf/task=ocr/x gives provider "hf", task "ocr").  A user field
 * of the same name as a path segment wins.
 *
 * The same rows (path + user fields) are what DIR/.dmfs.meta reads,
 * `dmfs meta export` writes and .results.jsonl shows.
 */
#ifndef DMFS_METAQ_H
#define DMFS_METAQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "dmfs/capture.h"
#include "dmfs/manifest.h"
#include "dmfs/meta.h"
#include "dmfs/query.h"

/* One matching file.  Everything borrowed for the callback only. */
struct metaq_hit {
	const char *path;	/* relative to the tree's root */
	const struct manifest_entry *e;
	const struct meta_row *row;	/* user fields (row->path == path) */
};

/*
 * Call cb for each file of tree spec ("live[/SUB]", "snapshots/ID[/SUB]",
 * "datasets/N/V[/SUB]") matching q (NULL: every file), in byte order of
 * path.  m supplies live metadata (may be NULL: no user fields).  cb
 * returns nonzero to stop (returned).  DMFS_ERR_INVAL with msg for a type
 * error in the query.
 */
int metaq_run(const struct capture_env *env, struct meta *m,
	      const char *spec, const struct query *q,
	      int (*cb)(void *ctx, const struct metaq_hit *h), void *ctx,
	      char *msg, size_t msgsz) __attribute__((warn_unused_result));

/*
 * Check q against the field types known for tree spec (the table's for
 * live, the automatic fields' everywhere) before running it, so a type
 * error is reported even when no file has the field.  0 or
 * DMFS_ERR_INVAL with msg.  q may be NULL.
 */
int metaq_check(struct meta *m, const char *spec, const struct query *q,
		char *msg, size_t msgsz) __attribute__((warn_unused_result));

/*
 * Whether manifest entry e (its path, attributes and the user fields in
 * e->meta_json) matches q (NULL: everything).  0 with *match set, or
 * DMFS_ERR_INVAL with msg on a type error.  For capture filters.
 */
int metaq_match_entry(const struct query *q, const struct manifest_entry *e,
		      bool *match, char *msg, size_t msgsz)
	__attribute__((warn_unused_result));

/*
 * For `commit --from-query ARG`: ARG is a saved query's name, else an
 * expression; parsed and checked against the field types of tree from.
 * 0 with *q (caller frees with query_free), or DMFS_ERR_INVAL with msg.
 * Then capture_req.filter = metaq_capture_filter, filter_ctx = *q.
 */
int metaq_filter_prepare(struct dmfs_store *st, struct meta *m,
			 const char *from, const char *arg, struct query **q,
			 char *msg, size_t msgsz)
	__attribute__((warn_unused_result));
int metaq_capture_filter(void *q, const struct manifest_entry *e, bool *keep,
			 char *msg, size_t msgsz);

enum metaq_format { METAQ_PATHS, METAQ_JSONL, METAQ_CSV };
/* "paths", "jsonl", "csv": 0 or DMFS_ERR_INVAL. */
int metaq_format_parse(const char *name, enum metaq_format *out);

/*
 * Write the matches as fmt to out: paths one per line; JSON Lines objects
 * {"path": …, user fields…} (with_auto: the automatic fields too); CSV
 * with a header row of "path" then every field that occurs, sorted (a
 * second pass over the tree, so nothing is held in memory).  0 or
 * DMFS_ERR_* with msg (DMFS_ERR_IO when out fails).
 */
int metaq_export(const struct capture_env *env, struct meta *m,
		 const char *spec, const struct query *q,
		 enum metaq_format fmt, bool with_auto, FILE *out, char *msg,
		 size_t msgsz) __attribute__((warn_unused_result));

/*
 * Check that every path of b is a file of the live tree under dir (one
 * listing, merged with the batch's sorted paths).  DMFS_ERR_NOT_FOUND
 * with msg naming the first missing one.
 */
int metaq_check_paths(const struct capture_env *env, const char *dir,
		      const struct meta_batch *b, char *msg, size_t msgsz)
	__attribute__((warn_unused_result));

/*
 * Parse a batch of metadata updates for files under dir ("" the root; the
 * batch's paths are relative to it) from JSON Lines (each line an object
 * with "path"; null removes a field) or CSV (a header row with a "path"
 * column; an empty cell removes the field; cells typed as setfattr text
 * is).  The format is told by the first non-blank byte ('{' is JSON
 * Lines).  Field types come from m.  DMFS_ERR_INVAL with msg
 * "line 37: ..." and nothing added on a malformed row.
 */
int metaq_parse_batch(struct meta *m, const char *dir, const char *text,
		      size_t len, struct meta_batch *b, char *msg,
		      size_t msgsz) __attribute__((warn_unused_result));

/*
 * The same, fed in pieces (a control file written by write(2)s): each
 * complete line or record is parsed as it arrives, so a bad one fails
 * the write that completed it; metaq_parser_end parses the rest.  After
 * an error every call returns it again.  b and m are borrowed; caller
 * frees the parser with metaq_parser_free.
 */
struct metaq_batch_parser;
int metaq_parser_new(struct meta *m, const char *dir, struct meta_batch *b,
		     struct metaq_batch_parser **out)
	__attribute__((warn_unused_result));
int metaq_parser_feed(struct metaq_batch_parser *p, const char *text,
		      size_t len, char *msg, size_t msgsz)
	__attribute__((warn_unused_result));
int metaq_parser_end(struct metaq_batch_parser *p, char *msg, size_t msgsz)
	__attribute__((warn_unused_result));
void metaq_parser_free(struct metaq_batch_parser *p);

/* Saved queries, shared through the bucket at .dmfs/queries/NAME.json. */
#define METAQ_SAVED_PREFIX ".dmfs/queries/"
/* Whether name may name a saved query: 1-200 bytes, no '/', no control
 * characters, not starting with '.' or '@'.  0 or DMFS_ERR_INVAL with
 * msg (may be NULL). */
int metaq_check_name(const char *name, char *msg, size_t msgsz);
/* Store expr (parsed first: DMFS_ERR_INVAL with msg when it does not) as
 * saved query name, replacing one of the same name. */
int metaq_save(struct dmfs_store *st, const char *name, const char *expr,
	       char *msg, size_t msgsz) __attribute__((warn_unused_result));
/* The expression of a saved query (caller frees): 0 or
 * DMFS_ERR_NOT_FOUND. */
int metaq_load(struct dmfs_store *st, const char *name, char **expr)
	__attribute__((warn_unused_result));
int metaq_delete(struct dmfs_store *st, const char *name)
	__attribute__((warn_unused_result));
/* The saved queries' names, in byte order.  cb returns nonzero to stop. */
int metaq_list(struct dmfs_store *st,
	       int (*cb)(void *ctx, const char *name), void *ctx)
	__attribute__((warn_unused_result));

#endif
