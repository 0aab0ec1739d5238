/* SPDX-License-Identifier: MIT */
/*
 * Both halves of the HELLO + AUTH handshake as one state machine that does
 * no I/O: the caller feeds it each frame it receives and sends each frame
 * it produces, so the blocking client (frame.c) and the server's
 * non-blocking event loop (server/session.c) run the same code.
 *
 *   client: start → HELLO request; HELLO answer → AUTH request;
 *           AUTH answer (the server's proof) → done.
 *   server: HELLO → HELLO answer (version, nonce); AUTH → AUTH answer
 *           (our proof) → done.
 *
 * A step that fails leaves the machine FAILED.  On the server, a failure
 * still produces a frame: the error answer to send before closing.
 */
#ifndef UFO_HANDSHAKE_H
#define UFO_HANDSHAKE_H

#include "wire.h"

enum wire_hs_role { WIRE_HS_CLIENT, WIRE_HS_SERVER };

enum wire_hs_state {
	WIRE_HS_HELLO,  /* server: waits for HELLO; client: waits for its answer */
	WIRE_HS_AUTH,   /* server: waits for AUTH; client: waits for its answer */
	WIRE_HS_DONE,   /* both proved the secret; version agreed */
	WIRE_HS_FAILED,
};

struct wire_hs {
	enum wire_hs_role role;
	enum wire_hs_state state;
	uint16_t version; /* 0 until HELLO is answered, then the agreed one */
	const uint8_t *secret; /* borrowed: outlives the handshake */
	size_t secret_len;
	uint8_t nonce[WIRE_NONCE], peer_nonce[WIRE_NONCE];
};

/* A frame for the caller to send; op 0: nothing.  A server's answer goes
 * to the request just fed (its req_id); status and, for an error, the
 * message text in payload. */
#define WIRE_HS_OUT_MAX WIRE_MAX_ERRMSG
struct wire_hs_out {
	uint16_t version;
	uint16_t op;
	uint64_t req_id;
	uint32_t status;
	uint32_t len;
	uint8_t payload[WIRE_HS_OUT_MAX];
};

/* Starts a handshake with a fresh nonce.  A client gets its HELLO in *out;
 * a server gets nothing (op 0). */
void wire_hs_start(struct wire_hs *hs, enum wire_hs_role role,
		   const uint8_t *secret, size_t secret_len,
		   struct wire_hs_out *out);

/* The server's checks of a request header before its payload is read:
 * the op the state waits for (-EPERM, ENOTAUTH), the pre-authentication
 * size limit (-E2BIG) and the header version (-EPROTO).  On failure *out
 * is the error answer and the machine is FAILED.  The checks that hold in
 * every state (magic, op range) are wire_check_hdr's and the caller's.
 * -EINVAL, and nothing changes, on a client or once DONE or FAILED. */
int wire_hs_check_hdr(struct wire_hs *hs, const struct wire_hdr *h,
		      struct wire_hs_out *out);

/* Feeds one received frame: a host-order header and its h->len payload
 * bytes.  Returns 0 when *out is the next frame to send and the handshake
 * goes on, 1 when it is done (a server still sends *out, its proof), or a
 * negative errno:
 *   -EBADMSG  checksum mismatch (the client: -EPROTO, as for any answer
 *             that is not the one it waits for)
 *   -EPROTO   wrong op, size or header version
 *   -EPROTONOSUPPORT no common version
 *   -EACCES   the peer does not hold the secret
 *   -EPERM, -E2BIG as wire_hs_check_hdr (the server)
 *   an error answer's errno (the client)
 *   -EINVAL   fed after DONE or FAILED (nothing changes, nothing to send)
 * Otherwise a server then sends *out (op set) and closes. */
int wire_hs_step(struct wire_hs *hs, const struct wire_hdr *h,
		 const void *payload, struct wire_hs_out *out);

#endif /* UFO_HANDSHAKE_H */
