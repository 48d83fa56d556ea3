/*
 * options.h - mount options: one table (options.c) is the single source of
 * names, defaults and help text; `dmfs --help` prints it and a test checks
 * that man/dmfs.1 documents every entry.
 */
#ifndef DMFS_OPTIONS_H
#define DMFS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct dmfs_options {
	/* store and S3 */
	char *endpoint;
	char *region;
	int path_style; /* -1 auto */
	char *profile;
	char *passwd_file;
	bool public_access;
	char *ca_bundle;
	bool no_verify_ssl;
	int retries;
	long retry_base_ms;
	long retry_max_ms;
	long connect_timeout_ms;
	long stall_timeout_s;
	int parallel;
	/* cache and reading */
	char *cache_dir;
	uint64_t cache_size;
	uint64_t block_size;
	uint64_t readahead_max;
	uint64_t small_file_max;
	uint64_t fetch_max;
	/* writing */
	uint64_t multipart_size;
	int parallel_uploads;
	bool stream_upload;
	uint64_t multipart_copy_size;
	bool object_attrs;
	double stat_ttl;
	int read_ahead_kb;
	/* mount */
	char *view;
	double refresh;
	bool ro;
	bool allow_other;
	bool debug;
	char *log_file;
	bool foreground;
	int max_threads;
	/* "-o" options passed on to libfuse, comma-separated; owned */
	char *fuse_opts;
};

/* Fill defaults (cache_dir from $XDG_CACHE_HOME / root / $HOME).
 * Returns 0 or DMFS_ERR_NOMEM. */
int dmfs_options_init(struct dmfs_options *o)
	__attribute__((warn_unused_result));

/*
 * Parse one "-o" argument ("a=b,c,d=e").  Our own options are stored; the
 * usual FUSE options are appended to o->fuse_opts; anything else is an
 * error.  Returns 0 or DMFS_ERR_INVAL with a message in msg.
 */
int dmfs_options_parse(struct dmfs_options *o, const char *arg, char *msg,
		       size_t msgsz) __attribute__((warn_unused_result));

/* Free owned strings.  Cannot fail. */
void dmfs_options_free(struct dmfs_options *o);

/* Print the option table for --help.  Cannot fail. */
void dmfs_options_print_help(FILE *f);

/* Names of every option (ours and the FUSE ones we pass on), NULL-ended;
 * for the documentation test (`dmfs --list-options`). */
const char *const *dmfs_options_names(void);

/* Parse "10G", "512K", "1048576" (1024-based).  0 or DMFS_ERR_INVAL. */
int dmfs_parse_size(const char *s, uint64_t *out);

#endif
