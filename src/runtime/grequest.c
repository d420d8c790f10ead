/* Generalized requests (MPI 3.1 12.2): an operation the application carries out itself (often on a
 * thread of its own) and reports done with MPI_Grequest_complete. It waits and tests like any request;
 * its status comes from the query callback, and the free callback runs when the request goes (in the
 * Wait or Test that finishes it, or, after an MPI_Request_free, in whichever of that and
 * MPI_Grequest_complete comes last).
 *
 * The callbacks run without the runtime lock: they may call MPI (MPI_Status_set_elements,
 * MPI_Status_set_cancelled, and more). Nothing of a generalized request moves through a channel, so a
 * flush and a dump carry it as the plain memory it is; its callbacks are the application's code. */
#include <stdlib.h>

#include "fmpi.h"

#pragma weak MPI_Grequest_start = PMPI_Grequest_start
#pragma weak MPI_Grequest_complete = PMPI_Grequest_complete

struct fmpi_greq {
  MPI_Grequest_query_function *query;
  MPI_Grequest_free_function *free_fn;
  MPI_Grequest_cancel_function *cancel;
  void *extra_state;
};

int PMPI_Grequest_start(MPI_Grequest_query_function *query_fn, MPI_Grequest_free_function *free_fn,
                        MPI_Grequest_cancel_function *cancel_fn, void *extra_state, MPI_Request *request)
{
  FMPI_CHECK_INIT("MPI_Grequest_start");
  if (query_fn == NULL || free_fn == NULL || cancel_fn == NULL || request == NULL)
    return fmpi_error(NULL, MPI_ERR_ARG, "MPI_Grequest_start");
  fmpi_greq *g = malloc(sizeof *g);
  if (g == NULL)
    fmpi_fatal("out of memory");
  *g = (fmpi_greq){ query_fn, free_fn, cancel_fn, extra_state };
  fmpi_request *r = fmpi_req_new(false, NULL, 0, MPI_PROC_NULL, 0, NULL, 0, MPI_BYTE);
  r->greq = g;
  fmpi_lock();
  fmpi_req_handle(r, request);
  fmpi_unlock();
  return MPI_SUCCESS;
}

/* The free callback, then the request itself (lock held; released around the callback). */
static int release(fmpi_request *r)
{
  fmpi_greq *g = r->greq;
  fmpi_unlock();
  int rv = g->free_fn(g->extra_state);
  fmpi_lock();
  free(g);
  fmpi_req_release(r);
  return rv;
}

int PMPI_Grequest_complete(MPI_Request request)
{
  FMPI_CHECK_INIT("MPI_Grequest_complete");
  fmpi_lock();
  fmpi_request *r = fmpi_table_get(&fmpi_requests, request);
  if (r == NULL || r->greq == NULL || r->complete) {
    fmpi_unlock();
    return fmpi_error(NULL, MPI_ERR_REQUEST, "MPI_Grequest_complete");
  }
  r->complete = true;
  fmpi_st.completions++;
  int rv = MPI_SUCCESS;
  if (r->user_freed) /* MPI_Request_free came first: the request goes now */
    rv = release(r);
  pthread_cond_broadcast(&fmpi_st.done_cond); /* a Wait of another thread sleeps there */
  fmpi_unlock();
  return rv == MPI_SUCCESS ? rv : fmpi_error(NULL, rv, "MPI_Grequest_complete");
}

/* The status of a completed generalized request, from its query callback (lock held; released around
 * the callback). Returns the callback's error code, also left in the status's MPI_ERROR. */
int fmpi_greq_status(fmpi_request *r, MPI_Status *status)
{
  fmpi_greq *g = r->greq;
  MPI_Status st = { .MPI_SOURCE = MPI_ANY_SOURCE, .MPI_TAG = MPI_ANY_TAG, .MPI_ERROR = MPI_SUCCESS };
  fmpi_unlock();
  int rv = g->query(g->extra_state, &st);
  fmpi_lock();
  st.MPI_ERROR = rv;
  if (status != MPI_STATUS_IGNORE && status != NULL)
    *status = st;
  return rv;
}

/* What a Wait or Test does with a completed generalized request: its status, then the free callback
 * (lock held). Returns the first error of the two callbacks, also left in the status's MPI_ERROR. */
int fmpi_greq_finish(fmpi_request *r, MPI_Status *status)
{
  int rv = fmpi_greq_status(r, status);
  int freed = release(r);
  if (rv == MPI_SUCCESS && freed != MPI_SUCCESS) {
    rv = freed;
    if (status != MPI_STATUS_IGNORE && status != NULL)
      status->MPI_ERROR = rv;
  }
  return rv;
}

/* MPI_Request_free (lock held): the free callback now if complete, else when it completes. The handle
 * stays valid until then, for the MPI_Grequest_complete still to come. */
int fmpi_greq_free(fmpi_request *r)
{
  if (r->complete)
    return release(r);
  r->user_freed = true;
  return MPI_SUCCESS;
}

/* MPI_Cancel (lock held): the cancel callback, told whether MPI_Grequest_complete was called. */
int fmpi_greq_cancel(fmpi_request *r)
{
  fmpi_greq *g = r->greq;
  int complete = r->complete;
  fmpi_unlock();
  int rv = g->cancel(g->extra_state, complete);
  fmpi_lock();
  return rv;
}
