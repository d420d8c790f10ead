// A host that goes down with running ranks (its agent crashed; the ranks may
// live on) gets a grace period: an agent that comes back with the ranks alive
// keeps their job running; one that comes back without them, or no agent at
// all within the grace period, fails the job naming the host and the ranks.
// An epoch in progress on that host still aborts and the other ranks resume.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RoundStep } from '../../src/gen/proto.js';
import { FerryError } from '../../src/common/ferry-error.js';
import type { RankChannelServer } from '../../src/agent/rank-channel.js';
import { HOST_REJOIN_GRACE_MS } from '../../src/coordinator/coordinator-config.js';
import { ControlPlaneHarness, settle } from './control-plane-harness.js';
import { failRanks } from './simulated-node.js';
import { waitingChannel } from './waiting-rank-channel.js';

let h: ControlPlaneHarness;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

beforeEach(async () => {
  vi.useFakeTimers();
  h = new ControlPlaneHarness({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 500, flushTimeoutMs: 2_000, dumpTimeoutMs: 60_000, resumeTimeoutMs: 2_000 });
  h.startCoordinator();
  h.startAgent('a');
  h.startAgent('b');
  await advance(50);
  await h.submit({ world_size: 4, hosts: ['a', 'b'] });
  await advance(10);
});

afterEach(async () => {
  await h.close();
  vi.useRealTimers();
});

/** The agent of `host` dies; its ranks (simulated) keep running. */
async function crashAgent(host: string): Promise<void> {
  await h.crashAgent(host);
}

/** Runs a checkpoint (`stop`: --stop) whose `step` hangs on host b, crashes b's agent in it, and waits for the checkpoint to settle. */
async function checkpointLosingB(step: RoundStep, stop = false): Promise<{ error: unknown }> {
  h.nodes.get('b')!.steps.scripts.set(step, () => 'hang');
  let error: unknown;
  let done = false;
  h.coordinator!.checkpoints.checkpoint('j', { stop }).then(
    () => (done = true),
    (e) => ((error = e), (done = true)),
  );
  await advance(300);
  expect(h.nodes.get('b')!.steps.stepsSeen().at(-1)).toBe(step);
  await crashAgent('b');
  for (let t = 0; !done && t < 10_000; t += 100) await advance(100);
  expect(done).toBe(true);
  return { error };
}

const job = () => h.catalog!.getJob('j')!;
const rankStates = () => h.catalog!.listRanks('j').map((r) => [r.rank, r.host, r.state]);

describe('a host that goes down with running ranks', () => {
  it('keeps the job running when its agent comes back with the ranks alive; the job then ends normally', async () => {
    const ranksOfB = h.nodes.get('b')!.ranks;
    expect([...ranksOfB.live.keys()]).toEqual(['j/2', 'j/3']);
    await crashAgent('b');
    await advance(1_000);
    expect(h.hostState('b')).toBe('down');
    expect(job().state).toBe('running');
    expect(rankStates()).toEqual([[0, 'a', 'running'], [1, 'a', 'running'], [2, 'b', 'running'], [3, 'b', 'running']]);

    h.startAgent('b', {}, ranksOfB); // a restarted agent that re-adopted ranks 2 and 3
    await advance(200);
    expect(h.hostState('b')).toBe('up');
    await advance(HOST_REJOIN_GRACE_MS + 1_000); // the grace timer is gone: nothing fails later
    expect(job().state).toBe('running');
    const kinds = h.catalog!.listEvents({ limit: 200 }).map((e) => e.kind);
    expect(kinds).toContain('job.host-down');
    expect(kinds).toContain('job.host-back');

    for (const [host, rank] of [['a', 0], ['a', 1], ['b', 2], ['b', 3]] as const) h.nodes.get(host)!.ranks.exit('j', rank, 0);
    await advance(2_000);
    expect(job().state).toBe('succeeded');
    expect(job().exitCode).toBe(0);
  });

  it('fails the job naming the ranks when the agent comes back without them', async () => {
    await crashAgent('b');
    await advance(1_000);
    expect(h.hostState('b')).toBe('down');
    h.startAgent('b'); // a fresh agent: the ranks died with the host
    await advance(200);
    expect(h.hostState('b')).toBe('up');
    await advance(2_000); // ranks 0 and 1 die of the SIGTERM that follows the failure
    expect(job().state).toBe('failed');
    expect(job().detail).toBe('ranks 2,3 lost: the agent on host b came back without them');
    expect(rankStates().map((r) => r[2])).toEqual(['exited', 'exited', 'exited', 'exited']);
  });

  it('learns from the agent that comes back how a rank that ended while no agent ran ended', async () => {
    const ranksOfB = h.nodes.get('b')!.ranks;
    await crashAgent('b');
    await advance(1_000);
    ranksOfB.exit('j', 2, 0); // done while its agent was away: the rank table keeps its status
    ranksOfB.exit('j', 3, 5);
    await advance(1_000);
    expect(job().state).toBe('running');
    h.startAgent('b', {}, ranksOfB);
    await advance(200);
    expect(h.hostState('b')).toBe('up');
    await advance(2_000);
    expect(job().state).toBe('failed');
    expect(job().exitCode).toBe(5);
    expect(job().detail).toBe('rank 3 on b exited with status 5');
    expect(h.catalog!.listRanks('j').filter((r) => r.host === 'b').map((r) => [r.rank, r.state, r.exitCode])).toEqual([
      [2, 'exited', 0],
      [3, 'exited', 5],
    ]);
  });

  it('fails the job naming the host and the ranks when the grace period runs out', async () => {
    await crashAgent('b');
    await advance(1_000);
    await advance(HOST_REJOIN_GRACE_MS - 2_000);
    expect(job().state).toBe('running');
    await advance(3_000);
    expect(job().state).toBe('failed');
    expect(job().exitCode).toBe(1);
    expect(job().detail).toBe(`ranks 2,3 lost: host b is down and did not come back within ${HOST_REJOIN_GRACE_MS} ms`);
    const b = h.catalog!.listRanks('j').filter((r) => r.host === 'b');
    expect(b.map((r) => [r.state, r.signal])).toEqual([['exited', 'HOST_DOWN'], ['exited', 'HOST_DOWN']]);
  });

  it('aborts an epoch whose DUMP was on the crashed agent; the other ranks resume and the job runs on when it is back', async () => {
    const ranksOfB = h.nodes.get('b')!.ranks;
    const { error } = await checkpointLosingB(RoundStep.DUMP);
    expect(error).toBeInstanceOf(FerryError);
    expect((error as Error).message).toMatch(/epoch 1\) aborted: DUMP failed: ranks 2,3: host b: host b went down/);
    expect(h.nodes.get('a')!.steps.stepsSeen()).toEqual([RoundStep.PREPARE, RoundStep.DUMP, RoundStep.RESUME, RoundStep.DISCARD]);
    expect(h.catalog!.getEpoch('j', 1)!.state).toBe('aborted');
    expect(job().state).toBe('running');

    h.startAgent('b', {}, ranksOfB);
    await advance(HOST_REJOIN_GRACE_MS + 1_000);
    expect(job().state).toBe('running');
    expect(rankStates().map((r) => r[2])).toEqual(['running', 'running', 'running', 'running']);
  });

  it('holds every rank when an agent is lost during PREPARE, until it is back: then the flush is finished everywhere and only then does any rank resume', async () => {
    // Ranks 0,1 flushed and wait for the end-of-channel markers of ranks 2,3, whose agent died before it asked them.
    const ranksOfB = h.nodes.get('b')!.ranks;
    const { error } = await checkpointLosingB(RoundStep.PREPARE);
    expect((error as Error).message).toMatch(
      /epoch 1\) aborted: PREPARE failed: ranks 2,3: host b: .*The job's ranks wait, flushed, until the agent on b is back to finish the flush \(within \d+ ms, or the job fails\), then resume; there is no committed checkpoint yet\./,
    );
    expect(h.nodes.get('a')!.steps.stepsSeen()).toEqual([RoundStep.PREPARE]); // not woken: b's ranks have not flushed
    expect(job().state).toBe('running');
    // Nothing else runs on the job meanwhile: a checkpoint or a migration is refused, saying why.
    await expect(h.coordinator!.checkpoints.checkpoint('j', { stop: false })).rejects.toThrow(
      'job j has ranks 2,3 on host b, which is down: cannot take a checkpoint until its agent is back (within 30000 ms, or the job fails of it)',
    );
    await expect(h.coordinator!.moves.migrate('j', new Map([[0, 'b']]))).rejects.toThrow(/host "b" is down|on host b, which is down: cannot migrate its ranks/);
    // (the job is held as well: what waits for b waits for the flush too)
    expect(h.coordinator!.operations.describeRunning()).toEqual(['job j: its ranks wait for the agent on b to finish the flush of checkpoint epoch 1']);
    await advance(2_000);
    expect(h.nodes.get('a')!.steps.stepsSeen()).toEqual([RoundStep.PREPARE]);

    h.startAgent('b', {}, ranksOfB);
    await advance(1_000);
    // Asked again everywhere (a answers at once for ranks flushed already), then every rank resumes.
    expect(h.nodes.get('a')!.steps.stepsSeen()).toEqual([RoundStep.PREPARE, RoundStep.PREPARE, RoundStep.RESUME]);
    expect(h.nodes.get('b')!.steps.seen.map((s) => [s.step, s.ranks, s.epoch])).toEqual([
      [RoundStep.PREPARE, [2, 3], 1],
      [RoundStep.RESUME, [2, 3], 1],
    ]);
    expect(h.catalog!.listEvents({ limit: 200 }).map((e) => e.message)).toContain('job j: checkpoint epoch 1: the lost agents are back, every rank flushed and was resumed');
    await advance(HOST_REJOIN_GRACE_MS + 1_000);
    expect(job().state).toBe('running');
    // and the next checkpoint commits
    await expect(h.coordinator!.checkpoints.checkpoint('j', { stop: false })).resolves.toMatchObject({ epoch: { epoch: 2, state: 'committed' } });
  });

  it('fails the job when the agent lost during PREPARE does not come back; no rank was woken before', async () => {
    await checkpointLosingB(RoundStep.PREPARE);
    await advance(HOST_REJOIN_GRACE_MS + 1_000);
    expect(job().state).toBe('failed');
    expect(job().detail).toBe(`ranks 2,3 lost: host b is down and did not come back within ${HOST_REJOIN_GRACE_MS} ms`);
    expect(h.nodes.get('a')!.steps.stepsSeen()).toEqual([RoundStep.PREPARE]);
  });

  it('keeps the job when an agent is lost during the RESUME before STORE: the epoch aborts, and the agent that comes back gets DISCARD and RESUME', async () => {
    const ranksOfB = h.nodes.get('b')!.ranks;
    const { error } = await checkpointLosingB(RoundStep.RESUME);
    // b cannot store what it dumped: the epoch aborts; a's ranks run on, b's are owed the RESUME.
    expect((error as Error).message).toMatch(
      /epoch 1\) aborted: STORE failed: ranks 2,3: host b: .*Ranks on hosts that were lost resume when their agents are back; there is no committed checkpoint yet\./,
    );
    expect(h.catalog!.getEpoch('j', 1)!.state).toBe('aborted');
    expect(job().state).toBe('running');
    const owed = h.catalog!.listEvents({ limit: 200 }).find((e) => e.kind === 'job.resume-owed');
    expect(owed?.message).toMatch(/epoch 1 dumped: the agent on host b was lost before it confirmed RESUME of ranks 2,3/);

    // The agent that comes back (re-adopting ranks 2 and 3, still flushed) removes their images and resumes them.
    h.startAgent('b', {}, ranksOfB);
    await advance(500);
    expect(h.nodes.get('b')!.steps.seen.map((s) => [s.step, s.ranks, s.epoch])).toEqual([
      [RoundStep.DISCARD, [2, 3], 1],
      [RoundStep.RESUME, [2, 3], 1],
    ]);
    await advance(HOST_REJOIN_GRACE_MS + 1_000);
    expect(job().state).toBe('running');
    expect(h.catalog!.listEvents({ limit: 200 }).map((e) => e.kind)).toContain('job.resumed-late');
  });

  it('fails the job naming the host when no agent comes back after a RESUME it lost', async () => {
    await checkpointLosingB(RoundStep.RESUME);
    expect(job().state).toBe('running');
    await advance(HOST_REJOIN_GRACE_MS + 1_000);
    expect(job().state).toBe('failed');
    expect(job().detail).toBe(`ranks 2,3 lost: host b is down and did not come back within ${HOST_REJOIN_GRACE_MS} ms`);
  });

  it('stops the ranks of a checkpoint --stop when the agent that lost its STOP comes back with them: the job ends stopped at the epoch', async () => {
    const ranksOfB = h.nodes.get('b')!.ranks;
    const { error } = await checkpointLosingB(RoundStep.STOP, true);
    expect(error).toBeUndefined(); // the checkpoint succeeded: its epoch is committed
    expect(h.catalog!.getEpoch('j', 1)!.state).toBe('committed');
    expect(job().state).toBe('running'); // ranks 2 and 3 have not ended yet
    const owed = h.catalog!.listEvents({ limit: 200 }).find((e) => e.kind === 'job.stop-owed');
    expect(owed?.message).toMatch(/epoch 1 committed: the agent on host b was lost before it confirmed STOP of ranks 2,3; they stop when an agent is back there/);
    await expect(h.coordinator!.moves.migrate('j', new Map([[0, 'b']]))).rejects.toThrow('job j is being stopped after checkpoint epoch 1: nothing to migrate');

    // The agent that comes back (re-adopting them, flushed) is asked to STOP them while it registers;
    // their exits, which come before its registration is answered, still reach the coordinator.
    h.startAgent('b', {}, ranksOfB);
    await advance(1_000);
    expect(h.nodes.get('b')!.steps.seen.map((x) => [x.step, x.dumpRanks])).toEqual([[RoundStep.STOP, [2, 3]]]);
    expect([...ranksOfB.live.keys()]).toEqual([]);
    expect(job()).toMatchObject({ state: 'stopped', detail: 'stopped after checkpoint epoch 1; ferry restart j continues it' });
    expect((await settle(h.coordinator!.moves.restart('j', {}))).error).toBeUndefined();
    expect(job().state).toBe('running');
  });

  it('ends a checkpoint --stop whose STOP was lost with its host stopped, not failed, when no agent comes back', async () => {
    await checkpointLosingB(RoundStep.STOP, true);
    await advance(HOST_REJOIN_GRACE_MS + 1_000);
    expect(job()).toMatchObject({ state: 'stopped', detail: 'stopped after checkpoint epoch 1; ferry restart j continues it' });
    expect(h.catalog!.getEpoch('j', 1)!.state).toBe('committed');
  });

  it('ends a checkpoint --stop stopped when the agent that lost its STOP comes back without the ranks (it had killed them)', async () => {
    await checkpointLosingB(RoundStep.STOP, true);
    h.startAgent('b'); // a fresh agent: the ranks are gone
    await advance(1_000);
    expect(job()).toMatchObject({ state: 'stopped', detail: 'stopped after checkpoint epoch 1; ferry restart j continues it' });
  });

  it('stops the ranks a host brings back of a job that failed while it was away: the SIGTERM had missed them', async () => {
    const ranksOfB = h.nodes.get('b')!.ranks;
    await crashAgent('b');
    await advance(1_000);
    h.nodes.get('a')!.ranks.exit('j', 0, 3); // the job fails; rank 1 dies of the SIGTERM that follows, ranks 2,3 are out of reach
    await advance(1_000);
    expect(rankStates().map((r) => r[2])).toEqual(['exited', 'exited', 'running', 'running']);
    h.startAgent('b', {}, ranksOfB);
    await advance(1_000);
    expect([...ranksOfB.live.keys()]).toEqual([]);
    expect(job()).toMatchObject({ state: 'failed', exitCode: 3, detail: 'rank 0 on a exited with status 3' });
    expect(h.catalog!.listEvents({ limit: 200 }).map((e) => e.message)).toContain('job j: ranks 2,3 on host b run on; stopping them, as the job is ending');
  });

  it('kills the ranks a host brings back of a job deleted while it was away; then the job leaves the catalog', async () => {
    const ranksOfB = h.nodes.get('b')!.ranks;
    await crashAgent('b');
    await advance(1_000 + HOST_REJOIN_GRACE_MS); // given up: the job fails (b's agent fences them, out of reach)
    expect(job().state).toBe('failed');
    expect((await settle(h.coordinator!.retention.deleteJob('j', false))).error).toBeUndefined();
    expect(h.catalog!.deletedJobs()).toEqual(['j']); // it waits for b
    h.startAgent('b', {}, ranksOfB);
    await advance(1_000);
    expect([...ranksOfB.live.keys()]).toEqual([]);
    expect(ranksOfB.signalled).toEqual(expect.arrayContaining(['j/2 SIGKILL', 'j/3 SIGKILL']));
    expect(h.catalog!.listEvents({ limit: 200 }).map((e) => e.message)).toContain('job j rank 2: host b came back with a copy of it alive, but the job was deleted; killing that copy');
    expect(h.catalog!.deletedJobs()).toEqual([]);
  });

  it('still fails the job when RESUME fails for another reason than a lost agent', async () => {
    h.nodes.get('b')!.steps.scripts.set(RoundStep.RESUME, () => failRanks([2], 'rank 2 would not wake'));
    await h.coordinator!.checkpoints.checkpoint('j', { stop: false });
    await advance(2_000);
    expect(job().state).toBe('failed');
    expect(job().detail).toMatch(/after committing epoch 1: RESUME failed: rank 2: host b: rank 2 would not wake/);
  });

  it('fails what was asked of an agent that is replaced before it is seen down', async () => {
    const ranksOfB = h.nodes.get('b')!.ranks;
    h.nodes.get('b')!.steps.scripts.set(RoundStep.DUMP, () => 'hang');
    let error: unknown;
    let done = false;
    h.coordinator!.checkpoints.checkpoint('j', { stop: false }).then(
      () => (done = true),
      (e) => ((error = e), (done = true)),
    );
    await advance(300);
    await crashAgent('b');
    // A new agent registers before the old one misses its heartbeats for long.
    await advance(520);
    h.startAgent('b', {}, ranksOfB);
    for (let t = 0; !done && t < 10_000; t += 100) await advance(100);
    expect((error as Error).message).toMatch(/epoch 1\) aborted: DUMP failed: ranks 2,3: host b: /);
    await advance(HOST_REJOIN_GRACE_MS + 1_000);
    expect(job().state).toBe('running');
  });

  it('sends the endpoint table again to a new agent whose rank repeats a hello the crashed one never answered', async () => {
    // Rank channels that only record the tables they are handed.
    const tables: string[] = [];
    const channel = (name: string) =>
      ({ on: () => undefined, unanswered: () => ({ hellos: [], attaches: [] }), sendEndpoints: (jobId: string, eps: { rank: number; port: number }[]) => tables.push(`${name} ${jobId} ${eps.map((e) => e.port).join(',')}`) }) as unknown as RankChannelServer;
    await h.close();
    h = new ControlPlaneHarness({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 500 });
    h.startCoordinator();
    h.startAgent('a', {}, undefined, channel('a1'));
    h.startAgent('b', {}, undefined, channel('b1'));
    await advance(50);
    await h.submit({ world_size: 2, rank_hosts: { 0: 'a', 1: 'b' }, job_id: 'k' });
    await advance(10);
    const hello = (host: string, rank: number, port: number, repeated = false) =>
      h.coordinator!.jobs.tables.onRankEndpoint(host, { job_id: 'k', rank, size: 2, address: `10.0.0.${rank}`, port, resumed_epoch: 0, repeated });
    hello('a', 0, 1000);
    hello('b', 1, 1001);
    await advance(50);
    expect(tables.sort()).toEqual(['a1 k 1000,1001', 'b1 k 1000,1001']);

    const ranksOfB = h.nodes.get('b')!.ranks;
    await crashAgent('b'); // ... before rank 1 got the table from it
    await advance(1_000);
    h.startAgent('b', {}, ranksOfB, channel('b2'));
    await advance(200);
    hello('b', 1, 1001, true);
    await advance(50);
    expect(tables.filter((t) => t.startsWith('b2'))).toEqual(['b2 k 1000,1001']);
    expect(tables.filter((t) => t.startsWith('a1'))).toHaveLength(1);
    expect(h.catalog!.getJob('k')!.state).toBe('running');
  });
});

describe('a coordinator that dies while it hands out an endpoint table', () => {
  /**
   * A new harness with agents a and b over waiting channels (b's first table lost when `loseFirstAtB`) and
   * job k with rank 0 on a, rank 1 on b; rank 0 has said hello.
   */
  async function jobOnTwoHosts(loseFirstAtB: boolean, identityOfB: { address?: string } = {}) {
    await h.close();
    h = new ControlPlaneHarness({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 500 });
    h.startCoordinator();
    const a = waitingChannel(false);
    const b = waitingChannel(loseFirstAtB);
    h.startAgent('a', {}, undefined, a.channel);
    h.startAgent('b', identityOfB, undefined, b.channel);
    await advance(50);
    await h.submit({ world_size: 2, rank_hosts: { 0: 'a', 1: 'b' }, job_id: 'k' });
    await advance(10);
    a.hello(0, 1000);
    await advance(50);
    return { a, b };
  }

  /** Runs `then` once, right after (or, `before`, right before) the coordinator takes the next endpoint report. */
  function onNextReport(then: (host: string) => void, before = false): void {
    const jobs = h.coordinator!.jobs.tables;
    const take = jobs.onRankEndpoint.bind(jobs);
    jobs.onRankEndpoint = (host, e) => {
      jobs.onRankEndpoint = take;
      if (before) then(host);
      take(host, e);
      if (!before) then(host);
    };
  }

  for (const how of ['tells it again as it registers with the next coordinator', 'tries again a report whose answer it never got'] as const) {
    it(`hands that table to a host that did not get it, when its agent ${how.split(' with')[0]}`, async () => {
      const { a, b } = await jobOnTwoHosts(true);
      // The coordinator takes b's report (the last one: it sends the table) and dies before it answers.
      if (how.startsWith('tries again')) onNextReport(() => (h.hub.severed = true));
      b.hello(1, 1001);
      await advance(50);
      // a has the table; b's was lost with the coordinator that sent it.
      expect(a.tables).toEqual(['k 1000,1001']);
      expect(b.tables).toEqual([]);
      expect(h.catalog!.getJob('k')!.endpointsPublished).toBe(true);
      await h.crashCoordinator();

      h.startCoordinator();
      await advance(2_000);
      // Counted for a new table instead, b's endpoint would wait for a's, which a's rank never tells again.
      expect(b.tables).toEqual(['k 1000,1001']);
      expect(b.waiting.size).toBe(0);
      expect(a.tables).toEqual(['k 1000,1001']);
      expect(h.catalog!.getJob('k')!.state).toBe('running');
    });
  }

  it('leaves the job running when it is stopped before the agents answered the table', async () => {
    const { b } = await jobOnTwoHosts(true);
    // The agents' answers to the table (and to b's report) never come back.
    onNextReport(() => (h.hub.severed = true));
    b.hello(1, 1001);
    await advance(50);
    h.hub.severed = false;
    // A stop cuts the table's requests short: that is no failure of the job's hosts. (Were the job failed for
    // it, here that failure would meet the catalog the harness closed after the stop: an unhandled error.)
    await h.stopCoordinator();
    h.startCoordinator();
    expect(h.catalog!.getJob('k')).toMatchObject({ state: 'running', endpointsPublished: true });
    await advance(2_000);
    expect(b.tables).toEqual(['k 1000,1001']);
    expect(h.catalog!.getJob('k')!.state).toBe('running');
  });

  it("leaves it to the host's rejoin grace when the agent that was to take the table goes down", async () => {
    const { a, b } = await jobOnTwoHosts(false, { address: '198.18.0.9' });
    // b's report completes the table; b is cut off before the table reaches it, and is seen down.
    onNextReport((host) => h.partition(host, true), true);
    b.hello(1, 1001);
    await advance(1_000);
    expect(a.tables).toEqual(['k 1000,1001']);
    expect(b.tables).toEqual([]);
    expect(h.coordinator!.hosts.get('b')?.state).toBe('down');
    expect(h.catalog!.getJob('k')!.state).toBe('running');

    // b's agent is restarted; its rank, still waiting, says its hello again to the new one.
    const ranksOfB = h.nodes.get('b')!.ranks;
    await crashAgent('b');
    h.partition('b', false);
    const b2 = waitingChannel(false);
    h.startAgent('b', { address: '198.18.0.9' }, ranksOfB, b2.channel); // (the host's address, as before)
    await advance(200);
    b2.hello(1, 1001, true);
    await advance(200);
    expect(b2.tables).toEqual(['k 1000,1001']);
    expect(h.catalog!.getJob('k')!.state).toBe('running');
  });

  it('counts an endpoint told again for the table being gathered when none went out since', async () => {
    const { a, b } = await jobOnTwoHosts(false);
    b.hello(1, 1001);
    await advance(50);
    expect(a.tables).toEqual(['k 1000,1001']);
    // The ranks resume from a flush with new listeners: a's new endpoint reaches the coordinator, which dies.
    a.hello(0, 2000);
    await advance(50);
    expect(h.catalog!.getJob('k')!.endpointsPublished).toBe(false);
    await h.crashCoordinator();
    h.startCoordinator();
    await advance(500);
    // a tells its endpoint again: not answered with the old table (its port 1001 for b is gone) ...
    expect(a.tables).toEqual(['k 1000,1001']);
    b.hello(1, 2001);
    await advance(50);
    // ... but with the new one, once b's new endpoint comes.
    expect(a.tables).toEqual(['k 1000,1001', 'k 2000,2001']);
    expect(b.tables).toEqual(['k 1000,1001', 'k 2000,2001']);
  });
});
