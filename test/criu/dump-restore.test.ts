// dumpRank / restoreRank with the real CRIU and a real rank (the counter
// under ferry-init in its own PID namespace, started as the agent starts
// ranks): checkpoint-and-continue, the original killed, restores from the
// images into the grown log and into new log files, the true exit status
// through ferry-restore, signals through the restored ferry-init.
import { readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/gen/proto.js';
import { type CriuInstall } from '../../src/criu/criu-install.js';
import { ensureCriu } from '../../src/criu/criu-provision.js';
import { dumpRank } from '../../src/criu/criu-dump.js';
import { outputFiles, readImages } from '../../src/criu/criu-images.js';
import { restoreRank, restoredExit } from '../../src/criu/criu-restore.js';
import { checkRestorable } from '../../src/criu/restore-precheck.js';
import { readAppendedFiles } from '../../src/criu/written-files.js';
import {
  COUNTER_EXIT_CODE,
  FERRY_RESTORE,
  RankFixture,
  alive,
  exited,
  logLines,
  nsPids,
  parentOf,
  readText,
  waitFor,
} from './criu-rank-fixture.js';

const TEST_TIMEOUT_MS = 180_000;
const FINISH_LINES = 5;
const HEAP_MIB = 4;
const SIGTERM_STATUS = 128 + 15;

/** The values of "N" lines, and whether each follows its predecessor by one. */
function numbers(lines: string[]): number[] {
  return lines.map((l) => Number(l));
}

/** Splits a counter log into runs of consecutive values (1,2,3 | 57,58...). */
function runs(values: number[]): number[][] {
  const out: number[][] = [];
  for (const v of values) {
    const last = out.at(-1);
    if (last && v === last.at(-1)! + 1) last.push(v);
    else out.push([v]);
  }
  return out;
}

/** The last counter value completely written within the first `bytes` of a log. */
function valueAt(path: string, bytes: number): number {
  const text = readFileSync(path, 'utf8').slice(0, bytes);
  expect(text.endsWith('\n')).toBe(true); // write(2) of whole lines: the dump cannot split one
  return Number(text.trimEnd().split('\n').at(-1)!.replace(/^err /, ''));
}

describe('dump and restore of a rank', () => {
  const fx = new RankFixture();
  let criu: CriuInstall;
  let counter: string;

  beforeAll(async () => {
    criu = await ensureCriu();
    counter = fx.build();
  }, TEST_TIMEOUT_MS);

  afterAll(() => fx.cleanup());

  it('checkpoint-and-continue, then restores with the dumped state, the true exit status and SIGTERM', async () => {
    const dir = fx.tmp('ferry-criu-dr-');
    const logsA = join(dir, 'host-a-logs');
    const out = join(logsA, 'rank-0.out');
    const err = join(logsA, 'rank-0.err');
    const data = join(dir, 'input.dat');
    writeFileSync(data, 'input data\n');
    const images = join(dir, 'epoch-1', 'rank-0');

    const rank = await fx.startRank([counter, data, String(FINISH_LINES), String(HEAP_MIB)], out, err);
    await waitFor('the counter to write 20 lines', () => logLines(out).length >= 20);

    // Checkpoint and continue.
    const linesBefore = logLines(out).length;
    const dump = await dumpRank({ criu, initPid: rank.initPid, imagesDir: images, leaveRunning: true });
    const linesAfter = logLines(out).length;
    expect(dump.files.map((f) => f.name)).toEqual(expect.arrayContaining(['pstree.img', 'core-1.img', 'core-2.img', 'inventory.img']));
    expect(dump.files.map((f) => f.name)).not.toContain('dump.log');
    expect(dump.totalBytes).toBe(dump.files.reduce((n, f) => n + f.sizeBytes, 0));
    expect(dump.totalBytes).toBeGreaterThan(HEAP_MIB << 20);
    expect(dump.stats?.frozenTimeUs).toBeGreaterThan(0);
    expect(dump.stats?.pagesWritten).toBeGreaterThan((HEAP_MIB << 20) / 4096);
    expect(alive(rank.initPid)).toBe(true);

    // The dump point: the log offset CRIU recorded for fd 1 (O_APPEND: the
    // bytes written by then), so the value the restored counter goes on from.
    const summary = await readImages(images);
    const outFile = summary.files.find((f) => f.path === out)!;
    const errFile = summary.files.find((f) => f.path === err)!;
    expect(outFile.fds).toEqual(expect.arrayContaining([{ pid: 1, fd: 1 }, { pid: 2, fd: 1 }]));
    const dumped = valueAt(out, outFile.pos);
    expect(dumped).toBeGreaterThanOrEqual(linesBefore);
    expect(dumped).toBeLessThanOrEqual(linesAfter);
    expect(outputFiles(summary)).toEqual({ out: [out], err: [err] });

    // The original runs on (its log grows past the dump point), then dies
    // as on a lost host.
    await waitFor('the original to run on', () => logLines(out).length >= linesAfter + 20);
    process.kill(rank.unshare.pid!, 'SIGKILL'); // --kill-child takes the namespace with it
    await exited(rank.unshare);
    await waitFor('the original tree to be gone', () => !alive(rank.initPid));
    const linesAtKill = logLines(out).length;
    const errLinesAtKill = logLines(err).length;

    // Nothing missing for a restore here; the grown logs are not checked.
    expect(await checkRestorable(summary, 'host-a')).toEqual([]);

    // Restore 1: same host, into the grown log files.
    const r1 = await restoreRank({ criu, imagesDir: images, logOut: out, logErr: err, summary, helperPath: FERRY_RESTORE, workDir: join(dir, 'restore-1') });
    fx.track(r1.initPid);
    fx.trackChild(r1.child);
    expect(r1.remapped).toEqual([{ path: out, to: out }, { path: err, to: err }]);
    // A fresh PID namespace with ferry-init as PID 1, a child of ferry-restore.
    expect(nsPids(r1.initPid).at(-1)).toBe(1);
    expect(parentOf(r1.initPid)).toBe(r1.child.pid);
    await waitFor('the restored counter to write 20 lines', () => logLines(out).length >= linesAtKill + 20);
    // SIGUSR1 through ferry-init: the program writes FINISH_LINES more and exits 7.
    process.kill(r1.initPid, 'SIGUSR1');
    expect(await restoredExit(r1)).toBe(COUNTER_EXIT_CODE);
    expect(alive(r1.initPid)).toBe(false);

    // The log: the original's lines 1..K (it ran on after the dump until it
    // was killed), then the restored counter from the dump point on:
    // dumped+1, dumped+2, ... The lines dumped+1..K appear twice: the
    // original wrote them after the checkpoint, and a restore rolls the rank
    // back to the checkpoint while a log file is not rolled back. Nothing
    // before the dump point repeats and nothing after it is skipped.
    const outRuns = runs(numbers(logLines(out)));
    expect(outRuns.length).toBe(2);
    expect(outRuns[0]![0]).toBe(1);
    expect(outRuns[0]!.length).toBe(linesAtKill);
    expect(outRuns[0]!.at(-1)).toBeGreaterThan(dumped);
    expect(outRuns[1]![0]).toBe(dumped + 1);
    expect(outRuns[1]!.length).toBeGreaterThanOrEqual(20 + FINISH_LINES);
    // stderr the same way: every tenth value, restarting after its own dump
    // point (a freeze may fall between the stdout and the stderr write of a
    // tenth value, so that point is up to 10 below stdout's).
    const errDumped = errFile.pos === 0 ? 0 : valueAt(err, errFile.pos);
    expect(dumped - errDumped).toBeGreaterThanOrEqual(0);
    expect(dumped - errDumped).toBeLessThanOrEqual(10);
    const errValues = logLines(err).map((l) => Number(l.replace(/^err /, '')));
    expect(errValues.length).toBeGreaterThan(errLinesAtKill);
    expect(errValues).toEqual([
      ...Array.from({ length: errLinesAtKill }, (_, i) => 10 * (i + 1)),
      ...Array.from({ length: errValues.length - errLinesAtKill }, (_, i) => errDumped + 10 * (i + 1)),
    ]);

    // Restore 2: "another host", where the dumped log paths do not exist;
    // the agent's new log files get the output.
    renameSync(logsA, `${logsA}.moved`);
    const logsB = join(dir, 'host-b-logs');
    const outB = join(logsB, 'rank-0.out');
    const errB = join(logsB, 'rank-0.err');
    const r2 = await restoreRank({ criu, imagesDir: images, logOut: outB, logErr: errB, workDir: join(dir, 'restore-2') });
    fx.track(r2.initPid);
    fx.trackChild(r2.child);
    await waitFor('output in the new log', () => logLines(outB).length >= 10 && logLines(errB).length >= 1);
    expect(numbers(logLines(outB)).slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => dumped + 1 + i));
    // SIGTERM to the restored init reaches the program (default action: dies
    // of it); ferry-init reports 128+15 and ferry-restore passes it on.
    process.kill(r2.initPid, 'SIGTERM');
    expect(await restoredExit(r2)).toBe(SIGTERM_STATUS);
    expect(alive(r2.initPid)).toBe(false);
    // The old logs (moved away) got nothing from the second restore.
    expect(logLines(join(`${logsA}.moved`, 'rank-0.out')).length).toBe(outRuns[0]!.length + outRuns[1]!.length);
    expect(readText(out)).toBe('');
    // Both restores left the images as the dump wrote them (their logs and
    // stats went to their work folders).
    expect(readdirSync(images).sort()).toEqual([...dump.files.map((f) => f.name), 'dump.log'].sort());
    expect(readText(join(dir, 'restore-2', 'restore.log'))).toMatch(/will be restored from inherit fd/);
  }, TEST_TIMEOUT_MS);

  it('migrates a rank there and back: a restored rank is dumped (not leave-running) and restored again', async () => {
    const dir = fx.tmp('ferry-criu-mig-');
    const data = join(dir, 'input.dat');
    writeFileSync(data, 'input data\n');
    const logs = (host: string) => ({ out: join(dir, host, 'rank-1.out'), err: join(dir, host, 'rank-1.err') });
    const a = logs('host-a');
    const rank = await fx.startRank([counter, data, String(FINISH_LINES), String(HEAP_MIB)], a.out, a.err);
    await waitFor('the counter to run', () => logLines(a.out).length >= 10);

    // A -> B: dumped (CRIU kills the tree), restored into B's logs.
    const toB = await dumpRank({ criu, initPid: rank.initPid, imagesDir: join(dir, 'to-b'), leaveRunning: false });
    await exited(rank.unshare);
    const atB = valueAt(a.out, (await readImages(toB.imagesDir)).files.find((f) => f.path === a.out)!.pos);
    expect(logLines(a.out).length).toBe(atB); // nothing written after the dump
    // Ferry's CRIU plugin recorded, while the tree was frozen, the size of each file it had open for append
    // only: both logs (on each descriptor). The counter wrote nothing after the dump; unshare, outside the
    // tree, tells on stderr how its child ended.
    const appended = await readAppendedFiles(toB.imagesDir);
    expect(new Set(appended.map((f) => f.path))).toEqual(new Set([a.out, a.err]));
    for (const f of appended.filter((x) => x.path === a.out)) expect(f.sizeBytes).toBe(statSync(a.out).size);
    for (const f of appended.filter((x) => x.path === a.err)) expect(f.sizeBytes).toBeLessThanOrEqual(statSync(a.err).size);
    const b = logs('host-b');
    const onB = await restoreRank({ criu, imagesDir: toB.imagesDir, logOut: b.out, logErr: b.err, workDir: join(dir, 'work-b') });
    fx.track(onB.initPid);
    fx.trackChild(onB.child);
    await waitFor('the counter to run on B', () => logLines(b.out).length >= 10);

    // B -> A: the restored rank is dumped again; ferry-restore then reports
    // the SIGKILL CRIU ended the dumped tree with (the agent expects it).
    const toA = await dumpRank({ criu, initPid: onB.initPid, imagesDir: join(dir, 'to-a'), leaveRunning: false });
    expect(await restoredExit(onB)).toBe(128 + 9);
    const summaryA = await readImages(toA.imagesDir);
    expect(summaryA.processes.map((p) => [p.pid, p.comm])).toEqual([[1, 'ferry-init'], [2, 'counter']]);
    expect(outputFiles(summaryA)).toEqual({ out: [b.out], err: [b.err] });
    const atA = valueAt(b.out, summaryA.files.find((f) => f.path === b.out)!.pos);
    expect(logLines(b.out).length).toBe(atA - atB);
    const back = await restoreRank({ criu, imagesDir: toA.imagesDir, logOut: a.out, logErr: a.err, workDir: join(dir, 'work-a') });
    fx.track(back.initPid);
    fx.trackChild(back.child);
    await waitFor('the counter to run on A again', () => logLines(a.out).length >= atA + 10);
    process.kill(back.initPid, 'SIGUSR1');
    expect(await restoredExit(back)).toBe(COUNTER_EXIT_CODE);

    // Across both logs every value exactly once, in order: no checkpoint
    // was left running, so nothing repeats.
    const all = [...logLines(join(dir, 'host-a', 'rank-1.out')).slice(0, atB), ...logLines(b.out), ...logLines(a.out).slice(atB)];
    expect(numbers(all)).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
  }, TEST_TIMEOUT_MS);

  it('rejects a dump into a folder that is not empty, and a dump of a pid that is not there', async () => {
    const dir = fx.tmp('ferry-criu-bad-');
    writeFileSync(join(dir, 'old.img'), 'x');
    await expect(dumpRank({ criu, initPid: 12345, imagesDir: dir, leaveRunning: true })).rejects.toThrow(/not empty/);
    // A pid that does not exist: CRIU fails and the error carries what its log says, and names the log.
    const images = join(dir, 'images');
    let missing = 4_000_000;
    while (alive(missing)) missing--;
    const failed = dumpRank({ criu, initPid: missing, imagesDir: images, leaveRunning: true });
    await expect(failed).rejects.toThrow(new RegExp(`criu dump of pid ${missing} into ${images} failed \\(exit code 1\\): .+ \\(CRIU's log: ${images}/dump\\.log\\)`));
    await expect(failed).rejects.toMatchObject({ code: ErrorCode.CRIU_FAILED });
  }, TEST_TIMEOUT_MS);

  it("names a TCP connection a rank holds of its own when CRIU cannot dump it; the rank runs on", async () => {
    const dir = fx.tmp('ferry-criu-tcp-');
    const server = createServer((sock) => sock.resume()).listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as AddressInfo).port;
      const out = join(dir, 'rank-0.out');
      const rank = await fx.startRank(['bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${port}; echo connected; exec sleep 600`], out, join(dir, 'rank-0.err'));
      await waitFor('the rank to connect', () => readText(out).includes('connected'));
      const dumped = dumpRank({ criu, initPid: rank.initPid, imagesDir: join(dir, 'images'), leaveRunning: true });
      await expect(dumped).rejects.toThrow(/the rank's process sleep has, on fd 3, a TCP connection of its own \(from 127\.0\.0\.1:\d+\), which CRIU cannot dump: /);
      await expect(dumped).rejects.toMatchObject({ code: ErrorCode.CRIU_FAILED });
      expect(alive(rank.initPid)).toBe(true);
    } finally {
      server.close();
    }
  }, TEST_TIMEOUT_MS);
});
