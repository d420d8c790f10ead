// Reference runs: the example and semantics programs built with Debian's
// MPICH (mpicc.mpich) and run with its Hydra launcher. This proves the
// programs themselves are correct standard MPI, so the same programs can
// judge Ferry's runtime, and it pins the example checksums that any correct
// MPI must print.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EXAMPLES_DIR,
  EXAMPLE_QUICK_RUNS,
  MPICH_MPICC,
  MPI_PROGRAMS_DIR,
  REPO_ROOT,
  buildPrograms,
  checksumLine,
  expectationProblem,
  mpichLauncher,
  rankCountsFor,
  readProgramManifest,
  runMpichProgram,
} from './run-programs.js';

// Rank counts to try (each program keeps those in its `ranks:` range).
// FERRY_REF_RANKS=1,2 makes a quick pass. More ranks than the 2 cores make
// MPICH's busy-polling ranks slow, hence the generous per-test timeout.
// The default validates the programs themselves on 1, 2 and 4 ranks; Ferry's own
// runs of the suite (ferry-semantics.test.ts) go up to 8. FERRY_REF_RANKS=1,2,3,4,8 for all.
const RANK_COUNTS = (process.env.FERRY_REF_RANKS ?? '1,2,4').split(',').map(Number);
const TEST_TIMEOUT_MS = 900_000;

// Checksums of EXAMPLE_QUICK_RUNS: a property of the programs, not of MPICH;
// any MPI on any number of ranks must print exactly these lines.
const EXAMPLE_GOLDEN: Record<string, string> = {
  ring: 'ring: rounds=200 words=64 checksum=0x2e45007a2cbb1eca',
  jacobi: 'jacobi: n=48 iters=60 checksum=0x63cdc5894fe0473e',
  sort: 'sort: keys=20000 rounds=2 checksum=0x07c210adf43b9f12',
};

function installReferenceMpi(): { ok: true } | { ok: false; reason: string } {
  const r = spawnSync('bash', [join(REPO_ROOT, 'scripts', 'install-reference-mpi.sh')], { encoding: 'utf8' });
  if (r.status === 0) return { ok: true };
  if (r.status === 2) return { ok: false, reason: r.stderr.trim() };
  // Any other failure is a real error: fail loudly, never skip.
  throw new Error(`scripts/install-reference-mpi.sh failed (status ${r.status}):\n${r.stdout}${r.stderr}`);
}

const mpich = installReferenceMpi();
if (!mpich.ok) {
  console.warn(`SKIPPING reference MPI tests: ${mpich.reason}`);
}

describe.skipIf(!mpich.ok)('programs under Debian MPICH', () => {
  let buildDir = '';
  const launcher = mpichLauncher();

  beforeAll(async () => {
    buildDir = mkdtempSync(join(tmpdir(), 'ferry-ref-mpich-'));
    await buildPrograms(EXAMPLES_DIR, MPICH_MPICC, buildDir);
    await buildPrograms(MPI_PROGRAMS_DIR, MPICH_MPICC, buildDir);
  }, 300_000);
  afterAll(() => {
    if (buildDir) rmSync(buildDir, { recursive: true, force: true });
  });

  describe('examples: the same checksum on 1, 2 and 4 ranks', () => {
    for (const run of EXAMPLE_QUICK_RUNS) {
      it(`${run.name} ${run.args.join(' ')}`, { timeout: TEST_TIMEOUT_MS }, async () => {
        const lines: string[] = [];
        for (const ranks of [1, 2, 4]) {
          const r = await runMpichProgram({ launcher, ranks, argv: [join(buildDir, run.name), ...run.args] });
          expect(r.timedOut, `${run.name} on ${ranks} ranks hung`).toBe(false);
          expect(r.exitCode, r.stderr).toBe(0);
          const line = checksumLine(r.stdout, run.name);
          expect(line, `no checksum line in:\n${r.stdout}`).not.toBeNull();
          lines.push(line!);
        }
        expect(lines).toEqual([EXAMPLE_GOLDEN[run.name], EXAMPLE_GOLDEN[run.name], EXAMPLE_GOLDEN[run.name]]);
      });
    }

    it('the UCX TCP path (shared memory off) prints the same checksum', { timeout: TEST_TIMEOUT_MS }, async () => {
      // Debian's MPICH over UCX's TCP transport sometimes hangs on this machine (a CI run sat 600 s in
      // this 1 s program; the ping-pong benchmark saw it too). The reference is MPICH's output, not its
      // reliability: a run that hangs is killed after UCX_HANG_MS and tried again, up to UCX_ATTEMPTS
      // times, each hang reported. Every other outcome counts as it is.
      const UCX_HANG_MS = 60_000;
      const UCX_ATTEMPTS = 3;
      let r = await runMpichProgram({ launcher: mpichLauncher({ tcpOnly: true }), ranks: 2, argv: [join(buildDir, 'jacobi'), '48', '60'], timeoutMs: UCX_HANG_MS });
      for (let attempt = 2; r.timedOut && attempt <= UCX_ATTEMPTS; attempt++) {
        console.warn(`MPICH over UCX TCP hung (killed after ${UCX_HANG_MS} ms); attempt ${attempt} of ${UCX_ATTEMPTS}`);
        r = await runMpichProgram({ launcher: mpichLauncher({ tcpOnly: true }), ranks: 2, argv: [join(buildDir, 'jacobi'), '48', '60'], timeoutMs: UCX_HANG_MS });
      }
      expect(r.timedOut, `MPICH over UCX TCP hung ${UCX_ATTEMPTS} times`).toBe(false);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(checksumLine(r.stdout, 'jacobi')).toBe(EXAMPLE_GOLDEN.jacobi);
    });

    it('a bad argument ends the job with status 2 and a usage line', { timeout: TEST_TIMEOUT_MS }, async () => {
      const r = await runMpichProgram({ launcher, ranks: 2, argv: [join(buildDir, 'sort'), 'many'] });
      expect(r.exitCode).toBe(2);
      // Under mpiexec the usage line is sometimes lost: Hydra tears the job down
      // before it forwards the rank's stderr. Run as a singleton, the program's
      // own output is deterministic.
      const single = spawnSync(join(buildDir, 'sort'), ['many'], { encoding: 'utf8', timeout: 60_000 });
      expect(single.status).toBe(2);
      expect(single.stderr).toMatch(/usage: sort KEYS/);
    });
  });

  describe('semantics suite', () => {
    const programs = readProgramManifest();

    it('has the programs issue 3 asks for', () => {
      expect(programs.map((p) => p.name)).toEqual(
        expect.arrayContaining([
          'abort', 'collectives', 'datatypes', 'errors', 'groups', 'nonblocking', 'ordering',
          'probe', 'proc-null', 'rank-dies', 'sync-send', 'user-op', 'wildcards',
        ]),
      );
    });

    for (const spec of programs) {
      for (const ranks of rankCountsFor(spec, RANK_COUNTS)) {
        it(`${spec.name} on ${ranks} rank(s)`, { timeout: TEST_TIMEOUT_MS }, async () => {
          const r = await runMpichProgram({ launcher, ranks, argv: [join(buildDir, spec.name)] });
          expect(expectationProblem(spec, r)).toBeNull();
          if (spec.expect.kind === 'ok') {
            // Rank 0's output is the same run after run: compare with a second run
            // on one rank count, which catches scheduling-dependent lines.
            if (ranks === Math.max(spec.minRanks, 2)) {
              const again = await runMpichProgram({ launcher, ranks, argv: [join(buildDir, spec.name)] });
              expect(again.stdout).toBe(r.stdout);
            }
          } else {
            // The job really started before it ended badly. (On MPI_Abort, Hydra may tear the job down before
            // it forwards the line rank 0 wrote just before: seen once in a loaded CI run. The exit status
            // checked above comes from the program's own MPI_Abort then.)
            if (spec.name !== 'abort' || r.stdout !== '') expect(r.stdout).toMatch(new RegExp(`^${spec.name}: started on ${ranks} ranks$`, 'm'));
          }
        });
      }
    }
  });
});
