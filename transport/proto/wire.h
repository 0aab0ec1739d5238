/* SPDX-License-Identifier: MIT */
/*
 * The libufo wire protocol, versions 1 to 3 (docs/protocol.md is the
 * prose), and its codec.
 *
 * Every message is a 32-byte header followed by `len` payload bytes.  All
 * integers are little-endian.  Requests carry an opcode; the response to a
 * request has the same opcode with WIRE_RESPONSE set and the same req_id, so
 * requests pipeline on one connection and responses may come out of order.
 * `csum` is XXH3-64 of the payload (of zero bytes when len is 0).
 *
 * The structs below are the messages in host byte order.  Each one's size
 * is its size on the wire (checked below), but no struct is ever sent or
 * read as raw memory: codec.c has one encoder and one decoder per message
 * (wire_put_X, wire_get_X), and nothing else in the tree converts byte
 * order for the protocol.
 *
 * Every length and count read from the network is checked against the
 * limits below before it is used (wire_check_hdr, wire_parse_*).  Reserved
 * fields (flags, pad) must be zero; a server rejects non-zero ones.
 */
#ifndef UFO_WIRE_H
#define UFO_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define WIRE_MAGIC 0x314f4655u /* "UFO1" */
#define WIRE_VERSION_MIN 1
#define WIRE_VERSION_MAX 3 /* 2: READ may ask for holes (WIRE_IO_HOLES)
			    * 3: UNMAP */

/* ---- limits */
#define WIRE_MAX_IO ((uint32_t)16 << 20)           /* bytes per READ/WRITE */
#define WIRE_MAX_PAYLOAD (WIRE_MAX_IO + 4096)      /* any frame */
#define WIRE_MAX_PREAUTH 128                       /* frames before AUTH */
#define WIRE_MAX_NAME 255                          /* object name bytes */
#define WIRE_MAX_OBJECT_SIZE ((uint64_t)1 << 50)   /* 1 PiB */
#define WIRE_MIN_CHUNK 4096u
#define WIRE_MAX_CHUNK ((uint32_t)64 << 20)
#define WIRE_LIST_MAX 256                          /* entries per LIST reply */
#define WIRE_MAX_ERRMSG 256                        /* text in error replies */
#define WIRE_NONCE 32
#define WIRE_MAC 32                                /* HMAC-SHA256 */
#define WIRE_MIN_SECRET 16                         /* bytes of shared secret */
#define WIRE_MAX_SECRET 4096                       /* buffer; secrets < this */
#define WIRE_MAX_VERSIONS 65536u                   /* per VERSIONS reply */
#define WIRE_MAX_MEMBERS 64                        /* servers in a placement */
#define WIRE_MAX_HINTS 4096u                       /* per HINTS reply */
#define WIRE_NODE_ID 16                            /* bytes of a server id */
#define WIRE_MAX_MAPS 256                          /* MAP registrations per
						    * RDMA connection */

enum wire_op {
	WIRE_HELLO = 1,  /* wire_hello → wire_hello (server's choice) */
	WIRE_AUTH = 2,   /* wire_mac → wire_mac (server's proof) */
	WIRE_CREATE = 3, /* wire_create + name → wire_objinfo */
	WIRE_OPEN = 4,   /* wire_name + name → wire_objinfo */
	WIRE_STAT = 5,   /* wire_name + name → wire_objinfo */
	WIRE_LIST = 6,   /* wire_list → wire_list_reply + entries */
	WIRE_DELETE = 7, /* wire_name + name → empty */
	WIRE_READ = 8,   /* wire_io → data */
	WIRE_WRITE = 9,  /* wire_io + data → empty, once durable */
	WIRE_SYNC = 10,  /* wire_id → empty, once every WRITE sent before it
			  * on this connection is durable and the object
			  * (id 0: none, ordering only) is synced */
	WIRE_PING = 11,  /* empty → empty */
	WIRE_MAP = 12,   /* wire_io → wire_map: RDMA connections only, see
			  * below */
	WIRE_COMMIT = 13,/* wire_io → empty, once the range this connection
			  * RDMA-wrote into a MAPped range is durable */
	/* Replicated objects (docs/cluster.md); see the structs below. */
	WIRE_VWRITE = 14,   /* wire_vio + data → empty, once durable */
	WIRE_VERSIONS = 15, /* wire_vq → wire_vq_reply + count × u64 */
	WIRE_DISCARD = 16,  /* wire_vio (len: the range, no data) → empty */
	WIRE_NODE = 17,     /* empty → wire_node */
	WIRE_PLACE = 18,    /* wire_id + wire_placement + members → empty */
	WIRE_PLACEMENT = 19,/* wire_id → wire_placement + members */
	WIRE_HINTS = 20,    /* wire_hint_q → wire_hint_reply + records */
	WIRE_HINTS_DROP = 21, /* wire_hint_drop → empty */
	WIRE_UNMAP = 22,    /* wire_unmap → empty (version 3 on), see MAP */
	WIRE_OP_MAX = 22,
	WIRE_RESPONSE = 0x8000,
};
/* A reply that cannot name the request's opcode (unknown op, or the refusal
 * of a connection over the server's limit, req_id 0) is sent as
 * HELLO | WIRE_RESPONSE with the error status, so framing holds. */

/* Status in responses.  An error response may carry up to WIRE_MAX_ERRMSG
 * bytes of UTF-8 text saying what was wrong. */
enum wire_status {
	WIRE_OK = 0,
	WIRE_EPROTO = 1,    /* malformed frame: bad magic, sizes, fields */
	WIRE_EVERSION = 2,  /* no common protocol version */
	WIRE_EAUTH = 3,     /* wrong secret */
	WIRE_ENOENT = 4,    /* no such object */
	WIRE_EEXIST = 5,    /* object exists */
	WIRE_EINVAL = 6,    /* bad argument (name, size, chunk size, op) */
	WIRE_ERANGE = 7,    /* offset/length outside the object */
	WIRE_E2BIG = 8,     /* over a limit (frame, I/O, object size) */
	WIRE_EIO = 9,       /* storage error */
	WIRE_ENOSPC = 10,   /* storage full */
	WIRE_EBUSY = 11,    /* too many connections */
	WIRE_ECSUM = 12,    /* payload checksum mismatch */
	WIRE_ENOTAUTH = 13, /* request before authentication */
	WIRE_ESHUTDOWN = 14,/* server stopping */
	WIRE_ESTALE = 15,   /* the client's placement epoch is not the
			     * object's: reload the placement */
	WIRE_STATUS_MAX = 15,
};

struct wire_hdr {
	uint32_t magic;
	uint16_t version; /* 0 in HELLO (not negotiated yet), else agreed */
	uint16_t op;      /* enum wire_op, | WIRE_RESPONSE in replies */
	uint64_t req_id;
	uint32_t status;  /* enum wire_status; 0 in requests */
	uint32_t len;     /* payload bytes */
	uint64_t csum;    /* XXH3-64 of the payload */
};
_Static_assert(sizeof(struct wire_hdr) == 32, "wire header is 32 bytes");

/* HELLO both ways: the client offers [min, max], the server answers with
 * min = max = the version it picked, and its own nonce. */
struct wire_hello {
	uint16_t min_version;
	uint16_t max_version;
	uint32_t flags; /* 0 */
	uint8_t nonce[WIRE_NONCE];
};
_Static_assert(sizeof(struct wire_hello) == 40, "hello is 40 bytes");

/* AUTH: client mac = HMAC(secret, "ufo1 client" | server nonce | client
 * nonce); the server answers HMAC(secret, "ufo1 server" | client nonce |
 * server nonce), so each side proves it holds the secret. */
struct wire_mac {
	uint8_t mac[WIRE_MAC];
};

struct wire_create {
	uint64_t size;
	uint32_t chunk_size;
	uint16_t name_len;
	uint16_t flags; /* 0 */
	/* name_len bytes of name follow */
};
_Static_assert(sizeof(struct wire_create) == 16, "create is 16 bytes");

struct wire_name {
	uint16_t name_len;
	uint16_t pad[3];
	/* name_len bytes of name follow */
};
_Static_assert(sizeof(struct wire_name) == 8, "name is 8 bytes");

struct wire_objinfo {
	uint64_t id;        /* stable for the object's life, across restarts */
	uint64_t size;
	uint32_t chunk_size;
	uint32_t flags;     /* WIRE_OBJ_* */
	uint64_t allocated; /* bytes on disk (sparse files use less) */
	uint64_t mtime_ns;
};
_Static_assert(sizeof(struct wire_objinfo) == 40, "objinfo is 40 bytes");
/* The object is placed over several servers (PLACE): this server holds
 * only part of it, and only versioned writes (VWRITE) are accepted. */
#define WIRE_OBJ_REPLICATED 1u

struct wire_list {
	uint64_t cursor; /* 0 for the first page */
	uint32_t max;    /* entries wanted, 1..WIRE_LIST_MAX (0: EINVAL,
			  * more: E2BIG) */
	uint32_t pad;
};
_Static_assert(sizeof(struct wire_list) == 16, "list is 16 bytes");

struct wire_list_reply {
	uint64_t next_cursor; /* 0: no more */
	uint32_t count;
	uint32_t pad;
	/* count × (wire_list_entry, name_len bytes of name) follow */
};
_Static_assert(sizeof(struct wire_list_reply) == 16, "list reply is 16 bytes");

struct wire_list_entry {
	struct wire_objinfo info;
	uint16_t name_len;
	uint16_t pad[3];
};
_Static_assert(sizeof(struct wire_list_entry) == 48, "list entry is 48 bytes");

struct wire_io {
	uint64_t id;
	uint64_t offset;
	uint32_t len;   /* <= WIRE_MAX_IO; WRITE: the payload after this */
	uint32_t flags; /* 0, or for READ on version 2: WIRE_IO_HOLES */
};
_Static_assert(sizeof(struct wire_io) == 24, "io is 24 bytes");

/* READ with WIRE_IO_HOLES (version 2 on): the answer starts with a
 * wire_read_reply.  A range that holds no data on the server (never
 * written, or discarded) is answered with flags WIRE_READ_HOLE and no data
 * after it: the client fills zeros without moving them over the network.
 * Otherwise the len bytes follow. */
#define WIRE_IO_HOLES 1u
struct wire_read_reply {
	uint32_t flags; /* WIRE_READ_HOLE or 0 */
	uint32_t pad;
};
_Static_assert(sizeof(struct wire_read_reply) == 8, "read reply is 8 bytes");
#define WIRE_READ_HOLE 1u

struct wire_id {
	uint64_t id;
};

/* MAP: the server registers [offset, offset + len) of object id for remote
 * reads on this connection's RDMA device and answers where: the client then
 * fetches with a one-sided RDMA READ.  The registration lives as long as the
 * connection, or until UNMAP.  EINVAL: not an RDMA connection; ERANGE:
 * outside the data the server holds (a never-written tail, read as zeros by
 * READ instead); EBUSY: the connection holds WIRE_MAX_MAPS registrations
 * (a version 3 client UNMAPs one it no longer uses and asks again).  A client
 * falls back to READ (WRITE) on any of these.  The range is registered for
 * remote reads and writes: a writeback is an RDMA WRITE into it followed
 * by COMMIT of the same range, answered once durable, as WRITE is. */
struct wire_map {
	uint64_t addr;
	uint32_t rkey;
	uint32_t len;
};
_Static_assert(sizeof(struct wire_map) == 16, "map is 16 bytes");

/* UNMAP (version 3 on): drops the registration this connection's MAP of
 * [offset, offset + len) of object id made and answered with rkey.  Only
 * the client knows when no RDMA READ or WRITE of its own uses the key any
 * more, so only the client drops one; the server frees it once no COMMIT
 * in flight still copies from it.  ENOENT: no such registration on this
 * connection; EINVAL: not an RDMA connection (as MAP). */
struct wire_unmap {
	uint64_t id;
	uint64_t offset;
	uint32_t len;
	uint32_t rkey;
};
_Static_assert(sizeof(struct wire_unmap) == 24, "unmap is 24 bytes");

/* ---- replicated objects (docs/cluster.md)
 *
 * A server keeps, per object, a version for every block (the object's
 * chunk_size bytes; the last may be short): 0 for never written, else the
 * version the client gave the VWRITE that last wrote it.  Versions only
 * grow: a VWRITE applies to the blocks whose version is below its own and
 * leaves newer ones alone (the answer is OK either way).  A version is
 * recorded only after the block's data is durable, so a block's data is
 * never older than its version, even across a crash. */

/* VWRITE: offset block-aligned, len a whole number of blocks (or reaching
 * the object's end), version > 0, epoch the object's placement epoch
 * (ESTALE otherwise).  flags & WIRE_VIO_HINT: the server also records that
 * server `node` missed this write (a hint for repair).
 * DISCARD: the same fields without data; drops the blocks (version set to
 * 0, the file range punched) whose version is at most `version`. */
struct wire_vio {
	uint64_t id;
	uint64_t offset;
	uint32_t len;
	uint32_t flags;
	uint64_t version;
	uint64_t epoch;
	uint8_t node[WIRE_NODE_ID];
};
_Static_assert(sizeof(struct wire_vio) == 56, "vio is 56 bytes");
#define WIRE_VIO_HINT 1u

/* VERSIONS: the versions of `count` blocks (1..WIRE_MAX_VERSIONS) from the
 * block-aligned offset, cut at the object's end. */
struct wire_vq {
	uint64_t id;
	uint64_t offset;
	uint32_t count;
	uint32_t flags; /* 0 */
};
_Static_assert(sizeof(struct wire_vq) == 24, "vq is 24 bytes");

struct wire_vq_reply {
	uint64_t epoch;      /* the object's placement epoch */
	uint32_t count;      /* u64 versions that follow */
	uint32_t block_size; /* the object's chunk size */
};
_Static_assert(sizeof(struct wire_vq_reply) == 16, "vq reply is 16 bytes");

/* NODE: the server's identity, made once per data directory, so placement
 * does not change when a server's address does. */
struct wire_node {
	uint8_t id[WIRE_NODE_ID];
	uint64_t objects;
	uint64_t flags; /* 0 */
};
_Static_assert(sizeof(struct wire_node) == 32, "node is 32 bytes");

/* PLACE / PLACEMENT: how a replicated object is spread; nmembers node ids
 * follow.  PLACE installs it if its epoch is above the object's (the same
 * epoch and contents: OK; anything else: ESTALE).  An object never placed
 * answers epoch 0 and no members. */
struct wire_placement {
	uint64_t epoch;
	uint32_t group_size;   /* bytes per placement group, multiple of the
				* object's chunk size */
	uint8_t replicas;      /* R, 1..nmembers */
	uint8_t write_quorum;  /* W, 1..R */
	uint16_t nmembers;     /* 1..WIRE_MAX_MEMBERS */
};
_Static_assert(sizeof(struct wire_placement) == 16, "placement is 16 bytes");

/* HINTS: records from `cursor` (0 first); HINTS_DROP removes the records
 * before `upto` that name `node` (all zeros: any node).  Records shift
 * down after a drop. */
struct wire_hint_q {
	uint64_t id;
	uint64_t cursor;
};
_Static_assert(sizeof(struct wire_hint_q) == 16, "hint query is 16 bytes");

struct wire_hint_reply {
	uint64_t next_cursor; /* records so far; 0 when none */
	uint32_t count;
	uint32_t more;        /* 1: records past next_cursor remain */
};
_Static_assert(sizeof(struct wire_hint_reply) == 16, "hint reply is 16 bytes");

struct wire_hint {
	uint64_t offset;
	uint32_t len;
	uint32_t pad;
	uint8_t node[WIRE_NODE_ID];
};
_Static_assert(sizeof(struct wire_hint) == 32, "hint is 32 bytes");

struct wire_hint_drop {
	uint64_t id;
	uint64_t upto;
	uint8_t node[WIRE_NODE_ID];
};
_Static_assert(sizeof(struct wire_hint_drop) == 32, "hint drop is 32 bytes");

/* ---- codec (codec.c)
 *
 * wire_put_X(buf, cap, m) writes message m as sizeof(struct wire_X)
 * little-endian bytes at buf and returns that size, or -ENOBUFS when cap is
 * smaller (buf's contents are then undefined).
 * wire_get_X(buf, len, m) reads the first sizeof(struct wire_X) bytes of
 * buf into m and returns that size, or -EPROTO when len is shorter (m is
 * then undefined).  Decoders check only that the bytes are there: a
 * message's fields are judged by the code that knows the request (the
 * parsers below, the server's handlers, the client's callers), and whether
 * bytes may follow (a WRITE's data, a name) is theirs to say too.
 */
int wire_put_hdr(void *buf, size_t cap, const struct wire_hdr *m);
int wire_get_hdr(const void *buf, size_t len, struct wire_hdr *m);
int wire_put_hello(void *buf, size_t cap, const struct wire_hello *m);
int wire_get_hello(const void *buf, size_t len, struct wire_hello *m);
int wire_put_mac(void *buf, size_t cap, const struct wire_mac *m);
int wire_get_mac(const void *buf, size_t len, struct wire_mac *m);
int wire_put_create(void *buf, size_t cap, const struct wire_create *m);
int wire_get_create(const void *buf, size_t len, struct wire_create *m);
int wire_put_name(void *buf, size_t cap, const struct wire_name *m);
int wire_get_name(const void *buf, size_t len, struct wire_name *m);
int wire_put_objinfo(void *buf, size_t cap, const struct wire_objinfo *m);
int wire_get_objinfo(const void *buf, size_t len, struct wire_objinfo *m);
int wire_put_list(void *buf, size_t cap, const struct wire_list *m);
int wire_get_list(const void *buf, size_t len, struct wire_list *m);
int wire_put_list_reply(void *buf, size_t cap, const struct wire_list_reply *m);
int wire_get_list_reply(const void *buf, size_t len, struct wire_list_reply *m);
int wire_put_list_entry(void *buf, size_t cap, const struct wire_list_entry *m);
int wire_get_list_entry(const void *buf, size_t len, struct wire_list_entry *m);
int wire_put_io(void *buf, size_t cap, const struct wire_io *m);
int wire_get_io(const void *buf, size_t len, struct wire_io *m);
int wire_put_read_reply(void *buf, size_t cap, const struct wire_read_reply *m);
int wire_get_read_reply(const void *buf, size_t len, struct wire_read_reply *m);
int wire_put_id(void *buf, size_t cap, const struct wire_id *m);
int wire_get_id(const void *buf, size_t len, struct wire_id *m);
int wire_put_map(void *buf, size_t cap, const struct wire_map *m);
int wire_get_map(const void *buf, size_t len, struct wire_map *m);
int wire_put_unmap(void *buf, size_t cap, const struct wire_unmap *m);
int wire_get_unmap(const void *buf, size_t len, struct wire_unmap *m);
int wire_put_vio(void *buf, size_t cap, const struct wire_vio *m);
int wire_get_vio(const void *buf, size_t len, struct wire_vio *m);
int wire_put_vq(void *buf, size_t cap, const struct wire_vq *m);
int wire_get_vq(const void *buf, size_t len, struct wire_vq *m);
int wire_put_vq_reply(void *buf, size_t cap, const struct wire_vq_reply *m);
int wire_get_vq_reply(const void *buf, size_t len, struct wire_vq_reply *m);
int wire_put_node(void *buf, size_t cap, const struct wire_node *m);
int wire_get_node(const void *buf, size_t len, struct wire_node *m);
int wire_put_placement(void *buf, size_t cap, const struct wire_placement *m);
int wire_get_placement(const void *buf, size_t len, struct wire_placement *m);
int wire_put_hint_q(void *buf, size_t cap, const struct wire_hint_q *m);
int wire_get_hint_q(const void *buf, size_t len, struct wire_hint_q *m);
int wire_put_hint_reply(void *buf, size_t cap, const struct wire_hint_reply *m);
int wire_get_hint_reply(const void *buf, size_t len, struct wire_hint_reply *m);
int wire_put_hint(void *buf, size_t cap, const struct wire_hint *m);
int wire_get_hint(const void *buf, size_t len, struct wire_hint *m);
int wire_put_hint_drop(void *buf, size_t cap, const struct wire_hint_drop *m);
int wire_get_hint_drop(const void *buf, size_t len, struct wire_hint_drop *m);

/* n u64s (a VERSIONS answer's block versions) to and from little-endian:
 * n * 8 bytes or -ENOBUFS / -EPROTO as above.  put may work in place
 * (buf == v). */
int wire_put_u64s(void *buf, size_t cap, const uint64_t *v, size_t n);
int wire_get_u64s(const void *buf, size_t len, uint64_t *v, size_t n);

/* The frame checksum, the one place it is computed: XXH3-64 over the
 * payload, given in iovcnt pieces (none: the checksum of zero bytes). */
uint64_t wire_csum_iov(const struct iovec *iov, int iovcnt);

/* Checks a payload of h->len bytes at payload against h->csum: 0 or
 * -EBADMSG. */
int wire_check_csum(const struct wire_hdr *h, const void *payload);

/* Fills a (host-order) header for a request (status 0) or a response
 * (op | RESPONSE): len and csum from the payload's pieces.  -E2BIG when
 * they add up to more than WIRE_MAX_PAYLOAD. */
int wire_frame_hdr(struct wire_hdr *h, uint16_t version, uint16_t op,
		  uint64_t req_id, uint32_t status, const struct iovec *iov,
		  int iovcnt);

/* Checks a received (host-order) header: magic, opcode, status range and
 * len <= max_payload.  -EPROTO or -E2BIG. */
int wire_check_hdr(const struct wire_hdr *h, uint32_t max_payload);

/* ---- checks (wire.c); all return 0 or a negative errno */

/* Validates an object name: 1..WIRE_MAX_NAME bytes of [A-Za-z0-9._-],
 * not starting with '.'.  0 or -EINVAL. */
int wire_check_name(const char *name, size_t len);

/* Parses a wire_name/wire_create payload; *name points into the payload
 * (not NUL-terminated).  0, -EPROTO (sizes) or -EINVAL (name). */
int wire_parse_name(const void *payload, uint32_t len, const char **name,
		    uint16_t *name_len);
int wire_parse_create(const void *payload, uint32_t len,
		      struct wire_create *out, const char **name);

/* Status ↔ errno. */
int wire_status_to_errno(uint32_t status);
uint32_t wire_errno_to_status(int neg_errno);
const char *wire_op_name(uint16_t op);
const char *wire_status_name(uint32_t status);

/* HMAC-SHA256 of the AUTH exchange (auth.c).  role is "ufo1 client" or
 * "ufo1 server"; first/second are the two nonces in that role's order. */
void wire_auth_mac(const uint8_t *secret, size_t secret_len, const char *role,
		   const uint8_t first[WIRE_NONCE],
		   const uint8_t second[WIRE_NONCE], uint8_t out[WIRE_MAC]);
bool wire_mac_equal(const uint8_t a[WIRE_MAC], const uint8_t b[WIRE_MAC]);
void wire_random(void *buf, size_t len);
/* Reads a shared secret from a file: trailing whitespace stripped, at
 * least WIRE_MIN_SECRET bytes, the file not readable by others (a warning
 * otherwise is the caller's business: *loose set).  Returns the length or a
 * negative errno (-EINVAL: too short/long). */
int wire_read_secret(const char *path, uint8_t *buf, size_t cap, bool *loose);
int wire_crypto_init(void);

#endif /* UFO_WIRE_H */
