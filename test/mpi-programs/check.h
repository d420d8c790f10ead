/*
 * Shared helpers of the MPI semantics suite. Plain C99 + MPI 3.1.
 *
 * Output convention (what the reference and differential tests compare):
 * only rank 0 writes to stdout, and only deterministic lines (never times,
 * host names, error texts or anything implementation-specific); output that
 * depends on other ranks is gathered to rank 0 first, so its order never
 * depends on scheduling. The last line is "OK" when every check passed on
 * every rank; otherwise rank 0 prints "FAILED n" and every rank exits 1.
 * Each failed check is reported on stderr with its rank and line.
 */
#ifndef CHECK_H
#define CHECK_H

#include <mpi.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int chk_failures;
static int chk_rank = -1;

static void chk_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    chk_failures++;
    fprintf(stderr, "CHECK FAILED rank %d %s:%d: ", chk_rank, file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

/* CHECK(cond, "printf format", ...) records a failure and goes on. */
#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (!(cond))                                                                                         \
            chk_fail(__FILE__, __LINE__, __VA_ARGS__);                                                       \
    } while (0)

#define CHECK_EQ_INT(actual, expected, what)                                                                 \
    do {                                                                                                     \
        long long chk_a_ = (long long)(actual), chk_e_ = (long long)(expected);                            \
        if (chk_a_ != chk_e_)                                                                                \
            chk_fail(__FILE__, __LINE__, "%s: got %lld, expected %lld", (what), chk_a_, chk_e_);            \
    } while (0)

/* A call that must succeed (the default handler aborts anyway; this makes a
 * returned error visible when a program switched to MPI_ERRORS_RETURN). */
#define CHECK_MPI(call)                                                                                      \
    do {                                                                                                     \
        int chk_rc_ = (call);                                                                                \
        if (chk_rc_ != MPI_SUCCESS)                                                                          \
            chk_fail(__FILE__, __LINE__, "%s returned %d", #call, chk_rc_);                                \
    } while (0)

static int chk_init(int *argc, char ***argv, int *rank, int *size)
{
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    chk_rank = *rank;
    return 0;
}

/* Rank 0 prints a line (printf format). Other ranks do nothing. */
static void chk_say(const char *fmt, ...)
{
    va_list ap;
    if (chk_rank != 0)
        return;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* Every rank calls it: rank 0 prints the line (printf format) with " on n/size
 * ranks" appended, n being how many ranks passed (ok non-zero). */
static void chk_report(int ok, const char *fmt, ...)
{
    char line[400];
    int n = 0, size = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    ok = ok ? 1 : 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Allreduce(&ok, &n, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    chk_say("%s on %d/%d ranks", line, n, size);
}

#define CHK_LINE_MAX 160

/* Every rank contributes one line; rank 0 prints them in rank order. */
static void chk_say_ordered(MPI_Comm comm, const char *fmt, ...)
{
    char line[CHK_LINE_MAX];
    char *all = NULL;
    int rank, size, r;
    va_list ap;
    memset(line, 0, sizeof line);
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    if (rank == 0)
        all = malloc((size_t)size * CHK_LINE_MAX);
    MPI_Gather(line, CHK_LINE_MAX, MPI_CHAR, all, CHK_LINE_MAX, MPI_CHAR, 0, comm);
    if (rank == 0) {
        for (r = 0; r < size; r++)
            printf("%s\n", all + (size_t)r * CHK_LINE_MAX);
        fflush(stdout);
        free(all);
    }
}

/* Sum the failures of all ranks, print OK or FAILED, finalize; the value to
 * return from main. */
static int chk_finish(void)
{
    int total = 0;
    MPI_Allreduce(&chk_failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (total == 0)
        chk_say("OK");
    else
        chk_say("FAILED %d", total);
    MPI_Finalize();
    return total == 0 ? 0 : 1;
}

/* Require at least `min` ranks (the header comment says so too). */
static void chk_require_ranks(int size, int min)
{
    if (size < min) {
        if (chk_rank == 0)
            fprintf(stderr, "this program needs at least %d ranks\n", min);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
}

#endif
