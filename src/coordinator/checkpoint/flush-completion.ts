// A flush, once begun, ends on every rank of the job before any rank runs
// again. A rank that got its flush request sends its end-of-channel marker to
// its peers and waits for theirs; a peer that never got the request (its agent
// was lost before it passed the request on, or the rank had not reconnected to
// a new agent yet) never sends one, so the ranks that did flush would wait for
// ever, and the job hangs with them. Nor may the ranks that did flush be woken
// and the rest asked later: a woken rank may open a new connection to one that
// was never flushed, which would then flush into a peer that no longer flushes.
//
// So when a PREPARE (of a checkpoint or a migration) fails, the same PREPARE
// goes again to every rank of the job (agents answer it at once for ranks
// flushed for it, wait for those still flushing, and pass it on to the rest),
// retried on any failure but a lost agent, up to the flush timeout: a rank not
// connected to its agent yet, one that refused for a moment. Only then are the
// ranks resumed. When agents were lost, the job
// waits, holding its operation slot, until they are back (then the same
// PREPARE, then RESUME to all) or given up on (the job fails of the lost host,
// as it would anyway).
//
// The catalog keeps each flush open from before its PREPARE is sent until it
// has ended on every rank or will not be finished (Catalog.openFlushes): a
// coordinator killed while it sent a PREPARE may have reached some agents
// only, and the next one finishes that flush the same way (resumeInterrupted).
import { ErrorCode, RoundStep } from '../../gen/proto.js';
import { errorMessage } from '../../common/ferry-error.js';
import type { Coordinator } from '../coordinator.js';
import { describeRoundFailure, runResumeRound, runRound, type RoundResult } from '../round-runner.js';

/** Between PREPAREs sent again to ranks that did not flush when asked. */
export const FLUSH_RETRY_MS = 200;

/** What became of a failed PREPARE's flush. */
export type FlushSettlement =
  | { state: 'untouched' } // no rank began to flush (every agent refused before it asked one): resume as usual
  | { state: 'complete' } // every rank flushed: resume them all
  | { state: 'owed'; hosts: string[] } // agents lost: the job waits for them (see owe)
  | { state: 'ended'; why: string } // the job is ending anyway: nothing to finish
  | { state: 'failed'; problem: string }; // the flush cannot be finished: the job must fail

interface OwedFlush {
  epoch: number;
  imageSet: string;
  what: string;
  /** Hosts whose agents were lost before they answered: the flush is tried again once all are up. */
  hosts: Set<string>;
  /** Set when one of them is given up on: the job fails of it. */
  gone: string;
  /** Wakes the wait (a host came back or is gone). */
  nudge: () => void;
}

/** How often a held job looks again whether its lost agents are back (hostBack wakes it sooner). */
const OWED_RECHECK_MS = 1_000;

export class FlushCompletion {
  private readonly owed = new Map<string, OwedFlush>();

  constructor(private readonly c: Coordinator) {}

  /**
   * After a PREPARE round of job `jobId` for `epoch` (image set `imageSet`) that failed (`first`):
   * finishes the flush on every rank that can be reached. `what` names the operation for events.
   */
  async settle(jobId: string, epoch: number, imageSet: string, what: string, first: RoundResult): Promise<FlushSettlement> {
    const lost = this.lostHosts(first);
    if (lost.length > 0) return { state: 'owed', hosts: lost };
    // An agent refuses a PREPARE for all its ranks before it asks any (one not connected, say: /bin/sh is no MPI
    // program): with no rank flushed or flushing anywhere, nothing waits, and nothing need be finished.
    const begun = [...first.replies.values()].some((r) => r.acknowledged > 0) || [...first.codes.values()].some((code) => code === ErrorCode.TIMEOUT || code === ErrorCode.BUSY);
    const r: FlushSettlement = begun ? await this.finish(jobId, epoch, imageSet) : { state: 'untouched' };
    if (r.state === 'complete') this.c.event('flush.completed', `job ${jobId}: ${what}: every rank flushed when asked again, so all can resume`, { jobId });
    // (an owed flush stays open: owe() finishes it)
    if (r.state !== 'owed') this.close(jobId, epoch);
    return r;
  }

  /** The flush of `epoch` (a checkpoint's epoch or a migration's image set) reached every rank, or will not be finished: it is no longer open. */
  close(jobId: string, epoch: number): void {
    this.c.catalog.closeFlush(jobId, epoch);
  }

  /**
   * At start: flushes that a coordinator now gone had begun and not closed
   * (it was killed while it sent a PREPARE, or while it finished or waited to
   * finish a flush). Some ranks may be flushing for peers that never got the
   * request, so every running job of them is held, as for agents lost in the
   * flush (owe), until every host of the job is up again: then the same
   * PREPARE to every rank, and RESUME to all. A job that is not running any
   * more has nothing to finish.
   */
  resumeInterrupted(): void {
    for (const f of this.c.catalog.openFlushes()) {
      const job = this.c.catalog.getJob(f.jobId);
      if (!job || job.state !== 'running') {
        this.close(f.jobId, f.imageSet);
        continue;
      }
      const what = f.kind === 'checkpoint' ? `checkpoint epoch ${f.imageSet}` : `migration ${f.imageSet}`;
      this.owe(f.jobId, f.imageSet, String(f.imageSet), what, [...this.c.jobs.liveRanksByHost(f.jobId).keys()], 'restarted');
    }
  }

  /**
   * PREPARE again to every live rank of the job, host by host (a host whose
   * ranks still wait for their peers' markers must not hold back the PREPARE
   * sent again to a host whose ranks were not connected yet), until all are
   * flushed, an agent is lost, the job ends, or the flush timeout passes.
   * A rank that exits meanwhile leaves the round (a rank past MPI_Finalize
   * has closed its channels: no peer waits for its marker). Any other failure
   * is tried again until then, whatever its code: a PREPARE is harmless to
   * repeat, and the flush not finished fails the job. Only the codes of a rank
   * not connected yet, or not done yet, were retried until 2026-12-06: a
   * PREPARE that failed once otherwise, as the flush was finished after a lost
   * agent came back, failed the job (random schedules, seed 13108).
   */
  private async finish(jobId: string, epoch: number, imageSet: string): Promise<FlushSettlement> {
    const deadline = this.c.now() + this.c.config.flushTimeoutMs;
    const request = { job_id: jobId, epoch, step: RoundStep.PREPARE, image_set: imageSet };
    const silent: string[] = [];
    const problems: string[] = [];
    // A lost host ends the attempt at once: the others' ranks wait for its ranks (the loops left end at their next turn).
    let lost = () => {};
    const hostLost = new Promise<void>((r) => (lost = r));
    const hosts = Promise.all(
      [...this.c.jobs.liveRanksByHost(jobId).keys()].map(async (host) => {
        let told: RoundResult | undefined; // the host's last answer that said why (a timeout does not)
        for (;;) {
          if (silent.length > 0 || problems.length > 0 || this.ending(jobId)) return;
          const ranks = this.c.jobs.liveRanksByHost(jobId).get(host);
          if (!ranks) return;
          const r = this.c.jobs.withoutEndedRanks(jobId, await runRound(this.c, request, new Map([[host, ranks]]), Math.max(1, deadline - this.c.now())));
          if (r.ok) return;
          if (this.lostHosts(r).length > 0) {
            silent.push(host);
            return lost();
          }
          if (r.silentHosts.length === 0) told = r;
          if (this.c.now() + FLUSH_RETRY_MS >= deadline) return void problems.push(describeRoundFailure('PREPARE', told ?? r));
          await sleep(FLUSH_RETRY_MS);
        }
      }),
    );
    await Promise.race([hosts, hostLost]);
    const ending = this.ending(jobId);
    if (ending) return { state: 'ended', why: ending };
    if (silent.length > 0) return { state: 'owed', hosts: silent };
    if (problems.length > 0) return { state: 'failed', problem: `the flush could not be finished on every rank (${problems.join('; ')})` };
    return { state: 'complete' };
  }

  /**
   * The job's ranks wait, flushed or flushing, for the agents on `hosts`: from
   * now on the job is held (its next work waits; an operator's checkpoint or
   * migration is refused, saying why) until they are all up again (the flush
   * is finished and every rank resumed) or one is given up on (hostGone: the
   * job fails of that host, as for any lost host).
   */
  owe(jobId: string, epoch: number, imageSet: string, what: string, hosts: string[], cause: 'lost' | 'restarted' = 'lost'): void {
    let wake = () => {};
    const owed: OwedFlush = { epoch, imageSet, what, hosts: new Set(hosts), gone: '', nudge: () => wake() };
    this.owed.set(jobId, owed);
    const them = hosts.length > 1 ? 'they are' : 'it is';
    const many = hosts.length > 1 ? 's' : '';
    this.c.event(
      'flush.owed',
      cause === 'lost'
        ? `job ${jobId}: ${what}: the agent${many} on ${hosts.join(', ')} ${hosts.length > 1 ? 'were' : 'was'} lost during the flush; ` +
            `the job's ranks wait, flushed, until ${them} back to finish it (within ${this.c.config.hostRejoinGraceMs} ms, or the job fails)`
        : `job ${jobId}: ${what}: the coordinator restarted before the flush was known to have reached every rank; ` +
            `the job waits until the agent${many} on ${hosts.join(', ')} ${hosts.length > 1 ? 'are' : 'is'} up (within ${this.c.config.hostRejoinGraceMs} ms, or the job fails) to finish it, then resumes`,
      { jobId },
    );
    const waitingFor = () => `its ranks wait for the agent${owed.hosts.size > 1 ? 's' : ''} on ${[...owed.hosts].join(', ')} to finish the flush of ${what}`;
    this.c.operations.queue(jobId, waitingFor, async () => {
      try {
        for (;;) {
          if (this.c.stopping) return; // the next coordinator finds the flush open in the catalog
          if (owed.gone || this.ending(jobId)) return this.close(jobId, epoch); // it fails of the lost host (JobService.loseRanksOn), or ends anyway
          if ([...owed.hosts].every((h) => this.c.hosts.get(h)?.state === 'up')) {
            const r = await this.finish(jobId, epoch, imageSet);
            if (this.c.stopping) return;
            if (r.state !== 'owed') {
              this.close(jobId, epoch); // (before the RESUME: a rank woken must not be asked to flush for it again)
              return await this.resumeAll(jobId, owed, r);
            }
            owed.hosts = new Set(r.hosts);
          }
          await new Promise<void>((res) => {
            const timer = setTimeout(res, OWED_RECHECK_MS);
            wake = () => {
              clearTimeout(timer);
              res();
            };
          });
        }
      } finally {
        this.owed.delete(jobId);
      }
    });
  }

  /** Whether ranks of the job reported flushed for `epoch` are this module's to resume (not settleFlushed's). */
  owes(jobId: string, epoch: number): boolean {
    return this.owed.get(jobId)?.epoch === epoch;
  }

  /** An agent registered (its ranks reconciled): a flush that waited for it is tried again. */
  hostBack(host: string): void {
    for (const owed of this.owed.values()) if (owed.hosts.has(host)) owed.nudge();
  }

  /** `host` is given up on (its rejoin grace ran out, or the operator forgot it): the flushes waiting for it end. */
  hostGone(host: string): void {
    for (const owed of this.owed.values()) {
      if (!owed.hosts.has(host)) continue;
      owed.gone = host;
      owed.nudge();
    }
  }

  /** After the flush was tried again for a held job (`r`, not owed): resume every rank, or fail the job. */
  private async resumeAll(jobId: string, owed: OwedFlush, r: FlushSettlement): Promise<void> {
    if (r.state === 'ended') return;
    if (r.state === 'failed') {
      this.c.jobs.failRunningJob(jobId, `${owed.what} aborted, and ${r.problem}`);
      return;
    }
    const byHost = this.c.jobs.liveRanksByHost(jobId);
    try {
      const resume = await runResumeRound(this.c, { job_id: jobId, epoch: owed.epoch }, byHost);
      const what = `${owed.what} aborted`;
      if (this.c.jobs.resumedOrFailed(jobId, what, resume, byHost, `${what}, and ${describeRoundFailure('RESUME', resume)}`)) {
        this.c.event('flush.completed', `job ${jobId}: ${owed.what}: the lost agents are back, every rank flushed and was resumed`, { jobId });
      }
    } catch (err) {
      this.c.jobs.failRunningJob(jobId, `${owed.what} aborted, and resuming its ranks failed: ${errorMessage(err)}`);
    }
  }

  /**
   * The hosts of a round that did not answer and whose agents are not up: lost, so the job waits for them
   * (owe). A host that is up but did not answer in time (its PREPARE outlived the flush timeout) is not: a
   * job that waited for it to come back waited for good, the same PREPARE going to it again and again.
   */
  private lostHosts(r: RoundResult): string[] {
    return r.silentHosts.filter((h) => this.c.hosts.get(h)?.state !== 'up');
  }

  private ending(jobId: string): string | undefined {
    const job = this.c.catalog.getJob(jobId);
    return job ? this.c.jobs.notRunning(job) : 'is gone';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
