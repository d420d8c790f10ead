// Restores one rank from its CRIU images on this host, into a fresh PID
// namespace (the dumped root is PID 1 of its own namespace, so CRIU
// recreates one). The caller already runs in the target host's network
// namespace.
//
// The restore runs under ferry-restore (src/native/ferry-restore.c), which
// becomes the restored ferry-init's parent: its exit status is the rank's
// true exit status (exit code, or 128+N for signal N), and killing it with
// SIGKILL takes the rank with it, as with `unshare --kill-child` at start.
//
// Output: the rank's stdout and stderr were regular files opened for append.
// CRIU would reopen them by path; on another host that path may not exist,
// and the agent wants the output in its own log files. So the files at fds
// 1 and 2 (read from the images) are handed over with CRIU's --inherit-fd:
// ferry-restore gets logOut and logErr (opened for append) as fds 3 and 4,
// and CRIU installs them in place of the dumped files.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { ErrorCode } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';
import { packageRoot } from '../protocol/proto-root.js';
import { type CriuInstall } from './criu-install.js';
import { criuArgv } from './criu-launch.js';
import { describeCriuFailure } from './criu-dump.js';
import { type ImageSummary, outputFiles, readImages } from './criu-images.js';
import { takeGhostFileTurn } from './ghost-file-turns.js';

const trace = tracer('criu');

export const CRIU_RESTORE_TIMEOUT_MS = 10 * 60_000;
export const RESTORE_LOG_NAME = 'restore.log';
const RESTORE_PIDFILE_NAME = 'restore.pid';
/** ferry-restore's exit code when CRIU failed (nothing was restored). */
export const FERRY_RESTORE_FAILED_EXIT = 125;
// The fds ferry-restore (and so CRIU) gets the new log files on.
const OUT_INHERIT_FD = 3;
const ERR_INHERIT_FD = 4;
const STDERR_KEEP_CHARS = 4096;

export interface RestoreRankOptions {
  criu: Pick<CriuInstall, 'command'>;
  imagesDir: string;
  /** Files the restored rank's stdout and stderr append to from now on. */
  logOut: string;
  logErr: string;
  /** ferry-restore; default build/bin/ferry-restore of this package. */
  helperPath?: string;
  /** Where CRIU's restore.log, stats-restore and restore.pid go; default
   * imagesDir (pass one to leave the images untouched, e.g. a shared copy). */
  workDir?: string;
  /** The decoded images, when the caller has them already (precheck). */
  summary?: ImageSummary;
  timeoutMs?: number;
}

export interface RestoredRank {
  /** ferry-restore: its exit is the rank's exit (exit code, or 128+N). */
  child: ChildProcess;
  /** The restored ferry-init, as this PID namespace sees it (signal it, not `child`). */
  initPid: number;
  durationMs: number;
  /** Dumped paths of stdout/stderr that now point at logOut/logErr. */
  remapped: { path: string; to: string }[];
  logFile: string;
}

export function ferryRestorePath(): string {
  return join(packageRoot(), 'build', 'bin', 'ferry-restore');
}

/** CRIU names a regular file for --inherit-fd by its path without the leading slash. */
function inheritKey(path: string): string {
  return path.replace(/^\/+/, '');
}

export async function restoreRank(opts: RestoreRankOptions): Promise<RestoredRank> {
  const { imagesDir } = opts;
  const summary = opts.summary ?? (await readImages(imagesDir));
  // Only a tree whose root was PID 1 of its own namespace restores without
  // PID clashes (FACTS.md): that is how ranks are started.
  if (summary.processes[0]?.pid !== 1) {
    throw new FerryError(
      ErrorCode.BAD_REQUEST,
      `restore of ${imagesDir}: the dumped root has pid ${summary.processes[0]?.pid}, not 1: not a rank in its own PID namespace`,
    );
  }
  // Restores that recreate the same ghost file (a rebuilt executable) take turns (ghost-file-turns.ts).
  const turn = await takeGhostFileTurn(summary, opts.timeoutMs ?? CRIU_RESTORE_TIMEOUT_MS);
  if (turn.paths.length > 0) trace(`restore ${imagesDir}: has the turn for ${turn.paths.join(', ')}`);
  try {
    return await runRestore(opts, summary);
  } finally {
    await turn.release();
  }
}

/** ferry-restore running CRIU, until it reports the restored ferry-init's pid (CRIU is done then). */
async function runRestore(opts: RestoreRankOptions, summary: ImageSummary): Promise<RestoredRank> {
  const { criu, imagesDir, logOut, logErr } = opts;
  const outputs = outputFiles(summary);
  const workDir = opts.workDir ?? imagesDir;
  const logFile = join(workDir, RESTORE_LOG_NAME);
  const pidFile = join(workDir, RESTORE_PIDFILE_NAME);
  const helper = opts.helperPath ?? ferryRestorePath();
  const timeoutMs = opts.timeoutMs ?? CRIU_RESTORE_TIMEOUT_MS;

  const remapped = [
    ...outputs.out.map((path) => ({ path, to: logOut, fd: OUT_INHERIT_FD })),
    ...outputs.err.map((path) => ({ path, to: logErr, fd: ERR_INHERIT_FD })),
  ];
  const args = [
    pidFile,
    ...criuArgv(criu.command),
    'restore',
    '--images-dir', imagesDir,
    // restore.log, stats-restore: kept out of the images when workDir is given.
    '--work-dir', workDir,
    '--log-file', logFile,
    '-v4',
    '--file-locks',
    ...remapped.flatMap((r) => ['--inherit-fd', `fd[${r.fd}]:${inheritKey(r.path)}`]),
  ];

  let outFd: number | undefined;
  let errFd: number | undefined;
  let child: ChildProcess;
  try {
    mkdirSync(workDir, { recursive: true });
    mkdirSync(dirname(logOut), { recursive: true });
    mkdirSync(dirname(logErr), { recursive: true });
    outFd = openSync(logOut, 'a');
    errFd = openSync(logErr, 'a');
    trace(`restore ${imagesDir}: ${helper} ${args.join(' ')}`);
    child = spawn(helper, args, { stdio: ['ignore', 'pipe', 'pipe', outFd, errFd], detached: true });
  } catch (e) {
    throw new FerryError(ErrorCode.SPAWN_FAILED, `restore of ${imagesDir}: cannot start ${helper}: ${errorMessage(e)}`);
  } finally {
    if (outFd !== undefined) closeSync(outFd);
    if (errFd !== undefined) closeSync(errFd);
  }

  const started = performance.now();
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-STDERR_KEEP_CHARS);
  });
  const initPid = await new Promise<number>((resolve, reject) => {
    let settled = false;
    const fail = async (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const helperErr = stderr.trim() ? `\nferry-restore: ${stderr.trim()}` : '';
      reject(new FerryError(ErrorCode.CRIU_FAILED, `${await describeCriuFailure(`criu restore of ${imagesDir} failed (${why})`, logFile)}${helperErr}`));
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // the restored tree, if any, dies with it (parent-death signal)
      void fail(`no restored pid after ${timeoutMs} ms`);
    }, timeoutMs);
    child.on('error', (e) => void fail(`cannot run ${helper}: ${e.message}`));
    // 'close', not 'exit': the pid line may still sit in the pipe when 'exit' fires.
    child.on('close', (code, signal) => void fail(signal ? `ferry-restore killed by ${signal}` : `ferry-restore exit code ${code}`));
    createInterface({ input: child.stdout! }).once('line', (line) => {
      const m = /^restored (\d+)$/.exec(line.trim());
      if (!m) {
        child.kill('SIGKILL');
        void fail(`unexpected line from ferry-restore: ${line}`);
        return;
      }
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(Number(m[1]));
    });
  });
  const durationMs = performance.now() - started;
  trace(`restored ${imagesDir}: init pid ${initPid} in ${durationMs.toFixed(1)} ms`);
  return { child, initPid, durationMs, remapped: remapped.map(({ path, to }) => ({ path, to })), logFile };
}

/** The rank's exit status once ferry-restore ends (128+N if ferry-restore itself was killed by signal N). */
export function restoredExit(rank: RestoredRank): Promise<number> {
  const { child } = rank;
  const status = (code: number | null, signal: NodeJS.Signals | null) =>
    code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(status(child.exitCode, child.signalCode));
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(status(code, signal))));
}
