/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus text exposition format, version 0.0.4: HELP and TYPE
 * lines per family, then one line per sample.  Label values escape \, "
 * and newline; HELP text escapes \ and newline.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "monitor.h"

static void put_escaped(struct mon_buf *b, const char *s, bool quotes)
{
	for (; *s; s++) {
		switch (*s) {
		case '\\': mon_buf_puts(b, "\\\\"); break;
		case '\n': mon_buf_puts(b, "\\n"); break;
		case '"':
			mon_buf_puts(b, quotes ? "\\\"" : "\"");
			break;
		default: mon_buf_put(b, s, 1);
		}
	}
}

void mon_expo_family(struct mon_buf *b, const char *name, const char *type,
		     const char *help)
{
	mon_buf_printf(b, "# HELP %s ", name);
	put_escaped(b, help, false);
	mon_buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* name{a="x",b="y"} with an optional extra label (the histogram's le). */
static void put_series(struct mon_buf *b, const char *name,
		       const struct mon_label *labels, size_t nlabels,
		       const char *le)
{
	mon_buf_puts(b, name);
	if (!nlabels && !le)
		return;
	mon_buf_puts(b, "{");
	for (size_t i = 0; i < nlabels; i++) {
		mon_buf_printf(b, "%s%s=\"", i ? "," : "", labels[i].name);
		put_escaped(b, labels[i].value ? labels[i].value : "", true);
		mon_buf_puts(b, "\"");
	}
	if (le)
		mon_buf_printf(b, "%sle=\"%s\"", nlabels ? "," : "", le);
	mon_buf_puts(b, "}");
}

void mon_expo_u64(struct mon_buf *b, const char *name,
		  const struct mon_label *labels, size_t nlabels, uint64_t v)
{
	put_series(b, name, labels, nlabels, NULL);
	mon_buf_printf(b, " %llu\n", (unsigned long long)v);
}

static void put_double(struct mon_buf *b, double v)
{
	if (isnan(v))
		mon_buf_puts(b, "NaN");
	else if (isinf(v))
		mon_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
	else
		mon_buf_printf(b, "%.15g", v);
}

void mon_expo_double(struct mon_buf *b, const char *name,
		     const struct mon_label *labels, size_t nlabels, double v)
{
	put_series(b, name, labels, nlabels, NULL);
	mon_buf_puts(b, " ");
	put_double(b, v);
	mon_buf_puts(b, "\n");
}

void mon_expo_histogram_us(struct mon_buf *b, const char *name,
			   const struct mon_label *labels, size_t nlabels,
			   const uint64_t *buckets, unsigned nbuckets,
			   double sum_seconds)
{
	size_t len = strlen(name);
	char series[128], le[32];
	uint64_t cumulative = 0;

	if (len + sizeof("_bucket") > sizeof(series)) {
		b->oom = true; /* a programming error: names are constants */
		return;
	}
	memcpy(series, name, len);
	strcpy(series + len, "_bucket");
	/* The last bucket is open-ended, so it has no finite bound of its
	 * own: it shows only in +Inf. */
	for (unsigned i = 0; i + 1 < nbuckets; i++) {
		cumulative += buckets[i];
		snprintf(le, sizeof(le), "%.9g", (double)(1ull << i) * 1e-6);
		put_series(b, series, labels, nlabels, le);
		mon_buf_printf(b, " %llu\n", (unsigned long long)cumulative);
	}
	if (nbuckets)
		cumulative += buckets[nbuckets - 1];
	put_series(b, series, labels, nlabels, "+Inf");
	mon_buf_printf(b, " %llu\n", (unsigned long long)cumulative);
	strcpy(series + len, "_sum");
	mon_expo_double(b, series, labels, nlabels, sum_seconds);
	strcpy(series + len, "_count");
	mon_expo_u64(b, series, labels, nlabels, cumulative);
}
