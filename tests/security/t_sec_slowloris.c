/* SPDX-License-Identifier: MIT */
/*
 * Attack table (docs/security.md): thousands of idle connections.  2000
 * connections that never authenticate (half send nothing, half a partial
 * header, one byte at a time) sit open while an authenticated client keeps
 * getting answers and a new client can still log in; each idle one is
 * closed by the server once --auth-timeout-ms has passed.
 */
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "t_srv.h"

#define IDLE 2000
#define AUTH_TIMEOUT "3000"
#define AUTH_TIMEOUT_MS 3000
#define ANSWER_MS 2000 /* bound on one answer while the idle ones sit */

static int idle_fd[IDLE];

/* The test holds IDLE + a few descriptors; skip where the hard limit is
 * too low to hold them. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max < IDLE + 64) {
		fprintf(stderr, "RLIMIT_NOFILE hard limit %llu < %d: skipping\n",
			(unsigned long long)rl.rlim_max, IDLE + 64);
		exit(T_EXIT_SKIP);
	}
	rl.rlim_cur = rl.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static int raw_connect(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
		fail_msg("idle connect: %s", strerror(errno));
	return fd;
}

/* One request and its answer, timed. */
static void timed_ping(struct ufo_conn *c)
{
	int64_t t0 = t_now_ms();

	t_ping_ok(c);
	if (t_now_ms() - t0 > ANSWER_MS)
		fail_msg("PING took %lld ms with idle connections open",
			 (long long)(t_now_ms() - t0));
}

/* True once the server closed fd (EOF or reset), waiting until deadline. */
static bool closed_by(int fd, int64_t deadline)
{
	char b[256];

	for (;;) {
		int left = (int)(deadline - t_now_ms());
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (left < 0 || poll(&p, 1, left) <= 0)
			return false;
		n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		/* an EPROTO/ENOTAUTH answer may come first: read on */
	}
}

static void test_idle_connections(void **state)
{
	char *extra[] = { "--max-connections", "4096", "--auth-timeout-ms",
			  AUTH_TIMEOUT, "--log-level", "info", NULL };
	struct wire_hdr h = t_hdr(0, WIRE_HELLO, sizeof(struct wire_hello));
	uint8_t h_raw[sizeof(h)];
	struct ufo_conn *busy, *late;
	struct t_srv s;
	int64_t opened, deadline;
	int closed = 0;

	raise_fd_limit();
	t_srv_init(&s);
	t_srv_start_args(&s, extra);
	busy = t_login(&s);
	wire_put_hdr(h_raw, sizeof(h_raw), &h);
	for (int i = 0; i < IDLE; i++) {
		idle_fd[i] = raw_connect(s.port);
		if (i % 2) /* a slow header: the first byte only */
			assert_int_equal(send(idle_fd[i], h_raw, 1, MSG_NOSIGNAL), 1);
		if (i % 200 == 0)
			timed_ping(busy);
	}
	opened = t_now_ms();
	/* While they all sit there: the busy client is served, and a new
	 * one gets in. */
	for (int i = 0; i < 20; i++)
		timed_ping(busy);
	late = t_login(&s);
	timed_ping(late);
	for (int i = 1; i < IDLE; i += 2) /* trickle: one more byte each */
		assert_int_equal(send(idle_fd[i], h_raw + 1, 1,
				      MSG_NOSIGNAL), 1);
	timed_ping(busy);

	deadline = opened + AUTH_TIMEOUT_MS + T_SRV_WAIT_MS;
	for (int i = 0; i < IDLE; i++) {
		closed += closed_by(idle_fd[i], deadline);
		close(idle_fd[i]);
	}
	assert_int_equal(closed, IDLE);
	/* Closed for the timeout, not for anything else they did. */
	assert_int_equal(t_log_count(&s, "no authentication within"), IDLE);
	timed_ping(busy);
	timed_ping(late);
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
