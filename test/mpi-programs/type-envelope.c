/* ranks: 1-8 */
/*
 * Decoding datatypes (MPI 3.1 4.1.13) and canonical packing (4.2, 13.5.2).
 * Everything is local (MPI_COMM_SELF), so the lines do not depend on the rank
 * count; each section's line says on how many ranks it passed.
 * 1. Type_get_envelope of named types (MPI_INT, MPI_DOUBLE, MPI_2INT,
 *    MPI_DOUBLE_INT, MPI_BYTE): MPI_COMBINER_NAMED, 0 integers, addresses and
 *    datatypes.
 * 2. Envelope and Type_get_contents of every constructor: dup (of a named and
 *    of a derived type), contiguous, vector (of a contiguous type), hvector,
 *    indexed, hindexed, indexed_block, hindexed_block, struct, subarray (C and
 *    Fortran order), darray (size 4, rank 1, block/cyclic) and resized: the
 *    combiner, the counts, every integer and address; a named datatype
 *    returned is the named handle (==), a derived one is decoded in turn and
 *    freed.
 * 3. Nested types decoded recursively into a canonical string, printed by
 *    rank 0: a struct of {vector of contiguous, MPI_DOUBLE}, and a dup of a
 *    resized indexed type.
 * 4. Components outlive their handles: a vector of a contiguous type whose
 *    handle was freed still gives that contiguous type back (size, extent,
 *    decoded, committed and used), and still sends and receives correctly.
 * 5. Type_match_size: INTEGER 1, 2, 4, 8, REAL 4, 8, COMPLEX 8, 16 give a
 *    named type of that size; INTEGER 3 and REAL 3 fail (MPI_ERRORS_RETURN).
 * 6. Pack_external/Unpack_external/Pack_external_size with "external32": an
 *    int, a short, a double, a char and a float (19 bytes, big-endian, the
 *    bytes printed), and a vector of ints (count 2, blocklength 2, stride 3).
 */
#include "check.h"

static int rank, size;

/* A CHECK that also clears the caller's ok. */
#define FAIL_IF(cond, ...)                                                                                   \
    do {                                                                                                     \
        if (cond) {                                                                                          \
            CHECK(0, __VA_ARGS__);                                                                           \
            ok = 0;                                                                                          \
        }                                                                                                    \
    } while (0)

/* The name of a named type, by handle comparison (never MPI_Type_get_name). */
static const char *named_name(MPI_Datatype t)
{
    MPI_Datatype h[] = { MPI_INT,   MPI_DOUBLE, MPI_2INT, MPI_DOUBLE_INT, MPI_BYTE,
                         MPI_SHORT, MPI_FLOAT,  MPI_CHAR, MPI_LONG };
    const char *n[] = { "MPI_INT",   "MPI_DOUBLE", "MPI_2INT", "MPI_DOUBLE_INT", "MPI_BYTE",
                        "MPI_SHORT", "MPI_FLOAT",  "MPI_CHAR", "MPI_LONG" };
    size_t i;
    for (i = 0; i < sizeof h / sizeof h[0]; i++)
        if (h[i] == t)
            return n[i];
    return "unknown-named";
}

static const char *combiner_name(int c)
{
    int k[] = { MPI_COMBINER_DUP,           MPI_COMBINER_CONTIGUOUS,     MPI_COMBINER_VECTOR,
                MPI_COMBINER_HVECTOR,       MPI_COMBINER_INDEXED,        MPI_COMBINER_HINDEXED,
                MPI_COMBINER_INDEXED_BLOCK, MPI_COMBINER_HINDEXED_BLOCK, MPI_COMBINER_STRUCT,
                MPI_COMBINER_SUBARRAY,      MPI_COMBINER_DARRAY,         MPI_COMBINER_RESIZED };
    const char *n[] = { "dup",           "contiguous",     "vector", "hvector",  "indexed", "hindexed",
                        "indexed_block", "hindexed_block", "struct", "subarray", "darray",  "resized" };
    size_t i;
    for (i = 0; i < sizeof k / sizeof k[0]; i++)
        if (k[i] == c)
            return n[i];
    return "other";
}

/* Appends to buf (capacity cap) printf-style. */
static void put(char *buf, size_t cap, const char *fmt, ...)
{
    size_t at = strlen(buf);
    va_list ap;
    if (at + 1 >= cap)
        return;
    va_start(ap, fmt);
    vsnprintf(buf + at, cap - at, fmt, ap);
    va_end(ap);
}

/* Appends a canonical description of t to buf: a named type's name, or
 * combiner(integers; addresses; datatypes) with the datatypes decoded in turn
 * (the count of struct, indexed and hindexed and the blocklengths of indexed
 * are groups of their own). Frees the derived handles get_contents returned
 * (not t itself). Returns t's combiner. */
static int describe(MPI_Datatype t, char *buf, size_t cap)
{
    int ni = -1, na = -1, nd = -1, comb = -1, i, group, *ints;
    MPI_Aint *addrs;
    MPI_Datatype *types;
    const char *sep = "";
    MPI_Type_get_envelope(t, &ni, &na, &nd, &comb);
    if (comb == MPI_COMBINER_NAMED) {
        put(buf, cap, "%s", named_name(t));
        return comb;
    }
    ints = malloc(sizeof(int) * (size_t)(ni + 1));
    addrs = malloc(sizeof(MPI_Aint) * (size_t)(na + 1));
    types = malloc(sizeof(MPI_Datatype) * (size_t)(nd + 1));
    CHECK_MPI(MPI_Type_get_contents(t, ni, na, nd, ints, addrs, types));
    put(buf, cap, "%s(", combiner_name(comb));
    for (i = 0; i < ni; i++, sep = "; ") {
        group = (i == 1 && (comb == MPI_COMBINER_STRUCT || comb == MPI_COMBINER_INDEXED ||
                            comb == MPI_COMBINER_HINDEXED)) ||
                (comb == MPI_COMBINER_INDEXED && i == 1 + ints[0]);
        put(buf, cap, "%s%d", i == 0 ? "" : group ? "; " : ",", ints[i]);
    }
    for (i = 0; i < na; i++, sep = "; ")
        put(buf, cap, "%s%ld", i == 0 ? sep : ",", (long)addrs[i]);
    for (i = 0; i < nd; i++) {
        put(buf, cap, "%s", i == 0 ? sep : ", ");
        if (describe(types[i], buf, cap) != MPI_COMBINER_NAMED)
            MPI_Type_free(&types[i]);
    }
    put(buf, cap, ")");
    free(ints);
    free(addrs);
    free(types);
    return comb;
}

/* Checks t's envelope (combiner, counts) and contents: integers ei, addresses
 * ea and datatypes described as ed (a named one: its handle, by ==). */
static int decoded(const char *what, MPI_Datatype t, int comb, int ni, int na, int nd, const int *ei,
                   const MPI_Aint *ea, const char *const *ed)
{
    int gni = -1, gna = -1, gnd = -1, gcomb = -1, i, c, ok = 1, ints[16];
    MPI_Aint addrs[8];
    MPI_Datatype types[8];
    char d[400];
    MPI_Type_get_envelope(t, &gni, &gna, &gnd, &gcomb);
    FAIL_IF(gcomb != comb || gni != ni || gna != na || gnd != nd,
            "%s: combiner %d (expected %d), %d integers %d addresses %d datatypes (expected %d %d %d)", what, gcomb,
            comb, gni, gna, gnd, ni, na, nd);
    if (!ok)
        return 0;
    CHECK_MPI(MPI_Type_get_contents(t, 16, 8, 8, ints, addrs, types));
    for (i = 0; i < ni; i++)
        FAIL_IF(ints[i] != ei[i], "%s: integer %d is %d, expected %d", what, i, ints[i], ei[i]);
    for (i = 0; i < na; i++)
        FAIL_IF(addrs[i] != ea[i], "%s: address %d is %ld, expected %ld", what, i, (long)addrs[i], (long)ea[i]);
    for (i = 0; i < nd; i++) {
        d[0] = '\0';
        c = describe(types[i], d, sizeof d);
        FAIL_IF(strcmp(d, ed[i]) != 0, "%s: datatype %d is %s, expected %s", what, i, d, ed[i]);
        if (c != MPI_COMBINER_NAMED)
            MPI_Type_free(&types[i]);
    }
    return ok;
}

/* 1. */
static void named(void)
{
    MPI_Datatype t[] = { MPI_INT, MPI_DOUBLE, MPI_2INT, MPI_DOUBLE_INT, MPI_BYTE };
    int i, ok = 1, ni, na, nd, comb;
    for (i = 0; i < 5; i++) {
        ni = na = nd = comb = -1;
        CHECK_MPI(MPI_Type_get_envelope(t[i], &ni, &na, &nd, &comb));
        FAIL_IF(comb != MPI_COMBINER_NAMED || ni != 0 || na != 0 || nd != 0, "%s: combiner %d (NAMED %d), %d %d %d",
                named_name(t[i]), comb, MPI_COMBINER_NAMED, ni, na, nd);
    }
    chk_report(ok, "1. envelope of MPI_INT, MPI_DOUBLE, MPI_2INT, MPI_DOUBLE_INT, MPI_BYTE: MPI_COMBINER_NAMED, 0 0 0");
}

/* Reports whether *t decodes as constructed (one line per constructor), then frees it. */
static void one(const char *what, MPI_Datatype *t, int comb, int ni, int na, int nd, const int *ei,
                const MPI_Aint *ea, const char *const *ed)
{
    chk_report(decoded(what, *t, comb, ni, na, nd, ei, ea, ed), "2. %s: combiner %s, %d integers %d addresses %d datatypes, "
           "each as given", what, combiner_name(comb), ni, na, nd);
    MPI_Type_free(t);
}

/* 2. */
static void constructors(void)
{
    MPI_Datatype t, c2, c3, st[3] = { MPI_INT, MPI_DOUBLE, MPI_2INT };
    const char *d_int[] = { "MPI_INT" }, *d_double[] = { "MPI_DOUBLE" };
    int bl[3] = { 1, 2, 3 }, di[3] = { 0, 4, 9 }, bl2[2] = { 2, 1 }, dib[3] = { 0, 5, 11 }, sbl[3] = { 1, 2, 1 };
    int sz[3] = { 5, 6 }, sub[3] = { 3, 2 }, start[3] = { 1, 3 }, sz3[3] = { 4, 5, 6 }, sub3[3] = { 2, 3, 4 },
        start3[3] = { 1, 0, 2 };
    int gs[2] = { 8, 6 }, dist[2] = { MPI_DISTRIBUTE_BLOCK, MPI_DISTRIBUTE_CYCLIC },
        darg[2] = { MPI_DISTRIBUTE_DFLT_DARG, 2 }, ps[2] = { 2, 2 };
    MPI_Aint ha[2] = { 8, 64 }, hb[2] = { 0, 100 }, sd[3] = { 0, 8, 24 }, rs[2] = { -4, 16 }, hs = 40;

    MPI_Type_contiguous(2, MPI_INT, &c2);
    MPI_Type_contiguous(3, MPI_2INT, &c3);
    MPI_Type_dup(MPI_INT, &t);
    one("Type_dup(MPI_INT)", &t, MPI_COMBINER_DUP, 0, 0, 1, NULL, NULL, d_int);
    MPI_Type_dup(c3, &t);
    one("Type_dup(contiguous(3, MPI_2INT))", &t, MPI_COMBINER_DUP, 0, 0, 1, NULL, NULL,
        (const char *[]){ "contiguous(3; MPI_2INT)" });
    MPI_Type_contiguous(5, MPI_DOUBLE, &t);
    one("contiguous(5, MPI_DOUBLE)", &t, MPI_COMBINER_CONTIGUOUS, 1, 0, 1, (int[]){ 5 }, NULL, d_double);
    MPI_Type_vector(3, 2, 4, c2, &t);
    one("vector(3, 2, 4, contiguous(2, MPI_INT))", &t, MPI_COMBINER_VECTOR, 3, 0, 1, (int[]){ 3, 2, 4 }, NULL,
        (const char *[]){ "contiguous(2; MPI_INT)" });
    MPI_Type_create_hvector(2, 3, hs, MPI_DOUBLE, &t);
    one("create_hvector(2, 3, 40, MPI_DOUBLE)", &t, MPI_COMBINER_HVECTOR, 2, 1, 1, (int[]){ 2, 3 }, &hs, d_double);
    MPI_Type_indexed(3, bl, di, MPI_INT, &t);
    one("indexed(3, {1,2,3}, {0,4,9}, MPI_INT)", &t, MPI_COMBINER_INDEXED, 7, 0, 1,
        (int[]){ 3, 1, 2, 3, 0, 4, 9 }, NULL, d_int);
    MPI_Type_create_hindexed(2, bl2, ha, MPI_SHORT, &t);
    one("create_hindexed(2, {2,1}, {8,64}, MPI_SHORT)", &t, MPI_COMBINER_HINDEXED, 3, 2, 1, (int[]){ 2, 2, 1 }, ha,
        (const char *[]){ "MPI_SHORT" });
    MPI_Type_create_indexed_block(3, 2, dib, MPI_FLOAT, &t);
    one("create_indexed_block(3, 2, {0,5,11}, MPI_FLOAT)", &t, MPI_COMBINER_INDEXED_BLOCK, 5, 0, 1,
        (int[]){ 3, 2, 0, 5, 11 }, NULL, (const char *[]){ "MPI_FLOAT" });
    MPI_Type_create_hindexed_block(2, 4, hb, MPI_BYTE, &t);
    one("create_hindexed_block(2, 4, {0,100}, MPI_BYTE)", &t, MPI_COMBINER_HINDEXED_BLOCK, 2, 2, 1,
        (int[]){ 2, 4 }, hb, (const char *[]){ "MPI_BYTE" });
    MPI_Type_create_struct(3, sbl, sd, st, &t);
    one("create_struct(3, {1,2,1}, {0,8,24}, {MPI_INT,MPI_DOUBLE,MPI_2INT})", &t, MPI_COMBINER_STRUCT, 4, 3, 3,
        (int[]){ 3, 1, 2, 1 }, sd, (const char *[]){ "MPI_INT", "MPI_DOUBLE", "MPI_2INT" });
    MPI_Type_create_subarray(2, sz, sub, start, MPI_ORDER_C, MPI_INT, &t);
    one("create_subarray(3x2 at (1,3) of 5x6, MPI_ORDER_C, MPI_INT)", &t, MPI_COMBINER_SUBARRAY, 8, 0, 1,
        (int[]){ 2, 5, 6, 3, 2, 1, 3, MPI_ORDER_C }, NULL, d_int);
    MPI_Type_create_subarray(3, sz3, sub3, start3, MPI_ORDER_FORTRAN, MPI_DOUBLE, &t);
    one("create_subarray(2x3x4 at (1,0,2) of 4x5x6, MPI_ORDER_FORTRAN, MPI_DOUBLE)", &t, MPI_COMBINER_SUBARRAY,
        11, 0, 1, (int[]){ 3, 4, 5, 6, 2, 3, 4, 1, 0, 2, MPI_ORDER_FORTRAN }, NULL, d_double);
    MPI_Type_create_darray(4, 1, 2, gs, dist, darg, ps, MPI_ORDER_C, MPI_INT, &t);
    one("create_darray(size 4, rank 1, 8x6, block default x cyclic 2 on 2x2, MPI_ORDER_C, MPI_INT)", &t,
        MPI_COMBINER_DARRAY, 12, 0, 1,
        (int[]){ 4, 1, 2, 8, 6, MPI_DISTRIBUTE_BLOCK, MPI_DISTRIBUTE_CYCLIC, MPI_DISTRIBUTE_DFLT_DARG, 2, 2, 2,
                 MPI_ORDER_C },
        NULL, d_int);
    MPI_Type_create_resized(MPI_INT, rs[0], rs[1], &t);
    one("create_resized(MPI_INT, lb -4, extent 16)", &t, MPI_COMBINER_RESIZED, 0, 2, 1, NULL, rs, d_int);
    MPI_Type_free(&c3);
    MPI_Type_free(&c2);
}

/* 3. */
static void nested(void)
{
    MPI_Datatype c, v, s, idx, r, dup, types[2];
    int bl[2] = { 1, 1 }, ibl[2] = { 1, 2 }, idi[2] = { 0, 3 }, ok = 1;
    MPI_Aint disp[2] = { 0, 80 };
    char d[400];
    const char *want1 = "struct(2; 1,1; 0,80; vector(3,2,4; contiguous(2; MPI_INT)), MPI_DOUBLE)",
               *want2 = "dup(resized(0,12; indexed(2; 1,2; 0,3; MPI_SHORT)))";

    MPI_Type_contiguous(2, MPI_INT, &c);
    MPI_Type_vector(3, 2, 4, c, &v);
    types[0] = v;
    types[1] = MPI_DOUBLE;
    MPI_Type_create_struct(2, bl, disp, types, &s);
    d[0] = '\0';
    describe(s, d, sizeof d);
    chk_say("3. %s", d);
    FAIL_IF(strcmp(d, want1) != 0, "nested struct decoded as %s, expected %s", d, want1);
    MPI_Type_indexed(2, ibl, idi, MPI_SHORT, &idx);
    MPI_Type_create_resized(idx, 0, 12, &r);
    MPI_Type_dup(r, &dup);
    d[0] = '\0';
    describe(dup, d, sizeof d);
    chk_say("3. %s", d);
    FAIL_IF(strcmp(d, want2) != 0, "nested dup decoded as %s, expected %s", d, want2);
    MPI_Type_free(&dup);
    MPI_Type_free(&r);
    MPI_Type_free(&idx);
    MPI_Type_free(&s);
    MPI_Type_free(&v);
    MPI_Type_free(&c);
    chk_report(ok, "3. recursive decoding of a struct of {vector of contiguous, MPI_DOUBLE} and of a dup of a resized "
               "indexed type: the strings above");
}

/* 4. */
static void survive(void)
{
    MPI_Datatype c, v, got[1];
    int ok = 1, ni = -1, na = -1, nd = -1, comb = -1, ints[4] = { -1, -1, -1, -1 }, sz = -1, i, want;
    int src[10], dst[10], four[4];
    MPI_Aint lb = -1, ext = -1, addrs[1];
    char d[100] = "";

    for (i = 0; i < 10; i++)
        src[i] = 100 + i;
    MPI_Type_contiguous(2, MPI_INT, &c);
    MPI_Type_vector(2, 1, 3, c, &v);
    MPI_Type_commit(&v);
    MPI_Type_free(&c);
    FAIL_IF(c != MPI_DATATYPE_NULL, "Type_free did not set MPI_DATATYPE_NULL");
    MPI_Type_get_envelope(v, &ni, &na, &nd, &comb);
    FAIL_IF(comb != MPI_COMBINER_VECTOR || ni != 3 || na != 0 || nd != 1,
            "vector after its component was freed: combiner %d, %d %d %d", comb, ni, na, nd);
    if (ok) {
        CHECK_MPI(MPI_Type_get_contents(v, 4, 1, 1, ints, addrs, got));
        FAIL_IF(ints[0] != 2 || ints[1] != 1 || ints[2] != 3, "vector after its component was freed: %d %d %d",
                ints[0], ints[1], ints[2]);
        MPI_Type_size(got[0], &sz);
        MPI_Type_get_extent(got[0], &lb, &ext);
        FAIL_IF(sz != 8 || lb != 0 || ext != 8, "the freed component returned: size %d lb %ld extent %ld", sz,
                (long)lb, (long)ext);
        describe(got[0], d, sizeof d); /* frees only derived components: it has none */
        FAIL_IF(strcmp(d, "contiguous(2; MPI_INT)") != 0, "the freed component returned decodes as %s", d);
        /* its committed state is undefined: commit it, then send 2 of it */
        MPI_Type_commit(&got[0]);
        memset(four, 0, sizeof four);
        MPI_Sendrecv(src, 2, got[0], 0, 1, four, 4, MPI_INT, 0, 1, MPI_COMM_SELF, MPI_STATUS_IGNORE);
        for (i = 0; i < 4; i++)
            FAIL_IF(four[i] != 100 + i, "2 of the returned component sent: int %d is %d", i, four[i]);
        MPI_Type_free(&got[0]);
    }
    /* the vector: ints 0 1 and 6 7 out, and back in */
    memset(four, 0, sizeof four);
    MPI_Sendrecv(src, 1, v, 0, 2, four, 4, MPI_INT, 0, 2, MPI_COMM_SELF, MPI_STATUS_IGNORE);
    for (i = 0; i < 4; i++)
        FAIL_IF(four[i] != 100 + i + (i / 2) * 4, "the vector sent: int %d is %d", i, four[i]);
    for (i = 0; i < 10; i++)
        dst[i] = -1;
    MPI_Sendrecv(four, 4, MPI_INT, 0, 3, dst, 1, v, 0, 3, MPI_COMM_SELF, MPI_STATUS_IGNORE);
    for (i = 0; i < 10; i++) {
        want = i == 0 || i == 1 || i == 6 || i == 7 ? 100 + i : -1;
        FAIL_IF(dst[i] != want, "received into the vector: int %d is %d, expected %d", i, dst[i], want);
    }
    MPI_Type_free(&v);
    chk_report(ok, "4. vector(2, 1, 3) of a freed contiguous(2, MPI_INT): get_contents gives it back (size 8, extent 8, "
               "decoded, committed and sent), the vector sends ints 0 1 6 7 and receives into them");
}

/* 5. */
static void match_size(void)
{
    int cls[8] = { MPI_TYPECLASS_INTEGER, MPI_TYPECLASS_INTEGER, MPI_TYPECLASS_INTEGER, MPI_TYPECLASS_INTEGER,
                   MPI_TYPECLASS_REAL,    MPI_TYPECLASS_REAL,    MPI_TYPECLASS_COMPLEX, MPI_TYPECLASS_COMPLEX };
    int sizes[8] = { 1, 2, 4, 8, 4, 8, 8, 16 }, i, ok = 1, sz, ni, na, nd, comb;
    MPI_Datatype t;

    for (i = 0; i < 8; i++) {
        t = MPI_DATATYPE_NULL;
        sz = ni = na = nd = comb = -1;
        CHECK_MPI(MPI_Type_match_size(cls[i], sizes[i], &t));
        FAIL_IF(t == MPI_DATATYPE_NULL, "Type_match_size(class %d, %d) gave MPI_DATATYPE_NULL", cls[i], sizes[i]);
        if (t == MPI_DATATYPE_NULL)
            continue;
        MPI_Type_size(t, &sz);
        MPI_Type_get_envelope(t, &ni, &na, &nd, &comb);
        FAIL_IF(sz != sizes[i] || comb != MPI_COMBINER_NAMED, "Type_match_size(class %d, %d): size %d, combiner %d",
                cls[i], sizes[i], sz, comb);
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    FAIL_IF(MPI_Type_match_size(MPI_TYPECLASS_INTEGER, 3, &t) == MPI_SUCCESS, "Type_match_size(INTEGER, 3) succeeded");
    FAIL_IF(MPI_Type_match_size(MPI_TYPECLASS_REAL, 3, &t) == MPI_SUCCESS, "Type_match_size(REAL, 3) succeeded");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    chk_report(ok, "5. Type_match_size INTEGER 1 2 4 8, REAL 4 8, COMPLEX 8 16: a named type of that size; INTEGER 3 "
               "and REAL 3 return an error");
}

/* 6. */
static void external32(void)
{
    const unsigned char want[19] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x3f, 0xf8, 0x00, 0x00,
                                     0x00, 0x00, 0x00, 0x00, 0x41, 0x40, 0x20, 0x00, 0x00 };
    MPI_Datatype types[5] = { MPI_INT, MPI_SHORT, MPI_DOUBLE, MPI_CHAR, MPI_FLOAT }, v;
    MPI_Aint esz[5] = { 4, 2, 8, 1, 4 }, ends[5] = { 4, 6, 14, 15, 19 }, s, total = 0, pos = 0;
    int ok = 1, i, w, iv = 0x01020304, iv2 = 0, ints[6] = { 10, 11, 12, 13, 14, 15 }, back[6];
    short sv = 0x0506, sv2 = 0;
    double dv = 1.5, dv2 = 0;
    char cv = 'A', cv2 = 0, hex[100] = "";
    float fv = 2.5f, fv2 = 0;
    void *vals[5] = { &iv, &sv, &dv, &cv, &fv }, *outs[5] = { &iv2, &sv2, &dv2, &cv2, &fv2 };
    unsigned char buf[64], vb[32];

    memset(buf, 0xee, sizeof buf);
    for (i = 0; i < 5; i++) {
        s = -1;
        CHECK_MPI(MPI_Pack_external_size("external32", 1, types[i], &s));
        FAIL_IF(s != esz[i], "Pack_external_size of one %s: %ld", named_name(types[i]), (long)s);
        total += s;
        CHECK_MPI(MPI_Pack_external("external32", vals[i], 1, types[i], buf, sizeof buf, &pos));
        FAIL_IF(pos != ends[i], "position after packing the %s: %ld", named_name(types[i]), (long)pos);
    }
    FAIL_IF(total != 19, "Pack_external_size sum %ld", (long)total);
    for (i = 0; i < 19; i++) {
        put(hex, sizeof hex, "%s%02x", i ? " " : "", buf[i]);
        FAIL_IF(buf[i] != want[i], "external32 byte %d is %02x, expected %02x", i, buf[i], want[i]);
    }
    FAIL_IF(buf[19] != 0xee, "Pack_external wrote past position 19");
    chk_say("6. external32 bytes of int 0x01020304, short 0x0506, double 1.5, char 'A', float 2.5: %s", hex);
    pos = 0;
    for (i = 0; i < 5; i++)
        CHECK_MPI(MPI_Unpack_external("external32", buf, 19, &pos, outs[i], 1, types[i]));
    FAIL_IF(pos != 19 || iv2 != iv || sv2 != sv || dv2 != dv || cv2 != cv || fv2 != fv,
            "unpacked: position %ld, int %x short %x double %g char %d float %g", (long)pos, (unsigned)iv2,
            (unsigned)sv2, dv2, cv2, (double)fv2);
    chk_report(ok, "6. Pack_external_size 4+2+8+1+4 = 19, positions 4 6 14 15 19, big-endian bytes, Unpack_external "
               "gives the values back");

    ok = 1;
    MPI_Type_vector(2, 2, 3, MPI_INT, &v);
    MPI_Type_commit(&v);
    s = -1;
    CHECK_MPI(MPI_Pack_external_size("external32", 1, v, &s));
    pos = 0;
    memset(vb, 0xee, sizeof vb);
    CHECK_MPI(MPI_Pack_external("external32", ints, 1, v, vb, sizeof vb, &pos));
    FAIL_IF(s != 16 || pos != 16, "vector: Pack_external_size %ld, position %ld (expected 16)", (long)s, (long)pos);
    for (i = 0; i < 16; i++) {
        w = i % 4 == 3 ? ints[i / 4 + i / 8] : 0; /* ints 0 1 3 4, big-endian */
        FAIL_IF(vb[i] != w, "vector: external32 byte %d is %02x, expected %02x", i, vb[i], w);
    }
    for (i = 0; i < 6; i++)
        back[i] = -1;
    pos = 0;
    CHECK_MPI(MPI_Unpack_external("external32", vb, 16, &pos, back, 1, v));
    for (i = 0; i < 6; i++) {
        w = i == 2 || i == 5 ? -1 : ints[i];
        FAIL_IF(back[i] != w, "vector unpacked: int %d is %d, expected %d", i, back[i], w);
    }
    FAIL_IF(pos != 16, "vector: position after Unpack_external %ld", (long)pos);
    MPI_Type_free(&v);
    chk_report(ok, "6. vector(2, 2, 3, MPI_INT) of 10..15 in external32: 16 bytes 00 00 00 0a 00 00 00 0b 00 00 00 0d "
               "00 00 00 0e, unpacked into ints 0 1 3 4 only");
}

int main(int argc, char **argv)
{
    chk_init(&argc, &argv, &rank, &size);
    chk_say("type-envelope: started on %d ranks", size);
    named();
    constructors();
    nested();
    survive();
    match_size();
    external32();
    return chk_finish();
}
