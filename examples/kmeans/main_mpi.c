/* SPDX-License-Identifier: MIT */
/*
 * ufo-kmeans-mpi: the k-means example as an Open MPI application.  Every
 * rank links libufo and maps the shared dataset (a replicated remote
 * object) through its own small budget; rank r owns a slice of the points
 * and a remote labels object; partial centroids meet in MPI_Allreduce.
 *
 *   mpirun -np 4 ufo-kmeans-mpi --generate --check [options]
 *
 * Options: kmeans.c (--workers is the fork launcher's and is ignored here).
 * mpirun passes the environment on, so UFO_SERVERS and UFO_SECRET_FILE set
 * where it runs reach every rank on this host; on several hosts, export
 * them with mpirun -x (docs/clustered-apps.md).
 */
#include <errno.h>
#include <stdio.h>

#include <mpi.h>

#include "kmeans.h"

static int mpi_err(int rc)
{
	return rc == MPI_SUCCESS ? 0 : -EIO;
}

static int mpi_allreduce(struct km_comm *c, int64_t *v, size_t n)
{
	return mpi_err(MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_INT64_T,
				     MPI_SUM, MPI_COMM_WORLD));
}

static int mpi_gather(struct km_comm *c, const void *mine, size_t len,
		      void *all)
{
	return mpi_err(MPI_Gather(mine, (int)len, MPI_BYTE, all, (int)len,
				  MPI_BYTE, 0, MPI_COMM_WORLD));
}

int main(int argc, char **argv)
{
	struct km_comm comm = { .allreduce = mpi_allreduce,
				.gather = mpi_gather };
	struct km_params p;
	int rank, size, rc;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	comm.rank = (unsigned)rank;
	comm.size = (unsigned)size;
	/* Every rank parses the same arguments and gets the same answer. */
	if (km_parse(argc, argv, &p)) {
		MPI_Finalize();
		return 2;
	}
	p.workers = comm.size;
	rc = km_rank_main(&p, &comm);
	fflush(stdout);
	MPI_Finalize();
	return rc;
}
