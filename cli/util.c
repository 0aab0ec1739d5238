/* SPDX-License-Identifier: MIT */
/* ufoctl: messages, size and time formats, name checks. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ufoctl.h"

/* Object names: 1-255 bytes of [A-Za-z0-9._-] (ufo.h), not starting with
 * '.' (transport/wire.h: the server refuses those too). */
#define NAME_MAX_BYTES 255

static void vmessage(const char *prefix, const char *fmt, va_list ap)
{
	fputs("ufoctl: ", stderr);
	fputs(prefix, stderr);
	vfprintf(stderr, fmt, ap);
}

/* "ufoctl: <what>: <strerror>[ (server: <detail>)]" */
static int vfail(int err, const char *detail, const char *fmt, va_list ap)
{
	vmessage("", fmt, ap);
	fprintf(stderr, ": %s", strerror(err < 0 ? -err : err));
	if (detail && *detail)
		fprintf(stderr, " (server: %s)", detail);
	fputc('\n', stderr);
	return EXIT_FAILED;
}

int fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(err, NULL, fmt, ap);
	va_end(ap);
	return EXIT_FAILED;
}

int fail_detail(int err, const char *detail, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(err, detail, fmt, ap);
	va_end(ap);
	return EXIT_FAILED;
}

int fail_remote(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(err, ufo_client_last_error(), fmt, ap);
	va_end(ap);
	return EXIT_FAILED;
}

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage("", fmt, ap);
	va_end(ap);
	if (cmd)
		fprintf(stderr, "\nTry 'ufoctl %s --help'.\n", cmd);
	else
		fputs("\nTry 'ufoctl --help'.\n", stderr);
	return EXIT_USAGE;
}

void warning(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage("warning: ", fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}



const char *format_size(uint64_t bytes, char *buf, size_t cap)
{
	static const char units[] = "KMGTPE";
	double v = (double)bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(buf, cap, "%llu", (unsigned long long)bytes);
		return buf;
	}
	while (v >= 1024 && u < (int)sizeof(units) - 2) {
		v /= 1024;
		u++;
	}
	snprintf(buf, cap, "%.1f%c", v, units[u]);
	return buf;
}

const char *format_time(uint64_t ns, char *buf, size_t cap)
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;

	if (!localtime_r(&t, &tm) ||
	    !strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, cap, "?");
	return buf;
}

int check_object_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > NAME_MAX_BYTES || name[0] == '.')
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return -EINVAL;
	}
	return 0;
}

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
