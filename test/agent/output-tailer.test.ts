// OutputTailer: follows rank log files; holds while the agent has no
// coordinator, sends again from what was acknowledged, keeps an ended rank
// until its exit is acknowledged, and reads nothing of a paused job or while
// the connection has a backlog (a rank that ends then leaves a tail, read after
// its exit). A restarted agent goes on where the one before stood.
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OUTPUT_POLL_MAX_BYTES, OUTPUT_POLL_MS, OutputTailer, type OutputChunk } from '../../src/agent/output-tailer.js';
import { RankOutput_Stream } from '../../src/gen/proto.js';

let dir: string;
let chunks: OutputChunk[];
let readable: boolean;
let tailer: OutputTailer;
const text = () => chunks.map((c) => c.data.toString()).join('');
const paths = () => ({ out: join(dir, 'r0.out'), err: join(dir, 'r0.err') });
const print = (s: string) => appendFileSync(paths().out, s);
const poll = () => vi.advanceTimersByTimeAsync(OUTPUT_POLL_MS);

beforeEach(() => {
  vi.useFakeTimers();
  dir = mkdtempSync(join(tmpdir(), 'ferry-tailer-'));
  chunks = [];
  readable = true;
  tailer = new OutputTailer((c) => chunks.push(c), 'agent1', () => readable);
  tailer.add('j', 0, paths());
});

afterEach(() => {
  tailer.stop();
  vi.useRealTimers();
  rmSync(dir, { recursive: true, force: true });
});

describe('OutputTailer', () => {
  it('hands on what is new at each poll, saying where it starts and which following it is of', async () => {
    print('one\n');
    await poll();
    print('two\n');
    await poll();
    expect(chunks.map((c) => [c.data.toString(), c.offset, c.source])).toEqual([
      ['one\n', 0, 'agent1.1'],
      ['two\n', 4, 'agent1.1'],
    ]);
    tailer.add('j', 1, { out: join(dir, 'r1.out'), err: join(dir, 'r1.err') });
    appendFileSync(join(dir, 'r1.out'), 'x');
    await poll();
    expect(chunks.at(-1)!.source).toBe('agent1.2');
  });

  it('a restarted agent goes on from where the followers took the files, in the same source, what was sent before marked resent', async () => {
    print('taken\n');
    await poll();
    tailer.acknowledge(tailer.snapshot(), []); // (its followers took all of it)
    print('sent, not taken\n');
    await poll();
    tailer.acknowledge(tailer.snapshot(), [{ source: 'agent1.1', stream: RankOutput_Stream.STDOUT, offset: 6 }]);
    const kept = tailer.position('j', 0)!;
    expect(kept).toEqual({ sent: { out: 22, err: 0 }, taken: { out: 6, err: 0 }, source: 'agent1.1' });
    tailer.stop();
    print('after the crash\n');
    chunks = [];
    tailer = new OutputTailer((c) => chunks.push(c), 'agent2', () => readable);
    tailer.add('j', 0, paths(), kept);
    await poll();
    expect(chunks.map((c) => [c.data.toString(), c.offset, c.source, c.resent ?? false])).toEqual([
      ['sent, not taken\n', 6, 'agent1.1', true],
      ['after the crash\n', 22, 'agent1.1', false],
    ]);
    // (a rank table from before the taken offsets were kept: from what was sent, in a source of its own)
    tailer.add('j', 0, paths(), { sent: { out: 22, err: 0 } });
    print('more\n');
    await poll();
    expect([chunks.at(-1)!.data.toString(), chunks.at(-1)!.offset, chunks.at(-1)!.source]).toEqual(['after the crash\nmore\n', 22, 'agent2.1']);
  });

  it('reads nothing while held, and sends again from the acknowledged offset after a rewind', async () => {
    print('acked\n');
    await poll();
    tailer.acknowledge(tailer.snapshot());
    print('lost\n');
    await poll(); // sent into a connection that died
    tailer.hold();
    print('while away\n');
    await poll();
    expect(text()).toBe('acked\nlost\n');
    tailer.rewind();
    tailer.release();
    expect(text()).toBe('acked\nlost\nlost\nwhile away\n');
    expect(chunks.at(-1)!.offset).toBe(6);
  });

  it("sends again from what its followers took after the coordinator was replaced, what that one had as `resent`", async () => {
    print('taken\n');
    await poll();
    print('waiting for a follower\n');
    await poll();
    tailer.acknowledge(tailer.snapshot(), [{ source: 'agent1.1', stream: RankOutput_Stream.STDOUT, offset: 6 }]);
    expect(tailer.untakenJobs()).toEqual(['j']);
    print('sent\n');
    await poll(); // sent, not acknowledged: the coordinator that stops (or crashes) may have counted it
    tailer.hold();
    tailer.rewind(true);
    print('new\n');
    tailer.release();
    expect(chunks.slice(3).map((c) => [c.data.toString(), c.offset, !!c.resent])).toEqual([
      ['waiting for a follower\nsent\n', 6, true], // (cut where what was sent ends)
      ['new\n', 34, false],
    ]);
    // the new coordinator heard it all, its followers took it; another lost session sends nothing again
    tailer.acknowledge(tailer.snapshot(), []);
    expect(tailer.untakenJobs()).toEqual([]);
    tailer.rewind(true);
    tailer.release();
    expect(chunks).toHaveLength(5);
  });

  it("ends the unread tail of a rank's copy before when a copy restored here is followed, so no one waits for it", async () => {
    tailer.pause('j', 60_000); // its followers are behind
    print('held back\n');
    tailer.finish('j', 0);
    expect(tailer.outputFollows('j', 0)).toBe(true);
    tailer.add('j', 0, paths()); // restored here, writing on into the same files
    expect(chunks.map((c) => [c.data.toString(), !!c.last])).toEqual([['', true]]);
    expect(tailer.outputFollows('j', 0)).toBe(false);
  });

  /** Rank 0 prints two lines and ends; its exit is acknowledged, its followers took only the first line. */
  async function endedWithUntakenOutput(): Promise<void> {
    print('taken\n');
    await poll();
    print('not taken\n');
    tailer.finish('j', 0);
    tailer.acknowledge(tailer.snapshot(), [{ source: 'agent1.1', stream: RankOutput_Stream.STDOUT, offset: 6 }]);
    tailer.forget('j', 0); // its exit acknowledged
  }

  it("keeps an ended rank until its followers took its output, and sends the rest again as a tail", async () => {
    await endedWithUntakenOutput();
    expect(tailer.keepsEnded('j', 0)).toBe(true);
    tailer.hold();
    tailer.reopenTails();
    expect(tailer.outputFollows('j', 0)).toBe(true);
    tailer.rewind(true);
    tailer.release();
    await poll();
    expect(chunks.slice(2).map((c) => [c.data.toString(), !!c.last])).toEqual([
      ['not taken\n', false],
      ['', true],
    ]);
    tailer.acknowledge(tailer.snapshot(), []);
    expect(tailer.keepsEnded('j', 0)).toBe(false);
  });

  it("a restarted agent follows the rest of an ended rank its followers had not taken as a tail, and lets it go once taken", async () => {
    await endedWithUntakenOutput();
    const kept = tailer.position('j', 0)!;
    tailer.stop();
    chunks = [];
    tailer = new OutputTailer((c) => chunks.push(c), 'agent2', () => readable);
    tailer.hold(); // (until it registers)
    tailer.addEnded('j', 0, paths(), kept);
    expect(tailer.keepsEnded('j', 0)).toBe(true);
    expect(tailer.outputFollows('j', 0)).toBe(true); // (its exit, carried again, says so)
    expect(tailer.untakenJobs()).toEqual(['j']); // (a new coordinator holds it for its followers)
    tailer.rewind(true);
    tailer.release();
    await poll();
    expect(chunks.map((c) => [c.data.toString(), c.offset, c.source, !!c.resent, !!c.last])).toEqual([
      ['not taken\n', 6, 'agent1.1', true, false],
      ['', 16, 'agent1.1', false, true],
    ]);
    tailer.acknowledge(tailer.snapshot(), []);
    expect(tailer.keepsEnded('j', 0)).toBe(false);
    expect(tailer.untakenJobs()).toEqual([]);
  });

  it('takes nothing as taken from an acknowledgement that does not say (a registration)', async () => {
    print('sent\n');
    await poll();
    tailer.acknowledge(tailer.snapshot());
    tailer.rewind(true);
    tailer.release();
    expect(text()).toBe('sent\nsent\n');
    expect(chunks[1]!.resent).toBe(true);
  });

  it("reads an ended rank's files to their end when released, and keeps them until forget and taken", async () => {
    tailer.hold();
    print('last words\n');
    tailer.finish('j', 0);
    expect(text()).toBe('');
    tailer.release();
    expect(text()).toBe('last words\n');
    tailer.rewind(); // not acknowledged yet: sent again
    tailer.release();
    expect(text()).toBe('last words\nlast words\n');
    tailer.acknowledge(tailer.snapshot(), []); // a heartbeat's answer: the coordinator has it, its followers took it
    tailer.forget('j', 0);
    tailer.rewind();
    tailer.release();
    expect(text()).toBe('last words\nlast words\n');
  });

  it('does not forget a copy of the rank started since', async () => {
    tailer.finish('j', 0);
    tailer.add('j', 0, paths());
    tailer.forget('j', 0);
    print('new copy\n');
    await poll();
    expect(text()).toBe('new copy\n');
  });

  it('reads a paused job only once the pause ends, and at most OUTPUT_POLL_MAX_BYTES of a file per poll', async () => {
    tailer.pause('j', 250);
    print('x'.repeat(OUTPUT_POLL_MAX_BYTES + 10));
    await poll();
    expect(text()).toBe('');
    await vi.advanceTimersByTimeAsync(200);
    expect(text().length).toBe(OUTPUT_POLL_MAX_BYTES);
    await poll();
    expect(text().length).toBe(OUTPUT_POLL_MAX_BYTES + 10);
  });

  it('reads nothing while the connection has a backlog; an exit then leaves a tail', async () => {
    readable = false;
    print('waits\n');
    await poll();
    expect(text()).toBe('');
    readable = true;
    await poll();
    expect(text()).toBe('waits\n');
    tailer.finish('j', 0); // read to the end at the exit: no tail
    expect(tailer.outputFollows('j', 0)).toBe(false);
    tailer.add('j', 1, { out: join(dir, 'r1.out'), err: join(dir, 'r1.err') });
    readable = false;
    appendFileSync(join(dir, 'r1.out'), 'before the exit\n');
    tailer.finish('j', 1);
    expect(tailer.outputFollows('j', 1)).toBe(true);
    expect(text()).toBe('waits\n');
    readable = true;
    await poll();
    expect(text()).toBe('waits\nbefore the exit\n');
    expect(chunks.at(-1)!.last).toBe(true);
  });

  it("reads a paused job's ended rank after its exit, at the poll's pace, then says it is done", async () => {
    tailer.pause('j', 250);
    print('x'.repeat(OUTPUT_POLL_MAX_BYTES + 10));
    appendFileSync(paths().err, 'err\n');
    tailer.finish('j', 0);
    expect(tailer.outputFollows('j', 0)).toBe(true);
    expect(text()).toBe('');
    tailer.forget('j', 0); // its exit acknowledged: the tail goes on
    await vi.advanceTimersByTimeAsync(300);
    expect(text().length).toBe(OUTPUT_POLL_MAX_BYTES + 4);
    expect(chunks.some((c) => c.last)).toBe(false);
    await poll();
    expect(text().length).toBe(OUTPUT_POLL_MAX_BYTES + 14);
    const last = chunks.at(-1)!;
    expect([last.last, last.data.length, last.jobId, last.rank]).toEqual([true, 0, 'j', 0]);
    expect(chunks.filter((c) => c.last)).toHaveLength(1);
    await poll();
    expect(chunks.filter((c) => c.last)).toHaveLength(1);
    // Not acknowledged yet: a lost session sends the tail again, and its end.
    tailer.rewind();
    tailer.release();
    await poll();
    expect(text().length).toBe(2 * (OUTPUT_POLL_MAX_BYTES + 14));
    expect(chunks.filter((c) => c.last)).toHaveLength(2);
    // Acknowledged, and taken by its followers: let go.
    tailer.acknowledge(tailer.snapshot());
    expect(tailer.position('j', 0)).toBeDefined();
    tailer.acknowledge(tailer.snapshot(), []);
    expect(tailer.position('j', 0)).toBeUndefined();
  });

  it("reads a flushed job's files to their end, or says what it holds back of a paused job", async () => {
    tailer.add('k', 0, { out: join(dir, 'k0.out'), err: join(dir, 'k0.err') });
    appendFileSync(join(dir, 'k0.out'), 'other job\n');
    print('flushed\n');
    expect(tailer.readForFlush('j').unsent).toEqual([]);
    expect(text()).toBe('flushed\n');
    tailer.pause('j', 3_000);
    print('held back\n');
    appendFileSync(paths().err, 'err\n');
    expect(tailer.readForFlush('j')).toEqual({ unsent: [{ rank: 0, stdout_bytes: 10, stderr_bytes: 4 }], counted: [{ rank: 0, out: { path: paths().out, upTo: 18 }, err: { path: paths().err, upTo: 4 } }] });
    expect(text()).toBe('flushed\n');
  });

});
