/* ranks: 1-8 */
/*
 * MPI 3.1 calls the other programs leave out; every rank makes the same calls.
 * 1. User error classes and codes (8.5): Add_error_class/code (distinct, above
 *    MPI_ERR_LASTCODE, MPI_LASTUSEDCODE at least each class, Error_class);
 *    Error_string "" before Add_error_string, then exactly the string added,
 *    a second add replacing it; Comm_call_errhandler with a user code returns
 *    MPI_SUCCESS under MPI_ERRORS_RETURN and under a user handler, which gets
 *    the communicator and exactly that code.
 * 2. Generalized requests (12.2), callbacks counting their calls: Wait after
 *    Grequest_complete calls query then free once and returns the status
 *    query set; Test/Request_get_status before it give flag 0 without query;
 *    a Waitall with an Isend/Irecv pair on self; Cancel before the completion
 *    (callback complete 0, Test_cancelled 1 as query says) and after it
 *    (complete 1); a free callback returning MPI_ERR_OTHER: Wait returns that
 *    class, Waitall MPI_ERR_IN_STATUS.
 * 3. MPI_Pcontrol(0/1/2) return MPI_SUCCESS. 4. Comm_get_parent: MPI_COMM_NULL.
 * 5. Comm_disconnect of a dup of the world once Isend/Irecv rings on it are
 *    complete (MPI 3.1 10.5.4 requires it), of a split after a Bcast.
 * 6. MPI_DUP_FN, MPI_NULL_COPY_FN, MPI_NULL_DELETE_FN with Comm_create_keyval
 *    and Keyval_create: Comm_dup copies the pointer or drops it.
 * 7. MPI_Status_c2f/f2c round trips of statuses of receives and a cancelled one.
 * 8. MPI_T (14): init_thread twice, after one finalize still initialized:
 *    cvar/pvar/category_get_num, get_info at index = number gives
 *    MPI_T_ERR_INVALID_INDEX; finalize; one more init/finalize pair.
 * Only rank 0 prints: one line per check group, with how many ranks passed.
 */
#include "check.h"

static int rank, size;

/* a failed condition is reported on stderr and clears the section's ok */
#define EXPECT(cond, ...)                                                                                    \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            CHECK(0, __VA_ARGS__);                                                                           \
            ok = 0;                                                                                          \
        }                                                                                                    \
    } while (0)

/* 1. */
static int eh_calls, eh_code;
static MPI_Comm eh_comm;

static void record_handler(MPI_Comm *comm, int *code, ...)
{
    eh_calls++;
    eh_comm = *comm;
    eh_code = *code;
}

static int last_used(void)
{
    int *v = NULL, flag = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_LASTUSEDCODE, &v, &flag);
    return flag && v ? *v : -1;
}

static int class_of(int code)
{
    int k = -1;
    MPI_Error_class(code, &k);
    return k;
}

/* Error_string gives exactly want, its length in resultlen */
static int has_string(int code, const char *want)
{
    char text[MPI_MAX_ERROR_STRING] = "junk";
    int len = -1;
    CHECK_MPI(MPI_Error_string(code, text, &len));
    if (strcmp(text, want) == 0 && len == (int)strlen(want))
        return 1;
    CHECK(0, "Error_string: \"%s\" length %d, expected \"%s\"", text, len, want);
    return 0;
}

static void error_classes(void)
{
    int ok = 1, c1 = -1, c2 = -1, e1 = -1, e2 = -1, k;
    const char *s1 = "extras: the first text", *s2 = "extras: the second, longer text", *sc = "extras: class one";
    MPI_Comm d;
    MPI_Errhandler eh;

    EXPECT(last_used() >= MPI_ERR_LASTCODE, "MPI_LASTUSEDCODE %d below MPI_ERR_LASTCODE", last_used());
    CHECK_MPI(MPI_Add_error_class(&c1));
    EXPECT(last_used() >= c1, "MPI_LASTUSEDCODE %d below the new class %d", last_used(), c1);
    CHECK_MPI(MPI_Add_error_class(&c2));
    CHECK_MPI(MPI_Add_error_code(c2, &e1));
    CHECK_MPI(MPI_Add_error_code(c2, &e2));
    EXPECT(c1 != c2 && c1 > MPI_ERR_LASTCODE && c2 > MPI_ERR_LASTCODE && last_used() >= c1 && last_used() >= c2,
           "classes %d %d (MPI_ERR_LASTCODE %d), MPI_LASTUSEDCODE %d", c1, c2, MPI_ERR_LASTCODE, last_used());
    EXPECT(e1 != e2 && e1 != c1 && e1 != c2 && e2 != c1 && e2 != c2 && e1 > MPI_ERR_LASTCODE && e2 > MPI_ERR_LASTCODE,
           "codes %d %d, classes %d %d", e1, e2, c1, c2);
    EXPECT(class_of(c1) == c1 && class_of(c2) == c2 && class_of(e1) == c2 && class_of(e2) == c2,
           "Error_class: classes %d %d give %d %d, codes give %d %d", c1, c2, class_of(c1), class_of(c2), class_of(e1),
           class_of(e2));
    chk_report(ok, "1. two Add_error_class, two Add_error_code: distinct, above MPI_ERR_LASTCODE, MPI_LASTUSEDCODE at "
               "least each class, Error_class of a class itself, of a code its class");

    ok = has_string(e2, "");
    CHECK_MPI(MPI_Add_error_string(e1, s1));
    ok = has_string(e1, s1) && ok;
    CHECK_MPI(MPI_Add_error_string(e1, s2));
    ok = has_string(e1, s2) && ok;
    CHECK_MPI(MPI_Add_error_string(c1, sc));
    ok = has_string(c1, sc) && has_string(e2, "") && ok;
    chk_report(ok, "1. Error_string: \"\" before Add_error_string, then exactly the string added to a code and to a class, "
               "a second add replacing the first");

    ok = 1;
    MPI_Comm_dup(MPI_COMM_SELF, &d);
    MPI_Comm_set_errhandler(d, MPI_ERRORS_RETURN);
    k = MPI_Comm_call_errhandler(d, e1);
    EXPECT(k == MPI_SUCCESS, "Comm_call_errhandler under MPI_ERRORS_RETURN returned %d", k);
    CHECK_MPI(MPI_Comm_create_errhandler(record_handler, &eh));
    CHECK_MPI(MPI_Comm_set_errhandler(d, eh));
    k = MPI_Comm_call_errhandler(d, e1);
    EXPECT(k == MPI_SUCCESS && eh_calls == 1 && eh_comm == d && eh_code == e1,
           "Comm_call_errhandler(code) returned %d, %d handler call(s), its communicator %s, code %d (expected %d)", k,
           eh_calls, eh_comm == d ? "the one" : "another", eh_code, e1);
    k = MPI_Comm_call_errhandler(d, c1);
    EXPECT(k == MPI_SUCCESS && eh_calls == 2 && eh_code == c1,
           "Comm_call_errhandler(class) returned %d, %d handler call(s), code %d (expected %d)", k, eh_calls, eh_code,
           c1);
    MPI_Errhandler_free(&eh);
    MPI_Comm_free(&d);
    chk_report(ok, "1. Comm_call_errhandler with a user code: MPI_SUCCESS under MPI_ERRORS_RETURN; a user handler gets the "
               "communicator and exactly the code (and a user class), MPI_SUCCESS");
}

/* 2. The extra_state is a struct greq (a wrong one leaves the counts 0); calls are numbered to see the order. */
struct greq {
    int queries, frees, cancels, cancel_complete, cancelled, free_err, query_at, free_at;
};
static int sequence;

static int g_query(void *extra, MPI_Status *st)
{
    struct greq *g = extra;
    g->queries++;
    g->query_at = ++sequence;
    st->MPI_SOURCE = 3;
    st->MPI_TAG = 77;
    MPI_Status_set_elements(st, MPI_INT, 5);
    MPI_Status_set_cancelled(st, g->cancelled);
    return MPI_SUCCESS;
}

static int g_free(void *extra)
{
    struct greq *g = extra;
    g->frees++;
    g->free_at = ++sequence;
    return g->free_err;
}

static int g_cancel(void *extra, int complete)
{
    struct greq *g = extra;
    g->cancels++;
    g->cancel_complete = complete;
    g->cancelled = !complete; /* not complete yet: the cancel succeeds */
    return MPI_SUCCESS;
}

static void g_start(struct greq *g, MPI_Request *r)
{
    memset(g, 0, sizeof *g);
    CHECK_MPI(MPI_Grequest_start(g_query, g_free, g_cancel, g, r));
}

/* the status g_query sets, cancelled or not */
static int query_status(MPI_Status *st, int cancelled)
{
    int count = -1, elements = -1, c = -1;
    MPI_Get_count(st, MPI_INT, &count);
    MPI_Get_elements(st, MPI_INT, &elements);
    MPI_Test_cancelled(st, &c);
    if (st->MPI_SOURCE == 3 && st->MPI_TAG == 77 && count == 5 && elements == 5 && c == cancelled)
        return 1;
    CHECK(0, "status: source %d tag %d count %d elements %d cancelled %d (expected 3 77 5 5 %d)", st->MPI_SOURCE,
          st->MPI_TAG, count, elements, c, cancelled);
    return 0;
}

/* each callback called as often as given, the request handle null or not */
#define CALLS(g, q, f, c, req, null, what)                                                                   \
    EXPECT((g).queries == (q) && (g).frees == (f) && (g).cancels == (c) && ((req) == MPI_REQUEST_NULL) == (null), \
           "%s: %d query, %d free, %d cancel calls, request %s", what, (g).queries, (g).frees, (g).cancels,     \
           (req) == MPI_REQUEST_NULL ? "null" : "not null")

static void grequests(void)
{
    struct greq g, h;
    MPI_Request r, rs[3];
    MPI_Status st, sts[3];
    int ok = 1, flag = -1, out = 41 + rank, in = -1, count = -1, k = -1, rc;

    g_start(&g, &r);
    CHECK_MPI(MPI_Grequest_complete(r));
    CALLS(g, 0, 0, 0, r, 0, "after Grequest_complete");
    CHECK_MPI(MPI_Wait(&r, &st));
    ok = query_status(&st, 0) && ok;
    CALLS(g, 1, 1, 0, r, 1, "Wait");
    EXPECT(g.query_at < g.free_at, "Wait: free called before query");
    g_start(&g, &r);
    CHECK_MPI(MPI_Test(&r, &flag, &st));
    CHECK_MPI(MPI_Request_get_status(r, &k, &st));
    EXPECT(flag == 0 && k == 0, "before the completion: Test flag %d, Request_get_status flag %d", flag, k);
    CALLS(g, 0, 0, 0, r, 0, "Test and Request_get_status before the completion");
    CHECK_MPI(MPI_Grequest_complete(r));
    CHECK_MPI(MPI_Request_get_status(r, &flag, &st));
    EXPECT(flag == 1 && query_status(&st, 0), "Request_get_status after the completion: flag %d", flag);
    CALLS(g, 1, 0, 0, r, 0, "Request_get_status after the completion");
    CHECK_MPI(MPI_Test(&r, &flag, &st));
    EXPECT(flag == 1 && query_status(&st, 0), "Test after the completion: flag %d", flag);
    CALLS(g, 2, 1, 0, r, 1, "Test after the completion");
    /* Waitall with an Irecv/Isend pair on MPI_COMM_SELF */
    MPI_Irecv(&in, 1, MPI_INT, 0, 21, MPI_COMM_SELF, &rs[0]);
    g_start(&g, &rs[1]);
    MPI_Isend(&out, 1, MPI_INT, 0, 21, MPI_COMM_SELF, &rs[2]);
    CHECK_MPI(MPI_Grequest_complete(rs[1]));
    CHECK_MPI(MPI_Waitall(3, rs, sts));
    MPI_Get_count(&sts[0], MPI_INT, &count);
    EXPECT(in == out && sts[0].MPI_SOURCE == 0 && sts[0].MPI_TAG == 21 && count == 1 && rs[0] == MPI_REQUEST_NULL &&
               rs[2] == MPI_REQUEST_NULL,
           "Waitall: received %d from %d tag %d count %d", in, sts[0].MPI_SOURCE, sts[0].MPI_TAG, count);
    ok = query_status(&sts[1], 0) && ok;
    CALLS(g, 1, 1, 0, rs[1], 1, "Waitall");
    chk_report(ok, "2. generalized requests: Wait after Grequest_complete (query then free once, the status query set: "
               "source 3, tag 77, 5 MPI_INT), Test/Request_get_status flag 0 before it, Waitall with a pair on self");

    ok = 1;
    g_start(&g, &r);
    CHECK_MPI(MPI_Cancel(&r));
    EXPECT(g.cancel_complete == 0, "Cancel before the completion: complete %d", g.cancel_complete);
    CHECK_MPI(MPI_Test(&r, &flag, &st));
    EXPECT(flag == 0, "Test after Cancel, before the completion: flag %d", flag);
    CALLS(g, 0, 0, 1, r, 0, "Cancel and Test before the completion");
    CHECK_MPI(MPI_Grequest_complete(r));
    CHECK_MPI(MPI_Wait(&r, &st));
    ok = query_status(&st, 1) && ok;
    CALLS(g, 1, 1, 1, r, 1, "Wait of the cancelled one");
    g_start(&g, &r);
    CHECK_MPI(MPI_Grequest_complete(r));
    CHECK_MPI(MPI_Cancel(&r));
    EXPECT(g.cancel_complete == 1, "Cancel after the completion: complete %d", g.cancel_complete);
    CHECK_MPI(MPI_Wait(&r, &st));
    ok = query_status(&st, 0) && ok;
    CALLS(g, 1, 1, 1, r, 1, "Wait after a late Cancel");
    chk_report(ok, "2. Cancel of a generalized request: the cancel callback with complete 0 before Grequest_complete "
               "(Test flag 0 until it, Test_cancelled 1), with complete 1 after it (Test_cancelled 0)");

    /* a free callback returning an error: raised on MPI_COMM_WORLD (MPI 3.1; MPI_COMM_SELF from MPI 4.0) */
    ok = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
    g_start(&g, &r);
    g.free_err = MPI_ERR_OTHER;
    CHECK_MPI(MPI_Grequest_complete(r));
    rc = MPI_Wait(&r, &st);
    EXPECT(rc != MPI_SUCCESS && class_of(rc) == MPI_ERR_OTHER, "Wait returned %d (class %d)", rc, class_of(rc));
    CALLS(g, 1, 1, 0, r, 1, "Wait, the free callback failing");
    g_start(&h, &rs[0]);
    g_start(&g, &rs[1]);
    g.free_err = MPI_ERR_OTHER;
    CHECK_MPI(MPI_Grequest_complete(rs[0]));
    CHECK_MPI(MPI_Grequest_complete(rs[1]));
    sts[0].MPI_ERROR = sts[1].MPI_ERROR = -1;
    rc = MPI_Waitall(2, rs, sts);
    k = sts[1].MPI_ERROR != MPI_SUCCESS && sts[1].MPI_ERROR != -1 ? class_of(sts[1].MPI_ERROR) : -1;
    EXPECT(rc == MPI_ERR_IN_STATUS && k == MPI_ERR_OTHER, "Waitall returned %d, the failing one's error %d (class %d)",
           rc, sts[1].MPI_ERROR, k);
    CALLS(g, 1, 1, 0, rs[1], 1, "Waitall, the second one's free callback failing");
    /* the good one: completed (MPI_SUCCESS) or left pending (MPI_ERR_PENDING, still active) */
    EXPECT(sts[0].MPI_ERROR == MPI_SUCCESS || sts[0].MPI_ERROR == MPI_ERR_PENDING, "Waitall: the good one's error %d",
           sts[0].MPI_ERROR);
    if (sts[0].MPI_ERROR == MPI_ERR_PENDING && rs[0] != MPI_REQUEST_NULL)
        CHECK_MPI(MPI_Wait(&rs[0], &sts[0]));
    ok = query_status(&sts[0], 0) && ok;
    CALLS(h, 1, 1, 0, rs[0], 1, "Waitall, the good one");
    MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_ARE_FATAL);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    chk_report(ok, "2. a free callback returning MPI_ERR_OTHER (MPI_ERRORS_RETURN): Wait returns that class; Waitall "
               "MPI_ERR_IN_STATUS, that class in its status, the other one MPI_SUCCESS or MPI_ERR_PENDING");
}

/* 3. and 4. */
static void pcontrol_parent(void)
{
    MPI_Comm parent = MPI_COMM_WORLD;
    int ok = 1, a = MPI_Pcontrol(0), b = MPI_Pcontrol(1), c = MPI_Pcontrol(2);

    EXPECT(a == MPI_SUCCESS && b == MPI_SUCCESS && c == MPI_SUCCESS, "Pcontrol returned %d %d %d", a, b, c);
    chk_report(ok, "3. MPI_Pcontrol(0), (1), (2): MPI_SUCCESS");
    ok = 1;
    CHECK_MPI(MPI_Comm_get_parent(&parent));
    EXPECT(parent == MPI_COMM_NULL, "Comm_get_parent: not MPI_COMM_NULL");
    chk_report(ok, "4. MPI_Comm_get_parent: MPI_COMM_NULL");
}

/* 5. */
static void disconnect(void)
{
    MPI_Comm d, p;
    MPI_Request rq[4];
    int ok = 1, right = (rank + 1) % size, left = (rank + size - 1) % size, rc, v = -1;
    int out[2] = { rank, -rank }, in[2] = { -1, -1 };

    MPI_Comm_dup(MPI_COMM_WORLD, &d);
    MPI_Irecv(&in[0], 1, MPI_INT, left, 50, d, &rq[0]);
    MPI_Irecv(&in[1], 1, MPI_INT, right, 51, d, &rq[1]);
    MPI_Isend(&out[0], 1, MPI_INT, right, 50, d, &rq[2]);
    MPI_Isend(&out[1], 1, MPI_INT, left, 51, d, &rq[3]);
    /* MPI 3.1 10.5.4: only once all communication on it is complete and matched (as for MPI_Finalize) */
    CHECK_MPI(MPI_Waitall(4, rq, MPI_STATUSES_IGNORE));
    rc = MPI_Comm_disconnect(&d);
    EXPECT(rc == MPI_SUCCESS && d == MPI_COMM_NULL && in[0] == left && in[1] == -right,
           "Comm_disconnect of the dup: returned %d, handle %s; got %d %d", rc,
           d == MPI_COMM_NULL ? "MPI_COMM_NULL" : "not null", in[0], in[1]);
    MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &p);
    if (rank < 2)
        v = 70 + rank;
    MPI_Bcast(&v, 1, MPI_INT, 0, p);
    rc = MPI_Comm_disconnect(&p);
    EXPECT(rc == MPI_SUCCESS && p == MPI_COMM_NULL && v == 70 + rank % 2,
           "Comm_disconnect of the parity split: returned %d, Bcast gave %d", rc, v);
    chk_report(ok, "5. Comm_disconnect of a dup of the world after Isend/Irecv rings both ways on it were waited, of a "
               "parity split after a Bcast: MPI_SUCCESS, MPI_COMM_NULL, the data right");
}

/* 6. */
static void mpi1_copy_fns(void)
{
    /* keyvals: MPI_DUP_FN, MPI_NULL_COPY_FN (Comm_create_keyval), MPI_DUP_FN (Keyval_create); comms: a, its dup b
       (the first value deleted after the next dup), b's dup c. Which values each comm holds: */
    static const int want[3][3] = { { 1, 1, 1 }, { 0, 0, 1 }, { 1, 0, 1 } };
    MPI_Comm comm[3];
    int ok = 1, kv[3], x[3] = { 1, 2, 3 }, i, j, flag;
    void *v;

    CHECK_MPI(MPI_Comm_create_keyval(MPI_DUP_FN, MPI_NULL_DELETE_FN, &kv[0], NULL));
    CHECK_MPI(MPI_Comm_create_keyval(MPI_NULL_COPY_FN, MPI_NULL_DELETE_FN, &kv[1], NULL));
    CHECK_MPI(MPI_Keyval_create(MPI_DUP_FN, MPI_NULL_DELETE_FN, &kv[2], NULL));
    MPI_Comm_dup(MPI_COMM_WORLD, &comm[0]);
    for (i = 0; i < 3; i++)
        CHECK_MPI(MPI_Comm_set_attr(comm[0], kv[i], &x[i]));
    MPI_Comm_dup(comm[0], &comm[1]);
    MPI_Comm_dup(comm[1], &comm[2]);
    CHECK_MPI(MPI_Comm_delete_attr(comm[1], kv[0]));
    for (j = 0; j < 3; j++)
        for (i = 0; i < 3; i++) {
            flag = -1;
            v = NULL;
            MPI_Comm_get_attr(comm[j], kv[i], &v, &flag);
            EXPECT(flag == want[j][i] && (!flag || v == (void *)&x[i]),
                   "communicator %d, keyval %d: flag %d (expected %d), the same pointer %d", j, i, flag, want[j][i],
                   v == (void *)&x[i]);
        }
    for (j = 2; j >= 0; j--)
        CHECK_MPI(MPI_Comm_free(&comm[j]));
    CHECK_MPI(MPI_Comm_free_keyval(&kv[0]));
    CHECK_MPI(MPI_Comm_free_keyval(&kv[1]));
    CHECK_MPI(MPI_Keyval_free(&kv[2]));
    EXPECT(kv[0] == MPI_KEYVAL_INVALID && kv[1] == MPI_KEYVAL_INVALID && kv[2] == MPI_KEYVAL_INVALID,
           "freed keyvals not MPI_KEYVAL_INVALID");
    chk_report(ok, "6. MPI_DUP_FN (Comm_create_keyval and Keyval_create) copies the pointer through two Comm_dups, "
               "MPI_NULL_COPY_FN drops it, MPI_NULL_DELETE_FN with delete_attr and Comm_free");
}

/* 7. MPI 3.1 has no C name for MPI_STATUS_SIZE (MPI_F_STATUS_SIZE is MPI 4.0): 64 is above any implementation's */
static int round_trip(MPI_Status *st, MPI_Datatype type, const char *what)
{
    MPI_Fint f[64];
    MPI_Status back;
    int c1 = -1, c2 = -2, x1 = -1, x2 = -2, rc1 = MPI_Status_c2f(st, f), rc2 = MPI_Status_f2c(f, &back);

    MPI_Get_count(st, type, &c1);
    MPI_Get_count(&back, type, &c2);
    MPI_Test_cancelled(st, &x1);
    MPI_Test_cancelled(&back, &x2);
    if (rc1 == MPI_SUCCESS && rc2 == MPI_SUCCESS && back.MPI_SOURCE == st->MPI_SOURCE && back.MPI_TAG == st->MPI_TAG &&
        c1 == c2 && x1 == x2)
        return 1;
    CHECK(0, "%s: c2f %d f2c %d, source %d/%d tag %d/%d count %d/%d cancelled %d/%d", what, rc1, rc2, back.MPI_SOURCE,
          st->MPI_SOURCE, back.MPI_TAG, st->MPI_TAG, c2, c1, x2, x1);
    return 0;
}

static void status_conversion(void)
{
    MPI_Status st;
    int ok = 1, out[8] = { 0 }, in[8], right = (rank + 1) % size, left = (rank + size - 1) % size, count = -1;
    char empty = 'x';

    MPI_Sendrecv(out, 1 + rank, MPI_INT, right, 70 + rank, in, 8, MPI_INT, left, 70 + left, MPI_COMM_WORLD, &st);
    MPI_Get_count(&st, MPI_INT, &count);
    EXPECT(st.MPI_SOURCE == left && count == 1 + left, "ring receive: source %d count %d", st.MPI_SOURCE, count);
    ok = round_trip(&st, MPI_INT, "status of the ring receive") && ok;
    MPI_Sendrecv(&empty, 0, MPI_CHAR, 0, 9, &empty, 1, MPI_CHAR, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_SELF, &st);
    MPI_Get_count(&st, MPI_CHAR, &count);
    EXPECT(st.MPI_SOURCE == 0 && st.MPI_TAG == 9 && count == 0, "empty receive: %d %d %d", st.MPI_SOURCE, st.MPI_TAG,
           count);
    ok = round_trip(&st, MPI_CHAR, "status of an empty receive (ANY_SOURCE, ANY_TAG)") && ok;
    MPI_Status_set_cancelled(&st, 1);
    ok = round_trip(&st, MPI_CHAR, "a status set cancelled") && ok;
    chk_report(ok, "7. MPI_Status_c2f then MPI_Status_f2c keep source, tag, count (a ring receive of 1 + left ints, an "
               "empty ANY_SOURCE/ANY_TAG one) and the cancelled flag");
}

/* 8. */
#define T_EXPECT(call, want)                                                                                 \
    do {                                                                                                     \
        int t_rc_ = (call);                                                                                  \
        EXPECT(t_rc_ == (want), "%s returned %d, expected %d", #call, t_rc_, (want));                        \
    } while (0)

static void tools(void)
{
    int ok = 1, provided = -1, n = -1, np = -1, nc = -1;
    char name[256], desc[1024];
    int name_len = sizeof name, desc_len = sizeof desc, verbosity, binding, scope, ncvars, npvars, ncats;
    MPI_Datatype dt;
    MPI_T_enum en;

    T_EXPECT(MPI_T_init_thread(MPI_THREAD_SINGLE, &provided), MPI_SUCCESS);
    EXPECT(provided >= MPI_THREAD_SINGLE && provided <= MPI_THREAD_MULTIPLE, "MPI_T_init_thread: provided %d",
           provided);
    T_EXPECT(MPI_T_init_thread(MPI_THREAD_SINGLE, &provided), MPI_SUCCESS);
    T_EXPECT(MPI_T_cvar_get_num(&n), MPI_SUCCESS);
    T_EXPECT(MPI_T_finalize(), MPI_SUCCESS);
    /* still initialized: one finalize less than init_thread */
    T_EXPECT(MPI_T_cvar_get_num(&n), MPI_SUCCESS);
    T_EXPECT(MPI_T_pvar_get_num(&np), MPI_SUCCESS);
    T_EXPECT(MPI_T_category_get_num(&nc), MPI_SUCCESS);
    EXPECT(n >= 0 && np >= 0 && nc >= 0, "negative numbers of cvars %d, pvars %d, categories %d", n, np, nc);
    T_EXPECT(MPI_T_cvar_get_info(n, name, &name_len, &verbosity, &dt, &en, desc, &desc_len, &binding, &scope),
             MPI_T_ERR_INVALID_INDEX);
    name_len = sizeof name;
    desc_len = sizeof desc;
    T_EXPECT(MPI_T_category_get_info(nc, name, &name_len, desc, &desc_len, &ncvars, &npvars, &ncats),
             MPI_T_ERR_INVALID_INDEX);
    T_EXPECT(MPI_T_finalize(), MPI_SUCCESS);
    /* initialized again (MPICH 4.0.2 crashes in any query after such a re-initialization: none here) */
    T_EXPECT(MPI_T_init_thread(MPI_THREAD_SINGLE, &provided), MPI_SUCCESS);
    T_EXPECT(MPI_T_finalize(), MPI_SUCCESS);
    chk_report(ok, "8. MPI_T: init_thread twice, finalize, still initialized (cvar, pvar, category counts >= 0; "
               "cvar_get_info and category_get_info at the count: MPI_T_ERR_INVALID_INDEX), finalize; "
               "init/finalize again");
}

int main(int argc, char **argv)
{
    chk_init(&argc, &argv, &rank, &size);
    chk_say("mpi-extras: started on %d ranks", size);
    error_classes();
    grequests();
    pcontrol_parent();
    disconnect();
    mpi1_copy_fns();
    status_conversion();
    tools();
    return chk_finish();
}
