/* ranks: 1-8 */
/*
 * MPI_Comm_idup (MPI 3.0) on intracommunicators. "Same as MPI_Comm_dup
 * executed at the time of the call", but nonblocking: a nonblocking
 * collective on the parent, with every rule of 5.12 (per communicator the
 * same order of collectives on all members; several outstanding; other
 * communicators' in any order).
 * 1. Basic: idup of the world and Wait (the request becomes
 *    MPI_REQUEST_NULL): Comm_compare CONGRUENT, same size and rank; a receive
 *    pending on the world across the idup; messages with the same source and
 *    tag on the world and the dup never mix.
 * 2. It does not block: even ranks start the idup and then Ssend/Recv with
 *    an odd partner, which receives and Ssends first and starts its idup
 *    after (with an odd rank count the last rank is a late one paired with
 *    rank 0); a ring Sendrecv before the Wait. A synchronizing idup deadlocks
 *    here.
 * 3. Four outstanding: idups of the world (twice), of a parity split and of
 *    a Comm_dup, started in a different order by even and odd ranks (each
 *    communicator's own in the same order everywhere), completed with one
 *    Waitall listing them in yet another order; each is congruent to its
 *    parent, and the 7 communicators never mix messages.
 * 4. Blocking creation while an idup of the world is outstanding: Comm_dup
 *    of the world, an idup of that dup, Comm_split of the world (3 colors,
 *    reversed keys), then the Waits: all right and separate.
 * 5. Nonblocking collectives on the same parent: idup + Ibarrier +
 *    Iallreduce waited in reverse order; Ibcast + idup + Iallreduce with an
 *    Iallreduce on the new communicator started before the Ibcast is waited.
 * 6. Attributes: a copy callback (called once, value + 1), MPI_COMM_DUP_FN
 *    (same pointer), MPI_COMM_NULL_COPY_FN (absent), and the values as they
 *    were at the call: a value replaced and a keyval set between the idup
 *    and its Wait do not reach the new communicator (a Comm_dup after does
 *    see them). Topology: idup of a 2-D Cartesian communicator (periods 1 0)
 *    keeps MPI_CART, dims, periods, coords and the shifts.
 * 7. Completion by Test: MPI_Test polled while ring Sendrecvs and an
 *    Allreduce run on the parent every round until every rank saw it done.
 * 8. 50 idup + Comm_free rounds on the parity split (every fifth round two
 *    outstanding, freed in the other order), then two more kept and checked
 *    for separation from the split and the world.
 * 9. idup of MPI_COMM_SELF (together with an idup of the world, started in
 *    a different order by even and odd ranks): CONGRUENT to MPI_COMM_SELF,
 *    separate from it.
 * 10. The cyclic case of 5.12: a communicator per pair of ring neighbours
 *    (Comm_create); every rank starts the idup of its pair with the right
 *    neighbour, then that of its pair with the left one. Blocking, this
 *    would be a cycle of waits; both complete, separate.
 * 11. Intercommunicators (2 or more ranks: the low half and the high half of
 *    the world; the low group holding 40 idups of its own, so the groups'
 *    unused contexts differ): the low group starts the idup and then Ssends to remote
 *    rank 0, whose group receives first and starts its idup after (a
 *    synchronizing idup deadlocks); an idup of the world outstanding beside
 *    it, started before it by the low group and after it by the high one;
 *    the new intercommunicator: inter, same remote size, CONGRUENT, its
 *    local group's communicator right (Comm_group sizes, an Allreduce of the
 *    other group's ranks), messages of the same tag on the old and the new
 *    one never mixed; then 20 idup + free rounds of it.
 *
 * Only rank 0 prints: one line per section (two for 6), with how many ranks
 * passed (one Allreduce per line).
 */
#include "check.h"

static int rank, size;

/* Whether c is a congruent copy of parent (Comm_compare, size, rank, not an intercommunicator). */
static int same_as(MPI_Comm c, MPI_Comm parent, const char *what)
{
    int cmp = -1, s = -1, r = -1, ps = -1, pr = -1, inter = -1, ok;
    if (c == MPI_COMM_NULL || c == parent) {
        CHECK(0, "%s: the new communicator is %s", what, c == MPI_COMM_NULL ? "MPI_COMM_NULL" : "the parent's handle");
        return 0;
    }
    MPI_Comm_compare(parent, c, &cmp);
    MPI_Comm_size(c, &s);
    MPI_Comm_rank(c, &r);
    MPI_Comm_size(parent, &ps);
    MPI_Comm_rank(parent, &pr);
    MPI_Comm_test_inter(c, &inter);
    ok = cmp == MPI_CONGRUENT && s == ps && r == pr && inter == 0;
    CHECK(ok, "%s: compare %d (CONGRUENT is %d), size %d/%d, rank %d/%d, test_inter %d", what, cmp, MPI_CONGRUENT, s,
          ps, r, pr, inter);
    return ok;
}

/* Whether an Allreduce SUM of the world ranks over c gives the sum over parent. */
static int works(MPI_Comm c, MPI_Comm parent, const char *what)
{
    int a = -1, b = -1;
    MPI_Allreduce(&rank, &a, 1, MPI_INT, MPI_SUM, c);
    MPI_Allreduce(&rank, &b, 1, MPI_INT, MPI_SUM, parent);
    CHECK(a == b, "%s: Allreduce over it %d, over the parent %d", what, a, b);
    return a == b;
}

#define MAXC 8

static MPI_Status ignored[MAXC]; /* rather than MPI_STATUSES_IGNORE: gcc's -Wstringop-overflow */

/* Messages with the same source and tag on the n communicators never mix. On each communicator every rank
 * sends one int (1000 * the communicator's id + its rank) to its right neighbour and receives one with
 * MPI_ANY_SOURCE. ids[k] names comms[k] the same on all its members (NULL: the index in the list, when the
 * list is the same on every rank). Round 0 (tag) posts the receives first in list order and sends in reverse
 * order; round 1 (tag + 1) sends first and receives in reverse list order, from the unexpected messages. */
static int separate_ids(const MPI_Comm *comms, const int *ids, int n, int tag, const char *what)
{
    MPI_Request rr[MAXC], sr[MAXC];
    MPI_Status st[MAXC];
    int in[MAXC], out[MAXC], left[MAXC], right[MAXC], id[MAXC], ok = 1, k, round;
    for (k = 0; k < n; k++) {
        int r, s;
        MPI_Comm_rank(comms[k], &r);
        MPI_Comm_size(comms[k], &s);
        right[k] = (r + 1) % s;
        left[k] = (r + s - 1) % s;
        id[k] = ids ? ids[k] : k;
        out[k] = 1000 * id[k] + r;
    }
    for (round = 0; round < 2; round++) {
        for (k = 0; k < n; k++)
            in[k] = -1;
        if (round == 0) {
            for (k = 0; k < n; k++)
                MPI_Irecv(&in[k], 1, MPI_INT, MPI_ANY_SOURCE, tag, comms[k], &rr[k]);
            for (k = n - 1; k >= 0; k--)
                MPI_Isend(&out[k], 1, MPI_INT, right[k], tag, comms[k], &sr[k]);
            MPI_Waitall(n, rr, st);
        } else {
            for (k = n - 1; k >= 0; k--)
                MPI_Isend(&out[k], 1, MPI_INT, right[k], tag + 1, comms[k], &sr[k]);
            for (k = n - 1; k >= 0; k--)
                MPI_Recv(&in[k], 1, MPI_INT, MPI_ANY_SOURCE, tag + 1, comms[k], &st[k]);
        }
        MPI_Waitall(n, sr, ignored);
        for (k = 0; k < n; k++)
            if (!(in[k] == 1000 * id[k] + left[k] && st[k].MPI_SOURCE == left[k] && st[k].MPI_TAG == tag + round)) {
                CHECK(0, "%s, round %d: communicator %d got %d from %d tag %d, expected %d from %d tag %d", what, round,
                      k, in[k], st[k].MPI_SOURCE, st[k].MPI_TAG, 1000 * id[k] + left[k], left[k], tag + round);
                ok = 0;
            }
    }
    return ok;
}

static int separate(const MPI_Comm *comms, int n, int tag, const char *what)
{
    return separate_ids(comms, NULL, n, tag, what);
}

/* 1. */
static void basic(void)
{
    MPI_Comm d = MPI_COMM_NULL, comms[2];
    MPI_Request req = MPI_REQUEST_NULL, rr[2], sr[2];
    MPI_Status st[2];
    int ok = 1, early = -1, in_dup = -1, out[2], right = (rank + 1) % size, left = (rank + size - 1) % size;

    /* a receive pending on the world across the idup */
    MPI_Irecv(&early, 1, MPI_INT, MPI_ANY_SOURCE, 10, MPI_COMM_WORLD, &rr[0]);
    CHECK_MPI(MPI_Comm_idup(MPI_COMM_WORLD, &d, &req));
    CHECK(req != MPI_REQUEST_NULL, "Comm_idup returned MPI_REQUEST_NULL");
    CHECK_MPI(MPI_Wait(&req, MPI_STATUS_IGNORE));
    if (req != MPI_REQUEST_NULL) {
        CHECK(0, "the request after Wait is not MPI_REQUEST_NULL");
        ok = 0;
    }
    ok = same_as(d, MPI_COMM_WORLD, "idup of the world") && ok;

    /* same source and tag on both: the dup's message is sent first, the world's receive was posted first */
    MPI_Irecv(&in_dup, 1, MPI_INT, MPI_ANY_SOURCE, 10, d, &rr[1]);
    out[0] = 2000 + rank;
    out[1] = 1000 + rank;
    MPI_Isend(&out[0], 1, MPI_INT, right, 10, d, &sr[0]);
    MPI_Isend(&out[1], 1, MPI_INT, right, 10, MPI_COMM_WORLD, &sr[1]);
    MPI_Waitall(2, rr, st);
    MPI_Waitall(2, sr, ignored);
    if (!(early == 1000 + left && st[0].MPI_SOURCE == left && in_dup == 2000 + left && st[1].MPI_SOURCE == left)) {
        CHECK(0, "world receive got %d from %d, dup receive %d from %d", early, st[0].MPI_SOURCE, in_dup,
              st[1].MPI_SOURCE);
        ok = 0;
    }
    comms[0] = MPI_COMM_WORLD;
    comms[1] = d;
    ok = separate(comms, 2, 11, "world and its idup") && ok;
    ok = works(d, MPI_COMM_WORLD, "idup of the world") && ok;
    MPI_Comm_free(&d);
    ok = ok && d == MPI_COMM_NULL;
    chk_report(ok, "1. Comm_idup(world) + Wait: request MPI_REQUEST_NULL, MPI_CONGRUENT, same size and rank, a receive "
               "pending on the world across it, messages on the two never mix");
}

/* 2. */
static void overlap(void)
{
    int late = rank % 2 == 1 || (size % 2 == 1 && size > 1 && rank == size - 1);
    int partners[2], np = 0, i, ok = 1, token, got = -1, right = (rank + 1) % size, left = (rank + size - 1) % size;
    MPI_Comm d = MPI_COMM_NULL;
    MPI_Request req = MPI_REQUEST_NULL;
    MPI_Status st;

    if (late) {
        partners[np++] = rank % 2 == 1 ? rank - 1 : 0;
    } else {
        if (rank + 1 < size)
            partners[np++] = rank + 1;
        if (rank == 0 && size % 2 == 1 && size > 1)
            partners[np++] = size - 1;
    }
    if (!late) {
        /* idup first: the partner enters its idup only after these two messages */
        CHECK_MPI(MPI_Comm_idup(MPI_COMM_WORLD, &d, &req));
        for (i = 0; i < np; i++) {
            token = 100 * rank + partners[i];
            MPI_Ssend(&token, 1, MPI_INT, partners[i], 20, MPI_COMM_WORLD);
            MPI_Recv(&got, 1, MPI_INT, partners[i], 21, MPI_COMM_WORLD, &st);
            if (got != 100 * partners[i] + rank) {
                CHECK(0, "from partner %d got %d", partners[i], got);
                ok = 0;
            }
        }
    } else {
        MPI_Recv(&got, 1, MPI_INT, partners[0], 20, MPI_COMM_WORLD, &st);
        if (got != 100 * partners[0] + rank) {
            CHECK(0, "from partner %d got %d", partners[0], got);
            ok = 0;
        }
        token = 100 * rank + partners[0];
        MPI_Ssend(&token, 1, MPI_INT, partners[0], 21, MPI_COMM_WORLD);
        CHECK_MPI(MPI_Comm_idup(MPI_COMM_WORLD, &d, &req));
    }
    /* every rank's idup pending: a ring exchange on the parent */
    got = -1;
    MPI_Sendrecv(&rank, 1, MPI_INT, right, 22, &got, 1, MPI_INT, left, 22, MPI_COMM_WORLD, &st);
    if (got != left) {
        CHECK(0, "ring Sendrecv while the idup is pending: got %d, expected %d", got, left);
        ok = 0;
    }
    CHECK_MPI(MPI_Wait(&req, MPI_STATUS_IGNORE));
    ok = same_as(d, MPI_COMM_WORLD, "idup overlapped with Ssend") && ok;
    ok = works(d, MPI_COMM_WORLD, "idup overlapped with Ssend") && ok;
    MPI_Comm_free(&d);
    chk_report(ok, "2. idup does not block: even ranks idup then Ssend/Recv, odd ranks Recv/Ssend then idup, a ring "
               "Sendrecv before the Wait; the dup congruent and working");
}

/* 3. */
static void several(void)
{
    MPI_Comm split, dup, a1 = MPI_COMM_NULL, a2 = MPI_COMM_NULL, b = MPI_COMM_NULL, c = MPI_COMM_NULL, comms[7];
    MPI_Request req[4], w[4];
    int ok = 1, cmp = -1;

    MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &split);
    MPI_Comm_dup(MPI_COMM_WORLD, &dup);
    /* per communicator the same order everywhere (world: a1 then a2); across communicators not */
    if (rank % 2 == 0) {
        CHECK_MPI(MPI_Comm_idup(MPI_COMM_WORLD, &a1, &req[0]));
        CHECK_MPI(MPI_Comm_idup(split, &b, &req[2]));
        CHECK_MPI(MPI_Comm_idup(dup, &c, &req[3]));
        CHECK_MPI(MPI_Comm_idup(MPI_COMM_WORLD, &a2, &req[1]));
    } else {
        CHECK_MPI(MPI_Comm_idup(dup, &c, &req[3]));
        CHECK_MPI(MPI_Comm_idup(MPI_COMM_WORLD, &a1, &req[0]));
        CHECK_MPI(MPI_Comm_idup(MPI_COMM_WORLD, &a2, &req[1]));
        CHECK_MPI(MPI_Comm_idup(split, &b, &req[2]));
    }
    w[0] = req[3];
    w[1] = req[1];
    w[2] = req[2];
    w[3] = req[0];
    CHECK_MPI(MPI_Waitall(4, w, ignored));
    CHECK(w[0] == MPI_REQUEST_NULL && w[1] == MPI_REQUEST_NULL && w[2] == MPI_REQUEST_NULL && w[3] == MPI_REQUEST_NULL,
          "requests after Waitall");
    ok = same_as(a1, MPI_COMM_WORLD, "first idup of the world") && ok;
    ok = same_as(a2, MPI_COMM_WORLD, "second idup of the world") && ok;
    ok = same_as(b, split, "idup of the split") && ok;
    ok = same_as(c, dup, "idup of the dup") && ok;
    MPI_Comm_compare(a1, a2, &cmp);
    if (cmp != MPI_CONGRUENT) {
        CHECK(0, "the two idups of the world compare %d", cmp);
        ok = 0;
    }
    ok = works(b, split, "idup of the split") && works(a2, MPI_COMM_WORLD, "second idup of the world") && ok;
    comms[0] = MPI_COMM_WORLD;
    comms[1] = split;
    comms[2] = dup;
    comms[3] = a1;
    comms[4] = a2;
    comms[5] = b;
    comms[6] = c;
    ok = separate(comms, 7, 30, "section 3") && ok;
    MPI_Comm_free(&a1);
    MPI_Comm_free(&c);
    MPI_Comm_free(&b);
    MPI_Comm_free(&a2);
    MPI_Comm_free(&dup);
    MPI_Comm_free(&split);
    chk_report(ok, "3. 4 idups outstanding (world twice, parity split, a dup) started in different orders by even and odd "
               "ranks, one Waitall in another order: each congruent to its parent, 7 communicators separate");
}

/* 4. */
static void with_blocking(void)
{
    MPI_Comm a = MPI_COMM_NULL, d = MPI_COMM_NULL, a2 = MPI_COMM_NULL, s = MPI_COMM_NULL, comms[5];
    MPI_Request req[2];
    int ok = 1, ss = -1, sr = -1, expect_size = 0, expect_rank = 0, r;

    CHECK_MPI(MPI_Comm_idup(MPI_COMM_WORLD, &a, &req[1]));
    CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &d));
    CHECK_MPI(MPI_Comm_idup(d, &a2, &req[0]));
    CHECK_MPI(MPI_Comm_split(MPI_COMM_WORLD, rank % 3, size - rank, &s));
    CHECK_MPI(MPI_Waitall(2, req, ignored));
    ok = same_as(a, MPI_COMM_WORLD, "idup of the world around a Comm_dup and a Comm_split") && ok;
    ok = same_as(d, MPI_COMM_WORLD, "Comm_dup while an idup is outstanding") && ok;
    ok = same_as(a2, d, "idup of that dup") && ok;
    for (r = 0; r < size; r++)
        if (r % 3 == rank % 3) {
            expect_size++;
            expect_rank += r > rank;
        }
    MPI_Comm_size(s, &ss);
    MPI_Comm_rank(s, &sr);
    if (!(ss == expect_size && sr == expect_rank)) {
        CHECK(0, "Comm_split while an idup is outstanding: size %d rank %d, expected %d %d", ss, sr, expect_size,
              expect_rank);
        ok = 0;
    }
    ok = works(a, MPI_COMM_WORLD, "idup around blocking creation") && works(a2, d, "idup of the dup") && ok;
    comms[0] = MPI_COMM_WORLD;
    comms[1] = a;
    comms[2] = d;
    comms[3] = a2;
    comms[4] = s;
    ok = separate(comms, 5, 40, "section 4") && ok;
    MPI_Comm_free(&s);
    MPI_Comm_free(&a2);
    MPI_Comm_free(&d);
    MPI_Comm_free(&a);
    chk_report(ok, "4. idup(world) outstanding across a blocking Comm_dup(world), an idup of that dup and a "
               "Comm_split(world): all right, 5 communicators separate");
}

/* 5. */
static void with_nbc(void)
{
    MPI_Comm a = MPI_COMM_NULL, a2 = MPI_COMM_NULL, comms[3];
    MPI_Request req[3];
    int ok = 1, sum = -1, mx = -1, b = -1, sum2 = -1;

    CHECK_MPI(MPI_Comm_idup(MPI_COMM_WORLD, &a, &req[0]));
    MPI_Ibarrier(MPI_COMM_WORLD, &req[1]);
    MPI_Iallreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &req[2]);
    MPI_Wait(&req[2], MPI_STATUS_IGNORE);
    MPI_Wait(&req[1], MPI_STATUS_IGNORE);
    MPI_Wait(&req[0], MPI_STATUS_IGNORE);
    if (sum != size * (size - 1) / 2) {
        CHECK(0, "Iallreduce beside an idup: %d", sum);
        ok = 0;
    }
    ok = same_as(a, MPI_COMM_WORLD, "idup beside Ibarrier/Iallreduce") && ok;

    /* the other way round: the idup between two, a collective on the new communicator before the first's Wait */
    if (rank == size - 1)
        b = 4242;
    MPI_Ibcast(&b, 1, MPI_INT, size - 1, MPI_COMM_WORLD, &req[0]);
    CHECK_MPI(MPI_Comm_idup(MPI_COMM_WORLD, &a2, &req[1]));
    MPI_Iallreduce(&rank, &mx, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &req[2]);
    MPI_Wait(&req[2], MPI_STATUS_IGNORE);
    MPI_Wait(&req[1], MPI_STATUS_IGNORE);
    MPI_Iallreduce(&rank, &sum2, 1, MPI_INT, MPI_SUM, a2, &req[1]);
    MPI_Waitall(2, req, ignored);
    if (!(b == 4242 && mx == size - 1 && sum2 == size * (size - 1) / 2)) {
        CHECK(0, "Ibcast %d, Iallreduce MAX %d, Iallreduce on the new communicator %d", b, mx, sum2);
        ok = 0;
    }
    ok = same_as(a2, MPI_COMM_WORLD, "idup between Ibcast and Iallreduce") && ok;
    comms[0] = MPI_COMM_WORLD;
    comms[1] = a;
    comms[2] = a2;
    ok = separate(comms, 3, 50, "section 5") && ok;
    MPI_Comm_free(&a);
    MPI_Comm_free(&a2);
    chk_report(ok, "5. idup + Ibarrier + Iallreduce on the world waited in reverse order; Ibcast + idup + Iallreduce, an "
               "Iallreduce on the new communicator before the Ibcast's Wait: values right, separate");
}

/* 6. */
static int copies, deletes;
static int copied[8], ncopied;

/* copies a pointer to an int as a pointer to a new int one larger */
static int copy_plus_one(MPI_Comm old, int keyval, void *extra, void *in, void *out, int *flag)
{
    int *v = &copied[ncopied++ % 8];
    (void)old, (void)keyval, (void)extra;
    *v = *(int *)in + 1;
    *(void **)out = v;
    *flag = 1;
    copies++;
    return MPI_SUCCESS;
}

/* values are static: nothing to free */
static int delete_counted(MPI_Comm comm, int keyval, void *value, void *extra)
{
    (void)comm, (void)keyval, (void)value, (void)extra;
    deletes++;
    return MPI_SUCCESS;
}

static void attributes(void)
{
    MPI_Comm base, n = MPI_COMM_NULL, bd, bd2;
    MPI_Request req;
    int kv_copy, kv_null, kv_dup, kv_late, flag, ok = 1, copies0, plain = 5, va = 10 + rank, vb = 20 + rank;
    int f_copy = -1, f_null = -1, f_dup = -1, f_late = -1, v_copy = -1, same_ptr = 0;
    void *v;

    MPI_Comm_create_keyval(copy_plus_one, delete_counted, &kv_copy, NULL);
    MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, MPI_COMM_NULL_DELETE_FN, &kv_null, NULL);
    MPI_Comm_create_keyval(MPI_COMM_DUP_FN, MPI_COMM_NULL_DELETE_FN, &kv_dup, NULL);
    MPI_Comm_create_keyval(MPI_COMM_DUP_FN, MPI_COMM_NULL_DELETE_FN, &kv_late, NULL);
    MPI_Comm_dup(MPI_COMM_WORLD, &base);
    MPI_Comm_set_attr(base, kv_copy, &va);
    MPI_Comm_set_attr(base, kv_null, &plain);
    MPI_Comm_set_attr(base, kv_dup, &plain);
    MPI_Comm_dup(base, &bd); /* the blocking dup, for comparison */
    copies0 = copies;

    CHECK_MPI(MPI_Comm_idup(base, &n, &req));
    /* changed after the call: not for the new communicator ("as if Comm_dup was executed at the time") */
    MPI_Comm_set_attr(base, kv_copy, &vb);
    MPI_Comm_set_attr(base, kv_late, &plain);
    CHECK_MPI(MPI_Wait(&req, MPI_STATUS_IGNORE));

    if (copies - copies0 != 1) {
        CHECK(0, "the copy callback was called %d times for one idup", copies - copies0);
        ok = 0;
    }
    MPI_Comm_get_attr(n, kv_copy, &v, &f_copy);
    if (f_copy)
        v_copy = *(int *)v;
    MPI_Comm_get_attr(n, kv_null, &v, &f_null);
    MPI_Comm_get_attr(n, kv_dup, &v, &f_dup);
    same_ptr = f_dup && v == (void *)&plain;
    MPI_Comm_get_attr(n, kv_late, &v, &f_late);
    if (!(f_copy && v_copy == 11 + rank && !f_null && same_ptr && !f_late)) {
        CHECK(0, "idup: copy callback value %s %d (expected 11 + rank), MPI_COMM_NULL_COPY_FN value %s, "
                 "MPI_COMM_DUP_FN value %s (same pointer %d), a keyval set after the call %s",
              f_copy ? "present" : "absent", v_copy - rank, f_null ? "present" : "absent", f_dup ? "present" : "absent",
              same_ptr, f_late ? "present" : "absent");
        ok = 0;
    }
    /* the same as the blocking dup made before the changes */
    MPI_Comm_get_attr(bd, kv_copy, &v, &flag);
    if (!(flag && *(int *)v == v_copy)) {
        CHECK(0, "Comm_dup before the changes: copy callback value %d, idup's %d", flag ? *(int *)v : -1, v_copy);
        ok = 0;
    }
    MPI_Comm_get_attr(bd, kv_null, &v, &flag);
    if (flag != f_null) {
        CHECK(0, "Comm_dup: MPI_COMM_NULL_COPY_FN value %d, idup's %d", flag, f_null);
        ok = 0;
    }
    /* a Comm_dup after the changes sees them */
    MPI_Comm_dup(base, &bd2);
    MPI_Comm_get_attr(bd2, kv_copy, &v, &flag);
    if (!(flag && *(int *)v == 21 + rank)) {
        CHECK(0, "Comm_dup after the changes: copy callback value %d", flag ? *(int *)v - rank : -1);
        ok = 0;
    }
    MPI_Comm_get_attr(bd2, kv_late, &v, &flag);
    if (!flag) {
        CHECK(0, "Comm_dup after the changes: the late keyval's value absent");
        ok = 0;
    }
    ok = works(n, base, "idup with attributes") && ok;
    deletes = 0;
    MPI_Comm_free(&n);
    if (deletes != 1) {
        CHECK(0, "Comm_free of the idup: %d delete callback calls", deletes);
        ok = 0;
    }
    MPI_Comm_free(&bd2);
    MPI_Comm_free(&bd);
    MPI_Comm_free(&base);
    MPI_Comm_free_keyval(&kv_copy);
    MPI_Comm_free_keyval(&kv_null);
    MPI_Comm_free_keyval(&kv_dup);
    MPI_Comm_free_keyval(&kv_late);
    chk_report(ok, "6. attributes: copy callback called once (value + 1), MPI_COMM_DUP_FN the same pointer, "
               "MPI_COMM_NULL_COPY_FN none, values as at the call (a change before the Wait not copied), as Comm_dup");
}

static void topology(void)
{
    MPI_Comm cart, cc = MPI_COMM_NULL;
    MPI_Request req;
    int dims[2] = { 0, 0 }, periods[2] = { 1, 0 }, d1[2], p1[2], c1[2], d2[2] = { -1, -1 }, p2[2] = { -1, -1 },
        c2[2] = { -1, -1 };
    int ok = 1, status = -1, nd = -1, k, src1, dst1, src2, dst2, got = -1;

    MPI_Dims_create(size, 2, dims);
    MPI_Cart_create(MPI_COMM_WORLD, 2, dims, periods, 0, &cart);
    CHECK_MPI(MPI_Comm_idup(cart, &cc, &req));
    CHECK_MPI(MPI_Wait(&req, MPI_STATUS_IGNORE));
    ok = same_as(cc, cart, "idup of a Cartesian communicator") && ok;
    MPI_Topo_test(cc, &status);
    MPI_Cartdim_get(cc, &nd);
    if (status != MPI_CART || nd != 2) {
        CHECK(0, "idup of a Cartesian communicator: Topo_test %d (MPI_CART %d), Cartdim_get %d", status, MPI_CART, nd);
        ok = 0;
    } else {
        MPI_Cart_get(cart, 2, d1, p1, c1);
        MPI_Cart_get(cc, 2, d2, p2, c2);
        for (k = 0; k < 2; k++)
            if (d1[k] != d2[k] || p1[k] != p2[k] || c1[k] != c2[k]) {
                CHECK(0, "Cart_get dimension %d: dims %d/%d periods %d/%d coords %d/%d", k, d2[k], d1[k], p2[k],
                      p1[k], c2[k], c1[k]);
                ok = 0;
            }
        for (k = 0; k < 2; k++) {
            MPI_Cart_shift(cart, k, 1, &src1, &dst1);
            MPI_Cart_shift(cc, k, 1, &src2, &dst2);
            if (src1 != src2 || dst1 != dst2) {
                CHECK(0, "Cart_shift dimension %d: %d %d, the original's %d %d", k, src2, dst2, src1, dst1);
                ok = 0;
            }
        }
        /* along the periodic dimension on the copy: reorder 0, so grid ranks are world ranks */
        MPI_Cart_shift(cc, 0, 1, &src2, &dst2);
        MPI_Sendrecv(&rank, 1, MPI_INT, dst2, 60, &got, 1, MPI_INT, src2, 60, cc, MPI_STATUS_IGNORE);
        if (got != src2) {
            CHECK(0, "shift along dimension 0 on the copy: got %d from %d", got, src2);
            ok = 0;
        }
    }
    MPI_Comm_free(&cc);
    MPI_Comm_free(&cart);
    chk_report(ok, "6. idup of a 2-D Cartesian communicator (Dims_create, periods 1 0): MPI_CART, same dims, periods, "
               "coords and shifts, a shift exchange on it");
}

/* 7. */
static void test_loop(void)
{
    MPI_Comm t = MPI_COMM_NULL;
    MPI_Request req;
    int ok = 1, done = 0, all = 0, rounds = 0, out, got, right = (rank + 1) % size, left = (rank + size - 1) % size;

    CHECK_MPI(MPI_Comm_idup(MPI_COMM_WORLD, &t, &req));
    while (!all) {
        if (!done)
            MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        out = rounds * size + rank;
        got = -1;
        MPI_Sendrecv(&out, 1, MPI_INT, right, 70, &got, 1, MPI_INT, left, 70, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (got != rounds * size + left) {
            CHECK(0, "round %d of the Test loop: got %d", rounds, got);
            ok = 0;
        }
        /* the same number of rounds on every rank: until each one saw its idup done */
        MPI_Allreduce(&done, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        if (++rounds == 1000000) {
            CHECK(0, "the idup not done after %d rounds of MPI_Test", rounds);
            ok = 0;
            break;
        }
    }
    if (!done)
        MPI_Wait(&req, MPI_STATUS_IGNORE);
    if (req != MPI_REQUEST_NULL) {
        CHECK(0, "the request after Test gave flag 1 is not MPI_REQUEST_NULL");
        ok = 0;
    }
    ok = same_as(t, MPI_COMM_WORLD, "idup completed by Test") && ok;
    ok = works(t, MPI_COMM_WORLD, "idup completed by Test") && ok;
    MPI_Comm_free(&t);
    chk_report(ok, "7. MPI_Test polled with a ring Sendrecv and an Allreduce on the world each round until done: "
               "MPI_REQUEST_NULL, congruent, working");
}

/* 8. */
#define ROUNDS 50

static void repeat(void)
{
    MPI_Comm split, x, y, comms[4];
    MPI_Request req[2];
    int ok = 1, i, outstanding2 = 0;

    MPI_Comm_split(MPI_COMM_WORLD, rank % 2, size - rank, &split);
    for (i = 0; i < ROUNDS; i++) {
        x = y = MPI_COMM_NULL;
        if (i % 5 == 4) {
            CHECK_MPI(MPI_Comm_idup(split, &x, &req[0]));
            CHECK_MPI(MPI_Comm_idup(split, &y, &req[1]));
            MPI_Waitall(2, req, ignored);
            if (!same_as(x, split, "round's first idup") || !same_as(y, split, "round's second idup") ||
                !works(y, split, "round's second idup")) {
                CHECK(0, "round %d", i);
                ok = 0;
            }
            MPI_Comm_free(&y);
            MPI_Comm_free(&x);
            outstanding2++;
        } else {
            CHECK_MPI(MPI_Comm_idup(split, &x, &req[0]));
            MPI_Wait(&req[0], MPI_STATUS_IGNORE);
            if (!same_as(x, split, "round's idup") || (i % 2 == 1 && !works(x, split, "round's idup"))) {
                CHECK(0, "round %d", i);
                ok = 0;
            }
            MPI_Comm_free(&x);
        }
        if (x != MPI_COMM_NULL || y != MPI_COMM_NULL) {
            CHECK(0, "round %d: Comm_free did not set MPI_COMM_NULL", i);
            ok = 0;
        }
    }
    CHECK_MPI(MPI_Comm_idup(split, &x, &req[0]));
    CHECK_MPI(MPI_Comm_idup(split, &y, &req[1]));
    MPI_Waitall(2, req, ignored);
    ok = same_as(x, split, "idup after the rounds") && same_as(y, split, "second idup after the rounds") && ok;
    comms[0] = MPI_COMM_WORLD;
    comms[1] = split;
    comms[2] = x;
    comms[3] = y;
    ok = separate(comms, 4, 80, "section 8") && ok;
    MPI_Comm_free(&x);
    MPI_Comm_free(&y);
    MPI_Comm_free(&split);
    chk_report(ok, "8. %d rounds of idup + Comm_free on the parity split (%d with two outstanding), then two more: "
               "congruent, separate from the split and the world",
           ROUNDS, outstanding2);
}

/* 9. */
static void self(void)
{
    MPI_Comm s = MPI_COMM_NULL, w = MPI_COMM_NULL, comms[4];
    MPI_Request req[2];
    int ok = 1, ss = -1, sr = -1;

    if (rank % 2 == 0) {
        CHECK_MPI(MPI_Comm_idup(MPI_COMM_SELF, &s, &req[0]));
        CHECK_MPI(MPI_Comm_idup(MPI_COMM_WORLD, &w, &req[1]));
    } else {
        CHECK_MPI(MPI_Comm_idup(MPI_COMM_WORLD, &w, &req[1]));
        CHECK_MPI(MPI_Comm_idup(MPI_COMM_SELF, &s, &req[0]));
    }
    MPI_Wait(&req[0], MPI_STATUS_IGNORE);
    ok = same_as(s, MPI_COMM_SELF, "idup of MPI_COMM_SELF") && ok;
    MPI_Comm_size(s, &ss);
    MPI_Comm_rank(s, &sr);
    if (ss != 1 || sr != 0) {
        CHECK(0, "idup of MPI_COMM_SELF: size %d rank %d", ss, sr);
        ok = 0;
    }
    MPI_Wait(&req[1], MPI_STATUS_IGNORE);
    ok = same_as(w, MPI_COMM_WORLD, "idup of the world beside that of self") && ok;
    comms[0] = MPI_COMM_SELF;
    comms[1] = s;
    comms[2] = MPI_COMM_WORLD;
    comms[3] = w;
    ok = separate(comms, 4, 90, "section 9") && ok;
    MPI_Comm_free(&s);
    MPI_Comm_free(&w);
    chk_report(ok, "9. idup of MPI_COMM_SELF beside an idup of the world: CONGRUENT to MPI_COMM_SELF, size 1, rank 0, "
               "separate from it and the world");
}

/* 10. */
static void cycle(void)
{
    MPI_Comm right = MPI_COMM_NULL, left = MPI_COMM_NULL, pc, nr = MPI_COMM_NULL, nl = MPI_COMM_NULL, comms[4];
    MPI_Group wg, g;
    MPI_Request req[2];
    int ok = 1, i, n, members[2], ids[4];

    /* pair i = { i, i + 1 } (rank i's right pair, rank i + 1's left pair); one rank: a single pair of rank 0 */
    MPI_Comm_group(MPI_COMM_WORLD, &wg);
    for (i = 0; i < size; i++) {
        members[0] = i;
        members[1] = (i + 1) % size;
        MPI_Group_incl(wg, size > 1 ? 2 : 1, members, &g);
        CHECK_MPI(MPI_Comm_create(MPI_COMM_WORLD, g, &pc));
        MPI_Group_free(&g);
        if (rank == i)
            right = pc;
        if (rank == (i + 1) % size)
            left = pc;
    }
    MPI_Group_free(&wg);
    /* every rank: its right pair first. Pair i is started first by rank i, second by rank i + 1 */
    CHECK_MPI(MPI_Comm_idup(right, &nr, &req[0]));
    CHECK_MPI(MPI_Comm_idup(left, &nl, &req[1]));
    MPI_Waitall(2, req, ignored);
    ok = same_as(nr, right, "idup of the pair with the right neighbour") && ok;
    ok = same_as(nl, left, "idup of the pair with the left neighbour") && ok;
    /* ids the same on both members: pair i is i, its idup size + i (one rank: the second idup 2) */
    n = 0;
    ids[n] = rank;
    comms[n++] = right;
    if (left != right) {
        ids[n] = (rank + size - 1) % size;
        comms[n++] = left;
    }
    ids[n] = size + rank;
    comms[n++] = nr;
    ids[n] = size > 1 ? size + (rank + size - 1) % size : 2;
    comms[n++] = nl;
    ok = separate_ids(comms, ids, n, 100, "section 10") && ok;
    MPI_Comm_free(&nr);
    MPI_Comm_free(&nl);
    if (left != right)
        MPI_Comm_free(&left);
    MPI_Comm_free(&right);
    chk_report(ok, "10. a communicator per pair of ring neighbours, every rank idups its right pair then its left pair "
               "(a cycle if blocking): both congruent, separate");
}

/* 11. */
static void intercomm(void)
{
    int ok = 1;
    if (size < 2) {
        chk_report(ok, "11. intercommunicator idup: not blocking, beside an idup of the world, congruent, separate, "
                       "20 rounds");
        return;
    }
    int half = size / 2, low = rank < half, lrank, rsize, rsize2, inter = 0, cmp = -1, i;
    MPI_Comm local, ic, ic2, w;
    MPI_Request req[2];
    MPI_Comm_split(MPI_COMM_WORLD, low, rank, &local);
    MPI_Intercomm_create(local, 0, MPI_COMM_WORLD, low ? half : 0, 11, &ic);
    MPI_Comm_rank(local, &lrank);
    MPI_Comm_remote_size(ic, &rsize);
    /* the low group holds 40 idups of its own: the groups' unused contexts differ */
    MPI_Comm held[40];
    for (i = 0; low && i < 40; i++) {
        CHECK_MPI(MPI_Comm_idup(local, &held[i], &req[0]));
        MPI_Wait(&req[0], MPI_STATUS_IGNORE);
    }
    int token = 1100 + rank, got = -1;
    if (low) {
        CHECK_MPI(MPI_Comm_idup(MPI_COMM_WORLD, &w, &req[1]));
        CHECK_MPI(MPI_Comm_idup(ic, &ic2, &req[0]));
        if (lrank == 0)
            MPI_Ssend(&token, 1, MPI_INT, 0, 5, ic);
    } else {
        if (lrank == 0)
            MPI_Recv(&got, 1, MPI_INT, 0, 5, ic, MPI_STATUS_IGNORE);
        CHECK_MPI(MPI_Comm_idup(ic, &ic2, &req[0]));
        CHECK_MPI(MPI_Comm_idup(MPI_COMM_WORLD, &w, &req[1]));
        if (lrank == 0 && got != 1100) {
            CHECK(0, "section 11: got %d before the idup, expected 1100", got);
            ok = 0;
        }
    }
    MPI_Waitall(2, req, MPI_STATUSES_IGNORE);
    MPI_Comm_test_inter(ic2, &inter);
    MPI_Comm_remote_size(ic2, &rsize2);
    MPI_Comm_compare(ic, ic2, &cmp);
    if (!inter || rsize2 != rsize || cmp != MPI_CONGRUENT) {
        CHECK(0, "section 11: inter %d, remote size %d (expected %d), compare %d", inter, rsize2, rsize, cmp);
        ok = 0;
    }
    ok = same_as(w, MPI_COMM_WORLD, "idup of the world beside an intercommunicator's") && ok;
    /* the other group's ranks, summed, through the new one; its groups */
    int sum = -1, expect = 0;
    for (i = low ? half : 0; i < (low ? size : half); i++)
        expect += i;
    MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, ic2);
    MPI_Group g, rg;
    int gs = -1, rgs = -1;
    MPI_Comm_group(ic2, &g);
    MPI_Comm_remote_group(ic2, &rg);
    MPI_Group_size(g, &gs);
    MPI_Group_size(rg, &rgs);
    MPI_Group_free(&g);
    MPI_Group_free(&rg);
    if (sum != expect || gs != (low ? half : size - half) || rgs != rsize) {
        CHECK(0, "section 11: Allreduce %d (expected %d), group sizes %d %d", sum, expect, gs, rgs);
        ok = 0;
    }
    /* same tag, same remote peer, old and new: each gets its own */
    int peer = lrank % rsize, a = -1, b = -1, va = 10 * rank + 1, vb = 10 * rank + 2;
    int senders = 0; /* how many remote ranks pick me as their peer */
    for (i = 0; i < (low ? size - half : half); i++)
        senders += i % (low ? half : size - half) == lrank;
    MPI_Request r[4];
    MPI_Isend(&vb, 1, MPI_INT, peer, 7, ic2, &r[0]);
    MPI_Isend(&va, 1, MPI_INT, peer, 7, ic, &r[1]);
    for (i = 0; i < senders; i++) {
        MPI_Status st;
        MPI_Recv(&a, 1, MPI_INT, MPI_ANY_SOURCE, 7, ic, &st);
        MPI_Recv(&b, 1, MPI_INT, st.MPI_SOURCE, 7, ic2, MPI_STATUS_IGNORE);
        if (a % 10 != 1 || b % 10 != 2 || a / 10 != b / 10) {
            CHECK(0, "section 11: the old intercommunicator got %d, the new one %d", a, b);
            ok = 0;
        }
    }
    MPI_Waitall(2, r, MPI_STATUSES_IGNORE);
    for (i = 0; i < 20; i++) {
        MPI_Comm t;
        int one = 1, n = 0;
        CHECK_MPI(MPI_Comm_idup(ic2, &t, &req[0]));
        MPI_Wait(&req[0], MPI_STATUS_IGNORE);
        MPI_Allreduce(&one, &n, 1, MPI_INT, MPI_SUM, t);
        if (n != rsize) {
            CHECK(0, "section 11: round %d: Allreduce over the idup %d, expected %d", i, n, rsize);
            ok = 0;
        }
        MPI_Comm_free(&t);
    }
    for (i = 0; low && i < 40; i++)
        MPI_Comm_free(&held[i]);
    MPI_Comm_free(&w);
    MPI_Comm_free(&ic2);
    MPI_Comm_free(&ic);
    MPI_Comm_free(&local);
    chk_report(ok, "11. intercommunicator idup: not blocking, beside an idup of the world, congruent, separate, "
                   "20 rounds");
}

int main(int argc, char **argv)
{
    chk_init(&argc, &argv, &rank, &size);
    chk_say("comm-idup: started on %d ranks", size);
    basic();
    overlap();
    several();
    with_blocking();
    with_nbc();
    attributes();
    topology();
    test_loop();
    repeat();
    self();
    cycle();
    intercomm();
    return chk_finish();
}
