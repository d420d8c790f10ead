/* Point-to-point: requests, matching (posted and unexpected queues, both in
 * order), eager and rendezvous protocols, and the MPI_ entry points. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "fmpi.h"

#pragma weak MPI_Send = PMPI_Send
#pragma weak MPI_Ssend = PMPI_Ssend
#pragma weak MPI_Recv = PMPI_Recv
#pragma weak MPI_Isend = PMPI_Isend
#pragma weak MPI_Issend = PMPI_Issend
#pragma weak MPI_Irecv = PMPI_Irecv
#pragma weak MPI_Sendrecv = PMPI_Sendrecv
#pragma weak MPI_Sendrecv_replace = PMPI_Sendrecv_replace
#pragma weak MPI_Probe = PMPI_Probe
#pragma weak MPI_Iprobe = PMPI_Iprobe
#pragma weak MPI_Mprobe = PMPI_Mprobe
#pragma weak MPI_Improbe = PMPI_Improbe
#pragma weak MPI_Mrecv = PMPI_Mrecv
#pragma weak MPI_Imrecv = PMPI_Imrecv
#pragma weak MPI_Get_count = PMPI_Get_count
#pragma weak MPI_Get_elements = PMPI_Get_elements
#pragma weak MPI_Wait = PMPI_Wait
#pragma weak MPI_Waitall = PMPI_Waitall
#pragma weak MPI_Waitany = PMPI_Waitany
#pragma weak MPI_Waitsome = PMPI_Waitsome
#pragma weak MPI_Test = PMPI_Test
#pragma weak MPI_Testall = PMPI_Testall
#pragma weak MPI_Testany = PMPI_Testany
#pragma weak MPI_Testsome = PMPI_Testsome
#pragma weak MPI_Request_free = PMPI_Request_free
#pragma weak MPI_Cancel = PMPI_Cancel
#pragma weak MPI_Test_cancelled = PMPI_Test_cancelled
#pragma weak MPI_Request_get_status = PMPI_Request_get_status
#pragma weak MPI_Get_elements_x = PMPI_Get_elements_x
#pragma weak MPI_Status_set_elements = PMPI_Status_set_elements
#pragma weak MPI_Status_set_elements_x = PMPI_Status_set_elements_x
#pragma weak MPI_Status_set_cancelled = PMPI_Status_set_cancelled
#pragma weak MPI_Status_c2f = PMPI_Status_c2f
#pragma weak MPI_Status_f2c = PMPI_Status_f2c

fmpi_table fmpi_requests;

/* ---- requests ---- */

fmpi_request *fmpi_req_new(bool is_send, fmpi_comm *c, uint32_t ctx, int peer, int tag, const void *buf, int count,
                           MPI_Datatype type)
{
  fmpi_type *t = fmpi_type_get(type);
  fmpi_request *r = calloc(1, sizeof *r);
  if (r == NULL)
    fmpi_fatal("out of memory");
  r->magic = FMPI_REQ_MAGIC;
  r->is_send = is_send;
  r->comm = c;
  if (c)
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
  r->ctx = ctx;
  r->peer = peer;
  r->tag = tag;
  r->buf = (void *)buf;
  r->count = count;
  r->type = type;
  r->bytes = (size_t)count * t->size;
  r->status.MPI_ERROR = MPI_SUCCESS;
  if (t->contig || r->bytes == 0) {
    r->data = (uint8_t *)buf + t->lb;
  } else {
    r->packbuf = malloc(r->bytes);
    if (r->packbuf == NULL)
      fmpi_fatal("out of memory");
    if (is_send)
      fmpi_pack(t, buf, count, r->packbuf);
    r->data = r->packbuf;
  }
  return r;
}

void fmpi_req_release(fmpi_request *r)
{
  if (r->handle)
    fmpi_table_del(&fmpi_requests, r->handle);
  if (r->comm) /* a freed communicator's memory goes at the next fmpi_comm_reap */
    __atomic_sub_fetch(&r->comm->refs, 1, __ATOMIC_RELEASE);
  free(r->packbuf);
  r->magic = 0;
  free(r);
}

void fmpi_req_complete(fmpi_request *r)
{
  if (!r->is_send && r->packbuf && !r->status.ferry_cancelled)
    fmpi_unpack(fmpi_type_get(r->type), r->packbuf, (size_t)r->status.ferry_bytes, r->buf);
  r->complete = true;
  fmpi_st.completions++;
  fmpi_nbc *owner = r->nbc_owner;
  if (r->on_done)
    r->on_done(r);
  if (r->user_freed)
    fmpi_req_release(r);
  if (owner) /* a step of a nonblocking collective: its next round may start */
    fmpi_nbc_op_done(owner);
}

static fmpi_request *req_check(uint64_t p)
{
  fmpi_request *r = (fmpi_request *)(uintptr_t)p;
  if (r == NULL || r->magic != FMPI_REQ_MAGIC)
    fmpi_fatal("a peer named request %#llx, which is not a live request here", (unsigned long long)p);
  return r;
}

static void set_source(fmpi_request *r, int src_world, int tag)
{
  r->status.MPI_SOURCE = r->comm ? r->comm->local[src_world] : src_world;
  r->status.MPI_TAG = tag;
}

static bool matches(const fmpi_request *r, uint32_t ctx, int src, int tag)
{
  return r->ctx == ctx && (r->peer == MPI_ANY_SOURCE || r->peer == src) && (r->tag == MPI_ANY_TAG || r->tag == tag);
}

/* Takes r, which follows prev (NULL: r is the head), off the posted queue. */
static inline void unlink_posted(fmpi_request *prev, fmpi_request *r)
{
  if (prev)
    prev->next = r->next;
  else
    fmpi_st.posted_head = r->next;
  if (fmpi_st.posted_tail == r)
    fmpi_st.posted_tail = prev;
  r->next = NULL;
}

static fmpi_request *take_posted(uint32_t ctx, int src, int tag)
{
  fmpi_request *prev = NULL;
  for (fmpi_request *r = fmpi_st.posted_head; r; prev = r, r = r->next)
    if (matches(r, ctx, src, tag)) {
      unlink_posted(prev, r);
      return r;
    }
  return NULL;
}

/* An unexpected message at the end of the queue; `buffered`: the payload bytes
 * it will hold (an eager message's, an RTS's prefix). */
static fmpi_unexp *new_unexp(uint32_t kind, int src, uint32_t ctx, int tag, size_t len, size_t buffered)
{
  fmpi_unexp *u = calloc(1, sizeof *u);
  if (u == NULL || ((kind == FMPI_F_EAGER || buffered > 0) && (u->data = malloc(buffered ? buffered : 1)) == NULL))
    fmpi_fatal("out of memory");
  u->kind = kind;
  u->src = src;
  u->ctx = ctx;
  u->tag = tag;
  u->len = len;
  if (fmpi_st.ux_tail)
    fmpi_st.ux_tail->next = u;
  else
    fmpi_st.ux_head = u;
  fmpi_st.ux_tail = u;
  return u;
}

size_t fmpi_unexpected_count(void)
{
  size_t n = 0;
  for (fmpi_unexp *u = fmpi_st.ux_head; u; u = u->next)
    n++;
  return n;
}

/* Copies a whole eager message into a receive (truncating, with an error, if it does not fit). */
static void copy_into(fmpi_request *r, const uint8_t *data, size_t len)
{
  size_t n = len < r->bytes ? len : r->bytes;
  if (n)
    memcpy(r->data, data, n);
  r->status.ferry_bytes = (long long)n;
  if (len > r->bytes)
    r->status.MPI_ERROR = MPI_ERR_TRUNCATE;
}

static void send_cts(fmpi_request *r, int src_world, uint64_t sreq)
{
  fmpi_item *it = calloc(1, sizeof *it);
  if (it == NULL)
    fmpi_fatal("out of memory");
  it->hdr.kind = FMPI_F_CTS;
  it->hdr.ctx = r->ctx;
  it->hdr.src = fmpi_st.rank;
  it->hdr.sreq = sreq;
  it->hdr.rreq = (uint64_t)(uintptr_t)r;
  fmpi_enqueue(&fmpi_st.peers[src_world], it);
}

/* A rendezvous receive takes the prefix its RTS carried. */
static void take_prefix(fmpi_request *r, const uint8_t *prefix, size_t n)
{
  size_t fit = n < r->bytes ? n : r->bytes;
  if (fit)
    memcpy(r->data, prefix, fit);
  r->rndv_got += n;
}

/* A receive takes an unexpected message (removed from the queue already). */
static void claim(fmpi_request *r, fmpi_unexp *u)
{
  set_source(r, u->src, u->tag);
  if (u->kind == FMPI_F_RTS) {
    r->rndv_total = u->len;
    send_cts(r, u->src, u->sreq); /* the data frames follow the prefix on the channel */
    if (u->got == u->prefix) {
      take_prefix(r, u->data, u->prefix);
      free(u->data);
      free(u);
    } else {
      u->claimed = r; /* prefix still arriving: the channel hands it over */
    }
  } else if (u->got == u->len) {
    copy_into(r, u->data, u->len);
    free(u->data);
    free(u);
    fmpi_req_complete(r);
  } else {
    u->claimed = r; /* payload still arriving: the channel completes r */
  }
}

static fmpi_unexp *find_unexp(uint32_t ctx, int src, int tag, bool remove)
{
  fmpi_unexp *prev = NULL;
  for (fmpi_unexp *u = fmpi_st.ux_head; u; prev = u, u = u->next) {
    if (u->ctx != ctx || (src != MPI_ANY_SOURCE && src != u->src) || (tag != MPI_ANY_TAG && tag != u->tag))
      continue;
    if (remove) {
      if (prev)
        prev->next = u->next;
      else
        fmpi_st.ux_head = u->next;
      if (fmpi_st.ux_tail == u)
        fmpi_st.ux_tail = prev;
      u->next = NULL;
    }
    return u;
  }
  return NULL;
}

/* ---- channel callbacks ---- */

void fmpi_on_header(fmpi_peer *p)
{
  fmpi_hdr *h = &p->in_hdr;
  if (fmpi_st.state == ST_FLUSHING && (h->kind == FMPI_F_EAGER || h->kind == FMPI_F_RTS || h->kind == FMPI_F_DATA)) {
    fmpi_st.drained_messages++;
    fmpi_st.drained_bytes += h->kind == FMPI_F_RTS ? h->offset : h->len;
  }
  switch (h->kind) {
  case FMPI_F_EAGER: {
    fmpi_st.received_messages++;
    fmpi_request *r = take_posted(h->ctx, h->src, h->tag);
    p->in_payload = true;
    if (r) {
      set_source(r, h->src, h->tag);
      size_t n = h->len < r->bytes ? h->len : r->bytes;
      p->in_req = r;
      p->in_dst = r->data;
      p->in_want = n;
      p->in_discard = h->len - n;
    } else {
      fmpi_unexp *u = new_unexp(FMPI_F_EAGER, h->src, h->ctx, h->tag, h->len, h->len);
      p->in_ux = u;
      p->in_dst = u->data;
      p->in_want = h->len;
      p->in_discard = 0;
    }
    break;
  }
  case FMPI_F_RTS: {
    /* The frame carries the message's first h->offset bytes (a sender of
     * FMPI_WIRE_VERSION 1 or an Ssend: none). A posted receive answers CTS at
     * once, so the CTS crosses while the prefix is still arriving. */
    fmpi_st.received_messages++;
    size_t prefix = h->offset;
    if ((prefix > 0 && prefix >= h->len) || prefix > FMPI_EAGER_LIMIT_BYTES)
      fmpi_fatal("rank %d sent a request-to-send of %llu bytes carrying %llu", p->rank, (unsigned long long)h->len,
                 (unsigned long long)prefix);
    fmpi_request *r = take_posted(h->ctx, h->src, h->tag);
    if (r) {
      set_source(r, h->src, h->tag);
      r->rndv_total = h->len;
      send_cts(r, h->src, h->sreq);
      size_t want = prefix < r->bytes ? prefix : r->bytes;
      p->in_req = r;
      p->in_dst = r->data;
      p->in_want = want;
      p->in_discard = prefix - want;
    } else {
      fmpi_unexp *u = new_unexp(FMPI_F_RTS, h->src, h->ctx, h->tag, h->len, prefix);
      u->sreq = h->sreq;
      u->prefix = prefix;
      p->in_ux = u;
      p->in_dst = u->data;
      p->in_want = prefix;
      p->in_discard = 0;
    }
    p->in_payload = prefix > 0;
    if (!p->in_payload) {
      p->in_req = NULL;
      p->in_ux = NULL;
    }
    break;
  }
  case FMPI_F_CTS: {
    fmpi_request *s = req_check(h->sreq);
    size_t off = s->rndv_prefix; /* less than s->bytes: a prefix is never the whole message */
    do {
      size_t n = s->bytes - off > FMPI_DATA_CHUNK_BYTES ? FMPI_DATA_CHUNK_BYTES : s->bytes - off;
      fmpi_item *it = calloc(1, sizeof *it);
      if (it == NULL)
        fmpi_fatal("out of memory");
      it->hdr.kind = FMPI_F_DATA;
      it->hdr.ctx = s->ctx;
      it->hdr.src = fmpi_st.rank;
      it->hdr.tag = s->tag;
      it->hdr.len = n;
      it->hdr.rreq = h->rreq;
      it->hdr.offset = off;
      it->payload = s->data + off;
      it->req = s;
      off += n;
      it->completes_req = off >= s->bytes;
      fmpi_enqueue(p, it);
    } while (off < s->bytes);
    break;
  }
  case FMPI_F_DATA: {
    fmpi_request *r = req_check(h->rreq);
    /* a message's bytes come in order: its prefix (with the RTS), then its data frames */
    if (h->offset != r->rndv_got)
      fmpi_fatal("rank %d sent data at offset %llu of a message it had sent %llu bytes of", p->rank,
                 (unsigned long long)h->offset, (unsigned long long)r->rndv_got);
    size_t want = 0;
    if (h->offset < r->bytes)
      want = h->len < r->bytes - h->offset ? h->len : r->bytes - h->offset;
    p->in_req = r;
    p->in_dst = r->data + h->offset;
    p->in_want = want;
    p->in_discard = h->len - want;
    p->in_payload = true;
    break;
  }
  default:
    fmpi_fatal("rank %d sent a frame of unknown kind %u", p->rank, h->kind);
  }
}

void fmpi_on_payload_done(fmpi_peer *p)
{
  fmpi_hdr *h = &p->in_hdr;
  fmpi_request *r = p->in_req;
  fmpi_unexp *u = p->in_ux;
  p->in_req = NULL;
  p->in_ux = NULL;
  if (h->kind == FMPI_F_EAGER) {
    if (r) {
      r->status.ferry_bytes = (long long)(h->len < r->bytes ? h->len : r->bytes);
      if (h->len > r->bytes)
        r->status.MPI_ERROR = MPI_ERR_TRUNCATE;
      fmpi_req_complete(r);
    } else {
      u->got = u->len;
      if (u->claimed) {
        fmpi_request *c = u->claimed;
        copy_into(c, u->data, u->len);
        free(u->data);
        free(u);
        fmpi_req_complete(c);
      }
    }
  } else if (h->kind == FMPI_F_RTS) {
    if (r) {
      r->rndv_got += h->offset;
    } else {
      u->got = u->prefix;
      if (u->claimed) {
        take_prefix(u->claimed, u->data, u->prefix);
        free(u->data);
        free(u);
      }
    }
  } else if (h->kind == FMPI_F_DATA) {
    r->rndv_got += h->len;
    if (r->rndv_got >= r->rndv_total) {
      r->status.ferry_bytes = (long long)(r->rndv_total < r->bytes ? r->rndv_total : r->bytes);
      if (r->rndv_total > r->bytes)
        r->status.MPI_ERROR = MPI_ERR_TRUNCATE;
      fmpi_req_complete(r);
    }
  }
}

/* A message to this rank itself: matched or queued right away (copied). */
void fmpi_deliver_local(fmpi_request *s)
{
  fmpi_request *r = take_posted(s->ctx, fmpi_st.rank, s->tag);
  if (r) {
    set_source(r, fmpi_st.rank, s->tag);
    copy_into(r, s->data, s->bytes);
    fmpi_req_complete(r);
    return;
  }
  fmpi_unexp *u = new_unexp(FMPI_F_EAGER, fmpi_st.rank, s->ctx, s->tag, s->bytes, s->bytes);
  if (s->bytes)
    memcpy(u->data, s->data, s->bytes);
  u->got = u->len;
}

/* ---- posting and waiting ---- */

int fmpi_isend(const void *buf, int count, MPI_Datatype type, int dest, int tag, fmpi_comm *c, uint32_t ctx,
               bool sync, fmpi_request **out)
{
  if (dest == MPI_PROC_NULL) {
    fmpi_request *r = fmpi_req_new(true, c, ctx, dest, tag, buf, 0, MPI_BYTE);
    r->complete = true;
    *out = r;
    return MPI_SUCCESS;
  }
  int world = c->world[dest];
  fmpi_request *r = fmpi_req_new(true, c, ctx, world, tag, buf, count, type);
  r->sync = sync;
  *out = r;
  fmpi_send_post(r);
  return MPI_SUCCESS;
}

/* Clears what a completed transfer left in r before MPI_Start arms it again;
 * a send packs the user's buffer anew (it may have changed since). */
void fmpi_req_rearm(fmpi_request *r)
{
  r->complete = false;
  memset(&r->status, 0, sizeof r->status);
  r->status.MPI_ERROR = MPI_SUCCESS;
  r->rndv_total = r->rndv_got = 0;
  r->next = NULL;
  if (r->is_send && r->packbuf)
    fmpi_pack(fmpi_type_get(r->type), r->buf, r->count, r->packbuf);
}

/* Starts a send request set up by fmpi_req_new (peer: world rank, lock held):
 * to this rank itself, eagerly, or with a request-to-send. */
void fmpi_send_post(fmpi_request *r)
{
  fmpi_st.sent_messages++;
  if (r->peer == fmpi_st.rank) {
    fmpi_deliver_local(r);
    r->complete = true;
    return;
  }
  fmpi_peer *p = &fmpi_st.peers[r->peer];
  bool eager = !r->sync && r->bytes <= FMPI_EAGER_LIMIT_BYTES;
  /* The app's sends to one rank with no progress pass between them (a burst)
   * go out together (fmpi_enqueue): an Isend's frame of up to
   * FMPI_BATCH_PAYLOAD_BYTES waits as it is; a blocking send's small frame
   * takes a copy of its payload, so the send completes now. */
  bool held = eager && ((fmpi_st.posting_isend && r->bytes <= FMPI_BATCH_PAYLOAD_BYTES) ||
                        (fmpi_st.posting_send && sizeof(fmpi_hdr) + r->bytes <= FMPI_SEND_COPY_BYTES)) &&
              fmpi_burst(p);
  bool copied = held && fmpi_st.posting_send;
  fmpi_item *it = calloc(1, sizeof *it + (copied ? r->bytes : 0));
  if (it == NULL)
    fmpi_fatal("out of memory");
  it->hdr.ctx = r->ctx;
  it->hdr.src = fmpi_st.rank;
  it->hdr.tag = r->tag;
  it->hdr.len = r->bytes;
  it->held = held;
  if (copied) {
    it->hdr.kind = FMPI_F_EAGER;
    memcpy(it + 1, r->data, r->bytes);
    it->payload = (const uint8_t *)(it + 1);
    fmpi_req_complete(r);
  } else if (eager) {
    it->hdr.kind = FMPI_F_EAGER;
    it->req = r;
    it->payload = r->data;
    it->completes_req = true;
  } else {
    /* a request-to-send carrying the message's first bytes (not for an Ssend:
     * its CTS says the receive started, and it sends everything after that) */
    it->req = r;
    it->hdr.kind = FMPI_F_RTS;
    it->hdr.sreq = (uint64_t)(uintptr_t)r;
    r->rndv_prefix = r->sync ? 0 : FMPI_RNDV_PREFIX_BYTES < r->bytes ? FMPI_RNDV_PREFIX_BYTES : 0;
    it->hdr.offset = r->rndv_prefix;
    it->payload = r->data;
  }
  fmpi_enqueue(p, it);
}

int fmpi_irecv(void *buf, int count, MPI_Datatype type, int src, int tag, fmpi_comm *c, uint32_t ctx,
               fmpi_request **out)
{
  if (src == MPI_PROC_NULL) {
    fmpi_request *r = fmpi_req_new(false, c, ctx, src, tag, buf, 0, MPI_BYTE);
    r->status.MPI_SOURCE = MPI_PROC_NULL;
    r->status.MPI_TAG = MPI_ANY_TAG;
    r->complete = true;
    *out = r;
    return MPI_SUCCESS;
  }
  int world = src == MPI_ANY_SOURCE ? MPI_ANY_SOURCE : c->world[src];
  fmpi_request *r = fmpi_req_new(false, c, ctx, world, tag, buf, count, type);
  *out = r;
  fmpi_recv_post(r);
  return MPI_SUCCESS;
}

/* Starts a receive set up by fmpi_req_new (lock held): it takes the first
 * matching unexpected message, or joins the posted queue. */
void fmpi_recv_post(fmpi_request *r)
{
  fmpi_unexp *u = find_unexp(r->ctx, r->peer, r->tag, true);
  if (u) {
    claim(r, u);
    return;
  }
  if (fmpi_st.posted_tail)
    fmpi_st.posted_tail->next = r;
  else
    fmpi_st.posted_head = r;
  fmpi_st.posted_tail = r;
}

/* Takes a receive that nothing matched yet off the posted queue (lock held);
 * false when it is not there (matched, or never posted). */
bool fmpi_recv_unpost(fmpi_request *r)
{
  fmpi_request *prev = NULL;
  for (fmpi_request *q = fmpi_st.posted_head; q; prev = q, q = q->next)
    if (q == r) {
      unlink_posted(prev, q);
      return true;
    }
  return false;
}

/* One progress pass of the app thread that stops reading as soon as done(arg)
 * holds (see fmpi_state.pass_done). */
static void app_progress(bool (*done)(void *), void *arg)
{
  fmpi_st.pass_done = done;
  fmpi_st.pass_arg = arg;
  fmpi_progress(0);
  fmpi_st.pass_done = NULL;
  fmpi_st.pass_arg = NULL;
}

/* Waits (lock held) until done(arg): busy-polls while bytes move and for
 * FMPI_SPIN_USEC after, then sleeps while the progress thread works. */
void fmpi_wait_cond(bool (*done)(void *), void *arg)
{
  double start = 0;
  unsigned spins = 0;
  uint64_t io_seen = fmpi_st.io_events;
  bool blocking = false, handed_over = false;
  while (!done(arg)) {
    if (!fmpi_st.thread_started) {
      app_progress(done, arg);
      continue;
    }
    if (!blocking && fmpi_st.state != ST_FLUSHED) {
      if (start == 0)
        start = fmpi_now();
      else if ((++spins & 63) == 0) {
        /* the spin ends FMPI_SPIN_USEC after the last byte moved, not after the
         * start of the wait: a long transfer (a window of large messages) would
         * otherwise go on at the pace of thread wake-ups */
        double now = fmpi_now();
        if (fmpi_st.io_events != io_seen) {
          io_seen = fmpi_st.io_events;
          start = now;
        } else if (now - start > FMPI_SPIN_USEC * 1e-6) {
          blocking = true;
        }
        sched_yield(); /* lets an oversubscribed core run the peer we wait for */
      }
      fmpi_st.app_spinning = true;
      app_progress(done, arg);
      handed_over = false; /* a pass may have left input in a stage, which poll does not report */
      continue;
    }
    fmpi_st.app_spinning = false;
    fmpi_st.app_blocked++;
    fmpi_st.app_polled_at = 0; /* the progress thread takes over now */
    if (!handed_over) {
      /* after the app's own passes: the progress thread leaves its park or its poll to take over (input
       * a pass left in a stage, frames held for the next pass, a new connection to watch). Not again
       * at every return of this wait with no pass between: woken for nothing, the thread came back
       * from poll at once, broadcast, and the two threads took turns for as long as the wait lasted,
       * two cores busy (8 ranks on 2 cores waiting for one writer: minutes). */
      fmpi_unpark();
      fmpi_wake();
      handed_over = true;
    }
    pthread_cond_wait(&fmpi_st.done_cond, &fmpi_st.lock);
    fmpi_st.app_blocked--;
  }
  fmpi_st.app_spinning = false;
}

typedef struct reqs_arg {
  fmpi_request **reqs;
  int n;
} reqs_arg;

static bool all_done(void *arg)
{
  reqs_arg *a = arg;
  for (int i = 0; i < a->n; i++)
    if (a->reqs[i] && !a->reqs[i]->complete)
      return false;
  return true;
}

/* Waits for internal requests (lock held), keeping them. */
void fmpi_wait_reqs_keep(fmpi_request **reqs, int n)
{
  reqs_arg a = { reqs, n };
  fmpi_wait_cond(all_done, &a);
}

/* Waits for internal requests and releases them. */
void fmpi_wait_reqs(fmpi_request **reqs, int n)
{
  fmpi_wait_reqs_keep(reqs, n);
  for (int i = 0; i < n; i++)
    if (reqs[i]) {
      fmpi_req_release(reqs[i]);
      reqs[i] = NULL;
    }
}

void fmpi_status_out(fmpi_request *r, MPI_Status *st)
{
  if (st != MPI_STATUS_IGNORE && st != NULL)
    *st = r->status;
}

int fmpi_check_pt2pt(fmpi_comm *c, int count, MPI_Datatype type, int peer, int tag, bool recv, bool any_tag_ok)
{
  if (count < 0)
    return MPI_ERR_COUNT;
  fmpi_type *t = fmpi_type_get(type);
  if (t == NULL || !t->committed)
    return MPI_ERR_TYPE;
  if (peer != MPI_PROC_NULL && !(recv && peer == MPI_ANY_SOURCE) && (peer < 0 || peer >= c->size))
    return MPI_ERR_RANK;
  if (tag < 0 && !(any_tag_ok && tag == MPI_ANY_TAG))
    return MPI_ERR_TAG;
  return MPI_SUCCESS;
}

#define GET_COMM(h, name)                                \
  FMPI_CHECK_INIT(name);                                 \
  fmpi_comm *c = fmpi_comm_get(h);                       \
  if (c == NULL)                                         \
    return fmpi_error(NULL, MPI_ERR_COMM, name)

int fmpi_req_handle(fmpi_request *r, MPI_Request *h)
{
  r->handle = fmpi_table_add(&fmpi_requests, r);
  *h = r->handle;
  return MPI_SUCCESS;
}

static int isend_common(const void *buf, int count, MPI_Datatype type, int dest, int tag, MPI_Comm comm,
                        MPI_Request *request, bool sync, const char *name)
{
  GET_COMM(comm, name);
  int rv;
  fmpi_request *r;
  if ((rv = fmpi_check_pt2pt(c, count, type, dest, tag, false, false)) != MPI_SUCCESS)
    return fmpi_error(c, rv, name);
  fmpi_lock();
  fmpi_st.posting_isend = true; /* a wait comes later: a burst of these may go out together (fmpi_enqueue) */
  fmpi_isend(buf, count, type, dest, tag, c, c->ctx, sync, &r);
  fmpi_st.posting_isend = false;
  fmpi_req_handle(r, request);
  fmpi_unlock();
  return MPI_SUCCESS;
}

int PMPI_Isend(const void *buf, int count, MPI_Datatype type, int dest, int tag, MPI_Comm comm, MPI_Request *request)
{
  return isend_common(buf, count, type, dest, tag, comm, request, false, "MPI_Isend");
}

int PMPI_Issend(const void *buf, int count, MPI_Datatype type, int dest, int tag, MPI_Comm comm, MPI_Request *request)
{
  return isend_common(buf, count, type, dest, tag, comm, request, true, "MPI_Issend");
}

int PMPI_Irecv(void *buf, int count, MPI_Datatype type, int src, int tag, MPI_Comm comm, MPI_Request *request)
{
  GET_COMM(comm, "MPI_Irecv");
  int rv;
  fmpi_request *r;
  if ((rv = fmpi_check_pt2pt(c, count, type, src, tag, true, true)) != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Irecv");
  fmpi_lock();
  fmpi_irecv(buf, count, type, src, tag, c, c->ctx, &r);
  fmpi_req_handle(r, request);
  fmpi_unlock();
  return MPI_SUCCESS;
}

static int send_common(const void *buf, int count, MPI_Datatype type, int dest, int tag, MPI_Comm comm, bool sync,
                       const char *name)
{
  GET_COMM(comm, name);
  int rv;
  fmpi_request *r;
  if ((rv = fmpi_check_pt2pt(c, count, type, dest, tag, false, false)) != MPI_SUCCESS)
    return fmpi_error(c, rv, name);
  fmpi_lock();
  fmpi_st.posting_send = true; /* a burst of these may go out together (fmpi_send_post) */
  fmpi_isend(buf, count, type, dest, tag, c, c->ctx, sync, &r);
  fmpi_st.posting_send = false;
  fmpi_wait_reqs(&r, 1);
  fmpi_unlock();
  return MPI_SUCCESS;
}

int PMPI_Send(const void *buf, int count, MPI_Datatype type, int dest, int tag, MPI_Comm comm)
{
  return send_common(buf, count, type, dest, tag, comm, false, "MPI_Send");
}

int PMPI_Ssend(const void *buf, int count, MPI_Datatype type, int dest, int tag, MPI_Comm comm)
{
  return send_common(buf, count, type, dest, tag, comm, true, "MPI_Ssend");
}

/* The end of a blocking receive (lock held): waits for r, gives its status, releases it; its error code. */
static int recv_finish(fmpi_request *r, MPI_Status *status)
{
  reqs_arg a = { &r, 1 };
  fmpi_wait_cond(all_done, &a);
  fmpi_status_out(r, status);
  int rv = r->status.MPI_ERROR;
  fmpi_req_release(r);
  return rv;
}

int PMPI_Recv(void *buf, int count, MPI_Datatype type, int src, int tag, MPI_Comm comm, MPI_Status *status)
{
  GET_COMM(comm, "MPI_Recv");
  int rv;
  fmpi_request *r;
  if ((rv = fmpi_check_pt2pt(c, count, type, src, tag, true, true)) != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Recv");
  fmpi_lock();
  fmpi_irecv(buf, count, type, src, tag, c, c->ctx, &r);
  rv = recv_finish(r, status);
  fmpi_unlock();
  return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Recv");
}

int PMPI_Sendrecv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, int dest, int sendtag, void *recvbuf,
                  int recvcount, MPI_Datatype recvtype, int source, int recvtag, MPI_Comm comm, MPI_Status *status)
{
  GET_COMM(comm, "MPI_Sendrecv");
  int rv;
  fmpi_request *r[2];
  if ((rv = fmpi_check_pt2pt(c, sendcount, sendtype, dest, sendtag, false, false)) != MPI_SUCCESS ||
      (rv = fmpi_check_pt2pt(c, recvcount, recvtype, source, recvtag, true, true)) != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Sendrecv");
  fmpi_lock();
  fmpi_irecv(recvbuf, recvcount, recvtype, source, recvtag, c, c->ctx, &r[0]);
  fmpi_isend(sendbuf, sendcount, sendtype, dest, sendtag, c, c->ctx, false, &r[1]);
  reqs_arg a = { r, 2 };
  fmpi_wait_cond(all_done, &a);
  fmpi_status_out(r[0], status);
  rv = r[0]->status.MPI_ERROR;
  fmpi_req_release(r[0]);
  fmpi_req_release(r[1]);
  fmpi_unlock();
  return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Sendrecv");
}

int PMPI_Sendrecv_replace(void *buf, int count, MPI_Datatype type, int dest, int sendtag, int source, int recvtag,
                          MPI_Comm comm, MPI_Status *status)
{
  FMPI_CHECK_INIT("MPI_Sendrecv_replace");
  fmpi_type *t = fmpi_type_get(type);
  if (t == NULL || count < 0)
    return fmpi_error(fmpi_comm_get(comm), t ? MPI_ERR_COUNT : MPI_ERR_TYPE, "MPI_Sendrecv_replace");
  size_t n = (size_t)count * t->size;
  uint8_t *tmp = malloc(n ? n : 1);
  if (tmp == NULL)
    fmpi_fatal("out of memory");
  fmpi_pack(t, buf, count, tmp);
  int rv = PMPI_Sendrecv(tmp, (int)n, MPI_BYTE, dest, sendtag, buf, count, type, source, recvtag, comm, status);
  free(tmp);
  return rv;
}

typedef struct probe_arg {
  uint32_t ctx;
  int src, tag;
  fmpi_unexp *found;
} probe_arg;

static bool probe_done(void *arg)
{
  probe_arg *a = arg;
  a->found = find_unexp(a->ctx, a->src, a->tag, false);
  return a->found != NULL;
}

static void probe_status(fmpi_comm *c, fmpi_unexp *u, MPI_Status *status)
{
  if (status == MPI_STATUS_IGNORE || status == NULL)
    return;
  status->MPI_SOURCE = c->local[u->src];
  status->MPI_TAG = u->tag;
  status->MPI_ERROR = MPI_SUCCESS;
  status->ferry_cancelled = 0;
  status->ferry_bytes = (long long)u->len;
}

static void null_status(MPI_Status *status)
{
  if (status == MPI_STATUS_IGNORE || status == NULL)
    return;
  status->MPI_SOURCE = MPI_PROC_NULL;
  status->MPI_TAG = MPI_ANY_TAG;
  status->MPI_ERROR = MPI_SUCCESS;
  status->ferry_cancelled = 0;
  status->ferry_bytes = 0;
}

/* ---- matched probes: a message taken off the unexpected queue, received later ---- */

typedef struct fmpi_message {
  fmpi_unexp *u;
  fmpi_comm *comm;
} fmpi_message;

static fmpi_table messages; /* MPI_Message handles */

/* Takes the unexpected message a probe found (lock held) out of the queue:
 * no other receive can match it now. */
static MPI_Message take_message(fmpi_comm *c, const probe_arg *a)
{
  fmpi_message *m = malloc(sizeof *m);
  if (m == NULL)
    fmpi_fatal("out of memory");
  m->u = find_unexp(a->ctx, a->src, a->tag, true); /* the first match: the one the probe saw */
  m->comm = c;
  return fmpi_table_add(&messages, m);
}

/* Probe, Iprobe, Mprobe and Improbe, past their checks: waits for a match
 * (wait) or looks after one progress pass; with message, takes the match off
 * the unexpected queue. */
static void probe_common(fmpi_comm *c, int source, int tag, bool wait, int *flag, MPI_Status *status,
                         MPI_Message *message)
{
  if (source == MPI_PROC_NULL) {
    *flag = 1;
    null_status(status);
    if (message)
      *message = MPI_MESSAGE_NO_PROC;
    return;
  }
  probe_arg a = { c->ctx, source == MPI_ANY_SOURCE ? source : c->world[source], tag, NULL };
  fmpi_lock();
  if (wait) {
    fmpi_wait_cond(probe_done, &a);
  } else if (!probe_done(&a) && fmpi_st.state != ST_FLUSHED) {
    fmpi_progress(0);
    probe_done(&a);
  }
  *flag = a.found != NULL;
  if (a.found) {
    probe_status(c, a.found, status);
    if (message)
      *message = take_message(c, &a);
  }
  fmpi_unlock();
}

#define PROBE_CHECKS(name)                                                        \
  GET_COMM(comm, name);                                                           \
  int rv = fmpi_check_pt2pt(c, 0, MPI_BYTE, source, tag, true, true);             \
  if (rv != MPI_SUCCESS)                                                          \
    return fmpi_error(c, rv, name)

int PMPI_Probe(int source, int tag, MPI_Comm comm, MPI_Status *status)
{
  PROBE_CHECKS("MPI_Probe");
  int flag;
  probe_common(c, source, tag, true, &flag, status, NULL);
  return MPI_SUCCESS;
}

int PMPI_Iprobe(int source, int tag, MPI_Comm comm, int *flag, MPI_Status *status)
{
  PROBE_CHECKS("MPI_Iprobe");
  probe_common(c, source, tag, false, flag, status, NULL);
  return MPI_SUCCESS;
}

int PMPI_Mprobe(int source, int tag, MPI_Comm comm, MPI_Message *message, MPI_Status *status)
{
  PROBE_CHECKS("MPI_Mprobe");
  int flag;
  probe_common(c, source, tag, true, &flag, status, message);
  return MPI_SUCCESS;
}

int PMPI_Improbe(int source, int tag, MPI_Comm comm, int *flag, MPI_Message *message, MPI_Status *status)
{
  PROBE_CHECKS("MPI_Improbe");
  probe_common(c, source, tag, false, flag, status, message);
  return MPI_SUCCESS;
}

/* Starts the receive of a matched message (lock held): *out is NULL for
 * MPI_MESSAGE_NO_PROC. An error code comes back with the communicator it
 * belongs to, for the caller to report once it has let go of the lock. */
static int receive_message(void *buf, int count, MPI_Datatype type, MPI_Message *message, fmpi_request **out,
                           fmpi_comm **comm)
{
  *out = NULL;
  *comm = NULL;
  if (*message == MPI_MESSAGE_NO_PROC) {
    *message = MPI_MESSAGE_NULL;
    return MPI_SUCCESS;
  }
  fmpi_message *m = fmpi_table_get(&messages, *message);
  if (m == NULL)
    return MPI_ERR_ARG; /* MPI_MESSAGE_NULL or not a message */
  *comm = m->comm;
  int rv = fmpi_check_pt2pt(m->comm, count, type, MPI_ANY_SOURCE, MPI_ANY_TAG, true, true);
  if (rv != MPI_SUCCESS)
    return rv;
  fmpi_request *r = fmpi_req_new(false, m->comm, m->u->ctx, m->u->src, m->u->tag, buf, count, type);
  fmpi_table_del(&messages, *message);
  claim(r, m->u);
  free(m);
  *message = MPI_MESSAGE_NULL;
  *out = r;
  return MPI_SUCCESS;
}

int PMPI_Mrecv(void *buf, int count, MPI_Datatype type, MPI_Message *message, MPI_Status *status)
{
  FMPI_CHECK_INIT("MPI_Mrecv");
  fmpi_request *r;
  fmpi_comm *c;
  fmpi_lock();
  int rv = receive_message(buf, count, type, message, &r, &c);
  if (rv != MPI_SUCCESS || r == NULL) {
    fmpi_unlock();
    if (rv != MPI_SUCCESS)
      return fmpi_error(c, rv, "MPI_Mrecv");
    null_status(status);
    return MPI_SUCCESS;
  }
  rv = recv_finish(r, status);
  fmpi_unlock();
  return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Mrecv");
}

int PMPI_Imrecv(void *buf, int count, MPI_Datatype type, MPI_Message *message, MPI_Request *request)
{
  FMPI_CHECK_INIT("MPI_Imrecv");
  fmpi_request *r;
  fmpi_comm *c;
  fmpi_lock();
  int rv = receive_message(buf, count, type, message, &r, &c);
  if (rv == MPI_SUCCESS && r != NULL)
    fmpi_req_handle(r, request);
  fmpi_unlock();
  if (rv != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Imrecv");
  if (r == NULL) /* MPI_MESSAGE_NO_PROC: a receive from MPI_PROC_NULL, complete at once */
    return PMPI_Irecv(buf, count, type, MPI_PROC_NULL, 0, MPI_COMM_SELF, request);
  return MPI_SUCCESS;
}

int PMPI_Get_count(const MPI_Status *status, MPI_Datatype type, int *count)
{
  fmpi_type *t = fmpi_type_get(type);
  if (t == NULL)
    return fmpi_error(NULL, MPI_ERR_TYPE, "MPI_Get_count");
  if (t->size == 0)
    *count = status->ferry_bytes == 0 ? 0 : MPI_UNDEFINED;
  else if (status->ferry_bytes % (long long)t->size)
    *count = MPI_UNDEFINED;
  else
    *count = (int)(status->ferry_bytes / (long long)t->size);
  return MPI_SUCCESS;
}

/* The size of the basic elements of t: of its one predefined type, else its own (0: none). */
static size_t element_size(fmpi_type *t)
{
  fmpi_type *b = t->basic ? fmpi_type_get(t->basic) : NULL;
  return b && b->size ? b->size : t->size;
}

static MPI_Count elements(const MPI_Status *status, fmpi_type *t)
{
  size_t es = element_size(t);
  return es && status->ferry_bytes % (long long)es == 0 ? status->ferry_bytes / (long long)es : MPI_UNDEFINED;
}

int PMPI_Get_elements(const MPI_Status *status, MPI_Datatype type, int *count)
{
  fmpi_type *t = fmpi_type_get(type);
  if (t == NULL)
    return fmpi_error(NULL, MPI_ERR_TYPE, "MPI_Get_elements");
  *count = (int)elements(status, t);
  return MPI_SUCCESS;
}

int PMPI_Get_elements_x(const MPI_Status *status, MPI_Datatype type, MPI_Count *count)
{
  fmpi_type *t = fmpi_type_get(type);
  if (t == NULL)
    return fmpi_error(NULL, MPI_ERR_TYPE, "MPI_Get_elements_x");
  *count = elements(status, t);
  return MPI_SUCCESS;
}

/* For generalized requests and layered libraries: what Get_elements and Get_count will say. */
int PMPI_Status_set_elements_x(MPI_Status *status, MPI_Datatype type, MPI_Count count)
{
  fmpi_type *t = fmpi_type_get(type);
  if (t == NULL)
    return fmpi_error(NULL, MPI_ERR_TYPE, "MPI_Status_set_elements_x");
  if (count < 0)
    return fmpi_error(NULL, MPI_ERR_COUNT, "MPI_Status_set_elements_x");
  status->ferry_bytes = count * (long long)element_size(t);
  return MPI_SUCCESS;
}

int PMPI_Status_set_elements(MPI_Status *status, MPI_Datatype type, int count)
{
  return PMPI_Status_set_elements_x(status, type, count);
}

int PMPI_Status_set_cancelled(MPI_Status *status, int flag)
{
  status->ferry_cancelled = flag != 0;
  return MPI_SUCCESS;
}

/* ---- completion ---- */

static fmpi_request *lookup(MPI_Request h)
{
  fmpi_request *r = fmpi_table_get(&fmpi_requests, h);
  if (r == NULL)
    fmpi_fatal("invalid MPI_Request %d", h);
  return r;
}

static void empty_status(MPI_Status *status)
{
  if (status == MPI_STATUS_IGNORE || status == NULL)
    return;
  status->MPI_SOURCE = MPI_ANY_SOURCE;
  status->MPI_TAG = MPI_ANY_TAG;
  status->MPI_ERROR = MPI_SUCCESS;
  status->ferry_cancelled = 0;
  status->ferry_bytes = 0;
}

/* Where a handle stands for Wait/Test: MPI_REQUEST_NULL and an inactive
 * persistent request both count as INACTIVE (Wait returns at once with an
 * empty status; the *any and *some calls skip them). */
enum handle_state { H_INACTIVE, H_PENDING, H_DONE };

static int handle_state(MPI_Request h)
{
  if (h == MPI_REQUEST_NULL)
    return H_INACTIVE;
  fmpi_request *r = lookup(h);
  if (r->persistent && !r->active)
    return H_INACTIVE;
  return r->complete ? H_DONE : H_PENDING;
}

/* A completed request's status: a receive's, or a send's (empty but for its cancellation). */
static void request_status(fmpi_request *r, MPI_Status *status)
{
  if (r->greq)
    fmpi_greq_status(r, status);
  else if (!r->is_send)
    fmpi_status_out(r, status);
  else if (status != MPI_STATUS_IGNORE && status != NULL) {
    empty_status(status);
    status->ferry_cancelled = r->status.ferry_cancelled;
  }
}

/* Hands a completed request's status to the user and frees it (a persistent
 * one becomes inactive and keeps its handle). An inactive persistent request
 * gives an empty status. Returns the request's error. */
static int finish(MPI_Request *h, MPI_Status *status)
{
  fmpi_request *r = lookup(*h);
  if (r->persistent && !r->active) {
    empty_status(status);
    return MPI_SUCCESS;
  }
  if (r->greq) {
    *h = MPI_REQUEST_NULL;
    return fmpi_greq_finish(r, status);
  }
  int err = r->is_send ? MPI_SUCCESS : r->status.MPI_ERROR;
  request_status(r, status);
  if (r->persistent) {
    r->active = false;
    return err;
  }
  fmpi_req_release(r);
  *h = MPI_REQUEST_NULL;
  return err;
}

typedef struct handles_arg {
  MPI_Request *h;
  int n;
  bool any;
} handles_arg;

/* all (!any): no request pending; any: one done, or none pending at all */
static bool handles_done(void *arg)
{
  handles_arg *a = arg;
  for (int i = 0; i < a->n; i++) {
    int st = handle_state(a->h[i]);
    if (a->any && st == H_DONE)
      return true;
    if (st == H_PENDING && !a->any)
      return false;
  }
  if (!a->any)
    return true;
  for (int i = 0; i < a->n; i++)
    if (handle_state(a->h[i]) == H_PENDING)
      return false;
  return true;
}

static fmpi_comm *req_comm(MPI_Request h)
{
  fmpi_request *r = fmpi_table_get(&fmpi_requests, h);
  return r ? r->comm : NULL;
}

int PMPI_Wait(MPI_Request *request, MPI_Status *status)
{
  FMPI_CHECK_INIT("MPI_Wait");
  if (handle_state(*request) == H_INACTIVE) {
    empty_status(status);
    return MPI_SUCCESS;
  }
  fmpi_comm *c = req_comm(*request);
  handles_arg a = { request, 1, false };
  fmpi_lock();
  fmpi_wait_cond(handles_done, &a);
  int err = finish(request, status);
  fmpi_unlock();
  return err == MPI_SUCCESS ? err : fmpi_error(c, err, "MPI_Wait");
}

static int complete_all(int count, MPI_Request requests[], MPI_Status *statuses)
{
  int err = MPI_SUCCESS;
  fmpi_comm *c = NULL;
  for (int i = 0; i < count; i++) {
    MPI_Status *st = statuses == MPI_STATUSES_IGNORE ? MPI_STATUS_IGNORE : &statuses[i];
    if (handle_state(requests[i]) == H_INACTIVE) {
      empty_status(st);
      continue;
    }
    c = req_comm(requests[i]);
    int e = finish(&requests[i], st);
    if (e != MPI_SUCCESS)
      err = MPI_ERR_IN_STATUS;
  }
  return err == MPI_SUCCESS ? err : fmpi_error(c, err, "MPI_Waitall");
}

int PMPI_Waitall(int count, MPI_Request requests[], MPI_Status *statuses)
{
  FMPI_CHECK_INIT("MPI_Waitall");
  handles_arg a = { requests, count, false };
  fmpi_lock();
  fmpi_wait_cond(handles_done, &a);
  int rv = complete_all(count, requests, statuses);
  fmpi_unlock();
  return rv;
}

int PMPI_Testall(int count, MPI_Request requests[], int *flag, MPI_Status *statuses)
{
  FMPI_CHECK_INIT("MPI_Testall");
  handles_arg a = { requests, count, false };
  int rv = MPI_SUCCESS;
  fmpi_lock();
  if (!handles_done(&a) && fmpi_st.state != ST_FLUSHED)
    fmpi_progress(0);
  *flag = handles_done(&a);
  if (*flag)
    rv = complete_all(count, requests, statuses);
  fmpi_unlock();
  return rv;
}

/* The first completed request of the array, or -1. */
static int first_done(int count, MPI_Request requests[])
{
  for (int i = 0; i < count; i++)
    if (handle_state(requests[i]) == H_DONE)
      return i;
  return -1;
}

static int any_common(int count, MPI_Request requests[], int *index, int *flag, MPI_Status *status, bool wait)
{
  handles_arg a = { requests, count, true };
  int rv = MPI_SUCCESS;
  fmpi_lock();
  if (wait)
    fmpi_wait_cond(handles_done, &a);
  else if (!handles_done(&a) && fmpi_st.state != ST_FLUSHED)
    fmpi_progress(0);
  int i = first_done(count, requests);
  *flag = handles_done(&a);
  *index = MPI_UNDEFINED;
  if (i >= 0) {
    fmpi_comm *c = req_comm(requests[i]);
    *index = i;
    rv = finish(&requests[i], status);
    if (rv != MPI_SUCCESS)
      rv = fmpi_error(c, rv, wait ? "MPI_Waitany" : "MPI_Testany");
  } else if (*flag) {
    empty_status(status);
  }
  fmpi_unlock();
  return rv;
}

int PMPI_Waitany(int count, MPI_Request requests[], int *index, MPI_Status *status)
{
  FMPI_CHECK_INIT("MPI_Waitany");
  int flag;
  return any_common(count, requests, index, &flag, status, true);
}

int PMPI_Testany(int count, MPI_Request requests[], int *index, int *flag, MPI_Status *status)
{
  FMPI_CHECK_INIT("MPI_Testany");
  return any_common(count, requests, index, flag, status, false);
}

static int some_common(int incount, MPI_Request requests[], int *outcount, int indices[], MPI_Status *statuses,
                       bool wait)
{
  handles_arg a = { requests, incount, true };
  int err = MPI_SUCCESS;
  fmpi_comm *c = NULL;
  fmpi_lock();
  if (wait)
    fmpi_wait_cond(handles_done, &a);
  else if (!handles_done(&a) && fmpi_st.state != ST_FLUSHED)
    fmpi_progress(0);
  bool active = false;
  *outcount = 0;
  for (int i = 0; i < incount; i++) {
    int hs = handle_state(requests[i]);
    if (hs == H_INACTIVE)
      continue;
    active = true;
    if (hs != H_DONE)
      continue;
    MPI_Status *st = statuses == MPI_STATUSES_IGNORE ? MPI_STATUS_IGNORE : &statuses[*outcount];
    c = req_comm(requests[i]);
    if (finish(&requests[i], st) != MPI_SUCCESS)
      err = MPI_ERR_IN_STATUS;
    indices[(*outcount)++] = i;
  }
  if (!active)
    *outcount = MPI_UNDEFINED;
  fmpi_unlock();
  return err == MPI_SUCCESS ? err : fmpi_error(c, err, wait ? "MPI_Waitsome" : "MPI_Testsome");
}

int PMPI_Waitsome(int incount, MPI_Request requests[], int *outcount, int indices[], MPI_Status *statuses)
{
  FMPI_CHECK_INIT("MPI_Waitsome");
  return some_common(incount, requests, outcount, indices, statuses, true);
}

int PMPI_Testsome(int incount, MPI_Request requests[], int *outcount, int indices[], MPI_Status *statuses)
{
  FMPI_CHECK_INIT("MPI_Testsome");
  return some_common(incount, requests, outcount, indices, statuses, false);
}

int PMPI_Test(MPI_Request *request, int *flag, MPI_Status *status)
{
  FMPI_CHECK_INIT("MPI_Test");
  if (handle_state(*request) == H_INACTIVE) {
    *flag = 1;
    empty_status(status);
    return MPI_SUCCESS;
  }
  fmpi_comm *c = req_comm(*request);
  int err = MPI_SUCCESS;
  fmpi_lock();
  fmpi_request *r = lookup(*request);
  if (!r->complete && fmpi_st.state != ST_FLUSHED)
    fmpi_progress(0);
  *flag = r->complete;
  if (*flag)
    err = finish(request, status);
  fmpi_unlock();
  return err == MPI_SUCCESS ? err : fmpi_error(c, err, "MPI_Test");
}

/* MPI_Test that leaves the request as it is (not freed, still active). */
int PMPI_Request_get_status(MPI_Request request, int *flag, MPI_Status *status)
{
  FMPI_CHECK_INIT("MPI_Request_get_status");
  if (handle_state(request) == H_INACTIVE) {
    *flag = 1;
    empty_status(status);
    return MPI_SUCCESS;
  }
  fmpi_lock();
  fmpi_request *r = lookup(request);
  if (!r->complete && fmpi_st.state != ST_FLUSHED)
    fmpi_progress(0);
  *flag = r->complete;
  if (*flag)
    request_status(r, status);
  fmpi_unlock();
  return MPI_SUCCESS;
}

int PMPI_Request_free(MPI_Request *request)
{
  FMPI_CHECK_INIT("MPI_Request_free");
  if (*request == MPI_REQUEST_NULL)
    return fmpi_error(NULL, MPI_ERR_REQUEST, "MPI_Request_free");
  fmpi_lock();
  fmpi_request *r = lookup(*request);
  if (r->greq) {
    *request = MPI_REQUEST_NULL;
    int rv = fmpi_greq_free(r);
    fmpi_unlock();
    return rv == MPI_SUCCESS ? rv : fmpi_error(NULL, rv, "MPI_Request_free");
  }
  if (r->persistent ? !r->active || r->complete : r->complete) {
    fmpi_req_release(r);
  } else {
    fmpi_table_del(&fmpi_requests, r->handle);
    r->handle = 0;
    r->user_freed = true;
  }
  *request = MPI_REQUEST_NULL;
  fmpi_unlock();
  return MPI_SUCCESS;
}

int PMPI_Cancel(MPI_Request *request)
{
  FMPI_CHECK_INIT("MPI_Cancel");
  if (*request == MPI_REQUEST_NULL)
    return fmpi_error(NULL, MPI_ERR_REQUEST, "MPI_Cancel");
  fmpi_lock();
  fmpi_request *r = lookup(*request);
  if (r->greq) {
    int rv = fmpi_greq_cancel(r);
    fmpi_unlock();
    return rv == MPI_SUCCESS ? rv : fmpi_error(NULL, rv, "MPI_Cancel");
  }
  if (!r->is_send && !r->complete && (!r->persistent || r->active) && fmpi_recv_unpost(r)) {
    r->status.ferry_cancelled = 1;
    r->status.MPI_SOURCE = MPI_ANY_SOURCE;
    r->status.MPI_TAG = MPI_ANY_TAG;
    fmpi_req_complete(r);
  }
  fmpi_unlock();
  return MPI_SUCCESS;
}

/* A Fortran status is the C one's MPI_F_STATUS_SIZE integers: source, tag, error, then Ferry's fields. */
int PMPI_Status_c2f(const MPI_Status *c_status, MPI_Fint *f_status)
{
  if (c_status == NULL || c_status == MPI_STATUS_IGNORE || f_status == NULL)
    return fmpi_error(NULL, MPI_ERR_ARG, "MPI_Status_c2f");
  memcpy(f_status, c_status, sizeof *c_status);
  return MPI_SUCCESS;
}

int PMPI_Status_f2c(const MPI_Fint *f_status, MPI_Status *c_status)
{
  if (f_status == NULL || c_status == NULL || c_status == MPI_STATUS_IGNORE)
    return fmpi_error(NULL, MPI_ERR_ARG, "MPI_Status_f2c");
  memcpy(c_status, f_status, sizeof *c_status);
  return MPI_SUCCESS;
}

int PMPI_Test_cancelled(const MPI_Status *status, int *flag)
{
  *flag = status->ferry_cancelled;
  return MPI_SUCCESS;
}

/* ---- blocking helpers for collectives (collective context, lock not held) ---- */

int fmpi_send_internal(const void *buf, int count, MPI_Datatype t, int dest, int tag, fmpi_comm *c)
{
  fmpi_request *r;
  fmpi_lock();
  fmpi_isend(buf, count, t, dest, tag, c, c->ctx + 1, false, &r);
  fmpi_wait_reqs(&r, 1);
  fmpi_unlock();
  return MPI_SUCCESS;
}

int fmpi_recv_internal(void *buf, int count, MPI_Datatype t, int src, int tag, fmpi_comm *c)
{
  fmpi_request *r;
  fmpi_lock();
  fmpi_irecv(buf, count, t, src, tag, c, c->ctx + 1, &r);
  int rv = recv_finish(r, MPI_STATUS_IGNORE);
  fmpi_unlock();
  return rv;
}

int fmpi_sendrecv_internal(const void *sbuf, int scount, MPI_Datatype st, int dest, void *rbuf, int rcount,
                           MPI_Datatype rt, int src, int tag, fmpi_comm *c)
{
  fmpi_request *r[2];
  fmpi_lock();
  fmpi_irecv(rbuf, rcount, rt, src, tag, c, c->ctx + 1, &r[0]);
  fmpi_isend(sbuf, scount, st, dest, tag, c, c->ctx + 1, false, &r[1]);
  reqs_arg a = { r, 2 };
  fmpi_wait_cond(all_done, &a);
  int rv = r[0]->status.MPI_ERROR;
  fmpi_req_release(r[0]);
  fmpi_req_release(r[1]);
  fmpi_unlock();
  return rv;
}
