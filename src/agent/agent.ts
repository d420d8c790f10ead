// The agent daemon's core: its session with the coordinator and the ranks of
// its node. It reaches the coordinator through an injected connector, so the
// same code runs over ZeroMQ and over the in-memory hub in tests.
//
// Session states (one place: `transition`):
//   connecting   a fresh connection; registering, with backoff between tries
//   registered   heartbeats flowing; requests from the coordinator served
//   stopped      shut down
// Losing the coordinator (no reply within the heartbeat timeout) drops the
// connection and goes back to connecting; a heartbeat answered NOT_REGISTERED,
// or from a coordinator with a new instance id, re-registers on the same one.
//
// An agent restarted after a crash re-adopts the ranks of its host that still
// run (RankRunner.readopt, from the rank table on disk): it registers with
// them, follows their output from where its predecessor got to, takes their
// connections back when the runtime reconnects (attach), reports those the
// crash left flushed for the coordinator to resume, and reports how the others ended.
import { randomBytes } from 'node:crypto';
import {
  ErrorCode,
  type AgentMessage,
  type AgentMessageInit,
  type RankExitedInit,
  type RegisterReply,
  RoundStep,
  type RoundReplyInit,
  type RoundRequest,
  type UnsentOutputInit,
} from '../gen/proto.js';
import { Backoff, sleep } from '../common/backoff.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { PendingRequests } from '../common/pending-requests.js';
import { tracer } from '../common/trace.js';
import { agentMessageCodec, coordinatorInboundCodec, errorStatus, OK_STATUS, statusError } from '../protocol/messages.js';
import { acceptsReply, requestBody } from '../protocol/reply-shape.js';
import { checkPeerVersion, PROTOCOL_VERSION } from '../protocol/version.js';
import type { ClientConnector, ClientTransport } from '../transport/transport.js';
import { passFaultGate } from './fault-gate.js';
import { LateOutput } from './late-output.js';
import { OutputTailer, type OutputChunk } from './output-tailer.js';
import type { RankChannelServer, RankInfo } from './rank-channel.js';
import type { RankRunner, ReadoptResult } from './rank-supervisor.js';
import type { RankSteps, StepOutcome } from './rank-steps.js';
import { readProcessState } from './process-state.js';
import { RankFence } from './rank-fence.js';

const trace = tracer('agent');

export const REGISTER_TIMEOUT_MS = 3_000;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 1_000;
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 5_000;
export const EVENT_RETRY_MS = 1_000;
/** Rank output is read no further while this much sent is still waiting for the connection (output-tailer.ts). */
export const OUTPUT_SEND_BACKLOG_BYTES = 8 * 1024 * 1024;

export type AgentSessionState = 'connecting' | 'registered' | 'stopped';

const TRANSITIONS: Record<AgentSessionState, AgentSessionState[]> = {
  connecting: ['registered', 'stopped'],
  registered: ['connecting', 'stopped'],
  stopped: [],
};

export interface AgentIdentity {
  host: string;
  address: string;
  cpus: number;
  criuVersion: string;
  criuCheckOk: boolean;
  criuCheckDetail: string;
  version: string;
  /** This host's image server, where other agents fetch its images. */
  imageServer?: string;
  /** The id of the image store (--images) this host writes to (images/image-store-id.ts). */
  imageStore?: string;
}

export interface AgentHooks {
  /** Called at each (re-)registration, e.g. to print it. */
  registered?(reply: RegisterReply): void;
  /** A fatal condition (version mismatch): the daemon should exit. */
  fatal?(err: FerryError): void;
  /** What an operator should read in the agent's log (its ranks fenced, say); default: traced. */
  warn?(message: string): void;
  /** The jitter of the reconnect backoff, in [0, 1) (default Math.random): seeded in tests, so a schedule replays. */
  random?(): number;
}

export class Agent {
  readonly instance = randomBytes(8).toString('hex');
  private stateValue = 'connecting' as AgentSessionState;
  private transport: ClientTransport | undefined;
  private readonly requests = new PendingRequests<AgentMessage>();
  private readonly backoff: Backoff;
  private coordinatorInstance = '';
  /** Registrations sent so far, and whether a step that overlapped one calls for another (see serve). */
  private registrations = 0;
  private registerAgain = false;
  private heartbeatIntervalMs = DEFAULT_HEARTBEAT_INTERVAL_MS;
  private heartbeatTimeoutMs = DEFAULT_HEARTBEAT_TIMEOUT_MS;
  private wake: (() => void) | undefined;
  /** Rank exits the coordinator has not acknowledged yet; resent at registration. */
  private readonly unackedExits = new Map<string, RankExitedInit>();
  /** Exits sent at least once: the coordinator may have them (the others it cannot). */
  private readonly sentExits = new WeakSet<RankExitedInit>();
  /**
   * Exits acknowledged whose ranks' output the tailer still keeps (their followers had not taken all of
   * it): a registration that rewinds carries them again, for a new coordinator to expect their tails.
   */
  private readonly endedOwingOutput = new Map<string, RankExitedInit>();
  /** Reports (rank endpoints) delivered until acknowledged, by key. */
  private readonly undelivered = new Map<string, AgentMessageInit>();
  /** Ranks whose endpoint report is on its way (from its fault gate until acknowledged), by JOB/RANK. */
  private readonly endpointsInFlight = new Map<string, RankInfo>();
  /** Ranks that called MPI_Abort: the code and reason their exit will carry. */
  private readonly aborts = new Map<string, { code: number; reason: string }>();
  private loop: Promise<void> | undefined;
  private readonly output: OutputTailer;
  private readonly lateOutput = new LateOutput();
  /** What readopt() found at start, settled after the first registration (see settleReadopted). */
  private readopted: ReadoptResult | undefined;
  /** When the coordinator last answered, and its rejoin grace (RegisterReply): the fence's deadline. */
  private heardMs = 0;
  private rejoinGraceMs = 0;
  private readonly fence: RankFence;

  constructor(
    private readonly identity: AgentIdentity,
    private readonly connect: ClientConnector,
    readonly ranks: RankRunner,
    private readonly hooks: AgentHooks = {},
    /** What the checkpoint protocol's steps do to the ranks of this node. */
    private readonly steps: RankSteps,
    /** The ranks' channel to this agent; absent in tests that run no MPI ranks. */
    private readonly rankChannel?: RankChannelServer,
  ) {
    this.backoff = new Backoff(undefined, undefined, hooks.random ?? Math.random);
    this.fence = new RankFence(ranks, (message) => (hooks.warn ? hooks.warn(message) : trace(message)));
    ranks.on('exit', (e) => this.onRankExit(e));
    rankChannel?.on('hello', (info) => this.onRankHello(info));
    rankChannel?.on('attach', (info) => this.onRankAttach(info));
    rankChannel?.on('abort', (jobId, rank, code, message) =>
      this.aborts.set(`${jobId}/${rank}`, { code, reason: `MPI_Abort with error code ${code}${message ? `: ${message}` : ''}` }),
    );
    this.output = new OutputTailer(
      (chunk) => this.onOutput(chunk),
      this.instance,
      () => (this.transport?.queuedBytes ?? 0) < OUTPUT_SEND_BACKLOG_BYTES,
    );
  }

  get state(): AgentSessionState {
    return this.stateValue;
  }

  /** Not narrowed by TypeScript: the state changes across awaits. */
  private stopped(): boolean {
    return this.stateValue === 'stopped';
  }

  private transition(from: AgentSessionState[], to: AgentSessionState, why: string): void {
    if (!from.includes(this.stateValue) || !TRANSITIONS[this.stateValue].includes(to)) {
      throw new Error(`agent session: illegal transition ${this.stateValue} -> ${to} (${why})`);
    }
    trace(`${this.stateValue} -> ${to}: ${why}`);
    this.stateValue = to;
  }

  start(): void {
    if (this.loop) return;
    this.readopt();
    // Ranks that connected before this agent listened for them. Their rank tokens were checked before it had
    // taken its ranks back (rank-channel.ts): now it knows whose they must be.
    const early = this.rankChannel?.unanswered();
    const checked = (info: RankInfo) => this.rankChannel!.revalidate(info.jobId, info.rank);
    for (const info of early?.attaches.filter(checked) ?? []) this.onRankAttach(info);
    for (const info of early?.hellos.filter(checked) ?? []) this.onRankHello(info);
    this.loop = this.run();
  }

  /**
   * Takes back the ranks a crashed predecessor left running. Those it left
   * flushed (or flushing) wait for a SIGUSR2 it never sent. They are reported
   * flushed at registration, and the coordinator decides, by what became of
   * the epoch they were flushed for, when to RESUME them (JobService.settleFlushed):
   * it may still need them flushed, e.g. to remove an aborted epoch's images first.
   */
  private readopt(): void {
    if (!this.ranks.readopt) return;
    try {
      this.readopted = this.ranks.readopt();
    } catch (err) {
      // An unreadable table: start empty rather than not at all; the coordinator
      // learns at registration that the ranks it expected here are gone.
      trace(`re-adoption failed: ${errorMessage(err)}`);
      return;
    }
    // Ended ranks whose output their followers had not all taken (the exit was acknowledged): the rest goes
    // as a tail, after their exits, which the registration carries again.
    for (const d of this.readopted.owingOutput ?? []) {
      const [jobId, rank] = [d.exit.job_id ?? '', d.exit.rank ?? 0];
      this.output.addEnded(jobId, rank, d.logs, { sent: d.offsets, ...d.output });
      this.endedOwingOutput.set(`${jobId}/${rank}`, d.exit);
    }
    // Taken back by an agent that no coordinator has heard yet: if none answers within the grace the one before
    // it knew, they are fenced (from this agent's start: when that one last heard a coordinator is not known).
    if (this.readopted.alive.length > 0) this.fence.arm(Date.now(), this.ranks.rememberedRejoinGrace?.() ?? 0);
    for (const a of this.readopted.alive) {
      if (a.flushEpoch === 0) {
        this.steps.expectReattach?.(a.process.job_id ?? '', a.process.rank ?? 0);
        continue;
      }
      trace(`re-adopted ${a.process.job_id}/${a.process.rank}, left flushed at epoch ${a.flushEpoch}: it waits for RESUME`);
      this.steps.adoptFlushed(a.process.job_id ?? '', a.process.rank ?? 0, a.flushEpoch);
    }
  }

  /**
   * After the first registration: follow the re-adopted ranks' output from the
   * offsets reached before the crash, then report the ranks that ended while
   * no agent ran (their remaining output first, so it precedes the exit).
   */
  private settleReadopted(): void {
    const r = this.readopted;
    if (!r) return;
    this.readopted = undefined;
    for (const a of r.alive) {
      const [jobId, rank] = [a.process.job_id ?? '', a.process.rank ?? 0];
      this.output.add(jobId, rank, a.logs, { sent: a.offsets, ...a.output });
      // One that ended since, before this agent registered: its exit waits (reportExit), and its output, not
      // followed until now, goes before it. Without this its last lines came after the job's end, and were lost.
      if (this.unackedExits.has(`${jobId}/${rank}`)) this.output.finish(jobId, rank);
    }
    for (const d of r.ended) this.output.add(d.exit.job_id ?? '', d.exit.rank ?? 0, d.logs, { sent: d.offsets, ...d.output });
    for (const d of r.ended) this.onRankExit(d.exit);
  }

  async stop(): Promise<void> {
    if (this.stateValue === 'stopped') return;
    this.transition(['connecting', 'registered'], 'stopped', 'stop requested');
    this.wake?.();
    this.requests.failAll(new FerryError(ErrorCode.UNAVAILABLE, 'the agent is stopping'));
    this.output.stop();
    this.fence.cancel();
    this.ranks.close?.();
    this.steps.close?.();
    await this.transport?.close();
    await this.loop;
  }

  // ---- the session loop ------------------------------------------------------

  private async run(): Promise<void> {
    while (!this.stopped()) {
      this.output.hold(); // until registered: what the ranks write waits in their files
      const transport = this.connect();
      this.transport = transport;
      transport.onMessage((frames) => this.onFrames(transport, frames));
      try {
        await this.register();
        this.backoff.reset();
        this.transition(['connecting'], 'registered', `registered with coordinator ${this.coordinatorInstance}`);
        this.fence.heard();
        this.settleReadopted();
        await this.heartbeatUntilLost();
      } catch (err) {
        if (this.stopped()) break;
        trace(`session: ${errorMessage(err)}`);
        if (this.stateValue === 'registered') this.transition(['registered'], 'connecting', errorMessage(err));
        this.fence.arm(this.heardMs, this.rejoinGraceMs);
      }
      this.output.hold();
      this.requests.failAll(new FerryError(ErrorCode.UNAVAILABLE, 'connection to the coordinator was reset'));
      await transport.close();
      if (this.stopped()) break;
      await this.pause(this.backoff.next());
    }
  }

  /**
   * Registers; a coordinator of another major version is fatal (the hook decides what to do). `resend`:
   * the session was lost (or may have been), so output not acknowledged goes again (output-tailer.ts).
   */
  private async register(resend = true): Promise<void> {
    try {
      await this.registerOnce(resend);
    } catch (err) {
      if (err instanceof FerryError && err.code === ErrorCode.VERSION_MISMATCH) this.hooks.fatal?.(err);
      throw err;
    }
  }

  private async registerOnce(resend: boolean): Promise<void> {
    this.registrations++;
    if (resend) {
      this.output.hold();
      // (what an ended rank's followers had not taken goes again, after its exit: a tail)
      this.output.reopenTails();
    }
    this.pruneEndedOwingOutput();
    const endedTails = resend ? [...this.endedOwingOutput.values()].filter((e) => this.output.outputFollows(e.job_id ?? '', e.rank ?? 0)) : [];
    const sentOutput = this.output.snapshot();
    const awaiting = this.steps.awaitingResume();
    // Ranks that said hello and wait for their table: a new coordinator waits for their endpoints before it
    // flushes the job (EndpointTables.awaitReports), which this registration tells before the reports come.
    const waitingForTable = new Set((this.rankChannel?.unanswered().hellos ?? []).map((i) => `${i.jobId}/${i.rank}`));
    // The exits this registration carries; a rank that ends while it is on its way (a STOP the
    // coordinator sends as it settles this host) is reported by its own reportExit once registered.
    // An exit never sent is not carried: the rank counts as alive until its output, held while no
    // coordinator heard this agent, has gone first; then its exit is reported.
    const carried = [...this.unackedExits].filter(([, e]) => this.sentExits.has(e));
    const withheld = [...this.unackedExits].filter(([, e]) => !this.sentExits.has(e));
    for (const [, e] of carried) e.output_follows = this.output.outputFollows(e.job_id ?? '', e.rank ?? 0);
    const reply = await this.request(
      {
        register: {
          host: this.identity.host,
          address: this.identity.address,
          cpus: this.identity.cpus,
          criu_version: this.identity.criuVersion,
          criu_check_ok: this.identity.criuCheckOk,
          criu_check_detail: this.identity.criuCheckDetail,
          agent_instance: this.instance,
          agent_version: this.identity.version,
          image_server: this.identity.imageServer ?? '',
          image_store: this.identity.imageStore ?? '',
          output_untaken_jobs: this.output.untakenJobs(),
          // Ranks that ended while no agent ran count as alive until settleReadopted reports them.
          ranks: [
            ...this.ranks.running().map((p) => ({
              ...p,
              flushed_epoch: awaiting.get(`${p.job_id}/${p.rank}`) ?? 0,
              awaits_table: waitingForTable.has(`${p.job_id}/${p.rank}`),
            })),
            ...(this.readopted?.ended.map((d) => ({ job_id: d.exit.job_id, rank: d.exit.rank, pid: d.exit.pid })) ?? []),
            ...withheld.map(([, e]) => ({ job_id: e.job_id, rank: e.rank, pid: e.pid })),
          ],
          exited: [...carried.map(([, e]) => e), ...endedTails.map((e) => ({ ...e, output_follows: true }))],
        },
      },
      REGISTER_TIMEOUT_MS,
    );
    const rr = reply.register_reply;
    if (!rr) throw new FerryError(ErrorCode.MALFORMED, 'register answered without a register reply');
    const previousCoordinator = this.coordinatorInstance;
    this.coordinatorInstance = rr.coordinator_instance;
    this.heartbeatIntervalMs = rr.heartbeat_interval_ms || DEFAULT_HEARTBEAT_INTERVAL_MS;
    this.heartbeatTimeoutMs = rr.heartbeat_timeout_ms || DEFAULT_HEARTBEAT_TIMEOUT_MS;
    this.rejoinGraceMs = rr.host_rejoin_grace_ms ?? 0;
    this.heardMs = Date.now();
    this.ranks.rememberRejoinGrace?.(this.rejoinGraceMs);
    // The coordinator took the exits from the registration (and the output sent before them, if it has
    // them at all: it is not sent again after its exit).
    for (const [key, e] of carried) {
      if (this.unackedExits.get(key) === e) this.unackedExits.delete(key);
      this.exitAcknowledged(key, e);
    }
    if (resend || previousCoordinator !== rr.coordinator_instance) {
      // (a coordinator that replaced the one before has none of what that one held for its followers)
      this.output.rewind(previousCoordinator !== '' && previousCoordinator !== rr.coordinator_instance);
      this.output.release();
      // Their output has gone now: their exits follow it, once the session is registered (run() makes it
      // so in the microtasks after this).
      for (const [key, e] of withheld) {
        if (this.unackedExits.get(key) !== e) continue;
        const again = { ...e };
        this.unackedExits.set(key, again);
        setTimeout(() => void this.reportExit(key, again), 0);
      }
    } else {
      // The same coordinator, heard all along: it had the output sent before this registration.
      this.output.acknowledge(sentOutput);
    }
    if (previousCoordinator && previousCoordinator !== rr.coordinator_instance) {
      // What the one before was asked it will never answer: the reports go again to this one now, not
      // after their timeout (an endpoint report waiting so held the job's table back, and a checkpoint
      // asked meanwhile found its ranks waiting for it: soak seed 109).
      this.requests.failTo(previousCoordinator, new FerryError(ErrorCode.UNAVAILABLE, `coordinator ${previousCoordinator} was replaced before it answered`));
      this.reportWaitingEndpoints();
    }
    this.hooks.registered?.(rr);
  }

  /** Heartbeats until the coordinator stops answering (returns by throwing). */
  private async heartbeatUntilLost(): Promise<void> {
    for (;;) {
      if (this.stateValue !== 'registered') throw new FerryError(ErrorCode.UNAVAILABLE, 'stopped');
      let reply: AgentMessage;
      const sentOutput = this.output.snapshot();
      try {
        reply = await this.request(
          { heartbeat: { sent_ms: Date.now(), running_ranks: this.ranks.running().length } },
          this.heartbeatTimeoutMs,
          false,
        );
      } catch (err) {
        if (err instanceof FerryError && err.code === ErrorCode.TIMEOUT) {
          throw new FerryError(ErrorCode.UNAVAILABLE, `coordinator lost: ${err.message}`);
        }
        throw err;
      }
      this.heardMs = Date.now();
      if (reply.status?.ok && reply.heartbeat_ack?.coordinator_instance === this.coordinatorInstance) {
        this.output.acknowledge(sentOutput, reply.heartbeat_ack.untaken);
        for (const { jobId, rank } of this.output.followed()) this.recordOutputPosition(jobId, rank);
        this.pruneEndedOwingOutput();
      }
      if (this.registerAgain) {
        this.registerAgain = false;
        trace('a step ended after the last registration: registering again');
        await this.register(false);
      } else if (!reply.status?.ok && reply.status?.code === ErrorCode.NOT_REGISTERED) {
        trace('coordinator does not know this agent: re-registering');
        await this.register();
      } else if (!reply.status?.ok) {
        // The coordinator answers, so it is there; say what it said and go on.
        trace(`heartbeat answered with ${statusError(reply.status)}`);
      } else if (reply.heartbeat_ack && reply.heartbeat_ack.coordinator_instance !== this.coordinatorInstance) {
        trace(`coordinator restarted (${this.coordinatorInstance} -> ${reply.heartbeat_ack.coordinator_instance}): re-registering`);
        await this.register();
      }
      await this.pause(this.heartbeatIntervalMs);
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        if (self.wake === done) self.wake = undefined;
        resolve();
      }
      this.wake = done;
    });
  }

  // ---- messages ----------------------------------------------------------------

  private send(message: AgentMessageInit): void {
    this.transport?.send(coordinatorInboundCodec.encode({ agent: { version: PROTOCOL_VERSION, ...message } }));
  }

  /** A request to the coordinator; with `checkStatus` a failed status rejects. */
  private async request(body: AgentMessageInit, timeoutMs: number, checkStatus = true): Promise<AgentMessage> {
    const what = requestBody(body);
    // (tagged with the coordinator instance it goes to: registerOnce fails what a replaced one was asked)
    const { id, reply } = this.requests.open(`${what} to the coordinator`, timeoutMs, acceptsReply(what), this.coordinatorInstance);
    this.send({ ...body, request_id: id });
    const answer = await reply;
    if (checkStatus && !answer.status?.ok) throw statusError(answer.status);
    return answer;
  }

  private onFrames(transport: ClientTransport, frames: Uint8Array[]): void {
    if (transport !== this.transport) return; // a late message on an old connection
    if (frames.length !== 1) {
      trace(`dropping a message of ${frames.length} frames from the coordinator`);
      return;
    }
    let msg: AgentMessage;
    try {
      msg = agentMessageCodec.decode(frames[0]);
    } catch (err) {
      trace(`bad frame from the coordinator: ${errorMessage(err)}`);
      return;
    }
    let versionError: unknown;
    try {
      checkPeerVersion(msg.version, 'the coordinator');
    } catch (err) {
      versionError = err;
    }
    if (msg.reply_to) {
      // A reply in another version fails its request with VERSION_MISMATCH;
      // only a refused registration makes that fatal (see register()).
      this.requests.settle(msg.reply_to, versionError ? ({ reply_to: msg.reply_to, status: errorStatus(versionError) } as AgentMessage) : msg);
      return;
    }
    if (versionError) {
      trace(`refusing a request: ${errorMessage(versionError)}`);
      if (msg.request_id) this.send({ reply_to: msg.request_id, status: errorStatus(versionError) });
      return;
    }
    void this.serve(msg);
  }

  private async serve(msg: AgentMessage): Promise<void> {
    const reply = (body: AgentMessageInit, err?: unknown) =>
      this.send({ reply_to: msg.request_id, status: err ? errorStatus(err) : OK_STATUS, ...(err ? {} : body) });
    try {
      switch (msg.body) {
        case 'start_ranks': {
          const req = msg.start_ranks!;
          const started = [];
          for (const spec of req.ranks) {
            // Follow the log files from where they end now, before the rank can write.
            this.output.add(req.job_id, spec.rank, this.ranks.logPaths(req.job_id, spec.rank));
            try {
              started.push(
                this.ranks.start({
                  jobId: req.job_id,
                  rank: spec.rank,
                  worldSize: req.world_size,
                  argv: req.argv,
                  cwd: req.cwd,
                  env: req.env,
                  token: req.rank_token,
                  ...(spec.rank === 0 && req.stdin?.length ? { stdin: req.stdin } : {}),
                }),
              );
              this.recordOutputPosition(req.job_id, spec.rank); // (its source, kept before it prints: recordOutputPosition)
            } catch (err) {
              this.output.finish(req.job_id, spec.rank);
              this.output.forget(req.job_id, spec.rank); // (no exit of it follows)
              // All or nothing: the coordinator counts every rank of a failed start as never started.
              // It hears why first: the exits of the ranks killed here come after, and are not taken
              // for the job's failure.
              reply({}, err);
              if (started.length > 0) this.ranks.signalRanks?.(req.job_id, started.map((p) => p.rank ?? 0), 'SIGKILL');
              return;
            }
          }
          reply({ start_ranks_reply: { started } });
          return;
        }
        case 'output_flow': {
          this.output.pause(msg.output_flow!.job_id, msg.output_flow!.pause_ms);
          reply({ ack: {} });
          return;
        }
        case 'signal_job': {
          const req = msg.signal_job!;
          const signal = (req.signal || 'SIGTERM') as NodeJS.Signals;
          if (req.ranks.length === 0) this.ranks.signalJob(req.job_id, signal);
          else if (this.ranks.signalRanks) this.ranks.signalRanks(req.job_id, req.ranks, signal, req.pid || undefined);
          else throw new FerryError(ErrorCode.UNSUPPORTED, `agent ${this.identity.host} cannot signal single ranks`);
          reply({ ack: {} });
          return;
        }
        case 'process_state': {
          // A launcher process whose lease lapsed: suspended (stopped, frozen) or gone? (process-state.ts)
          const req = msg.process_state!;
          reply({ process_state_reply: await readProcessState(req.pid, Number(req.start_ticks)) });
          return;
        }
        case 'remove_job_logs': {
          const r = this.ranks.removeJobLogs?.(msg.remove_job_logs!.job_id) ?? { removed: false, bytes: 0 };
          await this.steps.forgetJob?.(msg.remove_job_logs!.job_id);
          reply({ remove_job_logs_reply: { removed: r.removed, bytes_removed: r.bytes } });
          return;
        }
        case 'endpoint_table': {
          const req = msg.endpoint_table!;
          if (!this.rankChannel) throw new FerryError(ErrorCode.UNSUPPORTED, `agent ${this.identity.host} has no rank channel`);
          await passFaultGate('table', this.identity.host);
          this.rankChannel.sendEndpoints(req.job_id, req.endpoints);
          reply({ ack: {} });
          return;
        }
        case 'round': {
          const registrations = this.registrations;
          const r = await this.round(msg.round!);
          // A PREPARE or RESTORE that ended after this agent registered again (its coordinator was replaced,
          // say): the registration told what the ranks were before it (not flushed yet, not restored yet),
          // and the reply may reach nobody. The next heartbeat registers again with the truth, which the
          // coordinator settles as for any agent that comes back (a copy of a rank it counts as ended is
          // killed, flushed ones are resumed or held). The other steps change nothing a registration tells.
          const changesRanks = msg.round!.step === RoundStep.PREPARE || msg.round!.step === RoundStep.RESTORE;
          if (changesRanks && this.registrations !== registrations) this.registerAgain = true;
          reply({ round_reply: r });
          return;
        }
        default:
          throw new FerryError(ErrorCode.UNSUPPORTED, msg.body ? `the agent does not serve ${msg.body} requests` : 'message has no body');
      }
    } catch (err) {
      reply({}, err);
    }
  }

  /**
   * One step of the checkpoint protocol for this node's ranks of a job,
   * answered once for all of them: only failed ranks are named.
   */
  private async round(req: RoundRequest): Promise<RoundReplyInit> {
    const failed = new Map<number, FerryError>();
    // FETCH and RESTORE bring ranks that do not run here yet; DISCARD and PUT_BACK are about files, not processes.
    const needsRunningRanks = ![RoundStep.FETCH, RoundStep.RESTORE, RoundStep.DISCARD, RoundStep.PUT_BACK].includes(req.step);
    for (const rank of needsRunningRanks ? req.ranks : []) {
      if (!this.ranks.has(req.job_id, rank)) {
        failed.set(rank, new FerryError(ErrorCode.UNKNOWN_RANK, `rank ${rank} of ${req.job_id} does not run on ${this.identity.host}`));
      }
    }
    let outcome: StepOutcome = { failed: new Map() };
    if (failed.size < req.ranks.length) {
      const known = { ...req, ranks: req.ranks.filter((r) => !failed.has(r)), dump_ranks: req.dump_ranks.filter((r) => !failed.has(r)) } as RoundRequest;
      try {
        outcome = await this.steps.run(known);
      } catch (err) {
        for (const r of known.ranks) outcome.failed.set(r, err instanceof FerryError ? err : new FerryError(ErrorCode.INTERNAL, errorMessage(err)));
      }
    }
    for (const [rank, err] of outcome.failed) failed.set(rank, err);
    // What the flushed ranks wrote goes out before this reply, on the same connection, so the coordinator's
    // output marks of the epoch count all of it (output-replay.ts); what is held back (the job's followers
    // are behind) the reply counts instead. A rank that computes outside MPI writes on until its dump: the
    // DUMP reply counts that (late-output.ts).
    let unsent: UnsentOutputInit[] = [];
    if (req.step === RoundStep.PREPARE) {
      const read = this.output.readForFlush(req.job_id);
      unsent = read.unsent;
      this.lateOutput.flushed(req.job_id, req.epoch, read.counted);
    }
    // What ranks computing outside MPI printed after that, up to their dump (late-output.ts).
    const late = req.step === RoundStep.DUMP ? this.lateOutput.dumped(req.job_id, req.epoch, outcome.images ?? []) : [];
    // Restored ranks write on into this host's log files: follow them from where the files ended before the
    // restore (what a rank computing outside MPI printed since is its output too), under the name the
    // coordinator gave (a rollback's: it knows what repeats by it).
    for (const p of outcome.started ?? []) {
      const start = outcome.logStarts?.get(p.rank ?? 0);
      const named = req.sources.find((s) => s.rank === (p.rank ?? 0))?.output_source;
      this.output.add(req.job_id, p.rank ?? 0, this.ranks.logPaths(req.job_id, p.rank ?? 0), start ? { sent: start } : undefined, named);
      this.recordOutputPosition(req.job_id, p.rank ?? 0);
    }
    return {
      job_id: req.job_id,
      epoch: req.epoch,
      step_done: req.step,
      failed: [...failed].map(([rank, err]) => ({ rank, status: errorStatus(err) })),
      acknowledged: req.ranks.length - failed.size,
      images: outcome.images ?? [],
      started: outcome.started ?? [],
      bytes_fetched: outcome.bytesFetched ?? 0,
      files_cut_back: outcome.filesCutBack ?? [],
      files_put_back: outcome.filesPutBack ?? [],
      put_back_problems: outcome.putBackProblems ?? [],
      ...(outcome.flush ? { flush: outcome.flush } : {}),
      unsent_output: unsent,
      late_output: late,
    };
  }

  /**
   * Output goes one way (no reply): the exit report that follows it on the same connection keeps the order.
   * The tailer holds while no coordinator hears this agent (registerOnce lets it go, before the transition).
   */
  private onOutput(chunk: OutputChunk): void {
    if (this.stateValue === 'stopped') return;
    this.send({ rank_output: { job_id: chunk.jobId, rank: chunk.rank, stream: chunk.stream, data: chunk.data, offset: chunk.offset, source: chunk.source, last: chunk.last ?? false, resent: chunk.resent ?? false } });
    // A restarted agent goes on from where the followers took it (output-tailer.ts: add).
    this.recordOutputPosition(chunk.jobId, chunk.rank);
  }

  /**
   * A rank whose agent connection broke (its agent crashed; this is the new
   * one) connected again: take it back if it is one of ours. Nothing goes to
   * the coordinator: its endpoint has not changed.
   */
  private onRankAttach(info: RankInfo): void {
    if (!this.ranks.has(info.jobId, info.rank)) {
      this.rankChannel?.answerAttach(
        info.jobId,
        info.rank,
        new FerryError(ErrorCode.UNKNOWN_RANK, `rank ${info.rank} of job ${info.jobId} is not known to the agent on ${this.identity.host}`),
      );
      return;
    }
    this.rankChannel?.answerAttach(info.jobId, info.rank);
  }

  /** A rank said hello: tell the coordinator where it listens (until acknowledged). */
  private onRankHello(info: RankInfo): void {
    if (info.resumedEpoch) this.ranks.recordFlush?.(info.jobId, info.rank, 0);
    if (!this.ranks.has(info.jobId, info.rank)) {
      this.rankChannel?.refuseHello(
        info.jobId,
        info.rank,
        ErrorCode.UNKNOWN_RANK,
        `rank ${info.rank} of job ${info.jobId} was not started by the agent on ${this.identity.host}`,
      );
      return;
    }
    this.reportEndpoint(info);
  }

  /**
   * Tells the coordinator where a rank that said hello listens, until acknowledged. `again`: the coordinator
   * may have been told already (a new coordinator instance; a try whose answer did not come counts so too):
   * it then hands this host the table if it went out, rather than counting the endpoint for the next one.
   */
  private reportEndpoint(info: RankInfo, again = false): void {
    const key = `${info.jobId}/${info.rank}`;
    this.endpointsInFlight.set(key, info);
    const report = (repeated: boolean): AgentMessageInit => ({
      rank_endpoint: {
        job_id: info.jobId,
        rank: info.rank,
        size: info.size,
        address: this.identity.address,
        port: info.listenPort,
        resumed_epoch: info.resumedEpoch,
        repeated,
      },
    });
    const first = report(again || (info.repeated ?? false));
    void passFaultGate('endpoint', this.identity.host)
      .then(() => this.deliver(`endpoint ${key}`, first, report(true)))
      .finally(() => {
        if (this.endpointsInFlight.get(key) === info) this.endpointsInFlight.delete(key);
      });
  }

  /**
   * After registering with a coordinator that replaced the one before (it restarted): the endpoints of the
   * ranks here that still wait for their endpoint table, which the one before had been told. A coordinator
   * gathers a job's endpoints in memory until it has every rank's, so the new one knows none of them, and
   * the job's ranks would wait for their table forever. Those whose report is still on its way are left to it
   * (it tries again, marked as told again, until answered): no report twice at once. Each is marked as told
   * again, so that a table that went out before the restart is handed out, not gathered anew.
   */
  private reportWaitingEndpoints(): void {
    for (const info of this.rankChannel?.unanswered().hellos ?? []) {
      if (this.endpointsInFlight.has(`${info.jobId}/${info.rank}`) || !this.ranks.has(info.jobId, info.rank)) continue;
      trace(`endpoint of ${info.jobId}/${info.rank} told again: the coordinator is new and the rank still waits for its endpoint table`);
      this.reportEndpoint(info, true);
    }
  }

  /**
   * Sends a report until the coordinator acknowledges it, across reconnections; after a try that failed (it
   * may have been taken, its answer lost), `retry` instead when given. A try that went to a coordinator
   * replaced since (registerOnce fails it then) is made again at once, to the new one.
   */
  private async deliver(key: string, body: AgentMessageInit, retry = body): Promise<void> {
    this.undelivered.set(key, body);
    let attempt = body;
    while (this.undelivered.get(key) === body && !this.stopped()) {
      let replaced = false;
      if (this.stateValue === 'registered') {
        const sentTo = this.coordinatorInstance;
        try {
          await this.request(attempt, this.heartbeatTimeoutMs);
          break;
        } catch (err) {
          trace(`delivering ${key}: ${errorMessage(err)}`);
          if (err instanceof FerryError && err.code !== ErrorCode.TIMEOUT && err.code !== ErrorCode.UNAVAILABLE && err.code !== ErrorCode.NOT_REGISTERED) break;
          attempt = retry;
          replaced = this.stateValue === 'registered' && this.coordinatorInstance !== sentTo;
        }
      }
      if (!replaced) await sleep(EVENT_RETRY_MS);
    }
    if (this.undelivered.get(key) === body) this.undelivered.delete(key);
  }

  private onRankExit(e: RankExitedInit): void {
    const key = `${e.job_id}/${e.rank}`;
    this.output.finish(e.job_id ?? '', e.rank ?? 0);
    this.rankChannel?.forgetRank(e.job_id ?? '', e.rank ?? 0);
    const abort = this.aborts.get(key);
    if (abort) {
      // MPI_Abort's code is the rank's status, even if a SIGTERM from the
      // job's failure reached it on its way out.
      this.aborts.delete(key);
      e = { ...e, exit_code: abort.code || e.exit_code, signal: '', reason: abort.reason };
    }
    this.undelivered.delete(`endpoint ${key}`);
    this.unackedExits.set(key, e);
    void this.reportExit(key, e);
  }

  /**
   * The coordinator has the exit, and the output sent before it (on the same connection). The rank table
   * keeps the rank while its followers have not taken all of its output (an agent restarted meanwhile
   * follows the rest again), else lets it go.
   */
  private exitAcknowledged(key: string, e: RankExitedInit): void {
    this.output.forget(e.job_id ?? '', e.rank ?? 0);
    const owes = this.output.keepsEnded(e.job_id ?? '', e.rank ?? 0);
    if (owes) this.endedOwingOutput.set(key, e);
    this.ranks.exitReported?.(e, owes);
  }

  /**
   * Keeps where a rank's output stands in the rank table, for an agent restarted after this one: from the
   * rank's start (a new source is written at once), so that whatever the agent before sent is in the
   * source the restarted one goes on in, and followers write it once.
   */
  private recordOutputPosition(jobId: string, rank: number): void {
    const p = this.output.position(jobId, rank);
    if (p) this.ranks.recordOutputPosition?.(jobId, rank, p);
  }

  /** Forgets the exits of ranks whose output the tailer let go (their followers took it). */
  private pruneEndedOwingOutput(): void {
    for (const [key, e] of this.endedOwingOutput) {
      if (this.output.keepsEnded(e.job_id ?? '', e.rank ?? 0)) continue;
      this.endedOwingOutput.delete(key);
      this.ranks.outputTaken?.(e);
    }
  }

  /** Reports an exit until acknowledged; a registration carries it too. */
  private async reportExit(key: string, e: RankExitedInit): Promise<void> {
    while (this.unackedExits.get(key) === e && this.stateValue !== 'stopped') {
      // (not while the output is held: the rank's last output, read when it is let go, goes first)
      if (this.stateValue === 'registered' && !this.output.holding) {
        try {
          this.sentExits.add(e);
          // (a tail of its output, read after the exit, ends with a `last` chunk: output-tailer.ts)
          e.output_follows = this.output.outputFollows(e.job_id ?? '', e.rank ?? 0);
          await this.request({ rank_exited: e }, this.heartbeatTimeoutMs);
          if (this.unackedExits.get(key) === e) this.unackedExits.delete(key);
          this.exitAcknowledged(key, e);
          return;
        } catch (err) {
          trace(`reporting exit of ${key}: ${errorMessage(err)}`);
        }
      }
      await sleep(EVENT_RETRY_MS);
    }
  }
}
