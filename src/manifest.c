/*
 * manifest.c - manifests: JSON Lines written and read as streams (see
 * manifest.h for the format).
 *
 * Writing.  The header carries the totals, which are known only at the
 * end, so manifest_writer_add() checks each entry, turns it into one line
 * and appends it to a spool file (created in tmpdir and unlinked at once,
 * so nothing is left behind by a crash); manifest_writer_finish() writes
 * the header line, then copies the spool after it, hashing the bytes on
 * the way.  Memory use is one line plus the per-directory totals.
 *
 * Per-directory totals.  Entries are sorted, so the files of one
 * top-level directory "d" (all paths starting "d/") come in one run; the
 * writer keeps one running total per directory.  To keep the header (and
 * every ref, which embeds it) small, only the first MANIFEST_DIRS_MAX
 * directories (or MANIFEST_DIRS_BYTES of their names) in path order get
 * their own total; the files of any further directory are counted under
 * MANIFEST_DIRS_OTHER, a name no directory can have.  Root files are
 * counted under ".".
 *
 * Numbers.  cJSON keeps numbers as doubles.  Sizes and times are written
 * as exact integers (raw text, never "1e+15"), and a reader accepts
 * integers up to 2^53 only, which bounds a file at 8 PiB: S3 objects stop
 * at 5 TiB.
 *
 * Reading.  One line at a time through a fixed read buffer; a line longer
 * than MANIFEST_LINE_MAX is an error, not a reason to grow without bound.
 * Every line is checked (JSON, fields, path rules, strictly increasing
 * order) and the reader checks at the end that the entries add up to the
 * header's totals, so a manifest cut at a line boundary is caught too.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "dmfs/log.h"
#include "dmfs/sha256.h"
#include "dmfs/manifest.h"

#define JSON_INT_MAX 9007199254740992.0 /* 2^53: exact in a double */
#define FIELD_MAX 1024			/* key, version id, names */
#define READ_CHUNK (64 * 1024)
#define COPY_CHUNK (256 * 1024)

/* --- small helpers --- */

static void hex_of(const unsigned char *d, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Why p is not a manifest path (relative: no leading '/', no empty, "."
 * or ".." segment, at most MANIFEST_PATH_MAX bytes), or NULL when it is
 * one.  Cannot fail. */
static const char *path_problem(const char *p)
{
	if (!p || !*p)
		return "empty path";
	if (strlen(p) > MANIFEST_PATH_MAX)
		return "path longer than 1024 bytes";
	if (p[0] == '/')
		return "path starts with '/'";
	for (const char *s = p; *s;) {
		const char *e = strchrnul(s, '/');
		size_t n = (size_t)(e - s);
		if (n == 0)
			return "path has an empty segment";
		if ((n == 1 && s[0] == '.') ||
		    (n == 2 && s[0] == '.' && s[1] == '.'))
			return "path has a '.' or '..' segment";
		if (*e && !e[1])
			return "path ends with '/'";
		s = *e ? e + 1 : e;
	}
	return NULL;
}

/*
 * Whether JSON text holds the escape \u0000 inside a string: cJSON would
 * cut the string there, so the value would silently change.
 */
static bool has_nul_escape(const char *t, size_t n)
{
	bool in = false;

	for (size_t i = 0; i < n; i++) {
		if (!in) {
			in = t[i] == '"';
		} else if (t[i] == '\\') {
			if (i + 5 < n && t[i + 1] == 'u' &&
			    !memcmp(t + i + 2, "0000", 4))
				return true;
			i++;
		} else if (t[i] == '"') {
			in = false;
		}
	}
	return false;
}

/* Parse exactly one JSON value from text[0..len) (whitespace around it is
 * fine).  NULL when it is not valid JSON.  Caller frees with cJSON_Delete. */
static cJSON *parse_exact(const char *text, size_t len, const char **why)
{
	const char *end = NULL;
	cJSON *o;

	if (memchr(text, '\0', len)) {
		*why = "NUL byte in the line";
		return NULL;
	}
	if (has_nul_escape(text, len)) {
		*why = "a string holds a NUL character (\\u0000)";
		return NULL;
	}
	o = cJSON_ParseWithLengthOpts(text, len, &end, false);
	if (!o) {
		*why = "not valid JSON";
		return NULL;
	}
	while (end && end < text + len &&
	       (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
		end++;
	if (!end || end != text + len) {
		cJSON_Delete(o);
		*why = "text after the JSON object";
		return NULL;
	}
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		*why = "not a JSON object";
		return NULL;
	}
	return o;
}

/* --- fields of a parsed object --- */

/* A string member: absent or null gives *out NULL (an error when
 * required); otherwise a copy (caller frees with free()). */
static int get_str(const cJSON *o, const char *name, bool required, size_t max,
		   char **out, char *why, size_t whysz)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	*out = NULL;
	if (!v || cJSON_IsNull(v)) {
		if (required) {
			dmfs_say(why, whysz, "no \"%s\"", name);
			return DMFS_ERR_INVAL;
		}
		return 0;
	}
	if (!cJSON_IsString(v) || !v->valuestring) {
		dmfs_say(why, whysz, "\"%s\" is not a string", name);
		return DMFS_ERR_INVAL;
	}
	if (strlen(v->valuestring) > max) {
		dmfs_say(why, whysz, "\"%s\" is longer than %zu bytes", name, max);
		return DMFS_ERR_INVAL;
	}
	*out = strdup(v->valuestring);
	return *out ? 0 : DMFS_ERR_NOMEM;
}

/* An integer member in [lo, 2^53]. */
static int get_int(const cJSON *o, const char *name, bool required, double lo,
		   double *out, char *why, size_t whysz)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	double x;

	*out = 0;
	if (!v) {
		if (required) {
			dmfs_say(why, whysz, "no \"%s\"", name);
			return DMFS_ERR_INVAL;
		}
		return 0;
	}
	if (!cJSON_IsNumber(v)) {
		dmfs_say(why, whysz, "\"%s\" is not a number", name);
		return DMFS_ERR_INVAL;
	}
	x = v->valuedouble;
	if (!(x >= lo && x <= JSON_INT_MAX) || (double)(int64_t)x != x) {
		dmfs_say(why, whysz, "\"%s\" is not an integer in range", name);
		return DMFS_ERR_INVAL;
	}
	*out = x;
	return 0;
}

static int get_u64(const cJSON *o, const char *name, bool required,
		   uint64_t *out, char *why, size_t whysz)
{
	double x;
	int rc = get_int(o, name, required, 0, &x, why, whysz);

	*out = (uint64_t)x;
	return rc;
}

/* --- building objects --- */

/* Integers as raw text, so they print exactly ("1000000000000000", not
 * "1e+15").  NULL on ENOMEM. */
static cJSON *add_u64(cJSON *o, const char *name, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return cJSON_AddRawToObject(o, name, buf);
}

static cJSON *add_i64(cJSON *o, const char *name, int64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return cJSON_AddRawToObject(o, name, buf);
}

/* Add a string member unless s is NULL.  false on ENOMEM. */
static bool add_opt_str(cJSON *o, const char *name, const char *s)
{
	return !s || cJSON_AddStringToObject(o, name, s);
}

/* Print compactly and free the object.  Caller frees with free(). */
static char *print_and_delete(cJSON *o, bool ok)
{
	char *text = ok ? cJSON_PrintUnformatted(o) : NULL;

	cJSON_Delete(o);
	return text;
}

/* --- entries --- */

void manifest_entry_clear(struct manifest_entry *e)
{
	if (!e)
		return;
	free(e->path);
	free(e->key);
	free(e->version_id);
	free(e->meta_json);
	memset(e, 0, sizeof(*e));
}

/* The rules every entry obeys, written or read.  0 or DMFS_ERR_INVAL with
 * the reason in why. */
static int entry_check(const struct manifest_entry *e, char *why, size_t whysz)
{
	const char *p = path_problem(e->path);

	if (p) {
		dmfs_say(why, whysz, "%s", p);
		return DMFS_ERR_INVAL;
	}
	if ((double)e->size > JSON_INT_MAX) {
		dmfs_say(why, whysz, "%s: size out of range", e->path);
		return DMFS_ERR_INVAL;
	}
	if (e->mode > 07777) {
		dmfs_say(why, whysz, "%s: mode %o is more than permission bits",
		    e->path, e->mode);
		return DMFS_ERR_INVAL;
	}
	if (e->sha256[0] && !dmfs_is_sha256_hex(e->sha256)) {
		dmfs_say(why, whysz, "%s: sha256 is not 64 lowercase hex digits",
		    e->path);
		return DMFS_ERR_INVAL;
	}
	if (!e->sha256[0] && (!e->key || !e->key[0])) {
		dmfs_say(why, whysz, "%s: neither a sha256 nor a key", e->path);
		return DMFS_ERR_INVAL;
	}
	if ((e->key && strlen(e->key) > FIELD_MAX) ||
	    (e->version_id && strlen(e->version_id) > FIELD_MAX) ||
	    strnlen(e->etag, sizeof(e->etag)) >= sizeof(e->etag)) {
		dmfs_say(why, whysz, "%s: key, version id or etag too long",
		    e->path);
		return DMFS_ERR_INVAL;
	}
	return 0;
}

/* The entry as a cJSON object (meta parsed and embedded).  NULL with
 * *bad_meta set when meta_json is not a JSON object, else on ENOMEM. */
static cJSON *entry_object(const struct manifest_entry *e, bool *bad_meta)
{
	cJSON *o = cJSON_CreateObject(), *meta = NULL;
	bool ok = o != NULL;

	*bad_meta = false;
	if (ok && e->meta_json) {
		meta = cJSON_Parse(e->meta_json);
		if (!cJSON_IsObject(meta)) {
			*bad_meta = true; /* (or ENOMEM: cannot tell) */
			ok = false;
		}
	}
	ok = ok && cJSON_AddStringToObject(o, "path", e->path ? e->path : "");
	ok = ok && add_u64(o, "size", e->size);
	ok = ok && add_u64(o, "mode", e->mode);
	ok = ok && add_i64(o, "mtime", e->mtime);
	if (ok && e->sha256[0])
		ok = cJSON_AddStringToObject(o, "sha256", e->sha256) != NULL;
	ok = ok && add_opt_str(o, "key", e->key);
	ok = ok && add_opt_str(o, "version_id", e->version_id);
	if (ok && e->etag[0])
		ok = cJSON_AddStringToObject(o, "etag", e->etag) != NULL;
	if (ok && meta) {
		ok = cJSON_AddItemToObject(o, "meta", meta);
		if (ok)
			meta = NULL;
	}
	cJSON_Delete(meta);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

char *manifest_entry_to_json(const struct manifest_entry *e)
{
	bool bad_meta;
	cJSON *o = entry_object(e, &bad_meta);

	return o ? print_and_delete(o, true) : NULL;
}

int manifest_entry_from_json(const char *text, size_t len,
			     struct manifest_entry *e, char *msg, size_t msgsz)
{
	const char *why = NULL;
	cJSON *o = parse_exact(text, len, &why);
	const cJSON *meta;
	char *sha = NULL;
	double x = 0;
	int rc;

	memset(e, 0, sizeof(*e));
	if (!o) {
		dmfs_say(msg, msgsz, "%s", why);
		return DMFS_ERR_INVAL;
	}
	rc = get_str(o, "path", true, MANIFEST_PATH_MAX, &e->path, msg, msgsz);
	if (!rc)
		rc = get_u64(o, "size", true, &e->size, msg, msgsz);
	if (!rc)
		rc = get_int(o, "mode", true, 0, &x, msg, msgsz);
	if (!rc && x > 07777) {
		dmfs_say(msg, msgsz, "\"mode\" is not a permission mode");
		rc = DMFS_ERR_INVAL;
	}
	e->mode = (uint32_t)x;
	if (!rc)
		rc = get_int(o, "mtime", true, -JSON_INT_MAX, &x, msg, msgsz);
	e->mtime = (int64_t)x;
	if (!rc)
		rc = get_str(o, "sha256", false, 64, &sha, msg, msgsz);
	if (!rc && sha)
		snprintf(e->sha256, sizeof(e->sha256), "%s", sha);
	if (!rc && sha && !e->sha256[0]) {
		dmfs_say(msg, msgsz, "\"sha256\" is empty");
		rc = DMFS_ERR_INVAL;
	}
	if (!rc)
		rc = get_str(o, "key", false, FIELD_MAX, &e->key, msg, msgsz);
	if (!rc)
		rc = get_str(o, "version_id", false, FIELD_MAX, &e->version_id,
			     msg, msgsz);
	free(sha);
	sha = NULL;
	if (!rc)
		rc = get_str(o, "etag", false, DMFS_ETAG_MAX - 1, &sha, msg,
			     msgsz);
	if (!rc && sha)
		snprintf(e->etag, sizeof(e->etag), "%s", sha);
	meta = cJSON_GetObjectItemCaseSensitive(o, "meta");
	if (!rc && meta && !cJSON_IsNull(meta)) {
		if (!cJSON_IsObject(meta)) {
			dmfs_say(msg, msgsz, "\"meta\" is not an object");
			rc = DMFS_ERR_INVAL;
		} else {
			e->meta_json = cJSON_PrintUnformatted(meta);
			if (!e->meta_json)
				rc = DMFS_ERR_NOMEM;
		}
	}
	if (!rc)
		rc = entry_check(e, msg, msgsz);
	free(sha);
	cJSON_Delete(o);
	if (rc)
		manifest_entry_clear(e);
	return rc;
}

/* --- the header --- */

int64_t manifest_header_order(const struct manifest_header *h)
{
	return h->created_us ? h->created_us : h->created * 1000000;
}

void manifest_header_clear(struct manifest_header *h)
{
	if (!h)
		return;
	free(h->kind);
	free(h->name);
	free(h->version);
	free(h->author);
	free(h->message);
	free(h->parent);
	free(h->source);
	for (size_t i = 0; i < h->ndirs; i++)
		free(h->dirs[i].name);
	free(h->dirs);
	memset(h, 0, sizeof(*h));
}

char *manifest_header_to_json(const struct manifest_header *h)
{
	cJSON *o = cJSON_CreateObject(), *dirs = NULL;
	char iso[32] = "";
	struct tm tm;
	time_t t = (time_t)h->created;
	bool ok = o != NULL;

	if (gmtime_r(&t, &tm))
		strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
	ok = ok && cJSON_AddNumberToObject(o, "dmfs_manifest", MANIFEST_FORMAT);
	ok = ok && add_opt_str(o, "kind", h->kind);
	ok = ok && add_opt_str(o, "name", h->name);
	ok = ok && add_opt_str(o, "version", h->version);
	ok = ok && add_i64(o, "created", h->created);
	if (h->created_us)
		ok = ok && add_i64(o, "created_us", h->created_us);
	ok = ok && cJSON_AddStringToObject(o, "created_iso", iso);
	ok = ok && add_opt_str(o, "author", h->author);
	ok = ok && add_opt_str(o, "message", h->message);
	if (ok)
		ok = h->parent ? cJSON_AddStringToObject(o, "parent",
							 h->parent) != NULL
			       : cJSON_AddNullToObject(o, "parent") != NULL;
	ok = ok && add_opt_str(o, "source", h->source);
	ok = ok && cJSON_AddStringToObject(o, "mode",
					   h->zero_copy ? "zero-copy" : "copy");
	ok = ok && add_u64(o, "files", h->files);
	ok = ok && add_u64(o, "bytes", h->bytes);
	ok = ok && (dirs = cJSON_AddObjectToObject(o, "dirs"));
	for (size_t i = 0; ok && i < h->ndirs; i++) {
		cJSON *d = cJSON_AddObjectToObject(dirs, h->dirs[i].name);
		ok = d && add_u64(d, "files", h->dirs[i].files) &&
		     add_u64(d, "bytes", h->dirs[i].bytes);
	}
	if (!o)
		return NULL;
	return print_and_delete(o, ok);
}

static int header_dirs(const cJSON *dirs, struct manifest_header *h, char *msg,
		       size_t msgsz)
{
	size_t n;

	if (!dirs || cJSON_IsNull(dirs))
		return 0;
	if (!cJSON_IsObject(dirs)) {
		dmfs_say(msg, msgsz, "\"dirs\" is not an object");
		return DMFS_ERR_INVAL;
	}
	n = (size_t)cJSON_GetArraySize(dirs);
	h->dirs = n ? calloc(n, sizeof(*h->dirs)) : NULL;
	if (n && !h->dirs)
		return DMFS_ERR_NOMEM;
	for (const cJSON *d = dirs->child; d && h->ndirs < n; d = d->next) {
		struct manifest_dirstat *ds = &h->dirs[h->ndirs];
		int rc;
		if (!cJSON_IsObject(d) || !d->string || !d->string[0]) {
			dmfs_say(msg, msgsz, "\"dirs\" holds a bad entry");
			return DMFS_ERR_INVAL;
		}
		ds->name = strdup(d->string);
		if (!ds->name)
			return DMFS_ERR_NOMEM;
		h->ndirs++;
		rc = get_u64(d, "files", true, &ds->files, msg, msgsz);
		if (!rc)
			rc = get_u64(d, "bytes", true, &ds->bytes, msg, msgsz);
		if (rc)
			return rc;
	}
	return 0;
}

int manifest_header_from_json(const char *text, size_t len,
			      struct manifest_header *out, char *msg,
			      size_t msgsz)
{
	const char *why = NULL;
	cJSON *o = parse_exact(text, len, &why);
	char *mode = NULL;
	double x;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!o) {
		dmfs_say(msg, msgsz, "header: %s", why);
		return DMFS_ERR_INVAL;
	}
	rc = get_int(o, "dmfs_manifest", true, 0, &x, msg, msgsz);
	if (rc)
		dmfs_say(msg, msgsz,
		    "not a dmfs manifest header (no \"dmfs_manifest\" format "
		    "number)");
	else if (x != MANIFEST_FORMAT) {
		dmfs_say(msg, msgsz,
		    "manifest format %.0f is not supported (this dmfs reads "
		    "format %d)",
		    x, MANIFEST_FORMAT);
		rc = DMFS_ERR_INVAL;
	}
	out->format = (int)x;
	if (!rc)
		rc =
		    get_str(o, "kind", true, FIELD_MAX, &out->kind, msg, msgsz);
	if (!rc && strcmp(out->kind, "snapshot") &&
	    strcmp(out->kind, "dataset")) {
		dmfs_say(msg, msgsz, "\"kind\" is neither snapshot nor dataset");
		rc = DMFS_ERR_INVAL;
	}
	if (!rc)
		rc =
		    get_str(o, "name", true, FIELD_MAX, &out->name, msg, msgsz);
	if (!rc && !out->name[0]) {
		dmfs_say(msg, msgsz, "\"name\" is empty");
		rc = DMFS_ERR_INVAL;
	}
	if (!rc)
		rc = get_str(o, "version", !strcmp(out->kind, "dataset"),
			     FIELD_MAX, &out->version, msg, msgsz);
	if (!rc)
		rc = get_int(o, "created", true, -JSON_INT_MAX, &x, msg, msgsz);
	out->created = (int64_t)x;
	if (!rc)
		rc = get_int(o, "created_us", false, -JSON_INT_MAX, &x, msg,
			     msgsz);
	out->created_us = (int64_t)x;
	if (!rc)
		rc = get_str(o, "author", false, FIELD_MAX, &out->author, msg,
			     msgsz);
	if (!rc)
		rc = get_str(o, "message", false, MANIFEST_LINE_MAX,
			     &out->message, msg, msgsz);
	if (!rc)
		rc = get_str(o, "parent", false, 64, &out->parent, msg, msgsz);
	if (!rc && out->parent && !dmfs_is_sha256_hex(out->parent)) {
		dmfs_say(msg, msgsz, "\"parent\" is not a manifest hash");
		rc = DMFS_ERR_INVAL;
	}
	if (!rc)
		rc = get_str(o, "source", false, MANIFEST_PATH_MAX + 64,
			     &out->source, msg, msgsz);
	if (!rc)
		rc = get_str(o, "mode", false, 16, &mode, msg, msgsz);
	if (!rc && mode && strcmp(mode, "copy") && strcmp(mode, "zero-copy")) {
		dmfs_say(msg, msgsz, "\"mode\" is neither copy nor zero-copy");
		rc = DMFS_ERR_INVAL;
	}
	out->zero_copy = mode && !strcmp(mode, "zero-copy");
	if (!rc)
		rc = get_u64(o, "files", true, &out->files, msg, msgsz);
	if (!rc)
		rc = get_u64(o, "bytes", true, &out->bytes, msg, msgsz);
	if (!rc)
		rc = header_dirs(cJSON_GetObjectItemCaseSensitive(o, "dirs"),
				 out, msg, msgsz);
	free(mode);
	cJSON_Delete(o);
	if (rc)
		manifest_header_clear(out);
	return rc;
}

/* --- writing --- */

struct manifest_writer {
	FILE *spool; /* entry lines; unlinked temporary file */
	int err;     /* sticky I/O error of the spool */
	char prev[MANIFEST_PATH_MAX + 1]; /* last path added */
	bool have_prev;
	uint64_t files, bytes;
	/* per-directory totals (see the top of the file) */
	struct manifest_dirstat *dirs; /* named directories, path order */
	size_t ndirs, capdirs, dir_name_bytes;
	struct manifest_dirstat root, other;
};

int manifest_writer_open(const char *tmpdir, struct manifest_writer **out)
{
	struct manifest_writer *w = calloc(1, sizeof(*w));
	char path[4096];
	int fd, n;

	*out = NULL;
	if (!w)
		return DMFS_ERR_NOMEM;
	if (!tmpdir)
		tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	n = snprintf(path, sizeof(path), "%s/.dmfs-manifest.XXXXXX", tmpdir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		free(w);
		return DMFS_ERR_TOO_BIG;
	}
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		dmfs_log(DMFS_LOG_ERROR, "manifest: spool in %s: %s", tmpdir,
			 strerror(e));
		free(w);
		return e == ENOSPC ? DMFS_ERR_NOSPC : DMFS_ERR_IO;
	}
	unlink(path);
	w->spool = fdopen(fd, "w+");
	if (!w->spool) {
		close(fd);
		free(w);
		return DMFS_ERR_NOMEM;
	}
	*out = w;
	return 0;
}

/* Count e under its top-level directory. */
static int count_dir(struct manifest_writer *w, const struct manifest_entry *e)
{
	const char *slash = strchr(e->path, '/');
	struct manifest_dirstat *ds = &w->root;
	size_t n = slash ? (size_t)(slash - e->path) : 0;

	if (slash) {
		struct manifest_dirstat *last =
		    w->ndirs ? &w->dirs[w->ndirs - 1] : NULL;
		if (last && strlen(last->name) == n &&
		    !memcmp(last->name, e->path, n)) {
			ds = last;
		} else if (w->ndirs >= MANIFEST_DIRS_MAX ||
			   w->dir_name_bytes + n > MANIFEST_DIRS_BYTES) {
			ds = &w->other;
		} else {
			if (w->ndirs == w->capdirs) {
				size_t cap = w->capdirs ? 2 * w->capdirs : 16;
				void *p =
				    realloc(w->dirs, cap * sizeof(*w->dirs));
				if (!p)
					return DMFS_ERR_NOMEM;
				w->dirs = p;
				w->capdirs = cap;
			}
			ds = &w->dirs[w->ndirs];
			memset(ds, 0, sizeof(*ds));
			ds->name = strndup(e->path, n);
			if (!ds->name)
				return DMFS_ERR_NOMEM;
			w->ndirs++;
			w->dir_name_bytes += n;
		}
	}
	ds->files++;
	ds->bytes += e->size;
	return 0;
}

int manifest_writer_add(struct manifest_writer *w,
			const struct manifest_entry *e)
{
	char why[256];
	bool bad_meta;
	cJSON *o;
	char *line = NULL;
	size_t len;
	int rc;

	if (w->err)
		return w->err;
	rc = entry_check(e, why, sizeof(why));
	if (!rc && w->have_prev && strcmp(e->path, w->prev) <= 0) {
		snprintf(why, sizeof(why), "'%.100s' added after '%.100s'",
			 e->path, w->prev);
		rc = DMFS_ERR_INVAL;
	}
	if (rc) {
		dmfs_log(DMFS_LOG_WARN, "manifest: bad entry: %s", why);
		return rc;
	}
	o = entry_object(e, &bad_meta);
	if (!o && bad_meta)
		dmfs_log(DMFS_LOG_WARN,
			 "manifest: %s: metadata is not a JSON object",
			 e->path);
	if (!o)
		return bad_meta ? DMFS_ERR_INVAL : DMFS_ERR_NOMEM;
	line = print_and_delete(o, true);
	if (!line)
		return DMFS_ERR_NOMEM;
	len = strlen(line);
	if (len > MANIFEST_LINE_MAX) {
		dmfs_log(DMFS_LOG_ERROR,
			 "manifest: %s: entry of %zu bytes (the limit is %u)",
			 e->path, len, MANIFEST_LINE_MAX);
		rc = DMFS_ERR_TOO_BIG;
		goto out;
	}
	rc = count_dir(w, e);
	if (rc)
		goto out;
	if (fwrite(line, 1, len, w->spool) != len ||
	    putc('\n', w->spool) == EOF) {
		w->err = errno == ENOSPC ? DMFS_ERR_NOSPC : DMFS_ERR_IO;
		rc = w->err;
		goto out;
	}
	w->files++;
	w->bytes += e->size;
	strcpy(w->prev, e->path); /* length checked by entry_check */
	w->have_prev = true;
out:
	free(line);
	return rc;
}

void manifest_writer_abort(struct manifest_writer *w)
{
	if (!w)
		return;
	if (w->spool)
		fclose(w->spool);
	for (size_t i = 0; i < w->ndirs; i++)
		free(w->dirs[i].name);
	free(w->dirs);
	free(w);
}

static int cmp_dirstat(const void *a, const void *b)
{
	return strcmp(((const struct manifest_dirstat *)a)->name,
		      ((const struct manifest_dirstat *)b)->name);
}

/* Move the totals into h (sorted by name).  w keeps no names after. */
static int take_totals(struct manifest_writer *w, struct manifest_header *h)
{
	size_t n = w->ndirs + (w->root.files > 0) + (w->other.files > 0);
	struct manifest_dirstat *v = calloc(n ? n : 1, sizeof(*v));
	size_t k = 0;

	if (!v)
		return DMFS_ERR_NOMEM;
	for (size_t i = 0; i < h->ndirs; i++)
		free(h->dirs[i].name);
	free(h->dirs);
	h->dirs = v;
	h->ndirs = 0;
	h->files = w->files;
	h->bytes = w->bytes;
	for (size_t i = 0; i < w->ndirs; i++)
		v[k++] = w->dirs[i];
	w->ndirs = 0;
	if (w->root.files) {
		v[k] = w->root;
		v[k++].name = strdup(".");
	}
	if (w->other.files) {
		v[k] = w->other;
		v[k++].name = strdup(MANIFEST_DIRS_OTHER);
	}
	h->ndirs = k;
	for (size_t i = 0; i < k; i++)
		if (!v[i].name)
			return DMFS_ERR_NOMEM;
	qsort(v, k, sizeof(*v), cmp_dirstat);
	return 0;
}

/* Write n bytes to fd and through the digest. */
static int write_hashed(int fd, EVP_MD_CTX *md, const char *p, size_t n)
{
	if (EVP_DigestUpdate(md, p, n) != 1)
		return DMFS_ERR_NOMEM;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno == ENOSPC ? DMFS_ERR_NOSPC : DMFS_ERR_IO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int manifest_writer_finish(struct manifest_writer *w, struct manifest_header *h,
			   const char *out_path, char hash_hex[65])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char *hdr = NULL, *buf = malloc(COPY_CHUNK);
	unsigned char dig[EVP_MAX_MD_SIZE];
	unsigned int diglen = 0;
	int spool_fd = fileno(w->spool), fd = -1, rc = w->err;
	off_t off = 0;

	hash_hex[0] = '\0';
	if (!rc && (!md || !buf))
		rc = DMFS_ERR_NOMEM;
	if (!rc && fflush(w->spool) != 0)
		rc = errno == ENOSPC ? DMFS_ERR_NOSPC : DMFS_ERR_IO;
	if (!rc)
		rc = take_totals(w, h);
	if (!rc) {
		hdr = manifest_header_to_json(h);
		if (!hdr)
			rc = DMFS_ERR_NOMEM;
	}
	if (!rc && strlen(hdr) > MANIFEST_LINE_MAX) {
		dmfs_log(DMFS_LOG_ERROR,
			 "manifest: header of %zu bytes (the limit is %u)",
			 strlen(hdr), MANIFEST_LINE_MAX);
		rc = DMFS_ERR_TOO_BIG;
	}
	if (rc)
		goto out;
	fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		dmfs_log(DMFS_LOG_ERROR, "manifest: %s: %s", out_path,
			 strerror(errno));
		rc = DMFS_ERR_IO;
		goto out;
	}
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		rc = DMFS_ERR_NOMEM;
	if (!rc)
		rc = write_hashed(fd, md, hdr, strlen(hdr));
	if (!rc)
		rc = write_hashed(fd, md, "\n", 1);
	while (!rc) {
		ssize_t n = pread(spool_fd, buf, COPY_CHUNK, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = DMFS_ERR_IO;
		if (n <= 0)
			break;
		rc = write_hashed(fd, md, buf, (size_t)n);
		off += n;
	}
	if (!rc && fsync(fd) != 0)
		rc = DMFS_ERR_IO;
	if (close(fd) != 0 && !rc)
		rc = DMFS_ERR_IO;
	if (!rc && EVP_DigestFinal_ex(md, dig, &diglen) != 1)
		rc = DMFS_ERR_NOMEM;
	if (!rc)
		hex_of(dig, 32, hash_hex);
	if (rc) {
		dmfs_log(DMFS_LOG_ERROR, "manifest: writing %s: %s", out_path,
			 dmfs_strerror(rc));
		unlink(out_path);
	}
out:
	free(hdr);
	free(buf);
	EVP_MD_CTX_free(md);
	manifest_writer_abort(w);
	return rc;
}

/* --- reading --- */

struct manifest_reader {
	int fd;
	char *buf; /* READ_CHUNK bytes read ahead */
	size_t pos, len;
	bool eof;
	char *line; /* the current line, NUL-terminated */
	size_t linecap;
	uint64_t lineno;       /* of the current line, from 1 */
	uint64_t files, bytes; /* entries read so far */
	char prev[MANIFEST_PATH_MAX + 1];
	bool have_prev;
	int done; /* 1 at the end, -DMFS_ERR_* after an error */
	struct manifest_header h;
};

/*
 * The next line into r->line (without its newline): 1 (*cut set when the
 * file ends without a newline), 0 at the end, -DMFS_ERR_TOO_BIG when
 * longer than MANIFEST_LINE_MAX, or another -DMFS_ERR_*.
 */
static int read_line(struct manifest_reader *r, size_t *len, bool *cut)
{
	size_t n = 0;

	for (;;) {
		if (r->pos == r->len) {
			if (r->eof)
				break;
			ssize_t got = read(r->fd, r->buf, READ_CHUNK);
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				return -DMFS_ERR_IO;
			if (got == 0) {
				r->eof = true;
				break;
			}
			r->pos = 0;
			r->len = (size_t)got;
		}
		const char *s = r->buf + r->pos;
		const char *nl = memchr(s, '\n', r->len - r->pos);
		size_t take = nl ? (size_t)(nl - s) : r->len - r->pos;
		if (n + take > MANIFEST_LINE_MAX)
			return -DMFS_ERR_TOO_BIG;
		if (n + take + 1 > r->linecap) {
			size_t cap = r->linecap ? r->linecap : 4096;
			while (cap < n + take + 1)
				cap *= 2;
			char *p = realloc(r->line, cap);
			if (!p)
				return -DMFS_ERR_NOMEM;
			r->line = p;
			r->linecap = cap;
		}
		memcpy(r->line + n, s, take);
		n += take;
		r->pos += take + (nl ? 1 : 0);
		if (nl) {
			r->line[n] = '\0';
			*len = n;
			return 1;
		}
	}
	if (!n)
		return 0;
	r->line[n] = '\0';
	*len = n;
	*cut = true;
	return 1;
}

/* The next line: 1, 0 at the end, or -DMFS_ERR_* with msg telling "line
 * N: why". */
static int next_line(struct manifest_reader *r, size_t *len, char *msg,
		     size_t msgsz)
{
	bool cut = false;
	int rc = read_line(r, len, &cut);

	if (rc == 0)
		return 0;
	r->lineno++;
	if (rc == 1 && !cut)
		return 1;
	if (rc == 1)
		dmfs_say(msg, msgsz,
		    "line %" PRIu64
		    ": truncated (no newline at the end of the file)",
		    r->lineno);
	else if (rc == -DMFS_ERR_TOO_BIG)
		dmfs_say(msg, msgsz, "line %" PRIu64 ": longer than %u bytes",
		    r->lineno, MANIFEST_LINE_MAX);
	else
		dmfs_say(msg, msgsz, "line %" PRIu64 ": %s", r->lineno,
		    dmfs_strerror(-rc));
	return rc == 1 || rc == -DMFS_ERR_TOO_BIG ? -DMFS_ERR_INVAL : rc;
}

void manifest_reader_close(struct manifest_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	free(r->line);
	manifest_header_clear(&r->h);
	free(r);
}

int manifest_reader_open(const char *path, struct manifest_reader **out,
			 char *msg, size_t msgsz)
{
	struct manifest_reader *r = calloc(1, sizeof(*r));
	char why[512];
	size_t len = 0;
	int rc;

	*out = NULL;
	if (!r)
		return DMFS_ERR_NOMEM;
	r->buf = malloc(READ_CHUNK);
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (!r->buf) {
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	if (r->fd < 0) {
		dmfs_say(msg, msgsz, "%s: %s", path, strerror(errno));
		rc = errno == ENOENT ? DMFS_ERR_NOT_FOUND : DMFS_ERR_IO;
		goto out;
	}
	rc = next_line(r, &len, msg, msgsz);
	if (rc == 0) {
		dmfs_say(msg, msgsz, "line 1: empty file, no header");
		rc = DMFS_ERR_INVAL;
		goto out;
	}
	if (rc < 0) {
		rc = -rc;
		goto out;
	}
	rc = manifest_header_from_json(r->line, len, &r->h, why, sizeof(why));
	if (rc)
		dmfs_say(msg, msgsz, "line 1: %s", why);
out:
	if (rc) {
		manifest_reader_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

const struct manifest_header *
manifest_reader_header(const struct manifest_reader *r)
{
	return &r->h;
}

/* At the end: the entries must add up to the header's totals. */
static int check_totals(struct manifest_reader *r, char *msg, size_t msgsz)
{
	if (r->files == r->h.files && r->bytes == r->h.bytes)
		return 0;
	dmfs_say(msg, msgsz,
	    "line %" PRIu64 ": the manifest ends after %" PRIu64
	    " files (%" PRIu64 " bytes) but its header says %" PRIu64
	    " files (%" PRIu64 " bytes)",
	    r->lineno + 1, r->files, r->bytes, r->h.files, r->h.bytes);
	return DMFS_ERR_INVAL;
}

int manifest_reader_next(struct manifest_reader *r, struct manifest_entry *e,
			 char *msg, size_t msgsz)
{
	char why[512];
	size_t len = 0;
	int rc;

	memset(e, 0, sizeof(*e));
	if (r->done > 0)
		return 0;
	if (r->done < 0) {
		dmfs_say(msg, msgsz,
		    "line %" PRIu64 ": reading stopped at an earlier error",
		    r->lineno);
		return r->done;
	}
	rc = next_line(r, &len, msg, msgsz);
	if (rc == 0) {
		rc = check_totals(r, msg, msgsz);
		r->done = rc ? -rc : 1;
		return rc ? -rc : 0;
	}
	if (rc < 0) {
		rc = -rc;
		goto out;
	}
	rc = manifest_entry_from_json(r->line, len, e, why, sizeof(why));
	if (rc) {
		dmfs_say(msg, msgsz, "line %" PRIu64 ": %s", r->lineno, why);
		goto out;
	}
	if (r->have_prev && strcmp(e->path, r->prev) <= 0) {
		dmfs_say(msg, msgsz,
		    "line %" PRIu64 ": '%s' is out of order (after '%s')",
		    r->lineno, e->path, r->prev);
		rc = DMFS_ERR_INVAL;
		goto out;
	}
	strcpy(r->prev, e->path); /* length checked by the parser */
	r->have_prev = true;
	r->files++;
	r->bytes += e->size;
	return 1;
out:
	manifest_entry_clear(e);
	r->done = -rc;
	return -rc;
}

/* --- the store --- */

void manifest_store_key(const char *hash_hex, char *out, size_t outsz)
{
	snprintf(out, outsz, ".dmfs/manifests/sha256/%s", hash_hex);
}

void manifest_object_key(const char *hash_hex, char *out, size_t outsz)
{
	snprintf(out, outsz, ".dmfs/objects/sha256/%.2s/%s", hash_hex,
		 hash_hex[0] && hash_hex[1] ? hash_hex + 2 : "");
}

/* mkdir -p with mode 0700.  0 or -1 with errno. */
static int mkdir_p(const char *dir)
{
	char p[4096];
	size_t n = strlen(dir);

	if (n >= sizeof(p)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(p, dir, n + 1);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

int manifest_fetch(struct dmfs_store *st, const char *cache_dir,
		   const char *hash_hex, char *path, size_t pathsz,
		   struct dmfs_err_detail *d)
{
	char dir[4096], tmp[4200], key[128], got[65];
	struct stat sb;
	int fd = -1, n, rc = 0;

	if (!dmfs_is_sha256_hex(hash_hex))
		return DMFS_ERR_INVAL;
	snprintf(dir, sizeof(dir), "%s/manifests", cache_dir);
	n = snprintf(path, pathsz, "%s/%s", dir, hash_hex);
	if (n < 0 || (size_t)n >= pathsz || strlen(dir) + 80 >= sizeof(dir))
		return DMFS_ERR_TOO_BIG;
	/* Only verified copies are ever renamed to this name. */
	if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
		return 0;
	if (mkdir_p(dir) != 0) {
		dmfs_log(DMFS_LOG_ERROR, "manifest: mkdir %s: %s", dir,
			 strerror(errno));
		return DMFS_ERR_IO;
	}
	snprintf(tmp, sizeof(tmp), "%s/.fetch-%.16s.XXXXXX", dir, hash_hex);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		dmfs_log(DMFS_LOG_ERROR, "manifest: %s: %s", tmp, strerror(e));
		return e == ENOSPC ? DMFS_ERR_NOSPC : DMFS_ERR_IO;
	}
	manifest_store_key(hash_hex, key, sizeof(key));
	dmfs_log(DMFS_LOG_DEBUG, "manifest: fetching %s", key);
	rc = dmfs_store_get_to_fd(st, key, NULL, fd, got, NULL, d);
	if (!rc && strcmp(got, hash_hex) != 0) {
		dmfs_log(DMFS_LOG_ERROR, "manifest: %s has sha256 %s, not %s",
			 key, got, hash_hex);
		rc = DMFS_ERR_CORRUPT;
	}
	if (!rc && fsync(fd) != 0)
		rc = DMFS_ERR_IO;
	if (close(fd) != 0 && !rc)
		rc = DMFS_ERR_IO;
	if (!rc && rename(tmp, path) != 0) {
		dmfs_log(DMFS_LOG_ERROR, "manifest: rename to %s: %s", path,
			 strerror(errno));
		rc = DMFS_ERR_IO;
	}
	if (rc)
		unlink(tmp);
	return rc;
}
