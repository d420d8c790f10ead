// The semantics suite (test/mpi-programs) under Ferry's runtime on a local
// cluster of 3 namespace hosts: every program built with `ferry mpicc`, run
// with `ferry run --raw` at up to 3 rank counts (the largest it allows and
// ones that span hosts), checked against the expectation in its header; and,
// differentially, rank 0's output compared line for line with the same
// program built and run with Debian's MPICH at one rank count.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FERRY_CLI, startTestCluster, type TestCluster } from '../helpers/cluster.js';
import {
  MPICH_MPICC,
  MPICH_MPIEXEC,
  MPI_PROGRAMS_DIR,
  buildPrograms,
  expectationProblem,
  mpichLauncher,
  rankCountsFor,
  readProgramManifest,
  runMpichProgram,
  type ProgramSpec,
  type RunResult,
} from './run-programs.js';

/** Rank counts to choose from; each program keeps at most 3 of those it allows. */
const RANK_COUNTS = [1, 2, 3, 4, 8];
const MAX_COUNTS_PER_PROGRAM = 3;
/** Ranks go over all three hosts, so any count of 2 or more spans hosts. */
const HOSTS = ['host1', 'host2', 'host3'];
/** One `ferry run` (or mpiexec) taking longer than this is a hang. */
const RUN_TIMEOUT_MS = 60_000;
/** After a hang: how long `ferry run` gets to cancel its job on SIGTERM before SIGKILL. */
const CANCEL_GRACE_MS = 10_000;
const TEST_TIMEOUT_MS = RUN_TIMEOUT_MS + CANCEL_GRACE_MS + 30_000;

const programs = readProgramManifest();

/**
 * The rank counts a program runs at: the largest it allows (8 spans all three
 * hosts), the smallest multi-rank count (spans two hosts; MPICH runs there too)
 * and the smallest count, or the next one, up to MAX_COUNTS_PER_PROGRAM.
 */
function ferryRankCounts(spec: ProgramSpec): number[] {
  const allowed = rankCountsFor(spec, RANK_COUNTS);
  const picked = new Set<number>([allowed[allowed.length - 1]!, differentialRankCount(spec)]);
  for (const n of allowed) if (picked.size < MAX_COUNTS_PER_PROGRAM) picked.add(n);
  return [...picked].sort((a, b) => a - b);
}

/**
 * The count at which MPICH runs and the outputs are compared: the smallest
 * that spans hosts under Ferry (MPICH's busy-polling ranks are slow when they
 * outnumber the 2 cores).
 */
function differentialRankCount(spec: ProgramSpec): number {
  return rankCountsFor(spec, RANK_COUNTS).find((n) => n >= 2)!;
}

const mpichInstalled = existsSync(MPICH_MPICC) && existsSync(MPICH_MPIEXEC);
/** The programs whose stdout is compared with MPICH's: those that end with OK. */
const differentialPrograms = programs.filter((p) => p.expect.kind === 'ok');
/** MPICH's run of each differential program at differentialRankCount. */
const mpichRuns = new Map<string, Promise<RunResult>>();

/** `make -j2` of the semantics suite with an MPI compiler wrapper into buildDir. */
let c: TestCluster;
let ferryBin = '';
let mpichBin = '';
/** Ferry's stdout per `${program}/${ranks}`, for the differential tests. */
const ferryStdout = new Map<string, string>();

/**
 * `ferry run -n N --raw --hosts ... PROGRAM` against the cluster. On a hang
 * it gets SIGTERM (which makes it cancel the job, so no rank outlives the
 * test) and, after CANCEL_GRACE_MS, SIGKILL.
 */
function ferryRun(jobId: string, ranks: number, program: string): Promise<RunResult> {
  const args = [FERRY_CLI, 'run', '--coordinator', c.coordinatorAddress, '-n', String(ranks), '--raw', '--hosts', HOSTS.join(','), '--job-id', jobId, program];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), CANCEL_GRACE_MS);
    }, RUN_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      reject(err);
    });
    child.once('close', (exitCode, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      resolvePromise({ stdout, stderr, exitCode, signal, timedOut });
    });
  });
}

interface JobJson {
  id: string;
  state: string;
  exitCode: number;
  detail: string;
  ranks: { rank: number; host: string; state: string; exitCode: number; signal: string }[];
}

async function jobJson(jobId: string): Promise<JobJson> {
  const r = await c.ferry(['job', jobId, '--json']);
  if (r.code !== 0) throw new Error(`ferry job ${jobId} --json exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as JobJson;
}

beforeAll(async () => {
  c = await startTestCluster({ hosts: HOSTS.length });
  ferryBin = join(c.tempDir, 'bin-ferry');
  mpichBin = join(c.tempDir, 'bin-mpich');
  mkdirSync(ferryBin);
  mkdirSync(mpichBin);
  await Promise.all([
    buildPrograms(MPI_PROGRAMS_DIR, `${process.execPath} ${FERRY_CLI} mpicc`, ferryBin),
    mpichInstalled ? buildPrograms(MPI_PROGRAMS_DIR, MPICH_MPICC, mpichBin) : undefined,
  ]);
  // The MPICH reference runs, one after another, overlapping the Ferry runs
  // (which mostly wait on process start-up and round trips).
  if (mpichInstalled) {
    let chain: Promise<unknown> = Promise.resolve();
    for (const spec of differentialPrograms) {
      const ranks = differentialRankCount(spec);
      const run = chain.then(() => runMpichProgram({ launcher: mpichLauncher(), ranks, argv: [join(mpichBin, spec.name)], timeoutMs: RUN_TIMEOUT_MS }));
      run.catch(() => undefined); // reported by the differential test that awaits it
      mpichRuns.set(spec.name, run);
      chain = run.catch(() => undefined);
    }
  }
}, 300_000);

afterAll(async () => {
  // No MPICH run outlives the file (each ends by itself or at its timeout).
  await Promise.allSettled(mpichRuns.values());
  await c?.stop();
});

describe('semantics suite under ferry run on 3 namespace hosts', () => {
  it('chooses rank counts that include the largest allowed and one spanning hosts', () => {
    for (const spec of programs) {
      const counts = ferryRankCounts(spec);
      expect(counts.length).toBeLessThanOrEqual(MAX_COUNTS_PER_PROGRAM);
      expect(counts).toContain(Math.min(spec.maxRanks, RANK_COUNTS[RANK_COUNTS.length - 1]!));
      expect(counts.some((n) => n >= 2)).toBe(true);
    }
  });

  for (const spec of programs) {
    for (const ranks of ferryRankCounts(spec)) {
      it(`${spec.name} on ${ranks} rank(s)`, { timeout: TEST_TIMEOUT_MS }, async () => {
        const jobId = `${spec.name}-n${ranks}`;
        const r = await ferryRun(jobId, ranks, join(ferryBin, spec.name));
        ferryStdout.set(`${spec.name}/${ranks}`, r.stdout);
        expect(expectationProblem(spec, r)).toBeNull();
        const job = await jobJson(jobId);
        // Placed as asked: the ranks of a multi-rank job are on more than one host.
        expect(job.ranks.map((x) => x.rank)).toEqual([...Array(ranks).keys()]);
        if (ranks >= 2) expect(new Set(job.ranks.map((x) => x.host)).size, JSON.stringify(job.ranks)).toBeGreaterThan(1);
        if (spec.expect.kind === 'ok') {
          expect(job.state, job.detail).toBe('succeeded');
          return;
        }
        // abort / rank-dies: the job ended (no rank still running) as failed,
        // naming the last rank, which is the one that aborted or died.
        expect(r.stdout).toMatch(new RegExp(`^${spec.name}: started on ${ranks} ranks$`, 'm'));
        expect(job.state, JSON.stringify(job)).toBe('failed');
        expect(job.detail).toMatch(new RegExp(`\\brank ${ranks - 1}\\b`));
        expect(job.ranks.every((x) => x.state === 'exited'), JSON.stringify(job.ranks)).toBe(true);
        const culprit = job.ranks[ranks - 1]!;
        const code = spec.expect.kind === 'exit' ? spec.expect.code : 3; // rank-dies: _exit(3)
        expect(culprit.exitCode, JSON.stringify(culprit)).toBe(code);
        expect(r.stderr).toMatch(new RegExp(`job ${jobId} failed: .*\\brank ${ranks - 1}\\b`));
      });
    }
  }
});

describe('differential: the same stdout as Debian MPICH at the same rank count', () => {
  for (const spec of differentialPrograms) {
    const ranks = differentialRankCount(spec);
    it(`${spec.name} on ${ranks} ranks`, { timeout: TEST_TIMEOUT_MS }, async () => {
      expect(mpichInstalled, `${MPICH_MPICC} is not installed (scripts/install-reference-mpi.sh)`).toBe(true);
      const ferryOut = ferryStdout.get(`${spec.name}/${ranks}`);
      expect(ferryOut, `no Ferry run of ${spec.name} on ${ranks} ranks`).toBeDefined();
      const mpich = await mpichRuns.get(spec.name)!;
      expect(expectationProblem(spec, mpich), 'the MPICH reference run itself').toBeNull();
      expect(ferryOut).toBe(mpich.stdout);
    });
  }
});
