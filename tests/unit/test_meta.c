/*
 * test_meta.c - the metadata table against a file:// store in a temporary
 * directory, with several tables (cache directories) sharing it as
 * machines would share a bucket: a value set on A reaches B through a log
 * object; different fields of one path written on A and B both survive;
 * the same field written on both ends with the later change on both;
 * type mismatches and a bad change in the middle of a batch change
 * nothing; null removes; a late log whose name sorts early is still read;
 * a remote value of the wrong type is dropped; history lists changes old
 * to new; a fresh table starts from a checkpoint; prefixes; the schema;
 * changes survive kill -9 and a failed upload; and a 100 000-row batch
 * applied, flushed and merged, timed (rows/s is printed).
 */
#include "config.h"

#include <dirent.h>
#include <ftw.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dmfs/log.h"
#include "dmfs/meta.h"
#include "dmfs/store_open.h"
#include "unit.h"

#define BIG_N 100000
#define STORE_URI_LEN 4200

static char root[] = "/tmp/test_meta.XXXXXX";
static char store_uri[STORE_URI_LEN];
static struct dmfs_store *st;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct meta *open_table(const char *name)
{
	char dir[4200], msg[512] = "";
	struct meta *m = NULL;
	int rc;

	snprintf(dir, sizeof(dir), "%s/%s", root, name);
	rc = meta_open(dir, st, store_uri, &m, msg, sizeof(msg));
	if (rc || !m) {
		fprintf(stderr, "meta_open %s: %s: %s\n", name,
			dmfs_strerror(rc), msg);
		exit(1);
	}
	return m;
}

static struct mval mv_int(int64_t i)
{
	return (struct mval){.t = MV_INT, .i = i};
}

static struct mval mv_float(double f)
{
	return (struct mval){.t = MV_FLOAT, .f = f};
}

static struct mval mv_str(const char *s)
{
	return (struct mval){.t = MV_STRING, .s = (char *)s, .len = strlen(s)};
}

/* Apply one change; the result code, msg filled. */
static int set1(struct meta *m, const char *path, const char *field,
		const struct mval *v, char *msg, size_t msgsz)
{
	struct meta_batch *b = NULL;
	int rc = meta_batch_new(&b);

	if (!rc)
		rc = meta_batch_add(b, path, field, v);
	if (!rc)
		rc = meta_apply(m, b, msg, msgsz);
	meta_batch_free(b);
	return rc;
}

static void set_ok(struct meta *m, const char *path, const char *field,
		   struct mval v)
{
	char msg[512] = "";
	int rc = set1(m, path, field, &v, msg, sizeof(msg));

	CHECK(rc == 0);
	if (rc)
		fprintf(stderr, "  set %s %s: %s\n", path, field, msg);
}

static void flush_ok(struct meta *m)
{
	char msg[512] = "";
	int rc = meta_flush(m, msg, sizeof(msg));

	CHECK(rc == 0);
	if (rc)
		fprintf(stderr, "  flush: %s\n", msg);
}

static bool refresh_ok(struct meta *m)
{
	char msg[512] = "";
	bool changed = false;
	int rc = meta_refresh(m, &changed, msg, sizeof(msg));

	CHECK(rc == 0);
	if (rc)
		fprintf(stderr, "  refresh: %s\n", msg);
	return changed;
}

/* The row of path as compact JSON text (caller frees), "{}" when empty. */
static char *row_text(struct meta *m, const char *path)
{
	struct meta_row r;
	cJSON *j;
	char *s;

	if (meta_get(m, path, &r) != 0)
		return strdup("(error)");
	j = meta_row_to_json(&r);
	s = j ? cJSON_PrintUnformatted(j) : strdup("(nomem)");
	cJSON_Delete(j);
	meta_row_clear(&r);
	return s;
}

static void check_row(struct meta *m, const char *path, const char *want,
		      int line)
{
	char *got = row_text(m, path);

	if (strcmp(got, want)) {
		unit_failed++;
		fprintf(stderr, "%s:%d: row %s\n  got:  %s\n  want: %s\n",
			__FILE__, line, path, got, want);
	} else {
		unit_passed++;
	}
	free(got);
}
#define CHECK_ROW(m, path, want) check_row(m, path, want, __LINE__)

/* Every row of a table as one text. */
static char *dump(struct meta *m, const char *prefix)
{
	struct meta_cursor *c;
	struct meta_row r;
	size_t cap = 1 << 16, n = 0;
	char *out = calloc(1, cap);

	if (meta_cursor_open(m, prefix, &c) != 0)
		return out;
	while (meta_cursor_next(c, &r) == 1) {
		cJSON *j = meta_row_to_json(&r);
		char *s = cJSON_PrintUnformatted(j);
		size_t need = strlen(r.path) + strlen(s) + 3;
		if (n + need >= cap)
			out = realloc(out, cap = 2 * (n + need));
		n += (size_t)sprintf(out + n, "%s=%s\n", r.path, s);
		free(s);
		cJSON_Delete(j);
		meta_row_clear(&r);
	}
	meta_cursor_close(c);
	return out;
}

/* Put a log object by hand (as another writer would). */
static void put_log(const char *name, const char *text)
{
	char key[512];
	struct dmfs_put_src src = {.buf = text, .fd = -1, .len = strlen(text)};
	struct dmfs_put_opts po = {.if_none_match = true};
	struct dmfs_err_detail d;

	snprintf(key, sizeof(key), META_PREFIX "log/%s", name);
	CHECK(st->ops->put(st, key, &src, &po, NULL, &d) == 0);
}

/* --- history --- */

struct hist {
	char text[4096];
	size_t n;
};

static int hist_cb(void *ctx, const struct meta_change *c)
{
	struct hist *h = ctx;
	char *o = NULL, *nw = NULL;
	size_t l;

	if (c->old_v->t != MV_NULL && mval_to_text(c->old_v, &o, &l))
		return 1;
	if (c->new_v->t != MV_NULL && mval_to_text(c->new_v, &nw, &l))
		return 1;
	h->n += (size_t)snprintf(h->text + h->n, sizeof(h->text) - h->n,
				 "%s:%s->%s;", c->field, o ? o : "null",
				 nw ? nw : "null");
	free(o);
	free(nw);
	CHECK(c->time_us > 0 && c->writer && *c->writer && c->who &&
	      strchr(c->who, '@'));
	return 0;
}

/* --- the tests --- */

static void test_names(void)
{
	char msg[256];

	CHECK(meta_check_field_name("label", msg, sizeof(msg)) == 0);
	CHECK(meta_check_field_name("größe", msg, sizeof(msg)) == 0);
	CHECK(meta_check_field_name("", msg, sizeof(msg)) == DMFS_ERR_INVAL);
	CHECK(meta_check_field_name("a\nb", msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK(meta_check_field_name("\xff\xfe", msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK(meta_check_field_name("size", msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK(meta_is_auto_field("etag") && !meta_is_auto_field("label"));
	char longname[META_FIELD_MAX + 2];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK(meta_check_field_name(longname, msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	longname[META_FIELD_MAX] = '\0';
	CHECK(meta_check_field_name(longname, msg, sizeof(msg)) == 0);
}

static void test_share(struct meta *a, struct meta *b)
{
	struct mval v;

	CHECK(strlen(meta_writer_id(a)) > 0);
	CHECK(strcmp(meta_writer_id(a), meta_writer_id(b)) != 0);

	/* A sets, flushes; B sees it after a refresh. */
	set_ok(a, "x.txt", "label", mv_str("cat"));
	set_ok(a, "x.txt", "n", mv_int(5));
	CHECK(meta_pending(a) == 2);
	CHECK_ROW(a, "x.txt", "{\"label\":\"cat\",\"n\":5}");
	CHECK_ROW(b, "x.txt", "{}");
	CHECK(meta_field_type(a, "n") == MV_INT);
	flush_ok(a);
	CHECK(meta_pending(a) == 0);
	CHECK(refresh_ok(b));
	CHECK_ROW(b, "x.txt", "{\"label\":\"cat\",\"n\":5}");
	CHECK(meta_field_type(b, "n") == MV_INT);
	CHECK(!refresh_ok(b)); /* nothing new */
	CHECK(!refresh_ok(a)); /* its own log: already applied */

	/* Different fields of one path on A and B: both kept. */
	set_ok(a, "p.txt", "fa", mv_int(1));
	set_ok(b, "p.txt", "fb", mv_int(2));
	flush_ok(a);
	flush_ok(b);
	CHECK(refresh_ok(a));
	CHECK(refresh_ok(b));
	CHECK_ROW(a, "p.txt", "{\"fa\":1,\"fb\":2}");
	CHECK_ROW(b, "p.txt", "{\"fa\":1,\"fb\":2}");

	/* The same field on both: the later change wins on both, whichever
	 * order the logs are read in. */
	set_ok(a, "q.txt", "who", mv_str("A"));
	usleep(2000);
	set_ok(b, "q.txt", "who", mv_str("B"));
	flush_ok(b); /* B's log first in the bucket */
	flush_ok(a);
	refresh_ok(a);
	refresh_ok(b);
	CHECK_ROW(a, "q.txt", "{\"who\":\"B\"}");
	CHECK_ROW(b, "q.txt", "{\"who\":\"B\"}");
	/* Now A overwrites what it has seen: its change is later. */
	set_ok(a, "q.txt", "who", mv_str("A2"));
	flush_ok(a);
	refresh_ok(b);
	CHECK_ROW(b, "q.txt", "{\"who\":\"A2\"}");

	/* Null removes, and the removal travels. */
	v = (struct mval){0};
	set_ok(a, "x.txt", "label", v);
	CHECK_ROW(a, "x.txt", "{\"n\":5}");
	flush_ok(a);
	refresh_ok(b);
	CHECK_ROW(b, "x.txt", "{\"n\":5}");
	/* Removing what is not there changes nothing and logs nothing. */
	set_ok(a, "x.txt", "label", v);
	CHECK(meta_pending(a) == 0);
	/* Setting the same value again logs nothing either. */
	set_ok(a, "x.txt", "n", mv_int(5));
	CHECK(meta_pending(a) == 0);
}

static void test_types(struct meta *a)
{
	struct meta_batch *b = NULL;
	struct mval v;
	char msg[512] = "";
	int rc;

	/* n is an int: a string is refused with a message naming it. */
	v = mv_str("abc");
	rc = set1(a, "x.txt", "n", &v, msg, sizeof(msg));
	CHECK(rc == DMFS_ERR_INVAL);
	CHECK_STR(msg, "x.txt: n: expected int, got string \"abc\"");

	/* A bad change in the middle of a batch: nothing is applied. */
	uint64_t before = meta_pending(a);
	CHECK(meta_batch_new(&b) == 0);
	v = mv_int(10);
	CHECK(meta_batch_add(b, "t1", "n", &v) == 0);
	v = mv_str("new");
	CHECK(meta_batch_add(b, "t1", "other", &v) == 0);
	v = mv_float(1.5);
	CHECK(meta_batch_add(b, "t2", "n", &v) == 0); /* float into int */
	v = mv_int(11);
	CHECK(meta_batch_add(b, "t3", "n", &v) == 0);
	CHECK(meta_batch_count(b) == 4);
	rc = meta_apply(a, b, msg, sizeof(msg));
	CHECK(rc == DMFS_ERR_INVAL);
	CHECK(strstr(msg, "t2: n: expected int, got float") == msg);
	CHECK_ROW(a, "t1", "{}");
	CHECK_ROW(a, "t3", "{}");
	CHECK(meta_pending(a) == before);
	CHECK(meta_field_type(a, "other") == MV_NULL); /* not established */
	meta_batch_free(b);

	/* A new field's type is fixed by its first value in the batch. */
	CHECK(meta_batch_new(&b) == 0);
	v = mv_int(1);
	CHECK(meta_batch_add(b, "u1", "fresh", &v) == 0);
	v = mv_str("x");
	CHECK(meta_batch_add(b, "u2", "fresh", &v) == 0);
	CHECK(meta_apply(a, b, msg, sizeof(msg)) == DMFS_ERR_INVAL);
	CHECK(meta_field_type(a, "fresh") == MV_NULL);
	meta_batch_free(b);

	/* An int into a float field is fine and reads back as a float; a
	 * later change of one (path, field) in a batch wins. */
	set_ok(a, "f.txt", "score", mv_float(0.5));
	CHECK(meta_batch_new(&b) == 0);
	v = mv_int(7);
	CHECK(meta_batch_add(b, "f.txt", "score", &v) == 0);
	v = mv_int(3);
	CHECK(meta_batch_add(b, "f.txt", "score", &v) == 0);
	CHECK(meta_apply(a, b, msg, sizeof(msg)) == 0);
	meta_batch_free(b);
	struct meta_row r;
	CHECK(meta_get(a, "f.txt", &r) == 0);
	const struct mval *got = meta_row_get(&r, "score");
	CHECK(got && got->t == MV_FLOAT && got->f == 3.0);
	CHECK(meta_row_get(&r, "nothing") == NULL);
	meta_row_clear(&r);

	/* Bad field names and automatic fields. */
	v = mv_int(1);
	CHECK(set1(a, "x.txt", "size", &v, msg, sizeof(msg)) == DMFS_ERR_INVAL);
	CHECK(strstr(msg, "automatic") != NULL);
	CHECK(set1(a, "", "k", &v, msg, sizeof(msg)) == DMFS_ERR_INVAL);
}

/* A log whose name sorts before logs already read is read all the same;
 * a remote value of the wrong type is dropped. */
static void test_late_and_wrong(struct meta *a, struct meta *b)
{
	put_log("19990101T000000.000000Z-feedfacefeedface-00000000.jsonl",
		"{\"t\":946684800000000,\"w\":\"feedfacefeedface\",\"who\":"
		"\"x@y\",\"path\":\"late.txt\",\"field\":\"era\",\"new\":"
		"\"old\",\"old\":null}\n"
		"not json at all\n");
	/* Named late (a fresh table reads it after n got its type). */
	put_log("30000101T000000.000000Z-feedfacefeedface-00000002.jsonl",
		"{\"t\":946684800000001,\"w\":\"feedfacefeedface\",\"who\":"
		"\"x@y\",\"path\":\"x.txt\",\"field\":\"n\",\"new\":\"str\","
		"\"old\":null}\n");
	CHECK(refresh_ok(b));
	CHECK_ROW(b, "late.txt", "{\"era\":\"old\"}");
	CHECK_ROW(b, "x.txt", "{\"n\":5}");
	refresh_ok(a);
	CHECK_ROW(a, "late.txt", "{\"era\":\"old\"}");
	/* An old change of a field removed later stays removed. */
	put_log("19990101T000000.000001Z-feedfacefeedface-00000001.jsonl",
		"{\"t\":946684800000002,\"w\":\"feedfacefeedface\",\"who\":"
		"\"x@y\",\"path\":\"x.txt\",\"field\":\"label\",\"new\":"
		"\"zombie\",\"old\":null}\n");
	refresh_ok(a);
	CHECK_ROW(a, "x.txt", "{\"n\":5}");
}

/* Equal times: the greater writer id wins, in whichever order the logs
 * are read. */
static void test_tie(struct meta *a, struct meta *b)
{
	put_log("20200101T000000.000000Z-aaaaaaaaaaaaaaaa-00000000.jsonl",
		"{\"t\":1577836800000000,\"w\":\"aaaaaaaaaaaaaaaa\",\"who\":"
		"\"x@y\",\"path\":\"tie1\",\"field\":\"v\",\"new\":\"low\","
		"\"old\":null}\n"
		"{\"t\":1577836800000000,\"w\":\"aaaaaaaaaaaaaaaa\",\"who\":"
		"\"x@y\",\"path\":\"tie2\",\"field\":\"v\",\"new\":\"low\","
		"\"old\":null}\n");
	refresh_ok(a); /* A reads the low writer's log alone first */
	put_log("20200101T000000.000000Z-ffffffffffffffff-00000000.jsonl",
		"{\"t\":1577836800000000,\"w\":\"ffffffffffffffff\",\"who\":"
		"\"x@y\",\"path\":\"tie1\",\"field\":\"v\",\"new\":\"high\","
		"\"old\":null}\n");
	refresh_ok(b); /* B reads both in one go */
	refresh_ok(a);
	/* For tie2 the high writer comes before an even lower one. */
	put_log("20200101T000000.000000Z-ffffffffffffffff-00000001.jsonl",
		"{\"t\":1577836800000000,\"w\":\"ffffffffffffffff\",\"who\":"
		"\"x@y\",\"path\":\"tie2\",\"field\":\"v\",\"new\":\"high\","
		"\"old\":null}\n");
	refresh_ok(a);
	put_log("20200101T000000.000000Z-0000000000000000-00000000.jsonl",
		"{\"t\":1577836800000000,\"w\":\"0000000000000000\",\"who\":"
		"\"x@y\",\"path\":\"tie2\",\"field\":\"v\",\"new\":\"lowest\","
		"\"old\":null}\n");
	refresh_ok(a);
	refresh_ok(b);
	CHECK_ROW(a, "tie1", "{\"v\":\"high\"}");
	CHECK_ROW(b, "tie1", "{\"v\":\"high\"}");
	CHECK_ROW(a, "tie2", "{\"v\":\"high\"}");
	CHECK_ROW(b, "tie2", "{\"v\":\"high\"}");
}

static int paths_cb(void *ctx, const char *path)
{
	strcat(ctx, path);
	strcat(ctx, ";");
	return 0;
}

static void test_batch_paths(void)
{
	struct meta_batch *b = NULL;
	struct mval v = mv_int(1);
	char out[256] = "";

	CHECK(meta_batch_new(&b) == 0);
	CHECK(meta_batch_add(b, "b/x", "f", &v) == 0);
	CHECK(meta_batch_add(b, "a", "f", &v) == 0);
	CHECK(meta_batch_add(b, "b/x", "g", NULL) == 0);
	CHECK(meta_batch_add(b, "a-b", "f", &v) == 0);
	CHECK(meta_batch_add(b, "a", "g", &v) == 0);
	CHECK(meta_batch_count(b) == 5);
	CHECK(meta_batch_paths(b, paths_cb, out) == 0);
	CHECK_STR(out, "a;a-b;b/x;");
	meta_batch_free(b);

	/* Paths alike in their first 16 bytes, one added twice apart. */
	CHECK(meta_batch_new(&b) == 0);
	CHECK(meta_batch_add(b, "0123456789abcdefZ", "f", &v) == 0);
	CHECK(meta_batch_add(b, "0123456789abcdefA", "f", &v) == 0);
	CHECK(meta_batch_add(b, "0123456789abcdef", "f", &v) == 0);
	CHECK(meta_batch_add(b, "0123456789abcde", "f", &v) == 0);
	CHECK(meta_batch_add(b, "0123456789abcdefA", "g", &v) == 0);
	out[0] = '\0';
	CHECK(meta_batch_paths(b, paths_cb, out) == 0);
	CHECK_STR(out, "0123456789abcde;0123456789abcdef;0123456789abcdefA;"
		       "0123456789abcdefZ;");
	meta_batch_free(b);
}

static void test_history(struct meta *a)
{
	struct hist h = {0};
	char msg[256];

	CHECK(meta_history(a, "x.txt", hist_cb, &h, msg, sizeof(msg)) == 0);
	/* In log name order: the late logs are named in 1999 and 3000. */
	CHECK_STR(h.text, "label:null->zombie;label:null->cat;n:null->5;"
			  "label:cat->null;n:null->str;");
	memset(&h, 0, sizeof(h));
	CHECK(meta_history(a, "q.txt", hist_cb, &h, msg, sizeof(msg)) == 0);
	CHECK_STR(h.text, "who:null->B;who:null->A;who:B->A2;");
}

/* The text of the log object holding want (caller frees), or NULL. */
static char *find_log(const char *want)
{
	char dir[4200], file[4500], *text = NULL;
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/bucket/" META_PREFIX "log", root);
	d = opendir(dir);
	while (d && !text && (e = readdir(d))) {
		FILE *f;
		long n;
		snprintf(file, sizeof(file), "%s/%s", dir, e->d_name);
		if (e->d_name[0] == '.' || !(f = fopen(file, "r")))
			continue;
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		rewind(f);
		text = calloc(1, (size_t)n + 1);
		if (!text || fread(text, 1, (size_t)n, f) != (size_t)n ||
		    !strstr(text, want)) {
			free(text);
			text = NULL;
		}
		fclose(f);
	}
	if (d)
		closedir(d);
	return text;
}

static size_t count_str(const char *s, const char *what)
{
	size_t n = 0;

	while (s && (s = strstr(s, what)))
		n++, s++;
	return n;
}

/* A batch is logged as one line per path holding all its fields; the
 * merge and the history read such lines field by field. */
static void test_grouped(struct meta *a, struct meta *b)
{
	struct meta_batch *batch = NULL;
	struct mval v, nul = {0};
	struct hist h = {0};
	struct meta_row r;
	char msg[512] = "", *log;
	uint64_t before = meta_pending(a);

	CHECK(meta_batch_new(&batch) == 0);
	v = mv_int(1);
	CHECK(meta_batch_add(batch, "g1", "ga", &v) == 0);
	v = mv_float(2.5);
	CHECK(meta_batch_add(batch, "g1", "gb", &v) == 0);
	v = mv_int(2);
	CHECK(meta_batch_add(batch, "g2", "ga", &v) == 0);
	v = mv_str("s\"q");
	CHECK(meta_batch_add(batch, "g1", "gc", &v) == 0);
	CHECK(meta_apply(a, batch, msg, sizeof(msg)) == 0);
	meta_batch_free(batch);
	CHECK(meta_pending(a) == before + 4);
	flush_ok(a);
	log = find_log("\"path\":\"g1\"");
	CHECK(log != NULL);
	CHECK(count_str(log, "\"path\":\"g1\"") == 1);
	CHECK(count_str(log, "\"path\":\"g2\"") == 1);
	CHECK(log && strstr(log, "\"path\":\"g1\",\"set\":{\"ga\":1,\"gb\":2.5,"
				 "\"gc\":\"s\\\"q\"},\"types\":{\"gb\":"
				 "\"float\"}}\n"));
	CHECK(log && strstr(log, "\"path\":\"g2\",\"set\":{\"ga\":2}}\n"));
	free(log);

	/* A removal and a change: null in "set", old values in "old". */
	CHECK(meta_batch_new(&batch) == 0);
	CHECK(meta_batch_add(batch, "g1", "ga", &nul) == 0);
	v = mv_int(3); /* an int into a float field */
	CHECK(meta_batch_add(batch, "g1", "gb", &v) == 0);
	CHECK(meta_apply(a, batch, msg, sizeof(msg)) == 0);
	meta_batch_free(batch);
	CHECK(meta_pending(a) == 2);
	flush_ok(a);
	log = find_log("\"set\":{\"ga\":null,\"gb\":3.0}");
	CHECK(log && strstr(log, "\"types\":{\"gb\":\"float\"},\"old\":"
				 "{\"ga\":1,\"gb\":2.5}}\n"));
	free(log);

	refresh_ok(b);
	CHECK_ROW(b, "g1", "{\"gb\":3,\"gc\":\"s\\\"q\"}");
	CHECK_ROW(b, "g2", "{\"ga\":2}");
	CHECK(meta_get(b, "g1", &r) == 0);
	CHECK(meta_row_get(&r, "gb") && meta_row_get(&r, "gb")->t == MV_FLOAT);
	meta_row_clear(&r);
	CHECK(meta_history(b, "g1", hist_cb, &h, msg, sizeof(msg)) == 0);
	CHECK_STR(h.text, "ga:null->1;gb:null->2.5;gc:null->s\"q;"
			  "ga:1->null;gb:2.5->3;");
}

static void test_prefix(struct meta *a)
{
	char *d;

	set_ok(a, "d/1", "k", mv_int(1));
	set_ok(a, "d/2", "k", mv_int(2));
	set_ok(a, "d-x", "k", mv_int(3));
	set_ok(a, "d", "k", mv_int(4));
	set_ok(a, "e", "k", mv_int(5));
	d = dump(a, "d/");
	CHECK_STR(d, "d/1={\"k\":1}\nd/2={\"k\":2}\n");
	free(d);
	d = dump(a, "d");
	CHECK_STR(d, "d={\"k\":4}\nd-x={\"k\":3}\nd/1={\"k\":1}\n"
		     "d/2={\"k\":2}\n");
	free(d);
}

static void test_schema(struct meta *a, struct meta *b)
{
	struct mval v;
	char msg[512] = "", *s = NULL;

	CHECK(meta_schema_get(a, &s) == 0);
	CHECK_STR(s, "{}");
	free(s);
	/* Existing values must fit: n holds ints. */
	CHECK(meta_schema_set(a, "{\"n\":\"string\"}", msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK(strstr(msg, "expected string, got int") != NULL);
	CHECK(meta_schema_set(a, "{\"k\":{\"type\":\"int\",\"required\":true}}",
			      msg, sizeof(msg)) == DMFS_ERR_INVAL);
	CHECK(strstr(msg, "required field missing") != NULL);
	CHECK(meta_schema_set(a, "{\"n\":\"bogus\"}", msg, sizeof(msg)) ==
	      DMFS_ERR_INVAL);
	CHECK(meta_schema_set(a, "[1]", msg, sizeof(msg)) == DMFS_ERR_INVAL);
	CHECK(meta_schema_set(a,
			      "{\"kind\":{\"type\":\"string\",\"allowed\":"
			      "[\"cat\",\"dog\"]},\"weight\":\"float\"}",
			      msg, sizeof(msg)) == 0);
	CHECK(meta_field_type(a, "weight") == MV_FLOAT);
	v = mv_str("cow");
	CHECK(set1(a, "s.txt", "kind", &v, msg, sizeof(msg)) == DMFS_ERR_INVAL);
	CHECK(strstr(msg, "s.txt: kind: value \"cow\" is not an allowed") ==
	      msg);
	v = mv_int(3);
	CHECK(set1(a, "s.txt", "kind", &v, msg, sizeof(msg)) == DMFS_ERR_INVAL);
	set_ok(a, "s.txt", "kind", mv_str("dog"));
	set_ok(a, "s.txt", "weight", mv_int(2));
	CHECK_ROW(a, "s.txt", "{\"kind\":\"dog\",\"weight\":2}");
	/* B gets the schema with its next refresh. */
	flush_ok(a);
	CHECK(refresh_ok(b));
	CHECK(meta_schema_get(b, &s) == 0);
	CHECK(s && strstr(s, "\"allowed\":[\"cat\",\"dog\"]") != NULL);
	free(s);
	CHECK(meta_field_type(b, "weight") == MV_FLOAT);
	v = mv_str("cow");
	CHECK(set1(b, "s.txt", "kind", &v, msg, sizeof(msg)) == DMFS_ERR_INVAL);
}

static void test_checkpoint(struct meta *a, struct meta *b)
{
	char msg[512] = "", *da, *db, *dc;
	struct meta *c;

	set_ok(b, "b-only.txt", "k", mv_int(9));
	flush_ok(b);
	CHECK(meta_compact(a, msg, sizeof(msg)) == 0);
	if (*msg)
		fprintf(stderr, "  compact: %s\n", msg);
	/* A change after the checkpoint: the fresh table reads its log. */
	set_ok(b, "after.txt", "k", mv_int(10));
	flush_ok(b);
	refresh_ok(a);
	c = open_table("c");
	CHECK(refresh_ok(c));
	da = dump(a, "");
	db = dump(b, "");
	dc = dump(c, "");
	CHECK_STR(dc, da);
	CHECK_STR(db, da);
	CHECK(strstr(dc, "after.txt={\"k\":10}") != NULL);
	CHECK(strstr(dc, "b-only.txt={\"k\":9}") != NULL);
	CHECK(meta_field_type(c, "score") == MV_FLOAT);
	free(da);
	free(db);
	free(dc);
	meta_close(c);
}

/* --- a cache of the earlier format --- */

/* A record of the earlier format: vals[sid || path || 0 || field] = time,
 * type, writer length, writer, JSON text. */
static void old_put(MDB_txn *txn, MDB_dbi db, const unsigned char *sid,
		    const char *path, const char *field, enum mval_type t,
		    const char *json)
{
	unsigned char key[512], val[512];
	size_t pl = strlen(path), fl = strlen(field), jl = strlen(json);
	MDB_val k = {8 + pl + 1 + fl, key}, v = {10 + 4 + jl, val};

	memcpy(key, sid, 8);
	memcpy(key + 8, path, pl + 1);
	memcpy(key + 9 + pl, field, fl);
	memset(val, 0, 8);
	val[7] = 42; /* time */
	val[8] = (unsigned char)t;
	val[9] = 4;
	memcpy(val + 10, "beef", 4);
	memcpy(val + 14, json, jl);
	CHECK(mdb_put(txn, db, &k, &v, 0) == 0);
}

/* Such a cache is turned into rows when opened. */
static void test_migrate(void)
{
	char dir[4300];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi db;
	struct meta *o;

	snprintf(dir, sizeof(dir), "%s/old", root);
	mkdir(dir, 0700);
	snprintf(dir, sizeof(dir), "%s/old/meta", root);
	mkdir(dir, 0700);
	CHECK(EVP_Digest(store_uri, strlen(store_uri), md, &mdlen,
			 EVP_sha256(), NULL) == 1);
	CHECK(mdb_env_create(&env) == 0);
	CHECK(mdb_env_set_maxdbs(env, 8) == 0);
	CHECK(mdb_env_open(env, dir, MDB_NOTLS, 0600) == 0);
	CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
	CHECK(mdb_dbi_open(txn, "vals", MDB_CREATE, &db) == 0);
	old_put(txn, db, md, "m.txt", "f", MV_FLOAT, "2.5");
	old_put(txn, db, md, "m.txt", "gone", MV_NULL, "");
	old_put(txn, db, md, "m.txt", "n", MV_INT, "7");
	old_put(txn, db, md, "m.txt", "s", MV_STRING, "\"x\\\"y\"");
	old_put(txn, db, md, "m2.txt", "n", MV_INT, "8");
	CHECK(mdb_txn_commit(txn) == 0);
	mdb_env_close(env);

	o = open_table("old");
	CHECK_ROW(o, "m.txt", "{\"f\":2.5,\"n\":7,\"s\":\"x\\\"y\"}");
	CHECK_ROW(o, "m2.txt", "{\"n\":8}");
	meta_close(o);
	o = open_table("old"); /* once only */
	CHECK_ROW(o, "m2.txt", "{\"n\":8}");
	meta_close(o);
}

/* --- a store whose uploads fail (a bucket that is down) --- */

struct failing {
	struct dmfs_store base;
	struct dmfs_store *real;
};

static int fail_list(struct dmfs_store *s, const char *prefix,
		     const char *delim, const char *token, size_t max,
		     struct dmfs_list_page *out, struct dmfs_err_detail *d)
{
	struct dmfs_store *r = ((struct failing *)s)->real;
	return r->ops->list(r, prefix, delim, token, max, out, d);
}

static int fail_get_stream(struct dmfs_store *s, const char *key,
			   const struct dmfs_pin *pin,
			   const struct dmfs_sink *sink,
			   struct dmfs_obj_info *info,
			   struct dmfs_err_detail *d)
{
	struct dmfs_store *r = ((struct failing *)s)->real;
	return r->ops->get_stream(r, key, pin, sink, info, d);
}

static int fail_put(struct dmfs_store *s, const char *key,
		    const struct dmfs_put_src *src,
		    const struct dmfs_put_opts *o, struct dmfs_obj_info *out,
		    struct dmfs_err_detail *d)
{
	(void)s, (void)key, (void)src, (void)o, (void)out;
	dmfs_err_detail_clear(d);
	snprintf(d->message, sizeof(d->message), "connection refused");
	return DMFS_ERR_NETWORK;
}

static const struct dmfs_store_ops failing_ops = {
    .scheme = "fail",
    .list = fail_list,
    .get_stream = fail_get_stream,
    .put = fail_put,
};

/* A failed upload keeps the queue; changes survive kill -9 (the outbox is
 * in LMDB); a purely local table keeps its queue and says why. */
static void test_durable(void)
{
	struct failing fs = {{&failing_ops}, st};
	char dir[4200], msg[512] = "";
	struct meta *k = NULL;
	pid_t pid;
	int status = 0;

	snprintf(dir, sizeof(dir), "%s/k", root);
	pid = fork();
	if (pid == 0) {
		struct meta *m = NULL;
		struct mval v = mv_str("kept");
		if (meta_open(dir, st, store_uri, &m, msg, sizeof(msg)) ||
		    set1(m, "dur.txt", "note", &v, msg, sizeof(msg)))
			_exit(2);
		kill(getpid(), SIGKILL);
		_exit(3);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	CHECK(meta_open(dir, &fs.base, store_uri, &k, msg, sizeof(msg)) == 0);
	if (!k)
		return;
	CHECK(meta_pending(k) == 1);
	CHECK_ROW(k, "dur.txt", "{\"note\":\"kept\"}");
	CHECK(meta_flush(k, msg, sizeof(msg)) == DMFS_ERR_NETWORK);
	CHECK(strstr(msg, "connection refused") != NULL);
	CHECK(meta_pending(k) == 1);
	meta_close(k);
	k = open_table("k");
	flush_ok(k);
	CHECK(meta_pending(k) == 0);
	meta_close(k);

	snprintf(dir, sizeof(dir), "%s/local", root);
	CHECK(meta_open(dir, NULL, "file:///nowhere", &k, msg, sizeof(msg)) ==
	      0);
	if (!k)
		return;
	set_ok(k, "l.txt", "x", mv_int(1));
	CHECK(meta_flush(k, msg, sizeof(msg)) == DMFS_ERR_UNSUPPORTED);
	CHECK(meta_pending(k) == 1);
	CHECK(!refresh_ok(k));
	CHECK_ROW(k, "l.txt", "{\"x\":1}");
	meta_close(k);
}

/* Batches applied on one thread while another flushes and refreshes the
 * same table: no deadlock, nothing lost. */
struct churn {
	struct meta *m;
	int done;
};

static void *churn_sync(void *arg)
{
	struct churn *c = arg;
	char msg[512];
	bool ch;

	while (!__atomic_load_n(&c->done, __ATOMIC_ACQUIRE)) {
		if (meta_flush(c->m, msg, sizeof(msg)) ||
		    meta_refresh(c->m, &ch, msg, sizeof(msg)))
			return (void *)1;
	}
	return NULL;
}

static void test_threads(struct meta *a, struct meta *b)
{
	struct churn c = {.m = a};
	pthread_t th;
	void *res = (void *)1;
	char path[64];

	CHECK(pthread_create(&th, NULL, churn_sync, &c) == 0);
	for (int i = 0; i < 200; i++) {
		snprintf(path, sizeof(path), "thr/%03d", i);
		set_ok(a, path, "k", mv_int(i));
	}
	__atomic_store_n(&c.done, 1, __ATOMIC_RELEASE);
	CHECK(pthread_join(th, &res) == 0 && res == NULL);
	flush_ok(a);
	CHECK(meta_pending(a) == 0);
	refresh_ok(b);
	CHECK_ROW(b, "thr/000", "{\"k\":0}");
	CHECK_ROW(b, "thr/199", "{\"k\":199}");
}

static void test_big(struct meta *a, struct meta *b)
{
	struct meta_batch *batch = NULL;
	char path[64], msg[512] = "";
	double t0, t1, t2, t3;
	int rc = 0;

	CHECK(meta_batch_new(&batch) == 0);
	for (int i = 0; !rc && i < BIG_N; i++) {
		struct mval v = mv_int(i);
		snprintf(path, sizeof(path), "big/%07d.jpg",
			 (i * 7919) % BIG_N);
		rc = meta_batch_add(batch, path, "idx", &v);
		v = mv_str(i % 2 ? "odd" : "even");
		if (!rc)
			rc = meta_batch_add(batch, path, "parity", &v);
	}
	CHECK(rc == 0);
	t0 = now();
	rc = meta_apply(a, batch, msg, sizeof(msg));
	t1 = now();
	CHECK(rc == 0);
	if (rc)
		fprintf(stderr, "  big apply: %s\n", msg);
	printf("apply: %d rows (%d changes) in %.3f s: %.0f rows/s\n", BIG_N,
	       2 * BIG_N, t1 - t0, BIG_N / (t1 - t0));
	CHECK(t1 - t0 < 10.0);
	CHECK(meta_pending(a) == 2 * BIG_N);
	flush_ok(a);
	t2 = now();
	CHECK(meta_pending(a) == 0);
	refresh_ok(b);
	t3 = now();
	printf("flush: %.3f s, merge on another table: %.3f s (%.0f rows/s)\n",
	       t2 - t1, t3 - t2, BIG_N / (t3 - t2));
	CHECK_ROW(b, "big/0007919.jpg", "{\"idx\":1,\"parity\":\"odd\"}");
	meta_batch_free(batch);
}

int main(void)
{
	char msg[512] = "", dir[4100];
	struct meta *a, *b;

	dmfs_log_set_level(DMFS_LOG_ERROR);
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(dir, sizeof(dir), "%s/bucket", root);
	mkdir(dir, 0700);
	snprintf(store_uri, sizeof(store_uri), "file://%s", dir);
	if (dmfs_store_open(store_uri, NULL, 0, &st, msg, sizeof(msg))) {
		fprintf(stderr, "store: %s\n", msg);
		return 1;
	}
	a = open_table("a");
	b = open_table("b");

	test_names();
	test_share(a, b);
	test_types(a);
	test_late_and_wrong(a, b);
	test_tie(a, b);
	test_batch_paths();
	test_history(a);
	test_grouped(a, b);
	test_prefix(a);
	test_schema(a, b);
	test_checkpoint(a, b);

	/* The writer id survives reopening. */
	char wa[80];
	snprintf(wa, sizeof(wa), "%s", meta_writer_id(a));
	meta_close(a);
	a = open_table("a");
	CHECK_STR(meta_writer_id(a), wa);

	test_durable();
	test_migrate();
	test_threads(a, b);
	test_big(a, b);

	meta_close(a);
	meta_close(b);
	st->ops->destroy(st);
	unit_rm_tree(root);
	return unit_done("test_meta");
}
