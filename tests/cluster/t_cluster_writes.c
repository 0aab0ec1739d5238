/* SPDX-License-Identifier: MIT */
/*
 * Stores of replicated objects go out without waiting (quorum.c's
 * cluster_write_submit): each store is sent to every target at once and
 * the last answer, on a reader thread, completes it.  Races this stresses:
 *
 * - answers to a store's first targets coming back on reader threads
 *   while the submitter still sends it to the others (only the last
 *   answer may free it);
 * - many stores in flight at once from the evictor and from ufo_sync, on
 *   shared connections, each carrying the same UFO memory to two servers;
 * - a member whose connection was closed under it (its server restarted):
 *   the store's request to it fails -ENOTCONN on the reader and is sent
 *   again by an I/O worker that connects first.
 *
 * Four threads rewrite their quarter of a 3-server, R = 2 object through
 * a budget of 1/16 of it, round after round; after each round's ufo_sync a
 * second context reads the whole object from the servers and must find
 * the round's data everywhere.  Midway, one server is restarted; a second
 * test restarts one when only stores will reach it.
 */
#include "t_cluster.h"

#define CHUNK (256 * T_KIB)
#define GROUP (4 * CHUNK)
#define SIZE (16 * T_MIB)
#define NSRV 3
#define WRITERS 4
#define ROUNDS 8

struct slice {
	struct ufo_obj *obj;
	uint64_t seed;
	unsigned i;
};

/* Rewrites slice i of the object with pattern seed, a chunk at a time in
 * a scrambled order (stores of different groups interleave). */
static void *writer_main(void *arg)
{
	struct slice *s = arg;
	size_t part = SIZE / WRITERS, chunks = part / CHUNK;
	char *base = (char *)ufo_body(s->obj) + s->i * part;

	for (size_t k = 0; k < chunks; k++) {
		size_t c = (k * 7 + s->i) % chunks;
		uint64_t off = s->i * part + c * CHUNK;

		t_fill(base + c * CHUNK, sizeof(uint64_t), s->seed,
		       off / sizeof(uint64_t),
		       (off + CHUNK) / sizeof(uint64_t));
	}
	return NULL;
}

static void write_round(struct ufo_obj *obj, uint64_t seed)
{
	pthread_t t[WRITERS];
	struct slice s[WRITERS];

	for (unsigned i = 0; i < WRITERS; i++) {
		s[i] = (struct slice){ obj, seed, i };
		assert_int_equal(pthread_create(&t[i], NULL, writer_main, &s[i]),
				 0);
	}
	for (unsigned i = 0; i < WRITERS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(ufo_sync(obj), 0);
}

/* The whole object as the servers hold it, read by a fresh context. */
static void check_round(const char *name, uint64_t seed)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	int64_t bad;

	t_config(&cfg, CHUNK, 0, 0);
	ctx = t_ctx(&cfg);
	obj = t_cluster_obj(ctx, NSRV, name, 0, CHUNK, GROUP, 2, 0);
	bad = t_cluster_check(obj, seed);
	if (bad >= 0)
		fprintf(stderr, "round %llu: word %lld wrong\n",
			(unsigned long long)seed, (long long)bad);
	assert_int_equal(bad, -1);
	assert_int_equal(ufo_free(obj), 0);
	ufo_ctx_destroy(ctx);
}

static void test_concurrent_stores(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct ufo_stats st;
	uint64_t seed0 = t_random_seed("writes");
	unsigned victim = (unsigned)(seed0 % NSRV);

	(void)state;
	t_config(&cfg, CHUNK, 4, 2); /* 1 MiB: a sixteenth of the object */
	cfg.threads = 4;
	ctx = t_ctx(&cfg);
	obj = t_cluster_obj(ctx, NSRV, "writes", SIZE, CHUNK, GROUP, 2, 0);
	for (unsigned r = 1; r <= ROUNDS; r++) {
		uint64_t seed = seed0 + r;

		if (r == ROUNDS / 2) {
			/* Every connection to it closes; the member stays
			 * up as far as the client knows (no request failed
			 * yet), so the next stores find it not connected. */
			assert_int_equal(t_server_stop(&t_srvs[victim]), 0);
			assert_int_equal(t_server_restart(&t_srvs[victim]), 0);
			fprintf(stderr, "restarted server %u\n", victim);
		}
		write_round(obj, seed);
		check_round("writes", seed);
	}
	st = t_obj_stats(obj);
	fprintf(stderr, "%llu writebacks, %llu evictions, %llu faults, ios in"
		" flight max %llu\n", (unsigned long long)st.writebacks,
		(unsigned long long)st.evictions,
		(unsigned long long)st.faults,
		(unsigned long long)st.ios_in_flight_max);
	/* Every chunk of every round was stored, most of them by the
	 * evictor while the writers ran (the budget is 4 chunks). */
	assert_true(st.writebacks >= ROUNDS * SIZE / CHUNK);
	assert_true(st.evictions >= ROUNDS * (SIZE / CHUNK - 4));
	assert_int_equal(st.sigbus, 0);
	assert_int_equal(ufo_free(obj), 0);
	ufo_ctx_destroy(ctx);
}

/* A store to a member whose connections closed (its server restarted)
 * while nothing else asked it anything: with the whole object resident, a
 * rewrite and ufo_sync send stores only, and the requests to the restarted
 * server find no connection; a worker connects and sends them. */
static void test_store_after_restart(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	uint64_t seed = t_random_seed("restart");
	unsigned victim = (unsigned)(seed % NSRV);

	(void)state;
	t_config(&cfg, CHUNK, 0, 0); /* no budget: nothing is fetched again */
	ctx = t_ctx(&cfg);
	obj = t_cluster_obj(ctx, NSRV, "restart", SIZE, CHUNK, GROUP, 2, 0);
	write_round(obj, seed);
	assert_int_equal(t_server_stop(&t_srvs[victim]), 0);
	assert_int_equal(t_server_restart(&t_srvs[victim]), 0);
	write_round(obj, seed + 1);
	assert_int_equal(ufo_free(obj), 0);
	ufo_ctx_destroy(ctx);
	check_round("restart", seed + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_stores),
		cmocka_unit_test(test_store_after_restart),
	};

	t_cluster_setup(NSRV);
	t_watchdog(240);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
