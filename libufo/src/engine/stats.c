/* SPDX-License-Identifier: MIT */
/* Statistics: relaxed atomic counters, summed per object and per context. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "engine.h"

static unsigned latency_bucket(uint64_t us)
{
	unsigned b = us ? 64 - (unsigned)__builtin_clzll(us) : 0;

	return b < UFO_HIST_BUCKETS ? b : UFO_HIST_BUCKETS - 1;
}

void stats_record_latency(struct ufo_obj *obj, uint64_t ns)
{
	STAT_ADD(obj, lat[latency_bucket(ns / 1000)], 1);
	STAT_ADD(obj, lat_sum_ns, ns);
}

#define LOAD(f) atomic_load_explicit(&c->f, memory_order_relaxed)

/* Parts per thousand, 0 of nothing. */
static uint64_t per_mille(uint64_t part, uint64_t whole)
{
	return whole ? part * 1000 / whole : 0;
}

/* Accuracy: readahead chunks used / loaded.  Coverage: faults avoided
 * (chunks used without a fault) / the faults there would have been
 * without readahead (those plus the demand faults).  Read separately, the
 * counters may disagree by a load in progress: clamped. */
static void readahead_figures(const struct ufo_counters *c,
			      struct ufo_stats *out)
{
	uint64_t used = LOAD(readahead_used), late = LOAD(readahead_late);
	uint64_t avoided = used > late ? used - late : 0;

	out->readahead_chunks = LOAD(readahead_chunks);
	out->readahead_used = used < out->readahead_chunks ?
			      used : out->readahead_chunks;
	out->readahead_late = late;
	out->readahead_accuracy_pm = per_mille(out->readahead_used,
					       out->readahead_chunks);
	out->readahead_coverage_pm = per_mille(avoided, avoided + out->faults);
}

void stats_snapshot(const struct ufo_counters *c, struct ufo_stats *out)
{
	int64_t resident = LOAD(resident_bytes), dirty = LOAD(dirty_bytes);

	memset(out, 0, sizeof(*out));
	out->faults = LOAD(faults);
	out->wp_faults = LOAD(wp_faults);
	out->populate_calls = LOAD(populate_calls);
	out->populate_ns = LOAD(populate_ns);
	out->populate_errors = LOAD(populate_errors);
	out->bytes_loaded = LOAD(bytes_loaded);
	out->prefetches = LOAD(prefetches);
	out->evictions = LOAD(evictions);
	out->writebacks = LOAD(writebacks);
	out->writeback_bytes = LOAD(writeback_bytes);
	out->writeback_chunk_bytes = LOAD(writeback_chunk_bytes);
	out->writeback_errors = LOAD(writeback_errors);
	out->sigbus = LOAD(sigbus);
	/* The two gauges are updated separately from the events that move
	 * them, so a snapshot may catch one side of a move: clamp at 0. */
	out->resident_bytes = resident > 0 ? (uint64_t)resident : 0;
	out->dirty_bytes = dirty > 0 ? (uint64_t)dirty : 0;
	for (unsigned i = 0; i < UFO_HIST_BUCKETS; i++)
		out->fault_latency_us[i] = LOAD(lat[i]);
	out->bytes_moved = LOAD(bytes_moved);
	out->bytes_copied = LOAD(bytes_copied);
	out->pages_recycled = LOAD(pages_recycled);
	out->bytes_holes = LOAD(bytes_holes);
	readahead_figures(c, out);
}

/* The context's values every snapshot repeats. */
static void stats_ctx_values(const struct ufo_ctx *ctx, struct ufo_stats *out)
{
	out->high_watermark = ctx->cfg.high_watermark;
	out->low_watermark = ctx->cfg.low_watermark;
	out->ios_in_flight = atomic_load(&ctx->io_inflight);
	out->ios_in_flight_max = atomic_load(&ctx->io_inflight_max);
	out->handler_threads = atomic_load(&ctx->nthreads);
}

int ufo_obj_stats(const struct ufo_obj *obj, struct ufo_stats *out)
{
	if (!obj || !out)
		return -EINVAL;
	stats_snapshot(&obj->stats, out);
	stats_ctx_values(obj->ctx, out);
	return 0;
}

int ufo_ctx_stats(const struct ufo_ctx *ctx, struct ufo_stats *out)
{
	if (!ctx || !out)
		return -EINVAL;
	stats_snapshot(&ctx->stats, out);
	stats_ctx_values(ctx, out);
	return 0;
}

uint64_t ufo_stats_latency_percentile(const struct ufo_stats *s, double p)
{
	uint64_t total = 0, seen = 0, want;

	if (!s || p <= 0 || p > 100)
		return 0;
	for (unsigned i = 0; i < UFO_HIST_BUCKETS; i++)
		total += s->fault_latency_us[i];
	if (!total)
		return 0;
	want = (uint64_t)((double)total * p / 100.0 + 0.999999);
	for (unsigned i = 0; i < UFO_HIST_BUCKETS; i++) {
		seen += s->fault_latency_us[i];
		if (seen >= want)
			return (uint64_t)1 << i; /* bucket upper bound */
	}
	return (uint64_t)1 << (UFO_HIST_BUCKETS - 1);
}
