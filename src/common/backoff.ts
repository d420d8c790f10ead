// Exponential backoff with full jitter, for reconnecting to the coordinator.
export const BACKOFF_INITIAL_MS = 200;
export const BACKOFF_MAX_MS = 5_000;

export class Backoff {
  private attempt = 0;

  constructor(
    private readonly initialMs = BACKOFF_INITIAL_MS,
    private readonly maxMs = BACKOFF_MAX_MS,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next attempt: a random share of min(max, initial * 2^n). */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.max(this.initialMs / 2, Math.round(ceiling * this.random()));
  }

  reset(): void {
    this.attempt = 0;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
