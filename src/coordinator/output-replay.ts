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
//
// What a rollback drops is a repeat: so many bytes of a rank's stream, from
// where the restored copy's output starts. The rollback names the source
// (agent/output-tailer.ts) the restored copy's agent follows its log files in
// (ImageSource.output_source), before any rank is restored: the first chunk
// of that source is the restored copy's first output, and the repeat is the
// range of that source from there. Output from any other source (the old
// copy's last lines, late) passes, whenever it comes. It is kept in the
// catalog (output_repeats), bound or not yet, so a coordinator restarted
// before the repeat has all come drops the rest of it, and what an agent
// sends again of it (a new coordinator gets what followers had not taken, as
// `resent`) is dropped again, by its place in the source.
// (Repeats saved before the rollback named the source, until 2026-12-08, have
// only the source the rank printed from before: the first chunk from another
// one counts as the restored copy's. That guessed wrong when the old copy's
// late output came first from a source the coordinator had not seen.)
import { errorMessage } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';
import { RankOutput_Stream, type UnsentOutput } from '../gen/proto.js';

const trace = tracer('output');

/** Bytes passed on per rank: [stdout, stderr]. */
export type OutputCounts = Record<number, [number, number]>;

export interface OutputMarks {
  /** The coordinator instance whose counts these are. */
  coordinator: string;
  /** Counted from the saved counts (any later coordinator can compare); absent in marks from before. */
  durable?: boolean;
  ranks: OutputCounts;
}

/**
 * `marks` with `more` added: bytes the ranks wrote that count as printed before the epoch's state (held back
 * at the flush, or printed after it up to the dump: RoundReply.late_output, agent/late-output.ts).
 */
export function withLateOutput(marks: OutputMarks, more: readonly UnsentOutput[]): OutputMarks {
  const ranks: OutputCounts = Object.fromEntries(Object.entries(marks.ranks).map(([r, c]) => [r, [c[0], c[1]]]));
  for (const u of more) {
    const c = (ranks[u.rank] ??= [0, 0]);
    c[0] += Number(u.stdout_bytes);
    c[1] += Number(u.stderr_bytes);
  }
  return { ...marks, ranks };
}

/** What a rollback drops of one rank's stream: `bytes` from `from` in `source`, the restored copy's. */
export interface OutputRepeat {
  rank: number;
  /** 0 stdout, 1 stderr. */
  stream: 0 | 1;
  bytes: number;
  /** Saved before 2026-12-08 only: the source the rank printed from before the rollback (not the restored copy's). */
  beforeSource?: string;
  /** The source the restored copy's output comes in (named at the rollback). */
  source?: string;
  /** Where the repeat starts in `source`, once the restored copy's first output of the stream came. */
  from?: number;
}

/** Where the repeats outlive the coordinator (the catalog: catalog.ts). */
export interface OutputRepeatsStore {
  /** Replaces the job's repeats. */
  saveOutputRepeats(jobId: string, repeats: readonly OutputRepeat[]): void;
  bindOutputRepeat(jobId: string, rank: number, stream: 0 | 1, source: string, from: number): void;
  outputRepeats(): (OutputRepeat & { jobId: string })[];
}

interface Repeat extends OutputRepeat {
  /** Still to drop of chunks that name no source (counted, not placed). */
  left: number;
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
  /** job -> rank -> the repeat of each stream [stdout, stderr] after a rollback. */
  private readonly repeats = new Map<string, Map<number, [Repeat | undefined, Repeat | undefined]>>();
  /** Jobs whose counts changed since they were last saved. */
  private readonly unsavedJobs = new Set<string>();

  /**
   * `saved`: the counts in the catalog, job -> rank -> [stdout, stderr] (Catalog.outputCounts); `store`:
   * where the repeats are kept, and those of a coordinator before this one are.
   */
  constructor(
    private readonly instance: string,
    saved: ReadonlyMap<string, ReadonlyMap<number, [number, number]>> = new Map(),
    private readonly store?: OutputRepeatsStore,
  ) {
    for (const [jobId, ranks] of saved) this.passed.set(jobId, new Map([...ranks].map(([r, c]) => [r, [c[0], c[1]]])));
    for (const { jobId, ...repeat } of store?.outputRepeats() ?? []) this.repeatsOf(jobId, repeat.rank)[repeat.stream] = { ...repeat, left: repeat.bytes };
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

  /**
   * What of a chunk of rank output is passed on (all of it, some, or nothing). `source` and `offset`: where
   * the chunk is (agent/output-tailer.ts); `resent`: output a coordinator before this one counted already.
   */
  filter(jobId: string, rank: number, stream: RankOutput_Stream, data: Uint8Array, source = '', offset = 0, resent = false): Uint8Array {
    const i = stream === RankOutput_Stream.STDERR ? 1 : 0;
    const repeat = this.repeats.get(jobId)?.get(rank)?.[i];
    let out = data;
    if (repeat) out = out.subarray(this.repeated(jobId, repeat, out.length, source, offset));
    if (out.length > 0 && !resent) {
      entry(this.passed, jobId, rank)[i] += out.length;
      this.unsavedJobs.add(jobId);
    }
    return out;
  }

  /** How many of the first `length` bytes of a chunk at `offset` in `source` are of the repeat. */
  private repeated(jobId: string, r: Repeat, length: number, source: string, offset: number): number {
    if (!source) {
      // (a chunk that does not say where it is: the repeat is counted off)
      const n = Math.min(r.left, length);
      r.left -= n;
      return n;
    }
    // The restored copy's first output of the stream: the repeat starts here. (A repeat saved with only the
    // source the rank printed from before the rollback: the first chunk from another one.)
    const first = r.source === undefined ? source !== r.beforeSource : r.from === undefined && source === r.source;
    if (first) {
      [r.source, r.from] = [source, offset];
      trace(`job ${jobId} rank ${r.rank} stream ${r.stream}: its repeat of ${r.bytes} bytes starts at ${offset} in ${source}`);
      this.keep(jobId, `where the repeat of rank ${r.rank} starts`, (s) => s.bindOutputRepeat(jobId, r.rank, r.stream, source, offset));
    }
    if (r.source !== source || r.from === undefined || offset < r.from) return 0;
    const n = Math.max(0, Math.min(r.from + r.bytes - offset, length));
    if (n > 0) trace(`job ${jobId} rank ${r.rank} stream ${r.stream}: ${n} of ${length} bytes at ${offset} in ${source} dropped as repeat`);
    return n;
  }

  /** What was passed on of these ranks of the job so far. */
  counts(jobId: string, ranks: readonly number[]): OutputCounts {
    const passed = this.passed.get(jobId);
    return Object.fromEntries(ranks.map((r) => [r, [...(passed?.get(r) ?? [0, 0])] as [number, number]]));
  }

  /**
   * The job's marks at a flush: what was passed on of each rank when its agent answered the PREPARE (`atReply`,
   * from counts(); now for a rank it lacks), plus `unsent`, what the agents held back of what the flushed
   * ranks had written (it is passed on later, and is not to be shown again after a rollback). Not what was
   * passed on by the end of the round: a rank that computes outside MPI prints on after its flush, and the
   * DUMP reply counts that from the PREPARE reply on (late_output; withLateOutput adds it).
   */
  mark(jobId: string, unsent: readonly UnsentOutput[] = [], atReply: OutputCounts = {}): OutputMarks {
    const ranks: OutputCounts = Object.fromEntries([...(this.passed.get(jobId) ?? [])].map(([r, c]) => [r, [c[0], c[1]]]));
    for (const [r, c] of Object.entries(atReply)) ranks[Number(r)] = [c[0], c[1]];
    return withLateOutput({ coordinator: this.instance, durable: true, ranks }, unsent);
  }

  /**
   * The job's ranks are about to run again from the state of the epoch with
   * `marks`, each restored copy's output followed in `restoredSource(rank)`:
   * the first bytes each writes there, up to what was passed on already since
   * the marks, are dropped. Called before any rank is restored, so that none of
   * a restored copy's output comes before. Returns how many bytes that is, or
   * undefined when the marks are another coordinator's (or missing) and
   * nothing will be dropped.
   */
  rewind(jobId: string, marks: OutputMarks | undefined, restoredSource: (rank: number) => string): number | undefined {
    const hadRepeats = this.repeats.delete(jobId);
    const repeats: OutputRepeat[] = [];
    if (marks && (marks.durable || marks.coordinator === this.instance)) {
      for (const [rank, now] of this.passed.get(jobId) ?? []) {
        const at = marks.ranks[rank] ?? [0, 0];
        const source = restoredSource(rank);
        for (const stream of [0, 1] as const) {
          const bytes = Math.max(0, now[stream] - at[stream]);
          if (bytes === 0) continue;
          this.repeatsOf(jobId, rank)[stream] = { rank, stream, bytes, source, left: bytes };
          trace(`job ${jobId} rank ${rank} stream ${stream}: ${bytes} bytes to drop as repeat, where ${source} starts`);
          repeats.push({ rank, stream, bytes, source });
        }
      }
    }
    if (hadRepeats || repeats.length > 0) this.keep(jobId, 'the repeats of a rollback', (s) => s.saveOutputRepeats(jobId, repeats));
    if (!marks || (!marks.durable && marks.coordinator !== this.instance)) return undefined;
    return repeats.reduce((sum, r) => sum + r.bytes, 0);
  }

  /** Forgets a job (deleted; its saved counts go with its catalog rows). */
  forget(jobId: string): void {
    this.passed.delete(jobId);
    if (this.repeats.delete(jobId)) this.keep(jobId, 'that the job ended', (s) => s.saveOutputRepeats(jobId, []));
    this.unsavedJobs.delete(jobId);
  }

  private repeatsOf(jobId: string, rank: number): [Repeat | undefined, Repeat | undefined] {
    let byRank = this.repeats.get(jobId);
    if (!byRank) this.repeats.set(jobId, (byRank = new Map()));
    let r = byRank.get(rank);
    if (!r) byRank.set(rank, (r = [undefined, undefined]));
    return r;
  }

  /** Writes to the store; refused (a full disk, say), the repeat holds for as long as this coordinator runs. */
  private keep(jobId: string, what: string, write: (s: OutputRepeatsStore) => void): void {
    if (!this.store) return;
    try {
      write(this.store);
    } catch (err) {
      trace(`job ${jobId}: cannot record ${what}: ${errorMessage(err)}`);
    }
  }
}

function entry(m: Map<string, Map<number, [number, number]>>, jobId: string, rank: number): [number, number] {
  let byRank = m.get(jobId);
  if (!byRank) m.set(jobId, (byRank = new Map()));
  let c = byRank.get(rank);
  if (!c) byRank.set(rank, (c = [0, 0]));
  return c;
}
