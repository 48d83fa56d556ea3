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

int dmfs_sha256_fd(int fd, uint64_t off, uint64_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
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
	for (unsigned int i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
out:
	EVP_MD_CTX_free(c);
	free(buf);
	return rc;
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
