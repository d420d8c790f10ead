// LateWrites: catalog writes refused for a full disk wait under a key and are
// written once there is room, in the order they came; a write under the same
// job and kind replaces the one waiting; settle() writes a job's now, or says
// why it cannot.
// (The real full disk under the real catalog: test/protocol/state-disk-full*.)
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/gen/proto.js';
import { LateWrites } from '../../src/coordinator/late-writes.js';

/** A stand-in for the catalog: refuses every write with SQLite's SQLITE_FULL while `full`. */
function disk() {
  const d = { full: true, written: [] as string[] };
  const write = (what: string) => () => {
    if (d.full) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    d.written.push(what);
  };
  return { d, write };
}

describe('late catalog writes', () => {
  it('waits while the disk is full, then writes in the order they came, the latest of each key', () => {
    const { d, write } = disk();
    const warned: string[] = [];
    const late = new LateWrites('/s/catalog.db', (what) => warned.push(what), () => {});
    expect(late.run('j', 'a', 'A', write('a1'))?.message).toBe('the coordinator cannot write its catalog /s/catalog.db: database or disk is full (SQLITE_FULL)');
    expect(late.run('k', 'b', 'B', write('b1'))?.code).toBe(ErrorCode.STATE_UNWRITABLE);
    expect(late.run('j', 'a', 'A', write('a2'))).toBeDefined();
    expect(warned).toEqual(['A waits to be recorded', 'B waits to be recorded', 'A waits to be recorded']);
    late.retry();
    expect(d.written).toEqual([]);
    d.full = false;
    late.retry();
    expect(d.written).toEqual(['b1', 'a2']);
    expect(late.size).toBe(0);
    expect(late.run('j', 'c', 'C', write('c1'))).toBeUndefined();
    expect(d.written.at(-1)).toBe('c1');
  });

  it('tells a write whether it runs late (it may check then whether a later write made it moot)', () => {
    const { d } = disk();
    const runs: boolean[] = [];
    const late = new LateWrites('/s/catalog.db', () => {}, () => {});
    late.run('j', 'x', 'X', (isLate) => {
      runs.push(isLate);
      if (d.full) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    });
    late.retry();
    d.full = false;
    late.retry();
    expect(runs).toEqual([false, true, true]);
  });

  it('stops at the first write still refused, keeping it and those after it', () => {
    const { d, write } = disk();
    const late = new LateWrites('/s/catalog.db', () => {}, () => {});
    late.run('j', 'a', 'A', write('a'));
    late.run('j', 'b', 'B', write('b'));
    let refusals = 0;
    late.run('k', 'c', 'C', () => {
      if (d.full || refusals++ === 0) throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_WRITE' });
      d.written.push('c');
    });
    d.full = false;
    late.retry();
    expect(d.written).toEqual(['a', 'b']);
    expect(late.waits('k')).toBe(true);
    expect(late.waits('j')).toBe(false);
    late.retry();
    expect(d.written).toEqual(['a', 'b', 'c']);
  });

  it("settles a job's writes before an operation of it, or says the catalog still refuses them", () => {
    const { d, write } = disk();
    const late = new LateWrites('/s/catalog.db', () => {}, () => {});
    late.run('j', 'abort', 'the abort', write('abort j'));
    late.run('k', 'abort', 'the abort', write('abort k'));
    late.run('j', 'endpoint 0', 'the endpoint', write('endpoint j'));
    expect(() => late.settle('j')).toThrow(/cannot write its catalog \/s\/catalog\.db: database or disk is full/);
    expect(late.waits('j')).toBe(true);
    d.full = false;
    late.settle('j');
    late.settle('nothing waits here');
    expect(d.written).toEqual(['abort j', 'endpoint j']);
    expect(late.waits('j')).toBe(false);
    expect(late.waits('k')).toBe(true);
  });

  it('throws what is not a full catalog, and keeps nothing of it', () => {
    const late = new LateWrites('/s/catalog.db', () => {}, () => {});
    expect(() =>
      late.run('j', 'x', 'X', () => {
        throw new Error('a bug');
      }),
    ).toThrow('a bug');
    expect(late.size).toBe(0);
  });

  it('drops a late write that fails for another reason, saying so, rather than hold its job back', () => {
    const { d, write } = disk();
    const failed: string[] = [];
    const late = new LateWrites('/s/catalog.db', () => {}, (what, err) => failed.push(`${what}: ${(err as Error).message}`));
    late.run('j', 'x', 'X', () => {
      if (d.full) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      throw new Error("host 'c' is unknown");
    });
    late.run('j', 'y', 'Y', write('y'));
    d.full = false;
    late.settle('j');
    expect(failed).toEqual(["X: host 'c' is unknown"]);
    expect(d.written).toEqual(['y']);
    expect(late.waits('j')).toBe(false);
  });
});
