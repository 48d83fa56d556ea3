/*
 * keyname.c - which object keys can be paths (see keyname.h).
 *
 * S3 keys are any UTF-8 up to 1 024 bytes; a path component is any bytes
 * but '/' and NUL, at most NAME_MAX, and never "." or "..", which the
 * kernel resolves itself.  So some keys have no path: "a/../b", "./x",
 * "a//b", "/x", ".", a key with a 300-byte component.  Listing them would
 * give the kernel names it cannot take (an entry named ".." or a name
 * longer than NAME_MAX breaks `ls` and `find`), and mapping them to some
 * other path would make two keys one file.  So, as s3fs and rclone do for
 * most of them, they are hidden: the listing leaves the entry out, and
 * every lookup goes through the listing of the parent, so no path reaches
 * them.  A key with an empty, "." or ".." component hides everything
 * under that component: "a/../" is one hidden unit, whatever follows.
 *
 * Names that are not UTF-8 cannot be keys of an S3 bucket, and a file://
 * store is the same bucket on a disk: such names are hidden when a
 * file:// directory has them, and refused (EILSEQ) when created through
 * live/, whatever the store, so a tree never depends on where it lives.
 *
 * The functions here are pure; keyname_hidden.c counts what is hidden.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dmfs/err.h"
#include "dmfs/keyname.h"

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0
 * when it is not one.  The table of well-formed sequences of Unicode
 * (chapter 3, table 3-7). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		return 0; /* continuation byte, 0xc0, 0xc1, 0xf5.. */
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

bool keyname_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		size_t l = utf8_seq(p + i, n - i);
		if (!l)
			return false;
		i += l;
	}
	return true;
}

enum keyname_fault keyname_check(const char *name, size_t n)
{
	if (n == 0)
		return KEYNAME_EMPTY;
	if ((n == 1 && name[0] == '.') ||
	    (n == 2 && name[0] == '.' && name[1] == '.'))
		return KEYNAME_DOT;
	if (n > KEYNAME_NAME_MAX)
		return KEYNAME_TOO_LONG;
	if (!keyname_utf8_valid(name, n))
		return KEYNAME_NOT_UTF8;
	return KEYNAME_OK;
}

const char *keyname_fault_str(enum keyname_fault f)
{
	switch (f) {
	case KEYNAME_OK:
		return "a valid name";
	case KEYNAME_EMPTY:
		return "empty path component";
	case KEYNAME_DOT:
		return "'.' or '..' path component";
	case KEYNAME_TOO_LONG:
		return "path component longer than 255 bytes";
	case KEYNAME_NOT_UTF8:
		return "name is not valid UTF-8";
	}
	return "unknown";
}

enum keyname_fault keyname_check_path(const char *path, size_t *unit_len)
{
	const char *s = path;

	*unit_len = 0;
	while (*s) {
		const char *e = strchrnul(s, '/');
		enum keyname_fault f = keyname_check(s, (size_t)(e - s));
		if (f) {
			*unit_len = (size_t)(e - path) + (*e ? 1 : 0);
			return f;
		}
		if (!*e || !e[1])
			break; /* the end, or a directory marker "a/" */
		s = e + 1;
	}
	return KEYNAME_OK;
}

int keyname_check_new(const char *key, char *msg, size_t msgsz)
{
	size_t n = strlen(key);
	char q[160];

	if (n > KEYNAME_KEY_MAX) {
		keyname_quote(key, n < 60 ? n : 60, q, sizeof(q));
		dmfs_say(msg, msgsz, "%s...: key of %zu bytes; S3 takes at "
			 "most %d", q, n, KEYNAME_KEY_MAX);
		return DMFS_ERR_NAME_TOO_LONG;
	}
	if (!keyname_utf8_valid(key, n)) {
		keyname_quote(key, n, q, sizeof(q));
		dmfs_say(msg, msgsz, "%s: name is not valid UTF-8 (S3 keys "
			 "are UTF-8)", q);
		return DMFS_ERR_BAD_NAME;
	}
	/* A component longer than listings show would be created and then
	 * hidden (keyname_check): refuse it here instead. */
	for (const char *c = key; *c;) {
		const char *e = strchr(c, '/');
		size_t len = e ? (size_t)(e - c) : strlen(c);
		if (len > KEYNAME_NAME_MAX) {
			keyname_quote(c, 60, q, sizeof(q));
			dmfs_say(msg, msgsz, "%s...: a name of %zu bytes; at "
				 "most %d", q, len, KEYNAME_NAME_MAX);
			return DMFS_ERR_NAME_TOO_LONG;
		}
		c = e ? e + 1 : c + len;
	}
	return 0;
}

void keyname_quote(const char *s, size_t n, char *out, size_t outsz)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;

	if (!outsz)
		return;
	for (size_t i = 0; i < n;) {
		size_t l = p[i] >= 0x80 ? utf8_seq(p + i, n - i) : 0;
		if (l) { /* a whole multibyte character */
			if (o + l >= outsz)
				break;
			memcpy(out + o, p + i, l);
			o += l;
			i += l;
		} else if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
			if (o + 1 >= outsz)
				break;
			out[o++] = (char)p[i++];
		} else {
			if (o + 4 >= outsz)
				break;
			snprintf(out + o, 5, "\\x%02x", p[i++]);
			o += 4;
		}
	}
	out[o] = '\0';
}
