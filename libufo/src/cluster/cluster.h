/* SPDX-License-Identifier: MIT */
/*
 * Cluster internals shared by the files of cluster/: members.c
 * (membership, health), placement.c, quorum.c (versioned reads and
 * writes), backend.c (the backend of replicated objects), repair.c,
 * hlc.c.  docs/cluster.md is the model; the public face is the
 * ufo_cluster_* part of ufo.h.
 */
#ifndef UFO_CLUSTER_H
#define UFO_CLUSTER_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "client/client.h"
#include "transport.h"

#define CLUSTER_PROBE_MS 1000   /* health check of every server */
#define CLUSTER_TICK_MS 250     /* the health thread's wakeups */
#define CLUSTER_GROUP_CHUNKS 4  /* default placement group, in chunks */
/* An operation's timeout (ufo_remote_opts.timeout_ms, 0: this) is shared
 * by its attempts; each request to a member gets a third of it (at least
 * CLUSTER_MIN_REQUEST_MS), so that a member that stops answering costs one
 * attempt, is marked down, and the next attempt goes to another copy. */
#define CLUSTER_DEFAULT_TIMEOUT_MS 5000
#define CLUSTER_ATTEMPTS_PER_TIMEOUT 3
#define CLUSTER_MIN_REQUEST_MS 250

struct member {
	char url[NET_MAX_HOST + 32]; /* scheme://host:port */
	char server[NET_MAX_HOST + 8];
	struct ufo_client *cl;
	/* node and known change under the cluster's lock; up is read
	 * without it (a stale answer only routes one request badly, and the
	 * request's own failure corrects it). */
	uint8_t node[WIRE_NODE_ID];
	bool known;
	_Atomic bool dup;  /* another address of a member already listed;
			    * written by the health thread only */
	_Atomic bool up;
	_Atomic uint64_t failures, objects;
	uint64_t next_probe_ns; /* health thread only */
};

struct ufo_cluster {
	struct ufo_ctx *ctx;  /* the log of servers going down and up, or NULL */
	struct ufo_remote_opts opts;
	unsigned timeout_ms;   /* of an operation; a request gets a third */
	char secret_file[PATH_MAX];
	pthread_mutex_t lock;
	pthread_cond_t cond;   /* stop */
	pthread_t health;
	bool health_on, stop;
	unsigned n;
	struct member m[WIRE_MAX_MEMBERS];
};

/* A placement as the client sees it: node ids, mapped to members on use. */
struct cview {
	uint64_t epoch;
	uint32_t group_size;
	unsigned replicas, quorum, n;
	uint8_t nodes[WIRE_MAX_MEMBERS][WIRE_NODE_ID];
};

/* A replicated object: its name, and its id on each member (0: not
 * looked up yet). */
struct cobj {
	struct ufo_cluster *c;
	bool own_cluster;  /* closed with the object */
	char name[WIRE_MAX_NAME + 1];
	uint64_t key;      /* hash of the name, for rendezvous */
	uint64_t size;
	uint32_t block;    /* the object's chunk size on the servers */
	pthread_mutex_t lock; /* view, ids */
	struct cview view;
	uint64_t ids[WIRE_MAX_MEMBERS];
};

int cluster_connect(const char *servers, const struct ufo_remote_opts *opts,
		    struct ufo_ctx *ctx, struct ufo_cluster **out);

/* Marks member i down after a transient error (counted). */
void member_failed(struct ufo_cluster *c, int i, int err);
bool member_up(struct ufo_cluster *c, int i);
/* The member serving node id, or -1. */
int member_of_node(struct ufo_cluster *c, const uint8_t node[WIRE_NODE_ID]);

/* v's nodes in rendezvous order for group g: node[i] indexes v->nodes,
 * member[i] is the member serving it (-1: none now).  The first R are the
 * group's homes. */
struct rank {
	unsigned node[WIRE_MAX_MEMBERS];
	int member[WIRE_MAX_MEMBERS];
};
void cobj_rank(struct cobj *o, const struct cview *v, uint64_t g,
	       struct rank *out);
void cobj_view(struct cobj *o, struct cview *out);
/* Reads the newest placement from the live members. */
int cobj_reload(struct cobj *o);
/* The object's id on member i; create: make it there (with the current
 * placement) when missing. */
int cobj_id(struct cobj *o, int i, bool create, uint64_t *id);
int cobj_init(struct cobj *o, struct ufo_cluster *c, const char *name);
void cobj_fini(struct cobj *o);

/* Requests to several members at once; see client_start. */
struct vquery {
	struct client_call k;
	uint8_t q[sizeof(struct wire_vq)];            /* encoded */
	uint8_t rep_raw[sizeof(struct wire_vq_reply)]; /* encoded */
	struct wire_vq_reply rep;                      /* decoded */
	uint64_t *v;        /* count versions */
	struct client_op *op;
	int member, err;
};
/* Versions of blocks [first, first + count) of o on each member of
 * m[0..n): q[i].v filled (zeros where the object is missing), q[i].err. */
int versions_query(struct cobj *o, const int *m, unsigned n, uint64_t first,
		   uint32_t count, struct vquery *q);
void versions_free(struct vquery *q, unsigned n);
/* Plain reads of data from member i. */
int member_read(struct cobj *o, int i, uint64_t off, void *buf, size_t len);
/* VWRITE to member i (node: a hint for that node, or NULL). */
int member_vwrite(struct cobj *o, int i, uint64_t epoch, uint64_t off,
		  const void *buf, size_t len, uint64_t version,
		  const uint8_t *hint_node);

/* PLACE v on member i's copy (id). */
int member_place(struct cobj *o, int i, uint64_t id, const struct cview *v);

/* Hybrid logical clock for versions: above every version seen. */
uint64_t hlc_next(void);
void hlc_observe(uint64_t v);

void node_hex(const uint8_t node[WIRE_NODE_ID], char out[33]);

/* quorum.c: one attempt at reading (writing, with version) [off,
 * off + len) of a replicated object; the backend retries them. */
int cluster_read_once(struct cobj *o, uint64_t off, size_t len, char *dst);
int cluster_write_once(struct cobj *o, uint64_t off, size_t len,
		       const char *src, uint64_t version);
/* The same attempt for io (a store; io->tag its version) without waiting:
 * io_complete follows on whichever thread learns the outcome.  -EAGAIN
 * (io untouched): a target's id is not known yet, and looking it up
 * waits; write with cluster_write_once on an I/O worker instead. */
int cluster_write_submit(struct cobj *o, struct ufo_io *io);

/* members.c: whether url names several servers ("a,b" or an empty host
 * for $UFO_SERVERS, or a host name with several addresses of one
 * family), and which. */
bool cluster_url(const char *url, char *servers, size_t cap, char *name,
		 size_t name_cap);
/* backend.c: opens a replicated object on the servers of that list. */
int cluster_remote_open(struct ufo_ctx *ctx, const char *servers,
			const char *name, const struct ufo_remote_opts *opts,
			struct ufo_obj **out);

#endif /* UFO_CLUSTER_H */
