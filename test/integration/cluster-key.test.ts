// A cluster with a key (ferry keygen; FERRY_KEY for the daemons and the
// commands): real agents register over CURVE, a job runs, is checkpointed and
// has a rank migrated to the other host (its image fetched from the first
// host's image server, over CURVE too), and finishes with every message
// checked. A command without the key, and an agent without it, are turned away
// with a message that says so.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileProgram } from '../runtime/rank-harness.js';
import { FERRY_CLI, startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { DaemonProcess } from '../helpers/daemon-process.js';
import { allRanksRunning, ferryJson as ferryJsonOf, type JobView } from '../helpers/fault-cluster.js';

let c: TestCluster;
let stream: string;

beforeAll(async () => {
  c = await startTestCluster({ hosts: 2, heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1_500, clusterKey: true });
  const bin = join(c.tempDir, 'bin');
  mkdirSync(bin, { recursive: true });
  stream = compileProgram('flush-stream', bin);
}, 120_000);

afterAll(async () => {
  await c?.stop();
});

const ferryJson = <T>(args: string[]) => ferryJsonOf<T>(c, args);

describe('a cluster with a key', { timeout: 180_000 }, () => {
  it('runs, checkpoints and migrates a job with every connection keyed; turns away a command and an agent without the key', async () => {
    expect(c.keyFile).toBeDefined();
    expect((await c.ferry(['status'])).stdout).toMatch(/\nconnections: cluster key \(CURVE\): only holders of the key get in\n/);
    expect((await ferryJson<{ clusterKey: boolean }>(['status'])).clusterKey).toBe(true);
    const stop = join(c.tempDir, 'stop');
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1', '--job-id', 'keyed', stream, stop], { timeoutMs: 150_000 });
    await allRanksRunning(c, 'keyed');
    const epoch = await ferryJson<{ epoch: number; state: string }>(['checkpoint', 'keyed']);
    expect([epoch.epoch, epoch.state]).toEqual([1, 'committed']);
    const moved = await ferryJson<{ moves: { rank: number; to: string }[]; bytesShipped: number }>(['migrate', 'keyed', '--rank', '1', '--to', 'host2']);
    expect(moved.moves).toEqual([expect.objectContaining({ rank: 1, to: 'host2' })]);
    expect(moved.bytesShipped).toBeGreaterThan(0); // fetched from host1's image server

    // Without the key: refused at the handshake, said in one line, within seconds.
    const refused = await c.ferry(['status'], { env: { FERRY_KEY: '' }, timeoutMs: 30_000 });
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toMatch(
      /^ferry: the coordinator at tcp:\S+ did not let this command in: the handshake failed: does it need a cluster key\? this client has none \(FERRY_KEY, --key\) \[UNAVAILABLE\]$/,
    );

    // An agent without the key never registers, and says why.
    const stranger = new DaemonProcess(
      'agent stranger',
      [process.execPath, FERRY_CLI, 'agent', '--coordinator', c.coordinatorAddress, '--name', 'stranger', '--images', join(c.tempDir, 'stranger-images'), '--rank-socket', `ferry-key-test-${process.pid}`, '--address', '127.0.0.1'],
      join(c.tempDir, 'stranger.log'),
      { ...process.env, FERRY_KEY: '' },
    );
    stranger.start();
    try {
      await stranger.waitForOutput(/ferry agent stranger: the coordinator at \S+: the handshake failed: does it need a cluster key\? this client has none/, 30_000);
      expect((await c.hostRows()).map((h) => h.name)).toEqual(['host1', 'host2']);
    } finally {
      await stranger.stop();
    }

    writeFileSync(stop, '');
    const r = await run;
    expect(r.code, `${r.stderr}\n${c.logTails(20)}`).toBe(0);
    expect(r.stdout).toMatch(/\[0\] stream ok rounds \d+ messages \d+/);
    expect((await ferryJson<JobView>(['job', 'keyed'])).ranks.map((x) => x.host)).toEqual(['host1', 'host2', 'host1', 'host1']);
  });
});
