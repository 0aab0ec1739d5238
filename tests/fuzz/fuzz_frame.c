/* SPDX-License-Identifier: MIT */
/*
 * The frame decoder: wire.c's header, checksum, name and CREATE checks on
 * arbitrary bytes, and frame.c's client side (frame_recv_hdr and the
 * client's handshake, which parses the server's HELLO and AUTH answers)
 * reading the input through an in-memory transport.
 *
 * Oracles besides the sanitizers: a name the parsers accept lies inside
 * the payload and is a valid file-name component (no '/', no NUL, not "."
 * or ".."); a header wire_check_hdr accepts has a known op, status and a
 * length within the limit it was given.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"

#define SECRET "fuzzing secret, at least 16 bytes"

/* ---- a transport whose peer is the input */

struct mem_conn {
	struct ufo_conn base;
	const uint8_t *data;
	size_t len, off;
};

static int mem_send(struct ufo_conn *c, struct iovec *iov, int n, int tmo)
{
	return 0; /* the client's frames go nowhere */
}

static int mem_recv(struct ufo_conn *c, void *buf, size_t len, int tmo)
{
	struct mem_conn *m = (struct mem_conn *)c;

	if (len > m->len - m->off)
		return -ECONNRESET;
	memcpy(buf, m->data + m->off, len);
	m->off += len;
	return 0;
}

static const struct ufo_transport_ops mem_ops = {
	.name = "mem", .send = mem_send, .recv = mem_recv,
};

static void check_name(const uint8_t *payload, size_t len, const char *name,
		       uint16_t name_len)
{
	const uint8_t *n = (const uint8_t *)name;

	if (n < payload || n + name_len > payload + len || !name_len ||
	    memchr(name, '/', name_len) || memchr(name, '\0', name_len) ||
	    (name_len == 1 && name[0] == '.') ||
	    (name_len == 2 && name[0] == '.' && name[1] == '.')) {
		fprintf(stderr, "accepted a bad name (%u bytes)\n", name_len);
		abort();
	}
}

static void parsers(const uint8_t *data, size_t size)
{
	uint32_t len = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
	struct wire_create cr;
	const char *name;
	uint16_t name_len;

	if (!wire_parse_name(data, len, &name, &name_len))
		check_name(data, size, name, name_len);
	if (!wire_parse_create(data, len, &cr, &name)) {
		check_name(data, size, name, cr.name_len);
		if (!cr.size || cr.size > WIRE_MAX_OBJECT_SIZE ||
		    cr.chunk_size % WIRE_MIN_CHUNK)
			abort();
	}
	if (!wire_check_name((const char *)data, size))
		check_name(data, size, (const char *)data, (uint16_t)size);
}

static void header(const uint8_t *data, size_t size)
{
	static const uint32_t limits[] = { WIRE_MAX_PREAUTH, WIRE_MAX_PAYLOAD };
	struct wire_hdr h;

	if (size < sizeof(h))
		return;
	if (wire_get_hdr(data, size, &h) != sizeof(h))
		abort();
	for (int i = 0; i < 2; i++) {
		if (wire_check_hdr(&h, limits[i]))
			continue;
		if ((h.op & ~WIRE_RESPONSE) > WIRE_OP_MAX ||
		    h.status > WIRE_STATUS_MAX || h.len > limits[i])
			abort();
	}
	if (h.len <= size - sizeof(h))
		wire_check_csum(&h, data + sizeof(h));
	if (!wire_op_name(h.op) || !wire_status_name(h.status))
		abort();
	if (wire_status_to_errno(h.status) > 0 ||
	    wire_errno_to_status(-(int)(h.req_id & 0xff)) > WIRE_STATUS_MAX)
		abort();
}

/* The client reading the input as the server's side of the handshake
 * (after a header it checks), and as a stream of frame headers. */
static void client(const uint8_t *data, size_t size)
{
	struct mem_conn m = { .base.ops = &mem_ops, .data = data, .len = size };
	struct wire_hdr h;
	uint16_t v;

	if (!client_handshake(&m.base, (const uint8_t *)SECRET, strlen(SECRET),
			      0, &v)) {
		fprintf(stderr, "handshake accepted a server without the secret\n");
		abort();
	}
	m.off = 0;
	while (frame_recv_hdr(&m.base, &h, WIRE_MAX_PAYLOAD, 0) != -ECONNRESET)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	header(data, size);
	parsers(data, size);
	if (size > sizeof(struct wire_hdr))
		parsers(data + sizeof(struct wire_hdr),
			size - sizeof(struct wire_hdr));
	client(data, size);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (wire_crypto_init())
		abort();
	return 0;
}
