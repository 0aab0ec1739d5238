/* SPDX-License-Identifier: MIT */
/*
 * Replication state of stored objects (docs/cluster.md): per-block
 * versions, the placement, repair hints, and the server's node id.
 *
 * Files next to an object's data, named by its id:
 *   .ver    one little-endian u64 per block (sparse: holes are version 0);
 *   .place  the placement (wire_placement, members, XXH3-64), replaced
 *           atomically;
 *   .hints  wire_hint records, appended; HINTS_DROP rewrites it.
 *
 * The ordering that makes versions trustworthy: a VWRITE's data is
 * pwritten by a worker, made durable by the committer's fdatasync, and
 * only then is its version written to .ver.  So after any crash a block's
 * data is at least as new as its recorded version; a version never
 * vouches for data that is not on disk.  Between the pwrite and the
 * version write the version is "pending" (struct vpend): later VWRITEs
 * compare against it too, so two writes of a block apply in version order
 * whatever order their commits take.
 *
 * The store (store.c) knows none of this: it calls vstore_ext's hooks where
 * an object's life begins and ends, and o->rep holds the state below.
 */
#ifndef UFO_SERVER_VSTORE_H
#define UFO_SERVER_VSTORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define VER_SUFFIX ".ver"
#define PLACE_SUFFIX ".place"
#define HINTS_SUFFIX ".hints"

/* Blocks [first, first + count) wait for `version` to be recorded. */
struct vpend {
	struct vpend *next;
	uint64_t first, count, version;
};

struct placement {
	uint64_t epoch; /* 0: never placed */
	uint32_t group_size;
	uint8_t replicas, write_quorum;
	uint16_t nmembers;
	uint8_t members[WIRE_MAX_MEMBERS][WIRE_NODE_ID];
};

/* An object's replication state (o->rep), under vlock. */
struct vobj {
	pthread_mutex_t vlock;
	int objdir;   /* the objects directory (the store's; not owned) */
	int vfd, hfd; /* .ver and .hints */
	uint64_t nhints;
	struct vpend *pending;
	struct placement *place;
};

/* The store's hooks (store.h's struct store_ext): give store_open this. */
extern const struct store_ext vstore_ext;
/* Opens (creating) the object's version and hint files and loads its
 * placement.  0 or -errno. */
int vstore_attach(int objdir, struct store_obj *o);
void vstore_detach(struct store_obj *o);
void vstore_remove(int objdir, uint64_t id);

/* VWRITE, worker side: writes the blocks of [off, off + len) whose version
 * is below `version`; *out (NULL when nothing applied) goes to
 * vstore_commit once the data file is durable.  The range is checked. */
int vstore_write(struct store_obj *o, uint64_t off, const void *buf,
		 uint32_t len, uint64_t version, struct vpend **out);
/* Committer side: records p's version (durable_rc 0) or forgets it (the
 * data's fdatasync failed), and frees p.  Then vstore_sync before the
 * answer. */
int vstore_commit(struct store_obj *o, struct vpend *p, int durable_rc);
int vstore_sync(struct store_obj *o);
/* Versions of blocks [first, first + count), count cut at the end. */
int vstore_versions(struct store_obj *o, uint64_t first, uint32_t count,
		    uint64_t *out, uint32_t *got);
/* DISCARD: the blocks of [off, off + len) at version <= max_version. */
int vstore_discard(struct store_obj *o, uint64_t off, uint64_t len,
		   uint64_t max_version, uint64_t *dropped);

/* -ESTALE: p's epoch is not above the current one (an identical
 * placement is accepted as a repeat). */
int vstore_place(struct store_obj *o, const struct placement *p);
void vstore_placement(struct store_obj *o, struct placement *out);
uint64_t vstore_epoch(struct store_obj *o);

int vstore_hint_add(struct store_obj *o, uint64_t off, uint32_t len,
		    const uint8_t node[WIRE_NODE_ID]);
/* Up to max records from cursor into out (max * sizeof(struct wire_hint)
 * bytes), as stored: the .hints file holds them in their wire encoding
 * (wire_put_hint), so they go to the client as they are. */
int vstore_hints(struct store_obj *o, uint64_t cursor, uint8_t *out,
		 uint32_t max, uint32_t *count, bool *more);
int vstore_hints_drop(struct store_obj *o, uint64_t upto,
		      const uint8_t node[WIRE_NODE_ID]);

/* The data directory's node id, made on first use. */

#endif /* UFO_SERVER_VSTORE_H */
