/* SPDX-License-Identifier: MIT */
/*
 * ufoctl: progress on stderr, of bytes (transfers) or of counted items
 * (cluster repair: groups).  On a terminal, a bar redrawn in place;
 * otherwise (logs, CI) a plain line now and then, so a log shows the work
 * is alive without filling up with redraws.
 */
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "ufoctl.h"

#define TTY_REDRAW_S 0.1   /* seconds between redraws of the bar */
#define PLAIN_PERIOD_S 5.0 /* seconds between lines when not a tty */
#define BAR_MIN 10         /* bar cells, at least / at most */
#define BAR_MAX 40

void progress_init(struct progress *p, const char *label, uint64_t total,
		   bool quiet)
{
	p->label = label;
	p->unit = NULL;
	p->total = total;
	p->start = now_seconds();
	p->last_print = p->start;
	p->tty = isatty(STDERR_FILENO);
	p->enabled = !quiet;
	p->printed = false;
}

void progress_init_count(struct progress *p, const char *label,
			 const char *unit, uint64_t total, bool quiet)
{
	progress_init(p, label, total, quiet);
	p->unit = unit;
}

static unsigned terminal_columns(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

/* A done or total figure: "20.0M" for bytes, "12" for counted items. */
static const char *amount(const struct progress *p, uint64_t v, char *buf,
			  size_t cap)
{
	if (!p->unit)
		return format_size(v, buf, cap);
	snprintf(buf, cap, "%llu", (unsigned long long)v);
	return buf;
}

/* "12.5 MB/s  ETA 0:07" (decimal MB, as network rates are quoted), or
 * "40.0 groups/s  ETA 0:07". */
static void format_rate(const struct progress *p, uint64_t done, double now,
			char *buf, size_t cap)
{
	const char *unit = p->unit ? p->unit : "MB";
	double elapsed = now - p->start;
	double rate = elapsed > 0 ? (double)done / elapsed : 0;
	unsigned eta;

	if (rate <= 0 || done == 0) {
		snprintf(buf, cap, "   -- %s/s  ETA --:--", unit);
		return;
	}
	eta = (unsigned)((double)(p->total - done) / rate + 0.5);
	snprintf(buf, cap, "%6.1f %s/s  ETA %u:%02u",
		 p->unit ? rate : rate / 1e6, unit, eta / 60, eta % 60);
}

static unsigned percent(const struct progress *p, uint64_t done)
{
	return p->total ? (unsigned)(done * 100 / p->total) : 100;
}

static void draw_bar(struct progress *p, uint64_t done, double now)
{
	char d[24], t[24], rate[64], bar[BAR_MAX + 1];
	unsigned cols = terminal_columns(), pct = percent(p, done);
	int width = (int)cols - 60;
	int fill;

	if (width > BAR_MAX)
		width = BAR_MAX;
	if (width < BAR_MIN)
		width = 0;
	fill = width * (int)pct / 100;
	for (int i = 0; i < width; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[width] = '\0';
	format_rate(p, done, now, rate, sizeof(rate));
	fprintf(stderr, "\r%s %3u%% %s%s%s %s/%s %s\033[K", p->label, pct,
		width ? "[" : "", bar, width ? "]" : "",
		amount(p, done, d, sizeof(d)), amount(p, p->total, t, sizeof(t)),
		rate);
	fflush(stderr);
}

static void print_line(struct progress *p, uint64_t done, double now)
{
	char d[24], t[24], rate[64];

	format_rate(p, done, now, rate, sizeof(rate));
	fprintf(stderr, "%s: %u%% %s/%s %s\n", p->label, percent(p, done),
		amount(p, done, d, sizeof(d)), amount(p, p->total, t, sizeof(t)),
		rate);
}

void progress_update(struct progress *p, uint64_t done)
{
	double now = now_seconds();

	if (!p->enabled)
		return;
	if (now - p->last_print < (p->tty ? TTY_REDRAW_S : PLAIN_PERIOD_S))
		return;
	p->last_print = now;
	p->printed = true;
	if (p->tty)
		draw_bar(p, done, now);
	else
		print_line(p, done, now);
}

void progress_finish(struct progress *p, uint64_t done, bool ok)
{
	double now = now_seconds(), elapsed = now - p->start;
	char d[24];

	if (!p->enabled)
		return;
	/* A failed transfer leaves the bar where it stopped; a finished one
	 * is replaced by the summary. */
	if (p->tty && p->printed && !ok) {
		draw_bar(p, done, now);
		fputc('\n', stderr);
	}
	if (!ok)
		return;
	if (p->tty && p->printed)
		fputs("\r\033[K", stderr);
	if (p->unit)
		fprintf(stderr, "%s: %s %s in %.2f s\n", p->label,
			amount(p, done, d, sizeof(d)), p->unit, elapsed);
	else
		fprintf(stderr, "%s: %s in %.2f s (%.1f MB/s)\n", p->label,
			amount(p, done, d, sizeof(d)), elapsed,
			elapsed > 0 ? (double)done / elapsed / 1e6 : 0.0);
}
