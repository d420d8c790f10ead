// Epoch retention over the in-memory transport with scripted agents: a job
// keeps the images of its newest N committed epochs; older ones become
// 'deleted' and each host holding their images gets DISCARD of exactly its
// ranks, now or when it is back; a deleted epoch is never restarted.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode, RoundStep } from '../../src/gen/proto.js';
import { ControlPlaneHarness, QUICK_ROUNDS, settle } from './control-plane-harness.js';
import { failRanks } from './simulated-node.js';
import { ENDED_EPOCHS_LISTED } from '../../src/coordinator/coordinator-config.js';

let h: ControlPlaneHarness;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);
/** a and c mount one images directory; b has its own. */
const STORES: Record<string, string> = { a: 'store-ac', b: 'store-b', c: 'store-ac' };

beforeEach(async () => {
  vi.useFakeTimers();
  h = new ControlPlaneHarness(QUICK_ROUNDS);
  h.startCoordinator();
  for (const host of Object.keys(STORES)) h.startAgent(host, { imageStore: STORES[host] });
  await advance(50);
  await h.submit({ world_size: 4, hosts: ['a', 'b'] });
  await advance(10);
});

afterEach(async () => {
  await h.close();
  vi.useRealTimers();
});


async function checkpoint(stop = false): Promise<number> {
  const { value, error } = await settle(h.coordinator!.checkpoints.checkpoint('j', { stop }));
  expect(error).toBeUndefined();
  await advance(100); // the DISCARDs of what was retired
  return Number(value!.epoch!.epoch);
}

/** DISCARDs a host was sent: [epoch, ranks]. */
const discards = (host: string) => h.nodes.get(host)!.steps.seen.filter((s) => s.step === RoundStep.DISCARD).map((s) => [s.epoch, s.ranks]);
const states = () => h.catalog!.listEpochs('j').map((e) => [e.epoch, e.state]);
const events = (kind: string) => h.catalog!.listEvents({ limit: 500 }).filter((e) => e.kind === kind).map((e) => e.message);

async function stopAgent(host: string): Promise<void> {
  await h.crashAgent(host);
  await advance(1_000);
  expect(h.hostState(host)).toBe('down');
}

describe('epoch retention', () => {
  it("keeps the coordinator's default of 2: the third commit deletes epoch 1 and each host removes its own ranks' images", async () => {
    expect(h.coordinator!.jobs.jobInfo('j').keep_epochs).toBe(2);
    await checkpoint();
    await checkpoint();
    expect(discards('a')).toEqual([]);
    await checkpoint();
    expect(states()).toEqual([[1, 'deleted'], [2, 'committed'], [3, 'committed']]);
    expect(discards('a')).toEqual([[1, [0, 1]]]);
    expect(discards('b')).toEqual([[1, [2, 3]]]);
    expect(discards('c')).toEqual([]);
    // The DISCARD came after the new epoch's commit (its STORE), and the ranks were not held for it.
    expect(h.nodes.get('a')!.steps.stepsSeen().slice(-3)).toEqual([RoundStep.RESUME, RoundStep.STORE, RoundStep.DISCARD]);
    expect(h.catalog!.imagesToRemove('j')).toEqual([]);
    expect(h.catalog!.epochImages('j', 1).every((i) => i.removedMs !== null)).toBe(true);
    expect(h.catalog!.epochImages('j', 2).every((i) => i.removedMs === null)).toBe(true);
    expect(events('checkpoint.retire')).toEqual(['job j: epoch 1 deleted (keeping the 2 newest committed)']);
    expect(events('checkpoint.images-removed')).toHaveLength(2);
    expect(h.coordinator!.checkpoints.epochInfo('j', 1)).toMatchObject({ state: 'deleted', detail: 'deleted: the job keeps its 2 newest committed epochs' });
  });

  it('applies retention at coordinator start: a commit whose coordinator died before retiring the old epochs', async () => {
    h.catalog!.setKeepEpochs('j', 3);
    for (let i = 0; i < 3; i++) await checkpoint();
    // As if the third commit's coordinator had died before its retention: the catalog keeps 3, the job 2.
    h.catalog!.setKeepEpochs('j', 2);
    await h.crashCoordinator();
    h.startCoordinator();
    await advance(1_000);
    expect(states()).toEqual([[1, 'deleted'], [2, 'committed'], [3, 'committed']]);
    expect(discards('b').map(([epoch]) => epoch)).toContain(1);
  });

  it(`lists a job's ${ENDED_EPOCHS_LISTED} newest epochs that ended unkept: older deleted ones leave the catalog once their images are removed, and aborted ones too`, async () => {
    await h.coordinator!.retention.set('j', 1);
    const commits = ENDED_EPOCHS_LISTED + 4;
    for (let i = 0; i < commits; i++) await checkpoint();
    const deleted = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => [from + i, 'deleted']);
    expect(states()).toEqual([...deleted(commits - ENDED_EPOCHS_LISTED, commits - 1), [commits, 'committed']]);
    expect(discards('a').map(([epoch]) => epoch)).toEqual(Array.from({ length: commits - 1 }, (_, i) => i + 1)); // every one's images went first
    expect(events('checkpoint.retire')[0]).toBe('job j: epoch 1 deleted (keeping the 1 newest committed)'); // the events keep their story
    // Checkpoints that keep failing: each abort forgets the oldest.
    h.nodes.get('b')!.steps.scripts.set(RoundStep.STORE, () => failRanks([3], 'rank 3: write manifest.ferry: no space left on device'));
    for (let i = 0; i < 3; i++) expect((await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: false }))).error?.message).toMatch(/aborted/);
    expect(states()).toEqual([
      ...deleted(commits - ENDED_EPOCHS_LISTED + 3, commits - 1),
      [commits, 'committed'],
      [commits + 1, 'aborted'],
      [commits + 2, 'aborted'],
      [commits + 3, 'aborted'],
    ]);
    expect(h.catalog!.lastCommittedEpoch('j')!.epoch).toBe(commits);
  });

  it('never restarts a deleted epoch: the error names it and the epochs that can be restarted', async () => {
    await checkpoint();
    await checkpoint();
    await checkpoint(true); // commits epoch 3 and stops the job
    expect(h.catalog!.getJob('j')!.state).toBe('stopped');
    const { error } = await settle(h.coordinator!.moves.restart('j', { epoch: 1, hosts: ['a', 'b'] }));
    expect(error!.code).toBe(ErrorCode.BAD_REQUEST);
    expect(error!.message).toBe('epoch 1 of job j was deleted (deleted: the job keeps its 2 newest committed epochs); committed epochs with images: 2, 3');
    // nothing was asked of the agents for it
    expect(h.nodes.get('a')!.steps.stepsSeen()).not.toContain(RoundStep.FETCH);
    const ok = await settle(h.coordinator!.moves.restart('j', { epoch: 2, hosts: ['a', 'b'] }));
    expect(ok.error).toBeUndefined();
  });

  it('applies a new number at once, refuses a bad one, and refuses while an operation runs on the job', async () => {
    for (let i = 0; i < 2; i++) await checkpoint();
    await expect(h.coordinator!.retention.set('j', -1)).rejects.toThrow(/keeps 1 to 1000000 committed epochs/);
    await expect(h.coordinator!.retention.set('nope', 1)).rejects.toThrow(/no job "nope"/);
    await h.coordinator!.retention.set('j', 1);
    await advance(100);
    expect(states()).toEqual([[1, 'deleted'], [2, 'committed']]);
    expect(discards('b')).toEqual([[1, [2, 3]]]);
    expect(h.coordinator!.jobs.jobInfo('j').keep_epochs).toBe(1);

    // A checkpoint runs (its DUMP hangs for a while): changing the number now is refused.
    h.nodes.get('a')!.steps.scripts.set(RoundStep.DUMP, () => 'hang');
    const running = settle(h.coordinator!.checkpoints.checkpoint('j', { stop: false }));
    await advance(300);
    await expect(h.coordinator!.retention.set('j', 5)).rejects.toThrow(/job j is busy: checkpoint epoch 3 is dumping/);
    await running;
    // 0: back to the coordinator's default
    await h.coordinator!.retention.set('j', 0);
    expect(h.coordinator!.jobs.jobInfo('j').keep_epochs).toBe(2);
  });

  it('removes the images of a host that was down when their epoch was deleted once it is back', async () => {
    await checkpoint();
    await checkpoint();
    const ranksOfB = h.nodes.get('b')!.ranks;
    await stopAgent('b');
    // b is down: the job cannot be checkpointed, but the number can shrink
    await h.coordinator!.retention.set('j', 1);
    await advance(100);
    expect(states()).toEqual([[1, 'deleted'], [2, 'committed']]);
    expect(discards('a')).toEqual([[1, [0, 1]]]);
    expect(h.catalog!.imagesToRemove('j').map((i) => [i.epoch, i.rank])).toEqual([[1, 2], [1, 3]]);

    h.startAgent('b', { imageStore: STORES.b }, ranksOfB);
    await advance(300);
    expect(discards('b')).toEqual([[1, [2, 3]]]);
    expect(h.catalog!.imagesToRemove('j')).toEqual([]);
  });

  it("has another host of the writer's image store remove its images when the writer is down", async () => {
    await checkpoint();
    await checkpoint();
    await stopAgent('a'); // c mounts a's images directory
    await h.coordinator!.retention.set('j', 1);
    await advance(100);
    expect(states()).toEqual([[1, 'deleted'], [2, 'committed']]);
    expect(discards('c')).toEqual([[1, [0, 1]]]);
    expect(discards('b')).toEqual([[1, [2, 3]]]);
    expect(h.catalog!.imagesToRemove('j')).toEqual([]);
  });

  it('keeps an image listed when its host fails to remove it, says so, and tries again when the host registers', async () => {
    for (let i = 0; i < 2; i++) await checkpoint();
    h.nodes.get('b')!.steps.scripts.set(RoundStep.DISCARD, () => failRanks([3], 'EACCES: permission denied'));
    await checkpoint();
    expect(h.catalog!.imagesToRemove('j').map((i) => [i.epoch, i.rank])).toEqual([[1, 3]]);
    expect(events('checkpoint.remove-failed')).toEqual([
      'job j: the images of deleted epoch 1 stay on host b for now: DISCARD failed: rank 3: host b: EACCES: permission denied',
    ]);
    const ranksOfB = h.nodes.get('b')!.ranks;
    await stopAgent('b');
    h.startAgent('b', { imageStore: STORES.b }, ranksOfB);
    await advance(300);
    expect(discards('b')).toEqual([[1, [3]]]);
    expect(h.catalog!.imagesToRemove('j')).toEqual([]);
  });
});

describe('epoch retention after a restart from an older epoch', () => {
  it('keeps the epoch restarted from as the fallback, and deletes the ones taken after it at the next commit', async () => {
    await checkpoint();
    await checkpoint();
    await checkpoint(true); // epochs 1 (deleted), 2, 3; the job stops
    const { error } = await settle(h.coordinator!.moves.restart('j', { epoch: 2, hosts: ['a', 'b'] }));
    expect(error).toBeUndefined();
    await advance(100);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    expect(states()).toEqual([[1, 'deleted'], [2, 'committed'], [3, 'committed']]); // 3 may still be wanted back
    expect(await checkpoint()).toBe(4);
    // 4 and its ancestor 2 are kept; 3 was another history.
    expect(states()).toEqual([[1, 'deleted'], [2, 'committed'], [3, 'deleted'], [4, 'committed']]);
    expect(discards('a').at(-1)).toEqual([3, [0, 1]]);
    expect(discards('b').at(-1)).toEqual([3, [2, 3]]);
    expect(events('checkpoint.retire').at(-1)).toBe('job j: epoch 3 deleted: taken after epoch 2, which the job was restarted from');
    expect(h.coordinator!.checkpoints.epochInfo('j', 3).detail).toBe('deleted: left behind when the job was restarted from epoch 2');
  });
});

describe('ferry delete', () => {
  /** Every rank of job j exits with `code`: the job ends. */
  async function endJob(code: number): Promise<void> {
    for (const [host, ranks] of [['a', [0, 1]], ['b', [2, 3]]] as const) for (const r of ranks) h.nodes.get(host)!.ranks.exit('j', r, code);
    await advance(100);
  }

  it('refuses a running job, and a stopped one without force, naming what to do', async () => {
    await checkpoint();
    const running = await settle(h.coordinator!.retention.deleteJob('j', false));
    expect(running.error!.code).toBe(ErrorCode.BUSY);
    expect(running.error!.message).toBe('job j is running: ferry cancel j ends it, then ferry delete j deletes it');
    await checkpoint(true); // epoch 2, and the job stops
    const stopped = await settle(h.coordinator!.retention.deleteJob('j', false));
    expect(stopped.error!.code).toBe(ErrorCode.BAD_REQUEST);
    expect(stopped.error!.message).toBe('job j is stopped, and ferry restart j can continue it from epoch 2; ferry delete j --force deletes it with its epochs');
    expect(states()).toEqual([[1, 'committed'], [2, 'committed']]);
    expect(discards('a')).toEqual([]);
    const unknown = await settle(h.coordinator!.retention.deleteJob('nope', true));
    expect(unknown.error!.code).toBe(ErrorCode.UNKNOWN_JOB);
  });

  it('refuses a failed job with a committed epoch without force: it may be restarted from it', async () => {
    await checkpoint();
    await endJob(3);
    expect(h.catalog!.getJob('j')!.state).toBe('failed');
    const failed = await settle(h.coordinator!.retention.deleteJob('j', false));
    expect(failed.error!.message).toBe('job j failed, and ferry restart j can continue it from epoch 1; ferry delete j --force deletes it with its epochs');
    const forced = await settle(h.coordinator!.retention.deleteJob('j', true));
    expect(forced.value).toMatchObject({ epochs: [1], images_removed: 4, purged: true });
  });

  it('deletes a job that never checkpointed: nothing to remove, gone at once', async () => {
    await endJob(0);
    const { value } = await settle(h.coordinator!.retention.deleteJob('j', false));
    expect(value).toEqual({ job_id: 'j', epochs: [], images_removed: 0, bytes_removed: 0, images_waiting: 0, waiting_hosts: [], purged: true, log_hosts: 0, log_bytes_removed: 0, replicas_removed: 0, replica_bytes_removed: 0 });
    expect(h.catalog!.getJob('j')).toBeUndefined();
    const unknown = await settle(h.coordinator!.retention.deleteJob('j', false));
    expect(unknown.error!.code).toBe(ErrorCode.UNKNOWN_JOB);
  });

  it('removes every epoch from every host, then forgets the job; its id is free again', async () => {
    await checkpoint();
    await checkpoint();
    await checkpoint(); // epoch 1 deleted by retention already
    await endJob(0);
    expect(h.catalog!.getJob('j')!.state).toBe('succeeded');
    const bytes = [2, 3].flatMap((e) => h.catalog!.epochImages('j', e)).reduce((n, i) => n + i.sizeBytes, 0);
    expect(bytes).toBeGreaterThan(0);
    const { value, error } = await settle(h.coordinator!.retention.deleteJob('j', false));
    expect(error).toBeUndefined();
    expect(value).toEqual({ job_id: 'j', epochs: [2, 3], images_removed: 8, bytes_removed: bytes, images_waiting: 0, waiting_hosts: [], purged: true, log_hosts: 0, log_bytes_removed: 0, replicas_removed: 0, replica_bytes_removed: 0 });
    expect(discards('a')).toEqual([[1, [0, 1]], [2, [0, 1]], [3, [0, 1]]]);
    expect(discards('b')).toEqual([[1, [2, 3]], [2, [2, 3]], [3, [2, 3]]]);
    expect(h.catalog!.getJob('j')).toBeUndefined();
    expect(h.catalog!.deletedJobs()).toEqual([]);
    expect(() => h.coordinator!.jobs.jobInfo('j')).toThrow(/no job "j"/);
    const restart = await settle(h.coordinator!.moves.restart('j', { hosts: ['a', 'b'] }));
    expect(restart.error!.code).toBe(ErrorCode.UNKNOWN_JOB);
    expect(events('job.delete')).toEqual(['job j (succeeded) deleted by the operator with epochs 2,3']);
    expect(events('job.purged')).toHaveLength(1);
    // The id can name a new job, which starts from nothing.
    await h.submit({ world_size: 2, hosts: ['a'] });
    expect(h.catalog!.listEpochs('j')).toEqual([]);
  });

  it('deletes a stopped job with force; images on a down host wait for it, and the job is purged once they are gone', async () => {
    await checkpoint();
    await checkpoint(true);
    const ranksOfB = h.nodes.get('b')!.ranks;
    await stopAgent('b');
    const { value, error } = await settle(h.coordinator!.retention.deleteJob('j', true));
    expect(error).toBeUndefined();
    expect(value).toMatchObject({ epochs: [1, 2], images_removed: 4, images_waiting: 4, waiting_hosts: ['b'], purged: false });
    // Gone for every request already, though its row waits for b.
    expect(h.catalog!.getJob('j')).toBeUndefined();
    expect(h.catalog!.deletedJobs()).toEqual(['j']);
    const again = await settle(h.submit({ world_size: 1, hosts: ['a'] }));
    expect(again.error!.message).toMatch(/job 'j' was deleted and its images are still being removed/);

    h.startAgent('b', { imageStore: STORES.b }, ranksOfB);
    await advance(300);
    expect(discards('b')).toEqual([[1, [2, 3]], [2, [2, 3]]]);
    expect(h.catalog!.deletedJobs()).toEqual([]);
    expect(events('job.purged')).toEqual(['job j: no image of it is left; the job is gone from the catalog']);
  });
});
