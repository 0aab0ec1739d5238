/* SPDX-License-Identifier: MIT */
/* Growable text buffers for the monitor's answers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor.h"

#define MON_BUF_MIN 4096

void mon_buf_init(struct mon_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void mon_buf_free(struct mon_buf *b)
{
	free(b->data);
	mon_buf_init(b);
}

/* Makes room for n more bytes plus the terminating NUL. */
static bool mon_buf_reserve(struct mon_buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : MON_BUF_MIN;
	char *p;

	if (b->oom)
		return false;
	if (b->len + n + 1 <= b->cap)
		return true;
	while (cap < b->len + n + 1)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void mon_buf_put(struct mon_buf *b, const char *s, size_t n)
{
	if (!mon_buf_reserve(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void mon_buf_puts(struct mon_buf *b, const char *s)
{
	mon_buf_put(b, s, strlen(s));
}

void mon_buf_printf(struct mon_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !mon_buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}
