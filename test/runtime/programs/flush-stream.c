/* Continuous traffic for repeated flushes: in each round every rank sends one
 * message to every other rank (sizes from 0 B to MAX_MSG, above the
 * runtime's 4 MiB data frame, so eager, rendezvous and multi-chunk data
 * frames are all in flight at any moment),
 * half received with MPI_ANY_SOURCE. Every message's contents name its
 * sender, receiver, round and size and are checked. The ranks stop together
 * once the file argv[1] exists; rank 0 prints "stream ok" and the totals. */
#include <string.h>
#include <unistd.h>
#include "check.h"

/* Larger than FMPI_DATA_CHUNK_BYTES (src/runtime/fmpi.h): such a message goes in two data frames. */
#define MAX_MSG 4500000

static size_t msg_bytes(int src, int dst, int round)
{
  unsigned h = (unsigned)(src * 131 + dst * 31 + round * 7);
  static const size_t sizes[] = { 0, 8, 100, 4096, 65536, 65537, 300000, 1500000, MAX_MSG };
  return sizes[h % 9];
}

static unsigned char content(int src, int dst, int round, size_t i)
{
  return (unsigned char)(src * 7 + dst * 3 + round + i * 11);
}

int main(int argc, char **argv)
{
  int rank, size;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  CHECK(argc == 2, "usage: flush-stream STOP_FILE");
  unsigned char **out = calloc((size_t)size, sizeof *out), **in = calloc((size_t)size, sizeof *in);
  for (int p = 0; p < size; p++) {
    out[p] = malloc(MAX_MSG);
    in[p] = malloc(MAX_MSG);
  }
  MPI_Request *req = malloc(sizeof *req * 2 * (size_t)size);
  MPI_Status *st = malloc(sizeof *st * 2 * (size_t)size);
  long long bytes = 0, messages = 0;
  int round = 0;
  printf("started\n");
  fflush(stdout);
  for (;; round++) {
    int n = 0;
    /* receives: from lower ranks by name, from higher ranks by wildcard (tagged with the source) */
    for (int p = 0; p < size; p++) {
      if (p == rank)
        continue;
      MPI_Irecv(in[p], MAX_MSG, MPI_BYTE, p < rank ? p : MPI_ANY_SOURCE, p < rank ? round : 1000000 + p,
                MPI_COMM_WORLD, &req[n++]);
    }
    for (int p = 0; p < size; p++) {
      if (p == rank)
        continue;
      size_t len = msg_bytes(rank, p, round);
      for (size_t i = 0; i < len; i++)
        out[p][i] = content(rank, p, round, i);
      MPI_Isend(out[p], (int)len, MPI_BYTE, p, rank < p ? round : 1000000 + rank, MPI_COMM_WORLD, &req[n++]);
    }
    MPI_Waitall(n, req, st);
    int k = 0;
    for (int p = 0; p < size; p++) {
      if (p == rank)
        continue;
      int cnt;
      MPI_Get_count(&st[k], MPI_BYTE, &cnt);
      CHECK(st[k].MPI_SOURCE == p, "round %d: source %d, expected %d", round, st[k].MPI_SOURCE, p);
      CHECK((size_t)cnt == msg_bytes(p, rank, round), "round %d from %d: %d bytes", round, p, cnt);
      for (int i = 0; i < cnt; i++)
        CHECK(in[p][i] == content(p, rank, round, (size_t)i), "round %d from %d: byte %d", round, p, i);
      bytes += cnt;
      messages++;
      k++;
    }
    int stop = access(argv[1], F_OK) == 0, any;
    MPI_Allreduce(&stop, &any, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    if (any)
      break;
  }
  long long tot[2] = { messages, bytes }, sum[2];
  MPI_Reduce(tot, sum, 2, MPI_LONG_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
  if (rank == 0)
    printf("stream ok rounds %d messages %lld\n", round + 1, sum[0]);
  MPI_Finalize();
  return 0;
}
