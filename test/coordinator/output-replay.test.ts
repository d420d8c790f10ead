// What of the ranks' output a rollback does not pass on twice (src/coordinator/output-replay.ts).
import { afterEach, describe, expect, it } from 'vitest';
import { RankOutput_Stream } from '../../src/gen/proto.js';
import { Catalog } from '../../src/coordinator/catalog.js';
import { OutputReplay } from '../../src/coordinator/output-replay.js';
import { closeTempCatalogs, tempCatalog } from '../helpers/temp-catalog.js';

afterEach(closeTempCatalogs);

/** A coordinator's replay over `catalog`, with the counts saved there. */
const replayOn = (instance: string, catalog: Catalog) => new OutputReplay(instance, catalog.outputCounts(), catalog);

const OUT = RankOutput_Stream.STDOUT;
const ERR = RankOutput_Stream.STDERR;
const text = (b: Uint8Array) => Buffer.from(b).toString();
/** The sources a rollback names for its restored copies' output (ImageSource.output_source). */
const NEW = (rank: number) => `new.${rank}`;

describe('OutputReplay', () => {
  it('drops, per rank and stream, what was passed on after the mark, across chunk boundaries, then passes on', () => {
    const r = new OutputReplay('me');
    r.filter('j', 0, OUT, Buffer.from('a\n'));
    const marks = r.mark('j');
    r.filter('j', 0, OUT, Buffer.from('bb\n'));
    r.filter('j', 0, ERR, Buffer.from('e\n'));
    r.filter('j', 1, OUT, Buffer.from('x\n'));
    expect(r.rewind('j', marks, NEW)).toBe(3 + 2 + 2);
    expect(text(r.filter('j', 0, OUT, Buffer.from('b')))).toBe('');
    expect(text(r.filter('j', 0, OUT, Buffer.from('b\nc\n')))).toBe('c\n');
    expect(text(r.filter('j', 0, ERR, Buffer.from('e\nf\n')))).toBe('f\n');
    expect(text(r.filter('j', 1, OUT, Buffer.from('x\ny\n')))).toBe('y\n');
    // A second rollback to the same epoch drops everything shown since it again.
    expect(r.rewind('j', marks, NEW)).toBe(3 + 2 + 2 + 2 + 2 + 2);
    expect(text(r.filter('k', 0, OUT, Buffer.from('other job\n')))).toBe('other job\n');
  });

  it("drops nothing for marks another coordinator took, nor without marks, and says it cannot", () => {
    const r = new OutputReplay('me');
    r.filter('j', 0, OUT, Buffer.from('a\n'));
    expect(r.rewind('j', { coordinator: 'before-me', ranks: { 0: [0, 0] } }, NEW)).toBeUndefined();
    expect(text(r.filter('j', 0, OUT, Buffer.from('a\n')))).toBe('a\n');
    expect(r.rewind('j', undefined, NEW)).toBeUndefined();
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
    expect(r.rewind('j', marks, NEW)).toBe(6);
    expect(text(r.filter('j', 0, OUT, Buffer.from('after\nnew\n')))).toBe('new\n');
  });

  it("drops the repeat where the restored copy prints it, also when it comes again; the old copy's late output passes", () => {
    const r = new OutputReplay('me');
    r.filter('j', 0, OUT, Buffer.from('a\n'), 'old', 0);
    const marks = r.mark('j');
    r.filter('j', 0, OUT, Buffer.from('bb\n'), 'old', 2);
    expect(r.rewind('j', marks, NEW)).toBe(3);
    // The old copy's last output, late: its own, not the repeat.
    expect(text(r.filter('j', 0, OUT, Buffer.from('late\n'), 'old', 5))).toBe('late\n');
    expect(text(r.filter('j', 0, OUT, Buffer.from('b'), 'new.0', 0))).toBe('');
    expect(text(r.filter('j', 0, OUT, Buffer.from('b\nc\n'), 'new.0', 1))).toBe('c\n');
    // Sent again (a new coordinator gets what followers had not taken): the repeat in it is dropped again.
    expect(text(r.filter('j', 0, OUT, Buffer.from('bb\nc\n'), 'new.0', 0, true))).toBe('c\n');
    expect(text(r.filter('j', 0, OUT, Buffer.from('b\nc\n'), 'new.0', 1, true))).toBe('c\n');
  });

  it("takes the restored copy's output by the source the rollback named: any other source passes, also one never seen before", () => {
    const { catalog, reopen } = tempCatalog(['j']);
    const before = replayOn('c1', catalog);
    before.filter('j', 0, OUT, Buffer.from('a\n'), 'old', 0);
    const marks = before.mark('j');
    before.filter('j', 0, OUT, Buffer.from('bb\n'), 'old', 2);
    catalog.saveOutputCounts(before.unsaved());
    // Upgraded before the rollback: the next coordinator never saw the old copy print.
    const reopened = reopen();
    const after = replayOn('c2', reopened);
    expect(after.rewind('j', marks, NEW)).toBe(3);
    // The old copy's last lines come late, in a source that agent began after an agent restart: not the repeat.
    expect(text(after.filter('j', 0, OUT, Buffer.from('late\n'), 'old-again', 5))).toBe('late\n');
    expect(text(after.filter('j', 0, OUT, Buffer.from('bb\nc\n'), 'new.0', 40))).toBe('c\n');
    expect(reopened.outputRepeats()).toEqual([{ jobId: 'j', rank: 0, stream: 0, bytes: 3, source: 'new.0', from: 40 }]);
  });

  it('still takes the first output from another source as the restored copy\'s for a repeat saved with only the source before', () => {
    const { catalog, reopen } = tempCatalog(['j']);
    // (as a coordinator before 2026-12-08 saved it)
    catalog.saveOutputRepeats('j', [{ rank: 0, stream: 0, bytes: 3, beforeSource: 'old' }]);
    const r = replayOn('c2', reopen());
    expect(text(r.filter('j', 0, OUT, Buffer.from('late\n'), 'old', 5))).toBe('late\n');
    expect(text(r.filter('j', 0, OUT, Buffer.from('bb\nc\n'), 'restored', 9))).toBe('c\n');
  });

  it('keeps the repeat in the catalog: a coordinator restarted while it comes drops the rest, and what is sent again of it', () => {
    const { catalog, reopen } = tempCatalog(['j']);
    const before = replayOn('c1', catalog);
    before.filter('j', 0, OUT, Buffer.from('a\n'), 'old', 0);
    const marks = before.mark('j');
    before.filter('j', 0, OUT, Buffer.from('bb\n'), 'old', 2);
    before.filter('j', 1, ERR, Buffer.from('e\n'), 'old1', 0);
    catalog.saveOutputCounts(before.unsaved());
    expect(before.rewind('j', marks, NEW)).toBe(3 + 2);
    expect(text(before.filter('j', 0, OUT, Buffer.from('b'), 'new.0', 0))).toBe('');
    // Killed here. The next coordinator gets the rest (the agent knew 'b' taken), and then all of it again;
    // rank 1's repeat had not come yet.
    const after = replayOn('c2', reopen());
    expect(text(after.filter('j', 0, OUT, Buffer.from('b\nc\n'), 'new.0', 1))).toBe('c\n');
    expect(text(after.filter('j', 0, OUT, Buffer.from('bb\nc\n'), 'new.0', 0, true))).toBe('c\n');
    expect(text(after.filter('j', 1, ERR, Buffer.from('late\n'), 'old1', 2))).toBe('late\n');
    expect(text(after.filter('j', 1, ERR, Buffer.from('e\nf\n'), 'new.1', 0))).toBe('f\n');
  });

  it('forgets the repeats of an ended job, and those a rollback without marks replaced', () => {
    const { catalog, reopen } = tempCatalog(['j']);
    const r = replayOn('c1', catalog);
    r.filter('j', 0, OUT, Buffer.from('a\n'), 'old', 0);
    const marks = r.mark('j');
    r.filter('j', 0, OUT, Buffer.from('bb\n'), 'old', 2);
    expect(r.rewind('j', marks, NEW)).toBe(3);
    expect(catalog.outputRepeats()).toEqual([{ jobId: 'j', rank: 0, stream: 0, bytes: 3, source: 'new.0' }]);
    expect(r.rewind('j', undefined, NEW)).toBeUndefined();
    expect(catalog.outputRepeats()).toEqual([]);
    expect(r.rewind('j', marks, NEW)).toBe(3);
    r.forget('j');
    expect(text(replayOn('c2', reopen()).filter('j', 0, OUT, Buffer.from('bb\n'), 'new.0', 0))).toBe('bb\n');
  });
});
