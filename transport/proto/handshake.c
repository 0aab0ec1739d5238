/* SPDX-License-Identifier: MIT */
/* The HELLO + AUTH handshake, both halves, without I/O (handshake.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "handshake.h"

/* Role strings of the AUTH MACs: each side proves the secret over both
 * nonces, its own role's string first, so a proof cannot be reflected. */
#define ROLE_CLIENT "ufo1 client"
#define ROLE_SERVER "ufo1 server"

static void out_frame(const struct wire_hs *hs, struct wire_hs_out *out,
		      uint16_t op, uint64_t req_id, uint32_t status)
{
	out->version = hs->version;
	out->op = op;
	out->req_id = req_id;
	out->status = status;
	out->len = 0;
}

/* The server's error answer to h, with a message; the machine fails.
 * Returns err. */
static int fail(struct wire_hs *hs, const struct wire_hdr *h,
		struct wire_hs_out *out, int err, uint32_t status,
		const char *fmt, ...)
{
	va_list ap;
	int n;
	uint16_t op = h->op & (uint16_t)~WIRE_RESPONSE;

	/* Answers carry the request's op when it is one (as server/conn.c
	 * frames them), else HELLO's. */
	if (op < WIRE_HELLO || op > WIRE_OP_MAX)
		op = WIRE_HELLO;
	hs->state = WIRE_HS_FAILED;
	out_frame(hs, out, op | WIRE_RESPONSE, h->req_id, status);
	va_start(ap, fmt);
	n = vsnprintf((char *)out->payload, sizeof(out->payload), fmt, ap);
	va_end(ap);
	/* vsnprintf keeps a byte for its NUL, which is not sent. */
	out->len = n < 0 ? 0 : (uint32_t)n < sizeof(out->payload)
				       ? (uint32_t)n : sizeof(out->payload) - 1;
	return err;
}

static void put_hello(struct wire_hs *hs, struct wire_hs_out *out,
		      uint16_t min, uint16_t max)
{
	struct wire_hello m = { .min_version = min, .max_version = max };

	memcpy(m.nonce, hs->nonce, WIRE_NONCE);
	out->len = (uint32_t)wire_put_hello(out->payload, sizeof(out->payload),
					    &m);
}

static void put_mac(const struct wire_hs *hs, struct wire_hs_out *out,
		    const char *role)
{
	struct wire_mac m;

	/* Our role's proof: the verifier's nonce first. */
	wire_auth_mac(hs->secret, hs->secret_len, role, hs->peer_nonce,
		      hs->nonce, m.mac);
	out->len = (uint32_t)wire_put_mac(out->payload, sizeof(out->payload),
					  &m);
}

/* Whether a MAC over the nonces with the peer's role string is mac. */
static bool peer_proved(const struct wire_hs *hs, const char *peer_role,
			const struct wire_mac *m)
{
	uint8_t want[WIRE_MAC];

	wire_auth_mac(hs->secret, hs->secret_len, peer_role, hs->nonce,
		      hs->peer_nonce, want);
	return wire_mac_equal(want, m->mac);
}

static bool in_progress(const struct wire_hs *hs)
{
	return hs->state == WIRE_HS_HELLO || hs->state == WIRE_HS_AUTH;
}

void wire_hs_start(struct wire_hs *hs, enum wire_hs_role role,
		   const uint8_t *secret, size_t secret_len,
		   struct wire_hs_out *out)
{
	*hs = (struct wire_hs){ .role = role, .state = WIRE_HS_HELLO,
				.secret = secret, .secret_len = secret_len };
	wire_random(hs->nonce, sizeof(hs->nonce));
	out_frame(hs, out, 0, 0, 0);
	if (role == WIRE_HS_CLIENT) {
		out_frame(hs, out, WIRE_HELLO, 1, 0);
		put_hello(hs, out, WIRE_VERSION_MIN, WIRE_VERSION_MAX);
	}
}

/* ---- server */

int wire_hs_check_hdr(struct wire_hs *hs, const struct wire_hdr *h,
		      struct wire_hs_out *out)
{
	bool hello = hs->state == WIRE_HS_HELLO;
	uint16_t want_version = hello ? 0 : hs->version;

	out_frame(hs, out, 0, 0, 0);
	if (hs->role != WIRE_HS_SERVER || !in_progress(hs))
		return -EINVAL;
	if (h->op & WIRE_RESPONSE || h->status)
		return fail(hs, h, out, -EPROTO, WIRE_EPROTO,
			    "a request carries a status or the response bit");
	if (h->op != (hello ? WIRE_HELLO : WIRE_AUTH))
		return fail(hs, h, out, -EPERM, WIRE_ENOTAUTH,
			    hello ? "HELLO first, then AUTH" : "AUTH expected");
	if (h->len > WIRE_MAX_PREAUTH)
		return fail(hs, h, out, -E2BIG, WIRE_E2BIG,
			    "frame of %u bytes, limit %u", h->len,
			    WIRE_MAX_PREAUTH);
	if (h->version != want_version)
		return fail(hs, h, out, -EPROTO, WIRE_EPROTO,
			    "header version %u, expected %u", h->version,
			    want_version);
	return 0;
}

/* Picks the highest version both sides speak and answers with it. */
static int server_hello(struct wire_hs *hs, const struct wire_hdr *h,
			const void *payload, struct wire_hs_out *out)
{
	struct wire_hello in;
	uint16_t hi;

	if (h->len != sizeof(in) || wire_get_hello(payload, h->len, &in) < 0)
		return fail(hs, h, out, -EPROTO, WIRE_EPROTO,
			    "HELLO is 40 bytes");
	memcpy(hs->peer_nonce, in.nonce, WIRE_NONCE);
	_Static_assert(WIRE_VERSION_MIN == 1 && WIRE_VERSION_MAX == 3,
		       "the EVERSION message below names the versions");
	hi = in.max_version > WIRE_VERSION_MAX ? WIRE_VERSION_MAX
					       : in.max_version;
	if (in.min_version > hi || hi < WIRE_VERSION_MIN)
		return fail(hs, h, out, -EPROTONOSUPPORT, WIRE_EVERSION,
			    "this server speaks versions 1..3");
	hs->version = hi;
	hs->state = WIRE_HS_AUTH;
	out_frame(hs, out, WIRE_HELLO | WIRE_RESPONSE, h->req_id, WIRE_OK);
	put_hello(hs, out, hi, hi);
	return 0;
}

/* The client proves it holds the secret over both nonces; we answer with
 * our own proof so the client can check us as well. */
static int server_auth(struct wire_hs *hs, const struct wire_hdr *h,
		       const void *payload, struct wire_hs_out *out)
{
	struct wire_mac in;

	if (h->len != sizeof(in) || wire_get_mac(payload, h->len, &in) < 0)
		return fail(hs, h, out, -EPROTO, WIRE_EPROTO,
			    "AUTH is 32 bytes");
	if (!peer_proved(hs, ROLE_CLIENT, &in))
		return fail(hs, h, out, -EACCES, WIRE_EAUTH, "wrong secret");
	hs->state = WIRE_HS_DONE;
	out_frame(hs, out, WIRE_AUTH | WIRE_RESPONSE, h->req_id, WIRE_OK);
	put_mac(hs, out, ROLE_SERVER);
	return 1;
}

static int server_step(struct wire_hs *hs, const struct wire_hdr *h,
		       const void *payload, struct wire_hs_out *out)
{
	int rc = wire_hs_check_hdr(hs, h, out);

	if (rc)
		return rc;
	if (wire_check_csum(h, payload))
		return fail(hs, h, out, -EBADMSG, WIRE_ECSUM,
			    "payload checksum mismatch");
	return hs->state == WIRE_HS_HELLO ? server_hello(hs, h, payload, out)
					  : server_auth(hs, h, payload, out);
}

/* ---- client */

/* An answer to the request of this state, or why not.  Anything but the
 * answer the client waits for (op, checksum, size) is -EPROTO. */
static int client_answer(const struct wire_hdr *h, const void *payload,
			 uint16_t op, uint32_t len)
{
	if (h->op != (op | WIRE_RESPONSE) || wire_check_csum(h, payload))
		return -EPROTO;
	if (h->status)
		return wire_status_to_errno(h->status);
	return h->len == len ? 0 : -EPROTO;
}

static int client_hello(struct wire_hs *hs, const struct wire_hdr *h,
			const void *payload, struct wire_hs_out *out)
{
	struct wire_hello srv;
	int rc = client_answer(h, payload, WIRE_HELLO, sizeof(srv));

	if (rc || (rc = wire_get_hello(payload, h->len, &srv)) < 0)
		return rc;
	if (srv.min_version < WIRE_VERSION_MIN ||
	    srv.min_version > WIRE_VERSION_MAX)
		return -EPROTONOSUPPORT;
	memcpy(hs->peer_nonce, srv.nonce, WIRE_NONCE);
	hs->version = srv.min_version;
	hs->state = WIRE_HS_AUTH;
	out_frame(hs, out, WIRE_AUTH, 2, 0);
	put_mac(hs, out, ROLE_CLIENT);
	return 0;
}

/* Mutual: a server that does not hold the secret cannot answer. */
static int client_auth(struct wire_hs *hs, const struct wire_hdr *h,
		       const void *payload, struct wire_hs_out *out)
{
	struct wire_mac proof;
	int rc = client_answer(h, payload, WIRE_AUTH, sizeof(proof));

	if (rc || (rc = wire_get_mac(payload, h->len, &proof)) < 0)
		return rc;
	if (!peer_proved(hs, ROLE_SERVER, &proof))
		return -EACCES;
	hs->state = WIRE_HS_DONE;
	return 1;
}

static int client_step(struct wire_hs *hs, const struct wire_hdr *h,
		       const void *payload, struct wire_hs_out *out)
{
	int rc = hs->state == WIRE_HS_HELLO ? client_hello(hs, h, payload, out)
					    : client_auth(hs, h, payload, out);

	if (rc < 0)
		hs->state = WIRE_HS_FAILED;
	return rc;
}

int wire_hs_step(struct wire_hs *hs, const struct wire_hdr *h,
		 const void *payload, struct wire_hs_out *out)
{
	out_frame(hs, out, 0, 0, 0);
	if (!in_progress(hs))
		return -EINVAL;
	return hs->role == WIRE_HS_SERVER ? server_step(hs, h, payload, out)
					  : client_step(hs, h, payload, out);
}
