/* SPDX-License-Identifier: MIT */
/*
 * Three servers, R = 2 (W = 2): a writer rewrites the whole object round
 * after round (ufo_sync acknowledges a round) and reads it back after each
 * round, while one server is SIGKILLed and later restarted.
 *
 * - Writes go on during the outage (to the live home and a stand-in with
 *   a hint), and every read during it returns the last acknowledged round,
 *   without SIGBUS (a SIGBUS kills the program: t_helpers.h's handler).
 * - Right after the restart, before any repair, the restarted server holds
 *   old versions; reads must still return the newest round (versions, not
 *   the first replica that answers, decide).
 * - The victim then misses one round alone and comes back: a hinted
 *   repair copies its part to it and drops the stand-ins' copies, then
 *   leaves nothing to do for a full dry run, and every
 *   server in turn can be stopped with the data still all readable, so
 *   every block has two good copies.
 */
#include "t_cluster.h"
#include "../monitor/t_mon.h"

#define CHUNK (64 * T_KIB)
#define GROUP (4 * CHUNK)
#define SIZE (8 * T_MIB)      /* 32 groups */
#define NSRV 3

struct writer {
	struct ufo_obj *obj;
	atomic_uint acked;   /* rounds acknowledged (seed = round + 1) */
	atomic_bool stop;
	atomic_int error;    /* first failure: sync error or bad word + 1 */
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	for (unsigned r = 1; !atomic_load(&w->stop); r++) {
		int rc;
		int64_t bad;

		t_cluster_fill(w->obj, r);
		rc = ufo_sync(w->obj);
		if (rc) {
			atomic_store(&w->error, rc);
			break;
		}
		atomic_store(&w->acked, r);
		/* Drop the clean copies: the check reads from the servers. */
		assert_int_equal(ufo_refresh(w->obj), 0);
		bad = t_cluster_check(w->obj, r);
		if (bad >= 0) {
			fprintf(stderr, "round %u: word %lld wrong\n", r,
				(long long)bad);
			atomic_store(&w->error, -EILSEQ);
			break;
		}
	}
	return NULL;
}

static void wait_rounds(struct writer *w, unsigned n)
{
	unsigned want = atomic_load(&w->acked) + n;

	T_WAIT_UNTIL(atomic_load(&w->acked) >= want || atomic_load(&w->error));
	assert_int_equal(atomic_load(&w->error), 0);
	assert_true(atomic_load(&w->acked) >= want);
}

/* With server i stopped, the whole object still reads back as round
 * seed. */
static void check_without(struct ufo_obj *obj, unsigned i, unsigned seed)
{
	T_WAIT_UNTIL(t_cluster_all_up(obj, NSRV));
	assert_true(t_cluster_all_up(obj, NSRV));
	t_server_kill(&t_srvs[i]);
	assert_int_equal(ufo_refresh(obj), 0);
	assert_int_equal(t_cluster_check(obj, seed), -1);
	assert_int_equal(t_server_restart(&t_srvs[i]), 0);
}

static void test_kill_during_writes(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct writer w = { 0 };
	struct ufo_cluster *c;
	struct ufo_repair_stats st;
	pthread_t t;
	uint64_t seed = t_random_seed("failover");
	unsigned victim = (unsigned)(seed % NSRV), last;

	(void)state;
	t_catch_install();
	t_config(&cfg, CHUNK, 16, 8); /* 1 MiB budget: 1/8 of the object */
	ctx = t_ctx(&cfg);
	w.obj = t_cluster_obj(ctx, NSRV, "failover", SIZE, CHUNK, GROUP, 2,
			      2000);
	assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
	wait_rounds(&w, 1);

	t_server_kill(&t_srvs[victim]);
	fprintf(stderr, "killed server %u after %u rounds\n", victim,
		atomic_load(&w.acked));
	wait_rounds(&w, 3); /* writes and reads carry on */

	assert_int_equal(t_server_restart(&t_srvs[victim]), 0);
	fprintf(stderr, "restarted server %u after %u rounds\n", victim,
		atomic_load(&w.acked));
	wait_rounds(&w, 2); /* the restarted one is stale and up */
	atomic_store(&w.stop, true);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&w.error), 0);

	/* Once more without the writer's timing: the victim misses exactly
	 * one round and comes back stale. */
	last = atomic_load(&w.acked) + 1;
	T_WAIT_UNTIL(t_cluster_all_up(w.obj, NSRV));
	t_server_kill(&t_srvs[victim]);
	t_cluster_fill(w.obj, last);
	assert_int_equal(ufo_sync(w.obj), 0);
	assert_int_equal(t_server_restart(&t_srvs[victim]), 0);
	T_WAIT_UNTIL(t_cluster_all_up(w.obj, NSRV));
	assert_int_equal(ufo_refresh(w.obj), 0);
	assert_int_equal(t_cluster_check(w.obj, last), -1);

	/* Repair what the hints name, then nothing may be left. */
	c = t_cluster(NSRV);
	T_WAIT_UNTIL(ufo_cluster_repair(c, "failover", 0, NULL, NULL, &st) !=
		     -EAGAIN); /* the victim may not be seen up yet */
	t_repair_print("hinted repair", &st);
	assert_true(st.hints > 0);
	assert_true(st.blocks_copied > 0);
	assert_int_equal(st.errors, 0);
	assert_int_equal(ufo_cluster_repair(c, "failover",
					    UFO_REPAIR_FULL | UFO_REPAIR_DRY_RUN,
					    NULL, NULL, &st), 0);
	t_repair_print("full dry run after repair", &st);
	assert_int_equal(st.blocks_copied, 0);
	assert_int_equal(st.blocks_discarded, 0);
	assert_int_equal(ufo_cluster_repair(c, "failover", 0, NULL, NULL, &st),
			 0);
	assert_int_equal(st.hints, 0); /* dropped by the repair */
	ufo_cluster_close(c);

	for (unsigned i = 0; i < NSRV; i++)
		check_without(w.obj, i, last);
	assert_int_equal(t_obj_stats(w.obj).sigbus, 0);
	assert_int_equal(ufo_free(w.obj), 0);
	ufo_ctx_destroy(ctx);
}

/* The value of ufo_remote_up for server i in the context's metrics, or -1
 * when the series is missing. */
static int remote_up(struct ufo_ctx *ctx, unsigned i)
{
	char url[128], want[96], *body = NULL, *p;
	int v = -1;

	assert_int_equal(ufo_ctx_monitor_url(ctx, url, sizeof(url)), 0);
	assert_int_equal(t_http_get(t_mon_url_port(url), "/metrics", &body),
			 200);
	snprintf(want, sizeof(want), "server=\"%s:%u\"", t_host(),
		 (unsigned)t_srvs[i].port);
	for (p = body; (p = strstr(p, "\nufo_remote_up{")); p++) {
		char *end = strchr(p + 1, '\n');

		if (end && memmem(p, (size_t)(end - p), want, strlen(want)))
			v = atoi(strchr(p, '}') + 2);
	}
	free(body);
	return v;
}

/* The monitor shows one row per server of a replicated object, and the
 * one that is down as down. */
static void test_monitor_rows(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;

	(void)state;
	t_catch_install();
	t_config(&cfg, CHUNK, 16, 8);
	cfg.monitor = "127.0.0.1:0";
	ctx = t_ctx(&cfg);
	obj = t_cluster_obj(ctx, NSRV, "mon", SIZE, CHUNK, GROUP, 0, 2000);
	for (unsigned i = 0; i < NSRV; i++)
		assert_int_equal(remote_up(ctx, i), 1);
	t_server_kill(&t_srvs[1]);
	T_WAIT_UNTIL(remote_up(ctx, 1) == 0);
	assert_int_equal(remote_up(ctx, 1), 0);
	assert_int_equal(remote_up(ctx, 0), 1);
	assert_int_equal(t_server_restart(&t_srvs[1]), 0);
	T_WAIT_UNTIL(remote_up(ctx, 1) == 1);
	assert_int_equal(remote_up(ctx, 1), 1);
	assert_int_equal(ufo_free(obj), 0);
	ufo_ctx_destroy(ctx);
}

/* Before any failure: writes land on exactly R servers per block. */
static void test_two_copies(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct ufo_cluster *c;
	struct ufo_cluster_member m[NSRV];
	struct ufo_repair_stats st;

	(void)state;
	t_catch_install();
	t_config(&cfg, CHUNK, 16, 8);
	ctx = t_ctx(&cfg);
	obj = t_cluster_obj(ctx, NSRV, "copies", SIZE, CHUNK, GROUP, 0, 0);
	t_cluster_fill(obj, 7);
	assert_int_equal(ufo_sync(obj), 0);
	c = t_cluster(NSRV);
	assert_int_equal(ufo_cluster_members(c, m, NSRV), NSRV);
	for (unsigned i = 0; i < NSRV; i++) {
		assert_true(m[i].up);
		assert_int_equal(strlen(m[i].node_id), 32);
	}
	assert_int_equal(ufo_cluster_repair(c, "copies",
					    UFO_REPAIR_FULL | UFO_REPAIR_DRY_RUN,
					    NULL, NULL, &st), 0);
	assert_int_equal(st.groups, SIZE / GROUP);
	assert_int_equal(st.blocks_copied, 0);
	assert_int_equal(st.blocks_discarded, 0);
	ufo_cluster_close(c);
	/* One server holds a part only: refused, never half the data. */
	{
		struct ufo_remote_opts o;
		struct ufo_obj *part = NULL;

		t_cluster_opts(&o, 0);
		assert_int_equal(ufo_remote_open(ctx,
						 t_url_port(t_srvs[1].port,
							    "copies"),
						 &o, &part), -EXDEV);
		assert_null(part);
	}
	/* Opened again by a second client: the placement is the object's. */
	assert_int_equal(ufo_free(obj), 0);
	obj = t_cluster_obj(ctx, NSRV, "copies", 0, 0, 0, 0, 0);
	assert_int_equal(t_cluster_check(obj, 7), -1);
	assert_int_equal(ufo_free(obj), 0);
	ufo_ctx_destroy(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_copies),
		cmocka_unit_test(test_monitor_rows),
		cmocka_unit_test(test_kill_during_writes),
	};

	t_cluster_setup(NSRV);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
