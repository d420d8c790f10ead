/* ranks: 1-8 */
/*
 * Attribute caching on windows and datatypes (MPI 3.1 sections 6.7.3 and
 * 6.7.4); communicator attributes are in attributes.c. Every callback counts
 * its calls in a struct its keyval's extra_state points at, checks the keyval
 * it is given and queries the object it is given (so a delete callback run by
 * Win_free or Type_free sees the object still there).
 * 1. Windows (one from Win_create over a malloc'd buffer, one from
 *    Win_allocate): Win_create_keyval with a copy callback (never called: no
 *    window dup) and a delete callback; Win_get_attr before a set (flag 0), on
 *    the other window only (flag 0); Win_set_attr/get_attr, a value per
 *    window; setting again deletes the old value; Win_delete_attr; keyvals
 *    made with MPI_WIN_DUP_FN, MPI_WIN_NULL_COPY_FN and MPI_WIN_NULL_DELETE_FN;
 *    the predefined MPI_WIN_BASE (the base given), MPI_WIN_SIZE and
 *    MPI_WIN_DISP_UNIT next to user attributes; Win_free_keyval of a keyval in
 *    use (MPI_KEYVAL_INVALID; the values stay, readable and deletable through
 *    the old number); a delete callback returning an error makes
 *    Win_delete_attr return one (MPI_ERRORS_RETURN on the window); Win_free
 *    calling the delete callbacks of what is left, once each.
 * 2. Datatypes (Type_contiguous of 3 MPI_INT, committed): Type_create_keyval,
 *    Type_set_attr/get_attr (replacing deletes), Type_dup through a copy
 *    callback (a new int one larger), MPI_TYPE_DUP_FN (the same pointer) and
 *    MPI_TYPE_NULL_COPY_FN (not copied), a dup of the dup, Type_delete_attr,
 *    Type_free_keyval in use, Type_free of each type calling the delete
 *    callbacks of what it still holds (the dups freed first); attributes on
 *    the predefined MPI_INT (set, get, replace, copied by Type_dup, delete).
 * 3. A window keyval, a datatype keyval and a communicator keyval used at the
 *    same time: the values on a window, a datatype and MPI_COMM_WORLD read back
 *    independently, also after the others are deleted.
 */
#include "check.h"

/* what one keyval's callbacks saw */
struct counter {
    int keyval;       /* as created (the callbacks check they are given it) */
    int copies;       /* copy callback calls */
    int deletes;      /* delete callback calls */
    int last_deleted; /* the int the last deleted value pointed at */
    int owns;         /* the values are malloc'd ints the delete callback frees */
    int fail;         /* the delete callback returns MPI_ERR_OTHER (and keeps the value) */
    int wrong_keyval; /* calls given another keyval */
    int object_gone;  /* delete calls that could not query their object */
};

static int rank, size;

static int *new_int(int v)
{
    int *p = malloc(sizeof *p);
    *p = v;
    return p;
}

/* windows: never called (there is no window dup) */
static int win_copy_counted(MPI_Win win, int keyval, void *extra, void *in, void *out, int *flag)
{
    struct counter *c = extra;
    (void)win, (void)in, (void)out;
    c->copies++;
    if (keyval != c->keyval)
        c->wrong_keyval++;
    *flag = 0;
    return MPI_SUCCESS;
}

static int win_delete_counted(MPI_Win win, int keyval, void *value, void *extra)
{
    struct counter *c = extra;
    int flag = 0, *du = NULL;
    c->deletes++;
    if (keyval != c->keyval)
        c->wrong_keyval++;
    MPI_Win_get_attr(win, MPI_WIN_DISP_UNIT, &du, &flag);
    if (!flag || (*du != 4 && *du != 8))
        c->object_gone++;
    c->last_deleted = *(int *)value;
    if (c->fail)
        return MPI_ERR_OTHER;
    if (c->owns)
        free(value);
    return MPI_SUCCESS;
}

/* datatypes: copies a pointer to an int as a new int one larger */
static int type_copy_plus_one(MPI_Datatype type, int keyval, void *extra, void *in, void *out, int *flag)
{
    struct counter *c = extra;
    (void)type;
    c->copies++;
    if (keyval != c->keyval)
        c->wrong_keyval++;
    *(void **)out = new_int(*(int *)in + 1);
    *flag = 1;
    return MPI_SUCCESS;
}

/* the types here are 3 MPI_INT (12 bytes) or MPI_INT */
static int type_delete_counted(MPI_Datatype type, int keyval, void *value, void *extra)
{
    struct counter *c = extra;
    int bytes = -1;
    c->deletes++;
    if (keyval != c->keyval)
        c->wrong_keyval++;
    if (MPI_Type_size(type, &bytes) != MPI_SUCCESS || (bytes != 12 && bytes != 4))
        c->object_gone++;
    c->last_deleted = *(int *)value;
    if (c->owns)
        free(value);
    return MPI_SUCCESS;
}

/* the int an attribute points at less this rank (-1 when not set) */
static int win_value(MPI_Win win, int keyval)
{
    int flag = 0;
    void *v = NULL;
    CHECK_MPI(MPI_Win_get_attr(win, keyval, &v, &flag));
    return flag ? *(int *)v - rank : -1;
}

static int type_value(MPI_Datatype type, int keyval)
{
    int flag = 0;
    void *v = NULL;
    CHECK_MPI(MPI_Type_get_attr(type, keyval, &v, &flag));
    return flag ? *(int *)v - rank : -1;
}

/* 1. windows */
static void windows(void)
{
    struct counter ca = { 0 }, cb = { 0 }, cf = { 0 };
    int kv_a, kv_b, kv_fail, kv_dup, kv_null, saved_a, saved_b, flag, rc, *ip, ok, du;
    long bytes;
    int plain = 5, plain2 = 6, fail_value = 77;
    int *buf = malloc(8 * sizeof(int));
    double *abase = NULL;
    void *v, *bp;
    MPI_Aint *ap;
    MPI_Win wc, wal;

    ca.owns = cb.owns = 1;
    CHECK_MPI(MPI_Win_create_keyval(win_copy_counted, win_delete_counted, &kv_a, &ca));
    CHECK_MPI(MPI_Win_create_keyval(win_copy_counted, win_delete_counted, &kv_b, &cb));
    CHECK_MPI(MPI_Win_create_keyval(win_copy_counted, win_delete_counted, &kv_fail, &cf));
    CHECK_MPI(MPI_Win_create_keyval(MPI_WIN_DUP_FN, MPI_WIN_NULL_DELETE_FN, &kv_dup, NULL));
    CHECK_MPI(MPI_Win_create_keyval(MPI_WIN_NULL_COPY_FN, MPI_WIN_NULL_DELETE_FN, &kv_null, NULL));
    ca.keyval = kv_a;
    cb.keyval = kv_b;
    cf.keyval = kv_fail;
    CHECK(kv_a != MPI_KEYVAL_INVALID && kv_b != kv_a && kv_fail != kv_a && kv_fail != kv_b,
          "Win_create_keyval gives distinct keyvals");

    CHECK_MPI(MPI_Win_create(buf, 8 * sizeof(int), sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &wc));
    CHECK_MPI(MPI_Win_allocate(8 * sizeof(double), sizeof(double), MPI_INFO_NULL, MPI_COMM_WORLD, &abase, &wal));

    CHECK_EQ_INT(win_value(wc, kv_a), -1, "Win_create window, keyval a before a set");
    CHECK_EQ_INT(win_value(wal, kv_a), -1, "Win_allocate window, keyval a before a set");
    chk_say("windows: a keyval never set: flag 0 on the Win_create and the Win_allocate window");

    CHECK_MPI(MPI_Win_set_attr(wc, kv_a, new_int(100 + rank)));
    CHECK_MPI(MPI_Win_set_attr(wal, kv_a, new_int(300 + rank)));
    CHECK_MPI(MPI_Win_set_attr(wc, kv_b, new_int(400 + rank)));
    CHECK_EQ_INT(ca.deletes, 0, "keyval a deletes after the first sets");
    CHECK_MPI(MPI_Win_set_attr(wc, kv_a, new_int(200 + rank))); /* replaces 100 + rank: deleted */
    CHECK_EQ_INT(ca.deletes, 1, "keyval a deletes after replacing");
    CHECK_EQ_INT(ca.last_deleted - rank, 100, "the replaced value deleted");
    chk_say("windows: set again: %d delete call, of %d", ca.deletes, ca.last_deleted - rank);
    CHECK_EQ_INT(win_value(wc, kv_a), 200, "Win_create window, keyval a");
    CHECK_EQ_INT(win_value(wal, kv_a), 300, "Win_allocate window, keyval a");
    CHECK_EQ_INT(win_value(wc, kv_b), 400, "Win_create window, keyval b");
    CHECK_EQ_INT(win_value(wal, kv_b), -1, "Win_allocate window, keyval b set on the other window only");
    chk_say("windows: keyval a: %d on the Win_create window, %d on the Win_allocate one; keyval b: %d, and on the "
            "other window (never set there) flag %d",
            win_value(wc, kv_a), win_value(wal, kv_a), win_value(wc, kv_b), win_value(wal, kv_b) == -1 ? 0 : 1);

    CHECK_MPI(MPI_Win_set_attr(wc, kv_dup, &plain));
    CHECK_MPI(MPI_Win_set_attr(wc, kv_null, &plain2));
    CHECK_MPI(MPI_Win_get_attr(wc, kv_dup, &v, &flag));
    ok = flag && v == &plain;
    CHECK_MPI(MPI_Win_get_attr(wc, kv_null, &v, &flag));
    ok = ok && flag && v == &plain2;
    CHECK(ok, "MPI_WIN_DUP_FN and MPI_WIN_NULL_COPY_FN keyvals give the pointers set");
    chk_say("windows: keyvals of MPI_WIN_DUP_FN and MPI_WIN_NULL_COPY_FN with MPI_WIN_NULL_DELETE_FN: the pointers "
            "set %s",
            ok ? "read back" : "lost");

    /* the predefined attributes answer next to the user ones */
    CHECK_MPI(MPI_Win_get_attr(wc, MPI_WIN_BASE, &bp, &flag));
    CHECK(flag && bp == buf, "Win_create MPI_WIN_BASE");
    ok = flag && bp == buf;
    CHECK_MPI(MPI_Win_get_attr(wc, MPI_WIN_SIZE, &ap, &flag));
    bytes = flag ? (long)*ap : -1L;
    CHECK_EQ_INT(bytes, 8 * sizeof(int), "Win_create MPI_WIN_SIZE");
    CHECK_MPI(MPI_Win_get_attr(wc, MPI_WIN_DISP_UNIT, &ip, &flag));
    du = flag ? *ip : -1;
    CHECK_EQ_INT(du, sizeof(int), "Win_create MPI_WIN_DISP_UNIT");
    chk_say("windows: Win_create: MPI_WIN_BASE %s, MPI_WIN_SIZE %ld, MPI_WIN_DISP_UNIT %d", ok ? "same" : "different",
            bytes, du);
    CHECK_MPI(MPI_Win_get_attr(wal, MPI_WIN_BASE, &bp, &flag));
    CHECK(flag && bp == abase, "Win_allocate MPI_WIN_BASE");
    ok = flag && bp == abase;
    CHECK_MPI(MPI_Win_get_attr(wal, MPI_WIN_SIZE, &ap, &flag));
    bytes = flag ? (long)*ap : -1L;
    CHECK_EQ_INT(bytes, 8 * sizeof(double), "Win_allocate MPI_WIN_SIZE");
    CHECK_MPI(MPI_Win_get_attr(wal, MPI_WIN_DISP_UNIT, &ip, &flag));
    du = flag ? *ip : -1;
    CHECK_EQ_INT(du, sizeof(double), "Win_allocate MPI_WIN_DISP_UNIT");
    chk_say("windows: Win_allocate: MPI_WIN_BASE %s, MPI_WIN_SIZE %ld, MPI_WIN_DISP_UNIT %d",
            ok ? "same" : "different", bytes, du);

    CHECK_MPI(MPI_Win_delete_attr(wc, kv_b));
    CHECK_EQ_INT(cb.deletes, 1, "keyval b deletes after Win_delete_attr");
    CHECK_EQ_INT(cb.last_deleted - rank, 400, "keyval b deleted value");
    CHECK_EQ_INT(win_value(wc, kv_b), -1, "keyval b after Win_delete_attr");
    chk_say("windows: Win_delete_attr: %d delete call, of %d; then flag %d", cb.deletes, cb.last_deleted - rank,
            win_value(wc, kv_b) == -1 ? 0 : 1);
    CHECK_MPI(MPI_Win_delete_attr(wc, kv_null)); /* MPI_WIN_NULL_DELETE_FN */
    CHECK_MPI(MPI_Win_get_attr(wc, kv_null, &v, &flag));
    CHECK(!flag, "MPI_WIN_NULL_DELETE_FN attribute deleted");
    CHECK_MPI(MPI_Win_get_attr(wc, kv_dup, &v, &flag));
    CHECK(flag && v == &plain, "the other MPI_WIN_NULL_DELETE_FN attribute stays");

    /* freeing keyvals still in use: the values stay until deleted */
    CHECK_MPI(MPI_Win_set_attr(wal, kv_b, new_int(500 + rank)));
    saved_a = kv_a;
    saved_b = kv_b;
    CHECK_MPI(MPI_Win_free_keyval(&kv_a));
    CHECK_MPI(MPI_Win_free_keyval(&kv_b));
    CHECK(kv_a == MPI_KEYVAL_INVALID && kv_b == MPI_KEYVAL_INVALID, "Win_free_keyval sets MPI_KEYVAL_INVALID");
    CHECK_EQ_INT(ca.deletes + cb.deletes, 2, "no deletes by Win_free_keyval");
    CHECK_EQ_INT(win_value(wc, saved_a), 200, "keyval a freed, Win_create window");
    CHECK_EQ_INT(win_value(wal, saved_a), 300, "keyval a freed, Win_allocate window");
    CHECK_EQ_INT(win_value(wal, saved_b), 500, "keyval b freed, Win_allocate window");
    chk_say("windows: Win_free_keyval of keyvals in use: %s, no delete calls; the values still read %d, %d and %d",
            kv_a == MPI_KEYVAL_INVALID && kv_b == MPI_KEYVAL_INVALID ? "MPI_KEYVAL_INVALID" : "not invalid",
            win_value(wc, saved_a), win_value(wal, saved_a), win_value(wal, saved_b));
    CHECK_MPI(MPI_Win_delete_attr(wal, saved_a));
    CHECK_EQ_INT(ca.deletes, 2, "keyval a deletes after Win_delete_attr with the freed keyval");
    CHECK_EQ_INT(ca.last_deleted - rank, 300, "keyval a deleted value");
    CHECK_EQ_INT(win_value(wal, saved_a), -1, "keyval a deleted from the Win_allocate window");
    chk_say("windows: Win_delete_attr through the freed keyval: %d delete calls in all, the last of %d", ca.deletes,
            ca.last_deleted - rank);

    /* a delete callback returning an error: Win_delete_attr fails (whether the value stays is not specified) */
    CHECK_MPI(MPI_Win_set_errhandler(wal, MPI_ERRORS_RETURN));
    CHECK_MPI(MPI_Win_set_attr(wal, kv_fail, &fail_value));
    cf.fail = 1;
    rc = MPI_Win_delete_attr(wal, kv_fail);
    cf.fail = 0;
    CHECK(rc != MPI_SUCCESS, "Win_delete_attr with a delete callback returning MPI_ERR_OTHER returned MPI_SUCCESS");
    CHECK_EQ_INT(cf.deletes, 1, "failing delete callback calls");
    chk_say("windows: a delete callback returning an error: Win_delete_attr %s, %d delete call",
            rc != MPI_SUCCESS ? "returned an error" : "returned MPI_SUCCESS", cf.deletes);
    CHECK_MPI(MPI_Win_get_attr(wal, kv_fail, &v, &flag));
    if (flag)
        CHECK_MPI(MPI_Win_delete_attr(wal, kv_fail));
    CHECK_MPI(MPI_Win_get_attr(wal, kv_fail, &v, &flag));
    CHECK(!flag, "the value of the failing callback finally deleted");
    CHECK_MPI(MPI_Win_free_keyval(&kv_fail));

    /* Win_free deletes what is left: wc holds a (200) and the MPI_WIN_DUP_FN one, wal holds b (500) */
    CHECK_MPI(MPI_Win_free(&wc));
    CHECK(wc == MPI_WIN_NULL, "Win_free sets MPI_WIN_NULL");
    CHECK_EQ_INT(ca.deletes, 3, "keyval a deletes after freeing the Win_create window");
    CHECK_EQ_INT(ca.last_deleted - rank, 200, "keyval a value deleted by Win_free");
    CHECK_EQ_INT(cb.deletes, 1, "keyval b deletes after freeing the Win_create window");
    chk_say("windows: Win_free of the Win_create window: delete calls a %d (the last of %d), b %d", ca.deletes,
            ca.last_deleted - rank, cb.deletes);
    CHECK_MPI(MPI_Win_free(&wal));
    CHECK(wal == MPI_WIN_NULL, "Win_free sets MPI_WIN_NULL");
    CHECK_EQ_INT(ca.deletes, 3, "keyval a deletes after freeing the Win_allocate window");
    CHECK_EQ_INT(cb.deletes, 2, "keyval b deletes after freeing the Win_allocate window");
    CHECK_EQ_INT(cb.last_deleted - rank, 500, "keyval b value deleted by Win_free");
    chk_say("windows: Win_free of the Win_allocate window: delete calls a %d, b %d (the last of %d)", ca.deletes,
            cb.deletes, cb.last_deleted - rank);

    CHECK_EQ_INT(ca.copies + cb.copies + cf.copies, 0, "window copy callback calls");
    CHECK_EQ_INT(ca.wrong_keyval + cb.wrong_keyval + cf.wrong_keyval, 0, "window callbacks given another keyval");
    CHECK_EQ_INT(ca.object_gone + cb.object_gone + cf.object_gone, 0, "window delete callbacks without a window");
    chk_say("windows: copy callback calls %d; delete callbacks given the wrong keyval %d, not seeing their window %d",
            ca.copies + cb.copies + cf.copies, ca.wrong_keyval + cb.wrong_keyval + cf.wrong_keyval,
            ca.object_gone + cb.object_gone + cf.object_gone);
    CHECK_MPI(MPI_Win_free_keyval(&kv_dup));
    CHECK_MPI(MPI_Win_free_keyval(&kv_null));
    free(buf);
}

/* 2. datatypes */
static void datatypes(void)
{
    struct counter cc = { 0 }, cd = { 0 }, cn = { 0 }, cp = { 0 };
    int kv, kv_dup, kv_none, kv_pre, saved, flag, bytes, ok, unset, first, plain = 5, plain2 = 6;
    void *v;
    MPI_Datatype t, t2, t3, idup;

    cc.owns = cp.owns = 1;
    CHECK_MPI(MPI_Type_create_keyval(type_copy_plus_one, type_delete_counted, &kv, &cc));
    CHECK_MPI(MPI_Type_create_keyval(MPI_TYPE_DUP_FN, type_delete_counted, &kv_dup, &cd));
    CHECK_MPI(MPI_Type_create_keyval(MPI_TYPE_NULL_COPY_FN, type_delete_counted, &kv_none, &cn));
    cc.keyval = kv;
    cd.keyval = kv_dup;
    cn.keyval = kv_none;

    CHECK_MPI(MPI_Type_contiguous(3, MPI_INT, &t));
    CHECK_MPI(MPI_Type_commit(&t));
    unset = type_value(t, kv);
    CHECK_EQ_INT(unset, -1, "before a set");
    CHECK_MPI(MPI_Type_set_attr(t, kv, new_int(10 + rank)));
    first = type_value(t, kv);
    CHECK_EQ_INT(first, 10, "after the set");
    CHECK_MPI(MPI_Type_set_attr(t, kv, new_int(20 + rank))); /* replaces 10 + rank: deleted */
    CHECK_EQ_INT(cc.deletes, 1, "deletes after replacing");
    CHECK_EQ_INT(cc.last_deleted - rank, 10, "the replaced value deleted");
    CHECK_EQ_INT(type_value(t, kv), 20, "after replacing");
    chk_say("datatypes: a keyval never set: flag %d; set: %d; set again: %d delete call, of %d; now %d",
            unset == -1 ? 0 : 1, first, cc.deletes, cc.last_deleted - rank, type_value(t, kv));
    CHECK_MPI(MPI_Type_set_attr(t, kv_dup, &plain));
    CHECK_MPI(MPI_Type_set_attr(t, kv_none, &plain2));

    CHECK_MPI(MPI_Type_dup(t, &t2));
    CHECK_EQ_INT(cc.copies, 1, "copy callback calls after Type_dup");
    CHECK_EQ_INT(type_value(t2, kv), 21, "copied through the callback");
    CHECK_EQ_INT(type_value(t, kv), 20, "the original after Type_dup");
    CHECK_MPI(MPI_Type_size(t2, &bytes));
    CHECK_EQ_INT(bytes, 12, "Type_size of the dup");
    chk_say("datatypes: Type_dup: %d copy call; through the copy callback %d (the original still %d)", cc.copies,
            type_value(t2, kv), type_value(t, kv));
    CHECK_MPI(MPI_Type_get_attr(t2, kv_dup, &v, &flag));
    ok = flag && v == &plain;
    CHECK(ok, "MPI_TYPE_DUP_FN copies the pointer");
    chk_say("datatypes: Type_dup: MPI_TYPE_DUP_FN value %s, the same pointer %s", flag ? "present" : "absent",
            ok ? "yes" : "no");
    CHECK_MPI(MPI_Type_get_attr(t2, kv_none, &v, &flag));
    CHECK(!flag, "MPI_TYPE_NULL_COPY_FN does not copy");
    chk_say("datatypes: Type_dup: MPI_TYPE_NULL_COPY_FN value %s", flag ? "present" : "absent");
    CHECK_EQ_INT(cd.copies + cn.copies, 0, "no counted copies for the predefined copy functions");

    CHECK_MPI(MPI_Type_dup(t2, &t3)); /* a dup of the dup */
    CHECK_EQ_INT(cc.copies, 2, "copy callback calls after the second Type_dup");
    CHECK_EQ_INT(type_value(t3, kv), 22, "the dup of the dup");
    CHECK_MPI(MPI_Type_get_attr(t3, kv_dup, &v, &flag));
    CHECK(flag && v == &plain, "MPI_TYPE_DUP_FN in the dup of the dup");
    chk_say("datatypes: dup of the dup: %d copy calls, value %d", cc.copies, type_value(t3, kv));

    CHECK_MPI(MPI_Type_delete_attr(t2, kv));
    CHECK_EQ_INT(cc.deletes, 2, "deletes after Type_delete_attr");
    CHECK_EQ_INT(cc.last_deleted - rank, 21, "the value deleted by Type_delete_attr");
    CHECK_EQ_INT(type_value(t2, kv), -1, "after Type_delete_attr");
    CHECK_EQ_INT(type_value(t, kv), 20, "the original after deleting from the dup");
    chk_say("datatypes: Type_delete_attr on the dup: %d delete calls, the last of %d; then flag %d; the original "
            "still %d",
            cc.deletes, cc.last_deleted - rank, type_value(t2, kv) == -1 ? 0 : 1, type_value(t, kv));

    saved = kv;
    CHECK_MPI(MPI_Type_free_keyval(&kv)); /* still used by t and t3: their values stay */
    CHECK(kv == MPI_KEYVAL_INVALID, "Type_free_keyval sets MPI_KEYVAL_INVALID");
    CHECK_EQ_INT(cc.deletes, 2, "no deletes by Type_free_keyval");
    CHECK_EQ_INT(type_value(t, saved), 20, "the original after Type_free_keyval");
    CHECK_EQ_INT(type_value(t3, saved), 22, "the dup of the dup after Type_free_keyval");
    chk_say("datatypes: Type_free_keyval in use: %s; the values still read %d and %d",
            kv == MPI_KEYVAL_INVALID ? "MPI_KEYVAL_INVALID" : "not invalid", type_value(t, saved),
            type_value(t3, saved));

    /* Type_free deletes what each holds: t3 the copy (22) and DUP_FN's, t2 DUP_FN's, t the original (20), DUP_FN's
     * and NULL_COPY_FN's. The dups go first: MPICH 4.0.2 defers deleting the attributes of a freed type while a
     * Type_dup of it lives. */
    CHECK_MPI(MPI_Type_free(&t3));
    CHECK(t3 == MPI_DATATYPE_NULL, "Type_free sets MPI_DATATYPE_NULL");
    CHECK_EQ_INT(cc.deletes, 3, "copy-callback keyval deletes after freeing the dup of the dup");
    CHECK_EQ_INT(cc.last_deleted - rank, 22, "the value deleted by Type_free");
    CHECK_EQ_INT(cd.deletes, 1, "MPI_TYPE_DUP_FN keyval deletes after freeing the dup of the dup");
    CHECK_EQ_INT(cn.deletes, 0, "MPI_TYPE_NULL_COPY_FN keyval deletes after freeing the dup of the dup");
    chk_say("datatypes: Type_free of the dup of the dup: delete calls %d (the last of %d), MPI_TYPE_DUP_FN %d, "
            "MPI_TYPE_NULL_COPY_FN %d",
            cc.deletes, cc.last_deleted - rank, cd.deletes, cn.deletes);
    CHECK_MPI(MPI_Type_free(&t2));
    CHECK_EQ_INT(cc.deletes, 3, "copy-callback keyval deletes after freeing the dup");
    CHECK_EQ_INT(cd.deletes, 2, "MPI_TYPE_DUP_FN keyval deletes after freeing the dup");
    CHECK_EQ_INT(cn.deletes, 0, "MPI_TYPE_NULL_COPY_FN keyval deletes after freeing the dup");
    chk_say("datatypes: Type_free of the dup: delete calls %d, MPI_TYPE_DUP_FN %d, MPI_TYPE_NULL_COPY_FN %d",
            cc.deletes, cd.deletes, cn.deletes);
    CHECK_MPI(MPI_Type_free(&t));
    CHECK_EQ_INT(cc.deletes, 4, "copy-callback keyval deletes after freeing the original");
    CHECK_EQ_INT(cc.last_deleted - rank, 20, "the original's value deleted by Type_free");
    CHECK_EQ_INT(cd.deletes, 3, "MPI_TYPE_DUP_FN keyval deletes after freeing the original");
    CHECK_EQ_INT(cn.deletes, 1, "MPI_TYPE_NULL_COPY_FN keyval deletes after freeing the original");
    chk_say("datatypes: Type_free of the original: delete calls %d (the last of %d), MPI_TYPE_DUP_FN %d, "
            "MPI_TYPE_NULL_COPY_FN %d",
            cc.deletes, cc.last_deleted - rank, cd.deletes, cn.deletes);
    CHECK_MPI(MPI_Type_free_keyval(&kv_dup));
    CHECK_MPI(MPI_Type_free_keyval(&kv_none));

    /* a predefined datatype caches attributes too (never freed) */
    CHECK_MPI(MPI_Type_create_keyval(type_copy_plus_one, type_delete_counted, &kv_pre, &cp));
    cp.keyval = kv_pre;
    unset = type_value(MPI_INT, kv_pre);
    CHECK_EQ_INT(unset, -1, "MPI_INT before a set");
    CHECK_MPI(MPI_Type_set_attr(MPI_INT, kv_pre, new_int(30 + rank)));
    first = type_value(MPI_INT, kv_pre);
    CHECK_EQ_INT(first, 30, "MPI_INT after the set");
    CHECK_MPI(MPI_Type_set_attr(MPI_INT, kv_pre, new_int(40 + rank)));
    CHECK_EQ_INT(cp.deletes, 1, "MPI_INT deletes after replacing");
    CHECK_EQ_INT(cp.last_deleted - rank, 30, "MPI_INT replaced value deleted");
    CHECK_EQ_INT(type_value(MPI_INT, kv_pre), 40, "MPI_INT after replacing");
    chk_say("datatypes: MPI_INT: never set: flag %d; set %d, set again %d: %d delete call, of %d",
            unset == -1 ? 0 : 1, first, type_value(MPI_INT, kv_pre),
            cp.deletes, cp.last_deleted - rank);
    CHECK_MPI(MPI_Type_dup(MPI_INT, &idup));
    CHECK_EQ_INT(cp.copies, 1, "copy calls after Type_dup of MPI_INT");
    first = type_value(idup, kv_pre);
    CHECK_EQ_INT(first, 41, "the dup of MPI_INT");
    CHECK_EQ_INT(type_value(MPI_INT, kv_pre), 40, "MPI_INT after Type_dup");
    CHECK_MPI(MPI_Type_free(&idup));
    CHECK_EQ_INT(cp.deletes, 2, "deletes after freeing the dup of MPI_INT");
    CHECK_EQ_INT(cp.last_deleted - rank, 41, "the dup's value deleted");
    chk_say("datatypes: Type_dup of MPI_INT: %d copy call, value %d; Type_free of it: %d delete calls, the last of %d",
            cp.copies, first, cp.deletes, cp.last_deleted - rank);
    CHECK_MPI(MPI_Type_delete_attr(MPI_INT, kv_pre));
    CHECK_EQ_INT(cp.deletes, 3, "deletes after Type_delete_attr on MPI_INT");
    CHECK_EQ_INT(cp.last_deleted - rank, 40, "MPI_INT value deleted");
    CHECK_EQ_INT(type_value(MPI_INT, kv_pre), -1, "MPI_INT after Type_delete_attr");
    chk_say("datatypes: Type_delete_attr on MPI_INT: %d delete calls, the last of %d; then flag %d", cp.deletes,
            cp.last_deleted - rank, type_value(MPI_INT, kv_pre) == -1 ? 0 : 1);
    CHECK_MPI(MPI_Type_free_keyval(&kv_pre));

    CHECK_EQ_INT(cc.wrong_keyval + cd.wrong_keyval + cn.wrong_keyval + cp.wrong_keyval, 0,
                 "datatype callbacks given another keyval");
    CHECK_EQ_INT(cc.object_gone + cd.object_gone + cn.object_gone + cp.object_gone, 0,
                 "datatype delete callbacks without their datatype");
    chk_say("datatypes: callbacks given the wrong keyval %d, delete callbacks not seeing their datatype %d",
            cc.wrong_keyval + cd.wrong_keyval + cn.wrong_keyval + cp.wrong_keyval,
            cc.object_gone + cd.object_gone + cn.object_gone + cp.object_gone);
}

/* 3. a keyval of each kind at once */
static void kinds(void)
{
    int kw, kt, kc, flag, ok, vw = 1, vt = 2, vc = 3;
    void *v, *base;
    MPI_Win w;
    MPI_Datatype t;

    CHECK_MPI(MPI_Win_create_keyval(MPI_WIN_NULL_COPY_FN, MPI_WIN_NULL_DELETE_FN, &kw, NULL));
    CHECK_MPI(MPI_Type_create_keyval(MPI_TYPE_NULL_COPY_FN, MPI_TYPE_NULL_DELETE_FN, &kt, NULL));
    CHECK_MPI(MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, MPI_COMM_NULL_DELETE_FN, &kc, NULL));
    CHECK(kw != MPI_KEYVAL_INVALID && kt != MPI_KEYVAL_INVALID && kc != MPI_KEYVAL_INVALID, "keyvals valid");
    CHECK_MPI(MPI_Win_allocate(16, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &base, &w));
    CHECK_MPI(MPI_Type_contiguous(2, MPI_INT, &t));
    CHECK_MPI(MPI_Type_commit(&t));

    CHECK_MPI(MPI_Win_set_attr(w, kw, &vw));
    CHECK_MPI(MPI_Type_set_attr(t, kt, &vt));
    CHECK_MPI(MPI_Comm_set_attr(MPI_COMM_WORLD, kc, &vc));
    CHECK_MPI(MPI_Win_get_attr(w, kw, &v, &flag));
    ok = flag && v == &vw;
    CHECK_MPI(MPI_Type_get_attr(t, kt, &v, &flag));
    ok = ok && flag && v == &vt;
    CHECK_MPI(MPI_Comm_get_attr(MPI_COMM_WORLD, kc, &v, &flag));
    ok = ok && flag && v == &vc;
    CHECK(ok, "a window, a datatype and a communicator value read back");
    chk_say("kinds: a window, a datatype and MPI_COMM_WORLD value, each set with its own kind of keyval: %s",
            ok ? "each reads back its own" : "mixed up");

    CHECK_MPI(MPI_Comm_delete_attr(MPI_COMM_WORLD, kc));
    CHECK_MPI(MPI_Comm_get_attr(MPI_COMM_WORLD, kc, &v, &flag));
    ok = !flag;
    CHECK_MPI(MPI_Win_get_attr(w, kw, &v, &flag));
    ok = ok && flag && v == &vw;
    CHECK_MPI(MPI_Type_get_attr(t, kt, &v, &flag));
    ok = ok && flag && v == &vt;
    CHECK(ok, "after Comm_delete_attr");
    CHECK_MPI(MPI_Type_delete_attr(t, kt));
    CHECK_MPI(MPI_Type_get_attr(t, kt, &v, &flag));
    ok = ok && !flag;
    CHECK_MPI(MPI_Win_get_attr(w, kw, &v, &flag));
    ok = ok && flag && v == &vw;
    CHECK(ok, "after Type_delete_attr");
    chk_say("kinds: after deleting the communicator's, then the datatype's: the window's value %s",
            ok ? "still there" : "lost");

    CHECK_MPI(MPI_Win_free(&w)); /* with its attribute (MPI_WIN_NULL_DELETE_FN) */
    CHECK_MPI(MPI_Type_free(&t));
    CHECK_MPI(MPI_Win_free_keyval(&kw));
    CHECK_MPI(MPI_Type_free_keyval(&kt));
    CHECK_MPI(MPI_Comm_free_keyval(&kc));
    CHECK(kw == MPI_KEYVAL_INVALID && kt == MPI_KEYVAL_INVALID && kc == MPI_KEYVAL_INVALID,
          "the free_keyval calls set MPI_KEYVAL_INVALID");
}

int main(int argc, char **argv)
{
    chk_init(&argc, &argv, &rank, &size);
    chk_say("win-type-attributes: started on %d ranks", size);
    windows();
    datatypes();
    kinds();
    return chk_finish();
}
