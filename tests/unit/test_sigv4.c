/*
 * test_sigv4.c - SigV4 against AWS's published examples.
 *
 * Two sources, copied value by value (canonical request, string to sign,
 * signature, Authorization header):
 *
 *  1. The Amazon S3 API Reference, "Signature Calculations for the
 *     Authorization Header: Transferring Payload in a Single Chunk (AWS
 *     Signature Version 4)", section "Examples: Signature Calculations"
 *     (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html):
 *     GET Object, PUT Object, GET Bucket Lifecycle, GET Bucket (List
 *     Objects).  That page prints the Authorization header without blanks
 *     after the commas; S3 accepts both forms and sigv4.h promises ", ",
 *     the form of the test suite below.
 *
 *  2. AWS's SigV4 test suite (https://docs.aws.amazon.com/general/latest/
 *     gr/signature-v4-test-suite.html): service "service", us-east-1,
 *     20150830T123600Z.  The 2015 files are kept by the AWS SDK for
 *     JavaScript (@aws-sdk/signature-v4 suite.fixture.js); AWS keeps the
 *     current copy, with the session-token and content-sha256 cases, in
 *     awslabs/aws-c-auth tests/aws-signing-test-suite/v4/ (files
 *     header-canonical-request.txt, header-string-to-sign.txt,
 *     header-signature.txt, header-signed-request.txt).
 *
 * The suite targets generic services, so its cases run with
 * double_encode_path = true, except get-utf8 and get-space: their request
 * lines ("/ሴ", "/example space/") are not encoded yet and the suite
 * expects them encoded once, which is the S3 rule applied to that text.
 * (Double encoding proper is checked by hand below: no published case has
 * a '%' in its path.)
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dmfs/err.h"
#include "dmfs/sigv4.h"

#include "unit.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define EMPTY_SHA256                                                           \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* S3 API Reference examples */
static const struct sigv4_creds s3_creds = {
    .access_key = "AKIAIOSFODNN7EXAMPLE",
    .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};

/* the generic test suite */
static const struct sigv4_creds suite_creds = {
    .access_key = "AKIDEXAMPLE",
    .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};

static struct sigv4_request s3_request(const char *method, const char *path)
{
	struct sigv4_request r = {
	    .method = method,
	    .path = path,
	    .payload_hash = EMPTY_SHA256,
	    .amz_date = "20130524T000000Z",
	    .region = "us-east-1",
	    .service = "s3",
	    .double_encode_path = false,
	};
	return r;
}

static struct sigv4_request suite_request(const char *method, const char *path)
{
	struct sigv4_request r = {
	    .method = method,
	    .path = path,
	    .payload_hash = EMPTY_SHA256,
	    .amz_date = "20150830T123600Z",
	    .region = "us-east-1",
	    .service = "service",
	    .double_encode_path = true,
	};
	return r;
}

/*
 * Check all four layers of one published example.  The chain is also
 * checked link by link (string to sign from the *expected* canonical
 * request, signature from the *expected* string to sign), so a failure
 * points at the layer that is wrong.
 */
static void check_case(const char *name, const struct sigv4_request *req,
		       const struct sigv4_creds *creds, const char *want_creq,
		       const char *want_sts, const char *want_sig,
		       const char *want_auth)
{
	int failed = unit_failed;
	char *creq, *sts, *auth;
	char sig[65];

	creq = sigv4_canonical_request(req);
	CHECK_STR(creq, want_creq);
	sts = sigv4_string_to_sign(req, want_creq);
	CHECK_STR(sts, want_sts);
	CHECK(sigv4_signature(req, creds, want_sts, sig) == 0);
	CHECK_STR(sig, want_sig);
	auth = sigv4_authorization(req, creds);
	CHECK_STR(auth, want_auth);
	if (unit_failed != failed)
		fprintf(stderr, "  ^ in case %s\n", name);
	free(creq);
	free(sts);
	free(auth);
}

/* ---- S3 API Reference ---------------------------------------------- */

static void test_s3_get_object(void)
{
	/* header values as the page's request shows them, blanks and all */
	static const struct sigv4_kv h[] = {
	    {"Host", "examplebucket.s3.amazonaws.com"},
	    {"Range", "bytes=0-9 "},
	    {"x-amz-content-sha256", EMPTY_SHA256},
	    {"x-amz-date", " 20130524T000000Z "},
	};
	struct sigv4_request r = s3_request("GET", "/test.txt");

	r.headers = h;
	r.nheaders = ARRAY_SIZE(h);
	check_case(
	    "S3 GET Object", &r, &s3_creds,
	    "GET\n"
	    "/test.txt\n"
	    "\n"
	    "host:examplebucket.s3.amazonaws.com\n"
	    "range:bytes=0-9\n"
	    "x-amz-content-sha256:" EMPTY_SHA256 "\n"
	    "x-amz-date:20130524T000000Z\n"
	    "\n"
	    "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
	    "AWS4-HMAC-SHA256\n"
	    "20130524T000000Z\n"
	    "20130524/us-east-1/s3/aws4_request\n"
	    "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
	    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
	    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
	    "us-east-1/s3/aws4_request, "
	    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
	    "Signature="
	    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void test_s3_put_object(void)
{
	static const char body[] = "Welcome to Amazon S3.";
	char hash[65];
	struct sigv4_kv h[] = {
	    {"Host", "examplebucket.s3.amazonaws.com"},
	    {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
	    {"x-amz-date", "20130524T000000Z"},
	    {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
	    {"x-amz-content-sha256", hash},
	};
	struct sigv4_request r = s3_request("PUT", "/test$file.text");

	sigv4_sha256_hex(body, strlen(body), hash);
	CHECK_STR(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e420"
			"34a8b803f8b072");
	r.headers = h;
	r.nheaders = ARRAY_SIZE(h);
	r.payload_hash = hash;
	check_case(
	    "S3 PUT Object", &r, &s3_creds,
	    "PUT\n"
	    "/test%24file.text\n"
	    "\n"
	    "date:Fri, 24 May 2013 00:00:00 GMT\n"
	    "host:examplebucket.s3.amazonaws.com\n"
	    "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b"
	    "4e99e42034a8b803f8b072\n"
	    "x-amz-date:20130524T000000Z\n"
	    "x-amz-storage-class:REDUCED_REDUNDANCY\n"
	    "\n"
	    "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
	    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
	    "AWS4-HMAC-SHA256\n"
	    "20130524T000000Z\n"
	    "20130524/us-east-1/s3/aws4_request\n"
	    "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
	    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
	    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
	    "us-east-1/s3/aws4_request, "
	    "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
	    "x-amz-storage-class, "
	    "Signature="
	    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

static void test_s3_get_lifecycle(void)
{
	static const struct sigv4_kv q[] = {{"lifecycle", ""}};
	static const struct sigv4_kv h[] = {
	    {"Host", "examplebucket.s3.amazonaws.com"},
	    {"x-amz-date", "20130524T000000Z"},
	    {"x-amz-content-sha256", EMPTY_SHA256},
	};
	struct sigv4_request r = s3_request("GET", "/");

	r.query = q;
	r.nquery = ARRAY_SIZE(q);
	r.headers = h;
	r.nheaders = ARRAY_SIZE(h);
	check_case(
	    "S3 GET Bucket Lifecycle", &r, &s3_creds,
	    "GET\n"
	    "/\n"
	    "lifecycle=\n"
	    "host:examplebucket.s3.amazonaws.com\n"
	    "x-amz-content-sha256:" EMPTY_SHA256 "\n"
	    "x-amz-date:20130524T000000Z\n"
	    "\n"
	    "host;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
	    "AWS4-HMAC-SHA256\n"
	    "20130524T000000Z\n"
	    "20130524/us-east-1/s3/aws4_request\n"
	    "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
	    "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
	    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
	    "us-east-1/s3/aws4_request, "
	    "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
	    "Signature="
	    "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

static void test_s3_list_objects(void)
{
	/* given out of order: the canonical form sorts them */
	static const struct sigv4_kv q[] = {{"prefix", "J"}, {"max-keys", "2"}};
	static const struct sigv4_kv h[] = {
	    {"x-amz-date", "20130524T000000Z"},
	    {"x-amz-content-sha256", EMPTY_SHA256},
	    {"Host", "examplebucket.s3.amazonaws.com"},
	};
	struct sigv4_request r = s3_request("GET", "/");

	r.query = q;
	r.nquery = ARRAY_SIZE(q);
	r.headers = h;
	r.nheaders = ARRAY_SIZE(h);
	check_case(
	    "S3 GET Bucket (List Objects)", &r, &s3_creds,
	    "GET\n"
	    "/\n"
	    "max-keys=2&prefix=J\n"
	    "host:examplebucket.s3.amazonaws.com\n"
	    "x-amz-content-sha256:" EMPTY_SHA256 "\n"
	    "x-amz-date:20130524T000000Z\n"
	    "\n"
	    "host;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
	    "AWS4-HMAC-SHA256\n"
	    "20130524T000000Z\n"
	    "20130524/us-east-1/s3/aws4_request\n"
	    "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
	    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
	    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
	    "us-east-1/s3/aws4_request, "
	    "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
	    "Signature="
	    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

/* ---- the generic test suite ---------------------------------------- */

#define SUITE_SCOPE "20150830/us-east-1/service/aws4_request"
#define SUITE_STS "AWS4-HMAC-SHA256\n20150830T123600Z\n" SUITE_SCOPE "\n"
#define SUITE_AUTH "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/" SUITE_SCOPE ", "

static const struct sigv4_kv suite_plain_headers[] = {
    {"Host", "example.amazonaws.com"},
    {"X-Amz-Date", "20150830T123600Z"},
};

#define SUITE_PLAIN_HEADERS                                                    \
	"host:example.amazonaws.com\n"                                         \
	"x-amz-date:20150830T123600Z\n"                                        \
	"\n"                                                                   \
	"host;x-amz-date\n" EMPTY_SHA256

static void test_suite_get_vanilla(void)
{
	struct sigv4_request r = suite_request("GET", "/");

	r.headers = suite_plain_headers;
	r.nheaders = ARRAY_SIZE(suite_plain_headers);
	check_case(
	    "get-vanilla", &r, &suite_creds, "GET\n/\n\n" SUITE_PLAIN_HEADERS,
	    SUITE_STS
	    "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
	    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
	    SUITE_AUTH "SignedHeaders=host;x-amz-date, Signature="
		       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8a"
		       "ae1d763fbf31");
}

static void test_suite_query_order_key_case(void)
{
	static const struct sigv4_kv q[] = {
	    {"Param2", "value2"},
	    {"Param1", "value1"},
	};
	struct sigv4_request r = suite_request("GET", "/");

	r.query = q;
	r.nquery = ARRAY_SIZE(q);
	r.headers = suite_plain_headers;
	r.nheaders = ARRAY_SIZE(suite_plain_headers);
	check_case(
	    "get-vanilla-query-order-key-case", &r, &suite_creds,
	    "GET\n/\nParam1=value1&Param2=value2\n" SUITE_PLAIN_HEADERS,
	    SUITE_STS
	    "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
	    "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
	    SUITE_AUTH "SignedHeaders=host;x-amz-date, Signature="
		       "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d321"
		       "9ec94cdf2500");
}

static void test_suite_query_order_encoded(void)
{
	/* the request line has "%E1%88%B4"; our query values are raw */
	static const struct sigv4_kv q[] = {
	    {"Param-3", "Value3"},
	    {"Param", "Value2"},
	    {"\xe1\x88\xb4", "Value1"},
	};
	struct sigv4_request r = suite_request("GET", "/");

	r.query = q;
	r.nquery = ARRAY_SIZE(q);
	r.headers = suite_plain_headers;
	r.nheaders = ARRAY_SIZE(suite_plain_headers);
	check_case(
	    "get-vanilla-query-order-encoded", &r, &suite_creds,
	    "GET\n/"
	    "\n%E1%88%B4=Value1&Param=Value2&Param-3="
	    "Value3\n" SUITE_PLAIN_HEADERS,
	    SUITE_STS
	    "868294f5c38bd141c4972a373a76654f1418a8e4fc18b2e7903ae45e8ae0ec71",
	    "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
	    SUITE_AUTH "SignedHeaders=host;x-amz-date, Signature="
		       "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a"
		       "0e595648fcac");
}

static void test_suite_get_utf8(void)
{
	struct sigv4_request r = suite_request("GET", "/\xe1\x88\xb4");

	r.double_encode_path = false; /* see the top of the file */
	r.headers = suite_plain_headers;
	r.nheaders = ARRAY_SIZE(suite_plain_headers);
	check_case(
	    "get-utf8", &r, &suite_creds,
	    "GET\n/%E1%88%B4\n\n" SUITE_PLAIN_HEADERS,
	    SUITE_STS
	    "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
	    "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
	    SUITE_AUTH "SignedHeaders=host;x-amz-date, Signature="
		       "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891f"
		       "d03141be5d85");
}

static void test_suite_get_space(void)
{
	struct sigv4_request r = suite_request("GET", "/example space/");

	r.double_encode_path = false; /* see the top of the file */
	r.headers = suite_plain_headers;
	r.nheaders = ARRAY_SIZE(suite_plain_headers);
	check_case(
	    "get-space", &r, &suite_creds,
	    "GET\n/example%20space/\n\n" SUITE_PLAIN_HEADERS,
	    SUITE_STS
	    "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
	    "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
	    SUITE_AUTH "SignedHeaders=host;x-amz-date, Signature="
		       "652487583200325589f1fba4c7e578f72c47cb61beeca81406b3"
		       "9ddec1366741");
}

/* the 2015 suite: content-type signed, body hash not sent as a header */
static void test_suite_post_form(void)
{
	static const char body[] = "Param1=value1";
	static const struct sigv4_kv h[] = {
	    {"Content-Type", "application/x-www-form-urlencoded"},
	    {"Host", "example.amazonaws.com"},
	    {"X-Amz-Date", "20150830T123600Z"},
	};
	struct sigv4_request r = suite_request("POST", "/");
	char hash[65];

	sigv4_sha256_hex(body, strlen(body), hash);
	r.headers = h;
	r.nheaders = ARRAY_SIZE(h);
	r.payload_hash = hash;
	check_case(
	    "post-x-www-form-urlencoded (2015)", &r, &suite_creds,
	    "POST\n/\n\n"
	    "content-type:application/x-www-form-urlencoded\n"
	    "host:example.amazonaws.com\n"
	    "x-amz-date:20150830T123600Z\n"
	    "\n"
	    "content-type;host;x-amz-date\n"
	    "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
	    SUITE_STS
	    "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
	    "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
	    SUITE_AUTH "SignedHeaders=content-type;host;x-amz-date, "
		       "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc3842"
		       "1b1da7b9d196a0fe09473a");
}

/* the current suite (aws-c-auth): length and body hash signed too */
static void test_suite_post_form_sha256(void)
{
	static const struct sigv4_kv h[] = {
	    {"Content-Type", "application/x-www-form-urlencoded"},
	    {"Host", "example.amazonaws.com"},
	    {"Content-Length", "13"},
	    {"X-Amz-Date", "20150830T123600Z"},
	    {"x-amz-content-sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a6"
				     "54192329106275f4c7b24d0b6e"},
	};
	struct sigv4_request r = suite_request("POST", "/");

	r.headers = h;
	r.nheaders = ARRAY_SIZE(h);
	r.payload_hash =
	    "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";
	check_case(
	    "post-x-www-form-urlencoded (current)", &r, &suite_creds,
	    "POST\n/\n\n"
	    "content-length:13\n"
	    "content-type:application/x-www-form-urlencoded\n"
	    "host:example.amazonaws.com\n"
	    "x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192"
	    "329106275f4c7b24d0b6e\n"
	    "x-amz-date:20150830T123600Z\n"
	    "\n"
	    "content-length;content-type;host;x-amz-content-sha256;"
	    "x-amz-date\n"
	    "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
	    SUITE_STS
	    "b1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb",
	    "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
	    SUITE_AUTH "SignedHeaders=content-length;content-type;host;"
		       "x-amz-content-sha256;x-amz-date, "
		       "Signature=d3875051da38690788ef43de4db0d8f280229d8204"
		       "0bfac253562e56c3f20e0b");
}

static void test_suite_session_token(void)
{
	static const char token[] = "6e86291e8372ff2a2260956d9b8aae1d763fbf315"
				    "fa00fa31553b73ebf194267";
	static const struct sigv4_kv h[] = {
	    {"Host", "example.amazonaws.com"},
	    {"X-Amz-Security-Token", token},
	    {"X-Amz-Date", "20150830T123600Z"},
	};
	struct sigv4_creds c = suite_creds;
	struct sigv4_request r = suite_request("GET", "/");
	char *auth;

	c.session_token = token;
	r.headers = h;
	r.nheaders = ARRAY_SIZE(h);
	check_case(
	    "get-vanilla-with-session-token", &r, &c,
	    "GET\n/\n\n"
	    "host:example.amazonaws.com\n"
	    "x-amz-date:20150830T123600Z\n"
	    "x-amz-security-token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa"
	    "00fa31553b73ebf194267\n"
	    "\n"
	    "host;x-amz-date;x-amz-security-token\n" EMPTY_SHA256,
	    SUITE_STS
	    "067b36aa60031588cea4a4cde1f21215227a047690c72247f1d70b32fbbfad2b",
	    "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
	    SUITE_AUTH "SignedHeaders=host;x-amz-date;x-amz-security-token, "
		       "Signature=07ec1639c89043aa0e3e2de82b96708f198cceab04"
		       "2d4a97044c66dd9f74e7f8");

	auth = sigv4_authorization(&r, &c);
	CHECK(auth && strstr(auth, "SignedHeaders=host;x-amz-date;"
				   "x-amz-security-token,"));
	/* the token is signed, never sent in the Authorization value */
	CHECK(auth && !strstr(auth, token));
	free(auth);
}

static void test_suite_header_value_trim(void)
{
	static const struct sigv4_kv h[] = {
	    {"Host", "example.amazonaws.com"},
	    {"My-Header1", " value1"},
	    {"My-Header2", " \"a   b   c\""},
	    {"X-Amz-Date", "20150830T123600Z"},
	};
	struct sigv4_request r = suite_request("GET", "/");

	r.headers = h;
	r.nheaders = ARRAY_SIZE(h);
	check_case(
	    "get-header-value-trim", &r, &suite_creds,
	    "GET\n/\n\n"
	    "host:example.amazonaws.com\n"
	    "my-header1:value1\n"
	    "my-header2:\"a b c\"\n"
	    "x-amz-date:20150830T123600Z\n"
	    "\n"
	    "host;my-header1;my-header2;x-amz-date\n" EMPTY_SHA256,
	    SUITE_STS
	    "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
	    "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
	    SUITE_AUTH "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
		       "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412"
		       "b367055dee359757a9c736");
}

static void test_suite_header_key_duplicate(void)
{
	static const struct sigv4_kv h[] = {
	    {"Host", "example.amazonaws.com"},	{"My-Header1", "value2"},
	    {"My-Header1", "value2"},		{"My-Header1", "value1"},
	    {"X-Amz-Date", "20150830T123600Z"},
	};
	struct sigv4_request r = suite_request("GET", "/");

	r.headers = h;
	r.nheaders = ARRAY_SIZE(h);
	check_case(
	    "get-header-key-duplicate", &r, &suite_creds,
	    "GET\n/\n\n"
	    "host:example.amazonaws.com\n"
	    "my-header1:value2,value2,value1\n"
	    "x-amz-date:20150830T123600Z\n"
	    "\n"
	    "host;my-header1;x-amz-date\n" EMPTY_SHA256,
	    SUITE_STS
	    "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
	    "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
	    SUITE_AUTH "SignedHeaders=host;my-header1;x-amz-date, "
		       "Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183"
		       "b4468f858259531a5138ea");
}

/* ---- encoding rules ------------------------------------------------ */

static void check_encode(const char *in, bool keep_slash, const char *want)
{
	char *got = sigv4_uri_encode(in, keep_slash);

	CHECK_STR(got, want);
	if (!got || strcmp(got, want) != 0)
		fprintf(stderr, "  ^ sigv4_uri_encode(\"%s\", %d)\n", in,
			keep_slash);
	free(got);
}

static void test_uri_encode(void)
{
	check_encode("", true, "");
	check_encode("a b", true, "a%20b");
	check_encode("a+b", true, "a%2Bb");
	check_encode("\xc3\xa9", true, "%C3%A9"); /* é */
	check_encode("100%", true, "100%25");
	check_encode("~user", true, "~user");
	check_encode("-._~AZaz09", false, "-._~AZaz09");
	check_encode("a/b/", true, "a/b/");
	check_encode("a/b/", false, "a%2Fb%2F");
	check_encode("k=v&x", true, "k%3Dv%26x");
	check_encode("?#[]@!$'()*,;:", true,
		     "%3F%23%5B%5D%40%21%24%27%28%29%2A%2C%3B%3A");
	check_encode("\x01\x7f\xff", true, "%01%7F%FF");
	check_encode("\xd0\xba\xd0\xbb", true, "%D0%BA%D0%BB"); /* кл */
	CHECK(sigv4_uri_encode(NULL, true) == NULL);
}

/* The canonical URI and query of req: the 2nd and 3rd lines. */
static char *canonical_lines_2_3(const struct sigv4_request *req)
{
	char *c = sigv4_canonical_request(req), *a, *b;

	if (!c)
		return NULL;
	a = strchr(c, '\n');
	b = a ? strchr(a + 1, '\n') : NULL;
	b = b ? strchr(b + 1, '\n') : NULL;
	if (!b) {
		free(c);
		return NULL;
	}
	*b = '\0';
	memmove(c, a + 1, strlen(a + 1) + 1);
	return c;
}

static void check_uri(const char *path, bool twice, const char *want)
{
	static const struct sigv4_kv h[] = {{"host", "h"}};
	struct sigv4_request r = s3_request("GET", path);
	char *got;

	r.headers = h;
	r.nheaders = ARRAY_SIZE(h);
	r.double_encode_path = twice;
	got = canonical_lines_2_3(&r);
	CHECK_STR(got, want);
	free(got);
}

static void test_paths(void)
{
	/* S3: once, '/' kept, no normalisation of odd keys */
	check_uri("/bucket/a b+c", false, "/bucket/a%20b%2Bc\n");
	check_uri("/bucket/a//b", false, "/bucket/a//b\n");
	check_uri("/bucket/./x/../y/", false, "/bucket/./x/../y/\n");
	check_uri("/bucket/caf\xc3\xa9 100%", false,
		  "/bucket/caf%C3%A9%20100%25\n");
	check_uri("", false, "/\n");
	/* generic services: the wire form encoded again */
	check_uri("/a b/\xc3\xa9", true, "/a%2520b/%25C3%25A9\n");
	check_uri("/plain/path", true, "/plain/path\n");
}

static void check_query(const struct sigv4_kv *q, size_t n, const char *want)
{
	static const struct sigv4_kv h[] = {{"host", "h"}};
	struct sigv4_request r = s3_request("GET", "/");
	char *got;

	r.query = q;
	r.nquery = n;
	r.headers = h;
	r.nheaders = ARRAY_SIZE(h);
	got = canonical_lines_2_3(&r);
	CHECK_STR(got, want);
	free(got);
}

static void test_query(void)
{
	static const struct sigv4_kv empty[] = {
	    {"versions", ""}, {"delimiter", NULL}, {"acl", ""}};
	static const struct sigv4_kv slash[] = {{"prefix", "dir/sub dir/"},
						{"delimiter", "/"}};
	static const struct sigv4_kv dup[] = {
	    {"b", "2"}, {"a", "1"}, {"a", "0"}, {"A", "9"}};
	/* raw 'a' < 0xC3 but encoded "%C3%A9" < "a": encoded order wins */
	static const struct sigv4_kv enc[] = {
	    {"a", "1"}, {"\xc3\xa9", "2"}, {"a+b", "x=y&z"}};

	check_query(empty, ARRAY_SIZE(empty), "/\nacl=&delimiter=&versions=");
	check_query(slash, ARRAY_SIZE(slash),
		    "/\ndelimiter=%2F&prefix=dir%2Fsub%20dir%2F");
	check_query(dup, ARRAY_SIZE(dup), "/\nA=9&a=0&a=1&b=2");
	check_query(enc, ARRAY_SIZE(enc), "/\n%C3%A9=2&a=1&a%2Bb=x%3Dy%26z");
}

/* ---- refusals and helpers ------------------------------------------ */

static void test_bad_input(void)
{
	static const struct sigv4_kv host[] = {{"host", "h"}};
	static const struct sigv4_kv crlf[] = {
	    {"host", "h"}, {"x-amz-meta-a", "v\r\nx-amz-acl: public"}};
	static const struct sigv4_kv colon[] = {{"ho:st", "h"}};
	static const struct sigv4_kv space[] = {{"my header", "h"}};
	static const struct sigv4_kv noname[] = {{NULL, "h"}};
	struct sigv4_request r = s3_request("GET", "/");
	char sig[65], *s, *big;

	r.headers = crlf;
	r.nheaders = ARRAY_SIZE(crlf);
	CHECK(sigv4_canonical_request(&r) == NULL);
	CHECK(sigv4_authorization(&r, &s3_creds) == NULL);
	r.headers = colon;
	CHECK(sigv4_canonical_request(&r) == NULL);
	r.headers = space;
	CHECK(sigv4_canonical_request(&r) == NULL);
	r.headers = noname;
	CHECK(sigv4_canonical_request(&r) == NULL);
	r.nheaders = 0;
	CHECK(sigv4_canonical_request(&r) == NULL);

	r.headers = host;
	r.nheaders = 1;
	r.path = "relative";
	CHECK(sigv4_canonical_request(&r) == NULL);
	r.path = "/";
	r.method = NULL;
	CHECK(sigv4_canonical_request(&r) == NULL);
	r.method = "GET";

	/* a path past the input limit is refused, not allocated */
	big = malloc(70 * 1024);
	CHECK(big != NULL);
	if (big) {
		memset(big, 'a', 70 * 1024 - 1);
		big[0] = '/';
		big[70 * 1024 - 1] = '\0';
		r.path = big;
		CHECK(sigv4_canonical_request(&r) == NULL);
		CHECK(sigv4_uri_encode(big, true) == NULL);
		r.path = "/";
		free(big);
	}

	/* the scope: a date of the wrong form, a '/' in the region */
	r.amz_date = "2013-05-24T00:00:00Z";
	CHECK(sigv4_string_to_sign(&r, "x") == NULL);
	CHECK(sigv4_signature(&r, &s3_creds, "x", sig) == DMFS_ERR_INVAL);
	CHECK(sig[0] == '\0');
	r.amz_date = "20130524T000000Z";
	r.region = "us/east";
	CHECK(sigv4_string_to_sign(&r, "x") == NULL);
	r.region = "us-east-1";

	{
		struct sigv4_creds c = s3_creds;
		c.secret_key = NULL;
		CHECK(sigv4_signature(&r, &c, "x", sig) == DMFS_ERR_INVAL);
		c = s3_creds;
		c.access_key = "AKIA/EXAMPLE";
		CHECK(sigv4_authorization(&r, &c) == NULL);
	}

	s = sigv4_authorization(&r, &s3_creds);
	CHECK(s != NULL);
	free(s);
}

static void test_sha256(void)
{
	char out[65];

	sigv4_sha256_hex("", 0, out);
	CHECK_STR(out, EMPTY_SHA256);
	sigv4_sha256_hex(NULL, 0, out);
	CHECK_STR(out, EMPTY_SHA256);
	sigv4_sha256_hex("abc", 3, out);
	CHECK_STR(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff"
		       "61f20015ad");
}

int main(void)
{
	test_s3_get_object();
	test_s3_put_object();
	test_s3_get_lifecycle();
	test_s3_list_objects();

	test_suite_get_vanilla();
	test_suite_query_order_key_case();
	test_suite_query_order_encoded();
	test_suite_get_utf8();
	test_suite_get_space();
	test_suite_post_form();
	test_suite_post_form_sha256();
	test_suite_session_token();
	test_suite_header_value_trim();
	test_suite_header_key_duplicate();

	test_uri_encode();
	test_paths();
	test_query();
	test_bad_input();
	test_sha256();

	return unit_done("test_sigv4");
}
