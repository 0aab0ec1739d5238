/* SPDX-License-Identifier: MIT */
/*
 * ufo-server: startup and shutdown.  Misconfiguration at startup exits
 * with a message; once serving, nothing a client sends or the disk does
 * ends the process (errors become answers and log lines).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"
#include "server.h"
#include "vstore.h"

#define EXIT_CONFIG 2

static int load_secret(struct server *srv)
{
	bool loose = false;
	int n = wire_read_secret(srv->cfg.secret_file, srv->secret,
				 sizeof(srv->secret), &loose);

	if (n < 0) {
		log_err("--secret-file %s: %s", srv->cfg.secret_file,
			n == -EINVAL ? "secret must be 16..4095 bytes"
				     : strerror(-n));
		return n;
	}
	if (loose)
		log_warn("--secret-file %s is readable by group or others; "
			 "chmod 600 it", srv->cfg.secret_file);
	srv->secret_len = (size_t)n;
	return 0;
}

/* One fd per object stays open, plus one per connection. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* SIGTERM/SIGINT arrive through the loop's signalfd, so every thread
 * (created after this) blocks them; SIGPIPE is ignored because a peer
 * that vanished is a send error, not a reason to die. */
static void setup_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* TCP, or TLS when conn_tls_setup loaded a certificate: every client of
 * --listen then speaks TLS. */
static int start_listening(struct server *srv)
{
	const struct ufo_transport_ops *t = srv->tls ? &ufo_tls_transport
						     : &ufo_tcp_transport;
	struct ufo_listen_opts o = { .backlog = LISTEN_BACKLOG,
				     .tls = srv->tls };
	struct net_addr *a = &srv->cfg.listen;
	int port, rc, v6 = strchr(a->host, ':') != NULL;

	if ((rc = t->listen(a, &o, &srv->listener))) {
		log_err("--listen %s:%u: %s", a->host, a->port, strerror(-rc));
		return rc;
	}
	port = t->listener_port(srv->listener);
	srv->port = port > 0 ? port : a->port;
	/* Tests and scripts read this line to learn an ephemeral port. */
	printf("listening on %s%s%s:%d\n", v6 ? "[" : "", a->host,
	       v6 ? "]" : "", srv->port);
	fflush(stdout);
	log_info("listening on %s%s%s:%d", v6 ? "[" : "", a->host,
		 v6 ? "]" : "", srv->port);
	return 0;
}

static int server_init(struct server *srv)
{
	int rc;

	srv->epoll_fd = srv->wake_fd = srv->signal_fd = -1;
	srv->handlers = &server_handlers;
	pthread_mutex_init(&srv->reap_lock, NULL);
	queue_init(&srv->work);
	queue_init(&srv->commit);
	if ((rc = load_secret(srv)))
		return rc;
	if ((rc = wire_crypto_init())) {
		log_err("libsodium initialisation failed");
		return rc;
	}
	if ((rc = conn_tls_setup(srv)))
		return rc;
	raise_fd_limit();
	if ((rc = store_open(srv->cfg.data_dir, &vstore_ext, &srv->store))) {
		log_err("--data %s: %s%s", srv->cfg.data_dir, strerror(-rc),
			rc == -EBUSY ? " (another ufo-server uses it)" : "");
		return rc;
	}
	return start_listening(srv);
}

static void server_fini(struct server *srv)
{
	struct server_stats *st = &srv->stats;

	log_info("stopped: requests=%llu writes=%llu fdatasyncs=%llu "
		 "batches=%llu",
		 (unsigned long long)st->requests, (unsigned long long)st->writes,
		 (unsigned long long)st->fdatasyncs,
		 (unsigned long long)st->batches);
	if (srv->store)
		store_close(srv->store);
	conn_tls_cleanup(srv);
	explicit_bzero(srv->secret, sizeof(srv->secret));
}

int main(int argc, char **argv)
{
	static struct server srv;
	int rc = config_load(&srv.cfg, argc, argv);

	if (rc)
		return rc > 0 ? 0 : EXIT_CONFIG;
	log_set_level(srv.cfg.log_level);
	setup_signals();
	if (server_init(&srv))
		return EXIT_CONFIG;
	if ((rc = workers_start(&srv)) || (rc = committer_start(&srv)))
		return EXIT_FAILURE;
	if (server_monitor_start(&srv))
		return EXIT_CONFIG;
	rc = loop_run(&srv);
	if (rc)
		log_err("event loop: %s", strerror(-rc));
	/* Workers drain their queue into the committer, then it drains. */
	workers_stop(&srv);
	committer_stop(&srv);
	server_monitor_stop(&srv);
	server_fini(&srv);
	return rc ? EXIT_FAILURE : 0;
}
