/* ranks: 2-8 */
/*
 * Non-overtaking (MPI 3.1 section 3.5): two messages from one sender to one
 * receiver on one communicator that both match a receive arrive in send
 * order. Every rank sends to every other rank a stream mixing small and
 * large (well above any eager limit) messages on the same tag, interleaved
 * with a second tag and with traffic on a duplicate communicator; the
 * receiver checks sequence numbers and contents. Receiving the later tag
 * first is allowed and must work (different tags do not constrain order).
 */
#include "check.h"

#define MSGS 24
#define BIG_WORDS (256 * 1024) /* 1 MiB of ints */
#define TAG_A 5
#define TAG_B 6

static int msg_words(int seq) { return (seq % 4 == 3) ? BIG_WORDS : 1 + seq * 7; }

static void fill(int *buf, int words, int src, int seq, int salt)
{
    int i;
    buf[0] = seq;
    for (i = 1; i < words; i++)
        buf[i] = src * 1000003 + seq * 7919 + i + salt;
}

static int verify(const int *buf, int words, int src, int seq, int salt)
{
    int i;
    if (buf[0] != seq)
        return 0;
    for (i = 1; i < words; i++)
        if (buf[i] != src * 1000003 + seq * 7919 + i + salt)
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    int rank, size, peer, seq, n, i;
    MPI_Comm dup;
    MPI_Request *reqs;
    int **bufs;
    int nreq = 0;
    chk_init(&argc, &argv, &rank, &size);
    chk_require_ranks(size, 2);
    MPI_Comm_dup(MPI_COMM_WORLD, &dup);

    /* Phase 1: nonblocking sends of MSGS messages on TAG_A to every peer, and
     * blocking receives in order from each peer. */
    reqs = malloc(sizeof *reqs * (size_t)size * MSGS * 2);
    bufs = malloc(sizeof *bufs * (size_t)size * MSGS * 2);
    for (peer = 0; peer < size; peer++) {
        if (peer == rank)
            continue;
        for (seq = 0; seq < MSGS; seq++) {
            int w = msg_words(seq);
            bufs[nreq] = malloc(sizeof(int) * (size_t)w);
            fill(bufs[nreq], w, rank, seq, 0);
            MPI_Isend(bufs[nreq], w, MPI_INT, peer, TAG_A, MPI_COMM_WORLD, &reqs[nreq]);
            nreq++;
            /* Same tag, same source, different communicator: separate stream. */
            bufs[nreq] = malloc(sizeof(int) * 2);
            fill(bufs[nreq], 2, rank, seq, 77);
            MPI_Isend(bufs[nreq], 2, MPI_INT, peer, TAG_A, dup, &reqs[nreq]);
            nreq++;
        }
    }
    {
        int *rbuf = malloc(sizeof(int) * BIG_WORDS);
        int in_order = 1;
        for (n = 1; n < size; n++) {
            peer = (rank + n) % size;
            /* Drain the dup stream first, in reverse order relative to the
             * posting of world traffic: contexts keep them apart. */
            for (seq = 0; seq < MSGS; seq++) {
                MPI_Status st;
                int count;
                MPI_Recv(rbuf, 2, MPI_INT, peer, TAG_A, dup, &st);
                MPI_Get_count(&st, MPI_INT, &count);
                if (count != 2 || !verify(rbuf, 2, peer, seq, 77))
                    in_order = 0;
            }
            for (seq = 0; seq < MSGS; seq++) {
                MPI_Status st;
                int count;
                MPI_Recv(rbuf, BIG_WORDS, MPI_INT, peer, TAG_A, MPI_COMM_WORLD, &st);
                MPI_Get_count(&st, MPI_INT, &count);
                if (count != msg_words(seq) || !verify(rbuf, count, peer, seq, 0))
                    in_order = 0;
            }
        }
        CHECK(in_order, "messages overtook each other or were corrupted");
        free(rbuf);
    }
    MPI_Waitall(nreq, reqs, MPI_STATUSES_IGNORE);
    for (i = 0; i < nreq; i++)
        free(bufs[i]);
    chk_say("ordering: streams of %d messages per pair, world and dup: in order", MSGS);

    /* Phase 2: rank 0 sends TAG_A then TAG_B to rank 1; rank 1 receives TAG_B
     * first. Allowed by the standard: the TAG_A message must wait. A large
     * TAG_A makes a naive single-queue implementation stall. */
    if (rank == 0) {
        int *big = malloc(sizeof(int) * BIG_WORDS);
        int small = 42;
        MPI_Request r[2];
        fill(big, BIG_WORDS, 0, 1, 3);
        MPI_Isend(big, BIG_WORDS, MPI_INT, 1, TAG_A, MPI_COMM_WORLD, &r[0]);
        MPI_Isend(&small, 1, MPI_INT, 1, TAG_B, MPI_COMM_WORLD, &r[1]);
        MPI_Waitall(2, r, MPI_STATUSES_IGNORE);
        free(big);
    } else if (rank == 1) {
        int *big = malloc(sizeof(int) * BIG_WORDS);
        int small = 0;
        MPI_Recv(&small, 1, MPI_INT, 0, TAG_B, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Recv(big, BIG_WORDS, MPI_INT, 0, TAG_A, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        CHECK_EQ_INT(small, 42, "TAG_B payload");
        CHECK(verify(big, BIG_WORDS, 0, 1, 3), "TAG_A payload after TAG_B");
        free(big);
    }
    chk_say("ordering: later tag received first: ok");

    /* Phase 3: posted receives are matched in posting order: two Irecvs that
     * both match get the two messages in send order. */
    if (rank == 0) {
        int a = 1, b = 2;
        MPI_Barrier(MPI_COMM_WORLD);
        MPI_Send(&a, 1, MPI_INT, 1, TAG_A, MPI_COMM_WORLD);
        MPI_Send(&b, 1, MPI_INT, 1, TAG_A, MPI_COMM_WORLD);
    } else if (rank == 1) {
        int x = 0, y = 0;
        MPI_Request r[2];
        MPI_Irecv(&x, 1, MPI_INT, 0, TAG_A, MPI_COMM_WORLD, &r[0]);
        MPI_Irecv(&y, 1, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &r[1]);
        MPI_Barrier(MPI_COMM_WORLD);
        MPI_Waitall(2, r, MPI_STATUSES_IGNORE);
        CHECK(x == 1 && y == 2, "posted receives matched out of order: x=%d y=%d", x, y);
    } else {
        MPI_Barrier(MPI_COMM_WORLD);
    }
    chk_say("ordering: posted receives match in posting order: ok");

    free(reqs);
    free(bufs);
    MPI_Comm_free(&dup);
    return chk_finish();
}
