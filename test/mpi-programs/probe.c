/* ranks: 1-8 */
/*
 * MPI_Probe / MPI_Iprobe and MPI_Get_count: a receiver learns the size of a
 * message before receiving it. Every rank sends to the next rank in a ring
 * (itself on one rank) messages of sizes it does not announce.
 */
#include "check.h"

#define NMSG 6
#define TAG_NEVER 4242

static int size_of(int k) { return k == 0 ? 0 : (k * k * 37) % 5000 + k; }

int main(int argc, char **argv)
{
    int rank, size, next, prev, k, count, flag;
    MPI_Request reqs[NMSG + 1];
    int *sbuf[NMSG];
    MPI_Status st;
    chk_init(&argc, &argv, &rank, &size);
    next = (rank + 1) % size;
    prev = (rank + size - 1) % size;

    for (k = 0; k < NMSG; k++) {
        int i, n = size_of(k);
        sbuf[k] = malloc(sizeof(int) * (size_t)(n + 1));
        for (i = 0; i < n; i++)
            sbuf[k][i] = rank * 100000 + k * 1000 + i;
        MPI_Isend(sbuf[k], n, MPI_INT, next, 100 + k, MPI_COMM_WORLD, &reqs[k]);
    }

    /* Blocking probe for any tag, then receive exactly what it saw. */
    for (k = 0; k < NMSG; k++) {
        int *rbuf, i, ok = 1, bytes;
        if (k % 2 == 0) {
            MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
        } else {
            /* Iprobe until the message is there (no timing assumptions). */
            do
                MPI_Iprobe(prev, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
            while (!flag);
        }
        CHECK_EQ_INT(st.MPI_SOURCE, prev, "probed source");
        CHECK_EQ_INT(st.MPI_TAG, 100 + k, "probed tag (order of one sender)");
        MPI_Get_count(&st, MPI_INT, &count);
        CHECK_EQ_INT(count, size_of(k), "probed count");
        MPI_Get_count(&st, MPI_BYTE, &bytes);
        CHECK_EQ_INT(bytes, size_of(k) * 4, "probed count in bytes");
        rbuf = malloc(sizeof(int) * (size_t)(count + 1));
        MPI_Recv(rbuf, count, MPI_INT, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, &st);
        MPI_Get_count(&st, MPI_INT, &count);
        CHECK_EQ_INT(count, size_of(k), "received count");
        for (i = 0; i < count; i++)
            if (rbuf[i] != prev * 100000 + k * 1000 + i)
                ok = 0;
        CHECK(ok, "payload of message %d", k);
        free(rbuf);
    }
    MPI_Waitall(NMSG, reqs, MPI_STATUSES_IGNORE);
    chk_say("probe: Probe/Iprobe then Recv of %d messages of unannounced size: ok", NMSG);

    /* Get_count of a message whose size is not a multiple of the type. */
    {
        char bytes[10] = "abcdefghi";
        char in[10];
        MPI_Isend(bytes, 10, MPI_CHAR, next, 7, MPI_COMM_WORLD, &reqs[0]);
        MPI_Probe(prev, 7, MPI_COMM_WORLD, &st);
        MPI_Get_count(&st, MPI_INT, &count);
        CHECK_EQ_INT(count, MPI_UNDEFINED, "Get_count of 10 bytes as MPI_INT");
        MPI_Get_count(&st, MPI_CHAR, &count);
        CHECK_EQ_INT(count, 10, "Get_count as MPI_CHAR");
        MPI_Recv(in, 10, MPI_CHAR, prev, 7, MPI_COMM_WORLD, &st);
        CHECK(memcmp(in, "abcdefghi", 10) == 0, "char payload");
        MPI_Wait(&reqs[0], MPI_STATUS_IGNORE);
    }
    chk_say("probe: Get_count gives MPI_UNDEFINED for a partial element: ok");

    /* A probe never consumes: probing twice sees the same message. And an
     * Iprobe for a tag nobody sends says no. */
    {
        int v = 5, w = 0;
        MPI_Status st2;
        MPI_Isend(&v, 1, MPI_INT, next, 8, MPI_COMM_WORLD, &reqs[0]);
        MPI_Probe(prev, 8, MPI_COMM_WORLD, &st);
        MPI_Probe(MPI_ANY_SOURCE, 8, MPI_COMM_WORLD, &st2);
        CHECK(st.MPI_SOURCE == st2.MPI_SOURCE && st.MPI_TAG == st2.MPI_TAG, "probe twice");
        MPI_Recv(&w, 1, MPI_INT, prev, 8, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        CHECK_EQ_INT(w, 5, "value after two probes");
        MPI_Wait(&reqs[0], MPI_STATUS_IGNORE);
        MPI_Barrier(MPI_COMM_WORLD);
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_NEVER, MPI_COMM_WORLD, &flag, &st);
        CHECK_EQ_INT(flag, 0, "Iprobe of a tag nobody sent");
    }
    chk_say("probe: probing does not consume; Iprobe of an unsent tag is false: ok");

    for (k = 0; k < NMSG; k++)
        free(sbuf[k]);
    return chk_finish();
}
