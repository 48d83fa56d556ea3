/*
 * creds.h - where S3 credentials come from.
 *
 * Order (the first that applies wins):
 *   1. -o public: anonymous, requests are not signed;
 *   2. -o passwd_file=FILE: s3fs's "ACCESS:SECRET" (or "bucket:ACCESS:SECRET")
 *      format; refused when group or others have any permission on it;
 *   3. -o profile=NAME: that profile of the shared credentials file;
 *   4. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN);
 *   5. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or
 *      ~/.aws/credentials), profile AWS_PROFILE or "default".
 * Secrets are wiped from memory when freed and never logged.
 */
#ifndef DMFS_CREDS_H
#define DMFS_CREDS_H

#include <stdbool.h>

struct dmfs_creds {
	bool anonymous;
	char access_key[128];
	char secret_key[128];
	char session_token[4096];
	char source[160]; /* where they came from, for logs (no secret) */
};

struct dmfs_creds_opts {
	bool public_access;
	const char *passwd_file; /* may be NULL */
	const char *profile;	 /* may be NULL */
	const char *bucket;	 /* for bucket:ACCESS:SECRET lines */
};

/*
 * Resolve credentials into out.  Returns 0, or DMFS_ERR_CONFIG with a
 * human message in msg (no secret in it).
 */
int dmfs_creds_load(const struct dmfs_creds_opts *o, struct dmfs_creds *out,
		    char *msg, size_t msgsz) __attribute__((warn_unused_result));

/* Wipe secrets.  Cannot fail. */
void dmfs_creds_wipe(struct dmfs_creds *c);

#endif
