/*
 * clock-gap ITERS: each rank sleeps 10 ms ITERS times, reading CLOCK_MONOTONIC
 * (what omp_get_wtime and C++'s steady_clock use) around each sleep, without
 * calling MPI in between. Rank 0 then prints the largest step the clock took
 * between two readings on any rank, and how many steps went backwards:
 *   clock-gap: iters=ITERS max_step_ms=N backwards=B
 * A rank stopped after a checkpoint and restored later (or on another host,
 * whose clock started at another boot) must see neither the time it was gone
 * nor a clock going back.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

int main(int argc, char **argv)
{
    long long iters, i;
    int rank;
    double last, now, step, max_step = 0.0, max_all;
    long long backwards = 0, backwards_all;
    struct timespec ten_ms = {0, 10 * 1000 * 1000};

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    iters = argc > 1 ? atoll(argv[1]) : 500;
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        printf("clock-gap: started\n"), fflush(stdout);
    last = monotonic_ms();
    for (i = 0; i < iters; i++) {
        nanosleep(&ten_ms, NULL);
        now = monotonic_ms();
        step = now - last;
        if (step < 0)
            backwards++;
        if (step > max_step)
            max_step = step;
        last = now;
    }
    MPI_Reduce(&max_step, &max_all, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Reduce(&backwards, &backwards_all, 1, MPI_LONG_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    if (rank == 0)
        printf("clock-gap: iters=%lld max_step_ms=%.0f backwards=%lld\n", iters, max_all, backwards_all);
    MPI_Finalize();
    return 0;
}
