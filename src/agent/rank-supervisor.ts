// Starts the ranks of this node and watches them. Each rank runs as
//   unshare --pid --fork --kill-child setsid ferry-init PROGRAM ARGS...
// so that it is PID 1's child in a PID namespace of its own: CRIU can then
// restore it on any host without PID clashes (FACTS.md), and ferry-init
// forwards signals and reaps orphans (PROTOCOL-NOTES.md). Output goes to
// per-job log files opened for append, which survive a dump and restore,
// where a pipe would not.
//
// The ranks outlive the agent: if it crashes they keep running, orphaned. The
// supervisor keeps its rank table on disk (rank-table.ts); a restarted agent
// calls readopt() to take back the ranks whose processes still run (same pid
// and start time) and to learn how the others ended. It is not their parent
// any more, so it watches them (RANK_WATCH_INTERVAL_MS) and reads the status
// ferry-init writes to FERRY_EXIT_STATUS_FILE when the rank ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { timingSafeEqual } from 'node:crypto';
import { accessSync, closeSync, constants as fsConstants, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import {
  AGENT_SOCKET_FILE_ENV,
  INIT_DIR_ENV,
  RANK_INIT_DIR_STALE_MS,
  RANK_INIT_SWEEP_INTERVAL_MS,
  agentSocketFile,
  createRankInitDir,
  removeRankInitDir,
  sweepRankInitDirs,
  writeAgentSocketFile,
} from './rank-init-dir.js';
import { processAlive, processEnv, processStartTicks, readExitStatus, removeExitStatus } from './rank-process.js';
import { loadRankTable, RANK_TABLE_FILE, saveRankTable, type RankTableEntry, type RankTableExtra } from './rank-table.js';
import { writeStdinFile } from './rank-stdin.js';
import type { OutputPosition } from './output-tailer.js';
import { childrenOf, descendantsCatching } from './runtime-processes.js';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { EventEmitter } from 'node:events';
import { constants as osConstants } from 'node:os';
import { ErrorCode, type RankExitedInit, type RankProcessInit } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';
import { processStateCode } from '../common/proc-stat.js';

const trace = tracer('ranks');

const SIGNAL_RETRY_MS = 20;
const SIGNAL_RETRIES = 100;
/** How long ranks get between SIGTERM and SIGKILL. */
export const RANK_KILL_GRACE_MS = 10_000;
/** How often re-adopted ranks (not this agent's children) are checked for their end. */
export const RANK_WATCH_INTERVAL_MS = 200;
/** Output offsets are written to the rank table at most this often. */
export const RANK_TABLE_SAVE_INTERVAL_MS = 2_000;
/** A rank table that cannot be written is said on the agent's log at most this often. */
export const RANK_TABLE_WARNING_EVERY_MS = 60_000;
/** The environment variable that tells ferry-init where to write the rank's exit status. */
export const EXIT_STATUS_ENV = 'FERRY_EXIT_STATUS_FILE';

export interface RankStartSpec {
  jobId: string;
  rank: number;
  worldSize: number;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  /** The job's rank token (StartRanksRequest.rank_token); empty or absent: none. */
  token?: string;
  /** The rank's standard input (rank 0's StartRanksRequest.stdin); empty or absent: /dev/null. */
  stdin?: Uint8Array;
}

/**
 * The environment variable that hands a rank its job's rank token. It stays in
 * ferry-init's environment, which CRIU restores with it: any agent that runs
 * the rank, also after a restore on another host, reads the token it must
 * show from there (checkRankToken).
 */
export const RANK_TOKEN_ENV = 'FERRY_RANK_TOKEN';

export interface RankSupervisorOptions {
  host: string;
  logsDir: string;
  /** Path of the ferry-init binary. */
  initPath: string;
  /** Abstract socket name of this node's agent, handed to ranks as FERRY_AGENT_SOCKET. */
  agentSocketName: string;
  /** Where the rank table and the exit status files live; default LOGS/.agent-state. */
  stateDir?: string;
  /** How long a rank may run on after the SIGTERM (or SIGINT) that ends its job before SIGKILL; default RANK_KILL_GRACE_MS. */
  killGraceMs?: number;
  /** Said on the agent's log: the rank table cannot be written (at most once a minute), or can again. */
  warn?: (message: string) => void;
}

interface RankEntry {
  spec: RankStartSpec;
  /** The spawned process, while this agent is its parent; absent for a re-adopted rank. */
  child?: ChildProcess;
  process: RankProcessInit;
  table: RankTableEntry;
  /** Set once the end has been reported. */
  ended: boolean;
  /** The signal this agent sent last (tells how a re-adopted rank without a status file ended). */
  lastSignal?: NodeJS.Signals;
  /** Stopped for a move or a later restart: its init directory stays for a restore (rank-init-dir.ts). */
  keepInitDir?: boolean;
}

/** What readopt() found. */
export interface ReadoptResult {
  /** Ranks still running: supervised again, their output to be followed from `offsets`. */
  alive: ({ process: RankProcessInit; flushEpoch: number } & ReadoptedOutput)[];
  /** Ranks that ended while the agent was down: how, as far as known. */
  ended: ({ exit: RankExitedInit } & ReadoptedOutput)[];
  /** Ranks whose exit a coordinator acknowledged, and whose output their followers had not all taken. */
  owingOutput?: ({ exit: RankExitedInit } & ReadoptedOutput)[];
}

/** Where a re-adopted rank's output stood (RankTableEntry). */
export interface ReadoptedOutput {
  logs: { out: string; err: string };
  offsets: { out: number; err: number };
  output?: { source: string; taken: { out: number; err: number } };
}

export interface RankSupervisorEvents {
  exit: [RankExitedInit];
}

/** What the agent needs of whatever runs its ranks (the protocol tests simulate it). */
export interface RankRunner extends EventEmitter<RankSupervisorEvents> {
  start(spec: RankStartSpec): RankProcessInit;
  running(): RankProcessInit[];
  has(jobId: string, rank: number): boolean;
  signalJob(jobId: string, signal: NodeJS.Signals): number;
  logPaths(jobId: string, rank: number): { out: string; err: string };
  /** After an agent restart: the ranks of the rank table still running, and how the others ended. */
  readopt?(): ReadoptResult;
  /**
   * A coordinator acknowledged this exit: the rank table need not keep it for the next agent, unless
   * `owesOutput` (its followers have not taken all of its output yet: kept until outputTaken).
   */
  exitReported?(e: RankExitedInit, owesOutput?: boolean): void;
  /** The followers of this ended rank took all of its output: the rank table lets it go. */
  outputTaken?(e: RankExitedInit): void;
  /**
   * Stops every running rank not stopped already (a launcher's suspension), marks it fenced in the rank
   * table, and returns those stopped now (rank-fence.ts).
   */
  fence?(): string[];
  /** Continues every rank fenced (by this agent or by the one before it); returns them. */
  unfence?(): string[];
  /** The ranks' trees are about to be left stopped by their dump (RoundRequest.leave_stopped): in the rank table, on disk, until they are continued. */
  markStoppedByDump?(jobId: string, ranks: number[]): void;
  /** Continues those of `ranks` that a dump left stopped (SIGCONT through ferry-init: the whole namespace); returns them. */
  continueStoppedByDump?(jobId: string, ranks: number[]): number[];
  /** The coordinator's rejoin grace, kept in the rank table for an agent restarted after this one. */
  rememberRejoinGrace?(ms: number): void;
  /** The grace the rank table kept (readopt reads it); 0 when unknown. */
  rememberedRejoinGrace?(): number;
  /** `onlyPid`: signal a rank only while its process is that one (not a later copy of it). */
  signalRanks?(jobId: string, ranks: number[], signal: NodeJS.Signals, onlyPid?: number): number;
  recordOutputPosition?(jobId: string, rank: number, position: OutputPosition): void;
  recordFlush?(jobId: string, rank: number, epoch: number): void;
  /** Removes the job's output logs on this host (none of its ranks may run here); what was removed. */
  removeJobLogs?(jobId: string): { removed: boolean; bytes: number };
  close?(): void;
}

/** An ended rank's key in RankSupervisor.unreported: job/rank/pid (an earlier copy's end is another one's). */
const unreportedKey = (jobId: string, rank: number, pid?: number) => `${jobId}/${rank}/${pid ?? 0}`;

export class RankSupervisor extends EventEmitter<RankSupervisorEvents> implements RankRunner {
  private readonly ranks = new Map<string, RankEntry>();
  /**
   * Ranks that ended, by job/rank/pid, kept in the rank table with their exit until a coordinator
   * acknowledged it: an agent killed before that would otherwise take the exit with it, and the next
   * one, finding the rank neither in its table nor running, had it lost (soak seed 116: a job whose
   * ranks had all exited 0 failed so).
   */
  private readonly unreported = new Map<string, RankTableEntry>();
  /** Ranks whose exit was acknowledged, by job/rank/pid, kept while their output is owed (RankTableEntry.exitAcked). */
  private readonly owingOutput = new Map<string, RankTableEntry>();
  private readonly stateDir: string;
  private readonly tablePath: string;
  private watchTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  private saveQueued = false;
  /** The last write of the rank table failed (its disk full, say): when it was said, and how many failed since. */
  private unsaved: { warnedMs: number; failures: number } | undefined;
  /**
   * Exit status files kept because the table could not take their rank's exit: removed with the exit's
   * acknowledgement (only those: a rank restored here reads and writes its original copy's path).
   */
  private readonly keptStatuses = new Set<string>();
  /** The coordinator's rejoin grace, kept in the rank table (rememberRejoinGrace). */
  private rejoinGraceMs = 0;

  constructor(private readonly options: RankSupervisorOptions) {
    super();
    this.stateDir = options.stateDir ?? join(options.logsDir, '.agent-state');
    this.tablePath = join(this.stateDir, RANK_TABLE_FILE);
  }

  /** The rank table's path (for messages and tests). */
  get rankTablePath(): string {
    return this.tablePath;
  }

  static key(jobId: string, rank: number): string {
    return `${jobId}/${rank}`;
  }

  logPaths(jobId: string, rank: number): { out: string; err: string } {
    const dir = join(this.options.logsDir, jobId);
    return { out: join(dir, `rank-${rank}.out`), err: join(dir, `rank-${rank}.err`) };
  }

  removeJobLogs(jobId: string): { removed: boolean; bytes: number } {
    const live = [...this.ranks.values()].filter((e) => e.spec.jobId === jobId).map((e) => e.spec.rank);
    if (live.length > 0) {
      const which = live.length > 1 ? `ranks ${live.join(',')} of job ${jobId} still run` : `rank ${live[0]} of job ${jobId} still runs`;
      throw new FerryError(ErrorCode.BUSY, `${which} on host ${this.options.host}: its logs stay`);
    }
    const dir = join(this.options.logsDir, jobId);
    if (!existsSync(dir)) return { removed: false, bytes: 0 };
    let bytes = 0;
    for (const name of readdirSync(dir)) bytes += statSync(join(dir, name), { throwIfNoEntry: false })?.size ?? 0;
    rmSync(dir, { recursive: true, force: true });
    return { removed: true, bytes };
  }

  /** Starts one rank; throws SPAWN_FAILED naming the program and the host when it cannot. */
  start(spec: RankStartSpec): RankProcessInit {
    const key = RankSupervisor.key(spec.jobId, spec.rank);
    if (this.ranks.has(key)) throw new FerryError(ErrorCode.BAD_REQUEST, `rank ${key} already runs on ${this.options.host}`);
    const cwd = spec.cwd || '/';
    const program = resolveProgram(spec.argv[0], cwd, spec.env.PATH ?? process.env.PATH ?? '');
    if (!program) {
      throw new FerryError(ErrorCode.SPAWN_FAILED, `program "${spec.argv[0]}" not found or not executable on host ${this.options.host}`);
    }
    const logs = this.logPaths(spec.jobId, spec.rank);
    mkdirSync(join(this.options.logsDir, spec.jobId), { recursive: true });
    const statusFile = join(this.stateDir, 'status', `${spec.jobId}.${spec.rank}.${Date.now().toString(36)}`);
    mkdirSync(dirname(statusFile), { recursive: true });
    removeExitStatus(statusFile);
    const initDir = createRankInitDir(spec.jobId, spec.rank);
    const out = openSync(logs.out, 'a');
    const err = openSync(logs.err, 'a');
    let input: number | undefined;
    let child: ChildProcess;
    try {
      writeAgentSocketFile(initDir, this.options.agentSocketName);
      if (spec.stdin && spec.stdin.length > 0) input = openSync(writeStdinFile(initDir, spec.stdin), 'r');
      child = spawn(
        'unshare',
        ['--pid', '--fork', '--kill-child=SIGKILL', 'setsid', this.options.initPath, program, ...spec.argv.slice(1)],
        {
          cwd,
          env: {
            ...spec.env,
            FERRY_JOB_ID: spec.jobId,
            FERRY_RANK: String(spec.rank),
            FERRY_SIZE: String(spec.worldSize),
            FERRY_AGENT_SOCKET: this.options.agentSocketName,
            ...(spec.token ? { [RANK_TOKEN_ENV]: spec.token } : {}),
            [EXIT_STATUS_ENV]: statusFile,
            [INIT_DIR_ENV]: initDir,
            [AGENT_SOCKET_FILE_ENV]: agentSocketFile(initDir),
          },
          stdio: [input ?? 'ignore', out, err],
          detached: true,
        },
      );
    } catch (e) {
      removeRankInitDir(initDir);
      throw new FerryError(ErrorCode.SPAWN_FAILED, `cannot start rank ${spec.rank} of ${spec.jobId} on ${this.options.host}: ${errorMessage(e)}`);
    } finally {
      closeSync(out);
      closeSync(err);
      if (input !== undefined) closeSync(input);
    }
    trace(`started ${spec.jobId}/${spec.rank} pid ${child.pid}: ${program}`);
    return this.track(spec, child, logs, 'started', statusFile, initDir);
  }

  /**
   * Takes over a rank restored by CRIU under ferry-restore (`child`): from now
   * on it is supervised like a rank started here, and ferry-restore's exit is
   * the rank's exit.
   */
  adopt(spec: RankStartSpec, child: ChildProcess): RankProcessInit {
    const key = RankSupervisor.key(spec.jobId, spec.rank);
    if (this.ranks.has(key)) throw new FerryError(ErrorCode.BAD_REQUEST, `rank ${key} already runs on ${this.options.host}`);
    trace(`adopted restored ${key} (ferry-restore pid ${child.pid})`);
    // The restored ferry-init writes its status where its environment (restored
    // with it) says: usable if that path exists on this machine.
    const init = initPidOf(child.pid ?? 0);
    const statusFile = (init && processEnv(init, EXIT_STATUS_ENV)) || '';
    if (statusFile) removeExitStatus(statusFile); // a status left by an earlier copy of the rank
    const initDir = (init && processEnv(init, INIT_DIR_ENV)) || undefined;
    // The rank connects to this agent once woken, not to the one it was dumped from (rank-init-dir.ts).
    if (initDir) this.nameAgentTo(key, initDir, true);
    return this.track(spec, child, this.logPaths(spec.jobId, spec.rank), 'restored', statusFile, initDir);
  }

  /**
   * Names this agent's socket in the init directory of the rank `key` (rank-init-dir.ts). `required`: a
   * restored rank would ask another agent, and be refused; one taken back asks the name it has, which
   * was this machine's agent's too.
   */
  private nameAgentTo(key: string, initDir: string, required: boolean): void {
    try {
      writeAgentSocketFile(initDir, this.options.agentSocketName);
    } catch (err) {
      const what = `cannot name this agent's socket to rank ${key} in ${initDir} on ${this.options.host}: ${errorMessage(err)}`;
      if (required) throw new FerryError(ErrorCode.INTERNAL, what);
      trace(what);
    }
  }

  private track(
    spec: RankStartSpec,
    child: ChildProcess,
    logs: { out: string; err: string },
    origin: RankTableEntry['origin'],
    statusFile: string,
    initDir: string | undefined,
  ): RankProcessInit {
    const key = RankSupervisor.key(spec.jobId, spec.rank);
    const pid = child.pid ?? 0;
    const info: RankProcessInit = { job_id: spec.jobId, rank: spec.rank, pid, endpoint: '', started_ms: Date.now() };
    const table: RankTableEntry = {
      jobId: spec.jobId,
      rank: spec.rank,
      worldSize: spec.worldSize,
      pid,
      pidStartTicks: processStartTicks(pid) ?? 0,
      origin,
      logs,
      offsets: { out: 0, err: 0 },
      statusFile,
      ...(initDir ? { initDir } : {}),
      startedMs: info.started_ms ?? Date.now(),
      flushEpoch: 0,
    };
    const entry: RankEntry = { spec, child, process: info, table, ended: false };
    this.ranks.set(key, entry);
    this.saveTable();
    child.on('error', (e) => trace(`rank ${key}: ${e.message}`));
    child.on('exit', (code, signal) => {
      if (this.ranks.get(key) === entry) this.ranks.delete(key);
      if (!entry.keepInitDir) removeRankInitDir(initDir);
      if (entry.ended) {
        removeExitStatus(statusFile);
        return;
      }
      entry.ended = true;
      const exited: RankExitedInit = {
        job_id: spec.jobId,
        rank: spec.rank,
        pid,
        // Killed by a signal: the shell convention 128 + N, like ferry-init reports for the program.
        exit_code: code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0),
        signal: signal ?? '',
        exited_ms: Date.now(),
        reason: code === 127 ? `exit 127: the program could not be executed (see ${logs.err})` : '',
      };
      this.keepUntilReported(entry.table, exited);
      trace(`exit ${key} code=${code} signal=${signal}`);
      this.emit('exit', exited);
    });
    return info;
  }

  /**
   * The rank ended: its entry stays in the table, with its exit, until exitReported. Writes the table, and
   * only then removes the rank's exit status file: an agent killed between the two (a write waits for an
   * fsync) leaves the next one the exit, in the table or in the file. The other way round it left neither,
   * and the rank, ended 0 as its job finished, was lost (soak seed 139).
   */
  private keepUntilReported(t: RankTableEntry, exit: RankExitedInit): void {
    this.unreported.set(unreportedKey(t.jobId, t.rank, exit.pid), { ...t, exit });
    if (!this.saveTable()) removeExitStatus(t.statusFile);
    else this.keptStatuses.add(t.statusFile); // (removed when its exit is acknowledged)
  }

  exitReported(e: RankExitedInit, owesOutput = false): void {
    const key = unreportedKey(e.job_id ?? '', e.rank ?? 0, e.pid);
    const t = this.unreported.get(key);
    if (!t) return;
    this.unreported.delete(key);
    if (this.keptStatuses.delete(t.statusFile)) removeExitStatus(t.statusFile);
    if (owesOutput) this.owingOutput.set(key, { ...t, exitAcked: true });
    this.saveTable();
  }

  outputTaken(e: RankExitedInit): void {
    if (this.owingOutput.delete(unreportedKey(e.job_id ?? '', e.rank ?? 0, e.pid))) this.saveTable();
  }

  running(): RankProcessInit[] {
    return [...this.ranks.values()].map((e) => e.process);
  }

  // ---- the rank table and re-adoption ---------------------------------------------

  /**
   * After an agent restart: takes back the ranks of the table whose processes
   * still run, and says how the others ended (their status file, else unknown).
   * The table is rewritten with the living ones only.
   */
  readopt(): ReadoptResult {
    const result: ReadoptResult = { alive: [], ended: [], owingOutput: [] };
    const readStatuses: string[] = [];
    const extra: RankTableExtra = {};
    const entries = loadRankTable(this.tablePath, extra);
    this.rejoinGraceMs = extra.rejoinGraceMs ?? 0;
    for (const t of entries) {
      const key = RankSupervisor.key(t.jobId, t.rank);
      // (the table lists the running ranks first: an earlier copy's end is not told over a later copy's output)
      if (this.ranks.has(key)) continue;
      if (t.exit && t.exitAcked) {
        // Its end was acknowledged; its followers had not taken all of its output: followed again.
        result.owingOutput!.push({ exit: t.exit, logs: t.logs, offsets: t.offsets, output: t.output });
        this.owingOutput.set(unreportedKey(t.jobId, t.rank, t.exit.pid), t);
        trace(`${key} ended, its exit acknowledged, its output not all taken: followed again`);
      } else if (t.exit) {
        // Its end was seen by the agent before, and never acknowledged: told again, kept until it is.
        result.ended.push({ exit: t.exit, logs: t.logs, offsets: t.offsets, output: t.output });
        this.unreported.set(unreportedKey(t.jobId, t.rank, t.exit.pid), t);
        trace(`${key} ended before the agent went down, its exit not acknowledged: exit ${t.exit.exit_code}`);
      } else if (processAlive(t.pid, t.pidStartTicks)) {
        const info: RankProcessInit = { job_id: t.jobId, rank: t.rank, pid: t.pid, endpoint: '', started_ms: t.startedMs };
        const spec: RankStartSpec = { jobId: t.jobId, rank: t.rank, worldSize: t.worldSize, argv: [], cwd: '/', env: {} };
        this.ranks.set(key, { spec, process: info, table: { ...t, flushEpoch: t.flushEpoch ?? 0 }, ended: false });
        if (t.initDir) this.nameAgentTo(key, t.initDir, false); // (this agent may listen under another name)
        result.alive.push({ process: info, logs: t.logs, offsets: t.offsets, output: t.output, flushEpoch: t.flushEpoch ?? 0 });
        trace(`re-adopted ${key} (pid ${t.pid}, ${t.origin})`);
      } else {
        const exit = this.endedExit(t, true);
        readStatuses.push(t.statusFile); // (removed once the table has the exit)
        removeRankInitDir(t.initDir);
        result.ended.push({ exit, logs: t.logs, offsets: t.offsets, output: t.output });
        this.unreported.set(unreportedKey(t.jobId, t.rank, exit.pid), { ...t, exit });
        trace(`${key} ended while the agent was down: exit ${exit.exit_code} ${exit.reason}`);
      }
    }
    const saved = !this.saveTable();
    for (const f of readStatuses) {
      if (saved) removeExitStatus(f);
      else this.keptStatuses.add(f);
    }
    if (result.alive.length > 0) this.watchAdopted();
    this.sweepInitDirs();
    return result;
  }

  /** Removes, now and from time to time, the init directories nothing uses any more (rank-init-dir.ts). */
  private sweepInitDirs(): void {
    const sweep = (): void => {
      const n = sweepRankInitDirs(RANK_INIT_DIR_STALE_MS);
      if (n > 0) trace(`removed ${n} unused rank init director${n === 1 ? 'y' : 'ies'}`);
    };
    sweep();
    this.sweepTimer ??= setInterval(sweep, RANK_INIT_SWEEP_INTERVAL_MS);
    this.sweepTimer.unref?.();
  }

  /** The exit of a rank that is not this agent's child, from its status file. */
  private endedExit(t: RankTableEntry, whileDown: boolean, lastSignal?: NodeJS.Signals): RankExitedInit {
    const status = readExitStatus(t.statusFile);
    const base = { job_id: t.jobId, rank: t.rank, pid: t.pid, exited_ms: Date.now() };
    if (status) return { ...base, exit_code: status.exitCode, signal: '', reason: '' };
    if (lastSignal === 'SIGKILL') return { ...base, exit_code: 128 + osConstants.signals.SIGKILL, signal: 'SIGKILL', reason: '' };
    return {
      ...base,
      exit_code: -1,
      signal: 'LOST',
      reason: whileDown
        ? 'the rank ended while its agent was down and left no exit status'
        : 'the rank ended without leaving an exit status (its ferry-init was killed)',
      ...(whileDown ? { lost_with_host: true } : {}),
    };
  }

  /** Polls the re-adopted ranks (not our children: no exit event) until none is left. */
  private watchAdopted(): void {
    if (this.watchTimer) return;
    this.watchTimer = setInterval(() => {
      let adopted = 0;
      for (const [key, e] of this.ranks) {
        if (e.child) continue;
        if (processAlive(e.table.pid, e.table.pidStartTicks)) {
          adopted++;
          continue;
        }
        this.ranks.delete(key);
        e.ended = true;
        const exited = this.endedExit(e.table, false, e.lastSignal);
        if (!e.keepInitDir) removeRankInitDir(e.table.initDir);
        this.keepUntilReported(e.table, exited);
        trace(`exit of re-adopted ${key}: code=${exited.exit_code} ${exited.reason}`);
        this.emit('exit', exited);
      }
      if (adopted === 0) this.stopWatching();
    }, RANK_WATCH_INTERVAL_MS);
    this.watchTimer.unref?.();
  }

  private stopWatching(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = undefined;
  }

  /** Stops timers (the agent is shutting down); the table on disk stays for the next agent. */
  close(): void {
    this.stopWatching();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.saveTimer = undefined;
      this.saveTable();
      // (a last write that failed set no timer of its own to outlive the agent)
      if (this.saveTimer) clearTimeout(this.saveTimer);
      this.saveTimer = undefined;
    }
  }

  /** Where the output of a rank stands: kept in the table (written within RANK_TABLE_SAVE_INTERVAL_MS) when it moved. */
  recordOutputPosition(jobId: string, rank: number, p: OutputPosition): void {
    // (a rank that ended: its entry kept for its exit or its output, in the same source)
    const t =
      this.ranks.get(RankSupervisor.key(jobId, rank))?.table ??
      [...this.unreported.values(), ...this.owingOutput.values()].find((x) => x.jobId === jobId && x.rank === rank && x.output?.source === p.source);
    if (!t) return;
    const same = (a: { out: number; err: number } | undefined, b: { out: number; err: number }) => a?.out === b.out && a.err === b.err;
    if (same(t.offsets, p.sent) && t.output?.source === p.source && same(t.output.taken, p.taken)) return;
    const newSource = t.output?.source !== p.source;
    t.offsets = { ...p.sent };
    t.output = { source: p.source, taken: { ...p.taken } };
    if (newSource) {
      // (now, not within the interval: an agent killed before the next save would go on in a source of its
      // own, and output the one before had sent would reach the followers twice)
      this.saveSoon();
      return;
    }
    this.saveTimer ??= setTimeout(() => {
      this.saveTimer = undefined;
      this.saveTable();
    }, RANK_TABLE_SAVE_INTERVAL_MS);
    this.saveTimer.unref?.();
  }

  /**
   * Marks ranks asked to flush (epoch) or resumed (0). A rank still marked when
   * a restarted agent re-adopts it may be waiting, flushed, for a SIGUSR2 that
   * the crashed agent never sent. Written at the end of the current tick.
   */
  recordFlush(jobId: string, rank: number, epoch: number): void {
    const e = this.ranks.get(RankSupervisor.key(jobId, rank));
    if (!e || e.table.flushEpoch === epoch) return;
    e.table.flushEpoch = epoch;
    this.saveSoon();
  }

  /** Saves the table once the changes made in this turn are in (one write for the ranks of a start or a step). */
  private saveSoon(): void {
    if (this.saveQueued) return;
    this.saveQueued = true;
    queueMicrotask(() => {
      this.saveQueued = false;
      this.saveTable();
    });
  }

  /**
   * Marks ranks about to be asked to flush for `epoch`, on disk before it
   * returns: the requests go out only then. Recorded after them, an agent
   * killed in between (a rank table write waits for an fsync, which a loaded
   * disk makes long) left its ranks flushing while the table said running;
   * the next agent waited for them to connect again, which a flushed rank
   * never does, and the job's flush could not be finished.
   */
  recordFlushAsked(jobId: string, ranks: readonly number[], epoch: number): void {
    const before = new Map<RankTableEntry, number>();
    for (const rank of ranks) {
      const e = this.ranks.get(RankSupervisor.key(jobId, rank));
      if (!e || e.table.flushEpoch === epoch) continue;
      before.set(e.table, e.table.flushEpoch);
      e.table.flushEpoch = epoch;
    }
    if (before.size === 0) return;
    const err = this.saveTable();
    if (err) {
      for (const [t, flushEpoch] of before) t.flushEpoch = flushEpoch;
      // Asked while the table says otherwise, a rank would be left flushing for an agent restarted meanwhile
      // to wait for: none is asked, and the PREPARE fails (the checkpoint aborts, the job runs on).
      throw new FerryError(ErrorCode.STATE_UNWRITABLE, `host ${this.options.host} cannot write its rank table ${this.tablePath} (${errorMessage(err)}): no rank of job ${jobId} was asked to flush`);
    }
  }

  /**
   * Writes the rank table; returns the error if it could not (its disk full, say): said on the agent's log
   * at most once a minute, and written again every RANK_TABLE_SAVE_INTERVAL_MS until it can be.
   */
  private saveTable(): unknown {
    try {
      const ended = [...this.unreported.values(), ...this.owingOutput.values()];
      saveRankTable(this.tablePath, [...[...this.ranks.values()].filter((e) => !e.ended).map((e) => e.table), ...ended], { rejoinGraceMs: this.rejoinGraceMs });
    } catch (err) {
      trace(`writing the rank table ${this.tablePath}: ${errorMessage(err)}`);
      const now = Date.now();
      const u = (this.unsaved ??= { warnedMs: 0, failures: 0 });
      u.failures++;
      if (now - u.warnedMs >= RANK_TABLE_WARNING_EVERY_MS) {
        this.warn(
          `cannot write the rank table ${this.tablePath}: ${errorMessage(err)}${u.failures > 1 ? ` (${u.failures} writes failed)` : ''}; ` +
            'an agent restarted now would not know what became of its ranks since; checkpoints of them fail',
        );
        u.warnedMs = now;
      }
      this.saveTimer ??= setTimeout(() => {
        this.saveTimer = undefined;
        this.saveTable();
      }, RANK_TABLE_SAVE_INTERVAL_MS);
      this.saveTimer.unref?.();
      return err;
    }
    if (this.unsaved) {
      this.warn(`the rank table ${this.tablePath} is written again`);
      this.unsaved = undefined;
    }
    return undefined;
  }

  private warn(message: string): void {
    (this.options.warn ?? ((m: string) => trace(`warning: ${m}`)))(message);
  }

  has(jobId: string, rank: number): boolean {
    return this.ranks.has(RankSupervisor.key(jobId, rank));
  }

  /**
   * Signals every rank of a job through its ferry-init (PID 1 of the rank's
   * namespace), which forwards the signal to the program. `unshare` itself
   * blocks SIGTERM and SIGINT while it waits, so signalling it would do
   * nothing; a rank whose ferry-init is not forked yet is retried shortly.
   */
  signalJob(jobId: string, signal: NodeJS.Signals): number {
    const targets = [...this.ranks.values()].filter((e) => e.spec.jobId === jobId);
    this.signalEnding(targets, signal);
    return targets.length;
  }

  /**
   * Signals `targets`; a SIGTERM or SIGINT is followed by SIGKILL
   * killGraceMs (default RANK_KILL_GRACE_MS) later, so a rank that catches or ignores it cannot keep
   * its job from ending. Only the processes signalled now: a later copy of the
   * rank (restored under the same job id) is not theirs to kill.
   */
  private signalEnding(targets: RankEntry[], signal: NodeJS.Signals): void {
    for (const e of targets) this.signalRank(e, signal, SIGNAL_RETRIES);
    if (targets.length === 0 || (signal !== 'SIGTERM' && signal !== 'SIGINT')) return;
    // A rank its dump left stopped (a migration given up, a cancel during checkpoint --stop) would take the
    // signal only at its SIGCONT, or die of the SIGKILL below: it is continued to take it now.
    const stopped = targets.filter((e) => e.table.stoppedByDump);
    for (const e of stopped) {
      delete e.table.stoppedByDump;
      this.signalRank(e, 'SIGCONT', SIGNAL_RETRIES);
    }
    if (stopped.length > 0) this.saveSoon();
    const graceMs = this.options.killGraceMs ?? RANK_KILL_GRACE_MS;
    setTimeout(() => {
      for (const e of targets) {
        if (this.ranks.get(RankSupervisor.key(e.spec.jobId, e.spec.rank)) !== e) continue;
        trace(`rank ${e.spec.jobId}/${e.spec.rank} still runs ${graceMs} ms after ${signal}: SIGKILL`);
        this.signalRank(e, 'SIGKILL', 0);
      }
    }, graceMs).unref();
  }

  /**
   * Signals some ranks of a job (through ferry-init); returns how many were
   * found. With `onlyPid`, only a rank whose process is that pid.
   */
  signalRanks(jobId: string, ranks: number[], signal: NodeJS.Signals, onlyPid?: number): number {
    const targets = ranks
      .map((rank) => this.ranks.get(RankSupervisor.key(jobId, rank)))
      .filter((e): e is RankEntry => e !== undefined && (onlyPid === undefined || e.process.pid === onlyPid));
    if (onlyPid !== undefined && targets.length < ranks.length) trace(`${signal} for pid ${onlyPid} of job ${jobId} ranks ${ranks.join(',')}: not the copy running here, left alone`);
    this.signalEnding(targets, signal);
    return targets.length;
  }


  fence(): string[] {
    const stopped: string[] = [];
    for (const [key, e] of this.ranks) {
      if (e.ended || e.table.fenced || e.lastSignal === 'SIGKILL') continue;
      const init = initPidOf(e.process.pid ?? 0);
      // (a job its launcher suspended is stopped already: continuing it is not the fence's to do)
      const program = init ? childrenOf(init)[0] : undefined;
      if (program && ['T', 't'].includes(stateCodeOf(program))) continue;
      e.table.fenced = true;
      this.signalRank(e, 'SIGTSTP', SIGNAL_RETRIES);
      stopped.push(key);
    }
    if (stopped.length > 0) this.saveTable();
    return stopped;
  }

  markStoppedByDump(jobId: string, ranks: number[]): void {
    const marked: RankTableEntry[] = [];
    for (const rank of ranks) {
      const e = this.ranks.get(RankSupervisor.key(jobId, rank));
      if (!e || e.table.stoppedByDump) continue;
      e.table.stoppedByDump = true;
      marked.push(e.table);
    }
    // On disk before it returns, and so before any CRIU runs: an agent killed in the middle of the dump leaves
    // the ranks stopped, and the next one must know to continue them. Not on disk, no rank is dumped.
    if (marked.length === 0) return;
    const err = this.saveTable();
    if (err) {
      for (const t of marked) delete t.stoppedByDump;
      throw new FerryError(
        ErrorCode.STATE_UNWRITABLE,
        `host ${this.options.host} cannot write its rank table ${this.tablePath} (${errorMessage(err)}): no rank of job ${jobId} was dumped, ` +
          'as an agent restarted during the dump would not know to continue the ranks it leaves stopped',
      );
    }
  }

  continueStoppedByDump(jobId: string, ranks: number[]): number[] {
    const continued: number[] = [];
    for (const rank of ranks) {
      const e = this.ranks.get(RankSupervisor.key(jobId, rank));
      if (!e?.table.stoppedByDump) continue;
      delete e.table.stoppedByDump;
      this.signalRank(e, 'SIGCONT', SIGNAL_RETRIES);
      continued.push(rank);
    }
    if (continued.length > 0) this.saveSoon();
    return continued;
  }

  rememberRejoinGrace(ms: number): void {
    if (ms === this.rejoinGraceMs) return;
    this.rejoinGraceMs = ms;
    this.saveTable();
  }

  rememberedRejoinGrace(): number {
    return this.rejoinGraceMs;
  }

  unfence(): string[] {
    const continued: string[] = [];
    for (const [key, e] of this.ranks) {
      if (!e.table.fenced) continue;
      delete e.table.fenced;
      if (e.lastSignal === 'SIGKILL') continue; // (a copy the coordinator gave up, killed as it answered)
      this.signalRank(e, 'SIGCONT', SIGNAL_RETRIES);
      continued.push(key);
    }
    if (continued.length > 0) this.saveTable();
    return continued;
  }

  /**
   * Ranks about to be stopped after their dump (a migration, checkpoint
   * --stop): their init directories stay, as a restore of the same image may
   * be creating the same path right now (namespace hosts of one machine share
   * /tmp). The sweep (sweepInitDirs) removes them once nothing uses them.
   * Ranks that end otherwise take theirs with them.
   */
  keepInitDirs(jobId: string, ranks: number[]): void {
    for (const rank of ranks) {
      const e = this.ranks.get(RankSupervisor.key(jobId, rank));
      if (e) e.keepInitDir = true;
    }
  }

  /**
   * Whether a connection to the rank socket that says it is RANK of JOB and
   * showed TOKEN is that rank: the token must be the one in the environment
   * of the rank's ferry-init (RANK_TOKEN_ENV). Returns why not, or undefined
   * (also for a rank this agent does not run: the agent refuses those itself).
   * A rank started without a token (by an agent of an earlier version) must
   * show none.
   */
  checkRankToken(jobId: string, rank: number, token: string): string | undefined {
    const init = this.initPidOfRank(jobId, rank);
    if (!init) return undefined;
    const expected = Buffer.from(processEnv(init, RANK_TOKEN_ENV) ?? '');
    const shown = Buffer.from(token);
    if (expected.length === shown.length && timingSafeEqual(expected, shown)) return undefined;
    if (shown.length === 0) {
      // A program statically linked with an older libferrympi says hello without one.
      return (
        `rank ${rank} of job ${jobId} on host ${this.options.host}: the connection showed no rank token: a process that is not ` +
        `the rank, or a program linked with a Ferry runtime from before rank tokens (build it again with ferry mpicc)`
      );
    }
    return `a process that is not rank ${rank} of job ${jobId} on host ${this.options.host} said it was (it did not show the job's rank token)`;
  }

  /** The pid of a rank's ferry-init (the root of its process tree, PID 1 of its namespace). */
  /** The init directory of a rank that runs here (undefined for one taken over without it). */
  initDirOfRank(jobId: string, rank: number): string | undefined {
    return this.ranks.get(RankSupervisor.key(jobId, rank))?.table.initDir;
  }

  initPidOfRank(jobId: string, rank: number): number | undefined {
    const e = this.ranks.get(RankSupervisor.key(jobId, rank));
    return e ? initPidOf(e.process.pid ?? 0) : undefined;
  }

  private signalRank(e: RankEntry, signal: NodeJS.Signals, retries: number): void {
    const unsharePid = e.process.pid ?? 0;
    if (e.ended || (e.child && (e.child.exitCode !== null || e.child.signalCode !== null))) return;
    // A re-adopted rank's pid may have been reused since it ended.
    if (!e.child && !processAlive(unsharePid, e.table.pidStartTicks)) return;
    e.lastSignal = signal;
    try {
      // SIGKILL goes to our own child (unshare or ferry-restore): its death
      // takes the rank's namespace with it (--kill-child, --restore-sibling).
      if (signal === 'SIGKILL') {
        process.kill(unsharePid, signal);
        return;
      }
      // PID 1 of a namespace drops signals it neither handles nor blocks:
      // wait until ferry-init runs and has blocked the signals it forwards.
      const init = initPidOf(unsharePid);
      if (init && initReady(init)) {
        // A flushed rank's resume goes to the runtime's own process, which a wrapper script may have
        // between it and ferry-init (runtime-processes.ts); anything else goes through ferry-init.
        const runtime = signal === 'SIGUSR2' ? descendantsCatching(init, 'SIGUSR2') : [];
        if (runtime.length === 0) process.kill(init, signal);
        for (const pid of runtime) process.kill(pid, signal);
      }
      else if (retries > 0) setTimeout(() => this.signalRank(e, signal, retries - 1), SIGNAL_RETRY_MS).unref();
      else trace(`rank ${e.spec.jobId}/${e.spec.rank}: no ferry-init under unshare ${unsharePid}; ${signal} not delivered`);
    } catch (err) {
      trace(`kill ${signal} rank ${e.spec.jobId}/${e.spec.rank}: ${errorMessage(err)}`);
    }
  }

}

/**
 * True once `pid` is ferry-init and has forked the program: it blocks the
 * signals it forwards before it forks, so from then on none is lost. (Its
 * SigBlk in /proc cannot tell: sigwaitinfo unblocks the set while it waits.)
 */
export function initReady(pid: number): boolean {
  try {
    if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'ferry-init') return false;
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().length > 0;
  } catch {
    return false;
  }
}

/** A process's state (processStateCode), '' once it is gone. */
function stateCodeOf(pid: number): string {
  try {
    return processStateCode(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return '';
  }
}

/** The pid (in our namespace) of the child unshare forked: the rank's ferry-init. */
export function initPidOf(unsharePid: number): number | undefined {
  return childrenOf(unsharePid)[0];
}

function resolveProgram(program: string, cwd: string, path: string): string | undefined {
  const executable = (p: string) => {
    try {
      accessSync(p, fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (program.includes('/')) {
    const p = isAbsolute(program) ? program : resolve(cwd, program);
    return executable(p) ? p : undefined;
  }
  for (const dir of path.split(delimiter)) {
    if (dir && executable(join(dir, program))) return join(dir, program);
  }
  return undefined;
}
