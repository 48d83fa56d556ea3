/*
 * cli_gc.c - `dmfs gc` (remove content no ref reaches) and `dmfs fsck`
 * (check that every ref's manifest and every object it names are there).
 *
 * gc and concurrent writers.  A capture copies content into
 * .dmfs/objects/ and reuses what is there long before it writes its
 * manifest and ref, so "no ref reaches it" is not enough to delete:
 *   - objects and manifests younger than the grace period (--grace,
 *     default one hour) are kept, whatever reaches them;
 *   - manifests younger than the grace period count as roots (a capture
 *     uploads its manifest just before its ref);
 *   - captures leave a lease (.dmfs/leases/) while they run; gc refuses to
 *     delete anything while a lease younger than a day exists, checked
 *     at the start and again just before deleting.
 * Readers are never affected: what a ref reaches is never deleted, and a
 * ref removed with rm-version was the user's explicit decision.
 */
#include "config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_common.h"
#include "dmfs/cli.h"
#include "dmfs/refs.h"
#include "hashset.h"

#define MANIFESTS_PREFIX ".dmfs/manifests/sha256/"

/* Call fn for every object under prefix (all pages). */
static int list_all(struct dmfs_store *st, const char *prefix,
		    int (*fn)(void *ctx, const struct dmfs_obj_info *o),
		    void *ctx)
{
	char *token = NULL;
	int rc = 0;

	do {
		struct dmfs_list_page pg;
		struct dmfs_err_detail d = {0};
		rc = st->ops->list(st, prefix, NULL, token, 1000, &pg, &d);
		free(token);
		token = NULL;
		if (rc)
			break;
		for (size_t i = 0; i < pg.nobjs && !rc; i++)
			rc = fn(ctx, &pg.objs[i]);
		if (pg.truncated && pg.next_token) {
			token = pg.next_token;
			pg.next_token = NULL;
		}
		dmfs_list_page_free(&pg);
	} while (!rc && token);
	free(token);
	return rc;
}

struct lease_scan {
	int64_t now;
	int active;
};

static int lease_seen(void *ctx, const struct dmfs_obj_info *o)
{
	struct lease_scan *ls = ctx;
	if (o->mtime + CAPTURE_LEASE_TTL > ls->now) {
		ls->active++;
		fprintf(stderr, "dmfs: a capture is running (lease %s)\n",
			o->key);
	}
	return 0;
}

/* How many captures are running now. */
static int active_leases(struct dmfs_store *st, int *n)
{
	struct lease_scan ls = {.now = (int64_t)time(NULL)};
	int rc = list_all(st, CAPTURE_LEASES_PREFIX, lease_seen, &ls);
	*n = ls.active;
	return rc;
}

/* Add every content hash a manifest names to the set. */
static int mark_manifest(const struct capture_env *env, const char *hash,
			 struct hashset *reach, char *msg, size_t msgsz)
{
	char path[4200];
	struct dmfs_err_detail d = {0};
	struct manifest_reader *mr = NULL;
	struct manifest_entry e;
	int rc = manifest_fetch(env->st, env->cache_dir, hash, path,
				sizeof(path), &d);

	if (rc) {
		snprintf(msg, msgsz, "manifest %s: %s", hash, dmfs_strerror(rc));
		return rc;
	}
	rc = manifest_reader_open(path, &mr, msg, msgsz);
	while (!rc && (rc = manifest_reader_next(mr, &e, msg, msgsz)) == 1) {
		if (e.sha256[0])
			rc = hashset_add(reach, e.sha256, e.size);
		else
			rc = 0;
		manifest_entry_clear(&e);
	}
	manifest_reader_close(mr);
	return rc < 0 ? -rc : rc;
}

struct gc_scan {
	const struct capture_env *env;
	struct hashset *reach;
	struct hashset *roots;		/* manifests to keep */
	int64_t cutoff;			/* younger than this: kept */
	char msg[1024];
	/* collected for deletion */
	char **victims;
	size_t nvictims, cap;
	uint64_t bytes;
	uint64_t kept_young;
};

static int add_victim(struct gc_scan *g, const char *key, uint64_t size)
{
	if (g->nvictims == g->cap) {
		size_t ncap = g->cap ? g->cap * 2 : 256;
		char **nv = realloc(g->victims, ncap * sizeof(*nv));
		if (!nv)
			return DMFS_ERR_NOMEM;
		g->victims = nv;
		g->cap = ncap;
	}
	g->victims[g->nvictims] = strdup(key);
	if (!g->victims[g->nvictims])
		return DMFS_ERR_NOMEM;
	g->nvictims++;
	g->bytes += size;
	return 0;
}

/* A manifest: young ones are roots, old unreferenced ones are garbage. */
static int manifest_seen(void *ctx, const struct dmfs_obj_info *o)
{
	struct gc_scan *g = ctx;
	const char *hash = o->key + strlen(MANIFESTS_PREFIX);

	if (strlen(hash) != 64)
		return 0;
	if (hashset_get(g->roots, hash, NULL))
		return 0;
	if (o->mtime >= g->cutoff) {
		g->kept_young++;
		return hashset_add(g->roots, hash, 0);
	}
	return add_victim(g, o->key, o->size);
}

static int object_seen(void *ctx, const struct dmfs_obj_info *o)
{
	struct gc_scan *g = ctx;
	char hash[65];

	if (!hashset_object_key_hash(o->key, hash) ||
	    hashset_get(g->reach, hash, NULL))
		return 0;
	if (o->mtime >= g->cutoff) {
		g->kept_young++;
		return 0;
	}
	return add_victim(g, o->key, o->size);
}

int cli_gc(int argc, char **argv)
{
	static const char use[] =
		"dmfs gc STORE [--dry-run] [--grace SECONDS] [-o OPTS]";
	struct cli_store c = {0};
	struct hashset reach = {0}, roots = {0};
	struct gc_scan g = {.reach = &reach, .roots = &roots};
	struct ref_info *refs = NULL;
	struct dmfs_err_detail d = {0};
	const char *pos[1], *grace_s = NULL;
	bool dry = false;
	const struct cli_flag flags[] = {
		{"--dry-run", "-n", &dry, NULL},
		{"--grace", NULL, NULL, &grace_s},
		{NULL, NULL, NULL, NULL},
	};
	long grace = 3600;
	size_t nrefs = 0, nvictims_manifests = 0;
	int leases = 0, npos, rc;

	if (dmfs_options_init(&c.o))
		return 1;
	rc = cli_parse(&c, argc, argv, flags, pos, 1, 1, &npos, use);
	if (!rc && grace_s) {
		char *end;
		grace = strtol(grace_s, &end, 10);
		if (*end || grace < 0 || end == grace_s) {
			fprintf(stderr, "dmfs: --grace wants seconds\n");
			rc = 2;
		}
	}
	if (!rc)
		rc = cli_open(&c, pos[0]);
	if (rc)
		goto out;
	g.env = &c.env;
	g.cutoff = (int64_t)time(NULL) - grace;

	rc = active_leases(c.st, &leases);
	if (!rc && leases && !dry) {
		fprintf(stderr, "dmfs: gc: %d capture%s running; try again "
			"when %s done\n", leases, leases > 1 ? "s are" : " is",
			leases > 1 ? "they are" : "it is");
		rc = 1;
		goto out;
	}
	/* Roots: every ref's manifest, then young manifests. */
	if (!rc)
		rc = refs_list(c.st, &refs, &nrefs, &d);
	for (size_t i = 0; !rc && i < nrefs; i++)
		rc = hashset_add(&roots, refs[i].manifest, 0);
	if (!rc)
		rc = list_all(c.st, MANIFESTS_PREFIX, manifest_seen, &g);
	nvictims_manifests = g.nvictims;
	for (size_t i = 0; !rc && i < roots.cap; i++)
		if (roots.slot[i].hash[0])
			rc = mark_manifest(&c.env, roots.slot[i].hash, &reach,
					   g.msg, sizeof(g.msg));
	if (!rc)
		rc = list_all(c.st, ".dmfs/objects/sha256/", object_seen, &g);
	if (rc) {
		fprintf(stderr, "dmfs: gc: %s\n",
			g.msg[0] ? g.msg : dmfs_strerror(rc));
		rc = 1;
		goto out;
	}
	if (!dry) {
		rc = active_leases(c.st, &leases);
		if (rc || leases) {
			fprintf(stderr, "dmfs: gc: a capture started meanwhile; "
				"nothing deleted\n");
			rc = 1;
			goto out;
		}
	}
	char hb[32];
	cli_human_bytes(g.bytes, hb, sizeof(hb));
	for (size_t i = 0; i < g.nvictims; i++) {
		if (dry) {
			printf("would remove %s\n", g.victims[i]);
			continue;
		}
		int r = c.st->ops->del(c.st, g.victims[i], &d);
		if (r) {
			fprintf(stderr, "dmfs: gc: removing %s: %s\n",
				g.victims[i], dmfs_strerror(r));
			rc = 1;
		}
	}
	printf("%s %zu objects and %zu manifests (%s) that no ref reaches; "
	       "%zu refs, %zu reachable objects; %llu kept as younger than "
	       "%lds\n",
	       dry ? "would remove" : "removed",
	       g.nvictims - nvictims_manifests, nvictims_manifests, hb, nrefs,
	       reach.n, (unsigned long long)g.kept_young, grace);
out:
	for (size_t i = 0; i < g.nvictims; i++)
		free(g.victims[i]);
	free(g.victims);
	hashset_free(&reach);
	hashset_free(&roots);
	refs_free(refs, nrefs);
	cli_close(&c);
	return rc;
}

/* --- fsck --- */

struct fsck {
	const struct capture_env *env;
	struct hashset objects;		/* what the store holds, with sizes */
	struct hashset hashed;		/* --deep: objects already verified */
	bool deep;
	uint64_t problems, files, refs;
};

static void problem(struct fsck *f, const char *ref, const char *what,
		    const char *detail)
{
	f->problems++;
	printf("%s: %s%s%s\n", ref, what, detail ? ": " : "",
	       detail ? detail : "");
}

/* Download the manifest afresh (the bucket's bytes, not a local copy)
 * and check its hash.  path receives a temporary file. */
static int fetch_fresh(struct fsck *f, const char *hash, char *path,
		       size_t pathsz, char *why, size_t whysz)
{
	char key[128], got[65];
	struct dmfs_err_detail d = {0};
	int fd, rc;

	snprintf(path, pathsz, "%s/manifests", f->env->cache_dir);
	(void)mkdir(path, 0700);
	snprintf(path, pathsz, "%s/manifests/.fsck-XXXXXX", f->env->cache_dir);
	fd = mkstemp(path);
	if (fd < 0) {
		snprintf(why, whysz, "cannot create a temporary file in %.900s",
			 f->env->cache_dir);
		return DMFS_ERR_IO;
	}
	manifest_store_key(hash, key, sizeof(key));
	rc = dmfs_store_get_to_fd(f->env->st, key, NULL, fd, got, NULL, &d);
	close(fd);
	if (rc)
		snprintf(why, whysz, "%s", rc == DMFS_ERR_NOT_FOUND
						   ? "manifest missing"
						   : dmfs_strerror(rc));
	else if (strcmp(got, hash) != 0) {
		snprintf(why, whysz, "manifest damaged (its content hashes to "
			 "%.12s…)", got);
		rc = DMFS_ERR_CORRUPT;
	}
	return rc;
}

static void check_entry(struct fsck *f, const char *ref,
			const struct manifest_entry *e)
{
	char detail[1400];
	uint64_t size = 0;
	struct dmfs_err_detail d = {0};

	f->files++;
	if (e->sha256[0]) {
		if (!hashset_get(&f->objects, e->sha256, &size)) {
			snprintf(detail, sizeof(detail), "%s (sha256 %s)",
				 e->path, e->sha256);
			problem(f, ref, "missing object", detail);
			return;
		}
		if (size != e->size) {
			snprintf(detail, sizeof(detail),
				 "%s: object has %llu bytes, manifest says %llu",
				 e->path, (unsigned long long)size,
				 (unsigned long long)e->size);
			problem(f, ref, "wrong size", detail);
			return;
		}
		if (f->deep && !hashset_get(&f->hashed, e->sha256, NULL)) {
			char key[128], got[65];
			manifest_object_key(e->sha256, key, sizeof(key));
			int rc = dmfs_store_hash(f->env->st, key, NULL, got,
						 NULL, &d);
			if (rc || strcmp(got, e->sha256)) {
				snprintf(detail, sizeof(detail), "%s: %s",
					 e->path, rc ? dmfs_strerror(rc)
						     : "content does not match "
						       "its hash");
				problem(f, ref, "bad object", detail);
			}
			if (hashset_add(&f->hashed, e->sha256, e->size))
				problem(f, ref, "out of memory", NULL);
		}
		return;
	}
	/* A zero-copy pin: the version must still exist. */
	struct dmfs_pin pin = {.version_id = e->version_id};
	char one;
	size_t got = 0;
	int rc = e->key && e->version_id
			 ? (e->size ? f->env->st->ops->get_range(
					      f->env->st, e->key, &pin,
					      e->size - 1, 1, &one, &got, &d)
				    : 0)
			 : DMFS_ERR_PROTOCOL;
	if (!rc && e->size && got != 1)
		rc = DMFS_ERR_PROTOCOL;
	if (rc) {
		snprintf(detail, sizeof(detail), "%s (%s@%s): %s", e->path,
			 e->key ? e->key : "?",
			 e->version_id ? e->version_id : "?",
			 dmfs_strerror(rc));
		problem(f, ref, "pinned version unreadable", detail);
	}
}

static void check_ref(struct fsck *f, const struct ref_info *r)
{
	char path[4200], why[1024] = "";
	struct manifest_reader *mr = NULL;
	struct manifest_entry e;
	int rc;

	f->refs++;
	rc = fetch_fresh(f, r->manifest, path, sizeof(path), why, sizeof(why));
	if (!rc)
		rc = manifest_reader_open(path, &mr, why, sizeof(why));
	while (!rc && (rc = manifest_reader_next(mr, &e, why, sizeof(why))) ==
			      1) {
		check_entry(f, r->name, &e);
		manifest_entry_clear(&e);
		rc = 0;
	}
	if (rc)
		problem(f, r->name, "bad manifest", why);
	manifest_reader_close(mr);
	unlink(path);
}

int cli_fsck(int argc, char **argv)
{
	static const char use[] = "dmfs fsck STORE [--deep] [-o OPTS]";
	struct cli_store c = {0};
	struct fsck f = {0};
	struct ref_info *refs = NULL;
	struct dmfs_err_detail d = {0};
	const char *pos[1];
	const struct cli_flag flags[] = {
		{"--deep", NULL, &f.deep, NULL},
		{NULL, NULL, NULL, NULL},
	};
	char msg[512];
	size_t n = 0;
	int npos, rc;

	if (dmfs_options_init(&c.o))
		return 1;
	rc = cli_parse(&c, argc, argv, flags, pos, 1, 1, &npos, use);
	if (!rc)
		rc = cli_open(&c, pos[0]);
	if (rc)
		goto out;
	f.env = &c.env;
	rc = hashset_load_objects(c.st, &f.objects, msg, sizeof(msg));
	if (rc) {
		fprintf(stderr, "dmfs: fsck: %s\n", msg);
		rc = 1;
		goto out;
	}
	rc = refs_list(c.st, &refs, &n, &d);
	if (rc) {
		fprintf(stderr, "dmfs: fsck: reading refs: %s\n",
			dmfs_strerror(rc));
		rc = 1;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		check_ref(&f, &refs[i]);
	printf("%llu refs, %llu files checked%s: %llu problem%s\n",
	       (unsigned long long)f.refs, (unsigned long long)f.files,
	       f.deep ? " (content hashed)" : "",
	       (unsigned long long)f.problems, f.problems == 1 ? "" : "s");
	rc = f.problems ? 1 : 0;
out:
	hashset_free(&f.objects);
	hashset_free(&f.hashed);
	refs_free(refs, n);
	cli_close(&c);
	return rc;
}
