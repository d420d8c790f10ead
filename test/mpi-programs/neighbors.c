/* ranks: 1-8 */
/*
 * Graph topologies and neighborhood collectives: Graph_create (a ring with a
 * chord) and its queries, Dist_graph_create_adjacent (weighted), and
 * Dist_graph_create with every edge given by rank 0 (its neighbor order is
 * the implementation's: lists are printed sorted); Topo_test of each; on a
 * Cartesian grid (one periodic, one open dimension: MPI_PROC_NULL blocks stay
 * untouched) and on the graphs, Neighbor_allgather(v) and
 * Neighbor_alltoall(v,w), blocking and nonblocking, several outstanding at once.
 */
#include <stddef.h>

#include "check.h"

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* "a b c" of n ints, sorted (when asked) into `line` */
static char *list(char *line, size_t cap, const int *v, int n, int sorted)
{
    int tmp[64], i;
    size_t at = 0;
    for (i = 0; i < n && i < 64; i++)
        tmp[i] = v[i];
    if (sorted)
        qsort(tmp, (size_t)n, sizeof(int), cmp_int);
    line[0] = '\0';
    for (i = 0; i < n && i < 64 && at < cap; i++)
        at += (size_t)snprintf(line + at, cap - at, "%s%d", i ? " " : "", tmp[i]);
    return line;
}

int main(int argc, char **argv)
{
    int rank, size, i, status, n;
    char l1[80], l2[80], l3[80];
    chk_init(&argc, &argv, &rank, &size);
    chk_say("neighbors: started on %d ranks", size);

    /* ---- a Cartesian grid: rows periodic, columns open ---- */
    int dims[2] = { 0, 0 }, periods[2] = { 1, 0 }, coords[2];
    MPI_Comm grid;
    MPI_Dims_create(size, 2, dims);
    MPI_Cart_create(MPI_COMM_WORLD, 2, dims, periods, 0, &grid);
    MPI_Cart_coords(grid, rank, 2, coords);
    int got4[4] = { -1, -1, -1, -1 }, to4[4], from4[4] = { -1, -1, -1, -1 };
    MPI_Neighbor_allgather(&rank, 1, MPI_INT, got4, 1, MPI_INT, grid);
    for (i = 0; i < 4; i++)
        to4[i] = rank * 10 + i; /* block i goes to neighbor i: below/above in dim 0, then dim 1 */
    MPI_Neighbor_alltoall(to4, 1, MPI_INT, from4, 1, MPI_INT, grid);
    chk_say_ordered(MPI_COMM_WORLD, "grid %dx%d rank %d (%d,%d): allgather %s; alltoall %s", dims[0], dims[1], rank,
                    coords[0], coords[1], list(l1, sizeof l1, got4, 4, 0), list(l2, sizeof l2, from4, 4, 0));

    /* ---- an MPI-1 graph: a ring, and a chord between rank 0 and rank size/2 (both ways) ---- */
    int *index = malloc(sizeof(int) * size), *edges = malloc(sizeof(int) * 4 * size), e = 0;
    for (i = 0; i < size; i++) {
        if (size > 1) {
            edges[e++] = (i + 1) % size;
            edges[e++] = (i + size - 1) % size;
        }
        if (size > 3 && (i == 0 || i == size / 2))
            edges[e++] = i == 0 ? size / 2 : 0;
        index[i] = e;
    }
    MPI_Comm graph;
    MPI_Graph_create(MPI_COMM_WORLD, size, index, edges, 0, &graph);
    MPI_Topo_test(graph, &status);
    int nnodes, nedges, nn, nbrs[8];
    MPI_Graphdims_get(graph, &nnodes, &nedges);
    MPI_Graph_neighbors_count(graph, rank, &nn);
    MPI_Graph_neighbors(graph, rank, 8, nbrs);
    chk_say("graph: Topo_test %s, %d nodes, %d edges", status == MPI_GRAPH ? "MPI_GRAPH" : "?", nnodes, nedges);
    int vals[8];
    MPI_Neighbor_allgather(&rank, 1, MPI_INT, vals, 1, MPI_INT, graph);
    chk_say_ordered(MPI_COMM_WORLD, "graph rank %d: %d neighbors %s; allgather %s", rank, nn,
                    list(l1, sizeof l1, nbrs, nn, 0), list(l2, sizeof l2, vals, nn, 0));
    CHECK(memcmp(vals, nbrs, sizeof(int) * nn) == 0, "graph allgather gives the neighbors' ranks in order");

    /* ---- a weighted distributed graph: in from left and right, out to right and left ---- */
    int left = (rank + size - 1) % size, right = (rank + 1) % size;
    int in2[2] = { left, right }, inw[2] = { 1, 2 }, out2[2] = { right, left }, outw[2] = { 2, 1 };
    MPI_Comm ring;
    MPI_Dist_graph_create_adjacent(MPI_COMM_WORLD, 2, in2, inw, 2, out2, outw, MPI_INFO_NULL, 0, &ring);
    MPI_Topo_test(ring, &status);
    int indeg, outdeg, weighted, qs[2], qsw[2], qd[2], qdw[2];
    MPI_Dist_graph_neighbors_count(ring, &indeg, &outdeg, &weighted);
    MPI_Dist_graph_neighbors(ring, 2, qs, qsw, 2, qd, qdw);
    CHECK(qs[0] == left && qs[1] == right && qsw[1] == 2 && qd[0] == right && qdw[0] == 2, "adjacent lists kept");
    chk_say("dist graph ring: Topo_test %s, in %d out %d weighted %d",
            status == MPI_DIST_GRAPH ? "MPI_DIST_GRAPH" : "?", indeg, outdeg, weighted);
    /* alltoallv: 1 int to the right, 2 to the left; from the left 1, from the right 2 */
    int sv[3] = { rank * 100 + 1, rank * 100 + 2, rank * 100 + 3 }, scounts[2] = { 1, 2 }, sdispls[2] = { 0, 1 };
    int rv[4] = { -1, -1, -1, -1 }, rcounts[2] = { 1, 2 }, rdispls[2] = { 0, 2 };
    /* alltoallw: a double to the right, an int to the left (byte displacements in one struct each side) */
    struct pair { double d; int i; } swbuf = { rank + 0.5, rank * 3 }, wbuf = { -1, -1 };
    MPI_Aint wsd[2] = { offsetof(struct pair, d), offsetof(struct pair, i) };
    MPI_Aint wrd[2] = { offsetof(struct pair, d), offsetof(struct pair, i) };
    int wsc[2] = { 1, 1 }, wrc[2] = { 1, 1 };
    MPI_Datatype wst[2] = { MPI_DOUBLE, MPI_INT }, wrt[2] = { MPI_DOUBLE, MPI_INT };
    MPI_Request req[3];
    int ag[2] = { -1, -1 };
    MPI_Ineighbor_alltoallv(sv, scounts, sdispls, MPI_INT, rv, rcounts, rdispls, MPI_INT, ring, &req[0]);
    MPI_Ineighbor_alltoallw(&swbuf, wsc, wsd, wst, &wbuf, wrc, wrd, wrt, ring, &req[1]);
    MPI_Ineighbor_allgather(&rank, 1, MPI_INT, ag, 1, MPI_INT, ring, &req[2]);
    MPI_Waitall(3, req, MPI_STATUSES_IGNORE);
    CHECK(rv[0] == left * 100 + 1, "alltoallv from the left: %d", rv[0]);
    CHECK(rv[2] == right * 100 + 2 && rv[3] == right * 100 + 3, "alltoallv from the right");
    CHECK(wbuf.d == left + 0.5 && wbuf.i == right * 3, "alltoallw: %g %d", wbuf.d, wbuf.i);
    chk_say_ordered(MPI_COMM_WORLD, "ring rank %d: alltoallv %d %d %d %d; alltoallw %.1f %d; allgather %d %d", rank,
                    rv[0], rv[1], rv[2], rv[3], wbuf.d, wbuf.i, ag[0], ag[1]);

    /* ---- Dist_graph_create: rank 0 gives every edge i -> (i*3+1) % size and i -> (i+size/2) % size ---- */
    MPI_Comm dg;
    int *srcs = NULL, *degs = NULL, *dsts = NULL, *wts = NULL;
    n = 0;
    if (rank == 0) {
        n = size;
        srcs = malloc(sizeof(int) * size);
        degs = malloc(sizeof(int) * size);
        dsts = malloc(sizeof(int) * 2 * size);
        wts = malloc(sizeof(int) * 2 * size);
        for (i = 0; i < size; i++) {
            srcs[i] = i;
            degs[i] = 2;
            dsts[2 * i] = (i * 3 + 1) % size;
            dsts[2 * i + 1] = (i + size / 2) % size;
            wts[2 * i] = 10 + i;
            wts[2 * i + 1] = 20 + i;
        }
    }
    MPI_Dist_graph_create(MPI_COMM_WORLD, n, srcs, degs, dsts, wts, MPI_INFO_NULL, 0, &dg);
    int ind, outd, w, is[16], iw[16], os[16], ow[16];
    MPI_Dist_graph_neighbors_count(dg, &ind, &outd, &w);
    MPI_Dist_graph_neighbors(dg, 16, is, iw, 16, os, ow);
    int wsum = 0;
    for (i = 0; i < ind; i++)
        wsum += iw[i];
    chk_say_ordered(MPI_COMM_WORLD, "dist graph rank %d: in %s (weights sum %d); out %s; weighted %d", rank,
                    list(l1, sizeof l1, is, ind, 1), wsum, list(l2, sizeof l2, os, outd, 1), w);
    int *gath = malloc(sizeof(int) * (ind + 1)), *counts = malloc(sizeof(int) * (ind + 1)),
        *displs = malloc(sizeof(int) * (ind + 1));
    for (i = 0; i < ind; i++) {
        counts[i] = 1;
        displs[i] = ind - 1 - i; /* reversed */
    }
    MPI_Neighbor_allgatherv(&rank, 1, MPI_INT, gath, counts, displs, MPI_INT, dg);
    chk_say_ordered(MPI_COMM_WORLD, "dist graph rank %d: allgatherv from %s", rank, list(l3, sizeof l3, gath, ind, 1));

    free(gath), free(counts), free(displs), free(srcs), free(degs), free(dsts), free(wts);
    free(index), free(edges);
    MPI_Comm_free(&dg);
    MPI_Comm_free(&ring);
    MPI_Comm_free(&graph);
    MPI_Comm_free(&grid);
    return chk_finish();
}
