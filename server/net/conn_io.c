/* SPDX-License-Identifier: MIT */
/*
 * A connection's transport as the loop drives it: the non-blocking half
 * of its type (transport.h), whichever transport, with every descriptor
 * it waits on in the loop's epoll set, level-triggered, data.ptr the conn.
 * And the server type of byte streams (TCP, TLS).
 */
#include <errno.h>
#include <sys/epoll.h>

#include "server.h"

/* wait_fds speaks poll's bits; epoll's are the same numbers. */
_Static_assert(POLLIN == EPOLLIN && POLLOUT == EPOLLOUT,
	       "poll and epoll bits agree");

ssize_t conn_read(struct conn *c, void *buf, size_t len)
{
	return c->t->ops->read(c->t, buf, len);
}

ssize_t conn_writev(struct conn *c, const struct iovec *iov, int iovcnt)
{
	return c->t->ops->writev(c->t, iov, iovcnt);
}

int conn_watch(struct conn *c, uint32_t want, bool add)
{
	struct pollfd p[UFO_CONN_MAX_FDS];
	int n = c->t->ops->wait_fds(c->t, want, p);

	for (int i = 0; i < n; i++) {
		struct epoll_event ev = { .events = (uint16_t)p[i].events,
					  .data.ptr = c };

		/* A connection's descriptors never change (wait_fds's
		 * contract): what was added is what is modified, and what
		 * conn_unwatch deletes. */
		if (!add && (n != c->nwfd || c->wfd[i] != p[i].fd))
			return -EINVAL;
		/* RDMA asks the same of its channels whatever want is: no
		 * system call each time conn.c's mask changes. */
		if (!add && c->wev[i] == ev.events)
			continue;
		if (epoll_ctl(c->srv->epoll_fd, add ? EPOLL_CTL_ADD
						    : EPOLL_CTL_MOD,
			      p[i].fd, &ev)) {
			int rc = -errno;

			if (add) { /* the ones added so far go out again */
				c->nwfd = i;
				conn_unwatch(c);
			}
			return rc;
		}
		c->wfd[i] = p[i].fd;
		c->wev[i] = ev.events;
	}
	c->nwfd = n;
	return 0;
}

void conn_unwatch(struct conn *c)
{
	for (int i = 0; i < c->nwfd; i++)
		epoll_ctl(c->srv->epoll_fd, EPOLL_CTL_DEL, c->wfd[i], NULL);
	c->nwfd = 0;
}

/* Reaped: no request is in flight, so no other thread sends; a TLS
 * close_notify goes if the socket takes it at once. */
static void stream_shutdown(struct conn *c)
{
	pthread_mutex_lock(&c->lock);
	if (!c->dead && c->t->ops->bye)
		c->t->ops->bye(c->t);
	pthread_mutex_unlock(&c->lock);
	c->t->ops->shutdown(c->t);
}

const struct conn_type conn_stream = {
	.shutdown = stream_shutdown,
};
