/* ranks: 1-8 */
/*
 * More derived datatypes: Type_create_subarray (C and Fortran order, 2-D and
 * 3-D, a halo face), Type_create_indexed_block, Type_create_hindexed_block
 * and Type_dup: their size and extent, and the elements they pick, sent to
 * the next rank and received as contiguous ints (and the other way round).
 */
#include "check.h"

#define NX 5
#define NY 6
#define NZ 7

static void describe(const char *what, MPI_Datatype t)
{
    int size;
    MPI_Aint lb, extent;
    MPI_Type_size(t, &size);
    MPI_Type_get_extent(t, &lb, &extent);
    chk_say("%s: size %d lb %ld extent %ld", what, size, (long)lb, (long)extent);
}

/* Sends one element of t from `src` to the next rank, which receives n ints;
 * rank 0 prints what it received from the previous rank. */
static void ship(const char *what, MPI_Datatype t, const int *src, int n, MPI_Comm comm)
{
    int rank, size, i, *got = malloc(sizeof(int) * (size_t)n), count;
    char line[CHK_LINE_MAX];
    int at;
    MPI_Status st;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    MPI_Sendrecv(src, 1, t, (rank + 1) % size, 5, got, n, MPI_INT, (rank + size - 1) % size, 5, comm, &st);
    MPI_Get_count(&st, MPI_INT, &count);
    CHECK_EQ_INT(count, n, what);
    at = snprintf(line, sizeof line, "%s:", what);
    for (i = 0; i < n && at < (int)sizeof line - 12; i++)
        at += snprintf(line + at, sizeof line - (size_t)at, " %d", got[i] % 1000);
    chk_say("%s", line);
    free(got);
}

int main(int argc, char **argv)
{
    int rank, size, i, j, k;
    static int a2[NX][NY], a3[NX][NY][NZ], back[NX][NY];
    MPI_Datatype t;
    chk_init(&argc, &argv, &rank, &size);
    chk_say("subarray: started on %d ranks", size);
    for (i = 0; i < NX; i++)
        for (j = 0; j < NY; j++) {
            a2[i][j] = rank * 1000 + i * 10 + j;
            for (k = 0; k < NZ; k++)
                a3[i][j][k] = rank * 1000 + i * 100 + j * 10 + k;
        }

    {
        int sizes[2] = {NX, NY}, sub[2] = {3, 2}, starts[2] = {1, 3};
        MPI_Type_create_subarray(2, sizes, sub, starts, MPI_ORDER_C, MPI_INT, &t);
        MPI_Type_commit(&t);
        describe("2-D C subarray 3x2 at (1,3) of 5x6 ints", t);
        ship("2-D C subarray", t, &a2[0][0], 6, MPI_COMM_WORLD);
        MPI_Type_free(&t);
        /* Fortran order: the first index varies fastest */
        MPI_Type_create_subarray(2, sizes, sub, starts, MPI_ORDER_FORTRAN, MPI_INT, &t);
        MPI_Type_commit(&t);
        describe("2-D Fortran subarray 3x2 at (1,3) of 5x6 ints", t);
        ship("2-D Fortran subarray", t, &a2[0][0], 6, MPI_COMM_WORLD);
        MPI_Type_free(&t);
    }
    {
        int sizes[3] = {NX, NY, NZ}, face[3] = {NX, NY, 1}, at_end[3] = {0, 0, NZ - 1}, box[3] = {2, 3, 4},
            mid[3] = {2, 1, 2};
        MPI_Type_create_subarray(3, sizes, face, at_end, MPI_ORDER_C, MPI_INT, &t);
        MPI_Type_commit(&t);
        describe("3-D halo face k = NZ-1", t);
        ship("3-D halo face", t, &a3[0][0][0], NX * NY, MPI_COMM_WORLD);
        MPI_Type_free(&t);
        MPI_Type_create_subarray(3, sizes, box, mid, MPI_ORDER_C, MPI_INT, &t);
        MPI_Type_commit(&t);
        describe("3-D box 2x3x4 at (2,1,2)", t);
        ship("3-D box", t, &a3[0][0][0], 24, MPI_COMM_WORLD);
        /* two of them in a row: the extent is the whole array */
        {
            static int two[2][NX][NY][NZ];
            int got[48], n;
            MPI_Status st;
            memcpy(two[0], a3, sizeof a3);
            memcpy(two[1], a3, sizeof a3);
            two[1][2][1][2] = -1;
            MPI_Sendrecv(two, 2, t, (rank + 1) % size, 6, got, 48, MPI_INT, (rank + size - 1) % size, 6, MPI_COMM_WORLD, &st);
            MPI_Get_count(&st, MPI_INT, &n);
            CHECK_EQ_INT(n, 48, "two boxes");
            CHECK(got[0] == got[24] - 0 || got[24] == -1, "two boxes: %d %d", got[0], got[24]);
            CHECK_EQ_INT(got[24], -1, "the second box starts at the second array");
        }
        MPI_Type_free(&t);
    }
    {
        /* receive side: contiguous ints into a subarray of a zeroed array */
        int sizes[2] = {NX, NY}, sub[2] = {2, 4}, starts[2] = {2, 1}, src[8];
        for (i = 0; i < 8; i++)
            src[i] = rank * 1000 + 500 + i;
        memset(back, 0, sizeof back);
        MPI_Type_create_subarray(2, sizes, sub, starts, MPI_ORDER_C, MPI_INT, &t);
        MPI_Type_commit(&t);
        MPI_Sendrecv(src, 8, MPI_INT, (rank + 1) % size, 7, back, 1, t, (rank + size - 1) % size, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        for (i = 0; i < NX; i++) {
            char line[CHK_LINE_MAX];
            int at = snprintf(line, sizeof line, "received into a subarray, row %d:", i);
            for (j = 0; j < NY; j++)
                at += snprintf(line + at, sizeof line - (size_t)at, " %d", back[i][j] % 1000);
            chk_say("%s", line);
        }
        MPI_Type_free(&t);
    }
    {
        int displs[4] = {0, 7, 13, 22};
        MPI_Aint hdispls[3] = {0, 5 * (MPI_Aint)sizeof(int), 19 * (MPI_Aint)sizeof(int)};
        MPI_Type_create_indexed_block(4, 2, displs, MPI_INT, &t);
        MPI_Type_commit(&t);
        describe("indexed_block 4 x 2 ints", t);
        ship("indexed_block", t, &a2[0][0], 8, MPI_COMM_WORLD);
        MPI_Type_free(&t);
        MPI_Type_create_hindexed_block(3, 3, hdispls, MPI_INT, &t);
        MPI_Type_commit(&t);
        describe("hindexed_block 3 x 3 ints", t);
        ship("hindexed_block", t, &a2[0][0], 9, MPI_COMM_WORLD);
        MPI_Type_free(&t);
    }
    {
        MPI_Datatype vec, dup;
        MPI_Type_vector(3, 2, NY, MPI_INT, &vec);
        MPI_Type_dup(vec, &dup);
        MPI_Type_free(&vec); /* the duplicate stands on its own */
        MPI_Type_commit(&dup);
        describe("Type_dup of vector 3 x 2 stride 6", dup);
        ship("Type_dup", dup, &a2[1][1], 6, MPI_COMM_WORLD);
        MPI_Type_free(&dup);
        MPI_Type_dup(MPI_DOUBLE, &dup);
        describe("Type_dup of MPI_DOUBLE", dup);
        {
            double out[3] = {rank + 0.5, rank + 0.25, rank + 0.125}, in[3] = {0, 0, 0};
            int prev = (rank + size - 1) % size;
            MPI_Sendrecv(out, 3, dup, (rank + 1) % size, 8, in, 3, MPI_DOUBLE, prev, 8, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            CHECK(in[0] == prev + 0.5 && in[1] == prev + 0.25 && in[2] == prev + 0.125, "doubles through a duplicate of MPI_DOUBLE");
        }
        MPI_Type_free(&dup);
    }
    return chk_finish();
}
