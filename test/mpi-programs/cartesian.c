/* ranks: 1-8 */
/*
 * Cartesian topologies: Dims_create (free and fixed entries, errors),
 * Cart_create (periodic and not, fewer ranks than the communicator),
 * Cart_get/Cartdim_get/Cart_coords/Cart_rank (wrapping on periodic
 * dimensions), Cart_shift, a halo exchange along the shifts, Cart_sub,
 * Cart_map, Topo_test, and Comm_dup keeping the grid.
 */
#include "check.h"

static void say_dims(int nnodes, int ndims, const int *given)
{
    int dims[6], i, rc, cls;
    char line[CHK_LINE_MAX];
    int at = 0;
    for (i = 0; i < ndims; i++)
        dims[i] = given ? given[i] : 0;
    rc = MPI_Dims_create(nnodes, ndims, dims);
    at += snprintf(line + at, sizeof line - (size_t)at, "dims_create(%d, %d", nnodes, ndims);
    if (given) {
        at += snprintf(line + at, sizeof line - (size_t)at, ", given");
        for (i = 0; i < ndims; i++)
            at += snprintf(line + at, sizeof line - (size_t)at, " %d", given[i]);
    }
    at += snprintf(line + at, sizeof line - (size_t)at, ") =");
    if (rc != MPI_SUCCESS) {
        MPI_Error_class(rc, &cls);
        snprintf(line + at, sizeof line - (size_t)at, " error class %s", cls == MPI_ERR_DIMS ? "MPI_ERR_DIMS" : cls == MPI_ERR_ARG ? "MPI_ERR_ARG" : "other");
    } else {
        for (i = 0; i < ndims; i++)
            at += snprintf(line + at, sizeof line - (size_t)at, " %d", dims[i]);
    }
    chk_say("%s", line);
}

/* A rank as printed: MPI_PROC_NULL's value differs between MPIs. */
static const char *who(int r, char *buf)
{
    if (r == MPI_PROC_NULL)
        return "none";
    sprintf(buf, "%d", r);
    return buf;
}

int main(int argc, char **argv)
{
    int rank, size, i, status, ndims, crank;
    int dims2[2] = {0, 0}, periods2[2] = {1, 0}, coords[3], back, src, dst;
    MPI_Comm cart, dup, row, line, cube;
    static const int nodes[] = {1, 2, 3, 4, 6, 7, 8, 9, 12, 16, 18, 24, 30, 32, 36, 48, 60, 64, 72, 96, 100,
                                120, 128, 210, 360, 1000, 1024, 2310, 4096};
    static const int fix_a[3] = {0, 3, 0}, fix_b[2] = {2, 0}, fix_c[4] = {0, 0, 2, 0}, bad_a[2] = {5, 0},
                     bad_b[2] = {-1, 0}, whole[2] = {3, 4};
    chk_init(&argc, &argv, &rank, &size);
    chk_say("cartesian: started on %d ranks", size);

    /* Dims_create is local: rank 0 prints a table every MPI must agree on */
    for (i = 0; i < (int)(sizeof nodes / sizeof nodes[0]); i++) {
        int k;
        for (k = 1; k <= 4; k++)
            say_dims(nodes[i], k, NULL);
    }
    say_dims(24, 3, fix_a);
    say_dims(36, 3, fix_a);
    say_dims(8, 2, fix_b);
    say_dims(96, 4, fix_c);
    say_dims(12, 2, whole);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    say_dims(12, 2, bad_a);
    say_dims(12, 2, bad_b);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);

    /* a 2-D grid over every rank, periodic in the first dimension */
    MPI_Topo_test(MPI_COMM_WORLD, &status);
    CHECK_EQ_INT(status, MPI_UNDEFINED, "Topo_test(WORLD)");
    MPI_Dims_create(size, 2, dims2);
    CHECK_MPI(MPI_Cart_create(MPI_COMM_WORLD, 2, dims2, periods2, 0, &cart));
    MPI_Topo_test(cart, &status);
    CHECK_EQ_INT(status, MPI_CART, "Topo_test(cart)");
    MPI_Cartdim_get(cart, &ndims);
    CHECK_EQ_INT(ndims, 2, "Cartdim_get");
    MPI_Comm_rank(cart, &crank);
    CHECK_EQ_INT(crank, rank, "rank in a grid made without reordering");
    {
        int d[2], p[2], c[2], c2[2], up, down, left, right;
        MPI_Cart_get(cart, 2, d, p, c);
        CHECK(d[0] == dims2[0] && d[1] == dims2[1] && p[0] == 1 && p[1] == 0, "Cart_get dims %d %d periods %d %d", d[0], d[1], p[0], p[1]);
        MPI_Cart_coords(cart, crank, 2, c2);
        CHECK(c2[0] == c[0] && c2[1] == c[1], "Cart_coords of this rank");
        MPI_Cart_rank(cart, c, &back);
        CHECK_EQ_INT(back, crank, "Cart_rank(Cart_coords(r))");
        c2[0] = c[0] + 3 * dims2[0]; /* periodic: wraps */
        c2[1] = c[1];
        MPI_Cart_rank(cart, c2, &back);
        CHECK_EQ_INT(back, crank, "Cart_rank wrapping a periodic dimension");
        c2[0] = c[0] - dims2[0];
        MPI_Cart_rank(cart, c2, &back);
        CHECK_EQ_INT(back, crank, "Cart_rank wrapping below 0");
        MPI_Cart_shift(cart, 0, 1, &up, &down);
        MPI_Cart_shift(cart, 1, 1, &left, &right);
        {
            char b[4][16];
            chk_say_ordered(cart, "rank %d at (%d,%d): dim 0 from %s to %s, dim 1 from %s to %s", crank, c[0], c[1], who(up, b[0]),
                            who(down, b[1]), who(left, b[2]), who(right, b[3]));
            MPI_Cart_shift(cart, 1, -2, &src, &dst);
            chk_say_ordered(cart, "rank %d: dim 1 by -2 from %s to %s", crank, who(src, b[0]), who(dst, b[1]));
        }

        /* a halo exchange along both shifts: each rank gets its neighbours' ranks */
        {
            int got[4] = {-7, -7, -7, -7}, expect[4];
            MPI_Sendrecv(&crank, 1, MPI_INT, down, 1, &got[0], 1, MPI_INT, up, 1, cart, MPI_STATUS_IGNORE);
            MPI_Sendrecv(&crank, 1, MPI_INT, up, 2, &got[1], 1, MPI_INT, down, 2, cart, MPI_STATUS_IGNORE);
            MPI_Sendrecv(&crank, 1, MPI_INT, right, 3, &got[2], 1, MPI_INT, left, 3, cart, MPI_STATUS_IGNORE);
            MPI_Sendrecv(&crank, 1, MPI_INT, left, 4, &got[3], 1, MPI_INT, right, 4, cart, MPI_STATUS_IGNORE);
            expect[0] = up;
            expect[1] = down;
            expect[2] = left == MPI_PROC_NULL ? -7 : left;
            expect[3] = right == MPI_PROC_NULL ? -7 : right;
            for (i = 0; i < 4; i++)
                CHECK(got[i] == expect[i], "halo %d: got %d expected %d", i, got[i], expect[i]);
        }

        /* rows: keep dimension 1 */
        {
            int keep[2] = {0, 1}, rsize, rrank, sum = 0, rd[1], rp[1], rc[1];
            MPI_Cart_sub(cart, keep, &row);
            MPI_Comm_size(row, &rsize);
            MPI_Comm_rank(row, &rrank);
            MPI_Allreduce(&crank, &sum, 1, MPI_INT, MPI_SUM, row);
            MPI_Cart_get(row, 1, rd, rp, rc);
            MPI_Topo_test(row, &status);
            CHECK_EQ_INT(status, MPI_CART, "Topo_test(Cart_sub)");
            chk_say_ordered(cart, "rank %d: row of %d, rank %d in it at %d, dims %d periodic %d, sum of grid ranks %d", crank, rsize, rrank, rc[0], rd[0], rp[0], sum);
            MPI_Comm_free(&row);
        }

        /* Comm_dup keeps the grid */
        MPI_Comm_dup(cart, &dup);
        MPI_Topo_test(dup, &status);
        CHECK_EQ_INT(status, MPI_CART, "Topo_test(Comm_dup(cart))");
        MPI_Cart_coords(dup, crank, 2, c2);
        CHECK(c2[0] == c[0] && c2[1] == c[1], "coords in the duplicate");
        MPI_Comm_free(&dup);
    }
    MPI_Comm_free(&cart);

    /* fewer ranks than the communicator: the last one is left out */
    {
        int n = size > 1 ? size - 1 : 1, per = 0, mapped;
        MPI_Cart_create(MPI_COMM_WORLD, 1, &n, &per, 0, &line);
        if (rank < n) {
            int lsize;
            CHECK(line != MPI_COMM_NULL, "rank %d of %d must be in the line", rank, n);
            MPI_Comm_size(line, &lsize);
            CHECK_EQ_INT(lsize, n, "line size");
            MPI_Cart_shift(line, 0, 1, &src, &dst);
            CHECK(src == (rank == 0 ? MPI_PROC_NULL : rank - 1) && dst == (rank == n - 1 ? MPI_PROC_NULL : rank + 1), "line shift %d %d", src, dst);
            MPI_Comm_free(&line);
        } else {
            CHECK(line == MPI_COMM_NULL, "rank %d is not in a line of %d", rank, n);
        }
        MPI_Cart_map(MPI_COMM_WORLD, 1, &n, &per, &mapped);
        CHECK_EQ_INT(mapped, rank < n ? rank : MPI_UNDEFINED, "Cart_map");
        chk_say("line of %d over %d ranks: ok", n, size);
    }

    /* a periodic 3-D grid, reordering allowed: coordinates and ranks still agree */
    {
        int d3[3] = {0, 0, 0}, p3[3] = {1, 1, 1}, r3, all;
        MPI_Dims_create(size, 3, d3);
        MPI_Cart_create(MPI_COMM_WORLD, 3, d3, p3, 1, &cube);
        MPI_Comm_rank(cube, &r3);
        MPI_Cart_coords(cube, r3, 3, coords);
        MPI_Cart_rank(cube, coords, &back);
        CHECK_EQ_INT(back, r3, "3-D Cart_rank(Cart_coords(r))");
        for (i = 0; i < 3; i++) {
            MPI_Cart_shift(cube, i, d3[i], &src, &dst);
            CHECK(src == r3 && dst == r3, "a full turn in dimension %d comes back: %d %d", i, src, dst);
        }
        MPI_Allreduce(&r3, &all, 1, MPI_INT, MPI_SUM, cube);
        CHECK_EQ_INT(all, size * (size - 1) / 2, "every rank once in the cube");
        chk_say("cube %d x %d x %d: ok", d3[0], d3[1], d3[2]);
        MPI_Comm_free(&cube);
    }
    return chk_finish();
}
