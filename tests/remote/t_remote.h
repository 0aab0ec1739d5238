/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the remote-object tests: a ufo-server child process, URLs and
 * options pointing at it, and disk-usage checks of its data directory.
 *
 * The server is the program named by $UFO_SERVER (meson passes the one it
 * built).  When the variable is unset or the file is not executable, the
 * test program exits 77 (skipped): without a server nothing here can pass.
 *
 * One server per test program, in t_srv: a mkdtemp directory holds its data
 * directory, its secret and its stdout.  The child is started from the main
 * thread only (PR_SET_PDEATHSIG follows the thread that forked), and dies
 * with the test program, so a failed or timed-out test never leaves a
 * server behind holding meson's pipes open.
 */
#ifndef T_REMOTE_H
#define T_REMOTE_H

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>

#include "../t_helpers.h"
#include "../t_certs.h"

/* Where the tests reach the server, and how.  The RDMA suite runs this
 * same suite in a QEMU guest with UFO_TEST_HOST=<the rxe netdev's address>
 * (rdmacm cannot route over lo) and UFO_TEST_SCHEME=rdma. */
static inline const char *t_host(void)
{
	const char *h = getenv("UFO_TEST_HOST");

	return h && *h ? h : "127.0.0.1";
}

/* The run expects RDMA to work (the RDMA suite sets UFO_TEST_SCHEME=rdma
 * where a device exists). */
static inline bool t_rdma_expected(void)
{
	const char *s = getenv("UFO_TEST_SCHEME");

	return s && !strcmp(s, "rdma");
}

static inline const char *t_scheme(void)
{
	const char *s = getenv("UFO_TEST_SCHEME");

	return s && *s ? s : "ufo";
}
#define T_URL_MAX 512
/* Client timeout for tests that do not test timeouts: generous, since a
 * request only waits this long when something is already wrong. */
#define T_REMOTE_TIMEOUT_MS 5000

struct t_server {
	char root[PATH_MAX / 2]; /* the mkdtemp directory, removed at exit */
	char data[PATH_MAX];   /* --data */
	char secret[PATH_MAX]; /* --secret-file, mode 0600 */
	char out[PATH_MAX];    /* the server's stdout */
	const char *bin;
	pid_t pid;             /* 0 while not running */
	uint16_t port;         /* of the last successful start */
	const char *flag;      /* one more flag, "--name=value", or NULL */
};

static struct t_server t_srv;

/* ------------------------------------------------------------- files */

static inline int t_write_file(const char *path, const void *buf, size_t len,
			       mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, buf, len);
	close(fd);
	if (n != (ssize_t)len)
		return n < 0 ? -errno : -EIO;
	return chmod(path, mode) ? -errno : 0;
}

static int t_rm_one(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

static inline void t_rm_rf(const char *path)
{
	nftw(path, t_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static _Thread_local uint64_t t_du_sum;

static int t_du_one(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (type == FTW_F)
		t_du_sum += (uint64_t)st->st_blocks * 512;
	return 0;
}

/* Bytes of disk the regular files under path occupy (st_blocks), which for
 * sparse files is far less than their size. */
static inline uint64_t t_disk_usage(const char *path)
{
	t_du_sum = 0;
	assert_int_equal(nftw(path, t_du_one, 16, FTW_PHYS), 0);
	return t_du_sum;
}

/* ------------------------------------------------------------- server */

static void t_server_reap(struct t_server *s, int sig);

static void t_server_atexit(void)
{
	if (t_srv.pid > 0)
		t_server_reap(&t_srv, SIGKILL);
	if (t_srv.root[0] && !getenv("T_KEEP_DIR"))
		t_rm_rf(t_srv.root);
}

/* Waits up to T_POLL_LIMIT_MS for the child to exit; SIGKILLs it after
 * that (then waits for good: SIGKILL cannot be refused).  Returns the wait
 * status, or -1 when it had to be killed. */
static inline int t_server_wait(struct t_server *s)
{
	int status = 0;

	/* kill(0) or waitpid(0) would reach our own process group. */
	if (s->pid <= 0)
		return -1;
	for (unsigned i = 0; i < T_POLL_LIMIT_MS; i++) {
		pid_t r = waitpid(s->pid, &status, WNOHANG);

		if (r == s->pid) {
			s->pid = 0;
			return status;
		}
		if (r < 0 && errno != EINTR)
			break;
		t_sleep_us(1000);
	}
	fprintf(stderr, "t_remote[%d]: server %d did not exit (%s); SIGKILL\n",
		(int)getpid(), (int)s->pid, strerror(errno));
	kill(s->pid, SIGKILL);
	while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
		;
	s->pid = 0;
	return -1;
}

/* Sends sig and waits (bounded) for the server to exit. */
static void t_server_reap(struct t_server *s, int sig)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, sig);
	t_server_wait(s);
}

/* UFO_TEST_SCHEME=tls (the 'tls' suite): every server of the program
 * serves TLS with one certificate for IP 127.0.0.1, made here once by the
 * openssl tool, whose CA the client trusts through UFO_TLS_CA_FILE.
 * Without the tool the program skips. */
static char t_tls_dir[PATH_MAX / 2];
static struct t_certs t_tls_certs;

static inline bool t_tls(void)
{
	return !strcmp(t_scheme(), "tls");
}

static void t_tls_atexit(void)
{
	if (t_tls_dir[0] && !getenv("T_KEEP_DIR"))
		t_rm_rf(t_tls_dir);
}

static inline void t_tls_setup(void)
{
	const char *tmp = getenv("TMPDIR");

	if (!t_tls() || t_tls_dir[0])
		return;
	if (!t_certs_tool()) {
		fprintf(stderr, "skip: no openssl tool to make certificates\n");
		exit(T_EXIT_SKIP);
	}
	snprintf(t_tls_dir, sizeof(t_tls_dir), "%s/t_tls.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(t_tls_dir)) {
		perror("mkdtemp");
		exit(1);
	}
	atexit(t_tls_atexit);
	if (t_certs_make(t_tls_dir, &t_tls_certs)) {
		fprintf(stderr, "t_remote: making certificates failed: see %s/openssl.log\n",
			t_tls_dir);
		exit(1);
	}
	setenv("UFO_TLS_CA_FILE", t_tls_certs.ca, 1);
}

/* Prepares the directory, the data directory and a random secret.  0 or
 * -errno. */
static inline int t_server_init(struct t_server *s, const char *bin)
{
	const char *tmp = getenv("TMPDIR");
	char secret[33];
	uint64_t r = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

	char root[sizeof(s->root)];

	memset(s, 0, sizeof(*s));
	s->bin = bin;
	snprintf(root, sizeof(root), "%s/t_remote.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(root))
		return -errno;
	memcpy(s->root, root, sizeof(root));
	atexit(t_server_atexit);
	snprintf(s->data, sizeof(s->data), "%s/data", root);
	snprintf(s->secret, sizeof(s->secret), "%s/secret", root);
	snprintf(s->out, sizeof(s->out), "%s/stdout", root);
	if (mkdir(s->data, 0700))
		return -errno;
	for (size_t i = 0; i < 32; i++)
		secret[i] = "0123456789abcdef"[t_rand(&r) % 16];
	secret[32] = '\n';
	t_tls_setup();
	return t_write_file(s->secret, secret, sizeof(secret), 0600);
}

static void t_server_exec(const struct t_server *s, const char *listen)
{
	const char *level = getenv("T_SERVER_LOG_LEVEL");
	const char *argv[16];
	sigset_t none;
	int fd, n = 0;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	fd = open(s->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
		_exit(127);
	fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
		_exit(127);
	argv[n++] = s->bin;
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--data";
	argv[n++] = s->data;
	argv[n++] = "--secret-file";
	argv[n++] = s->secret;
	if (level) {
		argv[n++] = "--log-level";
		argv[n++] = level;
	}
	if (s->flag)
		argv[n++] = s->flag;
	if (t_tls()) {
		argv[n++] = "--tls-cert";
		argv[n++] = t_tls_certs.cert;
		argv[n++] = "--tls-key";
		argv[n++] = t_tls_certs.key;
	}
	argv[n] = NULL;
	execv(s->bin, (char *const *)argv);
	_exit(127);
}

/* The port in "listening on HOST:PORT" in the server's stdout, or 0 while
 * the line is not (completely) there. */
static inline uint16_t t_server_parse_port(const struct t_server *s)
{
	char buf[4096], *line, *colon, *end;
	ssize_t n;
	unsigned long port;
	int fd = open(s->out, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* Over rdma:// the RDMA listener must be up too (it starts just
	 * after TCP's and prints its own line). */
	if (!strcmp(t_scheme(), "rdma") && !strstr(buf, "rdma listening on "))
		return 0;
	line = strstr(buf, "listening on ");
	if (!line || !(end = strchr(line, '\n')))
		return 0;
	*end = '\0';
	colon = strrchr(line, ':');
	if (!colon)
		return 0;
	port = strtoul(colon + 1, &end, 10);
	return *end == '\0' && port > 0 && port < 65536 ? (uint16_t)port : 0;
}

/* Starts the server listening on port (0: any) and waits until it said
 * where it listens.  0, or -ECHILD when it exited first, -ETIMEDOUT. */
static inline int t_server_spawn(struct t_server *s, uint16_t port)
{
	char listen[64];
	pid_t parent = getpid();
	int status;

	snprintf(listen, sizeof(listen), "%s:%u", t_host(), (unsigned)port);
	unlink(s->out);
	s->pid = fork();
	if (s->pid < 0)
		return -errno;
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		t_server_exec(s, listen);
	}
	for (unsigned i = 0; i < T_POLL_LIMIT_MS; i++) {
		uint16_t got = t_server_parse_port(s);

		if (got) {
			s->port = got;
			return 0;
		}
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			fprintf(stderr, "t_remote: %s --listen %s exited "
				"(status 0x%x) before listening\n",
				s->bin, listen, status);
			s->pid = 0;
			return -ECHILD;
		}
		t_sleep_us(1000);
	}
	fprintf(stderr, "t_remote: %s printed no 'listening on' line\n",
		s->bin);
	t_server_reap(s, SIGKILL);
	return -ETIMEDOUT;
}

/* Starts the server on an ephemeral port.  0 or -errno. */
static inline int t_server_start(struct t_server *s)
{
	return t_server_spawn(s, 0);
}

/* Stops it with SIGTERM; returns the wait status (the caller checks the
 * exit code), or -1 if it had to be killed. */
static inline int t_server_stop(struct t_server *s)
{
	if (s->pid <= 0)
		return -1;
	kill(s->pid, SIGTERM);
	return t_server_wait(s);
}

/* SIGKILL: nothing of it runs afterwards.  Waits for it to be gone. */
static inline void t_server_kill(struct t_server *s)
{
	if (s->pid > 0)
		t_server_reap(s, SIGKILL);
}

/* Starts it again on the same data directory, on the same port when it can
 * be had (so that clients still holding the URL reconnect), else on a new
 * one.  0 or -errno; t_srv.port tells which port. */
static inline int t_server_restart(struct t_server *s)
{
	uint16_t old = s->port;
	int rc;

	if (s->pid > 0)
		return -EBUSY;
	/* The port may be briefly unavailable; a few attempts, then any. */
	for (int i = 0; i < 5; i++) {
		rc = t_server_spawn(s, old);
		if (rc != -ECHILD)
			return rc;
		t_sleep_us(50000);
	}
	fprintf(stderr, "t_remote: port %u unavailable, restarting on another\n",
		(unsigned)old);
	return t_server_spawn(s, 0);
}

/* Makes sure the server runs (a previous test may have failed while it was
 * stopped). */
static inline void t_server_ensure(void)
{
	if (t_srv.pid <= 0)
		assert_int_equal(t_server_restart(&t_srv), 0);
}

/* The first call of every test: a server that runs, and SIGSEGV/SIGBUS
 * handled by t_helpers.h instead of cmocka.  cmocka's handler would
 * longjmp into the main thread's test from whichever thread faulted (a
 * library thread, a test's worker), and the program would go on with a
 * corrupted state; t_helpers.h's handler lets only a thread that armed
 * t_try_read/t_try_write recover, and otherwise kills the program with
 * the signal, visibly. */
static inline void t_remote_begin(void)
{
	t_catch_install();
	t_server_ensure();
}

/* ------------------------------------------------------------- client */

/* "ufo://127.0.0.1:PORT/name" in one of a few rotating per-thread buffers
 * (enough for the arguments of one call). */
static inline const char *t_url_port(uint16_t port, const char *name)
{
	static _Thread_local char bufs[4][T_URL_MAX];
	static _Thread_local unsigned next;
	char *b = bufs[next++ % 4];

	snprintf(b, T_URL_MAX, "%s://%s:%u/%s", t_scheme(), t_host(), (unsigned)port,
		 name ? name : "");
	return b;
}

static inline const char *t_url(const char *name)
{
	return t_url_port(t_srv.port, name);
}

static inline void t_opts(struct ufo_remote_opts *o)
{
	ufo_remote_opts_init(o);
	o->secret_file = t_srv.secret;
	o->timeout_ms = T_REMOTE_TIMEOUT_MS;
}

static inline struct ufo_client *t_client(void)
{
	struct ufo_remote_opts o;
	struct ufo_client *c = NULL;
	int rc;

	t_opts(&o);
	rc = ufo_client_connect(t_url(NULL), &o, &c);
	if (rc)
		fprintf(stderr, "ufo_client_connect %s: %s\n", t_url(NULL),
			strerror(-rc));
	assert_int_equal(rc, 0);
	assert_non_null(c);
	return c;
}

/* Opens object name as a UFO (creating it with size and chunk when size is
 * not 0), asserting success. */
static inline struct ufo_obj *t_remote_obj(struct ufo_ctx *ctx,
					   const char *name, uint64_t size,
					   size_t chunk, unsigned timeout_ms)
{
	struct ufo_remote_opts o;
	struct ufo_obj *obj = NULL;
	int rc;

	t_opts(&o);
	if (timeout_ms)
		o.timeout_ms = timeout_ms;
	if (size) {
		o.flags |= UFO_REMOTE_CREATE;
		o.create_size = size;
	}
	o.chunk_size = chunk;
	rc = ufo_remote_open(ctx, t_url(name), &o, &obj);
	if (rc)
		fprintf(stderr, "ufo_remote_open %s: %s\n", t_url(name),
			strerror(-rc));
	assert_int_equal(rc, 0);
	assert_non_null(obj);
	return obj;
}

/* A TCP port on 127.0.0.1 that nothing listens on: bound, then closed. */
static inline uint16_t t_closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* ------------------------------------------------------------- values */

/* The 8-byte word at byte offset off (a multiple of 8) of pattern seed. */
static inline uint64_t t_word(uint64_t seed, uint64_t off)
{
	return t_value(seed, off / sizeof(uint64_t));
}

/* Index of the first word of buf (len bytes, starting at byte offset off
 * of the object) that differs from pattern seed, or -1. */
static inline int64_t t_check_words(const void *buf, size_t len,
				    uint64_t seed, uint64_t off)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i += sizeof(uint64_t)) {
		uint64_t v;

		memcpy(&v, p + i, sizeof(v));
		if (v != t_word(seed, off + i))
			return (int64_t)(i / sizeof(uint64_t));
	}
	return -1;
}

/* A seed for randomised workloads: $T_SEED, else the clock; printed so a
 * failure can be replayed. */
static inline uint64_t t_random_seed(const char *what)
{
	const char *env = getenv("T_SEED");
	struct timespec ts;
	uint64_t seed;

	clock_gettime(CLOCK_REALTIME, &ts);
	seed = env ? strtoull(env, NULL, 0)
		   : (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
	seed |= 1; /* xorshift state must not be 0 */
	fprintf(stderr, "%s: T_SEED=%llu\n", what, (unsigned long long)seed);
	return seed;
}

/* ------------------------------------------------------------- main */

/* t_setup(), then skip the program unless a server binary is there, and
 * start it.  Called at the top of main. */
static inline void t_remote_setup(void)
{
	const char *bin = getenv("UFO_SERVER");
	int rc;

	t_setup();
	unsetenv("UFO_SECRET_FILE");
	if (!bin || !*bin || access(bin, X_OK)) {
		fprintf(stderr, "skip: no ufo-server (UFO_SERVER=%s)\n",
			bin ? bin : "(unset)");
		exit(T_EXIT_SKIP);
	}
	/* A write to a connection the server just closed must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	rc = t_server_init(&t_srv, bin);
	if (rc) {
		fprintf(stderr, "t_remote: preparing %s: %s\n", t_srv.root,
			strerror(-rc));
		exit(1);
	}
	rc = t_server_start(&t_srv);
	if (rc) {
		fprintf(stderr, "t_remote: starting %s: %s\n", bin,
			strerror(-rc));
		exit(1);
	}
}

#endif /* T_REMOTE_H */
