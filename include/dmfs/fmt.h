/*
 * fmt.h - formatting numbers for people.
 */
#ifndef DMFS_FMT_H
#define DMFS_FMT_H

#include <stddef.h>
#include <stdint.h>

/* "1.5 GiB", "12 B" (powers of 1024) into out.  Cannot fail. */
void dmfs_format_bytes(double v, char *out, size_t outsz);

/* The value of a hex digit (either case), or -1.  Cannot fail. */
int dmfs_hex_value(int c);

#endif
