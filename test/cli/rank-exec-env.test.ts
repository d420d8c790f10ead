// What `ferry rank-exec` reads from its launcher's environment: the rank and
// size (srun, mpiexec, Open MPI, simulated here by setting their variables),
// the key every rank of a launch shares, and the environment the rank gets.
import { describe, expect, it } from 'vitest';
import { launchKey, launcherRank, processStartTime, rankEnvironment } from '../../src/cli/launcher-env.js';
import { rankExit, rankStatus } from '../../src/cli/rank-exec-command.js';
import { JobState, type JobInfo } from '../../src/gen/proto.js';

const ctx = { host: 'node7', parentPid: 4242, parentStartTime: () => '777' };

describe('launcher rank', () => {
  it('reads srun, mpiexec and Open MPI variables', () => {
    expect(launcherRank({ SLURM_PROCID: '3', SLURM_NTASKS: '8' })).toEqual({ rank: 3, size: 8, launcher: 'srun (SLURM_PROCID/SLURM_NTASKS)' });
    expect(launcherRank({ PMI_RANK: '0', PMI_SIZE: '1' })).toEqual({ rank: 0, size: 1, launcher: 'mpiexec (PMI_RANK/PMI_SIZE)' });
    expect(launcherRank({ OMPI_COMM_WORLD_RANK: '5', OMPI_COMM_WORLD_SIZE: '6' }).rank).toBe(5);
    // srun --mpi=pmi2 sets both families: they agree.
    expect(launcherRank({ PMI_RANK: '2', PMI_SIZE: '4', SLURM_PROCID: '2', SLURM_NTASKS: '4' })).toMatchObject({ rank: 2, size: 4 });
  });

  it.each([
    [{}, /no launcher rank in the environment \(none of PMI_RANK\/PMI_SIZE, SLURM_PROCID\/SLURM_NTASKS, OMPI_COMM_WORLD_RANK\/OMPI_COMM_WORLD_SIZE is set\)/],
    [{ PMI_RANK: '1' }, /mpiexec variables are incomplete: PMI_SIZE is not set but PMI_RANK is/],
    [{ SLURM_NTASKS: '4' }, /srun variables are incomplete: SLURM_PROCID is not set but SLURM_NTASKS is/],
    [{ PMI_RANK: '1', PMI_SIZE: '4', SLURM_PROCID: '2', SLURM_NTASKS: '4' }, /disagree: mpiexec \(PMI_RANK\/PMI_SIZE\) say rank 1 of 4, srun \(SLURM_PROCID\/SLURM_NTASKS\) say rank 2 of 4/],
    [{ PMI_RANK: '4', PMI_SIZE: '4' }, /PMI_RANK=4 is not below PMI_SIZE=4/],
    [{ SLURM_PROCID: 'x', SLURM_NTASKS: '4' }, /SLURM_PROCID="x" is not a number/],
    [{ OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '0' }, /OMPI_COMM_WORLD_SIZE=0 must be at least 1/],
  ])('%j: a clear error', (env, message) => {
    expect(() => launcherRank(env as Record<string, string>)).toThrow(message as RegExp);
  });
});

describe('launch key', () => {
  const slurm = { SLURM_PROCID: '1', SLURM_NTASKS: '2', SLURM_JOB_ID: '9001', SLURM_STEP_ID: '3' };

  it('is the Slurm job and step for srun, the same on every rank', () => {
    const keys = ['0', '1'].map((r) => launchKey({ ...slurm, SLURM_PROCID: r }, undefined, launcherRank({ ...slurm, SLURM_PROCID: r }), { ...ctx, parentPid: Number(r) + 1 }));
    expect(keys).toEqual(['slurm:9001.3', 'slurm:9001.3']);
    const next = { ...slurm, SLURM_STEP_ID: '4' };
    expect(launchKey(next, undefined, launcherRank(next), ctx)).toBe('slurm:9001.4');
    const noStep = { ...slurm, SLURM_STEP_ID: undefined };
    expect(() => launchKey(noStep, undefined, launcherRank(noStep), ctx)).toThrow(/srun set SLURM_PROCID but not SLURM_STEP_ID: give --job-key or FERRY_JOB_KEY/);
  });

  it('is --job-key or FERRY_JOB_KEY when given', () => {
    expect(launchKey({ ...slurm, FERRY_JOB_KEY: 'k1' }, undefined, launcherRank(slurm), ctx)).toBe('key:k1');
    expect(launchKey({ ...slurm, FERRY_JOB_KEY: 'k1' }, 'k2', launcherRank(slurm), ctx)).toBe('key:k2');
    expect(() => launchKey({ FERRY_JOB_KEY: '' }, undefined, launcherRank(slurm), ctx)).toThrow(/job key .* is empty/);
  });

  it("for Hydra: PMI_PORT, else its proxy's pid and start time when every rank is local, else an error", () => {
    const hydra = { PMI_RANK: '0', PMI_SIZE: '4', PMI_FD: '6', MPI_LOCALNRANKS: '4', MPI_LOCALRANKID: '0' };
    const lr = launcherRank(hydra);
    expect(launchKey(hydra, undefined, lr, ctx)).toBe('hydra:node7:4242:777');
    expect(launchKey({ ...hydra, PMI_PORT: 'vm:39595' }, undefined, lr, ctx)).toBe('hydra:vm:39595');
    expect(() => launchKey({ ...hydra, MPI_LOCALNRANKS: '2' }, undefined, lr, ctx)).toThrow(
      /2 of the 4 ranks run on this node, and mpiexec names no launch all nodes share: run mpiexec with -pmi-port, or .*-genv FERRY_JOB_KEY=/,
    );
    expect(launchKey({ ...hydra, MPI_LOCALNRANKS: '2', FERRY_JOB_KEY: 'shared' }, undefined, lr, ctx)).toBe('key:shared');
  });

  it("for Open MPI: its PMIx namespace", () => {
    const ompi = { OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '2', PMIX_NAMESPACE: 'prterun-vm-123@1' };
    expect(launchKey(ompi, undefined, launcherRank(ompi), ctx)).toBe('ompi:prterun-vm-123@1');
    const bare = { OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '2' };
    expect(() => launchKey(bare, undefined, launcherRank(bare), ctx)).toThrow(/Open MPI set no PMIX_NAMESPACE/);
  });

  it("reads a process's start time from /proc", () => {
    const t = processStartTime(process.pid);
    expect(t).toMatch(/^\d+$/);
    expect(t).not.toBe('0');
    expect(processStartTime(process.pid)).toBe(t);
    expect(processStartTime(0x7fffffff)).toBe('0');
  });
});

describe('rank environment', () => {
  it("is the user's, without the launcher's variables and Ferry's", () => {
    const env = rankEnvironment({
      HOME: '/root',
      OMP_NUM_THREADS: '2',
      PMI_RANK: '1',
      PMI_FD: '6',
      SLURM_JOB_ID: '9',
      SLURMD_NODENAME: 'n1',
      OMPI_COMM_WORLD_RANK: '1',
      PMIX_NAMESPACE: 'x',
      HYDI_CONTROL_FD: '7',
      MPI_LOCALNRANKS: '4',
      MPI_LOCALRANKID: '1',
      FERRY_COORDINATOR: 'tcp://198.18.0.1:1',
      UNSET: undefined,
    });
    expect(env).toEqual({ HOME: '/root', OMP_NUM_THREADS: '2' });
  });
});

describe('rank exit status', () => {
  const job = (state: JobState, detail: string, ranks: [number, number, string][]): JobInfo =>
    ({
      id: 'j1',
      state,
      detail,
      exit_code: 0,
      world_size: ranks.length,
      argv: [],
      created_ms: 0,
      ended_ms: 0,
      keep_epochs: 2,
      auto_restarts: 0,
      auto_restart_due: false,
      image_replicas: 0,
      own_image_replicas: false,
      hosts: [],
      launcher_suspended: false,
      ranks: ranks.map(([rank, exit_code, signal]) => ({ rank, exit_code, signal, state: 'exited', host: 'h', pid: 1, endpoint: '' })),
    }) as JobInfo;

  it('is the rank status, 128+N for a signal', () => {
    expect(rankStatus(0, '')).toBe(0);
    expect(rankStatus(3, '')).toBe(3);
    expect(rankStatus(0, 'SIGKILL')).toBe(137);
    expect(rankStatus(-1, 'HOST_DOWN')).toBe(1);
    expect(rankStatus(256, '')).toBe(1);
    expect(rankExit(job(JobState.JOB_SUCCEEDED, '', [[0, 0, ''], [1, 0, '']]), 1, false)).toBe(0);
    expect(rankExit(job(JobState.JOB_FAILED, 'rank 1 on h exited with status 3', [[0, 143, ''], [1, 3, '']]), 1, false)).toBe(3);
    expect(rankExit(job(JobState.JOB_FAILED, 'rank 1 on h exited with status 3', [[0, 143, ''], [1, 3, '']]), 0, false)).toBe(143);
  });
});
