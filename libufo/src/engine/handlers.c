/* SPDX-License-Identifier: MIT */
/*
 * The fault-handling threads and the starvation watchdog.  Handlers serve
 * userfaultfd messages first and run background loads when no fault is
 * waiting (leaving one handler free for faults).
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "engine.h"

static bool take_work_token(struct ufo_ctx *ctx)
{
	uint64_t v;

	return read(ctx->event_fd, &v, sizeof(v)) == sizeof(v);
}

/* Background loads leave one handler free for faults, unless there is only
 * one handler. */
static bool work_allowed(struct ufo_ctx *ctx)
{
	unsigned busy = atomic_load(&ctx->busy);

	return busy == 0 || busy + 1 < atomic_load(&ctx->nthreads);
}

static void *handler_main(void *arg)
{
	struct ufo_ctx *ctx = arg;
	struct pollfd pfd[2] = {
		{ .fd = ctx->uffd.fd, .events = POLLIN },
		{ .fd = ctx->event_fd, .events = POLLIN },
	};

	/* Faults first: a parked application thread waits on each. */
	while (!atomic_load(&ctx->stopping)) {
		bool work_ok;

		if (fault_handle_message(ctx))
			continue;
		work_ok = work_allowed(ctx);
		if (work_ok && take_work_token(ctx)) {
			work_run_one(ctx);
			continue;
		}
		/* While background work is held back, watch only the
		 * userfaultfd and look again shortly. */
		if (poll(pfd, work_ok ? 2 : 1, work_ok ? -1 : 5) < 0 &&
		    errno != EINTR)
			log_err(ctx, "poll: %s", strerror(errno));
	}
	return NULL;
}

/* thr_lock held. */
static int handler_spawn(struct ufo_ctx *ctx)
{
	unsigned n = atomic_load(&ctx->nthreads);
	int rc;

	if (n >= UFO_MAX_THREADS)
		return -EAGAIN;
	rc = spawn_masked(&ctx->threads[n], handler_main, ctx);
	if (!rc)
		atomic_store(&ctx->nthreads, n + 1);
	return rc;
}

/*
 * Starvation watchdog.  A populate that reads another UFO faults, and that
 * fault needs a free handler; if every handler is inside such a callback
 * nobody is left to serve it.  When all handlers have been busy for
 * STARVED_MS the watchdog starts one more (up to UFO_MAX_THREADS), so nested
 * populates cannot deadlock, while ordinary bursts of faults start nothing.
 */
#define STARVED_MS 10

static bool all_busy(struct ufo_ctx *ctx)
{
	return atomic_load(&ctx->busy) >= atomic_load(&ctx->nthreads);
}

static void *watchdog_main(void *arg)
{
	struct ufo_ctx *ctx = arg;
	struct timespec ts;

	pthread_mutex_lock(&ctx->thr_lock);
	while (!atomic_load(&ctx->stopping)) {
		if (!all_busy(ctx)) {
			pthread_cond_wait(&ctx->watch_cond, &ctx->thr_lock);
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += STARVED_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&ctx->watch_cond, &ctx->thr_lock, &ts);
		/* Still all busy a while later (not just a burst): grow. */
		if (!atomic_load(&ctx->stopping) && all_busy(ctx) &&
		    handler_spawn(ctx) == 0)
			log_info(ctx, "all fault handlers busy for %d ms: started handler %u",
				 STARVED_MS, atomic_load(&ctx->nthreads));
	}
	pthread_mutex_unlock(&ctx->thr_lock);
	return NULL;
}

int handlers_start(struct ufo_ctx *ctx)
{
	int rc = 0;

	ctx->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
	if (ctx->event_fd < 0)
		return -errno;
	pthread_mutex_lock(&ctx->thr_lock);
	for (unsigned i = 0; i < ctx->cfg.threads && !rc; i++)
		rc = handler_spawn(ctx);
	pthread_mutex_unlock(&ctx->thr_lock);
	if (!rc)
		rc = spawn_masked(&ctx->watchdog, watchdog_main, ctx);
	ctx->watchdog_started = rc == 0;
	return rc;
}

void handlers_stop(struct ufo_ctx *ctx)
{
	uint64_t many = UFO_MAX_THREADS * 2;
	unsigned n;

	atomic_store(&ctx->stopping, true);
	if (ctx->event_fd < 0)
		return;
	if (write(ctx->event_fd, &many, sizeof(many)) < 0)
		log_err(ctx, "eventfd write: %s", strerror(errno));
	pthread_mutex_lock(&ctx->thr_lock);
	pthread_cond_signal(&ctx->watch_cond);
	pthread_mutex_unlock(&ctx->thr_lock);
	if (ctx->watchdog_started)
		pthread_join(ctx->watchdog, NULL);
	ctx->watchdog_started = false;
	n = atomic_load(&ctx->nthreads); /* fixed now: the watchdog is gone */
	for (unsigned i = 0; i < n; i++)
		pthread_join(ctx->threads[i], NULL);
	pthread_mutex_lock(&ctx->work_lock);
	work_drain(ctx);
	pthread_mutex_unlock(&ctx->work_lock);
	close(ctx->event_fd);
	ctx->event_fd = -1;
}
