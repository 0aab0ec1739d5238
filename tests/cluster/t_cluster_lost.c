/* SPDX-License-Identifier: MIT */
/*
 * Four servers, R = 2 (W = 2), two of them SIGKILLed: reads of data whose
 * newest copy may sit only on dead servers raise SIGBUS (after the retry
 * timeout) in the reading thread, and never return zeros or old data.
 * Every read is either the written value or SIGBUS; reads of groups with
 * both homes alive still succeed; and with the two servers back, all of
 * it reads back (nothing acknowledged was lost).
 */
#include "t_cluster.h"

#define CHUNK (64 * T_KIB)
#define GROUP CHUNK
#define SIZE (4 * T_MIB)      /* 64 groups */
#define NSRV 4
#define TIMEOUT_MS 300

static void test_both_replicas_dead(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	const volatile uint64_t *w;
	unsigned bus = 0, good = 0;
	uint64_t seed = t_random_seed("lost");
	unsigned a = (unsigned)(seed % NSRV), b = (a + 1 + (unsigned)(seed >> 8) % (NSRV - 1)) % NSRV;

	(void)state;
	t_catch_install();
	t_config(&cfg, CHUNK, 16, 8);
	ctx = t_ctx(&cfg);
	obj = t_cluster_obj(ctx, NSRV, "lost", SIZE, CHUNK, GROUP, 2,
			    TIMEOUT_MS);
	assert_int_equal(ufo_advise(obj, 0, 0, UFO_ADV_RANDOM), 0);
	t_cluster_fill(obj, 11);
	assert_int_equal(ufo_sync(obj), 0);
	assert_int_equal(ufo_refresh(obj), 0);

	t_server_kill(&t_srvs[a]);
	t_server_kill(&t_srvs[b]);
	fprintf(stderr, "killed servers %u and %u\n", a, b);
	w = ufo_body(obj);
	for (uint64_t g = 0; g < SIZE / GROUP; g++) {
		uint64_t i = g * GROUP / sizeof(uint64_t) + g % 7, v = 0;
		int sig = t_try_read(&w[i], &v);

		if (sig) {
			assert_int_equal(sig, SIGBUS);
			bus++;
			continue;
		}
		if (v != t_value(11, i))
			fail_msg("group %llu word %llu: %#llx, want %#llx",
				 (unsigned long long)g, (unsigned long long)i,
				 (unsigned long long)v,
				 (unsigned long long)t_value(11, i));
		good++;
	}
	fprintf(stderr, "%u groups read, %u raised SIGBUS\n", good, bus);
	/* Both homes dead: 1 group in 6 on average (64 groups). */
	assert_true(bus > 0);
	/* Both homes alive: also 1 in 6; those must not fail. */
	assert_true(good > 0);
	assert_int_equal(t_obj_stats(obj).sigbus, bus);

	assert_int_equal(t_server_restart(&t_srvs[a]), 0);
	assert_int_equal(t_server_restart(&t_srvs[b]), 0);
	ufo_free(obj); /* nothing dirty; chunks that faulted stay absent */
	obj = t_cluster_obj(ctx, NSRV, "lost", 0, 0, 0, 0, 0);
	assert_int_equal(t_cluster_check(obj, 11), -1);
	assert_int_equal(ufo_free(obj), 0);
	ufo_ctx_destroy(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_both_replicas_dead),
	};

	t_cluster_setup(NSRV);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
