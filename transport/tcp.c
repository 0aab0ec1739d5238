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

static int tcp_send(struct ufo_conn *c, struct iovec *iov, int iovcnt,
		    int timeout_ms)
{
	int fd = tcp_of(c)->fd;

	while (iovcnt > 0) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)iovcnt };
		ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);

		if (n < 0) {
			int rc;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			if ((rc = net_wait_fd(fd, POLLOUT, timeout_ms)))
				return rc;
			continue;
		}
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

static int tcp_recv(struct ufo_conn *c, void *buf, size_t len, int timeout_ms)
{
	int fd = tcp_of(c)->fd;
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, (char *)buf + got, len - got, 0);
		int rc;

		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		if ((rc = net_wait_fd(fd, POLLIN, timeout_ms)))
			return rc;
	}
	return 0;
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

const struct ufo_transport_ops ufo_tcp_transport = {
	.name = "tcp",
	.connect = tcp_connect,
	.send = tcp_send,
	.recv = tcp_recv,
	.read_remote = NULL, /* no one-sided operations over TCP */
	.write_remote = NULL,
	.shutdown = tcp_shutdown,
	.close = tcp_close,
};

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

int tcp_listen(const struct net_addr *a, int backlog)
{
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
		    listen(fd, backlog)) {
			rc = -errno;
			close(fd);
		}
	}
	freeaddrinfo(res);
	return rc ? rc : fd;
}

int tcp_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -errno;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
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
