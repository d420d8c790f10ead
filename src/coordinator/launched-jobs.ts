// Jobs started by an existing launcher (`mpiexec -n 4 ferry rank-exec ./app`,
// `srun ... ferry rank-exec ./app`): every rank-exec joins its launch with its
// rank, the world size and the host it runs on; once all have joined, the job
// is submitted with each rank placed on the host it joined from, and every
// joiner follows the job through its own join request. A launch that names a
// stopped or failed job (rank-exec --job-id) continues it from its last
// committed epoch instead, each rank restored where its rank-exec runs.
//
// Launch states (one launch per launch key):
//   gathering  joins are arriving; a deadline runs from the first one
//   starting   every rank joined; the job is being submitted
//   started    the job runs (the key is remembered while it does)
//   dropped    a join disagreed, or the deadline passed: every joiner got the reason
import { ErrorCode, type JobInfoInit, type JoinLaunchedRankRequest, type SignalLaunchedJobRequest } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { checkSafeName } from '../common/names.js';
import { tracer } from '../common/trace.js';
import type { PeerId } from '../transport/transport.js';
import { JOB_RUN_OVER_STATES } from './catalog-types.js';
import type { Coordinator } from './coordinator.js';
import { drainedWhy } from './host-registry.js';

const trace = tracer('launched');

/** How long a launch waits for all its ranks, from the first join, unless the joiner says otherwise. */
export const LAUNCH_JOIN_TIMEOUT_MS = 60_000;
/** The longest wait a joiner may ask for. */
export const LAUNCH_JOIN_MAX_TIMEOUT_MS = 3_600_000;
/** How long the reason a launch was dropped is kept for its late joiners. */
export const DROPPED_LAUNCH_MEMORY_MS = 60_000;

type LaunchState = 'gathering' | 'starting' | 'started' | 'dropped';

const LEGAL: Record<LaunchState, LaunchState[]> = {
  gathering: ['starting', 'dropped'],
  starting: ['started', 'dropped'],
  started: [],
  dropped: [],
};

interface Joiner {
  peer: PeerId;
  requestId: number;
  req: JoinLaunchedRankRequest;
  resolve: (job: JobInfoInit) => void;
  reject: (err: Error) => void;
}

interface Launch {
  key: string;
  state: LaunchState;
  first: JoinLaunchedRankRequest;
  joins: Map<number, Joiner>;
  timer: NodeJS.Timeout | undefined;
  jobId: string;
  /** Why it was dropped, for late joiners. */
  reason: string;
  droppedMs: number;
  /** Signals that came (by launch key) while the job was being submitted. */
  pendingSignals: SignalLaunchedJobRequest[];
}

export class LaunchedJobs {
  private readonly launches = new Map<string, Launch>();
  /** Signals already passed on, per job: "SIGINT#1". */
  private readonly signalled = new Map<string, Set<string>>();
  private nextJobNumber = 1;

  constructor(private readonly c: Coordinator) {}

  /**
   * One rank joins its launch. Resolves with the job once every rank joined and
   * the job started (the joiner then follows it under `requestId`); rejects
   * with the reason when the launch is dropped.
   */
  join(peer: PeerId, requestId: number, req: JoinLaunchedRankRequest): Promise<JobInfoInit> {
    this.forgetOld();
    checkJoin(req);
    let launch = this.launches.get(req.launch_key);
    if (launch?.state === 'dropped') {
      throw new FerryError(ErrorCode.BAD_REQUEST, `launch ${req.launch_key} was dropped: ${launch.reason}`);
    }
    if (launch?.state === 'started' || launch?.state === 'starting') {
      if (this.jobEnded(launch.jobId)) launch = undefined;
      else
        throw new FerryError(
          ErrorCode.BAD_REQUEST,
          `launch ${req.launch_key} already started as job ${launch.jobId}; rank ${req.rank} joined it again (is the launch key reused? set a new FERRY_JOB_KEY)`,
        );
    }
    if (!launch) {
      const waitMs = Math.min(req.wait_ms || LAUNCH_JOIN_TIMEOUT_MS, LAUNCH_JOIN_MAX_TIMEOUT_MS);
      launch = { key: req.launch_key, state: 'gathering', first: req, joins: new Map(), timer: undefined, jobId: '', reason: '', droppedMs: 0, pendingSignals: [] };
      const l = launch;
      l.timer = setTimeout(() => this.expire(l, waitMs), waitMs);
      l.timer.unref?.();
      this.launches.set(req.launch_key, l);
      trace(`launch ${req.launch_key}: gathering ${req.world_size} ranks of ${req.argv[0]} for up to ${waitMs} ms`);
    }
    const l = launch;
    return new Promise<JobInfoInit>((resolve, reject) => {
      const joiner: Joiner = { peer, requestId, req, resolve, reject };
      const disagreement = this.disagreement(l, req);
      if (disagreement) {
        l.joins.set(-1 - l.joins.size, joiner); // rejected with the others, under no rank
        this.drop(l, disagreement);
        return;
      }
      l.joins.set(req.rank, joiner);
      trace(`launch ${l.key}: rank ${req.rank} joined from ${req.host} (${l.joins.size}/${l.first.world_size})`);
      const host = this.c.hosts.get(req.host);
      if (!host || host.state !== 'up') {
        this.drop(
          l,
          host
            ? `rank ${req.rank} runs on host ${req.host}, which is ${host.state}`
            : `rank ${req.rank} runs on host "${req.host}", which is not known to the coordinator (give rank-exec --host, or FERRY_HOST, the name of this node's agent)`,
        );
        return;
      }
      if (host.drained) {
        this.drop(l, `rank ${req.rank} runs on host ${req.host}, which ${drainedWhy(req.host, host.drained)}`);
        return;
      }
      if (l.joins.size === l.first.world_size) void this.start(l);
    });
  }

  /**
   * A signal a rank-exec got from its launcher: the job gets the nth one once,
   * whichever rank-exec passes it on first. Before the job started (by launch
   * key): a gathering launch is dropped, a starting one is signalled once it runs.
   */
  async signal(req: SignalLaunchedJobRequest): Promise<string> {
    const signal = req.signal || 'SIGTERM';
    if (!req.job_id) {
      const l = this.launches.get(req.launch_key);
      if (l?.state === 'gathering') this.drop(l, `rank ${req.rank} got ${signal} from the launcher before every rank joined`);
      else if (l?.state === 'starting') l.pendingSignals.push({ ...req, signal });
      else if (l?.state === 'started') return this.signal({ ...req, job_id: l.jobId });
      return '';
    }
    const seen = this.signalled.get(req.job_id) ?? new Set<string>();
    const key = `${signal}#${req.nth || 1}`;
    if (seen.has(key)) return req.job_id;
    if (!this.c.catalog.getJob(req.job_id)) throw new FerryError(ErrorCode.UNKNOWN_JOB, `no job "${req.job_id}" in the catalog`);
    seen.add(key);
    this.signalled.set(req.job_id, seen);
    if (signal === 'SIGTSTP' || signal === 'SIGCONT') {
      // The launcher is being suspended, or resumed: so are the ranks (their ferry-init stops them at SIGTSTP),
      // and its rank-execs' leases wait meanwhile (launcher-leases.ts).
      const suspended = signal === 'SIGTSTP';
      this.c.jobs.launchers.suspended(req.job_id, suspended, req.rank);
      const what = suspended ? 'is suspended, and so are the ranks; the leases of its rank-execs wait' : 'runs again, and so do the ranks; the leases of its rank-execs start anew';
      this.c.event(suspended ? 'launch.suspend' : 'launch.continue', `job ${req.job_id}: ${signal} from the launcher (passed on by rank ${req.rank}): the launcher ${what}`, { jobId: req.job_id });
      // In turn with the job's operations: a checkpoint or migration under way ends (its ranks must flush
      // and resume) before the ranks stop, and a SIGCONT comes after the SIGTSTP it answers.
      const jobId = req.job_id;
      this.c.operations.queue(jobId, () => `${suspended ? 'suspending' : 'continuing'} its ranks with their launcher`, () => this.c.jobs.launchers.passStop(jobId, signal));
      return req.job_id;
    }
    this.c.event('launch.signal', `job ${req.job_id}: ${signal} from the launcher (passed on by rank ${req.rank})`, { jobId: req.job_id });
    await this.c.jobs.signal(req.job_id, signal, `by its launcher, passed on by the ferry rank-exec of rank ${req.rank}`);
    return req.job_id;
  }

  /** What makes a join not fit the launch it names, or '' when it fits. */
  private disagreement(l: Launch, req: JoinLaunchedRankRequest): string {
    const f = l.first;
    const firstRank = `rank ${f.rank}`;
    if (req.world_size !== f.world_size) return `rank ${req.rank} says the launch has ${req.world_size} ranks, ${firstRank} said ${f.world_size}`;
    if (req.argv.length !== f.argv.length || req.argv.some((a, i) => a !== f.argv[i])) {
      return `rank ${req.rank} runs "${req.argv.join(' ')}", ${firstRank} runs "${f.argv.join(' ')}" (every rank of a launch must run the same command)`;
    }
    if (req.job_id !== f.job_id) return `rank ${req.rank} asks for job id "${req.job_id}", ${firstRank} for "${f.job_id}"`;
    if (l.joins.has(req.rank)) return `rank ${req.rank} joined twice (${l.joins.get(req.rank)!.req.host} and ${req.host}): is the launch key shared by two launches?`;
    return '';
  }

  private async start(l: Launch): Promise<void> {
    this.transition(l, ['gathering'], 'starting');
    if (l.timer) clearTimeout(l.timer);
    const joiners = [...l.joins.values()];
    const rank0 = l.joins.get(0)!.req;
    const rankHosts: Record<number, string> = {};
    for (const j of joiners) rankHosts[j.req.rank] = j.req.host;
    l.jobId = rank0.job_id || this.newJobId(l.key);
    if (this.c.catalog.getJob(l.jobId)) {
      await this.resume(l, joiners, rankHosts);
      return;
    }
    const starting = this.c.jobs.submit(joiners[0].peer, joiners[0].requestId, {
      argv: rank0.argv,
      cwd: rank0.cwd,
      env: rank0.env,
      world_size: rank0.world_size,
      // The launcher's nodes (its allocation): the job's restarts and drains stay on them.
      hosts: [...new Set(Object.values(rankHosts))],
      rank_hosts: rankHosts,
      follow: false,
      job_id: l.jobId,
      checkpoint_every_ms: 0, keep_epochs: 0, auto_restarts: 0, own_image_replicas: false, image_replicas: 0,
      stdin: rank0.stdin ?? new Uint8Array(0), // (rank-exec --stdin, docs/launcher-hook.md)
    });
    // submit() creates the job before it first waits, and the ranks' output
    // can only come back after this turn: following it now misses none of it.
    const unfollowed = joiners.filter((j) => !this.tryFollow(l.jobId, j));
    let info: JobInfoInit;
    try {
      info = await starting;
    } catch (err) {
      this.drop(l, `job ${l.jobId} could not start: ${errorMessage(err)}`, err);
      return;
    }
    for (const j of unfollowed) this.tryFollow(l.jobId, j);
    this.c.event('launch.start', `launch ${l.key}: ${l.first.world_size} ranks joined (${l.first.launcher || 'launcher'}); job ${l.jobId} started`, { jobId: l.jobId });
    this.started(l, joiners, info);
  }

  /** The job runs: every joiner gets it, and the signals that came while it started are passed on. */
  private started(l: Launch, joiners: Joiner[], info: JobInfoInit): void {
    this.transition(l, ['starting'], 'started');
    for (const j of joiners) j.resolve(info);
    for (const s of l.pendingSignals.splice(0)) {
      this.signal({ ...s, job_id: l.jobId }).catch((err) => trace(`launch ${l.key}: ${s.signal} to job ${l.jobId} failed: ${errorMessage(err)}`));
    }
  }

  /**
   * A launch that names a job which exists already (`rank-exec --job-id J`):
   * one that was stopped after a checkpoint, or failed, is continued from its
   * last committed epoch, each rank restored on the host its rank-exec joined
   * from (the next allocation of a batch job whose time limit stopped it).
   * The joiners follow it once it runs. Anything else drops the launch.
   */
  private async resume(l: Launch, joiners: Joiner[], rankHosts: Record<number, string>): Promise<void> {
    const before = this.c.catalog.getJob(l.jobId)!.state;
    // Said to every joiner before the restart, which may take a while (images to fetch): a joiner
    // that has heard from its request waits for the rest without a deadline.
    const announce = (message: string) => {
      for (const j of joiners) this.c.sendOperator(j.peer, { reply_to: j.requestId, status: { ok: true }, final: false, job_notice: { job_id: l.jobId, message } });
    };
    let info: JobInfoInit;
    try {
      const rankMap = new Map(Object.entries(rankHosts).map(([rank, host]) => [Number(rank), host]));
      const hosts = [...new Set(rankMap.values())]; // this allocation's nodes become the job's
      const r = await this.c.jobs.continueJob(l.jobId, { worldSize: l.first.world_size, argv: l.first.argv, hosts, rankHosts: rankMap }, announce);
      this.c.event('launch.resume', `launch ${l.key}: ${l.first.world_size} ranks joined (${l.first.launcher || 'launcher'}); job ${l.jobId} ${before} before, restarted from epoch ${r.epoch}`, { jobId: l.jobId });
      info = this.c.jobs.jobInfo(l.jobId);
    } catch (err) {
      this.drop(l, errorMessage(err), err);
      return;
    }
    for (const j of joiners) this.tryFollow(l.jobId, j);
    this.started(l, joiners, info);
  }

  private tryFollow(jobId: string, j: Joiner): boolean {
    try {
      // A rank-exec forwards its own rank's output only.
      this.c.jobs.follow(jobId, j.peer, j.requestId, [j.req.rank], true, j.req.launcher_process ?? undefined);
      return true;
    } catch (err) {
      trace(`launch: follow of ${jobId} for rank ${j.req.rank} not yet possible: ${errorMessage(err)}`);
      return false;
    }
  }

  private expire(l: Launch, waitMs: number): void {
    if (l.state !== 'gathering') return;
    const joined = [...l.joins.keys()].filter((r) => r >= 0).sort((a, b) => a - b);
    const missing = [];
    for (let r = 0; r < l.first.world_size; r++) if (!l.joins.has(r)) missing.push(r);
    this.drop(
      l,
      `only ${joined.length} of ${l.first.world_size} ranks joined within ${waitMs / 1000} s (joined: ${joined.join(',') || 'none'}; missing: ${abbreviate(missing)})`,
      new FerryError(ErrorCode.TIMEOUT, ''),
    );
  }

  /** Every joiner of the launch gets the reason; late joiners get it for DROPPED_LAUNCH_MEMORY_MS. */
  private drop(l: Launch, reason: string, cause?: unknown): void {
    if (l.state === 'dropped') return;
    this.transition(l, ['gathering', 'starting'], 'dropped');
    if (l.timer) clearTimeout(l.timer);
    l.reason = reason;
    l.droppedMs = this.c.now();
    this.c.event('launch.drop', `launch ${l.key} dropped: ${reason}`, l.jobId && this.c.catalog.getJob(l.jobId) ? { jobId: l.jobId } : {});
    const code = cause instanceof FerryError ? cause.code : ErrorCode.BAD_REQUEST;
    const err = new FerryError(code, `launch ${l.key} dropped: ${reason}`);
    for (const j of l.joins.values()) j.reject(err);
  }

  private transition(l: Launch, from: LaunchState[], to: LaunchState): void {
    if (!from.includes(l.state) || !LEGAL[l.state].includes(to)) {
      throw new FerryError(ErrorCode.INTERNAL, `launch ${l.key}: cannot go ${l.state} -> ${to}`);
    }
    trace(`launch ${l.key}: ${l.state} -> ${to}`);
    l.state = to;
  }

  private jobEnded(jobId: string): boolean {
    const job = this.c.catalog.getJob(jobId);
    return !job || JOB_RUN_OVER_STATES.has(job.state);
  }

  /** Drops dropped launches past their memory, and started ones whose job ended. */
  private forgetOld(): void {
    const now = this.c.now();
    for (const [key, l] of this.launches) {
      if ((l.state === 'dropped' && now - l.droppedMs > DROPPED_LAUNCH_MEMORY_MS) || (l.state === 'started' && this.jobEnded(l.jobId))) {
        this.launches.delete(key);
        this.signalled.delete(l.jobId);
      }
    }
  }

  /**
   * An srun launch's job is "slurm-JOBID.STEP", Slurm's ids, so an operator goes from squeue to Ferry and
   * back; with a fresh suffix when a job has that id already (a Slurm cluster whose ids started over, or a
   * second cluster). Other launchers' ids hold nothing an operator knows: "hydra-<time>-<n>", "key-...".
   */
  private newJobId(key: string): string {
    const slurm = /^slurm:(\d+\.\d+)$/.exec(key);
    const base = slurm ? `slurm-${slurm[1]}` : (/^[a-z]+/.exec(key)?.[0] ?? 'launch');
    if (slurm && !this.c.catalog.getJob(base)) return base;
    for (;;) {
      const id = checkSafeName('job id', `${base}-${this.c.now().toString(36)}-${(this.nextJobNumber++).toString(36)}`);
      if (!this.c.catalog.getJob(id)) return id;
    }
  }
}

function checkJoin(req: JoinLaunchedRankRequest): void {
  const bad = (m: string) => new FerryError(ErrorCode.BAD_REQUEST, `join_launched_rank: ${m}`);
  if (!req.launch_key) throw bad('no launch key');
  if (req.world_size < 1) throw bad(`world size must be at least 1, got ${req.world_size}`);
  if (req.rank >= req.world_size) throw bad(`rank ${req.rank} is not below the world size ${req.world_size}`);
  if (!req.host) throw bad(`rank ${req.rank} names no host`);
  if (req.argv.length === 0 || !req.argv[0]) throw bad(`rank ${req.rank} names no program`);
  if (req.job_id) checkSafeName('job id', req.job_id);
}

/** "1,2,3,...,9 (40 in all)" for long lists of ranks. */
function abbreviate(ranks: number[]): string {
  return ranks.length <= 16 ? ranks.join(',') : `${ranks.slice(0, 16).join(',')},... (${ranks.length} in all)`;
}
