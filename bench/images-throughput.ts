// Image storage throughput, against a plain `cp` of the same data measured in
// the same run (the machine is noisy: trust the ratios):
// - writeManifest (sha256 + fsync of every file) of a freshly written image dir,
//   against `cp` and against writing the files with fsync (what a dump costs);
// - copyImageDir (shared directory case: copy + sha256 + fsync);
// - fetchImageDir over ZeroMQ on loopback from an ImageServer in a worker
//   thread (its own event loop, as another agent would have), per chunk size.
// Run: node dist/bench/images-throughput.js [MiB]   (default 256)
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { copyImageDir } from '../src/images/image-copy.js';
import { fetchImageDir } from '../src/images/image-fetcher.js';
import { rankImageDir } from '../src/images/image-paths.js';
import { ImageServer } from '../src/images/image-server.js';
import { writeManifest } from '../src/images/manifest.js';
import { readClusterKey, writeNewClusterKey } from '../src/transport/cluster-key.js';

const execFileP = promisify(execFile);
const META = { jobId: 'bench', epoch: 1, rank: 0, host: 'bench-host', criuVersion: 'n/a' };
const WRITE_BLOCK_BYTES = 4 * 1024 * 1024;

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const r = await f();
  return [r, performance.now() - t];
}

/** Writes `bytes` of random data with fsync, the way a dump leaves a file on disk. */
async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const block = randomBytes(WRITE_BLOCK_BYTES);
  const fh = await open(path, 'w');
  try {
    for (let at = 0; at < bytes; at += WRITE_BLOCK_BYTES) {
      block[0] = at & 0xff; // no two blocks alike
      await fh.write(block, 0, Math.min(WRITE_BLOCK_BYTES, bytes - at), at);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function runImagesThroughputBenchmark(mib = 256): Promise<void> {
  const bytes = mib * 1024 * 1024;
  const top = await mkdtemp(join(tmpdir(), 'ferry-bench-images-'));
  writeNewClusterKey(join(top, 'cluster.key'));
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { root: join(top, 'src'), keyFile: join(top, 'cluster.key') } });
  const serverAddress = new Promise<{ address: string; keyedAddress: string }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  try {
    const dir = rankImageDir(join(top, 'src'), META.jobId, META.epoch, META.rank);
    await mkdir(dir, { recursive: true });
    const big = join(dir, 'pages-1.img');
    const [, writeMs] = await timed(() => writeRandomFile(big, bytes));
    // read/write copy with fsync, as the image paths do (cp may use copy_file_range).
    const [, ddMs] = await timed(() =>
      execFileP('dd', [`if=${big}`, `of=${join(top, 'dd.img')}`, 'bs=4M', 'conv=fsync', 'status=none']),
    );
    const [, cpMs] = await timed(() => execFileP('cp', [big, join(top, 'cp.img')]));
    // cp leaves its data in the page cache; the image paths fsync, so compare them with cp + sync too.
    const [, cpSyncMs] = await timed(async () => {
      await execFileP('cp', [big, join(top, 'cp-sync.img')]);
      await execFileP('sync', [join(top, 'cp-sync.img')]);
    });
    const [, manifestMs] = await timed(() => writeManifest(dir, META));
    const [, copyMs] = await timed(() => copyImageDir(dir, join(top, 'copy')));
    const mb = (ms: number) => (bytes / 1e6 / (ms / 1000)).toFixed(0);
    const line = (what: string, ms: number) =>
      console.log(
        `  ${what.padEnd(44)} ${mb(ms).padStart(6)} MB/s  ${(cpMs / ms).toFixed(2)}x cp  ${(cpSyncMs / ms).toFixed(2)}x cp+sync  (${ms.toFixed(0)} ms)`,
      );
    console.log(`images throughput, ${mib} MiB file (ratios: higher is faster)`);
    line('cp (reference)', cpMs);
    line('cp + sync of the copy (reference)', cpSyncMs);
    line('dd bs=4M conv=fsync (reference)', ddMs);
    line('write + fsync (like a dump writing pages)', writeMs);
    line('writeManifest (sha256 + fsync)', manifestMs);
    console.log(`  -> manifest adds ${((manifestMs / writeMs) * 100).toFixed(0)}% to the time of writing the file`);
    line('copyImageDir (copy + sha256 + fsync)', copyMs);

    const { address, keyedAddress } = await serverAddress;
    for (const chunkBytes of [256 * 1024, 1024 * 1024, 4 * 1024 * 1024]) {
      const into = join(top, `fetch-${chunkBytes}`);
      const [r, ms] = await timed(() => fetchImageDir({ from: address, ...META, into, chunkBytes }));
      if (r.bytesReceived !== r.manifest.totalBytes) throw new Error('fetch received a wrong byte count');
      line(`fetchImageDir, ${chunkBytes / 1024} KiB chunks`, ms);
      await rm(into, { recursive: true, force: true });
    }
    // The same with a cluster key: CURVE encrypts every chunk (src/transport/curve-security.ts).
    const into = join(top, 'fetch-keyed');
    const [, keyedMs] = await timed(() => fetchImageDir({ from: keyedAddress, ...META, into, key: readClusterKey(join(top, 'cluster.key')) }));
    line('fetchImageDir, 1024 KiB chunks, cluster key', keyedMs);
    await rm(into, { recursive: true, force: true });
  } finally {
    worker.postMessage('close');
    await new Promise((resolve) => worker.once('exit', resolve));
    await rm(top, { recursive: true, force: true });
  }
}

if (!isMainThread) {
  // The serving agent, in its own thread.
  const { root, keyFile } = workerData as { root: string; keyFile: string };
  const server = await ImageServer.bind('tcp://127.0.0.1:0', root, { key: null });
  const keyed = await ImageServer.bind('tcp://127.0.0.1:0', root, { key: readClusterKey(keyFile) });
  parentPort!.postMessage({ address: server.address, keyedAddress: keyed.address });
  parentPort!.once('message', () => {
    void Promise.all([server.close(), keyed.close()]).then(() => parentPort!.close());
  });
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runImagesThroughputBenchmark(Number(process.argv[2] ?? 256));
  process.exit(0);
}
