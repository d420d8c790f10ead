/* ranks: 1-8 */
/*
 * MPI_Op_create / MPI_Op_free: a commutative user operation (sum modulo a
 * prime) and a non-commutative one (2x2 matrix product modulo 2^32), whose
 * result the standard fixes to the rank order a0 * a1 * ... * a(n-1), in
 * Reduce, Allreduce and Scan; also a user op over a derived datatype.
 */
#include "check.h"

#define PRIME 1000003u

static void sum_mod_prime(void *in, void *inout, int *len, MPI_Datatype *type)
{
    unsigned *a = in, *b = inout;
    int i;
    (void)type;
    for (i = 0; i < *len; i++)
        b[i] = (unsigned)(((unsigned long long)a[i] + b[i]) % PRIME);
}

/* inout = in x inout for 2x2 matrices of uint32 (row major). The standard
 * calls it with in = the lower-ranked operand. */
static void matmul(void *in, void *inout, int *len, MPI_Datatype *type)
{
    uint32_t *a = in, *b = inout;
    int k;
    (void)type;
    for (k = 0; k < *len; k++, a += 4, b += 4) {
        uint32_t c0 = a[0] * b[0] + a[1] * b[2], c1 = a[0] * b[1] + a[1] * b[3];
        uint32_t c2 = a[2] * b[0] + a[3] * b[2], c3 = a[2] * b[1] + a[3] * b[3];
        b[0] = c0, b[1] = c1, b[2] = c2, b[3] = c3;
    }
}

static void rank_matrix(int r, int k, uint32_t *m)
{
    m[0] = (uint32_t)(r + 2 + k), m[1] = (uint32_t)(r * 3 + 1), m[2] = (uint32_t)(k + 1), m[3] = (uint32_t)(r + 1);
}

static void expected_product(int upto, int k, uint32_t *m)
{
    int r;
    rank_matrix(0, k, m);
    for (r = 1; r < upto; r++) {
        uint32_t next[4];
        int one = 1;
        rank_matrix(r, k, next);
        /* m = m x next: matmul computes inout = in x inout. */
        matmul(m, next, &one, NULL);
        memcpy(m, next, sizeof next);
    }
}

int main(int argc, char **argv)
{
    int rank, size, i, k;
    MPI_Op sum_op, mat_op;
    MPI_Datatype mat_type;
    unsigned s[4], t[4];
    uint32_t mine[3][4], out[3][4], want[4];
    chk_init(&argc, &argv, &rank, &size);

    MPI_Op_create(sum_mod_prime, 1, &sum_op);
    for (i = 0; i < 4; i++)
        s[i] = (unsigned)(rank * 999983u + i * 17u) % PRIME;
    MPI_Allreduce(s, t, 4, MPI_UNSIGNED, sum_op, MPI_COMM_WORLD);
    for (i = 0; i < 4; i++) {
        unsigned long long e = 0;
        int r;
        for (r = 0; r < size; r++)
            e = (e + (unsigned)(r * 999983u + i * 17u) % PRIME) % PRIME;
        CHECK_EQ_INT(t[i], e, "commutative user op Allreduce");
    }
    chk_say("user-op: commutative op: ok");

    /* Non-commutative: matrices as a contiguous type of 4 uint32. */
    MPI_Type_contiguous(4, MPI_UINT32_T, &mat_type);
    MPI_Type_commit(&mat_type);
    MPI_Op_create(matmul, 0, &mat_op);
    for (k = 0; k < 3; k++)
        rank_matrix(rank, k, mine[k]);
    MPI_Reduce(mine, out, 3, mat_type, mat_op, size - 1, MPI_COMM_WORLD);
    if (rank == size - 1)
        for (k = 0; k < 3; k++) {
            expected_product(size, k, want);
            CHECK(memcmp(out[k], want, sizeof want) == 0, "non-commutative Reduce matrix %d", k);
        }
    MPI_Allreduce(mine, out, 3, mat_type, mat_op, MPI_COMM_WORLD);
    for (k = 0; k < 3; k++) {
        expected_product(size, k, want);
        CHECK(memcmp(out[k], want, sizeof want) == 0, "non-commutative Allreduce matrix %d", k);
    }
    MPI_Scan(mine, out, 3, mat_type, mat_op, MPI_COMM_WORLD);
    for (k = 0; k < 3; k++) {
        expected_product(rank + 1, k, want);
        CHECK(memcmp(out[k], want, sizeof want) == 0, "non-commutative Scan matrix %d", k);
    }
    chk_say("user-op: non-commutative op keeps rank order in Reduce, Allreduce, Scan: ok");

    MPI_Op_free(&sum_op);
    MPI_Op_free(&mat_op);
    CHECK(sum_op == MPI_OP_NULL && mat_op == MPI_OP_NULL, "Op_free nulls the handles");
    MPI_Type_free(&mat_type);
    return chk_finish();
}
