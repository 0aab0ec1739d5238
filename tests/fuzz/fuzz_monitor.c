/* SPDX-License-Identifier: MIT */
/*
 * The monitor's request routing: the input is a raw HTTP request (method,
 * URL, headers, maybe a body) sent to an in-process monitor
 * (mon_server_start on 127.0.0.1, port 0) whose answer callback routes it
 * and renders through the same writers ufo-server uses.  libmicrohttpd
 * parses the request; the routing, the method check and the rendering are
 * ours.
 *
 * Each input is followed by an empty line, so its header block ends.
 * libmicrohttpd does not take a half-closed connection as the end of a
 * request, and some malformed ones (NUL bytes in the request line) it
 * neither answers nor refuses: they wait for the connection timeout
 * (MON_CONNECTION_TIMEOUT_S, the bound docs/security.md relies on).  So
 * an input without an answer within QUICK_MS is given up on, and the
 * monitor must then answer a plain GET within ANSWER_MS: a render or a
 * routing bug that wedges its thread is still caught.
 *
 * Oracles besides the sanitizers: every answer is an HTTP/1.x status
 * line; a request for a known path by GET is answered 200, while any
 * method other than GET and HEAD is never answered 200; the monitor stays
 * responsive.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "monitor.h"

/* libmicrohttpd closes an idle connection after MON_CONNECTION_TIMEOUT_S
 * at the latest, even one whose request never ended. */
#define ANSWER_MS ((MON_CONNECTION_TIMEOUT_S + 5) * 1000)
#define QUICK_MS 200

static struct mon_server *mon;
static uint16_t port;

/* The server's render, in miniature: both writers, labels escaped. */
static int render(void *user, enum mon_format format, struct mon_buf *out)
{
	static const uint64_t buckets[4] = { 1, 2, 3, 4 };
	struct mon_label l = { "op", "read\"\\\n" };
	struct mon_json j;

	if (format == MON_PROMETHEUS) {
		mon_expo_family(out, "ufo_fuzz_total", "counter", "help \\ \n");
		mon_expo_u64(out, "ufo_fuzz_total", &l, 1, 42);
		mon_expo_histogram_us(out, "ufo_fuzz_seconds", &l, 1, buckets,
				      4, 0.5);
		return 0;
	}
	mon_json_init(&j, out);
	mon_json_object(&j, NULL);
	mon_json_str(&j, "kind", "fuzz\"\x01");
	mon_json_double(&j, "x", 1.0 / 3);
	mon_json_end(&j);
	return 0;
}

static int connect_monitor(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	int err = fd < 0 ? errno
			 : connect(fd, (struct sockaddr *)&a, sizeof(a)) ? errno : 0;

	/* A signal (libFuzzer's timer) may interrupt the connect, which then
	 * goes on in the background: wait for it to finish. */
	if (err == EINTR) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		socklen_t len = sizeof(err);

		while (poll(&p, 1, 5000) < 0 && errno == EINTR)
			;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
			err = errno;
	}
	if (err) {
		fprintf(stderr, "connecting to the monitor: %s\n",
			strerror(err));
		abort();
	}
	return fd;
}

/* Reads the answer until the monitor closes, waiting at most wait_ms
 * for each part.  Its length, or -1 when the monitor said nothing. */
static ssize_t read_answer(int fd, char *buf, size_t cap, int wait_ms)
{
	size_t got = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char scratch[4096];
		ssize_t n;

		if (poll(&p, 1, wait_ms) <= 0)
			return got ? (ssize_t)got : -1; /* answered, not closed */
		n = recv(fd, got < cap ? buf + got : scratch,
			 got < cap ? cap - got : sizeof(scratch), 0);
		if (n <= 0)
			return (ssize_t)got;
		if (got < cap)
			got += (size_t)n;
	}
}

/* Closes with a reset: the slot is free before the next input is sent (a
 * plain close frees it too, once the monitor's poll loop reads the EOF:
 * issue 17), the 16 slots one address may hold never fill, and no port
 * waits in TIME_WAIT. */
static void close_reset(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/* The monitor answers a plain request within ANSWER_MS: its thread is not
 * wedged.  Retried, since a slot may free only when a connection given
 * up on times out. */
static void check_alive(void)
{
	static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	struct timespec t0, t;
	char ans[64];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int fd = connect_monitor();
		ssize_t len;

		(void)!send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
		shutdown(fd, SHUT_WR);
		len = read_answer(fd, ans, sizeof(ans) - 1, ANSWER_MS);
		close_reset(fd);
		if (len >= 12 && !strncmp(ans, "HTTP/1.", 7) &&
		    !strncmp(ans + 8, " 200", 4))
			return;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 > ANSWER_MS) {
			fprintf(stderr, "monitor stopped answering\n");
			abort();
		}
		usleep(100 * 1000);
	}
}

static void check_answer(const uint8_t *req, size_t size, const char *ans,
			 size_t len)
{
	static const char *const known[] = { "/", "/metrics", "/api/v1/stats",
					     "/index.html", "/chart.js",
					     "/dashboard.js" };
	size_t mlen;
	int status;

	if (!len)
		return; /* closed without a word: MHD's answer to garbage */
	if (len < 12 || strncmp(ans, "HTTP/1.", 7) ||
	    sscanf(ans + 9, "%3d", &status) != 1) {
		fprintf(stderr, "not an HTTP answer: %.*s\n", (int)len, ans);
		abort();
	}
	/* The method as libmicrohttpd hands it over: up to a space (or a
	 * NUL, as it is a C string).  Judged only when the input starts with
	 * a letter: before a request line libmicrohttpd skips empty lines
	 * (RFC 9112 2.2), and a line that starts with a NUL reads as empty
	 * to it, so "\n\0...\nGET / ..." is a GET answered 200 (the fuzzer
	 * found both; its earlier oracle called them non-GETs).  Only the
	 * first request is judged: pipelined ones could mix. */
	if (size && req[0] >= 'A' && req[0] <= 'Z') {
		for (mlen = 0; mlen < size && req[mlen] != ' ' && req[mlen];
		     mlen++)
			;
		if (status == 200 && !(mlen == 3 && !memcmp(req, "GET", 3)) &&
		    !(mlen == 4 && !memcmp(req, "HEAD", 4))) {
			fprintf(stderr, "a non-GET request answered 200\n");
			abort();
		}
	}
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		char line[64];
		int n = snprintf(line, sizeof(line), "GET %s HTTP/1.1\r\n",
				 known[i]);
		if (size == (size_t)n && !memcmp(req, line, size) && status != 200)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char ans[1024];
	int fd = connect_monitor();
	ssize_t len;

	/* MHD stops reading past its memory limit and answers: a send that
	 * fails then is expected. */
	(void)!send(fd, data, size, MSG_NOSIGNAL | MSG_MORE);
	(void)!send(fd, "\r\n\r\n", 4, MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	len = read_answer(fd, ans, sizeof(ans) - 1, QUICK_MS);
	if (len < 0) {
		close_reset(fd);
		check_alive();
		return 0;
	}
	/* A reset, not a close: thousands of inputs a second closed first by
	 * us would leave their ports in TIME_WAIT until none is left (connect
	 * failed after some 260000 inputs). */
	close_reset(fd);
	ans[len] = '\0';
	check_answer(data, size, ans, (size_t)len);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char url[128];

	if (mon_server_start("127.0.0.1:0", render, NULL, &mon) ||
	    mon_server_url(mon, url, sizeof(url)))
		abort();
	port = (uint16_t)atoi(strrchr(url, ':') + 1);
	return 0;
}
