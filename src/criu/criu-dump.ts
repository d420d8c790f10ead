// Dumps one rank with CRIU: the process tree rooted at the rank's ferry-init
// (PID 1 of its own PID namespace). The runtime has closed every socket
// first; what stays open is regular files (the rank's logs, opened for
// append) and whatever else the program opened.
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { copyFile, mkdir, open, readFile, rmdir, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { ErrorCode } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';
import { type CriuInstall, cleanCriuOutput } from './criu-install.js';
import { runCriu } from './criu-launch.js';
import { type DumpStats, readDumpStats } from './criu-images.js';
import { explainForeignSocket } from './foreign-sockets.js';
import { type FileLock, acquireFileLock } from './file-lock.js';
import { type CommandResult, describeFailure } from './run-command.js';
import { packageRoot } from '../protocol/proto-root.js';

const trace = tracer('criu');

/** A dump of 512 MiB takes about 2 s here (FACTS.md); this only catches a hung CRIU. */
export const CRIU_DUMP_TIMEOUT_MS = 10 * 60_000;
/** How many lines of CRIU's log an error message carries. */
export const CRIU_LOG_TAIL_LINES = 12;
export const DUMP_LOG_NAME = 'dump.log';
/**
 * The largest file deleted while a rank holds it (its executable, rebuilt
 * while the job ran; an unlinked scratch file) that a dump carries in the
 * image, where CRIU's default is 1 MiB: a restore needs its content, which
 * no other copy has. CRIU counts the blocks the file has on disk (a sparse
 * file counts its data). A larger one fails the dump, naming the file.
 */
export const CRIU_GHOST_LIMIT_BYTES = 1024 ** 3;

/**
 * The scratch directory CRIU's parasite makes in the dumped root task's
 * working directory (criu/pie/parasite.c, get_proc_fd): a task whose /proc
 * belongs to another PID namespace (every rank: PID 1 of its own namespace,
 * no mount namespace of its own) gets a fresh proc mounted there, opened,
 * detached and the directory removed again, within a few milliseconds early
 * in the dump. Two dumps of roots with the same working directory (the ranks
 * of a job) collide on the name ("Can't create a directory (-17)"), and one
 * left behind by a dump killed at that moment breaks every later dump there.
 */
export const CRIU_PROC_SCRATCH_NAME = 'proc.crtools';
/** Moves the lock directory below (a test run keeps its locks in a directory of its own). */
export const PROC_SCRATCH_LOCK_DIR_ENV = 'FERRY_CRIU_LOCK_DIR';

/**
 * Dumps whose roots share a working directory take turns through a lock file
 * here, one per directory: the same for every agent of the machine.
 */
export function procScratchLockDir(): string {
  return process.env[PROC_SCRATCH_LOCK_DIR_ENV] || join(tmpdir(), 'ferry-criu-scratch-locks');
}

export interface DumpRankOptions {
  criu: Pick<CriuInstall, 'command'>;
  /** The rank's ferry-init as this (the agent's) PID namespace sees it. */
  initPid: number;
  /** Where the images go: created if needed, must be empty. */
  imagesDir: string;
  /** Checkpoint-and-continue: the tree runs on after the dump; otherwise CRIU kills it. */
  leaveRunning: boolean;
  /**
   * The tree is left stopped after the dump (CRIU's --leave-stopped: SIGSTOP to each process; SIGCONT
   * continues it), neither running on nor killed: a migration's or a checkpoint --stop's rank.
   */
  leaveStopped?: boolean;
  /** CRIU's log; default imagesDir/dump.log (not counted in `files`). */
  logFile?: string;
  /**
   * Where a failed dump's log is copied and named in the error: the images
   * folder, log included, goes when the epoch is aborted.
   */
  keepFailedLogAs?: string;
  timeoutMs?: number;
  /**
   * Whether the root task's working directory is its own, so no other dump's
   * root can work there (a rank's private init directory, see
   * src/agent/rank-init-dir.ts): then the scratch lock is not taken. It costs
   * two process spawns and tens of ms per dump on a loaded node.
   */
  cwdIsPrivate?: (cwd: string) => boolean;
  /**
   * Whether Ferry's CRIU plugin records the size of the tree's append-only
   * files while it is frozen (APPEND_FILES_NAME); default true; false: a
   * plain CRIU dump, for comparisons.
   */
  recordAppendFiles?: boolean;
  /** Where the plugin is (default criuPluginDir(); tests point it elsewhere). */
  criuPluginDir?: string;
  /** CRIU's --action-script, if any (tests use one to hold a dump at pre-dump). */
  actionScript?: string;
  /** The largest deleted file the image may carry (default CRIU_GHOST_LIMIT_BYTES). */
  ghostLimitBytes?: number;
}

/** What Ferry's CRIU plugin writes into the images: "SIZE PATH" of each file the tree had open write-only with O_APPEND. */
export const APPEND_FILES_NAME = 'append-files.ferry';

/**
 * build/lib/criu-plugins of this package: CRIU's --libdir for a rank's dump,
 * holding ferry-append-files.so (src/native/ferry-append-files.c).
 */
export function criuPluginDir(): string {
  return join(packageRoot(), 'build', 'lib', 'criu-plugins');
}
const APPEND_FILES_PLUGIN = 'ferry-append-files.so';

/**
 * Per CRIU command, why it could not load the plugin (its dump stopped
 * before touching the tree, see pluginLoadFailure): later dumps go without.
 */
const pluginRefusals = new Map<string, string>();

/**
 * CRIU's words for a plugin it could not load (dlopen failed: say, a libc
 * older than the one the plugin was built against) or start; it stops then,
 * before it seizes any task, so the dump can run again without it.
 */
function pluginLoadFailure(log: string, pluginDir: string): string | undefined {
  const lines = cleanCriuOutput(log).split('\n');
  const line = lines.find(
    (l) => l.includes(pluginDir) && /Unable to load|Corrupted plugin|Can't load plugin|Unable to open directory/.test(l),
  ) ?? lines.find((l) => /Failed in init\(\d+\) of "ferry-append-files"/.test(l));
  return line?.replace(/^\([0-9.]+\)\s*/, '').trim();
}

/**
 * CRIU 4.x dumps the root task first (its parasite makes the scratch
 * directory twice: for its /proc fd and for /proc/self/cgroup) and then each
 * other task of the tree, announcing each with this line. Once it names a
 * task other than the root, the root's parasite is done with the directory.
 */
const DUMPING_TASK_RE = /Dumping task \(pid: ([0-9]+)/g;
/** How often the dump log is read for that line while the lock is held. */
const SCRATCH_LOG_POLL_MS = 5;

/**
 * Lets concurrent dumps run safely: holds the lock of the root task's
 * working directory from before CRIU starts until CRIU's log shows that the
 * root task is done (or until CRIU ends, if that line never comes: safe,
 * only slower). So dumps of ranks with one working directory start a few
 * hundred milliseconds apart instead of one after another, on this machine
 * across agents too (namespace hosts share the mount namespace).
 */
class ProcScratchGuard {
  private lock?: FileLock;
  private timer?: NodeJS.Timeout;
  private released = false;

  private constructor(private readonly scratch: string) {}

  static async acquire(initPid: number, timeoutMs: number, cwdIsPrivate?: (cwd: string) => boolean): Promise<ProcScratchGuard> {
    let cwd: string;
    let key: string;
    try {
      cwd = readlinkSync(`/proc/${initPid}/cwd`);
      const st = statSync(`/proc/${initPid}/cwd`);
      key = `${st.dev}-${st.ino}`;
    } catch (e) {
      // No such process (or no cwd): CRIU fails on it by itself, with its log.
      trace(`dump pid ${initPid}: no working directory to guard (${errorMessage(e)})`);
      const none = new ProcScratchGuard('');
      none.released = true;
      return none;
    }
    const guard = new ProcScratchGuard(join(cwd, CRIU_PROC_SCRATCH_NAME));
    if (cwdIsPrivate?.(cwd)) {
      guard.released = true; // nothing to take turns for
    } else {
      await mkdir(procScratchLockDir(), { recursive: true });
      guard.lock = await acquireFileLock(join(procScratchLockDir(), `${key}.lock`), timeoutMs);
    }
    // Under the lock (or in a directory of its own) no dump of ours is using it: one left here is stale.
    if (existsSync(guard.scratch)) {
      trace(`removing a stale ${guard.scratch} (a dump was killed while it existed)`);
      try {
        await rmdir(guard.scratch);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
          await guard.release();
          throw new FerryError(
            ErrorCode.INTERNAL,
            `dump of pid ${initPid}: ${guard.scratch}, left by an interrupted CRIU dump, cannot be removed (${errorMessage(e)}); ` +
              'unmount it (umount -l) and remove it by hand',
          );
        }
      }
    }
    return guard;
  }

  /** Releases the lock as soon as `logFile` (being written by CRIU) shows that it dumps a task other than `rootPid`. */
  watchLog(logFile: string, rootPid: number): void {
    let offset = 0;
    let carry = '';
    let reading = false;
    const buf = Buffer.alloc(64 * 1024);
    this.timer = setInterval(() => {
      if (reading || this.released) return;
      reading = true;
      void (async () => {
        let fh;
        try {
          fh = await open(logFile, 'r');
          for (;;) {
            const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
            if (bytesRead === 0) break;
            offset += bytesRead;
            const text = carry + buf.toString('latin1', 0, bytesRead);
            const cut = text.lastIndexOf('\n');
            carry = text.slice(cut + 1);
            const past = [...text.slice(0, cut + 1).matchAll(DUMPING_TASK_RE)].some((m) => Number(m[1]) !== rootPid);
            if (past) {
              await this.release();
              break;
            }
          }
        } catch {
          // no log yet
        } finally {
          await fh?.close();
          reading = false;
        }
      })();
    }, SCRATCH_LOG_POLL_MS);
  }

  /** Idempotent; the lock is released at most once. */
  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.released) return;
    this.released = true;
    await this.lock?.release();
  }

  get early(): boolean {
    return this.released;
  }
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

/** CRIU's log lines "Error (file.c:N): what": each distinct "what", in order. */
const CRIU_ERROR_LINE_RE = /\bError \([^)]*\):\s*(.+)$/;
const CRIU_ERRORS_SHOWN = 3;
// CRIU's error for a deleted file over --ghost-limit.
const GHOST_TOO_BIG_RE = /Can't dump ghost file (.+) of (\d+) size, increase limit/;

/**
 * Below this many free bytes, a disk CRIU wrote to when it failed without a
 * word counts as full: a dump stopped by ENOSPC leaves less than a page.
 */
const FULL_DISK_FREE_BYTES = 1024 * 1024;

/** Free bytes on the disk of `dir` for root, or undefined when it cannot be asked. */
async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const s = await statfs(dir);
    return s.bfree * s.bsize;
  } catch {
    return undefined;
  }
}

/**
 * A failed CRIU run for the operator: `what` failed, with CRIU's own first
 * error messages (its log's tail when it logged none), and where the whole
 * log is. A full disk says so first: it is the operator's to fix.
 *
 * `writtenDir` is where CRIU was writing (a dump's images). When that disk is
 * full, the log kept beside the images may have been cut short before CRIU
 * could log its error; the disk itself then says why.
 */
export async function describeCriuFailure(what: string, logFile: string, writtenDir?: string, ghostLimit = CRIU_GHOST_LIMIT_BYTES): Promise<string> {
  let text: string | undefined;
  try {
    text = await readFile(logFile, 'utf8');
  } catch {
    // told below
  }
  const lines = cleanCriuOutput(text ?? '').split('\n');
  const errors = [...new Set(lines.flatMap((l) => CRIU_ERROR_LINE_RE.exec(l)?.[1]?.trim() ?? []))].slice(0, CRIU_ERRORS_SHOWN);
  if (errors.length === 0 && writtenDir !== undefined) {
    const free = await freeBytes(writtenDir);
    if (free !== undefined && free < FULL_DISK_FREE_BYTES) {
      return `no space left on device: ${what}: No space left on device on the disk of ${writtenDir} (${free} bytes free), and CRIU's log stops short of its error (CRIU's log: ${logFile})`;
    }
  }
  if (text === undefined) return `${what} (no log at ${logFile})`;
  if (errors.length === 0) return `${what}; ${logFile} ends:\n${await criuLogTail(logFile)}`;
  const foreign = explainForeignSocket(lines);
  if (foreign) return `${what}: ${foreign} (CRIU: ${errors.join('; ')}; its log: ${logFile})`;
  const ghost = errors.map((e) => GHOST_TOO_BIG_RE.exec(e)).find(Boolean);
  if (ghost) {
    return (
      `${what}: the rank holds ${ghost[1]} (${ghost[2]} bytes), deleted since it was opened: a dump carries such a file in the image, ` +
      `up to ${ghostLimit} bytes on disk (CRIU's log: ${logFile})`
    );
  }
  const full = errors.some((e) => e.includes('No space left on device'));
  if (!full && writtenDir !== undefined) {
    // The log shares the full disk: its last error may be cut off mid-line ("pag"), before it could say so.
    const free = await freeBytes(writtenDir);
    if (free !== undefined && free < FULL_DISK_FREE_BYTES) {
      return (
        `no space left on device: ${what}: ${errors.join('; ')}; No space left on device on the disk of ${writtenDir} (${free} bytes free), ` +
        `and CRIU's log stops short of its error (CRIU's log: ${logFile})`
      );
    }
  }
  return `${full ? 'no space left on device: ' : ''}${what}: ${errors.join('; ')} (CRIU's log: ${logFile})`;
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

/**
 * Whether the working directory of the tree at `initPid` is its own (see
 * DumpRankOptions.cwdIsPrivate), with a scratch directory a killed dump left
 * there removed: then a dump needs no turn for it. False if it is not, or
 * the process is gone.
 */
export async function ownScratchReady(initPid: number, cwdIsPrivate: (cwd: string) => boolean): Promise<boolean> {
  let cwd: string;
  try {
    cwd = readlinkSync(`/proc/${initPid}/cwd`);
  } catch {
    return false;
  }
  if (!cwdIsPrivate(cwd)) return false;
  await (await ProcScratchGuard.acquire(initPid, CRIU_DUMP_TIMEOUT_MS, cwdIsPrivate)).release();
  return true;
}

/** Whether dumps by `criu` can have Ferry's plugin (built, and not refused by that CRIU); else why not. */
export function appendFilesPlugin(criuCommand: string, pluginDir = criuPluginDir()): { ok: true } | { ok: false; why: string } {
  const refused = pluginRefusals.get(criuCommand);
  if (refused) return { ok: false, why: refused };
  if (!existsSync(join(pluginDir, APPEND_FILES_PLUGIN))) return { ok: false, why: `no ${join(pluginDir, APPEND_FILES_PLUGIN)} ("npm run build")` };
  return { ok: true };
}

/** CRIU's arguments for the dump of the tree at `initPid` into `imagesDir`. */
export function dumpArgs(o: { initPid: number; imagesDir: string; logFile: string; ghostLimitBytes: number; leaveRunning: boolean; leaveStopped?: boolean; pluginDir?: string; actionScript?: string }): string[] {
  return [
    'dump',
    '--tree', String(o.initPid),
    '--images-dir', o.imagesDir,
    '--log-file', o.logFile,
    '-v4',
    // A lock a rank holds on a file is dumped and taken again at restore;
    // without this CRIU refuses to dump a tree holding one.
    '--file-locks',
    '--ghost-limit', `${Math.ceil(o.ghostLimitBytes / 1024)}K`,
    ...(o.leaveStopped ? ['--leave-stopped'] : o.leaveRunning ? ['--leave-running'] : []),
    ...(o.pluginDir ? ['--libdir', o.pluginDir] : []),
    ...(o.actionScript ? ['--action-script', o.actionScript] : []),
  ];
}

/** What the plugin reads (at the end of the dump, inside CRIU): the tree's root and the name of its record in the images. */
export function appendFilesEnv(initPid: number): NodeJS.ProcessEnv {
  return { ...process.env, FERRY_APPEND_FILES_ROOT: String(initPid), FERRY_APPEND_FILES_OUT: APPEND_FILES_NAME };
}

export async function dumpRank(opts: DumpRankOptions): Promise<DumpResult> {
  const { criu, initPid, imagesDir, leaveRunning, leaveStopped } = opts;
  // A build without the plugin, or a CRIU that cannot load it, dumps all the same; only the record of
  // append-only files is missing.
  const pluginDir = opts.criuPluginDir ?? criuPluginDir();
  const wantRecord = opts.recordAppendFiles ?? true;
  const plugin = appendFilesPlugin(criu.command, pluginDir);
  let recordAppendFiles = wantRecord && plugin.ok;
  if (wantRecord && !plugin.ok) trace(`dump pid ${initPid}: ${plugin.why}: append-only files go unrecorded`);
  if (!Number.isInteger(initPid) || initPid <= 1) {
    throw new FerryError(ErrorCode.BAD_REQUEST, `dump: ${initPid} is not the pid of a rank's ferry-init`);
  }
  // (synchronous, like the listing after CRIU: these run while the job is paused, see local-rank-steps.ts)
  mkdirSync(imagesDir, { recursive: true });
  const existing = readdirSync(imagesDir);
  if (existing.length > 0) {
    throw new FerryError(ErrorCode.BAD_REQUEST, `dump: images folder ${imagesDir} is not empty (${existing.slice(0, 3).join(', ')})`);
  }
  const logFile = opts.logFile ?? join(imagesDir, DUMP_LOG_NAME);
  const ghostLimitBytes = opts.ghostLimitBytes ?? CRIU_GHOST_LIMIT_BYTES;
  const args = (withPlugin: boolean) =>
    dumpArgs({ initPid, imagesDir, logFile, ghostLimitBytes, leaveRunning, leaveStopped, pluginDir: withPlugin ? pluginDir : undefined, actionScript: opts.actionScript });
  trace(`dump pid ${initPid} -> ${imagesDir}${leaveStopped ? ' (leave stopped)' : leaveRunning ? ' (leave running)' : ''}`);
  const timeoutMs = opts.timeoutMs ?? CRIU_DUMP_TIMEOUT_MS;
  const started = performance.now();
  const guard = await ProcScratchGuard.acquire(initPid, timeoutMs, opts.cwdIsPrivate);
  const waitedMs = performance.now() - started;
  const locked = !guard.early;
  let r;
  try {
    if (locked) guard.watchLog(logFile, initPid);
    // In a process group of its own: Ctrl-C at the agent's terminal, or a kill of the agent's group, must
    // not kill CRIU in the middle of a dump (a rank was lost when the soak, seed 53, killed an agent's group
    // during a DUMP); an agent that dies leaves the dump to finish, and the next agent waits for it
    // (orphan-dumps.ts).
    r = await runCriu(criu.command, args(recordAppendFiles), { timeoutMs, detached: true, env: recordAppendFiles ? appendFilesEnv(initPid) : undefined });
    const refused = recordAppendFiles && r.code !== 0 && !r.timedOut ? pluginLoadFailure(await readFile(logFile, 'utf8').catch(() => ''), pluginDir) : undefined;
    if (refused !== undefined) {
      pluginRefusals.set(criu.command, `CRIU cannot load Ferry's plugin (${refused})`);
      trace(`dump pid ${initPid}: CRIU cannot load Ferry's plugin (${refused}); dumping again without it, and so every later dump`);
      recordAppendFiles = false;
      for (const name of readdirSync(imagesDir)) rmSync(join(imagesDir, name), { recursive: true, force: true });
      r = await runCriu(criu.command, args(false), { timeoutMs, detached: true });
    }
  } finally {
    if (locked && !guard.early) trace(`dump pid ${initPid}: no sign of ${CRIU_PROC_SCRATCH_NAME} being done in ${logFile}; its directory stayed locked until CRIU ended`);
    await guard.release();
  }
  if (locked && waitedMs > 1) trace(`dump pid ${initPid}: waited ${waitedMs.toFixed(1)} ms for its working directory's turn`);
  return finishDump(r, { initPid, imagesDir, logFile, ghostLimitBytes, timeoutMs, keepFailedLogAs: opts.keepFailedLogAs, started });
}

/** A dump's result from CRIU's: the files it wrote, or an error naming why it failed (its log kept where asked). */
export async function finishDump(
  r: CommandResult,
  o: { initPid: number; imagesDir: string; logFile: string; ghostLimitBytes: number; timeoutMs: number; keepFailedLogAs?: string; started: number },
): Promise<DumpResult> {
  const { initPid, imagesDir, logFile } = o;
  const durationMs = performance.now() - o.started;
  if (r.code !== 0) {
    const why = r.timedOut ? `timed out after ${o.timeoutMs} ms` : describeFailure(r);
    const keep = o.keepFailedLogAs;
    // (a log that cannot be kept is named where it is: the failure to report is CRIU's)
    const log = keep
      ? await mkdir(dirname(keep), { recursive: true })
          .then(() => copyFile(logFile, keep))
          .then(
            () => keep,
            () => logFile,
          )
      : logFile;
    throw new FerryError(ErrorCode.CRIU_FAILED, await describeCriuFailure(`criu dump of pid ${initPid} into ${imagesDir} failed (${why})`, log, imagesDir, o.ghostLimitBytes));
  }
  const logName = isAbsolute(logFile) ? relative(imagesDir, logFile) : logFile;
  const files: DumpResult['files'] = [];
  try {
    // Synchronous on purpose: twenty-odd stats of local files take microseconds, while through the
    // libuv pool they queued behind the reads of the hashing that follows CRIU's writes (hash-workers.ts):
    // 5-50 ms of a migration's dump phase.
    for (const name of readdirSync(imagesDir).sort()) {
      if (name === logName) continue;
      files.push({ name, sizeBytes: statSync(join(imagesDir, name)).size });
    }
  } catch (e) {
    throw new FerryError(ErrorCode.INTERNAL, `criu dump of pid ${initPid}: cannot list ${imagesDir}: ${errorMessage(e)}`);
  }
  const totalBytes = files.reduce((n, f) => n + f.sizeBytes, 0);
  const stats = await readDumpStats(imagesDir).catch(() => undefined);
  trace(`dumped pid ${initPid}: ${files.length} files, ${totalBytes} bytes in ${durationMs.toFixed(1)} ms`);
  return { imagesDir, files, totalBytes, durationMs, stats, logFile };
}
