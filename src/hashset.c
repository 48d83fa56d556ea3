/*
 * hashset.c - sets of content hashes (see hashset.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmfs/err.h"
#include "dmfs/sha256.h"
#include "dmfs/store.h"
#include "hashset.h"

#define OBJECTS_PREFIX ".dmfs/objects/sha256/"

/* The hashes are uniformly distributed: their first 16 digits will do. */
static uint64_t slot_of(const char *h)
{
	uint64_t v = 0;
	for (int i = 0; i < 16 && h[i]; i++)
		v = v * 16 +
		    (uint64_t)(h[i] <= '9' ? h[i] - '0' : (h[i] | 32) - 'a' + 10);
	return v;
}

static int grow(struct hashset *s)
{
	size_t ncap = s->cap ? s->cap * 2 : 4096;
	struct hashset_slot *ns = calloc(ncap, sizeof(*ns));
	if (!ns)
		return DMFS_ERR_NOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->slot[i].hash[0])
			continue;
		size_t j = slot_of(s->slot[i].hash) & (ncap - 1);
		while (ns[j].hash[0])
			j = (j + 1) & (ncap - 1);
		ns[j] = s->slot[i];
	}
	free(s->slot);
	s->slot = ns;
	s->cap = ncap;
	return 0;
}

int hashset_add(struct hashset *s, const char *hash, uint64_t size)
{
	if (strlen(hash) != 64)
		return DMFS_ERR_INVAL;
	if (2 * (s->n + 1) > s->cap && grow(s))
		return DMFS_ERR_NOMEM;
	size_t j = slot_of(hash) & (s->cap - 1);
	while (s->slot[j].hash[0]) {
		if (!strcmp(s->slot[j].hash, hash)) {
			s->slot[j].size = size;
			return 0;
		}
		j = (j + 1) & (s->cap - 1);
	}
	memcpy(s->slot[j].hash, hash, 65);
	s->slot[j].size = size;
	s->n++;
	return 0;
}

bool hashset_get(const struct hashset *s, const char *hash, uint64_t *size)
{
	if (!s->cap)
		return false;
	for (size_t j = slot_of(hash) & (s->cap - 1); s->slot[j].hash[0];
	     j = (j + 1) & (s->cap - 1)) {
		if (!strcmp(s->slot[j].hash, hash)) {
			if (size)
				*size = s->slot[j].size;
			return true;
		}
	}
	return false;
}

void hashset_free(struct hashset *s)
{
	if (!s)
		return;
	free(s->slot);
	memset(s, 0, sizeof(*s));
}

bool hashset_object_key_hash(const char *key, char out[65])
{
	size_t pl = strlen(OBJECTS_PREFIX);
	if (strncmp(key, OBJECTS_PREFIX, pl) != 0 || strlen(key) != pl + 65 ||
	    key[pl + 2] != '/')
		return false;
	memcpy(out, key + pl, 2);
	memcpy(out + 2, key + pl + 3, 62);
	out[64] = '\0';
	return dmfs_is_sha256_hex(out);
}

int hashset_load_objects(struct dmfs_store *st, struct hashset *s, char *msg,
			 size_t msgsz)
{
	char *token = NULL;
	int rc = 0;

	do {
		struct dmfs_list_page pg;
		struct dmfs_err_detail d = {0};
		rc = st->ops->list(st, OBJECTS_PREFIX, NULL, token, 1000, &pg,
				   &d);
		free(token);
		token = NULL;
		if (rc) {
			snprintf(msg, msgsz, "listing %s: %s", OBJECTS_PREFIX,
				 dmfs_strerror(rc));
			break;
		}
		for (size_t i = 0; i < pg.nobjs && !rc; i++) {
			char h[65];
			if (hashset_object_key_hash(pg.objs[i].key, h))
				rc = hashset_add(s, h, pg.objs[i].size);
		}
		if (pg.truncated && pg.next_token) {
			token = pg.next_token;
			pg.next_token = NULL;
		}
		dmfs_list_page_free(&pg);
	} while (!rc && token);
	free(token);
	return rc;
}
