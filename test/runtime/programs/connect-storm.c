/* Every rank connects to every other at the same moment, ROUNDS times, while
 * the test flushes the job during the connects. Before round k the ranks hold
 * no connection (none yet, or all closed by the previous flush); each waits
 * for the file DIR/go-k and then, without any other MPI call first, sends one
 * message to every other rank and receives one from every other (half of them
 * through MPI_ANY_SOURCE), so size*(size-1) first messages and as many
 * connection attempts, crossing ones included, race the flush. Every payload
 * names its sender, receiver and round and is checked; each rank prints
 * "round k ok" after each round, and finalizes once DIR/end exists. */
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

#define MSG_INTS 1000

static int content(int src, int dst, int round, int i) { return src * 1000003 + dst * 1009 + round * 17 + i; }

/* Polls every 20 us, so all ranks leave within moments of each other. */
static void wait_for_file(const char *path)
{
  struct timespec ts = { 0, 20000 };
  while (access(path, F_OK) != 0)
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
  int rank, size;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  CHECK(argc == 3, "usage: connect-storm DIR ROUNDS");
  int rounds = atoi(argv[2]);
  int *out = malloc(sizeof(int) * MSG_INTS * (size_t)size), *in = malloc(sizeof(int) * MSG_INTS * (size_t)size);
  MPI_Request *req = malloc(sizeof *req * 2 * (size_t)size);
  MPI_Status *st = malloc(sizeof *st * 2 * (size_t)size);
  printf("ready\n");
  fflush(stdout);
  for (int round = 0; round < rounds; round++) {
    char go[4096];
    snprintf(go, sizeof go, "%s/go-%d", argv[1], round);
    wait_for_file(go);
    int n = 0;
    for (int p = 0; p < size; p++) {
      if (p == rank)
        continue;
      int *slot = in + (size_t)p * MSG_INTS;
      memset(slot, 0xff, sizeof(int) * MSG_INTS);
      /* odd senders through the wildcard, told apart by their tag */
      MPI_Irecv(slot, MSG_INTS, MPI_INT, p % 2 ? MPI_ANY_SOURCE : p, round * 1000 + p, MPI_COMM_WORLD, &req[n++]);
    }
    for (int p = 0; p < size; p++) {
      if (p == rank)
        continue;
      int *slot = out + (size_t)p * MSG_INTS;
      for (int i = 0; i < MSG_INTS; i++)
        slot[i] = content(rank, p, round, i);
      MPI_Isend(slot, MSG_INTS, MPI_INT, p, round * 1000 + rank, MPI_COMM_WORLD, &req[n++]);
    }
    MPI_Waitall(n, req, st);
    int k = 0;
    for (int p = 0; p < size; p++) {
      if (p == rank)
        continue;
      CHECK(st[k].MPI_SOURCE == p, "round %d: receive %d: source %d, expected %d", round, k, st[k].MPI_SOURCE, p);
      k++;
      const int *slot = in + (size_t)p * MSG_INTS;
      for (int i = 0; i < MSG_INTS; i++)
        CHECK(slot[i] == content(p, rank, round, i), "round %d: message from rank %d wrong at int %d", round, p, i);
    }
    printf("round %d ok\n", round);
    fflush(stdout);
  }
  /* Not into MPI_Finalize before the test says so: a rank that finished the last
   * round before that round's flush reached it would answer it finalized and exit. */
  char end[4096];
  snprintf(end, sizeof end, "%s/end", argv[1]);
  wait_for_file(end);
  free(out);
  free(in);
  free(req);
  free(st);
  MPI_Finalize();
  return 0;
}
