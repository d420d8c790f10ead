/* Messages held across a flush: rank 0 sends 20 eager messages and one large
 * (rendezvous) message to rank 1, then blocks in MPI_Wait for the large one.
 * Rank 1 computes without calling MPI until the file argv[1] exists, so the
 * flush drains everything into its unexpected queue and the rendezvous is
 * half done (RTS received, no CTS) when the sockets close. After the resume
 * rank 1 receives all of it and checks order and contents. Rank 1's first
 * receive is a wildcard Irecv posted before the flush (matched by a drained
 * message); rank 2 posts an Irecv before the flush that rank 0 only answers
 * after the resume. */
#include <string.h>
#include <unistd.h>
#include "check.h"

#define NSMALL 20
#define SMALL_INTS 1000
#define BIG_BYTES (4 * 1024 * 1024 + 3) /* two data frames of FMPI_DATA_CHUNK_BYTES (src/runtime/fmpi.h) */

int main(int argc, char **argv)
{
  int rank, size;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  CHECK(argc == 2 && size >= 2, "usage: flush-pending GO_FILE, on 2 or more ranks");
  static int small[NSMALL][SMALL_INTS];
  unsigned char *big = malloc(BIG_BYTES);
  if (rank == 0) {
    MPI_Request req[NSMALL], bigreq;
    for (int i = 0; i < NSMALL; i++) {
      for (int k = 0; k < SMALL_INTS; k++)
        small[i][k] = i * 100000 + k;
      MPI_Isend(small[i], SMALL_INTS, MPI_INT, 1, 1, MPI_COMM_WORLD, &req[i]);
    }
    for (int i = 0; i < BIG_BYTES; i++)
      big[i] = (unsigned char)(i * 13 + 5);
    MPI_Isend(big, BIG_BYTES, MPI_BYTE, 1, 2, MPI_COMM_WORLD, &bigreq);
    MPI_Waitall(NSMALL, req, MPI_STATUSES_IGNORE);
    printf("sent\n");
    fflush(stdout);
    MPI_Wait(&bigreq, MPI_STATUS_IGNORE); /* completes only after the resume */
    int late = 4242;
    if (size > 2)
      MPI_Send(&late, 1, MPI_INT, 2, 4, MPI_COMM_WORLD);
    int reply;
    MPI_Recv(&reply, 1, MPI_INT, 1, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    printf("rank 0 done reply %d\n", reply);
  } else if (rank == 1) {
    static int first[SMALL_INTS];
    MPI_Request fr;
    MPI_Irecv(first, SMALL_INTS, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &fr);
    printf("ready\n");
    fflush(stdout);
    while (access(argv[1], F_OK) != 0)
      usleep(1000);
    for (int i = 0; i < NSMALL; i++) {
      int b[SMALL_INTS], *buf = i == 0 ? first : b;
      MPI_Status st;
      if (i == 0)
        MPI_Wait(&fr, &st);
      else
        MPI_Recv(buf, SMALL_INTS, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
      CHECK(st.MPI_SOURCE == 0 && st.MPI_TAG == 1, "message %d from %d tag %d", i, st.MPI_SOURCE, st.MPI_TAG);
      for (int k = 0; k < SMALL_INTS; k++)
        CHECK(buf[k] == i * 100000 + k, "message %d word %d = %d", i, k, buf[k]);
    }
    MPI_Status st;
    MPI_Recv(big, BIG_BYTES, MPI_BYTE, 0, 2, MPI_COMM_WORLD, &st);
    int n;
    MPI_Get_count(&st, MPI_BYTE, &n);
    CHECK(n == BIG_BYTES, "big count %d", n);
    for (int i = 0; i < BIG_BYTES; i++)
      CHECK(big[i] == (unsigned char)(i * 13 + 5), "big byte %d", i);
    int reply = NSMALL + 1;
    MPI_Send(&reply, 1, MPI_INT, 0, 3, MPI_COMM_WORLD);
    printf("rank 1 received %d messages in order\n", NSMALL + 1);
  } else if (rank == 2) {
    int late = 0;
    MPI_Request lr;
    MPI_Irecv(&late, 1, MPI_INT, MPI_ANY_SOURCE, 4, MPI_COMM_WORLD, &lr);
    printf("posted\n");
    fflush(stdout);
    MPI_Wait(&lr, MPI_STATUS_IGNORE);
    printf("rank 2 late %d\n", late);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  free(big);
  MPI_Finalize();
  return 0;
}
