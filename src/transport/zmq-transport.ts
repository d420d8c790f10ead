// ServerTransport and ClientTransport over ZeroMQ ROUTER/DEALER sockets.
import * as zmq from 'zeromq';
import { tracer } from '../common/trace.js';
import { Outbox } from './outbox.js';
import type { ClientTransport, PeerId, ServerTransport } from './transport.js';

const trace = tracer('transport');

export const RECONNECT_INTERVAL_MS = 100;
export const RECONNECT_MAX_INTERVAL_MS = 5_000;

export interface ZmqServerOptions {
  /** Hard limit: libzmq drops a connection that sends a larger message. */
  maxMessageBytes: number;
}

export class ZmqServerTransport implements ServerTransport {
  private readonly router: zmq.Router;
  private readonly outbox: Outbox<[Buffer, Uint8Array]>;
  private handler: ((peer: PeerId, frames: Uint8Array[]) => void) | undefined;
  private closed = false;

  private constructor(router: zmq.Router) {
    this.router = router;
    this.outbox = new Outbox((m) => this.router.send(m));
  }

  /** Binds a ROUTER socket; rejects with the address in the message when the bind fails. */
  static async bind(address: string, options: ZmqServerOptions): Promise<ZmqServerTransport> {
    const router = new zmq.Router({ linger: 0, maxMessageSize: options.maxMessageBytes });
    try {
      await router.bind(address);
    } catch (err) {
      router.close();
      throw new Error(`cannot listen on ${address}: ${(err as Error).message}`);
    }
    const t = new ZmqServerTransport(router);
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
    this.closed = true;
    this.outbox.close();
    this.router.close();
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

  /**
   * Connects a DEALER; libzmq retries the TCP connection by itself with backoff.
   * `watchConnection`: keep `connected` up to date (a socket monitor).
   */
  constructor(address: string, options: { maxMessageBytes?: number; watchConnection?: boolean } = {}) {
    this.dealer = new zmq.Dealer({
      linger: 0,
      immediate: true,
      reconnectInterval: RECONNECT_INTERVAL_MS,
      reconnectMaxInterval: RECONNECT_MAX_INTERVAL_MS,
      ...(options.maxMessageBytes ? { maxMessageSize: options.maxMessageBytes } : {}),
    });
    if (options.watchConnection) {
      this.dealer.events.on('connect', () => (this.up = true));
      this.dealer.events.on('disconnect', () => {
        this.up = false;
        this.disconnected?.();
      });
    }
    this.dealer.connect(address);
    this.outbox = new Outbox((m) => this.dealer.send(m));
    void this.receiveLoop();
  }

  onMessage(handler: (frames: Uint8Array[]) => void): void {
    this.handler = handler;
  }

  /** Called when the TCP connection to the peer breaks (only with `watchConnection`). */
  onDisconnect(handler: () => void): void {
    this.disconnected = handler;
  }

  /** Whether a TCP connection to the peer is up now (only with `watchConnection`). */
  get connected(): boolean {
    return this.up;
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
