/* SPDX-License-Identifier: MIT */
/*
 * Clusters of ufo-servers and the backend of replicated objects
 * (docs/cluster.md is the model, with the proofs of what R and W give).
 *
 * Membership: the server list names members; each member's node id (NODE)
 * is what placement hashes, so a server keeps its data when its address
 * changes.  A health thread probes every member each second; a request
 * that fails with a connection error marks its member down at once.
 *
 * Reads: the versions of the chunk's blocks are asked of every live home
 * (of every live member when a home is down) and the data is read from a
 * member holding the newest version of each block.  Writes: one version
 * (hlc_next) per writeback, sent to the live homes plus, for each home
 * that is down, the next live member in rendezvous order carrying a hint;
 * done when every target made it durable and they are at least W.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "cluster.h"

/* ---- versions: a hybrid logical clock */

static _Atomic uint64_t hlc_last;

static uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Above the wall clock's reading and every version this process saw, so
 * a write that follows a read of version v (close-to-open) gets a higher
 * version even if this host's clock is behind the writer's of v. */
uint64_t hlc_next(void)
{
	uint64_t old = atomic_load(&hlc_last), now = wall_ns(), next;

	do
		next = now > old ? now : old + 1;
	while (!atomic_compare_exchange_weak(&hlc_last, &old, next));
	return next;
}

void hlc_observe(uint64_t v)
{
	uint64_t old = atomic_load(&hlc_last);

	while (v > old && !atomic_compare_exchange_weak(&hlc_last, &old, v))
		;
}

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
	atomic_store(&m->objects, le64toh(n->objects));
	if (!dup && !atomic_exchange(&m->up, true) && c->ctx)
		log_info(c->ctx, "cluster: server %s up", m->server);
}

/* One health round: NODE to every member at once. */
static void probe_all(struct ufo_cluster *c, bool all)
{
	struct wire_node n[WIRE_MAX_MEMBERS];
	struct client_call k[WIRE_MAX_MEMBERS];
	struct client_op *op[WIRE_MAX_MEMBERS] = { 0 };
	uint64_t now = now_ns();

	for (unsigned i = 0; i < c->n; i++) {
		struct member *m = &c->m[i];

		if (m->dup || (!all && now < m->next_probe_ns))
			continue;
		m->next_probe_ns = now + CLUSTER_PROBE_MS * 1000000ull;
		k[i] = (struct client_call){ .op = WIRE_NODE, .fixed = &n[i],
					     .fixed_len = sizeof(n[i]) };
		op[i] = client_start(m->cl, &k[i]);
		if (!op[i])
			member_failed(c, (int)i, -ENOMEM);
	}
	for (unsigned i = 0; i < c->n; i++) {
		int err;

		if (!op[i])
			continue;
		err = client_finish(op[i]);
		if (err)
			member_failed(c, (int)i, err);
		else
			member_learn(c, (int)i, &n[i]);
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
	    strcmp(scheme, "rdma"))
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
	int first_err = 0;

	for (unsigned i = 0; i < c->n; i++) {
		int err, cerr;

		err = client_new(c->m[i].url, &c->opts, &c->m[i].cl, &cerr);
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

/* ---- placement */

void cobj_view(struct cobj *o, struct cview *out)
{
	pthread_mutex_lock(&o->lock);
	*out = o->view;
	pthread_mutex_unlock(&o->lock);
}

/* Rendezvous (highest random weight) hashing: each node's score for a
 * group depends only on the node, the object and the group, so adding a
 * node moves exactly the groups where it scores among the top R. */
static uint64_t score(const uint8_t node[WIRE_NODE_ID], uint64_t key,
		      uint64_t g)
{
	return XXH3_64bits_withSeed(node, WIRE_NODE_ID,
				    key ^ (g * 0x9e3779b97f4a7c15ull));
}

void cobj_rank(struct cobj *o, const struct cview *v, uint64_t g,
	       struct rank *out)
{
	uint64_t s[WIRE_MAX_MEMBERS];
	unsigned idx[WIRE_MAX_MEMBERS];

	for (unsigned i = 0; i < v->n; i++) {
		unsigned j = i;

		s[i] = score(v->nodes[i], o->key, g);
		/* insertion sort, highest first; ties by node id */
		while (j > 0 && (s[idx[j - 1]] < s[i] ||
				 (s[idx[j - 1]] == s[i] &&
				  memcmp(v->nodes[idx[j - 1]], v->nodes[i],
					 WIRE_NODE_ID) > 0))) {
			idx[j] = idx[j - 1];
			j--;
		}
		idx[j] = i;
	}
	for (unsigned i = 0; i < v->n; i++) {
		out->node[i] = idx[i];
		out->member[i] = member_of_node(o->c, v->nodes[idx[i]]);
	}
}

int member_place(struct cobj *o, int i, uint64_t id,
			const struct cview *v)
{
	struct wire_placement w = {
		.epoch = htole64(v->epoch), .group_size = htole32(v->group_size),
		.replicas = (uint8_t)v->replicas,
		.write_quorum = (uint8_t)v->quorum,
		.nmembers = htole16((uint16_t)v->n),
	};
	uint8_t buf[sizeof(uint64_t) + sizeof(w)];
	uint64_t le = htole64(id);
	struct client_call k = { .op = WIRE_PLACE, .p1 = buf, .l1 = sizeof(buf),
				 .p2 = v->nodes,
				 .l2 = (size_t)v->n * WIRE_NODE_ID };

	memcpy(buf, &le, sizeof(le));
	memcpy(buf + sizeof(le), &w, sizeof(w));
	return client_call_sync(o->c->m[i].cl, &k);
}

int cobj_id(struct cobj *o, int i, bool create, uint64_t *id)
{
	struct ufo_remote_info info;
	int err;

	pthread_mutex_lock(&o->lock);
	*id = o->ids[i];
	pthread_mutex_unlock(&o->lock);
	if (*id)
		return 0;
	err = client_open(o->c->m[i].cl, o->name, &info);
	if (err == -ENOENT && create) {
		err = ufo_client_create(o->c->m[i].cl, o->name, o->size,
					o->block, &info);
		if (err == -EEXIST) /* another client just made it */
			err = client_open(o->c->m[i].cl, o->name, &info);
	}
	if (err)
		return err;
	*id = info.id;
	if (create) { /* new here: give it the placement before any write */
		struct cview v;

		cobj_view(o, &v);
		err = member_place(o, i, *id, &v);
		if (err)
			return err;
	}
	pthread_mutex_lock(&o->lock);
	o->ids[i] = *id;
	pthread_mutex_unlock(&o->lock);
	return 0;
}

/* PLACEMENT of member i's copy; -ENOENT when it has none. */
static int member_view(struct cobj *o, int i, struct cview *v,
		       struct ufo_remote_info *info)
{
	struct wire_placement w;
	uint64_t id;
	struct client_call k = { .op = WIRE_PLACEMENT, .p1 = &id,
				 .l1 = sizeof(id), .fixed = &w,
				 .fixed_len = sizeof(w), .data = v->nodes,
				 .data_cap = sizeof(v->nodes) };
	int err = client_open(o->c->m[i].cl, o->name, info);

	if (err)
		return err;
	id = htole64(info->id);
	err = client_call_sync(o->c->m[i].cl, &k);
	if (err)
		return err;
	v->epoch = le64toh(w.epoch);
	v->group_size = le32toh(w.group_size);
	v->replicas = w.replicas;
	v->quorum = w.write_quorum;
	v->n = le16toh(w.nmembers);
	if (k.data_len != (size_t)v->n * WIRE_NODE_ID)
		return -EPROTO;
	return 0;
}

int cobj_reload(struct cobj *o)
{
	struct cview best = { 0 }, *v = malloc(sizeof(*v));
	struct ufo_remote_info info, best_info = { 0 };
	bool found = false;
	int err = -EHOSTDOWN;

	if (!v)
		return -ENOMEM;
	for (unsigned i = 0; i < o->c->n; i++) {
		if (!member_up(o->c, (int)i))
			continue;
		err = member_view(o, (int)i, v, &info);
		if (err == -ENOENT)
			continue;
		if (err) {
			member_failed(o->c, (int)i, err);
			continue;
		}
		pthread_mutex_lock(&o->lock);
		o->ids[i] = info.id;
		pthread_mutex_unlock(&o->lock);
		if (!found || v->epoch > best.epoch) {
			best = *v;
			best_info = info;
		}
		found = true;
	}
	free(v);
	if (!found)
		return err == -EHOSTDOWN ? err : -ENOENT;
	pthread_mutex_lock(&o->lock);
	/* size and block never change: set once, before any I/O reads them
	 * without the lock. */
	if (!o->block) {
		o->size = best_info.size;
		o->block = best_info.chunk_size;
	}
	if (best.epoch >= o->view.epoch)
		o->view = best;
	pthread_mutex_unlock(&o->lock);
	return 0;
}

int cobj_init(struct cobj *o, struct ufo_cluster *c, const char *name)
{
	size_t len = strlen(name);

	memset(o, 0, sizeof(*o));
	if (wire_check_name(name, len))
		return -EINVAL;
	o->c = c;
	memcpy(o->name, name, len);
	o->key = XXH3_64bits(name, len);
	pthread_mutex_init(&o->lock, NULL);
	return 0;
}

void cobj_fini(struct cobj *o)
{
	pthread_mutex_destroy(&o->lock);
}

/* ---- requests */

int versions_query(struct cobj *o, const int *m, unsigned n, uint64_t first,
		   uint32_t count, struct vquery *q)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t id;

		q[i] = (struct vquery){ .member = m[i] };
		q[i].v = calloc(count, sizeof(uint64_t));
		if (!q[i].v) {
			q[i].err = -ENOMEM;
			continue;
		}
		q[i].err = cobj_id(o, m[i], false, &id);
		if (q[i].err)
			continue;
		q[i].q = (struct wire_vq){ .id = htole64(id),
					   .offset = htole64(first * o->block),
					   .count = htole32(count) };
		q[i].k = (struct client_call){
			.op = WIRE_VERSIONS, .p1 = &q[i].q, .l1 = sizeof(q[i].q),
			.fixed = &q[i].rep, .fixed_len = sizeof(q[i].rep),
			.data = q[i].v, .data_cap = (size_t)count * 8 };
		q[i].op = client_start(o->c->m[m[i]].cl, &q[i].k);
		if (!q[i].op)
			q[i].err = -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		if (q[i].op) {
			q[i].err = client_finish(q[i].op);
			q[i].op = NULL;
		}
		if (q[i].err == -ENOENT) { /* no copy there: all version 0 */
			memset(q[i].v, 0, (size_t)count * 8);
			q[i].rep.epoch = 0;
			q[i].err = 0;
			continue;
		}
		if (q[i].err)
			continue;
		q[i].rep.epoch = le64toh(q[i].rep.epoch);
		for (uint32_t b = 0; b < count; b++)
			q[i].v[b] = b < le32toh(q[i].rep.count)
					    ? le64toh(q[i].v[b]) : 0;
	}
	return 0;
}

void versions_free(struct vquery *q, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(q[i].v);
}

int member_read(struct cobj *o, int i, uint64_t off, void *buf, size_t len)
{
	struct ufo_client *cl = o->c->m[i].cl;
	char *p = buf;
	uint64_t id;
	int err = cobj_id(o, i, false, &id);

	while (!err && len) {
		size_t n = len < WIRE_MAX_IO ? len : WIRE_MAX_IO;

		err = client_read_direct(cl, id, off, p, n);
		if (err == -EOPNOTSUPP)
			err = ufo_client_read(cl, id, off, p, n);
		off += n;
		p += n;
		len -= n;
	}
	return err;
}

struct vwrite {
	struct client_call k;
	struct wire_vio v;
	struct client_op *op;
};

static struct client_op *vwrite_start(struct cobj *o, int i, uint64_t epoch,
				      uint64_t off, const void *buf,
				      size_t len, uint64_t version,
				      const uint8_t *hint_node,
				      struct vwrite *w, int *err)
{
	uint64_t id;

	*err = cobj_id(o, i, true, &id);
	if (*err)
		return NULL;
	w->v = (struct wire_vio){ .id = htole64(id), .offset = htole64(off),
				  .len = htole32((uint32_t)len),
				  .version = htole64(version),
				  .epoch = htole64(epoch) };
	if (hint_node) {
		w->v.flags = htole32(WIRE_VIO_HINT);
		memcpy(w->v.node, hint_node, WIRE_NODE_ID);
	}
	w->k = (struct client_call){ .op = WIRE_VWRITE, .p1 = &w->v,
				     .l1 = sizeof(w->v), .p2 = buf, .l2 = len };
	w->op = client_start(o->c->m[i].cl, &w->k);
	if (!w->op)
		*err = -ENOMEM;
	return w->op;
}

int member_vwrite(struct cobj *o, int i, uint64_t epoch, uint64_t off,
		  const void *buf, size_t len, uint64_t version,
		  const uint8_t *hint_node)
{
	struct vwrite w;
	int err;

	if (!vwrite_start(o, i, epoch, off, buf, len, version, hint_node, &w,
			  &err))
		return err;
	return client_finish(w.op);
}

/* ---- the backend: reads */

/* Blocks of [off, off + len) (len > 0). */
static uint32_t block_count(const struct cobj *o, uint64_t off, size_t len)
{
	return (uint32_t)((off + len - 1) / o->block - off / o->block + 1);
}

/* Members to ask about group g: the live homes, or every live member of
 * the placement when a home is down.  -EHOSTDOWN when what is up cannot
 * vouch for the newest copy: no home up, or (a home down) W or more
 * members down, so an acknowledged write may sit only on down ones. */
static int read_set(struct cobj *o, const struct cview *v,
		    const struct rank *r, int *q, unsigned *nq, bool *degraded)
{
	unsigned live_homes = 0, down = 0;

	*degraded = false;
	*nq = 0;
	for (unsigned i = 0; i < v->n; i++) {
		bool up = member_up(o->c, r->member[i]);

		down += !up;
		if (i < v->replicas) {
			live_homes += up;
			*degraded |= !up;
		}
	}
	if (!live_homes || (*degraded && down >= v->quorum))
		return -EHOSTDOWN;
	for (unsigned i = 0; i < v->n; i++)
		if (member_up(o->c, r->member[i]) &&
		    (i < v->replicas || *degraded))
			q[(*nq)++] = r->member[i];
	return 0;
}

/* Adds the live non-homes to q (when the homes know nothing of a block:
 * a rebalance may not have moved it yet). */
static void read_set_rest(struct cobj *o, const struct cview *v,
			  const struct rank *r, int *q, unsigned *nq)
{
	for (unsigned i = v->replicas; i < v->n; i++)
		if (member_up(o->c, r->member[i]))
			q[(*nq)++] = r->member[i];
}

struct newest {
	uint64_t *maxv;
	uint32_t count;
};

/* Checks the answers; fills maxv.  An error marks its member down (the
 * caller retries with the others), a foreign epoch reloads the view. */
static int versions_check(struct cobj *o, const struct cview *v,
			  struct vquery *q, unsigned nq, struct newest *nw)
{
	int err = 0;

	for (unsigned i = 0; i < nq; i++) {
		if (q[i].err) {
			member_failed(o->c, q[i].member, q[i].err);
			err = err ? err : q[i].err;
			continue;
		}
		if (q[i].rep.epoch && q[i].rep.epoch != v->epoch)
			err = -ESTALE;
		for (uint32_t b = 0; b < nw->count; b++)
			if (q[i].v[b] > nw->maxv[b])
				nw->maxv[b] = q[i].v[b];
	}
	if (err == -ESTALE)
		cobj_reload(o);
	return err;
}

/* The first member (in q's rank order) holding the newest version of
 * every block in [b0, b1); -1 if none does. */
static int holder(const struct vquery *q, unsigned nq, const struct newest *nw,
		  uint32_t b0, uint32_t b1)
{
	for (unsigned i = 0; i < nq; i++) {
		uint32_t b = b0;

		while (b < b1 && (!nw->maxv[b] || q[i].v[b] == nw->maxv[b]))
			b++;
		if (b == b1)
			return (int)i;
	}
	return -1;
}

/* Copies blocks [b0, b1) of the chunk at off into dst from member src;
 * blocks nobody holds are zeros (a version-0 copy is never trusted). */
static int read_blocks(struct cobj *o, uint64_t off, size_t len, char *dst,
		       const struct vquery *q, unsigned nq,
		       const struct newest *nw)
{
	uint64_t base = off / o->block * o->block;
	int src = holder(q, nq, nw, 0, nw->count), err = 0;

	if (src >= 0)
		err = member_read(o, q[src].member, off, dst, len);
	for (uint32_t b = 0; !err && b < nw->count; b++) {
		uint64_t lo = base + (uint64_t)b * o->block, hi = lo + o->block;
		int h;

		lo = lo < off ? off : lo;
		hi = hi > off + len ? off + len : hi;
		if (!nw->maxv[b]) {
			memset(dst + (lo - off), 0, hi - lo);
			continue;
		}
		if (src >= 0)
			continue;
		h = holder(q, nq, nw, b, b + 1);
		err = h < 0 ? -EIO
			    : member_read(o, q[h].member, lo, dst + (lo - off),
					  hi - lo);
	}
	return err;
}

/* The data of the first live home, read while the versions are asked
 * (one round trip instead of two when that home is up to date, as it is
 * unless it missed writes). */
struct spec {
	struct client_call k;
	struct wire_io io;
	struct client_op *op;
	int err;
};

static void spec_start(struct cobj *o, int member, uint64_t off, size_t len,
		       char *dst, struct spec *sp)
{
	uint64_t id;

	sp->op = NULL;
	sp->err = len > WIRE_MAX_IO ? -E2BIG : cobj_id(o, member, false, &id);
	if (sp->err)
		return;
	sp->io = (struct wire_io){ .id = htole64(id), .offset = htole64(off),
				   .len = htole32((uint32_t)len) };
	sp->k = (struct client_call){ .op = WIRE_READ, .p1 = &sp->io,
				      .l1 = sizeof(sp->io), .data = dst,
				      .data_cap = len };
	sp->op = client_start(o->c->m[member].cl, &sp->k);
	sp->err = sp->op ? 0 : -ENOMEM;
}

static int spec_finish(struct spec *sp, size_t len)
{
	if (sp->op) {
		sp->err = client_finish(sp->op);
		sp->op = NULL;
		if (!sp->err && sp->k.data_len != len)
			sp->err = -EPROTO;
	}
	return sp->err;
}

/* The speculative read is good when its member (q[0]) holds the newest
 * version of every block; blocks nobody holds become zeros. */
static bool spec_usable(struct cobj *o, uint64_t off, size_t len, char *dst,
			const struct vquery *q, const struct newest *nw)
{
	uint64_t base = off / o->block * o->block;

	if (holder(q, 1, nw, 0, nw->count) != 0)
		return false;
	for (uint32_t b = 0; b < nw->count; b++) {
		uint64_t lo = base + (uint64_t)b * o->block, hi = lo + o->block;

		if (nw->maxv[b])
			continue;
		lo = lo < off ? off : lo;
		hi = hi > off + len ? off + len : hi;
		memset(dst + (lo - off), 0, hi - lo);
	}
	return true;
}

static int read_once(struct cobj *o, uint64_t off, size_t len, char *dst)
{
	int qm[WIRE_MAX_MEMBERS];
	struct vquery q[WIRE_MAX_MEMBERS];
	struct rank rank;
	struct newest nw = { .count = block_count(o, off, len) };
	struct spec sp = { .err = -ENODATA };
	unsigned nq, asked;
	bool degraded, unknown = false;
	struct cview v;
	int err;

	cobj_view(o, &v);
	cobj_rank(o, &v, off / v.group_size, &rank);
	if ((err = read_set(o, &v, &rank, qm, &nq, &degraded)))
		return err;
	nw.maxv = calloc(nw.count, sizeof(uint64_t));
	if (!nw.maxv)
		return -ENOMEM;
	if (!degraded)
		spec_start(o, qm[0], off, len, dst, &sp);
	versions_query(o, qm, nq, off / o->block, nw.count, q);
	err = versions_check(o, &v, q, nq, &nw);
	spec_finish(&sp, len);
	for (uint32_t b = 0; b < nw.count; b++)
		unknown |= !nw.maxv[b];
	asked = nq;
	if (!err && !degraded && unknown) {
		read_set_rest(o, &v, &rank, qm, &nq);
		versions_query(o, qm + asked, nq - asked, off / o->block,
			       nw.count, q + asked);
		err = versions_check(o, &v, q + asked, nq - asked, &nw);
	}
	if (!err && (sp.err || !spec_usable(o, off, len, dst, q, &nw)))
		err = read_blocks(o, off, len, dst, q, nq, &nw);
	for (uint32_t b = 0; b < nw.count; b++)
		hlc_observe(nw.maxv[b]);
	versions_free(q, nq);
	free(nw.maxv);
	return err;
}

/* ---- the backend: writes */

struct target {
	int member;
	const uint8_t *hint; /* the home this copy stands in for */
};

/* The live homes, and for each home that is down the next live member in
 * rank order, carrying a hint naming it; with no stand-in left, the hint
 * rides on a live home.  -EHOSTDOWN: no live home, or fewer than W
 * distinct targets. */
static int write_set(struct cobj *o, const struct cview *v,
		     const struct rank *r, struct target *t, unsigned *nt)
{
	const uint8_t *missing[WIRE_MAX_MEMBERS];
	unsigned nmiss = 0, next = v->replicas, distinct;

	*nt = 0;
	for (unsigned i = 0; i < v->replicas; i++) {
		if (member_up(o->c, r->member[i]))
			t[(*nt)++] = (struct target){ r->member[i], NULL };
		else
			missing[nmiss++] = v->nodes[r->node[i]];
	}
	if (!*nt)
		return -EHOSTDOWN;
	distinct = *nt;
	for (unsigned k = 0; k < nmiss; k++) {
		while (next < v->n && !member_up(o->c, r->member[next]))
			next++;
		if (next < v->n) {
			t[(*nt)++] = (struct target){ r->member[next++],
						      missing[k] };
			distinct++;
		} else {
			t[(*nt)++] = (struct target){ t[0].member, missing[k] };
		}
	}
	return distinct < v->quorum ? -EHOSTDOWN : 0;
}

static int write_once(struct cobj *o, uint64_t off, size_t len,
		      const char *src, uint64_t version)
{
	struct target t[2 * WIRE_MAX_MEMBERS];
	struct vwrite w[2 * WIRE_MAX_MEMBERS];
	int errs[2 * WIRE_MAX_MEMBERS];
	struct rank rank;
	struct cview v;
	unsigned nt;
	int err;

	cobj_view(o, &v);
	cobj_rank(o, &v, off / v.group_size, &rank);
	if ((err = write_set(o, &v, &rank, t, &nt)))
		return err;
	for (unsigned i = 0; i < nt; i++)
		vwrite_start(o, t[i].member, v.epoch, off, src, len, version,
			     t[i].hint, &w[i], &errs[i]);
	/* Every target answers before we judge: a failed one is marked
	 * down, and the retry re-plans with a stand-in and a hint for it
	 * (the same version again is a no-op where it landed). */
	for (unsigned i = 0; i < nt; i++) {
		if (w[i].op)
			errs[i] = client_finish(w[i].op);
		if (errs[i]) {
			member_failed(o->c, t[i].member, errs[i]);
			err = err ? err : errs[i];
		}
	}
	if (err == -ESTALE)
		cobj_reload(o);
	return err;
}

/* ---- the backend */

struct cluster_io {
	struct cobj *o;
	uint64_t version; /* of the writeback in progress */
};

static int cluster_io_fn(void *arg, bool write, uint64_t off, char *buf,
			 size_t len)
{
	struct cluster_io *io = arg;

	return write ? write_once(io->o, off, len, buf, io->version)
		     : read_once(io->o, off, len, buf);
}

static int cluster_run(struct ufo_obj *obj, bool write, uint64_t off,
		       void *buf, size_t len)
{
	struct cobj *o = obj->backend_data;
	/* One version for all attempts: a retry that lands where an earlier
	 * attempt did changes nothing there. */
	struct cluster_io cio = { .o = o, .version = write ? hlc_next() : 0 };
	struct remote_io io = {
		.name = o->name, .fn = cluster_io_fn, .arg = &cio,
		.timeout_ms = client_timeout_ms(o->c->m[0].cl),
	};

	return remote_retry(obj, &io, write, off, buf, len);
}

static int cluster_fetch(struct ufo_obj *obj, uint64_t start, uint64_t end,
			 void *dst)
{
	return cluster_run(obj, false, start, dst, (size_t)(end - start));
}

static int cluster_store(struct ufo_obj *obj, uint64_t start, uint64_t end,
			 const void *src)
{
	int err = cluster_run(obj, true, start, (void *)src,
			      (size_t)(end - start));

	if (err)
		STAT_ADD(obj, writeback_errors, 1);
	return err;
}

static void cobj_free(struct cobj *o)
{
	if (o->own_cluster)
		ufo_cluster_close(o->c);
	cobj_fini(o);
	free(o);
}

static void cluster_close(struct ufo_obj *obj)
{
	if (obj->backend_data)
		cobj_free(obj->backend_data);
}

static unsigned cluster_servers(const struct ufo_obj *obj);
static int cluster_server_status(const struct ufo_obj *obj, unsigned i,
				 struct ufo_client_stats *out);
static const char *cluster_name(const struct ufo_obj *obj);

static const struct ufo_backend_ops cluster_backend = {
	.name = "cluster",
	.fetch = cluster_fetch,
	.store = cluster_store,
	.close = cluster_close,
	.parallel = true,
	.remote_name = cluster_name,
	.servers = cluster_servers,
	.server_status = cluster_server_status,
};

/* ---- opening */

/* A new object: created on every member up now, placed over them (epoch
 * 1).  Members down now join it by a rebalance. */
static int cobj_create(struct cobj *o, const struct ufo_remote_opts *opts)
{
	struct cview v = { .epoch = 1 };
	uint64_t id;
	int err = 0;

	o->size = opts->create_size;
	o->block = (uint32_t)(opts->chunk_size ? opts->chunk_size
					       : UFO_DEFAULT_CHUNK_SIZE);
	pthread_mutex_lock(&o->c->lock);
	for (unsigned i = 0; i < o->c->n; i++)
		if (member_up(o->c, (int)i) && o->c->m[i].known &&
		    !o->c->m[i].dup)
			memcpy(v.nodes[v.n++], o->c->m[i].node, WIRE_NODE_ID);
	pthread_mutex_unlock(&o->c->lock);
	if (!v.n)
		return -EHOSTDOWN;
	v.replicas = opts->replicas ? opts->replicas : v.n < 2 ? v.n : 2;
	v.quorum = opts->write_quorum ? opts->write_quorum : v.replicas;
	v.group_size = (uint32_t)(opts->group_size
					  ? opts->group_size
					  : (uint64_t)o->block * CLUSTER_GROUP_CHUNKS);
	/* A group's versions must fit one VERSIONS answer (repair asks for
	 * a whole group at once). */
	if (v.replicas > v.n || v.quorum > v.replicas ||
	    v.group_size % o->block || opts->group_size > UINT32_MAX ||
	    v.group_size / o->block > WIRE_MAX_VERSIONS)
		return -EINVAL;
	pthread_mutex_lock(&o->lock);
	o->view = v;
	pthread_mutex_unlock(&o->lock);
	for (unsigned i = 0; !err && i < o->c->n; i++)
		if (member_up(o->c, (int)i) && !o->c->m[i].dup)
			err = cobj_id(o, (int)i, true, &id);
	return err;
}

static int cobj_params(struct cobj *o, const struct ufo_remote_opts *opts,
		       struct ufo_params *p)
{
	struct cview v;

	cobj_view(o, &v);
	ufo_params_init(p);
	p->elem_size = 1;
	p->elem_count = o->size;
	p->chunk_size = opts->chunk_size ? opts->chunk_size : o->block;
	p->flags = opts->flags & UFO_READ_ONLY;
	/* A chunk is whole blocks (versions are per block) inside one
	 * placement group (one set of homes per fetch or writeback). */
	if (!v.epoch || !v.n || p->chunk_size % o->block ||
	    v.group_size % p->chunk_size)
		return -EINVAL;
	return 0;
}

int cluster_remote_open(struct ufo_ctx *ctx, const char *servers,
			const char *name, const struct ufo_remote_opts *opts,
			struct ufo_obj **out)
{
	struct cobj *o = calloc(1, sizeof(*o));
	struct ufo_params p;
	int err;

	if (!o)
		return -ENOMEM;
	err = cobj_init(o, NULL, name);
	if (!err)
		err = cluster_connect(servers, opts, ctx, &o->c);
	if (err) {
		free(o);
		log_err(ctx, "cluster %s: %s", servers ? servers : "$UFO_SERVERS",
			strerror(-err));
		return err;
	}
	o->own_cluster = true;
	err = cobj_reload(o);
	if (err == -ENOENT && opts->flags & UFO_REMOTE_CREATE)
		err = cobj_create(o, opts);
	if (!err)
		err = cobj_params(o, opts, &p);
	if (err) {
		log_err(ctx, "opening %s on the cluster: %s%s", name,
			strerror(-err),
			err != -EINVAL ? ""
			: !o->view.epoch ? " (an object of that name exists but"
					   " is not replicated)"
			: " (a chunk size that is not whole blocks within a"
			  " placement group)");
		cobj_free(o);
		return err;
	}
	err = obj_create(ctx, &p, &cluster_backend, o, out);
	if (!err)
		log_info(ctx, "object %llu: %s on %u servers, R=%u W=%u",
			 (unsigned long long)(*out)->id, name, o->c->n,
			 o->view.replicas, o->view.quorum);
	return err;
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

static unsigned cluster_servers(const struct ufo_obj *obj)
{
	return ((const struct cobj *)obj->backend_data)->c->n;
}

static int cluster_server_status(const struct ufo_obj *obj, unsigned i,
				 struct ufo_client_stats *out)
{
	struct ufo_cluster *c = ((const struct cobj *)obj->backend_data)->c;

	if (i >= c->n || c->m[i].dup || ufo_client_status(c->m[i].cl, out))
		return -ENOENT;
	snprintf(out->server, sizeof(out->server), "%s", c->m[i].server);
	if (!member_up(c, (int)i))
		out->connected = 0; /* down, whatever its sockets say */
	return 0;
}

static const char *cluster_name(const struct ufo_obj *obj)
{
	return ((const struct cobj *)obj->backend_data)->name;
}
