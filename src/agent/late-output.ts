// What a rank printed after its flush's reply counted its output, up to its dump.
//
// A flush does not stop a rank that computes outside MPI: its runtime's
// progress thread flushes the channels while the program computes and prints
// on, until its next MPI call or until CRIU freezes it for the DUMP. The
// PREPARE reply counts each rank's output up to where its agent read its log
// files then (OutputTailer.readForFlush: `counted`), and the coordinator makes
// the epoch's output marks of it (output-replay.ts). The restored copy of the
// rank goes on from the dump, not from the flush: what it printed in between
// it does not print again, and a rollback to the epoch that dropped that much
// of its output as a repeat dropped new output instead.
//
// Ferry's CRIU plugin records the size of every append-only file while the
// dumped tree is frozen (written-files.ts), the rank's log files among them
// (the agent opens them for append): the bytes between `counted` and that size
// are the rank's late output, which the DUMP reply reports
// (RoundReply.late_output) for the coordinator to add to the marks. Without
// the plugin's record (a CRIU that cannot load it) nothing is reported, as
// before.
import { realpathSync } from 'node:fs';
import type { UnsentOutputInit } from '../gen/proto.js';
import { readAppendedFilesSync } from '../criu/written-files.js';
import type { CountedOutput } from './output-tailer.js';

export class LateOutput {
  /** Per job, the last flush's counts (a later PREPARE replaces them; its DUMP takes them). */
  private readonly counted = new Map<string, { epoch: number; ranks: Map<number, CountedOutput> }>();

  /** The PREPARE reply of `epoch` counted the job's output this far. */
  flushed(jobId: string, epoch: number, counted: readonly CountedOutput[]): void {
    this.counted.set(jobId, { epoch, ranks: new Map(counted.map((c) => [c.rank, c])) });
  }

  /**
   * The DUMP of `epoch` wrote these ranks' images: what each printed past its count by then, for the ranks
   * that printed any (none when the flush's counts are not this epoch's, or the image has no record).
   */
  dumped(jobId: string, epoch: number, images: readonly { rank?: number; location?: string }[]): UnsentOutputInit[] {
    const flush = this.counted.get(jobId);
    if (!flush || flush.epoch !== epoch) return [];
    this.counted.delete(jobId);
    const late: UnsentOutputInit[] = [];
    for (const img of images) {
      const counted = flush.ranks.get(img.rank ?? 0);
      if (!counted || !img.location) continue;
      const sizes = new Map<string, number>();
      for (const f of readRecord(img.location)) sizes.set(f.path, Math.max(f.sizeBytes, sizes.get(f.path) ?? 0));
      const past = (log: { path: string; upTo: number }) => Math.max(0, (sizes.get(resolved(log.path)) ?? 0) - log.upTo);
      const [stdout, stderr] = [past(counted.out), past(counted.err)];
      if (stdout + stderr > 0) late.push({ rank: counted.rank, stdout_bytes: stdout, stderr_bytes: stderr });
    }
    return late;
  }
}

/** The plugin's record in an image; none where it cannot be read (late output then goes unreported). */
function readRecord(location: string): { path: string; sizeBytes: number }[] {
  try {
    return readAppendedFilesSync(location);
  } catch {
    return [];
  }
}

/** The path as the plugin reads it from /proc (symbolic links resolved). */
function resolved(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}
