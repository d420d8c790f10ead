// The checkpoint protocol's steps on this node, for real: flushes through the
// rank channel, CRIU dumps, SIGUSR2 to resume, image removal.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { mkdir, open, rm, rmdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import PQueue from 'p-queue';
import { ErrorCode, RoundStep, type CutBackFileInit, type ImageSource, type RankExitedInit, type RankProcessInit, type RoundRequest } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { checkSafeName } from '../common/names.js';
import { tracer } from '../common/trace.js';
import { type DumpResult, dumpRank } from '../criu/criu-dump.js';
import { readImages, warmImageDecoders } from '../criu/criu-images.js';
import type { CriuInstall } from '../criu/criu-install.js';
import { restoreRank } from '../criu/criu-restore.js';
import { assertRestorable } from '../criu/restore-precheck.js';
import { WarmDump } from '../criu/warm-dump.js';
import { cutBackWrittenFiles, putBackCutFiles, readAppendedFiles } from '../criu/written-files.js';
import { fetchImageDir, type FetchImageResult } from '../images/image-fetcher.js';
import type { TransferFetchOptions } from '../images/image-transfer-messages.js';
import type { FileDigest } from '../images/file-durability.js';
import { GrowingFileHasher } from '../images/growing-file-hasher.js';
import { imageLabel, rankImageDir } from '../images/image-paths.js';
import { readImageStoreId } from '../images/image-store-id.js';
import { verifyImageDir, verifyRecordedImage, writeManifest } from '../images/manifest.js';
import { passFaultGate } from './fault-gate.js';
import { findOrphanDumps, orphanDumpEnded } from './orphan-dumps.js';
import { logEnds } from './output-tailer.js';
import type { RankChannelServer } from './rank-channel.js';
import { ensureRankInitDir, isRankInitDir } from './rank-init-dir.js';
import { keepStdinWithImage, placeStdinForRestore } from './rank-stdin.js';
import type { RankSteps, StepOutcome } from './rank-steps.js';
import type { RankSupervisor } from './rank-supervisor.js';
import { treeHasStopped } from './runtime-processes.js';

const trace = tracer('steps');

/** How long one flush may take on this node before the agent gives up on it (the coordinator's own timeout is longer). */
export const AGENT_FLUSH_TIMEOUT_MS = 25_000;

/** How long a RESTORE waits for an earlier copy of its rank that still runs here to end (earlierCopyEnded). */
export const EARLIER_COPY_WAIT_MS = 5_000;

/**
 * How long a PREPARE waits for ranks re-adopted from a killed agent to connect to this one
 * (expectReattach). Their runtime tries again with a backoff of at most 2 s (src/runtime/agent.c).
 */
export const REATTACH_WAIT_MS = 5_000;

/**
 * CRIU dumps at once on one node. A dump is mostly the kernel copying pages
 * into the page cache, so a few at once keep both the cores and the disk
 * busy; more only add memory pressure. Dumps of ranks that share a working
 * directory would be staggered by CRIU's scratch directory guard
 * (criu-dump.ts); each rank's ferry-init works in a directory of its own
 * (rank-init-dir.ts), so they are not.
 */
export const DUMP_CONCURRENCY = 4;
/** FERRY_WARM_DUMPS=0: no dumps started ahead of time (warm-dump.ts); every dump starts CRIU when it is asked for. */
export const WARM_DUMPS_ENV = 'FERRY_WARM_DUMPS';
/** At most this many CRIUs wait for a dump on one agent (each holds a few MiB). */
export const WARM_DUMPS_MAX = 16;
/** Image fetches and restores at once on one node. */
export const TRANSFER_CONCURRENCY = 2;

export interface LocalRankStepsOptions {
  host: string;
  imagesDir: string;
  ranks: RankSupervisor;
  rankChannel?: RankChannelServer;
  /** The CRIU this node uses; null when it has none (dumps and restores then fail clearly). */
  criu?: CriuInstall | null;
  /** How long a RESTORE waits for an earlier copy of its rank to end (default EARLIER_COPY_WAIT_MS). */
  earlierCopyWaitMs?: number;
  /** How long a PREPARE waits for re-adopted ranks to connect again (default REATTACH_WAIT_MS). */
  reattachWaitMs?: number;
  /**
   * Fetches an image from another host (default fetchImageDir in this process;
   * the agent's runs in its image transfer process, image-transfer-worker.ts).
   */
  fetchImage?: (options: TransferFetchOptions) => Promise<FetchImageResult>;
}

/**
 * Where a restart's FETCH keeps the bytes it cuts from one rank's files
 * (written-files.ts) until the restart resumes (they go) or fails (PUT_BACK):
 * IMAGES/.cut-back/HOST/JOB/SET/rank-R (HOST: an images directory may be
 * shared); without `set`, the job's directory.
 */
export function cutKeptDir(imagesDir: string, host: string, jobId: string, set?: number, rank?: number): string {
  const job = join(imagesDir, '.cut-back', host, jobId);
  if (set === undefined) return job;
  return rank === undefined ? join(job, String(set)) : join(job, String(set), `rank-${rank}`);
}

/**
 * Before a rank rolled back to an epoch starts again: a line in each of its
 * log files on this host saying that what follows repeats what it printed
 * after the epoch. The host's logs keep both copies (its followers see the
 * output once, output-replay.ts); the line is written before the agent
 * follows the files again, so it is not in the job's output.
 */
async function noteRollbackInLogs(logs: { out: string; err: string }, what: string): Promise<void> {
  const line = `[ferry ${new Date().toISOString()}] ${what}: what it prints from here repeats its output after that checkpoint\n`;
  for (const path of [logs.out, logs.err]) {
    try {
      const fh = await open(path, 'a+');
      try {
        const { size } = await fh.stat();
        const last = Buffer.alloc(1);
        if (size > 0) await fh.read(last, 0, 1, size - 1);
        await fh.appendFile(size > 0 && last[0] !== 0x0a ? `\n${line}` : line);
      } finally {
        await fh.close();
      }
    } catch (e) {
      trace(`cannot note the rollback in ${path}: ${errorMessage(e)}`); // a log line is not worth a failed restart
    }
  }
}

/** The number of a step's image set (an epoch, or a migration's reserved number). */
function imageSetNumber(req: RoundRequest): number {
  const n = Number(req.image_set || req.epoch);
  if (!Number.isSafeInteger(n) || n <= 0) throw new FerryError(ErrorCode.BAD_REQUEST, `image set "${req.image_set}" is not a positive number`);
  return n;
}

/** A restore of a rank here, from image set `set`: asked again, the same one answers. */
interface RestoreEntry {
  set: number;
  restored: Promise<RankProcessInit>;
  done: boolean;
  /** Where the rank's log files ended before it ran again (RESTORE's StepOutcome.logStarts). */
  logStart?: { out: number; err: number };
}

export class LocalRankSteps implements RankSteps {
  /** Ranks that are flushed and wait for SIGUSR2 (job/rank -> the epoch or image set they were flushed for). */
  private readonly flushed = new Map<string, number>();
  /** Ranks asked to flush that have not finished (job/rank -> epoch). */
  private readonly flushing = new Map<string, number>();
  /** DUMPs, FETCHes and RESTOREs under way, by image set folder: a DISCARD of the set waits for them rather
   * than race their writes or CRIU's reads (the coordinator gave up on the step: it timed out, or the
   * coordinator restarted). */
  private readonly inUse = new Map<string, Promise<void>>();
  /**
   * Per job: its dumps not ended yet, this agent's DUMPs and CRIU dumps a killed agent before it left running.
   * A RESUME waits for them: a dump leaves its ranks stopped when it ends (leave_stopped).
   */
  private readonly dumpsInFlight = new Map<string, Promise<void>>();
  /**
   * Per job: the restarts' FETCHes that cut its files back and the PUT_BACKs that append the cut bytes
   * again, one after the other in the order they came (inCutTurn). A PUT_BACK for a FETCH the coordinator
   * gave up on waits for that FETCH to end, and a later restart's FETCH waits for that PUT_BACK, so a
   * PUT_BACK never puts back what a later FETCH cut.
   */
  private readonly cutTurns = new Map<string, Promise<void>>();
  /** PREPAREs sent again (flush-completion.ts) waiting for a rank's flush under way to complete (job/rank). */
  private readonly flushWaiters = new Map<string, (() => void)[]>();
  /** Ranks told to resume while their flush was still under way: woken as soon as it completes. */
  private readonly resumeWhenFlushed = new Set<string>();
  /**
   * The latest RESTORE of each rank here (job/rank), with the image set it restores. A RESTORE of
   * the same rank from the same set again (a coordinator that restarted in the middle of a
   * migration sends it again) gets that one while it is under way or its rank still runs: two
   * restores would make two copies. Once that rank has ended, the same set restores anew (a
   * second restart from one epoch).
   */
  private readonly restores = new Map<string, RestoreEntry>();
  /**
   * Image directories (with their manifest's sha256) that this agent dumped, fetched or verified
   * itself. A RESTORE from any other checks every file first: a migration's copies are not
   * fsynced, so after a host's crash the files may be there but torn.
   */
  private readonly verified = new Map<string, string>();
  /**
   * Image directories CRIU has dumped into that have no manifest yet (a DUMP
   * with store_separately waits for its STORE), with the digests taken while
   * CRIU wrote, if any.
   */
  private readonly unstored = new Map<string, Map<string, FileDigest> | undefined>();

  /**
   * Ranks re-adopted running from this host's previous agent (which died) that have not connected to this
   * one yet, with what waits for them: their runtime connects again on its own, within seconds.
   */
  private readonly reattaching = new Map<string, (() => void)[]>();

  private readonly dumpQueue = new PQueue({ concurrency: DUMP_CONCURRENCY });
  /** Per job/rank, its next dump, started ahead of time: once the rank (re)connected, until it is dumped or ends. */
  private readonly warmDumps = new Map<string, Promise<WarmDump | undefined>>();
  private warmSeq = 0;
  private closed = false;
  private readonly transferQueue = new PQueue({ concurrency: TRANSFER_CONCURRENCY });

  constructor(private readonly o: LocalRankStepsOptions) {
    // What a previous agent's warm dumps left (their CRIUs stop when its end closes their pipes).
    rmSync(this.warmDumpsRoot(), { recursive: true, force: true });
    // A rank that (re)connects runs on until its next dump: that dump's CRIU can start now. One that ends has none.
    const warm = (info: { jobId: string; rank: number }) => {
      this.reattached(info.jobId, info.rank);
      this.warmUp(info.jobId, info.rank);
    };
    o.rankChannel?.on('hello', warm);
    o.rankChannel?.on('attach', warm);
    // A flushed rank connects only once woken, and a RESUME takes it out of `flushed` before it wakes it. One
    // in `flushed` that connects (attaches, or says hello) runs: taken back flushed from a stale rank table
    // entry (an agent killed between a rank's refusal, or its resume, and the record of it), or woken at the end
    // of its flush by a RESUME that came while it flushed. A PREPARE must ask it, not answer for it while its
    // peers wait for its end-of-channel markers. (A rank past MPI_Finalize attaches only to report its end.)
    const running = (info: { jobId: string; rank: number; finalized?: boolean }) => {
      const key = `${info.jobId}/${info.rank}`;
      if (info.finalized || !this.flushed.has(key)) return;
      trace(`${key}, flushed for ${this.flushed.get(key)} as far as this agent knew, connected running: it is not flushed`);
      this.flushed.delete(key);
      o.ranks.recordFlush(info.jobId, info.rank, 0);
    };
    o.rankChannel?.on('attach', running);
    o.rankChannel?.on('hello', running);
    o.ranks.on('exit', (e: RankExitedInit) => {
      this.reattached(e.job_id ?? '', e.rank ?? 0);
      void this.coolDown(e.job_id ?? '', e.rank ?? 0);
    });
    // Dumps a killed predecessor left running: a DISCARD of their set waits for them like for ours.
    for (const d of findOrphanDumps(o.imagesDir)) {
      trace(`CRIU pid ${d.pid} still dumps into ${d.setDir} (its agent is gone)`);
      const ended = orphanDumpEnded(d);
      this.trackUse(d.setDir, ended);
      this.trackDump(basename(dirname(d.setDir)), ended);
    }
    // Not in the first restore here: the CRIU schemas its readImages needs are loaded now.
    setImmediate(() => {
      try {
        warmImageDecoders();
      } catch (err) {
        trace(`cannot load the CRIU image schemas: ${errorMessage(err)}`); // the restore that needs them says so
      }
    });
    // Marked as the request goes out to the rank (a rank the channel refuses, not connected, is not flushing).
    // The rank table has it already (prepare): should this agent die before the rank answers, the next one
    // takes the rank back flushed (Agent.readopt), as it will be, with no agent to tell.
    o.rankChannel?.on('flushing', (jobId: string, rank: number, epoch: number) => {
      this.flushing.set(`${jobId}/${rank}`, epoch);
    });
    // A rank that refused (still waiting for its endpoint table, say) is not flushing: a RESUME meanwhile must
    // not mark it to be woken at the end of its next flush, which would wake it in the middle of that operation.
    // Nor may the rank table say it is: an agent killed now left the next one a running rank taken back as
    // flushed, never asked to flush, whose peers then waited for its end-of-channel markers.
    o.rankChannel?.on('flushRefused', (jobId: string, rank: number) => {
      this.flushing.delete(`${jobId}/${rank}`);
      this.resumeWhenFlushed.delete(`${jobId}/${rank}`);
      o.ranks.recordFlush(jobId, rank, 0);
    });
    o.rankChannel?.on('flushed', (report) => {
      const key = `${report.jobId}/${report.rank}`;
      this.flushed.set(key, this.flushing.get(key) ?? report.epoch);
      this.flushing.delete(key);
      for (const done of this.flushWaiters.get(key) ?? []) done();
      this.flushWaiters.delete(key);
      if (!this.resumeWhenFlushed.delete(key)) return;
      this.flushed.delete(key); // (as resume() does before it wakes a rank)
      this.wake(report.jobId, [report.rank]);
    });
  }

  async run(req: RoundRequest): Promise<StepOutcome> {
    switch (req.step) {
      case RoundStep.PREPARE:
        return this.prepare(req);
      case RoundStep.RESUME:
        return this.resume(req);
      case RoundStep.DISCARD:
        return this.discard(req);
      case RoundStep.STOP:
        return this.stop(req);
      case RoundStep.DUMP: {
        const outcome = this.dump(req);
        this.trackUse(this.imageSetDir(req), outcome.catch(() => {}));
        this.trackDump(req.job_id, outcome.catch(() => {}));
        return outcome;
      }
      case RoundStep.FETCH: {
        const outcome = req.roll_back_files ? this.inCutTurn(req.job_id, () => this.fetch(req)) : this.fetch(req);
        this.trackUse(this.imageSetDir(req), outcome.catch(() => {}));
        return outcome;
      }
      case RoundStep.RESTORE: {
        const outcome = this.restore(req);
        this.trackUse(this.imageSetDir(req), outcome.catch(() => {}));
        return outcome;
      }
      case RoundStep.STORE: {
        const outcome = (async () => {
          await passFaultGate('store', this.o.host);
          return this.storeRanks(req, req.dump_ranks);
        })();
        this.trackUse(this.imageSetDir(req), outcome.catch(() => {}));
        return outcome;
      }
      case RoundStep.PUT_BACK:
        return this.inCutTurn(req.job_id, () => this.putBack(req));
      default:
        throw new FerryError(ErrorCode.BAD_REQUEST, `unknown round step ${req.step}`);
    }
  }

  /** Runs `step` once the job's FETCHes and PUT_BACKs that came before it have ended (cutTurns). */
  private inCutTurn<T>(jobId: string, step: () => Promise<T>): Promise<T> {
    const before = this.cutTurns.get(jobId);
    const mine = (before ?? Promise.resolve()).then(step);
    const over = mine.then(
      () => undefined,
      () => undefined,
    );
    this.cutTurns.set(jobId, over);
    void over.then(() => this.cutTurns.get(jobId) === over && this.cutTurns.delete(jobId));
    return mine;
  }

  /** Records a step using image set folder `dir` until `ended`, after the others there. */
  private trackUse(dir: string, ended: Promise<unknown>): void {
    untilAllEnded(this.inUse, dir, ended);
  }

  /** Records a dump of the job's ranks until `ended` (dumpsInFlight). */
  private trackDump(jobId: string, ended: Promise<unknown>): void {
    untilAllEnded(this.dumpsInFlight, jobId, ended);
  }

  /** IMAGES/JOB/SET: the names come from the wire, so they are checked before they touch a path. */
  private imageSetDir(req: RoundRequest): string {
    return join(this.o.imagesDir, checkSafeName('job id', req.job_id), String(imageSetNumber(req)));
  }

  private criu(): CriuInstall {
    if (!this.o.criu) throw new FerryError(ErrorCode.UNAVAILABLE, `no working CRIU on host ${this.o.host} (see ferry doctor there)`);
    return this.o.criu;
  }

  /**
   * IMAGES/.warm-dumps/HOST (an images directory may be shared): the images folders of warm dumps, one
   * level deeper than a rank's own (JOB/rank-R-PID-N), so that orphan-dumps.ts does not take them for a set.
   */
  private warmDumpsRoot(): string {
    return join(this.o.imagesDir, '.warm-dumps', checkSafeName('host', this.o.host));
  }

  /** Starts the next dump of a running rank ahead of time (warm-dump.ts), unless one waits already. */
  private warmUp(jobId: string, rank: number): void {
    if (this.closed || process.env[WARM_DUMPS_ENV] === '0' || !this.o.criu) return;
    const key = `${jobId}/${rank}`;
    const initPid = this.o.ranks.initPidOfRank(jobId, rank);
    if (!initPid || this.warmDumps.size >= WARM_DUMPS_MAX) return;
    const earlier = this.warmDumps.get(key);
    const criu = this.o.criu;
    const stagingDir = join(this.warmDumpsRoot(), checkSafeName('job id', jobId), `rank-${rank}-${initPid}-${++this.warmSeq}`);
    const next = (async () => {
      const old = await earlier;
      if (old?.waiting && old.initPid === initPid) return old;
      void old?.cancel();
      return WarmDump.start({ criu, initPid, stagingDir, cwdIsPrivate: isRankInitDir });
    })().catch((e: unknown) => {
      trace(`no warm dump of ${key}: ${errorMessage(e)}`);
      return undefined;
    });
    this.warmDumps.set(key, next);
    // (none to be had: the rank does not count against WARM_DUMPS_MAX)
    void next.then((w) => {
      if (!w && this.warmDumps.get(key) === next) this.warmDumps.delete(key);
    });
  }

  /** Calls off the warm dump of a rank that ended (or is about to). */
  private async coolDown(jobId: string, rank: number): Promise<void> {
    const key = `${jobId}/${rank}`;
    const warm = this.warmDumps.get(key);
    if (!warm) return;
    this.warmDumps.delete(key);
    await (await warm)?.cancel();
  }

  /** The rank's warm dump, if one waits for the tree at `initPid` (the rank's process now). */
  private async takeWarm(jobId: string, rank: number, initPid: number): Promise<WarmDump | undefined> {
    const key = `${jobId}/${rank}`;
    const pending = this.warmDumps.get(key);
    if (!pending) return undefined;
    this.warmDumps.delete(key);
    const warm = await pending;
    if (warm?.waiting && warm.initPid === initPid) return warm;
    void warm?.cancel();
    return undefined;
  }

  close(): void {
    this.closed = true;
    for (const [key, warm] of this.warmDumps) {
      this.warmDumps.delete(key);
      void warm.then((w) => w?.cancel());
    }
  }

  /** Runs `work` for each rank through `queue`; a rank's failure is its own. */
  private async perRank<T>(queue: PQueue, ranks: number[], work: (rank: number) => Promise<T>): Promise<{ done: T[]; failed: Map<number, FerryError> }> {
    const done: T[] = [];
    const failed = new Map<number, FerryError>();
    await Promise.all(
      ranks.map((rank) =>
        queue.add(async () => {
          try {
            done.push(await work(rank));
          } catch (err) {
            failed.set(rank, err instanceof FerryError ? err : new FerryError(ErrorCode.INTERNAL, errorMessage(err)));
          }
        }),
      ),
    );
    return { done, failed };
  }

  /**
   * DUMP: each flushed rank's tree, left running, several at once. Then each
   * rank's manifest (store): only once every dump here is over, as writeback
   * to disk slows the page writing of dumps still running by a factor of 2-4
   * here (see docs/checkpoint-protocol.md, Performance). With
   * store_separately the step ends with the dumps (a checkpoint resumes its
   * ranks before STORE); otherwise the page images are hashed while CRIU
   * writes them, as the ranks wait frozen for their manifests anyway.
   */
  private async dump(req: RoundRequest): Promise<StepOutcome> {
    const criu = this.criu();
    await passFaultGate('dump', this.o.host);
    const epoch = imageSetNumber(req);
    const hashWhileDumping = !req.store_separately;
    const leaveStopped = req.leave_stopped;
    // A rank an earlier dump left stopped (the DUMP asked again): CRIU would record it stopped, and restore it
    // so. It runs on first, flushed as it is.
    const again = new Set(this.o.ranks.continueStoppedByDump?.(req.job_id, req.dump_ranks) ?? []);
    // Marked in the rank table, on disk, before CRIU runs (one write for all): an agent killed during the dump
    // leaves them stopped for the next one to continue at RESUME; so does a dump that stopped a tree and then
    // failed (its listing, say). SIGCONT to a tree that runs does nothing.
    if (leaveStopped) this.o.ranks.markStoppedByDump?.(req.job_id, req.dump_ranks);
    const dumps = await this.perRank(this.dumpQueue, req.dump_ranks, async (rank) => {
      const initPid = this.o.ranks.initPidOfRank(req.job_id, rank);
      if (!initPid) throw new FerryError(ErrorCode.UNKNOWN_RANK, `rank ${rank} of ${req.job_id} has no process on ${this.o.host}`);
      if (again.has(rank) && !(await waitUntilRunning(initPid))) {
        throw new FerryError(ErrorCode.INTERNAL, `rank ${rank} of ${req.job_id} on ${this.o.host}, left stopped by its last dump, was still stopped 2 s after SIGCONT: not dumped (its image would restore it stopped)`);
      }
      const dir = rankImageDir(this.o.imagesDir, req.job_id, epoch, rank);
      const warm = await this.takeWarm(req.job_id, rank, initPid);
      // Synchronous while the job is paused. Through the libuv pool, removing a folder that was not there
      // and making it took 12-39 ms in a few dumps of 3 of 4 traced benchmark runs (a stat of / queued as
      // long), where these calls took at most 1.2 ms in 65 dumps.
      if (existsSync(dir)) await rm(dir, { recursive: true, force: true }); // an earlier attempt's
      this.unstored.delete(dir);
      // A failed dump's log is kept with the rank's output logs: an aborted epoch's images go.
      const keepFailedLogAs = join(dirname(this.o.ranks.logPaths(req.job_id, rank).out), `rank-${rank}.dump-${epoch}.log`);
      let hasher: GrowingFileHasher | undefined;
      try {
        let dumped: DumpResult | undefined;
        if (warm) {
          mkdirSync(dirname(dir), { recursive: true });
          // (the hashing starts once CRIU's folder is in place, before CRIU writes a page)
          dumped = await warm.go(
            dir,
            keepFailedLogAs,
            () => {
              if (hashWhileDumping) hasher = new GrowingFileHasher(dir).start();
            },
            leaveStopped,
          );
          if (!dumped) {
            await hasher?.abort();
            hasher = undefined;
          }
        }
        if (!dumped) {
          mkdirSync(dir, { recursive: true });
          if (hashWhileDumping) hasher = new GrowingFileHasher(dir).start();
          await dumpRank({ criu, initPid, imagesDir: dir, leaveRunning: true, leaveStopped, cwdIsPrivate: isRankInitDir, keepFailedLogAs });
        }
      } catch (e) {
        await hasher?.abort();
        throw e;
      }
      const t0 = performance.now();
      const known = await hasher?.finish().catch((e: unknown) => {
        trace(`rank ${rank}: hashing while CRIU wrote failed (${errorMessage(e)}); the manifest hashes every file`);
        return undefined;
      });
      if (hasher) trace(`rank ${rank}: hashing caught up ${(performance.now() - t0).toFixed(1)} ms after CRIU ended`);
      // (after the hashing alongside CRIU, which must not see it half copied; the manifest hashes it)
      await keepStdinWithImage(this.o.ranks.initDirOfRank(req.job_id, rank), dir);
      this.unstored.set(dir, known);
      return rank;
    });
    if (req.store_separately) {
      const images = dumps.done.map((rank) => ({ rank, location: rankImageDir(this.o.imagesDir, req.job_id, epoch, rank) }));
      return { failed: dumps.failed, images };
    }
    const { failed, images } = await this.storeRanks(req, dumps.done);
    for (const [rank, e] of dumps.failed) failed.set(rank, e);
    return { failed, images };
  }

  /**
   * STORE (or the end of a DUMP): each dumped rank's manifest, the sha256 of
   * every file (taken from the hashing alongside CRIU where there was one),
   * each file fsynced unless the step is transient. An agent restarted since
   * the DUMP hashes every file anew.
   */
  private async storeRanks(req: RoundRequest, ranks: number[]): Promise<StepOutcome> {
    const criu = this.criu();
    const epoch = imageSetNumber(req);
    const { done, failed } = await this.perRank(this.dumpQueue, ranks, async (rank) => {
      const dir = rankImageDir(this.o.imagesDir, req.job_id, epoch, rank);
      if (!existsSync(dir)) throw new FerryError(ErrorCode.UNKNOWN_RANK, `no dump of rank ${rank} of ${req.job_id} for image set ${epoch} on ${this.o.host} (${dir})`);
      const manifest = await writeManifest(dir, { jobId: req.job_id, epoch, rank, host: this.o.host, criuVersion: criu.version }, { known: this.unstored.get(dir), durable: !req.transient });
      this.unstored.delete(dir);
      this.verified.set(dir, manifest.manifestSha256);
      const appended = await readAppendedFiles(dir);
      return {
        rank,
        location: dir,
        appended_files: appended.map((f) => ({ path: f.path, size_bytes: f.sizeBytes })),
        size_bytes: manifest.totalBytes,
        manifest_sha256: manifest.manifestSha256,
        files: manifest.files.length,
      };
    });
    return { failed, images: done };
  }

  /**
   * FETCH: each rank's image, every file verified (bringImage); for a restart
   * (roll_back_files), then the files its rank wrote after the epoch cut back.
   */
  private async fetch(req: RoundRequest): Promise<StepOutcome> {
    await passFaultGate('fetch', this.o.host);
    let bytes = 0;
    const filesCutBack: CutBackFileInit[] = [];
    const appendedSizes = new Map((req.appended_sizes ?? []).map((f) => [f.path, Number(f.size_bytes)]));
    const sharedFromOthers = req.sources.some((s) => !s.server && s.host !== this.o.host && s.image_store);
    const ownStore = sharedFromOthers ? await readImageStoreId(this.o.imagesDir) : undefined;
    const { failed } = await this.perRank(
      this.transferQueue,
      req.sources.map((s) => s.rank),
      async (rank) => {
        const src = req.sources.find((s) => s.rank === rank)!;
        const into = rankImageDir(this.o.imagesDir, req.job_id, src.epoch, rank);
        const brought = await this.bringImage(req, src, into, ownStore);
        bytes += brought; // (not `bytes += await ...`: that reads `bytes` before the other ranks' fetches add theirs)
        // A restart rolls the ranks back: the files they wrote after the epoch go back to their size then
        // (written-files.ts). Here, in FETCH, every target has cut before any restores a rank that may
        // write to a file another target cuts.
        if (!req.roll_back_files) return;
        for (const f of await cutBackWrittenFiles(await readImages(into), appendedSizes, this.cutKeptDir(req, rank))) {
          trace(`${req.job_id} rank ${rank}: ${f.path} cut back from ${f.fromBytes} to ${f.toBytes} bytes`);
          filesCutBack.push({ rank, path: f.path, from_bytes: f.fromBytes, to_bytes: f.toBytes });
        }
      },
    );
    return { failed, bytesFetched: bytes, filesCutBack };
  }

  /**
   * One rank's image into `into`, every file verified; the bytes shipped. An
   * image with no server is read in place: this host's own copy, or one another
   * host wrote into the image store this host's images directory is (a shared
   * directory; checked against the store's id). Otherwise it comes from the
   * named host's server.
   */
  private async bringImage(req: RoundRequest, src: ImageSource, into: string, ownStore: string | undefined): Promise<number> {
    const rank = src.rank;
    if (src.host === this.o.host || !src.server) {
      if (src.host !== this.o.host && src.image_store && src.image_store !== ownStore) {
        throw new FerryError(
          ErrorCode.IMAGE_MISSING,
          `${imageLabel({ epoch: src.epoch, rank })}: written by host ${src.host} into image store ${src.image_store}, ` +
            `but the images directory of host ${this.o.host} (${this.o.imagesDir}) is store ${ownStore ?? '(none)'}`,
        );
      }
      await verifyRecordedImage(into, src.manifest_sha256); // already here
      this.verified.set(into, src.manifest_sha256);
      return 0;
    }
    // A migration's or restart's copy (transient) is restored at once and discarded after: no fsync.
    const r = await (this.o.fetchImage ?? fetchImageDir)({
      from: src.server,
      jobId: req.job_id,
      epoch: src.epoch,
      rank,
      into,
      manifestSha256: src.manifest_sha256,
      durable: !req.transient,
    });
    if (r.manifest.manifestSha256 !== src.manifest_sha256) {
      throw new FerryError(ErrorCode.IMAGE_CORRUPT, `epoch ${src.epoch} rank ${rank}: the manifest fetched from ${src.host} is not the one the coordinator recorded`);
    }
    // Found complete here (a directory shared with the server, or an earlier fetch): its files were not read yet.
    if (r.alreadyComplete) await verifyImageDir(into, r.manifest);
    this.verified.set(into, src.manifest_sha256);
    return r.bytesReceived;
  }

  /**
   * DISCARD: the images of the named ranks in an image set (an aborted epoch,
   * a finished migration, or a committed epoch the job's retention deleted),
   * then the set's folder once empty. Only the ranks named: in an images
   * directory shared with other hosts, the other ranks' folders may still be in use.
   */
  private async discard(req: RoundRequest): Promise<StepOutcome> {
    const set = imageSetNumber(req);
    await this.inUse.get(this.imageSetDir(req));
    for (const rank of req.ranks) {
      const dir = rankImageDir(this.o.imagesDir, req.job_id, set, rank);
      await rm(dir, { recursive: true, force: true });
      this.verified.delete(dir);
      this.unstored.delete(dir);
    }
    // The set's folder, then the job's, once empty (a dump making a new set in it meanwhile keeps it).
    for (const dir of [this.imageSetDir(req), dirname(this.imageSetDir(req))]) {
      await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT' && err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      });
    }
    return { failed: new Map() };
  }

  /**
   * STOP: kills the named ranks' copies here. A RESTORE of one of them still running here (the
   * coordinator gave up waiting for its answer: a failed restart stops what its targets restored) is
   * waited for, and what it restored is killed too: it would run on, flushed, for a job that is stopped
   * or runs elsewhere, on a host whose agent will not register again to be told. The copies running
   * now go first: a restore may wait for one of them to end (earlierCopyEnded).
   */
  private async stop(req: RoundRequest): Promise<StepOutcome> {
    const kill = () => {
      for (const r of req.dump_ranks) {
        this.flushed.delete(`${req.job_id}/${r}`);
        this.flushing.delete(`${req.job_id}/${r}`);
      }
      this.o.ranks.keepInitDirs(req.job_id, req.dump_ranks);
      this.o.ranks.signalRanks(req.job_id, req.dump_ranks, 'SIGKILL');
    };
    kill();
    const restoring = req.dump_ranks.map((r) => this.restores.get(`${req.job_id}/${r}`)).filter((e) => e !== undefined && !e.done);
    if (restoring.length > 0) {
      trace(`STOP of ${req.job_id} ranks ${req.dump_ranks.join(',')}: waiting for ${restoring.length} restore(s) under way here`);
      await Promise.all(restoring.map((e) => e!.restored.catch(() => {})));
      kill();
    }
    return { failed: new Map() };
  }

  /** RESTORE: each fetched rank into a new PID namespace here; it waits, flushed, for RESUME. */
  private async restore(req: RoundRequest): Promise<StepOutcome> {
    const criu = this.criu();
    const { done, failed } = await this.perRank(this.transferQueue, req.sources.map((s) => s.rank), (rank) => {
      const src = req.sources.find((s) => s.rank === rank)!;
      const key = `${req.job_id}/${rank}`;
      const earlier = this.restores.get(key);
      if (earlier && earlier.set === Number(src.epoch) && (!earlier.done || this.o.ranks.has(req.job_id, rank))) return earlier.restored;
      const entry = { set: Number(src.epoch), done: false } as RestoreEntry;
      const restored = (async () => {
        await passFaultGate('restore', this.o.host);
        await this.earlierCopyEnded(req.job_id, rank);
        const dir = rankImageDir(this.o.imagesDir, req.job_id, src.epoch, rank);
        if (this.verified.get(dir) !== src.manifest_sha256) {
          await verifyRecordedImage(dir, src.manifest_sha256);
          this.verified.set(dir, src.manifest_sha256);
        }
        const summary = await readImages(dir);
        // ferry-init's private directory is Ferry's to make; anything else missing is the operator's to fix.
        for (const f of summary.files) if (f.uses.includes('cwd')) ensureRankInitDir(f.path);
        await placeStdinForRestore(summary, dir);
        await assertRestorable(summary, this.o.host);
        const logs = this.o.ranks.logPaths(req.job_id, rank);
        await mkdir(dirname(logs.out), { recursive: true });
        if (req.roll_back_files) await noteRollbackInLogs(logs, `rank ${rank} of job ${req.job_id} restored on ${this.o.host} from epoch ${src.epoch}`);
        entry.logStart = logEnds(logs);
        // Named after the host too: an images directory may be shared by several hosts.
        const workDir = join(this.o.imagesDir, '.restore', `${this.o.host}-${req.job_id}-${src.epoch}-${rank}`);
        await rm(workDir, { recursive: true, force: true });
        await mkdir(workDir, { recursive: true });
        const out = await restoreRank({ criu, imagesDir: dir, logOut: logs.out, logErr: logs.err, summary, workDir });
        let p: RankProcessInit;
        try {
          p = this.o.ranks.adopt({ jobId: req.job_id, rank, worldSize: req.world_size, argv: [], cwd: '/', env: {} }, out.child);
        } catch (err) {
          // Restored but not supervised (a copy of the rank runs here after all): it must not run on
          // unseen. Killing ferry-restore takes the restored tree with it (its PID namespace).
          out.child.kill('SIGKILL');
          throw err;
        }
        // CRIU is done with it (--restore-detached). A failed restore keeps its log there for the operator.
        await rm(workDir, { recursive: true, force: true }).catch((err) => trace(`cannot remove ${workDir}: ${errorMessage(err)}`));
        // Restored in its flushed wait: RESUME wakes it (should this agent die first, the next one reports it flushed).
        this.flushed.set(`${req.job_id}/${rank}`, req.epoch);
        this.o.ranks.recordFlush(req.job_id, rank, src.epoch);
        return p;
      })();
      entry.restored = restored;
      this.restores.set(key, entry);
      restored.then(
        () => (entry.done = true),
        () => this.restores.get(key) === entry && this.restores.delete(key), // a failed restore may be asked again
      );
      return restored;
    });
    const logStarts = new Map<number, { out: number; err: number }>();
    for (const p of done) {
      const start = this.restores.get(`${req.job_id}/${p.rank ?? 0}`)?.logStart;
      if (start) logStarts.set(p.rank ?? 0, start);
    }
    return { failed, started: done, logStarts };
  }

  /**
   * A copy of the rank that still runs here before its restore: a stale copy the coordinator is killing
   * (its host came back while the job failed of its loss, and the restart put the rank here again).
   * CRIU would restore a second copy that the supervisor cannot take over, so the restore waits for
   * that copy's end, earlierCopyWaitMs at most, and else fails for this rank, saying why.
   */
  private async earlierCopyEnded(jobId: string, rank: number): Promise<void> {
    const ranks = this.o.ranks;
    if (!ranks.has(jobId, rank)) return;
    trace(`restore of ${jobId}/${rank}: an earlier copy still runs here; waiting for its end`);
    const waitMs = this.o.earlierCopyWaitMs ?? EARLIER_COPY_WAIT_MS;
    await new Promise<void>((resolve, reject) => {
      const onExit = (): void => void (ranks.has(jobId, rank) || finish());
      const timer = setTimeout(
        () => finish(new FerryError(ErrorCode.BUSY, `an earlier copy of rank ${rank} of job ${jobId} still runs on host ${this.o.host} (not ended ${waitMs} ms after the restore began)`)),
        waitMs,
      );
      const finish = (err?: FerryError): void => {
        clearTimeout(timer);
        ranks.off('exit', onExit);
        if (err) reject(err);
        else resolve();
      };
      ranks.on('exit', onExit);
    });
  }

  /**
   * PREPARE: the ranks flush. The same PREPARE again (the coordinator finishes
   * a flush that did not reach every rank, flush-completion.ts) asks only the
   * ranks not flushed for it yet: one flushed counts as done, one still
   * flushing is waited for.
   */
  private async prepare(req: RoundRequest): Promise<StepOutcome> {
    const channel = this.o.rankChannel;
    if (!channel) throw new FerryError(ErrorCode.UNSUPPORTED, `host ${this.o.host} has no rank channel`);
    await passFaultGate('prepare', this.o.host);
    const t0 = Date.now();
    const ask: number[] = [];
    const underWay: Promise<void>[] = [];
    const waiting: [string, () => void][] = [];
    for (const r of req.ranks) {
      const key = `${req.job_id}/${r}`;
      if (this.flushed.get(key) === req.epoch) continue;
      if (this.flushing.get(key) !== req.epoch) {
        ask.push(r);
        continue;
      }
      underWay.push(
        new Promise((done) => {
          waiting.push([key, done]);
          this.flushWaiters.set(key, [...(this.flushWaiters.get(key) ?? []), done]);
        }),
      );
    }
    const missing = await this.untilReattached(req.job_id, ask);
    if (missing.length > 0) {
      // (no flush asked of any: its peers would wait for the missing ranks' markers)
      const waitMs = this.o.reattachWaitMs ?? REATTACH_WAIT_MS;
      const e = new FerryError(
        ErrorCode.UNAVAILABLE,
        `rank${missing.length > 1 ? 's' : ''} ${missing.join(',')} of job ${req.job_id}, re-adopted from host ${this.o.host}'s previous agent, ` +
          `did not connect to its new one within ${waitMs} ms (one not linked with Ferry's MPI runtime never does)`,
      );
      return { failed: new Map(req.ranks.map((r) => [r, e])) };
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      // (the rank table says flushing before any rank is asked: see RankSupervisor.recordFlushAsked)
      const record = (asked: number[]) => this.o.ranks.recordFlushAsked(req.job_id, asked, req.epoch);
      const asked = ask.length > 0 ? channel.flush(req.job_id, req.epoch, ask, record) : Promise.resolve([]);
      asked.catch(() => {}); // (handled below: not unhandled while a test holds the gate)
      await passFaultGate('flushing', this.o.host);
      const [reports] = await Promise.race([
        Promise.all([asked, ...underWay]),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new FerryError(ErrorCode.TIMEOUT, `flush on host ${this.o.host} not done within ${AGENT_FLUSH_TIMEOUT_MS} ms`)),
            AGENT_FLUSH_TIMEOUT_MS,
          );
        }),
      ]);
      return {
        failed: new Map(),
        flush: {
          drained_messages: reports.reduce((n, r) => n + r.drainedMessages, 0),
          drained_bytes: reports.reduce((n, r) => n + r.drainedBytes, 0),
          flush_ms: Date.now() - t0,
        },
      };
    } catch (err) {
      const e = err instanceof FerryError ? err : new FerryError(ErrorCode.INTERNAL, errorMessage(err));
      trace(`flush of ${req.job_id} on ${this.o.host} failed: ${e.message}`);
      return { failed: new Map(req.ranks.map((r) => [r, e])) };
    } finally {
      if (timer) clearTimeout(timer);
      // (a rank that never completes, because it died, leaves no waiter behind)
      for (const [key, done] of waiting) {
        const left = (this.flushWaiters.get(key) ?? []).filter((d) => d !== done);
        if (left.length > 0) this.flushWaiters.set(key, left);
        else this.flushWaiters.delete(key);
      }
    }
  }

  adoptFlushed(jobId: string, rank: number, epoch: number): void {
    this.flushed.set(`${jobId}/${rank}`, epoch);
  }

  /**
   * A rank re-adopted running (not flushed) from this host's previous agent: it connects to this agent
   * again by itself, and a PREPARE waits for that (a coordinator finishing a flush the agent's death cut
   * short asks this agent as soon as it registers, which may be before the rank's next try; asked then,
   * the rank refused, and its peers waited out the flush timeout for its end-of-channel markers).
   */
  expectReattach(jobId: string, rank: number): void {
    if (!this.o.rankChannel?.isConnected(jobId, rank)) this.reattaching.set(`${jobId}/${rank}`, []);
  }

  private reattached(jobId: string, rank: number): void {
    const key = `${jobId}/${rank}`;
    for (const done of this.reattaching.get(key) ?? []) done();
    this.reattaching.delete(key);
  }

  /** Waits (reattachWaitMs at most) for those of `ranks` re-adopted and not yet connected again; returns those still missing. */
  private async untilReattached(jobId: string, ranks: readonly number[]): Promise<number[]> {
    const missing = () => ranks.filter((r) => this.reattaching.has(`${jobId}/${r}`));
    if (missing().length === 0) return [];
    const t0 = Date.now();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(missing().map((r) => new Promise<void>((done) => this.reattaching.get(`${jobId}/${r}`)!.push(done)))),
      new Promise<void>((done) => (timer = setTimeout(done, this.o.reattachWaitMs ?? REATTACH_WAIT_MS))),
    ]);
    clearTimeout(timer);
    trace(`${jobId}: waited ${Date.now() - t0} ms for re-adopted ranks [${ranks.join(',')}] to connect again`);
    return missing();
  }

  /** Ranks flushed or flushing here that no RESUME has reached yet, with the epoch (or image set) they were flushed for. */
  awaitingResume(): Map<string, number> {
    return new Map([...this.flushing, ...this.flushed]);
  }

  /** cutKeptDir of this host for a step's job and image set (and rank). */
  private cutKeptDir(req: RoundRequest, rank?: number): string {
    return cutKeptDir(this.o.imagesDir, this.o.host, checkSafeName('job id', req.job_id), imageSetNumber(req), rank);
  }

  async forgetJob(jobId: string): Promise<void> {
    await rm(this.cutKeptRoot(jobId), { recursive: true, force: true });
  }

  /** IMAGES/.cut-back/HOST/JOB (see cutKeptDir). */
  private cutKeptRoot(jobId: string): string {
    return cutKeptDir(this.o.imagesDir, this.o.host, checkSafeName('job id', jobId));
  }

  /** PUT_BACK: the files this host's FETCH of the restart cut, whole again where nothing wrote to them since. */
  private async putBack(req: RoundRequest): Promise<StepOutcome> {
    const filesPutBack: CutBackFileInit[] = [];
    const putBackProblems: string[] = [];
    const failed = new Map<number, FerryError>();
    for (const rank of req.ranks) {
      try {
        const r = await putBackCutFiles(this.cutKeptDir(req, rank));
        for (const f of r.putBack) {
          trace(`${req.job_id} rank ${rank}: ${f.path} put back from ${f.fromBytes} to ${f.toBytes} bytes`);
          filesPutBack.push({ rank, path: f.path, from_bytes: f.fromBytes, to_bytes: f.toBytes });
        }
        putBackProblems.push(...r.problems.map((p) => `rank ${rank}: ${p}`));
      } catch (e) {
        failed.set(rank, e instanceof FerryError ? e : new FerryError(ErrorCode.INTERNAL, errorMessage(e)));
      }
    }
    // once empty
    await rmdir(this.cutKeptDir(req)).catch(() => {});
    await rmdir(this.cutKeptRoot(req.job_id)).catch(() => {});
    return { failed, filesPutBack, putBackProblems };
  }

  /** Wakes flushed ranks; a rank still flushing is woken when it is done. Ranks never flushed are left alone. */
  private async resume(req: RoundRequest): Promise<StepOutcome> {
    await passFaultGate('resume', this.o.host);
    // The job runs (again) from its epoch: what a restart's FETCH cut is not to be put back.
    const kept = this.cutKeptRoot(req.job_id);
    if (existsSync(kept)) await rm(kept, { recursive: true, force: true });
    // A dump of the job still running (its coordinator gave up waiting for it, or it outlived the agent
    // before this one) may leave ranks stopped when it ends, after any SIGCONT now: they run on after it.
    const dumping = this.dumpsInFlight.get(req.job_id);
    if (dumping) {
      trace(`RESUME of ${req.job_id} waits for its dumps still running here`);
      await dumping;
    }
    // Ranks a dump left stopped (the step after it failed: no STOP came) run again, flushed or not.
    const continued = this.o.ranks.continueStoppedByDump?.(req.job_id, req.ranks) ?? [];
    if (continued.length > 0) trace(`SIGCONT to ${req.job_id} ranks ${continued.join(',')}, left stopped by their dump`);
    const now: number[] = [];
    for (const rank of req.ranks) {
      const key = `${req.job_id}/${rank}`;
      if (this.flushed.delete(key)) now.push(rank);
      else if (this.flushing.has(key)) this.resumeWhenFlushed.add(key);
    }
    this.wake(req.job_id, now);
    return { failed: new Map() };
  }

  private wake(jobId: string, ranks: number[]): void {
    if (ranks.length === 0) return;
    trace(`SIGUSR2 to ${jobId} ranks ${ranks.join(',')}`);
    this.o.ranks.signalRanks(jobId, ranks, 'SIGUSR2');
  }
}

/** `under[key]` resolves once `ended` and what it waited for before have ended; the key goes then, unless taken since. */
function untilAllEnded(under: Map<string, Promise<void>>, key: string, ended: Promise<unknown>): void {
  const over = Promise.all([under.get(key), ended]).then(() => {
    if (under.get(key) === over) under.delete(key);
  });
  under.set(key, over);
}

/** Until no process of the tree at `initPid` is stopped any more (continued just now), 2 s at most: whether it runs. */
async function waitUntilRunning(initPid: number): Promise<boolean> {
  for (const start = Date.now(); treeHasStopped(initPid); await new Promise((r) => setTimeout(r, 5))) {
    if (Date.now() - start >= 2_000) return false;
  }
  return true;
}
