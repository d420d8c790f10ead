// ServerTransport and ClientTransport over ZeroMQ ROUTER/DEALER sockets.
import * as zmq from 'zeromq';
import { tracer } from '../common/trace.js';
import { type ClusterKey, keyOrProcessKey } from './cluster-key.js';
import { curveClientOptions, curveServerClosed, curveServerOptions } from './curve-security.js';
import { Outbox } from './outbox.js';
import type { ClientTransport, PeerId, ServerTransport } from './transport.js';

const trace = tracer('transport');

export const RECONNECT_INTERVAL_MS = 100;
export const RECONNECT_MAX_INTERVAL_MS = 5_000;

export interface ZmqServerOptions {
  /** Hard limit: libzmq drops a connection that sends a larger message. */
  maxMessageBytes: number;
  /** The cluster key (null: none); default the process's (cluster-key.ts). */
  key?: ClusterKey | null;
}

export class ZmqServerTransport implements ServerTransport {
  private readonly router: zmq.Router;
  private readonly outbox: Outbox<[Buffer, Uint8Array]>;
  private handler: ((peer: PeerId, frames: Uint8Array[]) => void) | undefined;
  private closed = false;

  private constructor(
    router: zmq.Router,
    private readonly key: ClusterKey | null,
  ) {
    this.router = router;
    this.outbox = new Outbox((m) => this.router.send(m));
  }

  /** Binds a ROUTER socket; rejects with the address in the message when the bind fails. */
  static async bind(address: string, options: ZmqServerOptions): Promise<ZmqServerTransport> {
    const key = keyOrProcessKey(options.key);
    const router = new zmq.Router({ linger: 0, maxMessageSize: options.maxMessageBytes, ...(await curveServerOptions(key)) });
    try {
      await router.bind(address);
    } catch (err) {
      router.close();
      curveServerClosed(key);
      throw new Error(`cannot listen on ${address}: ${(err as Error).message}`);
    }
    const t = new ZmqServerTransport(router, key);
    void t.receiveLoop();
    return t;
  }

  /** The bound address, with the real port when bound to port 0. */
  get address(): string {
    return this.router.lastEndpoint ?? '';
  }

  onMessage(handler: (peer: PeerId, frames: Uint8Array[]) => void): void {
    this.handler = handler;
  }

  send(peer: PeerId, frame: Uint8Array): void {
    this.outbox.push([Buffer.from(peer, 'hex'), frame]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.outbox.close();
    this.router.close();
    curveServerClosed(this.key);
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const [id, ...frames] of this.router) {
        if (!id) continue;
        this.handler?.(id.toString('hex'), frames);
      }
    } catch (err) {
      if (!this.closed) trace(`router receive loop ended: ${(err as Error).message}`);
    }
  }
}

export class ZmqClientTransport implements ClientTransport {
  private readonly dealer: zmq.Dealer;
  private readonly outbox: Outbox<Uint8Array>;
  private handler: ((frames: Uint8Array[]) => void) | undefined;
  private closed = false;
  private up = false;
  private disconnected: (() => void) | undefined;
  private refusedWhy: string | undefined;
  private onRefusedHandler: ((why: string) => void) | undefined;

  /**
   * Connects a DEALER; libzmq retries the TCP connection by itself with backoff.
   * `watchConnection`: keep `connected` and `refused` up to date (a socket monitor).
   * `key`: the cluster key (null: none); default the process's (cluster-key.ts).
   */
  constructor(address: string, options: { maxMessageBytes?: number; watchConnection?: boolean; key?: ClusterKey | null } = {}) {
    const key = keyOrProcessKey(options.key);
    this.dealer = new zmq.Dealer({
      linger: 0,
      immediate: true,
      reconnectInterval: RECONNECT_INTERVAL_MS,
      reconnectMaxInterval: RECONNECT_MAX_INTERVAL_MS,
      ...(options.maxMessageBytes ? { maxMessageSize: options.maxMessageBytes } : {}),
      ...curveClientOptions(key),
    });
    if (options.watchConnection) {
      this.dealer.events.on('connect', () => (this.up = true));
      this.dealer.events.on('disconnect', () => {
        this.up = false;
        this.disconnected?.();
      });
      // A server with a cluster key refuses a client without it (or with another): a TCP connection, then no handshake.
      const refused = (why: string) => {
        if (this.refusedWhy === undefined) this.onRefusedHandler?.(why); // once, not at every reconnection
        this.refusedWhy = why;
      };
      // Another key already fails the first CURVE step: the server cannot read the client's HELLO and
      // hangs up ("other"; a keyless client against a keyed server sees that or "protocol"). A keyless
      // client cannot tell such a hang-up from a connection broken during its handshake: it asks.
      const why = key
        ? 'the security handshake failed: it and this client do not share one cluster key (FERRY_KEY, --key)'
        : 'the handshake failed: does it need a cluster key? this client has none (FERRY_KEY, --key)';
      for (const e of ['handshake:error:auth', 'handshake:error:protocol', 'handshake:error:other'] as const) this.dealer.events.on(e, () => refused(why));
      this.dealer.events.on('handshake', () => (this.refusedWhy = undefined));
    }
    this.dealer.connect(address);
    this.outbox = new Outbox(
      (m) => this.dealer.send(m),
      (m) => m.length,
    );
    void this.receiveLoop();
  }

  onMessage(handler: (frames: Uint8Array[]) => void): void {
    this.handler = handler;
  }

  get queuedBytes(): number {
    return this.outbox.queuedBytes;
  }

  /** Called when the TCP connection to the peer breaks (only with `watchConnection`). */
  onDisconnect(handler: () => void): void {
    this.disconnected = handler;
  }

  /** Whether a TCP connection to the peer is up now (only with `watchConnection`). */
  get connected(): boolean {
    return this.up;
  }

  /** Called when the peer's security handshake fails (only with `watchConnection`). */
  onRefused(handler: (why: string) => void): void {
    this.onRefusedHandler = handler;
  }

  /** Why the peer's security handshake failed, if it did (only with `watchConnection`). */
  get refused(): string | undefined {
    return this.refusedWhy;
  }

  send(frame: Uint8Array): void {
    this.outbox.push(frame);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.outbox.close();
    this.dealer.close();
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.dealer) this.handler?.(frames);
    } catch (err) {
      if (!this.closed) trace(`dealer receive loop ended: ${(err as Error).message}`);
    }
  }
}
