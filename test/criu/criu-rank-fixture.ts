// Shared by the CRIU dump/restore tests: builds the native helpers and the
// counter program, starts a rank exactly as the agent does
//   unshare --pid --fork --kill-child=SIGKILL setsid ferry-init PROGRAM ARGS
// with stdout/stderr appended to log files, and cleans up every process and
// folder it made.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { initPidOf, initReady } from '../../src/agent/rank-supervisor.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const BUILD_DIR = join(ROOT, 'build');
export const FERRY_INIT = join(BUILD_DIR, 'bin', 'ferry-init');
export const FERRY_RESTORE = join(BUILD_DIR, 'bin', 'ferry-restore');
export const COUNTER_SOURCE = join(ROOT, 'test', 'criu', 'programs', 'counter.c');
/** counter.c's exit code after SIGUSR1 and its FINISH_LINES lines. */
export const COUNTER_EXIT_CODE = 7;
export const WAIT_LIMIT_MS = 60_000;
const POLL_MS = 10;

export class RankFixture {
  private readonly processes: ChildProcess[] = [];
  private readonly pids = new Set<number>();
  private readonly dirs: string[] = [];

  /** Builds ferry-init, ferry-restore and the counter; returns the counter's path. */
  build(): string {
    execFileSync('make', ['-s', '-C', join(ROOT, 'src', 'native'), `BUILD_DIR=${BUILD_DIR}`], { stdio: 'pipe' });
    const dir = this.tmp('ferry-criu-bin-');
    const counter = join(dir, 'counter');
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', counter, COUNTER_SOURCE], { stdio: 'pipe' });
    return counter;
  }

  tmp(prefix: string): string {
    const d = mkdtempSync(join(tmpdir(), prefix));
    this.dirs.push(d);
    return d;
  }

  /** Remembers a process (e.g. a restored init) to SIGKILL at cleanup. */
  track(pid: number): void {
    this.pids.add(pid);
  }

  trackChild(child: ChildProcess): void {
    this.processes.push(child);
  }

  /** Starts a rank as the agent does; resolves once its ferry-init runs the program. */
  async startRank(argv: string[], logOut: string, logErr: string, cwd?: string): Promise<{ unshare: ChildProcess; initPid: number }> {
    mkdirSync(resolve(logOut, '..'), { recursive: true });
    const out = openSync(logOut, 'a');
    const err = openSync(logErr, 'a');
    let unshare: ChildProcess;
    try {
      unshare = spawn('unshare', ['--pid', '--fork', '--kill-child=SIGKILL', 'setsid', FERRY_INIT, ...argv], {
        stdio: ['ignore', out, err],
        detached: true,
        cwd,
      });
    } finally {
      closeSync(out);
      closeSync(err);
    }
    this.processes.push(unshare);
    const initPid = await waitFor('ferry-init to run the program', () => {
      if (unshare.exitCode !== null) throw new Error(`the rank exited ${unshare.exitCode}: ${readText(logErr)}`);
      const init = initPidOf(unshare.pid!);
      return init && initReady(init) ? init : undefined;
    });
    this.pids.add(initPid);
    return { unshare, initPid };
  }

  async cleanup(): Promise<void> {
    for (const pid of this.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const p of this.processes) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGKILL');
        await exited(p);
      }
    }
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
  }
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false): Promise<T> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

export function exited(p: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve({ code: p.exitCode, signal: p.signalCode });
  return new Promise((r) => p.once('exit', (code, signal) => r({ code, signal })));
}

export function readText(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

/** Complete lines of a log (a line still being written is left out). */
export function logLines(path: string): string[] {
  const text = readText(path);
  return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').slice(0, -1);
}

/** PIDs of a process in each PID namespace it belongs to, outermost first. */
export function nsPids(pid: number): number[] {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('NSpid:'));
  return (line ?? '').split(/\s+/).slice(1).filter((x) => x).map(Number);
}

export function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
