/* SPDX-License-Identifier: MIT */
/* Frames over a transport, and the client side of the handshake. */
#include <endian.h>
#include <errno.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "transport.h"

int frame_send(struct ufo_conn *c, uint16_t version, uint16_t op,
	       uint64_t req_id, uint32_t status, const void *p1, size_t l1,
	       const void *p2, size_t l2, int timeout_ms)
{
	struct wire_hdr h;
	XXH3_state_t st;
	struct iovec iov[3];
	int n = 1;

	if (l1 + l2 > WIRE_MAX_PAYLOAD)
		return -E2BIG;
	XXH3_64bits_reset(&st);
	if (l1)
		XXH3_64bits_update(&st, p1, l1);
	if (l2)
		XXH3_64bits_update(&st, p2, l2);
	h.magic = WIRE_MAGIC;
	h.version = version;
	h.op = op;
	h.req_id = req_id;
	h.status = status;
	h.len = (uint32_t)(l1 + l2);
	h.csum = XXH3_64bits_digest(&st);
	wire_hdr_to_le(&h);
	iov[0] = (struct iovec){ &h, sizeof(h) };
	if (l1)
		iov[n++] = (struct iovec){ (void *)p1, l1 };
	if (l2)
		iov[n++] = (struct iovec){ (void *)p2, l2 };
	return conn_send(c, iov, n, timeout_ms);
}

int frame_recv_hdr(struct ufo_conn *c, struct wire_hdr *h,
		   uint32_t max_payload, int timeout_ms)
{
	int rc = conn_recv(c, h, sizeof(*h), timeout_ms);

	if (rc)
		return rc;
	wire_hdr_from_le(h);
	return wire_check_hdr(h, max_payload);
}

/* Receives the reply to a handshake step into buf (exactly len bytes on
 * success).  An error reply becomes its errno. */
static int handshake_reply(struct ufo_conn *c, uint16_t op, void *buf,
			   size_t len, int timeout_ms)
{
	uint8_t payload[WIRE_MAX_PREAUTH + WIRE_MAX_ERRMSG];
	struct wire_hdr h;
	int rc = frame_recv_hdr(c, &h, sizeof(payload), timeout_ms);

	if (rc)
		return rc;
	if ((rc = conn_recv(c, payload, h.len, timeout_ms)))
		return rc;
	if (h.op != (op | WIRE_RESPONSE) || wire_check_csum(&h, payload))
		return -EPROTO;
	if (h.status)
		return wire_status_to_errno(h.status);
	if (h.len != len)
		return -EPROTO;
	memcpy(buf, payload, len);
	return 0;
}

int client_handshake(struct ufo_conn *c, const uint8_t *secret,
		     size_t secret_len, int timeout_ms, uint16_t *version)
{
	struct wire_hello hello = { .min_version = htole16(WIRE_VERSION_MIN),
				    .max_version = htole16(WIRE_VERSION_MAX) };
	struct wire_hello srv;
	struct wire_mac mine, proof;
	uint8_t want[WIRE_MAC];
	uint16_t v;
	int rc;

	wire_random(hello.nonce, sizeof(hello.nonce));
	rc = frame_send(c, 0, WIRE_HELLO, 1, 0, &hello, sizeof(hello), NULL, 0,
			timeout_ms);
	if (!rc)
		rc = handshake_reply(c, WIRE_HELLO, &srv, sizeof(srv), timeout_ms);
	if (rc)
		return rc;
	v = le16toh(srv.min_version);
	if (v < WIRE_VERSION_MIN || v > WIRE_VERSION_MAX)
		return -EPROTONOSUPPORT;
	wire_auth_mac(secret, secret_len, "ufo1 client", srv.nonce,
		      hello.nonce, mine.mac);
	rc = frame_send(c, v, WIRE_AUTH, 2, 0, &mine, sizeof(mine), NULL, 0,
			timeout_ms);
	if (!rc)
		rc = handshake_reply(c, WIRE_AUTH, &proof, sizeof(proof),
				     timeout_ms);
	if (rc)
		return rc;
	/* Mutual: a server that does not hold the secret cannot answer. */
	wire_auth_mac(secret, secret_len, "ufo1 server", hello.nonce,
		      srv.nonce, want);
	if (!wire_mac_equal(want, proof.mac))
		return -EACCES;
	*version = v;
	return 0;
}
