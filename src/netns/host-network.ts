// A set of "hosts" on one machine: each host is a network namespace with `lo`
// up and one veth into a bridge in the root namespace. The bridge holds .1 of
// a /24 from 198.18.0.0/15 (the coordinator listens there), hosts get .2, .3, ...
// Nothing routes or NATs beyond the bridge: hosts have only the connected /24
// route, so test traffic cannot leave these namespaces and the bridge.
//
// Hosts are entered with `nsenter --net=/run/netns/NAME`, not `ip netns exec`,
// which would also make a mount namespace that CRIU then refuses to dump.
import { ErrorCode } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';
import {
  SUBNET_PREFIX,
  addressIn,
  formatNetwork,
  network,
  overlaps,
  pickFreeSubnet,
  usedNetworks,
  type Ipv4Network,
} from './benchmark-subnet.js';
import { assertNamespaceHostsUsable, parseLinkNames, parseNetnsList, parsePids, runIp, runIpSync } from './ip-command.js';
import { bridgeName, netnsName, newRunTag, parseRunName, vethName } from './run-tag.js';

const trace = tracer('netns');

export const NETNS_DIR = '/run/netns';
// Name of each host's interface inside its namespace.
export const HOST_IFNAME = 'eth0';
// Hosts take .2 .. .254 of the /24.
export const MAX_HOSTS = 253;
// Concurrent runs can pick the same free /24 at the same instant; each detects
// it after adding its address and tries another one, at most this many times.
const SUBNET_PICK_ATTEMPTS = 16;
const HOST_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export interface HostNetworkOptions {
  // A count (hosts named host1..hostN) or the host names.
  hosts: number | readonly string[];
  // The process whose death makes this network a leftover for
  // sweepStaleHostNetworks(); default this process.
  ownerPid?: number;
}

export interface NamespaceHost {
  name: string; // the host's name (e.g. an agent's --name)
  netns: string; // network namespace name, /run/netns/<netns>
  address: string; // IPv4 address on the bridge's /24
}

export interface HostNetwork {
  readonly tag: string; // run tag every name of this network starts with
  readonly bridge: string;
  readonly bridgeAddress: string; // root-namespace address on the bridge
  readonly subnet: string; // e.g. 198.18.37.0/24
  readonly hosts: readonly NamespaceHost[];
  host(name: string): NamespaceHost;
  // argv run inside host NAME's network namespace (and nothing else's).
  command(hostName: string, argv: readonly string[]): string[];
  // Cuts host NAME off the bridge (connected: false), as a pulled cable or a
  // dead switch port would, or joins it again. Its sockets stay open: TCP
  // retransmits what waits once the link is back.
  setConnected(hostName: string, connected: boolean): Promise<void>;
  // Kills any process still inside the hosts' namespaces, removes every
  // veth, the bridge and the namespaces. Idempotent; gone pieces are no error.
  destroy(): Promise<void>;
  // Same, synchronously and never throwing: for process 'exit' handlers.
  destroySync(): void;
}

function hostNames(hosts: number | readonly string[]): string[] {
  const names = typeof hosts === 'number' ? Array.from({ length: hosts }, (_, i) => `host${i + 1}`) : [...hosts];
  if (names.length < 1 || names.length > MAX_HOSTS) {
    throw new FerryError(ErrorCode.BAD_REQUEST, `a host network has 1 to ${MAX_HOSTS} hosts, not ${names.length}`);
  }
  const seen = new Set<string>();
  for (const n of names) {
    if (!HOST_NAME_RE.test(n)) {
      throw new FerryError(ErrorCode.BAD_REQUEST, `bad host name ${JSON.stringify(n)}: letters, digits, '_', '.', '-', at most 63`);
    }
    if (seen.has(n)) throw new FerryError(ErrorCode.DUPLICATE_HOST, `host name ${n} given twice`);
    seen.add(n);
  }
  return names;
}

// Adds .1 of a free /24 to BRIDGE, re-checking afterwards that no other
// interface took an overlapping address meanwhile.
async function claimSubnet(bridge: string): Promise<Ipv4Network> {
  const lost: Ipv4Network[] = [];
  for (let attempt = 0; attempt < SUBNET_PICK_ATTEMPTS; attempt++) {
    const [addrs, routes] = await Promise.all([runIp(['-j', '-4', 'addr', 'show']), runIp(['-j', '-4', 'route', 'show', 'table', 'all'])]);
    const subnet = pickFreeSubnet(usedNetworks(addrs, routes), lost);
    if (!subnet) throw new FerryError(ErrorCode.NO_CAPACITY, 'no free /24 left in 198.18.0.0/15 for a host network');
    const cidr = `${addressIn(subnet, 1)}/${SUBNET_PREFIX}`;
    await runIp(['addr', 'add', cidr, 'dev', bridge]);
    const after = JSON.parse(await runIp(['-j', '-4', 'addr', 'show'])) as {
      ifname: string;
      addr_info?: { family?: string; local?: string; prefixlen?: number }[];
    }[];
    const clash = after.some(
      (link) =>
        link.ifname !== bridge &&
        (link.addr_info ?? []).some(
          (a) => a.family === 'inet' && a.local && typeof a.prefixlen === 'number' && overlaps(network(a.local, a.prefixlen), subnet),
        ),
    );
    if (!clash) return subnet;
    trace(`subnet ${formatNetwork(subnet)} taken concurrently, picking another`);
    await runIp(['addr', 'del', cidr, 'dev', bridge]);
    lost.push(subnet);
  }
  throw new FerryError(ErrorCode.NO_CAPACITY, `could not claim a /24 in 198.18.0.0/15 after ${SUBNET_PICK_ATTEMPTS} attempts`);
}

export async function createHostNetwork(options: HostNetworkOptions): Promise<HostNetwork> {
  assertNamespaceHostsUsable();
  const names = hostNames(options.hosts);
  const tag = newRunTag(options.ownerPid ?? process.pid);
  const bridge = bridgeName(tag);
  const pieces: RunPieces = {
    netns: names.map((n) => netnsName(tag, n)),
    links: [...names.map((_, i) => vethName(tag, i)), bridge],
  };
  trace(`create ${tag}: bridge ${bridge}, hosts ${names.join(',')}`);
  try {
    await runIp(['link', 'add', bridge, 'type', 'bridge']);
    const subnet = await claimSubnet(bridge);
    const hosts: NamespaceHost[] = names.map((name, i) => ({ name, netns: netnsName(tag, name), address: addressIn(subnet, i + 2) }));
    const rootBatch = [`link set ${bridge} up`];
    hosts.forEach((h, i) => {
      const veth = vethName(tag, i);
      rootBatch.push(
        `netns add ${h.netns}`,
        `link add ${veth} type veth peer name ${HOST_IFNAME} netns ${h.netns}`,
        `link set ${veth} master ${bridge}`,
        `link set ${veth} up`,
      );
    });
    await runIp(['-batch', '-'], rootBatch.join('\n') + '\n');
    await Promise.all(
      hosts.map((h) =>
        runIp(
          ['-n', h.netns, '-batch', '-'],
          [`link set lo up`, `addr add ${h.address}/${SUBNET_PREFIX} dev ${HOST_IFNAME}`, `link set ${HOST_IFNAME} up`].join('\n') + '\n',
        ),
      ),
    );
    const byName = new Map(hosts.map((h) => [h.name, h]));
    const host = (name: string): NamespaceHost => {
      const h = byName.get(name);
      if (!h) throw new FerryError(ErrorCode.UNKNOWN_HOST, `no host ${name} in network ${tag} (hosts: ${names.join(', ')})`);
      return h;
    };
    trace(`created ${tag}: ${formatNetwork(subnet)}`);
    return {
      tag,
      bridge,
      bridgeAddress: addressIn(subnet, 1),
      subnet: formatNetwork(subnet),
      hosts,
      host,
      command: (hostName, argv) => ['nsenter', `--net=${NETNS_DIR}/${host(hostName).netns}`, ...argv],
      // (the root-side end: the host's own eth0 keeps its address and route, and only loses its carrier)
      setConnected: (hostName, connected) => runIp(['link', 'set', vethName(tag, hosts.indexOf(host(hostName))), connected ? 'up' : 'down']).then(() => undefined),
      destroy: () => removeRunPieces(pieces),
      destroySync: () => removeRunPiecesSync(pieces),
    };
  } catch (err) {
    removeRunPiecesSync(pieces);
    throw err;
  }
}

// What one run made, by name (whether or not each piece still exists).
export interface RunPieces {
  netns: string[];
  links: string[]; // root-namespace veths and the bridge
}

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

// Order matters: a namespace outlives `ip netns del` while processes remain in
// it, and the kernel frees a deleted namespace (and its veth end) only later,
// asynchronously. So: kill what runs inside, delete the veths from the root
// side (which removes both ends at once), the bridge, then the namespace names.
export async function removeRunPieces(pieces: RunPieces): Promise<void> {
  const present = new Set(parseNetnsList(await runIp(['netns', 'list'])));
  const netns = pieces.netns.filter((n) => present.has(n));
  for (const n of netns) killAll(parsePids(await runIp(['netns', 'pids', n]).catch(() => '')));
  const links = new Set(parseLinkNames(await runIp(['-j', 'link', 'show'])));
  const batch = [
    ...pieces.links.filter((l) => links.has(l)).map((l) => `link del ${l}`),
    ...netns.map((n) => `netns del ${n}`),
  ];
  if (batch.length > 0) await runIp(['-force', '-batch', '-'], batch.join('\n') + '\n').catch((err) => trace(errorMessage(err)));
  const leftNetns = parseNetnsList(await runIp(['netns', 'list'])).filter((n) => pieces.netns.includes(n));
  const leftLinks = parseLinkNames(await runIp(['-j', 'link', 'show'])).filter((l) => pieces.links.includes(l));
  if (leftNetns.length + leftLinks.length > 0) {
    throw new FerryError(ErrorCode.INTERNAL, `could not remove ${[...leftNetns, ...leftLinks].join(', ')}`);
  }
}

export function removeRunPiecesSync(pieces: RunPieces): void {
  try {
    const present = new Set(parseNetnsList(runIpSync(['netns', 'list']).stdout));
    const netns = pieces.netns.filter((n) => present.has(n));
    for (const n of netns) killAll(parsePids(runIpSync(['netns', 'pids', n]).stdout));
    const links = new Set(parseLinkNames(runIpSync(['-j', 'link', 'show']).stdout));
    const batch = [...pieces.links.filter((l) => links.has(l)).map((l) => `link del ${l}`), ...netns.map((n) => `netns del ${n}`)];
    if (batch.length > 0) runIpSync(['-force', '-batch', '-'], batch.join('\n') + '\n');
  } catch (err) {
    trace(`sync clean-up: ${errorMessage(err)}`);
  }
}

// Every piece in this machine's root namespace that some host network made,
// grouped by run tag.
export async function listRunPieces(): Promise<Map<string, RunPieces & { ownerPid: number }>> {
  const runs = new Map<string, RunPieces & { ownerPid: number }>();
  const add = (name: string, kind: 'netns' | 'links'): void => {
    const parsed = parseRunName(name);
    if (!parsed) return;
    let run = runs.get(parsed.tag);
    if (!run) runs.set(parsed.tag, (run = { ownerPid: parsed.ownerPid, netns: [], links: [] }));
    run[kind].push(name);
  };
  for (const n of parseNetnsList(await runIp(['netns', 'list']))) add(n, 'netns');
  for (const l of parseLinkNames(await runIp(['-j', 'link', 'show']))) add(l, 'links');
  return runs;
}
