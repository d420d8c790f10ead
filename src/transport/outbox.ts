// zeromq.js allows one send in flight per socket: an Outbox serialises sends
// without making callers await. Messages past the limit are dropped (a peer
// that reads nothing must not grow our memory without bound).
import { tracer } from '../common/trace.js';

const trace = tracer('transport');

export const OUTBOX_LIMIT_MESSAGES = 100_000;

export class Outbox<M> {
  private readonly queue: M[] = [];
  private draining = false;
  private closed = false;
  private bytes = 0;

  /** `size`: a message's bytes, for queuedBytes (default: not counted). */
  constructor(
    private readonly write: (message: M) => Promise<void>,
    private readonly size: (message: M) => number = () => 0,
  ) {}

  /** Bytes of the messages waiting to be written (ones the socket has not taken yet: a peer slow or gone). */
  get queuedBytes(): number {
    return this.bytes;
  }

  push(message: M): void {
    if (this.closed) return;
    if (this.queue.length >= OUTBOX_LIMIT_MESSAGES) {
      trace(`outbox full (${OUTBOX_LIMIT_MESSAGES} messages): dropping one`);
      return;
    }
    this.queue.push(message);
    this.bytes += this.size(message);
    if (!this.draining) void this.drain();
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.bytes = 0;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const message = this.queue.shift() as M;
        this.bytes -= this.size(message);
        try {
          await this.write(message);
        } catch (err) {
          if (this.closed) return;
          trace(`send failed: ${(err as Error).message}`);
        }
      }
    } finally {
      this.draining = false;
    }
  }
}
