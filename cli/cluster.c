/* SPDX-License-Identifier: MIT */
/*
 * ufoctl: clusters of ufo-servers (docs/cluster.md).  `cluster status`,
 * `cluster repair` and `cluster rebalance` over ufo_cluster_*, and
 * `create --replicas`, which places a new replicated object.
 *
 * Beyond ufoctl.h's three exit statuses these return EXIT_DEGRADED when a
 * server is down or (status) something is left to repair, so that a
 * monitoring check or a retry loop can tell "try again later" from
 * "failed".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ufoctl.h"

static int cluster_status(struct ufoctl *g, int argc, char **argv);
static int cluster_repair(struct ufoctl *g, int argc, char **argv);
static int cluster_rebalance(struct ufoctl *g, int argc, char **argv);

#define SUBCOMMAND(c) ((c)->name + sizeof("cluster ") - 1)

static const struct command cluster_commands[] = {
	{ "cluster status", cluster_status, "",
	  "show each server and what a full repair would do",
	  "One line per server of the list: address, node id, up or down,\n"
	  "objects stored, failed requests (during this command).  Then a\n"
	  "full dry run of repair over every replicated object counts the\n"
	  "backlog: missing copies (blocks a home lacks or holds in an old\n"
	  "version), stray copies (blocks on servers that are not homes),\n"
	  "recorded hints, and groups left unchecked because one of their\n"
	  "homes is down.\n"
	  "Exit status 0 when every server is up and the backlog is empty,\n"
	  "3 (degraded) otherwise." },
	{ "cluster repair", cluster_repair, "[--full] [NAME]",
	  "copy missing blocks to their homes and drop stray copies",
	  "Without --full only the groups named by recorded hints are\n"
	  "visited (quick after an outage); --full visits every group (after\n"
	  "a server lost its disk, or to verify).  NAME: one object, else\n"
	  "all of them.  Exit status 3 when some groups could not be repaired\n"
	  "because one of their homes is down: run it again once it is up." },
	{ "cluster rebalance", cluster_rebalance, "[--dry-run] [NAME]",
	  "place objects over every server of the list and move their data",
	  "After servers were added to the list: each object gets a\n"
	  "placement over all of them (rendezvous hashing moves only the\n"
	  "groups a new server wins), then a full repair copies the moved\n"
	  "groups to their new homes and drops the old copies.  Every server\n"
	  "of the list must be up (exit status 3 otherwise).  --dry-run\n"
	  "counts the groups that would move and changes nothing." },
	{ NULL, NULL, NULL, NULL, NULL },
};

int cmd_cluster(struct ufoctl *g, int argc, char **argv)
{
	const struct command *cmd = find_command("cluster");

	if (argc < 2)
		return usage_error(cmd->name, "cluster: missing command: "
				   "status, repair or rebalance");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		command_usage(cmd, true);
		return EXIT_OK;
	}
	for (const struct command *c = cluster_commands; c->name; c++)
		if (!strcmp(SUBCOMMAND(c), argv[1]))
			return c->run(g, argc - 1, argv + 1);
	return usage_error(cmd->name, "cluster: unknown command '%s'",
			   argv[1]);
}

/* ------------------------------------------------------------- members */

struct members {
	struct ufo_cluster_member *v;
	unsigned n, up;
};

/* 0 or -errno; free m->v. */
static int members_get(struct ufoctl *g, struct members *m)
{
	int n = ufo_cluster_members(g->cluster, NULL, 0);

	m->v = NULL;
	m->n = m->up = 0;
	if (n < 0)
		return n;
	m->v = calloc(n ? (size_t)n : 1, sizeof(*m->v));
	if (!m->v)
		return -ENOMEM;
	n = ufo_cluster_members(g->cluster, m->v, (unsigned)n);
	if (n < 0)
		return n;
	m->n = (unsigned)n;
	for (unsigned i = 0; i < m->n; i++)
		m->up += m->v[i].up != 0;
	return 0;
}

static void members_print(const struct members *m)
{
	int w = 6;

	for (unsigned i = 0; i < m->n; i++) {
		int len = (int)strlen(m->v[i].server);

		w = len > w ? len : w;
	}
	printf("%-*s  %-32s  %-5s  %8s  %8s\n", w, "SERVER", "NODE ID",
	       "STATE", "OBJECTS", "FAILURES");
	for (unsigned i = 0; i < m->n; i++) {
		const struct ufo_cluster_member *u = &m->v[i];

		printf("%-*s  %-32s  %-5s  %8" PRIu64 "  %8" PRIu64 "\n", w,
		       u->server, u->node_id[0] ? u->node_id : "-",
		       u->up ? "up" : "down", u->objects, u->failures);
	}
}

/* "a:1, b:2": the servers that are down. */
static void members_down(const struct members *m, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < m->n && len < cap; i++)
		if (!m->v[i].up)
			len += (size_t)snprintf(buf + len, cap - len, "%s%s",
						len ? ", " : "",
						m->v[i].server);
}

/* -------------------------------------------------------------- status */

static bool backlog_empty(const struct ufo_repair_stats *s)
{
	return !s->blocks_copied && !s->blocks_discarded && !s->hints &&
	       !s->errors;
}

/* " (5.5M)" after a count of copied blocks, "" for none. */
static const char *copied_bytes(const struct ufo_repair_stats *s, char *buf,
				size_t cap)
{
	char b[16];

	buf[0] = '\0';
	if (s->bytes_copied)
		snprintf(buf, cap, " (%s)",
			 format_size(s->bytes_copied, b, sizeof(b)));
	return buf;
}

static void backlog_print(const struct ufo_repair_stats *s)
{
	char b[24];

	printf("\nreplicated objects: %" PRIu64 "\n", s->objects);
	printf("groups:             %" PRIu64 "\n", s->groups);
	printf("missing copies:     %" PRIu64 " blocks%s\n", s->blocks_copied,
	       copied_bytes(s, b, sizeof(b)));
	printf("stray copies:       %" PRIu64 " blocks\n", s->blocks_discarded);
	printf("recorded hints:     %" PRIu64 "\n", s->hints);
	printf("unchecked groups:   %" PRIu64 " (one of their homes is down)\n",
	       s->errors);
}

/* "health: healthy", or "health: degraded (why, why)"; the exit status. */
static int health_print(const struct members *m,
			const struct ufo_repair_stats *s)
{
	char why[256];
	size_t len = 0;

	if (m->up == m->n && backlog_empty(s)) {
		puts("health:             healthy");
		return EXIT_OK;
	}
	why[0] = '\0';
	if (m->up < m->n)
		len += (size_t)snprintf(why + len, sizeof(why) - len,
					"%u of %u servers down, ",
					m->n - m->up, m->n);
	if (s->blocks_copied || s->blocks_discarded || s->hints)
		len += (size_t)snprintf(why + len, sizeof(why) - len,
					"repair backlog, ");
	if (s->errors && len < sizeof(why))
		len += (size_t)snprintf(why + len, sizeof(why) - len,
					"%" PRIu64 " groups unchecked, ",
					s->errors);
	if (len >= 2 && len < sizeof(why))
		why[len - 2] = '\0';
	printf("health:             degraded (%s)\n", why);
	return EXIT_DEGRADED;
}

static int cluster_status(struct ufoctl *g, int argc, char **argv)
{
	const struct command *cmd = &cluster_commands[0];
	struct ufo_repair_stats st = { 0 };
	struct members m;
	int first, rc;

	rc = parse_command_options(cmd, argc, argv, "", NULL, NULL, NULL,
				   &first);
	if (rc != PARSE_CONTINUE)
		return rc;
	if ((rc = want_operands(cmd, argc - first, 0)) ||
	    (rc = ufoctl_cluster_connect(g)))
		return rc;
	rc = members_get(g, &m);
	if (rc) {
		free(m.v);
		return fail(rc, "cluster status: servers of %s", g->servers);
	}
	members_print(&m);
	/* -EAGAIN only says that some groups went unchecked (st.errors). */
	rc = ufo_cluster_repair(g->cluster, NULL,
				UFO_REPAIR_FULL | UFO_REPAIR_DRY_RUN, NULL,
				NULL, &st);
	if (rc && rc != -EAGAIN)
		rc = fail(rc, "cluster status: counting the repair backlog on "
			  "%s", g->servers);
	else
		rc = (backlog_print(&st), health_print(&m, &st));
	free(m.v);
	return rc;
}

/* ---------------------------------------------------- repair, rebalance */

static void repair_progress(void *user, const struct ufo_repair_stats *s)
{
	struct progress *p = user;

	p->total = s->groups; /* grows as each object is reached */
	progress_update(p, s->groups_done);
}

/* ufo_cluster_repair with a progress display: what it returns, or
 * -ENOENT when name is not a replicated object (which it skips). */
static int repair_run(struct ufoctl *g, const char *label, const char *name,
		      unsigned flags, struct ufo_repair_stats *st)
{
	struct progress p;
	int rc;

	memset(st, 0, sizeof(*st));
	progress_init_count(&p, label, "groups", 0, g->quiet);
	rc = ufo_cluster_repair(g->cluster, name, flags, repair_progress, &p,
				st);
	if (!rc && name && !st->objects)
		rc = -ENOENT;
	progress_finish(&p, st->groups_done, rc == 0);
	return rc;
}

/* "N objects: D/G groups repaired, B blocks copied (S), X stray copies
 * dropped" on stdout. */
static void repair_summary(const char *what, const struct ufo_repair_stats *s)
{
	char b[24];

	printf("%s: %" PRIu64 " object%s, %" PRIu64 "/%" PRIu64 " groups "
	       "repaired, %" PRIu64 " blocks copied%s, %" PRIu64
	       " stray copies dropped, %" PRIu64 " hints forgotten\n", what,
	       s->objects, s->objects == 1 ? "" : "s", s->groups_done,
	       s->groups, s->blocks_copied, copied_bytes(s, b, sizeof(b)),
	       s->blocks_discarded, s->hints_dropped);
}

/* The exit status for what ufo_cluster_repair returned, reported. */
static int repair_outcome(struct ufoctl *g, const char *what, const char *name,
			  int rc, const struct ufo_repair_stats *st)
{
	struct members m;
	char down[512] = "";

	if (rc == -EAGAIN || rc == -EHOSTDOWN) {
		if (!members_get(g, &m))
			members_down(&m, down, sizeof(down));
		free(m.v);
	}
	if (rc == -EAGAIN) {
		fail(rc, "%s: %" PRIu64 " of %" PRIu64 " groups could not be "
		     "repaired: a server holding them was down (%s%s); run it "
		     "again once it is up", what, st->errors, st->groups,
		     down[0] ? "down now: " : "", down[0] ? down : "up again");
		return EXIT_DEGRADED;
	}
	if (rc == -EHOSTDOWN) {
		fail(rc, "%s needs every server of the list up; down: %s", what,
		     down[0] ? down : "none now, try again");
		return EXIT_DEGRADED;
	}
	if (rc == -ENOENT && name)
		return fail(rc, "%s: no replicated object '%s' on %s", what,
			    name, g->servers);
	if (rc)
		return fail(rc, "%s on %s", what, g->servers);
	return EXIT_OK;
}

struct repair_args {
	bool flag; /* --full, --dry-run */
};

static int repair_option(void *ctx, int c, const char *arg)
{
	((struct repair_args *)ctx)->flag = true; /* the only option */
	return PARSE_CONTINUE;
}

/* Parses "[--OPTION] [NAME]" and connects: PARSE_CONTINUE with *name
 * (NULL: all objects) and a->flag set, or the exit status. */
static int repair_args(struct ufoctl *g, const struct command *cmd,
		       const struct option *opt, int argc, char **argv,
		       struct repair_args *a, const char **name)
{
	const struct option longopts[] = { *opt, { NULL, 0, NULL, 0 } };
	char shorts[2] = { (char)opt->val, '\0' };
	int first, rc;

	a->flag = false;
	rc = parse_command_options(cmd, argc, argv, shorts, longopts,
				   repair_option, a, &first);
	if (rc != PARSE_CONTINUE)
		return rc;
	if (argc - first > 1)
		return want_operands(cmd, argc - first, 1);
	*name = argc - first == 1 ? argv[first] : NULL;
	if (*name && (rc = name_operand(cmd, *name)))
		return rc;
	rc = ufoctl_cluster_connect(g);
	return rc ? rc : PARSE_CONTINUE;
}

static int cluster_repair(struct ufoctl *g, int argc, char **argv)
{
	static const struct option full = { "full", no_argument, NULL, 'f' };
	struct ufo_repair_stats st;
	struct repair_args a;
	const char *name;
	int rc = repair_args(g, &cluster_commands[1], &full, argc, argv, &a,
			     &name);

	if (rc != PARSE_CONTINUE)
		return rc;
	rc = repair_run(g, "repair", name, a.flag ? UFO_REPAIR_FULL : 0, &st);
	if (!rc || rc == -EAGAIN)
		repair_summary("repair", &st);
	return repair_outcome(g, "cluster repair", name, rc, &st);
}

static int cluster_rebalance(struct ufoctl *g, int argc, char **argv)
{
	static const struct option dry = { "dry-run", no_argument, NULL, 'n' };
	unsigned flags = UFO_REPAIR_REBALANCE;
	struct ufo_repair_stats st;
	struct repair_args a;
	const char *name;
	int rc = repair_args(g, &cluster_commands[2], &dry, argc, argv, &a,
			     &name);

	if (rc != PARSE_CONTINUE)
		return rc;
	flags |= a.flag ? UFO_REPAIR_DRY_RUN : 0;
	rc = repair_run(g, "rebalance", name, flags, &st);
	if (!rc || rc == -EAGAIN) {
		printf("rebalance: %s %" PRIu64 " of %" PRIu64 " groups (%"
		       PRIu64 " new replicas)%s\n",
		       a.flag ? "would move" : "moved", st.groups_moved,
		       st.groups, st.replicas_moved,
		       a.flag ? "; dry run, nothing changed" : "");
		if (!a.flag)
			repair_summary("rebalance", &st);
	}
	return repair_outcome(g, "cluster rebalance", name, rc, &st);
}

/* ---------------------------------------------------- create --replicas */

/* The library's log while creating: muted while probing for the name
 * (a missing object is the expected answer there). */
static void create_log(void *user, enum ufo_log_level level, const char *msg)
{
	(void)level;
	if (!*(const bool *)user)
		fprintf(stderr, "ufoctl: libufo: %s\n", msg);
}

static int create_ctx(bool *mute, struct ufo_ctx **ctx)
{
	struct ufo_config cfg;
	int rc;

	ufo_config_init(&cfg);
	cfg.log = create_log;
	cfg.log_user = mute;
	rc = ufo_ctx_create(&cfg, ctx);
	if (rc == -EPERM || rc == -EACCES)
		return fail(rc, "create --replicas maps the object, and "
			    "userfaultfd is refused to this user: run as root "
			    "or set sysctl vm.unprivileged_userfaultfd=1");
	if (rc == -ENOSYS)
		return fail(rc, "create --replicas maps the object, and this "
			    "kernel has no userfaultfd");
	if (rc)
		return fail(rc, "create --replicas: starting libufo");
	return EXIT_OK;
}

/* Opens name (creating it with o's UFO_REMOTE_CREATE) and frees it again.
 * The URL "scheme:///name" takes the servers from $UFO_SERVERS, which
 * works for any number of them ("ufo://a,b/name" needs two or more).
 * 0 or -errno. */
static int open_replicated(struct ufoctl *g, struct ufo_ctx *ctx,
			   const char *name, const struct ufo_remote_opts *o)
{
	const char *sep = strstr(g->servers, "://");
	struct ufo_obj *obj;
	char url[512];
	int rc;

	snprintf(url, sizeof(url), "%.*s:///%s",
		 sep ? (int)(sep - g->servers) : 3, sep ? g->servers : "ufo",
		 name);
	rc = ufo_remote_open(ctx, url, o, &obj);
	if (!rc)
		rc = ufo_free(obj);
	return rc;
}

static int create_on(struct ufoctl *g, struct ufo_ctx *ctx, bool *mute,
		     const char *name, struct ufo_remote_opts *o)
{
	/* Only whether the name exists: not the chunk size asked for. */
	struct ufo_remote_opts probe = *o;
	int rc;

	probe.chunk_size = 0;
	*mute = true;
	rc = open_replicated(g, ctx, name, &probe);
	*mute = false;
	if (!rc)
		return fail(-EEXIST, "create '%s' on %s", name, g->servers);
	if (rc == -EINVAL)
		return fail(-EEXIST, "create '%s': a server of %s has an "
			    "object of that name that is not replicated",
			    name, g->servers);
	if (rc != -ENOENT)
		return fail(rc, "create '%s' on %s", name, g->servers);
	o->flags |= UFO_REMOTE_CREATE;
	rc = open_replicated(g, ctx, name, o);
	if (rc == -EINVAL)
		return fail(rc, "create '%s' on %s: the library refused the "
			    "placement (--group must be a multiple of the "
			    "chunk size, and fit 32 bits)", name, g->servers);
	if (rc)
		return fail(rc, "create '%s' on %s", name, g->servers);
	return EXIT_OK;
}

int create_replicated(struct ufoctl *g, const char *name, uint64_t size,
		      uint32_t chunk, const struct replication *r)
{
	struct ufo_remote_opts o;
	struct ufo_ctx *ctx;
	struct members m;
	bool mute = false;
	int rc;

	if ((rc = ufoctl_cluster_connect(g)))
		return rc;
	if ((rc = members_get(g, &m))) {
		free(m.v);
		return fail(rc, "create: servers of %s", g->servers);
	}
	free(m.v);
	/* Placed over the servers up now; one down joins by a rebalance. */
	if (r->replicas > m.up)
		return fail(-EINVAL, "create '%s': --replicas %u, but %u of "
			    "the %u servers of %s are up", name, r->replicas,
			    m.up, m.n, g->servers);
	/* $UFO_SERVERS is read by ufo_remote_open (open_replicated) on
	 * this thread; set before any library thread exists. */
	if (setenv("UFO_SERVERS", g->servers, 1))
		return fail(-errno, "create: setting $UFO_SERVERS");
	if ((rc = create_ctx(&mute, &ctx)))
		return rc;
	ufo_remote_opts_init(&o);
	o.secret_file = g->secret_file;
	o.timeout_ms = g->timeout_ms;
	o.create_size = size;
	o.chunk_size = chunk;
	o.replicas = r->replicas;
	o.write_quorum = r->write_quorum;
	o.group_size = r->group_size;
	rc = create_on(g, ctx, &mute, name, &o);
	ufo_ctx_destroy(ctx);
	return rc;
}
