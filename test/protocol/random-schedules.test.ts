// Random schedules of operator commands and faults over the in-memory
// transport: checkpoints (and --stop), restarts (also from an older or a
// deleted epoch), migrations, drains and cancels of two jobs on four hosts (each with or without automatic restarts, image
// replicas and periodic checkpoints racing the commands), sometimes two commands at once (from two operators), each round
// with at most one fault somewhere in it, now and then a second one while the
// cluster recovers from the first: a step that fails for a rank, an
// agent that dies in a step and comes back with its ranks, a rank that dies, a
// host that reboots (its ranks die with it, its disk stays; back before or
// after the rejoin grace), a host cut off the network for a while (its agent and
// ranks run on, unheard), a coordinator crash (also as it sends a step: one
// agent never gets it). The hand-written cases pin each
// fault at a chosen step; these walk the combinations nobody wrote down. Each
// step takes a while (as on a real host), so all of these overlap. A rank's
// flush ends only once every peer was asked to flush too (the end-of-channel
// markers), so a flush that reached some ranks only leaves them hung. After
// every command, once the cluster has settled, the brief's promises must hold:
// - no epoch is left in flight; epoch ids only grow; a committed epoch stays
//   committed unless retention deleted it, and one always stays;
// - every image of a committed epoch, and every stored replica, is on the disk
//   of the host the catalog names (each host's disk is modelled: DUMP writes
//   images, FETCH copies them only from a live host that has them, through
//   the image server of the agent that runs there now (each agent started
//   listens at a new address, so a FETCH from one that ended fails), DISCARD
//   removes them, RESTORE needs them at hand);
// - a running job runs each rank exactly once, where the catalog says, and
//   none of them is left flushed or flushing; a job that is not running runs
//   nothing; no flush is left open in the catalog;
// - a command that failed of a step's failure (or an agent back within a
//   second) left a running job running;
// and at the end, the last committed epoch restarts on a healthy cluster.
// A failing schedule prints its seed, the commands it ran and what each host was asked.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode, RoundStep, type RoundRequest } from '../../src/gen/proto.js';
import { FerryError, errorMessage } from '../../src/common/ferry-error.js';
import { EPOCH_ABORTED, EPOCH_COMMITTED, EPOCH_DELETED, EPOCH_LOST } from '../../src/coordinator/catalog-types.js';
import { forgetHost } from '../../src/coordinator/host-forgetting.js';
import { ENDED_EPOCHS_LISTED, HOST_REJOIN_GRACE_MS, KEEP_EPOCHS } from '../../src/coordinator/coordinator-config.js';
import { drainHost, undrainHost } from '../../src/coordinator/host-draining.js';
import type { Coordinator } from '../../src/coordinator/coordinator.js';
import { ControlPlaneHarness, QUICK_ROUNDS } from './control-plane-harness.js';
import { SimulatedRanks, type ScriptedSteps } from './simulated-node.js';
import { mulberry32 } from '../robustness/fuzz-input.js';
import type { StepOutcome } from '../../src/agent/rank-steps.js';

const HOSTS = ['a', 'b', 'c', 'd'];
/** Two jobs share the hosts: drains move both, and commands on both may run at once. */
const JOBS: Record<string, { world: number; hosts: string[] }> = { j: { world: 4, hosts: ['a', 'b'] }, k: { world: 2, hosts: ['c', 'd'] } };
const ENDED = ['failed', 'cancelled', 'succeeded'];
// 100 schedules take about a minute; FERRY_RANDOM_SCHEDULES=N (and FERRY_RANDOM_SCHEDULES_FROM=S, the first
// seed) explore further. A failure names its seed, so `-t "seed S)"` replays it.
const SEEDS = Number(process.env.FERRY_RANDOM_SCHEDULES ?? 100);
const FIRST_SEED = Number(process.env.FERRY_RANDOM_SCHEDULES_FROM ?? 1);
// The agents' reconnect jitter is drawn from a second stream; FERRY_RANDOM_SCHEDULES_JITTER=N replays the same
// commands and faults with other jitter (agents coming back at other moments).
const JITTER = Number(process.env.FERRY_RANDOM_SCHEDULES_JITTER ?? 0);
const COMMANDS_PER_SCHEDULE = Number(process.env.FERRY_RANDOM_SCHEDULES_LENGTH ?? 10); // rounds per schedule
/** The model agent's own flush timeout: shorter than the coordinator's (QUICK_ROUNDS), as a real agent's. */
const MODEL_AGENT_FLUSH_TIMEOUT_MS = 1_500;
const STEPS = [RoundStep.PREPARE, RoundStep.DUMP, RoundStep.STORE, RoundStep.RESUME, RoundStep.DISCARD, RoundStep.STOP, RoundStep.FETCH, RoundStep.RESTORE];

type Fault =
  | { kind: 'none' }
  | { kind: 'step-fails'; host: string; step: RoundStep }
  | { kind: 'agent-dies-in-step'; host: string; step: RoundStep; backAfterMs: number }
  /** The coordinator dies as it sends `step`: this host's agent never gets it (the others may have theirs); a new one starts. */
  | { kind: 'coordinator-dies-in-step'; host: string; step: RoundStep }
  | { kind: 'rank-dies'; job: string; rank: number; afterMs: number }
  | { kind: 'host-reboots'; host: string; afterMs: number; backAfterMs: number }
  | { kind: 'partition'; host: string; afterMs: number; forMs: number }
  /** The host dies for good with its disk; the operator forgets it, and a new node takes its name, its disk empty. */
  | { kind: 'host-dies'; host: string; afterMs: number; forgetAfterMs: number }
  | { kind: 'coordinator-crash'; afterMs: number };

/** A fault that strikes when its host's agent is asked its step. */
const isStepFault = (f: Fault): f is Extract<Fault, { step: RoundStep }> => f.kind === 'step-fails' || f.kind === 'agent-dies-in-step' || f.kind === 'coordinator-dies-in-step';

type Command =
  | { op: 'checkpoint'; job: string; stop: boolean }
  | { op: 'restart'; job: string; hosts: string[]; epoch?: number }
  | { op: 'cancel'; job: string; /** the job's state when the cancel went out */ from?: string }
  | { op: 'migrate'; job: string; rank: number; to: string }
  | { op: 'drain'; host: string }
  | { op: 'undrain'; host: string };

class Schedule {
  /** What each host's disk holds: `job/imageSet/rank`. It outlives the host's agents. */
  readonly disks = new Map<string, Set<string>>(HOSTS.map((x) => [x, new Set<string>()]));
  /** Each host's ranks: they outlive an agent that dies (its processes run on). */
  readonly ranks = new Map<string, SimulatedRanks>(HOSTS.map((x) => [x, new SimulatedRanks()]));
  readonly log: string[] = [];
  faults: Fault[] = [];
  /** The step faults (by index in `faults`) that have struck: each strikes once. */
  private readonly fired = new Set<number>();
  /** Per job, committed epochs seen so far: they stay committed, or retention deletes them. */
  private readonly committed = new Map<string, Set<number>>(Object.keys(JOBS).map((x) => [x, new Set<number>()]));
  private readonly lastEpoch = new Map<string, number>();
  /** Each host's live agent's steps (none while its agent is dead). */
  private readonly liveSteps = new Map<string, ScriptedSteps>();
  /** Each host's live agent's image server: every agent started listens at a new address, as a real one. */
  private readonly servers = new Map<string, string>();
  private agentsStarted = 0;
  /** What went wrong outside a command (a forget refused): check() reports it. */
  private readonly problems: string[] = [];
  /** Set when the coordinator crashed in the round under way: its commands will never answer. */
  private crashed = { at: false };
  /** Epochs (`job/epoch`) that a forgotten host took with it (ferry forget's reply). */
  private readonly lost = new Set<string>();

  constructor(
    readonly random: () => number,
    /** The agents' reconnect jitter: its own stream, so how long an agent takes to come back replays too. */
    readonly jitter: () => number,
    readonly h: ControlPlaneHarness,
  ) {}

  /** A coordinator, four hosts, and the JOBS, each with its own settings drawn from the seed. */
  static async started(seed: number, jitter = JITTER): Promise<Schedule> {
    vi.useFakeTimers();
    const h = new ControlPlaneHarness(QUICK_ROUNDS);
    const s = new Schedule(mulberry32(seed), mulberry32(seed + 0x9e3779b9 * (1 + jitter)), h); // seeded, so a failing schedule replays
    h.startCoordinator();
    for (const host of HOSTS) s.startAgent(host);
    await vi.advanceTimersByTimeAsync(50);
    for (const [job, { world, hosts }] of Object.entries(JOBS)) {
      const autoRestarts = s.random() < 0.5 ? 2 : 0;
      const replicas = s.random() < 0.5 ? 1 : 0;
      const everyMs = s.random() < 0.3 ? 1_000 + Math.floor(s.random() * 5_000) : 0;
      s.log.push(`job ${job}: ${world} ranks on ${hosts}, auto-restart ${autoRestarts}, image replicas ${replicas}, checkpoint every ${everyMs || '-'} ms`);
      await h.submit({ job_id: job, world_size: world, hosts, auto_restarts: autoRestarts, own_image_replicas: replicas > 0, image_replicas: replicas, checkpoint_every_ms: everyMs });
      await vi.advanceTimersByTimeAsync(10);
    }
    return s;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.random() * xs.length)];
  }

  startAgent(host: string): void {
    if (this.liveSteps.has(host)) return; // one agent per host (two faults that each bring one back)
    const server = `tcp://images.${host}:${++this.agentsStarted}`;
    this.h.startAgent(host, { imageServer: server }, this.ranks.get(host)!, undefined, this.jitter);
    const steps = this.h.nodes.get(host)!.steps;
    this.liveSteps.set(host, steps);
    this.servers.set(host, server);
    steps.scriptsFlush = true; // (flushRanks)
    for (const step of STEPS) steps.scripts.set(step, (req) => this.answerLater(host, steps, req));
  }

  /** The host's agent dies (its steps under way never answer). */
  private crash(host: string): Promise<void> {
    this.liveSteps.delete(host);
    this.servers.delete(host);
    return this.h.crashAgent(host);
  }

  /**
   * A step takes a while, as on a real host (longer for the ones that move image bytes): commands, periodic
   * checkpoints, cancels and faults overlap. An agent that died meanwhile never answers.
   */
  private async answerLater(host: string, steps: ScriptedSteps, req: RoundRequest): Promise<StepOutcome> {
    const slow = req.step === RoundStep.DUMP || req.step === RoundStep.STORE || req.step === RoundStep.FETCH || req.step === RoundStep.RESTORE;
    await new Promise((r) => setTimeout(r, Math.floor(this.random() * (slow ? 300 : 50))));
    const out = this.liveSteps.get(host) === steps ? this.answer(host, req) : 'hang';
    return out === 'hang' ? new Promise<StepOutcome>(() => {}) : out;
  }

  /**
   * PREPARE, with the end-of-channel markers between ranks: each rank asked sends its markers and waits for
   * every peer's (the live copy of each rank where the catalog has it), so its flush ends only once every
   * peer was asked too, whatever host and agent asked it. A rank asked again for the same epoch is waited for;
   * one flushing for another epoch refuses (busy); one flushed for another is not connected. Like a real
   * agent, this one answers TIMEOUT after its own flush timeout, its ranks still flushing.
   */
  private async flushRanks(host: string, req: RoundRequest): Promise<StepOutcome> {
    const ranks = this.ranks.get(host)!;
    const failed = new Map<number, FerryError>();
    const mine: number[] = [];
    for (const r of req.ranks) {
      const key = `${req.job_id}/${r}`;
      const flushing = ranks.flushing.get(key);
      if (!ranks.has(req.job_id, r)) failed.set(r, new FerryError(ErrorCode.UNKNOWN_RANK, `rank ${r} does not run on ${host}`));
      else if (ranks.flushed.get(key) === req.epoch) continue;
      else if (flushing !== undefined && flushing !== req.epoch) failed.set(r, new FerryError(ErrorCode.BUSY, `rank ${r} is already flushing for ${flushing}`));
      else if (flushing === undefined && ranks.flushed.has(key)) failed.set(r, new FerryError(ErrorCode.UNKNOWN_RANK, `rank ${r} is flushed for ${ranks.flushed.get(key)}: not connected`));
      else {
        ranks.flushing.set(key, req.epoch);
        mine.push(r);
      }
    }
    const deadline = Date.now() + MODEL_AGENT_FLUSH_TIMEOUT_MS;
    for (;;) {
      this.endFlushes(req.job_id, req.epoch);
      const pending = mine.filter((r) => ranks.flushing.get(`${req.job_id}/${r}`) === req.epoch);
      if (pending.length === 0) break;
      if (Date.now() >= deadline) {
        for (const r of pending) failed.set(r, new FerryError(ErrorCode.TIMEOUT, `flush on ${host} not done within ${MODEL_AGENT_FLUSH_TIMEOUT_MS} ms`));
        break;
      }
      await new Promise((res) => setTimeout(res, 10));
    }
    return { failed, flush: { drained_messages: req.ranks.length, drained_bytes: 64, flush_ms: 1 } };
  }

  /** When every live rank of the job (where the catalog has it) was asked to flush for `epoch`: their flushes end. */
  private endFlushes(jobId: string, epoch: number): void {
    const rows = this.h.catalog?.listRanks(jobId);
    if (!rows) return; // the coordinator is down: tried again at the next turn
    const live = rows.filter((r) => this.ranks.get(r.host)?.has(jobId, r.rank));
    if (!live.every((r) => [this.ranks.get(r.host)!.flushing.get(`${jobId}/${r.rank}`), this.ranks.get(r.host)!.flushed.get(`${jobId}/${r.rank}`)].includes(epoch))) return;
    for (const ranks of this.ranks.values()) {
      for (const [key, e] of ranks.flushing) {
        if (e !== epoch || !key.startsWith(`${jobId}/`)) continue;
        ranks.flushing.delete(key);
        if (!ranks.resumeWhenFlushed.delete(key)) ranks.flushed.set(key, epoch); // (else woken as it ends)
      }
    }
  }

  private key(job: string, imageSet: string | number, rank: number): string {
    return `${job}/${imageSet}/${rank}`;
  }

  /** The image an image location names (the model writes IMAGES/JOB/SET/rank-R, the same on every host that holds a copy). */
  private imageKey(location: string): string {
    const m = /^\/images\/([^/]+)\/([^/]+)\/rank-(\d+)$/.exec(location);
    if (!m) throw new Error(`unexpected image location ${location}`);
    return this.key(m[1], m[2], Number(m[3]));
  }

  /** The model agent: what the step does to the host's disk and ranks, unless the fault strikes here. */
  private answer(host: string, req: RoundRequest): StepOutcome | Promise<StepOutcome> | 'hang' {
    const i = this.faults.findIndex((f, k) => !this.fired.has(k) && isStepFault(f) && f.host === host && f.step === req.step);
    const f = this.faults[i];
    if (f && isStepFault(f)) {
      this.fired.add(i);
      this.log.push(`  fault: ${f.kind} ${host} ${RoundStep[req.step]}`);
      if (f.kind === 'step-fails') {
        // The step does its work for the other ranks, as an agent does, and fails for one.
        const victim = req.dump_ranks[0] ?? req.sources[0]?.rank ?? req.ranks[0] ?? 0;
        const others: RoundRequest = {
          ...req,
          ranks: req.ranks.filter((r) => r !== victim),
          dump_ranks: req.dump_ranks.filter((r) => r !== victim),
          sources: req.sources.filter((x) => x.rank !== victim),
        };
        const failure = new FerryError(ErrorCode.CRIU_FAILED, `injected failure of ${RoundStep[req.step]} for rank ${victim}`);
        const out = this.perform(host, others);
        return out instanceof Promise ? out.then((o) => (o.failed.set(victim, failure), o)) : (out.failed.set(victim, failure), out);
      }
      if (f.kind === 'coordinator-dies-in-step') {
        this.crashed.at = true;
        void this.h.crashCoordinator().then(() => this.h.startCoordinator());
        return 'hang'; // (never sent to this agent)
      }
      queueMicrotask(() => void this.crash(host));
      setTimeout(() => this.startAgent(host), f.backAfterMs);
      return 'hang';
    }
    return this.perform(host, req);
  }

  /** What the step does to the host's disk and ranks. */
  private perform(host: string, req: RoundRequest): StepOutcome | Promise<StepOutcome> {
    const disk = this.disks.get(host)!;
    const node = this.h.nodes.get(host)!;
    switch (req.step) {
      case RoundStep.DUMP:
        for (const r of req.dump_ranks) disk.add(this.key(req.job_id, req.image_set, r));
        return {
          failed: new Map(),
          images: node.steps.dumpImages(req).map((img) => ({ ...img, location: `/images/${req.job_id}/${req.image_set}/rank-${img.rank}` })),
        };
      case RoundStep.STORE: {
        // The manifests of what this host's DUMP wrote (a DISCARD, or a host that lost its disk, took it away).
        const missing = req.dump_ranks.filter((r) => !disk.has(this.key(req.job_id, req.image_set, r)));
        return {
          failed: new Map(missing.map((r) => [r, new FerryError(ErrorCode.UNKNOWN_RANK, `no dump of rank ${r} on ${host}`)])),
          images: node.steps
            .dumpImages(req)
            .filter((img) => !missing.includes(img.rank!))
            .map((img) => ({ ...img, location: `/images/${req.job_id}/${req.image_set}/rank-${img.rank}` })),
        };
      }
      case RoundStep.DISCARD:
        for (const r of req.ranks) disk.delete(this.key(req.job_id, req.image_set, r));
        return { failed: new Map() };
      case RoundStep.FETCH: {
        const failed = new Map<number, FerryError>();
        for (const src of req.sources) {
          const from = this.imageKey(src.location);
          // (an image server whose agent ended: nothing listens at its address any more)
          if (src.server && this.servers.get(src.host) !== src.server) failed.set(src.rank, new FerryError(ErrorCode.UNAVAILABLE, `image server ${src.server}: no connection for 3000 ms`));
          else if (src.host !== host && this.h.hostState(src.host) !== 'up') failed.set(src.rank, new FerryError(ErrorCode.HOST_DOWN, `${src.host} does not answer`));
          else if (!this.disks.get(src.host)!.has(from)) failed.set(src.rank, new FerryError(ErrorCode.IMAGE_MISSING, `no image ${from} on ${src.host}`));
          else if (src.host !== host) disk.add(this.key(req.job_id, req.image_set, src.rank));
        }
        return { failed, bytesFetched: req.sources.length * 1000 };
      }
      case RoundStep.RESTORE: {
        const failed = new Map<number, FerryError>();
        const started = [];
        for (const src of req.sources) {
          const here = src.host === host ? disk.has(this.imageKey(src.location)) : disk.has(this.key(req.job_id, req.image_set, src.rank));
          if (!here) failed.set(src.rank, new FerryError(ErrorCode.IMAGE_MISSING, `rank ${src.rank}: no image at hand on ${host} (${src.location})`));
          else started.push(node.ranks.start({ jobId: req.job_id, rank: src.rank, worldSize: req.world_size, argv: [], cwd: '/', env: {} }));
        }
        return { failed, started };
      }
      case RoundStep.STOP:
        for (const r of req.dump_ranks) node.ranks.exit(req.job_id, r, 137);
        return { failed: new Map() };
      case RoundStep.PREPARE:
        return this.flushRanks(host, req);
      default:
        return { failed: new Map() };
    }
  }

  /** A job that runs, or can be restarted (one that ended before any commit is over). */
  private live(jobId: string): boolean {
    return !ENDED.includes(this.h.catalog!.getJob(jobId)!.state) || this.h.catalog!.lastCommittedEpoch(jobId) !== undefined;
  }

  /** The jobs that commands can still go to. */
  liveJobs(): string[] {
    return Object.keys(JOBS).filter((x) => this.live(x));
  }

  /** A command that can run in its job's present state. */
  command(): Command {
    const jobId = this.pick(this.liveJobs());
    const job = this.h.catalog!.getJob(jobId)!;
    const up = HOSTS.filter((x) => this.h.hostState(x) === 'up');
    if (job.state !== 'running') {
      const hosts = this.random() < 0.5 ? [] : [this.pick(up), this.pick(up)].filter((x, i, xs) => xs.indexOf(x) === i);
      // Now and then from an older committed epoch (a rollback), or one retention deleted (refused).
      const older = this.random() < 0.2 ? this.h.catalog!.listEpochs(jobId).filter((e) => e.state === EPOCH_COMMITTED || e.state === EPOCH_DELETED) : [];
      return { op: 'restart', job: jobId, hosts, ...(older.length > 0 ? { epoch: this.pick(older).epoch } : {}) };
    }
    const p = this.random();
    if (p < 0.05) return { op: 'cancel', job: jobId };
    if (p < 0.4) return { op: 'checkpoint', job: jobId, stop: this.random() < 0.3 };
    if (p < 0.7) {
      const rank = Math.floor(this.random() * JOBS[jobId].world);
      return { op: 'migrate', job: jobId, rank, to: this.pick(HOSTS.filter((x) => x !== this.h.catalog!.getRank(jobId, rank)!.host)) };
    }
    const drained = HOSTS.filter((x) => this.h.coordinator!.hosts.get(x)?.drained);
    if (drained.length > 0 && this.random() < 0.5) return { op: 'undrain', host: this.pick(drained) };
    return { op: 'drain', host: this.pick(HOSTS) };
  }

  /** A fault for the round; `late`: a second one, that strikes while the cluster recovers from the first. */
  faultFor(late = false): Fault {
    const p = late ? 0.35 + this.random() * 0.65 : this.random();
    const at = () => Math.floor(this.random() * (late ? 8_000 : 600));
    if (p < 0.35) return { kind: 'none' };
    // (An agent's STOP only sends SIGKILL: it fails for no rank, only by its agent being lost.)
    if (p < 0.6) return { kind: 'step-fails', host: this.pick(HOSTS), step: this.pick(STEPS.filter((x) => x !== RoundStep.STOP)) };
    if (p < 0.77) return { kind: 'agent-dies-in-step', host: this.pick(HOSTS), step: this.pick(STEPS), backAfterMs: Math.floor(this.random() * 4_000) };
    if (p < 0.8) return { kind: 'coordinator-dies-in-step', host: this.pick(HOSTS), step: this.pick(STEPS) };
    if (p < 0.85) {
      const job = this.pick(Object.keys(JOBS));
      return { kind: 'rank-dies', job, rank: Math.floor(this.random() * JOBS[job].world), afterMs: at() };
    }
    if (p < 0.9) return { kind: 'host-reboots', host: this.pick(HOSTS), afterMs: at(), backAfterMs: Math.floor(this.random() * 2 * HOST_REJOIN_GRACE_MS) };
    if (p < 0.93) return { kind: 'partition', host: this.pick(HOSTS), afterMs: at(), forMs: Math.floor(this.random() * 2 * HOST_REJOIN_GRACE_MS) };
    // (Not as a second fault: another fault's agent coming back there would be the dead host back without its disk.)
    if (p < 0.96 && !late) return { kind: 'host-dies', host: this.pick(HOSTS), afterMs: at(), forgetAfterMs: 1_000 + Math.floor(this.random() * 2 * HOST_REJOIN_GRACE_MS) };
    return { kind: 'coordinator-crash', afterMs: at() };
  }

  /**
   * Runs commands (the first at once, the others a moment later, as operators at other terminals)
   * with the fault, and waits until the cluster has settled. Their errors, in order.
   */
  async run(cmds: Command[], faults: Fault[]): Promise<unknown[]> {
    this.faults = faults;
    this.fired.clear();
    this.log.push(`${cmds.map((x) => JSON.stringify(x)).join(' and ')} with ${faults.map((f) => JSON.stringify(f)).join(' then ') || 'no fault'}`);
    const crashed = (this.crashed = { at: false });
    for (const fault of faults) this.strikeLater(fault, crashed);
    const outs: ({ error?: unknown } | undefined)[] = cmds.map(() => undefined);
    const c = this.h.coordinator!;
    cmds.forEach((cmd, i) => {
      setTimeout(() => {
        if (crashed.at) return (outs[i] = { error: new Error('not sent: the coordinator had crashed') });
        if (cmd.op === 'cancel') cmd.from = this.h.catalog!.getJob(cmd.job)!.state;
        this.start(c, cmd).then(
          () => (outs[i] = {}),
          (error) => (outs[i] = { error }),
        );
      }, i === 0 ? 0 : Math.floor(this.random() * 400));
    });
    for (let t = 0; outs.some((o) => !o) && !crashed.at && t < 30_000; t += 100) await vi.advanceTimersByTimeAsync(100);
    if (outs.some((o) => !o) && !crashed.at) throw new Error('a command neither finished nor failed within 30 s');
    for (const o of outs) if (o?.error) this.log.push(`  -> ${o.error instanceof Error ? o.error.message : String(o.error)}`);
    // Let everything settle: agents back, late RESUMEs and DISCARDs, a crashed coordinator's recovery, the rejoin grace.
    await vi.advanceTimersByTimeAsync(Math.max(3_000, ...faults.map((f) => this.settleMs(f))));
    await this.quiesce();
    for (const job of Object.keys(JOBS)) {
      this.log.push(`  job ${job} ${this.h.catalog!.getJob(job)!.state}; ranks ${this.rankPlaces(job)}; processes ${this.processes(job).join(' ')}`);
    }
    return outs.map((o) => o?.error);
  }

  /** Sets off a timed fault (a step fault waits in answer() for its step). */
  private strikeLater(fault: Fault, crashed: { at: boolean }): void {
    if (fault.kind === 'rank-dies') {
      setTimeout(() => {
        for (const [host, ranks] of this.ranks) if (ranks.has(fault.job, fault.rank)) (this.log.push(`  fault: rank ${fault.rank} of ${fault.job} dies on ${host}`), ranks.exit(fault.job, fault.rank, 139));
      }, fault.afterMs);
    }
    if (fault.kind === 'host-reboots') {
      setTimeout(() => {
        this.log.push(`  fault: host ${fault.host} reboots`);
        void this.crash(fault.host);
        this.ranks.set(fault.host, new SimulatedRanks()); // its rank processes died with it; its disk stays
        setTimeout(() => this.startAgent(fault.host), fault.backAfterMs);
      }, fault.afterMs);
    }
    if (fault.kind === 'partition') {
      setTimeout(() => {
        this.log.push(`  fault: host ${fault.host} cut off`);
        this.h.partition(fault.host, true);
        setTimeout(() => (this.log.push(`  host ${fault.host} joins again`), this.h.partition(fault.host, false)), fault.forMs);
      }, fault.afterMs);
    }
    if (fault.kind === 'host-dies') {
      setTimeout(() => {
        this.log.push(`  fault: host ${fault.host} dies with its disk`);
        void this.crash(fault.host);
        this.ranks.set(fault.host, new SimulatedRanks());
        this.disks.set(fault.host, new Set());
        setTimeout(() => void this.forget(fault.host), fault.forgetAfterMs);
      }, fault.afterMs);
    }
    if (fault.kind === 'coordinator-crash') {
      setTimeout(() => {
        crashed.at = true;
        this.log.push('  fault: the coordinator crashes');
        void this.h.crashCoordinator().then(() => this.h.startCoordinator());
      }, fault.afterMs);
    }
  }

  /** The operator forgets a dead host (again a second later while a job on it is busy), then a new node takes its name. */
  private async forget(host: string): Promise<void> {
    for (let tries = 0; tries < 60; tries++) {
      const c = this.h.coordinator;
      if (!c) return void setTimeout(() => void this.forget(host), 1_000); // a crashed one, about to be back
      try {
        const lost = (await forgetHost(c, host)).lost_epochs ?? [];
        for (const e of lost) this.lost.add(`${e.job_id}/${e.epoch}`);
        this.log.push(`  host ${host} forgotten${lost.length ? `; lost epochs ${lost.map((e) => `${e.job_id}/${e.epoch}`).join(' ')}` : ''}`);
        break;
      } catch (err) {
        // Busy (an operation on a job with ranks or images there) is tried again; anything else is a bug.
        if (!(err instanceof FerryError) || err.code !== ErrorCode.BUSY) return void this.problems.push(`ferry forget ${host} failed: ${errorMessage(err)}`);
      }
      await new Promise((r) => setTimeout(r, 1_000));
    }
    setTimeout(() => (this.log.push(`  a new node takes the name ${host}`), this.startAgent(host)), 2_000);
  }

  /** How long after a round the cluster needs to settle from `f`: agents back, late RESUMEs and DISCARDs, a crashed coordinator's recovery, the rejoin grace. */
  private settleMs(f: Fault): number {
    const after = 'afterMs' in f ? f.afterMs : 0;
    if (f.kind === 'host-reboots') return after + Math.max(f.backAfterMs, HOST_REJOIN_GRACE_MS) + 15_000;
    if (f.kind === 'partition') return after + Math.max(f.forMs, HOST_REJOIN_GRACE_MS) + 15_000;
    if (f.kind === 'host-dies') return after + Math.max(f.forgetAfterMs, HOST_REJOIN_GRACE_MS) + 20_000;
    if (f.kind === 'agent-dies-in-step' || f.kind === 'coordinator-crash' || f.kind === 'coordinator-dies-in-step') return after + HOST_REJOIN_GRACE_MS + 6_000;
    return after + 3_000;
  }

  /** Waits for a moment with no epoch in flight and no operation under way (periodic checkpoints go on meanwhile). */
  private async quiesce(): Promise<void> {
    // A job that is ending (failed by the last step of a periodic checkpoint, say) ends once its ranks have: SIGKILL
    // follows the SIGTERM RANK_KILL_GRACE_MS later. (A rank on a host that is down may keep it ending longer.)
    const ending = () =>
      Object.keys(JOBS).some((x) => {
        const job = this.h.catalog!.getJob(x)!;
        return job.ending !== null && !ENDED.includes(job.state);
      });
    // (a periodic checkpoint's tick may wait for the job's image copies before its epoch begins)
    const working = (x: string) => this.h.coordinator!.operations.busy(x) || this.h.coordinator!.periodic.isTicking(x);
    const busy = () => this.h.catalog!.inFlightEpochs().length > 0 || Object.keys(JOBS).some(working) || ending();
    for (let t = 0; busy() && t < 60_000; t += 10) await vi.advanceTimersByTimeAsync(10);
  }

  private start(c: Coordinator, cmd: Command): Promise<unknown> {
    switch (cmd.op) {
      case 'checkpoint':
        return c.checkpoints.checkpoint(cmd.job, { stop: cmd.stop });
      case 'restart':
        return c.moves.restart(cmd.job, { ...(cmd.hosts.length ? { hosts: cmd.hosts } : {}), ...(cmd.epoch ? { epoch: cmd.epoch } : {}) });
      case 'cancel':
        return c.jobs.signal(cmd.job, 'SIGTERM');
      case 'migrate':
        return c.moves.migrate(cmd.job, new Map([[cmd.rank, cmd.to]]));
      case 'drain':
        return drainHost(c, cmd.host, 'random schedule');
      case 'undrain':
        return Promise.resolve(undrainHost(c, cmd.host));
    }
  }

  /** Where the job's rank processes run: `rank@host`. */
  processes(jobId: string): string[] {
    return [...this.ranks].flatMap(([host, ranks]) => [...ranks.live.values()].filter((p) => p.job_id === jobId).map((p) => `${p.rank}@${host}`)).sort();
  }

  rankPlaces(jobId: string): string {
    return this.h.catalog!.listRanks(jobId).map((r) => `${r.rank}@${r.host}:${r.state}`).join(' ');
  }

  /** The promises that hold after any commands, failed or not. */
  check(cmds: Command[], faults: Fault[], errors: unknown[]): void {
    expect(this.problems, 'what the schedule could not do').toEqual([]);
    expect(this.h.catalog!.inFlightEpochs(), 'an epoch left in flight').toEqual([]);
    expect(this.h.catalog!.openFlushes(), 'a flush left open (a coordinator restarted now would flush the job again)').toEqual([]);
    for (const job of Object.keys(JOBS)) this.checkJob(job);
    // A command that failed of a step's failure (or of an agent back at once) leaves a running job running,
    // unless another command that touches that job ran beside it (a checkpoint --stop, a drain). Not of a
    // RESUME's: a rank that cannot be woken after a commit or a move fails its job, by design. Nor of two
    // RESTOREs': a migration's on its target, then the one that puts the rank back on its source, leave the
    // rank nowhere, and its job fails, by design too.
    const restoresFailed = faults.filter((f) => f.kind === 'step-fails' && f.step === RoundStep.RESTORE).length;
    const harmless =
      restoresFailed < 2 &&
      faults.every((f) => f.kind === 'none' || (f.kind === 'step-fails' && f.step !== RoundStep.RESUME) || (f.kind === 'agent-dies-in-step' && f.backAfterMs < 1_000));
    // A cancel ends its job, also one being restarted or checkpointed (or waiting for an automatic restart).
    // Not a stopped one: a cancel does nothing to it, and a restart may run it again.
    cmds.forEach((cmd, i) => {
      if (cmd.op !== 'cancel' || errors[i] || cmd.from === undefined || cmd.from === 'stopped') return;
      expect(this.h.catalog!.getJob(cmd.job)!.state, `cancelled job ${cmd.job} (${cmd.from} then) ends`).not.toMatch(/^(running|pending)$/);
    });
    cmds.forEach((cmd, i) => {
      if (!errors[i] || !harmless || cmd.op === 'restart' || cmd.op === 'cancel' || (cmd.op === 'checkpoint' && cmd.stop) || !('job' in cmd)) return;
      if (cmds.some((other, k) => k !== i && (!('job' in other) || other.job === cmd.job))) return;
      expect(this.h.catalog!.getJob(cmd.job)!.state, `a failed command leaves running job ${cmd.job} running`).toBe('running');
    });
  }

  private checkJob(jobId: string): void {
    const cat = this.h.catalog!;
    const committed = this.committed.get(jobId)!;
    const epochs = cat.listEpochs(jobId);
    const newest = Math.max(0, ...epochs.map((e) => e.epoch));
    expect(newest, `${jobId}: epoch ids only grow`).toBeGreaterThanOrEqual(this.lastEpoch.get(jobId) ?? 0);
    this.lastEpoch.set(jobId, newest);
    // A committed epoch stays committed, unless retention deleted it: for newer ones (it keeps KEEP_EPOCHS),
    // or because a restart from an older epoch left it in another history. Never the last committed one.
    for (const e of epochs) if (e.state === EPOCH_COMMITTED) committed.add(e.epoch);
    for (const id of committed) {
      const states = this.lost.has(`${jobId}/${id}`) ? [EPOCH_LOST] : [EPOCH_COMMITTED, EPOCH_DELETED];
      const state = cat.getEpoch(jobId, id)?.state;
      if (state === undefined) {
        // Forgotten once deleted (or lost): only with ENDED_EPOCHS_LISTED newer epochs that ended unkept still listed.
        const newer = epochs.filter((e) => e.epoch > id && [EPOCH_ABORTED, EPOCH_DELETED, EPOCH_LOST].includes(e.state)).length;
        expect(newer, `${jobId}: epoch ${id} is forgotten only behind ${ENDED_EPOCHS_LISTED} newer ended ones`).toBeGreaterThanOrEqual(ENDED_EPOCHS_LISTED);
        continue;
      }
      expect(states, `${jobId}: epoch ${id} stays committed or is deleted by retention, or is lost with a forgotten host`).toContain(state);
    }
    const committedNow = epochs.filter((e) => e.state === EPOCH_COMMITTED).length;
    if (committed.size > 0 && ![...this.lost].some((x) => x.startsWith(`${jobId}/`))) expect(committedNow, `${jobId}: a job with a committed epoch keeps one`).toBeGreaterThan(0);
    expect(committedNow, `${jobId}: at most ${KEEP_EPOCHS} committed epochs keep their images`).toBeLessThanOrEqual(KEEP_EPOCHS);
    for (const id of committed) {
      if (cat.getEpoch(jobId, id)?.state !== EPOCH_COMMITTED) continue;
      for (const img of cat.epochImages(jobId, id)) {
        if (img.removedMs !== null) continue;
        expect(this.disks.get(img.host)!.has(this.imageKey(img.location)), `${jobId}: epoch ${id} rank ${img.rank}: its image on ${img.host}`).toBe(true);
      }
      for (const r of cat.epochReplicas(jobId, id)) {
        if (r.state === 'stored') expect(this.disks.get(r.host)!.has(this.key(jobId, id, r.rank)), `${jobId}: epoch ${id} rank ${r.rank}: its replica on ${r.host}`).toBe(true);
      }
    }
    const job = cat.getJob(jobId)!;
    const live = this.processes(jobId);
    const flushed = [...this.ranks].flatMap(([host, ranks]) =>
      [...ranks.flushed.keys(), ...[...ranks.flushing.keys()].map((k) => `${k} (flushing)`)].filter((k) => k.startsWith(`${jobId}/`)).map((k) => `${k}@${host}`),
    );
    if (job.state === 'running' && job.ending !== null) {
      // Still ending after quiesce() waited: a rank on a host that is down. Its end is the next round's to see.
      this.log.push(`  job ${jobId} is still ending (${job.ending.detail})`);
    } else if (job.state === 'running') {
      const expected = cat.listRanks(jobId).map((r) => `${r.rank}@${r.host}`).sort();
      expect(cat.listRanks(jobId).map((r) => r.state), `running job ${jobId}: every rank running`).toEqual(Array(JOBS[jobId].world).fill('running'));
      expect(live, `running job ${jobId}: each rank runs once, where the catalog says`).toEqual(expected);
      expect(flushed, `running job ${jobId}: no rank left flushed`).toEqual([]);
    } else {
      expect(live, `${job.state} job ${jobId} runs nothing`).toEqual([]);
    }
  }

  /** The last committed epoch of each job restarts on a healthy cluster. */
  async finalRestarts(): Promise<void> {
    for (const host of HOSTS) if (this.h.coordinator!.hosts.get(host)?.drained) undrainHost(this.h.coordinator!, host);
    for (const job of Object.keys(JOBS)) this.h.coordinator!.periodic.set(job, 0); // a tick would make the --stop below busy
    await this.quiesce();
    for (const job of Object.keys(JOBS)) {
      if (!this.h.catalog!.lastCommittedEpoch(job)) continue;
      if (this.h.catalog!.getJob(job)!.state === 'running') await this.run([{ op: 'checkpoint', job, stop: true }], []);
      if (this.h.catalog!.getJob(job)!.state === 'running') throw new Error(`a checkpoint --stop of ${job} on a healthy cluster left it running`);
      const restart: Command = { op: 'restart', job, hosts: [] };
      const [error] = await this.run([restart], []);
      expect(error, `${job}: the last committed epoch restarts`).toBeUndefined();
      this.check([restart], [], [undefined]);
      expect(this.h.catalog!.getJob(job)!.state).toBe('running');
    }
  }
}

let schedule: Schedule | undefined;

afterEach(async () => {
  await schedule?.h.stop();
  schedule = undefined;
});

/**
 * Schedules that once found a bug, run with the rest: [seed, rounds, what it found, jitter if not 0]. A change to the model
 * changes the random draws: since STORE (2026-12-02) 1568 and 6092 replay other histories (6092's bug has a
 * move-protocol test of its own; 1568's was in this checker); 6081 still fails without its fix. 24 with jitter 93
 * (found by CI while the jitter was still Math.random's) fails without its fix too.
 */
const REGRESSIONS: [number, number, string, number?][] = [
  [1568, 10, 'a job failing after a periodic checkpoint, still ending when checked'],
  [6081, 30, 'a migration finished late on a target whose new agent came back without the restored rank'],
  [6092, 30, 'a failed restart that left its stopped job ending'],
  [24, 10, 'the late exit of a stale copy taken for the restored rank on the same host', 93],
  [13108, 10, 'a flush finished after a lost agent came back, whose PREPARE failed once there: the job failed'],
  [27264, 10, "a migration whose RESTORE failed on its target and again on its source: the job fails, by design"],
];

/** One schedule: `rounds` rounds of commands and faults, each checked, then every job restarted. */
async function runSchedule(seed: number, rounds: number, jitter?: number): Promise<void> {
  schedule = await Schedule.started(seed, jitter);
  const s = schedule;
  try {
    for (let i = 0; i < rounds && s.liveJobs().length > 0; i++) {
      const cmds = [s.command()];
      // Another operator at the same moment: now and then a cancel of the job the first command is about.
      if (s.random() < 0.25) cmds.push('job' in cmds[0] && s.random() < 0.3 ? { op: 'cancel', job: cmds[0].job } : s.command());
      const faults: Fault[] = [s.faultFor()].filter((f) => f.kind !== 'none');
      if (faults.length > 0 && faults[0].kind !== 'host-dies' && s.random() < 0.25) faults.push(s.faultFor(true)); // while the cluster recovers from the first
      const errors = await s.run(cmds, faults);
      s.check(cmds, faults, errors);
    }
    await s.finalRestarts();
  } catch (err) {
    const seen = HOSTS.map((x) => `${x}: ${s.h.nodes.get(x)!.steps.seen.map((v) => `${RoundStep[v.step]}[${v.step === RoundStep.DUMP || v.step === RoundStep.STOP ? v.dumpRanks : v.ranks}]`).join(' ')}`);
    const events = process.env.FERRY_RANDOM_SCHEDULES_EVENTS ? s.h.catalog!.listEvents({ limit: 10_000 }).slice(-60).map((e) => `  event ${e.kind}: ${e.message}`) : [];
    throw new Error(`seed ${seed}${jitter ?? JITTER ? `, jitter ${jitter ?? JITTER}` : ''}:\n${s.log.join('\n')}\n${seen.join('\n')}\n${events.join('\n')}\n${err instanceof Error ? err.message : String(err)}`);
  }
}

describe('random schedules of commands and faults', () => {
  for (let seed = FIRST_SEED; seed < FIRST_SEED + SEEDS; seed++) {
    it(`keeps every promise (seed ${seed})`, () => runSchedule(seed, COMMANDS_PER_SCHEDULE));
  }
  for (const [seed, rounds, what, jitter] of REGRESSIONS) {
    it(`keeps every promise (seed ${seed}${jitter ? ` jitter ${jitter}` : ''}, ${rounds} rounds: ${what})`, () => runSchedule(seed, rounds, jitter));
  }
});
