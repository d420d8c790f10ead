/*
 * resident-allreduce: the rank of the checkpoint-cost benchmark. Allocates
 * MIB MiB, touches every page with a pattern (so all of it is resident and
 * CRIU has to write it), prints "# ready rank=R mib=M", then does a little
 * MPI until told to stop: an MPI_Allreduce (MAX) every PERIOD_MS whose value
 * is 1 once STOP_FILE exists on any rank, so all ranks leave together.
 *
 *   resident-allreduce MIB STOP_FILE            (under ferry run: with MPI)
 *   resident-allreduce MIB STOP_FILE --no-mpi   (plain CRIU baseline: no MPI
 *                                                calls at all, same memory)
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RA_PERIOD_MS 100
#define RA_PAGE_BYTES 4096

static int ra_stop_requested(const char *stop_file) { return access(stop_file, F_OK) == 0; }

static void ra_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int main(int argc, char **argv)
{
    int rank = 0, use_mpi, stop = 0, any_stop = 0;
    size_t bytes, i;
    unsigned char *mem;
    unsigned long sum = 0;
    if (argc < 3) {
        fprintf(stderr, "usage: resident-allreduce MIB STOP_FILE [--no-mpi]\n");
        return 2;
    }
    use_mpi = !(argc > 3 && strcmp(argv[3], "--no-mpi") == 0);
    bytes = (size_t)atol(argv[1]) << 20;
    if (use_mpi) {
        MPI_Init(&argc, &argv);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    }
    if ((mem = malloc(bytes ? bytes : 1)) == NULL) {
        fprintf(stderr, "resident-allreduce: cannot allocate %s MiB\n", argv[1]);
        return 3;
    }
    /* A pattern that differs per page and per rank: nothing for CRIU to skip. */
    for (i = 0; i < bytes; i++)
        mem[i] = (unsigned char)((i / RA_PAGE_BYTES) * 31 + i * 7 + (size_t)rank);
    printf("# ready rank=%d mib=%s\n", rank, argv[1]);
    fflush(stdout);
    while (!any_stop) {
        ra_sleep_ms(RA_PERIOD_MS);
        stop = ra_stop_requested(argv[2]);
        if (use_mpi)
            MPI_Allreduce(&stop, &any_stop, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        else
            any_stop = stop;
    }
    for (i = 0; i < bytes; i += RA_PAGE_BYTES)
        sum += mem[i];
    printf("# done rank=%d sum=%lu\n", rank, sum);
    free(mem);
    if (use_mpi)
        MPI_Finalize();
    return 0;
}
