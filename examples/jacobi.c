/*
 * jacobi: 2-D heat equation on an N x N grid, Jacobi iteration with a
 * five-point stencil. Rows are split into contiguous blocks, one per rank;
 * each iteration exchanges one halo row with each neighbour
 * (Isend/Irecv/Waitall) and agrees on the largest change of any cell
 * (Allreduce with MPI_MAX) to stop early once converged.
 *
 * Bit-exact by construction: every cell is updated by the same expression
 * from the same neighbours whatever the decomposition, the convergence test
 * uses MAX (exact, order-independent), and the checksum hashes the bytes of
 * the final grid in row order. Same N and ITERS give the same checksum on any
 * number of ranks and any MPI.
 *
 * usage: jacobi N [ITERS] [--progress K] [--history PREFIX] [--log PREFIX]  (ITERS defaults to 100)
 *   jacobi 64 100          well under a second
 *   jacobi 1024 100000     minutes (checkpoint it mid-run)
 * Last line (rank 0): jacobi: n=N iters=DONE checksum=0x...
 *
 * Built with -fopenmp, each rank computes its rows with OMP_NUM_THREADS
 * threads (a hybrid MPI+OpenMP program; MPI is called outside parallel regions).
 *
 * --history PREFIX: each rank writes its largest local change of every
 * iteration to the file PREFIX.RANK ("ITER DELTA" lines, flushed as they go),
 * the way simulations write their own output files while they run.
 * --log PREFIX: each rank appends a line every 100 iterations to PREFIX.RANK
 * (opened for append, as logs are: "a").
 */
#include "example-util.h"
#include <math.h>

#define JACOBI_SEED 0x4a41434fULL /* "JACO" */
#define JACOBI_DEFAULT_ITERS 100
#define JACOBI_TOLERANCE 1e-13
#define TAG_UP 10
#define TAG_DOWN 11

static const char *usage = "jacobi N [ITERS] [--progress K] [--history PREFIX] [--log PREFIX]";

/* Initial temperature of global cell (i, j): fixed hot top edge, cold other
 * edges, random interior. A pure function of the global index. */
static double jacobi_initial(long long n, long long i, long long j)
{
    if (i == 0)
        return 1.0;
    if (i == n - 1 || j == 0 || j == n - 1)
        return 0.0;
    return ex_unit_double(ex_random_at(JACOBI_SEED, (uint64_t)(i * n + j)));
}

int main(int argc, char **argv)
{
    const char *pos[2];
    long long progress_every, n, max_iters = JACOBI_DEFAULT_ITERS, iter, first, rows, i, j;
    int rank, size, npos, up, down, nreq;
    double *cur, *next, *swap, local_delta, delta = 0.0;
    MPI_Request reqs[4];
    uint64_t checksum;
    const char *history_prefix, *log_prefix;
    FILE *history = NULL, *log_file = NULL;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    history_prefix = ex_take_option(&argc, argv, "--history");
    log_prefix = ex_take_option(&argc, argv, "--log");
    npos = ex_parse_args(argc, argv, pos, 2, &progress_every, usage);
    if (npos < 1) {
        if (rank == 0)
            fprintf(stderr, "usage: %s\n", usage);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    n = ex_parse_count(pos[0], "N", usage);
    if (npos > 1)
        max_iters = ex_parse_count(pos[1], "ITERS", usage);
    if (n < 3 || n > (1 << 16)) {
        if (rank == 0)
            fprintf(stderr, "N must be in 3..65536\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }

    if (history_prefix)
        history = ex_open_rank_file(history_prefix, rank, "w");
    if (log_prefix)
        log_file = ex_open_rank_file(log_prefix, rank, "a");

    /* Row block of this rank: rows [first, first + rows). Ranks beyond the
     * row count get no rows and only take part in the reductions. */
    first = n * rank / size;
    rows = n * (rank + 1) / size - first;
    /* Two halo rows around the block. */
    cur = calloc((size_t)(rows + 2) * (size_t)n, sizeof *cur);
    next = calloc((size_t)(rows + 2) * (size_t)n, sizeof *next);
    if (!cur || !next)
        MPI_Abort(MPI_COMM_WORLD, 3);
    for (i = 0; i < rows; i++)
        for (j = 0; j < n; j++)
            cur[(i + 1) * n + j] = next[(i + 1) * n + j] = jacobi_initial(n, first + i, j);

    /* Neighbours: the nearest ranks above and below that own rows. */
    up = MPI_PROC_NULL;
    down = MPI_PROC_NULL;
    if (rows > 0) {
        int r;
        for (r = rank - 1; r >= 0; r--)
            if (n * (r + 1) / size - n * r / size > 0) {
                up = r;
                break;
            }
        for (r = rank + 1; r < size; r++)
            if (n * (r + 1) / size - n * r / size > 0) {
                down = r;
                break;
            }
    }

    for (iter = 0; iter < max_iters; iter++) {
        nreq = 0;
        if (rows > 0) {
            MPI_Irecv(&cur[0], (int)n, MPI_DOUBLE, up, TAG_DOWN, MPI_COMM_WORLD, &reqs[nreq++]);
            MPI_Irecv(&cur[(rows + 1) * n], (int)n, MPI_DOUBLE, down, TAG_UP, MPI_COMM_WORLD, &reqs[nreq++]);
            MPI_Isend(&cur[1 * n], (int)n, MPI_DOUBLE, up, TAG_UP, MPI_COMM_WORLD, &reqs[nreq++]);
            MPI_Isend(&cur[rows * n], (int)n, MPI_DOUBLE, down, TAG_DOWN, MPI_COMM_WORLD, &reqs[nreq++]);
            MPI_Waitall(nreq, reqs, MPI_STATUSES_IGNORE);
        }
        local_delta = 0.0;
        /* With OpenMP (mpicc -fopenmp), the rows of the block are split over
         * threads: each cell is still computed by the same expression, and MAX
         * does not depend on the order, so the result is the same bit for bit. */
#ifdef _OPENMP
#pragma omp parallel for private(j) reduction(max : local_delta) schedule(static)
#endif
        for (i = 1; i <= rows; i++) {
            long long gi = first + i - 1;
            if (gi == 0 || gi == n - 1)
                continue; /* fixed boundary rows */
            for (j = 1; j < n - 1; j++) {
                double *c = &cur[i * n + j];
                double v = 0.25 * ((c[-n] + c[n]) + (c[-1] + c[1]));
                double d = fabs(v - *c);
                next[i * n + j] = v;
                if (d > local_delta)
                    local_delta = d;
            }
        }
        swap = cur, cur = next, next = swap;
        if (history)
            fprintf(history, "%lld %.17g\n", iter + 1, local_delta), fflush(history);
        if (log_file && (iter + 1) % 100 == 0)
            fprintf(log_file, "rank %d: iteration %lld, largest change %.3e\n", rank, iter + 1, delta), fflush(log_file);
        MPI_Allreduce(&local_delta, &delta, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (progress_every && rank == 0 && (iter + 1) % progress_every == 0)
            printf("jacobi: progress iter=%lld\n", iter + 1), fflush(stdout);
        if (delta < JACOBI_TOLERANCE) {
            iter++;
            break;
        }
    }

    checksum = ex_chain_hash(MPI_COMM_WORLD, &cur[n], (size_t)rows * (size_t)n * sizeof *cur);
    if (rank == 0)
        printf("jacobi: n=%lld iters=%lld checksum=0x%016llx\n", n, iter, (unsigned long long)checksum);
    if (history)
        fclose(history);
    if (log_file)
        fclose(log_file);
    free(cur);
    free(next);
    MPI_Finalize();
    return 0;
}
