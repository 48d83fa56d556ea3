/*
 * cli_diff.c - `dmfs diff STORE A B [--json]`: added, removed and changed
 * files between any two trees (live[/DIR], snapshots/ID[/DIR],
 * datasets/NAME/VERSION[/DIR]).
 *
 * Both trees stream in path order, so the diff is a merge join with one
 * entry of each side in memory.  Two files are the same when their content
 * hashes are equal; when a side has no hash (a live object, a zero-copy
 * pin) cheaper evidence is used first - different sizes mean changed, the
 * same ETag or the same version id means unchanged - and only then is the
 * hash looked up in the memo or computed by reading the object.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli_common.h"
#include "dmfs/cli.h"
#include "dmfs/tree.h"

struct diff_out {
	bool json;
	bool first;			/* no JSON item printed yet */
	uint64_t n[3], bytes[3];	/* added, removed, changed */
};

enum { ADDED, REMOVED, CHANGED };

/* The content hash of an entry (filled in e->sha256), reading the
 * object when nothing cheaper knows it. */
static int entry_hash(const struct capture_env *env, struct manifest_entry *e)
{
	struct dmfs_err_detail d = {0};
	struct dmfs_pin pin = {.if_match = e->version_id ? NULL : e->etag,
			       .version_id = e->version_id};

	if (e->sha256[0])
		return 0;
	if (!e->key)
		return DMFS_ERR_INVAL;
	if (!e->version_id && !mindex_memo_get(env->mx, env->store_uri, e->key,
					       e->etag, e->size, e->sha256))
		return 0;
	int rc = dmfs_store_hash(env->st, e->key, &pin, e->sha256, NULL, &d);
	if (!rc && !e->version_id)
		(void)mindex_memo_put(env->mx, env->store_uri, e->key, e->etag,
				      e->size, e->sha256);
	return rc;
}

static int same_content(const struct capture_env *env,
			struct manifest_entry *a, struct manifest_entry *b,
			bool *same)
{
	int rc;

	*same = false;
	if (a->size != b->size)
		return 0;
	if (a->sha256[0] && b->sha256[0]) {
		*same = !strcmp(a->sha256, b->sha256);
		return 0;
	}
	if (a->version_id && b->version_id && a->key && b->key &&
	    !strcmp(a->key, b->key) && !strcmp(a->version_id, b->version_id)) {
		*same = true;
		return 0;
	}
	if (a->etag[0] && !strcmp(a->etag, b->etag) &&
	    !strchr(a->etag, '-')) {
		/* Single-part ETags are MD5s of the content. */
		*same = true;
		return 0;
	}
	rc = entry_hash(env, a);
	if (!rc)
		rc = entry_hash(env, b);
	if (!rc)
		*same = !strcmp(a->sha256, b->sha256);
	return rc;
}

static void emit(struct diff_out *o, int kind, const char *path,
		 uint64_t old_size, uint64_t new_size)
{
	static const char *const mark[] = {"A", "D", "M"};
	static const char *const name[] = {"added", "removed", "changed"};

	o->n[kind]++;
	o->bytes[kind] += kind == REMOVED ? old_size : new_size;
	if (!o->json) {
		if (kind == CHANGED)
			printf("%s  %s  (%llu -> %llu bytes)\n", mark[kind],
			       path, (unsigned long long)old_size,
			       (unsigned long long)new_size);
		else
			printf("%s  %s  (%llu bytes)\n", mark[kind], path,
			       (unsigned long long)(kind == REMOVED ? old_size
								    : new_size));
		return;
	}
	cJSON *it = cJSON_CreateObject();
	char *txt = NULL;
	if (it && cJSON_AddStringToObject(it, "status", name[kind]) &&
	    cJSON_AddStringToObject(it, "path", path) &&
	    (kind == ADDED ||
	     cJSON_AddNumberToObject(it, "old_size", (double)old_size)) &&
	    (kind == REMOVED ||
	     cJSON_AddNumberToObject(it, "new_size", (double)new_size)))
		txt = cJSON_PrintUnformatted(it);
	printf("%s\n  %s", o->first ? "" : ",", txt ? txt : "null");
	o->first = false;
	free(txt);
	cJSON_Delete(it);
}

static int run_diff(const struct capture_env *env, const char *sa,
		    const char *sb, struct diff_out *o)
{
	struct tree *ta = NULL, *tb = NULL;
	struct manifest_entry a = {0}, b = {0};
	char msg[1024] = "";
	int ra = 0, rb = 0, rc;

	rc = tree_open(env, sa, false, &ta, msg, sizeof(msg));
	if (!rc)
		rc = tree_open(env, sb, false, &tb, msg, sizeof(msg));
	if (!rc)
		ra = tree_next(ta, &a, msg, sizeof(msg));
	if (!rc && ra >= 0)
		rb = tree_next(tb, &b, msg, sizeof(msg));
	if (o->json) {
		cJSON *ja = cJSON_CreateString(sa), *jb = cJSON_CreateString(sb);
		char *pa = ja ? cJSON_PrintUnformatted(ja) : NULL;
		char *pb = jb ? cJSON_PrintUnformatted(jb) : NULL;
		printf("{\"a\": %s, \"b\": %s, \"files\": [",
		       pa ? pa : "null", pb ? pb : "null");
		free(pa);
		free(pb);
		cJSON_Delete(ja);
		cJSON_Delete(jb);
	}
	while (!rc && ra > 0 && rb > 0) {
		int cmp = strcmp(a.path, b.path);
		bool same = true;
		if (cmp < 0) {
			emit(o, REMOVED, a.path, a.size, 0);
		} else if (cmp > 0) {
			emit(o, ADDED, b.path, 0, b.size);
		} else {
			rc = same_content(env, &a, &b, &same);
			if (rc)
				snprintf(msg, sizeof(msg), "comparing %s: %s",
					 a.path, dmfs_strerror(rc));
			else if (!same)
				emit(o, CHANGED, a.path, a.size, b.size);
		}
		if (cmp <= 0) {
			manifest_entry_clear(&a);
			ra = tree_next(ta, &a, msg, sizeof(msg));
		}
		if (cmp >= 0) {
			manifest_entry_clear(&b);
			rb = tree_next(tb, &b, msg, sizeof(msg));
		}
	}
	for (; !rc && ra > 0; ra = tree_next(ta, &a, msg, sizeof(msg))) {
		emit(o, REMOVED, a.path, a.size, 0);
		manifest_entry_clear(&a);
	}
	for (; !rc && rb > 0; rb = tree_next(tb, &b, msg, sizeof(msg))) {
		emit(o, ADDED, b.path, 0, b.size);
		manifest_entry_clear(&b);
	}
	if (!rc && (ra < 0 || rb < 0))
		rc = -(ra < 0 ? ra : rb);
	manifest_entry_clear(&a);
	manifest_entry_clear(&b);
	tree_close(ta);
	tree_close(tb);
	if (o->json && !rc)
		printf("\n], \"added\": {\"files\": %llu, \"bytes\": %llu}, "
		       "\"removed\": {\"files\": %llu, \"bytes\": %llu}, "
		       "\"changed\": {\"files\": %llu, \"bytes\": %llu}}\n",
		       (unsigned long long)o->n[ADDED],
		       (unsigned long long)o->bytes[ADDED],
		       (unsigned long long)o->n[REMOVED],
		       (unsigned long long)o->bytes[REMOVED],
		       (unsigned long long)o->n[CHANGED],
		       (unsigned long long)o->bytes[CHANGED]);
	if (rc) {
		fflush(stdout);
		fprintf(stderr, "dmfs: %s\n", msg[0] ? msg : dmfs_strerror(rc));
	}
	return rc;
}

int cli_diff(int argc, char **argv)
{
	static const char use[] = "dmfs diff STORE A B [--json] [-o OPTS]\n"
				  "  A, B: live[/DIR], snapshots/ID[/DIR], "
				  "datasets/NAME/VERSION[/DIR]";
	struct cli_store c = {0};
	struct diff_out o = {.first = true};
	const char *pos[3] = {0};
	const struct cli_flag flags[] = {
		{"--json", NULL, &o.json, NULL},
		{NULL, NULL, NULL, NULL},
	};
	int npos, rc;

	if (dmfs_options_init(&c.o))
		return 1;
	rc = cli_parse(&c, argc, argv, flags, pos, 3, 3, &npos, use);
	if (!rc)
		rc = cli_open(&c, pos[0]);
	if (!rc) {
		rc = run_diff(&c.env, pos[1], pos[2], &o);
		if (!rc && !o.json) {
			char b[3][32];
			for (int k = 0; k < 3; k++)
				cli_human_bytes(o.bytes[k], b[k], sizeof(b[k]));
			printf("%llu added (%s), %llu removed (%s), %llu "
			       "changed (%s now)\n",
			       (unsigned long long)o.n[ADDED], b[ADDED],
			       (unsigned long long)o.n[REMOVED], b[REMOVED],
			       (unsigned long long)o.n[CHANGED], b[CHANGED]);
		}
		rc = cli_exit_status(rc);
	}
	cli_close(&c);
	return rc;
}
