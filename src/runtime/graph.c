/* Graph process topologies (MPI 3.1 sections 7.5.3-7.5.5): the MPI-1 graph
 * (Graph_create: every rank gives the whole graph) and the distributed graph
 * (Dist_graph_create_adjacent: each rank gives its own neighbors;
 * Dist_graph_create: any rank gives any edges, exchanged so that each rank
 * learns its own). As with Cartesian ones, a graph communicator is an ordinary
 * communicator with the graph attached (fmpi_comm.graph); ranks keep their
 * order (reorder is accepted and not used). fmpi_topo_neighbors gives the
 * neighbor lists the neighborhood collectives (neighbor.c) use, for every
 * kind of topology. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "fmpi.h"

#pragma weak MPI_Graph_create = PMPI_Graph_create
#pragma weak MPI_Graphdims_get = PMPI_Graphdims_get
#pragma weak MPI_Graph_get = PMPI_Graph_get
#pragma weak MPI_Graph_neighbors_count = PMPI_Graph_neighbors_count
#pragma weak MPI_Graph_neighbors = PMPI_Graph_neighbors
#pragma weak MPI_Graph_map = PMPI_Graph_map
#pragma weak MPI_Dist_graph_create_adjacent = PMPI_Dist_graph_create_adjacent
#pragma weak MPI_Dist_graph_create = PMPI_Dist_graph_create
#pragma weak MPI_Dist_graph_neighbors_count = PMPI_Dist_graph_neighbors_count
#pragma weak MPI_Dist_graph_neighbors = PMPI_Dist_graph_neighbors

static int *copy_ints(const int *from, int n)
{
  int *to = calloc((size_t)(n > 0 ? n : 1), sizeof(int));
  if (to == NULL)
    fmpi_fatal("out of memory");
  if (n > 0 && from != NULL)
    memcpy(to, from, sizeof(int) * (size_t)n);
  return to;
}

static fmpi_graph *graph_new(int kind, int indegree, const int *sources, const int *sourceweights, int outdegree,
                             const int *destinations, const int *destweights, bool weighted)
{
  fmpi_graph *g = calloc(1, sizeof *g);
  if (g == NULL)
    fmpi_fatal("out of memory");
  g->kind = kind;
  g->indegree = indegree;
  g->outdegree = outdegree;
  g->sources = copy_ints(sources, indegree);
  g->destinations = copy_ints(destinations, outdegree);
  g->weighted = weighted;
  if (weighted) {
    g->sourceweights = copy_ints(sourceweights, indegree);
    g->destweights = copy_ints(destweights, outdegree);
  }
  return g;
}

fmpi_graph *fmpi_graph_dup(const fmpi_graph *g)
{
  fmpi_graph *d = graph_new(g->kind, g->indegree, g->sources, g->sourceweights, g->outdegree, g->destinations,
                            g->destweights, g->weighted);
  if (g->kind == MPI_GRAPH) {
    d->nnodes = g->nnodes;
    d->index = copy_ints(g->index, g->nnodes);
    d->edges = copy_ints(g->edges, g->nnodes ? g->index[g->nnodes - 1] : 0);
  }
  return d;
}

void fmpi_graph_free(fmpi_graph *g)
{
  if (g == NULL)
    return;
  free(g->sources);
  free(g->destinations);
  free(g->sourceweights);
  free(g->destweights);
  free(g->index);
  free(g->edges);
  free(g);
}

/* The neighbors of this rank in c's topology: in (sources) and out
 * (destinations), in the standard's order. For a Cartesian grid: per
 * dimension the rank below, then the rank above (MPI_PROC_NULL past a
 * non-periodic edge), the same list both ways. The lists are c's or *owned
 * (to free) for a grid. MPI_ERR_TOPOLOGY when c has none. */
int fmpi_topo_neighbors(fmpi_comm *c, const int **in, int *nin, const int **out, int *nout, int **owned)
{
  *owned = NULL;
  if (c->graph) {
    *in = c->graph->sources;
    *nin = c->graph->indegree;
    *out = c->graph->destinations;
    *nout = c->graph->outdegree;
    return MPI_SUCCESS;
  }
  if (c->cart == NULL)
    return MPI_ERR_TOPOLOGY;
  int n = 2 * c->cart->ndims;
  int *list = malloc(sizeof(int) * (size_t)(n ? n : 1));
  if (list == NULL)
    fmpi_fatal("out of memory");
  for (int d = 0; d < c->cart->ndims; d++)
    PMPI_Cart_shift(c->handle, d, 1, &list[2 * d], &list[2 * d + 1]);
  *in = *out = *owned = list;
  *nin = *nout = n;
  return MPI_SUCCESS;
}

/* The communicator of c's first n ranks (the others get MPI_COMM_NULL). */
static int first_ranks(fmpi_comm *c, int n, MPI_Comm *out)
{
  return PMPI_Comm_split(c->handle, c->rank < n ? 0 : MPI_UNDEFINED, c->rank, out);
}

/* ---- MPI-1 graphs ---- */

int PMPI_Graph_create(MPI_Comm comm_old, int nnodes, const int index[], const int edges[], int reorder,
                      MPI_Comm *comm_graph)
{
  (void)reorder;
  FMPI_CHECK_INIT("MPI_Graph_create");
  fmpi_comm *c = fmpi_comm_get_intra(comm_old);
  if (c == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, "MPI_Graph_create");
  if (nnodes < 0 || nnodes > c->size)
    return fmpi_error(c, MPI_ERR_ARG, "MPI_Graph_create");
  for (int i = 0; i < nnodes; i++)
    if (index[i] < (i ? index[i - 1] : 0))
      return fmpi_error(c, MPI_ERR_ARG, "MPI_Graph_create");
  int nedges = nnodes ? index[nnodes - 1] : 0;
  for (int e = 0; e < nedges; e++)
    if (edges[e] < 0 || edges[e] >= nnodes)
      return fmpi_error(c, MPI_ERR_ARG, "MPI_Graph_create");
  MPI_Comm made;
  int rc = first_ranks(c, nnodes, &made);
  if (rc != MPI_SUCCESS)
    return rc;
  if (made != MPI_COMM_NULL) {
    int me = c->rank, from = me ? index[me - 1] : 0, k = index[me] - from;
    fmpi_graph *g = graph_new(MPI_GRAPH, k, edges + from, NULL, k, edges + from, NULL, false);
    g->nnodes = nnodes;
    g->index = copy_ints(index, nnodes);
    g->edges = copy_ints(edges, nedges);
    fmpi_comm_get(made)->graph = g;
  }
  *comm_graph = made;
  return MPI_SUCCESS;
}

#define GET_GRAPH(h, kind_wanted, name)                      \
  FMPI_CHECK_INIT(name);                                     \
  fmpi_comm *c = fmpi_comm_get(h);                           \
  if (c == NULL)                                             \
    return fmpi_error(NULL, MPI_ERR_COMM, name);             \
  fmpi_graph *g = c->graph;                                  \
  if (g == NULL || g->kind != (kind_wanted))                 \
  return fmpi_error(c, MPI_ERR_TOPOLOGY, name)

int PMPI_Graphdims_get(MPI_Comm comm, int *nnodes, int *nedges)
{
  GET_GRAPH(comm, MPI_GRAPH, "MPI_Graphdims_get");
  *nnodes = g->nnodes;
  *nedges = g->nnodes ? g->index[g->nnodes - 1] : 0;
  return MPI_SUCCESS;
}

int PMPI_Graph_get(MPI_Comm comm, int maxindex, int maxedges, int index[], int edges[])
{
  GET_GRAPH(comm, MPI_GRAPH, "MPI_Graph_get");
  int nedges = g->nnodes ? g->index[g->nnodes - 1] : 0;
  for (int i = 0; i < g->nnodes && i < maxindex; i++)
    index[i] = g->index[i];
  for (int e = 0; e < nedges && e < maxedges; e++)
    edges[e] = g->edges[e];
  return MPI_SUCCESS;
}

int PMPI_Graph_neighbors_count(MPI_Comm comm, int rank, int *nneighbors)
{
  GET_GRAPH(comm, MPI_GRAPH, "MPI_Graph_neighbors_count");
  if (rank < 0 || rank >= g->nnodes)
    return fmpi_error(c, MPI_ERR_RANK, "MPI_Graph_neighbors_count");
  *nneighbors = g->index[rank] - (rank ? g->index[rank - 1] : 0);
  return MPI_SUCCESS;
}

int PMPI_Graph_neighbors(MPI_Comm comm, int rank, int maxneighbors, int neighbors[])
{
  GET_GRAPH(comm, MPI_GRAPH, "MPI_Graph_neighbors");
  if (rank < 0 || rank >= g->nnodes)
    return fmpi_error(c, MPI_ERR_RANK, "MPI_Graph_neighbors");
  int from = rank ? g->index[rank - 1] : 0;
  for (int k = 0; k < g->index[rank] - from && k < maxneighbors; k++)
    neighbors[k] = g->edges[from + k];
  return MPI_SUCCESS;
}

int PMPI_Graph_map(MPI_Comm comm, int nnodes, const int index[], const int edges[], int *newrank)
{
  (void)index, (void)edges;
  FMPI_CHECK_INIT("MPI_Graph_map");
  fmpi_comm *c = fmpi_comm_get(comm);
  if (c == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, "MPI_Graph_map");
  if (nnodes < 0 || nnodes > c->size)
    return fmpi_error(c, MPI_ERR_ARG, "MPI_Graph_map");
  *newrank = c->rank < nnodes ? c->rank : MPI_UNDEFINED;
  return MPI_SUCCESS;
}

/* ---- distributed graphs ---- */

/* Weights given (MPI_WEIGHTS_EMPTY: weighted, with no edges here). */
static bool weights_given(const int *w)
{
  return w != MPI_UNWEIGHTED && w != NULL;
}

static int check_ranks(fmpi_comm *c, const int *ranks, int n)
{
  for (int i = 0; i < n; i++)
    if (ranks[i] < 0 || ranks[i] >= c->size)
      return MPI_ERR_RANK;
  return MPI_SUCCESS;
}

int PMPI_Dist_graph_create_adjacent(MPI_Comm comm_old, int indegree, const int sources[], const int sourceweights[],
                                    int outdegree, const int destinations[], const int destweights[], MPI_Info info,
                                    int reorder, MPI_Comm *comm_dist_graph)
{
  (void)info, (void)reorder;
  FMPI_CHECK_INIT("MPI_Dist_graph_create_adjacent");
  fmpi_comm *c = fmpi_comm_get_intra(comm_old);
  if (c == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, "MPI_Dist_graph_create_adjacent");
  int rv = indegree < 0 || outdegree < 0 ? MPI_ERR_ARG : check_ranks(c, sources, indegree);
  if (rv == MPI_SUCCESS)
    rv = check_ranks(c, destinations, outdegree);
  if (rv != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Dist_graph_create_adjacent");
  bool weighted = weights_given(sourceweights) || weights_given(destweights);
  /* whether the graph is weighted is the same everywhere (the standard requires it) */
  MPI_Comm made;
  if ((rv = PMPI_Comm_dup(comm_old, &made)) != MPI_SUCCESS)
    return rv;
  fmpi_comm *m = fmpi_comm_get(made);
  free(m->cart);
  m->cart = NULL;
  fmpi_graph_free(m->graph);
  m->graph = graph_new(MPI_DIST_GRAPH, indegree, sources, weights_given(sourceweights) ? sourceweights : NULL,
                       outdegree, destinations, weights_given(destweights) ? destweights : NULL, weighted);
  *comm_dist_graph = made;
  return MPI_SUCCESS;
}

/* An edge as sent to one of its ends: the other end and the weight; `out` when
 * the receiver is the edge's source. */
typedef struct edge_end {
  int out, other, weight;
} edge_end;

int PMPI_Dist_graph_create(MPI_Comm comm_old, int n, const int sources[], const int degrees[],
                           const int destinations[], const int weights[], MPI_Info info, int reorder,
                           MPI_Comm *comm_dist_graph)
{
  (void)info, (void)reorder;
  FMPI_CHECK_INIT("MPI_Dist_graph_create");
  fmpi_comm *c = fmpi_comm_get_intra(comm_old);
  if (c == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, "MPI_Dist_graph_create");
  int nedges = 0, rv = n < 0 ? MPI_ERR_ARG : check_ranks(c, sources, n);
  for (int i = 0; rv == MPI_SUCCESS && i < n; i++) {
    if (degrees[i] < 0)
      rv = MPI_ERR_ARG;
    nedges += degrees[i];
  }
  if (rv == MPI_SUCCESS)
    rv = check_ranks(c, destinations, nedges);
  if (rv != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Dist_graph_create");
  bool weighted = weights_given(weights);
  int anyw = weighted, allw = 0;
  PMPI_Allreduce(&anyw, &allw, 1, MPI_INT, MPI_LOR, comm_old);
  weighted = allw != 0;

  /* each edge to both its ends, grouped by receiving rank */
  int size = c->size;
  int *scount = calloc((size_t)size, sizeof(int)), *rcount = calloc((size_t)size, sizeof(int));
  int *sdispl = calloc((size_t)size, sizeof(int)), *rdispl = calloc((size_t)size, sizeof(int));
  edge_end *sendv = malloc(sizeof(edge_end) * (size_t)(2 * nedges + 1));
  if (!scount || !rcount || !sdispl || !rdispl || !sendv)
    fmpi_fatal("out of memory");
  for (int pass = 0; pass < 2; pass++) {
    int e = 0;
    if (pass == 1) {
      for (int r = 1; r < size; r++)
        sdispl[r] = sdispl[r - 1] + scount[r - 1];
      memset(scount, 0, sizeof(int) * (size_t)size);
    }
    for (int i = 0; i < n; i++)
      for (int k = 0; k < degrees[i]; k++, e++) {
        int s = sources[i], d = destinations[e], w = weights_given(weights) ? weights[e] : 1;
        if (pass == 0) {
          scount[s]++;
          scount[d]++;
          continue;
        }
        sendv[sdispl[s] + scount[s]++] = (edge_end){ 1, d, w };
        sendv[sdispl[d] + scount[d]++] = (edge_end){ 0, s, w };
      }
  }
  PMPI_Alltoall(scount, 1, MPI_INT, rcount, 1, MPI_INT, comm_old);
  int total = 0;
  for (int r = 0; r < size; r++) {
    rdispl[r] = total;
    total += rcount[r];
  }
  edge_end *recvv = malloc(sizeof(edge_end) * (size_t)(total + 1));
  if (recvv == NULL)
    fmpi_fatal("out of memory");
  MPI_Datatype three;
  PMPI_Type_contiguous(3, MPI_INT, &three);
  PMPI_Type_commit(&three);
  PMPI_Alltoallv(sendv, scount, sdispl, three, recvv, rcount, rdispl, three, comm_old);
  PMPI_Type_free(&three);

  /* in the order they arrived: by the rank that gave them, then as given */
  int indeg = 0, outdeg = 0;
  for (int i = 0; i < total; i++)
    recvv[i].out ? outdeg++ : indeg++;
  int *src = malloc(sizeof(int) * (size_t)(indeg + 1)), *sw = malloc(sizeof(int) * (size_t)(indeg + 1));
  int *dst = malloc(sizeof(int) * (size_t)(outdeg + 1)), *dw = malloc(sizeof(int) * (size_t)(outdeg + 1));
  if (!src || !sw || !dst || !dw)
    fmpi_fatal("out of memory");
  indeg = outdeg = 0;
  for (int i = 0; i < total; i++) {
    if (recvv[i].out) {
      dst[outdeg] = recvv[i].other;
      dw[outdeg++] = recvv[i].weight;
    } else {
      src[indeg] = recvv[i].other;
      sw[indeg++] = recvv[i].weight;
    }
  }
  rv = PMPI_Dist_graph_create_adjacent(comm_old, indeg, src, weighted ? sw : MPI_UNWEIGHTED, outdeg, dst,
                                       weighted ? dw : MPI_UNWEIGHTED, info, reorder, comm_dist_graph);
  if (rv == MPI_SUCCESS)
    fmpi_comm_get(*comm_dist_graph)->graph->weighted = weighted;
  free(scount), free(rcount), free(sdispl), free(rdispl), free(sendv), free(recvv);
  free(src), free(sw), free(dst), free(dw);
  return rv;
}

int PMPI_Dist_graph_neighbors_count(MPI_Comm comm, int *indegree, int *outdegree, int *weighted)
{
  GET_GRAPH(comm, MPI_DIST_GRAPH, "MPI_Dist_graph_neighbors_count");
  *indegree = g->indegree;
  *outdegree = g->outdegree;
  *weighted = g->weighted;
  return MPI_SUCCESS;
}

int PMPI_Dist_graph_neighbors(MPI_Comm comm, int maxindegree, int sources[], int sourceweights[], int maxoutdegree,
                              int destinations[], int destweights[])
{
  GET_GRAPH(comm, MPI_DIST_GRAPH, "MPI_Dist_graph_neighbors");
  for (int i = 0; i < g->indegree && i < maxindegree; i++) {
    sources[i] = g->sources[i];
    if (g->weighted && sourceweights != MPI_UNWEIGHTED && sourceweights != NULL)
      sourceweights[i] = g->sourceweights[i];
  }
  for (int i = 0; i < g->outdegree && i < maxoutdegree; i++) {
    destinations[i] = g->destinations[i];
    if (g->weighted && destweights != MPI_UNWEIGHTED && destweights != NULL)
      destweights[i] = g->destweights[i];
  }
  return MPI_SUCCESS;
}
