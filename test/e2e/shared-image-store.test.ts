// End to end, with real CRIU, real agents and namespace hosts: host1 and host2
// mount one images directory (as NFS would), host3 has its own. A job on
// host1 is checkpointed and stopped, host1's agent is killed, and the job is
// restarted with rank 0 on host2, which reads its image in place, and rank 1
// on host3, which fetches it from host2's image server (host1, the writer, is
// down). The result must be bit for bit that of an uninterrupted run.
// Then a job started with --auto-restart loses its host (agent and ranks
// killed): the coordinator restarts it from its last epoch on the live hosts
// by itself, and the same `ferry run` prints the uninterrupted run's result.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { buildExample, checksumLine, ferryOkOn } from '../helpers/e2e-run.js';
import { IMAGE_STORE_ID_FILE } from '../../src/images/image-store-id.js';
import { MANIFEST_FILE_NAME } from '../../src/images/image-paths.js';

// A few seconds on 2 ranks here: the checkpoint lands mid-run.
const JACOBI = ['256', '60000'];
const RUN_TIMEOUT_MS = 120_000;

let c: TestCluster;
let jacobi: string;

const ferryOk = ferryOkOn(() => c, RUN_TIMEOUT_MS);

async function jobState(jobId: string): Promise<string> {
  return JSON.parse(await ferryOk(['job', jobId, '--json'])).state;
}

beforeAll(async () => {
  c = await startTestCluster({ hosts: 3, heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1_500, hostRejoinGraceMs: 3_000, sharedImages: [['host1', 'host2']] });
  jacobi = buildExample(c, 'jacobi');
}, 120_000);

afterAll(async () => {
  await c?.stop();
});

describe('a shared image directory', { timeout: 300_000 }, () => {
  it('restores a job whose writing host is down: in place on a host of the same store, fetched from it elsewhere', async () => {
    const [host1, host2, host3] = c.hosts;
    expect(host1.imagesDir).toBe(host2.imagesDir);
    expect(host3.imagesDir).not.toBe(host1.imagesDir);
    expect(readFileSync(join(host1.imagesDir, IMAGE_STORE_ID_FILE), 'utf8')).toMatch(/^ferry-image-store 1 [0-9a-f]{32}\n$/);

    const reference = await c.ferry(['run', '-n', '2', '--hosts', 'host1', '--job-id', 'ref', jacobi, ...JACOBI], { timeoutMs: RUN_TIMEOUT_MS });
    expect(reference.code, reference.stderr).toBe(0);

    const run = c.ferry(['run', '-n', '2', '--hosts', 'host1', '--job-id', 'shared', jacobi, ...JACOBI], { timeoutMs: RUN_TIMEOUT_MS });
    await c.waitFor(async () => (await jobState('shared')) === 'running', 'job shared running');
    await new Promise((r) => setTimeout(r, 500));
    await ferryOk(['checkpoint', 'shared', '--stop']);
    const first = await run;
    expect(first.stdout).not.toMatch(/checksum/);
    expect(await jobState('shared')).toBe('stopped');

    // host1 wrote the images; nobody else holds a copy until the restart.
    const rankDir = (root: string, rank: number) => join(root, 'shared', '1', `rank-${rank}`);
    for (const rank of [0, 1]) expect(existsSync(join(rankDir(host1.imagesDir, rank), MANIFEST_FILE_NAME))).toBe(true);
    expect(existsSync(join(host3.imagesDir, 'shared'))).toBe(false);
    const rank1Bytes = readdirSync(rankDir(host1.imagesDir, 1))
      .filter((f) => f !== MANIFEST_FILE_NAME)
      .reduce((n, f) => n + statSync(join(rankDir(host1.imagesDir, 1), f)).size, 0);

    await c.killAgent('host1', 'SIGKILL');
    await c.waitForHostStates({ host1: 'down', host2: 'up', host3: 'up' });

    const restart = JSON.parse(await ferryOk(['restart', 'shared', '--map', '0=host2,1=host3', '--json']));
    expect(restart.moves.map((m: { rank: number; from: string; to: string }) => [m.rank, m.from, m.to])).toEqual([
      [0, 'host1', 'host2'],
      [1, 'host1', 'host3'],
    ]);
    // Rank 0's image was read where it lies; only rank 1's crossed the network.
    expect(restart.bytesShipped).toBe(rank1Bytes);
    // host3 removed the copy it fetched once the rank ran again; the epoch's own images stay in the store.
    expect(existsSync(join(host3.imagesDir, 'shared', '1'))).toBe(false);
    for (const rank of [0, 1]) expect(existsSync(join(rankDir(host1.imagesDir, rank), MANIFEST_FILE_NAME))).toBe(true);

    const attached = await c.ferry(['attach', 'shared'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(attached.code, `${attached.stderr}\n${c.logTails(30)}`).toBe(0);
    expect(checksumLine(attached.stdout)).toBe(checksumLine(reference.stdout));
    const end = JSON.parse(await ferryOk(['job', 'shared', '--json']));
    expect(end.state, end.detail).toBe('succeeded');
    expect(end.ranks.map((r: { host: string }) => r.host)).toEqual(['host2', 'host3']);
  });

  it('restarts a job with --auto-restart by itself when its host dies, and its ferry run prints the same result', async () => {
    const [host1] = c.hosts;
    if ((await c.hostRows()).find((h) => h.name === 'host1')?.state !== 'up') await c.startAgent('host1'); // the test before killed it
    await c.waitForHostStates({ host1: 'up', host2: 'up', host3: 'up' });
    const reference = await c.ferry(['run', '-n', '2', '--hosts', 'host2', '--job-id', 'auto-ref', jacobi, ...JACOBI], { timeoutMs: RUN_TIMEOUT_MS });
    expect(reference.code, reference.stderr).toBe(0);

    // rank 0 on host2, rank 1 on host3: rank 1 sees its peer's connection close when host2 dies
    const run = c.ferry(['run', '-n', '2', '--hosts', 'host2,host3', '--job-id', 'auto', '--auto-restart', '1', jacobi, ...JACOBI], { timeoutMs: RUN_TIMEOUT_MS });
    await c.waitFor(async () => (await jobState('auto')) === 'running', 'job auto running');
    await new Promise((r) => setTimeout(r, 500));
    await ferryOk(['checkpoint', 'auto']);
    const before = JSON.parse(await ferryOk(['job', 'auto', '--json']));
    expect(before.autoRestarts).toBe(1);
    expect(before.ranks.map((r: { host: string }) => r.host)).toEqual(['host2', 'host3']);

    // host2 dies: its agent and every process in its namespace, the ranks among them.
    expect(await c.failHost('host2')).toBeGreaterThan(0);

    const done = await run;
    expect(done.code, `${done.stderr}\n${c.logTails(30)}`).toBe(0);
    expect(done.stderr).toMatch(/rank 0 lost: host host2 is down .*; restarting it from epoch 1 on the live ones of its hosts host2,host3 \(automatic restarts left: 0\)/);
    expect(done.stderr).toMatch(/restarted from epoch 1 on /);
    expect(checksumLine(done.stdout, c.logTails(20))).toBe(checksumLine(reference.stdout));
    const end = JSON.parse(await ferryOk(['job', 'auto', '--json']));
    expect(end.state, end.detail).toBe('succeeded');
    expect(end.autoRestarts).toBe(0);
    expect(end.ranks.map((r: { host: string }) => r.host)).not.toContain('host2');
    // host1 shares host2's image store: the epoch's images were still there for it.
    expect(existsSync(join(host1.imagesDir, 'auto', '1', 'rank-0', MANIFEST_FILE_NAME))).toBe(true);
  });
});
