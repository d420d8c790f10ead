// `ferry rank-exec` under a real Slurm: Debian's slurmctld and one slurmd per
// namespace host of a 2-host test cluster (test/helpers/slurm-cluster.ts),
// `srun -N 2` spreading the rank-execs over both nodes. Slurm sees normal tasks
// (their output, their exit status, its signals reach the job) while Ferry runs
// the ranks, even after one of them moved to the other node. Needs
// scripts/install-slurm.sh (.ci/run runs it); skipped without Slurm.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FERRY_CLI, startTestCluster, type FerryResult, type TestCluster } from '../helpers/cluster.js';
import { LAUNCH_TIMEOUT_MS, checksumLine, launcherTools, untagged, type JobJson, type Launched } from '../helpers/launcher-tools.js';
import { slurmInstalled, startSlurm, type SlurmCluster } from '../helpers/slurm-cluster.js';

// About 15 s on 4 ranks here; the operations start after its first progress line.
const JACOBI = ['jacobi', '256', '8000', '--progress', '500'];

/** The coordinator's --launcher-lease-ms here (30 s by default). */
const LEASE_MS = 8_000;

let c: TestCluster;
let slurm: SlurmCluster;
let bin: string;
const { launch, jobIds, newJob, job, events } = launcherTools(() => c);

/** `srun -N 2 -n N SRUN_ARGS... ferry rank-exec ARGS...` from host1, as a user on a login node would. */
function srun(n: number, args: string[], srunArgs: string[] = [], env: NodeJS.ProcessEnv = {}): Launched {
  const argv = slurm.command('host1', ['srun', '-N', '2', '-n', String(n), '--overcommit', ...srunArgs, process.execPath, FERRY_CLI, 'rank-exec', ...args]);
  return launch(argv, { ...slurm.env, ...env });
}

/** The id of the running Slurm job named NAME (srun -J NAME). */
async function slurmJobNamed(name: string): Promise<string> {
  const id = (await slurm.run(['squeue', '-h', '-t', 'R', '-n', name, '-o', '%i'])).trim();
  expect(id, `the running Slurm job named ${name}`).toMatch(/^\d+$/);
  return id;
}

/** An srun (named NAME) of 4 ranks that say "up" and sleep, once every rank said it. */
async function sleepingLaunch(name: string): Promise<{ run: Launched; started: JobJson }> {
  const before = await jobIds();
  const run = srun(4, ['/bin/sh', '-c', `echo up; exec sleep 120 # ${name}`], ['-J', name]); // (the comment: a command line of its own)
  const started = await newJob(before);
  await c.waitFor(() => run.stdout().split('\n').filter((l) => l === 'up').length === 4, 'every rank to say it is up');
  return { run, started };
}

/** The process state (R, S, T...) of each rank's program (a `sleep`) of Ferry job JOB_ID on this machine. */
function ranksOf(jobId: string): string[] {
  const states: string[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/comm`, 'utf8').trim() !== 'sleep') continue;
      if (!readFileSync(`/proc/${name}/environ`, 'utf8').split('\0').includes(`FERRY_JOB_ID=${jobId}`)) continue;
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      states.push(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!);
    } catch {
      // gone meanwhile
    }
  }
  return states;
}

/** The job was cancelled by SIGNAL from the launcher, passed on once, every rank ended with STATUS. */
async function expectEndedBy(jobId: string, signal: string, status: number): Promise<void> {
  const ended = await job(jobId);
  expect(ended.state, ended.detail).toBe('cancelled');
  expect(ended.detail).toMatch(new RegExp(`^cancelled by its launcher, passed on by the ferry rank-exec of rank [0-3] \\(${signal}\\)$`));
  expect(ended.ranks.map((x) => [x.state, x.exitCode])).toEqual([0, 1, 2, 3].map(() => ['exited', status]));
  const signals = (await events(jobId)).filter((e) => e.kind === 'launch.signal');
  expect(signals.map((e) => e.message.replace(/ \(passed on by rank \d\)/, ''))).toEqual([`job ${jobId}: ${signal} from the launcher`]);
}

const failure = (r: FerryResult) => `${r.stderr}\n${c.logTails(20)}\n${slurm.logTails()}`;

let jacobiRun: Promise<FerryResult> | undefined;

/** An uninterrupted `ferry run` of JACOBI over both hosts, once. */
async function jacobiReference(): Promise<FerryResult> {
  jacobiRun ??= c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', join(bin, JACOBI[0]!), ...JACOBI.slice(1)], { timeoutMs: LAUNCH_TIMEOUT_MS });
  const reference = await jacobiRun;
  expect(reference.code, reference.stderr).toBe(0);
  return reference;
}

const installed = slurmInstalled();

beforeAll(async () => {
  if (!installed) return;
  // srun passes FERRY_KEY on to its tasks; a task's follow lapses after LEASE_MS (the migration runs under it too).
  c = await startTestCluster({ hosts: 2, clusterKey: true, launcherLeaseMs: LEASE_MS });
  slurm = await startSlurm(c);
  bin = join(c.tempDir, 'bin');
  mkdirSync(bin, { recursive: true });
  execFileSync(process.execPath, [FERRY_CLI, 'mpicc', '-O2', '-ffp-contract=off', '-o', join(bin, 'jacobi'), 'examples/jacobi.c'], { stdio: 'inherit' });
}, 300_000);

afterAll(async () => {
  await slurm?.stop();
  await c?.stop();
});

describe.runIf(installed)('ferry rank-exec under srun over two Slurm nodes', { timeout: LAUNCH_TIMEOUT_MS }, () => {
  it('runs each rank on the node Slurm put its task on, and follows a rank Ferry migrated to the other node to the uninterrupted checksum', async () => {
    const reference = await jacobiReference();
    const before = await jobIds();
    const name = `jacobi-${process.pid}`;
    const run = srun(4, [join(bin, JACOBI[0]!), ...JACOBI.slice(1)], ['-J', name]);
    const started = await newJob(before);
    expect(started.id).toBe(`slurm-${await slurmJobNamed(name)}.0`); // Slurm's job and step ids
    // srun's block distribution: tasks 0 and 1 on the first node, 2 and 3 on the second.
    expect(started.ranks.map((x) => x.host)).toEqual(['host1', 'host1', 'host2', 'host2']);
    await c.waitFor(() => /progress iter=500\n/.test(run.stdout()), `job ${started.id} to report progress`, LAUNCH_TIMEOUT_MS);
    const m = await c.ferry(['migrate', started.id, '--rank', '2', '--to', 'host1'], { timeoutMs: LAUNCH_TIMEOUT_MS });
    expect(m.code, failure(m)).toBe(0);
    const r = await run.done;
    expect(r.code, failure(r)).toBe(0);
    expect(r.stdout).not.toMatch(/^\[\d+\]/m); // srun would tag (-l), not Ferry
    // Every progress line once, in order, from before and after the move.
    expect(r.stdout.split('\n').filter(Boolean)).toEqual(untagged(reference.stdout));
    expect(checksumLine(r.stdout)).toBe(checksumLine(reference.stdout));
    const ended = await job(started.id);
    expect(ended.state).toBe('succeeded');
    expect(ended.worldSize).toBe(4);
    expect(ended.ranks.map((x) => x.host)).toEqual(['host1', 'host1', 'host1', 'host2']);
    expect((await events(started.id)).some((e) => e.kind === 'launch.start')).toBe(true);
  });

  it('passes a failed rank on to Slurm: srun fails, and the tasks on both nodes name the rank', async () => {
    const before = await jobIds();
    const written = join(c.tempDir, 'written-slurm');
    mkdirSync(written, { recursive: true });
    // Rank 3 (on host2) fails once every rank has written its lines.
    const script =
      'echo "out $FERRY_RANK"; touch "$WRITTEN/$FERRY_RANK"; ' +
      'if [ "$FERRY_RANK" = 3 ]; then while [ "$(ls "$WRITTEN" | wc -l)" -lt 4 ]; do sleep 0.05; done; exit 3; fi; sleep 60';
    const r = await srun(4, ['/bin/sh', '-c', script], [], { WRITTEN: written }).done;
    expect(r.code).not.toBeNull();
    expect(r.code).not.toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(['out 0', 'out 1', 'out 2', 'out 3']);
    const failed = await newJob(before);
    expect(failed.ranks.map((x) => x.host)).toEqual(['host1', 'host1', 'host2', 'host2']);
    const said = r.stderr.split('\n').filter((l) => l.startsWith('ferry rank-exec:'));
    expect(said.sort()).toEqual([0, 1, 2].map((n) => `ferry rank-exec: rank ${n}: job ${failed.id} failed: rank 3 on host2 exited with status 3`));
    expect(failed.state).toBe('failed');
    expect(failed.ranks.map((x) => x.exitCode)).toEqual([143, 143, 143, 3]);
  });

  it('ends the job on every host when Slurm cancels it (scancel)', async () => {
    const name = `cancel-${process.pid}`;
    const { run, started } = await sleepingLaunch(name);
    await slurm.run(['scancel', await slurmJobNamed(name)]);
    const r = await run.done;
    expect(r.code, failure(r)).not.toBeNull();
    // scancel's SIGTERM reaches every task; the job gets it once.
    await expectEndedBy(started.id, 'SIGTERM', 143);
  });

  it("ends the job on every host when srun's tasks are killed outright (as by the step's OOM kill), once their follows lapse", async () => {
    const name = `kill-${process.pid}`;
    const { run, started } = await sleepingLaunch(name);
    // Every rank-exec (node FERRY_CLI rank-exec ...; not srun, whose command line holds theirs) at once:
    // none can pass a signal on, and none is left for Slurm's SIGTERM to the rest of the step.
    execFileSync('pkill', ['-KILL', '-f', `^${process.execPath} \\S+ rank-exec /bin/sh -c echo up; exec sleep 120 # ${name}$`]);
    const r = await run.done;
    expect(r.code, failure(r)).not.toBe(0);
    await c.waitFor(async () => (await job(started.id)).state !== 'running', `job ${started.id} to end after its tasks were killed`, LEASE_MS + 30_000);
    const ended = await job(started.id);
    expect(ended.state, ended.detail).toBe('cancelled');
    expect(ended.detail).toMatch(/^cancelled as its launcher lost rank [0-3] \(no follow from that rank's ferry rank-exec for \d+ s\) \(SIGTERM\)$/);
    expect(ended.ranks.map((x) => [x.host, x.exitCode])).toEqual([['host1', 143], ['host1', 143], ['host2', 143], ['host2', 143]]);
    expect((await events(started.id)).filter((e) => e.kind === 'launch.signal')).toEqual([]);
  });

  it('suspends the ranks with their Slurm job and keeps it through a suspend longer than the lease; scancel after the resume ends it', async () => {
    const name = `suspend-${process.pid}`;
    const { run, started } = await sleepingLaunch(name);
    const slurmJob = await slurmJobNamed(name);
    await slurm.run(['scontrol', 'suspend', slurmJob]);
    const rankExecs = () => execFileSync('pgrep', ['-f', `^${process.execPath} \\S+ rank-exec /bin/sh -c echo up; exec sleep 120 # ${name}$`], { encoding: 'utf8' }).trim().split('\n');
    const stopped = () => rankExecs().every((pid) => /^\S+ \(.*\) T /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')));
    await c.waitFor(stopped, 'every rank-exec to be stopped by the suspend');
    // Ferry's ranks (the `sleep` each rank's shell became) are stopped too, by their ferry-init.
    const ranksStopped = () => ranksOf(started.id).every((state) => state === 'T');
    expect(ranksOf(started.id)).toHaveLength(4);
    await c.waitFor(ranksStopped, 'every rank to be stopped with its launcher');
    await new Promise((r) => setTimeout(r, LEASE_MS + 4_000));
    expect(await job(started.id)).toMatchObject({ state: 'running', launcherSuspended: true });
    expect(ranksStopped()).toBe(true);
    // The operator sees it: `ferry jobs` and `ferry job` say the job is suspended.
    const listed = (await c.ferry(['jobs'])).stdout.split('\n').find((l) => l.startsWith(`${started.id} `));
    expect(listed).toMatch(/^\S+\s+running, suspended\s/);
    expect((await c.ferry(['job', started.id])).stdout).toContain('suspended by its launcher (SIGTSTP, or found stopped): its ranks are stopped until the launcher continues it (SIGCONT)');
    const refused = await c.ferry(['checkpoint', started.id]);
    expect(refused.stderr).toContain(`job ${started.id} is suspended by its launcher (SIGTSTP, or found stopped), its ranks stopped`);
    const kinds = (await events(started.id)).map((e) => e.kind);
    expect(kinds.filter((k) => k === 'launch.suspend')).toHaveLength(1);
    await slurm.run(['scontrol', 'resume', slurmJob]);
    await c.waitFor(async () => (await events(started.id)).some((e) => e.kind === 'launch.continue'), 'the launcher to say it runs again');
    await c.waitFor(() => ranksOf(started.id).every((state) => state !== 'T'), 'every rank to run again');
    await new Promise((r) => setTimeout(r, LEASE_MS / 2));
    expect(await job(started.id)).toMatchObject({ state: 'running', launcherSuspended: false });
    await slurm.run(['scancel', slurmJob]);
    const r = await run.done;
    expect(r.code, failure(r)).not.toBeNull();
    await expectEndedBy(started.id, 'SIGTERM', 143);
  });

  it('ends the job on every host at Ctrl-C on srun (twice within a second, as srun asks)', async () => {
    const { run, started } = await sleepingLaunch(`ctrl-c-${process.pid}`);
    process.kill(run.pid, 'SIGINT'); // srun: "interrupt (one more within 1 sec to abort)"
    await new Promise((r) => setTimeout(r, 200));
    process.kill(run.pid, 'SIGINT');
    const r = await run.done;
    expect(r.code, failure(r)).not.toBeNull();
    // srun passes the Ctrl-C to every task; the job gets it once.
    await expectEndedBy(started.id, 'SIGINT', 130);
  });

  it("stops the job at Slurm's time-limit warning (--stop-on USR1), and the next srun with its id continues it to the uninterrupted checksum", async () => {
    const reference = await jacobiReference();
    const id = `slurm-limit-${process.pid}`;
    const args = ['--job-id', id, '--stop-on', 'USR1', join(bin, JACOBI[0]!), ...JACOBI.slice(1)];
    const first = srun(4, args, ['-J', id]);
    await c.waitFor(() => /progress iter=500\n/.test(first.stdout()), `job ${id} to report progress`, LAUNCH_TIMEOUT_MS);
    // What srun --signal=USR1@T does T seconds before the limit: the signal to every task.
    await slurm.run(['scancel', '--signal=USR1', await slurmJobNamed(id)]);
    const stopped = await first.done;
    expect(stopped.code, failure(stopped)).toBe(75);
    const said = stopped.stderr.split('\n').filter((l) => l.startsWith('ferry rank-exec: rank'));
    expect(said.filter((l) => l.includes(`job ${id} stopped after checkpoint epoch 1; ferry restart ${id} continues it; so does a launch with --job-id ${id}`))).toHaveLength(4);
    expect((await job(id)).state).toBe('stopped');
    expect(stopped.stdout).not.toMatch(/checksum/);
    // The next allocation: the same srun goes on from epoch 1, not from the start.
    const second = srun(4, args);
    const r = await second.done;
    expect(r.code, failure(r)).toBe(0);
    expect(checksumLine(r.stdout)).toBe(checksumLine(reference.stdout));
    expect(r.stdout).not.toMatch(/progress iter=500\n/); // those came before the epoch
    const ended = await job(id);
    expect(ended.state, ended.detail).toBe('succeeded');
    expect(ended.ranks.map((x) => x.host)).toEqual(['host1', 'host1', 'host2', 'host2']);
    expect((await events(id)).filter((e) => e.kind === 'launch.resume')).toHaveLength(1);
  });
});
