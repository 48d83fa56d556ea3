/*
 * main.c - the dmfs program: pick the subcommand.
 */
#include "config.h"

#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "dmfs/cli.h"
#include "dmfs/options.h"

void cli_usage(FILE *f)
{
	fprintf(f,
		"usage: dmfs mount STORE MOUNTPOINT [-f] [-o OPT[,OPT...]]\n"
		"       dmfs umount MOUNTPOINT\n"
		"       dmfs snapshot STORE [--id ID] [-m MSG] "
		"[--import-prefix PREFIX/]\n"
		"       dmfs commit STORE DATASET VERSION --from PATH [-m MSG]\n"
		"       dmfs log STORE [DATASET] [--json]\n"
		"       dmfs diff STORE A B [--json]\n"
		"       dmfs rm-version STORE DATASET VERSION | snapshots/ID\n"
		"       dmfs gc STORE [--dry-run] [--grace SECONDS]\n"
		"       dmfs fsck STORE [--deep]\n"
		"       dmfs meta set STORE PATH FIELD=VALUE... | rm STORE PATH "
		"FIELD...\n"
		"       dmfs meta get STORE PATH [FIELD]\n"
		"       dmfs meta import STORE FILE|- [--under DIR]\n"
		"       dmfs meta export STORE [--format jsonl|csv] "
		"[--under DIR] [--at SPEC]\n"
		"       dmfs meta log STORE [PATH] [--json] | compact STORE\n"
		"       dmfs schema STORE [FILE|-]\n"
		"       dmfs query STORE EXPR [--format paths|jsonl|csv] "
		"[--at SPEC] [--under DIR]\n"
		"                  [--count] [--save NAME] | --saved NAME | "
		"--list | --delete NAME\n"
		"       dmfs --help | --version\n"
		"\n"
		"STORE is s3://BUCKET[/PREFIX] or file:///DIR (a local "
		"directory laid out\nas a bucket).  The mount shows live/ (the "
		"store as it is now), snapshots/ and\ndatasets/ (read-only "
		"versions) and, open by name only, .dmfs/ (status, log,\nctl, "
		"last-error).\n"
		"\n"
		"  -f            stay in the foreground, log to stderr\n"
		"  -d            debug: log every operation (implies -f)\n"
		"  -o OPTIONS    comma-separated mount options:\n");
	dmfs_options_print_help(f);
	fprintf(f,
		"\nEnvironment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
		"AWS_SESSION_TOKEN,\nAWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE, "
		"AWS_ENDPOINT_URL, AWS_REGION,\nAWS_DEFAULT_REGION, "
		"AWS_CA_BUNDLE, XDG_CACHE_HOME.  See dmfs(1).\n");
}

/* The commands that work on a store without a mount. */
static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} store_cmds[] = {
	{"snapshot", cli_snapshot}, {"commit", cli_commit},
	{"log", cli_log},	    {"diff", cli_diff},
	{"rm-version", cli_rm_version}, {"gc", cli_gc},
	{"fsck", cli_fsck},	    {"meta", cli_meta},
	{"schema", cli_schema},	    {"query", cli_query},
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		cli_usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") ||
	    !strcmp(cmd, "help")) {
		cli_usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		printf("dmfs %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "--list-options")) {
		for (const char *const *n = dmfs_options_names(); *n; n++)
			puts(*n);
		return 0;
	}
	if (!strcmp(cmd, "mount")) {
		/* Blocks of 1-8 MiB are allocated and freed all the time: keep
		 * them in the heap instead of a fresh mmap (and a page fault
		 * per 4 KiB) for each one. */
		mallopt(M_MMAP_THRESHOLD, 64 << 20);
		mallopt(M_TRIM_THRESHOLD, 512 << 20);
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			fprintf(stderr, "dmfs: cannot initialise libcurl\n");
			return 1;
		}
		int rc = cli_mount(argc - 2, argv + 2);
		curl_global_cleanup();
		return rc;
	}
	if (!strcmp(cmd, "umount") || !strcmp(cmd, "unmount"))
		return cli_umount(argc - 2, argv + 2);
	for (size_t i = 0; i < sizeof(store_cmds) / sizeof(store_cmds[0]);
	     i++) {
		if (strcmp(cmd, store_cmds[i].name) != 0)
			continue;
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			fprintf(stderr, "dmfs: cannot initialise libcurl\n");
			return 1;
		}
		int rc = store_cmds[i].run(argc - 2, argv + 2);
		curl_global_cleanup();
		return rc;
	}
	fprintf(stderr, "dmfs: unknown command '%s'\n\n", cmd);
	cli_usage(stderr);
	return 2;
}
