// The README's first command: Ferry's main job on this machine. It launches
// the Jacobi example on network-namespace hosts, checkpoints it and lets it
// go on, checkpoints it again and stops it, restarts it on other hosts,
// migrates a rank, and checks the final checksum against an uninterrupted run
// of the same size, printing every step with its duration.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../common/ferry-error.js';
import { findCriu } from '../criu/criu-install.js';
import { FERRY_CLI, startTestCluster, type FerryResult, type TestCluster } from '../local-cluster/local-cluster.js';
import { assertNamespaceHostsUsable } from '../netns/index.js';
import { packageRoot } from '../protocol/proto-root.js';
import { step } from './demo-steps.js';

const JACOBI_ARGS = ['512', '8000'];
const RUN_TIMEOUT_MS = 600_000;

async function main(): Promise<number> {
  const missing = await whatIsMissing();
  if (missing.length > 0) {
    process.stderr.write(`ferry demo cannot run here:\n${missing.map((m) => `  - ${m}`).join('\n')}\n`);
    return 1;
  }
  let c: TestCluster | undefined;
  try {
    c = await step('start a coordinator and 3 agents on network-namespace hosts', () => startTestCluster({ hosts: 3 }));
    const cluster = c;
    const ferry = async (args: string[]): Promise<FerryResult> => {
      const r = await cluster.ferry(args, { timeoutMs: RUN_TIMEOUT_MS });
      if (r.code !== 0) throw new Error(`ferry ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
      return r;
    };
    const bin = join(cluster.tempDir, 'bin');
    mkdirSync(bin, { recursive: true });
    const jacobi = join(bin, 'jacobi');
    await step('ferry mpicc examples/jacobi.c', async () => {
      execFileSync(process.execPath, [FERRY_CLI, 'mpicc', '-O2', '-ffp-contract=off', '-o', jacobi, join(packageRoot(), 'examples', 'jacobi.c')]);
    });
    const reference = await step(`uninterrupted run: ferry run -n 4 jacobi ${JACOBI_ARGS.join(' ')} on host1,host2`, () =>
      ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'reference', jacobi, ...JACOBI_ARGS]),
    );
    const expected = checksumLine(reference.stdout);
    say(expected);

    const run = cluster.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'demo', jacobi, ...JACOBI_ARGS], { timeoutMs: RUN_TIMEOUT_MS });
    await step('launch the same job again (job "demo")', () =>
      cluster.waitFor(async () => {
        const r = await cluster.ferry(['job', 'demo', '--json']);
        return r.code === 0 && JSON.parse(r.stdout).state === 'running';
      }, 'job demo running'),
    );
    await sleep(1_000);
    say((await step('ferry checkpoint demo (checkpoint and continue)', () => ferry(['checkpoint', 'demo']))).stdout);
    await sleep(1_000);
    say((await step('ferry checkpoint demo --stop', () => ferry(['checkpoint', 'demo', '--stop']))).stdout);
    await run;
    say((await step('ferry epochs demo', () => ferry(['epochs', 'demo']))).stdout);
    say((await step('ferry restart demo --hosts host2,host3 (on other hosts)', () => ferry(['restart', 'demo', '--hosts', 'host2,host3']))).stdout);
    await sleep(1_000);
    say((await step('ferry migrate demo --rank 1 --to host1', () => ferry(['migrate', 'demo', '--rank', '1', '--to', 'host1']))).stdout);
    await step('wait for the job to finish', () =>
      cluster.waitFor(async () => JSON.parse((await cluster.ferry(['job', 'demo', '--json'])).stdout).state !== 'running', 'job demo to end', RUN_TIMEOUT_MS),
    );
    say((await ferry(['job', 'demo'])).stdout);
    const got = checksumLine(rank0Output(cluster, 'demo'));
    say(`uninterrupted: ${expected}\nrestarted:     ${got}`);
    if (got !== expected) throw new Error('the restarted job did not reach the uninterrupted result');
    say((await step('ferry delete demo (its checkpoints leave every host)', () => ferry(['delete', 'demo']))).stdout);
    say('OK: checkpointed, stopped, restarted on other hosts and migrated, bit for bit the uninterrupted result');
    return 0;
  } catch (err) {
    process.stderr.write(`ferry demo: ${errorMessage(err)}\n`);
    if (c) process.stderr.write(c.logTails(15) + '\n');
    return 1;
  } finally {
    if (c) await step('stop the daemons and remove the hosts', () => c!.stop());
  }
}

/** What this machine lacks for the demo, each with what to do about it. */
async function whatIsMissing(): Promise<string[]> {
  const missing: string[] = [];
  try {
    assertNamespaceHostsUsable();
  } catch (err) {
    missing.push(`network-namespace hosts: ${errorMessage(err)}`);
  }
  const criu = await findCriu().catch(() => null);
  if (!criu) missing.push('a working CRIU: none found on PATH, in FERRY_CRIU or in the cache (npm run setup as root provisions CRIU 4.1)');
  if (!existsSync(join(packageRoot(), 'build', 'lib', 'libferrympi.a'))) missing.push('Ferry\'s MPI library: run "npm run build"');
  return missing;
}

function checksumLine(out: string): string {
  const line = out.split('\n').find((l) => /checksum=0x[0-9a-f]{16}/.test(l));
  if (!line) throw new Error(`no checksum line in the output:\n${out}`);
  return line.replace(/^\[\d+\] /, '');
}

/** Rank 0's output of a job, on whichever host it ended. */
function rank0Output(c: TestCluster, jobId: string): string {
  return c.hosts.map((h) => join(h.logsDir, jobId, 'rank-0.out')).filter(existsSync).map((f) => readFileSync(f, 'utf8')).join('');
}

function say(text: string): void {
  process.stdout.write(text.replace(/^(?=.)/gm, '    ').replace(/\n?$/, '\n'));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

main().then((code) => process.exit(code));
