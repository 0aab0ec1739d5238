/* SPDX-License-Identifier: MIT */
/*
 * The TLS connection type (tls:// URLs, ufo-server --tls-cert): a TCP
 * socket inside a GnuTLS session, non-blocking, one type for both sides.
 * The client connects here; ufo-server listens (through a TCP listener),
 * accepts and drives the handshake one step per readiness (event) from
 * its event loop, with no thread of its own.  The client's server
 * certificate must chain to the CA file in $UFO_TLS_CA_FILE, or to the
 * system's trust store when that is unset, and must name the host of the
 * URL (a DNS name or an IP address).  The shared-secret handshake still
 * runs inside, so a client needs both the CA and the secret.
 *
 * Threads.  GnuTLS allows a session to be shared by two threads, one
 * receiving and one sending, once the handshake is over (GnuTLS manual,
 * "Thread safety"; renegotiation is the exception, and is refused): the
 * client's reader and sender, the server's loop and whichever thread
 * answers, rely on that.  While handshaking, only event touches the
 * session: read and writev answer -EAGAIN without calling GnuTLS, so
 * nothing is sent or received beside the handshake.  The server runs
 * event under the connection's lock, which its senders take too; the
 * client finishes the handshake in connect, before anyone else has c.
 * TLS 1.3 KeyUpdate: receiving one that asks for an update makes the
 * reading thread switch the send keys too (GnuTLS lib/tls13/key_update.c);
 * GnuTLS orders that against a concurrent sender with its own epoch
 * lock, and limits a peer to about one KeyUpdate a second.
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport.h"

/* One TLS record's worth of plaintext per writev: a record is the unit
 * GnuTLS sends or, after GNUTLS_E_AGAIN, must be given again. */
#define TLS_SEND_MAX 16384

struct tls_conn {
	struct ufo_conn base; /* first: container_of by cast */
	int fd;
	gnutls_session_t s;
	gnutls_certificate_credentials_t cred; /* the client's own */
	bool handshaking;
	uint32_t hs_events; /* what the handshake waits for (POLLIN/OUT) */
	/* Why the handshake failed (last_error).  Written by event only,
	 * which nothing runs beside (the threads note above). */
	char err[160];
};

/* The server's certificate and priorities, shared by its sessions. */
struct tls_server {
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
};

static struct tls_conn *tls_of(struct ufo_conn *c)
{
	return (struct tls_conn *)c;
}

/* GnuTLS codes to the transport's errnos. */
static int tls_errno(int rc)
{
	switch (rc) {
	case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
	case GNUTLS_E_CERTIFICATE_ERROR:
		return -EKEYREJECTED;
	case GNUTLS_E_TIMEDOUT:
		return -ETIMEDOUT;
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_PULL_ERROR:
	case GNUTLS_E_PUSH_ERROR:
		return -ECONNRESET;
	case GNUTLS_E_MEMORY_ERROR:
		return -ENOMEM;
	default:
		/* Not TLS, TLS we do not speak, or GNUTLS_E_REHANDSHAKE:
		 * renegotiation would need both directions on one thread. */
		return -EPROTO;
	}
}

/* Records why the handshake failed, for last_error; returns the errno. */
static int handshake_failed(struct tls_conn *t, int rc)
{
	snprintf(t->err, sizeof(t->err), "TLS handshake failed: %s",
		 gnutls_strerror(rc));
	return tls_errno(rc);
}

static const char *tls_last_error(struct ufo_conn *c)
{
	return tls_of(c)->err[0] ? tls_of(c)->err : NULL;
}

/* ---- the non-blocking half */

static ssize_t tls_read(struct ufo_conn *c, void *buf, size_t len)
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
	return n == 0 ? -ECONNRESET : tls_errno((int)n);
}

/* Only the first iovec, at most one record: after GNUTLS_E_AGAIN GnuTLS
 * must be called again with the same data, which writev's contract
 * guarantees. */
static ssize_t tls_writev(struct ufo_conn *c, const struct iovec *iov,
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
	return tls_errno((int)n);
}

/* While handshaking the socket is waited on for what GnuTLS waits for,
 * not for what the caller wants. */
static int tls_wait_fds(struct ufo_conn *c, uint32_t want,
			struct pollfd fds[UFO_CONN_MAX_FDS])
{
	struct tls_conn *t = tls_of(c);
	uint32_t ev = t->handshaking ? t->hs_events : want;

	fds[0] = (struct pollfd){ .fd = t->fd, .events = (short)ev };
	return 1;
}

/* One step of the handshake.  Done: the reader must look at the session
 * at once, since the peer's first records may have come with its
 * Finished and wait decrypted in GnuTLS. */
static int tls_event(struct ufo_conn *c)
{
	struct tls_conn *t = tls_of(c);
	int rc;

	if (!t->handshaking)
		return 0;
	/* A warning alert: the handshake goes on at once (what follows it
	 * may already wait inside GnuTLS).  GNUTLS_E_AGAIN: wait for the
	 * socket in the direction GnuTLS needs. */
	do
		rc = gnutls_handshake(t->s);
	while (rc < 0 && !gnutls_error_is_fatal(rc) && rc != GNUTLS_E_AGAIN &&
	       rc != GNUTLS_E_INTERRUPTED);
	if (rc < 0 && !gnutls_error_is_fatal(rc)) {
		t->hs_events = gnutls_record_get_direction(t->s) ? POLLOUT
								 : POLLIN;
		return 0;
	}
	if (rc < 0)
		return handshake_failed(t, rc);
	t->handshaking = false;
	return UFO_EV_READABLE | UFO_EV_WRITABLE;
}

static void tls_bye(struct ufo_conn *c)
{
	struct tls_conn *t = tls_of(c);

	if (!t->handshaking)
		gnutls_bye(t->s, GNUTLS_SHUT_WR);
}

static void tls_shutdown(struct ufo_conn *c)
{
	shutdown(tls_of(c)->fd, SHUT_RDWR);
}

static void tls_close(struct ufo_conn *c)
{
	struct tls_conn *t = tls_of(c);

	if (t->s)
		gnutls_deinit(t->s);
	if (t->cred)
		gnutls_certificate_free_credentials(t->cred);
	if (t->fd >= 0)
		close(t->fd);
	free(t);
}

/* ---- the client */

static int load_trust(gnutls_certificate_credentials_t cred)
{
	const char *ca = getenv("UFO_TLS_CA_FILE");
	int n = ca && *ca ? gnutls_certificate_set_x509_trust_file(
				    cred, ca, GNUTLS_X509_FMT_PEM)
			  : gnutls_certificate_set_x509_system_trust(cred);

	if (n == GNUTLS_E_FILE_ERROR)
		return -ENOENT;
	return n <= 0 ? -EINVAL : 0; /* no CA loaded: nothing could verify */
}

static int session_setup(struct tls_conn *t, const struct net_addr *a)
{
	int rc;

	if (gnutls_certificate_allocate_credentials(&t->cred))
		return -ENOMEM;
	if ((rc = load_trust(t->cred)))
		return rc;
	/* GNUTLS_NO_SIGNAL: GnuTLS sends with MSG_NOSIGNAL, so a server that
	 * closes while we write gives -ECONNRESET, not a SIGPIPE that kills
	 * the application (which may not ignore SIGPIPE, as it need not over
	 * tcp://, where we send with MSG_NOSIGNAL ourselves). */
	if (gnutls_init(&t->s, GNUTLS_CLIENT | GNUTLS_NONBLOCK |
			       GNUTLS_NO_SIGNAL))
		return -ENOMEM;
	t->base.ops = &ufo_tls_transport;
	if (gnutls_set_default_priority(t->s) ||
	    gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, t->cred))
		return -EINVAL;
	/* SNI for names only: an IP literal is checked against the
	 * certificate's IP addresses, never sent as a server name. */
	if (!strchr(a->host, ':') && strspn(a->host, "0123456789.") != strlen(a->host))
		gnutls_server_name_set(t->s, GNUTLS_NAME_DNS, a->host,
				       strlen(a->host));
	gnutls_session_set_verify_cert(t->s, a->host, 0);
	gnutls_transport_set_int(t->s, t->fd);
	return 0;
}

static int tls_connect(const struct net_addr *a, int timeout_ms,
		       struct ufo_conn **out)
{
	struct tls_conn *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return -ENOMEM;
	t->fd = tcp_connect_fd(a, timeout_ms);
	rc = t->fd < 0 ? t->fd : session_setup(t, a);
	/* The handshake, one step per readiness, as the server runs its. */
	t->handshaking = true;
	t->hs_events = POLLOUT; /* the ClientHello */
	while (!rc && t->handshaking)
		rc = conn_wait(&t->base, 0, timeout_ms);
	if (rc) {
		tls_close(&t->base);
		return rc;
	}
	*out = &t->base;
	return 0;
}

/* ---- the server */

void tls_server_free(struct tls_server *ts)
{
	if (!ts)
		return;
	if (ts->cred)
		gnutls_certificate_free_credentials(ts->cred);
	if (ts->prio)
		gnutls_priority_deinit(ts->prio);
	free(ts);
}

int tls_server_new(const char *cert, const char *key, struct tls_server **out,
		   char *err, size_t err_cap)
{
	struct tls_server *ts = calloc(1, sizeof(*ts));
	int rc;

	if (!ts || gnutls_certificate_allocate_credentials(&ts->cred) ||
	    gnutls_priority_init(&ts->prio, NULL, NULL)) {
		tls_server_free(ts);
		snprintf(err, err_cap, "out of memory");
		return -ENOMEM;
	}
	rc = gnutls_certificate_set_x509_key_file(ts->cred, cert, key,
						  GNUTLS_X509_FMT_PEM);
	if (rc < 0) {
		snprintf(err, err_cap, "%s", gnutls_strerror(rc));
		tls_server_free(ts);
		return -EINVAL;
	}
	*out = ts;
	return 0;
}

/* Wraps an accepted, tuned socket as a connection whose handshake the
 * owner advances with event (owns fd on success only). */
static int tls_wrap(const struct tls_server *ts, int fd, struct ufo_conn **out)
{
	struct tls_conn *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->fd = -1; /* fd stays the caller's unless we succeed */
	t->base.ops = &ufo_tls_transport;
	if (gnutls_init(&t->s, GNUTLS_SERVER | GNUTLS_NO_SIGNAL) ||
	    gnutls_priority_set(t->s, ts->prio) ||
	    gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, ts->cred)) {
		tls_close(&t->base);
		return -ENOMEM;
	}
	gnutls_certificate_server_set_request(t->s, GNUTLS_CERT_IGNORE);
	gnutls_transport_set_int(t->s, fd);
	/* The server's own deadline bounds it (--auth-timeout-ms). */
	gnutls_handshake_set_timeout(t->s, GNUTLS_INDEFINITE_TIMEOUT);
	t->fd = fd;
	t->handshaking = true;
	t->hs_events = POLLIN; /* the ClientHello */
	*out = &t->base;
	return 0;
}

/* TLS listens through TCP: the TCP listener's sockets, each wrapped. */
struct tls_listener {
	struct ufo_listener base; /* first: the ops cast back */
	struct ufo_listener *tcp;
	const struct tls_server *ts;
};

static struct tls_listener *tsl_of(const struct ufo_listener *l)
{
	return (struct tls_listener *)l;
}

static int tls_listen(const struct net_addr *a,
		      const struct ufo_listen_opts *o, struct ufo_listener **out)
{
	struct tls_listener *l;
	int rc;

	if (!o || !o->tls)
		return -EINVAL;
	if (!(l = calloc(1, sizeof(*l))))
		return -ENOMEM;
	if ((rc = ufo_tcp_transport.listen(a, o, &l->tcp))) {
		free(l);
		return rc;
	}
	l->base.ops = &ufo_tls_transport;
	l->ts = o->tls;
	*out = &l->base;
	return 0;
}

static int tls_listener_fd(const struct ufo_listener *l)
{
	return ufo_tcp_transport.listener_fd(tsl_of(l)->tcp);
}

static int tls_listener_port(const struct ufo_listener *l)
{
	return ufo_tcp_transport.listener_port(tsl_of(l)->tcp);
}

static int wrap_tls(int fd, const void *ts, struct ufo_conn **out)
{
	return tls_wrap(ts, fd, out);
}

static int tls_accept(struct ufo_listener *l, struct ufo_conn **out)
{
	return tcp_accept_as(tsl_of(l)->tcp, wrap_tls, tsl_of(l)->ts, out);
}

static void tls_listener_close(struct ufo_listener *l)
{
	if (!l)
		return;
	ufo_tcp_transport.listener_close(tsl_of(l)->tcp);
	free(l);
}

const struct ufo_transport_ops ufo_tls_transport = {
	.name = "tls",
	.connect = tls_connect,
	.listen = tls_listen,
	.listener_fd = tls_listener_fd,
	.listener_port = tls_listener_port,
	.accept = tls_accept,
	.listener_close = tls_listener_close,
	.read = tls_read,
	.writev = tls_writev,
	.wait_fds = tls_wait_fds,
	.event = tls_event,
	.buffers = true, /* decrypted records poll cannot see */
	.send = conn_stream_send,
	.recv = conn_stream_recv,
	.last_error = tls_last_error,
	.bye = tls_bye,
	.shutdown = tls_shutdown,
	.close = tls_close,
};
