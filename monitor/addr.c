/* SPDX-License-Identifier: MIT */
/* Monitor addresses: numeric hosts only, so starting never waits on DNS. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "monitor.h"

#define MON_DEFAULT_HOST "127.0.0.1"

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long v;

	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int mon_parse_addr(const char *addr, char host[MON_ADDR_MAX], uint16_t *port)
{
	unsigned char sa[sizeof(struct in6_addr)];
	const char *colon, *h = addr;
	size_t hlen;
	bool v6 = false;

	if (!addr)
		return -EINVAL;
	if (*addr == '[') {
		colon = strstr(addr, "]:");
		if (!colon)
			return -EINVAL;
		h = addr + 1;
		hlen = (size_t)(colon - h);
		colon++;
		v6 = true;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || memchr(addr, ':', (size_t)(colon - addr)))
			return -EINVAL;
		hlen = (size_t)(colon - addr);
	}
	if (hlen >= MON_ADDR_MAX)
		return -EINVAL;
	if (!hlen) {
		strcpy(host, MON_DEFAULT_HOST);
	} else {
		memcpy(host, h, hlen);
		host[hlen] = '\0';
	}
	if (!strcmp(host, "localhost") && !v6)
		strcpy(host, MON_DEFAULT_HOST);
	if (inet_pton(v6 ? AF_INET6 : AF_INET, host, sa) != 1)
		return -EINVAL;
	return parse_port(colon + 1, port);
}
