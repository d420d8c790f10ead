// A checkpoint or a migration asked while the job's endpoint table is on its
// way (ranks woken by a RESUME that have not all said hello, endpoints being
// gathered, the table being handed out) waits for the table before its
// PREPARE: a rank still waiting for its table refuses a flush, and the
// operation failed of it (soak seed 109: a checkpoint right after a
// coordinator restart, while the agents told their ranks' endpoints again).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RoundStep, type CheckpointReplyInit, type MoveReplyInit } from '../../src/gen/proto.js';
import { ControlPlaneHarness, settle } from './control-plane-harness.js';
import { waitingChannel } from './waiting-rank-channel.js';

let h: ControlPlaneHarness;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);
let a: ReturnType<typeof waitingChannel>;
let b: ReturnType<typeof waitingChannel>;
/** The tables each host's ranks had been handed when that host got the PREPARE, per PREPARE. */
let tablesAtPrepare: Record<string, string[][]>;

beforeEach(async () => {
  vi.useFakeTimers();
  h = new ControlPlaneHarness({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 500, flushTimeoutMs: 5_000, resumeTimeoutMs: 2_000 });
  h.startCoordinator();
  a = waitingChannel(false);
  b = waitingChannel(false);
  h.startAgent('a', {}, undefined, a.channel);
  h.startAgent('b', {}, undefined, b.channel);
  h.startAgent('c');
  await advance(50);
  await h.submit({ world_size: 2, rank_hosts: { 0: 'a', 1: 'b' }, job_id: 'k' });
  await advance(10);
  tablesAtPrepare = { a: [], b: [] };
  for (const [host, ch] of [['a', a], ['b', b]] as const) {
    h.nodes.get(host)!.steps.scripts.set(RoundStep.PREPARE, () => {
      tablesAtPrepare[host].push([...ch.tables]);
      return { failed: new Map(), flush: { drained_messages: 0, drained_bytes: 0, flush_ms: 1 } };
    });
  }
});

afterEach(async () => {
  await h.close();
  vi.useRealTimers();
});

/** An operation under way, advanced by the test (settle() collects it); its failure is not unhandled meanwhile. */
function started<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/** Both ranks say hello (at start, or after a RESUME with new listeners) and get their table. */
async function bothSayHello(portA: number, portB: number): Promise<void> {
  a.hello(0, portA);
  b.hello(1, portB);
  await advance(50);
  expect(a.tables.at(-1)).toBe(`k ${portA},${portB}`);
}

/** The ranks resume with new listeners (2000, 2001), and their reports go to a coordinator that dies before it takes them. */
async function coordinatorDiesAsRanksWait(): Promise<void> {
  await bothSayHello(1000, 1001);
  h.hub.severed = true;
  a.hello(0, 2000);
  b.hello(1, 2001);
  await advance(10);
  await h.crashCoordinator();
}

/**
 * coordinatorDiesAsRanksWait, then the next coordinator starts, and each report told again to it goes to
 * `told` instead of being taken (`take` takes one). Returns once both agents have registered with it.
 */
async function newCoordinatorAsRanksWait(told: (take: () => void, host: string) => void): Promise<void> {
  await coordinatorDiesAsRanksWait();
  h.startCoordinator();
  const tables = h.coordinator!.jobs.tables;
  const take = tables.onRankEndpoint.bind(tables);
  tables.onRankEndpoint = (host, e) => told(() => take(host, e), host);
  for (let t = 0; t < 2_000 && !['a', 'b'].every((x) => h.coordinator!.hosts.peerOf(x) !== undefined); t += 10) await advance(10);
}

describe('a checkpoint or a migration while the endpoint table is on its way', () => {
  it('a checkpoint asked while the endpoints are gathered sends its PREPARE once the table is out', async () => {
    a.hello(0, 1000); // rank 1 has not said hello yet
    await advance(50);
    const cut = started(h.coordinator!.checkpoints.checkpoint('k', { stop: false }));
    await advance(1_000);
    expect(h.nodes.get('a')!.steps.stepsSeen()).toEqual([]);
    b.hello(1, 1001);
    const { value, error } = await settle<CheckpointReplyInit>(cut);
    expect(error).toBeUndefined();
    expect(value!.epoch!.state).toBe('committed');
    expect(tablesAtPrepare).toEqual({ a: [['k 1000,1001']], b: [['k 1000,1001']] });
  });

  it("a checkpoint right after another's RESUME waits for the ranks' hellos and their new table", async () => {
    await bothSayHello(1000, 1001);
    expect((await settle(h.coordinator!.checkpoints.checkpoint('k', { stop: false }))).error).toBeUndefined();
    // The RESUME woke the ranks; their hellos have not reached the coordinator yet.
    const second = started(h.coordinator!.checkpoints.checkpoint('k', { stop: false }));
    await advance(1_000);
    expect(h.nodes.get('a')!.steps.stepsSeen().filter((s) => s === RoundStep.PREPARE)).toHaveLength(1);
    await bothSayHello(2000, 2001);
    expect((await settle(second)).error).toBeUndefined();
    expect(tablesAtPrepare.b.at(-1)).toEqual(['k 1000,1001', 'k 2000,2001']);
  });

  it("a migration right after a checkpoint's RESUME waits for the new table too", async () => {
    await bothSayHello(1000, 1001);
    expect((await settle(h.coordinator!.checkpoints.checkpoint('k', { stop: false }))).error).toBeUndefined();
    const move = started(h.coordinator!.moves.migrate('k', new Map([[1, 'c']])));
    await advance(1_000);
    expect(h.nodes.get('a')!.steps.stepsSeen().filter((s) => s === RoundStep.PREPARE)).toHaveLength(1);
    await bothSayHello(2000, 2001);
    expect((await settle<MoveReplyInit>(move)).error).toBeUndefined();
    expect(tablesAtPrepare.a.at(-1)).toEqual(['k 1000,1001', 'k 2000,2001']);
  });

  it('an endpoint report lost with a coordinator that died is told again to the next one as soon as the agent registers', async () => {
    await coordinatorDiesAsRanksWait();
    const t0 = Date.now();
    h.startCoordinator();
    while (!a.tables.includes('k 2000,2001') && Date.now() - t0 < 5_000) await advance(10);
    expect(b.tables).toEqual(['k 1000,1001', 'k 2000,2001']);
    // The agents find the new coordinator at their next heartbeat (100 ms) and register; the reports the
    // one before never answered go again then, not after their own timeout (500 ms) and a pause (1 s).
    expect(Date.now() - t0).toBeLessThan(450);
    expect(h.catalog!.getJob('k')).toMatchObject({ state: 'running', endpointsPublished: true });
  });

  it("a checkpoint asked of a restarted coordinator as the agents register waits for their waiting ranks' endpoints, told again", async () => {
    // The reports told again to the new coordinator are slow to come (held here): only the registrations say the ranks wait.
    const held: (() => void)[] = [];
    await newCoordinatorAsRanksWait((take) => held.push(take));
    await advance(10);
    expect(held).toHaveLength(2);
    const cut = started(h.coordinator!.checkpoints.checkpoint('k', { stop: false }));
    await advance(1_000);
    expect(h.nodes.get('a')!.steps.stepsSeen()).toEqual([]);
    held.forEach((report) => report());
    const { error } = await settle(cut);
    expect(error).toBeUndefined();
    expect(tablesAtPrepare).toEqual({ a: [['k 1000,1001', 'k 2000,2001']], b: [['k 1000,1001', 'k 2000,2001']] });
  });

  it('does not wait for the table while a host of the job is down: the checkpoint is refused at once, naming it', async () => {
    await newCoordinatorAsRanksWait((take, host) => host === 'a' && take()); // b's, told again, is lost
    await h.crashAgent('b');
    for (let t = 0; t < 2_000 && h.hostState('b') !== 'down'; t += 10) await advance(10);
    const t0 = Date.now();
    const { error } = await settle(h.coordinator!.checkpoints.checkpoint('k', { stop: false }));
    expect(error?.message).toMatch(/^job k has rank 1 on host b, which is down: cannot take a checkpoint until its agent is back/);
    expect(Date.now() - t0).toBeLessThan(1_000); // not after the flush timeout (5 s)
  });

  it('a checkpoint asked of a restarted coordinator before its agents registered waits for them', async () => {
    await bothSayHello(1000, 1001);
    await h.crashCoordinator();
    h.startCoordinator();
    expect([h.hostState('a'), h.hostState('b')]).toEqual(['unknown', 'unknown']);
    const { value, error } = await settle<CheckpointReplyInit>(h.coordinator!.checkpoints.checkpoint('k', { stop: false }));
    expect(error).toBeUndefined();
    expect(value!.epoch!.state).toBe('committed');
  });

  it('a checkpoint asked of a restarted coordinator is refused once a host of the job that does not come back is marked down', async () => {
    await bothSayHello(1000, 1001);
    await h.crashAgent('b');
    await h.crashCoordinator();
    h.startCoordinator();
    const t0 = Date.now();
    const { error } = await settle(h.coordinator!.checkpoints.checkpoint('k', { stop: false }));
    expect(error?.message).toMatch(/^job k has rank 1 on host b, which is down: cannot take a checkpoint until its agent is back/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(500); // the heartbeat timeout from the coordinator's start
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it('a job that ends while its checkpoint waits for the table is not checkpointed: no epoch begins', async () => {
    a.hello(0, 1000);
    await advance(50);
    const cut = started(h.coordinator!.checkpoints.checkpoint('k', { stop: false }));
    await advance(500);
    h.nodes.get('a')!.ranks.exit('k', 0, 0);
    h.nodes.get('b')!.ranks.exit('k', 1, 0);
    const { error } = await settle(cut);
    expect(error!.message).toMatch(/job k is succeeded, not running/);
    expect(h.catalog!.listEpochs('k')).toEqual([]);
  });

  it('goes on after the flush timeout when the table does not come, and says so', async () => {
    a.hello(0, 1000); // rank 1 never says hello
    await advance(50);
    const cut = started(h.coordinator!.checkpoints.checkpoint('k', { stop: false }));
    await advance(6_000);
    await settle(cut);
    expect(h.nodes.get('a')!.steps.stepsSeen()[0]).toBe(RoundStep.PREPARE);
    expect(h.catalog!.listEvents({ limit: 100 }).some((e) => /job k: its endpoint table is not out after 5000 ms; going on without it/.test(e.message))).toBe(true);
  });
});

describe('a table gathered while ranks of the job end', () => {
  // Ranks past MPI_Finalize say hello no more, while their peers, caught by a flush inside their own
  // MPI_Finalize and woken by the RESUME, wait for a table (soak seed 116: the job never ended).
  it('is handed out with the last endpoint of a rank that had ended before the others said hello', async () => {
    await bothSayHello(1000, 1001);
    h.nodes.get('b')!.ranks.exit('k', 1, 0);
    await advance(50);
    a.hello(0, 2000); // woken by a RESUME: a new listener, a new table to wait for
    await advance(50);
    expect(a.tables).toEqual(['k 1000,1001', 'k 2000,1001']);
    expect(h.catalog!.listEvents({ limit: 100 }).map((e) => e.message)).toContain('job k: rank 1 has ended: its last endpoint stands in the table');
    h.nodes.get('a')!.ranks.exit('k', 0, 0);
    await advance(50);
    expect(h.catalog!.getJob('k')!.state).toBe('succeeded');
  });

  it('is handed out when the last rank that will not say hello ends', async () => {
    await bothSayHello(1000, 1001);
    a.hello(0, 2000);
    await advance(500);
    expect(a.tables).toEqual(['k 1000,1001']); // rank 1 may still say hello
    h.nodes.get('b')!.ranks.exit('k', 1, 0);
    await advance(50);
    expect(a.tables).toEqual(['k 1000,1001', 'k 2000,1001']);
  });

  it('is not handed out for a rank that failed: the job fails instead', async () => {
    await bothSayHello(1000, 1001);
    a.hello(0, 2000);
    h.nodes.get('b')!.ranks.exit('k', 1, 3);
    await advance(3_000); // its peers get SIGTERM
    expect(a.tables).toEqual(['k 1000,1001']);
    expect(h.catalog!.getJob('k')!).toMatchObject({ state: 'failed', detail: 'rank 1 on b exited with status 3' });
  });
});

describe('a table gathered when the job ended', () => {
  it('is dropped: a restart gathers its own, with no endpoint of the run before', async () => {
    await bothSayHello(1000, 1001);
    expect((await settle(h.coordinator!.checkpoints.checkpoint('k', { stop: false }))).error).toBeUndefined();
    a.hello(0, 2000); // woken by the checkpoint's RESUME; rank 1 fails before its hello
    await advance(50);
    h.nodes.get('b')!.ranks.exit('k', 1, 3);
    await advance(3_000);
    expect(h.catalog!.getJob('k')!.state).toBe('failed');
    // A report that was on its way as the job ended (its agent tried again) counts for nothing either.
    const tableEvents = () => h.catalog!.listEvents({ limit: 100 }).filter((e) => e.kind === 'job.endpoints').length;
    const before = tableEvents();
    h.coordinator!.jobs.tables.onRankEndpoint('a', { job_id: 'k', rank: 0, size: 2, address: '198.18.0.2', port: 2500, resumed_epoch: 1, repeated: true });
    expect(tableEvents()).toBe(before);
    const restart = started(h.coordinator!.moves.restart('k', { rankHosts: new Map([[0, 'a'], [1, 'b']]) }));
    expect((await settle(restart)).error).toBeUndefined();
    // The restored ranks say hello; rank 0's endpoint of the failed run (2000) stands for nothing.
    b.hello(1, 3001);
    await advance(50);
    expect(b.tables).toEqual(['k 1000,1001']);
    a.hello(0, 3000);
    await advance(50);
    expect(b.tables).toEqual(['k 1000,1001', 'k 3000,3001']);
    expect(a.tables.at(-1)).toBe('k 3000,3001');
  });
});
