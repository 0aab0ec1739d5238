/* SPDX-License-Identifier: MIT */
/*
 * A populate callback that reads another UFO of the same context must not
 * deadlock, even with a single configured handler thread: the library has
 * to start another handler for the inner fault.  A deadlock trips the
 * watchdog (alarm) and fails the program instead of hanging it.
 *
 * B holds t_value(SEED, i); A[i] = 3 * B[i] + 1, computed by A's populate
 * from B's body; C[i] = A[i] ^ i, computed from A's body (two levels).
 */
#include "t_helpers.h"

#define SEED 71
#define CHUNK (64 * T_KIB)
#define EPC (CHUNK / sizeof(uint64_t))
#define NCHUNKS 24
#define COUNT (NCHUNKS * EPC - 17)
#define SCANNERS 3

struct nested {
	struct ufo_obj *a, *b, *c;
	atomic_uint populate_a, populate_b, populate_c;
	atomic_uint wrong;
};

static int pop_b(void *user, uint64_t start, uint64_t end, void *dst)
{
	struct nested *n = user;

	atomic_fetch_add(&n->populate_b, 1);
	t_fill(dst, sizeof(uint64_t), SEED, start, end);
	return 0;
}

static int pop_a(void *user, uint64_t start, uint64_t end, void *dst)
{
	struct nested *n = user;
	const volatile uint64_t *b = ufo_body(n->b);
	uint64_t *out = dst;

	atomic_fetch_add(&n->populate_a, 1);
	/* Backwards, so the inner faults hit B's chunks out of order. */
	for (uint64_t i = end; i-- > start;)
		out[i - start] = 3 * b[i] + 1;
	return 0;
}

static int pop_c(void *user, uint64_t start, uint64_t end, void *dst)
{
	struct nested *n = user;
	const volatile uint64_t *a = ufo_body(n->a);
	uint64_t *out = dst;

	atomic_fetch_add(&n->populate_c, 1);
	for (uint64_t i = start; i < end; i++)
		out[i - start] = a[i] ^ i;
	return 0;
}

static struct ufo_obj *mk(struct ufo_ctx *ctx, struct nested *n,
			  ufo_populate_fn fn)
{
	struct ufo_params p;

	ufo_params_init(&p);
	p.elem_size = sizeof(uint64_t);
	p.elem_count = COUNT;
	p.chunk_size = CHUNK;
	p.populate = fn;
	p.user = n;
	return t_obj(ctx, &p);
}

static uint64_t want_a(uint64_t i)
{
	return 3 * t_value(SEED, i) + 1;
}

static void *scan_c(void *arg)
{
	struct nested *n = arg;
	const volatile uint64_t *c = ufo_body(n->c);
	uint64_t rng = (uint64_t)pthread_self() | 1;

	for (unsigned k = 0; k < 400; k++) {
		uint64_t i = t_rand(&rng) % COUNT;

		if (c[i] != (want_a(i) ^ i))
			atomic_fetch_add(&n->wrong, 1);
	}
	return NULL;
}

static void run_nested(unsigned high_chunks)
{
	struct ufo_config cfg, got;
	struct ufo_ctx *ctx;
	struct nested *n = t_zalloc(sizeof(*n));
	const volatile uint64_t *a;
	pthread_t thr[SCANNERS];

	t_config(&cfg, CHUNK, high_chunks, high_chunks / 2);
	cfg.threads = 1;
	ctx = t_ctx(&cfg);
	ufo_ctx_config(ctx, &got);
	assert_int_equal(got.threads, 1);

	n->b = mk(ctx, n, pop_b);
	n->a = mk(ctx, n, pop_a);
	n->c = mk(ctx, n, pop_c);
	a = ufo_body(n->a);

	/* One level: A's populate faults on B. */
	for (uint64_t i = 0; i < COUNT; i += 97)
		if (a[i] != want_a(i))
			fail_msg("A[%llu] wrong", (unsigned long long)i);
	assert_true(atomic_load(&n->populate_a) >= NCHUNKS);
	assert_true(atomic_load(&n->populate_b) >= NCHUNKS);

	/* Two levels, from several threads at once. */
	for (int t = 0; t < SCANNERS; t++)
		assert_int_equal(pthread_create(&thr[t], NULL, scan_c, n), 0);
	for (int t = 0; t < SCANNERS; t++)
		pthread_join(thr[t], NULL);
	assert_int_equal(atomic_load(&n->wrong), 0);
	assert_true(atomic_load(&n->populate_c) >= 1);

	/* Everything dropped, then read back through both levels. */
	assert_int_equal(ufo_reset(n->a), 0);
	assert_int_equal(ufo_reset(n->b), 0);
	assert_int_equal(ufo_reset(n->c), 0);
	scan_c(n);
	assert_int_equal(atomic_load(&n->wrong), 0);
	assert_int_equal(t_ctx_stats(ctx).sigbus, 0);

	assert_int_equal(ufo_free(n->c), 0);
	assert_int_equal(ufo_free(n->a), 0);
	assert_int_equal(ufo_free(n->b), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	free(n);
}

/* Everything fits: only the handler question. */
static void test_nested_roomy(void **state)
{
	(void)state;
	run_nested(4 * NCHUNKS);
}

/* A budget of a few chunks for three objects: the inner fault also needs
 * room while the outer one holds its reservation. */
static void test_nested_tight(void **state)
{
	(void)state;
	run_nested(6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nested_roomy),
		cmocka_unit_test(test_nested_tight),
	};

	t_setup();
	t_watchdog(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
