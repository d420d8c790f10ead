// What of the ranks' output a rollback does not pass on twice (src/coordinator/output-replay.ts).
import { describe, expect, it } from 'vitest';
import { RankOutput_Stream } from '../../src/gen/proto.js';
import { OutputReplay } from '../../src/coordinator/output-replay.js';

const OUT = RankOutput_Stream.STDOUT;
const ERR = RankOutput_Stream.STDERR;
const text = (b: Uint8Array) => Buffer.from(b).toString();

describe('OutputReplay', () => {
  it('drops, per rank and stream, what was passed on after the mark, across chunk boundaries, then passes on', () => {
    const r = new OutputReplay('me');
    r.filter('j', 0, OUT, Buffer.from('a\n'));
    const marks = r.mark('j');
    r.filter('j', 0, OUT, Buffer.from('bb\n'));
    r.filter('j', 0, ERR, Buffer.from('e\n'));
    r.filter('j', 1, OUT, Buffer.from('x\n'));
    expect(r.rewind('j', marks)).toBe(3 + 2 + 2);
    expect(text(r.filter('j', 0, OUT, Buffer.from('b')))).toBe('');
    expect(text(r.filter('j', 0, OUT, Buffer.from('b\nc\n')))).toBe('c\n');
    expect(text(r.filter('j', 0, ERR, Buffer.from('e\nf\n')))).toBe('f\n');
    expect(text(r.filter('j', 1, OUT, Buffer.from('x\ny\n')))).toBe('y\n');
    // A second rollback to the same epoch drops everything shown since it again.
    expect(r.rewind('j', marks)).toBe(3 + 2 + 2 + 2 + 2 + 2);
    expect(text(r.filter('k', 0, OUT, Buffer.from('other job\n')))).toBe('other job\n');
  });

  it("drops nothing for marks another coordinator took, nor without marks, and says it cannot", () => {
    const r = new OutputReplay('me');
    r.filter('j', 0, OUT, Buffer.from('a\n'));
    expect(r.rewind('j', { coordinator: 'before-me', ranks: { 0: [0, 0] } })).toBeUndefined();
    expect(text(r.filter('j', 0, OUT, Buffer.from('a\n')))).toBe('a\n');
    expect(r.rewind('j', undefined)).toBeUndefined();
    expect(text(r.filter('j', 0, OUT, Buffer.from('a\n')))).toBe('a\n');
  });

  it('counts in a mark what the agents held back at the flush, so a rollback drops only what came after it', () => {
    const r = new OutputReplay('me');
    r.filter('j', 0, OUT, Buffer.from('shown\n'));
    // At the flush the agent still held 'held\n' (5 bytes) back: its job's follower was behind.
    const marks = r.mark('j', [{ rank: 0, stdout_bytes: 5, stderr_bytes: 0 }]);
    expect(marks.ranks).toEqual({ 0: [11, 0] });
    r.filter('j', 0, OUT, Buffer.from('held\n')); // passed on later
    r.filter('j', 0, OUT, Buffer.from('after\n')); // written after the flush
    expect(r.rewind('j', marks)).toBe(6);
    expect(text(r.filter('j', 0, OUT, Buffer.from('after\nnew\n')))).toBe('new\n');
  });

});
