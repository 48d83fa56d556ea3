/*
 * fmt.c - formatting numbers for people (see fmt.h).
 */
#include "config.h"

#include <stdio.h>

#include "dmfs/fmt.h"

void dmfs_format_bytes(double v, char *out, size_t outsz)
{
	static const char *const unit[] = {"B",	  "KiB", "MiB",
					   "GiB", "TiB", "PiB"};
	int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(out, outsz, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

int dmfs_hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
