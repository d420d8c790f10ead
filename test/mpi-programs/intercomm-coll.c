/* ranks: 2-8 */
/*
 * Intercommunicator collectives and communicator constructors that
 * intercomm.c does not cover. The groups are intercomm.c's: A = the world
 * ranks r with r % 3 == 1 in ascending order, B = the others in descending
 * order (unequal sizes from 3 ranks on; B's local order is not the world's),
 * joined by Intercomm_create with local rank 0 of each group as leader.
 * Rooted collectives: MPI_ROOT on the root, MPI_PROC_NULL on the rest of its
 * group, the root's local rank in the other group (MPI 3.1 5.2.2).
 * 1. Gatherv and Scatterv, the root in A (its last and its first rank) and in
 *    B (its leader and a middle rank): a count per rank of the other group
 *    (one 0 when that group has 3 ranks or more), displacements with gaps of
 *    1 or 2 elements, blocks in reverse rank order (Gatherv, every other
 *    Scatterv): the receive buffer's gaps keep their sentinel, the send
 *    buffer's gaps are not sent, the receive buffers of the root group stay
 *    untouched; arguments that are not significant are passed as NULL.
 * 2. Allgatherv: A ranks send 1 or 2 ints, B ranks 3 or 2 (B's last rank 0
 *    from 3 ranks on); each rank gets the other group's blocks at
 *    displacements with gaps (reverse rank order, then rank order).
 * 3. Alltoallv: a count per (sender, receiver) pair, some 0, send
 *    displacements in reverse order, receive ones in order, both with gaps.
 * 4. Reduce_scatter_block and Reduce_scatter, MPI_SUM on ints. On an
 *    intercommunicator the reduction over the send buffers of one group is
 *    scattered among the ranks of the other group, both ways (MPI 3.1
 *    5.10.1/5.10.2). The counts are the LOCAL group's: recvcount is what each
 *    rank of the local group receives, and recvcounts[] has one entry per
 *    local rank (recvcounts[i] = what local rank i receives); each send buffer
 *    holds count = local size * recvcount, or the sum of the local
 *    recvcounts, elements, and that count must be the same in both groups
 *    (the reduction of A's count elements is what B's recvcounts split).
 *    Here Reduce_scatter_block has recvcount 2*nb in A and 2*na in B (count
 *    2*na*nb in both); Reduce_scatter splits 17 elements differently in each
 *    group (local rank 1 receiving 0 when the group has 2 ranks or more).
 *    Receive buffer elements past the count keep their sentinel.
 * 5. Comm_split of the intercommunicator (MPI 3.1 6.4.2): colors per local
 *    rank A {0, 1, 0}, B {0, 0, 1, MPI_UNDEFINED, 2}; keys A 0 (ties: the
 *    old order), B -i (reverse order). The ranks of a color present on both
 *    sides form an intercomm (local and remote group in key order:
 *    Comm_test_inter, sizes, ranks, groups translated to world ranks; one
 *    line per rank); MPI_UNDEFINED and a color on one side only (color 1 at
 *    4 ranks, color 2) give MPI_COMM_NULL. On each: point to point from every
 *    rank to every remote rank, Bcast from the A side's rank 0 (MPI_ROOT),
 *    Allreduce SUM; the split intercomms of different colors at once.
 * 6. Comm_create of the intercommunicator: each side passes a subgroup of
 *    its local group (A all ranks in reverse order, B its even local ranks in
 *    reverse order): members get an intercomm of those two subgroups (sizes,
 *    ranks, groups, point to point, Bcast, Allreduce), the others
 *    MPI_COMM_NULL; then A's last rank only with B whole; then B passing
 *    MPI_GROUP_EMPTY gives MPI_COMM_NULL everywhere.
 * 7. Comm_dup of the split intercomms: the same groups, Comm_compare
 *    MPI_CONGRUENT; the same (source, tag) messages on the parent intercomm,
 *    the split one and its dup, the receives (MPI_ANY_SOURCE) posted dup
 *    first, sends parent first, never mix; the dup working after the split
 *    comm is freed.
 *
 * Only rank 0 prints; each section's result lines are printed at its end,
 * with how many ranks passed each check (one Allreduce per section).
 */
#include "check.h"

static int rank, size;
static int in_a;                      /* this rank is in group A */
static int na, nb, *a_world, *b_world; /* each group's world ranks in its local order */
static int lsize, lrank, rsize;       /* own group's size, own local rank, the other group's size */
static const int *my_world, *other_world;
static MPI_Comm local, inter;
static MPI_Comm split_ic = MPI_COMM_NULL; /* section 5's result, used again in 7 */

#define SENTINEL -7 /* receive buffers before a call */
#define JUNK -9     /* the gaps of send buffers */
#define BUF 64      /* ints: more than any buffer below needs at 8 ranks */

/* Result lines are queued and printed by rank 0 at the end of each section after one Allreduce: note(ok, ...)
 * queues a line that gets " on n/size ranks" appended, n being how many ranks passed (ok 1), note(-1, ...) a line
 * printed as is. Every rank queues the same lines. */
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

/* The world ranks of a group's members in its order; returns its size. */
static int group_world(MPI_Group g, int *out)
{
    MPI_Group wg;
    int n, i, from[BUF];
    MPI_Group_size(g, &n);
    for (i = 0; i < n; i++)
        from[i] = i;
    MPI_Comm_group(MPI_COMM_WORLD, &wg);
    MPI_Group_translate_ranks(g, n, from, wg, out);
    MPI_Group_free(&wg);
    return n;
}

/* The world ranks of an intercomm's local (remote 0) or remote (remote 1) group; returns its size. */
static int comm_world(MPI_Comm c, int remote, int *out)
{
    MPI_Group g;
    int n;
    if (remote)
        MPI_Comm_remote_group(c, &g);
    else
        MPI_Comm_group(c, &g);
    n = group_world(g, out);
    MPI_Group_free(&g);
    return n;
}

static int same_list(const int *a, const int *b, int n)
{
    int i;
    for (i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

/* The first index where buf differs from expect, or -1. */
static int first_diff(const int *buf, const int *expect, int n)
{
    int i;
    for (i = 0; i < n; i++)
        if (buf[i] != expect[i])
            return i;
    return -1;
}

static void fill(int *buf, int n, int v)
{
    int i;
    for (i = 0; i < n; i++)
        buf[i] = v;
}

/* Displacements for n blocks of cnt[k] elements, in rank order or in reverse, with a gap of 1 element before the
 * first block and of 1 + k % 2 elements after block k; returns the buffer length. */
static int layout(const int *cnt, int n, int reverse, int *displs)
{
    int t, k, pos = 1;
    for (t = 0; t < n; t++) {
        k = reverse ? n - 1 - t : t;
        displs[k] = pos;
        pos += cnt[k] + 1 + k % 2;
    }
    return pos;
}

/* 0. The groups and the intercommunicator */
static void setup(void)
{
    int i, s = -1, r = -1, rs = -1, flag = -1, w[BUF], n, ok;
    char la[64], lb[64];
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
    CHECK_MPI(MPI_Intercomm_create(local, 0, MPI_COMM_WORLD, other_world[0], 100, &inter));
    MPI_Comm_test_inter(inter, &flag);
    MPI_Comm_size(inter, &s);
    MPI_Comm_rank(inter, &r);
    MPI_Comm_remote_size(inter, &rs);
    n = comm_world(inter, 1, w);
    ok = flag == 1 && s == lsize && r == lrank && rs == rsize && n == rsize && same_list(w, other_world, rsize);
    CHECK(ok, "intercomm: test_inter %d size %d rank %d remote size %d", flag, s, r, rs);
    note(ok, "Intercomm_create: sizes, ranks and remote group as expected");
    flush_notes();
}

/* 1. Gatherv and Scatterv */
struct round {
    int root_in_a, root;
};

/* The count of rank k of a group of n in a Gatherv/Scatterv round */
static int vcount(int k, int n, int salt)
{
    return n > 2 && k == 1 ? 0 : 1 + (k + salt) % 3;
}

static int gv_value(int idx, int w, int e)
{
    return 10000 + 1000 * idx + 10 * w + e;
}

static int sv_value(int idx, int w, int e)
{
    return 20000 + 1000 * idx + 10 * w + e;
}

static void rooted_v(const struct round *rd, int idx)
{
    int in_root_group = rd->root_in_a == in_a, am_root = in_root_group && lrank == rd->root;
    int root = in_root_group ? (am_root ? MPI_ROOT : MPI_PROC_NULL) : rd->root;
    int n_other = rd->root_in_a ? nb : na; /* the size of the group that is not the root's */
    const char *from = rd->root_in_a ? "A" : "B", *to = rd->root_in_a ? "B" : "A";
    int cnt[BUF] = { 0 }, displs[BUF], buf[BUF], expect[BUF], mine[4], small[6], len, k, e, c, bad, ok_g = 1, ok_s = 1;
    int reverse_s = idx % 2;
    char counts_g[64], counts_s[64];

    /* Gatherv: the root gets rank k's vcount(k) ints at displs[k], the blocks in reverse order with gaps */
    for (k = 0; k < n_other; k++)
        cnt[k] = vcount(k, n_other, idx);
    list_str(cnt, n_other, counts_g, sizeof counts_g);
    len = layout(cnt, n_other, 1, displs);
    fill(buf, BUF, SENTINEL);
    fill(expect, BUF, SENTINEL);
    if (am_root)
        for (k = 0; k < n_other; k++)
            for (e = 0; e < cnt[k]; e++)
                expect[displs[k] + e] = gv_value(idx, other_world[k], e);
    if (in_root_group) {
        CHECK_MPI(MPI_Gatherv(NULL, 0, MPI_INT, buf, am_root ? cnt : NULL, am_root ? displs : NULL, MPI_INT, root,
                              inter));
        bad = first_diff(buf, expect, BUF);
        ok_g = bad < 0;
        CHECK(ok_g, "round %d Gatherv (%s): element %d is %d, expected %d (length %d)", idx,
              am_root ? "root" : "root group", bad, bad < 0 ? 0 : buf[bad], bad < 0 ? 0 : expect[bad], len);
    } else {
        c = vcount(lrank, lsize, idx);
        fill(mine, 4, JUNK);
        for (e = 0; e < c; e++)
            mine[e] = gv_value(idx, rank, e);
        CHECK_MPI(MPI_Gatherv(mine, c, MPI_INT, NULL, NULL, NULL, MPI_INT, root, inter));
    }

    /* Scatterv: the root sends rank k vcount(k) ints from displs[k] (gaps hold JUNK) */
    for (k = 0; k < n_other; k++)
        cnt[k] = vcount(k, n_other, idx + 1);
    list_str(cnt, n_other, counts_s, sizeof counts_s);
    layout(cnt, n_other, reverse_s, displs);
    fill(buf, BUF, JUNK);
    if (am_root)
        for (k = 0; k < n_other; k++)
            for (e = 0; e < cnt[k]; e++)
                buf[displs[k] + e] = sv_value(idx, other_world[k], e);
    fill(small, 6, SENTINEL);
    fill(expect, 6, SENTINEL);
    if (in_root_group) {
        CHECK_MPI(MPI_Scatterv(am_root ? buf : NULL, am_root ? cnt : NULL, am_root ? displs : NULL, MPI_INT, small,
                               6, MPI_INT, root, inter));
    } else {
        c = vcount(lrank, lsize, idx + 1);
        for (e = 0; e < c; e++)
            expect[e] = sv_value(idx, rank, e);
        CHECK_MPI(MPI_Scatterv(NULL, NULL, NULL, MPI_INT, small, c, MPI_INT, root, inter));
    }
    bad = first_diff(small, expect, 6);
    ok_s = bad < 0;
    CHECK(ok_s, "round %d Scatterv: element %d is %d, expected %d", idx, bad, bad < 0 ? 0 : small[bad],
          bad < 0 ? 0 : expect[bad]);

    note(ok_g, "Gatherv from %s (counts %s) to %s rank %d, blocks in reverse order with gaps: right", to, counts_g,
         from, rd->root);
    note(ok_s, "Scatterv from %s rank %d to %s (counts %s), blocks in %s order with gaps: right", from, rd->root, to,
         counts_s, reverse_s ? "reverse" : "rank");
}

static void gatherv_scatterv(void)
{
    struct round rounds[4];
    int i;
    /* A's last rank, B's leader, a middle rank of B, A's first rank */
    rounds[0].root_in_a = 1, rounds[0].root = na - 1;
    rounds[1].root_in_a = 0, rounds[1].root = 0;
    rounds[2].root_in_a = 0, rounds[2].root = nb / 2;
    rounds[3].root_in_a = 1, rounds[3].root = 0;
    for (i = 0; i < 4; i++)
        rooted_v(&rounds[i], i);
    flush_notes();
}

/* 2. Allgatherv */
static int agcount(int is_a, int i, int n)
{
    if (is_a)
        return 1 + i % 2;
    return n > 1 && i == n - 1 ? 0 : 3 - i % 2;
}

static void allgatherv(void)
{
    int cnt[BUF], displs[BUF], buf[BUF], expect[BUF], mine[4], c, k, e, bad, ok, reverse;
    char ca[64], cb[64];
    for (k = 0; k < na; k++)
        cnt[k] = agcount(1, k, na);
    list_str(cnt, na, ca, sizeof ca);
    for (k = 0; k < nb; k++)
        cnt[k] = agcount(0, k, nb);
    list_str(cnt, nb, cb, sizeof cb);
    for (reverse = 1; reverse >= 0; reverse--) {
        c = agcount(in_a, lrank, lsize);
        fill(mine, 4, JUNK);
        for (e = 0; e < c; e++)
            mine[e] = 30000 + 1000 * reverse + 10 * rank + e;
        for (k = 0; k < rsize; k++)
            cnt[k] = agcount(!in_a, k, rsize);
        layout(cnt, rsize, reverse, displs);
        fill(buf, BUF, SENTINEL);
        fill(expect, BUF, SENTINEL);
        for (k = 0; k < rsize; k++)
            for (e = 0; e < cnt[k]; e++)
                expect[displs[k] + e] = 30000 + 1000 * reverse + 10 * other_world[k] + e;
        CHECK_MPI(MPI_Allgatherv(mine, c, MPI_INT, buf, cnt, displs, MPI_INT, inter));
        bad = first_diff(buf, expect, BUF);
        ok = bad < 0;
        CHECK(ok, "Allgatherv: element %d is %d, expected %d", bad, bad < 0 ? 0 : buf[bad],
              bad < 0 ? 0 : expect[bad]);
        note(ok, "Allgatherv (A's counts %s, B's %s): the other group's blocks, %s order with gaps", ca, cb,
             reverse ? "reverse" : "rank");
    }
    flush_notes();
}

/* 3. Alltoallv: what local rank i of group A (sender_is_a) or B sends to remote rank k */
static int a2a_count(int sender_is_a, int i, int k)
{
    return (i + 2 * k + sender_is_a) % 3;
}

static void alltoallv(void)
{
    int scnt[BUF] = { 0 }, sdis[BUF], rcnt[BUF] = { 0 }, rdis[BUF], sbuf[BUF], rbuf[BUF], expect[BUF], k, e, bad, ok, zeros = 0, all;
    for (k = 0; k < rsize; k++) {
        scnt[k] = a2a_count(in_a, lrank, k);
        rcnt[k] = a2a_count(!in_a, k, lrank);
    }
    layout(scnt, rsize, 1, sdis);
    layout(rcnt, rsize, 0, rdis);
    fill(sbuf, BUF, JUNK);
    fill(rbuf, BUF, SENTINEL);
    fill(expect, BUF, SENTINEL);
    for (k = 0; k < rsize; k++) {
        for (e = 0; e < scnt[k]; e++)
            sbuf[sdis[k] + e] = 50000 + 100 * rank + 10 * k + e;
        for (e = 0; e < rcnt[k]; e++)
            expect[rdis[k] + e] = 50000 + 100 * other_world[k] + 10 * lrank + e;
        zeros += scnt[k] == 0;
    }
    CHECK_MPI(MPI_Alltoallv(sbuf, scnt, sdis, MPI_INT, rbuf, rcnt, rdis, MPI_INT, inter));
    bad = first_diff(rbuf, expect, BUF);
    ok = bad < 0;
    CHECK(ok, "Alltoallv: element %d is %d, expected %d", bad, bad < 0 ? 0 : rbuf[bad], bad < 0 ? 0 : expect[bad]);
    MPI_Allreduce(&zeros, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    note(ok,
         "Alltoallv (count (i + 2k + [A]) %% 3 from local rank i to remote rank k, %d of %d zero; send blocks "
         "reversed, receive blocks in order, gaps): right",
         all, 2 * na * nb);
    flush_notes();
}

/* 4. Reduce_scatter_block and Reduce_scatter */
#define RS_TOTAL 17

/* The Reduce_scatter recvcounts of a group of n: local rank 1 gets 0 (n > 1), the others 1, 2, ... and the last
 * one what is left of RS_TOTAL */
static void rs_counts(int n, int *out)
{
    int i, j = 0, left = RS_TOTAL, last = n == 2 ? 0 : n - 1;
    for (i = 0; i < n; i++) {
        out[i] = i == 1 || i == last ? 0 : ++j;
        left -= out[i];
    }
    out[last] = left;
}

static void reduce_scatter(void)
{
    int rc, count, sbuf[BUF], rbuf[BUF], expect[BUF], cnt[BUF], e, k, bad, ok, sum_other = 0, off;
    char ca[64], cb[64];
    for (k = 0; k < rsize; k++)
        sum_other += other_world[k];

    /* Reduce_scatter_block: recvcount 2 * (remote size), so count = 2 * na * nb in both groups */
    rc = 2 * rsize;
    count = lsize * rc;
    for (e = 0; e < count; e++)
        sbuf[e] = 100 * rank + e + 1;
    fill(rbuf, BUF, SENTINEL);
    fill(expect, BUF, SENTINEL);
    for (e = 0; e < rc; e++)
        expect[e] = 100 * sum_other + rsize * (lrank * rc + e + 1);
    CHECK_MPI(MPI_Reduce_scatter_block(sbuf, rbuf, rc, MPI_INT, MPI_SUM, inter));
    bad = first_diff(rbuf, expect, BUF);
    ok = bad < 0;
    CHECK(ok, "Reduce_scatter_block: element %d is %d, expected %d", bad, bad < 0 ? 0 : rbuf[bad],
          bad < 0 ? 0 : expect[bad]);
    note(ok,
         "Reduce_scatter_block SUM (recvcount %d in A, %d in B; %d elements per send buffer): each rank gets its "
         "block of the other group's sum",
         2 * nb, 2 * na, 2 * na * nb);

    /* Reduce_scatter: recvcounts of the local group, RS_TOTAL elements in every send buffer */
    rs_counts(na, cnt);
    list_str(cnt, na, ca, sizeof ca);
    rs_counts(nb, cnt);
    list_str(cnt, nb, cb, sizeof cb);
    rs_counts(lsize, cnt);
    for (off = 0, k = 0; k < lrank; k++)
        off += cnt[k];
    for (e = 0; e < RS_TOTAL; e++)
        sbuf[e] = 7 * rank + 3 * e + 1;
    fill(rbuf, BUF, SENTINEL);
    fill(expect, BUF, SENTINEL);
    for (e = 0; e < cnt[lrank]; e++)
        expect[e] = 7 * sum_other + rsize * (3 * (off + e) + 1);
    CHECK_MPI(MPI_Reduce_scatter(sbuf, rbuf, cnt, MPI_INT, MPI_SUM, inter));
    bad = first_diff(rbuf, expect, BUF);
    ok = bad < 0;
    CHECK(ok, "Reduce_scatter: element %d is %d, expected %d", bad, bad < 0 ? 0 : rbuf[bad],
          bad < 0 ? 0 : expect[bad]);
    note(ok,
         "Reduce_scatter SUM (recvcounts %s in A, %s in B; %d elements per send buffer): each rank gets its block "
         "of the other group's sum",
         ca, cb, RS_TOTAL);
    flush_notes();
}

/* 5. Comm_split */
static const int a_colors[3] = { 0, 1, 0 };
static const int b_colors[5] = { 0, 0, 1, MPI_UNDEFINED, 2 };

static int color_of(int is_a, int i)
{
    return is_a ? a_colors[i] : b_colors[i];
}

static int key_of(int is_a, int i)
{
    return is_a ? 0 : -i;
}

/* The world ranks of group A's (is_a) or B's ranks with color c, ordered by key and then local rank; returns how
 * many. */
static int members(int is_a, int c, int *out)
{
    int n = is_a ? na : nb, i, j, m = 0, keys[BUF];
    const int *w = is_a ? a_world : b_world;
    if (c == MPI_UNDEFINED)
        return 0;
    for (i = 0; i < n; i++) {
        int key = key_of(is_a, i);
        if (color_of(is_a, i) != c)
            continue;
        for (j = m; j > 0 && keys[j - 1] > key; j--) {
            keys[j] = keys[j - 1];
            out[j] = out[j - 1];
        }
        keys[j] = key;
        out[j] = w[i];
        m++;
    }
    return m;
}

/* Whether c is an intercomm of the local group lw (nl, this rank at position at) and the remote group rw (nr). */
static int shape_ok(MPI_Comm c, const int *lw, int nl, int at, const int *rw, int nr, const char *what)
{
    int flag = -1, s = -1, r = -1, rs = -1, n1, n2, w1[BUF], w2[BUF], ok;
    MPI_Comm_test_inter(c, &flag);
    MPI_Comm_size(c, &s);
    MPI_Comm_rank(c, &r);
    MPI_Comm_remote_size(c, &rs);
    n1 = comm_world(c, 0, w1);
    n2 = comm_world(c, 1, w2);
    ok = flag == 1 && s == nl && r == at && rs == nr && n1 == nl && n2 == nr && same_list(w1, lw, nl) &&
         same_list(w2, rw, nr);
    CHECK(ok, "%s: test_inter %d, size %d rank %d remote size %d (expected %d %d %d), groups %s", what, flag, s, r,
          rs, nl, at, nr, same_list(w1, lw, nl) && same_list(w2, rw, nr) ? "right" : "wrong");
    return ok;
}

/* Traffic on an intercomm c whose remote group is rw (nr): every rank sends its world rank to every remote rank
 * and receives each remote rank's; a Bcast from the rank 0 of the side that is_root_side; an Allreduce SUM of the
 * world ranks. */
static int traffic_ok(MPI_Comm c, int is_root_side, const int *rw, int nr, int tag, const char *what)
{
    MPI_Request req[BUF];
    MPI_Status st, sts[BUF];
    int k, v, ok = 1, r, root, bc[2], sum = -1, expect_sum = 0;
    MPI_Comm_rank(c, &r);
    for (k = 0; k < nr; k++)
        MPI_Isend(&rank, 1, MPI_INT, k, tag, c, &req[k]);
    for (k = 0; k < nr; k++) {
        v = -1;
        MPI_Recv(&v, 1, MPI_INT, k, tag, c, &st);
        if (v != rw[k] || st.MPI_SOURCE != k || st.MPI_TAG != tag) {
            CHECK(0, "%s: from remote rank %d got %d (source %d tag %d), expected %d", what, k, v, st.MPI_SOURCE,
                  st.MPI_TAG, rw[k]);
            ok = 0;
        }
    }
    MPI_Waitall(nr, req, sts);

    root = is_root_side ? (r == 0 ? MPI_ROOT : MPI_PROC_NULL) : 0;
    bc[0] = root == MPI_ROOT ? rank : -1;
    bc[1] = root == MPI_ROOT ? tag : -1;
    MPI_Bcast(bc, 2, MPI_INT, root, c);
    if (is_root_side) {
        if (root == MPI_ROOT ? bc[0] != rank || bc[1] != tag : bc[0] != -1 || bc[1] != -1) {
            CHECK(0, "%s: Bcast changed the root side's buffer: %d %d", what, bc[0], bc[1]);
            ok = 0;
        }
    } else if (bc[0] != rw[0] || bc[1] != tag) {
        CHECK(0, "%s: Bcast gave %d %d, expected %d %d", what, bc[0], bc[1], rw[0], tag);
        ok = 0;
    }

    MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, c);
    for (k = 0; k < nr; k++)
        expect_sum += rw[k];
    if (sum != expect_sum) {
        CHECK(0, "%s: Allreduce SUM %d, expected %d", what, sum, expect_sum);
        ok = 0;
    }
    return ok;
}

static void split(void)
{
    int color = color_of(in_a, lrank), key = key_of(in_a, lrank);
    int lw[BUF], rw[BUF], nl, nr, at, expect_null, ok_shape = 1, ok_traffic = 1, n1 = 0, n2 = 0, w1[BUF], w2[BUF],
                                                  r = -1;
    char cs[16], s1[64], s2[64];
    CHECK_MPI(MPI_Comm_split(inter, color, key, &split_ic));
    nl = members(in_a, color, lw);
    nr = members(!in_a, color, rw);
    expect_null = color == MPI_UNDEFINED || nr == 0;
    if (expect_null) {
        ok_shape = split_ic == MPI_COMM_NULL;
        CHECK(ok_shape, "Comm_split: color %d (the other side has %d) did not give MPI_COMM_NULL", color, nr);
    } else if (split_ic == MPI_COMM_NULL) {
        ok_shape = 0;
        CHECK(0, "Comm_split: color %d gave MPI_COMM_NULL", color);
    } else {
        for (at = 0; lw[at] != rank; at++)
            ;
        ok_shape = shape_ok(split_ic, lw, nl, at, rw, nr, "Comm_split");
        ok_traffic = traffic_ok(split_ic, in_a, rw, nr, 5, "Comm_split");
    }
    if (split_ic != MPI_COMM_NULL) {
        MPI_Comm_rank(split_ic, &r);
        n1 = comm_world(split_ic, 0, w1);
        n2 = comm_world(split_ic, 1, w2);
    }
    list_str(w1, n1, s1, sizeof s1);
    list_str(w2, n2, s2, sizeof s2);
    if (color == MPI_UNDEFINED)
        snprintf(cs, sizeof cs, "UNDEFINED");
    else
        snprintf(cs, sizeof cs, "%d", color);
    if (split_ic == MPI_COMM_NULL)
        chk_say_ordered(MPI_COMM_WORLD, "  world rank %d (%s %d) color %s key %d: MPI_COMM_NULL", rank,
                        in_a ? "A" : "B", lrank, cs, key);
    else
        chk_say_ordered(MPI_COMM_WORLD, "  world rank %d (%s %d) color %s key %d: rank %d of {%s}, remote {%s}", rank,
                        in_a ? "A" : "B", lrank, cs, key, r, s1, s2);
    note(ok_shape,
         "Comm_split of the intercomm (colors A 0 1 0, B 0 0 1 UNDEFINED 2; keys A 0, B -i): intercomms of each color's ranks in key order, MPI_COMM_NULL for UNDEFINED and one-sided colors");
    note(ok_traffic, "on the split intercomms: point to point every rank to every remote rank, Bcast from the A "
                     "side's rank 0, Allreduce SUM right");
    flush_notes();
}

/* 6. Comm_create */
static void create_case(const int *a_ranks, int n_a, const int *b_ranks, int n_b, const char *what)
{
    MPI_Group lg, sub;
    MPI_Comm cc = MPI_COMM_NULL;
    const int *mine = in_a ? a_ranks : b_ranks;
    int n_mine = in_a ? n_a : n_b, lw[BUF], rw[BUF], k, at = -1, expect_null, ok_shape = 1, ok_traffic = 1, got = 0,
        all;
    MPI_Comm_group(inter, &lg);
    if (n_mine == 0)
        sub = MPI_GROUP_EMPTY;
    else
        MPI_Group_incl(lg, n_mine, mine, &sub);
    CHECK_MPI(MPI_Comm_create(inter, sub, &cc));
    for (k = 0; k < n_a; k++)
        (in_a ? lw : rw)[k] = a_world[a_ranks[k]];
    for (k = 0; k < n_b; k++)
        (in_a ? rw : lw)[k] = b_world[b_ranks[k]];
    for (k = 0; k < n_mine; k++)
        if (mine[k] == lrank)
            at = k;
    expect_null = at < 0 || n_a == 0 || n_b == 0;
    if (expect_null) {
        ok_shape = cc == MPI_COMM_NULL;
        CHECK(ok_shape, "%s: not MPI_COMM_NULL", what);
    } else if (cc == MPI_COMM_NULL) {
        ok_shape = 0;
        CHECK(0, "%s: MPI_COMM_NULL", what);
    } else {
        ok_shape = shape_ok(cc, lw, in_a ? n_a : n_b, at, rw, in_a ? n_b : n_a, what);
        ok_traffic = traffic_ok(cc, in_a, rw, in_a ? n_b : n_a, 6, what);
    }
    got = cc != MPI_COMM_NULL;
    if (cc != MPI_COMM_NULL)
        MPI_Comm_free(&cc);
    if (sub != MPI_GROUP_EMPTY)
        MPI_Group_free(&sub);
    MPI_Group_free(&lg);
    MPI_Allreduce(&got, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    note(ok_shape, "%s: %d ranks got an intercomm, the others MPI_COMM_NULL; sizes, ranks, groups right", what, all);
    if (n_a > 0 && n_b > 0)
        note(ok_traffic, "%s: point to point, Bcast, Allreduce on it right", what);
}

static void create(void)
{
    int a_ranks[BUF], b_ranks[BUF], n_a = 0, n_b = 0, k;
    char sa[64], sb[64], what[200];
    for (k = na - 1; k >= 0; k--)
        a_ranks[n_a++] = k;
    for (k = nb - 1; k >= 0; k--)
        if (k % 2 == 0)
            b_ranks[n_b++] = k;
    list_str(a_ranks, n_a, sa, sizeof sa);
    list_str(b_ranks, n_b, sb, sizeof sb);
    snprintf(what, sizeof what, "Comm_create(A local ranks {%s}, B local ranks {%s})", sa, sb);
    create_case(a_ranks, n_a, b_ranks, n_b, what);

    a_ranks[0] = na - 1;
    for (k = 0; k < nb; k++)
        b_ranks[k] = k;
    list_str(b_ranks, nb, sb, sizeof sb);
    snprintf(what, sizeof what, "Comm_create(A local ranks {%d}, B local ranks {%s})", na - 1, sb);
    create_case(a_ranks, 1, b_ranks, nb, what);

    for (k = 0; k < na; k++)
        a_ranks[k] = k;
    list_str(a_ranks, na, sa, sizeof sa);
    snprintf(what, sizeof what, "Comm_create(A local ranks {%s}, B MPI_GROUP_EMPTY)", sa);
    create_case(a_ranks, na, b_ranks, 0, what);
    flush_notes();
}

/* 7. Comm_dup of the split intercomm; messages on it, the split comm and the parent intercomm never mix */
static void dup_split(void)
{
    MPI_Comm d = MPI_COMM_NULL, comms[3];
    MPI_Request req[6 * BUF];
    MPI_Status st[6 * BUF];
    int lw[BUF], rw[BUF], nl = 0, nr = 0, at, k, j, c, ok_shape = 1, ok_mix = 1, ok_after = 1, cmp = -1, sum = -1,
                                                  expect_sum = 0, got = 0, all;
    int in[3][BUF][2], out[3][2];
    if (split_ic != MPI_COMM_NULL) {
        got = 1;
        nl = comm_world(split_ic, 0, lw);
        nr = comm_world(split_ic, 1, rw);
        CHECK_MPI(MPI_Comm_dup(split_ic, &d));
        for (at = 0; lw[at] != rank; at++)
            ;
        ok_shape = shape_ok(d, lw, nl, at, rw, nr, "Comm_dup of the split intercomm");
        MPI_Comm_compare(split_ic, d, &cmp);
        CHECK(cmp == MPI_CONGRUENT, "Comm_compare(split, dup) = %d, expected MPI_CONGRUENT", cmp);
        ok_shape = ok_shape && cmp == MPI_CONGRUENT;

        /* receives from every remote rank with MPI_ANY_SOURCE and tag 7: on the dup, the split comm, the parent */
        comms[0] = d;
        comms[1] = split_ic;
        comms[2] = inter;
        for (c = 0; c < 3; c++)
            for (k = 0; k < nr; k++) {
                in[c][k][0] = in[c][k][1] = -1;
                MPI_Irecv(in[c][k], 2, MPI_INT, MPI_ANY_SOURCE, 7, comms[c], &req[c * nr + k]);
            }
    }
    MPI_Barrier(MPI_COMM_WORLD); /* every receive posted before any send */
    if (split_ic != MPI_COMM_NULL) {
        /* sends to every remote rank: the parent first */
        for (c = 2; c >= 0; c--) {
            out[c][0] = c;
            out[c][1] = rank;
            for (k = 0; k < nr; k++) {
                int dest = k;
                if (c == 2)
                    for (dest = 0; other_world[dest] != rw[k]; dest++)
                        ;
                MPI_Isend(out[c], 2, MPI_INT, dest, 7, comms[c], &req[3 * nr + c * nr + k]);
            }
        }
        MPI_Waitall(6 * nr, req, st);
        for (c = 0; c < 3; c++) {
            char seen[BUF] = { 0 };
            for (k = 0; k < nr; k++) {
                int src = st[c * nr + k].MPI_SOURCE, w = -1;
                if (src >= 0 && src < (c == 2 ? rsize : nr))
                    w = c == 2 ? other_world[src] : rw[src];
                for (j = 0; j < nr && rw[j] != w; j++)
                    ;
                if (in[c][k][0] != c || in[c][k][1] != w || j == nr || seen[j]) {
                    CHECK(0, "communicator %d: message from source %d (world rank %d) has %d %d", c, src, w,
                          in[c][k][0], in[c][k][1]);
                    ok_mix = 0;
                } else {
                    seen[j] = 1;
                }
            }
        }

        /* the dup outlives the split comm */
        MPI_Comm_free(&split_ic);
        MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, d);
        for (k = 0; k < nr; k++)
            expect_sum += rw[k];
        ok_after = split_ic == MPI_COMM_NULL && sum == expect_sum;
        CHECK(ok_after, "the dup after freeing the split comm: Allreduce %d, expected %d", sum, expect_sum);
        MPI_Comm_free(&d);
    }
    MPI_Allreduce(&got, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    note(ok_shape, "Comm_dup of the split intercomms (%d ranks): same groups and ranks, Comm_compare MPI_CONGRUENT",
         all);
    note(ok_mix, "the same source and tag on the parent intercomm, the split one and its dup (receives posted dup "
                 "first, sends parent first): never mixed");
    note(ok_after, "Allreduce on the dup after Comm_free of the split intercomm: right");
    flush_notes();
}

int main(int argc, char **argv)
{
    chk_init(&argc, &argv, &rank, &size);
    chk_require_ranks(size, 2);
    chk_say("intercomm-coll: started on %d ranks", size);
    setup();
    gatherv_scatterv();
    allgatherv();
    alltoallv();
    reduce_scatter();
    split();
    create();
    dup_split();
    MPI_Comm_free(&inter);
    MPI_Comm_free(&local);
    free(a_world);
    free(b_world);
    return chk_finish();
}
