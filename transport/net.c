/* SPDX-License-Identifier: MIT */
/* Address and URL parsing. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"

static int parse_port(const char *s, uint16_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

int net_parse_hostport(const char *s, uint16_t default_port,
		       struct net_addr *out)
{
	const char *host = s, *colon;
	size_t hlen;

	out->port = default_port;
	if (*s == '[') { /* [v6]:port */
		const char *close = strchr(s, ']');
		if (!close)
			return -EINVAL;
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close[1] == ':' ? close + 1 : NULL;
		if (close[1] && !colon)
			return -EINVAL;
	} else {
		colon = strrchr(s, ':');
		if (colon && strchr(s, ':') != colon)
			colon = NULL; /* bare IPv6 literal: no port */
		hlen = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (hlen > NET_MAX_HOST)
		return -EINVAL;
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	return colon ? parse_port(colon + 1, &out->port) : 0;
}

int net_parse_url(const char *url, char *scheme, size_t scheme_cap,
		  struct net_addr *addr, char *name, size_t name_cap)
{
	const char *sep = strstr(url, "://"), *hp, *slash;
	char buf[NET_MAX_HOST + 16];
	size_t slen, hlen;

	if (!sep)
		return -EINVAL;
	slen = (size_t)(sep - url);
	if (scheme) {
		if (slen + 1 > scheme_cap)
			return -EINVAL;
		memcpy(scheme, url, slen);
		scheme[slen] = '\0';
	}
	hp = sep + 3;
	slash = strchr(hp, '/');
	hlen = slash ? (size_t)(slash - hp) : strlen(hp);
	if (!hlen || hlen >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, hp, hlen);
	buf[hlen] = '\0';
	if (net_parse_hostport(buf, NET_DEFAULT_PORT, addr))
		return -EINVAL;
	if (name) {
		const char *n = slash ? slash + 1 : "";
		if (strlen(n) + 1 > name_cap)
			return -EINVAL;
		strcpy(name, n);
	}
	return 0;
}

int net_wait_fds(struct pollfd *fds, int nfds, int timeout_ms)
{
	int n;

	do
		n = poll(fds, (nfds_t)nfds, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	for (int i = 0; i < nfds; i++)
		if (fds[i].revents & POLLNVAL)
			return -EBADF;
	return 0;
}

int net_wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };

	return net_wait_fds(&p, 1, timeout_ms);
}
