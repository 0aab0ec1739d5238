/* SPDX-License-Identifier: MIT */
/*
 * An unreachable server fails only the threads that need it: a thread
 * faulting on a chunk of a remote object whose server is gone (killed, or
 * stopped so that it no longer answers) gets SIGBUS once the request
 * timeout is spent, while another thread keeps using another object of the
 * same context; chunks already resident keep working; after the server is
 * back the same chunk loads.  A server slower than the timeout allows
 * delays only the thread that waits for it.  A writeback that fails while
 * the server is away keeps its chunk dirty until a later sync succeeds.
 *
 * And the errors of connecting: refused, wrong or missing secret, bad
 * URLs and names, a transport that is not built (rdma://).
 */
#include "t_remote.h"

#define CHUNK (64 * T_KIB)
#define EPC (CHUNK / sizeof(uint64_t))
#define NCHUNKS 16
#define OBJ_SIZE (NCHUNKS * CHUNK)
#define REMOTE_SEED 41
#define LOCAL_SEED 42
#define LOCAL_CHUNKS 64
#define TIMEOUT_MS 500 /* per request: SIGBUS comes after a few of these */
/* Longer than a local pass can take unless it is blocked behind the
 * remote fault, which is what the slow-server test checks. */
#define LONG_TIMEOUT_MS T_POLL_LIMIT_MS

/* State reached by threads and the library; never on a stack. */
struct unreach {
	struct ufo_obj *remote;
	struct ufo_obj *local;
	atomic_uint local_populates;
	/* the faulting thread */
	uint64_t bus_word;   /* word index it reads */
	atomic_bool bus_done;
	int bus_sig;
	uint64_t bus_value;
	/* the thread using the local object */
	atomic_bool local_done;
	atomic_uint local_bad;
};

static int local_populate(void *user, uint64_t start, uint64_t end, void *dst)
{
	struct unreach *u = user;

	atomic_fetch_add(&u->local_populates, 1);
	t_fill(dst, sizeof(uint64_t), LOCAL_SEED, start, end);
	return 0;
}

static struct ufo_ctx *unreach_ctx(void)
{
	struct ufo_config cfg;

	t_config(&cfg, CHUNK, 0, 0);
	cfg.threads = 2;
	cfg.retries = 1;
	return t_ctx(&cfg);
}

/* The remote object holds REMOTE_SEED words; written raw, then opened. */
static struct ufo_obj *open_remote(struct ufo_ctx *ctx, const char *name,
				   unsigned timeout_ms)
{
	struct ufo_client *cl = t_client();
	struct ufo_remote_info info;
	struct ufo_obj *obj;
	char *buf = t_zalloc(OBJ_SIZE);

	assert_int_equal(ufo_client_create(cl, name, OBJ_SIZE, CHUNK, &info), 0);
	t_fill(buf, sizeof(uint64_t), REMOTE_SEED, 0, OBJ_SIZE / 8);
	assert_int_equal(ufo_client_write(cl, info.id, 0, buf, OBJ_SIZE), 0);
	free(buf);
	ufo_client_close(cl);
	obj = t_remote_obj(ctx, name, 0, 0, timeout_ms);
	/* No readahead: chunks not touched are not resident. */
	assert_int_equal(ufo_advise(obj, 0, 0, UFO_ADV_RANDOM), 0);
	return obj;
}

static void *bus_thread(void *arg)
{
	struct unreach *u = arg;
	const volatile uint64_t *w = ufo_body(u->remote);

	u->bus_sig = t_try_read(&w[u->bus_word], &u->bus_value);
	atomic_store(&u->bus_done, true);
	return NULL;
}

static void *local_thread(void *arg)
{
	struct unreach *u = arg;
	const volatile uint64_t *w = ufo_body(u->local);

	for (uint64_t i = 0; i < LOCAL_CHUNKS * EPC; i++)
		if (w[i] != t_value(LOCAL_SEED, i))
			atomic_fetch_add(&u->local_bad, 1);
	atomic_store(&u->local_done, true);
	return NULL;
}

static void start_bus_thread(struct unreach *u, uint64_t chunk, pthread_t *t)
{
	atomic_store(&u->bus_done, false);
	u->bus_sig = -1;
	u->bus_value = 0;
	u->bus_word = chunk * EPC + 3;
	assert_int_equal(pthread_create(t, NULL, bus_thread, u), 0);
}

static void join_bus_thread(struct unreach *u, pthread_t t)
{
	T_WAIT_UNTIL(atomic_load(&u->bus_done));
	assert_true(atomic_load(&u->bus_done));
	pthread_join(t, NULL);
}

/* Touches chunk from a thread; returns the signal it got (0: none) and
 * checks the value when there was none. */
static int touch_from_thread(struct unreach *u, uint64_t chunk)
{
	pthread_t t;

	start_bus_thread(u, chunk, &t);
	join_bus_thread(u, t);
	if (u->bus_sig == 0)
		assert_true(u->bus_value == t_value(REMOTE_SEED, u->bus_word));
	return u->bus_sig;
}

static struct ufo_obj *local_obj(struct ufo_ctx *ctx, struct unreach *u)
{
	struct ufo_params p;

	ufo_params_init(&p);
	p.elem_size = sizeof(uint64_t);
	p.elem_count = LOCAL_CHUNKS * EPC;
	p.chunk_size = CHUNK;
	p.populate = local_populate;
	p.user = u;
	return t_obj(ctx, &p);
}

/* How a scenario takes the server away and brings it back. */
struct outage {
	const char *name;
	void (*stop)(void);
	void (*resume)(void);
	unsigned timeout_ms;
	/* The fault's request outlasts the outage, so it succeeds (and the
	 * local pass provably ran while it was pending); else SIGBUS. */
	bool outlasts;
};

/* The server goes away while a thread faults on a chunk never loaded;
 * another thread reads a local object of the same context meanwhile. */
static void fault_during_outage(const struct outage *how)
{
	struct unreach *u = t_zalloc(sizeof(*u));
	struct ufo_ctx *ctx;
	struct ufo_stats s;
	pthread_t bus, local;
	uint64_t faults;
	bool bus_done_early;

	t_remote_begin();
	ctx = unreach_ctx();
	u->remote = open_remote(ctx, how->name, how->timeout_ms);
	u->local = local_obj(ctx, u);
	assert_int_equal(touch_from_thread(u, 0), 0); /* chunk 0 resident */

	how->stop();
	faults = t_obj_stats(u->remote).faults;
	start_bus_thread(u, 5, &bus);
	/* Its fault is being handled now; the other object must work. */
	T_WAIT_UNTIL(t_obj_stats(u->remote).faults > faults ||
		     atomic_load(&u->bus_done));
	assert_int_equal(pthread_create(&local, NULL, local_thread, u), 0);
	T_WAIT_UNTIL(atomic_load(&u->local_done));
	assert_true(atomic_load(&u->local_done));
	pthread_join(local, NULL);
	bus_done_early = atomic_load(&u->bus_done);
	fprintf(stderr, "%s: local pass finished %s the faulting thread\n",
		how->name, bus_done_early ? "after" : "before");
	assert_int_equal(atomic_load(&u->local_bad), 0);
	assert_true(atomic_load(&u->local_populates) >= LOCAL_CHUNKS);
	assert_int_equal(t_obj_stats(u->local).sigbus, 0);

	if (how->outlasts) {
		/* Still waiting for the server: nothing failed yet. */
		assert_false(bus_done_early);
		how->resume();
		join_bus_thread(u, bus);
		assert_int_equal(u->bus_sig, 0);
		assert_true(u->bus_value == t_value(REMOTE_SEED, u->bus_word));
		assert_int_equal(t_ctx_stats(ctx).sigbus, 0);
	} else {
		join_bus_thread(u, bus);
		assert_int_equal(u->bus_sig, SIGBUS);
		s = t_obj_stats(u->remote);
		assert_true(s.sigbus >= 1);
		assert_true(s.populate_errors >= 1);
		assert_true(t_ctx_stats(ctx).sigbus >= 1);
		/* What is resident needs no server. */
		assert_int_equal(touch_from_thread(u, 0), 0);
		how->resume();
	}
	if (t_srv.pid > 0) {
		/* Back (on the same port): the chunk that failed loads. */
		assert_int_equal(touch_from_thread(u, 5), 0);
		assert_int_equal(touch_from_thread(u, 9), 0);
	}
	assert_int_equal(ufo_free(u->local), 0);
	assert_int_equal(ufo_free(u->remote), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	free(u);
}

static void kill_server(void)
{
	t_server_kill(&t_srv);
}

static void restart_server(void)
{
	uint16_t port = t_srv.port;

	assert_int_equal(t_server_restart(&t_srv), 0);
	if (t_srv.port != port) {
		fprintf(stderr, "restarted on another port: reload not checked\n");
		t_server_kill(&t_srv);
	}
}

static void freeze_server(void)
{
	assert_int_equal(kill(t_srv.pid, SIGSTOP), 0);
}

static void thaw_server(void)
{
	assert_int_equal(kill(t_srv.pid, SIGCONT), 0);
}

static void test_sigbus_server_killed(void **state)
{
	static const struct outage how = {
		"unreach-killed", kill_server, restart_server, TIMEOUT_MS, false,
	};

	(void)state;
	fault_during_outage(&how);
}

/* A server that accepts connections but never answers: the request
 * times out. */
static void test_sigbus_server_frozen(void **state)
{
	static const struct outage how = {
		"unreach-frozen", freeze_server, thaw_server, TIMEOUT_MS, false,
	};

	(void)state;
	fault_during_outage(&how);
}

/* A server that answers late, within the timeout: the fault waits for it
 * (no SIGBUS), and other objects work while it waits. */
static void test_slow_server_other_object_works(void **state)
{
	static const struct outage how = {
		"unreach-slow", freeze_server, thaw_server, LONG_TIMEOUT_MS, true,
	};

	(void)state;
	fault_during_outage(&how);
}

/* Two words written in each of the first SYNC_CHUNKS chunks: every
 * failing writeback takes the request timeout, so only a few. */
#define SYNC_CHUNKS 2
#define SYNC_STRIDE (EPC / 2)

static uint64_t expect_synced(uint64_t i)
{
	bool written = i < SYNC_CHUNKS * EPC && i % SYNC_STRIDE == 0;

	return written ? ~t_value(REMOTE_SEED, i) : t_value(REMOTE_SEED, i);
}

/* A writeback that fails while the server is away keeps the chunk dirty
 * and resident: ufo_sync reports the error, and once the server is back
 * the next ufo_sync stores the data. */
static void test_sync_while_server_down(void **state)
{
	struct ufo_remote_info info;
	struct ufo_client *cl;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	uint64_t *w, *raw;
	int rc;

	(void)state;
	t_remote_begin();
	ctx = unreach_ctx();
	obj = open_remote(ctx, "unreach-sync", TIMEOUT_MS);
	w = ufo_body(obj);
	for (uint64_t i = 0; i < SYNC_CHUNKS * EPC; i += SYNC_STRIDE)
		w[i] = ~t_value(REMOTE_SEED, i);
	kill_server();
	rc = ufo_sync(obj);
	fprintf(stderr, "ufo_sync with the server down: %s\n", strerror(-rc));
	assert_true(rc < 0);
	assert_true(t_obj_stats(obj).writeback_errors >= 1);
	/* Nothing was lost from memory (only these chunks are resident:
	 * touching others would need the server). */
	for (uint64_t i = 0; i < SYNC_CHUNKS * EPC; i++)
		assert_true(w[i] == expect_synced(i));
	restart_server();
	if (t_srv.pid <= 0) {
		ufo_ctx_destroy(ctx);
		skip(); /* the object only knows the old port */
	}
	assert_int_equal(ufo_sync(obj), 0);
	cl = t_client();
	raw = t_zalloc(OBJ_SIZE);
	assert_int_equal(ufo_client_stat(cl, "unreach-sync", &info), 0);
	assert_int_equal(ufo_client_read(cl, info.id, 0, raw, OBJ_SIZE), 0);
	for (uint64_t i = 0; i < OBJ_SIZE / 8; i++)
		if (raw[i] != expect_synced(i))
			fail_msg("raw word %llu after the second sync: %#llx, "
				 "want %#llx", (unsigned long long)i,
				 (unsigned long long)raw[i],
				 (unsigned long long)expect_synced(i));
	free(raw);
	ufo_client_close(cl);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
}

static int connect_rc(const char *url, const char *secret_file,
		      unsigned timeout_ms)
{
	struct ufo_remote_opts o;
	struct ufo_client *c = NULL;
	int rc;

	t_opts(&o);
	o.secret_file = secret_file;
	if (timeout_ms)
		o.timeout_ms = timeout_ms;
	rc = ufo_client_connect(url, &o, &c);
	if (rc == 0) {
		assert_non_null(c);
		ufo_client_close(c);
	}
	return rc;
}

static int open_rc(struct ufo_ctx *ctx, const char *url,
		   const char *secret_file)
{
	struct ufo_remote_opts o;
	struct ufo_obj *obj = NULL;
	int rc;

	t_opts(&o);
	o.secret_file = secret_file;
	rc = ufo_remote_open(ctx, url, &o, &obj);
	if (rc == 0)
		ufo_free(obj);
	return rc;
}

static void test_connect_refused(void **state)
{
	struct ufo_ctx *ctx;
	uint16_t port = t_closed_port();

	(void)state;
	t_remote_begin();
	ctx = unreach_ctx();
	assert_int_equal(connect_rc(t_url_port(port, NULL), t_srv.secret, 0),
			 -ECONNREFUSED);
	assert_int_equal(open_rc(ctx, t_url_port(port, "x"), t_srv.secret),
			 -ECONNREFUSED);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
}

/* A stopped server completes TCP connects (the kernel does) but never
 * the handshake. */
static void test_connect_timeout(void **state)
{
	(void)state;
	t_remote_begin();
	freeze_server();
	assert_int_equal(connect_rc(t_url(NULL), t_srv.secret, TIMEOUT_MS),
			 -ETIMEDOUT);
	thaw_server();
	assert_int_equal(connect_rc(t_url(NULL), t_srv.secret, 0), 0);
}

static void test_secrets(void **state)
{
	struct ufo_ctx *ctx;
	char wrong[PATH_MAX], shorter[PATH_MAX];
	static const char wrong_secret[] = "this is not the server secret\n";
	static const char short_secret[] = "0123456789\n"; /* < 16 bytes */

	(void)state;
	t_remote_begin();
	ctx = unreach_ctx();
	snprintf(wrong, sizeof(wrong), "%s/wrong-secret", t_srv.root);
	snprintf(shorter, sizeof(shorter), "%s/short-secret", t_srv.root);
	assert_int_equal(t_write_file(wrong, wrong_secret,
				      sizeof(wrong_secret) - 1, 0600), 0);
	assert_int_equal(t_write_file(shorter, short_secret,
				      sizeof(short_secret) - 1, 0600), 0);

	assert_int_equal(connect_rc(t_url(NULL), wrong, 0), -EACCES);
	assert_int_equal(open_rc(ctx, t_url("x"), wrong), -EACCES);
	assert_int_equal(connect_rc(t_url(NULL), shorter, 0), -EINVAL);
	/* No secret file at all: none in the options, none in the
	 * environment. */
	assert_int_equal(connect_rc(t_url(NULL), NULL, 0), -EINVAL);
	/* The environment variable is used when the options name none. */
	assert_int_equal(setenv("UFO_SECRET_FILE", t_srv.secret, 1), 0);
	assert_int_equal(connect_rc(t_url(NULL), NULL, 0), 0);
	assert_int_equal(setenv("UFO_SECRET_FILE", wrong, 1), 0);
	assert_int_equal(connect_rc(t_url(NULL), NULL, 0), -EACCES);
	/* The options win over the environment. */
	assert_int_equal(connect_rc(t_url(NULL), t_srv.secret, 0), 0);
	unsetenv("UFO_SECRET_FILE");
	/* The server still serves the right secret after all those. */
	assert_int_equal(connect_rc(t_url(NULL), t_srv.secret, 0), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
}

static void test_bad_urls(void **state)
{
	int rc;
	struct ufo_ctx *ctx;
	char url[T_URL_MAX];
	const char *bad_urls[] = {
		"",
		"127.0.0.1:7070",
		"ufo://",
		"ufo:///name",
		"ufo://127.0.0.1:notaport/x",
		"ufo://127.0.0.1:70000/x",
		"ufo://[::1/x",
		"http://127.0.0.1:7070/x",
	};
	const char *bad_names[] = { "", "a b", ".hidden", "a/b", "x%41" };

	(void)state;
	t_remote_begin();
	ctx = unreach_ctx();
	for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
		int rc = connect_rc(bad_urls[i], t_srv.secret, 0);

		if (rc != -EINVAL)
			fail_msg("connect '%s': %d, want -EINVAL", bad_urls[i],
				 rc);
		rc = open_rc(ctx, bad_urls[i], t_srv.secret);
		if (rc != -EINVAL)
			fail_msg("open '%s': %d, want -EINVAL", bad_urls[i], rc);
	}
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		int rc = open_rc(ctx, t_url(bad_names[i]), t_srv.secret);

		if (rc != -EINVAL)
			fail_msg("open name '%s': %d, want -EINVAL",
				 bad_names[i], rc);
	}
	/* Well-formed but absent, without UFO_REMOTE_CREATE. */
	assert_int_equal(open_rc(ctx, t_url("absent"), t_srv.secret), -ENOENT);
	if (t_tls()) { /* the schemes below are not TLS: the server refuses */
		assert_int_equal(ufo_ctx_destroy(ctx), 0);
		return;
	}
	/* tcp:// is a synonym of ufo://. */
	snprintf(url, sizeof(url), "tcp://%s:%u", t_host(),
		 (unsigned)t_srv.port);
	assert_int_equal(connect_rc(url, t_srv.secret, 0), 0);
	/* rdma:// forces RDMA.  With a device and the server's RDMA listener
	 * (the RDMA suite in its guest) it connects; without a device (-ENODEV)
	 * or rdma-core in the build (-EOPNOTSUPP) it fails, never falling back. */
	snprintf(url, sizeof(url), "rdma://%s:%u/x", t_host(),
		 (unsigned)t_srv.port);
	rc = connect_rc(url, t_srv.secret, 0);
	if (t_rdma_expected() ? rc != 0 : rc != -ENODEV && rc != -EOPNOTSUPP)
		fail_msg("rdma:// connect: %d", rc);
	/* ufo:// tries RDMA first and falls back to TCP: the client's status
	 * says which one it got. */
	{
		struct ufo_remote_opts o;
		struct ufo_client *cl;
		struct ufo_client_stats st;

		ufo_remote_opts_init(&o);
		o.secret_file = t_srv.secret;
		snprintf(url, sizeof(url), "ufo://%s:%u", t_host(),
			 (unsigned)t_srv.port);
		assert_int_equal(ufo_client_connect(url, &o, &cl), 0);
		assert_int_equal(ufo_client_status(cl, &st), 0);
		assert_string_equal(st.transport,
				    t_rdma_expected() ? "rdma" : "tcp");
		/* Every connection of the pool is opened by the connect. */
		assert_int_equal(st.connected, st.connections);
		ufo_client_close(cl);
	}
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigbus_server_killed),
		cmocka_unit_test(test_sigbus_server_frozen),
		cmocka_unit_test(test_slow_server_other_object_works),
		cmocka_unit_test(test_sync_while_server_down),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_secrets),
		cmocka_unit_test(test_bad_urls),
	};

	t_remote_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
