/* SPDX-License-Identifier: MIT */
/*
 * The loop's side of a connection: receiving frames, checking them, the
 * HELLO/AUTH handshake, and handing requests to the workers.
 *
 * What closes a connection: anything wrong with a header (the length may be
 * garbage, so framing is lost), a frame over the size limit (we will not
 * read, or skip, gigabytes), and any error before authentication.  After
 * authentication, a bad payload (checksum, sizes, names, ranges) is
 * answered with an error and the connection goes on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"

enum frame_rc { FRAME_MORE, FRAME_READY, FRAME_CLOSE };

void session_start(struct conn *c)
{
	struct wire_hs_out none;

	wire_hs_start(&c->hs, WIRE_HS_SERVER, c->srv->secret,
		      c->srv->secret_len, &none);
	c->version = 0;
}

static bool authenticated(const struct conn *c)
{
	return c->hs.state == WIRE_HS_DONE;
}

static void fail_close(struct conn *c, const struct wire_hdr *h,
		       uint32_t status, const char *msg)
{
	conn_error(c, h, status, "%s", msg);
	conn_close_soon(c);
}

/* Receives up to len - *got bytes at buf + *got.  1: complete, 0: the
 * socket has no more now, -1: closed by the peer or failed. */
static int recv_part(struct conn *c, void *buf, size_t len, size_t *got)
{
	while (*got < len) {
		ssize_t n = conn_read(c, (char *)buf + *got, len - *got);

		if (n > 0) {
			*got += (size_t)n;
			continue;
		}
		if (n == -EAGAIN)
			return 0;
		if (n != -ECONNRESET || *got || c->payload_got || c->hdr_got)
			log_debug("fd %d: connection ended mid-frame or failed: %s",
				  c->fd, strerror((int)-n));
		return -1;
	}
	return 1;
}

static uint32_t max_payload(const struct conn *c)
{
	return authenticated(c) ? WIRE_MAX_PAYLOAD : WIRE_MAX_PREAUTH;
}

/* Sends the handshake's answer (an error's text too) with its version;
 * a machine already over (-EINVAL) has none: the connection is closing. */
static void send_hs_out(struct conn *c, const struct wire_hs_out *out)
{
	if (!out->op)
		return;
	c->version = out->version;
	if (out->status)
		conn_error(c, &c->hdr, out->status, "%.*s", (int)out->len,
			   (const char *)out->payload);
	else
		conn_answer_copy(c, &c->hdr, out->payload, out->len);
}

/* 0 when the header can be trusted; otherwise answered and closing. */
static int check_hdr(struct conn *c, const struct wire_hdr *h)
{
	struct wire_hs_out out;
	int rc = wire_check_hdr(h, max_payload(c));

	if (rc == -EPROTO || h->op & WIRE_RESPONSE || h->status) {
		fail_close(c, h, WIRE_EPROTO,
			   h->magic != WIRE_MAGIC ? "bad magic"
			   : h->status || h->op & WIRE_RESPONSE
				   ? "a request carries a status or the response bit"
				   : "unknown op");
		return -EPROTO;
	}
	if (!authenticated(c)) {
		int err = wire_hs_check_hdr(&c->hs, h, &out);

		if (err) {
			send_hs_out(c, &out);
			conn_close_soon(c);
			return err;
		}
	}
	if (rc == -E2BIG) {
		conn_error(c, h, WIRE_E2BIG, "frame of %u bytes, limit %u",
			   h->len, max_payload(c));
		conn_close_soon(c);
		return rc;
	}
	if (h->version != c->version) {
		conn_error(c, h, WIRE_EPROTO, "header version %u, expected %u",
			   h->version, c->version);
		conn_close_soon(c);
		return -EPROTO;
	}
	return 0;
}

static enum frame_rc read_hdr(struct conn *c)
{
	int rc = recv_part(c, c->hdr_raw, sizeof(c->hdr_raw), &c->hdr_got);

	if (rc <= 0)
		return rc ? FRAME_CLOSE : FRAME_MORE;
	wire_get_hdr(c->hdr_raw, sizeof(c->hdr_raw), &c->hdr);
	if (check_hdr(c, &c->hdr))
		return FRAME_CLOSE;
	c->payload = malloc(c->hdr.len ? c->hdr.len : 1);
	if (!c->payload) {
		fail_close(c, &c->hdr, WIRE_EIO, "out of memory");
		return FRAME_CLOSE;
	}
	c->payload_got = 0;
	return FRAME_READY;
}

/* FRAME_READY once c->hdr and c->payload hold a whole frame. */
static enum frame_rc read_frame(struct conn *c)
{
	int rc;

	if (c->hdr_got < sizeof(c->hdr_raw)) {
		enum frame_rc f = read_hdr(c);
		if (f != FRAME_READY)
			return f;
	}
	rc = recv_part(c, c->payload, c->hdr.len, &c->payload_got);
	if (rc <= 0)
		return rc ? FRAME_CLOSE : FRAME_MORE;
	return FRAME_READY;
}

/* A HELLO or AUTH, checksum and all, goes to the handshake (proto/
 * handshake.c); any failure there is answered and closes. */
static void on_handshake(struct conn *c, const uint8_t *payload)
{
	struct wire_hs_out out;
	int rc = wire_hs_step(&c->hs, &c->hdr, payload, &out);

	if (rc == -EACCES)
		log_warn("fd %d: authentication failed", c->fd);
	else if (rc == 1)
		log_debug("fd %d: authenticated", c->fd);
	send_hs_out(c, &out);
	if (rc < 0)
		conn_close_soon(c);
}

/* The data a request pins while in flight: what it brings, or for a READ
 * what its answer will carry (bounded here; the handler checks the rest). */
static size_t request_cost(const struct wire_hdr *h, const uint8_t *payload)
{
	struct wire_io io;

	if (h->op != WIRE_READ || h->len != sizeof(io))
		return h->len;
	wire_get_io(payload, h->len, &io);
	return io.len < WIRE_MAX_IO ? io.len : WIRE_MAX_IO;
}

/* Takes payload. */
static void dispatch(struct conn *c, uint8_t *payload)
{
	struct request *r = request_new(c, &c->hdr, payload);

	if (!r) {
		free(payload);
		fail_close(c, &c->hdr, WIRE_EIO, "out of memory");
		return;
	}
	request_start(r, request_cost(&c->hdr, payload));
	/* A small cached READ is answered right here: handing it to a worker
	 * and back costs a thread wakeup, more than the read itself. */
	if (c->hdr.op == WIRE_SYNC)
		request_after_writes(r);
	else if (!c->srv->handlers->run_inline ||
		 !c->srv->handlers->run_inline(c->srv, r))
		queue_push(&c->srv->work, r);
}

/* Takes payload. */
static void on_request(struct conn *c, uint8_t *payload)
{
	if (c->hdr.op != WIRE_HELLO && c->hdr.op != WIRE_AUTH &&
	    c->hdr.op != WIRE_PING) {
		dispatch(c, payload);
		return;
	}
	if (c->hdr.op != WIRE_PING)
		conn_error(c, &c->hdr, WIRE_EPROTO, "already authenticated");
	else if (c->hdr.len)
		conn_error(c, &c->hdr, WIRE_EPROTO, "PING has no payload");
	else
		conn_answer(c, &c->hdr, WIRE_OK, NULL);
	free(payload);
}

/* A whole frame is in c->hdr and c->payload; the op fits the phase
 * (check_hdr). */
static void on_frame(struct conn *c)
{
	uint8_t *payload = c->payload;

	c->payload = NULL;
	c->hdr_got = c->payload_got = 0;
	if (c->refused) { /* a HELLO (check_hdr): answered, nothing unread */
		conn_error(c, &c->hdr, WIRE_EBUSY, "over %u connections",
			   c->srv->cfg.max_connections);
		conn_close_soon(c);
	} else if (!authenticated(c)) {
		on_handshake(c, payload);
	} else if (wire_check_csum(&c->hdr, payload)) {
		conn_error(c, &c->hdr, WIRE_ECSUM, "payload checksum mismatch");
	} else {
		on_request(c, payload);
		return;
	}
	free(payload);
}

void session_readable(struct conn *c)
{
	for (int i = 0; conn_may_read(c); i++) {
		enum frame_rc rc;

		/* Fairness: other connections get their turn.  A socket
		 * stays readable for epoll; bytes a buffering type holds do
		 * not, so such a connection is queued to be read again. */
		if (i == CONN_FRAMES_PER_WAKE) {
			if (c->t->ops->buffers) {
				pthread_mutex_lock(&c->lock);
				loop_read_later(c);
				pthread_mutex_unlock(&c->lock);
			}
			return;
		}
		rc = read_frame(c);
		if (rc == FRAME_MORE)
			return;
		if (rc == FRAME_CLOSE) {
			conn_close_soon(c);
			return;
		}
		on_frame(c);
	}
}

/* The request whose header is in c->hdr gets ESHUTDOWN; its payload,
 * whole or not, is dropped. */
static void refuse_stopping(struct conn *c)
{
	free(c->payload);
	c->payload = NULL;
	c->hdr_got = c->payload_got = 0;
	conn_error(c, &c->hdr, WIRE_ESHUTDOWN, "server shutting down");
}

/*
 * SIGTERM: every request the peer already sent (what the connection holds
 * now, up to SESSION_REFUSE_MAX frames) is answered ESHUTDOWN rather than
 * lost with the connection, so a client retries elsewhere at once instead
 * of waiting out its timeout; a frame whose header arrived but not all its
 * payload is answered too.  Requests already dispatched are answered as
 * usual (WRITEs once durable).  Before authentication nothing is answered.
 */
void session_refuse_rest(struct conn *c)
{
	if (!authenticated(c))
		return;
	for (int i = 0; i < SESSION_REFUSE_MAX; i++) {
		enum frame_rc rc = read_frame(c);

		if (rc == FRAME_CLOSE)
			return;
		if (rc == FRAME_MORE) {
			if (c->payload) /* the header is whole and checked */
				refuse_stopping(c);
			return;
		}
		refuse_stopping(c);
	}
}
