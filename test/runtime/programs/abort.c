/* Bad use: "abort" makes rank 1 call MPI_Abort(MPI_COMM_WORLD, 7) while rank 0
 * waits for a message from it; "fatal" makes rank 1 send to an invalid rank
 * under MPI_ERRORS_ARE_FATAL; "spawn" makes it call MPI_Comm_spawn, which a
 * Ferry job cannot do (dynamic.c), under MPI_ERRORS_ARE_FATAL. */
#include <string.h>
#include "check.h"

int main(int argc, char **argv)
{
  int rank, v = 0;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 1) {
    if (argc > 1 && strcmp(argv[1], "abort") == 0)
      MPI_Abort(MPI_COMM_WORLD, 7);
    if (argc > 1 && strcmp(argv[1], "spawn") == 0) {
      MPI_Comm child;
      MPI_Comm_spawn("/bin/true", MPI_ARGV_NULL, 1, MPI_INFO_NULL, 0, MPI_COMM_SELF, &child, MPI_ERRCODES_IGNORE);
    }
    MPI_Send(&v, 1, MPI_INT, 99, 0, MPI_COMM_WORLD);
  } else if (rank == 0) {
    MPI_Recv(&v, 1, MPI_INT, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  }
  MPI_Finalize();
  return 0;
}
