/* SPDX-License-Identifier: MIT */
/*
 * Scan mode (UFO_DIRTY_SCAN): writes make no fault; sync, eviction and
 * DONTNEED send only the written pages, as coalesced ranges of whole
 * elements, and the data survives eviction and reload.  The stress test
 * has writers going on while syncs, evictions and DONTNEED scan: every
 * write must reach the backing store.  It loses writes when the scan and
 * the re-protection are two steps (UFO_SCAN_UNSAFE_SPLIT=1, the variant
 * scan.c warns about).  Skips (77) without WP_ASYNC or PAGEMAP_SCAN.
 */
#include "t_helpers.h"

#define CHUNK (64 * T_KIB)
#define NCHUNKS 8
#define MAX_CALLS 4096

struct call {
	uint64_t start, end;
};

/* The backing store and a log of the writeback calls since st_reset(). */
struct store {
	struct t_backing b; /* first: t_backing_populate's user */
	size_t elem_size;
	pthread_mutex_t lock;
	struct call calls[MAX_CALLS];
	unsigned ncalls;
	_Atomic bool fail; /* writeback returns -EIO while set */
};

static int st_populate(void *user, uint64_t start, uint64_t end, void *dst)
{
	struct store *s = user;

	memcpy(dst, (char *)s->b.words + start * s->elem_size,
	       (end - start) * s->elem_size);
	return 0;
}

static int st_writeback(void *user, uint64_t start, uint64_t end,
			const void *src)
{
	struct store *s = user;

	if (atomic_load(&s->fail))
		return -EIO;
	memcpy((char *)s->b.words + start * s->elem_size, src,
	       (end - start) * s->elem_size);
	pthread_mutex_lock(&s->lock);
	if (s->ncalls < MAX_CALLS)
		s->calls[s->ncalls++] = (struct call){ start, end };
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void st_reset(struct store *s)
{
	pthread_mutex_lock(&s->lock);
	s->ncalls = 0;
	pthread_mutex_unlock(&s->lock);
}

static struct store *st_new(size_t bytes, size_t elem_size)
{
	struct store *s = t_zalloc(sizeof(*s));

	s->b.words = t_zalloc(bytes);
	s->elem_size = elem_size;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

static void st_free(struct store *s)
{
	pthread_mutex_destroy(&s->lock);
	free(s->b.words);
	free(s);
}

static struct ufo_ctx *scan_ctx(unsigned high_chunks, unsigned low_chunks)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;

	t_config(&cfg, CHUNK, high_chunks, low_chunks);
	cfg.dirty_mode = UFO_DIRTY_SCAN;
	ctx = t_ctx(&cfg);
	assert_int_equal(ufo_ctx_dirty_mode(ctx), UFO_DIRTY_SCAN);
	return ctx;
}

static struct ufo_obj *scan_obj(struct ufo_ctx *ctx, struct store *s,
				uint64_t count)
{
	struct ufo_params p;

	ufo_params_init(&p);
	p.elem_size = s->elem_size;
	p.elem_count = count;
	p.chunk_size = CHUNK;
	p.populate = st_populate;
	p.writeback = st_writeback;
	p.user = s;
	return t_obj(ctx, &p);
}

/* Asserts the calls logged are exactly want[0..n), in order. */
static void expect_calls(struct store *s, const struct call *want, unsigned n)
{
	pthread_mutex_lock(&s->lock);
	if (s->ncalls != n)
		fail_msg("%u writeback calls, expected %u", s->ncalls, n);
	for (unsigned i = 0; i < n; i++)
		if (s->calls[i].start != want[i].start ||
		    s->calls[i].end != want[i].end)
			fail_msg("call %u: [%llu, %llu), expected [%llu, %llu)",
				 i, (unsigned long long)s->calls[i].start,
				 (unsigned long long)s->calls[i].end,
				 (unsigned long long)want[i].start,
				 (unsigned long long)want[i].end);
	pthread_mutex_unlock(&s->lock);
}

#define WPP (4096 / sizeof(uint64_t)) /* u64 per 4 KiB page */
#define EPC (CHUNK / sizeof(uint64_t))

/* Sync sends only written pages, adjacent ones as one range, with no
 * write fault; a second sync sends nothing. */
static void test_sync_ranges(void **state)
{
	struct store *s = st_new(NCHUNKS * CHUNK, 8);
	struct ufo_ctx *ctx = scan_ctx(0, 0);
	struct ufo_obj *obj = scan_obj(ctx, s, NCHUNKS * EPC);
	uint64_t *a = ufo_body(obj);
	struct ufo_stats st;
	const struct call want[] = {
		{ EPC + 2 * WPP, EPC + 4 * WPP },     /* pages 2-3 of chunk 1 */
		{ EPC + 7 * WPP, EPC + 8 * WPP },     /* page 7 */
		{ 4 * EPC, 4 * EPC + WPP },           /* page 0 of chunk 4 */
	};

	(void)state;
	assert_int_equal(t_page_size(), 4096);
	for (uint64_t i = 0; i < NCHUNKS * EPC; i += WPP)
		assert_true(a[i] == 0); /* load everything, clean */
	a[EPC + 2 * WPP + 5] = 11;
	a[EPC + 3 * WPP] = 12;
	a[EPC + 7 * WPP + WPP - 1] = 13;
	a[4 * EPC + 1] = 14;
	st_reset(s);
	assert_int_equal(ufo_sync(obj), 0);
	expect_calls(s, want, 3);
	assert_true(s->b.words[EPC + 2 * WPP + 5] == 11);
	assert_true(s->b.words[EPC + 3 * WPP] == 12);
	assert_true(s->b.words[EPC + 8 * WPP - 1] == 13);
	assert_true(s->b.words[4 * EPC + 1] == 14);
	st = t_obj_stats(obj);
	assert_int_equal(st.wp_faults, 0);
	assert_int_equal(st.writeback_bytes, 4 * 4096);
	assert_int_equal(st.writeback_chunk_bytes, 2 * CHUNK);

	st_reset(s);
	assert_int_equal(ufo_sync(obj), 0);
	expect_calls(s, want, 0);
	a[EPC + 2 * WPP] = 15; /* written again after the sync */
	assert_int_equal(ufo_sync(obj), 0);
	expect_calls(s, &(struct call){ EPC + 2 * WPP, EPC + 3 * WPP }, 1);
	assert_int_equal(ufo_free(obj), 0);
	assert_true(s->b.words[EPC + 2 * WPP] == 15);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	st_free(s);
}

/* Elements that straddle a page boundary are sent whole: 12-byte
 * elements, one written across the boundary of pages 0 and 1. */
static void test_odd_elements(void **state)
{
	const size_t es = 12;
	uint64_t count = 3 * CHUNK / 4; /* chunks: 72 KiB, lcm(page, 12) */
	struct store *s = st_new(count * es, es);
	struct ufo_ctx *ctx = scan_ctx(0, 0);
	struct ufo_obj *obj = scan_obj(ctx, s, count);
	char *a = ufo_body(obj);
	uint64_t e = 4096 / es; /* element 341: bytes 4092..4103 */

	(void)state;
	memset(a + e * es, 0x5a, es);
	st_reset(s);
	assert_int_equal(ufo_sync(obj), 0);
	pthread_mutex_lock(&s->lock);
	assert_int_equal(s->ncalls, 1);
	/* pages 0 and 1 as whole elements: [0, ceil(8192 / 12)) */
	assert_true(s->calls[0].start == 0);
	assert_true(s->calls[0].end == (2 * 4096 + es - 1) / es);
	pthread_mutex_unlock(&s->lock);
	assert_int_equal(memcmp((char *)s->b.words + e * es, a + e * es, es), 0);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	st_free(s);
}

/* Eviction under a small budget and DONTNEED send only the written pages;
 * what is read back after the reload is what was written. */
static void test_evict_and_dontneed(void **state)
{
	const uint64_t nchunks = 32;
	struct store *s = st_new(nchunks * CHUNK, 8);
	struct ufo_ctx *ctx = scan_ctx(4, 2);
	struct ufo_obj *obj = scan_obj(ctx, s, nchunks * EPC);
	uint64_t *a = ufo_body(obj);
	struct ufo_stats st;

	(void)state;
	for (uint64_t c = 0; c < nchunks; c++)
		a[c * EPC + 3 * WPP + c] = 1000 + c; /* one page per chunk */
	st = t_obj_stats(obj);
	assert_true(st.evictions > 0);
	assert_true(st.writebacks > 0);
	/* one page of each chunk evicted so far, not the whole chunk */
	assert_int_equal(st.writeback_bytes * (CHUNK / 4096),
			 st.writeback_chunk_bytes);
	assert_int_equal(ufo_advise(obj, 0, nchunks * EPC, UFO_ADV_DONTNEED), 0);
	st = t_obj_stats(obj);
	assert_int_equal(st.resident_bytes, 0);
	assert_int_equal(st.writeback_bytes, nchunks * 4096);
	assert_int_equal(st.writeback_chunk_bytes, nchunks * CHUNK);
	for (uint64_t c = 0; c < nchunks; c++) {
		assert_true(s->b.words[c * EPC + 3 * WPP + c] == 1000 + c);
		assert_true(a[c * EPC + 3 * WPP + c] == 1000 + c); /* reload */
	}
	assert_int_equal(t_obj_stats(obj).wp_faults, 0);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	st_free(s);
}

/* A failed store forgets nothing: the pages it re-protected are marked
 * written again, and a DONTNEED whose store fails puts the pages back. */
static void test_store_failure(void **state)
{
	struct store *s = st_new(NCHUNKS * CHUNK, 8);
	struct ufo_ctx *ctx = scan_ctx(0, 0);
	struct ufo_obj *obj = scan_obj(ctx, s, NCHUNKS * EPC);
	uint64_t *a = ufo_body(obj);

	(void)state;
	a[2 * EPC + 5 * WPP] = 21;
	a[3 * EPC] = 22;
	atomic_store(&s->fail, true);
	assert_int_equal(ufo_sync(obj), -EIO);
	assert_int_equal(ufo_advise(obj, 3 * EPC, 4 * EPC, UFO_ADV_DONTNEED),
			 -EIO);
	assert_true(t_obj_stats(obj).writeback_errors > 0);
	assert_true(a[3 * EPC] == 22); /* put back */
	assert_true(t_obj_stats(obj).resident_bytes > 0);
	atomic_store(&s->fail, false);
	st_reset(s);
	assert_int_equal(ufo_sync(obj), 0);
	expect_calls(s, (const struct call[]){
			     { 2 * EPC + 5 * WPP, 2 * EPC + 6 * WPP },
			     { 3 * EPC, 3 * EPC + WPP } }, 2);
	assert_true(s->b.words[2 * EPC + 5 * WPP] == 21);
	assert_true(s->b.words[3 * EPC] == 22);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	st_free(s);
}

/* ---- the stress test. */

#define S_CHUNKS 64
#define S_PAGES (S_CHUNKS * CHUNK / 4096)
#define S_WRITERS 2
#define S_ROUNDS 400
#define S_MIN_ROUNDS 5  /* however slow the build (TSan) */
#define S_SECONDS 8

struct stress {
	struct store *s;
	_Atomic unsigned next_id;
	struct ufo_obj *obj;
	pthread_barrier_t start, end;
	_Atomic bool stop;    /* scanners: stop */
	_Atomic uint64_t round;
	_Atomic uint64_t scans;
	_Atomic int err;      /* the scanners' first error (cmocka asserts
			       * only on the main thread) */
};

static void s_error(struct stress *x, int rc)
{
	int none = 0;

	if (rc && atomic_compare_exchange_strong(&x->err, &none, rc))
		fprintf(stderr, "stress: a scanner got %s\n", strerror(-rc));
}

static uint64_t s_value(uint64_t round, uint64_t page)
{
	return round << 32 | page;
}

/* Writer w: in each round, every one of its pages once, in an order that
 * changes with the round.  Each write is then the page's last of the
 * round: a scan that misses it loses it for good. */
static void *s_writer(void *arg)
{
	struct stress *x = arg;
	uint64_t *a = ufo_body(x->obj);
	uint64_t rng = (uint64_t)(uintptr_t)&rng | 1;
	unsigned id = atomic_fetch_add(&x->next_id, 1);

	for (;;) {
		uint64_t r, off;

		pthread_barrier_wait(&x->start);
		r = atomic_load(&x->round);
		if (!r)
			break;
		off = t_rand(&rng) % S_PAGES;
		for (uint64_t k = 0; k < S_PAGES; k++) {
			uint64_t p = (k + off) % S_PAGES;

			if (p % S_WRITERS == id)
				a[p * WPP + r % WPP] = s_value(r, p);
		}
		pthread_barrier_wait(&x->end);
	}
	return NULL;
}

/* Scanners: syncs, and DONTNEED of one chunk, over and over. */
static void *s_syncer(void *arg)
{
	struct stress *x = arg;

	while (!atomic_load(&x->stop)) {
		s_error(x, ufo_sync(x->obj));
		atomic_fetch_add(&x->scans, 1);
	}
	return NULL;
}

static void *s_dropper(void *arg)
{
	struct stress *x = arg;
	uint64_t rng = 7;

	while (!atomic_load(&x->stop)) {
		uint64_t c = t_rand(&rng) % S_CHUNKS;

		s_error(x, ufo_advise(x->obj, c * EPC, (c + 1) * EPC,
				      UFO_ADV_DONTNEED));
		atomic_fetch_add(&x->scans, 1);
	}
	return NULL;
}

/* Pages whose value of round r is not in the backing store. */
static unsigned s_lost(struct stress *x, uint64_t r)
{
	unsigned lost = 0;

	for (uint64_t p = 0; p < S_PAGES; p++)
		if (x->s->b.words[p * WPP + r % WPP] != s_value(r, p))
			lost++;
	return lost;
}

static void test_stress(void **state)
{
	struct stress *x = t_zalloc(sizeof(*x));
	struct ufo_ctx *ctx = scan_ctx(S_CHUNKS / 2, S_CHUNKS / 4);
	pthread_t w[S_WRITERS], sy, dr;
	uint64_t t0 = (uint64_t)time(NULL), rounds = 0;
	unsigned lost = 0, bad_rounds = 0;
	struct ufo_stats st;

	(void)state;
	x->s = st_new(S_CHUNKS * CHUNK, 8);
	x->obj = scan_obj(ctx, x->s, S_CHUNKS * EPC);
	pthread_barrier_init(&x->start, NULL, S_WRITERS + 1);
	pthread_barrier_init(&x->end, NULL, S_WRITERS + 1);
	for (unsigned i = 0; i < S_WRITERS; i++)
		assert_int_equal(pthread_create(&w[i], NULL, s_writer, x), 0);
	assert_int_equal(pthread_create(&sy, NULL, s_syncer, x), 0);
	assert_int_equal(pthread_create(&dr, NULL, s_dropper, x), 0);
	for (uint64_t r = 1; r <= S_ROUNDS && (r <= S_MIN_ROUNDS ||
	     (uint64_t)time(NULL) - t0 < S_SECONDS); r++) {
		unsigned n;

		atomic_store(&x->round, r);
		pthread_barrier_wait(&x->start);
		pthread_barrier_wait(&x->end);
		/* The writes of round r are done: one more sync must leave
		 * every one of them in the backing store. */
		assert_int_equal(ufo_sync(x->obj), 0);
		n = s_lost(x, r);
		lost += n;
		bad_rounds += n != 0;
		rounds = r;
	}
	atomic_store(&x->round, 0);
	pthread_barrier_wait(&x->start);
	atomic_store(&x->stop, true);
	for (unsigned i = 0; i < S_WRITERS; i++)
		pthread_join(w[i], NULL);
	pthread_join(sy, NULL);
	pthread_join(dr, NULL);
	st = t_obj_stats(x->obj);
	fprintf(stderr, "stress: %llu rounds, %llu scans, %llu evictions, "
		"%llu of %llu chunk bytes written back; %u writes lost in %u "
		"rounds\n", (unsigned long long)rounds,
		(unsigned long long)atomic_load(&x->scans),
		(unsigned long long)st.evictions,
		(unsigned long long)st.writeback_bytes,
		(unsigned long long)st.writeback_chunk_bytes, lost, bad_rounds);
	assert_int_equal(atomic_load(&x->err), 0);
	assert_true(rounds >= S_MIN_ROUNDS);
	assert_true(atomic_load(&x->scans) > 0);
	assert_true(st.evictions > 0);
	assert_int_equal(lost, 0);
	assert_int_equal(ufo_free(x->obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	pthread_barrier_destroy(&x->start);
	pthread_barrier_destroy(&x->end);
	st_free(x->s);
	free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sync_ranges),
		cmocka_unit_test(test_odd_elements),
		cmocka_unit_test(test_evict_and_dontneed),
		cmocka_unit_test(test_store_failure),
		cmocka_unit_test(test_stress),
	};

	t_clear_env();
	t_require_uffd();
	if (!t_have_scan()) {
		fprintf(stderr, "skip: no UFFD_FEATURE_WP_ASYNC or PAGEMAP_SCAN (Linux 6.7)\n");
		return T_EXIT_SKIP;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
