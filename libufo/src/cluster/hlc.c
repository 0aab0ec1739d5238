/* SPDX-License-Identifier: MIT */
/*
 * Versions of replicated writes: a hybrid logical clock, above the wall
 * clock and every version this process has seen.
 */
#include <time.h>

#include "cluster/cluster.h"

static _Atomic uint64_t hlc_last;

static uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Above the wall clock's reading and every version this process saw, so
 * a write that follows a read of version v (close-to-open) gets a higher
 * version even if this host's clock is behind the writer's of v. */
uint64_t hlc_next(void)
{
	uint64_t old = atomic_load(&hlc_last), now = wall_ns(), next;

	do
		next = now > old ? now : old + 1;
	while (!atomic_compare_exchange_weak(&hlc_last, &old, next));
	return next;
}

void hlc_observe(uint64_t v)
{
	uint64_t old = atomic_load(&hlc_last);

	while (v > old && !atomic_compare_exchange_weak(&hlc_last, &old, v))
		;
}
