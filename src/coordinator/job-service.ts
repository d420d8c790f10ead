// Jobs and their ranks: placement, starting ranks through the agents, following
// their exits, and the job's end. The catalog holds the truth; this service
// keeps only what need not survive a restart. The ranks' output and who
// follows it: job-output.ts.
//
// Job states: pending (ranks being started) -> running -> succeeded | failed | cancelled.
// The job's exit code is the first non-zero rank status; after the first
// failure every other rank is sent SIGTERM, so a dead rank never leaves the
// job hanging (their agents SIGKILL those still there 10 s later:
// RANK_KILL_GRACE_MS). The failure is in the catalog (JobRow.ending) until the
// last rank ends, so a restarted coordinator ends the job with its real status
// and signals the ranks its agents come back with. A host that goes down with
// running ranks gets hostRejoinGraceMs (coordinator-config.ts) to come back (an
// agent restarted after a crash re-adopts the ranks that kept running): if it
// re-registers with them alive, their jobs run on; otherwise the jobs fail,
// naming the host and the ranks.
import { randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import {
  ErrorCode,
  JobState,
  type JobInfoInit,
  type MoveReplyInit,
  type RankExited,
  type RankExitedInit,
  type LauncherProcessInit,
  type RankProcess,
  RoundStep,
  type SubmitJobRequest,
} from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { checkSafeName } from '../common/names.js';
import { tracer } from '../common/trace.js';
import type { PeerId } from '../transport/transport.js';
import { JOB_RUN_OVER_STATES, type JobEnding, type JobRow, type RankRow, type RankUpdate } from './catalog-types.js';
import type { Coordinator } from './coordinator.js';
import { MAX_STDIN_BYTES } from './coordinator-config.js';
import { placeRanks } from './placement.js';
import { JobOutput } from './job-output.js';
import { JobLaunchers } from './job-launchers.js';
import { describeRoundFailure, runResumeRound, runRound, type RoundResult } from './round-runner.js';
import { EndpointTables } from './endpoint-tables.js';

const trace = tracer('jobs');

/** How often an operation waiting for hosts not heard from since the coordinator's start looks again (untilHeardFrom). */
const HOSTS_HEARD_POLL_MS = 20;
/** Random bytes of a job's rank token (StartRanksRequest.rank_token), hex-encoded for the ranks' environment. */
const RANK_TOKEN_BYTES = 16;

export class JobService {
  /** The ranks' output, on its way to the jobs' followers. */
  readonly output: JobOutput;
  /** The launchers of launched jobs: their rank-execs' follows, as leases (job-launchers.ts). */
  readonly launchers: JobLaunchers;
  private readonly placementCache = new Map<string, Map<string, number[]>>();
  /** The ranks' endpoints, gathered into each job's table and handed to its agents. */
  readonly tables: EndpointTables;
  /** The coordinator is shutting down (stop()): what it asks of the agents from now on is cut short. */
  private shuttingDown = false;
  /** Jobs being stopped after a committed checkpoint (ferry checkpoint --stop): their exits are expected. */
  private readonly stopping = new Map<string, number>();
  /** Starts of ranks not yet answered, as "job\0host". */
  private readonly startsInFlight = new Set<string>();
  /** A signal that ends the job, sent while a restart restores its ranks: delivered once they run (restartDone). */
  private readonly signalAfterRestart = new Map<string, string>();
  /** First failure of a running job, kept until the job ends. */
  private readonly failing = new Map<string, JobEnding>();
  private nextJobNumber = 1;
  /** Hosts that went down with running ranks: the timer that fails their jobs if they do not come back. */
  private readonly rejoinGrace = new Map<string, NodeJS.Timeout>();
  /** See settleInterruptedStarts. */
  private startsTimer: NodeJS.Timeout | undefined;
  /** Jobs pending when this coordinator started, not settled yet (settleInterruptedStarts). */
  private readonly interruptedStarts = new Set<string>();
  /**
   * Copies of ranks being killed as stale (killStaleCopy), as "host/job/rank/pid": their exits, reported
   * perhaps after a restart has put a new copy of the rank on the same host, are not the rank's end.
   */
  private readonly staleCopies = new Set<string>();
  /** Per pending job, per host: flushed ranks held until all the job's ranks run (holdUntilAllRun). */
  private readonly heldFlushed = new Map<string, Map<string, { epoch: number; ranks: number[] }>>();
  /** Per job, "host/rank" -> the number (resumeRounds) of the last RESUME round that woke that rank there. */
  private readonly resumedBy = new Map<string, Map<string, number>>();
  /** RESUME rounds ended so far. */
  private resumeRounds = 0;

  constructor(private readonly c: Coordinator) {
    this.tables = new EndpointTables(c, {
      updateRank: (u) => this.updateRank(u),
      liveRanksByHost: (jobId) => this.liveRanksByHost(jobId),
      failRunningJob: (jobId, detail) => this.failJob(jobId, 1, detail),
      isShuttingDown: () => this.shuttingDown,
    });
    this.output = new JobOutput(c, {
      liveRanksByHost: (jobId) => this.liveRanksByHost(jobId),
      rankHost: (jobId, rank) => this.rankRow(jobId, rank)?.host,
      jobInfo: (jobId) => this.jobInfo(jobId),
      followsEnded: (jobId) => this.launchers.followsEnded(jobId),
    });
    this.launchers = new JobLaunchers(c, { signal: (jobId, signal, cause) => this.signal(jobId, signal, cause), isEnding: (jobId) => this.failing.has(jobId) });
    // A checkpoint --stop that a previous coordinator committed but did not see through.
    for (const job of c.catalog.listJobs()) if (job.stopAfterEpoch > 0 && !JOB_RUN_OVER_STATES.has(job.state)) this.stopping.set(job.id, job.stopAfterEpoch);
    // A failure or cancel a previous coordinator did not see through: the ranks it reaches as their agents register end.
    for (const job of c.catalog.listJobs()) if (job.ending && !JOB_RUN_OVER_STATES.has(job.state)) this.failing.set(job.id, job.ending);
  }

  /** See HOST_REJOIN_GRACE_MS. */
  private get hostRejoinGraceMs(): number {
    return this.c.config.hostRejoinGraceMs;
  }

  // ---- queries --------------------------------------------------------------

  /**
   * Throws unless the job runs and is not on its way out: the catalog says
   * running until its last rank ends, also while a failure or a cancel ends it,
   * or a checkpoint --stop does. A checkpoint or migration then would restore
   * or wake ranks that the ending has already signalled, and the job would
   * never end.
   */
  requireRunning(job: JobRow, what: string): void {
    const why = this.notRunning(job);
    if (why) throw new FerryError(ErrorCode.BAD_REQUEST, `job ${job.id} ${why}: nothing to ${what}`);
    // Its ranks are stopped: none would flush.
    if (this.launchers.isSuspended(job.id)) {
      throw new FerryError(ErrorCode.BAD_REQUEST, `job ${job.id} is suspended by its launcher (SIGTSTP, or found stopped), its ranks stopped: cannot ${what} it until the launcher resumes it (SIGCONT)`);
    }
  }

  /**
   * Refuses `what` (a checkpoint, a migration) while a host with live ranks of
   * the job is not up. Its ranks cannot flush, and some may be flushed already,
   * owed a RESUME that waits for their agent (JobService.owesResume): a flush
   * begun now would wait for them, and they for it.
   */
  requireHostsUp(jobId: string, what: string): void {
    for (const [host, ranks] of this.liveRanksByHost(jobId)) {
      const state = this.c.hosts.get(host)?.state ?? 'unknown';
      if (state === 'up') continue;
      throw new FerryError(
        ErrorCode.HOST_DOWN,
        `job ${jobId} has rank${ranks.length > 1 ? 's' : ''} ${ranks.join(',')} on host ${host}, which is ${state}: cannot ${what} until its agent is back ` +
          `(within ${this.hostRejoinGraceMs} ms, or the job fails of it)`,
      );
    }
  }

  /**
   * Waits while a host of the job's live ranks (or of `more`) is 'unknown': known from the catalog and not
   * heard from since this coordinator started. Its agent registers moments after the start, or the sweep
   * marks it down once the heartbeat timeout has passed: an operation asked right after a coordinator
   * restart waits for that, rather than being refused for a host that is about to be back.
   */
  async untilHeardFrom(jobId: string, more: readonly string[] = []): Promise<void> {
    if (!this.c.catalog.getJob(jobId)) return; // (the caller names the unknown job)
    const hosts = [...new Set([...this.liveRanksByHost(jobId).keys(), ...more])];
    const unknown = () => hosts.some((host) => this.c.hosts.get(host)?.state === 'unknown');
    const t0 = this.c.now();
    // (the sweep decides within the timeout; the bound only guards against a sweep that never runs)
    while (unknown() && this.c.now() - t0 < 2 * this.c.config.heartbeatTimeoutMs) await new Promise((r) => setTimeout(r, HOSTS_HEARD_POLL_MS));
    if (this.c.now() > t0) trace(`waited ${this.c.now() - t0} ms to hear from hosts ${hosts.join(',')} after the coordinator's start`);
  }

  /** Why the job does not run or is on its way out ("is failed, not running", "is ending (...)"); undefined while it runs. */
  notRunning(job: JobRow): string | undefined {
    if (job.state !== 'running') return `is ${job.state}, not running`;
    const failing = this.failing.get(job.id);
    if (failing) return `is ending (${failing.detail})`;
    const stopAt = this.stopping.get(job.id);
    if (stopAt !== undefined) return `is being stopped after checkpoint epoch ${stopAt}`;
    return undefined;
  }

  jobInfo(jobId: string): JobInfoInit {
    const job = this.c.catalog.getJob(jobId);
    if (!job) throw new FerryError(ErrorCode.UNKNOWN_JOB, `no job "${jobId}" in the catalog`);
    return this.toInfo(job);
  }

  toInfo(job: JobRow): JobInfoInit {
    return {
      id: job.id,
      state: jobStateEnum(job.state),
      world_size: job.worldSize,
      argv: job.argv,
      created_ms: job.createdMs,
      ended_ms: job.endedMs ?? 0,
      exit_code: job.exitCode ?? 0,
      detail: job.detail ?? '',
      keep_epochs: this.c.retention.keepOfRow(job),
      auto_restarts: job.autoRestarts,
      auto_restart_due: job.state === 'failed' && (job.autoRestartDue || this.c.autoRestarts.has(job.id)),
      image_replicas: this.c.replication.replicasOfRow(job),
      own_image_replicas: job.imageReplicas !== null,
      hosts: job.hosts ?? [],
      launcher_suspended: this.launchers.isSuspended(job.id),
      ranks: this.c.catalog.listRanks(job.id).map((r) => ({
        rank: r.rank,
        host: r.host,
        pid: r.pid,
        endpoint: r.endpoint,
        state: r.state,
        exit_code: r.exitCode ?? 0,
        signal: r.signal ?? '',
      })),
    };
  }

  // ---- submit ----------------------------------------------------------------

  async submit(peer: PeerId, requestId: number, req: SubmitJobRequest): Promise<JobInfoInit> {
    if (req.argv.length === 0 || !req.argv[0]) throw new FerryError(ErrorCode.BAD_REQUEST, 'submit: no program given');
    const jobId = req.job_id || this.newJobId();
    checkSafeName('job id', jobId);
    if ((req.stdin?.length ?? 0) > MAX_STDIN_BYTES) {
      throw new FerryError(ErrorCode.BAD_REQUEST, `standard input of ${req.stdin.length} bytes: a job's rank 0 is given at most ${MAX_STDIN_BYTES} (give the program a file to read instead)`);
    }
    const explicit = new Map<number, string>(Object.entries(req.rank_hosts).map(([k, v]) => [Number(k), v]));
    if (this.c.catalog.getJob(jobId)) {
      // `ferry run --job-id J` of a stopped job J: the same command line in every batch allocation.
      if (req.keep_epochs) this.c.retention.checkKeep(req.keep_epochs);
      if (req.own_image_replicas) this.c.replication.checkReplicas(req.image_replicas);
      await this.continueJob(jobId, { worldSize: req.world_size, argv: req.argv, hosts: req.hosts, rankHosts: explicit }, (message) =>
        this.c.sendOperator(peer, { reply_to: requestId, status: { ok: true }, final: false, job_notice: { job_id: jobId, message } }),
      );
      // The settings the new run gives replace the job's (the same flags in every allocation change
      // nothing, but its automatic restarts start from the number given again).
      if (req.checkpoint_every_ms) this.c.periodic.set(jobId, req.checkpoint_every_ms);
      if (req.auto_restarts) this.c.autoRestarts.set(jobId, req.auto_restarts);
      if (req.own_image_replicas) this.c.replication.set(jobId, req.image_replicas);
      if (req.keep_epochs) await this.c.retention.set(jobId, req.keep_epochs);
      if (req.follow) this.follow(jobId, peer, requestId);
      return this.jobInfo(jobId);
    }
    const named = explicit.size > 0 ? [...new Set(explicit.values())] : req.hosts;
    for (const name of named) this.c.hosts.requirePlaceable(name);
    const candidates = (req.hosts.length > 0 ? req.hosts.map((n) => this.c.hosts.get(n)!) : this.c.hosts.requireSomePlaceable()).map((h) => ({
      name: h.name,
      freeSlots: h.cpus - this.c.catalog.ranksOnHost(h.name).filter((r) => r.state !== 'exited').length,
    }));
    const keepEpochs = req.keep_epochs ?? 0;
    this.c.retention.checkKeep(keepEpochs);
    if (req.own_image_replicas) this.c.replication.checkReplicas(req.image_replicas);
    const placement = placeRanks(req.world_size, candidates, explicit);
    const now = this.c.now();
    this.c.catalog.createJob({
      id: jobId,
      worldSize: req.world_size,
      argv: req.argv,
      cwd: req.cwd,
      env: req.env,
      createdMs: now,
      keepEpochs,
      autoRestarts: req.auto_restarts ?? 0,
      imageReplicas: req.own_image_replicas ? req.image_replicas : null,
      // --hosts (a batch allocation, a launcher's nodes) is where its restarts and drains keep it. A map
      // alone places the ranks once.
      hosts: req.hosts.length > 0 ? [...req.hosts, ...explicit.values()] : null,
    });
    for (let r = 0; r < placement.length; r++) {
      this.updateRank({ jobId, rank: r, host: placement[r], pid: 0, endpoint: '', state: 'starting', updatedMs: now });
    }
    if (req.follow) this.follow(jobId, peer, requestId);
    this.c.event('job.submit', `job ${jobId}: ${req.world_size} ranks of ${req.argv[0]} on ${[...new Set(placement)].join(',')}`, { jobId });

    const byHost = new Map<string, number[]>();
    placement.forEach((h, r) => byHost.set(h, [...(byHost.get(h) ?? []), r]));
    // The job's ranks share it and keep it across restores (in their memory and ferry-init's environment),
    // so it is handed out once, here, and kept nowhere else.
    const rankToken = randomBytes(RANK_TOKEN_BYTES).toString('hex');
    const failures: string[] = [];
    await Promise.all(
      [...byHost].map(async ([host, ranks]) => {
        const inFlight = `${jobId}\0${host}`;
        this.startsInFlight.add(inFlight);
        try {
          const reply = await this.c.requestAgent(host, {
            start_ranks: {
              job_id: jobId,
              world_size: req.world_size,
              argv: req.argv,
              cwd: req.cwd,
              env: req.env,
              ranks: ranks.map((rank) => ({ rank })),
              rank_token: rankToken,
              ...(ranks.includes(0) && req.stdin?.length ? { stdin: req.stdin } : {}),
            },
          });
          for (const p of reply.start_ranks_reply?.started ?? []) this.onRankStarted(host, p);
        } catch (err) {
          this.startsInFlight.delete(inFlight); // the 127s startFailed reports are the failure, not secondary
          failures.push(`host ${host}: ${errorMessage(err)}`);
          this.startFailed(jobId, host, ranks, err);
        } finally {
          this.startsInFlight.delete(inFlight);
        }
      }),
    );
    const job = this.c.catalog.getJob(jobId)!;
    if (failures.length > 0) throw new FerryError(ErrorCode.SPAWN_FAILED, `job ${jobId} could not start: ${failures.join('; ')}`);
    if (job.state === 'pending') this.c.catalog.setJobState(jobId, 'running');
    if (req.checkpoint_every_ms) this.c.periodic.set(jobId, req.checkpoint_every_ms);
    return this.jobInfo(jobId);
  }

  /**
   * `ferry checkpoint JOB --hosts`: the job's own hosts (JobRow.hosts) from now on, where its restarts and
   * drains keep it (none: any host). Each must be known, and none of its live ranks left outside them.
   */
  setOwnHosts(jobId: string, hosts: readonly string[]): void {
    if (!this.c.catalog.getJob(jobId)) throw new FerryError(ErrorCode.UNKNOWN_JOB, `no job "${jobId}" in the catalog`);
    for (const h of hosts) {
      checkSafeName('host name', h);
      if (!this.c.hosts.get(h)) throw new FerryError(ErrorCode.UNKNOWN_HOST, `host "${h}" is not known to the coordinator`);
    }
    if (hosts.length > 0) {
      const outside = this.c.catalog.listRanks(jobId).filter((r) => r.state !== 'exited' && !hosts.includes(r.host));
      if (outside.length > 0) {
        throw new FerryError(
          ErrorCode.BAD_REQUEST,
          `job ${jobId}: ${outside.map((r) => `rank ${r.rank} runs on ${r.host}`).join(', ')}, which the list leaves out; migrate ${outside.length > 1 ? 'them' : 'it'} first`,
        );
      }
    }
    this.c.catalog.setJobHosts(jobId, hosts.length > 0 ? hosts : null);
    this.c.event('job.hosts', `job ${jobId}: ${hosts.length > 0 ? `its hosts are ${hosts.join(', ')}` : 'it may run on any host'}`, { jobId });
  }

  /**
   * A host refused (or did not answer) the start of its ranks: the job fails with 127, as a shell's
   * "command not found". The exits of ranks its agent killed (started before a later one failed) may
   * reach the job first: onRankExited takes them as secondary while the start is unanswered, and the
   * ones after this find their ranks ended. A host that refused starts none of its ranks: they end
   * here, or the job would wait for them forever. One that did not answer in time may have started
   * some: they are killed, should it hear this.
   */
  private startFailed(jobId: string, host: string, ranks: number[], err: unknown): void {
    this.failJob(jobId, 127, `could not start every rank: host ${host}: ${errorMessage(err)}`);
    this.c.requestAgent(host, { signal_job: { job_id: jobId, signal: 'SIGKILL' } }).catch(() => undefined);
    for (const rank of ranks) {
      this.onRankExited(host, { job_id: jobId, rank, pid: 0, exit_code: 127, signal: '', reason: `not started: ${errorMessage(err)}` });
    }
  }

  /**
   * A new run (`ferry run --job-id J`, or a launch with `--job-id J`) of a job
   * that exists: a stopped, failed or cancelled J with the same number of ranks
   * and the same command is restarted from its last committed epoch (on
   * `hosts`/`rankHosts`, else spread); anything else is refused, saying why.
   */
  async continueJob(
    jobId: string,
    o: { worldSize: number; argv: readonly string[]; hosts?: string[]; rankHosts?: Map<number, string> },
    /** Told once the job may be continued, before the restart (which may take a while). */
    announce: (message: string) => void = () => {},
  ): Promise<MoveReplyInit> {
    const job = this.c.catalog.getJob(jobId);
    if (!job) throw new FerryError(ErrorCode.UNKNOWN_JOB, `no job "${jobId}" in the catalog`);
    const why =
      job.state === 'running' || job.state === 'pending'
        ? `job ${jobId} exists and is ${job.state}: a new run with its id continues it only once it is stopped (ferry checkpoint ${jobId} --stop)`
        : job.state === 'succeeded'
          ? `job ${jobId} exists and succeeded: there is nothing to continue; give another job id`
          : job.worldSize !== o.worldSize
            ? `job ${jobId} has ${job.worldSize} ranks, this run ${o.worldSize}: a new run with its id continues a job with the same ranks`
            : job.argv.length !== o.argv.length || job.argv.some((a, i) => a !== o.argv[i])
              ? `job ${jobId} runs "${job.argv.join(' ')}", this run "${o.argv.join(' ')}": a new run with its id continues a job with the same command`
              : '';
    if (why) throw new FerryError(ErrorCode.BAD_REQUEST, why);
    announce(`continuing job ${jobId} from its last committed epoch`);
    return this.c.moves.restart(jobId, { hosts: o.hosts, rankHosts: o.rankHosts });
  }

  private newJobId(): string {
    for (;;) {
      const id = `job-${this.c.now().toString(36)}-${(this.nextJobNumber++).toString(36)}`;
      if (!this.c.catalog.getJob(id)) return id;
    }
  }

  /**
   * Adds (or renews) a follower of the job's output (JobOutput.follow). A
   * `launcher` follow (ferry rank-exec) is also the lease of its ranks
   * (job-launchers.ts).
   */
  follow(jobId: string, peer: PeerId, requestId: number, ranks: readonly number[] = [], launcher = false, process?: LauncherProcessInit): void {
    if (this.output.follow(jobId, peer, requestId, ranks) && launcher) this.launchers.renewed(jobId, ranks, process);
  }


  // ---- rank events -------------------------------------------------------------

  onRankStarted(host: string, p: RankProcess): void {
    const row = this.rankRow(p.job_id, p.rank);
    if (!row) {
      trace(`start of unknown rank ${p.job_id}/${p.rank} on ${host}`);
      return;
    }
    if (row.state === 'exited') return;
    const endpoint = p.endpoint || row.endpoint;
    // (an agent that registers again reports the ranks it runs: nothing to write of those that did not change,
    // and a registration then needs no room on a full disk)
    if (row.state === 'running' && row.host === host && row.pid === p.pid && row.endpoint === endpoint) return;
    this.updateRank({ jobId: row.jobId, rank: row.rank, host, pid: p.pid, endpoint, state: 'running', updatedMs: this.c.now() });
  }

  onRankExited(host: string, e: RankExited | RankExitedInit): void {
    const jobId = e.job_id ?? '';
    const rank = e.rank ?? 0;
    const row = this.rankRow(jobId, rank);
    const pid = e.pid ?? 0;
    const stale = pid > 0 && this.staleCopies.delete(`${host}/${jobId}/${rank}/${pid}`);
    if (!row || row.state === 'exited') {
      // A repeat after re-registration; one whose output follows again (its followers had not taken it
      // when their coordinator was replaced, or its tail was not read to its end) is a tail again.
      if (row && row.host === host && e.output_follows) this.output.tailAgain(jobId, rank, host);
      return;
    }
    if (row.host !== host) {
      // The old copy of a rank that moved (migration): not the rank's end.
      this.c.event('rank.old-copy-exit', `job ${jobId} rank ${rank}: its old copy on ${host} ended (the rank now runs on ${row.host})`, { jobId, host });
      return;
    }
    if (stale || (pid > 0 && row.pid > 0 && pid !== row.pid)) {
      // An earlier copy on this host (killed as stale, its exit reported late): a restart put the rank here again.
      this.c.event('rank.old-copy-exit', `job ${jobId} rank ${rank}: an earlier copy of it on ${host} ended (pid ${pid}; the rank runs on${row.pid ? ` as pid ${row.pid}` : ''})`, { jobId, host });
      return;
    }
    const exitCode = e.exit_code ?? 0;
    const signal = e.signal ?? '';
    // (the pid of a rank still 'starting' too: rankMoved then knows its restore's late reply is of this copy)
    this.updateRank({ jobId, rank, host, pid: row.pid || (e.pid ?? 0), endpoint: row.endpoint, state: 'exited', exitCode, signal, updatedMs: this.c.now() });
    const how = signal ? `killed by ${signal}` : `exited with status ${exitCode}`;
    this.c.event('rank.exit', `job ${jobId} rank ${rank} on ${host} ${how}${e.reason ? ` (${e.reason})` : ''}`, { jobId, host });
    if (e.output_follows) this.output.expectTail(jobId, rank, host);
    if (exitCode === 0 && !signal) this.tables.onRankExited(jobId, rank); // past MPI_Finalize: no hello to wait for
    if ((exitCode !== 0 || signal) && !this.stopping.has(jobId)) {
      const code = exitCode > 0 ? exitCode : signalStatus(signal);
      const detail = `rank ${rank} on ${host} ${how}${e.reason ? ` (${e.reason})` : ''}`;
      // A rank that ends before its host's start was answered was killed there because a later rank of
      // the same start failed: the refusal (startFailed) is the job's failure, not this end.
      const killedByFailedStart = row.state === 'starting' && this.startsInFlight.has(`${jobId}\0${host}`);
      // Nor is the end that the failing job's own SIGTERM (or the SIGKILL after it) gave a rank: the
      // failure may be a lost host not seen down yet, whose ranks an automatic restart brings back.
      const endedByFerry = this.failing.has(jobId) && isEndingSignal(exitCode, signal);
      // (one its restarted agent found gone with its ferry-init, its host restarted, say: lost with its host,
      // for an automatic restart, as one given up after the grace; not the program's own failure)
      this.failJob(jobId, code, detail, killedByFailedStart || endedByFerry || isSecondaryFailure(e.reason ?? ''), e.lost_with_host === true);
    }
    this.maybeEnd(jobId);
  }

  /**
   * A host went down: its ranks may still run (only the agent died). They get
   * hostRejoinGraceMs for an agent on that host to re-register with them.
   */
  onHostDown(host: string): void {
    this.output.hostDown(host, this.hostRejoinGraceMs);
    const ranks = this.liveRanksOnHost(host);
    if (ranks.length === 0 || this.rejoinGrace.has(host)) return;
    const timer = setTimeout(() => this.rejoinGraceExpired(host), this.hostRejoinGraceMs);
    timer.unref?.();
    this.rejoinGrace.set(host, timer);
    for (const [jobId, list] of groupByJob(ranks)) {
      this.c.event(
        'job.host-down',
        `job ${jobId}: host ${host} is down with ranks ${list.join(',')}; waiting up to ${this.hostRejoinGraceMs} ms for it to come back`,
        { jobId, host },
      );
    }
  }

  /** No agent came back on `host` in time: the jobs of its ranks fail, naming the host and the ranks. */
  private rejoinGraceExpired(host: string): void {
    this.rejoinGrace.delete(host);
    if (this.c.hosts.get(host)?.state === 'up') return; // came back; reconcileHost settled its ranks
    this.loseRanksOn(host, `host ${host} is down and did not come back within ${this.hostRejoinGraceMs} ms`);
  }

  /**
   * The operator forgot `host` (ferry forget): its ranks are lost now, without
   * waiting out the rejoin grace. Returns the jobs that failed by it.
   */
  hostForgotten(host: string): string[] {
    const grace = this.rejoinGrace.get(host);
    if (grace) clearTimeout(grace);
    this.rejoinGrace.delete(host);
    return this.loseRanksOn(host, `host ${host} is down and the operator forgot it`);
  }

  /** The jobs of `host`'s live ranks fail, naming the host, the ranks and `why`; returns them. */
  private loseRanksOn(host: string, why: string): string[] {
    this.c.flushes.hostGone(host);
    const ranks = this.liveRanksOnHost(host);
    const jobs = groupByJob(ranks);
    for (const [jobId, list] of jobs) {
      // A job being stopped after a committed epoch loses nothing with ranks that were to end anyway.
      if (!this.stopping.has(jobId)) this.failJob(jobId, 1, `rank${list.length > 1 ? 's' : ''} ${list.join(',')} lost: ${why}`, false, true);
      for (const r of ranks.filter((x) => x.jobId === jobId)) {
        this.output.givenUpCopies.givenUp(jobId, r.rank, host);
        const exit = { job_id: jobId, rank: r.rank, pid: r.pid, exit_code: -1, signal: 'HOST_DOWN', reason: why };
        // (no agent tells it again: if the catalog refuses it now, it is written once there is room)
        this.c.lateWrites.run(jobId, `exit ${r.rank}`, `the loss of rank ${r.rank} of job ${jobId}`, () => this.onRankExited(host, exit));
      }
    }
    return [...jobs.keys()];
  }

  /** Running (or starting) ranks on a host, of jobs that have not ended. */
  private liveRanksOnHost(host: string): RankRow[] {
    return this.c.catalog.ranksOnHost(host).filter((r) => {
      if (r.state === 'exited') return false;
      const job = this.c.catalog.getJob(r.jobId);
      return !!job && !JOB_RUN_OVER_STATES.has(job.state);
    });
  }

  /** After an agent (re-)registers: adopt the ranks it runs, apply the exits it kept, and lose what vanished. */
  reconcileHost(host: string, reported: RankProcess[], exited: RankExited[]): void {
    const alive = this.killStaleCopies(host, reported);
    this.output.hostBack(host);
    const grace = this.rejoinGrace.get(host);
    if (grace) {
      clearTimeout(grace);
      this.rejoinGrace.delete(host);
    }
    for (const e of exited) this.onRankExited(host, e);
    const aliveKeys = new Set(alive.map((p) => `${p.job_id}/${p.rank}`));
    for (const p of alive) this.onRankStarted(host, p);
    this.tables.awaitReports(host, alive);
    // Ranks a migration was moving here when a coordinator died: not lost, their move is finished (unless a copy
    // was restored here already, pid known, and the agent came back without it: that copy is gone).
    const moving = this.c.catalog.rankMoves().filter((m) => m.toHost === host);
    const movingKeys = new Set(moving.filter((m) => m.stopped).map((m) => `${m.jobId}/${m.rank}`));
    const lost = new Map<string, RankRow[]>();
    for (const r of this.c.catalog.ranksOnHost(host)) {
      const key = `${r.jobId}/${r.rank}`;
      if (aliveKeys.has(key) || (movingKeys.has(key) && !r.pid) || !(r.state === 'running' || this.startedNowhere(r))) continue;
      lost.set(r.jobId, [...(lost.get(r.jobId) ?? []), r]);
    }
    for (const [jobId, rows] of lost) {
      const list = rows.map((r) => r.rank).join(',');
      const why = `the agent on host ${host} came back without ${rows.length > 1 ? 'them' : 'it'}`;
      if (grace && !this.stopping.has(jobId)) this.failJob(jobId, 1, `rank${rows.length > 1 ? 's' : ''} ${list} lost: ${why}`, false, true);
      for (const r of rows) {
        this.onRankExited(host, { job_id: r.jobId, rank: r.rank, pid: r.pid, exit_code: -1, signal: 'LOST', reason: grace ? why : 'the agent no longer knows this rank' });
      }
    }
    if (grace && alive.length > 0) {
      for (const [jobId, list] of groupByJob(alive.map((p) => ({ jobId: p.job_id, rank: p.rank })))) {
        this.c.event('job.host-back', `job ${jobId}: host ${host} is back with ranks ${list.join(',')} alive; the job runs on`, { jobId, host });
      }
    }
    this.settleFlushed(host, alive);
    this.c.flushes.hostBack(host);
    this.c.checkpoints.discardUnreached(host, alive);
    this.endRanksOfFailingJobs(host, alive);
    for (const jobId of new Set(moving.map((m) => m.jobId))) this.c.moves.finishInterrupted(jobId);
    if (this.interruptedStarts.size > 0) this.settleReachedStarts();
  }

  /**
   * Ranks a registering agent runs of a job that is failing (or being
   * cancelled): the SIGTERM that failJob sent everywhere could not reach them
   * while their agent was away, and the job ends only once they do.
   */
  private endRanksOfFailingJobs(host: string, alive: RankProcess[]): void {
    for (const [jobId, ranks] of groupByJob(alive.map((p) => ({ jobId: p.job_id, rank: p.rank })))) this.endRanksOfFailingJob(host, jobId, ranks);
  }

  /** SIGTERM to ranks on `host` of `jobId` if the job is failing (or being cancelled): ranks its first SIGTERM did not reach. */
  private endRanksOfFailingJob(host: string, jobId: string, ranks: number[]): void {
    if (!this.failing.has(jobId)) return;
    this.c.event('job.failing', `job ${jobId}: ranks ${ranks.join(',')} on host ${host} run on; stopping them, as the job is ending`, { jobId, host });
    this.c
      .requestAgent(host, { signal_job: { job_id: jobId, signal: 'SIGTERM', ranks } })
      .catch((err) => trace(`signal SIGTERM to ${jobId} ranks ${ranks.join(',')} on ${host} failed: ${errorMessage(err)}`));
  }

  /**
   * Ranks a registering agent runs that the job no longer counts on: the
   * catalog has them ended (declared lost while their host was cut off, their
   * job over) or running or starting on another host (their job was restarted
   * elsewhere meanwhile, or the rank migrated and this old copy was never stopped). Such
   * a copy would compete with the real one: it is killed, not adopted. Returns
   * the other ranks.
   */
  private killStaleCopies(host: string, reported: RankProcess[]): RankProcess[] {
    const alive: RankProcess[] = [];
    for (const p of reported) {
      const row = this.rankRow(p.job_id, p.rank);
      // (also a rank still 'starting' there: a migration restoring it on its target while the source's agent,
      // restarted before it got the STOP, comes back with the old copy)
      const elsewhere = !!row && row.state !== 'exited' && row.host !== host;
      // (a job deleted while the host was cut off: its ranks there had been given up, and fenced by their agent)
      const deleted = !row && this.c.catalog.isDeletedJob(p.job_id);
      if (!deleted && (!row || !(row.state === 'exited' || elsewhere))) {
        alive.push(p);
        continue;
      }
      const why = deleted ? 'the job was deleted' : elsewhere ? `the rank runs on ${row!.host}` : 'the job counts the rank as ended';
      this.killStaleCopy(host, p.job_id, p.rank, p.pid, `came back with a copy of it alive, but ${why}`);
    }
    return alive;
  }

  /** SIGKILL to the copy of a rank on `host` that must not run (`why`: what host has that it must not). */
  private killStaleCopy(host: string, jobId: string, rank: number, pid: number, why: string): void {
    if (pid > 0) this.staleCopies.add(`${host}/${jobId}/${rank}/${pid}`);
    this.c.event('rank.stale-copy', `job ${jobId} rank ${rank}: host ${host} ${why}; killing that copy`, { jobId, host });
    this.c
      .requestAgent(host, { signal_job: { job_id: jobId, signal: 'SIGKILL', ranks: [rank], pid } })
      .catch((err) => this.c.event('rank.stale-copy', `job ${jobId} rank ${rank}: killing its stale copy on host ${host} failed: ${errorMessage(err)}`, { jobId, host }));
  }

  /**
   * A rank still 'starting' of a running job that nothing is moving (a
   * migration cut short by a coordinator restart is finished instead, from
   * the catalog's rank moves: MoveService.finishInterrupted). Its agent
   * registering without it means it is lost (the job fails, naming it) rather
   * than awaited forever.
   */
  private startedNowhere(r: RankRow): boolean {
    return r.state === 'starting' && this.c.catalog.getJob(r.jobId)?.state === 'running' && !this.c.operations.busy(r.jobId);
  }

  /**
   * Ranks the agent on `host` reports flushed (for epoch or image set E) with no
   * RESUME since. Either the operation that flushed them still runs and wakes
   * them itself, or it ended without reaching them: the coordinator restarted
   * mid-operation (its in-flight epochs were aborted at start,
   * CheckpointService.abortInterrupted), or this host was cut off when the
   * RESUME went out (owesResume) or when an abort resumed the others. So they
   * get a RESUME once no operation runs on the job (to a rank already woken it
   * is harmless), or a STOP when a checkpoint --stop committed its epoch and was
   * cut short before its ranks ended (the catalog keeps that: stopAfterEpoch).
   */
  private settleFlushed(host: string, alive: RankProcess[]): void {
    const groups = new Map<string, { jobId: string; epoch: number; ranks: number[] }>();
    for (const p of alive) {
      const epoch = Number(p.flushed_epoch);
      if (!epoch) continue;
      const key = `${p.job_id}#${epoch}`;
      const g = groups.get(key) ?? { jobId: p.job_id, epoch, ranks: [] };
      g.ranks.push(p.rank);
      groups.set(key, g);
    }
    for (const g of groups.values()) {
      const job = this.c.catalog.getJob(g.jobId);
      if (!job || JOB_RUN_OVER_STATES.has(job.state) || this.failing.has(g.jobId)) continue;
      if (this.c.flushes.owes(g.jobId, g.epoch)) continue; // resumed once the flush is finished everywhere
      if (job.state === 'pending') this.holdUntilAllRun(host, g);
      else this.resumeFlushed(host, g.jobId, g.epoch, g.ranks);
    }
  }

  /**
   * The restored ranks of a restart not known to be complete (its job is
   * pending) wait until every rank of the job runs: resumed before, they would
   * compute without peers that may never come (see settleInterruptedStarts).
   */
  private holdUntilAllRun(host: string, g: { jobId: string; epoch: number; ranks: number[] }): void {
    const held = this.heldFlushed.get(g.jobId) ?? new Map<string, { epoch: number; ranks: number[] }>();
    held.set(host, g);
    this.heldFlushed.set(g.jobId, held);
    if (!this.c.catalog.listRanks(g.jobId).every((r) => r.state === 'running')) return;
    this.heldFlushed.delete(g.jobId);
    for (const [h, x] of held) this.resumeFlushed(h, g.jobId, x.epoch, x.ranks);
  }

  /**
   * A RESUME round after a point of no return (a committed epoch, a finished
   * migration, a restart's restore) failed. When it failed only because agents were lost
   * (HOST_DOWN), their ranks are not lost but still flushed: an agent
   * restarted there (it re-adopts them, see Agent.readopt) or one that comes
   * back after a partition reports them flushed and gets the RESUME then
   * (settleFlushed), and no agent within the rejoin grace fails the job as for
   * any host that goes down. Returns false for any other failure:
   * the caller fails the job.
   */
  owesResume(jobId: string, what: string, r: RoundResult, byHost: Map<string, number[]>): boolean {
    if (!lostAgentsOnly(r)) return false;
    this.announceOwed('job.resume-owed', jobId, what, 'RESUME', r, byHost, `they resume when an agent is back there (within ${this.hostRejoinGraceMs} ms, or the job fails)`);
    return true;
  }

  /**
   * After a RESUME round (also one that wakes the ranks after an aborted
   * checkpoint or migration): true when every rank resumed or is owed the
   * RESUME (owesResume). Otherwise a rank is left flushed that nothing will
   * wake, and the job would hang on it for ever: it fails with `detail`.
   */
  resumedOrFailed(jobId: string, what: string, resume: RoundResult, byHost: Map<string, number[]>, detail: string): boolean {
    resume = this.withoutEndedRanks(jobId, resume);
    if (resume.ok || this.owesResume(jobId, what, resume, byHost)) return true;
    this.failJob(jobId, 1, detail);
    return false;
  }

  /**
   * A RESUME round's result without the failures of ranks that have exited
   * meanwhile: no RESUME wakes a rank whose process ended, and none need, as its
   * exit (reported before its agent's reply) decides what becomes of the job.
   * Seen when a checkpoint meets the job's end: a rank past MPI_Finalize closes
   * its agent connection as it exits, so its PREPARE fails ("has finished"), and
   * by the abort's RESUME it is gone ("does not run on HOST"); counted as a rank
   * left flushed, that failed a job whose ranks all exited 0.
   */
  withoutEndedRanks(jobId: string, r: RoundResult): RoundResult {
    const ended = new Set(this.c.catalog.listRanks(jobId).filter((x) => x.state === 'exited').map((x) => x.rank));
    const live = [...r.failures.keys()].filter((rank) => !ended.has(rank));
    if (live.length === r.failures.size) return r;
    return {
      ...r,
      ok: live.length === 0,
      failures: new Map(live.map((rank) => [rank, r.failures.get(rank)!])),
      codes: new Map(live.map((rank) => [rank, r.codes.get(rank)!])),
    };
  }

  /**
   * The STOP round of a checkpoint --stop (its epoch committed, markStopping
   * done) failed. When only because agents were lost, their ranks are owed
   * the STOP, as the RESUME in owesResume: an agent back there reports them
   * flushed and gets the STOP (runResumeFlushed), and ranks not back within the
   * rejoin grace count as ended (loseRanksOn): either way the job ends stopped
   * at the epoch rather than failed. Returns false for any other failure.
   */
  owesStop(jobId: string, epoch: number, r: RoundResult, byHost: Map<string, number[]>): boolean {
    if (!lostAgentsOnly(r)) return false;
    this.announceOwed('job.stop-owed', jobId, `epoch ${epoch} committed`, 'STOP', r, byHost, `they stop when an agent is back there (within ${this.hostRejoinGraceMs} ms, else they count as ended)`);
    return true;
  }

  /** An event per agent lost before it confirmed `step` of its ranks: what happens to them then. */
  private announceOwed(kind: string, jobId: string, what: string, step: string, r: RoundResult, byHost: Map<string, number[]>, then: string): void {
    for (const host of r.silentHosts) {
      const ranks = byHost.get(host) ?? [];
      this.c.event(kind, `job ${jobId}: ${what}: the agent on host ${host} was lost before it confirmed ${step} of rank${ranks.length > 1 ? 's' : ''} ${ranks.join(',')}; ${then}`, { jobId, host });
    }
  }

  /**
   * RESUME, once no operation runs on the job, to ranks on `host` left flushed
   * for epoch or image set `epoch` (a rank already running ignores it). An
   * aborted epoch's images there go first (DISCARD). A restarted job whose
   * ranks all run then is running.
   */
  private resumeFlushed(host: string, jobId: string, epoch: number, ranks: number[]): void {
    const since = this.resumeRounds;
    this.c.operations.queue(jobId, () => `ranks ${ranks.join(',')} on host ${host}, left flushed, are being resumed`, () =>
      this.runResumeFlushed(host, jobId, epoch, ranks, since),
    );
  }

  /**
   * A RESUME round ended (runResumeRound): the ranks it reached (all but those that failed) are flushed no
   * more there. A RESUME owed to ranks an agent reported flushed (resumeFlushed) skips those an operation
   * queued before it woke since: a migration, say, whose source agent was restarted while it ran.
   */
  noteResumed(jobId: string, byHost: ReadonlyMap<string, readonly number[]>, r: RoundResult): void {
    const n = ++this.resumeRounds;
    const woken = this.resumedBy.get(jobId) ?? new Map<string, number>();
    for (const [host, ranks] of byHost) for (const rank of ranks) if (!r.failures.has(rank)) woken.set(`${host}/${rank}`, n);
    this.resumedBy.set(jobId, woken);
  }

  private async runResumeFlushed(host: string, jobId: string, epoch: number, ranks: number[], since: number): Promise<void> {
    // Only those still placed there: an operation queued before this one may have moved a rank away (a migration
    // whose source agent was restarted while it fetched the rank's image stopped the copy reported here).
    const here = new Set(this.c.catalog.listRanks(jobId).filter((r) => r.host === host).map((r) => r.rank));
    ranks = ranks.filter((r) => here.has(r));
    const job = this.c.catalog.getJob(jobId);
    if (ranks.length === 0 || !job || JOB_RUN_OVER_STATES.has(job.state) || this.c.hosts.get(host)?.state !== 'up') return;
    if (this.c.flushes.owes(jobId, epoch)) return; // queued before the flush was found unfinished: resumed once it is finished
    const e = this.c.catalog.getEpoch(jobId, epoch);
    const what = e ? `epoch ${epoch} (${e.state})` : `migration ${epoch}`;
    // An aborted epoch's images here go; so does a migration's dump of these ranks when the migration
    // was cut short before it stopped any of them (a move past its STOP is finishInterrupted's).
    const migrationCut = !e && !this.c.catalog.rankMoves(jobId).some((m) => m.imageSet === epoch && m.stopped);
    if (e?.state === 'aborted' || migrationCut) {
      // (the agent may still be running the DUMP it was asked for: its DISCARD waits for it)
      const d = await runRound(this.c, { job_id: jobId, epoch, step: RoundStep.DISCARD, image_set: String(epoch) }, new Map([[host, ranks]]), this.c.config.dumpTimeoutMs);
      if (!d.ok) this.c.event('checkpoint.discard-failed', `job ${jobId}: ${what}: ${describeRoundFailure('DISCARD', d)}`, { jobId, host });
    }
    const stopAt = this.stopping.get(jobId);
    if (stopAt !== undefined) {
      // A checkpoint --stop committed its epoch and was cut short: its ranks end now, as it asked.
      const s = await runRound(this.c, { job_id: jobId, epoch, step: RoundStep.STOP }, new Map([[host, ranks]]), this.c.config.resumeTimeoutMs, () => ({ dump_ranks: ranks }));
      if (s.ok) this.c.event('job.stopped-late', `job ${jobId}: ranks ${ranks.join(',')} on host ${host}, flushed for ${what}, stopped as checkpoint --stop of epoch ${stopAt} asked`, { jobId, host });
      else this.c.event('job.stop-failed', `job ${jobId}: ${describeRoundFailure('STOP', s)}`, { jobId, host });
      return;
    }
    const woken = ranks.filter((rank) => (this.resumedBy.get(jobId)?.get(`${host}/${rank}`) ?? 0) > since);
    if (woken.length > 0) trace(`job ${jobId}: ranks ${woken.join(',')} on host ${host}, reported flushed for ${what}, were resumed since`);
    ranks = ranks.filter((rank) => !woken.includes(rank));
    const r = ranks.length > 0 ? await runResumeRound(this.c, { job_id: jobId, epoch }, new Map([[host, ranks]])) : undefined;
    if (r && !r.ok) {
      // Lost again: its next registration brings them back here, else the rejoin grace ends the job.
      if ([...r.codes.values()].every((code) => code === ErrorCode.HOST_DOWN)) return;
      this.failJob(jobId, 1, `after ${what}: ${describeRoundFailure('RESUME', r)}`);
      return;
    }
    if (r) this.c.event('job.resumed-late', `job ${jobId}: ranks ${ranks.join(',')} on host ${host}, flushed for ${what} when its agent registered, were sent RESUME`, { jobId, host });
    const now = this.c.catalog.getJob(jobId);
    if (now?.state === 'pending' && this.c.catalog.listRanks(jobId).every((row) => row.state === 'running')) this.restartDone(jobId, epoch);
  }

  /**
   * At start: the jobs the catalog has pending were being launched or
   * restarted by a coordinator that is gone. Once their agents had the rejoin
   * grace to register what runs of them (a restart whose restored ranks all
   * registered is resumed meanwhile, holdUntilAllRun, and settled then,
   * settleReachedStarts), each one still
   * pending is settled: running if all its ranks run, else ended with its
   * running ranks stopped: stopped at its last committed epoch (ferry restart
   * continues it), or failed when it has none.
   */
  settleInterruptedStarts(): void {
    const pending = this.c.catalog.listJobs().filter((j) => j.state === 'pending').map((j) => j.id);
    if (pending.length === 0) return;
    for (const jobId of pending) this.interruptedStarts.add(jobId);
    this.startsTimer = setTimeout(() => {
      this.startsTimer = undefined;
      for (const jobId of pending) this.settleInterruptedStart(jobId);
    }, this.hostRejoinGraceMs);
    this.startsTimer.unref?.();
  }

  private settleInterruptedStart(jobId: string): void {
    if (!this.interruptedStarts.delete(jobId)) return;
    this.c.operations.queue(jobId, () => 'its start, cut short by a coordinator restart, is being settled', async () => this.endInterruptedStart(jobId));
  }

  /**
   * An interrupted start (settleInterruptedStarts) whose every rank runs on a host that registered with
   * this coordinator is settled at once, not at the end of the rejoin grace: it had got that far, and
   * meanwhile it would refuse a checkpoint as not running.
   */
  private settleReachedStarts(): void {
    for (const jobId of this.interruptedStarts) {
      const rows = this.c.catalog.listRanks(jobId);
      if (rows.length > 0 && rows.every((r) => r.state === 'running' && this.c.hosts.get(r.host)?.state === 'up')) this.settleInterruptedStart(jobId);
    }
  }

  private endInterruptedStart(jobId: string): void {
    const job = this.c.catalog.getJob(jobId);
    if (job?.state !== 'pending') return; // settled meanwhile
    this.heldFlushed.delete(jobId);
    const rows = this.c.catalog.listRanks(jobId);
    const missing = rows.filter((r) => r.state !== 'running' && r.state !== 'exited');
    if (missing.length === 0) {
      this.c.catalog.setJobState(jobId, 'running', { detail: 'every rank running after a coordinator restart' });
      // (a restart that had resumed its ranks on other hosts, but not recorded them as the job's)
      const hosts = job.hosts;
      const wider = hosts && [...new Set([...hosts, ...rows.filter((r) => r.state === 'running').map((r) => r.host)])];
      if (hosts && wider && wider.length > hosts.length) this.c.catalog.setJobHosts(jobId, wider);
      this.c.event('job.running', `job ${jobId}: every rank runs; its start was cut short by a coordinator restart but had got that far`, { jobId });
      return;
    }
    const now = this.c.now();
    for (const r of missing) this.updateRank({ jobId, rank: r.rank, host: r.host, pid: 0, endpoint: '', state: 'exited', updatedMs: now });
    const list = missing.map((r) => r.rank).join(',');
    const why = `${job.detail || 'its launch'} was cut short by a coordinator restart: rank${missing.length > 1 ? 's' : ''} ${list} never started`;
    const epoch = this.c.catalog.lastCommittedEpoch(jobId);
    if (!epoch) {
      this.failJob(jobId, 1, why);
      return;
    }
    this.c.event('job.stopping', `job ${jobId}: ${why}; stopping it at epoch ${epoch.epoch}`, { jobId });
    this.markStopping(jobId, epoch.epoch);
    void this.signalRanks(jobId, 'SIGKILL');
    this.maybeEnd(jobId);
  }

  /** Stops every timer (the coordinator is shutting down). */
  stop(): void {
    this.shuttingDown = true;
    for (const t of this.rejoinGrace.values()) clearTimeout(t);
    this.rejoinGrace.clear();
    if (this.startsTimer) clearTimeout(this.startsTimer);
    this.output.stop();
  }

  // ---- job control ------------------------------------------------------------

  /** Signals every rank of the job; SIGTERM, SIGINT and SIGKILL cancel it, `cause` says why. */
  async signal(jobId: string, signal: string, cause = 'by the operator'): Promise<void> {
    const job = this.c.catalog.getJob(jobId);
    if (!job) throw new FerryError(ErrorCode.UNKNOWN_JOB, `no job "${jobId}" in the catalog`);
    if (!(signal in osConstants.signals)) throw new FerryError(ErrorCode.BAD_REQUEST, `unknown signal "${signal}" (a name like SIGTERM, SIGINT, SIGKILL, SIGUSR1)`);
    const ending = signal === 'SIGTERM' || signal === 'SIGINT' || signal === 'SIGKILL';
    if (JOB_RUN_OVER_STATES.has(job.state)) {
      // Ctrl-C on a ferry run waiting for an automatic restart: the operator wants the job to stay ended.
      if (ending) this.c.autoRestarts.cancel(jobId, `cancelled ${cause} (${signal})`);
      return;
    }
    if (!this.failing.has(jobId) && ending) {
      this.setFailing(jobId, { exitCode: signalStatus(signal), detail: `cancelled ${cause} (${signal})`, secondary: false, lostHost: false });
      this.c.event('job.cancel', `job ${jobId}: ${signal} ${cause === 'by the operator' ? 'requested by the operator' : `sent ${cause}`}`, { jobId });
    }
    // A restart (the operator's or an automatic one) is restoring the ranks: they are not there to signal yet.
    if (ending && job.state === 'pending' && this.c.operations.busy(jobId)) this.signalAfterRestart.set(jobId, signal);
    await this.signalRanks(jobId, signal);
  }

  // ---- restart and migration --------------------------------------------------------

  /** A stopped or failed job is about to be restored: it is pending again, its ranks on their new hosts. */
  beginRestart(jobId: string, placement: Map<number, string>, epoch: number): void {
    const now = this.c.now();
    this.clearFailing(jobId);
    this.signalAfterRestart.delete(jobId);
    this.stopping.delete(jobId);
    this.c.catalog.setStopAfterEpoch(jobId, 0);
    this.c.catalog.setJobState(jobId, 'pending', { endedMs: 0, exitCode: 0, detail: `restarting from epoch ${epoch}` });
    for (const [rank, host] of placement) this.updateRank({ jobId, rank, host, pid: 0, endpoint: '', state: 'starting', updatedMs: now });
  }

  /** The restart did not happen: the job is stopped again, nothing of it runs. */
  restartFailed(jobId: string, detail: string, imageHosts: Map<number, string>): void {
    const now = this.c.now();
    for (const [rank, host] of imageHosts) this.updateRank({ jobId, rank, host, pid: 0, endpoint: '', state: 'exited', updatedMs: now });
    this.c.catalog.setJobState(jobId, 'stopped', { endedMs: now, detail });
    // A rank of it that failed while it was being restored (its host went down) made it failing: it is stopped now, not ending.
    this.clearFailing(jobId);
  }

  /** Every rank of a restarted job runs. */
  restartDone(jobId: string, epoch: number): void {
    this.heldFlushed.delete(jobId);
    // (its ranks run: what the catalog refuses, its disk full, waits for room while the job is pending still)
    this.c.lateWrites.run(jobId, 'restart', `the restart of job ${jobId} from epoch ${epoch}`, (late) => {
      if (late && this.c.catalog.getJob(jobId)?.state !== 'pending') return;
      this.c.catalog.setBranch(jobId, epoch);
      this.c.catalog.setJobState(jobId, 'running', { detail: `restarted from epoch ${epoch}` });
    });
    this.c.periodic.resume(jobId); // its ticks ended with the job
    this.c.replication.topUp(jobId); // the epoch it runs from may have lost copies with a host
    const signal = this.signalAfterRestart.get(jobId);
    if (signal) {
      this.signalAfterRestart.delete(jobId);
      this.c.event('job.cancel', `job ${jobId}: the ${signal} that came while it was being restored goes to its ranks now`, { jobId });
      void this.signalRanks(jobId, signal);
    } else if (this.launchers.isSuspended(jobId)) {
      // Restored (an automatic restart after a lost host) while its launcher is suspended: its ranks stop
      // with it again, until the launcher's SIGCONT, as the ones they replace were.
      this.c.event('launch.suspend', `job ${jobId}: restored while its launcher is suspended: its ranks are stopped until the launcher's SIGCONT`, { jobId });
      void this.signalRanks(jobId, 'SIGTSTP');
    }
  }

  /** A rank now lives on `host` (restored there); exits from its previous host are of an old copy. */
  rankMoved(jobId: string, rank: number, host: string, pid = 0): void {
    const row = this.rankRow(jobId, rank);
    if (!row) return;
    // The restored copy ended (a cancel's SIGTERM) before its restore's reply came: it stays ended.
    if (pid && row.state === 'exited' && row.host === host && row.pid === pid) return;
    const job = this.c.catalog.getJob(jobId);
    if (job && JOB_RUN_OVER_STATES.has(job.state)) {
      // Its job ended while a migration moved it (a cancel): the rank stays ended, a restored copy is killed.
      if (pid) this.killStaleCopy(host, jobId, rank, pid, `restored it after its job ended (${job.state})`);
      return;
    }
    this.updateRank({ jobId, rank, host, pid, endpoint: '', state: pid ? 'running' : 'starting', updatedMs: this.c.now() });
    // Restored after the job began to end (cancelled while a migration put the rank back): its SIGTERM missed this copy.
    if (pid) this.endRanksOfFailingJob(host, jobId, [rank]);
  }

  /** The ranks of the job are about to be ended after epoch `epoch` was committed. */
  markStopping(jobId: string, epoch: number): void {
    this.stopping.set(jobId, epoch);
    this.c.catalog.setStopAfterEpoch(jobId, epoch); // durable: a coordinator restarted before the ranks end still stops them
  }

  /** Fails a job for a reason outside its ranks (e.g. it could not resume after a checkpoint). */
  failRunningJob(jobId: string, detail: string): void {
    this.failJob(jobId, 1, detail);
  }

  /** `lostHost`: ranks were lost with their host, which an automatic restart may repair (auto-restarts.ts). */
  private failJob(jobId: string, exitCode: number, detail: string, secondary = false, lostHost = false): void {
    const job = this.c.catalog.getJob(jobId);
    if (!job || JOB_RUN_OVER_STATES.has(job.state)) return; // (a checkpoint's RESUME that found the ranks of a cancelled job gone)
    const current = this.failing.get(jobId);
    if (current) {
      // The real failure (a rank's own, a lost host) reported after a peer that only lost its
      // connection to it: the job's status and message are the real failure's.
      if (current.secondary && !secondary) {
        this.setFailing(jobId, { exitCode, detail, secondary, lostHost });
        this.c.event('job.failing', `job ${jobId}: the failure was ${detail}`, { jobId });
      }
      return;
    }
    this.setFailing(jobId, { exitCode, detail, secondary, lostHost });
    this.c.event('job.failing', `job ${jobId}: ${detail}; stopping the other ranks`, { jobId });
    void this.signalRanks(jobId, 'SIGTERM');
    this.maybeEnd(jobId);
  }

  /**
   * The job is ending of `f`: kept in the catalog too, for a coordinator restarted before its ranks end
   * (late if the catalog's disk is full: the job's ranks are ended all the same).
   */
  private setFailing(jobId: string, f: JobEnding): void {
    this.failing.set(jobId, f);
    this.recordEnding(jobId, f);
  }

  private clearFailing(jobId: string): void {
    if (this.failing.delete(jobId)) this.recordEnding(jobId, null);
  }

  private recordEnding(jobId: string, f: JobEnding | null): void {
    this.c.lateWrites.run(jobId, 'ending', `how job ${jobId} ends`, () => this.c.catalog.setEnding(jobId, f));
  }

  private async signalRanks(jobId: string, signal: string): Promise<void> {
    const hosts = new Set(this.c.catalog.listRanks(jobId).filter((r) => r.state !== 'exited').map((r) => r.host));
    const send = (s: string) =>
      Promise.allSettled(
        [...hosts].map((host) =>
          this.c.requestAgent(host, { signal_job: { job_id: jobId, signal: s } }).catch((err) => {
            trace(`signal ${s} to ${jobId} on ${host} failed: ${errorMessage(err)}`);
            throw err;
          }),
        ),
      );
    await send(signal);
    // Ranks stopped with their suspended launcher would take a SIGTERM (a cancel, the end of a failed job)
    // only at their SIGCONT, or die of the SIGKILL RANK_KILL_GRACE_MS later: they are continued to take
    // it now, as a shell's kill continues a stopped job.
    if ((signal === 'SIGTERM' || signal === 'SIGINT') && this.launchers.isSuspended(jobId)) {
      this.c.event('launch.continue', `job ${jobId}: its ranks, stopped with their suspended launcher, are continued to take the ${signal}`, { jobId });
      await send('SIGCONT');
    }
  }

  /**
   * Ends the job if none of its ranks runs any more. The catalog's disk full, it ends once there is room:
   * its ranks' exits were recorded, and nothing else would end it then.
   */
  private maybeEnd(jobId: string): void {
    this.c.lateWrites.run(jobId, 'end', `the end of job ${jobId}`, () => this.endIfDone(jobId));
  }

  private endIfDone(jobId: string): void {
    const job = this.c.catalog.getJob(jobId);
    if (!job || JOB_RUN_OVER_STATES.has(job.state)) return;
    const ranks = this.c.catalog.listRanks(jobId);
    if (ranks.some((r) => r.state !== 'exited')) return;
    const failure = this.failing.get(jobId);
    const stoppedAt = this.stopping.get(jobId);
    const cancelled = failure?.detail.startsWith('cancelled');
    const state = failure ? (cancelled ? 'cancelled' : 'failed') : stoppedAt !== undefined ? 'stopped' : 'succeeded';
    let detail = failure?.detail ?? (stoppedAt !== undefined ? `stopped after checkpoint epoch ${stoppedAt}; ferry restart ${jobId} continues it` : '');
    const noRestart = failure?.lostHost ? this.c.autoRestarts.check(job) : '';
    if (noRestart) detail = `${detail}; ${noRestart}`;
    this.c.catalog.setJobState(jobId, state, { endedMs: this.c.now(), exitCode: failure?.exitCode ?? 0, detail });
    this.clearFailing(jobId);
    this.stopping.delete(jobId);
    this.resumedBy.delete(jobId);
    this.tables.forget(jobId);
    // No rollback of it will hide repeated output (a continued cancelled job counts anew, as a new coordinator would).
    if (state === 'succeeded' || state === 'cancelled') this.output.replay.forget(jobId);
    this.c.event('job.end', `job ${jobId} ${state}${detail ? `: ${detail}` : ''}`, { jobId });
    if (noRestart === undefined) {
      this.c.autoRestarts.start(jobId, detail); // the followers stay for the restarted run
      return;
    }
    this.output.endFollows(jobId);
  }

  /**
   * An automatic restart did not happen (`detail` says why): the job ends
   * failed for its followers, unless an operator's restart already runs it.
   */
  autoRestartEnded(jobId: string, detail: string): void {
    const job = this.c.catalog.getJob(jobId);
    if (!job || job.state === 'running' || job.state === 'pending') return;
    this.c.catalog.setJobState(jobId, 'failed', { endedMs: job.endedMs ?? this.c.now(), exitCode: job.exitCode || 1, detail });
    this.output.endFollows(jobId);
  }

  // ---- rounds ------------------------------------------------------------------

  /** One round over every live rank of a job (see round-runner.ts). */
  async round(jobId: string, step: RoundStep, epoch: number, timeoutMs: number): Promise<RoundResult> {
    if (!this.c.catalog.getJob(jobId)) throw new FerryError(ErrorCode.UNKNOWN_JOB, `no job "${jobId}" in the catalog`);
    return runRound(this.c, { job_id: jobId, epoch, step }, this.liveRanksByHost(jobId), timeoutMs);
  }

  private rankRow(jobId: string, rank: number): RankRow | undefined {
    return this.c.catalog.getJob(jobId) ? this.c.catalog.getRank(jobId, rank) : undefined;
  }

  /** Live ranks of a job by host, cached until a rank of the job changes. */
  liveRanksByHost(jobId: string): Map<string, number[]> {
    let byHost = this.placementCache.get(jobId);
    if (!byHost) {
      byHost = new Map();
      for (const r of this.c.catalog.listRanks(jobId)) {
        if (r.state === 'exited') continue;
        byHost.set(r.host, [...(byHost.get(r.host) ?? []), r.rank]);
      }
      this.placementCache.set(jobId, byHost);
    }
    return byHost;
  }

  private updateRank(update: RankUpdate): void {
    this.c.catalog.upsertRank(update);
    // (a copy of the rank placed there again: what comes from there now is its own)
    if (update.state !== 'exited') this.output.givenUpCopies.placed(update.jobId, update.rank, update.host);
    this.placementCache.delete(update.jobId);
  }
}

function jobStateEnum(state: string): JobState {
  switch (state) {
    case 'pending':
      return JobState.JOB_PENDING;
    case 'running':
      return JobState.JOB_RUNNING;
    case 'stopped':
      return JobState.JOB_STOPPED;
    case 'succeeded':
      return JobState.JOB_SUCCEEDED;
    case 'failed':
      return JobState.JOB_FAILED;
    case 'cancelled':
      return JobState.JOB_CANCELLED;
    default:
      return JobState.JOB_STATE_UNKNOWN;
  }
}

/**
 * A rank that ended only because it lost the connection to a peer that failed
 * (the runtime's own MPI_Abort after a lost channel) is not the job's cause:
 * the peer's own exit, arriving a moment later, is.
 */
export function isSecondaryFailure(reason: string): boolean {
  return /lost the connection to rank \d+/.test(reason);
}

/** How a rank ends of the signals that end a failing job: SIGTERM, and SIGKILL after the agent's grace. */
export function isEndingSignal(exitCode: number, signal: string): boolean {
  const { SIGTERM, SIGKILL } = osConstants.signals;
  return signal === 'SIGTERM' || signal === 'SIGKILL' || exitCode === 128 + SIGTERM || exitCode === 128 + SIGKILL;
}

/** A round that failed only because agents were lost (HOST_DOWN): their ranks may live on, and be reached when an agent is back. */
function lostAgentsOnly(r: RoundResult): boolean {
  return r.failures.size > 0 && [...r.codes.values()].every((code) => code === ErrorCode.HOST_DOWN);
}

function groupByJob(ranks: { jobId: string; rank: number }[]): Map<string, number[]> {
  const byJob = new Map<string, number[]>();
  for (const r of ranks) byJob.set(r.jobId, [...(byJob.get(r.jobId) ?? []), r.rank].sort((a, b) => a - b));
  return byJob;
}

/** The shell convention for a death by signal: 128 + the signal number. */
export function signalStatus(signal: string): number {
  const n = (osConstants.signals as Record<string, number>)[signal];
  return n ? 128 + n : 1;
}
