/*
 * fs_ctl.c - the control directory .dmfs/ at the root of every mount.
 *
 * Hidden from readdir of the root (so find, cp -r and training code never
 * see it) but open by name.  This file: status, a JSON document of
 * counters since mount, generated when the file is opened.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dmfs/fs.h"
#include "dmfs/stats.h"

static const char *const ctl_files[] = {"status", NULL};

static int ctl_known(const char *name)
{
	for (int i = 0; ctl_files[i]; i++)
		if (!strcmp(ctl_files[i], name))
			return 1;
	return 0;
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
	cJSON_AddNumberToObject(root, "pending_uploads", 0);
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

int fs_ctl_getattr(struct dmfs_fs *fs, const char *name, struct stat *st)
{
	if (!*name) {
		fs_fill_dir_stat(fs, st, 0555);
		return 0;
	}
	if (!ctl_known(name))
		return -ENOENT;
	char *s = fs_ctl_status_json(fs);
	if (!s)
		return -ENOMEM;
	fs_fill_file_stat(fs, st, 0444, strlen(s), time(NULL));
	free(s);
	return 0;
}

int fs_ctl_readdir(struct dmfs_fs *fs, const char *name, void *buf,
		   fuse_fill_dir_t filler)
{
	if (*name)
		return -ENOTDIR;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	for (int i = 0; ctl_files[i]; i++)
		filler(buf, ctl_files[i], NULL, 0, 0);
	return 0;
}

int fs_ctl_open(struct dmfs_fs *fs, const char *name,
		struct fuse_file_info *fi, struct fs_handle *h)
{
	if (!*name)
		return -EISDIR;
	if (!ctl_known(name))
		return -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	h->data = fs_ctl_status_json(fs);
	if (!h->data)
		return -ENOMEM;
	h->len = strlen(h->data);
	/* Content is generated per open: bypass the page cache so a second
	 * open never sees the first one's numbers. */
	fi->direct_io = 1;
	return 0;
}
