/* SPDX-License-Identifier: MIT */
/*
 * The fork launcher's communicator, for users without MPI: N worker
 * processes share one anonymous shared mapping with a process-shared
 * barrier and a slot per worker.  An allreduce is: write your slot,
 * barrier, sum every slot in rank order (so all workers get the same
 * result), barrier (nobody rewrites a slot still being read).
 *
 * Workers are forked before any of them creates a ufo context: library
 * threads and userfaultfd registrations do not survive a fork.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kmeans.h"

#define GATHER_MAX 256 /* bytes per rank: a struct km_rank_stats */

_Static_assert(sizeof(struct km_rank_stats) <= GATHER_MAX,
	       "a rank's stats must fit its gather slot");

struct km_comm_fork {
	pthread_barrier_t barrier;
	unsigned size;
	int64_t slot[KM_MAX_RANKS][KM_ACC_MAX];
	unsigned char gather[KM_MAX_RANKS][GATHER_MAX];
};

static int fork_barrier(struct km_comm_fork *f)
{
	int rc = pthread_barrier_wait(&f->barrier);

	return rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD ? 0 : -rc;
}

static int fork_allreduce(struct km_comm *c, int64_t *v, size_t n)
{
	struct km_comm_fork *f = c->impl;
	int err;

	if (n > KM_ACC_MAX)
		return -EINVAL;
	memcpy(f->slot[c->rank], v, n * sizeof(*v));
	if ((err = fork_barrier(f)))
		return err;
	memset(v, 0, n * sizeof(*v));
	for (unsigned r = 0; r < f->size; r++)
		for (size_t i = 0; i < n; i++)
			v[i] += f->slot[r][i];
	return fork_barrier(f);
}

static int fork_gather(struct km_comm *c, const void *mine, size_t len,
		       void *all)
{
	struct km_comm_fork *f = c->impl;
	int err;

	if (len > GATHER_MAX)
		return -EINVAL;
	memcpy(f->gather[c->rank], mine, len);
	if ((err = fork_barrier(f)))
		return err;
	if (c->rank == 0)
		for (unsigned r = 0; r < f->size; r++)
			memcpy((char *)all + r * len, f->gather[r], len);
	return fork_barrier(f);
}

int comm_fork_init(unsigned size, struct km_comm_fork **out)
{
	pthread_barrierattr_t attr;
	struct km_comm_fork *f;
	int rc;

	if (!size || size > KM_MAX_RANKS)
		return -EINVAL;
	f = mmap(NULL, sizeof(*f), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (f == MAP_FAILED)
		return -errno;
	f->size = size;
	pthread_barrierattr_init(&attr);
	pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	rc = pthread_barrier_init(&f->barrier, &attr, size);
	pthread_barrierattr_destroy(&attr);
	if (rc) {
		munmap(f, sizeof(*f));
		return -rc;
	}
	*out = f;
	return 0;
}

void comm_fork_rank(struct km_comm_fork *f, unsigned rank, struct km_comm *c)
{
	*c = (struct km_comm){ .rank = rank, .size = f->size,
			       .allreduce = fork_allreduce,
			       .gather = fork_gather, .impl = f };
}

/* No pthread_barrier_destroy: glibc's waits until every waiter has left
 * the barrier, and a worker killed while waiting in it never leaves.  The
 * barrier's memory goes with the mapping. */
void comm_fork_free(struct km_comm_fork *f)
{
	munmap(f, sizeof(*f));
}

/* The worker's side of a fork: dies with its parent. */
static void worker(struct km_comm_fork *f, unsigned rank, pid_t parent,
		   int (*fn)(struct km_comm *c, void *user), void *user)
{
	struct km_comm c;
	int rc;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	comm_fork_rank(f, rank, &c);
	rc = fn(&c, user);
	fflush(NULL);
	_exit(rc);
}

/* Waits for every worker; after the first failure the rest are killed:
 * they would wait at the next barrier for a worker that is gone. */
static int reap(pid_t *pids, unsigned size)
{
	unsigned left = size, failed = 0;

	while (left) {
		int status;
		pid_t pid = wait(&status);
		unsigned r = 0;

		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			return 1;
		while (r < size && pids[r] != pid)
			r++;
		if (r == size)
			continue;
		pids[r] = 0;
		left--;
		if (WIFEXITED(status) && !WEXITSTATUS(status))
			continue;
		if (!failed++)
			fprintf(stderr, "kmeans: worker %u %s %d; stopping the "
				"others\n", r, WIFEXITED(status) ? "exited with" :
				"killed by signal", WIFEXITED(status) ?
				WEXITSTATUS(status) : WTERMSIG(status));
		for (unsigned i = 0; i < size; i++)
			if (pids[i] > 0)
				kill(pids[i], SIGKILL);
	}
	return failed ? 1 : 0;
}

int comm_fork_run(unsigned size, int (*fn)(struct km_comm *c, void *user),
		  void *user)
{
	struct km_comm_fork *f;
	pid_t pids[KM_MAX_RANKS] = { 0 }, parent = getpid();
	int err = comm_fork_init(size, &f);

	if (err) {
		fprintf(stderr, "kmeans: shared memory: %s\n", strerror(-err));
		return 1;
	}
	fflush(NULL);
	for (unsigned r = 0; r < size; r++) {
		pids[r] = fork();
		if (pids[r] == 0)
			worker(f, r, parent, fn, user);
		if (pids[r] < 0) {
			fprintf(stderr, "kmeans: fork: %s\n", strerror(errno));
			for (unsigned i = 0; i < r; i++)
				kill(pids[i], SIGKILL);
			size = r;
			err = 1;
			break;
		}
	}
	err = reap(pids, size) || err;
	comm_fork_free(f);
	return err;
}
