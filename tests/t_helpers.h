/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers for the libufo cmocka tests.  Each test program is one
 * translation unit, so everything here is static.
 *
 * Skipping: a test that cannot get a context because the kernel refuses
 * userfaultfd skips.  t_main() probes once before running any test and exits
 * 77 (meson's "skipped") when userfaultfd is unusable; t_ctx() skips a single
 * test for the same errors, in case the probe passed and a later create did
 * not.
 */
#ifndef T_HELPERS_H
#define T_HELPERS_H

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ufo.h"

#define T_EXIT_SKIP 77
#define T_KIB ((size_t)1 << 10)
#define T_MIB ((size_t)1 << 20)

/* Upper bound for every polling loop: long enough for a loaded CI machine,
 * short enough that a lost wakeup fails the test instead of hanging it. */
#define T_POLL_LIMIT_MS 20000

/* Polls cond every 100 µs until it holds or T_POLL_LIMIT_MS passed; the
 * caller asserts cond afterwards. */
#define T_WAIT_UNTIL(cond)                                                   \
	do {                                                                 \
		for (unsigned t_w_ = 0;                                      \
		     !(cond) && t_w_ < T_POLL_LIMIT_MS * 10u; t_w_++)        \
			t_sleep_us(100);                                     \
	} while (0)

static inline size_t t_page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static inline size_t t_round_up(size_t x, size_t to)
{
	return (x + to - 1) / to * to;
}

static inline void t_sleep_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Zeroed memory for state that callbacks and library threads reach.  It is
 * never on the test's stack: when an assertion fails, cmocka leaves the test
 * with the context still alive, and its threads must not write into a stack
 * frame the next test reuses.  (So a failed test leaks it, on purpose.) */
static inline void *t_zalloc(size_t len)
{
	void *p = calloc(1, len);

	assert_non_null(p);
	return p;
}

/* ------------------------------------------------------------- values */

/* splitmix64: the deterministic content of element i under seed. */
static inline uint64_t t_value(uint64_t seed, uint64_t i)
{
	uint64_t z = seed * 0x9e3779b97f4a7c15ull + i + 1;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Fills elements [start, end) of elem_size bytes each at dst with the bytes
 * of t_value(seed, i), repeated or truncated to elem_size. */
static inline void t_fill(void *dst, size_t elem_size, uint64_t seed,
			  uint64_t start, uint64_t end)
{
	unsigned char *p = dst;

	for (uint64_t i = start; i < end; i++) {
		uint64_t v = t_value(seed, i);

		for (size_t b = 0; b < elem_size; b++)
			*p++ = (unsigned char)(v >> (8 * (b % 8)));
	}
}

/* Index of the first of n u64 words at p (read through volatile: a UFO
 * body is filled by faults) that differs from t_value(seed, i), or -1. */
static inline int64_t t_first_bad_word(const volatile uint64_t *p, uint64_t n,
				       uint64_t seed)
{
	for (uint64_t i = 0; i < n; i++)
		if (p[i] != t_value(seed, i))
			return (int64_t)i;
	return -1;
}

/* Per-thread xorshift64* generator for random workloads. */
static inline uint64_t t_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* ------------------------------------------------------------ backing */

/*
 * A store of 64-bit elements behind an object: populate copies from it,
 * writeback into it.  A test passes, as the callbacks' user pointer, a
 * struct whose first member is a struct t_backing.
 */
struct t_backing {
	uint64_t *words;
};

static __attribute__((unused)) int t_backing_populate(void *user,
						       uint64_t start,
						       uint64_t end, void *dst)
{
	const struct t_backing *b = user;

	memcpy(dst, b->words + start, (end - start) * sizeof(uint64_t));
	return 0;
}

static __attribute__((unused)) int t_backing_writeback(void *user,
							uint64_t start,
							uint64_t end,
							const void *src)
{
	struct t_backing *b = user;

	memcpy(b->words + start, src, (end - start) * sizeof(uint64_t));
	return 0;
}

/* ------------------------------------------------------------ context */

static inline int t_uffd_refused(int rc)
{
	return rc == -EPERM || rc == -EACCES || rc == -ENOSYS;
}

/* Removes every UFO_* variable so the environment the tests run in cannot
 * change what they check (t_config sets its own). */
static inline void t_clear_env(void)
{
	static const char *const vars[] = {
		"UFO_HIGH_WATERMARK", "UFO_LOW_WATERMARK", "UFO_THREADS",
		"UFO_DIRTY_MODE", "UFO_POLICY", "UFO_RETRIES",
		"UFO_RETRY_DELAY_MS", "UFO_LOG_LEVEL", "UFO_MONITOR",
	};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
}

/* Log sink for tests that do not check logging: errors still reach stderr
 * (the test log), the rest is dropped. */
static inline void t_log_stderr(void *user, enum ufo_log_level level,
				const char *msg)
{
	(void)user;
	if (level <= UFO_LOG_WARN)
		fprintf(stderr, "libufo[%d]: %s\n", (int)level, msg);
}

/* A config with a budget of high_chunks/low_chunks chunks of chunk bytes
 * (0 chunks: library default) and fast retries. */
static inline void t_config(struct ufo_config *cfg, size_t chunk,
			    unsigned high_chunks, unsigned low_chunks)
{
	ufo_config_init(cfg);
	if (high_chunks) {
		cfg->high_watermark = chunk * high_chunks;
		cfg->low_watermark = chunk * low_chunks;
	}
	cfg->threads = 2;
	cfg->retries = 1;
	cfg->retry_delay_ms = 1;
	cfg->log = t_log_stderr;
	cfg->log_level = UFO_LOG_WARN;
}

/* Creates a context or skips the calling test when userfaultfd (or the
 * requested write-protect mode) is unavailable. */
static inline struct ufo_ctx *t_ctx(const struct ufo_config *cfg)
{
	struct ufo_ctx *ctx = NULL;
	int rc = ufo_ctx_create(cfg, &ctx);

	if (t_uffd_refused(rc) || rc == -ENOTSUP) {
		fprintf(stderr, "skip: ufo_ctx_create: %s\n", strerror(-rc));
		skip();
	}
	assert_int_equal(rc, 0);
	assert_non_null(ctx);
	return ctx;
}

static inline struct ufo_obj *t_obj(struct ufo_ctx *ctx,
				    const struct ufo_params *p)
{
	struct ufo_obj *obj = NULL;

	assert_int_equal(ufo_create(ctx, p, &obj), 0);
	assert_non_null(obj);
	return obj;
}

static inline struct ufo_stats t_obj_stats(const struct ufo_obj *obj)
{
	struct ufo_stats s;

	assert_int_equal(ufo_obj_stats(obj, &s), 0);
	return s;
}

static inline struct ufo_stats t_ctx_stats(const struct ufo_ctx *ctx)
{
	struct ufo_stats s;

	assert_int_equal(ufo_ctx_stats(ctx, &s), 0);
	return s;
}

/* Exits 77 before any test runs when no context can be created at all. */
static inline void t_require_uffd(void)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx = NULL;
	int rc;

	t_config(&cfg, 0, 0, 0);
	rc = ufo_ctx_create(&cfg, &ctx);
	if (t_uffd_refused(rc)) {
		fprintf(stderr, "skip: userfaultfd unavailable: %s\n",
			strerror(-rc));
		exit(T_EXIT_SKIP);
	}
	if (rc != 0) {
		fprintf(stderr, "ufo_ctx_create with defaults: %s\n",
			strerror(-rc));
		exit(1);
	}
	ufo_ctx_destroy(ctx);
}

/* Whether the kernel gives us write-protect dirty tracking. */
static inline int t_have_wp(void)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx = NULL;
	int rc;

	t_config(&cfg, 0, 0, 0);
	cfg.dirty_mode = UFO_DIRTY_WP;
	rc = ufo_ctx_create(&cfg, &ctx);
	if (rc == 0)
		ufo_ctx_destroy(ctx);
	return rc == 0;
}

/* Whether scan mode (WP_ASYNC + PAGEMAP_SCAN, Linux 6.7) can be forced. */
static inline int t_have_scan(void)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx = NULL;
	int rc;

	t_config(&cfg, 0, 0, 0);
	cfg.dirty_mode = UFO_DIRTY_SCAN;
	rc = ufo_ctx_create(&cfg, &ctx);
	if (rc == 0)
		ufo_ctx_destroy(ctx);
	return rc == 0;
}

/* -------------------------------------------------------------- signals */

/*
 * Catching SIGBUS/SIGSEGV per thread.  A thread arms its own jump buffer;
 * the handler jumps back when the receiving thread is armed.  The library
 * sends SIGBUS with tgkill (si_code SI_TKILL), so only the signal number is
 * matched, never si_addr.  A signal on an unarmed thread is a test failure:
 * returning would re-run the faulting access forever, so the handler
 * restores the default action and re-raises (the process dies visibly).
 * cmocka installs its own SIGSEGV/SIGBUS handlers around every test, so a
 * test calls t_catch_install() itself, inside the test body.
 */
/* volatile: the stores must happen around the access, which the compiler
 * does not know can jump into the handler. */
static _Thread_local sigjmp_buf *volatile t_jmp;
static _Thread_local volatile sig_atomic_t t_caught;
static atomic_uint t_signals_total;

static __attribute__((unused)) void t_signal_handler(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	atomic_fetch_add(&t_signals_total, 1);
	if (t_jmp) {
		t_caught = sig;
		siglongjmp(*t_jmp, 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static inline void t_catch_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = t_signal_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGBUS, &sa, NULL), 0);
	assert_int_equal(sigaction(SIGSEGV, &sa, NULL), 0);
}

/* Reads *p; returns 0, or the signal number the read raised. */
static __attribute__((noinline, unused)) int t_try_read(const volatile uint64_t *p,
						uint64_t *out)
{
	sigjmp_buf env;
	int sig = 0;

	t_caught = 0;
	if (sigsetjmp(env, 1) == 0) {
		t_jmp = &env;
		*out = *p;
	} else {
		sig = t_caught;
	}
	t_jmp = NULL;
	return sig;
}

/* Writes v to *p; returns 0, or the signal number the write raised. */
static __attribute__((noinline, unused)) int t_try_write(volatile uint64_t *p,
						 uint64_t v)
{
	sigjmp_buf env;
	int sig = 0;

	t_caught = 0;
	if (sigsetjmp(env, 1) == 0) {
		t_jmp = &env;
		*p = v;
	} else {
		sig = t_caught;
	}
	t_jmp = NULL;
	return sig;
}

/* ------------------------------------------------------------- watchdog */

static __attribute__((unused)) void t_watchdog_fired(int sig)
{
	static const char msg[] =
		"watchdog: test did not finish in time (deadlock?)\n";

	(void)sig;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(1);
}

/* Fails the whole program, instead of hanging it, after seconds. */
static inline void t_watchdog(unsigned seconds)
{
	signal(SIGALRM, t_watchdog_fired);
	alarm(seconds);
}

/* Common main body: a clean environment, the userfaultfd probe, a watchdog
 * below meson's timeout. */
static inline void t_setup(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	t_clear_env();
	t_watchdog(100);
	t_require_uffd();
}

#endif /* T_HELPERS_H */
