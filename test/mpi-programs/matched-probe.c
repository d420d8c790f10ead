/* ranks: 2-8 */
/*
 * Matched probes (MPI 3.1 section 3.8.2): Mprobe/Improbe take the message
 * they find, so a receive posted meanwhile cannot steal it; Mrecv/Imrecv
 * receive exactly that message (small, large and rendezvous-sized);
 * MPI_PROC_NULL gives MPI_MESSAGE_NO_PROC.
 */
#include "check.h"

#define BIG (300 * 1024 + 3)

int main(int argc, char **argv)
{
    int rank, size, i, flag, count, v;
    MPI_Message msg;
    MPI_Status st;
    MPI_Request req;
    chk_init(&argc, &argv, &rank, &size);
    chk_require_ranks(size, 2);
    chk_say("matched-probe: started on %d ranks", size);

    if (rank != 0) {
        /* two messages with the same tag: the probe takes the first */
        int a = rank * 10, b = rank * 10 + 1;
        MPI_Send(&a, 1, MPI_INT, 0, 5, MPI_COMM_WORLD);
        MPI_Send(&b, 1, MPI_INT, 0, 5, MPI_COMM_WORLD);
    } else {
        int seen = 0;
        for (i = 0; i < size - 1; i++) {
            int src, first, second;
            MPI_Mprobe(MPI_ANY_SOURCE, 5, MPI_COMM_WORLD, &msg, &st);
            src = st.MPI_SOURCE;
            CHECK(msg != MPI_MESSAGE_NULL, "Mprobe gave a message");
            /* a receive posted now gets the second message, not the probed one */
            MPI_Irecv(&second, 1, MPI_INT, src, 5, MPI_COMM_WORLD, &req);
            MPI_Mrecv(&first, 1, MPI_INT, &msg, &st);
            MPI_Wait(&req, MPI_STATUS_IGNORE);
            CHECK(msg == MPI_MESSAGE_NULL, "Mrecv sets MPI_MESSAGE_NULL");
            CHECK(st.MPI_SOURCE == src && st.MPI_TAG == 5, "Mrecv status %d %d", st.MPI_SOURCE, st.MPI_TAG);
            CHECK(first == src * 10 && second == src * 10 + 1, "from %d: first %d second %d", src, first, second);
            seen += src;
        }
        CHECK_EQ_INT(seen, size * (size - 1) / 2, "every sender once");
        chk_say("Mprobe + Mrecv: the probed message, not the next one: ok");
    }
    MPI_Barrier(MPI_COMM_WORLD);

    /* Improbe until found, then Imrecv; a large message (rendezvous) */
    {
        int *big = malloc(sizeof(int) * BIG), ok = 1;
        if (rank == 1) {
            for (i = 0; i < BIG; i++)
                big[i] = i * 3 + 1;
            MPI_Send(big, BIG, MPI_INT, 0, 6, MPI_COMM_WORLD);
        } else if (rank == 0) {
            flag = 0;
            while (!flag)
                MPI_Improbe(1, 6, MPI_COMM_WORLD, &flag, &msg, &st);
            MPI_Get_count(&st, MPI_INT, &count);
            CHECK_EQ_INT(count, BIG, "Improbe count of a large message");
            MPI_Imrecv(big, BIG, MPI_INT, &msg, &req);
            CHECK(msg == MPI_MESSAGE_NULL, "Imrecv sets MPI_MESSAGE_NULL");
            MPI_Wait(&req, &st);
            MPI_Get_count(&st, MPI_INT, &count);
            CHECK_EQ_INT(count, BIG, "Imrecv count");
            for (i = 0; i < BIG; i++)
                ok &= big[i] == i * 3 + 1;
            CHECK(ok, "large message through Improbe + Imrecv");
            chk_say("Improbe + Imrecv of %d ints: ok", BIG);
        }
        free(big);
    }

    /* nothing there: Improbe says so and leaves the message handle alone */
    msg = MPI_MESSAGE_NULL;
    MPI_Improbe(MPI_ANY_SOURCE, 999, MPI_COMM_WORLD, &flag, &msg, &st);
    CHECK(!flag, "nothing with tag 999");

    /* MPI_PROC_NULL */
    MPI_Mprobe(MPI_PROC_NULL, 1, MPI_COMM_WORLD, &msg, &st);
    CHECK(msg == MPI_MESSAGE_NO_PROC, "Mprobe(PROC_NULL) gives MPI_MESSAGE_NO_PROC");
    CHECK_EQ_INT(st.MPI_SOURCE, MPI_PROC_NULL, "Mprobe(PROC_NULL) source");
    v = 7;
    MPI_Mrecv(&v, 1, MPI_INT, &msg, &st);
    MPI_Get_count(&st, MPI_INT, &count);
    CHECK(v == 7 && count == 0 && msg == MPI_MESSAGE_NULL, "Mrecv of MPI_MESSAGE_NO_PROC: v %d count %d", v, count);
    chk_say("MPI_PROC_NULL: ok");
    return chk_finish();
}
