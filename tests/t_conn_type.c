/* SPDX-License-Identifier: MIT */
/*
 * One connection type for both sides (transport.h): a client connection
 * made by connect and a server one made by listen and accept (the ops
 * the server's loop uses) are the same type, and each side can use
 * either half.  Here the accepted side runs the non-blocking half the way
 * ufo-server's loop does (read, writev, wait_fds, event), and the client
 * the blocking half, over TCP and TLS on loopback (t_conn_type tcp|tls:
 * two tests, so that the TLS one can skip alone).  RDMA's connection
 * type, whose blocking half is the client's only, is exercised by the
 * rdma suite in the QEMU guest.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "t_certs.h"
#include "t_helpers.h" /* t_fill only: nothing of libufo is linked */
#include "transport.h"

#define WAIT_MS 5000
/* More than both socket buffers hold (each up to 2 x 4 MiB here). */
#define BIG (32u << 20)
#define CHUNK (1u << 20)

static struct t_certs certs;
static char dir[] = "/tmp/t_conn_type.XXXXXX";

/* ---- a listener, and the accepted socket */

struct pair {
	struct ufo_conn *client, *server;
	struct tls_server *ts; /* TLS: outlives its sessions */
};

/* Listens with t's ops on a free loopback port. */
static struct ufo_listener *listen_any(const struct ufo_transport_ops *t,
				       const struct tls_server *ts,
				       uint16_t *port)
{
	struct net_addr a = { .host = "127.0.0.1", .port = 0 };
	struct ufo_listen_opts o = { .backlog = 8, .tls = ts };
	struct ufo_listener *l = NULL;

	int got;

	assert_int_equal(t->listen(&a, &o, &l), 0);
	assert_ptr_equal(l->ops, t);
	got = t->listener_port(l);
	assert_true(got > 0 && got <= 65535);
	*port = (uint16_t)got;
	return l;
}

/* The connection l has pending, waited for: one of l's type. */
static struct ufo_conn *accept_one(struct ufo_listener *l)
{
	struct ufo_conn *c = NULL;

	assert_int_equal(net_wait_fd(l->ops->listener_fd(l), POLLIN, WAIT_MS),
			 0);
	assert_int_equal(l->ops->accept(l, &c), UFO_ACCEPT_NEW);
	assert_ptr_equal(c->ops, l->ops);
	return c;
}

static void pair_tcp(struct pair *p)
{
	uint16_t port;
	struct ufo_listener *l = listen_any(&ufo_tcp_transport, NULL, &port);
	struct net_addr a = { .host = "127.0.0.1", .port = port };
	struct ufo_conn *none = NULL;

	assert_int_equal(l->ops->accept(l, &none), UFO_ACCEPT_NONE);
	assert_int_equal(ufo_tcp_transport.connect(&a, WAIT_MS, &p->client), 0);
	p->server = accept_one(l);
	l->ops->listener_close(l);
}

/* The client's connect runs the whole TLS handshake, blocking, while the
 * accepted side advances it with event as the server's loop does. */
struct tls_connector {
	uint16_t port;
	struct ufo_conn *c;
	int rc;
};

static void *tls_connect_thread(void *arg)
{
	struct tls_connector *t = arg;
	struct net_addr a = { .host = "127.0.0.1", .port = t->port };

	t->rc = ufo_tls_transport.connect(&a, WAIT_MS, &t->c);
	return NULL;
}

/* Drives the accepted side's handshake to its end: the last event's
 * bits, or the first error. */
static int drive_handshake(struct ufo_conn *s)
{
	int rc;

	for (;;) {
		struct pollfd p[UFO_CONN_MAX_FDS];
		int n = s->ops->wait_fds(s, POLLIN, p);

		if ((rc = net_wait_fds(p, n, WAIT_MS)))
			return rc;
		if ((rc = s->ops->event(s)))
			return rc;
	}
}

/* 0, or the accepted side's error (and the client's in *client_rc). */
static int pair_tls(struct pair *p, const char *ca, int *client_rc)
{
	struct tls_connector t = { 0 };
	char why[256];
	struct ufo_listener *l;
	pthread_t th;
	int rc;

	setenv("UFO_TLS_CA_FILE", ca, 1);
	assert_int_equal(tls_server_new(certs.cert, certs.key, &p->ts, why,
					sizeof(why)), 0);
	l = listen_any(&ufo_tls_transport, p->ts, &t.port);
	assert_int_equal(pthread_create(&th, NULL, tls_connect_thread, &t), 0);
	p->server = accept_one(l);
	/* Nothing moves beside the handshake while it runs. */
	{
		char b;
		struct iovec v = { &b, 1 };

		assert_int_equal(p->server->ops->read(p->server, &b, 1),
				 -EAGAIN);
		assert_int_equal(p->server->ops->writev(p->server, &v, 1),
				 -EAGAIN);
	}
	rc = drive_handshake(p->server);
	pthread_join(th, NULL);
	l->ops->listener_close(l);
	p->client = t.c;
	if (rc > 0) {
		assert_int_equal(t.rc, 0);
		/* Done: the reader must look at the session now. */
		assert_true(rc & UFO_EV_READABLE);
		return 0;
	}
	*client_rc = t.rc;
	return rc;
}

static void pair_close(struct pair *p)
{
	conn_close(p->client);
	conn_close(p->server);
	tls_server_free(p->ts);
}

/* ---- the checks, for any stream type */

/* Same for writing: a prefix at a time, the same first iovec after
 * -EAGAIN. */
static void nb_write_all(struct ufo_conn *s, const uint8_t *buf, size_t n)
{
	size_t off = 0;

	while (off < n) {
		struct iovec v = { (void *)(buf + off), n - off };
		ssize_t k = s->ops->writev(s, &v, 1);

		if (k > 0) {
			off += (size_t)k;
			continue;
		}
		assert_int_equal(k, -EAGAIN);
		assert_int_equal(conn_wait(s, POLLOUT, WAIT_MS), 0);
	}
}

struct peer {
	struct ufo_conn *c;
	uint8_t *buf;
	size_t n;
	int rc;
};

static void *send_thread(void *arg)
{
	struct peer *s = arg;
	/* An empty iovec in the middle: skipped, not sent as a record. */
	struct iovec v[3] = { { s->buf, 1 }, { s->buf + 1, 0 },
			      { s->buf + 1, s->n - 1 } };

	s->rc = conn_send(s->c, v, 3, WAIT_MS);
	return NULL;
}

static void *recv_thread(void *arg)
{
	struct peer *r = arg;

	r->rc = conn_recv(r->c, r->buf, r->n, WAIT_MS);
	return NULL;
}

/* The server's half moves both directions at once, as the loop does:
 * reads what is there, writes what the socket takes (the same first
 * iovec after -EAGAIN: it starts at the first unsent byte), and waits for
 * whichever it still needs only when neither moved. */
static void nb_both(struct ufo_conn *s, uint8_t *in, size_t nin,
		    const uint8_t *out, size_t nout)
{
	size_t got = 0, sent = 0;

	while (got < nin || sent < nout) {
		bool moved = false;
		ssize_t k;

		if (got < nin) {
			k = s->ops->read(s, in + got, nin - got);
			if (k != -EAGAIN) {
				assert_true(k > 0);
				got += (size_t)k;
				moved = true;
			}
		}
		if (sent < nout) {
			struct iovec v = { (void *)(out + sent), nout - sent };

			k = s->ops->writev(s, &v, 1);
			if (k != -EAGAIN) {
				assert_true(k > 0);
				sent += (size_t)k;
				moved = true;
			}
		}
		if (!moved)
			assert_int_equal(
				conn_wait(s, (got < nin ? POLLIN : 0) |
					     (sent < nout ? POLLOUT : 0),
					  WAIT_MS),
				0);
	}
}

/* Both directions at once, more than the socket buffers hold: the
 * client's blocking sender and reader on two threads, on one session (as
 * the client's connection shares it), against the server's non-blocking
 * half moving both directions on one thread. */
static void check_both_ways(struct pair *p)
{
	uint8_t *up = malloc(BIG), *down = malloc(BIG), *got = malloc(BIG),
		*got_down = calloc(1, BIG);
	struct peer s = { p->client, up, BIG, -1 };
	struct peer r = { p->client, got_down, BIG, -1 };
	pthread_t ts, tr;

	assert_non_null(up);
	assert_non_null(down);
	assert_non_null(got);
	assert_non_null(got_down);
	t_fill(up, sizeof(uint64_t), 1, 0, BIG / sizeof(uint64_t));
	t_fill(down, sizeof(uint64_t), 2, 0, BIG / sizeof(uint64_t));
	assert_int_equal(pthread_create(&ts, NULL, send_thread, &s), 0);
	assert_int_equal(pthread_create(&tr, NULL, recv_thread, &r), 0);
	nb_both(p->server, got, BIG, down, BIG);
	pthread_join(ts, NULL);
	pthread_join(tr, NULL);
	assert_int_equal(s.rc, 0);
	assert_int_equal(r.rc, 0);
	assert_memory_equal(got, up, BIG);
	assert_memory_equal(got_down, down, BIG);
	free(up);
	free(down);
	free(got);
	free(got_down);
}

static void check_idle_and_eof(struct pair *p)
{
	uint8_t b;

	/* Nothing sent: -EAGAIN, and a blocking read times out. */
	assert_int_equal(p->server->ops->read(p->server, &b, 1), -EAGAIN);
	assert_int_equal(conn_recv(p->client, &b, 1, 50), -ETIMEDOUT);
	/* The client leaves: the server's reader sees -ECONNRESET. */
	conn_close(p->client);
	p->client = NULL;
	for (;;) {
		ssize_t k = p->server->ops->read(p->server, &b, 1);

		if (k != -EAGAIN) {
			assert_int_equal(k, -ECONNRESET);
			break;
		}
		assert_int_equal(conn_wait(p->server, POLLIN, WAIT_MS), 0);
	}
}

static void test_tcp_one_type(void **state)
{
	struct pair p = { 0 };

	(void)state;
	pair_tcp(&p);
	assert_ptr_equal(p.client->ops, p.server->ops);
	check_both_ways(&p);
	check_idle_and_eof(&p);
	pair_close(&p);
}

static void test_tcp_writev_prefix(void **state)
{
	struct pair p = { 0 };
	uint8_t *buf = calloc(1, CHUNK), *sink = malloc(CHUNK);
	struct iovec v[2] = { { buf, CHUNK / 2 }, { buf + CHUNK / 2, CHUNK / 2 } };
	size_t taken = 0;
	ssize_t k;

	(void)state;
	assert_non_null(buf);
	assert_non_null(sink);
	pair_tcp(&p);
	/* With nobody reading, the socket takes prefixes, then -EAGAIN; a
	 * bounded wait for room times out. */
	while ((k = p.server->ops->writev(p.server, v, 2)) > 0) {
		assert_true((size_t)k <= CHUNK);
		taken += (size_t)k;
		assert_true(taken < (1u << 30)); /* a socket holds less */
	}
	assert_int_equal(k, -EAGAIN);
	assert_true(taken > 0);
	assert_int_equal(conn_wait(p.server, POLLOUT, 50), -ETIMEDOUT);
	/* The reader drains: there is room again. */
	while (taken) {
		size_t n = taken < CHUNK ? taken : CHUNK;

		assert_int_equal(conn_recv(p.client, sink, n, WAIT_MS), 0);
		taken -= n;
	}
	nb_write_all(p.server, buf, CHUNK);
	assert_int_equal(conn_recv(p.client, sink, CHUNK, WAIT_MS), 0);
	free(buf);
	free(sink);
	pair_close(&p);
}

static void test_tls_one_type(void **state)
{
	struct pair p = { 0 };

	(void)state;
	int client_rc;

	assert_int_equal(pair_tls(&p, certs.ca, &client_rc), 0);
	assert_ptr_equal(p.client->ops, p.server->ops);
	assert_ptr_equal(p.client->ops, &ufo_tls_transport);
	check_both_ways(&p);
	check_idle_and_eof(&p);
	pair_close(&p);
}

static void test_tls_untrusted(void **state)
{
	struct pair p = { 0 };
	const char *why;
	int rc, client_rc;

	(void)state;
	/* The client trusts another CA: it fails, and the accepted side's
	 * handshake fails with the transport's reason. */
	rc = pair_tls(&p, certs.other_ca, &client_rc);
	assert_true(rc < 0);
	assert_int_equal(client_rc, -EKEYREJECTED);
	why = p.server->ops->last_error(p.server);
	assert_non_null(why);
	assert_non_null(strstr(why, "TLS handshake failed"));
	pair_close(&p);
}

/* The TLS tests need the openssl tool (for certificates) and GnuTLS:
 * 0 when ready, 77 (skip) without either, 1 when set-up failed; says
 * why. */
static int tls_ready(void)
{
	struct tls_server *ts;
	char why[256];
	int rc;

	if (!t_certs_tool()) {
		fprintf(stderr, "no openssl tool to make certificates: "
			"skipping\n");
		return 77;
	}
	if (!mkdtemp(dir) || t_certs_make(dir, &certs)) {
		fprintf(stderr, "making certificates in %s failed\n", dir);
		return 1;
	}
	rc = tls_server_new(certs.cert, certs.key, &ts, why, sizeof(why));
	if (rc == -EOPNOTSUPP) {
		fprintf(stderr, "built without GnuTLS: skipping\n");
		return 77;
	}
	if (rc) {
		fprintf(stderr, "loading the certificate: %s\n", why);
		return 1;
	}
	tls_server_free(ts);
	return 0;
}

static void remove_dir(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tcp[] = {
		cmocka_unit_test(test_tcp_one_type),
		cmocka_unit_test(test_tcp_writev_prefix),
	};
	const struct CMUnitTest tls[] = {
		cmocka_unit_test(test_tls_one_type),
		cmocka_unit_test(test_tls_untrusted),
	};
	int rc;

	if (argc == 2 && !strcmp(argv[1], "tcp"))
		return cmocka_run_group_tests(tcp, NULL, NULL);
	if (argc != 2 || strcmp(argv[1], "tls")) {
		fprintf(stderr, "usage: t_conn_type tcp|tls\n");
		return 2;
	}
	if (!(rc = tls_ready()))
		rc = cmocka_run_group_tests(tls, NULL, NULL);
	remove_dir();
	return rc;
}
