// End to end, with real CRIU, real agents and namespace hosts: ranks that
// compute outside MPI (lone-steps: each works alone, printing and appending to
// its own file, and meets its peers only at its end). A flush does not stop
// such a rank: its runtime's progress thread flushes its channels while the
// program computes on, until its next MPI call. So it prints and writes
// between its flush and its dump, and, left running after a dump, until it is
// stopped. A migration and a rollback must still give the uninterrupted run's
// output and files, bit for bit.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type FerryResult, type TestCluster } from '../helpers/cluster.js';
import { ferryOkOn } from '../helpers/e2e-run.js';
import { FaultGates } from '../helpers/fault-gates.js';
import { LoneStepsJobs } from '../helpers/lone-steps-job.js';
import { programOn } from '../helpers/host-processes.js';

// About 6 s (300 steps of 20 ms).
const STEPS = '300';
const RUN_TIMEOUT_MS = 120_000;

let c: TestCluster;
let gates: FaultGates;
const jobs = new LoneStepsJobs(() => c, STEPS, RUN_TIMEOUT_MS);

const ferryOk = ferryOkOn(() => c, RUN_TIMEOUT_MS);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const job = async (jobId: string) => JSON.parse(await ferryOk(['job', jobId, '--json'])) as { state: string; ranks: { host: string; state: string }[] };

beforeAll(async () => {
  c = await startTestCluster({ hosts: 3, heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1_500, faultGates: true });
  gates = new FaultGates(c);
  jobs.build();
}, 120_000);

afterAll(async () => {
  gates?.openAll();
  await c?.stop();
});

describe('ranks that compute outside MPI', { timeout: 300_000 }, () => {
  it('migrated while the old copy would print and append on between its dump and its stop: output and files as the uninterrupted run', async () => {
    await jobs.reference();
    const jobId = 'mig';
    const run = jobs.run(jobId, 'host1,host2');
    await c.waitFor(async () => (await job(jobId)).state === 'running', `job ${jobId} running`);
    const log = jobs.log('host1', jobId);
    await jobs.untilNextStep(log);
    // The target's FETCH is held for longer than rank 0 takes to print a line (every 500 ms). Its old copy,
    // dumped by then, is stopped: running on, it printed and appended what its restored copy then did again.
    gates.close('fetch', 'host3');
    let migrated: Promise<string>;
    try {
      migrated = ferryOk(['migrate', jobId, '--rank', '0', '--to', 'host3']);
      await gates.held('fetch', 'host3');
      const printed = statSync(log).size;
      await sleep(700);
      expect(programOn(c, 'host1', 'lone-steps').map((p) => p.state)).toEqual(['T']);
      expect(statSync(log).size).toBe(printed);
    } finally {
      gates.open('fetch', 'host3');
    }
    await migrated;
    expect((await job(jobId)).ranks.map((r) => r.host)).toEqual(['host3', 'host2']);
    await jobs.expectUninterrupted(await run, jobId);
  });

  it('a migration that fails after its DUMP (the image broken before the target fetched it): the rank, stopped by its dump, runs on where it was', async () => {
    await jobs.reference();
    const jobId = 'mig-fail';
    const run = jobs.run(jobId, 'host1,host2');
    await c.waitFor(async () => (await job(jobId)).state === 'running', `job ${jobId} running`);
    await jobs.untilNextStep(jobs.log('host1', jobId));
    gates.close('fetch', 'host3');
    let migrated: Promise<FerryResult>;
    try {
      migrated = c.ferry(['migrate', jobId, '--rank', '0', '--to', 'host3'], { timeoutMs: RUN_TIMEOUT_MS });
      await gates.held('fetch', 'host3');
      expect(programOn(c, 'host1', 'lone-steps').map((p) => p.state)).toEqual(['T']);
      // One byte of its memory flipped in the image on host1: the target's FETCH fails its sha256.
      const sets = join(c.hosts[0]!.imagesDir, jobId);
      const image = join(sets, readdirSync(sets)[0]!, 'rank-0');
      const pages = readdirSync(image).filter((f) => /^pages-\d+\.img$/.test(f)).sort((a, b) => statSync(join(image, b)).size - statSync(join(image, a)).size)[0]!;
      const bytes = readFileSync(join(image, pages));
      bytes[bytes.length >> 1] ^= 0xff;
      writeFileSync(join(image, pages), bytes);
    } finally {
      gates.open('fetch', 'host3');
    }
    const failed = await migrated;
    expect(failed.code, failed.stderr).not.toBe(0);
    expect(failed.stderr).toMatch(/migration of job mig-fail aborted: FETCH failed: .*sha256 mismatch.*; every rank resumed where it was/);
    // Continued (SIGCONT) before its wake-up: it runs on host1, once.
    await c.waitFor(() => programOn(c, 'host1', 'lone-steps').every((p) => p.state !== 'T'), 'rank 0 to run on', 10_000);
    expect((await job(jobId)).ranks.map((r) => r.host)).toEqual(['host1', 'host2']);
    await jobs.expectUninterrupted(await run, jobId);
  });
});
