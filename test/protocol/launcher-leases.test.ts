// A launched job whose launcher lost one of its processes (a ferry rank-exec
// SIGKILLed: no signal to pass on) is cancelled once that rank's follow has
// lapsed for the lease, naming the rank; one whose rank-execs all renew runs
// on, and a follower that is not a launcher's (ferry attach) holds no lease.
// A restarted coordinator arms the leases again from the first renewal; a
// suspended launcher (SIGTSTP ... SIGCONT) holds them, and so does one whose
// rank-exec the agent on its node finds stopped (a real process stands in).
// Over the in-memory transport with fake timers; LauncherLeases' own rules
// (a late sweep, a job that no longer runs) directly.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { LauncherProcessInit } from '../../src/gen/proto.js';
import { processStartTicks } from '../../src/common/proc-stat.js';
import { RoundStep } from '../../src/gen/proto.js';
import { LauncherLeases } from '../../src/coordinator/launcher-leases.js';
import { coordinatorInboundCodec } from '../../src/protocol/messages.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { ControlPlaneHarness, QUICK_ROUNDS, settle } from './control-plane-harness.js';
import { followingRankExec, joined, type FollowingRankExec } from './launch-joins.js';

const LEASE_MS = 3_000;
const RENEW_MS = 500;
let h: ControlPlaneHarness | undefined;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

// A real process stands for rank 1's rank-exec, so that node b's agent reads its true state in /proc.
const realSetTimeout = globalThis.setTimeout;
let standIn: ChildProcess | undefined;
async function standInProcess(): Promise<LauncherProcessInit> {
  standIn = spawn('sleep', ['300'], { stdio: 'ignore' });
  await once(standIn, 'spawn');
  return { host: 'b', pid: standIn.pid!, start_ticks: processStartTicks(readFileSync(`/proc/${standIn.pid}/stat`, 'utf8'))! };
}
/** Fake time, with real time between steps for the agent's reads of /proc. */
async function advanceReal(ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 100) {
    await advance(100);
    await new Promise((r) => realSetTimeout(r, 2));
  }
}

/**
 * Until rank 1's lease lapses (fake time, as above), then until `answered` (the coordinator heard node b
 * about its rank-exec's process), in real time: the agent reads /proc through libuv's pool, which a loaded
 * machine may keep waiting for longer than the fake seconds of the probe's timeout would take to pass.
 */
async function lapseAndProbe(jobId: string, answered: () => boolean, what: string): Promise<void> {
  for (let t = 0; t < 3 * LEASE_MS && h!.coordinator!.jobs.launchers.hasLeases(jobId); t += 100) await advanceReal(100);
  expect(h!.coordinator!.jobs.launchers.hasLeases(jobId), 'the lapse of rank 1\'s lease').toBe(false);
  for (let i = 0; i < 3_000 && !answered(); i++) {
    await advance(0);
    await new Promise((r) => realSetTimeout(r, 5));
  }
  expect(answered(), what).toBe(true);
}

const eventsOf = (jobId: string, kind: string) => h!.catalog!.listEvents({ jobId, limit: 100 }).filter((e) => e.kind === kind);

afterEach(async () => {
  await h?.stop();
  h = undefined;
  standIn?.kill('SIGKILL');
  standIn = undefined;
});

/** A 2-rank launch, rank 0 on a and rank 1 on b, running; rank 1's rank-exec names `process1` as itself. */
async function launched(launcher = [true, true], process1?: LauncherProcessInit): Promise<{ jobId: string; execs: FollowingRankExec[] }> {
  h = await ControlPlaneHarness.started({ a: 'store-a', b: 'store-b' }, { ...QUICK_ROUNDS, launcherLeaseMs: LEASE_MS });
  const execs = [
    followingRankExec(h, 'key:l', 0, 'a', RENEW_MS, { launcher: launcher[0] }),
    followingRankExec(h, 'key:l', 1, 'b', RENEW_MS, { launcher: launcher[1], ...(process1 ? { process: process1 } : {}) }),
  ];
  for (let t = 0; t < 5_000 && !execs.every((e) => joined(e.got)); t += 50) await advance(50);
  const jobId = joined(execs[0]!.got)!;
  expect(jobId).toBeTruthy();
  for (let t = 0; t < 5_000 && h.catalog!.getJob(jobId)!.state !== 'running'; t += 50) await advance(50);
  expect(h.catalog!.getJob(jobId)!.state).toBe('running');
  return { jobId, execs };
}

describe('the lease of a launched rank', () => {
  it('cancels the job, naming the rank, once its rank-exec stops renewing; the other rank-exec hears the end', async () => {
    const { jobId, execs } = await launched();
    await advance(LEASE_MS * 2);
    expect(h!.catalog!.getJob(jobId)!.state).toBe('running'); // renewing: no lapse
    execs[1]!.kill();
    await advance(LEASE_MS - RENEW_MS);
    expect(h!.catalog!.getJob(jobId)!.state).toBe('running'); // within the lease
    for (let t = 0; t < 5_000 && h!.catalog!.getJob(jobId)!.state === 'running'; t += 100) await advance(100);
    const job = h!.catalog!.getJob(jobId)!;
    expect(job.state).toBe('cancelled');
    expect(job.detail).toMatch(/^cancelled as its launcher lost rank 1 \(no follow from that rank's ferry rank-exec for [34] s\) \(SIGTERM\)$/);
    expect(h!.catalog!.listRanks(jobId).map((r) => r.exitCode)).toEqual([143, 143]);
    const lost = h!.catalog!.listEvents({ jobId, limit: 100 }).filter((e) => e.kind === 'launch.lost');
    expect(lost).toHaveLength(1);
    expect(lost[0]!.message).toContain(`job ${jobId}: the ferry rank-exec of rank 1 has not renewed its follow`);
    expect(execs[0]!.got.find((r) => r.final)?.job_ended?.job?.detail).toBe(job.detail);
    execs[0]!.kill();
  });

  it('lapses once: a job ending slowly (a rank that outlives its SIGTERM) holds no lease meanwhile', async () => {
    const { jobId, execs } = await launched();
    h!.nodes.get('a')!.ranks.ignoreTerm.add(`${jobId}/0`); // its agent kills it 10 s after the SIGTERM
    execs[1]!.kill();
    for (let t = 0; t < 2 * LEASE_MS && !h!.catalog!.getJob(jobId)!.ending; t += 100) await advance(100);
    expect(h!.catalog!.getJob(jobId)!.ending?.detail).toMatch(/^cancelled as its launcher lost rank 1 /);
    await advance(LEASE_MS * 2); // rank 0's rank-exec renews on, rank 1's stays silent: the job is ending, no second lapse
    expect(h!.catalog!.getJob(jobId)!.state).toBe('running');
    for (let t = 0; t < 15_000 && h!.catalog!.getJob(jobId)!.state === 'running'; t += 100) await advance(100);
    expect(h!.catalog!.getJob(jobId)!.state).toBe('cancelled');
    expect(h!.catalog!.listEvents({ jobId, limit: 100 }).filter((e) => e.kind === 'launch.lost')).toHaveLength(1);
    expect(h!.catalog!.listRanks(jobId).map((r) => r.exitCode)).toEqual([137, 143]);
    execs[0]!.kill();
  });

  it('holds none for a follower that is not a launcher process (ferry attach)', async () => {
    const { jobId, execs } = await launched();
    const attach = h!.hub.connect();
    attach.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: 1, follow_job: { job_id: jobId, ranks: [] } } }));
    await advance(RENEW_MS);
    await attach.close(); // gone without a word: the job runs on
    await advance(LEASE_MS * 3);
    expect(h!.catalog!.getJob(jobId)!.state).toBe('running');
    execs.forEach((e) => e.kill());
  });

  it('is armed again by a restarted coordinator: a rank whose rank-exec died meanwhile lapses', async () => {
    const { jobId, execs } = await launched();
    await h!.crashCoordinator();
    execs[0]!.kill(); // SIGKILLed while no coordinator ran
    h!.startCoordinator();
    for (let t = 0; t < 5_000 && !h!.coordinator!.jobs.launchers.hasLeases(jobId); t += 100) await advance(100);
    expect(h!.catalog!.getJob(jobId)!.state).toBe('running'); // rank 1's rank-exec renewed: the leases are armed
    for (let t = 0; t < 2 * LEASE_MS && h!.catalog!.getJob(jobId)!.state === 'running'; t += 100) await advance(100);
    expect(h!.catalog!.getJob(jobId)!.detail).toMatch(/^cancelled as its launcher lost rank 0 /);
    execs[1]!.kill();
  });

  it('waits while the launcher is suspended (SIGTSTP, then stopped), and starts anew at SIGCONT', async () => {
    const { jobId, execs } = await launched();
    // Slurm's suspend: SIGTSTP to every task (each says so; the job hears it once), SIGSTOP 2 s later.
    execs.forEach((e) => e.signal('SIGTSTP', 1));
    await advance(100);
    execs.forEach((e) => e.pause(true));
    await advance(LEASE_MS * 4);
    expect(h!.catalog!.getJob(jobId)!.state).toBe('running'); // suspended, not lost
    // Its ranks are stopped (their ferry-init got SIGTSTP): nothing would flush.
    const refused = await settle(h!.coordinator!.checkpoints.checkpoint(jobId, { stop: false }));
    expect(refused.error?.message).toBe(`job ${jobId} is suspended by its launcher (SIGTSTP, or found stopped), its ranks stopped: cannot checkpoint it until the launcher resumes it (SIGCONT)`);
    execs.forEach((e) => e.pause(false));
    execs.forEach((e) => e.signal('SIGCONT', 1));
    await advance(LEASE_MS * 2);
    expect(h!.catalog!.getJob(jobId)!.state).toBe('running');
    const kinds = h!.catalog!.listEvents({ jobId, limit: 100 }).map((e) => e.kind);
    expect(kinds.filter((k) => k === 'launch.suspend')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'launch.continue')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'launch.signal' || k === 'job.cancel')).toEqual([]);
    expect((await settle(h!.coordinator!.checkpoints.checkpoint(jobId, { stop: false }))).error).toBeUndefined(); // resumed: it can
    // Resumed: a rank-exec that goes silent now lapses as before.
    execs[0]!.kill();
    for (let t = 0; t < 2 * LEASE_MS && h!.catalog!.getJob(jobId)!.state === 'running'; t += 100) await advance(100);
    expect(h!.catalog!.getJob(jobId)!.detail).toMatch(/^cancelled as its launcher lost rank 0 /);
    execs[1]!.kill();
  });

  it('suspends the job when a lapsed rank-exec is found stopped without a SIGTSTP (SIGSTOP alone), and continues it at its SIGCONT', async () => {
    const { jobId, execs } = await launched([true, true], await standInProcess());
    const stopped = () => ['a', 'b'].reduce((n, host) => n + h!.nodes.get(host)!.ranks.stopped.size, 0);
    // PBS's suspend: SIGSTOP to the launcher's processes, no SIGTSTP first: rank 1's rank-exec just goes silent.
    standIn!.kill('SIGSTOP');
    execs[1]!.pause(true);
    await lapseAndProbe(jobId, () => eventsOf(jobId, 'launch.suspend').length > 0, 'the job suspended');
    await advanceReal(LEASE_MS);
    const job = h!.catalog!.getJob(jobId)!;
    expect(job.state).toBe('running'); // suspended, not lost
    expect(job.launcherSuspended).toBe(true);
    expect(stopped()).toBe(2);
    const refused = await settle(h!.coordinator!.checkpoints.checkpoint(jobId, { stop: false }));
    expect(refused.error?.message).toBe(`job ${jobId} is suspended by its launcher (SIGTSTP, or found stopped), its ranks stopped: cannot checkpoint it until the launcher resumes it (SIGCONT)`);
    const events = h!.catalog!.listEvents({ jobId, limit: 100 });
    expect(events.filter((e) => e.kind === 'launch.lost')).toEqual([]);
    const suspend = events.filter((e) => e.kind === 'launch.suspend');
    expect(suspend).toHaveLength(1);
    expect(suspend[0]!.message).toMatch(new RegExp(`the ferry rank-exec of rank 1 has not renewed its follow for \\d s; on b: pid ${standIn!.pid} is stopped \\(state T\\): its launcher was suspended without a SIGTSTP first`));
    // The launcher's SIGCONT: the rank-exec says so and renews again.
    standIn!.kill('SIGCONT');
    execs[1]!.pause(false);
    execs[1]!.signal('SIGCONT', 1);
    await advanceReal(LEASE_MS * 2);
    expect(h!.catalog!.getJob(jobId)!.launcherSuspended).toBe(false);
    expect(stopped()).toBe(0);
    expect(h!.catalog!.getJob(jobId)!.state).toBe('running');
    // Killed outright now: gone, so the job is cancelled, and the event says what node b found.
    standIn!.kill('SIGKILL');
    await once(standIn!, 'exit');
    execs[1]!.kill();
    await lapseAndProbe(jobId, () => eventsOf(jobId, 'launch.lost').length > 0, 'the launch lost');
    for (let t = 0; t < 3 * LEASE_MS && h!.catalog!.getJob(jobId)!.state === 'running'; t += 100) await advanceReal(100);
    expect(h!.catalog!.getJob(jobId)!.detail).toMatch(/^cancelled as its launcher lost rank 1 /);
    const lost = h!.catalog!.listEvents({ jobId, limit: 100 }).filter((e) => e.kind === 'launch.lost');
    expect(lost.map((e) => e.message.replace(/.*\(killed outright, or cut off from the coordinator\)/, ''))).toEqual([`; on b: no process ${standIn!.pid}: the job is cancelled`]);
    execs[0]!.kill();
  });

  it('continues a job suspended as stopped when its rank-exec renews again with no SIGCONT (a thawed cgroup)', async () => {
    const { jobId, execs } = await launched([true, true], await standInProcess());
    standIn!.kill('SIGSTOP');
    execs[1]!.pause(true);
    await lapseAndProbe(jobId, () => eventsOf(jobId, 'launch.suspend').length > 0, 'the job suspended');
    expect(h!.catalog!.getJob(jobId)!.launcherSuspended).toBe(true);
    // Rank 0's rank-exec, never suspended, renews all along: that does not continue the job.
    await advanceReal(LEASE_MS * 2);
    expect(h!.catalog!.getJob(jobId)!.launcherSuspended).toBe(true);
    standIn!.kill('SIGCONT');
    execs[1]!.pause(false);
    await advanceReal(RENEW_MS * 3);
    expect(h!.catalog!.getJob(jobId)!.launcherSuspended).toBe(false);
    expect(['a', 'b'].reduce((n, host) => n + h!.nodes.get(host)!.ranks.stopped.size, 0)).toBe(0);
    const continued = h!.catalog!.listEvents({ jobId, limit: 100 }).filter((e) => e.kind === 'launch.continue');
    expect(continued.map((e) => e.message)).toEqual([
      `job ${jobId}: the ferry rank-exec of rank 1 renews its follow again, with no SIGCONT passed on (a thawed cgroup?): the launcher runs again, and so do the ranks`,
    ]);
    execs.forEach((e) => e.kill());
  });

  it('cancels the job when a lapsed rank-exec still runs (cut off from the coordinator), saying so', async () => {
    const { jobId, execs } = await launched([true, true], await standInProcess());
    execs[1]!.pause(true);
    await lapseAndProbe(jobId, () => eventsOf(jobId, 'launch.lost').length > 0, 'the launch lost');
    for (let t = 0; t < 3 * LEASE_MS && h!.catalog!.getJob(jobId)!.state === 'running'; t += 100) await advanceReal(100);
    expect(h!.catalog!.getJob(jobId)!.detail).toMatch(/^cancelled as its launcher lost rank 1 /);
    const lost = h!.catalog!.listEvents({ jobId, limit: 100 }).filter((e) => e.kind === 'launch.lost');
    expect(lost[0]!.message).toContain(`(killed outright, or cut off from the coordinator); on b: pid ${standIn!.pid} runs (state S): the job is cancelled`);
    execs.forEach((e) => e.kill());
  });

  it('lets a checkpoint under way end before the ranks are stopped, and continues them after', async () => {
    const { jobId, execs } = await launched();
    const delivered = () => ['a', 'b'].flatMap((host) => h!.nodes.get(host)!.ranks.signalled.filter((x) => x.startsWith(`${jobId}/`)));
    const steps = h!.nodes.get('a')!.steps; // a checkpoint whose DUMP takes a moment
    steps.scripts.set(RoundStep.DUMP, async (req) => {
      await new Promise((r) => setTimeout(r, 500));
      return { failed: new Map(), images: steps.dumpImages(req) };
    });
    const checkpoint = settle(h!.coordinator!.checkpoints.checkpoint(jobId, { stop: false }));
    await advance(100);
    execs.forEach((e) => e.signal('SIGTSTP', 1));
    await advance(100);
    expect(delivered()).toEqual([]); // the checkpoint's ranks must flush and resume first
    execs.forEach((e) => e.signal('SIGCONT', 1));
    const r = await checkpoint;
    expect(r.error).toBeUndefined();
    await advance(200);
    expect(delivered().map((x) => x.split(' ')[1])).toEqual(['SIGTSTP', 'SIGCONT', 'SIGTSTP', 'SIGCONT']);
    execs.forEach((e) => e.kill());
  });

  it('drops a SIGTSTP whose turn comes once the job is ending: its ranks take their SIGTERM unstopped', async () => {
    const { jobId, execs } = await launched();
    const delivered = () => ['a', 'b'].flatMap((host) => h!.nodes.get(host)!.ranks.signalled.filter((x) => x.startsWith(`${jobId}/`)));
    h!.nodes.get('a')!.ranks.ignoreTerm.add(`${jobId}/0`); // a program slow to end on SIGTERM
    const release = h!.coordinator!.operations.begin(jobId, () => 'a checkpoint'); // the SIGTSTP waits its turn
    execs.forEach((e) => e.signal('SIGTSTP', 1));
    await advance(100);
    await h!.coordinator!.jobs.signal(jobId, 'SIGTERM'); // the operator cancels meanwhile
    release();
    await advance(500);
    expect(delivered().filter((x) => x.endsWith(' SIGTSTP'))).toEqual([]);
    expect(h!.catalog!.listEvents({ jobId, limit: 100 }).map((e) => e.message)).toContain(`job ${jobId}: its launcher's SIGTSTP is not passed on: the job is ending`);
    execs.forEach((e) => e.kill());
  });

  it('keeps a suspended launcher across a coordinator restart: no checkpoint of its stopped ranks until the SIGCONT', async () => {
    const { jobId, execs } = await launched();
    const stopped = () => ['a', 'b'].reduce((n, host) => n + h!.nodes.get(host)!.ranks.stopped.size, 0);
    execs.forEach((e) => e.signal('SIGTSTP', 1));
    await advance(100);
    execs.forEach((e) => e.pause(true));
    expect(stopped()).toBe(2);
    await h!.crashCoordinator();
    h!.startCoordinator();
    await advance(LEASE_MS * 2);
    const refused = await settle(h!.coordinator!.checkpoints.checkpoint(jobId, { stop: false }));
    expect(refused.error?.message).toBe(`job ${jobId} is suspended by its launcher (SIGTSTP, or found stopped), its ranks stopped: cannot checkpoint it until the launcher resumes it (SIGCONT)`);
    expect(h!.catalog!.getJob(jobId)!.state).toBe('running');
    execs.forEach((e) => e.pause(false));
    execs.forEach((e) => e.signal('SIGCONT', 1));
    await advance(200);
    expect(stopped()).toBe(0);
    expect(h!.catalog!.getJob(jobId)!.launcherSuspended).toBe(false);
    expect((await settle(h!.coordinator!.checkpoints.checkpoint(jobId, { stop: false }))).error).toBeUndefined();
    execs.forEach((e) => e.kill());
  });

  it('skips the periodic checkpoints of a suspended job, and takes them again after its SIGCONT', async () => {
    const { jobId, execs } = await launched();
    h!.coordinator!.periodic.set(jobId, 1_000);
    execs.forEach((e) => e.signal('SIGTSTP', 1));
    await advance(5_000);
    const events = () => h!.catalog!.listEvents({ jobId, limit: 1000 }).map((e) => e.kind);
    expect(h!.catalog!.listEpochs(jobId)).toEqual([]);
    expect(events()).not.toContain('checkpoint.periodic-failed'); // waiting, not failing
    execs.forEach((e) => e.signal('SIGCONT', 1));
    await advance(2_500);
    expect(h!.catalog!.listEpochs(jobId).filter((e) => e.state === 'committed').length).toBeGreaterThan(0);
    expect(events()).not.toContain('checkpoint.periodic-failed');
    execs.forEach((e) => e.kill());
  });

  it('continues the stopped ranks of a suspended job that is cancelled, so the SIGTERM ends them now', async () => {
    const { jobId, execs } = await launched();
    execs.forEach((e) => e.signal('SIGTSTP', 1));
    await advance(100);
    execs.forEach((e) => e.pause(true));
    expect(h!.nodes.get('a')!.ranks.stopped.size).toBe(1);
    await h!.coordinator!.jobs.signal(jobId, 'SIGTERM');
    await advance(1_000); // far less than the agent's SIGKILL grace
    const job = h!.catalog!.getJob(jobId)!;
    expect(job.state).toBe('cancelled');
    expect(h!.catalog!.listRanks(jobId).map((r) => r.exitCode)).toEqual([143, 143]); // the SIGTERM, not the SIGKILL
    expect(job.launcherSuspended).toBe(false);
    execs.forEach((e) => e.kill());
  });

  it("names the launcher, not the operator, when a rank-exec passes on the launcher's SIGTERM", async () => {
    const { jobId, execs } = await launched();
    execs[1]!.signal('SIGTERM', 1);
    execs[0]!.signal('SIGTERM', 1); // the same signal, from the other rank-exec: passed on once
    for (let t = 0; t < 5_000 && h!.catalog!.getJob(jobId)!.state === 'running'; t += 100) await advance(100);
    const job = h!.catalog!.getJob(jobId)!;
    expect(job).toMatchObject({ state: 'cancelled', detail: 'cancelled by its launcher, passed on by the ferry rank-exec of rank 1 (SIGTERM)' });
    const cancels = h!.catalog!.listEvents({ jobId, limit: 100 }).filter((e) => e.kind === 'job.cancel');
    expect(cancels.map((e) => e.message)).toEqual([`job ${jobId}: SIGTERM sent by its launcher, passed on by the ferry rank-exec of rank 1`]);
    execs.forEach((e) => e.kill());
  });

  it('lets a stopped job go: its rank-execs wait without following', async () => {
    const { jobId, execs } = await launched();
    const stopped = h!.coordinator!.checkpoints.checkpoint(jobId, { stop: true });
    for (let t = 0; t < 10_000 && h!.catalog!.getJob(jobId)!.state !== 'stopped'; t += 100) await advance(100);
    await stopped;
    expect(h!.catalog!.getJob(jobId)!.state).toBe('stopped');
    execs.forEach((e) => e.kill());
    await advance(LEASE_MS * 3);
    expect(h!.catalog!.getJob(jobId)!.state).toBe('stopped');
    expect(h!.catalog!.listEvents({ jobId, limit: 100 }).some((e) => e.kind === 'launch.lost')).toBe(false);
  });
});

describe('LauncherLeases', () => {
  it('renews every lease after a late sweep: a stalled coordinator read no renewals', () => {
    let now = 0;
    const leases = new LauncherLeases(3_000, () => now);
    leases.renew('j', [0, 1]);
    for (now = 500; now <= 2_500; now += 500) expect(leases.sweep(() => 2)).toEqual([]);
    now = 10_000; // 7.5 s without a sweep
    expect(leases.sweep(() => 2)).toEqual([]);
    for (now = 10_500; now <= 13_000; now += 500) {
      leases.renew('j', [0]);
      expect(leases.sweep(() => 2)).toEqual([]); // rank 1's lease runs from the late sweep on
    }
    now = 13_500;
    expect(leases.sweep(() => 2)).toEqual([{ jobId: 'j', rank: 1, silentMs: 3_500 }]);
    expect(leases.has('j')).toBe(false); // one lapse per job
  });

  it('lets no lease of a suspended job lapse, and starts them all anew at its resume', () => {
    let now = 0;
    const leases = new LauncherLeases(3_000, () => now);
    leases.renew('j', [0, 1]);
    leases.suspend('j');
    for (now = 500; now <= 20_000; now += 500) expect(leases.sweep(() => 2)).toEqual([]);
    now = 20_000;
    leases.resume('j');
    for (now = 20_500; now <= 23_000; now += 500) expect(leases.sweep(() => 2)).toEqual([]);
    now = 23_500;
    expect(leases.sweep(() => 2)).toEqual([{ jobId: 'j', rank: 0, silentMs: 3_500 }]);
  });

  it('forgets a job that no longer runs, and starts a rank never heard from at the arming', () => {
    let now = 0;
    const leases = new LauncherLeases(3_000, () => now);
    leases.renew('gone', [0]);
    leases.renew('j', [0]);
    now = 1_000;
    expect(leases.sweep((id) => (id === 'j' ? 3 : undefined))).toEqual([]);
    expect(leases.has('gone')).toBe(false);
    for (now = 1_500; now <= 3_000; now += 500) {
      leases.renew('j', [0, 2]);
      expect(leases.sweep(() => 3)).toEqual([]);
    }
    now = 3_500;
    expect(leases.sweep(() => 3)).toEqual([{ jobId: 'j', rank: 1, silentMs: 3_500 }]);
  });
});
