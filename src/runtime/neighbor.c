/* Neighborhood collectives (MPI 3.1 section 7.6) on Cartesian, graph and
 * distributed graph communicators: each rank receives block i from its i-th
 * in-neighbor (source) and sends block j (or, for the allgathers, its one send
 * buffer) to its j-th out-neighbor (destination); MPI_PROC_NULL neighbors of a
 * non-periodic grid are skipped, their receive blocks left as they were.
 * Every variant is one round of a nonblocking-collective schedule (nbc.c): the
 * I-variants return its request, the blocking ones wait for it. Several edges
 * between the same two ranks match in the order the lists give them. */
#define _GNU_SOURCE
#include <stdlib.h>

#include "fmpi.h"

#pragma weak MPI_Neighbor_allgather = PMPI_Neighbor_allgather
#pragma weak MPI_Neighbor_allgatherv = PMPI_Neighbor_allgatherv
#pragma weak MPI_Neighbor_alltoall = PMPI_Neighbor_alltoall
#pragma weak MPI_Neighbor_alltoallv = PMPI_Neighbor_alltoallv
#pragma weak MPI_Neighbor_alltoallw = PMPI_Neighbor_alltoallw
#pragma weak MPI_Ineighbor_allgather = PMPI_Ineighbor_allgather
#pragma weak MPI_Ineighbor_allgatherv = PMPI_Ineighbor_allgatherv
#pragma weak MPI_Ineighbor_alltoall = PMPI_Ineighbor_alltoall
#pragma weak MPI_Ineighbor_alltoallv = PMPI_Ineighbor_alltoallv
#pragma weak MPI_Ineighbor_alltoallw = PMPI_Ineighbor_alltoallw

/* One side of a neighborhood collective: block i is `counts[i]` (or `count`)
 * elements of `types[i]` (or `type`) at byte displacement `bytes[i]`, at
 * element displacement `displs[i]`, or at i * count elements; `same`: every
 * block is the buffer itself (an allgather's send side). */
typedef struct side {
  const void *buf;
  int count;
  const int *counts;
  const int *displs;
  const MPI_Aint *bytes;
  MPI_Datatype type;
  const MPI_Datatype *types;
  bool same;
} side;

static int count_of(const side *s, int i) { return s->counts ? s->counts[i] : s->count; }
static MPI_Datatype type_of(const side *s, int i) { return s->types ? s->types[i] : s->type; }

static void *block_of(const side *s, int i)
{
  if (s->same)
    return (void *)s->buf;
  if (s->bytes)
    return (uint8_t *)s->buf + s->bytes[i];
  fmpi_type *t = fmpi_type_get(type_of(s, i));
  MPI_Aint elems = s->displs ? (MPI_Aint)s->displs[i] : (MPI_Aint)i * s->count;
  return (uint8_t *)s->buf + elems * t->extent;
}

static int check_side(const side *s, int n)
{
  for (int i = 0; i < n; i++) {
    if (count_of(s, i) < 0)
      return MPI_ERR_COUNT;
    fmpi_type *t = fmpi_type_get(type_of(s, i));
    if (t == NULL || !t->committed)
      return MPI_ERR_TYPE;
  }
  return MPI_SUCCESS;
}

/* Starts the exchange on comm; *request completes when every block has moved. */
static int start(MPI_Comm comm, const side *send, const side *recv, MPI_Request *request, const char *name)
{
  FMPI_CHECK_INIT(name);
  fmpi_comm *c = fmpi_comm_get_intra(comm);
  if (c == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, name);
  const int *in, *out;
  int nin, nout, *owned, rv = fmpi_topo_neighbors(c, &in, &nin, &out, &nout, &owned);
  if (rv == MPI_SUCCESS)
    rv = check_side(send, nout);
  if (rv == MPI_SUCCESS)
    rv = check_side(recv, nin);
  if (rv != MPI_SUCCESS) {
    free(owned);
    return fmpi_error(c, rv, name);
  }
  fmpi_nbc *s = fmpi_nbc_new(c, 1);
  /* On a grid, block 2d comes from the rank below, which sent it as its block 2d + 1 (upwards), and
   * block 2d + 1 from the rank above (its block 2d). Receives for each pair are posted the other way
   * round from the sends, so that where one rank is both (a periodic dimension of 1 or 2), its two
   * messages, matched in order, land each in its block. */
  bool grid = c->graph == NULL;
  for (int k = 0; k < nin; k++) {
    int i = grid ? k ^ 1 : k;
    if (in[i] != MPI_PROC_NULL)
      fmpi_nbc_add(s, 0, false, block_of(recv, i), count_of(recv, i), type_of(recv, i), in[i]);
  }
  for (int i = 0; i < nout; i++)
    if (out[i] != MPI_PROC_NULL)
      fmpi_nbc_add(s, 0, true, block_of(send, i), count_of(send, i), type_of(send, i), out[i]);
  free(owned);
  return fmpi_nbc_start(s, request);
}

static int run(MPI_Comm comm, const side *send, const side *recv, const char *name)
{
  MPI_Request r;
  int rv = start(comm, send, recv, &r, name);
  return rv == MPI_SUCCESS ? PMPI_Wait(&r, MPI_STATUS_IGNORE) : rv;
}

#define ALLGATHER_SIDES                                                                  \
  side s = { .buf = sendbuf, .count = sendcount, .type = sendtype, .same = true };       \
  side r = { .buf = recvbuf, .count = recvcount, .type = recvtype }
#define ALLGATHERV_SIDES                                                                 \
  side s = { .buf = sendbuf, .count = sendcount, .type = sendtype, .same = true };       \
  side r = { .buf = recvbuf, .counts = recvcounts, .displs = displs, .type = recvtype }
#define ALLTOALL_SIDES                                                                   \
  side s = { .buf = sendbuf, .count = sendcount, .type = sendtype };                     \
  side r = { .buf = recvbuf, .count = recvcount, .type = recvtype }
#define ALLTOALLV_SIDES                                                                  \
  side s = { .buf = sendbuf, .counts = sendcounts, .displs = sdispls, .type = sendtype }; \
  side r = { .buf = recvbuf, .counts = recvcounts, .displs = rdispls, .type = recvtype }
#define ALLTOALLW_SIDES                                                                  \
  side s = { .buf = sendbuf, .counts = sendcounts, .bytes = sdispls, .types = sendtypes }; \
  side r = { .buf = recvbuf, .counts = recvcounts, .bytes = rdispls, .types = recvtypes }

int PMPI_Neighbor_allgather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                            MPI_Datatype recvtype, MPI_Comm comm)
{
  ALLGATHER_SIDES;
  return run(comm, &s, &r, "MPI_Neighbor_allgather");
}

int PMPI_Ineighbor_allgather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                             MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *request)
{
  ALLGATHER_SIDES;
  return start(comm, &s, &r, request, "MPI_Ineighbor_allgather");
}

int PMPI_Neighbor_allgatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                             const int recvcounts[], const int displs[], MPI_Datatype recvtype, MPI_Comm comm)
{
  ALLGATHERV_SIDES;
  return run(comm, &s, &r, "MPI_Neighbor_allgatherv");
}

int PMPI_Ineighbor_allgatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                              const int recvcounts[], const int displs[], MPI_Datatype recvtype, MPI_Comm comm,
                              MPI_Request *request)
{
  ALLGATHERV_SIDES;
  return start(comm, &s, &r, request, "MPI_Ineighbor_allgatherv");
}

int PMPI_Neighbor_alltoall(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                           MPI_Datatype recvtype, MPI_Comm comm)
{
  ALLTOALL_SIDES;
  return run(comm, &s, &r, "MPI_Neighbor_alltoall");
}

int PMPI_Ineighbor_alltoall(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                            MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *request)
{
  ALLTOALL_SIDES;
  return start(comm, &s, &r, request, "MPI_Ineighbor_alltoall");
}

int PMPI_Neighbor_alltoallv(const void *sendbuf, const int sendcounts[], const int sdispls[], MPI_Datatype sendtype,
                            void *recvbuf, const int recvcounts[], const int rdispls[], MPI_Datatype recvtype,
                            MPI_Comm comm)
{
  ALLTOALLV_SIDES;
  return run(comm, &s, &r, "MPI_Neighbor_alltoallv");
}

int PMPI_Ineighbor_alltoallv(const void *sendbuf, const int sendcounts[], const int sdispls[], MPI_Datatype sendtype,
                             void *recvbuf, const int recvcounts[], const int rdispls[], MPI_Datatype recvtype,
                             MPI_Comm comm, MPI_Request *request)
{
  ALLTOALLV_SIDES;
  return start(comm, &s, &r, request, "MPI_Ineighbor_alltoallv");
}

int PMPI_Neighbor_alltoallw(const void *sendbuf, const int sendcounts[], const MPI_Aint sdispls[],
                            const MPI_Datatype sendtypes[], void *recvbuf, const int recvcounts[],
                            const MPI_Aint rdispls[], const MPI_Datatype recvtypes[], MPI_Comm comm)
{
  ALLTOALLW_SIDES;
  return run(comm, &s, &r, "MPI_Neighbor_alltoallw");
}

int PMPI_Ineighbor_alltoallw(const void *sendbuf, const int sendcounts[], const MPI_Aint sdispls[],
                             const MPI_Datatype sendtypes[], void *recvbuf, const int recvcounts[],
                             const MPI_Aint rdispls[], const MPI_Datatype recvtypes[], MPI_Comm comm,
                             MPI_Request *request)
{
  ALLTOALLW_SIDES;
  return start(comm, &s, &r, request, "MPI_Ineighbor_alltoallw");
}
