// The agent's image transfer process (a real child process over Node's IPC,
// real ZeroMQ on 127.0.0.1): it serves and fetches images; a fetch it cannot do
// keeps its error code; its death fails the fetches in flight clearly and it
// comes back on the same address; it ends with its agent.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/common/ferry-error.js';
import { ErrorCode } from '../../src/gen/proto.js';
import { ImageServer } from '../../src/images/image-server.js';
import { ImageTransferProcess, transferWorkerPath } from '../../src/images/image-transfer-process.js';
import { readManifest, verifyImageDir, writeManifest } from '../../src/images/manifest.js';
import { processAlive } from '../../src/netns/stale-sweeper.js';
import { RECEIVE_WARMUP_BYTES, WARMUP_MESSAGE_BYTES } from '../../src/images/receive-warmup.js';
import { BIG_FILE_BYTES, FIXTURE_META, makeRankImage, tempDirs } from './image-dir-fixture.js';

const temps = tempDirs();

/** A process's minor page faults so far (/proc/PID/stat, field 10). */
function minorFaults(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[7]);
}
const processes: ImageTransferProcess[] = [];
const servers: ImageServer[] = [];
const LOOPBACK = 'tcp://127.0.0.1:0';

afterEach(async () => {
  for (const p of processes.splice(0)) await p.close();
  for (const s of servers.splice(0)) await s.close();
  await temps.removeAll();
});

async function startProcess(imagesRoot: string): Promise<ImageTransferProcess> {
  const p = await ImageTransferProcess.start({ listen: LOOPBACK, imagesRoot, key: null });
  processes.push(p);
  return p;
}

async function rejection(p: Promise<unknown>): Promise<FerryError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FerryError);
  return err as FerryError;
}

describe('image transfer process', () => {
  it('serves its host\'s images and fetches other hosts\' into its own; errors keep their code', async () => {
    const srcRoot = await temps.make('src');
    const dir = await makeRankImage(srcRoot, 8 * 1024 * 1024);
    const manifest = await writeManifest(dir, FIXTURE_META);
    const holder = await startProcess(srcRoot);
    expect(holder.address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    const fetcher = await startProcess(await temps.make('dst-root'));
    expect(fetcher.pid).not.toBe(process.pid);

    const into = join(await temps.make('dst'), 'rank-1');
    const r = await fetcher.fetch({ from: holder.address, ...FIXTURE_META, into, manifestSha256: manifest.manifestSha256 });
    expect(r.manifest.manifestSha256).toBe(manifest.manifestSha256);
    expect(r.bytesReceived).toBe(manifest.totalBytes);
    await verifyImageDir(into, await readManifest(into));

    const missing = await rejection(fetcher.fetch({ from: holder.address, ...FIXTURE_META, epoch: 99, into: join(into, '..', 'rank-x') }));
    expect(missing.code).toBe(ErrorCode.IMAGE_MISSING);
    expect(missing.message).toContain('epoch 99 rank 1 of job job-7: no complete image here');
  });

  it('warms its memory at start: its first fetch finds the memory for the chunks it receives mapped already', async () => {
    const srcRoot = await temps.make('src');
    const dir = await makeRankImage(srcRoot); // 64 MiB and a few small files
    const manifest = await writeManifest(dir, FIXTURE_META);
    const holder = await startProcess(srcRoot);
    const fetcher = await startProcess(await temps.make('dst-root'));
    for (const p of [holder, fetcher]) {
      const w = await p.warmed;
      expect(w.error).toBeUndefined();
      expect(w.skipped).toBeFalsy();
      expect(w.messages).toBe(RECEIVE_WARMUP_BYTES / WARMUP_MESSAGE_BYTES);
    }
    const before = minorFaults(fetcher.pid!);
    const r = await fetcher.fetch({ from: holder.address, ...FIXTURE_META, into: join(await temps.make('dst'), 'rank-1'), manifestSha256: manifest.manifestSha256, durable: false });
    expect(r.bytesReceived).toBe(manifest.totalBytes);
    // Not warmed, this fetch faults in about 10,000 pages (the receive window, about 40 MiB); warmed, a few hundred.
    expect(minorFaults(fetcher.pid!) - before).toBeLessThan(BIG_FILE_BYTES / 4096 / 3);
  });

  it('its death fails the fetches in flight, naming it; it starts again on the same address', async () => {
    const srcRoot = await temps.make('src');
    const dir = await makeRankImage(srcRoot, 4 * 1024 * 1024);
    await writeManifest(dir, FIXTURE_META);
    const server = await ImageServer.bind(LOOPBACK, srcRoot, { key: null });
    servers.push(server);
    const p = await startProcess(srcRoot);
    const firstPid = p.pid!;
    const fetching = p.fetch({ from: server.address, ...FIXTURE_META, into: join(await temps.make('dst'), 'rank-1') });
    process.kill(firstPid, 'SIGKILL');
    const err = await rejection(fetching);
    expect(err.code).toBe(ErrorCode.UNAVAILABLE);
    expect(err.message).toBe(`the fetch of job job-7 epoch 3 rank 1 from ${server.address}: the image transfer process (pid ${firstPid}) was killed by SIGKILL`);

    // Back on the same address: a fetch from it, and one by it, work.
    await expect.poll(() => p.starts, { timeout: 20_000 }).toBe(2);
    expect(p.pid).not.toBe(firstPid);
    const other = await startProcess(await temps.make('other-root'));
    const into = join(await temps.make('dst'), 'rank-1');
    await other.fetch({ from: p.address, ...FIXTURE_META, into });
    await verifyImageDir(into, await readManifest(into));
    await p.fetch({ from: server.address, ...FIXTURE_META, into: join(await temps.make('dst'), 'rank-1') });

    const secondPid = p.pid!;
    await p.close();
    expect(processAlive(secondPid)).toBe(false);
    const closed = await rejection(p.fetch({ from: server.address, ...FIXTURE_META, into: join(await temps.make('dst'), 'rank-1') }));
    expect(closed.message).toContain('the image transfer process is stopped');
  });

  it('ends when its agent is killed', async () => {
    const root = await temps.make('root');
    // A stand-in agent: starts the process, prints its pid, then waits to be killed.
    const agentScript = `
      const { ImageTransferProcess } = await import(${JSON.stringify(join(transferWorkerPath(), '..', 'image-transfer-process.js'))});
      const p = await ImageTransferProcess.start({ listen: 'tcp://127.0.0.1:0', imagesRoot: ${JSON.stringify(root)}, key: null });
      console.log(p.pid);
      setInterval(() => {}, 1000);
    `;
    const agent = spawn(process.execPath, ['--input-type=module', '-e', agentScript], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [line] = (await once(agent.stdout!, 'data')) as [Buffer];
      const workerPid = Number(String(line).trim());
      expect(workerPid).toBeGreaterThan(0);
      expect(processAlive(workerPid)).toBe(true);
      agent.kill('SIGKILL');
      await expect.poll(() => processAlive(workerPid), { timeout: 10_000 }).toBe(false);
    } finally {
      agent.kill('SIGKILL');
    }
  });
});
