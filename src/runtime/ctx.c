/* Context ids. Every communicator has a pair (ctx for point to point, ctx + 1
 * for collectives) that all its members agree on and that no two
 * communicators sharing a member share.
 *
 * Blocking agreements (Comm_dup, Comm_split, Comm_create, Comm_create_group,
 * Intercomm_create, the library's own duplicates) take the largest of the
 * members' counters (fmpi_st.next_ctx, multiples of FMPI_CTX_STEP), and every
 * member moves its counter past it: a context a member uses is always below
 * its counter, so the largest counter is free everywhere, in one allreduce.
 *
 * Comm_idup cannot take a counter's value when it starts: it completes later,
 * and a blocking agreement may take that value meanwhile, on this member or
 * another. So its contexts come from a space of their own
 * (FMPI_CTX_STEP * k + 2, never a blocking agreement's), where a freed
 * communicator's context is used again, and its agreement is a vote,
 * repeated until it passes. Each pass is one nonblocking allreduce (max) on
 * the parent communicator's schedule (nbc.c) of [no, proposal]:
 * - in the first pass each member proposes the smallest context of the space
 *   it does not use (from a floor); the largest proposal is the candidate;
 * - each later pass votes on the candidate the pass before named: a member
 *   whose communicators and other Comm_idups' reservations do not use it
 *   reserves it and votes yes. All yes: every member takes it. Else each
 *   frees its reservation, and the next candidate is the largest proposal
 *   sent with the votes: each member's smallest unused context from the
 *   failed candidate plus a step on.
 * The floors move by a step that depends on the parent's context and the
 * pass, so two Comm_idups on different parents that keep taking each
 * other's candidates (started in different orders on two members) soon name
 * different ones, and a candidate some member uses is soon left behind.
 * A member decides its vote in a progress pass, at once, never waiting for
 * anything: a Comm_idup completes while its members are inside other calls,
 * blocking ones included.
 *
 * An intercommunicator's Comm_idup makes two communicators, the
 * intercommunicator and its local group's, so its candidates are pairs (c for
 * the intercommunicator, c + FMPI_CTX_STEP for each group's local one: the
 * two groups share no member, so their local ones may share a context), and
 * its votes go over both groups (intercomm.c's allmax). */
#define _GNU_SOURCE
#include <stdlib.h>

#include "fmpi.h"

/* One Comm_idup whose context is not agreed yet (a list: their reservations). */
typedef struct idup {
  struct idup *next;
  fmpi_comm *comm;           /* the new communicator, FMPI_CTX_PENDING until the end */
  fmpi_comm *local;          /* an intercommunicator's: its local group's communicator, else NULL */
  uint32_t parent_ctx;
  unsigned vote[2];          /* sent: [0 yes / 1 no, my proposal for the next pass] */
  unsigned result[2];        /* received: [any no, the largest proposal] */
  uint32_t candidate;        /* what this pass votes on; 0 in the first */
  bool reserved;             /* this member reserved candidate */
  unsigned pass;
} idup;

static idup *pending;

uint32_t fmpi_agree_ctx(fmpi_comm *c)
{
  fmpi_lock();
  unsigned mine = fmpi_st.next_ctx, agreed = 0;
  fmpi_unlock();
  PMPI_Allreduce(&mine, &agreed, 1, MPI_UNSIGNED, MPI_MAX, c->handle);
  fmpi_ctx_taken(agreed);
  return agreed;
}

/* ctx (from a blocking agreement made elsewhere) is in use: the counter moves past it. */
void fmpi_ctx_taken(uint32_t ctx)
{
  fmpi_lock();
  if (fmpi_st.next_ctx < ctx + FMPI_CTX_STEP)
    fmpi_st.next_ctx = ctx + FMPI_CTX_STEP;
  fmpi_unlock();
}

/* Whether no communicator of this rank and no other Comm_idup's reservation uses ctx (lock held). */
static bool ctx_free(uint32_t ctx)
{
  for (int h = 1; h <= fmpi_comms.n; h++) {
    fmpi_comm *c = fmpi_table_get(&fmpi_comms, h);
    if (c && c->ctx == ctx)
      return false;
  }
  for (idup *d = pending; d; d = d->next)
    if (d->reserved && (d->candidate == ctx || (d->local && d->candidate + FMPI_CTX_STEP == ctx)))
      return false;
  return true;
}

/* Whether d may take ctx: ctx free, and for an intercommunicator the next one too (lock held). */
static bool free_for(const idup *d, uint32_t ctx)
{
  return ctx_free(ctx) && (!d->local || ctx_free(ctx + FMPI_CTX_STEP));
}

static int by_value(const void *a, const void *b)
{
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* The smallest context of Comm_idup's space from floor on that ctx_free would allow (lock held). */
static uint32_t smallest_free(uint32_t floor)
{
  size_t n = 0, cap = 16;
  uint32_t *used = malloc(cap * sizeof *used);
  if (used == NULL)
    fmpi_fatal("out of memory");
  for (int h = 1; h <= fmpi_comms.n; h++) {
    fmpi_comm *c = fmpi_table_get(&fmpi_comms, h);
    if (c && c->ctx % FMPI_CTX_STEP == 2 && c->ctx > FMPI_FIRST_USER_CTX) {
      if (n == cap && (used = realloc(used, (cap *= 2) * sizeof *used)) == NULL)
        fmpi_fatal("out of memory");
      used[n++] = c->ctx;
    }
  }
  for (idup *d = pending; d; d = d->next)
    for (int k = 0; d->reserved && k < (d->local ? 2 : 1); k++) {
      if (n == cap && (used = realloc(used, (cap *= 2) * sizeof *used)) == NULL)
        fmpi_fatal("out of memory");
      used[n++] = d->candidate + (uint32_t)k * FMPI_CTX_STEP;
    }
  qsort(used, n, sizeof *used, by_value);
  uint32_t ctx = floor;
  for (size_t i = 0; i < n && used[i] <= ctx; i++)
    if (used[i] == ctx)
      ctx += FMPI_CTX_STEP;
  free(used);
  return ctx;
}

/* The smallest context from floor on that d may take (for an intercommunicator, with the next one). */
static uint32_t smallest_free_for(const idup *d, uint32_t floor)
{
  for (;;) {
    uint32_t ctx = smallest_free(floor);
    if (!d->local || smallest_free(ctx + FMPI_CTX_STEP) == ctx + FMPI_CTX_STEP)
      return ctx;
    floor = ctx + FMPI_CTX_STEP;
  }
}

/* How far above the last candidate (the space's first context, in the first
 * pass) the proposals of the pass after d's current one start: the same on
 * every member, and different for two Comm_idups on different parents
 * (usually), so that they do not keep naming the same candidate. */
static uint32_t step(const idup *d)
{
  uint32_t h = (d->parent_ctx + 1) * 2654435761u ^ d->pass * 40503u;
  return FMPI_CTX_STEP * ((h >> 16) % 64);
}

/* The end of a pass (lock held, in a progress pass): take the agreed
 * context, or vote on the next candidate in another pass. */
static void pass_done(fmpi_nbc *s)
{
  idup *d = s->arg;
  bool all_yes = d->result[0] == 0;
  if (d->candidate != 0 && all_yes) {
    d->comm->ctx = d->candidate;
    if (d->local)
      d->local->ctx = d->candidate + FMPI_CTX_STEP;
    idup **p = &pending;
    while (*p != d)
      p = &(*p)->next;
    *p = d->next;
    free(d);
    return; /* the schedule completes the request */
  }
  d->reserved = false; /* a vote that failed frees what it reserved */
  d->pass++;
  d->candidate = d->result[1];
  d->reserved = free_for(d, d->candidate);
  d->vote[0] = d->reserved ? 0 : 1;
  d->vote[1] = smallest_free_for(d, d->candidate + step(d)); /* for the pass after, if this vote fails */
  s->round = 0; /* another pass */
}

void fmpi_ctx_agree_start(fmpi_comm *parent, fmpi_comm *newcomm, MPI_Request *request)
{
  idup *d = calloc(1, sizeof *d);
  if (d == NULL)
    fmpi_fatal("out of memory");
  d->parent_ctx = parent->ctx;
  d->comm = newcomm;
  d->local = newcomm->inter ? fmpi_table_get(&fmpi_comms, newcomm->local_comm) : NULL;
  fmpi_lock();
  d->vote[0] = 1;
  d->vote[1] = smallest_free_for(d, FMPI_FIRST_USER_CTX + 2 + step(d));
  d->next = pending;
  pending = d;
  fmpi_unlock();
  fmpi_nbc *s = parent->inter ? fmpi_inter_nbc_allmax(parent, d->vote, d->result, 2)
                              : fmpi_nbc_allreduce(parent, d->vote, d->result, 2, MPI_UNSIGNED, MPI_MAX);
  s->finish = pass_done;
  s->arg = d;
  fmpi_nbc_start(s, request);
}
