// A two-host cluster for the fault tests of test/integration/ (`env` sets the
// agents' FERRY_FAULT_* delays), with the flush-stream MPI program built in
// it: a job that streams messages between all its ranks and checks every one.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { compileProgram } from '../runtime/rank-harness.js';
import { startTestCluster, type TestCluster } from './cluster.js';

export async function startFaultCluster(env: Record<string, string>): Promise<{ cluster: TestCluster; stream: string }> {
  const cluster = await startTestCluster({ hosts: 2, heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1_500, env });
  const bin = join(cluster.tempDir, 'bin');
  mkdirSync(bin, { recursive: true });
  return { cluster, stream: compileProgram('flush-stream', bin) };
}
