// The README's first command: Ferry's main job on this machine. It launches
// the Jacobi example on network-namespace hosts, checkpoints it and lets it
// go on (its images copied to a second host), loses a host with two of its
// ranks and sees the job restarted by itself from those copies, checkpoints
// it again and stops it, restarts it on other hosts, migrates a rank, drains
// a host, and checks the final checksum, and the output files the ranks write and
// append to, against an uninterrupted run of the same size, printing every step
// with its duration. Every connection uses a cluster key.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../common/ferry-error.js';
import { buildExample, checksumLine, rank0Output } from '../local-cluster/examples.js';
import { startTestCluster, type FerryResult, type TestCluster } from '../local-cluster/local-cluster.js';
import { whatIsMissing } from '../local-cluster/prerequisites.js';
import { step } from './demo-steps.js';

// About 8 s uninterrupted on an idle 2-core machine: the job must outlast the demo's steps (a checkpoint,
// an automatic restart that rolls it back, a --stop, a restart, a migration, a drain) on a fast machine too.
// With 12,000 iterations (about 4 s) it ended before the migration on an idle machine (2026-12-06).
const JACOBI_ARGS = ['512', '24000'];
const RUN_TIMEOUT_MS = 600_000;

async function main(): Promise<number> {
  const missing = await whatIsMissing();
  if (missing.length > 0) {
    process.stderr.write(`ferry demo cannot run here:\n${missing.map((m) => `  - ${m}`).join('\n')}\n`);
    return 1;
  }
  let c: TestCluster | undefined;
  try {
    // Short heartbeats and rejoin grace, so the lost host is given up on within seconds; one replica of every
    // image; a cluster key (ferry keygen): every connection below is CURVE, open only to holders of the key.
    c = await step('start a coordinator (--image-replicas 1, a cluster key) and 3 agents on network-namespace hosts', () =>
      startTestCluster({ hosts: 3, heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1_500, hostRejoinGraceMs: 2_000, imageReplicas: 1, clusterKey: true }),
    );
    const cluster = c;
    const ferry = async (args: string[]): Promise<FerryResult> => {
      const r = await cluster.ferry(args, { timeoutMs: RUN_TIMEOUT_MS });
      if (r.code !== 0) throw new Error(`ferry ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
      return r;
    };
    const jacobi = await step('ferry mpicc examples/jacobi.c', async () => buildExample(cluster, 'jacobi'));
    // Each rank also writes a history file and appends to a log, as simulations do: a rollback must leave them as
    // an uninterrupted run does (a restart cuts back what the ranks wrote after the epoch; they write it again).
    const outputs = join(cluster.tempDir, 'outputs');
    mkdirSync(outputs, { recursive: true });
    const outputArgs = (jobId: string) => ['--history', join(outputs, `${jobId}-history`), '--log', join(outputs, `${jobId}-log`)];
    const outputFiles = (jobId: string) => ['history', 'log'].flatMap((kind) => [0, 1, 2, 3].map((r) => join(outputs, `${jobId}-${kind}.${r}`)));
    const reference = await step(`uninterrupted run: ferry run -n 4 jacobi ${JACOBI_ARGS.join(' ')} --history H --log L on host1,host2`, () =>
      ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'reference', jacobi, ...JACOBI_ARGS, ...outputArgs('reference')]),
    );
    const expected = checksumLine(reference.stdout);
    say(expected);

    const run = cluster.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'demo', '--auto-restart', '1', jacobi, ...JACOBI_ARGS, ...outputArgs('demo')], {
      timeoutMs: RUN_TIMEOUT_MS,
    });
    const job = async () => JSON.parse((await ferry(['job', 'demo', '--json'])).stdout) as { state: string; ranks: { host: string }[] };
    await step('launch the same job again (job "demo", --auto-restart 1)', () => cluster.waitFor(async () => (await job()).state === 'running', 'job demo running'));
    await sleep(1_000);
    say((await step('ferry checkpoint demo (checkpoint and continue)', () => ferry(['checkpoint', 'demo']))).stdout);
    await step("copies of the epoch's images on other hosts", () =>
      cluster.waitFor(async () => JSON.parse((await ferry(['epochs', 'demo', '--json'])).stdout)[0].replicatedImages === 4, 'replicas of epoch 1'),
    );
    say((await ferry(['epochs', 'demo'])).stdout);
    // host2 dies: its agent and every process in its network namespace, ranks 2 and 3 among them.
    await step('host2 fails (its agent and ranks 2,3 killed)', () => cluster.failHost('host2'));
    await step('the coordinator gives host2 up and restarts the job by itself from the copies', () =>
      cluster.waitFor(async () => {
        const j = await job();
        return j.state === 'running' && !j.ranks.some((r) => r.host === 'host2');
      }, 'job demo restarted without host2'),
    );
    say(
      (await ferry(['events', '--job', 'demo'])).stdout
        .split('\n')
        .filter((l) => /job\.auto-restart(ed)? /.test(l))
        .join('\n'),
    );
    await step("host2's agent comes back", () => cluster.startAgent('host2'));
    await sleep(1_000);
    say((await step('ferry checkpoint demo --stop', () => ferry(['checkpoint', 'demo', '--stop']))).stdout);
    const first = await run;
    // What the job's own ferry run, attached all along, told its user about the restart.
    say(first.stderr.split('\n').filter((l) => l.startsWith('ferry run: job demo')).join('\n'));
    say((await step('ferry epochs demo', () => ferry(['epochs', 'demo']))).stdout);
    say((await step('ferry restart demo --hosts host2,host3 (on other hosts)', () => ferry(['restart', 'demo', '--hosts', 'host2,host3']))).stdout);
    await sleep(1_000);
    say((await step('ferry migrate demo --rank 1 --to host1', () => ferry(['migrate', 'demo', '--rank', '1', '--to', 'host1']))).stdout);
    say((await step('ferry drain host3 --reason maintenance (its ranks move away; no new ones go there)', () => ferry(['drain', 'host3', '--reason', 'maintenance']))).stdout);
    say((await ferry(['hosts'])).stdout);
    await step('wait for the job to finish', () =>
      cluster.waitFor(async () => JSON.parse((await cluster.ferry(['job', 'demo', '--json'])).stdout).state !== 'running', 'job demo to end', RUN_TIMEOUT_MS),
    );
    say((await ferry(['job', 'demo'])).stdout);
    const got = checksumLine(rank0Output(cluster, 'demo'));
    say(`uninterrupted: ${expected}\nrestarted:     ${got}`);
    if (got !== expected) throw new Error('the restarted job did not reach the uninterrupted result');
    const [ours, theirs] = [outputFiles('demo'), outputFiles('reference')];
    const differ = ours.filter((f, i) => !readFileSync(f).equals(readFileSync(theirs[i]!)));
    if (differ.length > 0) throw new Error(`output files differ from the uninterrupted run's: ${differ.join(', ')}`);
    say(`the ranks' ${ours.length} history and log files: byte for byte the uninterrupted run's`);
    say((await step('ferry delete demo (its checkpoints leave every host)', () => ferry(['delete', 'demo']))).stdout);
    say('OK: checkpointed, survived a lost host, stopped, restarted on other hosts, migrated and drained, bit for bit the uninterrupted result and files');
    return 0;
  } catch (err) {
    process.stderr.write(`ferry demo: ${errorMessage(err)}\n`);
    if (c) process.stderr.write(c.logTails(15) + '\n');
    return 1;
  } finally {
    if (c) await step('stop the daemons and remove the hosts', () => c!.stop());
  }
}

function say(text: string): void {
  process.stdout.write(text.replace(/^(?=.)/gm, '    ').replace(/\n?$/, '\n'));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

main().then((code) => process.exit(code));
