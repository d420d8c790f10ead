/* ranks: 2-8 */
/*
 * Nonblocking collectives on intercommunicators (MPI 3.1 5.12 with the
 * intercommunicator semantics of 5.2.2). The groups are intercomm.c's: A =
 * the world ranks r with r % 3 == 1 in ascending order, B = the others in
 * descending order (unequal sizes from 3 ranks on; B's local order is not the
 * world's), joined by Intercomm_create with local rank 0 of each group as
 * leader. Rooted collectives: MPI_ROOT on the root, MPI_PROC_NULL on the rest
 * of its group, the root's local rank in the other group; four roots, A's
 * last rank, B's leader, a middle rank of B and A's first rank (Ibcast:
 * the leaders only, see 2). Arguments that are not significant are passed as
 * NULL, except the receive buffers of the root group's MPI_PROC_NULL ranks,
 * which must stay untouched, and Ireduce's send buffer at MPI_ROOT (MPICH
 * 4.0.2 rejects NULL there).
 * In every section all the calls are started back to back on the one
 * intercommunicator (2 to 8 outstanding at once), then an Allreduce on the
 * local group's intracommunicator and a Bcast on MPI_COMM_WORLD run, then
 * one Waitall takes the requests in reverse order (all MPI_REQUEST_NULL
 * after it). Receive buffers are filled with a sentinel: elements past the
 * counts, in gaps between blocks and in the holes of strided types keep it.
 * 1. Ibarrier synchronizes the groups: one group starts it and Tests it
 *    three times (10 ms apart) while the other group's last rank has not
 *    started it yet (it waits for a message each rank of the first group
 *    sends after its Tests): never done; then both complete. Both ways.
 * 2. Ibcast (2 to 5 ints) from B's and A's leader in turn, four at once: the
 *    other group gets the data, the root's buffer and its group's are
 *    unchanged. Two 256 KiB Ibcasts at once (B's leader to A, A's leader to
 *    B), the first Tested until done. Only leaders as roots: MPICH 4.0.2's
 *    MPIR_Ibcast_inter_sched_flat has the remote group's rank 0 receive and
 *    then broadcasts in that group from local rank `root` instead of 0, so
 *    any other root leaves the receivers' buffers unchanged (or asserts when
 *    root is not below the receiving group's size).
 * 3. Ireduce to each root of the other group's data: MPI_SUM on 3 ints and a
 *    user-defined non-commutative op (2x2 matrix product, a contiguous type
 *    of 4 ints, 2 matrices): the product in the other group's local rank
 *    order (the test data give a different product in any other order).
 * 4. Iallreduce SUM, MAX and the matrix product: each group gets the other
 *    group's reduction.
 * 5. Igather (1 to 3 ints per rank) and Iscatter (3 to 1) from/to each root.
 * 6. Igatherv and Iscatterv from/to each root: a count per rank of the other
 *    group (one 0 when it has 3 ranks or more), displacements with gaps of 1
 *    or 2 elements, blocks in reverse rank order (Igatherv, every other
 *    Iscatterv); the send buffer's gaps are not sent.
 * 7. Iallgather (A sends 1 int, B 2) and Iallgatherv (counts differing
 *    between the groups, one 0, gaps, blocks in reverse and in rank order).
 * 8. Ialltoall (A sends 2 ints to each B rank, B 3 to each A rank),
 *    Ialltoallv (a count per pair, some 0, send blocks reversed, receive
 *    blocks in order, gaps) and Ialltoallw (a type per peer: MPI_INT or an
 *    int resized to an extent of 2 ints on either side, byte displacements
 *    with gaps, some counts 0).
 * 9. Ireduce_scatter_block and Ireduce_scatter, MPI_SUM: each rank gets its
 *    block of the other group's sum; the counts are the LOCAL group's (as in
 *    intercomm-coll.c: recvcount 2*nb in A and 2*na in B; recvcounts
 *    splitting 17 elements differently in each group, one 0).
 * 10. Six different ones at once: Ibcast (A's first rank to B), Iallreduce,
 *    Ibarrier, Ireduce (non-commutative, to B's last rank), Ialltoall,
 *    Iallgather, and point to point on the same intercommunicator (every rank
 *    to every remote rank) besides the Allreduce and Bcast before the Waitall.
 *
 * Only rank 0 prints; each section's result lines are printed at its end,
 * with how many ranks passed each check (one Allreduce per section).
 */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "check.h"

static int rank, size;
static int in_a;                      /* this rank is in group A */
static int na, nb, *a_world, *b_world; /* each group's world ranks in its local order */
static int lsize, lrank, rsize;       /* own group's size, own local rank, the other group's size */
static const int *my_world, *other_world;
static MPI_Comm local, inter;
static MPI_Datatype mat_type; /* a 2x2 int matrix */
static MPI_Op mat_op;         /* their product: not commutative */
static int between_runs, between_ok;

#define SENTINEL -7 /* receive buffers before a call */
#define JUNK -9     /* the gaps of send buffers */
#define BUF 64      /* ints: more than any buffer below needs at 8 ranks */
#define NROUNDS 4   /* roots of the rooted collectives */
#define MAXREQ 16

/* Ireduce's send buffer at MPI_ROOT, where it is not significant: MPICH 4.0.2 rejects NULL there */
static const int not_sent[8] = { JUNK, JUNK, JUNK, JUNK, JUNK, JUNK, JUNK, JUNK };

/* Result lines are queued and printed by rank 0 at the end of each section after one Allreduce: note(ok, ...)
 * queues a line that gets " on n/size ranks" appended, n being how many ranks passed (ok 1), note(-1, ...) a line
 * printed as is. Every rank queues the same lines. */
#define MAX_NOTES 24
#define NOTE_LEN 320
static char notes[MAX_NOTES][NOTE_LEN];
static int note_ok[MAX_NOTES], note_counted[MAX_NOTES], nnotes;

static void note(int ok, const char *fmt, ...)
{
    va_list ap;
    if (nnotes == MAX_NOTES) {
        CHECK(0, "too many notes");
        return;
    }
    va_start(ap, fmt);
    vsnprintf(notes[nnotes], NOTE_LEN, fmt, ap);
    va_end(ap);
    note_counted[nnotes] = ok >= 0;
    note_ok[nnotes] = ok > 0;
    nnotes++;
}

static void flush_notes(void)
{
    int n[MAX_NOTES], i;
    MPI_Allreduce(note_ok, n, MAX_NOTES, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    for (i = 0; i < nnotes; i++) {
        if (note_counted[i])
            chk_say("%s on %d/%d ranks", notes[i], n[i], size);
        else
            chk_say("%s", notes[i]);
        note_ok[i] = 0;
    }
    nnotes = 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void list_str(const int *v, int n, char *out, size_t cap)
{
    size_t used = 0;
    int i;
    out[0] = '\0';
    for (i = 0; i < n && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, i ? " %d" : "%d", v[i]);
}

/* The world ranks of a group's members in its order; returns its size. */
static int group_world(MPI_Group g, int *out)
{
    MPI_Group wg;
    int n, i, from[BUF];
    MPI_Group_size(g, &n);
    for (i = 0; i < n; i++)
        from[i] = i;
    MPI_Comm_group(MPI_COMM_WORLD, &wg);
    MPI_Group_translate_ranks(g, n, from, wg, out);
    MPI_Group_free(&wg);
    return n;
}

static int same_list(const int *a, const int *b, int n)
{
    int i;
    for (i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

/* The first index where buf differs from expect, or -1. */
static int first_diff(const int *buf, const int *expect, int n)
{
    int i;
    for (i = 0; i < n; i++)
        if (buf[i] != expect[i])
            return i;
    return -1;
}

/* Compares n ints with what was expected; a CHECK failure names what and the first wrong element. */
static int same_ints(const int *buf, const int *expect, int n, const char *what, int idx)
{
    int bad = first_diff(buf, expect, n);
    CHECK(bad < 0, "%s (round %d): element %d is %d, expected %d", what, idx, bad, bad < 0 ? 0 : buf[bad],
          bad < 0 ? 0 : expect[bad]);
    return bad < 0;
}

static void fill(int *buf, int n, int v)
{
    int i;
    for (i = 0; i < n; i++)
        buf[i] = v;
}

/* Displacements for n blocks of width[k] elements, in rank order or in reverse, with a gap of 1 element before
 * the first block and of 1 + k % 2 elements after block k; returns the buffer length. */
static int layout(const int *width, int n, int reverse, int *displs)
{
    int t, k, pos = 1;
    for (t = 0; t < n; t++) {
        k = reverse ? n - 1 - t : t;
        displs[k] = pos;
        pos += width[k] + 1 + k % 2;
    }
    return pos;
}

/* Waitall over the n requests in reverse order of their start; whether all came back MPI_REQUEST_NULL */
static int wait_reversed(int n, const MPI_Request *req)
{
    MPI_Request rev[MAXREQ];
    MPI_Status st[MAXREQ];
    int i, ok = 1;
    for (i = 0; i < n; i++)
        rev[i] = req[n - 1 - i];
    CHECK_MPI(MPI_Waitall(n, rev, st));
    for (i = 0; i < n; i++)
        ok = ok && rev[i] == MPI_REQUEST_NULL;
    CHECK(ok, "Waitall left a request that is not MPI_REQUEST_NULL");
    return ok;
}

/* What runs while nonblocking collectives are outstanding on the intercomm: an Allreduce on the local group's
 * intracommunicator and a Bcast from the last world rank on MPI_COMM_WORLD. */
static void between(int salt)
{
    int v = lrank + salt, s = -1, b = rank == size - 1 ? 7000 + salt : -1, ok;
    CHECK_MPI(MPI_Allreduce(&v, &s, 1, MPI_INT, MPI_SUM, local));
    CHECK_MPI(MPI_Bcast(&b, 1, MPI_INT, size - 1, MPI_COMM_WORLD));
    ok = s == lsize * (lsize - 1) / 2 + lsize * salt && b == 7000 + salt;
    CHECK(ok, "between (salt %d): local Allreduce %d, world Bcast %d", salt, s, b);
    between_runs++;
    between_ok += ok;
}

/* n requests outstanding at once, one Waitall in reverse order: the line every section prints about that */
static void note_outstanding(int ok, int n, const char *what)
{
    note(ok, "%d outstanding at once (%s), Allreduce on the local comm and Bcast on the world between, one Waitall "
             "in reverse order",
         n, what);
}

/* 2x2 int matrices (row major), inout = in x inout: not commutative */
static void matmul(void *in, void *inout, int *len, MPI_Datatype *type)
{
    int *a = in, *b = inout, i;
    (void)type;
    for (i = 0; i < *len; i++, a += 4, b += 4) {
        int c0 = a[0] * b[0] + a[1] * b[2], c1 = a[0] * b[1] + a[1] * b[3];
        int c2 = a[2] * b[0] + a[3] * b[2], c3 = a[2] * b[1] + a[3] * b[3];
        b[0] = c0, b[1] = c1, b[2] = c2, b[3] = c3;
    }
}

/* Matrix j of world rank w in a call with salt s */
static void mat_of(int s, int w, int j, int *m)
{
    m[0] = w + 1;
    m[1] = 1 + (s + j) % 2;
    m[2] = 1;
    m[3] = j;
}

/* The product of the 2 matrices of each of the other group's ranks in their local order (reversed: in the
 * reverse order), into out[8] */
static void mat_product(int s, int reversed, int *out)
{
    int j, t, one = 1, next[4];
    for (j = 0; j < 2; j++) {
        mat_of(s, other_world[reversed ? rsize - 1 : 0], j, out + 4 * j);
        for (t = 1; t < rsize; t++) {
            mat_of(s, other_world[reversed ? rsize - 1 - t : t], j, next);
            matmul(out + 4 * j, next, &one, NULL); /* next = product so far x next */
            memcpy(out + 4 * j, next, sizeof next);
        }
    }
}

/* 0. The groups and the intercommunicator */
struct round {
    int root_in_a, root;
};
static struct round rounds[NROUNDS];
/* Ibcast's roots: only the leaders (MPICH 4.0.2 gets any other root wrong, see the header) */
#define NBC_ROUNDS 4
static struct round bc_rounds[NBC_ROUNDS];

static void setup(void)
{
    MPI_Group g;
    int i, s = -1, r = -1, rs = -1, flag = -1, w[BUF], n, ok, p1[8], p2[8];
    char la[64], lb[64];
    a_world = malloc(sizeof(int) * (size_t)size);
    b_world = malloc(sizeof(int) * (size_t)size);
    for (na = 0, i = 0; i < size; i++)
        if (i % 3 == 1)
            a_world[na++] = i;
    for (nb = 0, i = size - 1; i >= 0; i--)
        if (i % 3 != 1)
            b_world[nb++] = i;
    in_a = rank % 3 == 1;
    my_world = in_a ? a_world : b_world;
    other_world = in_a ? b_world : a_world;
    lsize = in_a ? na : nb;
    rsize = in_a ? nb : na;
    for (lrank = 0; my_world[lrank] != rank; lrank++)
        ;
    list_str(a_world, na, la, sizeof la);
    list_str(b_world, nb, lb, sizeof lb);
    note(-1, "groups: A = world ranks %s (%d), B = world ranks %s (%d)", la, na, lb, nb);

    MPI_Comm_split(MPI_COMM_WORLD, in_a ? 0 : 1, in_a ? rank : size - rank, &local);
    CHECK_MPI(MPI_Intercomm_create(local, 0, MPI_COMM_WORLD, other_world[0], 100, &inter));
    MPI_Comm_test_inter(inter, &flag);
    MPI_Comm_size(inter, &s);
    MPI_Comm_rank(inter, &r);
    MPI_Comm_remote_size(inter, &rs);
    MPI_Comm_remote_group(inter, &g);
    n = group_world(g, w);
    MPI_Group_free(&g);
    ok = flag == 1 && s == lsize && r == lrank && rs == rsize && n == rsize && same_list(w, other_world, rsize);
    CHECK(ok, "intercomm: test_inter %d size %d rank %d remote size %d", flag, s, r, rs);
    note(ok, "Intercomm_create: sizes, ranks and remote group as expected");

    /* A's last rank, B's leader, a middle rank of B, A's first rank */
    rounds[0].root_in_a = 1, rounds[0].root = na - 1;
    rounds[1].root_in_a = 0, rounds[1].root = 0;
    rounds[2].root_in_a = 0, rounds[2].root = nb / 2;
    rounds[3].root_in_a = 1, rounds[3].root = 0;
    for (i = 0; i < NBC_ROUNDS; i++)
        bc_rounds[i].root_in_a = i % 2, bc_rounds[i].root = 0;

    MPI_Type_contiguous(4, MPI_INT, &mat_type);
    MPI_Type_commit(&mat_type);
    MPI_Op_create(matmul, 0, &mat_op);
    /* the matrices tell the remote group's order from its reverse */
    mat_product(0, 0, p1);
    mat_product(0, 1, p2);
    ok = rsize < 2 || !same_list(p1, p2, 8);
    CHECK(ok, "the test matrices give the same product in reverse order");
    flush_notes();
}

/* The root argument of this rank in a round; whether it is in the root group and whether it is the root */
static int root_arg(const struct round *rd, int *in_root_group, int *am_root)
{
    *in_root_group = rd->root_in_a == in_a;
    *am_root = *in_root_group && lrank == rd->root;
    return *in_root_group ? (*am_root ? MPI_ROOT : MPI_PROC_NULL) : rd->root;
}

static int root_world(const struct round *rd)
{
    return (rd->root_in_a ? a_world : b_world)[rd->root];
}

/* 1. Ibarrier synchronizes the two groups */
static void ibarrier(void)
{
    int k, t, flag, ok, go, n_early, held_world;
    MPI_Request req, sreq;
    for (k = 0; k < 2; k++) {
        int early = k == 0 ? in_a : !in_a; /* k 0: A starts first, B's last rank is held back */
        n_early = k == 0 ? na : nb;
        held_world = k == 0 ? b_world[nb - 1] : a_world[na - 1];
        ok = 1;
        if (early) {
            CHECK_MPI(MPI_Ibarrier(inter, &req));
            for (t = 0; t < 3; t++) {
                if (t)
                    sleep_ms(10);
                flag = -1;
                MPI_Test(&req, &flag, MPI_STATUS_IGNORE);
                if (flag) {
                    CHECK(0, "Ibarrier done (Test %d) before the other group's last rank started it", t);
                    ok = 0;
                    break;
                }
            }
            go = rank;
            MPI_Isend(&go, 1, MPI_INT, held_world, 30 + k, MPI_COMM_WORLD, &sreq);
            MPI_Wait(&sreq, MPI_STATUS_IGNORE);
            if (!flag)
                MPI_Wait(&req, MPI_STATUS_IGNORE);
        } else {
            if (rank == held_world)
                for (t = 0; t < n_early; t++)
                    MPI_Recv(&go, 1, MPI_INT, MPI_ANY_SOURCE, 30 + k, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            CHECK_MPI(MPI_Ibarrier(inter, &req));
            MPI_Wait(&req, MPI_STATUS_IGNORE);
        }
        ok = ok && req == MPI_REQUEST_NULL;
        note(ok,
             "Ibarrier: %s started it and Tested it 3 times, 10 ms apart, while %s rank %d had not: never done, then "
             "done in both groups",
             k == 0 ? "A" : "B", k == 0 ? "B" : "A", k == 0 ? nb - 1 : na - 1);
    }
    flush_notes();
}

/* 2. Ibcast */
#define BIG (64 * 1024) /* ints: 256 KiB */

static int bc_value(int idx, int w, int e)
{
    return 60000 + 1000 * idx + 10 * w + e;
}

static void ibcast(void)
{
    static int buf[NBC_ROUNDS][8], expect[NBC_ROUNDS][8];
    MPI_Request req[NBC_ROUNDS];
    int idx, e, irg, ar, root, cnt, ok, okw, tests = 0, flag = 0, i;
    int *big[2], bigroot[2], ok_big[2] = { 1, 1 };
    for (idx = 0; idx < NBC_ROUNDS; idx++) {
        root = root_arg(&bc_rounds[idx], &irg, &ar);
        cnt = 2 + idx;
        fill(buf[idx], 8, SENTINEL);
        fill(expect[idx], 8, SENTINEL);
        for (e = 0; e < cnt; e++) {
            if (ar)
                buf[idx][e] = expect[idx][e] = bc_value(idx, rank, e);
            else if (!irg)
                expect[idx][e] = bc_value(idx, root_world(&bc_rounds[idx]), e);
        }
        CHECK_MPI(MPI_Ibcast(buf[idx], cnt, MPI_INT, root, inter, &req[idx]));
    }
    between(2);
    okw = wait_reversed(NBC_ROUNDS, req);
    for (idx = 0; idx < NBC_ROUNDS; idx++) {
        const struct round *rd = &bc_rounds[idx];
        ok = same_ints(buf[idx], expect[idx], 8, "Ibcast", idx);
        note(ok, "Ibcast of %d ints from %s rank %d (world rank %d): %s gets them, %s's buffers unchanged", 2 + idx,
             rd->root_in_a ? "A" : "B", rd->root, root_world(rd), rd->root_in_a ? "B" : "A",
             rd->root_in_a ? "A" : "B");
    }
    note_outstanding(okw, NBC_ROUNDS, "Ibcast from either group");

    /* two of 256 KiB at once: B's leader to A, A's first rank to B; the first one Tested until done */
    bigroot[0] = in_a ? 0 : (lrank == 0 ? MPI_ROOT : MPI_PROC_NULL);
    bigroot[1] = !in_a ? 0 : (lrank == 0 ? MPI_ROOT : MPI_PROC_NULL);
    for (i = 0; i < 2; i++) {
        big[i] = malloc(sizeof(int) * (BIG + 1));
        for (e = 0; e <= BIG; e++)
            big[i][e] = bigroot[i] == MPI_ROOT && e < BIG ? 3 * e + 7 * i + rank : SENTINEL;
        CHECK_MPI(MPI_Ibcast(big[i], BIG, MPI_INT, bigroot[i], inter, &req[i]));
    }
    while (!flag) {
        CHECK_MPI(MPI_Test(&req[0], &flag, MPI_STATUS_IGNORE));
        tests++;
    }
    CHECK(req[0] == MPI_REQUEST_NULL, "Test done but the request not MPI_REQUEST_NULL");
    MPI_Wait(&req[1], MPI_STATUS_IGNORE);
    for (i = 0; i < 2; i++) {
        int from_world = i == 0 ? b_world[0] : a_world[0], receives = i == 0 ? in_a : !in_a;
        for (e = 0; e <= BIG && ok_big[i]; e++) {
            int want = e == BIG                    ? SENTINEL
                       : receives                  ? 3 * e + 7 * i + from_world
                       : bigroot[i] == MPI_ROOT ? 3 * e + 7 * i + rank
                                                   : SENTINEL;
            ok_big[i] = big[i][e] == want;
            CHECK(ok_big[i], "256 KiB Ibcast %d: element %d is %d, expected %d", i, e, big[i][e], want);
        }
        free(big[i]);
    }
    note(ok_big[0] && tests > 0 && req[0] == MPI_REQUEST_NULL,
         "256 KiB Ibcast from B rank 0 to A, Tested until done: right");
    note(ok_big[1], "256 KiB Ibcast from A rank 0 to B, outstanding with it: right");
    flush_notes();
}

/* 3. Ireduce: SUM and the non-commutative matrix product */
static int rd_value(int idx, int w, int e)
{
    return 1000 * idx + 100 * e + w + 1;
}

static void ireduce(void)
{
    static int sbuf[NROUNDS][3], rbuf[NROUNDS][6], rexp[NROUNDS][6], mbuf[NROUNDS][8], mres[NROUNDS][12],
        mexp[NROUNDS][12];
    MPI_Request req[2 * NROUNDS];
    int idx, e, k, j, irg, ar, root, ok, okw;
    for (idx = 0; idx < NROUNDS; idx++) {
        root = root_arg(&rounds[idx], &irg, &ar);
        fill(rbuf[idx], 6, SENTINEL);
        fill(rexp[idx], 6, SENTINEL);
        fill(mres[idx], 12, SENTINEL);
        fill(mexp[idx], 12, SENTINEL);
        for (e = 0; e < 3; e++)
            sbuf[idx][e] = rd_value(idx, rank, e);
        for (j = 0; j < 2; j++)
            mat_of(idx + 1, rank, j, mbuf[idx] + 4 * j);
        if (ar) {
            for (e = 0; e < 3; e++)
                for (rexp[idx][e] = 0, k = 0; k < rsize; k++)
                    rexp[idx][e] += rd_value(idx, other_world[k], e);
            mat_product(idx + 1, 0, mexp[idx]);
        }
        if (irg) {
            CHECK_MPI(MPI_Ireduce(ar ? not_sent : NULL, rbuf[idx], 3, MPI_INT, MPI_SUM, root, inter, &req[2 * idx]));
            CHECK_MPI(MPI_Ireduce(ar ? not_sent : NULL, mres[idx], 2, mat_type, mat_op, root, inter,
                                  &req[2 * idx + 1]));
        } else {
            CHECK_MPI(MPI_Ireduce(sbuf[idx], NULL, 3, MPI_INT, MPI_SUM, root, inter, &req[2 * idx]));
            CHECK_MPI(MPI_Ireduce(mbuf[idx], NULL, 2, mat_type, mat_op, root, inter, &req[2 * idx + 1]));
        }
    }
    between(3);
    okw = wait_reversed(2 * NROUNDS, req);
    for (idx = 0; idx < NROUNDS; idx++) {
        const struct round *rd = &rounds[idx];
        const char *from = rd->root_in_a ? "A" : "B", *to = rd->root_in_a ? "B" : "A";
        ok = same_ints(rbuf[idx], rexp[idx], 6, "Ireduce SUM", idx);
        note(ok, "Ireduce SUM of %s's 3 ints to %s rank %d: right, the rest of %s untouched", to, from, rd->root,
             from);
        ok = same_ints(mres[idx], mexp[idx], 12, "Ireduce matrix product", idx);
        note(ok, "Ireduce non-commutative matrix product of %s's 2 matrices to %s rank %d: in %s's rank order", to,
             from, rd->root, to);
    }
    note_outstanding(okw, 2 * NROUNDS, "Ireduce SUM and product to each root");
    flush_notes();
}

/* 4. Iallreduce */
static void iallreduce(void)
{
    int sbuf[3], sres[5], sexp[5], xbuf[2], xres[4], xexp[4], mbuf[8], mres[12], mexp[12], k, j, ok, okw;
    MPI_Request req[3];
    sbuf[0] = rank, sbuf[1] = lrank + 1, sbuf[2] = 7;
    xbuf[0] = rank, xbuf[1] = -lrank;
    for (j = 0; j < 2; j++)
        mat_of(9, rank, j, mbuf + 4 * j);
    fill(sres, 5, SENTINEL);
    fill(sexp, 5, SENTINEL);
    fill(xres, 4, SENTINEL);
    fill(xexp, 4, SENTINEL);
    fill(mres, 12, SENTINEL);
    fill(mexp, 12, SENTINEL);
    sexp[0] = 0, sexp[1] = rsize * (rsize + 1) / 2, sexp[2] = 7 * rsize;
    xexp[0] = -1, xexp[1] = 0;
    for (k = 0; k < rsize; k++) {
        sexp[0] += other_world[k];
        xexp[0] = other_world[k] > xexp[0] ? other_world[k] : xexp[0];
    }
    mat_product(9, 0, mexp);
    CHECK_MPI(MPI_Iallreduce(sbuf, sres, 3, MPI_INT, MPI_SUM, inter, &req[0]));
    CHECK_MPI(MPI_Iallreduce(mbuf, mres, 2, mat_type, mat_op, inter, &req[1]));
    CHECK_MPI(MPI_Iallreduce(xbuf, xres, 2, MPI_INT, MPI_MAX, inter, &req[2]));
    between(4);
    okw = wait_reversed(3, req);
    ok = same_ints(sres, sexp, 5, "Iallreduce SUM", 0);
    note(ok, "Iallreduce SUM: each group gets the other group's sum");
    ok = same_ints(xres, xexp, 4, "Iallreduce MAX", 0);
    note(ok, "Iallreduce MAX: each group gets the other group's maximum");
    ok = same_ints(mres, mexp, 12, "Iallreduce matrix product", 0);
    note(ok, "Iallreduce non-commutative matrix product: each group gets the other group's, in its rank order");
    note_outstanding(okw, 3, "Iallreduce SUM, product, MAX");
    flush_notes();
}

/* 5. Igather and Iscatter */
static int g_value(int idx, int w, int e)
{
    return 40000 + 1000 * idx + 10 * w + e;
}

static int s_value(int idx, int w, int e)
{
    return 45000 + 1000 * idx + 10 * w + e;
}

static void igather_iscatter(void)
{
    static int gs[NROUNDS][3], gr[NROUNDS][BUF], gexp[NROUNDS][BUF], ss[NROUNDS][BUF], sr[NROUNDS][5],
        sexp[NROUNDS][5];
    MPI_Request req[2 * NROUNDS];
    int idx, e, k, irg, ar, root, gc, sc, ok, okw;
    for (idx = 0; idx < NROUNDS; idx++) {
        root = root_arg(&rounds[idx], &irg, &ar);
        gc = 1 + idx % 3;
        sc = 3 - idx % 3;
        fill(gr[idx], BUF, SENTINEL);
        fill(gexp[idx], BUF, SENTINEL);
        fill(sr[idx], 5, SENTINEL);
        fill(sexp[idx], 5, SENTINEL);
        fill(ss[idx], BUF, JUNK);
        if (ar)
            for (k = 0; k < rsize; k++) {
                for (e = 0; e < gc; e++)
                    gexp[idx][k * gc + e] = g_value(idx, other_world[k], e);
                for (e = 0; e < sc; e++)
                    ss[idx][k * sc + e] = s_value(idx, other_world[k], e);
            }
        if (!irg) {
            for (e = 0; e < gc; e++)
                gs[idx][e] = g_value(idx, rank, e);
            for (e = 0; e < sc; e++)
                sexp[idx][e] = s_value(idx, rank, e);
        }
        if (irg) {
            CHECK_MPI(MPI_Igather(NULL, 0, MPI_INT, gr[idx], ar ? gc : 0, MPI_INT, root, inter, &req[2 * idx]));
            CHECK_MPI(MPI_Iscatter(ar ? ss[idx] : NULL, ar ? sc : 0, MPI_INT, sr[idx], 0, MPI_INT, root, inter,
                                   &req[2 * idx + 1]));
        } else {
            CHECK_MPI(MPI_Igather(gs[idx], gc, MPI_INT, NULL, 0, MPI_INT, root, inter, &req[2 * idx]));
            CHECK_MPI(MPI_Iscatter(NULL, 0, MPI_INT, sr[idx], sc, MPI_INT, root, inter, &req[2 * idx + 1]));
        }
    }
    between(5);
    okw = wait_reversed(2 * NROUNDS, req);
    for (idx = 0; idx < NROUNDS; idx++) {
        const struct round *rd = &rounds[idx];
        const char *from = rd->root_in_a ? "A" : "B", *to = rd->root_in_a ? "B" : "A";
        ok = same_ints(gr[idx], gexp[idx], BUF, "Igather", idx);
        note(ok, "Igather of %d int%s from each %s rank to %s rank %d: in rank order, the rest untouched",
             1 + idx % 3, idx % 3 ? "s" : "", to, from, rd->root);
        ok = same_ints(sr[idx], sexp[idx], 5, "Iscatter", idx);
        note(ok, "Iscatter of %d int%s to each %s rank from %s rank %d: right, the rest untouched", 3 - idx % 3,
             idx % 3 == 2 ? "" : "s", to, from, rd->root);
    }
    note_outstanding(okw, 2 * NROUNDS, "Igather and Iscatter with each root");
    flush_notes();
}

/* 6. Igatherv and Iscatterv */
/* The count of rank k of a group of n in an Igatherv/Iscatterv round */
static int vcount(int k, int n, int salt)
{
    return n > 2 && k == 1 ? 0 : 1 + (k + salt) % 3;
}

static int gv_value(int idx, int w, int e)
{
    return 10000 + 1000 * idx + 10 * w + e;
}

static int sv_value(int idx, int w, int e)
{
    return 20000 + 1000 * idx + 10 * w + e;
}

struct vround {
    int gcnt[BUF], gdis[BUF], gbuf[BUF], gexp[BUF], mine[4];
    int scnt[BUF], sdis[BUF], sbuf[BUF], small[6], sexp[6];
    char counts_g[64], counts_s[64];
};

static void igatherv_iscatterv(void)
{
    static struct vround vr[NROUNDS];
    MPI_Request req[2 * NROUNDS];
    int idx, k, e, c, irg, ar, root, n_other, ok, okw;
    for (idx = 0; idx < NROUNDS; idx++) {
        struct vround *v = &vr[idx];
        const struct round *rd = &rounds[idx];
        root = root_arg(rd, &irg, &ar);
        n_other = rd->root_in_a ? nb : na;

        /* Igatherv: the root gets rank k's vcount(k) ints at gdis[k], the blocks in reverse order with gaps */
        for (k = 0; k < n_other; k++)
            v->gcnt[k] = vcount(k, n_other, idx);
        list_str(v->gcnt, n_other, v->counts_g, sizeof v->counts_g);
        layout(v->gcnt, n_other, 1, v->gdis);
        fill(v->gbuf, BUF, SENTINEL);
        fill(v->gexp, BUF, SENTINEL);
        fill(v->mine, 4, JUNK);
        if (ar)
            for (k = 0; k < n_other; k++)
                for (e = 0; e < v->gcnt[k]; e++)
                    v->gexp[v->gdis[k] + e] = gv_value(idx, other_world[k], e);
        if (irg) {
            CHECK_MPI(MPI_Igatherv(NULL, 0, MPI_INT, v->gbuf, ar ? v->gcnt : NULL, ar ? v->gdis : NULL, MPI_INT, root,
                                   inter, &req[2 * idx]));
        } else {
            c = vcount(lrank, lsize, idx);
            for (e = 0; e < c; e++)
                v->mine[e] = gv_value(idx, rank, e);
            CHECK_MPI(MPI_Igatherv(v->mine, c, MPI_INT, NULL, NULL, NULL, MPI_INT, root, inter, &req[2 * idx]));
        }

        /* Iscatterv: the root sends rank k vcount(k) ints from sdis[k] (gaps hold JUNK) */
        for (k = 0; k < n_other; k++)
            v->scnt[k] = vcount(k, n_other, idx + 1);
        list_str(v->scnt, n_other, v->counts_s, sizeof v->counts_s);
        layout(v->scnt, n_other, idx % 2, v->sdis);
        fill(v->sbuf, BUF, JUNK);
        if (ar)
            for (k = 0; k < n_other; k++)
                for (e = 0; e < v->scnt[k]; e++)
                    v->sbuf[v->sdis[k] + e] = sv_value(idx, other_world[k], e);
        fill(v->small, 6, SENTINEL);
        fill(v->sexp, 6, SENTINEL);
        if (irg) {
            CHECK_MPI(MPI_Iscatterv(ar ? v->sbuf : NULL, ar ? v->scnt : NULL, ar ? v->sdis : NULL, MPI_INT, v->small,
                                    0, MPI_INT, root, inter, &req[2 * idx + 1]));
        } else {
            c = vcount(lrank, lsize, idx + 1);
            for (e = 0; e < c; e++)
                v->sexp[e] = sv_value(idx, rank, e);
            CHECK_MPI(
                MPI_Iscatterv(NULL, NULL, NULL, MPI_INT, v->small, c, MPI_INT, root, inter, &req[2 * idx + 1]));
        }
    }
    between(6);
    okw = wait_reversed(2 * NROUNDS, req);
    for (idx = 0; idx < NROUNDS; idx++) {
        struct vround *v = &vr[idx];
        const struct round *rd = &rounds[idx];
        const char *from = rd->root_in_a ? "A" : "B", *to = rd->root_in_a ? "B" : "A";
        ok = same_ints(v->gbuf, v->gexp, BUF, "Igatherv", idx);
        note(ok, "Igatherv from %s (counts %s) to %s rank %d, blocks in reverse order with gaps: right", to,
             v->counts_g, from, rd->root);
        ok = same_ints(v->small, v->sexp, 6, "Iscatterv", idx);
        note(ok, "Iscatterv from %s rank %d to %s (counts %s), blocks in %s order with gaps: right", from, rd->root,
             to, v->counts_s, idx % 2 ? "reverse" : "rank");
    }
    note_outstanding(okw, 2 * NROUNDS, "Igatherv and Iscatterv with each root");
    flush_notes();
}

/* 7. Iallgather and Iallgatherv */
static int agcount(int is_a, int i, int n)
{
    if (is_a)
        return 1 + i % 2;
    return n > 1 && i == n - 1 ? 0 : 3 - i % 2;
}

static void iallgather(void)
{
    int cnt[BUF], displs[2][BUF], buf[2][BUF], expect[2][BUF], mine[2][4], c, k, e, ok, okw, reverse;
    int ag_mine[2], ag_buf[BUF], ag_exp[BUF], scount = in_a ? 1 : 2, rcount = in_a ? 2 : 1;
    MPI_Request req[3];
    char ca[64], cb[64];

    /* Iallgather: A ranks send 1 int, B ranks 2 */
    ag_mine[0] = 300 + rank;
    ag_mine[1] = 400 + lrank;
    fill(ag_buf, BUF, SENTINEL);
    fill(ag_exp, BUF, SENTINEL);
    for (k = 0; k < rsize; k++) {
        ag_exp[rcount * k] = 300 + other_world[k];
        if (rcount == 2)
            ag_exp[rcount * k + 1] = 400 + k;
    }
    CHECK_MPI(MPI_Iallgather(ag_mine, scount, MPI_INT, ag_buf, rcount, MPI_INT, inter, &req[0]));

    /* Iallgatherv, twice: the blocks in reverse order, then in rank order */
    for (k = 0; k < na; k++)
        cnt[k] = agcount(1, k, na);
    list_str(cnt, na, ca, sizeof ca);
    for (k = 0; k < nb; k++)
        cnt[k] = agcount(0, k, nb);
    list_str(cnt, nb, cb, sizeof cb);
    for (k = 0; k < rsize; k++)
        cnt[k] = agcount(!in_a, k, rsize); /* not changed until the requests are done */
    for (reverse = 1; reverse >= 0; reverse--) {
        c = agcount(in_a, lrank, lsize);
        fill(mine[reverse], 4, JUNK);
        for (e = 0; e < c; e++)
            mine[reverse][e] = 30000 + 1000 * reverse + 10 * rank + e;
        layout(cnt, rsize, reverse, displs[reverse]);
        fill(buf[reverse], BUF, SENTINEL);
        fill(expect[reverse], BUF, SENTINEL);
        for (k = 0; k < rsize; k++)
            for (e = 0; e < cnt[k]; e++)
                expect[reverse][displs[reverse][k] + e] = 30000 + 1000 * reverse + 10 * other_world[k] + e;
        CHECK_MPI(MPI_Iallgatherv(mine[reverse], c, MPI_INT, buf[reverse], cnt, displs[reverse], MPI_INT, inter,
                                  &req[2 - reverse]));
    }
    between(7);
    okw = wait_reversed(3, req);
    ok = same_ints(ag_buf, ag_exp, BUF, "Iallgather", 0);
    note(ok, "Iallgather (A sends 1 int, B 2): the other group's data in its rank order");
    for (reverse = 1; reverse >= 0; reverse--) {
        ok = same_ints(buf[reverse], expect[reverse], BUF, "Iallgatherv", reverse);
        note(ok, "Iallgatherv (A's counts %s, B's %s): the other group's blocks, %s order with gaps", ca, cb,
             reverse ? "reverse" : "rank");
    }
    note_outstanding(okw, 3, "Iallgather, Iallgatherv twice");
    flush_notes();
}

/* 8. Ialltoall, Ialltoallv, Ialltoallw */
/* What local rank i of group A (sender_is_a) or B sends to remote rank k */
static int a2a_count(int sender_is_a, int i, int k)
{
    return (i + 2 * k + sender_is_a) % 3;
}

static int w_count(int sender_is_a, int i, int k)
{
    return (2 * i + k + 1 + sender_is_a) % 3;
}

/* Ialltoallw: the sender uses the strided type for even remote ranks, the receiver for senders k with
 * k + its own local rank odd */
static int w_send_strided(int k)
{
    return k % 2 == 0;
}

static int w_recv_strided(int k, int me)
{
    return (k + me) % 2 == 1;
}

static void ialltoall(void)
{
    int a_scount = in_a ? 2 : 3, a_rcount = in_a ? 3 : 2, a_out[BUF], a_in[BUF], a_exp[BUF];
    int vscnt[BUF] = { 0 }, vsdis[BUF], vrcnt[BUF] = { 0 }, vrdis[BUF], vsbuf[BUF], vrbuf[BUF], vexp[BUF];
    int wscnt[BUF] = { 0 }, wsdis[BUF], wrcnt[BUF] = { 0 }, wrdis[BUF], wsbuf[BUF], wrbuf[BUF], wexp[BUF];
    int width[BUF] = { 0 }, k, e, step, ok, okw, zeros_v = 0, zeros_w = 0, all_v, all_w;
    MPI_Datatype stride2, wstypes[BUF], wrtypes[BUF];
    MPI_Request req[3];

    /* Ialltoall */
    fill(a_out, BUF, JUNK);
    fill(a_in, BUF, SENTINEL);
    fill(a_exp, BUF, SENTINEL);
    for (k = 0; k < rsize; k++) {
        for (e = 0; e < a_scount; e++)
            a_out[k * a_scount + e] = 80000 + 100 * rank + 10 * k + e;
        for (e = 0; e < a_rcount; e++)
            a_exp[k * a_rcount + e] = 80000 + 100 * other_world[k] + 10 * lrank + e;
    }
    CHECK_MPI(MPI_Ialltoall(a_out, a_scount, MPI_INT, a_in, a_rcount, MPI_INT, inter, &req[0]));

    /* Ialltoallv */
    for (k = 0; k < rsize; k++) {
        vscnt[k] = a2a_count(in_a, lrank, k);
        vrcnt[k] = a2a_count(!in_a, k, lrank);
    }
    layout(vscnt, rsize, 1, vsdis);
    layout(vrcnt, rsize, 0, vrdis);
    fill(vsbuf, BUF, JUNK);
    fill(vrbuf, BUF, SENTINEL);
    fill(vexp, BUF, SENTINEL);
    for (k = 0; k < rsize; k++) {
        for (e = 0; e < vscnt[k]; e++)
            vsbuf[vsdis[k] + e] = 50000 + 100 * rank + 10 * k + e;
        for (e = 0; e < vrcnt[k]; e++)
            vexp[vrdis[k] + e] = 50000 + 100 * other_world[k] + 10 * lrank + e;
        zeros_v += vscnt[k] == 0;
    }
    CHECK_MPI(MPI_Ialltoallv(vsbuf, vscnt, vsdis, MPI_INT, vrbuf, vrcnt, vrdis, MPI_INT, inter, &req[1]));

    /* Ialltoallw: MPI_INT or an int resized to 2 ints' extent, byte displacements */
    MPI_Type_create_resized(MPI_INT, 0, 2 * (MPI_Aint)sizeof(int), &stride2);
    MPI_Type_commit(&stride2);
    for (k = 0; k < rsize; k++) {
        wscnt[k] = w_count(in_a, lrank, k);
        wrcnt[k] = w_count(!in_a, k, lrank);
        wstypes[k] = w_send_strided(k) ? stride2 : MPI_INT;
        wrtypes[k] = w_recv_strided(k, lrank) ? stride2 : MPI_INT;
        zeros_w += wscnt[k] == 0;
    }
    for (k = 0; k < rsize; k++)
        width[k] = wscnt[k] * (w_send_strided(k) ? 2 : 1);
    layout(width, rsize, 1, wsdis);
    for (k = 0; k < rsize; k++)
        width[k] = wrcnt[k] * (w_recv_strided(k, lrank) ? 2 : 1);
    layout(width, rsize, 0, wrdis);
    fill(wsbuf, BUF, JUNK);
    fill(wrbuf, BUF, SENTINEL);
    fill(wexp, BUF, SENTINEL);
    for (k = 0; k < rsize; k++) {
        step = w_send_strided(k) ? 2 : 1;
        for (e = 0; e < wscnt[k]; e++)
            wsbuf[wsdis[k] + step * e] = 90000 + 100 * rank + 10 * k + e;
        step = w_recv_strided(k, lrank) ? 2 : 1;
        for (e = 0; e < wrcnt[k]; e++)
            wexp[wrdis[k] + step * e] = 90000 + 100 * other_world[k] + 10 * lrank + e;
    }
    for (k = 0; k < rsize; k++) { /* in bytes from here on */
        wsdis[k] *= (int)sizeof(int);
        wrdis[k] *= (int)sizeof(int);
    }
    CHECK_MPI(MPI_Ialltoallw(wsbuf, wscnt, wsdis, wstypes, wrbuf, wrcnt, wrdis, wrtypes, inter, &req[2]));

    between(8);
    okw = wait_reversed(3, req);
    MPI_Type_free(&stride2);
    MPI_Allreduce(&zeros_v, &all_v, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&zeros_w, &all_w, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    ok = same_ints(a_in, a_exp, BUF, "Ialltoall", 0);
    note(ok, "Ialltoall (A sends 2 ints to each B rank, B 3 to each A rank): right, the rest untouched");
    ok = same_ints(vrbuf, vexp, BUF, "Ialltoallv", 0);
    note(ok,
         "Ialltoallv (count (i + 2k + [A]) %% 3 from local rank i to remote rank k, %d of %d zero; send blocks "
         "reversed, receive blocks in order, gaps): right",
         all_v, 2 * na * nb);
    ok = same_ints(wrbuf, wexp, BUF, "Ialltoallw", 0);
    note(ok,
         "Ialltoallw (count (2i + k + 1 + [A]) %% 3, %d of %d zero; MPI_INT or an int of extent 2 ints on either "
         "side, byte displacements, gaps): right, holes untouched",
         all_w, 2 * na * nb);
    note_outstanding(okw, 3, "Ialltoall, Ialltoallv, Ialltoallw");
    flush_notes();
}

/* 9. Ireduce_scatter_block and Ireduce_scatter */
#define RS_TOTAL 17

/* The Ireduce_scatter recvcounts of a group of n: local rank 1 gets 0 (n > 1), the others 1, 2, ... and the last
 * one what is left of RS_TOTAL */
static void rs_counts(int n, int *out)
{
    int i, j = 0, left = RS_TOTAL, last = n == 2 ? 0 : n - 1;
    for (i = 0; i < n; i++) {
        out[i] = i == 1 || i == last ? 0 : ++j;
        left -= out[i];
    }
    out[last] = left;
}

static void ireduce_scatter(void)
{
    int rc, count, sbuf[2][BUF], rbuf[2][BUF], expect[2][BUF], cnt[BUF], e, k, ok, okw, sum_other = 0, off;
    MPI_Request req[2];
    char ca[64], cb[64];
    for (k = 0; k < rsize; k++)
        sum_other += other_world[k];

    /* Ireduce_scatter_block: recvcount 2 * (remote size), so count = 2 * na * nb in both groups */
    rc = 2 * rsize;
    count = lsize * rc;
    for (e = 0; e < count; e++)
        sbuf[0][e] = 100 * rank + e + 1;
    fill(rbuf[0], BUF, SENTINEL);
    fill(expect[0], BUF, SENTINEL);
    for (e = 0; e < rc; e++)
        expect[0][e] = 100 * sum_other + rsize * (lrank * rc + e + 1);
    CHECK_MPI(MPI_Ireduce_scatter_block(sbuf[0], rbuf[0], rc, MPI_INT, MPI_SUM, inter, &req[0]));

    /* Ireduce_scatter: recvcounts of the local group, RS_TOTAL elements in every send buffer */
    rs_counts(na, cnt);
    list_str(cnt, na, ca, sizeof ca);
    rs_counts(nb, cnt);
    list_str(cnt, nb, cb, sizeof cb);
    rs_counts(lsize, cnt);
    for (off = 0, k = 0; k < lrank; k++)
        off += cnt[k];
    for (e = 0; e < RS_TOTAL; e++)
        sbuf[1][e] = 7 * rank + 3 * e + 1;
    fill(rbuf[1], BUF, SENTINEL);
    fill(expect[1], BUF, SENTINEL);
    for (e = 0; e < cnt[lrank]; e++)
        expect[1][e] = 7 * sum_other + rsize * (3 * (off + e) + 1);
    CHECK_MPI(MPI_Ireduce_scatter(sbuf[1], rbuf[1], cnt, MPI_INT, MPI_SUM, inter, &req[1]));

    between(9);
    okw = wait_reversed(2, req);
    ok = same_ints(rbuf[0], expect[0], BUF, "Ireduce_scatter_block", 0);
    note(ok,
         "Ireduce_scatter_block SUM (recvcount %d in A, %d in B; %d elements per send buffer): each rank gets its "
         "block of the other group's sum",
         2 * nb, 2 * na, 2 * na * nb);
    ok = same_ints(rbuf[1], expect[1], BUF, "Ireduce_scatter", 0);
    note(ok,
         "Ireduce_scatter SUM (recvcounts %s in A, %s in B; %d elements per send buffer): each rank gets its block "
         "of the other group's sum",
         ca, cb, RS_TOTAL);
    note_outstanding(okw, 2, "Ireduce_scatter_block, Ireduce_scatter");
    flush_notes();
}

/* 10. Six different ones at once, with point to point on the same intercomm */
static void mixed(void)
{
    int bc[5], bc_exp[5], s_in[2], s_res[3], s_exp[3], m_in[8], m_res[12], m_exp[12], t_out[BUF], t_in[BUF],
        t_exp[BUF], g_in, g_buf[BUF], g_exp[BUF], p_in[BUF], k, e, j, ok, okw, ok_p = 1, bc_root, rd_root, am_bc_root,
        am_rd_root;
    MPI_Request req[6], preq[BUF];
    MPI_Status st, sts[BUF];

    /* Ibcast of 4 ints from A's first rank to B */
    am_bc_root = in_a && lrank == 0;
    bc_root = in_a ? (am_bc_root ? MPI_ROOT : MPI_PROC_NULL) : 0;
    fill(bc, 5, SENTINEL);
    fill(bc_exp, 5, SENTINEL);
    for (e = 0; e < 4; e++) {
        if (am_bc_root)
            bc[e] = bc_exp[e] = 500 + 10 * rank + e;
        else if (!in_a)
            bc_exp[e] = 500 + 10 * a_world[0] + e;
    }
    CHECK_MPI(MPI_Ibcast(bc, 4, MPI_INT, bc_root, inter, &req[0]));

    /* Iallreduce SUM */
    s_in[0] = rank + 1, s_in[1] = 2;
    fill(s_res, 3, SENTINEL);
    fill(s_exp, 3, SENTINEL);
    for (s_exp[0] = 0, k = 0; k < rsize; k++)
        s_exp[0] += other_world[k] + 1;
    s_exp[1] = 2 * rsize;
    CHECK_MPI(MPI_Iallreduce(s_in, s_res, 2, MPI_INT, MPI_SUM, inter, &req[1]));

    /* Ibarrier */
    CHECK_MPI(MPI_Ibarrier(inter, &req[2]));

    /* Ireduce of the matrix product to B's last rank */
    am_rd_root = !in_a && lrank == nb - 1;
    rd_root = !in_a ? (am_rd_root ? MPI_ROOT : MPI_PROC_NULL) : nb - 1;
    for (j = 0; j < 2; j++)
        mat_of(11, rank, j, m_in + 4 * j);
    fill(m_res, 12, SENTINEL);
    fill(m_exp, 12, SENTINEL);
    if (am_rd_root)
        mat_product(11, 0, m_exp);
    if (in_a)
        CHECK_MPI(MPI_Ireduce(m_in, NULL, 2, mat_type, mat_op, rd_root, inter, &req[3]));
    else
        CHECK_MPI(MPI_Ireduce(am_rd_root ? not_sent : NULL, m_res, 2, mat_type, mat_op, rd_root, inter, &req[3]));

    /* Ialltoall of 1 int */
    fill(t_in, BUF, SENTINEL);
    fill(t_exp, BUF, SENTINEL);
    for (k = 0; k < rsize; k++) {
        t_out[k] = 1000 * rank + k;
        t_exp[k] = 1000 * other_world[k] + lrank;
    }
    CHECK_MPI(MPI_Ialltoall(t_out, 1, MPI_INT, t_in, 1, MPI_INT, inter, &req[4]));

    /* Iallgather of 1 int */
    fill(g_buf, BUF, SENTINEL);
    fill(g_exp, BUF, SENTINEL);
    for (k = 0; k < rsize; k++)
        g_exp[k] = 2000 + other_world[k];
    g_in = 2000 + rank;
    CHECK_MPI(MPI_Iallgather(&g_in, 1, MPI_INT, g_buf, 1, MPI_INT, inter, &req[5]));

    /* point to point on the same intercomm: every rank to every remote rank, the same tag as nothing else */
    for (k = 0; k < rsize; k++)
        MPI_Isend(&rank, 1, MPI_INT, k, 9, inter, &preq[k]);
    for (k = 0; k < rsize; k++) {
        p_in[k] = -1;
        MPI_Recv(&p_in[k], 1, MPI_INT, k, 9, inter, &st);
        if (p_in[k] != other_world[k] || st.MPI_SOURCE != k || st.MPI_TAG != 9) {
            CHECK(0, "point to point from remote rank %d: %d (source %d tag %d), expected %d", k, p_in[k],
                  st.MPI_SOURCE, st.MPI_TAG, other_world[k]);
            ok_p = 0;
        }
    }
    MPI_Waitall(rsize, preq, sts);
    between(10);
    okw = wait_reversed(6, req);

    ok = same_ints(bc, bc_exp, 5, "mixed Ibcast", 0);
    note(ok, "Ibcast of 4 ints from A rank 0 to B: right");
    ok = same_ints(s_res, s_exp, 3, "mixed Iallreduce", 0);
    note(ok, "Iallreduce SUM: the other group's sum");
    note(okw, "Ibarrier: done");
    ok = same_ints(m_res, m_exp, 12, "mixed Ireduce", 0);
    note(ok, "Ireduce of the matrix product of A's matrices to B rank %d: in A's rank order", nb - 1);
    ok = same_ints(t_in, t_exp, BUF, "mixed Ialltoall", 0);
    note(ok, "Ialltoall of 1 int: right");
    ok = same_ints(g_buf, g_exp, BUF, "mixed Iallgather", 0);
    note(ok, "Iallgather of 1 int: right");
    note(ok_p, "point to point on the intercomm while they were outstanding: every remote rank's message right");
    note_outstanding(okw, 6, "Ibcast, Iallreduce, Ibarrier, Ireduce, Ialltoall, Iallgather");
    flush_notes();
}

int main(int argc, char **argv)
{
    int all;
    chk_init(&argc, &argv, &rank, &size);
    chk_require_ranks(size, 2);
    chk_say("intercomm-nbc: started on %d ranks", size);
    setup();
    ibarrier();
    ibcast();
    ireduce();
    iallreduce();
    igather_iscatter();
    igatherv_iscatterv();
    iallgather();
    ialltoall();
    ireduce_scatter();
    mixed();
    MPI_Allreduce(&between_ok, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    chk_say("Allreduce on the local comm and Bcast on the world between starts and waits: %d/%d right", all,
            between_runs * size);
    MPI_Op_free(&mat_op);
    MPI_Type_free(&mat_type);
    MPI_Comm_free(&inter);
    MPI_Comm_free(&local);
    free(a_world);
    free(b_world);
    return chk_finish();
}
