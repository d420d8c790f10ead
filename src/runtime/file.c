/* MPI-IO (MPI 3.1 chapter 13) over POSIX files: open/close/delete, sizes,
 * sync, file views (displacement, etype, filetype; "native" only), reads and
 * writes at explicit offsets or through the individual file pointer, their
 * collective (_all) and nonblocking (i) forms, seek and position queries.
 *
 * A view maps the stream of etypes a rank reads or writes onto the file:
 * the filetype's byte blocks (datatype.c flattens it), tiled every extent
 * from the displacement. A write packs the memory buffer and scatters the
 * bytes through the view with pwrite; a read gathers with pread (stopping
 * at the end of the file) and unpacks. Collective calls do the same as the
 * independent ones, then wait for every rank to have done its part: as with
 * ROMIO's collective buffering, the data of all ranks is in the file when
 * any rank's call returns (programs rely on it, though the standard does not
 * promise it). Nonblocking calls are done when they return. In atomic mode
 * (File_set_atomicity) each access holds an fcntl lock on the whole file.
 * Shared file pointers are in file-shared.c; split collectives and the
 * nonblocking collective forms in file-split.c.
 *
 * What Ferry does with open files at a checkpoint is what it does with any
 * file a rank has open: a file is a path and a descriptor the dump records. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmpi.h"

#pragma weak MPI_File_open = PMPI_File_open
#pragma weak MPI_File_close = PMPI_File_close
#pragma weak MPI_File_delete = PMPI_File_delete
#pragma weak MPI_File_get_size = PMPI_File_get_size
#pragma weak MPI_File_set_size = PMPI_File_set_size
#pragma weak MPI_File_preallocate = PMPI_File_preallocate
#pragma weak MPI_File_sync = PMPI_File_sync
#pragma weak MPI_File_get_amode = PMPI_File_get_amode
#pragma weak MPI_File_get_group = PMPI_File_get_group
#pragma weak MPI_File_set_info = PMPI_File_set_info
#pragma weak MPI_File_get_info = PMPI_File_get_info
#pragma weak MPI_File_set_view = PMPI_File_set_view
#pragma weak MPI_File_get_view = PMPI_File_get_view
#pragma weak MPI_File_get_type_extent = PMPI_File_get_type_extent
#pragma weak MPI_File_read_at = PMPI_File_read_at
#pragma weak MPI_File_write_at = PMPI_File_write_at
#pragma weak MPI_File_read_at_all = PMPI_File_read_at_all
#pragma weak MPI_File_write_at_all = PMPI_File_write_at_all
#pragma weak MPI_File_iread_at = PMPI_File_iread_at
#pragma weak MPI_File_iwrite_at = PMPI_File_iwrite_at
#pragma weak MPI_File_read = PMPI_File_read
#pragma weak MPI_File_write = PMPI_File_write
#pragma weak MPI_File_read_all = PMPI_File_read_all
#pragma weak MPI_File_write_all = PMPI_File_write_all
#pragma weak MPI_File_iread = PMPI_File_iread
#pragma weak MPI_File_iwrite = PMPI_File_iwrite
#pragma weak MPI_File_seek = PMPI_File_seek
#pragma weak MPI_File_get_position = PMPI_File_get_position
#pragma weak MPI_File_get_byte_offset = PMPI_File_get_byte_offset
#pragma weak MPI_File_set_errhandler = PMPI_File_set_errhandler
#pragma weak MPI_File_get_errhandler = PMPI_File_get_errhandler
#pragma weak MPI_File_create_errhandler = PMPI_File_create_errhandler
#pragma weak MPI_File_call_errhandler = PMPI_File_call_errhandler
#pragma weak MPI_File_set_atomicity = PMPI_File_set_atomicity
#pragma weak MPI_File_get_atomicity = PMPI_File_get_atomicity

static fmpi_table files;
/* The handler of MPI_FILE_NULL: for errors of File_open and File_delete, and new files' (MPI_ERRORS_RETURN). */
static MPI_Errhandler default_errh = MPI_ERRORS_RETURN;

fmpi_file *fmpi_file_get(MPI_File h) { return fmpi_table_get(&files, h); }

int fmpi_file_error(fmpi_file *f, int code, const char *name)
{
  MPI_Errhandler errh = f ? f->errh : default_errh;
  if (code == MPI_SUCCESS || errh == MPI_ERRORS_RETURN)
    return code;
  return fmpi_errh_call(f ? f->handle : MPI_FILE_NULL, errh, code, name); /* a handler gets the file's handle */
}

/* The error class of a failed system call on a file. */
int fmpi_errno_class(int e)
{
  switch (e) {
  case ENOENT: case ENOTDIR: return MPI_ERR_NO_SUCH_FILE;
  case EEXIST: return MPI_ERR_FILE_EXISTS;
  case EACCES: case EPERM: return MPI_ERR_ACCESS;
  case EROFS: return MPI_ERR_READ_ONLY;
  case ENOSPC: return MPI_ERR_NO_SPACE;
  case EDQUOT: return MPI_ERR_QUOTA;
  case ENAMETOOLONG: case EISDIR: return MPI_ERR_BAD_FILE;
  default: return MPI_ERR_IO;
  }
}

static int amode_flags(int amode, int *flags)
{
  int rw = !!(amode & MPI_MODE_RDONLY) + !!(amode & MPI_MODE_WRONLY) + !!(amode & MPI_MODE_RDWR);
  if (rw != 1 || ((amode & MPI_MODE_RDONLY) && (amode & (MPI_MODE_CREATE | MPI_MODE_EXCL))) ||
      ((amode & MPI_MODE_RDWR) && (amode & MPI_MODE_SEQUENTIAL)))
    return MPI_ERR_AMODE;
  *flags = (amode & MPI_MODE_RDONLY ? O_RDONLY : amode & MPI_MODE_WRONLY ? O_WRONLY : O_RDWR) | O_CLOEXEC;
  return MPI_SUCCESS;
}

/* Collective: rank 0 opens first (creating the file if asked), then the others without O_CREAT/O_EXCL. */
int PMPI_File_open(MPI_Comm comm, const char *filename, int amode, MPI_Info info, MPI_File *fh)
{
  (void)info;
  FMPI_CHECK_INIT("MPI_File_open");
  fmpi_comm *c = fmpi_comm_get_intra(comm);
  if (c == NULL)
    return fmpi_file_error(NULL, MPI_ERR_COMM, "MPI_File_open");
  int flags = O_RDONLY, rv = amode_flags(amode, &flags), fd = -1, err = 0;
  if (rv == MPI_SUCCESS && c->rank == 0) {
    int create = (amode & MPI_MODE_CREATE ? O_CREAT : 0) | (amode & MPI_MODE_EXCL ? O_EXCL : 0);
    fd = open(filename, flags | create, 0666);
    err = fd < 0 ? errno : 0;
  }
  int verdict = rv != MPI_SUCCESS ? rv : c->rank == 0 ? (fd < 0 ? fmpi_errno_class(err) : MPI_SUCCESS) : 0;
  PMPI_Bcast(&verdict, 1, MPI_INT, 0, comm); /* rank 0's open decides for everyone */
  if (verdict == MPI_SUCCESS && c->rank != 0) {
    fd = open(filename, flags);
    if (fd < 0)
      verdict = fmpi_errno_class(errno);
  }
  int worst = verdict;
  PMPI_Allreduce(&verdict, &worst, 1, MPI_INT, MPI_MAX, comm);
  if (worst != MPI_SUCCESS) {
    if (fd >= 0)
      close(fd);
    *fh = MPI_FILE_NULL;
    return fmpi_file_error(NULL, verdict != MPI_SUCCESS ? verdict : worst, "MPI_File_open");
  }
  fmpi_file *f = calloc(1, sizeof *f);
  if (f == NULL || (f->path = strdup(filename)) == NULL)
    fmpi_fatal("out of memory");
  f->fd = fd;
  f->amode = amode;
  fmpi_comm_dup_internal(comm, &f->comm);
  f->etype = f->filetype = MPI_BYTE;
  f->errh = default_errh;
  if (amode & MPI_MODE_APPEND) { /* the pointers start at the end */
    struct stat st;
    f->pos = f->shared_start = fstat(fd, &st) == 0 ? st.st_size : 0;
  }
  *fh = f->handle = fmpi_table_add(&files, f);
  return MPI_SUCCESS;
}

static void free_view_types(fmpi_file *f)
{
  fmpi_type *e = fmpi_type_get(f->etype), *t = fmpi_type_get(f->filetype);
  if (e && !e->predefined)
    PMPI_Type_free(&f->etype);
  if (t && !t->predefined)
    PMPI_Type_free(&f->filetype);
}

int PMPI_File_close(MPI_File *fh)
{
  GET_FILE(*fh, "MPI_File_close");
  int rv = close(f->fd) == 0 ? MPI_SUCCESS : fmpi_errno_class(errno);
  int rank;
  PMPI_Comm_rank(f->comm, &rank);
  PMPI_Barrier(f->comm); /* everyone has closed it */
  if (rank == 0)
    fmpi_file_shared_forget(f);
  if ((f->amode & MPI_MODE_DELETE_ON_CLOSE) && rank == 0)
    unlink(f->path);
  PMPI_Comm_free(&f->comm);
  free_view_types(f);
  fmpi_table_del(&files, *fh);
  free(f->path);
  free(f);
  *fh = MPI_FILE_NULL;
  return fmpi_file_error(NULL, rv, "MPI_File_close");
}

int PMPI_File_delete(const char *filename, MPI_Info info)
{
  (void)info;
  return unlink(filename) == 0 ? MPI_SUCCESS : fmpi_file_error(NULL, fmpi_errno_class(errno), "MPI_File_delete");
}

int PMPI_File_get_size(MPI_File fh, MPI_Offset *size)
{
  GET_FILE(fh, "MPI_File_get_size");
  struct stat st;
  if (fstat(f->fd, &st) != 0)
    return fmpi_file_error(f, fmpi_errno_class(errno), "MPI_File_get_size");
  *size = st.st_size;
  return MPI_SUCCESS;
}

/* Collective: once every rank is in (its writes done), the first truncates or
 * extends the file (only up to `size` with grow_only), and everyone learns how it went. */
static int resize(fmpi_file *f, MPI_Offset size, bool grow_only, const char *name)
{
  if (size < 0)
    return fmpi_file_error(f, MPI_ERR_ARG, name);
  int rank, rv = MPI_SUCCESS;
  struct stat st;
  PMPI_Comm_rank(f->comm, &rank);
  PMPI_Barrier(f->comm);
  if (rank == 0)
    fmpi_hold_while_flushed();
  if (rank == 0 && (!grow_only || (fstat(f->fd, &st) == 0 && st.st_size < size)) && ftruncate(f->fd, size) != 0)
    rv = fmpi_errno_class(errno);
  PMPI_Bcast(&rv, 1, MPI_INT, 0, f->comm);
  return fmpi_file_error(f, rv, name);
}

int PMPI_File_set_size(MPI_File fh, MPI_Offset size)
{
  GET_FILE(fh, "MPI_File_set_size");
  return resize(f, size, false, "MPI_File_set_size");
}

int PMPI_File_preallocate(MPI_File fh, MPI_Offset size)
{
  GET_FILE(fh, "MPI_File_preallocate");
  return resize(f, size, true, "MPI_File_preallocate");
}

int PMPI_File_sync(MPI_File fh)
{
  GET_FILE(fh, "MPI_File_sync");
  int rv = fsync(f->fd) == 0 ? MPI_SUCCESS : fmpi_errno_class(errno);
  PMPI_Barrier(f->comm);
  return fmpi_file_error(f, rv, "MPI_File_sync");
}

int PMPI_File_get_amode(MPI_File fh, int *amode)
{
  GET_FILE(fh, "MPI_File_get_amode");
  *amode = f->amode;
  return MPI_SUCCESS;
}

int PMPI_File_get_group(MPI_File fh, MPI_Group *group)
{
  GET_FILE(fh, "MPI_File_get_group");
  return PMPI_Comm_group(f->comm, group);
}

int PMPI_File_set_info(MPI_File fh, MPI_Info info)
{
  GET_FILE(fh, "MPI_File_set_info");
  (void)info; /* hints accepted, none used */
  return MPI_SUCCESS;
}

int PMPI_File_get_info(MPI_File fh, MPI_Info *info_used)
{
  GET_FILE(fh, "MPI_File_get_info");
  return PMPI_Info_create(info_used);
}

/* A file's error handler is called as fn(&file, &code, ...), as a communicator's with its handle. */
int PMPI_File_create_errhandler(MPI_File_errhandler_function *function, MPI_Errhandler *errhandler)
{
  return PMPI_Comm_create_errhandler((MPI_Comm_errhandler_function *)function, errhandler);
}

int PMPI_File_call_errhandler(MPI_File fh, int errorcode)
{
  FMPI_CHECK_INIT("MPI_File_call_errhandler");
  if (fh != MPI_FILE_NULL && fmpi_file_get(fh) == NULL)
    return fmpi_file_error(NULL, MPI_ERR_FILE, "MPI_File_call_errhandler");
  fmpi_file_error(fmpi_file_get(fh), errorcode, "MPI_File_call_errhandler");
  return MPI_SUCCESS;
}

int PMPI_File_set_errhandler(MPI_File fh, MPI_Errhandler errhandler)
{
  FMPI_CHECK_INIT("MPI_File_set_errhandler");
  if (!fmpi_errh_valid(errhandler))
    return fmpi_file_error(fmpi_file_get(fh), MPI_ERR_ARG, "MPI_File_set_errhandler");
  if (fh == MPI_FILE_NULL) {
    default_errh = errhandler;
    return MPI_SUCCESS;
  }
  GET_FILE(fh, "MPI_File_set_errhandler");
  f->errh = errhandler;
  return MPI_SUCCESS;
}

int PMPI_File_get_errhandler(MPI_File fh, MPI_Errhandler *errhandler)
{
  FMPI_CHECK_INIT("MPI_File_get_errhandler");
  if (fh == MPI_FILE_NULL) {
    *errhandler = default_errh;
    return MPI_SUCCESS;
  }
  GET_FILE(fh, "MPI_File_get_errhandler");
  *errhandler = f->errh;
  return MPI_SUCCESS;
}

/* ---- views ---- */

/* A view type kept by the file: predefined ones as they are, others duplicated (the caller may free its own). */
static MPI_Datatype keep_type(MPI_Datatype t)
{
  fmpi_type *ft = fmpi_type_get(t);
  if (ft->predefined)
    return t;
  MPI_Datatype d;
  PMPI_Type_dup(t, &d);
  return d;
}

int PMPI_File_set_view(MPI_File fh, MPI_Offset disp, MPI_Datatype etype, MPI_Datatype filetype, const char *datarep,
                       MPI_Info info)
{
  (void)info;
  GET_FILE(fh, "MPI_File_set_view");
  /* A filetype with no data is a rank that has none of the file (a darray part can be empty). */
  fmpi_type *e = fmpi_type_get(etype), *t = fmpi_type_get(filetype);
  int rv = MPI_SUCCESS, rank;
  if (e == NULL || t == NULL || !e->committed || !t->committed || e->size == 0 || t->size % e->size != 0)
    rv = MPI_ERR_TYPE;
  else if (datarep == NULL || strcmp(datarep, "native") != 0)
    rv = MPI_ERR_UNSUPPORTED_DATAREP;
  else if (disp < 0 || t->extent <= 0)
    rv = MPI_ERR_ARG;
  if (rv == MPI_SUCCESS) {
    free_view_types(f);
    f->disp = disp;
    f->etype = keep_type(etype);
    f->filetype = keep_type(filetype);
    f->pos = f->shared_start = 0; /* both pointers go back to the start of the view */
  }
  PMPI_Comm_rank(f->comm, &rank);
  if (rank == 0 && rv == MPI_SUCCESS)
    fmpi_file_shared_forget(f);
  PMPI_Barrier(f->comm); /* also when this rank's arguments were wrong: the others wait here */
  return fmpi_file_error(f, rv, "MPI_File_set_view");
}

int PMPI_File_get_view(MPI_File fh, MPI_Offset *disp, MPI_Datatype *etype, MPI_Datatype *filetype, char *datarep)
{
  GET_FILE(fh, "MPI_File_get_view");
  *disp = f->disp;
  *etype = keep_type(f->etype);
  *filetype = keep_type(f->filetype);
  strcpy(datarep, "native");
  return MPI_SUCCESS;
}

int PMPI_File_get_type_extent(MPI_File fh, MPI_Datatype datatype, MPI_Aint *extent)
{
  GET_FILE(fh, "MPI_File_get_type_extent");
  fmpi_type *t = fmpi_type_get(datatype);
  if (t == NULL)
    return fmpi_file_error(f, MPI_ERR_TYPE, "MPI_File_get_type_extent");
  *extent = t->extent;
  return MPI_SUCCESS;
}

/* Calls run(file offset, length, at) for each contiguous run of the view's
 * bytes [from, from + bytes) (offsets in the view's byte stream); stops early
 * when run returns false. */
static void view_runs(const fmpi_file *f, MPI_Offset from, MPI_Offset bytes,
                      bool (*run)(void *arg, MPI_Offset file_off, size_t len, size_t at), void *arg)
{
  fmpi_type *t = fmpi_type_get(f->filetype);
  if (t->size == 0)
    return; /* a view with no data: nothing to move */
  if (t->contig && t->extent == (MPI_Aint)t->size && t->lb == 0) { /* tiles that touch (the default view) */
    if (bytes > 0)
      run(arg, f->disp + from, (size_t)bytes, 0);
    return;
  }
  /* pieces that touch in the file go as one run: one system call, not one per tile */
  MPI_Offset tile = from / (MPI_Offset)t->size, within = from % (MPI_Offset)t->size, done = 0;
  MPI_Offset run_at = 0, run_len = 0, run_done = 0;
  while (done < bytes) {
    MPI_Offset cum = 0;
    for (int b = 0; b < t->nblocks && done < bytes; b++) {
      MPI_Offset len = (MPI_Offset)t->blocks[b].len;
      if (within >= cum + len) {
        cum += len;
        continue;
      }
      MPI_Offset skip = within - cum, take = len - skip;
      if (take > bytes - done)
        take = bytes - done;
      MPI_Offset at = f->disp + tile * t->extent + t->blocks[b].off + skip;
      if (run_len > 0 && at == run_at + run_len) {
        run_len += take;
      } else {
        if (run_len > 0 && !run(arg, run_at, (size_t)run_len, (size_t)run_done))
          return;
        run_at = at;
        run_len = take;
        run_done = done;
      }
      done += take;
      within += take;
      cum += len;
    }
    tile++;
    within = 0;
  }
  if (run_len > 0)
    run(arg, run_at, (size_t)run_len, (size_t)run_done);
}

typedef struct io_arg {
  int fd;
  uint8_t *bytes;
  size_t moved;
  int error;     /* errno of a failed call */
  bool writing;
} io_arg;

static bool io_run(void *p, MPI_Offset off, size_t len, size_t at)
{
  io_arg *a = p;
  size_t got = 0;
  while (got < len) {
    ssize_t n = a->writing ? pwrite(a->fd, a->bytes + at + got, len - got, off + (MPI_Offset)got)
                           : pread(a->fd, a->bytes + at + got, len - got, off + (MPI_Offset)got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      a->error = errno;
      return false;
    }
    if (n == 0) /* a read at the end of the file */
      break;
    got += (size_t)n;
  }
  a->moved += got;
  return got == len;
}

/* Reads or writes count x datatype at view offset `offset` (etypes); the status counts the bytes moved. */
int fmpi_file_transfer(fmpi_file *f, MPI_Offset offset, void *buf, int count, MPI_Datatype datatype, bool writing,
                    MPI_Status *status, MPI_Offset *moved_etypes, const char *name)
{
  fmpi_type *t = fmpi_type_get(datatype), *e = fmpi_type_get(f->etype);
  if (t == NULL || !t->committed)
    return fmpi_file_error(f, MPI_ERR_TYPE, name);
  if (count < 0)
    return fmpi_file_error(f, MPI_ERR_COUNT, name);
  if (offset < 0)
    return fmpi_file_error(f, MPI_ERR_ARG, name);
  int access = f->amode & (MPI_MODE_RDONLY | MPI_MODE_WRONLY | MPI_MODE_RDWR);
  if ((writing && access == MPI_MODE_RDONLY) || (!writing && access == MPI_MODE_WRONLY))
    return fmpi_file_error(f, MPI_ERR_ACCESS, name);
  size_t bytes = t->size * (size_t)count;
  if (writing)
    fmpi_hold_while_flushed(); /* no write between a flush and its resume (channel.c) */
  /* A contiguous memory type is its own packed form: no bounce buffer, no copy. */
  io_arg a = { f->fd, t->contig ? buf : malloc(bytes + 1), 0, 0, writing };
  if (a.bytes == NULL)
    fmpi_fatal("out of memory");
  if (writing && !t->contig)
    fmpi_pack(t, buf, count, a.bytes);
  /* atomic mode: the whole access under one lock on the file, exclusive for a write (fcntl locks
   * hold between processes on any host that sees the file) */
  struct flock lk = { .l_type = writing ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
  bool locked = f->atomic && bytes > 0;
  while (locked && fcntl(f->fd, F_SETLKW, &lk) != 0)
    if (errno != EINTR) {
      a.error = errno;
      locked = false;
      bytes = 0; /* nothing moves without the lock */
    }
  view_runs(f, offset * (MPI_Offset)e->size, (MPI_Offset)bytes, io_run, &a);
  if (locked) {
    lk.l_type = F_UNLCK;
    fcntl(f->fd, F_SETLK, &lk);
  }
  if (!t->contig) {
    if (!writing)
      fmpi_unpack(t, a.bytes, a.moved, buf);
    free(a.bytes);
  }
  if (status != MPI_STATUS_IGNORE && status != NULL) {
    memset(status, 0, sizeof *status);
    status->MPI_SOURCE = MPI_ANY_SOURCE;
    status->MPI_TAG = MPI_ANY_TAG;
    status->ferry_bytes = (long long)a.moved;
  }
  if (moved_etypes)
    *moved_etypes = (MPI_Offset)(a.moved / e->size);
  return a.error ? fmpi_file_error(f, fmpi_errno_class(a.error), name) : MPI_SUCCESS;
}

#define AT_CALL(fn, writing, collective, buf_t, name)                                                           \
  int PMPI_File_##fn(MPI_File fh, MPI_Offset offset, buf_t buf, int count, MPI_Datatype datatype,                \
                     MPI_Status *status)                                                                         \
  {                                                                                                             \
    GET_FILE(fh, name);                                                                                         \
    int rv = fmpi_file_transfer(f, offset, (void *)buf, count, datatype, writing, status, NULL, name);                    \
    if (collective)                                                                                             \
      PMPI_Barrier(f->comm);                                                                                    \
    return rv;                                                                                                  \
  }
AT_CALL(read_at, false, false, void *, "MPI_File_read_at")
AT_CALL(write_at, true, false, const void *, "MPI_File_write_at")
AT_CALL(read_at_all, false, true, void *, "MPI_File_read_at_all")
AT_CALL(write_at_all, true, true, const void *, "MPI_File_write_at_all")

/* Through the individual file pointer, which moves past the etypes moved. */
#define PTR_CALL(fn, writing, collective, buf_t, name)                                                          \
  int PMPI_File_##fn(MPI_File fh, buf_t buf, int count, MPI_Datatype datatype, MPI_Status *status)              \
  {                                                                                                             \
    GET_FILE(fh, name);                                                                                         \
    MPI_Offset moved = 0;                                                                                       \
    int rv = fmpi_file_transfer(f, f->pos, (void *)buf, count, datatype, writing, status, &moved, name);                  \
    f->pos += moved;                                                                                            \
    if (collective)                                                                                             \
      PMPI_Barrier(f->comm);                                                                                    \
    return rv;                                                                                                  \
  }

PTR_CALL(read, false, false, void *, "MPI_File_read")
PTR_CALL(write, true, false, const void *, "MPI_File_write")
PTR_CALL(read_all, false, true, void *, "MPI_File_read_all")
PTR_CALL(write_all, true, true, const void *, "MPI_File_write_all")

/* The nonblocking forms: the blocking call's result as a request that is already complete. A
 * failed call reports its error itself (through the file's handler) and starts no request. */
int fmpi_file_as_request(MPI_File fh, int rv, const MPI_Status *st, MPI_Request *request)
{
  fmpi_file *f = fmpi_file_get(fh);
  if (f == NULL || rv != MPI_SUCCESS) {
    *request = MPI_REQUEST_NULL;
    return rv;
  }
  fmpi_lock();
  fmpi_request *r = fmpi_req_new(false, fmpi_comm_get(f->comm), 0, MPI_PROC_NULL, 0, NULL, 0, MPI_BYTE);
  r->status = *st;
  r->status.MPI_ERROR = MPI_SUCCESS;
  r->complete = true;
  fmpi_req_handle(r, request);
  fmpi_unlock();
  return rv;
}

int PMPI_File_iread_at(MPI_File fh, MPI_Offset offset, void *buf, int count, MPI_Datatype datatype,
                       MPI_Request *request)
{
  MPI_Status st = { 0 };
  return fmpi_file_as_request(fh, PMPI_File_read_at(fh, offset, buf, count, datatype, &st), &st, request);
}

int PMPI_File_iwrite_at(MPI_File fh, MPI_Offset offset, const void *buf, int count, MPI_Datatype datatype,
                        MPI_Request *request)
{
  MPI_Status st = { 0 };
  return fmpi_file_as_request(fh, PMPI_File_write_at(fh, offset, buf, count, datatype, &st), &st, request);
}

int PMPI_File_iread(MPI_File fh, void *buf, int count, MPI_Datatype datatype, MPI_Request *request)
{
  MPI_Status st = { 0 };
  return fmpi_file_as_request(fh, PMPI_File_read(fh, buf, count, datatype, &st), &st, request);
}

int PMPI_File_iwrite(MPI_File fh, const void *buf, int count, MPI_Datatype datatype, MPI_Request *request)
{
  MPI_Status st = { 0 };
  return fmpi_file_as_request(fh, PMPI_File_write(fh, buf, count, datatype, &st), &st, request);
}

/* Collective; every rank gives the same flag (MPI 3.1 13.6.1). */
int PMPI_File_set_atomicity(MPI_File fh, int flag)
{
  GET_FILE(fh, "MPI_File_set_atomicity");
  int lo = flag != 0, hi = lo, mine = lo;
  PMPI_Allreduce(&mine, &lo, 1, MPI_INT, MPI_MIN, f->comm);
  PMPI_Allreduce(&mine, &hi, 1, MPI_INT, MPI_MAX, f->comm);
  if (lo != hi)
    return fmpi_file_error(f, MPI_ERR_ARG, "MPI_File_set_atomicity");
  f->atomic = lo;
  return MPI_SUCCESS;
}

int PMPI_File_get_atomicity(MPI_File fh, int *flag)
{
  GET_FILE(fh, "MPI_File_get_atomicity");
  *flag = f->atomic;
  return MPI_SUCCESS;
}

/* The etypes of the view that lie below the end of the file (for MPI_SEEK_END). */
MPI_Offset fmpi_file_view_end(fmpi_file *f)
{
  struct stat st;
  if (fstat(f->fd, &st) != 0 || st.st_size <= f->disp)
    return 0;
  fmpi_type *t = fmpi_type_get(f->filetype), *e = fmpi_type_get(f->etype);
  MPI_Offset span = st.st_size - f->disp, tiles = span / t->extent, rest = span % t->extent;
  MPI_Offset bytes = tiles * (MPI_Offset)t->size;
  for (int b = 0; b < t->nblocks; b++) {
    MPI_Offset lo = t->blocks[b].off, hi = lo + (MPI_Offset)t->blocks[b].len;
    if (rest > lo)
      bytes += (rest < hi ? rest : hi) - lo;
  }
  return bytes / (MPI_Offset)e->size;
}

int PMPI_File_seek(MPI_File fh, MPI_Offset offset, int whence)
{
  GET_FILE(fh, "MPI_File_seek");
  MPI_Offset to = whence == MPI_SEEK_SET ? offset
                  : whence == MPI_SEEK_CUR ? f->pos + offset
                  : whence == MPI_SEEK_END ? fmpi_file_view_end(f) + offset
                                           : -1;
  if (to < 0)
    return fmpi_file_error(f, MPI_ERR_ARG, "MPI_File_seek");
  f->pos = to;
  return MPI_SUCCESS;
}

int PMPI_File_get_position(MPI_File fh, MPI_Offset *offset)
{
  GET_FILE(fh, "MPI_File_get_position");
  *offset = f->pos;
  return MPI_SUCCESS;
}

static bool first_run(void *p, MPI_Offset off, size_t len, size_t at)
{
  (void)len, (void)at;
  *(MPI_Offset *)p = off;
  return false;
}

int PMPI_File_get_byte_offset(MPI_File fh, MPI_Offset offset, MPI_Offset *disp)
{
  GET_FILE(fh, "MPI_File_get_byte_offset");
  if (offset < 0)
    return fmpi_file_error(f, MPI_ERR_ARG, "MPI_File_get_byte_offset");
  fmpi_type *e = fmpi_type_get(f->etype);
  *disp = f->disp;
  view_runs(f, offset * (MPI_Offset)e->size, 1, first_run, disp);
  return MPI_SUCCESS;
}
