// Which agents are alive, by host name. Registration, heartbeats and the
// liveness sweep all go through here; the catalog only sees state changes.
//
// Host liveness states:
//   unknown  in the catalog, not heard from since this coordinator started
//   up       registered, heartbeats arriving
//   down     no heartbeat for heartbeatTimeoutMs (or never re-registered)
// Apart from its liveness, a host may be drained by the operator (ferry drain):
// it stays up and keeps serving its images, but no new ranks are placed there.
import { ErrorCode, type RegisterRequest } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';
import type { PeerId } from '../transport/transport.js';
import type { HostCatalogState, HostDrain, HostRegistration } from './catalog-types.js';

const trace = tracer('hosts');

export type HostLiveness = HostCatalogState;

/** What the catalog keeps of a host, plus what only a live session knows. */
export interface HostSession extends HostRegistration {
  /** Where other agents fetch this host's images (known while registered). */
  imageServer: string;
  /** The image store its agent registered with ('' when it reported none); hosts with the same one share their images. */
  imageStore: string;
  peer: PeerId | undefined;
  state: HostLiveness;
  lastHeardMs: number;
  runningRanks: number;
  /** Set by ferry drain (kept in the catalog): no new ranks go there. */
  drained?: HostDrain;
}

export interface HostRegistryEvents {
  /** A host changed state; `reason` says why, for the event log. */
  stateChanged(host: HostSession, from: HostLiveness, reason: string): void;
}

export class HostRegistry {
  private readonly hosts = new Map<string, HostSession>();
  private readonly byPeer = new Map<PeerId, HostSession>();
  private lastSweepMs: number | undefined;
  private skippedLastSweep = false;

  constructor(
    private readonly heartbeatTimeoutMs: number,
    private readonly now: () => number,
    private readonly events: HostRegistryEvents,
  ) {}

  /** Hosts known from the catalog, waiting to re-register after a coordinator restart. */
  restore(host: HostRegistration & { drained?: HostDrain }): void {
    this.hosts.set(host.name, {
      ...host,
      imageServer: '',
      imageStore: host.imageStore ?? '',
      peer: undefined,
      state: 'unknown',
      lastHeardMs: this.now(),
      runningRanks: 0,
    });
  }

  /**
   * Binds a host name to the peer that sent `req`. A second live agent under the
   * same name is refused; the same agent reconnecting, or a new agent after the
   * old one went down, takes the name over.
   */
  register(peer: PeerId, req: RegisterRequest): HostSession {
    if (!req.host) throw new FerryError(ErrorCode.BAD_REQUEST, 'register: the host name is empty');
    if (!req.agent_instance) throw new FerryError(ErrorCode.BAD_REQUEST, 'register: agent_instance is empty');
    const now = this.now();
    const existing = this.hosts.get(req.host);
    if (
      existing &&
      existing.state === 'up' &&
      existing.agentInstance !== req.agent_instance &&
      now - existing.lastHeardMs < this.heartbeatTimeoutMs
    ) {
      throw new FerryError(
        ErrorCode.DUPLICATE_HOST,
        `host name "${req.host}" is held by a live agent (instance ${existing.agentInstance}, heard from ` +
          `${now - existing.lastHeardMs} ms ago); another agent may take it only after that one misses heartbeats ` +
          `for ${this.heartbeatTimeoutMs} ms`,
      );
    }
    if (existing?.peer !== undefined && this.byPeer.get(existing.peer) === existing) this.byPeer.delete(existing.peer);
    const previous = this.byPeer.get(peer);
    if (previous && previous !== existing) {
      // One connection cannot hold two host names.
      this.byPeer.delete(peer);
      previous.peer = undefined;
    }
    const from: HostLiveness = existing?.state ?? 'unknown';
    const session: HostSession = {
      name: req.host,
      address: req.address,
      cpus: req.cpus,
      criuVersion: req.criu_version,
      criuCheckOk: req.criu_check_ok,
      criuCheckDetail: req.criu_check_detail,
      agentInstance: req.agent_instance,
      imageServer: req.image_server,
      imageStore: req.image_store,
      peer,
      state: 'up',
      registeredMs: now,
      lastHeardMs: now,
      runningRanks: req.ranks.length,
      drained: existing?.drained,
    };
    this.hosts.set(req.host, session);
    this.byPeer.set(peer, session);
    trace(`register ${req.host} peer=${peer} instance=${req.agent_instance} store=${req.image_store || '-'} (was ${from})`);
    const reason = !existing
      ? 'registered'
      : existing.agentInstance === req.agent_instance
        ? 're-registered (same agent)'
        : 'registered (new agent instance)';
    this.events.stateChanged(session, existing ? from : 'unknown', reason);
    return session;
  }

  /**
   * Records a heartbeat; undefined when the peer is not registered here, or its host was marked down since
   * (the coordinator answers NOT_REGISTERED): the agent registers again, and what became of its ranks
   * meanwhile (given up and restarted elsewhere, owed a RESUME or a STOP) is settled then
   * (JobService.reconcileHost). Until 2026-12-08 a heartbeat alone brought a down host back up: an agent
   * that stood still past the timeout (stopped, its disk stalled) and never noticed went on with ranks
   * restarted elsewhere meanwhile, or left flushed for a RESUME that was never sent.
   */
  heartbeat(peer: PeerId, runningRanks: number): HostSession | undefined {
    const session = this.byPeer.get(peer);
    if (!session) return undefined;
    session.lastHeardMs = this.now();
    if (session.state !== 'up') return undefined;
    session.runningRanks = runningRanks;
    return session;
  }

  /** Any message from a registered peer counts as a sign of life. */
  touch(peer: PeerId): HostSession | undefined {
    const session = this.byPeer.get(peer);
    if (session) session.lastHeardMs = this.now();
    return session;
  }

  /**
   * Marks down every host not heard from within the timeout. A sweep that
   * comes half the timeout or more after the last one means the coordinator
   * itself stood still (its event loop blocked: a catalog write waiting on a
   * disk busy with writeback, or the whole machine stalled). The heartbeats of
   * that time then wait unread in its socket, and timers run before I/O is
   * read, so that sweep is skipped and the next one decides. Never two in a
   * row: a coordinator late at every sweep still finds its dead hosts.
   */
  sweep(): void {
    const now = this.now();
    const late = this.lastSweepMs !== undefined && now - this.lastSweepMs >= this.heartbeatTimeoutMs / 2;
    const skip = late && !this.skippedLastSweep;
    if (skip) trace(`sweep ${now - this.lastSweepMs!} ms after the last one: the coordinator stood still; the next sweep decides`);
    this.lastSweepMs = now;
    this.skippedLastSweep = skip;
    if (skip) return;
    for (const session of this.hosts.values()) {
      if (session.state === 'down') continue;
      const silentMs = now - session.lastHeardMs;
      if (silentMs >= this.heartbeatTimeoutMs) {
        const from = session.state;
        session.state = 'down';
        this.events.stateChanged(
          session,
          from,
          from === 'unknown'
            ? `did not re-register within ${this.heartbeatTimeoutMs} ms of the coordinator start`
            : `no heartbeat for ${silentMs} ms (timeout ${this.heartbeatTimeoutMs} ms)`,
        );
      }
    }
  }

  /** Drops a host that is not up (ferry forget): no list, sweep or placement sees it any more. */
  forget(name: string): void {
    const session = this.hosts.get(name);
    if (!session) return;
    if (session.peer !== undefined && this.byPeer.get(session.peer) === session) this.byPeer.delete(session.peer);
    this.hosts.delete(name);
  }

  get(name: string): HostSession | undefined {
    return this.hosts.get(name);
  }

  peerOf(name: string): PeerId | undefined {
    const s = this.hosts.get(name);
    return s && s.state === 'up' ? s.peer : undefined;
  }

  sessionOfPeer(peer: PeerId): HostSession | undefined {
    return this.byPeer.get(peer);
  }

  all(): HostSession[] {
    return [...this.hosts.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  up(): HostSession[] {
    return this.all().filter((h) => h.state === 'up');
  }

  /** Hosts new ranks may be placed on: up and not drained. */
  placeable(): HostSession[] {
    return this.up().filter((h) => !h.drained);
  }

  /** placeable(), or an error that says why there is none (NO_CAPACITY). */
  requireSomePlaceable(): HostSession[] {
    const hosts = this.placeable();
    if (hosts.length > 0) return hosts;
    const drained = this.up().filter((h) => h.drained).map((h) => h.name);
    throw new FerryError(
      ErrorCode.NO_CAPACITY,
      drained.length > 0
        ? `no live host to place the ranks on: every live host is drained (${drained.join(', ')}; \`ferry undrain HOST\` takes one back)`
        : 'no live host to place the ranks on',
    );
  }

  /** The host an operator named for new ranks (--hosts, --map, --to, a launcher's rank), if it may take them. */
  /**
   * The placeable hosts among `names` (a job's hosts, JobRow.hosts), or every placeable one when
   * `names` is null. None: NO_CAPACITY, naming each host's state, what they are (`what`) and what
   * the operator can do (`advice`).
   */
  requireSomePlaceableOf(names: readonly string[] | null, what: string, advice: string): HostSession[] {
    if (!names) return this.requireSomePlaceable();
    const wanted = new Set(names);
    const hosts = this.placeable().filter((h) => wanted.has(h.name));
    if (hosts.length > 0) return hosts;
    const states = names.map((n) => {
      const h = this.hosts.get(n);
      return `${n} ${!h ? 'unknown' : h.state !== 'up' ? h.state : `drained${h.drained?.reason ? ` (${h.drained.reason})` : ''}`}`;
    });
    throw new FerryError(ErrorCode.NO_CAPACITY, `none of ${what} is up and not drained (${states.join(', ')}); ${advice}`);
  }

  requirePlaceable(name: string): HostSession {
    const h = this.hosts.get(name);
    if (!h) throw new FerryError(ErrorCode.UNKNOWN_HOST, `host "${name}" is not known to the coordinator`);
    if (h.state !== 'up') throw new FerryError(ErrorCode.HOST_DOWN, `host "${name}" is ${h.state}`);
    if (h.drained) throw new FerryError(ErrorCode.HOST_DRAINED, `host "${name}" ${drainedWhy(name, h.drained)}`);
    return h;
  }

  /** Marks a host drained, or (undefined) takes it back. */
  setDrained(name: string, drain: HostDrain | undefined): void {
    const h = this.hosts.get(name);
    if (h) h.drained = drain;
  }
}

/** "is drained (REASON): no new ranks go there until `ferry undrain NAME`" */
export function drainedWhy(name: string, drain: HostDrain): string {
  return `is drained${drain.reason ? ` (${drain.reason})` : ''}: no new ranks go there until \`ferry undrain ${name}\``;
}
