// Ranks that wait for their endpoint table while the coordinator's state disk
// is full (a real 4 MiB tmpfs under the real SQLite catalog). Every RESUME
// wakes the ranks with new listeners: they say hello and wait for a new table.
// The catalog cannot record their endpoints, yet the table goes out; without
// it the ranks of a job whose checkpoint failed for the full disk waited for
// good, even after room was made. A rank's exit cannot wait in memory (the
// job's end is recorded once): it waits for room, and `ferry run` says why.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode, RoundStep, type CheckpointReplyInit } from '../../src/gen/proto.js';
import { SmallStateDisk } from './small-state-disk.js';
import { ControlPlaneHarness, settle } from './control-plane-harness.js';
import { waitingChannel } from './waiting-rank-channel.js';

let h: ControlPlaneHarness;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);
let a: ReturnType<typeof waitingChannel>;
let b: ReturnType<typeof waitingChannel>;
let disk: SmallStateDisk;

beforeEach(async () => {
  vi.useFakeTimers();
  h = new ControlPlaneHarness({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 500, flushTimeoutMs: 2_000, dumpTimeoutMs: 3_000, resumeTimeoutMs: 2_000 });
  disk = new SmallStateDisk(h.stateDir);
  h.startCoordinator().onWarning = () => {};
  a = waitingChannel(false);
  b = waitingChannel(false);
  h.startAgent('a', {}, undefined, a.channel);
  h.startAgent('b', {}, undefined, b.channel);
  h.startAgent('c');
  await advance(50);
  await h.submit({ world_size: 2, rank_hosts: { 0: 'a', 1: 'b' }, job_id: 'k' });
  await advance(10);
  a.hello(0, 1000);
  b.hello(1, 1001);
  await advance(50);
  expect(b.tables).toEqual(['k 1000,1001']);
});

afterEach(async () => {
  for (const agent of h.agents.values()) await agent.stop();
  await h.stopCoordinator();
  disk.unmount();
  await h.close();
  vi.useRealTimers();
});


describe('endpoint tables on a full state disk', () => {
  it('a checkpoint aborted for the full disk resumes its ranks, and they get their new table', async () => {
    h.nodes.get('b')!.steps.scripts.set(RoundStep.DUMP, (req) => {
      disk.fill();
      h.nodes.get('b')!.steps.scripts.delete(RoundStep.DUMP);
      return { failed: new Map(), images: req.dump_ranks.map((rank) => ({ rank, location: `/i/${rank}` })) };
    });
    const { error } = await settle<CheckpointReplyInit>(h.coordinator!.checkpoints.checkpoint('k', { stop: false }));
    expect(error?.code, error?.message).toBe(ErrorCode.STATE_UNWRITABLE);
    a.hello(0, 2000);
    b.hello(1, 2001);
    await advance(500);
    expect(a.tables.at(-1)).toBe('k 2000,2001');
    expect(b.tables.at(-1)).toBe('k 2000,2001');
    expect(h.catalog!.listRanks('k').map((r) => r.endpoint)).toEqual(['198.18.0.2:1000', '198.18.0.3:1001']);
    // Once there is room, the table is recorded (a coordinator restarted then hands it out again), the
    // next checkpoint commits, and its RESUME hands out a new table as well.
    disk.free();
    await advance(200);
    expect(h.catalog!.listRanks('k').map((r) => r.endpoint)).toEqual(['198.18.0.2:2000', '198.18.0.3:2001']);
    expect(h.catalog!.getJob('k')!.endpointsPublished).toBe(true);
    const next = await settle<CheckpointReplyInit>(h.coordinator!.checkpoints.checkpoint('k', { stop: false }));
    expect(next.error).toBeUndefined();
    expect(next.value!.epoch!.state).toBe('committed');
    a.hello(0, 3000);
    b.hello(1, 3001);
    await advance(500);
    expect(b.tables.at(-1)).toBe('k 3000,3001');
    expect(h.catalog!.getJob('k')!.endpointsPublished).toBe(true);
  });

  it("a rank's exit that the catalog cannot record waits, its followers told why, and the job ends once there is room", async () => {
    const notices = h.followNotices('k');
    await advance(50);
    disk.fill();
    for (const host of ['a', 'b']) h.nodes.get(host)!.ranks.exit('k', host === 'a' ? 0 : 1, 0);
    await advance(2_000);
    expect(h.catalog!.getJob('k')!.state).toBe('running');
    expect(notices.filter((n) => /has exited, but the coordinator cannot record it/.test(n))).toHaveLength(2);
    expect(notices[0]).toMatch(/^rank [01] has exited, but the coordinator cannot record it \(the coordinator cannot write its catalog .*catalog\.db: database or disk is full \(SQLITE_FULL\)\): the job's end waits until there is room$/);
    disk.free();
    await advance(2_000);
    expect(h.catalog!.getJob('k')!.state).toBe('succeeded');
  });
});
