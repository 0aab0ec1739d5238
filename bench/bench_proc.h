/* SPDX-License-Identifier: MIT */
/*
 * Child processes for the benchmarks that start their own servers
 * (bench-remote, bench-cluster): spawning with stdout to a file, waiting
 * for "listening on HOST:PORT", stopping, and the ufo-server's secret and
 * binary.  Header-only, like bench_util.h.
 */
#ifndef UFO_BENCH_PROC_H
#define UFO_BENCH_PROC_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILD_READY_MS 10000 /* a child must be serving by then */
#define CHILD_EXIT_MS 5000   /* SIGTERM, then SIGKILL */

static inline void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

struct child {
	pid_t pid;
	char out[PATH_MAX]; /* its stdout */
};

/* Forks and execs argv with stdout to c->out; the child dies with us.
 * 0 or -errno. */
static inline int child_spawn(struct child *c, char *const argv[])
{
	pid_t parent = getpid();

	c->pid = fork();
	if (c->pid < 0)
		return -errno;
	if (c->pid == 0) {
		int fd = open(c->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int null = open("/dev/null", O_RDONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || fd < 0 || null < 0 ||
		    dup2(fd, STDOUT_FILENO) < 0 || dup2(null, STDIN_FILENO) < 0)
			_exit(127);
		execvp(argv[0], argv);
		fprintf(stderr, "%s: exec %s: %s\n",
			program_invocation_short_name, argv[0], strerror(errno));
		_exit(127);
	}
	return 0;
}

static inline bool child_exited(struct child *c)
{
	int status;

	if (c->pid > 0 && waitpid(c->pid, &status, WNOHANG) == c->pid)
		c->pid = 0;
	return c->pid <= 0;
}

/* SIGTERM, a bounded wait, then SIGKILL. */
static inline void child_stop(struct child *c)
{
	if (c->pid <= 0)
		return;
	kill(c->pid, SIGTERM);
	for (unsigned ms = 0; ms < CHILD_EXIT_MS; ms += 10) {
		if (child_exited(c))
			return;
		sleep_ms(10);
	}
	fprintf(stderr, "%s: child %d ignored SIGTERM; SIGKILL\n",
		program_invocation_short_name, (int)c->pid);
	kill(c->pid, SIGKILL);
	waitpid(c->pid, NULL, 0);
	c->pid = 0;
}

/* The port in "listening on HOST:PORT" in c->out, or 0 while absent. */
static inline unsigned listening_port(const struct child *c)
{
	char buf[4096], *line, *colon, *end;
	int fd = open(c->out, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	unsigned long port;

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	line = strstr(buf, "listening on ");
	if (!line || !(end = strchr(line, '\n')))
		return 0;
	*end = '\0';
	colon = strrchr(line, ':');
	port = colon ? strtoul(colon + 1, &end, 10) : 0;
	return colon && !*end && port < 65536 ? (unsigned)port : 0;
}

/* nftw callback removing everything: nftw(dir, rm_entry, 16,
 * FTW_DEPTH | FTW_PHYS). */
static inline int rm_entry(const char *path, const struct stat *sb, int flag,
			   struct FTW *ftw)
{
	return remove(path) ? -errno : 0;
}

/* A new directory $TMPDIR/PREFIX.XXXXXX ($TMPDIR defaults to /tmp) into
 * root, len bytes; root is "" when none was made, so that a cleanup can
 * tell.  0 or -errno. */
static inline int bench_tmpdir(char *root, size_t len, const char *prefix)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(root, len, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
	if (mkdtemp(root))
		return 0;
	root[0] = '\0';
	return -errno;
}

/* A random 32-hex-digit secret in a new 0600 file.  0 or -errno. */
static inline int write_secret(const char *path)
{
	unsigned char rnd[16];
	char hex[33];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	bool ok = fd >= 0 && read(fd, rnd, sizeof(rnd)) == sizeof(rnd);

	if (fd >= 0)
		close(fd);
	if (!ok)
		return -EIO;
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ok = write(fd, hex, 32) == 32;
	close(fd);
	return ok ? 0 : -EIO;
}

/* --server-bin (flag), else $UFO_SERVER_BIN, else ../server/ufo-server
 * next to this binary. */
static inline const char *server_bin(const char *flag)
{
	static char path[PATH_MAX];
	const char *env = getenv("UFO_SERVER_BIN");
	char self[PATH_MAX];
	ssize_t n;

	if (flag)
		return flag;
	if (env && *env)
		return env;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return "ufo-server";
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	snprintf(path, sizeof(path), "%.*s/../server/ufo-server",
		 (int)(sizeof(path) - 32), self);
	return path;
}

/* Starts ufo-server bin on 127.0.0.1 (any free port) with data directory
 * data (created) and the secret file, stdout to c->out (set by the
 * caller), and waits until it listens.  0 and *port, or -ECHILD (it
 * exited), -ETIMEDOUT, -errno. */
static inline int ufo_server_spawn(struct child *c, const char *bin,
				   const char *data, const char *secret,
				   unsigned *port)
{
	char *argv[] = { (char *)bin, "--listen", "127.0.0.1:0",
			 "--data", (char *)data, "--secret-file",
			 (char *)secret, "--log-level", "warn", NULL };
	int err;

	if (mkdir(data, 0700))
		return -errno;
	if ((err = child_spawn(c, argv)))
		return err;
	for (unsigned ms = 0; ms < CHILD_READY_MS; ms += 10) {
		*port = listening_port(c);
		if (*port)
			return 0;
		if (child_exited(c))
			return -ECHILD;
		sleep_ms(10);
	}
	return -ETIMEDOUT;
}

#endif /* UFO_BENCH_PROC_H */
