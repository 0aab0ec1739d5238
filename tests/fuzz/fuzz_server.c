/* SPDX-License-Identifier: MIT */
/*
 * ufo-server in-process, driven synchronously: the loop's session code
 * (session.c: framing, checks, HELLO/AUTH) reads a socketpair the harness
 * writes the input into, and the requests it dispatches are run by
 * handle_request and commit_run on this thread instead of the worker and
 * committer threads, against a store in a temporary directory under
 * $UFO_FUZZ_TMPDIR (scripts/fuzz.sh removes it afterwards: a crash skips
 * the cleanup), else /dev/shm when there is one (fsync is then cheap).
 *
 * Two targets from this file:
 *   fuzz_handshake  a connection starts unauthenticated (HELLO first);
 *   fuzz_request    it starts authenticated, so inputs reach the handlers.
 *
 * Input: one flags byte, then frames: a 32-byte header (little-endian, as
 * on the wire) and up to its len payload bytes.  A short tail is sent as
 * is (a truncated frame).  Flags:
 *   bit 0  keep the input's checksums (else the harness fixes each csum,
 *          so inputs get past the checksum to the parsers behind it);
 *   bit 1  replace an AUTH payload of 32 bytes by the right MAC for this
 *          connection's nonces (the only way an input can authenticate,
 *          since the server's nonce is random).
 *
 * Oracles besides the sanitizers: every byte the server sends is a
 * well-formed response frame (magic, response bit, status and length in
 * range, checksum right); once the peer has gone and the answers are
 * read, the connection is released (no request left in flight).
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "server.h"
#include "vstore.h"

#define SECRET "fuzzing secret, at least 16 bytes"
#define SEED_NAME "seed"
#define SEED_SIZE ((uint64_t)1 << 20)
#define FLAG_KEEP_CSUM 1
#define FLAG_FIX_AUTH 2

static struct server srv;
static char dir[256];
static uint64_t seed_id, batch_no;

/* ---- the peer's side: reading and checking what the server sends */

struct peer {
	int fd;
	uint8_t h_raw[sizeof(struct wire_hdr)];
	struct wire_hdr h;
	size_t hdr_got, payload_got;
	uint8_t *payload;
};

static void check_answer(const struct peer *p)
{
	if (wire_check_csum(&p->h, p->payload)) {
		fprintf(stderr, "answer with a bad checksum\n");
		abort();
	}
}

static void check_hdr(const struct wire_hdr *h)
{
	if (h->magic != WIRE_MAGIC || !(h->op & WIRE_RESPONSE) ||
	    wire_check_hdr(h, WIRE_MAX_PAYLOAD)) {
		fprintf(stderr, "malformed answer: magic %x op %x status %u "
			"len %u\n", h->magic, h->op, h->status, h->len);
		abort();
	}
}

/* Reads what is there; returns true when it read anything. */
static bool peer_drain(struct peer *p)
{
	bool any = false;

	for (;;) {
		ssize_t n;

		if (p->hdr_got < sizeof(p->h)) {
			n = recv(p->fd, p->h_raw + p->hdr_got,
				 sizeof(p->h) - p->hdr_got, MSG_DONTWAIT);
			if (n <= 0)
				return any;
			any = true;
			p->hdr_got += (size_t)n;
			if (p->hdr_got < sizeof(p->h))
				continue;
			wire_get_hdr(p->h_raw, sizeof(p->h_raw), &p->h);
			check_hdr(&p->h);
			p->payload = malloc(p->h.len + 1);
			p->payload_got = 0;
		}
		if (p->payload_got < p->h.len) {
			n = recv(p->fd, p->payload + p->payload_got,
				 p->h.len - p->payload_got, MSG_DONTWAIT);
			if (n <= 0)
				return any;
			any = true;
			p->payload_got += (size_t)n;
			if (p->payload_got < p->h.len)
				continue;
		}
		check_answer(p);
		free(p->payload);
		p->payload = NULL;
		p->hdr_got = 0;
	}
}

/* ---- the server's side, run by hand */

/* Runs queued requests, and the commit batches they make, until none is
 * left (a SYNC released by the last WRITE before it queues another). */
static bool run_queues(void)
{
	bool any = false;

	for (;;) {
		struct request *r, *batch;
		bool round = false;

		while ((r = queue_pop(&srv.work, false))) {
			handle_request(&srv, r);
			round = true;
		}
		if ((batch = queue_pop(&srv.commit, true))) {
			commit_run(&srv, batch, ++batch_no);
			round = true;
		}
		if (!round)
			return any;
		any = true;
	}
}

/* Connections the server let go (loop_reap_later), released as reap()
 * does; returns whether c was among them. */
static bool reap_all(struct conn *c)
{
	bool found = false;

	pthread_mutex_lock(&srv.reap_lock);
	for (size_t i = 0; i < srv.nreap; i++) {
		found |= srv.reap[i] == c;
		conn_put(srv.reap[i]);
	}
	free(srv.reap);
	srv.reap = NULL;
	srv.nreap = srv.reap_cap = 0;
	pthread_mutex_unlock(&srv.reap_lock);
	return found;
}

/* What the loop would do on the events, until nothing moves. */
static void pump(struct conn *c, struct peer *p)
{
	bool moved = true;

	while (moved) {
		moved = false;
		if (conn_may_read(c)) {
			size_t before = c->hdr_got + c->payload_got;
			session_readable(c);
			moved |= c->hdr_got + c->payload_got != before;
		}
		moved |= run_queues();
		moved |= peer_drain(p);
		conn_flush(c);
		moved |= peer_drain(p);
	}
}

/* Sends all of buf to the server, pumping while its socket is full. */
static void peer_send(struct conn *c, struct peer *p, const void *buf,
		      size_t len)
{
	while (len) {
		ssize_t n = send(p->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return; /* the server closed: the rest is not read */
		if (n > 0) {
			buf = (const char *)buf + n;
			len -= (size_t)n;
		}
		pump(c, p);
		if (n <= 0 && !conn_may_read(c))
			return; /* it reads no more (closing, or a bound) */
	}
}

static void send_frame(struct conn *c, struct peer *p, uint8_t flags,
		       const uint8_t *in, size_t avail)
{
	struct wire_hdr h;
	uint8_t buf[sizeof(h) + 4096 + WIRE_MAX_PREAUTH];
	const uint8_t *payload = in + sizeof(h);
	uint32_t len;

	wire_get_hdr(in, sizeof(h), &h);
	len = h.len <= avail - sizeof(h) ? h.len : (uint32_t)(avail - sizeof(h));
	if (flags & FLAG_FIX_AUTH && h.op == WIRE_AUTH &&
	    len == WIRE_MAC && c->hs.state == WIRE_HS_AUTH) {
		wire_auth_mac((const uint8_t *)SECRET, strlen(SECRET),
			      "ufo1 client", c->hs.nonce, c->hs.peer_nonce,
			      buf + sizeof(h));
		payload = buf + sizeof(h);
	}
	if (!(flags & FLAG_KEEP_CSUM) && len == h.len)
		h.csum = wire_csum_iov(&(struct iovec){ (void *)payload, len }, 1);
	wire_put_hdr(buf, sizeof(h), &h);
	peer_send(c, p, buf, sizeof(h));
	peer_send(c, p, payload, len);
}

/* Objects the input created are deleted, so every input starts from the
 * seed object alone. */
static void store_reset(void)
{
	struct store_obj *objs[WIRE_LIST_MAX];
	uint64_t cursor = 0, next;
	uint32_t n;

	do {
		store_list(srv.store, cursor, WIRE_LIST_MAX, objs, &n, &next);
		for (uint32_t i = 0; i < n; i++) {
			if (objs[i]->id != seed_id)
				store_delete(srv.store, objs[i]->name,
					     objs[i]->name_len);
			store_put(objs[i]);
		}
		cursor = next;
	} while (next);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct peer p = { 0 };
	struct ufo_conn *tc;
	struct conn *c;
	uint8_t flags;
	int sv[2];

	if (!size)
		return 0;
	flags = data[0];
	data++;
	size--;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	if (tcp_conn_from_fd(sv[0], &tc))
		abort();
	c = conn_new(&srv, &conn_stream, tc, sv[0], NULL);
	if (!c)
		abort();
	session_start(c);
#ifdef FUZZ_AUTHENTICATED
	c->hs.state = WIRE_HS_DONE;
	c->hs.version = c->version = WIRE_VERSION_MAX;
#endif
	p.fd = sv[1];
	while (size >= sizeof(struct wire_hdr)) {
		uint32_t len;

		memcpy(&len, data + offsetof(struct wire_hdr, len), sizeof(len));
		len = le32toh(len);
		send_frame(c, &p, flags, data, size);
		if (len > size - sizeof(struct wire_hdr))
			len = (uint32_t)(size - sizeof(struct wire_hdr));
		data += sizeof(struct wire_hdr) + len;
		size -= sizeof(struct wire_hdr) + len;
	}
	peer_send(c, &p, data, size);
	shutdown(p.fd, SHUT_WR); /* the peer leaves */
	pump(c, &p);
	if (!reap_all(c)) {
		fprintf(stderr, "connection not released: inflight %u, out %zu, "
			"closing %d, dead %d\n", c->inflight, c->out_bytes,
			c->closing, c->dead);
		abort();
	}
	close(p.fd);
	free(p.payload);
	store_reset();
	return 0;
}

/* ---- setup */

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	return remove(path);
}

static void cleanup(void)
{
	if (srv.store)
		store_close(srv.store);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("UFO_FUZZ_TMPDIR") ? getenv("UFO_FUZZ_TMPDIR")
			  : access("/dev/shm", W_OK) ? getenv("TMPDIR") : "/dev/shm";
	struct store_obj *o;

	snprintf(dir, sizeof(dir), "%s/ufo-fuzz-XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(dir) || wire_crypto_init())
		abort();
	log_set_level(LOG_ERROR);
	strcpy(srv.cfg.data_dir, dir);
	srv.cfg.max_connections = SERVER_DEFAULT_MAX_CONNECTIONS;
	srv.cfg.auth_timeout_ms = AUTH_TIMEOUT_MS;
	srv.secret_len = strlen(SECRET);
	memcpy(srv.secret, SECRET, srv.secret_len);
	srv.epoll_fd = srv.signal_fd = -1;
	srv.handlers = &server_handlers;
	srv.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&srv.reap_lock, NULL);
	queue_init(&srv.work);
	queue_init(&srv.commit);
	/* Stopped queues hand out what they hold and never wait. */
	queue_stop(&srv.work);
	queue_stop(&srv.commit);
	if (srv.wake_fd < 0 || store_open(dir, &vstore_ext, &srv.store) ||
	    store_create(srv.store, SEED_NAME, strlen(SEED_NAME), SEED_SIZE,
			 65536, &o))
		abort();
	seed_id = o->id;
	store_write(o, 0, SECRET, strlen(SECRET));
	store_put(o);
	atexit(cleanup);
	return 0;
}
