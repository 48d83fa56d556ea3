/*
 * metaq_batch.c - batches of metadata updates from JSON Lines or CSV (see
 * metaq_parse_batch in metaq.h): what DIR/.dmfs.meta takes and `dmfs meta
 * import` reads.
 *
 * Parsing only builds the batch; nothing is applied until meta_apply has
 * validated all of it, so a bad row anywhere leaves the table untouched.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "metaq_int.h"

/* The longest line or CSV record: a few fields of MVAL_MAX_LEN. */
#define BATCH_LINE_MAX (1u << 20)

/* "dir/rel" into out; rel must be a clean relative path. */
static int join_path(const char *dir, const char *rel, size_t len,
		     char *out, size_t outsz, char *why, size_t whysz)
{
	if (!len || rel[0] == '/' || rel[len - 1] == '/') {
		dmfs_say(why, whysz, "path \"%.*s\" is not a relative file "
			 "path", (int)(len > 200 ? 200 : len), rel);
		return DMFS_ERR_INVAL;
	}
	for (size_t i = 0, s = 0; i <= len; i++) {
		if (i < len && rel[i] == '\0') {
			dmfs_say(why, whysz, "path has a NUL byte");
			return DMFS_ERR_INVAL;
		}
		if (i < len && rel[i] != '/')
			continue;
		size_t n = i - s;
		if (n == 0 || (n == 1 && rel[s] == '.') ||
		    (n == 2 && rel[s] == '.' && rel[s + 1] == '.')) {
			dmfs_say(why, whysz, "path \"%.*s\" has an empty, '.' "
				 "or '..' part", (int)(len > 200 ? 200 : len),
				 rel);
			return DMFS_ERR_INVAL;
		}
		s = i + 1;
	}
	int n = snprintf(out, outsz, "%s%s%.*s", dir, *dir ? "/" : "",
			 (int)len, rel);
	if (n < 0 || (size_t)n >= outsz) {
		dmfs_say(why, whysz, "path too long");
		return DMFS_ERR_INVAL;
	}
	return 0;
}

/* --- JSON Lines --- */

static int json_line(struct meta *m, const char *dir, const char *line,
		     size_t len, struct meta_batch *b, char *why, size_t whysz)
{
	char path[4200];
	cJSON *j = cJSON_ParseWithLength(line, len), *f, *p;
	int rc = 0;

	if (!cJSON_IsObject(j)) {
		dmfs_say(why, whysz, "not a JSON object");
		rc = DMFS_ERR_INVAL;
		goto out;
	}
	p = cJSON_GetObjectItemCaseSensitive(j, "path");
	if (!cJSON_IsString(p)) {
		dmfs_say(why, whysz, "no \"path\" string");
		rc = DMFS_ERR_INVAL;
		goto out;
	}
	rc = join_path(dir, p->valuestring, strlen(p->valuestring), path,
		       sizeof(path), why, whysz);
	cJSON_ArrayForEach(f, j)
	{
		struct mval v = {0};
		char m2[300];

		if (rc)
			break;
		if (f == p)
			continue;
		rc = meta_check_field_name(f->string, why, whysz);
		if (rc)
			break;
		rc = mval_from_json(f, meta_field_type(m, f->string), &v, m2,
				    sizeof(m2));
		if (rc) {
			dmfs_say(why, whysz, "%s: %s", f->string, m2);
			break;
		}
		rc = meta_batch_add(b, path, f->string, &v);
		mval_clear(&v);
	}
out:
	cJSON_Delete(j);
	return rc;
}

/* --- CSV (RFC 4180: quoted cells may hold commas, quotes, newlines) --- */

struct csv {
	const char *p, *end;
	size_t line;		/* of the record being read, 1-based */
	char *cell;		/* the current cell, unquoted; owned */
	size_t len, cap;
};

/* The next cell into c->cell: 1 and *last set at the end of a record, 0
 * at the end of input, or -DMFS_ERR_*. */
static int csv_next(struct csv *c, bool *last, char *why, size_t whysz)
{
	bool quoted = false;

	c->len = 0;
	if (c->p >= c->end)
		return 0;
	if (*c->p == '"') {
		quoted = true;
		c->p++;
	}
	for (;;) {
		char ch;
		if (c->p >= c->end) {
			if (quoted) {
				dmfs_say(why, whysz, "unterminated quoted "
					 "cell");
				return -DMFS_ERR_INVAL;
			}
			*last = true;
			break;
		}
		ch = *c->p++;
		if (quoted && ch == '"') {
			if (c->p < c->end && *c->p == '"') {
				c->p++;
			} else {
				quoted = false;
				if (c->p < c->end && *c->p != ',' &&
				    *c->p != '\n' && *c->p != '\r') {
					dmfs_say(why, whysz, "text after a "
						 "closing quote");
					return -DMFS_ERR_INVAL;
				}
				continue;
			}
		} else if (!quoted && ch == ',') {
			*last = false;
			break;
		} else if (!quoted && (ch == '\n' || ch == '\r')) {
			if (ch == '\r' && c->p < c->end && *c->p == '\n')
				c->p++;
			*last = true;
			break;
		}
		if (ch == '\n')
			c->line++;
		if (c->len + 2 > c->cap) {
			if (c->cap >= BATCH_LINE_MAX) {
				dmfs_say(why, whysz, "cell longer than %u "
					 "bytes", BATCH_LINE_MAX);
				return -DMFS_ERR_TOO_BIG;
			}
			size_t cap = c->cap ? c->cap * 2 : 256;
			char *n = realloc(c->cell, cap);
			if (!n)
				return -DMFS_ERR_NOMEM;
			c->cell = n;
			c->cap = cap;
		}
		c->cell[c->len++] = ch;
	}
	if (!c->cell && !(c->cell = malloc(c->cap = 256)))
		return -DMFS_ERR_NOMEM;
	c->cell[c->len] = '\0';
	return 1;
}

static int parse_csv(struct meta *m, const char *dir, const char *text,
		     size_t len, struct meta_batch *b, char *msg, size_t msgsz)
{
	struct csv c = {.p = text, .end = text + len, .line = 1};
	char **cols = NULL, path[4200], why[600] = "";
	size_t ncols = 0, pathcol = (size_t)-1, col = 0, rec_line = 1;
	bool last = false;
	int r, rc = 0;

	/* Header: the column names. */
	while (!last && (r = csv_next(&c, &last, why, sizeof(why))) > 0) {
		char **n = realloc(cols, (ncols + 1) * sizeof(*n));
		if (!n || !(n[ncols] = strdup(c.cell))) {
			cols = n ? n : cols;
			rc = DMFS_ERR_NOMEM;
			break;
		}
		cols = n;
		ncols++;
		if (!strcmp(c.cell, "path"))
			pathcol = ncols - 1;
		else if ((rc = meta_check_field_name(c.cell, why,
						     sizeof(why))))
			break;
	}
	if (!rc && r < 0)
		rc = -r;
	if (!rc && pathcol == (size_t)-1) {
		dmfs_say(why, sizeof(why), "the header has no \"path\" column");
		rc = DMFS_ERR_INVAL;
	}
	if (rc) {
		dmfs_say(msg, msgsz, "line 1: %s", why);
		goto out;
	}
	/* Records: the path is needed before the cells can be added, so a
	 * record's cells are read twice (the text is in memory anyway). */
	c.line++;
	while (!rc && c.p < c.end) {
		const char *start = c.p;
		size_t start_line = c.line;
		rec_line = c.line;
		/* skip blank lines */
		if (*c.p == '\n' || *c.p == '\r') {
			c.p++;
			c.line++;
			continue;
		}
		path[0] = '\0';
		last = false;
		for (col = 0; !last; col++) {
			r = csv_next(&c, &last, why, sizeof(why));
			if (r <= 0)
				break;
			if (col == pathcol)
				rc = join_path(dir, c.cell, c.len, path,
					       sizeof(path), why, sizeof(why));
			if (rc)
				break;
		}
		if (!rc && r < 0)
			rc = -r;
		if (!rc && col != ncols) {
			dmfs_say(why, sizeof(why), "%zu cells, the header has "
				 "%zu", col, ncols);
			rc = DMFS_ERR_INVAL;
		}
		c.p = start;
		c.line = start_line;
		last = false;
		for (col = 0; !rc && !last; col++) {
			struct mval v = {0};
			char m2[300];
			r = csv_next(&c, &last, why, sizeof(why));
			if (r <= 0)
				break;
			if (col == pathcol)
				continue;
			/* An empty cell removes the field. */
			if (c.len) {
				rc = mval_from_text(c.cell, c.len,
						    meta_field_type(m, cols[col]),
						    &v, m2, sizeof(m2));
				if (rc) {
					dmfs_say(why, sizeof(why), "%s: %s",
						 cols[col], m2);
					break;
				}
			}
			rc = meta_batch_add(b, path, cols[col], &v);
			mval_clear(&v);
		}
		c.line++;
	}
	if (rc)
		dmfs_say(msg, msgsz, "line %zu: %s", rec_line, why);
out:
	for (size_t i = 0; i < ncols; i++)
		free(cols[i]);
	free(cols);
	free(c.cell);
	return rc;
}

int metaq_parse_batch(struct meta *m, const char *dir, const char *text,
		      size_t len, struct meta_batch *b, char *msg,
		      size_t msgsz)
{
	const char *p = text, *end = text + len;
	size_t line = 0;
	int rc = 0;

	msg[0] = '\0';
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
			   *p == '\r'))
		p++;
	if (p < end && *p != '{')
		return parse_csv(m, dir, text, len, b, msg, msgsz);
	for (p = text; !rc && p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		char why[600] = "";
		line++;
		const char *s = p;
		while (s < le && (*s == ' ' || *s == '\t' || *s == '\r'))
			s++;
		if (s < le) {
			if ((size_t)(le - s) > BATCH_LINE_MAX) {
				dmfs_say(why, sizeof(why), "line longer than "
					 "%u bytes", BATCH_LINE_MAX);
				rc = DMFS_ERR_TOO_BIG;
			} else {
				rc = json_line(m, dir, s, (size_t)(le - s), b,
					       why, sizeof(why));
			}
			if (rc)
				dmfs_say(msg, msgsz, "line %zu: %s", line,
					 why);
		}
		p = nl ? nl + 1 : end;
	}
	return rc;
}
