/* SPDX-License-Identifier: MIT */
/*
 * TLS served by the event loop (transport/tls.c's connection type, driven
 * by server/net/conn_io.c): many TLS connections
 * cost the server no thread (the old bridge ran two per connection), and
 * clients that stall the TLS handshake (silent, half a record, garbage, or
 * TLS up but no HELLO) are closed by the auth deadline without holding up
 * anyone else; over --max-connections the refusal comes inside TLS.  Skips without GnuTLS, openssl, or the file descriptors.
 */
#include <sys/resource.h>
#include <sys/socket.h>

#include "t_tls.h"

#define MANY_CONNS 1000
#define MANY_FDS (2 * MANY_CONNS + 64) /* ours and slack */
#define SPARE_THREADS 2 /* over the idle count, for timing noise */
#define STALL_AUTH_MS 2000 /* the stall server's --auth-timeout-ms */
#define STALL_SLACK_MS 8000 /* loop tick, a loaded machine */

static struct t_certs certs;

static void start_tls_server(struct t_srv *s, const char *auth_ms)
{
	char *extra[] = { "--tls-cert", certs.cert, "--tls-key", certs.key,
			  "--auth-timeout-ms", (char *)auth_ms, NULL };

	t_srv_start_args(s, extra);
}

/* The Threads: line of /proc/PID/status. */
static int thread_count(pid_t pid)
{
	char path[64], line[256];
	FILE *f;
	int n = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* Both ends of MANY_CONNS connections live in this process when the
 * server is local: ours, and the server's (its own limit, raised by it). */
static bool raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return false;
	if (rl.rlim_cur >= MANY_FDS)
		return true;
	if (rl.rlim_max < MANY_FDS)
		return false;
	rl.rlim_cur = MANY_FDS;
	return !setrlimit(RLIMIT_NOFILE, &rl);
}

static void test_many_connections(void **state)
{
	static struct ufo_conn *c[MANY_CONNS];
	struct t_srv s;
	struct ufo_conn *first;
	int idle, busy;
	int64_t t0;

	if (!raise_fd_limit())
		skip(); /* reason printed by main */
	t_srv_init(&s);
	start_tls_server(&s, "60000");
	/* Idle: after one connection came and went, every thread the
	 * server starts on its own is there. */
	assert_int_equal(t_tls_login_to("127.0.0.1", s.port, T_SECRET, &first),
			 0);
	t_ping_ok(first);
	conn_close(first);
	t_sleep_ms(200);
	idle = thread_count(s.pid);
	t0 = t_now_ms();
	for (int i = 0; i < MANY_CONNS; i++) {
		int rc = t_tls_login_to("127.0.0.1", s.port, T_SECRET, &c[i]);

		if (rc)
			fail_msg("connection %d: %s", i, strerror(-rc));
		t_ping_ok(c[i]);
	}
	busy = thread_count(s.pid);
	fprintf(stderr, "ufo-server threads: %d idle, %d with %d TLS "
		"connections (set up in %lld ms)\n", idle, busy, MANY_CONNS,
		(long long)(t_now_ms() - t0));
	for (int i = 0; i < MANY_CONNS; i++) /* all still served */
		t_ping_ok(c[i]);
	assert_true(busy <= idle + SPARE_THREADS);
	for (int i = 0; i < MANY_CONNS; i++)
		conn_close(c[i]);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	t_srv_fini(&s);
}

static int raw_connect(uint16_t port)
{
	struct net_addr a = { .host = "127.0.0.1", .port = port };
	int fd = tcp_connect_fd(&a, T_SRV_WAIT_MS);

	assert_true(fd >= 0);
	return fd;
}

static void send_all(int fd, const void *p, size_t len)
{
	assert_int_equal(send(fd, p, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Milliseconds until the server ends fd (EOF or reset, after any alert
 * it sends), at most T_SRV_WAIT_MS; -1 if it does not. */
static int64_t ms_until_closed(int fd, int64_t since)
{
	int64_t end = t_now_ms() + T_SRV_WAIT_MS;
	char buf[512];

	while (t_now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return t_now_ms() - since;
	}
	return -1;
}

static void test_stalled_handshakes(void **state)
{
	/* A handshake record header announcing 512 bytes, then 100 of them. */
	static const uint8_t half[5 + 100] = { 0x16, 0x03, 0x01, 0x02, 0x00 };
	static const char garbage[] = "GET / HTTP/1.0\r\n\r\n not a ClientHello";
	struct t_srv s;
	struct ufo_conn *good, *mute;
	int silent, partial, junk;
	int64_t t0, t_junk;
	char ms[16];

	snprintf(ms, sizeof(ms), "%d", STALL_AUTH_MS);
	t_srv_init(&s);
	start_tls_server(&s, ms);
	t0 = t_now_ms();
	silent = raw_connect(s.port);
	partial = raw_connect(s.port);
	send_all(partial, half, sizeof(half));
	assert_int_equal(ufo_tls_transport.connect(
				 &(struct net_addr){ .host = "127.0.0.1",
						     .port = s.port },
				 T_SRV_WAIT_MS, &mute), 0);
	junk = raw_connect(s.port);
	send_all(junk, garbage, sizeof(garbage) - 1);

	/* Garbage fails the TLS handshake at once. */
	t_junk = ms_until_closed(junk, t0);
	assert_true(t_junk >= 0 && t_junk < STALL_AUTH_MS);

	/* Meanwhile, with the stalled ones still open, others are served. */
	assert_int_equal(t_tls_login_to("127.0.0.1", s.port, T_SECRET, &good),
			 0);
	t_ping_ok(good);

	/* The deadline closes the stalled ones, not before it. */
	for (int i = 0; i < 2; i++) {
		int64_t t = ms_until_closed(i ? partial : silent, t0);

		fprintf(stderr, "%s client closed after %lld ms\n",
			i ? "half-record" : "silent", (long long)t);
		assert_true(t >= STALL_AUTH_MS - 100);
		assert_true(t < STALL_AUTH_MS + STALL_SLACK_MS);
	}
	assert_true(t_closed(mute));
	assert_true(t_now_ms() - t0 < STALL_AUTH_MS + STALL_SLACK_MS);
	t_ping_ok(good); /* authenticated: no deadline */
	assert_true(t_log_count(&s, "TLS handshake failed") >= 1);
	assert_true(t_log_count(&s, "no authentication within") >= 3);
	conn_close(mute);
	conn_close(good);
	close(silent);
	close(partial);
	close(junk);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	t_srv_fini(&s);
}

/*
 * Many requests in one TLS record: the server decrypts them in one go, and
 * stops reading after CONN_FRAMES_PER_WAKE frames (fairness) or at its
 * in-flight bound, with the rest held inside GnuTLS where epoll cannot see
 * them (the socket is empty).  Every request must still be answered: the
 * loop reads such a connection again by itself (loop_read_later, when a
 * turn ends or reading resumes).  Without that this waits T_SRV_WAIT_MS
 * for answers that never come, and fails.
 */
#define PIPE_N 200 /* 200 WRITEs of 8 bytes: about 13 KiB, one record */

static void test_pipelined_in_one_record(void **state)
{
	size_t frame = sizeof(struct wire_hdr) + sizeof(struct wire_io) + 8;
	uint8_t *buf = calloc(PIPE_N, frame);
	bool seen[PIPE_N] = { false };
	uint64_t first_id = 0, back[PIPE_N];
	struct wire_objinfo info;
	struct ufo_conn *c;
	struct iovec all;
	struct t_srv s;

	(void)state;
	assert_non_null(buf);
	t_srv_init(&s);
	start_tls_server(&s, "20000");
	assert_int_equal(t_tls_login_to("127.0.0.1", s.port, T_SECRET, &c), 0);
	assert_int_equal(t_create(c, "pipe", 1 << 20, 65536, &info), WIRE_OK);
	for (uint64_t i = 0; i < PIPE_N; i++) {
		uint8_t *f = buf + i * frame, *p = f + sizeof(struct wire_hdr);
		struct wire_io io = { .id = le64toh(info.id), .offset = i * 8,
				      .len = 8 };
		struct iovec pl = { p, sizeof(io) + 8 };
		struct wire_hdr h = t_hdr(WIRE_VERSION_MAX, WIRE_WRITE,
					  (uint32_t)pl.iov_len);

		wire_put_io(p, sizeof(io), &io);
		memcpy(p + sizeof(io), &i, 8);
		h.csum = wire_csum_iov(&pl, 1);
		wire_put_hdr(f, sizeof(h), &h);
		if (!i)
			first_id = h.req_id;
	}
	all = (struct iovec){ buf, PIPE_N * frame };
	assert_int_equal(conn_send(c, &all, 1, T_SRV_WAIT_MS), 0);
	for (int n = 0; n < PIPE_N; n++) {
		struct t_reply r;
		uint64_t k;

		assert_int_equal(t_recv(c, &r), 0);
		k = r.h.req_id - first_id;
		assert_true(k < PIPE_N && !seen[k]);
		assert_int_equal(r.h.status, WIRE_OK);
		seen[k] = true;
		t_reply_free(&r);
	}
	assert_int_equal(t_read(c, le64toh(info.id), 0, back, sizeof(back)),
			 WIRE_OK);
	for (uint64_t i = 0; i < PIPE_N; i++)
		assert_int_equal(back[i], i);
	conn_close(c);
	free(buf);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	t_srv_fini(&s);
}

/* Over --max-connections a TLS client is told EBUSY inside TLS, as a TCP
 * client is in plaintext; a freed slot takes the next one.  Before, the
 * refusal went out as a plaintext frame, which the client's TLS handshake
 * read as garbage (-EPROTO, or a reset). */
static void test_over_limit_told_in_tls(void **state)
{
	char *extra[] = { "--tls-cert", certs.cert, "--tls-key", certs.key,
			  "--max-connections", "2", NULL };
	struct ufo_conn *a, *b, *c = NULL;
	struct t_srv s;
	int rc = 0;

	(void)state;
	t_srv_init(&s);
	t_srv_start_args(&s, extra);
	assert_int_equal(t_tls_login_to("127.0.0.1", s.port, T_SECRET, &a), 0);
	assert_int_equal(t_tls_login_to("127.0.0.1", s.port, T_SECRET, &b), 0);
	for (int i = 0; i < 5; i++) /* every refusal is the same */
		assert_int_equal(t_tls_login_to("127.0.0.1", s.port, T_SECRET,
						&c), -EBUSY);
	t_ping_ok(a);
	conn_close(b);
	/* The server notices b's close asynchronously: retry, bounded. */
	for (int i = 0; i < 200; i++) {
		rc = t_tls_login_to("127.0.0.1", s.port, T_SECRET, &c);
		if (rc != -EBUSY)
			break;
		t_sleep_ms(50);
	}
	assert_int_equal(rc, 0);
	t_ping_ok(c);
	conn_close(c);
	conn_close(a);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	t_srv_fini(&s);
}

/* Refused TLS connections cost a handshake each, so the server holds at
 * most REFUSING_MAX of them (server.h's LOOP_REFUSING_MAX) past its
 * limit, and closes any more at accept without a word.  The held ones
 * stay until the auth deadline (long here); the rest are closed at once. */
#define REFUSING_MAX 64
#define FLOOD_EXTRA 16

static int count_closed(const int *fd, int n)
{
	int closed = 0;

	for (int i = 0; i < n; i++) {
		struct pollfd p = { .fd = fd[i], .events = POLLIN };
		char b;

		if (poll(&p, 1, 0) == 1 &&
		    recv(fd[i], &b, 1, MSG_DONTWAIT | MSG_PEEK) <= 0)
			closed++;
	}
	return closed;
}

static void test_over_limit_flood_bounded(void **state)
{
	char *extra[] = { "--tls-cert", certs.cert, "--tls-key", certs.key,
			  "--max-connections", "1", "--auth-timeout-ms",
			  "120000", NULL };
	int fd[REFUSING_MAX + FLOOD_EXTRA], n = REFUSING_MAX + FLOOD_EXTRA;
	struct ufo_conn *a;
	int64_t end;
	struct t_srv s;
	int closed = 0;

	(void)state;
	t_srv_init(&s);
	t_srv_start_args(&s, extra);
	assert_int_equal(t_tls_login_to("127.0.0.1", s.port, T_SECRET, &a), 0);
	for (int i = 0; i < n; i++)
		fd[i] = raw_connect(s.port);
	/* The extra ones close as soon as the loop accepts them. */
	end = t_now_ms() + T_SRV_WAIT_MS;
	while (t_now_ms() < end &&
	       (closed = count_closed(fd, n)) < FLOOD_EXTRA)
		t_sleep_ms(50);
	t_sleep_ms(300); /* and no more than them */
	closed = count_closed(fd, n);
	fprintf(stderr, "%d connections over the limit: %d held, %d closed\n",
		n, n - closed, closed);
	assert_int_equal(closed, FLOOD_EXTRA);
	t_ping_ok(a); /* served throughout */
	for (int i = 0; i < n; i++)
		close(fd[i]);
	conn_close(a);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	t_srv_fini(&s);
}

static int setup(void **state)
{
	static struct t_srv cert_dir;

	t_tls_require();
	assert_int_equal(wire_crypto_init(), 0);
	t_srv_init(&cert_dir); /* only its temp directory */
	t_make_certs(cert_dir.dir, &certs);
	setenv("UFO_TLS_CA_FILE", certs.ca, 1);
	*state = &cert_dir;
	return 0;
}

static int teardown(void **state)
{
	t_srv_fini(*state);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_connections),
		cmocka_unit_test(test_stalled_handshakes),
		cmocka_unit_test(test_pipelined_in_one_record),
		cmocka_unit_test(test_over_limit_told_in_tls),
		cmocka_unit_test(test_over_limit_flood_bounded),
	};

	t_server_bin();
	if (!raise_fd_limit())
		fprintf(stderr, "RLIMIT_NOFILE cannot reach %d: "
			"test_many_connections skips\n", MANY_FDS);
	return cmocka_run_group_tests(tests, setup, teardown);
}
