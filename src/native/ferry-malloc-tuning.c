/*
 * ferry-malloc-tuning.node: loaded by the agent's image transfer process
 * (src/images/malloc-tuning.ts) to keep glibc from handing freed memory back
 * to the kernel after every few chunks of an image transfer.
 *
 * Why: libzmq allocates every received chunk (1 MiB) afresh, and frees it when
 * the JavaScript garbage collector drops the buffer, tens of MiB at a time.
 * glibc's defaults then trim the heap (or unmap the chunk), so the next chunks
 * fault their pages in again: about 17,000 page faults for a 64 MiB fetch, at
 * 12-35 us each on a virtual machine, more than half the fetch. With chunks
 * up to 4 MiB served from the heap and up to 64 MiB of free heap kept per
 * arena, a later fetch faults almost nothing (measured, a process fetching
 * 64 MiB six times: 110-165 ms against 117-238 ms, the first fetch 280-294 ms
 * against 381-390 ms). It pays only in a process that does not fork
 * (image-transfer-worker.ts says why). That process also warms this memory
 * when it starts (receive-warmup.ts), so its first fetch faults little too.
 *
 * A Node-API module written without node_api.h (not installed with Node):
 * Node calls napi_register_module_v1 once at load, and the two functions it
 * uses are Node-API's stable C ABI, found in the node binary. It exports
 * mmapThreshold and trimThreshold: the bytes set, or 0 where mallopt refused.
 * The agent, CRIU and the ranks are other processes and keep the defaults.
 */
#include <malloc.h>
#include <stdint.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef int napi_status; /* napi_ok == 0 */

napi_status napi_create_int32(napi_env env, int32_t value, napi_value *result);
napi_status napi_set_named_property(napi_env env, napi_value object, const char *name, napi_value value);

#define MMAP_THRESHOLD_BYTES (4 << 20)
#define TRIM_THRESHOLD_BYTES (64 << 20)

static void export_int(napi_env env, napi_value exports, const char *name, int32_t value)
{
  napi_value v;
  if (napi_create_int32(env, value, &v) == 0) napi_set_named_property(env, exports, name, v);
}

__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports)
{
  /* mallopt returns 1 on success, 0 on error */
  int mmap_ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
  int trim_ok = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
  export_int(env, exports, "mmapThreshold", mmap_ok == 1 ? MMAP_THRESHOLD_BYTES : 0);
  export_int(env, exports, "trimThreshold", trim_ok == 1 ? TRIM_THRESHOLD_BYTES : 0);
  return exports;
}
