/* SPDX-License-Identifier: MIT */
/* A streaming JSON writer (RFC 8259): commas and escaping are its job. */
#include <math.h>
#include <stdio.h>

#include "monitor.h"

void mon_json_init(struct mon_json *j, struct mon_buf *b)
{
	j->b = b;
	j->depth = 0;
	j->has_items[0] = false;
}

static void put_string(struct mon_buf *b, const char *s)
{
	mon_buf_puts(b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			mon_buf_printf(b, "\\%c", *p);
		else if (*p < 0x20)
			mon_buf_printf(b, "\\u%04x", *p);
		else
			mon_buf_put(b, (const char *)p, 1);
	}
	mon_buf_puts(b, "\"");
}

/* The comma before an item, and its "key": when inside an object. */
static void item(struct mon_json *j, const char *key)
{
	if (j->has_items[j->depth])
		mon_buf_puts(j->b, ",");
	j->has_items[j->depth] = true;
	if (key) {
		put_string(j->b, key);
		mon_buf_puts(j->b, ":");
	}
}

static void open_level(struct mon_json *j, const char *key, char opener,
		       char closer)
{
	if (j->depth + 1 >= MON_JSON_DEPTH) {
		j->b->oom = true;
		return;
	}
	item(j, key);
	mon_buf_put(j->b, &opener, 1);
	j->depth++;
	j->has_items[j->depth] = false;
	j->closer[j->depth] = closer;
}

void mon_json_object(struct mon_json *j, const char *key)
{
	open_level(j, key, '{', '}');
}

void mon_json_array(struct mon_json *j, const char *key)
{
	open_level(j, key, '[', ']');
}

void mon_json_end(struct mon_json *j)
{
	if (!j->depth) {
		j->b->oom = true;
		return;
	}
	mon_buf_put(j->b, &j->closer[j->depth], 1);
	j->depth--;
}

void mon_json_str(struct mon_json *j, const char *key, const char *v)
{
	item(j, key);
	if (v)
		put_string(j->b, v);
	else
		mon_buf_puts(j->b, "null");
}

void mon_json_u64(struct mon_json *j, const char *key, uint64_t v)
{
	item(j, key);
	mon_buf_printf(j->b, "%llu", (unsigned long long)v);
}

/* JSON has no NaN or infinity: those become null. */
void mon_json_double(struct mon_json *j, const char *key, double v)
{
	item(j, key);
	if (isfinite(v))
		mon_buf_printf(j->b, "%.15g", v);
	else
		mon_buf_puts(j->b, "null");
}

void mon_json_bool(struct mon_json *j, const char *key, bool v)
{
	item(j, key);
	mon_buf_puts(j->b, v ? "true" : "false");
}
