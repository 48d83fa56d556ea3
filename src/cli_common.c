/*
 * cli_common.c - shared parts of the store commands (see cli_common.h).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_common.h"
#include "dmfs/fmt.h"
#include "dmfs/log.h"
#include "dmfs/meta.h"
#include "dmfs/store_open.h"

int cli_take_options(int *argc, char **argv, struct dmfs_options *o)
{
	char msg[512];
	int j = 0;

	for (int i = 0; i < *argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-d") || !strcmp(a, "--debug")) {
			o->debug = true;
			continue;
		}
		if (strncmp(a, "-o", 2) != 0) {
			argv[j++] = argv[i];
			continue;
		}
		const char *v = a[2] ? a + 2 : (i + 1 < *argc ? argv[++i] : NULL);
		if (!v) {
			fprintf(stderr, "dmfs: -o needs options\n");
			return 2;
		}
		if (dmfs_options_parse(o, v, msg, sizeof(msg))) {
			fprintf(stderr, "dmfs: %s\n", msg);
			return 2;
		}
	}
	*argc = j;
	argv[j] = NULL;
	dmfs_log_set_level(o->debug ? DMFS_LOG_DEBUG : DMFS_LOG_WARN);
	return 0;
}

/* mkdir -p with mode 0700; 0 or -1 with errno. */
static int mkdir_p(const char *dir)
{
	char path[4096];
	if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(path, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

int cli_open(struct cli_store *c, const char *uri)
{
	char msg[1024];
	int rc;

	c->uri = strdup(uri);
	if (!c->uri) {
		fprintf(stderr, "dmfs: out of memory\n");
		return 1;
	}
	/* A trailing '/' names the same store: keep memo keys stable. */
	for (size_t n = strlen(c->uri); n > 8 && c->uri[n - 1] == '/'; n--)
		c->uri[n - 1] = '\0';
	rc = dmfs_store_open(c->uri, &c->o, 0, &c->st, msg, sizeof(msg));
	if (rc) {
		fprintf(stderr, "dmfs: %s\n", msg);
		return 1;
	}
	if (mkdir_p(c->o.cache_dir) != 0) {
		fprintf(stderr, "dmfs: cache_dir %s: %s\n", c->o.cache_dir,
			strerror(errno));
		return 1;
	}
	rc = mindex_open(c->o.cache_dir, &c->mx);
	if (rc) {
		fprintf(stderr, "dmfs: index in %s: %s\n", c->o.cache_dir,
			dmfs_strerror(rc));
		return 1;
	}
	c->env = (struct capture_env){
		.st = c->st,
		.store_uri = c->uri,
		.mx = c->mx,
		.cache_dir = c->o.cache_dir,
	};
	return 0;
}

int cli_open_meta(struct cli_store *c)
{
	char msg[1024];
	int rc = meta_open(c->o.cache_dir, c->st, c->uri, &c->meta, msg,
			   sizeof(msg));

	if (!rc)
		rc = meta_refresh(c->meta, NULL, msg, sizeof(msg));
	if (rc) {
		fprintf(stderr, "dmfs: metadata: %s\n", msg);
		return 1;
	}
	c->env.meta = c->meta;
	return 0;
}

int cli_flush_meta(struct cli_store *c)
{
	char msg[1024];
	int rc = meta_flush(c->meta, msg, sizeof(msg));

	if (rc) {
		fprintf(stderr, "dmfs: metadata applied here but not yet in "
			"the bucket (kept in %s, sent by the next dmfs command "
			"or mount): %s\n", c->o.cache_dir, msg);
		return 1;
	}
	return 0;
}

void cli_close(struct cli_store *c)
{
	if (c->meta)
		meta_close(c->meta);
	if (c->st)
		c->st->ops->destroy(c->st);
	mindex_close(c->mx);
	free(c->uri);
	dmfs_options_free(&c->o);
	memset(c, 0, sizeof(*c));
}

void cli_human_bytes(uint64_t v, char *out, size_t outsz)
{
	dmfs_format_bytes((double)v, out, outsz);
}

const char *cli_flag_value(int argc, char **argv, int *i, const char *name,
			   bool *missing)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	*missing = false;
	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n])
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

int cli_parse(struct cli_store *c, int argc, char **argv,
	      const struct cli_flag *flags, const char **pos, int minpos,
	      int maxpos, int *npos, const char *use)
{
	int rc = cli_take_options(&argc, argv, &c->o);

	*npos = 0;
	for (int i = 0; !rc && i < argc; i++) {
		const struct cli_flag *f = flags;
		bool missing = false;
		for (; f && f->name; f++) {
			const char *v = NULL;
			if (!f->value) {
				if (!strcmp(argv[i], f->name) ||
				    (f->alias && !strcmp(argv[i], f->alias))) {
					*f->on = true;
					break;
				}
				continue;
			}
			v = cli_flag_value(argc, argv, &i, f->name, &missing);
			if (!v && !missing && f->alias)
				v = cli_flag_value(argc, argv, &i, f->alias,
						   &missing);
			if (v) {
				*f->value = v;
				break;
			}
			if (missing)
				break;
		}
		if (missing || (!(f && f->name) &&
				(argv[i][0] == '-' || *npos == maxpos)))
			rc = 2;
		else if (!(f && f->name))
			pos[(*npos)++] = argv[i];
	}
	if (!rc && *npos < minpos)
		rc = 2;
	if (rc == 2)
		fprintf(stderr, "usage: %s\n", use);
	return rc;
}

int cli_exit_status(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case DMFS_ERR_EXISTS:
		return 3;
	case DMFS_ERR_NOT_FOUND:
		return 4;
	default:
		return 1;
	}
}
