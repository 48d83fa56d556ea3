/*
 * cli_common.h - what every store command (snapshot, commit, log, diff,
 * rm-version, gc, fsck) shares: "-o OPTS" parsing, opening the store and
 * the local index, and a few output helpers.
 */
#ifndef DMFS_CLI_COMMON_H
#define DMFS_CLI_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dmfs/capture.h"
#include "dmfs/mindex.h"
#include "dmfs/options.h"
#include "dmfs/store.h"

/* A command's open store.  Owned by the struct (cli_close frees). */
struct cli_store {
	struct dmfs_options o;
	struct dmfs_store *st;
	struct mindex *mx;
	struct meta *meta;	/* after cli_open_meta, else NULL */
	char *uri;
	struct capture_env env;	/* borrows the fields above */
};

/*
 * Take the "-o OPTS" / "-oOPTS" / "--debug" arguments out of argv (shifting
 * the rest down, *argc updated) into o.  Returns 0, or 2 after printing
 * the reason (a usage error).  o must have been initialised.
 */
int cli_take_options(int *argc, char **argv, struct dmfs_options *o);

/* Open STORE with c->o (already parsed), and the index in cache_dir.
 * Prints the reason and returns 1 on failure. */
int cli_open(struct cli_store *c, const char *uri);
void cli_close(struct cli_store *c);
/* Open the store's metadata table (after cli_open) and merge what other
 * writers logged; c->env.meta is set.  Prints the reason and returns 1 on
 * failure. */
int cli_open_meta(struct cli_store *c);
/* Send the changes applied here to the bucket.  Prints the reason and
 * returns 1 on failure (they stay queued locally). */
int cli_flush_meta(struct cli_store *c);

/* "1.5 GiB" into out.  Cannot fail. */
void cli_human_bytes(uint64_t v, char *out, size_t outsz);

/* The value of a "--name VALUE" / "--name=VALUE" argument at argv[*i]:
 * NULL when argv[*i] is not that flag; advances *i past a separate
 * value.  *missing is set when the value is absent. */
const char *cli_flag_value(int argc, char **argv, int *i, const char *name,
			   bool *missing);

/* One flag a command accepts: a switch (value == NULL: *on is set) or a
 * flag with a value (*value receives it). */
struct cli_flag {
	const char *name;	/* "--json" */
	const char *alias;	/* "-m", or NULL */
	bool *on;
	const char **value;
};

/*
 * The whole command line of a store command: "-o OPTS" into c->o, the
 * flags (NULL-name-terminated table), and between minpos and maxpos
 * positional arguments into pos[] (*npos set).  Returns 0, or 2 after
 * printing "usage: USE" (a usage error).  c->o must be initialised.
 */
int cli_parse(struct cli_store *c, int argc, char **argv,
	      const struct cli_flag *flags, const char **pos, int minpos,
	      int maxpos, int *npos, const char *use);

/* Exit status for a dmfs error: 1 for most, 3 for EXISTS, 4 NOT_FOUND. */
int cli_exit_status(int rc);

#endif
