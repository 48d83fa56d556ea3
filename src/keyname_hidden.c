/*
 * keyname_hidden.c - count and log, once each, the keys live/ hides (see
 * keyname.h).
 *
 * Listings are made again and again (every TTL, tree prefetches, both
 * with and without a delimiter), so the same hidden key is met many
 * times; users want one warning naming it, and a count that says how
 * many there are.  A set of 64-bit hashes of the hidden units remembers
 * which were reported: a collision can only leave one unreported.
 *
 * Concurrency: one mutex protects the set and the count.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include "dmfs/keyname.h"
#include "dmfs/log.h"
#include "hash.h"

#define SET_CAP (KEYNAME_HIDDEN_MAX * 2) /* open addressing, half full */

static uint64_t *seen;		/* protected by lock; SET_CAP slots, 0 empty */
static uint64_t count;		/* protected by lock */
static int full_said;		/* protected by lock */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Insert h; 1 when it is new, 0 when seen before, -1 when the set is
 * full or cannot be allocated.  Under lock. */
static int remember(uint64_t h)
{
	if (!seen && !(seen = calloc(SET_CAP, sizeof(*seen))))
		return -1;
	for (size_t i = h % SET_CAP;; i = (i + 1) % SET_CAP) {
		if (seen[i] == h)
			return 0;
		if (!seen[i]) {
			if (count >= KEYNAME_HIDDEN_MAX)
				return -1;
			seen[i] = h;
			return 1;
		}
	}
}

void keyname_note_hidden(const char *unit, size_t n, const char *why)
{
	uint64_t h = dmfs_hash(unit, n) | 1; /* never 0, the empty slot */
	char q[1200];
	int fresh, say_full = 0;

	pthread_mutex_lock(&lock);
	fresh = remember(h);
	if (fresh == 1)
		count++;
	else if (fresh < 0 && !full_said)
		say_full = full_said = 1;
	pthread_mutex_unlock(&lock);
	if (say_full)
		dmfs_log(DMFS_LOG_WARN, "live/: more than %d hidden keys; "
			 "not naming more of them", KEYNAME_HIDDEN_MAX);
	if (fresh != 1)
		return;
	keyname_quote(unit, n, q, sizeof(q));
	if (n && unit[n - 1] == '/')
		dmfs_log(DMFS_LOG_WARN, "live/ hides every key starting with "
			 "'%s': %s", q, why);
	else
		dmfs_log(DMFS_LOG_WARN, "live/ hides key '%s': %s", q, why);
}

uint64_t keyname_hidden_count(void)
{
	pthread_mutex_lock(&lock);
	uint64_t c = count;
	pthread_mutex_unlock(&lock);
	return c;
}
