// Two agents on one machine: a second agent in host1's network namespace,
// listening for its ranks under another abstract socket name (--rank-socket),
// as an operator trying Ferry on one box would run them. A rank migrated or
// restarted from one to the other is restored with the first agent's socket
// name in its memory; it must connect to the agent that restored it
// (rank-init-dir.ts, src/runtime/agent.c), not be refused by the one it left
// and fail the job. Real agents, real CRIU, a real MPI job that checks every
// message it receives.
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_SOCKET_FILE, RANK_INIT_ROOT_ENV } from '../../src/agent/rank-init-dir.js';
import { DaemonProcess } from '../../src/local-cluster/daemon-process.js';
import { FERRY_CLI, startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { ferryOkOn } from '../helpers/e2e-run.js';
import { allRanksRunning } from '../helpers/fault-cluster.js';
import { compileProgram } from '../runtime/rank-harness.js';

const SECOND = 'host1b';
const SECOND_SOCKET = 'ferry-agent-host1b';

let c: TestCluster;
let second: DaemonProcess | undefined;
let stream: string;

beforeAll(async () => {
  c = await startTestCluster({ hosts: 1, heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1_500 });
  const host1 = c.hosts[0];
  const dir = join(c.tempDir, 'hosts', SECOND);
  mkdirSync(dir, { recursive: true });
  const argv = c.network.command(host1.name, [
    process.execPath, FERRY_CLI, 'agent',
    '--coordinator', c.coordinatorAddress,
    '--name', SECOND,
    '--images', join(dir, 'images'),
    '--logs', join(dir, 'logs'),
    '--address', host1.address,
    '--rank-socket', SECOND_SOCKET,
  ]);
  // (the ranks' init directories under the cluster's root, as its own agents keep them)
  second = new DaemonProcess(`agent ${SECOND}`, argv, join(c.tempDir, 'logs', `agent-${SECOND}.log`), { ...process.env, [RANK_INIT_ROOT_ENV]: join(c.tempDir, 'rank-init') });
  second.start();
  await second.waitForOutput(new RegExp(`ferry agent ${SECOND} registered`), 60_000);
  const bin = join(c.tempDir, 'bin');
  mkdirSync(bin, { recursive: true });
  stream = compileProgram('flush-stream', bin);
}, 120_000);

afterAll(async () => {
  await second?.stop();
  await c?.stop();
});

const ferryOk = ferryOkOn(() => c, 60_000);

/** The agent socket name written in the init directory of each rank of job `id` (rank -> name). */
function namedAgents(id: string): Map<number, string> {
  const root = join(c.tempDir, 'rank-init');
  const named = new Map<number, string>();
  for (const d of readdirSync(root).filter((n) => n.startsWith(`${id}.`))) {
    named.set(Number(d.split('.')[1]), readFileSync(join(root, d, AGENT_SOCKET_FILE), 'utf8').trim());
  }
  return named;
}

describe('two agents in one network namespace', { timeout: 240_000 }, () => {
  it('move ranks between them: migrated, stopped and restarted, migrated back, and the job loses nothing', async () => {
    const stop = join(c.tempDir, 'stop');
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1', '--job-id', 'two', stream, stop], { timeoutMs: 200_000 });
    await allRanksRunning(c, 'two');
    expect([...namedAgents('two').values()]).toEqual(['ferry-agent', 'ferry-agent', 'ferry-agent', 'ferry-agent']);

    await ferryOk(['migrate', 'two', '--rank', '1', '--to', SECOND]);
    expect(namedAgents('two').get(1)).toBe(SECOND_SOCKET);
    await ferryOk(['checkpoint', 'two']); // rank 1 answers its new agent's PREPARE
    await ferryOk(['checkpoint', 'two', '--stop']);
    expect((await run).code).toBe(75); // stopped: ferry run says so with 75

    await ferryOk(['restart', 'two', '--map', `0=host1,1=host1,2=${SECOND},3=${SECOND}`]);
    const job = await allRanksRunning(c, 'two');
    expect(job.ranks.map((r) => r.host)).toEqual(['host1', 'host1', SECOND, SECOND]);
    expect(namedAgents('two')).toEqual(new Map([[0, 'ferry-agent'], [1, 'ferry-agent'], [2, SECOND_SOCKET], [3, SECOND_SOCKET]]));
    await ferryOk(['migrate', 'two', '--rank', '3', '--to', 'host1']);
    await ferryOk(['checkpoint', 'two']);

    const attached = c.ferry(['attach', 'two'], { timeoutMs: 60_000 });
    writeFileSync(stop, '');
    const r = await attached;
    expect(r.code, `${r.stderr}\n${c.logTails(20)}\n${second!.tail(20)}`).toBe(0);
    // flush-stream checks every payload and sequence number it receives; rank 0 reports.
    expect(r.stdout).toMatch(/\[0\] stream ok rounds \d+ messages \d+/);
    expect(JSON.parse(await ferryOk(['job', 'two', '--json'])).state).toBe('succeeded');
  });
});
