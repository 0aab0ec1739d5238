/* SPDX-License-Identifier: MIT */
/*
 * The backend of replicated objects: fetch and store through the quorum
 * reads and writes of quorum.c (reads on the context's I/O workers, as
 * they block; stores sent without waiting),
 * retried by the engine with backend/retry.c's policy; opening (and
 * creating) an object on a cluster.
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

#include "cluster/cluster.h"

/* ---- the backend */

/* A quorum read blocks on several servers: it runs on one of the
 * context's I/O workers, one attempt per job (the engine retries); so does
 * a store whose targets' ids must be looked up first. */
struct cluster_job {
	struct ufo_job job;
	struct cobj *o;
	struct ufo_io *io;
};

static void cluster_job_run(struct ufo_job *job)
{
	struct cluster_job *cj = ufo_container_of(job, struct cluster_job, job);
	struct ufo_io *io = cj->io;
	int err;

	/* One version for all attempts of a store: a retry that lands where
	 * an earlier attempt did changes nothing there. */
	if (io->store && !io->tag)
		io->tag = hlc_next();
	err = io->store ? cluster_write_once(cj->o, io->start, io->len,
					     io->buf, io->tag)
			: cluster_read_once(cj->o, io->start, io->len, io->buf);
	free(cj);
	io_complete(io, err);
}

static void cluster_submit(struct ufo_obj *obj, struct ufo_io *io)
{
	struct cluster_job *cj;

	/* A store goes out at once to its targets; a read (versions, then
	 * data, possibly from several members) and a store whose ids are
	 * not known yet wait on a worker. */
	if (io->store) {
		if (!io->tag)
			io->tag = hlc_next();
		if (cluster_write_submit(obj_backend_data(obj), io) != -EAGAIN)
			return;
	}
	cj = malloc(sizeof(*cj));

	if (!cj) {
		io_complete(io, -ENOMEM);
		return;
	}
	*cj = (struct cluster_job){ .job.fn = cluster_job_run,
				    .o = obj_backend_data(obj), .io = io };
	obj_run_blocking(obj, &cj->job);
}

static void cluster_retry(const struct ufo_obj *obj, struct ufo_retry *out)
{
	const struct cobj *o = obj_backend_data(obj);

	/* The whole timeout for the operation: its attempts, a third of it
	 * each at most, go to other copies when a member stops answering. */
	remote_retry_policy(o->c->timeout_ms, out);
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
	if (obj_backend_data(obj))
		cobj_free(obj_backend_data(obj));
}

static unsigned cluster_servers(const struct ufo_obj *obj);
static int cluster_server_status(const struct ufo_obj *obj, unsigned i,
				 struct ufo_client_stats *out);
static const char *cluster_name(const struct ufo_obj *obj);

/* No partial_stores: versions are per block, and a block written in part
 * would carry a new version over bytes this client did not send, taken
 * from whatever copy each home held.  In scan mode a replicated object
 * therefore stores whole chunks, as in the other modes. */
static const struct ufo_backend_ops cluster_backend = {
	.name = "cluster",
	.submit = cluster_submit,
	.retry = cluster_retry,
	.close = cluster_close,
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
	p->flags = opts->flags & (UFO_READ_ONLY | UFO_HUGE);
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
			 (unsigned long long)obj_id(*out), name, o->c->n,
			 o->view.replicas, o->view.quorum);
	return err;
}

static unsigned cluster_servers(const struct ufo_obj *obj)
{
	return ((const struct cobj *)obj_backend_data(obj))->c->n;
}

static int cluster_server_status(const struct ufo_obj *obj, unsigned i,
				 struct ufo_client_stats *out)
{
	struct ufo_cluster *c = ((const struct cobj *)obj_backend_data(obj))->c;

	if (i >= c->n || c->m[i].dup || ufo_client_status(c->m[i].cl, out))
		return -ENOENT;
	snprintf(out->server, sizeof(out->server), "%s", c->m[i].server);
	if (!member_up(c, (int)i))
		out->connected = 0; /* down, whatever its sockets say */
	return 0;
}

static const char *cluster_name(const struct ufo_obj *obj)
{
	return ((const struct cobj *)obj_backend_data(obj))->name;
}

