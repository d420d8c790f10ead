// An images disk that fills up during a checkpoint, with real agents, real
// CRIU and an MPI job on two namespace hosts: host2's images directory is a
// tmpfs with room for one epoch only. The second checkpoint aborts naming the
// host, the ranks and the full disk; its partial images are removed (the
// space is free again); the job runs on to its checked end; and the first
// epoch, untouched, still restores.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readdirSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestCluster } from '../helpers/cluster.js';
import { allRanksRunning, ferryJson as ferryJsonOf, startFaultCluster } from '../helpers/fault-cluster.js';

let c: TestCluster;
let stream: string;
let tmpfs = '';

beforeAll(async () => {
  ({ cluster: c, stream } = await startFaultCluster());
  // host2's images on a tmpfs (its store id copied in: restores read it).
  tmpfs = c.hosts.find((h) => h.name === 'host2')!.imagesDir;
  const storeId = readFileSync(join(tmpfs, '.ferry-store-id'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'ferry-test-images', tmpfs]);
  writeFileSync(join(tmpfs, '.ferry-store-id'), storeId);
}, 120_000);

afterAll(async () => {
  await c?.stop(); // unmounts the tmpfs with the cluster's temp dir
});

const usedBytes = () => {
  const s = statfsSync(tmpfs);
  return (s.blocks - s.bfree) * s.bsize;
};

/** The bytes a tree's files take on their disk. */
const bytesUnder = (dir: string): number => {
  let sum = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    try {
      sum += lstatSync(join(e.parentPath, e.name)).blocks * 512;
    } catch {
      // (gone since the listing)
    }
  }
  return existsSync(dir) ? sum : 0;
};

/**
 * The disk's use, less the warm dumps' (next dumps started ahead of time, whose CRIU logs
 * grow while they probe the kernel, and which the next checkpoint takes or a new one replaces).
 */
const usedByEpochs = () => {
  const warm = join(tmpfs, '.warm-dumps');
  return usedBytes() - (existsSync(warm) ? bytesUnder(warm) : 0);
};

const ferryJson = <T>(args: string[]) => ferryJsonOf<T>(c, args);

describe('a disk that fills up during a checkpoint', { timeout: 180_000 }, () => {
  it('aborts the epoch naming the host and the full disk, frees its space, keeps the job running and the previous epoch restorable', async () => {
    const stop = join(c.tempDir, 'stop');
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'full', stream, stop], { timeoutMs: 150_000 });
    await allRanksRunning(c, 'full');
    const first = await c.ferry(['checkpoint', 'full', '--json'], { timeoutMs: 60_000 });
    expect(first.code, first.stderr).toBe(0);

    // Room left on host2's disk: half a megabyte, far less than an epoch of its two ranks.
    const usedBefore = usedByEpochs();
    execFileSync('mount', ['-o', `remount,size=${usedBytes() + 512 * 1024}`, tmpfs]);
    const second = await c.ferry(['checkpoint', 'full'], { timeoutMs: 60_000 });
    expect(second.code).not.toBe(0);
    // One line that says it: which epoch, which rank on which host, a full disk, and where CRIU's log was kept.
    const failure = /epoch 2\) aborted: DUMP failed: rank ([23]): host host2: no space left on device: criu dump of pid \d+ into \S+ failed \(exit code 1\): [^\n]*?No space left on device[^\n]*? \(CRIU's log: (\S+)\)/.exec(second.stderr);
    expect(failure, second.stderr).not.toBeNull();
    expect(failure![2]).toBe(join(c.hosts.find((h) => h.name === 'host2')!.logsDir, 'full', `rank-${failure![1]}.dump-2.log`));
    // The log was kept; CRIU wrote it beside the images, so it may stop short of the error, and then the disk was asked.
    expect(readFileSync(failure![2], 'utf8').length).toBeGreaterThan(0);
    if (!/No space left on device/.test(readFileSync(failure![2], 'utf8'))) expect(second.stderr).toMatch(/\(\d+ bytes free\), and CRIU's log stops short of its error/);
    expect(second.stderr).toMatch(/The job keeps running; epoch 1 remains the last committed checkpoint\. \[CRIU_FAILED\]/);
    expect(existsSync(join(tmpfs, 'full', '2'))).toBe(false);
    // (a warm dump's log may grow between the two looks: its share is taken again until they agree)
    await c.waitFor(async () => usedByEpochs() === usedBefore, `host2's disk back to ${usedBefore} bytes used by epochs (${usedByEpochs()} now)`, 10_000).catch(() => undefined);
    expect(usedByEpochs()).toBe(usedBefore);
    expect(readdirSync(join(tmpfs, 'full', '1')).sort()).toEqual(['rank-2', 'rank-3']);
    const epochs = await ferryJson<{ epoch: number; state: string }[]>(['epochs', 'full']);
    expect(epochs.map((e) => [e.epoch, e.state])).toEqual([[1, 'committed'], [2, 'aborted']]);

    // The job resumed: it streams on and ends with every message checked.
    writeFileSync(stop, '');
    const r = await run;
    expect(r.code, `${r.stderr}\n${c.logTails(20)}`).toBe(0);
    expect(r.stdout).toMatch(/\[0\] stream ok rounds \d+ messages \d+/);

    // Epoch 1 was left as it was: it restores, and the restored job ends checked too.
    execFileSync('mount', ['-o', 'remount,size=256m', tmpfs]);
    const restart = await c.ferry(['restart', 'full', '--epoch', '1', '--hosts', 'host1,host2'], { timeoutMs: 60_000 });
    expect(restart.code, restart.stderr).toBe(0);
    await c.waitFor(async () => (await ferryJson<{ state: string }>(['job', 'full'])).state !== 'running', 'restored job full to end', 60_000);
    const end = await ferryJson<{ state: string; detail: string; ranks: { host: string }[] }>(['job', 'full']);
    expect(end.state, end.detail).toBe('succeeded');
    const rank0 = c.hosts.find((h) => h.name === end.ranks[0].host)!;
    expect(readFileSync(join(rank0.logsDir, 'full', 'rank-0.out'), 'utf8')).toMatch(/stream ok rounds \d+ messages \d+\n.*stream ok/s);
  });
});
