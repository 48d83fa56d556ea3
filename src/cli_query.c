/*
 * cli_query.c - `dmfs query`: run a metadata query (man dmfs-query(7))
 * over the live bucket or a version without a mount, save it for every
 * mount to show under queries/, or list and delete saved queries.
 *
 * Exit status: 0 done (also when nothing matched), 1 failed, 2 usage or
 * an invalid query (the message points at the place), 4 no such saved
 * query, snapshot or version.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "dmfs/cli.h"
#include "dmfs/metaq.h"

static int print_name(void *ctx, const char *name)
{
	(void)ctx;
	puts(name);
	return 0;
}

static int count_hit(void *ctx, const struct metaq_hit *h)
{
	(void)h;
	(*(unsigned long long *)ctx)++;
	return 0;
}

static int query_status(int rc)
{
	return rc == DMFS_ERR_INVAL ? 2 : cli_exit_status(rc);
}

int cli_query(int argc, char **argv)
{
	static const char use[] =
	    "dmfs query STORE [EXPR] [--format paths|jsonl|csv] "
	    "[--at SPEC] [--under DIR] [--auto] [--count] [--save NAME] "
	    "[--saved NAME] [--list] [--delete NAME]";
	struct cli_store c = {0};
	const char *pos[2], *format = "paths", *at = "live", *under = "",
			    *save = NULL, *saved = NULL, *del = NULL;
	bool count = false, list = false, with_auto = false;
	const struct cli_flag flags[] = {
	    {"--format", NULL, NULL, &format},	{"--at", NULL, NULL, &at},
	    {"--under", NULL, NULL, &under},	{"--save", NULL, NULL, &save},
	    {"--saved", NULL, NULL, &saved},	{"--delete", NULL, NULL, &del},
	    {"--count", NULL, &count, NULL},	{"--list", NULL, &list, NULL},
	    {"--auto", NULL, &with_auto, NULL}, {NULL, NULL, NULL, NULL},
	};
	enum metaq_format fmt;
	struct query *q = NULL;
	char *expr = NULL, spec[4200], msg[2048];
	int npos, rc;

	if (dmfs_options_init(&c.o))
		return 1;
	rc = cli_parse(&c, argc, argv, flags, pos, 1, 2, &npos, use);
	if (!rc && metaq_format_parse(format, &fmt)) {
		fprintf(stderr, "dmfs: --format is paths, jsonl or csv\n");
		rc = 2;
	}
	/* Exactly one of: an expression, --saved, --list, --delete. */
	if (!rc && (npos == 2) + !!saved + list + !!del != 1) {
		fprintf(stderr, "usage: %s\n", use);
		rc = 2;
	}
	if (!rc)
		rc = cli_open(&c, pos[0]);
	if (!rc && list) {
		rc = metaq_list(c.st, print_name, NULL);
		if (rc)
			fprintf(stderr, "dmfs: listing saved queries: %s\n",
				dmfs_strerror(rc));
		rc = cli_exit_status(rc);
		goto out;
	}
	if (!rc && del) {
		rc = metaq_delete(c.st, del);
		if (rc)
			fprintf(stderr, "dmfs: %s: %s\n", del,
				dmfs_strerror(rc));
		rc = cli_exit_status(rc);
		goto out;
	}
	if (!rc && saved && (rc = metaq_load(c.st, saved, &expr))) {
		fprintf(stderr, "dmfs: saved query %s: %s\n", saved,
			rc == DMFS_ERR_NOT_FOUND ? "no such query"
						 : dmfs_strerror(rc));
		rc = cli_exit_status(rc);
	}
	if (!rc && !expr && !(expr = strdup(pos[1])))
		rc = 1;
	if (!rc && (rc = query_parse(expr, &q, msg, sizeof(msg)))) {
		fprintf(stderr, "dmfs: %s\n", msg);
		rc = query_status(rc);
	}
	if (!rc)
		rc = cli_open_meta(&c);
	if (!rc && save) {
		/* Check the types before sharing it with every mount. */
		rc = metaq_check(c.meta, "live", q, msg, sizeof(msg));
		if (!rc)
			rc = metaq_save(c.st, save, expr, msg, sizeof(msg));
		if (rc) {
			fprintf(stderr, "dmfs: %s\n", msg);
			rc = query_status(rc);
		} else {
			printf("saved query %s: %s\n", save, query_text(q));
		}
		goto out;
	}
	while (*under == '/')
		under++;
	snprintf(spec, sizeof(spec), "%s%s%s", at, *under ? "/" : "", under);
	if (!rc) {
		unsigned long long n = 0;
		int qrc =
		    count ? metaq_run(&c.env, c.meta, spec, q, count_hit, &n,
				      msg, sizeof(msg))
			  : metaq_export(&c.env, c.meta, spec, q, fmt,
					 with_auto, stdout, msg, sizeof(msg));
		if (!qrc && count)
			printf("%llu\n", n);
		if (qrc) {
			fprintf(stderr, "dmfs: %s\n", msg);
			rc = query_status(qrc);
		}
	}
out:
	query_free(q);
	free(expr);
	cli_close(&c);
	return rc;
}
