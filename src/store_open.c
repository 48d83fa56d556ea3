/*
 * store_open.c - STORE URI and options to a store backend.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmfs/creds.h"
#include "dmfs/store_file.h"
#include "dmfs/store_open.h"
#include "dmfs/store_s3.h"

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static int open_s3(const char *rest, const struct dmfs_options *o, int quick,
		   struct dmfs_store **out, char *msg, size_t msgsz)
{
	struct s3_config cfg = {0};
	struct dmfs_creds_opts co = {0};
	char *bucket = strdup(rest);
	int rc;

	if (!bucket)
		return DMFS_ERR_NOMEM;
	char *slash = strchr(bucket, '/');
	char *prefix = slash ? slash + 1 : bucket + strlen(bucket);
	if (slash)
		*slash = '\0';
	size_t pl = strlen(prefix);
	while (pl && prefix[pl - 1] == '/')
		prefix[--pl] = '\0';
	if (!*bucket) {
		snprintf(msg, msgsz, "store: expected s3://BUCKET[/PREFIX]");
		free(bucket);
		return DMFS_ERR_CONFIG;
	}
	co.public_access = o->public_access;
	co.passwd_file = o->passwd_file;
	co.profile = o->profile;
	co.bucket = bucket;
	rc = dmfs_creds_load(&co, &cfg.creds, msg, msgsz);
	if (!rc) {
		cfg.bucket = bucket;
		cfg.prefix = prefix;
		cfg.endpoint = o->endpoint ? o->endpoint
					   : env_nonempty("AWS_ENDPOINT_URL");
		cfg.region = o->region ? o->region
			     : env_nonempty("AWS_REGION")
				     ? env_nonempty("AWS_REGION")
				     : env_nonempty("AWS_DEFAULT_REGION");
		cfg.path_style = o->path_style;
		cfg.http.connect_timeout_ms = o->connect_timeout_ms;
		cfg.http.stall_timeout_s = quick ? 10 : o->stall_timeout_s;
		cfg.http.max_retries = quick ? 1 : o->retries;
		cfg.http.retry_base_ms = o->retry_base_ms;
		cfg.http.retry_max_ms = quick ? 500 : o->retry_max_ms;
		cfg.http.ca_bundle = o->ca_bundle
					     ? o->ca_bundle
					     : env_nonempty("AWS_CA_BUNDLE");
		cfg.http.insecure = o->no_verify_ssl;
		cfg.http.max_handles = o->parallel + 16;
		cfg.multipart_copy_size = o->multipart_copy_size;
		cfg.copy_parallel = o->parallel_uploads;
		rc = store_s3_new(&cfg, out, msg, msgsz);
	}
	dmfs_creds_wipe(&cfg.creds);
	free(bucket);
	return rc;
}

int dmfs_store_open(const char *uri, const struct dmfs_options *o, int quick,
		    struct dmfs_store **out, char *msg, size_t msgsz)
{
	msg[0] = '\0';
	if (!strncmp(uri, "s3://", 5))
		return open_s3(uri + 5, o, quick, out, msg, msgsz);
	if (!strncmp(uri, "file://", 7)) {
		if (uri[7] != '/') {
			snprintf(msg, msgsz,
				 "store %s: expected file:///ABSOLUTE/DIR", uri);
			return DMFS_ERR_CONFIG;
		}
		return store_file_new(uri + 7, out, msg, msgsz);
	}
	snprintf(msg, msgsz,
		 "store %s: expected s3://BUCKET[/PREFIX] or file:///DIR", uri);
	return DMFS_ERR_CONFIG;
}

int dmfs_store_probe(struct dmfs_store *st, const char *uri, char *msg,
		     size_t msgsz)
{
	struct dmfs_list_page pg;
	struct dmfs_err_detail d = {0};
	int rc = st->ops->list(st, "", "/", NULL, 1, &pg, &d);

	dmfs_list_page_free(&pg);
	switch (rc) {
	case 0:
		return 0;
	case DMFS_ERR_DENIED:
		snprintf(msg, msgsz,
			 "%s: access denied (%s%s%s): check the credentials",
			 uri, d.s3_code[0] ? d.s3_code : "HTTP 403",
			 d.message[0] ? ": " : "", d.message);
		break;
	case DMFS_ERR_NOT_FOUND:
		snprintf(msg, msgsz, "%s: no such bucket (%s)", uri,
			 d.s3_code[0] ? d.s3_code : "HTTP 404");
		break;
	case DMFS_ERR_NETWORK:
	case DMFS_ERR_TIMEOUT:
		snprintf(msg, msgsz, "%s: cannot reach the endpoint: %s", uri,
			 d.message[0] ? d.message : dmfs_strerror(rc));
		break;
	default:
		snprintf(msg, msgsz, "%s: %s%s%s%s", uri, dmfs_strerror(rc),
			 d.s3_code[0] ? " (" : "", d.s3_code,
			 d.s3_code[0] ? ")" : "");
	}
	return rc;
}
