// What a rank printed after its flush's reply counted its output, up to its
// dump (agent/late-output.ts): read from the record Ferry's CRIU plugin writes
// into the image (the size of each append-only file while the tree was
// frozen), against the counts of the same epoch's flush. Real files.
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LateOutput } from '../../src/agent/late-output.js';
import { APPEND_FILES_NAME } from '../../src/criu/criu-dump.js';

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-test-late-output-'));
  mkdirSync(join(dir, 'logs'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const log = (rank: number, stream: 'out' | 'err') => join(dir, 'logs', `rank-${rank}.${stream}`);
const counted = (rank: number, out: number, err: number) => ({ rank, out: { path: log(rank, 'out'), upTo: out }, err: { path: log(rank, 'err'), upTo: err } });

/** An image folder of `rank` whose plugin record says these sizes ("SIZE PATH" lines). */
function image(rank: number, lines: string[]): { rank: number; location: string } {
  const location = join(dir, 'images', `rank-${rank}`);
  mkdirSync(location, { recursive: true });
  writeFileSync(join(location, APPEND_FILES_NAME), lines.map((l) => `${l}\n`).join(''));
  return { rank, location };
}

describe('late output', () => {
  it("is what each rank's log files grew past the flush's count by the dump, per stream, for the ranks that printed any", async () => {
    const late = new LateOutput();
    late.flushed('j', 3, [counted(0, 100, 7), counted(1, 50, 0)]);
    const images = [
      // (ferry-init and the program hold the same file: one line each; and a file of the rank's own)
      image(0, [`130 ${log(0, 'out')}`, `130 ${log(0, 'out')}`, `9 ${log(0, 'err')}`, `4096 ${join(dir, 'history.0')}`]),
      image(1, [`50 ${log(1, 'out')}`, `0 ${log(1, 'err')}`]),
    ];
    expect(late.dumped('j', 3, images)).toEqual([{ rank: 0, stdout_bytes: 30, stderr_bytes: 2 }]);
    // Taken: a DUMP asked again reports nothing more.
    expect(late.dumped('j', 3, images)).toEqual([]);
  });

  it("is nothing for another epoch's dump (a migration's, or a flush replaced since), or an image without the record", async () => {
    const late = new LateOutput();
    late.flushed('j', 3, [counted(0, 100, 0)]);
    late.flushed('j', 4, [counted(0, 120, 0)]);
    expect(late.dumped('j', 3, [image(0, [`130 ${log(0, 'out')}`])])).toEqual([]);
    late.flushed('j', 5, [counted(0, 100, 0)]);
    const bare = join(dir, 'images', 'bare');
    mkdirSync(bare, { recursive: true });
    expect(late.dumped('j', 5, [{ rank: 0, location: bare }])).toEqual([]);
  });

  it('matches the log by its real path, as the plugin reads it from /proc', async () => {
    symlinkSync(join(dir, 'logs'), join(dir, 'linked'));
    const late = new LateOutput();
    writeFileSync(log(0, 'out'), '');
    writeFileSync(log(0, 'err'), '');
    late.flushed('j', 1, [{ rank: 0, out: { path: join(dir, 'linked', 'rank-0.out'), upTo: 10 }, err: { path: join(dir, 'linked', 'rank-0.err'), upTo: 0 } }]);
    expect(late.dumped('j', 1, [image(0, [`25 ${realpathSync(log(0, 'out'))}`])])).toEqual([{ rank: 0, stdout_bytes: 15, stderr_bytes: 0 }]);
  });
});
