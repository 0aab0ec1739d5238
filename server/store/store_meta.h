/* SPDX-License-Identifier: MIT */
/* On-disk formats of the store (store_meta.c): metadata files, the id
 * counter, and the atomic-replace helper both use. */
#ifndef UFO_SERVER_STORE_META_H
#define UFO_SERVER_STORE_META_H

#include <stdint.h>

#include "store.h"

#define META_MAGIC 0x4d4f4655u /* "UFOM" */
#define META_FORMAT 1
#define META_SUFFIX ".meta"
#define DATA_SUFFIX ".data"
#define TMP_SUFFIX ".tmp"
#define OBJ_FILE_MAX 40 /* 16 hex digits + suffixes */

/* All fields little-endian; csum is XXH3-64 of the bytes before it. */
struct meta_disk {
	uint32_t magic;
	uint32_t format;
	uint64_t id;
	uint64_t size;
	uint32_t chunk_size;
	uint32_t flags;
	uint16_t name_len;
	uint16_t pad[3];
	char name[WIRE_MAX_NAME + 1];
	uint64_t csum;
};
_Static_assert(sizeof(struct meta_disk) == 304, "meta record is 304 bytes");

void obj_file_name(char *buf, uint64_t id, const char *suffix);
/* Writes len bytes to dirfd/name atomically: temp file, fsync, rename,
 * fsync of the directory. */
int atomic_replace(int dirfd, const char *name, const void *buf, size_t len);
int fsync_dir(int dirfd);

int meta_write(int objfd, const struct store_obj *o);
/* Loads and checks dirfd/name into o (id, size, chunk_size, name). */
int meta_read(int objfd, const char *file, struct store_obj *o);

int counter_read(int dirfd, uint64_t *next);
int counter_write(int dirfd, uint64_t next);

#define NODE_ID_FILE "node-id"

/* Reads up to len bytes at off (fewer at the end of the file: *got says
 * how many).  0 or -errno. */
int pread_all(int fd, void *buf, size_t len, off_t off, size_t *got);

/* The node's identity (NODE_ID_FILE in dirfd), created at random on first
 * use.  0 or -errno (-EBADMSG: a short file). */
int node_id_load(int dirfd, uint8_t out[WIRE_NODE_ID]);

#endif /* UFO_SERVER_STORE_META_H */
