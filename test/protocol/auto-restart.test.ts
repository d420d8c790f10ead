// Automatic restarts (ferry run --auto-restart N): a job that loses ranks with
// their host is restarted from its last committed epoch on the live hosts, its
// followers staying attached; a rank that fails on its own is not restarted;
// each restart uses one of N, durably; without a committed epoch, or a
// reachable copy of its images, the job fails saying why. Over the in-memory
// transport with scripted agents: b and c share an image store, a has its own.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RankOutput_Stream, RoundStep, type OperatorReply, type OperatorRequestInit } from '../../src/gen/proto.js';
import { HOST_REJOIN_GRACE_MS } from '../../src/coordinator/coordinator-config.js';
import { coordinatorInboundCodec, operatorReplyCodec } from '../../src/protocol/messages.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { ControlPlaneHarness, QUICK_ROUNDS, settle } from './control-plane-harness.js';
import type { SimulatedRanks } from './simulated-node.js';

let h: ControlPlaneHarness;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);
const STORES: Record<string, string> = { a: 'store-a', b: 'store-bc', c: 'store-bc' };

beforeEach(async () => {
  vi.useFakeTimers();
  h = new ControlPlaneHarness(QUICK_ROUNDS);
  h.startCoordinator();
  for (const host of Object.keys(STORES)) h.startAgent(host, { imageStore: STORES[host] });
  await advance(50);
});

afterEach(async () => {
  await h.close();
  vi.useRealTimers();
});

/** An operator connection following job j: the replies it got. */
function follower(): OperatorReply[] {
  const client = h.hub.connect();
  const got: OperatorReply[] = [];
  let renew: NodeJS.Timeout | undefined;
  client.onMessage((frames) => {
    const r = operatorReplyCodec.decode(frames[0]);
    got.push(r);
    if (r.job_ended) clearInterval(renew); // as ferry run: the first end is the end
  });
  const send = (id: number, req: Omit<OperatorRequestInit, 'version' | 'request_id'>) =>
    client.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: id, ...req } }));
  send(1, { follow_job: { job_id: 'j' } });
  // renewed as ferry run does, so a renewal during the restart is covered too
  renew = setInterval(() => send(1, { follow_job: { job_id: 'j' } }), 2_000);
  cleanups.push(() => clearInterval(renew));
  return got;
}
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((f) => f()));

const notices = (got: OperatorReply[]) => got.filter((r) => r.job_notice).map((r) => r.job_notice!.message);
const ended = (got: OperatorReply[]) => got.filter((r) => r.job_ended);
const job = () => h.catalog!.getJob('j')!;
const rankHosts = () => h.catalog!.listRanks('j').map((r) => `${r.rank}:${r.host}:${r.state}`);

/** Job j: ranks 0,1 on a and 2,3 on b, with `autoRestarts`; checkpointed once unless told not to. */
async function start(autoRestarts: number, checkpoint = true): Promise<void> {
  await h.submit({ world_size: 4, rank_hosts: { 0: 'a', 1: 'a', 2: 'b', 3: 'b' }, auto_restarts: autoRestarts });
  await advance(10);
  if (checkpoint) {
    const cp = await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: false }));
    expect(cp.error).toBeUndefined();
  }
}

/** The agent of `host` stops (its simulated ranks stay as they are). */
async function stopAgent(host: string): Promise<void> {
  await h.crashAgent(host);
}

/** Host b dies with its ranks: its agent stops, no agent comes back within the grace period. */
async function loseB(): Promise<void> {
  await stopAgent('b');
  await advance(1_000);
  expect(h.hostState('b')).toBe('down');
  await advance(HOST_REJOIN_GRACE_MS);
}

describe('a job with automatic restarts that loses a host', () => {
  it("shows its followers the output the ranks print again after the rollback once, stdout and stderr", async () => {
    await start(1, false);
    const got = follower();
    await advance(10);
    const print = (rank: number, text: string, stream = RankOutput_Stream.STDOUT) =>
      h.coordinator!.jobs.output.onRankOutput({ job_id: 'j', rank, stream, data: Buffer.from(text) });
    print(0, '0 before\n');
    print(2, '2 before\n');
    const cp = await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: false }));
    expect(cp.error).toBeUndefined();
    print(0, '0 after\n');
    print(2, '2 af');
    print(2, 'ter\n');
    print(2, '2 warn\n', RankOutput_Stream.STDERR);
    // Rank 0 wrote 10 of its own files after the epoch: its followers hear of 8, and how many more.
    const cut = Array.from({ length: 10 }, (_, i) => ({ rank: 0, path: `/scratch/j/out.${i}`, from_bytes: 700, to_bytes: 300 }));
    h.nodes.get('a')!.steps.scripts.set(RoundStep.FETCH, () => ({ failed: new Map(), filesCutBack: cut }));
    await loseB();
    for (let t = 0; t < 20_000 && job().state !== 'running'; t += 100) await advance(100);
    expect(job().state, job().detail ?? '').toBe('running');
    // Every rank runs again from epoch 1 and prints what it printed after it, then goes on.
    print(0, '0 after\n0 new\n');
    print(2, '2 after\n');
    print(2, '2 warn\n2 warn again\n', RankOutput_Stream.STDERR);
    print(2, '2 new\n');
    await advance(100);
    const shown = (rank: number, stream = RankOutput_Stream.STDOUT) =>
      got.filter((r) => r.job_output?.rank === rank && r.job_output.stream === stream).map((r) => Buffer.from(r.job_output!.data).toString()).join('');
    expect(shown(0)).toBe('0 before\n0 after\n0 new\n');
    expect(shown(2)).toBe('2 before\n2 after\n2 new\n');
    expect(shown(2, RankOutput_Stream.STDERR)).toBe('2 warn\n2 warn again\n');
    expect(notices(got).slice(-10)).toEqual([
      'restarted from epoch 1 on a,c; the output the ranks write again up to where they were (23 bytes) is not shown twice',
      ...cut.slice(0, 8).map((f) => `rank 0 on a: ${f.path}: cut back from 700 to 300 bytes, its size at epoch 1 (written after that checkpoint)`),
      'and 2 more files cut back (ferry events --job j lists them)',
    ]);
  });

  it('shows the output printed again once also when the coordinator restarted since the checkpoint; after a crash, at worst twice', async () => {
    await start(2, false);
    const got = follower();
    await advance(10);
    const print = (rank: number, text: string) => h.coordinator!.jobs.output.onRankOutput({ job_id: 'j', rank, stream: RankOutput_Stream.STDOUT, data: Buffer.from(text) });
    const shown = () => got.filter((r) => r.job_output?.rank === 2).map((r) => Buffer.from(r.job_output!.data).toString()).join('');
    print(2, '2 before\n');
    expect((await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: false }))).error).toBeUndefined();
    print(2, '2 after\n');
    // An upgrade: the coordinator stops and another starts on the same catalog. The follower renews.
    await h.stopCoordinator();
    h.startCoordinator();
    for (let t = 0; t < 5_000 && h.hostState('b') !== 'up'; t += 100) await advance(100);
    await advance(2_500);
    print(2, '2 later\n');
    await loseB();
    for (let t = 0; t < 20_000 && job().state !== 'running'; t += 100) await advance(100);
    expect(job().state, job().detail ?? '').toBe('running');
    print(2, '2 after\n2 later\n2 new\n'); // the restored rank prints again what it printed after epoch 1
    await advance(100);
    expect(shown()).toBe('2 before\n2 after\n2 later\n2 new\n');
    expect(notices(got).at(-1)).toMatch(/; the output the ranks write again up to where they were \(16 bytes\) is not shown twice$/);

    // A crash loses the counts of the last second: that output is shown twice, nothing is hidden.
    expect((await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: false }))).error).toBeUndefined();
    print(2, '2 saved\n');
    await advance(1_500); // counted in the catalog
    print(2, '2 unsaved\n');
    await h.crashCoordinator();
    h.startCoordinator();
    h.startAgent('b', { imageStore: STORES.b }); // back, and it shares c's image store
    for (let t = 0; t < 5_000 && !(h.hostState('c') === 'up' && h.hostState('b') === 'up'); t += 100) await advance(100);
    await advance(2_500);
    await stopAgent('c');
    await advance(1_000 + HOST_REJOIN_GRACE_MS);
    for (let t = 0; t < 20_000 && job().state !== 'running'; t += 100) await advance(100);
    expect(job().state, job().detail ?? '').toBe('running');
    print(2, '2 saved\n2 unsaved\n2 newer\n');
    await advance(100);
    expect(shown()).toBe('2 before\n2 after\n2 later\n2 new\n2 saved\n2 unsaved\n2 unsaved\n2 newer\n');
  });

  it("passes on all a restored rank prints after an operator's restart of the failed job: its followers are new", async () => {
    await start(0, false);
    follower(); // as the job's ferry run, which ends with the job
    await advance(10);
    const print = (rank: number, text: string) => h.coordinator!.jobs.output.onRankOutput({ job_id: 'j', rank, stream: RankOutput_Stream.STDOUT, data: Buffer.from(text) });
    const cp = await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: false }));
    expect(cp.error).toBeUndefined();
    print(0, '0 after\n');
    await loseB();
    expect(job().state).toBe('failed');
    const restart = await settle(h.coordinator!.moves.restart('j', { hosts: ['a', 'c'] }));
    expect(restart.error).toBeUndefined();
    expect(restart.value!.output_replay_known).toBe(false);
    const got = follower(); // ferry attach
    await advance(10);
    print(0, '0 after\n0 new\n');
    await advance(100);
    expect(got.filter((r) => r.job_output?.rank === 0).map((r) => Buffer.from(r.job_output!.data).toString()).join('')).toBe('0 after\n0 new\n');
  });

  it('is restarted when its host comes back within the grace without its ranks (the host restarted)', async () => {
    await start(1);
    const got = follower();
    await advance(10);
    const onB = h.nodes.get('b')!.ranks;
    await stopAgent('b');
    onB.vanish('j', 2);
    onB.vanish('j', 3);
    await advance(1_000);
    h.startAgent('b', { imageStore: STORES.b }, onB); // back after the reboot, well within the grace
    for (let t = 0; t < 20_000 && !(job().state === 'running' && job().autoRestarts === 0); t += 100) await advance(100);
    expect([job().state, job().autoRestarts]).toEqual(['running', 0]); // (the one restart it had is used)
    expect(notices(got)[0]).toMatch(/^rank 2 on b killed by LOST \(the rank ended while its agent was down and left no exit status\); restarting it from epoch 1/);
  });

  it('is restarted from its last epoch on the live hosts; its followers stay and are told', async () => {
    await start(2);
    const got = follower();
    // The restart's FETCH takes 2.5 s: a renewal of the follow in that time must not end it.
    for (const host of ['a', 'c']) {
      h.nodes.get(host)!.steps.scripts.set(RoundStep.FETCH, () => new Promise((res) => setTimeout(() => res({ failed: new Map(), bytesFetched: 0 }), 2_500)));
    }
    // Something else holds the job when it fails: the restart waits its turn, the job failed meanwhile,
    // and renewals of the follow in that time must not end it either.
    const release = h.coordinator!.operations.begin('j', () => 'the test holds the job');
    await loseB();
    expect(job().state).toBe('failed');
    expect(h.coordinator!.jobs.jobInfo('j').auto_restart_due).toBe(true); // ferry job says so
    await advance(5_000);
    expect(job().state).toBe('failed');
    release();
    for (let t = 0; t < 20_000 && job().state !== 'running'; t += 100) await advance(100);
    expect(job().state, job().detail ?? '').toBe('running');
    expect(job().autoRestarts).toBe(1);
    // Ranks 2 and 3 read their images in b's store, which c shares; nothing ran on b.
    expect(rankHosts().filter((r) => !r.startsWith('0:') && !r.startsWith('1:')).map((r) => r.split(':')[1])).toEqual(['c', 'c']);
    expect(h.nodes.get('c')!.steps.stepsSeen()).toEqual(expect.arrayContaining([RoundStep.RESTORE, RoundStep.RESUME]));
    const kinds = h.catalog!.listEvents({ limit: 500 }).map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['job.end', 'job.auto-restart', 'restart.done', 'job.auto-restarted']));
    expect(ended(got)).toEqual([]);
    expect(notices(got)).toEqual([
      'ranks 2,3 lost: host b is down and did not come back within 30000 ms; restarting it from epoch 1 on the live hosts (automatic restarts left: 1)',
      'restarted from epoch 1 on a,c; the output the ranks write again up to where they were (0 bytes) is not shown twice',
    ]);

    // The restarted job ends as any job does, and its followers hear it.
    for (const r of h.catalog!.listRanks('j')) h.nodes.get(r.host)!.ranks.exit('j', r.rank, 0);
    await advance(2_000);
    expect(job().state).toBe('succeeded');
    expect(ended(got).map((r) => r.job_ended!.job!.id)).toEqual(['j']);
  });

  it("stops the restored ranks again when the job's launcher is suspended (Slurm suspend), and continues them at its SIGCONT", async () => {
    await start(1);
    h.coordinator!.jobs.launchers.suspended('j', true); // as a rank-exec's SIGTSTP does (launched-jobs.ts)
    await h.coordinator!.jobs.signal('j', 'SIGTSTP');
    const stopped = () => h.catalog!.listRanks('j').filter((r) => h.nodes.get(r.host)!.ranks.stopped.has(`j/${r.rank}`)).map((r) => r.rank);
    expect(stopped()).toEqual([0, 1, 2, 3]);
    await loseB();
    // The other ranks, stopped, are continued to take the SIGTERM that ends the failed run: no wait for the SIGKILL.
    await advance(1_000);
    const exits = h.catalog!.listEvents({ jobId: 'j', limit: 500 }).filter((e) => e.kind === 'rank.exit' && / on a /.test(e.message));
    expect(exits.map((e) => e.message)).toEqual(['job j rank 0 on a exited with status 143', 'job j rank 1 on a exited with status 143']);
    for (let t = 0; t < 20_000 && job().state !== 'running'; t += 100) await advance(100);
    expect(job().state, job().detail ?? '').toBe('running');
    await advance(100);
    expect(rankHosts().map((r) => r.split(':')[1])).toEqual(['a', 'a', 'c', 'c']);
    expect(stopped()).toEqual([0, 1, 2, 3]); // restored, and stopped with their launcher again
    expect(job().launcherSuspended).toBe(true);
    h.coordinator!.jobs.launchers.suspended('j', false);
    await h.coordinator!.jobs.signal('j', 'SIGCONT');
    expect(stopped()).toEqual([]);
  });

  it('keeps the ranks whose hosts are up where they were; only the lost ones move', async () => {
    await h.submit({ world_size: 4, rank_hosts: { 0: 'c', 1: 'a', 2: 'b', 3: 'b' }, auto_restarts: 1 });
    await advance(10);
    expect((await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: false }))).error).toBeUndefined();
    await loseB();
    for (let t = 0; t < 20_000 && job().state !== 'running'; t += 100) await advance(100);
    expect(job().state, job().detail ?? '').toBe('running');
    expect(rankHosts()).toEqual(['0:c:running', '1:a:running', '2:a:running', '3:c:running']);
  });

  it('is restarted also when its ranks elsewhere died first of the lost connections', async () => {
    await start(1);
    await stopAgent('b');
    await advance(1_000);
    // The ranks on a see their peers' sockets close: each ends, naming the rank it lost.
    h.nodes.get('a')!.ranks.exit('j', 0, 1, 'lost the connection to rank 2');
    h.nodes.get('a')!.ranks.exit('j', 1, 1, 'lost the connection to rank 3');
    await advance(HOST_REJOIN_GRACE_MS);
    for (let t = 0; t < 20_000 && job().state !== 'running'; t += 100) await advance(100);
    expect(job().state, job().detail ?? '').toBe('running');
    expect(job().autoRestarts).toBe(0);
    const restart = h.catalog!.listEvents({ limit: 500 }).find((e) => e.kind === 'job.auto-restart');
    expect(restart?.message).toMatch(/^job j: ranks 2,3 lost: host b is down/);
  });

  it("is restarted also when a rank elsewhere died of a lost connection before the host was seen down, and the job's SIGTERM ended the others", async () => {
    await start(1);
    // Host b dies; before its heartbeats are missed, rank 1 on a has seen its peer's socket close and
    // ends (secondary). The job is failing: its SIGTERM ends rank 0, which lost no peer (143). Soak seed 128.
    await stopAgent('b');
    h.nodes.get('a')!.ranks.exit('j', 1, 1, 'lost the connection to rank 3');
    await advance(10);
    expect(h.hostState('b')).toBe('up');
    await advance(500); // (rank 0's SIGTERM death)
    expect(rankHosts().slice(0, 2)).toEqual(['0:a:exited', '1:a:exited']);
    await advance(1_000 + HOST_REJOIN_GRACE_MS);
    for (let t = 0; t < 20_000 && job().state !== 'running'; t += 100) await advance(100);
    expect(job().state, job().detail ?? '').toBe('running');
    const restart = h.catalog!.listEvents({ limit: 500 }).find((e) => e.kind === 'job.auto-restart');
    expect(restart?.message).toMatch(/^job j: ranks 2,3 lost: host b is down/);
  });

  it('is not restarted when the operator cancels it before its restart starts', async () => {
    await start(1);
    const got = follower();
    const release = h.coordinator!.operations.begin('j', () => 'the test holds the job');
    await loseB();
    expect(job().state).toBe('failed');
    await h.coordinator!.jobs.signal('j', 'SIGINT'); // Ctrl-C on its ferry run
    release();
    await advance(2_000);
    expect(job().state).toBe('failed');
    expect(job().detail).toMatch(/^ranks 2,3 lost: host b is down .*; no automatic restart: cancelled by the operator \(SIGINT\)$/);
    expect(job().autoRestarts).toBe(1);
    expect(ended(got)).toHaveLength(1);
    expect(h.nodes.get('c')!.steps.stepsSeen()).not.toContain(RoundStep.RESTORE);
  });

  it('ends cancelled when the operator cancels it while its ranks are being restored', async () => {
    await start(1);
    const got = follower();
    for (const host of ['a', 'c']) {
      h.nodes.get(host)!.steps.scripts.set(RoundStep.FETCH, () => new Promise((res) => setTimeout(() => res({ failed: new Map(), bytesFetched: 0 }), 2_500)));
    }
    await loseB();
    for (let t = 0; t < 5_000 && job().state !== 'pending'; t += 100) await advance(100);
    expect(job().state).toBe('pending'); // fetching
    await h.coordinator!.jobs.signal('j', 'SIGINT'); // Ctrl-C on its ferry run
    for (let t = 0; t < 20_000 && ended(got).length === 0; t += 100) await advance(100);
    expect(job().state).toBe('cancelled');
    expect(job().detail).toBe('cancelled by the operator (SIGINT)');
    expect(ended(got)).toHaveLength(1);
  });

  it('is restarted by the next coordinator when the one that saw the loss died before the restart started', async () => {
    await start(2);
    h.coordinator!.operations.begin('j', () => 'the test holds the job'); // the restart waits behind it
    await loseB();
    expect(job().state).toBe('failed');
    expect(job().autoRestartDue).toBe(true);
    await h.crashCoordinator();
    h.startCoordinator();
    // The agents re-register within a heartbeat; the restart starts a heartbeat timeout after the start.
    for (let t = 0; t < 20_000 && job().state !== 'running'; t += 100) await advance(100);
    expect(job().state, job().detail ?? '').toBe('running');
    expect(job().autoRestarts).toBe(1);
    expect(job().autoRestartDue).toBe(false);
    expect(h.coordinator!.jobs.jobInfo('j').auto_restart_due).toBe(false);
    expect(rankHosts()).toEqual(['0:a:running', '1:a:running', '2:c:running', '3:c:running']);
  });

  it('fails, saying why, when the lost host held the only copy of the images', async () => {
    await h.submit({ world_size: 4, rank_hosts: { 0: 'a', 1: 'a', 2: 'c', 3: 'c' }, auto_restarts: 1 });
    await advance(10);
    expect((await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: false }))).error).toBeUndefined();
    // a dies: its ranks' images are in a's own store, which no other host sees
    const got = follower();
    await stopAgent('a');
    await advance(1_000 + HOST_REJOIN_GRACE_MS);
    for (let t = 0; t < 20_000 && ended(got).length === 0; t += 100) await advance(100);
    expect(job().state).toBe('failed');
    expect(job().detail).toMatch(/^ranks 0,1 lost: host a is down .*; the automatic restart from epoch 1 failed: epoch 1 of job j: .*host a.*nothing was started/);
    expect(job().autoRestarts).toBe(0);
    expect(ended(got)).toHaveLength(1);
    expect(ended(got)[0]!.job_ended!.job!.detail).toBe(job().detail);
    expect(h.catalog!.listEvents({ limit: 500 }).map((e) => e.kind)).toContain('job.auto-restart-failed');
  });

  it('fails without a restart when the job has no committed epoch', async () => {
    await start(3, false);
    const got = follower();
    await loseB();
    await advance(2_000);
    expect(job().state).toBe('failed');
    expect(job().detail).toMatch(/lost: host b is down .*; no automatic restart: the job has no committed checkpoint$/);
    expect(job().autoRestarts).toBe(3);
    expect(ended(got)).toHaveLength(1);
  });

  it('fails without a restart when it has none left, and `ferry checkpoint --auto-restart` sets them', async () => {
    await start(1);
    h.coordinator!.autoRestarts.set('j', 0);
    await loseB();
    await advance(2_000);
    expect(job().state).toBe('failed');
    expect(job().detail).toMatch(/^ranks 2,3 lost: host b is down and did not come back within 30000 ms$/);
    expect(h.nodes.get('c')!.steps.stepsSeen()).not.toContain(RoundStep.RESTORE);
  });
});

describe('a host cut off past its grace period that comes back with its ranks alive', () => {
  /** b's agent stops, its (simulated) ranks live on; returns them, for b's next agent. */
  async function cutOffB(): Promise<SimulatedRanks> {
    const ranksOfB = h.nodes.get('b')!.ranks;
    await stopAgent('b');
    await advance(1_000 + HOST_REJOIN_GRACE_MS);
    return ranksOfB;
  }
  const staleEvents = () => h.catalog!.listEvents({ limit: 500 }).filter((e) => e.kind === 'rank.stale-copy').map((e) => e.message);

  it('has those copies killed when the job was restarted elsewhere meanwhile; the restarted ranks run on', async () => {
    await start(1);
    const ranksOfB = await cutOffB();
    for (let t = 0; t < 20_000 && job().state !== 'running'; t += 100) await advance(100);
    expect(job().state, job().detail ?? '').toBe('running');
    expect(rankHosts()).toEqual(['0:a:running', '1:a:running', '2:c:running', '3:c:running']);
    expect([...ranksOfB.live.keys()]).toEqual(['j/2', 'j/3']);

    h.startAgent('b', { imageStore: STORES.b }, ranksOfB);
    await advance(1_000);
    expect([...ranksOfB.live.keys()]).toEqual([]); // killed
    expect(rankHosts()).toEqual(['0:a:running', '1:a:running', '2:c:running', '3:c:running']);
    expect(job().state).toBe('running');
    expect(staleEvents()).toEqual([
      'job j rank 2: host b came back with a copy of it alive, but the rank runs on c; killing that copy',
      'job j rank 3: host b came back with a copy of it alive, but the rank runs on c; killing that copy',
    ]);
    expect(h.nodes.get('b')!.steps.stepsSeen()).not.toContain(RoundStep.RESUME);
  });

  it('has those copies killed when it comes back as the job fails of it; the late exits of the killed copies do not end the ranks restored there', async () => {
    await start(1);
    const ranksOfB = h.nodes.get('b')!.ranks;
    const copies = [...ranksOfB.live.values()].map((p) => p.pid);
    const killsFor: (number | undefined)[] = [];
    const signalRanks = ranksOfB.signalRanks.bind(ranksOfB);
    ranksOfB.signalRanks = (jobId, ranks, signal, onlyPid) => (signal === 'SIGKILL' && killsFor.push(onlyPid), signalRanks(jobId, ranks, signal, onlyPid));
    await stopAgent('b');
    // Back after the grace ran out, while the ranks elsewhere are being stopped: the restart that follows finds b up.
    for (let t = 0; t < HOST_REJOIN_GRACE_MS + 5_000 && job().ending === null; t += 10) await advance(10);
    expect(job().ending?.detail).toMatch(/^ranks 2,3 lost/);
    h.startAgent('b', { imageStore: STORES.b }, ranksOfB);
    for (let t = 0; t < 20_000 && job().state !== 'running'; t += 100) await advance(100);
    await advance(3_000); // the exits of the copies killed on b reach the coordinator after the restart
    expect(staleEvents()).toHaveLength(2);
    // each kill names the copy's pid, so one arriving after the restore could not end the restored copy
    expect(killsFor.sort()).toEqual(copies.sort());
    expect(rankHosts()).toEqual(['0:a:running', '1:a:running', '2:b:running', '3:b:running']);
    expect([...ranksOfB.live.keys()].sort()).toEqual(['j/2', 'j/3']); // the restored copies
    expect(job().state, job().detail ?? '').toBe('running');
    expect(h.catalog!.listEvents({ limit: 500 }).filter((e) => e.kind === 'rank.old-copy-exit').map((e) => e.message)).toEqual([
      expect.stringMatching(/^job j rank 2: an earlier copy of it on b ended \(pid \d+; the rank runs on as pid \d+\)$/),
      expect.stringMatching(/^job j rank 3: an earlier copy of it on b ended \(pid \d+; the rank runs on as pid \d+\)$/),
    ]);
  });

  it('has those copies killed when the job failed meanwhile', async () => {
    await start(0);
    const ranksOfB = await cutOffB();
    await advance(2_000);
    expect(job().state).toBe('failed');
    h.startAgent('b', { imageStore: STORES.b }, ranksOfB);
    await advance(1_000);
    expect([...ranksOfB.live.keys()]).toEqual([]);
    expect(staleEvents()).toHaveLength(2);
    expect(job().state).toBe('failed');
  });
});

describe('a job with automatic restarts whose rank fails on its own', () => {
  it('is not restarted: the program would fail again', async () => {
    await start(2);
    const got = follower();
    h.nodes.get('b')!.ranks.exit('j', 2, 3);
    await advance(2_000);
    for (const r of h.catalog!.listRanks('j')) if (r.state !== 'exited') h.nodes.get(r.host)!.ranks.exit('j', r.rank, 143);
    await advance(2_000);
    expect(job().state).toBe('failed');
    expect(job().autoRestarts).toBe(2);
    expect(ended(got)).toHaveLength(1);
    expect(h.catalog!.listEvents({ limit: 500 }).map((e) => e.kind)).not.toContain('job.auto-restart');
  });
});

describe('a restarted job with periodic checkpoints', () => {
  it('goes on checkpointing at its interval', async () => {
    await h.submit({ world_size: 2, rank_hosts: { 0: 'a', 1: 'c' }, checkpoint_every_ms: 5_000 });
    await advance(5_500);
    const committed = () => h.catalog!.listEpochs('j').filter((e) => e.state === 'committed').map((e) => e.epoch);
    expect(committed()).toEqual([1]);
    expect((await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }))).error).toBeUndefined();
    await advance(6_000); // a tick while it is stopped: no checkpoint, and no next tick
    expect(job().state).toBe('stopped');
    expect(committed().at(-1)).toBe(2);
    expect((await settle(h.coordinator!.moves.restart('j', {}))).error).toBeUndefined();
    expect(job().state).toBe('running');
    await advance(5_500);
    expect(committed().at(-1)).toBe(3); // a new one after the restart (retention keeps the newest two)
  });
});
