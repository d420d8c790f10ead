/* MPI-IO's shared file pointer (MPI 3.1 section 13.4.4): read/write_shared
 * (each rank in turn, in no set order), read/write_ordered (collective, in
 * rank order), seek_shared and get_position_shared. As in ROMIO, the pointer
 * lives in a hidden file next to the file (.NAME.ferry-shfp), read and moved
 * under an fcntl lock, so ranks on any hosts that see the file share it, and
 * it is in no rank's memory: a checkpoint needs nothing of its own for it.
 * Rank 0 removes the hidden file when the file is closed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fmpi.h"

#pragma weak MPI_File_read_shared = PMPI_File_read_shared
#pragma weak MPI_File_write_shared = PMPI_File_write_shared
#pragma weak MPI_File_read_ordered = PMPI_File_read_ordered
#pragma weak MPI_File_write_ordered = PMPI_File_write_ordered
#pragma weak MPI_File_seek_shared = PMPI_File_seek_shared
#pragma weak MPI_File_get_position_shared = PMPI_File_get_position_shared

/* .NAME.ferry-shfp in the file's directory (the caller frees it). */
static char *pointer_path(const fmpi_file *f)
{
  char *d = strdup(f->path), *b = strdup(f->path), *out = NULL;
  if (d == NULL || b == NULL || asprintf(&out, "%s/.%s.ferry-shfp", dirname(d), basename(b)) < 0)
    fmpi_fatal("out of memory");
  free(d);
  free(b);
  return out;
}

/* Under the lock: *was = the pointer; then it becomes `to` (set) or moves by `by`. */
static int move_pointer(fmpi_file *f, MPI_Offset by, bool set, MPI_Offset to, MPI_Offset *was)
{
  char *path = pointer_path(f);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644), rv = MPI_SUCCESS;
  free(path);
  if (fd < 0)
    return fmpi_errno_class(errno);
  struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
  while (fcntl(fd, F_SETLKW, &lk) != 0)
    if (errno != EINTR) {
      rv = fmpi_errno_class(errno);
      close(fd);
      return rv;
    }
  MPI_Offset cur;
  ssize_t n = pread(fd, &cur, sizeof cur, 0);
  if (n != (ssize_t)sizeof cur)
    cur = f->shared_start; /* not moved yet */
  MPI_Offset next = set ? to : cur + by;
  if (pwrite(fd, &next, sizeof next, 0) != (ssize_t)sizeof next)
    rv = fmpi_errno_class(errno);
  close(fd); /* releases the lock */
  *was = cur;
  return rv;
}

void fmpi_file_shared_forget(fmpi_file *f)
{
  char *path = pointer_path(f);
  unlink(path);
  free(path);
}

/* Etypes that count x datatype amount to. */
static MPI_Offset etypes_of(fmpi_file *f, int count, MPI_Datatype datatype)
{
  fmpi_type *t = fmpi_type_get(datatype), *e = fmpi_type_get(f->etype);
  return t == NULL || count < 0 ? 0 : (MPI_Offset)(t->size * (size_t)count / e->size);
}

static int independent(MPI_File fh, void *buf, int count, MPI_Datatype datatype, bool writing, MPI_Status *status,
                       const char *name)
{
  GET_FILE(fh, name);
  MPI_Offset at;
  int rv = move_pointer(f, etypes_of(f, count, datatype), false, 0, &at);
  if (rv != MPI_SUCCESS)
    return fmpi_file_error(f, rv, name);
  return fmpi_file_transfer(f, at, buf, count, datatype, writing, status, NULL, name);
}

int PMPI_File_read_shared(MPI_File fh, void *buf, int count, MPI_Datatype datatype, MPI_Status *status)
{
  return independent(fh, buf, count, datatype, false, status, "MPI_File_read_shared");
}

int PMPI_File_write_shared(MPI_File fh, const void *buf, int count, MPI_Datatype datatype, MPI_Status *status)
{
  return independent(fh, (void *)buf, count, datatype, true, status, "MPI_File_write_shared");
}

/* Collective: rank i's data goes after ranks 0..i-1's; rank 0 moves the pointer past all of it. */
static int ordered(MPI_File fh, void *buf, int count, MPI_Datatype datatype, bool writing, MPI_Status *status,
                   const char *name)
{
  GET_FILE(fh, name);
  int rank, rv = MPI_SUCCESS;
  PMPI_Comm_rank(f->comm, &rank);
  MPI_Offset mine = etypes_of(f, count, datatype), before = 0, total = 0, base = 0;
  PMPI_Exscan(&mine, &before, 1, MPI_LONG_LONG, MPI_SUM, f->comm);
  PMPI_Allreduce(&mine, &total, 1, MPI_LONG_LONG, MPI_SUM, f->comm);
  if (rank == 0) {
    before = 0; /* Exscan leaves rank 0's undefined */
    rv = move_pointer(f, total, false, 0, &base);
  }
  MPI_Offset msg[2] = { base, rv };
  PMPI_Bcast(msg, 2, MPI_LONG_LONG, 0, f->comm);
  if (msg[1] != MPI_SUCCESS)
    return fmpi_file_error(f, (int)msg[1], name);
  rv = fmpi_file_transfer(f, msg[0] + before, buf, count, datatype, writing, status, NULL, name);
  PMPI_Barrier(f->comm);
  return rv;
}

int PMPI_File_read_ordered(MPI_File fh, void *buf, int count, MPI_Datatype datatype, MPI_Status *status)
{
  return ordered(fh, buf, count, datatype, false, status, "MPI_File_read_ordered");
}

int PMPI_File_write_ordered(MPI_File fh, const void *buf, int count, MPI_Datatype datatype, MPI_Status *status)
{
  return ordered(fh, (void *)buf, count, datatype, true, status, "MPI_File_write_ordered");
}

/* Collective (every rank passes the same offset and whence); rank 0 moves the pointer. */
int PMPI_File_seek_shared(MPI_File fh, MPI_Offset offset, int whence)
{
  GET_FILE(fh, "MPI_File_seek_shared");
  int rank, rv = MPI_SUCCESS;
  PMPI_Comm_rank(f->comm, &rank);
  if (rank == 0) {
    MPI_Offset cur = 0, unused;
    if (whence == MPI_SEEK_CUR)
      rv = move_pointer(f, 0, false, 0, &cur);
    MPI_Offset to = whence == MPI_SEEK_SET ? offset
                    : whence == MPI_SEEK_CUR ? cur + offset
                    : whence == MPI_SEEK_END ? fmpi_file_view_end(f) + offset
                                             : -1;
    if (rv == MPI_SUCCESS)
      rv = to < 0 ? MPI_ERR_ARG : move_pointer(f, 0, true, to, &unused);
  }
  PMPI_Bcast(&rv, 1, MPI_INT, 0, f->comm);
  return fmpi_file_error(f, rv, "MPI_File_seek_shared");
}

int PMPI_File_get_position_shared(MPI_File fh, MPI_Offset *offset)
{
  GET_FILE(fh, "MPI_File_get_position_shared");
  int rv = move_pointer(f, 0, false, 0, offset);
  return fmpi_file_error(f, rv, "MPI_File_get_position_shared");
}
