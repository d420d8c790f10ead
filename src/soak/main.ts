// `npm run soak`: a long, seeded random run of Ferry on this machine, for
// what the tests' single scenarios cannot show. On a local cluster of three
// network-namespace hosts it runs the Jacobi, sort and lone-steps examples (4
// ranks; lone-steps computes outside MPI, which a flush does not stop) one job
// after another, and throws at each, while it runs, random operations
// (soak-operations.ts): checkpoints, periodic checkpoints, migrations, drains,
// stops and restarts from a random committed epoch on random hosts, and with
// --chaos agents and the coordinator SIGKILLed, also in the middle of a
// checkpoint or a migration, whole hosts lost, and hosts cut off the network
// for a moment or past the rejoin grace; with --chaos the jobs keep
// a copy of each image on another host and restart by themselves when they
// lose a host (--image-replicas 1 --auto-restart). Every job must end
// `succeeded` with the checksum of an uninterrupted run, and the files its ranks write (Jacobi's history and
// log, lone-steps' step files) byte for byte that run's. It prints every operation with its duration, and at the end how many
// of each ran and how long they took; the seed replays the same choices.
//
//   node dist/src/soak/main.js [--minutes 10] [--seed N] [--chaos] [--only OP,...]
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../common/ferry-error.js';
import { Random } from '../common/seeded-random.js';
import { buildExample, checksumLine, rank0Output } from '../local-cluster/examples.js';
import { startTestCluster, type TestCluster } from '../local-cluster/local-cluster.js';
import { whatIsMissing } from '../local-cluster/prerequisites.js';
import { COORDINATOR_TRACE, OPERATIONS, SoakFinding, type JobView, type Operation, type OperationContext, type SoakJob } from './soak-operations.js';

const RANKS = 4;
const RANK_IDS = [...Array(RANKS).keys()];
/** The examples the soak runs: their arguments, and the files their ranks write (OUTPUTS/JOB-*), compared with the uninterrupted run's. */
const EXAMPLES: Record<string, { args: (outputs: string, jobId: string) => string[]; files: (outputs: string, jobId: string) => string[] }> = {
  jacobi: {
    args: (outputs, jobId) => ['512', '12000', '--history', join(outputs, `${jobId}-history`), '--log', join(outputs, `${jobId}-log`)],
    files: (outputs, jobId) => ['history', 'log'].flatMap((kind) => RANK_IDS.map((r) => join(outputs, `${jobId}-${kind}.${r}`))),
  },
  sort: { args: () => ['1000000', '80'], files: () => [] },
  // About 12 s alone (600 steps of 20 ms).
  'lone-steps': { args: (outputs, jobId) => ['600', join(outputs, `${jobId}-steps`)], files: (outputs, jobId) => RANK_IDS.map((r) => join(outputs, `${jobId}-steps.${r}`)) },
};
const JOB_TIMEOUT_MS = 900_000;
/**
 * With --chaos: long enough for a killed agent started again to rejoin, short enough to lose a host in seconds.
 * A host is given up this long after it is found down (1.5 s after the kill); kill-agent starts the agent again
 * up to 2 s after the kill, and an agent took 2.0-2.6 s from its start to its registration with a job's ranks
 * computing on this 2-core machine, 4.4 s in one soak (seed 16), which 4 s of grace did not cover.
 */
const CHAOS_REJOIN_GRACE_MS = 7_000;
/** With --chaos, every job: restarted by itself after it loses a host, from copies of its images on other hosts. */
const CHAOS_JOB_OPTIONS = ['--auto-restart', '100', '--image-replicas', '1'];
/** Traced by the daemons into their logs, which a finding prints the end of: sessions and registrations. */
const DIAGNOSTIC_TRACES = ['hosts', 'agent'];

interface Options {
  minutes: number;
  seed: number;
  chaos: boolean;
  /** --only: the operations to run, by name (all by default): to hammer at one that failed. */
  only: string[];
}

function parseOptions(argv: string[]): Options {
  const o: Options = { minutes: 10, seed: Date.now() % 1_000_000, chaos: false, only: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a} wants a positive number, not ${argv[i] ?? 'nothing'}`);
      return v;
    };
    if (a === '--minutes') o.minutes = value();
    else if (a === '--seed') o.seed = Math.floor(value());
    else if (a === '--chaos') o.chaos = true;
    else if (a === '--only') o.only = (argv[++i] ?? '').split(',').filter(Boolean);
    else throw new Error(`unknown option ${a}; usage: soak [--minutes 10] [--seed N] [--chaos] [--only OP,...]`);
  }
  const unknown = o.only.filter((name) => !OPERATIONS.some((op) => op.name === name));
  if (unknown.length > 0) throw new Error(`--only: no operation ${unknown.join(', ')} (there are ${OPERATIONS.map((op) => op.name).join(', ')})`);
  if (!o.chaos && o.only.some((name) => OPERATIONS.find((op) => op.name === name)!.chaos)) throw new Error(`--only: ${o.only.join(',')} needs --chaos`);
  return o;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const elapsed = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`ferry soak: ${errorMessage(err)}\n`);
    return 2;
  }
  const missing = await whatIsMissing();
  if (missing.length > 0) {
    process.stderr.write(`ferry soak cannot run here:\n${missing.map((m) => `  - ${m}`).join('\n')}\n`);
    return 1;
  }
  const random = new Random(options.seed);
  const operations = OPERATIONS.filter((op) => (options.chaos || !op.chaos) && (options.only.length === 0 || options.only.includes(op.name)));
  log(`soak: seed ${options.seed}, ${options.minutes} min, operations: ${operations.map((op) => op.name).join(', ')}`);
  const durations = new Map<string, number[]>();
  let c: TestCluster | undefined;
  let jobs = 0;
  try {
    c = await startTestCluster({
      hosts: 3,
      heartbeatIntervalMs: 200,
      heartbeatTimeoutMs: 1_500,
      env: { FERRY_TRACE: [process.env.FERRY_TRACE, COORDINATOR_TRACE, ...DIAGNOSTIC_TRACES].filter(Boolean).join(',') },
      ...(options.chaos ? { hostRejoinGraceMs: CHAOS_REJOIN_GRACE_MS } : {}),
    });
    const cluster = c;
    const bin = new Map(Object.keys(EXAMPLES).map((name) => [name, buildExample(cluster, name)]));
    const outputs = join(cluster.tempDir, 'outputs');
    mkdirSync(outputs);
    const launch = (name: string, jobId: string, hosts: string[], jobOptions: string[] = []) =>
      cluster.ferry(['run', '-n', String(RANKS), '--hosts', hosts.join(','), '--job-id', jobId, ...jobOptions, bin.get(name)!, ...EXAMPLES[name]!.args(outputs, jobId)], {
        timeoutMs: JOB_TIMEOUT_MS,
      });
    const reference = new Map<string, string>();
    /** The uninterrupted runs' whole output, as `ferry run` wrote it. */
    const referenceOut = new Map<string, string>();
    for (const name of Object.keys(EXAMPLES)) {
      const t0 = Date.now();
      const r = await launch(name, `reference-${name}`, ['host1', 'host2']);
      if (r.code !== 0) throw new Error(`the uninterrupted ${name} run failed (exit ${r.code}):\n${r.stderr}`);
      reference.set(name, checksumLine(r.stdout));
      referenceOut.set(name, r.stdout);
      log(`uninterrupted ${name}: ${elapsed(t0)}: ${reference.get(name)}`);
    }

    const end = Date.now() + options.minutes * 60_000;
    while (Date.now() < end) {
      const name = random.pick(Object.keys(EXAMPLES));
      const id = `soak-${++jobs}`;
      const hosts = random.shuffle(cluster.hosts.map((h) => h.name)).slice(0, random.int(1, cluster.hosts.length));
      const t0 = Date.now();
      const job: SoakJob = { id, run: launch(name, id, hosts, options.chaos ? CHAOS_JOB_OPTIONS : []), restarted: false };
      const view = async (): Promise<JobView> => {
        const r = await cluster.ferry(['job', id, '--json']);
        if (r.code !== 0) throw new Error(`ferry job ${id} failed: ${r.stderr.trim()}`);
        return JSON.parse(r.stdout) as JobView;
      };
      await cluster.waitFor(async () => (await view()).state === 'running', `job ${id} running`, 120_000);
      log(`${id}: ${name} on ${hosts.join(',')}`);
      const context: OperationContext = { c: cluster, random, job, view };
      let ops = 0;
      while ((await view()).state === 'running') {
        await sleep(random.int(200, 2_000));
        if ((await view()).state !== 'running') break;
        const op: Operation = random.pick(operations);
        const t = Date.now();
        const what = await op.run(context);
        const ms = Date.now() - t;
        durations.set(op.name, [...(durations.get(op.name) ?? []), ms]);
        log(`${id}: #${++ops} ${op.name} (${ms} ms): ${what}`);
      }
      // (what its `ferry run` wrote: every line of the uninterrupted run's, in order, across whatever
      // was killed meanwhile; a line twice is no finding: a rollback after a coordinator killed before it
      // saved its output counts shows some output again, output-replay.ts)
      const followed = job.restarted ? undefined : await job.run;
      await cluster.waitFor(async () => (await view()).state !== 'running', `job ${id} to end`, JOB_TIMEOUT_MS);
      const ended = await view();
      if (ended.state !== 'succeeded') throw new SoakFinding(`job ${id} ended ${ended.state}: ${ended.detail}`);
      const got = checksumLine(rank0Output(cluster, id), `job ${id}`);
      const lost = followed ? linesLeftOut(referenceOut.get(name)!, followed.stdout) : [];
      if (lost.length > 0) throw new SoakFinding(`job ${id}: its ferry run left out ${lost.length} lines of the uninterrupted run's output, the first: "${lost[0]}"`);
      if (got !== reference.get(name)) throw new SoakFinding(`job ${id} ended with ${got}, the uninterrupted run with ${reference.get(name)}`);
      const ours = EXAMPLES[name]!.files(outputs, id);
      const theirs = EXAMPLES[name]!.files(outputs, `reference-${name}`);
      const differ = ours.filter((f, i) => !readFileSync(f).equals(readFileSync(theirs[i]!)));
      if (differ.length > 0) throw new SoakFinding(`job ${id}: its output files differ from the uninterrupted run's: ${differ.join(', ')}`);
      log(`${id}: succeeded after ${ops} operations in ${elapsed(t0)}, the uninterrupted result`);
      await cluster.ferry(['delete', id]);
    }
    report(durations, jobs);
    log(`OK: ${jobs} jobs, seed ${options.seed}`);
    return 0;
  } catch (err) {
    report(durations, jobs);
    process.stderr.write(`ferry soak: ${err instanceof SoakFinding ? 'FOUND: ' : ''}${errorMessage(err)} (seed ${options.seed})\n`);
    if (c) process.stderr.write(`${c.logTails(40)}\n`);
    return 1;
  } finally {
    if (process.env.FERRY_KEEP_CLUSTER_DIR === '1' && c) process.stderr.write(`cluster directory kept: ${c.tempDir}\n`);
    await c?.stop();
  }
}

function report(durations: Map<string, number[]>, jobs: number): void {
  log(`${jobs} jobs; operations (count, median and max ms):`);
  for (const [name, ms] of [...durations].sort()) {
    const sorted = [...ms].sort((a, b) => a - b);
    log(`  ${name.padEnd(26)} ${String(ms.length).padStart(4)} ${String(sorted[Math.floor(sorted.length / 2)]).padStart(8)} ${String(sorted.at(-1)).padStart(8)}`);
  }
}

main().then((code) => process.exit(code));

/** The lines of `reference` that `got` lacks, taken in order (`got` may have more, and some twice). */
function linesLeftOut(reference: string, got: string): string[] {
  const have = got.split('\n');
  let at = 0;
  const lost: string[] = [];
  for (const line of reference.split('\n')) {
    const i = have.indexOf(line, at);
    if (i < 0) lost.push(line);
    else at = i + 1;
  }
  return lost;
}
