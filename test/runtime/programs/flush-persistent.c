/* Persistent requests across a flush, on 2 ranks. Before the flush: rank 1
 * has started a persistent receive of a 2 MiB message (rendezvous) and a
 * persistent MPI_ANY_SOURCE receive; rank 0 has started a persistent
 * synchronous send that rank 1 receives only after the resume (its
 * request-to-send is drained into rank 1's memory). After the resume (file
 * argv[1] exists) rank 0 starts the matching sends; then every request is
 * started once more, with new contents. Rank 1 prints "rank 1 ok". */
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

#define BIG (2 * 1024 * 1024)
#define SYNC_INTS 50000

static void wait_for_file(const char *path)
{
  struct timespec ts = { 0, 1000000 };
  while (access(path, F_OK) != 0)
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
  int rank, size;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  CHECK(argc == 2 && size == 2, "usage: 2 ranks, flush-persistent GO_FILE");
  unsigned char *big = malloc(BIG);
  int *sync = malloc(sizeof(int) * SYNC_INTS), small = -1;
  MPI_Request r[3];
  MPI_Status st[3];
  /* the connection is open before the flush, so the request-to-send below is
   * written at once and the flush drains it into rank 1's memory */
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    MPI_Ssend_init(sync, SYNC_INTS, MPI_INT, 1, 7, MPI_COMM_WORLD, &r[0]);
    MPI_Send_init(big, BIG, MPI_BYTE, 1, 5, MPI_COMM_WORLD, &r[1]);
    MPI_Send_init(&small, 1, MPI_INT, 1, 6, MPI_COMM_WORLD, &r[2]);
    for (int round = 0; round < 2; round++) {
      for (int i = 0; i < SYNC_INTS; i++)
        sync[i] = i * 3 + round;
      for (int i = 0; i < BIG; i++)
        big[i] = (unsigned char)(i * 7 + round);
      small = 4242 + round;
      MPI_Start(&r[0]);
      if (round == 0) {
        printf("started\n");
        fflush(stdout);
        wait_for_file(argv[1]);
      }
      MPI_Startall(2, &r[1]);
      MPI_Waitall(3, r, st);
      CHECK(r[0] != MPI_REQUEST_NULL, "a persistent request keeps its handle");
    }
  } else {
    int *got = malloc(sizeof(int) * SYNC_INTS);
    MPI_Recv_init(big, BIG, MPI_BYTE, 0, 5, MPI_COMM_WORLD, &r[0]);
    MPI_Recv_init(&small, 1, MPI_INT, MPI_ANY_SOURCE, 6, MPI_COMM_WORLD, &r[1]);
    for (int round = 0; round < 2; round++) {
      memset(big, 0, BIG);
      MPI_Startall(2, r);
      if (round == 0) {
        printf("posted\n");
        fflush(stdout);
        wait_for_file(argv[1]);
      }
      MPI_Recv(got, SYNC_INTS, MPI_INT, 0, 7, MPI_COMM_WORLD, &st[2]);
      MPI_Waitall(2, r, st);
      for (int i = 0; i < SYNC_INTS; i++)
        CHECK(got[i] == i * 3 + round, "round %d: synchronous message wrong at %d", round, i);
      for (int i = 0; i < BIG; i++)
        CHECK(big[i] == (unsigned char)(i * 7 + round), "round %d: large message wrong at byte %d", round, i);
      CHECK(small == 4242 + round, "round %d: small message %d", round, small);
      CHECK(st[1].MPI_SOURCE == 0 && st[1].MPI_TAG == 6, "round %d: wildcard status", round);
    }
    printf("rank 1 ok\n");
    free(got);
  }
  for (int i = 0; i < (rank == 0 ? 3 : 2); i++)
    MPI_Request_free(&r[i]);
  free(big);
  free(sync);
  MPI_Finalize();
  return 0;
}
