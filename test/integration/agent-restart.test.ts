// A job survives its agent being SIGKILLed and restarted, with real agents,
// real rank processes and namespace hosts: the restarted agent re-adopts the
// ranks from its rank table, the MPI runtime reconnects to it, the job
// finishes with the right output and status, and a rank's exit status
// reaches the new agent although it is no longer the rank's parent (also when
// the rank ended while no agent ran). An agent killed while it holds the
// RESUME of a checkpoint (before its STORE): the epoch aborts, and the job
// runs on once the coordinator resumes the ranks the new agent reports
// flushed. An agent killed in PREPARE, before or after it asked its ranks to flush:
// all resume once it is back. An agent killed while it takes the endpoint table: its ranks get
// the table through the next agent. A failed job's
// rank that ignores SIGTERM on a host away at the time ends once its agent is back.
// An agent killed while a migration's target fetches from it, or while it
// is that target: the image is fetched again (from, or by, the next agent),
// and the migration succeeds.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RANK_KILL_GRACE_MS } from '../../src/agent/rank-supervisor.js';
import type { FerryResult, TestCluster } from '../helpers/cluster.js';
import { allRanksRunning, endLeftovers, ferryJson, startFaultCluster, type JobView } from '../helpers/fault-cluster.js';
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

const job = (id: string) => ferryJson<JobView>(c, ['job', id]);
const events = async () => JSON.parse((await c.ferry(['events', '--json', '--limit', '1000'])).stdout) as { kind: string; jobId?: string; message: string }[];
/** How many times the coordinator has published job `id`'s endpoint table (after MPI_Init, after each RESUME). */
const tablesPublished = async (id: string) => (await events()).filter((e) => e.kind === 'job.endpoints' && e.jobId === id).length;
/** What a rank's runtime prints once it is connected to a new agent (or, caught between the table's publication and its arrival, says hello again). */
const rejoined = /reconnected to the agent|lost the agent before the endpoint table came/;
const allRunning = (id: string) => allRanksRunning(c, id);

/** Ends stream job `id` (its stop file `stop`): `ferry run` exits 0, rank 0 having checked every message, and the job succeeded. */
async function streamEndsWell(id: string, stop: string, run: Promise<FerryResult>): Promise<void> {
  writeFileSync(stop, '');
  const r = await run;
  expect(r.code, `${r.stderr}\n${c.logTails(20)}`).toBe(0);
  expect(r.stdout).toMatch(/\[0\] stream ok rounds \d+ messages \d+/);
  const end = await job(id);
  expect(end.state, end.detail).toBe('succeeded');
}

/** Script ranks: wait for DIR/stop, print, exit 3 if DIR/fail-RANK exists. */
function shellRanks(dir: string): string[] {
  return ['/bin/sh', '-c', `while [ ! -e ${dir}/stop ]; do sleep 0.05; done; echo done $FERRY_RANK; [ -e ${dir}/fail-$FERRY_RANK ] && exit 3; exit 0`];
}

describe('an agent killed and restarted while its ranks run', { timeout: 180_000 }, () => {
  it('an MPI job runs on across the restart: the ranks reconnect to the new agent and the job succeeds', async () => {
    const stop = join(c.tempDir, 'stop-mpi');
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'mpi', stream, stop], { timeoutMs: 150_000 });
    const placed = await allRunning('mpi');
    const victim = placed.ranks[3].host;
    const theirs = placed.ranks.filter((r) => r.host === victim).map((r) => r.rank);
    // Past MPI_Init (the endpoint table is out): the agent dies under running ranks, not under a hello.
    await c.waitFor(async () => (await tablesPublished('mpi')) > 0, 'the endpoint table');

    await c.killAgent(victim, 'SIGKILL');
    await c.waitForHostStates({ [victim]: 'down' });
    expect((await job('mpi')).state).toBe('running');
    await c.startAgent(victim);
    await c.waitForHostStates({ [victim]: 'up' });
    // The ranks reconnected to the new agent (the runtime says so on stderr).
    const logs = c.hosts.find((h) => h.name === victim)!.logsDir;
    await c.waitFor(
      () => theirs.every((r) => rejoined.test(readFileSync(join(logs, 'mpi', `rank-${r}.err`), 'utf8'))),
      'ranks reconnected',
    );
    const during = await job('mpi');
    expect(during.state).toBe('running');
    expect(during.ranks.map((r) => r.state)).toEqual(['running', 'running', 'running', 'running']);

    await streamEndsWell('mpi', stop, run);
    expect((await events()).some((e) => e.kind === 'job.host-back')).toBe(true);
  });

  it('an agent killed while the coordinator hands it the endpoint table: its ranks get the table through the next agent', async () => {
    const stop = join(c.tempDir, 'stop-table');
    // host2's agent drops the table (host1's ranks take it and run) and dies; its ranks wait for the table.
    gates.close('table', 'host2', { drop: true });
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'table', stream, stop], { timeoutMs: 150_000 });
    await gates.held('table', 'host2');
    await c.killAgent('host2', 'SIGKILL');
    gates.open('table', 'host2');
    await c.waitForHostStates({ host2: 'down' });
    // The table's request fails with the host: that no longer fails the job, which waits for the host's grace.
    const said = async (re: RegExp) => (await events()).some((e) => e.kind === 'job.endpoints' && e.jobId === 'table' && re.test(e.message));
    await c.waitFor(() => said(/host host2 did not take the endpoint table/), 'the table not taken by host2', 30_000);
    expect((await job('table')).state).toBe('running');

    await c.startAgent('host2');
    await c.waitFor(() => said(/endpoint table sent again to host2/), 'the table sent again to host2 through its new agent', 60_000);
    await streamEndsWell('table', stop, run);
  });

  it('an agent killed during the RESUME before STORE: the epoch aborts, its images go, and the ranks it left flushed run on under the next agent', async () => {
    const stop = join(c.tempDir, 'stop-resume');
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'resume', stream, stop], { timeoutMs: 150_000 });
    const placed = await allRunning('resume');
    const victim = placed.ranks[3].host;
    gates.close('resume');
    const checkpoint = c.ferry(['checkpoint', 'resume', '--json'], { timeoutMs: 60_000 });
    // Dumped, and the RESUME held: kill the victim's agent before it wakes its ranks.
    await gates.held('resume', victim);
    await c.killAgent(victim, 'SIGKILL');
    gates.open('resume');
    // Its images cannot be stored: the epoch aborts; the other host's ranks run on, the victim's are owed the RESUME.
    const done = await checkpoint;
    expect(done.code, done.stdout).not.toBe(0);
    expect(done.stderr).toMatch(new RegExp(`epoch 1\\) aborted: STORE failed: ranks [0-9,]+: host ${victim}: .*Ranks on hosts that were lost resume when their agents are back; there is no committed checkpoint yet`));
    expect((await job('resume')).state).toBe('running');
    expect((await events()).find((e) => e.kind === 'job.resume-owed')?.message).toMatch(new RegExp(`the agent on host ${victim} was lost before it confirmed RESUME`));

    await c.startAgent(victim);
    await c.waitFor(async () => (await events()).some((e) => e.kind === 'job.resumed-late'), 'the RESUME sent again to the new agent');
    await streamEndsWell('resume', stop, run);
    const epochs = JSON.parse((await c.ferry(['epochs', 'resume', '--json'])).stdout) as { state: string }[];
    expect(epochs.map((e) => e.state)).toEqual(['aborted']);
    // Neither host keeps the aborted epoch's images (the victim's new agent discarded them before the RESUME).
    for (const h of c.hosts) expect(existsSync(join(h.imagesDir, 'resume', '1')), h.name).toBe(false);
  });

  it('an agent killed during PREPARE before it asked its ranks to flush: the ranks that flushed wait for them, and all resume once it is back', async () => {
    const stop = join(c.tempDir, 'stop-prepare');
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'prep', stream, stop], { timeoutMs: 150_000 });
    const placed = await allRunning('prep');
    await c.waitFor(async () => (await tablesPublished('prep')) > 0, 'the endpoint table');
    const victim = placed.ranks[3].host;
    const tables = await tablesPublished('prep');
    // The other host's ranks flush (and wait for the victim's ranks' end-of-channel markers); the victim's agent
    // dies before it passes the PREPARE on.
    gates.close('prepare', victim);
    const checkpoint = c.ferry(['checkpoint', 'prep', '--json'], { timeoutMs: 60_000 });
    await gates.held('prepare', victim);
    await c.killAgent(victim, 'SIGKILL');
    gates.open('prepare', victim);
    const done = await checkpoint;
    expect(done.code, done.stdout).not.toBe(0);
    expect(done.stderr).toMatch(new RegExp(`epoch 1\\) aborted: PREPARE failed: ranks [0-9,]+: host ${victim}: .*The job's ranks wait, flushed, until the agent on ${victim} is back to finish the flush`));
    expect((await events()).some((e) => e.kind === 'flush.owed' && e.jobId === 'prep')).toBe(true);
    // No rank was woken while the victim's ranks had not flushed: none said hello again for a new endpoint table.
    expect(await tablesPublished('prep')).toBe(tables);

    await c.startAgent(victim);
    await c.waitFor(async () => (await events()).some((e) => e.kind === 'flush.completed' && e.jobId === 'prep'), 'the flush finished and every rank resumed', 60_000);
    // The job runs on: the next checkpoint commits, and the stream ends checked.
    const next = await c.ferry(['checkpoint', 'prep', '--json'], { timeoutMs: 60_000 });
    expect(next.code, `${next.stderr}\n${c.logTails(20)}`).toBe(0);
    await streamEndsWell('prep', stop, run);
  });

  it('an agent killed during PREPARE after it asked its ranks to flush: they flush without it, and all resume once it is back', async () => {
    const stop = join(c.tempDir, 'stop-flushing');
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'asked', stream, stop], { timeoutMs: 150_000 });
    const placed = await allRunning('asked');
    await c.waitFor(async () => (await tablesPublished('asked')) > 0, 'the endpoint table');
    const victim = placed.ranks[3].host;
    const other = placed.ranks.map((r) => r.host).find((h) => h !== victim)!;
    // The victim's agent dies once its ranks have the flush request; they go on flushing (the other host's ranks,
    // held back until then, send their markers after the death) and end flushed with no agent to tell.
    gates.close('prepare', other);
    gates.close('flushing', victim);
    const checkpoint = c.ferry(['checkpoint', 'asked', '--json'], { timeoutMs: 60_000 });
    await gates.held('flushing', victim);
    await gates.held('prepare', other);
    await c.killAgent(victim, 'SIGKILL');
    gates.open('flushing', victim);
    gates.open('prepare', other);
    const done = await checkpoint;
    expect(done.code, done.stdout).not.toBe(0);
    expect(done.stderr).toMatch(new RegExp(`epoch 1\\) aborted: PREPARE failed: ranks [0-9,]+: host ${victim}: .*The job's ranks wait, flushed, until the agent on ${victim} is back to finish the flush`));

    await c.startAgent(victim);
    await c.waitFor(async () => (await events()).some((e) => e.kind === 'flush.completed' && e.jobId === 'asked'), 'the flush finished and every rank resumed', 60_000);
    const next = await c.ferry(['checkpoint', 'asked', '--json'], { timeoutMs: 60_000 });
    expect(next.code, `${next.stderr}\n${c.logTails(20)}`).toBe(0);
    await streamEndsWell('asked', stop, run);
  });

  it('an agent killed during STORE: the epoch aborts, the ranks (resumed before STORE) run on under the next agent, which discards the images; the previous epoch stays', async () => {
    const stop = join(c.tempDir, 'stop-store');
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'store', stream, stop], { timeoutMs: 150_000 });
    const placed = await allRunning('store');
    const victim = placed.ranks[3].host;
    const first = await c.ferry(['checkpoint', 'store', '--json'], { timeoutMs: 60_000 });
    expect(first.code, first.stderr).toBe(0);
    const epochs = async () => JSON.parse((await c.ferry(['epochs', 'store', '--json'])).stdout) as { epoch: number; state: string }[];
    const tablesBefore = await tablesPublished('store');
    gates.close('store');
    const checkpoint = c.ferry(['checkpoint', 'store', '--json'], { timeoutMs: 60_000 });
    await gates.held('store', victim);
    expect((await epochs()).find((e) => e.epoch === 2)?.state).toBe('storing');
    // The RESUME only signals the ranks; wait until they have said hello again (the table they wait for is out), so
    // that the agent dies under running ranks rather than under ranks still connecting.
    await c.waitFor(async () => (await tablesPublished('store')) > tablesBefore, 'the endpoint table after the RESUME');
    const victimLogs = c.hosts.find((h) => h.name === victim)!.logsDir;
    const victimRanks = placed.ranks.filter((r) => r.host === victim).map((r) => r.rank);
    const errSize = (r: number) => readFileSync(join(victimLogs, 'store', `rank-${r}.err`), 'utf8').length;
    const before = victimRanks.map(errSize);
    await c.killAgent(victim, 'SIGKILL');
    gates.open('store');
    const done = await checkpoint;
    expect(done.code, done.stdout).not.toBe(0);
    expect(done.stderr).toMatch(new RegExp(`epoch 2\\) aborted: STORE failed: ranks [0-9,]+: host ${victim}: .*The job keeps running; epoch 1 remains the last committed checkpoint`));
    expect((await job('store')).state).toBe('running');

    await c.startAgent(victim);
    // The new agent re-adopts the ranks, which were running all along (they reconnect: not woken by a RESUME), and
    // discards epoch 2's images.
    await c.waitFor(() => victimRanks.every((r, i) => rejoined.test(readFileSync(join(victimLogs, 'store', `rank-${r}.err`), 'utf8').slice(before[i]))), 'ranks reconnected');
    const images = (h: { imagesDir: string }) => join(h.imagesDir, 'store', '2');
    await c.waitFor(() => c.hosts.every((h) => !existsSync(images(h))), "epoch 2's images gone from every host");
    await streamEndsWell('store', stop, run);
    expect((await epochs()).map((e) => e.state)).toEqual(['committed', 'aborted']);
    expect((await events()).some((e) => e.kind === 'job.resumed-late' && e.jobId === 'store')).toBe(false); // nothing was owed a RESUME
    for (const h of c.hosts) expect(existsSync(join(h.imagesDir, 'store', '1')), h.name).toBe(placed.ranks.some((x) => x.host === h.name));
  });

  it("an agent killed while a migration's target fetches the rank's image from it: the target fetches it again from the next agent, and the rank moves", async () => {
    const stop = join(c.tempDir, 'stop-fetch');
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1', '--job-id', 'fetch', stream, stop], { timeoutMs: 150_000 });
    await allRunning('fetch');
    gates.close('fetch'); // host2's FETCH held before it connects to host1's image server
    const move = c.ferry(['migrate', 'fetch', '--rank', '1', '--to', 'host2', '--json'], { timeoutMs: 90_000 });
    await gates.held('fetch', 'host2');
    await c.killAgent('host1', 'SIGKILL');
    await c.startAgent('host1'); // as a supervisor would: its image server listens at a new address
    gates.open('fetch');
    const moved = await move;
    expect(moved.code, `${moved.stderr}\n${c.logTails(20)}`).toBe(0);
    const again = (await events()).filter((e) => e.kind === 'fetch.again' && e.jobId === 'fetch').map((e) => e.message);
    expect(again).toHaveLength(1);
    expect(again[0]).toMatch(/^job fetch: FETCH failed: rank 1: host host2: image server tcp:\/\/\S+: no connection for 3000 ms .*; fetching again: rank 1 on host2 from host1 \(tcp:\/\/\S+\)$/);
    expect((await job('fetch')).ranks.map((r) => r.host)).toEqual(['host1', 'host2', 'host1', 'host1']);
    await streamEndsWell('fetch', stop, run);
  });

  it("a migration's target agent killed during its FETCH: the next agent there fetches the image, and the rank moves", async () => {
    const stop = join(c.tempDir, 'stop-target');
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1', '--job-id', 'target', stream, stop], { timeoutMs: 150_000 });
    await allRunning('target');
    gates.close('fetch');
    const move = c.ferry(['migrate', 'target', '--rank', '2', '--to', 'host2', '--json'], { timeoutMs: 90_000 });
    await gates.held('fetch', 'host2');
    await c.killAgent('host2', 'SIGKILL'); // its FETCH dies with it
    gates.open('fetch');
    await c.startAgent('host2');
    const moved = await move;
    expect(moved.code, `${moved.stderr}\n${c.logTails(20)}`).toBe(0);
    const again = (await events()).filter((e) => e.kind === 'fetch.again' && e.jobId === 'target').map((e) => e.message);
    expect(again).toEqual([expect.stringMatching(/^job target: FETCH failed: rank 2: host host2: .*; fetching again: rank 2 on host2 from host1 \(tcp:\/\/\S+\)$/)]);
    expect((await job('target')).ranks.map((r) => r.host)).toEqual(['host1', 'host1', 'host2', 'host1']);
    await streamEndsWell('target', stop, run);
  });

  it('an agent killed during the RESUME of a restart: the ranks it restored run on under the next agent', async () => {
    const stop = join(c.tempDir, 'stop-restart');
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'rr', stream, stop], { timeoutMs: 150_000 });
    await allRunning('rr');
    const stopped = await c.ferry(['checkpoint', 'rr', '--stop'], { timeoutMs: 60_000 });
    expect(stopped.code, stopped.stderr).toBe(0);
    await run;
    gates.close('resume');
    const restart = c.ferry(['restart', 'rr', '--hosts', 'host2,host1'], { timeoutMs: 60_000 });
    // Restored (ranks 0 and 1 on host2) and the RESUME held: kill host2's agent before it wakes them.
    await gates.held('resume', 'host2');
    expect((await job('rr')).ranks.filter((r) => r.host === 'host2' && r.state === 'running')).toHaveLength(2);
    await c.killAgent('host2', 'SIGKILL');
    gates.open('resume');
    const restarted = await restart;
    expect(restarted.code, restarted.stderr).toBe(0);
    await c.startAgent('host2'); // re-adopts the restored ranks, which it must wake itself
    writeFileSync(stop, '');
    // (Not `ferry attach`: the job may end before an attach is heard, and attach does not replay output.)
    await c.waitFor(async () => (await job('rr')).state !== 'running', 'job rr to end', 60_000);
    const end = await job('rr');
    expect(end.state, `${end.detail}\n${c.logTails(20)}`).toBe('succeeded');
    const rank0 = c.hosts.find((x) => x.name === end.ranks[0].host)!;
    expect(readFileSync(join(rank0.logsDir, 'rr', 'rank-0.out'), 'utf8')).toMatch(/stream ok rounds \d+ messages \d+/);
  });

  it("a re-adopted rank's exit status reaches the new agent, which is no longer its parent", async () => {
    const dir = join(c.tempDir, 'status');
    mkdirSync(dir);
    // Each rank waits for a stop file of its own: rank 0 ends first, so rank 1's failure cannot end it before it prints.
    const ranks = ['/bin/sh', '-c', `while [ ! -e ${dir}/stop-$FERRY_RANK ]; do sleep 0.05; done; echo done $FERRY_RANK; [ -e ${dir}/fail-$FERRY_RANK ] && exit 3; exit 0`];
    const run = c.ferry(['run', '-n', '2', '--hosts', 'host1,host2', '--job-id', 'status', ...ranks], { timeoutMs: 120_000 });
    const placed = await allRunning('status');
    const { rank, host: victim } = placed.ranks[1];
    // Restarted at once: the coordinator may not even see the host down.
    await c.killAgent(victim, 'SIGKILL');
    await c.startAgent(victim);
    await c.waitForHostStates({ [victim]: 'up' });
    writeFileSync(join(dir, 'stop-0'), '');
    await c.waitFor(async () => (await job('status')).ranks[0].state === 'exited', 'rank 0 ended');
    writeFileSync(join(dir, `fail-${rank}`), '');
    writeFileSync(join(dir, `stop-${rank}`), '');
    const r = await run;
    expect(r.code).toBe(3);
    expect(r.stdout.split('\n').sort()).toEqual(['', '[0] done 0', '[1] done 1']);
    const end = await job('status');
    expect(end.state).toBe('failed');
    expect(end.exitCode).toBe(3);
    expect(end.detail).toBe(`rank ${rank} on ${victim} exited with status 3`);
  });

  it('a rank that ended while no agent ran is reported, with its status and its last output, by the next agent', async () => {
    const dir = join(c.tempDir, 'ended');
    mkdirSync(dir);
    const run = c.ferry(['run', '-n', '2', '--hosts', 'host1,host2', '--job-id', 'ended', ...shellRanks(dir)], { timeoutMs: 120_000 });
    const placed = await allRunning('ended');
    const { rank, host: victim } = placed.ranks[1];
    const other = placed.ranks[0];
    await c.killAgent(victim, 'SIGKILL');
    writeFileSync(join(dir, `fail-${rank}`), '');
    writeFileSync(join(dir, 'stop'), '');
    // Both ranks end; the victim's agent is not there to see it.
    const logs = c.hosts.find((h) => h.name === victim)!.logsDir;
    await c.waitFor(() => readFileSync(join(logs, 'ended', `rank-${rank}.out`), 'utf8') === `done ${rank}\n`, 'the orphaned rank to finish');
    await c.waitFor(async () => (await job('ended')).ranks[other.rank].state === 'exited', 'the other rank to exit');
    expect((await job('ended')).state).toBe('running'); // the victim's host is within its grace period
    await c.startAgent(victim);
    const r = await run;
    expect(r.code).toBe(3);
    expect(r.stdout.split('\n').sort()).toEqual(['', '[0] done 0', '[1] done 1']);
    const end = await job('ended');
    expect(end.state).toBe('failed');
    expect(end.detail).toBe(`rank ${rank} on ${victim} exited with status 3`);
  });

  it('a rank that ignores SIGTERM, on a host whose agent was away when its job failed: the next agent gets the SIGTERM, and SIGKILLs it 10 s later', async () => {
    const dir = join(c.tempDir, 'stubborn');
    mkdirSync(dir);
    const script = `if [ "$FERRY_RANK" = 1 ]; then while [ ! -e ${dir}/fail ]; do sleep 0.05; done; exit 3; fi; trap "" TERM INT; echo stubborn; while :; do sleep 0.1; done`;
    const run = c.ferry(['run', '-n', '2', '--hosts', 'host1,host2', '--job-id', 'stubborn', '/bin/sh', '-c', script], { timeoutMs: 120_000 });
    const placed = await allRunning('stubborn');
    const victim = placed.ranks[0].host;
    await c.killAgent(victim, 'SIGKILL');
    await c.waitForHostStates({ [victim]: 'down' });
    writeFileSync(join(dir, 'fail'), ''); // the job fails; its SIGTERM cannot reach rank 0
    await c.waitFor(async () => (await job('stubborn')).ranks[1].state === 'exited', 'rank 1 to exit');
    expect((await job('stubborn')).state).toBe('running');
    const back = Date.now();
    await c.startAgent(victim);
    const r = await run;
    expect(Date.now() - back).toBeGreaterThanOrEqual(RANK_KILL_GRACE_MS);
    expect(r.code).toBe(3);
    const end = await job('stubborn');
    expect(end).toMatchObject({ state: 'failed', exitCode: 3, detail: `rank 1 on ${placed.ranks[1].host} exited with status 3` });
    expect(end.ranks[0].state).toBe('exited');
  });
});
