/* SPDX-License-Identifier: MIT */
/*
 * Submitting I/O to a backend and what follows: statistics (every attempt
 * counted once, here), retries (a failed attempt that the backend's policy
 * calls transient goes back to it after a delay, from the retry thread),
 * and the I/O workers that run the blocking work of backends that have
 * some (obj_run_blocking), so that handler threads never wait on the
 * network.  Both threads are started on first use and ended with the
 * context.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* ---- in-flight accounting. */

static void inflight_add(struct ufo_ctx *ctx)
{
	unsigned n = atomic_fetch_add(&ctx->io_inflight, 1) + 1;
	unsigned max = atomic_load_explicit(&ctx->io_inflight_max,
					    memory_order_relaxed);

	while (n > max && !atomic_compare_exchange_weak(&ctx->io_inflight_max,
							&max, n))
		;
}

/* ---- submission. */

static void attempt(struct ufo_io *io)
{
	struct ufo_ctx *ctx = io->obj->ctx;

	io->t_attempt = now_ns();
	io->hole = false;
	/* The callback backend runs the application's function right here,
	 * which may touch another UFO: count the handler busy meanwhile, as
	 * the starvation watchdog needs.  An asynchronous backend returns at
	 * once, and is not counted (ops.blocking). */
	if (io->obj->backend->blocking) {
		busy_enter(ctx);
		io->obj->backend->submit(io->obj, io);
		busy_exit(ctx);
	} else {
		io->obj->backend->submit(io->obj, io);
	}
}

void io_submit(struct ufo_io *io)
{
	io->attempt = 0;
	io->tag = 0;
	io->t_first = now_ns();
	inflight_add(io->obj->ctx);
	attempt(io);
}

/* ---- retries. */

/* Milliseconds until io's next attempt after err, or -1: final. */
static long retry_delay(const struct ufo_io *io, int err)
{
	struct ufo_retry r = { 0 };
	unsigned shift = io->attempt < 10 ? io->attempt : 10;
	uint64_t delay;

	io->obj->backend->retry(io->obj, &r);
	if (!r.transient || !r.transient(err))
		return -1;
	if (r.max_attempts && io->attempt + 1 >= r.max_attempts)
		return -1;
	delay = (uint64_t)r.first_delay_ms << shift;
	if (r.max_delay_ms && delay > r.max_delay_ms)
		delay = r.max_delay_ms;
	if (r.deadline_ms &&
	    now_ns() + delay * 1000000u > io->t_first + r.deadline_ms * 1000000ull)
		return -1;
	return (long)delay;
}

static void *io_retry_main(void *arg);

/* io_lock held. */
static void retry_thread_start(struct ufo_ctx *ctx)
{
	if (ctx->retry_started)
		return;
	ctx->retry_started = spawn_masked(&ctx->retry_thread, io_retry_main,
					  ctx) == 0;
}

/* Queues io for another attempt in delay_ms, soonest first.  Without a
 * retry thread (it could not start) the attempt is made now. */
static void retry_later(struct ufo_io *io, long delay_ms)
{
	struct ufo_ctx *ctx = io->obj->ctx;
	struct ufo_io **p;

	io->due = now_ns() + (uint64_t)delay_ms * 1000000u;
	pthread_mutex_lock(&ctx->io_lock);
	retry_thread_start(ctx);
	if (!ctx->retry_started) {
		pthread_mutex_unlock(&ctx->io_lock);
		attempt(io);
		return;
	}
	for (p = &ctx->retry_head; *p && (*p)->due <= io->due; p = &(*p)->next)
		;
	io->next = *p;
	*p = io;
	pthread_cond_broadcast(&ctx->io_cond);
	pthread_mutex_unlock(&ctx->io_lock);
}

/* The retry thread: makes each queued attempt when it is due.  The
 * callback backend's function then runs on this thread, as it ran on a
 * handler the first time. */
static void *io_retry_main(void *arg)
{
	struct ufo_ctx *ctx = arg;
	struct timespec ts;

	pthread_mutex_lock(&ctx->io_lock);
	while (!ctx->io_stopping || ctx->retry_head) {
		struct ufo_io *io = ctx->retry_head;
		uint64_t now = now_ns();

		if (!io) {
			pthread_cond_wait(&ctx->io_cond, &ctx->io_lock);
			continue;
		}
		if (io->due > now && !ctx->io_stopping) {
			deadline_in(&ts, (long)((io->due - now) / 1000000u) + 1);
			pthread_cond_timedwait(&ctx->io_cond, &ctx->io_lock, &ts);
			continue;
		}
		ctx->retry_head = io->next;
		pthread_mutex_unlock(&ctx->io_lock);
		attempt(io);
		pthread_mutex_lock(&ctx->io_lock);
	}
	pthread_mutex_unlock(&ctx->io_lock);
	return NULL;
}

/* ---- completion. */

static void count_attempt(struct ufo_io *io, int err)
{
	struct ufo_obj *obj = io->obj;

	if (!io->store) {
		STAT_ADD(obj, populate_calls, 1);
		STAT_ADD(obj, populate_ns, now_ns() - io->t_attempt);
		if (err)
			STAT_ADD(obj, populate_errors, 1);
	} else if (err) {
		STAT_ADD(obj, writeback_errors, 1);
	}
}

void io_complete(struct ufo_io *io, int err)
{
	struct ufo_obj *obj = io->obj;
	long delay;

	count_attempt(io, err);
	if (err) {
		delay = retry_delay(io, err);
		log_warn(obj->ctx, "object %llu: %s [%llu, %llu) failed (attempt %u): %s%s",
			 (unsigned long long)obj->id,
			 io->store ? "store" : "fetch",
			 (unsigned long long)io->start,
			 (unsigned long long)io->end, io->attempt + 1,
			 strerror(-err), delay >= 0 ? "; retrying" : "");
		if (delay >= 0) {
			io->attempt++;
			retry_later(io, delay);
			return;
		}
	}
	atomic_fetch_sub(&obj->ctx->io_inflight, 1);
	io->done(io, err);
}

/* ---- I/O workers. */

static void *worker_main(void *arg)
{
	struct ufo_ctx *ctx = arg;

	pthread_mutex_lock(&ctx->io_lock);
	for (;;) {
		struct ufo_job *job = ctx->job_head;

		if (!job) {
			if (ctx->io_stopping)
				break;
			pthread_cond_wait(&ctx->job_cond, &ctx->io_lock);
			continue;
		}
		ctx->job_head = job->next;
		if (!ctx->job_head)
			ctx->job_tail = NULL;
		pthread_mutex_unlock(&ctx->io_lock);
		job->fn(job);
		pthread_mutex_lock(&ctx->io_lock);
	}
	pthread_mutex_unlock(&ctx->io_lock);
	return NULL;
}

/* io_lock held.  Without any worker the caller runs jobs itself. */
static void workers_start(struct ufo_ctx *ctx)
{
	while (ctx->nworkers < UFO_IO_WORKERS &&
	       !spawn_masked(&ctx->workers[ctx->nworkers], worker_main, ctx))
		ctx->nworkers++;
}

void obj_run_blocking(struct ufo_obj *obj, struct ufo_job *job)
{
	struct ufo_ctx *ctx = obj->ctx;

	job->next = NULL;
	pthread_mutex_lock(&ctx->io_lock);
	if (!ctx->nworkers)
		workers_start(ctx);
	if (!ctx->nworkers) {
		pthread_mutex_unlock(&ctx->io_lock);
		job->fn(job);
		return;
	}
	if (ctx->job_tail)
		ctx->job_tail->next = job;
	else
		ctx->job_head = job;
	ctx->job_tail = job;
	pthread_cond_signal(&ctx->job_cond);
	pthread_mutex_unlock(&ctx->io_lock);
}

/* ---- the context's side. */

void io_init(struct ufo_ctx *ctx)
{
	pthread_mutex_init(&ctx->io_lock, NULL);
	pthread_cond_init(&ctx->io_cond, NULL);
	pthread_cond_init(&ctx->job_cond, NULL);
}

/* Every object is freed, so no io is in flight: the threads find their
 * queues empty and end. */
void io_stop(struct ufo_ctx *ctx)
{
	pthread_mutex_lock(&ctx->io_lock);
	ctx->io_stopping = true;
	pthread_cond_broadcast(&ctx->io_cond);
	pthread_cond_broadcast(&ctx->job_cond);
	pthread_mutex_unlock(&ctx->io_lock);
	if (ctx->retry_started)
		pthread_join(ctx->retry_thread, NULL);
	for (unsigned i = 0; i < ctx->nworkers; i++)
		pthread_join(ctx->workers[i], NULL);
	ctx->retry_started = false;
	ctx->nworkers = 0;
}
