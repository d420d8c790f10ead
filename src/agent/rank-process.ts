// What the agent can learn about a rank's process without being its parent:
// whether it still runs (the same process, not a later one with the same pid)
// and, once it has ended, the status ferry-init left in its status file.
import { readFileSync, rmSync } from 'node:fs';
import { constants as osConstants } from 'node:os';

/** First line of a status file (src/native/ferry-init.c writes it). */
export const EXIT_STATUS_MAGIC = 'ferry-exit-status 1';

/** The start time of a process (clock ticks after boot), or undefined when there is no such process. */
export function processStartTicks(pid: number): number | undefined {
  const stat = readStat(pid);
  return stat ? Number(stat[19]) : undefined;
}

/** True while `pid` is the process that started at `startTicks` and has not ended (a zombie has ended). */
export function processAlive(pid: number, startTicks: number): boolean {
  const stat = readStat(pid);
  if (!stat) return false;
  return stat[0] !== 'Z' && stat[0] !== 'X' && Number(stat[19]) === startTicks;
}

/** Fields of /proc/PID/stat after the command name: [0] is the state, [19] the start time. */
function readStat(pid: number): string[] | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

export interface ExitStatus {
  /** The program's exit code, or 128 + N when signal N killed it (ferry-init's convention). */
  exitCode: number;
  /** The name of the signal that killed the program, or ''. */
  signal: string;
}

/** Reads a status file; undefined when there is none or it is not one. */
export function readExitStatus(path: string): ExitStatus | undefined {
  if (!path) return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const [magic, line] = text.split('\n');
  const m = /^code=(-?\d+) signal=(\d+)$/.exec(line ?? '');
  if (magic !== EXIT_STATUS_MAGIC || !m) return undefined;
  const signo = Number(m[2]);
  const name = signo ? Object.entries(osConstants.signals).find(([, n]) => n === signo)?.[0] ?? `SIG${signo}` : '';
  return { exitCode: Number(m[1]), signal: name };
}

export function removeExitStatus(path: string): void {
  if (path) rmSync(path, { force: true });
}

/** The value of one environment variable of a running process (root reads any). */
export function processEnv(pid: number, name: string): string | undefined {
  try {
    for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
      if (kv.startsWith(`${name}=`)) return kv.slice(name.length + 1);
    }
  } catch {
    /* gone */
  }
  return undefined;
}
