/* ranks: 1-8 */
/*
 * MPI_Allreduce on vectors large enough for an implementation's long-message
 * algorithm (MPICH's and Ferry's cut the vector into a block per rank), with
 * counts that do not divide by the rank count. Integer values, so every
 * result is exact under any order of combination.
 * 1. MPI_SUM of 100003 ints, and MPI_MAX and MPI_MIN of them: element i of
 *    rank r is (i * 7 + r * 13) % 1000 - 500.
 * 2. MPI_IN_PLACE, MPI_SUM of 65537 long longs.
 * 3. A contiguous derived type of 3 ints, 20011 of them, with a commutative
 *    user op adding them (MPICH defines no predefined op on derived types).
 * 4. A commutative user op (a bitwise or) on 50001 unsigned.
 * 5. A non-commutative user op (2x2 integer matrix product mod 65521) on
 *    4099 matrices: the product in rank order.
 * 6. The counts 0, 1, 7 and the rank count minus 1 (fewer elements than
 *    ranks), MPI_SUM of ints.
 * 7. MPI_Iallreduce: sections 1 (MPI_SUM), 2 and 5 as three nonblocking
 *    reductions in flight at once, completed by an MPI_Testall loop; then the
 *    matrix product of one matrix (a short vector).
 * Every rank checks every element; rank 0 prints a line per section with how
 * many ranks passed.
 */
#include "check.h"

static int rank, size;

static int value(int i, int r) { return (i * 7 + r * 13) % 1000 - 500; }

static void bor(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    unsigned *a = in, *b = inout;
    for (int i = 0; i < *len; i++)
        b[i] |= a[i];
}

/* inout = in x inout for 2x2 matrices (row-major), mod 65521 */
static void matmul(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    long long *a = in, *b = inout;
    for (int k = 0; k < *len; k++, a += 4, b += 4) {
        long long c[4] = { (a[0] * b[0] + a[1] * b[2]) % 65521, (a[0] * b[1] + a[1] * b[3]) % 65521,
                           (a[2] * b[0] + a[3] * b[2]) % 65521, (a[2] * b[1] + a[3] * b[3]) % 65521 };
        for (int j = 0; j < 4; j++)
            b[j] = c[j];
    }
}

/* inout += in, for elements of 3 ints */
static void add3(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    int *a = in, *b = inout;
    for (int i = 0; i < 3 * *len; i++)
        b[i] += a[i];
}

static void section1(void)
{
    int n = 100003, bad = 0;
    int *in = malloc(sizeof(int) * n), *sum = malloc(sizeof(int) * n), *mx = malloc(sizeof(int) * n),
        *mn = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++)
        in[i] = value(i, rank);
    CHECK_MPI(MPI_Allreduce(in, sum, n, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Allreduce(in, mx, n, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    CHECK_MPI(MPI_Allreduce(in, mn, n, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    for (int i = 0; i < n; i++) {
        int s = 0, hi = value(i, 0), lo = value(i, 0);
        for (int r = 0; r < size; r++) {
            int v = value(i, r);
            s += v;
            hi = v > hi ? v : hi;
            lo = v < lo ? v : lo;
        }
        bad += sum[i] != s || mx[i] != hi || mn[i] != lo;
    }
    CHECK_EQ_INT(bad, 0, "section 1: elements wrong");
    chk_report(bad == 0, "1. MPI_SUM, MPI_MAX, MPI_MIN of 100003 ints");
    free(in), free(sum), free(mx), free(mn);
}

static void section2(void)
{
    int n = 65537, bad = 0;
    long long *v = malloc(sizeof(long long) * n);
    for (int i = 0; i < n; i++)
        v[i] = (long long)i * 1000003LL + rank;
    CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD));
    for (int i = 0; i < n; i++)
        bad += v[i] != (long long)i * 1000003LL * size + (long long)size * (size - 1) / 2;
    CHECK_EQ_INT(bad, 0, "section 2: elements wrong");
    chk_report(bad == 0, "2. MPI_IN_PLACE, MPI_SUM of 65537 long longs");
    free(v);
}

static void section3(void)
{
    int n = 20011, bad = 0;
    MPI_Datatype three;
    MPI_Op op;
    MPI_Type_contiguous(3, MPI_INT, &three);
    MPI_Type_commit(&three);
    MPI_Op_create(add3, 1, &op);
    int *in = malloc(sizeof(int) * 3 * n), *out = malloc(sizeof(int) * 3 * n);
    for (int i = 0; i < 3 * n; i++)
        in[i] = value(i, rank);
    CHECK_MPI(MPI_Allreduce(in, out, n, three, op, MPI_COMM_WORLD));
    for (int i = 0; i < 3 * n; i++) {
        int s = 0;
        for (int r = 0; r < size; r++)
            s += value(i, r);
        bad += out[i] != s;
    }
    CHECK_EQ_INT(bad, 0, "section 3: elements wrong");
    MPI_Type_free(&three);
    MPI_Op_free(&op);
    chk_report(bad == 0, "3. a commutative user op on 20011 elements of a contiguous type of 3 ints");
    free(in), free(out);
}

static void section4(void)
{
    int n = 50001, bad = 0;
    MPI_Op op;
    MPI_Op_create(bor, 1, &op);
    unsigned *in = malloc(sizeof(unsigned) * n), *out = malloc(sizeof(unsigned) * n);
    for (int i = 0; i < n; i++)
        in[i] = 1u << ((i + rank) % 32);
    CHECK_MPI(MPI_Allreduce(in, out, n, MPI_UNSIGNED, op, MPI_COMM_WORLD));
    for (int i = 0; i < n; i++) {
        unsigned e = 0;
        for (int r = 0; r < size; r++)
            e |= 1u << ((i + r) % 32);
        bad += out[i] != e;
    }
    CHECK_EQ_INT(bad, 0, "section 4: elements wrong");
    MPI_Op_free(&op);
    chk_report(bad == 0, "4. a commutative user op on 50001 unsigned");
    free(in), free(out);
}

/* rank r's matrix k */
static void mat_of(int k, int r, long long *m)
{
    m[0] = 1 + (k + r) % 5, m[1] = r + 1, m[2] = k % 3, m[3] = 1;
}

/* The product M0 x M1 x ... x M(size-1) of matrices k, mod 65521 */
static void mat_product(int k, long long *acc)
{
    acc[0] = 1, acc[1] = 0, acc[2] = 0, acc[3] = 1;
    for (int r = 0; r < size; r++) {
        long long m[4];
        mat_of(k, r, m);
        long long c[4] = { (acc[0] * m[0] + acc[1] * m[2]) % 65521, (acc[0] * m[1] + acc[1] * m[3]) % 65521,
                           (acc[2] * m[0] + acc[3] * m[2]) % 65521, (acc[2] * m[1] + acc[3] * m[3]) % 65521 };
        for (int j = 0; j < 4; j++)
            acc[j] = c[j];
    }
}

static void section5(void)
{
    int n = 4099, bad = 0;
    MPI_Op op;
    MPI_Datatype mat;
    MPI_Type_contiguous(4, MPI_LONG_LONG, &mat);
    MPI_Type_commit(&mat);
    MPI_Op_create(matmul, 0, &op);
    long long *in = malloc(sizeof(long long) * 4 * n), *out = malloc(sizeof(long long) * 4 * n);
    for (int k = 0; k < n; k++)
        mat_of(k, rank, in + 4 * k);
    CHECK_MPI(MPI_Allreduce(in, out, n, mat, op, MPI_COMM_WORLD));
    for (int k = 0; k < n; k++) {
        long long acc[4];
        mat_product(k, acc);
        for (int j = 0; j < 4; j++)
            bad += out[4 * k + j] != acc[j];
    }
    CHECK_EQ_INT(bad, 0, "section 5: elements wrong");
    MPI_Op_free(&op);
    MPI_Type_free(&mat);
    chk_report(bad == 0, "5. a non-commutative user op (2x2 matrix product) on 4099 matrices, in rank order");
    free(in), free(out);
}

static void section6(void)
{
    int counts[4] = { 0, 1, 7, size - 1 }, bad = 0;
    for (int c = 0; c < 4; c++) {
        int n = counts[c], in[8], out[8];
        for (int i = 0; i < n; i++)
            in[i] = value(i, rank), out[i] = -1;
        CHECK_MPI(MPI_Allreduce(in, out, n, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
        for (int i = 0; i < n; i++) {
            int s = 0;
            for (int r = 0; r < size; r++)
                s += value(i, r);
            bad += out[i] != s;
        }
    }
    CHECK_EQ_INT(bad, 0, "section 6: elements wrong");
    chk_report(bad == 0, "6. MPI_SUM of 0, 1, 7 and (ranks - 1) ints");
}

static void section7(void)
{
    int n1 = 100003, n2 = 65537, n3 = 4099, bad = 0, flag = 0;
    int *in1 = malloc(sizeof(int) * n1), *out1 = malloc(sizeof(int) * n1);
    long long *v2 = malloc(sizeof(long long) * n2), *in3 = malloc(sizeof(long long) * 4 * n3),
              *out3 = malloc(sizeof(long long) * 4 * n3), one[4], one_out[4];
    MPI_Op op;
    MPI_Datatype mat;
    MPI_Request req[3];
    MPI_Type_contiguous(4, MPI_LONG_LONG, &mat);
    MPI_Type_commit(&mat);
    MPI_Op_create(matmul, 0, &op);
    for (int i = 0; i < n1; i++)
        in1[i] = value(i, rank);
    for (int i = 0; i < n2; i++)
        v2[i] = (long long)i * 1000003LL + rank;
    for (int k = 0; k < n3; k++)
        mat_of(k, rank, in3 + 4 * k);
    CHECK_MPI(MPI_Iallreduce(in1, out1, n1, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &req[0]));
    CHECK_MPI(MPI_Iallreduce(MPI_IN_PLACE, v2, n2, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD, &req[1]));
    CHECK_MPI(MPI_Iallreduce(in3, out3, n3, mat, op, MPI_COMM_WORLD, &req[2]));
    while (!flag)
        CHECK_MPI(MPI_Testall(3, req, &flag, MPI_STATUSES_IGNORE));
    for (int i = 0; i < n1; i++) {
        int s = 0;
        for (int r = 0; r < size; r++)
            s += value(i, r);
        bad += out1[i] != s;
    }
    for (int i = 0; i < n2; i++)
        bad += v2[i] != (long long)i * 1000003LL * size + (long long)size * (size - 1) / 2;
    for (int k = 0; k < n3; k++) {
        long long acc[4];
        mat_product(k, acc);
        for (int j = 0; j < 4; j++)
            bad += out3[4 * k + j] != acc[j];
    }
    mat_of(7, rank, one);
    CHECK_MPI(MPI_Iallreduce(one, one_out, 1, mat, op, MPI_COMM_WORLD, &req[0]));
    CHECK_MPI(MPI_Wait(&req[0], MPI_STATUS_IGNORE));
    long long acc[4];
    mat_product(7, acc);
    for (int j = 0; j < 4; j++)
        bad += one_out[j] != acc[j];
    CHECK_EQ_INT(bad, 0, "section 7: elements wrong");
    MPI_Op_free(&op);
    MPI_Type_free(&mat);
    chk_report(bad == 0, "7. MPI_Iallreduce: three in flight (sections 1, 2 and 5), then one matrix");
    free(in1), free(out1), free(v2), free(in3), free(out3);
}

int main(int argc, char **argv)
{
    chk_init(&argc, &argv, &rank, &size);
    section1();
    section2();
    section3();
    section4();
    section5();
    section6();
    section7();
    return chk_finish();
}
