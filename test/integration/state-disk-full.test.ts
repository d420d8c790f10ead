// The coordinator's state directory on a disk that fills up while an MPI job
// runs (real coordinator, agents, CRIU and ranks on two namespace hosts; the
// state directory a 32 MiB tmpfs). A checkpoint then aborts naming the
// catalog; the ranks, woken with new listeners, get their endpoint table from
// the coordinator's memory and stream on to their checked end. Their exits
// wait for room, `ferry run` says why, and once there is room the job ends as
// it would have. Before, the woken ranks waited for their table for good.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestCluster } from '../helpers/cluster.js';
import type { FaultGates } from '../helpers/fault-gates.js';
import { allRanksRunning, ferryJson, startFaultCluster } from '../helpers/fault-cluster.js';

let c: TestCluster;
let stream: string;
let gates: FaultGates;

beforeAll(async () => {
  ({ cluster: c, stream, gates } = await startFaultCluster());
  // The coordinator's state moves onto a tmpfs mounted over its directory (stopped meanwhile).
  await c.killCoordinator('SIGTERM');
  const aside = mkdtempSync(join(c.tempDir, 'state-aside-'));
  cpSync(c.stateDir, aside, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'ferry-test-state', c.stateDir]);
  cpSync(aside, c.stateDir, { recursive: true });
  await c.startCoordinator();
  await c.waitForHostStates({ host1: 'up', host2: 'up' });
}, 120_000);

afterAll(async () => {
  gates?.openAll();
  await c?.stop(); // unmounts the tmpfs with the cluster's temp dir
});

/** Fills the state directory's disk to the last byte. */
function fillDisk(): void {
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${join(c.stateDir, 'filler')}`, 'bs=64k'], { stdio: 'ignore' });
  } catch {
    // (dd ends with ENOSPC)
  }
}

describe("a full disk under the coordinator's state", { timeout: 180_000 }, () => {
  it('aborts a checkpoint naming the catalog; the job streams on to its checked end, which is recorded once there is room', async () => {
    const stop = join(c.tempDir, 'stop-state');
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'st', stream, stop], { timeoutMs: 150_000 });
    const view = await allRanksRunning(c, 'st');
    const first = await c.ferry(['checkpoint', 'st'], { timeoutMs: 60_000 });
    expect(first.code, first.stderr).toBe(0);

    // The disk fills while host2 dumps its ranks: the ranks are flushed, their images written.
    gates.close('dump', 'host2');
    const asked = c.ferry(['checkpoint', 'st'], { timeoutMs: 60_000 });
    await gates.held('dump', 'host2');
    fillDisk();
    gates.open('dump', 'host2');
    const second = await asked;
    expect(second.code).not.toBe(0);
    expect(second.stderr).toMatch(/checkpoint of job st \(epoch 2\) aborted: .*the coordinator cannot write its catalog \S+catalog\.db: database or disk is full \(SQLITE_FULL\)/);
    expect(second.stderr).toMatch(/The job keeps running; epoch 1 remains the last committed checkpoint\. \[STATE_UNWRITABLE\]/);

    // The ranks were woken with new listeners: only with their new table do they stream on and end checked.
    writeFileSync(stop, '');
    const host0 = c.hosts.find((h) => h.name === view.ranks.find((r) => r.rank === 0)!.host)!;
    const out0 = join(host0.logsDir, 'st', 'rank-0.out');
    await c.waitFor(() => existsSync(out0) && /stream ok/.test(readFileSync(out0, 'utf8')), 'rank 0 of st to print "stream ok"', 60_000);
    // Their exits wait for room: the job is running for the catalog still.
    expect((await ferryJson<{ state: string }>(c, ['job', 'st'])).state).toBe('running');

    rmSync(join(c.stateDir, 'filler'));
    const r = await run;
    expect(r.code, `${r.stderr}\n${c.logTails(20)}`).toBe(0);
    expect(r.stdout).toMatch(/\[0\] stream ok rounds \d+ messages \d+/);
    expect(r.stderr).toMatch(/job st: rank \d has exited, but the coordinator cannot record it \(the coordinator cannot write its catalog .*\): the job's end waits until there is room/);
    const epochs = await ferryJson<{ epoch: number; state: string }[]>(c, ['epochs', 'st']);
    expect(epochs.map((e) => [e.epoch, e.state])).toEqual([[1, 'committed'], [2, 'aborted']]);
    expect(c.logs('coordinator')).toMatch(/cannot write its catalog/);
  });
});
