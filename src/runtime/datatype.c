/* Datatypes: predefined ones, derived ones flattened to a list of byte blocks
 * (offset, length) per element, and packing to and from contiguous bytes. */
#define _GNU_SOURCE
#include <complex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "fmpi.h"

#pragma weak MPI_Type_contiguous = PMPI_Type_contiguous
#pragma weak MPI_Type_vector = PMPI_Type_vector
#pragma weak MPI_Type_create_hvector = PMPI_Type_create_hvector
#pragma weak MPI_Type_indexed = PMPI_Type_indexed
#pragma weak MPI_Type_create_hindexed = PMPI_Type_create_hindexed
#pragma weak MPI_Type_create_struct = PMPI_Type_create_struct
#pragma weak MPI_Type_create_resized = PMPI_Type_create_resized
#pragma weak MPI_Type_create_indexed_block = PMPI_Type_create_indexed_block
#pragma weak MPI_Type_create_hindexed_block = PMPI_Type_create_hindexed_block
#pragma weak MPI_Type_create_subarray = PMPI_Type_create_subarray
#pragma weak MPI_Type_create_darray = PMPI_Type_create_darray
#pragma weak MPI_Type_dup = PMPI_Type_dup
#pragma weak MPI_Type_create_keyval = PMPI_Type_create_keyval
#pragma weak MPI_Type_free_keyval = PMPI_Type_free_keyval
#pragma weak MPI_Type_set_attr = PMPI_Type_set_attr
#pragma weak MPI_Type_get_attr = PMPI_Type_get_attr
#pragma weak MPI_Type_delete_attr = PMPI_Type_delete_attr
#pragma weak MPI_Type_commit = PMPI_Type_commit
#pragma weak MPI_Type_free = PMPI_Type_free
#pragma weak MPI_Type_size = PMPI_Type_size
#pragma weak MPI_Type_get_extent = PMPI_Type_get_extent
#pragma weak MPI_Type_get_true_extent = PMPI_Type_get_true_extent
#pragma weak MPI_Get_address = PMPI_Get_address
#pragma weak MPI_Type_size_x = PMPI_Type_size_x
#pragma weak MPI_Type_get_extent_x = PMPI_Type_get_extent_x
#pragma weak MPI_Type_get_true_extent_x = PMPI_Type_get_true_extent_x
#pragma weak MPI_Type_set_name = PMPI_Type_set_name
#pragma weak MPI_Type_get_name = PMPI_Type_get_name
#pragma weak MPI_Aint_add = PMPI_Aint_add
#pragma weak MPI_Aint_diff = PMPI_Aint_diff

#define FIRST_DERIVED_TYPE 64
#define NPREDEFINED 41

fmpi_table fmpi_types;
static fmpi_type predefined[NPREDEFINED];
static struct fmpi_block predefined_blocks[NPREDEFINED][2];

static void def(MPI_Datatype h, size_t size, int align)
{
  fmpi_type *t = &predefined[h];
  t->size = size;
  t->extent = (MPI_Aint)size;
  t->true_ub = (MPI_Aint)size;
  t->contig = true;
  t->nblocks = size ? 1 : 0;
  t->blocks = predefined_blocks[h];
  t->blocks[0].off = 0;
  t->blocks[0].len = size;
  t->basic = h;
  t->align = align;
  t->committed = t->predefined = true;
}

/* value-index pair types of MINLOC/MAXLOC: {T value; int index} with C padding */
#define DEF_PAIR(h, T)                                                              \
  do {                                                                              \
    struct pair { T v; int i; };                                                    \
    fmpi_type *t = &predefined[h];                                                  \
    def(h, sizeof(T) + sizeof(int), _Alignof(struct pair));                         \
    t->extent = t->true_ub = sizeof(struct pair);                                   \
    t->blocks[0].len = sizeof(T);                                                   \
    t->blocks[1].off = offsetof(struct pair, i);                                    \
    t->blocks[1].len = sizeof(int);                                                 \
    t->nblocks = 2;                                                                 \
    if (t->blocks[1].off == (MPI_Aint)sizeof(T)) {                                  \
      t->blocks[0].len += sizeof(int);                                              \
      t->nblocks = 1;                                                               \
    }                                                                               \
    t->contig = t->nblocks == 1 && t->extent == (MPI_Aint)t->size;                  \
  } while (0)

void fmpi_types_init(void)
{
  def(MPI_CHAR, sizeof(char), 1);
  def(MPI_SIGNED_CHAR, 1, 1);
  def(MPI_UNSIGNED_CHAR, 1, 1);
  def(MPI_BYTE, 1, 1);
  def(MPI_WCHAR, sizeof(wchar_t), _Alignof(wchar_t));
  def(MPI_SHORT, sizeof(short), _Alignof(short));
  def(MPI_UNSIGNED_SHORT, sizeof(short), _Alignof(short));
  def(MPI_INT, sizeof(int), _Alignof(int));
  def(MPI_UNSIGNED, sizeof(int), _Alignof(int));
  def(MPI_LONG, sizeof(long), _Alignof(long));
  def(MPI_UNSIGNED_LONG, sizeof(long), _Alignof(long));
  def(MPI_LONG_LONG_INT, sizeof(long long), _Alignof(long long));
  def(MPI_UNSIGNED_LONG_LONG, sizeof(long long), _Alignof(long long));
  def(MPI_FLOAT, sizeof(float), _Alignof(float));
  def(MPI_DOUBLE, sizeof(double), _Alignof(double));
  def(MPI_LONG_DOUBLE, sizeof(long double), _Alignof(long double));
  def(MPI_INT8_T, 1, 1);
  def(MPI_INT16_T, 2, 2);
  def(MPI_INT32_T, 4, 4);
  def(MPI_INT64_T, 8, 8);
  def(MPI_UINT8_T, 1, 1);
  def(MPI_UINT16_T, 2, 2);
  def(MPI_UINT32_T, 4, 4);
  def(MPI_UINT64_T, 8, 8);
  def(MPI_C_BOOL, sizeof(_Bool), 1);
  def(MPI_C_FLOAT_COMPLEX, sizeof(float _Complex), _Alignof(float _Complex));
  def(MPI_C_DOUBLE_COMPLEX, sizeof(double _Complex), _Alignof(double _Complex));
  def(MPI_C_LONG_DOUBLE_COMPLEX, sizeof(long double _Complex), _Alignof(long double _Complex));
  def(MPI_AINT, sizeof(MPI_Aint), _Alignof(MPI_Aint));
  def(MPI_OFFSET, sizeof(MPI_Offset), _Alignof(MPI_Offset));
  def(MPI_COUNT, sizeof(MPI_Count), _Alignof(MPI_Count));
  def(MPI_PACKED, 1, 1);
  DEF_PAIR(MPI_FLOAT_INT, float);
  DEF_PAIR(MPI_DOUBLE_INT, double);
  DEF_PAIR(MPI_LONG_INT, long);
  DEF_PAIR(MPI_2INT, int);
  DEF_PAIR(MPI_SHORT_INT, short);
  DEF_PAIR(MPI_LONG_DOUBLE_INT, long double);
  def(MPI_LB, 0, 1); /* markers: no data; build() reads their displacements as bounds */
  def(MPI_UB, 0, 1);
}

/* What MPI_Type_get_name gives a predefined type. */
static const char *const predefined_names[NPREDEFINED] = {
  [MPI_CHAR] = "MPI_CHAR", [MPI_SIGNED_CHAR] = "MPI_SIGNED_CHAR", [MPI_UNSIGNED_CHAR] = "MPI_UNSIGNED_CHAR",
  [MPI_BYTE] = "MPI_BYTE", [MPI_WCHAR] = "MPI_WCHAR", [MPI_SHORT] = "MPI_SHORT",
  [MPI_UNSIGNED_SHORT] = "MPI_UNSIGNED_SHORT", [MPI_INT] = "MPI_INT", [MPI_UNSIGNED] = "MPI_UNSIGNED",
  [MPI_LONG] = "MPI_LONG", [MPI_UNSIGNED_LONG] = "MPI_UNSIGNED_LONG", [MPI_LONG_LONG_INT] = "MPI_LONG_LONG_INT",
  [MPI_UNSIGNED_LONG_LONG] = "MPI_UNSIGNED_LONG_LONG", [MPI_FLOAT] = "MPI_FLOAT", [MPI_DOUBLE] = "MPI_DOUBLE",
  [MPI_LONG_DOUBLE] = "MPI_LONG_DOUBLE", [MPI_INT8_T] = "MPI_INT8_T", [MPI_INT16_T] = "MPI_INT16_T",
  [MPI_INT32_T] = "MPI_INT32_T", [MPI_INT64_T] = "MPI_INT64_T", [MPI_UINT8_T] = "MPI_UINT8_T",
  [MPI_UINT16_T] = "MPI_UINT16_T", [MPI_UINT32_T] = "MPI_UINT32_T", [MPI_UINT64_T] = "MPI_UINT64_T",
  [MPI_C_BOOL] = "MPI_C_BOOL", [MPI_C_FLOAT_COMPLEX] = "MPI_C_FLOAT_COMPLEX",
  [MPI_C_DOUBLE_COMPLEX] = "MPI_C_DOUBLE_COMPLEX", [MPI_C_LONG_DOUBLE_COMPLEX] = "MPI_C_LONG_DOUBLE_COMPLEX",
  [MPI_AINT] = "MPI_AINT", [MPI_OFFSET] = "MPI_OFFSET", [MPI_COUNT] = "MPI_COUNT", [MPI_PACKED] = "MPI_PACKED",
  [MPI_FLOAT_INT] = "MPI_FLOAT_INT", [MPI_DOUBLE_INT] = "MPI_DOUBLE_INT", [MPI_LONG_INT] = "MPI_LONG_INT",
  [MPI_2INT] = "MPI_2INT", [MPI_SHORT_INT] = "MPI_SHORT_INT", [MPI_LONG_DOUBLE_INT] = "MPI_LONG_DOUBLE_INT",
  [MPI_LB] = "MPI_LB", [MPI_UB] = "MPI_UB",
};

fmpi_type *fmpi_type_get(MPI_Datatype h)
{
  if (h > 0 && h < NPREDEFINED)
    return &predefined[h];
  if (h >= FIRST_DERIVED_TYPE)
    return fmpi_table_get(&fmpi_types, h - FIRST_DERIVED_TYPE + 1);
  return NULL;
}

void fmpi_pack(const fmpi_type *t, const void *buf, int count, uint8_t *dst)
{
  const uint8_t *src = buf;
  if (t->contig) {
    memcpy(dst, src + t->lb, (size_t)count * t->size);
    return;
  }
  for (int i = 0; i < count; i++)
    for (int b = 0; b < t->nblocks; b++) {
      memcpy(dst, src + (MPI_Aint)i * t->extent + t->blocks[b].off, t->blocks[b].len);
      dst += t->blocks[b].len;
    }
}

void fmpi_unpack(const fmpi_type *t, const uint8_t *src, size_t bytes, void *buf)
{
  uint8_t *out = buf;
  if (t->contig) {
    memcpy(out + t->lb, src, bytes);
    return;
  }
  for (MPI_Aint i = 0; bytes > 0; i++)
    for (int b = 0; b < t->nblocks && bytes > 0; b++) {
      size_t n = t->blocks[b].len < bytes ? t->blocks[b].len : bytes;
      memcpy(out + i * t->extent + t->blocks[b].off, src, n);
      src += n;
      bytes -= n;
    }
}

static void add_block(fmpi_type *t, int *cap, MPI_Aint off, size_t len)
{
  if (len == 0)
    return;
  if (t->nblocks > 0) {
    struct fmpi_block *last = &t->blocks[t->nblocks - 1];
    if (last->off + (MPI_Aint)last->len == off) {
      last->len += len;
      return;
    }
  }
  if (t->nblocks == *cap) {
    *cap = *cap ? *cap * 2 : 8;
    t->blocks = realloc(t->blocks, (size_t)*cap * sizeof *t->blocks);
    if (t->blocks == NULL)
      fmpi_fatal("out of memory");
  }
  t->blocks[t->nblocks].off = off;
  t->blocks[t->nblocks++].len = len;
}

static void finish_type(fmpi_type *t)
{
  t->contig = t->lb == 0 && t->extent == (MPI_Aint)t->size &&
              (t->nblocks == 0 || (t->nblocks == 1 && t->blocks[0].off == 0));
  if (t->nblocks) {
    t->true_lb = t->blocks[0].off;
    t->true_ub = t->blocks[0].off;
    for (int b = 0; b < t->nblocks; b++) {
      if (t->blocks[b].off < t->true_lb)
        t->true_lb = t->blocks[b].off;
      if (t->blocks[b].off + (MPI_Aint)t->blocks[b].len > t->true_ub)
        t->true_ub = t->blocks[b].off + (MPI_Aint)t->blocks[b].len;
    }
  }
}

MPI_Datatype fmpi_type_register(fmpi_type *t)
{
  t->refs = 1;
  return fmpi_table_add(&fmpi_types, t) - 1 + FIRST_DERIVED_TYPE;
}

static int register_type(fmpi_type *t, MPI_Datatype *out)
{
  *out = fmpi_type_register(t);
  return MPI_SUCCESS;
}

/* Drops one reference to a derived type (its handle's, or a record's in type-contents.c). The last one
 * deletes its attributes (their callbacks see the type still valid) and frees it, and with it its own
 * references to the types it was made of. An error of a delete callback leaves the type as it was. */
int fmpi_type_release(MPI_Datatype h)
{
  fmpi_type *t = fmpi_type_get(h);
  if (t->refs > 1) {
    t->refs--;
    return MPI_SUCCESS;
  }
  int rv = fmpi_attr_delete_all(&t->attrs, h, FMPI_ATTR_TYPE);
  if (rv != MPI_SUCCESS)
    return rv;
  fmpi_table_del(&fmpi_types, h - FIRST_DERIVED_TYPE + 1);
  fmpi_type_contents_free(t->contents);
  free(t->blocks);
  free(t);
  return MPI_SUCCESS;
}

/* Records an indexed or struct constructor: count, the block lengths (one for the _block forms), then
 * the displacements, as integers (idisp) or addresses (adisp). */
static void record_blocks(MPI_Datatype made, int combiner, int count, const int *bl, const int *idisp,
                          const MPI_Aint *adisp, const MPI_Datatype *types, int ntypes)
{
  bool one_bl = combiner == MPI_COMBINER_INDEXED_BLOCK || combiner == MPI_COMBINER_HINDEXED_BLOCK;
  int nbl = one_bl ? 1 : count, ni = 1 + nbl + (idisp ? count : 0);
  int *ints = malloc(sizeof(int) * (size_t)ni);
  if (ints == NULL)
    fmpi_fatal("out of memory");
  ints[0] = count;
  memcpy(ints + 1, bl, sizeof(int) * (size_t)nbl);
  if (idisp)
    memcpy(ints + 1 + nbl, idisp, sizeof(int) * (size_t)count);
  fmpi_type_record(made, combiner, ni, ints, adisp ? count : 0, adisp, ntypes, types);
  free(ints);
}

/* The general constructor: count blocks of bl[i] elements of types[i] (or
 * types[0] when one_type) at byte displacement disp[i]. An MPI_LB or MPI_UB
 * entry (MPI-1) sets the lower or upper bound at its displacement, in place
 * of the one the data gives and without alignment padding. (MPI-1 also
 * carried markers into types built from this one; here a built type's bounds
 * are plain bounds, as a resized type's are.) */
static int build(int count, const int *bl, const MPI_Aint *disp, const MPI_Datatype *types, bool one_type,
                 bool is_struct, MPI_Datatype *out, const char *name)
{
  if (count < 0)
    return fmpi_error(NULL, MPI_ERR_COUNT, name);
  fmpi_type *t = calloc(1, sizeof *t);
  if (t == NULL)
    fmpi_fatal("out of memory");
  int cap = 0;
  bool first = true;
  MPI_Aint lb = 0, ub = 0, marked_lb = 0, marked_ub = 0;
  bool has_lb = false, has_ub = false;
  int align = 1;
  t->basic = -1;
  for (int i = 0; i < count; i++) {
    MPI_Datatype type = one_type ? types[0] : types[i];
    if (is_struct && (type == MPI_LB || type == MPI_UB)) {
      bool is_lb = type == MPI_LB;
      MPI_Aint *m = is_lb ? &marked_lb : &marked_ub;
      bool *has = is_lb ? &has_lb : &has_ub;
      if (!*has || (is_lb ? disp[i] < *m : disp[i] > *m))
        *m = disp[i];
      *has = true;
      continue;
    }
    fmpi_type *o = fmpi_type_get(type);
    if (o == NULL) {
      free(t->blocks);
      free(t);
      return fmpi_error(NULL, MPI_ERR_TYPE, name);
    }
    if (bl[i] < 0) {
      free(t->blocks);
      free(t);
      return fmpi_error(NULL, MPI_ERR_COUNT, name);
    }
    if (t->basic == -1)
      t->basic = o->basic;
    else if (t->basic != o->basic)
      t->basic = 0;
    if (o->align > align)
      align = o->align;
    for (int k = 0; k < bl[i]; k++)
      for (int b = 0; b < o->nblocks; b++)
        add_block(t, &cap, disp[i] + (MPI_Aint)k * o->extent + o->blocks[b].off, o->blocks[b].len);
    t->size += (size_t)bl[i] * o->size;
    MPI_Aint l = disp[i] + o->lb, u = disp[i] + o->lb + (MPI_Aint)bl[i] * o->extent;
    if (bl[i] > 0 || is_struct) {
      if (first || l < lb)
        lb = l;
      if (first || u > ub)
        ub = u;
      first = false;
    }
  }
  if (t->basic == -1)
    t->basic = 0;
  t->align = align;
  t->lb = has_lb ? marked_lb : lb;
  t->extent = (has_ub ? marked_ub : ub) - t->lb;
  if (is_struct && !has_ub && t->extent % align)
    t->extent += align - t->extent % align;
  finish_type(t);
  return register_type(t, out);
}

int PMPI_Type_contiguous(int count, MPI_Datatype oldtype, MPI_Datatype *newtype)
{
  MPI_Aint zero = 0;
  int rv = build(count < 0 ? -1 : 1, &count, &zero, &oldtype, true, false, newtype, "MPI_Type_contiguous");
  if (rv == MPI_SUCCESS)
    fmpi_type_record(*newtype, MPI_COMBINER_CONTIGUOUS, 1, &count, 0, NULL, 1, &oldtype);
  return rv;
}

int PMPI_Type_create_hvector(int count, int blocklength, MPI_Aint stride, MPI_Datatype oldtype, MPI_Datatype *newtype)
{
  if (count < 0)
    return fmpi_error(NULL, MPI_ERR_COUNT, "MPI_Type_create_hvector");
  int *bl = malloc(sizeof(int) * (size_t)(count + 1));
  MPI_Aint *d = malloc(sizeof(MPI_Aint) * (size_t)(count + 1));
  for (int i = 0; i < count; i++) {
    bl[i] = blocklength;
    d[i] = (MPI_Aint)i * stride;
  }
  int rv = build(count, bl, d, &oldtype, true, false, newtype, "MPI_Type_vector");
  free(bl);
  free(d);
  if (rv == MPI_SUCCESS)
    fmpi_type_record(*newtype, MPI_COMBINER_HVECTOR, 2, (int[]){ count, blocklength }, 1, &stride, 1, &oldtype);
  return rv;
}

int PMPI_Type_vector(int count, int blocklength, int stride, MPI_Datatype oldtype, MPI_Datatype *newtype)
{
  fmpi_type *o = fmpi_type_get(oldtype);
  if (o == NULL)
    return fmpi_error(NULL, MPI_ERR_TYPE, "MPI_Type_vector");
  int rv = PMPI_Type_create_hvector(count, blocklength, (MPI_Aint)stride * o->extent, oldtype, newtype);
  if (rv == MPI_SUCCESS)
    fmpi_type_record(*newtype, MPI_COMBINER_VECTOR, 3, (int[]){ count, blocklength, stride }, 0, NULL, 1, &oldtype);
  return rv;
}

int PMPI_Type_create_hindexed(int count, const int blocklengths[], const MPI_Aint displacements[],
                              MPI_Datatype oldtype, MPI_Datatype *newtype)
{
  int rv = build(count, blocklengths, displacements, &oldtype, true, false, newtype, "MPI_Type_create_hindexed");
  if (rv == MPI_SUCCESS)
    record_blocks(*newtype, MPI_COMBINER_HINDEXED, count, blocklengths, NULL, displacements, &oldtype, 1);
  return rv;
}

int PMPI_Type_indexed(int count, const int blocklengths[], const int displacements[], MPI_Datatype oldtype,
                      MPI_Datatype *newtype)
{
  fmpi_type *o = fmpi_type_get(oldtype);
  if (o == NULL)
    return fmpi_error(NULL, MPI_ERR_TYPE, "MPI_Type_indexed");
  if (count < 0)
    return fmpi_error(NULL, MPI_ERR_COUNT, "MPI_Type_indexed");
  MPI_Aint *d = malloc(sizeof(MPI_Aint) * (size_t)(count + 1));
  for (int i = 0; i < count; i++)
    d[i] = (MPI_Aint)displacements[i] * o->extent;
  int rv = build(count, blocklengths, d, &oldtype, true, false, newtype, "MPI_Type_indexed");
  free(d);
  if (rv == MPI_SUCCESS)
    record_blocks(*newtype, MPI_COMBINER_INDEXED, count, blocklengths, displacements, NULL, &oldtype, 1);
  return rv;
}

int PMPI_Type_create_struct(int count, const int blocklengths[], const MPI_Aint displacements[],
                            const MPI_Datatype types[], MPI_Datatype *newtype)
{
  int rv = build(count, blocklengths, displacements, types, false, true, newtype, "MPI_Type_create_struct");
  if (rv == MPI_SUCCESS)
    record_blocks(*newtype, MPI_COMBINER_STRUCT, count, blocklengths, NULL, displacements, types, count);
  return rv;
}

int PMPI_Type_create_resized(MPI_Datatype oldtype, MPI_Aint lb, MPI_Aint extent, MPI_Datatype *newtype)
{
  int one = 1;
  MPI_Aint zero = 0;
  int rv = build(1, &one, &zero, &oldtype, true, false, newtype, "MPI_Type_create_resized");
  if (rv == MPI_SUCCESS) {
    fmpi_type *t = fmpi_type_get(*newtype);
    t->lb = lb;
    t->extent = extent;
    finish_type(t);
    fmpi_type_record(*newtype, MPI_COMBINER_RESIZED, 0, NULL, 2, (MPI_Aint[]){ lb, extent }, 1, &oldtype);
  }
  return rv;
}

int PMPI_Type_create_hindexed_block(int count, int blocklength, const MPI_Aint displacements[], MPI_Datatype oldtype,
                                    MPI_Datatype *newtype)
{
  if (count < 0)
    return fmpi_error(NULL, MPI_ERR_COUNT, "MPI_Type_create_hindexed_block");
  int *bl = malloc(sizeof(int) * (size_t)(count + 1));
  if (bl == NULL)
    fmpi_fatal("out of memory");
  for (int i = 0; i < count; i++)
    bl[i] = blocklength;
  int rv = build(count, bl, displacements, &oldtype, true, false, newtype, "MPI_Type_create_hindexed_block");
  free(bl);
  if (rv == MPI_SUCCESS)
    record_blocks(*newtype, MPI_COMBINER_HINDEXED_BLOCK, count, &blocklength, NULL, displacements, &oldtype, 1);
  return rv;
}

int PMPI_Type_create_indexed_block(int count, int blocklength, const int displacements[], MPI_Datatype oldtype,
                                   MPI_Datatype *newtype)
{
  fmpi_type *o = fmpi_type_get(oldtype);
  if (o == NULL)
    return fmpi_error(NULL, MPI_ERR_TYPE, "MPI_Type_create_indexed_block");
  if (count < 0)
    return fmpi_error(NULL, MPI_ERR_COUNT, "MPI_Type_create_indexed_block");
  MPI_Aint *d = malloc(sizeof(MPI_Aint) * (size_t)(count + 1));
  if (d == NULL)
    fmpi_fatal("out of memory");
  for (int i = 0; i < count; i++)
    d[i] = (MPI_Aint)displacements[i] * o->extent;
  int rv = PMPI_Type_create_hindexed_block(count, blocklength, d, oldtype, newtype);
  free(d);
  if (rv == MPI_SUCCESS)
    record_blocks(*newtype, MPI_COMBINER_INDEXED_BLOCK, count, &blocklength, displacements, NULL, &oldtype, 1);
  return rv;
}

/* An n-dimensional block of an n-dimensional array: one block of
 * subsizes[last] elements per row of the sub-block (rows in the array's
 * order), the extent that of the whole array. */
int PMPI_Type_create_subarray(int ndims, const int sizes[], const int subsizes[], const int starts[], int order,
                              MPI_Datatype oldtype, MPI_Datatype *newtype)
{
  const char *name = "MPI_Type_create_subarray";
  fmpi_type *o = fmpi_type_get(oldtype);
  if (o == NULL)
    return fmpi_error(NULL, MPI_ERR_TYPE, name);
  if (ndims <= 0 || (order != MPI_ORDER_C && order != MPI_ORDER_FORTRAN))
    return fmpi_error(NULL, MPI_ERR_ARG, name);
  for (int i = 0; i < ndims; i++)
    if (sizes[i] < 1 || subsizes[i] < 1 || subsizes[i] > sizes[i] || starts[i] < 0 || starts[i] > sizes[i] - subsizes[i])
      return fmpi_error(NULL, MPI_ERR_ARG, name);
  /* dims[0] varies slowest: C order as given, Fortran order reversed */
  int *size = malloc(sizeof(int) * 3 * (size_t)ndims);
  if (size == NULL)
    fmpi_fatal("out of memory");
  int *sub = size + ndims, *start = sub + ndims;
  for (int i = 0; i < ndims; i++) {
    int k = order == MPI_ORDER_C ? i : ndims - 1 - i;
    size[i] = sizes[k];
    sub[i] = subsizes[k];
    start[i] = starts[k];
  }
  long long rows = 1, whole = 1;
  for (int i = 0; i < ndims; i++) {
    whole *= size[i];
    if (i < ndims - 1)
      rows *= sub[i];
  }
  int *bl = malloc(sizeof(int) * (size_t)rows);
  MPI_Aint *disp = malloc(sizeof(MPI_Aint) * (size_t)rows);
  int *idx = calloc((size_t)ndims, sizeof(int));
  if (bl == NULL || disp == NULL || idx == NULL)
    fmpi_fatal("out of memory");
  for (long long r = 0; r < rows; r++) {
    long long elem = 0;
    for (int i = 0; i < ndims; i++)
      elem = elem * size[i] + start[i] + (i < ndims - 1 ? idx[i] : 0);
    bl[r] = sub[ndims - 1];
    disp[r] = (MPI_Aint)elem * o->extent;
    for (int i = ndims - 2; i >= 0 && ++idx[i] == sub[i]; i--)
      idx[i] = 0; /* next row: odometer over the outer dimensions */
  }
  MPI_Datatype rows_type;
  int rv = build((int)rows, bl, disp, &oldtype, true, false, &rows_type, name);
  if (rv == MPI_SUCCESS) {
    record_blocks(rows_type, MPI_COMBINER_HINDEXED, (int)rows, bl, NULL, disp, &oldtype, 1);
    rv = PMPI_Type_create_resized(rows_type, 0, (MPI_Aint)whole * o->extent, newtype);
    if (rv == MPI_SUCCESS) {
      int *ints = malloc(sizeof(int) * (size_t)(3 * ndims + 2));
      if (ints == NULL)
        fmpi_fatal("out of memory");
      ints[0] = ndims;
      memcpy(ints + 1, sizes, sizeof(int) * (size_t)ndims);
      memcpy(ints + 1 + ndims, subsizes, sizeof(int) * (size_t)ndims);
      memcpy(ints + 1 + 2 * ndims, starts, sizeof(int) * (size_t)ndims);
      ints[1 + 3 * ndims] = order;
      fmpi_type_record(*newtype, MPI_COMBINER_SUBARRAY, 3 * ndims + 2, ints, 0, NULL, 1, &oldtype);
      fmpi_type_record_impl(*newtype, rows_type); /* the element order, for MPI_Pack_external */
      free(ints);
    }
    PMPI_Type_free(&rows_type);
  }
  free(idx);
  free(disp);
  free(bl);
  free(size);
  return rv;
}

/* The indices of a dimension of gsize elements that process coordinate p of
 * psize owns under distrib/darg, ascending, into out; returns how many. */
static int owned_indices(int gsize, int distrib, int darg, int psize, int p, int *out)
{
  int n = 0;
  if (distrib == MPI_DISTRIBUTE_NONE) {
    for (int i = 0; i < gsize; i++)
      out[n++] = i;
  } else if (distrib == MPI_DISTRIBUTE_BLOCK) {
    int b = darg == MPI_DISTRIBUTE_DFLT_DARG ? (gsize + psize - 1) / psize : darg;
    for (int i = p * b; i < (p + 1) * b && i < gsize; i++)
      out[n++] = i;
  } else { /* cyclic: blocks of b dealt round the processes */
    int b = darg == MPI_DISTRIBUTE_DFLT_DARG ? 1 : darg;
    for (int i = 0; i < gsize; i++)
      if ((i / b) % psize == p)
        out[n++] = i;
  }
  return n;
}

/* This process's part of an array distributed block, cyclic or not at all
 * along each dimension over a process grid (row-major, whatever the array's
 * order): its elements in array order, the extent the whole array's. */
int PMPI_Type_create_darray(int size, int rank, int ndims, const int gsizes[], const int distribs[],
                            const int dargs[], const int psizes[], int order, MPI_Datatype oldtype,
                            MPI_Datatype *newtype)
{
  const char *name = "MPI_Type_create_darray";
  fmpi_type *o = fmpi_type_get(oldtype);
  if (o == NULL)
    return fmpi_error(NULL, MPI_ERR_TYPE, name);
  long long procs = 1, whole = 1;
  if (ndims <= 0 || (order != MPI_ORDER_C && order != MPI_ORDER_FORTRAN))
    return fmpi_error(NULL, MPI_ERR_ARG, name);
  for (int i = 0; i < ndims; i++) {
    int d = distribs[i], a = dargs[i];
    bool ok = gsizes[i] >= 1 && psizes[i] >= 1 &&
              (d == MPI_DISTRIBUTE_NONE ? psizes[i] == 1
               : d == MPI_DISTRIBUTE_BLOCK ? a == MPI_DISTRIBUTE_DFLT_DARG || (a > 0 && (long long)a * psizes[i] >= gsizes[i])
               : d == MPI_DISTRIBUTE_CYCLIC ? a == MPI_DISTRIBUTE_DFLT_DARG || a > 0
                                           : false);
    if (!ok)
      return fmpi_error(NULL, MPI_ERR_ARG, name);
    procs *= psizes[i];
    whole *= gsizes[i];
  }
  if (procs != size || rank < 0 || rank >= size)
    return fmpi_error(NULL, MPI_ERR_ARG, name);
  /* per dimension (dims[0] slowest: C order as given, Fortran order reversed) the owned indices */
  int **own = calloc((size_t)ndims, sizeof *own), *count = calloc((size_t)ndims, sizeof(int));
  int *gs = calloc((size_t)ndims, sizeof(int)), *idx = calloc((size_t)ndims, sizeof(int));
  if (own == NULL || count == NULL || gs == NULL || idx == NULL)
    fmpi_fatal("out of memory");
  long long elems = 1;
  for (int i = ndims - 1, r = rank; i >= 0; i--) {
    int p = r % psizes[i]; /* the process grid is row-major */
    r /= psizes[i];
    int k = order == MPI_ORDER_C ? i : ndims - 1 - i;
    if ((own[k] = malloc(sizeof(int) * (size_t)gsizes[i])) == NULL)
      fmpi_fatal("out of memory");
    count[k] = owned_indices(gsizes[i], distribs[i], dargs[i], psizes[i], p, own[k]);
    gs[k] = gsizes[i];
    elems *= count[k];
  }
  /* the owned elements in array order, consecutive ones merged into runs */
  int *bl = malloc(sizeof(int) * (size_t)(elems + 1)), runs = 0;
  MPI_Aint *disp = malloc(sizeof(MPI_Aint) * (size_t)(elems + 1));
  if (bl == NULL || disp == NULL)
    fmpi_fatal("out of memory");
  for (long long e = 0; e < elems; e++) {
    long long at = 0;
    for (int i = 0; i < ndims; i++)
      at = at * gs[i] + own[i][idx[i]];
    if (runs > 0 && disp[runs - 1] + (MPI_Aint)bl[runs - 1] * o->extent == (MPI_Aint)at * o->extent)
      bl[runs - 1]++;
    else {
      bl[runs] = 1;
      disp[runs++] = (MPI_Aint)at * o->extent;
    }
    for (int i = ndims - 1; i >= 0 && ++idx[i] == count[i]; i--)
      idx[i] = 0;
  }
  MPI_Datatype parts;
  int rv = build(runs, bl, disp, &oldtype, true, false, &parts, name);
  if (rv == MPI_SUCCESS) {
    record_blocks(parts, MPI_COMBINER_HINDEXED, runs, bl, NULL, disp, &oldtype, 1);
    rv = PMPI_Type_create_resized(parts, 0, (MPI_Aint)whole * o->extent, newtype);
    if (rv == MPI_SUCCESS) {
      int *ints = malloc(sizeof(int) * (size_t)(4 * ndims + 4));
      if (ints == NULL)
        fmpi_fatal("out of memory");
      ints[0] = size, ints[1] = rank, ints[2] = ndims;
      memcpy(ints + 3, gsizes, sizeof(int) * (size_t)ndims);
      memcpy(ints + 3 + ndims, distribs, sizeof(int) * (size_t)ndims);
      memcpy(ints + 3 + 2 * ndims, dargs, sizeof(int) * (size_t)ndims);
      memcpy(ints + 3 + 3 * ndims, psizes, sizeof(int) * (size_t)ndims);
      ints[3 + 4 * ndims] = order;
      fmpi_type_record(*newtype, MPI_COMBINER_DARRAY, 4 * ndims + 4, ints, 0, NULL, 1, &oldtype);
      fmpi_type_record_impl(*newtype, parts); /* the element order, for MPI_Pack_external */
      free(ints);
    }
    PMPI_Type_free(&parts);
  }
  for (int i = 0; i < ndims; i++)
    free(own[i]);
  free(own), free(count), free(gs), free(idx), free(bl), free(disp);
  return rv;
}

int PMPI_Type_dup(MPI_Datatype oldtype, MPI_Datatype *newtype)
{
  fmpi_type *o = fmpi_type_get(oldtype);
  if (o == NULL)
    return fmpi_error(NULL, MPI_ERR_TYPE, "MPI_Type_dup");
  int rv = PMPI_Type_create_resized(oldtype, o->lb, o->extent, newtype);
  if (rv == MPI_SUCCESS) {
    fmpi_type *t = fmpi_type_get(*newtype);
    t->align = o->align;
    t->committed = o->committed;
    fmpi_type_record(*newtype, MPI_COMBINER_DUP, 0, NULL, 0, NULL, 1, &oldtype);
    /* and the attributes their copy callbacks keep */
    if ((rv = fmpi_attr_copy_all(&o->attrs, oldtype, FMPI_ATTR_TYPE, &t->attrs)) != MPI_SUCCESS) {
      fmpi_attr_delete_all(&t->attrs, *newtype, FMPI_ATTR_TYPE);
      PMPI_Type_free(newtype);
      return fmpi_error(NULL, rv, "MPI_Type_dup");
    }
  }
  return rv;
}

/* ---- attributes (the engine is attr.c's) ---- */

int PMPI_Type_create_keyval(MPI_Type_copy_attr_function *type_copy_attr_fn,
                            MPI_Type_delete_attr_function *type_delete_attr_fn, int *type_keyval, void *extra_state)
{
  return fmpi_keyval_create(FMPI_ATTR_TYPE, (void *)type_copy_attr_fn, (void *)type_delete_attr_fn, type_keyval,
                            extra_state);
}

int PMPI_Type_free_keyval(int *type_keyval)
{
  int rv = fmpi_keyval_free(FMPI_ATTR_TYPE, type_keyval);
  return rv == MPI_SUCCESS ? rv : fmpi_error(NULL, rv, "MPI_Type_free_keyval");
}

int PMPI_Type_set_attr(MPI_Datatype datatype, int type_keyval, void *attribute_val)
{
  fmpi_type *t = fmpi_type_get(datatype);
  int rv = t == NULL ? MPI_ERR_TYPE : fmpi_attr_set(&t->attrs, datatype, FMPI_ATTR_TYPE, type_keyval, attribute_val);
  return rv == MPI_SUCCESS ? rv : fmpi_error(NULL, rv, "MPI_Type_set_attr");
}

int PMPI_Type_get_attr(MPI_Datatype datatype, int type_keyval, void *attribute_val, int *flag)
{
  fmpi_type *t = fmpi_type_get(datatype);
  if (t == NULL)
    return fmpi_error(NULL, MPI_ERR_TYPE, "MPI_Type_get_attr");
  void *v;
  *flag = fmpi_attr_find(&t->attrs, type_keyval, &v);
  if (*flag)
    *(void **)attribute_val = v;
  return MPI_SUCCESS;
}

int PMPI_Type_delete_attr(MPI_Datatype datatype, int type_keyval)
{
  fmpi_type *t = fmpi_type_get(datatype);
  int rv = t == NULL ? MPI_ERR_TYPE : fmpi_attr_delete(&t->attrs, datatype, FMPI_ATTR_TYPE, type_keyval);
  return rv == MPI_SUCCESS ? rv : fmpi_error(NULL, rv, "MPI_Type_delete_attr");
}

int PMPI_Type_commit(MPI_Datatype *datatype)
{
  fmpi_type *t = fmpi_type_get(*datatype);
  if (t == NULL)
    return fmpi_error(NULL, MPI_ERR_TYPE, "MPI_Type_commit");
  t->committed = true;
  return MPI_SUCCESS;
}

int PMPI_Type_free(MPI_Datatype *datatype)
{
  fmpi_type *t = fmpi_type_get(*datatype);
  if (t == NULL || t->predefined)
    return fmpi_error(NULL, MPI_ERR_TYPE, "MPI_Type_free");
  int rv = fmpi_type_release(*datatype); /* a type others were made of stays while they do */
  if (rv != MPI_SUCCESS)
    return fmpi_error(NULL, rv, "MPI_Type_free");
  *datatype = MPI_DATATYPE_NULL;
  return MPI_SUCCESS;
}

/* Size, bounds or true bounds of a type, for the calls and their _x twins. */
static int type_query(MPI_Datatype datatype, MPI_Count *a, MPI_Count *b, char what, const char *name)
{
  fmpi_type *t = fmpi_type_get(datatype);
  if (t == NULL)
    return fmpi_error(NULL, MPI_ERR_TYPE, name);
  *a = what == 's' ? (MPI_Count)t->size : what == 'e' ? t->lb : t->true_lb;
  *b = what == 's' ? 0 : what == 'e' ? t->extent : t->true_ub - t->true_lb;
  return MPI_SUCCESS;
}

int PMPI_Type_size(MPI_Datatype datatype, int *size)
{
  MPI_Count n = 0, unused;
  int rv = type_query(datatype, &n, &unused, 's', "MPI_Type_size");
  if (rv == MPI_SUCCESS)
    *size = (int)n;
  return rv;
}

int PMPI_Type_get_extent(MPI_Datatype datatype, MPI_Aint *lb, MPI_Aint *extent)
{
  MPI_Count l = 0, e = 0;
  int rv = type_query(datatype, &l, &e, 'e', "MPI_Type_get_extent");
  if (rv == MPI_SUCCESS)
    *lb = (MPI_Aint)l, *extent = (MPI_Aint)e;
  return rv;
}

int PMPI_Type_get_true_extent(MPI_Datatype datatype, MPI_Aint *true_lb, MPI_Aint *true_extent)
{
  MPI_Count l = 0, e = 0;
  int rv = type_query(datatype, &l, &e, 't', "MPI_Type_get_true_extent");
  if (rv == MPI_SUCCESS)
    *true_lb = (MPI_Aint)l, *true_extent = (MPI_Aint)e;
  return rv;
}

int PMPI_Get_address(const void *location, MPI_Aint *address)
{
  *address = (MPI_Aint)location;
  return MPI_SUCCESS;
}

int PMPI_Type_size_x(MPI_Datatype datatype, MPI_Count *size)
{
  MPI_Count unused;
  return type_query(datatype, size, &unused, 's', "MPI_Type_size_x");
}

int PMPI_Type_get_extent_x(MPI_Datatype datatype, MPI_Count *lb, MPI_Count *extent)
{
  return type_query(datatype, lb, extent, 'e', "MPI_Type_get_extent_x");
}

int PMPI_Type_get_true_extent_x(MPI_Datatype datatype, MPI_Count *true_lb, MPI_Count *true_extent)
{
  return type_query(datatype, true_lb, true_extent, 't', "MPI_Type_get_true_extent_x");
}

int PMPI_Type_set_name(MPI_Datatype datatype, const char *type_name)
{
  fmpi_type *t = fmpi_type_get(datatype);
  if (t == NULL || type_name == NULL)
    return fmpi_error(NULL, t == NULL ? MPI_ERR_TYPE : MPI_ERR_ARG, "MPI_Type_set_name");
  snprintf(t->name, sizeof t->name, "%s", type_name);
  return MPI_SUCCESS;
}

int PMPI_Type_get_name(MPI_Datatype datatype, char *type_name, int *resultlen)
{
  fmpi_type *t = fmpi_type_get(datatype);
  if (t == NULL)
    return fmpi_error(NULL, MPI_ERR_TYPE, "MPI_Type_get_name");
  const char *n = t->name[0] || !t->predefined ? t->name : predefined_names[datatype];
  snprintf(type_name, MPI_MAX_OBJECT_NAME, "%s", n ? n : "");
  *resultlen = (int)strlen(type_name);
  return MPI_SUCCESS;
}

MPI_Aint PMPI_Aint_add(MPI_Aint base, MPI_Aint disp)
{
  return (MPI_Aint)((uintptr_t)base + (uintptr_t)disp);
}

MPI_Aint PMPI_Aint_diff(MPI_Aint addr1, MPI_Aint addr2)
{
  return (MPI_Aint)((uintptr_t)addr1 - (uintptr_t)addr2);
}
