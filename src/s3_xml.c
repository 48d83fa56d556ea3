/*
 * s3_xml.c - parse the XML answers of S3 with expat.
 *
 * S3 answers in XML, and object keys are user data: they hold "&", "<",
 * any unicode and even newlines, which reach us as entities (&amp;, &#10;)
 * or, with EncodingType=url, percent-encoded.  So everything here goes
 * through expat, a real streaming parser; nothing searches strings.
 *
 * One small engine (struct xml_doc) drives expat for every kind of
 * document: object listings, version listings, errors, the versioning
 * state of a bucket and the result of a copy.  It keeps a stack of element
 * ids, so that a rule such as "Key directly inside Contents directly inside
 * the root" is matched by position and not by name alone: the top-level
 * <Prefix> of a listing only echoes the request and is not a common prefix,
 * and an <ID> under <Owner> is nobody's key.  Only the leaves named by a rule
 * collect text.  Expat hands text over in pieces (at every entity reference, at
 * every buffer boundary), so it is accumulated in a bounded buffer and used
 * only when the element closes.
 *
 * Safety.  S3 never sends a DTD, so a document with a <!DOCTYPE> is refused
 * outright: no entity can be declared (no "billion laughs", on top of the
 * amplification limit expat >= 2.4 applies by itself), parameter entities
 * are never parsed, and expat never opens an external entity on its own.
 * Every buffer has a maximum (key length, entries per page, text of one
 * element, nesting depth); exceeding one is an error, never a crash or an
 * unbounded allocation.  On any error the output is freed and zeroed.
 *
 * Namespaces.  AWS puts its elements in the namespace
 * http://s3.amazonaws.com/doc/2006-03-01/, some compatible servers use no
 * namespace, and a prefix (<s3:Key xmlns:s3="...">) is equally legal XML.
 * Expat runs with namespace processing and we match on the local name
 * only, so all three read the same.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <expat.h>

#include "dmfs/fmt.h"
#include "dmfs/err.h"
#include "dmfs/s3_xml.h"
#include "dmfs/store.h"

/*
 * S3 itself caps keys at 1024 bytes; compatible servers may allow more, so
 * the bound is generous but still a bound.
 */
#define S3_XML_KEY_MAX 4096
/* Continuation tokens are opaque; AWS sends well under 1 KiB. */
#define S3_XML_TOKEN_MAX 4096
/* AWS documents version ids as "no more than 1,024 bytes long". */
#define S3_XML_VERSION_ID_MAX 1024
/* Objects plus common prefixes in one page (S3 sends at most 1000). */
#define S3_XML_ENTRIES_MAX 100000
/*
 * Text of one element.  With EncodingType=url a key of S3_XML_KEY_MAX bytes
 * arrives as up to three times as many ("%E9"), and the length can only be
 * checked after decoding, once the whole document told whether it is
 * encoded.
 */
#define S3_XML_TEXT_MAX (3 * S3_XML_KEY_MAX)
/* S3 documents are four levels deep; anything far deeper is not S3. */
#define S3_XML_DEPTH_MAX 32
/* XML_Parse takes an int length: feed large bodies in pieces. */
#define S3_XML_FEED_CHUNK (64 * 1024)
/*
 * Separator between namespace URI and local name in the names expat
 * reports.  A local name (an XML NCName) never contains a space, so the
 * text after the last space is always the local name, whatever the URI.
 */
#define S3_XML_NS_SEP ' '

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Element ids; the stack holds these.  Less than 32, used as bit numbers. */
enum xml_id {
	ID_OTHER = 0, /* an element no rule names: ignored with its subtree */
	ID_ROOT,
	/* ListBucketResult */
	ID_CONTENTS,
	ID_COMMON_PREFIXES,
	ID_IS_TRUNCATED,
	ID_NEXT_TOKEN,
	ID_ENCODING_TYPE,
	ID_KEY,
	ID_SIZE,
	ID_LAST_MODIFIED,
	ID_ETAG,
	ID_PREFIX,
	/* Error */
	ID_CODE,
	ID_MESSAGE,
	ID_REQUEST_ID,
	/* ListVersionsResult (also ID_KEY ... ID_ETAG, ID_ENCODING_TYPE) */
	ID_VERSION,
	ID_DELETE_MARKER,
	ID_VERSION_ID,
	ID_IS_LATEST,
	ID_NEXT_KEY_MARKER,
	ID_NEXT_VID_MARKER,
	/* VersioningConfiguration */
	ID_STATUS,
	/* CopyObjectResult, CompleteMultipartUploadResult: only ID_ETAG */
	/* InitiateMultipartUploadResult */
	ID_UPLOAD_ID,
	ID__COUNT
};

_Static_assert(ID__COUNT <= 32, "element ids are bit numbers of a uint");

#define BIT(id) (1u << (id))

/* "An element called `name` directly inside `parent` is `id`." */
struct xml_rule {
	enum xml_id parent;
	const char *name;
	enum xml_id id;
	bool leaf; /* collect its text; it may not hold elements */
};

static const struct xml_rule list_rules[] = {
    {ID_ROOT, "Contents", ID_CONTENTS, false},
    {ID_ROOT, "CommonPrefixes", ID_COMMON_PREFIXES, false},
    {ID_ROOT, "IsTruncated", ID_IS_TRUNCATED, true},
    {ID_ROOT, "NextContinuationToken", ID_NEXT_TOKEN, true},
    {ID_ROOT, "EncodingType", ID_ENCODING_TYPE, true},
    {ID_CONTENTS, "Key", ID_KEY, true},
    {ID_CONTENTS, "Size", ID_SIZE, true},
    {ID_CONTENTS, "LastModified", ID_LAST_MODIFIED, true},
    {ID_CONTENTS, "ETag", ID_ETAG, true},
    {ID_COMMON_PREFIXES, "Prefix", ID_PREFIX, true},
};

/*
 * ListObjectVersions.  A delete marker has no size and no ETag: the rules
 * do not name them, so a server sending them anyway is ignored.
 * CommonPrefixes only come with a delimiter, which dmfs never sends.
 */
static const struct xml_rule versions_rules[] = {
    {ID_ROOT, "Version", ID_VERSION, false},
    {ID_ROOT, "DeleteMarker", ID_DELETE_MARKER, false},
    {ID_ROOT, "IsTruncated", ID_IS_TRUNCATED, true},
    {ID_ROOT, "NextKeyMarker", ID_NEXT_KEY_MARKER, true},
    {ID_ROOT, "NextVersionIdMarker", ID_NEXT_VID_MARKER, true},
    {ID_ROOT, "EncodingType", ID_ENCODING_TYPE, true},
    {ID_VERSION, "Key", ID_KEY, true},
    {ID_VERSION, "VersionId", ID_VERSION_ID, true},
    {ID_VERSION, "IsLatest", ID_IS_LATEST, true},
    {ID_VERSION, "Size", ID_SIZE, true},
    {ID_VERSION, "LastModified", ID_LAST_MODIFIED, true},
    {ID_VERSION, "ETag", ID_ETAG, true},
    {ID_DELETE_MARKER, "Key", ID_KEY, true},
    {ID_DELETE_MARKER, "VersionId", ID_VERSION_ID, true},
    {ID_DELETE_MARKER, "IsLatest", ID_IS_LATEST, true},
    {ID_DELETE_MARKER, "LastModified", ID_LAST_MODIFIED, true},
};

static const struct xml_rule versioning_rules[] = {
    {ID_ROOT, "Status", ID_STATUS, true},
};

static const struct xml_rule copy_rules[] = {
    {ID_ROOT, "ETag", ID_ETAG, true},
};

static const struct xml_rule initiate_rules[] = {
    {ID_ROOT, "UploadId", ID_UPLOAD_ID, true},
};

static const struct xml_rule error_rules[] = {
    {ID_ROOT, "Code", ID_CODE, true},
    {ID_ROOT, "Message", ID_MESSAGE, true},
    {ID_ROOT, "RequestId", ID_REQUEST_ID, true},
};

/*
 * What a document is made of: its root, its rules and what to do when an
 * element named by a rule opens or closes.  `close` gets the text of a
 * leaf (NUL-terminated, writable, `len` bytes) or NULL for a container.
 * Both return 0 or a dmfs error, which stops the parse.
 */
struct xml_grammar {
	const char *root;
	const struct xml_rule *rules;
	size_t nrules;
	int (*open)(void *user, enum xml_id id);
	int (*close)(void *user, enum xml_id id, char *text, size_t len);
	/*
	 * Cut text longer than S3_XML_TEXT_MAX instead of failing: right for
	 * the human message of an error, wrong for a key.
	 */
	bool truncate_text;
};

/* The state of one parse.  Heap-allocated: the text buffer is 12 KiB. */
struct xml_doc {
	XML_Parser parser;
	const struct xml_grammar *g;
	void *user;
	int err;      /* first error; once set, callbacks do nothing */
	size_t depth; /* open elements */
	enum xml_id stack[S3_XML_DEPTH_MAX];
	enum xml_id leaf; /* leaf collecting text, ID_OTHER if none */
	size_t textlen;
	char text[S3_XML_TEXT_MAX + 1];
};

/* Record the first error and make expat return as soon as it can. */
static void xml_fail(struct xml_doc *x, int err)
{
	if (!x->err)
		x->err = err;
	XML_StopParser(x->parser, XML_FALSE);
}

static const char *local_name(const XML_Char *name)
{
	const char *sep = strrchr(name, S3_XML_NS_SEP);

	return sep ? sep + 1 : name;
}

static const struct xml_rule *find_rule(const struct xml_grammar *g,
					enum xml_id parent, const char *name)
{
	for (size_t i = 0; i < g->nrules; i++)
		if (g->rules[i].parent == parent &&
		    strcmp(g->rules[i].name, name) == 0)
			return &g->rules[i];
	return NULL;
}

static void xml_start(void *data, const XML_Char *name, const XML_Char **atts)
{
	struct xml_doc *x = data;
	const char *local = local_name(name);
	const struct xml_rule *rule = NULL;
	enum xml_id id = ID_OTHER;
	int rc = 0;

	(void)atts;
	/* Expat may deliver a callback or two after XML_StopParser. */
	if (x->err)
		return;
	if (x->depth >= S3_XML_DEPTH_MAX) {
		xml_fail(x, DMFS_ERR_PROTOCOL);
		return;
	}
	if (x->leaf != ID_OTHER) {
		/* <Key>a<b/>c</Key>: S3 leaves hold text, nothing else. */
		xml_fail(x, DMFS_ERR_PROTOCOL);
		return;
	}
	if (x->depth == 0) {
		/* An <Error> sent with 200, an HTML page from a proxy... */
		if (strcmp(local, x->g->root) != 0) {
			xml_fail(x, DMFS_ERR_PROTOCOL);
			return;
		}
		id = ID_ROOT;
	} else {
		/*
		 * Children of ignored elements stay ignored: no rule has
		 * ID_OTHER as parent.
		 */
		rule = find_rule(x->g, x->stack[x->depth - 1], local);
		if (rule)
			id = rule->id;
	}
	x->stack[x->depth++] = id;
	if (rule && rule->leaf) {
		x->leaf = id;
		x->textlen = 0;
	} else if (id != ID_OTHER && x->g->open) {
		rc = x->g->open(x->user, id);
	}
	if (rc)
		xml_fail(x, rc);
}

static void xml_end(void *data, const XML_Char *name)
{
	struct xml_doc *x = data;
	enum xml_id id;
	int rc = 0;

	(void)name; /* expat checks that tags match */
	if (x->err || x->depth == 0)
		return;
	id = x->stack[--x->depth];
	if (x->leaf != ID_OTHER) {
		x->leaf = ID_OTHER;
		x->text[x->textlen] = '\0';
		rc = x->g->close(x->user, id, x->text, x->textlen);
	} else if (id != ID_OTHER && x->g->close) {
		rc = x->g->close(x->user, id, NULL, 0);
	}
	if (rc)
		xml_fail(x, rc);
}

/* Called any number of times per text node: accumulate, bounded. */
static void xml_text(void *data, const XML_Char *s, int len)
{
	struct xml_doc *x = data;
	size_t n = len > 0 ? (size_t)len : 0;

	if (x->err || x->leaf == ID_OTHER)
		return;
	if (n > S3_XML_TEXT_MAX - x->textlen) {
		if (!x->g->truncate_text) {
			xml_fail(x, DMFS_ERR_TOO_BIG);
			return;
		}
		n = S3_XML_TEXT_MAX - x->textlen;
	}
	memcpy(x->text + x->textlen, s, n);
	x->textlen += n;
}

/*
 * S3 never sends a DTD.  Refusing it up front is what keeps entity
 * declarations, and with them entity expansion attacks and external
 * entities, out of reach.
 */
static void xml_doctype(void *data, const XML_Char *name, const XML_Char *sysid,
			const XML_Char *pubid, int has_internal_subset)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal_subset;
	xml_fail(data, DMFS_ERR_PROTOCOL);
}

/*
 * Parse `xml` with grammar `g`.  Returns 0 when the document was well
 * formed, had the right root and every callback accepted it; else the
 * first error (DMFS_ERR_PROTOCOL for anything expat refused).
 */
static int xml_run(const struct xml_grammar *g, void *user, const char *xml,
		   size_t len)
{
	struct xml_doc *x;
	int rc;

	if (!xml || len == 0)
		return DMFS_ERR_PROTOCOL;
	x = calloc(1, sizeof(*x));
	if (!x)
		return DMFS_ERR_NOMEM;
	x->g = g;
	x->user = user;
	x->parser = XML_ParserCreateNS(NULL, S3_XML_NS_SEP);
	if (!x->parser) {
		free(x);
		return DMFS_ERR_NOMEM;
	}
	XML_SetUserData(x->parser, x);
	XML_SetElementHandler(x->parser, xml_start, xml_end);
	XML_SetCharacterDataHandler(x->parser, xml_text);
	XML_SetStartDoctypeDeclHandler(x->parser, xml_doctype);
	XML_SetParamEntityParsing(x->parser, XML_PARAM_ENTITY_PARSING_NEVER);

	while (!x->err) {
		size_t n = len < S3_XML_FEED_CHUNK ? len : S3_XML_FEED_CHUNK;
		int final = n == len;

		if (XML_Parse(x->parser, xml, (int)n, final) != XML_STATUS_OK) {
			/* Not stopped by us: expat's own verdict. */
			if (x->err)
				break;
			if (XML_GetErrorCode(x->parser) == XML_ERROR_NO_MEMORY)
				x->err = DMFS_ERR_NOMEM;
			else
				x->err = DMFS_ERR_PROTOCOL;
			break;
		}
		if (final)
			break;
		xml += n;
		len -= n;
	}
	rc = x->err;
	XML_ParserFree(x->parser);
	free(x);
	return rc;
}

/* Strip ASCII blanks around a value that is not user data. */
static char *trim(char *s, size_t *len)
{
	size_t n = *len;

	while (n && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
		     s[n - 1] == '\n'))
		n--;
	s[n] = '\0';
	*len = n;
	return s;
}

/* Decimal digits only: strtoull would take "-1", " 1" and "0x1". */
static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return DMFS_ERR_PROTOCOL;
	for (; *s; s++) {
		unsigned d;

		if (*s < '0' || *s > '9')
			return DMFS_ERR_PROTOCOL;
		d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return DMFS_ERR_PROTOCOL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* "true" or "false", blanks around allowed. */
static int parse_bool(char *text, size_t len, bool *out)
{
	text = trim(text, &len);
	if (strcmp(text, "true") == 0)
		*out = true;
	else if (strcmp(text, "false") == 0)
		*out = false;
	else
		return DMFS_ERR_PROTOCOL;
	return 0;
}

/*
 * An ETag as S3 writes it, "\"abc\"" (possibly &quot;abc&quot; or
 * &#34;abc&#34;), into `dst` of `size` bytes without its quotes.  A value
 * that does not fit is DMFS_ERR_TOO_BIG, never cut: a cut ETag would
 * match nothing.
 */
static int take_etag(char *dst, size_t size, char *text, size_t len)
{
	text = trim(text, &len);
	if (len >= 2 && text[0] == '"' && text[len - 1] == '"') {
		text++;
		len -= 2;
	}
	if (len >= size)
		return DMFS_ERR_TOO_BIG;
	memcpy(dst, text, len);
	dst[len] = '\0';
	return 0;
}

/*
 * A version id or version-id marker: opaque, taken as sent (never
 * url-decoded, EncodingType does not cover it), but bounded and, as AWS
 * promises "URL-ready" ids, free of control characters, so that callers
 * may join it with a key by a newline.  Sets *out (caller frees with
 * free()), or NULL when the text is empty.
 */
static int take_version_id(char *text, size_t len, char **out)
{
	*out = NULL;
	text = trim(text, &len);
	if (len > S3_XML_VERSION_ID_MAX)
		return DMFS_ERR_TOO_BIG;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
			return DMFS_ERR_PROTOCOL;
	if (len == 0)
		return 0;
	*out = strndup(text, len);
	return *out ? 0 : DMFS_ERR_NOMEM;
}

/*
 * Undo EncodingType=url in place.  S3 encodes like an HTML form: "%XX" for
 * a byte and "+" for a space (a real "+" comes as "%2B"); botocore decodes
 * with unquote_plus for the same reason.  A malformed escape, or "%00"
 * that no C string can hold, is a protocol error.
 */
static int url_decode(char *s)
{
	char *w = s;

	for (const char *r = s; *r; r++) {
		if (*r == '+') {
			*w++ = ' ';
		} else if (*r == '%') {
			int hi = dmfs_hex_value(r[1]);
			int lo = hi < 0 ? -1 : dmfs_hex_value(r[2]);

			if (lo < 0 || (hi == 0 && lo == 0))
				return DMFS_ERR_PROTOCOL;
			*w++ = (char)(hi << 4 | lo);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return 0;
}

/*
 * Copy `len` bytes of `src` into `dst` of `size` bytes, NUL-terminated,
 * cutting before a UTF-8 character that would not fit whole.  Cannot fail.
 */
static void copy_utf8(char *dst, size_t size, const char *src, size_t len)
{
	size_t n = len;

	if (n >= size) {
		/*
		 * src[n] is the first byte left out: while it continues a
		 * character, that character would be cut.
		 */
		n = size - 1;
		while (n && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * Grow an array of `*cap` elements of `elsize` bytes to hold `need`.
 * Returns the array (moved or not), NULL when out of memory (`arr` then
 * still owned by the caller).  The callers bound `need` by
 * S3_XML_ENTRIES_MAX.
 */
static void *grow(void *arr, size_t *cap, size_t need, size_t elsize)
{
	size_t ncap;
	void *n;

	if (need <= *cap)
		return arr;
	ncap = *cap ? *cap * 2 : 64;
	if (ncap < need)
		ncap = need;
	if (ncap > S3_XML_ENTRIES_MAX)
		ncap = S3_XML_ENTRIES_MAX;
	n = realloc(arr, ncap * elsize);
	if (n)
		*cap = ncap;
	return n;
}

/* --- ListBucketResult and ListVersionsResult ----------------------------- */

/*
 * Both listings fill a struct dmfs_list_page, one entry per <Contents>, or
 * per <Version> and <DeleteMarker> in document order, with the same leaves;
 * they differ in their root, their rules and how they say "more to come".
 */
struct list_ctx {
	struct dmfs_list_page *page;
	size_t objcap;
	size_t prefcap;
	unsigned top_seen;     /* BIT(id) of the root's leaves seen so far */
	unsigned obj_seen;     /* BIT(id) of the leaves of the open entry */
	bool url_encoded;      /* <EncodingType>url</EncodingType> */
	bool versions;	       /* a ListVersionsResult */
	char *next_key_marker; /* versions: owned until handed out */
	char *next_vid_marker; /* versions: owned until handed out */
};

static size_t list_entries(const struct dmfs_list_page *p)
{
	return p->nobjs + p->nprefixes;
}

static int list_open(void *user, enum xml_id id)
{
	struct list_ctx *lc = user;
	struct dmfs_list_page *p = lc->page;
	struct dmfs_obj_info *objs;

	if (id != ID_CONTENTS && id != ID_VERSION && id != ID_DELETE_MARKER)
		return 0;
	if (list_entries(p) >= S3_XML_ENTRIES_MAX)
		return DMFS_ERR_TOO_BIG;
	objs = grow(p->objs, &lc->objcap, p->nobjs + 1, sizeof(*objs));
	if (!objs)
		return DMFS_ERR_NOMEM;
	p->objs = objs;
	/*
	 * Counted from the start, so that a failure inside the element
	 * frees whatever it got through dmfs_list_page_free.
	 */
	memset(&p->objs[p->nobjs], 0, sizeof(*p->objs));
	p->objs[p->nobjs++].is_delete_marker = id == ID_DELETE_MARKER;
	lc->obj_seen = 0;
	return 0;
}

static int list_add_prefix(struct list_ctx *lc, const char *text, size_t len)
{
	struct dmfs_list_page *p = lc->page;
	char **prefixes;

	if (len == 0)
		return DMFS_ERR_PROTOCOL;
	if (list_entries(p) >= S3_XML_ENTRIES_MAX)
		return DMFS_ERR_TOO_BIG;
	prefixes = grow(p->prefixes, &lc->prefcap, p->nprefixes + 1,
			sizeof(*prefixes));
	if (!prefixes)
		return DMFS_ERR_NOMEM;
	p->prefixes = prefixes;
	p->prefixes[p->nprefixes] = strndup(text, len);
	if (!p->prefixes[p->nprefixes])
		return DMFS_ERR_NOMEM;
	p->nprefixes++;
	return 0;
}

static int list_close_entry_leaf(struct list_ctx *lc, enum xml_id id,
				 char *text, size_t len)
{
	struct dmfs_obj_info *o = &lc->page->objs[lc->page->nobjs - 1];
	long long t;
	int rc;

	/* Two <Size> in one <Contents>: which one is right? */
	if (lc->obj_seen & BIT(id))
		return DMFS_ERR_PROTOCOL;
	lc->obj_seen |= BIT(id);

	switch (id) {
	case ID_KEY:
		/* Keys are user data: taken byte for byte, never trimmed. */
		if (len == 0)
			return DMFS_ERR_PROTOCOL;
		o->key = strndup(text, len);
		return o->key ? 0 : DMFS_ERR_NOMEM;
	case ID_SIZE:
		return parse_u64(trim(text, &len), &o->size);
	case ID_LAST_MODIFIED:
		t = s3_xml_parse_time(trim(text, &len));
		if (t == -1)
			return DMFS_ERR_PROTOCOL;
		o->mtime = t;
		return 0;
	case ID_ETAG:
		return take_etag(o->etag, sizeof(o->etag), text, len);
	case ID_VERSION_ID:
		/* "null" is a version: the one written before versioning. */
		rc = take_version_id(text, len, &o->version_id);
		if (!rc && !o->version_id)
			rc = DMFS_ERR_PROTOCOL;
		return rc;
	case ID_IS_LATEST:
		return parse_bool(text, len, &o->is_latest);
	default:
		return 0;
	}
}

static int list_close(void *user, enum xml_id id, char *text, size_t len)
{
	struct list_ctx *lc = user;
	struct dmfs_list_page *p = lc->page;

	switch (id) {
	case ID_ROOT:
	case ID_COMMON_PREFIXES:
		return 0;
	case ID_CONTENTS:
		/* An object without a name cannot be shown. */
		return (lc->obj_seen & BIT(ID_KEY)) ? 0 : DMFS_ERR_PROTOCOL;
	case ID_VERSION:
	case ID_DELETE_MARKER:
		/* Nor a version without its id be read. */
		return (lc->obj_seen & BIT(ID_KEY)) &&
			       (lc->obj_seen & BIT(ID_VERSION_ID))
			   ? 0
			   : DMFS_ERR_PROTOCOL;
	case ID_KEY:
	case ID_SIZE:
	case ID_LAST_MODIFIED:
	case ID_ETAG:
	case ID_VERSION_ID:
	case ID_IS_LATEST:
		return list_close_entry_leaf(lc, id, text, len);
	case ID_PREFIX:
		return list_add_prefix(lc, text, len);
	default:
		break;
	}

	/* The root's own leaves, each at most once. */
	if (lc->top_seen & BIT(id))
		return DMFS_ERR_PROTOCOL;
	lc->top_seen |= BIT(id);
	switch (id) {
	case ID_IS_TRUNCATED:
		return parse_bool(text, len, &p->truncated);
	case ID_NEXT_TOKEN:
		text = trim(text, &len);
		if (len > S3_XML_TOKEN_MAX)
			return DMFS_ERR_TOO_BIG;
		if (len == 0)
			return 0;
		/* Opaque and never url-encoded: kept as sent. */
		p->next_token = strndup(text, len);
		return p->next_token ? 0 : DMFS_ERR_NOMEM;
	case ID_NEXT_KEY_MARKER:
		/*
		 * A key, url-encoded with the others: never trimmed, decoded
		 * and bounded in list_finish.
		 */
		if (len == 0)
			return 0;
		lc->next_key_marker = strndup(text, len);
		return lc->next_key_marker ? 0 : DMFS_ERR_NOMEM;
	case ID_NEXT_VID_MARKER:
		return take_version_id(text, len, &lc->next_vid_marker);
	case ID_ENCODING_TYPE:
		text = trim(text, &len);
		/*
		 * "url" is the only encoding S3 knows; another would leave
		 * keys we cannot decode.
		 */
		if (strcmp(text, "url") == 0)
			lc->url_encoded = true;
		else if (len != 0)
			return DMFS_ERR_PROTOCOL;
		return 0;
	default:
		return 0;
	}
}

/* Decode (EncodingType=url) and bound one key or prefix. */
static int list_fix_name(const struct list_ctx *lc, char *name)
{
	if (lc->url_encoded && url_decode(name))
		return DMFS_ERR_PROTOCOL;
	return strlen(name) > S3_XML_KEY_MAX ? DMFS_ERR_TOO_BIG : 0;
}

/*
 * Checks that need the whole document: <EncodingType> may come after the
 * keys it describes, and the token (or markers) only mean something if the
 * listing says it is truncated.
 */
static int list_finish(struct list_ctx *lc)
{
	struct dmfs_list_page *p = lc->page;
	int rc;

	for (size_t i = 0; i < p->nobjs; i++) {
		rc = list_fix_name(lc, p->objs[i].key);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < p->nprefixes; i++) {
		rc = list_fix_name(lc, p->prefixes[i]);
		if (rc)
			return rc;
	}
	if (lc->versions) {
		if (lc->next_key_marker) {
			rc = list_fix_name(lc, lc->next_key_marker);
			if (rc)
				return rc;
		}
		if (!p->truncated) {
			free(lc->next_key_marker);
			lc->next_key_marker = NULL;
			free(lc->next_vid_marker);
			lc->next_vid_marker = NULL;
		} else if (!lc->next_key_marker) {
			/*
			 * More to come and no key to go on from.  The
			 * version-id marker may be missing (S3 leaves it out
			 * when a page ends on a common prefix): the key
			 * marker alone still moves on.
			 */
			return DMFS_ERR_PROTOCOL;
		}
		return 0;
	}
	if (!p->truncated) {
		/* "NULL when the listing is complete". */
		free(p->next_token);
		p->next_token = NULL;
	} else if (!p->next_token) {
		/* More to come but no way to ask for it. */
		return DMFS_ERR_PROTOCOL;
	}
	return 0;
}

static const struct xml_grammar list_grammar = {
    .root = "ListBucketResult",
    .rules = list_rules,
    .nrules = ARRAY_SIZE(list_rules),
    .open = list_open,
    .close = list_close,
    .truncate_text = false,
};

/*
 * A listing with more than one page is the caller's business; this reads
 * one.  Keys and prefixes longer than S3_XML_KEY_MAX, or more than
 * S3_XML_ENTRIES_MAX entries, are DMFS_ERR_TOO_BIG.  A <Contents> without
 * <Key>, a bad <Size> or <LastModified>, a repeated field or a truncated
 * listing without NextContinuationToken are DMFS_ERR_PROTOCOL.  Missing
 * Size, LastModified and ETag read as 0, 0 and "".
 */
int s3_xml_parse_list(const char *xml, size_t len, struct dmfs_list_page *out)
{
	struct list_ctx lc = {.page = out};
	int rc;

	if (!out)
		return DMFS_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	rc = xml_run(&list_grammar, &lc, xml, len);
	if (!rc)
		rc = list_finish(&lc);
	if (rc)
		dmfs_list_page_free(out);
	return rc;
}

static const struct xml_grammar versions_grammar = {
    .root = "ListVersionsResult",
    .rules = versions_rules,
    .nrules = ARRAY_SIZE(versions_rules),
    .open = list_open,
    .close = list_close,
    .truncate_text = false,
};

/*
 * Same bounds and errors as s3_xml_parse_list; further a <Version> or
 * <DeleteMarker> without <VersionId>, a bad <IsLatest>, or a truncated
 * listing without NextKeyMarker are DMFS_ERR_PROTOCOL.  A missing
 * IsLatest reads as false.
 */
int s3_xml_parse_versions(const char *xml, size_t len,
			  struct dmfs_list_page *out, char **next_key_marker,
			  char **next_vid_marker)
{
	struct list_ctx lc = {.page = out, .versions = true};
	int rc;

	if (next_key_marker)
		*next_key_marker = NULL;
	if (next_vid_marker)
		*next_vid_marker = NULL;
	if (!out)
		return DMFS_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	rc = xml_run(&versions_grammar, &lc, xml, len);
	if (!rc)
		rc = list_finish(&lc);
	if (rc) {
		dmfs_list_page_free(out);
	} else {
		if (next_key_marker) {
			*next_key_marker = lc.next_key_marker;
			lc.next_key_marker = NULL;
		}
		if (next_vid_marker) {
			*next_vid_marker = lc.next_vid_marker;
			lc.next_vid_marker = NULL;
		}
	}
	free(lc.next_key_marker);
	free(lc.next_vid_marker);
	return rc;
}

/* --- VersioningConfiguration --------------------------------------------- */

struct versioning_ctx {
	int enabled;
	bool seen; /* <Status> */
};

static int versioning_close(void *user, enum xml_id id, char *text, size_t len)
{
	struct versioning_ctx *vc = user;

	if (id != ID_STATUS)
		return 0;
	if (vc->seen)
		return DMFS_ERR_PROTOCOL;
	vc->seen = true;
	text = trim(text, &len);
	/* An empty <Status/> says no more than no <Status> at all. */
	if (strcmp(text, "Enabled") == 0)
		vc->enabled = 1;
	else if (strcmp(text, "Suspended") != 0 && len != 0)
		return DMFS_ERR_PROTOCOL;
	return 0;
}

static const struct xml_grammar versioning_grammar = {
    .root = "VersioningConfiguration",
    .rules = versioning_rules,
    .nrules = ARRAY_SIZE(versioning_rules),
    .open = NULL,
    .close = versioning_close,
    .truncate_text = false,
};

/*
 * A bucket that was never versioned answers with an empty
 * <VersioningConfiguration/>; once enabled, versioning can be suspended
 * but never removed.  A Status other than Enabled and Suspended is a state
 * we do not know, DMFS_ERR_PROTOCOL rather than a guess.
 */
int s3_xml_parse_versioning(const char *xml, size_t len, int *enabled)
{
	struct versioning_ctx vc = {0};
	int rc;

	if (!enabled)
		return DMFS_ERR_INVAL;
	rc = xml_run(&versioning_grammar, &vc, xml, len);
	if (!rc)
		*enabled = vc.enabled;
	return rc;
}

/* --- CopyObjectResult ---------------------------------------------------- */

struct copy_ctx {
	char *etag;
	size_t etagsz;
	bool seen; /* <ETag> */
};

static int copy_close(void *user, enum xml_id id, char *text, size_t len)
{
	struct copy_ctx *cc = user;

	if (id != ID_ETAG)
		return 0;
	if (cc->seen)
		return DMFS_ERR_PROTOCOL;
	cc->seen = true;
	return take_etag(cc->etag, cc->etagsz, text, len);
}

static const struct xml_grammar copy_grammar = {
    .root = "CopyObjectResult",
    .rules = copy_rules,
    .nrules = ARRAY_SIZE(copy_rules),
    .open = NULL,
    .close = copy_close,
    .truncate_text = false,
};

/*
 * S3 sends the 200 of a copy before the copy is done and reports a late
 * failure in the body, as an <Error>.  So a body that is not a
 * CopyObjectResult is read again as an error; the second parse only runs
 * on that unhappy path, and expat stops at the first element either way.
 */
static int parse_copy_like(const struct xml_grammar *g, const char *xml,
			   size_t len, char *etag, size_t etagsz,
			   struct dmfs_err_detail *d)
{
	struct copy_ctx cc = {.etag = etag, .etagsz = etagsz};
	int rc;

	if (!etag || etagsz == 0 || !d)
		return DMFS_ERR_INVAL;
	etag[0] = '\0';
	rc = xml_run(g, &cc, xml, len);
	if (!rc && (!cc.seen || !etag[0]))
		rc = DMFS_ERR_PROTOCOL; /* a copy of what? */
	if (rc == DMFS_ERR_PROTOCOL && s3_xml_parse_error(xml, len, d) == 0)
		rc = DMFS_ERR_SERVER;
	if (rc)
		etag[0] = '\0';
	return rc;
}

int s3_xml_parse_copy_result(const char *xml, size_t len, char *etag,
			     size_t etagsz, struct dmfs_err_detail *d)
{
	return parse_copy_like(&copy_grammar, xml, len, etag, etagsz, d);
}

/* UploadPartCopy answers in the shape of a CopyObject, under another
 * root, and can fail after "200 OK" the same way. */
static const struct xml_grammar copy_part_grammar = {
    .root = "CopyPartResult",
    .rules = copy_rules,
    .nrules = ARRAY_SIZE(copy_rules),
    .open = NULL,
    .close = copy_close,
    .truncate_text = false,
};

int s3_xml_parse_copy_part(const char *xml, size_t len, char *etag,
			   size_t etagsz, struct dmfs_err_detail *d)
{
	return parse_copy_like(&copy_part_grammar, xml, len, etag, etagsz, d);
}

/* --- multipart ----------------------------------------------------------- */

static const struct xml_grammar complete_grammar = {
    .root = "CompleteMultipartUploadResult",
    .rules = copy_rules,
    .nrules = ARRAY_SIZE(copy_rules),
    .open = NULL,
    .close = copy_close,
    .truncate_text = false,
};

int s3_xml_parse_complete(const char *xml, size_t len, char *etag,
			  size_t etagsz, struct dmfs_err_detail *d)
{
	struct copy_ctx cc = {.etag = etag, .etagsz = etagsz};
	int rc;

	if (!etag || etagsz == 0 || !d)
		return DMFS_ERR_INVAL;
	etag[0] = '\0';
	rc = xml_run(&complete_grammar, &cc, xml, len);
	if (!rc && (!cc.seen || !etag[0]))
		rc = DMFS_ERR_PROTOCOL;
	if (rc == DMFS_ERR_PROTOCOL && s3_xml_parse_error(xml, len, d) == 0)
		rc = DMFS_ERR_SERVER;
	if (rc)
		etag[0] = '\0';
	return rc;
}

struct initiate_ctx {
	char *id;
	size_t idsz;
	bool seen;
};

static int initiate_close(void *user, enum xml_id id, char *text, size_t len)
{
	struct initiate_ctx *ic = user;

	if (id != ID_UPLOAD_ID)
		return 0;
	text = trim(text, &len);
	if (ic->seen || len == 0 || len >= ic->idsz)
		return DMFS_ERR_PROTOCOL;
	memcpy(ic->id, text, len);
	ic->id[len] = '\0';
	ic->seen = true;
	return 0;
}

static const struct xml_grammar initiate_grammar = {
    .root = "InitiateMultipartUploadResult",
    .rules = initiate_rules,
    .nrules = ARRAY_SIZE(initiate_rules),
    .open = NULL,
    .close = initiate_close,
    .truncate_text = false,
};

int s3_xml_parse_initiate(const char *xml, size_t len, char *id, size_t idsz)
{
	struct initiate_ctx ic = {.id = id, .idsz = idsz};
	int rc;

	if (!id || idsz == 0)
		return DMFS_ERR_INVAL;
	id[0] = '\0';
	rc = xml_run(&initiate_grammar, &ic, xml, len);
	if (!rc && !ic.seen)
		rc = DMFS_ERR_PROTOCOL;
	return rc;
}

/* --- Error --------------------------------------------------------------- */

struct error_ctx {
	struct dmfs_err_detail got;
	unsigned seen; /* BIT(id) of the fields found */
};

static int error_close(void *user, enum xml_id id, char *text, size_t len)
{
	struct error_ctx *ec = user;

	if (!text) /* the root */
		return 0;
	text = trim(text, &len);
	switch (id) {
	case ID_CODE:
		copy_utf8(ec->got.s3_code, sizeof(ec->got.s3_code), text, len);
		break;
	case ID_MESSAGE:
		copy_utf8(ec->got.message, sizeof(ec->got.message), text, len);
		break;
	case ID_REQUEST_ID:
		copy_utf8(ec->got.request_id, sizeof(ec->got.request_id), text,
			  len);
		break;
	default:
		return 0;
	}
	ec->seen |= BIT(id);
	return 0;
}

static const struct xml_grammar error_grammar = {
    .root = "Error",
    .rules = error_rules,
    .nrules = ARRAY_SIZE(error_rules),
    .open = NULL,
    .close = error_close,
    /* A long message is still worth its first 255 bytes. */
    .truncate_text = true,
};

/*
 * The fields are filled only once the whole body parsed, so that `d` is
 * untouched on failure.  An <Error> without a <Code> tells nothing and is
 * DMFS_ERR_PROTOCOL.  A field the body lacks keeps its value in `d`: the
 * request id from the x-amz-request-id header survives a body without one.
 */
int s3_xml_parse_error(const char *xml, size_t len, struct dmfs_err_detail *d)
{
	struct error_ctx ec;
	int rc;

	if (!d)
		return DMFS_ERR_INVAL;
	memset(&ec, 0, sizeof(ec));
	rc = xml_run(&error_grammar, &ec, xml, len);
	if (rc)
		return rc;
	if (!(ec.seen & BIT(ID_CODE)) || !ec.got.s3_code[0])
		return DMFS_ERR_PROTOCOL;
	memcpy(d->s3_code, ec.got.s3_code, sizeof(d->s3_code));
	if (ec.seen & BIT(ID_MESSAGE))
		memcpy(d->message, ec.got.message, sizeof(d->message));
	if (ec.seen & BIT(ID_REQUEST_ID))
		memcpy(d->request_id, ec.got.request_id, sizeof(d->request_id));
	return 0;
}

/* --- Time ---------------------------------------------------------------- */

/* Exactly `n` decimal digits; sscanf("%d") would take signs and blanks. */
static bool take_digits(const char **s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*s)[i];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*s += n;
	*out = v;
	return true;
}

static bool take_char(const char **s, char c)
{
	if (**s != c)
		return false;
	(*s)++;
	return true;
}

static int days_in_month(int year, int mon)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return mon == 2 && leap ? 29 : days[mon - 1];
}

/*
 * The form S3 writes: "YYYY-MM-DDTHH:MM:SS", an optional fraction of any
 * number of digits (dropped), and "Z".  Offsets other than Z are refused
 * rather than guessed.  A time of exactly -1 (1969-12-31T23:59:59Z) cannot
 * be told from an error; S3 objects are younger than that.
 */
long long s3_xml_parse_time(const char *iso)
{
	struct tm tm;
	int year, mon, day, hour, min, sec;
	const char *s = iso;
	time_t t;

	if (!s)
		return -1;
	if (!take_digits(&s, 4, &year) || !take_char(&s, '-') ||
	    !take_digits(&s, 2, &mon) || !take_char(&s, '-') ||
	    !take_digits(&s, 2, &day) || !take_char(&s, 'T') ||
	    !take_digits(&s, 2, &hour) || !take_char(&s, ':') ||
	    !take_digits(&s, 2, &min) || !take_char(&s, ':') ||
	    !take_digits(&s, 2, &sec))
		return -1;
	if (take_char(&s, '.')) {
		if (*s < '0' || *s > '9')
			return -1;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (!take_char(&s, 'Z') || *s)
		return -1;
	/* 60 is a leap second; timegm folds it into the next minute. */
	if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) ||
	    hour > 23 || min > 59 || sec > 60)
		return -1;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	return (long long)t;
}
