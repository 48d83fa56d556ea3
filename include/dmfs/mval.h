/*
 * mval.h - one typed metadata value: int, float, bool, string or blob (or
 * null, which means "no value": writing null removes a field).
 *
 * Values arrive as text (setfattr, CSV cells) or as JSON (JSON Lines
 * batches, log objects, manifests).  Text is typed by inference unless the
 * field's type is already fixed: "5" int, "0.5" float, "true"/"false"
 * bool, other UTF-8 text string, bytes that are not UTF-8 blob.  A value
 * that does not fit a fixed type is DMFS_ERR_INVAL with a message saying
 * why.  In JSON a blob is {"$base64": "..."}; everything else is the JSON
 * scalar of the same type.
 */
#ifndef DMFS_MVAL_H
#define DMFS_MVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

enum mval_type { MV_NULL = 0, MV_INT, MV_FLOAT, MV_BOOL, MV_STRING, MV_BLOB };

/* The longest value accepted (bytes of a string or blob): what a Linux
 * xattr can carry. */
#define MVAL_MAX_LEN 65536

/* A value.  s (string, blob) is owned by the struct, always followed by a
 * '\0' not counted in len.  Zero-initialised it is null. */
struct mval {
	enum mval_type t;
	int64_t i;
	double f;
	bool b;
	char *s;
	size_t len;
};

/* "int", "float", "bool", "string", "blob", "null".  Cannot fail. */
const char *mval_type_name(enum mval_type t);
/* The type named name: 0, or DMFS_ERR_INVAL. */
int mval_type_parse(const char *name, enum mval_type *out);

/*
 * A value from text (len bytes, not necessarily terminated).  want ==
 * MV_NULL infers the type; any other type parses the text as that type
 * (an int field takes "5", a string field takes "5" as the string "5").
 * A float field also takes an int literal.  0, or DMFS_ERR_INVAL /
 * DMFS_ERR_TOO_BIG with msg, or DMFS_ERR_NOMEM.  out is overwritten (not
 * cleared first).
 */
int mval_from_text(const char *text, size_t len, enum mval_type want,
		   struct mval *out, char *msg, size_t msgsz)
	__attribute__((warn_unused_result));

/*
 * A value from JSON: null, number (int when integral and within +-2^53,
 * else float: cJSON does not keep how a number was written, so 5.0 infers
 * as the int 5), true/false, string, {"$base64": "..."}; also the raw
 * decimal text mval_to_json makes for ints beyond 2^53.  want as for
 * mval_from_text, but JSON types are not converted except int -> float (a
 * JSON string "5" for an int field is an error).  Borrowed j.
 */
int mval_from_json(const cJSON *j, enum mval_type want, struct mval *out,
		   char *msg, size_t msgsz) __attribute__((warn_unused_result));

/* The JSON of a value (caller frees with cJSON_Delete).  NULL on ENOMEM.
 * Ints beyond +-2^53 (which a JSON double would round) are cJSON raw
 * decimal text; mval_from_json reads them back. */
cJSON *mval_to_json(const struct mval *v);

/*
 * The value as getfattr shows it: decimal int, shortest round-tripping
 * float, "true"/"false", the raw bytes of a string or blob.  *out (caller
 * frees) is '\0'-terminated, *len excludes it.  0 or DMFS_ERR_NOMEM.
 */
int mval_to_text(const struct mval *v, char **out, size_t *len)
	__attribute__((warn_unused_result));

/* Deep copy.  0 or DMFS_ERR_NOMEM (dst is then null). */
int mval_copy(struct mval *dst, const struct mval *src)
	__attribute__((warn_unused_result));
/* Free what v owns; v becomes null.  NULL-safe. */
void mval_clear(struct mval *v);

/* Whether a value of type have may be stored in / compared with a field of
 * type want (equal, or int into float).  MV_NULL on either side (a null
 * value removes a field; a field of unknown type takes anything) fits. */
bool mval_fits(enum mval_type have, enum mval_type want);

/* Order of two values of comparable types (int and float compare as
 * numbers; strings and blobs bytewise; false < true): <0, 0, >0. */
int mval_cmp(const struct mval *a, const struct mval *b);
/* Equal type (after int/float) and value. */
bool mval_equal(const struct mval *a, const struct mval *b);

#endif
