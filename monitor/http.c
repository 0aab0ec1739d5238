/* SPDX-License-Identifier: MIT */
/*
 * The monitor's HTTP server: libmicrohttpd with one internal thread.  The
 * listening socket is ours (bound before the daemon starts, so errors are
 * plain errnos and port 0 works); MHD enforces the bounds in monitor.h:
 * past MON_MAX_CONNECTIONS new connections wait in the listen backlog,
 * past MON_MAX_CONNECTIONS_PER_IP from one address they are closed at
 * accept, a request whose headers exceed MON_CONNECTION_MEMORY is answered
 * 431, and a connection silent for MON_CONNECTION_TIMEOUT_S is dropped.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "assets.h"
#include "monitor.h"

struct mon_server {
	struct MHD_Daemon *daemon;
	mon_render_fn render;
	void *user;
	char host[MON_ADDR_MAX];
	uint16_t port;
	bool v6;
};

enum route_kind { ROUTE_ASSET, ROUTE_RENDER };

static const struct route {
	const char *path;
	enum route_kind kind;
	const char *type;
	const struct mon_asset *asset; /* ROUTE_ASSET */
	enum mon_format format;        /* ROUTE_RENDER */
} routes[] = {
	{ "/", ROUTE_ASSET, "text/html; charset=utf-8", &mon_asset_index_html, 0 },
	{ "/index.html", ROUTE_ASSET, "text/html; charset=utf-8",
	  &mon_asset_index_html, 0 },
	{ "/dashboard.js", ROUTE_ASSET, "text/javascript; charset=utf-8",
	  &mon_asset_dashboard_js, 0 },
	{ "/chart.js", ROUTE_ASSET, "text/javascript; charset=utf-8",
	  &mon_asset_chart_js, 0 },
	{ "/metrics", ROUTE_RENDER, "text/plain; version=0.0.4; charset=utf-8",
	  NULL, MON_PROMETHEUS },
	{ "/api/v1/stats", ROUTE_RENDER, "application/json", NULL, MON_JSON },
};

static enum MHD_Result queue(struct MHD_Connection *c, unsigned status,
			     struct MHD_Response *r, const char *type)
{
	enum MHD_Result ret;

	if (!r)
		return MHD_NO; /* out of memory: MHD closes the connection */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Content-Security-Policy",
				"default-src 'self'; style-src 'self' 'unsafe-inline'");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result answer_text(struct MHD_Connection *c, unsigned status,
				   const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);

	if (r && status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	return queue(c, status, r, "text/plain; charset=utf-8");
}

static enum MHD_Result answer_render(struct mon_server *s,
				     struct MHD_Connection *c,
				     const struct route *rt)
{
	struct mon_buf b;
	struct MHD_Response *r;
	int rc;

	mon_buf_init(&b);
	rc = s->render(s->user, rt->format, &b);
	if (rc || b.oom) {
		mon_buf_free(&b);
		return answer_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
				   "rendering the metrics failed\n");
	}
	/* MUST_FREE hands b.data to MHD, which free()s it. */
	r = MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_FREE);
	if (!r)
		mon_buf_free(&b);
	return queue(c, MHD_HTTP_OK, r, rt->type);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct mon_server *s = cls;

	if (strcmp(method, MHD_HTTP_METHOD_GET) &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD))
		return answer_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
				   "read-only: GET and HEAD only\n");
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *rt = &routes[i];

		if (strcmp(url, rt->path))
			continue;
		if (rt->kind == ROUTE_RENDER)
			return answer_render(s, c, rt);
		return queue(c, MHD_HTTP_OK,
			     MHD_create_response_from_buffer(
				     rt->asset->len, (void *)rt->asset->data,
				     MHD_RESPMEM_PERSISTENT),
			     rt->type);
	}
	return answer_text(c, MHD_HTTP_NOT_FOUND,
			   "not found; try /, /metrics or /api/v1/stats\n");
}

/* Returns the listening socket, or -errno. */
static int listen_on(struct mon_server *s)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd, one = 1;

	if (s->v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(s->port);
		inet_pton(AF_INET6, s->host, &a->sin6_addr);
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(s->port);
		inet_pton(AF_INET, s->host, &a->sin_addr);
		len = sizeof(*a);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) ||
	    listen(fd, MON_LISTEN_BACKLOG) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len)) {
		int err = -errno;
		close(fd);
		return err;
	}
	s->port = ntohs(s->v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
			      : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/*
 * poll(), not epoll: libmicrohttpd 0.9.75 (Debian 12) registers connections
 * edge-triggered in epoll and, after a read shorter than its buffer, waits
 * for the next edge before reading again.  A peer that sent half a request
 * and closed before MHD read it (one still in the listen backlog, or one
 * whose bytes and FIN arrive together) leaves no further edge: MHD never
 * reads the EOF, and the connection holds its slot until the timeout.
 * With poll(), level-triggered, the pending EOF is seen on the next pass
 * and the slot frees at once.  poll() and not select(): the embedding
 * process (ufo-server) may have descriptors past FD_SETSIZE.
 *
 * One timeout for every connection, short: MHD has a single inactivity
 * timer per connection, and a keep-alive connection waiting for its next
 * request is, to it, a request with no header bytes yet.  A longer timeout
 * for idle connections than for half-sent ones (MHD_set_connection_option
 * from the connection notifications) would protect nothing, since a peer
 * can send one whole request first.
 *
 * MHD's thread inherits the caller's signal mask: block everything while
 * it is created, so the embedding program's signals never land there.
 */
static struct MHD_Daemon *daemon_start(struct mon_server *s, int fd)
{
	sigset_t all, old;
	struct MHD_Daemon *d;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	d = MHD_start_daemon(
		MHD_USE_POLL_INTERNAL_THREAD | (s->v6 ? MHD_USE_IPv6 : 0), 0,
		NULL, NULL, answer, s,
		MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)MON_MAX_CONNECTIONS,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		(unsigned)MON_MAX_CONNECTIONS_PER_IP,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)MON_CONNECTION_TIMEOUT_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)MON_CONNECTION_MEMORY,
		MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return d;
}

int mon_server_start(const char *addr, mon_render_fn render, void *user,
		     struct mon_server **out)
{
	struct mon_server *s;
	int fd, rc;

	if (!render || !out)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->render = render;
	s->user = user;
	rc = mon_parse_addr(addr, s->host, &s->port);
	s->v6 = strchr(s->host, ':') != NULL;
	fd = rc ? rc : listen_on(s);
	if (fd < 0) {
		free(s);
		return fd;
	}
	s->daemon = daemon_start(s, fd);
	if (!s->daemon) {
		close(fd);
		free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

int mon_server_url(const struct mon_server *s, char *buf, size_t len)
{
	int n;

	if (!s)
		return -EINVAL;
	n = snprintf(buf, len, s->v6 ? "http://[%s]:%u/" : "http://%s:%u/",
		     s->host, s->port);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

void mon_server_stop(struct mon_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->daemon); /* joins its thread, closes the socket */
	free(s);
}
