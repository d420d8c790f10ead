/* A job whose ranks write one shared file with MPI-IO (test 12 of
 * checkpoint-restart.test.ts). At each of ITERS steps every rank writes its
 * block of the step's state into the file at (step * size + rank) * BLOCK
 * ints with MPI_File_write_at_all, then advances its state (deterministic,
 * with an Allreduce) and sleeps a little, so that a checkpoint lands mid-run.
 * At the end rank 0 reads the file whole and prints its checksum.
 * Usage: shared-file PATH ITERS */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define BLOCK 256

int main(int argc, char **argv)
{
    int rank, size, step, i, iters = argc > 2 ? atoi(argv[2]) : 200;
    MPI_File fh;
    uint32_t state[BLOCK];
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc < 2) {
        if (rank == 0)
            fprintf(stderr, "usage: shared-file PATH ITERS\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    if (MPI_File_open(MPI_COMM_WORLD, argv[1], MPI_MODE_CREATE | MPI_MODE_RDWR, MPI_INFO_NULL, &fh) != MPI_SUCCESS)
        MPI_Abort(MPI_COMM_WORLD, 3);
    MPI_File_set_size(fh, 0);
    for (i = 0; i < BLOCK; i++)
        state[i] = (uint32_t)(rank * 7919 + i);
    if (rank == 0) {
        printf("shared-file: started, %d ranks, %d steps\n", size, iters);
        fflush(stdout);
    }
    for (step = 0; step < iters; step++) {
        MPI_Offset at = ((MPI_Offset)step * size + rank) * BLOCK * (MPI_Offset)sizeof state[0];
        if (MPI_File_write_at_all(fh, at, state, BLOCK, MPI_UINT32_T, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            MPI_Abort(MPI_COMM_WORLD, 4);
        uint32_t mix = 0, all = 0;
        for (i = 0; i < BLOCK; i++) {
            state[i] = state[i] * 1664525u + 1013904223u + (uint32_t)step;
            mix ^= state[i];
        }
        MPI_Allreduce(&mix, &all, 1, MPI_UINT32_T, MPI_BXOR, MPI_COMM_WORLD);
        state[step % BLOCK] ^= all;
        usleep(20000);
    }
    MPI_File_sync(fh);
    if (rank == 0) {
        MPI_Offset bytes;
        MPI_File_get_size(fh, &bytes);
        size_t n = (size_t)bytes / sizeof(uint32_t);
        uint32_t *all = malloc(n * sizeof *all + 1);
        MPI_Status st;
        int got;
        MPI_File_read_at(fh, 0, all, (int)n, MPI_UINT32_T, &st);
        MPI_Get_count(&st, MPI_UINT32_T, &got);
        uint64_t sum = 0;
        for (size_t k = 0; k < (size_t)got; k++)
            sum = sum * 31 + all[k];
        printf("shared-file: %d ints, checksum %llu\n", got, (unsigned long long)sum);
        free(all);
    }
    MPI_File_close(&fh);
    MPI_Finalize();
    return 0;
}
