/* SPDX-License-Identifier: MIT */
/*
 * The context's metrics for the HTTP monitor (monitor/): context totals,
 * every live object, and for remote objects the client's server,
 * transport and connection state (for a replicated object, one row per
 * server of its cluster).  Rendered on the monitor's thread.
 *
 * Why this never slows the fault path: counters are relaxed atomics that
 * the fault path updates anyway; a render reads them without a lock.  The
 * registry is walked read-locked, as the fault path's lookup does, and only
 * to copy each object's figures; formatting happens after it is released.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"

#define NS_PER_S 1e9

struct obj_snap {
	uint64_t id, size, elem_size, chunk_size, lat_sum_ns;
	bool remote;
	char name[256]; /* as ufo_remote_info.name */
	struct ufo_stats st;
	struct ufo_client_stats *cs; /* a row per server; ncs of them */
	unsigned ncs;
};

struct snap {
	struct ufo_stats st;
	uint64_t lat_sum_ns;
	double uptime, now;
	struct obj_snap *objs;
	size_t nobjs, cap;
	bool oom;
};

/* ---- collecting */

/* The client's state per server: one row for a remote object, one per
 * member for a replicated one.  Out of memory: no rows. */
static void collect_servers(struct ufo_obj *obj, struct obj_snap *o)
{
	unsigned n = obj->backend->servers(obj);

	o->cs = calloc(n ? n : 1, sizeof(*o->cs));
	if (!o->cs)
		return;
	for (unsigned i = 0; i < n; i++)
		o->ncs += !obj->backend->server_status(obj, i, &o->cs[o->ncs]);
}

static int collect_obj(void *user, struct ufo_obj *obj)
{
	struct snap *s = user;
	struct obj_snap *o;

	if (s->nobjs == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		void *p = realloc(s->objs, cap * sizeof(*s->objs));
		if (!p) {
			s->oom = true;
			return -ENOMEM;
		}
		s->objs = p;
		s->cap = cap;
	}
	o = &s->objs[s->nobjs++];
	memset(o, 0, sizeof(*o));
	o->id = obj->id;
	o->size = (uint64_t)obj->elem_count * obj->elem_size;
	o->elem_size = obj->elem_size;
	o->chunk_size = obj->chunk_size;
	ufo_obj_stats(obj, &o->st);
	o->lat_sum_ns = atomic_load_explicit(&obj->stats.lat_sum_ns,
					     memory_order_relaxed);
	o->remote = remote_object_name(obj) != NULL;
	if (o->remote) {
		snprintf(o->name, sizeof(o->name), "%s",
			 remote_object_name(obj));
		collect_servers(obj, o);
	}
	return 0;
}

static int collect(struct ufo_ctx *ctx, struct snap *s)
{
	struct timespec ts;

	memset(s, 0, sizeof(*s));
	ufo_ctx_stats(ctx, &s->st);
	s->lat_sum_ns = atomic_load_explicit(&ctx->stats.lat_sum_ns,
					     memory_order_relaxed);
	s->uptime = (double)(now_ns() - ctx->started_ns) / NS_PER_S;
	clock_gettime(CLOCK_REALTIME, &ts);
	s->now = (double)ts.tv_sec + (double)ts.tv_nsec / NS_PER_S;
	registry_for_each(ctx, collect_obj, s);
	return s->oom ? -ENOMEM : 0;
}

static const char *server_state(const struct ufo_client_stats *cs)
{
	if (!cs->connected)
		return "down";
	return cs->connected < cs->connections ? "degraded" : "up";
}

/* ---- what is shown: one table drives both formats */

enum unit { U_COUNT, U_NS_AS_S };

struct metric {
	const char *prom;  /* exposition name, after ufo_ / ufo_object_ */
	const char *json;  /* JSON key */
	const char *type;
	const char *help;
	size_t off;        /* in struct ufo_stats */
	enum unit unit;
};

#define M(prom, json, type, field, unit, help) \
	{ prom, json, type, help, offsetof(struct ufo_stats, field), unit }

static const struct metric ctx_metrics[] = {
	M("faults_total", "faults", "counter", faults, U_COUNT,
	  "Missing-page faults handled"),
	M("write_faults_total", "wp_faults", "counter", wp_faults, U_COUNT,
	  "First writes to clean chunks (write-protect faults)"),
	M("populate_calls_total", "populate_calls", "counter", populate_calls,
	  U_COUNT, "Backend fetches (populate callbacks or server reads)"),
	M("populate_seconds_total", "populate_seconds", "counter", populate_ns,
	  U_NS_AS_S, "Time spent inside backend fetches"),
	M("populate_errors_total", "populate_errors", "counter",
	  populate_errors, U_COUNT, "Failed fetch attempts, before retries"),
	M("fetched_bytes_total", "loaded_bytes", "counter", bytes_loaded,
	  U_COUNT, "Bytes loaded into objects"),
	M("prefetches_total", "prefetches", "counter", prefetches, U_COUNT,
	  "Chunks loaded by readahead or WILLNEED"),
	M("evictions_total", "evictions", "counter", evictions, U_COUNT,
	  "Chunks dropped"),
	M("writebacks_total", "writebacks", "counter", writebacks, U_COUNT,
	  "Successful writebacks of dirty chunks"),
	M("writeback_bytes_total", "writeback_bytes", "counter",
	  writeback_bytes, U_COUNT, "Bytes written back"),
	M("writeback_chunk_bytes_total", "writeback_chunk_bytes", "counter",
	  writeback_chunk_bytes, U_COUNT,
	  "Bytes of the chunks written back (scan mode sends only their written pages)"),
	M("writeback_errors_total", "writeback_errors", "counter",
	  writeback_errors, U_COUNT, "Failed writeback attempts"),
	M("sigbus_total", "sigbus", "counter", sigbus, U_COUNT,
	  "Faulting threads sent SIGBUS after a fetch kept failing"),
	M("resident_bytes", "resident_bytes", "gauge", resident_bytes, U_COUNT,
	  "Resident bytes of object bodies"),
	M("dirty_bytes", "dirty_bytes", "gauge", dirty_bytes, U_COUNT,
	  "Resident bytes written since their last writeback (0 in hash and scan modes)"),
	M("budget_high_watermark_bytes", "high_watermark_bytes", "gauge",
	  high_watermark, U_COUNT, "Eviction starts above this many resident bytes"),
	M("budget_low_watermark_bytes", "low_watermark_bytes", "gauge",
	  low_watermark, U_COUNT, "Eviction stops below this many resident bytes"),
	M("installed_moved_bytes_total", "moved_bytes", "counter", bytes_moved,
	  U_COUNT, "Bytes installed by moving pool pages in (no copy)"),
	M("installed_copied_bytes_total", "copied_bytes", "counter",
	  bytes_copied, U_COUNT, "Bytes installed by copying"),
	M("recycled_pages_total", "recycled_pages", "counter", pages_recycled,
	  U_COUNT, "Pages of evicted chunks kept in a pool for later loads"),
	M("hole_bytes_total", "hole_bytes", "counter", bytes_holes, U_COUNT,
	  "Bytes never written where they live: zeros installed, nothing transferred"),
	M("ios_in_flight", "ios_in_flight", "gauge", ios_in_flight, U_COUNT,
	  "Backend fetches and stores in flight"),
	M("ios_in_flight_max", "ios_in_flight_max", "gauge", ios_in_flight_max,
	  U_COUNT, "The most backend fetches and stores ever in flight at once"),
	M("handler_threads", "handler_threads", "gauge", handler_threads,
	  U_COUNT, "Fault-handling threads alive"),
};

/* Per object, a subset (labels object, kind and, for remote objects, name). */
static const struct metric obj_metrics[] = {
	M("resident_bytes", "resident_bytes", "gauge", resident_bytes, U_COUNT,
	  "Resident bytes of the object's body"),
	M("dirty_bytes", "dirty_bytes", "gauge", dirty_bytes, U_COUNT,
	  "Dirty resident bytes of the object"),
	M("faults_total", "faults", "counter", faults, U_COUNT,
	  "Missing-page faults on the object"),
	M("write_faults_total", "wp_faults", "counter", wp_faults, U_COUNT,
	  "Write-protect faults on the object"),
	M("fetched_bytes_total", "loaded_bytes", "counter", bytes_loaded,
	  U_COUNT, "Bytes loaded into the object"),
	M("writeback_bytes_total", "writeback_bytes", "counter",
	  writeback_bytes, U_COUNT, "Bytes of the object written back"),
	M("evictions_total", "evictions", "counter", evictions, U_COUNT,
	  "Chunks of the object dropped"),
	M("prefetches_total", "prefetches", "counter", prefetches, U_COUNT,
	  "Chunks of the object prefetched"),
};

static double metric_value(const struct metric *m, const struct ufo_stats *st)
{
	uint64_t v = *(const uint64_t *)((const char *)st + m->off);

	return m->unit == U_NS_AS_S ? (double)v / NS_PER_S : (double)v;
}

static void expo_value(struct mon_buf *b, const char *name,
		       const struct metric *m, const struct ufo_stats *st,
		       const struct mon_label *l, size_t nl)
{
	if (m->unit == U_COUNT)
		mon_expo_u64(b, name, l, nl,
			     *(const uint64_t *)((const char *)st + m->off));
	else
		mon_expo_double(b, name, l, nl, metric_value(m, st));
}

/* ---- the exposition format */

static void expo_context(const struct ufo_ctx *ctx, const struct snap *s,
			 struct mon_buf *b)
{
	struct mon_label info[] = {
		{ "version", UFO_LIB_VERSION },
		{ "dirty_mode", ufo_dirty_mode_name(ctx->cfg.dirty_mode) },
		{ "policy", ctx->policy->name },
	};
	char name[96];

	mon_expo_family(b, "ufo_info", "gauge",
			"libufo version and context settings (always 1)");
	mon_expo_u64(b, "ufo_info", info, UFO_ARRAY_SIZE(info), 1);
	mon_expo_family(b, "ufo_uptime_seconds", "gauge",
			"Time since the context was created");
	mon_expo_double(b, "ufo_uptime_seconds", NULL, 0, s->uptime);
	mon_expo_family(b, "ufo_objects", "gauge", "Live objects");
	mon_expo_u64(b, "ufo_objects", NULL, 0, s->nobjs);
	for (size_t i = 0; i < UFO_ARRAY_SIZE(ctx_metrics); i++) {
		const struct metric *m = &ctx_metrics[i];
		snprintf(name, sizeof(name), "ufo_%s", m->prom);
		mon_expo_family(b, name, m->type, m->help);
		expo_value(b, name, m, &s->st, NULL, 0);
	}
	mon_expo_family(b, "ufo_fault_latency_seconds", "histogram",
			"Time from reading a fault to waking the faulting thread");
	mon_expo_histogram_us(b, "ufo_fault_latency_seconds", NULL, 0,
			      s->st.fault_latency_us, UFO_HIST_BUCKETS,
			      (double)s->lat_sum_ns / NS_PER_S);
}

/* Labels of an object's series: object, kind, and name when known. */
static size_t obj_labels(const struct obj_snap *o, char id[24],
			 struct mon_label l[3])
{
	snprintf(id, 24, "%llu", (unsigned long long)o->id);
	l[0] = (struct mon_label){ "object", id };
	l[1] = (struct mon_label){ "kind", o->remote ? "remote" : "local" };
	l[2] = (struct mon_label){ "name", o->name };
	return o->name[0] ? 3 : 2;
}

static void expo_objects(const struct snap *s, struct mon_buf *b)
{
	struct mon_label l[3];
	char id[24], name[96];
	size_t nl;

	mon_expo_family(b, "ufo_object_size_bytes", "gauge", "Object body size");
	for (size_t i = 0; i < s->nobjs; i++) {
		nl = obj_labels(&s->objs[i], id, l);
		mon_expo_u64(b, "ufo_object_size_bytes", l, nl, s->objs[i].size);
	}
	mon_expo_family(b, "ufo_object_chunk_size_bytes", "gauge",
			"Bytes loaded per fault (the object's chunk size)");
	for (size_t i = 0; i < s->nobjs; i++) {
		nl = obj_labels(&s->objs[i], id, l);
		mon_expo_u64(b, "ufo_object_chunk_size_bytes", l, nl,
			     s->objs[i].chunk_size);
	}
	for (size_t m = 0; m < UFO_ARRAY_SIZE(obj_metrics); m++) {
		snprintf(name, sizeof(name), "ufo_object_%s", obj_metrics[m].prom);
		mon_expo_family(b, name, obj_metrics[m].type, obj_metrics[m].help);
		for (size_t i = 0; i < s->nobjs; i++) {
			nl = obj_labels(&s->objs[i], id, l);
			expo_value(b, name, &obj_metrics[m], &s->objs[i].st, l, nl);
		}
	}
}

struct remote_metric {
	const char *name, *type, *help;
	size_t off; /* in struct ufo_client_stats; SIZE_MAX: special */
	bool is_unsigned;
};

static const struct remote_metric remote_metrics[] = {
	{ "ufo_remote_up", "gauge",
	  "1 when every connection to the object's server is up", SIZE_MAX, 0 },
	{ "ufo_remote_connections", "gauge", "Connections in the client's pool",
	  offsetof(struct ufo_client_stats, connections), true },
	{ "ufo_remote_connections_up", "gauge", "Pool connections up now",
	  offsetof(struct ufo_client_stats, connected), true },
	{ "ufo_remote_requests_total", "counter", "Requests completed",
	  offsetof(struct ufo_client_stats, requests), false },
	{ "ufo_remote_errors_total", "counter", "Requests that failed",
	  offsetof(struct ufo_client_stats, errors), false },
	{ "ufo_remote_received_bytes_total", "counter",
	  "Payload bytes received", offsetof(struct ufo_client_stats, bytes_in),
	  false },
	{ "ufo_remote_sent_bytes_total", "counter", "Payload bytes sent",
	  offsetof(struct ufo_client_stats, bytes_out), false },
};

static uint64_t remote_value(const struct remote_metric *m,
			     const struct ufo_client_stats *cs)
{
	if (m->off == SIZE_MAX)
		return !strcmp(server_state(cs), "up");
	if (m->is_unsigned)
		return *(const unsigned *)((const char *)cs + m->off);
	return *(const uint64_t *)((const char *)cs + m->off);
}

static size_t remote_labels(const struct obj_snap *o,
			    const struct ufo_client_stats *cs, char id[24],
			    struct mon_label l[5])
{
	size_t n = obj_labels(o, id, l);

	l[n++] = (struct mon_label){ "server", cs->server };
	l[n++] = (struct mon_label){ "transport", cs->transport };
	return n;
}

static void expo_remotes(const struct snap *s, struct mon_buf *b)
{
	struct mon_label l[5];
	char id[24];
	size_t nl;

	for (size_t m = 0; m < UFO_ARRAY_SIZE(remote_metrics); m++) {
		mon_expo_family(b, remote_metrics[m].name, remote_metrics[m].type,
				remote_metrics[m].help);
		for (size_t i = 0; i < s->nobjs; i++)
			for (unsigned k = 0; k < s->objs[i].ncs; k++) {
				const struct ufo_client_stats *cs =
					&s->objs[i].cs[k];

				nl = remote_labels(&s->objs[i], cs, id, l);
				mon_expo_u64(b, remote_metrics[m].name, l, nl,
					     remote_value(&remote_metrics[m], cs));
			}
	}
	mon_expo_family(b, "ufo_remote_latency_seconds", "gauge",
			"Recent request latency to the server (moving mean)");
	for (size_t i = 0; i < s->nobjs; i++)
		for (unsigned k = 0; k < s->objs[i].ncs; k++) {
			nl = remote_labels(&s->objs[i], &s->objs[i].cs[k], id,
					   l);
			mon_expo_double(b, "ufo_remote_latency_seconds", l, nl,
					(double)s->objs[i].cs[k].latency_us /
						1e6);
		}
}

/* ---- JSON */

static void json_latency(struct mon_json *j, const struct ufo_stats *st,
			 uint64_t sum_ns)
{
	mon_json_object(j, "fault_latency");
	mon_json_array(j, "le_us");
	for (unsigned i = 0; i < UFO_HIST_BUCKETS; i++)
		mon_json_u64(j, NULL, (uint64_t)1 << i);
	mon_json_end(j);
	mon_json_array(j, "counts");
	for (unsigned i = 0; i < UFO_HIST_BUCKETS; i++)
		mon_json_u64(j, NULL, st->fault_latency_us[i]);
	mon_json_end(j);
	mon_json_double(j, "sum_seconds", (double)sum_ns / NS_PER_S);
	mon_json_u64(j, "p50_us", ufo_stats_latency_percentile(st, 50));
	mon_json_u64(j, "p90_us", ufo_stats_latency_percentile(st, 90));
	mon_json_u64(j, "p99_us", ufo_stats_latency_percentile(st, 99));
	mon_json_end(j);
}

static void json_metrics(struct mon_json *j, const struct metric *ms,
			 size_t n, const struct ufo_stats *st)
{
	for (size_t i = 0; i < n; i++) {
		if (ms[i].unit == U_COUNT)
			mon_json_u64(j, ms[i].json,
				     *(const uint64_t *)((const char *)st + ms[i].off));
		else
			mon_json_double(j, ms[i].json, metric_value(&ms[i], st));
	}
}

static void json_context(struct mon_json *j, const struct ufo_ctx *ctx,
			 const struct snap *s)
{
	mon_json_object(j, "context");
	json_metrics(j, ctx_metrics, UFO_ARRAY_SIZE(ctx_metrics), &s->st);
	mon_json_u64(j, "objects", s->nobjs);
	mon_json_u64(j, "threads", ctx->cfg.threads);
	mon_json_str(j, "dirty_mode", ufo_dirty_mode_name(ctx->cfg.dirty_mode));
	mon_json_str(j, "policy", ctx->policy->name);
	mon_json_double(j, "uptime_seconds", s->uptime);
	json_latency(j, &s->st, s->lat_sum_ns);
	mon_json_end(j);
}

static void json_object(struct mon_json *j, const struct obj_snap *o)
{
	mon_json_object(j, NULL);
	mon_json_u64(j, "id", o->id);
	mon_json_str(j, "kind", o->remote ? "remote" : "local");
	mon_json_str(j, "name", o->name[0] ? o->name : NULL);
	mon_json_u64(j, "size_bytes", o->size);
	mon_json_u64(j, "elem_size", o->elem_size);
	mon_json_u64(j, "chunk_size_bytes", o->chunk_size);
	mon_json_u64(j, "chunks", (o->size + o->chunk_size - 1) / o->chunk_size);
	json_metrics(j, obj_metrics, UFO_ARRAY_SIZE(obj_metrics), &o->st);
	mon_json_u64(j, "sigbus", o->st.sigbus);
	mon_json_u64(j, "p50_us", ufo_stats_latency_percentile(&o->st, 50));
	mon_json_u64(j, "p99_us", ufo_stats_latency_percentile(&o->st, 99));
	mon_json_double(j, "fault_latency_sum_seconds",
			(double)o->lat_sum_ns / NS_PER_S);
	mon_json_end(j);
}

static void json_server(struct mon_json *j, const struct obj_snap *o,
			const struct ufo_client_stats *cs)
{
	mon_json_object(j, NULL);
	mon_json_u64(j, "object", o->id);
	mon_json_str(j, "name", o->name[0] ? o->name : NULL);
	mon_json_str(j, "address", cs->server);
	mon_json_str(j, "transport", cs->transport);
	mon_json_str(j, "state", server_state(cs));
	mon_json_u64(j, "connections", cs->connections);
	mon_json_u64(j, "connected", cs->connected);
	mon_json_u64(j, "requests", cs->requests);
	mon_json_u64(j, "errors", cs->errors);
	mon_json_u64(j, "received_bytes", cs->bytes_in);
	mon_json_u64(j, "sent_bytes", cs->bytes_out);
	mon_json_double(j, "latency_seconds", (double)cs->latency_us / 1e6);
	mon_json_end(j);
}

static void render_json(const struct ufo_ctx *ctx, const struct snap *s,
			struct mon_buf *b)
{
	struct mon_json j;

	mon_json_init(&j, b);
	mon_json_object(&j, NULL);
	mon_json_str(&j, "kind", "client");
	mon_json_str(&j, "version", UFO_LIB_VERSION);
	mon_json_u64(&j, "pid", (uint64_t)getpid());
	mon_json_double(&j, "time_seconds", s->now);
	json_context(&j, ctx, s);
	mon_json_array(&j, "objects");
	for (size_t i = 0; i < s->nobjs; i++)
		json_object(&j, &s->objs[i]);
	mon_json_end(&j);
	mon_json_array(&j, "servers");
	for (size_t i = 0; i < s->nobjs; i++)
		for (unsigned k = 0; k < s->objs[i].ncs; k++)
			json_server(&j, &s->objs[i], &s->objs[i].cs[k]);
	mon_json_end(&j);
	mon_json_end(&j);
	mon_buf_puts(b, "\n");
}

/* ---- entry points */

/* mon_render_fn; also called directly by the unit tests. */
int ctx_monitor_render(void *user, enum mon_format format, struct mon_buf *out)
{
	struct ufo_ctx *ctx = user;
	struct snap s;
	int rc = collect(ctx, &s);

	if (!rc && format == MON_PROMETHEUS) {
		expo_context(ctx, &s, out);
		expo_objects(&s, out);
		expo_remotes(&s, out);
	} else if (!rc) {
		render_json(ctx, &s, out);
	}
	for (size_t i = 0; i < s.nobjs; i++)
		free(s.objs[i].cs);
	free(s.objs);
	return rc;
}

void ctx_monitor_start(struct ufo_ctx *ctx)
{
	char url[MON_ADDR_MAX + 16];
	int rc;

	if (!ctx->cfg.monitor)
		return;
	ctx->monitor_addr = strdup(ctx->cfg.monitor);
	ctx->cfg.monitor = ctx->monitor_addr;
	rc = ctx->monitor_addr ? mon_server_start(ctx->monitor_addr,
						  ctx_monitor_render, ctx,
						  &ctx->monitor)
			       : -ENOMEM;
	if (rc) {
		log_err(ctx, "monitor on %s: %s; continuing without it",
			ctx->cfg.monitor ? ctx->cfg.monitor : "?",
			rc == -EOPNOTSUPP ? "not built (libmicrohttpd missing)"
					  : strerror(-rc));
		return;
	}
	mon_server_url(ctx->monitor, url, sizeof(url));
	log_info(ctx, "monitor on %s", url);
}

void ctx_monitor_stop(struct ufo_ctx *ctx)
{
	mon_server_stop(ctx->monitor);
	ctx->monitor = NULL;
}

int ufo_ctx_monitor_url(const struct ufo_ctx *ctx, char *buf, size_t len)
{
	if (!ctx || !buf)
		return -EINVAL;
	if (!ctx->monitor)
		return -ENOTCONN;
	return mon_server_url(ctx->monitor, buf, len);
}
