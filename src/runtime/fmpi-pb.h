/* Generic protobuf (proto3) codec driven by the field tables that
 * scripts/gen-c-proto.mjs generates from proto/rank.proto. Small control
 * messages only: encoding builds into a growable buffer, decoding allocates
 * (free with fmpi_pb_free). Unknown fields are skipped, as proto3 requires. */
#ifndef FMPI_PB_H
#define FMPI_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fmpi_pb_bytes {
  uint8_t *data;
  size_t len;
} fmpi_pb_bytes;

enum fmpi_pb_kind {
  FMPI_PB_UINT32 = 1, FMPI_PB_UINT64, FMPI_PB_INT32, FMPI_PB_INT64, FMPI_PB_BOOL,
  FMPI_PB_DOUBLE, FMPI_PB_STRING, FMPI_PB_BYTES, FMPI_PB_MESSAGE
};

struct fmpi_pb_desc;

/* One field of a message: where it lives in the C struct and how it is encoded. */
typedef struct fmpi_pb_field {
  uint32_t number;
  uint8_t kind;
  uint8_t repeated;
  uint8_t in_oneof;
  size_t offset;        /* of the value (or array pointer when repeated) */
  size_t count_offset;  /* of the size_t element count when repeated */
  size_t case_offset;   /* of the uint32_t <oneof>_case when in_oneof */
  const struct fmpi_pb_desc *msg;
} fmpi_pb_field;

typedef struct fmpi_pb_desc {
  const char *name;
  size_t size;
  size_t nfields;
  const fmpi_pb_field *fields;
} fmpi_pb_desc;

/* A growable output buffer. */
typedef struct fmpi_pb_buf {
  uint8_t *data;
  size_t len;
  size_t cap;
} fmpi_pb_buf;

/* Appends the encoding of msg to out. Returns 0, or -1 when out of memory. */
int fmpi_pb_encode(const fmpi_pb_desc *desc, const void *msg, fmpi_pb_buf *out);
/* Decodes into *msg (zeroed first). Returns 0, or -1 when malformed (msg freed). */
int fmpi_pb_decode(const fmpi_pb_desc *desc, const uint8_t *data, size_t len, void *msg);
/* Frees what decode (or the caller, with malloc) put behind the pointers of msg. */
void fmpi_pb_free(const fmpi_pb_desc *desc, void *msg);
void fmpi_pb_buf_free(fmpi_pb_buf *buf);

#endif
