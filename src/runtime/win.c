/*
 * One-sided communication (MPI 3.1 chapter 11) over the point-to-point engine.
 *
 * A window duplicates its communicator; the duplicate's point-to-point context
 * carries all of the window's traffic, so it never meets the application's
 * messages. Each rank keeps one receive posted for op messages (TAG_OP) from
 * any origin. The engine completes it on arrival, in whichever thread reads
 * the channel (the app thread in any MPI call, or the progress thread while
 * the app computes), and on_op applies the op to the window memory there:
 * passive-target operations progress without the target calling MPI.
 *
 * Order: messages between two ranks on one context do not overtake each
 * other, and the target applies one origin's ops in arrival order. An op too
 * big to travel inline (INLINE_BYTES) sends its body in a second message;
 * until that body has arrived and been applied, later messages from the same
 * origin wait in a queue (held), so the default accumulate ordering holds and
 * an UNLOCK or FLUSH is answered only after every earlier op is applied.
 *
 * Synchronization:
 * - fence: each rank counts the ops it issued to each target in the epoch;
 *   a Reduce_scatter_block tells each target how many to expect, it waits
 *   until it applied that many, and a barrier keeps the next epoch's ops back
 *   until every target is done;
 * - post/start/complete/wait: POST messages open the exposure; MPI_Win_complete
 *   sends a COMPLETE op message behind the origin's ops, which the target counts;
 * - lock/unlock: the target keeps the lock (one exclusive holder or any number
 *   of shared ones, and a FIFO of waiters) and acknowledges LOCK, UNLOCK and
 *   FLUSH messages (TAG_ACK).
 * Gets and the fetching ops are answered with TAG_REPLY messages, which the
 * origin receives straight into its result buffer.
 *
 * Everything (windows, the lock, queued messages, pending requests) is in the
 * process's memory and travels as ordinary messages, so a checkpoint flushes,
 * dumps and restores it like any other point-to-point traffic. Ranks share no
 * memory (each can move to another host on its own): MPI_Win_allocate_shared
 * works only on a communicator of one rank. The memory model is
 * MPI_WIN_UNIFIED: ops are applied to the window's memory itself.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmpi.h"

#pragma weak MPI_Win_create = PMPI_Win_create
#pragma weak MPI_Win_allocate = PMPI_Win_allocate
#pragma weak MPI_Win_allocate_shared = PMPI_Win_allocate_shared
#pragma weak MPI_Win_shared_query = PMPI_Win_shared_query
#pragma weak MPI_Win_create_dynamic = PMPI_Win_create_dynamic
#pragma weak MPI_Win_attach = PMPI_Win_attach
#pragma weak MPI_Win_detach = PMPI_Win_detach
#pragma weak MPI_Win_free = PMPI_Win_free
#pragma weak MPI_Win_get_attr = PMPI_Win_get_attr
#pragma weak MPI_Win_create_keyval = PMPI_Win_create_keyval
#pragma weak MPI_Win_free_keyval = PMPI_Win_free_keyval
#pragma weak MPI_Win_set_attr = PMPI_Win_set_attr
#pragma weak MPI_Win_delete_attr = PMPI_Win_delete_attr
#pragma weak MPI_Win_get_group = PMPI_Win_get_group
#pragma weak MPI_Win_set_name = PMPI_Win_set_name
#pragma weak MPI_Win_get_name = PMPI_Win_get_name
#pragma weak MPI_Win_set_info = PMPI_Win_set_info
#pragma weak MPI_Win_get_info = PMPI_Win_get_info
#pragma weak MPI_Win_create_errhandler = PMPI_Win_create_errhandler
#pragma weak MPI_Win_set_errhandler = PMPI_Win_set_errhandler
#pragma weak MPI_Win_get_errhandler = PMPI_Win_get_errhandler
#pragma weak MPI_Win_call_errhandler = PMPI_Win_call_errhandler
#pragma weak MPI_Win_fence = PMPI_Win_fence
#pragma weak MPI_Win_post = PMPI_Win_post
#pragma weak MPI_Win_start = PMPI_Win_start
#pragma weak MPI_Win_complete = PMPI_Win_complete
#pragma weak MPI_Win_wait = PMPI_Win_wait
#pragma weak MPI_Win_test = PMPI_Win_test
#pragma weak MPI_Win_lock = PMPI_Win_lock
#pragma weak MPI_Win_unlock = PMPI_Win_unlock
#pragma weak MPI_Win_lock_all = PMPI_Win_lock_all
#pragma weak MPI_Win_unlock_all = PMPI_Win_unlock_all
#pragma weak MPI_Win_flush = PMPI_Win_flush
#pragma weak MPI_Win_flush_all = PMPI_Win_flush_all
#pragma weak MPI_Win_flush_local = PMPI_Win_flush_local
#pragma weak MPI_Win_flush_local_all = PMPI_Win_flush_local_all
#pragma weak MPI_Win_sync = PMPI_Win_sync
#pragma weak MPI_Put = PMPI_Put
#pragma weak MPI_Get = PMPI_Get
#pragma weak MPI_Accumulate = PMPI_Accumulate
#pragma weak MPI_Get_accumulate = PMPI_Get_accumulate
#pragma weak MPI_Fetch_and_op = PMPI_Fetch_and_op
#pragma weak MPI_Compare_and_swap = PMPI_Compare_and_swap
#pragma weak MPI_Rput = PMPI_Rput
#pragma weak MPI_Rget = PMPI_Rget
#pragma weak MPI_Raccumulate = PMPI_Raccumulate
#pragma weak MPI_Rget_accumulate = PMPI_Rget_accumulate

fmpi_table fmpi_wins;

enum { TAG_OP = 1, TAG_BODY, TAG_REPLY, TAG_ACK, TAG_POST };
enum { K_PUT = 1, K_GET, K_ACC, K_GACC, K_CAS, K_LOCK, K_UNLOCK, K_FLUSH, K_COMPLETE };
static const char *const kind_names[] = { "?", "put", "get", "accumulate", "get_accumulate", "compare_and_swap" };
#define INLINE_BYTES (16 * 1024) /* an op whose body is larger sends it in a TAG_BODY message */

/* An op message: this header, then its body (inline, or in a TAG_BODY message
 * when `split`): the target type's runs of bytes when there is more than one,
 * then the origin's data. */
typedef struct rma_msg {
  int32_t kind;
  int32_t op;              /* K_ACC, K_GACC: an MPI_Op */
  int32_t basic;           /* K_ACC, K_GACC, K_CAS: the predefined type of the target's elements */
  int32_t lock_type;       /* K_LOCK */
  int32_t counted;         /* issued in a fence epoch: the next fence counts it */
  int32_t split;
  int64_t disp;            /* bytes from the window's base (a dynamic window's: an address) */
  int64_t count;           /* elements of the target layout */
  int64_t extent;          /* ... one after the other this far apart */
  int64_t nblocks;         /* runs of bytes in one element: one is `block`, more come first in the body */
  struct fmpi_block block;
  uint64_t payload;        /* bytes of origin data in the body */
  uint64_t reply;          /* bytes the target sends back (TAG_REPLY) */
} rma_msg;

/* A message from an origin that waits behind that origin's op whose body is still arriving. */
typedef struct held_msg {
  struct held_msg *next;
  size_t len;
  uint8_t data[];
} held_msg;

typedef struct win_peer {
  /* this rank as an origin, toward the peer's window */
  MPI_Aint size;           /* its window (from the creation's Allgather) */
  int disp_unit;
  uint64_t issued;         /* counted ops sent to it since the last fence */
  int pending;             /* sends and reply receives toward it not complete */
  bool dirty;              /* puts or accumulates since the last flush or unlock */
  int lock;                /* the lock held on it: 0 or MPI_LOCK_* */
  bool nocheck;            /* ... taken with MPI_MODE_NOCHECK: no LOCK was sent */
  bool access;             /* in the group of the current MPI_Win_start */
  /* this rank as the target of the peer's ops */
  int inflight;            /* its ops whose body is still arriving */
  held_msg *held_head, *held_tail;
} win_peer;

typedef struct win_region {
  uintptr_t base;
  MPI_Aint size;
} win_region;

typedef struct fmpi_win {
  int handle;
  MPI_Comm comm;           /* the window's duplicate of the creator's communicator */
  fmpi_comm *c;
  uint8_t *base;
  MPI_Aint size;
  int disp_unit, flavor, model;
  bool owns_base;          /* MPI_Win_allocate's memory: freed with the window */
  MPI_Errhandler errh;
  char name[MPI_MAX_OBJECT_NAME];
  struct fmpi_attr *attrs; /* the user's attributes (attr.c) */
  win_peer *peers;         /* by rank in comm */
  fmpi_request *op_req;    /* the receive posted for op messages */
  uint8_t *op_buf;
  uint64_t applied;        /* counted ops applied here since the last fence */
  int sends;               /* the target side's replies and acks not yet written */
  bool fence_open;         /* the last fence had no MPI_MODE_NOSUCCEED */
  bool lock_all;
  bool started;            /* an MPI_Win_start's access epoch is open */
  bool posted;             /* an MPI_Win_post's exposure epoch is open */
  int exposure;            /* ... to this many origins */
  int completes;           /* COMPLETE messages received for it */
  int excl;                /* the exclusive lock's holder, or -1 */
  int shared;              /* holders of the shared lock */
  struct lock_wait { int origin, type; } *waiting;
  int nwaiting, capwaiting;
  win_region *regions;     /* a dynamic window's attached memory */
  int nregions;
} fmpi_win;

static fmpi_win *win_get(MPI_Win h)
{
  return fmpi_table_get(&fmpi_wins, h);
}

/* Reports error code of call fname through the window's error handler (w NULL: MPI_ERRORS_ARE_FATAL). */
static int win_error(fmpi_win *w, int code, const char *fname)
{
  if (code == MPI_SUCCESS)
    return code;
  return fmpi_errh_call(w ? w->handle : MPI_WIN_NULL, w ? w->errh : MPI_ERRORS_ARE_FATAL, code, fname);
}

#define GET_WIN(h, fname)                      \
  FMPI_CHECK_INIT(fname);                      \
  fmpi_win *w = win_get(h);                    \
  if (w == NULL)                               \
  return win_error(NULL, MPI_ERR_WIN, fname)

/* ---- requests the window watches ---- */

/* Runs fn when r completes (now, if it already has); keep: the caller (the
 * user, through a handle) releases r, else it goes when complete. */
static void watch(fmpi_request *r, void (*fn)(fmpi_request *), void *arg, bool keep)
{
  r->on_done_arg = arg;
  if (r->complete) {
    fn(r);
    if (!keep)
      fmpi_req_release(r);
    return;
  }
  r->on_done = fn;
  r->user_freed = !keep;
}

/* Sends len bytes of buf (malloc'd, or NULL) to comm rank `to`; the request
 * owns buf from now on (freed with it, as a pack buffer). */
static fmpi_request *send_owned(fmpi_win *w, int to, int tag, void *buf, size_t len)
{
  fmpi_request *r;
  fmpi_isend(buf, (int)len, MPI_BYTE, to, tag, w->c, w->c->ctx, false, &r);
  r->packbuf = buf;
  return r;
}

static void origin_done(fmpi_request *r)
{
  ((win_peer *)r->on_done_arg)->pending--;
}

static void target_send_done(fmpi_request *r)
{
  ((fmpi_win *)r->on_done_arg)->sends--;
}

/* A reply or an acknowledgement from the target side. */
static void target_send(fmpi_win *w, int to, int tag, void *buf, size_t len)
{
  w->sends++;
  watch(send_owned(w, to, tag, buf, len), target_send_done, w, false);
}

/* ---- the target side: applying ops ---- */

enum { COPY_IN, COPY_OUT, ACCUMULATE };

/* Walks the target layout at `at`: copies data into it, out of it into data,
 * or accumulates data into it with m's op. */
static void transfer(const rma_msg *m, const struct fmpi_block *b, uint8_t *at, uint8_t *data, int how)
{
  size_t elem = how == ACCUMULATE ? fmpi_type_get(m->basic)->size : 1;
  for (int64_t i = 0; i < m->count; i++)
    for (int64_t k = 0; k < m->nblocks; k++) {
      uint8_t *p = at + i * m->extent + b[k].off;
      if (how == COPY_IN)
        memcpy(p, data, b[k].len);
      else if (how == COPY_OUT)
        memcpy(data, p, b[k].len);
      else
        fmpi_op_apply(m->op, data, p, (int)(b[k].len / elem), m->basic);
      data += b[k].len;
    }
}

/* Bytes [*lo, *hi) of the layout relative to its displacement (lo == hi: none). */
static void layout_span(const rma_msg *m, const struct fmpi_block *b, int64_t *lo, int64_t *hi)
{
  *lo = *hi = 0;
  if (m->count == 0)
    return;
  bool any = false;
  for (int64_t k = 0; k < m->nblocks; k++) {
    if (b[k].len == 0)
      continue;
    int64_t s = b[k].off, e = b[k].off + (int64_t)b[k].len;
    *lo = any && *lo < s ? *lo : s;
    *hi = any && *hi > e ? *hi : e;
    any = true;
  }
  if (!any)
    return;
  if (m->extent >= 0)
    *hi += (m->count - 1) * m->extent;
  else
    *lo += (m->count - 1) * m->extent;
}

/* Where m's layout starts in this rank's memory; a layout outside the window
 * (only a dynamic window's can get here: the origin checks the others) ends
 * the job with a message naming both ranks. */
static uint8_t *target_at(fmpi_win *w, int origin, const rma_msg *m, const struct fmpi_block *b)
{
  int64_t lo, hi;
  layout_span(m, b, &lo, &hi);
  if (lo == hi)
    return w->base;
  if (w->flavor == MPI_WIN_FLAVOR_DYNAMIC) {
    uintptr_t s = (uintptr_t)(m->disp + lo), e = (uintptr_t)(m->disp + hi);
    for (int i = 0; i < w->nregions; i++)
      if (s >= w->regions[i].base && e <= w->regions[i].base + (uintptr_t)w->regions[i].size)
        return (uint8_t *)(uintptr_t)m->disp;
    fmpi_fatal("a one-sided %s from rank %d reaches addresses %#lx-%#lx of a dynamic window, which this rank "
               "(%d in the window) has not attached",
               kind_names[m->kind], origin, (unsigned long)s, (unsigned long)e, w->c->rank);
  }
  if (m->disp + lo < 0 || m->disp + hi > w->size)
    fmpi_fatal("a one-sided %s from rank %d reaches bytes %lld-%lld of a window of %lld bytes on rank %d",
               kind_names[m->kind], origin, (long long)(m->disp + lo), (long long)(m->disp + hi),
               (long long)w->size, w->c->rank);
  return w->base + m->disp;
}

static const struct fmpi_block *msg_blocks(const rma_msg *m, const uint8_t *body)
{
  return m->nblocks > 1 ? (const struct fmpi_block *)body : &m->block;
}

static size_t blocks_bytes(const rma_msg *m)
{
  return m->nblocks > 1 ? (size_t)m->nblocks * sizeof(struct fmpi_block) : 0;
}

/* Applies a data op from `origin` whose whole body is in memory. */
static void apply(fmpi_win *w, int origin, const rma_msg *m, uint8_t *body)
{
  const struct fmpi_block *b = msg_blocks(m, body);
  uint8_t *data = body + blocks_bytes(m);
  uint8_t *at = target_at(w, origin, m, b);
  uint8_t *reply = m->reply ? malloc(m->reply) : NULL;
  if (m->reply && reply == NULL)
    fmpi_fatal("out of memory");
  switch (m->kind) {
  case K_PUT:
    transfer(m, b, at, data, COPY_IN);
    break;
  case K_ACC:
    transfer(m, b, at, data, ACCUMULATE);
    break;
  case K_GET:
    transfer(m, b, at, reply, COPY_OUT);
    break;
  case K_GACC: /* the old contents go back; then the op (MPI_NO_OP: none) */
    transfer(m, b, at, reply, COPY_OUT);
    if (m->op != MPI_NO_OP)
      transfer(m, b, at, data, ACCUMULATE);
    break;
  case K_CAS: /* data: the new value, then the value to compare with */
    memcpy(reply, at, m->reply);
    if (memcmp(at, data + m->reply, m->reply) == 0)
      memcpy(at, data, m->reply);
    break;
  }
  if (m->reply)
    target_send(w, origin, TAG_REPLY, reply, m->reply);
  if (m->counted)
    w->applied++;
}

/* ---- the target side: the lock ---- */

static bool lock_free_for(const fmpi_win *w, int type)
{
  return w->excl < 0 && (type == MPI_LOCK_SHARED || w->shared == 0);
}

static void lock_grant(fmpi_win *w, int origin, int type)
{
  if (type == MPI_LOCK_EXCLUSIVE)
    w->excl = origin;
  else
    w->shared++;
  target_send(w, origin, TAG_ACK, NULL, 0);
}

static void lock_request(fmpi_win *w, int origin, int type)
{
  if (w->nwaiting == 0 && lock_free_for(w, type)) {
    lock_grant(w, origin, type);
    return;
  }
  if (w->nwaiting == w->capwaiting) {
    w->capwaiting = w->capwaiting ? 2 * w->capwaiting : 8;
    if ((w->waiting = realloc(w->waiting, (size_t)w->capwaiting * sizeof *w->waiting)) == NULL)
      fmpi_fatal("out of memory");
  }
  w->waiting[w->nwaiting++] = (struct lock_wait){ origin, type };
}

/* origin gives its lock back; the waiters at the head that can have it now get it. */
static void lock_release(fmpi_win *w, int origin)
{
  if (w->excl == origin)
    w->excl = -1;
  else if (w->shared > 0)
    w->shared--;
  while (w->nwaiting > 0 && lock_free_for(w, w->waiting[0].type)) {
    struct lock_wait first = w->waiting[0];
    memmove(w->waiting, w->waiting + 1, (size_t)--w->nwaiting * sizeof *w->waiting);
    lock_grant(w, first.origin, first.type);
  }
}

/* ---- the target side: op messages ---- */

/* A body that comes in its own message: received here (or, for a put to
 * contiguous memory, straight into the window), then applied. */
typedef struct pending_body {
  fmpi_win *w;
  int origin;
  bool direct;
  rma_msg m;
  uint8_t body[];
} pending_body;

static void body_applied(pending_body *pb)
{
  if (!pb->direct)
    apply(pb->w, pb->origin, &pb->m, pb->body);
  else if (pb->m.counted)
    pb->w->applied++;
  free(pb);
}

static void process(fmpi_win *w, int origin, uint8_t *data, size_t len);

/* Processes origin's held messages while none of its bodies is arriving. */
static void drain(fmpi_win *w, int origin)
{
  win_peer *p = &w->peers[origin];
  while (p->inflight == 0 && p->held_head) {
    held_msg *h = p->held_head;
    if ((p->held_head = h->next) == NULL)
      p->held_tail = NULL;
    process(w, origin, h->data, h->len);
    free(h);
  }
}

static void on_body(fmpi_request *r)
{
  pending_body *pb = r->on_done_arg;
  fmpi_win *w = pb->w;
  int origin = pb->origin;
  body_applied(pb);
  w->peers[origin].inflight--;
  drain(w, origin);
}

static void receive_body(fmpi_win *w, int origin, const rma_msg *m)
{
  size_t bytes = blocks_bytes(m) + m->payload;
  bool direct = m->kind == K_PUT && m->nblocks == 1 && (m->count <= 1 || m->extent == (int64_t)m->block.len);
  pending_body *pb = malloc(sizeof *pb + (direct ? 0 : bytes));
  if (pb == NULL)
    fmpi_fatal("out of memory");
  *pb = (pending_body){ .w = w, .origin = origin, .direct = direct, .m = *m };
  void *into = direct ? target_at(w, origin, m, &m->block) + m->block.off : pb->body;
  fmpi_request *r;
  fmpi_irecv(into, (int)bytes, MPI_BYTE, origin, TAG_BODY, w->c, w->c->ctx, &r);
  if (r->complete) { /* it was already here (the op waited in the held queue) */
    body_applied(pb);
    fmpi_req_release(r);
    return;
  }
  w->peers[origin].inflight++;
  r->on_done = on_body;
  r->on_done_arg = pb;
  r->user_freed = true;
}

/* One message from origin, in its turn. */
static void process(fmpi_win *w, int origin, uint8_t *data, size_t len)
{
  rma_msg m;
  if (len < sizeof m)
    fmpi_fatal("a one-sided message of %zu bytes from rank %d is too short", len, origin);
  memcpy(&m, data, sizeof m);
  switch (m.kind) {
  case K_LOCK:
    lock_request(w, origin, m.lock_type);
    return;
  case K_UNLOCK:
    lock_release(w, origin);
    target_send(w, origin, TAG_ACK, NULL, 0);
    return;
  case K_FLUSH:
    target_send(w, origin, TAG_ACK, NULL, 0);
    return;
  case K_COMPLETE:
    w->completes++;
    return;
  }
  if (m.split)
    receive_body(w, origin, &m);
  else
    apply(w, origin, &m, data + sizeof m);
}

/* An op message arrived (lock held): processed now, or held behind a body still arriving. */
static void handle_op(fmpi_win *w, int origin, uint8_t *data, size_t len)
{
  win_peer *p = &w->peers[origin];
  if (p->inflight == 0 && p->held_head == NULL) {
    process(w, origin, data, len);
    return;
  }
  held_msg *h = malloc(sizeof *h + len);
  if (h == NULL)
    fmpi_fatal("out of memory");
  h->next = NULL;
  h->len = len;
  memcpy(h->data, data, len);
  if (p->held_tail)
    p->held_tail->next = h;
  else
    p->held_head = h;
  p->held_tail = h;
}

static void on_op(fmpi_request *r);

/* Posts the receive for the next op message (those already here are handled now). */
static void post_op_recv(fmpi_win *w)
{
  for (;;) {
    fmpi_request *r;
    fmpi_irecv(w->op_buf, (int)(sizeof(rma_msg) + INLINE_BYTES), MPI_BYTE, MPI_ANY_SOURCE, TAG_OP, w->c, w->c->ctx,
               &r);
    if (!r->complete) {
      r->on_done = on_op;
      r->on_done_arg = w;
      r->user_freed = true;
      w->op_req = r;
      return;
    }
    handle_op(w, r->status.MPI_SOURCE, w->op_buf, (size_t)r->status.ferry_bytes);
    fmpi_req_release(r);
  }
}

static void on_op(fmpi_request *r)
{
  fmpi_win *w = r->on_done_arg;
  w->op_req = NULL;
  handle_op(w, r->status.MPI_SOURCE, w->op_buf, (size_t)r->status.ferry_bytes);
  post_op_recv(w);
}

/* ---- waiting ---- */

typedef struct wait_arg {
  fmpi_win *w;
  int target;              /* comm rank, or -1: every peer */
  uint64_t applied;
} wait_arg;

static bool local_done(void *arg)
{
  wait_arg *a = arg;
  if (a->target >= 0)
    return a->w->peers[a->target].pending == 0;
  for (int t = 0; t < a->w->c->size; t++)
    if (a->w->peers[t].pending)
      return false;
  return true;
}

/* Until this rank's ops toward target (-1: all) are complete here (lock held). */
static void wait_local(fmpi_win *w, int target)
{
  wait_arg a = { w, target, 0 };
  fmpi_wait_cond(local_done, &a);
}

static bool applied_done(void *arg)
{
  wait_arg *a = arg;
  return a->w->applied >= a->applied;
}

static bool exposure_done(void *arg)
{
  fmpi_win *w = arg;
  return w->completes >= w->exposure;
}

static bool target_idle(void *arg)
{
  fmpi_win *w = arg;
  if (w->sends)
    return false;
  for (int t = 0; t < w->c->size; t++)
    if (w->peers[t].inflight || w->peers[t].held_head)
      return false;
  return true;
}

/* Sends a control message to each of targets[0..n) and waits for their acks (lock held). */
static void control(fmpi_win *w, int kind, int lock_type, const int *targets, int n)
{
  fmpi_request **acks = malloc((size_t)(n ? n : 1) * sizeof *acks);
  if (acks == NULL)
    fmpi_fatal("out of memory");
  for (int i = 0; i < n; i++)
    fmpi_irecv(NULL, 0, MPI_BYTE, targets[i], TAG_ACK, w->c, w->c->ctx, &acks[i]);
  for (int i = 0; i < n; i++) {
    rma_msg *m = calloc(1, sizeof *m);
    if (m == NULL)
      fmpi_fatal("out of memory");
    m->kind = kind;
    m->lock_type = lock_type;
    win_peer *p = &w->peers[targets[i]];
    p->pending++;
    watch(send_owned(w, targets[i], TAG_OP, m, sizeof *m), origin_done, p, false);
  }
  fmpi_wait_reqs(acks, n);
  free(acks);
}

/* ---- creating and freeing ---- */

static int win_new(MPI_Comm comm, uint8_t *base, MPI_Aint size, int disp_unit, int flavor, MPI_Win *win,
                   const char *fname)
{
  fmpi_comm *uc = fmpi_comm_get_intra(comm);
  if (uc == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, fname);
  if (size < 0)
    return fmpi_error(uc, MPI_ERR_SIZE, fname);
  if (disp_unit <= 0)
    return fmpi_error(uc, MPI_ERR_DISP, fname);
  if (win == NULL)
    return fmpi_error(uc, MPI_ERR_ARG, fname);
  fmpi_win *w = calloc(1, sizeof *w);
  if (w == NULL || (w->peers = calloc((size_t)uc->size, sizeof *w->peers)) == NULL ||
      (w->op_buf = malloc(sizeof(rma_msg) + INLINE_BYTES)) == NULL)
    fmpi_fatal("out of memory");
  fmpi_comm_dup_internal(comm, &w->comm);
  w->c = fmpi_comm_get(w->comm);
  w->base = base;
  w->size = size;
  w->disp_unit = disp_unit;
  w->flavor = flavor;
  w->model = MPI_WIN_UNIFIED;
  w->errh = MPI_ERRORS_ARE_FATAL;
  w->excl = -1;
  fmpi_lock();
  post_op_recv(w); /* before the Allgather: no op can come before it */
  fmpi_unlock();
  int64_t mine[2] = { size, disp_unit }, *all = malloc((size_t)uc->size * sizeof mine);
  if (all == NULL)
    fmpi_fatal("out of memory");
  PMPI_Allgather(mine, 2, MPI_INT64_T, all, 2, MPI_INT64_T, w->comm);
  for (int t = 0; t < uc->size; t++) {
    w->peers[t].size = (MPI_Aint)all[2 * t];
    w->peers[t].disp_unit = (int)all[2 * t + 1];
  }
  free(all);
  w->handle = fmpi_table_add(&fmpi_wins, w);
  *win = w->handle;
  return MPI_SUCCESS;
}

int PMPI_Win_create(void *base, MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm, MPI_Win *win)
{
  (void)info;
  FMPI_CHECK_INIT("MPI_Win_create");
  return win_new(comm, base, size, disp_unit, MPI_WIN_FLAVOR_CREATE, win, "MPI_Win_create");
}

static int allocate(MPI_Aint size, int disp_unit, MPI_Comm comm, void *baseptr, MPI_Win *win, int flavor,
                    const char *fname)
{
  FMPI_CHECK_INIT(fname);
  if (size < 0)
    return fmpi_error(fmpi_comm_get(comm), MPI_ERR_SIZE, fname);
  void *base = NULL;
  if (posix_memalign(&base, 64, size > 0 ? (size_t)size : 1) != 0)
    return fmpi_error(fmpi_comm_get(comm), MPI_ERR_NO_MEM, fname);
  int rv = win_new(comm, base, size, disp_unit, flavor, win, fname);
  if (rv != MPI_SUCCESS) {
    free(base);
    return rv;
  }
  win_get(*win)->owns_base = true;
  *(void **)baseptr = base;
  return MPI_SUCCESS;
}

int PMPI_Win_allocate(MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm, void *baseptr, MPI_Win *win)
{
  (void)info;
  return allocate(size, disp_unit, comm, baseptr, win, MPI_WIN_FLAVOR_ALLOCATE, "MPI_Win_allocate");
}

/* Shared memory between ranks would tie them to one host for good: only a
 * communicator of one rank can have it. */
int PMPI_Win_allocate_shared(MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm, void *baseptr,
                             MPI_Win *win)
{
  (void)info;
  FMPI_CHECK_INIT("MPI_Win_allocate_shared");
  fmpi_comm *c = fmpi_comm_get(comm);
  if (c == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, "MPI_Win_allocate_shared");
  if (c->size > 1)
    return fmpi_error(c, MPI_ERR_RMA_SHARED, "MPI_Win_allocate_shared");
  return allocate(size, disp_unit, comm, baseptr, win, MPI_WIN_FLAVOR_SHARED, "MPI_Win_allocate_shared");
}

int PMPI_Win_shared_query(MPI_Win win, int rank, MPI_Aint *size, int *disp_unit, void *baseptr)
{
  GET_WIN(win, "MPI_Win_shared_query");
  if (w->flavor != MPI_WIN_FLAVOR_SHARED)
    return win_error(w, MPI_ERR_RMA_FLAVOR, "MPI_Win_shared_query");
  if (rank != 0 && rank != MPI_PROC_NULL)
    return win_error(w, MPI_ERR_RANK, "MPI_Win_shared_query");
  *size = w->size;
  *disp_unit = w->disp_unit;
  *(void **)baseptr = w->base;
  return MPI_SUCCESS;
}

int PMPI_Win_create_dynamic(MPI_Info info, MPI_Comm comm, MPI_Win *win)
{
  (void)info;
  FMPI_CHECK_INIT("MPI_Win_create_dynamic");
  return win_new(comm, NULL, 0, 1, MPI_WIN_FLAVOR_DYNAMIC, win, "MPI_Win_create_dynamic");
}

int PMPI_Win_attach(MPI_Win win, void *base, MPI_Aint size)
{
  GET_WIN(win, "MPI_Win_attach");
  if (w->flavor != MPI_WIN_FLAVOR_DYNAMIC)
    return win_error(w, MPI_ERR_RMA_FLAVOR, "MPI_Win_attach");
  if (size < 0)
    return win_error(w, MPI_ERR_SIZE, "MPI_Win_attach");
  uintptr_t b = (uintptr_t)base;
  int rv = MPI_SUCCESS;
  fmpi_lock();
  for (int i = 0; i < w->nregions; i++)
    if (b < w->regions[i].base + (uintptr_t)w->regions[i].size && w->regions[i].base < b + (uintptr_t)size)
      rv = MPI_ERR_RMA_ATTACH;
  if (rv == MPI_SUCCESS) {
    if ((w->regions = realloc(w->regions, (size_t)(w->nregions + 1) * sizeof *w->regions)) == NULL)
      fmpi_fatal("out of memory");
    w->regions[w->nregions++] = (win_region){ b, size };
  }
  fmpi_unlock();
  return win_error(w, rv, "MPI_Win_attach");
}

int PMPI_Win_detach(MPI_Win win, const void *base)
{
  GET_WIN(win, "MPI_Win_detach");
  if (w->flavor != MPI_WIN_FLAVOR_DYNAMIC)
    return win_error(w, MPI_ERR_RMA_FLAVOR, "MPI_Win_detach");
  int rv = MPI_ERR_RMA_ATTACH;
  fmpi_lock();
  for (int i = 0; i < w->nregions; i++)
    if (w->regions[i].base == (uintptr_t)base) {
      w->regions[i] = w->regions[--w->nregions];
      rv = MPI_SUCCESS;
      break;
    }
  fmpi_unlock();
  return win_error(w, rv, "MPI_Win_detach");
}

static bool in_epoch(const fmpi_win *w)
{
  if (w->lock_all || w->started || w->posted)
    return true;
  for (int t = 0; t < w->c->size; t++)
    if (w->peers[t].lock)
      return true;
  return false;
}

int PMPI_Win_free(MPI_Win *win)
{
  GET_WIN(*win, "MPI_Win_free");
  if (in_epoch(w))
    return win_error(w, MPI_ERR_RMA_SYNC, "MPI_Win_free");
  int rv = fmpi_attr_delete_all(&w->attrs, w->handle, FMPI_ATTR_WIN); /* in the window still valid */
  if (rv != MPI_SUCCESS)
    return win_error(w, rv, "MPI_Win_free");
  fmpi_lock();
  wait_local(w, -1);
  fmpi_unlock();
  PMPI_Barrier(w->comm); /* every epoch is closed everywhere: no op can come any more */
  fmpi_lock();
  fmpi_wait_cond(target_idle, w);
  if (w->op_req && fmpi_recv_unpost(w->op_req))
    fmpi_req_release(w->op_req);
  fmpi_unlock();
  fmpi_table_del(&fmpi_wins, w->handle);
  PMPI_Comm_free(&w->comm);
  if (w->owns_base)
    free(w->base);
  free(w->op_buf);
  free(w->peers);
  free(w->waiting);
  free(w->regions);
  free(w);
  *win = MPI_WIN_NULL;
  return MPI_SUCCESS;
}

/* ---- attributes, names, info, error handlers ---- */

int PMPI_Win_get_attr(MPI_Win win, int win_keyval, void *attribute_val, int *flag)
{
  GET_WIN(win, "MPI_Win_get_attr");
  *flag = 1;
  switch (win_keyval) {
  case MPI_WIN_BASE:
    *(void **)attribute_val = w->base;
    break;
  case MPI_WIN_SIZE:
    *(MPI_Aint **)attribute_val = &w->size;
    break;
  case MPI_WIN_DISP_UNIT:
    *(int **)attribute_val = &w->disp_unit;
    break;
  case MPI_WIN_CREATE_FLAVOR:
    *(int **)attribute_val = &w->flavor;
    break;
  case MPI_WIN_MODEL:
    *(int **)attribute_val = &w->model;
    break;
  default: {
    void *v;
    *flag = fmpi_attr_find(&w->attrs, win_keyval, &v);
    if (*flag)
      *(void **)attribute_val = v;
  }
  }
  return MPI_SUCCESS;
}

int PMPI_Win_create_keyval(MPI_Win_copy_attr_function *win_copy_attr_fn, MPI_Win_delete_attr_function *win_delete_attr_fn,
                           int *win_keyval, void *extra_state)
{
  return fmpi_keyval_create(FMPI_ATTR_WIN, (void *)win_copy_attr_fn, (void *)win_delete_attr_fn, win_keyval,
                            extra_state);
}

int PMPI_Win_free_keyval(int *win_keyval)
{
  int rv = fmpi_keyval_free(FMPI_ATTR_WIN, win_keyval);
  return rv == MPI_SUCCESS ? rv : win_error(NULL, rv, "MPI_Win_free_keyval");
}

int PMPI_Win_set_attr(MPI_Win win, int win_keyval, void *attribute_val)
{
  GET_WIN(win, "MPI_Win_set_attr");
  int rv = fmpi_attr_set(&w->attrs, w->handle, FMPI_ATTR_WIN, win_keyval, attribute_val);
  return rv == MPI_SUCCESS ? rv : win_error(w, rv, "MPI_Win_set_attr");
}

int PMPI_Win_delete_attr(MPI_Win win, int win_keyval)
{
  GET_WIN(win, "MPI_Win_delete_attr");
  int rv = fmpi_attr_delete(&w->attrs, w->handle, FMPI_ATTR_WIN, win_keyval);
  return rv == MPI_SUCCESS ? rv : win_error(w, rv, "MPI_Win_delete_attr");
}

int PMPI_Win_get_group(MPI_Win win, MPI_Group *group)
{
  GET_WIN(win, "MPI_Win_get_group");
  return PMPI_Comm_group(w->comm, group);
}

int PMPI_Win_set_name(MPI_Win win, const char *win_name)
{
  GET_WIN(win, "MPI_Win_set_name");
  snprintf(w->name, sizeof w->name, "%s", win_name);
  return MPI_SUCCESS;
}

int PMPI_Win_get_name(MPI_Win win, char *win_name, int *resultlen)
{
  GET_WIN(win, "MPI_Win_get_name");
  snprintf(win_name, MPI_MAX_OBJECT_NAME, "%s", w->name);
  *resultlen = (int)strlen(win_name);
  return MPI_SUCCESS;
}

/* Hints are accepted; none changes what a window does. */
int PMPI_Win_set_info(MPI_Win win, MPI_Info info)
{
  (void)info;
  GET_WIN(win, "MPI_Win_set_info");
  (void)w;
  return MPI_SUCCESS;
}

int PMPI_Win_get_info(MPI_Win win, MPI_Info *info_used)
{
  GET_WIN(win, "MPI_Win_get_info");
  (void)w;
  return PMPI_Info_create(info_used);
}

int PMPI_Win_create_errhandler(MPI_Win_errhandler_function *function, MPI_Errhandler *errhandler)
{
  return PMPI_Comm_create_errhandler((MPI_Comm_errhandler_function *)function, errhandler);
}

int PMPI_Win_set_errhandler(MPI_Win win, MPI_Errhandler errhandler)
{
  GET_WIN(win, "MPI_Win_set_errhandler");
  if (!fmpi_errh_valid(errhandler))
    return win_error(w, MPI_ERR_ARG, "MPI_Win_set_errhandler");
  w->errh = errhandler;
  return MPI_SUCCESS;
}

int PMPI_Win_get_errhandler(MPI_Win win, MPI_Errhandler *errhandler)
{
  GET_WIN(win, "MPI_Win_get_errhandler");
  *errhandler = w->errh;
  return MPI_SUCCESS;
}

int PMPI_Win_call_errhandler(MPI_Win win, int errorcode)
{
  GET_WIN(win, "MPI_Win_call_errhandler");
  win_error(w, errorcode, "MPI_Win_call_errhandler");
  return MPI_SUCCESS;
}

/* ---- the origin side: ops ---- */

typedef struct rma_args {
  int kind;
  const void *oaddr;       /* data for the target (put, accumulates, compare_and_swap's new value) */
  int ocount;
  MPI_Datatype otype;
  void *raddr;             /* where the reply goes (get: the origin buffer) */
  int rcount;
  MPI_Datatype rtype;
  const void *compare;     /* compare_and_swap */
  int target;
  MPI_Aint tdisp;
  int tcount;
  MPI_Datatype ttype;
  MPI_Op op;
} rma_args;

static int check_type(fmpi_type **t, MPI_Datatype h, int count)
{
  if (count < 0)
    return MPI_ERR_COUNT;
  if ((*t = fmpi_type_get(h)) == NULL || !(*t)->committed)
    return MPI_ERR_TYPE;
  return MPI_SUCCESS;
}

/* The predefined type a type is made of (0: mixed). */
static MPI_Datatype basic_of(const fmpi_type *t, MPI_Datatype h)
{
  return t->predefined ? h : t->basic;
}

/* Checks an op's arguments; fills m (but `counted`) and the target layout's runs. */
static int describe(fmpi_win *w, const rma_args *a, rma_msg *m, const struct fmpi_block **blocks)
{
  fmpi_type *ot = NULL, *rt = NULL, *tt;
  int rv;
  bool sends_data = a->kind == K_PUT || a->kind == K_ACC || (a->kind == K_GACC && a->op != MPI_NO_OP);
  bool replies = a->kind == K_GET || a->kind == K_GACC || a->kind == K_CAS;
  if (a->target < 0 || a->target >= w->c->size)
    return MPI_ERR_RANK;
  if ((rv = check_type(&tt, a->ttype, a->tcount)) != MPI_SUCCESS ||
      (sends_data && (rv = check_type(&ot, a->otype, a->ocount)) != MPI_SUCCESS) ||
      (replies && (rv = check_type(&rt, a->rtype, a->rcount)) != MPI_SUCCESS))
    return rv;
  size_t tbytes = (size_t)a->tcount * tt->size;
  if ((ot && (size_t)a->ocount * ot->size != tbytes) || (rt && (size_t)a->rcount * rt->size != tbytes))
    return MPI_ERR_TYPE; /* the two sides' type signatures differ */
  if (tbytes > INT_MAX)
    return MPI_ERR_COUNT;
  memset(m, 0, sizeof *m);
  m->kind = a->kind;
  if (a->kind == K_ACC || a->kind == K_GACC || a->kind == K_CAS) {
    m->basic = basic_of(tt, a->ttype);
    if (m->basic == 0 || (ot && basic_of(ot, a->otype) != m->basic) || (rt && basic_of(rt, a->rtype) != m->basic))
      return MPI_ERR_TYPE; /* accumulates work on one predefined type */
    if (a->kind != K_CAS && (a->op < MPI_MAX || a->op > (a->kind == K_GACC ? MPI_NO_OP : MPI_REPLACE)))
      return MPI_ERR_OP; /* predefined ops only (MPI 3.1 11.3.4) */
    m->op = a->op;
  }
  if (tt->contig) {
    m->nblocks = 1;
    m->block = (struct fmpi_block){ tt->lb, tbytes };
    m->count = tbytes ? 1 : 0;
    *blocks = &m->block;
  } else {
    m->nblocks = tt->nblocks;
    m->count = a->tcount;
    m->extent = tt->extent;
    *blocks = tt->blocks;
    if (tt->nblocks == 1)
      m->block = tt->blocks[0];
  }
  m->payload = a->kind == K_CAS ? 2 * tbytes : sends_data ? tbytes : 0;
  m->reply = replies ? tbytes : 0;
  win_peer *p = &w->peers[a->target];
  if (w->flavor == MPI_WIN_FLAVOR_DYNAMIC) {
    m->disp = (int64_t)a->tdisp;
    return MPI_SUCCESS;
  }
  m->disp = (int64_t)a->tdisp * p->disp_unit;
  int64_t lo, hi;
  layout_span(m, *blocks, &lo, &hi);
  if (lo != hi && (m->disp + lo < 0 || m->disp + hi > p->size))
    return MPI_ERR_RMA_RANGE;
  return MPI_SUCCESS;
}

/* Writes an op's body: the target layout's runs (when more than one), then the origin's data. */
static void fill_body(uint8_t *dst, const rma_msg *m, const struct fmpi_block *blocks, const rma_args *a)
{
  size_t bbytes = blocks_bytes(m);
  memcpy(dst, blocks, bbytes);
  if (m->kind == K_CAS) {
    memcpy(dst + bbytes, a->oaddr, m->reply);
    memcpy(dst + bbytes + m->reply, a->compare, m->reply);
  } else if (m->payload) {
    fmpi_pack(fmpi_type_get(a->otype), a->oaddr, a->ocount, dst + bbytes);
  }
}

/* Starts an op (lock held, the epoch checked by the caller); *user, when
 * wanted: the request an R-call returns (the reply's receive for fetching
 * ops, else the last send). */
static void issue(fmpi_win *w, const rma_args *a, rma_msg *m, const struct fmpi_block *blocks, fmpi_request **user)
{
  win_peer *p = &w->peers[a->target];
  if (m->reply) { /* posted first: to this rank itself, the reply comes within the send */
    fmpi_request *r;
    fmpi_irecv(a->raddr, a->rcount, a->rtype, a->target, TAG_REPLY, w->c, w->c->ctx, &r);
    p->pending++;
    watch(r, origin_done, p, user != NULL);
    if (user)
      *user = r;
  }
  size_t body = blocks_bytes(m) + m->payload;
  m->split = body > INLINE_BYTES;
  fmpi_request *last;
  if (!m->split) {
    uint8_t *buf = malloc(sizeof *m + body);
    if (buf == NULL)
      fmpi_fatal("out of memory");
    memcpy(buf, m, sizeof *m);
    fill_body(buf + sizeof *m, m, blocks, a);
    last = send_owned(w, a->target, TAG_OP, buf, sizeof *m + body);
  } else {
    rma_msg *head = malloc(sizeof *m);
    if (head == NULL)
      fmpi_fatal("out of memory");
    *head = *m;
    p->pending++;
    watch(send_owned(w, a->target, TAG_OP, head, sizeof *m), origin_done, p, false);
    if (m->nblocks <= 1 && m->kind != K_CAS) {
      /* the body is the origin's data alone: sent from its buffer (packed by the engine if need be) */
      fmpi_isend(a->oaddr, a->ocount, a->otype, a->target, TAG_BODY, w->c, w->c->ctx, false, &last);
    } else {
      uint8_t *b = malloc(body);
      if (b == NULL)
        fmpi_fatal("out of memory");
      fill_body(b, m, blocks, a);
      last = send_owned(w, a->target, TAG_BODY, b, body);
    }
  }
  p->pending++;
  bool keep = user != NULL && m->reply == 0;
  watch(last, origin_done, p, keep);
  if (keep)
    *user = last;
  /* a fetching op is complete at the target once its reply is here: only
   * puts and accumulates need a FLUSH message to know it */
  if (m->reply == 0)
    p->dirty = true;
}

/* Checks and starts one op; request: an R-call's (NULL for the others). */
static int rma_call(MPI_Win win, const rma_args *a, MPI_Request *request, const char *fname)
{
  GET_WIN(win, fname);
  if (a->target == MPI_PROC_NULL) {
    if (request) {
      fmpi_lock();
      fmpi_request *r = fmpi_req_new(false, w->c, w->c->ctx, MPI_PROC_NULL, 0, NULL, 0, MPI_BYTE);
      r->complete = true;
      fmpi_req_handle(r, request);
      fmpi_unlock();
    }
    return MPI_SUCCESS;
  }
  rma_msg m;
  const struct fmpi_block *blocks;
  int rv = describe(w, a, &m, &blocks);
  if (rv != MPI_SUCCESS)
    return win_error(w, rv, fname);
  fmpi_lock();
  win_peer *p = &w->peers[a->target];
  /* an access epoch on the target: a fence's, a lock's (R-calls: only these), a start's */
  if (request ? !p->lock : !w->fence_open && !p->lock && !p->access) {
    fmpi_unlock();
    return win_error(w, MPI_ERR_RMA_SYNC, fname);
  }
  m.counted = !p->lock && !p->access;
  if (m.counted)
    p->issued++;
  fmpi_request *r = NULL;
  issue(w, a, &m, blocks, request ? &r : NULL);
  if (request)
    fmpi_req_handle(r, request);
  fmpi_unlock();
  return MPI_SUCCESS;
}

int PMPI_Put(const void *origin_addr, int origin_count, MPI_Datatype origin_datatype, int target_rank,
             MPI_Aint target_disp, int target_count, MPI_Datatype target_datatype, MPI_Win win)
{
  rma_args a = { .kind = K_PUT, .oaddr = origin_addr, .ocount = origin_count, .otype = origin_datatype,
                 .target = target_rank, .tdisp = target_disp, .tcount = target_count, .ttype = target_datatype };
  return rma_call(win, &a, NULL, "MPI_Put");
}

int PMPI_Rput(const void *origin_addr, int origin_count, MPI_Datatype origin_datatype, int target_rank,
              MPI_Aint target_disp, int target_count, MPI_Datatype target_datatype, MPI_Win win, MPI_Request *request)
{
  rma_args a = { .kind = K_PUT, .oaddr = origin_addr, .ocount = origin_count, .otype = origin_datatype,
                 .target = target_rank, .tdisp = target_disp, .tcount = target_count, .ttype = target_datatype };
  return rma_call(win, &a, request, "MPI_Rput");
}

int PMPI_Get(void *origin_addr, int origin_count, MPI_Datatype origin_datatype, int target_rank,
             MPI_Aint target_disp, int target_count, MPI_Datatype target_datatype, MPI_Win win)
{
  rma_args a = { .kind = K_GET, .raddr = origin_addr, .rcount = origin_count, .rtype = origin_datatype,
                 .target = target_rank, .tdisp = target_disp, .tcount = target_count, .ttype = target_datatype };
  return rma_call(win, &a, NULL, "MPI_Get");
}

int PMPI_Rget(void *origin_addr, int origin_count, MPI_Datatype origin_datatype, int target_rank,
              MPI_Aint target_disp, int target_count, MPI_Datatype target_datatype, MPI_Win win, MPI_Request *request)
{
  rma_args a = { .kind = K_GET, .raddr = origin_addr, .rcount = origin_count, .rtype = origin_datatype,
                 .target = target_rank, .tdisp = target_disp, .tcount = target_count, .ttype = target_datatype };
  return rma_call(win, &a, request, "MPI_Rget");
}

int PMPI_Accumulate(const void *origin_addr, int origin_count, MPI_Datatype origin_datatype, int target_rank,
                    MPI_Aint target_disp, int target_count, MPI_Datatype target_datatype, MPI_Op op, MPI_Win win)
{
  rma_args a = { .kind = K_ACC, .oaddr = origin_addr, .ocount = origin_count, .otype = origin_datatype,
                 .target = target_rank, .tdisp = target_disp, .tcount = target_count, .ttype = target_datatype,
                 .op = op };
  return rma_call(win, &a, NULL, "MPI_Accumulate");
}

int PMPI_Raccumulate(const void *origin_addr, int origin_count, MPI_Datatype origin_datatype, int target_rank,
                     MPI_Aint target_disp, int target_count, MPI_Datatype target_datatype, MPI_Op op, MPI_Win win,
                     MPI_Request *request)
{
  rma_args a = { .kind = K_ACC, .oaddr = origin_addr, .ocount = origin_count, .otype = origin_datatype,
                 .target = target_rank, .tdisp = target_disp, .tcount = target_count, .ttype = target_datatype,
                 .op = op };
  return rma_call(win, &a, request, "MPI_Raccumulate");
}

int PMPI_Get_accumulate(const void *origin_addr, int origin_count, MPI_Datatype origin_datatype, void *result_addr,
                        int result_count, MPI_Datatype result_datatype, int target_rank, MPI_Aint target_disp,
                        int target_count, MPI_Datatype target_datatype, MPI_Op op, MPI_Win win)
{
  rma_args a = { .kind = K_GACC, .oaddr = origin_addr, .ocount = origin_count, .otype = origin_datatype,
                 .raddr = result_addr, .rcount = result_count, .rtype = result_datatype, .target = target_rank,
                 .tdisp = target_disp, .tcount = target_count, .ttype = target_datatype, .op = op };
  return rma_call(win, &a, NULL, "MPI_Get_accumulate");
}

int PMPI_Rget_accumulate(const void *origin_addr, int origin_count, MPI_Datatype origin_datatype, void *result_addr,
                         int result_count, MPI_Datatype result_datatype, int target_rank, MPI_Aint target_disp,
                         int target_count, MPI_Datatype target_datatype, MPI_Op op, MPI_Win win,
                         MPI_Request *request)
{
  rma_args a = { .kind = K_GACC, .oaddr = origin_addr, .ocount = origin_count, .otype = origin_datatype,
                 .raddr = result_addr, .rcount = result_count, .rtype = result_datatype, .target = target_rank,
                 .tdisp = target_disp, .tcount = target_count, .ttype = target_datatype, .op = op };
  return rma_call(win, &a, request, "MPI_Rget_accumulate");
}

int PMPI_Fetch_and_op(const void *origin_addr, void *result_addr, MPI_Datatype datatype, int target_rank,
                      MPI_Aint target_disp, MPI_Op op, MPI_Win win)
{
  rma_args a = { .kind = K_GACC, .oaddr = origin_addr, .ocount = 1, .otype = datatype, .raddr = result_addr,
                 .rcount = 1, .rtype = datatype, .target = target_rank, .tdisp = target_disp, .tcount = 1,
                 .ttype = datatype, .op = op };
  return rma_call(win, &a, NULL, "MPI_Fetch_and_op");
}

int PMPI_Compare_and_swap(const void *origin_addr, const void *compare_addr, void *result_addr,
                          MPI_Datatype datatype, int target_rank, MPI_Aint target_disp, MPI_Win win)
{
  rma_args a = { .kind = K_CAS, .oaddr = origin_addr, .compare = compare_addr, .raddr = result_addr, .rcount = 1,
                 .rtype = datatype, .target = target_rank, .tdisp = target_disp, .tcount = 1, .ttype = datatype };
  return rma_call(win, &a, NULL, "MPI_Compare_and_swap");
}

/* ---- synchronization: fence ---- */

int PMPI_Win_fence(int assert, MPI_Win win)
{
  GET_WIN(win, "MPI_Win_fence");
  fmpi_lock();
  bool other_epoch = in_epoch(w);
  fmpi_unlock();
  if (other_epoch)
    return win_error(w, MPI_ERR_RMA_SYNC, "MPI_Win_fence");
  if (!(assert & MPI_MODE_NOPRECEDE)) {
    uint64_t *counts = malloc((size_t)w->c->size * sizeof *counts), expect = 0;
    if (counts == NULL)
      fmpi_fatal("out of memory");
    fmpi_lock();
    wait_local(w, -1);
    for (int t = 0; t < w->c->size; t++) {
      counts[t] = w->peers[t].issued;
      w->peers[t].issued = 0;
      w->peers[t].dirty = false;
    }
    fmpi_unlock();
    PMPI_Reduce_scatter_block(counts, &expect, 1, MPI_UINT64_T, MPI_SUM, w->comm);
    free(counts);
    fmpi_lock();
    wait_arg a = { w, -1, expect };
    fmpi_wait_cond(applied_done, &a);
    w->applied -= expect;
    fmpi_unlock();
  }
  /* the next epoch's ops wait until every target has applied this one's */
  if (!(assert & MPI_MODE_NOSUCCEED))
    PMPI_Barrier(w->comm);
  w->fence_open = !(assert & MPI_MODE_NOSUCCEED);
  return MPI_SUCCESS;
}

/* ---- synchronization: post, start, complete, wait ---- */

/* The window's ranks of group's members (the caller frees them); NULL: one is not in the window. */
static int *group_ranks(fmpi_win *w, MPI_Group group, int *n)
{
  fmpi_group *g = fmpi_group_get(group);
  if (g == NULL)
    return NULL;
  int *out = malloc((size_t)(g->size ? g->size : 1) * sizeof *out);
  if (out == NULL)
    fmpi_fatal("out of memory");
  for (int i = 0; i < g->size; i++)
    if ((out[i] = w->c->local[g->world[i]]) < 0) {
      free(out);
      return NULL;
    }
  *n = g->size;
  return out;
}

int PMPI_Win_post(MPI_Group group, int assert, MPI_Win win)
{
  GET_WIN(win, "MPI_Win_post");
  int n;
  int *origins = group_ranks(w, group, &n);
  if (origins == NULL)
    return win_error(w, MPI_ERR_GROUP, "MPI_Win_post");
  fmpi_lock();
  int rv = w->posted ? MPI_ERR_RMA_SYNC : MPI_SUCCESS;
  if (rv == MPI_SUCCESS) {
    w->posted = true;
    w->exposure = n;
    if (!(assert & MPI_MODE_NOCHECK))
      for (int i = 0; i < n; i++)
        target_send(w, origins[i], TAG_POST, NULL, 0);
  }
  fmpi_unlock();
  free(origins);
  return win_error(w, rv, "MPI_Win_post");
}

int PMPI_Win_start(MPI_Group group, int assert, MPI_Win win)
{
  GET_WIN(win, "MPI_Win_start");
  int n;
  int *targets = group_ranks(w, group, &n);
  if (targets == NULL)
    return win_error(w, MPI_ERR_GROUP, "MPI_Win_start");
  fmpi_lock();
  int rv = w->started ? MPI_ERR_RMA_SYNC : MPI_SUCCESS;
  if (rv == MPI_SUCCESS) {
    w->started = true;
    if (!(assert & MPI_MODE_NOCHECK)) { /* each target's exposure is open */
      fmpi_request **posts = malloc((size_t)(n ? n : 1) * sizeof *posts);
      if (posts == NULL)
        fmpi_fatal("out of memory");
      for (int i = 0; i < n; i++)
        fmpi_irecv(NULL, 0, MPI_BYTE, targets[i], TAG_POST, w->c, w->c->ctx, &posts[i]);
      fmpi_wait_reqs(posts, n);
      free(posts);
    }
    for (int i = 0; i < n; i++)
      w->peers[targets[i]].access = true;
  }
  fmpi_unlock();
  free(targets);
  return win_error(w, rv, "MPI_Win_start");
}

int PMPI_Win_complete(MPI_Win win)
{
  GET_WIN(win, "MPI_Win_complete");
  fmpi_lock();
  if (!w->started) {
    fmpi_unlock();
    return win_error(w, MPI_ERR_RMA_SYNC, "MPI_Win_complete");
  }
  wait_local(w, -1);
  for (int t = 0; t < w->c->size; t++) {
    win_peer *p = &w->peers[t];
    if (!p->access)
      continue;
    rma_msg *m = calloc(1, sizeof *m); /* behind this rank's ops: the target counts it once they are applied */
    if (m == NULL)
      fmpi_fatal("out of memory");
    m->kind = K_COMPLETE;
    p->pending++;
    watch(send_owned(w, t, TAG_OP, m, sizeof *m), origin_done, p, false);
    p->access = false;
    p->dirty = false;
  }
  w->started = false;
  fmpi_unlock();
  return MPI_SUCCESS;
}

/* The exposure epoch ends (lock held, every origin completed). */
static void end_exposure(fmpi_win *w)
{
  w->completes -= w->exposure;
  w->exposure = 0;
  w->posted = false;
}

int PMPI_Win_wait(MPI_Win win)
{
  GET_WIN(win, "MPI_Win_wait");
  fmpi_lock();
  if (!w->posted) {
    fmpi_unlock();
    return win_error(w, MPI_ERR_RMA_SYNC, "MPI_Win_wait");
  }
  fmpi_wait_cond(exposure_done, w);
  end_exposure(w);
  fmpi_unlock();
  return MPI_SUCCESS;
}

int PMPI_Win_test(MPI_Win win, int *flag)
{
  GET_WIN(win, "MPI_Win_test");
  fmpi_lock();
  if (!w->posted) {
    fmpi_unlock();
    return win_error(w, MPI_ERR_RMA_SYNC, "MPI_Win_test");
  }
  if (!exposure_done(w) && fmpi_st.state != ST_FLUSHED)
    fmpi_progress(0);
  *flag = exposure_done(w);
  if (*flag)
    end_exposure(w);
  fmpi_unlock();
  return MPI_SUCCESS;
}

/* ---- synchronization: passive target ---- */

int PMPI_Win_lock(int lock_type, int rank, int assert, MPI_Win win)
{
  GET_WIN(win, "MPI_Win_lock");
  if (lock_type != MPI_LOCK_SHARED && lock_type != MPI_LOCK_EXCLUSIVE)
    return win_error(w, MPI_ERR_LOCKTYPE, "MPI_Win_lock");
  if (rank == MPI_PROC_NULL)
    return MPI_SUCCESS;
  if (rank < 0 || rank >= w->c->size)
    return win_error(w, MPI_ERR_RANK, "MPI_Win_lock");
  fmpi_lock();
  win_peer *p = &w->peers[rank];
  int rv = p->lock ? MPI_ERR_RMA_SYNC : MPI_SUCCESS;
  if (rv == MPI_SUCCESS) {
    p->nocheck = (assert & MPI_MODE_NOCHECK) != 0;
    if (!p->nocheck)
      control(w, K_LOCK, lock_type, &rank, 1);
    p->lock = lock_type;
  }
  fmpi_unlock();
  return win_error(w, rv, "MPI_Win_lock");
}

/* Ends the lock epochs on targets[0..n) (lock held): their ops complete here,
 * then at each target (an UNLOCK, or a FLUSH for a lock taken with NOCHECK). */
static void unlock_targets(fmpi_win *w, const int *targets, int n)
{
  int *unlock = malloc((size_t)(n ? n : 1) * sizeof *unlock), *flush = malloc((size_t)(n ? n : 1) * sizeof *flush);
  if (unlock == NULL || flush == NULL)
    fmpi_fatal("out of memory");
  int nu = 0, nf = 0;
  for (int i = 0; i < n; i++) {
    win_peer *p = &w->peers[targets[i]];
    wait_local(w, targets[i]);
    if (!p->nocheck)
      unlock[nu++] = targets[i];
    else if (p->dirty)
      flush[nf++] = targets[i];
  }
  control(w, K_UNLOCK, 0, unlock, nu);
  control(w, K_FLUSH, 0, flush, nf);
  for (int i = 0; i < n; i++) {
    win_peer *p = &w->peers[targets[i]];
    p->lock = 0;
    p->nocheck = p->dirty = false;
  }
  free(unlock);
  free(flush);
}

int PMPI_Win_unlock(int rank, MPI_Win win)
{
  GET_WIN(win, "MPI_Win_unlock");
  if (rank == MPI_PROC_NULL)
    return MPI_SUCCESS;
  if (rank < 0 || rank >= w->c->size)
    return win_error(w, MPI_ERR_RANK, "MPI_Win_unlock");
  fmpi_lock();
  int rv = !w->peers[rank].lock || w->lock_all ? MPI_ERR_RMA_SYNC : MPI_SUCCESS;
  if (rv == MPI_SUCCESS)
    unlock_targets(w, &rank, 1);
  fmpi_unlock();
  return win_error(w, rv, "MPI_Win_unlock");
}

static int *all_ranks(fmpi_win *w)
{
  int *all = malloc((size_t)w->c->size * sizeof *all);
  if (all == NULL)
    fmpi_fatal("out of memory");
  for (int t = 0; t < w->c->size; t++)
    all[t] = t;
  return all;
}

int PMPI_Win_lock_all(int assert, MPI_Win win)
{
  GET_WIN(win, "MPI_Win_lock_all");
  fmpi_lock();
  int rv = in_epoch(w) ? MPI_ERR_RMA_SYNC : MPI_SUCCESS;
  if (rv == MPI_SUCCESS) {
    int *all = all_ranks(w);
    bool nocheck = (assert & MPI_MODE_NOCHECK) != 0;
    if (!nocheck)
      control(w, K_LOCK, MPI_LOCK_SHARED, all, w->c->size);
    for (int t = 0; t < w->c->size; t++) {
      w->peers[t].lock = MPI_LOCK_SHARED;
      w->peers[t].nocheck = nocheck;
    }
    w->lock_all = true;
    free(all);
  }
  fmpi_unlock();
  return win_error(w, rv, "MPI_Win_lock_all");
}

int PMPI_Win_unlock_all(MPI_Win win)
{
  GET_WIN(win, "MPI_Win_unlock_all");
  fmpi_lock();
  int rv = w->lock_all ? MPI_SUCCESS : MPI_ERR_RMA_SYNC;
  if (rv == MPI_SUCCESS) {
    int *all = all_ranks(w);
    unlock_targets(w, all, w->c->size);
    w->lock_all = false;
    free(all);
  }
  fmpi_unlock();
  return win_error(w, rv, "MPI_Win_unlock_all");
}

/* Completes this rank's ops toward rank (all: every rank) here and, when
 * remote, at the target too; only inside a lock epoch. */
static int flush(MPI_Win win, int rank, bool all, bool remote, const char *fname)
{
  GET_WIN(win, fname);
  if (!all && rank == MPI_PROC_NULL)
    return MPI_SUCCESS;
  if (all)
    rank = -1;
  else if (rank < 0 || rank >= w->c->size)
    return win_error(w, MPI_ERR_RANK, fname);
  fmpi_lock();
  int rv = MPI_SUCCESS, n = 0;
  int *targets = all_ranks(w);
  for (int t = 0; t < w->c->size; t++) {
    if (rank >= 0 && t != rank)
      continue;
    win_peer *p = &w->peers[t];
    if (!p->lock) {
      if (rank >= 0)
        rv = MPI_ERR_RMA_SYNC;
      continue;
    }
    wait_local(w, t);
    if (remote && p->dirty) {
      targets[n++] = t;
      p->dirty = false;
    }
  }
  if (rv == MPI_SUCCESS)
    control(w, K_FLUSH, 0, targets, n);
  free(targets);
  fmpi_unlock();
  return win_error(w, rv, fname);
}

int PMPI_Win_flush(int rank, MPI_Win win)
{
  return flush(win, rank, false, true, "MPI_Win_flush");
}

int PMPI_Win_flush_all(MPI_Win win)
{
  return flush(win, 0, true, true, "MPI_Win_flush_all");
}

int PMPI_Win_flush_local(int rank, MPI_Win win)
{
  return flush(win, rank, false, false, "MPI_Win_flush_local");
}

int PMPI_Win_flush_local_all(MPI_Win win)
{
  return flush(win, 0, true, false, "MPI_Win_flush_local_all");
}

/* The unified model: the window's memory is the only copy; a fence orders this thread's loads and stores. */
int PMPI_Win_sync(MPI_Win win)
{
  GET_WIN(win, "MPI_Win_sync");
  (void)w;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  return MPI_SUCCESS;
}
