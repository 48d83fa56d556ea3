/*
 * progress.c - the progress bar of long commands (see progress.h).
 *
 * Workers add to atomic counters; whoever adds when a redraw is due (100
 * ms since the last) takes the draw lock with trylock and redraws, so no
 * worker ever waits for the terminal.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dmfs/fmt.h"
#include "dmfs/progress.h"

struct progress {
	char what[32];
	double start;
	atomic_uint_fast64_t files, bytes;
	atomic_uint_fast64_t total_files, total_bytes;
	pthread_mutex_t draw;		/* serialises output */
	double last_draw;		/* protected by draw */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct progress *progress_new(const char *what)
{
	if (!isatty(STDERR_FILENO))
		return NULL;
	struct progress *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	snprintf(p->what, sizeof(p->what), "%s", what);
	p->start = now_s();
	pthread_mutex_init(&p->draw, NULL);
	return p;
}

void progress_total(struct progress *p, uint64_t files, uint64_t bytes)
{
	if (!p)
		return;
	atomic_store(&p->total_files, files);
	atomic_store(&p->total_bytes, bytes);
}

static void draw(struct progress *p, double t, const char *end)
{
	uint64_t f = atomic_load(&p->files), b = atomic_load(&p->bytes);
	uint64_t tf = atomic_load(&p->total_files);
	uint64_t tb = atomic_load(&p->total_bytes);
	double el = t - p->start > 0.001 ? t - p->start : 0.001;
	char done[32], total[32], rate[32], eta[32] = "";

	dmfs_format_bytes((double)b, done, sizeof(done));
	dmfs_format_bytes((double)b / el, rate, sizeof(rate));
	total[0] = '\0';
	if (tb) {
		char hb[24];
		dmfs_format_bytes((double)tb, hb, sizeof(hb));
		snprintf(total, sizeof(total), " / %s", hb);
		if (b > 0 && b < tb) {
			long s = (long)((double)(tb - b) / ((double)b / el));
			snprintf(eta, sizeof(eta), "  ETA %ld:%02ld", s / 60,
				 s % 60);
		}
	}
	if (tf)
		fprintf(stderr, "\r%s: %llu/%llu files  %s%s  %s/s%s\033[K%s",
			p->what, (unsigned long long)f,
			(unsigned long long)tf, done, total, rate, eta, end);
	else
		fprintf(stderr, "\r%s: %llu files  %s  %s/s\033[K%s", p->what,
			(unsigned long long)f, done, rate, end);
	fflush(stderr);
}

void progress_add(struct progress *p, uint64_t files, uint64_t bytes)
{
	if (!p)
		return;
	atomic_fetch_add(&p->files, files);
	atomic_fetch_add(&p->bytes, bytes);
	double t = now_s();
	if (pthread_mutex_trylock(&p->draw) != 0)
		return;
	if (t - p->last_draw >= 0.1) {
		p->last_draw = t;
		draw(p, t, "");
	}
	pthread_mutex_unlock(&p->draw);
}

void progress_end(struct progress *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->draw);
	draw(p, now_s(), "\n");
	pthread_mutex_unlock(&p->draw);
	pthread_mutex_destroy(&p->draw);
	free(p);
}
