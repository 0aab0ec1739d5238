/* SPDX-License-Identifier: MIT */
/*
 * Fault throughput with the HTTP monitor on, beside the same run with it
 * off.  "On" means serving and scraped: a thread fetches /metrics and
 * /api/v1/stats every SCRAPE_MS (ten times Prometheus' usual 1 s rate).
 * 4 KiB chunks, no readahead, so every page is a fault and the per-fault
 * cost of statistics shows as much as it can.  Runs alternate off/on and
 * the medians are compared; the target is on/off >= 0.97.
 *
 * Usage: bench-monitor [--size BYTES] [--runs N]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"
#include "ufo.h"

#define CHUNK (4 * KiB)
#define SCRAPE_MS 100
#define TARGET 0.97

static int populate(void *user, uint64_t start, uint64_t end, void *dst)
{
	memset(dst, (int)(start & 0xff), end - start);
	return 0;
}

struct scraper {
	uint16_t port;
	atomic_bool stop;
	unsigned scrapes;
};

static void scrape(uint16_t port, const char *path)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	char req[128], buf[65536];
	int fd = socket(AF_INET, SOCK_STREAM, 0), n;

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n"
		     "Connection: close\r\n\r\n", path);
	if (write(fd, req, (size_t)n) == n)
		while (read(fd, buf, sizeof(buf)) > 0)
			;
	close(fd);
}

static void *scraper_main(void *arg)
{
	struct scraper *s = arg;

	while (!atomic_load(&s->stop)) {
		scrape(s->port, "/metrics");
		scrape(s->port, "/api/v1/stats");
		s->scrapes++;
		usleep(SCRAPE_MS * 1000);
	}
	return NULL;
}

/* Faults per second over one scan of a fresh object; 0 on error. */
static double run(size_t size, bool monitor, unsigned *scrapes)
{
	struct scraper sc = { 0 };
	struct ufo_config cfg;
	struct ufo_params p;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	pthread_t t;
	char url[128];
	double t0, dt;
	volatile char *b;
	int rc;

	ufo_config_init(&cfg);
	cfg.high_watermark = size * 2; /* no eviction: faults only */
	cfg.monitor = monitor ? "127.0.0.1:0" : NULL;
	if ((rc = ufo_ctx_create(&cfg, &ctx))) {
		fprintf(stderr, "bench-monitor: context: %s\n", strerror(-rc));
		return 0;
	}
	if (monitor && ufo_ctx_monitor_url(ctx, url, sizeof(url))) {
		fprintf(stderr, "bench-monitor: the monitor did not start\n");
		ufo_ctx_destroy(ctx);
		return 0;
	}
	ufo_params_init(&p);
	p.elem_count = size;
	p.chunk_size = CHUNK;
	p.populate = populate;
	if (ufo_create(ctx, &p, &obj) ||
	    ufo_advise(obj, 0, 0, UFO_ADV_RANDOM)) {
		ufo_ctx_destroy(ctx);
		return 0;
	}
	if (monitor) {
		sc.port = (uint16_t)atoi(strrchr(url, ':') + 1);
		pthread_create(&t, NULL, scraper_main, &sc);
	}
	b = ufo_body(obj);
	t0 = now_sec();
	for (size_t off = 0; off < size; off += CHUNK)
		(void)b[off];
	dt = now_sec() - t0;
	if (monitor) {
		atomic_store(&sc.stop, true);
		pthread_join(t, NULL);
		*scrapes += sc.scrapes;
	}
	ufo_ctx_destroy(ctx);
	return (double)(size / CHUNK) / dt;
}

int main(int argc, char **argv)
{
	size_t size = 256 * MiB;
	unsigned runs = 7, scrapes = 0;
	double off[32], on[32], m_off, m_on;
	char sz[32];

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--size") && !parse_size(argv[i + 1], &size))
			continue;
		if (!strcmp(argv[i], "--runs") &&
		    (runs = (unsigned)atoi(argv[i + 1])) >= 1 && runs <= 32)
			continue;
		fprintf(stderr, "usage: %s [--size BYTES] [--runs 1..32]\n", argv[0]);
		return 2;
	}
	printf("fault throughput, %s object, %zu KiB chunks, no readahead, "
	       "%u runs each (alternating)\n", fmt_size(size, sz), CHUNK / KiB,
	       runs);
	for (unsigned r = 0; r < runs; r++) {
		off[r] = run(size, false, &scrapes);
		on[r] = run(size, true, &scrapes);
		if (!off[r] || !on[r])
			return 77; /* no userfaultfd, or no monitor built */
	}
	m_off = median(off, (int)runs);
	m_on = median(on, (int)runs);
	printf("  monitor off            %10.0f faults/s (median)\n", m_off);
	printf("  monitor on, scraped    %10.0f faults/s (median; %u scrapes of "
	       "/metrics + /api/v1/stats, every %d ms)\n", m_on, scrapes,
	       SCRAPE_MS);
	printf("  ratio on/off           %10.3f (target >= %.2f): %s\n",
	       m_on / m_off, TARGET, m_on / m_off >= TARGET ? "met" : "NOT met");
	return 0;
}
