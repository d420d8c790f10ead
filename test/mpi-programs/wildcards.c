/* ranks: 2-8 */
/*
 * MPI_ANY_SOURCE and MPI_ANY_TAG: only what the standard guarantees is
 * checked. Messages from one sender keep their send order even when received
 * with wildcards (whatever their tags); across senders no order is assumed.
 * Status fields report the real source and tag; receives posted earlier
 * match first.
 */
#include "check.h"

#define PER_SENDER 40
#define TAGS 3

int main(int argc, char **argv)
{
    int rank, size, i, src;
    chk_init(&argc, &argv, &rank, &size);
    chk_require_ranks(size, 2);

    /* 1. Every rank > 0 sends PER_SENDER messages to rank 0 with cycling
     * tags; rank 0 receives all with ANY_SOURCE/ANY_TAG. */
    if (rank == 0) {
        int *next_seq = calloc((size_t)size, sizeof(int));
        int total = (size - 1) * PER_SENDER, ok = 1;
        for (i = 0; i < total; i++) {
            int msg[2];
            MPI_Status st;
            int count;
            MPI_Recv(msg, 2, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
            MPI_Get_count(&st, MPI_INT, &count);
            src = st.MPI_SOURCE;
            if (src < 1 || src >= size || count != 2 || msg[0] != src || msg[1] != next_seq[src] ||
                st.MPI_TAG != msg[1] % TAGS) {
                ok = 0;
                fprintf(stderr, "bad message src=%d tag=%d msg={%d,%d} expected seq %d\n", src, st.MPI_TAG,
                        msg[0], msg[1], (src >= 1 && src < size) ? next_seq[src] : -1);
            } else {
                next_seq[src]++;
            }
        }
        for (src = 1; src < size; src++)
            CHECK_EQ_INT(next_seq[src], PER_SENDER, "messages from one sender");
        CHECK(ok, "wildcard receive broke per-sender order or status fields");
        free(next_seq);
    } else {
        for (i = 0; i < PER_SENDER; i++) {
            int msg[2] = {rank, i};
            MPI_Send(msg, 2, MPI_INT, 0, i % TAGS, MPI_COMM_WORLD);
        }
    }
    /* Wildcards would take the next phase's messages: keep phases apart. */
    MPI_Barrier(MPI_COMM_WORLD);
    chk_say("wildcards: ANY_SOURCE+ANY_TAG from %d senders: per-sender order kept", size - 1);

    /* 2. ANY_SOURCE with a fixed tag: only that tag matches; the other tag
     * waits. Then ANY_TAG from a fixed source. */
    if (rank == 0) {
        int v, ok = 1;
        MPI_Status st;
        int *seen = calloc((size_t)size, sizeof(int));
        for (i = 0; i < size - 1; i++) {
            MPI_Recv(&v, 1, MPI_INT, MPI_ANY_SOURCE, 7, MPI_COMM_WORLD, &st);
            if (st.MPI_TAG != 7 || v != 700 + st.MPI_SOURCE || seen[st.MPI_SOURCE]++)
                ok = 0;
        }
        for (src = 1; src < size; src++) {
            MPI_Recv(&v, 1, MPI_INT, src, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
            if (st.MPI_TAG != 8 || st.MPI_SOURCE != src || v != 800 + src)
                ok = 0;
        }
        CHECK(ok, "fixed-tag ANY_SOURCE / ANY_TAG fixed-source matching");
        free(seen);
    } else {
        int a = 800 + rank, b = 700 + rank;
        /* Tag 8 is sent first but received last. */
        MPI_Request r[2];
        MPI_Isend(&a, 1, MPI_INT, 0, 8, MPI_COMM_WORLD, &r[0]);
        MPI_Isend(&b, 1, MPI_INT, 0, 7, MPI_COMM_WORLD, &r[1]);
        MPI_Waitall(2, r, MPI_STATUSES_IGNORE);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    chk_say("wildcards: ANY_SOURCE with fixed tag, ANY_TAG with fixed source: ok");

    /* 3. A wildcard receive posted before a specific one takes the first
     * message; the specific one takes the second. */
    if (rank == 0) {
        int x = -1, y = -1;
        MPI_Request r[2];
        MPI_Status st[2];
        MPI_Irecv(&x, 1, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &r[0]);
        MPI_Irecv(&y, 1, MPI_INT, 1, 9, MPI_COMM_WORLD, &r[1]);
        MPI_Barrier(MPI_COMM_WORLD);
        MPI_Waitall(2, r, st);
        CHECK(x == 1 && y == 2, "posting order: x=%d y=%d", x, y);
        CHECK(st[0].MPI_SOURCE == 1 && st[0].MPI_TAG == 9, "status of the wildcard receive");
    } else {
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 1) {
            int a = 1, b = 2;
            MPI_Send(&a, 1, MPI_INT, 0, 9, MPI_COMM_WORLD);
            MPI_Send(&b, 1, MPI_INT, 0, 9, MPI_COMM_WORLD);
        }
    }
    chk_say("wildcards: earlier-posted wildcard receive matches first: ok");
    return chk_finish();
}
