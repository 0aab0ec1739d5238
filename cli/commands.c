/* SPDX-License-Identifier: MIT */
/* ufoctl: the object commands create, list, stat, delete and sync. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ufoctl.h"

/* ----------------------------------------------------- argument checks */

int want_operands(const struct command *cmd, int have, int want)
{
	if (have == want)
		return EXIT_OK;
	return usage_error(cmd->name, "%s: %s operands (usage: ufoctl %s %s)",
			   cmd->name, have < want ? "missing" : "too many",
			   cmd->name, cmd->args);
}

int name_operand(const struct command *cmd, const char *name)
{
	if (check_object_name(name) == 0)
		return EXIT_OK;
	return usage_error(cmd->name, "%s: bad object name '%s': 1-255 "
			   "characters of A-Z a-z 0-9 . _ -, not starting "
			   "with '.'", cmd->name, name);
}

int size_operand(const struct command *cmd, const char *what,
		 const char *arg, uint64_t max, uint64_t *out)
{
	int rc = ufo_parse_size(arg, out);

	if (rc == -EINVAL)
		return usage_error(cmd->name, "%s: bad %s '%s': a number with "
				   "an optional K, M, G or T suffix",
				   cmd->name, what, arg);
	if (rc || *out > max)
		return usage_error(cmd->name, "%s: %s '%s' is too large",
				   cmd->name, what, arg);
	return EXIT_OK;
}

/* --chunk BYTES: 0 (the default) or what fits the protocol's uint32. */
int chunk_option(const struct command *cmd, const char *arg, uint32_t *out)
{
	uint64_t v;
	int rc = size_operand(cmd, "chunk size", arg, UINT32_MAX, &v);

	*out = (uint32_t)v;
	return rc;
}

/* -------------------------------------------------------------- create */

struct create_args {
	uint32_t chunk;
	bool replicated;     /* --replicas given */
	struct replication r;
};

/* A count from 1 to max for option opt. */
static int count_option(const struct command *cmd, const char *opt,
			const char *arg, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || *arg == '-' || v == 0 || v > max)
		return usage_error(cmd->name, "%s: bad %s '%s': 1 to %u",
				   cmd->name, opt, arg, max);
	*out = (unsigned)v;
	return EXIT_OK;
}

/* The protocol's placements hold R and W in one byte each. */
#define REPLICAS_MAX 255

static int create_option(void *ctx, int c, const char *arg)
{
	const struct command *cmd = find_command("create");
	struct create_args *a = ctx;
	int rc;

	switch (c) {
	case 'c':
		rc = chunk_option(cmd, arg, &a->chunk);
		break;
	case 'r':
		rc = count_option(cmd, "--replicas", arg, REPLICAS_MAX,
				  &a->r.replicas);
		a->replicated = true;
		break;
	case 'w':
		rc = count_option(cmd, "--write-quorum", arg, REPLICAS_MAX,
				  &a->r.write_quorum);
		break;
	default: /* 'g' */
		rc = size_operand(cmd, "group size", arg, UINT32_MAX,
				  &a->r.group_size);
		break;
	}
	return rc ? rc : PARSE_CONTINUE;
}

/* --write-quorum and --group only with --replicas, and consistent. */
static int check_replication(const struct command *cmd,
			     const struct create_args *a)
{
	if (!a->replicated && (a->r.write_quorum || a->r.group_size))
		return usage_error(cmd->name, "create: --write-quorum and "
				   "--group need --replicas");
	if (a->r.write_quorum > a->r.replicas)
		return usage_error(cmd->name, "create: --write-quorum %u is "
				   "more than --replicas %u", a->r.write_quorum,
				   a->r.replicas);
	if (a->r.group_size && a->chunk && a->r.group_size % a->chunk)
		return usage_error(cmd->name, "create: --group must be a "
				   "multiple of --chunk");
	return EXIT_OK;
}

int create_object(struct ufoctl *g, const char *name, uint64_t size,
		  uint32_t chunk, struct ufo_remote_info *info)
{
	char c[24] = "default";
	int rc = ufo_client_create(g->client, name, size, chunk, info);

	if (chunk)
		snprintf(c, sizeof(c), "%" PRIu32, chunk);
	if (rc == -EEXIST)
		fail_remote(rc, "create '%s' on %s", name, g->server);
	else if (rc)
		fail_remote(rc, "create '%s' (size %" PRIu64 ", chunk %s) "
			    "on %s", name, size, c, g->server);
	return rc;
}

int cmd_create(struct ufoctl *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "chunk", required_argument, NULL, 'c' },
		{ "replicas", required_argument, NULL, 'r' },
		{ "write-quorum", required_argument, NULL, 'w' },
		{ "group", required_argument, NULL, 'g' },
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd = find_command("create");
	struct create_args a = { 0 };
	struct ufo_remote_info info;
	uint64_t size;
	int first, rc;

	rc = parse_command_options(cmd, argc, argv, "", longopts,
				   create_option, &a, &first);
	if (rc != PARSE_CONTINUE)
		return rc;
	if ((rc = want_operands(cmd, argc - first, 2)) ||
	    (rc = name_operand(cmd, argv[first])) ||
	    (rc = size_operand(cmd, "size", argv[first + 1], UINT64_MAX,
			       &size)))
		return rc;
	if (size == 0)
		return usage_error(cmd->name, "create: size must be above 0");
	if ((rc = check_replication(cmd, &a)))
		return rc;
	if (a.replicated)
		return create_replicated(g, argv[first], size, a.chunk, &a.r);
	if ((rc = ufoctl_connect(g)))
		return rc;
	return create_object(g, argv[first], size, a.chunk, &info) ?
		       EXIT_FAILED : EXIT_OK;
}

/* ---------------------------------------------------------------- list */

struct listing {
	struct ufo_remote_info *v;
	size_t n, cap;
};

static int collect_entry(void *user, const struct ufo_remote_info *info)
{
	struct listing *l = user;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		void *v = realloc(l->v, cap * sizeof(*l->v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *info;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	const struct ufo_remote_info *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/* A size column: exact bytes, or human-readable. */
static const char *size_cell(uint64_t v, bool bytes, char *buf, size_t cap)
{
	if (bytes) {
		snprintf(buf, cap, "%" PRIu64, v);
		return buf;
	}
	return format_size(v, buf, cap);
}

static void print_listing(const struct listing *l, bool bytes)
{
	int w = 4, sw = bytes ? 14 : 7, aw = bytes ? 14 : 9;
	char s[24], c[24], a[24], t[32];

	for (size_t i = 0; i < l->n; i++) {
		int len = (int)strlen(l->v[i].name);

		w = len > w ? len : w;
	}
	printf("%-*s  %*s  %*s  %*s  %s\n", w, "NAME", sw, "SIZE", sw,
	       "CHUNK", aw, "ALLOCATED", "MTIME");
	for (size_t i = 0; i < l->n; i++) {
		const struct ufo_remote_info *o = &l->v[i];

		printf("%-*s  %*s  %*s  %*s  %s\n", w, o->name, sw,
		       size_cell(o->size, bytes, s, sizeof(s)), sw,
		       size_cell(o->chunk_size, bytes, c, sizeof(c)), aw,
		       size_cell(o->allocated, bytes, a, sizeof(a)),
		       format_time(o->mtime_ns, t, sizeof(t)));
	}
}

static int list_option(void *ctx, int c, const char *arg)
{
	*(bool *)ctx = true; /* --bytes, the only option */
	return PARSE_CONTINUE;
}

int cmd_list(struct ufoctl *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "bytes", no_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd = find_command("list");
	struct listing l = { 0 };
	bool bytes = false;
	int first, rc;

	rc = parse_command_options(cmd, argc, argv, "b", longopts,
				   list_option, &bytes, &first);
	if (rc != PARSE_CONTINUE)
		return rc;
	if ((rc = want_operands(cmd, argc - first, 0)) ||
	    (rc = ufoctl_connect(g)))
		return rc;
	rc = ufo_client_list(g->client, collect_entry, &l);
	if (rc) {
		free(l.v);
		return fail_remote(rc, "list objects on %s", g->server);
	}
	if (l.n) /* qsort(NULL, 0, ...) is undefined */
		qsort(l.v, l.n, sizeof(*l.v), by_name);
	print_listing(&l, bytes);
	free(l.v);
	return EXIT_OK;
}

/* ------------------------------------------------ stat, delete, sync */

/* Parses a command that takes only NAME: PARSE_CONTINUE with *name set, or
 * the exit status to end with. */
static int name_only(const struct command *cmd, int argc, char **argv,
		     const char **name)
{
	int first, rc;

	rc = parse_command_options(cmd, argc, argv, "", NULL, NULL, NULL,
				   &first);
	if (rc != PARSE_CONTINUE)
		return rc;
	if ((rc = want_operands(cmd, argc - first, 1)) ||
	    (rc = name_operand(cmd, argv[first])))
		return rc;
	*name = argv[first];
	return PARSE_CONTINUE;
}

static void print_info(const struct ufo_remote_info *o)
{
	char s[16], c[16], a[16], t[32];

	printf("name:      %s\n", o->name);
	printf("id:        %" PRIu64 "\n", o->id);
	printf("size:      %" PRIu64 " (%s)\n", o->size,
	       format_size(o->size, s, sizeof(s)));
	printf("chunk:     %" PRIu32 " (%s)\n", o->chunk_size,
	       format_size(o->chunk_size, c, sizeof(c)));
	printf("allocated: %" PRIu64 " (%s)\n", o->allocated,
	       format_size(o->allocated, a, sizeof(a)));
	printf("mtime:     %s.%09" PRIu64 "\n",
	       format_time(o->mtime_ns, t, sizeof(t)),
	       o->mtime_ns % 1000000000u);
}

/* COMMAND NAME: parses the one operand and connects.  PARSE_CONTINUE when
 * ready, else the exit status to return. */
static int name_and_connect(struct ufoctl *g, const char *cmd, int argc,
			    char **argv, const char **name)
{
	int rc = name_only(find_command(cmd), argc, argv, name);

	if (rc != PARSE_CONTINUE)
		return rc;
	rc = ufoctl_connect(g);
	return rc ? rc : PARSE_CONTINUE;
}

int cmd_stat(struct ufoctl *g, int argc, char **argv)
{
	struct ufo_remote_info info;
	const char *name;
	int rc = name_and_connect(g, "stat", argc, argv, &name);

	if (rc != PARSE_CONTINUE)
		return rc;
	if (ufoctl_stat(g, name, &info))
		return EXIT_FAILED;
	print_info(&info);
	return EXIT_OK;
}

int cmd_delete(struct ufoctl *g, int argc, char **argv)
{
	const char *name;
	int rc = name_and_connect(g, "delete", argc, argv, &name);

	if (rc != PARSE_CONTINUE)
		return rc;
	rc = ufo_client_delete(g->client, name);
	if (rc == -ENOENT)
		return fail_remote(rc, "no object '%s' on %s", name, g->server);
	if (rc)
		return fail_remote(rc, "delete '%s' on %s", name, g->server);
	return EXIT_OK;
}

int cmd_sync(struct ufoctl *g, int argc, char **argv)
{
	struct ufo_remote_info info;
	const char *name;
	int rc = name_and_connect(g, "sync", argc, argv, &name);

	if (rc != PARSE_CONTINUE)
		return rc;
	if (ufoctl_stat(g, name, &info))
		return EXIT_FAILED;
	rc = ufo_client_sync(g->client, info.id);
	if (rc)
		return fail_remote(rc, "sync '%s' on %s", name, g->server);
	return EXIT_OK;
}
