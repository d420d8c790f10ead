/* Peer channels: direct rank-to-rank TCP, the progress engine, and the
 * flush / close / rewire cycle of a checkpoint.
 *
 * One TCP connection per pair of ranks carries both directions: with one
 * connection per direction every message needs a pure ACK packet of its own
 * on the critical path (measured: +3 us per half round trip on loopback,
 * 60% over raw TCP), while one connection lets the reply carry the ACK.
 * It is opened by the first rank that needs it. If both ranks connect at
 * once, the connection opened by the lower rank wins: the higher rank accepts
 * it and drops its own attempt, on which only its HELLO was written. A
 * connection carries data only after the acceptor answered the initiator's
 * HELLO with ACCEPT; a flushing acceptor answers REJECT (or just closes), and
 * the initiator keeps its queued frames and tries again later. So every
 * accepted connection delivers an end-of-channel marker in each direction at
 * a flush, and no frame is ever written into a connection that is then
 * thrown away.
 *
 * In fmpi_peer, out_fd is that one connection and out_state its state plus
 * this rank's sending side; in_state is the peer's sending side. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fmpi.h"
#include "gen/ferry-error-code.h"
#include "gen/rank-proto.h"

#define LISTEN_BACKLOG 128
#define RESUME_RETRY_SEC 0.05

static void check_flush_done(void);

int fmpi_listen(void)
{
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  int one = 1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, LISTEN_BACKLOG) != 0 ||
      getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  fmpi_st.listen_fd = fd;
  fmpi_st.listen_port = ntohs(sin.sin_port);
  return 0;
}

void fmpi_wake(void)
{
  uint64_t one = 1;
  if (fmpi_st.pt_polling && fmpi_st.wake_fd >= 0)
    (void)!write(fmpi_st.wake_fd, &one, sizeof one);
}

/* Ends the park of the progress thread (see fmpi_progress_main; lock held). */
void fmpi_unpark(void)
{
  uint64_t one = 1;
  __atomic_store_n(&fmpi_st.burst_wake, false, __ATOMIC_RELAXED);
  if (fmpi_st.pt_parked && fmpi_st.wake_fd >= 0)
    (void)!write(fmpi_st.wake_fd, &one, sizeof one);
}

/* Ends the park for a burst held for the next pass (fmpi_enqueue): the thread
 * gives the app FMPI_BURST_GRACE_USEC to make that pass itself first (lock held). */
static void unpark_for_burst(void)
{
  uint64_t one = 1;
  if (fmpi_st.pt_parked && fmpi_st.wake_fd >= 0) {
    __atomic_store_n(&fmpi_st.burst_wake, true, __ATOMIC_RELAXED);
    (void)!write(fmpi_st.wake_fd, &one, sizeof one);
  }
}

static void close_fd(int *fd)
{
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

static void schedule_retry(fmpi_peer *p)
{
  close_fd(&p->out_fd);
  p->out_state = OUT_RETRY;
  p->retry_at = fmpi_now() + p->retry_msec / 1000.0;
  p->retry_msec = p->retry_msec * 2 > FMPI_RETRY_MAX_MSEC ? FMPI_RETRY_MAX_MSEC : p->retry_msec * 2;
  check_flush_done(); /* a refused connection is not an open channel */
}

static void start_connect(fmpi_peer *p)
{
  struct sockaddr_in sin;
  int one = 1;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t)p->port);
  if (inet_pton(AF_INET, p->addr, &sin.sin_addr) != 1)
    fmpi_fatal("endpoint of rank %d has an invalid address '%s'", p->rank, p->addr);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    fmpi_fatal("socket: %s", strerror(errno));
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  p->out_fd = fd;
  if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0 && errno != EINPROGRESS) {
    schedule_retry(p);
    return;
  }
  p->out_state = OUT_CONNECTING;
  fmpi_wake();
}

/* A peer speaks another frame format: its runtime is another build of
 * libferrympi (the runtimes before version 2 sent 0 here). */
static void wire_mismatch(int rank, int32_t version)
{
  fmpi_fatal("rank %d runs a Ferry MPI runtime with channel version %d, this rank %d: build every program of the job with "
             "the same Ferry (ferry mpicc)", rank, version, FMPI_WIRE_VERSION);
}

/* Writes a control frame (HELLO, ACCEPT, REJECT) into a fresh socket. */
static int send_ctl(int fd, uint32_t kind, uint64_t extra)
{
  fmpi_hdr h;
  memset(&h, 0, sizeof h);
  h.kind = kind;
  h.src = fmpi_st.rank;
  h.tag = FMPI_WIRE_VERSION;
  h.offset = extra;
  return send(fd, &h, sizeof h, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)sizeof h ? 0 : -1;
}

/* Places the end-of-channel marker after the frame being written, never inside it. */
static void queue_marker(fmpi_peer *p)
{
  fmpi_item *m = calloc(1, sizeof *m);
  if (m == NULL)
    fmpi_fatal("out of memory");
  m->hdr.kind = FMPI_F_MARKER;
  m->hdr.src = fmpi_st.rank;
  if (p->head && p->head->done > 0) {
    m->next = p->head->next;
    p->head->next = m;
    if (p->tail == p->head)
      p->tail = m;
  } else {
    m->next = p->head;
    p->head = m;
    if (p->tail == NULL)
      p->tail = m;
  }
}

/* How long a rank that lost a peer waits before it fails. A peer is lost
 * mostly because its job is ending: the operator cancelled it (Ctrl-C of ferry
 * run), or a rank failed or called MPI_Abort and Ferry ends the others. This
 * rank's own signal follows within milliseconds and ends it quietly; failing
 * at once printed a "lost the connection" line from most ranks after every
 * Ctrl-C. A peer that died alone is still reported, this much later. */
#define FMPI_PEER_LOST_GRACE_MS 1000

static void peer_lost(fmpi_peer *p, const char *what)
{
  struct timespec left = { FMPI_PEER_LOST_GRACE_MS / 1000, (FMPI_PEER_LOST_GRACE_MS % 1000) * 1000000L };
  int saved = errno;
  while (nanosleep(&left, &left) != 0 && errno == EINTR)
    ;
  errno = saved;
  fmpi_fatal("lost the connection to rank %d (%s): it exited without MPI_Finalize or was killed", p->rank, what);
}

/* Padding between a large payload's header and its bytes. Measured on
 * loopback (bench/runtime-pingpong.ts, and raw TCP with the same framing): the
 * kernel's copies of a payload into and out of the socket run at half speed
 * when the payload's offset in the socket's pages and the user buffer's
 * address differ by a few dozen bytes modulo a cache line, which a 64-byte
 * header in front of a buffer from malloc (page offset 16) makes the common
 * case: 64 KiB ping-pong 24 us instead of 17, 256 KiB 53 instead of 33. A frame
 * written into an empty socket starts at a page boundary, so padding the
 * header by the buffer's offset modulo FMPI_PAD_ALIGN_BYTES puts both at the
 * same offset within a cache line, with at most 63 bytes on the wire. (Until
 * 2026-12-03 the padding matched the whole page offset, up to 4 KiB: no faster
 * on loopback, and over veth those extra bytes made a 64 KiB ping-pong
 * 21.7 us instead of 19.0, raw TCP 17.2; docs/runtime.md.) A frame queued
 * behind another (a stream of sends, the later data frames of a large message)
 * does not start at a page boundary, so only an eager frame queued alone is
 * padded (padding rendezvous data frames was not measured to gain). The
 * header's pad field lets any frame carry up to FMPI_PAD_MAX_BYTES. */
static uint32_t payload_pad(const fmpi_item *it, size_t plen)
{
  if (plen < FMPI_PAD_MIN_BYTES || it->follows || it->hdr.kind != FMPI_F_EAGER)
    return 0;
  return (uint32_t)(((uintptr_t)it->payload - sizeof it->hdr) & (FMPI_PAD_ALIGN_BYTES - 1));
}

static const uint8_t pad_zeros[FMPI_PAD_ALIGN_BYTES]; /* the padding a sender writes */
static uint8_t pad_sink[FMPI_PAD_MAX_BYTES];           /* where a receiver drops it */

/* Payload bytes a frame carries after its header and padding. */
static size_t payload_len(const fmpi_item *it)
{
  if (it->hdr.kind == FMPI_F_RTS)
    return it->hdr.offset; /* the message's first bytes */
  return it->hdr.kind == FMPI_F_EAGER || it->hdr.kind == FMPI_F_DATA ? it->hdr.len : 0;
}

/* Bytes of a frame on the wire; numbers it and fixes its padding the first time. */
static size_t frame_bytes(fmpi_peer *p, fmpi_item *it)
{
  size_t plen = payload_len(it);
  if (it->hdr.seq == 0) {
    /* once, even if the first write attempt would block */
    it->hdr.seq = ++p->out_seq;
    it->hdr.pad = payload_pad(it, plen);
  }
  return sizeof it->hdr + it->hdr.pad + plen;
}

/* A small eager frame: copied whole into a send buffer (and coalesced with the
 * small eager frames queued behind it). */
static bool small_eager(const fmpi_item *it)
{
  return it->hdr.kind == FMPI_F_EAGER && it->done == 0 && sizeof it->hdr + it->hdr.len <= FMPI_SEND_COPY_BYTES;
}

/* An eager frame, not started, that a sendmsg() may carry behind another one. */
static bool batchable_eager(const fmpi_item *it)
{
  return it->hdr.kind == FMPI_F_EAGER && it->done == 0 && it->hdr.len <= FMPI_BATCH_PAYLOAD_BYTES;
}

/* The head frame is written: take it off the queue. false when the channel
 * must not go on writing (a marker went out). */
static bool head_written(fmpi_peer *p)
{
  fmpi_item *it = p->head;
  p->head = it->next;
  if (p->head == NULL)
    p->tail = NULL;
  if (it->hdr.kind == FMPI_F_MARKER) {
    p->out_state = OUT_MARKED;
    free(it);
    check_flush_done();
    return false;
  }
  if (it->completes_req && it->req)
    fmpi_req_complete(it->req);
  free(it);
  return true;
}

/* Accounts for the result `w` of a write of `len` bytes from the head of the
 * queue on: the frames written whole leave it, the first one cut short keeps
 * its offset. true when all of it went and writing may go on. */
static bool written(fmpi_peer *p, ssize_t w, size_t len)
{
  if (w < 0) {
    if (errno == EAGAIN || errno == EINTR)
      return false;
    peer_lost(p, strerror(errno));
  }
  fmpi_st.io_events++;
  size_t left = (size_t)w;
  while (left > 0) {
    fmpi_item *h = p->head;
    size_t rest = frame_bytes(p, h) - h->done;
    if (left < rest) {
      h->done += left;
      return false;
    }
    left -= rest;
    h->done += rest;
    if (!head_written(p))
      return false;
  }
  return (size_t)w == len;
}

/* Writes queued frames (header, padding, payload) while the socket takes them. */
static void write_queue(fmpi_peer *p)
{
  while (p->out_state == OUT_OPEN && p->head && p->out_fd >= 0) {
    fmpi_item *it = p->head;
    if (it->done == 0 && frame_bytes(p, it) <= FMPI_SEND_COPY_BYTES) {
      /* a small frame: header and payload copied together and written with
       * send(), which costs less than sendmsg here. Measured with raw TCP on
       * loopback, 64-byte header + 16 bytes: sendmsg with the header and
       * payload as two iovecs (or one) 4.14 us half round trip, send of one
       * copied buffer 3.87 us (raw: 3.82); Ferry at 4 KiB 5.17 -> 5.02 us.
       * Small eager frames queued behind it (a burst of sends, see
       * fmpi_enqueue) join it in the same send(): one syscall for many
       * messages. */
      static uint8_t small[FMPI_COALESCE_BYTES];
      size_t len = 0;
      for (fmpi_item *q = it; q; q = q->next) {
        if (q != it && !small_eager(q))
          break;
        size_t qwhole = frame_bytes(p, q);
        size_t qlen = payload_len(q);
        if (q != it && len + qwhole > sizeof small)
          break;
        memcpy(small + len, &q->hdr, sizeof q->hdr);
        memset(small + len + sizeof q->hdr, 0, q->hdr.pad);
        if (qlen)
          memcpy(small + len + sizeof q->hdr + q->hdr.pad, q->payload, qlen);
        len += qwhole;
        if (it->hdr.kind != FMPI_F_EAGER)
          break; /* a control frame goes alone */
      }
      if (!written(p, send(p->out_fd, small, len, MSG_NOSIGNAL | MSG_DONTWAIT), len))
        return;
      continue;
    }
    /* Larger frames go from the user's buffer with sendmsg(); eager frames of up
     * to FMPI_BATCH_PAYLOAD_BYTES queued behind an eager head go in the same
     * call (a burst of Isends, see fmpi_enqueue). */
    struct iovec iov[3 * FMPI_BATCH_FRAMES];
    int n = 0, frames = 0;
    size_t len = 0;
    for (fmpi_item *q = it; q && frames < FMPI_BATCH_FRAMES; q = q->next, frames++) {
      if (q != it && (it->hdr.kind != FMPI_F_EAGER || !batchable_eager(q)))
        break;
      size_t qwhole = frame_bytes(p, q);
      const struct iovec part[3] = {
        { &q->hdr, sizeof q->hdr }, { (void *)pad_zeros, q->hdr.pad }, { (void *)q->payload, payload_len(q) },
      };
      size_t skip = q->done;
      for (int k = 0; k < 3; k++) {
        if (skip >= part[k].iov_len) {
          skip -= part[k].iov_len;
          continue;
        }
        iov[n].iov_base = (uint8_t *)part[k].iov_base + skip;
        iov[n++].iov_len = part[k].iov_len - skip;
        skip = 0;
      }
      len += qwhole - q->done;
    }
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = iov;
    mh.msg_iovlen = (size_t)n;
    if (!written(p, sendmsg(p->out_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT), len))
      return;
  }
}

/* Whether an app's send to p continues a burst: no progress pass since its
 * previous one to p (fmpi_send_post asks only for the sends a burst may hold). */
bool fmpi_burst(fmpi_peer *p)
{
  bool burst = p->small_pass == fmpi_st.passes + 1;
  p->small_pass = fmpi_st.passes + 1;
  return burst;
}

/* Queues a frame for p and writes it when the channel is idle. A frame held
 * as part of a burst (fmpi_send_post) waits for the next pass: the wait that
 * follows, or the progress thread, woken for it, as soon as the app leaves
 * MPI. That pass sends the burst's frames together; the first frame of a
 * burst goes at once, so a lone send's latency is unchanged. */
void fmpi_enqueue(fmpi_peer *p, fmpi_item *it)
{
  it->next = NULL;
  it->follows = p->head != NULL;
  if (p->tail)
    p->tail->next = it;
  else
    p->head = it;
  p->tail = it;
  if (p->out_state == OUT_NONE && fmpi_st.state == ST_RUNNING)
    start_connect(p);
  else if (p->out_state == OUT_OPEN && p->head == it && !it->held)
    write_queue(p);
  if (it->held) {
    /* should the app compute now instead of waiting, the progress thread sends
     * the burst: woken once per burst, not once per send. A burst of larger
     * frames gives the app's own pass a grace first (burst_grace); small ones
     * gain from the thread starting at once (measured: a stream of 256 B
     * Isends 0.6x as fast with the grace, one of 4-16 KiB ones 1.2-1.7x) */
    if (!fmpi_st.deferred) {
      fmpi_st.deferred = true;
      if (payload_len(it) > FMPI_BURST_GRACE_MIN_BYTES)
        unpark_for_burst();
      else
        fmpi_unpark();
      fmpi_wake();
    }
  } else if (p->head) {
    fmpi_wake();
  }
}

static void in_readable(fmpi_peer *p);

/* Set on every connected channel socket (at accept, or once its connect has
 * completed, before its HELLO), before it is known to win: a socket of a simultaneous connection
 * that is refused is closed soon, but until then it is one of the rank's.
 * A channel to a rank on another host keeps at most FMPI_REMOTE_NOTSENT_BYTES
 * not yet transmitted in the socket; the rest of a batch or of a large message
 * waits in the channel's queue. With a whole batch (up to 1 MiB) in the
 * socket, the peer's ACKs released segments from the other CPU's softirq while
 * the sender wrote from its own, they arrived out of order and TCP resent them
 * as lost (between namespace hosts: 2,942 segments resent in 2.6 GB, 3.2 GB/s;
 * none with the limit, 6.0 GB/s). On the host's own address the limit only
 * costs (docs/runtime.md), so those channels keep the default. */
static void limit_unsent(int fd)
{
  struct sockaddr_in self, peer;
  socklen_t self_len = sizeof self, peer_len = sizeof peer;
  if (getsockname(fd, (struct sockaddr *)&self, &self_len) != 0 || getpeername(fd, (struct sockaddr *)&peer, &peer_len) != 0 ||
      self.sin_addr.s_addr == peer.sin_addr.s_addr)
    return;
  int lowat = FMPI_REMOTE_NOTSENT_BYTES;
  setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
}

/* The connection to p is usable both ways: reset the frame parser. */
static void conn_open(fmpi_peer *p)
{
  p->out_state = OUT_OPEN;
  p->retry_msec = FMPI_RETRY_MIN_MSEC;
  p->in_state = IN_OPEN;
  p->stage_off = p->stage_len = 0;
  p->in_hdr_got = 0;
  p->in_payload = false;
  p->in_big = false;
}

static void conn_event(fmpi_peer *p, short revents)
{
  if (p->out_state == OUT_CONNECTING) {
    if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
      return;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(p->out_fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err == 0)
      limit_unsent(p->out_fd);
    if (err != 0 || send_ctl(p->out_fd, FMPI_F_HELLO, fmpi_st.job_hash) != 0) {
      schedule_retry(p);
      return;
    }
    p->out_state = OUT_AWAIT_ACCEPT;
    return;
  }
  if (p->out_state == OUT_AWAIT_ACCEPT) {
    if (!(revents & (POLLIN | POLLERR | POLLHUP)))
      return;
    fmpi_hdr h;
    ssize_t r = recv(p->out_fd, &h, sizeof h, MSG_PEEK | MSG_DONTWAIT);
    if ((r < 0 && (errno == EAGAIN || errno == EINTR)) || (r > 0 && r < (ssize_t)sizeof h))
      return;
    if (r == (ssize_t)sizeof h)
      (void)!recv(p->out_fd, &h, sizeof h, MSG_DONTWAIT);
    if (r != (ssize_t)sizeof h || h.kind != FMPI_F_ACCEPT) {
      schedule_retry(p); /* REJECT (flushing, or its own connection won) or closed */
      return;
    }
    if (h.tag != FMPI_WIRE_VERSION)
      wire_mismatch(p->rank, h.tag);
    conn_open(p);
    if (fmpi_st.state == ST_FLUSHING)
      queue_marker(p);
    /* frames of the peer may follow the ACCEPT in the same segment */
  }
  if (p->in_state == IN_OPEN) {
    if (revents & (POLLIN | POLLERR | POLLHUP))
      in_readable(p);
  } else if (revents & (POLLIN | POLLERR | POLLHUP)) {
    /* the peer's side ended (marker or BYE): only its close can come now */
    uint8_t b;
    ssize_t r = recv(p->out_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    if (r > 0)
      fmpi_fatal("rank %d sent data after its end-of-channel frame", p->rank);
    if (p->out_state == OUT_MARKED || fmpi_st.state == ST_FINALIZED) {
      close_fd(&p->out_fd);
      return;
    }
    peer_lost(p, r == 0 ? "connection closed" : strerror(errno));
  }
  if (p->out_state == OUT_OPEN && p->out_fd >= 0)
    write_queue(p);
}

/* A complete frame header arrived: check its sequence number and act on it.
 * Returns false when the channel stops here (marker or BYE). */
static bool header_done(fmpi_peer *p)
{
  p->in_hdr_got = 0;
  if (p->in_hdr.seq != p->in_seq + 1)
    fmpi_fatal("channel from rank %d: frame %llu arrived, expected %llu (lost or duplicated frame)", p->rank,
               (unsigned long long)p->in_hdr.seq, (unsigned long long)(p->in_seq + 1));
  p->in_seq++;
  if (p->in_hdr.kind == FMPI_F_MARKER || p->in_hdr.kind == FMPI_F_BYE) {
    if (p->stage_off != p->stage_len)
      fmpi_fatal("rank %d sent data after its end-of-channel frame", p->rank);
    /* after BYE the socket stays: this rank's own BYE may still be queued */
    p->in_state = p->in_hdr.kind == FMPI_F_MARKER ? IN_MARKED : IN_CLOSED;
    check_flush_done();
    return false;
  }
  fmpi_on_header(p);
  p->in_skip = 0;
  if (p->in_payload) {
    if (p->in_hdr.pad >= FMPI_PAD_MAX_BYTES)
      fmpi_fatal("rank %d sent a frame with %u bytes of padding", p->rank, p->in_hdr.pad);
    p->in_skip = p->in_hdr.pad;
  }
  p->in_big = p->in_payload && p->in_want + p->in_discard >= FMPI_STAGE_BYTES;
  return true;
}

/* Parsed but unhandled input of a channel: bytes in its stage, or a payload
 * read to its end whose completion has not run. */
static bool in_buffered(const fmpi_peer *p)
{
  return p->stage_off < p->stage_len || (p->in_payload && p->in_skip == 0 && p->in_want == 0 && p->in_discard == 0);
}

/* In an app thread pass: a request completed since `*seen` and what the app
 * waits for may hold now, so the channel read stops and lets it look. */
static bool app_should_look(uint64_t *seen)
{
  if (!fmpi_st.app_pass || fmpi_st.completions == *seen)
    return false;
  *seen = fmpi_st.completions;
  return fmpi_st.pass_done == NULL || fmpi_st.pass_done(fmpi_st.pass_arg);
}

/* Reads frames from the peer's connection until it is drained. Headers and
 * small frames come through a staging buffer (many in one recv); once a
 * header has told where a payload goes, the rest of it is read straight into
 * its destination, with the stage as a second buffer for what follows.
 * It stops earlier, with input possibly left in the stage (the next app pass,
 * or the progress thread before it polls, goes on from there):
 * - in an app pass, once the request the app waits for completed: a sender
 *   streaming faster than this rank parses would otherwise keep this loop
 *   going, turning every later message into an unexpected copy before the
 *   app could post its receive;
 * - after FMPI_READ_BUDGET_BYTES from the socket, so one busy channel does
 *   not hold the lock (and the other channels) for as long as it streams. */
static void in_readable(fmpi_peer *p)
{
  if (p->out_fd < 0)
    return;
  if (p->stage == NULL && (p->stage = malloc(FMPI_STAGE_BYTES)) == NULL)
    fmpi_fatal("out of memory");
  bool drained = false;
  size_t budget = FMPI_READ_BUDGET_BYTES;
  uint64_t seen = fmpi_st.completions;
  while (p->in_state == IN_OPEN) {
    /* read-ahead: a stage full after small frames (many per recv); after a large
     * payload just the next header, so the payload that may follow it is not
     * copied through the stage */
    size_t ahead = p->in_big ? sizeof p->in_hdr : FMPI_STAGE_BYTES;
    if (p->in_payload && p->in_skip == 0 && p->in_want == 0 && p->in_discard == 0) {
      p->in_payload = false;
      fmpi_on_payload_done(p);
      continue;
    }
    if (app_should_look(&seen))
      return;
    size_t avail = p->stage_len - p->stage_off;
    if (avail == 0) {
      if (drained || budget == 0)
        return; /* the last recv came back short (nothing more for now), or enough for one turn */
      ssize_t r;
      size_t ask;
      if (p->in_payload && (p->in_skip > 0 || p->in_want > 0)) {
        /* the padding dropped, the rest of the payload straight into its
         * destination, what follows into the stage: one recvmsg */
        struct iovec iov[3];
        int k = 0;
        if (p->in_skip > 0)
          iov[k++] = (struct iovec){ pad_sink, p->in_skip };
        if (p->in_want > 0)
          iov[k++] = (struct iovec){ p->in_dst, p->in_want };
        iov[k++] = (struct iovec){ p->stage, ahead };
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)k;
        ask = p->in_skip + p->in_want + ahead;
        r = recvmsg(p->out_fd, &mh, MSG_DONTWAIT);
        if (r > 0) {
          size_t left = (size_t)r;
          size_t n = left < p->in_skip ? left : p->in_skip;
          p->in_skip -= n;
          left -= n;
          n = left < p->in_want ? left : p->in_want;
          p->in_dst += n;
          p->in_want -= n;
          left -= n;
          p->stage_off = 0;
          p->stage_len = left;
        }
      } else {
        ask = p->in_payload ? FMPI_STAGE_BYTES : ahead; /* a discarded payload goes through the stage */
        r = recv(p->out_fd, p->stage, ask, MSG_DONTWAIT);
        if (r > 0) {
          p->stage_off = 0;
          p->stage_len = (size_t)r;
        }
      }
      if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
      if (r <= 0)
        peer_lost(p, r == 0 ? "connection closed" : strerror(errno));
      fmpi_st.io_events++;
      drained = (size_t)r < ask;
      budget -= (size_t)r < budget ? (size_t)r : budget;
      continue;
    }
    const uint8_t *src = p->stage + p->stage_off;
    size_t n;
    if (!p->in_payload) {
      n = sizeof p->in_hdr - p->in_hdr_got;
      n = n < avail ? n : avail;
      memcpy((uint8_t *)&p->in_hdr + p->in_hdr_got, src, n);
      p->in_hdr_got += n;
      p->stage_off += n;
      if (p->in_hdr_got == sizeof p->in_hdr && !header_done(p))
        return;
    } else if (p->in_skip > 0) {
      n = p->in_skip < avail ? p->in_skip : avail;
      p->in_skip -= n;
      p->stage_off += n;
    } else if (p->in_want > 0) {
      n = p->in_want < avail ? p->in_want : avail;
      memcpy(p->in_dst, src, n);
      p->in_dst += n;
      p->in_want -= n;
      p->stage_off += n;
    } else {
      n = p->in_discard < avail ? p->in_discard : avail;
      p->in_discard -= n;
      p->stage_off += n;
    }
  }
}

static void remove_pending(int i)
{
  fmpi_st.pending_fds[i] = fmpi_st.pending_fds[--fmpi_st.npending];
}

/* A connection we accepted has sent (part of) its HELLO. */
static void pending_readable(int i)
{
  int fd = fmpi_st.pending_fds[i];
  fmpi_hdr h;
  ssize_t r = recv(fd, &h, sizeof h, MSG_PEEK | MSG_DONTWAIT);
  if (r < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (r > 0 && r < (ssize_t)sizeof h)
    return;
  remove_pending(i);
  if (r != (ssize_t)sizeof h) {
    close(fd);
    return;
  }
  (void)!recv(fd, &h, sizeof h, MSG_DONTWAIT);
  if (h.kind != FMPI_F_HELLO || h.offset != fmpi_st.job_hash || h.src < 0 || h.src >= fmpi_st.size ||
      h.src == fmpi_st.rank) {
    fprintf(stderr, "ferrympi: rank %d: refused a connection that is not from a rank of this job\n", fmpi_st.rank);
    close(fd);
    return;
  }
  if (h.tag != FMPI_WIRE_VERSION) {
    /* the initiator reads this rank's version in the ACCEPT and stops too: it would otherwise retry
     * against a rank that is gone (the agent ends the job then; a test harness may not) */
    send_ctl(fd, FMPI_F_ACCEPT, 0);
    wire_mismatch(h.src, h.tag);
  }
  fmpi_peer *p = &fmpi_st.peers[h.src];
  /* Flushing: the initiator keeps its frames and comes back after the resume.
   * A connection to the peer exists already, or both connect at once and
   * this rank is the lower one: the initiator waits for this rank's. */
  bool own_attempt = p->out_state == OUT_CONNECTING || p->out_state == OUT_AWAIT_ACCEPT;
  if (fmpi_st.state != ST_RUNNING || p->out_state == OUT_OPEN || p->out_state == OUT_MARKED ||
      p->in_state == IN_CLOSED || (own_attempt && fmpi_st.rank < h.src)) {
    send_ctl(fd, FMPI_F_REJECT, 0);
    close(fd);
    return;
  }
  if (send_ctl(fd, FMPI_F_ACCEPT, 0) != 0) {
    close(fd);
    return;
  }
  close_fd(&p->out_fd); /* a losing attempt of this rank (only its HELLO was written) */
  p->out_fd = fd;
  conn_open(p);
  write_queue(p);
  in_readable(p);
}

static void accept_all(void)
{
  for (;;) {
    int one = 1;
    int fd = accept4(fmpi_st.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    limit_unsent(fd);
    int *p = realloc(fmpi_st.pending_fds, (size_t)(fmpi_st.npending + 1) * sizeof(int));
    if (p == NULL)
      fmpi_fatal("out of memory");
    fmpi_st.pending_fds = p;
    fmpi_st.pending_fds[fmpi_st.npending++] = fd;
  }
}

enum { W_WAKE, W_LISTEN, W_AGENT, W_PENDING, W_CONN };

/* A busy-poll pass of the app thread over the open connections only: a
 * nonblocking recv (and send, if frames are queued) on each, no poll(). A
 * poll() before the recv costs a syscall per pass and, measured, makes a
 * ping-pong slower than recv alone; the other descriptors (listener, agent,
 * connects in progress) are polled by the full pass, see fmpi_progress. */
static void spin_pass(void)
{
  if (fmpi_st.agent_rx_len > 0)
    fmpi_agent_dispatch();
  for (int r = 0; r < fmpi_st.size; r++) {
    fmpi_peer *p = &fmpi_st.peers[r];
    if (p->out_state != OUT_OPEN && p->out_state != OUT_MARKED)
      continue;
    if (p->in_state == IN_OPEN)
      in_readable(p);
    if (p->out_state == OUT_OPEN && p->head)
      write_queue(p);
  }
}

/* One round of the engine (lock held). timeout_ms 0: a busy-poll pass by the
 * app thread (mostly spin_pass; every FMPI_SPIN_POLL_USEC a full poll of
 * every descriptor: measured, a full poll every 32 passes as well cost one
 * poll() every two or three ping-pong messages for nothing); otherwise the
 * progress thread waits in poll without the lock. */
void fmpi_progress(int timeout_ms)
{
  /* one poll set for the progress thread (it polls without the lock) and one
   * for busy-polling app passes, so neither rebuilds the other's set */
  static struct poll_set {
    struct pollfd *fds;
    int *what, *who;
    int cap;
  } sets[2];
  static double full_poll_at;
  fmpi_st.app_pass = timeout_ms == 0;
  fmpi_st.passes++;
  fmpi_st.deferred = false; /* this pass (or the caller's next) writes what waits */
  if (timeout_ms == 0) {
    double now = fmpi_now();
    fmpi_st.app_polled_at = now;
    if (now - full_poll_at < FMPI_SPIN_POLL_USEC * 1e-6 && now >= full_poll_at) {
      spin_pass();
      return;
    }
    full_poll_at = now;
  }
  struct poll_set *set = &sets[timeout_ms != 0];
  int need = 3 + fmpi_st.npending + fmpi_st.size;
  if (need > set->cap) {
    set->fds = realloc(set->fds, (size_t)need * sizeof *set->fds);
    set->what = realloc(set->what, (size_t)need * sizeof *set->what);
    set->who = realloc(set->who, (size_t)need * sizeof *set->who);
    if (!set->fds || !set->what || !set->who)
      fmpi_fatal("out of memory");
    set->cap = need;
  }
  struct pollfd *fds = set->fds;
  int *what = set->what, *who = set->who;
  if (fmpi_st.agent_rx_len > 0) {
    fmpi_agent_dispatch(); /* frames that arrived with the endpoint table */
    /* one of them a flush request that found no channel open: the rank is
     * flushed already, and its progress thread must wait for SIGUSR2 in
     * fmpi_progress_main, not in a poll of nothing but wake_fd */
    if (fmpi_st.state == ST_FLUSHED)
      return;
  }
  if (timeout_ms != 0) {
    /* input an app pass left in a stage: poll would not report it. Handling
     * it may change everything (a marker can complete a flush and close every
     * socket), so the round ends here and the caller looks again. */
    bool handled = false;
    for (int r = 0; r < fmpi_st.size; r++) {
      fmpi_peer *p = &fmpi_st.peers[r];
      if ((p->out_state == OUT_OPEN || p->out_state == OUT_MARKED) && p->in_state == IN_OPEN && in_buffered(p)) {
        in_readable(p);
        handled = true;
      }
    }
    if (handled)
      return;
  }
  int n = 0;
#define ADD(FD, EV, WHAT, WHO) do { fds[n].fd = (FD); fds[n].events = (EV); fds[n].revents = 0; what[n] = (WHAT); who[n] = (WHO); n++; } while (0)
  if (timeout_ms != 0 && fmpi_st.wake_fd >= 0)
    ADD(fmpi_st.wake_fd, POLLIN, W_WAKE, 0);
  if (fmpi_st.listen_fd >= 0)
    ADD(fmpi_st.listen_fd, POLLIN, W_LISTEN, 0);
  if (fmpi_st.agent_fd >= 0)
    ADD(fmpi_st.agent_fd, POLLIN, W_AGENT, 0);
  for (int i = 0; i < fmpi_st.npending; i++)
    ADD(fmpi_st.pending_fds[i], POLLIN, W_PENDING, fmpi_st.pending_fds[i]);
  double next_retry = 0;
  for (int r = 0; r < fmpi_st.size; r++) {
    fmpi_peer *p = &fmpi_st.peers[r];
    if (p->out_fd >= 0) {
      short ev = p->out_state == OUT_CONNECTING ? 0 : POLLIN;
      if (p->out_state == OUT_CONNECTING || (p->out_state == OUT_OPEN && p->head))
        ev |= POLLOUT;
      ADD(p->out_fd, ev, W_CONN, r);
    } else if (p->out_state == OUT_RETRY && fmpi_st.state == ST_RUNNING) {
      if (next_retry == 0 || p->retry_at < next_retry)
        next_retry = p->retry_at;
    }
  }
#undef ADD
  if (timeout_ms != 0 && next_retry != 0) {
    double ms = (next_retry - fmpi_now()) * 1000 + 1;
    timeout_ms = ms < 0 ? 0 : ms > 1000 ? 1000 : (int)ms;
  }
  int ready;
  if (timeout_ms != 0) {
    fmpi_st.pt_polling = true;
    fmpi_unlock();
    ready = poll(fds, (nfds_t)n, timeout_ms);
    fmpi_lock();
    fmpi_st.pt_polling = false;
    fmpi_st.app_pass = false; /* the app thread may have run passes meanwhile */
  } else {
    ready = poll(fds, (nfds_t)n, 0);
  }
  for (int i = 0; i < n && ready > 0; i++) {
    if (!fds[i].revents)
      continue;
    switch (what[i]) {
    case W_WAKE: {
      uint64_t v;
      (void)!read(fmpi_st.wake_fd, &v, sizeof v);
      break;
    }
    case W_LISTEN:
      if (fmpi_st.listen_fd == fds[i].fd)
        accept_all();
      break;
    case W_AGENT:
      if (fmpi_st.agent_fd == fds[i].fd)
        fmpi_agent_readable();
      break;
    case W_PENDING:
      for (int k = 0; k < fmpi_st.npending; k++)
        if (fmpi_st.pending_fds[k] == who[i]) {
          pending_readable(k);
          break;
        }
      break;
    case W_CONN:
      if (fmpi_st.peers[who[i]].out_fd == fds[i].fd)
        conn_event(&fmpi_st.peers[who[i]], fds[i].revents);
      break;
    }
  }
  if (next_retry != 0 && fmpi_st.state == ST_RUNNING) {
    double now = fmpi_now();
    for (int r = 0; r < fmpi_st.size; r++) {
      fmpi_peer *p = &fmpi_st.peers[r];
      if (p->out_state == OUT_RETRY && p->retry_at <= now)
        start_connect(p);
    }
  }
}

/* ---- flush, close, rewire ---- */

void fmpi_flush_begin(uint64_t epoch, uint64_t request_id)
{
  /* a SIGUSR2 from before this flush is stale: it must not end the coming wait */
  sigset_t usr2;
  struct timespec zero = { 0, 0 };
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  while (sigtimedwait(&usr2, NULL, &zero) == SIGUSR2)
    ;
  fmpi_st.state = ST_FLUSHING;
  fmpi_st.flush_epoch = epoch;
  fmpi_st.flush_request_id = request_id;
  fmpi_st.drained_messages = fmpi_st.drained_bytes = 0;
  for (int r = 0; r < fmpi_st.size; r++) {
    fmpi_peer *p = &fmpi_st.peers[r];
    if (p->out_state == OUT_RETRY)
      p->out_state = OUT_NONE; /* reconnect after the resume */
    if (p->out_state == OUT_OPEN) {
      queue_marker(p);
      write_queue(p);
    }
  }
  check_flush_done();
  fmpi_wake();
}

/* Every open channel carried its marker both ways: close everything, report, wait. */
static void check_flush_done(void)
{
  if (fmpi_st.state != ST_FLUSHING)
    return;
  for (int r = 0; r < fmpi_st.size; r++) {
    fmpi_peer *p = &fmpi_st.peers[r];
    if (p->out_state == OUT_CONNECTING || p->out_state == OUT_AWAIT_ACCEPT || p->out_state == OUT_OPEN)
      return;
    if (p->in_state == IN_OPEN)
      return;
  }
  uint32_t closed = 0;
  for (int r = 0; r < fmpi_st.size; r++) {
    fmpi_peer *p = &fmpi_st.peers[r];
    closed += p->out_fd >= 0;
    close_fd(&p->out_fd);
    p->out_state = OUT_NONE;
    if (p->in_state != IN_CLOSED)
      p->in_state = IN_NONE;
  }
  for (int i = 0; i < fmpi_st.npending; i++)
    close(fmpi_st.pending_fds[i]);
  fmpi_st.npending = 0;
  close_fd(&fmpi_st.listen_fd);
  fmpi_scratch_release(); /* before the dump: no image carries the collectives' kept temporaries */
  fmpi_FlushReply rep = {
    .epoch = fmpi_st.flush_epoch, .drained_messages = fmpi_st.drained_messages,
    .drained_bytes = fmpi_st.drained_bytes, .channels_closed = closed,
    .unexpected_messages = fmpi_unexpected_count(),
  };
  if (fmpi_st.agent_fd >= 0)
    fmpi_agent_send_notice(FMPI_RANKMESSAGE_FLUSH_REPLY, &rep, fmpi_st.flush_request_id, 0, NULL);
  fmpi_agent_close();
  fmpi_st.state = ST_FLUSHED;
  /* the progress thread may be parked, or in a poll of the descriptors just
   * closed (an app pass finished the flush): either way it must come back and
   * wait for SIGUSR2 */
  fmpi_unpark();
  fmpi_wake();
  pthread_cond_broadcast(&fmpi_st.done_cond);
}

/* After SIGUSR2 (lock held): new listener, the agent that now holds the socket
 * name, a new endpoint table; then queued frames go out on new connections. */
void fmpi_resume(void)
{
  int rv;
  while ((rv = fmpi_listen()) != 0) {
    fprintf(stderr, "ferrympi: rank %d: cannot open a listener after resume: %s\n", fmpi_st.rank, strerror(-rv));
    usleep((useconds_t)(RESUME_RETRY_SEC * 1e6));
  }
  while ((rv = fmpi_agent_connect()) != 0) {
    fprintf(stderr, "ferrympi: rank %d: no agent at @%s after resume (%s), retrying\n", fmpi_st.rank,
            fmpi_st.agent_name, strerror(-rv));
    usleep((useconds_t)(RESUME_RETRY_SEC * 1e6));
  }
  fmpi_agent_hello(fmpi_st.flush_epoch);
  fmpi_st.state = ST_RUNNING;
  fmpi_st.app_polled_at = 0; /* the monotonic clock of another host may be far behind */
  for (int r = 0; r < fmpi_st.size; r++) {
    fmpi_peer *p = &fmpi_st.peers[r];
    p->retry_msec = FMPI_RETRY_MIN_MSEC;
    p->retry_at = 0;
    p->out_state = OUT_NONE;
    if (p->in_state == IN_MARKED)
      p->in_state = IN_NONE;
    if (p->head && r != fmpi_st.rank)
      start_connect(p);
  }
  pthread_cond_broadcast(&fmpi_st.done_cond);
}

static bool not_flushed(void *arg)
{
  (void)arg;
  return fmpi_st.state != ST_FLUSHING && fmpi_st.state != ST_FLUSHED;
}

/* Waits (lock not held) while the rank is flushing or flushed: a write to a
 * file starts no sooner than the resume. From the flush to the dump the files
 * stay as they were at the cut, for every rank; and a restored rank (flushed
 * until the resume, which comes once every rank of a restart is restored)
 * does not change a file that CRIU checks for another rank still being
 * restored ("File ... has bad size"). */
void fmpi_hold_while_flushed(void)
{
  fmpi_lock();
  if (!not_flushed(NULL))
    fmpi_wait_cond(not_flushed, NULL);
  fmpi_unlock();
}

/* MPI_Finalize (lock held): send what is queued, say BYE both ways, close. */
static bool shutdown_sent(void *arg)
{
  (void)arg;
  for (int r = 0; r < fmpi_st.size; r++)
    if (fmpi_st.peers[r].head)
      return false;
  return true;
}

static bool shutdown_done(void *arg)
{
  (void)arg;
  for (int r = 0; r < fmpi_st.size; r++)
    if (fmpi_st.peers[r].head || fmpi_st.peers[r].in_state == IN_OPEN)
      return false;
  return true;
}

void fmpi_channels_shutdown(void)
{
  fmpi_wait_cond(shutdown_sent, NULL);
  fmpi_st.state = ST_FINALIZED; /* from here a peer closing its side is expected */
  for (int r = 0; r < fmpi_st.size; r++) {
    fmpi_peer *p = &fmpi_st.peers[r];
    if (p->out_state == OUT_OPEN) {
      fmpi_item *it = calloc(1, sizeof *it);
      if (it == NULL)
        fmpi_fatal("out of memory");
      it->hdr.kind = FMPI_F_BYE;
      it->hdr.src = fmpi_st.rank;
      fmpi_enqueue(p, it);
    }
  }
  fmpi_wait_cond(shutdown_done, NULL);
  for (int r = 0; r < fmpi_st.size; r++) {
    close_fd(&fmpi_st.peers[r].out_fd);
  }
  for (int i = 0; i < fmpi_st.npending; i++)
    close(fmpi_st.pending_fds[i]);
  fmpi_st.npending = 0;
  close_fd(&fmpi_st.listen_fd);
}

/* Woken for a held burst (unpark_for_burst) while parked without the lock:
 * the app usually sends the burst itself, in the pass of the Wait that follows
 * its Isends. Taking the lock at once made the two threads take turns at it,
 * burst after burst (a stream of 64 KiB Isends between two namespace hosts: a
 * progress-thread pass every 3.6 messages, 10% of a core, futex handoffs), so
 * the thread gives the app FMPI_BURST_GRACE_USEC, again while the app is
 * inside MPI (FMPI_BURST_GRACE_ROUNDS times: a call that holds the lock
 * long without a pass, file I/O, is then waited for on the lock). True, lock
 * held: it takes over (the app left MPI with frames held, or an urgent wake
 * came: fmpi_unpark). False, no lock: the app's pass sent them; the park goes on. */
static bool burst_grace(struct pollfd *pf)
{
  const struct timespec grace = { 0, FMPI_BURST_GRACE_USEC * 1000 };
  uint64_t v;
  for (int round = 1;; round++) {
    if (ppoll(pf, 1, &grace, NULL) > 0) {
      (void)!read(fmpi_st.wake_fd, &v, sizeof v);
      if (!__atomic_load_n(&fmpi_st.burst_wake, __ATOMIC_RELAXED)) {
        fmpi_lock();
        return true;
      }
    }
    if (!__atomic_load_n(&fmpi_st.deferred, __ATOMIC_RELAXED))
      return false;
    if (pthread_mutex_trylock(&fmpi_st.lock) == 0) {
      if (fmpi_st.deferred)
        return true;
      fmpi_unlock();
      return false;
    }
    if (round == FMPI_BURST_GRACE_ROUNDS) {
      fmpi_lock();
      return true;
    }
  }
}

void *fmpi_progress_main(void *arg)
{
  (void)arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  fmpi_lock();
  while (!fmpi_st.stop) {
    if (fmpi_st.state == ST_FLUSHED) {
      int sig;
      fmpi_unlock();
      sigwait(&set, &sig);
      fmpi_lock();
      if (!fmpi_st.stop)
        fmpi_resume();
      continue;
    }
    double since_poll = fmpi_now() - fmpi_st.app_polled_at;
    if (!fmpi_st.app_blocked && !fmpi_st.deferred &&
        (fmpi_st.app_spinning || (since_poll >= 0 && since_poll < FMPI_PROGRESS_PARK_USEC * 1e-6))) {
      /* the app thread busy-polls inside MPI (or did a moment ago, between
       * calls): stay off the lock and off the CPU. The park is a sleep on
       * wake_fd without the lock (fmpi_unpark ends it), not a wait on a
       * condition variable: that one takes the lock back when it times out,
       * and the app holds the lock for as long as it spins, so the thread
       * would sit queued on the mutex and every unlock of the app (each MPI
       * call) would pay a futex wake and hand the CPU to this thread once
       * more (measured: thousands of futex calls and context switches a
       * second per rank in a ping-pong). After a timeout the lock is only
       * tried: held, the app still works inside MPI, so the park goes on. */
      struct pollfd pf = { .fd = fmpi_st.wake_fd, .events = POLLIN };
      uint64_t v;
      fmpi_st.pt_parked = true;
      fmpi_unlock();
      for (;;) {
        if (poll(&pf, 1, FMPI_PROGRESS_PARK_USEC / 1000) > 0) {
          (void)!read(fmpi_st.wake_fd, &v, sizeof v);
          if (__atomic_load_n(&fmpi_st.burst_wake, __ATOMIC_RELAXED)) {
            if (burst_grace(&pf))
              break; /* lock held: the thread takes over */
            continue; /* the app's own pass sent the burst */
          }
          fmpi_lock();
          break;
        }
        if (pthread_mutex_trylock(&fmpi_st.lock) == 0)
          break;
      }
      fmpi_st.pt_parked = false;
      continue;
    }
    fmpi_progress(-1);
    if (fmpi_st.app_blocked)
      pthread_cond_broadcast(&fmpi_st.done_cond);
  }
  fmpi_unlock();
  return NULL;
}
