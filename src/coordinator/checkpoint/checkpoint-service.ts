// Runs the checkpoint protocol for a job, one epoch at a time:
// PREPARE (flush) -> DUMP -> STORED -> COMMITTED -> RESUME (or STOP).
// Any failure or timeout before COMMITTED aborts the epoch: the surviving
// ranks resume, partial images are discarded, and the previous committed
// epoch stays the one to restart from. States: epoch-machine.ts.
import { ErrorCode, RoundStep, type EpochInfoInit, type CheckpointReplyInit } from '../../gen/proto.js';
import { FerryError, errorMessage } from '../../common/ferry-error.js';
import { tracer } from '../../common/trace.js';
import type { Coordinator } from '../coordinator.js';
import { describeRoundFailure, roundFailureCode, runRound, type RoundResult } from '../round-runner.js';
import { WAIT_FOR_COPIES_MS } from '../coordinator-config.js';
import { EpochMachine, type EpochState } from './epoch-machine.js';

const trace = tracer('checkpoint');

/** States recorded as phases of the epoch in the catalog as they are entered. */
const CATALOG_PHASES = new Set<EpochState>(['flushed', 'dumping', 'stored']);

export interface CheckpointOptions {
  stop: boolean;
  /** Called at each state change, for the operator's progress display. */
  progress?: (epoch: number, state: EpochState, elapsedMs: number) => void;
}

export class CheckpointService {
  constructor(private readonly c: Coordinator) {}

  async checkpoint(jobId: string, options: CheckpointOptions): Promise<CheckpointReplyInit> {
    await this.c.operations.afterBackground(jobId, WAIT_FOR_COPIES_MS);
    const job = this.c.catalog.getJob(jobId);
    if (!job) throw new FerryError(ErrorCode.UNKNOWN_JOB, `no job "${jobId}" in the catalog`);
    this.c.jobs.requireRunning(job, 'checkpoint');
    const byHost = this.c.jobs.liveRanksByHost(jobId);
    const live = [...byHost.values()].reduce((n, r) => n + r.length, 0);
    if (live !== job.worldSize) {
      throw new FerryError(ErrorCode.BAD_REQUEST, `job ${jobId} has ${live} of ${job.worldSize} ranks running: cannot take a consistent checkpoint`);
    }
    let m: EpochMachine | undefined;
    const release = this.c.operations.begin(jobId, () => (m ? `checkpoint epoch ${m.epoch} is ${m.state}` : 'a checkpoint is starting'));
    try {
      m = this.begin(jobId, options);
      return await this.run(m, byHost, options);
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

  private async run(m: EpochMachine, byHost: Map<string, number[]>, options: CheckpointOptions): Promise<CheckpointReplyInit> {
    const { jobId, epoch } = m;
    const cfg = this.c.config;
    const dumpedHosts = new Map<string, number[]>();
    const imageSet = String(epoch);

    // PREPARE: every rank flushes; the agents aggregate their ranks.
    const flush = await runRound(this.c, { job_id: jobId, epoch, step: RoundStep.PREPARE, image_set: imageSet }, byHost, cfg.flushTimeoutMs);
    if (!flush.ok) return this.abort(m, byHost, dumpedHosts, 'PREPARE', flush);
    m.transition(['preparing'], 'flushed');
    // The agents handed over their ranks' output before answering: a restart from this epoch knows what was shown.
    this.c.catalog.setOutputMarks(jobId, epoch, this.c.jobs.replay.mark(jobId));
    this.c.jobs.saveOutputCounts(); // a later coordinator counts on from at least this mark

    // DUMP: each agent dumps its flushed ranks (left running), writes manifests.
    m.transition(['flushed'], 'dumping');
    for (const [host, ranks] of byHost) dumpedHosts.set(host, ranks);
    const dump = await runRound(
      this.c,
      { job_id: jobId, epoch, step: RoundStep.DUMP, image_set: imageSet },
      byHost,
      cfg.dumpTimeoutMs,
      (ranks) => ({ dump_ranks: ranks }),
    );
    if (!dump.ok) return this.abort(m, byHost, dumpedHosts, 'DUMP', dump);

    // STORED: every rank's image, as its agent reports it, into the catalog.
    let sizeBytes = 0;
    let dumpMs = 0;
    let storeMs = 0;
    try {
      const seen = new Set<number>();
      for (const [host, reply] of dump.replies) {
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
          dumpMs = Math.max(dumpMs, img.dump_ms);
          storeMs = Math.max(storeMs, img.store_ms);
        }
      }
      const missing = [...byHost.values()].flat().filter((r) => !seen.has(r));
      if (missing.length > 0) throw new FerryError(ErrorCode.INTERNAL, `no image reported for ranks ${missing.join(',')}`);
      m.transition(['dumping'], 'stored');
      // COMMITTED: one durable transaction; from here on this epoch is the truth.
      this.c.catalog.commitEpoch(jobId, epoch, this.c.now());
      m.transition(['stored'], 'committed');
    } catch (err) {
      return this.abort(m, byHost, dumpedHosts, 'STORE', undefined, errorMessage(err));
    }
    this.c.event('checkpoint.commit', `job ${jobId}: epoch ${epoch} committed (${sizeBytes} bytes of images)`, { jobId });

    // RESUME, or STOP with --stop.
    m.transition(['committed'], 'resuming');
    let resumeProblem = '';
    if (options.stop) {
      this.c.jobs.markStopping(jobId, epoch);
      const stop = await runRound(this.c, { job_id: jobId, epoch, step: RoundStep.STOP }, byHost, cfg.resumeTimeoutMs, (ranks) => ({ dump_ranks: ranks }));
      if (!stop.ok && !this.c.jobs.owesStop(jobId, epoch, stop, byHost)) resumeProblem = describeRoundFailure('STOP', stop);
    } else {
      const resume = await runRound(this.c, { job_id: jobId, epoch, step: RoundStep.RESUME }, byHost, cfg.resumeTimeoutMs);
      if (!resume.ok && !this.c.jobs.owesResume(jobId, `epoch ${epoch} committed`, resume, byHost)) resumeProblem = describeRoundFailure('RESUME', resume);
    }
    m.transition(['resuming'], 'done');
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
    let flushMs = 0;
    for (const r of flush.replies.values()) {
      drainedMessages += r.flush?.drained_messages ?? 0;
      drainedBytes += r.flush?.drained_bytes ?? 0;
      flushMs = Math.max(flushMs, r.flush?.flush_ms ?? 0);
    }
    return {
      epoch: this.epochInfo(jobId, epoch),
      flush_ms: m.between('preparing', 'flushed'),
      // The DUMP round ends with each agent's manifests (store_ms): without them, so the phases add up.
      dump_ms: Math.max(0, m.between('dumping', 'stored') - storeMs),
      store_ms: storeMs,
      commit_ms: m.between('stored', 'committed'),
      resume_ms: m.between('resuming', 'done'),
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
  ): Promise<never> {
    const { jobId, epoch } = m;
    const why = reason ? `${step} failed: ${reason}` : describeRoundFailure(step, result!);
    trace(`abort job ${jobId} epoch ${epoch}: ${why}`);
    m.transition(['preparing', 'flushed', 'dumping', 'stored'], 'aborting');
    const reachable = new Map([...byHost].filter(([host]) => !result?.silentHosts.includes(host)));
    const resume = await runRound(this.c, { job_id: jobId, epoch, step: RoundStep.RESUME }, reachable, this.c.config.resumeTimeoutMs);
    const discardOn = new Map([...dumpedHosts].filter(([host]) => !result?.silentHosts.includes(host)));
    const discard = await runRound(this.c, { job_id: jobId, epoch, step: RoundStep.DISCARD, image_set: String(epoch) }, discardOn, this.c.config.resumeTimeoutMs);
    let detail = why;
    if (!resume.ok) detail += `; resuming the ranks also failed: ${describeRoundFailure('RESUME', resume)}`;
    const resumed = this.c.jobs.resumedOrFailed(jobId, `epoch ${epoch} aborted`, resume, reachable, `epoch ${epoch} aborted (${why}), and ${describeRoundFailure('RESUME', resume)}`);
    if (!discard.ok) detail += `; some partial images could not be removed: ${describeRoundFailure('DISCARD', discard)}`;
    this.c.catalog.setEpochState(jobId, epoch, 'aborted', this.c.now(), detail);
    m.transition(['aborting'], 'aborted');
    const previous = this.c.catalog.lastCommittedEpoch(jobId);
    this.c.event('checkpoint.abort', `job ${jobId}: epoch ${epoch} aborted: ${detail}`, { jobId });
    throw new FerryError(
      result ? roundFailureCode(result) : ErrorCode.UNAVAILABLE,
      `checkpoint of job ${jobId} (epoch ${epoch}) aborted: ${detail}. ` +
        (resume.ok ? 'The job keeps running' : resumed ? 'Ranks on hosts that were lost resume when their agents are back' : 'The job fails: a rank left flushed would hang it') +
        (previous ? `; epoch ${previous.epoch} remains the last committed checkpoint.` : '; there is no committed checkpoint yet.'),
    );
  }

  /**
   * At start: an epoch the catalog has in flight was run by a coordinator that
   * is gone, and nothing will finish it. It is aborted; its ranks, flushed for
   * it, are resumed and its partial images removed host by host as their agents
   * register (JobService.settleFlushed).
   */
  abortInterrupted(): void {
    for (const e of this.c.catalog.inFlightEpochs()) {
      const detail = `interrupted: the coordinator restarted while the epoch was ${e.state}`;
      this.c.catalog.setEpochState(e.jobId, e.epoch, 'aborted', this.c.now(), detail);
      const previous = this.c.catalog.lastCommittedEpoch(e.jobId);
      this.c.event(
        'checkpoint.abort',
        `job ${e.jobId}: epoch ${e.epoch} aborted: ${detail}; ` +
          (previous ? `epoch ${previous.epoch} remains the last committed checkpoint` : 'there is no committed checkpoint yet'),
        { jobId: e.jobId },
      );
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
