/* SPDX-License-Identifier: MIT */
/*
 * ufoctl: manage objects on a ufo-server, and clusters of them
 * (docs/ufoctl.md).
 *
 *   ufoctl [--server URL] [--servers LIST] [--secret-file F] [--timeout MS]
 *          [--quiet] COMMAND [ARGS...]
 *
 * This file holds the global options, the command table, option parsing
 * shared by the commands, and the connection with its error messages.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ufoctl.h"

#define MAX_COMMAND_OPTIONS 8 /* long options of one command, --help aside */

const struct command ufoctl_commands[] = {
	{ "create", cmd_create,
	  "NAME SIZE [--chunk BYTES] [--replicas N [--write-quorum W] "
	  "[--group BYTES]]",
	  "create an object of SIZE bytes (reads as zeros)",
	  "SIZE and BYTES take a K, M, G or T suffix (binary multiples).\n"
	  "--chunk sets the object's default chunk size (server default "
	  "otherwise).\n"
	  "--replicas N creates a replicated object over the servers of\n"
	  "--servers (or $UFO_SERVERS) instead: every placement group of\n"
	  "--group BYTES (default 4 chunks) on N of them, a write acknowledged\n"
	  "once W (default N) have it.  It maps the object to create it, so it\n"
	  "needs userfaultfd (root, or vm.unprivileged_userfaultfd=1)." },
	{ "list", cmd_list, "[--bytes]",
	  "list objects: name, size, chunk, allocated on disk, mtime",
	  "--bytes prints exact byte counts instead of 1.5G-style sizes." },
	{ "stat", cmd_stat, "NAME", "show one object's details", NULL },
	{ "delete", cmd_delete, "NAME", "delete an object", NULL },
	{ "put", cmd_put, "LOCALFILE NAME [--create] [--chunk BYTES]",
	  "copy a local file into an object",
	  "A missing object is created with the file's size (and --chunk).\n"
	  "--create insists on a new object: it fails if NAME exists.\n"
	  "An existing object must be at least as large as the file; bytes\n"
	  "past the end of the file are left as they were." },
	{ "get", cmd_get, "NAME LOCALFILE [--no-sparse]",
	  "copy an object into a local file",
	  "LOCALFILE is created or truncated; - is standard output.  Zero\n"
	  "blocks of the object become holes in a regular file unless\n"
	  "--no-sparse is given.  On failure an incomplete regular LOCALFILE\n"
	  "is removed." },
	{ "sync", cmd_sync, "NAME",
	  "make everything written to an object durable on the server", NULL },
	{ "cluster", cmd_cluster,
	  "status | repair [--full] [NAME] | rebalance [--dry-run] [NAME]",
	  "replicated objects on the servers of --servers: health, repair, "
	  "rebalance",
	  "status     each server (up/down, objects), then what a full repair\n"
	  "           would do: missing copies, stray copies, recorded hints\n"
	  "repair     copy what the hints name (every group with --full) to\n"
	  "           the servers that miss it, then drop stray copies\n"
	  "rebalance  place objects over every server of the list and move\n"
	  "           the data (--dry-run: count what would move)\n"
	  "NAME limits repair and rebalance to one object.  Exit status 3:\n"
	  "a server is down or, for status, there is something to repair.\n"
	  "'ufoctl cluster COMMAND --help' tells more." },
	{ NULL, NULL, NULL, NULL, NULL },
};

const struct command *find_command(const char *name)
{
	for (const struct command *c = ufoctl_commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

void command_usage(const struct command *cmd, bool to_stdout)
{
	FILE *f = to_stdout ? stdout : stderr;

	fprintf(f, "Usage: ufoctl [GLOBAL OPTIONS] %s %s\n\n%c%s.\n",
		cmd->name, cmd->args, toupper((unsigned char)cmd->summary[0]),
		cmd->summary + 1);
	if (cmd->help)
		fprintf(f, "\n%s\n", cmd->help);
	fputs("\nSee 'ufoctl --help' for the global options.\n", f);
}

static void main_usage(FILE *f)
{
	fputs("Usage: ufoctl [GLOBAL OPTIONS] COMMAND [ARGS...]\n\n"
	      "Manage objects stored on a ufo-server.\n\n"
	      "Global options:\n"
	      "  -s, --server URL        server, ufo://HOST[:PORT] (default "
	      "$UFO_SERVER,\n"
	      "                          else " UFOCTL_DEFAULT_SERVER ")\n"
	      "  -S, --servers LIST      cluster, HOST:PORT,HOST:PORT,... "
	      "(default\n"
	      "                          $UFO_SERVERS), for cluster and "
	      "create --replicas\n"
	      "  -k, --secret-file FILE  shared secret (default "
	      "$UFO_SECRET_FILE)\n"
	      "  -t, --timeout MS        per-request timeout in milliseconds\n"
	      "  -q, --quiet             no progress or summary lines\n"
	      "  -h, --help              this help; COMMAND --help for a "
	      "command's\n"
	      "  -V, --version           print the version\n\n"
	      "Commands:\n", f);
	for (const struct command *c = ufoctl_commands; c->name; c++)
		fprintf(f, "  %-8s %s\n", c->name, c->summary);
	fputs("\nExit status: 0 success, 1 the operation failed, 2 usage "
	      "error,\n3 cluster degraded (cluster commands).\n", f);
}

/* ------------------------------------------------------ command options */

static int report_bad_option(const struct command *cmd, int c, char **argv)
{
	const char *bad = argv[optind - 1];

	if (c == ':')
		return usage_error(cmd->name, "%s: option '%s' needs a value",
				   cmd->name, bad);
	if (optopt)
		return usage_error(cmd->name, "%s: unknown option '-%c'",
				   cmd->name, optopt);
	return usage_error(cmd->name, "%s: unknown option '%s'", cmd->name,
			   bad);
}

/* longopts + --help into all[], shortopts + ":h" into shorts. */
static int merge_options(const char *shortopts, const struct option *longopts,
			 struct option *all, char *shorts, size_t cap)
{
	size_t n = 0;

	while (longopts && longopts[n].name) {
		if (n == MAX_COMMAND_OPTIONS)
			return -E2BIG;
		all[n] = longopts[n];
		n++;
	}
	all[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	all[n] = (struct option){ NULL, 0, NULL, 0 };
	if ((size_t)snprintf(shorts, cap, ":h%s", shortopts ? shortopts : "")
	    >= cap)
		return -E2BIG;
	return 0;
}

int parse_command_options(const struct command *cmd, int argc, char **argv,
			  const char *shortopts, const struct option *longopts,
			  int (*opt)(void *ctx, int c, const char *arg),
			  void *ctx, int *first)
{
	struct option all[MAX_COMMAND_OPTIONS + 2];
	char shorts[32];
	int c, rc;

	rc = merge_options(shortopts, longopts, all, shorts, sizeof(shorts));
	if (rc)
		return fail(rc, "%s: too many options (a bug)", cmd->name);
	opterr = 0;
	optind = 0; /* glibc: reinitialise, argv differs from last time */
	while ((c = getopt_long(argc, argv, shorts, all, NULL)) != -1) {
		if (c == 'h') {
			command_usage(cmd, true);
			return EXIT_OK;
		}
		if (c == '?' || c == ':')
			return report_bad_option(cmd, c, argv);
		rc = opt(ctx, c, optarg);
		if (rc != PARSE_CONTINUE)
			return rc;
	}
	*first = optind;
	return PARSE_CONTINUE;
}

/* --------------------------------------------------------- connection */

/* A missing or unreadable secret file would come back from the library as
 * -EINVAL, indistinguishable from a bad URL; checking it here names it. */
static int check_secret_file(const struct ufoctl *g)
{
	const char *path = g->secret_file;
	struct stat st;

	if (!path || !*path)
		path = getenv("UFO_SECRET_FILE");
	if (!path || !*path)
		return usage_error(NULL, "no secret file: give --secret-file "
				   "FILE or set $UFO_SECRET_FILE");
	if (stat(path, &st) || access(path, R_OK))
		return fail(-errno, "cannot read secret file %s", path);
	if (st.st_mode & 077)
		warning("secret file %s is accessible by other users; "
		     "chmod 600 it", path);
	return EXIT_OK;
}

/* where: the server, or the server list. */
static int connect_failed(const char *where, int rc)
{
	switch (rc) {
	case -EACCES:
	case -EPERM:
		return fail(rc, "authentication failed at %s: check "
			    "--secret-file or $UFO_SECRET_FILE", where);
	case -ECONNREFUSED:
	case -ETIMEDOUT:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -EHOSTDOWN:
	case -ECONNRESET:
		return fail(rc, "cannot reach server %s", where);
	case -EPROTONOSUPPORT:
		return fail(rc, "server %s: no common protocol version",
			    where);
	case -EPROTO:
	case -EBADMSG:
		return fail(rc, "server %s: garbled reply (is it a "
			    "ufo-server?)", where);
	case -EINVAL:
		return fail(rc, "cannot connect to %s: bad server URL, or "
			    "a secret file under 16 bytes", where);
	default:
		return fail(rc, "cannot connect to %s", where);
	}
}

int ufoctl_connect(struct ufoctl *g)
{
	struct ufo_remote_opts o;
	int rc;

	if (g->client)
		return EXIT_OK;
	rc = check_secret_file(g);
	if (rc)
		return rc;
	ufo_remote_opts_init(&o);
	o.secret_file = g->secret_file;
	o.timeout_ms = g->timeout_ms;
	rc = ufo_client_connect(g->url, &o, &g->client);
	if (rc) {
		g->client = NULL;
		return connect_failed(g->server, rc);
	}
	return EXIT_OK;
}

int ufoctl_cluster_check(struct ufoctl *g)
{
	const char *env = getenv("UFO_SERVERS");

	if (!g->servers && env && *env)
		g->servers = env;
	if (!g->servers)
		return usage_error(NULL, "no server list: give --servers "
				   "HOST:PORT,HOST:PORT,... or set "
				   "$UFO_SERVERS");
	return check_secret_file(g);
}

int ufoctl_cluster_connect(struct ufoctl *g)
{
	struct ufo_remote_opts o;
	int rc;

	if (g->cluster)
		return EXIT_OK;
	rc = ufoctl_cluster_check(g);
	if (rc)
		return rc;
	ufo_remote_opts_init(&o);
	o.secret_file = g->secret_file;
	o.timeout_ms = g->timeout_ms;
	rc = ufo_cluster_connect(g->servers, &o, &g->cluster);
	if (!rc)
		return EXIT_OK;
	g->cluster = NULL;
	switch (rc) {
	case -EINVAL:
		return fail(rc, "cannot connect to %s: bad server list "
			    "(HOST:PORT,HOST:PORT,...), or a secret file under "
			    "16 bytes", g->servers);
	case -E2BIG:
		return fail(rc, "server list %s: too many servers", g->servers);
	case -EHOSTDOWN:
		return fail(rc, "cannot reach any server of %s", g->servers);
	default:
		return connect_failed(g->servers, rc);
	}
}

int ufoctl_stat(struct ufoctl *g, const char *name,
		struct ufo_remote_info *info)
{
	int rc = ufo_client_stat(g->client, name, info);

	if (rc == -ENOENT)
		fail_remote(rc, "no object '%s' on %s", name, g->server);
	else if (rc)
		fail_remote(rc, "stat '%s' on %s", name, g->server);
	return rc;
}

/* ------------------------------------------------------ global options */

/* The URL handed to libufo: "host:port" gets the ufo:// scheme. */
static int set_server(struct ufoctl *g, const char *server)
{
	const char *fmt = strstr(server, "://") ? "%s" : "ufo://%s";

	g->server = server;
	if (!*server || (size_t)snprintf(g->url, sizeof(g->url), fmt, server)
			>= sizeof(g->url))
		return usage_error(NULL, "bad server URL '%s'", server);
	return PARSE_CONTINUE;
}

static int parse_timeout(struct ufoctl *g, const char *arg)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || *arg == '-' || v == 0 ||
	    v > 24UL * 3600 * 1000)
		return usage_error(NULL, "bad --timeout '%s': milliseconds, "
				   "1 to 86400000", arg);
	g->timeout_ms = (unsigned)v;
	return PARSE_CONTINUE;
}

static int global_option(struct ufoctl *g, int c, const char *arg,
			 char **argv)
{
	switch (c) {
	case 's': return set_server(g, arg);
	case 'S':
		if (!*arg)
			return usage_error(NULL, "--servers: empty list");
		g->servers = arg;
		return PARSE_CONTINUE;
	case 'k': g->secret_file = arg; return PARSE_CONTINUE;
	case 't': return parse_timeout(g, arg);
	case 'q': g->quiet = true; return PARSE_CONTINUE;
	case 'h': main_usage(stdout); return EXIT_OK;
	case 'V': printf("ufoctl %d.%d\n", UFO_VERSION_MAJOR,
			 UFO_VERSION_MINOR);
		  return EXIT_OK;
	case ':': return usage_error(NULL, "option '%s' needs a value",
				     argv[optind - 1]);
	default: return usage_error(NULL, "unknown option '%s'",
				    argv[optind - 1]);
	}
}

/* Parses the options before COMMAND; returns PARSE_CONTINUE or a status. */
static int parse_global_options(struct ufoctl *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "servers", required_argument, NULL, 'S' },
		{ "secret-file", required_argument, NULL, 'k' },
		{ "timeout", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *env = getenv("UFO_SERVER");
	int c, rc;

	rc = set_server(g, env && *env ? env : UFOCTL_DEFAULT_SERVER);
	if (rc != PARSE_CONTINUE)
		return rc;
	opterr = 0;
	/* '+': stop at COMMAND, whose options are its own. */
	while ((c = getopt_long(argc, argv, "+:s:S:k:t:qhV", longopts,
				NULL)) != -1) {
		rc = global_option(g, c, optarg, argv);
		if (rc != PARSE_CONTINUE)
			return rc;
	}
	return PARSE_CONTINUE;
}

static int run_command(struct ufoctl *g, int argc, char **argv)
{
	const struct command *cmd;

	if (argc < 1)
		return usage_error(NULL, "no command given");
	if (!strcmp(argv[0], "help")) {
		cmd = argc > 1 ? find_command(argv[1]) : NULL;
		if (cmd)
			command_usage(cmd, true);
		else
			main_usage(stdout);
		return EXIT_OK;
	}
	cmd = find_command(argv[0]);
	if (!cmd)
		return usage_error(NULL, "unknown command '%s'", argv[0]);
	return cmd->run(g, argc, argv);
}

int main(int argc, char **argv)
{
	struct ufoctl g = { 0 };
	int rc = parse_global_options(&g, argc, argv);

	if (rc != PARSE_CONTINUE)
		return rc;
	rc = run_command(&g, argc - optind, argv + optind);
	if (g.client)
		ufo_client_close(g.client);
	if (g.cluster)
		ufo_cluster_close(g.cluster);
	if (fflush(stdout) || ferror(stdout)) {
		fail(errno ? -errno : -EIO, "write standard output");
		rc = EXIT_FAILED;
	}
	return rc;
}
