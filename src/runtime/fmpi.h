/* Internal header of the Ferry MPI runtime: shared state and the functions
 * the files of src/runtime/ call in each other. See docs/runtime.md. */
#ifndef FMPI_H
#define FMPI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mpi.h"

#define FMPI_RUNTIME_VERSION "ferrympi 0.1.0"
#define FMPI_EAGER_LIMIT_BYTES (256 * 1024)      /* larger messages use rendezvous */
#define FMPI_DATA_CHUNK_BYTES (4 * 1024 * 1024)  /* rendezvous data frame size: a marker can fall between (see docs/runtime.md) */
#define FMPI_RNDV_PREFIX_BYTES (64 * 1024)       /* an RTS carries the message's first bytes: they cross while the CTS comes back (docs/runtime.md) */
#ifndef FMPI_WIRE_VERSION                        /* (a test builds another one) */
#define FMPI_WIRE_VERSION 2                      /* HELLO and ACCEPT carry it in `tag`; 2: RTS frames carry a prefix */
#endif
#define FMPI_ALLREDUCE_HALVING_BYTES (32 * 1024) /* from here a commutative Allreduce halves (coll.c) */
#define FMPI_STAGE_BYTES (32 * 1024)            /* read-ahead buffer per incoming channel (see docs/runtime.md) */
#define FMPI_READ_BUDGET_BYTES (1024 * 1024)     /* socket bytes one channel read takes before the engine looks elsewhere */
#define FMPI_PAD_MIN_BYTES (64 * 1024)           /* payloads from this size are padded to their buffer's cache-line offset */
#define FMPI_PAD_ALIGN_BYTES 64                  /* ... modulo this (channel.c, payload_pad) */
#define FMPI_PAD_MAX_BYTES 4096                  /* the padding a receiver accepts in a frame */
#define FMPI_SEND_COPY_BYTES 8192                /* a frame up to this size is copied together and sent with send() */
#define FMPI_COALESCE_BYTES (64 * 1024)          /* small frames queued together go out in one send() of up to this */
#define FMPI_BATCH_PAYLOAD_BYTES (64 * 1024)     /* eager frames up to this payload queued together go out in one sendmsg() */
#define FMPI_BATCH_FRAMES 16                     /* frames one sendmsg() carries at most */
#define FMPI_REMOTE_NOTSENT_BYTES (128 * 1024)   /* TCP_NOTSENT_LOWAT of a channel to another host (channel.c, limit_unsent) */
#define FMPI_SPIN_USEC 2000                      /* busy-poll this long without I/O progress before blocking */
#define FMPI_SPIN_POLL_USEC 200                  /* busy-poll: recv on open channels, poll() all fds this often (agent, listener, connects) */
#define FMPI_PROGRESS_PARK_USEC 10000            /* progress thread stays off while the app polled this recently */
#define FMPI_BURST_GRACE_USEC 50                 /* a held burst waits this long for the app's own pass before the progress thread sends it */
#define FMPI_BURST_GRACE_MIN_BYTES 1024          /* ... when its first frame carries more than this (smaller: sent at once, see fmpi_enqueue) */
#define FMPI_BURST_GRACE_ROUNDS 4                /* ... and again while the app is inside MPI, this many times */
#define FMPI_SCRATCH_MIN_BYTES (256 * 1024)     /* collectives' temporaries from this size are kept for reuse (scratch.c) */
#define FMPI_SCRATCH_KEEP 4                      /* ... this many of them at most */
#define FMPI_SCRATCH_KEEP_BYTES (256L * 1024 * 1024) /* ... and this much memory in all */
#define FMPI_RETRY_MIN_MSEC 1                    /* backoff of refused peer connections */
#define FMPI_RETRY_MAX_MSEC 100
#define FMPI_AGENT_FRAME_MAX_BYTES (16 * 1024 * 1024)
#define FMPI_FIRST_USER_CTX 16                   /* contexts below are WORLD (0,1) and SELF (2,3) */
/* Contexts come in pairs (ctx for point to point, ctx + 1 for collectives)
 * from two spaces (ctx.c): blocking agreements take multiples of
 * FMPI_CTX_STEP from a counter, Comm_idup's take FMPI_CTX_STEP * k + 2. */
#define FMPI_CTX_STEP 4
#define FMPI_CTX_PENDING 0x7fffffffu             /* a Comm_idup's communicator until its context is agreed (no pair's) */

/* Wire frame header of a peer channel (host byte order: all ranks of a job run on
 * one architecture). Every frame carries the channel's next sequence number. */
typedef struct fmpi_hdr {
  uint32_t kind;
  uint32_t ctx;
  int32_t src;      /* world rank of the sender */
  int32_t tag;      /* HELLO, ACCEPT: FMPI_WIRE_VERSION */
  uint64_t seq;     /* per direction of a peer pair, starting at 1; survives reconnects */
  uint64_t len;     /* payload bytes (EAGER, DATA) or whole message size (RTS) */
  uint64_t sreq;    /* sender's request (RTS, CTS) */
  uint64_t rreq;    /* receiver's request (CTS, DATA) */
  uint64_t offset;  /* DATA: where the payload goes in the message; RTS: payload (prefix) bytes; HELLO: job hash */
  uint32_t pad;     /* EAGER, DATA: bytes of padding between this header and the payload */
  uint32_t reserved;
} fmpi_hdr;

enum fmpi_kind {
  FMPI_F_HELLO = 1,  /* first frame of a connection: who connects (src), for which job */
  FMPI_F_ACCEPT,     /* acceptor -> initiator: data may flow */
  FMPI_F_REJECT,     /* acceptor is flushing: try again after the resume */
  FMPI_F_EAGER,
  FMPI_F_RTS,
  FMPI_F_CTS,
  FMPI_F_DATA,
  FMPI_F_MARKER,     /* end of channel for this flush */
  FMPI_F_BYE         /* sender finalized */
};

typedef struct fmpi_request fmpi_request;
typedef struct fmpi_comm fmpi_comm;
typedef struct fmpi_nbc fmpi_nbc;

/* One frame waiting in a peer's send queue; payload points into the request's data. */
typedef struct fmpi_item {
  struct fmpi_item *next;
  fmpi_hdr hdr;
  const uint8_t *payload;
  size_t done;             /* bytes of header + payload written */
  fmpi_request *req;       /* send request this frame belongs to, or NULL */
  bool completes_req;      /* the request completes once this frame is written */
  bool follows;            /* queued behind another frame, so written right after it */
  bool held;               /* part of a burst: waits for the next progress pass (fmpi_enqueue) */
} fmpi_item;

/* A received message nobody asked for yet (arrival order), or an RTS waiting for a receive. */
typedef struct fmpi_unexp {
  struct fmpi_unexp *next;
  int src;                 /* world rank */
  uint32_t ctx;
  int tag;
  uint32_t kind;           /* FMPI_F_EAGER or FMPI_F_RTS */
  size_t len;
  uint8_t *data;           /* eager payload, or the prefix an RTS carried */
  size_t prefix;           /* RTS: bytes of the message its frame carries (in data) */
  size_t got;              /* payload bytes read so far (set when all arrived) */
  uint64_t sreq;
  fmpi_request *claimed;   /* a receive matched it while the payload was still arriving */
} fmpi_unexp;

enum fmpi_out_state { OUT_NONE, OUT_RETRY, OUT_CONNECTING, OUT_AWAIT_ACCEPT, OUT_OPEN, OUT_MARKED };
enum fmpi_in_state { IN_NONE, IN_OPEN, IN_MARKED, IN_CLOSED };

/* Everything this rank knows about one peer: the one connection that carries
 * both directions (out_fd; out_state is the connection and this rank's sending
 * side, with the send queue; in_state is the peer's sending side, with the frame
 * parser). Survives a flush: only the socket goes; queues,
 * sequence numbers and half-done messages stay. */
typedef struct fmpi_peer {
  int rank;
  char addr[64];
  int port;
  int out_fd;
  int out_state;
  double retry_at;
  int retry_msec;
  fmpi_item *head, *tail;
  uint64_t out_seq;
  int in_state;
  uint64_t in_seq;
  fmpi_hdr in_hdr;         /* frame header being read */
  size_t in_hdr_got;
  uint8_t *in_dst;         /* where the payload goes */
  size_t in_want;          /* payload bytes still to read into in_dst */
  size_t in_skip;          /* padding before the payload, still to drop */
  size_t in_discard;       /* then bytes to drop (truncated receive) */
  bool in_payload;
  bool in_big;             /* the last payload was large: read ahead only a header */
  uint8_t *stage;          /* received bytes not yet parsed: stage[stage_off, stage_len) */
  size_t stage_off, stage_len;
  fmpi_request *in_req;    /* receive being filled, or NULL */
  fmpi_unexp *in_ux;       /* unexpected message being filled, or NULL */
  uint64_t small_pass;     /* fmpi_st.passes + 1 at the app's last send here that a burst may hold (fmpi_burst) */
} fmpi_peer;

/* A send or receive, from post to completion (MPI_Request points here). */
struct fmpi_request {
  uint32_t magic;
  int handle;
  bool is_send;
  bool complete;
  bool user_freed;         /* MPI_Request_free on an active request: release on completion */
  fmpi_comm *comm;
  uint32_t ctx;
  int peer;                /* world rank, or MPI_ANY_SOURCE */
  int tag;
  void *buf;
  int count;
  MPI_Datatype type;
  uint8_t *data;           /* contiguous bytes (user buffer or packbuf) */
  size_t bytes;            /* send size, or receive capacity */
  uint8_t *packbuf;
  MPI_Status status;
  bool sync;
  uint64_t rndv_total;     /* receive: size announced by the RTS */
  uint64_t rndv_prefix;    /* send: bytes its RTS frame carried (the data frames send the rest) */
  uint64_t rndv_got;
  struct fmpi_request *next;  /* posted-receive queue */
  /* persistent requests (MPI_Send_init ...): the same object is armed again by
   * each MPI_Start, so a started one is an ordinary pending request (and
   * survives a flush like one); Wait/Test leave it inactive instead of freeing it */
  bool persistent;
  bool active;             /* started, not yet completed by a Wait or Test */
  int pkind;               /* enum fmpi_pkind */
  int user_peer;           /* as given: comm rank, MPI_ANY_SOURCE or MPI_PROC_NULL */
  fmpi_nbc *nbc_owner;     /* the nonblocking collective this operation is a step of, or NULL */
  /* called by fmpi_req_complete (lock held) before a user_freed request is
   * released: one-sided communication's target and origin steps (win.c) */
  void (*on_done)(fmpi_request *r);
  void *on_done_arg;
  struct fmpi_greq *greq;  /* a generalized request's callbacks (grequest.c), or NULL */
};
enum fmpi_pkind { FMPI_P_SEND, FMPI_P_SSEND, FMPI_P_BSEND, FMPI_P_RSEND, FMPI_P_RECV };
#define FMPI_REQ_MAGIC 0x46524551u

/* A Cartesian grid over a communicator's ranks (topo.c). */
typedef struct fmpi_cart {
  int ndims;
  int *dims, *periods;     /* point into data */
  int data[];
} fmpi_cart;

/* graph.c: a graph topology, MPI_GRAPH or MPI_DIST_GRAPH; this rank's neighbors (comm ranks) */
typedef struct fmpi_graph {
  int kind;
  int indegree, outdegree;
  int *sources, *destinations;
  int *sourceweights, *destweights; /* NULL when not weighted */
  bool weighted;
  int nnodes, *index, *edges;       /* MPI_GRAPH: the whole graph as given */
} fmpi_graph;
fmpi_graph *fmpi_graph_dup(const fmpi_graph *g);
void fmpi_graph_free(fmpi_graph *g);

struct fmpi_comm {
  int handle;
  uint32_t ctx;            /* point to point; ctx + 1 is for collectives */
  int rank, size;
  int *world;              /* comm rank -> world rank */
  int *local;              /* world rank -> comm rank, or -1 */
  MPI_Errhandler errh;
  fmpi_cart *cart;         /* MPI_Cart_create's grid, or NULL */
  fmpi_graph *graph;       /* a graph topology (graph.c), or NULL */
  char name[MPI_MAX_OBJECT_NAME]; /* MPI_Comm_set_name's, or empty */
  struct fmpi_attr *attrs; /* cached attributes (attr.c) */
  uint32_t nbc_seq;        /* nonblocking collectives started on it (their tags, nbc.c) */
  /* an intercommunicator (intercomm.c): size, world and local above describe
   * the remote group, which point to point names; rank is this rank's in the
   * local group, whose collectives go through local_comm */
  bool inter;
  int local_size;
  MPI_Comm local_comm;
  /* MPI_Comm_free lets pending operations complete normally (MPI 3.1 6.4.3):
   * each request on the communicator holds a reference, and a freed one
   * stays in the table (its context taken) until the last is released */
  int refs;                /* requests that point here (atomic: either thread releases) */
  bool user_freed;         /* MPI_Comm_free was called: lookups fail, fmpi_comm_reap frees it */
};

typedef struct fmpi_group {
  int size;
  int *world;
} fmpi_group;

enum fmpi_state_kind { ST_INIT, ST_RUNNING, ST_FLUSHING, ST_FLUSHED, ST_FINALIZED };

/* The whole runtime, one per process; `lock` guards all of it (the app thread
 * and the progress thread take turns). */
typedef struct fmpi_state {
  pthread_mutex_t lock;
  pthread_cond_t done_cond;    /* broadcast by the progress thread after each round */
  pthread_t thread;
  bool thread_started;
  bool stop;
  int state;
  bool initialized, finalized;
  int thread_level;
  pthread_t main_thread;        /* the thread that called MPI_Init (MPI_Is_thread_main) */
  char job[128];
  char token[80];               /* FERRY_RANK_TOKEN: the job's secret (see init.c), kept across restores */
  int rank, size;
  int listen_fd;
  int listen_port;
  int agent_fd;
  char agent_name[108];         /* the agent's abstract socket, as last connected to */
  char agent_file[4096];        /* FERRY_AGENT_SOCKET_FILE: names the agent to connect to (agent.c), or empty */
  uint8_t *agent_rx;
  size_t agent_rx_len, agent_rx_cap;
  uint64_t agent_next_id;
  int wake_fd;                 /* eventfd: wakes the progress thread out of poll */
  bool pt_polling;
  bool pt_parked;              /* progress thread sleeps on wake_fd without the lock (app spins) */
  bool burst_wake;             /* the last unpark was for a held burst only (unpark_for_burst) */
  bool app_spinning;
  double app_polled_at;        /* last busy-poll pass of the app thread (fmpi_now) */
  int app_blocked;
  /* Set by the app thread around its own progress passes: a channel read stops
   * once a request completed and pass_done(pass_arg) holds (any completion when
   * pass_done is NULL), so the waiter sees it before more frames become
   * unexpected messages (copies) behind its back. */
  bool app_pass;
  bool (*pass_done)(void *);
  void *pass_arg;
  uint64_t completions;        /* requests completed so far */
  uint64_t io_events;          /* socket reads and writes that moved bytes: the spin goes on while this grows */
  uint64_t passes;             /* progress passes so far (app thread and progress thread) */
  bool posting_isend;          /* inside the app's MPI_Isend (not a collective's) */
  bool posting_send;           /* inside the app's MPI_Send (not a collective's) */
  bool deferred;               /* frames of a burst wait for the next pass (fmpi_enqueue); the progress thread does not park */
  fmpi_peer *peers;
  int *pending_fds;            /* accepted, HELLO not read yet */
  int npending;
  fmpi_request *posted_head, *posted_tail;
  fmpi_unexp *ux_head, *ux_tail;
  uint64_t job_hash;
  uint32_t next_ctx;            /* the blocking agreements' next context (ctx.c) */
  /* flush */
  uint64_t flush_epoch;
  uint64_t flush_request_id;
  uint64_t drained_messages, drained_bytes;
  uint64_t sent_messages, received_messages;
} fmpi_state;

extern fmpi_state fmpi_st;

/* init.c */
void fmpi_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
double fmpi_now(void);
void fmpi_lock(void);
void fmpi_unlock(void);

/* agent.c */
int fmpi_agent_connect(void);
int fmpi_agent_hello(uint64_t resumed_epoch);
int fmpi_agent_send_notice(int body_case, void *body, uint64_t reply_to, int err_code, const char *err_msg);
void fmpi_agent_readable(void);
void fmpi_agent_dispatch(void);
void fmpi_agent_close(void);
void fmpi_agent_rejoin_finalized(void);

/* channel.c */
int fmpi_listen(void);
void fmpi_progress(int timeout_ms);
void fmpi_wake(void);
void fmpi_unpark(void);
void fmpi_enqueue(fmpi_peer *p, fmpi_item *it);
bool fmpi_burst(fmpi_peer *p);
void fmpi_flush_begin(uint64_t epoch, uint64_t request_id);
void fmpi_resume(void);
void fmpi_hold_while_flushed(void);
void fmpi_channels_shutdown(void);
void *fmpi_progress_main(void *arg);

/* p2p.c */
fmpi_request *fmpi_req_new(bool is_send, fmpi_comm *c, uint32_t ctx, int peer, int tag, const void *buf, int count,
                           MPI_Datatype type);
int fmpi_isend(const void *buf, int count, MPI_Datatype type, int dest, int tag, fmpi_comm *c, uint32_t ctx,
               bool sync, fmpi_request **out);
int fmpi_irecv(void *buf, int count, MPI_Datatype type, int src, int tag, fmpi_comm *c, uint32_t ctx,
               fmpi_request **out);
void fmpi_send_post(fmpi_request *r);
void fmpi_recv_post(fmpi_request *r);
bool fmpi_recv_unpost(fmpi_request *r);
void fmpi_req_rearm(fmpi_request *r);
int fmpi_check_pt2pt(fmpi_comm *c, int count, MPI_Datatype type, int peer, int tag, bool recv, bool any_tag_ok);
void fmpi_wait_reqs(fmpi_request **reqs, int n);
void fmpi_wait_reqs_keep(fmpi_request **reqs, int n);
void fmpi_req_release(fmpi_request *r);
int fmpi_req_handle(fmpi_request *r, MPI_Request *h);
void fmpi_req_complete(fmpi_request *r);
void fmpi_wait_cond(bool (*done)(void *), void *arg);
void fmpi_on_header(fmpi_peer *p);
void fmpi_on_payload_done(fmpi_peer *p);
void fmpi_deliver_local(fmpi_request *s);
void fmpi_status_out(fmpi_request *r, MPI_Status *st);
size_t fmpi_unexpected_count(void);
int fmpi_send_internal(const void *buf, int count, MPI_Datatype t, int dest, int tag, fmpi_comm *c);
int fmpi_recv_internal(void *buf, int count, MPI_Datatype t, int src, int tag, fmpi_comm *c);
int fmpi_sendrecv_internal(const void *sbuf, int scount, MPI_Datatype st, int dest, void *rbuf, int rcount,
                           MPI_Datatype rt, int src, int tag, fmpi_comm *c);

/* bsend.c */
int fmpi_ibsend(fmpi_comm *c, const void *buf, int count, MPI_Datatype datatype, int dest, int tag);

/* grequest.c */
typedef struct fmpi_greq fmpi_greq;
int fmpi_greq_status(fmpi_request *r, MPI_Status *status);
int fmpi_greq_finish(fmpi_request *r, MPI_Status *status);
int fmpi_greq_free(fmpi_request *r);
int fmpi_greq_cancel(fmpi_request *r);

/* comm.c */
fmpi_comm *fmpi_comm_get(MPI_Comm h);
fmpi_group *fmpi_group_get(MPI_Group h);
int fmpi_comm_init_predefined(void);
int fmpi_comm_dup_internal(MPI_Comm comm, MPI_Comm *newcomm);
fmpi_comm *fmpi_comm_get_intra(MPI_Comm h);
void fmpi_comm_reap(void);
fmpi_comm *fmpi_comm_new(uint32_t ctx, int n, const int *world, MPI_Errhandler errh);

/* ctx.c */
uint32_t fmpi_agree_ctx(fmpi_comm *c);
void fmpi_ctx_taken(uint32_t ctx);
void fmpi_ctx_agree_start(fmpi_comm *parent, fmpi_comm *newcomm, MPI_Request *request);

/* intercomm.c */
int fmpi_inter_gatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, const int rcounts[],
                       const int displs[], MPI_Datatype rtype, int root, fmpi_comm *ic);
int fmpi_inter_scatterv(const void *sbuf, const int scounts[], const int displs[], MPI_Datatype stype, void *rbuf,
                        int rcount, MPI_Datatype rtype, int root, fmpi_comm *ic);
int fmpi_inter_allgatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, const int rcounts[],
                          const int displs[], MPI_Datatype rtype, fmpi_comm *ic);
int fmpi_inter_alltoallv(const void *sbuf, const int scounts[], const int sdispls[], MPI_Datatype stype, void *rbuf,
                         const int rcounts[], const int rdispls[], MPI_Datatype rtype, fmpi_comm *ic);
int fmpi_inter_reduce_scatter(const void *sbuf, void *rbuf, const int rcounts[], MPI_Datatype type, MPI_Op op,
                              fmpi_comm *ic);
int fmpi_inter_reduce_scatter_block(const void *sbuf, void *rbuf, int rcount, MPI_Datatype type, MPI_Op op,
                                    fmpi_comm *ic);
int fmpi_inter_split(fmpi_comm *ic, int color, int key, MPI_Comm *newcomm);
int fmpi_inter_ibarrier(fmpi_comm *ic, MPI_Request *request);
int fmpi_inter_ibcast(void *buf, int count, MPI_Datatype type, int root, fmpi_comm *ic, MPI_Request *request);
int fmpi_inter_ireduce(const void *sbuf, void *rbuf, int count, MPI_Datatype type, MPI_Op op, int root, fmpi_comm *ic,
                       MPI_Request *request);
int fmpi_inter_iallreduce(const void *sbuf, void *rbuf, int count, MPI_Datatype type, MPI_Op op, fmpi_comm *ic,
                          MPI_Request *request);
int fmpi_inter_ireduce_scatter(const void *sbuf, void *rbuf, const int rcounts[], MPI_Datatype type, MPI_Op op,
                               fmpi_comm *ic, MPI_Request *request);
int fmpi_inter_ireduce_scatter_block(const void *sbuf, void *rbuf, int rcount, MPI_Datatype type, MPI_Op op,
                                     fmpi_comm *ic, MPI_Request *request);
int fmpi_inter_igatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, const int rcounts[],
                        const int displs[], int rfixed, MPI_Datatype rtype, int root, fmpi_comm *ic,
                        MPI_Request *request);
int fmpi_inter_iscatterv(const void *sbuf, const int scounts[], const int displs[], int sfixed, MPI_Datatype stype,
                         void *rbuf, int rcount, MPI_Datatype rtype, int root, fmpi_comm *ic, MPI_Request *request);
int fmpi_inter_iallgatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, const int rcounts[],
                           const int displs[], int rfixed, MPI_Datatype rtype, fmpi_comm *ic, MPI_Request *request);
int fmpi_inter_ialltoallw(const void *sbuf, const int scounts[], const int sdispls[], int sfixed, MPI_Datatype stype,
                          const MPI_Datatype stypes[], void *rbuf, const int rcounts[], const int rdispls[], int rfixed,
                          MPI_Datatype rtype, const MPI_Datatype rtypes[], bool byte_displs, fmpi_comm *ic,
                          MPI_Request *request);
int fmpi_inter_create(fmpi_comm *ic, MPI_Group group, MPI_Comm *newcomm);
int fmpi_inter_dup(fmpi_comm *ic, fmpi_comm **out);
fmpi_comm *fmpi_inter_dup_pending(fmpi_comm *ic);
fmpi_nbc *fmpi_inter_nbc_allmax(fmpi_comm *ic, unsigned *mine, unsigned *result, int count);
int fmpi_inter_barrier(fmpi_comm *ic);
int fmpi_inter_bcast(void *buf, int count, MPI_Datatype type, int root, fmpi_comm *ic);
int fmpi_inter_reduce(const void *sbuf, void *rbuf, int count, MPI_Datatype type, MPI_Op op, int root, fmpi_comm *ic);
int fmpi_inter_allreduce(const void *sbuf, void *rbuf, int count, MPI_Datatype type, MPI_Op op, fmpi_comm *ic);
int fmpi_inter_gather(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype,
                      int root, fmpi_comm *ic);
int fmpi_inter_scatter(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype,
                       int root, fmpi_comm *ic);
int fmpi_inter_allgather(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount,
                         MPI_Datatype rtype, fmpi_comm *ic);
int fmpi_inter_alltoall(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount, MPI_Datatype rtype,
                        fmpi_comm *ic);

/* datatype.c */
typedef struct fmpi_type {
  size_t size;
  MPI_Aint lb, extent, true_lb, true_ub;
  bool contig;
  int nblocks;
  struct fmpi_block { MPI_Aint off; size_t len; } *blocks;
  MPI_Datatype basic;   /* predefined type all elements are made of, or 0 */
  int align;
  bool committed, predefined;
  char name[MPI_MAX_OBJECT_NAME]; /* MPI_Type_set_name's, or empty */
  struct fmpi_attr *attrs;         /* cached attributes (attr.c) */
  struct fmpi_type_contents *contents; /* how a derived type was made (type-contents.c) */
  int refs;                        /* derived: its handle's and the records' of types made of it */
} fmpi_type;
fmpi_type *fmpi_type_get(MPI_Datatype h);
MPI_Datatype fmpi_type_register(fmpi_type *t);
int fmpi_type_release(MPI_Datatype h);

/* type-contents.c: the constructor and arguments of each derived type (MPI_Type_get_envelope/_contents) */
void fmpi_type_record(MPI_Datatype made, int combiner, int ni, const int *ints, int na, const MPI_Aint *aints,
                      int nt, const MPI_Datatype *types);
void fmpi_type_record_impl(MPI_Datatype made, MPI_Datatype impl);
void fmpi_type_contents_free(struct fmpi_type_contents *c);
int fmpi_type_walk(MPI_Datatype h, MPI_Aint base, int (*fn)(MPI_Datatype basic, MPI_Aint at, void *arg), void *arg);
void fmpi_types_init(void);
/* fills MPI_INFO_ENV (info.c) */
void fmpi_info_env_init(int argc, char **argv, int thread_level);
void fmpi_pack(const fmpi_type *t, const void *buf, int count, uint8_t *dst);
void fmpi_unpack(const fmpi_type *t, const uint8_t *src, size_t bytes, void *buf);

/* op.c */
int fmpi_op_apply(MPI_Op op, const void *in, void *inout, int count, MPI_Datatype type);
bool fmpi_op_commutative(MPI_Op op);
bool fmpi_op_valid(MPI_Op op);

/* errors.c */
int fmpi_error(fmpi_comm *c, int code, const char *fname);
extern int fmpi_last_used_code;
fmpi_cart *fmpi_cart_new(int ndims, const int dims[], const int periods[]);
int fmpi_topo_neighbors(fmpi_comm *c, const int **in, int *nin, const int **out, int *nout, int **owned);

/* file.c, file-shared.c: MPI-IO */
typedef struct fmpi_file {
  int fd;
  int amode;
  MPI_Comm comm;           /* a duplicate of the opening communicator */
  char *path;
  MPI_Offset disp;         /* the view */
  MPI_Datatype etype, filetype;
  MPI_Offset pos;          /* the individual file pointer, in etypes of the view */
  MPI_Offset shared_start; /* the shared file pointer before its first move (the end with MPI_MODE_APPEND) */
  MPI_Errhandler errh;
  int handle;
  bool atomic;             /* MPI_File_set_atomicity: each access under a lock on the file */
  bool split_open;         /* a split collective began and has not ended (file-split.c) */
  MPI_Status split_status; /* ... its status, for the _end call */
} fmpi_file;
#define GET_FILE(h, name)                                    \
  FMPI_CHECK_INIT(name);                                     \
  fmpi_file *f = fmpi_file_get(h);                           \
  if (f == NULL)                                             \
  return fmpi_file_error(NULL, MPI_ERR_FILE, name)
fmpi_file *fmpi_file_get(MPI_File h);
int fmpi_file_error(fmpi_file *f, int code, const char *name);
int fmpi_errno_class(int e);
int fmpi_file_as_request(MPI_File fh, int rv, const MPI_Status *st, MPI_Request *request);
int fmpi_file_transfer(fmpi_file *f, MPI_Offset offset, void *buf, int count, MPI_Datatype datatype, bool writing,
                       MPI_Status *status, MPI_Offset *moved_etypes, const char *name);
MPI_Offset fmpi_file_view_end(fmpi_file *f);
void fmpi_file_shared_forget(fmpi_file *f);

/* nbc.c: nonblocking collectives as schedules of rounds */
#define FMPI_NBC_CTX_BIT 0x80000000u
typedef struct fmpi_nbc_op {
  bool send;
  void *buf;
  int count;
  MPI_Datatype type;
  int peer;                /* comm rank */
} fmpi_nbc_op;
typedef struct fmpi_nbc_round {
  fmpi_nbc_op *ops;
  int nops, cap;
  void (*before)(fmpi_nbc *s); /* a local step before the round's operations are posted */
} fmpi_nbc_round;
struct fmpi_nbc {
  fmpi_request *req;       /* the user's request: completes after the last round and finish */
  fmpi_comm *comm;
  uint32_t ctx;
  int tag;
  fmpi_nbc_round *rounds;
  int nrounds, round;      /* round: the next one to post */
  int pending;             /* operations of the posted round not complete yet */
  bool advancing;
  void (*finish)(fmpi_nbc *s); /* after the last round; setting round back to 0 runs the rounds again */
  void *arg;               /* the finish step's own state */
  void **tmp;              /* buffers freed with the schedule */
  int ntmp;
  /* what the algorithm's steps need */
  const void *sbuf;
  void *rbuf;
  int count;
  MPI_Datatype type;
  MPI_Op op;
  void **parts;            /* reductions: each rank's contribution, in rank order; scans: mine, prefix */
  void *out;               /* reduce_scatter(_block): the user's receive buffer (rbuf is the whole result) */
  int out_count;           /* reduce_scatter(_block): elements of rank 0's own block */
};
fmpi_nbc *fmpi_nbc_new(fmpi_comm *c, int nrounds);
void fmpi_nbc_add(fmpi_nbc *s, int round, bool send, void *buf, int count, MPI_Datatype type, int peer);
void *fmpi_nbc_tmp(fmpi_nbc *s, size_t bytes);
int fmpi_nbc_start(fmpi_nbc *s, MPI_Request *request);
fmpi_nbc *fmpi_nbc_allreduce(fmpi_comm *c, const void *mine, void *recvbuf, int count, MPI_Datatype datatype,
                             MPI_Op op);
void fmpi_nbc_op_done(fmpi_nbc *s);

/* scratch.c: the collectives' temporaries (kept for reuse from FMPI_SCRATCH_MIN_BYTES, freed at a flush) */
void *fmpi_scratch_get(size_t bytes);
void fmpi_scratch_put(void *p);
void fmpi_scratch_release(void);

/* attr.c */
enum fmpi_attr_kind { FMPI_ATTR_COMM, FMPI_ATTR_WIN, FMPI_ATTR_TYPE };
int fmpi_keyval_create(int kind, void *copy, void *del, int *keyval, void *extra);
int fmpi_keyval_free(int kind, int *keyval);
int fmpi_attr_set(struct fmpi_attr **list, int handle, int kind, int keyval, void *value);
int fmpi_attr_delete(struct fmpi_attr **list, int handle, int kind, int keyval);
bool fmpi_attr_find(struct fmpi_attr **list, int keyval, void **value);
int fmpi_attr_copy_all(struct fmpi_attr **from, int from_handle, int kind, struct fmpi_attr **to);
int fmpi_attr_delete_all(struct fmpi_attr **list, int handle, int kind);
bool fmpi_attr_get(fmpi_comm *c, int keyval, void **value);
int fmpi_attrs_copy(fmpi_comm *from, fmpi_comm *to);
int fmpi_attrs_delete_all(fmpi_comm *c);
int fmpi_errh_call(MPI_Comm comm, MPI_Errhandler errh, int code, const char *fname);
bool fmpi_errh_valid(MPI_Errhandler errh);

/* Handle tables: small-integer handles for user-created objects. */
typedef struct fmpi_table {
  void **slots;
  int n, cap, first;
} fmpi_table;
int fmpi_table_add(fmpi_table *t, void *p);
void *fmpi_table_get(fmpi_table *t, int h);
void fmpi_table_del(fmpi_table *t, int h);
extern fmpi_table fmpi_requests, fmpi_comms, fmpi_groups, fmpi_types, fmpi_ops, fmpi_errhs, fmpi_wins;

/* Entry checks shared by every MPI_ function. */
#define FMPI_CHECK_INIT(fname)                                                    \
  do {                                                                            \
    if (!fmpi_st.initialized || fmpi_st.finalized)                                \
      fmpi_fatal("%s called %s", fname,                                           \
                 fmpi_st.finalized ? "after MPI_Finalize" : "before MPI_Init");   \
  } while (0)

#endif
