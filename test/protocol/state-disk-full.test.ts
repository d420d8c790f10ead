// The coordinator's state directory on a disk that fills up (a real tmpfs of
// 4 MiB under the real SQLite catalog; the agents over the in-memory
// transport). A checkpoint that cannot write its epoch aborts like any other:
// the ranks resume, the partial images go, the previous epoch stays the one to
// restart from, and the operator reads STATE_UNWRITABLE naming the catalog. So
// does a migration, up to the STOP of the ranks' old copies, and a restart
// before its ranks resume (nothing of it runs; the job is stopped again).
// Past those points there is no going back: the operation goes on, and what
// the catalog refused (a rank's new process, the end of a move, the job
// running again) is written once there is room, before the job's next
// operation. Before, such a migration or restart left the job stuck.
// The coordinator stays up through it (a host lost meanwhile, events it cannot
// log), and once there is room the next checkpoint commits. Before, the ranks
// stayed flushed (the job hung) and every later checkpoint was refused BUSY.
// What happens to hosts goes on from memory too: a lost host fails its jobs
// (their other ranks end at once; the failure is recorded once there is room),
// an agent that comes back is taken back. Before, a host's state the catalog
// refused cut its handling short: its jobs never heard that it was gone.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode, RoundStep, type CheckpointReplyInit, type RoundRequest } from '../../src/gen/proto.js';
import type { FerryError } from '../../src/common/ferry-error.js';
import { SmallStateDisk } from './small-state-disk.js';
import { ControlPlaneHarness } from './control-plane-harness.js';

let h: ControlPlaneHarness;
let warnings: string[];
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);
let disk: SmallStateDisk;

beforeEach(async () => {
  vi.useFakeTimers();
  h = new ControlPlaneHarness({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 500, flushTimeoutMs: 2_000, dumpTimeoutMs: 3_000, resumeTimeoutMs: 2_000 });
  disk = new SmallStateDisk(h.stateDir);
  warnings = [];
  h.startCoordinator().onWarning = (m) => warnings.push(m);
  for (const host of ['a', 'b', 'c', 'd']) h.startAgent(host);
  await advance(50);
  await h.submit({ world_size: 4, hosts: ['a', 'b'] });
  await advance(10);
});

afterEach(async () => {
  for (const a of h.agents.values()) await a.stop();
  await h.stopCoordinator();
  disk.unmount();
  await h.close();
  vi.useRealTimers();
});


async function checkpoint(stop = false): Promise<{ result?: CheckpointReplyInit; error?: FerryError }> {
  let out: { result?: CheckpointReplyInit; error?: FerryError } | undefined;
  h.coordinator!.checkpoints.checkpoint('j', { stop }).then(
    (result) => (out = { result }),
    (error) => (out = { error }),
  );
  for (let t = 0; !out && t < 20_000; t += 100) await advance(100);
  if (!out) throw new Error('checkpoint did not finish');
  return out;
}

/** The agent of `host` fills the disk while it runs `step`, which then succeeds. */
function fillDuring(step: RoundStep, host = 'b'): void {
  const steps = h.nodes.get(host)!.steps;
  steps.scripts.set(step, (req: RoundRequest) => {
    disk.fill();
    steps.scripts.delete(step);
    return steps.byDefault(req);
  });
}

/** The error `operation` ends with (undefined: it succeeded), advancing the fake clock meanwhile. */
async function errorOf(operation: Promise<unknown>): Promise<FerryError | undefined> {
  let out: { error?: FerryError } | undefined;
  operation.then(
    () => (out = {}),
    (error) => (out = { error }),
  );
  for (let t = 0; !out && t < 20_000; t += 100) await advance(100);
  if (!out) throw new Error('the operation did not finish');
  return out.error;
}
const migrate = (rank: number, to: string) => errorOf(h.coordinator!.moves.migrate('j', new Map([[rank, to]])));
const restart = () => errorOf(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
const rankHosts = () => h.catalog!.listRanks('j').map((r) => `${r.rank}@${r.host} ${r.state}`);

const epochs = () => h.catalog!.listEpochs('j').map((e) => `${e.epoch} ${e.state}`);
const flushed = () => ['a', 'b'].flatMap((host) => [...h.nodes.get(host)!.ranks.flushed.keys()]);

/** The job is stopped at epoch 1, then restarted on c and d; the disk fills as c resumes its ranks. */
async function restartFullAtResume(): Promise<void> {
  expect((await checkpoint(true)).error).toBeUndefined();
  await advance(1_000);
  fillDuring(RoundStep.RESUME, 'c');
  expect(await restart()).toBeUndefined();
  expect(h.catalog!.getJob('j')!.state).toBe('pending'); // (its ranks run; that it runs waits for room)
}

describe('a full state disk', () => {
  for (const step of [RoundStep.DUMP, RoundStep.STORE]) {
    it(`aborts a checkpoint that finds it full during ${RoundStep[step]}: the job runs on, the previous epoch stays, the next one commits once there is room`, async () => {
      expect((await checkpoint()).result?.epoch?.state).toBe('committed');
      fillDuring(step);
      const { error } = await checkpoint();
      expect(error?.code).toBe(ErrorCode.STATE_UNWRITABLE);
      expect(error?.message).toMatch(new RegExp(`checkpoint of job j \\(epoch 2\\) aborted: ${RoundStep[step]} failed: the coordinator cannot write its catalog .*catalog\\.db: database or disk is full \\(SQLITE_FULL\\)`));
      expect(error?.message).toMatch(/The job keeps running; epoch 1 remains the last committed checkpoint\.$/);
      expect(flushed()).toEqual([]);
      for (const host of ['a', 'b']) expect(h.nodes.get(host)!.steps.stepsSeen()).toContain(RoundStep.DISCARD);
      expect(h.catalog!.getJob('j')!.state).toBe('running');
      // Still full: the next checkpoint says so (its abort record waits), not that one is in flight.
      const again = await checkpoint();
      expect(again.error?.code, again.error?.message).toBe(ErrorCode.STATE_UNWRITABLE);
      expect(epochs()).toEqual(['1 committed', `2 ${step === RoundStep.DUMP ? 'dumping' : 'storing'}`]);
      // Once there is room, the abort is written without waiting for a checkpoint (the job may never take one).
      disk.free();
      await advance(200);
      expect(epochs()).toEqual(['1 committed', '2 aborted']);
      const next = await checkpoint();
      expect(next.error).toBeUndefined();
      expect(epochs()).toEqual(['1 committed', '2 aborted', '3 committed']);
    });
  }

  for (const [step, host] of [[RoundStep.PREPARE, 'a'], [RoundStep.FETCH, 'c']] as const) {
    it(`fails a migration that finds it full during ${RoundStep[step]}: every rank resumes where it was`, async () => {
      fillDuring(step, host);
      const error = await migrate(1, 'c');
      expect(error?.code, error?.message).toBe(ErrorCode.STATE_UNWRITABLE);
      expect(error?.message).toMatch(/^migration of job j aborted: the coordinator cannot write its catalog .*catalog\.db: database or disk is full \(SQLITE_FULL\); every rank resumed where it was$/);
      expect(flushed()).toEqual([]);
      expect(rankHosts()).toEqual(['0@a running', '1@a running', '2@b running', '3@b running']);
      disk.free();
      expect(await migrate(1, 'c')).toBeUndefined();
      expect(rankHosts()).toEqual(['0@a running', '1@c running', '2@b running', '3@b running']);
    });
  }

  for (const step of [RoundStep.FETCH, RoundStep.RESTORE]) {
    it(`fails a restart that finds it full during ${RoundStep[step]}: nothing of it runs, the next restart starts the job`, async () => {
      expect((await checkpoint(true)).error).toBeUndefined();
      await advance(1_000);
      expect(h.catalog!.getJob('j')!.state).toBe('stopped');
      fillDuring(step, 'c');
      const error = await restart();
      expect(error?.code, error?.message).toBe(ErrorCode.STATE_UNWRITABLE);
      expect(error?.message).toMatch(/^restart of job j from epoch 1 failed: the coordinator cannot write its catalog .*database or disk is full \(SQLITE_FULL\); nothing of it runs, epoch 1 is unchanged/);
      expect(flushed()).toEqual([]);
      for (const host of ['c', 'd']) expect(h.nodes.get(host)!.steps.stepsSeen()).toContain(RoundStep.STOP);
      expect(h.catalog!.getJob('j')!.state).toBe('pending');
      disk.free();
      await advance(200);
      expect(h.catalog!.getJob('j')!.state).toBe('stopped');
      expect(rankHosts()).toEqual(['0@a exited', '1@a exited', '2@b exited', '3@b exited']);
      expect(await restart()).toBeUndefined();
      expect(h.catalog!.getJob('j')!.state).toBe('running');
      expect(rankHosts()).toEqual(['0@c running', '1@c running', '2@d running', '3@d running']);
    });
  }

  // Past the STOP of a migration's old copies, or once a restart's ranks resume, there is no going back:
  // the operation goes on from memory, and what the catalog refuses is written once there is room.
  for (const [step, host] of [[RoundStep.STOP, 'a'], [RoundStep.RESTORE, 'c'], [RoundStep.RESUME, 'b']] as const) {
    it(`finishes a migration that finds it full during ${RoundStep[step]}, and records it once there is room`, async () => {
      fillDuring(step, host);
      expect(await migrate(1, 'c')).toBeUndefined();
      expect(flushed()).toEqual([]);
      expect(h.nodes.get('c')!.ranks.has('j', 1)).toBe(true);
      await advance(1_000);
      expect(h.catalog!.getJob('j')!.state).toBe('running');
      if (step !== RoundStep.RESUME) {
        // (the catalog is behind: the rank's new process and the end of the move wait)
        expect(h.catalog!.getRank('j', 1)).toMatchObject({ host: 'c', pid: 0 });
        expect(h.catalog!.rankMoves('j')).toHaveLength(1);
        // An operation of the job waits for them, and says why.
        expect((await checkpoint()).error?.code).toBe(ErrorCode.STATE_UNWRITABLE);
      }
      disk.free();
      await advance(200);
      expect(rankHosts()).toEqual(['0@a running', '1@c running', '2@b running', '3@b running']);
      expect(h.catalog!.getRank('j', 1)!.pid).toBeGreaterThan(0);
      expect(h.catalog!.rankMoves('j')).toEqual([]);
      expect(h.catalog!.getJob('j')!.hosts).toContain('c');
      expect(await migrate(1, 'a')).toBeUndefined();
      expect(rankHosts()).toEqual(['0@a running', '1@a running', '2@b running', '3@b running']);
    });
  }

  it('a coordinator killed while a migration past its STOP waits to be recorded: the next one finds the rank where it runs', async () => {
    fillDuring(RoundStep.STOP, 'a');
    expect(await migrate(1, 'c')).toBeUndefined();
    expect(h.catalog!.getRank('j', 1)).toMatchObject({ host: 'c', pid: 0 });
    expect(h.catalog!.rankMoves('j')).toHaveLength(1);
    await h.crashCoordinator(); // (what waited to be recorded dies with it)
    disk.free();
    h.startCoordinator().onWarning = (m) => warnings.push(m);
    for (const host of ['a', 'b', 'c', 'd']) await h.untilUp(host);
    await advance(2_000);
    // The agent on c says rank 1 runs there: the move is finished without restoring it again.
    expect(rankHosts()).toEqual(['0@a running', '1@c running', '2@b running', '3@b running']);
    expect(h.catalog!.getRank('j', 1)!.pid).toBe(h.nodes.get('c')!.ranks.live.get('j/1')!.pid);
    expect(h.nodes.get('c')!.steps.stepsSeen().filter((s) => s === RoundStep.RESTORE)).toHaveLength(1);
    expect(h.catalog!.rankMoves('j')).toEqual([]);
    expect(flushed()).toEqual([]);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it("finishes a restart that finds it full once its ranks resume, and records it once there is room", async () => {
    await restartFullAtResume();
    expect(flushed()).toEqual([]);
    disk.free();
    await advance(200);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    expect(rankHosts()).toEqual(['0@c running', '1@c running', '2@d running', '3@d running']);
    expect(h.catalog!.getJob('j')!.hosts).toEqual(['c', 'd']);
    expect((await checkpoint()).result?.epoch?.state).toBe('committed');
  });

  it('a coordinator killed while a restart past its RESUME waits to be recorded: the next one finds the job running where its ranks are', async () => {
    await restartFullAtResume();
    await h.crashCoordinator(); // (what waited to be recorded dies with it)
    disk.free();
    h.startCoordinator().onWarning = (m) => warnings.push(m);
    for (const host of ['a', 'b', 'c', 'd']) await h.untilUp(host);
    await advance(2_000);
    // (settled as soon as every rank's agent has registered, not at the end of the hosts' rejoin grace)
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'running', hosts: ['a', 'b', 'c', 'd'] });
    expect(rankHosts()).toEqual(['0@c running', '1@c running', '2@d running', '3@d running']);
    for (const host of ['c', 'd']) expect(h.nodes.get(host)!.ranks.running()).toHaveLength(2);
    expect(flushed()).toEqual([]);
    expect((await checkpoint()).result?.epoch?.state).toBe('committed');
  });

  it('fails a job that loses a host while it is full: its other ranks end now, the failure is recorded once there is room', async () => {
    disk.fill();
    await h.crashAgent('b');
    await advance(31_000); // (the heartbeat timeout, then the host's rejoin grace)
    expect(h.nodes.get('a')!.ranks.signalled).toEqual(expect.arrayContaining(['j/0 SIGTERM', 'j/1 SIGTERM']));
    expect(h.nodes.get('a')!.ranks.has('j', 0)).toBe(false);
    expect(h.catalog!.getJob('j')!.state).toBe('running'); // (behind: its ranks' exits wait for room)
    disk.free();
    await advance(2_000);
    const job = h.catalog!.getJob('j')!;
    expect(job.state).toBe('failed');
    expect(job.detail).toMatch(/^ranks 2,3 lost: host b is down and did not come back within 30000 ms/);
    expect(rankHosts()).toEqual(['0@a exited', '1@a exited', '2@b exited', '3@b exited']);
  });

  it("ends a job once there is room when the disk fills as its end is written: its ranks' exits were recorded", async () => {
    const catalog = h.catalog!;
    const setJobState = catalog.setJobState.bind(catalog);
    let filled = false;
    vi.spyOn(catalog, 'setJobState').mockImplementation((...args) => {
      if (args[1] === 'succeeded' && !filled) disk.fill();
      filled = true;
      return setJobState(...args);
    });
    for (const [host, rank] of [['a', 0], ['a', 1], ['b', 2], ['b', 3]] as const) h.nodes.get(host)!.ranks.exit('j', rank, 0);
    await advance(500);
    expect(filled).toBe(true);
    expect(rankHosts()).toEqual(['0@a exited', '1@a exited', '2@b exited', '3@b exited']);
    expect(catalog.getJob('j')!.state).toBe('running'); // (behind)
    disk.free();
    await advance(200);
    expect(catalog.getJob('j')!.state).toBe('succeeded');
  });

  it('takes back a host whose agent comes back while it is full: its ranks run on, its registration is recorded once there is room', async () => {
    disk.fill();
    await h.crashAgent('b');
    await advance(2_000);
    expect(h.coordinator!.hosts.get('b')?.state).toBe('down');
    const ranks = h.nodes.get('b')!.ranks;
    const agent = h.startAgent('b', {}, ranks);
    await advance(2_000);
    expect(h.coordinator!.hosts.get('b')?.state).toBe('up');
    expect(agent.state).toBe('registered');
    await advance(31_000); // (past the rejoin grace: the ranks are not lost)
    expect(ranks.has('j', 2) && ranks.has('j', 3)).toBe(true);
    expect(h.nodes.get('a')!.ranks.signalled).toEqual([]);
    disk.free();
    await advance(200);
    expect(h.catalog!.listHosts().find((x) => x.name === 'b')).toMatchObject({ state: 'up', agentInstance: agent.instance });
    expect(rankHosts()).toEqual(['0@a running', '1@a running', '2@b running', '3@b running']);
    expect((await checkpoint()).result?.epoch?.state).toBe('committed');
  });

  it('keeps the coordinator up: a host lost meanwhile goes down, the events it cannot log are warned about', async () => {
    disk.fill();
    await h.crashAgent('b');
    await advance(2_000);
    expect(h.coordinator!.hosts.get('b')?.state).toBe('down');
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings[0]).toMatch(/the coordinator cannot write its catalog .*: database or disk is full \(SQLITE_FULL\)/);
    disk.free();
    h.startAgent('b');
    await advance(2_000);
    expect(h.coordinator!.hosts.get('b')?.state).toBe('up');
    expect(h.catalog!.listHosts().find((x) => x.name === 'b')?.state).toBe('up');
  });
});
