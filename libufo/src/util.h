/* SPDX-License-Identifier: MIT */
/*
 * Small helpers every layer of libufo may use (engine, backends, cluster,
 * client).  It includes nothing of ours, so it sits below all of them.
 */
#ifndef UFO_UTIL_H
#define UFO_UTIL_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define UFO_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ufo_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/* Monotonic nanoseconds, for durations and deadlines. */
static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* An absolute CLOCK_REALTIME deadline ms from now, for
 * pthread_cond_timedwait. */
static inline void deadline_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* pthread_create with every signal blocked in the new thread: library
 * threads never take the application's signals.  0 or -errno. */
static inline int spawn_masked(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

#endif /* UFO_UTIL_H */
