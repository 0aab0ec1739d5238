/* SPDX-License-Identifier: MIT */
/*
 * Placement of a replicated object: its view (epoch, R, W, group size,
 * member node ids), rendezvous ranking of the members for each group, and
 * the object's id on each member.
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
		.epoch = v->epoch, .group_size = v->group_size,
		.replicas = (uint8_t)v->replicas,
		.write_quorum = (uint8_t)v->quorum,
		.nmembers = (uint16_t)v->n,
	};
	uint8_t buf[sizeof(struct wire_id) + sizeof(w)];
	struct client_call k = { .op = WIRE_PLACE, .p1 = buf, .l1 = sizeof(buf),
				 .p2 = v->nodes,
				 .l2 = (size_t)v->n * WIRE_NODE_ID };
	int off = wire_put_id(buf, sizeof(buf), &(struct wire_id){ .id = id });

	wire_put_placement(buf + off, sizeof(buf) - (size_t)off, &w);
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
	uint8_t id[sizeof(struct wire_id)], raw[sizeof(w)];
	struct client_call k = { .op = WIRE_PLACEMENT, .p1 = id,
				 .l1 = sizeof(id), .fixed = raw,
				 .fixed_len = sizeof(raw), .data = v->nodes,
				 .data_cap = sizeof(v->nodes) };
	int err = client_open(o->c->m[i].cl, o->name, info);

	if (err)
		return err;
	wire_put_id(id, sizeof(id), &(struct wire_id){ .id = info->id });
	err = client_call_sync(o->c->m[i].cl, &k);
	if (!err)
		err = wire_get_placement(raw, sizeof(raw), &w);
	if (err < 0)
		return err;
	v->epoch = w.epoch;
	v->group_size = w.group_size;
	v->replicas = w.replicas;
	v->quorum = w.write_quorum;
	v->n = w.nmembers;
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

