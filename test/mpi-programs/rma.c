/* ranks: 1-8 */
/*
 * One-sided communication with active target synchronization (passive
 * target is in rma-passive.c). Fence epochs in a row on one window (a ring
 * Put, a Get from the left, Accumulate SUM/MAX/REPLACE into rank 0 and into
 * every rank, MPI_MODE_NOPRECEDE/NOSUCCEED); derived datatypes on either side
 * and disp_unit scaling (int and double windows); 1 MiB Put and Get and a
 * 512 KiB strided Get (above an eager limit); post/start/complete/wait on a
 * ring, Win_test polled, an epoch exposing rank 0 to every rank; a dynamic
 * window (two regions attached, addresses exchanged as MPI_AINT, detached);
 * window attributes (base, size, disp_unit, flavor, model), Win_get_group,
 * names, error handlers (MPI_ERR_RANK returned under MPI_ERRORS_RETURN);
 * windows on an even/odd split, on MPI_COMM_SELF and on the world used in the
 * same epochs, and a window of size 0 on the odd ranks.
 */
#include "check.h"

static int rank, size, left, right;

/* Window memory comes from malloc (aligned for any type): MPICH 4.0.2 (ch4:ucx) targets the base rounded down
 * to 16 bytes when a Win_create base is not 16-byte aligned, and returns a Win_allocate baseptr that is not the
 * window's base when a lower rank's size is not a multiple of 16. */
static int *ints(int n, int value)
{
    int *p = malloc(sizeof(int) * n), i;
    for (i = 0; i < n; i++)
        p[i] = value;
    return p;
}

/* How many ranks passed a check (every rank gets the count). */
static int ranks_ok(int ok)
{
    int n = 0;
    ok = ok ? 1 : 0;
    MPI_Allreduce(&ok, &n, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    return n;
}

/* The same for n checks at once (one collective: they are slow on oversubscribed cores). */
static void ranks_ok_n(int *ok, int *count, int n)
{
    int i;
    for (i = 0; i < n; i++)
        ok[i] = ok[i] ? 1 : 0;
    MPI_Allreduce(ok, count, n, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
}

/* Checks a window's attributes and group (against its communicator's) on every rank; rank 0 prints what it saw. */
static void window_attrs(const char *what, MPI_Win win, MPI_Comm comm, void *base, MPI_Aint bytes, int disp_unit,
                         int flavor)
{
    int flag, *ip, cmp = -1, ok, got_flavor = -1;
    void *bp = NULL;
    MPI_Aint *ap;
    MPI_Group g, cg;
    MPI_Win_get_attr(win, MPI_WIN_BASE, &bp, &flag);
    ok = flag && bp == base;
    MPI_Win_get_attr(win, MPI_WIN_SIZE, &ap, &flag);
    ok = ok && flag && *ap == bytes;
    MPI_Win_get_attr(win, MPI_WIN_DISP_UNIT, &ip, &flag);
    ok = ok && flag && *ip == disp_unit;
    MPI_Win_get_attr(win, MPI_WIN_MODEL, &ip, &flag);
    ok = ok && flag && (*ip == MPI_WIN_UNIFIED || *ip == MPI_WIN_SEPARATE);
    MPI_Win_get_attr(win, MPI_WIN_CREATE_FLAVOR, &ip, &flag);
    if (flag)
        got_flavor = *ip;
    MPI_Win_get_group(win, &g);
    MPI_Comm_group(comm, &cg);
    MPI_Group_compare(g, cg, &cmp);
    MPI_Group_free(&g);
    MPI_Group_free(&cg);
    CHECK(ok && cmp == MPI_IDENT && got_flavor == flavor, "%s: attributes (base %s), group %d, flavor %d", what,
          bp == base ? "right" : "wrong", cmp, got_flavor);
    chk_say("%s: flavor %s; base, size, disp_unit, model, group %s", what,
            got_flavor == MPI_WIN_FLAVOR_CREATE     ? "MPI_WIN_FLAVOR_CREATE"
            : got_flavor == MPI_WIN_FLAVOR_ALLOCATE ? "MPI_WIN_FLAVOR_ALLOCATE"
            : got_flavor == MPI_WIN_FLAVOR_DYNAMIC  ? "MPI_WIN_FLAVOR_DYNAMIC"
                                                    : "another",
            ok && cmp == MPI_IDENT ? "MPI_IDENT: right" : "wrong");
}

/* 1. fence epochs */
static void fence_epochs(void)
{
    int *buf = ints(10, -1), mine[2], got[2] = { -1, -1 }, v, t, e, ok[4], n[4], inc = rank + 1;
    int left2 = (rank + 2 * size - 2) % size, *maxv = malloc(sizeof(int) * size), want_max = -1, r;
    int replace_right = rank + 100, replace_zero = rank + 200;
    MPI_Win win;
    buf[2] = buf[3] = 0;
    buf[4] = -1000;
    CHECK_MPI(MPI_Win_create(buf, 10 * sizeof(int), sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &win));
    window_attrs("fence: Win_create", win, MPI_COMM_WORLD, buf, 10 * sizeof(int), sizeof(int), MPI_WIN_FLAVOR_CREATE);

    mine[0] = rank * 10 + 1;
    mine[1] = rank * 10 + 2;
    CHECK_MPI(MPI_Win_fence(MPI_MODE_NOPRECEDE, win));
    CHECK_MPI(MPI_Put(mine, 2, MPI_INT, right, 0, 2, MPI_INT, win));
    CHECK_MPI(MPI_Win_fence(0, win));
    ok[0] = buf[0] == left * 10 + 1 && buf[1] == left * 10 + 2;
    CHECK(ok[0], "ring Put: got %d %d from the left", buf[0], buf[1]);

    /* the left neighbor's window now holds its left neighbor's data */
    CHECK_MPI(MPI_Get(got, 2, MPI_INT, left, 0, 2, MPI_INT, win));
    CHECK_MPI(MPI_Win_fence(0, win));
    ok[1] = got[0] == left2 * 10 + 1 && got[1] == left2 * 10 + 2;
    CHECK(ok[1], "Get from the left: %d %d", got[0], got[1]);

    /* accumulates: SUM into rank 0 and into every rank, MAX into every rank, REPLACE (origin buffers untouched
     * until the fence) */
    CHECK_MPI(MPI_Accumulate(&inc, 1, MPI_INT, 0, 2, 1, MPI_INT, MPI_SUM, win));
    for (t = 0; t < size; t++) {
        CHECK_MPI(MPI_Accumulate(&inc, 1, MPI_INT, t, 3, 1, MPI_INT, MPI_SUM, win));
        maxv[t] = (rank * 5 + t * 3) % 7 + 10 * t;
        CHECK_MPI(MPI_Accumulate(&maxv[t], 1, MPI_INT, t, 4, 1, MPI_INT, MPI_MAX, win));
    }
    CHECK_MPI(MPI_Accumulate(&replace_right, 1, MPI_INT, right, 5, 1, MPI_INT, MPI_REPLACE, win));
    CHECK_MPI(MPI_Accumulate(&replace_zero, 1, MPI_INT, 0, 6, 1, MPI_INT, MPI_REPLACE, win));
    CHECK_MPI(MPI_Win_fence(0, win));
    for (r = 0; r < size; r++)
        if ((r * 5 + rank * 3) % 7 + 10 * rank > want_max)
            want_max = (r * 5 + rank * 3) % 7 + 10 * rank;
    ok[2] = buf[3] == size * (size + 1) / 2 && buf[4] == want_max && buf[5] == left + 100;
    CHECK(ok[2], "accumulates: sum %d max %d replace %d", buf[3], buf[4], buf[5]);
    if (rank == 0) {
        CHECK_EQ_INT(buf[2], size * (size + 1) / 2, "SUM into rank 0");
        CHECK(buf[6] >= 200 && buf[6] < 200 + size, "concurrent REPLACE left %d", buf[6]);
    }

    /* more epochs on the same window, the last fence with NOSUCCEED; an int per epoch, as a neighbor may
     * already be in the next epoch while this rank reads */
    for (e = 0, ok[3] = 1; e < 3; e++) {
        v = rank * 100 + e;
        CHECK_MPI(MPI_Put(&v, 1, MPI_INT, right, 7 + e, 1, MPI_INT, win));
        CHECK_MPI(MPI_Win_fence(e == 2 ? MPI_MODE_NOSUCCEED : 0, win));
        CHECK(buf[7 + e] == left * 100 + e, "epoch %d: %d", e, buf[7 + e]);
        ok[3] = ok[3] && buf[7 + e] == left * 100 + e;
    }
    ranks_ok_n(ok, n, 4);
    chk_say("fence: ring Put into the right neighbor: %d/%d ranks got the left's data", n[0], size);
    chk_say("fence: Get from the left neighbor: %d/%d ranks right", n[1], size);
    chk_say("fence: Accumulate SUM into rank 0: %d; SUM, MAX into every rank and REPLACE from the left: %d/%d ranks "
            "right; rank 0 max %d",
            buf[2], n[2], size, buf[4]);
    chk_say("fence: concurrent REPLACE into rank 0 left one origin's value: %s",
            buf[6] >= 200 && buf[6] < 200 + size ? "yes" : "no");
    chk_say("fence: 3 more epochs reusing the window: %d/%d ranks right", n[3], size);
    CHECK_MPI(MPI_Win_free(&win));
    CHECK(win == MPI_WIN_NULL, "Win_free sets MPI_WIN_NULL");
    free(buf);
    free(maxv);
}

/* 2. derived datatypes on both sides, disp_unit scaling */
static void derived_types(void)
{
    int *ibuf = ints(16, -1), src[12], i, ok, bl[3] = { 1, 2, 1 }, dp[3] = { 0, 3, 7 }, want[16];
    double *dbuf = malloc(10 * sizeof(double)), dgot[4], dspread[8];
    MPI_Datatype ovec, tvec, tidx, dvec;
    MPI_Win iwin, dwin;
    for (i = 0; i < 12; i++)
        src[i] = rank * 100 + i;
    for (i = 0; i < 10; i++)
        dbuf[i] = rank * 1000 + i + 0.5;
    for (i = 0; i < 8; i++)
        dspread[i] = -1;
    MPI_Type_vector(4, 1, 3, MPI_INT, &ovec);         /* src[0], src[3], src[6], src[9] */
    MPI_Type_vector(4, 1, 2, MPI_INT, &tvec);         /* every other int */
    MPI_Type_indexed(3, bl, dp, MPI_DOUBLE, &tidx);   /* doubles 0, 3, 4, 7 from the displacement */
    MPI_Type_vector(4, 1, 2, MPI_DOUBLE, &dvec);      /* every other double */
    MPI_Type_commit(&ovec);
    MPI_Type_commit(&tvec);
    MPI_Type_commit(&tidx);
    MPI_Type_commit(&dvec);
    CHECK_MPI(MPI_Win_create(ibuf, 16 * sizeof(int), sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &iwin));
    CHECK_MPI(MPI_Win_create(dbuf, 10 * sizeof(double), sizeof(double), MPI_INFO_NULL, MPI_COMM_WORLD, &dwin));
    CHECK_MPI(MPI_Win_fence(MPI_MODE_NOPRECEDE, iwin));
    CHECK_MPI(MPI_Win_fence(MPI_MODE_NOPRECEDE, dwin));
    CHECK_MPI(MPI_Put(src, 1, ovec, right, 2, 4, MPI_INT, iwin));                 /* ints 2..5 */
    CHECK_MPI(MPI_Put(src, 4, MPI_INT, right, 8, 1, tvec, iwin));                 /* ints 8, 10, 12, 14 */
    CHECK_MPI(MPI_Accumulate(src, 1, ovec, right, 9, 1, tvec, MPI_SUM, iwin));    /* ints 9, 11, 13, 15 */
    CHECK_MPI(MPI_Get(dgot, 4, MPI_DOUBLE, left, 1, 1, tidx, dwin));             /* doubles 1, 4, 5, 8 */
    CHECK_MPI(MPI_Get(dspread, 1, dvec, right, 1, 1, tidx, dwin));                /* into every other double */
    CHECK_MPI(MPI_Win_fence(MPI_MODE_NOSUCCEED, iwin));
    CHECK_MPI(MPI_Win_fence(MPI_MODE_NOSUCCEED, dwin));

    for (i = 0; i < 16; i++)
        want[i] = -1;
    for (i = 0; i < 4; i++) {
        want[2 + i] = left * 100 + 3 * i;
        want[8 + 2 * i] = left * 100 + i;
        want[9 + 2 * i] = -1 + left * 100 + 3 * i;
    }
    for (i = 0, ok = 1; i < 16; i++)
        ok = ok && ibuf[i] == want[i];
    CHECK(ok, "ints at the target of the strided Put/Accumulate");
    int dwant[4] = { 1, 4, 5, 8 };
    for (i = 0; i < 4; i++) {
        CHECK(dgot[i] == left * 1000 + dwant[i] + 0.5, "Get with a target indexed type: [%d] %g", i, dgot[i]);
        CHECK(dspread[2 * i] == right * 1000 + dwant[i] + 0.5 && dspread[2 * i + 1] == -1,
              "Get indexed into a vector: [%d] %g", i, dspread[2 * i]);
        ok = ok && dgot[i] == left * 1000 + dwant[i] + 0.5 && dspread[2 * i] == right * 1000 + dwant[i] + 0.5;
    }
    chk_say("datatypes: vector, indexed on either side, disp_unit 4 and 8: %d/%d ranks right", ranks_ok(ok), size);
    if (rank == 0) {
        char line[200];
        int n = 0;
        for (i = 0; i < 16; i++)
            n += snprintf(line + n, sizeof line - n, " %d", ibuf[i]);
        chk_say("datatypes: rank 0's ints:%s", line);
        chk_say("datatypes: rank 0 got doubles %.1f %.1f %.1f %.1f", dgot[0], dgot[1], dgot[2], dgot[3]);
    }
    MPI_Type_free(&ovec);
    MPI_Type_free(&tvec);
    MPI_Type_free(&tidx);
    MPI_Type_free(&dvec);
    CHECK_MPI(MPI_Win_free(&iwin));
    CHECK_MPI(MPI_Win_free(&dwin));
    free(ibuf);
    free(dbuf);
}

/* 3. transfers above an eager limit */
#define BIG (1 << 20)
static unsigned char pattern(int owner, size_t i)
{
    return (unsigned char)(owner * 37 + i * 7 + (i >> 12));
}

static void large_transfers(void)
{
    unsigned char *base, *out = malloc(BIG), *in = malloc(BIG), *strided = malloc(BIG / 2);
    size_t i, bad_put = 0, bad_get = 0, bad_strided = 0;
    MPI_Datatype every_other4;
    MPI_Win win;
    CHECK_MPI(MPI_Win_allocate(2 * BIG, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &base, &win));
    window_attrs("large: Win_allocate", win, MPI_COMM_WORLD, base, 2 * BIG, 1, MPI_WIN_FLAVOR_ALLOCATE);
    for (i = 0; i < BIG; i++) {
        base[i] = 0;
        base[BIG + i] = pattern(rank, i);
        out[i] = pattern(rank + 50, i);
        in[i] = 0;
    }
    memset(strided, 0, BIG / 2);
    MPI_Type_vector(BIG / 8, 4, 8, MPI_BYTE, &every_other4); /* 512 KiB out of 1 MiB */
    MPI_Type_commit(&every_other4);
    CHECK_MPI(MPI_Win_fence(MPI_MODE_NOPRECEDE, win));
    CHECK_MPI(MPI_Put(out, BIG, MPI_BYTE, right, 0, BIG, MPI_BYTE, win));
    CHECK_MPI(MPI_Get(in, BIG, MPI_BYTE, left, BIG, BIG, MPI_BYTE, win));
    CHECK_MPI(MPI_Get(strided, BIG / 2, MPI_BYTE, right, BIG, 1, every_other4, win));
    CHECK_MPI(MPI_Win_fence(MPI_MODE_NOSUCCEED, win));
    for (i = 0; i < BIG; i++) {
        bad_put += base[i] != pattern(left + 50, i);
        bad_get += in[i] != pattern(left, i);
    }
    for (i = 0; i < BIG / 2; i++)
        bad_strided += strided[i] != pattern(right, i / 4 * 8 + i % 4);
    CHECK(bad_put == 0 && bad_get == 0 && bad_strided == 0, "1 MiB: %lu bad bytes put, %lu got, %lu strided",
          (unsigned long)bad_put, (unsigned long)bad_get, (unsigned long)bad_strided);
    chk_say("large: 1 MiB Put, 1 MiB Get, 512 KiB strided Get checked byte by byte: %d/%d ranks right",
            ranks_ok(bad_put == 0 && bad_get == 0 && bad_strided == 0), size);
    MPI_Type_free(&every_other4);
    CHECK_MPI(MPI_Win_free(&win));
    free(out);
    free(in);
    free(strided);
}

/* 4. post/start/complete/wait */
static void pscw(void)
{
    int *buf = ints(2, 0), v = rank * 10 + 7, got = -1, inc = rank + 1, flag = 0, zero = 0, ok;
    MPI_Group world, lg, rg, zg;
    MPI_Win win;
    MPI_Comm_group(MPI_COMM_WORLD, &world);
    MPI_Group_incl(world, 1, &left, &lg);   /* who accesses my window */
    MPI_Group_incl(world, 1, &right, &rg);  /* whose window I access */
    MPI_Group_incl(world, 1, &zero, &zg);
    buf[0] = -1;
    CHECK_MPI(MPI_Win_create(buf, 2 * sizeof(int), sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &win));

    CHECK_MPI(MPI_Win_post(lg, 0, win));
    CHECK_MPI(MPI_Win_start(rg, 0, win));
    CHECK_MPI(MPI_Put(&v, 1, MPI_INT, right, 0, 1, MPI_INT, win));
    CHECK_MPI(MPI_Win_complete(win));
    CHECK_MPI(MPI_Win_wait(win));
    ok = buf[0] == left * 10 + 7;
    CHECK(ok, "PSCW Put from the left: %d", buf[0]);

    /* Get back what I put, Win_test polled until the left neighbor completed */
    CHECK_MPI(MPI_Win_post(lg, 0, win));
    CHECK_MPI(MPI_Win_start(rg, 0, win));
    CHECK_MPI(MPI_Get(&got, 1, MPI_INT, right, 0, 1, MPI_INT, win));
    CHECK_MPI(MPI_Win_complete(win));
    while (!flag)
        CHECK_MPI(MPI_Win_test(win, &flag));
    CHECK(got == v, "PSCW Get from the right: %d", got);
    ok = ok && got == v;
    chk_say("pscw: ring Put then Get (Win_test polled): %d/%d ranks right", ranks_ok(ok), size);

    /* rank 0 exposed to every rank, accumulates from all */
    if (rank == 0)
        CHECK_MPI(MPI_Win_post(world, 0, win));
    CHECK_MPI(MPI_Win_start(zg, 0, win));
    CHECK_MPI(MPI_Accumulate(&inc, 1, MPI_INT, 0, 1, 1, MPI_INT, MPI_SUM, win));
    CHECK_MPI(MPI_Win_complete(win));
    if (rank == 0) {
        CHECK_MPI(MPI_Win_wait(win));
        CHECK_EQ_INT(buf[1], size * (size + 1) / 2, "PSCW accumulate into rank 0");
    }
    chk_say("pscw: rank 0 exposed to all, Accumulate SUM: %d", buf[1]);
    CHECK_MPI(MPI_Win_free(&win));
    MPI_Group_free(&lg);
    MPI_Group_free(&rg);
    MPI_Group_free(&zg);
    MPI_Group_free(&world);
    free(buf);
}

/* 7. dynamic windows */
static void dynamic_window(void)
{
    int *mem, *second = ints(4, 0), src[4], got[4], i, ok, one = 1;
    MPI_Aint addr[2], *all = malloc(2 * sizeof(MPI_Aint) * size);
    MPI_Win win;
    CHECK_MPI(MPI_Win_create_dynamic(MPI_INFO_NULL, MPI_COMM_WORLD, &win));
    window_attrs("dynamic: Win_create_dynamic, base MPI_BOTTOM, size 0, disp_unit 1", win, MPI_COMM_WORLD, MPI_BOTTOM,
                 0, 1, MPI_WIN_FLAVOR_DYNAMIC);
    CHECK_MPI(MPI_Alloc_mem(8 * sizeof(int), MPI_INFO_NULL, &mem));
    for (i = 0; i < 4; i++) {
        mem[i] = -1;                 /* Put by the left neighbor */
        mem[4 + i] = rank * 10 + i;  /* Get by the right neighbor */
        src[i] = rank * 100 + i;
    }
    CHECK_MPI(MPI_Win_attach(win, mem, 8 * sizeof(int)));
    CHECK_MPI(MPI_Win_attach(win, second, 4 * sizeof(int)));
    MPI_Get_address(mem, &addr[0]);
    MPI_Get_address(second, &addr[1]);
    MPI_Allgather(addr, 2, MPI_AINT, all, 2, MPI_AINT, MPI_COMM_WORLD);
    CHECK_MPI(MPI_Win_fence(0, win));
    CHECK_MPI(MPI_Put(src, 4, MPI_INT, right, all[2 * right], 4, MPI_INT, win));
    CHECK_MPI(MPI_Get(got, 4, MPI_INT, left, MPI_Aint_add(all[2 * left], 4 * sizeof(int)), 4, MPI_INT, win));
    CHECK_MPI(MPI_Accumulate(&one, 1, MPI_INT, 0, MPI_Aint_add(all[1], sizeof(int)), 1, MPI_INT, MPI_SUM, win));
    CHECK_MPI(MPI_Win_fence(0, win));
    for (i = 0, ok = 1; i < 4; i++)
        ok = ok && mem[i] == left * 100 + i && got[i] == left * 10 + i;
    CHECK(ok, "dynamic window Put/Get");
    chk_say("dynamic: Put and Get at the neighbors' attached addresses: %d/%d ranks right", ranks_ok(ok), size);
    if (rank == 0)
        CHECK_EQ_INT(second[1], size, "Accumulate into the second region");
    chk_say("dynamic: Accumulate into rank 0's second region: %d", second[1]);
    CHECK_MPI(MPI_Win_detach(win, second));
    CHECK_MPI(MPI_Win_detach(win, mem));
    CHECK_MPI(MPI_Win_free(&win));
    CHECK_MPI(MPI_Free_mem(mem));
    free(second);
    free(all);
}

/* 8. attributes, group, name, error handler (every section checks its windows' attributes too) */
static void attributes(void)
{
    int flag, len, rc, cls, v = 1, ok[3], n[3];
    double *abuf, d = 1.5;
    char name[MPI_MAX_OBJECT_NAME];
    MPI_Errhandler eh;
    MPI_Win wa;
    CHECK_MPI(MPI_Win_allocate((rank + 1) * 4 * sizeof(double), sizeof(double), MPI_INFO_NULL, MPI_COMM_WORLD, &abuf,
                               &wa));
    window_attrs("attributes: Win_allocate, sizes differing by rank", wa, MPI_COMM_WORLD, abuf,
                 (rank + 1) * 4 * sizeof(double), sizeof(double), MPI_WIN_FLAVOR_ALLOCATE);
    for (flag = 0; flag < (rank + 1) * 4; flag++)
        abuf[flag] = -1;

    MPI_Win_get_name(wa, name, &len);
    chk_say("attributes: a new window's name: '%s' (%d)", name, len);
    MPI_Win_set_name(wa, "halo window");
    MPI_Win_get_name(wa, name, &len);
    chk_say("attributes: named: '%s' (%d)", name, len);

    MPI_Win_get_errhandler(wa, &eh);
    chk_say("attributes: default error handler %s",
            eh == MPI_ERRORS_ARE_FATAL ? "MPI_ERRORS_ARE_FATAL" : "another");
    MPI_Errhandler_free(&eh);
    MPI_Win_set_errhandler(wa, MPI_ERRORS_RETURN);
    MPI_Win_get_errhandler(wa, &eh);
    CHECK(eh == MPI_ERRORS_RETURN, "Win_get_errhandler after set");
    MPI_Errhandler_free(&eh);
    CHECK_MPI(MPI_Win_fence(0, wa));
    rc = MPI_Put(&v, 1, MPI_INT, size, 0, 1, MPI_INT, wa);
    cls = -1;
    if (rc != MPI_SUCCESS)
        MPI_Error_class(rc, &cls);
    CHECK(cls == MPI_ERR_RANK, "Put to rank == size in a fence epoch: rc %d class %d", rc, cls);
    CHECK_MPI(MPI_Put(&d, 1, MPI_DOUBLE, right, 1, 1, MPI_DOUBLE, wa));
    CHECK_MPI(MPI_Win_fence(0, wa));
    CHECK(abuf[1] == 1.5, "a valid Put after the error: %g", abuf[1]);
    ok[0] = cls == MPI_ERR_RANK;
    ok[1] = abuf[1] == 1.5;
    CHECK_MPI(MPI_Win_lock_all(0, wa));
    rc = MPI_Get(&v, 1, MPI_INT, size + 2, 0, 1, MPI_INT, wa);
    cls = -1;
    if (rc != MPI_SUCCESS)
        MPI_Error_class(rc, &cls);
    CHECK(cls == MPI_ERR_RANK, "Get from rank size+2 in a lock_all epoch: rc %d class %d", rc, cls);
    CHECK_MPI(MPI_Win_unlock_all(wa));
    ok[2] = cls == MPI_ERR_RANK;
    ranks_ok_n(ok, n, 3);
    chk_say("attributes: MPI_ERRORS_RETURN, Put to rank == size in a fence epoch: %s; a valid Put after it: %s",
            n[0] == size ? "MPI_ERR_RANK" : "another", n[1] == size ? "ok" : "lost");
    chk_say("attributes: Get from rank size+2 in a lock_all epoch: %s", n[2] == size ? "MPI_ERR_RANK" : "another");
    CHECK_MPI(MPI_Win_free(&wa));
}

/* 9. windows on a split communicator, on MPI_COMM_SELF, on the world, and a zero-size window */
static void several_windows(void)
{
    int *hbuf = ints(2, -1), *sbuf = ints(2, -1), *wbuf = ints(2, -1), *zbuf = ints(4, 0), ok[3], n[3], t;
    int hrank, hsize, hleft, hright, inc = rank + 1, one = 1, members[4], wanted[4], i;
    MPI_Comm half;
    MPI_Group hg, wg;
    MPI_Win wh, ws, ww, wz;
    MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &half);
    MPI_Comm_rank(half, &hrank);
    MPI_Comm_size(half, &hsize);
    hleft = (hrank + hsize - 1) % hsize;
    hright = (hrank + 1) % hsize;
    CHECK_MPI(MPI_Win_create(hbuf, 2 * sizeof(int), sizeof(int), MPI_INFO_NULL, half, &wh));
    CHECK_MPI(MPI_Win_create(sbuf, 2 * sizeof(int), sizeof(int), MPI_INFO_NULL, MPI_COMM_SELF, &ws));
    CHECK_MPI(MPI_Win_create(wbuf, 2 * sizeof(int), sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &ww));
    if (rank % 2)
        CHECK_MPI(MPI_Win_create(NULL, 0, sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &wz));
    else
        CHECK_MPI(MPI_Win_create(zbuf, 4 * sizeof(int), sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &wz));

    CHECK_MPI(MPI_Win_fence(MPI_MODE_NOPRECEDE, wh));
    CHECK_MPI(MPI_Win_fence(MPI_MODE_NOPRECEDE, ws));
    CHECK_MPI(MPI_Win_fence(MPI_MODE_NOPRECEDE, ww));
    CHECK_MPI(MPI_Win_fence(MPI_MODE_NOPRECEDE, wz));
    CHECK_MPI(MPI_Put(&rank, 1, MPI_INT, hright, 0, 1, MPI_INT, wh));
    CHECK_MPI(MPI_Put(&hrank, 1, MPI_INT, hright, 1, 1, MPI_INT, wh));
    CHECK_MPI(MPI_Put(&rank, 1, MPI_INT, 0, 0, 1, MPI_INT, ws));
    CHECK_MPI(MPI_Accumulate(&one, 1, MPI_INT, 0, 1, 1, MPI_INT, MPI_SUM, ws));
    CHECK_MPI(MPI_Put(&rank, 1, MPI_INT, right, 0, 1, MPI_INT, ww));
    CHECK_MPI(MPI_Put(&hrank, 1, MPI_INT, right, 1, 1, MPI_INT, ww));
    for (t = 0; t < size; t += 2)
        CHECK_MPI(MPI_Accumulate(&inc, 1, MPI_INT, t, 0, 1, MPI_INT, MPI_SUM, wz));
    CHECK_MPI(MPI_Win_fence(MPI_MODE_NOSUCCEED, wz));
    CHECK_MPI(MPI_Win_fence(MPI_MODE_NOSUCCEED, ww));
    CHECK_MPI(MPI_Win_fence(MPI_MODE_NOSUCCEED, ws));
    CHECK_MPI(MPI_Win_fence(MPI_MODE_NOSUCCEED, wh));

    ok[0] = hbuf[0] == hleft * 2 + rank % 2 && hbuf[1] == hleft && sbuf[0] == rank && sbuf[1] == -1 + 1 &&
            wbuf[0] == left && wbuf[1] == left / 2;
    CHECK(ok[0], "split/self/world windows: %d %d, %d %d, %d %d", hbuf[0], hbuf[1], sbuf[0], sbuf[1], wbuf[0],
          wbuf[1]);
    chk_say("windows at once: rank 0's half window got world rank %d (half rank %d), its self window %d, its world "
            "window world rank %d",
            hbuf[0], hbuf[1], sbuf[0], wbuf[0]);

    MPI_Win_get_group(wh, &hg);
    MPI_Comm_group(MPI_COMM_WORLD, &wg);
    window_attrs("windows at once: on the half", wh, half, hbuf, 2 * sizeof(int), sizeof(int), MPI_WIN_FLAVOR_CREATE);
    window_attrs("windows at once: on MPI_COMM_SELF", ws, MPI_COMM_SELF, sbuf, 2 * sizeof(int), sizeof(int),
                 MPI_WIN_FLAVOR_CREATE);
    window_attrs("windows at once: size 0 on odd ranks", wz, MPI_COMM_WORLD, rank % 2 ? NULL : zbuf,
                 rank % 2 ? 0 : 4 * sizeof(int), sizeof(int), MPI_WIN_FLAVOR_CREATE);
    for (i = 0; i < 4; i++)
        members[i] = i < hsize ? i : 0;
    MPI_Group_translate_ranks(hg, hsize < 4 ? hsize : 4, members, wg, wanted);
    for (i = 0, ok[1] = 1; i < hsize && i < 4; i++)
        ok[1] = ok[1] && wanted[i] == 2 * i + rank % 2;
    CHECK(ok[1], "half window's group");
    MPI_Group_free(&hg);
    MPI_Group_free(&wg);
    ok[2] = rank % 2 || zbuf[0] == size * (size + 1) / 2;
    CHECK(ok[2], "Accumulate into the even ranks of the window of size 0 on odd ranks: %d", zbuf[0]);
    ranks_ok_n(ok, n, 3);
    chk_say("windows at once: split, self, world: %d/%d ranks right", n[0], size);
    chk_say("windows at once: the half window's group is the even or odd world ranks: %d/%d ranks", n[1], size);
    chk_say("windows at once: Accumulate into the even ranks of the window of size 0 on odd ranks: %d; %d/%d ranks "
            "right",
            zbuf[0], n[2], size);
    CHECK_MPI(MPI_Win_free(&wz));
    CHECK_MPI(MPI_Win_free(&ww));
    CHECK_MPI(MPI_Win_free(&ws));
    CHECK_MPI(MPI_Win_free(&wh));
    MPI_Comm_free(&half);
    free(hbuf);
    free(sbuf);
    free(wbuf);
    free(zbuf);
}

int main(int argc, char **argv)
{
    chk_init(&argc, &argv, &rank, &size);
    left = (rank + size - 1) % size;
    right = (rank + 1) % size;
    chk_say("rma: started on %d ranks", size);
    fence_epochs();
    derived_types();
    large_transfers();
    pscw();
    dynamic_window();
    attributes();
    several_windows();
    return chk_finish();
}
