// Random schedules of operator commands and faults over the in-memory
// transport: checkpoints (and --stop), restarts, migrations and drains of a
// job (with or without automatic restarts and image replicas), each command
// with at most one fault somewhere in it: a step that fails for a rank, an
// agent that dies in a step and comes back with its ranks, a rank that dies, a
// host that reboots (its ranks die with it, its disk stays; back before or
// after the rejoin grace), a coordinator crash. The hand-written cases pin each
// fault at a chosen step; these walk the combinations nobody wrote down. After
// every command, once the cluster has settled, the brief's promises must hold:
// - no epoch is left in flight; epoch ids only grow; a committed epoch stays
//   committed unless retention deleted it, and one always stays;
// - every image of a committed epoch, and every stored replica, is on the disk
//   of the host the catalog names (each host's disk is modelled: DUMP writes
//   images, FETCH copies them only from a live host that has them, DISCARD
//   removes them, RESTORE needs them at hand);
// - a running job runs each rank exactly once, where the catalog says, and
//   none of them is left flushed; a job that is not running runs nothing;
// - a command that failed of a step's failure (or an agent back within a
//   second) left a running job running;
// and at the end, the last committed epoch restarts on a healthy cluster.
// A failing schedule prints its seed, the commands it ran and what each host was asked.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode, RoundStep, type RoundRequest } from '../../src/gen/proto.js';
import { FerryError } from '../../src/common/ferry-error.js';
import { EPOCH_COMMITTED, EPOCH_DELETED } from '../../src/coordinator/catalog-types.js';
import { HOST_REJOIN_GRACE_MS, KEEP_EPOCHS } from '../../src/coordinator/coordinator-config.js';
import { drainHost, undrainHost } from '../../src/coordinator/host-draining.js';
import { ControlPlaneHarness, QUICK_ROUNDS } from './control-plane-harness.js';
import { SimulatedRanks } from './simulated-node.js';
import type { StepOutcome } from '../../src/agent/rank-steps.js';

const HOSTS = ['a', 'b', 'c', 'd'];
const WORLD = 4;
// 100 schedules take about 40 s; FERRY_RANDOM_SCHEDULES=N (and FERRY_RANDOM_SCHEDULES_FROM=S, the first
// seed) explore further. A failure names its seed, so `-t "seed S)"` replays it.
const SEEDS = Number(process.env.FERRY_RANDOM_SCHEDULES ?? 100);
const FIRST_SEED = Number(process.env.FERRY_RANDOM_SCHEDULES_FROM ?? 1);
const COMMANDS_PER_SCHEDULE = 10;
const STEPS = [RoundStep.PREPARE, RoundStep.DUMP, RoundStep.RESUME, RoundStep.DISCARD, RoundStep.STOP, RoundStep.FETCH, RoundStep.RESTORE];

/** mulberry32: a small seeded generator, so a failing schedule can be replayed from its seed. */
function generator(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Fault =
  | { kind: 'none' }
  | { kind: 'step-fails'; host: string; step: RoundStep }
  | { kind: 'agent-dies-in-step'; host: string; step: RoundStep; backAfterMs: number }
  | { kind: 'rank-dies'; rank: number; afterMs: number }
  | { kind: 'host-reboots'; host: string; afterMs: number; backAfterMs: number }
  | { kind: 'coordinator-crash'; afterMs: number };

type Command =
  | { op: 'checkpoint'; stop: boolean }
  | { op: 'restart'; hosts: string[] }
  | { op: 'migrate'; rank: number; to: string }
  | { op: 'drain'; host: string }
  | { op: 'undrain'; host: string };

class Schedule {
  /** What each host's disk holds: `job/imageSet/rank`. It outlives the host's agents. */
  readonly disks = new Map<string, Set<string>>(HOSTS.map((x) => [x, new Set<string>()]));
  /** Each host's ranks: they outlive an agent that dies (its processes run on). */
  readonly ranks = new Map<string, SimulatedRanks>(HOSTS.map((x) => [x, new SimulatedRanks()]));
  readonly log: string[] = [];
  fault: Fault = { kind: 'none' };
  private faultFired = false;
  /** Committed epochs seen so far: they stay committed, or retention deletes them. */
  private readonly committed = new Set<number>();
  private lastEpoch = 0;

  constructor(
    readonly random: () => number,
    readonly h: ControlPlaneHarness,
  ) {}

  /** A coordinator, four hosts, and job j of 4 ranks on a and b, its own settings drawn from the seed. */
  static async started(seed: number): Promise<Schedule> {
    vi.useFakeTimers();
    const h = new ControlPlaneHarness(QUICK_ROUNDS);
    const s = new Schedule(generator(seed), h);
    h.startCoordinator();
    for (const host of HOSTS) s.startAgent(host);
    await vi.advanceTimersByTimeAsync(50);
    const autoRestarts = s.random() < 0.5 ? 2 : 0;
    const replicas = s.random() < 0.5 ? 1 : 0;
    s.log.push(`job j: auto-restart ${autoRestarts}, image replicas ${replicas}`);
    await h.submit({ world_size: WORLD, hosts: ['a', 'b'], auto_restarts: autoRestarts, own_image_replicas: replicas > 0, image_replicas: replicas });
    await vi.advanceTimersByTimeAsync(10);
    return s;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.random() * xs.length)];
  }

  startAgent(host: string): void {
    this.h.startAgent(host, {}, this.ranks.get(host)!);
    const steps = this.h.nodes.get(host)!.steps;
    for (const step of STEPS) steps.scripts.set(step, (req) => this.answer(host, req));
  }

  async crashAgent(host: string): Promise<void> {
    for (const [key, agent] of this.h.agents) if (key.startsWith(`${host}#`) && agent.state !== 'stopped') await agent.stop();
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
  private answer(host: string, req: RoundRequest): StepOutcome | 'hang' {
    const f = this.fault;
    if (!this.faultFired && (f.kind === 'step-fails' || f.kind === 'agent-dies-in-step') && f.host === host && f.step === req.step) {
      this.faultFired = true;
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
        const out = this.perform(host, others);
        out.failed.set(victim, new FerryError(ErrorCode.CRIU_FAILED, `injected failure of ${RoundStep[req.step]} for rank ${victim}`));
        return out;
      }
      queueMicrotask(() => void this.crashAgent(host));
      setTimeout(() => this.startAgent(host), f.backAfterMs);
      return 'hang';
    }
    return this.perform(host, req);
  }

  /** What the step does to the host's disk and ranks. */
  private perform(host: string, req: RoundRequest): StepOutcome {
    const disk = this.disks.get(host)!;
    const node = this.h.nodes.get(host)!;
    switch (req.step) {
      case RoundStep.DUMP:
        for (const r of req.dump_ranks) disk.add(this.key(req.job_id, req.image_set, r));
        return {
          failed: new Map(),
          images: node.steps.dumpImages(req).map((img) => ({ ...img, location: `/images/${req.job_id}/${req.image_set}/rank-${img.rank}` })),
        };
      case RoundStep.DISCARD:
        for (const r of req.ranks) disk.delete(this.key(req.job_id, req.image_set, r));
        return { failed: new Map() };
      case RoundStep.FETCH: {
        const failed = new Map<number, FerryError>();
        for (const src of req.sources) {
          const from = this.imageKey(src.location);
          if (src.host !== host && this.h.hostState(src.host) !== 'up') failed.set(src.rank, new FerryError(ErrorCode.HOST_DOWN, `${src.host} does not answer`));
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
        return { failed: new Map(), flush: { drained_messages: req.ranks.length, drained_bytes: 64, flush_ms: 1 } };
      default:
        return { failed: new Map() };
    }
  }

  /** A command that can run in the job's present state. */
  command(): Command {
    const job = this.h.catalog!.getJob('j')!;
    const up = HOSTS.filter((x) => this.h.hostState(x) === 'up');
    if (job.state !== 'running') return { op: 'restart', hosts: this.random() < 0.5 ? [] : [this.pick(up), this.pick(up)].filter((x, i, xs) => xs.indexOf(x) === i) };
    const p = this.random();
    if (p < 0.4) return { op: 'checkpoint', stop: this.random() < 0.3 };
    if (p < 0.7) {
      const rank = Math.floor(this.random() * WORLD);
      return { op: 'migrate', rank, to: this.pick(HOSTS.filter((x) => x !== this.h.catalog!.getRank('j', rank)!.host)) };
    }
    const drained = HOSTS.filter((x) => this.h.coordinator!.hosts.get(x)?.drained);
    if (drained.length > 0 && this.random() < 0.5) return { op: 'undrain', host: this.pick(drained) };
    return { op: 'drain', host: this.pick(HOSTS) };
  }

  faultFor(): Fault {
    const p = this.random();
    if (p < 0.35) return { kind: 'none' };
    // (An agent's STOP only sends SIGKILL: it fails for no rank, only by its agent being lost.)
    if (p < 0.6) return { kind: 'step-fails', host: this.pick(HOSTS), step: this.pick(STEPS.filter((x) => x !== RoundStep.STOP)) };
    if (p < 0.8) return { kind: 'agent-dies-in-step', host: this.pick(HOSTS), step: this.pick(STEPS), backAfterMs: Math.floor(this.random() * 4_000) };
    if (p < 0.85) return { kind: 'rank-dies', rank: Math.floor(this.random() * WORLD), afterMs: Math.floor(this.random() * 600) };
    if (p < 0.92) return { kind: 'host-reboots', host: this.pick(HOSTS), afterMs: Math.floor(this.random() * 600), backAfterMs: Math.floor(this.random() * 2 * HOST_REJOIN_GRACE_MS) };
    return { kind: 'coordinator-crash', afterMs: Math.floor(this.random() * 600) };
  }

  /** Runs one command with its fault, and waits until the cluster has settled. */
  async run(cmd: Command, fault: Fault): Promise<{ error?: unknown }> {
    this.fault = fault;
    this.faultFired = false;
    this.log.push(`${JSON.stringify(cmd)} with ${JSON.stringify(fault)}`);
    const c = this.h.coordinator!;
    if (fault.kind === 'rank-dies') {
      setTimeout(() => {
        for (const [host, ranks] of this.ranks) if (ranks.has('j', fault.rank)) (this.log.push(`  fault: rank ${fault.rank} dies on ${host}`), ranks.exit('j', fault.rank, 139));
      }, fault.afterMs);
    }
    if (fault.kind === 'host-reboots') {
      setTimeout(() => {
        this.log.push(`  fault: host ${fault.host} reboots`);
        void this.crashAgent(fault.host);
        this.ranks.set(fault.host, new SimulatedRanks()); // its rank processes died with it; its disk stays
        setTimeout(() => this.startAgent(fault.host), fault.backAfterMs);
      }, fault.afterMs);
    }
    let crashed = false;
    if (fault.kind === 'coordinator-crash') {
      setTimeout(() => {
        crashed = true;
        this.log.push('  fault: the coordinator crashes');
        void this.h.crashCoordinator().then(() => this.h.startCoordinator());
      }, fault.afterMs);
    }
    let out: { error?: unknown } | undefined;
    const op =
      cmd.op === 'checkpoint'
        ? c.checkpoints.checkpoint('j', { stop: cmd.stop })
        : cmd.op === 'restart'
          ? c.moves.restart('j', cmd.hosts.length ? { hosts: cmd.hosts } : {})
          : cmd.op === 'migrate'
            ? c.moves.migrate('j', new Map([[cmd.rank, cmd.to]]))
            : cmd.op === 'drain'
              ? drainHost(c, cmd.host, 'random schedule')
              : Promise.resolve(undrainHost(c, cmd.host));
    op.then(
      () => (out = {}),
      (error) => (out = { error }),
    );
    for (let t = 0; !out && !crashed && t < 30_000; t += 100) await vi.advanceTimersByTimeAsync(100);
    if (!out && !crashed) throw new Error('the command neither finished nor failed within 30 s');
    if (out?.error) this.log.push(`  -> ${out.error instanceof Error ? out.error.message : String(out.error)}`);
    // Let everything settle: agents back, late RESUMEs and DISCARDs, a crashed coordinator's recovery, the rejoin grace.
    const waited =
      fault.kind === 'host-reboots'
        ? Math.max(fault.backAfterMs, HOST_REJOIN_GRACE_MS) + 15_000
        : fault.kind === 'agent-dies-in-step' || fault.kind === 'coordinator-crash'
          ? HOST_REJOIN_GRACE_MS + 6_000
          : 3_000;
    await vi.advanceTimersByTimeAsync(waited);
    this.log.push(`  job ${this.h.catalog!.getJob('j')!.state}; ranks ${this.rankPlaces()}; processes ${this.processes().join(' ')}`);
    return out ?? {};
  }

  /** Where the job's rank processes run: `rank@host`. */
  processes(): string[] {
    return [...this.ranks].flatMap(([host, ranks]) => [...ranks.live.values()].filter((p) => p.job_id === 'j').map((p) => `${p.rank}@${host}`)).sort();
  }

  rankPlaces(): string {
    return this.h.catalog!.listRanks('j').map((r) => `${r.rank}@${r.host}:${r.state}`).join(' ');
  }

  /** The promises that hold after any command, failed or not. */
  check(cmd: Command, fault: Fault, error: unknown): void {
    const cat = this.h.catalog!;
    expect(cat.inFlightEpochs(), 'an epoch left in flight').toEqual([]);
    const epochs = cat.listEpochs('j');
    const newest = Math.max(0, ...epochs.map((e) => e.epoch));
    expect(newest, 'epoch ids only grow').toBeGreaterThanOrEqual(this.lastEpoch);
    this.lastEpoch = newest;
    // A committed epoch stays committed, unless retention deleted it: for newer ones (it keeps KEEP_EPOCHS),
    // or because a restart from an older epoch left it in another history. Never the last committed one.
    for (const e of epochs) if (e.state === EPOCH_COMMITTED) this.committed.add(e.epoch);
    for (const id of this.committed) expect([EPOCH_COMMITTED, EPOCH_DELETED], `epoch ${id} stays committed or is deleted by retention`).toContain(cat.getEpoch('j', id)?.state);
    const committedNow = epochs.filter((e) => e.state === EPOCH_COMMITTED).length;
    if (this.committed.size > 0) expect(committedNow, 'a job with a committed epoch keeps one').toBeGreaterThan(0);
    expect(committedNow, `at most ${KEEP_EPOCHS} committed epochs keep their images`).toBeLessThanOrEqual(KEEP_EPOCHS);
    for (const id of this.committed) {
      if (cat.getEpoch('j', id)?.state !== EPOCH_COMMITTED) continue;
      for (const img of cat.epochImages('j', id)) {
        if (img.removedMs !== null) continue;
        expect(this.disks.get(img.host)!.has(this.imageKey(img.location)), `epoch ${id} rank ${img.rank}: its image on ${img.host}`).toBe(true);
      }
      for (const r of cat.epochReplicas('j', id)) {
        if (r.state === 'stored') expect(this.disks.get(r.host)!.has(this.key('j', id, r.rank)), `epoch ${id} rank ${r.rank}: its replica on ${r.host}`).toBe(true);
      }
    }
    const job = cat.getJob('j')!;
    const live = this.processes();
    const flushed = [...this.ranks].flatMap(([host, ranks]) => [...ranks.flushed.keys()].filter((k) => k.startsWith('j/')).map((k) => `${k}@${host}`));
    if (job.state === 'running') {
      const expected = cat.listRanks('j').map((r) => `${r.rank}@${r.host}`).sort();
      expect(cat.listRanks('j').map((r) => r.state), 'a running job: every rank running').toEqual(Array(WORLD).fill('running'));
      expect(live, 'a running job: each rank runs once, where the catalog says').toEqual(expected);
      expect(flushed, 'a running job: no rank left flushed').toEqual([]);
    } else {
      expect(live, `a ${job.state} job runs nothing`).toEqual([]);
    }
    const harmless = fault.kind === 'none' || fault.kind === 'step-fails' || (fault.kind === 'agent-dies-in-step' && fault.backAfterMs < 1_000);
    if (error && harmless && cmd.op !== 'restart' && !(cmd.op === 'checkpoint' && cmd.stop)) {
      expect(job.state, 'a failed command leaves a running job running').toBe('running');
    }
  }

  /** The last committed epoch restarts on a healthy cluster. */
  async finalRestart(): Promise<void> {
    const last = this.h.catalog!.lastCommittedEpoch('j');
    if (!last) return;
    for (const host of HOSTS) if (this.h.coordinator!.hosts.get(host)?.drained) undrainHost(this.h.coordinator!, host);
    if (this.h.catalog!.getJob('j')!.state === 'running') await this.run({ op: 'checkpoint', stop: true }, { kind: 'none' });
    if (this.h.catalog!.getJob('j')!.state === 'running') throw new Error('a checkpoint --stop on a healthy cluster left the job running');
    const { error } = await this.run({ op: 'restart', hosts: [] }, { kind: 'none' });
    expect(error, 'the last committed epoch restarts').toBeUndefined();
    this.check({ op: 'restart', hosts: [] }, { kind: 'none' }, undefined);
    expect(this.h.catalog!.getJob('j')!.state).toBe('running');
  }
}

let schedule: Schedule | undefined;

afterEach(async () => {
  await schedule?.h.stop();
  schedule = undefined;
});

describe('random schedules of commands and faults', () => {
  for (let seed = FIRST_SEED; seed < FIRST_SEED + SEEDS; seed++) {
    it(`keeps every promise (seed ${seed})`, async () => {
      schedule = await Schedule.started(seed);
      const s = schedule;
      try {
        for (let i = 0; i < COMMANDS_PER_SCHEDULE; i++) {
          if (['failed', 'cancelled', 'succeeded'].includes(s.h.catalog!.getJob('j')!.state) && !s.h.catalog!.lastCommittedEpoch('j')) break;
          const cmd = s.command();
          const fault = s.faultFor();
          const { error } = await s.run(cmd, fault);
          s.check(cmd, fault, error);
        }
        await s.finalRestart();
      } catch (err) {
        const seen = HOSTS.map((x) => `${x}: ${s.h.nodes.get(x)!.steps.seen.map((v) => `${RoundStep[v.step]}[${v.step === RoundStep.DUMP || v.step === RoundStep.STOP ? v.dumpRanks : v.ranks}]`).join(' ')}`);
        const events = process.env.FERRY_RANDOM_SCHEDULES_EVENTS ? s.h.catalog!.listEvents({ limit: 40 }).map((e) => `  event ${e.kind}: ${e.message}`) : [];
        throw new Error(`seed ${seed}:\n${s.log.join('\n')}\n${seen.join('\n')}\n${events.join('\n')}\n${err instanceof Error ? err.message : String(err)}`);
      }
    });
  }
});
