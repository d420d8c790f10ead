// A restart from an epoch rolls the ranks back: what they printed after the
// epoch they print again. After an automatic restart the job's followers
// (`ferry run`, `ferry attach`) are the ones that saw it once already, so it
// is not passed on a second time. (An operator's restart of an ended job has
// new followers: they are shown everything.)
//
// The coordinator counts the bytes of each rank's stdout and stderr it has
// passed on. When every rank of a checkpoint is flushed, the agents have
// handed over all their ranks wrote until then (they read the log files to
// their end before answering PREPARE, on the same connection), or said in
// that answer how much they hold back (a job whose followers are behind: it
// goes later); these counts, plus what was held back, are the epoch's marks (kept with the epoch in the catalog). An
// automatic restart from the epoch drops, per rank and stream, as many bytes of the
// restored ranks' first output as were passed on after the mark: the same
// bytes, since a restored run repeats the uninterrupted one (a program whose
// output differs from run to run shows a seam there).
//
// The counts are saved in the catalog (output_counts) every second, with each
// epoch's marks, and when the coordinator stops; the next coordinator counts on
// from them, so its rollbacks compare with marks an earlier one took. A count
// saved late (a coordinator that crashed) is lower than what was passed on:
// then less is dropped and some output shows twice, never too much hidden.
// Marks from before counts were saved (no `durable`) still count only for the
// coordinator that took them: another one drops nothing (the restart says so).
import { RankOutput_Stream, type UnsentOutput } from '../gen/proto.js';

/** Bytes passed on per rank: [stdout, stderr]. */
export type OutputCounts = Record<number, [number, number]>;

export interface OutputMarks {
  /** The coordinator instance whose counts these are. */
  coordinator: string;
  /** Counted from the saved counts (any later coordinator can compare); absent in marks from before. */
  durable?: boolean;
  ranks: OutputCounts;
}

/** One rank's count, as saved in the catalog. */
export interface SavedOutputCount {
  jobId: string;
  rank: number;
  stdout: number;
  stderr: number;
}

export class OutputReplay {
  /** job -> rank -> bytes passed on [stdout, stderr]. */
  private readonly passed = new Map<string, Map<number, [number, number]>>();
  /** job -> rank -> bytes still to drop [stdout, stderr]. */
  private readonly dropping = new Map<string, Map<number, [number, number]>>();
  /** Jobs whose counts changed since they were last saved. */
  private readonly unsavedJobs = new Set<string>();

  /** `saved`: the counts in the catalog, job -> rank -> [stdout, stderr] (Catalog.outputCounts). */
  constructor(
    private readonly instance: string,
    saved: ReadonlyMap<string, ReadonlyMap<number, [number, number]>> = new Map(),
  ) {
    for (const [jobId, ranks] of saved) this.passed.set(jobId, new Map([...ranks].map(([r, c]) => [r, [c[0], c[1]]])));
  }

  /** The counts changed since the last call, to save (Catalog.saveOutputCounts). */
  unsaved(): SavedOutputCount[] {
    const rows: SavedOutputCount[] = [];
    for (const jobId of this.unsavedJobs) {
      for (const [rank, c] of this.passed.get(jobId) ?? []) rows.push({ jobId, rank, stdout: c[0], stderr: c[1] });
    }
    this.unsavedJobs.clear();
    return rows;
  }

  /** What of a chunk of rank output is passed on (all of it, some, or nothing). */
  filter(jobId: string, rank: number, stream: RankOutput_Stream, data: Uint8Array): Uint8Array {
    const i = stream === RankOutput_Stream.STDERR ? 1 : 0;
    const drop = this.dropping.get(jobId)?.get(rank);
    let out = data;
    if (drop && drop[i] > 0) {
      const n = Math.min(drop[i], out.length);
      drop[i] -= n;
      out = out.subarray(n);
    }
    if (out.length > 0) {
      entry(this.passed, jobId, rank)[i] += out.length;
      this.unsavedJobs.add(jobId);
    }
    return out;
  }

  /** The marks of a job now (every rank flushed, its output all handed over). */
  /**
   * The job's marks now, at a flush: what was passed on, plus `unsent`, what the agents held back of what
   * the flushed ranks had written (it is passed on later, and is not to be shown again after a rollback).
   */
  mark(jobId: string, unsent: readonly UnsentOutput[] = []): OutputMarks {
    const ranks: OutputCounts = Object.fromEntries([...(this.passed.get(jobId) ?? [])].map(([r, c]) => [r, [c[0], c[1]]]));
    for (const u of unsent) {
      const c = (ranks[u.rank] ??= [0, 0]);
      c[0] += u.stdout_bytes;
      c[1] += u.stderr_bytes;
    }
    return { coordinator: this.instance, durable: true, ranks };
  }

  /**
   * The job's ranks run again from the state of the epoch with `marks`: the
   * next bytes each writes, up to what was passed on already, are dropped.
   * Returns how many bytes that is, or undefined when the marks are another
   * coordinator's (or missing) and nothing will be dropped.
   */
  rewind(jobId: string, marks: OutputMarks | undefined): number | undefined {
    this.dropping.delete(jobId);
    if (!marks || (!marks.durable && marks.coordinator !== this.instance)) return undefined;
    let total = 0;
    const drops = new Map<number, [number, number]>();
    for (const [rank, now] of this.passed.get(jobId) ?? []) {
      const at = marks.ranks[rank] ?? [0, 0];
      const drop: [number, number] = [Math.max(0, now[0] - at[0]), Math.max(0, now[1] - at[1])];
      total += drop[0] + drop[1];
      if (drop[0] + drop[1] > 0) drops.set(rank, drop);
    }
    if (drops.size > 0) this.dropping.set(jobId, drops);
    return total;
  }

  /** Forgets a job (deleted; its saved counts go with its catalog rows). */
  forget(jobId: string): void {
    this.passed.delete(jobId);
    this.dropping.delete(jobId);
    this.unsavedJobs.delete(jobId);
  }
}

function entry(m: Map<string, Map<number, [number, number]>>, jobId: string, rank: number): [number, number] {
  let byRank = m.get(jobId);
  if (!byRank) m.set(jobId, (byRank = new Map()));
  let c = byRank.get(rank);
  if (!c) byRank.set(rank, (c = [0, 0]));
  return c;
}
