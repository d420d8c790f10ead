/* Decodes each hex-encoded RankMessage given as an argument with the generated
 * C codec, prints a few decoded fields, re-encodes it and prints the hex, so
 * a test can compare the C codec byte for byte with protobufjs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/rank-proto.h"

int main(int argc, char **argv)
{
  for (int a = 1; a < argc; a++) {
    size_t n = strlen(argv[a]) / 2;
    uint8_t *in = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
      sscanf(argv[a] + 2 * i, "%2hhx", &in[i]);
    fmpi_RankMessage m;
    memset(&m, 0, sizeof m);
    if (fmpi_pb_decode(&fmpi_RankMessage_desc, in, n, &m) != 0) {
      printf("malformed\n");
      free(in);
      continue;
    }
    printf("case=%u request_id=%llu", m.body_case, (unsigned long long)m.request_id);
    if (m.exit)
      printf(" exit_code=%d", m.exit->exit_code);
    if (m.endpoints)
      printf(" endpoints=%zu last=%s:%u", m.endpoints->n_endpoints,
             m.endpoints->endpoints[m.endpoints->n_endpoints - 1].address,
             m.endpoints->endpoints[m.endpoints->n_endpoints - 1].port);
    if (m.status)
      printf(" status=%d/%d/%s", m.status->ok, m.status->code, m.status->message ? m.status->message : "");
    fmpi_pb_buf out = { 0 };
    fmpi_pb_encode(&fmpi_RankMessage_desc, &m, &out);
    printf(" hex=");
    for (size_t i = 0; i < out.len; i++)
      printf("%02x", out.data[i]);
    printf("\n");
    fmpi_pb_buf_free(&out);
    fmpi_pb_free(&fmpi_RankMessage_desc, &m);
    free(in);
  }
  return 0;
}
