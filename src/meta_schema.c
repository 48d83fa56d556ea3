/*
 * meta_schema.c - the metadata schema: which fields have a fixed type,
 * which are required, which take only some values.
 *
 *   {"FIELD": {"type": T, "required": B, "allowed": [...]}, "F2": "T"}
 *
 * It lives in the bucket (.dmfs/meta/schema.json, written by
 * meta_schema_set, read back by meta_refresh) and in LMDB (state
 * "schema"), from where the in-memory copy is loaded.  A schema replaces
 * the previous one whole; it is refused when a value already stored would
 * not fit it.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmfs/log.h"
#include "meta_int.h"

#define SCHEMA_MAX ((size_t)1 << 20)
#define SHOW_MAX 60 /* bytes of a value quoted in a message */

void meta_schema_free(struct meta_schema *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->f[i].name);
		for (size_t j = 0; j < s->f[i].nallowed; j++)
			mval_clear(&s->f[i].allowed[j]);
		free(s->f[i].allowed);
	}
	free(s->f);
	free(s->text);
	memset(s, 0, sizeof(*s));
}

static int cmp_sfield(const void *a, const void *b)
{
	return strcmp(((const struct meta_sfield *)a)->name,
		      ((const struct meta_sfield *)b)->name);
}

const struct meta_sfield *meta_schema_find(const struct meta_schema *s,
					   const char *field)
{
	struct meta_sfield key = {.name = (char *)field};

	if (!s->n)
		return NULL;
	return bsearch(&key, s->f, s->n, sizeof(*s->f), cmp_sfield);
}

void meta_say_mismatch(char *msg, size_t msgsz, const char *prefix,
		       enum mval_type want, const struct mval *v)
{
	char *text = NULL;
	size_t len = 0;

	if (mval_to_text(v, &text, &len) != 0) {
		dmfs_say(msg, msgsz, "%sexpected %s, got %s", prefix,
			 mval_type_name(want), mval_type_name(v->t));
		return;
	}
	if (v->t == MV_BLOB)
		dmfs_say(msg, msgsz, "%sexpected %s, got blob (%zu bytes)",
			 prefix, mval_type_name(want), len);
	else if (v->t == MV_STRING)
		dmfs_say(msg, msgsz, "%sexpected %s, got string \"%.*s%s\"",
			 prefix, mval_type_name(want),
			 (int)(len > SHOW_MAX ? SHOW_MAX : len), text,
			 len > SHOW_MAX ? "..." : "");
	else
		dmfs_say(msg, msgsz, "%sexpected %s, got %s %s", prefix,
			 mval_type_name(want), mval_type_name(v->t), text);
	free(text);
}

int meta_sfield_check(const struct meta_sfield *sf, const struct mval *v,
		      char *msg, size_t msgsz)
{
	char *text = NULL;
	size_t len = 0;

	if (!mval_fits(v->t, sf->t)) {
		meta_say_mismatch(msg, msgsz, "", sf->t, v);
		return DMFS_ERR_INVAL;
	}
	if (!sf->nallowed)
		return 0;
	for (size_t i = 0; i < sf->nallowed; i++)
		if (mval_equal(v, &sf->allowed[i]))
			return 0;
	if (mval_to_text(v, &text, &len) == 0)
		dmfs_say(msg, msgsz, "value \"%.*s\" is not an allowed value",
			 (int)(len > SHOW_MAX ? SHOW_MAX : len), text);
	else
		dmfs_say(msg, msgsz, "not an allowed value");
	free(text);
	return DMFS_ERR_INVAL;
}

/* One schema entry from its JSON (a type name or an object). */
static int parse_field(const cJSON *j, struct meta_sfield *f, char *msg,
		       size_t msgsz)
{
	const cJSON *type = j, *req = NULL, *allowed = NULL, *it;
	char why[256];
	size_t i = 0;

	if (cJSON_IsObject(j)) {
		type = cJSON_GetObjectItemCaseSensitive(j, "type");
		req = cJSON_GetObjectItemCaseSensitive(j, "required");
		allowed = cJSON_GetObjectItemCaseSensitive(j, "allowed");
		cJSON_ArrayForEach(it, j)
		{
			if (strcmp(it->string, "type") &&
			    strcmp(it->string, "required") &&
			    strcmp(it->string, "allowed")) {
				dmfs_say(msg, msgsz,
					 "%s: unknown key \"%s\" (expected "
					 "type, required, allowed)",
					 f->name, it->string);
				return DMFS_ERR_INVAL;
			}
		}
	}
	if (!cJSON_IsString(type) ||
	    mval_type_parse(type->valuestring, &f->t) != 0 || f->t == MV_NULL) {
		dmfs_say(msg, msgsz,
			 "%s: expected a type (int, float, bool, string, blob)",
			 f->name);
		return DMFS_ERR_INVAL;
	}
	if (req && !cJSON_IsBool(req)) {
		dmfs_say(msg, msgsz, "%s: \"required\" must be true or false",
			 f->name);
		return DMFS_ERR_INVAL;
	}
	f->required = req && cJSON_IsTrue(req);
	if (!allowed)
		return 0;
	if (!cJSON_IsArray(allowed) || !cJSON_GetArraySize(allowed)) {
		dmfs_say(msg, msgsz,
			 "%s: \"allowed\" must be a non-empty list of values",
			 f->name);
		return DMFS_ERR_INVAL;
	}
	f->allowed =
	    calloc((size_t)cJSON_GetArraySize(allowed), sizeof(*f->allowed));
	if (!f->allowed)
		return DMFS_ERR_NOMEM;
	cJSON_ArrayForEach(it, allowed)
	{
		int rc =
		    mval_from_json(it, f->t, &f->allowed[i], why, sizeof(why));
		if (!rc && f->allowed[i].t == MV_NULL)
			rc = DMFS_ERR_INVAL, snprintf(why, sizeof(why), "null");
		if (rc) {
			if (rc != DMFS_ERR_NOMEM)
				dmfs_say(msg, msgsz,
					 "%s: allowed value %zu: %s", f->name,
					 i + 1, why);
			return rc == DMFS_ERR_NOMEM ? rc : DMFS_ERR_INVAL;
		}
		f->nallowed = ++i;
	}
	return 0;
}

int meta_schema_parse(const char *json, struct meta_schema *s, char *msg,
		      size_t msgsz)
{
	cJSON *root = cJSON_Parse(json), *it;
	char why[256];
	int rc = 0;

	memset(s, 0, sizeof(*s));
	if (!root || !cJSON_IsObject(root)) {
		dmfs_say(msg, msgsz, "schema: expected a JSON object");
		cJSON_Delete(root);
		return DMFS_ERR_INVAL;
	}
	s->f = calloc((size_t)cJSON_GetArraySize(root) + 1, sizeof(*s->f));
	s->text = cJSON_PrintUnformatted(root);
	if (!s->f || !s->text) {
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	cJSON_ArrayForEach(it, root)
	{
		struct meta_sfield *f = &s->f[s->n];
		if (meta_check_field_name(it->string, why, sizeof(why))) {
			dmfs_say(msg, msgsz, "schema: %s", why);
			rc = DMFS_ERR_INVAL;
			goto out;
		}
		f->name = strdup(it->string);
		if (!f->name) {
			rc = DMFS_ERR_NOMEM;
			goto out;
		}
		s->n++;
		rc = parse_field(it, f, why, sizeof(why));
		if (rc) {
			dmfs_say(msg, msgsz, "schema: %s", why);
			goto out;
		}
	}
	qsort(s->f, s->n, sizeof(*s->f), cmp_sfield);
	for (size_t i = 1; i < s->n; i++) {
		if (!strcmp(s->f[i - 1].name, s->f[i].name)) {
			dmfs_say(msg, msgsz, "schema: field %s twice",
				 s->f[i].name);
			rc = DMFS_ERR_INVAL;
			goto out;
		}
	}
out:
	cJSON_Delete(root);
	if (rc)
		meta_schema_free(s);
	return rc;
}

int meta_schema_load(struct meta *m, char *msg, size_t msgsz)
{
	struct meta_schema s = {0}, old;
	MDB_txn *txn;
	MDB_val v;
	char *text = NULL;
	int rc = meta_txn_begin(m, MDB_RDONLY, &txn);

	if (rc)
		return meta_mdb_err(rc);
	rc = meta_state_get(m, txn, "schema", &v);
	if (!rc) {
		text = strndup(v.mv_data, v.mv_size);
		if (!text)
			rc = ENOMEM;
	}
	meta_txn_end(m, txn, 0);
	if (rc == MDB_NOTFOUND)
		text = strdup("{}"), rc = text ? 0 : ENOMEM;
	if (rc)
		return meta_mdb_err(rc);
	rc = meta_schema_parse(text, &s, msg, msgsz);
	free(text);
	if (rc)
		return rc;
	pthread_mutex_lock(&m->schema_lock);
	old = m->schema;
	m->schema = s;
	pthread_mutex_unlock(&m->schema_lock);
	meta_schema_free(&old);
	return 0;
}

int meta_schema_stage(struct meta *m, MDB_txn *txn, const char *json,
		      bool *changed, char *msg, size_t msgsz)
{
	struct meta_schema s;
	bool same;
	int rc = meta_schema_parse(json, &s, msg, msgsz);

	if (rc)
		return rc;
	pthread_mutex_lock(&m->schema_lock);
	same = m->schema.text && !strcmp(m->schema.text, s.text);
	pthread_mutex_unlock(&m->schema_lock);
	if (!same) {
		rc = meta_mdb_err(
		    meta_state_put(m, txn, "schema", s.text, strlen(s.text)));
		if (!rc && changed)
			*changed = true;
	}
	meta_schema_free(&s);
	return rc;
}

int meta_schema_get(struct meta *m, char **json)
{
	pthread_mutex_lock(&m->schema_lock);
	*json = strdup(m->schema.text ? m->schema.text : "{}");
	pthread_mutex_unlock(&m->schema_lock);
	return *json ? 0 : DMFS_ERR_NOMEM;
}

/* Whether every stored row fits s.  0 or DMFS_ERR_INVAL with msg. */
static int check_rows(struct meta *m, const struct meta_schema *s, char *msg,
		      size_t msgsz)
{
	struct meta_cursor *c;
	struct meta_row r;
	char why[512];
	int rc = meta_cursor_open(m, "", &c), more;

	if (rc)
		return rc;
	while (!rc && (more = meta_cursor_next(c, &r)) == 1) {
		for (size_t i = 0; !rc && i < s->n; i++) {
			const struct meta_sfield *sf = &s->f[i];
			const struct mval *v = meta_row_get(&r, sf->name);
			if (!v && sf->required) {
				dmfs_say(msg, msgsz,
					 "%s: %s: required field missing",
					 r.path, sf->name);
				rc = DMFS_ERR_INVAL;
			} else if (v &&
				   meta_sfield_check(sf, v, why, sizeof(why))) {
				dmfs_say(msg, msgsz, "%s: %s: %s", r.path,
					 sf->name, why);
				rc = DMFS_ERR_INVAL;
			}
		}
		meta_row_clear(&r);
	}
	if (!rc && more < 0)
		rc = -more;
	meta_cursor_close(c);
	return rc;
}

int meta_schema_set(struct meta *m, const char *json, char *msg, size_t msgsz)
{
	struct meta_schema s;
	struct dmfs_err_detail d;
	MDB_txn *txn;
	int rc, lrc;

	dmfs_say(msg, msgsz, "%s", "");
	if (!json || strlen(json) > SCHEMA_MAX) {
		dmfs_say(msg, msgsz, "schema: missing or too large");
		return DMFS_ERR_INVAL;
	}
	rc = meta_schema_parse(json, &s, msg, msgsz);
	if (rc)
		return rc;
	/* One change of schema at a time, and none while a refresh merges.
	 * The write transaction is taken before the rows are checked: no
	 * batch can commit a value that does not fit in between (LMDB has
	 * one writer at a time), and the rows are read in a read
	 * transaction that sees everything committed. */
	pthread_mutex_lock(&m->sync_lock);
	rc = meta_mdb_err(meta_txn_begin(m, 0, &txn));
	if (rc) {
		dmfs_say(msg, msgsz, "schema: %s", dmfs_strerror(rc));
		goto unlock;
	}
	rc = check_rows(m, &s, msg, msgsz);
	if (!rc && m->st) {
		struct dmfs_put_src src = {
		    .buf = s.text, .fd = -1, .len = strlen(s.text)};
		struct dmfs_put_opts po = {.content_type = "application/json"};
		dmfs_err_detail_clear(&d);
		rc = m->st->ops->put(m->st, META_SCHEMA_KEY, &src, &po, NULL,
				     &d);
		if (rc)
			dmfs_say(msg, msgsz, "schema: upload failed: %s%s%s",
				 dmfs_strerror(rc), *d.message ? ": " : "",
				 d.message);
	}
	if (!rc)
		rc = meta_mdb_err(
		    meta_state_put(m, txn, "schema", s.text, strlen(s.text)));
	lrc = meta_txn_end(m, txn, !rc);
	if (!rc && lrc) {
		rc = meta_mdb_err(lrc);
		dmfs_say(msg, msgsz, "schema: uploaded, but cannot store: %s",
			 dmfs_strerror(rc));
	}
	if (!rc)
		rc = meta_schema_load(m, msg, msgsz);
unlock:
	pthread_mutex_unlock(&m->sync_lock);
	meta_schema_free(&s);
	return rc;
}
