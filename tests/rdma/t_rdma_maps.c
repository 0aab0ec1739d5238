/* SPDX-License-Identifier: MIT */
/*
 * More chunks than MAP registrations (issue 13, item 4).  ufo-server holds
 * at most WIRE_MAX_MAPS registrations per RDMA connection, and at most
 * --rdma-map-mib of memory in them; a client that speaks protocol version
 * 3 UNMAPs its least recently used one to map the next range, so every
 * chunk of an object far larger than that goes one-sided.  Before UNMAP
 * the first range past the bound got EBUSY and every chunk after it was
 * read and written two-sided.
 *
 * One connection (the bound is per connection), 4 KiB chunks (TCG is
 * slow), a budget of a few chunks so every pass fetches every chunk once.
 * Runs in the RDMA guest (tests/rdma): UFO_RDMA_ADDR is the rxe address.
 */
#include <pthread.h>

#include "../remote/t_remote.h"
#include "wire.h" /* WIRE_MAX_MAPS: the protocol's, not libufo's API */

#define CHUNK (4 * T_KIB)
#define SERVER_MAPS WIRE_MAX_MAPS
#define NCHUNKS (SERVER_MAPS + SERVER_MAPS / 2)
#define OBJ_SIZE ((uint64_t)NCHUNKS * CHUNK)
#define WORDS (OBJ_SIZE / sizeof(uint64_t))

static struct ufo_obj *open_obj(struct ufo_ctx *ctx, const char *name,
				size_t chunk, uint64_t create_size)
{
	struct ufo_remote_opts o;
	struct ufo_obj *obj = NULL;

	t_opts(&o);
	o.connections = 1;
	o.chunk_size = chunk;
	if (create_size) {
		o.flags |= UFO_REMOTE_CREATE;
		o.create_size = create_size;
	}
	assert_int_equal(ufo_remote_open(ctx, t_url(name), &o, &obj), 0);
	return obj;
}

static struct ufo_client_stats client_stats(struct ufo_obj *obj)
{
	struct ufo_client_stats cs;

	assert_int_equal(ufo_remote_status(obj, &cs), 0);
	assert_string_equal(cs.transport, "rdma");
	return cs;
}

/* Writes pattern seed over the whole object, makes it durable and drops
 * every chunk, so the next pass fetches each one again. */
static void write_pass(struct ufo_obj *obj, uint64_t seed)
{
	uint64_t *w = ufo_body(obj);

	for (uint64_t i = 0; i < WORDS; i++)
		w[i] = t_value(seed, i);
	assert_int_equal(ufo_sync(obj), 0);
	assert_int_equal(ufo_reset(obj), 0);
}

/* The server's bytes, read two-sided by a client of its own. */
static void check_server_copy(const char *name, uint64_t seed)
{
	struct ufo_client *cl = t_client();
	struct ufo_remote_info info;
	char *buf = t_zalloc(OBJ_SIZE);

	assert_int_equal(ufo_client_stat(cl, name, &info), 0);
	assert_int_equal(ufo_client_read(cl, info.id, 0, buf, OBJ_SIZE), 0);
	assert_int_equal(t_check_words(buf, OBJ_SIZE, seed, 0), -1);
	free(buf);
	ufo_client_close(cl);
}

/* A read pass fetches each chunk once (sequential, a budget of 8 chunks):
 * more one-sided reads than SERVER_MAPS in it are that many distinct
 * chunks, which needs UNMAP.  Twice, so ranges evicted in the first pass
 * are mapped again in the second.  The overwrite in between goes
 * one-sided too (the first write pass grows the file, and MAP refuses the
 * unwritten tail: those writebacks are two-sided). */
static void test_more_chunks_than_maps(void **state)
{
	struct ufo_config cfg;
	struct ufo_client_stats before, after;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;

	(void)state;
	t_remote_begin();
	t_config(&cfg, CHUNK, 8, 4);
	ctx = t_ctx(&cfg);
	obj = open_obj(ctx, "maps", CHUNK, OBJ_SIZE);
	write_pass(obj, 41);
	for (int pass = 0; pass < 2; pass++) {
		before = client_stats(obj);
		assert_int_equal(t_first_bad_word(ufo_body(obj), WORDS, 41), -1);
		assert_int_equal(ufo_reset(obj), 0);
		after = client_stats(obj);
		fprintf(stderr, "read pass %d: %llu one-sided reads of %d chunks\n",
			pass, (unsigned long long)(after.direct_reads -
						   before.direct_reads),
			NCHUNKS);
		assert_true(after.direct_reads - before.direct_reads >
			    SERVER_MAPS);
	}
	before = client_stats(obj);
	write_pass(obj, 42);
	after = client_stats(obj);
	fprintf(stderr, "overwrite: %llu one-sided writebacks of %d chunks\n",
		(unsigned long long)(after.direct_writes - before.direct_writes),
		NCHUNKS);
	assert_true(after.direct_writes - before.direct_writes > SERVER_MAPS);
	assert_int_equal(t_first_bad_word(ufo_body(obj), WORDS, 42), -1);
	assert_int_equal(t_obj_stats(obj).writeback_errors, 0);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	check_server_copy("maps", 42);
}

/* Several threads fault and dirty chunks in random order over the
 * default two connections, so MAPs, LRU UNMAPs, one-sided reads, writes
 * and COMMITs overlap (a pinned entry must never be evicted: an RDMA
 * operation on a dropped key would break the queue pair and fail the
 * request).  Thread t owns the chunks i with i % NTHREADS == t and writes
 * round r's pattern into each. */
#define NTHREADS 4
#define ROUNDS 3

struct worker {
	struct ufo_obj *obj;
	unsigned t;
};

static uint64_t round_seed(unsigned round, uint64_t chunk)
{
	return 1000 * (uint64_t)(round + 1) + chunk;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char *body = ufo_body(w->obj);
	uint64_t x = 0x9e3779b97f4a7c15ull * (w->t + 1);

	for (unsigned r = 0; r < ROUNDS; r++)
		for (unsigned k = 0; k < NCHUNKS / NTHREADS; k++) {
			uint64_t i;

			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			i = (x % (NCHUNKS / NTHREADS)) * NTHREADS + w->t;
			for (size_t j = 0; j < CHUNK / sizeof(uint64_t); j++)
				((uint64_t *)(body + i * CHUNK))[j] =
					t_value(round_seed(r, i), j);
		}
	return NULL;
}

/* Which round's pattern chunk i holds: -1 for none (chunks a thread's
 * random walk never reached in a round keep an older one). */
static int chunk_round(const char *body, uint64_t i)
{
	for (int r = ROUNDS - 1; r >= 0; r--)
		if (t_check_words(body + i * CHUNK, CHUNK,
				  round_seed((unsigned)r, i), 0) == -1)
			return r;
	return -1;
}

static void test_concurrent_eviction(void **state)
{
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	struct ufo_config cfg;
	struct ufo_client_stats cs, before;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	const char *body;
	int rounds[NCHUNKS];

	(void)state;
	t_remote_begin();
	t_config(&cfg, CHUNK, 8, 4);
	ctx = t_ctx(&cfg);
	obj = open_obj(ctx, "maps-mt", CHUNK, OBJ_SIZE);
	/* The whole file exists after this: every MAP from here on is
	 * answered (before, MAP of the unwritten tail answers ERANGE). */
	write_pass(obj, 43);
	before = client_stats(obj);
	for (unsigned t = 0; t < NTHREADS; t++) {
		w[t] = (struct worker){ .obj = obj, .t = t };
		assert_int_equal(pthread_create(&th[t], NULL, worker_main,
						&w[t]), 0);
	}
	for (unsigned t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	assert_int_equal(ufo_sync(obj), 0);
	body = ufo_body(obj);
	for (uint64_t i = 0; i < NCHUNKS; i++)
		rounds[i] = chunk_round(body, i);
	assert_int_equal(ufo_reset(obj), 0);
	for (uint64_t i = 0; i < NCHUNKS; i++) /* from the server again */
		if (rounds[i] >= 0)
			assert_int_equal(chunk_round(body, i), rounds[i]);
		else
			assert_int_equal(t_check_words(body + i * CHUNK, CHUNK,
						       43, i * CHUNK), -1);
	cs = client_stats(obj);
	fprintf(stderr, "concurrent: %llu one-sided reads, %llu writebacks, "
		"%llu failed requests\n",
		(unsigned long long)(cs.direct_reads - before.direct_reads),
		(unsigned long long)(cs.direct_writes - before.direct_writes),
		(unsigned long long)(cs.errors - before.errors));
	assert_true(cs.direct_reads - before.direct_reads > SERVER_MAPS);
	/* No MAP answered EBUSY, no UNMAP ENOENT, no request failed. */
	assert_int_equal(cs.errors, before.errors);
	assert_int_equal(t_obj_stats(obj).writeback_errors, 0);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
}

/* The memory bound: a server started with --rdma-map-mib=1 holds 1 MiB of
 * registrations, 64 chunks of 16 KiB, far fewer than WIRE_MAX_MAPS.  MAP
 * past it answers EBUSY although the client's cache has slots free; the
 * client then UNMAPs its least recently used entry and asks again, so
 * nearly every fetch still goes one-sided.  Without the bound no MAP
 * answers EBUSY (errors would not move); without the client's retry only
 * the first 64 chunks of a pass would go one-sided. */
#define BIG_CHUNK (16 * T_KIB)
#define BIG_CHUNKS 192 /* 3 x what 1 MiB holds */

static void test_memory_bound(void **state)
{
	struct ufo_client_stats cs, before;
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	uint64_t words = (uint64_t)BIG_CHUNKS * BIG_CHUNK / sizeof(uint64_t);

	(void)state;
	t_remote_begin();
	assert_true(WIFEXITED(t_server_stop(&t_srv)));
	t_srv.flag = "--rdma-map-mib=1";
	assert_int_equal(t_server_restart(&t_srv), 0);
	t_srv.flag = NULL; /* for the next restart */
	t_config(&cfg, BIG_CHUNK, 8, 4);
	ctx = t_ctx(&cfg);
	obj = open_obj(ctx, "maps-bytes", BIG_CHUNK,
		       (uint64_t)BIG_CHUNKS * BIG_CHUNK);
	for (uint64_t i = 0; i < words; i++)
		((uint64_t *)ufo_body(obj))[i] = t_value(44, i);
	assert_int_equal(ufo_sync(obj), 0);
	assert_int_equal(ufo_reset(obj), 0);
	before = client_stats(obj);
	assert_int_equal(t_first_bad_word(ufo_body(obj), words, 44), -1);
	cs = client_stats(obj);
	fprintf(stderr, "memory bound: %llu one-sided reads of %d chunks, "
		"%llu MAPs refused\n",
		(unsigned long long)(cs.direct_reads - before.direct_reads),
		BIG_CHUNKS, (unsigned long long)(cs.errors - before.errors));
	assert_true(cs.errors > before.errors);
	assert_true(cs.direct_reads - before.direct_reads > BIG_CHUNKS * 3 / 4);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	/* The other tests' server again. */
	assert_true(WIFEXITED(t_server_stop(&t_srv)));
	assert_int_equal(t_server_restart(&t_srv), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_more_chunks_than_maps),
		cmocka_unit_test(test_concurrent_eviction),
		cmocka_unit_test(test_memory_bound),
	};
	const char *addr = getenv("UFO_RDMA_ADDR");

	setenv("UFO_TEST_SCHEME", "rdma", 1);
	setenv("UFO_TEST_HOST", addr && *addr ? addr : "10.0.2.15", 1);
	t_remote_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
