// Is a process on this host running, stopped, frozen or gone? The coordinator
// asks when a launcher process (a ferry rank-exec) stops renewing its lease:
// one that a batch system suspended without a SIGTSTP first (SIGSTOP alone,
// as PBS and Torque do, or a frozen cgroup) cannot say so itself, and must not
// be taken for one that was killed (launcher-leases.ts).
import { readFile } from 'node:fs/promises';
import { ProcessRunState } from '../gen/proto.js';
import { processStartTicks, processStateCode } from '../common/proc-stat.js';

export interface ProcessState {
  state: ProcessRunState;
  detail: string;
}

export async function readProcessState(pid: number, startTicks: number): Promise<ProcessState> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return { state: ProcessRunState.PROCESS_GONE, detail: `no process ${pid}` };
  }
  const ticks = processStartTicks(stat);
  if (startTicks > 0 && ticks !== startTicks) {
    return { state: ProcessRunState.PROCESS_GONE, detail: `pid ${pid} is another process now (started at tick ${ticks}, not ${startTicks})` };
  }
  const code = processStateCode(stat);
  if (code === 'Z' || code === 'X') return { state: ProcessRunState.PROCESS_GONE, detail: `pid ${pid} has exited (state ${code})` };
  if (code === 'T' || code === 't') return { state: ProcessRunState.PROCESS_STOPPED, detail: `pid ${pid} is stopped (state ${code})` };
  const frozen = await frozenCgroup(pid);
  if (frozen) return { state: ProcessRunState.PROCESS_FROZEN, detail: `pid ${pid} is in the frozen cgroup ${frozen}` };
  return { state: ProcessRunState.PROCESS_RUNNING, detail: `pid ${pid} runs (state ${code})` };
}

/** The process's cgroup if a freezer holds it: cgroup v2 (cgroup.events "frozen 1") or v1's freezer. */
async function frozenCgroup(pid: number): Promise<string | undefined> {
  const lines = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
  for (const line of lines.split('\n')) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (path === undefined) continue;
    if (controllers === '') {
      // cgroup2 mounted alone, or beside v1 controllers (a "hybrid" host).
      for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
        const events = await readFile(`${root}${path}/cgroup.events`, 'utf8').catch(() => '');
        if (/^frozen 1$/m.test(events)) return path;
      }
    } else if (controllers!.split(',').includes('freezer')) {
      const state = await readFile(`/sys/fs/cgroup/freezer${path}/freezer.state`, 'utf8').catch(() => '');
      if (state.trim() === 'FROZEN') return path;
    }
  }
  return undefined;
}
