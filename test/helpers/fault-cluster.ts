// A two-host cluster for the fault tests of test/integration/, its agents'
// fault gates ready (fault-gates.ts), with the flush-stream MPI program built
// in it: a job that streams messages between all its ranks and checks every
// one. Also the queries these tests make of the cluster, and the cleanup
// after each test.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { compileProgram } from '../runtime/rank-harness.js';
import { startTestCluster, type TestCluster } from './cluster.js';
import { FaultGates } from './fault-gates.js';

/**
 * What the daemons of a fault cluster trace: the protocol's steps, in a few hundred lines a file. A test
 * that times out shows the last lines of each log; these say which step the job was in and why.
 */
const FAULT_TRACES = 'checkpoint,steps,agent,ranks,jobs,coordinator,hosts,moves';

export async function startFaultCluster(env: NodeJS.ProcessEnv = {}): Promise<{ cluster: TestCluster; stream: string; gates: FaultGates }> {
  const traces = [process.env.FERRY_TRACE, FAULT_TRACES, env.FERRY_TRACE].filter(Boolean).join(',');
  const cluster = await startTestCluster({ hosts: 2, heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1_500, faultGates: true, env: { ...env, FERRY_TRACE: traces } });
  const bin = join(cluster.tempDir, 'bin');
  mkdirSync(bin, { recursive: true });
  return { cluster, stream: compileProgram('flush-stream', bin), gates: new FaultGates(cluster) };
}

/**
 * After each test: opens every gate and ends (SIGKILL) any job a failed test
 * left running, so that its ranks do not hold the hosts' capacity and its
 * steps do not wait at a gate while the next test runs.
 */
export async function endLeftovers(c: TestCluster, gates: FaultGates): Promise<void> {
  gates.openAll();
  const r = await c.ferry(['jobs', '--json'], { timeoutMs: 10_000 });
  if (r.code !== 0) return; // the coordinator is down (the test killed it): nothing to ask
  for (const { id } of JSON.parse(r.stdout) as { id: string }[]) await c.ferry(['cancel', id, '--signal', 'SIGKILL', '--wait', '30s'], { timeoutMs: 40_000 });
}

/** `ferry ARGS --json`, parsed; fails the test with the CLI's stderr if it fails. */
export async function ferryJson<T>(c: TestCluster, args: string[]): Promise<T> {
  const r = await c.ferry([...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

export interface JobView {
  state: string;
  exitCode: number;
  detail: string;
  ranks: { rank: number; host: string; state: string }[];
}

/** Waits until job `id` and every rank of it run; returns the job as `ferry job` shows it then. */
export async function allRanksRunning(c: TestCluster, id: string): Promise<JobView> {
  let view: JobView | undefined;
  await c.waitFor(async () => {
    const r = await c.ferry(['job', id, '--json']);
    view = r.code === 0 ? (JSON.parse(r.stdout) as JobView) : undefined;
    return view?.state === 'running' && view.ranks.every((x) => x.state === 'running');
  }, `every rank of ${id} running`);
  return view!;
}
