// Output of a job that no one follows right now, kept (up to a bound) for the
// next follower. The gap it closes: a coordinator that restarts forgets its
// followers, which find it again at their next renewal (every 2 s). Output the
// ranks write in between, and with it a short job's last lines, used to reach
// nobody; now the renewal gets it, even when the job ended meanwhile. A first
// `ferry attach` to a job no one followed gets its most recent output too.
import type { JobOutputInit } from '../gen/proto.js';

/** Bytes kept per job; older output goes first, and the follower is told how much went. */
export const UNFOLLOWED_OUTPUT_BYTES = 256 * 1024;
/** How long an ended job's kept output waits for a follower. */
export const UNFOLLOWED_OUTPUT_KEEP_MS = 60_000;

interface Kept {
  chunks: JobOutputInit[];
  bytes: number;
  /** Bytes dropped to stay within the bound. */
  dropped: number;
  timer?: NodeJS.Timeout;
}

export class UnfollowedOutput {
  private readonly jobs = new Map<string, Kept>();

  constructor(private readonly maxBytes = UNFOLLOWED_OUTPUT_BYTES) {}

  keep(out: JobOutputInit): void {
    const jobId = out.job_id ?? '';
    const k = this.jobs.get(jobId) ?? { chunks: [], bytes: 0, dropped: 0 };
    this.jobs.set(jobId, k);
    const size = out.data?.length ?? 0;
    k.chunks.push(out);
    k.bytes += size;
    while (k.bytes > this.maxBytes && k.chunks.length > 1) {
      const old = k.chunks.shift()!;
      k.bytes -= old.data?.length ?? 0;
      k.dropped += old.data?.length ?? 0;
    }
  }

  /**
   * Hands over (and forgets) what was kept of the job for a follower of
   * `ranks` (undefined: every rank); the rest stays for the other followers.
   */
  take(jobId: string, ranks?: ReadonlySet<number>): { chunks: JobOutputInit[]; dropped: number } {
    const k = this.jobs.get(jobId);
    if (!k) return { chunks: [], dropped: 0 };
    const mine = k.chunks.filter((c) => !ranks || ranks.has(c.rank ?? 0));
    k.chunks = k.chunks.filter((c) => ranks && !ranks.has(c.rank ?? 0));
    k.bytes = k.chunks.reduce((n, c) => n + (c.data?.length ?? 0), 0);
    const dropped = k.dropped;
    k.dropped = 0;
    if (k.chunks.length === 0) this.forget(jobId);
    return { chunks: mine, dropped };
  }

  /** The job ended: what no one took by `keepMs` from now is forgotten. */
  ended(jobId: string, keepMs = UNFOLLOWED_OUTPUT_KEEP_MS): void {
    const k = this.jobs.get(jobId);
    if (!k || k.timer) return;
    k.timer = setTimeout(() => this.forget(jobId), keepMs);
    k.timer.unref?.();
  }

  forget(jobId: string): void {
    const k = this.jobs.get(jobId);
    if (k?.timer) clearTimeout(k.timer);
    this.jobs.delete(jobId);
  }

  /** Bytes kept, of every job (for tests). */
  bytesKept(): number {
    return [...this.jobs.values()].reduce((n, k) => n + k.bytes, 0);
  }
}
