/* SPDX-License-Identifier: MIT */
/*
 * The object store: one sparse data file and one metadata file per object
 * in DIR/objects/, named by the object's id (names can be 255 bytes, longer
 * than a file name plus a suffix may be).  An object exists exactly when its
 * metadata file does: creating renames a fsync'd temp file into place,
 * deleting unlinks it, each followed by a fsync of the directory.  Ids come
 * from a counter persisted in DIR/next-id and are never reused.
 *
 * Every function returns 0 or a negative errno.  Objects are reference
 * counted: lookups return a reference the caller drops with store_put(), so
 * a DELETE racing with I/O leaves the I/O on a valid (unlinked) file.
 */
#ifndef UFO_SERVER_STORE_H
#define UFO_SERVER_STORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "wire.h"

#define STORE_OBJ_DIR "objects"
#define STORE_COUNTER "next-id"
#define STORE_LOCK "lock"
#define STORE_ID_RESERVE 64 /* ids persisted ahead per counter fsync */

struct store_obj {
	uint64_t id;
	uint64_t size;
	uint32_t chunk_size;
	uint16_t name_len;
	char name[WIRE_MAX_NAME + 1];
	int fd; /* data file, open for the object's life */
	atomic_uint refs;
	struct store_obj *name_next; /* hash chain, under the index lock */
	/* The layer above that keeps per-object state (the replica's
	 * versions, placement and hints: vstore.c), and that state; NULL
	 * until its attach ran. */
	const struct store_ext *ext;
	struct vobj *rep;
	/* Private to the committer thread (commit.c). */
	uint64_t vsync_batch;
	int vsync_rc;
	uint64_t commit_batch;
	int commit_rc;
};

struct store;
struct vpend;
struct placement;
struct vobj;

/*
 * A layer above the store that keeps state per object (replica/vstore.c)
 * is called through this table where an object's life begins and ends, so
 * the store never calls up into it by name.  Every member may be NULL.
 */
struct store_ext {
	/* The object's data file is open (created or loaded): set o->rep up.
	 * 0 or -errno (the object then fails to create or load). */
	int (*attach)(int objdir, struct store_obj *o);
	/* The last reference is gone: free o->rep (NULL if never attached). */
	void (*detach)(struct store_obj *o);
	/* The object is deleted (or was half-created): remove its files. */
	void (*remove)(int objdir, uint64_t id);
	/* WIRE_OBJ_* flags the layer adds to STAT and OPEN answers. */
	uint32_t (*info_flags)(struct store_obj *o);
};

/* Opens (creating if needed) a data directory, takes its lock (one server
 * per directory), drops half-created leftovers and loads every object. */
int store_open(const char *dir, const struct store_ext *ext,
	       struct store **out);
void store_close(struct store *s);
size_t store_count(struct store *s);

int store_create(struct store *s, const char *name, uint16_t name_len,
		 uint64_t size, uint32_t chunk_size, struct store_obj **out);
int store_delete(struct store *s, const char *name, uint16_t name_len);
/* -ENOENT when absent.  A reference on success. */
int store_find_name(struct store *s, const char *name, uint16_t name_len,
		    struct store_obj **out);
int store_find_id(struct store *s, uint64_t id, struct store_obj **out);
/* Up to max objects with id >= cursor, in id order, each referenced;
 * *next is the id to continue from, 0 at the end. */
int store_list(struct store *s, uint64_t cursor, uint32_t max,
	       struct store_obj **objs, uint32_t *count, uint64_t *next);

void store_get(struct store_obj *o);
void store_put(struct store_obj *o);

int store_info(struct store_obj *o, struct wire_objinfo *out); /* host order */
/* Reads [off, off+len); holes and the part past the data file's end are
 * zeros.  The caller has checked the range against o->size. */
/* nowait: -EAGAIN instead of waiting for the disk (RWF_NOWAIT). */
int store_read(struct store_obj *o, uint64_t off, void *buf, uint32_t len,
	       bool nowait);
/* Whether [off, off+len) holds no data (never written, or discarded):
 * true only when sure. */
bool store_hole(struct store_obj *o, uint64_t off, uint32_t len);
int store_write(struct store_obj *o, uint64_t off, const void *buf,
		uint32_t len);
int store_sync(struct store_obj *o); /* fdatasync */
/* The server's node id (vstore.h). */
const uint8_t *store_node_id(struct store *s);

#endif /* UFO_SERVER_STORE_H */
