// Several CRIU dumps at once of ranks that share a working directory (the
// ranks of one job), with the real CRIU: CRIU's parasite makes a fixed-name
// scratch directory (proc.crtools) in the dumped root's working directory,
// so unguarded concurrent dumps fail with "Can't create a directory (-17)";
// dumpRank staggers them per directory (a root in a directory of its own
// needs no turn). Also: a scratch directory left by an interrupted dump no
// longer breaks every later dump there.
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CriuInstall } from '../../src/criu/criu-install.js';
import { ensureCriu } from '../../src/criu/criu-provision.js';
import { CRIU_PROC_SCRATCH_NAME, dumpRank, procScratchLockDir } from '../../src/criu/criu-dump.js';
import { readImages } from '../../src/criu/criu-images.js';
import { RankFixture, logLines, waitFor } from './criu-rank-fixture.js';

const TEST_TIMEOUT_MS = 240_000;
const RANKS = 4;
const ROUNDS = 3;
const HEAP_MIB = 4;

describe('concurrent dumps of ranks in one working directory', () => {
  const fx = new RankFixture();
  let criu: CriuInstall;
  let counter: string;

  beforeAll(async () => {
    criu = await ensureCriu();
    counter = fx.build();
  }, TEST_TIMEOUT_MS);

  afterAll(() => fx.cleanup());

  it(`dumps ${RANKS} ranks at once, ${ROUNDS} times, none failing, no scratch directory left`, async () => {
    const dir = fx.tmp('ferry-criu-cc-');
    const cwd = join(dir, 'job-cwd');
    mkdirSync(cwd);
    const data = join(dir, 'input.dat');
    writeFileSync(data, 'input\n');
    const ranks = [];
    for (let r = 0; r < RANKS; r++) {
      const out = join(dir, `rank-${r}.out`);
      ranks.push({ out, ...(await fx.startRank([counter, data, '5', String(HEAP_MIB)], out, join(dir, `rank-${r}.err`), cwd)) });
    }
    for (const r of ranks) await waitFor('each counter to write', () => logLines(r.out).length >= 3);

    for (let round = 0; round < ROUNDS; round++) {
      const results = await Promise.allSettled(
        ranks.map((r, i) => dumpRank({ criu, initPid: r.initPid, imagesDir: join(dir, `images-${round}`, `rank-${i}`), leaveRunning: true })),
      );
      const failures = results.flatMap((x) => (x.status === 'rejected' ? [String(x.reason)] : []));
      expect(failures).toEqual([]);
      for (let i = 0; i < RANKS; i++) {
        const summary = await readImages(join(dir, `images-${round}`, `rank-${i}`));
        expect(summary.processes[0]?.pid).toBe(1); // the rank's ferry-init, PID 1 of its namespace
      }
      expect(readdirSync(cwd)).not.toContain(CRIU_PROC_SCRATCH_NAME);
    }
    // Left running: every counter still counts.
    const before = ranks.map((r) => logLines(r.out).length);
    for (const [i, r] of ranks.entries()) await waitFor(`rank ${i} to go on after the dumps`, () => logLines(r.out).length > before[i]!);
  }, TEST_TIMEOUT_MS);

  it.each([
    ['taking turns through the lock', undefined],
    ['in a working directory of its own, without the lock', () => true],
  ])('removes a stale scratch directory left by an interrupted dump, then dumps (%s)', async (_how, cwdIsPrivate) => {
    const dir = fx.tmp('ferry-criu-stale-');
    const cwd = join(dir, 'job-cwd');
    mkdirSync(join(cwd, CRIU_PROC_SCRATCH_NAME), { recursive: true });
    const data = join(dir, 'input.dat');
    writeFileSync(data, 'input\n');
    const out = join(dir, 'rank.out');
    const rank = await fx.startRank([counter, data, '5', String(HEAP_MIB)], out, join(dir, 'rank.err'), cwd);
    await waitFor('the counter to write', () => logLines(out).length >= 3);
    const dumped = await dumpRank({ criu, initPid: rank.initPid, imagesDir: join(dir, 'images'), leaveRunning: true, cwdIsPrivate });
    expect(dumped.totalBytes).toBeGreaterThan(HEAP_MIB * 1024 * 1024);
    expect(existsSync(join(cwd, CRIU_PROC_SCRATCH_NAME))).toBe(false);
    const st = statSync(cwd);
    expect(existsSync(join(procScratchLockDir(), `${st.dev}-${st.ino}.lock`))).toBe(!cwdIsPrivate);
  }, TEST_TIMEOUT_MS);
});
