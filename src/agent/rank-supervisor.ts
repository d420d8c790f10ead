// Starts the ranks of this node and watches them. Each rank runs as
//   unshare --pid --fork --kill-child setsid ferry-init PROGRAM ARGS...
// so that it is PID 1's child in a PID namespace of its own: CRIU can then
// restore it on any host without PID clashes (FACTS.md), and ferry-init
// forwards signals and reaps orphans (PROTOCOL-NOTES.md). Output goes to
// per-job log files opened for append, which survive a dump and restore,
// where a pipe would not.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants as fsConstants, mkdirSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { EventEmitter } from 'node:events';
import { constants as osConstants } from 'node:os';
import { ErrorCode, type RankExitedInit, type RankProcessInit } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';

const trace = tracer('ranks');

const SIGNAL_RETRY_MS = 20;
const SIGNAL_RETRIES = 100;
/** How long ranks get between SIGTERM and SIGKILL. */
export const RANK_KILL_GRACE_MS = 10_000;

export interface RankStartSpec {
  jobId: string;
  rank: number;
  worldSize: number;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
}

export interface RankSupervisorOptions {
  host: string;
  logsDir: string;
  /** Path of the ferry-init binary. */
  initPath: string;
  /** Abstract socket name of this node's agent, handed to ranks as FERRY_AGENT_SOCKET. */
  agentSocketName: string;
}

interface RankEntry {
  spec: RankStartSpec;
  child: ChildProcess;
  process: RankProcessInit;
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
}

export class RankSupervisor extends EventEmitter<RankSupervisorEvents> implements RankRunner {
  private readonly ranks = new Map<string, RankEntry>();

  constructor(private readonly options: RankSupervisorOptions) {
    super();
  }

  static key(jobId: string, rank: number): string {
    return `${jobId}/${rank}`;
  }

  logPaths(jobId: string, rank: number): { out: string; err: string } {
    const dir = join(this.options.logsDir, jobId);
    return { out: join(dir, `rank-${rank}.out`), err: join(dir, `rank-${rank}.err`) };
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
    const out = openSync(logs.out, 'a');
    const err = openSync(logs.err, 'a');
    let child: ChildProcess;
    try {
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
          },
          stdio: ['ignore', out, err],
          detached: true,
        },
      );
    } catch (e) {
      throw new FerryError(ErrorCode.SPAWN_FAILED, `cannot start rank ${spec.rank} of ${spec.jobId} on ${this.options.host}: ${errorMessage(e)}`);
    } finally {
      closeSync(out);
      closeSync(err);
    }
    trace(`started ${spec.jobId}/${spec.rank} pid ${child.pid}: ${program}`);
    return this.track(spec, child, logs);
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
    return this.track(spec, child, this.logPaths(spec.jobId, spec.rank));
  }

  private track(spec: RankStartSpec, child: ChildProcess, logs: { out: string; err: string }): RankProcessInit {
    const key = RankSupervisor.key(spec.jobId, spec.rank);
    const pid = child.pid ?? 0;
    const info: RankProcessInit = { job_id: spec.jobId, rank: spec.rank, pid, endpoint: '', started_ms: Date.now() };
    this.ranks.set(key, { spec, child, process: info });
    child.on('error', (e) => trace(`rank ${key}: ${e.message}`));
    child.on('exit', (code, signal) => {
      if (this.ranks.get(key)?.child === child) this.ranks.delete(key);
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
      trace(`exit ${key} code=${code} signal=${signal}`);
      this.emit('exit', exited);
    });
    return info;
  }

  running(): RankProcessInit[] {
    return [...this.ranks.values()].map((e) => e.process);
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
    for (const e of targets) this.signalRank(e, signal, SIGNAL_RETRIES);
    // A rank that ignores SIGTERM must not keep its job from ending. Only the
    // processes signalled now: a later copy of the rank (restored under the
    // same job id) is not theirs to kill.
    if (targets.length > 0 && (signal === 'SIGTERM' || signal === 'SIGINT')) {
      setTimeout(() => {
        for (const e of targets) {
          if (this.ranks.get(RankSupervisor.key(e.spec.jobId, e.spec.rank)) !== e) continue;
          trace(`rank ${jobId}/${e.spec.rank} still runs ${RANK_KILL_GRACE_MS} ms after ${signal}: SIGKILL`);
          this.signalRank(e, 'SIGKILL', 0);
        }
      }, RANK_KILL_GRACE_MS).unref();
    }
    return targets.length;
  }

  /** Signals some ranks of a job (through ferry-init); returns how many were found. */
  signalRanks(jobId: string, ranks: number[], signal: NodeJS.Signals): number {
    let n = 0;
    for (const rank of ranks) {
      const e = this.ranks.get(RankSupervisor.key(jobId, rank));
      if (!e) continue;
      this.signalRank(e, signal, SIGNAL_RETRIES);
      n++;
    }
    return n;
  }

  /** The pid of a rank's ferry-init (the root of its process tree, PID 1 of its namespace). */
  initPidOfRank(jobId: string, rank: number): number | undefined {
    const e = this.ranks.get(RankSupervisor.key(jobId, rank));
    return e ? initPidOf(e.process.pid ?? 0) : undefined;
  }

  private signalRank(e: RankEntry, signal: NodeJS.Signals, retries: number): void {
    const unsharePid = e.process.pid ?? 0;
    if (e.child.exitCode !== null || e.child.signalCode !== null) return;
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
      if (init && initReady(init)) process.kill(init, signal);
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

/** The pid (in our namespace) of the child unshare forked: the rank's ferry-init. */
export function initPidOf(unsharePid: number): number | undefined {
  try {
    for (const tid of readdirSync(`/proc/${unsharePid}/task`)) {
      const children = readFileSync(`/proc/${unsharePid}/task/${tid}/children`, 'utf8').trim();
      if (children) return Number(children.split(/\s+/)[0]);
    }
  } catch {
    /* the process is gone */
  }
  return undefined;
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
