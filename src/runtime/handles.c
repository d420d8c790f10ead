/* Small-integer handle tables (MPI handles are ints, as in MPICH). Handle h
 * names slot h - 1; freed slots are reused lowest first. */
#include <stdlib.h>

#include "fmpi.h"

int fmpi_table_add(fmpi_table *t, void *p)
{
  for (int i = t->first; i < t->n; i++)
    if (t->slots[i] == NULL) {
      t->slots[i] = p;
      t->first = i + 1;
      return i + 1;
    }
  if (t->n == t->cap) {
    int cap = t->cap ? t->cap * 2 : 64;
    void **s = realloc(t->slots, (size_t)cap * sizeof *s);
    if (s == NULL)
      fmpi_fatal("out of memory");
    t->slots = s;
    t->cap = cap;
  }
  t->slots[t->n++] = p;
  t->first = t->n;
  return t->n;
}

void *fmpi_table_get(fmpi_table *t, int h)
{
  return h >= 1 && h <= t->n ? t->slots[h - 1] : NULL;
}

void fmpi_table_del(fmpi_table *t, int h)
{
  if (h < 1 || h > t->n)
    return;
  t->slots[h - 1] = NULL;
  if (h - 1 < t->first)
    t->first = h - 1;
}
