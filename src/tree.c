/*
 * tree.c - file trees as sorted streams (see tree.h).
 *
 * A live tree pages through a flat listing (no delimiter: S3 returns keys
 * in byte order, which is the manifest order), or through the object
 * versions of the prefix, keeping the latest version of each key that is
 * not deleted.  A ref tree reads the manifest from its verified local copy
 * line by line.  Either way one page or one line is in memory at a time.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dmfs/keyname.h"
#include "dmfs/log.h"
#include "dmfs/meta.h"
#include "dmfs/tree.h"

struct tree {
	enum tree_kind kind;
	const struct capture_env *env;	/* borrowed */
	/* live */
	char *prefix;			/* key prefix of the root, "" or "a/" */
	bool versions;
	struct dmfs_list_page page;
	size_t next;			/* index in page */
	char *token;			/* next page; NULL at the end */
	bool started;
	char *last;			/* the path last returned, or NULL */
	/* ref */
	struct ref_info ref;
	char *sub;			/* "" or "a/b/" inside the manifest */
	struct manifest_reader *mr;
};

/* A key usable as a path: every component a valid name (keyname.c), no
 * trailing '/' (directory markers are not files).  A key that is not is
 * noted as hidden, as live/ hides it. */
static bool path_ok(const char *key, const char *p)
{
	size_t n = strlen(p), unit;
	enum keyname_fault f;

	if (!n || p[n - 1] == '/')
		return false;
	if (n > MANIFEST_PATH_MAX) {
		keyname_note_hidden(key, strlen(key), "path too long");
		return false;
	}
	f = keyname_check_path(p, &unit);
	if (f) {
		keyname_note_hidden(key, (size_t)(p - key) + unit,
				    keyname_fault_str(f));
		return false;
	}
	return true;
}

/* Split "snapshots/ID/SUB" or "datasets/N/V/SUB" into the ref name and
 * SUB (NULL-free: "" when absent). */
static int split_ref(const char *spec, char *name, size_t namesz,
		     const char **sub)
{
	int parts = !strncmp(spec, "snapshots/", 10)  ? 2
		    : !strncmp(spec, "datasets/", 9) ? 3
						     : 0;
	const char *p = spec;

	if (!parts)
		return DMFS_ERR_INVAL;
	for (int i = 0; i < parts && p; i++) {
		p = strchr(p, '/');
		if (p && i < parts - 1)
			p++;
	}
	size_t n = p ? (size_t)(p - spec) : strlen(spec);
	if (n >= namesz)
		return DMFS_ERR_INVAL;
	memcpy(name, spec, n);
	name[n] = '\0';
	*sub = p ? p + 1 : "";
	return 0;
}

/* "a/b" -> "a/b/"; "" stays "".  Caller frees with free(). */
static char *dir_prefix(const char *sub)
{
	size_t n = strlen(sub);
	while (n && sub[n - 1] == '/')
		n--;
	char *p = malloc(n + 2);
	if (!p)
		return NULL;
	memcpy(p, sub, n);
	p[n] = '/';
	p[n ? n + 1 : 0] = '\0';
	return p;
}

static int open_ref(struct tree *t, const char *spec, char *msg,
		    size_t msgsz)
{
	char name[REF_NAME_MAX], path[4096];
	const char *sub;
	struct dmfs_err_detail d = {0};
	int rc;

	if (split_ref(spec, name, sizeof(name), &sub) != 0 ||
	    refs_check_name(name, msg, msgsz) != 0) {
		if (!msg[0])
			snprintf(msg, msgsz, "%s: not a snapshot or version",
				 spec);
		return DMFS_ERR_INVAL;
	}
	t->sub = dir_prefix(sub);
	if (!t->sub)
		return DMFS_ERR_NOMEM;
	rc = refs_read(t->env->st, name, &t->ref, &d);
	if (rc) {
		snprintf(msg, msgsz, "%s: %s", name,
			 rc == DMFS_ERR_NOT_FOUND ? "no such snapshot or version"
						  : dmfs_strerror(rc));
		return rc;
	}
	rc = manifest_fetch(t->env->st, t->env->cache_dir, t->ref.manifest,
			    path, sizeof(path), &d);
	if (rc) {
		snprintf(msg, msgsz, "%s: manifest %s: %s", name,
			 t->ref.manifest, dmfs_strerror(rc));
		return rc;
	}
	return manifest_reader_open(path, &t->mr, msg, msgsz);
}

int tree_open(const struct capture_env *env, const char *spec, bool versions,
	      struct tree **out, char *msg, size_t msgsz)
{
	struct tree *t = calloc(1, sizeof(*t));
	int rc = 0;

	msg[0] = '\0';
	if (!t)
		return DMFS_ERR_NOMEM;
	t->env = env;
	if (!strcmp(spec, "live") || !strncmp(spec, "live/", 5)) {
		t->kind = TREE_LIVE;
		t->versions = versions;
		t->prefix = dir_prefix(spec[4] ? spec + 5 : "");
		if (!t->prefix)
			rc = DMFS_ERR_NOMEM;
		else if (!strncmp(t->prefix, ".dmfs/", 6)) {
			snprintf(msg, msgsz, "%s: dmfs's own files are not a "
				 "tree to capture", spec);
			rc = DMFS_ERR_INVAL;
		}
	} else {
		t->kind = TREE_REF;
		rc = open_ref(t, spec, msg, msgsz);
	}
	if (rc) {
		tree_close(t);
		return rc;
	}
	*out = t;
	return 0;
}

enum tree_kind tree_kind(const struct tree *t)
{
	return t->kind;
}

const struct ref_info *tree_ref(const struct tree *t)
{
	return t->kind == TREE_REF ? &t->ref : NULL;
}

const char *tree_live_prefix(const struct tree *t)
{
	return t->prefix ? t->prefix : "";
}

static int next_page(struct tree *t, char *msg, size_t msgsz)
{
	struct dmfs_err_detail d = {0};
	int rc;

	dmfs_list_page_free(&t->page);
	t->next = 0;
	if (t->versions) {
		rc = t->env->st->ops->list_versions(t->env->st, t->prefix,
						    &t->token, &t->page, &d);
	} else {
		char *tok = t->token;
		t->token = NULL;
		rc = t->env->st->ops->list(t->env->st, t->prefix, NULL, tok,
					   1000, &t->page, &d);
		free(tok);
		if (!rc && t->page.truncated && t->page.next_token) {
			t->token = t->page.next_token;
			t->page.next_token = NULL;
		}
	}
	if (rc)
		snprintf(msg, msgsz, "listing %s: %s%s%s", t->prefix,
			 dmfs_strerror(rc), d.s3_code[0] ? " " : "",
			 d.s3_code);
	t->started = true;
	return rc;
}

/* A live entry's user metadata, as a version freezes it: the row of its
 * key in the metadata table (env->meta), as JSON.  1, or a negated
 * DMFS_ERR_* with msg (e is then cleared). */
static int live_meta(struct tree *t, struct manifest_entry *e, char *msg,
		     size_t msgsz)
{
	struct meta_row row = {0};
	int rc;

	if (!t->env->meta)
		return 1;
	rc = meta_get(t->env->meta, e->key, &row);
	if (!rc && row.n) {
		cJSON *j = meta_row_to_json(&row);
		e->meta_json = j ? cJSON_PrintUnformatted(j) : NULL;
		cJSON_Delete(j);
		if (!e->meta_json)
			rc = DMFS_ERR_NOMEM;
	}
	meta_row_clear(&row);
	if (rc) {
		snprintf(msg, msgsz, "metadata of %s: %s", e->key,
			 dmfs_strerror(rc));
		manifest_entry_clear(e);
		return -rc;
	}
	return 1;
}

static int next_live(struct tree *t, struct manifest_entry *e, char *msg,
		     size_t msgsz)
{
	size_t pl = strlen(t->prefix);

	for (;;) {
		if (t->next >= t->page.nobjs) {
			if (t->started && !t->token)
				return 0;
			int rc = next_page(t, msg, msgsz);
			if (rc)
				return -rc;
			continue;
		}
		struct dmfs_obj_info *o = &t->page.objs[t->next++];
		if (t->versions && (!o->is_latest || o->is_delete_marker))
			continue;
		if (strncmp(o->key, t->prefix, pl) != 0)
			continue;
		const char *rel = o->key + pl;
		if (!pl && !strncmp(rel, ".dmfs/", 6))
			continue; /* dmfs's own bookkeeping */
		if (!path_ok(o->key, rel))
			continue;
		size_t rl = strlen(rel);
		if (t->last && !strncmp(t->last, rel, rl) &&
		    t->last[rl] == '/') {
			/* "dir" after "dir/f" (some servers list in that
			 * order): the directory wins, as in live/ (in byte
			 * order "dir" comes first and the index drops it). */
			keyname_note_hidden(o->key, strlen(o->key),
					    "a directory has the same name "
					    "(the directory is shown)");
			continue;
		}
		memset(e, 0, sizeof(*e));
		e->path = strdup(rel);
		e->key = strdup(o->key);
		if (o->version_id)
			e->version_id = strdup(o->version_id);
		if (!e->path || !e->key || (o->version_id && !e->version_id)) {
			manifest_entry_clear(e);
			return -DMFS_ERR_NOMEM;
		}
		e->size = o->size;
		e->mtime = o->mtime;
		e->mode = 0644;
		snprintf(e->etag, sizeof(e->etag), "%s", o->etag);
		snprintf(e->sha256, sizeof(e->sha256), "%s", o->sha256);
		free(t->last);
		t->last = strdup(rel);
		if (!t->last) {
			manifest_entry_clear(e);
			return -DMFS_ERR_NOMEM;
		}
		return live_meta(t, e, msg, msgsz);
	}
}

int tree_live_lookup(struct tree *t, const char *key,
		     struct manifest_entry *e, char *msg, size_t msgsz)
{
	struct dmfs_err_detail d = {0};
	struct dmfs_obj_info o;
	size_t pl;
	const char *rel;
	int rc;

	if (t->kind != TREE_LIVE || t->versions)
		return 0;
	pl = strlen(t->prefix);
	rel = key + pl;
	if (strncmp(key, t->prefix, pl) != 0 ||
	    (!pl && !strncmp(rel, ".dmfs/", 6)) || !path_ok(key, rel))
		return 0;
	rc = t->env->st->ops->head_listed
		 ? t->env->st->ops->head_listed(t->env->st, key, &o, &d)
		 : t->env->st->ops->head(t->env->st, key, &o, &d);
	if (rc == DMFS_ERR_NOT_FOUND || rc == DMFS_ERR_NOT_DIR)
		return 0;
	if (rc) {
		snprintf(msg, msgsz, "%s: %s%s%s", key, dmfs_strerror(rc),
			 d.s3_code[0] ? " " : "", d.s3_code);
		return -rc;
	}
	/* What a listing says of the object, no more: the walk and this
	 * must give the same entry. */
	memset(e, 0, sizeof(*e));
	e->path = strdup(rel);
	e->key = strdup(key);
	if (!e->path || !e->key) {
		dmfs_obj_info_clear(&o);
		manifest_entry_clear(e);
		return -DMFS_ERR_NOMEM;
	}
	e->size = o.size;
	e->mtime = o.mtime;
	e->mode = 0644;
	snprintf(e->etag, sizeof(e->etag), "%s", o.etag);
	dmfs_obj_info_clear(&o);
	return 1;
}

static int next_ref(struct tree *t, struct manifest_entry *e, char *msg,
		    size_t msgsz)
{
	size_t sl = strlen(t->sub);

	for (;;) {
		int rc = manifest_reader_next(t->mr, e, msg, msgsz);
		if (rc <= 0)
			return rc;
		if (strncmp(e->path, t->sub, sl) != 0) {
			/* Sorted: once past the subtree, nothing follows. */
			int past = strcmp(e->path, t->sub) > 0;
			manifest_entry_clear(e);
			if (past)
				return 0;
			continue;
		}
		if (sl)
			memmove(e->path, e->path + sl, strlen(e->path + sl) + 1);
		return 1;
	}
}

int tree_next(struct tree *t, struct manifest_entry *e, char *msg,
	      size_t msgsz)
{
	return t->kind == TREE_LIVE ? next_live(t, e, msg, msgsz)
				    : next_ref(t, e, msg, msgsz);
}

void tree_close(struct tree *t)
{
	if (!t)
		return;
	dmfs_list_page_free(&t->page);
	free(t->token);
	free(t->prefix);
	free(t->last);
	free(t->sub);
	manifest_reader_close(t->mr);
	ref_info_clear(&t->ref);
	free(t);
}
