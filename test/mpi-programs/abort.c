/* ranks: 1-8 */
/* expect: exit 7 */
/*
 * MPI_Abort ends every rank of the job with the given code: the last rank
 * aborts with 7 while the others wait in a receive that nothing matches.
 * The launcher must exit with status 7 (no hang, no other status). Rank 0
 * prints one line first so a test can see the job really started.
 */
#include "check.h"

int main(int argc, char **argv)
{
    int rank, size, never;
    chk_init(&argc, &argv, &rank, &size);
    chk_say("abort: started on %d ranks", size);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == size - 1) {
        MPI_Abort(MPI_COMM_WORLD, 7);
        return 99; /* not reached */
    }
    MPI_Recv(&never, 1, MPI_INT, MPI_ANY_SOURCE, 12345, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    MPI_Finalize();
    return 98;
}
