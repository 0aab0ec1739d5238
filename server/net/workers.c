/* SPDX-License-Identifier: MIT */
/* The request queues and the worker threads that drain one of them. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

void queue_init(struct work_queue *q)
{
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	q->head = q->tail = NULL;
	q->stop = false;
}

void queue_push(struct work_queue *q, struct request *r)
{
	r->next = NULL;
	pthread_mutex_lock(&q->lock);
	if (q->tail)
		q->tail->next = r;
	else
		q->head = r;
	q->tail = r;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

/* Stopping lets the queue drain first: a request that was accepted is
 * answered, which is what makes SIGTERM acknowledge in-flight writes. */
struct request *queue_pop(struct work_queue *q, bool all)
{
	struct request *r;

	pthread_mutex_lock(&q->lock);
	while (!q->head && !q->stop)
		pthread_cond_wait(&q->cond, &q->lock);
	r = q->head;
	if (r && all) {
		q->head = q->tail = NULL;
	} else if (r) {
		q->head = r->next;
		if (!q->head)
			q->tail = NULL;
		r->next = NULL;
	}
	pthread_mutex_unlock(&q->lock);
	return r;
}

void queue_stop(struct work_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

static void *worker_main(void *arg)
{
	struct server *srv = arg;
	struct request *r;

	while ((r = queue_pop(&srv->work, false)))
		srv->handlers->run(srv, r);
	return NULL;
}

int workers_start(struct server *srv)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = srv->cfg.workers ? srv->cfg.workers
				      : (unsigned)(cpus > 1 ? cpus : 2);
	int rc;

	srv->workers = calloc(n, sizeof(*srv->workers));
	if (!srv->workers)
		return -ENOMEM;
	for (srv->nworkers = 0; srv->nworkers < n; srv->nworkers++) {
		rc = pthread_create(&srv->workers[srv->nworkers], NULL,
				    worker_main, srv);
		if (rc) {
			log_err("starting worker: %s", strerror(rc));
			return -rc;
		}
	}
	return 0;
}

void workers_stop(struct server *srv)
{
	queue_stop(&srv->work);
	for (unsigned i = 0; i < srv->nworkers; i++)
		pthread_join(srv->workers[i], NULL);
	free(srv->workers);
	srv->workers = NULL;
	srv->nworkers = 0;
}
