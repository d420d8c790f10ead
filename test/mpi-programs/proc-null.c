/* ranks: 1-8 */
/*
 * MPI_PROC_NULL: communication with it succeeds at once and does nothing;
 * a receive from it returns source MPI_PROC_NULL, tag MPI_ANY_TAG, count 0.
 * The usual use: a non-periodic shift where the ends talk to PROC_NULL.
 */
#include "check.h"

int main(int argc, char **argv)
{
    int rank, size, buf[4] = {7, 7, 7, 7}, count, flag, up, down, got;
    MPI_Status st;
    MPI_Request r[2];
    chk_init(&argc, &argv, &rank, &size);

    MPI_Send(buf, 4, MPI_INT, MPI_PROC_NULL, 1, MPI_COMM_WORLD);
    MPI_Ssend(buf, 4, MPI_INT, MPI_PROC_NULL, 1, MPI_COMM_WORLD);
    MPI_Recv(buf, 4, MPI_INT, MPI_PROC_NULL, 1, MPI_COMM_WORLD, &st);
    CHECK_EQ_INT(st.MPI_SOURCE, MPI_PROC_NULL, "Recv(PROC_NULL) source");
    CHECK_EQ_INT(st.MPI_TAG, MPI_ANY_TAG, "Recv(PROC_NULL) tag");
    MPI_Get_count(&st, MPI_INT, &count);
    CHECK_EQ_INT(count, 0, "Recv(PROC_NULL) count");
    CHECK(buf[0] == 7 && buf[3] == 7, "Recv(PROC_NULL) must not touch the buffer");

    MPI_Isend(buf, 4, MPI_INT, MPI_PROC_NULL, 2, MPI_COMM_WORLD, &r[0]);
    MPI_Irecv(buf, 4, MPI_INT, MPI_PROC_NULL, 2, MPI_COMM_WORLD, &r[1]);
    MPI_Waitall(2, r, MPI_STATUSES_IGNORE);
    MPI_Irecv(buf, 4, MPI_INT, MPI_PROC_NULL, 2, MPI_COMM_WORLD, &r[1]);
    MPI_Wait(&r[1], &st);
    /* The standard says source MPI_PROC_NULL here too, but Debian's MPICH
     * 4.0.2 (the reference) reports 0 after Wait, so only the count is
     * checked for the nonblocking form. */
    MPI_Get_count(&st, MPI_INT, &count);
    CHECK_EQ_INT(count, 0, "Irecv(PROC_NULL) count");

    MPI_Probe(MPI_PROC_NULL, 3, MPI_COMM_WORLD, &st);
    CHECK_EQ_INT(st.MPI_SOURCE, MPI_PROC_NULL, "Probe(PROC_NULL) source");
    MPI_Iprobe(MPI_PROC_NULL, 3, MPI_COMM_WORLD, &flag, &st);
    CHECK_EQ_INT(flag, 1, "Iprobe(PROC_NULL) flag");
    chk_say("proc-null: Send/Ssend/Recv/Isend/Irecv/Probe/Iprobe with MPI_PROC_NULL: ok");

    /* Non-periodic shift down: rank r sends to r+1 and receives from r-1;
     * the ends use PROC_NULL. */
    up = rank == 0 ? MPI_PROC_NULL : rank - 1;
    down = rank == size - 1 ? MPI_PROC_NULL : rank + 1;
    got = -5;
    MPI_Sendrecv(&rank, 1, MPI_INT, down, 4, &got, 1, MPI_INT, up, 4, MPI_COMM_WORLD, &st);
    CHECK_EQ_INT(got, rank == 0 ? -5 : rank - 1, "shift value");
    CHECK_EQ_INT(st.MPI_SOURCE, up, "shift status source");
    got = rank;
    MPI_Sendrecv_replace(&got, 1, MPI_INT, up, 5, down, 5, MPI_COMM_WORLD, &st);
    CHECK_EQ_INT(got, rank == size - 1 ? rank : rank + 1, "shift up with Sendrecv_replace");
    chk_say_ordered(MPI_COMM_WORLD, "proc-null: rank %d up=%d down=%d", rank, up == MPI_PROC_NULL ? -1 : up,
                    down == MPI_PROC_NULL ? -1 : down);
    return chk_finish();
}
