/*
 * hashset.h - a set of content hashes (64 hex digits), each with a size:
 * "the store holds this object, this big".  Open addressing, grown at half
 * load.  Not thread-safe: callers that share one hold their own lock.
 */
#ifndef DMFS_HASHSET_H
#define DMFS_HASHSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hashset_slot {
	char hash[65];		/* "" for an empty slot */
	uint64_t size;
};

struct hashset {
	struct hashset_slot *slot;
	size_t cap, n;
};

/* Add (or update the size of) a hash.  0 or DMFS_ERR_NOMEM. */
int hashset_add(struct hashset *s, const char *hash, uint64_t size)
	__attribute__((warn_unused_result));
/* Whether the hash is in the set; *size (may be NULL) gets its size. */
bool hashset_get(const struct hashset *s, const char *hash, uint64_t *size);
/* Free the slots.  The struct may be reused.  NULL-safe. */
void hashset_free(struct hashset *s);

/* The hash named by a content object key ".dmfs/objects/sha256/ab/cd…";
 * false when key is not one. */
bool hashset_object_key_hash(const char *key, char out[65]);

/* Fill the set with every content object the store holds (one LIST per
 * 1 000 objects).  msg says why on failure. */
struct dmfs_store;
int hashset_load_objects(struct dmfs_store *st, struct hashset *s, char *msg,
			 size_t msgsz) __attribute__((warn_unused_result));

#endif
