// Restart and migration: ranks restored from CRIU images on other hosts.
//
// restart JOB:  FETCH (each target brings its ranks' images and verifies them)
//               -> RESTORE (CRIU restores them, flushed, waiting) -> RESUME
//               (they reconnect to their new agents and rewire). Any failure
//               before RESUME stops what was restored and leaves the job
//               stopped and its epoch untouched: nothing half-started.
// migrate:      PREPARE (every rank flushes) -> DUMP (the moving ranks, left
//               running) -> FETCH (targets) -> STOP (the old copies) ->
//               RESTORE (targets) -> RESUME (every rank rewires). Until STOP
//               a failure resumes everyone where they were: nothing lost. A
//               failed RESTORE after STOP restores the rank where it was.
// Each target reads an image in place when its images directory is the store
// the image was written to (a shared directory), else fetches it from a live
// host that has it (image-source-choice.ts).
import { randomBytes } from 'node:crypto';
import { ErrorCode, RoundStep, type AppendedFileInit, type ImageSourceInit, type MoveReplyInit } from '../../gen/proto.js';
import { WAIT_FOR_COPIES_MS } from '../coordinator-config.js';
import { catalogWriteError, isCatalogUnwritable } from '../catalog-errors.js';
import { FerryError, errorMessage } from '../../common/ferry-error.js';
import { tracer } from '../../common/trace.js';
import { EPOCH_COMMITTED, EPOCH_DELETED, EPOCH_LOST, type EpochImageRow, type JobRow, type RankMoveRow } from '../catalog-types.js';
import type { Coordinator } from '../coordinator.js';
import { placeRanks } from '../placement.js';
import { byHostOf, describeRoundFailure, hostsDown, roundFailureCode, runResumeRound, runRound, type RoundResult } from '../round-runner.js';
import { fetchAgainFromNewSources } from './fetch-again.js';
import { FLUSH_RETRY_MS } from './flush-completion.js';
import { chooseImageSource, type StoredImage } from './image-source-choice.js';

const trace = tracer('moves');

/** host -> ranks of several maps in one: a host in more than one gets all of their ranks. */
function mergeByHost(...maps: Map<string, number[]>[]): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const map of maps) for (const [host, ranks] of map) m.set(host, [...new Set([...(m.get(host) ?? []), ...ranks])].sort((a, b) => a - b));
  return m;
}

/** How long a drain waits for another operation on a job whose ranks it moves. */
export const DRAIN_BUSY_WAIT_MS = 120_000;
const DRAIN_BUSY_RETRY_MS = 500;

export interface RestartOptions {
  epoch?: number;
  hosts?: string[];
  rankHosts?: Map<number, string>;
  progress?: MoveProgressFn;
  /** The caller already holds the job's operation (queued coordinator work): the restart does not claim it. */
  held?: boolean;
  /**
   * Without hosts or a map: each rank whose last host is up stays there (its image is at hand), and only
   * the others are spread by free capacity (an automatic restart after a lost host).
   */
  keepInPlace?: boolean;
  /**
   * The job's followers stayed attached across the failure (an automatic restart): what the ranks print
   * again up to where they were is not passed on twice (output-replay.ts). An operator's restart of an
   * ended job has new followers, who are shown everything the restored ranks print.
   */
  hideRepeatedOutput?: boolean;
}

/** One step of a restart or migration, for the operator's progress display. */
export interface MoveProgress {
  jobId: string;
  /** flushing, dumping, fetching, fetched, restoring, resuming */
  phase: string;
  elapsedMs: number;
  /** Image bytes to ship in this operation (known once the images are), and shipped so far. */
  bytesTotal: number;
  bytesDone: number;
}
export type MoveProgressFn = (p: MoveProgress) => void;

const sum = (xs: Iterable<number>) => [...xs].reduce((n, x) => n + x, 0);

/**
 * Per append-only file, the largest size any rank's dump recorded: ranks appending to one file are
 * frozen one after the other, and none may lose what it had appended by its own dump.
 */
function largestAppendedSizes(images: readonly EpochImageRow[]): AppendedFileInit[] {
  const sizes = new Map<string, number>();
  for (const img of images) for (const f of img.appendedFiles) sizes.set(f.path, Math.max(f.sizeBytes, sizes.get(f.path) ?? 0));
  return [...sizes].map(([path, size]) => ({ path, size_bytes: size }));
}

/** What a restart's FETCH cut back of the files its ranks wrote after the epoch, one line per file. */
function cutBackNotes(fetch: RoundResult, epoch: number): string[] {
  return [...fetch.replies].flatMap(([host, reply]) =>
    reply.files_cut_back.map(
      (f) => `rank ${f.rank} on ${host}: ${f.path}: cut back from ${f.from_bytes} to ${f.to_bytes} bytes, its size at epoch ${epoch} (written after that checkpoint)`,
    ),
  );
}
/** The hosts a restart names: its map's, else its list (none: the job's own). */
const namedHosts = (o: RestartOptions): string[] => (o.rankHosts?.size ? [...new Set(o.rankHosts.values())] : (o.hosts ?? []));

export class MoveService {
  constructor(private readonly c: Coordinator) {}

  // ---- restart ---------------------------------------------------------------------

  async restart(jobId: string, o: RestartOptions): Promise<MoveReplyInit> {
    if (!o.held) await this.c.operations.afterBackground(jobId, WAIT_FOR_COPIES_MS);
    // (before the checks below. Asked right after a coordinator restart: the targets, the images' hosts and
    // the free capacity are those of the hosts back by then)
    await this.c.jobs.untilHeardFrom(jobId, this.c.hosts.all().map((h) => h.name));
    // (a failed restart the catalog could not take yet, say: it lists the job pending)
    this.c.lateWrites.settle(jobId);
    const job = this.c.catalog.getJob(jobId);
    if (!job) throw new FerryError(ErrorCode.UNKNOWN_JOB, `no job "${jobId}" in the catalog`);
    if (job.state === 'running' || job.state === 'pending') {
      throw new FerryError(ErrorCode.BAD_REQUEST, `job ${jobId} is ${job.state}: stop it with "ferry checkpoint ${jobId} --stop" first, or migrate its ranks`);
    }
    const epochRow = o.epoch ? this.c.catalog.getEpoch(jobId, o.epoch) : this.c.catalog.lastCommittedEpoch(jobId);
    if (!epochRow) {
      const lost = o.epoch ? [] : this.c.catalog.listEpochs(jobId).filter((e) => e.state === EPOCH_LOST);
      throw new FerryError(
        ErrorCode.BAD_REQUEST,
        o.epoch
          ? `job ${jobId} has no epoch ${o.epoch}`
          : `job ${jobId} has no committed checkpoint to restart from` + lost.map((e) => `; epoch ${e.epoch} is ${e.detail ?? 'lost'}`).join(''),
      );
    }
    if (epochRow.state === EPOCH_DELETED || epochRow.state === EPOCH_LOST) {
      const kept = this.c.catalog.listEpochs(jobId).filter((e) => e.state === EPOCH_COMMITTED).map((e) => e.epoch);
      throw new FerryError(
        ErrorCode.BAD_REQUEST,
        (epochRow.state === EPOCH_LOST
          ? `epoch ${epochRow.epoch} of job ${jobId} is ${epochRow.detail ?? 'lost'}; `
          : `epoch ${epochRow.epoch} of job ${jobId} was deleted (${epochRow.detail ?? 'retention'}); `) +
          (kept.length ? `committed epochs with images: ${kept.join(', ')}` : 'it has no committed epoch left'),
      );
    }
    if (epochRow.state !== EPOCH_COMMITTED) throw new FerryError(ErrorCode.BAD_REQUEST, `epoch ${epochRow.epoch} of job ${jobId} is ${epochRow.state}, not committed`);
    const epoch = epochRow.epoch;
    const images = this.c.catalog.epochImages(jobId, epoch);
    const replicas = this.c.replication.storedHosts(jobId, epoch);
    // (An image whose writer was forgotten is only where its replicas are.)
    const placement = this.place(job, o, new Map(images.filter((i) => i.removedMs === null).map((i) => [i.rank, i.host])), replicas);
    // Every image's source is settled before anything starts.
    const sources = new Map<number, ImageSourceInit>();
    /** Where rank's target gets its image from (now: a FETCH that lost its source asks again). */
    const chooseSource = (rank: number) => {
      const img = images.find((i) => i.rank === rank)!;
      return chooseImageSource(this.c.replication.storedImage(img, replicas), this.c.hosts.get(placement.get(rank)!)!, this.c.hosts.all());
    };
    // rank -> target, for the images FETCH copies to their target (not read in place there)
    const copied = new Map<number, string>();
    let bytesTotal = 0;
    for (const img of images) {
      const target = this.c.hosts.get(placement.get(img.rank)!)!;
      const choice = chooseSource(img.rank);
      if (!choice.source) {
        throw new FerryError(ErrorCode.HOST_DOWN, `epoch ${epoch} of job ${jobId}: ${choice.why}; nothing was started${choice.note ? ` (${choice.note})` : ''}`);
      }
      trace(`restart ${jobId}: rank ${img.rank} on ${target.name} ${choice.inPlace ? 'reads its image in place' : `fetches from ${choice.source.host}`}`);
      sources.set(img.rank, choice.source);
      if (!choice.inPlace) {
        bytesTotal += img.sizeBytes;
        copied.set(img.rank, target.name);
      }
    }
    const release = o.held ? () => {} : this.c.operations.begin(jobId, () => `restart from epoch ${epoch} is running`);
    const imageHosts = new Map(images.map((i) => [i.rank, i.host]));
    const targets = byHostOf(placement);
    const request = { job_id: jobId, epoch, image_set: String(epoch), world_size: job.worldSize };
    // (a copy on a host down stays listed: it goes when the host registers again, removeLeftCopies)
    const removeCopies = (r?: RoundResult) => {
      const down = hostsDown(this.c, r);
      return this.removeCopies(jobId, epoch, new Map([...byHostOf(copied)].filter(([h]) => !down.has(h))));
    };
    // How far it got, for a catalog that refuses a write on the way (its disk full): see the catch below.
    let begun = false;
    let fetched: RoundResult | undefined;
    let resuming = false;
    try {
      this.c.event('restart.begin', `job ${jobId}: restart from epoch ${epoch} on ${[...new Set(placement.values())].join(',')}`, { jobId });
      this.c.jobs.beginRestart(jobId, placement, epoch);
      begun = true;
      const t0 = this.c.now();
      const say = (phase: string, bytesDone = 0) => o.progress?.({ jobId, phase, elapsedMs: this.c.now() - t0, bytesTotal, bytesDone });
      const perHost = (ranks: number[]) => ({ sources: ranks.map((r) => sources.get(r)!) });
      // The targets' copies serve this restore only: the epoch's own images stay with their writers
      // (and go with the epoch when retention deletes it). The catalog lists them until they are
      // removed, so a copy this restart cannot remove (its coordinator died, its target did not answer)
      // goes when its host registers (removeLeftCopies). Being thrown away, they are not fsynced
      // (transient): a target that crashes before its RESTORE fetches again.
      this.c.catalog.recordRestartCopies(jobId, epoch, copied);
      say('fetching');
      // A rollback: once its image is here, each target cuts back the files its ranks wrote after the
      // epoch (written-files.ts), every one of them before any rank is restored.
      const fetchRequest = { ...request, step: RoundStep.FETCH, transient: true, roll_back_files: true, appended_sizes: largestAppendedSizes(images) };
      let fetch = await runRound(this.c, fetchRequest, targets, this.c.config.dumpTimeoutMs, perHost);
      if (!fetch.ok) {
        // A rank whose source agent ended meanwhile is fetched again, from where its image is served now.
        const again = await fetchAgainFromNewSources(this.c, fetchRequest, targets, fetch, sources, (rank) => chooseSource(rank).source, this.c.config.dumpTimeoutMs);
        fetch = again.result;
        for (const [rank, source] of again.newSources) sources.set(rank, source);
      }
      fetched = fetch;
      const notes = cutBackNotes(fetch, epoch);
      for (const n of notes) this.c.event('restart.file-cut-back', `job ${jobId}: ${n}`, { jobId });
      const cutSoFar = (putBack: string) =>
        notes.length
          ? ` (files cut back before it: ${notes.slice(0, 3).join('; ')}${notes.length > 3 ? `; and ${notes.length - 3} more (ferry events --job ${jobId})` : ''}${putBack})`
          : putBack
            ? ` (${putBack.replace(/^; /, '')})`
            : '';
      if (!fetch.ok) {
        await removeCopies(fetch);
        const putBack = await this.putBackCutFiles(jobId, request, fetch, targets);
        throw this.restartFailure(jobId, epoch, describeRoundFailure('FETCH', fetch) + cutSoFar(putBack), imageHosts, roundFailureCode(fetch));
      }
      const shipped = sum([...fetch.replies.values()].map((r) => r.bytes_fetched));
      say('fetched', shipped);
      const t1 = this.c.now();
      say('restoring', shipped);
      // The ranks run again from the epoch: for followers that stayed, what they print again is not shown
      // twice. Each restored copy's output is followed under a name given here, and the repeats are set before
      // any rank is restored: a rank computing outside MPI prints from its restore on, maybe before another
      // target has answered its RESTORE.
      const restoredSource = restoredOutputSource();
      const hidden = this.c.jobs.output.replay.rewind(jobId, o.hideRepeatedOutput ? this.c.catalog.outputMarks(jobId, epoch) : undefined, restoredSource);
      // (roll_back_files: each rank's host logs say that what follows repeats its output after the epoch)
      const restore = await runRound(this.c, { ...request, step: RoundStep.RESTORE, roll_back_files: true }, targets, this.c.config.dumpTimeoutMs, (ranks) => ({
        sources: ranks.map((r) => ({ ...sources.get(r)!, output_source: restoredSource(r) })),
      }));
      this.recordRestored(jobId, restore);
      if (!restore.ok) {
        // Stop whatever did come back, also on a target that is up but did not answer (its answer lost, or
        // late: it will not register again to have them killed); the epoch stays as it was.
        const down = hostsDown(this.c, restore);
        const reachable = new Map([...targets].filter(([h]) => !down.has(h)));
        await runRound(this.c, { ...request, step: RoundStep.STOP }, reachable, this.c.config.resumeTimeoutMs, (ranks) => ({ dump_ranks: ranks }));
        await removeCopies(restore);
        const putBack = await this.putBackCutFiles(jobId, request, fetch, targets);
        throw this.restartFailure(jobId, epoch, describeRoundFailure('RESTORE', restore) + cutSoFar(putBack), imageHosts, roundFailureCode(restore));
      }
      const t2 = this.c.now();
      say('resuming', shipped);
      this.c.jobs.tables.expectTable(jobId);
      resuming = true;
      const resume = await runResumeRound(this.c, request, targets);
      if (!this.c.jobs.resumedOrFailed(jobId, `restart from epoch ${epoch}`, resume, targets, `after restoring from epoch ${epoch}: ${describeRoundFailure('RESUME', resume)}`)) {
        await removeCopies(resume);
        throw new FerryError(ErrorCode.UNAVAILABLE, `job ${jobId} was restored from epoch ${epoch} but did not resume: ${describeRoundFailure('RESUME', resume)}`);
      }
      this.c.jobs.restartDone(jobId, epoch);
      // A restart's --hosts are the job's from now on (the next allocation's, say); a map's hosts join them.
      const hosts = o.hosts?.length ? [...o.hosts, ...(o.rankHosts?.values() ?? [])] : undefined;
      if (hosts) this.c.lateWrites.run(jobId, 'hosts', `the hosts of job ${jobId}`, () => this.c.catalog.setJobHosts(jobId, hosts));
      else if (o.rankHosts?.size) this.widenJobHosts(jobId, o.rankHosts.values());
      const t3 = this.c.now();
      this.c.event('restart.done', `job ${jobId}: running again from epoch ${epoch} (${t3 - t0} ms)`, { jobId });
      await removeCopies();
      return {
        epoch,
        moves: [...placement].map(([rank, to]) => ({ job_id: jobId, rank, from_host: imageHosts.get(rank) ?? '', to_host: to })),
        fetch_ms: t1 - t0,
        restore_ms: t2 - t1,
        resume_ms: t3 - t2,
        downtime_ms: t3 - t0,
        bytes_shipped: shipped,
        output_replay_known: hidden !== undefined,
        output_replay_hidden_bytes: hidden ?? 0,
        notes,
      };
    } catch (err) {
      // The catalog refused a write (its disk is full) after the job became pending and before any rank
      // resumed: what came back is stopped, the copies go, cut files are put back, and the job is stopped
      // again, in the catalog now or once it can be written (late-writes.ts).
      if (!begun || resuming || !isCatalogUnwritable(err)) throw err;
      const why = errorMessage(catalogWriteError(err, this.c.catalog.file));
      await runRound(this.c, { ...request, step: RoundStep.STOP }, targets, this.c.config.resumeTimeoutMs, (ranks) => ({ dump_ranks: ranks }));
      await removeCopies().catch((e) => trace(`restart of ${jobId}: removing copies: ${errorMessage(e)}`));
      const putBack = fetched ? await this.putBackCutFiles(jobId, request, fetched, targets) : '';
      throw this.restartFailure(jobId, epoch, why + putBack, imageHosts, ErrorCode.STATE_UNWRITABLE);
    } finally {
      release();
    }
  }

  /**
   * A restart that failed after its FETCH (and after its restored ranks were
   * stopped): every target that cut files back appends the cut bytes again
   * (PUT_BACK), so the files are as they were before the restart, and an epoch
   * newer than the one it restarted from still restores. A file written to since
   * the cut stays cut, its bytes kept on its host, and the message says where.
   * A target that did not answer its FETCH (but was up) may have cut too: it is
   * asked as well, and its agent puts back once that FETCH has ended (the
   * agent runs a job's FETCHes and PUT_BACKs in turn). Returns what the
   * failure's message adds ('' when nothing was cut, as far as it knows).
   */
  private async putBackCutFiles(
    jobId: string,
    request: { job_id: string; epoch: number; image_set: string },
    fetch: RoundResult,
    targets: Map<string, number[]>,
  ): Promise<string> {
    const askFor = new Map<string, number[]>();
    let cut = 0;
    for (const [host, reply] of fetch.replies) {
      cut += reply.files_cut_back.length;
      const ranks = [...new Set(reply.files_cut_back.map((f) => f.rank))];
      if (ranks.length > 0) askFor.set(host, ranks);
    }
    // (one that was down never got the request: it cut nothing)
    const unheard = [...targets].filter(([host, ranks]) => !fetch.replies.has(host) && ranks.some((r) => fetch.codes.get(r) !== ErrorCode.HOST_DOWN));
    for (const [host, ranks] of unheard) askFor.set(host, ranks);
    if (askFor.size === 0) return '';
    const r = await runRound(this.c, { ...request, step: RoundStep.PUT_BACK }, askFor, this.c.config.resumeTimeoutMs);
    const unheardHosts = new Set(unheard.map(([host]) => host));
    const putBack = (late: boolean) =>
      [...r.replies]
        .filter(([host]) => unheardHosts.has(host) === late)
        .flatMap(([host, x]) => x.files_put_back.map((f) => `rank ${f.rank} on ${host}: ${f.path}: put back from ${f.from_bytes} to ${f.to_bytes} bytes`));
    const back = putBack(false);
    // Put back by a target whose FETCH had not answered: cuts this restart did not know of.
    const lateBack = putBack(true);
    const left = [...r.replies].flatMap(([host, x]) => x.put_back_problems.map((p) => `on ${host}: ${p}`));
    const unanswered = unheard.filter(([host]) => !r.replies.has(host));
    const heardFailures = [...r.failures].filter(([rank]) => !unanswered.some(([, ranks]) => ranks.includes(rank)));
    if (heardFailures.length > 0) left.push(describeRoundFailure('PUT_BACK', { ...r, failures: new Map(heardFailures) }));
    const pending = unanswered.map(
      ([host, ranks]) =>
        `host ${host} answered neither its FETCH nor the PUT_BACK after it: what it cut back for rank${ranks.length > 1 ? 's' : ''} ${ranks.join(',')}, if anything, ` +
        `it puts back once that FETCH ends, if the PUT_BACK reached it; until then the bytes are kept on ${host} in IMAGES/.cut-back/${host}/${jobId}/${request.image_set}`,
    );
    for (const n of [...back, ...lateBack]) this.c.event('restart.file-put-back', `job ${jobId}: ${n}`, { jobId });
    for (const n of [...left, ...pending]) this.c.event('restart.file-left-cut', `job ${jobId}: ${n}`, { jobId });
    let note = '';
    if (left.length > 0) {
      note = `; after the restart failed, ${back.length} of the ${cut} were put back; left cut: ${left.slice(0, 3).join('; ')}${left.length > 3 ? `; and ${left.length - 3} more (ferry events --job ${jobId})` : ''}`;
    } else if (back.length > 0) {
      note = back.length === 1 ? '; put back as it was after the restart failed' : `; all ${back.length} put back as they were after the restart failed`;
    }
    if (lateBack.length > 0) note += `; cut back by a FETCH that had not answered, and put back: ${lateBack.join('; ')}`;
    return note + (pending.length ? `; ${pending.join('; ')}` : '');
  }

  /**
   * The newest epoch of the job's current run whose every image some live host
   * can read now (its writer's store or a replica), with why each newer one
   * cannot be: an automatic restart after a lost host falls back to it. Undefined
   * when none can.
   */
  reachableEpoch(jobId: string): { epoch: number; passed: { epoch: number; why: string }[] } | undefined {
    const passed: { epoch: number; why: string }[] = [];
    const hosts = this.c.hosts.all();
    const up = this.c.hosts.up();
    for (const epoch of this.c.catalog.runEpochs(jobId)) {
      const replicas = this.c.replication.storedHosts(jobId, epoch);
      let why = '';
      for (const img of this.c.catalog.epochImages(jobId, epoch)) {
        const stored = this.c.replication.storedImage(img, replicas);
        const choices = up.map((h) => chooseImageSource(stored, h, hosts));
        if (choices.some((c) => c.source)) continue;
        why = choices.find((c) => !c.source)?.why ?? `no host is up to read the image of rank ${img.rank}`;
        break;
      }
      if (!why) return { epoch, passed };
      passed.push({ epoch, why });
    }
    return undefined;
  }

  /**
   * DISCARD of the image copies a restart's FETCH made on its targets (host ->
   * ranks); each one removed leaves the catalog's list. One that fails is
   * reported, not fatal: it is tried again when its host registers.
   */
  private async removeCopies(jobId: string, epoch: number, copies: Map<string, number[]>): Promise<void> {
    if (copies.size === 0) return;
    const request = { job_id: jobId, epoch, image_set: String(epoch), step: RoundStep.DISCARD };
    const r = await runRound(this.c, request, copies, this.c.config.resumeTimeoutMs);
    for (const [host, ranks] of copies) {
      // (a row the catalog cannot drop now, its disk full, waits for room: a copy listed is only removed again)
      const removed = ranks.filter((rank) => !r.failures.has(rank));
      this.c.lateWrites.run(jobId, `copies ${epoch} ${host}`, `the removal of job ${jobId}'s copies on ${host}`, () => this.c.catalog.clearRestartCopies(jobId, epoch, host, removed));
    }
    if (!r.ok) this.c.event('restart.copies-left', `job ${jobId}: copies of epoch ${epoch}'s images fetched for the restart stay on disk for now: ${describeRoundFailure('DISCARD', r)}`, { jobId });
  }

  /**
   * A host registered: the restart copies the catalog still lists there (a
   * restart cut short by a coordinator restart, or one whose target did not
   * answer its DISCARD) are removed, each job's once nothing else runs on it.
   * A restart that runs keeps its copies listed, and removes them itself.
   */
  removeLeftCopies(host: string): void {
    const jobs = new Set(this.c.catalog.restartCopies(host).map((x) => x.jobId));
    for (const jobId of jobs) {
      this.c.operations.queue(jobId, () => `copies of a restart's images on host ${host} are being removed`, async () => {
        const byEpoch = new Map<number, number[]>();
        for (const x of this.c.catalog.restartCopies(host).filter((x) => x.jobId === jobId)) byEpoch.set(x.epoch, [...(byEpoch.get(x.epoch) ?? []), x.rank]);
        for (const [epoch, ranks] of byEpoch) await this.removeCopies(jobId, epoch, new Map([[host, ranks]]));
        this.c.retention.purge(jobId); // a deleted job may have waited for these
      });
    }
  }

  private restartFailure(jobId: string, epoch: number, why: string, imageHosts: Map<number, string>, code: ErrorCode): FerryError {
    trace(`restart of ${jobId} failed: ${why}`);
    const detail = `restart from epoch ${epoch} failed: ${why}`;
    let unrecorded = '';
    // (nothing of it runs: only the record waits for room; written late while the job is still pending)
    const refused = this.c.lateWrites.run(jobId, 'restart', `the failed restart of job ${jobId}`, (late) => {
      if (!late || this.c.catalog.getJob(jobId)?.state === 'pending') this.c.jobs.restartFailed(jobId, detail, imageHosts);
    });
    if (refused) {
      unrecorded = ` (${refused.message}: the catalog lists the job pending until it can be written)`;
      code = ErrorCode.STATE_UNWRITABLE;
    }
    this.c.event('restart.failed', `job ${jobId}: ${detail}`, { jobId });
    return new FerryError(code, `restart of job ${jobId} from epoch ${epoch} failed: ${why}; nothing of it runs, epoch ${epoch} is unchanged${unrecorded}`);
  }

  /**
   * rank -> target host: the explicit map, else the listed hosts, else the job's own hosts (JobRow.hosts;
   * any live one for a job without), by free capacity. With no hosts named, a rank goes first to a host
   * with a free slot that holds its image (`imageHosts`, the writers, then `replicas`: no transfer), and
   * with keepInPlace before that to its host if that is up; the others by capacity.
   */
  private place(
    job: JobRow,
    o: RestartOptions,
    imageHosts: ReadonlyMap<number, string>,
    replicas: ReadonlyMap<number, readonly string[]> = new Map(),
  ): Map<number, string> {
    const jobId = job.id;
    const worldSize = job.worldSize;
    const explicit = o.rankHosts ?? new Map<number, string>();
    const named = namedHosts(o);
    for (const name of named) this.c.hosts.requirePlaceable(name);
    if (explicit.size > 0) return new Map(placeRanks(worldSize, [], explicit).map((host, rank) => [rank, host]));
    const hosts =
      named.length > 0
        ? named.map((n) => this.c.hosts.get(n)!)
        : this.c.hosts.requireSomePlaceableOf(job.hosts, `job ${jobId}'s hosts (${job.hosts?.join(', ')})`, 'name others with --hosts or --map');
    const candidates = hosts.map((h) => ({
      name: h.name,
      freeSlots: h.cpus - this.c.catalog.ranksOnHost(h.name).filter((r) => r.state !== 'exited' && r.jobId !== jobId).length,
    }));
    if (named.length === 0) {
      const placed = new Map<number, string>();
      const byName = new Map(candidates.map((h) => [h.name, h]));
      const take = (rank: number, host: string | undefined, needsSlot: boolean): boolean => {
        const h = host === undefined ? undefined : byName.get(host);
        if (!h || (needsSlot && h.freeSlots <= 0)) return false;
        placed.set(rank, h.name);
        h.freeSlots--;
        return true;
      };
      if (o.keepInPlace) for (const r of this.c.catalog.listRanks(jobId)) take(r.rank, r.host, false);
      // Then a host that holds the rank's image (its writer, or a replica) and has a free slot: no transfer.
      for (let rank = 0; rank < worldSize; rank++) {
        if (placed.has(rank)) continue;
        for (const host of [imageHosts.get(rank), ...(replicas.get(rank) ?? [])]) if (take(rank, host, true)) break;
      }
      const rest = Array.from({ length: worldSize }, (_, rank) => rank).filter((rank) => !placed.has(rank));
      if (rest.length > 0) placeRanks(rest.length, candidates, new Map()).forEach((host, i) => placed.set(rest[i]!, host));
      return placed;
    }
    const list = placeRanks(worldSize, candidates, explicit);
    return new Map(list.map((host, rank) => [rank, host]));
  }

  /** Hosts an operator's migration or restart map names join the job's own (its later restarts may use them). */
  private widenJobHosts(jobId: string, targets: Iterable<string>): void {
    const more = [...targets];
    // (after a migration's ranks resumed: what the catalog refuses waits for room, late-writes.ts)
    this.c.lateWrites.run(jobId, 'hosts', `the hosts of job ${jobId}`, () => {
      const hosts = this.c.catalog.getJob(jobId)?.hosts;
      if (!hosts) return;
      const wider = [...new Set([...hosts, ...more])];
      if (wider.length > hosts.length) this.c.catalog.setJobHosts(jobId, wider);
    });
  }

  /**
   * Records where the ranks a RESTORE started run. `orLater`: past a migration's STOP, where a rank's old
   * copy is gone and the migration must go on, what the catalog refuses (its disk full) waits for room
   * (late-writes.ts); a coordinator restarted before that finds the move in the catalog (stopped) and the
   * rank where its agent says it runs (reconcileHost, finishInterrupted).
   */
  private recordRestored(jobId: string, restore: RoundResult, orLater = false): void {
    for (const [host, reply] of restore.replies) {
      for (const p of reply.started) {
        if (orLater) this.movedOrLater(jobId, p.rank, host, p.pid);
        else this.c.jobs.rankMoved(jobId, p.rank, host, p.pid);
      }
    }
  }

  /** rankMoved, or later if the catalog refuses it (recordRestored's orLater). */
  private movedOrLater(jobId: string, rank: number, host: string, pid = 0): void {
    this.c.lateWrites.run(jobId, `rank ${rank}`, `rank ${rank} of job ${jobId} on ${host}`, () => this.c.jobs.rankMoved(jobId, rank, host, pid));
  }

  /** The migration's moves are done with (its ranks restored where they run now), or will be once there is room. */
  private clearMovesOrLater(jobId: string, imageSet: number, ranks: number[]): void {
    this.c.lateWrites.run(jobId, `moves ${imageSet}`, `the end of migration ${imageSet} of job ${jobId}`, () => this.c.catalog.clearRankMoves(jobId, imageSet, ranks));
  }

  // ---- migration -----------------------------------------------------------------------

  /** Moves ranks of a running job to other hosts; the other ranks keep their processes. */
  async migrate(jobId: string, moves: Map<number, string>, progress?: MoveProgressFn): Promise<MoveReplyInit> {
    await this.c.operations.afterBackground(jobId, WAIT_FOR_COPIES_MS);
    // (before the checks below: the job may end, or a host go down, meanwhile)
    await this.c.jobs.untilHeardFrom(jobId, [...moves.values()]);
    await this.c.jobs.tables.untilTableOut(jobId, this.c.config.flushTimeoutMs);
    // (what the catalog refused of the job before, its disk full: a rank's host, say)
    this.c.lateWrites.settle(jobId);
    const job = this.c.catalog.getJob(jobId);
    if (!job) throw new FerryError(ErrorCode.UNKNOWN_JOB, `no job "${jobId}" in the catalog`);
    this.c.jobs.requireRunning(job, 'migrate');
    const ranks = this.c.catalog.listRanks(jobId);
    const from = new Map<number, string>();
    for (const [rank, to] of moves) {
      const row = ranks.find((r) => r.rank === rank);
      if (!row) throw new FerryError(ErrorCode.UNKNOWN_RANK, `job ${jobId} has no rank ${rank} (it has ${job.worldSize})`);
      if (row.state !== 'running') throw new FerryError(ErrorCode.BAD_REQUEST, `rank ${rank} of job ${jobId} is ${row.state}`);
      if (row.host === to) throw new FerryError(ErrorCode.BAD_REQUEST, `rank ${rank} of job ${jobId} already runs on ${to}`);
      this.c.hosts.requirePlaceable(to);
      from.set(rank, row.host);
    }
    const all = this.c.jobs.liveRanksByHost(jobId);
    const live = [...all.values()].reduce((n, r) => n + r.length, 0);
    if (live !== job.worldSize) throw new FerryError(ErrorCode.BAD_REQUEST, `job ${jobId} has ${live} of ${job.worldSize} ranks running`);
    this.c.jobs.requireHostsUp(jobId, 'migrate its ranks');
    const release = this.c.operations.begin(jobId, () => `a migration is running`);
    try {
      const imageSet = this.c.catalog.reserveImageSet(jobId);
      const reply = await this.runMigration(jobId, imageSet, job.worldSize, moves, from, new Map(all), progress);
      this.widenJobHosts(jobId, moves.values());
      return reply;
    } finally {
      release();
    }
  }

  private async runMigration(
    jobId: string,
    imageSet: number,
    worldSize: number,
    moves: Map<number, string>,
    from: Map<number, string>,
    all: Map<string, number[]>,
    progress?: MoveProgressFn,
  ): Promise<MoveReplyInit> {
    const cfg = this.c.config;
    // A migration's images live in an image set of their own, numbered like epochs.
    const id = `migration ${imageSet}`;
    const request = { job_id: jobId, epoch: imageSet, image_set: String(imageSet), world_size: worldSize };
    const sourceHosts = byHostOf(from);
    const targets = byHostOf(moves);
    const everyone = (): Map<string, number[]> => this.c.jobs.liveRanksByHost(jobId);
    const resumeAll = (hosts: Map<string, number[]>) => runResumeRound(this.c, request, hosts);
    const discard = (hosts: Map<string, number[]>) => runRound(this.c, { ...request, step: RoundStep.DISCARD }, hosts, cfg.resumeTimeoutMs);
    let recorded = false; // this migration's moves are in the catalog (from its FETCH on)
    let failing = false; // fail or giveUp has run: what it throws goes to the operator as it is
    const fail = async (why: string, r?: RoundResult, code = ErrorCode.UNAVAILABLE): Promise<never> => {
      failing = true;
      const down = hostsDown(this.c, r);
      const reachable = new Map([...all].filter(([h]) => !down.has(h)));
      const resume = this.c.jobs.withoutEndedRanks(jobId, await resumeAll(reachable));
      const resumed = this.c.jobs.resumedOrFailed(jobId, `${id} aborted`, resume, reachable, `${id} aborted (${why}), and ${describeRoundFailure('RESUME', resume)}`);
      const d = await discard(new Map([...mergeByHost(sourceHosts, targets)].filter(([h]) => !down.has(h))));
      // (a target down, or silent to the DISCARD, keeps its row: its copy is removed when it registers again)
      const answered = [...moves].filter(([, to]) => !down.has(to) && !d.silentHosts.includes(to)).map(([rank]) => rank);
      try {
        if (recorded) this.c.catalog.clearRankMoves(jobId, imageSet, answered);
      } catch (err) {
        // (the moves stay recorded, not stopped: the next coordinator removes what is left of them, finishInterrupted)
        if (!isCatalogUnwritable(err)) throw err;
      }
      const after = resume.ok && ![...all.keys()].some((h) => down.has(h))
        ? 'every rank resumed where it was'
        : resumed
          ? 'every rank resumed where it was but those on lost hosts, which resume when their agents are back'
          : `and ${describeRoundFailure('RESUME', resume)}: the job fails`;
      this.c.event('migration.abort', `job ${jobId}: ${id} aborted: ${why}; ${after}`, { jobId });
      throw new FerryError(r ? roundFailureCode(r) : code, `migration of job ${jobId} aborted: ${why}; ${after}`);
    };
    // A job that ends meanwhile (cancelled, or failed of another rank) is not moved on: up to the STOP the
    // migration is given up, its images removed. Its ranks are not woken: the ending has signalled them, and
    // they end flushed (a RESUME, as for a job that runs on, could only keep it from ending).
    const ending = (): string | undefined => {
      const why = this.notRunning(jobId);
      return why && `job ${jobId} ${why}`;
    };
    const giveUp = async (why: string): Promise<never> => {
      failing = true;
      const d = await discard(mergeByHost(sourceHosts, targets));
      // (as in fail: a target that did not answer keeps its row, and its copy goes when it registers again)
      if (recorded) this.c.catalog.clearRankMoves(jobId, imageSet, [...moves].filter(([, to]) => !d.silentHosts.includes(to)).map(([rank]) => rank));
      this.c.event('migration.abort', `job ${jobId}: ${id} given up: ${why}`, { jobId });
      throw new FerryError(ErrorCode.BAD_REQUEST, `migration of job ${jobId} given up: ${why}`);
    };
    this.c.event('migration.begin', `job ${jobId}: ${id}: ${[...moves].map(([r, to]) => `rank ${r} ${from.get(r)} -> ${to}`).join(', ')}`, { jobId });
    const t0 = this.c.now();
    let bytesTotal = 0;
    const say = (phase: string, bytesDone = 0) => progress?.({ jobId, phase, elapsedMs: this.c.now() - t0, bytesTotal, bytesDone });
    // Up to the STOP of the old copies, a catalog that refuses a write (its disk is full) fails the
    // migration like a failed step: every rank resumes where it was.
    let [t1, t2, t3, shipped] = [0, 0, 0, 0];
    const sources = new Map<number, ImageSourceInit>();
    const perTarget = (ranks: number[]) => ({ sources: ranks.map((r) => sources.get(r)!) });
    try {
      say('flushing');
      const flush = await runRound(this.c, { ...request, step: RoundStep.PREPARE }, all, cfg.flushTimeoutMs, undefined, { endWhenSilent: true, askAgainMs: FLUSH_RETRY_MS });
      if (!flush.ok) {
        // Ranks may be left flushing for peers that never got the PREPARE: the flush is finished first (flush-completion.ts).
        const why = describeRoundFailure('PREPARE', flush);
        const settled = await this.c.flushes.settle(jobId, imageSet, String(imageSet), id, flush);
        if (settled.state === 'complete' || settled.state === 'untouched' || settled.state === 'ended') return fail(why, flush);
        let after: string;
        if (settled.state === 'owed') {
          this.c.flushes.owe(jobId, imageSet, String(imageSet), id, settled.hosts);
          const many = settled.hosts.length > 1;
          after = `the job's ranks wait, flushed, until the agent${many ? 's' : ''} on ${settled.hosts.join(', ')} ${many ? 'are' : 'is'} back to finish the flush (within ${cfg.hostRejoinGraceMs} ms, or the job fails), then resume`;
        } else {
          this.c.jobs.failRunningJob(jobId, `${id} aborted (${why}), and ${settled.problem}`);
          after = `${settled.problem}: the job fails`;
        }
        this.c.event('migration.abort', `job ${jobId}: ${id} aborted: ${why}; ${after}`, { jobId });
        throw new FerryError(roundFailureCode(flush), `migration of job ${jobId} aborted: ${why}; ${after}`);
      }
      this.c.flushes.close(jobId, imageSet);
      let ended = ending();
      if (ended) return giveUp(ended);
      t1 = this.c.now();
      say('dumping');
      // Transient: neither the source's dump nor the target's copy is fsynced. Until the STOP the rank
      // is at its source; after it both copies are in the two hosts' page caches until the RESTORE
      // answered, and only losing both hosts then loses the rank (the job falls back to its last
      // committed epoch, as for any rank on a lost host). A RESTORE from a copy the agent did not
      // write or check itself (after an agent or host restart) verifies every file first.
      // Left stopped from the dump to the STOP (continued where it is should the migration fail): a rank
      // computing outside MPI (its flush did not stop it) would print and write on, and its restored copy
      // print and write that again.
      const dump = await runRound(this.c, { ...request, step: RoundStep.DUMP, transient: true, leave_stopped: true }, sourceHosts, cfg.dumpTimeoutMs, (ranks) => ({ dump_ranks: ranks }));
      if (!dump.ok) return fail(describeRoundFailure('DUMP', dump), dump);
      if ((ended = ending())) return giveUp(ended);
      sources.clear();
      const dumped = new Map<number, StoredImage>();
      for (const [host, reply] of dump.replies) {
        for (const img of reply.images) {
          const target = this.c.hosts.get(moves.get(img.rank)!);
          const stored: StoredImage = {
            rank: img.rank,
            epoch: imageSet,
            host,
            location: img.location,
            manifestSha256: img.manifest_sha256,
            imageStore: this.c.hosts.get(host)?.imageStore ?? '',
          };
          dumped.set(img.rank, stored);
          const choice = target ? chooseImageSource(stored, target, this.c.hosts.all()) : { source: undefined, why: `host ${moves.get(img.rank)} is unknown`, note: '' };
          if (!choice.source) return fail(`rank ${img.rank} cannot reach its image: ${choice.why}${choice.note ? ` (${choice.note})` : ''}`);
          sources.set(img.rank, choice.source);
          if (!choice.inPlace) bytesTotal += img.size_bytes;
        }
      }
      t2 = this.c.now();
      say('fetching');
      // The catalog keeps each move from here until its RESTORE answered: a coordinator that dies
      // before the STOP leaves the rank on its source and the target's copy to remove, one that dies
      // after it a move to finish (finishInterrupted).
      recorded = true;
      this.c.catalog.recordRankMoves(
        [...moves].map(([rank, to]) => ({ jobId, rank, imageSet, fromHost: from.get(rank)!, toHost: to, sourceJson: JSON.stringify(sources.get(rank)), stopped: false })),
      );

      const fetchRequest = { ...request, step: RoundStep.FETCH, transient: true };
      const targetAgents = new Map([...targets.keys()].map((host) => [host, this.c.hosts.get(host)?.agentInstance]));
      let fetch = await runRound(this.c, fetchRequest, targets, cfg.dumpTimeoutMs, perTarget);
      if (!fetch.ok) {
        // A rank whose source agent ended meanwhile is fetched again, from where its image is served now
        // (by that agent started again, or by a live host that shares its image store); one whose target's
        // agent was replaced meanwhile is fetched again by the new one.
        const sourceNow = (rank: number) => {
          const target = this.c.hosts.get(moves.get(rank)!);
          return target && chooseImageSource(dumped.get(rank)!, target, this.c.hosts.all()).source;
        };
        const again = await fetchAgainFromNewSources(this.c, fetchRequest, targets, fetch, sources, sourceNow, cfg.dumpTimeoutMs, targetAgents);
        fetch = again.result;
        for (const [rank, source] of again.newSources) sources.set(rank, source);
        if (again.newSources.size > 0) {
          // (where a coordinator restarted after the STOP has the target fetch from: finishInterrupted)
          this.c.catalog.recordRankMoves(
            [...again.newSources.keys()].map((rank) => ({ jobId, rank, imageSet, fromHost: from.get(rank)!, toHost: moves.get(rank)!, sourceJson: JSON.stringify(sources.get(rank)), stopped: false })),
          );
        }
        if (!fetch.ok) return fail(describeRoundFailure('FETCH', fetch), fetch);
      }
      if ((ended = ending())) return giveUp(ended);
      shipped = sum([...fetch.replies.values()].map((r) => r.bytes_fetched));
      say('fetched', shipped);
      t3 = this.c.now();
      say('restoring', shipped);
      // Past this point the old copies end: a failure restores them where they were.
      this.c.catalog.markRankMovesStopped(jobId, imageSet, [...moves.keys()]);
      for (const [rank, to] of moves) this.c.jobs.rankMoved(jobId, rank, to);
    } catch (err) {
      if (failing || !isCatalogUnwritable(err)) throw err;
      return await fail(errorMessage(catalogWriteError(err, this.c.catalog.file)), undefined, ErrorCode.STATE_UNWRITABLE);
    }
    await runRound(this.c, { ...request, step: RoundStep.STOP }, sourceHosts, cfg.resumeTimeoutMs, (ranks) => ({ dump_ranks: ranks }));
    // From here on the migration goes on whatever the catalog refuses (its disk full): the old copies are
    // gone. What it cannot record waits for room (recordRestored's orLater).
    const restore = await runRound(this.c, { ...request, step: RoundStep.RESTORE }, targets, cfg.dumpTimeoutMs, perTarget);
    this.recordRestored(jobId, restore, true);
    if (restore.ok) this.clearMovesOrLater(jobId, imageSet, [...moves.keys()]);
    else {
      const failed = new Map([...restore.failures.keys()].map((r) => [r, from.get(r)!]));
      for (const [rank, host] of failed) this.movedOrLater(jobId, rank, host);
      const back = await runRound(this.c, { ...request, step: RoundStep.RESTORE }, byHostOf(failed), cfg.dumpTimeoutMs, (ranks) => ({
        sources: ranks.map((r) => ({ ...sources.get(r)!, host: from.get(r)!, server: '' })),
      }));
      this.recordRestored(jobId, back, true);
      this.clearMovesOrLater(jobId, imageSet, [...moves.keys()]);
      if (!back.ok) {
        this.c.jobs.failRunningJob(jobId, `${id}: ${describeRoundFailure('RESTORE', restore)}, and restoring where they were failed too: ${describeRoundFailure('RESTORE', back)}`);
        this.lost(jobId, new Map([...failed].filter(([rank]) => back.failures.has(rank))));
        throw new FerryError(ErrorCode.UNAVAILABLE, `migration of job ${jobId} failed and the ranks could not be restored where they were: ${describeRoundFailure('RESTORE', back)}`);
      }
      const all = everyone();
      this.c.jobs.tables.expectTable(jobId);
      const resume = await resumeAll(all);
      const failure = `failed (${describeRoundFailure('RESTORE', restore)}); the ranks were restored where they were`;
      const but = `but ${describeRoundFailure('RESUME', resume)}`;
      if (!this.c.jobs.resumedOrFailed(jobId, `${id} failed`, resume, all, `${id} ${failure}, ${but}`)) {
        throw new FerryError(ErrorCode.UNAVAILABLE, `migration of job ${jobId} ${failure}, ${but}: the job fails`);
      }
      throw new FerryError(roundFailureCode(restore), `migration of job ${jobId} failed (${describeRoundFailure('RESTORE', restore)}); the ranks were restored where they were and the job goes on`);
    }
    const t4 = this.c.now();
    say('resuming', shipped);
    const resumed = everyone();
    this.c.jobs.tables.expectTable(jobId);
    const resume = await resumeAll(resumed);
    this.c.jobs.resumedOrFailed(jobId, id, resume, resumed, `after ${id}: ${describeRoundFailure('RESUME', resume)}`);
    const t5 = this.c.now();
    await discard(mergeByHost(sourceHosts, targets));
    this.c.event('migration.done', `job ${jobId}: ${id} done in ${t5 - t0} ms`, { jobId });
    // Whoever follows the job (its ferry run) learns why it paused, and where its ranks are now.
    const moved = [...moves].map(([rank, to]) => `${rank} ${from.get(rank)} -> ${to}`).join(', ');
    this.c.jobs.output.notify(jobId, `rank${moves.size > 1 ? 's' : ''} ${moved} migrated (paused ${t5 - t0} ms)`);
    return {
      moves: [...moves].map(([rank, to]) => ({ job_id: jobId, rank, from_host: from.get(rank)!, to_host: to })),
      flush_ms: t1 - t0,
      dump_ms: t2 - t1,
      fetch_ms: t3 - t2,
      restore_ms: t4 - t3,
      resume_ms: t5 - t4,
      downtime_ms: t5 - t0,
      bytes_shipped: shipped,
    };
  }

  /**
   * A migration cut short by a coordinator restart (the catalog kept its
   * moves); a host of one of them registered.
   * - Before the STOP of a rank's old copy, the rank lives on at its source
   *   (woken there with the other flushed ranks): the copy its target may
   *   have fetched, and the source's dump, go.
   * - After the STOP and before its RESTORE answered: the target fetched its
   *   image before the stop, the source keeps its own dump: the rank is
   *   restored on the target, else back on the source, then woken; the
   *   migration's images go. Only if neither restore works does the job fail,
   *   naming both reasons.
   * Queued behind whatever runs on the job.
   */
  finishInterrupted(jobId: string): void {
    this.c.operations.queue(jobId, () => 'an interrupted migration is being finished', () => this.runFinishInterrupted(jobId));
  }

  private async runFinishInterrupted(jobId: string): Promise<void> {
    const moves = this.c.catalog.rankMoves(jobId);
    const job = this.c.catalog.getJob(jobId);
    if (moves.length === 0) return;
    const cfg = this.c.config;
    const cleared: RankMoveRow[] = [];
    try {
      if (!job) {
        cleared.push(...moves);
        return;
      }
      for (const m of moves) {
        const request = { job_id: jobId, epoch: m.imageSet, image_set: String(m.imageSet), world_size: job.worldSize };
        const what = `migration ${m.imageSet} of rank ${m.rank} (${m.fromHost} -> ${m.toHost}), cut short by a coordinator restart`;
        const both = mergeByHost(new Map([[m.fromHost, [m.rank]]]), new Map([[m.toHost, [m.rank]]]));
        if (!m.stopped) {
          // The rank never left its source. Nothing to finish: remove the copies, from the hosts that answer.
          const d = await runRound(this.c, { ...request, step: RoundStep.DISCARD }, both, cfg.resumeTimeoutMs);
          if (d.silentHosts.includes(m.toHost)) continue; // its copy waits for it to register again
          cleared.push(m);
          this.c.event('migration.cleaned-late', `job ${jobId}: ${what} before rank ${m.rank} was stopped: it stays on ${m.fromHost}; the migration's images are removed`, { jobId });
          continue;
        }
        cleared.push(m);
        if (job.state !== 'running') continue;
        const restored = this.c.catalog.getRank(jobId, m.rank);
        if (restored?.state === 'starting') {
          const source = JSON.parse(m.sourceJson) as ImageSourceInit;
          const there = await runRound(this.c, { ...request, step: RoundStep.RESTORE }, new Map([[m.toHost, [m.rank]]]), cfg.dumpTimeoutMs, () => ({ sources: [source] }));
          this.recordRestored(jobId, there);
          let host = m.toHost;
          if (!there.ok) {
            this.c.jobs.rankMoved(jobId, m.rank, m.fromHost);
            const back = await runRound(this.c, { ...request, step: RoundStep.RESTORE }, new Map([[m.fromHost, [m.rank]]]), cfg.dumpTimeoutMs, () => ({
              sources: [{ ...source, host: m.fromHost, server: '' }],
            }));
            this.recordRestored(jobId, back);
            if (!back.ok) {
              this.c.jobs.failRunningJob(jobId, `${what}: ${describeRoundFailure('RESTORE', there)}, and restoring it on ${m.fromHost} failed too: ${describeRoundFailure('RESTORE', back)}`);
              this.lost(jobId, new Map([[m.rank, m.fromHost]]));
              return;
            }
            host = m.fromHost;
          }
          const at = new Map([[host, [m.rank]]]);
          const resume = await runResumeRound(this.c, request, at);
          if (!this.c.jobs.resumedOrFailed(jobId, what, resume, at, `${what}: restored on ${host}, but ${describeRoundFailure('RESUME', resume)}`)) return;
          this.c.event('migration.finished-late', `job ${jobId}: ${what}: rank ${m.rank} restored on ${host} and resumed`, { jobId, host });
        }
        await runRound(this.c, { ...request, step: RoundStep.DISCARD }, both, cfg.resumeTimeoutMs);
      }
    } finally {
      for (const m of cleared) this.c.catalog.clearRankMoves(jobId, m.imageSet, [m.rank]);
    }
  }

  /** Why job `jobId` does not run or is on its way out (JobService.notRunning); undefined while it runs. */
  private notRunning(jobId: string): string | undefined {
    const job = this.c.catalog.getJob(jobId);
    return job ? this.c.jobs.notRunning(job) : 'is gone from the catalog';
  }

  /** Ranks no copy of which runs anywhere any more (no restore worked): exited, so their failed job can end. */
  private lost(jobId: string, ranks: Map<number, string>): void {
    for (const [rank, host] of ranks) {
      this.c.jobs.onRankExited(host, { job_id: jobId, rank, pid: 0, exit_code: -1, signal: 'LOST', reason: 'it could not be restored anywhere' });
    }
  }

  /**
   * A drain's migration of one job: a checkpoint (a periodic one, say) or another
   * operation holding the job is waited for, up to DRAIN_BUSY_WAIT_MS, rather
   * than leaving the drain half done.
   */
  private async migrateWhenFree(jobId: string, plan: Map<number, string>, progress?: MoveProgressFn): Promise<MoveReplyInit> {
    const deadline = this.c.now() + DRAIN_BUSY_WAIT_MS;
    for (;;) {
      try {
        return await this.migrate(jobId, plan, progress);
      } catch (err) {
        if (!(err instanceof FerryError) || err.code !== ErrorCode.BUSY || this.c.now() >= deadline) throw err;
        trace(`drain: ${err.message}; trying again`);
        await new Promise((r) => setTimeout(r, DRAIN_BUSY_RETRY_MS));
      }
    }
  }

  /**
   * Moves every rank off a host: job by job, each rank to the live host with
   * the most free capacity that is not drained, among the job's own hosts when
   * it has some (ferry drain marks the host first: src/coordinator/host-draining.ts).
   */
  async drain(host: string, progress?: MoveProgressFn): Promise<MoveReplyInit> {
    if (!this.c.hosts.get(host)) throw new FerryError(ErrorCode.UNKNOWN_HOST, `host "${host}" is not known to the coordinator`);
    const byJob = new Map<string, number[]>();
    for (const r of this.c.catalog.ranksOnHost(host)) {
      if (r.state === 'exited') continue;
      byJob.set(r.jobId, [...(byJob.get(r.jobId) ?? []), r.rank]);
    }
    const moves: MoveReplyInit['moves'] = [];
    const notes: string[] = [];
    let downtime = 0;
    let shipped = 0;
    // A job on its way out (failing, cancelled, stopping) is not moved: its ranks leave the host as it ends.
    const leaving = (jobId: string, ranks: number[]): boolean => {
      const why = this.notRunning(jobId);
      if (!why || this.c.catalog.getJob(jobId)?.state === 'pending') return false;
      notes.push(`job ${jobId} ${why}: its rank${ranks.length > 1 ? 's' : ''} ${ranks.join(',')} on ${host} end${ranks.length > 1 ? '' : 's'} with it, not moved`);
      return true;
    };
    for (const [jobId, ranks] of byJob) {
      if (leaving(jobId, ranks)) continue;
      // Within the job's own hosts (its allocation), when it has some.
      const own = this.c.catalog.getJob(jobId)?.hosts?.filter((h) => h !== host) ?? null;
      const elsewhere = `\`ferry migrate ${jobId} --rank R --to HOST\` moves its ranks elsewhere`;
      if (own && own.length === 0) throw new FerryError(ErrorCode.NO_CAPACITY, `job ${jobId} runs on ${host} only (its hosts); ${elsewhere}`);
      const others = (own ? this.c.hosts.requireSomePlaceableOf(own, `job ${jobId}'s other hosts`, elsewhere) : this.c.hosts.placeable()).filter((h) => h.name !== host);
      if (others.length === 0) throw new FerryError(ErrorCode.NO_CAPACITY, `no other live host that is not drained to move the ranks of ${host} to`);
      const load = new Map(others.map((h) => [h.name, this.c.catalog.ranksOnHost(h.name).filter((r) => r.state !== 'exited').length - h.cpus]));
      const plan = new Map<number, string>();
      for (const rank of ranks) {
        const target = [...load].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))[0][0];
        plan.set(rank, target);
        load.set(target, load.get(target)! + 1);
      }
      let reply: MoveReplyInit;
      try {
        reply = await this.migrateWhenFree(jobId, plan, progress);
      } catch (err) {
        // It began to end while the drain waited for it or moved it: refused, or given up before its STOP.
        if (err instanceof FerryError && err.code === ErrorCode.BAD_REQUEST && leaving(jobId, ranks)) continue;
        throw err;
      }
      moves.push(...(reply.moves ?? []));
      downtime += reply.downtime_ms ?? 0;
      shipped += reply.bytes_shipped ?? 0;
    }
    return { moves, downtime_ms: downtime, bytes_shipped: shipped, notes };
  }
}

/**
 * Names for the followings of a restart's restored ranks (ImageSource.output_source): new for each restart, so
 * no source of the job's output before it has one of them (output-replay.ts tells the restored copies' output by it).
 */
function restoredOutputSource(): (rank: number) => string {
  const restart = `restored-${randomBytes(6).toString('hex')}`;
  return (rank) => `${restart}.${rank}`;
}
