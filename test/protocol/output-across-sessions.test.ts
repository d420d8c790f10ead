// A rank's output reaches its followers whole, in order and once, across the
// agent's lost sessions: a network cut the agent has not noticed yet (output
// sent into it is gone), the time it has no coordinator (output waits in the
// log files), a coordinator that crashed and came back, and a rank that ended
// meanwhile (its last lines come before its job's end); and what the agent
// sends again to a coordinator that had it is passed on once.
import { mkdirSync, mkdtempSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { APPEND_FILES_NAME } from '../../src/criu/criu-dump.js';
import { logEnds } from '../../src/agent/output-tailer.js';
import { RoundStep } from '../../src/gen/proto.js';
import { HOST_REJOIN_GRACE_MS } from '../../src/coordinator/coordinator-config.js';
import { coordinatorInboundCodec, operatorReplyCodec } from '../../src/protocol/messages.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { ControlPlaneHarness, settle } from './control-plane-harness.js';
import { SimulatedRanks } from './simulated-node.js';

let h: ControlPlaneHarness;
let logDir: string;
let ranks: SimulatedRanks;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

beforeEach(async () => {
  vi.useFakeTimers();
  logDir = mkdtempSync(join(tmpdir(), 'ferry-output-sessions-'));
  ranks = new SimulatedRanks(logDir);
  h = new ControlPlaneHarness();
  h.startCoordinator();
  h.startAgent('a', {}, ranks);
  await advance(50);
});

afterEach(async () => {
  await h.close();
  vi.useRealTimers();
  rmSync(logDir, { recursive: true, force: true });
});

/** Follows job `j` on a connection of its own: what it got, output text and "<ended>", in order. */
function follow(): { text: () => string } {
  const client = h.hub.connect();
  const got: string[] = [];
  client.onMessage((frames) => {
    const r = operatorReplyCodec.decode(frames[0]);
    if (r.job_output) got.push(Buffer.from(r.job_output.data).toString());
    if (r.job_notice) got.push(`<notice: ${r.job_notice.message}>`);
    if (r.job_ended) got.push('<ended>');
  });
  client.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: 1, follow_job: { job_id: 'j' } } }));
  return { text: () => got.join('') };
}

/** Output the coordinator has acknowledged: written, read, sent, and a heartbeat answered after it. */
async function printAndAck(line: string): Promise<void> {
  ranks.print('j', 0, line);
  await advance(400);
}

/** Output read and sent at once (not acknowledged yet): the tailer's next poll. */
async function printAndSend(line: string): Promise<void> {
  ranks.print('j', 0, line);
  await advance(110);
}

describe('rank output across lost sessions', () => {
  it('sends again what went into a cut it had not noticed, and what was written while it had no coordinator', async () => {
    await h.submit({ world_size: 1, hosts: ['a'] });
    const f = follow();
    await advance(50);
    await printAndAck('before\n');
    h.partition('a', true);
    await printAndSend('into the cut\n');
    await advance(1_000); // the agent notices: no heartbeat answered
    expect(h.agents.values().next().value!.state).toBe('connecting');
    ranks.print('j', 0, 'while away\n');
    await advance(500);
    h.partition('a', false);
    await advance(3_000);
    expect(h.hostState('a')).toBe('up');
    expect(f.text()).toBe('before\ninto the cut\nwhile away\n');
    await printAndAck('after\n');
    expect(f.text()).toBe('before\ninto the cut\nwhile away\nafter\n');
  });

  it('sends again to a coordinator that crashed and came back what the crashed one never passed on', async () => {
    await h.submit({ world_size: 1, hosts: ['a'] });
    const first = follow();
    await advance(50);
    await printAndAck('before\n');
    await h.crashCoordinator();
    await printAndSend('into the crash\n');
    await advance(1_000);
    ranks.print('j', 0, 'while down\n');
    h.startCoordinator();
    await h.untilUp('a');
    expect(h.hostState('a')).toBe('up');
    // ferry run follows again at its next renewal, and gets what no one followed meanwhile
    const second = follow();
    await advance(50);
    expect(first.text() + second.text()).toBe('before\ninto the crash\nwhile down\n');
  });

  // (with output sent into the cut too: the rest goes again as a tail, read to its end before the exit goes,
  // which then says no more follows; until 2026-12-08 it said a tail followed, and the follow never ended)
  for (const intoTheCut of ['', 'into the cut\n']) {
    it(`passes on a rank's last lines, written while its agent was cut off, before its job's end${intoTheCut ? ', also with output sent into the cut' : ''}`, async () => {
      await h.submit({ world_size: 1, hosts: ['a'] });
      const f = follow();
      await advance(50);
      await printAndAck('working\n');
      h.partition('a', true);
      if (intoTheCut) await printAndSend(intoTheCut);
      await advance(1_000);
      ranks.print('j', 0, 'last words\n');
      ranks.exit('j', 0, 0);
      await advance(500);
      h.partition('a', false);
      await advance(3_000);
      expect(h.catalog!.getJob('j')!.state).toBe('succeeded');
      expect(f.text()).toBe(`working\n${intoTheCut}last words\n<ended>`);
    });
  }

  it('passes on once what the agent sends again to the same coordinator, which had it already', async () => {
    await h.submit({ world_size: 1, hosts: ['a'] });
    const f = follow();
    await advance(50);
    await printAndAck('before\n');
    h.deafen('a', true); // the coordinator hears the agent, but its answers are lost
    await printAndSend('heard, not acknowledged\n');
    await advance(1_000); // no heartbeat answered: the agent connects again, and registers, on a connection that hears
    h.deafen('a', false);
    await advance(3_000);
    await printAndAck('after\n');
    expect(f.text()).toBe('before\nheard, not acknowledged\nafter\n');
  });


describe('an ended job whose end waits for its hosts', () => {
  it('is deleted: its followers are told the end they waited for, and the coordinator keeps running', async () => {
    await h.submit({ world_size: 1, hosts: ['a'] });
    await advance(50);
    ranks.exit('j', 0, 0);
    await advance(500);
    expect(h.catalog!.getJob('j')!.state).toBe('succeeded');
    // A restarted coordinator, whose host a has not registered yet: a follower's end waits for its output.
    await h.crashAgent('a');
    await h.crashCoordinator();
    h.startCoordinator();
    const f = follow();
    await advance(100); // (within the heartbeat timeout: host a may still register)
    expect(f.text()).toBe('');
    const deleted = await h.coordinator!.retention.deleteJob('j', false);
    expect(deleted.epochs).toEqual([]);
    await advance(3_000); // (the sweeps that end the follows waiting for tails)
    expect(f.text()).toMatch(/^<notice: job j was deleted \(ferry delete\) while this follower waited for the last output of its ranks.*><ended>$/);
  });
});

describe('output held back at a checkpoint', () => {
  it("counts what the agent held back at the flush in the epoch's output marks", async () => {
    await h.submit({ world_size: 1, hosts: ['a'] });
    const f = follow();
    await advance(50);
    await printAndAck('shown\n');
    // The coordinator holds the job's output back at its agent (its followers are behind).
    await h.coordinator!.requestAgent('a', { output_flow: { job_id: 'j', pause_ms: 60_000 } });
    await printAndAck('held back\n');
    const cp = await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: false }));
    expect(cp.error).toBeUndefined();
    expect(f.text()).toBe('shown\n');
    expect(h.catalog!.outputMarks('j', 1)!.ranks).toEqual({ 0: ['shown\nheld back\n'.length, 0] });
    await h.coordinator!.requestAgent('a', { output_flow: { job_id: 'j', pause_ms: 0 } });
    await advance(200);
    expect(f.text()).toBe('shown\nheld back\n');
  });

  it("counts what a rank computing outside MPI printed after its flush, up to its dump, in the epoch's marks", async () => {
    await h.submit({ world_size: 1, hosts: ['a'] });
    const f = follow();
    await advance(50);
    await printAndAck('shown\n');
    const image = join(logDir, 'image-rank-0');
    h.nodes.get('a')!.steps.scripts.set(RoundStep.DUMP, () => {
      // The rank printed on after its flush; CRIU froze it, and Ferry's plugin recorded its log's size then.
      ranks.print('j', 0, 'after the flush\n');
      const log = realpathSync(ranks.logPaths('j', 0).out);
      mkdirSync(image, { recursive: true });
      writeFileSync(join(image, APPEND_FILES_NAME), `${statSync(log).size} ${log}\n`);
      // After the dump: its restored copy prints this again, a repeat after a rollback.
      ranks.print('j', 0, 'after the dump\n');
      return { failed: new Map(), images: [{ rank: 0, location: image }] };
    });
    const cp = await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: false }));
    expect(cp.error).toBeUndefined();
    expect(h.catalog!.outputMarks('j', 1)!.ranks).toEqual({ 0: ['shown\nafter the flush\n'.length, 0] });
    await advance(200);
    expect(f.text()).toBe('shown\nafter the flush\nafter the dump\n');
  });
});

});

describe('output printed after the flush, up to the dump', () => {
  it("is counted once in the epoch's marks when another host answers its PREPARE later", async () => {
    mkdirSync(join(logDir, 'b'));
    h.startAgent('b', {}, new SimulatedRanks(join(logDir, 'b')));
    await advance(50);
    await h.submit({ world_size: 2, rank_hosts: { 0: 'a', 1: 'b' } });
    await advance(50);
    await printAndAck('shown\n');
    // a answers its PREPARE at once, and rank 0 (computing outside MPI) prints on; b answers 500 ms later.
    h.nodes.get('a')!.steps.scripts.set(RoundStep.PREPARE, (req) => {
      setTimeout(() => ranks.print('j', 0, 'after the flush\n'), 20);
      return h.nodes.get('a')!.steps.byDefault(req);
    });
    h.nodes.get('b')!.steps.scripts.set(RoundStep.PREPARE, (req) => new Promise((res) => setTimeout(() => res(h.nodes.get('b')!.steps.byDefault(req)), 500)));
    const image = join(logDir, 'image-rank-0');
    h.nodes.get('a')!.steps.scripts.set(RoundStep.DUMP, () => {
      // Frozen by CRIU: Ferry's plugin records the log's size then.
      const log = realpathSync(ranks.logPaths('j', 0).out);
      mkdirSync(image, { recursive: true });
      writeFileSync(join(image, APPEND_FILES_NAME), `${statSync(log).size} ${log}\n`);
      return { failed: new Map(), images: [{ rank: 0, location: image }] };
    });
    const cp = await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: false }));
    expect(cp.error).toBeUndefined();
    // (passed on before b answered, and counted late by a's DUMP reply: once)
    expect(h.catalog!.outputMarks('j', 1)!.ranks[0]).toEqual(['shown\nafter the flush\n'.length, 0]);
  });
});

describe("a rollback's repeated output", () => {
  it('is shown once also when a restored rank prints before another target has answered its RESTORE', async () => {
    // Rank 0 on a, rank 1 on b; b and c share an image store, so rank 1 comes back on c when b is lost.
    for (const host of ['b', 'c']) mkdirSync(join(logDir, host));
    const onB = new SimulatedRanks(join(logDir, 'b'));
    const onC = new SimulatedRanks(join(logDir, 'c'));
    h.startAgent('b', { imageStore: 'store-bc' }, onB);
    h.startAgent('c', { imageStore: 'store-bc' }, onC);
    await advance(50);
    await h.submit({ world_size: 2, rank_hosts: { 0: 'a', 1: 'b' }, auto_restarts: 1 });
    const shown = new Map<number, string>();
    const client = h.hub.connect();
    client.onMessage((frames) => {
      const out = operatorReplyCodec.decode(frames[0]).job_output;
      if (out) shown.set(out.rank, (shown.get(out.rank) ?? '') + Buffer.from(out.data).toString());
    });
    client.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: 1, follow_job: { job_id: 'j' } } }));
    await advance(50);
    ranks.print('j', 0, '0 before\n');
    onB.print('j', 1, '1 before\n');
    await advance(400);
    expect((await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: false }))).error).toBeUndefined();
    ranks.print('j', 0, '0 after\n');
    onB.print('j', 1, '1 after\n');
    await advance(400);
    // The restored ranks compute outside MPI: they print again what they printed after the epoch as soon as
    // they are restored. Rank 0's host answers its RESTORE at once, c a second later (followed from where
    // the log files ended before the restore, as LocalRankSteps says).
    const restoreThenPrint = (host: string, on: SimulatedRanks, rank: number, text: string, afterMs: number) =>
      h.nodes.get(host)!.steps.scripts.set(RoundStep.RESTORE, (req) => {
        const logStarts = new Map([[rank, logEnds(on.logPaths('j', rank))]]);
        const started = h.nodes.get(host)!.steps.restoreRanks(req);
        setTimeout(() => on.print('j', rank, text), 10);
        return new Promise((res) => setTimeout(() => res({ failed: new Map(), started, logStarts }), afterMs));
      });
    restoreThenPrint('a', ranks, 0, '0 after\n0 new\n', 0);
    restoreThenPrint('c', onC, 1, '1 after\n1 new\n', 1_000);
    await h.crashAgent('b');
    await advance(1_000 + HOST_REJOIN_GRACE_MS);
    for (let t = 0; t < 20_000 && h.catalog!.getJob('j')!.state !== 'running'; t += 100) await advance(100);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    await advance(400);
    expect(shown.get(0)).toBe('0 before\n0 after\n0 new\n');
    expect(shown.get(1)).toBe('1 before\n1 after\n1 new\n');
  });
});
