/* Generic proto3 codec; see fmpi-pb.h. */
#include "fmpi-pb.h"

#include <stdlib.h>
#include <string.h>

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static int buf_reserve(fmpi_pb_buf *b, size_t more)
{
  if (b->len + more <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap * 2 : 64;
  while (cap < b->len + more)
    cap *= 2;
  uint8_t *p = realloc(b->data, cap);
  if (p == NULL)
    return -1;
  b->data = p;
  b->cap = cap;
  return 0;
}

static int put_varint(fmpi_pb_buf *b, uint64_t v)
{
  if (buf_reserve(b, 10) != 0)
    return -1;
  do {
    uint8_t byte = v & 0x7f;
    v >>= 7;
    b->data[b->len++] = byte | (v ? 0x80 : 0);
  } while (v);
  return 0;
}

static int put_bytes(fmpi_pb_buf *b, const void *p, size_t n)
{
  if (put_varint(b, n) != 0 || buf_reserve(b, n) != 0)
    return -1;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

static int put_tag(fmpi_pb_buf *b, uint32_t number, int wt)
{
  return put_varint(b, ((uint64_t)number << 3) | (uint64_t)wt);
}

/* Encodes one value of a field (scalars: only when non-default, unless forced). */
static int encode_value(const fmpi_pb_field *f, const void *p, fmpi_pb_buf *out, int force)
{
  uint64_t v = 0;
  switch (f->kind) {
  case FMPI_PB_UINT32: v = *(const uint32_t *)p; break;
  case FMPI_PB_UINT64: v = *(const uint64_t *)p; break;
  case FMPI_PB_INT32: v = (uint64_t)(int64_t)*(const int32_t *)p; break;
  case FMPI_PB_INT64: v = (uint64_t)*(const int64_t *)p; break;
  case FMPI_PB_BOOL: v = *(const bool *)p ? 1 : 0; break;
  case FMPI_PB_DOUBLE: {
    double d = *(const double *)p;
    if (d == 0 && !force)
      return 0;
    if (put_tag(out, f->number, WT_I64) != 0 || buf_reserve(out, 8) != 0)
      return -1;
    memcpy(out->data + out->len, &d, 8); /* little-endian host */
    out->len += 8;
    return 0;
  }
  case FMPI_PB_STRING: {
    const char *s = *(char *const *)p;
    if ((s == NULL || *s == 0) && !force)
      return 0;
    return put_tag(out, f->number, WT_LEN) || put_bytes(out, s ? s : "", s ? strlen(s) : 0) ? -1 : 0;
  }
  case FMPI_PB_BYTES: {
    const fmpi_pb_bytes *bs = p;
    if (bs->len == 0 && !force)
      return 0;
    return put_tag(out, f->number, WT_LEN) || put_bytes(out, bs->data, bs->len) ? -1 : 0;
  }
  case FMPI_PB_MESSAGE: {
    fmpi_pb_buf sub = { 0 };
    int rv = fmpi_pb_encode(f->msg, p, &sub);
    if (rv == 0)
      rv = put_tag(out, f->number, WT_LEN) || put_bytes(out, sub.data, sub.len) ? -1 : 0;
    fmpi_pb_buf_free(&sub);
    return rv;
  }
  default:
    return -1;
  }
  if (v == 0 && !force)
    return 0;
  return put_tag(out, f->number, WT_VARINT) || put_varint(out, v) ? -1 : 0;
}

static size_t elem_size(const fmpi_pb_field *f)
{
  return f->kind == FMPI_PB_MESSAGE ? f->msg->size : sizeof(char *);
}

int fmpi_pb_encode(const fmpi_pb_desc *desc, const void *msg, fmpi_pb_buf *out)
{
  const uint8_t *base = msg;
  for (size_t i = 0; i < desc->nfields; i++) {
    const fmpi_pb_field *f = &desc->fields[i];
    const void *p = base + f->offset;
    if (f->repeated) {
      const uint8_t *arr = *(const uint8_t *const *)p;
      size_t n = *(const size_t *)(base + f->count_offset);
      for (size_t k = 0; k < n; k++) {
        const uint8_t *e = arr + k * elem_size(f);
        if (encode_value(f, e, out, 1) != 0)
          return -1;
      }
    } else if (f->kind == FMPI_PB_MESSAGE) {
      const void *sub = *(const void *const *)p;
      if (sub != NULL && encode_value(f, sub, out, 1) != 0)
        return -1;
    } else if (encode_value(f, p, out, 0) != 0) {
      return -1;
    }
  }
  return 0;
}

typedef struct reader {
  const uint8_t *p, *end;
} reader;

static int get_varint(reader *r, uint64_t *v)
{
  uint64_t x = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (r->p >= r->end)
      return -1;
    uint8_t byte = *r->p++;
    x |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return -1;
}

static int skip_value(reader *r, int wt)
{
  uint64_t v;
  switch (wt) {
  case WT_VARINT: return get_varint(r, &v);
  case WT_I64: if (r->end - r->p < 8) return -1; r->p += 8; return 0;
  case WT_I32: if (r->end - r->p < 4) return -1; r->p += 4; return 0;
  case WT_LEN:
    if (get_varint(r, &v) != 0 || v > (uint64_t)(r->end - r->p))
      return -1;
    r->p += v;
    return 0;
  default: return -1;
  }
}

/* Decodes one occurrence of field f (wire type wt) into the slot at p. */
static int decode_value(const fmpi_pb_field *f, int wt, reader *r, void *p)
{
  uint64_t v = 0;
  if (f->kind == FMPI_PB_DOUBLE) {
    if (wt != WT_I64 || r->end - r->p < 8)
      return -1;
    memcpy(p, r->p, 8);
    r->p += 8;
    return 0;
  }
  if (f->kind == FMPI_PB_STRING || f->kind == FMPI_PB_BYTES || f->kind == FMPI_PB_MESSAGE) {
    if (wt != WT_LEN || get_varint(r, &v) != 0 || v > (uint64_t)(r->end - r->p))
      return -1;
    const uint8_t *data = r->p;
    r->p += v;
    if (f->kind == FMPI_PB_STRING) {
      char *s = malloc(v + 1);
      if (s == NULL)
        return -1;
      memcpy(s, data, v);
      s[v] = 0;
      free(*(char **)p);
      *(char **)p = s;
    } else if (f->kind == FMPI_PB_BYTES) {
      fmpi_pb_bytes *bs = p;
      free(bs->data);
      bs->data = malloc(v ? v : 1);
      if (bs->data == NULL)
        return -1;
      memcpy(bs->data, data, v);
      bs->len = v;
    } else {
      return fmpi_pb_decode(f->msg, data, v, p);
    }
    return 0;
  }
  if (wt != WT_VARINT || get_varint(r, &v) != 0)
    return -1;
  switch (f->kind) {
  case FMPI_PB_UINT32: *(uint32_t *)p = (uint32_t)v; break;
  case FMPI_PB_UINT64: *(uint64_t *)p = v; break;
  case FMPI_PB_INT32: *(int32_t *)p = (int32_t)v; break;
  case FMPI_PB_INT64: *(int64_t *)p = (int64_t)v; break;
  case FMPI_PB_BOOL: *(bool *)p = v != 0; break;
  default: return -1;
  }
  return 0;
}

static int decode_field(const fmpi_pb_desc *desc, const fmpi_pb_field *f, int wt, reader *r, uint8_t *base)
{
  void *p = base + f->offset;
  if (f->repeated) {
    size_t *n = (size_t *)(base + f->count_offset);
    size_t es = elem_size(f);
    uint8_t *arr = realloc(*(uint8_t **)p, (*n + 1) * es);
    if (arr == NULL)
      return -1;
    memset(arr + *n * es, 0, es);
    *(uint8_t **)p = arr;
    (*n)++;
    return decode_value(f, wt, r, arr + (*n - 1) * es);
  }
  if (f->kind == FMPI_PB_MESSAGE) {
    if (f->in_oneof) {
      /* a later member of the same oneof replaces an earlier one */
      uint32_t *which = (uint32_t *)(base + f->case_offset);
      for (size_t i = 0; i < desc->nfields; i++) {
        const fmpi_pb_field *g = &desc->fields[i];
        if (g->in_oneof && g->case_offset == f->case_offset && g != f && *(void **)(base + g->offset)) {
          fmpi_pb_free(g->msg, *(void **)(base + g->offset));
          free(*(void **)(base + g->offset));
          *(void **)(base + g->offset) = NULL;
        }
      }
      *which = f->number;
    }
    void **slot = p;
    if (*slot == NULL && (*slot = calloc(1, f->msg->size)) == NULL)
      return -1;
    /* a repeated occurrence of a message field merges; decode appends into it */
    return decode_value(f, wt, r, *slot);
  }
  return decode_value(f, wt, r, p);
}

int fmpi_pb_decode(const fmpi_pb_desc *desc, const uint8_t *data, size_t len, void *msg)
{
  reader r = { data, data + len };
  uint8_t *base = msg;
  while (r.p < r.end) {
    uint64_t key;
    if (get_varint(&r, &key) != 0)
      return -1;
    uint32_t number = (uint32_t)(key >> 3);
    int wt = (int)(key & 7);
    const fmpi_pb_field *f = NULL;
    for (size_t i = 0; i < desc->nfields; i++)
      if (desc->fields[i].number == number)
        f = &desc->fields[i];
    if (f == NULL) {
      if (skip_value(&r, wt) != 0)
        return -1;
    } else if (decode_field(desc, f, wt, &r, base) != 0) {
      return -1;
    }
  }
  return 0;
}

void fmpi_pb_free(const fmpi_pb_desc *desc, void *msg)
{
  uint8_t *base = msg;
  for (size_t i = 0; i < desc->nfields; i++) {
    const fmpi_pb_field *f = &desc->fields[i];
    void *p = base + f->offset;
    if (f->repeated) {
      uint8_t *arr = *(uint8_t **)p;
      size_t n = *(size_t *)(base + f->count_offset);
      for (size_t k = 0; k < n && arr; k++) {
        if (f->kind == FMPI_PB_MESSAGE)
          fmpi_pb_free(f->msg, arr + k * f->msg->size);
        else
          free(*(char **)(arr + k * sizeof(char *)));
      }
      free(arr);
      *(uint8_t **)p = NULL;
      *(size_t *)(base + f->count_offset) = 0;
    } else if (f->kind == FMPI_PB_MESSAGE) {
      void *sub = *(void **)p;
      if (sub) {
        fmpi_pb_free(f->msg, sub);
        free(sub);
      }
      *(void **)p = NULL;
    } else if (f->kind == FMPI_PB_STRING) {
      free(*(char **)p);
      *(char **)p = NULL;
    } else if (f->kind == FMPI_PB_BYTES) {
      free(((fmpi_pb_bytes *)p)->data);
      memset(p, 0, sizeof(fmpi_pb_bytes));
    }
  }
}

void fmpi_pb_buf_free(fmpi_pb_buf *buf)
{
  free(buf->data);
  buf->data = NULL;
  buf->len = buf->cap = 0;
}
