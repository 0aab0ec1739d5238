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

struct ufo_client;
struct ufo_remote_info;
int client_open(struct ufo_client *cl, const char *name,
		struct ufo_remote_info *out);
int client_timeout_ms(const struct ufo_client *cl);
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
