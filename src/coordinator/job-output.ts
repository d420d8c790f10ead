// The output of the jobs' ranks on its way to their followers (ferry run, ferry attach, a rank-exec's own
// rank): who follows which job, what waits for each follower (follower-link.ts), what came while no one
// followed (unfollowed-output.ts), the tails of ended ranks (output-tails.ts), output sent again
// (output-resends.ts, output-replay.ts) or from given-up copies (given-up-copies.ts), and each job's end,
// which goes to its followers after its output. Only the output counts survive a restart (output-replay.ts,
// saved every OUTPUT_COUNTS_SAVE_MS); a `ferry run` renews its follow with the next coordinator.
import type { JobInfoInit, OutputUntakenInit, RankOutput } from '../gen/proto.js';
import { ErrorCode } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';
import type { PeerId } from '../transport/transport.js';
import { JOB_RUN_OVER_STATES } from './catalog-types.js';
import type { Coordinator } from './coordinator.js';
import { GivenUpCopies } from './given-up-copies.js';
import { OutputReplay } from './output-replay.js';
import { OutputResends } from './output-resends.js';
import { FollowerLink, LAPSED_FOLLOWER_TRIM_MS, LAPSED_FOLLOWER_WAITING_BYTES } from './follower-link.js';
import { OUTPUT_PAUSE_MS, OutputFlow } from './output-flow.js';
import { UNFOLLOWED_OUTPUT_BYTES, UnfollowedOutput } from './unfollowed-output.js';
import { OutputTails } from './output-tails.js';

const trace = tracer('jobs');

/** How often the output counts are saved (output-replay.ts): what a coordinator that crashes loses of them. */
export const OUTPUT_COUNTS_SAVE_MS = 1_000;

interface Follower {
  peer: PeerId;
  requestId: number;
  /** Only these ranks' output; undefined: every rank's. */
  ranks?: ReadonlySet<number>;
  /** What goes to it, in order, paced by what it says it received. */
  link: FollowerLink;
  /** When it last renewed its follow or counted output. */
  heardMs: number;
}

/**
 * How long a follower may stay silent (no renewal, no count; a live one does both every 2 s) before it is
 * taken as gone: an ended job's follower with output still waiting is given up, and a running job's no
 * longer holds the job's output back at the agents while another follower is there (waitingOutput).
 */
export const FOLLOWER_LAPSE_MS = 60_000;
/** How long a given-up follower is remembered, to tell it so when it comes back (a `ferry run` continued). */
const GIVEN_UP_KEPT_MS = 24 * 3600_000;

/** What the job's output needs to know of its job and ranks (job-service.ts). */
export interface JobOutputHooks {
  /** The hosts of the job's live ranks, with those ranks. */
  liveRanksByHost(jobId: string): Map<string, number[]>;
  /** The host the rank runs on now (the catalog's), if the job is known. */
  rankHost(jobId: string, rank: number): string | undefined;
  /** The job as its followers get it at its end. */
  jobInfo(jobId: string): JobInfoInit;
  /** The job's follows have ended: nothing of its launchers (rank-execs) is kept any more. */
  followsEnded(jobId: string): void;
}

export class JobOutput {
  /** The followers of running jobs (and of ended ones whose end waits for their ranks' tails). */
  private readonly followers = new Map<string, Follower[]>();
  /** Followers of ended jobs whose output and final reply still wait for them (follower-link.ts). */
  private readonly draining = new Map<string, Follower[]>();
  /** Output held back at the agents while a follower is behind (output-flow.ts). */
  private readonly outputFlow = new OutputFlow((jobId, pauseMs) => {
    for (const host of new Set([...this.hooks.liveRanksByHost(jobId).keys(), ...this.tails.hostsOf(jobId)])) {
      this.c.requestAgent(host, { output_flow: { job_id: jobId, pause_ms: pauseMs } }).catch((err) => trace(`output flow of ${jobId} to ${host}: ${errorMessage(err)}`));
    }
  });
  /**
   * Jobs whose output an agent sends again for followers of the coordinator before this one (they had not
   * taken it when it was replaced): held back at the agents until a follower is back, or until then (ms).
   */
  private readonly awaitingFollowers = new Map<string, number>();
  /** Output no follower took, for the next one (a follower renewing after a coordinator restart). */
  private readonly unfollowed = new UnfollowedOutput();
  /** Followers of ended jobs given up with output still waiting, as "job\0peer": told so if they come back. */
  private readonly givenUpFollowers = new Map<string, { bytes: number; notices: string[]; atMs: number }>();
  /** Ranks whose output goes on after their exit (output-tails.ts). */
  private readonly tails = new OutputTails();
  /** Ended jobs whose followers' end waits for their tails. */
  private readonly endAwaitsTails = new Set<string>();
  /** Hosts down with tails: the timer that gives them up. */
  private readonly tailHostsDown = new Map<string, NodeJS.Timeout>();
  /** Ranks given up with their host: what they print once that host is back is not passed on twice. */
  readonly givenUpCopies: GivenUpCopies;
  /** Output an agent sent again after it lost its session, passed on once (output-resends.ts). */
  private readonly resends = new OutputResends();
  /** What of the ranks' output was passed on, so a rollback does not pass it on twice. */
  readonly replay: OutputReplay;
  /** Saves the output counts and sweeps the followers every OUTPUT_COUNTS_SAVE_MS. */
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(
    private readonly c: Coordinator,
    private readonly hooks: JobOutputHooks,
  ) {
    this.replay = new OutputReplay(c.instance, c.catalog.outputCounts(), c.catalog);
    this.givenUpCopies = new GivenUpCopies(c.catalog);
    this.sweepTimer = setInterval(() => {
      try {
        this.saveOutputCounts();
        this.sweepDraining();
        this.trimLapsedFollowers();
        for (const [jobId, untilMs] of this.awaitingFollowers) if (untilMs <= this.c.now()) this.awaitingFollowers.delete(jobId);
        this.outputFlow.renew((jobId) => this.waitingOutput(jobId));
      } catch (err) {
        // (a bug in what one job's follows need must not take the coordinator, and every job, down with it)
        this.c.onWarning(`sweeping the jobs' followers: ${errorMessage(err)}`);
      }
    }, OUTPUT_COUNTS_SAVE_MS);
    this.sweepTimer.unref?.();
  }

  /** Stops the timers and saves the output counts (the coordinator is shutting down). */
  stop(): void {
    for (const t of this.tailHostsDown.values()) clearTimeout(t);
    clearInterval(this.sweepTimer);
    this.saveOutputCounts();
  }

  /**
   * Adds (or renews) a follower, of every rank's output or of `ranks` only (a
   * rank-exec wants its own rank's: with N of them, all output N times over
   * would be N² messages); a job that already ended is answered at once,
   * unless it is about to be restarted automatically. Returns whether it
   * follows the job as a running one.
   */
  follow(jobId: string, peer: PeerId, requestId: number, ranks: readonly number[]): boolean {
    const job = this.c.catalog.getJob(jobId);
    if (!job) throw new FerryError(ErrorCode.UNKNOWN_JOB, `no job "${jobId}" in the catalog`);
    const follower = this.newFollower(jobId, peer, requestId, ranks);
    const previous = this.followerOf(this.followers, jobId, peer) ?? this.followerOf(this.draining, jobId, peer);
    if (previous) follower.link.takeOver(previous.link);
    // (an ended job whose tails still come is followed as a running one: its end goes after them. So is
    // one with a host not heard from since this coordinator started: its agent may bring tails, for the
    // output a coordinator before this one held for this follower, and a `ferry run` renews its follow
    // before the agents register, its renewal queued in its socket while no coordinator ran)
    if (JOB_RUN_OVER_STATES.has(job.state) && this.hostsUnheard(jobId)) this.endAwaitsTails.add(jobId);
    if (JOB_RUN_OVER_STATES.has(job.state) && !this.c.autoRestarts.has(jobId) && !this.endAwaitsTails.has(jobId)) {
      const draining = (this.draining.get(jobId) ?? []).filter((f) => f.peer !== peer);
      // (a follow renewed while the end still waits for it: the end is in what it took over)
      if (!previous || !this.draining.get(jobId)?.includes(previous)) {
        const gone = this.givenUpFollowers.get(`${jobId}\0${peer}`);
        if (gone) {
          this.givenUpFollowers.delete(`${jobId}\0${peer}`);
          const lapse = `this follower was silent for ${FOLLOWER_LAPSE_MS / 1000} s after the job ended (all of it is in the agents' log files)`;
          const notices = [...(gone.bytes > 0 ? [`${gone.bytes} bytes of its output left out: ${lapse}`] : []), ...gone.notices];
          for (const message of notices) follower.link.push({ status: { ok: true }, final: false, job_notice: { job_id: jobId, message } });
        }
        this.sendUnfollowed(jobId, follower);
        follower.link.push({ status: { ok: true }, final: true, job_ended: { job: this.hooks.jobInfo(jobId) } });
      }
      if (follower.link.waiting > 0) draining.push(follower);
      if (draining.length > 0) this.draining.set(jobId, draining);
      else this.drained(jobId);
      return false;
    }
    this.sendUnfollowed(jobId, follower);
    const list = (this.followers.get(jobId) ?? []).filter((f) => f.peer !== peer);
    list.push(follower);
    this.followers.set(jobId, list);
    // (the output held for the followers of a coordinator before this one goes on, to this one)
    if (this.awaitingFollowers.delete(jobId)) this.outputFlow.update(jobId, this.waitingOutput(jobId));
    return true;
  }

  private newFollower(jobId: string, peer: PeerId, requestId: number, ranks: readonly number[]): Follower {
    const follower: Follower = {
      peer,
      requestId,
      ...(ranks.length > 0 ? { ranks: new Set(ranks) } : {}),
      heardMs: this.c.now(),
      link: new FollowerLink((reply) => this.c.sendOperator(peer, { reply_to: follower.requestId, ...reply }), jobId, this.c.config.followerWaitingLimitBytes),
    };
    return follower;
  }

  private followerOf(map: Map<string, Follower[]>, jobId: string, peer: PeerId): Follower | undefined {
    return map.get(jobId)?.find((f) => f.peer === peer);
  }

  /** A follower's count of the output it received: what waits for it goes on (follower-link.ts). */
  outputReceived(jobId: string, peer: PeerId, bytes: number): void {
    const f = this.followerOf(this.followers, jobId, peer) ?? this.followerOf(this.draining, jobId, peer);
    if (!f) return;
    f.heardMs = this.c.now();
    f.link.received(bytes);
    if (this.outputFlow.isPaused(jobId)) this.outputFlow.update(jobId, this.waitingOutput(jobId));
    const draining = this.draining.get(jobId);
    if (draining?.includes(f) && f.link.waiting === 0) {
      const left = draining.filter((d) => d !== f);
      if (left.length > 0) this.draining.set(jobId, left);
      else this.drained(jobId);
    }
  }

  /**
   * The most output waiting here for one follower of the job that is there. A follower silent for
   * FOLLOWER_LAPSE_MS (its `ferry run` killed, or stopped) does not count while another is heard: it would
   * hold the output back from them for good. Alone, it still does: the output waits in the ranks' log
   * files for it to come back.
   */
  private waitingOutput(jobId: string): number {
    const all = [...(this.followers.get(jobId) ?? []), ...(this.draining.get(jobId) ?? [])];
    if (all.length === 0 && (this.awaitingFollowers.get(jobId) ?? 0) > this.c.now()) return Number.MAX_SAFE_INTEGER;
    const now = this.c.now();
    const heard = all.filter((f) => now - f.heardMs < FOLLOWER_LAPSE_MS);
    let most = 0;
    for (const f of heard.length > 0 ? heard : all) most = Math.max(most, f.link.waitingBytes);
    return most;
  }

  /**
   * Whether a host of the job's ranks has not re-registered since this coordinator started ('unknown';
   * it goes 'down' after the heartbeat timeout): its agent may still carry the ranks' tails.
   */
  private hostsUnheard(jobId: string): boolean {
    return this.c.catalog.listRanks(jobId).some((r) => this.c.hosts.get(r.host)?.state === 'unknown');
  }

  /** The rank ended and its output goes on after its exit: a tail (output-tails.ts). */
  expectTail(jobId: string, rank: number, host: string): void {
    this.tails.expect(jobId, rank, host);
  }

  /** An ended rank's output comes again after its exit, which came again: its job's end waits for it. */
  tailAgain(jobId: string, rank: number, host: string): void {
    this.tails.expect(jobId, rank, host);
    const job = this.c.catalog.getJob(jobId);
    if (job && JOB_RUN_OVER_STATES.has(job.state)) this.endAwaitsTails.add(jobId);
  }

  /**
   * Agent `host` sends these jobs' output again for followers of the coordinator before this one, which
   * had not taken it (RegisterRequest.output_untaken_jobs): unless the job has a follower here already,
   * the output is held back at its agents until one follows (a `ferry run` renews every 2 s), or for
   * FOLLOWER_LAPSE_MS, so that it goes to them, not to the bounded store of unfollowed output. Called
   * before the registration is answered: the agent holds the job before it sends anything again.
   */
  awaitFollowers(host: string, jobIds: readonly string[]): void {
    for (const jobId of jobIds) {
      const job = this.c.catalog.getJob(jobId);
      // (an ended job's ranks' tails: the registration carried their exits again, tailAgain)
      if (!job || (JOB_RUN_OVER_STATES.has(job.state) && !this.tails.has(jobId)) || (this.followers.get(jobId)?.length ?? 0) > 0) continue;
      if (!this.awaitingFollowers.has(jobId)) trace(`holding the output of ${jobId} for its followers to come back`);
      this.awaitingFollowers.set(jobId, Math.max(this.awaitingFollowers.get(jobId) ?? 0, this.c.now() + FOLLOWER_LAPSE_MS));
      this.c.requestAgent(host, { output_flow: { job_id: jobId, pause_ms: OUTPUT_PAUSE_MS } }).catch((err) => trace(`output flow of ${jobId} to ${host}: ${errorMessage(err)}`));
      this.outputFlow.update(jobId, this.waitingOutput(jobId)); // (renewed from now on, at every host of the job)
    }
  }

  /**
   * The output agent `instance` sent that followers have not taken yet, per source and stream: for its
   * heartbeat's answer, so that it sends that again if this coordinator is replaced (output-tailer.ts).
   */
  untakenOutput(instance: string, host: string): OutputUntakenInit[] {
    const into = new Map<string, OutputUntakenInit>();
    const prefix = `${instance}.`;
    // (its own sources, and those it went on in after an agent before it: OutputResends.sentFrom)
    const ofAgent = (source: string) => source.startsWith(prefix) || this.resends.sentFrom(source, host);
    for (const map of [this.followers, this.draining]) {
      for (const list of map.values()) for (const f of list) f.link.untaken(into, ofAgent);
    }
    return [...into.values()];
  }

  /** The ended job's last draining follower is done (or given up). */
  private drained(jobId: string): void {
    this.draining.delete(jobId);
    this.resends.forgetHosts(jobId);
  }

  /**
   * A running job's follower silent for LAPSED_FOLLOWER_TRIM_MS while another follows keeps less output
   * waiting (LAPSED_FOLLOWER_WAITING_BYTES), its full limit again once it is heard.
   */
  private trimLapsedFollowers(): void {
    const now = this.c.now();
    const full = this.c.config.followerWaitingLimitBytes;
    for (const list of this.followers.values()) {
      const anyHeard = list.some((f) => now - f.heardMs < FOLLOWER_LAPSE_MS);
      for (const f of list) f.link.limit(anyHeard && now - f.heardMs >= LAPSED_FOLLOWER_TRIM_MS ? Math.min(LAPSED_FOLLOWER_WAITING_BYTES, full) : full);
    }
  }

  /** Gives up ended jobs' followers that went silent with replies still waiting for them. */
  private sweepDraining(): void {
    const now = this.c.now();
    // (and the tails of an ended job whose followers all went silent: endFollows ends them now)
    for (const jobId of [...this.endAwaitsTails]) this.endFollows(jobId);
    for (const [key, g] of this.givenUpFollowers) if (now - g.atMs > GIVEN_UP_KEPT_MS) this.givenUpFollowers.delete(key);
    for (const [jobId, list] of this.draining) {
      for (const f of list) {
        const [bytes, notices] = [f.link.waitingBytes, f.link.waitingNotices];
        if (now - f.heardMs >= FOLLOWER_LAPSE_MS && (bytes > 0 || notices.length > 0)) this.givenUpFollowers.set(`${jobId}\0${f.peer}`, { bytes, notices, atMs: now });
      }
      const left = list.filter((f) => now - f.heardMs < FOLLOWER_LAPSE_MS);
      if (left.length > 0) this.draining.set(jobId, left);
      else this.drained(jobId);
    }
  }

  /** Hands a follower the output of its ranks that no one took while no one followed them. */
  private sendUnfollowed(jobId: string, f: Follower): void {
    const { chunks, dropped } = this.unfollowed.take(jobId, f.ranks);
    if (dropped > 0) {
      const message = `${dropped} bytes of its output went while no one followed it (kept: the last ${UNFOLLOWED_OUTPUT_BYTES}; all of it is in the agents' logs)`;
      f.link.push({ status: { ok: true }, final: false, job_notice: { job_id: jobId, message } });
    }
    for (const job_output of chunks) f.link.push({ status: { ok: true }, final: false, job_output });
  }

  /** Output of a rank, from the agent on `host`: to the job's followers, or kept for the next one. */
  onRankOutput(out: Omit<RankOutput, 'offset' | 'source' | 'last' | 'resent'> & Partial<Pick<RankOutput, 'offset' | 'source' | 'last' | 'resent'>>, host = ''): void {
    if (out.last) {
      if (this.tails.ended(out.job_id, out.rank, host) && this.endAwaitsTails.has(out.job_id)) this.endFollows(out.job_id);
      return;
    }
    const givenUp = this.givenUpCopies.output(out.job_id, out.rank, host, () => this.hooks.rankHost(out.job_id, out.rank), out.data.length);
    if (givenUp !== 'pass') {
      if (givenUp === 'first') {
        const now = this.hooks.rankHost(out.job_id, out.rank);
        this.notify(
          out.job_id,
          `rank ${out.rank}'s copy on host ${host}, given up when ${host} went down, printed on while ${host} was cut off: ` +
            `that output is left out, as the rank runs on host ${now} now, from its last epoch, and prints it again (all of it is in ${host}'s log of the rank)`,
        );
      }
      return;
    }
    const fresh = this.resends.filter(out.job_id, out.rank, out.stream, out.source ?? '', out.offset ?? 0, out.data, host);
    if (fresh.length === 0) return;
    // (output the coordinator before this one passed on and counted, sent again for followers that had
    // not taken it, is not counted again; of a rollback's repeat, it is dropped again)
    const data = this.replay.filter(out.job_id, out.rank, out.stream, fresh, out.source ?? '', (out.offset ?? 0) + out.data.length - fresh.length, out.resent ?? false);
    if (data.length === 0) return;
    // (the filters keep a chunk's end: where what is left starts in its source)
    const offset = (out.offset ?? 0) + out.data.length - data.length;
    const job_output = { job_id: out.job_id, rank: out.rank, stream: out.stream, data, source: out.source ?? '', offset };
    let taken = false;
    for (const f of this.followers.get(out.job_id) ?? []) {
      if (f.ranks && !f.ranks.has(out.rank)) continue;
      f.link.push({ status: { ok: true }, final: false, job_output });
      taken = true;
    }
    if (taken) this.outputFlow.update(out.job_id, this.waitingOutput(out.job_id));
    if (!taken) this.unfollowed.keep(job_output);
  }

  /** `host` went down: the tails it sends are given up unless it is back within `graceMs`. */
  hostDown(host: string, graceMs: number): void {
    if (!this.tails.hasHost(host) || this.tailHostsDown.has(host)) return;
    // (back within the grace, its agent sends them again: output-tailer.ts rewinds)
    const timer = setTimeout(() => {
      this.tailHostsDown.delete(host);
      if (this.c.hosts.get(host)?.state !== 'up') this.tailsLost(host, `host ${host} is down`);
    }, graceMs);
    timer.unref?.();
    this.tailHostsDown.set(host, timer);
  }

  /** `host` registered again: its agent sends its tails again. */
  hostBack(host: string): void {
    const tailsGrace = this.tailHostsDown.get(host);
    if (tailsGrace) {
      clearTimeout(tailsGrace);
      this.tailHostsDown.delete(host);
    }
  }

  /**
   * The tails `host` sends will not come (its agent was replaced, the host is lost): the jobs' followers
   * are told where that output is, and an ended job's end goes to them.
   */
  tailsLost(host: string, why: string, kept: (jobId: string, rank: number) => boolean = () => false): void {
    for (const [jobId, ranks] of this.tails.dropHost(host, kept)) {
      this.notify(jobId, `the last output of rank${ranks.length > 1 ? 's' : ''} ${ranks.join(',')} will not come (${why}): it is in the log files on host ${host}`);
      if (this.endAwaitsTails.has(jobId) && !this.tails.has(jobId)) this.endFollows(jobId);
    }
  }

  /**
   * The job ended: its followers get it, in a final reply; after its ranks' tails (output-tails.ts), if a
   * follower heard from lately is there to take them, or is awaited (awaitFollowers).
   */
  endFollows(jobId: string, deleted?: JobInfoInit): void {
    const now = this.c.now();
    const awaited = (this.awaitingFollowers.get(jobId) ?? 0) > now;
    const heard = (this.followers.get(jobId) ?? []).some((f) => now - f.heardMs < FOLLOWER_LAPSE_MS);
    if (!deleted && ((this.tails.has(jobId) && (awaited || heard)) || (heard && this.hostsUnheard(jobId)))) {
      this.endAwaitsTails.add(jobId);
      return;
    }
    this.endAwaitsTails.delete(jobId);
    if (deleted) this.awaitingFollowers.delete(jobId);
    for (const [host, ranks] of deleted ? [] : this.tails.byHost(jobId)) {
      this.notify(jobId, `the last output of rank${ranks.length > 1 ? 's' : ''} ${ranks.join(',')} was not taken in time (this follower was silent): it is in the log files on host ${host}`);
    }
    this.tails.forget(jobId);
    this.unfollowed.ended(jobId);
    this.hooks.followsEnded(jobId);
    const info = deleted ?? this.hooks.jobInfo(jobId);
    const draining: Follower[] = [];
    for (const f of this.followers.get(jobId) ?? []) {
      f.link.push({ status: { ok: true }, final: true, job_ended: { job: info } });
      // (its output still on its way: the end goes after it, as the follower takes it)
      if (f.link.waiting > 0) draining.push(f);
    }
    this.followers.delete(jobId);
    // (while its followers drain, the agents still say what they have not taken of its sources, also of
    // those an agent did not begin: a restored rank's, an agent's before it; untakenOutput)
    this.resends.forget(jobId, draining.length > 0);
    if (draining.length > 0) this.draining.set(jobId, draining);
    this.outputFlow.forget(jobId);
  }

  /** Saves the output counts that changed (output-replay.ts): the next coordinator counts on from them. */
  saveOutputCounts(): void {
    try {
      this.c.catalog.saveOutputCounts(this.replay.unsaved());
    } catch (err) {
      // Lower saved counts only make a later rollback show some output twice.
      trace(`cannot save the output counts: ${errorMessage(err)}`);
    }
  }

  /**
   * The ended job was deleted (ferry delete; `job`: what it was): a follower that waited for its ranks'
   * last output (a tail, a host not registered yet) gets its end now; nothing of its output is kept any more.
   */
  jobDeleted(job: JobInfoInit): void {
    const jobId = job.id ?? '';
    if (this.endAwaitsTails.has(jobId)) {
      this.notify(jobId, `job ${jobId} was deleted (ferry delete) while this follower waited for the last output of its ranks (it went with the job's log files)`);
    }
    if (this.followers.has(jobId) || this.endAwaitsTails.has(jobId)) this.endFollows(jobId, job);
    this.replay.forget(jobId);
    this.givenUpCopies.forget(jobId);
  }

  /** Tells the job's followers what happened to it (ferry run prints it), between its output. */
  notify(jobId: string, message: string): void {
    for (const f of this.followers.get(jobId) ?? []) f.link.push({ status: { ok: true }, final: false, job_notice: { job_id: jobId, message } });
  }
}
