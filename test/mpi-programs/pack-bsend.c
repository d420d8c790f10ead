/* ranks: 1-8 */
/*
 * MPI_Pack / MPI_Unpack / MPI_Pack_size with MPI_PACKED messages (mixed
 * types, a derived type, unpacked in pieces); buffered sends (Buffer_attach, Bsend, Ibsend, a Bsend
 * that does not fit, Buffer_detach waiting for delivery) and ready sends.
 */
#include "check.h"

#define NB 64

int main(int argc, char **argv)
{
    int rank, size, next, prev, i, pos, sz, isz, dsz, rc;
    /* (Packing past the end of a buffer is not checked here: MPICH built
     * without error checking writes past it.) */
    char packed[1024];
    MPI_Datatype column;
    MPI_Status st;
    chk_init(&argc, &argv, &rank, &size);
    next = (rank + 1) % size;
    prev = (rank + size - 1) % size;

    /* Pack an int, 3 doubles and a column of a 4x3 matrix into one message. */
    MPI_Type_vector(4, 1, 3, MPI_INT, &column);
    MPI_Type_commit(&column);
    MPI_Pack_size(1, MPI_INT, MPI_COMM_WORLD, &isz);
    MPI_Pack_size(3, MPI_DOUBLE, MPI_COMM_WORLD, &dsz);
    MPI_Pack_size(1, column, MPI_COMM_WORLD, &sz);
    CHECK(isz >= 4 && dsz >= 24 && sz >= 16, "pack sizes %d %d %d", isz, dsz, sz);
    {
        int n = rank + 10, m[4][3], back_n, col[4], j;
        double d[3] = {rank + 0.5, rank * 2.25, -1.0 / (rank + 1)}, back_d[3];
        for (i = 0; i < 4; i++)
            for (j = 0; j < 3; j++)
                m[i][j] = rank * 100 + i * 3 + j;
        pos = 0;
        CHECK_MPI(MPI_Pack(&n, 1, MPI_INT, packed, sizeof packed, &pos, MPI_COMM_WORLD));
        CHECK_MPI(MPI_Pack(d, 3, MPI_DOUBLE, packed, sizeof packed, &pos, MPI_COMM_WORLD));
        CHECK_MPI(MPI_Pack(&m[0][1], 1, column, packed, sizeof packed, &pos, MPI_COMM_WORLD));
        CHECK(pos <= isz + dsz + sz, "position %d past the packed size", pos);
        MPI_Sendrecv_replace(packed, pos, MPI_PACKED, next, 1, prev, 1, MPI_COMM_WORLD, &st);
        MPI_Get_count(&st, MPI_PACKED, &sz);
        CHECK_EQ_INT(sz, pos, "MPI_PACKED count");
        pos = 0;
        CHECK_MPI(MPI_Unpack(packed, sz, &pos, &back_n, 1, MPI_INT, MPI_COMM_WORLD));
        /* The doubles in two pieces. */
        CHECK_MPI(MPI_Unpack(packed, sz, &pos, back_d, 1, MPI_DOUBLE, MPI_COMM_WORLD));
        CHECK_MPI(MPI_Unpack(packed, sz, &pos, back_d + 1, 2, MPI_DOUBLE, MPI_COMM_WORLD));
        CHECK_MPI(MPI_Unpack(packed, sz, &pos, col, 4, MPI_INT, MPI_COMM_WORLD));
        CHECK_EQ_INT(pos, sz, "unpacked everything");
        CHECK_EQ_INT(back_n, prev + 10, "unpacked int");
        CHECK(back_d[0] == prev + 0.5 && back_d[1] == prev * 2.25 && back_d[2] == -1.0 / (prev + 1), "unpacked doubles");
        for (i = 0; i < 4; i++)
            CHECK_EQ_INT(col[i], prev * 100 + i * 3 + 1, "unpacked column");
    }
    MPI_Type_free(&column);

    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);

    /* Buffered sends: the buffer is reusable as soon as Bsend returns. */
    {
        int bufsize = NB * (int)sizeof(int) * 4 + 4 * MPI_BSEND_OVERHEAD, got[NB], msg[NB], j, dsize;
        char *bbuf = malloc((size_t)bufsize), *back;
        MPI_Request r;
        CHECK_MPI(MPI_Buffer_attach(bbuf, bufsize));
        for (j = 0; j < 3; j++) {
            for (i = 0; i < NB; i++)
                msg[i] = rank * 1000 + j * NB + i;
            if (j < 2)
                CHECK_MPI(MPI_Bsend(msg, NB, MPI_INT, next, 10 + j, MPI_COMM_WORLD));
            else {
                CHECK_MPI(MPI_Ibsend(msg, NB, MPI_INT, next, 10 + j, MPI_COMM_WORLD, &r));
                CHECK_MPI(MPI_Wait(&r, MPI_STATUS_IGNORE));
            }
            memset(msg, 0xff, sizeof msg); /* the buffered copy must not see this */
        }
        /* A Bsend bigger than the whole attached buffer fails with MPI_ERR_BUFFER. */
        {
            int cls, *huge = calloc(NB * 8, sizeof(int));
            rc = MPI_Bsend(huge, NB * 8, MPI_INT, next, 99, MPI_COMM_WORLD);
            MPI_Error_class(rc, &cls);
            CHECK_EQ_INT(cls, MPI_ERR_BUFFER, "Bsend larger than the buffer");
            free(huge);
        }
        /* Received in reverse order: all three were buffered. */
        for (j = 2; j >= 0; j--) {
            MPI_Recv(got, NB, MPI_INT, prev, 10 + j, MPI_COMM_WORLD, &st);
            for (i = 0; i < NB; i++)
                CHECK_EQ_INT(got[i], prev * 1000 + j * NB + i, "buffered message");
        }
        CHECK_MPI(MPI_Buffer_detach(&back, &dsize));
        CHECK(back == bbuf && dsize == bufsize, "detach returns the attached buffer");
        free(bbuf);
    }

    /* Ready send: the receive is posted before the barrier. */
    {
        int v = -1, w = rank * 7;
        MPI_Request r;
        MPI_Irecv(&v, 1, MPI_INT, prev, 20, MPI_COMM_WORLD, &r);
        MPI_Barrier(MPI_COMM_WORLD);
        CHECK_MPI(MPI_Rsend(&w, 1, MPI_INT, next, 20, MPI_COMM_WORLD));
        MPI_Wait(&r, MPI_STATUS_IGNORE);
        CHECK_EQ_INT(v, prev * 7, "ready send");
    }
    chk_say("packed and buffered sends checked");
    return chk_finish();
}
