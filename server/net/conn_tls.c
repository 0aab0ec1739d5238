/* SPDX-License-Identifier: MIT */
/*
 * The TLS connection type (--tls-cert, --tls-key): GnuTLS records over the
 * accepted socket, non-blocking, in the loop's epoll set like TCP.  No
 * thread of its own: the loop runs the TLS handshake one step per
 * readiness (event), then the session is read and written like a socket.
 *
 * Threads.  GnuTLS allows a session to be shared by two threads, one
 * receiving and one sending, once the handshake is over (GnuTLS manual,
 * "Thread safety"; renegotiation is the exception, and is refused here):
 * recv runs on the loop thread without c->lock, sendv under c->lock on any
 * thread.  While handshaking, only event (loop thread, under c->lock)
 * touches the session: recv and sendv answer -EAGAIN without calling
 * GnuTLS, so nothing is sent or received beside the handshake.  handshaking
 * is therefore written only on the loop thread under c->lock, and read
 * either on the loop thread or under c->lock.
 *
 * The handshake is bounded like the shared-secret one that follows inside
 * it: hs.state is not DONE until AUTH, so the loop's auth deadline
 * (--auth-timeout-ms, expire_handshakes) closes a client that stalls in
 * either, and --max-connections counts it from accept.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

/* One TLS record's worth of plaintext per sendv: a record is the unit
 * GnuTLS sends or, after GNUTLS_E_AGAIN, must be given again. */
#define TLS_SEND_MAX 16384

/* The server's certificate and priorities: srv->tls, set up once. */
struct server_tls {
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
};

struct tls_conn {
	gnutls_session_t s;
	bool handshaking;
	uint32_t hs_events; /* what the handshake waits for (EPOLLIN/OUT) */
};

static struct tls_conn *tls_of(struct conn *c)
{
	return c->tp;
}

static ssize_t tls_recv(struct conn *c, void *buf, size_t len)
{
	struct tls_conn *t = tls_of(c);
	ssize_t n;

	if (t->handshaking)
		return -EAGAIN;
	n = gnutls_record_recv(t->s, buf, len);
	if (n > 0)
		return n;
	if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
		return -EAGAIN;
	if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION)
		return -ECONNRESET;
	/* GNUTLS_E_REHANDSHAKE too: renegotiation would need both
	 * directions on one thread (see the top of this file). */
	log_debug("fd %d: TLS receive: %s", c->fd, gnutls_strerror((int)n));
	return -EPROTO;
}

/* Only the first iovec, at most one record: after GNUTLS_E_AGAIN GnuTLS
 * must be called again with the same data, and conn.c's flush_locked
 * guarantees that the next call's first iovec is the same (conn_type). */
static ssize_t tls_sendv(struct conn *c, const struct iovec *iov,
			 int iovcnt)
{
	struct tls_conn *t = tls_of(c);
	size_t len = iov[0].iov_len < TLS_SEND_MAX ? iov[0].iov_len
						   : TLS_SEND_MAX;
	ssize_t n;

	(void)iovcnt;
	if (t->handshaking)
		return -EAGAIN;
	n = gnutls_record_send(t->s, iov[0].iov_base, len);
	if (n >= 0)
		return n;
	if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
		return -EAGAIN;
	log_debug("fd %d: TLS send: %s", c->fd, gnutls_strerror((int)n));
	return -ECONNRESET;
}

/* While handshaking, the socket is watched for what GnuTLS waits for, not
 * what conn.c wants (c->events); event restores c->events once done. */
static int tls_watch(struct conn *c, uint32_t want, bool add)
{
	struct tls_conn *t = tls_of(c);

	return conn_sock_watch(c, t->handshaking ? t->hs_events : want, add);
}

/* One step of the handshake.  Done: the socket is watched for what conn.c
 * wants, and read once by the loop, since the client's first frames may
 * have come with its Finished and wait decrypted in GnuTLS. */
static int tls_event(struct conn *c, uint32_t events)
{
	struct tls_conn *t = tls_of(c);
	int rc;

	(void)events;
	if (!t->handshaking)
		return 0;
	rc = gnutls_handshake(t->s);
	/* GNUTLS_E_AGAIN, or a warning alert: the handshake goes on. */
	if (rc < 0 && !gnutls_error_is_fatal(rc)) {
		t->hs_events = gnutls_record_get_direction(t->s) ? EPOLLOUT
								 : EPOLLIN;
		return c->registered ? conn_sock_watch(c, t->hs_events, false) : 0;
	}
	if (rc < 0) {
		log_info("fd %d: TLS handshake failed: %s", c->fd,
			 gnutls_strerror(rc));
		return -EPROTO;
	}
	t->handshaking = false;
	log_debug("fd %d: TLS handshake done", c->fd);
	loop_read_later(c);
	return c->registered ? conn_sock_watch(c, c->events, false) : 0;
}

/* Reaped: no request is in flight, so no other thread sends.  A
 * close_notify if the socket takes it at once; never waits. */
static void tls_shutdown(struct conn *c)
{
	struct tls_conn *t = tls_of(c);

	pthread_mutex_lock(&c->lock);
	if (!t->handshaking && !c->dead)
		gnutls_bye(t->s, GNUTLS_SHUT_WR);
	pthread_mutex_unlock(&c->lock);
	conn_sock_shutdown(c);
}

static void tls_close(struct conn *c)
{
	struct tls_conn *t = tls_of(c);

	gnutls_deinit(t->s);
	free(t);
	conn_sock_close(c);
}

const struct conn_type conn_tls = {
	.name = "tls",
	.recv = tls_recv,
	.sendv = tls_sendv,
	.watch = tls_watch,
	.unwatch = conn_sock_unwatch,
	.event = tls_event,
	.buffers = true, /* decrypted records epoll cannot see */
	.shutdown = tls_shutdown,
	.close = tls_close,
};

void *conn_tls_new(struct server *srv, int fd)
{
	struct tls_conn *t = calloc(1, sizeof(*t));
	int fl = fcntl(fd, F_GETFL);

	if (!t)
		return NULL;
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) ||
	    gnutls_init(&t->s, GNUTLS_SERVER | GNUTLS_NO_SIGNAL) ||
	    gnutls_priority_set(t->s, srv->tls->prio) ||
	    gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE,
				   srv->tls->cred)) {
		if (t->s)
			gnutls_deinit(t->s);
		free(t);
		return NULL;
	}
	gnutls_certificate_server_set_request(t->s, GNUTLS_CERT_IGNORE);
	gnutls_transport_set_int(t->s, fd);
	/* The loop's auth deadline bounds it (top of this file). */
	gnutls_handshake_set_timeout(t->s, GNUTLS_INDEFINITE_TIMEOUT);
	t->handshaking = true;
	t->hs_events = EPOLLIN; /* the ClientHello */
	return t;
}

static void tls_free(struct server_tls *tls)
{
	if (tls->cred)
		gnutls_certificate_free_credentials(tls->cred);
	if (tls->prio)
		gnutls_priority_deinit(tls->prio);
	free(tls);
}

int conn_tls_setup(struct server *srv)
{
	const struct server_config *cfg = &srv->cfg;
	struct server_tls *tls;
	int rc;

	if (!cfg->tls_cert[0])
		return 0;
	tls = calloc(1, sizeof(*tls));
	if (!tls || gnutls_certificate_allocate_credentials(&tls->cred) ||
	    gnutls_priority_init(&tls->prio, NULL, NULL)) {
		if (tls)
			tls_free(tls);
		return -ENOMEM;
	}
	rc = gnutls_certificate_set_x509_key_file(tls->cred, cfg->tls_cert,
						  cfg->tls_key,
						  GNUTLS_X509_FMT_PEM);
	if (rc < 0) {
		log_err("--tls-cert %s / --tls-key %s: %s", cfg->tls_cert,
			cfg->tls_key, gnutls_strerror(rc));
		tls_free(tls);
		return -EINVAL;
	}
	srv->tls = tls;
	log_info("TLS on: connections to the listening port must use tls://");
	return 0;
}

void conn_tls_cleanup(struct server *srv)
{
	if (srv->tls)
		tls_free(srv->tls);
	srv->tls = NULL;
}
