/*
 * metaq_saved.c - saved queries, shared through the bucket as
 * .dmfs/queries/NAME.json: {"name", "query", "saved", "author"}.  Every
 * mount lists them under queries/; the expression is parsed again where
 * it is used, so a saved query always means what the parser says today.
 */
#include "config.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "metaq_int.h"

#define SAVED_MAX (64u * 1024)
#define SAVED_NAME_MAX 200

int metaq_check_name(const char *name, char *msg, size_t msgsz)
{
	size_t n = strlen(name);

	if (!n || n > SAVED_NAME_MAX || name[0] == '.' || name[0] == '@' ||
	    strchr(name, '/')) {
		dmfs_say(msg, msgsz,
			 "'%s': a query name is 1-%d bytes, no "
			 "'/', not starting with '.' or '@'",
			 name, SAVED_NAME_MAX);
		return DMFS_ERR_INVAL;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) {
			dmfs_say(msg, msgsz,
				 "a query name has no control "
				 "characters");
			return DMFS_ERR_INVAL;
		}
	return 0;
}

static void saved_key(const char *name, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s%s.json", METAQ_SAVED_PREFIX, name);
}

int metaq_save(struct dmfs_store *st, const char *name, const char *expr,
	       char *msg, size_t msgsz)
{
	struct query *q = NULL;
	struct dmfs_err_detail d = {0};
	char key[512], who[300], host[256] = "";
	struct passwd *pw = getpwuid(geteuid());
	cJSON *j = NULL;
	char *text = NULL;
	int rc;

	rc = metaq_check_name(name, msg, msgsz);
	if (!rc)
		rc = query_parse(expr, &q, msg, msgsz);
	if (rc)
		return rc;
	gethostname(host, sizeof(host) - 1);
	snprintf(who, sizeof(who), "%s@%s", pw ? pw->pw_name : "?", host);
	j = cJSON_CreateObject();
	if (!j || !cJSON_AddStringToObject(j, "name", name) ||
	    !cJSON_AddStringToObject(j, "query", expr) ||
	    !cJSON_AddNumberToObject(j, "saved", (double)time(NULL)) ||
	    !cJSON_AddStringToObject(j, "author", who) ||
	    !(text = cJSON_PrintUnformatted(j))) {
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	saved_key(name, key, sizeof(key));
	struct dmfs_put_src src = {.buf = text, .fd = -1, .len = strlen(text)};
	struct dmfs_put_opts po = {.content_type = "application/json"};
	rc = st->ops->put(st, key, &src, &po, NULL, &d);
	if (rc)
		dmfs_say(msg, msgsz, "saving query %s: %s", name,
			 dmfs_strerror(rc));
out:
	free(text);
	cJSON_Delete(j);
	query_free(q);
	return rc;
}

int metaq_load(struct dmfs_store *st, const char *name, char **expr)
{
	struct dmfs_err_detail d = {0};
	char key[512], *text = NULL;
	size_t len;
	cJSON *j, *q;
	int rc;

	*expr = NULL;
	if (metaq_check_name(name, NULL, 0))
		return DMFS_ERR_NOT_FOUND;
	saved_key(name, key, sizeof(key));
	rc = dmfs_store_get_all(st, key, SAVED_MAX, &text, &len, &d);
	if (rc)
		return rc;
	j = cJSON_ParseWithLength(text, len);
	q = cJSON_GetObjectItemCaseSensitive(j, "query");
	if (!cJSON_IsString(q))
		rc = DMFS_ERR_CORRUPT;
	else if (!(*expr = strdup(q->valuestring)))
		rc = DMFS_ERR_NOMEM;
	cJSON_Delete(j);
	free(text);
	return rc;
}

int metaq_delete(struct dmfs_store *st, const char *name)
{
	struct dmfs_err_detail d = {0};
	char key[512];

	if (metaq_check_name(name, NULL, 0))
		return DMFS_ERR_NOT_FOUND;
	saved_key(name, key, sizeof(key));
	return st->ops->del(st, key, &d);
}

struct list_ctx {
	int (*cb)(void *ctx, const char *name);
	void *ctx;
};

static int list_one(void *ctx, const struct dmfs_obj_info *o)
{
	struct list_ctx *l = ctx;
	const char *k = o->key + strlen(METAQ_SAVED_PREFIX);
	size_t n = strlen(k);
	char name[SAVED_NAME_MAX + 1];

	if (n <= 5 || n - 5 > SAVED_NAME_MAX || strcmp(k + n - 5, ".json"))
		return 0;
	memcpy(name, k, n - 5);
	name[n - 5] = '\0';
	return l->cb(l->ctx, name);
}

int metaq_list(struct dmfs_store *st, int (*cb)(void *ctx, const char *name),
	       void *ctx)
{
	struct dmfs_err_detail d = {0};
	struct list_ctx l = {.cb = cb, .ctx = ctx};

	return dmfs_store_list_each(st, METAQ_SAVED_PREFIX, "/", list_one, &l,
				    &d);
}
