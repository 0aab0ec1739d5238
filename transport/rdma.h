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
 * sent with SEND into receive buffers the peer posted.  A slow reader holds
 * its sender back, as TCP's window does, by credits (below).  Completions
 * arrive through completion channels whose descriptors can be polled: no
 * thread per connection.
 *
 * Flow control.  Each side offers credits, the receive buffers it posted
 * (RDMA_NRECV), in the private data of rdma_connect / rdma_accept (rdma.c,
 * struct urdma_hello); the server answers with its offer only to a client
 * that offered.  A peer that offered nothing is older: the connection then
 * runs as before, with no credits and the sender retried by the hardware
 * for as long as the reader is behind (receiver-not-ready retry "forever").
 * With credits on:
 *  - a data SEND spends one credit, and only goes while two are left: the
 *    peer's last credit is kept for a credit-only SEND;
 *  - every SEND carries, as its 32-bit immediate, the credits the sender
 *    owes: how many of its buffers it reposted since it last told;
 *  - a side that owes RDMA_CREDIT_BATCH or more sends them in a credit-only
 *    SEND (zero bytes) when it can: it has a credit and its previous
 *    credit-only SEND completed.  A credit-only SEND is no stream byte: the
 *    receiver reposts its buffer at once (and so owes one credit for it),
 *    whoever reads the stream;
 *  - a receiver-not-ready can only be an accounting bug: the side that
 *    knows credits are on (the accepting server) gives the peer's sends no
 *    retry, so that bug breaks the connection at once (see conn_param).
 *
 * Why two peers never wait for each other's credits forever.  For the
 * buffers of side X, at any time: the credits Y holds + the messages in
 * flight to X + the buffers X has not consumed + the credits X owes =
 * RDMA_NRECV (a buffer is posted and Y's credit, or in flight, or holds
 * unread bytes, or was reposted and is owed).  Say Y is stalled: fewer
 * than two credits, nothing in flight.  Then X's unconsumed buffers plus
 * what X owes come to RDMA_NRECV - 1 or more.  Either X's reader has
 * bytes to consume (Y waits for a slow reader: flow control doing its
 * job, as with TCP), or X owes at least RDMA_NRECV - 1 >= RDMA_CREDIT_BATCH
 * and sends a credit-only SEND, provided it has a credit.  X's data SENDs
 * never take its last credit, so X has none only after a credit-only SEND
 * took it; that SEND gave Y RDMA_CREDIT_BATCH or more and, being reposted
 * at once, made Y owe X one.  Y is down to fewer than two again only after
 * sending SENDs since, and the first of them carried that credit back to
 * X.  So X holds a credit whenever Y is stalled, the credit-only SEND
 * goes, and Y moves on.  Neither side needs the other to send data first,
 * which is what the reserved credit buys: without it both could spend
 * their last credit on data and wait for each other's credits forever.
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
/* Credits owed that are worth a credit-only SEND: half the window, and
 * at most RDMA_NRECV - 1 (the no-deadlock argument above needs it). */
#define RDMA_CREDIT_BATCH (RDMA_NRECV / 2)
_Static_assert(RDMA_CREDIT_BATCH >= 1 && RDMA_CREDIT_BATCH <= RDMA_NRECV - 1,
	       "RDMA_CREDIT_BATCH within the window");

extern const struct ufo_transport_ops ufo_rdma_transport;

/* True when rdma-core is built in and at least one RDMA device exists. */
bool urdma_available(void);

/* The server side: listen, accept and the listener's other ops (on the
 * same host and port numbers as TCP, in rdmacm's own port space; -ENODEV
 * without a device, -EOPNOTSUPP without rdma-core).  accept also reports
 * UFO_ACCEPT_GONE: a peer's DISCONNECTED comes to the listener's event
 * channel, not to the connection.  Accepted connections are driven
 * through the non-blocking half of the ops table (read, writev, wait_fds,
 * event, send_idle, register_mem; see transport.h).  Threads: read and
 * event on the loop thread; writev and send_idle serialised by the caller
 * on any thread (the send side's shared state has its own lock inside);
 * register_mem on any thread. */

#endif /* UFO_RDMA_H */
