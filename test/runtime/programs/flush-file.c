/* MPI-IO writes wait for the resume: every rank opens argv[1] (MPI_COMM_WORLD),
 * prints "ready", computes without calling MPI until the file argv[2] exists,
 * then writes its 1 KiB block with MPI_File_write_at and prints "wrote". The
 * test flushes the ranks, creates argv[2] and sees no byte written until it
 * resumes them. */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"

#define BLOCK 1024

int main(int argc, char **argv)
{
  int rank;
  MPI_File fh;
  char block[BLOCK];
  struct stat st;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  CHECK(argc == 3, "usage: flush-file DATA_FILE GO_FILE");
  CHECK(MPI_File_open(MPI_COMM_WORLD, argv[1], MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL, &fh) == MPI_SUCCESS, "open %s", argv[1]);
  memset(block, 'a' + rank, sizeof block);
  printf("ready\n");
  fflush(stdout);
  while (stat(argv[2], &st) != 0)
    usleep(10000);
  CHECK(MPI_File_write_at(fh, (MPI_Offset)rank * BLOCK, block, BLOCK, MPI_CHAR, MPI_STATUS_IGNORE) == MPI_SUCCESS, "write");
  printf("wrote\n");
  fflush(stdout);
  MPI_File_close(&fh);
  MPI_Finalize();
  return 0;
}
