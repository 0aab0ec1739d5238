/* SPDX-License-Identifier: MIT */
/*
 * The ufo-server client as the backends and the cluster layer use it,
 * beyond the public ufo_client_* calls of ufo.h.  client/ never includes
 * the engine: it knows connections, frames and requests, not objects.
 */
#ifndef UFO_CLIENT_H
#define UFO_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ufo.h"
#include "wire.h"

struct ufo_client;
struct ufo_remote_info;
int client_open(struct ufo_client *cl, const char *name,
		struct ufo_remote_info *out);
int client_timeout_ms(const struct ufo_client *cl);
/* Whether the client's transport reads and writes one-sided (RDMA). */
bool client_one_sided(const struct ufo_client *cl);
/* The protocol version agreed with the server (0 before any connect):
 * 2 and on, READ may ask for holes (WIRE_IO_HOLES). */
unsigned client_version(const struct ufo_client *cl);
/* Reads by one-sided RDMA READ after a MAP (cached per connection).
 * -EOPNOTSUPP when this client's transport cannot or the server would not
 * map the range: read it with ufo_client_read instead. */
int client_read_direct(struct ufo_client *cl, uint64_t id, uint64_t off,
		       void *buf, size_t len);
/* The same for a write: RDMA WRITE into the mapped range, then COMMIT,
 * answered once durable.  -EOPNOTSUPP: use ufo_client_write. */
int client_write_direct(struct ufo_client *cl, uint64_t id, uint64_t off,
			const void *src, size_t len);
/* One request: p1/p2 are sent after the header; the answer fills fixed
 * (exactly fixed_len bytes) then up to data_cap bytes of data. */
struct client_call {
	uint16_t op;
	const void *p1;
	size_t l1;
	const void *p2;
	size_t l2;
	void *fixed;
	size_t fixed_len;
	void *data;
	size_t data_cap;
	size_t data_len; /* out */
};
/*
 * An asynchronous request.  The caller fills k and done (and user) and
 * keeps q valid until done runs.  done(q, err) runs exactly once, with 0 or
 * -errno, k.data_len and errmsg set: on the reader thread of the
 * connection that carried it (when its answer, the connection's failure or
 * its timeout comes), or on the submitting thread when it could not be
 * sent.  The client does not touch q after done.  The rest is the
 * client's own while the request is in flight.
 */
struct rconn;
struct client_req {
	struct client_call k;
	void (*done)(struct client_req *q, int err);
	void *user;
	/* Fail with -ENOTCONN instead of connecting when the connection
	 * picked is down: a connect may wait for the whole timeout, which a
	 * caller that must not block (a fault handler) leaves to others. */
	bool no_connect;
	/* the client's, until done */
	struct client_req *next;
	struct rconn *rc;
	uint64_t id, t0;
	uint64_t deadline;  /* now_ns() by which the answer must have come */
	int status;
	bool sending;       /* the submitter is still writing it out */
	bool finished;      /* answered or failed; done once not sending */
	char errmsg[WIRE_MAX_ERRMSG + 1];
};
/* The READ (WRITE) of len bytes at off of object id into (from) buf, as a
 * request with wire_io flags (WIRE_IO_HOLES or 0); w gets its encoded
 * fixed part (sizeof(struct wire_io) bytes) and must live as long as k. */
void client_io_prepare(struct client_call *k, uint8_t *w, bool write,
		       uint64_t id, uint64_t off, void *buf, size_t len,
		       uint32_t flags);
/* Sends q on one of cl's connections (connecting it first if it is down:
 * the only wait on the submitting thread besides the send itself). */
void client_submit(struct ufo_client *cl, struct client_req *q);

/* For the cluster layer: a client whose server may be down now (the
 * first connect's error is *connect_err; later requests reconnect). */
int client_new(const char *url, const struct ufo_remote_opts *opts,
	       struct ufo_client **out, int *connect_err);
int client_call_sync(struct ufo_client *cl, struct client_call *k);
/* Requests to several servers at once: start sends (k must live until
 * finish), finish waits and frees; finish(NULL) is -ENOMEM. */
struct client_op;
struct client_op *client_start(struct ufo_client *cl, struct client_call *k);
int client_finish(struct client_op *o);

#endif /* UFO_CLIENT_H */
