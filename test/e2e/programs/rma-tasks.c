/* A job that shares work through one-sided communication (test 13 of
 * checkpoint-restart.test.ts). At each of STEPS steps the ranks take tasks
 * from a counter in rank 0's window (MPI_Fetch_and_op under a shared lock)
 * until the step's TASKS are gone, and add each task's result into rank 0's
 * totals (MPI_Accumulate, SUM and BXOR); which rank takes which task depends
 * on timing, the totals do not. Then, in a fence epoch, each rank puts its
 * ring state into its right neighbor's window and mixes in what its left
 * neighbor put. So passive-target traffic is in flight whenever a checkpoint
 * or a migration flushes the channels. Rank 0 prints the totals and a
 * checksum of the ring states. With GATE, the job waits at three quarters of
 * its steps until that file exists (rank 0 polls, the others wait in a
 * barrier), so a test can act on it mid-run without racing its end.
 * Usage: rma-tasks STEPS [TASKS [GATE]] */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define RING 64

static uint64_t task_result(int step, uint64_t task)
{
    uint64_t x = ((uint64_t)step << 32) ^ (task * 0x9e3779b97f4a7c15ull);
    for (int i = 0; i < 1000; i++)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x;
}

int main(int argc, char **argv)
{
    int rank, size, step, i;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc < 2) {
        if (rank == 0)
            fprintf(stderr, "usage: rma-tasks STEPS [TASKS [GATE]]\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    int steps = atoi(argv[1]), tasks = argc > 2 ? atoi(argv[2]) : 24;
    const char *gate = argc > 3 ? argv[3] : NULL;
    int right = (rank + 1) % size, left = (rank + size - 1) % size;

    /* rank 0's window: a counter per step, then the totals (sum, xor); the others expose nothing */
    uint64_t *shared;
    MPI_Aint bytes = rank == 0 ? (MPI_Aint)(steps + 2) * sizeof(uint64_t) : 0;
    MPI_Win counters, ring;
    MPI_Win_allocate(bytes, sizeof(uint64_t), MPI_INFO_NULL, MPI_COMM_WORLD, &shared, &counters);
    for (i = 0; rank == 0 && i < steps + 2; i++)
        shared[i] = 0;
    uint32_t state[RING], inbox[RING];
    MPI_Win_create(inbox, sizeof inbox, sizeof(uint32_t), MPI_INFO_NULL, MPI_COMM_WORLD, &ring);
    for (i = 0; i < RING; i++)
        state[i] = (uint32_t)(rank * 7919 + i);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        printf("rma-tasks: started, %d ranks, %d steps of %d tasks\n", size, steps, tasks);
        fflush(stdout);
    }
    int mine = 0;
    for (step = 0; step < steps; step++) {
        if (gate && step == steps * 3 / 4) {
            while (rank == 0 && access(gate, F_OK) != 0)
                usleep(10000);
            MPI_Barrier(MPI_COMM_WORLD);
        }
        for (;;) {
            uint64_t one = 1, task, result[2];
            MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, counters);
            MPI_Fetch_and_op(&one, &task, MPI_UINT64_T, 0, step, MPI_SUM, counters);
            MPI_Win_unlock(0, counters);
            if (task >= (uint64_t)tasks)
                break;
            result[0] = result[1] = task_result(step, task);
            MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, counters);
            MPI_Accumulate(&result[0], 1, MPI_UINT64_T, 0, steps, 1, MPI_UINT64_T, MPI_SUM, counters);
            MPI_Accumulate(&result[1], 1, MPI_UINT64_T, 0, steps + 1, 1, MPI_UINT64_T, MPI_BXOR, counters);
            MPI_Win_unlock(0, counters);
            mine++;
            usleep(4000);
        }
        MPI_Win_fence(MPI_MODE_NOPRECEDE, ring);
        MPI_Put(state, RING, MPI_UINT32_T, right, 0, RING, MPI_UINT32_T, ring);
        MPI_Win_fence(MPI_MODE_NOSUCCEED, ring);
        for (i = 0; i < RING; i++)
            state[i] = state[i] * 1664525u + 1013904223u + inbox[(i + step) % RING] + (uint32_t)left;
    }
    MPI_Barrier(MPI_COMM_WORLD); /* every task's accumulate is done: the unlocks waited for them */
    uint64_t mix = 0, all;
    for (i = 0; i < RING; i++)
        mix = mix * 31 + state[i];
    MPI_Reduce(&mix, &all, 1, MPI_UINT64_T, MPI_BXOR, 0, MPI_COMM_WORLD);
    int total;
    MPI_Reduce(&mine, &total, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, counters);
        printf("rma-tasks: %d tasks done, sum %llu, xor %llu, ring %llu\n", total,
               (unsigned long long)shared[steps], (unsigned long long)shared[steps + 1], (unsigned long long)all);
        MPI_Win_unlock(0, counters);
    }
    MPI_Win_free(&ring);
    MPI_Win_free(&counters);
    MPI_Finalize();
    return 0;
}
