/* Shared by the runtime test programs: a failed check aborts the job with code 2. */
#ifndef CHECK_H
#define CHECK_H
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      int r_;                                                              \
      MPI_Comm_rank(MPI_COMM_WORLD, &r_);                                  \
      fprintf(stderr, "rank %d: CHECK FAILED %s:%d: %s: ", r_, __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                        \
      fprintf(stderr, "\n");                                               \
      MPI_Abort(MPI_COMM_WORLD, 2);                                        \
    }                                                                      \
  } while (0)

#endif
