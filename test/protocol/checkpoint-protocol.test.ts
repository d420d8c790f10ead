// The checkpoint protocol's logic over the in-memory transport, with agents
// whose steps are scripted: the happy path (ranks resumed before STORE), a
// refused flush, an agent lost during DUMP or STORE, a failed STORE, a second
// request while one runs, --stop, a rank dying mid-way, coordinator restarts.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode, RoundStep, type CheckpointReplyInit } from '../../src/gen/proto.js';
import { FerryError } from '../../src/common/ferry-error.js';
import { ControlPlaneHarness } from './control-plane-harness.js';
import { failRanks } from './simulated-node.js';

let h: ControlPlaneHarness;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

beforeEach(async () => {
  vi.useFakeTimers();
  h = new ControlPlaneHarness({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 500, flushTimeoutMs: 2_000, dumpTimeoutMs: 3_000, resumeTimeoutMs: 2_000, stopDrainMs: 5_000 });
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

/** Runs a checkpoint while advancing the fake clock; returns its result or error. */
async function checkpoint(stop = false, stepMs = 100, maxMs = 20_000) {
  let result: CheckpointReplyInit | undefined;
  let error: unknown;
  let done = false;
  const progress: string[] = [];
  h.coordinator!.checkpoints.checkpoint('j', { stop, progress: (_e, phase) => progress.push(phase) }).then(
    (r) => ((result = r), (done = true)),
    (e) => ((error = e), (done = true)),
  );
  for (let t = 0; !done && t < maxMs; t += stepMs) await advance(stepMs);
  if (!done) throw new Error('checkpoint did not finish');
  return { result, error: error as FerryError | undefined, progress };
}

const steps = (host: string) => h.nodes.get(host)!.steps.stepsSeen();

/** Starts a checkpoint whose `step` hangs on host b (its agent stays up); returns once b has received that step. */
async function checkpointHeldOnB(step: RoundStep): Promise<{ running: ReturnType<typeof checkpoint> }> {
  h.nodes.get('b')!.steps.scripts.set(step, () => 'hang');
  const running = checkpoint();
  await advance(300);
  expect(steps('b').at(-1)).toBe(step);
  return { running }; // (wrapped: an async function's result would wait for the checkpoint)
}
const flushedRanks = () => ['a', 'b'].map((host) => [...h.nodes.get(host)!.ranks.flushed.keys()]);
const events = (kind: string) => h.catalog!.listEvents({ limit: 200 }).filter((e) => e.kind === kind).map((e) => e.message);

describe('checkpoint protocol', () => {
  it('reports its phases: the ranks paused for flush, dump and resume, their images stored after', async () => {
    for (const host of ['a', 'b']) {
      const node = h.nodes.get(host)!;
      node.steps.scripts.set(RoundStep.DUMP, async (req) => {
        await new Promise((r) => setTimeout(r, 600));
        return { failed: new Map(), images: req.dump_ranks.map((rank) => ({ rank, location: `/i/${rank}` })) };
      });
      node.steps.scripts.set(RoundStep.STORE, async (req) => {
        await new Promise((r) => setTimeout(r, 400));
        return { failed: new Map(), images: node.steps.dumpImages(req) };
      });
    }
    const { result, error } = await checkpoint(false, 50);
    expect(error).toBeUndefined();
    // Each round took its time on the fake clock, plus at most one step of it.
    expect(Number(result!.dump_ms)).toBeGreaterThanOrEqual(600);
    expect(Number(result!.dump_ms)).toBeLessThanOrEqual(650);
    expect(Number(result!.store_ms)).toBeGreaterThanOrEqual(400);
    expect(Number(result!.store_ms)).toBeLessThanOrEqual(450);
    // Paused: flush + dump + resume, not the store.
    const paused = Number(result!.paused_ms);
    expect(paused).toBe(Number(result!.flush_ms) + Number(result!.dump_ms) + Number(result!.resume_ms));
    expect(paused).toBeLessThan(Number(result!.dump_ms) + Number(result!.store_ms));
    // ferry epochs: each phase with the time it was entered.
    expect(h.catalog!.getEpoch('j', 1)!.phases.map((p) => p.state)).toEqual(['preparing', 'flushed', 'dumping', 'dumped', 'storing', 'stored', 'committed']);
  });

  it('goes PREPARE, DUMP, RESUME, STORE, COMMITTED: the ranks run on while their images are stored', async () => {
    const flushedDuringStore: string[][] = [];
    for (const host of ['a', 'b']) {
      const node = h.nodes.get(host)!;
      node.steps.scripts.set(RoundStep.STORE, (req) => {
        flushedDuringStore.push([...node.ranks.flushed.keys()]);
        return { failed: new Map(), images: node.steps.dumpImages(req) };
      });
    }
    const { result, error, progress } = await checkpoint();
    expect(error).toBeUndefined();
    expect(progress).toEqual(['preparing', 'flushed', 'dumping', 'dumped', 'resuming', 'storing', 'stored', 'committed', 'done']);
    expect(flushedDuringStore).toEqual([[], []]);
    expect(result!.epoch!.epoch).toBe(1);
    expect(result!.epoch!.state).toBe('committed');
    expect(result!.drained_messages).toBe(8);
    for (const host of ['a', 'b']) expect(steps(host)).toEqual([RoundStep.PREPARE, RoundStep.DUMP, RoundStep.RESUME, RoundStep.STORE]);
    // Each agent dumps exactly its own ranks, then stores them.
    const seenA = h.nodes.get('a')!.steps.seen;
    const dumpA = seenA.find((s) => s.step === RoundStep.DUMP)!;
    expect(dumpA.dumpRanks).toEqual([0, 1]);
    expect(dumpA.storeSeparately).toBe(true);
    expect(dumpA.leaveStopped).toBe(false); // the ranks run on after it
    expect(seenA.find((s) => s.step === RoundStep.STORE)!.dumpRanks).toEqual([0, 1]);
    expect(seenA.find((s) => s.step === RoundStep.STORE)!.transient).toBeFalsy(); // an epoch's images are fsynced before the commit
    const images = h.catalog!.epochImages('j', 1);
    expect(images.map((i) => [i.rank, i.host])).toEqual([
      [0, 'a'],
      [1, 'a'],
      [2, 'b'],
      [3, 'b'],
    ]);
    expect(h.catalog!.lastCommittedEpoch('j')?.epoch).toBe(1);
    // Epoch ids only grow.
    const second = await checkpoint();
    expect(second.result!.epoch!.epoch).toBe(2);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it('aborts when STORE fails (a disk full while fsyncing): the ranks already run on, the images go, the previous epoch stays', async () => {
    await checkpoint();
    h.nodes.get('b')!.steps.scripts.set(RoundStep.STORE, () => failRanks([3], 'rank 3: write manifest.ferry: no space left on device'));
    const { error, progress } = await checkpoint();
    expect(error!.message).toMatch(/epoch 2\) aborted: STORE failed: rank 3: host b: rank 3: write manifest\.ferry: no space left on device\. The job keeps running; epoch 1 remains the last committed checkpoint\./);
    expect(progress).toEqual(['preparing', 'flushed', 'dumping', 'dumped', 'resuming', 'storing', 'aborting', 'aborted']);
    // No second RESUME: the ranks were woken before STORE. Both hosts remove what they wrote.
    for (const host of ['a', 'b']) expect(steps(host).slice(4)).toEqual([RoundStep.PREPARE, RoundStep.DUMP, RoundStep.RESUME, RoundStep.STORE, RoundStep.DISCARD]);
    expect(h.catalog!.getEpoch('j', 2)!.state).toBe('aborted');
    expect(h.catalog!.epochImages('j', 2)).toEqual([]);
    expect(h.catalog!.lastCommittedEpoch('j')!.epoch).toBe(1);
    await advance(2_000);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    for (const host of ['a', 'b']) expect([...h.nodes.get(host)!.ranks.flushed.keys()]).toEqual([]);
  });

  it('aborts when an agent falls silent in STORE but stays up (its answer lost, or late): every host discards, the job runs on', async () => {
    await checkpoint();
    h.nodes.get('b')!.steps.scripts.set(RoundStep.STORE, () => 'hang');
    const { error } = await checkpoint();
    expect(error!.message).toMatch(/STORE failed: ranks 2,3: host b: round to host b: no answer within 3000 ms.*The job keeps running; epoch 1 remains/);
    expect(h.hostState('b')).toBe('up');
    // b's agent will not register again: it is asked now, like a.
    for (const host of ['a', 'b']) expect(steps(host).slice(4)).toEqual([RoundStep.PREPARE, RoundStep.DUMP, RoundStep.RESUME, RoundStep.STORE, RoundStep.DISCARD]);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    expect(flushedRanks()).toEqual([[], []]);
  });

  it('aborts when an agent is lost in STORE: the other discards, the job runs on, and the lost host discards once its agent is back', async () => {
    await checkpoint();
    const { running } = await checkpointHeldOnB(RoundStep.STORE);
    await h.crashAgent('b'); // its ranks run on (resumed before STORE)
    const { error } = await running;
    expect(error!.message).toMatch(/STORE failed: ranks 2,3: host b: .*The job keeps running; epoch 1 remains/);
    expect(steps('a').slice(4)).toEqual([RoundStep.PREPARE, RoundStep.DUMP, RoundStep.RESUME, RoundStep.STORE, RoundStep.DISCARD]);
    expect(steps('b').slice(4)).toEqual([RoundStep.PREPARE, RoundStep.DUMP, RoundStep.RESUME, RoundStep.STORE]);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    // b's agent restarts with its ranks, which run (resumed before STORE): nothing flushed tells of epoch 2, yet its images go.
    h.startAgent('b', {}, h.nodes.get('b')!.ranks);
    await advance(2_000);
    expect(h.nodes.get('b')!.steps.seen.map((x) => [x.step, x.ranks, x.epoch])).toEqual([[RoundStep.DISCARD, [2, 3], 2]]);
    await h.crashAgent('b'); // and only once
    h.startAgent('b', {}, h.nodes.get('b')!.ranks);
    await advance(2_000);
    expect(steps('b')).toEqual([]);
    expect(steps('a').slice(9)).toEqual([]);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it('a rank that fails while its images are stored: the job fails at once, and the epoch, taken before, still commits', async () => {
    await checkpoint();
    const b = h.nodes.get('b')!;
    b.steps.scripts.set(RoundStep.STORE, async (req) => {
      b.ranks.exit('j', 3, 3); // the application fails after the snapshot, while STORE hashes
      await new Promise((r) => setTimeout(r, 1_500));
      return { failed: new Map(), images: b.steps.dumpImages(req) };
    });
    let failedAt = 0;
    const watch = setInterval(() => failedAt ||= h.catalog!.getJob('j')!.state === 'failed' ? Date.now() : 0, 10);
    const started = Date.now();
    const { result, error } = await checkpoint();
    clearInterval(watch);
    expect(error).toBeUndefined();
    expect(result!.epoch!.state).toBe('committed');
    expect(failedAt - started).toBeLessThan(1_500); // not held until the commit
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'failed', exitCode: 3, detail: 'rank 3 on b exited with status 3' });
    expect(h.catalog!.lastCommittedEpoch('j')!.epoch).toBe(2); // a consistent snapshot from before the failure, for ferry restart
  });

  it('asks again an agent that stays up but lost its RESUME: the epoch commits and the job runs on', async () => {
    await checkpoint();
    let lost = 0;
    h.nodes.get('b')!.steps.scripts.set(RoundStep.RESUME, () => (lost++ === 0 ? 'hang' : { failed: new Map() }));
    const { result, error } = await checkpoint();
    expect(error).toBeUndefined();
    expect(result!.epoch!.state).toBe('committed');
    expect(steps('b').filter((s) => s === RoundStep.RESUME)).toHaveLength(3); // epoch 1's, and epoch 2's twice
    expect(flushedRanks()).toEqual([[], []]);
    await advance(2_000);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    expect(h.catalog!.listEvents({ limit: 200 }).find((e) => e.kind === 'round.resume-again')?.message).toMatch(/^job j: RESUME again to b \(attempt 2 of 3\): RESUME failed: ranks 2,3: host b: round to host b: no answer within 2000 ms$/);
  });

  it('fails the job when an agent that stays up never answers its RESUME, after asking three times', async () => {
    await checkpoint();
    h.nodes.get('b')!.steps.scripts.set(RoundStep.RESUME, () => 'hang');
    const { result, error } = await checkpoint(false, 100, 30_000);
    expect(error).toBeUndefined();
    expect(result!.epoch!.state).toBe('committed');
    expect(steps('b').filter((s) => s === RoundStep.RESUME)).toHaveLength(4);
    await advance(2_000);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'failed', exitCode: 1 });
    expect(h.catalog!.getJob('j')!.detail).toMatch(/^after committing epoch 2: RESUME failed: ranks 2,3: host b: round to host b: no answer within 2000 ms \(asked 3 times\)$/);
  });

  it('a rank the RESUME before STORE cannot wake: the epoch still commits, and the job fails naming the rank', async () => {
    await checkpoint();
    h.nodes.get('b')!.steps.scripts.set(RoundStep.RESUME, () => failRanks([3], 'rank 3 did not answer its wake-up'));
    const { result, error } = await checkpoint();
    expect(error).toBeUndefined();
    expect(result!.epoch!.state).toBe('committed');
    await advance(2_000);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'failed', exitCode: 1 });
    expect(h.catalog!.getJob('j')!.detail).toMatch(/^after committing epoch 2: RESUME failed: rank 3: host b: rank 3 did not answer its wake-up/);
    expect(h.catalog!.lastCommittedEpoch('j')!.epoch).toBe(2);
  });

  it('a rank the RESUME before STORE cannot wake, then a failed STORE: the epoch aborts and the job fails with both reasons', async () => {
    await checkpoint();
    h.nodes.get('b')!.steps.scripts.set(RoundStep.RESUME, () => failRanks([3], 'rank 3 did not answer its wake-up'));
    h.nodes.get('a')!.steps.scripts.set(RoundStep.STORE, () => failRanks([0], 'rank 0: image file pages-1.img: input/output error'));
    const { error } = await checkpoint();
    expect(error!.message).toMatch(/epoch 2\) aborted: STORE failed: rank 0: .*input\/output error; RESUME failed: rank 3: host b: rank 3 did not answer its wake-up\. The job fails: a rank left flushed would hang it; epoch 1 remains/);
    await advance(2_000);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'failed', exitCode: 1 });
    expect(h.catalog!.getEpoch('j', 2)!.state).toBe('aborted');
    expect(h.catalog!.lastCommittedEpoch('j')!.epoch).toBe(1);
  });

  it('aborts on a refused flush, finishes the flush on every rank before any resumes, and the previous epoch stays committed', async () => {
    await checkpoint();
    // Ranks 0-2 flushed and wait for rank 3's end-of-channel marker: rank 3 is asked again (it flushes then), and
    // only then does any rank resume.
    const b = h.nodes.get('b')!.steps.scripts;
    b.set(RoundStep.PREPARE, () => {
      b.delete(RoundStep.PREPARE);
      return failRanks([3], 'rank 3 of job j is not connected (it lost its connection to the agent)', ErrorCode.UNKNOWN_RANK);
    });
    const { error, progress } = await checkpoint();
    expect(error).toBeInstanceOf(FerryError);
    expect(error!.code).toBe(ErrorCode.UNKNOWN_RANK);
    expect(error!.message).toMatch(/epoch 2\) aborted: PREPARE failed: rank 3: host b: rank 3 of job j is not connected/);
    expect(error!.message).toMatch(/The job keeps running; epoch 1 remains the last committed checkpoint/);
    expect(progress).toEqual(['preparing', 'aborting', 'aborted']);
    for (const host of ['a', 'b']) expect(steps(host).slice(4)).toEqual([RoundStep.PREPARE, RoundStep.PREPARE, RoundStep.RESUME]);
    expect(h.catalog!.getEpoch('j', 2)!.state).toBe('aborted');
    expect(h.catalog!.lastCommittedEpoch('j')!.epoch).toBe(1);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    expect(events('flush.completed')).toEqual(['job j: checkpoint epoch 2: every rank flushed when asked again, so all can resume']);
  });

  it('asks a host whose rank refused the flush again while its peers still flush: it flushes, they finish, and the checkpoint commits', async () => {
    await checkpoint();
    // Rank 3 is not connected to its agent for a moment; ranks 0 and 1 on a wait for its end-of-channel markers,
    // so a answers only once rank 3 has flushed (else at its agent's flush timeout, here beyond the round's).
    let rank3Flushed = () => {};
    const markers = new Promise<void>((r) => (rank3Flushed = r));
    const a = h.nodes.get('a')!.steps.scripts;
    a.set(RoundStep.PREPARE, async () => {
      a.delete(RoundStep.PREPARE);
      await markers;
      return { failed: new Map() };
    });
    const b = h.nodes.get('b')!.steps.scripts;
    let refusals = 2;
    b.set(RoundStep.PREPARE, () => {
      if (refusals-- > 0) return failRanks([3], 'rank 3 of job j is not connected (it lost its connection to the agent)', ErrorCode.UNKNOWN_RANK);
      b.delete(RoundStep.PREPARE);
      rank3Flushed();
      return { failed: new Map() };
    });
    const { result, error, progress } = await checkpoint();
    expect(error).toBeUndefined();
    expect(result!.epoch).toMatchObject({ epoch: 2, state: 'committed' });
    expect(progress.slice(0, 2)).toEqual(['preparing', 'flushed']);
    expect(steps('b').slice(4, 8)).toEqual([RoundStep.PREPARE, RoundStep.PREPARE, RoundStep.PREPARE, RoundStep.DUMP]);
    expect(steps('a').slice(4, 6)).toEqual([RoundStep.PREPARE, RoundStep.DUMP]);
    expect(h.catalog!.lastCommittedEpoch('j')!.epoch).toBe(2);
  });

  it('does not ask again hosts that all failed the flush: the round ends, and the ranks resume', async () => {
    await checkpoint();
    // Every host refuses until the epoch aborts. Were a host that failed too counted as one not answered yet,
    // the two would keep each other asking until the round's time (flushTimeoutMs, 2 s) was up.
    const aborting = () => h.catalog!.getEpoch('j', 2)?.state === 'aborting';
    for (const host of ['a', 'b']) {
      h.nodes.get(host)!.steps.scripts.set(RoundStep.PREPARE, (req) => (aborting() ? { failed: new Map() } : failRanks(req.ranks, `ranks of ${host} refused`)));
    }
    const t0 = Date.now();
    const { error } = await checkpoint(false, 10);
    expect(error!.message).toMatch(/epoch 2\) aborted: PREPARE failed: .*\. The job keeps running/);
    for (const host of ['a', 'b']) expect(error!.message).toContain(`host ${host}: ranks of ${host} refused`);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    for (const host of ['a', 'b']) expect(steps(host).at(-1)).toBe(RoundStep.RESUME);
  });

  it('meets the job\'s end: ranks that finish during the PREPARE abort it, and the job ends succeeded, not failed', async () => {
    await checkpoint();
    // Seen in a soak: ranks 0 and 1 were past MPI_Finalize; exiting, they closed their agent connections, so their
    // PREPARE failed, and by the abort's RESUME they were gone ("does not run on a"). Ranks 2 and 3 flushed.
    const a = h.nodes.get('a')!;
    a.steps.scripts.set(RoundStep.PREPARE, () => {
      a.steps.scripts.delete(RoundStep.PREPARE);
      a.ranks.exit('j', 0, 0);
      a.ranks.exit('j', 1, 0);
      return failRanks([0, 1], 'rank 0 of job j has finished (past MPI_Finalize, its process is exiting)', ErrorCode.UNKNOWN_RANK);
    });
    const { error } = await checkpoint(true);
    expect(error!.message).toMatch(/epoch 2\) aborted: PREPARE failed: ranks 0,1: host a: rank 0 of job j has finished.*\. The job keeps running; epoch 1 remains/);
    expect(error!.message).not.toMatch(/RESUME failed/);
    expect(steps('b').slice(-1)).toEqual([RoundStep.RESUME]); // ranks 2 and 3 woken
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    h.nodes.get('b')!.ranks.exit('j', 2, 0);
    h.nodes.get('b')!.ranks.exit('j', 3, 0);
    await advance(500);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'succeeded', exitCode: 0 });
    expect(h.catalog!.getEpoch('j', 2)!.state).toBe('aborted');
  });

  it('meets the job\'s end with the exits reported after the PREPARE failed: the flush is finished without the ended ranks', async () => {
    await checkpoint();
    // The agent refuses the flush once the connection has closed, until the process is seen to exit a moment later
    // (then the agent answers "does not run on a" by itself).
    const a = h.nodes.get('a')!;
    setTimeout(() => {
      a.ranks.exit('j', 0, 0);
      a.ranks.exit('j', 1, 0);
    }, 300);
    a.steps.scripts.set(RoundStep.PREPARE, (req) => failRanks(req.ranks, 'rank 0 of job j has finished (past MPI_Finalize, its process is exiting)', ErrorCode.UNKNOWN_RANK));
    const { error } = await checkpoint();
    expect(error!.message).toMatch(/epoch 2\) aborted: PREPARE failed: ranks 0,1: host a: rank 0 of job j has finished.*\. The job keeps running; epoch 1 remains/);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    h.nodes.get('b')!.ranks.exit('j', 2, 0);
    h.nodes.get('b')!.ranks.exit('j', 3, 0);
    await advance(500);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'succeeded', exitCode: 0 });
  });

  it('fails the job when a refused flush cannot be finished within the flush timeout: the ranks that flushed would wait for ever', async () => {
    await checkpoint();
    h.nodes.get('b')!.steps.scripts.set(RoundStep.PREPARE, () => failRanks([3], 'rank 3 refused the flush'));
    const t0 = Date.now();
    const { error } = await checkpoint();
    expect(error!.message).toMatch(
      /epoch 2\) aborted: PREPARE failed: rank 3: host b: rank 3 refused the flush; the flush could not be finished on every rank \(PREPARE failed: rank 3: host b: rank 3 refused the flush\)\. The job fails/,
    );
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_500); // asked again every FLUSH_RETRY_MS until about flushTimeoutMs (2 s)
    expect(steps('a').slice(4)).toEqual([RoundStep.PREPARE, RoundStep.PREPARE]); // flushed when asked again: no RESUME
    expect(steps('b').slice(4).length).toBeGreaterThan(5);
    expect(new Set(steps('b').slice(4))).toEqual(new Set([RoundStep.PREPARE]));
    await advance(2_000);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'failed', exitCode: 1 });
    expect(h.catalog!.lastCommittedEpoch('j')!.epoch).toBe(1);
  });

  it('fails the job, naming why, when an agent that stays up never answers the PREPARE that finishes the flush: it does not wait for it as for a lost one', async () => {
    await checkpoint();
    // b refuses, says why when asked again, then never answers (as an agent whose PREPARE waits for ranks that do
    // not come, longer than the time left). Counted as lost, b was waited for to come back, and asked again,
    // for good: the job was held with no end and no error (a CI run of agent-restart.test.ts, 2026-12-06).
    let calls = 0;
    h.nodes.get('b')!.steps.scripts.set(RoundStep.PREPARE, () =>
      ++calls === 1 ? failRanks([3], 'rank 3 refused the flush') : calls === 2 ? failRanks([3], 'rank 3 did not connect to its new agent') : 'hang',
    );
    const { error } = await checkpoint();
    expect(error!.message).toMatch(
      /epoch 2\) aborted: PREPARE failed: rank 3: host b: rank 3 refused the flush; the flush could not be finished on every rank \(PREPARE failed: rank 3: host b: rank 3 did not connect to its new agent\)\. The job fails/,
    );
    expect(events('flush.owed')).toEqual([]);
    await advance(2_000);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'failed', exitCode: 1 });
    expect(h.catalog!.lastCommittedEpoch('j')!.epoch).toBe(1);
  });

  it('asks again a rank whose PREPARE fails once, for any reason, while the flush is finished: every rank resumes', async () => {
    await checkpoint();
    // The first PREPARE fails on b (rank 3 refuses for a moment); the flush is finished by asking again, where b's
    // PREPARE fails once more, with a code that says nothing of a retry. Only a lost agent or the flush timeout
    // may end the attempts: the job would fail of it.
    let failures = 0;
    h.nodes.get('b')!.steps.scripts.set(RoundStep.PREPARE, () =>
      failures++ < 2 ? failRanks([3], 'rank 3 refused the flush for a moment', ErrorCode.INTERNAL) : { failed: new Map(), flush: { drained_messages: 0, drained_bytes: 0, flush_ms: 1 } },
    );
    const { error } = await checkpoint();
    expect(error!.message).toMatch(/epoch 2\) aborted: PREPARE failed: rank 3: host b: rank 3 refused the flush for a moment\. The job keeps running/);
    expect(steps('b').slice(4)).toEqual([RoundStep.PREPARE, RoundStep.PREPARE, RoundStep.PREPARE, RoundStep.RESUME]);
    await advance(1_000);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    expect(flushedRanks()).toEqual([[], []]);
  });

  it('fails the job when an abort cannot wake a rank: left flushed, it would hang the job for ever', async () => {
    await checkpoint();
    h.nodes.get('a')!.steps.scripts.set(RoundStep.DUMP, () => failRanks([0], 'criu dump: no space left on device'));
    h.nodes.get('b')!.steps.scripts.set(RoundStep.RESUME, () => failRanks([3], 'rank 3 did not answer its wake-up'));
    const { error } = await checkpoint();
    expect(error!.message).toMatch(/epoch 2\) aborted: DUMP failed: rank 0: .*; resuming the ranks also failed: RESUME failed: rank 3: host b: rank 3 did not answer its wake-up\. The job fails: a rank left flushed would hang it; epoch 1 remains/);
    await advance(2_000);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'failed', exitCode: 1 });
    expect(h.catalog!.getJob('j')!.detail).toMatch(/^epoch 2 aborted \(DUMP failed: rank 0: .*\), and RESUME failed: rank 3: host b: rank 3 did not answer its wake-up$/);
    for (const host of ['a', 'b']) expect(h.nodes.get(host)!.ranks.running()).toEqual([]);
    expect(h.catalog!.lastCommittedEpoch('j')!.epoch).toBe(1);
  });

  it('aborts when an agent never answers its DUMP but stays up (a dump stuck, an answer lost): every rank resumes, every host discards', async () => {
    await checkpoint();
    h.nodes.get('b')!.steps.scripts.set(RoundStep.DUMP, () => 'hang');
    const { error } = await checkpoint();
    expect(error!.message).toMatch(/DUMP failed: ranks 2,3: host b: round to host b: no answer within 3000 ms\. The job keeps running/);
    expect(h.hostState('b')).toBe('up');
    // b's agent will not register again, so nothing else would wake its ranks: it is asked to resume and discard, like a.
    for (const host of ['a', 'b']) expect(steps(host).slice(4)).toEqual([RoundStep.PREPARE, RoundStep.DUMP, RoundStep.RESUME, RoundStep.DISCARD]);
    expect(flushedRanks()).toEqual([[], []]);
    expect(h.catalog!.getEpoch('j', 2)!.state).toBe('aborted');
    expect(h.catalog!.epochImages('j', 2)).toEqual([]);
    expect(h.catalog!.lastCommittedEpoch('j')!.epoch).toBe(1);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it('aborts when an agent is lost during DUMP: the others resume and discard, its ranks resume once it is back', async () => {
    await checkpoint();
    const { running } = await checkpointHeldOnB(RoundStep.DUMP);
    await h.crashAgent('b');
    const { error } = await running;
    expect(error!.message).toMatch(/DUMP failed: ranks 2,3: host b: .*Ranks on hosts that were lost resume when their agents are back/);
    expect(steps('a').slice(4)).toEqual([RoundStep.PREPARE, RoundStep.DUMP, RoundStep.RESUME, RoundStep.DISCARD]);
    expect(steps('b').slice(4)).toEqual([RoundStep.PREPARE, RoundStep.DUMP]);
    expect(flushedRanks()).toEqual([[], ['j/2', 'j/3']]);
    h.startAgent('b', {}, h.nodes.get('b')!.ranks);
    await advance(2_000);
    expect(h.nodes.get('b')!.steps.seen.map((x) => [x.step, x.ranks, x.epoch])).toEqual([[RoundStep.DISCARD, [2, 3], 2], [RoundStep.RESUME, [2, 3], 2]]);
    expect(flushedRanks()).toEqual([[], []]);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it('ends a job cancelled in the middle of a checkpoint: the epoch aborts, the job is cancelled, the previous epoch stays', async () => {
    await checkpoint();
    const { running } = await checkpointHeldOnB(RoundStep.DUMP);
    await h.coordinator!.jobs.signal('j', 'SIGTERM'); // ferry cancel j, from another terminal
    const { error } = await running;
    expect(error!.message).toMatch(/DUMP failed/);
    await advance(2_000);
    expect(h.catalog!.getEpoch('j', 2)!.state).toBe('aborted');
    expect(h.catalog!.lastCommittedEpoch('j')!.epoch).toBe(1);
    const job = h.catalog!.getJob('j')!;
    expect(job).toMatchObject({ state: 'cancelled', detail: 'cancelled by the operator (SIGTERM)' });
    expect(h.catalog!.listRanks('j').map((r) => [r.state, r.exitCode])).toEqual(Array(4).fill(['exited', 143]));
  });

  it('refuses a second checkpoint while one runs', async () => {
    h.nodes.get('a')!.steps.scripts.set(RoundStep.DUMP, () => new Promise((r) => setTimeout(() => r({ failed: new Map(), images: [] }), 1_000)));
    const first = h.coordinator!.checkpoints.checkpoint('j', { stop: false }).catch((e) => e);
    await advance(200);
    await expect(h.coordinator!.checkpoints.checkpoint('j', { stop: false })).rejects.toThrow(/job j is busy: checkpoint epoch 1 is dumping/);
    await advance(5_000);
    await first;
  });

  it('names an unknown job, and refuses a job that is not running', async () => {
    await expect(h.coordinator!.checkpoints.checkpoint('nope', { stop: false })).rejects.toThrow(/no job "nope"/);
    h.nodes.get('a')!.ranks.exit('j', 0, 0);
    h.nodes.get('a')!.ranks.exit('j', 1, 0);
    h.nodes.get('b')!.ranks.exit('j', 2, 0);
    h.nodes.get('b')!.ranks.exit('j', 3, 0);
    await advance(2_000);
    expect(h.catalog!.getJob('j')!.state).toBe('succeeded');
    await expect(h.coordinator!.checkpoints.checkpoint('j', { stop: false })).rejects.toThrow(/is succeeded, not running/);
  });

  it('with --stop ends the ranks after the commit and leaves the job stopped, not failed', async () => {
    const { result, error } = await checkpoint(true);
    expect(error).toBeUndefined();
    expect(result!.epoch!.state).toBe('committed');
    expect(steps('a')).toEqual([RoundStep.PREPARE, RoundStep.DUMP, RoundStep.STORE, RoundStep.STOP]); // the ranks wait, flushed, for the commit
    expect(h.nodes.get('a')!.steps.seen[1]!.storeSeparately).toBe(true);
    // Left stopped by the dump, until the STOP: a rank computing outside MPI would print and write on.
    expect(h.nodes.get('a')!.steps.seen[1]!.leaveStopped).toBe(true);
    await advance(2_000);
    const job = h.catalog!.getJob('j')!;
    expect(job.state).toBe('stopped');
    expect(job.detail).toMatch(/stopped after checkpoint epoch 1/);
  });

  it('with --stop and a STORE that fails: the epoch aborts, and RESUME reaches every rank (each left stopped by its dump)', async () => {
    h.nodes.get('a')!.steps.scripts.set(RoundStep.STORE, () => failRanks([0], 'rank 0: write manifest.ferry: no space left on device'));
    const { error } = await checkpoint(true);
    expect(error!.message).toMatch(/epoch 1\) aborted: STORE failed: rank 0: .*no space left on device/);
    for (const host of ['a', 'b']) {
      expect(steps(host)).toEqual([RoundStep.PREPARE, RoundStep.DUMP, RoundStep.STORE, RoundStep.RESUME, RoundStep.DISCARD]);
      expect(h.nodes.get(host)!.steps.seen.find((x) => x.step === RoundStep.RESUME)!.ranks).toEqual(host === 'a' ? [0, 1] : [2, 3]);
    }
    await advance(2_000);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it('aborts when a rank dies between PREPARE and FLUSHED, and the job fails naming it', async () => {
    h.nodes.get('a')!.steps.scripts.set(RoundStep.PREPARE, (req) => {
      h.nodes.get('a')!.ranks.exit(req.job_id, 1, 9);
      return failRanks([1], 'rank 1 disconnected (lost) before completing the flush', ErrorCode.UNAVAILABLE);
    });
    const { error } = await checkpoint();
    // (asked again while b flushed, a also said that rank 0, killed as the job fails, is gone)
    expect(error!.message).toMatch(/PREPARE failed: (.*; )?rank 1: host a: rank 1 disconnected/);
    expect(error!.message).toMatch(/there is no committed checkpoint yet/);
    await advance(2_000);
    const job = h.catalog!.getJob('j')!;
    expect(job.state).toBe('failed');
    expect(job.detail).toMatch(/rank 1 on a exited with status 9/);
  });

  it('keeps a committed epoch over a coordinator restart', async () => {
    await checkpoint();
    await h.stopCoordinator();
    h.startCoordinator();
    expect(h.catalog!.lastCommittedEpoch('j')!.epoch).toBe(1);
    expect(h.catalog!.epochImages('j', 1)).toHaveLength(4);
  });
});

describe('a coordinator restart in the middle of a checkpoint', () => {
  const seenSince = (host: string, n: number) => h.nodes.get(host)!.steps.seen.slice(n).map((s) => [s.step, s.ranks, s.epoch]);

  /** Starts a checkpoint whose `step` hangs on every host, and crashes the coordinator in it. */
  async function crashDuring(step: RoundStep, stop = false): Promise<void> {
    for (const host of ['a', 'b']) h.nodes.get(host)!.steps.scripts.set(step, () => 'hang');
    h.coordinator!.checkpoints.checkpoint('j', { stop }).catch(() => {}); // dies with the coordinator
    await advance(300);
    for (const host of ['a', 'b']) expect(steps(host).at(-1)).toBe(step);
    await h.crashCoordinator();
    for (const host of ['a', 'b']) h.nodes.get(host)!.steps.scripts.delete(step);
  }

  it('aborts the epoch it cut short in DUMP; as the agents come back their ranks resume and the partial images go', async () => {
    await crashDuring(RoundStep.DUMP);
    expect(flushedRanks()).toEqual([['j/0', 'j/1'], ['j/2', 'j/3']]);
    h.startCoordinator();
    const epoch = h.catalog!.getEpoch('j', 1)!;
    expect(epoch.state).toBe('aborted');
    expect(epoch.detail).toBe('interrupted: the coordinator restarted while the epoch was dumping');
    await advance(2_000); // the agents re-register with the new coordinator
    expect(seenSince('a', 2)).toEqual([[RoundStep.DISCARD, [0, 1], 1], [RoundStep.RESUME, [0, 1], 1]]);
    expect(seenSince('b', 2)).toEqual([[RoundStep.DISCARD, [2, 3], 1], [RoundStep.RESUME, [2, 3], 1]]);
    expect(flushedRanks()).toEqual([[], []]);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    const abort = h.catalog!.listEvents({ limit: 200 }).find((e) => e.kind === 'checkpoint.abort');
    expect(abort?.message).toBe('job j: epoch 1 aborted: interrupted: the coordinator restarted while the epoch was dumping; there is no committed checkpoint yet');
    // Nothing is left in flight: the next checkpoint gets the next epoch and commits.
    const { result, error } = await checkpoint();
    expect(error).toBeUndefined();
    expect(result!.epoch!.epoch).toBe(2);
    expect(h.catalog!.lastCommittedEpoch('j')!.epoch).toBe(2);
  });

  /** Every PREPARE and RESUME any host sees from now on, in the order they are answered. */
  function recordFlushSteps(prepareMs: Record<string, number> = {}): string[] {
    const order: string[] = [];
    for (const host of ['a', 'b']) {
      const node = h.nodes.get(host)!;
      node.steps.scripts.set(RoundStep.PREPARE, async (req) => {
        if (prepareMs[host]) await new Promise((r) => setTimeout(r, prepareMs[host]));
        order.push(`${host} PREPARE ${req.epoch}`);
        return { failed: new Map(), flush: { drained_messages: req.ranks.length, drained_bytes: 0, flush_ms: 1 } };
      });
      node.steps.scripts.set(RoundStep.RESUME, (req) => {
        order.push(`${host} RESUME ${req.epoch}`);
        return { failed: new Map() };
      });
    }
    return order;
  }

  it('finishes a flush it cut short in PREPARE: the same PREPARE to every rank before any resumes', async () => {
    // a's ranks flush; b's request was never passed on (the coordinator dies while it waits): in a real job
    // a's ranks now wait for the end-of-channel markers of b's, which never come.
    h.nodes.get('b')!.steps.scripts.set(RoundStep.PREPARE, () => 'hang');
    h.coordinator!.checkpoints.checkpoint('j', { stop: false }).catch(() => {});
    await advance(300);
    await h.crashCoordinator();
    expect(flushedRanks()).toEqual([['j/0', 'j/1'], []]);
    const order = recordFlushSteps();
    h.startCoordinator();
    expect(h.catalog!.getEpoch('j', 1)!).toMatchObject({ state: 'aborted', detail: 'interrupted: the coordinator restarted while the epoch was preparing' });
    expect(events('flush.owed')).toEqual([
      'job j: checkpoint epoch 1: the coordinator restarted before the flush was known to have reached every rank; the job waits until the agents on a, b are up (within 30000 ms, or the job fails) to finish it, then resumes',
    ]);
    await advance(2_000);
    // Both PREPAREs (in either order) before the first RESUME.
    expect(order.slice(0, 2).sort()).toEqual(['a PREPARE 1', 'b PREPARE 1']);
    expect(order.slice(2).sort()).toEqual(['a RESUME 1', 'b RESUME 1']);
    expect(flushedRanks()).toEqual([[], []]);
    expect(h.catalog!.openFlushes()).toEqual([]);
    expect(events('flush.completed')).toEqual(['job j: checkpoint epoch 1: the lost agents are back, every rank flushed and was resumed']);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    expect((await checkpoint()).result!.epoch!.epoch).toBe(2);
    expect(h.catalog!.openFlushes()).toEqual([]);
  });

  it('holds the job until every host of it is up; a checkpoint asked meanwhile is refused, naming the host', async () => {
    h.nodes.get('b')!.steps.scripts.set(RoundStep.PREPARE, () => 'hang');
    h.coordinator!.checkpoints.checkpoint('j', { stop: false }).catch(() => {});
    await advance(300);
    await h.crashCoordinator();
    const ranksOfB = h.nodes.get('b')!.ranks;
    await h.crashAgent('b');
    const order = recordFlushSteps();
    h.startCoordinator();
    await advance(2_000);
    expect(order).toEqual([]); // a is up, b is not: nothing is asked, nothing resumed
    expect(h.coordinator!.operations.describeRunning()).toEqual(['job j: its ranks wait for the agents on a, b to finish the flush of checkpoint epoch 1']);
    const refused = await checkpoint();
    expect(refused.error?.message).toMatch(/^job j has ranks 2,3 on host b, which is (down|unknown): cannot take a checkpoint/);
    h.startAgent('b', {}, ranksOfB);
    const orderB = recordFlushSteps(); // (b's new agent has scripts of its own)
    await advance(2_000);
    expect(orderB.slice(0, 2).sort()).toEqual(['a PREPARE 1', 'b PREPARE 1']);
    expect(orderB.slice(2).sort()).toEqual(['a RESUME 1', 'b RESUME 1']);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it('fails the job when a host of it does not come back, and leaves no flush open', async () => {
    h.nodes.get('b')!.steps.scripts.set(RoundStep.PREPARE, () => 'hang');
    h.coordinator!.checkpoints.checkpoint('j', { stop: false }).catch(() => {});
    await advance(300);
    await h.crashCoordinator();
    await h.crashAgent('b');
    h.startCoordinator();
    await advance(35_000);
    expect(h.catalog!.getJob('j')!.state).toBe('failed');
    expect(h.catalog!.getJob('j')!.detail).toMatch(/host b/);
    expect(h.catalog!.openFlushes()).toEqual([]);
  });

  it('finishes a PREPARE that a host answered only after its agent registered with the new coordinator', async () => {
    const order = recordFlushSteps({ b: 1_500 }); // b's ranks flush after the coordinator is gone (within its flush timeout)
    h.coordinator!.checkpoints.checkpoint('j', { stop: false }).catch(() => {});
    await advance(300);
    await h.crashCoordinator();
    h.startCoordinator();
    await advance(5_000); // b answers its first PREPARE to no one, then the one sent again
    expect(order.filter((x) => x.includes('RESUME')).sort()).toEqual(['a RESUME 1', 'b RESUME 1']);
    const firstResume = order.findIndex((x) => x.includes('RESUME'));
    expect(order.slice(0, firstResume).filter((x) => x.startsWith('b PREPARE')).length).toBe(2);
    expect(flushedRanks()).toEqual([[], []]);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it('aborts the epoch it cut short in the RESUME before STORE: its ranks resume as their agents come back, the images go', async () => {
    await crashDuring(RoundStep.RESUME);
    h.startCoordinator();
    expect(h.catalog!.getEpoch('j', 1)!).toMatchObject({ state: 'aborted', detail: 'interrupted: the coordinator restarted while the epoch was dumped' });
    await advance(2_000);
    expect(seenSince('a', 3)).toEqual([[RoundStep.DISCARD, [0, 1], 1], [RoundStep.RESUME, [0, 1], 1]]);
    expect(seenSince('b', 3)).toEqual([[RoundStep.DISCARD, [2, 3], 1], [RoundStep.RESUME, [2, 3], 1]]);
    expect(flushedRanks()).toEqual([[], []]);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    expect(h.catalog!.lastCommittedEpoch('j')).toBeUndefined();
  });

  it('aborts the epoch it cut short in STORE: the ranks run on, and each host discards the images as its agent registers', async () => {
    await crashDuring(RoundStep.STORE);
    expect(flushedRanks()).toEqual([[], []]); // resumed before STORE
    h.startCoordinator();
    expect(h.catalog!.getEpoch('j', 1)!).toMatchObject({ state: 'aborted', detail: 'interrupted: the coordinator restarted while the epoch was storing' });
    await advance(2_000);
    expect(seenSince('a', 4)).toEqual([[RoundStep.DISCARD, [0, 1], 1]]);
    expect(seenSince('b', 4)).toEqual([[RoundStep.DISCARD, [2, 3], 1]]);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    // Once: a host whose agent registers again is not told twice.
    await h.crashAgent('a');
    h.startAgent('a', {}, h.nodes.get('a')!.ranks);
    await advance(2_000);
    expect(steps('a')).toEqual([]);
    expect((await checkpoint()).result!.epoch!.epoch).toBe(2);
  });

  it('lets agents register after the job of an epoch it cut short in STORE was deleted', async () => {
    await crashDuring(RoundStep.STORE);
    h.startCoordinator();
    await advance(2_000);
    for (const [host, ranks] of [['a', [0, 1]], ['b', [2, 3]]] as const) for (const r of ranks) h.nodes.get(host)!.ranks.exit('j', r, 0);
    await advance(100);
    expect(h.catalog!.getJob('j')!.state).toBe('succeeded');
    let deleted: unknown;
    h.coordinator!.retention.deleteJob('j', false).then((r) => (deleted = r), (e) => (deleted = e));
    for (let t = 0; !deleted && t < 10_000; t += 100) await advance(100);
    expect(deleted).toMatchObject({ purged: true });
    // The epoch's entry among the images to discard (a host may come back with them) named a job that is gone:
    // the registration of every host not told yet failed on it ("unknown job 'j'"), again and again (found by
    // the soak: an agent restarted after the job was deleted never came back).
    const c = h.startAgent('c');
    await advance(2_000);
    expect(c.state).toBe('registered');
  });

  it('ends the ranks of a checkpoint --stop it committed but did not see through: the job is stopped at that epoch', async () => {
    await crashDuring(RoundStep.STOP, true);
    h.startCoordinator();
    await advance(2_000);
    expect(seenSince('a', 4)).toEqual([[RoundStep.STOP, [0, 1], 1]]);
    expect(seenSince('b', 4)).toEqual([[RoundStep.STOP, [2, 3], 1]]);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'stopped', detail: 'stopped after checkpoint epoch 1; ferry restart j continues it' });
    expect(h.catalog!.getEpoch('j', 1)!.state).toBe('committed');
    // A restart clears the intent: the restarted job runs.
    let restarted: unknown;
    h.coordinator!.moves.restart('j', {}).then((r) => (restarted = r), (e) => (restarted = e));
    for (let t = 0; !restarted && t < 10_000; t += 100) await advance(100);
    expect(restarted).toHaveProperty('moves');
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'running', stopAfterEpoch: 0 });
  });

  it('wakes the ranks an abort could not reach once their hosts are back (a network cut during DUMP)', async () => {
    for (const host of ['a', 'b']) h.nodes.get(host)!.steps.scripts.set(RoundStep.DUMP, () => 'hang');
    let error: unknown;
    h.coordinator!.checkpoints.checkpoint('j', { stop: false }).catch((e) => (error = e));
    await advance(300);
    h.hub.severed = true; // both agents fall silent: DUMP fails, and the abort's RESUME reaches no one
    await advance(1_000);
    expect((error as Error).message).toMatch(/epoch 1\) aborted: DUMP failed/);
    expect(flushedRanks()).toEqual([['j/0', 'j/1'], ['j/2', 'j/3']]);
    for (const host of ['a', 'b']) h.nodes.get(host)!.steps.scripts.delete(RoundStep.DUMP);
    h.hub.severed = false;
    await advance(8_000); // the agents find the coordinator again and re-register
    expect(seenSince('a', 2)).toEqual([[RoundStep.DISCARD, [0, 1], 1], [RoundStep.RESUME, [0, 1], 1]]);
    expect(seenSince('b', 2)).toEqual([[RoundStep.DISCARD, [2, 3], 1], [RoundStep.RESUME, [2, 3], 1]]);
    expect(flushedRanks()).toEqual([[], []]);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it('holds the job while it wakes ranks, so a checkpoint asked meanwhile is refused, not run under it', async () => {
    await crashDuring(RoundStep.DUMP);
    for (const host of ['a', 'b']) h.nodes.get(host)!.steps.scripts.set(RoundStep.DISCARD, () => new Promise((r) => setTimeout(() => r({ failed: new Map() }), 1_000)));
    h.startCoordinator();
    await advance(600); // registered; the first DISCARD is under way
    const { error } = await checkpoint(false, 100, 100);
    expect(error?.code).toBe(ErrorCode.BUSY);
    expect(error?.message).toMatch(/job j is busy: ranks [0-9,]+ on host [ab], left flushed, are being resumed/);
    await advance(3_000);
    expect(flushedRanks()).toEqual([[], []]);
    expect((await checkpoint()).result!.epoch!.epoch).toBe(2);
  });
});

describe('a coordinator asked to stop during a checkpoint', () => {
  it('lets it end first (its ranks resume), refusing anything new meanwhile', async () => {
    for (const host of ['a', 'b']) h.nodes.get(host)!.steps.scripts.set(RoundStep.DUMP, (req) => new Promise((r) => setTimeout(() => r({ failed: new Map(), images: req.dump_ranks.map((rank) => ({ rank, location: `/i/${rank}`, size_bytes: 1, manifest_sha256: 'c'.repeat(64), files: 1 })) }), 2_000)));
    let result: CheckpointReplyInit | undefined;
    h.coordinator!.checkpoints.checkpoint('j', { stop: false }).then((r) => (result = r));
    await advance(300);
    let stopped = false;
    void h.coordinator!.stop().then(() => (stopped = true)); // the daemon's stop: drains
    await expect(h.coordinator!.moves.migrate('j', new Map([[1, 'b']]))).rejects.toThrow(/the coordinator is shutting down: nothing new starts on job j/);
    await advance(1_000);
    expect(stopped).toBe(false);
    await advance(2_000);
    expect(stopped).toBe(true);
    expect(result!.epoch!.state).toBe('committed');
    for (const host of ['a', 'b']) expect(steps(host).slice(-2)).toEqual([RoundStep.RESUME, RoundStep.STORE]);
  });

  it('cuts short what has not ended within its drain time, saying so', async () => {
    for (const host of ['a', 'b']) h.nodes.get(host)!.steps.scripts.set(RoundStep.DUMP, () => 'hang'); // until dumpTimeoutMs (3 s)
    h.coordinator!.checkpoints.checkpoint('j', { stop: false }).catch(() => {});
    await advance(300);
    let stopped = false;
    void h.coordinator!.stop(1_000).then(() => (stopped = true));
    await advance(500);
    expect(stopped).toBe(false);
    await advance(1_000);
    expect(stopped).toBe(true);
    const event = h.catalog!.listEvents({ limit: 200 }).find((e) => e.kind === 'coordinator.stop');
    expect(event?.message).toBe('stopping with operations under way, cut short: job j: checkpoint epoch 1 is dumping');
  });
});

describe('periodic checkpoints', () => {
  it("tell the job's followers when they fail (the first time, then every 10th in a row) and when one commits again", async () => {
    const notices = h.followNotices('j');
    await advance(10);
    h.coordinator!.periodic.set('j', 5_000);
    await advance(5_500);
    expect(h.catalog!.lastCommittedEpoch('j')!.epoch).toBe(1);
    h.nodes.get('b')!.steps.scripts.set(RoundStep.DUMP, () => failRanks([2, 3], 'criu dump: no space left on device'));
    const failures = () => h.catalog!.listEvents({ limit: 1000 }).filter((e) => e.kind === 'checkpoint.periodic-failed').length;
    for (let t = 0; t < 200_000 && failures() < 11; t += 500) await advance(500);
    expect(notices).toHaveLength(2);
    expect(notices[0]).toMatch(/^periodic checkpoint failed: checkpoint of job j \(epoch 2\) aborted: DUMP failed: .*no space left on device.*epoch 1 remains the last committed checkpoint/);
    expect(notices[1]).toMatch(/^periodic checkpoint failed \(10 in a row\): checkpoint of job j \(epoch 11\) aborted: DUMP failed/);
    h.nodes.get('b')!.steps.scripts.delete(RoundStep.DUMP);
    for (let t = 0; t < 20_000 && notices.length < 3; t += 500) await advance(500);
    expect(notices[2]).toBe('periodic checkpoint epoch 13 committed, after 11 that failed');
    await advance(6_000);
    expect(notices).toHaveLength(3); // working again: nothing more to say
  });

  it('checkpoints every interval, survives a coordinator restart, and stops when turned off', async () => {
    h.coordinator!.periodic.set('j', 5_000);
    await advance(16_000);
    // three commits; the coordinator's default keeps the images of the newest 2
    expect(h.catalog!.listEpochs('j').map((e) => e.state)).toEqual(['deleted', 'committed', 'committed']);
    // The interval is in the catalog: a restarted coordinator keeps checkpointing.
    await h.stopCoordinator();
    h.startCoordinator();
    await advance(11_000);
    expect(h.catalog!.listEpochs('j').length).toBeGreaterThanOrEqual(4);
    h.coordinator!.periodic.set('j', 0);
    const n = h.catalog!.listEpochs('j').length;
    await advance(20_000);
    expect(h.catalog!.listEpochs('j')).toHaveLength(n);
    expect(() => h.coordinator!.periodic.set('j', 10)).toThrow(/at least 1000 ms/);
  });

  it('take a turn that found the job busy as soon as it is free, not an interval later', async () => {
    const committed = () => h.catalog!.listEpochs('j').filter((e) => e.state === 'committed').map((e) => e.epoch);
    h.coordinator!.periodic.set('j', 10_000);
    await advance(9_000);
    // The operator's checkpoint holds the job over the turn (its DUMP takes 2 s), then fails.
    let dumps = 0;
    h.nodes.get('b')!.steps.scripts.set(RoundStep.DUMP, async (req) => {
      if (dumps++ > 0) return { failed: new Map(), images: h.nodes.get('b')!.steps.dumpImages(req) };
      await new Promise((r) => setTimeout(r, 2_000));
      return failRanks([2, 3], 'criu dump: no space left on device');
    });
    expect((await checkpoint()).error?.message).toMatch(/no space left on device/);
    await advance(2_500); // the turn, due at 10 s, comes within a second of the job being free (at about 11 s)
    expect(committed()).toEqual([2]);
    expect(h.catalog!.getEpoch('j', 2)!.startedMs).toBeLessThan(h.catalog!.getEpoch('j', 1)!.updatedMs + 1_100);
    expect(events('checkpoint.periodic-failed')).toEqual([]);
  });

  it("count a checkpoint that committed less than an interval before a turn as that turn's", async () => {
    const committed = () => h.catalog!.listEpochs('j').filter((e) => e.state === 'committed').map((e) => e.epoch);
    h.coordinator!.periodic.set('j', 10_000);
    await advance(8_000);
    expect((await checkpoint()).result?.epoch?.epoch).toBe(1); // the operator's, at about 8 s
    await advance(4_000); // past the turn at 10 s: no second checkpoint for nothing
    expect(committed()).toEqual([1]);
    await advance(7_000); // an interval after the operator's
    expect(committed()).toEqual([1, 2]);
  });

  it('one cut short by the coordinator going away ends quietly: nothing touches the closed catalog', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      h.nodes.get('b')!.steps.scripts.set(RoundStep.DUMP, () => 'hang');
      h.coordinator!.periodic.set('j', 5_000);
      await advance(5_500);
      expect(h.catalog!.inFlightEpochs().map((e) => e.state)).toEqual(['dumping']);
      await h.crashCoordinator(); // its catalog closed first, then stopped: the checkpoint's requests fail after that
      await advance(10_000); // past the DUMP's timeout
      expect(unhandled.map(String)).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
