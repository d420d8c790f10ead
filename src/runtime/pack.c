/*
 * MPI_Pack, MPI_Unpack, MPI_Pack_size: a datatype's bytes packed into (and out
 * of) a user buffer, for messages sent as MPI_PACKED. The packed form is the
 * type's bytes in type-map order with no header, the same on every rank of a
 * job (all ranks of a Ferry job share one architecture).
 */
#include "fmpi.h"

#pragma weak MPI_Pack = PMPI_Pack
#pragma weak MPI_Unpack = PMPI_Unpack
#pragma weak MPI_Pack_size = PMPI_Pack_size

static int check_comm(MPI_Comm comm, fmpi_comm **c, const char *fname)
{
  FMPI_CHECK_INIT(fname);
  if ((*c = fmpi_comm_get(comm)) == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, fname);
  return MPI_SUCCESS;
}

static int check_type(fmpi_comm *c, int count, MPI_Datatype type, fmpi_type **t, const char *fname)
{
  if (count < 0)
    return fmpi_error(c, MPI_ERR_COUNT, fname);
  if ((*t = fmpi_type_get(type)) == NULL || !(*t)->committed)
    return fmpi_error(c, MPI_ERR_TYPE, fname);
  return MPI_SUCCESS;
}

int PMPI_Pack_size(int incount, MPI_Datatype datatype, MPI_Comm comm, int *size)
{
  fmpi_comm *c = NULL;
  fmpi_type *t = NULL;
  int rv;
  if ((rv = check_comm(comm, &c, "MPI_Pack_size")) != MPI_SUCCESS || (rv = check_type(c, incount, datatype, &t, "MPI_Pack_size")) != MPI_SUCCESS)
    return rv;
  if (size == NULL)
    return fmpi_error(c, MPI_ERR_ARG, "MPI_Pack_size");
  if ((uint64_t)incount * t->size > INT32_MAX)
    return fmpi_error(c, MPI_ERR_COUNT, "MPI_Pack_size");
  *size = (int)((size_t)incount * t->size);
  return MPI_SUCCESS;
}

int PMPI_Pack(const void *inbuf, int incount, MPI_Datatype datatype, void *outbuf, int outsize, int *position, MPI_Comm comm)
{
  fmpi_comm *c = NULL;
  fmpi_type *t = NULL;
  int rv;
  if ((rv = check_comm(comm, &c, "MPI_Pack")) != MPI_SUCCESS || (rv = check_type(c, incount, datatype, &t, "MPI_Pack")) != MPI_SUCCESS)
    return rv;
  if (position == NULL || *position < 0 || outsize < 0)
    return fmpi_error(c, MPI_ERR_ARG, "MPI_Pack");
  size_t bytes = (size_t)incount * t->size;
  if ((size_t)*position + bytes > (size_t)outsize)
    return fmpi_error(c, MPI_ERR_TRUNCATE, "MPI_Pack");
  if (bytes > 0)
    fmpi_pack(t, inbuf, incount, (uint8_t *)outbuf + *position);
  *position += (int)bytes;
  return MPI_SUCCESS;
}

int PMPI_Unpack(const void *inbuf, int insize, int *position, void *outbuf, int outcount, MPI_Datatype datatype, MPI_Comm comm)
{
  fmpi_comm *c = NULL;
  fmpi_type *t = NULL;
  int rv;
  if ((rv = check_comm(comm, &c, "MPI_Unpack")) != MPI_SUCCESS || (rv = check_type(c, outcount, datatype, &t, "MPI_Unpack")) != MPI_SUCCESS)
    return rv;
  if (position == NULL || *position < 0 || insize < 0)
    return fmpi_error(c, MPI_ERR_ARG, "MPI_Unpack");
  size_t bytes = (size_t)outcount * t->size;
  if ((size_t)*position + bytes > (size_t)insize)
    return fmpi_error(c, MPI_ERR_TRUNCATE, "MPI_Unpack");
  if (bytes > 0)
    fmpi_unpack(t, (const uint8_t *)inbuf + *position, bytes, outbuf);
  *position += (int)bytes;
  return MPI_SUCCESS;
}
