/* SPDX-License-Identifier: MIT */
/*
 * Options have one name each, used both as a long flag (--name VALUE or
 * --name=VALUE) and as a config file key (name = value), so the two cannot
 * drift apart.  Flags are applied after the file, so they override it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "monitor.h"

typedef int (*opt_setter)(struct server_config *cfg, const char *value);

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int set_listen(struct server_config *cfg, const char *v)
{
	return net_parse_hostport(v, NET_DEFAULT_PORT, &cfg->listen);
}

static int set_path(char *dst, const char *v)
{
	if (!*v || strlen(v) >= PATH_MAX)
		return -EINVAL;
	strcpy(dst, v);
	return 0;
}

static int set_data(struct server_config *cfg, const char *v)
{
	return set_path(cfg->data_dir, v);
}

static int set_secret(struct server_config *cfg, const char *v)
{
	return set_path(cfg->secret_file, v);
}

static int set_tls_cert(struct server_config *cfg, const char *v)
{
	return set_path(cfg->tls_cert, v);
}

static int set_tls_key(struct server_config *cfg, const char *v)
{
	return set_path(cfg->tls_key, v);
}

static int set_maxconn(struct server_config *cfg, const char *v)
{
	return parse_uint(v, 1, 1u << 20, &cfg->max_connections);
}

static int set_workers(struct server_config *cfg, const char *v)
{
	return parse_uint(v, 1, SERVER_MAX_WORKERS, &cfg->workers);
}

static int set_rdma_map(struct server_config *cfg, const char *v)
{
	return parse_uint(v, 1, RDMA_MAP_MIB_MAX, &cfg->rdma_map_mib);
}

static int set_auth_timeout(struct server_config *cfg, const char *v)
{
	return parse_uint(v, AUTH_TIMEOUT_MIN_MS, AUTH_TIMEOUT_MAX_MS,
			  &cfg->auth_timeout_ms);
}

static int set_log_level(struct server_config *cfg, const char *v)
{
	int l = log_parse_level(v);

	if (l < 0)
		return l;
	cfg->log_level = l;
	return 0;
}

/* "ADDR:PORT", a bare port (loopback), "on" (SERVER_DEFAULT_MONITOR) or
 * "off".  Checked here so a typo fails at startup like any other flag. */
static int set_monitor(struct server_config *cfg, const char *v)
{
	char host[MON_ADDR_MAX];
	uint16_t port;

	if (!strcmp(v, "off")) {
		cfg->monitor[0] = '\0';
		return 0;
	}
	if (!strcmp(v, "on"))
		v = SERVER_DEFAULT_MONITOR;
	if (*v && strspn(v, "0123456789") == strlen(v))
		snprintf(cfg->monitor, sizeof(cfg->monitor), "127.0.0.1:%s", v);
	else if (strlen(v) < sizeof(cfg->monitor))
		strcpy(cfg->monitor, v);
	else
		return -EINVAL;
	return mon_parse_addr(cfg->monitor, host, &port);
}

static const struct option_def {
	const char *name;
	opt_setter set;
	const char *help;
} options[] = {
	{ "listen", set_listen, "ADDR:PORT  address to listen on "
				"(default 127.0.0.1:7070; port 0: any)" },
	{ "data", set_data, "DIR        data directory (required)" },
	{ "secret-file", set_secret, "FILE  shared secret (required, mode 0600)" },
	{ "max-connections", set_maxconn, "N  connection limit (default 1024)" },
	{ "workers", set_workers, "N        worker threads (default: CPUs)" },
	{ "rdma-map-mib", set_rdma_map, "N   RDMA: MiB of object data one "
	  "connection may keep registered for one-sided access (default 1024)" },
	{ "tls-cert", set_tls_cert, "FILE     TLS: certificate chain (PEM); "
				    "clients then connect with tls://" },
	{ "tls-key", set_tls_key, "FILE      TLS: the certificate's private key (PEM)" },
	{ "auth-timeout-ms", set_auth_timeout, "MS  time a connection has to "
					       "authenticate (default 10000)" },
	{ "log-level", set_log_level, "L      error|warn|info|debug (default info)" },
	{ "monitor", set_monitor, "ADDR:PORT  HTTP monitor: /metrics, /api/v1/stats, "
				  "dashboard (PORT alone or 'on': loopback; "
				  "'on' = " SERVER_DEFAULT_MONITOR ")" },
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

void config_usage(const char *prog)
{
	printf("usage: %s --data DIR --secret-file FILE [options]\n\n", prog);
	for (size_t i = 0; i < N_OPTIONS; i++)
		printf("  --%s %s\n", options[i].name, options[i].help);
	printf("  --config FILE  'key = value' lines, keys as the flags above;\n"
	       "                 flags override the file\n"
	       "  --help         this text\n");
}

/* A secret given as a value ends up in ps, /proc/PID/cmdline and shell
 * history: these names get a refusal that says what to do instead.
 * -EINVAL after printing it, or 0. */
static int refuse_secret_value(const char *name, const char *where)
{
	if (strcmp(name, "secret") && strcmp(name, "password"))
		return 0;
	fprintf(stderr, "ufo-server: %s: '%s' is refused: a secret given as a "
		"value shows in ps and shell history; write it to a file "
		"(chmod 600) and use --secret-file FILE\n", where, name);
	return -EINVAL;
}

static int apply(struct server_config *cfg, const char *name, const char *v,
		 const char *where)
{
	if (refuse_secret_value(name, where))
		return -EINVAL;
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (strcmp(options[i].name, name))
			continue;
		if (options[i].set(cfg, v)) {
			fprintf(stderr, "ufo-server: %s: bad value for %s: '%s'\n",
				where, name, v);
			return -EINVAL;
		}
		return 0;
	}
	fprintf(stderr, "ufo-server: %s: unknown option '%s'\n", where, name);
	return -EINVAL;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
			 e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* One "key = value" line; blank lines and '#' comments are skipped. */
static int config_line(struct server_config *cfg, char *line, const char *where)
{
	char *eq, *key = trim(line);

	if (!*key || *key == '#')
		return 0;
	eq = strchr(key, '=');
	if (!eq) {
		fprintf(stderr, "ufo-server: %s: expected 'key = value'\n", where);
		return -EINVAL;
	}
	*eq = '\0';
	return apply(cfg, trim(key), trim(eq + 1), where);
}

static int config_file(struct server_config *cfg, const char *path)
{
	char line[CONFIG_LINE_MAX], where[PATH_MAX + 32];
	FILE *f = fopen(path, "re");
	int rc = 0, lineno = 0;

	if (!f) {
		fprintf(stderr, "ufo-server: --config %s: %s\n", path,
			strerror(errno));
		return -errno;
	}
	while (!rc && fgets(line, sizeof(line), f)) {
		snprintf(where, sizeof(where), "%s:%d", path, ++lineno);
		rc = config_line(cfg, line, where);
	}
	fclose(f);
	return rc;
}

static void config_defaults(struct server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->listen.host, SERVER_DEFAULT_HOST);
	cfg->listen.port = NET_DEFAULT_PORT;
	cfg->max_connections = SERVER_DEFAULT_MAX_CONNECTIONS;
	cfg->log_level = LOG_INFO;
	cfg->auth_timeout_ms = AUTH_TIMEOUT_MS;
	cfg->rdma_map_mib = RDMA_MAP_MIB_DEFAULT;
}

/* Splits argv[*i] into a flag name and its value (--name=value or
 * --name value); advances *i past what it used. */
static int flag_at(int argc, char **argv, int *i, char *name, size_t cap,
		   const char **value)
{
	const char *a = argv[*i], *eq;
	size_t len;

	if (strncmp(a, "--", 2)) {
		fprintf(stderr, "ufo-server: unexpected argument '%s'\n", a);
		return -EINVAL;
	}
	a += 2;
	eq = strchr(a, '=');
	len = eq ? (size_t)(eq - a) : strlen(a);
	if (len >= cap)
		len = cap - 1;
	memcpy(name, a, len);
	name[len] = '\0';
	if (!strcmp(name, "help")) {
		*value = NULL;
		return 0;
	}
	if (refuse_secret_value(name, "command line"))
		return -EINVAL;
	if (eq) {
		*value = eq + 1;
	} else if (*i + 1 < argc) {
		*value = argv[++*i];
	} else {
		fprintf(stderr, "ufo-server: --%s needs a value\n", name);
		return -EINVAL;
	}
	return 0;
}

/* Pass 0 finds --config and --help; pass 1 applies every other flag. */
static int config_pass(struct server_config *cfg, int argc, char **argv,
		       int pass)
{
	char name[64];
	const char *v;
	int rc;

	for (int i = 1; i < argc; i++) {
		if ((rc = flag_at(argc, argv, &i, name, sizeof(name), &v)))
			return rc;
		if (!v) {
			config_usage(argv[0]);
			return 1;
		}
		if (!strcmp(name, "config"))
			rc = pass ? 0 : config_file(cfg, v);
		else
			rc = pass ? apply(cfg, name, v, "command line") : 0;
		if (rc)
			return rc;
	}
	return 0;
}

int config_load(struct server_config *cfg, int argc, char **argv)
{
	int rc;

	config_defaults(cfg);
	if ((rc = config_pass(cfg, argc, argv, 0)) ||
	    (rc = config_pass(cfg, argc, argv, 1)))
		return rc;
	if (!cfg->data_dir[0] || !cfg->secret_file[0]) {
		fprintf(stderr, "ufo-server: --data and --secret-file are "
				"required (see --help)\n");
		return -EINVAL;
	}
	if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
		fprintf(stderr, "ufo-server: --tls-cert and --tls-key go "
				"together\n");
		return -EINVAL;
	}
	return 0;
}
