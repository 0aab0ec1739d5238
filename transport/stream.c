/* SPDX-License-Identifier: MIT */
/*
 * The blocking half of a connection type built on its non-blocking half:
 * what the client's TCP and TLS connections send and receive with.  RDMA
 * has its own (rdma.c): there the reader collects the completions that
 * give the sender room, so the two halves depend on each other.
 */
#include <errno.h>

#include "transport.h"

int conn_wait(struct ufo_conn *c, uint32_t want, int timeout_ms)
{
	struct pollfd p[UFO_CONN_MAX_FDS];
	int n = c->ops->wait_fds(c, want, p), rc;

	if ((rc = net_wait_fds(p, n, timeout_ms)))
		return rc;
	rc = c->ops->event ? c->ops->event(c) : 0;
	return rc < 0 ? rc : 0;
}

/* Drops the first n bytes of *iov (and the empty iovecs they leave). */
static void iov_advance(struct iovec **iov, int *iovcnt, size_t n)
{
	while (*iovcnt > 0 && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		++*iov;
		--*iovcnt;
	}
	if (*iovcnt > 0) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
}

int conn_stream_send(struct ufo_conn *c, struct iovec *iov, int iovcnt,
		     int timeout_ms)
{
	iov_advance(&iov, &iovcnt, 0);
	while (iovcnt > 0) {
		ssize_t n = c->ops->writev(c, iov, iovcnt);
		int rc;

		if (n == -EAGAIN) {
			/* Again with the same first iovec (writev's contract):
			 * iov only moves by what was taken. */
			if ((rc = conn_wait(c, POLLOUT, timeout_ms)))
				return rc;
			continue;
		}
		if (n < 0)
			return (int)n;
		iov_advance(&iov, &iovcnt, (size_t)n);
	}
	return 0;
}

int conn_stream_recv(struct ufo_conn *c, void *buf, size_t len,
		     int timeout_ms)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = c->ops->read(c, (char *)buf + got, len - got);
		int rc;

		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n != -EAGAIN)
			return n ? (int)n : -ECONNRESET;
		if ((rc = conn_wait(c, POLLIN, timeout_ms)))
			return rc;
	}
	return 0;
}
