/* Nonblocking collectives held across a flush. Ranks 0 and 1 start an
 * Iallreduce of 100,000 doubles (its messages are rendezvous-sized), an
 * Ibcast, an Ibarrier and a Comm_idup of the world (its context vote half
 * done), print "started" and wait for them. Rank 2 computes without calling
 * MPI until the file argv[1] exists, so the flush finds the schedules of
 * ranks 0 and 1 half done (their first round's messages drained or queued).
 * After the resume rank 2 starts the same collectives and every rank checks
 * the results, and that the duplicate works and keeps its messages apart from
 * the world's. */
#include <unistd.h>
#include "check.h"

#define N 100000

int main(int argc, char **argv)
{
  int rank, size;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  CHECK(argc == 2 && size == 3, "usage: flush-nbc GO_FILE, on 3 ranks");
  double *v = malloc(sizeof(double) * N), *sum = malloc(sizeof(double) * N);
  for (int i = 0; i < N; i++)
    v[i] = rank * 1000000.0 + i;
  int b = rank == 2 ? 77 : -1;
  MPI_Request req[4];
  MPI_Comm dup;
  if (rank == 2) {
    printf("ready\n");
    fflush(stdout);
    while (access(argv[1], F_OK) != 0)
      usleep(1000);
  }
  MPI_Iallreduce(v, sum, N, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &req[0]);
  MPI_Ibcast(&b, 1, MPI_INT, 2, MPI_COMM_WORLD, &req[1]);
  MPI_Ibarrier(MPI_COMM_WORLD, &req[2]);
  MPI_Comm_idup(MPI_COMM_WORLD, &dup, &req[3]);
  if (rank != 2) {
    printf("started\n");
    fflush(stdout);
  }
  MPI_Waitall(4, req, MPI_STATUSES_IGNORE);
  for (int i = 0; i < N; i++)
    CHECK(sum[i] == 3000000.0 + 3.0 * i, "sum[%d] = %g", i, sum[i]);
  CHECK(b == 77, "bcast %d", b);
  /* the duplicate: a sum on it, and the same source and tag on it and on the world never mix */
  int one = 1, n = 0, got[2] = { -1, -1 }, to = (rank + 1) % size, from = (rank + size - 1) % size;
  MPI_Allreduce(&one, &n, 1, MPI_INT, MPI_SUM, dup);
  CHECK(n == size, "Allreduce on the Comm_idup duplicate: %d", n);
  MPI_Request pr[4];
  int mine[2] = { 100 + rank, 200 + rank };
  MPI_Irecv(&got[0], 1, MPI_INT, from, 9, MPI_COMM_WORLD, &pr[0]);
  MPI_Irecv(&got[1], 1, MPI_INT, from, 9, dup, &pr[1]);
  MPI_Isend(&mine[1], 1, MPI_INT, to, 9, dup, &pr[2]);
  MPI_Isend(&mine[0], 1, MPI_INT, to, 9, MPI_COMM_WORLD, &pr[3]);
  MPI_Waitall(4, pr, MPI_STATUSES_IGNORE);
  CHECK(got[0] == 100 + from && got[1] == 200 + from, "world got %d, duplicate got %d", got[0], got[1]);
  MPI_Comm_free(&dup);
  printf("rank %d collectives ok\n", rank);
  free(v);
  free(sum);
  MPI_Finalize();
  return 0;
}
