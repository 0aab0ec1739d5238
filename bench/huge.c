/* SPDX-License-Identifier: MIT */
/*
 * bench-huge: one sequential scan of a generated object (bench-seqscan's
 * generator: word i is i * GEN_MUL), by default 4 GiB through a 256 MiB
 * budget, as
 *  - kernel mmap (the peer): anonymous memory, generated in place and
 *    summed (no budget: the whole object resident, as the kernel keeps it);
 *  - ufo with 4 KiB chunks, 1 MiB chunks, and UFO_HUGE (2 MiB hugetlb
 *    pages, 2 MiB chunks).
 * Prints GB/s, demand faults and chunks loaded for each, and the ratios
 * of UFO_HUGE to the 1 MiB object and to the peer.  No target: the issue
 * asks for the figures.  Needs (budget / 2 MiB + 8) free huge pages
 * (sysctl vm.nr_hugepages); the huge row says "skipped" otherwise.
 * Exits non-zero when a sum is wrong.
 */
#include <getopt.h>
#include <stdbool.h>

#include "bench_util.h"

struct opts {
	size_t size, budget;
	bool skip_4k;
};

struct result {
	double gbs;      /* < 0: -errno, did not run */
	uint64_t faults, loads;
};

static int gen_populate(void *user, uint64_t start, uint64_t end, void *dst)
{
	(void)user;
	gen_fill(dst, start, end);
	return 0;
}

static struct result run_ufo(const struct opts *o, size_t chunk, unsigned flags)
{
	struct ufo_config cfg;
	struct ufo_params p;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct ufo_stats st;
	struct result r = { 0 };
	uint64_t n = o->size / sizeof(uint64_t), sum;
	double t0;
	int err;

	ufo_config_init(&cfg);
	cfg.high_watermark = o->budget;
	err = ufo_ctx_create(&cfg, &ctx);
	if (err) {
		fprintf(stderr, "ufo_ctx_create: %s\n", strerror(-err));
		return (struct result){ .gbs = err };
	}
	ufo_params_init(&p);
	p.elem_size = sizeof(uint64_t);
	p.elem_count = n;
	p.chunk_size = chunk;
	p.flags = flags;
	p.populate = gen_populate;
	t0 = now_sec();
	err = ufo_create(ctx, &p, &obj);
	if (err) {
		ufo_ctx_destroy(ctx);
		return (struct result){ .gbs = err };
	}
	sum = scan_sum(ufo_body(obj), n);
	r.gbs = (double)o->size / (now_sec() - t0) / 1e9;
	ufo_obj_stats(obj, &st);
	r.faults = st.faults;
	r.loads = st.populate_calls;
	ufo_free(obj);
	ufo_ctx_destroy(ctx);
	if (sum != gen_sum(n)) {
		fprintf(stderr, "ufo chunk %zu: WRONG SUM\n", chunk);
		r.gbs = -EIO;
	}
	return r;
}

static struct result run_mmap(const struct opts *o)
{
	uint64_t n = o->size / sizeof(uint64_t), sum;
	struct result r = { 0 };
	uint64_t *a;
	double t0 = now_sec();

	a = mmap(NULL, o->size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (a == MAP_FAILED)
		return (struct result){ .gbs = -errno };
	for (uint64_t i = 0; i < n; i += 4096 / 8)
		gen_fill(a + i, i, i + 512 < n ? i + 512 : n);
	sum = scan_sum(a, n);
	r.gbs = (double)o->size / (now_sec() - t0) / 1e9;
	r.faults = o->size / 4096; /* first touches, one per page */
	munmap(a, o->size);
	if (sum != gen_sum(n)) {
		fprintf(stderr, "kernel mmap: WRONG SUM\n");
		r.gbs = -EIO;
	}
	return r;
}

static long free_huge_pages(void)
{
	FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/"
			"free_hugepages", "re");
	long n = -1;

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

static void print_row(const char *name, struct result r)
{
	if (r.gbs < 0) {
		printf("%-24s %8s  (%s)\n", name, "skipped",
		       strerror((int)-r.gbs));
		return;
	}
	printf("%-24s %8.3f %10llu %10llu\n", name, r.gbs,
	       (unsigned long long)r.faults, (unsigned long long)r.loads);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "size", required_argument, NULL, 's' },
		{ "budget", required_argument, NULL, 'b' },
		{ "no-4k", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	*o = (struct opts){ .size = 4 * GiB, .budget = 256 * MiB };
	while ((c = getopt_long(argc, argv, "s:b:nh", lo, NULL)) != -1) {
		int err = 0;

		switch (c) {
		case 's': err = parse_size(optarg, &o->size); break;
		case 'b': err = parse_size(optarg, &o->budget); break;
		case 'n': o->skip_4k = true; break;
		case 'h':
			printf("usage: bench-huge [--size 4G] [--budget 256M]"
			       " [--no-4k]\n");
			exit(0);
		default: return -EINVAL;
		}
		if (err)
			return err;
	}
	if (o->size % (2 * MiB) || o->budget < 8 * MiB) {
		fprintf(stderr, "bench-huge: --size must be whole 2 MiB pages"
			" and --budget at least 8M\n");
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct result peer, k4 = { .gbs = -ENOTSUP }, m1, huge;
	long need, have = free_huge_pages();
	char b1[32], b2[32];
	struct opts o;

	if (parse_opts(argc, argv, &o))
		return 2;
	need = (long)(o.budget / (2 * MiB)) + 8;
	printf("bench-huge: sequential scan of %s through a %s budget, one"
	       " run each; %ld free 2 MiB huge pages (%ld needed)\n",
	       fmt_size(o.size, b1), fmt_size(o.budget, b2), have, need);
	printf("%-24s %8s %10s %10s\n", "case", "GB/s", "faults", "loads");
	peer = run_mmap(&o);
	print_row("kernel mmap (peer)", peer);
	if (!o.skip_4k) {
		k4 = run_ufo(&o, 4 * KiB, 0);
		print_row("ufo 4 KiB chunks", k4);
	}
	m1 = run_ufo(&o, MiB, 0);
	print_row("ufo 1 MiB chunks", m1);
	huge = have >= need ? run_ufo(&o, 2 * MiB, UFO_HUGE)
			    : (struct result){ .gbs = -ENOMEM };
	print_row("ufo UFO_HUGE (2 MiB)", huge);
	if (huge.gbs > 0 && m1.gbs > 0 && peer.gbs > 0)
		printf("UFO_HUGE / 1 MiB chunks %.2fx, UFO_HUGE / kernel mmap"
		       " %.2fx, faults %llu vs %llu\n", huge.gbs / m1.gbs,
		       huge.gbs / peer.gbs, (unsigned long long)huge.faults,
		       (unsigned long long)m1.faults);
	else if (huge.gbs == -ENOMEM)
		printf("UFO_HUGE skipped: sysctl vm.nr_hugepages=%ld\n", need);
	return peer.gbs == -EIO || k4.gbs == -EIO || m1.gbs == -EIO ||
	       huge.gbs == -EIO;
}
