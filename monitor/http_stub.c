/* SPDX-License-Identifier: MIT */
/* Built without libmicrohttpd: the monitor is refused, the rest works. */
#include <errno.h>

#include "monitor.h"

int mon_server_start(const char *addr, mon_render_fn render, void *user,
		     struct mon_server **out)
{
	return -EOPNOTSUPP;
}

int mon_server_url(const struct mon_server *s, char *buf, size_t len)
{
	return -EOPNOTSUPP;
}

void mon_server_stop(struct mon_server *s)
{
}
