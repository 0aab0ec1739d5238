/* SPDX-License-Identifier: MIT */
/* Frames over a transport, and the blocking driver of the client's side of
 * the handshake (the machine itself is proto/handshake.c). */
#include <errno.h>
#include <string.h>

#include "transport.h"

int frame_send(struct ufo_conn *c, uint16_t version, uint16_t op,
	       uint64_t req_id, uint32_t status, const void *p1, size_t l1,
	       const void *p2, size_t l2, int timeout_ms)
{
	uint8_t raw[sizeof(struct wire_hdr)];
	struct iovec iov[3] = { { raw, sizeof(raw) }, { (void *)p1, l1 },
				{ (void *)p2, l2 } };
	struct wire_hdr h;
	int rc = wire_frame_hdr(&h, version, op, req_id, status, iov + 1, 2);

	if (rc)
		return rc;
	wire_put_hdr(raw, sizeof(raw), &h);
	/* Empty pieces are left out: a transport may not take them. */
	if (!l1)
		iov[1] = iov[2];
	return conn_send(c, iov, 1 + !!l1 + !!l2, timeout_ms);
}

int frame_recv_hdr(struct ufo_conn *c, struct wire_hdr *h,
		   uint32_t max_payload, int timeout_ms)
{
	uint8_t raw[sizeof(*h)];
	int rc = conn_recv(c, raw, sizeof(raw), timeout_ms);

	if (rc)
		return rc;
	wire_get_hdr(raw, sizeof(raw), h);
	return wire_check_hdr(h, max_payload);
}

/* The largest handshake answer a client reads: a HELLO or AUTH answer, or
 * an error with its message. */
#define HS_ANSWER_MAX (WIRE_MAX_PREAUTH + WIRE_MAX_ERRMSG)

int client_handshake(struct ufo_conn *c, const uint8_t *secret,
		     size_t secret_len, int timeout_ms, uint16_t *version)
{
	uint8_t payload[HS_ANSWER_MAX];
	struct wire_hs_out out;
	struct wire_hdr h;
	struct wire_hs hs;
	int rc = 0;

	wire_hs_start(&hs, WIRE_HS_CLIENT, secret, secret_len, &out);
	while (!rc) {
		rc = frame_send(c, out.version, out.op, out.req_id, 0,
				out.payload, out.len, NULL, 0, timeout_ms);
		if (!rc)
			rc = frame_recv_hdr(c, &h, sizeof(payload), timeout_ms);
		if (!rc)
			rc = conn_recv(c, payload, h.len, timeout_ms);
		if (!rc)
			rc = wire_hs_step(&hs, &h, payload, &out);
	}
	if (rc == 1)
		*version = hs.version;
	return rc == 1 ? 0 : rc;
}
