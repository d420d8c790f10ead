// Image replicas (coordinator --image-replicas N): after a commit each image is
// copied to hosts that do not see its store, in name order after its writer;
// a restart reads a replica in place or fetches it from its host when the
// writer is down; a lost rank goes to its replica's host; copies that failed,
// or that a dead coordinator left half made, are removed; replicas go with
// their epoch. Over the in-memory transport with scripted agents: every host
// has a store of its own, except s1 and s2, which share one.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode, RoundStep, type ImageSource, type MoveReplyInit } from '../../src/gen/proto.js';
import { HOST_REJOIN_GRACE_MS, WAIT_FOR_COPIES_MS } from '../../src/coordinator/coordinator-config.js';
import { planReplicas } from '../../src/coordinator/checkpoint/image-replication.js';
import { failRanks } from './simulated-node.js';
import { ControlPlaneHarness, settle } from './control-plane-harness.js';

let h: ControlPlaneHarness;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);
const STORES: Record<string, string> = { a: 'store-a', b: 'store-b', c: 'store-c', d: 'store-d' };
/** What each host was asked to FETCH. */
const fetched = new Map<string, ImageSource[]>();
/** Hosts asked for a FETCH whose copy need not be fsynced. */
const transientFetches: string[] = [];

function startAgent(host: string, store = STORES[host]!): void {
  h.startAgent(host, { imageStore: store });
  h.nodes.get(host)!.steps.scripts.set(RoundStep.FETCH, (req) => {
    fetched.set(host, [...(fetched.get(host) ?? []), ...req.sources]);
    if (req.transient) transientFetches.push(host);
    return { failed: new Map(), bytesFetched: req.sources.filter((s) => s.server !== '').length * 1000 };
  });
}

async function setUp(config: { imageReplicas: number; keepEpochs?: number; dumpTimeoutMs?: number }): Promise<void> {
  vi.useFakeTimers();
  fetched.clear();
  transientFetches.length = 0;
  h = new ControlPlaneHarness({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 500, flushTimeoutMs: 2_000, dumpTimeoutMs: 3_000, resumeTimeoutMs: 2_000, ...config });
  h.startCoordinator();
  for (const host of Object.keys(STORES)) startAgent(host);
  await advance(50);
}

afterEach(async () => {
  await h.close();
  vi.useRealTimers();
});

/** Job j: ranks 0,1 on a, 2,3 on b. */
async function submit(autoRestarts = 0): Promise<void> {
  await h.submit({ world_size: 4, rank_hosts: { 0: 'a', 1: 'a', 2: 'b', 3: 'b' }, auto_restarts: autoRestarts });
  await advance(10);
}

async function checkpoint(stop = false): Promise<void> {
  const { error } = await settle(h.coordinator!.checkpoints.checkpoint('j', { stop }));
  expect(error).toBeUndefined();
  await advance(500); // the copies run once the checkpoint has released the job
}

async function stopAgent(host: string): Promise<void> {
  await h.crashAgent(host);
  await advance(1_000);
  expect(h.hostState(host)).toBe('down');
}

/** rank -> [source host, server] of what `host` was told to fetch. */
const sourcesOf = (host: string) => Object.fromEntries((fetched.get(host) ?? []).map((s) => [s.rank, [s.host, s.server]]));
const replicas = (epoch: number) => h.catalog!.epochReplicas('j', epoch).map((r) => `${r.rank}@${r.host}:${r.state}`);
const discards = (host: string) => h.nodes.get(host)!.steps.seen.filter((s) => s.step === RoundStep.DISCARD).map((s) => `${s.epoch}:${s.ranks.join(',')}`);
const events = (kind: string) => h.catalog!.listEvents({ limit: 1000 }).filter((e) => e.kind === kind).map((e) => e.message);

describe('image replicas', () => {
  it('copies each image of a committed epoch to the next host after its writer, verified, once the checkpoint is done', async () => {
    await setUp({ imageReplicas: 1 });
    await submit();
    // Held while they copy: what comes next waits or is refused, never runs under them.
    let releaseFetch: () => void = () => {};
    h.nodes.get('b')!.steps.scripts.set(RoundStep.FETCH, (req) => {
      fetched.set('b', [...(fetched.get('b') ?? []), ...req.sources]);
      return new Promise((res) => (releaseFetch = () => res({ failed: new Map(), bytesFetched: 2000 })));
    });
    const { value, error } = await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: false }));
    expect(error).toBeUndefined();
    expect(value!.epoch!.replicated_images).toBe(0); // answered at the commit, before the copies
    await advance(100);
    expect(replicas(1)).toEqual(['0@b:copying', '1@b:copying', '2@c:stored', '3@c:stored']);
    // An operator's checkpoint meanwhile waits for the copies, then runs.
    const next = h.coordinator!.checkpoints.checkpoint('j', { stop: false });
    await advance(1_000);
    expect(h.catalog!.getEpoch('j', 2)).toBeUndefined();
    h.nodes.get('b')!.steps.scripts.set(RoundStep.FETCH, () => ({ failed: new Map(), bytesFetched: 2000 }));
    releaseFetch();
    const second = await settle(next);
    expect(second.error).toBeUndefined();
    expect(second.value!.epoch!.epoch).toBe(2);
    await advance(500);
    // a's images go to b, b's to c: each fetched from its writer's image server.
    expect(sourcesOf('b')).toEqual({ 0: ['a', 'tcp://images.a:1'], 1: ['a', 'tcp://images.a:1'] });
    expect(sourcesOf('c')).toEqual({ 2: ['b', 'tcp://images.b:1'], 3: ['b', 'tcp://images.b:1'] });
    expect(fetched.get('a')).toBeUndefined();
    // A replica is a lasting copy: fsynced (unlike a migration's or a restart's).
    expect(transientFetches).toEqual([]);
    for (const epoch of [1, 2]) expect(replicas(epoch)).toEqual(['0@b:stored', '1@b:stored', '2@c:stored', '3@c:stored']);
    const info = h.coordinator!.checkpoints.epochInfo('j', 1);
    expect([info.replicated_images, info.replica_hosts]).toEqual([4, ['b', 'c']]);
    expect(events('checkpoint.replicated')[0]).toMatch(/^job j: epoch 1: images copied to b \(ranks 0,1\), c \(ranks 2,3\), 4000 bytes in \d+ ms$/);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it("refuses an operator's operation as busy when the copies take longer than it waits", async () => {
    await setUp({ imageReplicas: 1, dumpTimeoutMs: 10 * WAIT_FOR_COPIES_MS });
    await submit();
    h.nodes.get('c')!.steps.scripts.set(RoundStep.FETCH, () => 'hang');
    await checkpoint();
    const started = Date.now();
    const busy = await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: false }), 120_000);
    expect(busy.error!.code).toBe(ErrorCode.BUSY);
    expect(busy.error!.message).toMatch(/job j is busy: the images of epoch 1 are being copied to other hosts/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(WAIT_FOR_COPIES_MS);
  });

  it('makes none with --image-replicas 0', async () => {
    await setUp({ imageReplicas: 0 });
    await submit();
    await checkpoint();
    expect(replicas(1)).toEqual([]);
    for (const host of ['b', 'c', 'd']) expect(fetched.get(host)).toBeUndefined();
  });

  it('restarts with the writer down from its replica: in place on the replica host, fetched from it elsewhere', async () => {
    await setUp({ imageReplicas: 1 });
    await submit();
    await checkpoint(true);
    await stopAgent('a');
    fetched.clear();
    const { value, error } = await settle<MoveReplyInit>(h.coordinator!.moves.restart('j', { rankHosts: new Map([[0, 'b'], [1, 'd'], [2, 'b'], [3, 'd']]) }));
    expect(error).toBeUndefined();
    expect(value!.epoch).toBe(1);
    expect(sourcesOf('b')).toEqual({ 0: ['b', ''], 2: ['b', ''] });
    expect(sourcesOf('d')).toEqual({ 1: ['b', 'tcp://images.b:1'], 3: ['b', 'tcp://images.b:1'] });
    expect(value!.bytes_shipped).toBe(2000);
    expect(h.catalog!.listRanks('j').map((r) => `${r.host}:${r.state}`)).toEqual(['b:running', 'd:running', 'b:running', 'd:running']);
    // The replica read in place stays (it is the epoch's); d's fetched copies go.
    expect(discards('b')).toEqual([]);
    expect(discards('d')).toEqual(['1:1,3']);
    // With a down, ranks 0 and 1 had one live copy left (b's): c got another (topped up), before the restart.
    expect(replicas(1)).toEqual(['0@b:stored', '0@c:stored', '1@b:stored', '1@c:stored', '2@c:stored', '3@c:stored']);
  });

  it("fetches an image again from its replica when the writer's agent dies during a restart's FETCH", async () => {
    await setUp({ imageReplicas: 1 });
    await submit();
    await checkpoint(true);
    fetched.clear();
    const asked: string[][] = [];
    h.nodes.get('d')!.steps.scripts.set(RoundStep.FETCH, (req) => {
      asked.push(req.sources.map((s) => `${s.rank}<${s.host}`));
      const fromA = req.sources.filter((s) => s.host === 'a').map((s) => s.rank);
      if (fromA.length === 0) return { failed: new Map(), bytesFetched: req.sources.length * 1000 };
      void h.crashAgent('a'); // for good: its images are still on b (replicas)
      return { ...failRanks(fromA, 'image server tcp://images.a:1: no connection for 3000 ms', ErrorCode.UNAVAILABLE), bytesFetched: 2000 };
    });
    const { value, error } = await settle<MoveReplyInit>(h.coordinator!.moves.restart('j', { hosts: ['d'] }));
    expect(error).toBeUndefined();
    expect(asked).toEqual([['0<a', '1<a', '2<b', '3<b'], ['0<b', '1<b']]);
    expect(value!.bytes_shipped).toBe(4000);
    expect(events('fetch.again')).toEqual([
      'job j: FETCH failed: ranks 0,1: host d: image server tcp://images.a:1: no connection for 3000 ms; fetching again: rank 0 on d from b (tcp://images.b:1), rank 1 on d from b (tcp://images.b:1)',
    ]);
    expect(h.catalog!.listRanks('j').map((r) => `${r.host}:${r.state}`)).toEqual(['d:running', 'd:running', 'd:running', 'd:running']);
  });

  it("fetches a copy again from the writer's next agent when its agent is restarted during the copy", async () => {
    await setUp({ imageReplicas: 1 });
    await submit();
    const asked: string[][] = [];
    h.nodes.get('b')!.steps.scripts.set(RoundStep.FETCH, (req) => {
      asked.push(req.sources.map((s) => `${s.rank}<${s.server}`));
      if (asked.length > 1) return { failed: new Map(), bytesFetched: req.sources.length * 1000 };
      // a's agent is restarted (a supervisor): its next one serves the same disk from a new address. It is
      // refused until the coordinator sees the dead one down, and tries again every 100 ms (no jitter).
      void h.crashAgent('a').then(() => h.startAgent('a', { imageStore: STORES.a, imageServer: 'tcp://images.a:2' }, undefined, undefined, () => 0));
      return failRanks([0, 1], 'image server tcp://images.a:1: no connection for 3000 ms', ErrorCode.UNAVAILABLE);
    });
    await checkpoint(true);
    await advance(2_000);
    expect(asked).toEqual([
      ['0<tcp://images.a:1', '1<tcp://images.a:1'],
      ['0<tcp://images.a:2', '1<tcp://images.a:2'],
    ]);
    expect(replicas(1)).toEqual(['0@b:stored', '1@b:stored', '2@c:stored', '3@c:stored']);
    expect(events('fetch.again')).toEqual([
      'job j: FETCH failed: ranks 0,1: host b: image server tcp://images.a:1: no connection for 3000 ms; fetching again: rank 0 on b from a (tcp://images.a:2), rank 1 on b from a (tcp://images.a:2)',
    ]);
    expect(events('checkpoint.replicate-failed')).toEqual([]);
  });

  it('makes the copies a lost replica host held again on a live host', async () => {
    await setUp({ imageReplicas: 1 });
    await submit();
    await checkpoint();
    await stopAgent('c');
    await advance(500);
    // Ranks 2 and 3 (written by b, up) had their only replica on c: d copies them from b.
    expect(replicas(1)).toEqual(['0@b:stored', '1@b:stored', '2@c:stored', '2@d:stored', '3@c:stored', '3@d:stored']);
    expect(sourcesOf('d')).toEqual({ 2: ['b', 'tcp://images.b:1'], 3: ['b', 'tcp://images.b:1'] });
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    // Back again: nothing more to copy; the epoch's images simply have one copy more until it goes.
    fetched.clear();
    startAgent('c');
    await advance(1_000);
    expect(fetched.size).toBe(0);
  });

  it('refuses, with nothing started, when the writer and every replica host are down, naming them', async () => {
    await setUp({ imageReplicas: 1 });
    await submit();
    await checkpoint(true);
    // c and d cannot take copies (their disks are full): the copies made when a, then b, goes fail.
    for (const host of ['c', 'd']) h.nodes.get(host)!.steps.scripts.set(RoundStep.FETCH, (req) => failRanks(req.ranks, 'no space left on device'));
    await stopAgent('a');
    await stopAgent('b');
    const { error } = await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(error!.code).toBe(ErrorCode.HOST_DOWN);
    expect(error!.message).toMatch(
      /epoch 1 of job j: the image of rank 0 is on host a, which is down, and its replicas on host b \(down\) cannot be reached either; nothing was started/,
    );
    expect(h.catalog!.getJob('j')!.state).toBe('stopped');
  });

  it('an automatic restart after the writer is lost puts its ranks on their replica host, reading in place', async () => {
    await setUp({ imageReplicas: 1 });
    await submit(1);
    await checkpoint();
    expect(replicas(1)).toEqual(['0@b:stored', '1@b:stored', '2@c:stored', '3@c:stored']);
    fetched.clear();
    await stopAgent('a');
    await advance(HOST_REJOIN_GRACE_MS);
    for (let t = 0; t < 20_000 && h.catalog!.getJob('j')!.state !== 'running'; t += 100) await advance(100);
    expect(h.catalog!.getJob('j')!.state, h.catalog!.getJob('j')!.detail ?? '').toBe('running');
    expect(h.catalog!.listRanks('j').map((r) => `${r.rank}:${r.host}`)).toEqual(['0:b', '1:b', '2:b', '3:b']);
    expect(sourcesOf('b')).toEqual({ 0: ['b', ''], 1: ['b', ''], 2: ['b', ''], 3: ['b', ''] });
    // Once it runs again, the epoch it came from gets back its second live copy of ranks 0 and 1 (on c).
    await advance(500);
    expect(replicas(1)).toEqual(['0@b:stored', '0@c:stored', '1@b:stored', '1@c:stored', '2@c:stored', '3@c:stored']);
  });

  it('an automatic restart falls back to the newest epoch it can read: the copies of the last one were not made', async () => {
    await setUp({ imageReplicas: 1 });
    await submit(1);
    await checkpoint();
    // Epoch 2's copies of a's images to b never complete: a dies before.
    h.nodes.get('b')!.steps.scripts.set(RoundStep.FETCH, () => 'hang');
    await checkpoint();
    expect(replicas(2)).toEqual(['0@b:copying', '1@b:copying', '2@c:stored', '3@c:stored']);
    h.nodes.get('b')!.steps.scripts.set(RoundStep.FETCH, (req) => ({ failed: new Map(), bytesFetched: req.sources.length * 1000 }));
    await stopAgent('a');
    await advance(HOST_REJOIN_GRACE_MS);
    for (let t = 0; t < 20_000 && h.catalog!.getJob('j')!.state !== 'running'; t += 100) await advance(100);
    const job = h.catalog!.getJob('j')!;
    expect(job.state, job.detail ?? '').toBe('running');
    expect(job.branchFrom).toBe(1);
    expect(events('job.auto-restart')).toEqual([
      expect.stringContaining(
        'restarting it from epoch 1 (epoch 2 cannot be read: the image of rank 0 is on host a, which is down, and there is no other copy) on the live hosts (automatic restarts left: 0)',
      ),
    ]);
    expect(events('job.auto-restarted')).toEqual([expect.stringMatching(/^job j: restarted from epoch 1 on b$/)]);
    // The half-made copies of epoch 2 went.
    expect(replicas(2)).toEqual(['2@c:stored', '3@c:stored']);
  });

  it('removes a copy that failed, keeps the others, and says so', async () => {
    await setUp({ imageReplicas: 1 });
    await submit();
    h.nodes.get('b')!.steps.scripts.set(RoundStep.FETCH, () => failRanks([1], 'checksum mismatch in pages-1.img', ErrorCode.IMAGE_CORRUPT));
    await checkpoint();
    expect(replicas(1)).toEqual(['0@b:stored', '2@c:stored', '3@c:stored']);
    expect(discards('b')).toEqual(['1:1']);
    expect(events('checkpoint.replicate-failed')).toEqual([
      'job j: epoch 1: not every replica was made: FETCH failed: rank 1: host b: checksum mismatch in pages-1.img',
    ]);
  });

  it('removes replicas a coordinator that died during the copy left half made, once their host registers', async () => {
    await setUp({ imageReplicas: 1 });
    await submit();
    h.nodes.get('c')!.steps.scripts.set(RoundStep.FETCH, () => 'hang');
    const { error } = await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: false }));
    expect(error).toBeUndefined();
    await advance(200);
    expect(replicas(1)).toEqual(['0@b:stored', '1@b:stored', '2@c:copying', '3@c:copying']);
    // A sweep (a host registering) leaves the copies being made alone.
    h.coordinator!.retention.removeInBackground();
    await advance(200);
    expect(discards('c')).toEqual([]);
    await h.crashCoordinator();
    h.nodes.get('c')!.steps.scripts.delete(RoundStep.FETCH);
    h.startCoordinator();
    await advance(2_000);
    expect(discards('c')).toEqual(['1:2,3']);
    // Ranks 2 and 3 then had no replica: another host (the first one up) got them.
    expect(replicas(1).filter((r) => r.includes('@c'))).toEqual([]);
    expect(replicas(1)).toEqual(['0@b:stored', '1@b:stored', expect.stringMatching(/^2@[ad]:stored$/), expect.stringMatching(/^3@[ad]:stored$/)]);
  });

  it("makes no replica on a host of the store where a restart's copy of the image waits for removal", async () => {
    await setUp({ imageReplicas: 1 });
    startAgent('t', 'store-tu');
    startAgent('u', 'store-tu'); // t and u share one images directory
    await advance(50);
    await submit();
    await checkpoint(true); // (stopped: its copies are topped up as hosts go down)
    expect(replicas(1)).toEqual(['0@b:stored', '1@b:stored', '2@c:stored', '3@c:stored']);
    // A restart fetched rank 0 to t, and could not remove that copy: it is one folder with u's, if u made one.
    h.catalog!.recordRestartCopies('j', 1, new Map([[0, 't']]));
    for (const host of ['c', 'd', 'b']) await stopAgent(host);
    await advance(500);
    expect(sourcesOf('u')[0]).toBeUndefined();
    expect(replicas(1).filter((r) => r.startsWith('0@'))).toEqual(['0@b:stored']); // (on b, down: none made in its place)
  });

  it('go with their epoch: retention and ferry delete remove them, a host that was down when it comes back', async () => {
    await setUp({ imageReplicas: 1, keepEpochs: 1 });
    await submit();
    await checkpoint();
    await checkpoint();
    await advance(500);
    // Epoch 1 retired: its images on a and b, and its replicas on b and c, removed.
    expect(replicas(1)).toEqual([]);
    expect(discards('c')).toEqual(['1:2,3']);
    expect(discards('b')).toEqual(expect.arrayContaining(['1:2,3', '1:0,1']));
    // Epoch 2's replica host c is down when the job is deleted: its replicas wait for it.
    await checkpoint(true);
    await stopAgent('c');
    const del = await settle(h.coordinator!.retention.deleteJob('j', true));
    expect(del.error).toBeUndefined();
    expect(del.value!.waiting_hosts).toEqual(['c']);
    // Removed at once: ranks 0,1 on b and the copies of 2,3 that d made when c went down (images of 1000-1003 bytes).
    expect([del.value!.replicas_removed, Number(del.value!.replica_bytes_removed)]).toEqual([4, 4006]);
    expect(h.catalog!.deletedJobs()).toEqual(['j']);
    startAgent('c');
    await advance(2_000);
    expect(discards('c')).toEqual(['3:2,3']);
    expect(h.catalog!.deletedJobs()).toEqual([]); // purged once the last replica went
  });
});

describe("a job's own number of image replicas", () => {
  const submitOwn = async (id: string, own: number | null) => {
    await h.submit({ job_id: id, world_size: 2, rank_hosts: { 0: 'a', 1: 'b' }, own_image_replicas: own !== null, image_replicas: own ?? 0 });
    await advance(10);
  };
  const copies = (id: string, epoch = 1) => h.catalog!.epochReplicas(id, epoch).map((r) => `${r.rank}@${r.host}:${r.state}`);
  const checkpointOf = async (id: string) => {
    const { value, error } = await settle(h.coordinator!.checkpoints.checkpoint(id, { stop: false }));
    expect(error).toBeUndefined();
    await advance(500);
    return value!;
  };

  it("wins over the coordinator's: copies for the job that asks, none for one that does not", async () => {
    await setUp({ imageReplicas: 0 });
    await submitOwn('more', 1);
    await submitOwn('plain', null);
    expect((await checkpointOf('more')).replicas_to_copy).toBe(1);
    expect((await checkpointOf('plain')).replicas_to_copy).toBe(0);
    expect(copies('more')).toEqual(['0@b:stored', '1@c:stored']);
    expect(copies('plain')).toEqual([]);
    const info = h.coordinator!.jobs.jobInfo('more');
    expect([info.image_replicas, info.own_image_replicas]).toEqual([1, true]);
  });

  it("a job that says 0 gets none under a coordinator's 2, not even when a host goes down", async () => {
    await setUp({ imageReplicas: 2 });
    await submitOwn('none', 0);
    const { error } = await settle(h.coordinator!.checkpoints.checkpoint('none', { stop: true }));
    expect(error).toBeUndefined();
    await advance(500);
    expect(copies('none')).toEqual([]);
    await stopAgent('a'); // topUp: a stopped job whose rank 0 has no live copy left
    expect(copies('none')).toEqual([]);
  });

  it('set on a running job: more copies of its newest epoch are made at once; an unknown job or too many are refused', async () => {
    await setUp({ imageReplicas: 0 });
    await submitOwn('j', null);
    await checkpointOf('j');
    expect(copies('j')).toEqual([]);
    h.coordinator!.replication.set('j', 2);
    await advance(500);
    expect(copies('j')).toEqual(['0@b:stored', '0@c:stored', '1@c:stored', '1@d:stored']);
    expect(h.coordinator!.jobs.jobInfo('j').image_replicas).toBe(2);
    // Back to the coordinator's 0: the copies there are stay with their epoch, the next epoch gets none.
    h.coordinator!.replication.set('j', null);
    expect([h.coordinator!.jobs.jobInfo('j').image_replicas, h.coordinator!.jobs.jobInfo('j').own_image_replicas]).toEqual([0, false]);
    await checkpointOf('j');
    expect(copies('j', 2)).toEqual([]);
    expect(copies('j', 1)).toHaveLength(4);
    expect(() => h.coordinator!.replication.set('nope', 1)).toThrow(/no job "nope" in the catalog/);
    expect(() => h.coordinator!.replication.set('j', 9)).toThrow(/a job keeps 0 to 8 copies of each image on other hosts; got 9/);
    const tooMany = await settle(h.submit({ job_id: 'k', world_size: 1, own_image_replicas: true, image_replicas: 9 }));
    expect(tooMany.error!.code).toBe(ErrorCode.BAD_REQUEST);
  });
});

describe('planReplicas', () => {
  const host = (name: string, imageStore: string, state = 'up') => ({ name, imageStore, state, imageServer: `tcp://images.${name}:1` });
  const image = (rank: number, writer: string, imageStore: string) => ({ rank, epoch: 1, host: writer, location: `/i/${rank}`, manifestSha256: 'a'.repeat(64), imageStore });
  const plan = (...args: Parameters<typeof planReplicas>) => {
    const p = planReplicas(...args);
    return { copies: Object.fromEntries([...p.copies].map(([h, s]) => [h, s.map((x) => x.rank)])), short: p.short };
  };

  it('skips hosts that are down, of the same store, or already holding one; wraps around after the last', () => {
    const hosts = [host('a', 'sa'), host('b', 'sb', 'down'), host('c', 'sc'), host('d', 'sc'), host('e', 'se')];
    expect(plan([image(0, 'a', 'sa'), image(1, 'e', 'se')], hosts, 2, new Map([[1, ['a']]]))).toEqual({
      // rank 0: b is down, c taken, d shares c's store, then e; rank 1: a holds one, then c.
      copies: { c: [0, 1], e: [0] },
      short: [],
    });
  });

  it('copies nothing of an image in a store another host shares, and says when there are too few hosts', () => {
    const hosts = [host('s1', 'shared'), host('s2', 'shared'), host('x', 'sx')];
    expect(plan([image(0, 's1', 'shared'), image(1, 'x', 'sx')], hosts, 2, new Map())).toEqual({
      copies: { s1: [1] },
      short: ['rank 1: 1 of 2 replicas: no other live host with an images directory of its own'],
    });
  });

  it("copies nothing to a host that sees a replica's store already (its holder being down)", () => {
    const hosts = [host('a', 'sa'), host('r', 'sr', 'down'), host('r2', 'sr'), host('z', 'sz')];
    const img = { ...image(0, 'a', 'sa'), replicaHosts: ['r'] };
    // One live copy wanted besides the original: r2 reads r's store, so none is made.
    expect(plan([img], hosts, 1, new Map()).copies).toEqual({});
  });

  it('leaves out a host where a restart copy of the image waits for removal', () => {
    const hosts = [host('a', 'sa'), host('b', 'sb'), host('c', 'sc')];
    expect(plan([image(0, 'a', 'sa')], hosts, 1, new Map(), new Map([[0, ['b']]])).copies).toEqual({ c: [0] });
  });
});
