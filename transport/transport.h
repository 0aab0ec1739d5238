/* SPDX-License-Identifier: MIT */
/*
 * Transports: a byte stream between a client and a ufo-server, behind one
 * ops table chosen when a connection opens.  Everything above this header
 * (the client, the remote backend, the server's frame handling) calls only
 * these ops and the frame helpers; only tcp.c knows about sockets.
 */
#ifndef UFO_TRANSPORT_H
#define UFO_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "handshake.h"
#include "wire.h"

#define NET_DEFAULT_PORT 7070
#define NET_MAX_HOST 255

struct net_addr {
	char host[NET_MAX_HOST + 1]; /* name, IPv4 or IPv6 literal (no []) */
	uint16_t port;
};

/* "host:port", "[v6]:port", "host" (default port).  0 or -EINVAL. */
int net_parse_hostport(const char *s, uint16_t default_port,
		       struct net_addr *out);

/* "scheme://host:port/name" (name optional).  scheme, when not NULL, gets
 * the scheme ("ufo", "tcp", "rdma", "tls").  0 or -EINVAL. */
int net_parse_url(const char *url, char *scheme, size_t scheme_cap,
		  struct net_addr *addr, char *name, size_t name_cap);

/* Waits up to timeout_ms (-1: no limit) for events on fd, restarting after
 * signals: 0 when ready (or the peer hung up: the next call says how),
 * -ETIMEDOUT, -EBADF, or -errno.  Shared by the transports. */
int net_wait_fd(int fd, short events, int timeout_ms);

struct ufo_conn {
	const struct ufo_transport_ops *ops;
};

struct ufo_transport_ops {
	const char *name;
	/* Connects within timeout_ms.  0 and *out, or -errno
	 * (-ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -EOPNOTSUPP...). */
	int (*connect)(const struct net_addr *addr, int timeout_ms,
		       struct ufo_conn **out);
	/* Sends all of iov or fails; -ETIMEDOUT after timeout_ms without
	 * progress.  Not thread-safe: callers serialise senders. */
	int (*send)(struct ufo_conn *c, struct iovec *iov, int iovcnt,
		    int timeout_ms);
	/* Receives exactly len bytes; -ECONNRESET on EOF, -ETIMEDOUT after
	 * timeout_ms without progress (-1: no timeout). */
	int (*recv)(struct ufo_conn *c, void *buf, size_t len, int timeout_ms);
	/* One-sided read of len bytes at (raddr, rkey) of the peer into dst
	 * (MAP gave them); NULL where the transport has none (TCP).  Called
	 * under the same exclusion as send. */
	int (*read_remote)(struct ufo_conn *c, void *dst, size_t len,
			   uint64_t raddr, uint32_t rkey, int timeout_ms);
	/* One-sided write of len bytes from src to (raddr, rkey); complete
	 * (placed in the peer's memory, not yet durable) on return. */
	int (*write_remote)(struct ufo_conn *c, const void *src, size_t len,
			    uint64_t raddr, uint32_t rkey, int timeout_ms);
	/* Makes blocked send/recv on c return (another thread may be in
	 * them); c stays valid until close. */
	void (*shutdown)(struct ufo_conn *c);
	void (*close)(struct ufo_conn *c);
};

extern const struct ufo_transport_ops ufo_tcp_transport;
/* TLS over TCP (tls.c, GnuTLS; tls_stub.c answers -EOPNOTSUPP).  Trusts
 * the CA file in $UFO_TLS_CA_FILE, else the system store; a certificate
 * that does not verify for the host is -EKEYREJECTED. */
extern const struct ufo_transport_ops ufo_tls_transport;

/* The transport registered under name ("tcp"), or NULL. */
const struct ufo_transport_ops *transport_find(const char *name);

static inline int conn_send(struct ufo_conn *c, struct iovec *iov, int n,
			    int timeout_ms)
{
	return c->ops->send(c, iov, n, timeout_ms);
}

static inline int conn_recv(struct ufo_conn *c, void *buf, size_t len,
			    int timeout_ms)
{
	return c->ops->recv(c, buf, len, timeout_ms);
}

static inline void conn_shutdown(struct ufo_conn *c)
{
	c->ops->shutdown(c);
}

static inline void conn_close(struct ufo_conn *c)
{
	if (c)
		c->ops->close(c);
}

/* ---- TCP specifics the server needs (tcp.c) */

/* Listening socket bound to addr (IPv4 or IPv6), non-blocking, SO_REUSEADDR.
 * Returns the fd or -errno. */
int tcp_listen(const struct net_addr *addr, int backlog);
/* A connected, tuned (non-blocking) socket to addr, or -errno. */
int tcp_connect_fd(const struct net_addr *addr, int timeout_ms);
/* The port a listening fd got (for port 0). */
int tcp_local_port(int fd);
/* TCP_NODELAY, large buffers, keepalive, non-blocking.  0 or -errno. */
int tcp_tune(int fd);
/* Wraps an accepted, tuned fd as a connection (owns the fd). */
int tcp_conn_from_fd(int fd, struct ufo_conn **out);

/* ---- frames (frame.c) */

/* Sends one frame: header, then p1 and p2 (either may be NULL/0), the
 * checksum covering both. */
int frame_send(struct ufo_conn *c, uint16_t version, uint16_t op,
	       uint64_t req_id, uint32_t status, const void *p1, size_t l1,
	       const void *p2, size_t l2, int timeout_ms);
/* Receives and checks a header (host order): -EPROTO, -E2BIG, transport
 * errors. */
int frame_recv_hdr(struct ufo_conn *c, struct wire_hdr *h,
		   uint32_t max_payload, int timeout_ms);

/* Client side of HELLO + AUTH.  On success *version is the agreed version.
 * Errors: -EACCES (wrong secret, or the server failed to prove it has it),
 * -EPROTONOSUPPORT, -EPROTO, transport errors. */
int client_handshake(struct ufo_conn *c, const uint8_t *secret,
		     size_t secret_len, int timeout_ms, uint16_t *version);

#endif /* UFO_TRANSPORT_H */
