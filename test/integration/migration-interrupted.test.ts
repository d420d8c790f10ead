// A coordinator SIGKILLed in the middle of a migration, after the rank's old
// copy was stopped and while its target restores it, with real agents, real
// CRIU and an MPI job on two namespace hosts. The restarted coordinator finds
// the move in its catalog; the target's agent, still restoring, answers the
// RESTORE sent again with the restore it runs (no second copy); the rank is
// woken, every other rank too, and the job runs on with nothing lost.
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TestCluster } from '../helpers/cluster.js';
import { allRanksRunning, endLeftovers, ferryJson as ferryJsonOf, startFaultCluster, type JobView } from '../helpers/fault-cluster.js';
import type { FaultGates } from '../helpers/fault-gates.js';

let c: TestCluster;
let stream: string;
let gates: FaultGates;

beforeAll(async () => {
  ({ cluster: c, stream, gates } = await startFaultCluster());
}, 120_000);

afterEach(async () => {
  await endLeftovers(c, gates);
}, 60_000);

afterAll(async () => {
  await c?.stop();
});

const ferryJson = <T>(args: string[]) => ferryJsonOf<T>(c, args);
const events = async (kind: string) => (await ferryJson<{ kind: string; message: string }[]>(['events', '--limit', '1000'])).filter((e) => e.kind === kind).map((e) => e.message);

describe('a coordinator killed during a migration', { timeout: 180_000 }, () => {
  it("finishes the move when it is back: the rank runs on its target, once, and the job loses nothing", async () => {
    const stop = join(c.tempDir, 'stop');
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1', '--job-id', 'mi', stream, stop], { timeoutMs: 150_000 });
    await allRanksRunning(c, 'mi');

    // The rank's restore held before CRIU starts, until the coordinator is back.
    gates.close('restore');
    const cut = c.ferry(['migrate', 'mi', '--rank', '1', '--to', 'host2', '--json'], { timeoutMs: 60_000 });
    await gates.held('restore', 'host2');
    // the old copy on host1 is gone, the new one on host2 is being restored
    await c.waitFor(async () => (await events('rank.old-copy-exit')).length > 0, 'rank 1 stopped on host1');
    await c.killCoordinator('SIGKILL');
    expect((await cut).code).toBe(1);

    await c.startCoordinator();
    await c.waitForHostStates({ host1: 'up', host2: 'up' });
    gates.open('restore');
    await c.waitFor(async () => (await events('migration.finished-late')).length > 0, 'the migration finished', 60_000);
    expect(await events('migration.finished-late')).toEqual(['job mi: migration 1 of rank 1 (host1 -> host2), cut short by a coordinator restart: rank 1 restored on host2 and resumed']);
    const job = await allRanksRunning(c, 'mi');
    expect(job.ranks.map((r) => r.host)).toEqual(['host1', 'host2', 'host1', 'host1']);
    // One copy of each rank: host2's agent answered the second RESTORE with the one it was running.
    const copies = execFileSync('ps', ['-eo', 'comm=,args='], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.startsWith('flush-stream ') && l.includes(stream));
    expect(copies).toHaveLength(4);
    // The migration's images are gone from both hosts.
    await c.waitFor(async () => c.hosts.every((h) => !existsSync(join(h.imagesDir, 'mi', '1'))), "the migration's images removed");

    writeFileSync(stop, '');
    const r = await run;
    expect(r.code, `${r.stderr}\n${c.logTails(20)}`).toBe(0);
    // flush-stream checks every payload and sequence number it receives; rank 0 reports.
    expect(r.stdout).toMatch(/\[0\] stream ok rounds \d+ messages \d+/);
    expect((await ferryJson<JobView>(['job', 'mi'])).state).toBe('succeeded');
  });
});
