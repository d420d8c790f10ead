/* ranks: 1-8 */
/*
 * One-sided communication with passive target synchronization (active target
 * is in rma.c). Fetch_and_op on a shared counter under lock_all (the fetched
 * values are a permutation); exclusive locks serializing Get, flush, Put;
 * Compare_and_swap as "first to claim wins" and as a spin lock around a
 * Get/Put critical section; a target busy in a loop without MPI calls while
 * the others lock, Put, unlock (it polls its own window with Win_sync under
 * lock_all, bounded in time, and checks after a barrier); Get_accumulate with
 * SUM, REPLACE (a swap) and MPI_NO_OP (an atomic read); flush, flush_local,
 * flush_all, flush_local_all making a Put visible to a later Get from the
 * same origin, and Win_sync after a barrier; Rput/Rget/Raccumulate/
 * Rget_accumulate completed by Waitall and by a Test loop; 512 KiB Put and
 * Get under exclusive and shared locks; accumulates from one origin applied in
 * the order issued (a 1 MiB REPLACE, then one-int REPLACEs of its ends).
 */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "check.h"

static int rank, size, left, right;

/* How many ranks passed each of n checks (one collective; every rank gets the counts). */
static void ranks_ok_n(int *ok, int *count, int n)
{
    int i;
    for (i = 0; i < n; i++)
        ok[i] = ok[i] ? 1 : 0;
    MPI_Allreduce(ok, count, n, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
}

/* Whether the n values are exactly lo..lo+n-1 in some order. */
static int is_permutation(const int *v, int n, int lo)
{
    char *seen = calloc(n > 0 ? n : 1, 1);
    int i, ok = 1;
    for (i = 0; i < n && ok; i++) {
        ok = v[i] >= lo && v[i] < lo + n && !seen[v[i] - lo];
        if (ok)
            seen[v[i] - lo] = 1;
    }
    free(seen);
    return ok;
}

/* Read n ints of this rank's own window memory, synchronized with the public copy by a lock on itself. */
static void read_own(MPI_Win win, const int *mem, int *out, int n)
{
    int i;
    CHECK_MPI(MPI_Win_lock(MPI_LOCK_SHARED, rank, 0, win));
    for (i = 0; i < n; i++)
        out[i] = ((const volatile int *)mem)[i];
    CHECK_MPI(MPI_Win_unlock(rank, win));
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The slots of rank 0's counter window */
enum { FOP, EXCL, LOCKWORD, GUARDED, CLAIM, PAIR, PAIR2, SWAP, INSIDE, NSLOTS = 16 };
#define K 8      /* Fetch_and_op increments per rank */
#define KEXCL 3  /* exclusive lock epochs per rank */
#define KSPIN 2  /* spin lock acquisitions per rank */

/* 5a. Fetch_and_op on a counter at rank 0 under lock_all */
static void fetch_and_op_counter(MPI_Win win, int *mem)
{
    int one = 1, got[K], *all = malloc(sizeof(int) * K * size), k, ok[2] = { 1, 1 }, n[2], final = -1;
    CHECK_MPI(MPI_Win_lock_all(0, win));
    for (k = 0; k < K; k++) {
        CHECK_MPI(MPI_Fetch_and_op(&one, &got[k], MPI_INT, 0, FOP, MPI_SUM, win));
        CHECK_MPI(MPI_Win_flush(0, win));
        if (k > 0 && got[k] <= got[k - 1])
            ok[0] = 0;
    }
    CHECK_MPI(MPI_Win_unlock_all(win));
    CHECK(ok[0], "this rank's fetched values do not increase");
    MPI_Gather(got, K, MPI_INT, all, K, MPI_INT, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        ok[1] = is_permutation(all, K * size, 0);
        CHECK(ok[1], "fetched values are not a permutation of 0..%d", K * size - 1);
    }
    ranks_ok_n(ok, n, 2);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        read_own(win, &mem[FOP], &final, 1);
    chk_say("fetch_and_op: counter after %d x %d increments: %d; fetched values a permutation: %s, increasing on "
            "each rank: %d/%d ranks",
            size, K, final, n[1] == size ? "yes" : "no", n[0], size);
    if (rank == 0)
        CHECK_EQ_INT(final, K * size, "Fetch_and_op counter");
    free(all);
}

/* 5b. exclusive locks: Get, flush, Put of counter + 1; each holder marks itself in INSIDE on entry (and
 * must find it 0) and unmarks itself on exit, holding the lock a millisecond so overlaps would show */
static void exclusive_counter(MPI_Win win, int *mem)
{
    int k, v, final = -1, one = 1, minus = -1, inside, overlaps = 0, all_overlaps = 0;
    for (k = 0; k < KEXCL; k++) {
        CHECK_MPI(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win));
        CHECK_MPI(MPI_Fetch_and_op(&one, &inside, MPI_INT, 0, INSIDE, MPI_SUM, win));
        CHECK_MPI(MPI_Get(&v, 1, MPI_INT, 0, EXCL, 1, MPI_INT, win));
        CHECK_MPI(MPI_Win_flush(0, win));
        overlaps += inside != 0;
        double until = now() + 0.001;
        while (now() < until)
            ;
        v++;
        CHECK_MPI(MPI_Put(&v, 1, MPI_INT, 0, EXCL, 1, MPI_INT, win));
        CHECK_MPI(MPI_Fetch_and_op(&minus, &inside, MPI_INT, 0, INSIDE, MPI_SUM, win));
        CHECK_MPI(MPI_Win_unlock(0, win));
    }
    CHECK(overlaps == 0, "%d exclusive epochs found another holder inside", overlaps);
    MPI_Reduce(&overlaps, &all_overlaps, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        read_own(win, &mem[EXCL], &final, 1);
        CHECK_EQ_INT(final, KEXCL * size, "counter under exclusive locks");
    }
    chk_say("exclusive lock: Get, flush, Put of +1, %d x %d times: %d; epochs that found another holder: %d", size,
            KEXCL, final, all_overlaps);
}

/* 5c. Compare_and_swap: the first to claim a slot wins; a spin lock around a Get/Put critical section */
static void compare_and_swap(MPI_Win win, int *mem)
{
    int none = -1, zero = 0, me = rank + 1, res, winner, won, wins = 0, k, v, ok[2] = { 1, 1 }, n[2], final = -1;
    CHECK_MPI(MPI_Win_lock_all(0, win));
    CHECK_MPI(MPI_Compare_and_swap(&rank, &none, &res, MPI_INT, 0, CLAIM, win));
    CHECK_MPI(MPI_Win_flush(0, win));
    won = res == -1;
    MPI_Allreduce(&won, &wins, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    CHECK_MPI(MPI_Fetch_and_op(NULL, &winner, MPI_INT, 0, CLAIM, MPI_NO_OP, win));
    CHECK_MPI(MPI_Win_flush(0, win));
    ok[0] = (won && winner == rank) || (!won && res == winner && winner >= 0 && winner < size);
    CHECK(ok[0], "claim: won %d, result %d, winner %d", won, res, winner);

    for (k = 0; k < KSPIN; k++) {
        do {
            CHECK_MPI(MPI_Compare_and_swap(&me, &zero, &res, MPI_INT, 0, LOCKWORD, win));
            CHECK_MPI(MPI_Win_flush(0, win));
        } while (res != 0);
        CHECK_MPI(MPI_Get(&v, 1, MPI_INT, 0, GUARDED, 1, MPI_INT, win));
        CHECK_MPI(MPI_Win_flush(0, win));
        v++;
        CHECK_MPI(MPI_Put(&v, 1, MPI_INT, 0, GUARDED, 1, MPI_INT, win));
        CHECK_MPI(MPI_Win_flush(0, win));
        CHECK_MPI(MPI_Compare_and_swap(&zero, &me, &res, MPI_INT, 0, LOCKWORD, win));
        CHECK_MPI(MPI_Win_flush(0, win));
        CHECK(res == me, "the spin lock was held by %d", res - 1);
        ok[1] = ok[1] && res == me;
    }
    CHECK_MPI(MPI_Win_unlock_all(win));
    ranks_ok_n(ok, n, 2);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        read_own(win, &mem[GUARDED], &final, 1);
        CHECK_EQ_INT(final, KSPIN * size, "counter under the CAS spin lock");
    }
    chk_say("compare_and_swap: %d winner(s) of the claim, its rank read back by %d/%d ranks", wins, n[0], size);
    chk_say("compare_and_swap: spin lock, %d x %d Get/Put increments: %d; lock word held by the releaser: %d/%d ranks",
            size, KSPIN, final, n[1], size);
}

/* 5d. a target busy without MPI calls: it polls its own window (Win_sync under lock_all), bounded in time */
static void busy_target(void)
{
    int *flags = NULL, one = 1, i, seen = 0, all_set, ok[1], n[1];
    double t0;
    MPI_Win win;
    if (rank == 0)
        flags = calloc(size + 1, sizeof(int));
    CHECK_MPI(MPI_Win_create(flags, rank == 0 ? (size + 1) * sizeof(int) : 0, sizeof(int), MPI_INFO_NULL,
                             MPI_COMM_WORLD, &win));
    if (rank == 0) {
        volatile int *vf = flags;
        CHECK_MPI(MPI_Win_lock_all(0, win));
        MPI_Barrier(MPI_COMM_WORLD);
        /* about 100 ms of work without MPI calls, then poll with Win_sync for at most 200 ms: the Puts may
         * complete only once the target calls MPI (with MPICH 4.0.2 they show after the barrier, not here) */
        for (t0 = now(); now() - t0 < 0.1;)
            ;
        for (t0 = now(); !seen && now() - t0 < 0.2;) {
            CHECK_MPI(MPI_Win_sync(win));
            for (i = 1, all_set = 1; i < size; i++)
                all_set = all_set && vf[i] == i;
            seen = all_set;
        }
        CHECK_MPI(MPI_Win_unlock_all(win));
    } else {
        MPI_Barrier(MPI_COMM_WORLD);
        CHECK_MPI(MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, win));
        CHECK_MPI(MPI_Put(&rank, 1, MPI_INT, 0, rank, 1, MPI_INT, win));
        CHECK_MPI(MPI_Accumulate(&one, 1, MPI_INT, 0, size, 1, MPI_INT, MPI_SUM, win));
        CHECK_MPI(MPI_Win_unlock(0, win));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    ok[0] = 1;
    if (rank == 0) {
        int *got = malloc((size + 1) * sizeof(int));
        read_own(win, flags, got, size + 1);
        for (i = 1; i < size; i++)
            ok[0] = ok[0] && got[i] == i;
        ok[0] = ok[0] && got[size] == size - 1;
        CHECK(ok[0], "Puts into the busy target");
        free(got);
    }
    ranks_ok_n(ok, n, 1);
    chk_say("busy target: Puts and Accumulates from %d rank(s) under shared locks: %s", size - 1,
            n[0] == size ? "all there" : "missing");
    CHECK_MPI(MPI_Win_free(&win));
    free(flags);
}

/* 5e. Get_accumulate: SUM, REPLACE as a swap, MPI_NO_OP as an atomic read */
static void get_accumulate(MPI_Win win)
{
    int inc[2] = { 1, rank }, old[2], swapped, mine[2], *all = malloc(sizeof(int) * 2 * size), after[3], ok[1], n[1];
    CHECK_MPI(MPI_Win_lock_all(0, win));
    CHECK_MPI(MPI_Get_accumulate(inc, 2, MPI_INT, old, 2, MPI_INT, 0, PAIR, 2, MPI_INT, MPI_SUM, win));
    CHECK_MPI(MPI_Get_accumulate(&rank, 1, MPI_INT, &swapped, 1, MPI_INT, 0, SWAP, 1, MPI_INT, MPI_REPLACE, win));
    CHECK_MPI(MPI_Win_flush(0, win));
    CHECK_MPI(MPI_Win_unlock_all(win));
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_MPI(MPI_Win_lock_all(0, win));
    CHECK_MPI(MPI_Get_accumulate(NULL, 0, MPI_INT, after, 3, MPI_INT, 0, PAIR, 3, MPI_INT, MPI_NO_OP, win));
    CHECK_MPI(MPI_Win_unlock_all(win));
    mine[0] = old[0];
    mine[1] = swapped;
    MPI_Gather(mine, 2, MPI_INT, all, 2, MPI_INT, 0, MPI_COMM_WORLD);
    ok[0] = after[0] == size && after[1] == size * (size - 1) / 2 && after[2] >= 0 && after[2] < size;
    CHECK(ok[0], "NO_OP read: %d %d %d", after[0], after[1], after[2]);
    ranks_ok_n(ok, n, 1);
    if (rank == 0) {
        int *f = malloc(sizeof(int) * size), *s = malloc(sizeof(int) * (size + 1)), r;
        for (r = 0; r < size; r++) {
            f[r] = all[2 * r];
            s[r] = all[2 * r + 1];
        }
        s[size] = after[2]; /* the swapped values and the last value: -1 and every rank once */
        CHECK(is_permutation(f, size, 0), "fetched counts are not a permutation");
        CHECK(is_permutation(s, size + 1, -1), "swapped values are not a permutation");
        chk_say("get_accumulate: SUM fetched a permutation: %s; REPLACE swaps lost nothing: %s",
                is_permutation(f, size, 0) ? "yes" : "no", is_permutation(s, size + 1, -1) ? "yes" : "no");
        free(f);
        free(s);
    }
    chk_say("get_accumulate: MPI_NO_OP read of the pair %d %d on %d/%d ranks", after[0], after[1], n[0], size);
    free(all);
}

/* 5f. flush, flush_local, flush_all, flush_local_all; Win_sync after a barrier */
static void flushes(void)
{
    int *mem, v, got[4] = { -1, -1, -1, -1 }, own[5], i, ok[2] = { 1, 1 }, n[2];
    MPI_Win win;
    CHECK_MPI(MPI_Win_allocate(8 * sizeof(int), sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &mem, &win));
    CHECK_MPI(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, rank, 0, win));
    for (i = 0; i < 8; i++)
        mem[i] = -1;
    CHECK_MPI(MPI_Win_unlock(rank, win));
    MPI_Barrier(MPI_COMM_WORLD);

    CHECK_MPI(MPI_Win_lock_all(0, win));
    v = rank * 10 + 1;
    CHECK_MPI(MPI_Put(&v, 1, MPI_INT, right, 0, 1, MPI_INT, win));
    CHECK_MPI(MPI_Win_flush(right, win));
    CHECK_MPI(MPI_Get(&got[0], 1, MPI_INT, right, 0, 1, MPI_INT, win));
    CHECK_MPI(MPI_Win_flush(right, win));

    v = rank * 10 + 2;
    CHECK_MPI(MPI_Put(&v, 1, MPI_INT, right, 1, 1, MPI_INT, win));
    CHECK_MPI(MPI_Win_flush_local(right, win));
    v = -99; /* the origin buffer is free again; the Put carried the old value */
    CHECK_MPI(MPI_Win_flush(right, win));
    CHECK_MPI(MPI_Get(&got[1], 1, MPI_INT, right, 1, 1, MPI_INT, win));
    CHECK_MPI(MPI_Win_flush_all(win));

    v = rank * 10 + 3;
    CHECK_MPI(MPI_Put(&v, 1, MPI_INT, right, 2, 1, MPI_INT, win));
    CHECK_MPI(MPI_Win_flush_local_all(win));
    v = -98;
    CHECK_MPI(MPI_Win_flush_all(win));
    CHECK_MPI(MPI_Get(&got[2], 1, MPI_INT, right, 2, 1, MPI_INT, win));
    CHECK_MPI(MPI_Win_flush_all(win));
    for (i = 0; i < 3; i++) {
        CHECK(got[i] == rank * 10 + 1 + i, "Get after flush %d: %d", i, got[i]);
        ok[0] = ok[0] && got[i] == rank * 10 + 1 + i;
    }

    /* Put and flush, barrier, then the target's Win_sync makes it visible to its loads */
    v = rank * 10 + 4;
    CHECK_MPI(MPI_Put(&v, 1, MPI_INT, right, 3, 1, MPI_INT, win));
    CHECK_MPI(MPI_Win_flush(right, win));
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_MPI(MPI_Win_sync(win));
    v = ((volatile int *)mem)[3];
    CHECK_EQ_INT(v, left * 10 + 4, "load after Win_sync");
    ok[1] = v == left * 10 + 4;
    CHECK_MPI(MPI_Win_unlock_all(win));

    MPI_Barrier(MPI_COMM_WORLD);
    read_own(win, mem, own, 5);
    for (i = 0; i < 4; i++)
        CHECK(own[i] == left * 10 + 1 + i, "own int %d after the epoch: %d", i, own[i]);
    CHECK(own[4] == -1, "own int 4 touched: %d", own[4]);
    ranks_ok_n(ok, n, 2);
    chk_say("flush: Put then Get from the same origin after flush, flush_local, flush_all, flush_local_all: %d/%d "
            "ranks right",
            n[0], size);
    chk_say("flush: Win_sync after flush and barrier shows the left neighbor's Put: %d/%d ranks", n[1], size);
    CHECK_MPI(MPI_Win_free(&win));
}

/* 6. request-based operations */
static void request_based(void)
{
    int *mem, v = rank * 10 + 1, inc = rank + 1, one = 1, g = -1, g2 = -1, old = -1, own[5], flag = 0;
    int *olds = malloc(sizeof(int) * size), ok[2], n[2];
    MPI_Request reqs[4], req;
    MPI_Win win;
    CHECK_MPI(MPI_Alloc_mem(8 * sizeof(int), MPI_INFO_NULL, &mem));
    mem[0] = -1;             /* Rput from the left */
    mem[1] = rank * 10 + 5;  /* Rget by the right */
    mem[2] = mem[3] = 0;     /* Raccumulate and Rget_accumulate at rank 0 */
    mem[4] = rank * 10 + 6;  /* Rget polled with Test by the left */
    CHECK_MPI(MPI_Win_create(mem, 8 * sizeof(int), sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &win));
    CHECK_MPI(MPI_Win_lock_all(0, win));
    CHECK_MPI(MPI_Rput(&v, 1, MPI_INT, right, 0, 1, MPI_INT, win, &reqs[0]));
    CHECK_MPI(MPI_Rget(&g, 1, MPI_INT, left, 1, 1, MPI_INT, win, &reqs[1]));
    CHECK_MPI(MPI_Raccumulate(&inc, 1, MPI_INT, 0, 2, 1, MPI_INT, MPI_SUM, win, &reqs[2]));
    CHECK_MPI(MPI_Rget_accumulate(&one, 1, MPI_INT, &old, 1, MPI_INT, 0, 3, 1, MPI_INT, MPI_SUM, win, &reqs[3]));
    CHECK_MPI(MPI_Waitall(4, reqs, MPI_STATUSES_IGNORE));
    v = -1; /* Rput complete: its buffer may be reused */
    CHECK_MPI(MPI_Rget(&g2, 1, MPI_INT, right, 4, 1, MPI_INT, win, &req));
    while (!flag)
        CHECK_MPI(MPI_Test(&req, &flag, MPI_STATUS_IGNORE));
    CHECK(req == MPI_REQUEST_NULL, "Test of a completed Rget frees the request");
    CHECK_MPI(MPI_Win_unlock_all(win));
    ok[0] = g == left * 10 + 5 && g2 == right * 10 + 6;
    CHECK(ok[0], "Rget %d, Rget with Test %d", g, g2);
    MPI_Gather(&old, 1, MPI_INT, olds, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    read_own(win, mem, own, 5);
    ok[1] = own[0] == left * 10 + 1 && (rank != 0 || (own[2] == size * (size + 1) / 2 && own[3] == size));
    CHECK(ok[1], "after Rput/Raccumulate/Rget_accumulate: %d %d %d", own[0], own[2], own[3]);
    ranks_ok_n(ok, n, 2);
    chk_say("request-based: Rget, Rget polled with Test: %d/%d ranks right", n[0], size);
    chk_say("request-based: Rput into the right neighbor %d/%d; Raccumulate SUM at rank 0: %d; Rget_accumulate: %d, "
            "fetched a permutation: %s",
            n[1], size, own[2], own[3], rank == 0 && is_permutation(olds, size, 0) ? "yes" : "no");
    if (rank == 0)
        CHECK(is_permutation(olds, size, 0), "Rget_accumulate fetched values");
    CHECK_MPI(MPI_Win_free(&win));
    CHECK_MPI(MPI_Free_mem(mem));
    free(olds);
}

/* 512 KiB (above an eager limit of 256 KiB) Put under an exclusive lock, Get under a shared lock */
#define BIG (1 << 19)
static unsigned char pattern(int owner, size_t i)
{
    return (unsigned char)(owner * 41 + i * 3 + (i >> 11));
}

static void large_passive(void)
{
    unsigned char *base, *out = malloc(BIG), *in = malloc(BIG);
    size_t i, bad_put = 0, bad_get = 0;
    int ok[1], n[1];
    MPI_Win win;
    CHECK_MPI(MPI_Win_allocate(2 * BIG, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &base, &win));
    CHECK_MPI(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, rank, 0, win));
    for (i = 0; i < BIG; i++) {
        base[i] = pattern(rank, i);
        base[BIG + i] = 0;
        out[i] = pattern(rank + 50, i);
        in[i] = 0;
    }
    CHECK_MPI(MPI_Win_unlock(rank, win));
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_MPI(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, left, 0, win));
    CHECK_MPI(MPI_Put(out, BIG, MPI_BYTE, left, BIG, BIG, MPI_BYTE, win));
    CHECK_MPI(MPI_Win_unlock(left, win));
    CHECK_MPI(MPI_Win_lock(MPI_LOCK_SHARED, right, 0, win));
    CHECK_MPI(MPI_Get(in, BIG, MPI_BYTE, right, 0, BIG, MPI_BYTE, win));
    CHECK_MPI(MPI_Win_unlock(right, win));
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_MPI(MPI_Win_lock(MPI_LOCK_SHARED, rank, 0, win));
    for (i = 0; i < BIG; i++) {
        bad_put += base[BIG + i] != pattern(right + 50, i);
        bad_get += in[i] != pattern(right, i);
    }
    CHECK_MPI(MPI_Win_unlock(rank, win));
    ok[0] = bad_put == 0 && bad_get == 0;
    CHECK(ok[0], "512 KiB passive: %lu bad bytes put, %lu got", (unsigned long)bad_put, (unsigned long)bad_get);
    ranks_ok_n(ok, n, 1);
    chk_say("large: 512 KiB Put under an exclusive lock, 512 KiB Get under a shared lock: %d/%d ranks right", n[0],
            size);
    CHECK_MPI(MPI_Win_free(&win));
    free(out);
    free(in);
}

/* Accumulates from one origin to one location apply in the order issued (MPI 3.1 11.7.2, the default
 * accumulate_ordering): a 1 MiB REPLACE, then one-int REPLACEs into its first and last elements, then a
 * MPI_NO_OP Get_accumulate of the first, all in one lock epoch on the right neighbor. */
static void accumulate_order(void)
{
    int n = BIG / (int)sizeof(int) * 2, *base, *big = malloc(sizeof(int) * n), small = rank * 10 + 2, seen = -1, i;
    int ok[2], count[2], own[3];
    MPI_Win win;
    CHECK_MPI(MPI_Win_allocate((MPI_Aint)n * sizeof(int), sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &base, &win));
    CHECK_MPI(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, rank, 0, win));
    for (i = 0; i < n; i++) {
        base[i] = -1;
        big[i] = rank * 10 + 1;
    }
    CHECK_MPI(MPI_Win_unlock(rank, win));
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_MPI(MPI_Win_lock(MPI_LOCK_SHARED, right, 0, win));
    CHECK_MPI(MPI_Accumulate(big, n, MPI_INT, right, 0, n, MPI_INT, MPI_REPLACE, win));
    CHECK_MPI(MPI_Accumulate(&small, 1, MPI_INT, right, 0, 1, MPI_INT, MPI_REPLACE, win));
    CHECK_MPI(MPI_Accumulate(&small, 1, MPI_INT, right, n - 1, 1, MPI_INT, MPI_REPLACE, win));
    CHECK_MPI(MPI_Get_accumulate(NULL, 0, MPI_INT, &seen, 1, MPI_INT, right, 0, 1, MPI_INT, MPI_NO_OP, win));
    CHECK_MPI(MPI_Win_unlock(right, win));
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_MPI(MPI_Win_lock(MPI_LOCK_SHARED, rank, 0, win));
    own[0] = base[0];
    own[1] = base[n / 2];
    own[2] = base[n - 1];
    CHECK_MPI(MPI_Win_unlock(rank, win));
    ok[0] = seen == small;
    ok[1] = own[0] == left * 10 + 2 && own[1] == left * 10 + 1 && own[2] == left * 10 + 2;
    CHECK(ok[0], "Get_accumulate after the REPLACEs read %d, not %d", seen, small);
    CHECK(ok[1], "after 1 MiB then one-int REPLACEs: first %d, middle %d, last %d", own[0], own[1], own[2]);
    ranks_ok_n(ok, count, 2);
    chk_say("ordering: 1 MiB REPLACE, then one-int REPLACEs of its ends: read back in order on %d/%d ranks, in place "
            "on %d/%d",
            count[0], size, count[1], size);
    CHECK_MPI(MPI_Win_free(&win));
    free(big);
}

int main(int argc, char **argv)
{
    int *mem, i;
    MPI_Win win;
    chk_init(&argc, &argv, &rank, &size);
    left = (rank + size - 1) % size;
    right = (rank + 1) % size;
    chk_say("rma-passive: started on %d ranks", size);

    /* the counters of sections 5a, b, c, e live on rank 0 */
    CHECK_MPI(MPI_Win_allocate(rank == 0 ? NSLOTS * sizeof(int) : 0, sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &mem,
                               &win));
    if (rank == 0) {
        CHECK_MPI(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win));
        for (i = 0; i < NSLOTS; i++)
            mem[i] = 0;
        mem[CLAIM] = mem[SWAP] = -1;
        CHECK_MPI(MPI_Win_unlock(0, win));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    fetch_and_op_counter(win, mem);
    exclusive_counter(win, mem);
    compare_and_swap(win, mem);
    get_accumulate(win);
    CHECK_MPI(MPI_Win_free(&win));

    busy_target();
    flushes();
    request_based();
    large_passive();
    accumulate_order();
    return chk_finish();
}
