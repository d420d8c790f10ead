/* Reduction operations: the predefined ops on the predefined types, and
 * user ops (MPI_Op_create). */
#define _GNU_SOURCE
#include <complex.h>
#include <stdbool.h>
#include <stdlib.h>
#include <wchar.h>

#include "fmpi.h"

#pragma weak MPI_Op_create = PMPI_Op_create
#pragma weak MPI_Op_free = PMPI_Op_free
#pragma weak MPI_Op_commutative = PMPI_Op_commutative
#pragma weak MPI_Reduce_local = PMPI_Reduce_local

#define FIRST_USER_OP 32

/* A user op: the function and whether it commutes. */
typedef struct fmpi_user_op {
  MPI_User_function *fn;
  bool commute;
} fmpi_user_op;

fmpi_table fmpi_ops;

static fmpi_user_op *user_op(MPI_Op op)
{
  return op >= FIRST_USER_OP ? fmpi_table_get(&fmpi_ops, op - FIRST_USER_OP + 1) : NULL;
}

bool fmpi_op_valid(MPI_Op op)
{
  return (op >= MPI_MAX && op <= MPI_NO_OP) || user_op(op) != NULL;
}

bool fmpi_op_commutative(MPI_Op op)
{
  fmpi_user_op *u = user_op(op);
  return u ? u->commute : true;
}

#define LOOP(T, EXPR)                            \
  do {                                           \
    const T *a = in;                             \
    T *b = inout;                                \
    for (int i = 0; i < n; i++)                  \
      b[i] = (T)(EXPR);                          \
  } while (0)

/* Integer types: every op but MINLOC/MAXLOC. */
#define INT_OPS(T)                                                 \
  switch (op) {                                                    \
  case MPI_MAX: LOOP(T, a[i] > b[i] ? a[i] : b[i]); return 0;      \
  case MPI_MIN: LOOP(T, a[i] < b[i] ? a[i] : b[i]); return 0;      \
  case MPI_SUM: LOOP(T, b[i] + a[i]); return 0;                    \
  case MPI_PROD: LOOP(T, b[i] * a[i]); return 0;                   \
  case MPI_LAND: LOOP(T, b[i] && a[i]); return 0;                  \
  case MPI_LOR: LOOP(T, b[i] || a[i]); return 0;                   \
  case MPI_LXOR: LOOP(T, !b[i] != !a[i]); return 0;                \
  case MPI_BAND: LOOP(T, b[i] & a[i]); return 0;                   \
  case MPI_BOR: LOOP(T, b[i] | a[i]); return 0;                    \
  case MPI_BXOR: LOOP(T, b[i] ^ a[i]); return 0;                   \
  default: return MPI_ERR_OP;                                      \
  }

#define FLOAT_OPS(T)                                               \
  switch (op) {                                                    \
  case MPI_MAX: LOOP(T, a[i] > b[i] ? a[i] : b[i]); return 0;      \
  case MPI_MIN: LOOP(T, a[i] < b[i] ? a[i] : b[i]); return 0;      \
  case MPI_SUM: LOOP(T, b[i] + a[i]); return 0;                    \
  case MPI_PROD: LOOP(T, b[i] * a[i]); return 0;                   \
  default: return MPI_ERR_OP;                                      \
  }

#define COMPLEX_OPS(T)                                             \
  switch (op) {                                                    \
  case MPI_SUM: LOOP(T, b[i] + a[i]); return 0;                    \
  case MPI_PROD: LOOP(T, b[i] * a[i]); return 0;                   \
  default: return MPI_ERR_OP;                                      \
  }

/* MINLOC/MAXLOC: the extreme value, and on a tie the smaller index. */
#define LOC_OPS(T)                                                               \
  do {                                                                           \
    struct pair { T v; int i; };                                                 \
    const struct pair *a = in;                                                   \
    struct pair *b = inout;                                                      \
    if (op != MPI_MINLOC && op != MPI_MAXLOC)                                    \
      return MPI_ERR_OP;                                                         \
    for (int k = 0; k < n; k++) {                                                \
      bool better = op == MPI_MINLOC ? a[k].v < b[k].v : a[k].v > b[k].v;        \
      if (better || (a[k].v == b[k].v && a[k].i < b[k].i))                       \
        b[k] = a[k];                                                             \
    }                                                                            \
    return 0;                                                                    \
  } while (0)

static int apply_basic(MPI_Op op, const void *in, void *inout, int n, MPI_Datatype type)
{
  if (op == MPI_REPLACE) {
    fmpi_type *t = fmpi_type_get(type);
    fmpi_pack(t, in, n, inout); /* basic types are contiguous */
    return 0;
  }
  if (op == MPI_NO_OP)
    return 0;
  switch (type) {
  case MPI_CHAR: INT_OPS(char);
  case MPI_SIGNED_CHAR: case MPI_INT8_T: INT_OPS(int8_t);
  case MPI_UNSIGNED_CHAR: case MPI_UINT8_T: case MPI_BYTE: INT_OPS(uint8_t);
  case MPI_WCHAR: INT_OPS(wchar_t);
  case MPI_SHORT: case MPI_INT16_T: INT_OPS(int16_t);
  case MPI_UNSIGNED_SHORT: case MPI_UINT16_T: INT_OPS(uint16_t);
  case MPI_INT: case MPI_INT32_T: INT_OPS(int32_t);
  case MPI_UNSIGNED: case MPI_UINT32_T: INT_OPS(uint32_t);
  case MPI_LONG: INT_OPS(long);
  case MPI_UNSIGNED_LONG: INT_OPS(unsigned long);
  case MPI_LONG_LONG_INT: case MPI_INT64_T: case MPI_OFFSET: case MPI_COUNT: INT_OPS(int64_t);
  case MPI_UNSIGNED_LONG_LONG: case MPI_UINT64_T: INT_OPS(uint64_t);
  case MPI_AINT: INT_OPS(MPI_Aint);
  case MPI_C_BOOL:
    switch (op) {
    case MPI_LAND: LOOP(_Bool, b[i] && a[i]); return 0;
    case MPI_LOR: LOOP(_Bool, b[i] || a[i]); return 0;
    case MPI_LXOR: LOOP(_Bool, b[i] != a[i]); return 0;
    default: return MPI_ERR_OP;
    }
  case MPI_FLOAT: FLOAT_OPS(float);
  case MPI_DOUBLE: FLOAT_OPS(double);
  case MPI_LONG_DOUBLE: FLOAT_OPS(long double);
  case MPI_C_FLOAT_COMPLEX: COMPLEX_OPS(float _Complex);
  case MPI_C_DOUBLE_COMPLEX: COMPLEX_OPS(double _Complex);
  case MPI_C_LONG_DOUBLE_COMPLEX: COMPLEX_OPS(long double _Complex);
  case MPI_FLOAT_INT: LOC_OPS(float);
  case MPI_DOUBLE_INT: LOC_OPS(double);
  case MPI_LONG_INT: LOC_OPS(long);
  case MPI_2INT: LOC_OPS(int);
  case MPI_SHORT_INT: LOC_OPS(short);
  case MPI_LONG_DOUBLE_INT: LOC_OPS(long double);
  default: return MPI_ERR_TYPE;
  }
}

/* inout[i] = in[i] op inout[i] for count elements of type (in the user layout). */
int fmpi_op_apply(MPI_Op op, const void *in, void *inout, int count, MPI_Datatype type)
{
  fmpi_user_op *u = user_op(op);
  if (u) {
    MPI_Datatype t = type;
    int n = count;
    u->fn((void *)in, inout, &n, &t);
    return MPI_SUCCESS;
  }
  if (!fmpi_op_valid(op))
    return MPI_ERR_OP;
  fmpi_type *t = fmpi_type_get(type);
  if (t == NULL)
    return MPI_ERR_TYPE;
  if (t->predefined)
    return apply_basic(op, in, inout, count, type);
  /* a derived type made of one basic type laid out contiguously */
  fmpi_type *b = t->basic ? fmpi_type_get(t->basic) : NULL;
  if (b == NULL || !t->contig || b->size == 0)
    return MPI_ERR_OP;
  return apply_basic(op, in, inout, (int)((size_t)count * t->size / b->size), t->basic);
}

int PMPI_Reduce_local(const void *inbuf, void *inoutbuf, int count, MPI_Datatype datatype, MPI_Op op)
{
  FMPI_CHECK_INIT("MPI_Reduce_local");
  if (count < 0)
    return fmpi_error(NULL, MPI_ERR_COUNT, "MPI_Reduce_local");
  if (fmpi_type_get(datatype) == NULL)
    return fmpi_error(NULL, MPI_ERR_TYPE, "MPI_Reduce_local");
  int rv = fmpi_op_apply(op, inbuf, inoutbuf, count, datatype);
  return rv == MPI_SUCCESS ? rv : fmpi_error(NULL, rv, "MPI_Reduce_local");
}

int PMPI_Op_create(MPI_User_function *user_fn, int commute, MPI_Op *op)
{
  fmpi_user_op *u = malloc(sizeof *u);
  if (u == NULL)
    fmpi_fatal("out of memory");
  u->fn = user_fn;
  u->commute = commute != 0;
  *op = fmpi_table_add(&fmpi_ops, u) - 1 + FIRST_USER_OP;
  return MPI_SUCCESS;
}

int PMPI_Op_commutative(MPI_Op op, int *commute)
{
  if (!fmpi_op_valid(op))
    return fmpi_error(NULL, MPI_ERR_OP, "MPI_Op_commutative");
  *commute = fmpi_op_commutative(op);
  return MPI_SUCCESS;
}

int PMPI_Op_free(MPI_Op *op)
{
  fmpi_user_op *u = user_op(*op);
  if (u == NULL)
    return fmpi_error(NULL, MPI_ERR_OP, "MPI_Op_free");
  fmpi_table_del(&fmpi_ops, *op - FIRST_USER_OP + 1);
  free(u);
  *op = MPI_OP_NULL;
  return MPI_SUCCESS;
}
