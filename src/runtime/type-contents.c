/* How each derived datatype was made: its constructor (combiner) and arguments, as
 * MPI_Type_get_envelope and MPI_Type_get_contents return them (MPI 3.1 4.1.13), and a walk over a
 * type's basic elements in type-map order built on them (MPI_Pack_external, pack-external.c).
 *
 * datatype.c flattens every type to byte blocks, which loses both. So each constructor records its
 * arguments here. A record holds a reference to each derived type among them: a user may free a type
 * after building others from it (MPI 3.1 4.1.9), and it stays, handle and all, while they do.
 * get_contents hands out one more reference per derived type, which the caller's MPI_Type_free drops
 * (as in MPICH, the same handle: the standard's "new handle" is one the caller owns and frees). */
#include <stdlib.h>
#include <string.h>

#include "fmpi.h"

#pragma weak MPI_Type_get_envelope = PMPI_Type_get_envelope
#pragma weak MPI_Type_get_contents = PMPI_Type_get_contents
#pragma weak MPI_Type_match_size = PMPI_Type_match_size

struct fmpi_type_contents {
  int combiner;
  int ni, na, nt;
  int *ints;
  MPI_Aint *aints;
  MPI_Datatype *types;   /* the derived ones are copies owned here */
  MPI_Datatype impl;     /* subarray, darray: their elements in order, as an hindexed type (a copy), or 0 */
};

static void *copy_of(const void *p, size_t bytes)
{
  void *q = malloc(bytes ? bytes : 1);
  if (q == NULL)
    fmpi_fatal("out of memory");
  if (bytes)
    memcpy(q, p, bytes);
  return q;
}

/* One more reference to a derived type (a predefined one needs none). */
static MPI_Datatype hold(MPI_Datatype h)
{
  fmpi_type *t = fmpi_type_get(h);
  if (t && !t->predefined)
    t->refs++;
  return h;
}

static void drop(MPI_Datatype h)
{
  fmpi_type *t = fmpi_type_get(h);
  if (t && !t->predefined)
    fmpi_type_release(h); /* a failing delete callback leaves the type: there is no caller to tell */
}

void fmpi_type_contents_free(struct fmpi_type_contents *c)
{
  if (c == NULL)
    return;
  for (int i = 0; i < c->nt; i++)
    drop(c->types[i]);
  if (c->impl)
    drop(c->impl);
  free(c->ints);
  free(c->aints);
  free(c->types);
  free(c);
}

/* Records (or, for a constructor built on another, records again) how `made` was made. */
void fmpi_type_record(MPI_Datatype made, int combiner, int ni, const int *ints, int na, const MPI_Aint *aints,
                      int nt, const MPI_Datatype *types)
{
  fmpi_type *t = fmpi_type_get(made);
  struct fmpi_type_contents *c = calloc(1, sizeof *c);
  if (c == NULL)
    fmpi_fatal("out of memory");
  *c = (struct fmpi_type_contents){ combiner, ni, na, nt, copy_of(ints, sizeof(int) * (size_t)ni),
                                    copy_of(aints, sizeof(MPI_Aint) * (size_t)na),
                                    copy_of(types, sizeof(MPI_Datatype) * (size_t)nt), 0 };
  for (int i = 0; i < nt; i++)
    hold(types[i]);
  struct fmpi_type_contents *old = t->contents;
  t->contents = c;
  fmpi_type_contents_free(old);
}

void fmpi_type_record_impl(MPI_Datatype made, MPI_Datatype impl)
{
  fmpi_type *t = fmpi_type_get(made);
  t->contents->impl = hold(impl);
}

int PMPI_Type_get_envelope(MPI_Datatype datatype, int *num_integers, int *num_addresses, int *num_datatypes,
                           int *combiner)
{
  FMPI_CHECK_INIT("MPI_Type_get_envelope");
  fmpi_type *t = fmpi_type_get(datatype);
  if (t == NULL)
    return fmpi_error(NULL, MPI_ERR_TYPE, "MPI_Type_get_envelope");
  const struct fmpi_type_contents *c = t->contents;
  *combiner = c ? c->combiner : MPI_COMBINER_NAMED;
  *num_integers = c ? c->ni : 0;
  *num_addresses = c ? c->na : 0;
  *num_datatypes = c ? c->nt : 0;
  return MPI_SUCCESS;
}

/* Erroneous for a predefined type (MPI_ERR_TYPE); arrays too short are MPI_ERR_ARG. */
int PMPI_Type_get_contents(MPI_Datatype datatype, int max_integers, int max_addresses, int max_datatypes,
                           int array_of_integers[], MPI_Aint array_of_addresses[],
                           MPI_Datatype array_of_datatypes[])
{
  FMPI_CHECK_INIT("MPI_Type_get_contents");
  fmpi_type *t = fmpi_type_get(datatype);
  if (t == NULL || t->contents == NULL)
    return fmpi_error(NULL, MPI_ERR_TYPE, "MPI_Type_get_contents");
  const struct fmpi_type_contents *c = t->contents;
  if (max_integers < c->ni || max_addresses < c->na || max_datatypes < c->nt)
    return fmpi_error(NULL, MPI_ERR_ARG, "MPI_Type_get_contents");
  if (c->ni)
    memcpy(array_of_integers, c->ints, sizeof(int) * (size_t)c->ni);
  if (c->na)
    memcpy(array_of_addresses, c->aints, sizeof(MPI_Aint) * (size_t)c->na);
  for (int i = 0; i < c->nt; i++)
    array_of_datatypes[i] = hold(c->types[i]);
  return MPI_SUCCESS;
}

/* A predefined C type of the class and size (MPI 3.1 17.1.9 names Fortran ones; this library has C ones). */
int PMPI_Type_match_size(int typeclass, int size, MPI_Datatype *datatype)
{
  FMPI_CHECK_INIT("MPI_Type_match_size");
  static const MPI_Datatype integers[] = { MPI_SIGNED_CHAR, MPI_SHORT, MPI_INT, MPI_LONG_LONG };
  static const MPI_Datatype reals[] = { MPI_FLOAT, MPI_DOUBLE, MPI_LONG_DOUBLE };
  static const MPI_Datatype complexes[] = { MPI_C_FLOAT_COMPLEX, MPI_C_DOUBLE_COMPLEX, MPI_C_LONG_DOUBLE_COMPLEX };
  const MPI_Datatype *list = typeclass == MPI_TYPECLASS_INTEGER ? integers
                             : typeclass == MPI_TYPECLASS_REAL  ? reals
                             : typeclass == MPI_TYPECLASS_COMPLEX ? complexes
                                                                  : NULL;
  int n = typeclass == MPI_TYPECLASS_INTEGER ? 4 : 3;
  for (int i = 0; list && i < n; i++)
    if (fmpi_type_get(list[i])->size == (size_t)size) {
      *datatype = list[i];
      return MPI_SUCCESS;
    }
  return fmpi_error(NULL, MPI_ERR_ARG, "MPI_Type_match_size");
}

/* ---- the type map in order ---- */

static MPI_Aint extent_of(MPI_Datatype h)
{
  return fmpi_type_get(h)->extent;
}

/* Calls fn for each basic (predefined) element of one `h` at base, in type-map order; stops at and
 * returns the first error fn returns. MPI_LB and MPI_UB markers have no elements. */
int fmpi_type_walk(MPI_Datatype h, MPI_Aint base, int (*fn)(MPI_Datatype basic, MPI_Aint at, void *arg), void *arg)
{
  fmpi_type *t = fmpi_type_get(h);
  if (t->predefined)
    return h == MPI_LB || h == MPI_UB ? MPI_SUCCESS : fn(h, base, arg);
  const struct fmpi_type_contents *c = t->contents;
  const int *in = c->ints;
  const MPI_Aint *ad = c->aints;
  int rv = MPI_SUCCESS;
#define WALK(type, at)                                        \
  do {                                                        \
    if ((rv = fmpi_type_walk((type), (at), fn, arg)) != MPI_SUCCESS) \
      return rv;                                              \
  } while (0)
  if (c->impl) { /* subarray, darray */
    WALK(c->impl, base);
    return rv;
  }
  MPI_Datatype old = c->nt ? c->types[0] : 0;
  MPI_Aint ext = old ? extent_of(old) : 0;
  switch (c->combiner) {
  case MPI_COMBINER_DUP:
  case MPI_COMBINER_RESIZED:
    WALK(old, base);
    break;
  case MPI_COMBINER_CONTIGUOUS:
    for (int i = 0; i < in[0]; i++)
      WALK(old, base + i * ext);
    break;
  case MPI_COMBINER_VECTOR:
  case MPI_COMBINER_HVECTOR: {
    MPI_Aint stride = c->combiner == MPI_COMBINER_VECTOR ? in[2] * ext : ad[0];
    for (int i = 0; i < in[0]; i++)
      for (int j = 0; j < in[1]; j++)
        WALK(old, base + i * stride + j * ext);
    break;
  }
  case MPI_COMBINER_INDEXED:
  case MPI_COMBINER_HINDEXED:
  case MPI_COMBINER_INDEXED_BLOCK:
  case MPI_COMBINER_HINDEXED_BLOCK:
  case MPI_COMBINER_STRUCT: {
    int n = in[0];
    bool one_bl = c->combiner == MPI_COMBINER_INDEXED_BLOCK || c->combiner == MPI_COMBINER_HINDEXED_BLOCK;
    for (int i = 0; i < n; i++) {
      int bl = one_bl ? in[1] : in[1 + i];
      MPI_Datatype ty = c->combiner == MPI_COMBINER_STRUCT ? c->types[i] : old;
      MPI_Aint e = extent_of(ty);
      MPI_Aint d = c->combiner == MPI_COMBINER_INDEXED         ? in[1 + n + i] * e
                   : c->combiner == MPI_COMBINER_INDEXED_BLOCK ? in[2 + i] * e
                                                               : ad[i];
      for (int j = 0; j < bl; j++)
        WALK(ty, base + d + j * e);
    }
    break;
  }
  default:
    return MPI_ERR_TYPE;
  }
#undef WALK
  return rv;
}
