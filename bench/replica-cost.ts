// Benchmark (issue 4, image replicas): what copying a committed epoch's images
// to another host costs (coordinator --image-replicas 1), against copying the
// same files with cp and fsyncing them (sync -f), everything in this run:
// - 4 ranks of 64 MiB and of 512 MiB resident memory (bench/resident-allreduce.c)
//   on a 2-host local cluster, each host's images copied to the other;
// - the copies' time as the coordinator reports it (the FETCH rounds, event
//   checkpoint.replicated), against `cp -r` of the same 4 image directories
//   into a fresh directory on the same disk followed by `sync -f`;
// - the checkpoint itself, for scale: the copies run after it, while the job runs.
// Run: node dist/bench/run.js replica-cost   (BENCH_REPLICA_SIZES_MIB=64,512)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { findCriu } from '../src/criu/index.js';
import { FERRY_CLI, startTestCluster, type TestCluster } from '../src/local-cluster/local-cluster.js';
import { onProcessExit } from '../src/local-cluster/exit-cleanup.js';
import { packageRoot } from '../src/protocol/proto-root.js';
import { ferryCheckpoint, ok, warmPageCache, withFerryJob } from './checkpoint-cost.js';

const SIZES_MIB = (process.env.BENCH_REPLICA_SIZES_MIB ?? '64,512').split(',').map(Number);
const RANKS = 4;
const COPIED_RE = /images copied to .*, (\d+) bytes in (\d+) ms/;
const WAIT_MS = 600_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const x = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}x` : '-');
const ms = (v: number): string => `${v.toFixed(0)} ms`;

/** The coordinator's account of the copies of `epoch` of `jobId`: bytes and milliseconds. */
async function replicated(c: TestCluster, jobId: string, epoch: number): Promise<{ bytes: number; ms: number }> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const events = ok(await c.ferry(['events', '--job', jobId, '--limit', '1000']), 'ferry events');
    const line = events.split('\n').find((l) => l.includes(`checkpoint.replicated`) && l.includes(`epoch ${epoch}:`));
    const m = line && COPIED_RE.exec(line);
    if (m) return { bytes: Number(m[1]), ms: Number(m[2]) };
    const failed = events.split('\n').find((l) => l.includes('checkpoint.replicate-failed'));
    if (failed) throw new Error(`replica-cost: ${failed}`);
    if (Date.now() > deadline) throw new Error(`replica-cost: no copies of epoch ${epoch} of ${jobId} after ${WAIT_MS} ms`);
    await sleep(100);
  }
}

/** cp -r of the job's rank image directories of `epoch` (from both hosts) into a fresh directory, then sync -f: ms. */
function plainCopy(c: TestCluster, jobId: string, epoch: number, into: string): number {
  const t0 = performance.now();
  for (const h of c.hosts) execFileSync('cp', ['-r', join(h.imagesDir, jobId, String(epoch)), join(into, h.name)]);
  execFileSync('sync', ['-f', into]);
  return performance.now() - t0;
}

export async function runReplicaCostBenchmark(): Promise<void> {
  const root = packageRoot();
  if (!(await findCriu())) {
    console.log('\nreplica cost: skipped, no working CRIU on this node (`ferry doctor` says what is missing)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-replica-'));
  const unregister = onProcessExit(() => rmSync(dir, { recursive: true, force: true }));
  let cluster: TestCluster | undefined;
  try {
    const bin = join(dir, 'resident-allreduce');
    execFileSync(process.execPath, [FERRY_CLI, 'mpicc', '-O2', '-o', bin, join(root, 'bench', 'resident-allreduce.c')], { stdio: 'inherit' });
    cluster = await startTestCluster({ hosts: ['host1', 'host2'], imageReplicas: 1 });
    const c = cluster;
    console.log(`\nreplica cost: ${RANKS} ranks on 2 namespace hosts (one machine, one disk), --image-replicas 1; load average ${loadavg()[0].toFixed(1)} on ${cpus().length} cores`);
    for (const sizeMib of SIZES_MIB) {
      const jobId = `replica-${sizeMib}`;
      process.stderr.write(`replica-cost: ${RANKS} x ${sizeMib} MiB\n`);
      const { checkpoint, copies } = await withFerryJob(c, bin, dir, jobId, RANKS, sizeMib, async () => {
        warmPageCache(dir, Math.ceil(RANKS * sizeMib * 1.1) * 2 ** 20);
        const checkpoint = await ferryCheckpoint(c, jobId);
        return { checkpoint, copies: await replicated(c, jobId, 1) };
      });
      const into = join(dir, `plain-${sizeMib}`);
      execFileSync('mkdir', ['-p', into]);
      warmPageCache(dir, copies.bytes);
      const plainMs = plainCopy(c, jobId, 1, into);
      rmSync(into, { recursive: true, force: true });
      for (const h of c.hosts) rmSync(join(h.imagesDir, jobId), { recursive: true, force: true });
      console.log(
        [
          `\n${RANKS} ranks x ${sizeMib} MiB:`,
          `  ferry checkpoint: ${ms(checkpoint.totalMs)}; images ${mib(checkpoint.sizeBytes)}`,
          `  copies to the other host (FETCH, sha256 checked, fsynced): ${ms(copies.ms)} for ${mib(copies.bytes)}`,
          `  plain cp -r + sync -f of the same directories: ${ms(plainMs)}`,
          `  copies / plain cp + sync: ${x(copies.ms, plainMs)}`,
          `  copies / the checkpoint before them: ${x(copies.ms, checkpoint.totalMs)} (the ranks run meanwhile)`,
        ].join('\n'),
      );
    }
  } finally {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
    unregister();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runReplicaCostBenchmark().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
