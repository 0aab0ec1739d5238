/* SPDX-License-Identifier: MIT */
/*
 * The TLS transport (tls:// URLs): a TCP connection (tcp.c) inside a
 * GnuTLS session.  The server's certificate must chain to the CA file in
 * $UFO_TLS_CA_FILE, or to the system's trust store when that is unset, and
 * must name the host of the URL (a DNS name or an IP address).  The
 * shared-secret handshake (frame.c) still runs inside, so a client needs
 * both the CA and the secret.
 *
 * GnuTLS allows one thread to send while another receives on a session
 * (TLS 1.2 renegotiation aside, which is not enabled here): the client's
 * sender and reader rely on that, as they do on a plain socket.
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport.h"

struct tls_conn {
	struct ufo_conn base; /* first: container_of by cast */
	int fd;
	gnutls_session_t s;
	gnutls_certificate_credentials_t cred;
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
		return -EPROTO; /* not TLS, or TLS we do not speak */
	}
}

/* Waits for the direction GnuTLS last blocked on. */
static int wait_session(struct tls_conn *t, int timeout_ms)
{
	return net_wait_fd(t->fd,
			   gnutls_record_get_direction(t->s) ? POLLOUT : POLLIN,
			   timeout_ms);
}

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

static int handshake(struct tls_conn *t, int timeout_ms)
{
	int rc, w;

	do {
		rc = gnutls_handshake(t->s);
		if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
			if ((w = wait_session(t, timeout_ms)))
				return w;
	} while (rc < 0 && !gnutls_error_is_fatal(rc));
	return rc < 0 ? tls_errno(rc) : 0;
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

static int tls_connect(const struct net_addr *a, int timeout_ms,
		       struct ufo_conn **out)
{
	struct tls_conn *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return -ENOMEM;
	t->fd = tcp_connect_fd(a, timeout_ms);
	rc = t->fd < 0 ? t->fd : session_setup(t, a);
	if (!rc)
		rc = handshake(t, timeout_ms);
	if (rc) {
		tls_close(&t->base);
		return rc;
	}
	*out = &t->base;
	return 0;
}

static int tls_send(struct ufo_conn *c, struct iovec *iov, int iovcnt,
		    int timeout_ms)
{
	struct tls_conn *t = tls_of(c);

	for (int i = 0; i < iovcnt; i++) {
		const char *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left) {
			ssize_t n = gnutls_record_send(t->s, p, left);
			int w;

			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
				/* again with the same data, as GnuTLS asks */
				if ((w = net_wait_fd(t->fd, POLLOUT, timeout_ms)))
					return w;
				continue;
			}
			if (n < 0)
				return tls_errno((int)n);
			p += n;
			left -= (size_t)n;
		}
	}
	return 0;
}

static int tls_recv(struct ufo_conn *c, void *buf, size_t len, int timeout_ms)
{
	struct tls_conn *t = tls_of(c);
	size_t got = 0;

	while (got < len) {
		ssize_t n = gnutls_record_recv(t->s, (char *)buf + got, len - got);
		int w;

		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED)
			return tls_errno((int)n);
		if ((w = net_wait_fd(t->fd, POLLIN, timeout_ms)))
			return w;
	}
	return 0;
}

static void tls_shutdown(struct ufo_conn *c)
{
	shutdown(tls_of(c)->fd, SHUT_RDWR);
}

const struct ufo_transport_ops ufo_tls_transport = {
	.name = "tls",
	.connect = tls_connect,
	.send = tls_send,
	.recv = tls_recv,
	.read_remote = NULL,
	.write_remote = NULL,
	.shutdown = tls_shutdown,
	.close = tls_close,
};
