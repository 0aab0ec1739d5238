/* SPDX-License-Identifier: MIT */
/*
 * The retry policy of objects stored on servers (remote and cluster
 * backends), which the engine applies (io_complete): transient failures
 * (connection lost, refused, timed out, checksum mismatch, server busy)
 * are retried with doubling delays until the client's timeout has passed
 * since the first attempt; then the error is final (a fault gets SIGBUS).
 */
#include <errno.h>

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

void remote_retry_policy(unsigned timeout_ms, struct ufo_retry *out)
{
	*out = (struct ufo_retry){
		.transient = remote_transient,
		.deadline_ms = timeout_ms,
		.first_delay_ms = RETRY_FIRST_MS,
		.max_delay_ms = RETRY_MAX_MS,
	};
}
