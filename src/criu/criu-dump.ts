// Dumps one rank with CRIU: the process tree rooted at the rank's ferry-init
// (PID 1 of its own PID namespace). The runtime has closed every socket
// first; what stays open is regular files (the rank's logs, opened for
// append) and whatever else the program opened.
import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { ErrorCode } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';
import { type CriuInstall, cleanCriuOutput } from './criu-install.js';
import { type DumpStats, readDumpStats } from './criu-images.js';
import { describeFailure, runCommand } from './run-command.js';

const trace = tracer('criu');

/** A dump of 512 MiB takes about 2 s here (FACTS.md); this only catches a hung CRIU. */
export const CRIU_DUMP_TIMEOUT_MS = 10 * 60_000;
/** How many lines of CRIU's log an error message carries. */
export const CRIU_LOG_TAIL_LINES = 12;
export const DUMP_LOG_NAME = 'dump.log';

export interface DumpRankOptions {
  criu: Pick<CriuInstall, 'command'>;
  /** The rank's ferry-init as this (the agent's) PID namespace sees it. */
  initPid: number;
  /** Where the images go: created if needed, must be empty. */
  imagesDir: string;
  /** Checkpoint-and-continue: the tree runs on after the dump; otherwise CRIU kills it. */
  leaveRunning: boolean;
  /** CRIU's log; default imagesDir/dump.log (not counted in `files`). */
  logFile?: string;
  timeoutMs?: number;
}

export interface DumpResult {
  imagesDir: string;
  /** Every image file CRIU wrote (the log excluded), by name, sorted. */
  files: { name: string; sizeBytes: number }[];
  totalBytes: number;
  /** Wall time of the `criu dump` command. */
  durationMs: number;
  /** CRIU's own figures (stats-dump), when it wrote them. */
  stats?: DumpStats;
  logFile: string;
}

/** The last lines of a CRIU log, errors first, for error messages. */
export async function criuLogTail(logFile: string, lines = CRIU_LOG_TAIL_LINES): Promise<string> {
  let text: string;
  try {
    text = await readFile(logFile, 'utf8');
  } catch {
    return `(no log at ${logFile})`;
  }
  const all = cleanCriuOutput(text).split('\n');
  const errors = all.filter((l) => /Error|Warn/.test(l)).slice(-lines);
  const tail = all.slice(-lines).filter((l) => !errors.includes(l));
  return [...errors, ...tail].join('\n');
}

export async function dumpRank(opts: DumpRankOptions): Promise<DumpResult> {
  const { criu, initPid, imagesDir, leaveRunning } = opts;
  if (!Number.isInteger(initPid) || initPid <= 1) {
    throw new FerryError(ErrorCode.BAD_REQUEST, `dump: ${initPid} is not the pid of a rank's ferry-init`);
  }
  await mkdir(imagesDir, { recursive: true });
  const existing = await readdir(imagesDir);
  if (existing.length > 0) {
    throw new FerryError(ErrorCode.BAD_REQUEST, `dump: images folder ${imagesDir} is not empty (${existing.slice(0, 3).join(', ')})`);
  }
  const logFile = opts.logFile ?? join(imagesDir, DUMP_LOG_NAME);
  const args = [
    'dump',
    '--tree', String(initPid),
    '--images-dir', imagesDir,
    '--log-file', logFile,
    '-v4',
    // A lock a rank holds on a file is dumped and taken again at restore;
    // without this CRIU refuses to dump a tree holding one.
    '--file-locks',
    ...(leaveRunning ? ['--leave-running'] : []),
  ];
  trace(`dump pid ${initPid} -> ${imagesDir}${leaveRunning ? ' (leave running)' : ''}`);
  const started = performance.now();
  const r = await runCommand(criu.command, args, { timeoutMs: opts.timeoutMs ?? CRIU_DUMP_TIMEOUT_MS });
  const durationMs = performance.now() - started;
  if (r.code !== 0) {
    const why = r.timedOut ? `timed out after ${opts.timeoutMs ?? CRIU_DUMP_TIMEOUT_MS} ms` : describeFailure(r);
    throw new FerryError(
      ErrorCode.INTERNAL,
      `criu dump of pid ${initPid} into ${imagesDir} failed (${why}); ${logFile}:\n${await criuLogTail(logFile)}`,
    );
  }
  const logName = isAbsolute(logFile) ? relative(imagesDir, logFile) : logFile;
  const files: DumpResult['files'] = [];
  try {
    for (const name of (await readdir(imagesDir)).sort()) {
      if (name === logName) continue;
      files.push({ name, sizeBytes: (await stat(join(imagesDir, name))).size });
    }
  } catch (e) {
    throw new FerryError(ErrorCode.INTERNAL, `criu dump of pid ${initPid}: cannot list ${imagesDir}: ${errorMessage(e)}`);
  }
  const totalBytes = files.reduce((n, f) => n + f.sizeBytes, 0);
  const stats = await readDumpStats(imagesDir).catch(() => undefined);
  trace(`dumped pid ${initPid}: ${files.length} files, ${totalBytes} bytes in ${durationMs.toFixed(1)} ms`);
  return { imagesDir, files, totalBytes, durationMs, stats, logFile };
}
