// Restart and migration when hosts share an image store (one images directory
// over NFS): over the in-memory transport with scripted agents. Which source
// each target is told to use, that a restart needs no live writer when another
// live host sees its store, and that without one it is refused before
// anything starts.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode, RoundStep, type ImageSource, type MoveReplyInit } from '../../src/gen/proto.js';
import { ControlPlaneHarness, QUICK_ROUNDS, settle } from './control-plane-harness.js';

let h: ControlPlaneHarness;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);
/** a and c mount one images directory; b and d have their own; e is an agent that reports no store. */
const STORES: Record<string, string> = { a: 'store-ac', b: 'store-b', c: 'store-ac', d: 'store-d', e: '' };
const HOSTS = Object.keys(STORES);
/** What each host was asked to FETCH, per rank. */
const fetched = new Map<string, ImageSource[]>();

beforeEach(async () => {
  vi.useFakeTimers();
  fetched.clear();
  h = new ControlPlaneHarness(QUICK_ROUNDS);
  h.startCoordinator();
  for (const host of HOSTS) startAgent(host);
  await advance(50);
  await h.submit({ world_size: 4, hosts: ['a', 'b'] });
  await advance(10);
});

afterEach(async () => {
  await h.close();
  vi.useRealTimers();
});

/** An agent of `host` whose FETCH ships 1000 bytes per image that comes from a server, none for one read in place. */
function startAgent(host: string): void {
  h.startAgent(host, { imageStore: STORES[host] });
  h.nodes.get(host)!.steps.scripts.set(RoundStep.FETCH, (req) => {
    fetched.set(host, [...(fetched.get(host) ?? []), ...req.sources]);
    return { failed: new Map(), bytesFetched: req.sources.filter((s) => s.server !== '').length * 1000 };
  });
}


async function stopAgent(host: string): Promise<void> {
  await h.agents.get([...h.agents.keys()].find((k) => k.startsWith(`${host}#`))!)!.stop();
  await advance(1_000);
  expect(h.hostState(host)).toBe('down');
}

async function checkpointAndStop(): Promise<void> {
  const { error } = await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
  expect(error).toBeUndefined();
  await advance(1_000);
  expect(h.catalog!.getJob('j')!.state).toBe('stopped');
}

const steps = (host: string) => h.nodes.get(host)!.steps.stepsSeen();
const clearSeen = () => HOSTS.forEach((x) => (h.nodes.get(x)!.steps.seen.length = 0));
/** rank -> [source host, server, store] of what `host` was told to fetch. */
const sourcesOf = (host: string) => Object.fromEntries((fetched.get(host) ?? []).map((s) => [s.rank, [s.host, s.server, s.image_store]]));

describe('image stores', () => {
  it('records the store each image was written to, and each host registered with', async () => {
    await checkpointAndStop();
    expect(h.catalog!.epochImages('j', 1).map((i) => [i.rank, i.host, i.imageStore])).toEqual([
      [0, 'a', 'store-ac'],
      [1, 'a', 'store-ac'],
      [2, 'b', 'store-b'],
      [3, 'b', 'store-b'],
    ]);
    expect(h.catalog!.getHost('c')!.imageStore).toBe('store-ac');
    expect(h.catalog!.getHost('e')!.imageStore).toBe('');
  });

  it('a target on the same store reads the image in place; others fetch it from its writer', async () => {
    await checkpointAndStop();
    const { value, error } = await settle<MoveReplyInit>(h.coordinator!.moves.restart('j', { rankHosts: new Map([[0, 'c'], [1, 'c'], [2, 'd'], [3, 'd']]) }));
    expect(error).toBeUndefined();
    expect(sourcesOf('c')).toEqual({ 0: ['a', '', 'store-ac'], 1: ['a', '', 'store-ac'] });
    expect(sourcesOf('d')).toEqual({ 2: ['b', 'tcp://images.b:1', 'store-b'], 3: ['b', 'tcp://images.b:1', 'store-b'] });
    expect(value!.bytes_shipped).toBe(2000);
    expect(h.catalog!.listRanks('j').map((r) => r.host)).toEqual(['c', 'c', 'd', 'd']);
  });

  it('restarts with the writing host down when a live host shares its store: in place there, from its server elsewhere', async () => {
    await checkpointAndStop();
    await stopAgent('a');
    clearSeen();
    const progress: number[] = [];
    const { value, error } = await settle<MoveReplyInit>(
      h.coordinator!.moves.restart('j', { rankHosts: new Map([[0, 'c'], [1, 'd'], [2, 'd'], [3, 'c']]), progress: (p) => progress.push(p.bytesTotal) }),
    );
    expect(error).toBeUndefined();
    expect(value!.epoch).toBe(1);
    // c sees a's store: rank 0 in place; rank 3 (b's store) from b.
    expect(sourcesOf('c')).toEqual({ 0: ['a', '', 'store-ac'], 3: ['b', 'tcp://images.b:1', 'store-b'] });
    // d does not: rank 1 from c's image server, which serves the shared directory.
    expect(sourcesOf('d')).toEqual({ 1: ['c', 'tcp://images.c:1', 'store-ac'], 2: ['b', 'tcp://images.b:1', 'store-b'] });
    for (const host of ['c', 'd']) expect(steps(host)).toEqual([RoundStep.FETCH, RoundStep.RESTORE, RoundStep.RESUME, RoundStep.DISCARD]);
    // Each target removes the copies it fetched, never the image it read in place: that one is the epoch's.
    expect(h.nodes.get('c')!.steps.seen.at(-1)!.ranks).toEqual([3]);
    expect(h.nodes.get('d')!.steps.seen.at(-1)!.ranks).toEqual([1, 2]);
    // the bytes to ship leave out the image read in place
    const sizes = new Map(h.catalog!.epochImages('j', 1).map((i) => [i.rank, i.sizeBytes]));
    expect(new Set(progress)).toEqual(new Set([sizes.get(1)! + sizes.get(2)! + sizes.get(3)!]));
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    expect(h.catalog!.listRanks('j').map((r) => [r.host, r.state])).toEqual([
      ['c', 'running'],
      ['d', 'running'],
      ['d', 'running'],
      ['c', 'running'],
    ]);
  });

  it('refuses, with nothing started, when the writer is down and no live host shares its store', async () => {
    await checkpointAndStop();
    await stopAgent('a');
    await stopAgent('c');
    clearSeen();
    const { error } = await settle(h.coordinator!.moves.restart('j', { hosts: ['b', 'd'] }));
    expect(error!.code).toBe(ErrorCode.HOST_DOWN);
    expect(error!.message).toMatch(
      /epoch 1 of job j: the image of rank 0 is on host a, which is down, and there is no other copy; nothing was started \(no live host shares its image store store-ac\)/,
    );
    for (const host of ['b', 'd']) expect(steps(host)).toEqual([]);
    expect(h.catalog!.getJob('j')!.state).toBe('stopped');
    expect(h.catalog!.getEpoch('j', 1)!.state).toBe('committed');
  });

  it('refuses, with nothing started, when the writer of an unshared store is down', async () => {
    await checkpointAndStop();
    await stopAgent('b');
    clearSeen();
    const { error } = await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(error!.code).toBe(ErrorCode.HOST_DOWN);
    expect(error!.message).toMatch(/the image of rank 2 is on host b, which is down, and there is no other copy; nothing was started \(no live host shares its image store store-b\)/);
    for (const host of ['c', 'd']) expect(steps(host)).toEqual([]);
    expect(h.catalog!.getJob('j')!.state).toBe('stopped');
  });

  it('a host that reports no store fetches every image from its writer', async () => {
    await checkpointAndStop();
    const { error } = await settle(h.coordinator!.moves.restart('j', { hosts: ['e'] }));
    expect(error).toBeUndefined();
    expect(sourcesOf('e')).toEqual({
      0: ['a', 'tcp://images.a:1', 'store-ac'],
      1: ['a', 'tcp://images.a:1', 'store-ac'],
      2: ['b', 'tcp://images.b:1', 'store-b'],
      3: ['b', 'tcp://images.b:1', 'store-b'],
    });
  });
});

describe('migration between hosts of one store', () => {
  it('the target reads the dumped image in place; DISCARD reaches each host once with all of its ranks', async () => {
    const { value, error } = await settle<MoveReplyInit>(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error).toBeUndefined();
    expect(value!.bytes_shipped).toBe(0);
    expect(sourcesOf('c')).toEqual({ 1: ['a', '', 'store-ac'] });
    expect(h.catalog!.listRanks('j').map((r) => r.host)).toEqual(['a', 'c', 'b', 'b']);
    // Two ranks crossing between a and b: each host is both a source and a target.
    clearSeen();
    const swap = await settle<MoveReplyInit>(h.coordinator!.moves.migrate('j', new Map([[0, 'b'], [2, 'a']])));
    expect(swap.error).toBeUndefined();
    expect(sourcesOf('b')[0]).toEqual(['a', 'tcp://images.a:1', 'store-ac']);
    const discards = (host: string) => h.nodes.get(host)!.steps.seen.filter((s) => s.step === RoundStep.DISCARD).map((s) => s.ranks);
    expect(discards('a')).toEqual([[0, 2]]);
    expect(discards('b')).toEqual([[0, 2]]);
    expect(h.catalog!.listRanks('j').map((r) => r.host)).toEqual(['b', 'c', 'a', 'b']);
  });
});
