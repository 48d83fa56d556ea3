/*
 * cli_meta.c - `dmfs meta set|get|rm|import|export|log|compact` and
 * `dmfs schema`: the metadata table without a mount, for scripts.
 *
 * Every command merges what other writers logged first (cli_open_meta)
 * and sends its own changes to the bucket before it exits, so a script
 * that labels files and then queries from another machine sees its
 * labels.  Exit status: 0 done, 1 failed, 2 usage or invalid input (a
 * wrong type, a malformed batch), 4 no such file or field.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_common.h"
#include "dmfs/cli.h"
#include "dmfs/metaq.h"

/* Exit status of a metadata error: invalid input is a usage error. */
static int meta_status(int rc)
{
	return rc == DMFS_ERR_INVAL || rc == DMFS_ERR_TOO_BIG
		   ? 2
		   : cli_exit_status(rc);
}

/* Open the store and its table; 0 or an exit status. */
static int open_all(struct cli_store *c, const char *uri)
{
	int rc = cli_open(c, uri);
	return rc ? rc : cli_open_meta(c);
}

/* A relative file path without leading or trailing '/'. */
static const char *clean_path(const char *p)
{
	while (*p == '/')
		p++;
	return p;
}

/* Whether the live file exists (a metadata row for a file that is not
 * there would be a label nobody can see). */
static int check_file(struct cli_store *c, const char *path)
{
	struct dmfs_obj_info info = {0};
	struct dmfs_err_detail d = {0};
	int rc = c->st->ops->head(c->st, path, &info, &d);

	dmfs_obj_info_clear(&info);
	if (rc)
		fprintf(stderr, "dmfs: %s: %s\n", path,
			rc == DMFS_ERR_NOT_FOUND ? "no such file"
						 : dmfs_strerror(rc));
	return rc;
}

/* Apply a batch and send it to the bucket; prints what went wrong. */
static int apply_and_flush(struct cli_store *c, struct meta_batch *b,
			   bool quiet)
{
	char msg[1024];
	int rc = meta_apply(c->meta, b, msg, sizeof(msg));

	if (rc) {
		fprintf(stderr, "dmfs: nothing applied: %s\n", msg);
		return meta_status(rc);
	}
	if (!quiet)
		printf("applied %zu changes\n", meta_batch_count(b));
	return cli_flush_meta(c);
}

static int meta_set(int argc, char **argv, bool remove)
{
	const char *use = remove ? "dmfs meta rm STORE PATH FIELD..."
				 : "dmfs meta set STORE PATH FIELD=VALUE...";
	struct cli_store c = {0};
	struct meta_batch *b = NULL;
	const char *pos[64];
	int npos, rc;
	char msg[600];

	if (dmfs_options_init(&c.o))
		return 1;
	rc = cli_parse(&c, argc, argv, NULL, pos, 3, 64, &npos, use);
	if (!rc)
		rc = open_all(&c, pos[0]);
	if (!rc && (rc = check_file(&c, clean_path(pos[1]))))
		rc = cli_exit_status(rc);
	if (!rc && meta_batch_new(&b))
		rc = 1;
	for (int i = 2; !rc && i < npos; i++) {
		struct mval v = {0};
		char field[META_FIELD_MAX + 1];
		const char *eq = remove ? NULL : strchr(pos[i], '=');
		size_t fl = remove ? strlen(pos[i])
			    : eq   ? (size_t)(eq - pos[i])
				   : 0;
		if ((!remove && !eq) || fl > META_FIELD_MAX) {
			fprintf(stderr, "usage: %s\n", use);
			rc = 2;
			break;
		}
		memcpy(field, pos[i], fl);
		field[fl] = '\0';
		if (meta_check_field_name(field, msg, sizeof(msg)) ||
		    (eq && mval_from_text(eq + 1, strlen(eq + 1),
					  meta_field_type(c.meta, field), &v,
					  msg, sizeof(msg)))) {
			fprintf(stderr, "dmfs: %s: %s\n", field, msg);
			rc = 2;
			break;
		}
		if (meta_batch_add(b, clean_path(pos[1]), field, &v))
			rc = 1;
		mval_clear(&v);
	}
	if (!rc)
		rc = apply_and_flush(&c, b, true);
	meta_batch_free(b);
	cli_close(&c);
	return rc;
}

static int meta_get_cmd(int argc, char **argv)
{
	static const char use[] = "dmfs meta get STORE PATH [FIELD]";
	struct cli_store c = {0};
	struct meta_row row = {0};
	const char *pos[3];
	int npos, rc;

	if (dmfs_options_init(&c.o))
		return 1;
	rc = cli_parse(&c, argc, argv, NULL, pos, 2, 3, &npos, use);
	if (!rc)
		rc = open_all(&c, pos[0]);
	if (!rc && (rc = meta_get(c.meta, clean_path(pos[1]), &row))) {
		fprintf(stderr, "dmfs: %s: %s\n", pos[1], dmfs_strerror(rc));
		rc = 1;
	}
	if (!rc && npos == 3) {
		const struct mval *v = meta_row_get(&row, pos[2]);
		char *text = NULL;
		size_t len;
		if (!v) {
			fprintf(stderr, "dmfs: %s: no field %s\n", pos[1],
				pos[2]);
			rc = 4;
		} else if (mval_to_text(v, &text, &len)) {
			rc = 1;
		} else {
			fwrite(text, 1, len, stdout);
			putchar('\n');
		}
		free(text);
	} else if (!rc) {
		cJSON *j = meta_row_to_json(&row);
		char *text = j ? cJSON_PrintUnformatted(j) : NULL;
		if (text)
			puts(text);
		else
			rc = 1;
		free(text);
		cJSON_Delete(j);
	}
	meta_row_clear(&row);
	cli_close(&c);
	return rc;
}

/* The whole of FILE ("-": stdin) in memory; caller frees. */
static char *read_input(const char *file, size_t *len)
{
	FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
	char *buf = NULL;
	size_t cap = 0;

	*len = 0;
	if (!f) {
		fprintf(stderr, "dmfs: %s: %s\n", file, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (cap - *len < 65536) {
			char *n = realloc(buf, cap = cap ? cap * 2 : 1 << 20);
			if (!n) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = n;
		}
		size_t got = fread(buf + *len, 1, cap - *len - 1, f);
		*len += got;
		if (got == 0)
			break;
	}
	if (buf && ferror(f)) {
		fprintf(stderr, "dmfs: %s: %s\n", file, strerror(errno));
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[*len] = '\0';
	if (f != stdin)
		fclose(f);
	return buf;
}

static int meta_import(int argc, char **argv)
{
	static const char use[] =
	    "dmfs meta import STORE FILE|- [--under DIR] [--no-check]";
	struct cli_store c = {0};
	struct meta_batch *b = NULL;
	const char *pos[2], *under = "";
	bool nocheck = false;
	const struct cli_flag flags[] = {
	    {"--under", NULL, NULL, &under},
	    {"--no-check", NULL, &nocheck, NULL},
	    {NULL, NULL, NULL, NULL},
	};
	char msg[1024], dir[4096];
	char *text = NULL;
	size_t len = 0;
	int npos, rc;

	if (dmfs_options_init(&c.o))
		return 1;
	rc = cli_parse(&c, argc, argv, flags, pos, 2, 2, &npos, use);
	snprintf(dir, sizeof(dir), "%s", clean_path(under));
	for (size_t n = strlen(dir); n && dir[n - 1] == '/'; n--)
		dir[n - 1] = '\0';
	if (!rc && !(text = read_input(pos[1], &len)))
		rc = 1;
	if (!rc)
		rc = open_all(&c, pos[0]);
	if (!rc && meta_batch_new(&b))
		rc = 1;
	if (!rc && (rc = metaq_parse_batch(c.meta, dir, text, len, b, msg,
					   sizeof(msg)))) {
		fprintf(stderr, "dmfs: nothing applied: %s: %s\n", pos[1], msg);
		rc = meta_status(rc);
	}
	if (!rc && !nocheck &&
	    (rc = metaq_check_paths(&c.env, dir, b, msg, sizeof(msg)))) {
		fprintf(stderr, "dmfs: nothing applied: %s\n", msg);
		rc = meta_status(rc);
	}
	if (!rc)
		rc = apply_and_flush(&c, b, false);
	free(text);
	meta_batch_free(b);
	cli_close(&c);
	return rc;
}

static int meta_export(int argc, char **argv)
{
	static const char use[] =
	    "dmfs meta export STORE [--format jsonl|csv] [--under DIR] "
	    "[--at SPEC] [--auto]";
	struct cli_store c = {0};
	const char *pos[1], *under = NULL, *at = NULL, *format = "jsonl";
	bool with_auto = false;
	const struct cli_flag flags[] = {
	    {"--format", NULL, NULL, &format},
	    {"--under", NULL, NULL, &under},
	    {"--at", NULL, NULL, &at},
	    {"--auto", NULL, &with_auto, NULL},
	    {NULL, NULL, NULL, NULL},
	};
	enum metaq_format fmt;
	char spec[4200], msg[1024];
	int npos, rc;

	if (dmfs_options_init(&c.o))
		return 1;
	rc = cli_parse(&c, argc, argv, flags, pos, 1, 1, &npos, use);
	if (!rc && (metaq_format_parse(format, &fmt) || fmt == METAQ_PATHS)) {
		fprintf(stderr, "dmfs: --format is jsonl or csv\n");
		rc = 2;
	}
	if (!rc)
		rc = open_all(&c, pos[0]);
	under = under ? clean_path(under) : "";
	snprintf(spec, sizeof(spec), "%s%s%s", at ? at : "live",
		 *under ? "/" : "", under);
	if (!rc && (rc = metaq_export(&c.env, c.meta, spec, NULL, fmt,
				      with_auto, stdout, msg, sizeof(msg)))) {
		fprintf(stderr, "dmfs: %s\n", msg);
		rc = meta_status(rc);
	}
	cli_close(&c);
	return rc;
}

struct log_ctx {
	bool json;
};

static void print_value(const struct mval *v)
{
	cJSON *j = v ? mval_to_json(v) : NULL;
	char *t = j ? cJSON_PrintUnformatted(j) : NULL;
	fputs(t ? t : "null", stdout);
	free(t);
	cJSON_Delete(j);
}

static int print_change(void *ctx, const struct meta_change *ch)
{
	struct log_ctx *l = ctx;
	time_t sec = (time_t)(ch->time_us / 1000000);
	struct tm tm;
	char when[40];

	gmtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	if (l->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON *o =
		    ch->old_v ? mval_to_json(ch->old_v) : cJSON_CreateNull();
		cJSON *n =
		    ch->new_v ? mval_to_json(ch->new_v) : cJSON_CreateNull();
		char *t = NULL;
		if (j && o && n) {
			cJSON_AddNumberToObject(j, "time_us",
						(double)ch->time_us);
			cJSON_AddStringToObject(j, "who", ch->who);
			cJSON_AddStringToObject(j, "writer", ch->writer);
			cJSON_AddStringToObject(j, "path", ch->path);
			cJSON_AddStringToObject(j, "field", ch->field);
			cJSON_AddItemToObject(j, "old", o);
			cJSON_AddItemToObject(j, "new", n);
			o = n = NULL;
			t = cJSON_PrintUnformatted(j);
		}
		cJSON_Delete(o);
		cJSON_Delete(n);
		cJSON_Delete(j);
		if (!t)
			return DMFS_ERR_NOMEM;
		puts(t);
		free(t);
		return 0;
	}
	printf("%s.%06dZ %s %s %s: ", when, (int)(ch->time_us % 1000000),
	       ch->who, ch->path, ch->field);
	print_value(ch->old_v);
	fputs(" -> ", stdout);
	print_value(ch->new_v);
	putchar('\n');
	return 0;
}

static int meta_log(int argc, char **argv)
{
	static const char use[] = "dmfs meta log STORE [PATH] [--json]";
	struct cli_store c = {0};
	struct log_ctx l = {0};
	const char *pos[2];
	const struct cli_flag flags[] = {
	    {"--json", NULL, &l.json, NULL},
	    {NULL, NULL, NULL, NULL},
	};
	char msg[1024];
	int npos, rc;

	if (dmfs_options_init(&c.o))
		return 1;
	rc = cli_parse(&c, argc, argv, flags, pos, 1, 2, &npos, use);
	if (!rc)
		rc = open_all(&c, pos[0]);
	if (!rc &&
	    (rc = meta_history(c.meta, npos > 1 ? clean_path(pos[1]) : NULL,
			       print_change, &l, msg, sizeof(msg)))) {
		fprintf(stderr, "dmfs: %s\n", msg);
		rc = 1;
	}
	cli_close(&c);
	return rc;
}

static int meta_compact_cmd(int argc, char **argv)
{
	static const char use[] = "dmfs meta compact STORE";
	struct cli_store c = {0};
	const char *pos[1];
	char msg[1024];
	int npos, rc;

	if (dmfs_options_init(&c.o))
		return 1;
	rc = cli_parse(&c, argc, argv, NULL, pos, 1, 1, &npos, use);
	if (!rc)
		rc = open_all(&c, pos[0]);
	if (!rc)
		rc = cli_flush_meta(&c);
	if (!rc && (rc = meta_compact(c.meta, msg, sizeof(msg)))) {
		fprintf(stderr, "dmfs: %s\n", msg);
		rc = 1;
	}
	cli_close(&c);
	return rc;
}

int cli_meta(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} sub[] = {
	    {"get", meta_get_cmd},	   {"import", meta_import},
	    {"export", meta_export},	   {"log", meta_log},
	    {"compact", meta_compact_cmd},
	};

	/* "dmfs meta STORE get ..." reads as well as "dmfs meta get STORE" */
	if (argc >= 2 && strstr(argv[0], "://")) {
		char *t = argv[0];
		argv[0] = argv[1];
		argv[1] = t;
	}
	if (argc >= 1 && !strcmp(argv[0], "set"))
		return meta_set(argc - 1, argv + 1, false);
	if (argc >= 1 && !strcmp(argv[0], "rm"))
		return meta_set(argc - 1, argv + 1, true);
	for (size_t i = 0; argc >= 1 && i < sizeof(sub) / sizeof(sub[0]); i++)
		if (!strcmp(argv[0], sub[i].name))
			return sub[i].run(argc - 1, argv + 1);
	fprintf(stderr, "usage: dmfs meta set|get|rm|import|export|log|"
			"compact STORE ...\n");
	return 2;
}

int cli_schema(int argc, char **argv)
{
	static const char use[] = "dmfs schema STORE [FILE|-]";
	struct cli_store c = {0};
	const char *pos[2];
	char msg[1024], *text = NULL;
	size_t len;
	int npos, rc;

	if (dmfs_options_init(&c.o))
		return 1;
	rc = cli_parse(&c, argc, argv, NULL, pos, 1, 2, &npos, use);
	if (!rc && npos == 2 && !(text = read_input(pos[1], &len)))
		rc = 1;
	if (!rc)
		rc = open_all(&c, pos[0]);
	if (!rc && text) {
		rc = meta_schema_set(c.meta, text, msg, sizeof(msg));
		if (rc) {
			fprintf(stderr, "dmfs: schema not changed: %s\n", msg);
			rc = meta_status(rc);
		}
	} else if (!rc) {
		char *json = NULL;
		rc = meta_schema_get(c.meta, &json);
		if (!rc)
			puts(json);
		else
			rc = 1;
		free(json);
	}
	free(text);
	cli_close(&c);
	return rc;
}
