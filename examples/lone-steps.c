/*
 * lone-steps STEPS PREFIX: each rank works alone for its whole run, as codes
 * with long compute phases do: STEPS steps of 20 ms, each appending a line to
 * its own file PREFIX.RANK (open for appending all along, flushed at each
 * step); rank 0 also
 * prints "step N" every 25 steps. Only at the end do the ranks meet: rank 0
 * prints the sum of every rank's last value,
 *   lone-steps: steps=STEPS checksum=0x%016llx
 * A copy of a rank that runs on where no one sees it (its host cut off the
 * network) would go on appending to its file and printing.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
    int rank;
    long steps, i;
    unsigned long long x, all = 0;
    char path[4096];
    FILE *f;
    struct timespec pause = {0, 20 * 1000 * 1000};

    MPI_Init(&argc, &argv);
    if (argc != 3) {
        fprintf(stderr, "usage: lone-steps STEPS PREFIX\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    steps = atol(argv[1]);
    snprintf(path, sizeof path, "%s.%d", argv[2], rank);
    f = fopen(path, "a");
    if (!f) {
        perror(path);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    x = 0x9e3779b97f4a7c15ULL * (unsigned long long)(rank + 1);
    for (i = 0; i < steps; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        nanosleep(&pause, NULL);
        fprintf(f, "%ld %016llx\n", i, x);
        fflush(f);
        if (rank == 0 && i % 25 == 0) {
            printf("step %ld\n", i);
            fflush(stdout);
        }
    }
    fclose(f);
    MPI_Reduce(&x, &all, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    if (rank == 0) printf("lone-steps: steps=%ld checksum=0x%016llx\n", steps, all);
    MPI_Finalize();
    return 0;
}
