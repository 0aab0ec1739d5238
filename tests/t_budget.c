/* SPDX-License-Identifier: MIT */
/*
 * The budget holds: scanning (reading, then writing, then reading at
 * random) an object 64 times the high watermark, the resident memory of its
 * mapping never exceeds high + the chunks that may be in flight + the header.
 * Measured two ways: the kernel's Rss in /proc/self/smaps (by a monitor
 * thread and after every chunk) and the library's own resident_bytes.
 */
#include "t_helpers.h"

#define SEED 57
#define CHUNK (64 * T_KIB)
#define HIGH_CHUNKS 4
#define LOW_CHUNKS 2
#define EPC (CHUNK / sizeof(uint64_t))
#define NCHUNKS (64 * HIGH_CHUNKS)
#define COUNT (NCHUNKS * EPC)
#define HEADER 100

struct budget {
	struct t_backing backing; /* first: the callbacks' user */
	struct ufo_obj *obj;
	uintptr_t lo, hi;      /* header start .. body end, page aligned */
	size_t bound;
	atomic_size_t max_rss; /* bytes */
	atomic_size_t max_resident;
	atomic_uint samples;
	atomic_uint unmeasured; /* smaps showed no VMA of ours */
	atomic_bool stop;
};

/*
 * Rss in bytes of the VMAs lying entirely inside [lo, hi), or -1 when there
 * is none.  A VMA reaching outside the range is not ours alone (the header
 * pages may merge with a neighbouring anonymous mapping) and is skipped; the
 * body, registered with userfaultfd, never merges.
 */
static long long smaps_rss(uintptr_t lo, uintptr_t hi)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	long long total = -1;
	int inside = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;
		long long kb;

		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			inside = start >= lo && end <= hi;
			continue;
		}
		if (inside && sscanf(line, "Rss: %lld kB", &kb) == 1)
			total = (total < 0 ? 0 : total) + kb * 1024;
	}
	fclose(f);
	return total;
}

static void sample(struct budget *b)
{
	long long rss = smaps_rss(b->lo, b->hi);
	struct ufo_stats s;
	size_t old;

	if (rss < 0) {
		atomic_fetch_add(&b->unmeasured, 1);
		return;
	}
	old = atomic_load(&b->max_rss);
	while ((size_t)rss > old &&
	       !atomic_compare_exchange_weak(&b->max_rss, &old, (size_t)rss))
		;
	if (ufo_obj_stats(b->obj, &s) == 0) {
		old = atomic_load(&b->max_resident);
		while (s.resident_bytes > old &&
		       !atomic_compare_exchange_weak(&b->max_resident, &old,
						     s.resident_bytes))
			;
	}
	atomic_fetch_add(&b->samples, 1);
}

static void *monitor(void *arg)
{
	struct budget *b = arg;

	while (!atomic_load(&b->stop)) {
		sample(b);
		t_sleep_us(200);
	}
	return NULL;
}

struct scanner {
	struct budget *b;
	unsigned id, n;
	uint64_t wrong;
	pthread_t thr;
};

/* Scans the chunks c with c % n == id: sequential reads, sequential writes
 * of every element (dirty chunks must be written back before they are
 * dropped), then random reads that must see the writes.  Samples the
 * resident size after every chunk. */
static void *scan(void *arg)
{
	struct scanner *sc = arg;
	struct budget *b = sc->b;
	volatile uint64_t *body = ufo_body(b->obj);
	uint64_t rng = sc->id + 5;

	for (uint64_t c = sc->id; c < NCHUNKS; c += sc->n) {
		for (uint64_t i = c * EPC; i < (c + 1) * EPC; i += 512)
			sc->wrong += body[i] != t_value(SEED, i);
		sample(b);
	}
	for (uint64_t c = sc->id; c < NCHUNKS; c += sc->n) {
		for (uint64_t i = c * EPC; i < (c + 1) * EPC; i++)
			body[i] = ~t_value(SEED, i);
		sample(b);
	}
	for (unsigned k = 0; k < 4 * NCHUNKS / sc->n; k++) {
		uint64_t c = t_rand(&rng) % (NCHUNKS / sc->n) * sc->n + sc->id;
		uint64_t i = c * EPC + t_rand(&rng) % EPC;

		sc->wrong += body[i] != ~t_value(SEED, i);
		sample(b);
	}
	return NULL;
}

static void run_budget(unsigned nscanners)
{
	struct ufo_config cfg, got;
	struct ufo_ctx *ctx;
	struct ufo_params p;
	struct ufo_stats s;
	struct budget *b = t_zalloc(sizeof(*b));
	struct scanner sc[8];
	pthread_t mon;
	uint64_t wrong = 0;
	size_t pg = t_page_size();

	assert_true(nscanners <= 8 && NCHUNKS % nscanners == 0);
	b->backing.words = malloc(COUNT * sizeof(uint64_t));
	assert_non_null(b->backing.words);
	t_fill(b->backing.words, sizeof(uint64_t), SEED, 0, COUNT);

	t_config(&cfg, CHUNK, HIGH_CHUNKS, LOW_CHUNKS);
	ctx = t_ctx(&cfg);
	ufo_ctx_config(ctx, &got);
	assert_int_equal(got.high_watermark, HIGH_CHUNKS * CHUNK);
	assert_int_equal(got.low_watermark, LOW_CHUNKS * CHUNK);

	ufo_params_init(&p);
	p.header_size = HEADER;
	p.elem_size = sizeof(uint64_t);
	p.elem_count = COUNT;
	p.chunk_size = CHUNK;
	p.populate = t_backing_populate;
	p.writeback = t_backing_writeback;
	p.user = b;
	b->obj = t_obj(ctx, &p);
	b->lo = ((uintptr_t)ufo_header(b->obj)) / pg * pg;
	b->hi = (uintptr_t)ufo_body(b->obj) +
	       t_round_up(COUNT * sizeof(uint64_t), pg);
	/* In flight: one chunk per handler thread, one per faulting thread
	 * and one more being installed; the header's pages are always
	 * resident. */
	b->bound = got.high_watermark +
		  (got.threads + (nscanners > 1 ? nscanners : 0) + 1) * CHUNK +
		  t_round_up(HEADER, pg);
	assert_true(smaps_rss(b->lo, b->hi) >= 0);

	assert_int_equal(pthread_create(&mon, NULL, monitor, b), 0);
	for (unsigned t = 0; t < nscanners; t++) {
		sc[t] = (struct scanner){ .b = b, .id = t, .n = nscanners };
		assert_int_equal(pthread_create(&sc[t].thr, NULL, scan, &sc[t]),
				 0);
	}
	for (unsigned t = 0; t < nscanners; t++) {
		pthread_join(sc[t].thr, NULL);
		wrong += sc[t].wrong;
	}
	atomic_store(&b->stop, true);
	pthread_join(mon, NULL);

	assert_int_equal(wrong, 0);
	assert_int_equal(atomic_load(&b->unmeasured), 0);
	assert_true(atomic_load(&b->samples) >= 2 * NCHUNKS);
	fprintf(stderr, "%u scanner(s): max Rss %zu KiB, max resident %zu KiB, "
		"bound %zu KiB\n", nscanners, atomic_load(&b->max_rss) / 1024,
		atomic_load(&b->max_resident) / 1024, b->bound / 1024);
	/* Something was measured: the scan did make pages resident. */
	assert_true(atomic_load(&b->max_rss) >= CHUNK);
	assert_true(atomic_load(&b->max_rss) <= b->bound);
	assert_true(atomic_load(&b->max_resident) <= b->bound);

	s = t_obj_stats(b->obj);
	assert_true(s.evictions >= NCHUNKS);
	assert_true(s.writebacks >= NCHUNKS - b->bound / CHUNK);
	assert_true(s.resident_bytes <= b->bound);
	assert_int_equal(s.high_watermark, got.high_watermark);
	assert_int_equal(s.low_watermark, got.low_watermark);

	assert_int_equal(ufo_free(b->obj), 0);
	for (uint64_t i = 0; i < COUNT; i++)
		if (b->backing.words[i] != ~t_value(SEED, i))
			fail_msg("element %llu lost", (unsigned long long)i);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	free(b->backing.words);
	free(b);
}

static void test_budget_one_scanner(void **state)
{
	(void)state;
	run_budget(1);
}

/* Several threads faulting at once: the budget must hold while demand
 * fetches queue up for room. */
static void test_budget_four_scanners(void **state)
{
	(void)state;
	run_budget(4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_one_scanner),
		cmocka_unit_test(test_budget_four_scanners),
	};

	t_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
