/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the monitor tests: a JSON validity checker (RFC 8259
 * grammar, no values kept) and a raw HTTP/1.1 client that sends exactly
 * the bytes it is given, so tests can send malformed or oversized requests.
 */
#ifndef T_MON_H
#define T_MON_H

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ---- JSON checker: returns true when s is one valid JSON value. */

static const char *tj_value(const char *p, int depth);

static const char *tj_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *tj_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	while (*p != '"') {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!isxdigit((unsigned char)p[i]))
						return NULL;
				p += 4;
			} else if (!strchr("\"\\/bfnrt", *p) || !*p) {
				return NULL;
			}
		}
		p++;
	}
	return p + 1;
}

static const char *tj_number(const char *p)
{
	const char *start = p;

	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (isdigit((unsigned char)*p))
		while (isdigit((unsigned char)*p))
			p++;
	else
		return NULL;
	if (*p == '.') {
		if (!isdigit((unsigned char)*++p))
			return NULL;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return NULL;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return p > start ? p : NULL;
}

static const char *tj_container(const char *p, int depth, char close,
				bool object)
{
	p = tj_ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (object) {
			if (!(p = tj_string(tj_ws(p))))
				return NULL;
			p = tj_ws(p);
			if (*p++ != ':')
				return NULL;
		}
		if (!(p = tj_value(p, depth + 1)))
			return NULL;
		p = tj_ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *tj_value(const char *p, int depth)
{
	if (depth > 64)
		return NULL;
	p = tj_ws(p);
	switch (*p) {
	case '{': return tj_container(p, depth, '}', true);
	case '[': return tj_container(p, depth, ']', false);
	case '"': return tj_string(p);
	case 't': return strncmp(p, "true", 4) ? NULL : p + 4;
	case 'f': return strncmp(p, "false", 5) ? NULL : p + 5;
	case 'n': return strncmp(p, "null", 4) ? NULL : p + 4;
	default: return tj_number(p);
	}
}

static inline bool t_json_valid(const char *s)
{
	const char *end = tj_value(s, 0);

	return end && !*tj_ws(end);
}

/* ---- raw HTTP */

/* Linux routes all of 127/8 to the loopback interface, so a test can act
 * as several peers of a monitor on 127.0.0.1: peer p connects from
 * 127.0.0.(1 + p); peer 0 lets the kernel pick (127.0.0.1).  Returns the
 * socket, or -errno. */
static inline int t_http_connect_from(unsigned peer, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port) };
	struct sockaddr_in src = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK + peer) };
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), err;

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* connect */
	if ((peer && bind(fd, (struct sockaddr *)&src, sizeof(src))) ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static inline int t_http_connect(uint16_t port)
{
	return t_http_connect_from(0, port);
}

/* Sends req (len bytes), reads the answer until the peer closes.  Returns
 * the HTTP status (0 when the answer was empty or not HTTP) and, when
 * body is given, a malloc'ed copy of the body. */
static inline int t_http_raw_from(unsigned peer, uint16_t port,
				  const char *req, size_t len, char **body)
{
	size_t cap = 1 << 16, got = 0;
	char *buf = malloc(cap + 1), *b;
	int fd = t_http_connect_from(peer, port), status = 0;
	ssize_t n;

	if (body)
		*body = NULL;
	if (fd < 0 || !buf) {
		free(buf);
		return fd < 0 ? fd : -ENOMEM;
	}
	for (size_t off = 0; off < len; off += (size_t)n) {
		n = send(fd, req + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break; /* the server may close early: read its answer */
	}
	shutdown(fd, SHUT_WR);
	while ((n = recv(fd, buf + got, cap - got, 0)) > 0) {
		got += (size_t)n;
		if (got == cap) {
			char *p = realloc(buf, 2 * cap + 1);
			if (!p)
				break;
			buf = p;
			cap *= 2;
		}
	}
	close(fd);
	buf[got] = '\0';
	sscanf(buf, "HTTP/1.%*d %d", &status);
	b = strstr(buf, "\r\n\r\n");
	if (body && b)
		*body = strdup(b + 4);
	free(buf);
	return status;
}

static inline int t_http_raw(uint16_t port, const char *req, size_t len,
			     char **body)
{
	return t_http_raw_from(0, port, req, len, body);
}

static inline int t_http_get_from(unsigned peer, uint16_t port,
				  const char *path, char **body)
{
	char req[512];
	int n = snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			 "Connection: close\r\n\r\n", path);

	return t_http_raw_from(peer, port, req, (size_t)n, body);
}

static inline int t_http_get(uint16_t port, const char *path, char **body)
{
	return t_http_get_from(0, port, path, body);
}

/* The port of "http://127.0.0.1:PORT/". */
static inline uint16_t t_mon_url_port(const char *url)
{
	const char *c = strrchr(url, ':');

	return c ? (uint16_t)atoi(c + 1) : 0;
}

/* ---- peers that stop in the middle of a request (issue 17) */

/* A request cut before the empty line that ends its headers. */
#define T_HALF_SENT "GET /metrics HTTP/1.1\r\nHost: x\r\n"

static inline int64_t t_mon_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Opens fds[0..n) to port, connection i from peer i / per_peer, and
 * sends T_HALF_SENT on each.  A connection that fails is -errno in fds;
 * one the monitor closes at accept is kept (t_half_sent_open_count). */
static inline void t_half_sent_open(uint16_t port, int *fds, int n,
				    int per_peer)
{
	for (int i = 0; i < n; i++) {
		fds[i] = t_http_connect_from((unsigned)(i / per_peer), port);
		if (fds[i] >= 0)
			(void)!send(fds[i], T_HALF_SENT, sizeof(T_HALF_SENT) - 1,
				    MSG_NOSIGNAL);
	}
}

/* How many of them the monitor has not closed: those holding a slot and
 * those waiting in its listen backlog. */
static inline int t_half_sent_open_count(const int *fds, int n)
{
	int open = 0;
	char c;

	for (int i = 0; i < n; i++)
		if (fds[i] >= 0 && recv(fds[i], &c, 1, MSG_DONTWAIT) < 0 &&
		    (errno == EAGAIN || errno == EWOULDBLOCK))
			open++;
	return open;
}

/* Closes them, the last opened first: those still in the monitor's
 * listen backlog then have their request and their EOF queued before any
 * slot frees, so the monitor meets them as one read (the case that kept
 * slots until the timeout, issue 17). */
static inline void t_half_sent_close(int *fds, int n)
{
	while (n-- > 0)
		if (fds[n] >= 0)
			close(fds[n]);
}

/* Milliseconds until GET /metrics from peer is answered 200, retrying
 * every 20 ms while the monitor refuses or does not answer; -1 when it
 * did not within limit_ms (one try may last 10 s past it: the helpers'
 * receive timeout). */
static inline int64_t t_metrics_ms(uint16_t port, unsigned peer,
				   int64_t limit_ms)
{
	int64_t t0 = t_mon_now_ms(), t;

	for (;;) {
		int status = t_http_get_from(peer, port, "/metrics", NULL);

		t = t_mon_now_ms() - t0;
		if (status == 200)
			return t;
		if (t > limit_ms)
			return -1;
		usleep(20 * 1000);
	}
}

#endif /* T_MON_H */
