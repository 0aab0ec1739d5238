/* SPDX-License-Identifier: MIT */
/*
 * A client with the monitor on and a known workload, for the Prometheus and
 * browser tests.  Prints "monitor URL" once serving, then works:
 *   --mode fixed  touches each chunk of a local object once (reads), writes
 *                 to WRITES of them, and with --remote writes, syncs and
 *                 reads a remote object; prints "done faults=N
 *                 wp_faults=M" and idles until stdin closes, so scrapes
 *                 see figures that no longer move;
 *   --mode loop   faults at random through a budget smaller than the
 *                 object for --seconds, then idles likewise.
 * Exits 77 when userfaultfd is refused.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ufo.h"

#define CHUNK ((size_t)64 << 10)
#define LOCAL_SIZE ((size_t)32 << 20)
#define REMOTE_SIZE ((size_t)4 << 20)
#define BUDGET ((size_t)8 << 20)
#define WRITES 8

static int populate(void *user, uint64_t start, uint64_t end, void *dst)
{
	for (uint64_t i = start; i < end; i++)
		((unsigned char *)dst)[i - start] = (unsigned char)(i * 7);
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_local(struct ufo_ctx *ctx, struct ufo_obj **obj)
{
	struct ufo_params p;
	int rc;

	ufo_params_init(&p);
	p.elem_count = LOCAL_SIZE;
	p.chunk_size = CHUNK;
	p.populate = populate;
	rc = ufo_create(ctx, &p, obj);
	return rc ? rc : ufo_advise(*obj, 0, 0, UFO_ADV_RANDOM);
}

static int open_remote(struct ufo_ctx *ctx, const char *url,
		       struct ufo_obj **obj)
{
	struct ufo_remote_opts o;
	int rc;

	ufo_remote_opts_init(&o);
	o.flags = UFO_REMOTE_CREATE;
	o.create_size = REMOTE_SIZE;
	o.chunk_size = CHUNK;
	rc = ufo_remote_open(ctx, url, &o, obj);
	return rc ? rc : ufo_advise(*obj, 0, 0, UFO_ADV_RANDOM);
}

static void fixed(struct ufo_obj *local, struct ufo_obj *remote)
{
	volatile unsigned char *b = ufo_body(local);
	unsigned sum = 0;

	for (size_t off = 0; off < LOCAL_SIZE; off += CHUNK)
		sum += b[off];
	for (size_t i = 0; i < WRITES; i++)
		b[(LOCAL_SIZE - (i + 1) * CHUNK)] = (unsigned char)sum;
	if (remote) {
		unsigned char *r = ufo_body(remote);
		memset(r, 0xab, REMOTE_SIZE);
		ufo_sync(remote);
		ufo_reset(remote);
		for (size_t off = 0; off < REMOTE_SIZE; off += CHUNK)
			sum += ((volatile unsigned char *)r)[off];
	}
}

static void loop(struct ufo_obj *local, struct ufo_obj *remote, double secs)
{
	volatile unsigned char *b = ufo_body(local);
	unsigned long long x = 88172645463325252ull;
	double end = now_s() + secs;

	while (now_s() < end) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t off = (size_t)(x % (LOCAL_SIZE / CHUNK)) * CHUNK;
		if (x & 1)
			b[off] = (unsigned char)x;
		else
			(void)b[off];
		if (remote && !(x & 0x30)) {
			unsigned char *r = ufo_body(remote);
			r[(x >> 8) % REMOTE_SIZE] = 1;
		}
		if (!(x & 0xff))
			usleep(1000); /* a steady rate, not a busy CPU */
	}
}

int main(int argc, char **argv)
{
	const char *remote_url = NULL, *mode = "fixed";
	struct ufo_obj *local, *remote = NULL;
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_stats st;
	double secs = 10;
	char url[128], c;
	int rc, opt;
	static const struct option opts[] = {
		{ "remote", required_argument, 0, 'r' },
		{ "mode", required_argument, 0, 'm' },
		{ "seconds", required_argument, 0, 's' },
		{ 0, 0, 0, 0 },
	};

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'r')
			remote_url = optarg;
		else if (opt == 'm')
			mode = optarg;
		else if (opt == 's')
			secs = atof(optarg);
		else
			return 2;
	}
	ufo_config_init(&cfg);
	cfg.high_watermark = BUDGET;
	cfg.monitor = "127.0.0.1:0"; /* UFO_MONITOR overrides */
	rc = ufo_ctx_create(&cfg, &ctx);
	if (rc == -EPERM || rc == -EACCES || rc == -ENOSYS)
		return 77;
	if (rc || ufo_ctx_monitor_url(ctx, url, sizeof(url))) {
		fprintf(stderr, "mon-workload: no context or no monitor (%d)\n", rc);
		return 1;
	}
	printf("monitor %s\n", url);
	fflush(stdout);
	if ((rc = open_local(ctx, &local)) ||
	    (remote_url && (rc = open_remote(ctx, remote_url, &remote)))) {
		fprintf(stderr, "mon-workload: objects: %s\n", strerror(-rc));
		return 1;
	}
	if (!strcmp(mode, "loop"))
		loop(local, remote, secs);
	else
		fixed(local, remote);
	ufo_ctx_stats(ctx, &st);
	printf("done faults=%llu wp_faults=%llu\n",
	       (unsigned long long)st.faults, (unsigned long long)st.wp_faults);
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	return ufo_ctx_destroy(ctx) ? 1 : 0;
}
