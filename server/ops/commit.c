/* SPDX-License-Identifier: MIT */
/*
 * Group commit.  Workers pwrite a WRITE's data and hand the request here;
 * the committer takes every request waiting at that moment, fdatasyncs each
 * object they touch once, and answers them all.  While it syncs, new writes
 * queue up for the next batch, so under load one fdatasync covers many
 * writes instead of each write paying for its own.
 *
 * Why one fdatasync covers a write: a request is queued only after its
 * pwrite returned, and the batch is taken after that, so the data is in the
 * page cache before the fdatasync that answers it starts.
 */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "vstore.h"

/* A VWRITE's versions are recorded only now that its data is durable,
 * then the version file is synced once per object (vstore.h: a version
 * never vouches for data that is not on disk). */
static void record_versions(struct request *batch, uint64_t batch_no)
{
	for (struct request *r = batch; r; r = r->next) {
		struct store_obj *o = r->obj;

		if (!r->vpend)
			continue;
		r->rc = vstore_commit(o, r->vpend, r->rc);
		r->vpend = NULL;
		if (r->rc)
			continue;
		if (o->vsync_batch != batch_no) {
			o->vsync_batch = batch_no;
			o->vsync_rc = vstore_sync(o);
		}
		r->rc = o->vsync_rc;
	}
}

/* obj->commit_batch / commit_rc remember, for this batch, whether the
 * object was already synced and how that went.  Only this thread uses
 * them. */
static void sync_batch(struct server *srv, struct request *batch,
		       uint64_t batch_no)
{
	for (struct request *r = batch; r; r = r->next) {
		struct store_obj *o = r->obj;

		if (o->commit_batch != batch_no) {
			o->commit_batch = batch_no;
			o->commit_rc = store_sync(o);
			atomic_fetch_add(&srv->stats.fdatasyncs, 1);
			if (o->commit_rc)
				log_err("object %s: fdatasync: %s", o->name,
					strerror(-o->commit_rc));
		}
		r->rc = o->commit_rc;
	}
	record_versions(batch, batch_no);
}

static void answer_batch(struct server *srv, struct request *batch)
{
	struct request *next;

	for (struct request *r = batch; r; r = next) {
		next = r->next;
		if (request_is_write(r))
			atomic_fetch_add(&srv->stats.writes, 1);
		if (r->rc) {
			server_count(&srv->stats.errors, 1);
			request_fail(r, wire_errno_to_status(r->rc),
				     "fdatasync: %s", strerror(-r->rc));
		} else {
			request_done(r, WIRE_OK, NULL);
		}
	}
}

void commit_run(struct server *srv, struct request *batch, uint64_t batch_no)
{
	unsigned n = 0;

	for (struct request *r = batch; r; r = r->next)
		n++;
	sync_batch(srv, batch, batch_no);
	atomic_fetch_add(&srv->stats.batches, 1);
	log_debug("commit batch %llu: %u requests",
		  (unsigned long long)batch_no, n);
	answer_batch(srv, batch);
}

static void *committer_main(void *arg)
{
	struct server *srv = arg;
	struct request *batch;
	uint64_t batch_no = 0;

	while ((batch = queue_pop(&srv->commit, true)))
		commit_run(srv, batch, ++batch_no);
	return NULL;
}

int committer_start(struct server *srv)
{
	int rc = pthread_create(&srv->committer, NULL, committer_main, srv);

	if (rc)
		log_err("starting the committer: %s", strerror(rc));
	return -rc;
}

/* Called after the workers are joined, so nothing can queue after the
 * committer's last batch. */
void committer_stop(struct server *srv)
{
	queue_stop(&srv->commit);
	pthread_join(srv->committer, NULL);
}

void commit_submit(struct server *srv, struct request *r)
{
	queue_push(&srv->commit, r);
}
