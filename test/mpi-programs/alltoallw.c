/* ranks: 1-8 */
/*
 * Alltoallw (a datatype per peer, displacements in bytes, a strided receive
 * type, a zero count, MPI_IN_PLACE), Ialltoallw, and Ireduce_scatter (a count
 * per rank, one of them 0, MPI_IN_PLACE, a non-commutative op), with the
 * nonblocking ones outstanding at once around a blocking collective.
 * Ialltoall (blocks of 128 KiB), Ialltoallv and Ialltoallw with
 * MPI_IN_PLACE, outstanding together around an Allreduce: each block replaced
 * by the peer's, the gaps between Ialltoallv's blocks untouched.
 */
#include "check.h"

#define SLOT_INTS 8 /* room per peer in a receive buffer, in ints */
#define BIG_BLOCK 32768 /* ints per peer in the in-place Ialltoall: 128 KiB, sent from the buffer, not copied */

/* Ints rank a sends rank b (and b sends a: symmetric, as MPI_IN_PLACE needs); 0 for one pair. */
static int n_between(int a, int b)
{
    return (a + b) % 4 == 3 ? 0 : (a + b) % 3 + 1;
}

static int value(int from, int to, int k)
{
    return from * 1000 + to * 10 + k;
}

/* Keeps the earlier rank's value: the result of a reduction is rank 0's. */
static void first_of(void *in, void *inout, int *len, MPI_Datatype *type)
{
    int i;
    (void)type;
    for (i = 0; i < *len; i++)
        ((int *)inout)[i] = ((int *)in)[i];
}

/* Where element k from `from` lands in my receive slot: every int, or every other one. */
static int place(int from, int k, int me)
{
    return (from + me) % 2 ? 2 * k : k;
}

/* Checks rank me's receive buffer after an all-to-all-w; returns a checksum of it. */
static long long check_received(const int *recv, int me, int size, const char *what)
{
    long long sum = 0;
    int j, k, i;
    for (j = 0; j < size; j++) {
        int expect[SLOT_INTS];
        for (i = 0; i < SLOT_INTS; i++)
            expect[i] = -1;
        for (k = 0; k < n_between(me, j); k++)
            expect[place(j, k, me)] = value(j, me, k);
        for (i = 0; i < SLOT_INTS; i++) {
            CHECK(recv[j * SLOT_INTS + i] == expect[i], "%s: from %d slot %d: %d, expected %d", what, j, i,
                  recv[j * SLOT_INTS + i], expect[i]);
            sum += (long long)(j * SLOT_INTS + i + 1) * recv[j * SLOT_INTS + i];
        }
    }
    return sum;
}

int main(int argc, char **argv)
{
    int rank, size, i, j, k, total;
    MPI_Datatype every_other, one_int;
    chk_init(&argc, &argv, &rank, &size);
    chk_say("alltoallw: started on %d ranks", size);

    /* an int with the extent of two: received into every other int */
    MPI_Type_create_resized(MPI_INT, 0, 2 * sizeof(int), &every_other);
    MPI_Type_commit(&every_other);
    MPI_Type_contiguous(1, MPI_INT, &one_int);
    MPI_Type_commit(&one_int);

    int *scounts = malloc(sizeof(int) * size), *sdispls = malloc(sizeof(int) * size);
    int *rcounts = malloc(sizeof(int) * size), *rdispls = malloc(sizeof(int) * size);
    MPI_Datatype *stypes = malloc(sizeof(MPI_Datatype) * size), *rtypes = malloc(sizeof(MPI_Datatype) * size);
    int *send = malloc(sizeof(int) * size * SLOT_INTS), *recv = malloc(sizeof(int) * size * SLOT_INTS);
    int *irecv = malloc(sizeof(int) * size * SLOT_INTS);
    for (i = 0; i < size; i++) {
        scounts[i] = rcounts[i] = n_between(rank, i);
        /* send slots in reverse peer order: the displacements say where */
        sdispls[i] = (int)((size - 1 - i) * SLOT_INTS * sizeof(int));
        rdispls[i] = (int)(i * SLOT_INTS * sizeof(int));
        stypes[i] = i % 2 ? one_int : MPI_INT;
        rtypes[i] = (i + rank) % 2 ? every_other : MPI_INT;
        for (k = 0; k < SLOT_INTS; k++)
            send[(size - 1 - i) * SLOT_INTS + k] = k < scounts[i] ? value(rank, i, k) : -7;
    }
    for (i = 0; i < size * SLOT_INTS; i++)
        recv[i] = irecv[i] = -1;
    MPI_Alltoallw(send, scounts, sdispls, stypes, recv, rcounts, rdispls, rtypes, MPI_COMM_WORLD);
    chk_say_ordered(MPI_COMM_WORLD, "alltoallw rank %d: checksum %lld", rank,
                    check_received(recv, rank, size, "Alltoallw"));

    /* MPI_IN_PLACE: block j of the buffer goes to rank j and is replaced by what rank j sends */
    for (i = 0; i < size * SLOT_INTS; i++)
        recv[i] = -1;
    for (j = 0; j < size; j++)
        for (k = 0; k < n_between(rank, j); k++)
            recv[j * SLOT_INTS + place(j, k, rank)] = value(rank, j, k);
    MPI_Alltoallw(MPI_IN_PLACE, NULL, NULL, NULL, recv, rcounts, rdispls, rtypes, MPI_COMM_WORLD);
    chk_say_ordered(MPI_COMM_WORLD, "alltoallw in place rank %d: checksum %lld", rank,
                    check_received(recv, rank, size, "Alltoallw in place"));

    /* Ireduce_scatter: rank i gets i + 1 elements, except ranks 1, 4, 7 (none) */
    int *counts = malloc(sizeof(int) * size);
    total = 0;
    for (i = 0; i < size; i++) {
        counts[i] = i % 3 == 1 ? 0 : i + 1;
        total += counts[i];
    }
    int *vec = malloc(sizeof(int) * (total + 1)), *mine = malloc(sizeof(int) * (counts[rank] + 1));
    int *inplace = malloc(sizeof(int) * (total + 1)), *firsts = malloc(sizeof(int) * (counts[rank] + 1));
    for (k = 0; k < total; k++)
        vec[k] = inplace[k] = rank * 7 + k;
    MPI_Op first;
    MPI_Op_create(first_of, 0, &first);
    MPI_Request req[4];
    MPI_Ialltoallw(send, scounts, sdispls, stypes, irecv, rcounts, rdispls, rtypes, MPI_COMM_WORLD, &req[0]);
    MPI_Ireduce_scatter(vec, mine, counts, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &req[1]);
    MPI_Ireduce_scatter(MPI_IN_PLACE, inplace, counts, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &req[2]);
    MPI_Ireduce_scatter(vec, firsts, counts, MPI_INT, first, MPI_COMM_WORLD, &req[3]);
    int everyone = 0;
    MPI_Allreduce(&rank, &everyone, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    CHECK_EQ_INT(everyone, size * (size - 1) / 2, "Allreduce while they are outstanding");
    for (i = 3; i >= 0; i--)
        MPI_Wait(&req[i], MPI_STATUS_IGNORE);
    chk_say_ordered(MPI_COMM_WORLD, "ialltoallw rank %d: checksum %lld", rank,
                    check_received(irecv, rank, size, "Ialltoallw"));
    int offset = 0;
    long long sum = 0;
    for (i = 0; i < rank; i++)
        offset += counts[i];
    for (k = 0; k < counts[rank]; k++) {
        int at = offset + k;
        CHECK_EQ_INT(mine[k], 7 * size * (size - 1) / 2 + size * at, "Ireduce_scatter sum");
        CHECK_EQ_INT(inplace[k], (size - 1) * 7 + at, "Ireduce_scatter in place max");
        CHECK_EQ_INT(firsts[k], at, "Ireduce_scatter non-commutative: rank 0's");
        sum += mine[k] + inplace[k] + firsts[k];
    }
    chk_say_ordered(MPI_COMM_WORLD, "ireduce_scatter rank %d: %d elements from %d, sum %lld", rank, counts[rank],
                    offset, sum);

    /* the nonblocking all-to-alls in place, outstanding together */
    int *ia = malloc(sizeof(int) * size * BIG_BLOCK), *iv = malloc(sizeof(int) * size * SLOT_INTS);
    int *vcounts = malloc(sizeof(int) * size), *vdispls = malloc(sizeof(int) * size);
    for (j = 0; j < size; j++) {
        vcounts[j] = n_between(rank, j);
        vdispls[j] = (size - 1 - j) * SLOT_INTS + 1; /* blocks in reverse peer order, a gap before each */
        for (k = 0; k < BIG_BLOCK; k++)
            ia[j * BIG_BLOCK + k] = value(rank, j, k);
    }
    for (i = 0; i < size * SLOT_INTS; i++)
        iv[i] = -5;
    for (j = 0; j < size; j++)
        for (k = 0; k < vcounts[j]; k++)
            iv[vdispls[j] + k] = value(rank, j, k);
    for (i = 0; i < size * SLOT_INTS; i++)
        recv[i] = -1;
    for (j = 0; j < size; j++)
        for (k = 0; k < n_between(rank, j); k++)
            recv[j * SLOT_INTS + place(j, k, rank)] = value(rank, j, k);
    MPI_Ialltoall(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, ia, BIG_BLOCK, MPI_INT, MPI_COMM_WORLD, &req[0]);
    MPI_Ialltoallv(MPI_IN_PLACE, NULL, NULL, MPI_DATATYPE_NULL, iv, vcounts, vdispls, MPI_INT, MPI_COMM_WORLD,
                   &req[1]);
    MPI_Ialltoallw(MPI_IN_PLACE, NULL, NULL, NULL, recv, rcounts, rdispls, rtypes, MPI_COMM_WORLD, &req[2]);
    everyone = 0;
    MPI_Allreduce(&rank, &everyone, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    CHECK_EQ_INT(everyone, size * (size - 1) / 2, "Allreduce while the in-place ones are outstanding");
    MPI_Waitall(3, req, MPI_STATUSES_IGNORE);
    long long asum = 0, vsum = 0;
    for (j = 0; j < size; j++) {
        int wrong = 0;
        for (k = 0; k < BIG_BLOCK; k++) {
            wrong += ia[j * BIG_BLOCK + k] != value(j, rank, k);
            asum += ia[j * BIG_BLOCK + k];
        }
        CHECK_EQ_INT(wrong, 0, "Ialltoall in place: elements not the peer's");
    }
    for (i = 0; i < size * SLOT_INTS; i++) {
        int want = -5;
        for (j = 0; j < size; j++)
            if (i >= vdispls[j] && i < vdispls[j] + vcounts[j])
                want = value(j, rank, i - vdispls[j]);
        CHECK_EQ_INT(iv[i], want, "Ialltoallv in place (gaps untouched)");
        vsum += iv[i];
    }
    chk_say_ordered(MPI_COMM_WORLD, "ialltoall(v,w) in place rank %d: sums %lld %lld, checksum %lld", rank, asum, vsum,
                    check_received(recv, rank, size, "Ialltoallw in place"));
    free(ia), free(iv), free(vcounts), free(vdispls);

    MPI_Op_free(&first);
    MPI_Type_free(&every_other);
    MPI_Type_free(&one_int);
    free(scounts), free(sdispls), free(rcounts), free(rdispls), free(stypes), free(rtypes);
    free(send), free(recv), free(irecv), free(counts), free(vec), free(mine), free(inplace), free(firsts);
    return chk_finish();
}
