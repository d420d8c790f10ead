// Ranks holding files deleted since they opened them, with the real CRIU: an
// executable rebuilt while the job ran (a new file renamed over the old one)
// and an input file unlinked after it was opened. CRIU carries both in the
// image (ghost files); the restore must not ask for them at their paths
// (where a different file may be now), must take turns when several ranks
// recreate the same ghost, and a dump must name a deleted file too large to
// carry.
import { copyFileSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CriuInstall } from '../../src/criu/criu-install.js';
import { ensureCriu } from '../../src/criu/criu-provision.js';
import { dumpRank } from '../../src/criu/criu-dump.js';
import { ghostPath, readImages, type ImageSummary } from '../../src/criu/criu-images.js';
import { restoreRank, restoredExit, type RestoredRank } from '../../src/criu/criu-restore.js';
import { checkRestorable } from '../../src/criu/restore-precheck.js';
import { COUNTER_EXIT_CODE, RankFixture, alive, exited, logLines, nsPids, waitFor } from './criu-rank-fixture.js';

const TEST_TIMEOUT_MS = 240_000;
const RANKS = 2;
const INPUT_BYTES = 3 * 1024 * 1024; // over CRIU's own ghost limit (1 MiB)
const HEAP_MIB = 4;
const FINISH_LINES = 5;
const LIMIT_BYTES = 2 * 1024 * 1024; // a small limit for the over-the-limit case (Ferry's own is CRIU_GHOST_LIMIT_BYTES)

const ghostsIn = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.ghost'));

/** The counter's pid (this namespace's view) under a rank's ferry-init. */
function counterPid(initPid: number): number {
  const children = readFileSync(`/proc/${initPid}/task/${initPid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  expect(children).toHaveLength(1);
  return children[0]!;
}

describe('ranks holding files deleted since they opened them', () => {
  const fx = new RankFixture();
  let criu: CriuInstall;
  let counter: string;

  beforeAll(async () => {
    criu = await ensureCriu();
    counter = fx.build();
  }, TEST_TIMEOUT_MS);

  afterAll(() => fx.cleanup());

  it(`restores ${RANKS} ranks at once whose executable was rebuilt and whose input was deleted, twice over`, async () => {
    const dir = fx.tmp('ferry-criu-ghost-');
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    const exe = join(bin, 'counter');
    copyFileSync(counter, exe);
    const input = join(dir, 'input.dat');
    writeFileSync(input, Buffer.alloc(INPUT_BYTES, 0x5a));
    const logs = (gen: number, r: number) => ({ out: join(dir, `gen-${gen}`, `rank-${r}.out`), err: join(dir, `gen-${gen}`, `rank-${r}.err`) });
    const started = [];
    for (let r = 0; r < RANKS; r++) {
      const l = logs(0, r);
      started.push(await fx.startRank([exe, input, String(FINISH_LINES), String(HEAP_MIB)], l.out, l.err));
    }
    for (let r = 0; r < RANKS; r++) await waitFor(`rank ${r} to count`, () => logLines(logs(0, r).out).length >= 5);

    // "make" while the job runs: a new executable renamed over the old one; the input is removed.
    writeFileSync(`${exe}.new`, Buffer.concat([readFileSync(counter), Buffer.from('rebuilt')]), { mode: 0o755 });
    renameSync(`${exe}.new`, exe);
    unlinkSync(input);

    let initPids = started.map((s) => s.initPid);
    for (let gen = 1; gen <= 2; gen++) {
      // Both ranks dumped at once (not left running), as a checkpoint --stop does.
      const images = await Promise.all(initPids.map((pid, r) => dumpRank({ criu, initPid: pid, imagesDir: join(dir, `images-${gen}`, `rank-${r}`), leaveRunning: false })));
      if (gen === 1) for (const s of started) await exited(s.unshare);
      const summaries: ImageSummary[] = await Promise.all(images.map((i) => readImages(i.imagesDir)));
      const lastValues = [];
      for (let r = 0; r < RANKS; r++) {
        const s = summaries[r]!;
        // Both deleted files are in the image; the file at the executable's path now is another one.
        // (From the second dump on, the paths are those the restore recreated them at: counter.cr_link, as
        // counter was taken, and input.dat.cr.N.ghost.)
        const ghosts = s.files.filter((f) => f.ghost);
        expect(ghosts.filter((f) => f.path.startsWith(exe) && f.uses.includes('exe'))).toHaveLength(1);
        expect(ghosts.filter((f) => f.path.startsWith(input))).toHaveLength(1);
        const ghostInput = ghosts.find((f) => f.path.startsWith(input))!;
        expect(ghostInput.sizeBytes).toBe(INPUT_BYTES);
        expect(ghostInput.ghost!.imageBytes).toBeGreaterThanOrEqual(INPUT_BYTES);
        expect(await checkRestorable(s, 'here')).toEqual([]);
        const values = logLines(logs(gen - 1, r).out);
        lastValues.push(Number(values.at(-1)));
      }
      // A ghost left by a restore killed half way (CRIU removes its own at the end) would make the next fail.
      const leftover = ghostPath(summaries[0]!.files.find((f) => f.ghost && f.path.startsWith(input))!)!;
      writeFileSync(leftover, 'left by a killed restore');

      // Both restored at once on this host: the ranks share their ghosts' paths.
      const settled = await Promise.allSettled(
        images.map((i, r) => restoreRank({ criu, imagesDir: i.imagesDir, ...{ logOut: logs(gen, r).out, logErr: logs(gen, r).err }, workDir: join(dir, `work-${gen}-${r}`) })),
      );
      // Every rank that did come back is killed at cleanup, also when the other's restore failed.
      for (const x of settled) {
        if (x.status !== 'fulfilled') continue;
        fx.track(x.value.initPid);
        fx.trackChild(x.value.child);
      }
      expect(settled.flatMap((x) => (x.status === 'rejected' ? [String(x.reason)] : []))).toEqual([]);
      const restored = settled.map((x) => (x as PromiseFulfilledResult<RestoredRank>).value);
      expect(ghostsIn(bin)).toEqual([]);
      expect(ghostsIn(dirname(input))).toEqual([]);
      for (let r = 0; r < RANKS; r++) {
        // Each rank counts on from where its dump left it, and still holds its whole (deleted) input.
        await waitFor(`restored rank ${r} to count`, () => logLines(logs(gen, r).out).length >= 3);
        expect(Number(logLines(logs(gen, r).out)[0])).toBe(lastValues[r]! + 1);
        const pid = counterPid(restored[r]!.initPid);
        const fd = summaries[r]!.files.find((f) => f.ghost && f.path.startsWith(input))!.fds[0]!.fd;
        expect(statSync(`/proc/${pid}/fd/${fd}`).size).toBe(INPUT_BYTES);
        expect(nsPids(restored[r]!.initPid).at(-1)).toBe(1);
      }
      initPids = restored.map((x) => x.initPid);
      if (gen === 2) {
        for (const pid of initPids) process.kill(pid, 'SIGUSR1');
        for (const x of restored) expect(await restoredExit(x)).toBe(COUNTER_EXIT_CODE);
      }
    }
  }, TEST_TIMEOUT_MS);

  it('fails a dump that would have to carry a deleted file over the limit, naming the file; the rank runs on', async () => {
    const dir = fx.tmp('ferry-criu-ghost-big-');
    const scratch = join(dir, 'scratch.dat');
    writeFileSync(scratch, Buffer.alloc(LIMIT_BYTES + 4096, 1));
    const out = join(dir, 'rank.out');
    const rank = await fx.startRank([counter, scratch, String(FINISH_LINES), String(HEAP_MIB)], out, join(dir, 'rank.err'));
    await waitFor('the counter to count', () => logLines(out).length >= 3);
    unlinkSync(scratch);
    const failed = await dumpRank({ criu, initPid: rank.initPid, imagesDir: join(dir, 'images'), leaveRunning: true, ghostLimitBytes: LIMIT_BYTES }).catch(
      (e: Error) => e,
    );
    expect(failed).toBeInstanceOf(Error);
    expect((failed as Error).message).toContain(
      `the rank holds ${scratch} (${LIMIT_BYTES + 4096} bytes), deleted since it was opened: a dump carries such a file in the image, up to ${LIMIT_BYTES} bytes on disk`,
    );
    const before = logLines(out).length;
    await waitFor('the counter to count on', () => logLines(out).length > before);
    expect(alive(rank.initPid)).toBe(true);
  }, TEST_TIMEOUT_MS);
});
