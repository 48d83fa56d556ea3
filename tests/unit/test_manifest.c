/*
 * test_manifest.c - manifests and refs: a write/read round trip of awkward
 * paths, zero-copy entries and metadata; every way a manifest file can be
 * malformed (each reported with its line number); per-directory totals;
 * the file hash against an independent sha256; header JSON; ref names;
 * and refs on a file:// store in a temporary directory, including a
 * server that ignores If-None-Match while another writer races.
 *
 * Expected failures log warnings; TEST_VERBOSE=1 shows them.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "dmfs/log.h"
#include "dmfs/manifest.h"
#include "dmfs/refs.h"
#include "dmfs/store_file.h"
#include "unit.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char root[] = "/tmp/test_manifest.XXXXXX";

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", root, name);
}

/* --- files --- */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[n] = '\0';
	*len = (size_t)n;
	fclose(f);
	return buf;
}

static void spit(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, len, f) != len) {
		fprintf(stderr, "cannot write %s\n", path);
		exit(1);
	}
	fclose(f);
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char d[32];
	unsigned int dl = 0;

	EVP_Digest(p, n, d, &dl, EVP_sha256(), NULL);
	for (unsigned int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.' ||
		     strncmp(de->d_name, ".fetch", 6) == 0;
	if (d)
		closedir(d);
	return n;
}

/* --- a sample manifest --- */

struct sample {
	const char *path;
	uint64_t size;
	const char *sha;
	const char *key, *version_id, *etag, *meta;
};

/* Not in byte order: write_samples sorts them. */
static const struct sample samples[] = {
    {"README.md", 10, HEX_A, NULL, NULL, "e1", NULL},
    {"chess/0001/first_frame.png", 2048, HEX_B, NULL, NULL, "",
     "{ \"difficulty\": \"hard\", \"episode\": 5 }"},
    {"chess/0002/x.bin", 7, "", "live/chess/0002/x.bin", "v123", "abc-1", NULL},
    {"q/\"quoted\" name\\back.txt", 1, HEX_A, NULL, NULL, "", "{}"},
    {"q/new\nline\ttab", 0, HEX_B, NULL, NULL, "", NULL},
    {"z.txt", 5497558138880ull, HEX_A, NULL, NULL, "", NULL},
    {"donn\u00e9es/\u00fcn\u00efcode \u2713.txt", 3, HEX_B, NULL, NULL, "",
     "{\"label\":\"caf\u00e9\",\"score\":0.5}"},
};
#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

static void to_entry(const struct sample *s, struct manifest_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->path = (char *)s->path;
	e->size = s->size;
	e->mode = 0644;
	e->mtime = 1736937000;
	snprintf(e->sha256, sizeof(e->sha256), "%s", s->sha);
	snprintf(e->etag, sizeof(e->etag), "%s", s->etag);
	e->key = (char *)s->key;
	e->version_id = (char *)s->version_id;
	e->meta_json = (char *)s->meta;
}

static void fill_header(struct manifest_header *h)
{
	memset(h, 0, sizeof(*h));
	h->format = MANIFEST_FORMAT;
	h->kind = strdup("dataset");
	h->name = strdup("vmeval");
	h->version = strdup("v1.1");
	h->created = 1736937000;
	h->author = strdup("ann@node1");
	h->message = strdup("first \"frozen\" cut\nsecond line");
	h->parent = strdup(HEX_B);
	h->source = strdup("live/vmeval");
}

/* Write the samples to name; hash receives its sha256.  0 or error. */
static int write_samples(const char *name, char hash[65])
{
	struct manifest_writer *w = NULL;
	struct manifest_header h;
	char path[4096];
	size_t order[NSAMPLES];
	int rc;

	/* The table is not in byte order on purpose (the UTF-8 path sorts
	 * last); add in strcmp order. */
	for (size_t i = 0; i < NSAMPLES; i++)
		order[i] = i;
	for (size_t i = 0; i < NSAMPLES; i++)
		for (size_t j = i + 1; j < NSAMPLES; j++)
			if (strcmp(samples[order[j]].path,
				   samples[order[i]].path) < 0) {
				size_t t = order[i];
				order[i] = order[j];
				order[j] = t;
			}
	path_of(path, sizeof(path), name);
	fill_header(&h);
	rc = manifest_writer_open(root, &w);
	for (size_t i = 0; !rc && i < NSAMPLES; i++) {
		struct manifest_entry e;
		to_entry(&samples[order[i]], &e);
		rc = manifest_writer_add(w, &e);
	}
	if (!rc)
		rc = manifest_writer_finish(w, &h, path, hash);
	else
		manifest_writer_abort(w);
	manifest_header_clear(&h);
	return rc;
}

static const struct manifest_dirstat *find_dir(const struct manifest_header *h,
					       const char *name)
{
	for (size_t i = 0; i < h->ndirs; i++)
		if (!strcmp(h->dirs[i].name, name))
			return &h->dirs[i];
	return NULL;
}

static void test_round_trip(void)
{
	char path[4096], hash[65] = "", want[65] = "", msg[512] = "";
	struct manifest_reader *r = NULL;
	const struct manifest_header *h;
	const struct manifest_dirstat *ds;
	struct manifest_entry e;
	size_t len = 0, n = 0;
	char *text;
	int rc;

	CHECK(write_samples("m1", hash) == 0);
	path_of(path, sizeof(path), "m1");
	text = slurp(path, &len);
	CHECK(text != NULL);
	if (!text)
		return;
	sha256_hex(text, len, want);
	CHECK_STR(hash, want);
	CHECK(!strncmp(text, "{\"dmfs_manifest\":1,", 19));
	CHECK(len > 0 && text[len - 1] == '\n');
	/* metadata embedded as an object, compact, not as a string */
	CHECK(strstr(text, "\"meta\":{\"difficulty\":\"hard\",\"episode\":5}"));
	/* big sizes as exact integers */
	CHECK(strstr(text, "\"size\":5497558138880,"));
	/* UTF-8 stays as it is, quotes are escaped */
	CHECK(strstr(text, "\"path\":\"donn\u00e9es/"));
	CHECK(strstr(text, "\"path\":\"q/\\\"quoted\\\" name\\\\back.txt\""));
	/* one line per entry: newlines inside paths are escaped */
	n = 0;
	for (size_t i = 0; i < len; i++)
		n += text[i] == '\n';
	CHECK(n == NSAMPLES + 1);
	free(text);

	rc = manifest_reader_open(path, &r, msg, sizeof(msg));
	CHECK(rc == 0);
	if (rc) {
		fprintf(stderr, "open: %s\n", msg);
		return;
	}
	h = manifest_reader_header(r);
	CHECK_STR(h->kind, "dataset");
	CHECK_STR(h->name, "vmeval");
	CHECK_STR(h->version, "v1.1");
	CHECK(h->created == 1736937000);
	CHECK_STR(h->author, "ann@node1");
	CHECK_STR(h->message, "first \"frozen\" cut\nsecond line");
	CHECK_STR(h->parent, HEX_B);
	CHECK_STR(h->source, "live/vmeval");
	CHECK(!h->zero_copy);
	CHECK(h->files == NSAMPLES);
	CHECK(h->bytes == 10 + 2048 + 7 + 1 + 0 + 5497558138880ull + 3);
	/* per top-level directory, "." for the root */
	CHECK(h->ndirs == 4);
	ds = find_dir(h, ".");
	CHECK(ds && ds->files == 2 && ds->bytes == 10 + 5497558138880ull);
	ds = find_dir(h, "chess");
	CHECK(ds && ds->files == 2 && ds->bytes == 2048 + 7);
	ds = find_dir(h, "q");
	CHECK(ds && ds->files == 2 && ds->bytes == 1);
	ds = find_dir(h, "donn\u00e9es");
	CHECK(ds && ds->files == 1 && ds->bytes == 3);
	for (size_t i = 1; i < h->ndirs; i++)
		CHECK(strcmp(h->dirs[i - 1].name, h->dirs[i].name) < 0);

	n = 0;
	while ((rc = manifest_reader_next(r, &e, msg, sizeof(msg))) == 1) {
		const struct sample *s = NULL;
		for (size_t i = 0; i < NSAMPLES; i++)
			if (!strcmp(samples[i].path, e.path))
				s = &samples[i];
		CHECK(s != NULL);
		if (!s) {
			manifest_entry_clear(&e);
			continue;
		}
		n++;
		CHECK(e.size == s->size);
		CHECK(e.mode == 0644);
		CHECK(e.mtime == 1736937000);
		CHECK_STR(e.sha256, s->sha);
		CHECK_STR(e.etag, s->etag);
		CHECK((e.key == NULL) == (s->key == NULL));
		if (s->key) {
			CHECK_STR(e.key, s->key);
			CHECK_STR(e.version_id, s->version_id);
		}
		CHECK((e.meta_json == NULL) == (s->meta == NULL));
		manifest_entry_clear(&e);
	}
	CHECK(rc == 0);
	CHECK(n == NSAMPLES);
	CHECK(manifest_reader_next(r, &e, msg, sizeof(msg)) == 0);
	manifest_reader_close(r);

	/* metadata comes back as compact JSON text */
	r = NULL;
	CHECK(manifest_reader_open(path, &r, msg, sizeof(msg)) == 0);
	if (!r)
		return;
	CHECK(manifest_reader_next(r, &e, msg, sizeof(msg)) == 1);
	CHECK_STR(e.path, "README.md");
	manifest_entry_clear(&e);
	CHECK(manifest_reader_next(r, &e, msg, sizeof(msg)) == 1);
	CHECK_STR(e.path, "chess/0001/first_frame.png");
	CHECK_STR(e.meta_json, "{\"difficulty\":\"hard\",\"episode\":5}");
	manifest_entry_clear(&e);
	manifest_reader_close(r);
}

/* --- the writer refuses bad entries --- */

static int add_path(struct manifest_writer *w, const char *p)
{
	struct manifest_entry e = {.path = (char *)p, .mode = 0644};

	memcpy(e.sha256, HEX_A, 65);
	return manifest_writer_add(w, &e);
}

static void test_writer_rejects(void)
{
	struct manifest_writer *w = NULL;
	struct manifest_entry e;
	char longp[MANIFEST_PATH_MAX + 2];

	CHECK(manifest_writer_open(root, &w) == 0);
	if (!w)
		return;
	CHECK(add_path(w, "b/x") == 0);
	CHECK(add_path(w, "a") == DMFS_ERR_INVAL);   /* out of order */
	CHECK(add_path(w, "b/x") == DMFS_ERR_INVAL); /* duplicate */
	CHECK(add_path(w, "b/w") == DMFS_ERR_INVAL);
	CHECK(add_path(w, "/c") == DMFS_ERR_INVAL);
	CHECK(add_path(w, "c//d") == DMFS_ERR_INVAL);
	CHECK(add_path(w, "c/./d") == DMFS_ERR_INVAL);
	CHECK(add_path(w, "c/../d") == DMFS_ERR_INVAL);
	CHECK(add_path(w, "..") == DMFS_ERR_INVAL);
	CHECK(add_path(w, "c/") == DMFS_ERR_INVAL);
	CHECK(add_path(w, "") == DMFS_ERR_INVAL);
	memset(longp, 'c', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	CHECK(add_path(w, longp) == DMFS_ERR_INVAL); /* 1025 bytes */
	longp[MANIFEST_PATH_MAX] = '\0';
	CHECK(add_path(w, longp) == 0); /* 1024 bytes */
	CHECK(add_path(w, "d/...") == 0);
	CHECK(add_path(w, "d/.hidden") == 0);

	memset(&e, 0, sizeof(e));
	e.path = "e/1";
	CHECK(manifest_writer_add(w, &e) == DMFS_ERR_INVAL); /* no content */
	memcpy(
	    e.sha256,
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	    65);
	CHECK(manifest_writer_add(w, &e) == DMFS_ERR_INVAL); /* uppercase */
	memcpy(e.sha256, HEX_A, 65);
	e.meta_json = "[1]";
	CHECK(manifest_writer_add(w, &e) == DMFS_ERR_INVAL);
	e.meta_json = "{\"a\":";
	CHECK(manifest_writer_add(w, &e) == DMFS_ERR_INVAL);
	e.meta_json = "{\"a\":1}";
	e.mode = 0100644;
	CHECK(manifest_writer_add(w, &e) == DMFS_ERR_INVAL);
	e.mode = 0755;
	CHECK(manifest_writer_add(w, &e) == 0);
	e.path = "e/2";
	e.meta_json = NULL;
	memset(e.sha256, 0, sizeof(e.sha256));
	e.key = "e/2";
	CHECK(manifest_writer_add(w, &e) == 0); /* a pin without sha256 */
	manifest_writer_abort(w);
	manifest_writer_abort(NULL);
}

/* --- the reader refuses bad files --- */

/* The header line of a manifest with `files` entries of `bytes`. */
static void header_line(char *out, size_t n, int files, int bytes)
{
	snprintf(out, n,
		 "{\"dmfs_manifest\":1,\"kind\":\"snapshot\",\"name\":\"S\","
		 "\"created\":5,\"files\":%d,\"bytes\":%d}\n",
		 files, bytes);
}

#define ENTRY(p)                                                               \
	"{\"path\":\"" p "\",\"size\":1,\"mode\":420,\"mtime\":1,"             \
	"\"sha256\":\"" HEX_A "\"}\n"

/*
 * Read body (after a header of `files` entries) to the end.  Returns the
 * first error (negative from next, positive from open) with msg; 0 when
 * it reads cleanly.
 */
static int read_text(const char *body, int files, char *msg, size_t msgsz)
{
	char path[4096], hdr[512], *all;
	struct manifest_reader *r = NULL;
	struct manifest_entry e;
	size_t hl, bl = strlen(body);
	int rc;

	header_line(hdr, sizeof(hdr), files, files);
	hl = strlen(hdr);
	all = malloc(hl + bl + 1);
	memcpy(all, hdr, hl);
	memcpy(all + hl, body, bl + 1);
	path_of(path, sizeof(path), "bad");
	spit(path, all, hl + bl);
	free(all);
	msg[0] = '\0';
	rc = manifest_reader_open(path, &r, msg, msgsz);
	if (rc)
		return rc;
	while ((rc = manifest_reader_next(r, &e, msg, msgsz)) == 1)
		manifest_entry_clear(&e);
	manifest_reader_close(r);
	return rc;
}

static void test_reader_rejects(void)
{
	char msg[512], path[4096], *big;
	struct manifest_reader *r = NULL;
	size_t n;

	CHECK(read_text(ENTRY("a") ENTRY("b"), 2, msg, sizeof(msg)) == 0);
	CHECK(read_text("", 0, msg, sizeof(msg)) == 0);

	CHECK(read_text(ENTRY("a") "{not json\n", 2, msg, sizeof(msg)) ==
	      -DMFS_ERR_INVAL);
	CHECK(!strncmp(msg, "line 3: ", 8));
	CHECK(read_text(ENTRY("b") ENTRY("a"), 2, msg, sizeof(msg)) ==
	      -DMFS_ERR_INVAL);
	CHECK(!strncmp(msg, "line 3: ", 8) && strstr(msg, "order"));
	CHECK(read_text(ENTRY("a") ENTRY("a"), 2, msg, sizeof(msg)) ==
	      -DMFS_ERR_INVAL);
	CHECK(!strncmp(msg, "line 3: ", 8));
	/* cut inside a line */
	CHECK(read_text(ENTRY("a") "{\"path\":\"b\",\"si", 2, msg,
			sizeof(msg)) == -DMFS_ERR_INVAL);
	CHECK(!strncmp(msg, "line 3: ", 8) && strstr(msg, "truncated"));
	/* cut at a line boundary: the totals do not add up */
	CHECK(read_text(ENTRY("a"), 2, msg, sizeof(msg)) == -DMFS_ERR_INVAL);
	CHECK(!strncmp(msg, "line 3: ", 8) && strstr(msg, "header says"));
	CHECK(read_text(ENTRY("a") ENTRY("b") ENTRY("c"), 2, msg,
			sizeof(msg)) == -DMFS_ERR_INVAL);
	CHECK(!strncmp(msg, "line 5: ", 8));
	CHECK(read_text(ENTRY("a") "\n", 2, msg, sizeof(msg)) ==
	      -DMFS_ERR_INVAL);
	CHECK(!strncmp(msg, "line 3: ", 8));
	CHECK(read_text(ENTRY("a/../b"), 1, msg, sizeof(msg)) ==
	      -DMFS_ERR_INVAL);
	CHECK(!strncmp(msg, "line 2: ", 8) && strstr(msg, ".."));
	CHECK(read_text(ENTRY("/a"), 1, msg, sizeof(msg)) == -DMFS_ERR_INVAL);
	CHECK(read_text(ENTRY("a\\u0000b"), 1, msg, sizeof(msg)) ==
	      -DMFS_ERR_INVAL);
	CHECK(!strncmp(msg, "line 2: ", 8) && strstr(msg, "NUL"));
	/* an escaped backslash before "u0000" is not a NUL */
	CHECK(read_text(ENTRY("a\\\\u0000b"), 1, msg, sizeof(msg)) == 0);
	CHECK(read_text("{\"path\":\"a\",\"size\":1,\"mode\":420,\"mtime\":1,"
			"\"sha256\":\"" HEX_A "\",\"meta\":\"x\"}\n",
			1, msg, sizeof(msg)) == -DMFS_ERR_INVAL);
	CHECK(!strncmp(msg, "line 2: ", 8) && strstr(msg, "meta"));
	CHECK(read_text("{\"path\":\"a\",\"size\":-1,\"mode\":420,\"mtime\":1,"
			"\"sha256\":\"" HEX_A "\"}\n",
			1, msg, sizeof(msg)) == -DMFS_ERR_INVAL);
	CHECK(read_text("{\"path\":\"a\",\"size\":1.5,\"mode\":420,\"mtime\":1,"
			"\"sha256\":\"" HEX_A "\"}\n",
			1, msg, sizeof(msg)) == -DMFS_ERR_INVAL);
	CHECK(
	    read_text("{\"path\":\"a\",\"size\":1,\"mode\":420,\"mtime\":1}\n",
		      1, msg, sizeof(msg)) == -DMFS_ERR_INVAL);
	CHECK(!strncmp(msg, "line 2: ", 8) && strstr(msg, "sha256"));
	CHECK(read_text("[1]\n", 1, msg, sizeof(msg)) == -DMFS_ERR_INVAL);
	CHECK(read_text(ENTRY("a") "{} {}\n", 2, msg, sizeof(msg)) ==
	      -DMFS_ERR_INVAL);
	/* a line longer than MANIFEST_LINE_MAX */
	n = MANIFEST_LINE_MAX + 100;
	big = malloc(n + 2);
	memset(big, ' ', n);
	memcpy(big + n - strlen(ENTRY("a")), ENTRY("a"), strlen(ENTRY("a")));
	big[n] = '\0';
	CHECK(read_text(big, 1, msg, sizeof(msg)) == -DMFS_ERR_INVAL);
	CHECK(!strncmp(msg, "line 2: ", 8) && strstr(msg, "longer"));
	free(big);

	/* bad headers fail at open, with line 1 */
	path_of(path, sizeof(path), "badh");
	spit(path, "", 0);
	CHECK(manifest_reader_open(path, &r, msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK(!strncmp(msg, "line 1: ", 8));
	spit(path, "{\"foo\":1}\n", 10);
	CHECK(manifest_reader_open(path, &r, msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK(!strncmp(msg, "line 1: ", 8));
	spit(path, ENTRY("a"), strlen(ENTRY("a")));
	CHECK(manifest_reader_open(path, &r, msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK(!strncmp(msg, "line 1: ", 8));
	const char *v2 = "{\"dmfs_manifest\":2,\"kind\":\"snapshot\",\"name\":"
			 "\"S\",\"created\":5,\"files\":0,\"bytes\":0}\n";
	spit(path, v2, strlen(v2));
	CHECK(manifest_reader_open(path, &r, msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK(!strncmp(msg, "line 1: ", 8) && strstr(msg, "format 2"));
	CHECK(r == NULL);
	path_of(path, sizeof(path), "missing");
	CHECK(manifest_reader_open(path, &r, msg, sizeof(msg)) ==
	      DMFS_ERR_NOT_FOUND);
}

/* --- totals beyond MANIFEST_DIRS_MAX directories --- */

static void test_many_dirs(void)
{
	struct manifest_writer *w = NULL;
	struct manifest_header h = {0};
	char path[4096], hash[65], p[64];
	const struct manifest_dirstat *ds;
	int rc;

	CHECK(manifest_writer_open(NULL, &w) == 0);
	if (!w)
		return;
	rc = add_path(w, "0-root-file");
	for (int i = 0; !rc && i < MANIFEST_DIRS_MAX + 2; i++) {
		snprintf(p, sizeof(p), "d%05d/f", i);
		rc = add_path(w, p);
		snprintf(p, sizeof(p), "d%05d/g", i);
		if (!rc)
			rc = add_path(w, p);
	}
	CHECK(rc == 0);
	h.kind = strdup("snapshot");
	h.name = strdup("S");
	path_of(path, sizeof(path), "many");
	CHECK(manifest_writer_finish(w, &h, path, hash) == 0);
	CHECK(h.files == 1 + 2 * (MANIFEST_DIRS_MAX + 2));
	CHECK(h.ndirs == MANIFEST_DIRS_MAX + 2);
	ds = find_dir(&h, MANIFEST_DIRS_OTHER);
	CHECK(ds && ds->files == 4);
	ds = find_dir(&h, ".");
	CHECK(ds && ds->files == 1);
	ds = find_dir(&h, "d00999");
	CHECK(ds && ds->files == 2);
	CHECK(find_dir(&h, "d01000") == NULL);
	manifest_header_clear(&h);
}

/* --- header JSON --- */

static char *must(char *p)
{
	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	return p;
}

static void test_header_json(void)
{
	struct manifest_header h, back;
	struct manifest_dirstat dirs[2] = {{"a", 3, 300}, {".", 1, 5}};
	char msg[256] = "", *text;

	fill_header(&h);
	h.zero_copy = true;
	h.files = 4;
	h.bytes = 305;
	h.dirs = dirs;
	h.ndirs = 2;
	text = must(manifest_header_to_json(&h));
	h.dirs = NULL;
	h.ndirs = 0;
	CHECK(!strchr(text, '\n'));
	CHECK(strstr(text, "\"created_iso\":\"2025-01-15T10:30:00Z\""));
	CHECK(strstr(text, "\"mode\":\"zero-copy\""));
	CHECK(manifest_header_from_json(text, strlen(text), &back, msg,
					sizeof(msg)) == 0);
	CHECK(back.format == MANIFEST_FORMAT);
	CHECK_STR(back.kind, "dataset");
	CHECK_STR(back.name, "vmeval");
	CHECK_STR(back.version, "v1.1");
	CHECK_STR(back.author, "ann@node1");
	CHECK_STR(back.message, h.message);
	CHECK_STR(back.parent, HEX_B);
	CHECK_STR(back.source, "live/vmeval");
	CHECK(back.created == 1736937000);
	CHECK(back.zero_copy);
	CHECK(back.files == 4 && back.bytes == 305);
	CHECK(back.ndirs == 2 && back.dirs && !strcmp(back.dirs[0].name, "a") &&
	      back.dirs[0].files == 3 && back.dirs[0].bytes == 300 &&
	      !strcmp(back.dirs[1].name, ".") && back.dirs[1].bytes == 5);
	manifest_header_clear(&back);
	free(text);

	/* a snapshot: no version, no parent (null) */
	free(h.version);
	h.version = NULL;
	free(h.parent);
	h.parent = NULL;
	free(h.kind);
	h.kind = strdup("snapshot");
	text = must(manifest_header_to_json(&h));
	CHECK(strstr(text, "\"parent\":null"));
	CHECK(manifest_header_from_json(text, strlen(text), &back, msg,
					sizeof(msg)) == 0);
	CHECK(back.version == NULL && back.parent == NULL);
	manifest_header_clear(&back);
	free(text);

	/* a dataset needs its version */
	free(h.kind);
	h.kind = strdup("dataset");
	text = must(manifest_header_to_json(&h));
	CHECK(manifest_header_from_json(text, strlen(text), &back, msg,
					sizeof(msg)) == DMFS_ERR_INVAL);
	CHECK(strstr(msg, "version") != NULL);
	free(text);
	manifest_header_clear(&h);

	text = "{\"dmfs_manifest\":1,\"kind\":\"thing\",\"name\":\"x\","
	       "\"created\":1,\"files\":0,\"bytes\":0}";
	CHECK(manifest_header_from_json(text, strlen(text), &back, msg,
					sizeof(msg)) == DMFS_ERR_INVAL);
	text = "{\"dmfs_manifest\":1,\"kind\":\"snapshot\",\"name\":\"x\","
	       "\"created\":1,\"files\":0,\"bytes\":0,\"parent\":\"abc\"}";
	CHECK(manifest_header_from_json(text, strlen(text), &back, msg,
					sizeof(msg)) == DMFS_ERR_INVAL);
	text = "{\"dmfs_manifest\":1,\"kind\":\"snapshot\",\"name\":\"x\","
	       "\"created\":1,\"files\":0}";
	CHECK(manifest_header_from_json(text, strlen(text), &back, msg,
					sizeof(msg)) == DMFS_ERR_INVAL);
	CHECK(strstr(msg, "bytes") != NULL);
}

/* --- keys --- */

static void test_keys(void)
{
	char k[128];

	manifest_store_key(HEX_B, k, sizeof(k));
	CHECK_STR(k, ".dmfs/manifests/sha256/" HEX_B);
	manifest_object_key(HEX_B, k, sizeof(k));
	CHECK_STR(
	    k,
	    ".dmfs/objects/sha256/01/"
	    "23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
}

/* --- ref names --- */

static void test_ref_names(void)
{
	static const char *const good[] = {
	    "snapshots/20250115T103000Z", "datasets/vmeval/v1.1",
	    "datasets/a@b+c=d_e-f/1",	  "snapshots/.x",
	    "datasets/v/latest2",
	};
	static const char *const bad[] = {
	    "snapshots/",
	    "snapshots",
	    "snapshots/a/b",
	    "datasets/x",
	    "datasets/x/",
	    "datasets//v1",
	    "datasets/x/latest",
	    "snapshots/latest",
	    "snapshots/..",
	    "snapshots/.",
	    "foo/x",
	    "datasets/x/v 1",
	    "datasets/x/v1/extra",
	    "/snapshots/x",
	    "datasets/x/v\u00e9",
	    "",
	};
	char msg[256], name[300];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int rc = refs_check_name(good[i], msg, sizeof(msg));
		CHECK(rc == 0);
		if (rc)
			fprintf(stderr, "  %s: %s\n", good[i], msg);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg[0] = '\0';
		int rc = refs_check_name(bad[i], msg, sizeof(msg));
		CHECK(rc == DMFS_ERR_INVAL && msg[0]);
		if (rc != DMFS_ERR_INVAL)
			fprintf(stderr, "  accepted: '%s'\n", bad[i]);
	}
	snprintf(name, sizeof(name), "snapshots/%0200d", 7);
	CHECK(refs_check_name(name, msg, sizeof(msg)) == 0);
	snprintf(name, sizeof(name), "snapshots/%0201d", 7);
	CHECK(refs_check_name(name, msg, sizeof(msg)) == DMFS_ERR_INVAL);
}

/* --- refs on a file:// store --- */

/*
 * A store that ignores If-None-Match (as s3rver does), and on the first
 * put of a ref also lets a "racing writer" overwrite it right after.
 */
struct racy_store {
	struct dmfs_store base;
	struct dmfs_store *inner;
	struct dmfs_store_ops ops;
	int race;
};

static int racy_put(struct dmfs_store *st, const char *key,
		    const struct dmfs_put_src *src,
		    const struct dmfs_put_opts *o, struct dmfs_obj_info *out,
		    struct dmfs_err_detail *d)
{
	struct racy_store *r = (struct racy_store *)st;
	struct dmfs_put_opts plain = *o;
	int rc;

	plain.if_none_match = false;
	rc = r->inner->ops->put(r->inner, key, src, &plain, out, d);
	if (!rc && r->race) {
		static const char other[] =
		    "{\"manifest\":\"" HEX_A
		    "\",\"writer\":\"someone\",\"header\":{\"dmfs_manifest\":1,"
		    "\"kind\":\"snapshot\",\"name\":\"R\",\"created\":1,"
		    "\"files\":0,\"bytes\":0}}";
		struct dmfs_put_src s2 = {
		    .buf = other, .fd = -1, .len = sizeof(other) - 1};
		rc = r->inner->ops->put(r->inner, key, &s2, &plain, NULL, d);
	}
	return rc;
}

static int racy_head(struct dmfs_store *st, const char *key,
		     struct dmfs_obj_info *out, struct dmfs_err_detail *d)
{
	struct racy_store *r = (struct racy_store *)st;

	return r->inner->ops->head(r->inner, key, out, d);
}

static int racy_get_stream(struct dmfs_store *st, const char *key,
			   const struct dmfs_pin *pin,
			   const struct dmfs_sink *sink,
			   struct dmfs_obj_info *info,
			   struct dmfs_err_detail *d)
{
	struct racy_store *r = (struct racy_store *)st;

	return r->inner->ops->get_stream(r->inner, key, pin, sink, info, d);
}

static struct dmfs_store *racy_new(struct dmfs_store *inner,
				   struct racy_store *r, int race)
{
	memset(r, 0, sizeof(*r));
	r->inner = inner;
	r->ops = *inner->ops;
	r->ops.put = racy_put;
	r->ops.head = racy_head;
	r->ops.get_stream = racy_get_stream;
	r->ops.destroy = NULL;
	r->base.ops = &r->ops;
	r->race = race;
	return &r->base;
}

static int create_ref(struct dmfs_store *st, const char *name, const char *kind,
		      const char *nm, const char *version, int64_t created,
		      const char *hex)
{
	struct manifest_header h = {.format = MANIFEST_FORMAT};
	struct dmfs_err_detail d = {0};
	int rc;

	h.kind = strdup(kind);
	h.name = strdup(nm);
	h.version = version ? strdup(version) : NULL;
	h.created = created;
	h.files = 3;
	h.bytes = 42;
	rc = refs_create(st, name, hex, &h, &d);
	manifest_header_clear(&h);
	return rc;
}

static void test_refs(void)
{
	struct dmfs_store *st = NULL;
	struct dmfs_err_detail d = {0};
	struct ref_info *refs = NULL, one = {0};
	struct racy_store racy;
	char dir[4096], msg[256], *body;
	size_t n = 0;
	int rc;

	path_of(dir, sizeof(dir), "bucket");
	mkdir(dir, 0700);
	rc = store_file_new(dir, &st, msg, sizeof(msg));
	CHECK(rc == 0);
	if (rc)
		return;
	CHECK(create_ref(st, "datasets/vm/v1", "dataset", "vm", "v1", 2000,
			 HEX_A) == 0);
	CHECK(create_ref(st, "datasets/vm/v1", "dataset", "vm", "v1", 2001,
			 HEX_B) == DMFS_ERR_EXISTS);
	CHECK(create_ref(st, "datasets/vm/latest", "dataset", "vm", "latest",
			 2000, HEX_A) == DMFS_ERR_INVAL);
	CHECK(create_ref(st, "datasets/vm/v2", "dataset", "vm", "v2", 2000,
			 "nothex") == DMFS_ERR_INVAL);
	CHECK(create_ref(st, "snapshots/S1", "snapshot", "S1", NULL, 1000,
			 HEX_B) == 0);
	CHECK(create_ref(st, "datasets/vm/v2", "dataset", "vm", "v2", 3000,
			 HEX_B) == 0);
	CHECK(create_ref(st, "datasets/vm/v0", "dataset", "vm", "v0", 2000,
			 HEX_A) == 0);

	/* the ref as stored: manifest, writer nonce, embedded header */
	CHECK(dmfs_store_get_all(st, ".dmfs/refs/datasets/vm/v1", 1 << 20,
				 &body, &n, &d) == 0);
	CHECK(body && strstr(body, "\"manifest\":\"" HEX_A "\""));
	CHECK(body && strstr(body, "\"writer\":\""));
	CHECK(body && strstr(body, "\"header\":{\"dmfs_manifest\":1,"));
	free(body);

	/* things under refs/ that are not refs are skipped */
	struct dmfs_put_src junk = {.buf = "junk", .fd = -1, .len = 4};
	struct dmfs_put_opts po = {0};
	CHECK(st->ops->put(st, ".dmfs/refs/snapshots/broken", &junk, &po, NULL,
			   &d) == 0);
	CHECK(st->ops->put(st, ".dmfs/refs/README", &junk, &po, NULL, &d) == 0);

	CHECK(refs_list(st, &refs, &n, &d) == 0);
	CHECK(n == 4);
	if (n == 4) {
		CHECK_STR(refs[0].name, "datasets/vm/v2");
		/* v0 and v1 share a creation time: the later name first,
		 * as `latest` picks it */
		CHECK_STR(refs[1].name, "datasets/vm/v1");
		CHECK_STR(refs[2].name, "datasets/vm/v0");
		CHECK_STR(refs[3].name, "snapshots/S1");
		CHECK_STR(refs[0].manifest, HEX_B);
		CHECK_STR(refs[2].manifest, HEX_A);
		CHECK(refs[2].h.created == 2000 && refs[2].h.files == 3);
		CHECK_STR(refs[3].h.kind, "snapshot");
	}
	refs_free(refs, n);
	refs = NULL;

	CHECK(refs_read(st, "datasets/vm/v1", &one, &d) == 0);
	CHECK_STR(one.name, "datasets/vm/v1");
	CHECK_STR(one.manifest, HEX_A);
	CHECK_STR(one.h.version, "v1");
	CHECK(one.h.bytes == 42);
	ref_info_clear(&one);
	CHECK(refs_read(st, "snapshots/broken", &one, &d) == DMFS_ERR_INVAL);
	CHECK(refs_read(st, "snapshots/none", &one, &d) == DMFS_ERR_NOT_FOUND);

	CHECK(refs_delete(st, "datasets/vm/v1", &d) == 0);
	CHECK(refs_delete(st, "datasets/vm/v1", &d) == DMFS_ERR_NOT_FOUND);
	CHECK(refs_read(st, "datasets/vm/v1", &one, &d) == DMFS_ERR_NOT_FOUND);
	CHECK(refs_delete(st, "datasets/vm/latest", &d) == DMFS_ERR_INVAL);
	CHECK(refs_list(st, &refs, &n, &d) == 0);
	CHECK(n == 3);
	refs_free(refs, n);
	refs_free(NULL, 0);

	/* a server that ignores If-None-Match: the read-back decides */
	CHECK(create_ref(racy_new(st, &racy, 0), "snapshots/R0", "snapshot",
			 "R0", NULL, 1, HEX_A) == 0);
	CHECK(create_ref(racy_new(st, &racy, 1), "snapshots/R1", "snapshot",
			 "R1", NULL, 1, HEX_A) == DMFS_ERR_EXISTS);
	st->ops->destroy(st);
}

/* --- fetching a manifest into the cache --- */

static void test_fetch(void)
{
	struct dmfs_store *st = NULL;
	struct dmfs_err_detail d = {0};
	char dir[4096], cache[4096], path[4200], want[4200], key[128];
	char hash[65], msg[256], *a, *b;
	size_t al = 0, bl = 0;
	int fd;

	path_of(dir, sizeof(dir), "bucket");
	path_of(cache, sizeof(cache), "cache/sub");
	if (store_file_new(dir, &st, msg, sizeof(msg)))
		return;
	CHECK(write_samples("m2", hash) == 0);
	path_of(path, sizeof(path), "m2");
	fd = open(path, O_RDONLY);
	a = slurp(path, &al);
	manifest_store_key(hash, key, sizeof(key));
	struct dmfs_put_src src = {.fd = fd, .len = al};
	struct dmfs_put_opts po = {0};
	CHECK(st->ops->put(st, key, &src, &po, NULL, &d) == 0);
	close(fd);

	CHECK(manifest_fetch(st, cache, hash, path, sizeof(path), &d) == 0);
	snprintf(want, sizeof(want), "%s/manifests/%s", cache, hash);
	CHECK_STR(path, want);
	b = slurp(path, &bl);
	CHECK(a && b && al == bl && !memcmp(a, b, al));
	free(b);
	/* present: no second download (the store copy is gone now) */
	CHECK(st->ops->del(st, key, &d) == 0);
	CHECK(manifest_fetch(st, cache, hash, path, sizeof(path), &d) == 0);
	CHECK(manifest_fetch(st, cache, HEX_A, path, sizeof(path), &d) ==
	      DMFS_ERR_NOT_FOUND);
	CHECK(manifest_fetch(st, cache, "zz", path, sizeof(path), &d) ==
	      DMFS_ERR_INVAL);
	/* bytes that do not match their name */
	manifest_store_key(HEX_B, key, sizeof(key));
	struct dmfs_put_src src2 = {.buf = a, .fd = -1, .len = al};
	CHECK(st->ops->put(st, key, &src2, &po, NULL, &d) == 0);
	CHECK(manifest_fetch(st, cache, HEX_B, path, sizeof(path), &d) ==
	      DMFS_ERR_CORRUPT);
	snprintf(want, sizeof(want), "%s/manifests/%s", cache, HEX_B);
	CHECK(access(want, F_OK) != 0);
	snprintf(want, sizeof(want), "%s/manifests", cache);
	CHECK(count_files(want) == 1); /* no temporary files left */
	CHECK(manifest_fetch(st, cache, HEX_A, path, 20, &d) ==
	      DMFS_ERR_TOO_BIG);
	free(a);
	st->ops->destroy(st);
}

int main(void)
{
	const char *v = getenv("TEST_VERBOSE");

	dmfs_log_set_level(v && *v == '1' ? DMFS_LOG_DEBUG
					  : DMFS_LOG_ERROR - 1);
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	test_round_trip();
	test_writer_rejects();
	test_reader_rejects();
	test_many_dirs();
	test_header_json();
	test_keys();
	test_ref_names();
	test_refs();
	test_fetch();
	unit_rm_tree(root);
	return unit_done("test_manifest");
}
