// A coordinator SIGKILLed in the middle of a checkpoint, with real agents,
// real CRIU and an MPI job on two namespace hosts. The restarted coordinator
// aborts the epoch it cut short; the agents report the ranks it left flushed
// when they register, and get a DISCARD (which waits for the DUMP they were
// still running) and a RESUME. The job then runs on with nothing lost, and the
// next checkpoint commits. Killed while its PREPARE has reached one host only,
// the next coordinator finishes that flush on every rank before any resumes.
// Killed while a job's ranks gather their endpoints (some told, some not yet),
// the next one hears again of those it had been told, and hands out the table;
// killed while it hands out the table (one host got it), the next one hands the
// same table to the other host as its agent tells its ranks' endpoints again.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FerryResult, TestCluster } from '../helpers/cluster.js';
import { allRanksRunning, endLeftovers, ferryJson as ferryJsonOf, startFaultCluster } from '../helpers/fault-cluster.js';
import type { FaultGates } from '../helpers/fault-gates.js';

let c: TestCluster;
let stream: string;
let gates: FaultGates;

beforeAll(async () => {
  // (the agents' rank-channel trace says when a flush request reached their ranks; their agent trace, when
  // they tell a rank's endpoint again)
  ({ cluster: c, stream, gates } = await startFaultCluster({ FERRY_TRACE: 'rank-channel,agent' }));
}, 120_000);

afterEach(async () => {
  await endLeftovers(c, gates);
}, 60_000);

afterAll(async () => {
  await c?.stop();
});

const ferryJson = <T>(args: string[]) => ferryJsonOf<T>(c, args);

interface EpochView {
  epoch: number;
  state: string;
  detail: string;
}

/**
 * After the fault: job `id` runs, its next checkpoint commits (epoch `epoch`), and once `stop` is created its
 * `ferry run` ends well, flush-stream having checked every payload and sequence number it received.
 */
async function runsOnLosingNothing(id: string, stop: string, run: Promise<FerryResult>, epoch = 2): Promise<void> {
  expect((await ferryJson<{ state: string }>(['job', id])).state).toBe('running');
  const next = await c.ferry(['checkpoint', id, '--json'], { timeoutMs: 60_000 });
  expect(next.code, next.stderr).toBe(0);
  expect(JSON.parse(next.stdout)).toMatchObject({ epoch, state: 'committed' });
  writeFileSync(stop, '');
  const r = await run;
  expect(r.code, `${r.stderr}\n${c.logTails(20)}`).toBe(0);
  expect(r.stdout).toMatch(/\[0\] stream ok rounds \d+ messages \d+/);
  expect((await ferryJson<{ state: string }>(['job', id])).state).toBe('succeeded');
}

describe('a coordinator killed during a checkpoint', { timeout: 180_000 }, () => {
  it('aborts the epoch when it is back; the ranks lose nothing and resume, the partial images go, the next checkpoint commits', async () => {
    const stop = join(c.tempDir, 'stop');
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'cr', stream, stop], { timeoutMs: 150_000 });
    await allRanksRunning(c, 'cr');

    // Every DUMP held before CRIU starts: the coordinator dies while both agents dump.
    gates.close('dump');
    const cut = c.ferry(['checkpoint', 'cr', '--json'], { timeoutMs: 60_000 });
    for (const h of ['host1', 'host2']) await gates.held('dump', h);
    expect((await ferryJson<EpochView[]>(['epochs', 'cr']))[0]?.state).toBe('dumping');
    await c.killCoordinator('SIGKILL');
    gates.open('dump');
    // The operator hears at once that the coordinator went away, not at the checkpoint's 15 min deadline.
    const lost = await cut;
    expect(lost.code).toBe(1);
    expect(lost.stderr).toMatch(/lost the connection to the coordinator at \S+ before it answered/);

    await c.startCoordinator();
    const [first] = await ferryJson<EpochView[]>(['epochs', 'cr']);
    expect(first).toMatchObject({ epoch: 1, state: 'aborted', detail: 'interrupted: the coordinator restarted while the epoch was dumping' });
    const resumedOn = async () =>
      (await ferryJson<{ kind: string; host: string }[]>(['events', '--limit', '1000'])).filter((e) => e.kind === 'job.resumed-late').map((e) => e.host).sort();
    await c.waitFor(async () => (await resumedOn()).length === 2, 'both hosts told to resume', 60_000);
    expect(await resumedOn()).toEqual(['host1', 'host2']);
    // The DUMPs the agents were running when the coordinator died finished before their DISCARD removed them.
    for (const h of c.hosts) expect(existsSync(join(h.imagesDir, 'cr', '1')), `${h.name}: images of epoch 1`).toBe(false);
    await runsOnLosingNothing('cr', stop, run);
  });
});

describe('a coordinator killed while its PREPARE has reached one host only', { timeout: 180_000 }, () => {
  it("finishes the flush on every rank when it is back, before any resumes; the job loses nothing", async () => {
    const stop = join(c.tempDir, 'stop-prepare');
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'half', stream, stop], { timeoutMs: 150_000 });
    await allRanksRunning(c, 'half');

    // host1's ranks get the flush request and wait for the end-of-channel markers of host2's, which never
    // get theirs: host2's agent drops its PREPARE, as if the coordinator had died before it sent it.
    gates.close('prepare', 'host2', { drop: true });
    const cut = c.ferry(['checkpoint', 'half', '--json'], { timeoutMs: 60_000 });
    await gates.held('prepare', 'host2');
    await c.waitFor(() => /flush epoch 1 of half sent to ranks \[0,1\]/.test(c.logs('host1')), "host1's ranks asked to flush");
    await c.killCoordinator('SIGKILL');
    expect((await cut).code).toBe(1);
    gates.open('prepare', 'host2'); // (the PREPARE it dropped stays dropped)

    await c.startCoordinator();
    const [first] = await ferryJson<EpochView[]>(['epochs', 'half']);
    expect(first).toMatchObject({ epoch: 1, state: 'aborted', detail: 'interrupted: the coordinator restarted while the epoch was preparing' });
    const events = async (kind: string) => (await ferryJson<{ kind: string; message: string }[]>(['events', '--job', 'half', '--limit', '1000'])).filter((e) => e.kind === kind).map((e) => e.message);
    expect(await events('flush.owed')).toEqual([expect.stringMatching(/^job half: checkpoint epoch 1: the coordinator restarted before the flush was known to have reached every rank/)]);
    // Once both agents are up: the same PREPARE to every rank (host2's flush, host1's awaited), then RESUME.
    await c.waitFor(async () => (await events('flush.completed')).length === 1, 'the flush finished and every rank resumed', 60_000);
    // No rank was resumed on its own as its agent registered (host1's were flushing, for peers not flushed).
    expect(await events('job.resumed-late')).toEqual([]);
    await runsOnLosingNothing('half', stop, run);
  });
});

describe("a coordinator killed while a job's ranks gather their endpoints", { timeout: 180_000 }, () => {
  it('hears again from the agents of the endpoints it had been told, and hands the table to every rank', async () => {
    const stop = join(c.tempDir, 'stop-gather');
    // host2's agent holds its ranks' endpoint reports: the coordinator learns host1's only, then dies.
    gates.close('endpoint', 'host2');
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'gather', stream, stop], { timeoutMs: 150_000 });
    await gates.held('endpoint', 'host2');
    await c.waitFor(async () => {
      const r = await c.ferry(['job', 'gather', '--json']);
      const ranks = r.code === 0 ? (JSON.parse(r.stdout) as { ranks: { host: string; endpoint: string }[] }).ranks : [];
      return ranks.filter((x) => x.host === 'host1' && x.endpoint).length === 2;
    }, "the endpoints of host1's ranks told to the coordinator");
    await c.killCoordinator('SIGKILL');
    await c.startCoordinator();
    gates.open('endpoint', 'host2');
    // Without host1's endpoints told again, the table never goes out: every rank waits for it, and the
    // checkpoint below is refused ("rank is not running yet (waiting for its endpoint table)").
    await c.waitFor(
      async () => (await ferryJson<{ kind: string }[]>(['events', '--job', 'gather', '--limit', '1000'])).some((e) => e.kind === 'job.endpoints'),
      'the endpoint table published by the new coordinator',
      60_000,
    );
    for (const rank of [0, 1]) expect(c.logs('host1')).toMatch(new RegExp(`endpoint of gather/${rank} told again`));
    await runsOnLosingNothing('gather', stop, run, 1);
  });
});

describe('a coordinator killed while it hands out an endpoint table', { timeout: 180_000 }, () => {
  it('hands the same table to the host that did not get it, as its agent tells the endpoints again', async () => {
    const stop = join(c.tempDir, 'stop-table');
    // host2's agent drops the table: host1's ranks got it and run, host2's wait; the coordinator dies.
    gates.close('table', 'host2', { drop: true });
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'table', stream, stop], { timeoutMs: 150_000 });
    await gates.held('table', 'host2');
    await c.killCoordinator('SIGKILL');
    gates.open('table', 'host2');
    await c.startCoordinator();
    // Counted for a new table instead, host2's endpoints would wait for host1's, which nobody tells again.
    await c.waitFor(
      async () =>
        (await ferryJson<{ kind: string; message: string }[]>(['events', '--job', 'table', '--limit', '1000'])).some(
          (e) => e.kind === 'job.endpoints' && /sent again to host2/.test(e.message),
        ),
      'the endpoint table sent again to host2',
      60_000,
    );
    for (const rank of [2, 3]) expect(c.logs('host2')).toMatch(new RegExp(`endpoint of table/${rank} told again`));
    expect(c.logs('host1')).not.toMatch(/endpoint of table\/\d told again/);
    await runsOnLosingNothing('table', stop, run, 1);
  });
});
