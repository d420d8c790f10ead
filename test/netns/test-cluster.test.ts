// The multi-host test cluster helper itself: it brings up a real coordinator
// and agents on namespace hosts, and stop() leaves nothing behind.
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';

const CLUSTER_TEST_TIMEOUT_MS = 120_000;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// PIDs of the daemons whose command line names the cluster's temp dir.
function daemonPids(tempDir: string): number[] {
  const r = spawnSync('pgrep', ['-f', tempDir], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

describe('test cluster', () => {
  let cluster: TestCluster | undefined;
  afterAll(async () => {
    await cluster?.stop();
  }, CLUSTER_TEST_TIMEOUT_MS);

  it('starts a coordinator and one agent per host, all registered with their namespace addresses', async () => {
    cluster = await startTestCluster({ hosts: ['north', 'south', 'east'] });
    expect(cluster.coordinatorAddress).toBe(`tcp://${cluster.network.bridgeAddress}:${cluster.coordinatorAddress.split(':').pop()}`);
    const rows = await cluster.hostRows();
    expect(rows.map((r) => ({ name: r.name, address: r.address, state: r.state })).sort((a, b) => a.name.localeCompare(b.name))).toEqual(
      cluster.hosts.map((h) => ({ name: h.name, address: h.address, state: 'up' })).sort((a, b) => a.name.localeCompare(b.name)),
    );
    // each agent really runs inside its host's network namespace
    for (const h of cluster.hosts) {
      const [pid] = daemonPids(h.imagesDir);
      expect(pid).toBeDefined();
      const agentNs = spawnSync('readlink', [`/proc/${pid}/ns/net`], { encoding: 'utf8' }).stdout.trim();
      const hostNs = spawnSync('nsenter', [`--net=/run/netns/${h.netns}`, 'readlink', '/proc/self/ns/net'], { encoding: 'utf8' }).stdout.trim();
      expect(agentNs).toBe(hostNs);
    }
    // the operator CLI works from inside a host too
    const fromHost = await cluster.ferryOn('south', ['hosts', '--json']);
    expect(fromHost.code).toBe(0);
    expect((JSON.parse(fromHost.stdout) as { name: string }[]).map((r) => r.name).sort()).toEqual(['east', 'north', 'south']);
    expect(cluster.logs('coordinator')).toContain(`ferry coordinator listening on ${cluster.coordinatorAddress}`);
    expect(readFileSync(`${cluster.tempDir}/logs/agent-east.log`, 'utf8')).toContain('ferry agent east registered');
  }, CLUSTER_TEST_TIMEOUT_MS);

  it('stop() ends every daemon and removes the hosts, the bridge and the temp dir', async () => {
    const c = cluster!;
    const pids = daemonPids(c.tempDir);
    expect(pids.length).toBe(4); // coordinator + 3 agents
    await c.stop();
    for (const pid of pids) expect(processAlive(pid)).toBe(false);
    expect(existsSync(c.tempDir)).toBe(false);
    const netns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
    expect(netns).not.toContain(c.network.tag);
    expect(links).not.toContain(c.network.tag);
    await c.stop(); // idempotent
  }, CLUSTER_TEST_TIMEOUT_MS);
});
