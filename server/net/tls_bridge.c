/* SPDX-License-Identifier: MIT */
/*
 * TLS for TCP connections (--tls-cert, --tls-key): each accepted socket is
 * handed here instead of to the loop.  A thread runs the TLS handshake
 * (bounded by --auth-timeout-ms, like the shared-secret handshake that
 * follows inside it), then bridges the session to the loop through a
 * socketpair, as rdma_bridge.c does for RDMA: the loop serves the plain
 * end like any connection, with the same protocol, authentication and
 * limits, and never learns about TLS.
 *
 * Two threads per connection, one per direction, each blocking on its
 * source: a client that stops reading stalls only its own server-to-client
 * thread, and the loop's backpressure (it stops reading a connection whose
 * answers pile up) reaches the client through the socketpair.  GnuTLS
 * allows one thread to send while another receives on a session.  Open
 * bridges are bounded by --max-connections, handshakes included.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

#define TLS_BRIDGE_BUF (64 << 10)
#define TLS_THREAD_STACK (256 << 10)

static struct {
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	atomic_uint open;
} tls;

struct tls_link {
	struct server *srv;
	int fd;    /* the client's socket */
	int plain; /* our end of the socketpair; the loop has the other */
	gnutls_session_t s;
};

static bool write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool tls_write_all(gnutls_session_t s, const char *p, size_t len)
{
	while (len) {
		ssize_t n = gnutls_record_send(s, p, len);

		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n < 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Loop to client.  When the loop closes its end, the client's socket is
 * shut down, which ends the other direction too. */
static void *to_client(void *arg)
{
	struct tls_link *l = arg;
	char *buf = malloc(TLS_BRIDGE_BUF);
	ssize_t n;

	while (buf && (n = recv(l->plain, buf, TLS_BRIDGE_BUF, 0)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || !tls_write_all(l->s, buf, (size_t)n))
			break;
	}
	free(buf);
	shutdown(l->fd, SHUT_RDWR);
	return NULL;
}

/* Client to loop, on the link's own thread; EOF or an error from the
 * client ends the loop's connection (it reads EOF). */
static void from_client(struct tls_link *l)
{
	char *buf = malloc(TLS_BRIDGE_BUF);
	ssize_t n;

	while (buf) {
		n = gnutls_record_recv(l->s, buf, TLS_BRIDGE_BUF);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n <= 0 || !write_all(l->plain, buf, (size_t)n))
			break;
	}
	free(buf);
	shutdown(l->plain, SHUT_WR);
}

static int handshake(struct tls_link *l)
{
	int rc;

	if (gnutls_init(&l->s, GNUTLS_SERVER) ||
	    gnutls_priority_set(l->s, tls.prio) ||
	    gnutls_credentials_set(l->s, GNUTLS_CRD_CERTIFICATE, tls.cred))
		return GNUTLS_E_MEMORY_ERROR;
	gnutls_certificate_server_set_request(l->s, GNUTLS_CERT_IGNORE);
	gnutls_transport_set_int(l->s, l->fd);
	gnutls_handshake_set_timeout(l->s, l->srv->cfg.auth_timeout_ms);
	do
		rc = gnutls_handshake(l->s);
	while (rc < 0 && !gnutls_error_is_fatal(rc));
	return rc;
}

/* Hands the plain end to the loop and runs both directions. */
static void bridge(struct tls_link *l)
{
	int sp[2];
	pthread_t t;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp)) {
		log_err("fd %d: TLS bridge: socketpair: %s", l->fd,
			strerror(errno));
		return;
	}
	l->plain = sp[1];
	loop_adopt(l->srv, sp[0]);
	if (pthread_create(&t, NULL, to_client, l)) {
		log_err("fd %d: TLS bridge: no thread", l->fd);
		return;
	}
	from_client(l);
	pthread_join(t, NULL);
}

static void *link_main(void *arg)
{
	struct tls_link *l = arg;
	int rc = handshake(l);

	if (rc < 0)
		log_info("fd %d: TLS handshake failed: %s", l->fd,
			 gnutls_strerror(rc));
	else
		bridge(l);
	if (l->s)
		gnutls_deinit(l->s);
	if (l->plain >= 0)
		close(l->plain);
	close(l->fd);
	free(l);
	atomic_fetch_sub(&tls.open, 1);
	return NULL;
}

void tls_bridge_accept(struct server *srv, int fd)
{
	struct tls_link *l;
	pthread_attr_t attr;
	pthread_t t;
	int fl = fcntl(fd, F_GETFL);

	if (atomic_fetch_add(&tls.open, 1) >= srv->cfg.max_connections ||
	    !(l = calloc(1, sizeof(*l)))) {
		atomic_fetch_sub(&tls.open, 1);
		log_warn("fd %d: TLS connection refused (over %u)", fd,
			 srv->cfg.max_connections);
		close(fd);
		return;
	}
	*l = (struct tls_link){ .srv = srv, .fd = fd, .plain = -1 };
	if (fl >= 0) /* blocking: each thread waits on its own source */
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, TLS_THREAD_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, link_main, l)) {
		log_err("fd %d: TLS bridge: no thread", fd);
		close(fd);
		free(l);
		atomic_fetch_sub(&tls.open, 1);
	}
	pthread_attr_destroy(&attr);
}

int tls_bridge_start(struct server *srv)
{
	const struct server_config *cfg = &srv->cfg;
	int rc;

	if (!cfg->tls_cert[0])
		return 0;
	if (gnutls_certificate_allocate_credentials(&tls.cred) ||
	    gnutls_priority_init(&tls.prio, NULL, NULL))
		return -ENOMEM;
	rc = gnutls_certificate_set_x509_key_file(tls.cred, cfg->tls_cert,
						  cfg->tls_key,
						  GNUTLS_X509_FMT_PEM);
	if (rc < 0) {
		log_err("--tls-cert %s / --tls-key %s: %s", cfg->tls_cert,
			cfg->tls_key, gnutls_strerror(rc));
		return -EINVAL;
	}
	srv->tls_on = true;
	log_info("TLS on: connections to the listening port must use tls://");
	return 0;
}
