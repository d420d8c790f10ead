/* Cartesian process topologies (MPI 3.1 chapter 7): Dims_create, Cart_create
 * and the calls that translate between ranks and grid coordinates. A
 * Cartesian communicator is an ordinary one (Comm_split of the old one) with
 * its grid attached (fmpi_comm.cart); coordinates are in row-major order, the
 * last dimension varying fastest, as the standard lays them out. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "fmpi.h"

#pragma weak MPI_Dims_create = PMPI_Dims_create
#pragma weak MPI_Cart_create = PMPI_Cart_create
#pragma weak MPI_Cart_get = PMPI_Cart_get
#pragma weak MPI_Cartdim_get = PMPI_Cartdim_get
#pragma weak MPI_Cart_rank = PMPI_Cart_rank
#pragma weak MPI_Cart_coords = PMPI_Cart_coords
#pragma weak MPI_Cart_shift = PMPI_Cart_shift
#pragma weak MPI_Cart_sub = PMPI_Cart_sub
#pragma weak MPI_Cart_map = PMPI_Cart_map
#pragma weak MPI_Topo_test = PMPI_Topo_test

fmpi_cart *fmpi_cart_new(int ndims, const int dims[], const int periods[])
{
  fmpi_cart *g = malloc(sizeof *g + sizeof(int) * 2 * (size_t)(ndims ? ndims : 1));
  if (g == NULL)
    fmpi_fatal("out of memory");
  g->ndims = ndims;
  g->dims = g->data;
  g->periods = g->data + ndims;
  for (int i = 0; i < ndims; i++) {
    g->dims[i] = dims[i];
    g->periods[i] = periods[i] != 0;
  }
  return g;
}

/* ---- Dims_create: the most even grid ---- */

typedef struct dims_search {
  int k;          /* free dimensions */
  int *cur, *best;
  int best_spread; /* largest - smallest of best, or -1 before the first */
} dims_search;

/* Tries every non-increasing split of m into the free dimensions from `at` on,
 * each at most `cap`; keeps the one whose largest and smallest are closest
 * (the first found, the lexicographically largest, on a tie). */
static void dims_try(dims_search *s, int at, int m, int cap)
{
  if (at == s->k - 1) {
    if (m > cap)
      return;
    s->cur[at] = m;
    int spread = s->cur[0] - m;
    if (s->best_spread < 0 || spread < s->best_spread) {
      s->best_spread = spread;
      memcpy(s->best, s->cur, sizeof(int) * (size_t)s->k);
    }
    return;
  }
  for (int d = cap < m ? cap : m; d >= 1; d--) {
    if (m % d != 0)
      continue;
    /* the rest must fit in the remaining dimensions, none above d */
    long long most = 1;
    for (int i = at + 1; i < s->k && most < m / d; i++)
      most *= d;
    if (most < m / d)
      break; /* smaller d only makes it worse */
    s->cur[at] = d;
    dims_try(s, at + 1, m / d, d);
  }
}

int PMPI_Dims_create(int nnodes, int ndims, int dims[])
{
  FMPI_CHECK_INIT("MPI_Dims_create");
  if (ndims < 0 || (ndims > 0 && dims == NULL))
    return fmpi_error(NULL, MPI_ERR_DIMS, "MPI_Dims_create");
  if (nnodes < 1)
    return fmpi_error(NULL, MPI_ERR_ARG, "MPI_Dims_create");
  long long fixed = 1;
  int k = 0;
  for (int i = 0; i < ndims; i++) {
    if (dims[i] < 0)
      return fmpi_error(NULL, MPI_ERR_DIMS, "MPI_Dims_create");
    if (dims[i] > 0)
      fixed *= dims[i];
    else
      k++;
  }
  if (nnodes % fixed != 0)
    return fmpi_error(NULL, MPI_ERR_DIMS, "MPI_Dims_create");
  if (k == 0)
    return fixed == nnodes ? MPI_SUCCESS : fmpi_error(NULL, MPI_ERR_DIMS, "MPI_Dims_create");
  int m = (int)(nnodes / fixed);
  int *cur = malloc(sizeof(int) * 2 * (size_t)k);
  if (cur == NULL)
    fmpi_fatal("out of memory");
  dims_search s = { k, cur, cur + k, -1 };
  dims_try(&s, 0, m, m);
  for (int i = 0, j = 0; i < ndims; i++)
    if (dims[i] == 0)
      dims[i] = s.best[j++];
  free(cur);
  return MPI_SUCCESS;
}

/* ---- Cartesian communicators ---- */

#define GET_CART(h, name)                                    \
  FMPI_CHECK_INIT(name);                                     \
  fmpi_comm *c = fmpi_comm_get(h);                           \
  if (c == NULL)                                             \
    return fmpi_error(NULL, MPI_ERR_COMM, name);             \
  fmpi_cart *g = c->cart;                                    \
  if (g == NULL)                                             \
    return fmpi_error(c, MPI_ERR_TOPOLOGY, name)

static void rank_to_coords(const fmpi_cart *g, int rank, int coords[])
{
  for (int i = g->ndims - 1; i >= 0; i--) {
    coords[i] = rank % g->dims[i];
    rank /= g->dims[i];
  }
}

int PMPI_Cart_create(MPI_Comm comm_old, int ndims, const int dims[], const int periods[], int reorder,
                     MPI_Comm *comm_cart)
{
  (void)reorder; /* ranks keep their order: every rank is as close as any other */
  FMPI_CHECK_INIT("MPI_Cart_create");
  fmpi_comm *c = fmpi_comm_get_intra(comm_old);
  if (c == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, "MPI_Cart_create");
  if (ndims < 0 || (ndims > 0 && (dims == NULL || periods == NULL)))
    return fmpi_error(c, MPI_ERR_DIMS, "MPI_Cart_create");
  long long n = 1;
  for (int i = 0; i < ndims; i++) {
    if (dims[i] <= 0)
      return fmpi_error(c, MPI_ERR_DIMS, "MPI_Cart_create");
    n *= dims[i];
    if (n > c->size)
      return fmpi_error(c, MPI_ERR_TOPOLOGY, "MPI_Cart_create");
  }
  MPI_Comm made;
  int rc = PMPI_Comm_split(comm_old, c->rank < n ? 0 : MPI_UNDEFINED, c->rank, &made);
  if (rc != MPI_SUCCESS)
    return rc;
  if (made != MPI_COMM_NULL)
    fmpi_comm_get(made)->cart = fmpi_cart_new(ndims, dims, periods);
  *comm_cart = made;
  return MPI_SUCCESS;
}

int PMPI_Cartdim_get(MPI_Comm comm, int *ndims)
{
  GET_CART(comm, "MPI_Cartdim_get");
  *ndims = g->ndims;
  return MPI_SUCCESS;
}

int PMPI_Cart_get(MPI_Comm comm, int maxdims, int dims[], int periods[], int coords[])
{
  GET_CART(comm, "MPI_Cart_get");
  if (maxdims < g->ndims)
    return fmpi_error(c, MPI_ERR_ARG, "MPI_Cart_get");
  int *mine = malloc(sizeof(int) * (size_t)(g->ndims ? g->ndims : 1));
  if (mine == NULL)
    fmpi_fatal("out of memory");
  rank_to_coords(g, c->rank, mine);
  for (int i = 0; i < g->ndims; i++) {
    dims[i] = g->dims[i];
    periods[i] = g->periods[i];
    coords[i] = mine[i];
  }
  free(mine);
  return MPI_SUCCESS;
}

int PMPI_Cart_rank(MPI_Comm comm, const int coords[], int *rank)
{
  GET_CART(comm, "MPI_Cart_rank");
  int r = 0;
  for (int i = 0; i < g->ndims; i++) {
    int x = coords[i];
    if (g->periods[i])
      x = ((x % g->dims[i]) + g->dims[i]) % g->dims[i];
    else if (x < 0 || x >= g->dims[i])
      return fmpi_error(c, MPI_ERR_ARG, "MPI_Cart_rank");
    r = r * g->dims[i] + x;
  }
  *rank = r;
  return MPI_SUCCESS;
}

int PMPI_Cart_coords(MPI_Comm comm, int rank, int maxdims, int coords[])
{
  GET_CART(comm, "MPI_Cart_coords");
  if (rank < 0 || rank >= c->size)
    return fmpi_error(c, MPI_ERR_RANK, "MPI_Cart_coords");
  if (maxdims < g->ndims)
    return fmpi_error(c, MPI_ERR_ARG, "MPI_Cart_coords");
  rank_to_coords(g, rank, coords);
  return MPI_SUCCESS;
}

int PMPI_Cart_shift(MPI_Comm comm, int direction, int disp, int *rank_source, int *rank_dest)
{
  GET_CART(comm, "MPI_Cart_shift");
  if (direction < 0 || direction >= g->ndims)
    return fmpi_error(c, MPI_ERR_ARG, "MPI_Cart_shift");
  int *at = malloc(sizeof(int) * (size_t)g->ndims);
  if (at == NULL)
    fmpi_fatal("out of memory");
  rank_to_coords(g, c->rank, at);
  int here = at[direction], extent = g->dims[direction];
  int ends[2] = { here - disp, here + disp }; /* source, destination */
  int out[2];
  for (int e = 0; e < 2; e++) {
    int x = ends[e];
    if (g->periods[direction]) {
      x = ((x % extent) + extent) % extent;
    } else if (x < 0 || x >= extent) {
      out[e] = MPI_PROC_NULL;
      continue;
    }
    at[direction] = x;
    int r = 0;
    for (int i = 0; i < g->ndims; i++)
      r = r * g->dims[i] + at[i];
    out[e] = r;
  }
  free(at);
  *rank_source = out[0];
  *rank_dest = out[1];
  return MPI_SUCCESS;
}

int PMPI_Cart_sub(MPI_Comm comm, const int remain_dims[], MPI_Comm *newcomm)
{
  GET_CART(comm, "MPI_Cart_sub");
  int *at = malloc(sizeof(int) * 3 * (size_t)(g->ndims ? g->ndims : 1));
  if (at == NULL)
    fmpi_fatal("out of memory");
  int *kept_dims = at + g->ndims, *kept_periods = kept_dims + g->ndims;
  rank_to_coords(g, c->rank, at);
  /* one communicator per position in the dropped dimensions; ranks keep
   * their order, which is row-major order in the kept dimensions */
  int color = 0, k = 0;
  for (int i = 0; i < g->ndims; i++) {
    if (remain_dims[i]) {
      kept_dims[k] = g->dims[i];
      kept_periods[k++] = g->periods[i];
    } else {
      color = color * g->dims[i] + at[i];
    }
  }
  MPI_Comm made;
  int rc = PMPI_Comm_split(comm, color, c->rank, &made);
  if (rc == MPI_SUCCESS) {
    fmpi_comm_get(made)->cart = fmpi_cart_new(k, kept_dims, kept_periods);
    *newcomm = made;
  }
  free(at);
  return rc;
}

int PMPI_Cart_map(MPI_Comm comm, int ndims, const int dims[], const int periods[], int *newrank)
{
  (void)periods;
  FMPI_CHECK_INIT("MPI_Cart_map");
  fmpi_comm *c = fmpi_comm_get(comm);
  if (c == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, "MPI_Cart_map");
  long long n = 1;
  for (int i = 0; i < ndims; i++) {
    if (dims[i] <= 0)
      return fmpi_error(c, MPI_ERR_DIMS, "MPI_Cart_map");
    n *= dims[i];
  }
  if (ndims < 0 || n > c->size)
    return fmpi_error(c, MPI_ERR_DIMS, "MPI_Cart_map");
  *newrank = c->rank < n ? c->rank : MPI_UNDEFINED;
  return MPI_SUCCESS;
}

int PMPI_Topo_test(MPI_Comm comm, int *status)
{
  FMPI_CHECK_INIT("MPI_Topo_test");
  fmpi_comm *c = fmpi_comm_get(comm);
  if (c == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, "MPI_Topo_test");
  *status = c->cart ? MPI_CART : c->graph ? c->graph->kind : MPI_UNDEFINED;
  return MPI_SUCCESS;
}
