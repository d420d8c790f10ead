// Runs the checkpoint protocol for a job, one epoch at a time:
// PREPARE (flush) -> DUMP -> RESUME -> STORE -> COMMITTED, or with --stop
// PREPARE -> DUMP -> STORE -> COMMITTED -> STOP. The ranks of a checkpoint
// that goes on resume as soon as CRIU has written their images: hashing and
// fsyncing them (STORE) needs the images, not the ranks. Any failure or
// timeout before COMMITTED aborts the epoch: the ranks still flushed resume,
// partial images are discarded, and the previous committed epoch stays the
// one to restart from. States: epoch-machine.ts.
import { ErrorCode, RoundStep, type EpochInfoInit, type CheckpointReplyInit, type RankProcess } from '../../gen/proto.js';
import { FerryError, errorMessage } from '../../common/ferry-error.js';
import { tracer } from '../../common/trace.js';
import type { Coordinator } from '../coordinator.js';
import { describeRoundFailure, hostsDown, roundFailureCode, runResumeRound, runRound, type RoundResult } from '../round-runner.js';
import { WAIT_FOR_COPIES_MS } from '../coordinator-config.js';
import { EpochMachine, type EpochState } from './epoch-machine.js';
import { FLUSH_RETRY_MS } from './flush-completion.js';
import { catalogWriteError, isCatalogUnwritable } from '../catalog-errors.js';
import { withLateOutput, type OutputCounts } from '../output-replay.js';

const trace = tracer('checkpoint');

/** How the RESUME before STORE went: every rank woke (ok), some are owed it (their agent was lost), or `problem`: the job fails. */
interface EarlyResume {
  ok: boolean;
  problem: string;
}

/** States recorded as phases of the epoch in the catalog as they are entered. */
const CATALOG_PHASES = new Set<EpochState>(['flushed', 'dumping', 'dumped', 'storing', 'stored']);
/** Catalog states of an epoch whose ranks may have been resumed already (before STORE): none is flushed for it. */
const RESUMED_BEFORE_STORE = new Set<string>(['dumped', 'storing', 'stored']);
/** The step under way in each state that can abort, for an abort's reason. */
const STEP_OF: Partial<Record<EpochState, string>> = { preparing: 'PREPARE', flushed: 'PREPARE', dumping: 'DUMP', dumped: 'DUMP', storing: 'STORE', stored: 'STORE' };

/** What a checkpoint under way has done that an abort must undo. */
interface Undo {
  /** Hosts whose ranks were sent the DUMP (their partial images go). */
  dumpedHosts: Map<string, number[]>;
  /** How the RESUME before STORE went, once it was sent. */
  resumed?: EarlyResume;
}

export interface CheckpointOptions {
  stop: boolean;
  /** Called at each state change, for the operator's progress display. */
  progress?: (epoch: number, state: EpochState, elapsedMs: number) => void;
}

export class CheckpointService {
  /**
   * Images no DISCARD reached, of ranks that were resumed before STORE (no rank is flushed for
   * them, so JobService.settleFlushed does not see them): epochs cut short by a coordinator restart
   * after their DUMP (abortInterrupted, any host of the job), and aborted epochs' images on hosts
   * that were silent (`hosts`). Each host is sent the DISCARD once, when its agent registers.
   */
  private imagesToDiscard: { jobId: string; epoch: number; why: string; hosts?: Set<string>; hostsDone: Set<string> }[] = [];

  constructor(private readonly c: Coordinator) {}

  async checkpoint(jobId: string, options: CheckpointOptions): Promise<CheckpointReplyInit> {
    await this.c.operations.afterBackground(jobId, WAIT_FOR_COPIES_MS);
    // (before the checks below: the job may end, or a host go down, meanwhile)
    await this.c.jobs.untilHeardFrom(jobId);
    await this.c.jobs.tables.untilTableOut(jobId, this.c.config.flushTimeoutMs);
    const job = this.c.catalog.getJob(jobId);
    if (!job) throw new FerryError(ErrorCode.UNKNOWN_JOB, `no job "${jobId}" in the catalog`);
    this.c.jobs.requireRunning(job, 'checkpoint');
    const byHost = this.c.jobs.liveRanksByHost(jobId);
    const live = [...byHost.values()].reduce((n, r) => n + r.length, 0);
    if (live !== job.worldSize) {
      throw new FerryError(ErrorCode.BAD_REQUEST, `job ${jobId} has ${live} of ${job.worldSize} ranks running: cannot take a consistent checkpoint`);
    }
    this.c.jobs.requireHostsUp(jobId, 'take a checkpoint');
    let m: EpochMachine | undefined;
    const release = this.c.operations.begin(jobId, () => (m ? `checkpoint epoch ${m.epoch} is ${m.state}` : 'a checkpoint is starting'));
    try {
      // (an abort the catalog could not take, say: its epoch, listed in flight, would refuse this one as BUSY)
      this.c.lateWrites.settle(jobId);
      m = this.begin(jobId, options);
      const undo: Undo = { dumpedHosts: new Map() };
      try {
        return await this.run(m, byHost, options, undo);
      } catch (err) {
        // A step that threw instead of failing (the catalog refused a write: its disk is full) aborts the
        // epoch all the same; an abort's own error, and one past the commit, go as they are.
        if (!m.canAbort()) throw err;
        const code = isCatalogUnwritable(err) ? ErrorCode.STATE_UNWRITABLE : ErrorCode.INTERNAL;
        return await this.abort(m, byHost, undo.dumpedHosts, STEP_OF[m.state] ?? m.state, undefined, errorMessage(catalogWriteError(err, this.c.catalog.file)), undo.resumed, code);
      }
    } finally {
      release();
    }
  }

  private begin(jobId: string, options: CheckpointOptions): EpochMachine {
    const epoch = this.c.catalog.beginEpoch(jobId, this.c.now());
    const t0 = this.c.now();
    const m = new EpochMachine(jobId, epoch, this.c.now, (_from, to) => {
      // The catalog keeps the epoch's durable states; 'committed' is written by
      // commitEpoch and 'aborted' by abort() with its reason.
      if (CATALOG_PHASES.has(to)) this.c.catalog.setEpochState(jobId, epoch, to, this.c.now());
      options.progress?.(epoch, to, this.c.now() - t0);
    });
    this.c.event('checkpoint.begin', `job ${jobId}: checkpoint epoch ${epoch} begins${options.stop ? ' (then stop)' : ''}`, { jobId });
    options.progress?.(epoch, 'preparing', 0);
    return m;
  }

  private async run(m: EpochMachine, byHost: Map<string, number[]>, options: CheckpointOptions, undo: Undo): Promise<CheckpointReplyInit> {
    const { jobId, epoch } = m;
    const cfg = this.c.config;
    const dumpedHosts = undo.dumpedHosts;
    const imageSet = String(epoch);

    // PREPARE: every rank flushes; the agents aggregate their ranks. What the coordinator had passed on of each
    // host's ranks when it answered is what its DUMP reply counts late output from (below).
    const atReply: OutputCounts = {};
    const onReply = (host: string) => Object.assign(atReply, this.c.jobs.output.replay.counts(jobId, byHost.get(host) ?? []));
    const flush = await runRound(this.c, { job_id: jobId, epoch, step: RoundStep.PREPARE, image_set: imageSet }, byHost, cfg.flushTimeoutMs, undefined, {
      endWhenSilent: true,
      askAgainMs: FLUSH_RETRY_MS,
      onReply,
    });
    if (!flush.ok) return this.abort(m, byHost, dumpedHosts, 'PREPARE', flush);
    this.c.flushes.close(jobId, epoch);
    m.transition(['preparing'], 'flushed');
    // The agents handed over their ranks' output before answering (or said what they hold back): a restart from
    // this epoch knows what was shown.
    const unsent = [...flush.replies.values()].flatMap((r) => r.unsent_output ?? []);
    this.c.catalog.setOutputMarks(jobId, epoch, this.c.jobs.output.replay.mark(jobId, unsent, atReply));
    this.c.jobs.output.saveOutputCounts(); // a later coordinator counts on from at least this mark

    // DUMP: each agent CRIU-dumps its flushed ranks, left running (with --stop: left stopped, for the STOP
    // after the commit; a rank computing outside MPI would print and write on until then).
    m.transition(['flushed'], 'dumping');
    for (const [host, ranks] of byHost) dumpedHosts.set(host, ranks);
    const dump = await runRound(
      this.c,
      { job_id: jobId, epoch, step: RoundStep.DUMP, image_set: imageSet, store_separately: true, leave_stopped: options.stop },
      byHost,
      cfg.dumpTimeoutMs,
      (ranks) => ({ dump_ranks: ranks }),
    );
    if (!dump.ok) return this.abort(m, byHost, dumpedHosts, 'DUMP', dump);
    // Ranks computing outside MPI printed on after the flush, up to their dump: their restored copies do not
    // print that again (agent/late-output.ts).
    const late = [...dump.replies.values()].flatMap((r) => r.late_output ?? []);
    const marks = late.length > 0 ? this.c.catalog.outputMarks(jobId, epoch) : undefined;
    if (marks) this.c.catalog.setOutputMarks(jobId, epoch, withLateOutput(marks, late));
    m.transition(['dumping'], 'dumped');

    // RESUME now unless the job stops: the images are written, the ranks need not wait for them to be stored.
    let resumeProblem = '';
    let resumed: EarlyResume | undefined;
    if (!options.stop) {
      m.transition(['dumped'], 'resuming');
      this.c.jobs.tables.expectTable(jobId);
      const resume = await runResumeRound(this.c, { job_id: jobId, epoch }, byHost);
      if (!resume.ok && !this.c.jobs.owesResume(jobId, `epoch ${epoch} dumped`, resume, byHost)) resumeProblem = describeRoundFailure('RESUME', resume);
      resumed = { ok: resume.ok, problem: resumeProblem };
      undo.resumed = resumed;
    }

    // STORE: each agent hashes and fsyncs its ranks' images and writes their manifests.
    m.transition(['dumped', 'resuming'], 'storing');
    const store = await runRound(
      this.c,
      { job_id: jobId, epoch, step: RoundStep.STORE, image_set: imageSet },
      byHost,
      cfg.dumpTimeoutMs,
      (ranks) => ({ dump_ranks: ranks }),
    );
    if (!store.ok) return this.abort(m, byHost, dumpedHosts, 'STORE', store, undefined, resumed);

    // STORED: every rank's image, as its agent reports it, into the catalog.
    let sizeBytes = 0;
    try {
      const seen = new Set<number>();
      for (const [host, reply] of store.replies) {
        for (const img of reply.images) {
          this.c.catalog.recordEpochImage({
            jobId,
            epoch,
            rank: img.rank,
            host,
            location: img.location,
            sizeBytes: img.size_bytes,
            sha256: img.manifest_sha256,
            appendedFiles: img.appended_files.map((f) => ({ path: f.path, sizeBytes: Number(f.size_bytes) })),
          });
          seen.add(img.rank);
          sizeBytes += img.size_bytes;
        }
      }
      const missing = [...byHost.values()].flat().filter((r) => !seen.has(r));
      if (missing.length > 0) throw new FerryError(ErrorCode.INTERNAL, `no image reported for ranks ${missing.join(',')}`);
      m.transition(['storing'], 'stored');
      // COMMITTED: one durable transaction; from here on this epoch is the truth.
      this.c.catalog.commitEpoch(jobId, epoch, this.c.now());
      m.transition(['stored'], 'committed');
    } catch (err) {
      const code = isCatalogUnwritable(err) ? ErrorCode.STATE_UNWRITABLE : ErrorCode.INTERNAL;
      return this.abort(m, byHost, dumpedHosts, 'STORE', undefined, errorMessage(catalogWriteError(err, this.c.catalog.file)), resumed, code);
    }
    this.c.event('checkpoint.commit', `job ${jobId}: epoch ${epoch} committed (${sizeBytes} bytes of images)`, { jobId });

    // STOP with --stop: the ranks waited, flushed, for the commit.
    if (options.stop) {
      m.transition(['committed'], 'stopping');
      this.c.jobs.markStopping(jobId, epoch);
      const stop = await runRound(this.c, { job_id: jobId, epoch, step: RoundStep.STOP }, byHost, cfg.resumeTimeoutMs, (ranks) => ({ dump_ranks: ranks }));
      if (!stop.ok && !this.c.jobs.owesStop(jobId, epoch, stop, byHost)) resumeProblem = describeRoundFailure('STOP', stop);
    }
    m.transition(['committed', 'stopping'], 'done');
    try {
      this.c.retention.apply(jobId);
    } catch (err) {
      // The new epoch is committed whatever happens to the old ones.
      this.c.event('checkpoint.retire-failed', `job ${jobId}: older epochs not deleted after epoch ${epoch}: ${errorMessage(err)}`, { jobId });
    }
    // Copies on other hosts (--image-replicas), once this checkpoint has released the job.
    this.c.replication.afterCommit(jobId, epoch);
    if (resumeProblem) {
      // The epoch is committed and stays valid; the job itself is in trouble.
      this.c.event('checkpoint.resume-failed', `job ${jobId}: epoch ${epoch} committed, but ${resumeProblem}`, { jobId });
      this.c.jobs.failRunningJob(jobId, `after committing epoch ${epoch}: ${resumeProblem}`);
    }
    let drainedMessages = 0;
    let drainedBytes = 0;
    for (const r of flush.replies.values()) {
      drainedMessages += r.flush?.drained_messages ?? 0;
      drainedBytes += r.flush?.drained_bytes ?? 0;
    }
    return {
      epoch: this.epochInfo(jobId, epoch),
      flush_ms: m.between('preparing', 'flushed'),
      dump_ms: m.between('dumping', 'dumped'),
      store_ms: m.between('storing', 'stored'),
      commit_ms: m.between('stored', 'committed'),
      resume_ms: options.stop ? m.between('stopping', 'done') : m.between('resuming', 'storing'),
      paused_ms: options.stop ? 0 : m.between('preparing', 'storing'),
      drained_messages: drainedMessages,
      drained_bytes: drainedBytes,
      replicas_to_copy: this.c.replication.replicasOf(jobId),
    };
  }

  /**
   * Aborts an epoch before COMMITTED: wake every rank that can be reached,
   * remove partial images, record why. The previous committed epoch is untouched.
   */
  private async abort(
    m: EpochMachine,
    byHost: Map<string, number[]>,
    dumpedHosts: Map<string, number[]>,
    step: string,
    result?: RoundResult,
    reason?: string,
    resumed?: EarlyResume,
    code: ErrorCode = ErrorCode.UNAVAILABLE,
  ): Promise<never> {
    const { jobId, epoch } = m;
    const why = reason ? `${step} failed: ${reason}` : describeRoundFailure(step, result!);
    trace(`abort job ${jobId} epoch ${epoch}: ${why}`);
    m.transition(['preparing', 'flushed', 'dumping', 'dumped', 'storing', 'stored'], 'aborting');
    // A host down whose ranks were resumed already reports none flushed for this epoch when it is back: noted
    // first, so one that registers while this abort runs gets its DISCARD queued behind it.
    const down = hostsDown(this.c, result);
    const downDumped = [...dumpedHosts.keys()].filter((host) => down.has(host));
    if (resumed && downDumped.length > 0) this.imagesToDiscard.push({ jobId, epoch, why: 'its agent was lost when the epoch aborted', hosts: new Set(downDumped), hostsDone: new Set() });
    const reachable = new Map([...byHost].filter(([host]) => !down.has(host)));
    let detail = why;
    // What becomes of the ranks: resumed before STORE already (resumed), else woken now.
    let ranks: 'running' | 'owed' | 'failed' | 'waiting';
    let waitingFor: string[] = [];
    // A failed PREPARE may leave ranks flushing for peers that never got it: the flush is finished first (flush-completion.ts).
    const what = `checkpoint epoch ${epoch}`;
    const flush = !resumed && step === 'PREPARE' && result ? await this.c.flushes.settle(jobId, epoch, String(epoch), what, result) : undefined;
    if (flush?.state === 'owed') {
      this.c.flushes.owe(jobId, epoch, String(epoch), what, flush.hosts);
      ranks = 'waiting';
      waitingFor = flush.hosts;
    } else if (flush?.state === 'failed') {
      detail += `; ${flush.problem}`;
      this.c.jobs.failRunningJob(jobId, `epoch ${epoch} aborted (${why}), and ${flush.problem}`);
      ranks = 'failed';
    } else if (resumed) {
      ranks = resumed.problem ? 'failed' : resumed.ok ? 'running' : 'owed';
      if (resumed.problem) {
        detail += `; ${resumed.problem}`;
        this.c.jobs.failRunningJob(jobId, `epoch ${epoch} aborted (${why}), and ${resumed.problem}`);
      }
    } else {
      const resume = this.c.jobs.withoutEndedRanks(jobId, await runResumeRound(this.c, { job_id: jobId, epoch }, reachable));
      if (!resume.ok) detail += `; resuming the ranks also failed: ${describeRoundFailure('RESUME', resume)}`;
      const fine = this.c.jobs.resumedOrFailed(jobId, `epoch ${epoch} aborted`, resume, reachable, `epoch ${epoch} aborted (${why}), and ${describeRoundFailure('RESUME', resume)}`);
      // (ranks on hosts down were not asked: they resume when their agents are back, JobService.settleFlushed)
      ranks = resume.ok ? ([...byHost.keys()].some((host) => down.has(host)) ? 'owed' : 'running') : fine ? 'owed' : 'failed';
    }
    const discardOn = new Map([...dumpedHosts].filter(([host]) => !down.has(host)));
    const discard = await runRound(this.c, { job_id: jobId, epoch, step: RoundStep.DISCARD, image_set: String(epoch) }, discardOn, this.c.config.resumeTimeoutMs);
    if (!discard.ok) detail += `; some partial images could not be removed: ${describeRoundFailure('DISCARD', discard)}`;
    // (the catalog full: its ranks and images are settled, only the record waits, late-writes.ts)
    const [atMs, recorded] = [this.c.now(), detail];
    const refused = this.c.lateWrites.run(jobId, 'abort', `the abort of epoch ${epoch} of job ${jobId}`, () => {
      if (this.c.catalog.getEpoch(jobId, epoch)?.state !== 'aborted') this.c.catalog.setEpochState(jobId, epoch, 'aborted', atMs, recorded);
    });
    if (refused) detail += `; the abort is not in the catalog yet (${refused.message}): it goes there once the catalog can be written, before the job's next checkpoint at the latest`;
    m.transition(['aborting'], 'aborted');
    this.c.retention.forgetEnded(jobId); // a job whose checkpoints keep failing lists only the newest
    const previous = this.c.catalog.lastCommittedEpoch(jobId);
    this.c.event('checkpoint.abort', `job ${jobId}: epoch ${epoch} aborted: ${detail}`, { jobId });
    const fate = {
      running: 'The job keeps running',
      owed: 'Ranks on hosts that were lost resume when their agents are back',
      failed: 'The job fails: a rank left flushed would hang it',
      waiting: `The job's ranks wait, flushed, until the agent${waitingFor.length > 1 ? 's' : ''} on ${waitingFor.join(', ')} ${waitingFor.length > 1 ? 'are' : 'is'} back to finish the flush (within ${this.c.config.hostRejoinGraceMs} ms, or the job fails), then resume`,
    }[ranks];
    throw new FerryError(
      result ? roundFailureCode(result) : code,
      `checkpoint of job ${jobId} (epoch ${epoch}) aborted: ${detail}. ${fate}` +
        (previous ? `; epoch ${previous.epoch} remains the last committed checkpoint.` : '; there is no committed checkpoint yet.'),
    );
  }

  /**
   * At start: an epoch the catalog has in flight was run by a coordinator that
   * is gone, and nothing will finish it. It is aborted; its ranks, flushed for
   * it, are resumed and its partial images removed host by host as their agents
   * register (JobService.settleFlushed). Ranks that were resumed before STORE
   * are flushed for nothing: each host of the job gets the DISCARD of such an
   * epoch's images when it registers (discardUnreached).
   */
  abortInterrupted(): void {
    for (const e of this.c.catalog.inFlightEpochs()) {
      const detail = `interrupted: the coordinator restarted while the epoch was ${e.state}`;
      this.c.catalog.setEpochState(e.jobId, e.epoch, 'aborted', this.c.now(), detail);
      if (RESUMED_BEFORE_STORE.has(e.state)) this.imagesToDiscard.push({ jobId: e.jobId, epoch: e.epoch, why: 'the epoch was cut short by a coordinator restart', hostsDone: new Set() });
      const previous = this.c.catalog.lastCommittedEpoch(e.jobId);
      this.c.event(
        'checkpoint.abort',
        `job ${e.jobId}: epoch ${e.epoch} aborted: ${detail}; ` +
          (previous ? `epoch ${previous.epoch} remains the last committed checkpoint` : 'there is no committed checkpoint yet'),
        { jobId: e.jobId },
      );
    }
  }

  /**
   * An agent registered: the images it may hold of epochs in imagesToDiscard
   * go, for the ranks of their job the catalog has there (those it reports
   * flushed for the epoch are JobService.settleFlushed's,
   * which discards their images before it resumes them). A DISCARD of images
   * that are not there does nothing; one of a DUMP or STORE still running
   * there waits for it.
   */
  discardUnreached(host: string, reported: RankProcess[]): void {
    // Entries for named hosts go once each of those has been told; those of a deleted job go (`ferry delete`
    // removed its images on every host), or every agent's registration would fail on them from then on.
    this.imagesToDiscard = this.imagesToDiscard.filter(
      (d) => this.c.catalog.getJob(d.jobId) !== undefined && (!d.hosts || [...d.hosts].some((h) => !d.hostsDone.has(h))),
    );
    for (const d of this.imagesToDiscard) {
      if (d.hostsDone.has(host) || (d.hosts && !d.hosts.has(host))) continue;
      const flushedForIt = new Set(reported.filter((p) => p.job_id === d.jobId && Number(p.flushed_epoch) === d.epoch).map((p) => p.rank));
      const ranks = this.c.catalog
        .listRanks(d.jobId)
        .filter((r) => r.host === host && !flushedForIt.has(r.rank))
        .map((r) => r.rank);
      if (ranks.length === 0) continue;
      d.hostsDone.add(host);
      this.c.operations.queue(d.jobId, () => `aborted epoch ${d.epoch}'s images on host ${host} are being discarded (${d.why})`, async () => {
        const r = await runRound(this.c, { job_id: d.jobId, epoch: d.epoch, step: RoundStep.DISCARD, image_set: String(d.epoch) }, new Map([[host, ranks]]), this.c.config.dumpTimeoutMs);
        if (!r.ok) this.c.event('checkpoint.discard-failed', `job ${d.jobId}: aborted epoch ${d.epoch}: ${describeRoundFailure('DISCARD', r)}`, { jobId: d.jobId, host });
      });
    }
  }

  epochInfo(jobId: string, epoch: number): EpochInfoInit {
    const e = this.c.catalog.getEpoch(jobId, epoch);
    if (!e) throw new FerryError(ErrorCode.BAD_REQUEST, `job ${jobId} has no epoch ${epoch}`);
    const images = this.c.catalog.epochImages(jobId, epoch);
    const replicas = [...this.c.replication.storedHosts(jobId, epoch).values()];
    return {
      job_id: jobId,
      epoch,
      state: e.state,
      started_ms: e.startedMs,
      committed_ms: e.committedMs ?? 0,
      size_bytes: images.reduce((n, i) => n + i.sizeBytes, 0),
      images: images.length,
      phases: e.phases.map((p) => ({ state: p.state, at_ms: p.atMs, detail: p.detail ?? '' })),
      detail: e.detail ?? '',
      replicated_images: replicas.length,
      replica_hosts: [...new Set(replicas.flat())].sort(),
    };
  }
}
