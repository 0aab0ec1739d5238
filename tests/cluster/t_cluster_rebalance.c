/* SPDX-License-Identifier: MIT */
/*
 * Adding a fourth server to three and rebalancing moves only what
 * rendezvous hashing gives the new server, about a quarter of the copies
 * (R = 2: half the groups get it as one of their two homes; R = 1: a
 * quarter of the groups move), and loses nothing: both objects read back
 * through the four servers, the R = 2 one even with any one of them
 * stopped, and a full dry run finds nothing left to copy or discard.
 */
#include "t_cluster.h"

#define CHUNK (64 * T_KIB)
#define GROUP CHUNK
#define SIZE (16 * T_MIB)  /* 256 groups */
#define GROUPS (SIZE / GROUP)

static struct ufo_repair_stats rebalance(struct ufo_cluster *c,
					 const char *name, unsigned flags)
{
	struct ufo_repair_stats st;

	assert_int_equal(ufo_cluster_repair(c, name,
					    UFO_REPAIR_REBALANCE | flags,
					    NULL, NULL, &st), 0);
	t_repair_print(name, &st);
	return st;
}

static void assert_quarter(uint64_t moved, uint64_t of)
{
	double f = (double)moved / (double)of;

	fprintf(stderr, "moved %llu of %llu (%.3f)\n", (unsigned long long)moved,
		(unsigned long long)of, f);
	/* Binomial(of, 1/4): these bounds are over 4 standard deviations. */
	assert_true(f > 0.15 && f < 0.35);
}

static void test_add_fourth(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *two, *one;
	struct ufo_cluster *c;
	struct ufo_repair_stats st;
	uint64_t du;

	(void)state;
	t_catch_install();
	t_config(&cfg, CHUNK, 32, 16);
	ctx = t_ctx(&cfg);
	two = t_cluster_obj(ctx, 3, "r2", SIZE, CHUNK, GROUP, 2, 0);
	one = t_cluster_obj(ctx, 3, "r1", SIZE, CHUNK, GROUP, 1, 0);
	t_cluster_fill(two, 21);
	t_cluster_fill(one, 22);
	assert_int_equal(ufo_free(two), 0);
	assert_int_equal(ufo_free(one), 0);

	t_cluster_add(3);
	c = t_cluster(4);
	st = rebalance(c, "r2", UFO_REPAIR_DRY_RUN);
	assert_int_equal(st.blocks_discarded, 0); /* nothing changed yet */
	st = rebalance(c, "r2", 0);
	assert_quarter(st.replicas_moved, GROUPS * 2);
	assert_int_equal(st.blocks_copied, st.replicas_moved); /* 1 block each */
	assert_int_equal(st.blocks_discarded, st.replicas_moved);
	assert_true(st.groups_moved >= st.replicas_moved / 2);
	st = rebalance(c, "r1", 0);
	assert_quarter(st.groups_moved, GROUPS);
	assert_int_equal(st.replicas_moved, st.groups_moved);
	assert_int_equal(st.blocks_copied, st.groups_moved);

	/* Again: the placement is over all four already; nothing to do. */
	st = rebalance(c, NULL, 0);
	assert_int_equal(st.objects, 2);
	assert_int_equal(st.groups_moved, 0);
	assert_int_equal(st.blocks_copied, 0);
	assert_int_equal(st.blocks_discarded, 0);
	ufo_cluster_close(c);

	/* The new server holds its share: a quarter of 3 x 16 MiB. */
	du = t_disk_usage(t_srvs[3].data);
	fprintf(stderr, "new server: %llu KiB on disk\n",
		(unsigned long long)(du >> 10));
	assert_true(du > 3 * SIZE / 4 * 6 / 10 && du < 3 * SIZE / 4 * 14 / 10);

	two = t_cluster_obj(ctx, 4, "r2", 0, 0, 0, 0, 0);
	one = t_cluster_obj(ctx, 4, "r1", 0, 0, 0, 0, 0);
	assert_int_equal(t_cluster_check(one, 22), -1);
	assert_int_equal(t_cluster_check(two, 21), -1);
	for (unsigned i = 0; i < 4; i++) {
		T_WAIT_UNTIL(t_cluster_all_up(two, 4));
		t_server_kill(&t_srvs[i]);
		assert_int_equal(ufo_refresh(two), 0);
		assert_int_equal(t_cluster_check(two, 21), -1);
		assert_int_equal(t_server_restart(&t_srvs[i]), 0);
	}
	/* New writes go to the new homes. */
	t_cluster_fill(two, 23);
	assert_int_equal(ufo_sync(two), 0);
	assert_int_equal(ufo_refresh(two), 0);
	assert_int_equal(t_cluster_check(two, 23), -1);
	assert_int_equal(t_obj_stats(two).sigbus, 0);
	assert_int_equal(ufo_free(two), 0);
	assert_int_equal(ufo_free(one), 0);
	ufo_ctx_destroy(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_fourth),
	};

	t_cluster_setup(3);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
