/*
 * mkdir_p.h - make a directory and its parents (mode 0700: caches and
 * staging are private to their user).
 */
#ifndef DMFS_MKDIR_P_H
#define DMFS_MKDIR_P_H

/* 0, DMFS_ERR_TOO_BIG (path too long), DMFS_ERR_NOSPC or DMFS_ERR_IO. */
int dmfs_mkdir_p(const char *dir) __attribute__((warn_unused_result));

#endif
