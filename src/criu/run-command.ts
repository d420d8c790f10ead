import { type ChildProcess, spawn } from 'node:child_process';
import { type Writable } from 'node:stream';

// A finished child process: its exit code (null when a signal ended it or it
// never started), the signal, and everything it wrote.
export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  // Set when the program could not be started at all (ENOENT, EACCES...).
  spawnError?: string;
  timedOut: boolean;
}

export interface RunCommandOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** In a process group (and session) of its own: a signal to the caller's group does not reach it. */
  detached?: boolean;
}

/** A program started by startCommand, running or ended. */
export interface StartedCommand {
  readonly child: ChildProcess;
  /** Its descriptor 3, a pipe to write to (when asked for with `pipe3`). */
  readonly pipe3?: Writable;
  /** Starts the time limit now (startCommand with timeoutMs null starts none). */
  armTimeout(timeoutMs: number): void;
  readonly result: Promise<CommandResult>;
}

export function startCommand(
  command: string,
  args: readonly string[],
  options: Omit<RunCommandOptions, 'timeoutMs'> & { timeoutMs: number | null; pipe3?: boolean },
): StartedCommand {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: options.pipe3 ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  let spawnError: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  let ended = false;
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const pipe3 = options.pipe3 ? (child.stdio[3] as Writable) : undefined;
  pipe3?.on('error', () => {}); // EPIPE once the program has ended: its result says how
  const armTimeout = (timeoutMs: number): void => {
    if (ended || timer) return;
    timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    }, timeoutMs);
  };
  const result = new Promise<CommandResult>((resolve) => {
    child.on('error', (err) => {
      spawnError = err.message;
    });
    child.on('close', (code, signal) => {
      ended = true;
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      resolve({ code, signal, stdout, stderr, spawnError, timedOut });
    });
  });
  if (options.timeoutMs !== null) armTimeout(options.timeoutMs);
  return { child, pipe3, armTimeout, result };
}

const DEFAULT_COMMAND_TIMEOUT_MS = 60_000;
// After SIGTERM on timeout, how long before SIGKILL.
const KILL_GRACE_MS = 2_000;

// Runs a program to completion and collects its output; never throws, so
// callers can turn each failure into a message that names their own step.
export function runCommand(
  command: string,
  args: readonly string[],
  options: RunCommandOptions = {},
): Promise<CommandResult> {
  return startCommand(command, args, { ...options, timeoutMs: options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS }).result;
}

// One line describing how a command failed, for error messages.
export function describeFailure(result: CommandResult): string {
  if (result.spawnError) return result.spawnError;
  if (result.timedOut) return 'timed out';
  const tail = lastLines(`${result.stderr}\n${result.stdout}`, 3);
  const how = result.signal ? `killed by ${result.signal}` : `exit code ${result.code}`;
  return tail ? `${how}: ${tail}` : how;
}

export function lastLines(text: string, count: number): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .slice(-count)
    .join(' | ');
}
