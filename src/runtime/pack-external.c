/* MPI_Pack_external and friends (MPI 3.1 4.2 and 13.5.2): data in the "external32" representation,
 * the same bytes on every machine: big-endian, IEEE 754 floating point, fixed sizes (MPI_LONG and
 * MPI_UNSIGNED_LONG are 4 bytes there, MPI_LONG_DOUBLE a 16-byte binary128). Elements go in type-map
 * order, which type-contents.c's walk gives. A long that does not fit in 4 bytes is MPI_ERR_CONVERSION,
 * never a silently different number. */
#include <stdint.h>
#include <string.h>

#include "fmpi.h"

#pragma weak MPI_Pack_external = PMPI_Pack_external
#pragma weak MPI_Unpack_external = PMPI_Unpack_external
#pragma weak MPI_Pack_external_size = PMPI_Pack_external_size

enum field_kind { RAW, LONG_FIELD, ULONG_FIELD, LDOUBLE_FIELD };
typedef struct field {
  enum field_kind kind;
  size_t off, native, ext; /* offset in the native element, native and external32 sizes */
} field;

#define PAIR(T, kind0, ext0)                                                                        \
  do {                                                                                              \
    struct pair { T v; int i; };                                                                    \
    f[0] = (field){ kind0, 0, sizeof(T), ext0 };                                                    \
    f[1] = (field){ RAW, offsetof(struct pair, i), sizeof(int), 4 };                                \
    return 2;                                                                                       \
  } while (0)

/* The fields of one element of a predefined type; 0 for one external32 does not have. */
static int fields(MPI_Datatype b, field f[2])
{
  size_t n = fmpi_type_get(b)->size;
  switch (b) {
  case MPI_LONG:
    f[0] = (field){ LONG_FIELD, 0, sizeof(long), 4 };
    return 1;
  case MPI_UNSIGNED_LONG:
    f[0] = (field){ ULONG_FIELD, 0, sizeof(long), 4 };
    return 1;
  case MPI_LONG_DOUBLE:
    f[0] = (field){ LDOUBLE_FIELD, 0, sizeof(long double), 16 };
    return 1;
  case MPI_C_FLOAT_COMPLEX:
  case MPI_C_DOUBLE_COMPLEX:
    f[0] = (field){ RAW, 0, n / 2, n / 2 };
    f[1] = (field){ RAW, n / 2, n / 2, n / 2 };
    return 2;
  case MPI_C_LONG_DOUBLE_COMPLEX:
    f[0] = (field){ LDOUBLE_FIELD, 0, sizeof(long double), 16 };
    f[1] = (field){ LDOUBLE_FIELD, sizeof(long double), sizeof(long double), 16 };
    return 2;
  case MPI_FLOAT_INT:
    PAIR(float, RAW, 4);
  case MPI_DOUBLE_INT:
    PAIR(double, RAW, 8);
  case MPI_LONG_INT:
    PAIR(long, LONG_FIELD, 4);
  case MPI_2INT:
    PAIR(int, RAW, 4);
  case MPI_SHORT_INT:
    PAIR(short, RAW, 2);
  case MPI_LONG_DOUBLE_INT:
    PAIR(long double, LDOUBLE_FIELD, 16);
  default: /* integers, float, double, bool, wchar_t (4 bytes here), bytes: same size, big-endian */
    f[0] = (field){ RAW, 0, n, n };
    return n ? 1 : 0;
  }
}

/* n bytes in the other byte order (this host's and big-endian), or copied on a big-endian host. */
static void swap_copy(uint8_t *dst, const uint8_t *src, size_t n)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  for (size_t i = 0; i < n; i++)
    dst[i] = src[n - 1 - i];
#else
  memcpy(dst, src, n);
#endif
}

static int field_out(const field *f, const uint8_t *native, uint8_t *ext)
{
  switch (f->kind) {
  case RAW:
    swap_copy(ext, native, f->native);
    return MPI_SUCCESS;
  case LONG_FIELD:
  case ULONG_FIELD: {
    long v;
    memcpy(&v, native, sizeof v);
    bool fits = f->kind == LONG_FIELD ? v >= INT32_MIN && v <= INT32_MAX : (unsigned long)v <= UINT32_MAX;
    if (!fits)
      return MPI_ERR_CONVERSION;
    uint32_t w = (uint32_t)v;
    swap_copy(ext, (const uint8_t *)&w, 4);
    return MPI_SUCCESS;
  }
  case LDOUBLE_FIELD: {
    long double v;
    memcpy(&v, native, sizeof v);
    __float128 q = (__float128)v; /* exact: binary128 holds every x87 extended value */
    swap_copy(ext, (const uint8_t *)&q, 16);
    return MPI_SUCCESS;
  }
  }
  return MPI_ERR_INTERN;
}

static void field_in(const field *f, const uint8_t *ext, uint8_t *native)
{
  switch (f->kind) {
  case RAW:
    swap_copy(native, ext, f->native);
    break;
  case LONG_FIELD:
  case ULONG_FIELD: {
    uint32_t w;
    swap_copy((uint8_t *)&w, ext, 4);
    long v = f->kind == LONG_FIELD ? (long)(int32_t)w : (long)w;
    memcpy(native, &v, sizeof v);
    break;
  }
  case LDOUBLE_FIELD: {
    __float128 q;
    swap_copy((uint8_t *)&q, ext, 16);
    long double v = (long double)q;
    memcpy(native, &v, sizeof v);
    break;
  }
  }
}

typedef struct cursor {
  uint8_t *native;         /* the user's buffer */
  uint8_t *ext;            /* the external32 bytes */
  MPI_Aint pos, size;      /* in ext */
  bool packing;
} cursor;

static int count_element(MPI_Datatype b, MPI_Aint at, void *arg)
{
  (void)at;
  field f[2];
  int n = fields(b, f);
  for (int i = 0; i < n; i++)
    *(MPI_Aint *)arg += (MPI_Aint)f[i].ext;
  return MPI_SUCCESS;
}

static int move_element(MPI_Datatype b, MPI_Aint at, void *arg)
{
  cursor *c = arg;
  field f[2];
  int n = fields(b, f);
  for (int i = 0; i < n; i++) {
    if (c->pos + (MPI_Aint)f[i].ext > c->size)
      return MPI_ERR_TRUNCATE;
    uint8_t *native = c->native + at + f[i].off, *ext = c->ext + c->pos;
    if (c->packing) {
      int rv = field_out(&f[i], native, ext);
      if (rv != MPI_SUCCESS)
        return rv;
    } else {
      field_in(&f[i], ext, native);
    }
    c->pos += (MPI_Aint)f[i].ext;
  }
  return MPI_SUCCESS;
}

/* Checks the representation and the type; count copies of it one extent apart. */
static int check(const char *datarep, int count, MPI_Datatype datatype, const char *name, fmpi_type **t)
{
  FMPI_CHECK_INIT(name);
  if (datarep == NULL || strcmp(datarep, "external32") != 0)
    return fmpi_error(NULL, MPI_ERR_UNSUPPORTED_DATAREP, name);
  if (count < 0)
    return fmpi_error(NULL, MPI_ERR_COUNT, name);
  *t = fmpi_type_get(datatype);
  if (*t == NULL || (!(*t)->predefined && (*t)->contents == NULL))
    return fmpi_error(NULL, MPI_ERR_TYPE, name);
  return MPI_SUCCESS;
}

static int walk_all(MPI_Datatype datatype, const fmpi_type *t, int count, int (*fn)(MPI_Datatype, MPI_Aint, void *),
                    void *arg)
{
  for (int k = 0; k < count; k++) {
    int rv = fmpi_type_walk(datatype, (MPI_Aint)k * t->extent, fn, arg);
    if (rv != MPI_SUCCESS)
      return rv;
  }
  return MPI_SUCCESS;
}

int PMPI_Pack_external_size(const char datarep[], int incount, MPI_Datatype datatype, MPI_Aint *size)
{
  fmpi_type *t;
  int rv = check(datarep, incount, datatype, "MPI_Pack_external_size", &t);
  if (rv != MPI_SUCCESS)
    return rv;
  MPI_Aint one = 0;
  fmpi_type_walk(datatype, 0, count_element, &one);
  *size = one * incount;
  return MPI_SUCCESS;
}

int PMPI_Pack_external(const char datarep[], const void *inbuf, int incount, MPI_Datatype datatype, void *outbuf,
                       MPI_Aint outsize, MPI_Aint *position)
{
  fmpi_type *t;
  int rv = check(datarep, incount, datatype, "MPI_Pack_external", &t);
  if (rv != MPI_SUCCESS)
    return rv;
  cursor c = { (uint8_t *)inbuf, outbuf, *position, outsize, true };
  rv = walk_all(datatype, t, incount, move_element, &c);
  if (rv != MPI_SUCCESS)
    return fmpi_error(NULL, rv, "MPI_Pack_external");
  *position = c.pos;
  return MPI_SUCCESS;
}

int PMPI_Unpack_external(const char datarep[], const void *inbuf, MPI_Aint insize, MPI_Aint *position, void *outbuf,
                         int outcount, MPI_Datatype datatype)
{
  fmpi_type *t;
  int rv = check(datarep, outcount, datatype, "MPI_Unpack_external", &t);
  if (rv != MPI_SUCCESS)
    return rv;
  cursor c = { outbuf, (uint8_t *)inbuf, *position, insize, false };
  rv = walk_all(datatype, t, outcount, move_element, &c);
  if (rv != MPI_SUCCESS)
    return fmpi_error(NULL, rv, "MPI_Unpack_external");
  *position = c.pos;
  return MPI_SUCCESS;
}
