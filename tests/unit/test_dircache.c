/*
 * test_dircache.c - the listing cache over a file:// store: listings,
 * s3fs-style markers, stat from the parent's listing, the TTL, the negative
 * cache, the tree prefetch (one flat walk fills every directory below a
 * listed one, so walking them sends no further request), and names that
 * cannot be entries (hidden, counted once).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dmfs/dircache.h"
#include "dmfs/keyname.h"
#include "dmfs/stats.h"
#include "dmfs/store_file.h"
#include "unit.h"

static char root[] = "/tmp/dmfs-test-dircache.XXXXXX";

static void put(const char *rel, const char *content)
{
	char p[512], cmd[700];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", p);
	CHECK(system(cmd) == 0);
	FILE *f = fopen(p, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(content, f);
		fclose(f);
	}
}

static int names_are(struct dircache *dc, const char *dir, const char *want)
{
	struct dc_listing *l;
	char got[1024] = "";
	if (dircache_list(dc, dir, &l))
		return 0;
	for (size_t i = 0; i < l->n; i++) {
		strcat(got, l->v[i].name);
		strcat(got, l->v[i].is_dir ? "/ " : " ");
	}
	dircache_release(dc, l);
	if (strcmp(got, want))
		fprintf(stderr, "listing of '%s': got '%s', want '%s'\n", dir,
			got, want);
	return !strcmp(got, want);
}

int main(void)
{
	struct dmfs_store *st;
	struct dircache *dc;
	struct dc_entry e;
	static const char *const hide[] = {".dmfs", NULL};
	char msg[256], p[512];

	if (!mkdtemp(root))
		return 1;
	put("a.txt", "aaa");
	put("d/x/1.bin", "1");
	put("d/x/2.bin", "22");
	put("d/y/3.bin", "333");
	put("d/z.txt", "z");
	put(".dmfs/refs/r", "hidden");
	snprintf(p, sizeof(p), "%s/d/empty", root);
	CHECK(mkdir(p, 0755) == 0);

	CHECK(store_file_new(root, &st, msg, sizeof(msg)) == 0);
	CHECK(dircache_new(st, 30, hide, &dc) == 0);

	/* Root: .dmfs hidden; directories marked. */
	CHECK(names_are(dc, "", "a.txt d/ "));
	/* The root listing showed a subdirectory: a tree prefetch of the
	 * whole store runs; wait for it, then walking costs nothing. */
	usleep(300000);
	uint64_t before = DMFS_STAT_GET(requests);
	CHECK(names_are(dc, "d", "empty/ x/ y/ z.txt "));
	CHECK(names_are(dc, "d/x", "1.bin 2.bin "));
	CHECK(names_are(dc, "d/y", "3.bin "));
	CHECK(names_are(dc, "d/empty", ""));
	CHECK(DMFS_STAT_GET(requests) == before);

	/* stat comes from the parent's listing. */
	CHECK(dircache_stat(dc, "d/x/2.bin", &e) == 0 && !e.is_dir &&
	      e.size == 2 && e.etag[0]);
	CHECK(dircache_stat(dc, "d/x", &e) == 0 && e.is_dir);
	CHECK(dircache_stat(dc, "", &e) == 0 && e.is_dir);
	CHECK(dircache_stat(dc, "d/nope", &e) == DMFS_ERR_NOT_FOUND);
	CHECK(dircache_stat(dc, ".dmfs", &e) == DMFS_ERR_NOT_FOUND);
	CHECK(dircache_list(dc, "no/such", &(struct dc_listing *){0}) ==
	      DMFS_ERR_NOT_FOUND);
	CHECK(DMFS_STAT_GET(requests) == before + 1); /* only "no/such" */

	/* Within the TTL a change is not seen; after invalidation it is. */
	put("d/x/new.bin", "n");
	CHECK(names_are(dc, "d/x", "1.bin 2.bin "));
	dircache_invalidate_all(dc);
	CHECK(names_are(dc, "d/x", "1.bin 2.bin new.bin "));
	dircache_free(dc);

	/* TTL 0: every call lists again. */
	CHECK(dircache_new(st, 0, hide, &dc) == 0);
	before = DMFS_STAT_GET(requests);
	CHECK(names_are(dc, "d/y", "3.bin "));
	CHECK(names_are(dc, "d/y", "3.bin "));
	CHECK(DMFS_STAT_GET(requests) >= before + 2);
	dircache_free(dc);

	/* Names that are not UTF-8 are hidden, and counted once however
	 * many listings meet them (delimited, tree prefetch, again after
	 * the TTL); a directory's own marker is not one. */
	put("u/ok.txt", "ok");
	put("u/bad\xff.txt", "x");
	put("u/sub\xfe/in.txt", "x");
	uint64_t hidden0 = keyname_hidden_count();
	CHECK(dircache_new(st, 0, hide, &dc) == 0);
	CHECK(names_are(dc, "u", "ok.txt "));
	CHECK(keyname_hidden_count() == hidden0 + 2);
	CHECK(names_are(dc, "", "a.txt d/ u/ "));
	usleep(300000); /* the tree prefetch the root listing started */
	CHECK(names_are(dc, "u", "ok.txt "));
	CHECK(dircache_stat(dc, "u/bad\xff.txt", &e) == DMFS_ERR_NOT_FOUND);
	CHECK(dircache_stat(dc, "u/sub\xfe", &e) == DMFS_ERR_NOT_FOUND);
	CHECK(keyname_hidden_count() == hidden0 + 2);
	dircache_free(dc);

	/* More directories than the table keeps (4096): the tree prefetch
	 * publishes them all, the table trims itself, and every directory
	 * still lists right (from the table or listed again). */
	snprintf(p, sizeof(p), "%s/many", root);
	CHECK(mkdir(p, 0755) == 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(p, sizeof(p), "%s/many/s%04d", root, i);
		CHECK(mkdir(p, 0755) == 0);
		snprintf(p + strlen(p), sizeof(p) - strlen(p), "/f");
		FILE *f = fopen(p, "w");
		CHECK(f != NULL);
		if (f)
			fclose(f);
	}
	CHECK(dircache_new(st, 30, hide, &dc) == 0);
	CHECK(dircache_stat(dc, "many/s0000", &e) == 0 && e.is_dir);
	usleep(1500000);
	CHECK(names_are(dc, "many/s0007", "f "));
	CHECK(names_are(dc, "many/s4999", "f "));
	CHECK(dircache_stat(dc, "many/s2500/f", &e) == 0 && !e.is_dir);
	dircache_free(dc);
	st->ops->destroy(st);
	snprintf(p, sizeof(p), "rm -rf '%s'", root);
	CHECK(system(p) == 0);
	return unit_done("test_dircache");
}
