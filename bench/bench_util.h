/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the benchmarks: size parsing, a monotonic clock,
 * the data generator every case fills chunks with, and a median.
 * Header-only so each benchmark stays one translation unit.
 */
#ifndef UFO_BENCH_UTIL_H
#define UFO_BENCH_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ufo.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)

/* A non-zero byte count in ufo_parse_size()'s format ("64K", "1G"):
 * 0 or -EINVAL (also for 0 and sizes past size_t). */
static inline int parse_size(const char *s, size_t *out)
{
	uint64_t v;

	if (ufo_parse_size(s, &v) || !v || v > SIZE_MAX)
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

/* "64K", "1M", "1.5G": a short human form of a byte count. */
static inline const char *fmt_size(size_t v, char buf[32])
{
	static const char units[] = "BKMGT";
	unsigned u = 0;
	double d = (double)v;

	while (d >= 1024 && u < sizeof(units) - 2) {
		d /= 1024;
		u++;
	}
	if (d == (double)(uint64_t)d)
		snprintf(buf, 32, "%llu%c", (unsigned long long)d, units[u]);
	else
		snprintf(buf, 32, "%.1f%c", d, units[u]);
	if (u == 0)
		buf[strlen(buf) - 1] = '\0';
	return buf;
}

static inline double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The generated object: element i is i * GEN_MUL (mod 2^64).  Cheap enough
 * that every case is bound by how it gets memory in place, not by the
 * generator, and wide enough that a misplaced chunk changes the sum. */
#define GEN_MUL UINT64_C(0x9E3779B97F4A7C15)

static inline void gen_fill(uint64_t *dst, uint64_t start, uint64_t end)
{
	for (uint64_t i = start; i < end; i++)
		dst[i - start] = i * GEN_MUL;
}

/* Sum of gen(i) for i < n, mod 2^64: GEN_MUL * n(n-1)/2. */
static inline uint64_t gen_sum(uint64_t n)
{
	unsigned __int128 tri = (unsigned __int128)n * (n - 1) / 2;

	return (uint64_t)tri * GEN_MUL;
}

/* Sum of n words; the scan every case times. */
static inline uint64_t scan_sum(const uint64_t *a, uint64_t n)
{
	uint64_t s = 0;

	for (uint64_t i = 0; i < n; i++)
		s += a[i];
	return s;
}

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of v[0..n); sorts v. */
static inline double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif /* UFO_BENCH_UTIL_H */

/* The raw peers' region: a userfaultfd (non-blocking) and size bytes of
 * anonymous memory registered with it for missing-page faults.  0, or
 * -errno (what is already open stays in *uffd / *base for the caller to
 * close). */
static inline int bench_uffd_region(size_t size, int *uffd, char **base)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };

	*uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (*uffd < 0 || ioctl(*uffd, UFFDIO_API, &api))
		return -errno;
	*base = mmap(NULL, size, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (*base == MAP_FAILED)
		return -errno;
	reg.range.start = (uint64_t)(uintptr_t)*base;
	reg.range.len = size;
	return ioctl(*uffd, UFFDIO_REGISTER, &reg) ? -errno : 0;
}
