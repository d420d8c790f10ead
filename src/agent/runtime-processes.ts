// The processes of a rank's tree that run Ferry's MPI runtime, found by the
// signal they catch: after MPI_Init the runtime catches SIGUSR2, its "resume
// after a flush" (src/runtime/init.c). ferry-init passes signals to its one
// child, the program it started; when that program is a wrapper script that
// runs the MPI program as its own child (`ferry run ./run.sh`, a common way to
// set up a rank's environment), a SIGUSR2 passed to the shell ended the shell
// (its default action), and with it the rank, at the first checkpoint. The
// resume goes to the runtime's process instead.
import { readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { processStateCode } from '../common/proc-stat.js';

/** Pids (in this agent's namespace) under `rootPid`, not itself, that catch `signal` (SigCgt). */
export function descendantsCatching(rootPid: number, signal: NodeJS.Signals): number[] {
  const signo = constants.signals[signal];
  const found: number[] = [];
  const seen = new Set<number>([rootPid]);
  const queue = childrenOf(rootPid);
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    if (catches(pid, signo)) found.push(pid);
    queue.push(...childrenOf(pid));
  }
  return found;
}

/** The children of `pid` (of all its threads), in this agent's namespace; none once it is gone. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) for (const c of text.split(/\s+/)) out.push(Number(c));
    }
  } catch {
    /* the process is gone */
  }
  return out;
}

function catches(pid: number, signo: number): boolean {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('SigCgt:'));
    if (!line) return false;
    const mask = BigInt(`0x${line.slice('SigCgt:'.length).trim()}`);
    return ((mask >> BigInt(signo - 1)) & 1n) === 1n;
  } catch {
    return false;
  }
}

/** Whether any process of the tree at `rootPid` (the root included) is stopped (state T or t). */
export function treeHasStopped(rootPid: number): boolean {
  const queue = [rootPid];
  const seen = new Set<number>();
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    if (seen.has(pid)) continue;
    seen.add(pid);
    let code = '';
    try {
      code = processStateCode(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      continue; // gone
    }
    if (code === 'T' || code === 't') return true;
    queue.push(...childrenOf(pid));
  }
  return false;
}
