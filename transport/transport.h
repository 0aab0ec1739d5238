/* SPDX-License-Identifier: MIT */
/*
 * Transports: a byte stream between a client and a ufo-server, behind one
 * ops table chosen when a connection opens.  Everything above this header
 * (the client, the remote backend, the server's frame handling) calls only
 * these ops and the frame helpers; only tcp.c knows about sockets.
 */
#ifndef UFO_TRANSPORT_H
#define UFO_TRANSPORT_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
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
/* The same for n descriptors: 0 when any is ready. */
int net_wait_fds(struct pollfd *fds, int n, int timeout_ms);

/* The most descriptors a connection waits on (RDMA: two channels). */
#define UFO_CONN_MAX_FDS 2

/* What a connection type's event says (bits). */
#define UFO_EV_WRITABLE 1u /* room to send may have appeared */
#define UFO_EV_READABLE 2u /* bytes may wait inside the type: read now */

struct ufo_conn {
	const struct ufo_transport_ops *ops;
};

/* A listening endpoint of some transport (its ops' listen). */
struct ufo_listener {
	const struct ufo_transport_ops *ops;
};

/* What accept hands the listener's owner (values >= 0). */
enum ufo_accepted {
	UFO_ACCEPT_NONE, /* nothing pending now: wait for listener_fd */
	UFO_ACCEPT_NEW,  /* *out: a new connection (a handshake in
			  * progress, if the type has one, is advanced by
			  * event) */
	/* *out: a connection this listener handed out earlier lost its
	 * peer, and only the listener learns it (RDMA: the connection
	 * manager's DISCONNECTED).  The owner closes it once done with it;
	 * it may have closed it already, so *out is only to compare. */
	UFO_ACCEPT_GONE,
};

struct tls_server;

/* What listen needs besides the address. */
struct ufo_listen_opts {
	int backlog;                  /* pending connections; 0: default */
	const struct tls_server *tls; /* TLS: the certificate (required) */
};

/*
 * A connection type, one for both sides: the client connects and uses the
 * blocking half; ufo-server listens and accepts (below) and drives the
 * non-blocking half from its event loop.
 * TCP, TLS and RDMA implement it; nothing above it knows the transport.
 * Poll and epoll share the bits used here (POLLIN == EPOLLIN, POLLOUT ==
 * EPOLLOUT).
 */
struct ufo_transport_ops {
	const char *name;
	/* Connects within timeout_ms.  0 and *out, or -errno
	 * (-ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -EOPNOTSUPP...). */
	int (*connect)(const struct net_addr *addr, int timeout_ms,
		       struct ufo_conn **out);

	/* ---- listening (ufo-server), on one thread at a time */
	/* Listens on addr (port 0: any free one).  0 with *out, -ENODEV (no
	 * device), -EOPNOTSUPP (not built in), -errno. */
	int (*listen)(const struct net_addr *addr,
		      const struct ufo_listen_opts *o,
		      struct ufo_listener **out);
	/* The descriptor that turns readable while accept has something to
	 * hand out; it never changes. */
	int (*listener_fd)(const struct ufo_listener *l);
	/* The port listened on (the one port 0 got), or -errno. */
	int (*listener_port)(const struct ufo_listener *l);
	/* Without blocking: an enum ufo_accepted (NEW and GONE with *out),
	 * -EMFILE or -ENFILE when out of descriptors (a connection is
	 * pending: the owner stops waiting for listener_fd until one of
	 * its connections closes, or it would spin), or another -errno (that
	 * one failed; call again after the next wait). */
	int (*accept)(struct ufo_listener *l, struct ufo_conn **out);
	/* Connections it handed out stay the owner's to close. */
	void (*listener_close)(struct ufo_listener *l);

	/* ---- the non-blocking half (the server's loop; conn_stream_send
	 * and conn_stream_recv for the client's TCP and TLS).  read runs on
	 * one thread (the reader), writev and send_idle on one other at a
	 * time (the caller serialises its senders).  event runs on the
	 * reader's thread, under the senders' exclusion (the server's loop
	 * holds c->lock); conn_wait may run it from the sender's thread too,
	 * which only types whose event touches nothing once their handshake
	 * is over (TCP, TLS) allow. */
	/* Up to len bytes: > 0, -EAGAIN when none is ready, -ECONNRESET once
	 * the peer left (EOF), -errno. */
	ssize_t (*read)(struct ufo_conn *c, void *buf, size_t len);
	/* Takes a prefix of iov: bytes taken (> 0), -EAGAIN, or -errno (the
	 * connection is dead).  After -EAGAIN the next call must start with
	 * the same first iovec (TLS needs the same record again). */
	ssize_t (*writev)(struct ufo_conn *c, const struct iovec *iov,
			  int iovcnt);
	/* The descriptors to wait on, and for what, while the caller wants
	 * want (POLLIN, POLLOUT or both): fills fds, returns how many.  The
	 * descriptors and their number never change over c's life (the
	 * server adds them to its epoll set once); the events are POLLIN
	 * and POLLOUT only.  A handshake in progress may ask for another
	 * direction; RDMA always asks POLLIN of both completion channels. */
	int (*wait_fds)(struct ufo_conn *c, uint32_t want,
			struct pollfd fds[UFO_CONN_MAX_FDS]);
	/* A descriptor was ready: advances a handshake, collects completions.
	 * UFO_EV_* bits, or -errno (dead).  NULL: nothing to do. */
	int (*event)(struct ufo_conn *c);
	/* True for types that hold received bytes poll cannot see (a TLS
	 * record, an RDMA receive buffer): a reader that paused must read
	 * again before it waits. */
	bool buffers;
	/* Everything writev took has left (RDMA: its SENDs completed).
	 * NULL: always. */
	bool (*send_idle)(struct ufo_conn *c);

	/* ---- the blocking half (the client) */
	/* Sends all of iov or fails; -ETIMEDOUT after timeout_ms without
	 * progress.  Not thread-safe: callers serialise senders.  May modify
	 * iov. */
	int (*send)(struct ufo_conn *c, struct iovec *iov, int iovcnt,
		    int timeout_ms);
	/* Receives exactly len bytes; -ECONNRESET on EOF, -ETIMEDOUT after
	 * timeout_ms without progress (-1: no timeout). */
	int (*recv)(struct ufo_conn *c, void *buf, size_t len, int timeout_ms);

	/* ---- one-sided access; NULL where the transport has none (TCP, TLS) */
	/* Read of len bytes at (raddr, rkey) of the peer into dst (MAP gave
	 * them).  Called under the same exclusion as send. */
	int (*read_remote)(struct ufo_conn *c, void *dst, size_t len,
			   uint64_t raddr, uint32_t rkey, int timeout_ms);
	/* Write of len bytes from src to (raddr, rkey); complete (placed in
	 * the peer's memory, not yet durable) on return. */
	int (*write_remote)(struct ufo_conn *c, const void *src, size_t len,
			    uint64_t raddr, uint32_t rkey, int timeout_ms);
	/* Registers [addr, addr + len) for the peer's reads and writes (the
	 * server's MAP): *rkey for the peer, *handle for deregister_mem,
	 * which must come before c is closed.  0 or -errno. */
	int (*register_mem)(struct ufo_conn *c, void *addr, size_t len,
			    uint32_t *rkey, void **handle);
	void (*deregister_mem)(struct ufo_conn *c, void *handle);

	/* Why the handshake failed, in the transport's words ("TLS handshake
	 * failed: ..."), once event returned an error; NULL when it has
	 * nothing to add to the errno.  NULL: never anything. */
	const char *(*last_error)(struct ufo_conn *c);

	/* ---- ending */
	/* Tells the peer we are done (TLS close_notify) if that can go at
	 * once; never waits.  No other thread may be sending.  NULL: none. */
	void (*bye)(struct ufo_conn *c);
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

/* TLS, the server's side: the certificate and key, loaded once (tls.c;
 * tls_stub.c answers -EOPNOTSUPP).  On failure err says why.  Listening
 * with it (ufo_tls_transport.listen) gives connections whose handshake
 * the owner advances with event. */
int tls_server_new(const char *cert, const char *key, struct tls_server **out,
		   char *err, size_t err_cap);
void tls_server_free(struct tls_server *ts);

/* ---- the blocking half built on the non-blocking one (stream.c), for
 * types whose reader and sender need nothing from each other (TCP, TLS) */

/* Waits until c may move bytes in direction want (POLLIN or POLLOUT),
 * then runs its event: 0, -ETIMEDOUT, -errno. */
int conn_wait(struct ufo_conn *c, uint32_t want, int timeout_ms);
int conn_stream_send(struct ufo_conn *c, struct iovec *iov, int iovcnt,
		     int timeout_ms);
int conn_stream_recv(struct ufo_conn *c, void *buf, size_t len,
		     int timeout_ms);

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

/* A connected, tuned (non-blocking) socket to addr, or -errno. */
int tcp_connect_fd(const struct net_addr *addr, int timeout_ms);
/* TCP_NODELAY, large buffers, keepalive, non-blocking.  0 or -errno. */
int tcp_tune(int fd);
/* Wraps a connected, tuned fd as a connection (owns the fd). */
int tcp_conn_from_fd(int fd, struct ufo_conn **out);
/* Makes a connection of a connected, tuned socket fd (owning fd on success
 * only); arg is the accept_as caller's.  0 or -errno. */
typedef int tcp_wrap_fn(int fd, const void *arg, struct ufo_conn **out);
/* accept of a TCP listener (ufo_tcp_transport's) whose sockets wrap makes
 * connections of: for TLS, which listens through TCP. */
int tcp_accept_as(struct ufo_listener *l, tcp_wrap_fn *wrap,
		  const void *arg, struct ufo_conn **out);

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
