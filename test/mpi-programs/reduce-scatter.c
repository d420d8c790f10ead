/* ranks: 1-8 */
/*
 * MPI_Reduce_scatter with a different count for every rank (one of them 0),
 * with MPI_IN_PLACE and with a user op that is not commutative; and
 * MPI_Reduce_local with predefined and user ops.
 */
#include "check.h"

/* inout = in "then" inout for 2x2 matrices stored as 4 ints (not commutative) */
static void matmul(void *in, void *inout, int *len, MPI_Datatype *type)
{
    int *a = in, *b = inout, i;
    (void)type;
    for (i = 0; i < *len; i++, a += 4, b += 4) {
        int c0 = a[0] * b[0] + a[1] * b[2], c1 = a[0] * b[1] + a[1] * b[3];
        int c2 = a[2] * b[0] + a[3] * b[2], c3 = a[2] * b[1] + a[3] * b[3];
        b[0] = c0;
        b[1] = c1;
        b[2] = c2;
        b[3] = c3;
    }
}

int main(int argc, char **argv)
{
    int rank, size, i, total = 0, *counts, *send, *got, mine;
    MPI_Op op;
    chk_init(&argc, &argv, &rank, &size);
    chk_say("reduce-scatter: started on %d ranks", size);
    counts = malloc(sizeof(int) * (size_t)size);
    for (i = 0; i < size; i++) {
        counts[i] = i == 1 ? 0 : i % 3 + 1;
        total += counts[i];
    }
    send = malloc(sizeof(int) * (size_t)(total ? total : 1));
    got = malloc(sizeof(int) * (size_t)(total ? total : 1));
    for (i = 0; i < total; i++)
        send[i] = (rank + 1) * (i + 1);

    /* sum: element i of the result is (i+1) * size*(size+1)/2 */
    {
        int off = 0;
        for (i = 0; i < rank; i++)
            off += counts[i];
        mine = counts[rank];
        for (i = 0; i < mine; i++)
            got[i] = -1;
        MPI_Reduce_scatter(send, got, counts, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        for (i = 0; i < mine; i++)
            CHECK_EQ_INT(got[i], (off + i + 1) * size * (size + 1) / 2, "Reduce_scatter SUM");
        chk_say_ordered(MPI_COMM_WORLD, "rank %d: %d elements, first %d", rank, mine, mine ? got[0] : -1);

        /* in place: the input is the whole receive buffer */
        memcpy(got, send, sizeof(int) * (size_t)total);
        MPI_Reduce_scatter(MPI_IN_PLACE, got, counts, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        for (i = 0; i < mine; i++)
            CHECK_EQ_INT(got[i], size * (off + i + 1), "Reduce_scatter MAX in place");
    }

    /* a non-commutative op: matrices multiplied in rank order */
    {
        int n = size, *m = malloc(sizeof(int) * 4 * (size_t)n), res[4], *ones = malloc(sizeof(int) * (size_t)n);
        MPI_Datatype mat;
        MPI_Type_contiguous(4, MPI_INT, &mat);
        MPI_Type_commit(&mat);
        MPI_Op_create(matmul, 0, &op);
        for (i = 0; i < n; i++) {
            m[4 * i + 0] = 1;
            m[4 * i + 1] = rank + 1;
            m[4 * i + 2] = 0;
            m[4 * i + 3] = 1;
            ones[i] = 1;
        }
        if (rank % 2 == 1) { /* odd ranks hold [[0,1],[1,0]]: the order shows */
            for (i = 0; i < n; i++) {
                m[4 * i + 0] = 0;
                m[4 * i + 1] = 1;
                m[4 * i + 2] = 1;
                m[4 * i + 3] = 0;
            }
        }
        MPI_Reduce_scatter(m, res, ones, mat, op, MPI_COMM_WORLD);
        chk_say_ordered(MPI_COMM_WORLD, "rank %d: product in rank order [[%d,%d],[%d,%d]]", rank, res[0], res[1], res[2], res[3]);
        MPI_Op_free(&op);
        MPI_Type_free(&mat);
        free(m);
        free(ones);
    }

    /* Reduce_local: inoutbuf = inbuf op inoutbuf */
    {
        double a[3] = {1.5, -2, 4}, b[3] = {2, 3, -1};
        int x[4] = {1, 2, 0, 1}, y[4] = {3, 4, 5, 6};
        MPI_Reduce_local(a, b, 3, MPI_DOUBLE, MPI_PROD);
        chk_say("Reduce_local PROD: %g %g %g", b[0], b[1], b[2]);
        MPI_Reduce_local(a, b, 3, MPI_DOUBLE, MPI_MIN);
        chk_say("Reduce_local MIN: %g %g %g", b[0], b[1], b[2]);
        MPI_Op_create(matmul, 0, &op);
        MPI_Reduce_local(x, y, 1, MPI_INT, op); /* the op takes 4 ints per "element" itself */
        chk_say("Reduce_local user op (x then y): %d %d %d %d", y[0], y[1], y[2], y[3]);
        MPI_Op_free(&op);
    }
    free(counts);
    free(send);
    free(got);
    return chk_finish();
}
