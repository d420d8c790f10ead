// The private working directory of each rank's ferry-init.
//
// ferry-init is the root task of a rank's CRIU dump, and CRIU's parasite makes
// a scratch directory (proc.crtools) in the root task's working directory
// during a dump (see criu-dump.ts, ProcScratchGuard). Ranks whose inits share
// a working directory (every rank of a job started in the job's directory)
// collide on it, so their dumps had to take turns. ferry-init therefore
// leaves the program in the job's directory and moves itself into a directory
// of its own. The path does not depend on the host, so a host that restores
// the rank creates it first (CRIU restores working directories by path): every
// agent of one deployment must use the same root.
//
// The directory also holds the name of the abstract socket of the rank's agent
// (AGENT_SOCKET_FILE), written by every agent that starts, restores or takes
// back the rank, and read by the rank's runtime at each connect to its agent
// (src/runtime/agent.c). Two agents of one machine listen under two names; a
// rank moved from one to the other, restored with the first one's name in its
// memory, would otherwise ask the agent it left. Rank 0's may also hold its
// standard input (STDIN_FILE, rank-stdin.ts).
import { mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, rmdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, sep } from 'node:path';

export const RANK_INIT_DIR_BASE = '/tmp/ferry-rank-init';
/** Overrides the root for every agent started with it (a test cluster keeps its ranks' directories in its own temp dir). */
export const RANK_INIT_ROOT_ENV = 'FERRY_RANK_INIT_ROOT';
/** The environment variable that hands ferry-init its directory (ferry-init.c removes it from the program's environment). */
export const INIT_DIR_ENV = 'FERRY_INIT_DIR';
/** A directory still in use when its rank ended is looked at again this often, this many times. */
const REMOVE_RETRY_MS = 250;
const REMOVE_ATTEMPTS = 20;
/** Unused directories older than this are swept (at agent start, then every RANK_INIT_SWEEP_INTERVAL_MS). */
export const RANK_INIT_DIR_STALE_MS = 10 * 60_000;
export const RANK_INIT_SWEEP_INTERVAL_MS = 10 * 60_000;

/** In a rank's init directory: the name of its agent's abstract socket, one line. */
export const AGENT_SOCKET_FILE = 'agent-socket';
/** The environment variable that hands the rank's runtime that file's path. */
export const AGENT_SOCKET_FILE_ENV = 'FERRY_AGENT_SOCKET_FILE';
const AGENT_SOCKET_TEMP = '.agent-socket.tmp';
/** In a rank's init directory: its standard input, when the job was given one (rank-stdin.ts). */
export const STDIN_FILE = 'stdin';

/** The directory the rank init directories live in. */
export function rankInitRoot(): string {
  return process.env[RANK_INIT_ROOT_ENV] || RANK_INIT_DIR_BASE;
}

/** Creates a new, empty directory for one start of a rank. */
export function createRankInitDir(jobId: string, rank: number): string {
  const dir = join(rankInitRoot(), `${jobId}.${rank}.${randomBytes(6).toString('hex')}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** The path of the agent socket file in `dir`. */
export function agentSocketFile(dir: string): string {
  return join(dir, AGENT_SOCKET_FILE);
}

/**
 * Names `socketName` as the agent of the rank whose init directory is `dir`.
 * Renamed into place: a rank that connects meanwhile reads the old name or the
 * new one, never part of one. Throws if the directory is not there.
 */
export function writeAgentSocketFile(dir: string, socketName: string): void {
  const temp = join(dir, AGENT_SOCKET_TEMP);
  writeFileSync(temp, `${socketName}\n`, { mode: 0o600 });
  renameSync(temp, agentSocketFile(dir));
}

/** Removes the agent socket file from `dir`, then `dir`; throws if anything else is left in it. */
function removeInitDir(dir: string): void {
  rmSync(agentSocketFile(dir), { force: true });
  rmSync(join(dir, AGENT_SOCKET_TEMP), { force: true });
  rmSync(join(dir, STDIN_FILE), { force: true });
  rmdirSync(dir);
}

/** Whether `path` is one of these directories (and not, say, a job's own directory). */
export function isRankInitDir(path: string): boolean {
  const root = rankInitRoot();
  if (!path.startsWith(root + sep)) return false;
  const name = path.slice(root.length + 1);
  return name.length > 0 && !name.includes(sep) && name !== '.' && name !== '..';
}

/**
 * Creates the directory a restored rank's ferry-init works in (it must exist
 * before CRIU restores it). One kept from an earlier run of the rank gets a
 * fresh time, so no sweep takes it while CRIU is still on its way there.
 */
export function ensureRankInitDir(path: string): void {
  if (!isRankInitDir(path)) return;
  mkdirSync(path, { recursive: true, mode: 0o700 });
  const now = new Date();
  utimesSync(path, now, now);
}

/** The working directories of the live processes of this machine. */
function workingDirs(): Set<string> {
  const dirs = new Set<string>();
  for (const pid of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    try {
      dirs.add(readlinkSync(`/proc/${pid}/cwd`));
    } catch {
      // gone, or not ours to look at
    }
  }
  return dirs;
}

/** Whether a live process works in `dir` (an init restored from the same image, on a host sharing this machine). */
function inUse(dir: string): boolean {
  return workingDirs().has(dir);
}

/**
 * Removes the directory once its rank has ended; best effort (something left
 * inside keeps it). Kept while a process still works there: a rank migrated
 * between namespace hosts of one machine is restored into the same path. Kept
 * too once a restore has claimed it since the removal was asked
 * (ensureRankInitDir gives it a new time): a look again, while the copy that
 * used it was on its way out, once removed the directory of the copy being
 * restored after it, before CRIU got there (soak seed 121: an agent back on a
 * lost host was removing its killed ranks' directories as the job's drain
 * restored those ranks there).
 */
export function removeRankInitDir(path: string | undefined, attemptsLeft = REMOVE_ATTEMPTS, askedAt = Date.now()): void {
  if (!path || !isRankInitDir(path)) return;
  if (inUse(path)) {
    // The rank's processes may still be on their way out when its end is reported: look again shortly.
    if (attemptsLeft > 1) setTimeout(() => removeRankInitDir(path, attemptsLeft - 1, askedAt), REMOVE_RETRY_MS).unref();
    return;
  }
  try {
    if (statSync(path).mtimeMs > askedAt) return; // claimed by a restore since
  } catch {
    return; // gone already
  }
  try {
    removeInitDir(path);
  } catch {
    // already gone, or not empty (a CRIU scratch directory left by a killed dump): harmless
  }
}

/**
 * Removes the directories that no process works in and that are older than
 * `olderThanMs`: those of ranks whose agent was killed, and those a stopped
 * rank left on its old host (see RankSupervisor.keepInitDirs). The age keeps
 * a directory that a restore has just made for CRIU, on this or another host
 * of the machine. Returns how many went.
 */
export function sweepRankInitDirs(olderThanMs: number, now = Date.now()): number {
  const root = rankInitRoot();
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return 0; // no root yet
  }
  const used = workingDirs();
  let removed = 0;
  for (const name of names) {
    const dir = join(root, name);
    if (!isRankInitDir(dir) || used.has(dir)) continue;
    try {
      if (now - statSync(dir).mtimeMs < olderThanMs) continue;
      removeInitDir(dir);
      removed++;
    } catch {
      // gone meanwhile, not a directory, or not empty: not ours to force
    }
  }
  return removed;
}
