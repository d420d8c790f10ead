/* ranks: 1-8 */
/*
 * Persistent requests: Send_init, Ssend_init, Bsend_init, Rsend_init and
 * Recv_init with Start, Startall and the Wait/Test family. A completed
 * persistent request stays allocated and inactive; Wait and Test on an
 * inactive one return at once with an empty status; Waitany/Testany/Waitsome
 * skip inactive ones; Request_free releases one; Cancel of a started receive.
 * A 1-D periodic halo exchange runs many iterations through the same four
 * requests (Startall/Waitall), the buffers changing between the starts; a
 * persistent MPI_ANY_SOURCE receive on rank 0 collects one message from every
 * rank per round. On one rank every partner is the rank itself.
 */
#include "check.h"

#define HALO 16
#define INTERIOR 64
#define ITERATIONS 40
#define ROUNDS 5

static void check_empty_status(const MPI_Status *st, const char *what)
{
    int count = -1;
    CHECK(st->MPI_SOURCE == MPI_ANY_SOURCE && st->MPI_TAG == MPI_ANY_TAG, "%s: empty status (source %d tag %d)", what,
          st->MPI_SOURCE, st->MPI_TAG);
    MPI_Get_count(st, MPI_INT, &count);
    CHECK_EQ_INT(count, 0, what);
}

/* The value cell i of rank r holds after iteration it of the halo exchange. */
static int cell(int r, int i, int it) { return r * 100000 + it * 1000 + i; }

int main(int argc, char **argv)
{
    int rank, size, next, prev, i, it, flag, idx, count, outcount, indices[4];
    MPI_Status st, sts[4];
    chk_init(&argc, &argv, &rank, &size);
    next = (rank + 1) % size;
    prev = (rank + size - 1) % size;

    /* Send_init / Recv_init: Start and Wait three times; the request survives each Wait. */
    {
        int out = -1, in = -1, round;
        MPI_Request s, r;
        CHECK_MPI(MPI_Recv_init(&in, 1, MPI_INT, prev, 1, MPI_COMM_WORLD, &r));
        CHECK_MPI(MPI_Send_init(&out, 1, MPI_INT, next, 1, MPI_COMM_WORLD, &s));
        CHECK(r != MPI_REQUEST_NULL && s != MPI_REQUEST_NULL, "init gives a request");
        /* inactive right after init: Wait and Test return at once, empty */
        MPI_Wait(&r, &st);
        check_empty_status(&st, "Wait on a fresh persistent request");
        flag = 0;
        MPI_Test(&s, &flag, &st);
        CHECK(flag, "Test on an inactive persistent request is true");
        check_empty_status(&st, "Test on an inactive persistent request");
        for (round = 0; round < 3; round++) {
            out = rank * 10 + round; /* the buffer is read at each Start */
            CHECK_MPI(MPI_Start(&r));
            CHECK_MPI(MPI_Start(&s));
            MPI_Wait(&r, &st);
            MPI_Wait(&s, MPI_STATUS_IGNORE);
            CHECK_EQ_INT(in, prev * 10 + round, "persistent payload");
            CHECK_EQ_INT(st.MPI_SOURCE, prev, "persistent receive status source");
            CHECK_EQ_INT(st.MPI_TAG, 1, "persistent receive status tag");
            MPI_Get_count(&st, MPI_INT, &count);
            CHECK_EQ_INT(count, 1, "persistent receive count");
            CHECK(r != MPI_REQUEST_NULL && s != MPI_REQUEST_NULL, "a completed persistent request keeps its handle");
        }
        /* completed again: inactive */
        MPI_Wait(&r, &st);
        check_empty_status(&st, "Wait after completion");
        CHECK_MPI(MPI_Request_free(&r));
        CHECK_MPI(MPI_Request_free(&s));
        CHECK(r == MPI_REQUEST_NULL && s == MPI_REQUEST_NULL, "Request_free of inactive requests");
    }
    chk_say("persistent: Start/Wait, inactive requests: ok");

    /* Halo exchange on a periodic 1-D domain: four requests, made once, started ITERATIONS times. */
    {
        int u[HALO + INTERIOR + HALO];
        MPI_Request halo[4];
        int bad = 0;
        MPI_Recv_init(u, HALO, MPI_INT, prev, 10, MPI_COMM_WORLD, &halo[0]);
        MPI_Recv_init(u + HALO + INTERIOR, HALO, MPI_INT, next, 11, MPI_COMM_WORLD, &halo[1]);
        MPI_Send_init(u + INTERIOR, HALO, MPI_INT, next, 10, MPI_COMM_WORLD, &halo[2]);
        MPI_Send_init(u + HALO, HALO, MPI_INT, prev, 11, MPI_COMM_WORLD, &halo[3]);
        for (it = 0; it < ITERATIONS; it++) {
            for (i = 0; i < INTERIOR; i++)
                u[HALO + i] = cell(rank, i, it);
            for (i = 0; i < HALO; i++)
                u[i] = u[HALO + INTERIOR + i] = -1;
            CHECK_MPI(MPI_Startall(4, halo));
            CHECK_MPI(MPI_Waitall(4, halo, sts));
            for (i = 0; i < HALO; i++) {
                bad += u[i] != cell(prev, INTERIOR - HALO + i, it);
                bad += u[HALO + INTERIOR + i] != cell(next, i, it);
            }
            bad += sts[0].MPI_SOURCE != prev || sts[0].MPI_TAG != 10 || sts[1].MPI_SOURCE != next || sts[1].MPI_TAG != 11;
        }
        CHECK_EQ_INT(bad, 0, "halo cells or statuses wrong over the iterations");
        for (i = 0; i < 4; i++)
            MPI_Request_free(&halo[i]);
    }
    chk_say("persistent: %d halo exchanges with Startall/Waitall: ok", ITERATIONS);

    /* A persistent wildcard receive on rank 0 takes one message from every rank per round. */
    {
        int v = -1, round, r0, mine;
        MPI_Request any, s;
        int *seen = calloc((size_t)size, sizeof(int));
        MPI_Send_init(&mine, 1, MPI_INT, 0, 20, MPI_COMM_WORLD, &s);
        if (rank == 0)
            MPI_Recv_init(&v, 1, MPI_INT, MPI_ANY_SOURCE, 20, MPI_COMM_WORLD, &any);
        for (round = 0; round < ROUNDS; round++) {
            mine = rank * 1000 + round;
            MPI_Start(&s);
            if (rank == 0) {
                memset(seen, 0, (size_t)size * sizeof(int));
                for (r0 = 0; r0 < size; r0++) {
                    MPI_Start(&any);
                    MPI_Wait(&any, &st);
                    CHECK(st.MPI_SOURCE >= 0 && st.MPI_SOURCE < size, "wildcard source in range");
                    if (st.MPI_SOURCE >= 0 && st.MPI_SOURCE < size) {
                        seen[st.MPI_SOURCE]++;
                        CHECK_EQ_INT(v, st.MPI_SOURCE * 1000 + round, "wildcard payload matches its source");
                    }
                }
                for (r0 = 0; r0 < size; r0++)
                    CHECK_EQ_INT(seen[r0], 1, "one message per rank and round");
            }
            MPI_Wait(&s, MPI_STATUS_IGNORE);
            /* the next round's messages must not meet this round's receives */
            MPI_Barrier(MPI_COMM_WORLD);
        }
        if (rank == 0)
            MPI_Request_free(&any);
        MPI_Request_free(&s);
        free(seen);
    }
    chk_say("persistent: wildcard Recv_init over %d rounds: ok", ROUNDS);

    /* Ssend_init completes only once matched; Rsend_init to a posted receive; Bsend_init through an attached buffer. */
    {
        int a = rank + 1, b = -1, c = -1, d = rank + 2, e = -1, f = rank + 3;
        int bsize = 4 * (int)sizeof(int) + MPI_BSEND_OVERHEAD * 4, bsize_back;
        void *bbuf = malloc((size_t)bsize), *back;
        MPI_Request ss, rs, rv, bs, bv;
        MPI_Ssend_init(&a, 1, MPI_INT, next, 30, MPI_COMM_WORLD, &ss);
        MPI_Start(&ss);
        MPI_Recv(&b, 1, MPI_INT, prev, 30, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Wait(&ss, MPI_STATUS_IGNORE);
        CHECK_EQ_INT(b, prev + 1, "Ssend_init payload");

        MPI_Irecv(&c, 1, MPI_INT, prev, 31, MPI_COMM_WORLD, &rv);
        MPI_Rsend_init(&d, 1, MPI_INT, next, 31, MPI_COMM_WORLD, &rs);
        MPI_Barrier(MPI_COMM_WORLD); /* every receive is posted before any ready send starts */
        MPI_Start(&rs);
        MPI_Wait(&rs, MPI_STATUS_IGNORE);
        MPI_Wait(&rv, MPI_STATUS_IGNORE);
        CHECK_EQ_INT(c, prev + 2, "Rsend_init payload");

        MPI_Buffer_attach(bbuf, bsize);
        MPI_Bsend_init(&f, 1, MPI_INT, next, 32, MPI_COMM_WORLD, &bs);
        MPI_Start(&bs);
        MPI_Wait(&bs, MPI_STATUS_IGNORE);
        f = -99; /* the buffered copy went out with the old value */
        MPI_Irecv(&e, 1, MPI_INT, prev, 32, MPI_COMM_WORLD, &bv);
        MPI_Wait(&bv, MPI_STATUS_IGNORE);
        CHECK_EQ_INT(e, prev + 3, "Bsend_init payload");
        MPI_Buffer_detach(&back, &bsize_back);
        free(bbuf);
        MPI_Request_free(&ss);
        MPI_Request_free(&rs);
        MPI_Request_free(&bs);
    }
    chk_say("persistent: Ssend_init, Rsend_init, Bsend_init: ok");

    /* Waitany, Testany, Waitsome and Testall with inactive persistent requests in the array. */
    {
        int x = rank * 3, y = -1, z = 0;
        MPI_Request reqs[3];
        MPI_Recv_init(&y, 1, MPI_INT, prev, 40, MPI_COMM_WORLD, &reqs[0]);
        MPI_Send_init(&x, 1, MPI_INT, next, 40, MPI_COMM_WORLD, &reqs[1]);
        MPI_Recv_init(&z, 1, MPI_INT, prev, 41, MPI_COMM_WORLD, &reqs[2]); /* never started here */
        /* all inactive: Waitany and Testany give MPI_UNDEFINED, Waitsome MPI_UNDEFINED */
        MPI_Waitany(3, reqs, &idx, &st);
        CHECK_EQ_INT(idx, MPI_UNDEFINED, "Waitany over inactive requests");
        flag = 0;
        MPI_Testany(3, reqs, &idx, &flag, &st);
        CHECK(flag && idx == MPI_UNDEFINED, "Testany over inactive requests");
        MPI_Waitsome(3, reqs, &outcount, indices, sts);
        CHECK_EQ_INT(outcount, MPI_UNDEFINED, "Waitsome over inactive requests");
        MPI_Testall(3, reqs, &flag, sts);
        CHECK(flag, "Testall over inactive requests");

        MPI_Startall(2, reqs);
        /* the receive and the send complete, each once, the third stays out */
        {
            int done[3] = { 0, 0, 0 }, k;
            for (k = 0; k < 2; k++) {
                MPI_Waitany(3, reqs, &idx, &st);
                CHECK(idx == 0 || idx == 1, "Waitany index %d", idx);
                if (idx == 0 || idx == 1)
                    done[idx]++;
            }
            CHECK(done[0] == 1 && done[1] == 1, "Waitany completes each started request once");
            MPI_Waitany(3, reqs, &idx, &st);
            CHECK_EQ_INT(idx, MPI_UNDEFINED, "Waitany once all are inactive again");
        }
        CHECK_EQ_INT(y, prev * 3, "Waitany payload");

        x = rank * 5;
        MPI_Startall(2, reqs);
        count = 0;
        while (count < 2) {
            MPI_Waitsome(3, reqs, &outcount, indices, sts);
            CHECK(outcount >= 1 && outcount <= 2, "Waitsome outcount %d", outcount);
            if (outcount < 1 || outcount > 2)
                break;
            count += outcount;
        }
        CHECK_EQ_INT(y, prev * 5, "Waitsome payload");
        for (i = 0; i < 3; i++)
            MPI_Request_free(&reqs[i]);
    }
    chk_say("persistent: Waitany/Testany/Waitsome/Testall skip inactive requests: ok");

    /* A non-contiguous type, packed anew at each Start; MPI_PROC_NULL partners. */
    {
        int grid[4][3], col[4], round;
        MPI_Datatype column;
        MPI_Request s, r, pn[2];
        MPI_Type_vector(4, 1, 3, MPI_INT, &column);
        MPI_Type_commit(&column);
        MPI_Send_init(&grid[0][1], 1, column, next, 50, MPI_COMM_WORLD, &s);
        MPI_Recv_init(col, 4, MPI_INT, prev, 50, MPI_COMM_WORLD, &r);
        for (round = 0; round < 3; round++) {
            for (i = 0; i < 12; i++)
                grid[i / 3][i % 3] = rank * 100 + round * 20 + i;
            MPI_Start(&r);
            MPI_Start(&s);
            MPI_Wait(&s, MPI_STATUS_IGNORE);
            MPI_Wait(&r, MPI_STATUS_IGNORE);
            for (i = 0; i < 4; i++)
                CHECK_EQ_INT(col[i], prev * 100 + round * 20 + i * 3 + 1, "column sent through a persistent vector type");
        }
        MPI_Request_free(&s);
        MPI_Request_free(&r);
        MPI_Type_free(&column);

        MPI_Send_init(col, 4, MPI_INT, MPI_PROC_NULL, 51, MPI_COMM_WORLD, &pn[0]);
        MPI_Recv_init(col, 4, MPI_INT, MPI_PROC_NULL, 51, MPI_COMM_WORLD, &pn[1]);
        MPI_Startall(2, pn);
        MPI_Waitall(2, pn, sts);
        /* count 0; the source is not checked: the standard says MPI_PROC_NULL,
         * Debian's MPICH 4.0.2 gives a persistent one the empty status's MPI_ANY_SOURCE */
        CHECK_EQ_INT(sts[1].MPI_TAG, MPI_ANY_TAG, "PROC_NULL persistent receive tag");
        MPI_Get_count(&sts[1], MPI_INT, &count);
        CHECK_EQ_INT(count, 0, "PROC_NULL persistent receive count");
        MPI_Request_free(&pn[0]);
        MPI_Request_free(&pn[1]);
    }
    chk_say("persistent: derived type and MPI_PROC_NULL: ok");

    /* Cancel a started receive nothing matches; the request can start again and then match. */
    {
        int v = -1, w = rank + 60, cancelled = 0;
        MPI_Request r, s;
        MPI_Recv_init(&v, 1, MPI_INT, prev, 60, MPI_COMM_WORLD, &r);
        MPI_Start(&r);
        MPI_Cancel(&r);
        MPI_Wait(&r, &st);
        MPI_Test_cancelled(&st, &cancelled);
        CHECK(cancelled, "a started persistent receive can be cancelled");
        CHECK(r != MPI_REQUEST_NULL, "a cancelled persistent request keeps its handle");
        MPI_Barrier(MPI_COMM_WORLD); /* no message for tag 60 was sent before the cancel */
        MPI_Isend(&w, 1, MPI_INT, next, 60, MPI_COMM_WORLD, &s);
        MPI_Start(&r);
        MPI_Wait(&r, &st);
        MPI_Test_cancelled(&st, &cancelled);
        CHECK(!cancelled, "restarted receive is not cancelled");
        CHECK_EQ_INT(v, prev + 60, "restarted receive payload");
        MPI_Wait(&s, MPI_STATUS_IGNORE);
        MPI_Request_free(&r);
    }
    chk_say("persistent: Cancel of a started receive: ok");

    /* Request_free of an active persistent send: the message is still delivered. */
    {
        int w = rank + 70, v = -1;
        MPI_Request s;
        MPI_Send_init(&w, 1, MPI_INT, next, 70, MPI_COMM_WORLD, &s);
        MPI_Start(&s);
        MPI_Request_free(&s);
        CHECK(s == MPI_REQUEST_NULL, "Request_free of an active request nulls the handle");
        MPI_Recv(&v, 1, MPI_INT, prev, 70, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        CHECK_EQ_INT(v, prev + 70, "message of a freed active persistent send");
        MPI_Barrier(MPI_COMM_WORLD); /* w stays untouched until the receive is done */
    }
    chk_say("persistent: Request_free of an active send: ok");
    return chk_finish();
}
