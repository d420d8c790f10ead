// An in-memory stand-in for the ROUTER/DEALER pair, for protocol tests that run
// in milliseconds. Delivery is asynchronous (a microtask), like a socket.
// A hub has at most one server; while it has none, client messages are lost,
// as they would be with the coordinator down.
import type { ClientTransport, PeerId, ServerTransport } from './transport.js';

export class MemoryHub {
  private server: MemoryServer | undefined;
  private readonly clients = new Map<PeerId, MemoryClient>();
  private nextPeer = 1;
  /** Frames delivered to the server, for tests that count traffic. */
  delivered = 0;
  /** While true every message is lost both ways, as on a cut network. */
  severed = false;
  /** Clients cut off from the server (a network partition of their host): their messages are lost both ways. */
  readonly cutOff = new Set<PeerId>();
  /** Clients that hear nothing from the server while it hears them (a one-way cut; a server too slow to answer). */
  readonly deaf = new Set<PeerId>();

  listen(): MemoryServer {
    this.server = new MemoryServer(this);
    return this.server;
  }

  connect(): MemoryClient {
    const peer = (this.nextPeer++).toString(16).padStart(8, '0');
    const client = new MemoryClient(this, peer);
    this.clients.set(peer, client);
    return client;
  }

  /** @internal */ toServer(peer: PeerId, frame: Uint8Array): void {
    const server = this.server;
    if (!server || server.closed || this.severed || this.cutOff.has(peer)) return;
    const copy = Uint8Array.from(frame);
    queueMicrotask(() => {
      if (server.closed || this.server !== server) return;
      this.delivered++;
      server.deliver(peer, [copy]);
    });
  }

  /** @internal */ toClient(peer: PeerId, frame: Uint8Array): void {
    const client = this.clients.get(peer);
    if (!client || this.severed || this.cutOff.has(peer) || this.deaf.has(peer)) return;
    const copy = Uint8Array.from(frame);
    queueMicrotask(() => {
      if (!client.closed) client.deliver([copy]);
    });
  }

  /** @internal */ drop(peer: PeerId): void {
    this.clients.delete(peer);
  }

  /** @internal */ serverClosed(server: MemoryServer): void {
    if (this.server === server) this.server = undefined;
  }
}

export class MemoryServer implements ServerTransport {
  closed = false;
  private handler: ((peer: PeerId, frames: Uint8Array[]) => void) | undefined;

  constructor(private readonly hub: MemoryHub) {}

  onMessage(handler: (peer: PeerId, frames: Uint8Array[]) => void): void {
    this.handler = handler;
  }

  send(peer: PeerId, frame: Uint8Array): void {
    if (!this.closed) this.hub.toClient(peer, frame);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.hub.serverClosed(this);
  }

  /** @internal */ deliver(peer: PeerId, frames: Uint8Array[]): void {
    this.handler?.(peer, frames);
  }
}

export class MemoryClient implements ClientTransport {
  closed = false;
  private handler: ((frames: Uint8Array[]) => void) | undefined;

  constructor(private readonly hub: MemoryHub, readonly peer: PeerId) {}

  onMessage(handler: (frames: Uint8Array[]) => void): void {
    this.handler = handler;
  }

  send(frame: Uint8Array): void {
    if (!this.closed) this.hub.toServer(this.peer, frame);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.hub.drop(this.peer);
  }

  /** @internal */ deliver(frames: Uint8Array[]): void {
    this.handler?.(frames);
  }
}
