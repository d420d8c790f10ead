/* Scratch memory of the collectives: their temporaries from FMPI_SCRATCH_MIN_BYTES up are kept when
 * given back (up to FMPI_SCRATCH_KEEP blocks and FMPI_SCRATCH_KEEP_BYTES in all) and handed out again,
 * instead of going back to glibc.
 *
 * Why: glibc returns a large free block at the top of the heap to the system once it exceeds its trim
 * threshold (twice the largest block it has unmapped so far), so a collective whose temporaries add up to
 * more than that gave them back after every call and faulted every page in again at the next one. A
 * Reduce_scatter_block of 8 MiB on 4 ranks (rank 0 holds the result and the tree's buffers): about 4070
 * page faults and 81-84 ms a call at rank 0; with the blocks kept, none after the first call and 11-18 ms.
 * (A page fault costs 15-35 us on this machine.) Kept blocks are freed when the rank is flushed
 * (check_flush_done), before a dump, so no image carries them, and at MPI_Finalize. A mutex of its own:
 * nonblocking collectives give theirs back wherever their schedule ends (an app pass or the progress
 * thread). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>

#include "fmpi.h"

/* Before each block: its usable size; 16 bytes keep malloc's alignment. */
typedef struct scratch_head {
  size_t bytes;
  size_t unused;
} scratch_head;

static pthread_mutex_t scratch_mu = PTHREAD_MUTEX_INITIALIZER;
static scratch_head *kept[FMPI_SCRATCH_KEEP];
static int nkept;
static size_t kept_bytes;

void *fmpi_scratch_get(size_t bytes)
{
  if (bytes >= FMPI_SCRATCH_MIN_BYTES) {
    pthread_mutex_lock(&scratch_mu);
    int best = -1; /* the smallest kept block that is large enough */
    for (int i = 0; i < nkept; i++)
      if (kept[i]->bytes >= bytes && (best < 0 || kept[i]->bytes < kept[best]->bytes))
        best = i;
    scratch_head *h = best >= 0 ? kept[best] : NULL;
    if (h != NULL) {
      kept[best] = kept[--nkept];
      kept_bytes -= h->bytes;
    }
    pthread_mutex_unlock(&scratch_mu);
    if (h != NULL)
      return h + 1;
  }
  scratch_head *h = malloc(sizeof *h + (bytes ? bytes : 1));
  if (h == NULL)
    fmpi_fatal("out of memory (%zu bytes of scratch memory for a collective)", bytes);
  h->bytes = bytes;
  return h + 1;
}

void fmpi_scratch_put(void *p)
{
  if (p == NULL)
    return;
  scratch_head *h = (scratch_head *)p - 1;
  if (h->bytes < FMPI_SCRATCH_MIN_BYTES) {
    free(h);
    return;
  }
  pthread_mutex_lock(&scratch_mu);
  if (h->bytes > FMPI_SCRATCH_KEEP_BYTES) {
    /* too large to keep: freed below */
  } else if (nkept < FMPI_SCRATCH_KEEP && kept_bytes + h->bytes <= FMPI_SCRATCH_KEEP_BYTES) {
    kept[nkept++] = h;
    kept_bytes += h->bytes;
    h = NULL;
  } else if (nkept > 0) { /* full: the smallest kept one makes room if this one is larger and then fits */
    int small = 0;
    for (int i = 1; i < nkept; i++)
      if (kept[i]->bytes < kept[small]->bytes)
        small = i;
    if (kept[small]->bytes < h->bytes && kept_bytes - kept[small]->bytes + h->bytes <= FMPI_SCRATCH_KEEP_BYTES) {
      scratch_head *out = kept[small];
      kept_bytes += h->bytes - out->bytes;
      kept[small] = h;
      h = out;
    }
  }
  pthread_mutex_unlock(&scratch_mu);
  free(h);
}

void fmpi_scratch_release(void)
{
  pthread_mutex_lock(&scratch_mu);
  int n = nkept;
  scratch_head *out[FMPI_SCRATCH_KEEP];
  for (int i = 0; i < n; i++)
    out[i] = kept[i];
  nkept = 0;
  kept_bytes = 0;
  pthread_mutex_unlock(&scratch_mu);
  for (int i = 0; i < n; i++)
    free(out[i]);
}
