// Epoch retention: a job keeps the images of its newest N committed epochs
// (its own --keep-epochs, else the coordinator's default). After each commit
// the older committed epochs become 'deleted' in the catalog first, so no
// restart can pick them any more, and then their images are removed, host by
// host, with DISCARD. An image whose host is down stays listed in the catalog
// (epoch_images.removed_ms empty) and is removed when that host, or another
// host of its image store, registers. Nothing here ever touches the newest
// committed epoch, nor an epoch in flight, except `ferry delete` of a whole
// ended job: all its epochs go the same way, and the job leaves the catalog
// once the last of their images is removed. A restart from an older epoch
// leaves the epochs taken after it behind: they are another history, no
// fallback for the restarted run, and go at its first commit. The catalog
// lists the newest ENDED_EPOCHS_LISTED epochs that ended unkept (aborted,
// deleted, lost) and forgets older ones once nothing of theirs is left to
// remove; the events keep their story.
import { ErrorCode, RoundStep, type DeleteJobReplyInit } from '../../gen/proto.js';
import { ENDED_EPOCHS_LISTED, WAIT_FOR_COPIES_MS } from '../coordinator-config.js';
import { FerryError, errorMessage } from '../../common/ferry-error.js';
import { tracer } from '../../common/trace.js';
import { EPOCH_COMMITTED, type EpochImageRow, type JobRow } from '../catalog-types.js';
import type { Coordinator } from '../coordinator.js';
import { describeRoundFailure, runRound } from '../round-runner.js';
import { seesImage } from './image-source-choice.js';

const trace = tracer('checkpoint');

/** The most committed epochs a job can be told to keep: a bound on bad input, not a policy. */
const MAX_KEEP_EPOCHS = 1_000_000;

export class EpochRetention {
  /** `job/epoch/rank` of images a DISCARD is removing right now: a second sweep leaves them alone. */
  private readonly removing = new Set<string>();

  constructor(private readonly c: Coordinator) {}

  /** How many committed epochs of `jobId` keep their images. */
  keepOf(jobId: string): number {
    const job = this.c.catalog.getJob(jobId);
    if (!job) throw new FerryError(ErrorCode.UNKNOWN_JOB, `no job "${jobId}" in the catalog`);
    return this.keepOfRow(job);
  }

  /** The job's own number, else the coordinator's default. */
  keepOfRow(job: JobRow): number {
    return job.keepEpochs || this.c.config.keepEpochs;
  }

  /** Refuses a number a job cannot be given (0 stands for the coordinator's default). */
  checkKeep(keep: number): void {
    if (!Number.isSafeInteger(keep) || keep < 0 || keep > MAX_KEEP_EPOCHS) {
      throw new FerryError(ErrorCode.BAD_REQUEST, `a job keeps 1 to ${MAX_KEEP_EPOCHS} committed epochs (0: the coordinator's default, ${this.c.config.keepEpochs}); got ${keep}`);
    }
  }

  /** Sets a job's number (0: back to the coordinator's default) and deletes what it no longer keeps. */
  async set(jobId: string, keep: number): Promise<void> {
    this.keepOf(jobId); // an unknown job is named as such
    this.checkKeep(keep);
    await this.c.operations.afterBackground(jobId, WAIT_FOR_COPIES_MS);
    // Claimed like any operation: a restart fetching an older epoch must not lose its images underneath (BUSY then).
    const release = this.c.operations.begin(jobId, () => 'its retention is being changed');
    try {
      this.c.catalog.setKeepEpochs(jobId, keep);
      const effective = this.keepOf(jobId);
      this.c.event('checkpoint.retention', `job ${jobId}: keeps the images of its ${effective} newest committed epoch${effective > 1 ? 's' : ''}`, { jobId });
      this.apply(jobId);
    } finally {
      release();
    }
  }

  /** After a commit (or a change of the number): retires what the job no longer keeps and removes its images. */
  apply(jobId: string): void {
    const keep = this.keepOf(jobId);
    const retired = this.c.catalog.retireEpochs(jobId, keep, this.c.now(), `deleted: the job keeps its ${keep} newest committed epoch${keep > 1 ? 's' : ''}`);
    const job = this.c.catalog.getJob(jobId)!;
    const behind = retired.filter((e) => job.branchFrom > 0 && e > job.branchFrom && e <= job.branchAt);
    const old = retired.filter((e) => !behind.includes(e));
    const list = (epochs: number[]) => `epoch${epochs.length > 1 ? 's' : ''} ${epochs.join(',')}`;
    if (old.length > 0) this.c.event('checkpoint.retire', `job ${jobId}: ${list(old)} deleted (keeping the ${keep} newest committed)`, { jobId });
    if (behind.length > 0) {
      this.c.event('checkpoint.retire', `job ${jobId}: ${list(behind)} deleted: taken after epoch ${job.branchFrom}, which the job was restarted from`, { jobId });
    }
    this.forgetEnded(jobId);
    this.removeInBackground(jobId);
  }

  /**
   * Forgets the job's epochs that ended unkept but the newest ENDED_EPOCHS_LISTED, of
   * those with nothing left to remove: after each commit and abort, and at start.
   */
  forgetEnded(jobId: string): void {
    let gone: number[];
    try {
      gone = this.c.catalog.forgetEndedEpochs(jobId, ENDED_EPOCHS_LISTED);
    } catch (err) {
      // (housekeeping: the next commit or abort forgets them)
      this.c.catalogTrouble(`job ${jobId}: its old ended epochs not forgotten`, err);
      return;
    }
    if (gone.length > 0) trace(`job ${jobId}: epochs ${gone.join(',')} forgotten (the catalog lists its ${ENDED_EPOCHS_LISTED} newest ended unkept)`);
  }

  /**
   * ferry delete: deletes an ended job's epochs, removes their images from
   * every live host that sees them, and purges the job once none is left. A
   * running job is refused; a stopped or failed one with a committed epoch
   * (restartable) only with `force`.
   */
  async deleteJob(jobId: string, force: boolean): Promise<DeleteJobReplyInit> {
    await this.c.operations.afterBackground(jobId, WAIT_FOR_COPIES_MS);
    const job = this.c.catalog.getJob(jobId);
    if (!job) throw new FerryError(ErrorCode.UNKNOWN_JOB, `no job "${jobId}" in the catalog`);
    if (job.state === 'pending' || job.state === 'running') {
      throw new FerryError(ErrorCode.BUSY, `job ${jobId} is ${job.state}: ferry cancel ${jobId} ends it, then ferry delete ${jobId} deletes it`);
    }
    const committed = this.c.catalog.listEpochs(jobId).filter((e) => e.state === EPOCH_COMMITTED).map((e) => e.epoch);
    // A stopped job waits for its restart, a failed one may be restarted from its last checkpoint: their
    // checkpoints go only when the operator says so twice. A job that succeeded or was cancelled is over.
    if ((job.state === 'stopped' || job.state === 'failed') && !force && committed.length > 0) {
      throw new FerryError(
        ErrorCode.BAD_REQUEST,
        `job ${jobId} ${job.state === 'failed' ? 'failed' : 'is stopped'}, and ferry restart ${jobId} can continue it from epoch ${committed[committed.length - 1]}; ` +
          `ferry delete ${jobId} --force deletes it with its epochs`,
      );
    }
    const release = this.c.operations.begin(jobId, () => 'it is being deleted');
    try {
      const info = this.c.jobs.toInfo(job);
      const epochs = this.c.catalog.deleteJob(jobId, this.c.now(), 'deleted: the job was deleted (ferry delete)');
      this.c.jobs.output.jobDeleted(info);
      this.c.event('job.delete', `job ${jobId} (${job.state}) deleted by the operator${epochs.length > 0 ? ` with epoch${epochs.length > 1 ? 's' : ''} ${epochs.join(',')}` : ''}`, { jobId });
      // Its images, and any an earlier retention left waiting for a host.
      const all = this.c.catalog.imagesToRemove(jobId);
      const replicaKey = (r: { epoch: number; rank: number; host: string }) => `${r.epoch}/${r.rank}@${r.host}`;
      const replicas = this.c.catalog.replicasToRemove(jobId);
      await this.removeImages(jobId);
      const left = this.c.catalog.imagesToRemove(jobId);
      const isLeft = new Set(left.map((i) => `${i.epoch}/${i.rank}`));
      const removed = all.filter((i) => !isLeft.has(`${i.epoch}/${i.rank}`));
      const replicasLeft = this.c.catalog.replicasToRemove(jobId); // on hosts that are down
      const isReplicaLeft = new Set(replicasLeft.map(replicaKey));
      const replicasRemoved = replicas.filter((r) => !isReplicaLeft.has(replicaKey(r)));
      const sizeOf = (r: { epoch: number; rank: number }) => all.find((i) => i.epoch === r.epoch && i.rank === r.rank)?.sizeBytes ?? 0;
      this.purge(jobId); // (removeImages purges it already when it removed the last image)
      const purged = !this.c.catalog.deletedJobs().includes(jobId);
      const logs = await this.removeLogs(jobId);
      return {
        job_id: jobId,
        epochs,
        images_removed: removed.length,
        bytes_removed: removed.reduce((n, i) => n + i.sizeBytes, 0),
        log_hosts: logs.hosts,
        log_bytes_removed: logs.bytes,
        replicas_removed: replicasRemoved.length,
        replica_bytes_removed: replicasRemoved.reduce((n, r) => n + sizeOf(r), 0),
        images_waiting: left.length + replicasLeft.length,
        waiting_hosts: [...new Set([...left.map((i) => i.host), ...replicasLeft.map((r) => r.host)])].sort(),
        purged,
      };
    } finally {
      release();
    }
  }

  /**
   * Asks every live host to remove the deleted job's output logs (each host that
   * ran one of its ranks has some). A host that is down keeps them: nothing in the
   * catalog points at them any more, so they are named in an event.
   */
  private async removeLogs(jobId: string): Promise<{ hosts: number; bytes: number }> {
    const up = this.c.hosts.up().map((h) => h.name);
    const replies = await Promise.allSettled(up.map((host) => this.c.requestAgent(host, { remove_job_logs: { job_id: jobId } })));
    let hosts = 0;
    let bytes = 0;
    replies.forEach((r, i) => {
      if (r.status === 'rejected') {
        this.c.event('job.logs-left', `job ${jobId}: its output logs stay on host ${up[i]}: ${errorMessage(r.reason)}`, { jobId, host: up[i] });
      } else if (r.value.remove_job_logs_reply?.removed) {
        hosts++;
        bytes += Number(r.value.remove_job_logs_reply.bytes_removed);
      }
    });
    const down = this.c.hosts.all().filter((h) => h.state !== 'up').map((h) => h.name);
    if (down.length > 0) this.c.event('job.logs-left', `job ${jobId}: hosts ${down.join(', ')} are not up: any output logs of the job there stay`, { jobId });
    return { hosts, bytes };
  }

  /** Purges a deleted job with nothing left to remove; true if it is gone. */
  purge(jobId: string): boolean {
    if (!this.c.catalog.purgeJob(jobId)) return false;
    this.c.jobs.output.replay.forget(jobId);
    this.c.event('job.purged', `job ${jobId}: no image of it is left; the job is gone from the catalog`, { jobId });
    return true;
  }

  /** removeImages without waiting; what fails is traced and left for the next sweep (a host registering). */
  removeInBackground(jobId?: string): void {
    this.removeImages(jobId).catch((err) => trace(`removing images of deleted epochs: ${errorMessage(err)}`));
  }

  /**
   * Sends DISCARD for the images of deleted epochs still on disk (of one job,
   * or of all) to a live host that sees each: its writer, else a host of its
   * image store. Called after a retirement, and when a host registers.
   */
  async removeImages(jobId?: string): Promise<void> {
    const hosts = this.c.hosts.up();
    // job/epoch/host -> the ranks whose images that host removes
    const work = new Map<string, { jobId: string; epoch: number; host: string; images: EpochImageRow[] }>();
    for (const img of this.c.catalog.imagesToRemove(jobId)) {
      const key = `${img.jobId}/${img.epoch}/${img.rank}`;
      if (this.removing.has(key)) continue;
      const stored = { ...img, manifestSha256: img.sha256 };
      const by = hosts.find((h) => h.name === img.host) ?? hosts.find((h) => seesImage(h, stored));
      if (!by) continue; // no live host sees it: when one registers
      this.removing.add(key);
      const w = work.get(`${img.jobId}/${img.epoch}/${by.name}`) ?? { jobId: img.jobId, epoch: img.epoch, host: by.name, images: [] };
      w.images.push(img);
      work.set(`${img.jobId}/${img.epoch}/${by.name}`, w);
    }
    await Promise.all([...work.values()].map((w) => this.removeOn(w.jobId, w.epoch, w.host, w.images)).concat(this.removeReplicas(jobId)));
    for (const deleted of this.c.catalog.deletedJobs()) if (jobId === undefined || deleted === jobId) this.purge(deleted);
  }

  /**
   * DISCARD of the replicas to remove (image-replication.ts): those of deleted
   * epochs, and copies that were never verified, except those a FETCH is making
   * now. Each on its own host, when that host is up.
   */
  private async removeReplicas(jobId?: string): Promise<void> {
    // job/epoch/host -> ranks
    const work = new Map<string, { jobId: string; epoch: number; host: string; ranks: number[] }>();
    for (const r of this.c.catalog.replicasToRemove(jobId)) {
      const key = `${r.jobId}/${r.epoch}/${r.rank}@${r.host}`;
      if (this.removing.has(key) || this.c.replication.isCopying(r.jobId, r.epoch, r.rank, r.host)) continue;
      const host = this.c.hosts.get(r.host);
      if (host?.state !== 'up') continue; // when it registers
      const original = this.c.catalog.epochImages(r.jobId, r.epoch).find((i) => i.rank === r.rank);
      if (original && original.removedMs === null && seesImage(host, { ...original, manifestSha256: original.sha256 })) {
        // (never chosen so: a host that now sees the original's store) Its DISCARD would remove the original.
        this.c.catalog.removeReplicas(r.jobId, r.epoch, r.host, [r.rank]);
        continue;
      }
      this.removing.add(key);
      const w = work.get(`${r.jobId}/${r.epoch}/${r.host}`) ?? { jobId: r.jobId, epoch: r.epoch, host: r.host, ranks: [] };
      w.ranks.push(r.rank);
      work.set(`${r.jobId}/${r.epoch}/${r.host}`, w);
    }
    await Promise.all([...work.values()].map((w) => this.removeReplicasOn(w.jobId, w.epoch, w.host, w.ranks)));
  }

  /**
   * A host that was forgotten registered again: DISCARD of the image folders it
   * held then (Catalog.forgottenImageDirs), image set by image set, each checked
   * again just before (a copy planned there meanwhile is in use). One that
   * fails stays listed, for its next registration. The caller tops up replicas
   * after this, so no new copy lands in a folder being removed.
   */
  async removeForgottenDirs(host: string): Promise<void> {
    const sets = new Map<string, { jobId: string; imageSet: number }>();
    for (const d of this.c.catalog.forgottenImageDirs(host)) sets.set(`${d.jobId}/${d.imageSet}`, d);
    let removed = 0;
    for (const { jobId, imageSet } of sets.values()) {
      const ranks = this.c.catalog.forgottenImageDirs(host).filter((d) => d.jobId === jobId && d.imageSet === imageSet).map((d) => d.rank);
      if (ranks.length === 0) continue;
      try {
        const request = { job_id: jobId, epoch: imageSet, step: RoundStep.DISCARD, image_set: String(imageSet) };
        const r = await runRound(this.c, request, new Map([[host, ranks]]), this.c.config.resumeTimeoutMs);
        const done = ranks.filter((rank) => !r.failures.has(rank));
        this.c.catalog.clearForgottenImageDirs(host, jobId, imageSet, done);
        removed += done.length;
        if (!r.ok) this.c.event('host.stale-images-left', `host ${host}: image folders of job ${jobId} set ${imageSet} it held when it was forgotten stay for now: ${describeRoundFailure('DISCARD', r)}`, { host });
      } catch (err) {
        trace(`removing the image folders host ${host} held when forgotten: ${errorMessage(err)}`);
      }
    }
    if (removed > 0) this.c.event('host.stale-images-removed', `host ${host}, forgotten before, registered again: it removed the ${removed} image folder${removed === 1 ? '' : 's'} it held then`, { host });
  }

  private async removeReplicasOn(jobId: string, epoch: number, host: string, ranks: number[]): Promise<void> {
    try {
      const r = await runRound(this.c, { job_id: jobId, epoch, step: RoundStep.DISCARD, image_set: String(epoch) }, new Map([[host, ranks]]), this.c.config.resumeTimeoutMs);
      const done = ranks.filter((rank) => !r.failures.has(rank));
      if (done.length > 0) this.c.catalog.removeReplicas(jobId, epoch, host, done);
      if (!r.ok) {
        this.c.event('checkpoint.remove-failed', `job ${jobId}: replicas of epoch ${epoch} stay on host ${host} for now: ${describeRoundFailure('DISCARD', r)}`, { jobId, host });
        return;
      }
      this.c.event('checkpoint.replicas-removed', `job ${jobId}: epoch ${epoch}: host ${host} removed its replica${ranks.length > 1 ? 's' : ''} of rank${ranks.length > 1 ? 's' : ''} ${ranks.join(',')}`, { jobId, host });
    } finally {
      for (const rank of ranks) this.removing.delete(`${jobId}/${epoch}/${rank}@${host}`);
    }
  }

  private async removeOn(jobId: string, epoch: number, host: string, images: EpochImageRow[]): Promise<void> {
    const ranks = images.map((i) => i.rank);
    try {
      const r = await runRound(this.c, { job_id: jobId, epoch, step: RoundStep.DISCARD, image_set: String(epoch) }, new Map([[host, ranks]]), this.c.config.resumeTimeoutMs);
      const done = ranks.filter((rank) => !r.failures.has(rank));
      if (done.length > 0) this.c.catalog.markImagesRemoved(jobId, epoch, done, this.c.now());
      if (!r.ok) {
        this.c.event('checkpoint.remove-failed', `job ${jobId}: the images of deleted epoch ${epoch} stay on host ${host} for now: ${describeRoundFailure('DISCARD', r)}`, { jobId, host });
        return;
      }
      const bytes = images.reduce((n, i) => n + i.sizeBytes, 0);
      trace(`job ${jobId}: epoch ${epoch}: images of ranks ${ranks.join(',')} removed by ${host}`);
      const left = this.c.catalog.imagesToRemove(jobId).filter((i) => i.epoch === epoch).length;
      this.c.event(
        'checkpoint.images-removed',
        `job ${jobId}: deleted epoch ${epoch}: host ${host} removed the images of rank${ranks.length > 1 ? 's' : ''} ${ranks.join(',')} (${bytes} bytes)` +
          (left > 0 ? `; ${left} more wait for their hosts` : ''),
        { jobId, host },
      );
    } finally {
      for (const rank of ranks) this.removing.delete(`${jobId}/${epoch}/${rank}`);
    }
  }
}
