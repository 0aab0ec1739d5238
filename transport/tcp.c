/* SPDX-License-Identifier: MIT */
/* The TCP transport: non-blocking sockets, poll for timeouts, IPv4/IPv6. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rdma.h"
#include "transport.h"

#define TCP_BUFFER_BYTES (4 << 20)

struct tcp_conn {
	struct ufo_conn base; /* first: container_of by cast */
	int fd;
};

static struct tcp_conn *tcp_of(struct ufo_conn *c)
{
	return (struct tcp_conn *)c;
}

int tcp_tune(int fd)
{
	int one = 1, buf = TCP_BUFFER_BYTES;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK))
		return -errno;
	/* Best effort: a kernel limit on buffer sizes is not an error. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	return 0;
}

static int connect_one(const struct addrinfo *ai, int timeout_ms)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			ai->ai_protocol), err = 0, rc;
	socklen_t len = sizeof(err);

	if (fd < 0)
		return -errno;
	rc = tcp_tune(fd);
	if (!rc && connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS)
		rc = -errno;
	if (!rc && !(rc = net_wait_fd(fd, POLLOUT, timeout_ms)) &&
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
		rc = -err;
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

static int resolve(const struct net_addr *a, int passive, struct addrinfo **res)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = passive ? AI_PASSIVE : 0 };
	char port[8];
	int rc;

	snprintf(port, sizeof(port), "%u", a->port);
	rc = getaddrinfo(a->host[0] ? a->host : NULL, port, &hints, res);
	if (rc == EAI_SYSTEM)
		return -errno;
	return rc ? -EHOSTUNREACH : 0;
}

int tcp_connect_fd(const struct net_addr *a, int timeout_ms)
{
	struct addrinfo *res, *ai;
	int fd = -EHOSTUNREACH, rc = resolve(a, 0, &res);

	if (rc)
		return rc;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = connect_one(ai, timeout_ms);
		if (fd >= 0)
			break;
	}
	freeaddrinfo(res);
	return fd;
}

static int tcp_connect(const struct net_addr *a, int timeout_ms,
		       struct ufo_conn **out)
{
	int fd = tcp_connect_fd(a, timeout_ms), rc;

	if (fd < 0)
		return fd;
	rc = tcp_conn_from_fd(fd, out);
	if (rc)
		close(fd);
	return rc;
}

/* ---- the non-blocking half: the socket as it is */

static ssize_t tcp_read(struct ufo_conn *c, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = recv(tcp_of(c)->fd, buf, len, MSG_DONTWAIT);

		if (n > 0)
			return n;
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

static ssize_t tcp_writev(struct ufo_conn *c, const struct iovec *iov,
			  int iovcnt)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov,
			    .msg_iovlen = (size_t)iovcnt };

	for (;;) {
		ssize_t n = sendmsg(tcp_of(c)->fd, &m,
				    MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

static int tcp_wait_fds(struct ufo_conn *c, uint32_t want,
			struct pollfd fds[UFO_CONN_MAX_FDS])
{
	fds[0] = (struct pollfd){ .fd = tcp_of(c)->fd, .events = (short)want };
	return 1;
}

static void tcp_shutdown(struct ufo_conn *c)
{
	shutdown(tcp_of(c)->fd, SHUT_RDWR);
}

static void tcp_close(struct ufo_conn *c)
{
	close(tcp_of(c)->fd);
	free(c);
}

int tcp_conn_from_fd(int fd, struct ufo_conn **out)
{
	struct tcp_conn *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->base.ops = &ufo_tcp_transport;
	t->fd = fd;
	*out = &t->base;
	return 0;
}

/* ---- listening */

struct tcp_listener {
	struct ufo_listener base; /* first: the ops cast back */
	int fd;
};

static struct tcp_listener *tl_of(const struct ufo_listener *l)
{
	return (struct tcp_listener *)l;
}

/* A socket bound to addr (IPv4 or IPv6), non-blocking, SO_REUSEADDR. */
static int tcp_listen(const struct net_addr *a,
		      const struct ufo_listen_opts *o, struct ufo_listener **out)
{
	struct tcp_listener *l;
	struct addrinfo *res;
	int one = 1, fd, rc = resolve(a, 1, &res);

	if (rc)
		return rc;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
	} else {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, res->ai_addr, res->ai_addrlen) ||
		    listen(fd, o && o->backlog > 0 ? o->backlog : SOMAXCONN)) {
			rc = -errno;
			close(fd);
		}
	}
	freeaddrinfo(res);
	if (rc)
		return rc;
	if (!(l = calloc(1, sizeof(*l)))) {
		close(fd);
		return -ENOMEM;
	}
	l->base.ops = &ufo_tcp_transport;
	l->fd = fd;
	*out = &l->base;
	return 0;
}

static int tcp_listener_fd(const struct ufo_listener *l)
{
	return tl_of(l)->fd;
}

static int tcp_listener_port(const struct ufo_listener *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(tl_of(l)->fd, (struct sockaddr *)&ss, &len))
		return -errno;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A connection that gave up while queued (ECONNABORTED), or a signal,
 * costs nothing: the next one is taken.  Non-blocking above all (tune):
 * the server's loop must never wait in a read, and TLS reads happen
 * inside GnuTLS. */
static int tcp_accept_fd(struct ufo_listener *l)
{
	for (;;) {
		int rc, fd = accept4(tl_of(l)->fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		if ((rc = tcp_tune(fd))) {
			close(fd);
			return rc;
		}
		return fd;
	}
}

int tcp_accept_as(struct ufo_listener *l, tcp_wrap_fn *wrap,
		  const void *arg, struct ufo_conn **out)
{
	int rc, fd = tcp_accept_fd(l);

	if (fd == -EAGAIN)
		return UFO_ACCEPT_NONE;
	if (fd < 0)
		return fd;
	if ((rc = wrap(fd, arg, out))) {
		close(fd);
		return rc;
	}
	return UFO_ACCEPT_NEW;
}

static int wrap_tcp(int fd, const void *unused, struct ufo_conn **out)
{
	(void)unused;
	return tcp_conn_from_fd(fd, out);
}

static int tcp_accept(struct ufo_listener *l, struct ufo_conn **out)
{
	return tcp_accept_as(l, wrap_tcp, NULL, out);
}

static void tcp_listener_close(struct ufo_listener *l)
{
	if (!l)
		return;
	close(tl_of(l)->fd);
	free(l);
}

const struct ufo_transport_ops *transport_find(const char *name)
{
	static const struct ufo_transport_ops *const all[] = {
		&ufo_tcp_transport,
		&ufo_rdma_transport,
		&ufo_tls_transport,
	};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (!strcmp(all[i]->name, name))
			return all[i];
	return NULL;
}

const struct ufo_transport_ops ufo_tcp_transport = {
	.name = "tcp",
	.connect = tcp_connect,
	.listen = tcp_listen,
	.listener_fd = tcp_listener_fd,
	.listener_port = tcp_listener_port,
	.accept = tcp_accept,
	.listener_close = tcp_listener_close,
	.read = tcp_read,
	.writev = tcp_writev,
	.wait_fds = tcp_wait_fds,
	.send = conn_stream_send,
	.recv = conn_stream_recv,
	/* no one-sided operations over TCP */
	.shutdown = tcp_shutdown,
	.close = tcp_close,
};
