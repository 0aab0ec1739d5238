/* SPDX-License-Identifier: MIT */
/*
 * The HTTP monitor shared by libufo and ufo-server: a read-only HTTP server
 * (libmicrohttpd), writers for the Prometheus text exposition format and
 * for JSON, and the dashboard page embedded at build time.
 *
 * The embedding program supplies one render callback that writes its
 * metrics in the format asked for; the server calls it on its own thread,
 * once per request to /metrics or /api/v1/stats.  Nothing here is exported
 * from libufo (libufo.map keeps only ufo_*).
 *
 * Endpoints: /metrics (text/plain; version=0.0.4), /api/v1/stats
 * (application/json), / (the dashboard), /chart.js and /dashboard.js (its
 * scripts).  Anything else is 404; methods other than GET and HEAD are 405.
 *
 * Built without libmicrohttpd, mon_server_start answers -EOPNOTSUPP; the
 * writers are always there.
 */
#ifndef UFO_MONITOR_H
#define UFO_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds on what a client can make the monitor hold (docs/monitor.md).
 * One address gets a quarter of the slots, enough for a browser (six
 * connections per host) and a scraper side by side: it takes four
 * addresses to fill the monitor.  A connection closed by its peer frees
 * its slot at once, whatever it had sent. */
#define MON_MAX_CONNECTIONS 64          /* more wait in the listen backlog */
#define MON_MAX_CONNECTIONS_PER_IP 16   /* more from one address are
					 * closed at accept */
#define MON_LISTEN_BACKLOG 64           /* connections waiting for a slot */
#define MON_CONNECTION_TIMEOUT_S 3      /* a connection that sends nothing
					 * this long is closed, whether idle
					 * or in the middle of its headers */
#define MON_CONNECTION_MEMORY (32u << 10) /* request line + headers; past
					   * it: 431 and close */
#define MON_ADDR_MAX 64                 /* "[v6 address]:port" */

/* ---------------------------------------------------------------- buffers */

/* A growable text buffer.  After an allocation failure every later write
 * is dropped and oom stays set; the owner checks it once at the end. */
struct mon_buf {
	char *data; /* NUL-terminated while len > 0 */
	size_t len, cap;
	bool oom;
};

void mon_buf_init(struct mon_buf *b);
void mon_buf_free(struct mon_buf *b);
void mon_buf_put(struct mon_buf *b, const char *s, size_t n);
void mon_buf_puts(struct mon_buf *b, const char *s);
void mon_buf_printf(struct mon_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ------------------------------------------- Prometheus exposition format */

struct mon_label {
	const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]* */
	const char *value; /* any UTF-8; escaped here */
};

/* "# HELP name help" and "# TYPE name type"; type is counter, gauge,
 * histogram or untyped.  Once per metric family, before its samples. */
void mon_expo_family(struct mon_buf *b, const char *name, const char *type,
		     const char *help);
/* One sample line: name{labels} value. */
void mon_expo_u64(struct mon_buf *b, const char *name,
		  const struct mon_label *labels, size_t nlabels, uint64_t v);
void mon_expo_double(struct mon_buf *b, const char *name,
		     const struct mon_label *labels, size_t nlabels, double v);
/* The _bucket/_sum/_count lines of a histogram whose bucket 0 counts
 * values under 1 µs and bucket i >= 1 those in [2^(i-1), 2^i) µs, the last
 * bucket also holding everything slower (struct ufo_stats).  le bounds
 * are in seconds; sum_seconds is the total of the observed values. */
void mon_expo_histogram_us(struct mon_buf *b, const char *name,
			   const struct mon_label *labels, size_t nlabels,
			   const uint64_t *buckets, unsigned nbuckets,
			   double sum_seconds);

/* ------------------------------------------------------------------- JSON */

#define MON_JSON_DEPTH 16

/* Writes one JSON document.  key is the member name inside an object and
 * NULL inside an array or at the top.  Nesting deeper than MON_JSON_DEPTH
 * sets b->oom (a programming error, reported like a failed allocation). */
struct mon_json {
	struct mon_buf *b;
	unsigned depth;
	bool has_items[MON_JSON_DEPTH]; /* per level: a comma goes first */
	char closer[MON_JSON_DEPTH];    /* per level: '}' or ']' */
};

void mon_json_init(struct mon_json *j, struct mon_buf *b);
void mon_json_object(struct mon_json *j, const char *key);
void mon_json_array(struct mon_json *j, const char *key);
void mon_json_end(struct mon_json *j); /* closes the innermost { or [ */
void mon_json_str(struct mon_json *j, const char *key, const char *v);
void mon_json_u64(struct mon_json *j, const char *key, uint64_t v);
void mon_json_double(struct mon_json *j, const char *key, double v);
void mon_json_bool(struct mon_json *j, const char *key, bool v);

/* ----------------------------------------------------------------- server */

enum mon_format { MON_PROMETHEUS, MON_JSON };

/* Writes the embedder's metrics into out; called on the monitor thread.
 * Returns 0 or a negative errno (answered 500). */
typedef int (*mon_render_fn)(void *user, enum mon_format format,
			     struct mon_buf *out);

struct mon_server;

/* Parses "HOST:PORT", "[V6]:PORT" or ":PORT" (loopback) with a numeric
 * host (or "localhost"); port 0 picks a free one.  0 or -EINVAL. */
int mon_parse_addr(const char *addr, char host[MON_ADDR_MAX], uint16_t *port);

/* Listens on addr and serves from a thread of its own, which runs with
 * every signal blocked.  Errors: -EINVAL (address), the -errno of
 * socket/bind/listen (-EADDRINUSE), -ENOMEM, -EOPNOTSUPP (built without
 * libmicrohttpd). */
int mon_server_start(const char *addr, mon_render_fn render, void *user,
		     struct mon_server **out);
/* "http://HOST:PORT/" with the port actually bound.  0, or -ENOSPC when
 * len is too small. */
int mon_server_url(const struct mon_server *s, char *buf, size_t len);
/* Stops serving and frees s once no render is running.  NULL is a no-op. */
void mon_server_stop(struct mon_server *s);

#endif /* UFO_MONITOR_H */
