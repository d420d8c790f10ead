// End to end, with real CRIU, real agents and namespace hosts that each have
// an images directory of their own, and a coordinator that keeps one replica
// of every committed image (--image-replicas 1). A job started with
// --auto-restart runs on host1 and host2 and is checkpointed; its images are
// copied to the next host after their writer. Then host1 dies with its disk
// out of reach (agent and every process in its namespace killed): the job is
// restarted from the replicas by itself, and the same `ferry run` prints the
// uninterrupted run's result; the files the ranks write and append to end as
// the uninterrupted run's. `ferry delete` then removes the replicas, and
// `ferry forget host1` ends the deleted job's wait for host1's images.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { buildExample, checksumLine, ferryOkOn } from '../helpers/e2e-run.js';
import { MANIFEST_FILE_NAME } from '../../src/images/image-paths.js';

// A few seconds on 2 ranks here: the checkpoint lands mid-run. Rank 0 prints a progress line every
// 2,000 iterations: those it prints again after the rollback must not reach `ferry run` twice.
// Long enough (about 10 s) that the job still runs, on a loaded machine, after its checkpoint and the
// copies of its images: at 60000 iterations (4-6 s) it once finished before its host could fail.
const JACOBI = ['256', '150000', '--progress', '5000'];
const RUN_TIMEOUT_MS = 120_000;

let c: TestCluster;
let jacobi: string;

const ferryOk = ferryOkOn(() => c, RUN_TIMEOUT_MS);

/** A Jacobi job's own output files: --history ("w") and --log ("a"), PREFIX.RANK, where every host sees them. */
const outputs = (jobId: string) => ({ history: join(c.tempDir, 'outputs', `${jobId}-history`), log: join(c.tempDir, 'outputs', `${jobId}-log`) });
const outputArgs = (jobId: string) => ['--history', outputs(jobId).history, '--log', outputs(jobId).log];
const outputFiles = (jobId: string) => [outputs(jobId).history, outputs(jobId).log].flatMap((prefix) => [0, 1].map((r) => readFileSync(`${prefix}.${r}`)));

const job = async (jobId: string) => JSON.parse(await ferryOk(['job', jobId, '--json']));
const epochs = async (jobId: string) => JSON.parse(await ferryOk(['epochs', jobId, '--json'])) as { epoch: number; replicatedImages: number; replicaHosts: string[] }[];

beforeAll(async () => {
  c = await startTestCluster({ hosts: 3, heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1_500, hostRejoinGraceMs: 3_000, imageReplicas: 1 });
  jacobi = buildExample(c, 'jacobi');
}, 120_000);

afterAll(async () => {
  await c?.stop();
});

describe('image replicas', { timeout: 300_000 }, () => {
  it('restart a job whose host died with its disk, by itself, with the same result; ferry delete removes them', async () => {
    const [, host2, host3] = c.hosts;
    expect(new Set(c.hosts.map((h) => h.imagesDir)).size).toBe(3);
    expect(await ferryOk(['status'])).toMatch(/\ncheckpoints: a job keeps its 2 newest epochs unless it says otherwise; 1 copy of each image on other hosts\n/);
    mkdirSync(join(c.tempDir, 'outputs'), { recursive: true });
    const reference = await c.ferry(['run', '-n', '2', '--hosts', 'host1', '--job-id', 'ref', jacobi, ...JACOBI, ...outputArgs('ref')], { timeoutMs: RUN_TIMEOUT_MS });
    expect(reference.code, reference.stderr).toBe(0);

    const run = c.ferry(['run', '-n', '2', '--hosts', 'host1,host2', '--job-id', 'rep', '--auto-restart', '1', jacobi, ...JACOBI, ...outputArgs('rep')], {
      timeoutMs: RUN_TIMEOUT_MS,
    });
    await c.waitFor(async () => (await job('rep')).state === 'running', 'job rep running');
    await new Promise((r) => setTimeout(r, 500));
    expect(await ferryOk(['checkpoint', 'rep'])).toMatch(/\n  copies of its images to another host follow \(ferry epochs rep shows them\)\n$/);
    expect((await job('rep')).ranks.map((r: { host: string }) => r.host)).toEqual(['host1', 'host2']);
    // host1's image goes to host2, host2's to host3, each verified there.
    await c.waitFor(async () => (await epochs('rep'))[0]!.replicatedImages === 2, 'replicas of epoch 1');
    expect((await epochs('rep'))[0]!.replicaHosts).toEqual(['host2', 'host3']);
    expect(existsSync(join(host2.imagesDir, 'rep', '1', 'rank-0', MANIFEST_FILE_NAME))).toBe(true);
    expect(existsSync(join(host3.imagesDir, 'rep', '1', 'rank-1', MANIFEST_FILE_NAME))).toBe(true);
    expect(await ferryOk(['epochs', 'rep'])).toMatch(/REPLICAS[\s\S]*\b2 on host2,host3\b/);

    // host1 dies: its agent and every process in its namespace, the rank among them. Its images
    // directory stays on this machine's disk, but nothing reads it without host1's agent.
    expect(await c.failHost('host1')).toBeGreaterThan(0);

    const done = await run;
    expect(done.code, `${done.stderr}\n${c.logTails(30)}`).toBe(0);
    expect(done.stderr).toMatch(/rank 0 lost: host host1 is down .*; restarting it from epoch 1 on the live ones of its hosts host1,host2 \(automatic restarts left: 0\)/);
    expect(checksumLine(done.stdout, c.logTails(20))).toBe(checksumLine(reference.stdout));
    // Bit for bit the uninterrupted run's output, progress lines included: none shown twice.
    expect(done.stdout).toBe(reference.stdout);
    expect(done.stderr).toMatch(/restarted from epoch 1 on host2; the output the ranks write again up to where they were \(\d+ bytes\) is not shown twice/);
    // Both ranks wrote on after the epoch (rank 1 until the restart): each file went back to its size then,
    // and the restored ranks wrote the rest again.
    for (const prefix of [outputs('rep').history, outputs('rep').log]) {
      for (const r of [0, 1]) expect(done.stderr).toContain(`rank ${r} on host2: ${prefix}.${r}: cut back from `);
    }
    const expected = outputFiles('ref');
    for (const [i, bytes] of outputFiles('rep').entries()) expect(bytes.equals(expected[i]!), `output file ${i}`).toBe(true);
    const end = await job('rep');
    expect(end.state, end.detail).toBe('succeeded');
    // Rank 0 went where its replica was, and read it in place.
    expect(end.ranks.map((r: { host: string }) => r.host)).toEqual(['host2', 'host2']);
    const events = await ferryOk(['events', '--job', 'rep']);
    expect(events).toMatch(/checkpoint\.replicated .* job rep: epoch 1: images copied to host2 \(rank 0\), host3 \(rank 1\)/);

    // Deleted: the replicas go from host2 and host3; host1 (down) keeps its originals until it is back.
    const del = await c.ferry(['delete', 'rep'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toMatch(/1 waits for host host1: removed when it registers again/);
    expect(del.stdout).toMatch(/, \d+ replicas on other hosts \(\d/);
    expect(existsSync(join(host2.imagesDir, 'rep', '1'))).toBe(false);
    expect(existsSync(join(host3.imagesDir, 'rep', '1'))).toBe(false);

    // host1 is gone for good: an up host cannot be forgotten, host1 can; the deleted job stops
    // waiting for it and leaves the catalog.
    const refused = await c.ferry(['forget', 'host2'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/host host2 is up .*ferry drain host2/);
    expect(await ferryOk(['forget', 'host1'])).toBe('host host1 forgotten\n  no image of a committed epoch was there\n');
    expect(await ferryOk(['hosts'])).not.toMatch(/host1/);
    await c.waitFor(async () => /job\.purged/.test(await ferryOk(['events', '--job', 'rep', '--limit', '10000'])), 'job rep purged');
  });
});
