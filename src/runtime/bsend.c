/*
 * Buffered and ready sends. MPI_Bsend copies the message out of the user's
 * buffer and returns; the copy goes out as an ordinary nonblocking send, so a
 * flush, a dump and a restore treat it like any pending send. The space it
 * takes is accounted against the buffer given to MPI_Buffer_attach (MPI's
 * rule: a Bsend that does not fit fails with MPI_ERR_BUFFER), but the bytes
 * themselves live in a heap block of their own. MPI_Rsend is MPI_Send: a ready
 * send only promises that the receive is posted, which a plain send tolerates.
 */
#include "fmpi.h"
#include <stdlib.h>

#pragma weak MPI_Buffer_attach = PMPI_Buffer_attach
#pragma weak MPI_Buffer_detach = PMPI_Buffer_detach
#pragma weak MPI_Bsend = PMPI_Bsend
#pragma weak MPI_Ibsend = PMPI_Ibsend
#pragma weak MPI_Rsend = PMPI_Rsend
#pragma weak MPI_Irsend = PMPI_Irsend

typedef struct bsend_copy {
  MPI_Request req;
  void *data;
  size_t charge;            /* bytes + MPI_BSEND_OVERHEAD, counted against the attached buffer */
  struct bsend_copy *next;
} bsend_copy;

static struct {
  void *buf;                /* as attached, returned by detach */
  size_t size;
  size_t used;
  bool attached;
  bsend_copy *pending;
} fmpi_bsend;

/* Releases the copies whose sends have completed; with `wait`, waits for all. */
static int reap(bool wait)
{
  bsend_copy **pp = &fmpi_bsend.pending;
  while (*pp) {
    bsend_copy *b = *pp;
    int done = 0, rv;
    if (wait)
      rv = PMPI_Wait(&b->req, MPI_STATUS_IGNORE), done = 1;
    else
      rv = PMPI_Test(&b->req, &done, MPI_STATUS_IGNORE);
    if (rv != MPI_SUCCESS)
      return rv;
    if (!done) {
      pp = &b->next;
      continue;
    }
    fmpi_bsend.used -= b->charge;
    *pp = b->next;
    free(b->data);
    free(b);
  }
  return MPI_SUCCESS;
}

int PMPI_Buffer_attach(void *buffer, int size)
{
  FMPI_CHECK_INIT("MPI_Buffer_attach");
  if (size < 0 || (buffer == NULL && size > 0))
    return fmpi_error(NULL, MPI_ERR_ARG, "MPI_Buffer_attach");
  if (fmpi_bsend.attached)
    return fmpi_error(NULL, MPI_ERR_BUFFER, "MPI_Buffer_attach");
  fmpi_bsend.buf = buffer;
  fmpi_bsend.size = (size_t)size;
  fmpi_bsend.attached = true;
  return MPI_SUCCESS;
}

int PMPI_Buffer_detach(void *buffer_addr, int *size)
{
  FMPI_CHECK_INIT("MPI_Buffer_detach");
  int rv;
  if (buffer_addr == NULL || size == NULL)
    return fmpi_error(NULL, MPI_ERR_ARG, "MPI_Buffer_detach");
  /* MPI: detach blocks until every message in the buffer has been sent. */
  if ((rv = reap(true)) != MPI_SUCCESS)
    return fmpi_error(NULL, rv, "MPI_Buffer_detach");
  *(void **)buffer_addr = fmpi_bsend.attached ? fmpi_bsend.buf : NULL;
  *size = fmpi_bsend.attached ? (int)fmpi_bsend.size : 0;
  fmpi_bsend.buf = NULL;
  fmpi_bsend.size = 0;
  fmpi_bsend.attached = false;
  return MPI_SUCCESS;
}

/* A buffered send on c (also one a persistent Bsend_init request starts, whose communicator may have
 * been freed since: persistent.c). Errors go through c's handler. */
int fmpi_ibsend(fmpi_comm *c, const void *buf, int count, MPI_Datatype datatype, int dest, int tag)
{
  fmpi_type *t = fmpi_type_get(datatype);
  int rv;
  if (count < 0)
    return fmpi_error(c, MPI_ERR_COUNT, "MPI_Ibsend");
  if (t == NULL || !t->committed)
    return fmpi_error(c, MPI_ERR_TYPE, "MPI_Ibsend");
  if ((rv = reap(false)) != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Ibsend");
  size_t bytes = (size_t)count * t->size;
  size_t charge = bytes + MPI_BSEND_OVERHEAD;
  if (dest == MPI_PROC_NULL)
    return MPI_SUCCESS;
  if ((rv = fmpi_check_pt2pt(c, count, datatype, dest, tag, false, false)) != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Ibsend");
  if (!fmpi_bsend.attached || fmpi_bsend.used + charge > fmpi_bsend.size)
    return fmpi_error(c, MPI_ERR_BUFFER, "MPI_Bsend");
  bsend_copy *b = calloc(1, sizeof *b);
  if (b == NULL || (b->data = malloc(bytes ? bytes : 1)) == NULL) {
    free(b);
    return fmpi_error(c, MPI_ERR_NO_MEM, "MPI_Bsend");
  }
  if (bytes > 0)
    fmpi_pack(t, buf, count, b->data);
  fmpi_request *r;
  fmpi_lock();
  fmpi_isend(b->data, (int)bytes, MPI_BYTE, dest, tag, c, c->ctx, false, &r);
  fmpi_req_handle(r, &b->req);
  fmpi_unlock();
  b->charge = charge;
  fmpi_bsend.used += charge;
  b->next = fmpi_bsend.pending;
  fmpi_bsend.pending = b;
  return MPI_SUCCESS;
}

int PMPI_Ibsend(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm, MPI_Request *request)
{
  FMPI_CHECK_INIT("MPI_Ibsend");
  fmpi_comm *c = fmpi_comm_get(comm);
  if (c == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, "MPI_Ibsend");
  if (request == NULL)
    return fmpi_error(c, MPI_ERR_ARG, "MPI_Ibsend");
  int rv = fmpi_ibsend(c, buf, count, datatype, dest, tag);
  /* The user's buffer is free again: the operation is complete as far as it is concerned. */
  if (rv == MPI_SUCCESS)
    *request = MPI_REQUEST_NULL;
  return rv;
}

int PMPI_Bsend(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm)
{
  MPI_Request r;
  return PMPI_Ibsend(buf, count, datatype, dest, tag, comm, &r);
}

int PMPI_Rsend(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm)
{
  return PMPI_Send(buf, count, datatype, dest, tag, comm);
}

int PMPI_Irsend(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm, MPI_Request *request)
{
  return PMPI_Isend(buf, count, datatype, dest, tag, comm, request);
}
