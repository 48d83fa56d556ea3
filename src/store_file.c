/*
 * store_file.c - the store interface over a local directory.
 *
 * Keys map to paths below the root; directories play the part of S3's
 * common prefixes, and an empty directory shows as a "dir/" marker, as an
 * s3fs-made directory would.  ETags are derived from (inode, size, mtime in
 * nanoseconds): they change whenever the file is replaced or rewritten,
 * which is all the block cache needs from them.
 *
 * Object metadata lives in user xattrs of the file (of the directory for a
 * "dir/" marker): user.dmfs.sha256, the s3fs attributes as
 * user.dmfs.mode, .uid, .gid, .mtime (decimal text, as in S3), and other
 * user metadata as user.dmfs.meta ("name:value\n" lines).  Content-Type is
 * not kept.
 *
 * Listing sorts names in byte order, like S3, and pages by "start after
 * the last key returned" (the continuation token is that key).
 */
#include "config.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "dmfs/log.h"
#include "dmfs/stats.h"
#include "dmfs/store_file.h"

#define WALK_MAX_ENTRIES 10000000u /* bound on one listing's collection */

struct file_store {
	struct dmfs_store base;
	char *root; /* absolute, no trailing '/' */
	int rootfd; /* O_PATH of root, or -1: head_listed's fstatat walks
		       only the key's components */
};

/* One collected name: a key, and whether it is a common prefix. */
struct entry {
	char *key;
	int is_prefix;
	struct stat st;
};

struct collect {
	struct entry *v;
	size_t n, cap;
};

static int errno_to_err(int e)
{
	switch (e) {
	case ENOENT:
		return DMFS_ERR_NOT_FOUND;
	case ENOTDIR:
		return DMFS_ERR_NOT_FOUND; /* "a/b" where a is a file */
	case EACCES:
	case EPERM:
		return DMFS_ERR_DENIED;
	case ENOMEM:
		return DMFS_ERR_NOMEM;
	case ENOSPC:
		return DMFS_ERR_NOSPC;
	default:
		return DMFS_ERR_IO;
	}
}

/* Keys are relative and never climb out of the root. */
static int key_is_safe(const char *key)
{
	if (key[0] == '/')
		return 0;
	for (const char *p = key; *p;) {
		const char *e = strchrnul(p, '/');
		if ((e - p == 2 && p[0] == '.' && p[1] == '.') ||
		    (e - p == 1 && p[0] == '.'))
			return 0;
		p = *e ? e + 1 : e;
	}
	return 1;
}

/* root + "/" + key.  Caller frees with free(). */
static char *key_path(struct file_store *s, const char *key)
{
	size_t n = strlen(s->root) + strlen(key) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", s->root, key);
	return p;
}

static void etag_of(const struct stat *st, char out[DMFS_ETAG_MAX])
{
	snprintf(out, DMFS_ETAG_MAX, "%llx-%llx-%llx%09lx",
		 (unsigned long long)st->st_ino,
		 (unsigned long long)st->st_size,
		 (unsigned long long)st->st_mtim.tv_sec,
		 (unsigned long)st->st_mtim.tv_nsec);
}

#define FILE_XATTR_SHA256 "user.dmfs.sha256"
#define FILE_IO_CHUNK (1u << 20)

/* The content hash remembered on a file, if the filesystem keeps user
 * xattrs (it is an optimisation: without it files are hashed again). */
static void read_sha_xattr(int fd, char out[65])
{
	ssize_t n = fgetxattr(fd, FILE_XATTR_SHA256, out, 64);
	out[n == 64 ? 64 : 0] = '\0';
}

#define FILE_XATTR_META "user.dmfs.meta"
static const unsigned attr_bits[] = {DMFS_ATTR_MODE, DMFS_ATTR_UID,
				     DMFS_ATTR_GID, DMFS_ATTR_MTIME};

/* The attributes and other metadata kept on fd into out. */
static int read_meta_xattrs(int fd, struct dmfs_obj_info *out)
{
	char xn[64], v[DMFS_USER_META_MAX + 1];

	memset(&out->attrs, 0, sizeof(out->attrs));
	for (size_t i = 0; i < 4; i++) {
		const char *name;
		char dummy[24];
		dmfs_attrs_format(&out->attrs, attr_bits[i], &name, dummy);
		snprintf(xn, sizeof(xn), "user.dmfs.%s", name);
		ssize_t n = fgetxattr(fd, xn, v, 23);
		if (n <= 0)
			continue;
		v[n] = '\0';
		(void)dmfs_attrs_parse(&out->attrs, name, v);
	}
	ssize_t n = fgetxattr(fd, FILE_XATTR_META, v, DMFS_USER_META_MAX);
	if (n > 0) {
		out->user_meta = strndup(v, (size_t)n);
		if (!out->user_meta)
			return DMFS_ERR_NOMEM;
	}
	return 0;
}

/* Replace the attributes and other metadata on fd by o's (NULL: none).
 * A filesystem without user xattrs keeps none of them: not an error, as
 * the sha256 there (the mount shows the defaults). */
static int write_meta_xattrs(int fd, const struct dmfs_put_opts *o)
{
	char xn[64], v[24];

	for (size_t i = 0; i < 4; i++) {
		const char *name;
		struct dmfs_attrs none = {0};
		const struct dmfs_attrs *a = o && o->attrs ? o->attrs : &none;
		dmfs_attrs_format(a, attr_bits[i], &name, v);
		snprintf(xn, sizeof(xn), "user.dmfs.%s", name);
		if (a->have & attr_bits[i]) {
			if (fsetxattr(fd, xn, v, strlen(v), 0) != 0 &&
			    errno != ENOTSUP)
				return errno_to_err(errno);
		} else {
			(void)fremovexattr(fd, xn);
		}
	}
	if (o && o->user_meta && *o->user_meta) {
		size_t n = strlen(o->user_meta);
		if (n > DMFS_USER_META_MAX)
			return DMFS_ERR_TOO_BIG;
		if (fsetxattr(fd, FILE_XATTR_META, o->user_meta, n, 0) != 0 &&
		    errno != ENOTSUP)
			return errno_to_err(errno);
	} else {
		(void)fremovexattr(fd, FILE_XATTR_META);
	}
	return 0;
}

static int collect_add(struct collect *c, char *key, int is_prefix,
		       const struct stat *st)
{
	if (c->n >= WALK_MAX_ENTRIES) {
		free(key);
		return DMFS_ERR_TOO_BIG;
	}
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 256;
		struct entry *nv = realloc(c->v, ncap * sizeof(*nv));
		if (!nv) {
			free(key);
			return DMFS_ERR_NOMEM;
		}
		c->v = nv;
		c->cap = ncap;
	}
	c->v[c->n].key = key;
	c->v[c->n].is_prefix = is_prefix;
	c->v[c->n].st = *st;
	c->n++;
	return 0;
}

static char *join(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
	char *r = malloc(n);
	if (r)
		snprintf(r, n, "%s%s%s", a, b, c);
	return r;
}

/* One name of a directory being walked.  A subdirectory "x" sorts as
 * "x/", as its keys do, so sorting the names gives key order. */
struct child {
	char *sortname;		/* name, "/" appended for a directory */
	bool is_dir;
};

static int child_cmp(const void *a, const void *b)
{
	return strcmp(((const struct child *)a)->sortname,
		      ((const struct child *)b)->sortname);
}

/* What one listing collects: names after `after` (NULL: all), at most
 * `limit` of them, in key order. */
struct walk_req {
	const char *after;
	size_t limit;
	int delimited;
};

/*
 * Collect, in key order, the names below directory `dirkey` ("" or
 * "a/b/") that start with dirkey+namepart and sort after w->after, until
 * w->limit are collected.  With a delimiter, subdirectories become
 * prefixes; without, they are walked (an empty one shows as a "dir/"
 * marker).  Each directory is read once and sorted, and a subtree wholly
 * before `after` is never entered: paging through a big tree costs one
 * walk, not one per page.
 */
static int walk(struct file_store *s, const char *dirkey, const char *namepart,
		const struct walk_req *w, struct collect *c)
{
	char *dpath = key_path(s, dirkey);
	struct child *kids = NULL;
	size_t nk = 0, ck = 0;
	DIR *d;
	struct dirent *de;
	int rc = 0, any = 0;

	if (!dpath)
		return DMFS_ERR_NOMEM;
	d = opendir(dpath);
	if (!d) {
		rc = (errno == ENOENT || errno == ENOTDIR) ? 0
							   : errno_to_err(errno);
		free(dpath);
		return rc;
	}
	if (w->delimited && *dirkey && !*namepart &&
	    (!w->after || strcmp(dirkey, w->after) > 0)) {
		/* Listing "a/b/" of an existing directory: S3 would show its
		 * "a/b/" marker object, as s3fs makes them; so do we, so an
		 * empty directory is not mistaken for a missing one. */
		struct stat st;
		char *k = strdup(dirkey);
		if (fstat(dirfd(d), &st) != 0)
			memset(&st, 0, sizeof(st));
		st.st_size = 0;
		rc = k ? collect_add(c, k, 0, &st) : DMFS_ERR_NOMEM;
	}
	while (!rc && (de = readdir(d))) {
		/* ".dmfs-tmp.*" are uploads in progress (file_put). */
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strncmp(de->d_name, ".dmfs-tmp.", 10))
			continue;
		any = 1;
		if (strncmp(de->d_name, namepart, strlen(namepart)) != 0)
			continue;
		bool is_dir = de->d_type == DT_DIR, is_reg = de->d_type == DT_REG;
		if (de->d_type == DT_UNKNOWN || de->d_type == DT_LNK) {
			struct stat st;
			if (fstatat(dirfd(d), de->d_name, &st, 0) != 0)
				continue; /* vanished or a dangling link */
			is_dir = S_ISDIR(st.st_mode);
			is_reg = S_ISREG(st.st_mode);
		}
		if (!is_dir && !is_reg)
			continue;
		if (nk == ck) {
			size_t n = ck ? ck * 2 : 64;
			struct child *nv = realloc(kids, n * sizeof(*nv));
			if (!nv) {
				rc = DMFS_ERR_NOMEM;
				break;
			}
			kids = nv;
			ck = n;
		}
		kids[nk].sortname = join(de->d_name, is_dir ? "/" : "", "");
		kids[nk].is_dir = is_dir;
		if (!kids[nk].sortname)
			rc = DMFS_ERR_NOMEM;
		else
			nk++;
	}
	if (!rc && nk > 1)
		qsort(kids, nk, sizeof(*kids), child_cmp);
	for (size_t i = 0; !rc && i < nk && c->n < w->limit; i++) {
		struct stat st;
		char *k = join(dirkey, kids[i].sortname, "");
		if (!k) {
			rc = DMFS_ERR_NOMEM;
			break;
		}
		if (w->after && strcmp(k, w->after) <= 0 &&
		    (!kids[i].is_dir || w->delimited ||
		     strncmp(w->after, k, strlen(k)) != 0)) {
			free(k); /* wholly before the token */
			continue;
		}
		if (fstatat(dirfd(d), kids[i].sortname, &st, 0) != 0) {
			free(k);
			continue;
		}
		if (kids[i].is_dir && !w->delimited) {
			rc = walk(s, k, "", w, c);
			free(k);
		} else {
			rc = collect_add(c, k, kids[i].is_dir, &st);
		}
	}
	for (size_t i = 0; i < nk; i++)
		free(kids[i].sortname);
	free(kids);
	closedir(d);
	free(dpath);
	if (!rc && !any && !w->delimited && *dirkey && !*namepart &&
	    c->n < w->limit && (!w->after || strcmp(dirkey, w->after) > 0)) {
		/* An empty directory: show it as its marker object. */
		struct stat st = {0};
		char *k = strdup(dirkey);
		rc = k ? collect_add(c, k, 0, &st) : DMFS_ERR_NOMEM;
	}
	return rc;
}

static int file_list(struct dmfs_store *st, const char *prefix,
		     const char *delimiter, const char *token, size_t max_keys,
		     struct dmfs_list_page *out, struct dmfs_err_detail *d)
{
	struct file_store *s = (struct file_store *)st;
	struct collect c = {0};
	const char *slash = strrchr(prefix, '/');
	size_t dl = slash ? (size_t)(slash - prefix + 1) : 0;
	char *dirkey = strndup(prefix, dl);
	int delimited = delimiter && !strcmp(delimiter, "/");
	size_t start = 0, i;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!dirkey)
		return DMFS_ERR_NOMEM;
	if (delimiter && *delimiter && !delimited) {
		free(dirkey);
		return DMFS_ERR_UNSUPPORTED;
	}
	if (!key_is_safe(prefix) && *prefix) {
		free(dirkey);
		return DMFS_ERR_INVAL;
	}
	if (!max_keys)
		max_keys = 1000;
	DMFS_STAT_ADD(requests, 1);
	/* One more than a page: whether the listing goes on. */
	struct walk_req w = {.after = token, .limit = max_keys + 1,
			     .delimited = delimited};
	rc = walk(s, dirkey, prefix + dl, &w, &c);
	size_t end = start + max_keys < c.n ? start + max_keys : c.n;
	if (!rc && end > start) {
		out->objs = calloc(end - start, sizeof(*out->objs));
		out->prefixes = calloc(end - start, sizeof(*out->prefixes));
		if (!out->objs || !out->prefixes)
			rc = DMFS_ERR_NOMEM;
	}
	for (i = start; !rc && i < end; i++) {
		struct entry *e = &c.v[i];
		if (e->is_prefix) {
			out->prefixes[out->nprefixes++] = e->key;
		} else {
			struct dmfs_obj_info *o = &out->objs[out->nobjs++];
			o->key = e->key;
			o->size = (uint64_t)e->st.st_size;
			o->mtime = e->st.st_mtim.tv_sec;
			etag_of(&e->st, o->etag);
		}
		e->key = NULL;
	}
	if (!rc && end < c.n) {
		out->truncated = true;
		/* The token is the last key returned (moved into out). */
		const char *last_key =
			out->nobjs &&
					(!out->nprefixes ||
					 strcmp(out->objs[out->nobjs - 1].key,
						out->prefixes[out->nprefixes - 1]) > 0)
				? out->objs[out->nobjs - 1].key
				: out->prefixes[out->nprefixes - 1];
		out->next_token = strdup(last_key);
		if (!out->next_token)
			rc = DMFS_ERR_NOMEM;
	}
	for (i = 0; i < c.n; i++)
		free(c.v[i].key);
	free(c.v);
	free(dirkey);
	if (rc) {
		dmfs_list_page_free(out);
		snprintf(d->message, sizeof(d->message), "listing %s: %s",
			 prefix, dmfs_strerror(rc));
	}
	return rc;
}

/* The object of key as a listing shows it: one stat(2).  key_path of
 * key in *pathp (caller frees) when pathp is not NULL. */
static int stat_key(struct file_store *s, const char *key,
		    struct dmfs_obj_info *out, struct stat *sb, char **pathp)
{
	size_t kl = strlen(key);
	bool at = !pathp && s->rootfd >= 0;
	char *p = NULL;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!kl || !key_is_safe(key))
		return DMFS_ERR_NOT_FOUND;
	if (!at && !(p = key_path(s, key)))
		return DMFS_ERR_NOMEM;
	DMFS_STAT_ADD(requests, 1);
	if ((at ? fstatat(s->rootfd, key, sb, 0) : stat(p, sb)) != 0)
		rc = errno_to_err(errno);
	else if (S_ISDIR(sb->st_mode) != (key[kl - 1] == '/'))
		rc = DMFS_ERR_NOT_FOUND; /* "a" is no object when a/ is a dir */
	else if (!S_ISDIR(sb->st_mode) && !S_ISREG(sb->st_mode))
		rc = DMFS_ERR_NOT_FOUND;
	if (!rc)
		out->key = strdup(key);
	if (!rc && !out->key)
		rc = DMFS_ERR_NOMEM;
	if (rc || !pathp)
		free(p);
	else
		*pathp = p;
	if (rc)
		return rc;
	out->size = S_ISDIR(sb->st_mode) ? 0 : (uint64_t)sb->st_size;
	out->mtime = sb->st_mtim.tv_sec;
	etag_of(sb, out->etag);
	return 0;
}

static int file_head_listed(struct dmfs_store *st, const char *key,
			    struct dmfs_obj_info *out,
			    struct dmfs_err_detail *d)
{
	struct stat sb;

	(void)d;
	return stat_key((struct file_store *)st, key, out, &sb, NULL);
}

static int file_head(struct dmfs_store *st, const char *key,
		     struct dmfs_obj_info *out, struct dmfs_err_detail *d)
{
	struct stat sb;
	char *p = NULL;
	int rc = stat_key((struct file_store *)st, key, out, &sb, &p);

	(void)d;
	if (rc)
		return rc;
	/* The metadata, as S3 answers it to a HEAD. */
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	free(p);
	if (fd >= 0) {
		if (!S_ISDIR(sb.st_mode))
			read_sha_xattr(fd, out->sha256);
		rc = read_meta_xattrs(fd, out);
		close(fd);
	}
	if (rc)
		dmfs_obj_info_clear(out);
	return rc;
}

/*
 * Open the regular file named by key for reading, checked against a pin
 * (a directory keeps no versions; If-Match compares the derived ETag).
 * *fd (caller closes), *sb and etag are filled on success.
 */
static int open_pinned(struct file_store *s, const char *key,
		       const struct dmfs_pin *pin, int *fd, struct stat *sb,
		       char etag[DMFS_ETAG_MAX])
{
	char *p;
	int rc = 0;

	*fd = -1;
	if (!*key || !key_is_safe(key))
		return DMFS_ERR_NOT_FOUND;
	if (pin && pin->version_id && pin->version_id[0])
		return DMFS_ERR_UNSUPPORTED;
	p = key_path(s, key);
	if (!p)
		return DMFS_ERR_NOMEM;
	DMFS_STAT_ADD(requests, 1);
	*fd = open(p, O_RDONLY | O_CLOEXEC);
	free(p);
	if (*fd < 0)
		return errno_to_err(errno);
	if (fstat(*fd, sb) != 0)
		rc = errno_to_err(errno);
	else if (!S_ISREG(sb->st_mode))
		rc = DMFS_ERR_NOT_FOUND;
	if (!rc) {
		etag_of(sb, etag);
		if (pin && pin->if_match && pin->if_match[0] &&
		    strcmp(pin->if_match, etag) != 0)
			rc = DMFS_ERR_CHANGED;
	}
	if (rc) {
		close(*fd);
		*fd = -1;
	}
	return rc;
}

static int file_get_range(struct dmfs_store *st, const char *key,
			  const struct dmfs_pin *pin, uint64_t off, size_t len,
			  void *buf, size_t *got, struct dmfs_err_detail *d)
{
	struct file_store *s = (struct file_store *)st;
	struct stat sb;
	char etag[DMFS_ETAG_MAX];
	int fd, rc = 0;
	size_t done = 0;

	*got = 0;
	rc = open_pinned(s, key, pin, &fd, &sb, etag);
	if (rc)
		goto out;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = errno_to_err(errno);
			goto out;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	DMFS_STAT_ADD(bytes_fetched, done);
out:
	if (fd >= 0)
		close(fd);
	if (rc && rc != DMFS_ERR_NOT_FOUND) {
		DMFS_STAT_ADD(errors, 1);
		dmfs_log(DMFS_LOG_ERROR, "file store: reading %s: %s", key,
			 dmfs_strerror(rc));
	}
	return rc;
}


static int file_get_stream(struct dmfs_store *st, const char *key,
			   const struct dmfs_pin *pin,
			   const struct dmfs_sink *sink,
			   struct dmfs_obj_info *info, struct dmfs_err_detail *d)
{
	struct file_store *s = (struct file_store *)st;
	struct stat sb;
	char etag[DMFS_ETAG_MAX];
	char *buf = NULL;
	int fd, rc = 0;
	uint64_t done = 0;

	(void)d;
	if (info)
		memset(info, 0, sizeof(*info));
	rc = open_pinned(s, key, pin, &fd, &sb, etag);
	if (rc)
		return rc;
	buf = malloc(FILE_IO_CHUNK);
	if (!buf) {
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	while (!rc && done < (uint64_t)sb.st_size) {
		ssize_t n = pread(fd, buf, FILE_IO_CHUNK, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = errno_to_err(errno);
		else if (n == 0)
			rc = DMFS_ERR_CHANGED; /* truncated under us */
		else
			rc = sink->data(sink->ctx, buf, (size_t)n);
		if (n > 0)
			done += (uint64_t)n;
	}
	DMFS_STAT_ADD(bytes_fetched, done);
	if (!rc && info) {
		info->key = strdup(key);
		if (!info->key)
			rc = DMFS_ERR_NOMEM;
		info->size = (uint64_t)sb.st_size;
		info->mtime = sb.st_mtim.tv_sec;
		snprintf(info->etag, sizeof(info->etag), "%s", etag);
		read_sha_xattr(fd, info->sha256);
		if (!rc)
			rc = read_meta_xattrs(fd, info);
	}
out:
	free(buf);
	close(fd);
	return rc;
}

/* mkdir -p of the directories above key (not key itself). */
static int make_parents(struct file_store *s, const char *key)
{
	char *p = key_path(s, key);
	int rc = 0;

	if (!p)
		return DMFS_ERR_NOMEM;
	for (char *c = p + strlen(s->root) + 1; (c = strchr(c, '/')); c++) {
		*c = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			rc = errno_to_err(errno);
		*c = '/';
		if (rc)
			break;
	}
	free(p);
	return rc;
}

/* A temporary file next to key's path, for write-then-rename.  *tmp
 * receives its path (caller frees with free()); returns the fd or -1. */
static int temp_beside(struct file_store *s, const char *key, char **tmp)
{
	char *p = key_path(s, key);
	size_t n = p ? strlen(p) + 32 : 0;
	int fd = -1;

	*tmp = p ? malloc(n) : NULL;
	if (*tmp) {
		char *slash = strrchr(p, '/');
		*slash = '\0';
		snprintf(*tmp, n, "%s/.dmfs-tmp.XXXXXX", p);
		fd = mkostemp(*tmp, O_CLOEXEC);
		if (fd < 0) {
			free(*tmp);
			*tmp = NULL;
		}
	}
	free(p);
	return fd;
}

/* Write len bytes from src (buffer or fd) into fd. */
static int copy_in(int fd, const struct dmfs_put_src *src)
{
	char *buf = src->buf ? NULL : malloc(FILE_IO_CHUNK);
	uint64_t off = 0;
	int rc = 0;

	if (!src->buf && !buf)
		return DMFS_ERR_NOMEM;
	while (!rc && off < src->len) {
		const char *from;
		size_t want = src->len - off < FILE_IO_CHUNK
				      ? (size_t)(src->len - off)
				      : FILE_IO_CHUNK;
		if (src->buf) {
			from = (const char *)src->buf + off;
		} else {
			ssize_t n = pread(src->fd, buf, want, (off_t)off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				rc = n < 0 ? errno_to_err(errno) : DMFS_ERR_IO;
				break;
			}
			want = (size_t)n;
			from = buf;
		}
		ssize_t w = write(fd, from, want);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			rc = errno_to_err(errno);
		else
			off += (uint64_t)w;
	}
	free(buf);
	return rc;
}

/*
 * Move a finished temporary file to key: rename (replace), or, when
 * exclusive, link (which fails if the key exists: the atomic
 * If-None-Match of a directory) then drop the temporary name.
 */
static int publish(struct file_store *s, const char *tmp, const char *key,
		   bool exclusive)
{
	char *p = key_path(s, key);
	int rc = 0;

	if (!p)
		return DMFS_ERR_NOMEM;
	if (exclusive) {
		if (link(tmp, p) != 0)
			rc = errno == EEXIST ? DMFS_ERR_EXISTS
					     : errno_to_err(errno);
		unlink(tmp);
	} else if (rename(tmp, p) != 0) {
		rc = errno_to_err(errno);
		unlink(tmp);
	}
	free(p);
	return rc;
}

/* The metadata of a "dir/" marker, on the directory. */
static int set_dir_meta(struct file_store *s, const char *key,
			const struct dmfs_put_opts *o)
{
	char *p = key_path(s, key);
	int fd, rc;

	if (!p)
		return DMFS_ERR_NOMEM;
	fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(p);
	if (fd < 0)
		return errno_to_err(errno);
	rc = write_meta_xattrs(fd, o);
	close(fd);
	return rc;
}

static int file_put(struct dmfs_store *st, const char *key,
		    const struct dmfs_put_src *src,
		    const struct dmfs_put_opts *o, struct dmfs_obj_info *out,
		    struct dmfs_err_detail *d)
{
	struct file_store *s = (struct file_store *)st;
	char *tmp = NULL;
	struct stat sb;
	int fd = -1, rc;

	(void)d;
	if (out)
		memset(out, 0, sizeof(*out));
	if (*key && key[strlen(key) - 1] == '/' && src->len == 0 &&
	    key_is_safe(key)) {
		/* An s3fs "dir/" marker: here, the directory itself. */
		rc = make_parents(s, key);
		if (!rc)
			rc = set_dir_meta(s, key, o);
		return rc;
	}
	if (!*key || key[strlen(key) - 1] == '/' || !key_is_safe(key))
		return DMFS_ERR_INVAL;
	DMFS_STAT_ADD(requests, 1);
	rc = make_parents(s, key);
	if (!rc) {
		fd = temp_beside(s, key, &tmp);
		if (fd < 0)
			rc = errno_to_err(errno);
	}
	if (!rc)
		rc = copy_in(fd, src);
	if (!rc && o && o->sha256 && strlen(o->sha256) == 64)
		(void)fsetxattr(fd, FILE_XATTR_SHA256, o->sha256, 64, 0);
	if (!rc)
		rc = write_meta_xattrs(fd, o);
	if (!rc && fsync(fd) != 0)
		rc = errno_to_err(errno);
	if (!rc && fstat(fd, &sb) != 0)
		rc = errno_to_err(errno);
	if (fd >= 0)
		close(fd);
	if (!rc)
		rc = publish(s, tmp, key, o && o->if_none_match);
	else if (tmp)
		unlink(tmp);
	if (!rc && out) {
		out->key = strdup(key);
		if (!out->key)
			rc = DMFS_ERR_NOMEM;
		out->size = (uint64_t)sb.st_size;
		out->mtime = sb.st_mtim.tv_sec;
		etag_of(&sb, out->etag);
	}
	free(tmp);
	return rc;
}

static int file_copy(struct dmfs_store *st, const char *src_key,
		     const struct dmfs_pin *pin, const char *dst_key,
		     const struct dmfs_put_opts *o, struct dmfs_err_detail *d)
{
	struct file_store *s = (struct file_store *)st;
	char etag[DMFS_ETAG_MAX];
	struct stat sb;
	struct dmfs_put_opts po = {0};
	size_t kl = strlen(src_key);
	int fd, rc;

	if (o) {
		po = *o;
		po.if_none_match = false;
	}
	if (!strcmp(src_key, dst_key) && kl && src_key[kl - 1] == '/') {
		struct dmfs_obj_info cur;
		rc = file_head(st, src_key, &cur, d);
		dmfs_obj_info_clear(&cur);
		return rc ? rc : set_dir_meta(s, src_key, &po);
	}
	rc = open_pinned(s, src_key, pin, &fd, &sb, etag);
	if (rc)
		return rc;
	if (!strcmp(src_key, dst_key)) {
		/* Metadata alone: in place, the bytes and ETag stay (as for
		 * an S3 copy of an object onto itself). */
		DMFS_STAT_ADD(requests, 1);
		if (po.sha256 && strlen(po.sha256) == 64)
			(void)fsetxattr(fd, FILE_XATTR_SHA256, po.sha256, 64,
					0);
		else
			(void)fremovexattr(fd, FILE_XATTR_SHA256);
		rc = write_meta_xattrs(fd, &po);
	} else {
		struct dmfs_put_src src = {.fd = fd,
					   .len = (uint64_t)sb.st_size};
		rc = file_put(st, dst_key, &src, &po, NULL, d);
	}
	close(fd);
	return rc;
}

static int file_del(struct dmfs_store *st, const char *key,
		    struct dmfs_err_detail *d)
{
	struct file_store *s = (struct file_store *)st;
	char *p;
	int rc = 0;

	(void)d;
	if (!*key || !key_is_safe(key))
		return DMFS_ERR_INVAL;
	p = key_path(s, key);
	if (!p)
		return DMFS_ERR_NOMEM;
	DMFS_STAT_ADD(requests, 1);
	if (key[strlen(key) - 1] == '/') {
		/* A "dir/" marker: the directory, when nothing is in it
		 * (as in S3, the other keys under it stay). */
		p[strlen(p) - 1] = '\0';
		if (rmdir(p) != 0 && errno != ENOENT && errno != ENOTEMPTY &&
		    errno != EEXIST)
			rc = errno_to_err(errno);
	} else if (unlink(p) != 0 && errno != ENOENT)
		rc = errno_to_err(errno);
	/* As in S3, a prefix with no keys left is gone: remove the
	 * directories that became empty, up to the root.  (A directory
	 * here cannot tell whether S3 would have kept a "dir/" marker for
	 * it: deleting a marker leaves the parents, deleting the last file
	 * does not.) */
	int marker = key[strlen(key) - 1] == '/';
	for (char *slash; !rc && !marker && (slash = strrchr(p, '/')) &&
			  slash > p + strlen(s->root);) {
		*slash = '\0';
		if (rmdir(p) != 0)
			break;
	}
	free(p);
	return rc;
}

static int file_versioning(struct dmfs_store *st, int *enabled,
			   struct dmfs_err_detail *d)
{
	(void)st;
	(void)d;
	*enabled = 0; /* a directory keeps no object versions */
	return 0;
}

static int file_list_versions(struct dmfs_store *st, const char *prefix,
			      char **token, struct dmfs_list_page *out,
			      struct dmfs_err_detail *d)
{
	(void)st;
	(void)prefix;
	(void)token;
	(void)d;
	memset(out, 0, sizeof(*out));
	return DMFS_ERR_UNSUPPORTED;
}

static char *file_uri(struct dmfs_store *st, const char *key)
{
	struct file_store *s = (struct file_store *)st;
	size_t n = strlen(s->root) + strlen(key) + 9;
	char *u = malloc(n);
	if (u)
		snprintf(u, n, "file://%s/%s", s->root, key);
	return u;
}

static void file_destroy(struct dmfs_store *st)
{
	struct file_store *s = (struct file_store *)st;
	if (!s)
		return;
	if (s->rootfd >= 0)
		close(s->rootfd);
	free(s->root);
	free(s);
}

static const struct dmfs_store_ops file_ops = {
	.scheme = "file",
	.list = file_list,
	.head = file_head,
	.head_listed = file_head_listed,
	.get_range = file_get_range,
	.uri = file_uri,
	.destroy = file_destroy,
	.get_stream = file_get_stream,
	.put = file_put,
	.copy = file_copy,
	.del = file_del,
	.versioning = file_versioning,
	.list_versions = file_list_versions,
};

int store_file_new(const char *dir, struct dmfs_store **out, char *msg,
		   size_t msgsz)
{
	struct stat sb;
	struct file_store *s;
	char *root = realpath(dir, NULL);

	if (!root || stat(root, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		snprintf(msg, msgsz, "file store %s: %s", dir,
			 root ? "not a directory" : strerror(errno));
		free(root);
		return DMFS_ERR_CONFIG;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		free(root);
		return DMFS_ERR_NOMEM;
	}
	s->base.ops = &file_ops;
	s->root = root;
	s->rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	*out = &s->base;
	return 0;
}
