/* SPDX-License-Identifier: MIT */
/*
 * Attack table (docs/security.md): thousands of idle connections.  Idle
 * connections that never authenticate (half send nothing, half a partial
 * header, one byte at a time) sit open while an authenticated client keeps
 * getting answers and a new client can still log in; each idle one is
 * closed by the server once --auth-timeout-ms has passed.
 *
 * Over every transport of $UFO_TEST_SCHEME (t_srv.h): over tls:// the idle
 * ones have finished their TLS handshake (a stalled TLS handshake is
 * server_tls's case), over rdma:// they hold an established queue pair.
 * How many, and the timeouts, per transport in slowloris_params.
 */
#include <sys/resource.h>

#include "t_srv.h"

/* idle: connections held.  auth_timeout_ms: the server's; every idle one
 * must be open, and every trickled byte sent, before it runs out (checked,
 * so a machine too slow for it fails with that reason).  answer_ms: bound
 * on one answer while the idle ones sit. */
struct slowloris_params {
	int idle, auth_timeout_ms, answer_ms;
};

static const struct slowloris_params slowloris_params[] = {
	[T_TCP] = { 2000, 3000, 2000 },
	/* A full TLS handshake each, both ends on the same 2 cores: 1.5 to
	 * 4 ms, up to 20 ms under ASan on a loaded machine.  server_tls
	 * holds 1,000 TLS connections; here the point is their expiry. */
	[T_TLS] = { 100, 6000, 2000 },
	/* Each RDMA connection registers RDMA_BUF_BYTES (3 MiB) at each end,
	 * in a 1 GiB guest where everything runs under TCG (connection setup
	 * takes tens of ms there): few, and generous limits. */
	[T_RDMA] = { 16, 6000, 10000 },
};

#define IDLE_MAX 2000

static struct ufo_conn *idle[IDLE_MAX];

/* The test holds n connections and a few more descriptors (an RDMA
 * connection holds several: its event and completion channels); skip
 * where the hard limit is too low to hold them. */
static void raise_fd_limit(int n)
{
	int need = n * (t_srv_scheme() == T_RDMA ? 4 : 1) + 64;
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max < (rlim_t)need) {
		fprintf(stderr, "RLIMIT_NOFILE hard limit %llu < %d: skipping\n",
			(unsigned long long)rl.rlim_max, need);
		exit(T_EXIT_SKIP);
	}
	rl.rlim_cur = rl.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* One request and its answer, timed. */
static void timed_ping(struct ufo_conn *c, int answer_ms)
{
	int64_t t0 = t_now_ms();

	t_ping_ok(c);
	if (t_now_ms() - t0 > answer_ms)
		fail_msg("PING took %lld ms with idle connections open",
			 (long long)(t_now_ms() - t0));
}

/* True once the server closed c (EOF or reset), waiting until deadline. */
static bool closed_by(struct ufo_conn *c, int64_t deadline)
{
	uint8_t b;
	int rc;

	do { /* an EPROTO/ENOTAUTH answer may come first: read on */
		int left = (int)(deadline - t_now_ms());

		if (left <= 0)
			return false;
		rc = conn_recv(c, &b, 1, left);
	} while (rc == 0);
	return rc == -ECONNRESET || rc == -EPIPE;
}

static int send_byte(struct ufo_conn *c, const uint8_t *b)
{
	struct iovec iov = { (void *)b, 1 };

	return conn_send(c, &iov, 1, T_SRV_WAIT_MS);
}

static void test_idle_connections(void **state)
{
	const struct slowloris_params *p = &slowloris_params[t_srv_scheme()];
	char timeout[16];
	char *extra[] = { "--max-connections", "4096", "--auth-timeout-ms",
			  timeout, "--log-level", "info", NULL };
	struct wire_hdr h = t_hdr(0, WIRE_HELLO, sizeof(struct wire_hello));
	uint8_t h_raw[sizeof(h)];
	struct ufo_conn *busy, *late;
	struct t_srv s;
	int64_t opened, deadline;
	int closed = 0;

	assert_true(p->idle <= IDLE_MAX);
	snprintf(timeout, sizeof(timeout), "%d", p->auth_timeout_ms);
	raise_fd_limit(p->idle);
	t_srv_init(&s);
	t_srv_start_args(&s, extra);
	busy = t_login(&s);
	wire_put_hdr(h_raw, sizeof(h_raw), &h);
	opened = t_now_ms();
	for (int i = 0; i < p->idle; i++) {
		idle[i] = t_connect(&s);
		if (i % 2) /* a slow header: the first byte only */
			assert_int_equal(send_byte(idle[i], h_raw), 0);
		if (i % 200 == 0)
			timed_ping(busy, p->answer_ms);
	}
	/* While they all sit there: the busy client is served, and a new
	 * one gets in. */
	for (int i = 0; i < 20; i++)
		timed_ping(busy, p->answer_ms);
	late = t_login(&s);
	timed_ping(late, p->answer_ms);
	print_message("%d idle %s connections open in %lld ms\n", p->idle,
		      t_srv_transport()->name, (long long)(t_now_ms() - opened));
	if (t_now_ms() - opened >= p->auth_timeout_ms)
		fail_msg("%d %s connections took %lld ms to open, past the "
			 "%d ms auth timeout: too slow a machine for this test",
			 p->idle, t_srv_transport()->name,
			 (long long)(t_now_ms() - opened), p->auth_timeout_ms);
	for (int i = 1; i < p->idle; i += 2) /* trickle: one more byte each */
		assert_int_equal(send_byte(idle[i], h_raw + 1), 0);
	timed_ping(busy, p->answer_ms);

	deadline = opened + p->auth_timeout_ms + T_SRV_WAIT_MS;
	for (int i = 0; i < p->idle; i++) {
		closed += closed_by(idle[i], deadline);
		conn_close(idle[i]);
	}
	assert_int_equal(closed, p->idle);
	/* Closed for the timeout, not for anything else they did. */
	assert_int_equal(t_log_count(&s, "no authentication within"), p->idle);
	timed_ping(busy, p->answer_ms);
	timed_ping(late, p->answer_ms);
	conn_close(late);
	conn_close(busy);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	t_srv_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_connections),
	};

	t_server_bin();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
