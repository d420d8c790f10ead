/* ranks: 2-8 */
/*
 * Intercommunicators. The world is split into two groups, of unequal size
 * from 3 ranks on: A = the world ranks r with r % 3 == 1 in ascending order,
 * B = the others in descending order (B's local order is not the world's, and
 * its leader is its highest world rank).
 * 1. Intercomm_create (local leader 0, remote leader the other group's local
 *    rank 0 in MPI_COMM_WORLD): Comm_test_inter, size/rank/group of the local
 *    group, Comm_remote_size, Comm_remote_group (translated to world ranks).
 * 2. Point to point across the groups: MPI_ANY_SOURCE/ANY_TAG receives (the
 *    status source is a remote rank) and replies to it, Probe with
 *    MPI_ANY_SOURCE and Iprobe, 1 MiB messages both ways (Isend/Irecv and
 *    Send/Recv), Sendrecv, MPI_PROC_NULL in each call.
 * 3. A second Intercomm_create with the last local ranks as leaders and a
 *    Comm_dup of the first: messages with the same source and tag on the
 *    world and the three intercommunicators never mix (ANY_SOURCE receives
 *    posted in reverse order, before the sends or after them). A group that
 *    made more communicators than the other before an Intercomm_create: the
 *    new intercomm's messages and that group's never mix.
 * 4. Collectives with intercommunicator semantics (MPI_ROOT/MPI_PROC_NULL in
 *    the root group, the root's rank in the other), each group as the root
 *    group, several roots: Bcast (also one of 256 KiB), Reduce, Gather,
 *    Scatter; Allreduce (each group gets the other's reduction), Allgather
 *    and Alltoall with counts differing between the groups, Barrier (a group
 *    sleeping 50 ms before it holds the other back).
 * 5. Intercomm_merge: A high=0/B high=1 gives A's ranks then B's, A high=1/B
 *    high=0 B's then A's (from both intercommunicators); the same high value
 *    on both sides (on the dup) only fixes the size.
 * 6. Comm_set_name/get_name on an intercommunicator (not copied by Comm_dup),
 *    the dups still working after the original is freed, Comm_free of all.
 *
 * Only rank 0 prints; each section's result lines are printed at its end,
 * with how many ranks passed each check (one Allreduce per section).
 */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "check.h"

static int rank, size;
static int in_a;                      /* this rank is in group A */
static int na, nb, *a_world, *b_world; /* each group's world ranks in its local order */
static int lsize, lrank, rsize;       /* own group's size, own local rank, the other group's size */
static const int *my_world, *other_world;
static MPI_Comm local, inter, inter2, dup;

/* Result lines are queued and printed by rank 0 at the end of each section after one Allreduce (fewer
 * synchronizations): note(ok, ...) queues a line that gets " on n/size ranks" appended, n being how many
 * ranks passed (ok 1), note(-1, ...) a line printed as is. Every rank queues the same lines. */
#define MAX_NOTES 24
#define NOTE_LEN 320
static char notes[MAX_NOTES][NOTE_LEN];
static int note_ok[MAX_NOTES], note_counted[MAX_NOTES], nnotes;

static void note(int ok, const char *fmt, ...)
{
    va_list ap;
    if (nnotes == MAX_NOTES) {
        CHECK(0, "too many notes");
        return;
    }
    va_start(ap, fmt);
    vsnprintf(notes[nnotes], NOTE_LEN, fmt, ap);
    va_end(ap);
    note_counted[nnotes] = ok >= 0;
    note_ok[nnotes] = ok > 0;
    nnotes++;
}

static void flush_notes(void)
{
    int n[MAX_NOTES], i;
    MPI_Allreduce(note_ok, n, MAX_NOTES, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    for (i = 0; i < nnotes; i++) {
        if (note_counted[i])
            chk_say("%s on %d/%d ranks", notes[i], n[i], size);
        else
            chk_say("%s", notes[i]);
        note_ok[i] = 0;
    }
    nnotes = 0;
}

static void list_str(const int *v, int n, char *out, size_t cap)
{
    size_t used = 0;
    int i;
    out[0] = '\0';
    for (i = 0; i < n && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, i ? " %d" : "%d", v[i]);
}

static void sleep_ms(int ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Whether the group's members are, in order, the given world ranks. */
static int group_is(MPI_Group g, const int *world, int n)
{
    MPI_Group wg;
    int gsize, i, ok, *from, *to;
    MPI_Group_size(g, &gsize);
    if (gsize != n)
        return 0;
    from = malloc(sizeof(int) * (size_t)n);
    to = malloc(sizeof(int) * (size_t)n);
    for (i = 0; i < n; i++)
        from[i] = i;
    MPI_Comm_group(MPI_COMM_WORLD, &wg);
    MPI_Group_translate_ranks(g, n, from, wg, to);
    MPI_Group_free(&wg);
    for (ok = 1, i = 0; i < n; i++)
        ok = ok && to[i] == world[i];
    free(from);
    free(to);
    return ok;
}

/* An intercommunicator's shape as this rank sees it: test_inter, local size and rank, remote size and group,
 * local group. */
static int inter_shape_ok(MPI_Comm c, const char *what)
{
    int flag = -1, s = -1, r = -1, rs = -1, ok;
    MPI_Group g;
    MPI_Comm_test_inter(c, &flag);
    MPI_Comm_size(c, &s);
    MPI_Comm_rank(c, &r);
    MPI_Comm_remote_size(c, &rs);
    ok = flag == 1 && s == lsize && r == lrank && rs == rsize;
    CHECK(ok, "%s: test_inter %d, size %d, rank %d, remote size %d (expected 1, %d, %d, %d)", what, flag, s, r, rs,
          lsize, lrank, rsize);
    MPI_Comm_remote_group(c, &g);
    if (!group_is(g, other_world, rsize)) {
        CHECK(0, "%s: remote group is not the other group in its local order", what);
        ok = 0;
    }
    MPI_Group_free(&g);
    MPI_Comm_group(c, &g);
    if (!group_is(g, my_world, lsize)) {
        CHECK(0, "%s: local group is not this rank's group", what);
        ok = 0;
    }
    MPI_Group_free(&g);
    return ok;
}

/* 1. Intercomm_create and the queries */
static void create(void)
{
    int i, s, r, flag_inter = -1, flag_world = -1, flag_local = -1, cmp = -1, ok_local, ok_inter;
    char la[64], lb[64], seen[64] = "";
    MPI_Group g, lg;
    a_world = malloc(sizeof(int) * (size_t)size);
    b_world = malloc(sizeof(int) * (size_t)size);
    for (na = 0, i = 0; i < size; i++)
        if (i % 3 == 1)
            a_world[na++] = i;
    for (nb = 0, i = size - 1; i >= 0; i--)
        if (i % 3 != 1)
            b_world[nb++] = i;
    in_a = rank % 3 == 1;
    my_world = in_a ? a_world : b_world;
    other_world = in_a ? b_world : a_world;
    lsize = in_a ? na : nb;
    rsize = in_a ? nb : na;
    for (lrank = 0; my_world[lrank] != rank; lrank++)
        ;
    list_str(a_world, na, la, sizeof la);
    list_str(b_world, nb, lb, sizeof lb);
    note(-1, "groups: A = world ranks %s (%d), B = world ranks %s (%d)", la, na, lb, nb);

    MPI_Comm_split(MPI_COMM_WORLD, in_a ? 0 : 1, in_a ? rank : size - rank, &local);
    MPI_Comm_size(local, &s);
    MPI_Comm_rank(local, &r);
    ok_local = s == lsize && r == lrank;
    CHECK(ok_local, "split comm: size %d rank %d, expected %d %d", s, r, lsize, lrank);

    CHECK_MPI(MPI_Intercomm_create(local, 0, MPI_COMM_WORLD, other_world[0], 100, &inter));
    MPI_Comm_test_inter(inter, &flag_inter);
    MPI_Comm_test_inter(MPI_COMM_WORLD, &flag_world);
    MPI_Comm_test_inter(local, &flag_local);
    CHECK(flag_inter == 1, "Comm_test_inter(intercomm) = %d", flag_inter);
    CHECK(flag_world == 0 && flag_local == 0, "Comm_test_inter world %d, split comm %d", flag_world, flag_local);
    note(flag_inter == 1, "Intercomm_create (leaders: local rank 0 of each group): Comm_test_inter 1");
    note(flag_world == 0 && flag_local == 0, "Comm_test_inter of the world and of the split comm 0");

    MPI_Comm_size(inter, &s);
    MPI_Comm_rank(inter, &r);
    CHECK(s == lsize && r == lrank, "intercomm: local size %d rank %d, expected %d %d", s, r, lsize, lrank);
    note(ok_local && s == lsize && r == lrank, "Comm_size/Comm_rank = the local group's (the split comm's)");
    MPI_Comm_remote_size(inter, &s);
    CHECK_EQ_INT(s, rsize, "Comm_remote_size");
    note(s == rsize, "Comm_remote_size = the other group's size");

    MPI_Comm_remote_group(inter, &g);
    MPI_Group_size(g, &s);
    ok_inter = group_is(g, other_world, rsize);
    CHECK(ok_inter, "Comm_remote_group is not the other group in its local order");
    note(ok_inter, "Comm_remote_group = the other group's world ranks in its local order");
    if (rank == 0) {
        int *from = malloc(sizeof(int) * (size_t)s), *to = malloc(sizeof(int) * (size_t)s);
        MPI_Group wg;
        for (i = 0; i < s; i++)
            from[i] = i;
        MPI_Comm_group(MPI_COMM_WORLD, &wg);
        MPI_Group_translate_ranks(g, s, from, wg, to);
        MPI_Group_free(&wg);
        list_str(to, s, seen, sizeof seen);
        free(from);
        free(to);
    }
    MPI_Group_free(&g);
    note(-1, "world rank 0 (group %s) sees a remote group of %d: world ranks %s", in_a ? "A" : "B", rsize, seen);

    MPI_Comm_group(inter, &g);
    MPI_Comm_group(local, &lg);
    MPI_Group_compare(g, lg, &cmp);
    ok_inter = group_is(g, my_world, lsize) && cmp == MPI_IDENT;
    CHECK(ok_inter, "Comm_group(intercomm): members wrong or not IDENT to the split comm's (%d)", cmp);
    MPI_Group_free(&g);
    MPI_Group_free(&lg);
    note(ok_inter, "Comm_group = the local group, IDENT to the split comm's group,");
    flush_notes();
}

/* How many of the `from` group's ranks k have k % to_size == me. */
static int senders_to(int me, int from_size, int to_size)
{
    int k, n = 0;
    for (k = 0; k < from_size; k++)
        n += k % to_size == me;
    return n;
}

#define BIG (256 * 1024) /* ints: 1 MiB */

/* 2. Point to point across the groups */
static void point_to_point(void)
{
    int i, k, n, ok, buf[8], reply[3], flag;
    MPI_Status st;

    /* A rank i -> B rank i % nb, received with ANY_SOURCE/ANY_TAG; B replies to the status source */
    ok = 1;
    if (in_a) {
        int msg[3] = { lrank, rank, 12345 };
        int to = lrank % nb;
        MPI_Send(msg, 3, MPI_INT, to, 10 + lrank, inter);
        MPI_Recv(reply, 3, MPI_INT, to, 20, inter, &st);
        MPI_Get_count(&st, MPI_INT, &n);
        ok = st.MPI_SOURCE == to && st.MPI_TAG == 20 && n == 3 && reply[0] == to && reply[1] == b_world[to] &&
             reply[2] == lrank;
        CHECK(ok, "reply: source %d tag %d count %d payload %d %d %d", st.MPI_SOURCE, st.MPI_TAG, n, reply[0],
              reply[1], reply[2]);
    } else {
        char *seen = calloc((size_t)na, 1);
        n = senders_to(lrank, na, nb);
        for (k = 0; k < n; k++) {
            int count = -1, s;
            MPI_Recv(buf, 8, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, inter, &st);
            MPI_Get_count(&st, MPI_INT, &count);
            s = st.MPI_SOURCE;
            if (!(s >= 0 && s < na && s % nb == lrank && !seen[s] && st.MPI_TAG == 10 + s && count == 3 &&
                  buf[0] == s && buf[1] == a_world[s] && buf[2] == 12345)) {
                CHECK(0, "ANY_SOURCE receive: source %d tag %d count %d payload %d %d %d", s, st.MPI_TAG, count,
                      buf[0], buf[1], buf[2]);
                ok = 0;
                break;
            }
            seen[s] = 1;
            reply[0] = lrank;
            reply[1] = rank;
            reply[2] = s;
            MPI_Send(reply, 3, MPI_INT, s, 20, inter);
        }
        free(seen);
    }
    note(ok,
         "A rank i -> B rank i %% %d (%d messages), received with MPI_ANY_SOURCE/MPI_ANY_TAG: status source a "
         "remote rank, its tag; replies to it received,",
         nb, na);

    /* every message so far is received before the next part sends (wildcard receives and probes below must
     * not see a later part's messages) */
    MPI_Barrier(MPI_COMM_WORLD);

    /* B rank j -> A rank j % na, j + 1 ints with tag 30 + j: Probe with ANY_SOURCE, then receive what it saw */
    ok = 1;
    if (!in_a) {
        for (i = 0; i <= lrank; i++)
            buf[i] = rank;
        MPI_Send(buf, lrank + 1, MPI_INT, lrank % na, 30 + lrank, inter);
    } else {
        char *seen = calloc((size_t)nb, 1);
        n = senders_to(lrank, nb, na);
        for (k = 0; k < n && ok; k++) {
            int count = -1, count2 = -1, s, tag;
            MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, inter, &st);
            MPI_Get_count(&st, MPI_INT, &count);
            s = st.MPI_SOURCE;
            tag = st.MPI_TAG;
            if (!(s >= 0 && s < nb && s % na == lrank && !seen[s] && tag == 30 + s && count == s + 1)) {
                CHECK(0, "Probe: source %d tag %d count %d", s, tag, count);
                ok = 0;
                break;
            }
            seen[s] = 1;
            memset(buf, 0xff, sizeof buf);
            MPI_Recv(buf, 8, MPI_INT, s, tag, inter, &st);
            MPI_Get_count(&st, MPI_INT, &count2);
            ok = st.MPI_SOURCE == s && st.MPI_TAG == tag && count2 == count;
            for (i = 0; i < count2 && ok; i++)
                ok = buf[i] == b_world[s];
            CHECK(ok, "receive after Probe: source %d tag %d count %d", st.MPI_SOURCE, st.MPI_TAG, count2);
        }
        free(seen);
    }
    note(ok,
         "B rank j -> A rank j %% %d (%d messages of j + 1 ints): Probe(MPI_ANY_SOURCE) gives the remote rank, tag "
         "and count, the receive from it gets the message,",
         na, nb);

    MPI_Barrier(MPI_COMM_WORLD);

    /* Iprobe: a tag nobody sends is not there; a message from A rank 0 to B's last rank shows up */
    ok = 1;
    flag = -1;
    MPI_Iprobe(MPI_ANY_SOURCE, 41, inter, &flag, &st);
    ok = flag == 0;
    CHECK(ok, "Iprobe for a tag nobody sends: flag %d", flag);
    if (in_a && lrank == 0) {
        int v = 777;
        MPI_Send(&v, 1, MPI_INT, nb - 1, 40, inter);
    } else if (!in_a && lrank == nb - 1) {
        int v = 0, polls = 0;
        do {
            MPI_Iprobe(0, 40, inter, &flag, &st);
            polls++;
        } while (!flag);
        ok = ok && st.MPI_SOURCE == 0 && st.MPI_TAG == 40;
        CHECK(ok, "Iprobe: source %d tag %d", st.MPI_SOURCE, st.MPI_TAG);
        MPI_Recv(&v, 1, MPI_INT, 0, 40, inter, &st);
        ok = ok && v == 777 && st.MPI_SOURCE == 0;
        CHECK(ok, "receive after Iprobe: %d", v);
    }
    note(ok, "Iprobe: nothing with a tag nobody sends, then A rank 0's message to B rank %d found,", nb - 1);

    /* 1 MiB both ways: A's last rank -> B's last rank (Isend / Irecv ANY_SOURCE), B rank 0 -> A rank 0 (Send/Recv) */
    {
        int *big = malloc(sizeof(int) * BIG), count = -1, ok1 = 1, ok2 = 1;
        MPI_Request req;
        if (in_a && lrank == na - 1) {
            for (i = 0; i < BIG; i++)
                big[i] = i * 7 + rank;
            MPI_Isend(big, BIG, MPI_INT, nb - 1, 50, inter, &req);
            MPI_Wait(&req, MPI_STATUS_IGNORE);
        }
        if (!in_a && lrank == nb - 1) {
            memset(big, 0, sizeof(int) * BIG);
            MPI_Irecv(big, BIG, MPI_INT, MPI_ANY_SOURCE, 50, inter, &req);
            MPI_Wait(&req, &st);
            MPI_Get_count(&st, MPI_INT, &count);
            ok1 = st.MPI_SOURCE == na - 1 && st.MPI_TAG == 50 && count == BIG;
            for (i = 0; i < BIG && ok1; i++)
                ok1 = big[i] == i * 7 + a_world[na - 1];
            CHECK(ok1, "1 MiB A -> B: source %d count %d, first wrong element %d", st.MPI_SOURCE, count, i);
        }
        if (!in_a && lrank == 0) {
            for (i = 0; i < BIG; i++)
                big[i] = i ^ rank;
            MPI_Send(big, BIG, MPI_INT, 0, 51, inter);
        }
        if (in_a && lrank == 0) {
            memset(big, 0, sizeof(int) * BIG);
            MPI_Recv(big, BIG, MPI_INT, 0, 51, inter, &st);
            MPI_Get_count(&st, MPI_INT, &count);
            ok2 = st.MPI_SOURCE == 0 && st.MPI_TAG == 51 && count == BIG;
            for (i = 0; i < BIG && ok2; i++)
                ok2 = big[i] == (i ^ b_world[0]);
            CHECK(ok2, "1 MiB B -> A: source %d count %d, first wrong element %d", st.MPI_SOURCE, count, i);
        }
        free(big);
        note(ok1 && ok2,
             "1 MiB: A rank %d -> B rank %d (Isend, Irecv from MPI_ANY_SOURCE) and B rank 0 -> A rank 0 (Send, "
             "Recv): right",
             na - 1, nb - 1);
    }

    /* Sendrecv: A rank i <-> B rank i for i < na; B's other ranks Sendrecv with MPI_PROC_NULL both ways */
    {
        int out[2] = { rank, lrank }, in[2] = { -1, -1 }, count = -1;
        if (lrank < na) {
            MPI_Sendrecv(out, 2, MPI_INT, lrank, in_a ? 60 : 61, in, 2, MPI_INT, lrank, in_a ? 61 : 60, inter,
                         &st);
            MPI_Get_count(&st, MPI_INT, &count);
            ok = st.MPI_SOURCE == lrank && st.MPI_TAG == (in_a ? 61 : 60) && count == 2 &&
                 in[0] == other_world[lrank] && in[1] == lrank;
            CHECK(ok, "Sendrecv: source %d tag %d count %d got %d %d", st.MPI_SOURCE, st.MPI_TAG, count, in[0],
                  in[1]);
        } else {
            MPI_Sendrecv(out, 2, MPI_INT, MPI_PROC_NULL, 61, in, 2, MPI_INT, MPI_PROC_NULL, 60, inter, &st);
            MPI_Get_count(&st, MPI_INT, &count);
            ok = st.MPI_SOURCE == MPI_PROC_NULL && st.MPI_TAG == MPI_ANY_TAG && count == 0 && in[0] == -1;
            CHECK(ok, "Sendrecv with MPI_PROC_NULL: source %d tag %d count %d", st.MPI_SOURCE, st.MPI_TAG, count);
        }
        note(ok, "Sendrecv: A rank i <-> B rank i for i < %d, the other %d B ranks with MPI_PROC_NULL: right", na,
             nb - na);
    }

    /* MPI_PROC_NULL in Send, Recv, Isend, Irecv, Probe, Iprobe on the intercommunicator */
    {
        int v = 5, w = -1, count = -1, ok2;
        MPI_Request reqs[2];
        MPI_Status sts[2];
        MPI_Send(&v, 1, MPI_INT, MPI_PROC_NULL, 3, inter);
        MPI_Recv(&w, 1, MPI_INT, MPI_PROC_NULL, 3, inter, &st);
        MPI_Get_count(&st, MPI_INT, &count);
        ok = st.MPI_SOURCE == MPI_PROC_NULL && st.MPI_TAG == MPI_ANY_TAG && count == 0 && w == -1;
        CHECK(ok, "Recv from MPI_PROC_NULL: status source %d tag %d count %d, buffer %d", st.MPI_SOURCE, st.MPI_TAG,
              count, w);
        MPI_Isend(&v, 1, MPI_INT, MPI_PROC_NULL, 3, inter, &reqs[0]);
        MPI_Irecv(&w, 1, MPI_INT, MPI_PROC_NULL, 3, inter, &reqs[1]);
        MPI_Waitall(2, reqs, sts);
        MPI_Get_count(&sts[1], MPI_INT, &count);
        /* the standard says source MPI_PROC_NULL and tag MPI_ANY_TAG after the Wait too, but Debian's MPICH 4.0.2
         * reports 0 and 0 (as in proc-null.c), so only the count is checked */
        ok2 = count == 0 && w == -1;
        CHECK(ok2, "Irecv from MPI_PROC_NULL: count %d, buffer %d", count, w);
        ok = ok && ok2;
        MPI_Probe(MPI_PROC_NULL, 3, inter, &st);
        ok2 = st.MPI_SOURCE == MPI_PROC_NULL;
        flag = 0;
        MPI_Iprobe(MPI_PROC_NULL, 3, inter, &flag, &st);
        ok2 = ok2 && flag == 1 && st.MPI_SOURCE == MPI_PROC_NULL;
        CHECK(ok2, "Probe/Iprobe of MPI_PROC_NULL: flag %d source %d", flag, st.MPI_SOURCE);
        ok = ok && ok2;
        note(ok, "MPI_PROC_NULL in Send/Recv/Isend/Irecv/Probe/Iprobe: nothing received, Recv and the probes give "
                 "source MPI_PROC_NULL,");
    }
    flush_notes();
}

/* 3. A second intercommunicator (other leaders), a dup; context separation */
static void contexts(void)
{
    static const char *names[4] = { "world", "intercomm", "second intercomm", "dup" };
    MPI_Comm comms[4];
    int ok, round, k;

    CHECK_MPI(MPI_Intercomm_create(local, lsize - 1, MPI_COMM_WORLD, other_world[rsize - 1], 200, &inter2));
    ok = inter_shape_ok(inter2, "second intercomm");
    note(ok,
         "Intercomm_create with the last local ranks as leaders (world ranks %d and %d): test_inter, sizes, local "
         "rank, remote and local groups (in local order, not from the leader) right",
         a_world[na - 1], b_world[nb - 1]);
    CHECK_MPI(MPI_Comm_dup(inter, &dup));
    ok = inter_shape_ok(dup, "dup");
    note(ok, "Comm_dup of the intercomm: an intercomm with the same groups");

    comms[0] = MPI_COMM_WORLD;
    comms[1] = inter;
    comms[2] = inter2;
    comms[3] = dup;
    /* A rank i and B rank i (i < na) send each other, on each comm, tag 7 and {comm index, world rank}; the
     * receives are MPI_ANY_SOURCE/MPI_ANY_TAG in reverse order. Round 0: receives posted before the sends;
     * round 1: sends first (Isend), receives posted after a barrier. */
    for (round = 0; round < 2; round++) {
        int partner_world = lrank < na ? other_world[lrank] : -1, in[4][2], out[4][2];
        MPI_Request sreq[4], rreq[4];
        MPI_Status st[4];
        ok = 1;
        for (k = 0; k < 4; k++) {
            out[k][0] = k;
            out[k][1] = rank;
            in[k][0] = in[k][1] = -1;
            sreq[k] = rreq[k] = MPI_REQUEST_NULL;
        }
        if (round == 0 && lrank < na)
            for (k = 3; k >= 0; k--)
                MPI_Irecv(in[k], 2, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, comms[k], &rreq[k]);
        MPI_Barrier(MPI_COMM_WORLD);
        if (lrank < na)
            for (k = 0; k < 4; k++)
                MPI_Isend(out[k], 2, MPI_INT, k == 0 ? partner_world : lrank, 7, comms[k], &sreq[k]);
        MPI_Barrier(MPI_COMM_WORLD);
        if (round == 1 && lrank < na) {
            sleep_ms(5);
            for (k = 3; k >= 0; k--)
                MPI_Irecv(in[k], 2, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, comms[k], &rreq[k]);
        }
        MPI_Waitall(4, rreq, st);
        MPI_Waitall(4, sreq, MPI_STATUSES_IGNORE);
        if (lrank < na)
            for (k = 0; k < 4; k++) {
                int src = k == 0 ? partner_world : lrank;
                if (!(in[k][0] == k && in[k][1] == partner_world && st[k].MPI_SOURCE == src && st[k].MPI_TAG == 7)) {
                    CHECK(0, "round %d, receive on the %s got the message of the %s (source %d, tag %d)", round,
                          names[k], in[k][0] >= 0 && in[k][0] < 4 ? names[in[k][0]] : "?", st[k].MPI_SOURCE,
                          st[k].MPI_TAG);
                    ok = 0;
                }
            }
        note(ok,
             "same source and tag on the world, intercomm, second intercomm and dup (A rank i <-> B rank i, i < %d), "
             "MPI_ANY_SOURCE receives in reverse order posted %s: each message on its own comm",
             na, round == 0 ? "before the sends" : "after them (Isend, then a barrier)");
    }
    flush_notes();
}

/* 3b. Group A makes three more communicators than B before an Intercomm_create: the groups' next free contexts
 * differ, and the intercomm must take one that is free in both. Each A rank waits on each of its extra ones with
 * an MPI_ANY_SOURCE/ANY_TAG receive while B sends to A on the new intercomm; then it sends itself a message on
 * each extra one, which those receives must get. */
static void uneven_contexts(void)
{
    MPI_Comm extra[3], inter3;
    MPI_Request rreq[3];
    MPI_Status st[3];
    int k, j, ok = 1, in[3], mine[3], got, expect = 0;
    if (in_a)
        for (k = 0; k < 3; k++) {
            CHECK_MPI(MPI_Comm_dup(local, &extra[k]));
            MPI_Irecv(&in[k], 1, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, extra[k], &rreq[k]);
        }
    CHECK_MPI(MPI_Intercomm_create(local, 0, MPI_COMM_WORLD, other_world[0], 300, &inter3));
    if (!in_a) {
        CHECK_MPI(MPI_Send(&rank, 1, MPI_INT, lrank % rsize, 9, inter3));
    } else {
        for (j = 0; j < rsize; j++)
            expect += j % lsize == lrank;
        for (j = 0; j < expect; j++) {
            MPI_Status s1;
            CHECK_MPI(MPI_Recv(&got, 1, MPI_INT, MPI_ANY_SOURCE, 9, inter3, &s1));
            if (s1.MPI_SOURCE < 0 || s1.MPI_SOURCE >= rsize || got != other_world[s1.MPI_SOURCE]) {
                CHECK(0, "message on the third intercomm: %d from remote rank %d", got, s1.MPI_SOURCE);
                ok = 0;
            }
        }
        for (k = 0; k < 3; k++) {
            mine[k] = 1000 + k;
            CHECK_MPI(MPI_Send(&mine[k], 1, MPI_INT, lrank, 11 + k, extra[k]));
        }
        MPI_Waitall(3, rreq, st);
        for (k = 0; k < 3; k++) {
            if (!(in[k] == 1000 + k && st[k].MPI_SOURCE == lrank && st[k].MPI_TAG == 11 + k)) {
                CHECK(0, "A's extra communicator %d got %d from %d tag %d", k, in[k], st[k].MPI_SOURCE, st[k].MPI_TAG);
                ok = 0;
            }
            CHECK_MPI(MPI_Comm_free(&extra[k]));
        }
    }
    CHECK_MPI(MPI_Comm_free(&inter3));
    note(ok, "A made 3 more communicators than B before an Intercomm_create: B's messages on it and A's on those "
             "never mix");
    flush_notes();
}

/* 4. Collectives across the groups */
struct round {
    int root_in_a, root;
};

/* What a root-group rank's Bcast buffer holds (and still holds after it) */
static int bbuf_before(int am_root, int idx, int i)
{
    return am_root ? 1000 * idx + 10 * i + rank : -1;
}

/* Bcast, Reduce, Gather, Scatter with the root in group A (root_in_a) or B: the root passes MPI_ROOT, the rest
 * of its group MPI_PROC_NULL, the other group the root's local rank */
static void rooted(const struct round *rd, int idx)
{
    int in_root_group = rd->root_in_a == in_a, am_root = in_root_group && lrank == rd->root;
    int root = in_root_group ? (am_root ? MPI_ROOT : MPI_PROC_NULL) : rd->root;
    const int *root_world = rd->root_in_a ? a_world : b_world;
    const char *from = rd->root_in_a ? "A" : "B", *to = rd->root_in_a ? "B" : "A";
    int i, ok[4] = { 1, 1, 1, 1 };
    int bbuf[4], sbuf[3], rbuf[3], *gbuf, *sc, mine[2];

    /* Bcast: the other group gets the root's 4 ints; the root group's buffers are untouched */
    for (i = 0; i < 4; i++)
        bbuf[i] = in_root_group ? bbuf_before(am_root, idx, i) : -2;
    MPI_Bcast(bbuf, 4, MPI_INT, root, inter);
    for (i = 0; i < 4; i++) {
        int expect = in_root_group ? bbuf_before(am_root, idx, i) : 1000 * idx + 10 * i + root_world[rd->root];
        ok[0] = ok[0] && bbuf[i] == expect;
    }
    CHECK(ok[0], "round %d Bcast: got %d %d %d %d", idx, bbuf[0], bbuf[1], bbuf[2], bbuf[3]);

    /* Reduce SUM: the root gets the sum over the other group */
    sbuf[0] = rank;
    sbuf[1] = lrank + 1;
    sbuf[2] = 1;
    rbuf[0] = rbuf[1] = rbuf[2] = -1;
    MPI_Reduce(sbuf, rbuf, 3, MPI_INT, MPI_SUM, root, inter);
    if (am_root) {
        int sum = 0;
        for (i = 0; i < rsize; i++)
            sum += other_world[i];
        ok[1] = rbuf[0] == sum && rbuf[1] == rsize * (rsize + 1) / 2 && rbuf[2] == rsize;
        CHECK(ok[1], "round %d Reduce: got %d %d %d, expected %d %d %d", idx, rbuf[0], rbuf[1], rbuf[2], sum,
              rsize * (rsize + 1) / 2, rsize);
    } else {
        ok[1] = rbuf[0] == -1 && rbuf[1] == -1 && rbuf[2] == -1;
        CHECK(ok[1], "round %d Reduce: a non-root's receive buffer changed", idx);
    }

    /* Gather: the root gets {world rank, local rank} of each remote rank in order */
    gbuf = malloc(sizeof(int) * 2 * (size_t)size);
    for (i = 0; i < 2 * size; i++)
        gbuf[i] = -1;
    mine[0] = rank;
    mine[1] = lrank;
    MPI_Gather(mine, 2, MPI_INT, gbuf, 2, MPI_INT, root, inter);
    if (am_root) {
        for (i = 0; i < rsize; i++)
            ok[2] = ok[2] && gbuf[2 * i] == other_world[i] && gbuf[2 * i + 1] == i;
        CHECK(ok[2], "round %d Gather", idx);
    } else {
        ok[2] = gbuf[0] == -1;
        CHECK(ok[2], "round %d Gather: a non-root's receive buffer changed", idx);
    }
    free(gbuf);

    /* Scatter: each remote rank k gets {10 * its world rank + idx, k} */
    sc = malloc(sizeof(int) * 2 * (size_t)size);
    for (i = 0; i < rsize; i++) {
        sc[2 * i] = am_root ? 10 * other_world[i] + idx : -5;
        sc[2 * i + 1] = am_root ? i : -5;
    }
    mine[0] = mine[1] = -1;
    MPI_Scatter(sc, 2, MPI_INT, mine, 2, MPI_INT, root, inter);
    if (in_root_group)
        ok[3] = mine[0] == -1 && mine[1] == -1;
    else
        ok[3] = mine[0] == 10 * rank + idx && mine[1] == lrank;
    CHECK(ok[3], "round %d Scatter: got %d %d", idx, mine[0], mine[1]);
    free(sc);

    note(ok[0], "Bcast from %s rank %d (world rank %d) to %s: right", from, rd->root, root_world[rd->root], to);
    note(ok[1], "Reduce SUM of %s's data to %s rank %d: right", to, from, rd->root);
    note(ok[2], "Gather from %s to %s rank %d: right", to, from, rd->root);
    note(ok[3], "Scatter from %s rank %d to %s: right", from, rd->root, to);
}

#define BCAST_BIG (64 * 1024) /* ints: 256 KiB */

static void collectives(void)
{
    struct round rounds[3];
    int i, k, ok, sum, max;

    /* the root: A's last rank (its leader only when A has one rank), B's leader, a middle rank of B */
    rounds[0].root_in_a = 1, rounds[0].root = na - 1;
    rounds[1].root_in_a = 0, rounds[1].root = 0;
    rounds[2].root_in_a = 0, rounds[2].root = nb / 2;
    for (i = 0; i < 3; i++)
        rooted(&rounds[i], i);
    flush_notes();

    /* a 256 KiB Bcast from B's last rank to A */
    {
        int *big = malloc(sizeof(int) * BCAST_BIG), root;
        root = in_a ? nb - 1 : (lrank == nb - 1 ? MPI_ROOT : MPI_PROC_NULL);
        for (i = 0; i < BCAST_BIG; i++)
            big[i] = root == MPI_ROOT ? i * 3 + rank : -1;
        MPI_Bcast(big, BCAST_BIG, MPI_INT, root, inter);
        ok = 1;
        for (i = 0; i < BCAST_BIG && ok; i++)
            ok = big[i] == (in_a ? i * 3 + b_world[nb - 1] : root == MPI_ROOT ? i * 3 + rank : -1);
        CHECK(ok, "256 KiB Bcast: element %d wrong", i);
        free(big);
        note(ok, "256 KiB Bcast from B rank %d to A: right", nb - 1);
    }

    /* Allreduce: each group gets the other group's SUM and MAX */
    {
        int in[2] = { lrank + 1, rank }, s[2] = { -1, -1 }, m[2] = { -1, -1 };
        MPI_Allreduce(in, s, 2, MPI_INT, MPI_SUM, inter);
        MPI_Allreduce(in, m, 2, MPI_INT, MPI_MAX, inter);
        for (sum = 0, max = -1, i = 0; i < rsize; i++) {
            sum += other_world[i];
            max = other_world[i] > max ? other_world[i] : max;
        }
        ok = s[0] == rsize * (rsize + 1) / 2 && s[1] == sum && m[0] == rsize && m[1] == max;
        CHECK(ok, "Allreduce: SUM %d %d MAX %d %d, expected %d %d, %d %d", s[0], s[1], m[0], m[1],
              rsize * (rsize + 1) / 2, sum, rsize, max);
        note(ok, "Allreduce SUM and MAX: each group gets the other group's reduction");
    }

    /* Allgather: A ranks send 1 int, B ranks 2; each gets the remote group's in its order */
    {
        int mine[2], *all = malloc(sizeof(int) * 2 * (size_t)size), scount = in_a ? 1 : 2, rcount = in_a ? 2 : 1;
        mine[0] = rank;
        mine[1] = 100 + lrank;
        for (i = 0; i < 2 * size; i++)
            all[i] = -1;
        MPI_Allgather(mine, scount, MPI_INT, all, rcount, MPI_INT, inter);
        ok = 1;
        for (i = 0; i < rsize; i++) {
            ok = ok && all[rcount * i] == other_world[i];
            if (rcount == 2)
                ok = ok && all[2 * i + 1] == 100 + i;
        }
        ok = ok && all[rcount * rsize] == -1;
        CHECK(ok, "Allgather");
        free(all);
        note(ok, "Allgather (A sends 1 int, B 2): the remote group's data in its rank order");
    }

    /* Alltoall: A sends 2 ints to each B rank, B 1 int to each A rank */
    {
        int scount = in_a ? 2 : 1, rcount = in_a ? 1 : 2;
        int *out = malloc(sizeof(int) * 2 * (size_t)size), *in = malloc(sizeof(int) * 2 * (size_t)size);
        for (k = 0; k < rsize; k++)
            for (i = 0; i < scount; i++)
                out[k * scount + i] = 1000 * rank + 10 * k + i;
        for (i = 0; i < 2 * size; i++)
            in[i] = -1;
        MPI_Alltoall(out, scount, MPI_INT, in, rcount, MPI_INT, inter);
        ok = 1;
        for (k = 0; k < rsize; k++)
            for (i = 0; i < rcount; i++)
                ok = ok && in[k * rcount + i] == 1000 * other_world[k] + 10 * lrank + i;
        ok = ok && in[rcount * rsize] == -1;
        CHECK(ok, "Alltoall");
        free(out);
        free(in);
        note(ok, "Alltoall (A sends 2 ints to each B rank, B 1 to each A rank): right");
    }

    /* Barrier: a group that sleeps 50 ms before it holds the other back. The waiting side reads the clock
     * before a world barrier the sleeping side leaves before it starts sleeping. */
    for (k = 0; k < 2; k++) {
        int sleeper = k == 0 ? in_a : !in_a;
        double t0 = MPI_Wtime(), waited;
        MPI_Barrier(MPI_COMM_WORLD);
        if (sleeper)
            sleep_ms(50);
        MPI_Barrier(inter);
        waited = MPI_Wtime() - t0;
        ok = sleeper || waited >= 0.040;
        CHECK(ok, "intercomm Barrier left after %.3f s, before the other group entered", waited);
        note(ok, "Barrier: group %s sleeps 50 ms before it, group %s stays in it >= 40 ms: right", k == 0 ? "A" : "B",
             k == 0 ? "B" : "A");
    }
    MPI_Barrier(inter);
    MPI_Barrier(dup);
    MPI_Barrier(inter2);
    flush_notes();
}

/* 5. Intercomm_merge */
static void merge_check(MPI_Comm ic, int high, int first_a, const char *what)
{
    MPI_Comm m;
    int s = -1, r = -1, expect, ok, flag = -1, sum = -1, i, *all = malloc(sizeof(int) * (size_t)size);
    CHECK_MPI(MPI_Intercomm_merge(ic, high, &m));
    MPI_Comm_size(m, &s);
    MPI_Comm_rank(m, &r);
    MPI_Comm_test_inter(m, &flag);
    MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, m);
    ok = s == size && flag == 0 && sum == size * (size - 1) / 2;
    CHECK(ok, "%s: size %d, test_inter %d, Allreduce of world ranks %d", what, s, flag, sum);
    if (first_a >= 0) {
        expect = first_a ? (in_a ? lrank : na + lrank) : (in_a ? nb + lrank : lrank);
        CHECK(r == expect, "%s: merged rank %d, expected %d", what, r, expect);
        ok = ok && r == expect;
        MPI_Allgather(&rank, 1, MPI_INT, all, 1, MPI_INT, m);
        for (i = 0; i < size; i++) {
            int w = first_a ? (i < na ? a_world[i] : b_world[i - na]) : (i < nb ? b_world[i] : a_world[i - nb]);
            if (all[i] != w) {
                CHECK(0, "%s: merged rank %d is world rank %d, expected %d", what, i, all[i], w);
                ok = 0;
            }
        }
        note(ok, "%s: size %d, %s's ranks first in local order, Allreduce/Allgather on it right", what, size,
             first_a ? "A" : "B");
    } else {
        note(ok, "%s: size %d, Allreduce on it right", what, size);
    }
    free(all);
    MPI_Comm_free(&m);
    CHECK(m == MPI_COMM_NULL, "Comm_free of the merged comm");
}

static void merge(void)
{
    merge_check(inter, in_a ? 0 : 1, 1, "Intercomm_merge, A high=0, B high=1");
    merge_check(inter, in_a ? 1 : 0, 0, "Intercomm_merge, A high=1, B high=0");
    merge_check(inter2, in_a ? 1 : 0, 0, "Intercomm_merge of the second intercomm, A high=1, B high=0");
    merge_check(dup, 1, -1, "Intercomm_merge of the dup, high=1 on both sides");
    flush_notes();
}

/* 6. Names and freeing */
static void names_and_free(void)
{
    char name[MPI_MAX_OBJECT_NAME], name2[MPI_MAX_OBJECT_NAME];
    int len = -1, len2 = -1, ok, v, sum = -1;
    MPI_Comm dup2;
    MPI_Status st;

    MPI_Comm_set_name(inter, "ferry-intercomm");
    MPI_Comm_get_name(inter, name, &len);
    MPI_Comm_get_name(inter2, name2, &len2);
    ok = strcmp(name, "ferry-intercomm") == 0 && len == 15 && strcmp(name2, "") == 0 && len2 == 0;
    CHECK(ok, "names: '%s' (%d), unnamed '%s' (%d)", name, len, name2, len2);
    note(ok, "Comm_set_name/get_name on the intercomm: '%s' (%d); the second intercomm unnamed: '%s' (%d);", name,
         len, name2, len2);
    MPI_Comm_dup(inter, &dup2);
    MPI_Comm_get_name(dup2, name2, &len2);
    MPI_Comm_set_name(dup, "ferry-dup");
    MPI_Comm_get_name(inter, name, &len);
    ok = strcmp(name2, "") == 0 && len2 == 0 && strcmp(name, "ferry-intercomm") == 0;
    CHECK(ok, "dup of a named intercomm: '%s' (%d); original now '%s'", name2, len2, name);
    note(ok, "a Comm_dup of the named intercomm is named '%s' (%d); naming the first dup leaves the original '%s';",
         name2, len2, name);

    /* free the original; its dups still work */
    MPI_Comm_free(&inter);
    ok = inter == MPI_COMM_NULL;
    v = -1;
    if (lrank == 0)
        MPI_Sendrecv(&rank, 1, MPI_INT, 0, 9, &v, 1, MPI_INT, 0, 9, dup, &st);
    if (lrank == 0)
        ok = ok && v == other_world[0] && st.MPI_SOURCE == 0;
    MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, dup2);
    {
        int other_sum = 0, i;
        for (i = 0; i < rsize; i++)
            other_sum += other_world[i];
        ok = ok && sum == other_sum;
    }
    CHECK(ok, "the dups after freeing the original: got %d, sum %d", v, sum);
    note(ok, "after Comm_free of the original: Sendrecv on a dup and Allreduce on another right");

    MPI_Comm_free(&dup);
    MPI_Comm_free(&dup2);
    MPI_Comm_free(&inter2);
    MPI_Comm_free(&local);
    ok = dup == MPI_COMM_NULL && dup2 == MPI_COMM_NULL && inter2 == MPI_COMM_NULL && local == MPI_COMM_NULL;
    CHECK(ok, "Comm_free leaves MPI_COMM_NULL");
    note(ok, "Comm_free of the dups, the second intercomm and the split comm: MPI_COMM_NULL");
    flush_notes();
}

int main(int argc, char **argv)
{
    chk_init(&argc, &argv, &rank, &size);
    chk_require_ranks(size, 2);
    chk_say("intercomm: started on %d ranks", size);
    create();
    point_to_point();
    contexts();
    uneven_contexts();
    collectives();
    merge();
    names_and_free();
    free(a_world);
    free(b_world);
    return chk_finish();
}
