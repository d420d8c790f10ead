// OutputResends: the bytes of a source an agent sends again are passed on once;
// sources, streams, ranks and jobs are kept apart.
import { describe, expect, it } from 'vitest';
import { RankOutput_Stream } from '../../src/gen/proto.js';
import { OutputResends } from '../../src/coordinator/output-resends.js';

const OUT = RankOutput_Stream.STDOUT;
const ERR = RankOutput_Stream.STDERR;
const text = (d: Uint8Array) => Buffer.from(d).toString();

describe('OutputResends', () => {
  it('drops what was passed on, cuts a chunk that overlaps it, and passes on what is new', () => {
    const r = new OutputResends();
    expect(text(r.filter('j', 0, OUT, 's1', 0, Buffer.from('abc')))).toBe('abc');
    expect(text(r.filter('j', 0, OUT, 's1', 3, Buffer.from('def')))).toBe('def');
    expect(text(r.filter('j', 0, OUT, 's1', 0, Buffer.from('abc')))).toBe(''); // sent again
    expect(text(r.filter('j', 0, OUT, 's1', 3, Buffer.from('defgh')))).toBe('gh'); // again, and more
    expect(text(r.filter('j', 0, OUT, 's1', 8, Buffer.from('i')))).toBe('i');
  });

  it('passes on a chunk past a gap, and what came before the gap once only', () => {
    const r = new OutputResends();
    expect(text(r.filter('j', 0, OUT, 's1', 10, Buffer.from('kl')))).toBe('kl');
    expect(text(r.filter('j', 0, OUT, 's1', 0, Buffer.from('abcdefghijkl')))).toBe('');
  });

  it('keeps sources, streams, ranks and jobs apart, and passes on everything of a chunk without a source', () => {
    const r = new OutputResends();
    r.filter('j', 0, OUT, 's1', 0, Buffer.from('abc'));
    expect(text(r.filter('j', 0, OUT, 's2', 0, Buffer.from('abc')))).toBe('abc');
    expect(text(r.filter('j', 0, ERR, 's1', 0, Buffer.from('abc')))).toBe('abc');
    expect(text(r.filter('j', 1, OUT, 's1', 0, Buffer.from('abc')))).toBe('abc');
    expect(text(r.filter('k', 0, OUT, 's1', 0, Buffer.from('abc')))).toBe('abc');
    expect(text(r.filter('j', 0, OUT, '', 0, Buffer.from('abc')))).toBe('abc');
    expect(text(r.filter('j', 0, OUT, '', 0, Buffer.from('abc')))).toBe('abc');
  });

  it('forgets an ended job', () => {
    const r = new OutputResends();
    r.filter('j', 0, OUT, 's1', 0, Buffer.from('abc'));
    r.forget('j');
    expect(text(r.filter('j', 0, OUT, 's1', 0, Buffer.from('abc')))).toBe('abc');
  });
});
