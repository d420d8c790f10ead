/* The rank's side of the agent channel (proto/rank.proto): an abstract Unix
 * stream socket, frames of a 4-byte little-endian length + one RankMessage.
 *
 * The agent may crash and be restarted while the rank runs. Losing the
 * connection outside a flush is therefore not fatal: the rank keeps computing
 * and talking to its peers while a helper thread reconnects with backoff and,
 * once connected, says who it is (attach); after AGENT_REJOIN_LIMIT_SEC
 * without an agent the rank gives up with a clear message. A rank waiting for
 * its endpoint table reconnects and says hello again.
 *
 * Which agent: the one whose abstract socket FERRY_AGENT_SOCKET_FILE names at
 * the moment of each connect, else FERRY_AGENT_SOCKET. Every agent that
 * starts, restores or takes back the rank writes its own name there (in
 * ferry-init's directory, src/agent/rank-init-dir.ts): two agents of one
 * machine listen under two names, and a rank moved from one to the other, or
 * taken back by an agent started again under another name, must find the new
 * one rather than the name in its restored memory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fmpi.h"
#include "gen/ferry-error-code.h"
#include "gen/rank-proto.h"

#define AGENT_CONNECT_TRIES 200       /* at start-up: the agent is already listening */
#define AGENT_CONNECT_RETRY_MSEC 10
/* After losing the agent: how long a new one may take to appear, and the backoff between tries. */
#define AGENT_REJOIN_LIMIT_SEC 60
#define AGENT_REJOIN_MIN_MSEC 50
#define AGENT_REJOIN_MAX_MSEC 2000

/* While a reconnect thread looks for the next agent, agent_fd holds an eventfd
 * (placeholder_fd) in the poll set: the thread hands the new connection over
 * through handoff_fd and makes the eventfd readable, and fmpi_agent_readable
 * installs it under the lock. The thread never takes the lock itself: an app
 * thread busy-polling inside MPI could starve it. */
static int placeholder_fd = -1;
static int handoff_fd = -1;           /* __atomic */

/* Node binds an abstract name with the whole sockaddr_un (the name padded with
 * NULs to 108 bytes); C servers usually bind the exact length. Try both. */
static int try_connect(const struct sockaddr_un *sun, socklen_t len)
{
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  if (connect(fd, (const struct sockaddr *)sun, len) == 0)
    return fd;
  int err = errno;
  close(fd);
  return -err;
}

/* The name of the agent to connect to now (see the top of this file) into
 * `name`: the agent file's one line when it holds a usable name, else the
 * name last connected to. Reads a file: only at a connect, never per message. */
static void current_agent_name(char name[sizeof fmpi_st.agent_name])
{
  memcpy(name, fmpi_st.agent_name, sizeof fmpi_st.agent_name);
  if (fmpi_st.agent_file[0] == 0)
    return;
  int fd = open(fmpi_st.agent_file, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return; /* none written (an agent from before the file): the name it started with */
  char buf[sizeof fmpi_st.agent_name];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf - 1)) < 0 && errno == EINTR)
    ;
  close(fd);
  if (n <= 0)
    return;
  buf[n] = 0;
  if (buf[n - 1] == '\n')
    buf[--n] = 0;
  if (n > 0 && strlen(buf) == (size_t)n && strchr(buf, '\n') == NULL)
    memcpy(name, buf, (size_t)n + 1);
}

/* One attempt on both address lengths to the agent at `name`: a connected fd, or -errno. */
static int connect_named(const char *name)
{
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  size_t n = strlen(name);
  memcpy(sun.sun_path + 1, name, n); /* abstract: leading NUL */
  socklen_t exact = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
  int rv;
  if ((rv = try_connect(&sun, sizeof sun)) < 0)
    rv = try_connect(&sun, exact);
  return rv;
}

/* One attempt to the current agent (any thread: writes only `name`). */
static int connect_once(char name[sizeof fmpi_st.agent_name])
{
  current_agent_name(name);
  return connect_named(name);
}

/* At start-up and after a resume (lock held, or no other thread yet). */
int fmpi_agent_connect(void)
{
  char name[sizeof fmpi_st.agent_name];
  current_agent_name(name);
  memcpy(fmpi_st.agent_name, name, sizeof name);
  int rv = 0;
  for (int i = 0; i < AGENT_CONNECT_TRIES; i++) {
    if ((rv = connect_named(name)) >= 0) {
      fmpi_st.agent_fd = rv;
      fmpi_st.agent_rx_len = 0;
      return 0;
    }
    if (rv != -ECONNREFUSED && rv != -ENOENT && rv != -EAGAIN)
      break;
    usleep(AGENT_CONNECT_RETRY_MSEC * 1000);
  }
  return rv;
}

void fmpi_agent_close(void)
{
  if (fmpi_st.agent_fd >= 0)
    close(fmpi_st.agent_fd);
  if (fmpi_st.agent_fd == placeholder_fd)
    placeholder_fd = -1;
  fmpi_st.agent_fd = -1;
  fmpi_st.agent_rx_len = 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN) {
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        poll(&pfd, 1, -1);
        continue;
      }
      return -errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Sends one RankMessage whose body is `body` (of oneof case body_case). */
int fmpi_agent_send_notice(int body_case, void *body, uint64_t reply_to, int err_code, const char *err_msg)
{
  fmpi_ProtocolVersion ver = { FMPI_PROTOCOL_MAJOR, FMPI_PROTOCOL_MINOR };
  fmpi_Status status = { .ok = err_code == 0, .code = err_code, .message = (char *)err_msg };
  fmpi_RankMessage m;
  memset(&m, 0, sizeof m);
  m.version = &ver;
  m.request_id = reply_to ? 0 : ++fmpi_st.agent_next_id;
  m.reply_to = reply_to;
  if (reply_to)
    m.status = &status;
  m.body_case = (uint32_t)body_case;
  switch (body_case) {
  case FMPI_RANKMESSAGE_HELLO: m.hello = body; break;
  case FMPI_RANKMESSAGE_FINALIZED: m.finalized = body; break;
  case FMPI_RANKMESSAGE_EXIT: m.exit = body; break;
  case FMPI_RANKMESSAGE_ABORT: m.abort = body; break;
  case FMPI_RANKMESSAGE_FLUSH_REPLY: m.flush_reply = body; break;
  case FMPI_RANKMESSAGE_ATTACH: m.attach = body; break;
  default: break;
  }
  fmpi_pb_buf buf = { 0 };
  uint8_t len4[4] = { 0 };
  int rv = 0;
  if (fmpi_pb_encode(&fmpi_RankMessage_desc, &m, &buf) != 0)
    rv = -ENOMEM;
  if (rv == 0) {
    for (int i = 0; i < 4; i++)
      len4[i] = (uint8_t)(buf.len >> (8 * i));
    if ((rv = write_all(fmpi_st.agent_fd, len4, 4)) == 0)
      rv = write_all(fmpi_st.agent_fd, buf.data, buf.len);
  }
  fmpi_pb_buf_free(&buf);
  return rv == 0 ? (int)m.request_id : rv;
}

/* Takes one complete frame off the receive buffer, if there is one. 1 = decoded into *m. */
static int take_frame(fmpi_RankMessage *m)
{
  if (fmpi_st.agent_rx_len < 4)
    return 0;
  const uint8_t *b = fmpi_st.agent_rx;
  size_t len = (size_t)b[0] | (size_t)b[1] << 8 | (size_t)b[2] << 16 | (size_t)b[3] << 24;
  if (len > FMPI_AGENT_FRAME_MAX_BYTES)
    fmpi_fatal("the agent sent a frame of %zu bytes (limit %d)", len, FMPI_AGENT_FRAME_MAX_BYTES);
  if (fmpi_st.agent_rx_len < 4 + len)
    return 0;
  memset(m, 0, sizeof *m);
  int bad = fmpi_pb_decode(&fmpi_RankMessage_desc, b + 4, len, m);
  memmove(fmpi_st.agent_rx, b + 4 + len, fmpi_st.agent_rx_len - 4 - len);
  fmpi_st.agent_rx_len -= 4 + len;
  if (bad) {
    fmpi_pb_free(&fmpi_RankMessage_desc, m);
    fmpi_fatal("the agent sent a malformed RankMessage");
  }
  if (m->version == NULL || m->version->major != FMPI_PROTOCOL_MAJOR) {
    unsigned major = m->version ? m->version->major : 0;
    fmpi_pb_free(&fmpi_RankMessage_desc, m);
    fmpi_fatal("the agent speaks rank protocol %u, this runtime speaks %d (VERSION_MISMATCH)", major,
               FMPI_PROTOCOL_MAJOR);
  }
  return 1;
}

/* Reads what is available (blocking when `block`). Returns -1 on EOF or error. */
static int fill(bool block)
{
  if (fmpi_st.agent_rx_cap - fmpi_st.agent_rx_len < 4096) {
    size_t cap = fmpi_st.agent_rx_cap ? fmpi_st.agent_rx_cap * 2 : 16384;
    uint8_t *p = realloc(fmpi_st.agent_rx, cap);
    if (p == NULL)
      fmpi_fatal("out of memory");
    fmpi_st.agent_rx = p;
    fmpi_st.agent_rx_cap = cap;
  }
  for (;;) {
    ssize_t r = recv(fmpi_st.agent_fd, fmpi_st.agent_rx + fmpi_st.agent_rx_len,
                     fmpi_st.agent_rx_cap - fmpi_st.agent_rx_len, block ? 0 : MSG_DONTWAIT);
    if (r > 0) {
      fmpi_st.agent_rx_len += (size_t)r;
      return 0;
    }
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && errno == EAGAIN)
      return 0;
    return -1;
  }
}

static void install_endpoints(const fmpi_EndpointTable *t)
{
  if (t->job_id == NULL || strcmp(t->job_id, fmpi_st.job) != 0)
    fmpi_fatal("the agent sent the endpoint table of job '%s', this rank belongs to '%s'",
               t->job_id ? t->job_id : "", fmpi_st.job);
  if (t->n_endpoints != (size_t)fmpi_st.size)
    fmpi_fatal("endpoint table has %zu entries for %d ranks", t->n_endpoints, fmpi_st.size);
  for (size_t i = 0; i < t->n_endpoints; i++) {
    const fmpi_Endpoint *e = &t->endpoints[i];
    if (e->rank >= (uint32_t)fmpi_st.size || e->address == NULL || e->port == 0 || e->port > 65535)
      fmpi_fatal("endpoint table entry %zu is invalid", i);
    fmpi_peer *p = &fmpi_st.peers[e->rank];
    snprintf(p->addr, sizeof p->addr, "%s", e->address);
    p->port = (int)e->port;
  }
}

static void reply_error(uint64_t request_id, int code, const char *msg)
{
  fmpi_FlushReply empty;
  memset(&empty, 0, sizeof empty);
  fmpi_agent_send_notice(FMPI_RANKMESSAGE_FLUSH_REPLY, &empty, request_id, code, msg);
}

/* Connects to whatever agent holds the name now, backing off between tries;
 * fatal after AGENT_REJOIN_LIMIT_SEC. Called without the lock when `unlocked`. */
static int rejoin_connect(bool unlocked)
{
  double deadline = fmpi_now() + AGENT_REJOIN_LIMIT_SEC;
  int wait_ms = AGENT_REJOIN_MIN_MSEC;
  char name[sizeof fmpi_st.agent_name];
  int rv;
  for (;;) {
    if ((rv = connect_once(name)) >= 0)
      return rv;
    if (fmpi_now() >= deadline) {
      if (unlocked)
        fmpi_lock();
      fmpi_fatal("lost the connection to the Ferry agent at @%s and no agent took it back within %d s (last error: %s)",
                 name, AGENT_REJOIN_LIMIT_SEC, strerror(-rv));
    }
    usleep((useconds_t)wait_ms * 1000);
    wait_ms = wait_ms * 2 > AGENT_REJOIN_MAX_MSEC ? AGENT_REJOIN_MAX_MSEC : wait_ms * 2;
  }
}

/* For callers that hold the lock and must wait anyway (hello, finalize). */
static int rejoin_blocking(void)
{
  return rejoin_connect(false);
}

/* Sends an attach on the current connection (lock held). */
static int send_attach(bool finalized)
{
  fmpi_RankAttach a = {
    .job_id = fmpi_st.job, .rank = (uint32_t)fmpi_st.rank, .size = (uint32_t)fmpi_st.size,
    .pid = getpid(), .listen_port = finalized ? 0 : (uint32_t)fmpi_st.listen_port,
    .runtime_version = FMPI_RUNTIME_VERSION, .finalized = finalized, .token = fmpi_st.token,
  };
  return fmpi_agent_send_notice(FMPI_RANKMESSAGE_ATTACH, &a, 0, 0, NULL);
}

static void *reconnect_main(void *arg)
{
  int wake = (int)(intptr_t)arg;
  int fd = rejoin_connect(true);
  __atomic_store_n(&handoff_fd, fd, __ATOMIC_RELEASE);
  (void)eventfd_write(wake, 1);
  return NULL;
}

/* The connection broke outside a flush (lock held): reconnect in the background. */
static void start_reconnect(void)
{
  pthread_t t;
  pthread_attr_t attr;
  sigset_t all, old;
  int wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake < 0)
    fmpi_fatal("lost the connection to the agent and cannot make an eventfd to reconnect: %s", strerror(errno));
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  /* the thread must not take SIGUSR2 (the progress thread's) or any other signal */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rv = pthread_create(&t, &attr, reconnect_main, (void *)(intptr_t)wake);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (rv != 0)
    fmpi_fatal("lost the connection to the agent and cannot start a thread to reconnect: %s", strerror(rv));
  placeholder_fd = wake;
  fmpi_st.agent_fd = wake;
  fmpi_st.agent_rx_len = 0;
}

/* The reconnect thread made the placeholder readable (lock held): install its connection. */
static void take_handoff(void)
{
  int fd = __atomic_exchange_n(&handoff_fd, -1, __ATOMIC_ACQUIRE);
  if (fd < 0)
    return;
  close(placeholder_fd);
  placeholder_fd = -1;
  fmpi_st.agent_fd = fd;
  fmpi_st.agent_rx_len = 0;
  if (send_attach(fmpi_st.state == ST_FINALIZED) < 0) {
    /* that agent went away at once (a listener closing as we connected): try again */
    fmpi_agent_close();
    start_reconnect();
    return;
  }
  fprintf(stderr, "ferrympi: rank %d: reconnected to the agent\n", fmpi_st.rank);
}

/* MPI_Finalize, after the progress thread ended: a rank whose connection was
 * closed by a flush taken inside MPI_Finalize, or lost with a crashed agent,
 * connects again so that its finalized and exit notices reach an agent. */
void fmpi_agent_rejoin_finalized(void)
{
  if (fmpi_st.agent_name[0] == 0)
    return;
  fmpi_lock();
  while (placeholder_fd >= 0 && fmpi_st.agent_fd == placeholder_fd) {
    /* a reconnect thread is at work (it gives up, fatally, at its limit) */
    struct pollfd pfd = { .fd = placeholder_fd, .events = POLLIN };
    fmpi_unlock();
    while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
      ;
    fmpi_lock();
    take_handoff();
  }
  if (fmpi_st.agent_fd < 0) {
    fmpi_unlock();
    int fd = rejoin_blocking();
    fmpi_lock();
    fmpi_st.agent_fd = fd;
    fmpi_st.agent_rx_len = 0;
    if (send_attach(true) < 0)
      fmpi_agent_close();
  }
  fmpi_unlock();
}

/* Sends the hello and blocks until the agent answers it with the endpoint table. */
int fmpi_agent_hello(uint64_t resumed_epoch)
{
  fmpi_RankHello h = {
    .job_id = fmpi_st.job, .rank = (uint32_t)fmpi_st.rank, .size = (uint32_t)fmpi_st.size,
    .pid = getpid(), .listen_port = (uint32_t)fmpi_st.listen_port,
    .runtime_version = FMPI_RUNTIME_VERSION, .resumed_epoch = resumed_epoch, .token = fmpi_st.token,
  };
  int id = fmpi_agent_send_notice(FMPI_RANKMESSAGE_HELLO, &h, 0, 0, NULL);
  if (id < 0 && id != -EPIPE && id != -ECONNRESET)
    return id;
  for (;;) {
    fmpi_RankMessage m;
    int got = 0;
    while (id > 0 && (got = take_frame(&m)) == 0)
      if (fill(true) != 0)
        break;
    if (got == 0) {
      /* The agent went away before answering (it crashed): say hello to the
       * one that takes its place. */
      fprintf(stderr, "ferrympi: rank %d: lost the agent before the endpoint table came; reconnecting\n",
              fmpi_st.rank);
      fmpi_agent_close();
      int fd = rejoin_blocking();
      fmpi_st.agent_fd = fd;
      fmpi_st.agent_rx_len = 0;
      h.repeated = true;
      id = fmpi_agent_send_notice(FMPI_RANKMESSAGE_HELLO, &h, 0, 0, NULL);
      continue;
    }
    if (m.reply_to == (uint64_t)id) {
      if (m.status && !m.status->ok)
        fmpi_fatal("the agent refused the hello: %s (code %d)", m.status->message ? m.status->message : "",
                   m.status->code);
      if (m.endpoints == NULL)
        fmpi_fatal("the agent answered the hello without an endpoint table");
      install_endpoints(m.endpoints);
      fmpi_pb_free(&fmpi_RankMessage_desc, &m);
      return 0;
    }
    if (m.flush)
      reply_error(m.request_id, FERRY_ERR_UNAVAILABLE, "rank is not running yet (waiting for its endpoint table)");
    fmpi_pb_free(&fmpi_RankMessage_desc, &m);
  }
}

/* Acts on the complete frames already read (lock held). */
void fmpi_agent_dispatch(void)
{
  fmpi_RankMessage m;
  while (fmpi_st.agent_fd >= 0 && take_frame(&m) == 1) {
    if (m.flush) {
      if (fmpi_st.state == ST_RUNNING)
        fmpi_flush_begin(m.flush->epoch, m.request_id);
      else if (fmpi_st.state == ST_FINALIZED)
        ; /* in MPI_Finalize: the finalized notice that follows answers it (rank-channel.ts) */
      else
        reply_error(m.request_id, FERRY_ERR_BUSY, "a flush is already running");
    } else if (m.request_id) {
      fmpi_agent_send_notice(0, NULL, m.request_id, FERRY_ERR_UNSUPPORTED, "rank does not serve this request");
    } else if (m.reply_to && m.status && !m.status->ok) {
      /* the agent refused our attach: it does not know this rank */
      fmpi_fatal("the agent refused this rank: %s (code %d)", m.status->message ? m.status->message : "",
                 m.status->code);
    }
    fmpi_pb_free(&fmpi_RankMessage_desc, &m);
  }
}

/* Progress: the agent socket is readable (lock held). */
void fmpi_agent_readable(void)
{
  if (placeholder_fd >= 0 && fmpi_st.agent_fd == placeholder_fd) {
    take_handoff();
    return;
  }
  if (fill(false) != 0) {
    fmpi_agent_close();
    if (fmpi_st.state == ST_RUNNING) {
      fprintf(stderr, "ferrympi: rank %d: lost the connection to the agent; reconnecting (for up to %d s)\n",
              fmpi_st.rank, AGENT_REJOIN_LIMIT_SEC);
      start_reconnect();
    }
    return;
  }
  fmpi_agent_dispatch();
}
