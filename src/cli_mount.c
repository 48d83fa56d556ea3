/*
 * cli_mount.c - `dmfs mount STORE MOUNTPOINT [-f] [-o OPTS]`.
 *
 * Order matters here:
 *   1. parse options and check the store answers (errors go to the
 *      terminal, before anything is mounted);
 *   2. unless -f, fork: the parent waits on a pipe and exits only once the
 *      child reports the mount ready (or why it failed), so a script can
 *      use the mount on its next line;
 *   3. the child opens the cache and starts threads (never before the fork:
 *      LMDB environments and threads do not survive fork), mounts, reports,
 *      and runs the FUSE loop until unmounted.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "dmfs/cli.h"
#include "dmfs/fs.h"
#include "dmfs/log.h"
#include "dmfs/store_open.h"

/* The names hidden at the root of live/: dmfs's own bookkeeping. */
static const char *const hidden_root_names[] = {".dmfs", NULL};

struct mount_args {
	const char *store;
	const char *mountpoint;
};

static int parse_args(int argc, char **argv, struct dmfs_options *o,
		      struct mount_args *ma)
{
	char msg[512];
	int npos = 0;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-f") || !strcmp(a, "--foreground")) {
			o->foreground = true;
		} else if (!strcmp(a, "-d") || !strcmp(a, "--debug")) {
			o->foreground = true;
			o->debug = true;
		} else if (!strcmp(a, "-o") || !strncmp(a, "-o", 2)) {
			const char *v = a[2] ? a + 2 : (i + 1 < argc ? argv[++i]
								     : NULL);
			if (!v) {
				fprintf(stderr, "dmfs: -o needs options\n");
				return 2;
			}
			int rc = dmfs_options_parse(o, v, msg, sizeof(msg));
			if (rc) {
				fprintf(stderr, "dmfs: %s\n",
					rc == DMFS_ERR_NOMEM ? "out of memory"
							     : msg);
				return 2;
			}
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			cli_usage(stdout);
			exit(0);
		} else if (a[0] == '-') {
			fprintf(stderr, "dmfs: unknown flag %s\n", a);
			return 2;
		} else if (npos == 0) {
			ma->store = a;
			npos++;
		} else if (npos == 1) {
			ma->mountpoint = a;
			npos++;
		} else {
			fprintf(stderr, "dmfs: unexpected argument %s\n", a);
			return 2;
		}
	}
	if (npos != 2) {
		fprintf(stderr,
			"usage: dmfs mount STORE MOUNTPOINT [-f] [-o OPTS]\n");
		return 2;
	}
	return 0;
}

/* Whether view names a subtree: live/, snapshots/ or datasets/ or
 * below, with no empty, "." or ".." component. */
static int view_ok(const char *view)
{
	const char *p = view;
	size_t n;

	while (*p == '/')
		p++;
	n = strcspn(p, "/");
	if (!((n == 4 && !strncmp(p, "live", 4)) ||
	      (n == 9 && !strncmp(p, "snapshots", 9)) ||
	      (n == 8 && !strncmp(p, "datasets", 8))))
		return 0;
	/* the store's bookkeeping is not part of live/ */
	if (!strncmp(p, "live/.dmfs", 10) && (!p[10] || p[10] == '/'))
		return 0;
	while (*p) {
		n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += n;
		if (*p == '/' && p[1] == '/')
			return 0;
		if (*p)
			p++;
	}
	return 1;
}

static int check_options(const struct dmfs_options *o, char *msg,
			 size_t msgsz)
{
	if (o->block_size < 4096 || o->block_size > (64u << 20) ||
	    o->block_size % 4096) {
		snprintf(msg, msgsz,
			 "block_size must be 4K..64M and a multiple of 4K");
		return DMFS_ERR_CONFIG;
	}
	if (o->multipart_size < (5u << 20) ||
	    o->multipart_size > (5ull << 30)) {
		snprintf(msg, msgsz, "multipart_size must be 5M..5G (the S3 "
			 "limits of a part)");
		return DMFS_ERR_CONFIG;
	}
	if (o->parallel_uploads < 1 || o->parallel_uploads > 64) {
		snprintf(msg, msgsz, "parallel_uploads must be 1..64");
		return DMFS_ERR_CONFIG;
	}
	if (o->cache_size < o->block_size * 4) {
		snprintf(msg, msgsz, "cache_size must hold at least 4 blocks");
		return DMFS_ERR_CONFIG;
	}
	if (o->parallel < 1 || o->parallel > 256) {
		snprintf(msg, msgsz, "parallel must be 1..256");
		return DMFS_ERR_CONFIG;
	}
	if (o->view && !view_ok(o->view)) {
		snprintf(msg, msgsz,
			 "view=%s: a view is live[/DIR], snapshots[/ID[/DIR]] "
			 "or datasets[/NAME[/VERSION[/DIR]]]",
			 o->view);
		return DMFS_ERR_CONFIG;
	}
	if (o->refresh > 0 && o->refresh < 1) {
		snprintf(msg, msgsz, "refresh must be 0 or at least 1 second");
		return DMFS_ERR_CONFIG;
	}
	return 0;
}

/* The mounted subtree of -o view=, without '/' at either end ("" without
 * a view).  Caller frees with free(). */
static char *view_path(const char *view)
{
	const char *s = view ? view : "";
	char *v;
	size_t n;

	while (*s == '/')
		s++;
	v = strdup(s);
	n = v ? strlen(v) : 0;
	while (n && v[n - 1] == '/')
		v[--n] = '\0';
	return v;
}

/*
 * Raise the kernel read-ahead of this mount's backing device (only root
 * may).  Found through /proc/self/mountinfo, not stat(), which would call
 * into ourselves.  Must run after the kernel has processed FUSE_INIT: the
 * INIT reply lowers read-ahead to what the kernel proposed at mount time
 * (128 KiB), so fs.c calls this on the first operation.
 */
void fs_tune_read_ahead(const char *mountpoint, int kb)
{
	char line[8192], path[128];
	unsigned maj, min;
	FILE *f;

	/* mountpoint is absolute already: realpath() here would stat the
	 * mount and call into this very filesystem. */
	if (kb <= 0 || geteuid() != 0)
		return;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return;
	int found = 0;
	while (fgets(line, sizeof(line), f)) {
		char mp[PATH_MAX];
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mp) == 3 &&
		    !strcmp(mp, mountpoint))
			found = 1; /* the last match is the newest mount */
		if (found == 1) {
			found = 2;
			snprintf(path, sizeof(path),
				 "/sys/class/bdi/%u:%u/read_ahead_kb", maj, min);
		}
	}
	fclose(f);
	if (!found)
		return;
	FILE *ra = fopen(path, "we");
	if (!ra) {
		dmfs_log(DMFS_LOG_DEBUG, "cannot open %s: %s", path,
			 strerror(errno));
		return;
	}
	fprintf(ra, "%d\n", kb);
	if (fclose(ra) != 0)
		dmfs_log(DMFS_LOG_DEBUG, "cannot set %s", path);
}

/* Tell the waiting parent how the mount went: "" for success. */
static void report(int fd, const char *msg)
{
	if (fd < 0)
		return;
	size_t n = strlen(msg);
	ssize_t w = write(fd, msg, n ? n : 1);
	(void)w;
	close(fd);
}

/* The parent side: wait for the child's report.  Returns the exit code. */
static int wait_for_child(int fd)
{
	char buf[1024];
	ssize_t n, total = 0;
	while ((n = read(fd, buf + total, sizeof(buf) - 1 - (size_t)total)) > 0)
		total += n;
	close(fd);
	buf[total > 0 ? total : 0] = '\0';
	if (total == 1 && buf[0] == '\0')
		return 0;
	if (total <= 0) {
		fprintf(stderr, "dmfs: mount failed (the mount process died)\n");
		return 1;
	}
	fprintf(stderr, "dmfs: %s\n", buf);
	return 1;
}

static int build_fuse_args(const struct dmfs_options *o, const char *store,
			   struct fuse_args *args)
{
	char opts[8192];
	int n = snprintf(opts, sizeof(opts), "fsname=dmfs#%s,subtype=dmfs%s%s%s%s",
			 store, o->allow_other ? ",allow_other" : "",
			 o->ro ? ",ro" : "", o->fuse_opts ? "," : "",
			 o->fuse_opts ? o->fuse_opts : "");
	if (n < 0 || (size_t)n >= sizeof(opts))
		return DMFS_ERR_TOO_BIG;
	if (fuse_opt_add_arg(args, "dmfs") || fuse_opt_add_arg(args, "-o") ||
	    fuse_opt_add_arg(args, opts))
		return DMFS_ERR_NOMEM;
	return 0;
}

/* Everything after the fork (or in the foreground). */
static int run_mount(struct dmfs_options *o, const struct mount_args *ma,
		     int report_fd)
{
	struct dmfs_fs fs = {0};
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse *fuse = NULL;
	struct fuse_loop_config *lc = NULL;
	char msg[512] = "", *view = NULL;
	size_t viewsz = 0;
	int rc, mounted = 0;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	fs.opts = o;
	pthread_mutex_init(&fs.handles_lock, NULL);
	pthread_mutex_init(&fs.err_lock, NULL);
	fs.uid = getuid();
	fs.gid = getgid();
	fs.started_at = (double)ts.tv_sec;
	fs.mounted_at = time(NULL);
	view = view_path(o->view);
	/* room for a `latest` in the view to become the name it means */
	viewsz = view ? strlen(view) + REF_NAME_MAX : 0;
	fs.view = view ? calloc(1, viewsz) : NULL;
	fs.store_uri = strdup(ma->store);
	fs.mountpoint = realpath(ma->mountpoint, NULL); /* before mounting */
	if (!fs.view || !fs.store_uri) {
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	memcpy(fs.view, view, strlen(view) + 1);
	/* A trailing '/' names the same store: the hash memo is keyed by
	 * this, as in the store commands (cli_common.c). */
	for (size_t n = strlen(fs.store_uri);
	     n > 8 && fs.store_uri[n - 1] == '/'; n--)
		fs.store_uri[n - 1] = '\0';
	rc = dmfs_store_open(ma->store, o, 0, &fs.store, msg, sizeof(msg));
	if (rc)
		goto out;
	struct bcache_opts bo = {.dir = o->cache_dir, .limit = o->cache_size};
	rc = bcache_open(&bo, &fs.bc);
	if (rc) {
		snprintf(msg, sizeof(msg), "cache %s: %s", o->cache_dir,
			 dmfs_strerror(rc));
		goto out;
	}
	rc = dircache_new(fs.store, o->stat_ttl, hidden_root_names, &fs.dc);
	if (rc)
		goto out;
	struct reader_opts ro = {
		.block_size = (size_t)o->block_size,
		.parallel = o->parallel,
		.readahead_max = o->readahead_max,
		.small_file_max = o->small_file_max,
		.fetch_max = o->fetch_max,
	};
	rc = reader_new(fs.store, fs.bc, &ro, &fs.rd);
	if (rc)
		goto out;
	rc = mindex_open(o->cache_dir, &fs.mx);
	if (rc) {
		snprintf(msg, sizeof(msg), "index in %s: %s", o->cache_dir,
			 dmfs_strerror(rc));
		goto out;
	}
	{
		/* Files being written are staged under the cache directory;
		 * what a dead mount of this store left is uploaded now. */
		size_t n = strlen(o->cache_dir) + 16;
		char *sdir = malloc(n);
		int recovered = 0;
		if (!sdir) {
			rc = DMFS_ERR_NOMEM;
			goto out;
		}
		snprintf(sdir, n, "%s/staging", o->cache_dir);
		struct stage_opts so = {
			.dir = sdir,
			.store_uri = fs.store_uri,
			.multipart_size = o->multipart_size,
			.parallel_uploads = o->parallel_uploads,
			.stream_upload = o->stream_upload,
			.memo = fs.mx,
		};
		rc = stage_new(fs.store, &so, &fs.sg);
		free(sdir);
		if (rc) {
			snprintf(msg, sizeof(msg), "staging in %s: %s",
				 o->cache_dir, dmfs_strerror(rc));
			goto out;
		}
		if (!o->ro && stage_recover(fs.sg, &recovered))
			dmfs_log(DMFS_LOG_WARN, "some staged files could not be "
				 "recovered (see above)");
		if (recovered)
			dmfs_log(DMFS_LOG_INFO, "recovered %d staged file%s",
				 recovered, recovered == 1 ? "" : "s");
	}
	rc = catalog_new(fs.store, fs.mx, o->cache_dir, o->refresh, &fs.cat);
	if (rc)
		goto out;
	/* The metadata table: what other writers logged is merged before
	 * the mount is ready, so the first getfattr already sees it. */
	rc = meta_open(o->cache_dir, fs.store, fs.store_uri, &fs.meta, msg,
		       sizeof(msg));
	if (!rc && meta_refresh(fs.meta, NULL, msg, sizeof(msg)))
		dmfs_log(DMFS_LOG_WARN, "metadata: %s (will retry)", msg);
	if (!rc)
		rc = fs_query_init(&fs);
	if (!rc)
		rc = fs_meta_start(&fs);
	if (rc)
		goto out;
	msg[0] = '\0';
	if (!strncmp(fs.view, "snapshots", 9) ||
	    !strncmp(fs.view, "datasets", 8)) {
		/* Fail now rather than mount an empty directory. */
		rc = fs_version_resolve_view(&fs, fs.view, viewsz, msg,
					     sizeof(msg));
		if (rc)
			goto out;
	}
	rc = build_fuse_args(o, ma->store, &args);
	if (rc)
		goto out;
	fuse = fuse_new(&args, &dmfs_fuse_ops, sizeof(dmfs_fuse_ops), &fs);
	if (!fuse) {
		snprintf(msg, sizeof(msg), "invalid FUSE options");
		rc = DMFS_ERR_CONFIG;
		goto out;
	}
	if (fuse_mount(fuse, ma->mountpoint) != 0) {
		snprintf(msg, sizeof(msg), "cannot mount on %s (see above)",
			 ma->mountpoint);
		rc = DMFS_ERR_IO;
		goto out;
	}
	mounted = 1;
	if (fuse_set_signal_handlers(fuse_get_session(fuse)) != 0) {
		rc = DMFS_ERR_IO;
		goto out;
	}
	dmfs_log(DMFS_LOG_INFO, "mounted %s on %s", ma->store, ma->mountpoint);
	if (!o->foreground) {
		/* stderr goes to the log file when there is one, so what
		 * libraries (and sanitizers) print there is kept. */
		int nul = open("/dev/null", O_RDWR);
		int err = o->log_file ? open(o->log_file,
					     O_WRONLY | O_APPEND | O_CREAT, 0600)
				      : -1;
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(err >= 0 ? err : nul, 2);
			if (nul > 2)
				close(nul);
		}
		if (err > 2)
			close(err);
		dmfs_log_use_syslog(1);
		if (chdir("/") != 0)
			dmfs_log(DMFS_LOG_WARN, "chdir /: %s", strerror(errno));
	}
	report(report_fd, "");
	report_fd = -1;
	lc = fuse_loop_cfg_create();
	if (!lc) {
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	fuse_loop_cfg_set_max_threads(lc, (unsigned)o->max_threads);
	fuse_loop_cfg_set_idle_threads(lc, 16);
	if (fuse_loop_mt(fuse, lc) != 0)
		rc = DMFS_ERR_IO;
	dmfs_log(DMFS_LOG_INFO, "unmounted %s", ma->mountpoint);
out:
	if (rc && report_fd >= 0) {
		if (!msg[0])
			snprintf(msg, sizeof(msg), "%s", dmfs_strerror(rc));
		if (o->foreground)
			fprintf(stderr, "dmfs: %s\n", msg);
		report(report_fd, msg);
	} else if (rc && o->foreground && msg[0]) {
		fprintf(stderr, "dmfs: %s\n", msg);
	}
	if (fuse) {
		fuse_remove_signal_handlers(fuse_get_session(fuse));
		if (mounted)
			fuse_unmount(fuse);
		fuse_destroy(fuse);
	}
	if (lc)
		fuse_loop_cfg_destroy(lc);
	fuse_opt_free_args(&args);
	fs_close_all(&fs);
	if (fs.meta) {
		fs_meta_stop(&fs);
		meta_close(fs.meta);
	}
	fs_query_free(&fs);
	stage_free(fs.sg);
	reader_free(fs.rd);
	catalog_free(fs.cat);
	mindex_close(fs.mx);
	pthread_mutex_destroy(&fs.handles_lock);
	pthread_mutex_destroy(&fs.err_lock);
	dircache_free(fs.dc);
	bcache_close(fs.bc);
	if (fs.store)
		fs.store->ops->destroy(fs.store);
	free(view);
	free(fs.view);
	free(fs.store_uri);
	free(fs.mountpoint);
	return rc ? 1 : 0;
}

int cli_mount(int argc, char **argv)
{
	struct dmfs_options o;
	struct mount_args ma = {0};
	struct dmfs_store *probe = NULL;
	char msg[1024];
	struct stat st;
	int rc, pipefd[2];

	if (dmfs_options_init(&o)) {
		fprintf(stderr, "dmfs: out of memory\n");
		return 1;
	}
	rc = parse_args(argc, argv, &o, &ma);
	if (rc)
		goto out;
	dmfs_log_set_level(o.debug ? DMFS_LOG_DEBUG : DMFS_LOG_WARN);
	if (o.log_file && dmfs_log_to_file(o.log_file) != 0) {
		fprintf(stderr, "dmfs: log_file %s: %s\n", o.log_file,
			strerror(errno));
		rc = 1;
		goto out;
	}
	if (check_options(&o, msg, sizeof(msg))) {
		fprintf(stderr, "dmfs: %s\n", msg);
		rc = 2;
		goto out;
	}
	if (stat(ma.mountpoint, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "dmfs: mount point %s: %s\n", ma.mountpoint,
			errno && stat(ma.mountpoint, &st) != 0
				? strerror(errno)
				: "not a directory");
		rc = 1;
		goto out;
	}
	/* Check the store before mounting anything. */
	rc = dmfs_store_open(ma.store, &o, 1, &probe, msg, sizeof(msg));
	if (!rc)
		rc = dmfs_store_probe(probe, ma.store, msg, sizeof(msg));
	if (probe)
		probe->ops->destroy(probe);
	if (rc == DMFS_ERR_DENIED) {
		/* Mount anyway: the credentials may only lack ListBucket,
		 * and every operation will answer EACCES with this reason
		 * in the log. */
		fprintf(stderr, "dmfs: warning: %s\n", msg);
		if (o.log_file)
			dmfs_log(DMFS_LOG_ERROR, "%s", msg);
		rc = 0;
	} else if (rc) {
		fprintf(stderr, "dmfs: %s\n", msg);
		if (o.log_file)
			dmfs_log(DMFS_LOG_ERROR, "%s", msg);
		rc = 1;
		goto out;
	}
	if (o.foreground) {
		rc = run_mount(&o, &ma, -1);
		goto out;
	}
	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		perror("dmfs: pipe");
		rc = 1;
		goto out;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("dmfs: fork");
		rc = 1;
		goto out;
	}
	if (pid > 0) {
		close(pipefd[1]);
		rc = wait_for_child(pipefd[0]);
		goto out;
	}
	close(pipefd[0]);
	setsid();
	signal(SIGHUP, SIG_IGN);
	rc = run_mount(&o, &ma, pipefd[1]);
out:
	dmfs_options_free(&o);
	return rc;
}
