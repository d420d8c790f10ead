/* ranks: 1-8 */
/*
 * Nonblocking collectives: Ibarrier, Ibcast, Ireduce (a non-commutative user
 * op: rank order), Iallreduce (MPI_IN_PLACE too), Igather, Iscatter,
 * Iallgather, Ialltoall, the v-variants, Ireduce_scatter_block, Iscan and
 * Iexscan; several outstanding on one communicator and
 * completed in another order; a blocking collective and point-to-point
 * traffic between a start and its wait; Test until done; a split
 * communicator.
 */
#include "check.h"

/* 2x2 integer matrices, inout = in x inout: not commutative */
static void matmul(void *in, void *inout, int *len, MPI_Datatype *type)
{
    int *a = in, *b = inout, i;
    (void)type;
    for (i = 0; i < *len; i++, a += 4, b += 4) {
        int c0 = a[0] * b[0] + a[1] * b[2], c1 = a[0] * b[1] + a[1] * b[3];
        int c2 = a[2] * b[0] + a[3] * b[2], c3 = a[2] * b[1] + a[3] * b[3];
        b[0] = c0, b[1] = c1, b[2] = c2, b[3] = c3;
    }
}

int main(int argc, char **argv)
{
    int rank, size, i, flag, root;
    MPI_Request req[4];
    chk_init(&argc, &argv, &rank, &size);
    chk_say("nonblocking-collectives: started on %d ranks", size);

    /* several at once, waited for in reverse order, a blocking one between */
    {
        int b = rank == size - 1 ? 4242 : -1, sum = rank + 1, mx = -1, bsum = 0;
        double d = rank * 0.5, dsum = 0;
        MPI_Ibcast(&b, 1, MPI_INT, size - 1, MPI_COMM_WORLD, &req[0]);
        MPI_Iallreduce(MPI_IN_PLACE, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &req[1]);
        MPI_Iallreduce(&rank, &mx, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &req[2]);
        MPI_Ibarrier(MPI_COMM_WORLD, &req[3]);
        MPI_Allreduce(&d, &dsum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        {
            int right = (rank + 1) % size, left = (rank + size - 1) % size, got = -1;
            MPI_Sendrecv(&rank, 1, MPI_INT, right, 9, &got, 1, MPI_INT, left, 9, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            CHECK_EQ_INT(got, left, "ring exchange while collectives are pending");
        }
        for (i = 3; i >= 0; i--)
            MPI_Wait(&req[i], MPI_STATUS_IGNORE);
        CHECK_EQ_INT(b, 4242, "Ibcast");
        CHECK_EQ_INT(sum, size * (size + 1) / 2, "Iallreduce SUM in place");
        CHECK_EQ_INT(mx, size - 1, "Iallreduce MAX");
        CHECK(dsum == 0.25 * size * (size - 1), "blocking Allreduce between: %g", dsum);
        MPI_Allreduce(&b, &bsum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        chk_say("four outstanding: bcast %d, sum %d, max %d, allreduce between %g", b, sum, mx, dsum);
    }

    /* Ireduce with a non-commutative op, each rank a root once; Test until done */
    for (root = 0; root < size; root++) {
        int m[4], res[4] = {0, 0, 0, 0};
        MPI_Op op;
        MPI_Datatype mat;
        MPI_Type_contiguous(4, MPI_INT, &mat);
        MPI_Type_commit(&mat);
        MPI_Op_create(matmul, 0, &op);
        m[0] = 1, m[1] = rank + 1, m[2] = rank % 2, m[3] = 1;
        MPI_Ireduce(m, res, 1, mat, op, root, MPI_COMM_WORLD, &req[0]);
        flag = 0;
        while (!flag)
            MPI_Test(&req[0], &flag, MPI_STATUS_IGNORE);
        if (rank == root) {
            int all[4];
            memcpy(all, res, sizeof all);
            if (root != 0)
                MPI_Send(all, 4, MPI_INT, 0, 11, MPI_COMM_WORLD);
        }
        if (rank == 0) {
            int all[4];
            if (root != 0)
                MPI_Recv(all, 4, MPI_INT, root, 11, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            else
                memcpy(all, res, sizeof all);
            chk_say("Ireduce at root %d: [[%d,%d],[%d,%d]]", root, all[0], all[1], all[2], all[3]);
        }
        MPI_Op_free(&op);
        MPI_Type_free(&mat);
    }

    /* gather, scatter, allgather, alltoall */
    {
        int *g = malloc(sizeof(int) * 2 * (size_t)size), *a = malloc(sizeof(int) * (size_t)size),
            *t_out = malloc(sizeof(int) * (size_t)size), *t_in = malloc(sizeof(int) * (size_t)size);
        int two[2] = {rank * 10, rank * 10 + 1}, sc[2] = {-1, -1};
        int *scat = malloc(sizeof(int) * 2 * (size_t)size);
        for (i = 0; i < 2 * size; i++)
            scat[i] = 1000 + i;
        for (i = 0; i < size; i++)
            t_out[i] = rank * 100 + i;
        MPI_Igather(two, 2, MPI_INT, g, 2, MPI_INT, 0, MPI_COMM_WORLD, &req[0]);
        MPI_Iscatter(scat, 2, MPI_INT, sc, 2, MPI_INT, size / 2, MPI_COMM_WORLD, &req[1]);
        MPI_Iallgather(&rank, 1, MPI_INT, a, 1, MPI_INT, MPI_COMM_WORLD, &req[2]);
        MPI_Ialltoall(t_out, 1, MPI_INT, t_in, 1, MPI_INT, MPI_COMM_WORLD, &req[3]);
        MPI_Waitall(4, req, MPI_STATUSES_IGNORE);
        if (rank == 0)
            for (i = 0; i < size; i++)
                CHECK(g[2 * i] == i * 10 && g[2 * i + 1] == i * 10 + 1, "Igather block %d", i);
        CHECK(sc[0] == 1000 + 2 * rank && sc[1] == 1001 + 2 * rank, "Iscatter got %d %d", sc[0], sc[1]);
        for (i = 0; i < size; i++) {
            CHECK_EQ_INT(a[i], i, "Iallgather");
            CHECK_EQ_INT(t_in[i], i * 100 + rank, "Ialltoall");
        }
        chk_say_ordered(MPI_COMM_WORLD, "rank %d: scatter %d %d, alltoall first %d last %d", rank, sc[0], sc[1], t_in[0], t_in[size - 1]);
        free(g), free(a), free(t_out), free(t_in), free(scat);
    }

    /* the v-variants (rank i contributes i + 1 elements), reduce_scatter_block, scans */
    {
        int *counts = malloc(sizeof(int) * (size_t)size), *displs = malloc(sizeof(int) * (size_t)size), total = 0;
        int *mine = malloc(sizeof(int) * (size_t)(rank + 1)), *all = malloc(sizeof(int) * (size_t)(size * (size + 1) / 2));
        int *gv = malloc(sizeof(int) * (size_t)(size * (size + 1) / 2)), *sv = malloc(sizeof(int) * (size_t)(size * (size + 1) / 2));
        int *a2a_sc = malloc(sizeof(int) * (size_t)size), *a2a_sd = malloc(sizeof(int) * (size_t)size);
        int *a2a_rc = malloc(sizeof(int) * (size_t)size), *a2a_rd = malloc(sizeof(int) * (size_t)size);
        int *a2a_out, *a2a_in, so = 0, ro = 0, got_sv[8], rsb_in[8 * 2], rsb[2], sc = 0, ex = -1;
        MPI_Request r7[7];
        for (i = 0; i < size; i++) {
            counts[i] = i + 1;
            displs[i] = total;
            total += i + 1;
            a2a_sc[i] = i + 1; /* to rank i: i + 1 ints */
            a2a_sd[i] = so;
            so += i + 1;
            a2a_rc[i] = rank + 1; /* from every rank: rank + 1 ints */
            a2a_rd[i] = ro;
            ro += rank + 1;
        }
        a2a_out = malloc(sizeof(int) * (size_t)so);
        a2a_in = malloc(sizeof(int) * (size_t)ro);
        for (i = 0; i < so; i++)
            a2a_out[i] = rank * 1000 + i;
        for (i = 0; i <= rank; i++)
            mine[i] = rank * 100 + i;
        for (i = 0; i < total; i++)
            sv[i] = 5000 + i;
        for (i = 0; i < 2 * size; i++)
            rsb_in[i] = rank + i;
        MPI_Igatherv(mine, rank + 1, MPI_INT, gv, counts, displs, MPI_INT, size - 1, MPI_COMM_WORLD, &r7[0]);
        MPI_Iscatterv(sv, counts, displs, MPI_INT, got_sv, rank + 1, MPI_INT, 0, MPI_COMM_WORLD, &r7[1]);
        MPI_Iallgatherv(mine, rank + 1, MPI_INT, all, counts, displs, MPI_INT, MPI_COMM_WORLD, &r7[2]);
        MPI_Ialltoallv(a2a_out, a2a_sc, a2a_sd, MPI_INT, a2a_in, a2a_rc, a2a_rd, MPI_INT, MPI_COMM_WORLD, &r7[3]);
        MPI_Ireduce_scatter_block(rsb_in, rsb, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &r7[4]);
        MPI_Iscan(&rank, &sc, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &r7[5]);
        MPI_Iexscan(&rank, &ex, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD, &r7[6]);
        MPI_Waitall(7, r7, MPI_STATUSES_IGNORE);
        if (rank == size - 1)
            for (i = 0; i < size; i++) {
                int k;
                for (k = 0; k <= i; k++)
                    CHECK(gv[displs[i] + k] == i * 100 + k, "Igatherv block %d element %d", i, k);
            }
        for (i = 0; i <= rank; i++)
            CHECK(got_sv[i] == 5000 + displs[rank] + i, "Iscatterv element %d", i);
        for (i = 0; i < size; i++) {
            int k;
            for (k = 0; k <= i; k++)
                CHECK(all[displs[i] + k] == i * 100 + k, "Iallgatherv block %d element %d", i, k);
            for (k = 0; k <= rank; k++) /* rank i sent us its block for rank `rank`: at its offset rank*(rank+1)/2 */
                CHECK(a2a_in[a2a_rd[i] + k] == i * 1000 + rank * (rank + 1) / 2 + k, "Ialltoallv from %d element %d", i, k);
        }
        CHECK(rsb[0] == size * (size - 1) / 2 + 2 * rank * size && rsb[1] == rsb[0] + size, "Ireduce_scatter_block %d %d", rsb[0], rsb[1]);
        CHECK_EQ_INT(sc, rank * (rank + 1) / 2, "Iscan");
        if (rank > 0)
            CHECK_EQ_INT(ex, rank * (rank - 1) / 2, "Iexscan");
        chk_say_ordered(MPI_COMM_WORLD, "rank %d: scatterv last %d, reduce_scatter_block %d %d, scan %d, exscan %d", rank, got_sv[rank], rsb[0], rsb[1], sc, rank > 0 ? ex : 0);
        free(counts), free(displs), free(mine), free(all), free(gv), free(sv);
        free(a2a_sc), free(a2a_sd), free(a2a_rc), free(a2a_rd), free(a2a_out), free(a2a_in);
    }

    /* on a split communicator, with a large broadcast (rendezvous-sized) */
    {
        MPI_Comm half;
        int n = 100000, hrank, ok = 1;
        double *big = malloc(sizeof(double) * (size_t)n);
        MPI_Comm_split(MPI_COMM_WORLD, rank % 2, -rank, &half);
        MPI_Comm_rank(half, &hrank);
        for (i = 0; i < n; i++)
            big[i] = hrank == 0 ? i * 0.5 + rank % 2 : -1;
        MPI_Ibcast(big, n, MPI_DOUBLE, 0, half, &req[0]);
        MPI_Wait(&req[0], MPI_STATUS_IGNORE);
        for (i = 0; i < n; i++)
            ok &= big[i] == i * 0.5 + rank % 2;
        CHECK(ok, "large Ibcast on a split communicator");
        MPI_Comm_free(&half);
        free(big);
        chk_say("large Ibcast on split communicators: ok");
    }
    return chk_finish();
}
