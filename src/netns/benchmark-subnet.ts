// Picks a /24 for one host network from the benchmarking range 198.18.0.0/15
// (RFC 2544: never routed on the Internet), avoiding every /24 that an address
// or route of the root namespace already overlaps, so a test network never
// shadows a real one and two concurrent runs do not share a subnet.
import { randomInt } from 'node:crypto';

export const BENCHMARK_RANGE_BASE = ipv4ToInt('198.18.0.0');
export const BENCHMARK_RANGE_PREFIX = 15;
export const SUBNET_PREFIX = 24;
const SUBNETS_IN_RANGE = 1 << (SUBNET_PREFIX - BENCHMARK_RANGE_PREFIX); // 512

export interface Ipv4Network {
  base: number; // network address as an unsigned 32-bit integer
  prefix: number;
}

export function ipv4ToInt(addr: string): number {
  const parts = addr.split('.').map((p) => Number.parseInt(p, 10));
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`not an IPv4 address: ${addr}`);
  }
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function network(addr: string, prefix: number): Ipv4Network {
  return { base: (ipv4ToInt(addr) & mask(prefix)) >>> 0, prefix };
}

export function overlaps(a: Ipv4Network, b: Ipv4Network): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.base & mask(p)) >>> 0) === ((b.base & mask(p)) >>> 0);
}

export function formatNetwork(n: Ipv4Network): string {
  return `${intToIpv4(n.base)}/${n.prefix}`;
}

// The networks in use, from `ip -j -4 addr show` and `ip -j -4 route show table all`
// output. The default route is not a use of any particular subnet.
export function usedNetworks(addrJson: string, routeJson: string): Ipv4Network[] {
  const used: Ipv4Network[] = [];
  const links = JSON.parse(addrJson || '[]') as { addr_info?: { family?: string; local?: string; prefixlen?: number }[] }[];
  for (const link of links) {
    for (const a of link.addr_info ?? []) {
      if (a.family === 'inet' && a.local && typeof a.prefixlen === 'number') used.push(network(a.local, a.prefixlen));
    }
  }
  const routes = JSON.parse(routeJson || '[]') as { dst?: string }[];
  for (const r of routes) {
    if (!r.dst || r.dst === 'default') continue;
    const [addr, len] = r.dst.split('/');
    try {
      used.push(network(addr!, len === undefined ? 32 : Number.parseInt(len, 10)));
    } catch {
      // not IPv4 (e.g. a multicast or broadcast keyword): not ours to avoid
    }
  }
  return used;
}

// A random free /24 of the benchmarking range, or null when all 512 are taken.
export function pickFreeSubnet(used: readonly Ipv4Network[], exclude: readonly Ipv4Network[] = []): Ipv4Network | null {
  const free: Ipv4Network[] = [];
  for (let i = 0; i < SUBNETS_IN_RANGE; i++) {
    const candidate = { base: (BENCHMARK_RANGE_BASE + (i << 8)) >>> 0, prefix: SUBNET_PREFIX };
    if (used.some((u) => overlaps(u, candidate)) || exclude.some((e) => overlaps(e, candidate))) continue;
    free.push(candidate);
  }
  return free.length === 0 ? null : free[randomInt(free.length)]!;
}

// Address number HOST (1 = the bridge, 2.. = hosts) inside SUBNET.
export function addressIn(subnet: Ipv4Network, host: number): string {
  return intToIpv4((subnet.base + host) >>> 0);
}
