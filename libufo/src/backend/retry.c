/* SPDX-License-Identifier: MIT */
/*
 * Retries of objects stored on servers (remote and cluster backends):
 * transient failures (connection lost, refused, timed out, checksum
 * mismatch, server busy) are retried with doubling delays until the
 * client's timeout has passed since the first attempt; then the error is
 * final (a fault gets SIGBUS).
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"

#define RETRY_FIRST_MS 5
#define RETRY_MAX_MS 500

bool remote_transient(int err)
{
	switch (-err) {
	case ECONNRESET: case ECONNREFUSED: case ECONNABORTED:
	case ETIMEDOUT: case EPIPE: case EHOSTUNREACH: case ENETUNREACH:
	case ENETDOWN: case EBADMSG: case EBUSY: case ESHUTDOWN: case EIO:
	case EAGAIN: case EPROTO: case EHOSTDOWN: case ESTALE:
		return true;
	default:
		return false;
	}
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int remote_retry(struct ufo_obj *obj, const struct remote_io *io, bool write,
		 uint64_t off, void *buf, size_t len)
{
	uint64_t deadline = now_ns() + (uint64_t)io->timeout_ms * 1000000u;
	unsigned delay = RETRY_FIRST_MS;

	for (unsigned attempt = 1;; attempt++) {
		uint64_t t0 = now_ns();
		int err = io->fn(io->arg, write, off, buf, len);

		if (!write)
			obj_count_fetch(obj, now_ns() - t0);
		if (!err)
			return 0;
		if (!write)
			obj_count_fetch_error(obj);
		log_warn(obj_ctx(obj), "%s %s [%llu, +%zu) attempt %u: %s%s%s",
			 io->name, write ? "write" : "read",
			 (unsigned long long)off, len, attempt, strerror(-err),
			 ufo_client_last_error()[0] ? ": " : "",
			 ufo_client_last_error());
		if (!remote_transient(err) ||
		    now_ns() + delay * 1000000ull > deadline)
			return err;
		sleep_ms(delay);
		delay = delay * 2 < RETRY_MAX_MS ? delay * 2 : RETRY_MAX_MS;
	}
}
