/* SPDX-License-Identifier: MIT */
/*
 * ufoctl: copying between a local file and a server object.
 *
 * The object is cut into TRANSFER_PIECE pieces that TRANSFER_THREADS worker
 * threads claim in order from a shared counter; each does a blocking
 * ufo_client_read/write of its piece, so that many requests are in flight
 * and the client pipelines them over its connections.  A single thread would
 * wait a full round trip (and, for writes, the server's fsync) per piece.
 * The main thread only draws progress.  The first error stops every worker
 * after its current piece and is reported once, with the offset.
 *
 * A get into a pipe cannot write at offsets: there the pieces are still
 * fetched concurrently, but each worker waits for its turn to write, so at
 * most TRANSFER_THREADS pieces are buffered.  The worker holding the lowest
 * unwritten piece never waits, so the copy always progresses.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ufoctl.h"

#define SPARSE_BLOCK 4096       /* granularity of holes left by get */
#define PROGRESS_TICK_NS 100000000L /* main thread wakes this often */
#define NO_OFFSET UINT64_MAX

struct transfer {
	struct ufoctl *g;
	const struct ufo_remote_info *info;
	int fd;
	const char *path;
	uint64_t len;     /* bytes to copy, from offset 0 */
	bool put;         /* local → object; else object → local */
	enum get_output output; /* get: how fd is written */
	atomic_uint_least64_t next; /* offset of the next unclaimed piece */
	atomic_uint_least64_t done; /* bytes copied */
	atomic_bool failed;

	pthread_mutex_t lock; /* guards the fields below */
	pthread_cond_t exited;
	pthread_cond_t turn;  /* GET_STREAM: written advanced, or an error */
	unsigned running;     /* workers not yet exited */
	uint64_t written;     /* GET_STREAM: bytes written to fd, in order */
	int err;              /* the first error, -errno */
	uint64_t err_offset;  /* NO_OFFSET when the error is not about data */
	char err_what[384];
	char err_server[300]; /* the server's explanation, or "" */
};

/* Records the first failure; later ones are consequences or duplicates. */
/* remote: the error is from a client request of this thread, whose
 * explanation from the server (if any) is kept. */
static void __attribute__((format(printf, 5, 6)))
transfer_fail(struct transfer *t, int err, uint64_t offset, bool remote,
	      const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&t->lock);
	if (!t->err) {
		t->err = err;
		t->err_offset = offset;
		snprintf(t->err_server, sizeof(t->err_server), "%s",
			 remote ? ufo_client_last_error() : "");
		va_start(ap, fmt);
		vsnprintf(t->err_what, sizeof(t->err_what), fmt, ap);
		va_end(ap);
	}
	pthread_cond_broadcast(&t->turn);
	pthread_mutex_unlock(&t->lock);
	atomic_store(&t->failed, true);
}

/* pread/pwrite of exactly len bytes: 0, -errno, or -ENODATA at EOF. */
static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		buf = (char *)buf + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf = (const char *)buf + n;
		len -= (size_t)n;
	}
	return 0;
}

/* GET_STREAM: writes piece [off, off + len) once all before it are
 * written.  0, -errno, or -ECANCELED when another worker failed. */
static int write_in_order(struct transfer *t, const void *buf, size_t len,
			  uint64_t off)
{
	int rc;

	pthread_mutex_lock(&t->lock);
	while (t->written != off && !t->err)
		pthread_cond_wait(&t->turn, &t->lock);
	rc = t->err ? -ECANCELED : 0;
	pthread_mutex_unlock(&t->lock);
	if (rc)
		return rc;
	rc = write_full(t->fd, buf, len);
	pthread_mutex_lock(&t->lock);
	if (!rc)
		t->written += len;
	pthread_cond_broadcast(&t->turn);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf = (const char *)buf + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static bool is_zero(const unsigned char *p, size_t len)
{
	return len == 0 || (p[0] == 0 && !memcmp(p, p + 1, len - 1));
}

/* Writes the non-zero SPARSE_BLOCK runs of buf; the file already reads as
 * zeros there (it was truncated to the object's size), so holes stay. */
static int pwrite_sparse(int fd, const unsigned char *buf, size_t len,
			 uint64_t off)
{
	size_t run = 0, pos = 0;

	while (pos < len) {
		size_t n = len - pos < SPARSE_BLOCK ? len - pos : SPARSE_BLOCK;

		if (is_zero(buf + pos, n)) {
			int rc = pwrite_full(fd, buf + run, pos - run,
					     off + run);
			if (rc)
				return rc;
			run = pos + n;
		}
		pos += n;
	}
	return pwrite_full(fd, buf + run, len - run, off + run);
}

static int put_piece(struct transfer *t, void *buf, uint64_t off, size_t n)
{
	int rc = pread_full(t->fd, buf, n, off);

	if (rc == -ENODATA) {
		transfer_fail(t, -EIO, off, false, "read %s (the file shrank)",
			      t->path);
		return rc;
	}
	if (rc) {
		transfer_fail(t, rc, off, false, "read %s", t->path);
		return rc;
	}
	rc = ufo_client_write(t->g->client, t->info->id, off, buf, n);
	if (rc)
		transfer_fail(t, rc, off, true, "write to object '%s'",
			      t->info->name);
	return rc;
}

static int get_piece(struct transfer *t, void *buf, uint64_t off, size_t n)
{
	int rc = ufo_client_read(t->g->client, t->info->id, off, buf, n);

	if (rc) {
		transfer_fail(t, rc, off, true, "read from object '%s'",
			      t->info->name);
		return rc;
	}
	switch (t->output) {
	case GET_SPARSE: rc = pwrite_sparse(t->fd, buf, n, off); break;
	case GET_STREAM: rc = write_in_order(t, buf, n, off); break;
	default: rc = pwrite_full(t->fd, buf, n, off); break;
	}
	if (rc && rc != -ECANCELED)
		transfer_fail(t, rc, off, false, "write %s", t->path);
	return rc;
}

static void *transfer_worker(void *arg)
{
	struct transfer *t = arg;
	void *buf = aligned_alloc(SPARSE_BLOCK, TRANSFER_PIECE);

	if (!buf)
		transfer_fail(t, -ENOMEM, NO_OFFSET, false,
			      "allocate a transfer buffer");
	while (buf && !atomic_load(&t->failed)) {
		uint64_t off = atomic_fetch_add(&t->next, TRANSFER_PIECE);
		size_t n;

		if (off >= t->len)
			break;
		n = t->len - off < TRANSFER_PIECE ? (size_t)(t->len - off)
						  : TRANSFER_PIECE;
		if (t->put ? put_piece(t, buf, off, n)
			   : get_piece(t, buf, off, n))
			break;
		atomic_fetch_add(&t->done, n);
	}
	free(buf);
	pthread_mutex_lock(&t->lock);
	t->running--;
	pthread_cond_signal(&t->exited);
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

static void deadline_after(struct timespec *ts, long ns)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_nsec += ns;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Waits for the workers, redrawing progress every PROGRESS_TICK_NS. */
static void transfer_wait(struct transfer *t, struct progress *p)
{
	struct timespec ts;

	pthread_mutex_lock(&t->lock);
	while (t->running) {
		deadline_after(&ts, PROGRESS_TICK_NS);
		pthread_cond_timedwait(&t->exited, &t->lock, &ts);
		pthread_mutex_unlock(&t->lock);
		progress_update(p, atomic_load(&t->done));
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
}

static unsigned start_workers(struct transfer *t, pthread_t *threads)
{
	unsigned started = 0;

	for (unsigned i = 0; i < TRANSFER_THREADS; i++) {
		int rc;

		pthread_mutex_lock(&t->lock);
		t->running++;
		pthread_mutex_unlock(&t->lock);
		rc = pthread_create(&threads[started], NULL, transfer_worker,
				    t);
		if (rc) {
			pthread_mutex_lock(&t->lock);
			t->running--;
			pthread_mutex_unlock(&t->lock);
			if (!started)
				transfer_fail(t, -rc, NO_OFFSET, false,
					      "start a transfer thread");
			break;
		}
		started++;
	}
	return started;
}

static int transfer_init(struct transfer *t)
{
	pthread_condattr_t attr;
	int rc;

	atomic_init(&t->next, 0);
	atomic_init(&t->done, 0);
	atomic_init(&t->failed, false);
	t->running = 0;
	t->written = 0;
	t->err = 0;
	rc = pthread_condattr_init(&attr);
	if (!rc)
		rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (!rc)
		rc = pthread_cond_init(&t->exited, &attr);
	if (!rc)
		rc = pthread_cond_init(&t->turn, NULL);
	pthread_condattr_destroy(&attr);
	if (!rc)
		rc = pthread_mutex_init(&t->lock, NULL);
	return -rc;
}

static int transfer_report(const struct transfer *t)
{
	char offset[48] = "";

	if (t->err_offset != NO_OFFSET)
		snprintf(offset, sizeof(offset), " at offset %llu",
			 (unsigned long long)t->err_offset);
	return fail_detail(t->err, t->err_server, "%s%s", t->err_what,
			   offset);
}

static int transfer_run(struct transfer *t)
{
	pthread_t threads[TRANSFER_THREADS];
	struct progress p;
	char label[300];
	unsigned started;
	int rc = transfer_init(t);

	if (rc)
		return fail(rc, "set up the transfer");
	snprintf(label, sizeof(label), "%s %s", t->put ? "put" : "get",
		 t->info->name);
	progress_init(&p, label, t->len, t->g->quiet);
	started = start_workers(t, threads);
	transfer_wait(t, &p);
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	progress_finish(&p, atomic_load(&t->done), !t->err);
	pthread_cond_destroy(&t->exited);
	pthread_cond_destroy(&t->turn);
	pthread_mutex_destroy(&t->lock);
	return t->err ? transfer_report(t) : EXIT_OK;
}

int transfer_put(struct ufoctl *g, int fd, const char *path,
		 const struct ufo_remote_info *info, uint64_t len)
{
	struct transfer t = {
		.g = g, .info = info, .fd = fd, .path = path, .len = len,
		.put = true,
	};

	return transfer_run(&t);
}

int transfer_get(struct ufoctl *g, int fd, const char *path,
		 const struct ufo_remote_info *info, enum get_output output)
{
	struct transfer t = {
		.g = g, .info = info, .fd = fd, .path = path,
		.len = info->size, .put = false, .output = output,
	};

	return transfer_run(&t);
}
