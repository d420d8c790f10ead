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

  constructor(private readonly write: (message: M) => Promise<void>) {}

  push(message: M): void {
    if (this.closed) return;
    if (this.queue.length >= OUTBOX_LIMIT_MESSAGES) {
      trace(`outbox full (${OUTBOX_LIMIT_MESSAGES} messages): dropping one`);
      return;
    }
    this.queue.push(message);
    if (!this.draining) void this.drain();
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const message = this.queue.shift() as M;
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
