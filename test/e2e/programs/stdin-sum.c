/* Rank 0 reads its standard input a line at a time, as simulations read an
 * input deck or a list of cases: each line holds one integer, broadcast to
 * every rank, which folds it into its own total (weighted by its rank) and
 * naps MS milliseconds, so the job can be checkpointed, migrated and
 * restarted while rank 0 is halfway through its input. At the end of the
 * input, rank 0 prints how many lines it read and the sum of every rank's
 * total: the same for the same input, however often the job was moved.
 *
 * usage: stdin-sum [MS]
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
  int rank;
  long long value, total = 0, lines = 0, all;
  long ms = argc > 1 ? atol(argv[1]) : 20;
  struct timespec nap = { ms / 1000, (ms % 1000) * 1000000L };

  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0)
    printf("stdin-sum: started\n"), fflush(stdout);
  for (;;) {
    long long msg[2] = { 0, 0 }; /* more?, value */
    if (rank == 0 && scanf("%lld", &value) == 1) {
      msg[0] = 1;
      msg[1] = value;
    }
    MPI_Bcast(msg, 2, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    if (!msg[0])
      break;
    lines++;
    total += msg[1] * (rank + 1);
    nanosleep(&nap, NULL);
  }
  MPI_Reduce(&total, &all, 1, MPI_LONG_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
  if (rank == 0)
    printf("stdin-sum: lines=%lld sum=%lld\n", lines, all);
  MPI_Finalize();
  return 0;
}
