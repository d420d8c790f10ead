// Warms the image transfer process's memory for its first transfer: as it
// starts, it sends itself image-sized messages over loopback ZeroMQ and lets
// them go, so the memory they took stays mapped for the real ones.
//
// Why: libzmq receives each chunk into memory its I/O thread allocates, from
// that thread's own glibc arena, and the sending side reads chunks into
// buffers of the main thread's. With the malloc tuning (malloc-tuning.ts) both
// arenas keep that memory once it was used, so only a process's first
// transfer faults it in: about 10,000 page faults for a 64 MiB fetch (about
// 40 MiB of the I/O thread's arena) and 2,300 to serve it, inside a
// migration's downtime. Migrations are rare on any one host, so a host's
// first is the usual case. Memory freed by the main thread cannot warm the
// I/O thread's arena (measured: no fewer faults), hence real messages. This
// takes the process to the size it has after its first transfer anyway.
import * as zmq from 'zeromq';
import { errorMessage } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';

const trace = tracer('images');

/** Bytes received: about what a 64 MiB fetch's receive window takes of the I/O thread's arena. */
export const RECEIVE_WARMUP_BYTES = 40 << 20;
/** Bytes of distinct send buffers: about what the image server's chunk buffers take (image-chunk-buffers.ts). */
export const SEND_WARMUP_BYTES = 16 << 20;
export const WARMUP_MESSAGE_BYTES = 1 << 20;

export interface ReceiveWarmup {
  messages: number;
  ms: number;
}

/**
 * Sends `receiveBytes` in 1 MiB messages to itself over loopback and holds
 * them until the last arrives, then lets them all go. The memory goes back to
 * glibc only once the garbage collector frees the buffers, so `collect` (the
 * process's gc(), exposed by --expose-gc) should be given: without it the
 * warm-up may come too late. Never throws: a warm-up that fails (no loopback)
 * costs only the first transfer's speed; its error is the result.
 */
export async function warmReceivePath(
  collect: (() => void) | undefined,
  receiveBytes = RECEIVE_WARMUP_BYTES,
  sendBytes = SEND_WARMUP_BYTES,
): Promise<ReceiveWarmup | Error> {
  const start = performance.now();
  const messages = Math.ceil(receiveBytes / WARMUP_MESSAGE_BYTES);
  const pull = new zmq.Pull({ linger: 0, receiveHighWaterMark: 0 });
  const push = new zmq.Push({ linger: 0, sendHighWaterMark: 0 });
  try {
    await pull.bind('tcp://127.0.0.1:*');
    push.connect(pull.lastEndpoint!);
    let sendBuffers: Buffer[] = [];
    for (let n = 0; n < Math.max(1, Math.ceil(sendBytes / WARMUP_MESSAGE_BYTES)); n++) sendBuffers.push(Buffer.alloc(WARMUP_MESSAGE_BYTES, n));
    let held: Buffer[] = [];
    const received = (async () => {
      while (held.length < messages) {
        const [m] = await pull.receive();
        held.push(m!);
      }
    })();
    for (let n = 0; n < messages; n++) await push.send(sendBuffers[n % sendBuffers.length]!);
    await received;
    held = [];
    sendBuffers = [];
    collect?.();
    const ms = performance.now() - start;
    trace(`receive path warmed: ${messages} messages of ${WARMUP_MESSAGE_BYTES} bytes in ${ms.toFixed(0)} ms${collect ? '' : ' (no gc() to free them at once)'}`);
    return { messages, ms };
  } catch (err) {
    trace(`receive path not warmed: ${errorMessage(err)}`);
    return err instanceof Error ? err : new Error(errorMessage(err));
  } finally {
    push.close();
    pull.close();
  }
}
