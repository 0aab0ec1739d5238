/* SPDX-License-Identifier: MIT */
/*
 * uffd-minimal, the peer several benchmarks measure libufo against: the
 * smallest correct userfaultfd pager.  One mapping registered MISSING, one
 * handler thread that reads a message, fills a chunk buffer (fill: the
 * generator, a pread of a file) and UFFDIO_COPYs it, and drops the oldest
 * chunks with MADV_DONTNEED to stay within the same budget (high and low
 * watermarks as libufo's default: low = 3/4 high), one madvise per run of
 * contiguous chunks.  Header-only, like bench_util.h.
 */
#ifndef UFO_BENCH_MINI_H
#define UFO_BENCH_MINI_H

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>

#include "bench_util.h"

/* Fills buf with len bytes of the object at byte off: 0 or -errno. */
typedef int (*mini_fill_fn)(void *user, void *buf, size_t off, size_t len);

struct mini {
	int uffd, stop_fd;
	char *base;
	size_t size, chunk, high, low, resident;
	uint64_t *fifo;     /* resident chunk indexes, oldest at head */
	size_t fifo_cap, head, count;
	void *buf;          /* one chunk, filled then copied */
	mini_fill_fn fill;
	void *user;
	int err;            /* first fatal handler error, -errno */
	pthread_t thr;
};

/* Drops the oldest chunks until resident + need <= low.  A sequential scan
 * evicts contiguous runs, so each run is one madvise (one TLB flush). */
static inline int mini_evict(struct mini *m, size_t need)
{
	while (m->count && m->resident + need > m->low) {
		uint64_t first = m->fifo[m->head], last = first;
		size_t bytes = 0;

		do {
			size_t off = last * m->chunk;
			size_t len = m->size - off < m->chunk ? m->size - off
							      : m->chunk;
			bytes += len;
			m->head = (m->head + 1) % m->fifo_cap;
			m->count--;
			if (m->resident - bytes + need <= m->low || !m->count ||
			    m->fifo[m->head] != last + 1)
				break;
			last++;
		} while (1);
		if (madvise(m->base + first * m->chunk, bytes, MADV_DONTNEED))
			return -errno;
		m->resident -= bytes;
	}
	return 0;
}

static inline int mini_fault(struct mini *m, uint64_t addr)
{
	uint64_t idx = (addr - (uint64_t)m->base) / m->chunk;
	size_t off = idx * m->chunk;
	size_t len = m->size - off < m->chunk ? m->size - off : m->chunk;
	int err;

	if (m->resident + len > m->high && (err = mini_evict(m, len)))
		return err;
	if ((err = m->fill(m->user, m->buf, off, len)))
		return err;

	struct uffdio_copy cp = {
		.dst = (uint64_t)m->base + off, .src = (uint64_t)m->buf,
		.len = len, .mode = 0,
	};
	if (ioctl(m->uffd, UFFDIO_COPY, &cp)) {
		/* Another thread faulted the same chunk and its message was
		 * already served: the pages are there, only wake it. */
		if (errno != EEXIST)
			return -errno;
		struct uffdio_range r = { .start = cp.dst, .len = len };
		return ioctl(m->uffd, UFFDIO_WAKE, &r) ? -errno : 0;
	}
	m->fifo[(m->head + m->count++) % m->fifo_cap] = idx;
	m->resident += len;
	return 0;
}

static inline void *mini_handler(void *arg)
{
	struct mini *m = arg;
	struct pollfd pfd[2] = { { m->uffd, POLLIN, 0 },
				 { m->stop_fd, POLLIN, 0 } };
	struct uffd_msg msg;

	while (poll(pfd, 2, -1) >= 0 || errno == EINTR) {
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		if (read(m->uffd, &msg, sizeof(msg)) != sizeof(msg))
			continue;
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		int err = mini_fault(m, msg.arg.pagefault.address);
		if (err) {
			/* The faulting thread stays parked; say why and stop. */
			fprintf(stderr, "uffd-minimal: %s\n", strerror(-err));
			m->err = err;
			break;
		}
	}
	return NULL;
}

static inline void mini_close(struct mini *m)
{
	if (m->thr) {
		eventfd_write(m->stop_fd, 1);
		pthread_join(m->thr, NULL);
	}
	if (m->base && m->base != MAP_FAILED)
		munmap(m->base, m->size);
	if (m->stop_fd >= 0)
		close(m->stop_fd);
	if (m->uffd >= 0)
		close(m->uffd);
	free(m->buf);
	free(m->fifo);
}

/* Maps size bytes served by fill in chunk-byte chunks within budget and
 * starts the handler; 0 or -errno (m closed). */
static inline int mini_open(struct mini *m, size_t size, size_t chunk,
			    size_t budget, mini_fill_fn fill, void *user)
{
	int err;

	*m = (struct mini){ .uffd = -1, .stop_fd = -1, .size = size,
			    .chunk = chunk, .high = budget,
			    .low = budget / 4 * 3, .fill = fill, .user = user };
	m->stop_fd = eventfd(0, EFD_CLOEXEC);
	m->buf = aligned_alloc(4096, chunk);
	m->fifo_cap = budget / chunk + 2;
	m->fifo = calloc(m->fifo_cap, sizeof(*m->fifo));
	err = m->stop_fd < 0 || !m->buf || !m->fifo
	      ? -ENOMEM : bench_uffd_region(m->size, &m->uffd, &m->base);
	if (!err)
		err = -pthread_create(&m->thr, NULL, mini_handler, m);
	if (err) {
		m->thr = 0;
		mini_close(m);
	}
	return err;
}

#endif /* UFO_BENCH_MINI_H */
