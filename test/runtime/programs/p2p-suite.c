/* Point-to-point semantics: ordering, wildcards, probe, nonblocking completion,
 * rendezvous sizes, Ssend, self messages, PROC_NULL, cancel, truncation with
 * MPI_ERRORS_RETURN. Prints "p2p ok" on rank 0 when every check passed. */
#include <string.h>
#include "check.h"

#define BIG (3 * 1024 * 1024 + 17)

static int greq_query(void *extra, MPI_Status *st)
{
  (void)extra;
  MPI_Status_set_elements(st, MPI_BYTE, 0);
  MPI_Status_set_cancelled(st, 0);
  return MPI_SUCCESS;
}
static int greq_free(void *extra) { return ++*(int *)extra, MPI_SUCCESS; }
static int greq_cancel(void *extra, int complete) { return (void)extra, (void)complete, MPI_SUCCESS; }

int main(int argc, char **argv)
{
  int rank, size;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int right = (rank + 1) % size, left = (rank - 1 + size) % size;

  /* ordering: 100 messages of mixed sizes to the right neighbour, same tag */
  static int small[100][64];
  MPI_Request req[200];
  for (int i = 0; i < 100; i++) {
    for (int k = 0; k < 64; k++)
      small[i][k] = rank * 100000 + i * 100 + k;
    MPI_Isend(small[i], 1 + i % 64, MPI_INT, right, 5, MPI_COMM_WORLD, &req[i]);
  }
  for (int i = 0; i < 100; i++) {
    int buf[64];
    MPI_Status st;
    int n;
    MPI_Recv(buf, 64, MPI_INT, left, 5, MPI_COMM_WORLD, &st);
    MPI_Get_count(&st, MPI_INT, &n);
    CHECK(n == 1 + i % 64 && st.MPI_SOURCE == left && st.MPI_TAG == 5, "n=%d i=%d", n, i);
    for (int k = 0; k < n; k++)
      CHECK(buf[k] == left * 100000 + i * 100 + k, "order: message %d word %d = %d", i, k, buf[k]);
  }
  MPI_Waitall(100, req, MPI_STATUSES_IGNORE);

  /* A burst of Isends to one peer, megabytes more than its socket takes: small
   * messages, every tenth one of 8-64 KiB, an Issend and a rendezvous-sized
   * Isend inside it (the runtime sends a burst's frames together, so some of
   * those sends are cut short mid-frame); the peer receives only once the
   * whole burst is posted. */
  {
    enum { N = 2000, SMALL = 3000, MEDIUM = 64 * 1024, SYNC_AT = 1000, LARGE_AT = 1500, LARGE = 300 * 1024 };
    static unsigned char small_out[N][SMALL], medium_out[N / 10][MEDIUM], in[LARGE];
    static MPI_Request breq[N];
    unsigned char *large_out = malloc(LARGE);
    CHECK(large_out != NULL, "malloc");
    for (int i = 0; i < N; i++) {
      int len = i == LARGE_AT ? LARGE : i % 10 == 7 ? 8 * 1024 + 1 + (i * 131) % (MEDIUM - 8 * 1024) : 1 + (i * 37) % SMALL;
      unsigned char *buf = i == LARGE_AT ? large_out : i % 10 == 7 ? medium_out[i / 10] : small_out[i];
      for (int k = 0; k < len; k++)
        buf[k] = (unsigned char)(i * 3 + k * 7 + rank);
      if (i == SYNC_AT)
        MPI_Issend(buf, len, MPI_BYTE, right, 9, MPI_COMM_WORLD, &breq[i]);
      else
        MPI_Isend(buf, len, MPI_BYTE, right, 9, MPI_COMM_WORLD, &breq[i]);
    }
    for (int i = 0; i < N; i++) {
      MPI_Status st;
      int n, len = i == LARGE_AT ? LARGE : i % 10 == 7 ? 8 * 1024 + 1 + (i * 131) % (MEDIUM - 8 * 1024) : 1 + (i * 37) % SMALL;
      MPI_Recv(in, LARGE, MPI_BYTE, left, 9, MPI_COMM_WORLD, &st);
      MPI_Get_count(&st, MPI_BYTE, &n);
      CHECK(n == len, "burst message %d: %d bytes, expected %d", i, n, len);
      for (int k = 0; k < n; k++)
        CHECK(in[k] == (unsigned char)(i * 3 + k * 7 + left), "burst message %d byte %d", i, k);
    }
    MPI_Waitall(N, breq, MPI_STATUSES_IGNORE);
    free(large_out);
  }

  /* A burst of blocking sends from one buffer, rewritten as soon as each
   * MPI_Send returns (the runtime may hold a burst's small frames with a copy
   * of their payload): the receiver sees every message as it was sent. */
  if (size > 1 && rank % 2 == 0 && rank + 1 < size) {
    unsigned char one[3000];
    for (int i = 0; i < 1000; i++) {
      int len = 1 + (i * 53) % (int)sizeof one;
      for (int k = 0; k < len; k++)
        one[k] = (unsigned char)(i + k * 5);
      MPI_Send(one, len, MPI_BYTE, rank + 1, 11, MPI_COMM_WORLD);
      memset(one, 0xee, sizeof one);
    }
  } else if (size > 1 && rank % 2 == 1) {
    unsigned char one[3000];
    for (int i = 0; i < 1000; i++) {
      int n, len = 1 + (i * 53) % (int)sizeof one;
      MPI_Status st;
      MPI_Recv(one, sizeof one, MPI_BYTE, rank - 1, 11, MPI_COMM_WORLD, &st);
      MPI_Get_count(&st, MPI_BYTE, &n);
      CHECK(n == len, "blocking burst message %d: %d bytes, expected %d", i, n, len);
      for (int k = 0; k < n; k++)
        CHECK(one[k] == (unsigned char)(i + k * 5), "blocking burst message %d byte %d", i, k);
    }
  }

  /* large messages (rendezvous) both ways at once, and Ssend */
  char *big_out = malloc(BIG), *big_in = malloc(BIG);
  for (int i = 0; i < BIG; i++)
    big_out[i] = (char)(i * 7 + rank);
  MPI_Sendrecv(big_out, BIG, MPI_CHAR, right, 9, big_in, BIG, MPI_CHAR, left, 9, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  for (int i = 0; i < BIG; i++)
    CHECK(big_in[i] == (char)(i * 7 + left), "big byte %d", i);
  if (size > 1) {
    if (rank == 0) {
      int v = 42;
      MPI_Ssend(&v, 1, MPI_INT, 1, 3, MPI_COMM_WORLD);
    } else if (rank == 1) {
      int v;
      MPI_Recv(&v, 1, MPI_INT, 0, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      CHECK(v == 42, "ssend value %d", v);
    }
  }

  /* Large messages whose request-to-send carries their first bytes (128 KiB,
   * FMPI_RNDV_PREFIX_BYTES): found unexpected and probed, received into buffers
   * smaller than that prefix and smaller than the message (truncated, the rest
   * of the message still drained), received by a receive posted before the
   * message came, and by one posted as soon as Iprobe sees it (its prefix may
   * still be arriving). */
  if (size > 1) {
    enum { LEN = 512 * 1024 + 5, CUT_SMALL = 1000, CUT_MID = 200 * 1024 + 3, PROBED = 20 };
    unsigned char *out = malloc((size_t)LEN * 4), *in = malloc(LEN);
    CHECK(out != NULL && in != NULL, "malloc");
    for (int m = 0; m < 4; m++)
      for (int k = 0; k < LEN; k++)
        out[(size_t)m * LEN + k] = (unsigned char)(k * 11 + m * 5 + rank);
#define PREFIXED_BYTE(m, k, from) ((unsigned char)((k) * 11 + (m) * 5 + (from)))
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    /* unexpected: the small message behind them is received first */
    MPI_Request sreq[3];
    MPI_Status st;
    int token = rank, tok = -1;
    MPI_Isend(out, LEN, MPI_BYTE, right, 20, MPI_COMM_WORLD, &sreq[0]);
    MPI_Isend(out + LEN, LEN, MPI_BYTE, right, 20, MPI_COMM_WORLD, &sreq[1]);
    MPI_Isend(out + 2 * (size_t)LEN, LEN, MPI_BYTE, right, 20, MPI_COMM_WORLD, &sreq[2]);
    MPI_Send(&token, 1, MPI_INT, right, 21, MPI_COMM_WORLD);
    MPI_Recv(&tok, 1, MPI_INT, left, 21, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    CHECK(tok == left, "token %d", tok);
    int n, cls;
    MPI_Probe(left, 20, MPI_COMM_WORLD, &st);
    MPI_Get_count(&st, MPI_BYTE, &n);
    CHECK(n == LEN, "probed an unexpected large message of %d bytes, expected %d", n, LEN);
    memset(in, 0, LEN);
    int rv = MPI_Recv(in, CUT_SMALL, MPI_BYTE, left, 20, MPI_COMM_WORLD, &st);
    MPI_Error_class(rv, &cls);
    MPI_Get_count(&st, MPI_BYTE, &n);
    CHECK(cls == MPI_ERR_TRUNCATE && n == CUT_SMALL, "large into %d bytes: class %d count %d", CUT_SMALL, cls, n);
    for (int k = 0; k < CUT_SMALL; k++)
      CHECK(in[k] == PREFIXED_BYTE(0, k, left), "large into %d bytes: byte %d", CUT_SMALL, k);
    CHECK(in[CUT_SMALL] == 0, "large into %d bytes: wrote past the buffer", CUT_SMALL);
    rv = MPI_Recv(in, CUT_MID, MPI_BYTE, left, 20, MPI_COMM_WORLD, &st);
    MPI_Error_class(rv, &cls);
    MPI_Get_count(&st, MPI_BYTE, &n);
    CHECK(cls == MPI_ERR_TRUNCATE && n == CUT_MID, "large into %d bytes: class %d count %d", CUT_MID, cls, n);
    for (int k = 0; k < CUT_MID; k++)
      CHECK(in[k] == PREFIXED_BYTE(1, k, left), "large into %d bytes: byte %d", CUT_MID, k);
    CHECK(in[CUT_MID] == 0, "large into %d bytes: wrote past the buffer", CUT_MID);
    rv = MPI_Recv(in, LEN, MPI_BYTE, left, 20, MPI_COMM_WORLD, &st);
    MPI_Get_count(&st, MPI_BYTE, &n);
    CHECK(rv == MPI_SUCCESS && n == LEN, "unexpected large message: rv %d count %d", rv, n);
    for (int k = 0; k < LEN; k++)
      CHECK(in[k] == PREFIXED_BYTE(2, k, left), "unexpected large message: byte %d", k);
    MPI_Waitall(3, sreq, MPI_STATUSES_IGNORE);
    /* posted before the message came, smaller than the prefix */
    MPI_Request rreq;
    memset(in, 0, LEN);
    MPI_Irecv(in, CUT_SMALL, MPI_BYTE, left, 22, MPI_COMM_WORLD, &rreq);
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Send(out + 3 * (size_t)LEN, LEN, MPI_BYTE, right, 22, MPI_COMM_WORLD);
    rv = MPI_Wait(&rreq, &st);
    MPI_Error_class(rv, &cls);
    MPI_Get_count(&st, MPI_BYTE, &n);
    CHECK(cls == MPI_ERR_TRUNCATE && n == CUT_SMALL, "posted %d bytes: class %d count %d", CUT_SMALL, cls, n);
    for (int k = 0; k < CUT_SMALL; k++)
      CHECK(in[k] == PREFIXED_BYTE(3, k, left), "posted %d bytes: byte %d", CUT_SMALL, k);
    CHECK(in[CUT_SMALL] == 0, "posted %d bytes: wrote past the buffer", CUT_SMALL);
    /* received as soon as Iprobe sees them */
    for (int m = 0; m < PROBED; m++) {
      MPI_Request s1;
      int flag = 0;
      MPI_Isend(out + (size_t)(m % 4) * LEN, LEN, MPI_BYTE, right, 23, MPI_COMM_WORLD, &s1);
      while (!flag)
        MPI_Iprobe(left, 23, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
      MPI_Recv(in, LEN, MPI_BYTE, left, 23, MPI_COMM_WORLD, &st);
      MPI_Get_count(&st, MPI_BYTE, &n);
      CHECK(n == LEN, "probed message %d: count %d", m, n);
      for (int k = 0; k < LEN; k++)
        CHECK(in[k] == PREFIXED_BYTE(m % 4, k, left), "probed message %d: byte %d", m, k);
      MPI_Wait(&s1, MPI_STATUS_IGNORE);
    }
#undef PREFIXED_BYTE
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    free(out);
    free(in);
  }

  /* wildcards: everyone sends its rank to 0, which receives with ANY_SOURCE/ANY_TAG */
  if (rank != 0) {
    MPI_Send(&rank, 1, MPI_INT, 0, 100 + rank, MPI_COMM_WORLD);
  } else {
    int seen = 0;
    for (int i = 1; i < size; i++) {
      int v;
      MPI_Status st;
      MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
      CHECK(st.MPI_TAG == 100 + st.MPI_SOURCE, "probe tag %d source %d", st.MPI_TAG, st.MPI_SOURCE);
      MPI_Recv(&v, 1, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
      CHECK(v == st.MPI_SOURCE && st.MPI_TAG == 100 + v, "wildcard v=%d", v);
      seen |= 1 << v;
    }
    CHECK(seen == ((1 << size) - 2), "seen %x", seen);
  }
  MPI_Barrier(MPI_COMM_WORLD);

  /* self message, PROC_NULL, Iprobe, Waitany/Testall */
  int me = rank * 3, got = -1, flag = 0;
  MPI_Request r2[2];
  MPI_Irecv(&got, 1, MPI_INT, rank, 1, MPI_COMM_WORLD, &r2[0]);
  MPI_Isend(&me, 1, MPI_INT, rank, 1, MPI_COMM_WORLD, &r2[1]);
  int idx;
  MPI_Waitany(2, r2, &idx, MPI_STATUS_IGNORE);
  MPI_Waitany(2, r2, &idx, MPI_STATUS_IGNORE);
  MPI_Waitany(2, r2, &idx, MPI_STATUS_IGNORE);
  CHECK(idx == MPI_UNDEFINED && got == me, "self got %d idx %d", got, idx);
  MPI_Status st;
  MPI_Recv(&got, 1, MPI_INT, MPI_PROC_NULL, 0, MPI_COMM_WORLD, &st);
  CHECK(st.MPI_SOURCE == MPI_PROC_NULL, "proc null source %d", st.MPI_SOURCE);
  MPI_Send(&me, 1, MPI_INT, MPI_PROC_NULL, 0, MPI_COMM_WORLD);
  MPI_Iprobe(MPI_ANY_SOURCE, 77, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
  CHECK(!flag, "nothing with tag 77");

  /* cancel a receive that can never match */
  MPI_Request rc;
  MPI_Irecv(&got, 1, MPI_INT, MPI_ANY_SOURCE, 999, MPI_COMM_WORLD, &rc);
  MPI_Cancel(&rc);
  MPI_Wait(&rc, &st);
  MPI_Test_cancelled(&st, &flag);
  CHECK(flag, "cancelled");

  /* truncation reported with MPI_ERRORS_RETURN */
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int three[3] = { 1, 2, 3 }, one;
  MPI_Sendrecv(three, 3, MPI_INT, right, 11, NULL, 0, MPI_INT, MPI_PROC_NULL, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  int rv = MPI_Recv(&one, 1, MPI_INT, left, 11, MPI_COMM_WORLD, &st);
  int cls;
  MPI_Error_class(rv, &cls);
  CHECK(cls == MPI_ERR_TRUNCATE, "truncate rv %d", rv);
  rv = MPI_Send(&one, 1, MPI_INT, size + 5, 0, MPI_COMM_WORLD);
  CHECK(rv == MPI_ERR_RANK, "bad rank rv %d", rv);
  char msg[MPI_MAX_ERROR_STRING];
  int len;
  MPI_Error_string(MPI_ERR_RANK, msg, &len);
  CHECK(len > 0 && strlen(msg) == (size_t)len, "error string");
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);

  /* Testsome / Request_free on a pending send */
  MPI_Request rs[2];
  int a = rank, b = -1;
  MPI_Irecv(&b, 1, MPI_INT, left, 12, MPI_COMM_WORLD, &rs[0]);
  MPI_Isend(&a, 1, MPI_INT, right, 12, MPI_COMM_WORLD, &rs[1]);
  int done = 0, outc, ind[2];
  while (done < 2) {
    MPI_Testsome(2, rs, &outc, ind, MPI_STATUSES_IGNORE);
    if (outc != MPI_UNDEFINED)
      done += outc;
  }
  CHECK(b == left, "testsome b=%d", b);
  MPI_Request rf;
  MPI_Isend(&a, 1, MPI_INT, right, 13, MPI_COMM_WORLD, &rf);
  MPI_Request_free(&rf);
  MPI_Recv(&b, 1, MPI_INT, left, 13, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  CHECK(b == left && rf == MPI_REQUEST_NULL, "request_free");

  /* A freed communicator keeps its context while a receive is pending on it
   * (MPI 3.1 6.4.3: pending operations complete normally): even ranks post a
   * wildcard receive on a Comm_idup d1 and everyone frees d1; the next
   * Comm_idup (whose agreement takes the smallest context free on all ranks)
   * must not get d1's, so the odd partner's message on d2 arrives there and
   * the stale receive is cancelled. Debian's MPICH 4.0.2 fails this check. */
  {
    int partner = rank % 2 == 0 ? rank + 1 : rank - 1;
    MPI_Comm d1, d2;
    MPI_Request idup, stale = MPI_REQUEST_NULL;
    int old = -1;
    MPI_Comm_idup(MPI_COMM_WORLD, &d1, &idup);
    MPI_Wait(&idup, MPI_STATUS_IGNORE);
    if (rank % 2 == 0 && partner < size)
      MPI_Irecv(&old, 1, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, d1, &stale);
    MPI_Comm_free(&d1);
    MPI_Comm_idup(MPI_COMM_WORLD, &d2, &idup);
    MPI_Wait(&idup, MPI_STATUS_IGNORE);
    if (rank % 2 == 1) {
      int v = 5000 + rank;
      MPI_Send(&v, 1, MPI_INT, partner, 5, d2);
    } else if (partner < size) {
      int got = -1, done = 0, stale_done = 0;
      MPI_Status st;
      MPI_Request r;
      MPI_Irecv(&got, 1, MPI_INT, partner, 5, d2, &r);
      for (double until = MPI_Wtime() + 20; !done && !stale_done && MPI_Wtime() < until;) {
        MPI_Test(&r, &done, MPI_STATUS_IGNORE);
        MPI_Test(&stale, &stale_done, &st);
      }
      CHECK(done && got == 5000 + partner && !stale_done, "freed context reused: got %d on d2, %d on the freed d1", got,
            old);
      MPI_Cancel(&stale);
      MPI_Wait(&stale, &st);
      int cancelled = 0;
      MPI_Test_cancelled(&st, &cancelled);
      CHECK(cancelled, "the receive pending on the freed communicator was not cancelled");
    }
    MPI_Comm_free(&d2);
  }

  /* A generalized request freed before MPI_Grequest_complete: its free callback runs in the
   * MPI_Grequest_complete, the later of the two calls (MPI 3.1 12.2; Debian's MPICH 4.0.2 runs it in
   * MPI_Request_free), and the handle kept for that call stays valid until then. */
  {
    MPI_Request g, keep;
    int frees = 0;
    MPI_Grequest_start(greq_query, greq_free, greq_cancel, &frees, &g);
    keep = g;
    MPI_Request_free(&g);
    CHECK(g == MPI_REQUEST_NULL && frees == 0, "grequest freed too early: %d free calls", frees);
    MPI_Request other;
    MPI_Grequest_start(greq_query, greq_free, greq_cancel, &frees, &other); /* must not take keep's handle */
    CHECK(other != keep, "a new request got the handle of a freed, incomplete generalized request");
    MPI_Grequest_complete(keep);
    CHECK(frees == 1, "free callback calls after MPI_Grequest_complete: %d", frees);
    MPI_Grequest_complete(other);
    MPI_Wait(&other, MPI_STATUS_IGNORE);
    CHECK(frees == 2 && other == MPI_REQUEST_NULL, "free callback calls after the Wait: %d", frees);
  }

  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0)
    printf("p2p ok size %d\n", size);
  free(big_out);
  free(big_in);
  MPI_Finalize();
  return 0;
}
