/* ranks: 2-8 */
/* expect: fail */
/*
 * One rank dies: the last rank exits with status 3 without MPI_Finalize
 * while the others are blocked in a receive from it and then in a barrier.
 * The job must fail (a non-zero launcher status naming the rank, never a
 * hang and never success).
 */
#include "check.h"
#include <unistd.h>

int main(int argc, char **argv)
{
    int rank, size, v = 0;
    chk_init(&argc, &argv, &rank, &size);
    chk_say("rank-dies: started on %d ranks", size);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == size - 1) {
        fflush(stdout);
        _exit(3);
    }
    MPI_Recv(&v, 1, MPI_INT, size - 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    return 0;
}
