/* SPDX-License-Identifier: MIT */
/*
 * ufo-server's metrics for the HTTP monitor (monitor/): connections,
 * requests by operation, errors, bytes, fdatasyncs, objects.  Rendered on
 * the monitor's thread from relaxed atomic counters (server_stats) and
 * the store's object count; nothing here takes a lock the request path
 * holds for long.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "monitor.h"
#include "server.h"

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* The monitor's state, srv->monitor while it runs. */
struct server_monitor {
	struct mon_server *mon;
	int64_t started_ms;
	char listen[MON_ADDR_MAX + 8];
};

/* Operations the workers run, in wire order: the op label's values. */
static const uint16_t served_ops[] = {
	WIRE_CREATE, WIRE_OPEN, WIRE_STAT, WIRE_LIST, WIRE_DELETE,
	WIRE_READ, WIRE_WRITE, WIRE_SYNC, WIRE_VWRITE, WIRE_VERSIONS,
	WIRE_DISCARD,
};
#define N_SERVED_OPS (sizeof(served_ops) / sizeof(served_ops[0]))

/* "READ" → "read" */
static void op_label(uint16_t op, char out[16])
{
	snprintf(out, 16, "%s", wire_op_name(op));
	for (char *p = out; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
}

struct snapshot {
	uint64_t ops[N_SERVED_OPS], requests, errors, read_bytes,
		written_bytes, writes, fdatasyncs, batches;
	unsigned connections, max_connections;
	size_t objects;
	double uptime;
	const char *listen; /* set once at start: read without a lock */
};

static void snapshot(struct server *srv, struct snapshot *s)
{
	struct server_stats *st = &srv->stats;

	for (size_t i = 0; i < N_SERVED_OPS; i++)
		s->ops[i] = LOAD(st->ops[served_ops[i]]);
	s->requests = LOAD(st->requests);
	s->errors = LOAD(st->errors);
	s->read_bytes = LOAD(st->read_bytes);
	s->written_bytes = LOAD(st->written_bytes);
	s->writes = LOAD(st->writes);
	s->fdatasyncs = LOAD(st->fdatasyncs);
	s->batches = LOAD(st->batches);
	s->connections = atomic_load_explicit(&srv->nconns,
					      memory_order_relaxed);
	s->max_connections = srv->cfg.max_connections;
	s->objects = store_count(srv->store);
	s->uptime = (double)(now_ms() - srv->monitor->started_ms) / 1e3;
	s->listen = srv->monitor->listen;
}

static void counter(struct mon_buf *b, const char *name, const char *help,
		    uint64_t v)
{
	mon_expo_family(b, name, "counter", help);
	mon_expo_u64(b, name, NULL, 0, v);
}

static void gauge(struct mon_buf *b, const char *name, const char *help,
		  double v)
{
	mon_expo_family(b, name, "gauge", help);
	mon_expo_double(b, name, NULL, 0, v);
}

static void render_prometheus(const struct snapshot *s, struct mon_buf *b)
{
	struct mon_label info[] = { { "version", UFO_SERVER_VERSION },
				    { "listen", s->listen } };
	char op[16];

	mon_expo_family(b, "ufo_server_info", "gauge",
			"ufo-server build and listening address (always 1)");
	mon_expo_u64(b, "ufo_server_info", info, 2, 1);
	gauge(b, "ufo_server_uptime_seconds", "Time since the monitor started",
	      s->uptime);
	gauge(b, "ufo_server_connections", "Client connections open now",
	      s->connections);
	gauge(b, "ufo_server_connections_max",
	      "Connection limit (--max-connections)", s->max_connections);
	gauge(b, "ufo_server_objects", "Objects in the store", (double)s->objects);
	mon_expo_family(b, "ufo_server_requests_total", "counter",
			"Requests run by the workers, by operation");
	for (size_t i = 0; i < N_SERVED_OPS; i++) {
		struct mon_label l = { "op", op };
		op_label(served_ops[i], op);
		mon_expo_u64(b, "ufo_server_requests_total", &l, 1, s->ops[i]);
	}
	counter(b, "ufo_server_answers_total",
		"Answers sent, handshakes and errors included", s->requests);
	counter(b, "ufo_server_errors_total",
		"Requests answered with an error by the workers or the committer",
		s->errors);
	counter(b, "ufo_server_read_bytes_total",
		"Object data sent by successful READs", s->read_bytes);
	counter(b, "ufo_server_written_bytes_total",
		"Object data stored by WRITEs", s->written_bytes);
	counter(b, "ufo_server_durable_writes_total",
		"WRITEs answered after their fdatasync", s->writes);
	counter(b, "ufo_server_fdatasyncs_total",
		"fdatasync calls by the committer", s->fdatasyncs);
	counter(b, "ufo_server_commit_batches_total",
		"Group-commit batches (one or more WRITE/SYNC each)", s->batches);
}

static void render_json(const struct snapshot *s, struct mon_buf *b)
{
	struct mon_json j;
	struct timespec ts;
	char op[16];

	clock_gettime(CLOCK_REALTIME, &ts);
	mon_json_init(&j, b);
	mon_json_object(&j, NULL);
	mon_json_str(&j, "kind", "server");
	mon_json_str(&j, "version", UFO_SERVER_VERSION);
	mon_json_u64(&j, "pid", (uint64_t)getpid());
	mon_json_double(&j, "time_seconds",
			(double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
	mon_json_str(&j, "listen", s->listen);
	mon_json_object(&j, "server");
	mon_json_double(&j, "uptime_seconds", s->uptime);
	mon_json_u64(&j, "connections", s->connections);
	mon_json_u64(&j, "max_connections", s->max_connections);
	mon_json_u64(&j, "objects", s->objects);
	mon_json_object(&j, "requests");
	for (size_t i = 0; i < N_SERVED_OPS; i++) {
		op_label(served_ops[i], op);
		mon_json_u64(&j, op, s->ops[i]);
	}
	mon_json_end(&j);
	mon_json_u64(&j, "requests_total", s->requests);
	mon_json_u64(&j, "errors_total", s->errors);
	mon_json_u64(&j, "read_bytes", s->read_bytes);
	mon_json_u64(&j, "written_bytes", s->written_bytes);
	mon_json_u64(&j, "durable_writes", s->writes);
	mon_json_u64(&j, "fdatasyncs", s->fdatasyncs);
	mon_json_u64(&j, "commit_batches", s->batches);
	mon_json_end(&j);
	mon_json_end(&j);
	mon_buf_puts(b, "\n");
}

static int render(void *user, enum mon_format format, struct mon_buf *out)
{
	struct snapshot s;

	snapshot(user, &s);
	if (format == MON_PROMETHEUS)
		render_prometheus(&s, out);
	else
		render_json(&s, out);
	return 0;
}

/* The address clients connect to, with the port the kernel picked. */
static void note_listen(struct server *srv, struct server_monitor *m)
{
	const struct net_addr *a = &srv->cfg.listen;

	snprintf(m->listen, sizeof(m->listen),
		 strchr(a->host, ':') ? "[%s]:%d" : "%s:%d", a->host, srv->port);
}

int server_monitor_start(struct server *srv)
{
	char url[MON_ADDR_MAX + 16];
	struct server_monitor *m;
	int rc;

	if (!srv->cfg.monitor[0])
		return 0;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	note_listen(srv, m);
	m->started_ms = now_ms();
	srv->monitor = m; /* before the first render can run */
	rc = mon_server_start(srv->cfg.monitor, render, srv, &m->mon);
	if (rc) {
		log_err("--monitor %s: %s", srv->cfg.monitor,
			rc == -EOPNOTSUPP ? "not built (libmicrohttpd missing)"
					  : strerror(-rc));
		srv->monitor = NULL;
		free(m);
		return rc;
	}
	mon_server_url(m->mon, url, sizeof(url));
	/* Scripts read this line, like "listening on". */
	printf("monitor on %s\n", url);
	fflush(stdout);
	log_info("monitor on %s", url);
	return 0;
}

void server_monitor_stop(struct server *srv)
{
	if (!srv->monitor)
		return;
	mon_server_stop(srv->monitor->mon); /* no render runs after */
	free(srv->monitor);
	srv->monitor = NULL;
}
