/* SPDX-License-Identifier: MIT */
/*
 * Configuration: defaults, UFO_* environment overrides (which beat the
 * struct), malformed values and inconsistent watermarks (-EINVAL), the dirty
 * mode actually chosen, and the log callback.
 */
#include "t_helpers.h"

struct log_sink {
	pthread_mutex_t lock;
	unsigned count[UFO_LOG_DEBUG + 1];
	unsigned bad; /* NULL, empty or newline-terminated messages, bad levels */
	void *expect_user;
};

static void sink_log(void *user, enum ufo_log_level level, const char *msg)
{
	struct log_sink *s = user;
	size_t len = msg ? strlen(msg) : 0;

	pthread_mutex_lock(&s->lock);
	if (!msg || len == 0 || msg[len - 1] == '\n' || level > UFO_LOG_DEBUG ||
	    user != s->expect_user)
		s->bad++;
	else
		s->count[level]++;
	pthread_mutex_unlock(&s->lock);
}

static int pop_ones(void *user, uint64_t start, uint64_t end, void *dst)
{
	(void)user;
	memset(dst, 1, (end - start) * 8);
	return 0;
}

/* Creates with cfg and returns the rc, destroying a created context. */
static int try_create(const struct ufo_config *cfg)
{
	struct ufo_ctx *ctx = NULL;
	int rc = ufo_ctx_create(cfg, &ctx);

	if (t_uffd_refused(rc))
		skip();
	if (rc == 0)
		assert_int_equal(ufo_ctx_destroy(ctx), 0);
	return rc;
}

static void test_defaults(void **state)
{
	struct ufo_config cfg, got;
	struct ufo_ctx *ctx;

	(void)state;
	ufo_config_init(&cfg);
	ctx = t_ctx(&cfg);
	ufo_ctx_config(ctx, &got);
	assert_int_equal(got.high_watermark, (size_t)1 << 30);
	assert_int_equal(got.low_watermark, ((size_t)1 << 30) / 4 * 3);
	assert_int_equal(got.threads, 2);
	assert_int_equal(got.policy, UFO_POLICY_MQ); /* DEFAULT resolved */
	assert_int_not_equal(ufo_ctx_dirty_mode(ctx), UFO_DIRTY_AUTO);
	/* AUTO resolved too: the config reports the mode in force. */
	assert_int_equal(got.dirty_mode, ufo_ctx_dirty_mode(ctx));
	assert_int_equal(ufo_ctx_destroy(ctx), 0);

	/* NULL means the same defaults. */
	assert_int_equal(ufo_ctx_create(NULL, &ctx), 0);
	ufo_ctx_config(ctx, &got);
	assert_int_equal(got.high_watermark, (size_t)1 << 30);
	assert_int_equal(got.threads, 2);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);

	/* Only high given: low is 3/4 of it. */
	ufo_config_init(&cfg);
	cfg.high_watermark = 64 * T_MIB;
	cfg.low_watermark = 0;
	ctx = t_ctx(&cfg);
	ufo_ctx_config(ctx, &got);
	assert_int_equal(got.high_watermark, 64 * T_MIB);
	assert_int_equal(got.low_watermark, 48 * T_MIB);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
}

static void test_env_overrides(void **state)
{
	struct ufo_config cfg, got;
	struct ufo_ctx *ctx;

	(void)state;
	ufo_config_init(&cfg);
	cfg.high_watermark = 8 * T_MIB;
	cfg.low_watermark = 4 * T_MIB;
	cfg.threads = 5;
	cfg.dirty_mode = UFO_DIRTY_AUTO;
	cfg.policy = UFO_POLICY_2Q;
	cfg.retries = 9;
	cfg.retry_delay_ms = 99;
	cfg.log_level = UFO_LOG_ERROR;

	setenv("UFO_HIGH_WATERMARK", "64M", 1);
	setenv("UFO_LOW_WATERMARK", "512K", 1);
	setenv("UFO_THREADS", "3", 1);
	setenv("UFO_DIRTY_MODE", "hash", 1);
	setenv("UFO_POLICY", "fifo", 1);
	setenv("UFO_RETRIES", "4", 1);
	setenv("UFO_RETRY_DELAY_MS", "7", 1);
	setenv("UFO_LOG_LEVEL", "info", 1);
	ctx = t_ctx(&cfg);
	ufo_ctx_config(ctx, &got);
	assert_int_equal(got.high_watermark, 64 * T_MIB);
	assert_int_equal(got.low_watermark, 512 * T_KIB);
	assert_int_equal(got.threads, 3);
	assert_int_equal(got.dirty_mode, UFO_DIRTY_HASH);
	assert_int_equal(ufo_ctx_dirty_mode(ctx), UFO_DIRTY_HASH);
	assert_int_equal(got.policy, UFO_POLICY_FIFO);
	assert_int_equal(got.retries, 4);
	assert_int_equal(got.retry_delay_ms, 7);
	assert_int_equal(got.log_level, UFO_LOG_INFO);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);

	/* Other suffixes and spellings; plain bytes. */
	setenv("UFO_HIGH_WATERMARK", "2G", 1);
	setenv("UFO_LOW_WATERMARK", "1048576", 1);
	setenv("UFO_POLICY", "2q", 1);
	setenv("UFO_LOG_LEVEL", "debug", 1);
	ctx = t_ctx(&cfg);
	ufo_ctx_config(ctx, &got);
	assert_int_equal(got.high_watermark, (size_t)2 << 30);
	assert_int_equal(got.low_watermark, T_MIB);
	assert_int_equal(got.policy, UFO_POLICY_2Q);
	assert_int_equal(got.log_level, UFO_LOG_DEBUG);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	setenv("UFO_POLICY", "mq", 1);
	ctx = t_ctx(&cfg);
	ufo_ctx_config(ctx, &got);
	assert_int_equal(got.policy, UFO_POLICY_MQ);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);

	setenv("UFO_HIGH_WATERMARK", "1T", 1);
	setenv("UFO_LOW_WATERMARK", "1G", 1);
	ctx = t_ctx(&cfg);
	ufo_ctx_config(ctx, &got);
	assert_int_equal(got.high_watermark, (size_t)1 << 40);
	assert_int_equal(got.low_watermark, (size_t)1 << 30);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);

	/* Unset again: the struct is back in force. */
	t_clear_env();
	ctx = t_ctx(&cfg);
	ufo_ctx_config(ctx, &got);
	assert_int_equal(got.high_watermark, 8 * T_MIB);
	assert_int_equal(got.low_watermark, 4 * T_MIB);
	assert_int_equal(got.threads, 5);
	assert_int_equal(got.policy, UFO_POLICY_2Q);
	assert_int_equal(got.retries, 9);
	assert_int_equal(got.retry_delay_ms, 99);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
}

static void expect_env_einval(const char *var, const char *value)
{
	struct ufo_config cfg;

	t_clear_env();
	ufo_config_init(&cfg);
	cfg.log = t_log_stderr;
	setenv(var, value, 1);
	if (try_create(&cfg) != -EINVAL)
		fail_msg("%s=\"%s\" was accepted", var, value);
	unsetenv(var);
}

static void test_env_malformed(void **state)
{
	struct ufo_config cfg;

	(void)state;
	expect_env_einval("UFO_HIGH_WATERMARK", "lots");
	expect_env_einval("UFO_HIGH_WATERMARK", "12Q");
	expect_env_einval("UFO_HIGH_WATERMARK", "64X");
	expect_env_einval("UFO_HIGH_WATERMARK", "-5M");
	expect_env_einval("UFO_HIGH_WATERMARK", "99999999999999999999999");
	expect_env_einval("UFO_HIGH_WATERMARK", "99999999999T");
	expect_env_einval("UFO_LOW_WATERMARK", "1.5M");
	expect_env_einval("UFO_THREADS", "two");
	expect_env_einval("UFO_THREADS", "3x");
	expect_env_einval("UFO_DIRTY_MODE", "sometimes");
	expect_env_einval("UFO_POLICY", "lru");
	expect_env_einval("UFO_RETRIES", "x1");
	expect_env_einval("UFO_RETRY_DELAY_MS", "10ms");
	expect_env_einval("UFO_LOG_LEVEL", "loud");

	/* A valid variable next to a malformed one still fails. */
	t_clear_env();
	setenv("UFO_THREADS", "2", 1);
	setenv("UFO_POLICY", "bogus", 1);
	ufo_config_init(&cfg);
	cfg.log = t_log_stderr;
	assert_int_equal(try_create(&cfg), -EINVAL);
	t_clear_env();
	/* And with nothing malformed left, creation works. */
	assert_int_equal(try_create(&cfg), 0);
}

static void test_watermarks(void **state)
{
	struct ufo_config cfg;

	(void)state;
	ufo_config_init(&cfg);
	cfg.log = t_log_stderr;
	cfg.high_watermark = 4 * T_MIB;
	cfg.low_watermark = 8 * T_MIB;
	assert_int_equal(try_create(&cfg), -EINVAL);

	/* The same inconsistency arising from the environment. */
	ufo_config_init(&cfg);
	cfg.log = t_log_stderr;
	cfg.high_watermark = 64 * T_MIB;
	cfg.low_watermark = 32 * T_MIB;
	setenv("UFO_LOW_WATERMARK", "128M", 1);
	assert_int_equal(try_create(&cfg), -EINVAL);
	t_clear_env();
	setenv("UFO_HIGH_WATERMARK", "16M", 1);
	assert_int_equal(try_create(&cfg), -EINVAL);
	t_clear_env();
	assert_int_equal(try_create(&cfg), 0);
}

static void test_dirty_mode(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	const char *wp = ufo_dirty_mode_name(UFO_DIRTY_WP);
	const char *hash = ufo_dirty_mode_name(UFO_DIRTY_HASH);
	int have_wp, have_scan;
	enum ufo_dirty_mode auto_mode;

	(void)state;
	assert_non_null(wp);
	assert_string_equal(ufo_dirty_mode_name(UFO_DIRTY_SCAN), "scan");
	assert_non_null(hash);
	assert_true(strlen(wp) > 0 && strlen(hash) > 0);
	assert_string_not_equal(wp, hash);

	have_wp = t_have_wp();
	have_scan = t_have_scan();
	auto_mode = have_wp ? UFO_DIRTY_WP : UFO_DIRTY_HASH;
	t_config(&cfg, 0, 0, 0);
	ctx = t_ctx(&cfg);
	/* AUTO picks write-protect, else hash (never scan: its evictions
	 * cost more), whichever forcing works. */
	assert_int_equal(ufo_ctx_dirty_mode(ctx), auto_mode);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);

	cfg.dirty_mode = UFO_DIRTY_HASH;
	ctx = t_ctx(&cfg);
	assert_int_equal(ufo_ctx_dirty_mode(ctx), UFO_DIRTY_HASH);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);

	cfg.dirty_mode = UFO_DIRTY_WP;
	assert_int_equal(try_create(&cfg), have_wp ? 0 : -ENOTSUP);
	cfg.dirty_mode = UFO_DIRTY_SCAN;
	assert_int_equal(try_create(&cfg), have_scan ? 0 : -ENOTSUP);

	/* Environment spelling selects the same modes. */
	cfg.dirty_mode = UFO_DIRTY_HASH;
	if (have_wp) {
		setenv("UFO_DIRTY_MODE", "wp", 1);
		ctx = t_ctx(&cfg);
		assert_int_equal(ufo_ctx_dirty_mode(ctx), UFO_DIRTY_WP);
		assert_int_equal(ufo_ctx_destroy(ctx), 0);
	}
	if (have_scan) {
		setenv("UFO_DIRTY_MODE", "scan", 1);
		ctx = t_ctx(&cfg);
		assert_int_equal(ufo_ctx_dirty_mode(ctx), UFO_DIRTY_SCAN);
		assert_int_equal(ufo_ctx_destroy(ctx), 0);
	}
	setenv("UFO_DIRTY_MODE", "auto", 1);
	ctx = t_ctx(&cfg);
	assert_int_equal(ufo_ctx_dirty_mode(ctx), auto_mode);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	t_clear_env();
}

/* Runs a context with one object through a few faults, logging to sink. */
static void exercise(const struct ufo_config *cfg)
{
	struct ufo_ctx *ctx = t_ctx(cfg);
	struct ufo_params p;
	struct ufo_obj *obj;
	volatile uint64_t *body;

	ufo_params_init(&p);
	p.elem_size = 8;
	p.elem_count = 4096;
	p.chunk_size = 4096;
	p.populate = pop_ones;
	obj = t_obj(ctx, &p);
	body = ufo_body(obj);
	for (uint64_t i = 0; i < 4096; i += 512)
		assert_true(body[i] == 0x0101010101010101ull);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
}

static void test_log_callback(void **state)
{
	struct ufo_config cfg;
	struct log_sink sink;

	(void)state;
	memset(&sink, 0, sizeof(sink));
	pthread_mutex_init(&sink.lock, NULL);
	sink.expect_user = &sink;

	/* Debug in the struct: debug messages arrive. */
	ufo_config_init(&cfg);
	cfg.log = sink_log;
	cfg.log_user = &sink;
	cfg.log_level = UFO_LOG_DEBUG;
	exercise(&cfg);
	assert_int_equal(sink.bad, 0);
	assert_true(sink.count[UFO_LOG_DEBUG] + sink.count[UFO_LOG_INFO] > 0);

	/* Error level: nothing above it is delivered. */
	memset(sink.count, 0, sizeof(sink.count));
	cfg.log_level = UFO_LOG_ERROR;
	exercise(&cfg);
	assert_int_equal(sink.bad, 0);
	assert_int_equal(sink.count[UFO_LOG_WARN] + sink.count[UFO_LOG_INFO] +
				 sink.count[UFO_LOG_DEBUG], 0);

	/* The environment raises it again. */
	setenv("UFO_LOG_LEVEL", "debug", 1);
	exercise(&cfg);
	t_clear_env();
	assert_int_equal(sink.bad, 0);
	assert_true(sink.count[UFO_LOG_DEBUG] + sink.count[UFO_LOG_INFO] > 0);

	/* A refused configuration is explained in the log. */
	memset(sink.count, 0, sizeof(sink.count));
	cfg.high_watermark = T_MIB;
	cfg.low_watermark = 2 * T_MIB;
	assert_int_equal(try_create(&cfg), -EINVAL);
	assert_int_equal(sink.bad, 0);
	assert_true(sink.count[UFO_LOG_ERROR] + sink.count[UFO_LOG_WARN] > 0);
	pthread_mutex_destroy(&sink.lock);
}

/* A failed assertion leaves the test early: start every test clean. */
static int clean_env(void **state)
{
	(void)state;
	t_clear_env();
	return 0;
}

#define T_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The one size parser: UFO_* variables, ufoctl, examples and benchmarks. */
static void test_parse_size(void **state)
{
	static const struct { const char *s; uint64_t v; } good[] = {
		{ "0", 0 }, { "4096", 4096 }, { "64K", 64 << 10 },
		{ "64k", 64 << 10 }, { "64KiB", 64 << 10 }, { "1MB", 1 << 20 },
		{ "3G", 3ull << 30 }, { "2T", 2ull << 40 }, { "5B", 5 },
	};
	static const char *const bad[] = {
		"", "-1", " 1", "+1", "1 ", "1X", "1KK", "K", "1.5G", "1Ki B",
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < T_LEN(good); i++) {
		v = ~0ull;
		assert_int_equal(ufo_parse_size(good[i].s, &v), 0);
		assert_int_equal(v, good[i].v);
	}
	for (size_t i = 0; i < T_LEN(bad); i++)
		if (ufo_parse_size(bad[i], &v) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
	assert_int_equal(ufo_parse_size("99999999999999999999", &v), -ERANGE);
	assert_int_equal(ufo_parse_size("16777216T", &v), -ERANGE);
	assert_int_equal(ufo_parse_size(NULL, &v), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test_setup_teardown(test_defaults, clean_env,
						clean_env),
		cmocka_unit_test_setup_teardown(test_env_overrides, clean_env,
						clean_env),
		cmocka_unit_test_setup_teardown(test_env_malformed, clean_env,
						clean_env),
		cmocka_unit_test_setup_teardown(test_watermarks, clean_env,
						clean_env),
		cmocka_unit_test_setup_teardown(test_dirty_mode, clean_env,
						clean_env),
		cmocka_unit_test_setup_teardown(test_log_callback, clean_env,
						clean_env),
	};

	t_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
