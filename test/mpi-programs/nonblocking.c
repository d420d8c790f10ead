/* ranks: 1-8 */
/*
 * Nonblocking completion: Wait, Waitall, Waitany, Waitsome, Test, Testall,
 * Testany (each with the statuses they fill and their behaviour on inactive
 * requests), Request_free of a send, and Cancel of a receive that nothing
 * will match (checked with MPI_Test_cancelled). Traffic goes around a ring;
 * on one rank every rank's partner is itself.
 */
#include "check.h"

#define K 8

static int tag_order(int i) { return (i * 5 + 3) % K; } /* a permutation of 0..K-1 */

/* Send K messages with tags in a scrambled order to `next`. */
static void send_scrambled(int rank, int next, int base, MPI_Request *sreq, int *sval)
{
    int i;
    for (i = 0; i < K; i++) {
        int t = tag_order(i);
        sval[i] = rank * 1000 + base + t;
        MPI_Isend(&sval[i], 1, MPI_INT, next, base + t, MPI_COMM_WORLD, &sreq[i]);
    }
}

int main(int argc, char **argv)
{
    int rank, size, next, prev, i, idx, flag, count, outcount;
    int rval[K], sval[K], seen[K], indices[K];
    MPI_Request rreq[K], sreq[K];
    MPI_Status st, sts[K];
    chk_init(&argc, &argv, &rank, &size);
    next = (rank + 1) % size;
    prev = (rank + size - 1) % size;

    /* Wait: status of a receive; the request becomes MPI_REQUEST_NULL. */
    {
        int a = rank + 10, b = -1;
        MPI_Request r, s;
        MPI_Irecv(&b, 1, MPI_INT, prev, 1, MPI_COMM_WORLD, &r);
        MPI_Isend(&a, 1, MPI_INT, next, 1, MPI_COMM_WORLD, &s);
        MPI_Wait(&r, &st);
        MPI_Wait(&s, MPI_STATUS_IGNORE);
        CHECK_EQ_INT(b, prev + 10, "Wait payload");
        CHECK_EQ_INT(st.MPI_SOURCE, prev, "Wait status source");
        CHECK_EQ_INT(st.MPI_TAG, 1, "Wait status tag");
        MPI_Get_count(&st, MPI_INT, &count);
        CHECK_EQ_INT(count, 1, "Wait status count");
        CHECK(r == MPI_REQUEST_NULL && s == MPI_REQUEST_NULL, "completed requests become MPI_REQUEST_NULL");
        /* Waiting on a null request returns at once with an empty status. */
        MPI_Wait(&r, &st);
        CHECK(st.MPI_SOURCE == MPI_ANY_SOURCE && st.MPI_TAG == MPI_ANY_TAG, "empty status from Wait(NULL)");
    }
    chk_say("nonblocking: Wait: ok");

    /* Waitall with statuses, receives posted in tag order, sends scrambled. */
    for (i = 0; i < K; i++)
        MPI_Irecv(&rval[i], 1, MPI_INT, prev, 100 + i, MPI_COMM_WORLD, &rreq[i]);
    send_scrambled(rank, next, 100, sreq, sval);
    MPI_Waitall(K, rreq, sts);
    for (i = 0; i < K; i++) {
        CHECK_EQ_INT(rval[i], prev * 1000 + 100 + i, "Waitall payload");
        CHECK_EQ_INT(sts[i].MPI_TAG, 100 + i, "Waitall status tag");
        CHECK_EQ_INT(sts[i].MPI_SOURCE, prev, "Waitall status source");
        CHECK(rreq[i] == MPI_REQUEST_NULL, "Waitall nulls requests");
    }
    MPI_Waitall(K, sreq, MPI_STATUSES_IGNORE);
    chk_say("nonblocking: Waitall: ok");

    /* Waitany: every index exactly once, then MPI_UNDEFINED. */
    for (i = 0; i < K; i++) {
        MPI_Irecv(&rval[i], 1, MPI_INT, prev, 200 + i, MPI_COMM_WORLD, &rreq[i]);
        seen[i] = 0;
    }
    send_scrambled(rank, next, 200, sreq, sval);
    for (i = 0; i < K; i++) {
        MPI_Waitany(K, rreq, &idx, &st);
        CHECK(idx >= 0 && idx < K, "Waitany index %d", idx);
        if (idx >= 0 && idx < K) {
            seen[idx]++;
            CHECK_EQ_INT(st.MPI_TAG, 200 + idx, "Waitany status tag");
            CHECK_EQ_INT(rval[idx], prev * 1000 + 200 + idx, "Waitany payload");
        }
    }
    for (i = 0; i < K; i++)
        CHECK_EQ_INT(seen[i], 1, "Waitany completions per index");
    MPI_Waitany(K, rreq, &idx, &st);
    CHECK_EQ_INT(idx, MPI_UNDEFINED, "Waitany on inactive requests");
    MPI_Waitall(K, sreq, MPI_STATUSES_IGNORE);
    chk_say("nonblocking: Waitany: ok");

    /* Waitsome: until all done; outcount MPI_UNDEFINED when none active. */
    {
        int done = 0;
        for (i = 0; i < K; i++) {
            MPI_Irecv(&rval[i], 1, MPI_INT, prev, 300 + i, MPI_COMM_WORLD, &rreq[i]);
            seen[i] = 0;
        }
        send_scrambled(rank, next, 300, sreq, sval);
        while (done < K) {
            MPI_Waitsome(K, rreq, &outcount, indices, sts);
            CHECK(outcount >= 1 && outcount <= K - done, "Waitsome outcount %d", outcount);
            if (outcount < 1 || outcount > K - done)
                break;
            for (i = 0; i < outcount; i++) {
                seen[indices[i]]++;
                CHECK_EQ_INT(sts[i].MPI_TAG, 300 + indices[i], "Waitsome status tag");
                CHECK_EQ_INT(rval[indices[i]], prev * 1000 + 300 + indices[i], "Waitsome payload");
            }
            done += outcount;
        }
        for (i = 0; i < K; i++)
            CHECK_EQ_INT(seen[i], 1, "Waitsome completions per index");
        MPI_Waitsome(K, rreq, &outcount, indices, sts);
        CHECK_EQ_INT(outcount, MPI_UNDEFINED, "Waitsome on inactive requests");
        MPI_Waitall(K, sreq, MPI_STATUSES_IGNORE);
    }
    chk_say("nonblocking: Waitsome: ok");

    /* Test (polling), Testall, Testany. */
    {
        int v = -1, w = rank;
        MPI_Request r, s;
        MPI_Irecv(&v, 1, MPI_INT, prev, 400, MPI_COMM_WORLD, &r);
        MPI_Isend(&w, 1, MPI_INT, next, 400, MPI_COMM_WORLD, &s);
        do
            MPI_Test(&r, &flag, &st);
        while (!flag);
        CHECK_EQ_INT(v, prev, "Test payload");
        CHECK_EQ_INT(st.MPI_TAG, 400, "Test status tag");
        CHECK(r == MPI_REQUEST_NULL, "Test nulls a completed request");
        MPI_Test(&r, &flag, &st);
        CHECK_EQ_INT(flag, 1, "Test of MPI_REQUEST_NULL");
        do
            MPI_Test(&s, &flag, MPI_STATUS_IGNORE);
        while (!flag);

        for (i = 0; i < K; i++)
            MPI_Irecv(&rval[i], 1, MPI_INT, prev, 500 + i, MPI_COMM_WORLD, &rreq[i]);
        send_scrambled(rank, next, 500, sreq, sval);
        do
            MPI_Testall(K, rreq, &flag, sts);
        while (!flag);
        for (i = 0; i < K; i++) {
            CHECK_EQ_INT(rval[i], prev * 1000 + 500 + i, "Testall payload");
            CHECK_EQ_INT(sts[i].MPI_TAG, 500 + i, "Testall status tag");
        }
        MPI_Waitall(K, sreq, MPI_STATUSES_IGNORE);

        for (i = 0; i < K; i++) {
            MPI_Irecv(&rval[i], 1, MPI_INT, prev, 600 + i, MPI_COMM_WORLD, &rreq[i]);
            seen[i] = 0;
        }
        send_scrambled(rank, next, 600, sreq, sval);
        for (i = 0; i < K; i++) {
            do
                MPI_Testany(K, rreq, &idx, &flag, &st);
            while (!flag);
            CHECK(idx >= 0 && idx < K, "Testany index %d", idx);
            if (idx >= 0 && idx < K) {
                seen[idx]++;
                CHECK_EQ_INT(rval[idx], prev * 1000 + 600 + idx, "Testany payload");
            }
        }
        for (i = 0; i < K; i++)
            CHECK_EQ_INT(seen[i], 1, "Testany completions per index");
        MPI_Testany(K, rreq, &idx, &flag, &st);
        CHECK(flag == 1 && idx == MPI_UNDEFINED, "Testany on inactive requests: flag=%d idx=%d", flag, idx);
        MPI_Waitall(K, sreq, MPI_STATUSES_IGNORE);
    }
    chk_say("nonblocking: Test, Testall, Testany: ok");

    /* Request_free of an active send: the message is still delivered. The
     * receiver's reply tells the sender its buffer may be reused. */
    {
        int *big = malloc(sizeof(int) * 100000), *in = malloc(sizeof(int) * 100000);
        int ack = 0, ok = 1;
        MPI_Request s, r;
        for (i = 0; i < 100000; i++)
            big[i] = rank + i;
        MPI_Irecv(in, 100000, MPI_INT, prev, 700, MPI_COMM_WORLD, &r);
        MPI_Isend(big, 100000, MPI_INT, next, 700, MPI_COMM_WORLD, &s);
        MPI_Request_free(&s);
        CHECK(s == MPI_REQUEST_NULL, "Request_free nulls the handle");
        MPI_Wait(&r, MPI_STATUS_IGNORE);
        for (i = 0; i < 100000; i++)
            if (in[i] != prev + i)
                ok = 0;
        CHECK(ok, "payload of a freed send");
        MPI_Sendrecv(&ok, 1, MPI_INT, prev, 701, &ack, 1, MPI_INT, next, 701, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        free(big);
        free(in);
    }
    chk_say("nonblocking: Request_free of a send: ok");

    /* Cancel of a receive nothing matches; then a real message with the
     * same tag goes to a fresh receive, not to the cancelled one. */
    {
        int v = -1, w = -1, x = rank;
        MPI_Request r, s;
        MPI_Irecv(&v, 1, MPI_INT, prev, 800, MPI_COMM_WORLD, &r);
        MPI_Cancel(&r);
        MPI_Wait(&r, &st);
        MPI_Test_cancelled(&st, &flag);
        CHECK_EQ_INT(flag, 1, "Test_cancelled after cancelling an unmatched receive");
        CHECK_EQ_INT(v, -1, "buffer of a cancelled receive untouched");
        MPI_Barrier(MPI_COMM_WORLD);
        MPI_Isend(&x, 1, MPI_INT, next, 800, MPI_COMM_WORLD, &s);
        MPI_Recv(&w, 1, MPI_INT, prev, 800, MPI_COMM_WORLD, &st);
        MPI_Wait(&s, MPI_STATUS_IGNORE);
        CHECK_EQ_INT(w, prev, "message after a cancelled receive");
        MPI_Test_cancelled(&st, &flag);
        CHECK_EQ_INT(flag, 0, "Test_cancelled of a completed receive");
    }
    chk_say("nonblocking: Cancel of a receive: ok");
    return chk_finish();
}
