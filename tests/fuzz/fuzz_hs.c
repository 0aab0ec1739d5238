/* SPDX-License-Identifier: MIT */
/*
 * The handshake state machine (transport/proto/handshake.c), both roles,
 * fed the input as a sequence of frames from the peer.
 *
 * Input: records of [flags][len, 2 bytes LE][len bytes: header + payload].
 * The first byte of the input picks the role (even: server, odd: client).
 * Record flags: FIX_LEN sets the header's len to the bytes there, FIX_CSUM
 * the checksum, FIX_MAC replaces an AUTH (answer) payload with the proof
 * the machine expects (the input cannot know the random nonce), so the
 * fuzzer also reaches the states after authentication.
 *
 * Oracles besides the sanitizers: the machine is DONE only after the peer
 * proved the secret (the payload it accepted is the expected MAC) and
 * with a version both speak; a step that fails leaves it FAILED for good,
 * and a failing server always has an error answer (status, response bit,
 * a bounded message) to send; a step that goes on produces the frame the
 * protocol says.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handshake.h"

#define SECRET "fuzzing secret, at least 16 bytes"
#define FIX_LEN 1
#define FIX_CSUM 2
#define FIX_MAC 4

static void found(const char *what)
{
	fprintf(stderr, "handshake: %s\n", what);
	abort();
}

/* The MAC the machine's peer must send in role `role` ("ufo1 client" for
 * what a server checks, "ufo1 server" for a client). */
static void expected_mac(const struct wire_hs *hs, uint8_t out[WIRE_MAC])
{
	wire_auth_mac((const uint8_t *)SECRET, strlen(SECRET),
		      hs->role == WIRE_HS_SERVER ? "ufo1 client" : "ufo1 server",
		      hs->nonce, hs->peer_nonce, out);
}

static void check_out(const struct wire_hs *hs, enum wire_hs_state before,
		      int rc, const struct wire_hs_out *out,
		      const uint8_t *payload, uint32_t len)
{
	uint8_t want[WIRE_MAC];

	if (out->len > WIRE_HS_OUT_MAX)
		found("answer over its buffer");
	if (before == WIRE_HS_FAILED || before == WIRE_HS_DONE) {
		if (rc != -EINVAL || hs->state != before || out->op)
			found("went on after the end");
		return;
	}
	if (rc < 0) {
		if (hs->state != WIRE_HS_FAILED)
			found("failed but not FAILED");
		if (hs->role == WIRE_HS_SERVER &&
		    (!out->status || !(out->op & WIRE_RESPONSE)))
			found("a server failed without an error answer");
		return;
	}
	if (hs->version < WIRE_VERSION_MIN || hs->version > WIRE_VERSION_MAX)
		found("agreed on a version nobody speaks");
	if (rc == 1) {
		expected_mac(hs, want);
		if (hs->state != WIRE_HS_DONE || before != WIRE_HS_AUTH ||
		    len != WIRE_MAC || memcmp(payload, want, WIRE_MAC))
			found("authenticated a peer without the secret");
	} else if (rc != 0 || hs->state != WIRE_HS_AUTH ||
		   out->len != (hs->role == WIRE_HS_SERVER ? 40u : 32u)) {
		found("went on without the next frame");
	}
	if (out->status)
		found("an answer that goes on carries an error");
}

/* One record: returns the bytes it used, 0 at the end of the input. */
static size_t feed(struct wire_hs *hs, const uint8_t *in, size_t avail)
{
	struct wire_hs_out out;
	enum wire_hs_state before = hs->state;
	struct wire_hdr h = { 0 };
	uint8_t flags, *payload;
	uint32_t len, have;
	int rc;

	if (avail < 3)
		return 0;
	flags = in[0];
	len = (uint32_t)in[1] | (uint32_t)in[2] << 8;
	if (len > avail - 3)
		len = (uint32_t)(avail - 3);
	wire_get_hdr(in + 3, len, &h); /* short: zeros after the end */
	have = len > sizeof(h) ? len - (uint32_t)sizeof(h) : 0;
	if (flags & FIX_LEN || h.len > have)
		h.len = have;
	payload = malloc(h.len ? h.len : 1); /* exact: ASan sees overreads */
	if (!payload)
		return 0;
	memcpy(payload, in + 3 + sizeof(h) * (len >= sizeof(h)), h.len);
	if (flags & FIX_MAC && h.len == WIRE_MAC)
		expected_mac(hs, payload);
	if (flags & FIX_CSUM)
		h.csum = wire_csum_iov(&(struct iovec){ payload, h.len }, 1);
	/* The server loop's early check, before the payload is read. */
	rc = flags & 8 ? wire_hs_check_hdr(hs, &h, &out) : 0;
	if (rc && hs->state != (hs->role == WIRE_HS_SERVER &&
				before != WIRE_HS_DONE ? WIRE_HS_FAILED : before))
		found("an early check that failed left the machine going");
	if (!rc) {
		rc = wire_hs_step(hs, &h, payload, &out);
		check_out(hs, before, rc, &out, payload, h.len);
	}
	free(payload);
	return 3 + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_hs hs;
	struct wire_hs_out out;
	size_t used;

	if (!size)
		return 0;
	wire_hs_start(&hs, data[0] & 1 ? WIRE_HS_CLIENT : WIRE_HS_SERVER,
		      (const uint8_t *)SECRET, strlen(SECRET), &out);
	if ((hs.role == WIRE_HS_CLIENT) != (out.op == WIRE_HELLO))
		found("a client that does not start with HELLO");
	data++;
	size--;
	while ((used = feed(&hs, data, size))) {
		data += used;
		size -= used;
	}
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (wire_crypto_init())
		abort();
	return 0;
}
