// readImages / checkRestorable on the images of a real dump (the counter
// rank under ferry-init, dumped without --leave-running), and what CRIU
// itself does when a file the image needs changed or went missing.
import { appendFileSync, cpSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/gen/proto.js';
import { type CriuInstall } from '../../src/criu/criu-install.js';
import { ensureCriu } from '../../src/criu/criu-provision.js';
import { dumpRank } from '../../src/criu/criu-dump.js';
import { IMAGE_MAGIC, PAGE_SIZE_BYTES, type ImageSummary, decodeImage, outputFiles, readImages } from '../../src/criu/criu-images.js';
import { restoreRank } from '../../src/criu/criu-restore.js';
import { assertRestorable, checkRestorable } from '../../src/criu/restore-precheck.js';
import { FERRY_INIT, RankFixture, alive, exited, logLines, waitFor } from './criu-rank-fixture.js';

const TEST_TIMEOUT_MS = 180_000;
const HEAP_MIB = 16;
const HOST = 'host-b';

describe('CRIU images of a dumped rank', () => {
  const fx = new RankFixture();
  let criu: CriuInstall;
  let counter: string;
  let dir: string;
  let images: string;
  let data: string;
  let out: string;
  let err: string;
  let summary: ImageSummary;

  beforeAll(async () => {
    criu = await ensureCriu();
    counter = fx.build();
    dir = fx.tmp('ferry-criu-img-');
    images = join(dir, 'images');
    data = join(dir, 'input.dat');
    out = join(dir, 'logs', 'rank-3.out');
    err = join(dir, 'logs', 'rank-3.err');
    writeFileSync(data, 'twelve bytes');
    const rank = await fx.startRank([counter, data, '5', String(HEAP_MIB)], out, err);
    await waitFor('the counter to run', () => logLines(out).length >= 5);
    // Not leave-running: CRIU kills the tree once it is dumped.
    await dumpRank({ criu, initPid: rank.initPid, imagesDir: images, leaveRunning: false });
    await exited(rank.unshare);
    expect(alive(rank.initPid)).toBe(false);
    summary = await readImages(images);
  }, TEST_TIMEOUT_MS);

  afterAll(() => fx.cleanup());

  it('shows the process tree, the memory and the files', () => {
    expect(summary.imgVersion).toBeGreaterThan(0);
    expect(summary.processes.map((p) => ({ pid: p.pid, ppid: p.ppid, sid: p.sid, comm: p.comm }))).toEqual([
      { pid: 1, ppid: 0, sid: 1, comm: 'ferry-init' },
      { pid: 2, ppid: 1, sid: 1, comm: 'counter' },
    ]);
    // The counter's touched heap is in the image, and the pages files hold
    // exactly the pages the pagemaps call present.
    expect(summary.processes[1]!.memoryPages * PAGE_SIZE_BYTES).toBeGreaterThan(HEAP_MIB << 20);
    expect(summary.memoryBytes).toBe(summary.pagesFileBytes);
    expect(summary.stats?.pagesWritten).toBe(summary.memoryPages);

    const byPath = new Map(summary.files.map((f) => [f.path, f]));
    expect(byPath.get(counter)?.uses).toContain('exe');
    expect(byPath.get(counter)?.sizeBytes).toBe(statSync(counter).size);
    expect(byPath.get(FERRY_INIT)?.uses).toContain('exe');
    const libc = summary.files.find((f) => /\/libc\.so/.test(f.path));
    expect(libc?.uses).toContain('mapped');
    expect(libc?.sizeBytes).toBe(statSync(libc!.path).size);
    expect(byPath.get(data)).toMatchObject({ sizeBytes: 12, uses: ['fd'], fds: [{ pid: 2, fd: 3 }] });
    // Logs are open write-only for append: CRIU records no size for them.
    expect(byPath.get(out)?.sizeBytes).toBeUndefined();
    expect(byPath.get(out)?.fds).toEqual(expect.arrayContaining([{ pid: 1, fd: 1 }, { pid: 2, fd: 1 }]));
    expect(outputFiles(summary)).toEqual({ out: [out], err: [err] });
    // The working directory the agent started the rank in, and the root.
    expect(summary.files.filter((f) => f.uses.includes('cwd')).map((f) => f.path)).toEqual([process.cwd(), process.cwd()]);
    expect(summary.files.find((f) => f.uses.includes('root'))?.path).toBe('/');
  });

  it('finds nothing missing, then names a changed, a missing file and a missing executable with the host', async () => {
    expect(await checkRestorable(summary, HOST)).toEqual([]);
    // The logs grew since the dump: not a problem (the restore replaces them).
    appendFileSync(out, 'more\n');
    expect(await checkRestorable(summary, HOST)).toEqual([]);

    appendFileSync(data, '!');
    expect((await checkRestorable(summary, HOST)).map((p) => p.message)).toEqual([`${HOST}: ${data}: size 13 != 12 expected`]);
    // CRIU itself refuses the changed file, and restoreRank says why.
    const refused = restoreRank({ criu, imagesDir: images, logOut: out, logErr: err, workDir: join(dir, 'r1') });
    await expect(refused).rejects.toThrow(/has bad size 13 \(expect 12\)/);
    await expect(refused).rejects.toMatchObject({ code: ErrorCode.CRIU_FAILED });
    truncateSync(data, 12);

    renameSync(data, `${data}.away`);
    renameSync(counter, `${counter}.away`);
    try {
      const problems = await checkRestorable(summary, HOST);
      expect(problems.map((p) => p.message).sort()).toEqual([`${HOST}: ${counter}: missing`, `${HOST}: ${data}: missing`].sort());
      expect(problems.every((p) => p.kind === 'missing' && p.host === HOST)).toBe(true);
      await expect(assertRestorable(summary, HOST)).rejects.toMatchObject({ code: ErrorCode.RESTORE_PRECHECK_FAILED });
    } finally {
      renameSync(data + '.away', data);
      renameSync(`${counter}.away`, counter);
    }
    await assertRestorable(summary, HOST);
  }, TEST_TIMEOUT_MS);

  it('restores after all; killing ferry-restore takes the restored rank with it', async () => {
    const logOut = join(dir, 'logs-2', 'out');
    const r = await restoreRank({ criu, imagesDir: images, logOut, logErr: join(dir, 'logs-2', 'err'), workDir: join(dir, 'r2') });
    fx.track(r.initPid);
    fx.trackChild(r.child);
    await waitFor('the restored counter to write', () => logLines(logOut).length >= 3);
    // As with `unshare --kill-child`: the restored init keeps its
    // parent-death signal, and ferry-restore is its parent.
    r.child.kill('SIGKILL');
    await exited(r.child);
    await waitFor('the restored rank to die with ferry-restore', () => !alive(r.initPid));
  }, TEST_TIMEOUT_MS);

  it('names the image file that is missing or unreadable', async () => {
    const copy = (name: string) => {
      const to = fx.tmp(`ferry-criu-img-${name}-`);
      cpSync(images, to, { recursive: true });
      return to;
    };
    await expect(readImages(join(dir, 'no-such-images'))).rejects.toThrow(/no-such-images\/inventory\.img is missing/);
    const noCore = copy('core');
    rmSync(join(noCore, 'core-2.img'));
    await expect(readImages(noCore)).rejects.toThrow(/core-2\.img is missing/);
    const noPages = copy('pages');
    for (const f of readdirSync(noPages)) if (/^pages-/.test(f)) rmSync(join(noPages, f));
    await expect(readImages(noPages)).rejects.toThrow(/pages-\d+\.img named by pagemap-1\.img is missing/);
    const fdinfoDir = copy('fdinfo');
    const fdinfo = readdirSync(fdinfoDir).find((f) => /^fdinfo-\d+\.img$/.test(f))!;
    rmSync(join(fdinfoDir, fdinfo));
    mkdirSync(join(fdinfoDir, fdinfo));
    await expect(readImages(fdinfoDir)).rejects.toMatchObject({ code: ErrorCode.MALFORMED, message: expect.stringContaining(`${fdinfo}: EISDIR`) });
  });

  it('rejects images that are not CRIU images, naming the file', () => {
    const pstree = readFileSync(join(images, 'pstree.img'));
    expect(decodeImage(pstree, 'pstree.img', IMAGE_MAGIC.pstree, 'PstreeEntry').length).toBe(2);
    const badMagic = Buffer.from(pstree);
    badMagic[5] ^= 0xff;
    expect(() => decodeImage(badMagic, 'pstree.img', IMAGE_MAGIC.pstree, 'PstreeEntry')).toThrow(/pstree\.img: image magic/);
    const truncated = pstree.subarray(0, pstree.length - 3);
    expect(() => decodeImage(truncated, 'pstree.img', IMAGE_MAGIC.pstree, 'PstreeEntry')).toThrow(/pstree\.img: entry of \d+ bytes/);
    const error = (() => {
      try {
        decodeImage(badMagic, 'pstree.img', IMAGE_MAGIC.pstree, 'PstreeEntry');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toMatchObject({ code: ErrorCode.MALFORMED });
  });
});
