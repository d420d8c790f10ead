// Requests sent and not yet answered, each with a deadline. A reply settles its
// request by id, if the request accepts it (the right kind of reply, from the
// peer it was sent to); anything else is ignored as a stray. A deadline rejects
// the request with TIMEOUT naming what was asked, so a caller never waits forever.
import { ErrorCode } from '../gen/proto.js';
import { FerryError } from './ferry-error.js';

/**
 * A deadline timer that fires this much later than due means this process stood still (its event loop
 * blocked, or the machine stalled). Node runs timers before it reads I/O, so the reply may be waiting
 * unread: the request gets STALL_GRACE_MS more, once, for it to be read.
 */
const LATE_TIMER_MS = 250;
const STALL_GRACE_MS = 100;

interface Pending<R> {
  resolve: (reply: R) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  accept: (reply: R) => boolean;
  /** Who the request went to, so all of a lost peer's requests can fail at once. */
  to?: string;
}

export class PendingRequests<R> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending<R>>();

  /** Allocates an id and returns it with the promise of its reply. */
  open(what: string, timeoutMs: number, accept: (reply: R) => boolean = () => true, to?: string): { id: number; reply: Promise<R> } {
    const id = this.nextId++;
    const due = Date.now() + timeoutMs;
    const reply = new Promise<R>((resolve, reject) => {
      const expire = (graced: boolean): void => {
        const p = this.pending.get(id);
        if (!p) return;
        if (!graced && Date.now() - due >= LATE_TIMER_MS) {
          p.timer = setTimeout(() => expire(true), STALL_GRACE_MS);
          return;
        }
        this.pending.delete(id);
        reject(new FerryError(ErrorCode.TIMEOUT, `${what}: no answer within ${timeoutMs} ms`));
      };
      this.pending.set(id, { resolve, reject, timer: setTimeout(() => expire(false), timeoutMs), accept, to });
    });
    return { id, reply };
  }

  /** Settles a request; false when no such request is open or it does not accept this reply. */
  settle(id: number, reply: R): boolean {
    const p = this.pending.get(id);
    if (!p || !p.accept(reply)) return false;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(reply);
    return true;
  }

  /** Rejects every open request (the connection is gone). */
  failAll(err: Error): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(err);
    }
  }

  /** Rejects the open requests sent to `to` (that peer is gone). */
  failTo(to: string, err: Error): void {
    for (const [id, p] of this.pending) {
      if (p.to !== to) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(err);
    }
  }

  get size(): number {
    return this.pending.size;
  }
}
