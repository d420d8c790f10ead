// /proc/PID/stat fields Ferry reads: a process's state and its start time,
// which with its pid names one process (a later one may reuse the pid).
import { readFile } from 'node:fs/promises';

/** Field 22 of /proc/PID/stat (clock ticks after boot): with the pid, names one process. */
export function processStartTicks(stat: string): number | undefined {
  // After the command, which may hold spaces and parentheses: state is field 3, starttime field 22.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[19]);
  return Number.isFinite(ticks) ? ticks : undefined;
}

/** Field 3 of /proc/PID/stat: R, S, D (running, sleeping), T, t (stopped, traced), Z, X (exited) ... */
export function processStateCode(stat: string): string {
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

/** This process's own start ticks (a rank-exec names itself with them). */
export async function ownStartTicks(): Promise<number> {
  return processStartTicks(await readFile('/proc/self/stat', 'utf8')) ?? 0;
}
