// The processes of a program in one namespace host of a test cluster, with
// their state: which copies of a rank run (or are stopped) where.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { TestCluster } from './cluster.js';

/** The processes in HOST's network namespace whose executable's path ends with `/NAME`, with their state ("S", "T", ...). */
export function programOn(c: TestCluster, host: string, name: string): { pid: number; state: string }[] {
  const ns = c.hosts.find((h) => h.name === host)!.netns;
  const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean);
  const found: { pid: number; state: string }[] = [];
  for (const pid of pids) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]!.endsWith(`/${name}`)) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      found.push({ pid: Number(pid), state: stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}
