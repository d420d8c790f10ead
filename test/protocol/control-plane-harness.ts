// A coordinator and agents wired over the in-memory hub, with a real catalog in
// a temp dir, for protocol tests under fake timers.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vi } from 'vitest';
import type { JobInfoInit, OperatorReply, OperatorRequestInit, SubmitJobRequest } from '../../src/gen/proto.js';
import type { FerryError } from '../../src/common/ferry-error.js';
import { Agent, type AgentIdentity } from '../../src/agent/agent.js';
import type { RankChannelServer } from '../../src/agent/rank-channel.js';
import { Catalog } from '../../src/coordinator/catalog.js';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import { defaultCoordinatorConfig, type CoordinatorConfig } from '../../src/coordinator/coordinator-config.js';
import { MemoryHub, type MemoryClient } from '../../src/transport/memory-transport.js';
import { coordinatorInboundCodec, operatorReplyCodec, statusError } from '../../src/protocol/messages.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { ScriptedSteps, SimulatedRanks } from './simulated-node.js';

/** Advances the fake clock until `p` settles (at most `maxMs`); its value or its error. */
export async function settle<T>(p: Promise<T>, maxMs = 20_000): Promise<{ value?: T; error?: FerryError }> {
  let out: { value?: T; error?: FerryError } | undefined;
  p.then(
    (value) => (out = { value }),
    (error) => (out = { error }),
  );
  for (let t = 0; !out && t < maxMs; t += 100) await vi.advanceTimersByTimeAsync(100);
  if (!out) throw new Error('operation did not finish');
  return out;
}

/** Heartbeats and step timeouts short enough for checkpoint, restart and migration cases under fake timers. */
export const QUICK_ROUNDS: Partial<CoordinatorConfig> = {
  heartbeatIntervalMs: 100,
  heartbeatTimeoutMs: 500,
  flushTimeoutMs: 2_000,
  dumpTimeoutMs: 3_000,
  resumeTimeoutMs: 2_000,
};

export class ControlPlaneHarness {
  /**
   * Fake timers on, a coordinator, and an agent for each host (with its image store when `hosts` maps
   * host -> store), registered. `stop()` ends it.
   */
  static async started(hosts: readonly string[] | Record<string, string>, config: Partial<CoordinatorConfig> = QUICK_ROUNDS): Promise<ControlPlaneHarness> {
    vi.useFakeTimers();
    const h = new ControlPlaneHarness(config);
    h.startCoordinator();
    const entries: [string, string | undefined][] = Array.isArray(hosts) ? hosts.map((n) => [n, undefined]) : Object.entries(hosts);
    for (const [host, store] of entries) h.startAgent(host, store ? { imageStore: store } : {});
    await vi.advanceTimersByTimeAsync(50);
    return h;
  }

  /** close(), then real timers again (the end of a test that began with started()). */
  async stop(): Promise<void> {
    await this.close();
    vi.useRealTimers();
  }

  readonly hub = new MemoryHub();
  readonly stateDir = mkdtempSync(join(tmpdir(), 'ferry-proto-'));
  coordinator: Coordinator | undefined;
  catalog: Catalog | undefined;
  readonly agents = new Map<string, Agent>();
  readonly fatal: string[] = [];

  constructor(readonly config: Partial<CoordinatorConfig> = { heartbeatIntervalMs: 100, heartbeatTimeoutMs: 500 }) {}

  startCoordinator(): Coordinator {
    this.catalog = Catalog.open(this.stateDir);
    this.coordinator = new Coordinator(this.hub.listen(), this.catalog, defaultCoordinatorConfig(this.config));
    this.coordinator.start();
    return this.coordinator;
  }

  /** Stops the coordinator at once (stop(0): operations under way are cut short, not waited for). */
  async stopCoordinator(): Promise<void> {
    await this.coordinator?.stop(0);
    this.catalog?.close();
    this.coordinator = undefined;
    this.catalog = undefined;
  }

  /**
   * The coordinator dies mid-operation: nothing more of it reaches an agent or
   * the catalog (a stopped one would still settle what it had asked).
   */
  async crashCoordinator(): Promise<void> {
    this.hub.severed = true;
    this.catalog?.close();
    await this.coordinator?.stop(0).catch(() => {});
    this.hub.severed = false;
    this.coordinator = undefined;
    this.catalog = undefined;
  }

  /** Simulated ranks and scripted checkpoint steps of each host's latest agent. */
  readonly nodes = new Map<string, { ranks: SimulatedRanks; steps: ScriptedSteps }>();

  /**
   * Starts an agent for `host`. Passing `ranks` (the previous agent's) stands
   * for an agent restarted after a crash that re-adopts the ranks still running.
   */
  startAgent(host: string, identity: Partial<AgentIdentity> = {}, ranks = new SimulatedRanks(), rankChannel?: RankChannelServer, random?: () => number): Agent {
    const steps = new ScriptedSteps(host, ranks);
    const agent = new Agent(
      { host, address: `198.18.0.${this.agents.size + 2}`, cpus: 4, criuVersion: '4.1.1', criuCheckOk: true, criuCheckDetail: '', version: 'test', imageServer: `tcp://images.${host}:1`, ...identity },
      () => this.connectFrom(host),
      ranks,
      { fatal: (err) => this.fatal.push(err.message), random },
      steps,
      rankChannel,
    );
    agent.start();
    this.agents.set(`${host}#${agent.instance}`, agent);
    this.nodes.set(host, { ranks, steps });
    return agent;
  }

  /** The agent of `host` dies (every instance still running there); its ranks, simulated, live on. */
  async crashAgent(host: string): Promise<void> {
    for (const [key, agent] of this.agents) if (key.startsWith(`${host}#`) && agent.state !== 'stopped') await agent.stop();
  }

  /** The hub connections each host's agents opened, so a partition can cut them. */
  private readonly connections = new Map<string, string[]>();
  private readonly partitioned = new Set<string>();

  private connectFrom(host: string): MemoryClient {
    const client = this.hub.connect();
    this.connections.set(host, [...(this.connections.get(host) ?? []), client.peer]);
    if (this.partitioned.has(host)) this.hub.cutOff.add(client.peer);
    return client;
  }

  /** Cuts `host` off the network (`cut` true) or joins it again: its agents and ranks run on, unheard. */
  partition(host: string, cut: boolean): void {
    if (cut) this.partitioned.add(host);
    else this.partitioned.delete(host);
    for (const peer of this.connections.get(host) ?? []) {
      if (cut) this.hub.cutOff.add(peer);
      else this.hub.cutOff.delete(peer);
    }
  }

  /** `host`'s agents hear nothing from the coordinator (`deaf` true), which still hears them; or hear it again. */
  deafen(host: string, deaf: boolean): void {
    for (const peer of this.connections.get(host) ?? []) {
      if (deaf) this.hub.deaf.add(peer);
      else this.hub.deaf.delete(peer);
    }
  }

  /** Submits job `job_id` (default 'j') of `world_size` ranks of /app, as an operator would. */
  submit(job: Partial<SubmitJobRequest> & { world_size: number }): Promise<JobInfoInit> {
    return this.coordinator!.jobs.submit('op', 1, {
      argv: ['/app'], cwd: '/', env: {}, hosts: [], rank_hosts: {}, follow: false, job_id: 'j', checkpoint_every_ms: 0, keep_epochs: 0, auto_restarts: 0, own_image_replicas: false, image_replicas: 0, ...job, stdin: job.stdin ?? new Uint8Array(0),
    });
  }

  /** Sends one operator request over the hub on a connection of its own, as `ferry` does; its final reply (rejected with the status's error). */
  ask(req: Omit<OperatorRequestInit, 'version' | 'request_id'>): Promise<OperatorReply> {
    const client = this.hub.connect();
    const reply = new Promise<OperatorReply>((resolve, reject) =>
      client.onMessage((frames) => {
        const r = operatorReplyCodec.decode(frames[0]);
        if (!r.final) return;
        if (r.status?.ok) resolve(r);
        else reject(statusError(r.status));
      }),
    );
    client.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: 7, ...req } }));
    return reply;
  }

  /** The job notices an operator connection following `jobId` gets (what its ferry run prints), as they come. */
  followNotices(jobId: string): string[] {
    const client = this.hub.connect();
    const notices: string[] = [];
    client.onMessage((frames) => {
      const r = operatorReplyCodec.decode(frames[0]);
      if (r.job_notice) notices.push(r.job_notice.message);
    });
    client.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: 1, follow_job: { job_id: jobId } } }));
    return notices;
  }

  hostState(name: string): string | undefined {
    return this.coordinator?.hosts.get(name)?.state;
  }

  /**
   * Advances the fake clock until `host` is up at the coordinator, at most `maxMs`: an agent that sent
   * its registration into a coordinator that was down waits REGISTER_TIMEOUT_MS (3 s) and a jittered
   * backoff before it tries again, so a fixed wait after a restart races that jitter.
   */
  async untilUp(host: string, maxMs = 10_000): Promise<void> {
    for (let t = 0; this.hostState(host) !== 'up' && t < maxMs; t += 100) await vi.advanceTimersByTimeAsync(100);
  }

  async close(): Promise<void> {
    for (const a of this.agents.values()) await a.stop();
    await this.stopCoordinator();
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}
