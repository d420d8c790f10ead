/* ranks: 1-8 */
/*
 * MPI_Reduce on vectors large enough for an implementation's long-message
 * algorithm (a reduce-scatter, then a gather of the blocks to the root), with
 * counts that do not divide by the rank count, to several roots; and
 * MPI_Reduce_scatter_block / MPI_Reduce_scatter, which such an algorithm may
 * share code with. Integer values, so every result is exact under any order
 * of combination. Only the root's receive buffer is significant: non-roots
 * pass NULL for some calls, and every rank checks that its send buffer is
 * unchanged.
 * 1. MPI_SUM, MPI_MAX and MPI_MIN of 100003 ints to root 0, to the last rank
 *    and to rank size / 2: element i of rank r is (i * 7 + r * 13) % 1000 - 500.
 * 2. MPI_IN_PLACE at the root, MPI_SUM of 65537 long longs to root 0 and of
 *    255 long longs to the last rank (MPICH 4.0.2 crashes on MPI_IN_PLACE at a
 *    root other than 0 above 2048 bytes, pmodels/mpich#6540).
 * 3. A contiguous derived type of 3 ints, 20011 of them, with a commutative
 *    user op adding them, to root 1 % size.
 * 4. A non-commutative user op (2x2 integer matrix product mod 65521) on 4099
 *    matrices to the last rank and to root 0: the product in rank order
 *    (rank 0's matrix leftmost); the matrices do not commute: the product in
 *    reverse order differs for at least 99% of them (checked).
 * 5. The same op on 1 and on 3 matrices to rank size / 2 (short messages).
 * 6. The counts 0, 1, 7 and the rank count minus 1 (fewer elements than
 *    ranks), MPI_SUM of ints, to the last rank.
 * 7. MPI_Reduce_scatter_block of 20000 ints per rank, and MPI_Reduce_scatter
 *    with rank r getting 1000 * r + 17 ints, MPI_SUM; every rank checks its
 *    block.
 * 8. 16 reductions in a row, no barrier between them: root i % size, 5 and
 *    40000 ints in turn, values depending on the iteration, so a message of
 *    one reduction matched by another gives a wrong result.
 * Sections 1 to 8 run twice: with the blocking calls, then with MPI_Ireduce,
 * MPI_Ireduce_scatter_block and MPI_Ireduce_scatter, each followed by its
 * MPI_Wait.
 * 9. Four nonblocking reductions in flight at once, then one MPI_Waitall:
 *    MPI_SUM of 100003 ints to the last rank, the matrix product of 4099
 *    matrices to rank size / 2, MPI_IN_PLACE MPI_SUM of 255 long longs at
 *    root 0, and MPI_Ireduce_scatter_block of 5000 ints per rank (values
 *    shifted by 7, so a message of another reduction shows).
 * Every rank checks every element it is responsible for; rank 0 prints a
 * line per section with how many ranks passed.
 */
#include "check.h"

#define MOD 65521

static int rank, size;

static int value(int i, int r) { return (i * 7 + r * 13) % 1000 - 500; }

/* The second pass runs every section again with the nonblocking calls, each followed by its MPI_Wait. */
static int nb;
#define PASS (nb ? "MPI_Ireduce and MPI_Wait: " : "")

static int wait_for(int rc, MPI_Request *q) { return rc != MPI_SUCCESS ? rc : MPI_Wait(q, MPI_STATUS_IGNORE); }

static int reduce(const void *in, void *out, int n, MPI_Datatype type, MPI_Op op, int root)
{
    MPI_Request q;
    return nb ? wait_for(MPI_Ireduce(in, out, n, type, op, root, MPI_COMM_WORLD, &q), &q)
              : MPI_Reduce(in, out, n, type, op, root, MPI_COMM_WORLD);
}

static int reduce_scatter_block(const void *in, void *out, int n, MPI_Datatype type, MPI_Op op)
{
    MPI_Request q;
    return nb ? wait_for(MPI_Ireduce_scatter_block(in, out, n, type, op, MPI_COMM_WORLD, &q), &q)
              : MPI_Reduce_scatter_block(in, out, n, type, op, MPI_COMM_WORLD);
}

static int reduce_scatter(const void *in, void *out, const int *counts, MPI_Datatype type, MPI_Op op)
{
    MPI_Request q;
    return nb ? wait_for(MPI_Ireduce_scatter(in, out, counts, type, op, MPI_COMM_WORLD, &q), &q)
              : MPI_Reduce_scatter(in, out, counts, type, op, MPI_COMM_WORLD);
}

/* inout += in, for elements of 3 ints */
static void add3(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    int *a = in, *b = inout;
    for (int i = 0; i < 3 * *len; i++)
        b[i] += a[i];
}

/* c = a x b for 2x2 matrices (row-major), mod MOD; c may be a or b */
static void mul2(const long long *a, const long long *b, long long *c)
{
    long long t[4] = { (a[0] * b[0] + a[1] * b[2]) % MOD, (a[0] * b[1] + a[1] * b[3]) % MOD,
                       (a[2] * b[0] + a[3] * b[2]) % MOD, (a[2] * b[1] + a[3] * b[3]) % MOD };
    memcpy(c, t, sizeof t);
}

/* inout = in x inout: in holds the lower ranks' product */
static void matmul(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    long long *a = in, *b = inout;
    for (int k = 0; k < *len; k++, a += 4, b += 4)
        mul2(a, b, b);
}

/* matrix k of rank r: for 2 to 8 ranks, the product in reverse rank order
 * differs from the right one for all but a few k (10 of 4099 for 3 ranks, from
 * k = 21, none for the other counts) */
static void matrix(int k, int r, long long *m)
{
    m[0] = 1 + (k + r) % 5;
    m[1] = r + 1 + k % 4;
    m[2] = (k + 2 * r) % 3 + 1;
    m[3] = 2 + (3 * k + r) % 7;
}

/* the product M0 x M1 x ... x M(size-1) of matrix k */
static void product(int k, long long *acc)
{
    acc[0] = 1, acc[1] = 0, acc[2] = 0, acc[3] = 1;
    for (int r = 0; r < size; r++) {
        long long m[4];
        matrix(k, r, m);
        mul2(acc, m, acc);
    }
}

/* the same in reverse order, M(size-1) x ... x M0 */
static void reverse_product(int k, long long *acc)
{
    acc[0] = 1, acc[1] = 0, acc[2] = 0, acc[3] = 1;
    for (int r = size - 1; r >= 0; r--) {
        long long m[4];
        matrix(k, r, m);
        mul2(acc, m, acc);
    }
}

static int sum_of(int i)
{
    int s = 0;
    for (int r = 0; r < size; r++)
        s += value(i, r);
    return s;
}

/* how many of the n ints at v are not this rank's values (plus shift) */
static int ints_changed(const int *v, int n, int shift)
{
    int bad = 0;
    for (int i = 0; i < n; i++)
        bad += v[i] != value(i, rank) + shift;
    return bad;
}

static void section1(void)
{
    int n = 100003, bad = 0, roots[3] = { 0, size - 1, size / 2 };
    int *in = malloc(sizeof(int) * n), *out = malloc(sizeof(int) * n), *sum = malloc(sizeof(int) * n),
        *mx = malloc(sizeof(int) * n), *mn = malloc(sizeof(int) * n);
    MPI_Op ops[3] = { MPI_SUM, MPI_MAX, MPI_MIN };
    const char *names[3] = { "MPI_SUM", "MPI_MAX", "MPI_MIN" };
    for (int i = 0; i < n; i++) {
        int s = 0, hi = value(i, 0), lo = value(i, 0);
        for (int r = 0; r < size; r++) {
            int v = value(i, r);
            s += v;
            hi = v > hi ? v : hi;
            lo = v < lo ? v : lo;
        }
        sum[i] = s, mx[i] = hi, mn[i] = lo;
        in[i] = value(i, rank);
    }
    for (int t = 0; t < 3; t++) {
        int root = roots[t];
        for (int o = 0; o < 3; o++) {
            const int *e = o == 0 ? sum : o == 1 ? mx : mn;
            int wrong = 0;
            for (int i = 0; i < n; i++)
                out[i] = -1000000;
            /* non-roots pass NULL for MPI_SUM, a buffer for the others */
            CHECK_MPI(reduce(in, rank != root && o == 0 ? NULL : out, n, MPI_INT, ops[o], root));
            if (rank == root) {
                for (int i = 0; i < n; i++)
                    wrong += out[i] != e[i];
                CHECK(wrong == 0, "section 1: %s to root %d: %d elements wrong", names[o], root, wrong);
            }
            int changed = ints_changed(in, n, 0);
            CHECK(changed == 0, "section 1: %s to root %d: %d send elements changed", names[o], root, changed);
            bad += wrong + changed;
        }
    }
    chk_report(bad == 0, "%s1. MPI_SUM, MPI_MAX, MPI_MIN of 100003 ints to roots 0, %d and %d", PASS, size - 1, size / 2);
    free(in), free(out), free(sum), free(mx), free(mn);
}

/* MPI_IN_PLACE at root, MPI_SUM of n long longs; returns the failures of this rank */
static int reduce_in_place(int n, int root)
{
    int bad = 0;
    long long *v = malloc(sizeof(long long) * n);
    for (int i = 0; i < n; i++)
        v[i] = (long long)i * 1000003LL + rank;
    if (rank == root)
        CHECK_MPI(reduce(MPI_IN_PLACE, v, n, MPI_LONG_LONG, MPI_SUM, root));
    else
        CHECK_MPI(reduce(v, NULL, n, MPI_LONG_LONG, MPI_SUM, root));
    for (int i = 0; i < n; i++) {
        long long e = rank == root ? (long long)i * 1000003LL * size + (long long)size * (size - 1) / 2
                                   : (long long)i * 1000003LL + rank;
        bad += v[i] != e;
    }
    CHECK(bad == 0, "section 2: %d long longs to root %d: %d elements wrong (%s)", n, root, bad,
          rank == root ? "result" : "send buffer");
    free(v);
    return bad;
}

static void section2(void)
{
    int bad = reduce_in_place(65537, 0);
    bad += reduce_in_place(255, size - 1);
    chk_report(bad == 0, "%s2. MPI_IN_PLACE, MPI_SUM of 65537 long longs to root 0 and of 255 to root %d", PASS, size - 1);
}

static void section3(void)
{
    int n = 20011, bad = 0, root = 1 % size;
    MPI_Datatype three;
    MPI_Op op;
    MPI_Type_contiguous(3, MPI_INT, &three);
    MPI_Type_commit(&three);
    MPI_Op_create(add3, 1, &op);
    int *in = malloc(sizeof(int) * 3 * n), *out = malloc(sizeof(int) * 3 * n);
    for (int i = 0; i < 3 * n; i++)
        in[i] = value(i, rank), out[i] = -1000000;
    CHECK_MPI(reduce(in, rank == root ? out : NULL, n, three, op, root));
    if (rank == root) {
        int wrong = 0;
        for (int i = 0; i < 3 * n; i++)
            wrong += out[i] != sum_of(i);
        CHECK(wrong == 0, "section 3: %d elements wrong", wrong);
        bad += wrong;
    }
    int changed = ints_changed(in, 3 * n, 0);
    CHECK(changed == 0, "section 3: %d send elements changed", changed);
    bad += changed;
    MPI_Type_free(&three);
    MPI_Op_free(&op);
    chk_report(bad == 0, "%s3. a commutative user op on 20011 elements of a contiguous type of 3 ints to root %d", PASS, root);
    free(in), free(out);
}

/* reduce n matrices with matmul to root; returns the failures of this rank */
static int reduce_matrices(int n, int root, int null_recv, const char *what)
{
    int bad = 0;
    MPI_Op op;
    MPI_Datatype mat;
    MPI_Type_contiguous(4, MPI_LONG_LONG, &mat);
    MPI_Type_commit(&mat);
    MPI_Op_create(matmul, 0, &op);
    long long *in = malloc(sizeof(long long) * 4 * n), *out = malloc(sizeof(long long) * 4 * n);
    for (int k = 0; k < n; k++) {
        matrix(k, rank, in + 4 * k);
        for (int j = 0; j < 4; j++)
            out[4 * k + j] = -1;
    }
    CHECK_MPI(reduce(in, rank != root && null_recv ? NULL : out, n, mat, op, root));
    if (rank == root) {
        int wrong = 0, differ = 0;
        for (int k = 0; k < n; k++) {
            long long e[4], rev[4];
            product(k, e);
            reverse_product(k, rev);
            for (int j = 0; j < 4; j++)
                wrong += out[4 * k + j] != e[j];
            differ += memcmp(e, rev, sizeof e) != 0;
        }
        CHECK(wrong == 0, "%s to root %d: %d elements wrong", what, root, wrong);
        /* the test tells the orders apart: (almost) every product differs from the reverse one */
        int blind = size > 1 && differ * 100LL < n * 99LL;
        CHECK(!blind, "%s: only %d of %d products differ from the reverse order", what, differ, n);
        bad += wrong + blind;
    }
    int changed = 0;
    for (int k = 0; k < n; k++) {
        long long m[4];
        matrix(k, rank, m);
        changed += memcmp(m, in + 4 * k, sizeof m) != 0;
    }
    CHECK(changed == 0, "%s to root %d: %d send matrices changed", what, root, changed);
    bad += changed;
    MPI_Op_free(&op);
    MPI_Type_free(&mat);
    free(in), free(out);
    return bad;
}

static void section4(void)
{
    int bad = reduce_matrices(4099, size - 1, 1, "section 4");
    bad += reduce_matrices(4099, 0, 0, "section 4");
    chk_report(bad == 0, "%s4. a non-commutative user op (2x2 matrix product) on 4099 matrices to roots %d and 0, in rank order", PASS,
               size - 1);
}

static void section5(void)
{
    int bad = reduce_matrices(1, size / 2, 1, "section 5 (1 matrix)");
    bad += reduce_matrices(3, size / 2, 0, "section 5 (3 matrices)");
    chk_report(bad == 0, "%s5. the non-commutative user op on 1 and 3 matrices to root %d, in rank order", PASS, size / 2);
}

static void section6(void)
{
    int counts[4] = { 0, 1, 7, size - 1 }, bad = 0, root = size - 1;
    for (int c = 0; c < 4; c++) {
        int n = counts[c], in[8], out[8];
        for (int i = 0; i < 8; i++)
            in[i] = value(i, rank), out[i] = -1000000;
        CHECK_MPI(reduce(in, rank == root ? out : NULL, n, MPI_INT, MPI_SUM, root));
        int wrong = 0;
        if (rank == root) {
            for (int i = 0; i < n; i++)
                wrong += out[i] != sum_of(i);
            for (int i = n; i < 8; i++) /* past the count: untouched */
                wrong += out[i] != -1000000;
        }
        wrong += ints_changed(in, 8, 0);
        CHECK(wrong == 0, "section 6: count %d: %d elements wrong", n, wrong);
        bad += wrong;
    }
    chk_report(bad == 0, "%s6. MPI_SUM of 0, 1, 7 and (ranks - 1) ints to root %d", PASS, root);
}

static void section7(void)
{
    int bad = 0;
    /* MPI_Reduce_scatter_block: block r of the sum to rank r */
    {
        int per = 20000, n = per * size;
        int *in = malloc(sizeof(int) * n), *out = malloc(sizeof(int) * per);
        for (int i = 0; i < n; i++)
            in[i] = value(i, rank);
        for (int i = 0; i < per; i++)
            out[i] = -1000000;
        CHECK_MPI(reduce_scatter_block(in, out, per, MPI_INT, MPI_SUM));
        int wrong = 0;
        for (int i = 0; i < per; i++)
            wrong += out[i] != sum_of(rank * per + i);
        wrong += ints_changed(in, n, 0);
        CHECK(wrong == 0, "section 7: Reduce_scatter_block: %d elements wrong", wrong);
        bad += wrong;
        free(in), free(out);
    }
    /* MPI_Reduce_scatter: rank r gets 1000 * r + 17 elements */
    {
        int *counts = malloc(sizeof(int) * size), n = 0, first = 0;
        for (int r = 0; r < size; r++) {
            counts[r] = 1000 * r + 17;
            if (r < rank)
                first += counts[r];
            n += counts[r];
        }
        int mine = counts[rank];
        int *in = malloc(sizeof(int) * n), *out = malloc(sizeof(int) * (mine + 1));
        for (int i = 0; i < n; i++)
            in[i] = value(i, rank);
        for (int i = 0; i < mine + 1; i++)
            out[i] = -1000000;
        CHECK_MPI(reduce_scatter(in, out, counts, MPI_INT, MPI_SUM));
        int wrong = 0;
        for (int i = 0; i < mine; i++)
            wrong += out[i] != sum_of(first + i);
        wrong += out[mine] != -1000000; /* past the block: untouched */
        wrong += ints_changed(in, n, 0);
        CHECK(wrong == 0, "section 7: Reduce_scatter: %d elements wrong", wrong);
        bad += wrong;
        free(counts), free(in), free(out);
    }
    chk_report(bad == 0, "%s7. MPI_Reduce_scatter_block of 20000 ints per rank, MPI_Reduce_scatter of 1000 * r + 17 ints", PASS);
}

static void section8(void)
{
    int bad = 0, big = 40000;
    int *in = malloc(sizeof(int) * big), *out = malloc(sizeof(int) * big);
    for (int it = 0; it < 16; it++) {
        int root = it % size, n = it % 2 ? big : 5, shift = it * 1000, wrong = 0;
        for (int i = 0; i < n; i++)
            in[i] = value(i, rank) + shift, out[i] = -1000000;
        CHECK_MPI(reduce(in, rank == root || it % 4 < 2 ? out : NULL, n, MPI_INT, MPI_SUM, root));
        if (rank == root)
            for (int i = 0; i < n; i++)
                wrong += out[i] != sum_of(i) + shift * size;
        wrong += ints_changed(in, n, shift);
        CHECK(wrong == 0, "section 8: iteration %d (root %d, %d ints): %d elements wrong", it, root, n, wrong);
        bad += wrong;
    }
    chk_report(bad == 0, "%s8. 16 reductions in a row, no barrier, root i %% ranks, 5 and 40000 ints in turn", PASS);
    free(in), free(out);
}

/* Four nonblocking reductions in flight at once, then one MPI_Waitall */
static void section9(void)
{
    int n = 100003, nm = 4099, nl = 255, per = 5000, bad = 0, last = size - 1, mid = size / 2;
    MPI_Request q[4];
    MPI_Op op;
    MPI_Datatype mat;
    MPI_Type_contiguous(4, MPI_LONG_LONG, &mat);
    MPI_Type_commit(&mat);
    MPI_Op_create(matmul, 0, &op);
    int *in = malloc(sizeof(int) * n), *out = malloc(sizeof(int) * n);
    int *rin = malloc(sizeof(int) * per * size), *rout = malloc(sizeof(int) * per);
    long long *m = malloc(sizeof(long long) * 4 * nm), *mo = malloc(sizeof(long long) * 4 * nm);
    long long *v = malloc(sizeof(long long) * nl);
    for (int i = 0; i < n; i++)
        in[i] = value(i, rank), out[i] = -1000000;
    for (int i = 0; i < per * size; i++) /* shifted: a message of another reduction gives a wrong block */
        rin[i] = value(i, rank) + 7;
    for (int i = 0; i < per; i++)
        rout[i] = -1000000;
    for (int k = 0; k < nm; k++) {
        matrix(k, rank, m + 4 * k);
        for (int j = 0; j < 4; j++)
            mo[4 * k + j] = -1;
    }
    for (int i = 0; i < nl; i++)
        v[i] = (long long)i * 1000003LL + rank;
    CHECK_MPI(MPI_Ireduce(in, rank == last ? out : NULL, n, MPI_INT, MPI_SUM, last, MPI_COMM_WORLD, &q[0]));
    CHECK_MPI(MPI_Ireduce(m, rank == mid ? mo : NULL, nm, mat, op, mid, MPI_COMM_WORLD, &q[1]));
    CHECK_MPI(MPI_Ireduce(rank == 0 ? MPI_IN_PLACE : v, rank == 0 ? v : NULL, nl, MPI_LONG_LONG, MPI_SUM, 0,
                          MPI_COMM_WORLD, &q[2]));
    CHECK_MPI(MPI_Ireduce_scatter_block(rin, rout, per, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &q[3]));
    CHECK_MPI(MPI_Waitall(4, q, MPI_STATUSES_IGNORE));
    int wrong[4] = { 0, 0, 0, 0 };
    if (rank == last)
        for (int i = 0; i < n; i++)
            wrong[0] += out[i] != sum_of(i);
    wrong[0] += ints_changed(in, n, 0);
    for (int k = 0; k < nm; k++) {
        long long e[4], mine[4];
        product(k, e);
        matrix(k, rank, mine);
        wrong[1] += rank == mid && memcmp(mo + 4 * k, e, sizeof e) != 0;
        wrong[1] += memcmp(m + 4 * k, mine, sizeof mine) != 0;
    }
    for (int i = 0; i < nl; i++)
        wrong[2] += v[i] != (rank == 0 ? (long long)i * 1000003LL * size + (long long)size * (size - 1) / 2
                                        : (long long)i * 1000003LL + rank);
    for (int i = 0; i < per; i++)
        wrong[3] += rout[i] != sum_of(rank * per + i) + 7 * size;
    wrong[3] += ints_changed(rin, per * size, 7);
    const char *what[4] = { "MPI_SUM of ints to the last rank", "the matrix product to rank size / 2",
                            "MPI_IN_PLACE at root 0", "MPI_Ireduce_scatter_block" };
    for (int i = 0; i < 4; i++) {
        CHECK(wrong[i] == 0, "section 9: %s: %d elements wrong", what[i], wrong[i]);
        bad += wrong[i];
    }
    chk_report(bad == 0, "9. four nonblocking reductions in flight, one MPI_Waitall: SUM of %d ints to root %d, "
               "%d matrices multiplied to root %d, MPI_IN_PLACE at root 0, Ireduce_scatter_block", n, last, nm, mid);
    MPI_Op_free(&op);
    MPI_Type_free(&mat);
    free(in), free(out), free(rin), free(rout), free(m), free(mo), free(v);
}

int main(int argc, char **argv)
{
    chk_init(&argc, &argv, &rank, &size);
    for (nb = 0; nb < 2; nb++) {
        section1();
        section2();
        section3();
        section4();
        section5();
        section6();
        section7();
        section8();
    }
    section9();
    return chk_finish();
}
