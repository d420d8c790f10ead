/* ranks: 2-8 */
/*
 * Synchronous sends and combined send-receive: Ssend, Issend (cannot
 * complete before the matching receive is posted), Sendrecv (including
 * different types on both sides), Sendrecv_replace with a large buffer.
 */
#include "check.h"

#define BIG 300000

int main(int argc, char **argv)
{
    int rank, size, next, prev, i, flag, peer;
    MPI_Status st;
    chk_init(&argc, &argv, &rank, &size);
    chk_require_ranks(size, 2);
    next = (rank + 1) % size;
    prev = (rank + size - 1) % size;

    /* Ssend: rank 0 with every other rank in turn, small and large. */
    for (peer = 1; peer < size; peer++) {
        int *buf = malloc(sizeof(int) * BIG), ok = 1;
        if (rank == 0) {
            for (i = 0; i < BIG; i++)
                buf[i] = peer * 7 + i;
            MPI_Ssend(buf, 1, MPI_INT, peer, 1, MPI_COMM_WORLD);
            MPI_Ssend(buf, BIG, MPI_INT, peer, 2, MPI_COMM_WORLD);
            MPI_Recv(buf, BIG, MPI_INT, peer, 3, MPI_COMM_WORLD, &st);
            for (i = 0; i < BIG; i++)
                if (buf[i] != peer * 11 + i)
                    ok = 0;
        } else if (rank == peer) {
            MPI_Recv(buf, 1, MPI_INT, 0, 1, MPI_COMM_WORLD, &st);
            if (buf[0] != peer * 7)
                ok = 0;
            MPI_Recv(buf, BIG, MPI_INT, 0, 2, MPI_COMM_WORLD, &st);
            for (i = 0; i < BIG; i++)
                if (buf[i] != peer * 7 + i)
                    ok = 0;
            for (i = 0; i < BIG; i++)
                buf[i] = peer * 11 + i;
            MPI_Ssend(buf, BIG, MPI_INT, 0, 3, MPI_COMM_WORLD);
        }
        CHECK(ok, "Ssend payload with peer %d", peer);
        free(buf);
    }
    chk_say("sync-send: Ssend small and large: ok");

    /* Issend must not complete before the receive is posted: rank 1 posts
     * its receive only after the barrier, which rank 0 enters after testing. */
    if (rank == 0) {
        int v = 99;
        MPI_Request r;
        MPI_Issend(&v, 1, MPI_INT, 1, 4, MPI_COMM_WORLD, &r);
        MPI_Test(&r, &flag, MPI_STATUS_IGNORE);
        CHECK_EQ_INT(flag, 0, "Issend completed before the receive was posted");
        MPI_Barrier(MPI_COMM_WORLD);
        MPI_Wait(&r, MPI_STATUS_IGNORE);
    } else {
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 1) {
            int v = 0;
            MPI_Recv(&v, 1, MPI_INT, 0, 4, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            CHECK_EQ_INT(v, 99, "Issend payload");
        }
    }
    chk_say("sync-send: Issend completes only after the receive is posted: ok");

    /* Sendrecv around the ring, ints out, bytes in. */
    {
        int out[3] = {rank, rank * 2, rank * 3}, in[3] = {-1, -1, -1}, count;
        MPI_Sendrecv(out, 3, MPI_INT, next, 5, in, 12, MPI_BYTE, prev, 5, MPI_COMM_WORLD, &st);
        MPI_Get_count(&st, MPI_BYTE, &count);
        CHECK_EQ_INT(count, 12, "Sendrecv received bytes");
        CHECK(in[0] == prev && in[1] == prev * 2 && in[2] == prev * 3, "Sendrecv payload");
        CHECK_EQ_INT(st.MPI_SOURCE, prev, "Sendrecv status source");
    }
    chk_say("sync-send: Sendrecv: ok");

    /* Sendrecv_replace around the ring with a large buffer, twice. */
    {
        int *buf = malloc(sizeof(int) * BIG), ok = 1, expect_from;
        for (i = 0; i < BIG; i++)
            buf[i] = rank * 3 + i;
        MPI_Sendrecv_replace(buf, BIG, MPI_INT, next, 6, prev, 6, MPI_COMM_WORLD, &st);
        MPI_Sendrecv_replace(buf, BIG, MPI_INT, next, 7, MPI_ANY_SOURCE, 7, MPI_COMM_WORLD, &st);
        expect_from = (rank + 2 * size - 2) % size;
        for (i = 0; i < BIG; i++)
            if (buf[i] != expect_from * 3 + i)
                ok = 0;
        CHECK(ok, "Sendrecv_replace payload");
        CHECK_EQ_INT(st.MPI_SOURCE, prev, "Sendrecv_replace status source");
        free(buf);
    }
    chk_say("sync-send: Sendrecv_replace: ok");
    return chk_finish();
}
