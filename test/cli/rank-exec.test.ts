// `ferry rank-exec` under Debian's MPICH launcher (Hydra), inside one namespace
// host of a 2-host test cluster: the launcher sees normal ranks (their own
// output, their exit status) while Ferry runs them, even after one of them
// moved to the other host. The cluster has a key, which the launcher passes on.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FERRY_CLI, startTestCluster, type FerryResult, type TestCluster } from '../helpers/cluster.js';
import { LAUNCH_TIMEOUT_MS as RUN_TIMEOUT_MS, checksumLine, launcherTools, untagged, type Launched } from '../helpers/launcher-tools.js';

const MPIEXEC = '/usr/bin/mpiexec';
const RING = ['ring', '3000', '--progress', '1000'];
// About 15 s on 4 ranks of one host here; the migration starts after its first progress line.
const JACOBI = ['jacobi', '256', '8000', '--progress', '500'];

/** The coordinator's --launcher-lease-ms here (30 s by default): the migration and the stop below run under it too. */
const LEASE_MS = 8_000;

let c: TestCluster;
let bin: string;
const { launch, jobs, jobIds, newJob, events } = launcherTools(() => c);

/**
 * `mpiexec -launcher fork -n N ferry rank-exec ARGS...` inside host1, the coordinator's address and the
 * cluster key in the environment (which mpiexec passes on to each rank-exec, as srun does).
 */
function mpiexec(n: number, args: string[], env: NodeJS.ProcessEnv = {}, input?: string): Launched {
  const argv = c.network.command('host1', [MPIEXEC, '-launcher', 'fork', '-n', String(n), process.execPath, FERRY_CLI, 'rank-exec', ...args]);
  return launch(argv, env, input);
}

/** `ferry rank-exec ARGS...` alone inside host1 (the test plays the launcher). */
function rankExec(args: string[], env: NodeJS.ProcessEnv): Promise<FerryResult> {
  return launch(c.network.command('host1', [process.execPath, FERRY_CLI, 'rank-exec', ...args]), env).done;
}

let jacobiRun: Promise<FerryResult> | undefined;

/** An uninterrupted `ferry run` of JACOBI on host1, once. */
async function jacobiReference(): Promise<FerryResult> {
  jacobiRun ??= c.ferry(['run', '-n', '4', '--hosts', 'host1', join(bin, JACOBI[0]), ...JACOBI.slice(1)], { timeoutMs: RUN_TIMEOUT_MS });
  const reference = await jacobiRun;
  expect(reference.code, reference.stderr).toBe(0);
  return reference;
}

beforeAll(async () => {
  // Launched ranks reach the coordinator with the key; a launcher process's follow lapses after LEASE_MS.
  c = await startTestCluster({ hosts: 2, clusterKey: true, launcherLeaseMs: LEASE_MS });
  bin = join(c.tempDir, 'bin');
  mkdirSync(bin, { recursive: true });
  for (const name of ['ring', 'jacobi']) {
    execFileSync(process.execPath, [FERRY_CLI, 'mpicc', '-O2', '-ffp-contract=off', '-o', join(bin, name), `examples/${name}.c`], { stdio: 'inherit' });
  }
}, 300_000);

afterAll(async () => {
  await c?.stop();
});

describe('ferry rank-exec under mpiexec', { timeout: RUN_TIMEOUT_MS }, () => {
  it.runIf(existsSync(MPIEXEC))('runs the ring like ferry run does, every rank on the local host, output raw', async () => {
    const reference = await c.ferry(['run', '-n', '4', '--hosts', 'host1', join(bin, RING[0]), ...RING.slice(1)], { timeoutMs: RUN_TIMEOUT_MS });
    expect(reference.code, reference.stderr).toBe(0);
    const before = await jobIds();
    const r = await mpiexec(4, [join(bin, RING[0]), ...RING.slice(1)]).done;
    expect(r.code, `${r.stderr}\n${c.logTails(20)}`).toBe(0);
    expect(r.stdout).not.toMatch(/^\[\d+\]/m); // the launcher tags, not Ferry
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(untagged(reference.stdout).sort());
    expect(checksumLine(r.stdout)).toBe(checksumLine(reference.stdout));
    const job = await newJob(before);
    expect(job.state).toBe('succeeded');
    expect(job.worldSize).toBe(4);
    expect(job.argv).toEqual([join(bin, RING[0]), ...RING.slice(1)]);
    expect(job.ranks.map((x) => x.host)).toEqual(['host1', 'host1', 'host1', 'host1']);
    expect((await events(job.id)).some((e) => e.kind === 'launch.start')).toBe(true);
  });

  it.runIf(existsSync(MPIEXEC))('passes each rank its own output and exit status; mpiexec reports the failed rank', async () => {
    const before = await jobIds();
    // Rank 1 fails only once every rank has written its lines: a rank Ferry stops before its shell got to
    // the echo has nothing to pass on, and a loaded machine can start a shell that late.
    const written = join(c.tempDir, 'written');
    mkdirSync(written, { recursive: true });
    const script =
      'echo "out $FERRY_RANK"; echo "err $FERRY_RANK" >&2; touch "$WRITTEN/$FERRY_RANK"; ' +
      'if [ "$FERRY_RANK" = 1 ]; then while [ "$(ls "$WRITTEN" | wc -l)" -lt 3 ]; do sleep 0.05; done; exit 3; fi; sleep 60';
    const r = await mpiexec(3, ['/bin/sh', '-c', script], { WRITTEN: written }).done;
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(['out 0', 'out 1', 'out 2']);
    const job = await newJob(before);
    // The two ranks Ferry stopped say which rank failed, once each; rank 1 itself just exits 3.
    const said = r.stderr.split('\n').filter((l) => l.startsWith('ferry rank-exec:'));
    expect(said.sort()).toEqual([0, 2].map((n) => `ferry rank-exec: rank ${n}: job ${job.id} failed: rank 1 on host1 exited with status 3`));
    expect(r.stderr.split('\n').filter((l) => /^err \d$/.test(l)).sort()).toEqual(['err 0', 'err 1', 'err 2']);
    expect(job.state).toBe('failed');
    expect(job.ranks.map((x) => x.exitCode)).toEqual([143, 3, 143]);
  });

  it.runIf(existsSync(MPIEXEC))("gives rank 0 mpiexec's standard input with --stdin -, and nothing without it", async () => {
    const script = 'while read -r line; do echo "$FERRY_RANK: $line"; done; echo "$FERRY_RANK: end"';
    const given = await mpiexec(2, ['--stdin', '-', '/bin/sh', '-c', script], {}, 'first\nsecond\n').done;
    expect(given.code, given.stderr).toBe(0);
    expect(given.stdout.split('\n').filter(Boolean).sort()).toEqual(['0: end', '0: first', '0: second', '1: end']);
    // Hydra's pipe stays unread without --stdin -: rank 0 reads /dev/null like the others.
    const not = await mpiexec(2, ['/bin/sh', '-c', script], {}, 'first\n').done;
    expect(not.code, not.stderr).toBe(0);
    expect(not.stdout.split('\n').filter(Boolean).sort()).toEqual(['0: end', '1: end']);
  });

  it.runIf(existsSync(MPIEXEC))('passes Ctrl-C on mpiexec to the job once, however many ranks get it', async () => {
    const before = await jobIds();
    const run = mpiexec(3, ['/bin/sh', '-c', 'echo up; exec sleep 60']);
    const job = await newJob(before);
    await c.waitFor(() => run.stdout().split('\n').filter((l) => l === 'up').length === 3, 'every rank to say it is up');
    process.kill(run.pid, 'SIGINT');
    const r = await run.done;
    // (mpiexec's own status after a Ctrl-C is Hydra's choice: 130 or 0 here; the next test checks rank-exec's.)
    expect(r.code).not.toBeNull();
    const ended = (await jobs()).find((j) => j.id === job.id)!;
    expect(ended.state).toBe('cancelled');
    expect(ended.detail).toMatch(/^cancelled by its launcher, passed on by the ferry rank-exec of rank [0-2] \(SIGINT\)$/);
    expect(ended.ranks.map((x) => x.exitCode)).toEqual([130, 130, 130]);
    expect((await events(job.id)).filter((e) => e.kind === 'launch.signal')).toHaveLength(1);
  });

  it('exits 128+N when its job ends by the signal it passed on, and passes the second Ctrl-C on too', async () => {
    const key = `sigint-${process.pid}`;
    const before = await jobIds();
    // The rank ignores the first SIGINT, so a second one is needed.
    const script = 'trap "echo got INT; trap - INT" INT; echo up; while :; do sleep 0.2; done';
    const ranks = [0, 1].map((rank) =>
      launch(c.network.command('host1', [process.execPath, FERRY_CLI, 'rank-exec', '/bin/sh', '-c', script]), { PMI_RANK: String(rank), PMI_SIZE: '2', FERRY_JOB_KEY: key }),
    );
    const job = await newJob(before);
    const upLines = () => ranks.filter((x) => x.stdout().includes('up\n')).length;
    await c.waitFor(() => upLines() === 2, 'both ranks up');
    for (const x of ranks) process.kill(x.pid, 'SIGINT');
    await c.waitFor(() => ranks.every((x) => x.stdout().includes('got INT\n')), 'both ranks to get the first SIGINT');
    for (const x of ranks) process.kill(x.pid, 'SIGINT');
    const results = await Promise.all(ranks.map((x) => x.done));
    expect(results.map((x) => x.code)).toEqual([130, 130]);
    expect(results.map((x) => x.stdout)).toEqual(['up\ngot INT\n', 'up\ngot INT\n']);
    expect((await events(job.id)).filter((e) => e.kind === 'launch.signal').map((e) => e.message.replace(/ \(passed on by rank \d\)/, ''))).toEqual([
      `job ${job.id}: SIGINT from the launcher`,
      `job ${job.id}: SIGINT from the launcher`,
    ]);
  });

  it.runIf(existsSync(MPIEXEC))('follows a rank that Ferry migrated to the other host: mpiexec exits 0 with the same checksum', async () => {
    const reference = await jacobiReference();
    const before = await jobIds();
    const run = mpiexec(4, [join(bin, JACOBI[0]), ...JACOBI.slice(1)]);
    const job = await newJob(before);
    await c.waitFor(() => /progress iter=500\n/.test(run.stdout()), `job ${job.id} to report progress`, RUN_TIMEOUT_MS);
    const m = await c.ferry(['migrate', job.id, '--rank', '1', '--to', 'host2'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(m.code, `${m.stderr}\n${c.logTails(20)}`).toBe(0);
    const r = await run.done;
    expect(r.code, `${r.stderr}\n${c.logTails(20)}`).toBe(0);
    // Every progress line once, in order, from before and after the move.
    expect(r.stdout.split('\n').filter(Boolean)).toEqual(untagged(reference.stdout));
    expect(checksumLine(r.stdout)).toBe(checksumLine(reference.stdout));
    const ended = (await jobs()).find((j) => j.id === job.id)!;
    expect(ended.state).toBe('succeeded');
    expect(ended.ranks.map((x) => x.host)).toEqual(['host1', 'host2', 'host1', 'host1']);
  });

  it.runIf(existsSync(MPIEXEC))('waits through a checkpoint --stop and follows the restarted job to its end', async () => {
    const reference = await jacobiReference();
    const before = await jobIds();
    const run = mpiexec(4, [join(bin, JACOBI[0]), ...JACOBI.slice(1)]);
    const job = await newJob(before);
    await c.waitFor(() => /progress iter=500\n/.test(run.stdout()), `job ${job.id} to report progress`, RUN_TIMEOUT_MS);
    const stop = await c.ferry(['checkpoint', job.id, '--stop'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(stop.code, `${stop.stderr}\n${c.logTails(20)}`).toBe(0);
    const waiting = new RegExp(`ferry rank-exec: rank \\d: job ${job.id} stopped after a checkpoint; waiting for "ferry restart ${job.id}"`, 'g');
    await c.waitFor(() => (run.stderr().match(waiting) ?? []).length === 4, 'every rank-exec to wait for the restart');
    const restart = await c.ferry(['restart', job.id, '--hosts', 'host2'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(restart.code, `${restart.stderr}\n${c.logTails(20)}`).toBe(0);
    const r = await run.done;
    expect(r.code, `${r.stderr}\n${c.logTails(20)}`).toBe(0);
    expect(checksumLine(r.stdout)).toBe(checksumLine(reference.stdout));
    const ended = (await jobs()).find((j) => j.id === job.id)!;
    expect(ended.state).toBe('succeeded');
    expect(ended.ranks.map((x) => x.host)).toEqual(['host2', 'host2', 'host2', 'host2']);
  });
});

describe('a launcher process killed outright', { timeout: RUN_TIMEOUT_MS }, () => {
  it.runIf(existsSync(MPIEXEC))('ends the job once its follow lapses: nothing of the launch runs on after mpiexec', async () => {
    const before = await jobIds();
    const marker = `up-${process.pid}-sigkill`;
    const run = mpiexec(2, ['/bin/sh', '-c', `echo ${marker}; exec sleep 300`]);
    const job = await newJob(before);
    await c.waitFor(() => run.stdout().split('\n').filter((l) => l === marker).length === 2, 'both ranks to say they are up');
    // The rank-execs (node FERRY_CLI rank-exec /bin/sh -c SCRIPT), not mpiexec, whose command line holds theirs.
    const pattern = `^${process.execPath} \\S+ rank-exec /bin/sh -c echo ${marker}`;
    const rankExecs = execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim().split('\n').map(Number);
    expect(rankExecs).toHaveLength(2);
    process.kill(rankExecs[1]!, 'SIGKILL'); // no signal to pass on; Hydra then ends the other rank-exec its own way
    const r = await run.done;
    expect(r.code).not.toBe(0);
    const current = async () => (await jobs()).find((x) => x.id === job.id)!;
    await c.waitFor(async () => (await current()).state !== 'running', `job ${job.id} to end after its launcher lost a rank`, LEASE_MS + 30_000);
    const ended = await current();
    expect(ended.state, ended.detail).toBe('cancelled');
    expect(ended.ranks.map((x) => x.exitCode)).toEqual([143, 143]);
    // Hydra SIGKILLs the rest too (a SIGTERM would have been passed on, a cancel "by the operator").
    expect(ended.detail).toMatch(/^cancelled as its launcher lost rank [01] \(no follow from that rank's ferry rank-exec for \d+ s\) \(SIGTERM\)$/);
    expect((await events(job.id)).filter((e) => e.kind === 'launch.lost')).toHaveLength(1);
  });
});

describe('a launcher stopped without a SIGTSTP first', { timeout: RUN_TIMEOUT_MS }, () => {
  it.runIf(existsSync(MPIEXEC))('suspends the job with it once its follows lapse (SIGSTOP alone, as PBS suspends), and continues it at SIGCONT', async () => {
    const before = await jobIds();
    const marker = `tick-${process.pid}`;
    const ticks = 40;
    const script = `i=0; while [ $i -lt ${ticks} ]; do echo ${marker} $i; i=$((i+1)); sleep 0.5; done`;
    const run = mpiexec(2, ['/bin/sh', '-c', script]);
    const job = await newJob(before);
    const lines = () => run.stdout().split('\n').filter((l) => l.startsWith(marker)).length;
    await c.waitFor(() => lines() >= 4, 'both ranks to tick');
    const pattern = `^${process.execPath} \\S+ rank-exec /bin/sh -c i=0; while .* ${marker} `;
    const rankExecs = execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim().split('\n').map(Number);
    expect(rankExecs).toHaveLength(2);
    for (const pid of rankExecs) process.kill(pid, 'SIGSTOP');
    const current = async () => (await jobs()).find((x) => x.id === job.id)!;
    await c.waitFor(async () => (await current()).launcherSuspended, `job ${job.id} to be suspended with its launcher`, LEASE_MS + 30_000);
    expect((await current()).state).toBe('running');
    // Its ranks are stopped with it: no tick meanwhile.
    await new Promise((r) => setTimeout(r, 1_000));
    const during = lines();
    await new Promise((r) => setTimeout(r, 2_000));
    expect(lines()).toBe(during);
    for (const pid of rankExecs) process.kill(pid, 'SIGCONT');
    const r = await run.done;
    expect(r.code, r.stderr).toBe(0);
    expect(lines()).toBe(2 * ticks);
    const ended = await current();
    expect(ended.state, ended.detail).toBe('succeeded');
    const kinds = (await events(job.id)).map((e) => e.kind);
    expect(kinds.filter((k) => k === 'launch.lost')).toEqual([]);
    const suspend = (await events(job.id)).filter((e) => e.kind === 'launch.suspend');
    expect(suspend).toHaveLength(1);
    expect(suspend[0]!.message).toMatch(/has not renewed its follow for \d+ s; on host1: pid \d+ is stopped \(state T\): its launcher was suspended without a SIGTSTP first/);
    expect(kinds).toContain('launch.continue');
  });
});

describe('a time limit under mpiexec: --stop-on, then the next launch with the job id', { timeout: RUN_TIMEOUT_MS }, () => {
  it.runIf(existsSync(MPIEXEC))('stops the job at the warning signal, and the next launch continues it to the uninterrupted checksum', async () => {
    const reference = await jacobiReference();
    const id = `limit-${process.pid}`;
    const args = ['--job-id', id, '--stop-on', 'USR1', join(bin, JACOBI[0]), ...JACOBI.slice(1)];
    const first = mpiexec(4, args);
    await c.waitFor(() => /progress iter=500\n/.test(first.stdout()), `job ${id} to report progress`, RUN_TIMEOUT_MS);
    // What a batch system's warning does (srun --signal=USR1@300): every task, each rank-exec, gets it.
    execFileSync('pkill', ['-USR1', '-f', `rank-exec --job-id ${id} --stop-on`]);
    const stopped = await first.done;
    expect(stopped.code, `${stopped.stderr}\n${c.logTails(20)}`).not.toBe(0);
    const said = stopped.stderr.split('\n').filter((l) => l.startsWith('ferry rank-exec: rank'));
    expect(said.filter((l) => l.includes(`job ${id} stopped after checkpoint epoch 1; ferry restart ${id} continues it; so does a launch with --job-id ${id}`))).toHaveLength(4);
    expect(said.filter((l) => l.startsWith('ferry rank-exec: rank 0: SIGUSR1: checkpointing'))).toHaveLength(1);
    expect((await jobs()).find((j) => j.id === id)!.state).toBe('stopped');
    expect(stopped.stdout).not.toMatch(/checksum/);
    // The next allocation runs the same launch: the job goes on from epoch 1, not from the start.
    const second = mpiexec(4, args);
    const r = await second.done;
    expect(r.code, `${r.stderr}\n${c.logTails(20)}`).toBe(0);
    expect(checksumLine(r.stdout)).toBe(checksumLine(reference.stdout));
    expect(r.stdout).not.toMatch(/progress iter=500\n/); // those came before the epoch
    const ended = (await jobs()).find((j) => j.id === id)!;
    expect(ended.state, ended.detail).toBe('succeeded');
    expect((await events(id)).filter((e) => e.kind === 'launch.resume').map((e) => e.message)).toHaveLength(1);
  });
});

describe('ferry rank-exec errors', { timeout: 120_000 }, () => {
  it('names the launcher variables when none is set', async () => {
    const env = Object.fromEntries(Object.keys(process.env).filter((k) => /^(PMI|SLURM|OMPI)_/.test(k)).map((k) => [k, undefined]));
    const r = await rankExec(['/bin/true'], env);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/no launcher rank in the environment \(none of PMI_RANK\/PMI_SIZE, SLURM_PROCID\/SLURM_NTASKS, OMPI_COMM_WORLD_RANK\/OMPI_COMM_WORLD_SIZE is set\)/);
  });

  it('drops a launch whose ranks disagree on its size, telling every rank why', async () => {
    const key = `disagree-${process.pid}`;
    const results = await Promise.all([
      rankExec(['/bin/true'], { PMI_RANK: '0', PMI_SIZE: '2', FERRY_JOB_KEY: key }),
      rankExec(['/bin/true'], { PMI_RANK: '1', PMI_SIZE: '3', FERRY_JOB_KEY: key }),
    ]);
    for (const r of results) {
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`launch key:${key} dropped: rank \\d says the launch has \\d ranks, rank \\d said \\d`));
    }
  });

  it('drops a launch whose ranks do not all join in time, naming the missing ones', async () => {
    const r = await rankExec(['--join-timeout', '1s', '/bin/true'], { PMI_RANK: '2', PMI_SIZE: '3', FERRY_JOB_KEY: `alone-${process.pid}` });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/launch key:alone-\d+ dropped: only 1 of 3 ranks joined within 1 s \(joined: 2; missing: 0,1\) \[TIMEOUT\]$/);
  });

  it('names a program that does not exist on the host', async () => {
    const r = await rankExec(['/no/such/program'], { PMI_RANK: '0', PMI_SIZE: '1', FERRY_JOB_KEY: `missing-${process.pid}` });
    expect(r.code).toBe(127); // the job's status, as a launcher gives for a program it cannot start
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/failed: could not start every rank: host host1: program "\/no\/such\/program" not found or not executable on host host1/);
  });

  it('names a host the coordinator does not know', async () => {
    const r = await rankExec(['--host', 'nowhere', '/bin/true'], { PMI_RANK: '0', PMI_SIZE: '1', FERRY_JOB_KEY: `nowhere-${process.pid}` });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/rank 0 runs on host "nowhere", which is not known to the coordinator \(give rank-exec --host, or FERRY_HOST/);
  });
});
