// The agent's rank table on disk: which ranks of which jobs this host runs,
// enough to find them again after the agent crashed and was restarted (the
// ranks themselves are not the agent's children and live on), and the ranks
// that ended whose exit no coordinator has acknowledged yet (the next agent
// reports them), or whose output their followers have not all taken yet (the
// next agent follows the rest). Written atomically (temporary file, fsync, rename) on every
// start, adoption, exit and acknowledged exit, and every few seconds with the
// output offsets reached.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { ErrorCode, type RankExitedInit } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';

export const RANK_TABLE_MAGIC = 'ferry-agent-rank-table';
export const RANK_TABLE_VERSION = 1;
export const RANK_TABLE_FILE = 'ranks.json';

/** One rank as the table keeps it. */
export interface RankTableEntry {
  jobId: string;
  rank: number;
  worldSize: number;
  /**
   * The process the agent spawned for the rank (unshare, or ferry-restore for
   * a restored rank): its end is the rank's end.
   */
  pid: number;
  /** Its start time (clock ticks after boot, /proc/PID/stat field 22): tells it from a later process with the same pid. */
  pidStartTicks: number;
  /** 'started' by this host's agent, or 'restored' by CRIU under ferry-restore. */
  origin: 'started' | 'restored';
  logs: { out: string; err: string };
  /** Bytes of each log already handed to the coordinator. */
  offsets: { out: number; err: number };
  /**
   * How far the rank's followers took each log, in which following of them (output-tailer.ts): where a
   * restarted agent resumes. Absent in a table written before it was kept (resumes from `offsets`).
   */
  output?: { source: string; taken: { out: number; err: number } };
  /** Where ferry-init writes the rank's exit status (FERRY_EXIT_STATUS_FILE); empty when unknown. */
  statusFile: string;
  /** ferry-init's own working directory (rank-init-dir.ts), removed when the rank ends; absent when unknown. */
  initDir?: string;
  startedMs: number;
  /** Non-zero while the rank is asked to flush or flushed at that epoch, and not yet resumed. */
  flushEpoch: number;
  /**
   * Set once the rank has ended: how, until a coordinator has acknowledged it (then the entry goes, unless
   * its followers have not taken all of its output: exitAcked).
   */
  exit?: RankExitedInit;
  /**
   * Its exit was acknowledged, and its followers had not taken all of its output: kept until they have, so
   * that an agent restarted meanwhile follows the rest again (a coordinator that died too lost it).
   */
  exitAcked?: boolean;
  /**
   * Stopped by its agent (SIGTSTP through ferry-init: its whole namespace) because no coordinator had
   * answered for the rejoin grace (rank-fence.ts); continued once one does, also by a restarted agent.
   */
  fenced?: boolean;
  /**
   * Left stopped by its dump (RoundRequest.leave_stopped: a migration's, checkpoint --stop's), for STOP to
   * kill; continued (SIGCONT) before a RESUME wakes it, also by a restarted agent.
   */
  stoppedByDump?: boolean;
}

interface RankTableFile {
  magic: string;
  version: number;
  ranks: RankTableEntry[];
  /**
   * The coordinator's rejoin grace, as its last registration said (rank-fence.ts): an agent restarted
   * while cut off fences the ranks it takes back unless a coordinator answers it within that long.
   * Absent: unknown (a table from before it was kept, or no registration yet).
   */
  rejoinGraceMs?: number;
}

/** What the table holds besides its ranks. */
export interface RankTableExtra {
  rejoinGraceMs?: number;
}

/** Reads the table; a missing file is an empty table, anything unreadable is an error naming the file. */
export function loadRankTable(path: string, extra: RankTableExtra = {}): RankTableEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new FerryError(ErrorCode.INTERNAL, `cannot read the rank table ${path}: ${errorMessage(err)}`);
  }
  let parsed: RankTableFile;
  try {
    parsed = JSON.parse(text) as RankTableFile;
  } catch (err) {
    throw new FerryError(ErrorCode.MALFORMED, `the rank table ${path} is not valid JSON: ${errorMessage(err)}`);
  }
  if (parsed?.magic !== RANK_TABLE_MAGIC) throw new FerryError(ErrorCode.MALFORMED, `${path} is not a Ferry rank table`);
  if (parsed.version !== RANK_TABLE_VERSION) {
    throw new FerryError(ErrorCode.VERSION_MISMATCH, `the rank table ${path} has format version ${parsed.version}; this agent reads ${RANK_TABLE_VERSION}`);
  }
  if (typeof parsed.rejoinGraceMs === 'number' && parsed.rejoinGraceMs > 0) extra.rejoinGraceMs = parsed.rejoinGraceMs;
  return Array.isArray(parsed.ranks) ? parsed.ranks : [];
}

/** Replaces the table atomically: a crash leaves the old table or the new one, never half of one. */
export function saveRankTable(path: string, ranks: RankTableEntry[], extra: RankTableExtra = {}): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  const body: RankTableFile = { magic: RANK_TABLE_MAGIC, version: RANK_TABLE_VERSION, ranks, ...(extra.rejoinGraceMs ? { rejoinGraceMs: extra.rejoinGraceMs } : {}) };
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(body, null, 1));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
