/* SPDX-License-Identifier: MIT */
/*
 * Inside the client: requests, connections and the leader/follower reader
 * (rpc.c), shared with the operations (ops.c) and the one-sided RDMA path
 * (direct.c).  Nothing outside client/ includes this.
 */
#ifndef UFO_CLIENT_RPC_H
#define UFO_CLIENT_RPC_H

#include <pthread.h>
#include <stdatomic.h>

#include "client/client.h"
#include "transport.h"
#include "util.h"

#define CLIENT_DEFAULT_TIMEOUT_MS 5000
#define CLIENT_DEFAULT_CONNECTIONS 2
#define CLIENT_MAX_CONNECTIONS 16
/* The MAP cache of a connection mirrors the server's registrations on it,
 * so it has as many slots as the server allows registrations. */
#define CLIENT_MAP_SLOTS WIRE_MAX_MAPS

/*
 * One connection slot of a client.  Its reader thread waits in the
 * connection, reads every answer and completes the request it belongs
 * to.  A broken connection fails its pending requests and is reconnected
 * by the next submitter.
 */
/* A MAP cache slot: FREE → MAPPING (its MAP in flight) → LIVE, and
 * LIVE → UNMAPPING (its UNMAP in flight) → FREE or MAPPING (reused for the
 * range that evicted it).  A key is in one slot at most: while MAPPING or
 * UNMAPPING, others asking for that range go two-sided rather than race a
 * second MAP against the UNMAP (the server could answer the MAP with the
 * registration the UNMAP then drops).  A LIVE slot of an older generation
 * is free. */
enum map_state { MAP_FREE, MAP_MAPPING, MAP_LIVE, MAP_UNMAPPING };

struct rconn {
	struct ufo_client *cl;
	pthread_mutex_t lock;   /* conn, gen, pending, the fields below */
	pthread_cond_t reader_cond; /* connected, or stop */
	pthread_mutex_t send_lock;
	pthread_mutex_t connect_lock;
	struct ufo_conn *conn;  /* NULL while down */
	uint64_t gen;           /* bumped by every (re)connect */
	uint16_t version;
	/* Sent and not yet answered, oldest first: every request has the
	 * same timeout, so the head has the nearest deadline. */
	struct client_req *pending, *pending_tail;
	/* Requests submitted here and not yet done (pick_conn's measure of
	 * load; relaxed, a stale value only balances one request worse). */
	_Atomic unsigned inflight;
	bool reading;           /* the reader is reading the connection */
	bool stopping;          /* ufo_client_close: the reader ends */
	pthread_t reader;
	bool reader_started;
	/* Where MAP put object ranges for this connection (one-sided reads
	 * and writes), under lock; see direct.c.  An entry is valid for the
	 * connection generation it was made in only: a reconnect empties the
	 * cache by bumping gen. */
	struct map_entry {
		uint64_t id, off, gen, raddr;
		uint32_t len, rkey;
		enum map_state state;
		unsigned pins;     /* one-sided operations using the key */
		uint64_t last_use; /* map_clock when last pinned (LRU) */
		unsigned slot;     /* its index in maps (for copies) */
	} maps[CLIENT_MAP_SLOTS];
	uint64_t map_clock;
};

struct ufo_client {
	struct net_addr addr;
	const struct ufo_transport_ops *tops;
	bool fallback;          /* ufo://: TCP when RDMA cannot connect */
	uint8_t secret[WIRE_MAX_SECRET];
	size_t secret_len;
	int timeout_ms;
	unsigned nconns;
	_Atomic uint64_t next_id;
	_Atomic unsigned rr;
	/* Counters for ufo_client_status; relaxed atomics, no lock. */
	_Atomic uint64_t requests, errors, bytes_in, bytes_out, latency_ns_sum;
	_Atomic uint64_t direct_reads, direct_writes; /* one-sided */
	_Atomic int64_t latency_ewma_ns;
	struct rconn conns[CLIENT_MAX_CONNECTIONS];
};

/* rpc.c, for ops.c and direct.c */
struct rconn *pick_conn(struct ufo_client *cl);
/* Makes sure rc is connected (one thread connects a slot at a time). */
int conn_ensure(struct rconn *rc);
/* One request on rc, waited for. */
int client_call_on(struct ufo_client *cl, struct rconn *rc,
		   struct client_call *k);
int client_call(struct ufo_client *cl, struct client_call *k);
/* Detaches c from rc and fails every pending request with err; rc->lock
 * held.  Once detached nobody starts to read or send on c, so the caller
 * may close it after unlocking.  Returns the failed requests whose done
 * the caller must run, after unlocking, with reqs_done. */
struct client_req *conn_detach_locked(struct rconn *rc, struct ufo_conn *c,
				      int err);
void reqs_done(struct ufo_client *cl, struct client_req *list);

#endif /* UFO_CLIENT_RPC_H */
