/* MPI_Alloc_mem / MPI_Free_mem: the heap (TCP channels need no registered memory). */
#define _GNU_SOURCE
#include <stdlib.h>

#include "fmpi.h"

#pragma weak MPI_Alloc_mem = PMPI_Alloc_mem
#pragma weak MPI_Free_mem = PMPI_Free_mem

int PMPI_Alloc_mem(MPI_Aint size, MPI_Info info, void *baseptr)
{
  (void)info;
  FMPI_CHECK_INIT("MPI_Alloc_mem");
  if (size < 0)
    return fmpi_error(NULL, MPI_ERR_ARG, "MPI_Alloc_mem");
  void *p = malloc(size > 0 ? (size_t)size : 1);
  if (p == NULL)
    return fmpi_error(NULL, MPI_ERR_NO_MEM, "MPI_Alloc_mem");
  *(void **)baseptr = p;
  return MPI_SUCCESS;
}

int PMPI_Free_mem(void *base)
{
  FMPI_CHECK_INIT("MPI_Free_mem");
  free(base);
  return MPI_SUCCESS;
}
