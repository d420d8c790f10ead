/* A job that ends while the agent may be flushing it: every rank prints
 * "finalizing", calls MPI_Finalize, prints "finalized" and exits once the
 * file argv[1] exists (so a test can flush before, during or after Finalize). */
#include <unistd.h>
#include "check.h"

int main(int argc, char **argv)
{
  int rank;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  CHECK(argc == 2, "usage: finalize-exit GO_FILE");
  MPI_Barrier(MPI_COMM_WORLD);
  printf("finalizing\n");
  fflush(stdout);
  MPI_Finalize();
  printf("finalized\n");
  fflush(stdout);
  while (access(argv[1], F_OK) != 0)
    usleep(1000);
  return rank + 3;
}
