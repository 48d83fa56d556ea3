/*
 * options.c - the mount option table and its parser.
 *
 * Each entry names the option, its type, where it lands in struct
 * dmfs_options, its default (as text, also what --help shows) and a line of
 * help.  Defaults are applied by parsing the default text, so the help can
 * never disagree with the behaviour.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dmfs/err.h"
#include "dmfs/options.h"

enum opt_type { OPT_STR, OPT_BOOL, OPT_SIZE, OPT_INT, OPT_LONG, OPT_DOUBLE,
		OPT_TRISTATE };

struct opt_def {
	const char *name;
	enum opt_type type;
	size_t offset;
	const char *def;  /* default as text, NULL for none */
	const char *arg;  /* metavariable for --help */
	const char *help;
};

#define O(f) offsetof(struct dmfs_options, f)

static const struct opt_def opt_table[] = {
	{"endpoint", OPT_STR, O(endpoint), NULL, "URL",
	 "S3 endpoint, e.g. http://127.0.0.1:8000 (default: "
	 "$AWS_ENDPOINT_URL, else AWS for the region)"},
	{"region", OPT_STR, O(region), NULL, "NAME",
	 "region for signing (default: $AWS_REGION, $AWS_DEFAULT_REGION, "
	 "us-east-1)"},
	{"path_style", OPT_TRISTATE, O(path_style), NULL, NULL,
	 "path-style URLs (http://host/bucket/key); default: automatic "
	 "(path style for IP addresses and localhost, virtual-hosted "
	 "otherwise); path_style=0 forces virtual-hosted"},
	{"profile", OPT_STR, O(profile), NULL, "NAME",
	 "profile of ~/.aws/credentials to use (default: $AWS_PROFILE, "
	 "default)"},
	{"passwd_file", OPT_STR, O(passwd_file), NULL, "FILE",
	 "s3fs-style ACCESS:SECRET file; refused if group or others can "
	 "access it"},
	{"public", OPT_BOOL, O(public_access), "0", NULL,
	 "anonymous access: requests are not signed"},
	{"ca_bundle", OPT_STR, O(ca_bundle), NULL, "FILE",
	 "CA certificates for TLS (default: $AWS_CA_BUNDLE, else the system "
	 "store)"},
	{"no_verify_ssl", OPT_BOOL, O(no_verify_ssl), "0", NULL,
	 "do not verify TLS certificates (insecure; off by default)"},
	{"retries", OPT_INT, O(retries), "5", "N",
	 "retries of a transient S3 failure (5xx, SlowDown, timeout, reset)"},
	{"retry_base_ms", OPT_LONG, O(retry_base_ms), "100", "MS",
	 "first retry backoff; doubles per retry, with full jitter"},
	{"retry_max_ms", OPT_LONG, O(retry_max_ms), "5000", "MS",
	 "largest single retry backoff"},
	{"connect_timeout_ms", OPT_LONG, O(connect_timeout_ms), "3000", "MS",
	 "TCP/TLS connect timeout per attempt"},
	{"stall_timeout", OPT_LONG, O(stall_timeout_s), "30", "SECONDS",
	 "abort a transfer that receives nothing for this long"},
	{"parallel", OPT_INT, O(parallel), "16", "N",
	 "parallel ranged GETs (fetch threads)"},
	{"cache_dir", OPT_STR, O(cache_dir), NULL, "DIR",
	 "block cache directory, shared by all dmfs processes (default: "
	 "$XDG_CACHE_HOME/dmfs, /var/cache/dmfs for root, ~/.cache/dmfs)"},
	{"cache_size", OPT_SIZE, O(cache_size), "10G", "SIZE",
	 "block cache limit; least recently used blocks are evicted"},
	{"block_size", OPT_SIZE, O(block_size), "1M", "SIZE",
	 "cache block size (4K..64M, a multiple of 4K)"},
	{"readahead_max", OPT_SIZE, O(readahead_max), "64M", "SIZE",
	 "largest read-ahead window on sequential reads"},
	{"small_file_max", OPT_SIZE, O(small_file_max), "8M", "SIZE",
	 "objects up to this size are fetched whole on first read"},
	{"fetch_max", OPT_SIZE, O(fetch_max), "8M", "SIZE",
	 "largest single ranged GET"},
	{"multipart_size", OPT_SIZE, O(multipart_size), "8M", "SIZE",
	 "files written through live/ larger than this are uploaded in "
	 "parts of this size (S3 multipart; 5M..5G)"},
	{"parallel_uploads", OPT_INT, O(parallel_uploads), "4", "N",
	 "parts of one multipart upload (or multipart copy) sent at once"},
	{"stream_upload", OPT_BOOL, O(stream_upload), "1", NULL,
	 "a file written in order from its start is uploaded in parts "
	 "while it is written, so close() waits only for the last parts "
	 "(its sha256 and attributes are set by a copy of the object onto "
	 "itself after the completion: metadata only on RGW, a server-side "
	 "copy on AWS); 0: upload when the file is closed"},
	{"multipart_copy_size", OPT_SIZE, O(multipart_copy_size), "5G", "SIZE",
	 "objects larger than this are copied server-side (rename, chmod, "
	 "snapshot) in parts of this size (S3 UploadPartCopy; 5M..5G, 5G "
	 "being S3's limit for one copy)"},
	{"object_attrs", OPT_BOOL, O(object_attrs), "1", NULL,
	 "show modes, owners, times and symlinks stored in object metadata "
	 "(s3fs's x-amz-meta-mode, -uid, -gid, -mtime): one HEAD per object "
	 "and stat_ttl, in parallel per directory listing; object_attrs=0 "
	 "takes attributes from listings alone (faster on huge "
	 "directories; what this mount stores is still written)"},
	{"stat_ttl", OPT_DOUBLE, O(stat_ttl), "60", "SECONDS",
	 "how long listings and attributes are trusted before asking S3 "
	 "again"},
	{"read_ahead_kb", OPT_INT, O(read_ahead_kb), "16384", "KB",
	 "kernel read-ahead for this mount (when root; 0 keeps the kernel's)"},
	{"view", OPT_STR, O(view), NULL, "PATH",
	 "mount only this subtree: view=live for an s3fs-like mount, "
	 "view=datasets/NAME/VERSION for one pinned version"},
	{"refresh", OPT_DOUBLE, O(refresh), "30", "SECONDS",
	 "how long the list of snapshots and versions is trusted before "
	 "the store is asked again (0: only on `refresh` in .dmfs/ctl)"},
	{"ro", OPT_BOOL, O(ro), "0", NULL, "mount read-only"},
	{"allow_other", OPT_BOOL, O(allow_other), "0", NULL,
	 "let other users access the mount (private by default)"},
	{"debug", OPT_BOOL, O(debug), "0", NULL,
	 "log every operation at debug level (see log_file)"},
	{"log_file", OPT_STR, O(log_file), NULL, "FILE",
	 "append log lines to FILE (default: stderr with -f, else syslog)"},
	{"max_threads", OPT_INT, O(max_threads), "64", "N",
	 "most FUSE worker threads"},
};

/* FUSE options passed on to libfuse as they are. */
static const char *const fuse_passthrough[] = {
	"allow_root", "default_permissions", "auto_unmount", "fsname",
	"subtype", "uid", "gid", "umask", "max_read",
	"noatime", "atime", "nodev", "dev", "nosuid", "suid", "noexec",
	"exec", "rw", "sync", "async", "dirsync", NULL,
};

int dmfs_parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return DMFS_ERR_INVAL;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'B' || *end == 'b')
		end += (*end == 'i' && (end[1] == 'B' || end[1] == 'b')) ? 2 : 1;
	if (*end || (shift && v > (ULLONG_MAX >> shift)))
		return DMFS_ERR_INVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static int set_value(struct dmfs_options *o, const struct opt_def *d,
		     const char *val, char *msg, size_t msgsz)
{
	void *field = (char *)o + d->offset;
	char *end;

	switch (d->type) {
	case OPT_STR: {
		if (!val || !*val)
			goto need_value;
		char *copy = strdup(val);
		if (!copy)
			return DMFS_ERR_NOMEM;
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	}
	case OPT_BOOL:
	case OPT_TRISTATE: {
		int v;
		if (!val || !strcmp(val, "1") || !strcmp(val, "yes") ||
		    !strcmp(val, "true"))
			v = 1;
		else if (!strcmp(val, "0") || !strcmp(val, "no") ||
			 !strcmp(val, "false"))
			v = 0;
		else
			goto bad;
		if (d->type == OPT_BOOL)
			*(bool *)field = v;
		else
			*(int *)field = v;
		return 0;
	}
	case OPT_SIZE:
		if (!val || dmfs_parse_size(val, (uint64_t *)field))
			goto bad;
		return 0;
	case OPT_INT:
	case OPT_LONG: {
		if (!val)
			goto need_value;
		errno = 0;
		long v = strtol(val, &end, 10);
		if (errno || *end || end == val || v < 0 ||
		    (d->type == OPT_INT && v > INT_MAX))
			goto bad;
		if (d->type == OPT_INT)
			*(int *)field = (int)v;
		else
			*(long *)field = v;
		return 0;
	}
	case OPT_DOUBLE: {
		if (!val)
			goto need_value;
		double v = strtod(val, &end);
		if (*end || end == val || v < 0)
			goto bad;
		*(double *)field = v;
		return 0;
	}
	}
bad:
	snprintf(msg, msgsz, "option %s: bad value '%s'", d->name,
		 val ? val : "");
	return DMFS_ERR_INVAL;
need_value:
	snprintf(msg, msgsz, "option %s needs a value (%s=%s)", d->name,
		 d->name, d->arg ? d->arg : "VALUE");
	return DMFS_ERR_INVAL;
}

static const struct opt_def *find_opt(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(opt_table) / sizeof(opt_table[0]); i++)
		if (strlen(opt_table[i].name) == len &&
		    !strncmp(opt_table[i].name, name, len))
			return &opt_table[i];
	return NULL;
}

static int is_passthrough(const char *name, size_t len)
{
	for (int i = 0; fuse_passthrough[i]; i++)
		if (strlen(fuse_passthrough[i]) == len &&
		    !strncmp(fuse_passthrough[i], name, len))
			return 1;
	return 0;
}

static int append_fuse_opt(struct dmfs_options *o, const char *opt,
			   size_t len)
{
	size_t old = o->fuse_opts ? strlen(o->fuse_opts) : 0;
	char *n = realloc(o->fuse_opts, old + len + 2);
	if (!n)
		return DMFS_ERR_NOMEM;
	if (old)
		n[old++] = ',';
	memcpy(n + old, opt, len);
	n[old + len] = '\0';
	o->fuse_opts = n;
	return 0;
}

int dmfs_options_parse(struct dmfs_options *o, const char *arg, char *msg,
		       size_t msgsz)
{
	const char *p = arg;
	int rc = 0;

	while (!rc && *p) {
		const char *end = strchrnul(p, ',');
		size_t len = (size_t)(end - p);
		const char *eq = memchr(p, '=', len);
		size_t nlen = eq ? (size_t)(eq - p) : len;
		const struct opt_def *d = find_opt(p, nlen);

		if (len == 0) {
			p = *end ? end + 1 : end;
			continue;
		}
		if (d) {
			char *val = eq ? strndup(eq + 1, len - nlen - 1) : NULL;
			if (eq && !val)
				return DMFS_ERR_NOMEM;
			rc = set_value(o, d, val, msg, msgsz);
			free(val);
		} else if (is_passthrough(p, nlen)) {
			rc = append_fuse_opt(o, p, len);
		} else {
			snprintf(msg, msgsz,
				 "unknown option '%.*s' (see dmfs --help)",
				 (int)nlen, p);
			rc = DMFS_ERR_INVAL;
		}
		p = *end ? end + 1 : end;
	}
	return rc;
}

static char *default_cache_dir(void)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char buf[4096];

	if (xdg && *xdg)
		snprintf(buf, sizeof(buf), "%s/dmfs", xdg);
	else if (geteuid() == 0)
		snprintf(buf, sizeof(buf), "/var/cache/dmfs");
	else if (home && *home)
		snprintf(buf, sizeof(buf), "%s/.cache/dmfs", home);
	else
		snprintf(buf, sizeof(buf), "/tmp/dmfs-cache-%u",
			 (unsigned)geteuid());
	return strdup(buf);
}

int dmfs_options_init(struct dmfs_options *o)
{
	char msg[256];
	memset(o, 0, sizeof(*o));
	o->path_style = -1;
	for (size_t i = 0; i < sizeof(opt_table) / sizeof(opt_table[0]); i++)
		if (opt_table[i].def &&
		    set_value(o, &opt_table[i], opt_table[i].def, msg,
			      sizeof(msg)))
			return DMFS_ERR_INVAL; /* a bug in the table */
	o->cache_dir = default_cache_dir();
	return o->cache_dir ? 0 : DMFS_ERR_NOMEM;
}

void dmfs_options_free(struct dmfs_options *o)
{
	for (size_t i = 0; i < sizeof(opt_table) / sizeof(opt_table[0]); i++)
		if (opt_table[i].type == OPT_STR) {
			char **f = (char **)((char *)o + opt_table[i].offset);
			free(*f);
			*f = NULL;
		}
	free(o->fuse_opts);
	o->fuse_opts = NULL;
}

void dmfs_options_print_help(FILE *f)
{
	for (size_t i = 0; i < sizeof(opt_table) / sizeof(opt_table[0]); i++) {
		const struct opt_def *d = &opt_table[i];
		char head[64];
		snprintf(head, sizeof(head), "%s%s%s", d->name,
			 d->arg ? "=" : "", d->arg ? d->arg : "");
		fprintf(f, "    -o %-24s %s", head, d->help);
		if (d->def && d->type != OPT_BOOL)
			fprintf(f, " [%s]", d->def);
		fputc('\n', f);
	}
	fprintf(f, "\n  Passed on to FUSE:");
	for (int i = 0; fuse_passthrough[i]; i++)
		fprintf(f, "%s%s", i % 8 ? " " : "\n    ", fuse_passthrough[i]);
	fputc('\n', f);
}

const char *const *dmfs_options_names(void)
{
	enum { N = sizeof(opt_table) / sizeof(opt_table[0]) };
	static const char *names[N + sizeof(fuse_passthrough) /
					   sizeof(fuse_passthrough[0])];
	size_t k = 0;
	for (size_t i = 0; i < N; i++)
		names[k++] = opt_table[i].name;
	for (int i = 0; fuse_passthrough[i]; i++)
		names[k++] = fuse_passthrough[i];
	names[k] = NULL;
	return names;
}
