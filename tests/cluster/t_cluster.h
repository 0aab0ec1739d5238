/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the cluster tests: several ufo-server children on loopback
 * sharing one secret (each with its own data directory, from t_remote.h's
 * t_server), the URL naming them all, and whole-object pattern checks
 * through a UFO.
 */
#ifndef T_CLUSTER_H
#define T_CLUSTER_H

#include "../remote/t_remote.h"

#define T_NSRV_MAX 5

static struct t_server t_srvs[T_NSRV_MAX];
static unsigned t_nsrv;

static void t_cluster_atexit(void)
{
	for (unsigned i = 0; i < t_nsrv; i++) {
		t_server_reap(&t_srvs[i], SIGKILL);
		if (t_srvs[i].root[0] && !getenv("T_KEEP_DIR"))
			t_rm_rf(t_srvs[i].root);
	}
}

/* Prepares and starts server i (the first one's secret is everyone's). */
static inline void t_cluster_add(unsigned i)
{
	const char *bin = getenv("UFO_SERVER");

	assert_true(i < T_NSRV_MAX);
	assert_int_equal(t_server_init(&t_srvs[i], bin), 0);
	if (i)
		snprintf(t_srvs[i].secret, sizeof(t_srvs[i].secret), "%s",
			 t_srvs[0].secret);
	assert_int_equal(t_server_start(&t_srvs[i]), 0);
	if (i >= t_nsrv)
		t_nsrv = i + 1;
}

/* Skips without a server binary, then starts n servers. */
static inline void t_cluster_setup(unsigned n)
{
	const char *bin = getenv("UFO_SERVER");

	t_setup();
	unsetenv("UFO_SECRET_FILE");
	unsetenv("UFO_SERVERS");
	if (!bin || !*bin || access(bin, X_OK)) {
		fprintf(stderr, "skip: no ufo-server (UFO_SERVER=%s)\n",
			bin ? bin : "(unset)");
		exit(T_EXIT_SKIP);
	}
	signal(SIGPIPE, SIG_IGN);
	atexit(t_cluster_atexit);
	for (unsigned i = 0; i < n; i++)
		t_cluster_add(i);
}

/* "ufo://127.0.0.1:P1,127.0.0.1:P2,.../name" over the first n servers. */
static inline const char *t_cluster_url(unsigned n, const char *name)
{
	static _Thread_local char buf[T_URL_MAX * 2];
	size_t len = (size_t)snprintf(buf, sizeof(buf), "%s://", t_scheme());

	for (unsigned i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s:%u",
					i ? "," : "", t_host(),
					(unsigned)t_srvs[i].port);
	snprintf(buf + len, sizeof(buf) - len, "/%s", name ? name : "");
	return buf;
}

static inline void t_cluster_opts(struct ufo_remote_opts *o, unsigned timeout)
{
	ufo_remote_opts_init(o);
	o->secret_file = t_srvs[0].secret;
	o->timeout_ms = timeout ? timeout : T_REMOTE_TIMEOUT_MS;
}

/* Opens (creating when size is not 0) a replicated object over the first
 * n servers. */
static inline struct ufo_obj *t_cluster_obj(struct ufo_ctx *ctx, unsigned n,
					    const char *name, uint64_t size,
					    size_t chunk, uint64_t group,
					    unsigned replicas, unsigned timeout)
{
	struct ufo_remote_opts o;
	struct ufo_obj *obj = NULL;
	int rc;

	t_cluster_opts(&o, timeout);
	if (size) {
		o.flags |= UFO_REMOTE_CREATE;
		o.create_size = size;
	}
	o.chunk_size = chunk;
	o.group_size = group;
	o.replicas = replicas;
	rc = ufo_remote_open(ctx, t_cluster_url(n, name), &o, &obj);
	if (rc)
		fprintf(stderr, "ufo_remote_open %s: %s\n",
			t_cluster_url(n, name), strerror(-rc));
	assert_int_equal(rc, 0);
	assert_non_null(obj);
	return obj;
}

static inline struct ufo_cluster *t_cluster(unsigned n)
{
	struct ufo_remote_opts o;
	struct ufo_cluster *c = NULL;
	char list[T_URL_MAX * 2];

	t_cluster_opts(&o, 0);
	snprintf(list, sizeof(list), "%s", t_cluster_url(n, NULL));
	assert_int_equal(ufo_cluster_connect(list, &o, &c), 0);
	return c;
}

/* Fills every word of obj's body with pattern seed. */
static inline void t_cluster_fill(struct ufo_obj *obj, uint64_t seed)
{
	t_fill(ufo_body(obj), sizeof(uint64_t), seed, 0,
	       ufo_elem_count(obj) / sizeof(uint64_t));
}

/* Index of the first word of obj that is not pattern seed, or -1. */
static inline int64_t t_cluster_check(struct ufo_obj *obj, uint64_t seed)
{
	return t_check_words(ufo_body(obj), ufo_elem_count(obj), seed, 0);
}

/* The object's client sees all n servers up (its health check found
 * the restarted ones). */
static inline bool t_cluster_all_up(struct ufo_obj *obj, unsigned n)
{
	struct ufo_client_stats s;
	char want[32];

	snprintf(want, sizeof(want), "cluster (%u/%u up)", n, n);
	return !ufo_remote_status(obj, &s) && !strcmp(s.server, want);
}

/* A ufo_repair_stats summary line on stderr. */
static inline void t_repair_print(const char *what,
				  const struct ufo_repair_stats *s)
{
	fprintf(stderr, "%s: %llu objects, %llu/%llu groups, %llu moved "
		"(%llu replicas), %llu blocks copied (%llu bytes), %llu "
		"discarded, %llu hints (%llu dropped), %llu errors\n",
		what ? what : "all",
		(unsigned long long)s->objects,
		(unsigned long long)s->groups_done,
		(unsigned long long)s->groups,
		(unsigned long long)s->groups_moved,
		(unsigned long long)s->replicas_moved,
		(unsigned long long)s->blocks_copied,
		(unsigned long long)s->bytes_copied,
		(unsigned long long)s->blocks_discarded,
		(unsigned long long)s->hints,
		(unsigned long long)s->hints_dropped,
		(unsigned long long)s->errors);
}

#endif /* T_CLUSTER_H */
