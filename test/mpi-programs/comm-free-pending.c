/* ranks: 1-8 */
/*
 * MPI_Comm_free with operations still pending on the communicator. MPI 3.1
 * 6.4.3: the handle becomes MPI_COMM_NULL at once, "any pending operations
 * that use this communicator will complete normally; the object is actually
 * deallocated only if there are no other active references to it".
 * 1. Point to point: on a Comm_dup of the world every rank posts receives
 *    from its left neighbour (16 ints, and 2 MiB that go as a large message)
 *    and sends to its right one, frees the dup, then waits: data and
 *    MPI_SOURCE right.
 * 2. Nonblocking collectives: Iallreduce, Ibarrier and an Ibcast of 1 MiB
 *    from the last rank on a dup freed before the Waitall.
 * 3. Persistent requests (Send_init, Bsend_init and Recv_init around the
 *    ring) made on a dup that is then freed, started and completed three
 *    times after.
 * 4. Intercommunicator (2 or more ranks; the low half and the high half):
 *    Iallreduce (sum of the remote group's values) and an Ibcast from the
 *    high half's rank 0, the intercommunicator and the local split freed
 *    before the Waitall.
 * 5. 100 rounds: a dup (odd rounds Comm_idup) of the world, a ring exchange
 *    and an Iallreduce on it, freed before the Waitall; then a Comm_dup of
 *    the world still works and keeps its messages apart.
 *
 * Only rank 0 prints: one line per section, with how many ranks passed.
 *
 * Not here: that a freed communicator's context is not given to a new one
 * while a receive is pending on it. Debian's MPICH 4.0.2 fails that (a
 * message on the new communicator completes the old receive), so it is
 * checked under Ferry only (test/runtime/programs/p2p-suite.c).
 */
#include "check.h"

#define BIG (256 * 1024) /* doubles: 2 MiB */

static int rank, size;

static double big_value(int from, int i) { return from * 1e6 + i * 0.5; }

static void section1(void)
{
    int before = chk_failures, left = (rank + size - 1) % size, right = (rank + 1) % size;
    int small_in[16], small_out[16];
    double *big_in = malloc(sizeof(double) * BIG), *big_out = malloc(sizeof(double) * BIG);
    MPI_Comm d;
    MPI_Request r[4];
    MPI_Status st[4];
    for (int i = 0; i < 16; i++)
        small_out[i] = rank * 100 + i, small_in[i] = -1;
    for (int i = 0; i < BIG; i++)
        big_out[i] = big_value(rank, i), big_in[i] = -1;
    MPI_Comm_dup(MPI_COMM_WORLD, &d);
    MPI_Irecv(small_in, 16, MPI_INT, left, 1, d, &r[0]);
    MPI_Irecv(big_in, BIG, MPI_DOUBLE, left, 2, d, &r[1]);
    MPI_Isend(small_out, 16, MPI_INT, right, 1, d, &r[2]);
    MPI_Isend(big_out, BIG, MPI_DOUBLE, right, 2, d, &r[3]);
    MPI_Comm_free(&d);
    CHECK(d == MPI_COMM_NULL, "section 1: the handle is not MPI_COMM_NULL after MPI_Comm_free");
    CHECK_MPI(MPI_Waitall(4, r, st));
    for (int i = 0; i < 16; i++)
        CHECK_EQ_INT(small_in[i], left * 100 + i, "section 1: small message");
    int bad = 0;
    for (int i = 0; i < BIG; i++)
        bad += big_in[i] != big_value(left, i);
    CHECK_EQ_INT(bad, 0, "section 1: doubles of the large message that differ");
    CHECK_EQ_INT(st[0].MPI_SOURCE, left, "section 1: MPI_SOURCE of the small message");
    CHECK_EQ_INT(st[1].MPI_SOURCE, left, "section 1: MPI_SOURCE of the large message");
    free(big_in);
    free(big_out);
    chk_report(chk_failures == before, "1 ring of 16 ints and 2 MiB completed after Comm_free");
}

static void section2(void)
{
    int before = chk_failures, mine = rank + 1, sum = -1;
    int n = 1024 * 1024 / (int)sizeof(int);
    int *buf = malloc(sizeof(int) * (size_t)n);
    MPI_Comm d;
    MPI_Request r[3];
    for (int i = 0; i < n; i++)
        buf[i] = rank == size - 1 ? i * 7 + 3 : -1;
    MPI_Comm_dup(MPI_COMM_WORLD, &d);
    MPI_Iallreduce(&mine, &sum, 1, MPI_INT, MPI_SUM, d, &r[0]);
    MPI_Ibarrier(d, &r[1]);
    MPI_Ibcast(buf, n, MPI_INT, size - 1, d, &r[2]);
    MPI_Comm_free(&d);
    CHECK_MPI(MPI_Waitall(3, r, MPI_STATUSES_IGNORE));
    CHECK_EQ_INT(sum, size * (size + 1) / 2, "section 2: Iallreduce");
    int bad = 0;
    for (int i = 0; i < n; i++)
        bad += buf[i] != i * 7 + 3;
    CHECK_EQ_INT(bad, 0, "section 2: ints of the Ibcast that differ");
    free(buf);
    chk_report(chk_failures == before, "2 Iallreduce, Ibarrier and Ibcast of 1 MiB completed after Comm_free");
}

static void section3(void)
{
    int before = chk_failures, left = (rank + size - 1) % size, right = (rank + 1) % size;
    int in = -1, out = -1, bin = -1, bout = -1, bsize = 0;
    static char attached[4 * (sizeof(int) + MPI_BSEND_OVERHEAD)];
    void *detached;
    MPI_Comm d;
    MPI_Request r[4];
    MPI_Buffer_attach(attached, sizeof attached);
    MPI_Comm_dup(MPI_COMM_WORLD, &d);
    MPI_Recv_init(&in, 1, MPI_INT, left, 3, d, &r[0]);
    MPI_Send_init(&out, 1, MPI_INT, right, 3, d, &r[1]);
    MPI_Recv_init(&bin, 1, MPI_INT, left, 4, d, &r[2]);
    MPI_Bsend_init(&bout, 1, MPI_INT, right, 4, d, &r[3]);
    MPI_Comm_free(&d);
    for (int round = 0; round < 3; round++) {
        out = rank * 10 + round;
        bout = rank * 10 + 5 + round;
        CHECK_MPI(MPI_Startall(4, r));
        CHECK_MPI(MPI_Waitall(4, r, MPI_STATUSES_IGNORE));
        CHECK_EQ_INT(in, left * 10 + round, "section 3: persistent receive");
        CHECK_EQ_INT(bin, left * 10 + 5 + round, "section 3: persistent receive of a Bsend_init");
    }
    for (int i = 0; i < 4; i++)
        MPI_Request_free(&r[i]);
    MPI_Buffer_detach(&detached, &bsize);
    chk_report(chk_failures == before, "3 persistent ring (Send_init, Bsend_init) started 3 times after Comm_free");
}

static void section4(void)
{
    int before = chk_failures;
    if (size < 2) {
        chk_report(1, "4 intercommunicator freed with collectives pending");
        return;
    }
    int half = size / 2, low = rank < half;
    MPI_Comm local, ic;
    MPI_Comm_split(MPI_COMM_WORLD, low, rank, &local);
    MPI_Intercomm_create(local, 0, MPI_COMM_WORLD, low ? half : 0, 77, &ic);
    int lrank, rsize;
    MPI_Comm_rank(local, &lrank);
    MPI_Comm_remote_size(ic, &rsize);
    int mine = (rank + 1) * 3, sum = -1, bc[64];
    for (int i = 0; i < 64; i++)
        bc[i] = -1;
    MPI_Request r[2];
    MPI_Iallreduce(&mine, &sum, 1, MPI_INT, MPI_SUM, ic, &r[0]);
    /* the high half's rank 0 broadcasts to the low half */
    int root = low ? 0 : (lrank == 0 ? MPI_ROOT : MPI_PROC_NULL);
    if (!low && lrank == 0)
        for (int i = 0; i < 64; i++)
            bc[i] = i * i + 1;
    MPI_Ibcast(bc, 64, MPI_INT, root, ic, &r[1]);
    MPI_Comm_free(&ic);
    MPI_Comm_free(&local);
    CHECK_MPI(MPI_Waitall(2, r, MPI_STATUSES_IGNORE));
    int expect = 0; /* the remote group's values */
    for (int w = low ? half : 0; w < (low ? size : half); w++)
        expect += (w + 1) * 3;
    CHECK_EQ_INT(sum, expect, "section 4: intercommunicator Iallreduce");
    if (low)
        for (int i = 0; i < 64; i++)
            CHECK_EQ_INT(bc[i], i * i + 1, "section 4: intercommunicator Ibcast");
    chk_report(chk_failures == before && rsize == (low ? size - half : half),
           "4 intercommunicator freed with collectives pending");
}

static void section5(void)
{
    int before = chk_failures, left = (rank + size - 1) % size, right = (rank + 1) % size;
    for (int round = 0; round < 100; round++) {
        MPI_Comm d;
        MPI_Request r[3];
        if (round % 2) {
            MPI_Comm_idup(MPI_COMM_WORLD, &d, &r[0]);
            MPI_Wait(&r[0], MPI_STATUS_IGNORE);
        } else {
            MPI_Comm_dup(MPI_COMM_WORLD, &d);
        }
        int in = -1, out = rank * 1000 + round, mine = round + rank, sum = -1;
        MPI_Irecv(&in, 1, MPI_INT, left, round, d, &r[0]);
        MPI_Isend(&out, 1, MPI_INT, right, round, d, &r[1]);
        MPI_Iallreduce(&mine, &sum, 1, MPI_INT, MPI_MAX, d, &r[2]);
        MPI_Comm_free(&d);
        CHECK_MPI(MPI_Waitall(3, r, MPI_STATUSES_IGNORE));
        CHECK_EQ_INT(in, left * 1000 + round, "section 5: ring message");
        CHECK_EQ_INT(sum, round + size - 1, "section 5: Iallreduce");
    }
    MPI_Comm d;
    int a = -1, b = -1, va = 1, vb = 2;
    MPI_Comm_dup(MPI_COMM_WORLD, &d);
    MPI_Request r[4];
    MPI_Irecv(&a, 1, MPI_INT, left, 9, MPI_COMM_WORLD, &r[0]);
    MPI_Irecv(&b, 1, MPI_INT, left, 9, d, &r[1]);
    MPI_Isend(&vb, 1, MPI_INT, right, 9, d, &r[2]);
    MPI_Isend(&va, 1, MPI_INT, right, 9, MPI_COMM_WORLD, &r[3]);
    MPI_Waitall(4, r, MPI_STATUSES_IGNORE);
    CHECK(a == 1 && b == 2, "section 5: the world got %d and the dup %d after the rounds", a, b);
    MPI_Comm_free(&d);
    chk_report(chk_failures == before, "5 100 rounds of dup or idup, exchange and free before the wait");
}

int main(int argc, char **argv)
{
    chk_init(&argc, &argv, &rank, &size);
    section1();
    section2();
    section3();
    section4();
    section5();
    return chk_finish();
}
