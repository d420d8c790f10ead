// `ferry forget HOST`: a host that is down is gone for good. What only it held
// is lost (a committed epoch that needed it becomes 'lost', and a restart says
// so), its live ranks are lost at once, copies it held are made again
// elsewhere, and whatever waited for it (a deleted job's images) stops
// waiting. Over the in-memory transport, with the operator's request on the
// wire; every host has an image store of its own, unless a test shares one.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode, RoundStep, type ForgetHostReply } from '../../src/gen/proto.js';
import { FerryError } from '../../src/common/ferry-error.js';
import { failRanks } from './simulated-node.js';
import { HOST_REJOIN_GRACE_MS } from '../../src/coordinator/coordinator-config.js';
import { ControlPlaneHarness, settle } from './control-plane-harness.js';

let h: ControlPlaneHarness;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);
const HOSTS = ['a', 'b', 'c', 'd'];

async function setUp(imageReplicas: number, stores: Record<string, string> = {}): Promise<void> {
  vi.useFakeTimers();
  h = new ControlPlaneHarness({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 500, flushTimeoutMs: 2_000, dumpTimeoutMs: 3_000, resumeTimeoutMs: 2_000, imageReplicas });
  h.startCoordinator();
  for (const host of HOSTS) h.startAgent(host, { imageStore: stores[host] ?? `store-${host}` });
  await advance(50);
}

afterEach(async () => {
  await h.close();
  vi.useRealTimers();
});

/** Job j: ranks 0,1 on a, 2,3 on b; one checkpoint (with --stop: the job ends stopped). */
async function jobWithEpoch(stop: boolean): Promise<void> {
  await h.submit({ world_size: 4, rank_hosts: { 0: 'a', 1: 'a', 2: 'b', 3: 'b' } });
  await advance(10);
  const { error } = await settle(h.coordinator!.checkpoints.checkpoint('j', { stop }));
  expect(error).toBeUndefined();
  await advance(500); // copies (--image-replicas) run once the checkpoint released the job
}

async function stopAgent(host: string): Promise<void> {
  await h.crashAgent(host);
  await advance(1_000);
  expect(h.hostState(host)).toBe('down');
}

async function forget(host: string): Promise<{ value?: ForgetHostReply; error?: FerryError }> {
  const r = await settle(h.ask({ forget_host: { host } }));
  return { value: r.value?.forget_host as ForgetHostReply | undefined, error: r.error };
}

const replicas = () => h.catalog!.epochReplicas('j', 1).map((r) => `${r.rank}@${r.host}:${r.state}`);
const discards = (host: string) => h.nodes.get(host)!.steps.seen.filter((s) => s.step === RoundStep.DISCARD).map((s) => `${s.epoch}:${s.ranks.join(',')}`);
const events = (kind: string) => h.catalog!.listEvents({ limit: 1000 }).filter((e) => e.kind === kind).map((e) => e.message);

describe('ferry forget HOST', () => {
  it('refuses a host that is up and one it does not know, naming them, and changes nothing', async () => {
    await setUp(0);
    await jobWithEpoch(true);
    const up = await forget('a');
    expect(up.error!.code).toBe(ErrorCode.BAD_REQUEST);
    expect(up.error!.message).toMatch(/^host a is up .*only a host that is down can be forgotten; move its ranks away with `ferry drain a` and stop its agent first$/);
    const unknown = await forget('zz');
    expect(unknown.error!.code).toBe(ErrorCode.UNKNOWN_HOST);
    expect(unknown.error!.message).toBe('host "zz" is not known to the coordinator');
    expect(h.catalog!.getEpoch('j', 1)!.state).toBe('committed');
    expect(h.catalog!.listHosts().map((x) => x.name)).toEqual(HOSTS);
  });

  it('loses the epoch whose images only it held: a restart says so, and the images left elsewhere are removed', async () => {
    await setUp(0);
    await jobWithEpoch(true);
    await stopAgent('a');
    // Before: the restart is refused as for any host that is down, which may come back.
    const before = await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(before.error!.message).toMatch(/the image of rank 0 is on host a, which is down, and there is no other copy/);
    const { value, error } = await forget('a');
    expect(error).toBeUndefined();
    expect(value!.lost_epochs.map((e) => [e.job_id, Number(e.epoch), e.ranks])).toEqual([['j', 1, [0, 1]]]);
    expect([value!.images_lost, value!.images_kept_by_replicas, value!.failed_jobs]).toEqual([2, 0, []]);
    expect(h.catalog!.getEpoch('j', 1)!.state).toBe('lost');
    expect(h.coordinator!.hosts.get('a')).toBeUndefined();
    expect(h.catalog!.listHosts().map((x) => x.name)).toEqual(['b', 'c', 'd']);
    const why = 'lost: the images of ranks 0,1 had no copy but on host a, which the operator forgot';
    const after = await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(after.error!.code).toBe(ErrorCode.BAD_REQUEST);
    expect(after.error!.message).toBe(`job j has no committed checkpoint to restart from; epoch 1 is ${why}`);
    const named = await settle(h.coordinator!.moves.restart('j', { epoch: 1, hosts: ['c', 'd'] }));
    expect(named.error!.message).toBe(`epoch 1 of job j is ${why}; it has no committed epoch left`);
    await advance(500);
    expect(discards('b')).toEqual(['1:2,3']); // the lost epoch's images that b still held
    expect(h.catalog!.imagesToRemove('j')).toEqual([]);
    expect(events('host.forgotten')).toEqual(['host a forgotten by the operator: 2 images of committed epochs were there only; lost: job j epoch 1 (ranks 0,1)']);
    expect(events('checkpoint.lost')).toEqual(['job j: epoch 1 is lost: ranks 0,1 had no image but on host a, which was forgotten']);
  });

  it('ends the wait of a deleted job for images on that host: the job leaves the catalog', async () => {
    await setUp(0);
    await jobWithEpoch(true);
    await stopAgent('a');
    const del = await settle(h.coordinator!.retention.deleteJob('j', true));
    expect([del.value!.waiting_hosts, del.value!.purged]).toEqual([['a'], false]);
    expect(h.catalog!.deletedJobs()).toEqual(['j']);
    const { value } = await forget('a');
    expect(value!.lost_epochs).toEqual([]); // deleted already: nothing committed lost
    await advance(500);
    expect(h.catalog!.deletedJobs()).toEqual([]);
    expect(events('job.purged')).toHaveLength(1);
  });

  it('ends the wait of a deleted job for its ranks given up with that host: the job leaves the catalog', async () => {
    await setUp(0);
    await h.submit({ world_size: 4, rank_hosts: { 0: 'a', 1: 'a', 2: 'b', 3: 'b' } });
    await advance(10);
    await stopAgent('b');
    await advance(HOST_REJOIN_GRACE_MS); // ranks 2,3 given up with b (they may run on there, fenced): the job fails
    expect(h.catalog!.getJob('j')!.state).toBe('failed');
    const del = await settle(h.coordinator!.retention.deleteJob('j', false));
    expect(del.error).toBeUndefined();
    expect(h.catalog!.deletedJobs()).toEqual(['j']); // b would kill them when back
    await forget('b');
    await advance(500);
    expect(h.catalog!.deletedJobs()).toEqual([]);
  });

  it('loses its live ranks at once, keeps the epoch a replica still holds, and makes a new copy of it', async () => {
    await setUp(1);
    await jobWithEpoch(false);
    expect(replicas()).toEqual(['0@b:stored', '1@b:stored', '2@c:stored', '3@c:stored']);
    await stopAgent('a'); // ranks 0,1 wait out the rejoin grace (30 s by default) ...
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    const { value, error } = await forget('a'); // ... not any more
    expect(error).toBeUndefined();
    expect(value!.failed_jobs).toEqual(['j']);
    expect(h.catalog!.getJob('j')!.state).toBe('failed');
    expect(h.catalog!.getJob('j')!.detail).toMatch(/ranks 0,1 lost: host a is down and the operator forgot it/);
    expect([value!.images_lost, value!.images_kept_by_replicas, value!.lost_epochs]).toEqual([2, 2, []]);
    expect(h.catalog!.getEpoch('j', 1)!.state).toBe('committed');
    // The original is gone: ranks 0 and 1 get a second live copy, from b.
    expect(value!.jobs_getting_copies).toEqual(['j']);
    await advance(1_000);
    expect(replicas()).toEqual(['0@b:stored', '0@c:stored', '1@b:stored', '1@c:stored', '2@c:stored', '3@c:stored']);
    const restart = await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(restart.error).toBeUndefined();
  });

  it('forgets the replicas it held: an epoch whose last copy of an image was there is lost', async () => {
    await setUp(1);
    await jobWithEpoch(true);
    // No new copies can be made: every FETCH to c or d fails.
    for (const host of ['c', 'd']) h.nodes.get(host)!.steps.scripts.set(RoundStep.FETCH, (req) => failRanks(req.sources.map((s) => s.rank), 'disk full'));
    await stopAgent('a');
    expect((await forget('a')).value!.lost_epochs).toEqual([]); // b holds replicas of 0,1
    await advance(1_000);
    expect(replicas()).toEqual(['0@b:stored', '1@b:stored', '2@c:stored', '3@c:stored']);
    await stopAgent('b');
    const { value } = await forget('b');
    // 0,1: original on a (forgotten), replica on b; 2,3: original on b, replicas on c.
    expect(value!.lost_epochs.map((e) => [Number(e.epoch), e.ranks])).toEqual([[1, [0, 1]]]);
    expect([value!.images_lost, value!.images_kept_by_replicas, value!.replicas_dropped]).toEqual([2, 2, 2]);
    expect(h.catalog!.getEpoch('j', 1)!.state).toBe('lost');
    await advance(1_000);
    expect(discards('c').at(-1)).toBe('1:2,3'); // the lost epoch's replicas go too (before: the failed copies)
    expect(replicas()).toEqual([]);
  });

  it('loses nothing of a host whose image store another host shares: that one reads its images', async () => {
    await setUp(0, { a: 'store-ac', c: 'store-ac' });
    await jobWithEpoch(true);
    await stopAgent('a');
    const { value } = await forget('a');
    expect([value!.shared_store, value!.images_lost, value!.lost_epochs]).toEqual(['store-ac', 0, []]);
    expect(h.catalog!.getEpoch('j', 1)!.state).toBe('committed');
    const restart = await settle(h.coordinator!.moves.restart('j', { rankHosts: new Map([[0, 'c'], [1, 'c'], [2, 'd'], [3, 'd']]) }));
    expect(restart.error).toBeUndefined();
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it('hands the replicas of a host in a shared store to another host of that store', async () => {
    await setUp(1, { b: 'store-bc', c: 'store-bc' });
    await jobWithEpoch(true);
    // a's images went to b (store-bc); b's are in a store c shares: not copied.
    expect(replicas()).toEqual(['0@b:stored', '1@b:stored']);
    await stopAgent('b');
    const { value } = await forget('b');
    expect([value!.shared_store, value!.replicas_dropped, value!.lost_epochs]).toEqual(['store-bc', 0, []]);
    expect(replicas()).toEqual(['0@c:stored', '1@c:stored']);
    // Even without a, the epoch restarts: c reads the replicas of 0,1 and b's originals in place.
    await stopAgent('a');
    expect((await forget('a')).value!.lost_epochs).toEqual([]);
    const restart = await settle(h.coordinator!.moves.restart('j', { rankHosts: new Map([[0, 'c'], [1, 'c'], [2, 'c'], [3, 'd']]) }));
    expect(restart.error).toBeUndefined();
  });

  it('takes an agent that registers under a forgotten name again as a new host, which removes the image folders it held', async () => {
    await setUp(1);
    await jobWithEpoch(true); // a holds ranks 0,1 of epoch 1; b's ranks 2,3 have replicas on c
    await h.submit({ job_id: 'k', world_size: 2, rank_hosts: { 0: 'b', 1: 'b' } });
    await advance(10);
    expect((await settle(h.coordinator!.checkpoints.checkpoint('k', { stop: true }))).error).toBeUndefined();
    await advance(500);
    expect(h.catalog!.epochReplicas('k', 1).map((r) => `${r.rank}@${r.host}`)).toEqual(['0@c', '1@c']);
    await stopAgent('a');
    await stopAgent('c');
    await forget('a');
    await forget('c');
    h.startAgent('a', { imageStore: 'store-a' });
    h.startAgent('c', { imageStore: 'store-c' });
    await advance(500);
    expect(h.hostState('a')).toBe('up');
    expect(h.catalog!.listHosts().map((x) => x.name)).toEqual(HOSTS);
    // Nothing of the old host comes back with it, and what its disk still held is removed: a's own
    // images (b's replicas keep the epoch restorable); c's replicas of k and of j (2,3 from the
    // checkpoint, 0,1 from the top-up when a went down, while c was still up).
    expect(h.catalog!.getEpoch('j', 1)!.state).toBe('committed');
    expect(discards('a')).toEqual(['1:0,1']);
    expect(discards('c').sort()).toEqual(['1:0,1', '1:0,1,2,3']);
    expect(h.catalog!.forgottenImageDirs('a')).toEqual([]);
    expect(h.catalog!.forgottenImageDirs('c')).toEqual([]);
    expect(events('host.stale-images-removed')).toEqual([
      'host a, forgotten before, registered again: it removed the 2 image folders it held then',
      'host c, forgotten before, registered again: it removed the 6 image folders it held then',
    ]);
  });

  it('restarts from the replicas once the forgotten host is back under its name: its own folders were removed', async () => {
    await setUp(1);
    await jobWithEpoch(true); // a holds ranks 0,1 of epoch 1, replicated on b
    await stopAgent('a');
    await forget('a');
    h.startAgent('a', { imageStore: 'store-a' }); // with its old disk, whose folders of epoch 1 go
    await advance(500);
    expect(discards('a')).toEqual(['1:0,1']);
    for (const x of HOSTS) h.nodes.get(x)!.steps.seen.length = 0;
    // Placed by itself, no rank goes to a for an image there; sent to d, ranks 0,1 fetch a replica, not a's folders.
    expect((await settle(h.coordinator!.moves.restart('j', {}))).error).toBeUndefined();
    expect(h.catalog!.listRanks('j').map((r) => r.host)).not.toContain('a');
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    for (const x of HOSTS) h.nodes.get(x)!.steps.seen.length = 0;
    expect((await settle(h.coordinator!.moves.restart('j', { epoch: 1, hosts: ['d'] }))).error).toBeUndefined();
    const sources = h.nodes.get('d')!.steps.seen.filter((s) => s.step === RoundStep.FETCH).flatMap((s) => s.sources);
    expect(sources.filter((s) => s.rank < 2).map((s) => s.host)).toEqual(['b', 'b']);
  });
});
