/* MPI-IO's split collectives (MPI 3.1 13.4.5) and the nonblocking forms of
 * the collective calls (13.4.2-3) and of the shared file pointer's calls
 * (13.4.4).
 *
 * Like the other nonblocking calls (file.c) these do their whole work when
 * they start: a _begin is the collective call, whose status waits in the
 * file for the _end; an i-form returns a request that is already complete.
 * The standard allows it (a _begin may do all the work; the buffer is not the
 * caller's until the _end anyway), and it keeps a rank's state at a
 * checkpoint simple: no I/O is ever in flight in a dumped rank. One split
 * collective at a time per file: a second _begin, or an _end with none
 * begun, is MPI_ERR_OTHER, as the standard makes them erroneous. */
#define _GNU_SOURCE
#include "fmpi.h"

#pragma weak MPI_File_read_at_all_begin = PMPI_File_read_at_all_begin
#pragma weak MPI_File_read_at_all_end = PMPI_File_read_at_all_end
#pragma weak MPI_File_write_at_all_begin = PMPI_File_write_at_all_begin
#pragma weak MPI_File_write_at_all_end = PMPI_File_write_at_all_end
#pragma weak MPI_File_read_all_begin = PMPI_File_read_all_begin
#pragma weak MPI_File_read_all_end = PMPI_File_read_all_end
#pragma weak MPI_File_write_all_begin = PMPI_File_write_all_begin
#pragma weak MPI_File_write_all_end = PMPI_File_write_all_end
#pragma weak MPI_File_read_ordered_begin = PMPI_File_read_ordered_begin
#pragma weak MPI_File_read_ordered_end = PMPI_File_read_ordered_end
#pragma weak MPI_File_write_ordered_begin = PMPI_File_write_ordered_begin
#pragma weak MPI_File_write_ordered_end = PMPI_File_write_ordered_end
#pragma weak MPI_File_iread_at_all = PMPI_File_iread_at_all
#pragma weak MPI_File_iwrite_at_all = PMPI_File_iwrite_at_all
#pragma weak MPI_File_iread_all = PMPI_File_iread_all
#pragma weak MPI_File_iwrite_all = PMPI_File_iwrite_all
#pragma weak MPI_File_iread_shared = PMPI_File_iread_shared
#pragma weak MPI_File_iwrite_shared = PMPI_File_iwrite_shared

/* A _begin: the collective call, its status kept for the _end. */
#define SPLIT_BEGIN(f, name, call)                                                    \
  do {                                                                                \
    if ((f)->split_open)                                                              \
      return fmpi_file_error((f), MPI_ERR_OTHER, name); /* one at a time per file */ \
    int rv_ = (call);                                                                 \
    (f)->split_open = true;                                                           \
    return rv_;                                                                       \
  } while (0)

static int split_end(MPI_File fh, MPI_Status *status, const char *name)
{
  GET_FILE(fh, name);
  if (!f->split_open)
    return fmpi_file_error(f, MPI_ERR_OTHER, name); /* no split collective begun */
  f->split_open = false;
  if (status != MPI_STATUS_IGNORE && status != NULL)
    *status = f->split_status;
  return MPI_SUCCESS;
}

int PMPI_File_read_at_all_begin(MPI_File fh, MPI_Offset offset, void *buf, int count, MPI_Datatype datatype)
{
  GET_FILE(fh, "MPI_File_read_at_all_begin");
  SPLIT_BEGIN(f, "MPI_File_read_at_all_begin",
              PMPI_File_read_at_all(fh, offset, buf, count, datatype, &f->split_status));
}

int PMPI_File_write_at_all_begin(MPI_File fh, MPI_Offset offset, const void *buf, int count, MPI_Datatype datatype)
{
  GET_FILE(fh, "MPI_File_write_at_all_begin");
  SPLIT_BEGIN(f, "MPI_File_write_at_all_begin",
              PMPI_File_write_at_all(fh, offset, buf, count, datatype, &f->split_status));
}

int PMPI_File_read_all_begin(MPI_File fh, void *buf, int count, MPI_Datatype datatype)
{
  GET_FILE(fh, "MPI_File_read_all_begin");
  SPLIT_BEGIN(f, "MPI_File_read_all_begin", PMPI_File_read_all(fh, buf, count, datatype, &f->split_status));
}

int PMPI_File_write_all_begin(MPI_File fh, const void *buf, int count, MPI_Datatype datatype)
{
  GET_FILE(fh, "MPI_File_write_all_begin");
  SPLIT_BEGIN(f, "MPI_File_write_all_begin", PMPI_File_write_all(fh, buf, count, datatype, &f->split_status));
}

int PMPI_File_read_ordered_begin(MPI_File fh, void *buf, int count, MPI_Datatype datatype)
{
  GET_FILE(fh, "MPI_File_read_ordered_begin");
  SPLIT_BEGIN(f, "MPI_File_read_ordered_begin", PMPI_File_read_ordered(fh, buf, count, datatype, &f->split_status));
}

int PMPI_File_write_ordered_begin(MPI_File fh, const void *buf, int count, MPI_Datatype datatype)
{
  GET_FILE(fh, "MPI_File_write_ordered_begin");
  SPLIT_BEGIN(f, "MPI_File_write_ordered_begin",
              PMPI_File_write_ordered(fh, buf, count, datatype, &f->split_status));
}

int PMPI_File_read_at_all_end(MPI_File fh, void *buf, MPI_Status *status)
{
  (void)buf;
  return split_end(fh, status, "MPI_File_read_at_all_end");
}

int PMPI_File_write_at_all_end(MPI_File fh, const void *buf, MPI_Status *status)
{
  (void)buf;
  return split_end(fh, status, "MPI_File_write_at_all_end");
}

int PMPI_File_read_all_end(MPI_File fh, void *buf, MPI_Status *status)
{
  (void)buf;
  return split_end(fh, status, "MPI_File_read_all_end");
}

int PMPI_File_write_all_end(MPI_File fh, const void *buf, MPI_Status *status)
{
  (void)buf;
  return split_end(fh, status, "MPI_File_write_all_end");
}

int PMPI_File_read_ordered_end(MPI_File fh, void *buf, MPI_Status *status)
{
  (void)buf;
  return split_end(fh, status, "MPI_File_read_ordered_end");
}

int PMPI_File_write_ordered_end(MPI_File fh, const void *buf, MPI_Status *status)
{
  (void)buf;
  return split_end(fh, status, "MPI_File_write_ordered_end");
}

int PMPI_File_iread_at_all(MPI_File fh, MPI_Offset offset, void *buf, int count, MPI_Datatype datatype,
                           MPI_Request *request)
{
  MPI_Status st = { 0 };
  return fmpi_file_as_request(fh, PMPI_File_read_at_all(fh, offset, buf, count, datatype, &st), &st, request);
}

int PMPI_File_iwrite_at_all(MPI_File fh, MPI_Offset offset, const void *buf, int count, MPI_Datatype datatype,
                            MPI_Request *request)
{
  MPI_Status st = { 0 };
  return fmpi_file_as_request(fh, PMPI_File_write_at_all(fh, offset, buf, count, datatype, &st), &st, request);
}

int PMPI_File_iread_all(MPI_File fh, void *buf, int count, MPI_Datatype datatype, MPI_Request *request)
{
  MPI_Status st = { 0 };
  return fmpi_file_as_request(fh, PMPI_File_read_all(fh, buf, count, datatype, &st), &st, request);
}

int PMPI_File_iwrite_all(MPI_File fh, const void *buf, int count, MPI_Datatype datatype, MPI_Request *request)
{
  MPI_Status st = { 0 };
  return fmpi_file_as_request(fh, PMPI_File_write_all(fh, buf, count, datatype, &st), &st, request);
}

int PMPI_File_iread_shared(MPI_File fh, void *buf, int count, MPI_Datatype datatype, MPI_Request *request)
{
  MPI_Status st = { 0 };
  return fmpi_file_as_request(fh, PMPI_File_read_shared(fh, buf, count, datatype, &st), &st, request);
}

int PMPI_File_iwrite_shared(MPI_File fh, const void *buf, int count, MPI_Datatype datatype, MPI_Request *request)
{
  MPI_Status st = { 0 };
  return fmpi_file_as_request(fh, PMPI_File_write_shared(fh, buf, count, datatype, &st), &st, request);
}
