/* SPDX-License-Identifier: MIT */
/*
 * Close-to-open consistency between clients of one server object: A's
 * writes, once ufo_sync returned, are what B sees after ufo_refresh (B had
 * the old contents resident and clean), what a client opening afterwards
 * sees directly, and what ufo_client_read returns.  ufo_refresh keeps B's
 * own dirty chunks.
 */
#include "t_remote.h"

#define CHUNK (64 * T_KIB)
#define NCHUNKS 16
#define OBJ_SIZE (NCHUNKS * CHUNK)
#define WORDS (OBJ_SIZE / sizeof(uint64_t))
#define EPC (CHUNK / sizeof(uint64_t))
#define OLD_SEED 31
#define NEW_SEED 32
#define B_SEED 33
#define B_CHUNK 3 /* the chunk B writes itself; A does not touch it */

static struct ufo_ctx *big_ctx(void)
{
	struct ufo_config cfg;

	/* Budget for everything: nothing is evicted behind the test's back,
	 * so B's stale chunks stay resident until ufo_refresh. */
	t_config(&cfg, CHUNK, 4 * NCHUNKS, 3 * NCHUNKS);
	return t_ctx(&cfg);
}

/* The object's initial contents, written raw. */
static void seed_object(const char *name)
{
	struct ufo_client *cl = t_client();
	struct ufo_remote_info info;
	char *buf = t_zalloc(OBJ_SIZE);

	assert_int_equal(ufo_client_create(cl, name, OBJ_SIZE, CHUNK, &info), 0);
	t_fill(buf, sizeof(uint64_t), OLD_SEED, 0, WORDS);
	assert_int_equal(ufo_client_write(cl, info.id, 0, buf, OBJ_SIZE), 0);
	assert_int_equal(ufo_client_sync(cl, info.id), 0);
	free(buf);
	ufo_client_close(cl);
}

/* What B_CHUNK holds in a given view. */
enum b_view {
	B_OLD,   /* the initial contents */
	B_MINE,  /* B's write */
	B_EITHER /* not checked: published or not, both are allowed */
};

/* Whether word i of the object is right after A wrote every chunk but
 * B_CHUNK; *want is the value expected. */
static bool word_ok(uint64_t i, uint64_t got, enum b_view view,
		    uint64_t *want)
{
	if (i / EPC != B_CHUNK)
		*want = t_value(NEW_SEED, i);
	else if (view == B_EITHER)
		return true;
	else
		*want = t_value(view == B_MINE ? B_SEED : OLD_SEED, i);
	return got == *want;
}

static void check_obj(struct ufo_obj *obj, enum b_view view, const char *who)
{
	const volatile uint64_t *w = ufo_body(obj);
	uint64_t want;

	for (uint64_t i = 0; i < WORDS; i++) {
		uint64_t got = w[i];

		if (!word_ok(i, got, view, &want))
			fail_msg("%s: word %llu (chunk %llu): %#llx, want %#llx",
				 who, (unsigned long long)i,
				 (unsigned long long)(i / EPC),
				 (unsigned long long)got,
				 (unsigned long long)want);
	}
}

static void check_raw(const char *name, enum b_view view)
{
	struct ufo_client *cl = t_client();
	struct ufo_remote_info info;
	uint64_t *buf = t_zalloc(OBJ_SIZE), want;

	assert_int_equal(ufo_client_stat(cl, name, &info), 0);
	assert_int_equal(ufo_client_read(cl, info.id, 0, buf, OBJ_SIZE), 0);
	for (uint64_t i = 0; i < WORDS; i++)
		if (!word_ok(i, buf[i], view, &want))
			fail_msg("raw word %llu: %#llx, want %#llx",
				 (unsigned long long)i,
				 (unsigned long long)buf[i],
				 (unsigned long long)want);
	free(buf);
	ufo_client_close(cl);
}

/* Reads every word of obj (so every chunk is resident and clean) and
 * checks the initial contents. */
static void touch_old(struct ufo_obj *obj)
{
	const volatile uint64_t *w = ufo_body(obj);

	for (uint64_t i = 0; i < WORDS; i++)
		assert_true(w[i] == t_value(OLD_SEED, i));
}

static void a_writes(struct ufo_obj *a)
{
	uint64_t *w = ufo_body(a);

	for (uint64_t i = 0; i < WORDS; i++)
		if (i / EPC != B_CHUNK)
			w[i] = t_value(NEW_SEED, i);
	assert_int_equal(ufo_sync(a), 0);
}

/* B's view across A's sync; a and b may share a context or not. */
static void two_clients(const char *name, struct ufo_ctx *ctx_a,
			struct ufo_ctx *ctx_b)
{
	struct ufo_obj *a, *b, *late;
	uint64_t *bw;
	struct ufo_stats before;

	b = t_remote_obj(ctx_b, name, 0, 0, 0);
	touch_old(b);
	a = t_remote_obj(ctx_a, name, 0, 0, 0);
	/* B writes its own chunk: dirty, not yet synced. */
	bw = ufo_body(b);
	for (uint64_t i = B_CHUNK * EPC; i < (B_CHUNK + 1) * EPC; i++)
		bw[i] = t_value(B_SEED, i);

	a_writes(a);
	before = t_obj_stats(b);
	assert_int_equal(ufo_refresh(b), 0);
	/* B sees A's chunks and still its own write. */
	check_obj(b, B_MINE, "B after refresh");
	/* The chunks A wrote came from the server again. */
	assert_true(t_obj_stats(b).bytes_loaded - before.bytes_loaded >=
		    (uint64_t)(NCHUNKS - 1) * CHUNK);
	/* What A synced is on the server.  (B's chunk may be there too: an
	 * eviction or, in hash mode, the refresh may write it back early.) */
	check_raw(name, B_EITHER);

	late = t_remote_obj(ctx_a, name, 0, 0, 0);
	check_obj(late, B_EITHER, "opened after A's sync");
	assert_int_equal(ufo_free(late), 0);

	assert_int_equal(ufo_sync(b), 0);
	check_raw(name, B_MINE);
	assert_int_equal(ufo_refresh(a), 0);
	check_obj(a, B_MINE, "A after B's sync and refresh");

	assert_int_equal(ufo_free(a), 0);
	assert_int_equal(ufo_free(b), 0);
}

static void test_two_contexts(void **state)
{
	struct ufo_ctx *ctx_a, *ctx_b;

	(void)state;
	t_remote_begin();
	seed_object("two-ctx");
	ctx_a = big_ctx();
	ctx_b = big_ctx();
	two_clients("two-ctx", ctx_a, ctx_b);
	assert_int_equal(ufo_ctx_destroy(ctx_a), 0);
	assert_int_equal(ufo_ctx_destroy(ctx_b), 0);
}

static void test_one_context(void **state)
{
	struct ufo_ctx *ctx;

	(void)state;
	t_remote_begin();
	seed_object("one-ctx");
	ctx = big_ctx();
	two_clients("one-ctx", ctx, ctx);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
}

/* Hash mode: ufo_refresh cannot know B's chunk is dirty without hashing;
 * it must still neither lose B's write nor keep A's chunks stale. */
static void test_two_contexts_hash(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx_a, *ctx_b;

	(void)state;
	t_remote_begin();
	seed_object("two-ctx-hash");
	t_config(&cfg, CHUNK, 4 * NCHUNKS, 3 * NCHUNKS);
	cfg.dirty_mode = UFO_DIRTY_HASH;
	ctx_a = t_ctx(&cfg);
	ctx_b = t_ctx(&cfg);
	two_clients("two-ctx-hash", ctx_a, ctx_b);
	assert_int_equal(ufo_ctx_destroy(ctx_a), 0);
	assert_int_equal(ufo_ctx_destroy(ctx_b), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_contexts),
		cmocka_unit_test(test_one_context),
		cmocka_unit_test(test_two_contexts_hash),
	};

	t_remote_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
