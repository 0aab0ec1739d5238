/* SPDX-License-Identifier: MIT */
/*
 * ufo-kmeans: the k-means example for users without MPI.  Forks --workers
 * processes (default 4) that play the MPI ranks: each maps the shared
 * dataset through its own budget and rewrites its own labels object; they
 * sum their partial centroids through shared memory (comm_fork.c).
 *
 *   ufo-kmeans --workers 4 --generate --check [options]
 *
 * Options (ufo-kmeans --help): kmeans.c.  The servers are --servers or
 * $UFO_SERVERS, the secret $UFO_SECRET_FILE or --secret-file.
 */
#include "kmeans.h"

static int worker(struct km_comm *c, void *user)
{
	return km_rank_main(user, c);
}

int main(int argc, char **argv)
{
	struct km_params p;

	if (km_parse(argc, argv, &p))
		return 2;
	return comm_fork_run(p.workers, worker, &p);
}
