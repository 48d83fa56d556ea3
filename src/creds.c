/*
 * creds.c - load S3 credentials (see creds.h for the order of sources).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "dmfs/creds.h"
#include "dmfs/err.h"

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static int copy_field(char *dst, size_t dstsz, const char *src)
{
	size_t n = strlen(src);
	if (n == 0 || n >= dstsz)
		return DMFS_ERR_CONFIG;
	memcpy(dst, src, n + 1);
	return 0;
}

/* s3fs passwd file: lines "ACCESS:SECRET" or "bucket:ACCESS:SECRET";
 * a bucket line for our bucket wins over a default line. */
static int load_passwd_file(const char *path, const char *bucket,
			    struct dmfs_creds *out, char *msg, size_t msgsz)
{
	struct stat st;
	char line[1024];
	int found = 0, rc = 0;
	FILE *f;

	if (stat(path, &st) != 0) {
		snprintf(msg, msgsz, "passwd_file %s: %s", path,
			 strerror(errno));
		return DMFS_ERR_CONFIG;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(msg, msgsz,
			 "passwd_file %s: refusing a credentials file that "
			 "group or others can access (mode %03o); run "
			 "chmod 600 %s",
			 path, (unsigned)(st.st_mode & 0777), path);
		return DMFS_ERR_CONFIG;
	}
	f = fopen(path, "r");
	if (!f) {
		snprintf(msg, msgsz, "passwd_file %s: %s", path,
			 strerror(errno));
		return DMFS_ERR_CONFIG;
	}
	while (fgets(line, sizeof(line), f)) {
		char *l = trim(line);
		if (!*l || *l == '#')
			continue;
		char *c1 = strchr(l, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		const char *ak, *sk;
		if (!c1)
			continue;
		if (c2) { /* bucket:ACCESS:SECRET */
			*c1 = *c2 = '\0';
			if (!bucket || strcmp(l, bucket) != 0)
				continue;
			ak = c1 + 1;
			sk = c2 + 1;
			found = 2;
		} else {
			if (found == 2)
				continue;
			*c1 = '\0';
			ak = l;
			sk = c1 + 1;
			found = 1;
		}
		if (copy_field(out->access_key, sizeof(out->access_key), ak) ||
		    copy_field(out->secret_key, sizeof(out->secret_key), sk)) {
			snprintf(msg, msgsz, "passwd_file %s: malformed line",
				 path);
			rc = DMFS_ERR_CONFIG;
			break;
		}
	}
	OPENSSL_cleanse(line, sizeof(line));
	fclose(f);
	if (!rc && !found) {
		snprintf(msg, msgsz,
			 "passwd_file %s: no ACCESS:SECRET line found", path);
		rc = DMFS_ERR_CONFIG;
	}
	if (!rc)
		snprintf(out->source, sizeof(out->source), "passwd_file %s",
			 path);
	return rc;
}

/* INI-style shared credentials file, one [profile] section. */
static int load_shared_file(const char *path, const char *profile,
			    struct dmfs_creds *out, char *msg, size_t msgsz)
{
	char line[4200];
	int in_section = 0, seen_section = 0, rc = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		snprintf(msg, msgsz, "credentials file %s: %s", path,
			 strerror(errno));
		return DMFS_ERR_CONFIG;
	}
	while (fgets(line, sizeof(line), f)) {
		char *l = trim(line);
		if (!*l || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			char *end = strchr(l, ']');
			if (end)
				*end = '\0';
			char *name = trim(l + 1);
			if (strncmp(name, "profile ", 8) == 0)
				name = trim(name + 8);
			in_section = strcmp(name, profile) == 0;
			seen_section |= in_section;
			continue;
		}
		if (!in_section)
			continue;
		char *eq = strchr(l, '=');
		if (!eq)
			continue;
		*eq = '\0';
		char *k = trim(l), *v = trim(eq + 1);
		if (strcmp(k, "aws_access_key_id") == 0)
			rc = copy_field(out->access_key,
					sizeof(out->access_key), v);
		else if (strcmp(k, "aws_secret_access_key") == 0)
			rc = copy_field(out->secret_key,
					sizeof(out->secret_key), v);
		else if (strcmp(k, "aws_session_token") == 0)
			rc = copy_field(out->session_token,
					sizeof(out->session_token), v);
		if (rc)
			break;
	}
	OPENSSL_cleanse(line, sizeof(line));
	fclose(f);
	if (rc) {
		snprintf(msg, msgsz, "credentials file %s: bad value in [%s]",
			 path, profile);
		return rc;
	}
	if (!seen_section || !out->access_key[0] || !out->secret_key[0]) {
		snprintf(msg, msgsz,
			 "credentials file %s: profile [%s] has no "
			 "aws_access_key_id / aws_secret_access_key",
			 path, profile);
		return DMFS_ERR_CONFIG;
	}
	snprintf(out->source, sizeof(out->source),
		 "credentials file, profile %s", profile);
	return 0;
}

static const char *shared_file_path(char *buf, size_t bufsz)
{
	const char *env = getenv("AWS_SHARED_CREDENTIALS_FILE");
	if (env && *env)
		return env;
	const char *home = getenv("HOME");
	if (!home || !*home)
		return NULL;
	snprintf(buf, bufsz, "%s/.aws/credentials", home);
	return buf;
}

int dmfs_creds_load(const struct dmfs_creds_opts *o, struct dmfs_creds *out,
		    char *msg, size_t msgsz)
{
	char pathbuf[4096];
	const char *path;
	int rc;

	memset(out, 0, sizeof(*out));
	msg[0] = '\0';
	if (o->public_access) {
		out->anonymous = true;
		snprintf(out->source, sizeof(out->source), "public (unsigned)");
		return 0;
	}
	if (o->passwd_file) {
		rc = load_passwd_file(o->passwd_file, o->bucket, out, msg,
				      msgsz);
		goto out;
	}
	path = shared_file_path(pathbuf, sizeof(pathbuf));
	if (o->profile) {
		if (!path) {
			snprintf(msg, msgsz,
				 "profile %s: no credentials file ($HOME unset)",
				 o->profile);
			return DMFS_ERR_CONFIG;
		}
		rc = load_shared_file(path, o->profile, out, msg, msgsz);
		goto out;
	}
	const char *ak = getenv("AWS_ACCESS_KEY_ID");
	const char *sk = getenv("AWS_SECRET_ACCESS_KEY");
	if (ak && *ak && sk && *sk) {
		const char *tok = getenv("AWS_SESSION_TOKEN");
		rc = copy_field(out->access_key, sizeof(out->access_key), ak);
		if (!rc)
			rc = copy_field(out->secret_key,
					sizeof(out->secret_key), sk);
		if (!rc && tok && *tok)
			rc = copy_field(out->session_token,
					sizeof(out->session_token), tok);
		if (rc)
			snprintf(msg, msgsz,
				 "AWS_* credential variables are too long");
		else
			snprintf(out->source, sizeof(out->source),
				 "environment");
		goto out;
	}
	const char *prof = getenv("AWS_PROFILE");
	struct stat st;
	if (path && stat(path, &st) == 0) {
		rc = load_shared_file(path, prof && *prof ? prof : "default",
				      out, msg, msgsz);
		goto out;
	}
	snprintf(msg, msgsz,
		 "no S3 credentials: set AWS_ACCESS_KEY_ID and "
		 "AWS_SECRET_ACCESS_KEY, use ~/.aws/credentials, "
		 "-o profile=, -o passwd_file=, or -o public");
	rc = DMFS_ERR_CONFIG;
out:
	if (rc)
		dmfs_creds_wipe(out);
	return rc;
}

void dmfs_creds_wipe(struct dmfs_creds *c)
{
	if (c)
		OPENSSL_cleanse(c, sizeof(*c));
}
