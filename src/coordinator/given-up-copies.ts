// Ranks given up with their host (down past the rejoin grace, or forgotten)
// whose host was only cut off: when it comes back, its agent sends on what
// those copies printed while no coordinator heard it, up to the moment they
// were fenced (agent/rank-fence.ts) or killed as stale copies. By then the
// job may have restarted from its last epoch elsewhere, and the restored
// copies print all of that again: passed on as well, it would show twice, and
// out of place. So once a rank runs on another host, the output of its
// given-up copy is left out, with a notice. (When the job only failed, the
// rank's last words before its host went are the operator's to read.) The
// marks are kept in the catalog too: a coordinator restarted before the host
// comes back leaves that output out all the same.
import { errorMessage } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';

const trace = tracer('jobs');

/** Where the marks outlive the coordinator (the catalog: catalog.ts). */
export interface GivenUpCopiesStore {
  addGivenUpCopy(jobId: string, rank: number, host: string): void;
  removeGivenUpCopy(jobId: string, rank: number, host: string): void;
  givenUpCopies(): { jobId: string; rank: number; host: string }[];
}

interface GivenUp {
  /** Bytes left out so far. */
  bytes: number;
}

const key = (jobId: string, rank: number, host: string) => `${jobId}\0${rank}\0${host}`;

export class GivenUpCopies {
  private readonly copies = new Map<string, GivenUp>();

  /** With a store: the marks a coordinator before this one kept, and this one's kept there too. */
  constructor(private readonly store?: GivenUpCopiesStore) {
    for (const c of store?.givenUpCopies() ?? []) this.copies.set(key(c.jobId, c.rank, c.host), { bytes: 0 });
  }

  /** The coordinator gave up rank `rank` of the job on `host`. */
  givenUp(jobId: string, rank: number, host: string): void {
    if (this.copies.has(key(jobId, rank, host))) return;
    this.copies.set(key(jobId, rank, host), { bytes: 0 });
    // (refused, on a full disk say: the mark holds for as long as this coordinator runs)
    this.keep(`given up rank ${rank} of job ${jobId} on ${host}`, (s) => s.addGivenUpCopy(jobId, rank, host));
  }

  /**
   * Output of the rank from `host`, which runs on `runsOn` now: 'pass' it on, or 'drop' it ('first' the
   * first time for this copy: say so).
   */
  output(jobId: string, rank: number, host: string, runsOn: () => string | undefined, bytes: number): 'pass' | 'drop' | 'first' {
    if (this.copies.size === 0) return 'pass';
    const copy = this.copies.get(key(jobId, rank, host));
    if (!copy) return 'pass';
    const now = runsOn();
    if (now === undefined || now === host) return 'pass';
    copy.bytes += bytes;
    return copy.bytes === bytes ? 'first' : 'drop';
  }

  /** The rank was placed on `host` again: what comes from there now is its new copy's. */
  placed(jobId: string, rank: number, host: string): void {
    if (this.copies.size > 0 && this.copies.delete(key(jobId, rank, host))) {
      this.keep(`rank ${rank} of job ${jobId} placed on ${host} again`, (s) => s.removeGivenUpCopy(jobId, rank, host));
    }
  }

  /**
   * The job was deleted: its output is no one's any more. The catalog keeps its copies' marks until their
   * hosts come back (Catalog.removeDeletedJobCopiesOn): a copy still running there is killed then, and the
   * job leaves the catalog only after that (purgeJob).
   */
  forget(jobId: string): void {
    for (const k of this.copies.keys()) if (k.startsWith(`${jobId}\0`)) this.copies.delete(k);
  }

  private keep(what: string, write: (s: GivenUpCopiesStore) => void): void {
    if (!this.store) return;
    try {
      write(this.store);
    } catch (err) {
      trace(`given-up copies: cannot record that ${what}: ${errorMessage(err)}`);
    }
  }
}
