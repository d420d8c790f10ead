/* Collectives, built on point-to-point in each communicator's collective
 * context (ctx + 1), so they never match the application's messages. Simple,
 * correct algorithms: dissemination barrier, binomial broadcast, reductions in
 * rank order (right for non-commutative user ops), direct exchanges. Every
 * member calls collectives in the same order and channels never reorder, so a
 * fixed tag per collective is enough. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "fmpi.h"

#pragma weak MPI_Barrier = PMPI_Barrier
#pragma weak MPI_Bcast = PMPI_Bcast
#pragma weak MPI_Reduce = PMPI_Reduce
#pragma weak MPI_Allreduce = PMPI_Allreduce
#pragma weak MPI_Gather = PMPI_Gather
#pragma weak MPI_Gatherv = PMPI_Gatherv
#pragma weak MPI_Scatter = PMPI_Scatter
#pragma weak MPI_Scatterv = PMPI_Scatterv
#pragma weak MPI_Allgather = PMPI_Allgather
#pragma weak MPI_Allgatherv = PMPI_Allgatherv
#pragma weak MPI_Alltoall = PMPI_Alltoall
#pragma weak MPI_Alltoallv = PMPI_Alltoallv
#pragma weak MPI_Reduce_scatter_block = PMPI_Reduce_scatter_block
#pragma weak MPI_Reduce_scatter = PMPI_Reduce_scatter
#pragma weak MPI_Ibarrier = PMPI_Ibarrier
#pragma weak MPI_Ibcast = PMPI_Ibcast
#pragma weak MPI_Ireduce = PMPI_Ireduce
#pragma weak MPI_Iallreduce = PMPI_Iallreduce
#pragma weak MPI_Igather = PMPI_Igather
#pragma weak MPI_Iscatter = PMPI_Iscatter
#pragma weak MPI_Iallgather = PMPI_Iallgather
#pragma weak MPI_Ialltoall = PMPI_Ialltoall
#pragma weak MPI_Igatherv = PMPI_Igatherv
#pragma weak MPI_Iscatterv = PMPI_Iscatterv
#pragma weak MPI_Iallgatherv = PMPI_Iallgatherv
#pragma weak MPI_Ialltoallv = PMPI_Ialltoallv
#pragma weak MPI_Ireduce_scatter_block = PMPI_Ireduce_scatter_block
#pragma weak MPI_Ireduce_scatter = PMPI_Ireduce_scatter
#pragma weak MPI_Alltoallw = PMPI_Alltoallw
#pragma weak MPI_Ialltoallw = PMPI_Ialltoallw
#pragma weak MPI_Iscan = PMPI_Iscan
#pragma weak MPI_Iexscan = PMPI_Iexscan
#pragma weak MPI_Scan = PMPI_Scan
#pragma weak MPI_Exscan = PMPI_Exscan

enum { TAG_BARRIER = 1, TAG_BCAST, TAG_REDUCE, TAG_GATHER, TAG_SCATTER, TAG_EXCHANGE, TAG_SCAN, TAG_ALLREDUCE };

/* A temporary buffer for count elements of t, addressed like a user buffer. */
typedef struct tmp_buf {
  uint8_t *raw;
  uint8_t *buf;
} tmp_buf;

static tmp_buf tmp_alloc(int count, fmpi_type *t)
{
  tmp_buf b;
  MPI_Aint span = (count > 0 ? (MPI_Aint)(count - 1) * t->extent : 0) + (t->true_ub - t->true_lb);
  b.raw = fmpi_scratch_get((size_t)(span > 0 ? span : 1));
  b.buf = b.raw - t->true_lb;
  return b;
}

static void *at(const void *buf, MPI_Aint displ_elems, fmpi_type *t)
{
  return (uint8_t *)buf + displ_elems * t->extent;
}

/* Copies scount elements of st into rcount elements of rt (type signatures match). */
static void local_copy(const void *sbuf, int scount, fmpi_type *st, void *rbuf, int rcount, fmpi_type *rt)
{
  size_t n = (size_t)scount * st->size, cap = (size_t)rcount * rt->size;
  if (st->contig && rt->contig) { /* no staging copy (a malloc of the whole vector at every call) */
    memmove((uint8_t *)rbuf + rt->lb, (const uint8_t *)sbuf + st->lb, n < cap ? n : cap);
    return;
  }
  uint8_t *tmp = malloc(n ? n : 1);
  if (tmp == NULL)
    fmpi_fatal("out of memory");
  fmpi_pack(st, sbuf, scount, tmp);
  fmpi_unpack(rt, tmp, n < cap ? n : cap, rbuf);
  free(tmp);
}

/* Nonblocking internal operations collected, then waited for together. */
typedef struct reqset {
  fmpi_request **r;
  int n;
} reqset;

static void rs_init(reqset *s, int max)
{
  s->r = calloc((size_t)(max ? max : 1), sizeof *s->r);
  s->n = 0;
  if (s->r == NULL)
    fmpi_fatal("out of memory");
}

static void rs_send(reqset *s, const void *buf, int count, MPI_Datatype t, int dest, int tag, fmpi_comm *c)
{
  fmpi_lock();
  fmpi_isend(buf, count, t, dest, tag, c, c->ctx + 1, false, &s->r[s->n++]);
  fmpi_unlock();
}

static void rs_recv(reqset *s, void *buf, int count, MPI_Datatype t, int src, int tag, fmpi_comm *c)
{
  fmpi_lock();
  fmpi_irecv(buf, count, t, src, tag, c, c->ctx + 1, &s->r[s->n++]);
  fmpi_unlock();
}

static int rs_wait(reqset *s)
{
  int err = MPI_SUCCESS;
  fmpi_lock();
  fmpi_wait_reqs_keep(s->r, s->n);
  for (int i = 0; i < s->n; i++) {
    if (!s->r[i]->is_send && s->r[i]->status.MPI_ERROR != MPI_SUCCESS)
      err = s->r[i]->status.MPI_ERROR;
    fmpi_req_release(s->r[i]);
  }
  fmpi_unlock();
  free(s->r);
  s->r = NULL;
  s->n = 0;
  return err;
}

#define GET_COMM(h, name)                          \
  FMPI_CHECK_INIT(name);                           \
  fmpi_comm *c = fmpi_comm_get(h);                 \
  if (c == NULL)                                   \
    return fmpi_error(NULL, MPI_ERR_COMM, name);   \
  if (c->inter)                                    \
    return fmpi_error(c, MPI_ERR_COMM, name)

/* The collectives that also run on an intercommunicator (intercomm.c) take
 * this path first. */
#define INTER(name, call)                                                  \
  do {                                                                     \
    FMPI_CHECK_INIT(name);                                                 \
    fmpi_comm *ic_ = fmpi_comm_get(comm);                                  \
    if (ic_ != NULL && ic_->inter) {                                       \
      int rv_ = call;                                                      \
      return rv_ == MPI_SUCCESS ? rv_ : fmpi_error(ic_, rv_, name);        \
    }                                                                      \
  } while (0)

static int check_buf(int count, MPI_Datatype t)
{
  if (count < 0)
    return MPI_ERR_COUNT;
  if (fmpi_type_get(t) == NULL)
    return MPI_ERR_TYPE;
  return MPI_SUCCESS;
}

int PMPI_Barrier(MPI_Comm comm)
{
  INTER("MPI_Barrier", fmpi_inter_barrier(ic_));
  GET_COMM(comm, "MPI_Barrier");
  for (int k = 1; k < c->size; k <<= 1) {
    int rv = fmpi_sendrecv_internal(NULL, 0, MPI_BYTE, (c->rank + k) % c->size, NULL, 0, MPI_BYTE,
                                    (c->rank - k + c->size) % c->size, TAG_BARRIER, c);
    if (rv != MPI_SUCCESS)
      return fmpi_error(c, rv, "MPI_Barrier");
  }
  return MPI_SUCCESS;
}

static int bcast(void *buf, int count, MPI_Datatype t, int root, fmpi_comm *c)
{
  int n = c->size, vr = (c->rank - root + n) % n, mask = 1, rv = MPI_SUCCESS;
  while (mask < n) {
    if (vr & mask) {
      rv = fmpi_recv_internal(buf, count, t, (vr - mask + root) % n, TAG_BCAST, c);
      break;
    }
    mask <<= 1;
  }
  for (mask >>= 1; mask > 0; mask >>= 1)
    if (vr + mask < n)
      fmpi_send_internal(buf, count, t, (vr + mask + root) % n, TAG_BCAST, c);
  return rv;
}

int PMPI_Bcast(void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm)
{
  INTER("MPI_Bcast", fmpi_inter_bcast(buffer, count, datatype, root, ic_));
  GET_COMM(comm, "MPI_Bcast");
  int rv;
  if ((rv = check_buf(count, datatype)) != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Bcast");
  if (root < 0 || root >= c->size)
    return fmpi_error(c, MPI_ERR_ROOT, "MPI_Bcast");
  if ((rv = bcast(buffer, count, datatype, root, c)) != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Bcast");
  return MPI_SUCCESS;
}

/* Reduction to root along a binomial tree: a rank receives the partial results of the subtrees below it
 * (vr + 1, + 2, + 4 ... while its low bits are clear) and sends its own to its parent (vr minus its lowest
 * set bit), log2(n) rounds; the linear version took n - 1 receives in a row at the root. Subtrees cover
 * consecutive virtual ranks, and each combination is (lower ranks' part) op (higher ranks' part). With a
 * commutative op the tree is rooted at the root (virtual rank = rank - root); otherwise at rank 0, so
 * the op is applied in rank order, and rank 0 sends the result on to the root. (Rabenseifner's
 * reduce-scatter and a gather to the root, as Allreduce does for long vectors, was slower here at every
 * size and rank count measured, docs/runtime.md.) mine holds this rank's contribution (never
 * MPI_IN_PLACE here). */
static int reduce(const void *mine, void *rbuf, int count, MPI_Datatype dt, MPI_Op op, int root, fmpi_comm *c)
{
  fmpi_type *t = fmpi_type_get(dt);
  int n = c->size, rv = MPI_SUCCESS, e;
  bool commutative = fmpi_op_commutative(op);
  int base = commutative ? root : 0, vr = (c->rank - base + n) % n;
  const void *cur = mine; /* the partial result so far: this rank's own until a subtree's comes in */
  tmp_buf bufs[2] = { { NULL, NULL }, { NULL, NULL } };
  int next = 0, mask = 1;
  for (; mask < n && !(vr & mask); mask <<= 1) {
    if (vr + mask >= n)
      continue;
    if (bufs[next].raw == NULL)
      bufs[next] = tmp_alloc(count, t);
    uint8_t *in = bufs[next].buf;
    if ((e = fmpi_recv_internal(in, count, dt, (vr + mask + base) % n, TAG_REDUCE, c)) != MPI_SUCCESS)
      rv = e;
    if ((e = fmpi_op_apply(op, cur, in, count, dt)) != MPI_SUCCESS) /* in = ours op the subtree's */
      rv = e;
    cur = in;
    next ^= 1;
  }
  if (mask < n)
    fmpi_send_internal(cur, count, dt, (vr - mask + base) % n, TAG_REDUCE, c);
  else if (c->rank == root) /* vr 0 */
    local_copy(cur, count, t, rbuf, count, t);
  else /* rank 0 of a non-commutative op's tree */
    fmpi_send_internal(cur, count, dt, root, TAG_REDUCE, c);
  if (vr != 0 && c->rank == root && (e = fmpi_recv_internal(rbuf, count, dt, base, TAG_REDUCE, c)) != MPI_SUCCESS)
    rv = e;
  fmpi_scratch_put(bufs[0].raw);
  fmpi_scratch_put(bufs[1].raw);
  return rv;
}

static int check_reduce(fmpi_comm *c, int count, MPI_Datatype dt, MPI_Op op)
{
  int rv;
  if ((rv = check_buf(count, dt)) != MPI_SUCCESS)
    return rv;
  if (!fmpi_op_valid(op))
    return MPI_ERR_OP;
  (void)c;
  return MPI_SUCCESS;
}

int PMPI_Reduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op, int root,
                MPI_Comm comm)
{
  INTER("MPI_Reduce", fmpi_inter_reduce(sendbuf, recvbuf, count, datatype, op, root, ic_));
  GET_COMM(comm, "MPI_Reduce");
  int rv;
  if ((rv = check_reduce(c, count, datatype, op)) != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Reduce");
  if (root < 0 || root >= c->size)
    return fmpi_error(c, MPI_ERR_ROOT, "MPI_Reduce");
  /* as in MPI_Allreduce: every rank fails alike, before any message (a tree applies the op on the way) */
  if (op <= MPI_NO_OP && (rv = fmpi_op_apply(op, recvbuf, recvbuf, 0, datatype)) != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Reduce");
  const void *mine = sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf;
  if ((rv = reduce(mine, recvbuf, count, datatype, op, root, c)) != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Reduce");
  return MPI_SUCCESS;
}

/* Allreduce by recursive doubling: log2(n) rounds in which each rank swaps its partial result with a
 * partner and combines the two, every rank at once (a reduction to one rank and a broadcast took n - 1
 * receives in a row at the root, plus log2(n) rounds); from FMPI_ALLREDUCE_HALVING_BYTES with a
 * commutative op, allreduce_halving's rounds instead. With n not a power of two, the first 2r ranks
 * (r = n minus the largest power of two below it) pair up first: the even one hands its data to the odd
 * one and gets the result back at the end. Each combination is (lower ranks' part) op (higher ranks'
 * part), and every part covers consecutive ranks, so a non-commutative op is applied in rank order, and
 * both partners compute the same bits: all ranks get the same result. */
/* Element offset of block b when count elements are cut into p blocks (the first count % p one longer). */
static int block_at(int count, int p, int b)
{
  return b * (count / p) + (b < count % p ? b : count % p);
}

/* Rabenseifner's allreduce among the p2 ranks left after the fold (vr their rank there, real() the
 * world rank of one): a reduce-scatter by recursive halving (each round a rank sends the half of its
 * blocks its partner keeps and combines the half it keeps: the whole vector crosses each rank about
 * once), then an allgather by recursive doubling. For large vectors and commutative ops: each block is
 * reduced at one rank, so every rank ends with the same bits. */
static int allreduce_halving(uint8_t *buf, uint8_t *tmp, int count, MPI_Datatype dt, MPI_Op op, fmpi_comm *c,
                             int vr, int p2, int extra)
{
  MPI_Aint ext = fmpi_type_get(dt)->extent;
  int lo = 0, hi = p2, rv = MPI_SUCCESS, e;
#define REAL(v) ((v) < extra ? (v) * 2 + 1 : (v) + extra)
#define AT(b, base) ((base) + (MPI_Aint)block_at(count, p2, b) * ext)
#define LEN(b0, b1) (block_at(count, p2, b1) - block_at(count, p2, b0))
  for (int mask = p2 / 2; mask >= 1; mask >>= 1) {
    int partner = REAL(vr ^ mask), mid = lo + (hi - lo) / 2;
    int keep_lo = vr & mask ? mid : lo, keep_hi = vr & mask ? hi : mid;
    int send_lo = vr & mask ? lo : mid, send_hi = vr & mask ? mid : hi;
    if ((e = fmpi_sendrecv_internal(AT(send_lo, buf), LEN(send_lo, send_hi), dt, partner, AT(keep_lo, tmp),
                                    LEN(keep_lo, keep_hi), dt, partner, TAG_ALLREDUCE, c)) != MPI_SUCCESS)
      rv = e;
    if ((e = fmpi_op_apply(op, AT(keep_lo, tmp), AT(keep_lo, buf), LEN(keep_lo, keep_hi), dt)) != MPI_SUCCESS)
      rv = e;
    lo = keep_lo;
    hi = keep_hi;
  }
  for (int mask = 1; mask < p2; mask <<= 1) {
    int pv = vr ^ mask, plo = pv / mask * mask, phi = plo + mask;
    if ((e = fmpi_sendrecv_internal(AT(lo, buf), LEN(lo, hi), dt, REAL(pv), AT(plo, buf), LEN(plo, phi), dt, REAL(pv),
                                    TAG_ALLREDUCE, c)) != MPI_SUCCESS)
      rv = e;
    lo = lo < plo ? lo : plo;
    hi = hi > phi ? hi : phi;
  }
#undef REAL
#undef AT
#undef LEN
  return rv;
}

static int allreduce(const void *mine, void *rbuf, int count, MPI_Datatype dt, MPI_Op op, fmpi_comm *c)
{
  fmpi_type *t = fmpi_type_get(dt);
  int n = c->size, me = c->rank, rv = MPI_SUCCESS, e;
  if (mine != rbuf)
    local_copy(mine, count, t, rbuf, count, t);
  if (n == 1)
    return MPI_SUCCESS;
  int p2 = 1;
  while (p2 * 2 <= n)
    p2 *= 2;
  int extra = n - p2, vr = me < 2 * extra ? (me % 2 ? me / 2 : -1) : me - extra;
  tmp_buf tmp = tmp_alloc(count, t);
  uint8_t *cur = rbuf, *other = tmp.buf; /* the partial result, and where the partner's comes in */
  if (vr < 0) { /* folded into the odd rank above */
    fmpi_send_internal(cur, count, dt, me + 1, TAG_ALLREDUCE, c);
  } else if (me < 2 * extra) {
    rv = fmpi_recv_internal(other, count, dt, me - 1, TAG_ALLREDUCE, c);
    if ((e = fmpi_op_apply(op, other, cur, count, dt)) != MPI_SUCCESS)
      rv = e;
  }
  bool halving = (size_t)count * t->size >= FMPI_ALLREDUCE_HALVING_BYTES && count >= p2 && fmpi_op_commutative(op);
  if (vr >= 0 && halving) {
    if ((e = allreduce_halving(cur, other, count, dt, op, c, vr, p2, extra)) != MPI_SUCCESS)
      rv = e;
  }
  for (int mask = 1; vr >= 0 && !halving && mask < p2; mask <<= 1) {
    int pv = vr ^ mask, partner = pv < extra ? pv * 2 + 1 : pv + extra;
    if ((e = fmpi_sendrecv_internal(cur, count, dt, partner, other, count, dt, partner, TAG_ALLREDUCE, c)) !=
        MPI_SUCCESS)
      rv = e;
    if (pv < vr) { /* cur = partner's op mine */
      e = fmpi_op_apply(op, other, cur, count, dt);
    } else { /* mine op partner's, computed where the partner's is */
      e = fmpi_op_apply(op, cur, other, count, dt);
      uint8_t *swap = cur;
      cur = other;
      other = swap;
    }
    if (e != MPI_SUCCESS)
      rv = e;
  }
  if (vr < 0) {
    if ((e = fmpi_recv_internal(cur, count, dt, me + 1, TAG_ALLREDUCE, c)) != MPI_SUCCESS)
      rv = e;
  } else {
    if (me < 2 * extra)
      fmpi_send_internal(cur, count, dt, me - 1, TAG_ALLREDUCE, c);
    if (cur != (uint8_t *)rbuf)
      local_copy(cur, count, t, rbuf, count, t);
  }
  fmpi_scratch_put(tmp.raw);
  return rv;
}

int PMPI_Allreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op, MPI_Comm comm)
{
  INTER("MPI_Allreduce", fmpi_inter_allreduce(sendbuf, recvbuf, count, datatype, op, ic_));
  GET_COMM(comm, "MPI_Allreduce");
  int rv;
  if ((rv = check_reduce(c, count, datatype, op)) != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Allreduce");
  /* a predefined op on a type it does not apply to fails on every rank alike, before any message (a user
   * op is not called with nothing to combine) */
  if (op <= MPI_NO_OP && (rv = fmpi_op_apply(op, recvbuf, recvbuf, 0, datatype)) != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Allreduce");
  const void *mine = sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf;
  rv = allreduce(mine, recvbuf, count, datatype, op, c);
  return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Allreduce");
}

static int gatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, const int *recvcounts,
                   const int *displs, int fixed_count, MPI_Datatype recvtype, int root, fmpi_comm *c)
{
  if (c->rank != root) {
    fmpi_send_internal(sendbuf, sendcount, sendtype, root, TAG_GATHER, c);
    return MPI_SUCCESS;
  }
  fmpi_type *rt = fmpi_type_get(recvtype);
  reqset s;
  rs_init(&s, c->size);
  for (int i = 0; i < c->size; i++) {
    int cnt = recvcounts ? recvcounts[i] : fixed_count;
    void *dst = at(recvbuf, displs ? displs[i] : (MPI_Aint)i * fixed_count, rt);
    if (i == root) {
      if (sendbuf != MPI_IN_PLACE)
        local_copy(sendbuf, sendcount, fmpi_type_get(sendtype), dst, cnt, rt);
    } else {
      rs_recv(&s, dst, cnt, recvtype, i, TAG_GATHER, c);
    }
  }
  return rs_wait(&s);
}

int PMPI_Gather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                MPI_Datatype recvtype, int root, MPI_Comm comm)
{
  INTER("MPI_Gather", fmpi_inter_gather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, root, ic_));
  GET_COMM(comm, "MPI_Gather");
  if (root < 0 || root >= c->size)
    return fmpi_error(c, MPI_ERR_ROOT, "MPI_Gather");
  int rv = gatherv(sendbuf, sendcount, sendtype, recvbuf, NULL, NULL, recvcount, recvtype, root, c);
  return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Gather");
}

int PMPI_Gatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, const int recvcounts[],
                 const int displs[], MPI_Datatype recvtype, int root, MPI_Comm comm)
{
  INTER("MPI_Gatherv",
        fmpi_inter_gatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, root, ic_));
  GET_COMM(comm, "MPI_Gatherv");
  if (root < 0 || root >= c->size)
    return fmpi_error(c, MPI_ERR_ROOT, "MPI_Gatherv");
  int rv = gatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, 0, recvtype, root, c);
  return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Gatherv");
}

static int scatterv(const void *sendbuf, const int *sendcounts, const int *displs, int fixed_count,
                    MPI_Datatype sendtype, void *recvbuf, int recvcount, MPI_Datatype recvtype, int root, fmpi_comm *c)
{
  if (c->rank != root)
    return fmpi_recv_internal(recvbuf, recvcount, recvtype, root, TAG_SCATTER, c);
  fmpi_type *st = fmpi_type_get(sendtype);
  reqset s;
  rs_init(&s, c->size);
  for (int i = 0; i < c->size; i++) {
    int cnt = sendcounts ? sendcounts[i] : fixed_count;
    const void *src = at(sendbuf, displs ? displs[i] : (MPI_Aint)i * fixed_count, st);
    if (i == root) {
      if (recvbuf != MPI_IN_PLACE)
        local_copy(src, cnt, st, recvbuf, recvcount, fmpi_type_get(recvtype));
    } else {
      rs_send(&s, src, cnt, sendtype, i, TAG_SCATTER, c);
    }
  }
  return rs_wait(&s);
}

int PMPI_Scatter(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                 MPI_Datatype recvtype, int root, MPI_Comm comm)
{
  INTER("MPI_Scatter", fmpi_inter_scatter(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, root, ic_));
  GET_COMM(comm, "MPI_Scatter");
  if (root < 0 || root >= c->size)
    return fmpi_error(c, MPI_ERR_ROOT, "MPI_Scatter");
  int rv = scatterv(sendbuf, NULL, NULL, sendcount, sendtype, recvbuf, recvcount, recvtype, root, c);
  return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Scatter");
}

int PMPI_Scatterv(const void *sendbuf, const int sendcounts[], const int displs[], MPI_Datatype sendtype,
                  void *recvbuf, int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm)
{
  INTER("MPI_Scatterv",
        fmpi_inter_scatterv(sendbuf, sendcounts, displs, sendtype, recvbuf, recvcount, recvtype, root, ic_));
  GET_COMM(comm, "MPI_Scatterv");
  if (root < 0 || root >= c->size)
    return fmpi_error(c, MPI_ERR_ROOT, "MPI_Scatterv");
  int rv = scatterv(sendbuf, sendcounts, displs, 0, sendtype, recvbuf, recvcount, recvtype, root, c);
  return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Scatterv");
}

/* Every rank sends block i of its send data to rank i and receives block j from rank j.
 * Blocks are given by counts/displs (NULL: fixed count, displacement i * count). */
static int exchange(const void *sendbuf, const int *scounts, const int *sdispls, int scount, MPI_Datatype sendtype,
                    bool same_send_block, void *recvbuf, const int *rcounts, const int *rdispls, int rcount,
                    MPI_Datatype recvtype, fmpi_comm *c)
{
  fmpi_type *st = fmpi_type_get(sendtype), *rt = fmpi_type_get(recvtype);
  reqset s;
  rs_init(&s, 2 * c->size);
  for (int k = 1; k < c->size; k++) {
    int i = (c->rank + k) % c->size;          /* to */
    int j = (c->rank - k + c->size) % c->size; /* from */
    rs_recv(&s, at(recvbuf, rdispls ? rdispls[j] : (MPI_Aint)j * rcount, rt), rcounts ? rcounts[j] : rcount, recvtype,
            j, TAG_EXCHANGE, c);
    const void *src = same_send_block ? sendbuf : at(sendbuf, sdispls ? sdispls[i] : (MPI_Aint)i * scount, st);
    rs_send(&s, src, scounts ? scounts[i] : scount, sendtype, i, TAG_EXCHANGE, c);
  }
  int me = c->rank;
  const void *src = same_send_block ? sendbuf : at(sendbuf, sdispls ? sdispls[me] : (MPI_Aint)me * scount, st);
  local_copy(src, scounts ? scounts[me] : scount, st, at(recvbuf, rdispls ? rdispls[me] : (MPI_Aint)me * rcount, rt),
             rcounts ? rcounts[me] : rcount, rt);
  return rs_wait(&s);
}

int PMPI_Allgather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                   MPI_Datatype recvtype, MPI_Comm comm)
{
  INTER("MPI_Allgather", fmpi_inter_allgather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, ic_));
  GET_COMM(comm, "MPI_Allgather");
  if (sendbuf == MPI_IN_PLACE) {
    sendbuf = at(recvbuf, (MPI_Aint)c->rank * recvcount, fmpi_type_get(recvtype));
    sendcount = recvcount;
    sendtype = recvtype;
  }
  int rv = exchange(sendbuf, NULL, NULL, sendcount, sendtype, true, recvbuf, NULL, NULL, recvcount, recvtype, c);
  return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Allgather");
}

int PMPI_Allgatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, const int recvcounts[],
                    const int displs[], MPI_Datatype recvtype, MPI_Comm comm)
{
  INTER("MPI_Allgatherv",
        fmpi_inter_allgatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, ic_));
  GET_COMM(comm, "MPI_Allgatherv");
  if (sendbuf == MPI_IN_PLACE) {
    sendbuf = at(recvbuf, displs[c->rank], fmpi_type_get(recvtype));
    sendcount = recvcounts[c->rank];
    sendtype = recvtype;
  }
  int rv = exchange(sendbuf, NULL, NULL, sendcount, sendtype, true, recvbuf, recvcounts, displs, 0, recvtype, c);
  return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Allgatherv");
}

/* MPI_IN_PLACE for all-to-all: the send data is a copy of the receive buffer. */
static tmp_buf in_place_copy(const void *recvbuf, MPI_Aint elems, MPI_Datatype recvtype)
{
  fmpi_type *rt = fmpi_type_get(recvtype);
  tmp_buf b = tmp_alloc((int)elems, rt);
  local_copy(recvbuf, (int)elems, rt, b.buf, (int)elems, rt);
  return b;
}

int PMPI_Alltoall(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                  MPI_Datatype recvtype, MPI_Comm comm)
{
  INTER("MPI_Alltoall", fmpi_inter_alltoall(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, ic_));
  GET_COMM(comm, "MPI_Alltoall");
  tmp_buf copy = { NULL, NULL };
  if (sendbuf == MPI_IN_PLACE) {
    copy = in_place_copy(recvbuf, (MPI_Aint)c->size * recvcount, recvtype);
    sendbuf = copy.buf;
    sendcount = recvcount;
    sendtype = recvtype;
  }
  int rv = exchange(sendbuf, NULL, NULL, sendcount, sendtype, false, recvbuf, NULL, NULL, recvcount, recvtype, c);
  fmpi_scratch_put(copy.raw);
  return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Alltoall");
}

int PMPI_Alltoallv(const void *sendbuf, const int sendcounts[], const int sdispls[], MPI_Datatype sendtype,
                   void *recvbuf, const int recvcounts[], const int rdispls[], MPI_Datatype recvtype, MPI_Comm comm)
{
  INTER("MPI_Alltoallv", fmpi_inter_alltoallv(sendbuf, sendcounts, sdispls, sendtype, recvbuf, recvcounts, rdispls,
                                              recvtype, ic_));
  GET_COMM(comm, "MPI_Alltoallv");
  tmp_buf copy = { NULL, NULL };
  if (sendbuf == MPI_IN_PLACE) {
    MPI_Aint span = 0;
    for (int i = 0; i < c->size; i++)
      if (rdispls[i] + recvcounts[i] > span)
        span = rdispls[i] + recvcounts[i];
    copy = in_place_copy(recvbuf, span, recvtype);
    sendbuf = copy.buf;
    sendcounts = recvcounts;
    sdispls = rdispls;
    sendtype = recvtype;
  }
  int rv = exchange(sendbuf, sendcounts, sdispls, 0, sendtype, false, recvbuf, recvcounts, rdispls, 0, recvtype, c);
  fmpi_scratch_put(copy.raw);
  return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Alltoallv");
}

static void *byte_at(const void *buf, int displ)
{
  return (uint8_t *)buf + displ;
}

/* Counts and types of an all-to-all with a type per peer (Alltoallw). */
static int check_w(fmpi_comm *c, const int counts[], const MPI_Datatype types[])
{
  int rv = MPI_SUCCESS;
  for (int i = 0; rv == MPI_SUCCESS && i < c->size; i++)
    rv = check_buf(counts[i], types[i]);
  return rv;
}

/* Like Alltoallv with a datatype per peer and displacements in bytes. With
 * MPI_IN_PLACE each block of the receive buffer is packed first, and sent
 * as bytes (the receiver unpacks by its own type). */
int PMPI_Alltoallw(const void *sendbuf, const int sendcounts[], const int sdispls[], const MPI_Datatype sendtypes[],
                   void *recvbuf, const int recvcounts[], const int rdispls[], const MPI_Datatype recvtypes[],
                   MPI_Comm comm)
{
  GET_COMM(comm, "MPI_Alltoallw");
  bool in_place = sendbuf == MPI_IN_PLACE;
  int rv = check_w(c, recvcounts, recvtypes);
  if (rv == MPI_SUCCESS && !in_place)
    rv = check_w(c, sendcounts, sendtypes);
  if (rv != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Alltoallw");
  uint8_t **packed = NULL;
  if (in_place) {
    packed = calloc((size_t)c->size, sizeof *packed);
    if (packed == NULL)
      fmpi_fatal("out of memory");
    for (int i = 0; i < c->size; i++) {
      fmpi_type *t = fmpi_type_get(recvtypes[i]);
      if ((packed[i] = malloc(t->size * (size_t)recvcounts[i] + 1)) == NULL)
        fmpi_fatal("out of memory");
      fmpi_pack(t, byte_at(recvbuf, rdispls[i]), recvcounts[i], packed[i]);
    }
  }
  reqset s;
  rs_init(&s, 2 * c->size);
  for (int k = 1; k < c->size; k++) {
    int i = (c->rank + k) % c->size;          /* to */
    int j = (c->rank - k + c->size) % c->size; /* from */
    rs_recv(&s, byte_at(recvbuf, rdispls[j]), recvcounts[j], recvtypes[j], j, TAG_EXCHANGE, c);
    if (in_place)
      rs_send(&s, packed[i], (int)(fmpi_type_get(recvtypes[i])->size * (size_t)recvcounts[i]), MPI_BYTE, i,
              TAG_EXCHANGE, c);
    else
      rs_send(&s, byte_at(sendbuf, sdispls[i]), sendcounts[i], sendtypes[i], i, TAG_EXCHANGE, c);
  }
  int me = c->rank;
  if (!in_place)
    local_copy(byte_at(sendbuf, sdispls[me]), sendcounts[me], fmpi_type_get(sendtypes[me]),
               byte_at(recvbuf, rdispls[me]), recvcounts[me], fmpi_type_get(recvtypes[me]));
  rv = rs_wait(&s);
  if (packed)
    for (int i = 0; i < c->size; i++)
      free(packed[i]);
  free(packed);
  return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Alltoallw");
}

int PMPI_Reduce_scatter(const void *sendbuf, void *recvbuf, const int recvcounts[], MPI_Datatype datatype, MPI_Op op,
                        MPI_Comm comm)
{
  INTER("MPI_Reduce_scatter", fmpi_inter_reduce_scatter(sendbuf, recvbuf, recvcounts, datatype, op, ic_));
  GET_COMM(comm, "MPI_Reduce_scatter");
  int rv, total = 0;
  int *displs = malloc(sizeof(int) * (size_t)c->size);
  if (displs == NULL)
    fmpi_fatal("out of memory");
  for (int i = 0; i < c->size; i++) {
    if (recvcounts[i] < 0) {
      free(displs);
      return fmpi_error(c, MPI_ERR_COUNT, "MPI_Reduce_scatter");
    }
    displs[i] = total;
    total += recvcounts[i];
  }
  if ((rv = check_reduce(c, total, datatype, op)) != MPI_SUCCESS) {
    free(displs);
    return fmpi_error(c, rv, "MPI_Reduce_scatter");
  }
  fmpi_type *t = fmpi_type_get(datatype);
  tmp_buf all = tmp_alloc(total, t);
  const void *mine = sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf;
  rv = reduce(mine, all.buf, total, datatype, op, 0, c);
  int e = scatterv(all.buf, recvcounts, displs, 0, datatype, recvbuf, recvcounts[c->rank], datatype, 0, c);
  fmpi_scratch_put(all.raw);
  free(displs);
  if (rv == MPI_SUCCESS)
    rv = e;
  return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Reduce_scatter");
}

int PMPI_Reduce_scatter_block(const void *sendbuf, void *recvbuf, int recvcount, MPI_Datatype datatype, MPI_Op op,
                              MPI_Comm comm)
{
  INTER("MPI_Reduce_scatter_block",
        fmpi_inter_reduce_scatter_block(sendbuf, recvbuf, recvcount, datatype, op, ic_));
  GET_COMM(comm, "MPI_Reduce_scatter_block");
  int rv, total = recvcount * c->size;
  if ((rv = check_reduce(c, recvcount, datatype, op)) != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Reduce_scatter_block");
  fmpi_type *t = fmpi_type_get(datatype);
  tmp_buf all = tmp_alloc(total, t);
  const void *mine = sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf;
  rv = reduce(mine, all.buf, total, datatype, op, 0, c);
  int e = scatterv(all.buf, NULL, NULL, recvcount, datatype, recvbuf, recvcount, datatype, 0, c);
  fmpi_scratch_put(all.raw);
  if (rv == MPI_SUCCESS)
    rv = e;
  return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Reduce_scatter_block");
}

/* Inclusive (exclusive = false) or exclusive prefix reduction along the ranks. */
static int scan(const void *sendbuf, void *recvbuf, int count, MPI_Datatype dt, MPI_Op op, fmpi_comm *c,
                bool exclusive)
{
  fmpi_type *t = fmpi_type_get(dt);
  tmp_buf mine = tmp_alloc(count, t), prefix = tmp_alloc(count, t);
  int rv = MPI_SUCCESS;
  local_copy(sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf, count, t, mine.buf, count, t);
  if (c->rank > 0) {
    rv = fmpi_recv_internal(prefix.buf, count, dt, c->rank - 1, TAG_SCAN, c);
    if (exclusive)
      local_copy(prefix.buf, count, t, recvbuf, count, t);
    int e = fmpi_op_apply(op, prefix.buf, mine.buf, count, dt); /* mine = prefix op mine */
    if (rv == MPI_SUCCESS)
      rv = e;
  }
  if (!exclusive)
    local_copy(mine.buf, count, t, recvbuf, count, t);
  if (c->rank + 1 < c->size)
    fmpi_send_internal(mine.buf, count, dt, c->rank + 1, TAG_SCAN, c);
  fmpi_scratch_put(mine.raw);
  fmpi_scratch_put(prefix.raw);
  return rv;
}

int PMPI_Scan(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op, MPI_Comm comm)
{
  GET_COMM(comm, "MPI_Scan");
  int rv;
  if ((rv = check_reduce(c, count, datatype, op)) != MPI_SUCCESS ||
      (rv = scan(sendbuf, recvbuf, count, datatype, op, c, false)) != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Scan");
  return MPI_SUCCESS;
}

int PMPI_Exscan(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op, MPI_Comm comm)
{
  GET_COMM(comm, "MPI_Exscan");
  int rv;
  if ((rv = check_reduce(c, count, datatype, op)) != MPI_SUCCESS ||
      (rv = scan(sendbuf, recvbuf, count, datatype, op, c, true)) != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Exscan");
  return MPI_SUCCESS;
}

/* ---- nonblocking collectives: schedules for nbc.c ----
 * The same algorithms as the blocking ones above: a dissemination barrier,
 * binomial broadcast trees, reductions combined at the root in rank order
 * (so non-commutative ops see x0 op x1 op ... op x(n-1)), direct exchanges
 * for gather, scatter, allgather and alltoall. A rank's own block is copied
 * when the collective starts. */

/* A buffer for count elements of t that lives as long as the schedule. */
static void *nbc_buf(fmpi_nbc *s, int count, fmpi_type *t)
{
  MPI_Aint span = (count > 0 ? (MPI_Aint)(count - 1) * t->extent : 0) + (t->true_ub - t->true_lb);
  return (uint8_t *)fmpi_nbc_tmp(s, (size_t)(span > 0 ? span : 1)) - t->true_lb;
}

/* Binomial tree rooted at root: the parent (or -1) and the children of rank. */
static int tree(fmpi_comm *c, int root, int *children, int *nchildren)
{
  int n = c->size, vr = (c->rank - root + n) % n, mask = 1, parent = -1;
  while (mask < n) {
    if (vr & mask) {
      parent = (vr - mask + root) % n;
      break;
    }
    mask <<= 1;
  }
  *nchildren = 0;
  for (mask >>= 1; mask > 0; mask >>= 1)
    if (vr + mask < n)
      children[(*nchildren)++] = (vr + mask + root) % n;
  return parent;
}

/* The broadcast of s->rbuf from root in rounds first and first + 1. */
static void nbc_add_bcast(fmpi_nbc *s, int first, int root)
{
  fmpi_comm *c = s->comm;
  int *children = malloc(sizeof(int) * (size_t)(c->size + 1)), nchildren;
  if (children == NULL)
    fmpi_fatal("out of memory");
  int parent = tree(c, root, children, &nchildren);
  if (parent >= 0)
    fmpi_nbc_add(s, first, false, s->rbuf, s->count, s->type, parent);
  for (int i = 0; i < nchildren; i++)
    fmpi_nbc_add(s, first + 1, true, s->rbuf, s->count, s->type, children[i]);
  free(children);
}

static void nbc_rd_step(fmpi_nbc *s);

/* Rounds of a binomial tree over n ranks: ceil(log2 n). */
static int tree_rounds(int n)
{
  int k = 0;
  for (int mask = 1; mask < n; mask <<= 1)
    k++;
  return k;
}

/* Rounds 0 .. tree_rounds(n) - 1 of s (which has at least one more): the reduction of s->count elements of
 * mine along a binomial tree rooted at vroot, as the blocking reduce does it (in round r a rank whose
 * lowest set bit, counted from vroot, is r sends its partial result to its parent; the others receive one
 * from the child 2^r after them). A rank combines (its part) op (its child's, which covers the ranks after
 * its own) into the child's buffer, so with vroot 0 a non-commutative op sees x0 op x1 op ... op x(n-1);
 * each combination is the step before the next round (nbc_rd_step; s->parts laid out as there). Like the
 * blocking one it starts from mine itself (no working copy) and takes turns between two buffers: the root
 * of two ranks holds one temporary. With the working copy as well (two there), glibc gave the 16 MiB of an
 * 8 MiB reduction back to the system after every call, and every call took 4096 page faults again: 56-60
 * ms a call on 2 ranks, against about 2 ms once the one buffer stays. Returns the buffer that holds the
 * result at vroot once the step before round tree_rounds(n) ran (mine itself when n is 1); NULL at the
 * other ranks, done after their send. (It was n - 1 receives in a row at the root.) */
static const void *nbc_add_tree_reduce(fmpi_nbc *s, const void *mine, int vroot)
{
  fmpi_comm *c = s->comm;
  int n = c->size, vr = (c->rank - vroot + n) % n;
  fmpi_type *t = fmpi_type_get(s->type);
  s->parts = fmpi_nbc_tmp(s, sizeof(void *) * (size_t)(2 * s->nrounds + 2));
  memset(s->parts, 0, sizeof(void *) * (size_t)(2 * s->nrounds + 2));
  for (int r = 0; r < s->nrounds; r++)
    s->rounds[r].before = nbc_rd_step;
  const void *cur = mine;
  void *bufs[2] = { NULL, NULL };
  for (int mask = 1, r = 0, next = 0; mask < n; mask <<= 1, r++) {
    if (vr & mask) {
      fmpi_nbc_add(s, r, true, (void *)cur, s->count, s->type, (vr - mask + vroot) % n);
      return NULL;
    }
    if (vr + mask >= n)
      continue;
    if (bufs[next] == NULL)
      bufs[next] = nbc_buf(s, s->count, t);
    fmpi_nbc_add(s, r, false, bufs[next], s->count, s->type, (vr + mask + vroot) % n);
    s->parts[2 * (r + 1)] = (void *)cur; /* before round r + 1: in = ours op the subtree's */
    s->parts[2 * (r + 1) + 1] = bufs[next];
    cur = bufs[next];
    next ^= 1;
  }
  return cur;
}

int PMPI_Ibarrier(MPI_Comm comm, MPI_Request *request)
{
  INTER("MPI_Ibarrier", fmpi_inter_ibarrier(ic_, request));
  GET_COMM(comm, "MPI_Ibarrier");
  int rounds = 0;
  for (int k = 1; k < c->size; k <<= 1)
    rounds++;
  fmpi_nbc *s = fmpi_nbc_new(c, rounds);
  for (int k = 1, r = 0; k < c->size; k <<= 1, r++) {
    fmpi_nbc_add(s, r, true, NULL, 0, MPI_BYTE, (c->rank + k) % c->size);
    fmpi_nbc_add(s, r, false, NULL, 0, MPI_BYTE, (c->rank - k + c->size) % c->size);
  }
  return fmpi_nbc_start(s, request);
}

int PMPI_Ibcast(void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm, MPI_Request *request)
{
  INTER("MPI_Ibcast", fmpi_inter_ibcast(buffer, count, datatype, root, ic_, request));
  GET_COMM(comm, "MPI_Ibcast");
  int rv;
  if ((rv = check_buf(count, datatype)) != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Ibcast");
  if (root < 0 || root >= c->size)
    return fmpi_error(c, MPI_ERR_ROOT, "MPI_Ibcast");
  fmpi_nbc *s = fmpi_nbc_new(c, 2);
  s->rbuf = buffer;
  s->count = count;
  s->type = datatype;
  nbc_add_bcast(s, 0, root);
  return fmpi_nbc_start(s, request);
}

int PMPI_Ireduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op, int root,
                 MPI_Comm comm, MPI_Request *request)
{
  INTER("MPI_Ireduce", fmpi_inter_ireduce(sendbuf, recvbuf, count, datatype, op, root, ic_, request));
  GET_COMM(comm, "MPI_Ireduce");
  int rv;
  if ((rv = check_reduce(c, count, datatype, op)) != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Ireduce");
  if (root < 0 || root >= c->size)
    return fmpi_error(c, MPI_ERR_ROOT, "MPI_Ireduce");
  /* the blocking reduce's tree: rooted at root for a commutative op; else at 0, in rank order, and rank 0
   * hands the result to root in the last round */
  int k = tree_rounds(c->size), vroot = fmpi_op_commutative(op) ? root : 0;
  fmpi_nbc *s = fmpi_nbc_new(c, k + 1);
  s->rbuf = recvbuf;
  s->count = count;
  s->type = datatype;
  s->op = op;
  const void *result = nbc_add_tree_reduce(s, sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf, vroot);
  if (result != NULL && vroot == root)
    s->parts[2 * s->nrounds] = (void *)result; /* into recvbuf before round k */
  else if (result != NULL)
    fmpi_nbc_add(s, k, true, (void *)result, count, datatype, root);
  if (c->rank == root && vroot != root)
    fmpi_nbc_add(s, k, false, recvbuf, count, datatype, vroot);
  return fmpi_nbc_start(s, request);
}

int PMPI_Iallreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op, MPI_Comm comm,
                    MPI_Request *request)
{
  INTER("MPI_Iallreduce", fmpi_inter_iallreduce(sendbuf, recvbuf, count, datatype, op, ic_, request));
  GET_COMM(comm, "MPI_Iallreduce");
  int rv;
  if ((rv = check_reduce(c, count, datatype, op)) != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Iallreduce");
  return fmpi_nbc_start(fmpi_nbc_allreduce(c, sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf, recvbuf, count, datatype,
                                          op), request);
}

/* The local steps of Iallreduce's and Ireduce's rounds (fmpi_nbc_allreduce, nbc_add_tree_reduce):
 * s->parts holds, per round r, the (in, inout) pair to combine before posting it (parts[2r], parts[2r + 1];
 * in NULL: nothing), then the buffer the result ends in (parts[2 * nrounds], copied to s->rbuf before the
 * last round; NULL: none) and this rank's working copy (parts[2 * nrounds + 1]). */
static void nbc_rd_step(fmpi_nbc *s)
{
  int r = s->round - 1; /* the round about to be posted */
  fmpi_type *t = fmpi_type_get(s->type);
  void **p = s->parts, *acc = p[2 * s->nrounds + 1];
  if (r == 0 && acc != NULL) /* each pass again (Comm_idup's agreement reruns the rounds with new votes) */
    local_copy(s->sbuf, s->count, t, acc, s->count, t);
  if (p[2 * r] != NULL)
    fmpi_op_apply(s->op, p[2 * r], p[2 * r + 1], s->count, s->type);
  if (r == s->nrounds - 1 && p[2 * s->nrounds] != NULL)
    local_copy(p[2 * s->nrounds], s->count, t, s->rbuf, s->count, t);
}

/* An allreduce's schedule, not started: the blocking allreduce's recursive doubling as rounds (round 0,
 * the ranks beyond a power of two fold into their odd neighbours; rounds 1 .. log2(p2), the exchanges,
 * each combined before the next round; the last round, the folded ranks get the result), so no rank
 * receives more than log2(n) + 1 vectors (it was n - 1 at rank 0, then a broadcast). Each combination is
 * (lower ranks' part) op (higher ranks' part), and both partners compute the same bits.
 * (Comm_idup's context agreement runs one several times, ctx.c: its steps read mine again each pass.) */
fmpi_nbc *fmpi_nbc_allreduce(fmpi_comm *c, const void *mine, void *recvbuf, int count, MPI_Datatype datatype,
                             MPI_Op op)
{
  int n = c->size, me = c->rank, p2 = 1, k = 0;
  while (p2 * 2 <= n)
    p2 *= 2, k++;
  int extra = n - p2, vr = me < 2 * extra ? (me % 2 ? me / 2 : -1) : me - extra, last = k + 1;
  fmpi_nbc *s = fmpi_nbc_new(c, k + 2);
  fmpi_type *t = fmpi_type_get(datatype);
  s->sbuf = mine;
  s->rbuf = recvbuf;
  s->count = count;
  s->type = datatype;
  s->op = op;
  s->parts = fmpi_nbc_tmp(s, sizeof(void *) * (size_t)(2 * s->nrounds + 2));
  memset(s->parts, 0, sizeof(void *) * (size_t)(2 * s->nrounds + 2));
  for (int r = 0; r < s->nrounds; r++)
    s->rounds[r].before = nbc_rd_step;
  if (vr < 0) { /* folded into the odd rank above: hands over its part, gets the result */
    fmpi_nbc_add(s, 0, true, (void *)mine, count, datatype, me + 1);
    fmpi_nbc_add(s, last, false, recvbuf, count, datatype, me + 1);
    return s;
  }
  uint8_t *cur = nbc_buf(s, count, t), *other = nbc_buf(s, count, t);
  s->parts[2 * s->nrounds + 1] = cur;
  if (me < 2 * extra) { /* cur = (me - 1)'s part op ours, before round 1 */
    fmpi_nbc_add(s, 0, false, other, count, datatype, me - 1);
    s->parts[2] = other;
    s->parts[3] = cur;
  }
  for (int mask = 1, r = 1; mask < p2; mask <<= 1, r++) {
    int pv = vr ^ mask, partner = pv < extra ? pv * 2 + 1 : pv + extra;
    fmpi_nbc_add(s, r, true, cur, count, datatype, partner);
    fmpi_nbc_add(s, r, false, other, count, datatype, partner);
    if (pv < vr) { /* cur = the partner's op ours */
      s->parts[2 * (r + 1)] = other;
      s->parts[2 * (r + 1) + 1] = cur;
    } else { /* ours op the partner's, computed where the partner's is */
      s->parts[2 * (r + 1)] = cur;
      s->parts[2 * (r + 1) + 1] = other;
      uint8_t *swap = cur;
      cur = other;
      other = swap;
    }
  }
  s->parts[2 * s->nrounds] = cur; /* copied to recvbuf before the last round */
  if (me < 2 * extra)
    fmpi_nbc_add(s, last, true, recvbuf, count, datatype, me - 1);
  return s;
}


/* The v-variants' counts and displacements, or (arrays NULL) fixed counts
 * one block after the other: the plain variants. */
#define COUNT(counts, fixed, i) ((counts) ? (counts)[i] : (fixed))
#define DISPL(displs, fixed, i) ((displs) ? (MPI_Aint)(displs)[i] : (MPI_Aint)(i) * (fixed))

static int igatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, const int recvcounts[],
                    const int displs[], int fixed, MPI_Datatype recvtype, int root, MPI_Comm comm, MPI_Request *request,
                    const char *name)
{
  INTER(name, fmpi_inter_igatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, fixed, recvtype, root,
                                  ic_, request));
  GET_COMM(comm, name);
  if (root < 0 || root >= c->size)
    return fmpi_error(c, MPI_ERR_ROOT, name);
  int rv = sendbuf == MPI_IN_PLACE ? MPI_SUCCESS : check_buf(sendcount, sendtype);
  for (int i = 0; rv == MPI_SUCCESS && c->rank == root && i < c->size; i++)
    rv = check_buf(COUNT(recvcounts, fixed, i), recvtype);
  if (rv != MPI_SUCCESS)
    return fmpi_error(c, rv, name);
  fmpi_nbc *s = fmpi_nbc_new(c, 1);
  if (c->rank != root) {
    fmpi_nbc_add(s, 0, true, (void *)sendbuf, sendcount, sendtype, root);
  } else {
    fmpi_type *rt = fmpi_type_get(recvtype);
    for (int i = 0; i < c->size; i++) {
      void *dst = at(recvbuf, DISPL(displs, fixed, i), rt);
      if (i != root)
        fmpi_nbc_add(s, 0, false, dst, COUNT(recvcounts, fixed, i), recvtype, i);
      else if (sendbuf != MPI_IN_PLACE)
        local_copy(sendbuf, sendcount, fmpi_type_get(sendtype), dst, COUNT(recvcounts, fixed, i), rt);
    }
  }
  return fmpi_nbc_start(s, request);
}

int PMPI_Igatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, const int recvcounts[],
                  const int displs[], MPI_Datatype recvtype, int root, MPI_Comm comm, MPI_Request *request)
{
  return igatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, 0, recvtype, root, comm, request, "MPI_Igatherv");
}

int PMPI_Igather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                 MPI_Datatype recvtype, int root, MPI_Comm comm, MPI_Request *request)
{
  return igatherv(sendbuf, sendcount, sendtype, recvbuf, NULL, NULL, recvcount, recvtype, root, comm, request, "MPI_Igather");
}

static int iscatterv(const void *sendbuf, const int sendcounts[], const int displs[], int fixed, MPI_Datatype sendtype,
                     void *recvbuf, int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm, MPI_Request *request,
                     const char *name)
{
  INTER(name, fmpi_inter_iscatterv(sendbuf, sendcounts, displs, fixed, sendtype, recvbuf, recvcount, recvtype, root,
                                   ic_, request));
  GET_COMM(comm, name);
  if (root < 0 || root >= c->size)
    return fmpi_error(c, MPI_ERR_ROOT, name);
  int rv = recvbuf == MPI_IN_PLACE ? MPI_SUCCESS : check_buf(recvcount, recvtype);
  for (int i = 0; rv == MPI_SUCCESS && c->rank == root && i < c->size; i++)
    rv = check_buf(COUNT(sendcounts, fixed, i), sendtype);
  if (rv != MPI_SUCCESS)
    return fmpi_error(c, rv, name);
  fmpi_nbc *s = fmpi_nbc_new(c, 1);
  if (c->rank != root) {
    fmpi_nbc_add(s, 0, false, recvbuf, recvcount, recvtype, root);
  } else {
    fmpi_type *st = fmpi_type_get(sendtype);
    for (int i = 0; i < c->size; i++) {
      const void *src = at(sendbuf, DISPL(displs, fixed, i), st);
      if (i != root)
        fmpi_nbc_add(s, 0, true, (void *)src, COUNT(sendcounts, fixed, i), sendtype, i);
      else if (recvbuf != MPI_IN_PLACE)
        local_copy(src, COUNT(sendcounts, fixed, i), st, recvbuf, recvcount, fmpi_type_get(recvtype));
    }
  }
  return fmpi_nbc_start(s, request);
}

int PMPI_Iscatterv(const void *sendbuf, const int sendcounts[], const int displs[], MPI_Datatype sendtype, void *recvbuf,
                   int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm, MPI_Request *request)
{
  return iscatterv(sendbuf, sendcounts, displs, 0, sendtype, recvbuf, recvcount, recvtype, root, comm, request, "MPI_Iscatterv");
}

int PMPI_Iscatter(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                  MPI_Datatype recvtype, int root, MPI_Comm comm, MPI_Request *request)
{
  return iscatterv(sendbuf, NULL, NULL, sendcount, sendtype, recvbuf, recvcount, recvtype, root, comm, request, "MPI_Iscatter");
}

static int iallgatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, const int recvcounts[],
                       const int displs[], int fixed, MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *request,
                       const char *name)
{
  INTER(name, fmpi_inter_iallgatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, fixed, recvtype, ic_,
                                     request));
  GET_COMM(comm, name);
  int rv = sendbuf == MPI_IN_PLACE ? MPI_SUCCESS : check_buf(sendcount, sendtype);
  for (int i = 0; rv == MPI_SUCCESS && i < c->size; i++)
    rv = check_buf(COUNT(recvcounts, fixed, i), recvtype);
  if (rv != MPI_SUCCESS)
    return fmpi_error(c, rv, name);
  fmpi_type *rt = fmpi_type_get(recvtype);
  int my_count = COUNT(recvcounts, fixed, c->rank);
  void *mine = at(recvbuf, DISPL(displs, fixed, c->rank), rt);
  if (sendbuf != MPI_IN_PLACE)
    local_copy(sendbuf, sendcount, fmpi_type_get(sendtype), mine, my_count, rt);
  fmpi_nbc *s = fmpi_nbc_new(c, 1);
  for (int i = 0; i < c->size; i++) {
    if (i == c->rank)
      continue;
    fmpi_nbc_add(s, 0, true, mine, my_count, recvtype, i);
    fmpi_nbc_add(s, 0, false, at(recvbuf, DISPL(displs, fixed, i), rt), COUNT(recvcounts, fixed, i), recvtype, i);
  }
  return fmpi_nbc_start(s, request);
}

int PMPI_Iallgatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, const int recvcounts[],
                     const int displs[], MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *request)
{
  return iallgatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, 0, recvtype, comm, request, "MPI_Iallgatherv");
}

int PMPI_Iallgather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                    MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *request)
{
  return iallgatherv(sendbuf, sendcount, sendtype, recvbuf, NULL, NULL, recvcount, recvtype, comm, request, "MPI_Iallgather");
}

/* MPI_IN_PLACE in the nonblocking all-to-alls: the blocks a rank sends are
 * in its receive buffer, which the receives overwrite in any order, so they
 * go from a copy of the bytes that blocks[0..n) span (block i: counts[i]
 * elements of types[i] from ptrs[i]), taken when the collective starts. The
 * copy's address of p is p + *shift. */
static void inplace_copy(fmpi_nbc *s, int n, void *const ptrs[], const int counts[], const MPI_Datatype types[],
                         MPI_Aint *shift)
{
  const uint8_t *lo = NULL, *hi = NULL;
  for (int i = 0; i < n; i++) {
    fmpi_type *t = fmpi_type_get(types[i]);
    if (counts[i] == 0 || t->size == 0)
      continue;
    const uint8_t *from = (const uint8_t *)ptrs[i] + t->true_lb;
    const uint8_t *to = from + (MPI_Aint)(counts[i] - 1) * t->extent + (t->true_ub - t->true_lb);
    if (lo == NULL || from < lo)
      lo = from;
    if (hi == NULL || to > hi)
      hi = to;
  }
  if (lo == NULL) {
    *shift = 0;
    return;
  }
  uint8_t *copy = fmpi_nbc_tmp(s, (size_t)(hi - lo));
  memcpy(copy, lo, (size_t)(hi - lo));
  *shift = copy - lo;
}

/* The in-place form of ialltoallv and ialltoallw: block i of recvbuf goes to
 * rank i and is replaced by what rank i sends (types and counts the same both
 * ways: the receive's). */
static int ialltoall_inplace(fmpi_comm *c, void *const ptrs[], const int counts[], const MPI_Datatype types[],
                             MPI_Request *request)
{
  fmpi_nbc *s = fmpi_nbc_new(c, 1);
  MPI_Aint shift;
  inplace_copy(s, c->size, ptrs, counts, types, &shift);
  for (int i = 0; i < c->size; i++) {
    if (i == c->rank)
      continue; /* its own block stays */
    fmpi_nbc_add(s, 0, true, (uint8_t *)ptrs[i] + shift, counts[i], types[i], i);
    fmpi_nbc_add(s, 0, false, ptrs[i], counts[i], types[i], i);
  }
  return fmpi_nbc_start(s, request);
}

static int ialltoallv(const void *sendbuf, const int sendcounts[], const int sdispls[], int sfixed, MPI_Datatype sendtype,
                      void *recvbuf, const int recvcounts[], const int rdispls[], int rfixed, MPI_Datatype recvtype,
                      MPI_Comm comm, MPI_Request *request, const char *name)
{
  INTER(name, fmpi_inter_ialltoallw(sendbuf, sendcounts, sdispls, sfixed, sendtype, NULL, recvbuf, recvcounts, rdispls,
                                    rfixed, recvtype, NULL, false, ic_, request));
  GET_COMM(comm, name);
  if (sendbuf == MPI_IN_PLACE) {
    int rv = MPI_SUCCESS;
    for (int i = 0; rv == MPI_SUCCESS && i < c->size; i++)
      rv = check_buf(COUNT(recvcounts, rfixed, i), recvtype);
    if (rv != MPI_SUCCESS)
      return fmpi_error(c, rv, name);
    void **ptrs = malloc(sizeof(void *) * (size_t)c->size);
    int *counts = malloc(sizeof(int) * (size_t)c->size);
    MPI_Datatype *types = malloc(sizeof(MPI_Datatype) * (size_t)c->size);
    if (ptrs == NULL || counts == NULL || types == NULL)
      fmpi_fatal("out of memory");
    for (int i = 0; i < c->size; i++) {
      ptrs[i] = at(recvbuf, DISPL(rdispls, rfixed, i), fmpi_type_get(recvtype));
      counts[i] = COUNT(recvcounts, rfixed, i);
      types[i] = recvtype;
    }
    rv = ialltoall_inplace(c, ptrs, counts, types, request);
    free(ptrs);
    free(counts);
    free(types);
    return rv;
  }
  int rv = MPI_SUCCESS;
  for (int i = 0; rv == MPI_SUCCESS && i < c->size; i++)
    if ((rv = check_buf(COUNT(sendcounts, sfixed, i), sendtype)) == MPI_SUCCESS)
      rv = check_buf(COUNT(recvcounts, rfixed, i), recvtype);
  if (rv != MPI_SUCCESS)
    return fmpi_error(c, rv, name);
  fmpi_type *st = fmpi_type_get(sendtype), *rt = fmpi_type_get(recvtype);
  fmpi_nbc *s = fmpi_nbc_new(c, 1);
  for (int i = 0; i < c->size; i++) {
    const void *src = at(sendbuf, DISPL(sdispls, sfixed, i), st);
    void *dst = at(recvbuf, DISPL(rdispls, rfixed, i), rt);
    int sn = COUNT(sendcounts, sfixed, i), rn = COUNT(recvcounts, rfixed, i);
    if (i == c->rank) {
      local_copy(src, sn, st, dst, rn, rt);
      continue;
    }
    fmpi_nbc_add(s, 0, true, (void *)src, sn, sendtype, i);
    fmpi_nbc_add(s, 0, false, dst, rn, recvtype, i);
  }
  return fmpi_nbc_start(s, request);
}

int PMPI_Ialltoallv(const void *sendbuf, const int sendcounts[], const int sdispls[], MPI_Datatype sendtype,
                    void *recvbuf, const int recvcounts[], const int rdispls[], MPI_Datatype recvtype, MPI_Comm comm,
                    MPI_Request *request)
{
  return ialltoallv(sendbuf, sendcounts, sdispls, 0, sendtype, recvbuf, recvcounts, rdispls, 0, recvtype, comm, request,
                    "MPI_Ialltoallv");
}

int PMPI_Ialltoall(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                   MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *request)
{
  return ialltoallv(sendbuf, NULL, NULL, sendcount, sendtype, recvbuf, NULL, NULL, recvcount, recvtype, comm, request,
                    "MPI_Ialltoall");
}

/* Rank 0 of a reduce_scatter(_block), before the scatter: the tree's last combination, then its own block
 * (the first) of the result. */
static void nbc_combine_own_block(fmpi_nbc *s)
{
  nbc_rd_step(s);
  local_copy(s->rbuf, s->out_count, fmpi_type_get(s->type), s->out, s->out_count, fmpi_type_get(s->type));
}

/* Ialltoallv with a datatype per peer and byte displacements. */
int PMPI_Ialltoallw(const void *sendbuf, const int sendcounts[], const int sdispls[], const MPI_Datatype sendtypes[],
                    void *recvbuf, const int recvcounts[], const int rdispls[], const MPI_Datatype recvtypes[],
                    MPI_Comm comm, MPI_Request *request)
{
  INTER("MPI_Ialltoallw", fmpi_inter_ialltoallw(sendbuf, sendcounts, sdispls, 0, MPI_BYTE, sendtypes, recvbuf, recvcounts,
                                                rdispls, 0, MPI_BYTE, recvtypes, true, ic_, request));
  GET_COMM(comm, "MPI_Ialltoallw");
  int rv = check_w(c, recvcounts, recvtypes);
  if (rv == MPI_SUCCESS && sendbuf == MPI_IN_PLACE) {
    void **ptrs = malloc(sizeof(void *) * (size_t)c->size);
    if (ptrs == NULL)
      fmpi_fatal("out of memory");
    for (int i = 0; i < c->size; i++)
      ptrs[i] = byte_at(recvbuf, rdispls[i]);
    rv = ialltoall_inplace(c, ptrs, recvcounts, recvtypes, request);
    free(ptrs);
    return rv;
  }
  if (rv == MPI_SUCCESS)
    rv = check_w(c, sendcounts, sendtypes);
  if (rv != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Ialltoallw");
  fmpi_nbc *s = fmpi_nbc_new(c, 1);
  for (int i = 0; i < c->size; i++) {
    void *src = byte_at(sendbuf, sdispls[i]), *dst = byte_at(recvbuf, rdispls[i]);
    if (i == c->rank) {
      local_copy(src, sendcounts[i], fmpi_type_get(sendtypes[i]), dst, recvcounts[i], fmpi_type_get(recvtypes[i]));
      continue;
    }
    fmpi_nbc_add(s, 0, true, src, sendcounts[i], sendtypes[i], i);
    fmpi_nbc_add(s, 0, false, dst, recvcounts[i], recvtypes[i], i);
  }
  return fmpi_nbc_start(s, request);
}

/* The reduction of every rank's whole vector to rank 0 along the tree (rounds 0 .. k - 1), then each
 * rank's block from there (round k): recvcounts[i] elements to rank i. */
static int ireduce_scatter(const void *sendbuf, void *recvbuf, const int recvcounts[], int fixed, MPI_Datatype datatype,
                           MPI_Op op, fmpi_comm *c, MPI_Request *request, const char *name)
{
  int rv, total = 0;
  for (int i = 0; i < c->size; i++) {
    if (COUNT(recvcounts, fixed, i) < 0)
      return fmpi_error(c, MPI_ERR_COUNT, name);
    total += COUNT(recvcounts, fixed, i);
  }
  if ((rv = check_reduce(c, total, datatype, op)) != MPI_SUCCESS)
    return fmpi_error(c, rv, name);
  fmpi_type *t = fmpi_type_get(datatype);
  int k = tree_rounds(c->size);
  fmpi_nbc *s = fmpi_nbc_new(c, k + 1);
  s->count = total;
  s->type = datatype;
  s->op = op;
  s->out = recvbuf;
  s->out_count = COUNT(recvcounts, fixed, 0);
  s->rbuf = (void *)nbc_add_tree_reduce(s, sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf, 0); /* the result, at rank 0 */
  if (c->rank == 0) {
    s->rounds[k].before = nbc_combine_own_block;
    MPI_Aint displ = COUNT(recvcounts, fixed, 0);
    for (int i = 1; i < c->size; i++) {
      fmpi_nbc_add(s, k, true, at(s->rbuf, displ, t), COUNT(recvcounts, fixed, i), datatype, i);
      displ += COUNT(recvcounts, fixed, i);
    }
  } else {
    fmpi_nbc_add(s, k, false, recvbuf, COUNT(recvcounts, fixed, c->rank), datatype, 0);
  }
  return fmpi_nbc_start(s, request);
}

int PMPI_Ireduce_scatter(const void *sendbuf, void *recvbuf, const int recvcounts[], MPI_Datatype datatype, MPI_Op op,
                         MPI_Comm comm, MPI_Request *request)
{
  INTER("MPI_Ireduce_scatter", fmpi_inter_ireduce_scatter(sendbuf, recvbuf, recvcounts, datatype, op, ic_, request));
  GET_COMM(comm, "MPI_Ireduce_scatter");
  return ireduce_scatter(sendbuf, recvbuf, recvcounts, 0, datatype, op, c, request, "MPI_Ireduce_scatter");
}

int PMPI_Ireduce_scatter_block(const void *sendbuf, void *recvbuf, int recvcount, MPI_Datatype datatype, MPI_Op op,
                               MPI_Comm comm, MPI_Request *request)
{
  INTER("MPI_Ireduce_scatter_block",
        fmpi_inter_ireduce_scatter_block(sendbuf, recvbuf, recvcount, datatype, op, ic_, request));
  GET_COMM(comm, "MPI_Ireduce_scatter_block");
  return ireduce_scatter(sendbuf, recvbuf, NULL, recvcount, datatype, op, c, request, "MPI_Ireduce_scatter_block");
}

/* Scans: parts[0] is this rank's contribution, parts[1] the prefix from the rank before. */
static void nbc_scan_step(fmpi_nbc *s, bool exclusive)
{
  fmpi_type *t = fmpi_type_get(s->type);
  if (s->comm->rank > 0) {
    if (exclusive)
      local_copy(s->parts[1], s->count, t, s->rbuf, s->count, t);
    fmpi_op_apply(s->op, s->parts[1], s->parts[0], s->count, s->type); /* mine = prefix op mine */
  }
  if (!exclusive)
    local_copy(s->parts[0], s->count, t, s->rbuf, s->count, t);
}
static void nbc_scan(fmpi_nbc *s) { nbc_scan_step(s, false); }
static void nbc_exscan(fmpi_nbc *s) { nbc_scan_step(s, true); }

static int iscan(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op, fmpi_comm *c,
                 bool exclusive, MPI_Request *request)
{
  fmpi_type *t = fmpi_type_get(datatype);
  /* round 0: the prefix from the rank before; before round 1: the combination; round 1: on to the next */
  fmpi_nbc *s = fmpi_nbc_new(c, 2);
  s->rbuf = recvbuf;
  s->count = count;
  s->type = datatype;
  s->op = op;
  s->parts = fmpi_nbc_tmp(s, 2 * sizeof(void *));
  s->parts[0] = nbc_buf(s, count, t);
  s->parts[1] = nbc_buf(s, count, t);
  local_copy(sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf, count, t, s->parts[0], count, t);
  if (c->rank > 0)
    fmpi_nbc_add(s, 0, false, s->parts[1], count, datatype, c->rank - 1);
  s->rounds[1].before = exclusive ? nbc_exscan : nbc_scan;
  if (c->rank + 1 < c->size)
    fmpi_nbc_add(s, 1, true, s->parts[0], count, datatype, c->rank + 1);
  return fmpi_nbc_start(s, request);
}

int PMPI_Iscan(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op, MPI_Comm comm,
               MPI_Request *request)
{
  GET_COMM(comm, "MPI_Iscan");
  int rv = check_reduce(c, count, datatype, op);
  return rv == MPI_SUCCESS ? iscan(sendbuf, recvbuf, count, datatype, op, c, false, request) : fmpi_error(c, rv, "MPI_Iscan");
}

int PMPI_Iexscan(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op, MPI_Comm comm,
                 MPI_Request *request)
{
  GET_COMM(comm, "MPI_Iexscan");
  int rv = check_reduce(c, count, datatype, op);
  return rv == MPI_SUCCESS ? iscan(sendbuf, recvbuf, count, datatype, op, c, true, request) : fmpi_error(c, rv, "MPI_Iexscan");
}
