/* SPDX-License-Identifier: MIT */
/*
 * The RDMA transport (rdma.c; rdma_stub.c when rdma-core is not built).
 *
 * verbs and rdmacm mix three error conventions (NULL + errno, -1 + errno,
 * a positive errno); rdma.c converts each to a negative errno where the
 * call is made, and nothing outside it calls ibv_* or rdma_*.
 *
 * A connection is a reliable-connected queue pair carrying the same byte
 * stream as TCP: frames are cut into messages of at most RDMA_MSG_BYTES,
 * sent with SEND into receive buffers the peer posted.  A sender that finds
 * no posted buffer is retried by the hardware (receiver-not-ready retry set
 * to "forever"), so a slow reader holds its sender back, as TCP's window
 * does.  Completions arrive through completion channels whose descriptors
 * can be polled: no thread per connection.
 */
#ifndef UFO_RDMA_H
#define UFO_RDMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "transport.h"

#define RDMA_MSG_BYTES (64u << 10) /* one SEND */
#define RDMA_NRECV 32              /* receive buffers posted per connection */
#define RDMA_NSEND 16              /* send buffers per connection */

extern const struct ufo_transport_ops ufo_rdma_transport;

/* True when rdma-core is built in and at least one RDMA device exists. */
bool urdma_available(void);

/* ---- the server side (ufo-server's RDMA connection type, conn_rdma.c) */

struct urdma_listener;
struct urdma_conn;

/* Listens on addr (same host and port numbers as TCP, in rdmacm's own port
 * space).  -ENODEV without a device, -EOPNOTSUPP without rdma-core. */
int urdma_listen(const struct net_addr *addr, struct urdma_listener **out);
void urdma_listener_close(struct urdma_listener *l);
/* Descriptor that turns readable when the listener has events. */
int urdma_listener_fd(const struct urdma_listener *l);

enum urdma_event { URDMA_EV_NONE, URDMA_EV_CONNECTED, URDMA_EV_CLOSED };

/* Handles one pending connection-manager event without blocking: 1 when
 * an event was handled, 0 when none was pending, -errno on failure.  A new
 * connection is set up and accepted here; once established it is reported
 * as URDMA_EV_CONNECTED with *conn, and URDMA_EV_CLOSED when it goes away
 * (the caller then closes it); other events give URDMA_EV_NONE. */
int urdma_listener_event(struct urdma_listener *l, enum urdma_event *kind,
			struct urdma_conn **conn);

/* Non-blocking stream operations of an accepted connection.
 * recv: up to len bytes, or -EAGAIN (wait for rdma_srv_conn_fd), 0 never;
 * -ECONNRESET once the connection failed or the peer left.
 * send: up to len bytes (cut into messages), or -EAGAIN when no send buffer
 * is free.  Call urdma_srv_conn_poll() when the descriptor is readable. */
ssize_t urdma_srv_recv(struct urdma_conn *c, void *buf, size_t len);
ssize_t urdma_srv_send(struct urdma_conn *c, const void *buf, size_t len);
/* send over an iovec array: as many messages as free send buffers allow,
 * each filled across iovecs.  Bytes taken, -EAGAIN (none free), or
 * -ECONNRESET. */
ssize_t urdma_srv_sendv(struct urdma_conn *c, const struct iovec *iov,
			int iovcnt);
/* Registers [addr, addr + len) of the server's memory for remote reads on
 * c's device: *rkey for the peer, *handle for urdma_srv_deregister (before
 * c is closed).  0 or -errno. */
int urdma_srv_register(struct urdma_conn *c, void *addr, size_t len,
		       uint32_t *rkey, void **handle);
void urdma_srv_deregister(void *handle);
/* No SEND is still in flight (everything given to rdma_srv_send left). */
bool urdma_srv_send_idle(const struct urdma_conn *c);
/* The two descriptors (receive and send completion channels) to wait on. */
int urdma_srv_conn_fds(const struct urdma_conn *c, int fds[2]);
/* Collects completions after the descriptor turned readable.  0 or
 * -ECONNRESET. */
int urdma_srv_conn_poll(struct urdma_conn *c);
void urdma_srv_conn_close(struct urdma_conn *c);

#endif /* UFO_RDMA_H */
