/* The collectives' kept temporaries (src/runtime/scratch.c) are given back at
 * a flush, before the dump: no image carries them. Two Allreduces of 40 MiB
 * (above glibc's largest mmap threshold, so a block given back leaves the
 * process at once) with an op declared non-commutative, so every rank receives
 * the whole vector of its partner into its temporary (recursive doubling),
 * which it keeps after the first; the program
 * frees its own buffers, prints "ready" and computes without calling MPI
 * until the file argv[1] exists (the test reads VmRSS, flushes, reads it
 * again, resumes). Then one more Allreduce, checked. */
#include <unistd.h>
#include "check.h"

#define N (10 * 1024 * 1024) /* ints: 40 MiB */

static void add(void *in, void *inout, int *len, MPI_Datatype *type)
{
  (void)type;
  for (int i = 0; i < *len; i++)
    ((int *)inout)[i] += ((int *)in)[i];
}

int main(int argc, char **argv)
{
  int rank, size;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  CHECK(argc == 2, "usage: flush-scratch GO_FILE");
  int *in = malloc(sizeof(int) * N), *out = malloc(sizeof(int) * N);
  CHECK(in != NULL && out != NULL, "out of memory");
  for (int i = 0; i < N; i++)
    in[i] = i % 1000 + rank;
  long wrong = 0;
  MPI_Op op;
  MPI_Op_create(add, 0, &op);
  for (int k = 0; k < 2; k++) {
    MPI_Allreduce(in, out, N, MPI_INT, op, MPI_COMM_WORLD);
    for (int i = 0; i < N; i++)
      wrong += out[i] != size * (i % 1000) + size * (size - 1) / 2;
  }
  CHECK(wrong == 0, "rank %d: %ld elements of the Allreduces wrong", rank, wrong);
  MPI_Op_free(&op);
  free(in);
  free(out);
  printf("ready\n");
  fflush(stdout);
  while (access(argv[1], F_OK) != 0)
    usleep(10000);
  int mine = rank + 1, sum = 0;
  MPI_Allreduce(&mine, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  printf("rank %d sum %d\n", rank, sum);
  MPI_Finalize();
  return 0;
}
