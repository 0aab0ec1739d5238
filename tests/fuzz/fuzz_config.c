/* SPDX-License-Identifier: MIT */
/*
 * The configuration parsers: ufo-server's config file and flags
 * (server/config.c, which also parses listen and monitor addresses), the
 * client's server URLs (net_parse_url) and libufo's UFO_* environment
 * (config_apply_env, config_finish).
 *
 * Input: the config file's text, a NUL byte, then command-line arguments
 * one per line.  The same lines are also tried as URLs and, with the
 * first few bytes picking a variable, as UFO_* values.
 *
 * Oracles besides the sanitizers: a configuration config_load accepts has
 * every field in its documented range, NUL-terminated strings, and a
 * monitor address that parses.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "engine/engine.h"
#include "monitor.h"

#define MAX_ARGS 32

static void check_config(const struct server_config *c)
{
	char host[MON_ADDR_MAX];
	uint16_t port;

	if (!c->data_dir[0] || !memchr(c->data_dir, 0, sizeof(c->data_dir)) ||
	    !c->secret_file[0] ||
	    !memchr(c->secret_file, 0, sizeof(c->secret_file)) ||
	    !memchr(c->listen.host, 0, sizeof(c->listen.host)) ||
	    c->max_connections < 1 || c->max_connections > 1u << 20 ||
	    c->workers > SERVER_MAX_WORKERS ||
	    c->auth_timeout_ms < AUTH_TIMEOUT_MIN_MS ||
	    c->auth_timeout_ms > AUTH_TIMEOUT_MAX_MS ||
	    !c->tls_cert[0] != !c->tls_key[0] ||
	    (c->monitor[0] && mon_parse_addr(c->monitor, host, &port))) {
		fprintf(stderr, "config_load accepted an out-of-range config\n");
		abort();
	}
}

static void server_config(const char *file, size_t file_len, char **args,
			  int nargs)
{
	char path[64], *argv[MAX_ARGS + 4];
	struct server_config cfg;
	int fd = memfd_create("ufo-fuzz.conf", MFD_CLOEXEC), argc = 0;

	if (fd < 0 || write(fd, file, file_len) != (ssize_t)file_len)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	argv[argc++] = "ufo-server";
	argv[argc++] = "--config";
	argv[argc++] = path;
	for (int i = 0; i < nargs; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;
	if (!config_load(&cfg, argc, argv))
		check_config(&cfg);
	close(fd);
}

static void url(const char *s)
{
	char scheme[16], name[256];
	struct net_addr a;

	if (!net_parse_url(s, scheme, sizeof(scheme), &a, name, sizeof(name)) &&
	    (!memchr(a.host, 0, sizeof(a.host)) || !memchr(name, 0, sizeof(name))))
		abort();
}

static void env(const char *s, unsigned pick)
{
	static const char *const vars[] = {
		"UFO_LOG_LEVEL", "UFO_HIGH_WATERMARK", "UFO_LOW_WATERMARK",
		"UFO_THREADS", "UFO_DIRTY_MODE", "UFO_POLICY", "UFO_RETRIES",
		"UFO_RETRY_DELAY_MS", "UFO_MONITOR",
	};
	const char *var = vars[pick % (sizeof(vars) / sizeof(vars[0]))];
	struct ufo_config cfg;

	ufo_config_init(&cfg);
	setenv(var, s, 1);
	if (!config_apply_env(&cfg, NULL) && !config_finish(&cfg) &&
	    cfg.low_watermark > cfg.high_watermark)
		abort();
	unsetenv(var);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *args[MAX_ARGS], *line, *save;
	size_t file_len;
	int nargs = 0;

	memcpy(text, data, size);
	text[size] = '\0';
	file_len = strlen(text);
	line = file_len < size ? text + file_len + 1 : text + size;
	for (char *l = strtok_r(line, "\n", &save); l && nargs < MAX_ARGS;
	     l = strtok_r(NULL, "\n", &save))
		args[nargs++] = l;
	for (int i = 0; i < nargs; i++) {
		url(args[i]);
		env(args[i], (unsigned)i + (unsigned)size);
	}
	server_config(text, file_len, args, nargs);
	free(text);
	return 0;
}
