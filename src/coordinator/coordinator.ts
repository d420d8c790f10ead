// The coordinator daemon's core: one inbound socket shared by agents and
// operators, the host registry, the catalog, and the services that answer.
// Everything reaches it through an injected ServerTransport, so the same code
// runs over ZeroMQ and over the in-memory hub in tests.
import { randomBytes } from 'node:crypto';
import {
  ErrorCode,
  type AgentMessage,
  type AgentMessageInit,
  type OperatorReplyInit,
  type OperatorRequest,
  type RegisterRequest,
} from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { PendingRequests } from '../common/pending-requests.js';
import { tracer } from '../common/trace.js';
import {
  agentMessageCodec,
  coordinatorInboundCodec,
  errorStatus,
  OK_STATUS,
  operatorReplyCodec,
  statusError,
} from '../protocol/messages.js';
import { acceptsReply, requestBody } from '../protocol/reply-shape.js';
import { checkPeerVersion, PROTOCOL_VERSION } from '../protocol/version.js';
import type { PeerId, ServerTransport } from '../transport/transport.js';
import type { Catalog } from './catalog.js';
import type { HostRegistration } from './catalog-types.js';
import type { CoordinatorConfig } from './coordinator-config.js';
import { EVENTS_KEEP } from './coordinator-config.js';
import { HostRegistry, type HostSession } from './host-registry.js';
import { CheckpointService } from './checkpoint/checkpoint-service.js';
import { JobOperations } from './checkpoint/job-operations.js';
import { MoveService } from './checkpoint/move-service.js';
import { AutoRestarts } from './checkpoint/auto-restarts.js';
import { EpochRetention } from './checkpoint/epoch-retention.js';
import { FlushCompletion } from './checkpoint/flush-completion.js';
import { ImageReplication } from './checkpoint/image-replication.js';
import { PeriodicCheckpoints } from './checkpoint/periodic-checkpoints.js';
import { JobService } from './job-service.js';
import { catalogWriteError, isCatalogUnwritable } from './catalog-errors.js';
import { LateWrites } from './late-writes.js';
import { OperatorService } from './operator-service.js';

const trace = tracer('coordinator');

/** Replies to unreadable frames, per peer and second (see replyUnreadable). */
export const MALFORMED_REPLIES_PER_SECOND = 20;
/** A catalog that cannot be written is warned about at most this often (catalogTrouble). */
const CATALOG_WARNING_EVERY_MS = 60_000;

export class Coordinator {
  readonly instance = randomBytes(8).toString('hex');
  readonly startedMs: number;
  readonly hosts: HostRegistry;
  readonly jobs: JobService;
  readonly checkpoints: CheckpointService;
  readonly moves: MoveService;
  /** Flushes a failed PREPARE left unfinished: finished before any rank resumes. */
  readonly flushes: FlushCompletion;
  readonly periodic: PeriodicCheckpoints;
  readonly retention: EpochRetention;
  readonly replication: ImageReplication;
  readonly autoRestarts: AutoRestarts;
  /** Catalog writes refused for a full disk, written once there is room. */
  readonly lateWrites: LateWrites;
  /** Registrations the catalog has not taken yet (its disk full): written before the host's next state. */
  private readonly unrecordedRegistrations = new Map<string, HostRegistration>();
  /** One checkpoint, restart or migration at a time per job. */
  readonly operations = new JobOperations();
  private readonly operators: OperatorService;
  private readonly agentRequests = new PendingRequests<AgentMessage>();
  /** The peer whose reply is being settled (replies are accepted only from the peer asked). */
  private replyPeer: PeerId | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** stop() was called: work that outlives it (a flush owed to lost agents) leaves the rest to the next coordinator. */
  get stopping(): boolean {
    return this.stopped;
  }
  /** Counters for tests and benchmarks. */
  readonly stats = { frames: 0, malformed: 0, tooLarge: 0, heartbeats: 0, unanswered: 0 };
  private unreadableWindowMs = 0;
  private readonly unreadableReplies = new Map<PeerId, number>();
  /** Where the coordinator's warnings go (its daemon's log: ferry coordinator sets it). */
  onWarning: (message: string) => void = (message) => trace(`warning: ${message}`);
  private catalogWarnedMs = -Infinity;
  private catalogWarningsHeld = 0;
  /** "job/rank" of exits the catalog refused, whose followers were told so (reportRefused). */
  private readonly exitsRefused = new Set<string>();

  constructor(
    private readonly transport: ServerTransport,
    readonly catalog: Catalog,
    readonly config: CoordinatorConfig,
    readonly now: () => number = Date.now,
  ) {
    this.startedMs = now();
    this.lateWrites = new LateWrites(
      catalog.file,
      (what, err) => this.catalogTrouble(what, err),
      (what, err) => this.onWarning(`${what} could not be recorded late: ${errorMessage(err)}`),
    );
    this.hosts = new HostRegistry(config.heartbeatTimeoutMs, now, {
      stateChanged: (host, from, reason) => this.onHostStateChanged(host, from, reason),
    });
    for (const h of catalog.listHosts()) {
      const { state: _state, stateChangedMs: _changed, firstSeenMs: _first, ...registration } = h;
      this.hosts.restore(registration);
      if (h.state !== 'unknown') catalog.setHostState(h.name, 'unknown', this.startedMs);
    }
    this.jobs = new JobService(this);
    this.checkpoints = new CheckpointService(this);
    this.moves = new MoveService(this);
    this.flushes = new FlushCompletion(this);
    this.periodic = new PeriodicCheckpoints(this);
    this.retention = new EpochRetention(this);
    this.replication = new ImageReplication(this);
    this.autoRestarts = new AutoRestarts(this);
    this.operators = new OperatorService(this);
    this.checkpoints.abortInterrupted();
    this.flushes.resumeInterrupted();
    // A commit whose retention a previous coordinator did not live to apply: the job keeps what it should.
    for (const job of catalog.listJobs({ all: true })) this.retention.apply(job.id);
    transport.onMessage((peer, frames) => this.onFrames(peer, frames));
    this.event('coordinator.start', `coordinator ${this.instance} started; ${catalog.listHosts().length} hosts in the catalog`);
  }

  start(): void {
    const period = Math.max(10, Math.floor(this.config.heartbeatIntervalMs / 2));
    this.sweepTimer = setInterval(() => {
      try {
        this.hosts.sweep();
        this.jobs.launchers.sweep();
      } catch (err) {
        // (a host's new state not written: the next write of it catches up; anything else is a bug to show)
        this.catalogTrouble('sweeping the hosts', err);
      }
      // What the catalog refused before (its disk full), written once it takes writes again.
      this.lateWrites.retry();
    }, period);
    this.sweepTimer.unref?.();
    this.periodic.resumeAll();
    this.jobs.settleInterruptedStarts();
    this.autoRestarts.resumeDue(this.config.heartbeatTimeoutMs + this.config.heartbeatIntervalMs);
  }

  /**
   * Shuts down. Operations under way (a checkpoint, a migration) get up to
   * `drainMs` to end, so their ranks are resumed; those still running then
   * are cut short, and the next coordinator settles them (an epoch in flight
   * is aborted, the ranks left flushed are resumed).
   */
  async stop(drainMs = this.config.stopDrainMs): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.periodic.stop();
    this.autoRestarts.stop();
    const drained = this.operations.close();
    let timer: NodeJS.Timeout | undefined;
    const inTime =
      drainMs > 0 && (await Promise.race([drained.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), drainMs)))]));
    clearTimeout(timer);
    const cut = inTime ? [] : this.operations.describeRunning();
    if (cut.length > 0) {
      try {
        this.event('coordinator.stop', `stopping with operations under way, cut short: ${cut.join('; ')}`);
      } catch (err) {
        trace(`stop: ${errorMessage(err)}`); // a catalog that cannot take it does not keep the coordinator up
      }
    }
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.jobs.stop();
    this.agentRequests.failAll(new FerryError(ErrorCode.UNAVAILABLE, 'the coordinator is shutting down'));
    await this.transport.close();
  }

  // ---- events -------------------------------------------------------------

  event(kind: string, message: string, ids: { host?: string; jobId?: string } = {}): void {
    trace(`event ${kind}: ${message}`);
    try {
      const seq = this.catalog.appendEvent({ timeMs: this.now(), kind, message, ...ids });
      if (seq % 10_000 === 0) this.catalog.pruneEvents(EVENTS_KEEP);
    } catch (err) {
      // (the event log is a record, not a step: whatever logged it goes on)
      this.catalogTrouble(`event ${kind} lost ("${message}")`, err);
    }
  }

  /**
   * The catalog refused a write that the coordinator can do without (an event, a host's state): said on
   * its log (onWarning) at most once a minute, with how many more since. Other errors are thrown on.
   */
  catalogTrouble(what: string, err: unknown): void {
    if (!isCatalogUnwritable(err)) throw err;
    const now = Date.now();
    if (now - this.catalogWarnedMs < CATALOG_WARNING_EVERY_MS) {
      this.catalogWarningsHeld++;
      return;
    }
    const more = this.catalogWarningsHeld > 0 ? ` (and ${this.catalogWarningsHeld} more since the last warning)` : '';
    this.catalogWarnedMs = now;
    this.catalogWarningsHeld = 0;
    this.onWarning(`${errorMessage(catalogWriteError(err, this.catalog.file))}: ${what}${more}; checkpoints fail until it can be written`);
  }

  private onHostStateChanged(host: HostSession, from: string, reason: string): void {
    // (with the catalog's disk full, what happens to the host goes on from memory: its jobs must hear of it)
    const name = host.name;
    if (host.state === 'up' && (reason.startsWith('registered') || reason.startsWith('re-registered'))) {
      const { peer: _peer, state: _state, lastHeardMs: _heard, runningRanks: _ranks, imageServer: _images, ...registration } = host;
      this.unrecordedRegistrations.set(name, registration);
    }
    const [state, atMs] = [host.state, this.now()];
    this.lateWrites.run('', `host ${name}`, `the state of host ${name} (${state})`, () => {
      const registration = this.unrecordedRegistrations.get(name);
      if (registration) this.catalog.upsertHost(registration);
      this.unrecordedRegistrations.delete(name);
      this.catalog.setHostState(name, state, atMs);
    });
    this.event(`host.${host.state}`, `host ${host.name}: ${from} -> ${host.state}: ${reason}`, { host: host.name });
    if (host.state === 'up' && reason.startsWith('registered (new agent instance)')) {
      // A new agent took the name (the old one crashed and was restarted, perhaps
      // before it was seen down): nothing asked of the old one will be answered. (Its
      // tails: onRegister, once it is known which ones the new agent goes on with.)
      this.agentRequests.failTo(host.name, new FerryError(ErrorCode.HOST_DOWN, `the agent on host ${host.name} was replaced by a new one`));
    }
    if (host.state === 'down') {
      // Whatever was asked of that host will not be answered: fail it now, not at its timeout.
      this.agentRequests.failTo(host.name, new FerryError(ErrorCode.HOST_DOWN, `host ${host.name} went down (${reason})`));
      this.jobs.onHostDown(host.name);
      this.replication.topUp(); // images that had a copy there
    }
  }

  // ---- inbound ------------------------------------------------------------

  private onFrames(peer: PeerId, frames: Uint8Array[]): void {
    this.stats.frames++;
    if (frames.length !== 1) {
      this.stats.malformed++;
      this.replyUnreadable(peer, new FerryError(ErrorCode.MALFORMED, `expected one frame per message, got ${frames.length}`));
      return;
    }
    const frame = frames[0];
    if (frame.length > this.config.maxFrameBytes) {
      this.stats.tooLarge++;
      this.replyUnreadable(
        peer,
        new FerryError(ErrorCode.FRAME_TOO_LARGE, `frame of ${frame.length} bytes exceeds the limit of ${this.config.maxFrameBytes} bytes`),
      );
      return;
    }
    let inbound;
    try {
      inbound = coordinatorInboundCodec.decode(frame);
    } catch (err) {
      this.stats.malformed++;
      this.replyUnreadable(peer, err);
      return;
    }
    if (inbound.channel === 'agent' && inbound.agent) this.onAgentMessage(peer, inbound.agent);
    else if (inbound.channel === 'operator' && inbound.operator) void this.onOperatorRequest(peer, inbound.operator);
    else {
      this.stats.malformed++;
      this.replyUnreadable(peer, new FerryError(ErrorCode.MALFORMED, 'message names no channel (agent or operator)'));
    }
  }

  // ---- operator channel ---------------------------------------------------

  sendOperator(peer: PeerId, reply: OperatorReplyInit): void {
    this.transport.send(peer, operatorReplyCodec.encode({ version: PROTOCOL_VERSION, ...reply }));
  }

  private replyOperatorError(peer: PeerId, requestId: number, err: unknown): void {
    trace(`operator error to ${peer}: ${errorMessage(err)}`);
    this.sendOperator(peer, { reply_to: requestId, status: errorStatus(catalogWriteError(err, this.catalog.file)), final: true });
  }

  /**
   * Answers a frame that could not be read, at most MALFORMED_REPLIES_PER_SECOND
   * times a second per peer: a peer sending garbage gets told, but cannot make
   * the coordinator flood it (and crowd out the replies it does owe it).
   */
  private replyUnreadable(peer: PeerId, err: unknown): void {
    const now = this.now();
    if (now - this.unreadableWindowMs >= 1_000) {
      this.unreadableWindowMs = now;
      this.unreadableReplies.clear();
    }
    const n = this.unreadableReplies.get(peer) ?? 0;
    if (n >= MALFORMED_REPLIES_PER_SECOND) {
      this.stats.unanswered++;
      return;
    }
    this.unreadableReplies.set(peer, n + 1);
    this.replyOperatorError(peer, 0, err);
  }

  private async onOperatorRequest(peer: PeerId, req: OperatorRequest): Promise<void> {
    try {
      checkPeerVersion(req.version, 'the operator client');
      if (!req.request_id) throw new FerryError(ErrorCode.BAD_REQUEST, 'request_id must be non-zero');
      const reply = await this.operators.handle(peer, req);
      if (reply) this.sendOperator(peer, { reply_to: req.request_id, status: OK_STATUS, final: true, ...reply });
    } catch (err) {
      this.replyOperatorError(peer, req.request_id, err);
    }
  }

  // ---- agent channel ------------------------------------------------------

  private sendAgentTo(peer: PeerId, message: AgentMessageInit): void {
    this.transport.send(peer, agentMessageCodec.encode({ version: PROTOCOL_VERSION, ...message }));
  }

  private replyAgent(peer: PeerId, to: AgentMessage, body: AgentMessageInit, err?: unknown): void {
    this.sendAgentTo(peer, { reply_to: to.request_id, status: err ? errorStatus(catalogWriteError(err, this.catalog.file)) : OK_STATUS, ...(err ? {} : body) });
  }

  /**
   * Sends a request to the agent of `host` and waits for its reply (TIMEOUT, HOST_DOWN otherwise). `onAnswer`
   * sees the reply as it is taken, before any later message of that agent (a promise's continuation may run
   * after some: the rank output an agent sends right after its PREPARE reply, say).
   */
  async requestAgent(host: string, body: AgentMessageInit, timeoutMs = this.config.agentRequestTimeoutMs, onAnswer?: (answer: AgentMessage) => void): Promise<AgentMessage> {
    const peer = this.hosts.peerOf(host);
    if (!peer) throw new FerryError(ErrorCode.HOST_DOWN, `host ${host} is not up`);
    const what = requestBody(body);
    const accepts = acceptsReply(what);
    // Only the agent the request went to may answer it. (PendingRequests.settle asks this right before it
    // settles the request, while the reply is being handled.)
    const accept = (r: AgentMessage) => {
      if (this.replyPeer !== peer || !accepts(r)) return false;
      onAnswer?.(r);
      return true;
    };
    const { id, reply } = this.agentRequests.open(`${what} to host ${host}`, timeoutMs, accept, host);
    this.sendAgentTo(peer, { ...body, request_id: id });
    const answer = await reply;
    if (!answer.status?.ok) throw statusError(answer.status);
    return answer;
  }

  private onAgentMessage(peer: PeerId, msg: AgentMessage): void {
    try {
      checkPeerVersion(msg.version, 'the agent');
    } catch (err) {
      this.replyAgent(peer, msg, {}, err);
      return;
    }
    if (msg.reply_to) {
      this.hosts.touch(peer);
      this.replyPeer = peer;
      if (!this.agentRequests.settle(msg.reply_to, msg)) trace(`late, unknown or stray reply ${msg.reply_to} from ${peer}`);
      this.replyPeer = undefined;
      return;
    }
    try {
      switch (msg.body) {
        case 'register':
          this.onRegister(peer, msg, msg.register as RegisterRequest);
          return;
        case 'heartbeat': {
          this.stats.heartbeats++;
          const session = this.hosts.heartbeat(peer, msg.heartbeat?.running_ranks ?? 0);
          if (!session) throw new FerryError(ErrorCode.NOT_REGISTERED, 'heartbeat from an agent that is not registered with this coordinator, or whose host it marked down since: register again');
          this.replyAgent(peer, msg, { heartbeat_ack: { coordinator_instance: this.instance, untaken: this.jobs.output.untakenOutput(session.agentInstance, session.name) } });
          return;
        }
        case 'rank_started':
        case 'rank_exited':
        case 'rank_endpoint':
        case 'rank_output': {
          const session = this.hosts.touch(peer);
          if (!session) throw new FerryError(ErrorCode.NOT_REGISTERED, `${msg.body} from an agent that is not registered`);
          // What the catalog refused of the job before (its disk full) goes first: this report is newer. An
          // exit waits for it (its agent tells it again); a start or an endpoint goes on, recorded late if need be.
          if (msg.body === 'rank_exited' && msg.rank_exited) this.lateWrites.settle(msg.rank_exited.job_id);
          else if (msg.body !== 'rank_output' && this.lateWrites.size > 0) this.lateWrites.retry();
          if (msg.body === 'rank_started' && msg.rank_started?.process) this.jobs.onRankStarted(session.name, msg.rank_started.process);
          if (msg.body === 'rank_exited' && msg.rank_exited) {
            this.jobs.onRankExited(session.name, msg.rank_exited);
            this.exitsRefused.delete(`${msg.rank_exited.job_id}/${msg.rank_exited.rank}`);
          }
          if (msg.body === 'rank_endpoint' && msg.rank_endpoint) this.jobs.tables.onRankEndpoint(session.name, msg.rank_endpoint);
          if (msg.body === 'rank_output' && msg.rank_output) this.jobs.output.onRankOutput(msg.rank_output, session.name);
          if (msg.request_id) this.replyAgent(peer, msg, { ack: {} }); // output comes one way, without an id
          return;
        }
        default:
          throw new FerryError(
            msg.body ? ErrorCode.UNSUPPORTED : ErrorCode.BAD_REQUEST,
            msg.body ? `the coordinator does not serve ${msg.body} requests` : 'agent message has no body',
          );
      }
    } catch (err) {
      if (isCatalogUnwritable(err) || (err instanceof FerryError && err.code === ErrorCode.STATE_UNWRITABLE)) this.reportRefused(msg, err);
      this.replyAgent(peer, msg, {}, err);
    }
  }

  /**
   * An agent's report the catalog could not record (its disk full): the agent tells it again until it is
   * taken. A rank's exit waits so (the job's end with it): its followers are told why, once per rank,
   * rather than wait in silence.
   */
  private reportRefused(msg: AgentMessage, err: unknown): void {
    const exit = msg.body === 'rank_exited' ? msg.rank_exited : undefined;
    if (isCatalogUnwritable(err)) this.catalogTrouble(exit ? `the exit of rank ${exit.rank} of job ${exit.job_id} waits (its agent tells it again)` : `an agent's ${msg.body} was refused`, err);
    if (!exit) return;
    const key = `${exit.job_id}/${exit.rank}`;
    if (this.exitsRefused.has(key)) return;
    this.exitsRefused.add(key);
    this.jobs.output.notify(exit.job_id, `rank ${exit.rank} has exited, but the coordinator cannot record it (${errorMessage(catalogWriteError(err, this.catalog.file))}): the job's end waits until there is room`);
  }

  private onRegister(peer: PeerId, msg: AgentMessage, req: RegisterRequest): void {
    let session: HostSession;
    const replaced = this.hosts.get(req.host)?.agentInstance;
    try {
      session = this.hosts.register(peer, req);
    } catch (err) {
      if (err instanceof FerryError && err.code === ErrorCode.DUPLICATE_HOST) {
        this.event('host.duplicate', `refused a second agent for host ${req.host}: ${err.message}`, { host: req.host });
      }
      throw err;
    }
    if (replaced !== undefined && replaced !== req.agent_instance) {
      // The old agent's tails are given up, but those the new one goes on with (its rank table kept where
      // they stood): its registration carries their exits again, saying their output follows.
      const goesOn = new Set(req.exited.filter((e) => e.output_follows).map((e) => `${e.job_id}/${e.rank}`));
      this.jobs.output.tailsLost(session.name, 'its agent was replaced by a new one', (jobId, rank) => goesOn.has(`${jobId}/${rank}`));
    }
    this.jobs.reconcileHost(session.name, req.ranks, req.exited);
    // (copies of deleted jobs it came back with were killed just now: those jobs need not wait for it)
    this.lateWrites.run('', `deleted jobs on ${session.name}`, `that host ${session.name} is back for the deleted jobs given up there`, () => this.catalog.removeDeletedJobCopiesOn(session.name));
    this.jobs.output.awaitFollowers(session.name, req.output_untaken_jobs ?? []);
    this.replyAgent(peer, msg, {
      register_reply: {
        coordinator_instance: this.instance,
        heartbeat_interval_ms: this.config.heartbeatIntervalMs,
        heartbeat_timeout_ms: this.config.heartbeatTimeoutMs,
        host_rejoin_grace_ms: this.config.hostRejoinGraceMs,
      },
    });
    // Images of deleted epochs that waited for this host (or its image store); after the reply, so
    // the agent hears it is registered before it gets a step.
    this.retention.removeInBackground();
    this.moves.removeLeftCopies(session.name);
    // A forgotten host back with its old disk removes what it held first; then it is a host to copy to, perhaps.
    void this.retention
      .removeForgottenDirs(session.name)
      .catch((err) => trace(`removing what forgotten host ${session.name} held: ${errorMessage(err)}`))
      .then(() => this.replication.topUp());
  }
}
