/* SPDX-License-Identifier: MIT */
/*
 * The codec's decoders (transport/proto/codec.c) on arbitrary bytes.
 *
 * Oracles besides the sanitizers: a decoder reads a message exactly when
 * the input holds its size, else it answers -EPROTO; what it read encodes
 * back to the same bytes (no field is lost or invented); the u64 array
 * decoder refuses a count the input cannot hold, however large; a header
 * wire_check_hdr accepts has its fields in range.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "../codec_table.h"

#define MSG_MAX 64


static void found(const char *what, const char *name)
{
	fprintf(stderr, "%s: %s\n", name, what);
	abort();
}

/* The input exactly as long as it is, so ASan sees any read past it. */
static void one_message(const struct codec *k, const uint8_t *data,
			size_t size)
{
	uint8_t m[MSG_MAX], back[MSG_MAX];
	int rc = k->get(data, size, m);

	if (size < k->size) {
		if (rc != -EPROTO)
			found("read a message from too few bytes", k->name);
		return;
	}
	if (rc != (int)k->size)
		found("did not read a whole message", k->name);
	if (k->put(back, sizeof(back), m) != (int)k->size ||
	    memcmp(back, data, k->size))
		found("does not encode back to its input", k->name);
}

static void versions(const uint8_t *data, size_t size)
{
	uint64_t v[64];
	size_t n = size ? data[0] % 80 : 0; /* past what v and data hold */
	uint8_t back[64 * 8];
	int rc;

	if (n > 64)
		n = SIZE_MAX / 8 - n; /* a count from the network */
	rc = size ? wire_get_u64s(data + 1, size - 1, v, n) : 0;
	if (!size)
		return;
	if (n > (size - 1) / 8) {
		if (rc != -EPROTO)
			found("read more versions than are there", "u64s");
		return;
	}
	if (rc != (int)(n * 8) ||
	    wire_put_u64s(back, sizeof(back), v, n) != rc ||
	    memcmp(back, data + 1, n * 8))
		found("does not round-trip", "u64s");
}

static void header(const uint8_t *data, size_t size)
{
	struct wire_hdr h;

	if (wire_get_hdr(data, size, &h) < 0 ||
	    wire_check_hdr(&h, WIRE_MAX_PAYLOAD))
		return;
	if (h.magic != WIRE_MAGIC || !(h.op & ~WIRE_RESPONSE) ||
	    (h.op & ~WIRE_RESPONSE) > WIRE_OP_MAX ||
	    h.status > WIRE_STATUS_MAX || h.len > WIRE_MAX_PAYLOAD)
		found("accepted a header out of range", "hdr");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	for (size_t i = 0; i < NCODECS; i++)
		one_message(&codecs[i], copy, size);
	versions(copy, size);
	header(copy, size);
	free(copy);
	return 0;
}
