// cutBackWrittenFiles: which files a restart from an epoch cuts back, over
// image summaries as readImages gives them (the flags and sizes CRIU records)
// and real files. A real restart of a rank writing its own files is in
// test/e2e/checkpoint-restart.test.ts (9.).
import { constants } from 'node:fs';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ImageFile, ImageSummary } from '../../src/criu/criu-images.js';
import { APPEND_FILES_NAME } from '../../src/criu/criu-dump.js';
import { checkRestorable } from '../../src/criu/restore-precheck.js';
import { cutBackWrittenFiles, putBackCutFiles, readAppendedFiles } from '../../src/criu/written-files.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-written-files-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

let nextId = 1;
/** A file of the image as readImages reports it: open on fd 3 of pid 1 unless told otherwise. */
function imageFile(path: string, flags: number, sizeBytes: number | undefined, over: Partial<ImageFile> = {}): ImageFile {
  return { id: nextId++, path, sizeBytes, flags, pos: sizeBytes ?? 0, uses: ['fd'], fds: [{ pid: 1, fd: 3 }], ...over };
}

function summaryOf(files: ImageFile[]): ImageSummary {
  return { dir: join(dir, 'images'), imgVersion: 2, processes: [], memoryPages: 0, memoryBytes: 0, pagesFileBytes: 0, files };
}

/** A file of `bytes` bytes (0, 1, 2, ... mod 256) in the test directory. */
function fileOf(name: string, bytes: number): string {
  const path = join(dir, name);
  writeFileSync(path, Buffer.from(Array.from({ length: bytes }, (_, i) => i % 256)));
  return path;
}

const size = (path: string) => statSync(path).size;

describe('cutBackWrittenFiles', () => {
  it('cuts a file open for writing that grew back to its size at the dump, keeping what was written by then', async () => {
    const history = fileOf('history.0', 300);
    const cut = await cutBackWrittenFiles(summaryOf([imageFile(history, constants.O_WRONLY, 120)]));
    expect(cut).toEqual([{ path: history, fromBytes: 300, toBytes: 120 }]);
    expect(readFileSync(history)).toEqual(Buffer.from(Array.from({ length: 120 }, (_, i) => i % 256)));
  });

  it('cuts one opened read-write, also with O_APPEND (CRIU checks its size)', async () => {
    const rw = fileOf('state.dat', 64);
    const rwAppend = fileOf('journal', 50);
    const cut = await cutBackWrittenFiles(summaryOf([imageFile(rw, constants.O_RDWR, 10), imageFile(rwAppend, constants.O_RDWR | constants.O_APPEND, 20)]));
    expect(cut.map((c) => [c.path, c.toBytes])).toEqual([
      [rw, 10],
      [rwAppend, 20],
    ]);
    expect([size(rw), size(rwAppend)]).toEqual([10, 20]);
  });

  it('leaves alone a file at the path of one deleted before the dump (CRIU carried that one): another file, not the rank\'s', async () => {
    const scratch = fileOf('scratch.tmp', 300);
    const summary = summaryOf([imageFile(scratch, constants.O_RDWR, 120, { ghost: { id: 1, imageBytes: 200 } })]);
    expect(await cutBackWrittenFiles(summary)).toEqual([]);
    expect(size(scratch)).toBe(300);
    expect(await checkRestorable(summary, 'h')).toEqual([]); // nor does the precheck ask for its size
    rmSync(scratch);
    expect(await checkRestorable(summary, 'h')).toEqual([]); // or for it at all
  });

  it('leaves a written file that shrank to the restore precheck, which says the rank had written more', async () => {
    const shrunk = fileOf('out.dat', 5);
    const input = fileOf('input.dat', 3);
    const summary = summaryOf([imageFile(shrunk, constants.O_WRONLY, 9), imageFile(input, constants.O_RDONLY, 4)]);
    expect(await cutBackWrittenFiles(summary)).toEqual([]);
    expect((await checkRestorable(summary, 'h')).map((p) => p.message)).toEqual([
      `h: ${shrunk}: size 5 != 9 expected (the rank had written 9 bytes by its dump; the rest is gone from the file)`,
      `h: ${input}: size 3 != 4 expected`,
    ]);
  });

  it('leaves alone what is not the rank\'s to cut: a read-only input that changed, a file that shrank, one of the same size', async () => {
    const input = fileOf('input.dat', 100);
    const shrunk = fileOf('out.dat', 5);
    const same = fileOf('same.dat', 7);
    const cut = await cutBackWrittenFiles(
      summaryOf([imageFile(input, constants.O_RDONLY, 40), imageFile(shrunk, constants.O_WRONLY, 9), imageFile(same, constants.O_WRONLY, 7)]),
    );
    expect(cut).toEqual([]);
    expect([size(input), size(shrunk), size(same)]).toEqual([100, 5, 7]);
  });

  it('leaves alone write-only append files (CRIU records no size: logs), the rank\'s stdout and stderr, the executable and mapped files', async () => {
    const log = fileOf('app.log', 80);
    const stdout = fileOf('rank-0.out', 90);
    const stderr = fileOf('rank-0.err', 90);
    const exe = fileOf('app', 70);
    const mapped = fileOf('table.bin', 60);
    const cut = await cutBackWrittenFiles(
      summaryOf([
        imageFile(log, constants.O_WRONLY | constants.O_APPEND, undefined),
        // Not O_APPEND here, so CRIU would have recorded a size: still the agent's to replace, never to cut.
        imageFile(stdout, constants.O_WRONLY, 10, { fds: [{ pid: 2, fd: 1 }] }),
        imageFile(stderr, constants.O_WRONLY, 10, { fds: [{ pid: 2, fd: 2 }] }),
        imageFile(exe, constants.O_RDWR, 10, { uses: ['exe', 'fd'] }),
        imageFile(mapped, constants.O_RDWR, 10, { uses: ['mapped'], fds: [] }),
      ]),
    );
    expect(cut).toEqual([]);
    expect([log, stdout, stderr, exe, mapped].map(size)).toEqual([80, 90, 90, 70, 60]);
  });

  it('skips what is missing or not a regular file (the restore precheck names it)', async () => {
    const sub = join(dir, 'a-directory');
    mkdirSync(sub);
    const cut = await cutBackWrittenFiles(summaryOf([imageFile(join(dir, 'gone'), constants.O_WRONLY, 3), imageFile(sub, constants.O_WRONLY, 0)]));
    expect(cut).toEqual([]);
  });

  it('cuts a file open on several descriptors once, to the largest size they recorded', async () => {
    const shared = fileOf('shared.dat', 500);
    const cut = await cutBackWrittenFiles(
      summaryOf([
        imageFile(shared, constants.O_RDWR, 260, { fds: [{ pid: 2, fd: 5 }] }),
        imageFile(shared, constants.O_WRONLY, 200, { fds: [{ pid: 2, fd: 6 }] }),
      ]),
    );
    expect(cut).toEqual([{ path: shared, fromBytes: 500, toBytes: 260 }]);
    expect(size(shared)).toBe(260);
  });

  it('cuts an append-only file back to the size the job recorded for it at the dump; without a record it stays', async () => {
    const log = fileOf('app.log', 900);
    const unrecorded = fileOf('other.log', 500);
    const stdout = fileOf('rank-0.out', 800);
    const appendOnly = constants.O_WRONLY | constants.O_APPEND;
    const cut = await cutBackWrittenFiles(
      summaryOf([
        imageFile(log, appendOnly, undefined),
        imageFile(unrecorded, appendOnly, undefined),
        imageFile(stdout, appendOnly, undefined, { fds: [{ pid: 2, fd: 1 }] }),
      ]),
      new Map([
        [log, 600],
        [stdout, 100], // the agent hands the restored rank new output files: never cut
      ]),
    );
    expect(cut).toEqual([{ path: log, fromBytes: 900, toBytes: 600 }]);
    expect([log, unrecorded, stdout].map(size)).toEqual([600, 500, 800]);
  });
});

describe('putBackCutFiles', () => {
  it('puts back, byte for byte, what a cut kept aside; a file written to since stays cut, its bytes kept and named', async () => {
    const history = fileOf('history.0', 300);
    const results = fileOf('results', 5000);
    const whole = [readFileSync(history), readFileSync(results)];
    const kept = join(dir, 'kept', 'rank-0');
    const cut = await cutBackWrittenFiles(summaryOf([imageFile(history, constants.O_WRONLY, 120), imageFile(results, constants.O_RDWR, 1000)]), new Map(), kept);
    expect(cut.map((c) => [c.path, c.fromBytes, c.toBytes])).toEqual([
      [history, 300, 120],
      [results, 5000, 1000],
    ]);
    writeFileSync(results, 'x', { flag: 'a' }); // a restored rank wrote to it before the restart failed
    const first = await putBackCutFiles(kept);
    expect(first.putBack).toEqual([{ path: history, fromBytes: 120, toBytes: 300 }]);
    expect(readFileSync(history)).toEqual(whole[0]);
    expect(first.problems).toEqual([
      `${results}: not put back: it is 1001 bytes now, not the 1000 it was cut to (written to since); its 4000 cut bytes are kept in ${join(kept, '1.tail')}`,
    ]);
    expect(readFileSync(join(kept, '1.tail'))).toEqual(whole[1].subarray(1000));
    // Once the file is back at its cut size, a second PUT_BACK puts it back; nothing is left.
    writeFileSync(results, whole[1].subarray(0, 1000));
    const second = await putBackCutFiles(kept);
    expect([second.putBack, second.problems]).toEqual([[{ path: results, fromBytes: 1000, toBytes: 5000 }], []]);
    expect(readFileSync(results)).toEqual(whole[1]);
    expect(() => statSync(kept)).toThrow(/ENOENT/);
    expect(await putBackCutFiles(kept)).toEqual({ putBack: [], problems: [] }); // nothing kept: nothing to do
  });

  it('does not cut a file whose bytes cannot be kept aside', async () => {
    const history = fileOf('history.1', 300);
    writeFileSync(join(dir, 'not-a-dir'), '');
    await expect(cutBackWrittenFiles(summaryOf([imageFile(history, constants.O_WRONLY, 120)]), new Map(), join(dir, 'not-a-dir', 'rank-0'))).rejects.toThrow(
      new RegExp(`^${history}: grew from 120 to 300 bytes since the dump; the bytes a cut would take cannot be kept aside in .*not-a-dir/rank-0 \\(.*\\), so it was not cut$`),
    );
    expect(size(history)).toBe(300);
  });
});

describe('readAppendedFiles', () => {
  it("reads the plugin's record, skipping what is not a line of it; none without one", async () => {
    expect(await readAppendedFiles(dir)).toEqual([]);
    writeFileSync(join(dir, APPEND_FILES_NAME), '1234 /scratch/run/app.log\n0 /path with spaces/x.log\nbad line\n12 relative/path\n');
    expect(await readAppendedFiles(dir)).toEqual([
      { path: '/scratch/run/app.log', sizeBytes: 1234 },
      { path: '/path with spaces/x.log', sizeBytes: 0 },
    ]);
  });
});
