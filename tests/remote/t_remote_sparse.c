/* SPDX-License-Identifier: MIT */
/*
 * A 1 TiB server object used sparsely: about a hundred reads and writes at
 * random offsets through a UFO (with a budget of a few chunks, so most
 * touched chunks are evicted and written back along the way) read back
 * right after sync and reset and from a fresh client, and the server keeps
 * the object sparse on disk.
 */
#include <sys/mman.h>

#include "t_remote.h"

#define TIB ((uint64_t)1 << 40)
#define GIB ((uint64_t)1 << 30)
#define CHUNK T_MIB /* 1 M chunks: the client's per-chunk state stays small */
#define TOUCHES 100
#define DISK_BOUND GIB

struct touch {
	uint64_t off; /* a multiple of 8 */
	bool write;
	uint64_t value; /* written, or read back after all writes */
};

/* TOUCHES word offsets: random, distinct, plus the object's first and
 * last words (which a random one equals with negligible probability). */
static void make_touches(struct touch *t, uint64_t *rnd)
{
	for (unsigned i = 0; i < TOUCHES; i++) {
		bool dup;

		do {
			t[i].off = t_rand(rnd) % (TIB / 8) * 8;
			dup = false;
			for (unsigned j = 0; j < i; j++)
				dup |= t[j].off == t[i].off;
		} while (dup);
		t[i].write = t_rand(rnd) & 1;
		t[i].value = t[i].write ? t_rand(rnd) | 1 : 0;
	}
	t[0].off = 0;
	t[0].write = true;
	t[0].value = 0x0123456789abcdefull;
	t[TOUCHES - 1].off = TIB - 8;
	t[TOUCHES - 1].write = true;
	t[TOUCHES - 1].value = 0xfeedfacecafebeefull;
}

/* Words never written read as zero, however near a written one. */
static void check_touches(const char *who, const struct touch *t,
			  uint64_t (*read_word)(void *, uint64_t), void *arg)
{
	for (unsigned i = 0; i < TOUCHES; i++) {
		uint64_t got = read_word(arg, t[i].off);

		if (got != t[i].value)
			fail_msg("%s: offset %#llx (%s): %#llx, want %#llx",
				 who, (unsigned long long)t[i].off,
				 t[i].write ? "written" : "read only",
				 (unsigned long long)got,
				 (unsigned long long)t[i].value);
	}
}

static uint64_t ufo_word(void *arg, uint64_t off)
{
	return *(volatile uint64_t *)((char *)ufo_body(arg) + off);
}

struct raw {
	struct ufo_client *cl;
	uint64_t id;
};

static uint64_t raw_word(void *arg, uint64_t off)
{
	struct raw *r = arg;
	uint64_t v = ~0ull;

	assert_int_equal(ufo_client_read(r->cl, r->id, off, &v, sizeof(v)), 0);
	return v;
}

static void check_sparse_on_disk(struct raw *r)
{
	struct ufo_remote_info info;
	uint64_t du = t_disk_usage(t_srv.data);

	assert_int_equal(ufo_client_stat(r->cl, "sparse", &info), 0);
	fprintf(stderr, "1 TiB object: %llu bytes allocated (server), data "
		"directory uses %llu bytes\n",
		(unsigned long long)info.allocated, (unsigned long long)du);
	assert_int_equal(info.size, TIB);
	/* Something was written, so something is on disk. */
	assert_true(info.allocated > 0);
	assert_true(info.allocated < DISK_BOUND);
	assert_true(du > 0);
	assert_true(du < DISK_BOUND);
}

/* Whether this process can map 1 TiB at all, as the library does.  Under
 * ThreadSanitizer it depends on where the randomized layout leaves room. */
static bool can_map_terabyte(void)
{
	void *p = mmap(NULL, TIB, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return false;
	munmap(p, TIB);
	return true;
}

/* Opens a 1 TiB object (creating it when create).  -ENOMEM while even a
 * plain 1 TiB mapping fails is the environment's limit, not libufo's: the
 * test skips. */
static struct ufo_obj *open_terabyte(struct ufo_ctx *ctx, const char *name,
				     bool create)
{
	struct ufo_remote_opts o;
	struct ufo_obj *obj = NULL;
	int rc;

	t_opts(&o);
	if (create) {
		o.flags |= UFO_REMOTE_CREATE;
		o.create_size = TIB;
		o.chunk_size = CHUNK;
	}
	rc = ufo_remote_open(ctx, t_url(name), &o, &obj);
	if (rc == -ENOMEM && !can_map_terabyte()) {
		fprintf(stderr, "skip: cannot map 1 TiB here\n");
		ufo_ctx_destroy(ctx);
		skip();
	}
	assert_int_equal(rc, 0);
	assert_non_null(obj);
	return obj;
}

static void test_sparse_terabyte(void **state)
{
	struct touch *t = t_zalloc(TOUCHES * sizeof(*t));
	uint64_t rnd = t_random_seed("sparse_terabyte");
	struct ufo_remote_info info;
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct raw r;

	(void)state;
	t_remote_begin();
	make_touches(t, &rnd);
	r.cl = t_client();
	assert_int_equal(ufo_client_create(r.cl, "sparse", TIB, CHUNK, &info),
			 0);
	r.id = info.id;
	assert_int_equal(info.size, TIB);
	assert_int_equal(info.chunk_size, CHUNK);

	t_config(&cfg, CHUNK, 8, 4);
	ctx = t_ctx(&cfg);
	obj = open_terabyte(ctx, "sparse", false);
	assert_int_equal(ufo_elem_count(obj), TIB);
	/* No readahead: a touch loads its own chunk only. */
	assert_int_equal(ufo_advise(obj, 0, 0, UFO_ADV_RANDOM), 0);

	/* Reads see zeros (a fresh object), writes store their value. */
	for (unsigned i = 0; i < TOUCHES; i++) {
		volatile uint64_t *w =
			(volatile uint64_t *)((char *)ufo_body(obj) + t[i].off);

		if (t[i].write)
			*w = t[i].value;
		else if (*w != 0)
			fail_msg("fresh offset %#llx reads %#llx",
				 (unsigned long long)t[i].off,
				 (unsigned long long)*w);
	}
	check_touches("before sync", t, ufo_word, obj);
	assert_int_equal(ufo_sync(obj), 0);
	assert_int_equal(ufo_reset(obj), 0);
	check_touches("after sync and reset", t, ufo_word, obj);
	assert_true(t_obj_stats(obj).evictions > 0);
	assert_int_equal(t_obj_stats(obj).sigbus, 0);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);

	check_touches("raw", t, raw_word, &r);
	check_sparse_on_disk(&r);
	ufo_client_close(r.cl);
	free(t);
}

/* The same through UFO_REMOTE_CREATE: the object is created by the open,
 * with the size and chunk size of the options. */
static void test_sparse_create_on_open(void **state)
{
	struct ufo_remote_info info;
	struct ufo_config cfg;
	struct ufo_client *cl;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	volatile uint64_t *body;
	uint64_t v = 0;

	(void)state;
	t_remote_begin();
	t_config(&cfg, CHUNK, 8, 4);
	ctx = t_ctx(&cfg);
	obj = open_terabyte(ctx, "sparse-open", true);
	assert_int_equal(ufo_elem_count(obj), TIB);
	assert_int_equal(ufo_chunk_size(obj), CHUNK);
	body = ufo_body(obj);
	body[TIB / 16] = 0x1234;
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);

	cl = t_client();
	assert_int_equal(ufo_client_stat(cl, "sparse-open", &info), 0);
	assert_int_equal(info.size, TIB);
	assert_int_equal(info.chunk_size, CHUNK);
	assert_true(info.allocated < DISK_BOUND);
	assert_int_equal(ufo_client_read(cl, info.id, TIB / 2, &v, sizeof(v)),
			 0);
	assert_int_equal(v, 0x1234);
	ufo_client_close(cl);
}

/* ---- holes cost no transfer (protocol version 2) */

#define HOLE_CHUNK (64 * T_KIB)
#define HOLE_CHUNKS 64
#define HOLE_SIZE ((uint64_t)HOLE_CHUNKS * HOLE_CHUNK)

/* Reads every word of obj; returns how many are not zero outside the
 * chunks written (c % 2 == 1 when odd_written) or not their index inside. */
static uint64_t hole_check(struct ufo_obj *obj, bool odd_written)
{
	const volatile uint64_t *w = ufo_body(obj);
	uint64_t bad = 0, epc = HOLE_CHUNK / 8;

	for (uint64_t i = 0; i < HOLE_SIZE / 8; i++) {
		bool written = odd_written && (i / epc) % 2;

		bad += w[i] != (written ? i : 0);
	}
	return bad;
}

static uint64_t bytes_in(struct ufo_obj *obj)
{
	struct ufo_client_stats cs;

	assert_int_equal(ufo_remote_status(obj, &cs), 0);
	return cs.bytes_in;
}

/* A new object's chunks are never written: loading them moves no data
 * (bytes_holes counts them, the client's bytes_in stays far below the
 * object), first writes included; once half the chunks are written and
 * synced, only the other half are holes.  wp: the default dirty tracking
 * (zeros copied in, protected); else read-only (the zero page). */
static void holes(const char *name, bool ro)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct ufo_remote_opts o;
	struct ufo_stats s;
	uint64_t in0, *w;

	t_remote_begin();
	t_config(&cfg, HOLE_CHUNK, 0, 0);
	ctx = t_ctx(&cfg);
	obj = t_remote_obj(ctx, name, HOLE_SIZE, HOLE_CHUNK, 0);
	in0 = bytes_in(obj);
	assert_int_equal(hole_check(obj, false), 0);
	s = t_obj_stats(obj);
	fprintf(stderr, "%s: %llu of %llu bytes were holes, %llu bytes came in\n",
		name, (unsigned long long)s.bytes_holes,
		(unsigned long long)HOLE_SIZE,
		(unsigned long long)(bytes_in(obj) - in0));
	assert_int_equal(s.bytes_holes, HOLE_SIZE);
	assert_true(bytes_in(obj) - in0 < HOLE_SIZE / 16);
	/* Writes to half the chunks, synced: those are data now. */
	w = ufo_body(obj);
	for (uint64_t c = 1; c < HOLE_CHUNKS; c += 2)
		for (uint64_t i = c * HOLE_CHUNK / 8; i < (c + 1) * HOLE_CHUNK / 8; i++)
			w[i] = i;
	assert_int_equal(ufo_sync(obj), 0);
	assert_int_equal(ufo_free(obj), 0);
	t_opts(&o);
	if (ro)
		o.flags = UFO_READ_ONLY;
	assert_int_equal(ufo_remote_open(ctx, t_url(name), &o, &obj), 0);
	assert_int_equal(hole_check(obj, true), 0);
	s = t_obj_stats(obj);
	/* Over RDMA a range inside the data file is read one-sided, zeros
	 * and all: only the two-sided READ knows holes. */
	if (t_rdma_expected())
		assert_true(s.bytes_holes <= HOLE_SIZE / 2);
	else
		assert_int_equal(s.bytes_holes, HOLE_SIZE / 2);
	assert_int_equal(s.bytes_loaded, HOLE_SIZE);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
}

static void test_holes_cost_no_transfer_wp(void **state)
{
	(void)state;
	holes("holes-wp", false);
}

static void test_holes_cost_no_transfer_ro(void **state)
{
	(void)state;
	holes("holes-ro", true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sparse_terabyte),
		cmocka_unit_test(test_sparse_create_on_open),
		cmocka_unit_test(test_holes_cost_no_transfer_wp),
		cmocka_unit_test(test_holes_cost_no_transfer_ro),
	};

	t_remote_setup();
	if (!can_map_terabyte()) {
		fprintf(stderr, "skip: cannot map 1 TiB here: %s\n",
			strerror(errno));
		return T_EXIT_SKIP;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
