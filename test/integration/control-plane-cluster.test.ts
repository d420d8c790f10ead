// The control plane for real: a coordinator and three agents on namespace
// hosts over real ZeroMQ. Agents register; a killed agent is marked down and
// comes back when restarted; a killed coordinator restarts with its catalog,
// the agents re-register by themselves and a running job keeps running. A
// rank that ignores the SIGTERM of its failing job gets SIGKILL. Ctrl-C of
// ferry run, and a rank killed mid-run, end an MPI job on two hosts without a
// word from the other ranks about the peers they lost.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RANK_KILL_GRACE_MS } from '../../src/agent/rank-supervisor.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { buildExample, rank0Output } from '../../src/local-cluster/examples.js';

let cluster: TestCluster;
/** The agents' --rank-kill-grace-ms (default RANK_KILL_GRACE_MS; test/integration/agent-restart.test.ts waits that one out). */
const KILL_GRACE_MS = 2_000;

beforeAll(async () => {
  cluster = await startTestCluster({ hosts: 3, heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1_500, rankKillGraceMs: KILL_GRACE_MS });
});

afterAll(async () => {
  await cluster?.stop();
});

async function jobState(id: string): Promise<{ state: string; exitCode: number; detail: string; ranks: { rank: number; host: string; state: string }[] }> {
  const r = await cluster.ferry(['job', id, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe('control plane on three namespace hosts', () => {
  it('registers every agent with its address and CRIU', async () => {
    const rows = await cluster.hostRows();
    expect(rows.map((r) => [r.name, r.state, r.address])).toEqual(cluster.hosts.map((h) => [h.name, 'up', h.address]));
    const status = await cluster.ferry(['status']);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/hosts: 3 up, 0 down/);
    expect(status.stdout).toMatch(/\nconnections: no cluster key: open to whoever reaches the port\n/);
    expect(status.stdout).toMatch(/\ncheckpoints: a job keeps its 2 newest epochs unless it says otherwise; no copies of images on other hosts\n/);
  });

  it('marks a killed agent down, and up again once restarted', async () => {
    const victim = cluster.hosts[1].name;
    await cluster.killAgent(victim, 'SIGKILL');
    await cluster.waitForHostStates({ [victim]: 'down' });
    const events = await cluster.ferry(['events', '--json']);
    expect(JSON.parse(events.stdout).some((e: { kind: string; host: string }) => e.kind === 'host.down' && e.host === victim)).toBe(true);
    await cluster.startAgent(victim);
    await cluster.waitForHostStates({ [victim]: 'up' });
  });

  it('marks no host down after the coordinator stood still for twice the heartbeat timeout: the heartbeats wait unread', async () => {
    const downs = async () => JSON.parse((await cluster.ferry(['events', '--json', '--limit', '1000'])).stdout).filter((e: { kind: string }) => e.kind === 'host.down').length;
    const before = await downs();
    await cluster.pauseCoordinator(3_000); // SIGSTOP: as an event loop blocked on a slow catalog disk, or a stalled machine
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await cluster.hostRows()).map((r) => r.state)).toEqual(['up', 'up', 'up']);
    expect(await downs()).toBe(before);
  });

  it('keeps its catalog over a coordinator restart; agents re-register and a running job keeps running', async () => {
    // A two-rank job that runs until told to stop (a file appears).
    const stopFile = `${cluster.tempDir}/stop-job`;
    const script = `while [ ! -e ${stopFile} ]; do sleep 0.1; done; echo done $FERRY_RANK`;
    const submitted = cluster.ferry(['run', '-n', '2', '--hosts', `${cluster.hosts[0].name},${cluster.hosts[2].name}`, '--job-id', 'keep-1', '/bin/sh', '-c', script]);
    await cluster.waitFor(async () => {
      const r = await cluster.ferry(['job', 'keep-1', '--json']);
      return r.code === 0 && JSON.parse(r.stdout).ranks.every((x: { state: string }) => x.state === 'running');
    }, 'job keep-1 running');
    const before = await cluster.ferry(['events', '--json', '--limit', '10000']);
    const eventsBefore = JSON.parse(before.stdout).length;

    await cluster.killCoordinator('SIGKILL');
    await cluster.startCoordinator();
    // Straight after the restart the catalog is back...
    const rows = await cluster.hostRows();
    expect(rows.map((r) => r.name).sort()).toEqual(cluster.hosts.map((h) => h.name).sort());
    expect((await jobState('keep-1')).state).toBe('running');
    // ...and the agents come back by themselves.
    await cluster.waitForHostStates(Object.fromEntries(cluster.hosts.map((h) => [h.name, 'up'])));
    const job = await jobState('keep-1');
    expect(job.state).toBe('running');
    expect(job.ranks.map((r) => r.state)).toEqual(['running', 'running']);
    const after = JSON.parse((await cluster.ferry(['events', '--json', '--limit', '10000'])).stdout);
    expect(after.length).toBeGreaterThan(eventsBefore);
    expect(after.filter((e: { kind: string }) => e.kind === 'coordinator.start').length).toBeGreaterThanOrEqual(2);

    // The job ends normally; its exits and output reach the new coordinator,
    // and the `ferry run` that followed it across the restart ends with it.
    writeFileSync(stopFile, '');
    await cluster.waitFor(async () => (await jobState('keep-1')).state === 'succeeded', 'job keep-1 to succeed');
    const run = await submitted;
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.split('\n').sort()).toEqual(['', '[0] done 0', '[1] done 1']);
  });

  // Before, the agents dropped what their ranks wrote while they had no coordinator, and what they had sent
  // into a connection that died was gone: lines went missing from ferry run across a stall or a restart.
  describe('output of a job that prints steadily', () => {
    const N = 400;
    const script = `i=0; while [ $i -lt ${N} ]; do echo "line $i of $FERRY_RANK"; i=$((i+1)); sleep 0.02; done`;
    /** Each rank's line numbers, in the order ferry run printed them. */
    const linesOf = (stdout: string) => {
      const got: Record<string, number[]> = {};
      for (const l of stdout.split('\n')) {
        const m = /^\[(\d)\] line (\d+) of (\d)$/.exec(l);
        if (l && (!m || m[1] !== m[3])) throw new Error(`unexpected line "${l}"`);
        if (m) (got[m[1]] ??= []).push(Number(m[2]));
      }
      return got;
    };
    const every = Array.from({ length: N }, (_, i) => i);
    const start = (id: string) => {
      const run = cluster.ferry(['run', '-n', '2', '--hosts', `${cluster.hosts[0].name},${cluster.hosts[1].name}`, '--job-id', id, '/bin/sh', '-c', script], { timeoutMs: 120_000 });
      return run;
    };
    const running = (id: string) =>
      cluster.waitFor(async () => {
        const r = await cluster.ferry(['job', id, '--json']);
        return r.code === 0 && JSON.parse(r.stdout).ranks.every((x: { state: string }) => x.state === 'running');
      }, `job ${id} running`);

    it('reaches ferry run whole, in order and once across a coordinator that stood still longer than the heartbeat timeout', async () => {
      const run = start('steady-1');
      await running('steady-1');
      await new Promise((r) => setTimeout(r, 1_000));
      // The agents' heartbeats go unanswered: they connect and register again, and send again what the
      // coordinator has not acknowledged; it had most of it already.
      await cluster.pauseCoordinator(3_000);
      const r = await run;
      expect(r.code, r.stderr).toBe(0);
      expect(linesOf(r.stdout)).toEqual({ 0: every, 1: every });
    });

    it('reaches ferry run whole and in order across a coordinator killed and restarted', async () => {
      const run = start('steady-2');
      await running('steady-2');
      await new Promise((r) => setTimeout(r, 1_000));
      await cluster.killCoordinator('SIGKILL');
      await new Promise((r) => setTimeout(r, 1_000));
      await cluster.startCoordinator();
      const r = await run;
      expect(r.code, r.stderr).toBe(0);
      // What the agents sent again after the last heartbeat the killed one answered shows twice (it cannot
      // know what its predecessor passed on); nothing is missing, nothing out of order apart from that.
      for (const [rank, got] of Object.entries(linesOf(r.stdout))) {
        const deduplicated = got.filter((n, i) => got.indexOf(n) === i);
        expect(deduplicated, `rank ${rank}: ${got.join(' ')}`).toEqual(every);
        expect(got.length - N, `rank ${rank} lines shown twice`).toBeLessThan(150);
      }
    });
  });

  it('ends a failed job whose other rank ignores SIGTERM: its agent SIGKILLs it after --rank-kill-grace-ms, the job has the status the failure gave', async () => {
    const script = 'if [ "$FERRY_RANK" = 1 ]; then sleep 0.5; echo failing; exit 3; fi; trap "" TERM INT; echo stubborn; while :; do sleep 0.1; done';
    const t0 = Date.now();
    const run = await cluster.ferry(['run', '-n', '2', '--hosts', `${cluster.hosts[0].name},${cluster.hosts[1].name}`, '--job-id', 'stubborn-1', '/bin/sh', '-c', script]);
    expect(run.code, run.stderr).toBe(3);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(KILL_GRACE_MS); // not before the grace
    expect(took).toBeLessThan(RANK_KILL_GRACE_MS); // the agents' own, not the default
    expect(run.stdout.split('\n').sort()).toEqual(['', '[0] stubborn', '[1] failing']);
    const job = await jobState('stubborn-1');
    expect(job).toMatchObject({ state: 'failed', exitCode: 3 });
    expect(job.detail).toMatch(/^rank 1 on \S+ exited with status 3/);
  });

  // Each rank that lost a peer used to fail at once with "lost the connection to rank N" before its own
  // signal came: a line from most ranks after every Ctrl-C, and after a rank that died.
  it('ends an MPI job on two hosts on Ctrl-C of ferry run, or when a rank is killed, without the other ranks reporting lost peers', async () => {
    const ring = buildExample(cluster, 'ring');
    const hosts = `${cluster.hosts[0].name},${cluster.hosts[1].name}`;
    for (const [jobId, end] of [
      ['quiet-1', 'ctrl-c'],
      ['quiet-2', 'ctrl-c'],
      ['quiet-3', 'kill'],
    ] as const) {
      const run = cluster.ferry(['run', '-n', '4', '--hosts', hosts, '--job-id', jobId, ring, '20000000', '--progress', '1000']);
      await cluster.waitFor(() => rank0Output(cluster, jobId).includes('ring: progress'), `job ${jobId}'s ranks exchanging messages`);
      if (end === 'ctrl-c') execFileSync('pkill', ['-INT', '-f', `job-id ${jobId} `]);
      else {
        const ranks = execFileSync('pgrep', ['-f', `^${ring} 20000000`], { encoding: 'utf8' }).trim().split('\n');
        expect(ranks).toHaveLength(4);
        process.kill(Number(ranks[2]), 'SIGKILL');
      }
      const r = await run;
      expect(`${r.stdout}${r.stderr}`, jobId).not.toMatch(/lost the connection/);
      const job = await jobState(jobId);
      if (end === 'ctrl-c') {
        expect(r.stderr).toMatch(new RegExp(`ferry run: job ${jobId} cancelled: cancelled by the operator \\(SIGINT\\)`));
        expect(job.state).toBe('cancelled');
      } else {
        expect(job).toMatchObject({ state: 'failed', exitCode: 137 });
        expect(job.detail).toMatch(/^rank \d on \S+ exited with status 137/);
      }
    }
  });
});
