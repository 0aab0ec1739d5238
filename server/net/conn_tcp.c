/* SPDX-License-Identifier: MIT */
/*
 * The TCP connection type: a non-blocking socket in the loop's epoll set,
 * level-triggered, with the interest conn.c asks for.  The kernel's socket
 * buffer is what epoll watches, so the type buffers nothing itself.
 */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"

/* Every function here is shared with the other socket-based types. */

ssize_t conn_sock_recv(struct conn *c, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = recv(c->fd, buf, len, MSG_DONTWAIT);

		if (n > 0)
			return n;
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

ssize_t conn_sock_sendv(struct conn *c, const struct iovec *iov, int iovcnt)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov,
			    .msg_iovlen = (size_t)iovcnt };

	for (;;) {
		ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

int conn_sock_watch(struct conn *c, uint32_t want, bool add)
{
	struct epoll_event ev = { .events = want, .data.ptr = c };

	return epoll_ctl(c->srv->epoll_fd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD,
			 c->fd, &ev) ? -errno : 0;
}

void conn_sock_unwatch(struct conn *c)
{
	epoll_ctl(c->srv->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
}

void conn_sock_shutdown(struct conn *c)
{
	shutdown(c->fd, SHUT_RDWR);
}

void conn_sock_close(struct conn *c)
{
	close(c->fd);
}

const struct conn_type conn_tcp = {
	.name = "tcp",
	.recv = conn_sock_recv,
	.sendv = conn_sock_sendv,
	.watch = conn_sock_watch,
	.unwatch = conn_sock_unwatch,
	.shutdown = conn_sock_shutdown,
	.close = conn_sock_close,
};
