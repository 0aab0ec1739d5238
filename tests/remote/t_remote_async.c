/* SPDX-License-Identifier: MIT */
/*
 * The asynchronous I/O core against a real server (issue 12): loads of a
 * remote object are submitted by handler threads and completed, chunk
 * installed, by the client's reader threads, while other threads reset,
 * free and evict the same chunks.  Each test checks every word it reads
 * against the pattern the object holds.
 *
 *  - depth: WILLNEED over the whole object puts many fetches in flight at
 *    once (ios_in_flight_max), with no handler thread started beyond the
 *    configured ones;
 *  - completion racing reset: readers scan with deep readahead while the
 *    main thread resets the object again and again;
 *  - completion racing free: an object freed with fetches in flight (free
 *    waits for them; ASan and TSan watch the rest);
 *  - completion racing eviction: a budget of a few chunks, readahead
 *    running ahead of the readers and DONTNEED of random ranges;
 *  - a connection dying with 64 requests in flight: the server is stopped
 *    (SIGSTOP), WILLNEED queues 64 or more fetches, the server is killed
 *    and restarted; every request fails with the connection (over TCP:
 *    over RDMA only those on the I/O workers), is retried by the engine,
 *    and the data reads back.
 */
#include "t_remote.h"

#define CHUNK (64 * T_KIB)
#define EPC (CHUNK / sizeof(uint64_t))
#define NCHUNKS 256
#define OBJ_SIZE ((uint64_t)NCHUNKS * CHUNK)
#define WORDS (OBJ_SIZE / sizeof(uint64_t))
#define SEED 77
#define READERS 4
/* Rounds of the racing tests: fewer in the RDMA guest, where TCG runs
 * everything some 10 times slower. */
#define ROUNDS(n) (t_rdma_expected() ? (n) / 5 : (n))

/* The object "async" holds pattern SEED, written once by the first test. */
static void ensure_object(void)
{
	static bool done;
	struct ufo_client *cl;
	struct ufo_remote_info info;
	uint64_t *buf;

	if (done)
		return;
	cl = t_client();
	buf = t_zalloc(CHUNK);
	if (ufo_client_stat(cl, "async", &info) == -ENOENT)
		assert_int_equal(ufo_client_create(cl, "async", OBJ_SIZE, CHUNK,
						   &info), 0);
	for (uint64_t c = 0; c < NCHUNKS; c++) {
		t_fill(buf, sizeof(uint64_t), SEED, c * EPC, (c + 1) * EPC);
		assert_int_equal(ufo_client_write(cl, info.id, c * CHUNK, buf,
						  CHUNK), 0);
	}
	assert_int_equal(ufo_client_sync(cl, info.id), 0);
	free(buf);
	ufo_client_close(cl);
	done = true;
}

static struct ufo_ctx *async_ctx(unsigned high_chunks, unsigned low_chunks)
{
	struct ufo_config cfg;

	t_config(&cfg, CHUNK, high_chunks, low_chunks);
	cfg.threads = 2;
	return t_ctx(&cfg);
}

static struct ufo_obj *async_obj(struct ufo_ctx *ctx, unsigned connections)
{
	struct ufo_remote_opts o;
	struct ufo_obj *obj = NULL;

	t_opts(&o);
	o.flags = UFO_READ_ONLY;
	o.connections = connections;
	assert_int_equal(ufo_remote_open(ctx, t_url("async"), &o, &obj), 0);
	return obj;
}

/* Index of the first word of [first, last) chunks that is wrong, or -1. */
static int64_t check_chunks(struct ufo_obj *obj, uint64_t first, uint64_t last)
{
	const volatile uint64_t *w = ufo_body(obj);

	for (uint64_t i = first * EPC; i < last * EPC; i++)
		if (w[i] != t_value(SEED, i))
			return (int64_t)i;
	return -1;
}

static void test_depth(void **state)
{
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct ufo_stats s;

	(void)state;
	t_remote_begin();
	ensure_object();
	ctx = async_ctx(0, 0); /* the default budget: room for everything */
	obj = async_obj(ctx, 2);
	assert_int_equal(ufo_advise(obj, 0, OBJ_SIZE, UFO_ADV_WILLNEED), 0);
	T_WAIT_UNTIL(t_obj_stats(obj).resident_bytes == OBJ_SIZE);
	s = t_obj_stats(obj);
	fprintf(stderr, "WILLNEED of %u chunks: %llu ios in flight at most, %llu handler threads, %llu prefetched\n",
		NCHUNKS, (unsigned long long)s.ios_in_flight_max,
		(unsigned long long)s.handler_threads,
		(unsigned long long)s.prefetches);
	assert_int_equal(s.resident_bytes, OBJ_SIZE);
	assert_int_equal(s.prefetches, NCHUNKS);
	/* Two handlers submit; the fetches wait on the server, not on them. */
	assert_true(s.ios_in_flight_max >= 8);
	assert_int_equal(s.handler_threads, 2);
	assert_int_equal(check_chunks(obj, 0, NCHUNKS), -1);
	assert_int_equal(t_obj_stats(obj).faults, 0);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
}

struct racer {
	struct ufo_obj *obj;
	atomic_bool stop;
	atomic_llong bad;    /* word index + 1 of a wrong word */
	atomic_ulong scans;
	uint64_t seed;
	pthread_t thr;
};

/* Scans the object from a random chunk to the end, again and again. */
static void *scan_main(void *arg)
{
	struct racer *r = arg;
	uint64_t rng = r->seed;

	while (!atomic_load(&r->stop)) {
		uint64_t first = t_rand(&rng) % NCHUNKS;
		int64_t bad = check_chunks(r->obj, first, NCHUNKS);

		if (bad >= 0) {
			atomic_store(&r->bad, bad + 1);
			break;
		}
		atomic_fetch_add(&r->scans, 1);
	}
	return NULL;
}

static void start_readers(struct racer *r, struct ufo_obj *obj)
{
	for (unsigned i = 0; i < READERS; i++) {
		r[i] = (struct racer){ .obj = obj, .seed = 11 + i };
		assert_int_equal(pthread_create(&r[i].thr, NULL, scan_main,
						&r[i]), 0);
	}
}

static void stop_readers(struct racer *r)
{
	for (unsigned i = 0; i < READERS; i++)
		atomic_store(&r[i].stop, true);
	for (unsigned i = 0; i < READERS; i++) {
		pthread_join(r[i].thr, NULL);
		if (atomic_load(&r[i].bad))
			fail_msg("reader %u: word %lld wrong", i,
				 (long long)atomic_load(&r[i].bad) - 1);
		assert_true(atomic_load(&r[i].scans) > 0);
	}
}

static void test_completion_vs_reset(void **state)
{
	struct racer *r = t_zalloc(READERS * sizeof(*r));
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;

	(void)state;
	t_remote_begin();
	ensure_object();
	ctx = async_ctx(32, 24);
	obj = async_obj(ctx, 2);
	assert_int_equal(ufo_advise(obj, 0, 0, UFO_ADV_SEQUENTIAL), 0);
	start_readers(r, obj);
	T_WAIT_UNTIL(atomic_load(&r[0].scans) >= 1);
	for (unsigned i = 0; i < ROUNDS(100); i++) {
		assert_int_equal(ufo_reset(obj), 0);
		t_sleep_us(1000);
	}
	stop_readers(r);
	fprintf(stderr, "reset x%u under %u readers: %llu ios in flight at most\n",
		ROUNDS(100), READERS,
		(unsigned long long)t_obj_stats(obj).ios_in_flight_max);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	free(r);
}

static void test_completion_vs_free(void **state)
{
	struct ufo_ctx *ctx;

	(void)state;
	t_remote_begin();
	ensure_object();
	ctx = async_ctx(0, 0);
	for (unsigned i = 0; i < ROUNDS(20); i++) {
		struct ufo_obj *obj = async_obj(ctx, 2);

		assert_int_equal(ufo_advise(obj, 0, OBJ_SIZE, UFO_ADV_WILLNEED),
				 0);
		/* Some loads queued, some in flight, some installed. */
		t_sleep_us(i * 200);
		assert_int_equal(ufo_free(obj), 0);
	}
	/* The context still works, and so does the object. */
	{
		struct ufo_obj *obj = async_obj(ctx, 2);

		assert_int_equal(check_chunks(obj, 0, NCHUNKS), -1);
		assert_int_equal(ufo_free(obj), 0);
	}
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
}

static void test_completion_vs_eviction(void **state)
{
	struct racer *r = t_zalloc(READERS * sizeof(*r));
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	uint64_t rng = 5;

	(void)state;
	t_remote_begin();
	ensure_object();
	ctx = async_ctx(6, 3);
	obj = async_obj(ctx, 2);
	assert_int_equal(ufo_advise(obj, 0, 0, UFO_ADV_SEQUENTIAL), 0);
	start_readers(r, obj);
	for (unsigned i = 0; i < ROUNDS(200); i++) {
		uint64_t a = t_rand(&rng) % OBJ_SIZE;
		uint64_t b = a + 1 + t_rand(&rng) % (OBJ_SIZE - a);

		assert_int_equal(ufo_advise(obj, a, b, UFO_ADV_DONTNEED), 0);
		t_sleep_us(500);
	}
	stop_readers(r);
	assert_true(t_obj_stats(obj).evictions > NCHUNKS);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	free(r);
}

static void test_connection_dies_in_flight(void **state)
{
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct ufo_stats s;

	(void)state;
	t_remote_begin();
	ensure_object();
	ctx = async_ctx(0, 0);
	obj = async_obj(ctx, 1); /* one connection carries them all */
	assert_int_equal(kill(t_srv.pid, SIGSTOP), 0);
	assert_int_equal(ufo_advise(obj, 0, OBJ_SIZE, UFO_ADV_WILLNEED), 0);
	T_WAIT_UNTIL(t_obj_stats(obj).ios_in_flight >= 64);
	s = t_obj_stats(obj);
	fprintf(stderr, "%llu fetches in flight when the server dies\n",
		(unsigned long long)s.ios_in_flight);
	assert_true(s.ios_in_flight >= 64);
	t_server_kill(&t_srv);
	assert_int_equal(t_server_restart(&t_srv), 0);
	/* Retried by the engine within the timeout; nothing is lost. */
	T_WAIT_UNTIL(t_obj_stats(obj).ios_in_flight == 0);
	assert_int_equal(check_chunks(obj, 0, NCHUNKS), -1);
	s = t_obj_stats(obj);
	/* Over TCP each fetch is a request on the wire, and all of them fail
	 * with the connection.  Over RDMA fetches block on the I/O workers,
	 * so only those in progress (at most UFO_IO_WORKERS) meet the dead
	 * server; the queued ones run after the restart. */
	assert_true(s.populate_errors >= (t_rdma_expected() ? 1 : 64));
	assert_int_equal(s.sigbus, 0);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_completion_vs_reset),
		cmocka_unit_test(test_completion_vs_free),
		cmocka_unit_test(test_completion_vs_eviction),
		cmocka_unit_test(test_connection_dies_in_flight),
	};

	t_remote_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
