/*
 * progress.h - a progress bar for long commands: files and bytes done,
 * rate and ETA, redrawn on a terminal at most 10 times a second; silent
 * when stderr is not a terminal (scripts).  Thread-safe counters.
 */
#ifndef DMFS_PROGRESS_H
#define DMFS_PROGRESS_H

#include <stdint.h>

struct progress;

/* A bar labelled `what` ("snapshot", "fsck").  NULL when stderr is not a
 * terminal or on ENOMEM: every function accepts NULL and does nothing. */
struct progress *progress_new(const char *what);
/* Set the totals (0 = unknown). */
void progress_total(struct progress *p, uint64_t files, uint64_t bytes);
/* Add work done; redraws when due. */
void progress_add(struct progress *p, uint64_t files, uint64_t bytes);
/* Final line and newline; frees p.  NULL-safe. */
void progress_end(struct progress *p);

#endif
