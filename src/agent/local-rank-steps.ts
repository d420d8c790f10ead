// The checkpoint protocol's steps on this node, for real: flushes through the
// rank channel, CRIU dumps, SIGUSR2 to resume, image removal.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, RoundStep, type RoundRequest } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { checkSafeName } from '../common/names.js';
import { tracer } from '../common/trace.js';
import type { RankChannelServer } from './rank-channel.js';
import type { RankSteps, StepOutcome } from './rank-steps.js';
import type { RankSupervisor } from './rank-supervisor.js';

const trace = tracer('steps');

/** How long one flush may take on this node before the agent gives up on it (the coordinator's own timeout is longer). */
export const AGENT_FLUSH_TIMEOUT_MS = 25_000;

export interface LocalRankStepsOptions {
  host: string;
  imagesDir: string;
  ranks: RankSupervisor;
  rankChannel?: RankChannelServer;
}

export class LocalRankSteps implements RankSteps {
  /** Ranks that are flushed and wait for SIGUSR2 (job/rank). */
  private readonly flushed = new Set<string>();
  /** Ranks asked to flush that have not finished (job/rank). */
  private readonly flushing = new Set<string>();
  /** Ranks told to resume while their flush was still under way: woken as soon as it completes. */
  private readonly resumeWhenFlushed = new Set<string>();

  constructor(private readonly o: LocalRankStepsOptions) {
    o.rankChannel?.on('flushed', (report) => {
      const key = `${report.jobId}/${report.rank}`;
      this.flushing.delete(key);
      this.flushed.add(key);
      if (this.resumeWhenFlushed.delete(key)) this.wake(report.jobId, [report.rank]);
    });
  }

  async run(req: RoundRequest): Promise<StepOutcome> {
    switch (req.step) {
      case RoundStep.PREPARE:
        return this.prepare(req);
      case RoundStep.RESUME:
        return this.resume(req);
      case RoundStep.DISCARD:
        await rm(this.imageSetDir(req), { recursive: true, force: true });
        return { failed: new Map() };
      case RoundStep.STOP:
        for (const r of req.dump_ranks) {
          this.flushed.delete(`${req.job_id}/${r}`);
          this.flushing.delete(`${req.job_id}/${r}`);
        }
        this.o.ranks.signalRanks(req.job_id, req.dump_ranks, 'SIGKILL');
        return { failed: new Map() };
      case RoundStep.DUMP:
        throw new FerryError(ErrorCode.UNSUPPORTED, `host ${this.o.host}: CRIU dumps are not wired into the agent yet`);
      default:
        throw new FerryError(ErrorCode.BAD_REQUEST, `unknown round step ${req.step}`);
    }
  }

  /** IMAGES/JOB/SET: the names come from the wire, so they are checked before they touch a path. */
  private imageSetDir(req: RoundRequest): string {
    return join(this.o.imagesDir, checkSafeName('job id', req.job_id), checkSafeName('image set', req.image_set || String(req.epoch)));
  }

  private async prepare(req: RoundRequest): Promise<StepOutcome> {
    const channel = this.o.rankChannel;
    if (!channel) throw new FerryError(ErrorCode.UNSUPPORTED, `host ${this.o.host} has no rank channel`);
    const t0 = Date.now();
    for (const r of req.ranks) this.flushing.add(`${req.job_id}/${r}`);
    let timer: NodeJS.Timeout | undefined;
    try {
      const reports = await Promise.race([
        channel.flush(req.job_id, req.epoch, req.ranks),
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
    }
  }

  /** Wakes flushed ranks; a rank still flushing is woken when it is done. Ranks never flushed are left alone. */
  private resume(req: RoundRequest): StepOutcome {
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
