/*
 * fs_ctl.c - the control directory .dmfs/ at the root of every mount.
 *
 * Hidden from readdir of the root (so find, cp -r and training code never
 * see it) but open by name.  Files:
 *
 *   status      JSON counters since mount
 *   log         the snapshot and version log, newest first (as dmfs log)
 *   ctl         read: help; write: commands, one a line
 *   last-error  why the last failed control-file write failed, or why
 *               the last name refused in live/ was refused (EILSEQ)
 *   schema      the metadata schema (JSON); write a new one to replace it
 *               (applied at close, validated against the table first)
 *
 * Read content is generated when the file is opened (direct_io: no page
 * cache, so two opens never share stale bytes).
 *
 * Commands.  Each complete line written to ctl is executed before the
 * write(2) returns, and an unfinished last line when the file is flushed
 * (close(2)), so `echo refresh > .dmfs/ctl` has taken effect when the
 * shell moves on, and a failing command fails the write or the close with
 * its errno (EINVAL for a bad command, EEXIST for a version that exists,
 * ...) while its reason goes to .dmfs/last-error and the log.  A pending
 * line is at most CTL_LINE_MAX bytes.  Words are split as a shell would:
 * whitespace, '...', "..." and backslash escapes.
 */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dmfs/fs.h"
#include "dmfs/keyname.h"
#include "dmfs/log.h"
#include "dmfs/metaq.h"
#include "dmfs/stats.h"

#define CTL_LINE_MAX (64 * 1024) /* one command line */
#define CTL_ARGS_MAX 32		 /* words of one command */

static char *ctl_help(struct dmfs_fs *fs);
static char *ctl_log(struct dmfs_fs *fs);
static char *ctl_last_error(struct dmfs_fs *fs);

/* writable: 0 read-only, CTL_LINES commands a line, CTL_DOC one document
 * applied at close */
enum { CTL_RO = 0, CTL_LINES = 1, CTL_DOC = 2 };

struct ctl_file {
	const char *name;
	char *(*content)(struct dmfs_fs *fs); /* caller frees; NULL: ENOMEM */
	int writable;
};

static const struct ctl_file ctl_files[] = {
    {"status", fs_ctl_status_json, 0},
    {"log", ctl_log, 0},
    {"ctl", ctl_help, 1},
    {"last-error", ctl_last_error, 0},
    {"schema", fs_meta_schema_text, CTL_DOC},
    {NULL, NULL, 0},
};

static const struct ctl_file *ctl_find(const char *name)
{
	for (int i = 0; ctl_files[i].name; i++)
		if (!strcmp(ctl_files[i].name, name))
			return &ctl_files[i];
	return NULL;
}

static cJSON *add_obj(cJSON *parent, const char *name)
{
	cJSON *o = cJSON_CreateObject();
	if (o && !cJSON_AddItemToObject(parent, name, o)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

char *fs_ctl_status_json(struct dmfs_fs *fs)
{
	struct bcache_stats bs;
	struct timespec ts;
	cJSON *root = cJSON_CreateObject();
	cJSON *cache = root ? add_obj(root, "cache") : NULL;
	cJSON *s3 = root ? add_obj(root, "s3") : NULL;
	char *out = NULL;

	if (!cache || !s3)
		goto out;
	bcache_get_stats(fs->bc, &bs);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	cJSON_AddStringToObject(root, "version", PACKAGE_VERSION);
	cJSON_AddNumberToObject(root, "pid", (double)getpid());
	cJSON_AddStringToObject(root, "store", fs->store_uri);
	cJSON_AddNumberToObject(root, "uptime_s",
				(double)ts.tv_sec - fs->started_at);
	cJSON_AddStringToObject(cache, "dir", fs->opts->cache_dir);
	cJSON_AddNumberToObject(cache, "bytes", (double)bs.bytes);
	cJSON_AddNumberToObject(cache, "limit", (double)bs.limit);
	cJSON_AddNumberToObject(cache, "block_size",
				(double)fs->opts->block_size);
	cJSON_AddNumberToObject(cache, "hits", (double)bs.hits);
	cJSON_AddNumberToObject(cache, "misses", (double)bs.misses);
	cJSON_AddNumberToObject(cache, "evictions", (double)bs.evictions);
	cJSON_AddNumberToObject(cache, "corrupt", (double)bs.corrupt);
	cJSON_AddNumberToObject(cache, "puts", (double)bs.puts);
	cJSON_AddNumberToObject(cache, "put_errors", (double)bs.put_errors);
	cJSON_AddNumberToObject(s3, "requests",
				(double)DMFS_STAT_GET(requests));
	cJSON_AddNumberToObject(s3, "bytes_fetched",
				(double)DMFS_STAT_GET(bytes_fetched));
	cJSON_AddNumberToObject(s3, "retries", (double)DMFS_STAT_GET(retries));
	cJSON_AddNumberToObject(s3, "errors", (double)DMFS_STAT_GET(errors));
	cJSON_AddNumberToObject(s3, "not_found",
				(double)DMFS_STAT_GET(not_found));
	struct stage_stats ss;
	cJSON *up = cJSON_AddObjectToObject(root, "uploads");
	stage_get_stats(fs->sg, &ss);
	cJSON_AddNumberToObject(root, "pending_uploads", (double)ss.pending);
	/* Keys live/ cannot show (keyname.c), each logged once. */
	cJSON_AddNumberToObject(root, "hidden_keys",
				(double)keyname_hidden_count());
	if (up) {
		cJSON_AddNumberToObject(up, "pending", (double)ss.pending);
		cJSON_AddNumberToObject(up, "bytes_pending",
					(double)ss.bytes_pending);
		cJSON_AddNumberToObject(up, "done", (double)ss.done);
		cJSON_AddNumberToObject(up, "failed", (double)ss.failed);
		cJSON_AddNumberToObject(up, "streamed", (double)ss.streamed);
	}
	cJSON *md = cJSON_AddObjectToObject(root, "meta");
	if (md && fs->meta) {
		cJSON_AddNumberToObject(md, "pending",
					(double)meta_pending(fs->meta));
		cJSON_AddStringToObject(md, "writer",
					meta_writer_id(fs->meta));
	}
	out = cJSON_Print(root);
out:
	cJSON_Delete(root);
	if (out) { /* end with a newline, as text files do */
		size_t n = strlen(out);
		char *nl = realloc(out, n + 2);
		if (nl) {
			nl[n] = '\n';
			nl[n + 1] = '\0';
			out = nl;
		}
	}
	return out;
}

static char *ctl_help(struct dmfs_fs *fs)
{
	return strdup(
	    "dmfs control file: write commands to it, one a line, e.g.\n"
	    "  echo refresh > .dmfs/ctl\n"
	    "\n"
	    "  refresh\n"
	    "      read the snapshots and versions from the store now,\n"
	    "      forget cached listings of live/, send this mount's\n"
	    "      metadata changes and merge other writers'\n"
	    "  snapshot [--id ID] [-m MSG] [--copy|--zero-copy]\n"
	    "      capture live/ as snapshots/ID (ID: the UTC time)\n"
	    "  commit DATASET VERSION FROM [-m MSG]\n"
	    "      capture FROM (live[/DIR], snapshots/ID[/DIR] or\n"
	    "      datasets/NAME/VERSION[/DIR]) as datasets/DATASET/VERSION\n"
	    "  commit DATASET VERSION [FROM] --from-query EXPR|NAME\n"
	    "      only the files matching a query (man dmfs-query), with\n"
	    "      their metadata; FROM defaults to live\n"
	    "\n"
	    "Words are split as a shell does (quotes, backslashes).  A\n"
	    "failing command fails the write or the close; the reason is\n"
	    "in .dmfs/last-error.\n");
}

static char *ctl_log(struct dmfs_fs *fs) { return catalog_log_text(fs->cat); }

static char *ctl_last_error(struct dmfs_fs *fs)
{
	pthread_mutex_lock(&fs->err_lock);
	char *s = strdup(fs->last_error);
	pthread_mutex_unlock(&fs->err_lock);
	return s;
}

/* level < 0: not logged (the caller's module logged it already). */
static void set_last(struct dmfs_fs *fs, int level, const char *fmt,
		     va_list ap)
{
	char text[sizeof(fs->last_error) - 1];

	vsnprintf(text, sizeof(text), fmt, ap);
	if (level >= 0)
		dmfs_log(level, "%s", text);
	pthread_mutex_lock(&fs->err_lock);
	snprintf(fs->last_error, sizeof(fs->last_error), "%s\n", text);
	pthread_mutex_unlock(&fs->err_lock);
}

void fs_set_last_error(struct dmfs_fs *fs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_last(fs, DMFS_LOG_ERROR, fmt, ap);
	va_end(ap);
}

void fs_set_last_refusal(struct dmfs_fs *fs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_last(fs, DMFS_LOG_WARN, fmt, ap);
	va_end(ap);
}

void fs_set_last_error_quiet(struct dmfs_fs *fs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_last(fs, -1, fmt, ap);
	va_end(ap);
}

int fs_ctl_getattr(struct dmfs_fs *fs, const char *name, struct stat *st)
{
	const struct ctl_file *f = ctl_find(name);

	if (!*name) {
		fs_fill_dir_stat(fs, st, 0555);
		return 0;
	}
	if (!f)
		return -ENOENT;
	char *s = f->content(fs);
	if (!s)
		return -ENOMEM;
	fs_fill_file_stat(fs, st, f->writable ? 0644 : 0444, strlen(s),
			  time(NULL));
	free(s);
	return 0;
}

int fs_ctl_readdir(struct dmfs_fs *fs, const char *name, void *buf,
		   fuse_fill_dir_t filler)
{
	if (*name)
		return ctl_find(name) ? -ENOTDIR : -ENOENT;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	for (int i = 0; ctl_files[i].name; i++)
		filler(buf, ctl_files[i].name, NULL, 0, 0);
	return 0;
}

int fs_ctl_open(struct dmfs_fs *fs, const char *name, struct fuse_file_info *fi,
		struct fs_handle *h)
{
	const struct ctl_file *f = ctl_find(name);
	int acc = fi->flags & O_ACCMODE;

	if (!*name)
		return -EISDIR;
	if (!f)
		return -ENOENT;
	if (acc != O_RDONLY && !f->writable)
		return -EACCES;
	h->ctl = f->name;
	if (acc != O_WRONLY) {
		h->data = f->content(fs);
		if (!h->data)
			return -ENOMEM;
		h->len = strlen(h->data);
	}
	/* Content is generated per open: bypass the page cache so a second
	 * open never sees the first one's bytes, and every write reaches
	 * us. */
	fi->direct_io = 1;
	return 0;
}

int fs_ctl_truncate(struct dmfs_fs *fs, const char *name)
{
	const struct ctl_file *f = ctl_find(name);

	if (!f)
		return -ENOENT;
	return f->writable ? 0 : -EACCES;
}

/* --- commands --- */

/*
 * Split line (in place) into words as a shell would: blanks separate;
 * '...' is literal; in "...", a backslash escapes \ " $ `; elsewhere it
 * escapes any character.  0 with argv/argc set, or DMFS_ERR_INVAL.
 */
static int split_words(char *line, char **argv, int *argc, char *msg,
		       size_t msgsz)
{
	char *in = line, *out = line;
	char quote = 0;
	int n = 0, in_word = 0;

	for (;; in++) {
		char c = *in;
		if (!c)
			break;
		if (quote == '\'') {
			if (c == '\'')
				quote = 0;
			else
				*out++ = c;
			continue;
		}
		if (quote == '"') {
			if (c == '"')
				quote = 0;
			else if (c == '\\' && in[1] && strchr("\\\"$`", in[1]))
				*out++ = *++in;
			else
				*out++ = c;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r') {
			if (in_word) {
				*out++ = '\0';
				in_word = 0;
			}
			continue;
		}
		if (!in_word) {
			if (n == CTL_ARGS_MAX) {
				snprintf(msg, msgsz, "more than %d words",
					 CTL_ARGS_MAX);
				return DMFS_ERR_INVAL;
			}
			argv[n++] = out;
			in_word = 1;
		}
		if (c == '\'' || c == '"')
			quote = c;
		else if (c == '\\' && in[1])
			*out++ = *++in;
		else
			*out++ = c;
	}
	if (quote) {
		snprintf(msg, msgsz, "unterminated %c quote", quote);
		return DMFS_ERR_INVAL;
	}
	*out = '\0';
	*argc = n;
	return 0;
}

/* "NAME@HOST" of the process that wrote the command. */
static void caller_author(char *out, size_t outsz)
{
	struct passwd pw, *res = NULL;
	char buf[1024], host[256] = "localhost";
	uid_t uid = fuse_get_context()->uid;

	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		snprintf(out, outsz, "%s@%s", pw.pw_name, host);
	else
		snprintf(out, outsz, "uid%u@%s", (unsigned)uid, host);
}

/* The value of option argv[*i] (-m MSG, --id=ID, ...), or NULL when
 * argv[*i] is not opt; *bad set when its value is missing. */
static const char *opt_value(int argc, char **argv, int *i, const char *opt,
			     int *bad)
{
	size_t n = strlen(opt);

	if (strncmp(argv[*i], opt, n))
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n])
		return NULL;
	if (*i + 1 >= argc) {
		*bad = 1;
		return NULL;
	}
	return argv[++*i];
}

static int cmd_capture(struct dmfs_fs *fs, int argc, char **argv, char *msg,
		       size_t msgsz)
{
	struct capture_req rq = {.zero_copy = -1,
				 .parallel = fs->opts->parallel};
	struct capture_env env = fs_capture_env(fs);
	struct capture_result res;
	const char *pos[3] = {NULL, NULL, NULL}, *v, *query = NULL;
	struct query *q = NULL;
	char author[512], refresh_msg[256];
	int npos = 0, bad = 0, snap = !strcmp(argv[0], "snapshot");
	int rc;

	rq.kind = snap ? "snapshot" : "dataset";
	for (int i = 1; i < argc && !bad; i++) {
		if ((v = opt_value(argc, argv, &i, "-m", &bad)) ||
		    (v = opt_value(argc, argv, &i, "--message", &bad)))
			rq.message = v;
		else if (snap && (v = opt_value(argc, argv, &i, "--id", &bad)))
			rq.name = v;
		else if (!snap &&
			 (v = opt_value(argc, argv, &i, "--from-query", &bad)))
			query = v;
		else if (!snap &&
			 (v = opt_value(argc, argv, &i, "--from", &bad)))
			rq.from = v;
		else if (snap && !strcmp(argv[i], "--copy"))
			rq.zero_copy = 0;
		else if (snap && !strcmp(argv[i], "--zero-copy"))
			rq.zero_copy = 1;
		else if (!bad && argv[i][0] != '-' && npos < 3)
			pos[npos++] = argv[i];
		else if (!bad)
			bad = 2;
	}
	if (snap && !bad && !npos) {
		rq.from = "live";
	} else if (!snap && !bad &&
		   (npos == 3 || (npos == 2 && (rq.from || query)))) {
		rq.name = pos[0];
		rq.version = pos[1];
		if (npos == 3)
			rq.from = pos[2];
		if (!rq.from)
			rq.from = "live";
	} else {
		snprintf(msg, msgsz, "usage: %s",
			 snap ? "snapshot [--id ID] [-m MSG] "
				"[--copy|--zero-copy]"
			      : "commit DATASET VERSION FROM [-m MSG] "
				"[--from-query EXPR|NAME]");
		return DMFS_ERR_INVAL;
	}
	if (query) {
		rc = metaq_filter_prepare(fs->store, fs->meta, rq.from, query,
					  &q, msg, msgsz);
		if (rc)
			return rc;
		rq.filter = metaq_capture_filter;
		rq.filter_ctx = q;
	}
	caller_author(author, sizeof(author));
	rq.author = author;
	rc = capture_run(&env, &rq, &res, msg, msgsz);
	query_free(q);
	if (rc)
		return rc;
	dmfs_log(DMFS_LOG_INFO,
		 "ctl: created %s (%s): %llu files, %llu bytes, %llu new "
		 "objects",
		 res.ref, res.zero_copy ? "zero-copy" : "copy",
		 (unsigned long long)res.files, (unsigned long long)res.bytes,
		 (unsigned long long)res.copied_objects);
	/* Show it at once; it exists even if this fails. */
	if (catalog_refresh(fs->cat, refresh_msg, sizeof(refresh_msg)))
		dmfs_log(DMFS_LOG_WARN, "ctl: after %s: %s", res.ref,
			 refresh_msg);
	else
		fs_version_invalidate(fs);
	return 0;
}

/* Execute one command line (modified in place).  0, or DMFS_ERR_* with
 * the reason in msg. */
static int ctl_exec(struct dmfs_fs *fs, char *line, char *msg, size_t msgsz)
{
	char *argv[CTL_ARGS_MAX];
	int argc = 0, rc;

	rc = split_words(line, argv, &argc, msg, msgsz);
	if (rc || !argc || argv[0][0] == '#')
		return rc; /* blank lines and comments do nothing */
	dmfs_log(DMFS_LOG_INFO, "ctl: %s", argv[0]);
	if (!strcmp(argv[0], "refresh")) {
		if (argc > 1) {
			snprintf(msg, msgsz, "usage: refresh");
			return DMFS_ERR_INVAL;
		}
		dircache_invalidate_all(fs->dc);
		/* labels set here go out, others' come in */
		rc = fs_meta_sync(fs, true, msg, msgsz);
		if (!rc)
			rc = catalog_refresh(fs->cat, msg, msgsz);
		if (!rc)
			fs_version_invalidate(fs);
		return rc;
	}
	if (!strcmp(argv[0], "snapshot") || !strcmp(argv[0], "commit"))
		return cmd_capture(fs, argc, argv, msg, msgsz);
	snprintf(msg, msgsz, "unknown command '%.64s' (cat .dmfs/ctl for help)",
		 argv[0]);
	return DMFS_ERR_INVAL;
}

/* Run a line; on failure record why.  0 or -errno. */
static int run_line(struct dmfs_fs *fs, const char *line, size_t len)
{
	char *copy = strndup(line, len), msg[768] = "", shown[128];
	int rc;

	if (!copy)
		return -ENOMEM;
	/* the line as written, for the error message (the copy is split) */
	snprintf(shown, sizeof(shown), "%s", copy);
	rc = ctl_exec(fs, copy, msg, sizeof(msg));
	free(copy);
	if (!rc)
		return 0;
	fs_set_last_error(fs, "ctl: %s: %s", shown,
			  msg[0] ? msg : dmfs_strerror(rc));
	return -dmfs_err_to_errno(rc);
}

int fs_ctl_write(struct dmfs_fs *fs, struct fs_handle *h, const char *buf,
		 size_t size)
{
	const char *p = buf, *end = buf + size;
	int rc = 0;

	if (!h->ctl || !ctl_find(h->ctl) || !ctl_find(h->ctl)->writable)
		return -EBADF;
	if (ctl_find(h->ctl)->writable == CTL_DOC)
		return fs_doc_append(h, buf, size, (off_t)h->wlen, CTL_LINE_MAX);
	while (!rc && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t take = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (h->wlen + take > CTL_LINE_MAX) {
			h->wlen = 0;
			fs_set_last_error(fs,
					  "ctl: a line longer than %d bytes",
					  CTL_LINE_MAX);
			return -EINVAL;
		}
		if (take) {
			char *nb = realloc(h->wbuf, h->wlen + take);
			if (!nb)
				return -ENOMEM;
			h->wbuf = nb;
			memcpy(h->wbuf + h->wlen, p, take);
			h->wlen += take;
		}
		p += take;
		if (nl) {
			p++;
			rc = run_line(fs, h->wbuf ? h->wbuf : "", h->wlen);
			h->wlen = 0;
		}
	}
	return rc ? rc : (int)size;
}

int fs_ctl_flush(struct dmfs_fs *fs, struct fs_handle *h)
{
	char msg[1024];
	int rc;

	if (h->ctl && ctl_find(h->ctl) &&
	    ctl_find(h->ctl)->writable == CTL_DOC) {
		if (!h->written)
			return 0;
		h->written = false;
		rc = fs_meta_schema_apply(fs, h->wbuf, msg, sizeof(msg));
		h->wlen = 0;
		if (rc) {
			fs_set_last_error(fs, "schema not changed: %s", msg);
			return -dmfs_err_to_errno(rc);
		}
		return 0;
	}
	if (!h->wlen)
		return 0;
	rc = run_line(fs, h->wbuf, h->wlen);
	h->wlen = 0;
	return rc;
}
