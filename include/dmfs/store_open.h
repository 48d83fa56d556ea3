/*
 * store_open.h - turn a STORE argument and the mount options into a store.
 */
#ifndef DMFS_STORE_OPEN_H
#define DMFS_STORE_OPEN_H

#include <stddef.h>

#include "dmfs/options.h"
#include "dmfs/store.h"

/*
 * Open "s3://bucket[/prefix]" or "file:///dir".  quick: few retries and a
 * short timeout (for the check before mounting).  Caller frees *out with
 * (*out)->ops->destroy.  Returns 0 or DMFS_ERR_* with a message in msg.
 */
int dmfs_store_open(const char *uri, const struct dmfs_options *o, int quick,
		    struct dmfs_store **out, char *msg, size_t msgsz)
	__attribute__((warn_unused_result));

/*
 * Check that the store answers: one listing of the root.  Returns 0 or
 * DMFS_ERR_* with a message for people in msg.
 */
int dmfs_store_probe(struct dmfs_store *st, const char *uri, char *msg,
		     size_t msgsz);

#endif
