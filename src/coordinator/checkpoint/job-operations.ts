// One operation at a time per job: a checkpoint, a restart or a migration.
// A second one is refused with what is running, never queued.
import { ErrorCode } from '../../gen/proto.js';
import { FerryError } from '../../common/ferry-error.js';

export class JobOperations {
  private readonly running = new Map<string, () => string>();

  /** Claims the job; `describe` says what runs, for whoever is refused. Returns the release. */
  begin(jobId: string, describe: () => string): () => void {
    const current = this.running.get(jobId);
    if (current) throw new FerryError(ErrorCode.BUSY, `job ${jobId} is busy: ${current()}; try again when it is done`);
    this.running.set(jobId, describe);
    return () => {
      if (this.running.get(jobId) === describe) this.running.delete(jobId);
    };
  }

  busy(jobId: string): boolean {
    return this.running.has(jobId);
  }
}
