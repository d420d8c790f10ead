// runMpichProgram tries a reference run again only when Debian's MPICH died in MPI_Init because
// UCX found no device; every other outcome, failures included, is returned as it is. A stand-in
// launcher (a shell script counting its attempts in a file) plays MPICH.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MPICH_INIT_ATTEMPTS, runMpichProgram, type Launcher } from './run-programs.js';

const UCX_ABORT =
  'Abort(339332623) on node 0 (rank 0 in comm 0): Fatal error in internal_Init: Other MPI error, error stack:\n' +
  'init_worker(71)...............:  ucx function returned with failed status(ucx_init.c 71 init_worker No such device)';

describe('runMpichProgram', () => {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-run-mpich-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A launcher whose first `failures` runs end as `failure` does; later runs print "ok" and exit 0. */
  function scripted(failures: number, failure: { stderr: string; status: number }): { launcher: Launcher; runs: () => number } {
    const count = join(dir, 'count');
    writeFileSync(count, '0');
    writeFileSync(join(dir, 'stderr'), failure.stderr);
    const script = [
      `n=$(( $(cat ${count}) + 1 )); echo $n > ${count}`,
      `if [ $n -le ${failures} ]; then cat ${join(dir, 'stderr')} >&2; exit ${failure.status}; fi`,
      'echo ok',
    ].join('\n');
    return {
      launcher: () => ({ command: 'bash', args: ['-c', script] }),
      runs: () => Number(readFileSync(count, 'utf8')),
    };
  }

  it('runs again after a UCX init failure and returns the run that worked', async () => {
    const s = scripted(MPICH_INIT_ATTEMPTS - 1, { stderr: UCX_ABORT, status: 15 });
    const r = await runMpichProgram({ launcher: s.launcher, ranks: 2, argv: ['prog'] });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('ok\n');
    expect(s.runs()).toBe(MPICH_INIT_ATTEMPTS);
  });

  it(`gives up after ${MPICH_INIT_ATTEMPTS} UCX init failures and returns the last`, async () => {
    const s = scripted(MPICH_INIT_ATTEMPTS + 5, { stderr: UCX_ABORT, status: 15 });
    const r = await runMpichProgram({ launcher: s.launcher, ranks: 2, argv: ['prog'] });
    expect(r.exitCode).toBe(15);
    expect(r.stderr).toMatch(/No such device/);
    expect(s.runs()).toBe(MPICH_INIT_ATTEMPTS);
  });

  it('returns any other failure at once', async () => {
    const s = scripted(1, { stderr: 'Abort(3) on node 1: application called MPI_Abort', status: 3 });
    const r = await runMpichProgram({ launcher: s.launcher, ranks: 2, argv: ['prog'] });
    expect(r.exitCode).toBe(3);
    expect(s.runs()).toBe(1);
  });
});
