// FollowerLink: output to one follower of a job, paced by the follower's count
// of what it received, in order, bounded, with a notice where output was left out.
import { describe, expect, it } from 'vitest';
import { FollowerLink, OUTPUT_WINDOW_BYTES, OUTPUT_WINDOW_MESSAGES, type FollowerReply } from '../../src/coordinator/follower-link.js';

const chunk = (n: number, fill = 1): FollowerReply => ({ status: { ok: true }, final: false, job_output: { job_id: 'j', rank: 0, data: Buffer.alloc(n, fill) } });
const notice = (message: string): FollowerReply => ({ status: { ok: true }, final: false, job_notice: { job_id: 'j', message } });
const end: FollowerReply = { status: { ok: true }, final: true, job_ended: { job: { id: 'j' } } };
const bytesOf = (sent: FollowerReply[]) => sent.reduce((n, r) => n + (r.job_output?.data?.length ?? 0), 0);
const MiB = 1024 * 1024;

describe('FollowerLink', () => {
  it('sends everything at once to a follower that never counts (a CLI from before counting)', () => {
    const sent: FollowerReply[] = [];
    const link = new FollowerLink((r) => sent.push(r), 'j');
    for (let i = 0; i < 40; i++) link.push(chunk(MiB));
    link.push(end);
    expect(bytesOf(sent)).toBe(40 * MiB);
    expect(sent.at(-1)).toBe(end);
  });

  it('keeps at most the window in flight to a counting follower, in order, notices and the end behind the output', () => {
    const sent: FollowerReply[] = [];
    const link = new FollowerLink((r) => sent.push(r), 'j');
    link.received(0);
    for (let i = 0; i < 40; i++) link.push(chunk(MiB, i));
    link.push(notice('restarted'));
    link.push(chunk(MiB, 40));
    link.push(end);
    expect(bytesOf(sent)).toBe(OUTPUT_WINDOW_BYTES);
    expect(link.waiting).toBe(40 - OUTPUT_WINDOW_BYTES / MiB + 3); // the rest of the 40, the notice, one more, the end
    // the follower takes it in pieces; each count lets as much more go
    let counted = 0;
    while (link.waiting > 0) {
      counted = bytesOf(sent);
      link.received(counted);
      expect(bytesOf(sent) - counted).toBeLessThanOrEqual(OUTPUT_WINDOW_BYTES);
    }
    expect(sent.filter((r) => r.job_output).map((r) => r.job_output!.data![0])).toEqual(Array.from({ length: 41 }, (_, i) => i));
    expect(sent.findIndex((r) => r.job_notice)).toBe(40); // after the first 40 chunks, before the 41st
    expect(sent.at(-1)).toBe(end);
    expect(link.waitingBytes).toBe(0);
  });

  it('names where the output its follower has not taken starts, per source and stream', () => {
    const sent: FollowerReply[] = [];
    const link = new FollowerLink((r) => sent.push(r), 'j');
    const from = (source: string, offset: number, n: number, stream = 0): FollowerReply => ({
      status: { ok: true }, final: false, job_output: { job_id: 'j', rank: 0, stream, data: Buffer.alloc(n), source, offset },
    });
    const untaken = (ofSource = (_: string) => true) => {
      const into = new Map();
      link.untaken(into, ofSource);
      return [...into.values()];
    };
    link.push(from('a.1', 0, 10)); // a follower that never counted takes what it is sent
    expect(untaken()).toEqual([]);
    link.received(10);
    link.push(from('a.1', 10, MiB)); // in flight
    link.push(from('a.1', 10 + MiB, 20 * MiB)); // waiting here
    link.push(from('a.1', 0, 5, 1));
    link.push(from('b.1', 7, 5));
    expect(untaken()).toEqual([
      { source: 'a.1', stream: 0, offset: 10 },
      { source: 'a.1', stream: 1, offset: 0 },
      { source: 'b.1', stream: 0, offset: 7 },
    ]);
    expect(untaken((s) => s.startsWith('b.'))).toEqual([{ source: 'b.1', stream: 0, offset: 7 }]);
    link.received(10 + MiB);
    expect(untaken()[0]).toEqual({ source: 'a.1', stream: 0, offset: 10 + MiB });
    link.received(10 + 21 * MiB);
    expect(untaken()).toHaveLength(2);
    link.received(10 + 21 * MiB + 10);
    expect(untaken()).toEqual([]);
  });

  it('keeps at most OUTPUT_WINDOW_MESSAGES small chunks in flight', () => {
    const sent: FollowerReply[] = [];
    const link = new FollowerLink((r) => sent.push(r), 'j');
    link.received(0);
    for (let i = 0; i < 3 * OUTPUT_WINDOW_MESSAGES; i++) link.push(chunk(10));
    expect(sent).toHaveLength(OUTPUT_WINDOW_MESSAGES);
    link.received(10 * 100); // the first 100 arrived
    expect(sent).toHaveLength(OUTPUT_WINDOW_MESSAGES + 100);
  });

  it('counts from its first count: output an earlier coordinator sent does not hold this one back', () => {
    const sent: FollowerReply[] = [];
    const link = new FollowerLink((r) => sent.push(r), 'j');
    link.received(500 * MiB); // received that much from the coordinator before this one
    for (let i = 0; i < 40; i++) link.push(chunk(MiB));
    expect(bytesOf(sent)).toBe(OUTPUT_WINDOW_BYTES);
    link.received(500 * MiB + 8 * MiB);
    expect(bytesOf(sent)).toBe(OUTPUT_WINDOW_BYTES + 8 * MiB);
  });

  it('leaves out the oldest output past its limit, says how much where it was, and keeps the rest in order', () => {
    const sent: FollowerReply[] = [];
    const link = new FollowerLink((r) => sent.push(r), 'j', 8 * MiB);
    link.received(0);
    for (let i = 0; i < 16; i++) link.push(chunk(MiB, i)); // the window's 16 MiB go
    link.push(notice('kept'));
    for (let i = 16; i < 26; i++) link.push(chunk(MiB, i)); // 10 MiB wait: over the 8 MiB limit
    expect(link.waitingBytes).toBeLessThanOrEqual(8 * MiB);
    link.received(bytesOf(sent));
    link.received(bytesOf(sent));
    expect(sent[16]!.job_notice?.message).toBe('kept'); // nothing waited: it went at once
    const after = sent.slice(17);
    expect(after[0]!.job_notice?.message).toMatch(/^\d+ bytes of its output left out: this follower did not take them in time/);
    const left = after.filter((r) => r.job_output).map((r) => r.job_output!.data![0]);
    expect(left).toEqual([...left].sort((a, b) => a! - b!));
    expect(left.at(-1)).toBe(25); // the newest stay
    expect(Number(/^(\d+)/.exec(after[0]!.job_notice!.message!)![1])).toBe((10 - left.length) * MiB);
  });

  it('a renewed follow goes on from the one it replaces: counts, what waits, through its own send', () => {
    const old: FollowerReply[] = [];
    const a = new FollowerLink((r) => old.push(r), 'j');
    a.received(0);
    for (let i = 0; i < 20; i++) a.push(chunk(MiB, i));
    const renewed: FollowerReply[] = [];
    const b = new FollowerLink((r) => renewed.push(r), 'j');
    b.takeOver(a);
    b.push(chunk(MiB, 20));
    expect(renewed).toHaveLength(0); // the window is still full
    b.received(bytesOf(old));
    expect(renewed.map((r) => r.job_output!.data![0])).toEqual([16, 17, 18, 19, 20]);
  });
});
