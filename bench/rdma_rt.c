/* SPDX-License-Identifier: MIT */
/*
 * bench-rdma-rt URL [SMALL [BIG]]: over one client connection, the round
 * trip of SMALL 64-byte READs (p50, mean, p99) and the throughput of BIG
 * 1 MiB READs, both two-sided (through the server's byte stream, not
 * MAP).  bench/rdma_rt.job runs it over tcp:// and rdma:// in the RDMA
 * suite's QEMU guest and prints the ratio.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ufo.h"

#define OBJ_SIZE ((size_t)32 << 20)
#define BIG ((size_t)1 << 20)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int prepare(struct ufo_client *c, char *buf, uint64_t *id)
{
	struct ufo_remote_info info;
	int rc = ufo_client_create(c, "rt", OBJ_SIZE, BIG, &info);

	if (rc && (rc = ufo_client_stat(c, "rt", &info)))
		return rc;
	*id = info.id;
	memset(buf, 0x5a, BIG);
	for (size_t off = 0; off < OBJ_SIZE; off += BIG)
		if ((rc = ufo_client_write(c, *id, off, buf, BIG)))
			return rc;
	for (int i = 0; i < 50; i++) /* warm up */
		if ((rc = ufo_client_read(c, *id, 0, buf, 64)))
			return rc;
	return 0;
}

int main(int argc, char **argv)
{
	int nsmall = argc > 2 ? atoi(argv[2]) : 2000;
	int nbig = argc > 3 ? atoi(argv[3]) : 100;
	char *buf = malloc(BIG);
	double *lat = malloc((size_t)(nsmall > 0 ? nsmall : 1) * sizeof(*lat));
	double t0, sum = 0, mibs;
	struct ufo_remote_opts o;
	struct ufo_client_stats st;
	struct ufo_client *c;
	uint64_t id;
	int rc;

	if (argc < 2 || nsmall < 1 || nbig < 1 || !buf || !lat) {
		fprintf(stderr, "usage: bench-rdma-rt URL [SMALL [BIG]]\n");
		return 2;
	}
	ufo_remote_opts_init(&o);
	o.connections = 1;
	o.timeout_ms = 60000;
	if ((rc = ufo_client_connect(argv[1], &o, &c))) {
		fprintf(stderr, "connect %s: %s\n", argv[1], strerror(-rc));
		return 1;
	}
	if ((rc = prepare(c, buf, &id))) {
		fprintf(stderr, "prepare: %s\n", strerror(-rc));
		return 1;
	}
	for (int i = 0; i < nsmall; i++) {
		t0 = now_s();
		if ((rc = ufo_client_read(c, id, (uint64_t)(i % 1000) * 4096,
					  buf, 64))) {
			fprintf(stderr, "read: %s\n", strerror(-rc));
			return 1;
		}
		lat[i] = (now_s() - t0) * 1e6;
		sum += lat[i];
	}
	qsort(lat, (size_t)nsmall, sizeof(*lat), cmp_double);
	t0 = now_s();
	for (int i = 0; i < nbig; i++)
		if ((rc = ufo_client_read(c, id, (uint64_t)(i % 32) * BIG, buf,
					  BIG))) {
			fprintf(stderr, "read 1 MiB: %s\n", strerror(-rc));
			return 1;
		}
	mibs = nbig / (now_s() - t0);
	ufo_client_status(c, &st);
	printf("RT %s transport=%s small64B_p50_us=%.0f small64B_mean_us=%.0f "
	       "small64B_p99_us=%.0f read1MiB_MiBps=%.1f\n", argv[1],
	       st.transport, lat[nsmall / 2], sum / nsmall,
	       lat[nsmall * 99 / 100], mibs);
	ufo_client_close(c);
	free(lat);
	free(buf);
	return 0;
}
