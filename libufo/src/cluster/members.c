/* SPDX-License-Identifier: MIT */
/*
 * Clusters of ufo-servers: the server list, its members and their health
 * (docs/cluster.md is the model, with the proofs of what R and W give).
 *
 * The server list names members; each member's node id (NODE) is what
 * placement hashes, so a server keeps its data when its address changes.
 * A health thread probes every member each second; a request that fails
 * with a connection error marks its member down at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "cluster/cluster.h"

void node_hex(const uint8_t node[WIRE_NODE_ID], char out[33])
{
	for (int i = 0; i < WIRE_NODE_ID; i++)
		snprintf(out + 2 * i, 3, "%02x", node[i]);
}

/* ---- members */

bool member_up(struct ufo_cluster *c, int i)
{
	return i >= 0 && atomic_load_explicit(&c->m[i].up, memory_order_acquire);
}

void member_failed(struct ufo_cluster *c, int i, int err)
{
	struct member *m = &c->m[i];

	atomic_fetch_add(&m->failures, 1);
	if (err == -ENOMEM || !remote_transient(err) || err == -ESTALE ||
	    err == -EBUSY)
		return;
	if (atomic_exchange(&m->up, false) && c->ctx)
		log_warn(c->ctx, "cluster: server %s down: %s", m->server,
			 strerror(-err));
}

int member_of_node(struct ufo_cluster *c, const uint8_t node[WIRE_NODE_ID])
{
	int found = -1;

	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->n && found < 0; i++)
		if (c->m[i].known && !c->m[i].dup &&
		    !memcmp(c->m[i].node, node, WIRE_NODE_ID))
			found = (int)i;
	pthread_mutex_unlock(&c->lock);
	return found;
}

/* Records what NODE answered; a second address of a known node is a
 * duplicate and never used. */
static void member_learn(struct ufo_cluster *c, int i, const struct wire_node *n)
{
	struct member *m = &c->m[i];
	bool dup = false;

	pthread_mutex_lock(&c->lock);
	for (unsigned j = 0; j < c->n; j++)
		if ((int)j != i && c->m[j].known && !c->m[j].dup &&
		    !memcmp(c->m[j].node, n->id, WIRE_NODE_ID))
			dup = true;
	memcpy(m->node, n->id, WIRE_NODE_ID);
	m->known = true;
	m->dup = dup;
	pthread_mutex_unlock(&c->lock);
	atomic_store(&m->objects, n->objects);
	if (!dup && !atomic_exchange(&m->up, true) && c->ctx)
		log_info(c->ctx, "cluster: server %s up", m->server);
}

/* One health round: NODE to every member at once. */
static void probe_all(struct ufo_cluster *c, bool all)
{
	uint8_t n[WIRE_MAX_MEMBERS][sizeof(struct wire_node)];
	struct client_call k[WIRE_MAX_MEMBERS];
	struct client_op *op[WIRE_MAX_MEMBERS] = { 0 };
	uint64_t now = now_ns();

	for (unsigned i = 0; i < c->n; i++) {
		struct member *m = &c->m[i];

		if (m->dup || (!all && now < m->next_probe_ns))
			continue;
		m->next_probe_ns = now + CLUSTER_PROBE_MS * 1000000ull;
		k[i] = (struct client_call){ .op = WIRE_NODE, .fixed = n[i],
					     .fixed_len = sizeof(n[i]) };
		op[i] = client_start(m->cl, &k[i]);
		if (!op[i])
			member_failed(c, (int)i, -ENOMEM);
	}
	for (unsigned i = 0; i < c->n; i++) {
		struct wire_node node;
		int err;

		if (!op[i])
			continue;
		err = client_finish(op[i]);
		if (!err)
			err = wire_get_node(n[i], sizeof(n[i]), &node);
		if (err < 0)
			member_failed(c, (int)i, err);
		else
			member_learn(c, (int)i, &node);
	}
}

static void *health_main(void *arg)
{
	struct ufo_cluster *c = arg;

	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		struct timespec ts;

		pthread_mutex_unlock(&c->lock);
		probe_all(c, false);
		pthread_mutex_lock(&c->lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += CLUSTER_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!c->stop)
			pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- the server list */

static int add_member(struct ufo_cluster *c, const char *scheme,
		      const char *host, uint16_t port)
{
	struct member *m;
	bool v6 = strchr(host, ':') != NULL;

	if (c->n == WIRE_MAX_MEMBERS)
		return -E2BIG;
	m = &c->m[c->n];
	snprintf(m->server, sizeof(m->server), v6 ? "[%s]:%u" : "%s:%u", host,
		 port);
	for (unsigned i = 0; i < c->n; i++)
		if (!strcmp(c->m[i].server, m->server))
			return 0; /* listed twice */
	snprintf(m->url, sizeof(m->url), v6 ? "%s://[%s]:%u" : "%s://%s:%u",
		 scheme, host, port);
	c->n++;
	return 0;
}

/* host's addresses (NULL when it does not resolve), counted per family. */
static struct addrinfo *resolve(const char *host, unsigned *n4, unsigned *n6)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *p;

	*n4 = *n6 = 0;
	if (getaddrinfo(host, NULL, &hints, &res))
		return NULL;
	for (p = res; p; p = p->ai_next) {
		*n4 += p->ai_family == AF_INET;
		*n6 += p->ai_family == AF_INET6;
	}
	return res;
}

/* A name that resolves to several addresses of one family (a headless
 * Service) is one member per address; a literal, or a name with one
 * address per family ("localhost"), is one member. */
static int add_host(struct ufo_cluster *c, const char *scheme,
		    const struct net_addr *a)
{
	char ip[INET6_ADDRSTRLEN];
	unsigned n4, n6;
	struct addrinfo *res = resolve(a->host, &n4, &n6), *p;
	int rc = 0;

	if (n4 < 2 && n6 < 2) {
		if (res)
			freeaddrinfo(res);
		return add_member(c, scheme, a->host, a->port);
	}
	for (p = res; p && !rc; p = p->ai_next) {
		const void *sa = p->ai_family == AF_INET
			? (const void *)&((struct sockaddr_in *)p->ai_addr)->sin_addr
			: (const void *)&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr;
		if ((p->ai_family == AF_INET && n4 < 2) ||
		    (p->ai_family == AF_INET6 && n6 < 2))
			continue;
		if (inet_ntop(p->ai_family, sa, ip, sizeof(ip)))
			rc = add_member(c, scheme, ip, a->port);
	}
	freeaddrinfo(res);
	return rc;
}

/* "a:1,b:2" after an optional "scheme://"; a trailing "/..." is ignored. */
static int parse_servers(struct ufo_cluster *c, const char *list)
{
	char buf[4096], scheme[16] = "ufo", *save = NULL, *tok;
	const char *sep = strstr(list, "://");
	int rc = 0;

	if (sep) {
		size_t n = (size_t)(sep - list);
		if (n >= sizeof(scheme))
			return -EINVAL;
		memcpy(scheme, list, n);
		scheme[n] = '\0';
		list = sep + 3;
	}
	if (strcmp(scheme, "ufo") && strcmp(scheme, "tcp") &&
	    strcmp(scheme, "rdma") && strcmp(scheme, "tls"))
		return -EINVAL;
	if (snprintf(buf, sizeof(buf), "%s", list) >= (int)sizeof(buf))
		return -EINVAL;
	buf[strcspn(buf, "/")] = '\0';
	for (tok = strtok_r(buf, ",", &save); tok && !rc;
	     tok = strtok_r(NULL, ",", &save)) {
		struct net_addr a;

		if (!*tok || net_parse_hostport(tok, NET_DEFAULT_PORT, &a) ||
		    !a.host[0])
			return -EINVAL;
		rc = add_host(c, scheme, &a);
	}
	return rc ? rc : c->n ? 0 : -EINVAL;
}

static int connect_members(struct ufo_cluster *c)
{
	struct ufo_remote_opts mo = c->opts;
	int first_err = 0;

	/* A request to one member gets a part of the operation's timeout:
	 * spending all of it on a member that stopped answering (a network
	 * partition, not a crash) left no time to try another copy, and the
	 * read failed with SIGBUS while a replica was up
	 * (cluster_testbed_failover). */
	c->timeout_ms = c->opts.timeout_ms ? c->opts.timeout_ms
					   : CLUSTER_DEFAULT_TIMEOUT_MS;
	mo.timeout_ms = c->timeout_ms / CLUSTER_ATTEMPTS_PER_TIMEOUT;
	if (mo.timeout_ms < CLUSTER_MIN_REQUEST_MS)
		mo.timeout_ms = CLUSTER_MIN_REQUEST_MS;
	for (unsigned i = 0; i < c->n; i++) {
		int err, cerr;

		err = client_new(c->m[i].url, &mo, &c->m[i].cl, &cerr);
		if (err)
			return err; /* bad secret file, memory: for all alike */
		if (cerr == -EACCES || cerr == -EPROTONOSUPPORT)
			first_err = first_err ? first_err : cerr;
	}
	return first_err;
}

int ufo_cluster_connect(const char *servers, const struct ufo_remote_opts *opts,
			struct ufo_cluster **out)
{
	return cluster_connect(servers, opts, NULL, out);
}

/* ctx (may be NULL): where servers going down and up are logged. */
int cluster_connect(const char *servers, const struct ufo_remote_opts *opts,
		    struct ufo_ctx *ctx, struct ufo_cluster **out)
{
	struct ufo_cluster *c;
	bool any = false;
	int err;

	if (!out)
		return -EINVAL;
	if (!servers)
		servers = getenv("UFO_SERVERS");
	if (!servers)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->ctx = ctx;
	if (opts)
		c->opts = *opts;
	if (c->opts.secret_file) {
		snprintf(c->secret_file, sizeof(c->secret_file), "%s",
			 c->opts.secret_file);
		c->opts.secret_file = c->secret_file;
	}
	err = parse_servers(c, servers);
	if (!err)
		err = connect_members(c);
	if (!err) {
		probe_all(c, true);
		for (unsigned i = 0; i < c->n; i++)
			any |= member_up(c, (int)i);
		err = any ? 0 : -EHOSTDOWN;
	}
	if (!err) {
		err = -pthread_create(&c->health, NULL, health_main, c);
		c->health_on = !err;
	}
	if (err) {
		ufo_cluster_close(c);
		return err;
	}
	*out = c;
	return 0;
}

void ufo_cluster_close(struct ufo_cluster *c)
{
	if (!c)
		return;
	if (c->health_on) {
		pthread_mutex_lock(&c->lock);
		c->stop = true;
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->health, NULL);
	}
	for (unsigned i = 0; i < c->n; i++)
		ufo_client_close(c->m[i].cl);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

int ufo_cluster_members(struct ufo_cluster *c, struct ufo_cluster_member *out,
			unsigned max)
{
	unsigned n = 0;

	if (!c || (max && !out))
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->n; i++) {
		struct member *m = &c->m[i];
		struct ufo_cluster_member *u = &out[n];

		if (m->dup)
			continue;
		if (n < max) {
			memset(u, 0, sizeof(*u));
			snprintf(u->server, sizeof(u->server), "%s", m->server);
			if (m->known)
				node_hex(m->node, u->node_id);
			u->up = atomic_load(&m->up);
			u->objects = atomic_load(&m->objects);
			u->failures = atomic_load(&m->failures);
		}
		n++;
	}
	pthread_mutex_unlock(&c->lock);
	return (int)n;
}

/* Whether host[:port] (len bytes) resolves to several addresses of one
 * family, as a headless Service's name does. */
static bool many_addresses(const char *hostport, size_t len)
{
	struct addrinfo *res;
	struct net_addr a;
	char buf[NET_MAX_HOST + 16];
	unsigned n4, n6;

	if (len >= sizeof(buf))
		return false;
	memcpy(buf, hostport, len);
	buf[len] = '\0';
	if (net_parse_hostport(buf, NET_DEFAULT_PORT, &a) ||
	    !(res = resolve(a.host, &n4, &n6)))
		return false;
	freeaddrinfo(res);
	return n4 > 1 || n6 > 1;
}

/* "scheme://a,b/name", "scheme:///name" ($UFO_SERVERS), or a host name
 * with several addresses: the servers part. */
bool cluster_url(const char *url, char *servers, size_t cap, char *name,
		 size_t name_cap)
{
	const char *sep = strstr(url, "://"), *hosts, *slash;
	size_t n;

	if (!sep)
		return false;
	hosts = sep + 3;
	slash = strchr(hosts, '/');
	if (!slash)
		return false;
	n = (size_t)(slash - hosts);
	if (n && !memchr(hosts, ',', n) && !many_addresses(hosts, n))
		return false;
	if (snprintf(name, name_cap, "%s", slash + 1) >= (int)name_cap)
		return false;
	if (!n) {
		const char *env = getenv("UFO_SERVERS");
		if (!env)
			return false;
		return snprintf(servers, cap, "%.*s%s",
				(int)(sep + 3 - url), url,
				strstr(env, "://") ? strstr(env, "://") + 3 : env) <
		       (int)cap;
	}
	return snprintf(servers, cap, "%.*s", (int)(slash - url), url) <
	       (int)cap;
}
