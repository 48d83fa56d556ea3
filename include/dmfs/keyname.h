/*
 * keyname.h - which object keys can be paths, and which names may be
 * created (see keyname.c for the rules and why).
 *
 * The rules are the same for every store kind, so what live/ shows and
 * accepts never depends on where the bucket is.
 */
#ifndef DMFS_KEYNAME_H
#define DMFS_KEYNAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYNAME_NAME_MAX 255  /* bytes of one path component (NAME_MAX) */
#define KEYNAME_KEY_MAX 1024  /* bytes of a key S3 accepts */

/* Why a name cannot be a directory entry.  KEYNAME_OK is 0. */
enum keyname_fault {
	KEYNAME_OK = 0,
	KEYNAME_EMPTY = 1,    /* "" between two '/' or before the first */
	KEYNAME_DOT = 2,      /* "." or "..": the kernel's own names */
	KEYNAME_TOO_LONG = 3, /* more than KEYNAME_NAME_MAX bytes */
	KEYNAME_NOT_UTF8 = 4, /* not valid UTF-8 */
};

/* Whether n bytes at s are well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF).  Cannot fail. */
bool keyname_utf8_valid(const char *s, size_t n);

/* The fault of one path component of n bytes (no '/' inside, by
 * construction of the callers).  Cannot fail. */
enum keyname_fault keyname_check(const char *name, size_t n);

/* Static English text for a fault.  Cannot fail. */
const char *keyname_fault_str(enum keyname_fault f);

/*
 * The first component of a relative path ("a/b/c") that cannot be a
 * directory entry.  Returns its fault, or KEYNAME_OK when every component
 * is fine; then *unit_len is the length of the hidden unit: the path up
 * to the end of that component, with its '/' when more follows ("a//b"
 * gives "a//", "a/../b" gives "a/../", a bad last component the whole
 * path).  A trailing '/' (a directory marker) is not a fault.  Cannot fail.
 */
enum keyname_fault keyname_check_path(const char *path, size_t *unit_len);

/*
 * Whether a key relative to the mounted root may be created through
 * live/ (open O_CREAT, mkdir, rename to it, symlink): every component
 * valid UTF-8, the key at most KEYNAME_KEY_MAX bytes.  0,
 * DMFS_ERR_BAD_NAME or DMFS_ERR_NAME_TOO_LONG with the reason in msg.
 */
int keyname_check_new(const char *key, char *msg, size_t msgsz)
	__attribute__((warn_unused_result));

/* n bytes at s for a log line or a message: printable ASCII and valid
 * UTF-8 as they are, '\\' and control or invalid bytes as \\xNN.  Always
 * NUL-terminated, cut to outsz.  Cannot fail. */
void keyname_quote(const char *s, size_t n, char *out, size_t outsz);

/*
 * Hidden names.  Each distinct unit (see keyname_check_path) a listing
 * hides is logged once at warning level, naming it, and counted; the
 * count is .dmfs/status's "hidden_keys".  Process-wide and thread-safe;
 * at most KEYNAME_HIDDEN_MAX distinct units are remembered (beyond that
 * the count stays and one line says so).  unit: n bytes, the key or the
 * prefix relative to the store's root; why: keyname_fault_str() or other
 * static text.  Cannot fail.  (keyname_hidden.c)
 */
#define KEYNAME_HIDDEN_MAX 65536
void keyname_note_hidden(const char *unit, size_t n, const char *why);
/* Distinct hidden units seen since the process started. */
uint64_t keyname_hidden_count(void);

#endif
