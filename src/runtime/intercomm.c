/*
 * Intercommunicators (MPI 3.1 sections 6.6 and 5.2.2): two disjoint groups,
 * each naming the other in point to point. An intercommunicator's fmpi_comm
 * describes the remote group in size/world/local, so the point-to-point code
 * addresses and reports remote ranks with no change; rank is this rank's in
 * the local group, and local_comm, an internal intracommunicator over the
 * local group, carries the group's own part of collectives. Each group's
 * leader (local rank 0) speaks to the other's on the intercommunicator's
 * collective context. The nonblocking collectives are direct messages
 * between the ranks of the two groups (one round of a schedule, nbc.c); the
 * blocking v-variants (Gatherv, Scatterv, Allgatherv, Alltoallv), whose
 * counts only those ranks know, are those, waited for.
 *
 * A context for something spanning both groups (the intercommunicator, a
 * duplicate, a merge) is the larger of the two groups' agreed contexts: each
 * is at least every member's next free one, so the larger is free on both
 * sides, and every member moves its next free context past it.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fmpi.h"

#pragma weak MPI_Intercomm_create = PMPI_Intercomm_create
#pragma weak MPI_Intercomm_merge = PMPI_Intercomm_merge

enum { TAG_LEADERS = 1, TAG_BARRIER, TAG_BCAST, TAG_REDUCE, TAG_ALLREDUCE, TAG_GATHER, TAG_SCATTER, TAG_ALLGATHER,
       TAG_ALLTOALL, TAG_REDUCE_SCATTER };

static fmpi_comm *local_of(fmpi_comm *ic)
{
  return fmpi_comm_get(ic->local_comm);
}

static fmpi_comm *new_inter(uint32_t ctx, int remote_n, const int *remote_world, MPI_Comm local_comm,
                            MPI_Errhandler errh)
{
  fmpi_comm *lc = fmpi_comm_get(local_comm);
  fmpi_comm *ic = fmpi_comm_new(ctx, remote_n, remote_world, errh);
  ic->inter = true;
  ic->rank = lc->rank;
  ic->local_size = lc->size;
  ic->local_comm = local_comm;
  return ic;
}

/* The two leaders swap count elements; each broadcasts what it got in its group. */
static void swap_leaders(fmpi_comm *ic, const void *mine, void *theirs, int count, MPI_Datatype type)
{
  if (ic->rank == 0)
    fmpi_sendrecv_internal(mine, count, type, 0, theirs, count, type, 0, TAG_LEADERS, ic);
  PMPI_Bcast(theirs, count, type, 0, ic->local_comm);
}

/* A context free in both groups (collective over the intercommunicator). */
static uint32_t agree_ctx_inter(fmpi_comm *ic)
{
  unsigned mine = fmpi_agree_ctx(local_of(ic)), theirs = 0;
  swap_leaders(ic, &mine, &theirs, 1, MPI_UNSIGNED);
  uint32_t ctx = mine > theirs ? mine : theirs;
  fmpi_ctx_taken(ctx);
  return ctx;
}

int PMPI_Intercomm_create(MPI_Comm local_comm, int local_leader, MPI_Comm peer_comm, int remote_leader, int tag,
                          MPI_Comm *newintercomm)
{
  FMPI_CHECK_INIT("MPI_Intercomm_create");
  fmpi_comm *lc = fmpi_comm_get_intra(local_comm);
  if (lc == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, "MPI_Intercomm_create");
  if (local_leader < 0 || local_leader >= lc->size)
    return fmpi_error(lc, MPI_ERR_RANK, "MPI_Intercomm_create");
  bool leader = lc->rank == local_leader;
  fmpi_comm *pc = leader ? fmpi_comm_get(peer_comm) : NULL;
  int64_t bad = 0; /* the leader's verdict on its own arguments, for the whole group */
  if (leader && pc == NULL)
    bad = MPI_ERR_COMM;
  else if (leader && (remote_leader < 0 || remote_leader >= pc->size || pc->world[remote_leader] == fmpi_st.rank))
    bad = MPI_ERR_RANK;
  MPI_Comm local_dup;
  fmpi_comm_dup_internal(local_comm, &local_dup);
  unsigned mine = fmpi_agree_ctx(fmpi_comm_get(local_dup));
  /* the leaders swap (context, size), then their groups' world ranks, on the peer communicator */
  int64_t hdr[3] = { mine, lc->size, 0 }, theirs[3] = { 0, 0, bad };
  int *remote_world = NULL;
  if (leader && !bad) {
    PMPI_Sendrecv(hdr, 2, MPI_INT64_T, remote_leader, tag, theirs, 2, MPI_INT64_T, remote_leader, tag, peer_comm,
                  MPI_STATUS_IGNORE);
    if ((remote_world = malloc(sizeof(int) * (size_t)(theirs[1] ? theirs[1] : 1))) == NULL)
      fmpi_fatal("out of memory");
    PMPI_Sendrecv(lc->world, lc->size, MPI_INT, remote_leader, tag, remote_world, (int)theirs[1], MPI_INT,
                  remote_leader, tag, peer_comm, MPI_STATUS_IGNORE);
  }
  PMPI_Bcast(theirs, 3, MPI_INT64_T, local_leader, local_comm);
  if (theirs[2] != 0) {
    PMPI_Comm_free(&local_dup);
    *newintercomm = MPI_COMM_NULL;
    return fmpi_error(lc, (int)theirs[2], "MPI_Intercomm_create");
  }
  if (!leader && (remote_world = malloc(sizeof(int) * (size_t)(theirs[1] ? theirs[1] : 1))) == NULL)
    fmpi_fatal("out of memory");
  PMPI_Bcast(remote_world, (int)theirs[1], MPI_INT, local_leader, local_comm);
  uint32_t ctx = mine > (unsigned)theirs[0] ? mine : (uint32_t)theirs[0];
  fmpi_ctx_taken(ctx);
  *newintercomm = new_inter(ctx, (int)theirs[1], remote_world, local_dup, lc->errh)->handle;
  free(remote_world);
  return MPI_SUCCESS;
}

/* The union of the groups as an intracommunicator: the group whose leader
 * said high = 0 first (when both said the same, the one whose leader has the
 * lower world rank), each in its own order. */
int PMPI_Intercomm_merge(MPI_Comm intercomm, int high, MPI_Comm *newintracomm)
{
  FMPI_CHECK_INIT("MPI_Intercomm_merge");
  fmpi_comm *ic = fmpi_comm_get(intercomm);
  if (ic == NULL || !ic->inter)
    return fmpi_error(ic, MPI_ERR_COMM, "MPI_Intercomm_merge");
  fmpi_comm *lc = local_of(ic);
  int mine[2] = { high ? 1 : 0, lc->world[0] }, theirs[2];
  PMPI_Bcast(mine, 1, MPI_INT, 0, ic->local_comm); /* the leader's says it for the group */
  swap_leaders(ic, mine, theirs, 2, MPI_INT);
  bool local_first = mine[0] != theirs[0] ? mine[0] == 0 : mine[1] < theirs[1];
  uint32_t ctx = agree_ctx_inter(ic);
  int n = lc->size + ic->size;
  int *world = malloc(sizeof(int) * (size_t)n);
  if (world == NULL)
    fmpi_fatal("out of memory");
  const fmpi_comm *first = local_first ? lc : ic, *second = local_first ? ic : lc;
  memcpy(world, first->world, sizeof(int) * (size_t)first->size);
  memcpy(world + first->size, second->world, sizeof(int) * (size_t)second->size);
  *newintracomm = fmpi_comm_new(ctx, n, world, lc->errh)->handle;
  free(world);
  return MPI_SUCCESS;
}

/* MPI_Comm_dup of an intercommunicator (attributes: the caller's). */
int fmpi_inter_dup(fmpi_comm *ic, fmpi_comm **out)
{
  MPI_Comm local_dup;
  fmpi_comm_dup_internal(ic->local_comm, &local_dup);
  uint32_t ctx = agree_ctx_inter(ic);
  *out = new_inter(ctx, ic->size, ic->world, local_dup, ic->errh);
  return MPI_SUCCESS;
}

/* ---- collectives (MPI 3.1 5.2.2): the group's part over local_comm, the leaders between ---- */

/* A buffer for n elements of type, laid out as a receive buffer would be; give *mem back with
 * fmpi_scratch_put (scratch.c keeps large ones for the next call). */
static void *tmp_alloc(MPI_Datatype type, int n, void **mem)
{
  fmpi_type *t = fmpi_type_get(type);
  size_t span = n > 0 ? (size_t)(n - 1) * (size_t)(t->extent > 0 ? t->extent : 0) + (size_t)(t->true_ub - t->true_lb) : 0;
  *mem = fmpi_scratch_get(span ? span : 1);
  return (uint8_t *)*mem - t->true_lb;
}

static int check_count(int count, MPI_Datatype type)
{
  if (count < 0)
    return MPI_ERR_COUNT;
  fmpi_type *t = fmpi_type_get(type);
  return t == NULL || !t->committed ? MPI_ERR_TYPE : MPI_SUCCESS;
}

/* MPI_ROOT, MPI_PROC_NULL (the root's group), or a remote rank (the other group). */
static int check_root(fmpi_comm *ic, int root)
{
  return root == MPI_ROOT || root == MPI_PROC_NULL || (root >= 0 && root < ic->size) ? MPI_SUCCESS : MPI_ERR_ROOT;
}

int fmpi_inter_barrier(fmpi_comm *ic)
{
  PMPI_Barrier(ic->local_comm); /* everyone here entered */
  if (ic->rank == 0)
    fmpi_sendrecv_internal(NULL, 0, MPI_BYTE, 0, NULL, 0, MPI_BYTE, 0, TAG_BARRIER, ic);
  PMPI_Barrier(ic->local_comm); /* ... and everyone there */
  return MPI_SUCCESS;
}

int fmpi_inter_bcast(void *buf, int count, MPI_Datatype type, int root, fmpi_comm *ic)
{
  int rv;
  if ((rv = check_count(count, type)) != MPI_SUCCESS || (rv = check_root(ic, root)) != MPI_SUCCESS)
    return rv;
  if (root == MPI_PROC_NULL)
    return MPI_SUCCESS;
  if (root == MPI_ROOT)
    return fmpi_send_internal(buf, count, type, 0, TAG_BCAST, ic);
  if (ic->rank == 0 && (rv = fmpi_recv_internal(buf, count, type, root, TAG_BCAST, ic)) != MPI_SUCCESS)
    return rv;
  return PMPI_Bcast(buf, count, type, 0, ic->local_comm);
}

int fmpi_inter_reduce(const void *sbuf, void *rbuf, int count, MPI_Datatype type, MPI_Op op, int root, fmpi_comm *ic)
{
  int rv;
  if ((rv = check_count(count, type)) != MPI_SUCCESS || (rv = check_root(ic, root)) != MPI_SUCCESS)
    return rv;
  if (root == MPI_PROC_NULL)
    return MPI_SUCCESS;
  if (root == MPI_ROOT)
    return fmpi_recv_internal(rbuf, count, type, 0, TAG_REDUCE, ic);
  void *mem, *tmp = tmp_alloc(type, count, &mem);
  rv = PMPI_Reduce(sbuf, tmp, count, type, op, 0, ic->local_comm);
  if (rv == MPI_SUCCESS && ic->rank == 0)
    rv = fmpi_send_internal(tmp, count, type, root, TAG_REDUCE, ic);
  fmpi_scratch_put(mem);
  return rv;
}

/* Each group gets the reduction of the other group's data. */
int fmpi_inter_allreduce(const void *sbuf, void *rbuf, int count, MPI_Datatype type, MPI_Op op, fmpi_comm *ic)
{
  int rv;
  if ((rv = check_count(count, type)) != MPI_SUCCESS)
    return rv;
  void *mem, *tmp = tmp_alloc(type, count, &mem);
  rv = PMPI_Reduce(sbuf, tmp, count, type, op, 0, ic->local_comm);
  if (rv == MPI_SUCCESS && ic->rank == 0)
    rv = fmpi_sendrecv_internal(tmp, count, type, 0, rbuf, count, type, 0, TAG_ALLREDUCE, ic);
  fmpi_scratch_put(mem);
  return rv == MPI_SUCCESS ? PMPI_Bcast(rbuf, count, type, 0, ic->local_comm) : rv;
}

int fmpi_inter_gather(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype,
                      int root, fmpi_comm *ic)
{
  int rv;
  if ((rv = check_root(ic, root)) != MPI_SUCCESS)
    return rv;
  if (root == MPI_PROC_NULL)
    return MPI_SUCCESS;
  if (root == MPI_ROOT)
    return (rv = check_count(rcount, rtype)) != MPI_SUCCESS
               ? rv
               : fmpi_recv_internal(rbuf, rcount * ic->size, rtype, 0, TAG_GATHER, ic);
  if ((rv = check_count(scount, stype)) != MPI_SUCCESS)
    return rv;
  void *mem, *tmp = tmp_alloc(stype, scount * ic->local_size, &mem);
  rv = PMPI_Gather(sbuf, scount, stype, tmp, scount, stype, 0, ic->local_comm);
  if (rv == MPI_SUCCESS && ic->rank == 0)
    rv = fmpi_send_internal(tmp, scount * ic->local_size, stype, root, TAG_GATHER, ic);
  fmpi_scratch_put(mem);
  return rv;
}

int fmpi_inter_scatter(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype,
                       int root, fmpi_comm *ic)
{
  int rv;
  if ((rv = check_root(ic, root)) != MPI_SUCCESS)
    return rv;
  if (root == MPI_PROC_NULL)
    return MPI_SUCCESS;
  if (root == MPI_ROOT)
    return (rv = check_count(scount, stype)) != MPI_SUCCESS
               ? rv
               : fmpi_send_internal(sbuf, scount * ic->size, stype, 0, TAG_SCATTER, ic);
  if ((rv = check_count(rcount, rtype)) != MPI_SUCCESS)
    return rv;
  void *mem, *tmp = tmp_alloc(rtype, rcount * ic->local_size, &mem);
  if (ic->rank == 0)
    rv = fmpi_recv_internal(tmp, rcount * ic->local_size, rtype, root, TAG_SCATTER, ic);
  if (rv == MPI_SUCCESS)
    rv = PMPI_Scatter(tmp, rcount, rtype, rbuf, rcount, rtype, 0, ic->local_comm);
  fmpi_scratch_put(mem);
  return rv;
}

/* rbuf gets the remote group's blocks, in its rank order. */
int fmpi_inter_allgather(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount,
                         MPI_Datatype rtype, fmpi_comm *ic)
{
  int rv;
  if ((rv = check_count(scount, stype)) != MPI_SUCCESS || (rv = check_count(rcount, rtype)) != MPI_SUCCESS)
    return rv;
  void *mem, *tmp = tmp_alloc(stype, scount * ic->local_size, &mem);
  rv = PMPI_Gather(sbuf, scount, stype, tmp, scount, stype, 0, ic->local_comm);
  if (rv == MPI_SUCCESS && ic->rank == 0)
    rv = fmpi_sendrecv_internal(tmp, scount * ic->local_size, stype, 0, rbuf, rcount * ic->size, rtype, 0,
                                TAG_ALLGATHER, ic);
  fmpi_scratch_put(mem);
  return rv == MPI_SUCCESS ? PMPI_Bcast(rbuf, rcount * ic->size, rtype, 0, ic->local_comm) : rv;
}

/* Block j of sbuf goes to remote rank j; block j of rbuf comes from it. */
int fmpi_inter_alltoall(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype,
                        fmpi_comm *ic)
{
  int rv;
  if ((rv = check_count(scount, stype)) != MPI_SUCCESS || (rv = check_count(rcount, rtype)) != MPI_SUCCESS)
    return rv;
  MPI_Aint sext = fmpi_type_get(stype)->extent, rext = fmpi_type_get(rtype)->extent;
  fmpi_request **reqs = malloc(sizeof *reqs * (size_t)(2 * ic->size + 1));
  if (reqs == NULL)
    fmpi_fatal("out of memory");
  fmpi_lock();
  for (int j = 0; j < ic->size; j++) {
    fmpi_irecv((uint8_t *)rbuf + (MPI_Aint)j * rcount * rext, rcount, rtype, j, TAG_ALLTOALL, ic, ic->ctx + 1,
               &reqs[2 * j]);
    fmpi_isend((const uint8_t *)sbuf + (MPI_Aint)j * scount * sext, scount, stype, j, TAG_ALLTOALL, ic,
               ic->ctx + 1, false, &reqs[2 * j + 1]);
  }
  fmpi_wait_reqs(reqs, 2 * ic->size);
  fmpi_unlock();
  free(reqs);
  return MPI_SUCCESS;
}

/* The blocking v-variants: their nonblocking forms (below), waited for. */
static int wait_for(int rv, MPI_Request *r)
{
  return rv == MPI_SUCCESS ? PMPI_Wait(r, MPI_STATUS_IGNORE) : rv;
}

int fmpi_inter_gatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, const int rcounts[],
                       const int displs[], MPI_Datatype rtype, int root, fmpi_comm *ic)
{
  MPI_Request r;
  return wait_for(fmpi_inter_igatherv(sbuf, scount, stype, rbuf, rcounts, displs, 0, rtype, root, ic, &r), &r);
}

int fmpi_inter_scatterv(const void *sbuf, const int scounts[], const int displs[], MPI_Datatype stype, void *rbuf,
                        int rcount, MPI_Datatype rtype, int root, fmpi_comm *ic)
{
  MPI_Request r;
  return wait_for(fmpi_inter_iscatterv(sbuf, scounts, displs, 0, stype, rbuf, rcount, rtype, root, ic, &r), &r);
}

int fmpi_inter_allgatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, const int rcounts[],
                          const int displs[], MPI_Datatype rtype, fmpi_comm *ic)
{
  MPI_Request r;
  return wait_for(fmpi_inter_iallgatherv(sbuf, scount, stype, rbuf, rcounts, displs, 0, rtype, ic, &r), &r);
}

int fmpi_inter_alltoallv(const void *sbuf, const int scounts[], const int sdispls[], MPI_Datatype stype, void *rbuf,
                         const int rcounts[], const int rdispls[], MPI_Datatype rtype, fmpi_comm *ic)
{
  MPI_Request r;
  return wait_for(fmpi_inter_ialltoallw(sbuf, scounts, sdispls, 0, stype, NULL, rbuf, rcounts, rdispls, 0, rtype,
                                        NULL, false, ic, &r),
                  &r);
}

/* Each group gets the reduction of the other group's count elements, scattered
 * in its own group by rcounts (one per local rank, summing to count: the same
 * count on both sides, MPI 3.1 5.10.1). */
int fmpi_inter_reduce_scatter(const void *sbuf, void *rbuf, const int rcounts[], MPI_Datatype type, MPI_Op op,
                              fmpi_comm *ic)
{
  int rv, count = 0;
  for (int i = 0; i < ic->local_size; i++) {
    if ((rv = check_count(rcounts[i], type)) != MPI_SUCCESS)
      return rv;
    count += rcounts[i];
  }
  int *displs = malloc(sizeof(int) * (size_t)ic->local_size);
  if (displs == NULL)
    fmpi_fatal("out of memory");
  for (int i = 0, at = 0; i < ic->local_size; at += rcounts[i++])
    displs[i] = at;
  void *mine_mem, *mine = tmp_alloc(type, count, &mine_mem), *theirs_mem, *theirs = tmp_alloc(type, count, &theirs_mem);
  rv = PMPI_Reduce(sbuf, mine, count, type, op, 0, ic->local_comm);
  if (rv == MPI_SUCCESS && ic->rank == 0)
    rv = fmpi_sendrecv_internal(mine, count, type, 0, theirs, count, type, 0, TAG_REDUCE_SCATTER, ic);
  if (rv == MPI_SUCCESS)
    rv = PMPI_Scatterv(theirs, rcounts, displs, type, rbuf, rcounts[ic->rank], type, 0, ic->local_comm);
  fmpi_scratch_put(mine_mem);
  fmpi_scratch_put(theirs_mem);
  free(displs);
  return rv;
}

int fmpi_inter_reduce_scatter_block(const void *sbuf, void *rbuf, int rcount, MPI_Datatype type, MPI_Op op,
                                    fmpi_comm *ic)
{
  int *rcounts = malloc(sizeof(int) * (size_t)ic->local_size);
  if (rcounts == NULL)
    fmpi_fatal("out of memory");
  for (int i = 0; i < ic->local_size; i++)
    rcounts[i] = rcount;
  int rv = fmpi_inter_reduce_scatter(sbuf, rbuf, rcounts, type, op, ic);
  free(rcounts);
  return rv;
}

/* ---- communicators from an intercommunicator (MPI 3.1 6.4.2) ---- */

/* The new intercommunicator over the local ranks of local (an internal
 * intracommunicator, or MPI_COMM_NULL) and the remote ranks remote_world[0..rn),
 * in a context agreed by the whole of ic; MPI_COMM_NULL where either side is
 * empty. */
static MPI_Comm make_inter(fmpi_comm *ic, MPI_Comm local, int rn, const int *remote_world)
{
  uint32_t ctx = agree_ctx_inter(ic);
  if (local == MPI_COMM_NULL)
    return MPI_COMM_NULL;
  if (rn == 0) {
    PMPI_Comm_free(&local);
    return MPI_COMM_NULL;
  }
  return new_inter(ctx, rn, remote_world, local, ic->errh)->handle;
}

typedef struct split_member {
  int color, key, rank, world;
} split_member;

static int by_key_then_rank(const void *a, const void *b)
{
  const split_member *x = a, *y = b;
  return x->key != y->key ? (x->key < y->key ? -1 : 1) : x->rank - y->rank;
}

/* Comm_split: each color's local ranks with that color's remote ranks, each
 * side in key order; a color with no ranks on the other side, and
 * MPI_UNDEFINED, get MPI_COMM_NULL. */
int fmpi_inter_split(fmpi_comm *ic, int color, int key, MPI_Comm *newcomm)
{
  int ln = ic->local_size, rn = ic->size, mine[2] = { color, key };
  int *local_ck = malloc(sizeof(int) * 2 * (size_t)(ln + rn));
  split_member *remote = malloc(sizeof *remote * (size_t)rn);
  int *rworld = malloc(sizeof(int) * (size_t)(rn ? rn : 1));
  if (local_ck == NULL || remote == NULL || rworld == NULL)
    fmpi_fatal("out of memory");
  int *remote_ck = local_ck + 2 * ln;
  PMPI_Allgather(mine, 2, MPI_INT, local_ck, 2, MPI_INT, ic->local_comm);
  if (ic->rank == 0)
    fmpi_sendrecv_internal(local_ck, 2 * ln, MPI_INT, 0, remote_ck, 2 * rn, MPI_INT, 0, TAG_LEADERS, ic);
  PMPI_Bcast(remote_ck, 2 * rn, MPI_INT, 0, ic->local_comm);
  int n = 0;
  for (int j = 0; j < rn; j++)
    if (color != MPI_UNDEFINED && remote_ck[2 * j] == color)
      remote[n++] = (split_member){ color, remote_ck[2 * j + 1], j, ic->world[j] };
  qsort(remote, (size_t)n, sizeof *remote, by_key_then_rank);
  for (int j = 0; j < n; j++)
    rworld[j] = remote[j].world;
  /* the local side: this color's ranks, if the other side has it too */
  MPI_Comm local;
  PMPI_Comm_split(ic->local_comm, n > 0 ? color : MPI_UNDEFINED, key, &local);
  *newcomm = make_inter(ic, local, n, rworld);
  free(local_ck);
  free(remote);
  free(rworld);
  return MPI_SUCCESS;
}

/* Comm_create: each side names a group of its own ranks; the members get an
 * intercommunicator between the two groups (MPI_COMM_NULL if either is empty). */
int fmpi_inter_create(fmpi_comm *ic, MPI_Group group, MPI_Comm *newcomm)
{
  fmpi_group *g = fmpi_group_get(group);
  if (g == NULL)
    return MPI_ERR_GROUP;
  for (int i = 0; i < g->size; i++)
    if (g->world[i] < 0 || g->world[i] >= fmpi_st.size || fmpi_comm_get(ic->local_comm)->local[g->world[i]] < 0)
      return MPI_ERR_GROUP; /* not a local rank */
  int sizes[2] = { g->size, 0 };
  if (ic->rank == 0)
    fmpi_sendrecv_internal(&sizes[0], 1, MPI_INT, 0, &sizes[1], 1, MPI_INT, 0, TAG_LEADERS, ic);
  PMPI_Bcast(&sizes[1], 1, MPI_INT, 0, ic->local_comm);
  int rn = sizes[1], *rworld = malloc(sizeof(int) * (size_t)(rn ? rn : 1));
  if (rworld == NULL)
    fmpi_fatal("out of memory");
  if (ic->rank == 0)
    fmpi_sendrecv_internal(g->world, g->size, MPI_INT, 0, rworld, rn, MPI_INT, 0, TAG_LEADERS, ic);
  PMPI_Bcast(rworld, rn, MPI_INT, 0, ic->local_comm);
  MPI_Comm local;
  PMPI_Comm_create(ic->local_comm, group, &local);
  *newcomm = make_inter(ic, local, rn, rworld);
  free(rworld);
  return MPI_SUCCESS;
}

/* ---- nonblocking collectives (MPI 3.1 5.12): one round of messages between the two groups ----
 *
 * Each is one round of a nonblocking-collective schedule (nbc.c) on the
 * intercommunicator: every rank exchanges directly with the remote ranks it
 * needs (the root with every remote rank; in the all- forms every rank with
 * every remote rank), and a reduction combines the remote ranks' data where
 * it arrives, in their rank order. More messages than the blocking forms'
 * trees, but no step waits on a leader. */

/* count elements of type from buf (count < 0: none) */
typedef struct xfer {
  void *buf;
  int count;
  MPI_Datatype type;
} xfer;

#define NONE ((xfer){ NULL, -1, MPI_BYTE })

/* Round 0 of s: sends[j] to remote rank j and recvs[j] from it (either array NULL: none that way). */
static void add_pairs(fmpi_nbc *s, fmpi_comm *ic, const xfer *sends, const xfer *recvs)
{
  for (int j = 0; j < ic->size; j++) {
    if (recvs && recvs[j].count >= 0)
      fmpi_nbc_add(s, 0, false, recvs[j].buf, recvs[j].count, recvs[j].type, j);
    if (sends && sends[j].count >= 0)
      fmpi_nbc_add(s, 0, true, sends[j].buf, sends[j].count, sends[j].type, j);
  }
}

static xfer *xfers(int n)
{
  xfer *x = malloc(sizeof *x * (size_t)(n ? n : 1));
  if (x == NULL)
    fmpi_fatal("out of memory");
  for (int j = 0; j < n; j++)
    x[j] = NONE;
  return x;
}

/* Sends and receives of one round, then the schedule started. */
static int start_pairs(fmpi_comm *ic, fmpi_nbc *s, xfer *sends, xfer *recvs, MPI_Request *request)
{
  add_pairs(s, ic, sends, recvs);
  free(sends);
  free(recvs);
  return fmpi_nbc_start(s, request);
}

/* A buffer of count elements of type that lives as long as the schedule. */
static void *sched_buf(fmpi_nbc *s, int count, MPI_Datatype type)
{
  fmpi_type *t = fmpi_type_get(type);
  MPI_Aint span = (count > 0 ? (MPI_Aint)(count - 1) * t->extent : 0) + (t->true_ub - t->true_lb);
  return (uint8_t *)fmpi_nbc_tmp(s, (size_t)(span > 0 ? span : 1)) - t->true_lb;
}

/* s->out = x0 op (x1 op (... op x(n-1))) of the remote ranks' parts, in their rank order. */
static void combine_remote(fmpi_nbc *s)
{
  int n = s->comm->size;
  fmpi_type *t = fmpi_type_get(s->type);
  size_t bytes = (size_t)s->count * t->size;
  uint8_t *packed = malloc(bytes ? bytes : 1);
  if (packed == NULL)
    fmpi_fatal("out of memory");
  fmpi_pack(t, s->parts[n - 1], s->count, packed);
  fmpi_unpack(t, packed, bytes, s->out);
  free(packed);
  for (int j = n - 2; j >= 0; j--)
    fmpi_op_apply(s->op, s->parts[j], s->out, s->count, s->type);
}

/* Receives of every remote rank's count elements into parts, combined into out at the end. */
static xfer *reduce_recvs(fmpi_nbc *s, fmpi_comm *ic, void *out, int count, MPI_Datatype type, MPI_Op op)
{
  xfer *recvs = xfers(ic->size);
  s->parts = fmpi_nbc_tmp(s, sizeof(void *) * (size_t)(ic->size ? ic->size : 1));
  for (int j = 0; j < ic->size; j++)
    recvs[j] = (xfer){ s->parts[j] = sched_buf(s, count, type), count, type };
  s->out = out;
  s->count = count;
  s->type = type;
  s->op = op;
  s->finish = combine_remote;
  return recvs;
}

/* Comm_idup's new intercommunicator and its local group's communicator, both FMPI_CTX_PENDING until
 * ctx.c's agreement gives them contexts. */
fmpi_comm *fmpi_inter_dup_pending(fmpi_comm *ic)
{
  fmpi_comm *lc = local_of(ic);
  fmpi_comm *local = fmpi_comm_new(FMPI_CTX_PENDING, lc->size, lc->world, lc->errh);
  return new_inter(FMPI_CTX_PENDING, ic->size, ic->world, local->handle, ic->errh);
}

/* Before round 1 of an allmax: the largest of the remote group's vectors, which round 1 sends back. */
static void allmax_remote(fmpi_nbc *s)
{
  unsigned *got = s->parts[0], *remote = s->parts[1];
  for (int k = 0; k < s->count; k++) {
    remote[k] = 0;
    for (int j = 0; j < s->comm->size; j++)
      if (got[j * s->count + k] > remote[k])
        remote[k] = got[j * s->count + k];
  }
}

/* After round 1: what came back is the largest of this group's vectors; with the remote one's, all. */
static void allmax_both(fmpi_nbc *s)
{
  unsigned *remote = s->parts[1], *mine = s->parts[2], *out = s->rbuf;
  for (int k = 0; k < s->count; k++)
    out[k] = remote[k] > mine[k] ? remote[k] : mine[k];
}

/* A schedule, not started, of the element-wise largest of `count` unsigned over both groups of ic (the
 * intercommunicator's Comm_idup votes with it, ctx.c): round 0, each rank's vector to every remote rank;
 * round 1, to every remote rank the largest of those it got, which is its own group's largest there;
 * then the two together. It may run again (the finish step sets the round back to 0). */
fmpi_nbc *fmpi_inter_nbc_allmax(fmpi_comm *ic, unsigned *mine, unsigned *result, int count)
{
  fmpi_nbc *s = fmpi_nbc_new(ic, 3);
  s->count = count;
  s->rbuf = result;
  s->parts = fmpi_nbc_tmp(s, 3 * sizeof *s->parts);
  s->parts[0] = fmpi_nbc_tmp(s, sizeof(unsigned) * (size_t)(count * ic->size));
  s->parts[1] = fmpi_nbc_tmp(s, sizeof(unsigned) * (size_t)count);
  s->parts[2] = fmpi_nbc_tmp(s, sizeof(unsigned) * (size_t)(count * ic->size));
  for (int j = 0; j < ic->size; j++) {
    fmpi_nbc_add(s, 0, true, mine, count, MPI_UNSIGNED, j);
    fmpi_nbc_add(s, 0, false, (unsigned *)s->parts[0] + j * count, count, MPI_UNSIGNED, j);
    fmpi_nbc_add(s, 1, true, s->parts[1], count, MPI_UNSIGNED, j);
    fmpi_nbc_add(s, 1, false, (unsigned *)s->parts[2] + j * count, count, MPI_UNSIGNED, j);
  }
  s->rounds[1].before = allmax_remote;
  s->rounds[2].before = allmax_both; /* round 2 has no operations: the combination only */
  return s;
}

int fmpi_inter_ibarrier(fmpi_comm *ic, MPI_Request *request)
{
  fmpi_nbc *s = fmpi_nbc_new(ic, 1);
  xfer *sends = xfers(ic->size), *recvs = xfers(ic->size);
  for (int j = 0; j < ic->size; j++)
    sends[j] = recvs[j] = (xfer){ NULL, 0, MPI_BYTE };
  return start_pairs(ic, s, sends, recvs, request);
}

int fmpi_inter_ibcast(void *buf, int count, MPI_Datatype type, int root, fmpi_comm *ic, MPI_Request *request)
{
  int rv;
  if ((rv = check_count(count, type)) != MPI_SUCCESS || (rv = check_root(ic, root)) != MPI_SUCCESS)
    return rv;
  fmpi_nbc *s = fmpi_nbc_new(ic, 1);
  xfer *sends = xfers(ic->size), *recvs = xfers(ic->size);
  for (int j = 0; root == MPI_ROOT && j < ic->size; j++)
    sends[j] = (xfer){ buf, count, type };
  if (root >= 0)
    recvs[root] = (xfer){ buf, count, type };
  return start_pairs(ic, s, sends, recvs, request);
}

int fmpi_inter_ireduce(const void *sbuf, void *rbuf, int count, MPI_Datatype type, MPI_Op op, int root, fmpi_comm *ic,
                       MPI_Request *request)
{
  int rv;
  if ((rv = check_count(count, type)) != MPI_SUCCESS || (rv = check_root(ic, root)) != MPI_SUCCESS)
    return rv;
  if (!fmpi_op_valid(op))
    return MPI_ERR_OP;
  fmpi_nbc *s = fmpi_nbc_new(ic, 1);
  xfer *sends = xfers(ic->size), *recvs = NULL;
  if (root == MPI_ROOT)
    recvs = reduce_recvs(s, ic, rbuf, count, type, op);
  else if (root >= 0)
    sends[root] = (xfer){ (void *)sbuf, count, type };
  return start_pairs(ic, s, sends, recvs, request);
}

/* Each group gets the reduction of the other group's data: every rank sends its data to every remote rank. */
int fmpi_inter_iallreduce(const void *sbuf, void *rbuf, int count, MPI_Datatype type, MPI_Op op, fmpi_comm *ic,
                          MPI_Request *request)
{
  int rv;
  if ((rv = check_count(count, type)) != MPI_SUCCESS)
    return rv;
  if (!fmpi_op_valid(op))
    return MPI_ERR_OP;
  fmpi_nbc *s = fmpi_nbc_new(ic, 1);
  xfer *sends = xfers(ic->size), *recvs = reduce_recvs(s, ic, rbuf, count, type, op);
  for (int j = 0; j < ic->size; j++)
    sends[j] = (xfer){ (void *)sbuf, count, type };
  return start_pairs(ic, s, sends, recvs, request);
}

/* The reduction of the remote group's count elements (the sum of the local
 * rcounts, the same on both sides), of which this rank keeps its block. */
typedef struct scatter_part {
  void *whole, *mine;
  MPI_Aint at;
  int n;
} scatter_part;

static void keep_block(fmpi_nbc *s)
{
  scatter_part *p = s->arg;
  s->out = p->whole;
  combine_remote(s);
  fmpi_type *t = fmpi_type_get(s->type);
  size_t bytes = (size_t)p->n * t->size;
  uint8_t *packed = malloc(bytes ? bytes : 1);
  if (packed == NULL)
    fmpi_fatal("out of memory");
  fmpi_pack(t, (uint8_t *)p->whole + p->at * t->extent, p->n, packed);
  fmpi_unpack(t, packed, bytes, p->mine);
  free(packed);
}

int fmpi_inter_ireduce_scatter(const void *sbuf, void *rbuf, const int rcounts[], MPI_Datatype type, MPI_Op op,
                               fmpi_comm *ic, MPI_Request *request)
{
  int rv, count = 0, at = 0;
  for (int i = 0; i < ic->local_size; i++) {
    if ((rv = check_count(rcounts[i], type)) != MPI_SUCCESS)
      return rv;
    if (i < ic->rank)
      at += rcounts[i];
    count += rcounts[i];
  }
  if (!fmpi_op_valid(op))
    return MPI_ERR_OP;
  fmpi_nbc *s = fmpi_nbc_new(ic, 1);
  scatter_part *p = fmpi_nbc_tmp(s, sizeof *p);
  *p = (scatter_part){ sched_buf(s, count, type), rbuf, at, rcounts[ic->rank] };
  xfer *sends = xfers(ic->size), *recvs = reduce_recvs(s, ic, p->whole, count, type, op);
  for (int j = 0; j < ic->size; j++)
    sends[j] = (xfer){ (void *)sbuf, count, type };
  s->arg = p;
  s->finish = keep_block;
  return start_pairs(ic, s, sends, recvs, request);
}

int fmpi_inter_ireduce_scatter_block(const void *sbuf, void *rbuf, int rcount, MPI_Datatype type, MPI_Op op,
                                     fmpi_comm *ic, MPI_Request *request)
{
  int *rcounts = malloc(sizeof(int) * (size_t)ic->local_size);
  if (rcounts == NULL)
    fmpi_fatal("out of memory");
  for (int i = 0; i < ic->local_size; i++)
    rcounts[i] = rcount;
  int rv = fmpi_inter_ireduce_scatter(sbuf, rbuf, rcounts, type, op, ic, request);
  free(rcounts);
  return rv;
}

/* The rooted and all- data movers, with block j of a side at displs[j] (elements of its type; counts NULL: count
 * elements each, one block after the other) or, for Ialltoallw, at byte displacements with a type per block. */
static xfer *blocks(const void *buf, int n, const int counts[], const int displs[], int fixed, MPI_Datatype type,
                    const MPI_Datatype types[], bool byte_displs)
{
  xfer *x = xfers(n);
  for (int j = 0; j < n; j++) {
    MPI_Datatype t = types ? types[j] : type;
    MPI_Aint d = displs ? displs[j] : (MPI_Aint)j * fixed;
    x[j] = (xfer){ (uint8_t *)buf + (byte_displs ? d : d * fmpi_type_get(t)->extent), counts ? counts[j] : fixed, t };
  }
  return x;
}

static int check_blocks(int n, const int counts[], int fixed, MPI_Datatype type, const MPI_Datatype types[])
{
  int rv = MPI_SUCCESS;
  for (int j = 0; rv == MPI_SUCCESS && j < n; j++)
    rv = check_count(counts ? counts[j] : fixed, types ? types[j] : type);
  return rv;
}

/* Igather(v): the root receives block j from remote rank j; the other group's ranks send theirs to it. */
int fmpi_inter_igatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, const int rcounts[],
                        const int displs[], int rfixed, MPI_Datatype rtype, int root, fmpi_comm *ic,
                        MPI_Request *request)
{
  int rv;
  if ((rv = check_root(ic, root)) != MPI_SUCCESS)
    return rv;
  if (root == MPI_ROOT && (rv = check_blocks(ic->size, rcounts, rfixed, rtype, NULL)) != MPI_SUCCESS)
    return rv;
  if (root >= 0 && (rv = check_count(scount, stype)) != MPI_SUCCESS)
    return rv;
  fmpi_nbc *s = fmpi_nbc_new(ic, 1);
  xfer *sends = xfers(ic->size), *recvs = NULL;
  if (root == MPI_ROOT)
    recvs = blocks(rbuf, ic->size, rcounts, displs, rfixed, rtype, NULL, false);
  else if (root >= 0)
    sends[root] = (xfer){ (void *)sbuf, scount, stype };
  return start_pairs(ic, s, sends, recvs, request);
}

/* Iscatter(v): the root sends block j to remote rank j. */
int fmpi_inter_iscatterv(const void *sbuf, const int scounts[], const int displs[], int sfixed, MPI_Datatype stype,
                         void *rbuf, int rcount, MPI_Datatype rtype, int root, fmpi_comm *ic, MPI_Request *request)
{
  int rv;
  if ((rv = check_root(ic, root)) != MPI_SUCCESS)
    return rv;
  if (root == MPI_ROOT && (rv = check_blocks(ic->size, scounts, sfixed, stype, NULL)) != MPI_SUCCESS)
    return rv;
  if (root >= 0 && (rv = check_count(rcount, rtype)) != MPI_SUCCESS)
    return rv;
  fmpi_nbc *s = fmpi_nbc_new(ic, 1);
  xfer *sends = NULL, *recvs = xfers(ic->size);
  if (root == MPI_ROOT)
    sends = blocks(sbuf, ic->size, scounts, displs, sfixed, stype, NULL, false);
  else if (root >= 0)
    recvs[root] = (xfer){ rbuf, rcount, rtype };
  return start_pairs(ic, s, sends, recvs, request);
}

/* Iallgather(v): every rank sends its block to every remote rank and gets remote rank j's as block j. */
int fmpi_inter_iallgatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, const int rcounts[],
                           const int displs[], int rfixed, MPI_Datatype rtype, fmpi_comm *ic, MPI_Request *request)
{
  int rv;
  if ((rv = check_count(scount, stype)) != MPI_SUCCESS ||
      (rv = check_blocks(ic->size, rcounts, rfixed, rtype, NULL)) != MPI_SUCCESS)
    return rv;
  fmpi_nbc *s = fmpi_nbc_new(ic, 1);
  xfer *sends = xfers(ic->size);
  for (int j = 0; j < ic->size; j++)
    sends[j] = (xfer){ (void *)sbuf, scount, stype };
  return start_pairs(ic, s, sends, blocks(rbuf, ic->size, rcounts, displs, rfixed, rtype, NULL, false), request);
}

/* Ialltoall(v,w): block j of each side with remote rank j. */
int fmpi_inter_ialltoallw(const void *sbuf, const int scounts[], const int sdispls[], int sfixed, MPI_Datatype stype,
                          const MPI_Datatype stypes[], void *rbuf, const int rcounts[], const int rdispls[], int rfixed,
                          MPI_Datatype rtype, const MPI_Datatype rtypes[], bool byte_displs, fmpi_comm *ic,
                          MPI_Request *request)
{
  int rv;
  if ((rv = check_blocks(ic->size, scounts, sfixed, stype, stypes)) != MPI_SUCCESS ||
      (rv = check_blocks(ic->size, rcounts, rfixed, rtype, rtypes)) != MPI_SUCCESS)
    return rv;
  fmpi_nbc *s = fmpi_nbc_new(ic, 1);
  return start_pairs(ic, s, blocks(sbuf, ic->size, scounts, sdispls, sfixed, stype, stypes, byte_displs),
                     blocks(rbuf, ic->size, rcounts, rdispls, rfixed, rtype, rtypes, byte_displs), request);
}
