/* ranks: 1-8 */
/*
 * Every collective of the supported set, on MPI_COMM_WORLD, on a duplicate
 * of it and on communicators from MPI_Comm_split (reversed key order, so
 * communicator ranks differ from world ranks), with MPI_IN_PLACE wherever
 * the standard allows it. Reductions use every predefined operation on every
 * datatype it is defined for (SUM/PROD/MIN/MAX on integer and floating
 * types, logical and bitwise ops on integer types, bitwise on MPI_BYTE,
 * MINLOC/MAXLOC on MPI_2INT and MPI_DOUBLE_INT). Inputs are small integers,
 * so every result is exact whatever the reduction order.
 */
#include "check.h"

#define NELEM 5 /* elements per reduction */
#define RSB 3   /* Reduce_scatter_block: elements per rank */
#define BIG_BCAST (1 << 18)
#define SUBCOMM_TYPES 4 /* int, double, unsigned char, byte */

/* A predefined datatype and how to read and write one element of it. */
typedef struct {
    const char *name;
    MPI_Datatype type;
    size_t size;
    int is_float;
    int is_byte;
} dtype_t;

static dtype_t types[13];
static int ntypes;

static void dt_add(const char *name, MPI_Datatype t, size_t size, int is_float, int is_byte)
{
    dtype_t d = {name, t, size, is_float, is_byte};
    types[ntypes++] = d;
}

static void dt_set(const dtype_t *d, void *buf, int i, long long v)
{
    char *p = (char *)buf + (size_t)i * d->size;
    if (d->type == MPI_INT) *(int *)p = (int)v;
    else if (d->type == MPI_DOUBLE) *(double *)p = (double)v;
    else if (d->type == MPI_FLOAT) *(float *)p = (float)v;
    else if (d->type == MPI_LONG_LONG) *(long long *)p = v;
    else if (d->type == MPI_UNSIGNED_CHAR) *(unsigned char *)p = (unsigned char)v;
    else if (d->type == MPI_BYTE) *(unsigned char *)p = (unsigned char)v;
    else if (d->type == MPI_SHORT) *(short *)p = (short)v;
    else if (d->type == MPI_UNSIGNED) *(unsigned *)p = (unsigned)v;
    else if (d->type == MPI_INT8_T) *(int8_t *)p = (int8_t)v;
    else if (d->type == MPI_UINT16_T) *(uint16_t *)p = (uint16_t)v;
    else if (d->type == MPI_INT32_T) *(int32_t *)p = (int32_t)v;
    else if (d->type == MPI_INT64_T) *(int64_t *)p = (int64_t)v;
    else if (d->type == MPI_UINT64_T) *(uint64_t *)p = (uint64_t)v;
}

static long long dt_get(const dtype_t *d, const void *buf, int i)
{
    const char *p = (const char *)buf + (size_t)i * d->size;
    if (d->type == MPI_INT) return *(const int *)p;
    if (d->type == MPI_DOUBLE) return (long long)*(const double *)p;
    if (d->type == MPI_FLOAT) return (long long)*(const float *)p;
    if (d->type == MPI_LONG_LONG) return *(const long long *)p;
    if (d->type == MPI_UNSIGNED_CHAR || d->type == MPI_BYTE) return *(const unsigned char *)p;
    if (d->type == MPI_SHORT) return *(const short *)p;
    if (d->type == MPI_UNSIGNED) return *(const unsigned *)p;
    if (d->type == MPI_INT8_T) return *(const int8_t *)p;
    if (d->type == MPI_UINT16_T) return *(const uint16_t *)p;
    if (d->type == MPI_INT32_T) return *(const int32_t *)p;
    if (d->type == MPI_INT64_T) return *(const int64_t *)p;
    if (d->type == MPI_UINT64_T) return (long long)*(const uint64_t *)p;
    return -999999;
}

typedef struct {
    const char *name;
    MPI_Op op;
    int kind; /* 0 arithmetic (all numeric), 1 logical (integers), 2 bitwise (integers, byte) */
} op_t;

static const op_t *ops;
static int nops;

/* Input of comm rank `r`, element `i`, for `op`: small values whose
 * reduction over up to 8 ranks fits every type, including int8_t. */
static long long input(MPI_Op op, int r, int i)
{
    if (op == MPI_SUM) return (r * 3 + i * 5) % 16;
    if (op == MPI_PROD) return ((r + i) % 3 == 0 && r < 4) ? 2 : 1;
    if (op == MPI_MIN || op == MPI_MAX) return (r * 37 + i * 11 + 7) % 100;
    if (op == MPI_LAND || op == MPI_LOR || op == MPI_LXOR) {
        if (i == 3) return 0;          /* all false */
        if (i == 4) return 2 + r % 3;  /* all true, not only 1 */
        return (r * 7 + i) % 4 == 0 ? 0 : 1 + i % 3;
    }
    return (r * 29 + i * 13 + 1) & 0x7f; /* bitwise */
}

static long long apply(MPI_Op op, long long a, long long b)
{
    if (op == MPI_SUM) return a + b;
    if (op == MPI_PROD) return a * b;
    if (op == MPI_MIN) return a < b ? a : b;
    if (op == MPI_MAX) return a > b ? a : b;
    if (op == MPI_LAND) return (a != 0) && (b != 0);
    if (op == MPI_LOR) return (a != 0) || (b != 0);
    if (op == MPI_LXOR) return (a != 0) != (b != 0);
    if (op == MPI_BAND) return a & b;
    if (op == MPI_BOR) return a | b;
    return a ^ b;
}

/* Reduction of ranks [lo, hi) at element i. */
static long long expected(MPI_Op op, int lo, int hi, int i)
{
    long long acc = input(op, lo, i);
    int r;
    for (r = lo + 1; r < hi; r++)
        acc = apply(op, acc, input(op, r, i));
    return acc;
}

static int applies(const op_t *o, const dtype_t *d)
{
    if (d->is_byte) return o->kind == 2;
    if (d->is_float) return o->kind == 0;
    return 1;
}

/* All datatypes on `ntypes_used` first entries of types[]. */
static int run_reductions(MPI_Comm comm, int ntypes_used)
{
    int rank, size, t, o, i, root, inplace, cases = 0;
    unsigned char sbuf[8 * RSB * 8], rbuf[8 * RSB * 8];
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    for (t = 0; t < ntypes_used; t++) {
        const dtype_t *d = &types[t];
        for (o = 0; o < nops; o++) {
            MPI_Op op = ops[o].op;
            if (!applies(&ops[o], d))
                continue;
            cases++;
            for (inplace = 0; inplace < 2; inplace++) {
                const char *ip = inplace ? " in-place" : "";
                /* Reduce to two different roots. */
                for (root = 0; root < size; root += (size > 1 ? size - 1 : 1)) {
                    void *src = sbuf;
                    for (i = 0; i < NELEM; i++)
                        dt_set(d, sbuf, i, input(op, rank, i));
                    memset(rbuf, 0xee, sizeof rbuf);
                    if (inplace && rank == root) {
                        memcpy(rbuf, sbuf, NELEM * d->size);
                        src = MPI_IN_PLACE;
                    }
                    MPI_Reduce(src, rbuf, NELEM, d->type, op, root, comm);
                    if (rank == root)
                        for (i = 0; i < NELEM; i++)
                            CHECK(dt_get(d, rbuf, i) == expected(op, 0, size, i), "Reduce%s %s %s root %d [%d]: %lld != %lld",
                                  ip, ops[o].name, d->name, root, i, dt_get(d, rbuf, i), expected(op, 0, size, i));
                    if (size == 1)
                        break;
                }
                /* Allreduce. */
                for (i = 0; i < NELEM; i++)
                    dt_set(d, inplace ? rbuf : sbuf, i, input(op, rank, i));
                MPI_Allreduce(inplace ? MPI_IN_PLACE : sbuf, rbuf, NELEM, d->type, op, comm);
                for (i = 0; i < NELEM; i++)
                    CHECK(dt_get(d, rbuf, i) == expected(op, 0, size, i), "Allreduce%s %s %s [%d]", ip, ops[o].name,
                          d->name, i);
                /* Reduce_scatter_block: rank r gets elements [r*RSB, (r+1)*RSB). */
                for (i = 0; i < RSB * size; i++)
                    dt_set(d, inplace ? rbuf : sbuf, i, input(op, rank, i));
                MPI_Reduce_scatter_block(inplace ? MPI_IN_PLACE : sbuf, rbuf, RSB, d->type, op, comm);
                for (i = 0; i < RSB; i++)
                    CHECK(dt_get(d, rbuf, i) == expected(op, 0, size, rank * RSB + i),
                          "Reduce_scatter_block%s %s %s [%d]", ip, ops[o].name, d->name, i);
                /* Scan (inclusive) and Exscan (exclusive; rank 0 undefined). */
                for (i = 0; i < NELEM; i++)
                    dt_set(d, inplace ? rbuf : sbuf, i, input(op, rank, i));
                MPI_Scan(inplace ? MPI_IN_PLACE : sbuf, rbuf, NELEM, d->type, op, comm);
                for (i = 0; i < NELEM; i++)
                    CHECK(dt_get(d, rbuf, i) == expected(op, 0, rank + 1, i), "Scan%s %s %s [%d]", ip, ops[o].name,
                          d->name, i);
                for (i = 0; i < NELEM; i++)
                    dt_set(d, inplace ? rbuf : sbuf, i, input(op, rank, i));
                MPI_Exscan(inplace ? MPI_IN_PLACE : sbuf, rbuf, NELEM, d->type, op, comm);
                if (rank > 0)
                    for (i = 0; i < NELEM; i++)
                        CHECK(dt_get(d, rbuf, i) == expected(op, 0, rank, i), "Exscan%s %s %s [%d]", ip,
                              ops[o].name, d->name, i);
            }
        }
    }
    return cases;
}

/* MINLOC/MAXLOC with ties: the lowest index wins among equal values. */
static void run_loc(MPI_Comm comm)
{
    int rank, size, i, r, m;
    struct { int v; int loc; } in2[NELEM], out2[NELEM];
    struct { double v; int loc; } ind[NELEM], outd[NELEM];
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    for (m = 0; m < 2; m++) {
        MPI_Op op = m ? MPI_MAXLOC : MPI_MINLOC;
        for (i = 0; i < NELEM; i++) {
            in2[i].v = (rank * 5 + i) % 3;
            in2[i].loc = rank;
            ind[i].v = -0.5 * ((rank * 5 + i) % 3);
            ind[i].loc = rank;
        }
        MPI_Allreduce(in2, out2, NELEM, MPI_2INT, op, comm);
        MPI_Allreduce(ind, outd, NELEM, MPI_DOUBLE_INT, op, comm);
        for (i = 0; i < NELEM; i++) {
            int best = (0 * 5 + i) % 3, bestloc = 0;
            double bestd = -0.5 * ((0 * 5 + i) % 3);
            int bestdloc = 0;
            for (r = 1; r < size; r++) {
                int v = (r * 5 + i) % 3;
                double dv = -0.5 * ((r * 5 + i) % 3);
                if (m ? v > best : v < best)
                    best = v, bestloc = r;
                if (m ? dv > bestd : dv < bestd)
                    bestd = dv, bestdloc = r;
            }
            CHECK(out2[i].v == best && out2[i].loc == bestloc, "%s 2INT [%d]: {%d,%d} expected {%d,%d}",
                  m ? "MAXLOC" : "MINLOC", i, out2[i].v, out2[i].loc, best, bestloc);
            CHECK(outd[i].v == bestd && outd[i].loc == bestdloc, "%s DOUBLE_INT [%d]", m ? "MAXLOC" : "MINLOC", i);
        }
        /* Reduce in place at the last rank, and Scan. */
        for (i = 0; i < NELEM; i++) {
            out2[i].v = (rank * 5 + i) % 3;
            out2[i].loc = rank;
        }
        MPI_Reduce(rank == size - 1 ? MPI_IN_PLACE : (void *)out2, rank == size - 1 ? (void *)out2 : NULL, NELEM,
                   MPI_2INT, op, size - 1, comm);
        if (rank == size - 1)
            for (i = 0; i < NELEM; i++) {
                int best = (0 * 5 + i) % 3, bestloc = 0;
                for (r = 1; r < size; r++) {
                    int v = (r * 5 + i) % 3;
                    if (m ? v > best : v < best)
                        best = v, bestloc = r;
                }
                CHECK(out2[i].v == best && out2[i].loc == bestloc, "Reduce in-place %s 2INT [%d]",
                      m ? "MAXLOC" : "MINLOC", i);
            }
        {
            struct { int v; int loc; } sc[NELEM];
            MPI_Scan(in2, sc, NELEM, MPI_2INT, op, comm);
            for (i = 0; i < NELEM; i++) {
                int best = (0 * 5 + i) % 3, bestloc = 0;
                for (r = 1; r <= rank; r++) {
                    int v = (r * 5 + i) % 3;
                    if (m ? v > best : v < best)
                        best = v, bestloc = r;
                }
                CHECK(sc[i].v == best && sc[i].loc == bestloc, "Scan %s 2INT [%d]", m ? "MAXLOC" : "MINLOC", i);
            }
        }
    }
}

/* Value that comm rank r contributes at position i of a data-movement test. */
static int val(int r, int i) { return r * 1000 + i; }

static void run_movement(MPI_Comm comm)
{
    int rank, size, root, i, r, inplace, total;
    int *buf, *all, *counts, *displs, *rcounts, *rdispls;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    all = malloc(sizeof(int) * (size_t)(size * size * 16 + BIG_BCAST));
    buf = malloc(sizeof(int) * (size_t)(size * size * 16 + BIG_BCAST));
    counts = malloc(sizeof(int) * (size_t)size * 4);
    displs = counts + size;
    rcounts = displs + size;
    rdispls = rcounts + size;

    MPI_Barrier(comm);

    /* Bcast from every root, small and large. */
    for (root = 0; root < size; root++) {
        int n = root == size - 1 ? BIG_BCAST : 3;
        for (i = 0; i < n; i++)
            buf[i] = rank == root ? val(root, i) : -1;
        MPI_Bcast(buf, n, MPI_INT, root, comm);
        for (i = 0; i < n; i++)
            if (buf[i] != val(root, i)) {
                CHECK(0, "Bcast root %d n %d [%d]", root, n, i);
                break;
            }
    }

    for (inplace = 0; inplace < 2; inplace++) {
        const char *ip = inplace ? " in-place" : "";
        for (root = 0; root < size; root += (size > 1 ? size - 1 : 1)) {
            /* Gather: 2 ints per rank. */
            for (i = 0; i < 2; i++)
                buf[i] = val(rank, i);
            memset(all, 0xff, sizeof(int) * (size_t)size * 2);
            if (inplace && rank == root) {
                all[root * 2] = val(root, 0);
                all[root * 2 + 1] = val(root, 1);
            }
            MPI_Gather(inplace && rank == root ? MPI_IN_PLACE : buf, 2, MPI_INT, all, 2, MPI_INT, root, comm);
            if (rank == root)
                for (r = 0; r < size; r++)
                    CHECK(all[r * 2] == val(r, 0) && all[r * 2 + 1] == val(r, 1), "Gather%s root %d from %d", ip, root, r);

            /* Gatherv: rank r sends r+1 ints, placed with a gap of 1. */
            total = 0;
            for (r = 0; r < size; r++) {
                counts[r] = r + 1;
                displs[r] = total;
                total += r + 2;
            }
            for (i = 0; i <= rank; i++)
                buf[i] = val(rank, i);
            for (i = 0; i < total; i++)
                all[i] = -7;
            if (inplace && rank == root)
                for (i = 0; i <= root; i++)
                    all[displs[root] + i] = val(root, i);
            MPI_Gatherv(inplace && rank == root ? MPI_IN_PLACE : buf, rank + 1, MPI_INT, all, counts, displs, MPI_INT,
                        root, comm);
            if (rank == root)
                for (r = 0; r < size; r++) {
                    for (i = 0; i <= r; i++)
                        CHECK(all[displs[r] + i] == val(r, i), "Gatherv%s root %d from %d [%d]", ip, root, r, i);
                    CHECK(all[displs[r] + r + 1] == -7, "Gatherv%s wrote into a gap", ip);
                }

            /* Scatter: 2 ints per rank. */
            if (rank == root)
                for (r = 0; r < size; r++)
                    all[r * 2] = val(r, 10), all[r * 2 + 1] = val(r, 11);
            buf[0] = buf[1] = -1;
            MPI_Scatter(all, 2, MPI_INT, inplace && rank == root ? MPI_IN_PLACE : buf, 2, MPI_INT, root, comm);
            if (!(inplace && rank == root))
                CHECK(buf[0] == val(rank, 10) && buf[1] == val(rank, 11), "Scatter%s root %d", ip, root);

            /* Scatterv: rank r gets r+1 ints from displs with gaps. */
            if (rank == root)
                for (r = 0; r < size; r++)
                    for (i = 0; i <= r; i++)
                        all[displs[r] + i] = val(r, 20 + i);
            for (i = 0; i <= rank; i++)
                buf[i] = -1;
            MPI_Scatterv(all, counts, displs, MPI_INT, inplace && rank == root ? MPI_IN_PLACE : buf, rank + 1, MPI_INT,
                         root, comm);
            if (!(inplace && rank == root))
                for (i = 0; i <= rank; i++)
                    CHECK(buf[i] == val(rank, 20 + i), "Scatterv%s root %d [%d]", ip, root, i);
            if (size == 1)
                break;
        }

        /* Allgather. */
        for (i = 0; i < 3; i++)
            buf[i] = val(rank, 30 + i);
        for (i = 0; i < 3 * size; i++)
            all[i] = -1;
        if (inplace)
            for (i = 0; i < 3; i++)
                all[rank * 3 + i] = val(rank, 30 + i);
        MPI_Allgather(inplace ? MPI_IN_PLACE : buf, 3, MPI_INT, all, 3, MPI_INT, comm);
        for (r = 0; r < size; r++)
            for (i = 0; i < 3; i++)
                CHECK(all[r * 3 + i] == val(r, 30 + i), "Allgather%s from %d [%d]", ip, r, i);

        /* Allgatherv: rank r contributes size-r ints. */
        total = 0;
        for (r = 0; r < size; r++) {
            counts[r] = size - r;
            displs[r] = total;
            total += size - r + 1;
        }
        for (i = 0; i < size - rank; i++)
            buf[i] = val(rank, 40 + i);
        for (i = 0; i < total; i++)
            all[i] = -7;
        if (inplace)
            for (i = 0; i < size - rank; i++)
                all[displs[rank] + i] = val(rank, 40 + i);
        MPI_Allgatherv(inplace ? MPI_IN_PLACE : buf, size - rank, MPI_INT, all, counts, displs, MPI_INT, comm);
        for (r = 0; r < size; r++) {
            for (i = 0; i < size - r; i++)
                CHECK(all[displs[r] + i] == val(r, 40 + i), "Allgatherv%s from %d [%d]", ip, r, i);
            CHECK(all[displs[r] + size - r] == -7, "Allgatherv%s wrote into a gap", ip);
        }

        /* Alltoall: 2 ints to every rank; block for r holds val(rank, 100*r+i). */
        for (r = 0; r < size; r++)
            for (i = 0; i < 2; i++)
                (inplace ? all : buf)[r * 2 + i] = val(rank, 100 * r + i);
        MPI_Alltoall(inplace ? MPI_IN_PLACE : buf, 2, MPI_INT, all, 2, MPI_INT, comm);
        for (r = 0; r < size; r++)
            for (i = 0; i < 2; i++)
                CHECK(all[r * 2 + i] == val(r, 100 * rank + i), "Alltoall%s from %d [%d]", ip, r, i);

        /* Alltoallv: rank s sends (s + d) % 3 + 1 ints to rank d. */
        {
            int stotal = 0, rtotal = 0;
            for (r = 0; r < size; r++) {
                counts[r] = (rank + r) % 3 + 1;
                displs[r] = stotal;
                stotal += counts[r] + 1;
                rcounts[r] = (r + rank) % 3 + 1;
                rdispls[r] = rtotal;
                rtotal += rcounts[r] + 2;
            }
            for (i = 0; i < rtotal; i++)
                all[i] = -7;
            for (r = 0; r < size; r++)
                for (i = 0; i < counts[r]; i++)
                    buf[displs[r] + i] = val(rank, 100 * r + 50 + i);
            if (inplace) {
                /* In place: send and receive layout are both rcounts/rdispls. */
                for (r = 0; r < size; r++)
                    for (i = 0; i < rcounts[r]; i++)
                        all[rdispls[r] + i] = val(rank, 100 * r + 50 + i);
                MPI_Alltoallv(MPI_IN_PLACE, NULL, NULL, MPI_DATATYPE_NULL, all, rcounts, rdispls, MPI_INT, comm);
            } else {
                MPI_Alltoallv(buf, counts, displs, MPI_INT, all, rcounts, rdispls, MPI_INT, comm);
            }
            for (r = 0; r < size; r++) {
                for (i = 0; i < rcounts[r]; i++)
                    CHECK(all[rdispls[r] + i] == val(r, 100 * rank + 50 + i), "Alltoallv%s from %d [%d]", ip, r, i);
                CHECK(all[rdispls[r] + rcounts[r]] == -7, "Alltoallv%s wrote into a gap", ip);
            }
        }
    }
    MPI_Barrier(comm);
    free(all);
    free(buf);
    free(counts);
}

int main(int argc, char **argv)
{
    static const op_t all_ops[] = {
        {"SUM", MPI_SUM, 0},   {"PROD", MPI_PROD, 0}, {"MIN", MPI_MIN, 0},   {"MAX", MPI_MAX, 0},
        {"LAND", MPI_LAND, 1}, {"LOR", MPI_LOR, 1},   {"LXOR", MPI_LXOR, 1}, {"BAND", MPI_BAND, 2},
        {"BOR", MPI_BOR, 2},   {"BXOR", MPI_BXOR, 2},
    };
    int rank, size, cases, color;
    MPI_Comm dup, split, odd_out;
    chk_init(&argc, &argv, &rank, &size);
    ops = all_ops;
    nops = (int)(sizeof all_ops / sizeof all_ops[0]);
    /* The first SUBCOMM_TYPES are also run on the derived communicators
     * (all on world only: each pair is a separate collective call, and
     * oversubscribed busy-polling ranks make each call slow). */
    dt_add("int", MPI_INT, sizeof(int), 0, 0);
    dt_add("double", MPI_DOUBLE, sizeof(double), 1, 0);
    dt_add("unsigned char", MPI_UNSIGNED_CHAR, 1, 0, 0);
    dt_add("byte", MPI_BYTE, 1, 0, 1);
    dt_add("float", MPI_FLOAT, sizeof(float), 1, 0);
    dt_add("long long", MPI_LONG_LONG, sizeof(long long), 0, 0);
    dt_add("short", MPI_SHORT, sizeof(short), 0, 0);
    dt_add("unsigned", MPI_UNSIGNED, sizeof(unsigned), 0, 0);
    dt_add("int8_t", MPI_INT8_T, 1, 0, 0);
    dt_add("uint16_t", MPI_UINT16_T, 2, 0, 0);
    dt_add("int32_t", MPI_INT32_T, 4, 0, 0);
    dt_add("int64_t", MPI_INT64_T, 8, 0, 0);
    dt_add("uint64_t", MPI_UINT64_T, 8, 0, 0);

    cases = run_reductions(MPI_COMM_WORLD, ntypes);
    run_loc(MPI_COMM_WORLD);
    run_movement(MPI_COMM_WORLD);
    chk_say("collectives: world size=%d: %d op/type pairs x Reduce,Allreduce,Reduce_scatter_block,Scan,Exscan "
            "(+in-place), MINLOC/MAXLOC, data movement (+in-place): done", size, cases);

    MPI_Comm_dup(MPI_COMM_WORLD, &dup);
    run_reductions(dup, SUBCOMM_TYPES);
    run_loc(dup);
    run_movement(dup);
    chk_say("collectives: dup of world (int, double, unsigned char, byte): done");

    /* Split in two by parity, ranks reversed inside each half. */
    color = rank % 2;
    MPI_Comm_split(MPI_COMM_WORLD, color, size - rank, &split);
    run_reductions(split, SUBCOMM_TYPES);
    run_loc(split);
    run_movement(split);
    chk_say("collectives: split by parity, reversed keys: done");

    /* The last rank stays out (MPI_UNDEFINED); the others form one comm. */
    MPI_Comm_split(MPI_COMM_WORLD, (size > 1 && rank == size - 1) ? MPI_UNDEFINED : 0, rank, &odd_out);
    if (size > 1 && rank == size - 1) {
        CHECK(odd_out == MPI_COMM_NULL, "MPI_UNDEFINED color gives MPI_COMM_NULL");
    } else {
        run_reductions(odd_out, SUBCOMM_TYPES);
        run_movement(odd_out);
        MPI_Comm_free(&odd_out);
    }
    chk_say("collectives: split leaving the last rank out: done");

    MPI_Comm_free(&split);
    MPI_Comm_free(&dup);
    return chk_finish();
}
