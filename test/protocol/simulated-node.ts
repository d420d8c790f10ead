// In-memory stand-ins for what an agent does to real processes, so the
// coordinator's protocol can be driven through many cases in milliseconds:
// SimulatedRanks "runs" ranks without processes; ScriptedSteps answers each
// checkpoint step as a test says (succeed, fail a rank, hang, ...).
import { EventEmitter } from 'node:events';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, RoundStep, type RankExitedInit, type RankImageInit, type RankProcessInit, type RoundRequest } from '../../src/gen/proto.js';
import { FerryError } from '../../src/common/ferry-error.js';
import { RANK_KILL_GRACE_MS, type RankRunner, type RankStartSpec, type RankSupervisorEvents, type ReadoptResult } from '../../src/agent/rank-supervisor.js';
import type { RankSteps, StepOutcome } from '../../src/agent/rank-steps.js';
import type { OutputPosition } from '../../src/agent/output-tailer.js';

/** How long a simulated rank takes to die of SIGTERM. */
const SIGTERM_DEATH_MS = 100;

export class SimulatedRanks extends EventEmitter<RankSupervisorEvents> implements RankRunner {
  readonly live = new Map<string, RankProcessInit>();
  /** Ranks flushed by a PREPARE (or restored) that no RESUME or STOP has reached since: job/rank -> epoch. Kept with
   * the ranks, so an agent that comes back with them (startAgent with these ranks) knows, as a real one does. */
  readonly flushed = new Map<string, number>();
  /**
   * Ranks asked to flush (job/rank -> epoch) whose flush has not ended: a model that sends end-of-channel markers
   * (the random schedules) keeps them here until every peer was asked too. Reported as awaiting a RESUME, as a real
   * agent does; a RESUME that reaches one (resumeWhenFlushed) wakes it once its flush ends.
   */
  readonly flushing = new Map<string, number>();
  readonly resumeWhenFlushed = new Set<string>();
  /** Ranks whose start fails (job/rank -> why), as a real start does for a program it cannot find. */
  readonly refuse = new Map<string, string>();
  /** Ranks (job/rank) that catch SIGTERM and SIGINT and run on: the SIGKILL a real agent sends RANK_KILL_GRACE_MS later ends them. */
  readonly ignoreTerm = new Set<string>();
  /** Every signal delivered, in order, as "job/rank SIGNAL". */
  readonly signalled: string[] = [];
  /** Ranks (job/rank) stopped by SIGTSTP or SIGSTOP (their ferry-init stops them): a SIGTERM waits for their SIGCONT. */
  readonly stopped = new Map<string, NodeJS.Signals[]>();
  private nextPid = 1000;
  /** The agent stopped (close) and none has taken the ranks back (readopt) yet: exits wait, as in a real rank table. */
  private away = false;
  private readonly endedAway: RankExitedInit[] = [];

  /**
   * Kept as a rank table keeps them: where each rank's output stood (recordOutputPosition), and the ended
   * ranks whose followers had not taken all of it (exitReported), for the next agent (readopt: owingOutput).
   * Off: a next agent starts anew with the ranks' output (as with a rank table lost).
   */
  keepsOutput = false;
  private readonly positions = new Map<string, OutputPosition>();
  private readonly owing = new Map<string, RankExitedInit>();

  /** `logDir`: the ranks' log files are real files there, written by print() (else they do not exist). */
  constructor(private readonly logDir?: string) {
    super();
  }

  recordOutputPosition(jobId: string, rank: number, position: OutputPosition): void {
    if (this.keepsOutput) this.positions.set(`${jobId}/${rank}`, position);
  }

  exitReported(e: RankExitedInit, owesOutput?: boolean): void {
    if (this.keepsOutput && owesOutput) this.owing.set(`${e.job_id}/${e.rank}`, e);
  }

  outputTaken(e: RankExitedInit): void {
    this.owing.delete(`${e.job_id}/${e.rank}`);
  }

  /** The rank writes `text` to its stdout log file, as a real rank does. */
  print(jobId: string, rank: number, text: string): void {
    if (!this.logDir) throw new Error('SimulatedRanks.print needs a log dir');
    appendFileSync(this.logPaths(jobId, rank).out, text);
  }

  start(spec: RankStartSpec): RankProcessInit {
    const refused = this.refuse.get(`${spec.jobId}/${spec.rank}`);
    if (refused) throw new FerryError(ErrorCode.SPAWN_FAILED, refused);
    const p = { job_id: spec.jobId, rank: spec.rank, pid: this.nextPid++, endpoint: '', started_ms: Date.now() };
    this.live.set(`${spec.jobId}/${spec.rank}`, p);
    return p;
  }

  running(): RankProcessInit[] {
    return [...this.live.values()];
  }

  has(jobId: string, rank: number): boolean {
    return this.live.has(`${jobId}/${rank}`);
  }

  signalJob(jobId: string, signal: NodeJS.Signals): number {
    let n = 0;
    for (const p of [...this.live.values()]) {
      if (p.job_id !== jobId) continue;
      n++;
      this.deliver(jobId, p.rank ?? 0, signal);
    }
    return n;
  }

  /** A process takes a moment to die of SIGTERM (unless it ignores it or is stopped); SIGKILL is immediate. */
  private deliver(jobId: string, rank: number, signal: NodeJS.Signals): void {
    this.signalled.push(`${jobId}/${rank} ${signal}`);
    this.act(jobId, rank, signal);
  }

  private act(jobId: string, rank: number, signal: NodeJS.Signals): void {
    const key = `${jobId}/${rank}`;
    if (signal === 'SIGKILL') {
      this.stopped.delete(key);
      this.exit(jobId, rank, 137);
    }
    if (signal === 'SIGTSTP' || signal === 'SIGSTOP') {
      if (!this.stopped.has(key)) this.stopped.set(key, []);
      return;
    }
    if (signal === 'SIGCONT') {
      const pending = this.stopped.get(key) ?? [];
      this.stopped.delete(key);
      for (const s of pending) this.act(jobId, rank, s);
      return;
    }
    const pendingWhileStopped = this.stopped.get(key);
    if (pendingWhileStopped && signal !== 'SIGKILL') {
      // A stopped process takes no signal but SIGKILL: this one waits, and the agent's SIGKILL after the grace ends it.
      pendingWhileStopped.push(signal);
      const p = this.live.get(key);
      if (signal === 'SIGTERM' || signal === 'SIGINT') setTimeout(() => this.live.get(key) === p && this.stopped.has(key) && this.act(jobId, rank, 'SIGKILL'), RANK_KILL_GRACE_MS);
      return;
    }
    const p = this.live.get(`${jobId}/${rank}`);
    if (p && this.ignoreTerm.has(`${jobId}/${rank}`) && (signal === 'SIGTERM' || signal === 'SIGINT')) {
      // As RankSupervisor.signalEnding: this copy gets SIGKILL, a later one of the rank does not.
      setTimeout(() => this.live.get(`${jobId}/${rank}`) === p && this.exit(jobId, rank, 137), RANK_KILL_GRACE_MS);
    }
    if (this.ignoreTerm.has(`${jobId}/${rank}`)) return;
    if (signal === 'SIGTERM') setTimeout(() => this.exit(jobId, rank, 143), SIGTERM_DEATH_MS);
    if (signal === 'SIGINT') setTimeout(() => this.exit(jobId, rank, 130), SIGTERM_DEATH_MS);
  }

  signalRanks(jobId: string, ranks: number[], signal: NodeJS.Signals, onlyPid?: number): number {
    let n = 0;
    for (const rank of ranks) {
      const p = this.live.get(`${jobId}/${rank}`);
      if (!p || (onlyPid !== undefined && p.pid !== onlyPid)) continue;
      n++;
      this.deliver(jobId, rank, signal);
    }
    return n;
  }

  logPaths(jobId: string, rank: number): { out: string; err: string } {
    if (this.logDir) return { out: join(this.logDir, `${jobId}.${rank}.out`), err: join(this.logDir, `${jobId}.${rank}.err`) };
    return { out: `/nonexistent/${jobId}/${rank}.out`, err: `/nonexistent/${jobId}/${rank}.err` };
  }

  /** The rank ends with `code`, as a process would; while no agent runs, the next one learns of it (readopt). */
  exit(jobId: string, rank: number, code: number, reason = ''): void {
    const p = this.live.get(`${jobId}/${rank}`);
    if (!p) return;
    this.live.delete(`${jobId}/${rank}`);
    this.stopped.delete(`${jobId}/${rank}`);
    this.flushed.delete(`${jobId}/${rank}`);
    this.flushing.delete(`${jobId}/${rank}`);
    this.resumeWhenFlushed.delete(`${jobId}/${rank}`);
    const ended: RankExitedInit = { job_id: jobId, rank, pid: p.pid, exit_code: code, signal: '', exited_ms: Date.now(), reason };
    if (this.away) this.endedAway.push(ended);
    else queueMicrotask(() => this.emit('exit', ended));
  }

  /**
   * The rank is gone, with its ferry-init and no exit status, while no agent runs (its host restarted): the
   * next agent reports it as RankSupervisor does then.
   */
  vanish(jobId: string, rank: number): void {
    const p = this.live.get(`${jobId}/${rank}`);
    if (!p || !this.away) throw new Error(`vanish: ${jobId}/${rank} is not a live rank of an agent that is away`);
    this.live.delete(`${jobId}/${rank}`);
    this.endedAway.push({ job_id: jobId, rank, pid: p.pid, exit_code: -1, signal: 'LOST', exited_ms: Date.now(), reason: 'the rank ended while its agent was down and left no exit status', lost_with_host: true });
  }

  /** The agent stops: from now on exits are kept for the next one, as the real rank table and status files keep them. */
  close(): void {
    this.away = true;
  }

  /**
   * A new agent takes the ranks back: the live ones it finds in running() (their flushed epochs are kept in
   * `flushed`, which ScriptedSteps reads), the ones that ended meanwhile are reported with their status.
   */
  readopt(): ReadoptResult {
    this.away = false;
    const owingOutput = [...this.owing.values()].map((exit) => {
      const p = this.positions.get(`${exit.job_id}/${exit.rank}`)!;
      return { exit, logs: this.logPaths(exit.job_id ?? '', exit.rank ?? 0), offsets: p.sent, output: { source: p.source, taken: p.taken } };
    });
    return { alive: [], ended: this.endedAway.splice(0).map((exit) => ({ exit, logs: this.logPaths(exit.job_id ?? '', exit.rank ?? 0), offsets: { out: 0, err: 0 } })), owingOutput };
  }
}

export type StepScript = (req: RoundRequest) => StepOutcome | Promise<StepOutcome> | 'hang';

/** Answers each step: by default every rank succeeds; a test replaces the script of a step. */
export class ScriptedSteps implements RankSteps {
  readonly seen: { step: RoundStep; ranks: number[]; dumpRanks: number[]; epoch: number; transient: boolean; storeSeparately: boolean; leaveStopped: boolean; rollBackFiles: boolean; appendedSizes: [string, number][]; sources: { rank: number; host: string; server: string }[] }[] = [];
  scripts = new Map<RoundStep, StepScript>();
  /** The scripts flush the ranks themselves (SimulatedRanks.flushing): a PREPARE that answers does not mark them flushed. */
  scriptsFlush = false;

  constructor(
    readonly host: string,
    private readonly ranks: SimulatedRanks,
  ) {}

  awaitingResume(): Map<string, number> {
    return new Map([...this.ranks.flushing, ...this.ranks.flushed]);
  }

  adoptFlushed(jobId: string, rank: number, epoch: number): void {
    this.ranks.flushed.set(`${jobId}/${rank}`, epoch);
  }

  async run(req: RoundRequest): Promise<StepOutcome> {
    this.seen.push({ step: req.step, ranks: [...req.ranks], dumpRanks: [...req.dump_ranks], epoch: req.epoch, transient: req.transient, storeSeparately: req.store_separately === true, leaveStopped: req.leave_stopped === true, rollBackFiles: req.roll_back_files === true, appendedSizes: (req.appended_sizes ?? []).map((f) => [f.path, Number(f.size_bytes)]), sources: req.sources.map((x) => ({ rank: x.rank, host: x.host, server: x.server })) });
    const out = await this.outcome(req);
    if (out === 'hang') return new Promise<StepOutcome>(() => {}); // the ranks stay as they were
    if (req.step === RoundStep.RESUME) {
      for (const r of req.ranks) {
        if (out.failed.has(r)) continue;
        const key = `${req.job_id}/${r}`;
        if (this.ranks.flushing.has(key)) this.ranks.resumeWhenFlushed.add(key);
        this.ranks.flushed.delete(key);
      }
    }
    if (req.step === RoundStep.STOP) for (const r of req.dump_ranks) this.ranks.flushed.delete(`${req.job_id}/${r}`);
    // (not a rank that died while the step ran: only a live process is flushed)
    if (req.step === RoundStep.PREPARE && !this.scriptsFlush) for (const r of req.ranks) if (!out.failed.has(r) && this.ranks.has(req.job_id, r)) this.ranks.flushed.set(`${req.job_id}/${r}`, req.epoch);
    if (req.step === RoundStep.RESTORE) for (const p of out.started ?? []) this.ranks.flushed.set(`${req.job_id}/${p.rank}`, req.epoch);
    return out;
  }

  private async outcome(req: RoundRequest): Promise<StepOutcome | 'hang'> {
    const script = this.scripts.get(req.step);
    return script ? script(req) : this.byDefault(req);
  }

  /** What the step does with no script (for scripts that do something first). */
  byDefault(req: RoundRequest): StepOutcome {
    if (req.step === RoundStep.DUMP || req.step === RoundStep.STORE) return { failed: new Map(), images: this.dumpImages(req) };
    if (req.step === RoundStep.STOP) {
      for (const r of req.dump_ranks) this.ranks.exit(req.job_id, r, 137);
    }
    if (req.step === RoundStep.FETCH) return { failed: new Map(), bytesFetched: req.sources.length * 1000 };
    if (req.step === RoundStep.RESTORE) return { failed: new Map(), started: this.restoreRanks(req) };
    if (req.step === RoundStep.PREPARE) return { failed: new Map(), flush: { drained_messages: 2 * req.ranks.length, drained_bytes: 64, flush_ms: 1 } };
    return { failed: new Map() };
  }

  /** What a DUMP (or STORE) reports by default: an image of each rank to dump (for scripts that add to that). */
  dumpImages(req: RoundRequest): RankImageInit[] {
    return req.dump_ranks.map((rank) => ({
      rank,
      location: `/images/${this.host}/${req.job_id}/${req.epoch}/rank-${rank}`,
      size_bytes: 1000 + rank,
      manifest_sha256: 'a'.repeat(64),
      files: 3,
    }));
  }

  /** What a RESTORE does by default: starts each rank it names (for scripts that delay or add to that). */
  restoreRanks(req: RoundRequest): RankProcessInit[] {
    return req.sources.map((src) => this.ranks.start({ jobId: req.job_id, rank: src.rank, worldSize: req.world_size, argv: [], cwd: '/', env: {} }));
  }

    stepsSeen(): RoundStep[] {
    return this.seen.map((s) => s.step);
  }
}

export function failRanks(ranks: number[], message: string, code = ErrorCode.INTERNAL): StepOutcome {
  return { failed: new Map(ranks.map((r) => [r, new FerryError(code, message)])) };
}
