/* Nonblocking collectives' engine: a schedule of rounds of point-to-point
 * operations, each round posted once the one before has completed, with a
 * local step (a copy, a reduction) before a round and at the end. Progress
 * is made where the operations complete (a progress pass of the app thread
 * or of the progress thread), so a schedule moves while the app computes.
 *
 * Messages of nonblocking collectives travel in a context of their own
 * (the communicator's with FMPI_NBC_CTX_BIT) and carry the collective's
 * sequence number on that communicator as their tag: collectives are
 * started in the same order on every member, so concurrent ones never
 * match each other's messages, nor those of blocking collectives.
 * Everything lives in the process's memory, so a schedule survives a flush,
 * a dump and a restore like any pending request. The algorithms are in
 * coll.c (fmpi_nbc_* builders). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "fmpi.h"

fmpi_nbc *fmpi_nbc_new(fmpi_comm *c, int nrounds)
{
  fmpi_nbc *s = calloc(1, sizeof *s);
  if (s == NULL || (s->rounds = calloc((size_t)(nrounds ? nrounds : 1), sizeof *s->rounds)) == NULL)
    fmpi_fatal("out of memory");
  s->comm = c;
  s->ctx = c->ctx | FMPI_NBC_CTX_BIT;
  s->tag = (int)(c->nbc_seq++ & 0x3fffffff);
  s->nrounds = nrounds;
  return s;
}

void fmpi_nbc_add(fmpi_nbc *s, int round, bool send, void *buf, int count, MPI_Datatype type, int peer)
{
  fmpi_nbc_round *rd = &s->rounds[round];
  if (rd->nops == rd->cap) {
    rd->cap = rd->cap ? rd->cap * 2 : 4;
    rd->ops = realloc(rd->ops, (size_t)rd->cap * sizeof *rd->ops);
    if (rd->ops == NULL)
      fmpi_fatal("out of memory");
  }
  rd->ops[rd->nops++] = (fmpi_nbc_op){ send, buf, count, type, peer };
}

static void nbc_free(fmpi_nbc *s)
{
  for (int i = 0; i < s->nrounds; i++)
    free(s->rounds[i].ops);
  free(s->rounds);
  for (int i = 0; i < s->ntmp; i++)
    fmpi_scratch_put(s->tmp[i]);
  free(s->tmp);
  free(s);
}

/* Posts one operation of the current round (lock held). */
static void post(fmpi_nbc *s, const fmpi_nbc_op *op)
{
  fmpi_request *r;
  if (op->send)
    fmpi_isend(op->buf, op->count, op->type, op->peer, s->tag, s->comm, s->ctx, false, &r);
  else
    fmpi_irecv(op->buf, op->count, op->type, op->peer, s->tag, s->comm, s->ctx, &r);
  if (r->complete) { /* done at once (a message to this rank, or already there) */
    fmpi_req_release(r);
    return;
  }
  r->nbc_owner = s;
  r->user_freed = true; /* released when it completes (fmpi_req_complete) */
  s->pending++;
}

/* Posts rounds while the previous one has completed; completes the
 * collective's request after the last. */
static void advance(fmpi_nbc *s)
{
  s->advancing = true;
  while (s->pending == 0) {
    if (s->round == s->nrounds) {
      if (s->finish)
        s->finish(s);
      if (s->round < s->nrounds)
        continue; /* finish started the rounds over (Comm_idup's agreement, ctx.c) */
      fmpi_request *r = s->req;
      s->advancing = false;
      nbc_free(s);
      fmpi_req_complete(r);
      return;
    }
    fmpi_nbc_round *rd = &s->rounds[s->round++];
    if (rd->before)
      rd->before(s);
    for (int i = 0; i < rd->nops; i++)
      post(s, &rd->ops[i]);
  }
  s->advancing = false;
}

void fmpi_nbc_op_done(fmpi_nbc *s)
{
  s->pending--;
  if (!s->advancing)
    advance(s);
}

void *fmpi_nbc_tmp(fmpi_nbc *s, size_t bytes)
{
  void **t = realloc(s->tmp, (size_t)(s->ntmp + 1) * sizeof *t);
  if (t == NULL)
    fmpi_fatal("out of memory");
  s->tmp = t;
  s->tmp[s->ntmp] = fmpi_scratch_get(bytes);
  return s->tmp[s->ntmp++];
}

int fmpi_nbc_start(fmpi_nbc *s, MPI_Request *request)
{
  fmpi_lock();
  s->req = fmpi_req_new(false, s->comm, s->ctx, MPI_PROC_NULL, 0, NULL, 0, MPI_BYTE);
  fmpi_req_handle(s->req, request);
  advance(s); /* the first round; with no rounds, complete at once */
  fmpi_unlock();
  return MPI_SUCCESS;
}
