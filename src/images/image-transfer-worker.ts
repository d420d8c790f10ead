// The image transfer process: the agent's image server and its fetches, in a
// process of their own (started by image-transfer-process.ts).
//
// Why a process: Node starts every child (CRIU, ferry-restore, the ranks) with
// fork(), and after a fork each page the parent writes faults once more
// (copy-on-write). The agent forks at every dump and restore, so the buffers a
// transfer reuses cost a page fault per 4 KiB anyway: 10,000-12,000 faults for
// a 64 MiB fetch, as many as fresh buffers. This process never forks, so the
// server's chunk buffers (image-chunk-buffers.ts) and, with the malloc tuning,
// libzmq's receive buffers stay mapped from one fetch to the next.
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { ErrorCode } from '../gen/proto.js';
import { fetchImageDir } from './image-fetcher.js';
import { ImageServer } from './image-server.js';
import type { FromTransferProcess, ToTransferProcess, TransferError } from './image-transfer-messages.js';
import type { ClusterKey } from '../transport/cluster-key.js';
import { tuneMallocForImageTransfers } from './malloc-tuning.js';
import { warmReceivePath } from './receive-warmup.js';

function send(message: FromTransferProcess): void {
  process.send?.(message);
}

function asTransferError(err: unknown): TransferError {
  return err instanceof FerryError ? { code: err.code, message: err.message } : { code: ErrorCode.INTERNAL, message: errorMessage(err) };
}

/** The gc() that image-transfer-process.ts exposes (--expose-gc), for the warm-up. */
function gcExposed(): (() => void) | undefined {
  const gc = (globalThis as { gc?: () => void }).gc;
  return typeof gc === 'function' ? () => gc() : undefined;
}

/** The warm-up (receive-warmup.ts), once the server listens: a fetch asked for meanwhile runs alongside. */
async function warmUp(): Promise<FromTransferProcess> {
  // Without the tuning, glibc would give the memory back at once.
  if (!mallocTuned) return { kind: 'warmed', messages: 0, ms: 0, skipped: true };
  const w = await warmReceivePath(gcExposed());
  return w instanceof Error ? { kind: 'warmed', messages: 0, ms: 0, error: w.message } : { kind: 'warmed', ...w };
}

let server: ImageServer | undefined;
let key: ClusterKey | null = null;

async function handle(m: ToTransferProcess): Promise<void> {
  switch (m.kind) {
    case 'start':
      try {
        key = m.key;
        server = await ImageServer.bind(m.listen, m.imagesRoot, { key });
        send({ kind: 'started', address: server.address });
      } catch (err) {
        send({ kind: 'start-failed', error: asTransferError(err) });
        return;
      }
      send(await warmUp());
      return;
    case 'fetch':
      try {
        send({ kind: 'fetched', id: m.id, result: await fetchImageDir({ ...m.options, key }) });
      } catch (err) {
        send({ kind: 'fetch-failed', id: m.id, error: asTransferError(err) });
      }
      return;
    case 'stop':
      await server?.close();
      send({ kind: 'stopped' });
      process.disconnect?.();
      return;
  }
}

if (!process.send) {
  process.stderr.write('image-transfer-worker: started without an IPC channel; it is started by the agent\n');
  process.exit(2);
}
const mallocTuned = tuneMallocForImageTransfers() !== null;
process.on('message', (m: ToTransferProcess) => void handle(m));
// The agent is gone (exited, killed): so is the reason to serve its images.
process.on('disconnect', () => process.exit(0));
