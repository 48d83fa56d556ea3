/*
 * sha256.c - content hashes of file regions (see sha256.h).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "dmfs/err.h"
#include "dmfs/sha256.h"

#define HASH_CHUNK (1u << 20)

static void to_hex(const unsigned char md[32], char out[65])
{
	static const char hex[] = "0123456789abcdef";

	for (unsigned int i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

int dmfs_sha256_fd(int fd, uint64_t off, uint64_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdl = 0;
	uint64_t done = 0;
	char *buf = malloc(HASH_CHUNK);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int rc = 0;

	if (!buf || !c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		rc = DMFS_ERR_NOMEM;
		goto out;
	}
	while (done < len) {
		size_t want = len - done < HASH_CHUNK ? (size_t)(len - done)
						      : HASH_CHUNK;
		ssize_t n = pread(fd, buf, want, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = DMFS_ERR_IO;
			goto out;
		}
		EVP_DigestUpdate(c, buf, (size_t)n);
		done += (uint64_t)n;
	}
	EVP_DigestFinal_ex(c, md, &mdl);
	to_hex(md, out);
out:
	EVP_MD_CTX_free(c);
	free(buf);
	return rc;
}

struct dmfs_sha256_run {
	EVP_MD_CTX *c;
	uint64_t len;	/* bytes hashed: [0, len) */
	bool broken;	/* a change inside [0, len): no hash until reset */
};

struct dmfs_sha256_run *dmfs_sha256_run_new(void)
{
	struct dmfs_sha256_run *r = calloc(1, sizeof(*r));

	if (r && (!(r->c = EVP_MD_CTX_new()) ||
		  EVP_DigestInit_ex(r->c, EVP_sha256(), NULL) != 1)) {
		dmfs_sha256_run_free(r);
		return NULL;
	}
	return r;
}

void dmfs_sha256_run_free(struct dmfs_sha256_run *r)
{
	if (!r)
		return;
	EVP_MD_CTX_free(r->c);
	free(r);
}

void dmfs_sha256_run_write(struct dmfs_sha256_run *r, const void *buf,
			   size_t n, uint64_t off)
{
	if (!r || r->broken || n == 0)
		return;
	if (off == r->len) {
		if (EVP_DigestUpdate(r->c, buf, n) == 1)
			r->len += n;
		else
			r->broken = true;
	} else if (off < r->len) {
		r->broken = true;
	}
}

void dmfs_sha256_run_truncate(struct dmfs_sha256_run *r, uint64_t size)
{
	if (!r)
		return;
	if (size == 0) {
		/* Empty again: a fresh start, whatever happened before. */
		r->broken = EVP_DigestInit_ex(r->c, EVP_sha256(), NULL) != 1;
		r->len = 0;
	} else if (size < r->len) {
		r->broken = true;
	}
}

uint64_t dmfs_sha256_run_len(const struct dmfs_sha256_run *r)
{
	return r && !r->broken ? r->len : 0;
}

bool dmfs_sha256_run_get(const struct dmfs_sha256_run *r, uint64_t size,
			 char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdl = 0;
	bool ok;

	if (!r || r->broken || r->len != size)
		return false;
	/* Finish a copy: the file may grow on after this upload. */
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	ok = c && EVP_MD_CTX_copy_ex(c, r->c) == 1 &&
	     EVP_DigestFinal_ex(c, md, &mdl) == 1 && mdl == 32;
	EVP_MD_CTX_free(c);
	if (ok)
		to_hex(md, out);
	return ok;
}

bool dmfs_is_sha256_hex(const char *s)
{
	if (!s || strlen(s) != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}
