/*
 * metaq_row.c - the fields of one query row: a file of a tree (its
 * manifest entry) and its user fields, plus the automatic fields derived
 * from the entry (see metaq.h).
 *
 * Automatic values are made on demand, when the query asks for them, and
 * point into the entry or into the row's scratch buffer: a query over a
 * million files that reads only `label` never formats a million mtimes.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "metaq_int.h"

static const char *const auto_fields[] = {"path", "name",  "ext", "dir",
					  "size", "mtime", "etag"};

enum mval_type metaq_auto_type(const char *field)
{
	if (!strcmp(field, "size") || !strcmp(field, "mtime"))
		return MV_INT;
	for (size_t i = 0; i < sizeof(auto_fields) / sizeof(auto_fields[0]);
	     i++)
		if (!strcmp(field, auto_fields[i]))
			return MV_STRING;
	return MV_NULL;
}

void metaq_row_init(struct metaq_row *r, const char *path,
		    const struct manifest_entry *e, const struct meta_row *user)
{
	memset(r, 0, sizeof(*r));
	r->path = path;
	r->e = e;
	r->user = user;
}

/* A string value borrowing s (NUL-terminated after len bytes). */
static const struct mval *str_val(struct metaq_row *r, const char *s,
				  size_t len)
{
	r->tmp = (struct mval){.t = MV_STRING, .s = (char *)s, .len = len};
	return &r->tmp;
}

/* A copy of len bytes of s in the row's scratch buffer, as a string. */
static const struct mval *scratch_val(struct metaq_row *r, const char *s,
				      size_t len)
{
	if (len >= sizeof(r->scratch))
		len = sizeof(r->scratch) - 1;
	memcpy(r->scratch, s, len);
	r->scratch[len] = '\0';
	return str_val(r, r->scratch, len);
}

/* The value of "key=value" path segment `field` of the directories of
 * path, or NULL. */
static const struct mval *segment_val(struct metaq_row *r, const char *field)
{
	size_t fl = strlen(field);
	const char *p = r->path, *slash;

	/* The file name itself is not a segment: only directories. */
	while ((slash = strchr(p, '/')) != NULL) {
		if ((size_t)(slash - p) > fl && !strncmp(p, field, fl) &&
		    p[fl] == '=')
			return scratch_val(r, p + fl + 1,
					   (size_t)(slash - p) - fl - 1);
		p = slash + 1;
	}
	return NULL;
}

const struct mval *metaq_row_get(struct metaq_row *r, const char *field)
{
	const char *name, *dot, *slash;
	const struct mval *v = r->user ? meta_row_get(r->user, field) : NULL;

	if (v)
		return v;
	slash = strrchr(r->path, '/');
	name = slash ? slash + 1 : r->path;
	switch (field[0]) {
	case 'p':
		if (!strcmp(field, "path"))
			return str_val(r, r->path, strlen(r->path));
		break;
	case 'n':
		if (!strcmp(field, "name"))
			return str_val(r, name, strlen(name));
		break;
	case 'e':
		if (!strcmp(field, "ext")) {
			dot = strrchr(name, '.');
			/* ".bashrc" has no extension, as in pathlib */
			if (!dot || dot == name)
				return str_val(r, "", 0);
			return str_val(r, dot + 1, strlen(dot + 1));
		}
		if (!strcmp(field, "etag") && r->e)
			return str_val(r, r->e->etag, strlen(r->e->etag));
		break;
	case 'd':
		if (!strcmp(field, "dir"))
			return scratch_val(
			    r, r->path, slash ? (size_t)(slash - r->path) : 0);
		break;
	case 's':
		if (!strcmp(field, "size") && r->e) {
			r->tmp = (struct mval){.t = MV_INT,
					       .i = (int64_t)r->e->size};
			return &r->tmp;
		}
		break;
	case 'm':
		if (!strcmp(field, "mtime") && r->e) {
			r->tmp = (struct mval){.t = MV_INT, .i = r->e->mtime};
			return &r->tmp;
		}
		break;
	}
	return segment_val(r, field);
}

int metaq_row_query_get(void *row, const char *field, const struct mval **out)
{
	*out = metaq_row_get(row, field);
	return 0;
}

static int field_cmp(const void *a, const void *b)
{
	return strcmp(((const struct meta_field *)a)->name,
		      ((const struct meta_field *)b)->name);
}

int metaq_row_from_json(const char *path, const char *json,
			struct meta_row *out, char *msg, size_t msgsz)
{
	cJSON *j = NULL, *f;
	size_t n = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->path = strdup(path);
	if (!out->path)
		return DMFS_ERR_NOMEM;
	if (!json)
		return 0;
	j = cJSON_Parse(json);
	if (!cJSON_IsObject(j)) {
		dmfs_say(msg, msgsz, "%s: frozen metadata is not a JSON object",
			 path);
		rc = DMFS_ERR_CORRUPT;
		goto out;
	}
	n = (size_t)cJSON_GetArraySize(j);
	out->f = calloc(n ? n : 1, sizeof(*out->f));
	if (!out->f) {
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	cJSON_ArrayForEach(f, j)
	{
		struct meta_field *mf = &out->f[out->n];
		mf->name = strdup(f->string);
		if (!mf->name) {
			rc = DMFS_ERR_NOMEM;
			break;
		}
		out->n++;
		rc = mval_from_json(f, MV_NULL, &mf->v, msg, msgsz);
		if (rc)
			break;
	}
	/* meta_row_get searches by name: keep the row sorted whatever
	 * order the manifest has. */
	if (!rc)
		qsort(out->f, out->n, sizeof(*out->f), field_cmp);
out:
	cJSON_Delete(j);
	if (rc)
		meta_row_clear(out);
	return rc;
}
