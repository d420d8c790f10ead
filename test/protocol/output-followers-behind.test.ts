// A job's output while one of its followers is behind: the agents hold it back
// in the ranks' log files (output-flow.ts) for a follower that is there, also
// after the job ended (the ranks' tails: output-tails.ts); a follower that went
// silent (a `ferry run` killed, or stopped for good) does not hold it back from
// the others, nor the end of a job from them.
//
// A coordinator replaced while a follower is behind (its queues die with it):
// the agents send that follower's output again to the new one, which holds it
// for the follower to come back, and the follower writes each byte once.
//
// The coordinator keeps at most WAITING_LIMIT for a follower here (256 MiB in
// use), so that what it would drop past that shows with tens of MiB.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { coordinatorInboundCodec, operatorReplyCodec } from '../../src/protocol/messages.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { SourceEnds } from '../../src/common/source-ends.js';
import { ControlPlaneHarness, settle } from './control-plane-harness.js';
import { SimulatedRanks } from './simulated-node.js';

let h: ControlPlaneHarness;
let logDir: string;
let ranks: SimulatedRanks;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);
const WAITING_LIMIT = 48 << 20;

beforeEach(async () => {
  vi.useFakeTimers();
  logDir = mkdtempSync(join(tmpdir(), 'ferry-output-behind-'));
  ranks = new SimulatedRanks(logDir);
  h = new ControlPlaneHarness({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 500, followerWaitingLimitBytes: WAITING_LIMIT });
  h.startCoordinator();
  h.startAgent('a', {}, ranks);
  await advance(50);
});

afterEach(async () => {
  await h.close();
  vi.useRealTimers();
  rmSync(logDir, { recursive: true, force: true });
});

interface TestFollower {
  /** Output bytes received, and the whole text with "<notice: ...>" and "<ended>" in place. */
  bytes: () => number;
  text: () => string;
  /** Tells the coordinator how much it received (a live `ferry run` does so every 512 KiB and 2 s). */
  count: () => void;
  /** Follows again, as a live follower does every 2 s. */
  renew: () => void;
}

/**
 * Follows job `j` on a connection of its own; counts what it receives when `counting`, else once at the
 * start. It keeps each byte of a source once, as `ferry run` does (what a new coordinator sends again).
 */
function follow(counting: boolean): TestFollower {
  const client = h.hub.connect();
  let bytes = 0;
  const got: string[] = [];
  const written = new SourceEnds();
  let nextId = 2;
  const post = (operator: object) => client.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: nextId++, ...operator } }));
  const count = () => post({ output_received: { job_id: 'j', bytes } });
  client.onMessage((frames) => {
    const r = operatorReplyCodec.decode(frames[0]);
    if (r.job_output) {
      const { rank, stream, source, offset, data } = r.job_output;
      bytes += data.length;
      got.push(Buffer.from(written.unseen(rank, stream, source, offset, data)).toString());
      if (counting) count();
    }
    if (r.job_notice) got.push(`<notice: ${r.job_notice.message}>`);
    if (r.job_ended) got.push('<ended>');
  });
  const renew = () => client.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: 1, follow_job: { job_id: 'j' } } }));
  renew();
  count();
  return { bytes: () => bytes, text: () => got.join(''), count, renew };
}

/** `mib` MiB of numbered lines of 1 KiB. */
function lines(mib: number, from = 0): string {
  const out: string[] = [];
  for (let i = from; i < from + mib * 1024; i++) out.push(`${String(i).padStart(9, '0')} ${'x'.repeat(1013)}\n`);
  return out.join('');
}

/** A 1-rank job prints `mib` MiB to a follower that takes nothing (its agent pauses), and ends. */
async function endsBehindItsFollower(mib: number): Promise<TestFollower> {
  const f = await printsBehindItsFollower(mib);
  ranks.exit('j', 0, 0);
  return f;
}

/** A 1-rank job prints `mib` MiB to a follower that takes nothing: it has its 16 MiB window, the rest waits. */
async function printsBehindItsFollower(mib: number): Promise<TestFollower> {
  await h.submit({ world_size: 1, hosts: ['a'] });
  await advance(50);
  const f = follow(false);
  await advance(50);
  ranks.print('j', 0, lines(mib));
  await advance(3_000);
  return f;
}

/** The follower takes what comes, renewing and counting every second, until its job's end (at most `s` s). */
async function catchUp(f: TestFollower, s = 30): Promise<void> {
  for (let i = 0; i < s && !f.text().endsWith('<ended>'); i++) {
    f.renew();
    f.count();
    await advance(1_000);
  }
}

describe('followers behind', () => {
  it('a follower that went silent far behind does not hold the output back from a new one', async () => {
    await h.submit({ world_size: 1, hosts: ['a'] });
    await advance(50);
    const stuck = follow(false); // takes nothing: a `ferry run` killed, or stopped for good
    await advance(50);
    ranks.print('j', 0, lines(60));
    await advance(3_000);
    expect(stuck.bytes()).toBeGreaterThan(0);
    expect(stuck.bytes()).toBeLessThan(60 << 20); // it got its window, the rest waits
    await advance(90_000); // it stays silent
    const fresh = follow(true);
    for (let s = 0; s < 20; s++) {
      fresh.renew();
      await advance(1_000);
    }
    ranks.print('j', 0, 'after\n');
    for (let s = 0; s < 5; s++) {
      fresh.renew();
      await advance(1_000);
    }
    expect(fresh.text().endsWith('after\n')).toBe(true);
    // Alone, the silent one had held the output back: the new one got that backlog from the files.
    expect(fresh.bytes()).toBeGreaterThan(4 << 20);
    // The silent one comes back (a `ferry run` continued): what waited for it comes, whole and in order.
    for (let s = 0; s < 20; s++) {
      stuck.renew();
      stuck.count();
      fresh.renew();
      await advance(1_000);
    }
    expect(stuck.text()).toBe(`${lines(60)}after\n`);
  });

  it('a follower silent for 10 minutes while another follows keeps at most 16 MiB waiting, and is told what it missed', async () => {
    await h.submit({ world_size: 1, hosts: ['a'] });
    await advance(50);
    const gone = follow(false); // a `ferry attach` left with Ctrl-C: the coordinator never hears it go
    const fresh = follow(true);
    await advance(50);
    ranks.print('j', 0, lines(40));
    for (let s = 0; s < 11 * 60; s++) {
      fresh.renew();
      await advance(1_000);
    }
    expect(fresh.text()).toBe(lines(40));
    // It comes back after all: the oldest of what waited for it went, and it hears how much.
    for (let s = 0; s < 20; s++) {
      gone.renew();
      gone.count();
      fresh.renew();
      await advance(1_000);
    }
    const left = /<notice: (\d+) bytes of its output left out: this follower did not take them in time/.exec(gone.text());
    expect(left).not.toBeNull();
    expect(gone.bytes() + Number(left![1])).toBe(40 << 20);
    expect(Number(left![1])).toBeGreaterThanOrEqual((40 - 16 - 16) << 20); // (16 MiB were in flight to it)
  });

  it('a job that ends while its follower is behind: the follower gets every line, then the end', async () => {
    await h.submit({ world_size: 2, hosts: ['a'] });
    await advance(50);
    const slow = follow(false);
    await advance(50);
    ranks.print('j', 0, lines(40));
    ranks.print('j', 1, lines(40, 100_000));
    await advance(3_000); // the agent is paused: the follower has its window, the coordinator up to 32 MiB
    ranks.exit('j', 0, 0);
    ranks.exit('j', 1, 0);
    await advance(2_000);
    // The job ended at once; its follower's end waits for the rest of its output.
    expect(h.catalog!.getJob('j')!.state).toBe('succeeded');
    expect(slow.text()).not.toContain('<ended>');
    await catchUp(slow);
    const text = slow.text();
    expect(text).not.toContain('<notice');
    expect(text.endsWith('<ended>')).toBe(true);
    const got = text.slice(0, -'<ended>'.length);
    expect(got.length).toBe(80 << 20);
    // each rank's lines whole and in order (the ranks' chunks interleave)
    const byRank = (from: number) => got.split('\n').filter((l) => l && Number(l.slice(0, 9)) >= from && Number(l.slice(0, 9)) < from + 40 * 1024);
    expect(byRank(0).join('\n') + '\n').toBe(lines(40));
    expect(byRank(100_000).join('\n') + '\n').toBe(lines(40, 100_000));
  });

  it("a job's end does not wait for a follower that went silent", async () => {
    const stuck = await endsBehindItsFollower(64);
    await advance(2_000);
    expect(h.catalog!.getJob('j')!.state).toBe('succeeded');
    // Another follower comes: within the first one's lapse it waits with it for the rest ...
    const late = follow(true);
    await advance(10_000);
    expect(late.text()).not.toContain('<ended>');
    // ... then the first one, silent, holds nothing back: the late one gets the rest and the end.
    for (let s = 0; s < 70 && !late.text().endsWith('<ended>'); s++) {
      late.renew();
      await advance(1_000);
    }
    expect(late.text().endsWith('\n<ended>')).toBe(true);
    expect(late.text()).not.toContain('<notice');
    const again = follow(true);
    await advance(100);
    expect(again.text()).toBe('<ended>');
    expect(stuck.text()).not.toContain('<ended>');
  });

  it('an ended job followed only by a silent follower ends for it after its lapse', async () => {
    const stuck = await endsBehindItsFollower(64);
    await advance(70_000);
    const late = follow(true);
    await advance(100);
    expect(late.text().endsWith('<ended>')).toBe(true);
    // it comes back: what waited for it, where the rest is, then the end
    await catchUp(stuck, 20);
    expect(stuck.text()).toMatch(
      /<notice: \d+ bytes of its output left out: this follower was silent for 60 s after the job ended \(all of it is in the agents' log files\)><notice: the last output of rank 0 was not taken in time \(this follower was silent\): it is in the log files on host a><ended>$/,
    );
  });

  it("a tail whose agent was replaced: the follower is told where that output is, then the end", async () => {
    const slow = await endsBehindItsFollower(64);
    await advance(2_000);
    await h.crashAgent('a');
    h.startAgent('a', {}, ranks);
    await advance(2_000);
    await catchUp(slow);
    expect(slow.text()).toMatch(/<notice: the last output of rank 0 will not come \(its agent was replaced by a new one\): it is in the log files on host a><ended>$/);
  });

  it('a tail whose agent was replaced by one that goes on with it (its rank table): every line, then the end', async () => {
    ranks.keepsOutput = true;
    const slow = await endsBehindItsFollower(64);
    await advance(2_000);
    await h.crashAgent('a');
    h.startAgent('a', {}, ranks);
    await advance(2_000);
    await catchUp(slow, 40);
    expect(slow.text()).toBe(`${lines(64)}<ended>`);
  });

  it("a tail cut off by a network partition is sent again and shown once, then the end", async () => {
    const slow = await endsBehindItsFollower(80);
    await advance(500);
    // The follower catches up: the agent reads the tail (about 28 MiB, 4 MiB a poll); a partition cuts it mid-way.
    while (slow.bytes() < 60 << 20) {
      slow.count();
      await advance(50);
    }
    expect(slow.text()).not.toContain('<ended>');
    h.partition('a', true);
    await advance(2_000);
    expect([...h.agents.values()][0]!.state).toBe('connecting');
    h.partition('a', false);
    await catchUp(slow, 40);
    expect(h.hostState('a')).toBe('up');
    expect(slow.text()).toBe(`${lines(80)}<ended>`);
  });
});

describe('a coordinator replaced while a follower is behind', () => {
  /** Job `j` prints 24 MiB to a follower that takes nothing: 16 MiB in flight to it, the rest waits at the coordinator, which crashes. */
  async function crashesBehindItsFollower(): Promise<TestFollower> {
    const f = await printsBehindItsFollower(24);
    expect(f.bytes()).toBe(16 << 20);
    await h.crashCoordinator();
    ranks.print('j', 0, lines(1, 24 * 1024)); // while there is no coordinator
    h.startCoordinator();
    await h.untilUp('a'); // the agent registers with the new one before the follower comes back
    expect(h.hostState('a')).toBe('up');
    return f;
  }

  it('the follower gets every line once, also what only the crashed coordinator had; what is sent again is counted once', async () => {
    const f = await crashesBehindItsFollower();
    for (let s = 0; s < 15; s++) {
      f.renew();
      f.count();
      await advance(1_000);
    }
    expect(f.text()).toBe(lines(25));
    // (for a rollback's repeat, output-replay.ts: the crashed coordinator had counted what is sent again)
    expect(h.coordinator!.jobs.output.replay.mark('j').ranks[0]).toEqual([25 << 20, 0]);
  });

  it('a job that ended before: the follower gets every line, then the end', async () => {
    const f = await printsBehindItsFollower(24);
    ranks.exit('j', 0, 0); // its exit is acknowledged; the end waits at the coordinator behind 8 MiB
    await advance(1_000);
    expect(h.catalog!.getJob('j')!.state).toBe('succeeded');
    await h.crashCoordinator();
    h.startCoordinator();
    f.renew(); // before the agent registers (ferry run's socket queued it while no coordinator ran)
    await h.untilUp('a');
    await catchUp(f);
    expect(f.text()).toBe(`${lines(24)}<ended>`);
  });

  it('a job restarted from a checkpoint that ended before: the follower gets every line of the restored rank, then the end', async () => {
    await h.submit({ world_size: 1, hosts: ['a'] });
    await advance(50);
    expect((await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }))).error).toBeUndefined();
    // The restored rank's output comes in a source the restart named, not one its agent began.
    expect((await settle(h.coordinator!.moves.restart('j', { hosts: ['a'] }))).error).toBeUndefined();
    const f = follow(false);
    await advance(50);
    ranks.print('j', 0, lines(24));
    await advance(3_000);
    ranks.exit('j', 0, 0); // the end waits at the coordinator behind 8 MiB; the agent is told what is not taken
    await advance(1_000);
    expect(h.catalog!.getJob('j')!.state).toBe('succeeded');
    await h.crashCoordinator();
    h.startCoordinator();
    f.renew();
    await h.untilUp('a');
    await catchUp(f);
    expect(f.text()).toBe(`${lines(24)}<ended>`);
  });

  it("a job whose rank's tail was being read: the follower gets every line, then the end", async () => {
    const f = await endsBehindItsFollower(64); // the agent pauses; the rank's exit leaves a tail
    await advance(2_000);
    await h.crashCoordinator();
    h.startCoordinator();
    await h.untilUp('a');
    await catchUp(f, 40);
    expect(f.text()).toBe(`${lines(64)}<ended>`);
  });

  it('a job no follower comes back to: its output is held a while, then goes on to whoever follows', async () => {
    await crashesBehindItsFollower();
    await advance(30_000);
    expect(h.coordinator!.jobs.output.replay.mark('j').ranks[0]).toEqual([24 << 20, 0]); // the 25th MiB waits in the log file
    await advance(40_000);
    expect(h.coordinator!.jobs.output.replay.mark('j').ranks[0]).toEqual([25 << 20, 0]);
  });
});
