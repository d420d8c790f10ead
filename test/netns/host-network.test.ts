// Namespace hosts on one machine: real namespaces, veths, a bridge and TCP.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createHostNetwork, sweepStaleHostNetworks, type HostNetwork } from '../../src/netns/index.js';

const networks: HostNetwork[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const n of networks.splice(0)) await n.destroy();
});

async function network(hosts: number | string[], ownerPid?: number): Promise<HostNetwork> {
  const n = await createHostNetwork(ownerPid === undefined ? { hosts } : { hosts, ownerPid });
  networks.push(n);
  return n;
}

// Runs a Node script inside HOST and resolves with its exit code and output.
function runNodeIn(net: HostNetwork, host: string, script: string, args: string[] = []): Promise<{ code: number | null; out: string }> {
  const [cmd, ...argv] = net.command(host, [process.execPath, '-e', script, '--', ...args]);
  const r = spawnSync(cmd!, argv, { encoding: 'utf8', timeout: 30_000 });
  return Promise.resolve({ code: r.status, out: `${r.stdout}${r.stderr}` });
}

// Starts a long-running Node script inside HOST and waits for its "ready" line.
async function startNodeIn(net: HostNetwork, host: string, script: string, args: string[] = []): Promise<ChildProcess> {
  const [cmd, ...argv] = net.command(host, [process.execPath, '-e', script, '--', ...args]);
  const child = spawn(cmd!, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  let out = '';
  child.stdout!.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: string) => {
      out += d;
      if (out.includes('ready\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before ready: ${out}`)));
  });
  return child;
}

function ip(args: string[]): string {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function piecesOf(tag: string): string[] {
  const netns = ip(['netns', 'list']).split('\n').map((l) => l.split(' ')[0]!);
  const links = (JSON.parse(ip(['-j', 'link', 'show'])) as { ifname: string }[]).map((l) => l.ifname);
  return [...netns, ...links].filter((n) => n.startsWith(tag));
}

const ECHO_SERVER = `
const net = require('node:net');
const [addr, port] = process.argv.slice(1);
net.createServer((s) => s.on('data', (d) => s.end('pong:' + d))).listen({ host: addr, port: Number(port) }, () => console.log('ready'));
`;

const TCP_CLIENT = `
const net = require('node:net');
const [addr, port] = process.argv.slice(1);
const s = net.connect({ host: addr, port: Number(port) }, () => s.write('ping'));
let got = '';
s.on('data', (d) => (got += d));
s.on('end', () => { console.log(got); process.exit(0); });
s.on('error', (e) => { console.log('error ' + e.code); process.exit(3); });
`;

describe('host network', () => {
  it('creates hosts with lo up, one address each on a bridge, no route outside', async () => {
    const net = await network(3);
    expect(net.hosts.map((h) => h.name)).toEqual(['host1', 'host2', 'host3']);
    expect(net.bridge.length).toBeLessThanOrEqual(15);
    expect(net.subnet).toMatch(/^198\.1[89]\.\d+\.0\/24$/);
    expect(net.bridgeAddress).toBe(net.subnet.replace(/0\/24$/, '1'));
    expect(new Set(net.hosts.map((h) => h.address)).size).toBe(3);
    for (const h of net.hosts) {
      const links = JSON.parse(ip(['-n', h.netns, '-j', 'addr', 'show'])) as { ifname: string; operstate: string; flags: string[]; addr_info: { local: string }[] }[];
      const lo = links.find((l) => l.ifname === 'lo')!;
      expect(lo.flags).toContain('UP');
      expect(links.find((l) => l.ifname === 'eth0')!.addr_info.map((a) => a.local)).toContain(h.address);
      // only the connected /24: no default route, nothing via the bridge
      const routes = JSON.parse(ip(['-n', h.netns, '-j', '-4', 'route', 'show'])) as { dst: string; gateway?: string }[];
      expect(routes.map((r) => r.dst)).toEqual([net.subnet]);
      expect(routes.some((r) => r.gateway)).toBe(false);
    }
    expect(net.command('host2', ['true'])).toEqual(['nsenter', `--net=/run/netns/${net.hosts[1]!.netns}`, 'true']);
  });

  it('carries TCP from one host to another and to the bridge address', async () => {
    const net = await network(['alpha', 'beta']);
    const beta = net.host('beta');
    await startNodeIn(net, 'beta', ECHO_SERVER, [beta.address, '7001']);
    const r = await runNodeIn(net, 'alpha', TCP_CLIENT, [beta.address, '7001']);
    expect(r).toEqual({ code: 0, out: 'pong:ping\n' });
    // the root namespace reaches hosts on the bridge (where the coordinator listens)
    const root = spawnSync(process.execPath, ['-e', TCP_CLIENT, '--', beta.address, '7001'], { encoding: 'utf8', timeout: 30_000 });
    expect(root.stdout).toBe('pong:ping\n');
  });

  it('cannot reach anything outside the bridge', async () => {
    const net = await network(1);
    // TEST-NET-1 stands for "anywhere else": without a route the connect fails at once
    const r = await runNodeIn(net, 'host1', TCP_CLIENT, ['192.0.2.1', '9']);
    expect(r).toEqual({ code: 3, out: 'error ENETUNREACH\n' });
    // the root namespace's own non-bridge addresses are outside too
    const rootAddrs = (JSON.parse(ip(['-j', '-4', 'addr', 'show'])) as { ifname: string; addr_info: { local: string }[] }[])
      .filter((l) => l.ifname !== 'lo' && l.ifname !== net.bridge)
      .flatMap((l) => l.addr_info.map((a) => a.local));
    for (const addr of rootAddrs) {
      expect(await runNodeIn(net, 'host1', TCP_CLIENT, [addr, '9'])).toEqual({ code: 3, out: 'error ENETUNREACH\n' });
    }
  });

  it('scopes abstract Unix socket names to one host', async () => {
    const net = await network(2);
    const name = `ferry-test-${process.pid}-${Date.now()}`;
    const server = `
      const net = require('node:net');
      net.createServer((s) => s.end('from-host1')).listen('\\0' + process.argv[1], () => console.log('ready'));`;
    const client = `
      const net = require('node:net');
      const s = net.connect('\\0' + process.argv[1]);
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('end', () => { console.log(got); process.exit(0); });
      s.on('error', (e) => { console.log('error ' + e.code); process.exit(3); });`;
    await startNodeIn(net, 'host1', server, [name]);
    expect(await runNodeIn(net, 'host1', client, [name])).toEqual({ code: 0, out: 'from-host1\n' });
    expect(await runNodeIn(net, 'host2', client, [name])).toEqual({ code: 3, out: 'error ECONNREFUSED\n' });
  });

  it('destroy() removes every namespace, veth and the bridge, kills what runs inside, and is idempotent', async () => {
    const net = await createHostNetwork({ hosts: 3 });
    networks.push(net);
    expect(piecesOf(net.tag).sort()).toEqual([net.bridge, ...net.hosts.map((h) => h.netns), ...[0, 1, 2].map((i) => `${net.tag}v${i}`)].sort());
    const sleeper = await startNodeIn(net, 'host2', `console.log('ready'); setInterval(() => {}, 1000);`);
    const exited = once(sleeper, 'exit');
    await net.destroy();
    expect(piecesOf(net.tag)).toEqual([]);
    const [, signal] = await exited;
    expect(signal).toBe('SIGKILL');
    await net.destroy();
    net.destroySync();
    expect(piecesOf(net.tag)).toEqual([]);
  });

  it('gives two networks created at the same time different names and subnets', async () => {
    const [a, b] = await Promise.all([network(2), network(2)]);
    expect(a!.tag).not.toBe(b!.tag);
    expect(a!.bridge).not.toBe(b!.bridge);
    expect(a!.subnet).not.toBe(b!.subnet);
    expect(a!.hosts.map((h) => h.netns)).not.toEqual(b!.hosts.map((h) => h.netns));
    // each network still works on its own
    await startNodeIn(a!, 'host2', ECHO_SERVER, [a!.host('host2').address, '7002']);
    expect(await runNodeIn(a!, 'host1', TCP_CLIENT, [a!.host('host2').address, '7002'])).toEqual({ code: 0, out: 'pong:ping\n' });
    // and cannot reach the other one
    expect((await runNodeIn(b!, 'host1', TCP_CLIENT, [a!.host('host2').address, '7002'])).out).toBe('error ENETUNREACH\n');
  });

  it('sweeps the leftovers of a dead owner and keeps those of a live one', async () => {
    const owner = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    children.push(owner);
    const stale = await network(2, owner.pid!);
    const live = await network(1);
    const leftover = await startNodeIn(stale, 'host1', `console.log('ready'); setInterval(() => {}, 1000);`);
    const leftoverExit = once(leftover, 'exit');

    let swept = await sweepStaleHostNetworks();
    expect(swept.kept).toEqual(expect.arrayContaining([stale.tag, live.tag]));
    expect(piecesOf(stale.tag)).toHaveLength(5);

    owner.kill('SIGKILL');
    await once(owner, 'exit');
    // (a test file running in parallel may sweep it first: check the outcome)
    swept = await sweepStaleHostNetworks();
    expect(swept.kept).toContain(live.tag);
    expect(piecesOf(stale.tag)).toEqual([]);
    expect(piecesOf(live.tag)).toHaveLength(3);
    expect((await leftoverExit)[1]).toBe('SIGKILL');
  });

  it('rejects bad host lists with a clear error', async () => {
    await expect(createHostNetwork({ hosts: ['a', 'a'] })).rejects.toThrow(/given twice/);
    await expect(createHostNetwork({ hosts: ['bad/name'] })).rejects.toThrow(/bad host name/);
    await expect(createHostNetwork({ hosts: 0 })).rejects.toThrow(/1 to 253 hosts/);
  });
});
