/*
 * store_file.h - the file:// backend: a local directory laid out as a bucket
 * would be (key "a/b/c.txt" is the file DIR/a/b/c.txt).  No server needed;
 * the embedded default for trying dmfs and for users without S3.
 */
#ifndef DMFS_STORE_FILE_H
#define DMFS_STORE_FILE_H

#include <stddef.h>

#include "dmfs/store.h"

/* Open a directory store rooted at dir (must exist).  Caller frees with
 * st->ops->destroy(st).  0 or DMFS_ERR_* with a message in msg. */
int store_file_new(const char *dir, struct dmfs_store **out, char *msg,
		   size_t msgsz) __attribute__((warn_unused_result));

#endif
