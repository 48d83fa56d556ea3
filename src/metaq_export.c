/*
 * metaq_export.c - query results as paths, JSON Lines or CSV (see
 * metaq_export in metaq.h).  JSON Lines and paths stream in one pass; CSV
 * needs its header first, so a first pass only collects field names (a
 * handful of strings however many files match).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "metaq_int.h"

static const char *const auto_cols[] = {"name", "ext",	 "dir",
					"size", "mtime", "etag"};
#define NAUTO (sizeof(auto_cols) / sizeof(auto_cols[0]))

struct export_ctx {
	enum metaq_format fmt;
	bool with_auto;
	FILE *out;
	/* CSV: the columns after "path", sorted; owned */
	char **cols;
	size_t ncols, cap;
	struct metaq_row row;
};

/* --- CSV --- */

static int col_add(struct export_ctx *x, const char *name)
{
	size_t lo = 0, hi = x->ncols;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(x->cols[mid], name);
		if (!c)
			return 0;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (x->ncols == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 16;
		char **p = realloc(x->cols, cap * sizeof(*p));
		if (!p)
			return DMFS_ERR_NOMEM;
		x->cols = p;
		x->cap = cap;
	}
	char *dup = strdup(name);
	if (!dup)
		return DMFS_ERR_NOMEM;
	memmove(x->cols + lo + 1, x->cols + lo,
		(x->ncols - lo) * sizeof(char *));
	x->cols[lo] = dup;
	x->ncols++;
	return 0;
}

static int collect_cols(void *ctx, const struct metaq_hit *h)
{
	struct export_ctx *x = ctx;
	for (size_t i = 0; i < h->row->n; i++) {
		int rc = col_add(x, h->row->f[i].name);
		if (rc)
			return rc;
	}
	return 0;
}

/* One CSV cell, quoted when it has to be (RFC 4180). */
static void csv_cell(FILE *out, const char *s, size_t len)
{
	bool quote = len && (s[0] == ' ' || s[len - 1] == ' ');
	for (size_t i = 0; i < len && !quote; i++)
		quote =
		    s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
	if (!quote) {
		fwrite(s, 1, len, out);
		return;
	}
	fputc('"', out);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"')
			fputc('"', out);
		fputc(s[i], out);
	}
	fputc('"', out);
}

static int write_csv_row(struct export_ctx *x, const struct metaq_hit *h)
{
	csv_cell(x->out, h->path, strlen(h->path));
	for (size_t i = 0; i < x->ncols; i++) {
		const struct mval *v = metaq_row_get(&x->row, x->cols[i]);
		fputc(',', x->out);
		if (!v || v->t == MV_NULL)
			continue;
		char *text;
		size_t len;
		int rc = mval_to_text(v, &text, &len);
		if (rc)
			return rc;
		csv_cell(x->out, text, len);
		free(text);
	}
	fputc('\n', x->out);
	return 0;
}

/* --- JSON Lines --- */

static int write_json_row(struct export_ctx *x, const struct metaq_hit *h)
{
	cJSON *j = cJSON_CreateObject(), *fields = meta_row_to_json(h->row);
	char *text = NULL;
	int rc = 0;

	/* "path" first: what a reader looks for. */
	if (!j || !fields || !cJSON_AddStringToObject(j, "path", h->path))
		rc = DMFS_ERR_NOMEM;
	while (!rc && fields->child) {
		cJSON *f = cJSON_DetachItemViaPointer(fields, fields->child);
		if (!cJSON_AddItemToObject(j, f->string, f)) {
			cJSON_Delete(f);
			rc = DMFS_ERR_NOMEM;
		}
	}
	for (size_t i = 0; !rc && x->with_auto && i < NAUTO; i++) {
		if (cJSON_GetObjectItemCaseSensitive(j, auto_cols[i]))
			continue;
		const struct mval *v = metaq_row_get(&x->row, auto_cols[i]);
		cJSON *jv = v ? mval_to_json(v) : cJSON_CreateNull();
		if (!jv || !cJSON_AddItemToObject(j, auto_cols[i], jv)) {
			cJSON_Delete(jv);
			rc = DMFS_ERR_NOMEM;
		}
	}
	if (!rc && !(text = cJSON_PrintUnformatted(j)))
		rc = DMFS_ERR_NOMEM;
	if (text) {
		fputs(text, x->out);
		fputc('\n', x->out);
	}
	free(text);
	cJSON_Delete(fields);
	cJSON_Delete(j);
	return rc;
}

static int write_hit(void *ctx, const struct metaq_hit *h)
{
	struct export_ctx *x = ctx;

	metaq_row_init(&x->row, h->path, h->e, h->row);
	switch (x->fmt) {
	case METAQ_PATHS:
		fputs(h->path, x->out);
		fputc('\n', x->out);
		break;
	case METAQ_JSONL: {
		int rc = write_json_row(x, h);
		if (rc)
			return rc;
		break;
	}
	case METAQ_CSV: {
		int rc = write_csv_row(x, h);
		if (rc)
			return rc;
		break;
	}
	}
	return ferror(x->out) ? DMFS_ERR_IO : 0;
}

int metaq_export(const struct capture_env *env, struct meta *m,
		 const char *spec, const struct query *q, enum metaq_format fmt,
		 bool with_auto, FILE *out, char *msg, size_t msgsz)
{
	struct export_ctx *x = calloc(1, sizeof(*x));
	int rc = 0;

	if (!x)
		return DMFS_ERR_NOMEM;
	msg[0] = '\0';
	x->fmt = fmt;
	x->with_auto = with_auto;
	x->out = out;
	if (fmt == METAQ_CSV) {
		rc = metaq_run(env, m, spec, q, collect_cols, x, msg, msgsz);
		for (size_t i = 0; !rc && with_auto && i < NAUTO; i++)
			rc = col_add(x, auto_cols[i]);
		if (!rc) {
			fputs("path", out);
			for (size_t i = 0; i < x->ncols; i++) {
				fputc(',', out);
				csv_cell(out, x->cols[i], strlen(x->cols[i]));
			}
			fputc('\n', out);
		}
	}
	if (!rc)
		rc = metaq_run(env, m, spec, q, write_hit, x, msg, msgsz);
	if (!rc && fflush(out) != 0)
		rc = DMFS_ERR_IO;
	if (rc && !msg[0])
		dmfs_say(msg, msgsz, "%s", dmfs_strerror(rc));
	for (size_t i = 0; i < x->ncols; i++)
		free(x->cols[i]);
	free(x->cols);
	free(x);
	return rc;
}
