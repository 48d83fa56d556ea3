/*
 * cli_version.c - `dmfs snapshot`, `dmfs commit`, `dmfs log`, `dmfs diff`
 * and `dmfs rm-version`: snapshots and dataset versions without a mount.
 *
 * Exit status: 0 done, 1 failed, 2 usage, 3 the version exists, 4 no such
 * snapshot or version (see cli_exit_status).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli_common.h"
#include "dmfs/capture.h"
#include "dmfs/catalog.h"
#include "dmfs/cli.h"
#include "dmfs/metaq.h"
#include "dmfs/refs.h"
#include "dmfs/tree.h"

static int usage(const char *text)
{
	fprintf(stderr, "usage: %s\n", text);
	return 2;
}

static void print_result(const struct capture_result *r)
{
	char b[32], cb[32], hb[32];
	cli_human_bytes(r->bytes, b, sizeof(b));
	cli_human_bytes(r->copied_bytes, cb, sizeof(cb));
	cli_human_bytes(r->hashed_bytes, hb, sizeof(hb));
	printf("created %s (%s): %llu files, %s\n", r->ref,
	       r->zero_copy ? "zero-copy" : "copy",
	       (unsigned long long)r->files, b);
	if (!r->zero_copy)
		printf("  %llu new objects (%s copied server-side), %llu "
		       "already stored; %s read to hash\n",
		       (unsigned long long)r->copied_objects, cb,
		       (unsigned long long)r->reused_objects, hb);
	printf("  manifest %s\n", r->manifest);
}

/* Run a capture and report.  rq->progress is set here. */
static int run_capture(struct cli_store *c, struct capture_req *rq)
{
	struct capture_result res;
	char msg[1024];
	int rc;

	rq->progress = progress_new(rq->kind);
	rq->parallel = c->o.parallel;
	rc = capture_run(&c->env, rq, &res, msg, sizeof(msg));
	progress_end(rq->progress);
	if (rc) {
		fprintf(stderr, "dmfs: %s\n", msg);
		return cli_exit_status(rc);
	}
	print_result(&res);
	return 0;
}

/* A leading "YYYYMMDDHHMM[SS]" of an imported prefix, as UTC time; 0
 * when the name is not one. */
static int64_t prefix_time(const char *p)
{
	struct tm tm = {0};
	size_t n = strspn(p, "0123456789");
	if (n != 12 && n != 14)
		return 0;
	if (sscanf(p, "%4d%2d%2d%2d%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min) != 5)
		return 0;
	if (n == 14 && sscanf(p + 12, "%2d", &tm.tm_sec) != 1)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59)
		return 0;
	time_t t = timegm(&tm);
	return t < 0 ? 0 : (int64_t)t;
}

int cli_snapshot(int argc, char **argv)
{
	static const char use[] =
		"dmfs snapshot STORE [--id ID] [-m MSG] [--author WHO] "
		"[--import-prefix PREFIX/] [--copy|--zero-copy] [-o OPTS]";
	struct cli_store c = {0};
	struct capture_req rq = {.kind = "snapshot", .zero_copy = -1};
	const char *pos[1], *import = NULL;
	bool copy = false, zero = false;
	const struct cli_flag flags[] = {
		{"--id", NULL, NULL, &rq.name},
		{"--message", "-m", NULL, &rq.message},
		{"--author", NULL, NULL, &rq.author},
		{"--import-prefix", NULL, NULL, &import},
		{"--copy", NULL, &copy, NULL},
		{"--zero-copy", NULL, &zero, NULL},
		{NULL, NULL, NULL, NULL},
	};
	char from[1100] = "live";
	int npos, rc;

	if (dmfs_options_init(&c.o))
		return 1;
	rc = cli_parse(&c, argc, argv, flags, pos, 1, 1, &npos, use);
	if (!rc && copy && zero)
		rc = usage(use);
	if (copy || zero)
		rq.zero_copy = zero;
	if (!rc && import) {
		/* An old "upload under a timestamp" prefix: capture it as
		 * a snapshot of its own, dated by its name when it is one,
		 * content moved into the store once. */
		size_t n = strlen(import);
		while (n && import[n - 1] == '/')
			n--;
		if (!n || n > 1000) {
			fprintf(stderr, "dmfs: --import-prefix needs a prefix\n");
			rc = 2;
		}
		snprintf(from, sizeof(from), "live/%.*s", (int)n, import);
		if (!rq.name) {
			static char id[1024];
			snprintf(id, sizeof(id), "%.*s", (int)n, import);
			rq.name = id;
		}
		rq.created = prefix_time(import);
		if (rq.zero_copy < 0)
			rq.zero_copy = 0;
		if (!rq.message)
			rq.message = "imported from a timestamp prefix";
	}
	rq.from = from;
	if (!rc)
		rc = cli_open(&c, pos[0]);
	if (!rc)
		rc = cli_open_meta(&c);
	if (!rc)
		rc = run_capture(&c, &rq);
	cli_close(&c);
	return rc;
}

int cli_commit(int argc, char **argv)
{
	static const char use[] =
		"dmfs commit STORE DATASET VERSION --from PATH [-m MSG] "
		"[--author WHO] [--zero-copy] [--from-query EXPR|NAME] [-o OPTS]\n"
		"  PATH: live[/DIR], snapshots/ID[/DIR] or "
		"datasets/NAME/VERSION[/DIR]";
	struct cli_store c = {0};
	struct capture_req rq = {.kind = "dataset", .zero_copy = -1};
	const char *pos[3] = {0}, *query = NULL;
	bool zero = false;
	const struct cli_flag flags[] = {
		{"--from", NULL, NULL, &rq.from},
		{"--from-query", NULL, NULL, &query},
		{"--message", "-m", NULL, &rq.message},
		{"--author", NULL, NULL, &rq.author},
		{"--zero-copy", NULL, &zero, NULL},
		{NULL, NULL, NULL, NULL},
	};
	char from[1100];
	struct query *q = NULL;
	int npos, rc;

	if (dmfs_options_init(&c.o))
		return 1;
	rc = cli_parse(&c, argc, argv, flags, pos, 3, 3, &npos, use);
	if (!rc && !rq.from && query)
		rq.from = "live";
	if (!rc && !rq.from)
		rc = usage(use);
	if (zero)
		rq.zero_copy = 1;
	if (!rc) {
		/* "/mnt/x/live/a" is not a store path; "live/a/" is. */
		snprintf(from, sizeof(from), "%s", rq.from);
		for (size_t n = strlen(from); n > 1 && from[n - 1] == '/'; n--)
			from[n - 1] = '\0';
		rq.from = from;
		rq.name = pos[1];
		rq.version = pos[2];
		rc = cli_open(&c, pos[0]);
	}
	/* Versions freeze each file's metadata: the table must be there. */
	if (!rc)
		rc = cli_open_meta(&c);
	if (!rc && query) {
		char msg[2048];
		int qrc = metaq_filter_prepare(c.st, c.meta, rq.from, query, &q,
					       msg, sizeof(msg));
		if (qrc) {
			fprintf(stderr, "dmfs: --from-query: %s\n", msg);
			rc = qrc == DMFS_ERR_INVAL ? 2 : 1;
		}
		rq.filter = metaq_capture_filter;
		rq.filter_ctx = q;
	}
	if (!rc)
		rc = run_capture(&c, &rq);
	query_free(q);
	cli_close(&c);
	return rc;
}

int cli_log(int argc, char **argv)
{
	static const char use[] = "dmfs log STORE [DATASET] [--json] [-o OPTS]";
	struct cli_store c = {0};
	struct ref_info *refs = NULL;
	struct dmfs_err_detail d = {0};
	const char *pos[2] = {0}, *dataset;
	bool json = false;
	const struct cli_flag flags[] = {
		{"--json", NULL, &json, NULL},
		{NULL, NULL, NULL, NULL},
	};
	size_t n = 0;
	int npos, rc;

	if (dmfs_options_init(&c.o))
		return 1;
	rc = cli_parse(&c, argc, argv, flags, pos, 1, 2, &npos, use);
	dataset = pos[1];
	if (!rc)
		rc = cli_open(&c, pos[0]);
	if (!rc) {
		rc = refs_list(c.st, &refs, &n, &d);
		if (rc) {
			fprintf(stderr, "dmfs: reading refs: %s\n",
				dmfs_strerror(rc));
			rc = 1;
		}
	}
	if (!rc && dataset) {
		/* Keep only that dataset's versions. */
		char want[REF_NAME_MAX];
		size_t j = 0;
		snprintf(want, sizeof(want), "datasets/%s/", dataset);
		for (size_t i = 0; i < n; i++) {
			if (!strncmp(refs[i].name, want, strlen(want)))
				refs[j++] = refs[i];
			else
				ref_info_clear(&refs[i]);
		}
		n = j;
	}
	if (!rc) {
		char *text = json ? catalog_format_log_json(refs, n)
				  : catalog_format_log(refs, n);
		if (!text) {
			fprintf(stderr, "dmfs: out of memory\n");
			rc = 1;
		} else {
			fputs(text, stdout);
			free(text);
		}
	}
	refs_free(refs, n);
	cli_close(&c);
	return rc;
}

int cli_rm_version(int argc, char **argv)
{
	static const char use[] =
		"dmfs rm-version STORE (snapshots/ID | datasets/NAME/VERSION | "
		"DATASET VERSION) [-o OPTS]";
	struct cli_store c = {0};
	struct dmfs_err_detail d = {0};
	const char *pos[3] = {0};
	char name[REF_NAME_MAX], msg[512] = "";
	int npos, rc;

	if (dmfs_options_init(&c.o))
		return 1;
	rc = cli_parse(&c, argc, argv, NULL, pos, 2, 3, &npos, use);
	if (!rc && npos == 2)
		snprintf(name, sizeof(name), "%s", pos[1]);
	else if (!rc && npos == 3)
		snprintf(name, sizeof(name), "datasets/%s/%s", pos[1], pos[2]);
	if (!rc && refs_check_name(name, msg, sizeof(msg))) {
		fprintf(stderr, "dmfs: %s\n", msg);
		rc = 2;
	}
	if (!rc)
		rc = cli_open(&c, pos[0]);
	if (!rc) {
		rc = refs_delete(c.st, name, &d);
		if (rc) {
			fprintf(stderr, "dmfs: %s: %s\n", name,
				rc == DMFS_ERR_NOT_FOUND
					? "no such snapshot or version"
					: dmfs_strerror(rc));
			rc = cli_exit_status(rc);
		} else {
			printf("removed %s (its content stays until `dmfs gc`)\n",
			       name);
		}
	}
	cli_close(&c);
	return rc;
}
