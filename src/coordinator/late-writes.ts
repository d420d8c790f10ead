// Catalog writes that wait for room. When the catalog's disk is full, a step
// past its point of no return (a migration's ranks stopped at their source, a
// restart's ranks resumed, a checkpoint's ranks resumed after an abort) goes
// on from what the coordinator holds in memory; what it could not record waits
// here, under its job and what it is of the job (a rank's endpoint, an
// epoch's abort: the latest of each), and is written once the catalog takes
// writes again (the coordinator's sweep tries every half heartbeat), and
// before the next checkpoint, migration or restart of its job (settle), which
// would otherwise start from a catalog behind the job. Each write decides
// then what is still to be written: a later write of the same rows may have
// made it moot.
import type { FerryError } from '../common/ferry-error.js';
import { catalogWriteError, isCatalogUnwritable } from './catalog-errors.js';

interface Waiting {
  /** '' for a write of no job (a host's state). */
  jobId: string;
  /** What it records, for the warning. */
  what: string;
  write: () => void;
}

export class LateWrites {
  private readonly waiting = new Map<string, Waiting>();

  constructor(
    private readonly catalogFile: string,
    /** Said when a write is refused (the coordinator's catalogTrouble: on its log, at most once a minute). */
    private readonly warn: (what: string, err: unknown) => void,
    /** Said of a late write that failed for another reason: dropped, it would hold its job back for good. */
    private readonly failed: (what: string, err: unknown) => void,
  ) {}

  /**
   * Runs `write` now (`late` false); if the catalog refuses it, it waits as `kind` of the job (in place of
   * what waited so), to run again with `late` true, and the refusal is returned (STATE_UNWRITABLE, naming
   * the catalog). Any other error is thrown.
   */
  run(jobId: string, kind: string, what: string, write: (late: boolean) => void): FerryError | undefined {
    const key = `${jobId}\0${kind}`;
    try {
      write(false);
      this.waiting.delete(key);
      return undefined;
    } catch (err) {
      if (!isCatalogUnwritable(err)) throw err;
      this.waiting.delete(key); // (to the end: written after what waited before it)
      this.waiting.set(key, { jobId, what, write: () => write(true) });
      this.warn(`${what} waits to be recorded`, err);
      return catalogWriteError(err, this.catalogFile) as FerryError;
    }
  }

  /** Whether a write of the job waits. */
  waits(jobId: string): boolean {
    return [...this.waiting.values()].some((w) => w.jobId === jobId);
  }

  /**
   * Writes what waits of the job, before an operation of it: throws STATE_UNWRITABLE naming the catalog
   * while the catalog still refuses it.
   */
  settle(jobId: string): void {
    this.writeWaiting((w) => w.jobId === jobId, true);
  }

  /** Writes what waits, in the order it came; stops at the first write the catalog still refuses. */
  retry(): void {
    this.writeWaiting(() => true, false);
  }

  private writeWaiting(which: (w: Waiting) => boolean, throwRefusal: boolean): void {
    for (const [key, w] of [...this.waiting]) {
      if (!which(w) || this.waiting.get(key) !== w) continue; // (written meanwhile, or replaced)
      try {
        w.write();
      } catch (err) {
        if (!isCatalogUnwritable(err)) {
          if (this.waiting.get(key) === w) this.waiting.delete(key);
          this.failed(w.what, err);
          continue;
        }
        if (throwRefusal) throw catalogWriteError(err, this.catalogFile);
        return;
      }
      if (this.waiting.get(key) === w) this.waiting.delete(key);
    }
  }

  get size(): number {
    return this.waiting.size;
  }
}
