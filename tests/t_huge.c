/* SPDX-License-Identifier: MIT */
/*
 * Huge-page objects (UFO_HUGE): the body is 2 MiB hugetlb pages, chunks
 * are whole huge pages, and a chunk is installed, written back and dropped
 * as such.  Skips, with the reason, when the kernel has fewer than
 * NEED_PAGES free 2 MiB pages (sysctl vm.nr_hugepages; scripts/test.sh
 * reserves some when it runs as root).
 */
#include "t_helpers.h"

#define HUGE (2 * T_MIB)
#define NEED_PAGES 16
#define CHUNKS 12
/* A last chunk that is not whole: 1000 words into a huge page. */
#define WORDS ((uint64_t)CHUNKS * HUGE / 8 + 1000)

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

static void require_huge_pages(void)
{
	long n = free_huge_pages();

	if (n < NEED_PAGES) {
		fprintf(stderr, "skip: %ld free 2 MiB huge pages, %d needed"
			" (sysctl vm.nr_hugepages)\n", n, NEED_PAGES);
		skip();
	}
}

/* Bytes of hugetlb memory mapped privately at the mapping holding addr,
 * from /proc/self/smaps (Private_Hugetlb), or -1. */
static long hugetlb_kib(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	bool in = false;
	long kib = -1;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			continue;
		}
		if (in && sscanf(line, "Private_Hugetlb: %ld kB", &kib) == 1)
			break;
	}
	fclose(f);
	return kib;
}

struct backing {
	struct t_backing b;
	atomic_uint populates, writebacks;
};

static int populate(void *user, uint64_t start, uint64_t end, void *dst)
{
	struct backing *bk = user;

	atomic_fetch_add(&bk->populates, 1);
	return t_backing_populate(&bk->b, start, end, dst);
}

static int writeback(void *user, uint64_t start, uint64_t end,
		     const void *src)
{
	struct backing *bk = user;

	atomic_fetch_add(&bk->writebacks, 1);
	return t_backing_writeback(&bk->b, start, end, src);
}

static struct ufo_obj *huge_obj(struct ufo_ctx *ctx, struct backing *bk,
				unsigned flags)
{
	struct ufo_params p;

	ufo_params_init(&p);
	p.elem_size = 8;
	p.elem_count = WORDS;
	p.header_size = 100;
	p.chunk_size = T_MIB; /* rounded up to one huge page */
	p.flags = UFO_HUGE | flags;
	p.populate = populate;
	p.writeback = writeback;
	p.user = bk;
	return t_obj(ctx, &p);
}

static void backing_init(struct backing *bk, uint64_t seed)
{
	memset(bk, 0, sizeof(*bk));
	bk->b.words = t_zalloc(WORDS * 8);
	t_fill(bk->b.words, 8, seed, 0, WORDS);
}

/* Scans, writes, syncs, and reads back through a budget of 4 huge pages:
 * every chunk is one populate and a fault or two, the body is hugetlb
 * memory, written words reach the backing and come back after eviction. */
static void test_scan_write_evict(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct backing bk;
	struct ufo_stats st;
	uint64_t *w;
	uint64_t seed = 0x5eed1;

	(void)state;
	require_huge_pages();
	backing_init(&bk, seed);
	t_config(&cfg, HUGE, 4, 2);
	ctx = t_ctx(&cfg);
	obj = huge_obj(ctx, &bk, 0);
	assert_int_equal(ufo_chunk_size(obj), HUGE);
	w = ufo_body(obj);
	assert_int_equal((uintptr_t)w % HUGE, 0);
	((char *)ufo_header(obj))[0] = 1; /* the header is writable memory */

	for (uint64_t i = 0; i < WORDS; i++)
		if (w[i] != t_value(seed, i))
			fail_msg("word %llu wrong after the first scan",
				 (unsigned long long)i);
	st = t_obj_stats(obj);
	fprintf(stderr, "scan: %llu faults, %u populates, %llu resident\n",
		(unsigned long long)st.faults, atomic_load(&bk.populates),
		(unsigned long long)st.resident_bytes);
	assert_int_equal(atomic_load(&bk.populates), CHUNKS + 1);
	/* Per huge page, not per 4 KiB page (512 each): a chunk faults
	 * once, or twice when the scan reaches it while readahead installs
	 * it (the fault that finds it loaded counts too), which depends on
	 * timing: 14 faults of 13 chunks were seen once. */
	assert_true(st.faults <= 2 * (CHUNKS + 1));
	assert_true(hugetlb_kib(w + WORDS - 1) >= 2048);
	assert_true(st.resident_bytes <= 4 * HUGE);

	/* A word in every chunk, then sync: each reaches the backing. */
	for (uint64_t c = 0; c <= CHUNKS; c++)
		w[c * (HUGE / 8) + c] = ~t_value(seed, c);
	assert_int_equal(ufo_sync(obj), 0);
	for (uint64_t c = 0; c <= CHUNKS; c++)
		assert_true(bk.b.words[c * (HUGE / 8) + c] ==
			    ~t_value(seed, c));

	/* Through the budget again: evicted chunks come back written. */
	for (uint64_t i = 0; i < WORDS; i++) {
		uint64_t c = i / (HUGE / 8);
		uint64_t want = i == c * (HUGE / 8) + c ? ~t_value(seed, c)
						       : t_value(seed, i);

		if (w[i] != want)
			fail_msg("word %llu wrong after eviction",
				 (unsigned long long)i);
	}
	st = t_obj_stats(obj);
	assert_true(st.evictions >= CHUNKS + 1 - 4);
	assert_int_equal(st.sigbus, 0);
	assert_int_equal(ufo_free(obj), 0);
	ufo_ctx_destroy(ctx);
	free(bk.b.words);
}

/* A read-only huge-page object reads the same; UFO_HUGE is the only new
 * flag accepted. */
static void test_read_only_and_flags(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj = NULL;
	struct ufo_params p;
	struct backing bk;
	const uint64_t *w;
	uint64_t seed = 0x5eed2;

	(void)state;
	require_huge_pages();
	backing_init(&bk, seed);
	t_config(&cfg, HUGE, 4, 2);
	ctx = t_ctx(&cfg);
	obj = huge_obj(ctx, &bk, UFO_READ_ONLY);
	w = ufo_body(obj);
	for (uint64_t i = 0; i < WORDS; i += 509)
		assert_true(w[i] == t_value(seed, i));
	assert_int_equal(ufo_free(obj), 0);

	ufo_params_init(&p);
	p.elem_count = 1;
	p.populate = populate;
	p.flags = UFO_HUGE << 1;
	obj = NULL;
	assert_int_equal(ufo_create(ctx, &p, &obj), -EINVAL);
	assert_null(obj);
	ufo_ctx_destroy(ctx);
	free(bk.b.words);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan_write_evict),
		cmocka_unit_test(test_read_only_and_flags),
	};

	t_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
