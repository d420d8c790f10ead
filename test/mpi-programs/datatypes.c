/* ranks: 1-8 */
/*
 * Derived datatypes: Type_contiguous, Type_vector, Type_indexed,
 * Type_create_struct, Type_commit, Type_free, Type_size, Type_get_extent;
 * sending with one type and receiving with another of the same signature;
 * derived types in a collective; MPI_BYTE and MPI_PACKED-free raw bytes.
 */
#include "check.h"
#include <stddef.h>

typedef struct {
    int id;
    double weight;
    char tag;
} particle_t;

int main(int argc, char **argv)
{
    int rank, size, next, prev, i, j, sz, ok;
    MPI_Aint lb, extent;
    MPI_Datatype contig, column, idx, particle;
    MPI_Request r;
    MPI_Status st;
    chk_init(&argc, &argv, &rank, &size);
    next = (rank + 1) % size;
    prev = (rank + size - 1) % size;

    /* Contiguous: 4 ints. */
    MPI_Type_contiguous(4, MPI_INT, &contig);
    MPI_Type_commit(&contig);
    MPI_Type_size(contig, &sz);
    CHECK_EQ_INT(sz, 16, "contiguous size");
    MPI_Type_get_extent(contig, &lb, &extent);
    CHECK(lb == 0 && extent == 16, "contiguous extent");

    /* Vector: one column of a 6x5 int matrix. */
    MPI_Type_vector(6, 1, 5, MPI_INT, &column);
    MPI_Type_commit(&column);
    MPI_Type_size(column, &sz);
    CHECK_EQ_INT(sz, 24, "vector size");
    MPI_Type_get_extent(column, &lb, &extent);
    CHECK(lb == 0 && extent == (MPI_Aint)(5 * 5 + 1) * 4, "vector extent %ld", (long)extent);
    {
        int m[6][5], col[6], back[6][5];
        for (i = 0; i < 6; i++)
            for (j = 0; j < 5; j++)
                m[i][j] = rank * 100 + i * 5 + j;
        /* Column 2 sent as a vector, received as 6 contiguous ints. */
        MPI_Isend(&m[0][2], 1, column, next, 1, MPI_COMM_WORLD, &r);
        MPI_Recv(col, 6, MPI_INT, prev, 1, MPI_COMM_WORLD, &st);
        MPI_Wait(&r, MPI_STATUS_IGNORE);
        for (i = 0; i < 6; i++)
            CHECK_EQ_INT(col[i], prev * 100 + i * 5 + 2, "vector column element");
        /* Contiguous ints sent, received into column 4 of a matrix. */
        memset(back, 0, sizeof back);
        MPI_Isend(col, 6, MPI_INT, next, 2, MPI_COMM_WORLD, &r);
        MPI_Recv(&back[0][4], 1, column, prev, 2, MPI_COMM_WORLD, &st);
        MPI_Wait(&r, MPI_STATUS_IGNORE);
        ok = 1;
        for (i = 0; i < 6; i++)
            for (j = 0; j < 5; j++)
                if (back[i][j] != (j == 4 ? ((prev + size - 1) % size) * 100 + i * 5 + 2 : 0))
                    ok = 0;
        CHECK(ok, "receive into a vector type: wrong cells");
        /* Two vectors in a row: the second starts one extent (26 ints) later. */
        {
            int flat[60], two[12], count;
            for (i = 0; i < 60; i++)
                flat[i] = rank * 100 + i;
            MPI_Isend(flat, 2, column, next, 3, MPI_COMM_WORLD, &r);
            MPI_Recv(two, 12, MPI_INT, prev, 3, MPI_COMM_WORLD, &st);
            MPI_Get_count(&st, column, &count);
            CHECK_EQ_INT(count, 2, "Get_count in vector units");
            for (i = 0; i < 6; i++) {
                CHECK_EQ_INT(two[i], prev * 100 + i * 5, "first vector");
                CHECK_EQ_INT(two[6 + i], prev * 100 + 26 + i * 5, "second vector");
            }
        }
        MPI_Wait(&r, MPI_STATUS_IGNORE);
    }
    chk_say("datatypes: contiguous and vector: ok");

    /* Indexed: blocks {2 at 0, 1 at 5, 3 at 7} of doubles. */
    {
        int lens[3] = {2, 1, 3}, displs[3] = {0, 5, 7};
        double src[10], dst[10], packed[6];
        MPI_Type_indexed(3, lens, displs, MPI_DOUBLE, &idx);
        MPI_Type_commit(&idx);
        MPI_Type_size(idx, &sz);
        CHECK_EQ_INT(sz, 48, "indexed size");
        MPI_Type_get_extent(idx, &lb, &extent);
        CHECK(lb == 0 && extent == 80, "indexed extent");
        for (i = 0; i < 10; i++)
            src[i] = rank * 10 + i + 0.5;
        MPI_Isend(src, 1, idx, next, 4, MPI_COMM_WORLD, &r);
        MPI_Recv(packed, 6, MPI_DOUBLE, prev, 4, MPI_COMM_WORLD, &st);
        MPI_Wait(&r, MPI_STATUS_IGNORE);
        {
            int picks[6] = {0, 1, 5, 7, 8, 9};
            for (i = 0; i < 6; i++)
                CHECK(packed[i] == prev * 10 + picks[i] + 0.5, "indexed element %d", i);
        }
        for (i = 0; i < 10; i++)
            dst[i] = -1.0;
        MPI_Isend(src, 1, idx, next, 5, MPI_COMM_WORLD, &r);
        MPI_Recv(dst, 1, idx, prev, 5, MPI_COMM_WORLD, &st);
        MPI_Wait(&r, MPI_STATUS_IGNORE);
        for (i = 0; i < 10; i++) {
            int in = i < 2 || i == 5 || i >= 7;
            CHECK(dst[i] == (in ? prev * 10 + i + 0.5 : -1.0), "indexed to indexed element %d", i);
        }
    }
    chk_say("datatypes: indexed: ok");

    /* Struct matching a C struct, arrays of it, and a Bcast of it. */
    {
        int lens[3] = {1, 1, 1};
        MPI_Aint displs[3] = {offsetof(particle_t, id), offsetof(particle_t, weight), offsetof(particle_t, tag)};
        MPI_Datatype types[3] = {MPI_INT, MPI_DOUBLE, MPI_CHAR};
        particle_t out[3], in[3], b[2];
        MPI_Type_create_struct(3, lens, displs, types, &particle);
        MPI_Type_commit(&particle);
        MPI_Type_size(particle, &sz);
        CHECK_EQ_INT(sz, (int)(sizeof(int) + sizeof(double) + 1), "struct size");
        MPI_Type_get_extent(particle, &lb, &extent);
        CHECK(lb == 0 && extent == (MPI_Aint)sizeof(particle_t), "struct extent %ld (sizeof %zu)", (long)extent,
              sizeof(particle_t));
        for (i = 0; i < 3; i++) {
            out[i].id = rank * 10 + i;
            out[i].weight = rank + i * 0.25;
            out[i].tag = (char)('a' + i);
        }
        memset(in, 0, sizeof in);
        MPI_Isend(out, 3, particle, next, 6, MPI_COMM_WORLD, &r);
        MPI_Recv(in, 3, particle, prev, 6, MPI_COMM_WORLD, &st);
        MPI_Wait(&r, MPI_STATUS_IGNORE);
        for (i = 0; i < 3; i++)
            CHECK(in[i].id == prev * 10 + i && in[i].weight == prev + i * 0.25 && in[i].tag == 'a' + i,
                  "struct element %d", i);
        for (i = 0; i < 2; i++) {
            b[i].id = rank == 0 ? 77 + i : 0;
            b[i].weight = rank == 0 ? 1.5 * i : 0;
            b[i].tag = rank == 0 ? 'z' : 0;
        }
        MPI_Bcast(b, 2, particle, 0, MPI_COMM_WORLD);
        for (i = 0; i < 2; i++)
            CHECK(b[i].id == 77 + i && b[i].weight == 1.5 * i && b[i].tag == 'z', "Bcast of struct %d", i);
    }
    chk_say("datatypes: struct: ok");

    /* Contiguous type in a collective: Allgather of 4-int records. */
    {
        int mine[4], *all = malloc(sizeof(int) * 4 * (size_t)size);
        for (i = 0; i < 4; i++)
            mine[i] = rank * 4 + i;
        MPI_Allgather(mine, 1, contig, all, 4, MPI_INT, MPI_COMM_WORLD);
        for (i = 0; i < 4 * size; i++)
            CHECK_EQ_INT(all[i], i, "Allgather with a contiguous type");
        free(all);
    }
    /* Raw bytes: a double sent as MPI_BYTE arrives bit for bit. */
    {
        double d = 1.0 / 3.0 + rank, e = 0;
        MPI_Isend(&d, (int)sizeof d, MPI_BYTE, next, 7, MPI_COMM_WORLD, &r);
        MPI_Recv(&e, (int)sizeof e, MPI_BYTE, prev, 7, MPI_COMM_WORLD, &st);
        MPI_Wait(&r, MPI_STATUS_IGNORE);
        CHECK(e == 1.0 / 3.0 + prev, "double through MPI_BYTE");
    }
    chk_say("datatypes: derived types in collectives, MPI_BYTE: ok");

    MPI_Type_free(&contig);
    MPI_Type_free(&column);
    MPI_Type_free(&idx);
    MPI_Type_free(&particle);
    CHECK(particle == MPI_DATATYPE_NULL, "Type_free nulls the handle");
    return chk_finish();
}
