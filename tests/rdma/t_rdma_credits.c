/* SPDX-License-Identifier: MIT */
/*
 * RDMA flow control (transport/rdma.h, "Flow control"), against a real
 * ufo-server in the RDMA guest: one connection, a writer thread that
 * pipelines thousands of frames (WRITEs and READs of 1 B to 256 KiB,
 * one in 16 of them 64 KiB or more, and PINGs; many more than the 32 receive buffers of either
 * side) while the main thread reads the answers slowly, with long pauses,
 * and checks every one of them and every byte read.
 *
 * With credits on, the server gives the client's sends no
 * receiver-not-ready retry: a client that sent without a credit breaks
 * the connection (-ECONNRESET here).  A side that spent its last credit on
 * data, or never returned credits, leaves both waiting: -ETIMEDOUT here.
 * Frames far larger than the window check that credits come back when
 * the receiver has nothing to send.
 * The same traffic runs with either side acting as a peer older than
 * credits ($UFO_RDMA_NO_CREDITS), which must keep working as before.
 *
 * Skips (77) without $UFO_SERVER or an RDMA device; run in the RDMA suite
 * (tests/rdma/guest.sh), where $UFO_RDMA_ADDR is the rxe address.
 */
#include <inttypes.h>

#include "../server/t_srv.h"
#include "../t_helpers.h" /* t_rand only: libufo is not linked */

#include "rdma.h"

#define T_OBJ_BYTES (8u << 20)
#define T_REGION (256u << 10)           /* a WRITE's region, and max size */
#define T_NREGIONS (T_OBJ_BYTES / T_REGION)
#define T_FRAMES 2000                   /* per round */
/* Per round with an older peer: without credits a sender is held back by
 * receiver-not-ready retries, which rxe paces slowly (some 10x slower). */
#define T_FRAMES_OLD 400
#define T_TIMEOUT_MS 60000              /* TCG is slow; only a hang waits this */

/* One request of the pipeline and what its answer must be. */
struct t_req {
	uint16_t op;
	uint64_t off;
	uint32_t len;
};

struct t_pipe {
	struct ufo_conn *c;
	uint64_t obj;
	uint64_t first_id;
	struct t_req req[T_FRAMES];
	unsigned n;
	int send_rc;
};

static const char *t_addr(void)
{
	const char *a = getenv("UFO_RDMA_ADDR");

	return a && *a ? a : "10.0.2.15";
}

/* The object's content: byte i of the object in round `round`. */
static uint8_t t_byte(unsigned round, uint64_t i)
{
	uint64_t x = (i >> 3) * 0x9e3779b97f4a7c15ull + round * 0xbf58476d1ce4e5b9ull;

	x ^= x >> 29;
	return (uint8_t)(x >> (8 * (i & 7)));
}

static void round_fill(uint8_t *p, unsigned round, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = t_byte(round, off + i);
}

/* ---- the server, listening on the rxe address */

/* Starts $UFO_SERVER on t_addr() with UFO_RDMA_NO_CREDITS=old_server in
 * its environment, waiting until RDMA listens too. */
static void t_start(struct t_srv *s, bool old_server)
{
	char listen[64], buf[1024];
	size_t got = 0;
	int64_t end = t_now_ms() + T_SRV_WAIT_MS;
	int p[2];

	snprintf(listen, sizeof(listen), "%s:0", t_addr());
	t_srv_init(s);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		char *argv[] = { (char *)t_server_bin(), "--listen", listen,
				 "--data", s->data, "--secret-file",
				 s->secret_file, NULL };
		int log = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (old_server)
			setenv("UFO_RDMA_NO_CREDITS", "1", 1);
		else
			unsetenv("UFO_RDMA_NO_CREDITS");
		dup2(p[1], STDOUT_FILENO);
		if (log >= 0)
			dup2(log, STDERR_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	while (!strstr(buf, "rdma listening on ") && t_now_ms() < end &&
	       got < sizeof(buf) - 1) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		ssize_t n;

		buf[got] = '\0';
		if (poll(&pf, 1, 100) <= 0)
			continue;
		if ((n = read(p[0], buf + got, sizeof(buf) - 1 - got)) <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
	}
	close(p[0]);
	if (!strstr(buf, "rdma listening on "))
		fail_msg("server did not listen on rdma: %s (log %s)", buf, s->log);
	s->port = (uint16_t)atoi(strrchr(strstr(buf, "rdma listening on "), ':') + 1);
}

static struct ufo_conn *t_rdma_login(const struct t_srv *s)
{
	struct net_addr a = { .port = s->port };
	struct ufo_conn *c = NULL;

	snprintf(a.host, sizeof(a.host), "%s", t_addr());
	assert_int_equal(ufo_rdma_transport.connect(&a, T_SRV_WAIT_MS, &c), 0);
	assert_int_equal(t_handshake(c, T_SECRET), 0);
	return c;
}

/* ---- the pipeline */

/* The requests of a round: WRITEs of the round's content (so that their
 * order does not matter: the first ones cover the object, the others
 * rewrite parts of it) in a round of writes, READs of any part of the
 * object in a round of reads; a PING now and then; sizes from 1 B to a
 * whole region, the small ones most often (TCG moves some 30 MiB/s). */
static void t_plan(struct t_pipe *pp, bool writes, uint64_t *rng)
{
	static const uint32_t small[] = { 1, 64, 100, 4096 };
	static const uint32_t large[] = { 65535, 65536, 65537, 200000, T_REGION };

	for (unsigned i = 0; i < pp->n; i++) {
		struct t_req *q = &pp->req[i];
		uint64_t r = t_rand(rng);
		uint32_t len = r % 16 ? small[(r >> 4) % 4] : large[(r >> 4) % 5];

		if (i >= T_NREGIONS && i % 17 == 5) {
			*q = (struct t_req){ .op = WIRE_PING };
			continue;
		}
		q->op = writes ? WIRE_WRITE : WIRE_READ;
		q->len = writes && i < T_NREGIONS ? T_REGION : len;
		if (writes) /* in region i % T_NREGIONS, at its start or end */
			q->off = (uint64_t)(i % T_NREGIONS) * T_REGION +
				 (T_REGION - len) * (i / T_NREGIONS % 2);
		else
			q->off = t_rand(rng) % (T_OBJ_BYTES - len + 1);
	}
}

static unsigned t_round; /* the content the current round writes */

static int t_send_req(struct t_pipe *pp, unsigned i, uint8_t *data)
{
	const struct t_req *q = &pp->req[i];
	struct wire_io io = { .id = htole64(pp->obj), .offset = htole64(q->off),
			      .len = htole32(q->len) };

	if (q->op == WIRE_PING)
		return frame_send(pp->c, WIRE_VERSION_MAX, WIRE_PING,
				  pp->first_id + i, 0, NULL, 0, NULL, 0,
				  T_TIMEOUT_MS);
	if (q->op == WIRE_WRITE)
		round_fill(data, t_round, q->off, q->len);
	return frame_send(pp->c, WIRE_VERSION_MAX, q->op, pp->first_id + i, 0,
			  &io, sizeof(io), q->op == WIRE_WRITE ? data : NULL,
			  q->op == WIRE_WRITE ? q->len : 0, T_TIMEOUT_MS);
}

static void *t_writer(void *arg)
{
	struct t_pipe *pp = arg;
	uint8_t *data = malloc(T_REGION);

	pp->send_rc = data ? 0 : -ENOMEM;
	for (unsigned i = 0; i < pp->n && !pp->send_rc; i++)
		pp->send_rc = t_send_req(pp, i, data);
	free(data);
	return NULL;
}

/* Checks one answer against its request; the data of READs byte by byte
 * against `content` (the round last written). */
static void t_check(const struct t_pipe *pp, const struct t_reply *r,
		    unsigned content, bool *seen)
{
	uint64_t i = r->h.req_id - pp->first_id;
	const struct t_req *q;

	assert_true(r->h.req_id >= pp->first_id && i < pp->n);
	q = &pp->req[i];
	assert_false(seen[i]);
	seen[i] = true;
	assert_int_equal(r->h.op, q->op | WIRE_RESPONSE);
	if (r->h.status != WIRE_OK)
		fail_msg("req %" PRIu64 " op %u: status %u: %s", i, q->op,
			 r->h.status, (char *)r->payload);
	if (q->op != WIRE_READ) {
		assert_int_equal(r->h.len, 0);
		return;
	}
	assert_int_equal(r->h.len, q->len);
	for (uint32_t b = 0; b < q->len; b++)
		if (r->payload[b] != t_byte(content, q->off + b))
			fail_msg("req %" PRIu64 " READ %u at %" PRIu64 ": byte %u wrong",
				 i, q->len, q->off, b);
}

/* One round: the writer pipelines every request while this thread reads
 * the answers slowly: a pause of pause_ms every 64 answers, and a long
 * one (a second) after the first 100, so that both sides run out of
 * credits and wait for each other's reader. */
static void t_round_run(struct t_pipe *pp, unsigned n, bool writes,
			uint64_t *rng, unsigned content, int pause_ms)
{
	bool *seen = calloc(T_FRAMES, sizeof(*seen));
	int64_t start = t_now_ms();
	pthread_t w;

	assert_non_null(seen);
	pp->n = n;
	pp->first_id = t_next_req();
	atomic_fetch_add(&t_req_ids, n);
	t_plan(pp, writes, rng);
	assert_int_equal(pthread_create(&w, NULL, t_writer, pp), 0);
	for (unsigned got = 0; got < pp->n; got++) {
		struct t_reply r;
		int rc = t_recv(pp->c, &r);

		if (rc)
			fail_msg("answer %u of %u: %s (writer: %s)", got, pp->n,
				 strerror(-rc), strerror(-pp->send_rc));
		t_check(pp, &r, content, seen);
		t_reply_free(&r);
		if (got == 100)
			t_sleep_ms(1000);
		else if (got % 64 == 0)
			t_sleep_ms(pause_ms);
	}
	assert_int_equal(pthread_join(w, NULL), 0);
	assert_int_equal(pp->send_rc, 0);
	fprintf(stderr, "t_rdma_credits: %u %s in %" PRId64 " ms\n", pp->n,
		writes ? "writes" : "reads", t_now_ms() - start);
	free(seen);
}

/* Two rounds of writes (the second overwrites the first), then reads of
 * what the second wrote. */
static void t_pipeline(bool old_server, bool old_client)
{
	struct t_srv s;
	struct wire_objinfo info;
	struct t_pipe *pp = calloc(1, sizeof(*pp));
	uint64_t rng = 0x5eed ^ (uint64_t)old_server << 1 ^ old_client;
	unsigned n = old_server || old_client ? T_FRAMES_OLD : T_FRAMES;

	assert_non_null(pp);
	t_start(&s, old_server);
	if (old_client)
		setenv("UFO_RDMA_NO_CREDITS", "1", 1);
	pp->c = t_rdma_login(&s);
	unsetenv("UFO_RDMA_NO_CREDITS");
	assert_int_equal(t_create(pp->c, "credits", T_OBJ_BYTES, 1u << 20,
				  &info), WIRE_OK);
	pp->obj = le64toh(info.id);
	for (t_round = 1; t_round <= 2; t_round++)
		t_round_run(pp, n, true, &rng, 0, 5);
	t_round_run(pp, n, false, &rng, 2, 2);
	t_ping_ok(pp->c);
	conn_close(pp->c);
	free(pp);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	t_srv_fini(&s);
}

/* Frames of many more messages than the peer's window, with nothing
 * coming back meanwhile: the server answers a WRITE, and the client asks
 * for nothing, only once the whole frame is in, so the credits for the
 * rest of it can only come back in credit-only messages (the server's for
 * the WRITE, the client's reader's for the READ's answer). */
static void test_large_frames(void **state)
{
	struct t_srv s;
	struct wire_objinfo info;
	struct ufo_conn *c;
	uint8_t *out = malloc(T_OBJ_BYTES), *in = malloc(T_OBJ_BYTES);
	uint64_t id;

	(void)state;
	assert_non_null(out);
	assert_non_null(in);
	t_start(&s, false);
	c = t_rdma_login(&s);
	assert_int_equal(t_create(c, "large", T_OBJ_BYTES, 1u << 20, &info),
			 WIRE_OK);
	id = le64toh(info.id);
	round_fill(out, 7, 0, T_OBJ_BYTES);
	assert_int_equal(t_write(c, id, 0, out, T_OBJ_BYTES), WIRE_OK);
	assert_int_equal(t_read(c, id, 0, in, T_OBJ_BYTES), WIRE_OK);
	assert_memory_equal(in, out, T_OBJ_BYTES);
	conn_close(c);
	free(out);
	free(in);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	t_srv_fini(&s);
}

static void test_credits(void **state)
{
	(void)state;
	t_pipeline(false, false);
}

static void test_old_server(void **state)
{
	(void)state;
	t_pipeline(true, false);
}

static void test_old_client(void **state)
{
	(void)state;
	t_pipeline(false, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_large_frames),
		cmocka_unit_test(test_credits),
		cmocka_unit_test(test_old_server),
		cmocka_unit_test(test_old_client),
	};
	const char *bin = getenv("UFO_SERVER");

	if (!bin || access(bin, X_OK) || !urdma_available()) {
		fprintf(stderr, "t_rdma_credits: needs $UFO_SERVER and an RDMA "
			"device (run in the rdma suite); skipping\n");
		return T_EXIT_SKIP;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
