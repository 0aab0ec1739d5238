/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers for the ufo-server tests: start the real server binary
 * ($UFO_SERVER) on 127.0.0.1, port 0, with a temp data directory and a
 * temp secret file (mode 0600), and talk to it with the transport library.
 * Every wait is bounded by T_SRV_WAIT_MS; a program without $UFO_SERVER
 * skips (exit 77).  One translation unit per program: everything static.
 *
 * $UFO_TEST_SCHEME picks the transport t_connect speaks (see t_srv_scheme
 * below): tcp by default, tls or rdma, so a program that sends its frames,
 * raw or not, through t_connect's connection runs unchanged over all three.
 */
#ifndef T_SRV_H
#define T_SRV_H

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "rdma.h"
#include "transport.h"
#include "../t_certs.h"

#define T_EXIT_SKIP 77
#define T_SRV_WAIT_MS 20000 /* bound on every wait: start, answer, exit */
#define T_SECRET "correct horse battery staple, 32b"

struct t_srv {
	pid_t pid;
	uint16_t port;
	char dir[PATH_MAX / 2]; /* temp root: secret, data/, log */
	char data[PATH_MAX];
	char secret_file[PATH_MAX];
	char log[PATH_MAX];
};

struct t_reply {
	struct wire_hdr h;
	uint8_t *payload; /* malloc'd, NUL-terminated for error text */
};

static inline int64_t t_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void t_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static inline const char *t_server_bin(void)
{
	const char *b = getenv("UFO_SERVER");

	if (!b || !*b) {
		fprintf(stderr, "UFO_SERVER not set: skipping\n");
		exit(T_EXIT_SKIP);
	}
	return b;
}

/* ---- the transport under test */

enum t_scheme { T_TCP, T_TLS, T_RDMA };

/* $UFO_TEST_SCHEME: unset, "tcp" or "ufo" is TCP; "tls" and "rdma" as
 * named.  Anything else is a mistake in the test's registration: exit 1. */
static inline enum t_scheme t_srv_scheme(void)
{
	const char *s = getenv("UFO_TEST_SCHEME");

	if (!s || !*s || !strcmp(s, "tcp") || !strcmp(s, "ufo"))
		return T_TCP;
	if (!strcmp(s, "tls"))
		return T_TLS;
	if (!strcmp(s, "rdma"))
		return T_RDMA;
	fprintf(stderr, "UFO_TEST_SCHEME=%s: not tcp, tls or rdma\n", s);
	exit(1);
}

static inline const struct ufo_transport_ops *t_srv_transport(void)
{
	static const struct ufo_transport_ops *const ops[] = {
		[T_TCP] = &ufo_tcp_transport,
		[T_TLS] = &ufo_tls_transport,
		[T_RDMA] = &ufo_rdma_transport,
	};

	return ops[t_srv_scheme()];
}

/* Where the server listens and t_connect connects: $UFO_TEST_HOST, else
 * 127.0.0.1.  The RDMA guest sets the rxe device's address (rdmacm does
 * not route over lo); the server then listens there for TCP as well. */
static inline const char *t_srv_host(void)
{
	const char *h = getenv("UFO_TEST_HOST");

	return h && *h ? h : "127.0.0.1";
}

/* Exits 77 with the reason when the scheme asks for what this build or
 * machine lacks.  Over tls:// that is GnuTLS or the openssl tool (for the
 * certificates); rdma:// is asked for only where a device must exist (the
 * RDMA guest), so a missing one fails instead. */
static inline void t_srv_scheme_require(void)
{
	struct net_addr a = { .host = "127.0.0.1", .port = 1 };
	struct ufo_conn *c = NULL;

	if (t_srv_scheme() == T_TLS &&
	    ufo_tls_transport.connect(&a, 1000, &c) == -EOPNOTSUPP) {
		fprintf(stderr, "UFO_TEST_SCHEME=tls: built without GnuTLS: skipping\n");
		exit(T_EXIT_SKIP);
	}
	conn_close(c);
	if (t_srv_scheme() == T_TLS && !t_certs_tool()) {
		fprintf(stderr, "UFO_TEST_SCHEME=tls: no openssl tool to make "
			"certificates: skipping\n");
		exit(T_EXIT_SKIP);
	}
	if (t_srv_scheme() == T_RDMA && !urdma_available()) {
		fprintf(stderr, "UFO_TEST_SCHEME=rdma: no RDMA device, or built "
			"without rdma-core\n");
		exit(1);
	}
}

/* Over tls://: one certificate for IP 127.0.0.1 per program, made on the
 * first call in a directory of its own (removed at exit); the client
 * trusts its CA through $UFO_TLS_CA_FILE.  NULL over tcp:// and rdma://. */
static char t_srv_certs_dir[PATH_MAX / 2];
static struct t_certs t_srv_certs;

static inline int t_rm_one(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	return remove(path);
}

static void t_srv_certs_remove(void)
{
	if (!getenv("T_SRV_KEEP"))
		nftw(t_srv_certs_dir, t_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline const struct t_certs *t_srv_tls_certs(void)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	if (t_srv_scheme() != T_TLS)
		return NULL;
	if (t_srv_certs_dir[0])
		return &t_srv_certs;
	snprintf(t_srv_certs_dir, sizeof(t_srv_certs_dir),
		 "%s/ufo-srv-certs-XXXXXX", tmp);
	assert_non_null(mkdtemp(t_srv_certs_dir));
	atexit(t_srv_certs_remove);
	if (t_certs_make(t_srv_certs_dir, &t_srv_certs))
		fail_msg("openssl failed making certificates: see %s/openssl.log",
			 t_srv_certs_dir);
	setenv("UFO_TLS_CA_FILE", t_srv_certs.ca, 1);
	return &t_srv_certs;
}

static inline void t_write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* A fresh temp directory with a secret file; the server is not started. */
static inline void t_srv_init(struct t_srv *s)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	t_srv_scheme_require();
	t_srv_tls_certs();
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "%s/ufo-srv-XXXXXX", tmp);
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->data, sizeof(s->data), "%s/data", s->dir);
	snprintf(s->secret_file, sizeof(s->secret_file), "%s/secret", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/server.log", s->dir);
	t_write_file(s->secret_file, T_SECRET "\n", 0600);
}

/* The server's command line: ours, then the scheme's, then extra. */
static inline void t_exec_server(struct t_srv *s, int out_fd, char **extra)
{
	const struct t_certs *tc = t_srv_tls_certs();
	char listen[NET_MAX_HOST + 8];
	char *argv[32] = { (char *)t_server_bin(), "--listen", listen,
			   "--data", s->data, "--secret-file", s->secret_file,
			   "--log-level", "debug" };
	int n = 9, log = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

	snprintf(listen, sizeof(listen), "%s:0", t_srv_host());
	if (tc) {
		argv[n++] = "--tls-cert";
		argv[n++] = (char *)tc->cert;
		argv[n++] = "--tls-key";
		argv[n++] = (char *)tc->key;
	}
	for (; extra && *extra && n < 31; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	dup2(out_fd, STDOUT_FILENO);
	if (log >= 0)
		dup2(log, STDERR_FILENO);
	execv(argv[0], argv);
	_exit(127);
}

/* True when buf (NUL-terminated) holds the server's complete "listening
 * on HOST:PORT" line, and over rdma:// also its "rdma listening on" line
 * (the RDMA listener starts just after TCP's); *port from the first. */
static inline bool t_listening(const char *buf, uint16_t *port)
{
	const char *nl = strchr(buf, '\n'), *rdma, *colon;

	if (!nl || strncmp(buf, "listening on ", 13))
		return false;
	rdma = strstr(buf, "rdma listening on ");
	if (t_srv_scheme() == T_RDMA && (!rdma || !strchr(rdma, '\n')))
		return false;
	colon = memrchr(buf, ':', (size_t)(nl - buf));
	if (!colon)
		return false;
	*port = (uint16_t)atoi(colon + 1);
	return true;
}

/* Reads the lines t_listening wants, waiting at most T_SRV_WAIT_MS.  0 or
 * -1. */
static inline int t_read_port(int fd, uint16_t *port)
{
	char buf[512];
	size_t got = 0;
	int64_t end = t_now_ms() + T_SRV_WAIT_MS;

	while (got < sizeof(buf) - 1 && t_now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
		buf[got] = '\0';
		if (t_listening(buf, port))
			return 0;
	}
	return -1;
}

/* Starts the server on s->data with extra flags (NULL-terminated, may be
 * NULL). */
static inline void t_srv_start_args(struct t_srv *s, char **extra)
{
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		close(p[0]);
		t_exec_server(s, p[1], extra);
	}
	close(p[1]);
	if (t_read_port(p[0], &s->port)) {
		close(p[0]);
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		fail_msg("server did not start; log in %s", s->log);
	}
	close(p[0]);
}

static inline void t_srv_start(struct t_srv *s)
{
	t_srv_start_args(s, NULL);
}

/* Sends sig and reaps the server; returns its wait status (SIGKILL after
 * T_SRV_WAIT_MS makes the test fail instead of hang). */
static inline int t_srv_stop(struct t_srv *s, int sig)
{
	int64_t end = t_now_ms() + T_SRV_WAIT_MS;
	int status = 0;

	if (s->pid <= 0)
		return 0;
	kill(s->pid, sig);
	while (waitpid(s->pid, &status, WNOHANG) == 0) {
		if (t_now_ms() > end) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &status, 0);
			s->pid = 0;
			fail_msg("server ignored signal %d", sig);
		}
		t_sleep_ms(10);
	}
	s->pid = 0;
	return status;
}

/* Stops the server if it still runs and removes the temp directory. */
static inline void t_srv_fini(struct t_srv *s)
{
	if (s->pid > 0)
		t_srv_stop(s, SIGKILL);
	if (s->dir[0] && !getenv("T_SRV_KEEP"))
		nftw(s->dir, t_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Counts lines of the server log containing needle. */
static inline int t_log_count(const struct t_srv *s, const char *needle)
{
	char line[2048];
	FILE *f = fopen(s->log, "r");
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/* ---- connections */

/* A connection to s over the scheme's transport (TLS: handshake done;
 * RDMA: queue pair established), not authenticated. */
static inline struct ufo_conn *t_connect(const struct t_srv *s)
{
	struct net_addr a = { .port = s->port };
	struct ufo_conn *c = NULL;
	int rc;

	snprintf(a.host, sizeof(a.host), "%s", t_srv_host());
	rc = t_srv_transport()->connect(&a, T_SRV_WAIT_MS, &c);
	if (rc)
		fail_msg("%s connect to %s:%u: %s", t_srv_transport()->name,
			 a.host, (unsigned)a.port, strerror(-rc));
	return c;
}

static inline int t_handshake(struct ufo_conn *c, const char *secret)
{
	uint16_t v = 0;

	return client_handshake(c, (const uint8_t *)secret, strlen(secret),
				T_SRV_WAIT_MS, &v);
}

static inline struct ufo_conn *t_login(const struct t_srv *s)
{
	struct ufo_conn *c = t_connect(s);

	assert_int_equal(t_handshake(c, T_SECRET), 0);
	return c;
}

static atomic_uint_fast64_t t_req_ids = 100;

static inline uint64_t t_next_req(void)
{
	return atomic_fetch_add(&t_req_ids, 1);
}

/* Receives one frame (any req_id).  0 or a negative errno. */
static inline int t_recv(struct ufo_conn *c, struct t_reply *r)
{
	int rc = frame_recv_hdr(c, &r->h, WIRE_MAX_PAYLOAD, T_SRV_WAIT_MS);

	r->payload = NULL;
	if (rc)
		return rc;
	r->payload = malloc(r->h.len + 1);
	assert_non_null(r->payload);
	rc = conn_recv(c, r->payload, r->h.len, T_SRV_WAIT_MS);
	if (rc)
		return rc;
	r->payload[r->h.len] = '\0';
	assert_int_equal(wire_check_csum(&r->h, r->payload), 0);
	return 0;
}

static inline void t_reply_free(struct t_reply *r)
{
	free(r->payload);
	r->payload = NULL;
}

/* One request, one answer: returns the answer's status (the reply is kept
 * in *r when r is not NULL; the caller frees it). */
static inline uint32_t t_call(struct ufo_conn *c, uint16_t op, const void *p1,
		       size_t l1, const void *p2, size_t l2, struct t_reply *r)
{
	struct t_reply mine;
	uint64_t id = t_next_req();

	if (!r)
		r = &mine;
	assert_int_equal(frame_send(c, WIRE_VERSION_MAX, op, id, 0, p1, l1, p2,
				    l2, T_SRV_WAIT_MS), 0);
	assert_int_equal(t_recv(c, r), 0);
	assert_int_equal(r->h.op, op | WIRE_RESPONSE);
	assert_true(r->h.req_id == id);
	if (r == &mine)
		t_reply_free(r);
	return r->h.status;
}

/* ---- operations; each returns the status */

static inline uint32_t t_create(struct ufo_conn *c, const char *name, uint64_t size,
			 uint32_t chunk, struct wire_objinfo *info)
{
	struct wire_create cr = { .size = htole64(size),
				  .chunk_size = htole32(chunk),
				  .name_len = htole16((uint16_t)strlen(name)) };
	struct t_reply r;
	uint32_t st = t_call(c, WIRE_CREATE, &cr, sizeof(cr), name,
			     strlen(name), &r);

	if (!st && info) {
		assert_int_equal(r.h.len, sizeof(*info));
		memcpy(info, r.payload, sizeof(*info));
	}
	t_reply_free(&r);
	return st;
}

static inline uint32_t t_named(struct ufo_conn *c, uint16_t op, const char *name,
			struct wire_objinfo *info)
{
	struct wire_name n = { .name_len = htole16((uint16_t)strlen(name)) };
	struct t_reply r;
	uint32_t st = t_call(c, op, &n, sizeof(n), name, strlen(name), &r);

	if (!st && info) {
		assert_int_equal(r.h.len, sizeof(*info));
		memcpy(info, r.payload, sizeof(*info));
	}
	t_reply_free(&r);
	return st;
}

static inline uint32_t t_write(struct ufo_conn *c, uint64_t id, uint64_t off,
			const void *buf, uint32_t len)
{
	struct wire_io io = { .id = htole64(id), .offset = htole64(off),
			      .len = htole32(len) };

	return t_call(c, WIRE_WRITE, &io, sizeof(io), buf, len, NULL);
}

static inline uint32_t t_read(struct ufo_conn *c, uint64_t id, uint64_t off,
		       void *buf, uint32_t len)
{
	struct wire_io io = { .id = htole64(id), .offset = htole64(off),
			      .len = htole32(len) };
	struct t_reply r;
	uint32_t st = t_call(c, WIRE_READ, &io, sizeof(io), NULL, 0, &r);

	if (!st) {
		assert_int_equal(r.h.len, len);
		memcpy(buf, r.payload, len);
	}
	t_reply_free(&r);
	return st;
}

/* Fills buf with a pattern that identifies seed at every byte offset. */
static inline void t_pattern(void *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

/* A second, authenticated client that must keep getting right answers. */
static inline void t_ping_ok(struct ufo_conn *c)
{
	assert_int_equal(t_call(c, WIRE_PING, NULL, 0, NULL, 0, NULL), WIRE_OK);
}

/* ---- raw frames, for the tests that break the rules */

/* Sends a header exactly as given (host order; converted here) followed
 * by len payload bytes; csum computed unless bad_csum. */
static inline int t_send_raw(struct ufo_conn *c, struct wire_hdr h, const void *p,
		      size_t len, bool bad_csum)
{
	uint8_t raw[sizeof(h)];
	struct iovec iov[2] = { { raw, sizeof(raw) }, { (void *)p, len } };

	h.csum = wire_csum_iov(&iov[1], 1) ^ (bad_csum ? 1 : 0);
	wire_put_hdr(raw, sizeof(raw), &h);
	return conn_send(c, iov, len ? 2 : 1, T_SRV_WAIT_MS);
}

static inline struct wire_hdr t_hdr(uint16_t version, uint16_t op, uint32_t len)
{
	struct wire_hdr h = { .magic = WIRE_MAGIC, .version = version,
			      .op = op, .req_id = t_next_req(), .len = len };
	return h;
}

/* True when the server closed c: a receive ends with EOF or reset
 * (within T_SRV_WAIT_MS), after any frames still in flight. */
static inline bool t_closed(struct ufo_conn *c)
{
	struct t_reply r;
	int rc;

	while ((rc = t_recv(c, &r)) == 0)
		t_reply_free(&r);
	t_reply_free(&r);
	return rc == -ECONNRESET || rc == -EPIPE;
}

#endif /* T_SRV_H */
