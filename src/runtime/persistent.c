/*
 * Persistent requests: MPI_Send_init, MPI_Ssend_init, MPI_Bsend_init,
 * MPI_Rsend_init, MPI_Recv_init, MPI_Start, MPI_Startall.
 *
 * A persistent request is an fmpi_request that keeps its arguments. MPI_Start
 * arms the same object again and posts it like MPI_Isend / MPI_Irecv would,
 * so while it is active it is an ordinary pending request: matched in order,
 * drained into memory by a flush, carried over a dump and a restore, named on
 * the wire by its address like any other. Wait/Test complete it into the
 * inactive state (p2p.c, finish) and MPI_Request_free releases it.
 * A started MPI_Bsend_init copies the message out through MPI_Ibsend and is
 * complete at once, as a buffered send is for its caller.
 */
#include <stdlib.h>

#include "fmpi.h"

#pragma weak MPI_Send_init = PMPI_Send_init
#pragma weak MPI_Ssend_init = PMPI_Ssend_init
#pragma weak MPI_Bsend_init = PMPI_Bsend_init
#pragma weak MPI_Rsend_init = PMPI_Rsend_init
#pragma weak MPI_Recv_init = PMPI_Recv_init
#pragma weak MPI_Start = PMPI_Start
#pragma weak MPI_Startall = PMPI_Startall

static int persistent_init(const void *buf, int count, MPI_Datatype type, int peer, int tag, MPI_Comm comm,
                           MPI_Request *request, int kind, const char *name)
{
  FMPI_CHECK_INIT(name);
  fmpi_comm *c = fmpi_comm_get(comm);
  int rv;
  bool recv = kind == FMPI_P_RECV;
  if (c == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, name);
  if (request == NULL)
    return fmpi_error(c, MPI_ERR_ARG, name);
  if ((rv = fmpi_check_pt2pt(c, count, type, peer, tag, recv, recv)) != MPI_SUCCESS)
    return fmpi_error(c, rv, name);
  int world = peer == MPI_PROC_NULL || peer == MPI_ANY_SOURCE ? peer : c->world[peer];
  fmpi_lock();
  fmpi_request *r = fmpi_req_new(!recv, c, c->ctx, world, tag, buf, count, type);
  r->persistent = true;
  r->pkind = kind;
  r->user_peer = peer;
  r->sync = kind == FMPI_P_SSEND;
  r->handle = fmpi_table_add(&fmpi_requests, r);
  *request = r->handle;
  fmpi_unlock();
  return MPI_SUCCESS;
}

int PMPI_Send_init(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm,
                   MPI_Request *request)
{
  return persistent_init(buf, count, datatype, dest, tag, comm, request, FMPI_P_SEND, "MPI_Send_init");
}

int PMPI_Ssend_init(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm,
                    MPI_Request *request)
{
  return persistent_init(buf, count, datatype, dest, tag, comm, request, FMPI_P_SSEND, "MPI_Ssend_init");
}

int PMPI_Bsend_init(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm,
                    MPI_Request *request)
{
  return persistent_init(buf, count, datatype, dest, tag, comm, request, FMPI_P_BSEND, "MPI_Bsend_init");
}

/* A ready send only promises that the receive is posted: a standard send keeps it. */
int PMPI_Rsend_init(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm,
                    MPI_Request *request)
{
  return persistent_init(buf, count, datatype, dest, tag, comm, request, FMPI_P_RSEND, "MPI_Rsend_init");
}

int PMPI_Recv_init(void *buf, int count, MPI_Datatype datatype, int source, int tag, MPI_Comm comm,
                   MPI_Request *request)
{
  return persistent_init(buf, count, datatype, source, tag, comm, request, FMPI_P_RECV, "MPI_Recv_init");
}

/* Arms and posts one inactive persistent request (lock not held). */
static int start_one(MPI_Request h, const char *name)
{
  fmpi_request *r = h == MPI_REQUEST_NULL ? NULL : fmpi_table_get(&fmpi_requests, h);
  if (r == NULL || !r->persistent || r->active)
    return fmpi_error(r ? r->comm : NULL, MPI_ERR_REQUEST, name); /* null, not persistent, or started twice */
  if (r->pkind == FMPI_P_BSEND && r->user_peer != MPI_PROC_NULL) {
    /* the copy goes out as a send of its own; this request is done with the user's buffer */
    int rv = fmpi_ibsend(r->comm, r->buf, r->count, r->type, r->user_peer, r->tag);
    if (rv != MPI_SUCCESS)
      return rv;
    fmpi_lock();
    fmpi_req_rearm(r);
    r->active = true;
    r->complete = true;
    fmpi_unlock();
    return MPI_SUCCESS;
  }
  fmpi_lock();
  fmpi_req_rearm(r);
  r->active = true;
  if (r->user_peer == MPI_PROC_NULL) {
    if (!r->is_send) {
      r->status.MPI_SOURCE = MPI_PROC_NULL;
      r->status.MPI_TAG = MPI_ANY_TAG;
    }
    r->complete = true;
  } else if (r->is_send) {
    fmpi_send_post(r);
  } else {
    fmpi_recv_post(r);
  }
  fmpi_unlock();
  return MPI_SUCCESS;
}

int PMPI_Start(MPI_Request *request)
{
  FMPI_CHECK_INIT("MPI_Start");
  if (request == NULL)
    return fmpi_error(NULL, MPI_ERR_ARG, "MPI_Start");
  return start_one(*request, "MPI_Start");
}

int PMPI_Startall(int count, MPI_Request array_of_requests[])
{
  FMPI_CHECK_INIT("MPI_Startall");
  if (count < 0 || (count > 0 && array_of_requests == NULL))
    return fmpi_error(NULL, MPI_ERR_ARG, "MPI_Startall");
  for (int i = 0; i < count; i++) {
    int rv = start_one(array_of_requests[i], "MPI_Startall");
    if (rv != MPI_SUCCESS)
      return rv;
  }
  return MPI_SUCCESS;
}
