// Build and run the MPI example and semantics programs under any launcher,
// so the same programs can be checked against Debian's MPICH (mpich.test.ts)
// and, later, compared run for run between Ferry and MPICH (differential test).
//
// Output convention of the programs (see test/mpi-programs/check.h): only
// rank 0 writes to stdout, only deterministic lines, the last line is `OK`;
// a failed check makes every rank exit 1. Examples end with one line
// `NAME: ... checksum=0x<16 hex digits>` that must not depend on the rank
// count or the MPI implementation.
import { execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(HERE, '..', '..');
export const MPI_PROGRAMS_DIR = join(REPO_ROOT, 'test', 'mpi-programs');
export const EXAMPLES_DIR = join(REPO_ROOT, 'examples');
export const MPICH_MPICC = '/usr/bin/mpicc.mpich';
export const MPICH_MPIEXEC = '/usr/bin/mpiexec.mpich';

/** Default ceiling for one run; a run that exceeds it counts as a hang. */
export const RUN_TIMEOUT_MS = 600_000;
/** Most ranks any semantics program is specified for. */
export const MAX_RANKS = 8;

/** What a correct run of a program looks like, from its `expect:` header. */
export type Expectation =
  | { kind: 'ok' } // last stdout line `OK`, exit status 0
  | { kind: 'exit'; code: number } // the launcher exits with exactly this status (MPI_Abort)
  | { kind: 'fail' }; // the launcher exits non-zero (a rank died)

export interface ProgramSpec {
  name: string;
  source: string;
  minRanks: number;
  maxRanks: number;
  expect: Expectation;
}

/**
 * The semantics suite: every *.c in test/mpi-programs, with the rank range of
 * its `/* ranks: A-B *\/` header (default 1-8) and its `/* expect: ... *\/`
 * header (`exit N`, `fail`; default OK).
 */
export function readProgramManifest(dir: string = MPI_PROGRAMS_DIR): ProgramSpec[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.c'))
    .sort()
    .map((file) => {
      const source = join(dir, file);
      const head = readFileSync(source, 'utf8').slice(0, 2000);
      const ranks = /\/\*\s*ranks:\s*(\d+)\s*-\s*(\d+)\s*\*\//.exec(head);
      const expectText = /\/\*\s*expect:\s*([^*]+?)\s*\*\//.exec(head)?.[1];
      let expect: Expectation = { kind: 'ok' };
      if (expectText !== undefined) {
        const exit = /^exit\s+(\d+)$/.exec(expectText);
        if (exit) expect = { kind: 'exit', code: Number(exit[1]) };
        else if (expectText === 'fail') expect = { kind: 'fail' };
        else throw new Error(`${file}: unknown expect header '${expectText}'`);
      }
      return {
        name: file.slice(0, -2),
        source,
        minRanks: ranks ? Number(ranks[1]) : 1,
        maxRanks: ranks ? Number(ranks[2]) : MAX_RANKS,
        expect,
      };
    });
}

/** The rank counts of `wanted` that a program supports. */
export function rankCountsFor(spec: ProgramSpec, wanted: number[]): number[] {
  return wanted.filter((n) => n >= spec.minRanks && n <= spec.maxRanks);
}

/** How to start `argv` on `ranks` ranks: the command line and extra environment. */
export interface LaunchCommand {
  command: string;
  args: string[];
  env?: Record<string, string>;
}
export type Launcher = (ranks: number, argv: string[]) => LaunchCommand;

/** Debian's MPICH through Hydra; `tcpOnly` takes UCX off shared memory (FACTS.md). */
export function mpichLauncher(opts: { tcpOnly?: boolean } = {}): Launcher {
  const env: Record<string, string> = opts.tcpOnly ? { UCX_TLS: 'tcp,self' } : {};
  return (ranks, argv) => ({
    command: MPICH_MPIEXEC,
    args: ['-launcher', 'fork', '-n', String(ranks), ...argv],
    env,
  });
}

/** Ferry: `ferry run -n N ./prog args` (bin/ferry of this checkout by default). */
export function ferryLauncher(ferryBin: string = join(REPO_ROOT, 'bin', 'ferry'), extraArgs: string[] = []): Launcher {
  return (ranks, argv) => ({ command: ferryBin, args: ['run', '-n', String(ranks), ...extraArgs, ...argv] });
}

export interface RunResult {
  stdout: string;
  stderr: string;
  /** Exit status of the launcher; null when it was killed by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The run exceeded its timeout and was killed (a hang). */
  timedOut: boolean;
}

/**
 * Run a program under a launcher and collect its output. The launcher runs in
 * its own process group, which is killed on timeout so no rank outlives the
 * call.
 */
export function runProgram(opts: {
  launcher: Launcher;
  ranks: number;
  argv: string[];
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
}): Promise<RunResult> {
  const launch = opts.launcher(opts.ranks, opts.argv);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(launch.command, launch.args, {
      cwd: opts.cwd,
      env: { ...process.env, ...launch.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group is already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, opts.timeoutMs ?? RUN_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      killGroup(); // stragglers of a launcher that exited first
      resolvePromise({ stdout, stderr, exitCode, signal, timedOut });
    });
  });
}

// Debian's MPICH sometimes fails inside MPI_Init on this machine: UCX finds no device for a
// transport ("init_worker No such device"; about one CI run in ten hits it somewhere in the
// reference runs). That is the reference's environment, not the program under test: such a run is
// reported and tried again, up to MPICH_INIT_ATTEMPTS times. Any other outcome counts as it is.
const UCX_INIT_FAILED = /ucx function returned with failed status/;
export const MPICH_INIT_ATTEMPTS = 3;

/** True when an MPICH run died in MPI_Init because UCX found no usable device. */
export function mpichInitFailed(r: RunResult): boolean {
  return r.exitCode !== 0 && !r.timedOut && UCX_INIT_FAILED.test(r.stderr);
}

/** runProgram for a run under Debian's MPICH: a run that UCX failed to initialise is tried again. */
export async function runMpichProgram(opts: Parameters<typeof runProgram>[0]): Promise<RunResult> {
  for (let attempt = 1; ; attempt++) {
    const r = await runProgram(opts);
    if (!mpichInitFailed(r) || attempt === MPICH_INIT_ATTEMPTS) return r;
    console.warn(`MPICH failed in MPI_Init (UCX found no device); attempt ${attempt + 1} of ${MPICH_INIT_ATTEMPTS}: ${opts.argv.join(' ')}`);
  }
}

/**
 * Build a directory of MPI programs (its Makefile) with a given compiler wrapper into buildDir, two at a
 * time (the suite's machines have 2 cores; one at a time took over two minutes under the suite's load).
 */
export function buildPrograms(dir: string, mpicc: string, buildDir: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    execFile('make', ['-s', '-j2', '-C', dir, `MPICC=${mpicc}`, `BUILD_DIR=${buildDir}`], (err, stdout, stderr) => {
      if (err) reject(new Error(`make in ${dir} with ${mpicc} failed (${err.message}):\n${stdout}${stderr}`));
      else resolvePromise();
    });
  });
}

/** Why a run does not meet its program's expectation, or null when it does. */
export function expectationProblem(spec: ProgramSpec, result: RunResult): string | null {
  const where = `${spec.name}: exit ${result.exitCode} signal ${result.signal}\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`;
  if (result.timedOut) return `timed out (a hang): ${where}`;
  const lines = stdoutLines(result.stdout);
  switch (spec.expect.kind) {
    case 'ok':
      if (result.exitCode !== 0) return `expected exit 0: ${where}`;
      if (lines[lines.length - 1] !== 'OK') return `expected last line OK: ${where}`;
      return null;
    case 'exit':
      if (result.exitCode !== spec.expect.code) return `expected exit ${spec.expect.code}: ${where}`;
      return null;
    case 'fail':
      if (result.exitCode === 0 || (result.exitCode === null && result.signal === null))
        return `expected a failed job: ${where}`;
      return null;
  }
}

/** Non-empty stdout lines, trailing whitespace trimmed. */
export function stdoutLines(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0);
}

/** The final `NAME: ... checksum=0x...` line of an example run, or null. */
export function checksumLine(stdout: string, name: string): string | null {
  const lines = stdoutLines(stdout);
  const last = lines[lines.length - 1];
  if (last === undefined) return null;
  return new RegExp(`^${name}: .* checksum=0x[0-9a-f]{16}$`).test(last) ? last : null;
}

/** Small runs of each example (arguments) that finish in well under a second per rank count. */
export const EXAMPLE_QUICK_RUNS: { name: string; args: string[] }[] = [
  { name: 'ring', args: ['200', '64'] },
  { name: 'jacobi', args: ['48', '60'] },
  { name: 'sort', args: ['20000', '2'] },
];
