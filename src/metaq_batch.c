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
static int join_path(const char *dir, const char *rel, size_t len, char *out,
		     size_t outsz, char *why, size_t whysz)
{
	if (!len || rel[0] == '/' || rel[len - 1] == '/') {
		dmfs_say(why, whysz,
			 "path \"%.*s\" is not a relative file "
			 "path",
			 (int)(len > 200 ? 200 : len), rel);
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
			dmfs_say(why, whysz,
				 "path \"%.*s\" has an empty, '.' "
				 "or '..' part",
				 (int)(len > 200 ? 200 : len), rel);
			return DMFS_ERR_INVAL;
		}
		s = i + 1;
	}
	int n = snprintf(out, outsz, "%s%s%.*s", dir, *dir ? "/" : "", (int)len,
			 rel);
	if (n < 0 || (size_t)n >= outsz) {
		dmfs_say(why, whysz, "path too long");
		return DMFS_ERR_INVAL;
	}
	return 0;
}

/* --- JSON Lines --- */

/* The most members of one line whose number literals are told apart. */
#define LINE_MEMBERS_MAX 256

/*
 * For each member of the top-level object on a line, in order: whether
 * its value is a number written as a float ("0.0", "1e3").  cJSON keeps
 * only the double, and a float column whose first value is 0.0 must not
 * become an int field.  Members past LINE_MEMBERS_MAX count as not.
 */
static void float_literals(const char *s, size_t len, bool *isf, size_t *n)
{
	int depth = 0;
	bool in_str = false, after_colon = false;

	*n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			depth--;
		} else if (c == ':' && depth == 1) {
			after_colon = true;
			continue;
		} else if (after_colon &&
			   (c == '-' || (c >= '0' && c <= '9'))) {
			bool f = false;
			while (i < len && strchr("+-0123456789.eE", s[i])) {
				f |= s[i] == '.' || s[i] == 'e' || s[i] == 'E';
				i++;
			}
			i--;
			if (*n < LINE_MEMBERS_MAX)
				isf[(*n)++] = f;
			after_colon = false;
			continue;
		}
		if (after_colon && c != ' ' && c != '\t') {
			/* another kind of value */
			if (*n < LINE_MEMBERS_MAX)
				isf[(*n)++] = false;
			after_colon = false;
		}
	}
}

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
	bool isf[LINE_MEMBERS_MAX];
	size_t nf, k = 0;
	float_literals(line, len, isf, &nf);
	cJSON_ArrayForEach(f, j)
	{
		struct mval v = {0};
		char m2[300];
		bool lit_float = k < nf && isf[k];

		k++;
		if (rc)
			break;
		if (f == p)
			continue;
		rc = meta_check_field_name(f->string, why, whysz);
		if (rc)
			break;
		enum mval_type want = meta_field_type(m, f->string);
		if (want == MV_NULL && lit_float && cJSON_IsNumber(f))
			want = MV_FLOAT;
		rc = mval_from_json(f, want, &v, m2, sizeof(m2));
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
	size_t line; /* of the record being read, 1-based */
	char *cell;  /* the current cell, unquoted; owned */
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
				dmfs_say(why, whysz,
					 "unterminated quoted "
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
					dmfs_say(why, whysz,
						 "text after a "
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
				dmfs_say(why, whysz,
					 "cell longer than %u "
					 "bytes",
					 BATCH_LINE_MAX);
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

/* --- the parser: fed in pieces, each complete line or record parsed as
 * it arrives (so a write(2) of a bad row fails at once), applied by the
 * caller only when all of it parsed --- */

enum { KIND_UNKNOWN, KIND_JSONL, KIND_CSV };

struct metaq_batch_parser {
	struct meta *m;	      /* borrowed */
	struct meta_batch *b; /* borrowed */
	char *dir;	      /* owned */
	int kind;
	char *pend; /* bytes of an unfinished record; owned */
	size_t plen, pcap;
	size_t line; /* lines consumed */
	char **cols; /* CSV header; owned */
	size_t ncols, pathcol;
	bool header_done;
	struct csv c;	   /* CSV cell buffer */
	int failed;	   /* the first error: nothing more */
	char failmsg[700]; /* and what it said */
};

int metaq_parser_new(struct meta *m, const char *dir, struct meta_batch *b,
		     struct metaq_batch_parser **out)
{
	struct metaq_batch_parser *p = calloc(1, sizeof(*p));

	if (!p || !(p->dir = strdup(dir))) {
		free(p);
		return DMFS_ERR_NOMEM;
	}
	p->m = m;
	p->b = b;
	p->pathcol = (size_t)-1;
	*out = p;
	return 0;
}

void metaq_parser_free(struct metaq_batch_parser *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->ncols; i++)
		free(p->cols[i]);
	free(p->cols);
	free(p->c.cell);
	free(p->pend);
	free(p->dir);
	free(p);
}

static int csv_header(struct metaq_batch_parser *p, char *why, size_t whysz)
{
	bool last = false;
	int r = 0, rc = 0;

	while (!last && (r = csv_next(&p->c, &last, why, whysz)) > 0) {
		char **n = realloc(p->cols, (p->ncols + 1) * sizeof(*n));
		if (!n)
			return DMFS_ERR_NOMEM;
		p->cols = n;
		if (!(n[p->ncols] = strdup(p->c.cell)))
			return DMFS_ERR_NOMEM;
		p->ncols++;
		if (!strcmp(p->c.cell, "path"))
			p->pathcol = p->ncols - 1;
		else if ((rc = meta_check_field_name(p->c.cell, why, whysz)))
			return rc;
	}
	if (r < 0)
		return -r;
	if (p->pathcol == (size_t)-1) {
		dmfs_say(why, whysz, "the header has no \"path\" column");
		return DMFS_ERR_INVAL;
	}
	p->header_done = true;
	return 0;
}

/* One CSV record at p->c.p (complete).  The path is needed before the
 * cells can be added, so the record is read twice. */
static int csv_record(struct metaq_batch_parser *p, char *why, size_t whysz)
{
	struct csv *c = &p->c;
	const char *start = c->p;
	size_t start_line = c->line, col;
	char path[4200] = "";
	bool last = false;
	int r = 0, rc = 0;

	for (col = 0; !last; col++) {
		r = csv_next(c, &last, why, whysz);
		if (r <= 0)
			break;
		if (col == p->pathcol &&
		    (rc = join_path(p->dir, c->cell, c->len, path, sizeof(path),
				    why, whysz)))
			return rc;
	}
	if (r < 0)
		return -r;
	if (col != p->ncols) {
		dmfs_say(why, whysz, "%zu cells, the header has %zu", col,
			 p->ncols);
		return DMFS_ERR_INVAL;
	}
	c->p = start;
	c->line = start_line;
	last = false;
	for (col = 0; !rc && !last; col++) {
		struct mval v = {0};
		char m2[300];
		r = csv_next(c, &last, why, whysz);
		if (r <= 0)
			break;
		if (col == p->pathcol)
			continue;
		/* An empty cell removes the field. */
		if (c->len) {
			rc = mval_from_text(c->cell, c->len,
					    meta_field_type(p->m, p->cols[col]),
					    &v, m2, sizeof(m2));
			if (rc) {
				dmfs_say(why, whysz, "%s: %s", p->cols[col],
					 m2);
				break;
			}
		}
		rc = meta_batch_add(p->b, path, p->cols[col], &v);
		mval_clear(&v);
	}
	return rc ? rc : r < 0 ? -r : 0;
}

/* Parse text[0..len), which ends at a record boundary (or is the end). */
static int parse_complete(struct metaq_batch_parser *p, const char *text,
			  size_t len, char *msg, size_t msgsz)
{
	char why[600] = "";
	int rc = 0;

	if (p->kind == KIND_JSONL) {
		for (const char *s = text, *end = text + len; !rc && s < end;) {
			const char *nl = memchr(s, '\n', (size_t)(end - s));
			const char *le = nl ? nl : end, *b = s;
			p->line++;
			while (b < le &&
			       (*b == ' ' || *b == '\t' || *b == '\r'))
				b++;
			if (b < le)
				rc =
				    json_line(p->m, p->dir, b, (size_t)(le - b),
					      p->b, why, sizeof(why));
			if (rc)
				dmfs_say(msg, msgsz, "line %zu: %s", p->line,
					 why);
			s = nl ? nl + 1 : end;
		}
		return rc;
	}
	p->c.p = text;
	p->c.end = text + len;
	while (!rc && p->c.p < p->c.end) {
		size_t rec_line;
		if (*p->c.p == '\n' || *p->c.p == '\r') {
			if (*p->c.p == '\n')
				p->line++;
			p->c.p++;
			continue;
		}
		p->c.line = p->line + 1;
		rec_line = p->c.line;
		rc = p->header_done ? csv_record(p, why, sizeof(why))
				    : csv_header(p, why, sizeof(why));
		if (rc) {
			dmfs_say(msg, msgsz, "line %zu: %s", rec_line, why);
			break;
		}
		/* the record's own line breaks (quoted) and its end */
		p->line = p->c.line;
	}
	return rc;
}

/* Where the last complete record of pend ends (0: none yet). */
static size_t boundary(const struct metaq_batch_parser *p)
{
	size_t end = 0;
	bool quoted = false;

	for (size_t i = 0; i < p->plen; i++) {
		char ch = p->pend[i];
		if (p->kind == KIND_CSV && ch == '"')
			quoted = !quoted;
		else if (ch == '\n' && !quoted)
			end = i + 1;
	}
	return end;
}

static int feed(struct metaq_batch_parser *p, const char *text, size_t len,
		bool at_end, char *msg, size_t msgsz)
{
	size_t take;
	int rc;

	if (p->failed) {
		dmfs_say(msg, msgsz, "%s", p->failmsg);
		return p->failed;
	}
	if (p->plen > BATCH_LINE_MAX) {
		dmfs_say(msg, msgsz, "line %zu: a record longer than %u bytes",
			 p->line + 1, BATCH_LINE_MAX);
		snprintf(p->failmsg, sizeof(p->failmsg), "%s", msg);
		return p->failed = DMFS_ERR_TOO_BIG;
	}
	if (p->plen + len > p->pcap) {
		size_t cap = p->pcap ? p->pcap : 65536;
		while (cap < p->plen + len)
			cap *= 2;
		char *n = realloc(p->pend, cap);
		if (!n)
			return p->failed = DMFS_ERR_NOMEM; /* failmsg "" */
		p->pend = n;
		p->pcap = cap;
	}
	memcpy(p->pend + p->plen, text, len);
	p->plen += len;
	if (p->kind == KIND_UNKNOWN) {
		/* told by the first byte that is not blank: '{' JSON Lines */
		size_t i = 0;
		while (i < p->plen && strchr(" \t\r\n", p->pend[i]))
			i++;
		if (i == p->plen && !at_end)
			return 0;
		p->kind =
		    i < p->plen && p->pend[i] != '{' ? KIND_CSV : KIND_JSONL;
	}
	take = at_end ? p->plen : boundary(p);
	if (!take)
		return 0;
	rc = parse_complete(p, p->pend, take, msg, msgsz);
	memmove(p->pend, p->pend + take, p->plen - take);
	p->plen -= take;
	if (rc) {
		p->failed = rc;
		snprintf(p->failmsg, sizeof(p->failmsg), "%s", msg);
	}
	return rc;
}

int metaq_parser_feed(struct metaq_batch_parser *p, const char *text,
		      size_t len, char *msg, size_t msgsz)
{
	return feed(p, text, len, false, msg, msgsz);
}

int metaq_parser_end(struct metaq_batch_parser *p, char *msg, size_t msgsz)
{
	int rc = feed(p, "", 0, true, msg, msgsz);

	if (!rc && p->kind == KIND_CSV && !p->header_done && p->line) {
		dmfs_say(msg, msgsz, "line 1: no header row");
		rc = p->failed = DMFS_ERR_INVAL;
		snprintf(p->failmsg, sizeof(p->failmsg), "%s", msg);
	}
	return rc;
}

int metaq_parse_batch(struct meta *m, const char *dir, const char *text,
		      size_t len, struct meta_batch *b, char *msg, size_t msgsz)
{
	struct metaq_batch_parser *p = NULL;
	size_t i = 0;
	int rc = metaq_parser_new(m, dir, b, &p);

	msg[0] = '\0';
	if (rc)
		return rc;
	/* All of it is here: parse in place, no copy. */
	while (i < len && strchr(" \t\r\n", text[i]))
		i++;
	p->kind = i < len && text[i] != '{' ? KIND_CSV : KIND_JSONL;
	rc = parse_complete(p, text, len, msg, msgsz);
	if (!rc && p->kind == KIND_CSV && !p->header_done) {
		dmfs_say(msg, msgsz, "line 1: no header row");
		rc = DMFS_ERR_INVAL;
	}
	metaq_parser_free(p);
	return rc;
}
