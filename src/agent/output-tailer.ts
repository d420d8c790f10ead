// Follows the per-rank log files and hands new bytes to a sink, in order, in
// bounded chunks. Ranks write to files (not pipes) so their output survives a
// dump and restore; the agent reads it back from there for `ferry run`.
//
// Output goes to the coordinator one way, so what was sent is not what it got:
// bytes sent into a connection that just died (a coordinator crashed or
// restarted, a network cut not noticed yet) are gone. Each file therefore has
// three offsets: how far it was sent, how far the coordinator acknowledged it
// (a heartbeat answered after those bytes went out on the same connection),
// and how far its followers took it (the heartbeat's answer names where the
// output still waiting at the coordinator for a follower starts; a
// coordinator's queues die with it). While the agent is not registered the
// tailer holds (reads nothing: the files keep the output); after it registers
// again it rewinds, to the acknowledged offsets with the same coordinator, to
// the taken ones with a new coordinator, and sends the rest again. What the
// coordinator before had counted goes as `resent` (output-replay.ts counts it
// once). A rank that ended stays followed until its exit is acknowledged, so
// its last output can be sent again before it, and until its followers took
// all of it: a new coordinator gets the rest as a tail (below), after the exit
// the registration carries again.
// Each chunk says where it starts in its file and which following of the file
// it is (source), so the coordinator passes on what it had already only once
// (output-resends.ts). The agent keeps each rank's source and offsets in its
// rank table (position): an agent restarted after a crash goes on in the same
// source from where the followers took the files, so neither a coordinator
// that died with it loses output nor does a follower get any twice.
//
// While a job's followers are behind, the coordinator pauses the reading of
// its ranks' files (pause; coordinator/output-flow.ts): the files hold the
// backlog, not the coordinator's memory. Nor is a file read while the
// connection has not taken what was sent before (canRead: a coordinator slow
// or gone), so that backlog stays out of the agent's memory. A rank that ends
// then leaves the rest of its files to be read after its exit, at the same
// pace (a tail: its exit says `output_follows`, and a `last` chunk ends it),
// so neither its job's end waits for a follower nor the follower loses output.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { RankOutput_Stream } from '../gen/proto.js';
import { tracer } from '../common/trace.js';

const trace = tracer('output');

export const OUTPUT_POLL_MS = 100;
export const OUTPUT_CHUNK_BYTES = 64 * 1024;
/**
 * At most this much of one file per poll (40 MB/s): a burst larger than that waits for the next poll, so a
 * pause the coordinator asks for (its followers are behind) takes hold before much more goes out.
 * Exits read everything (finish), and so do flushes, unless their job is paused (then a tail; readForFlush).
 */
export const OUTPUT_POLL_MAX_BYTES = 4 * 1024 * 1024;

export interface OutputChunk {
  jobId: string;
  rank: number;
  stream: RankOutput_Stream;
  data: Buffer;
  /** Where data starts in its file, within `source`. */
  offset: number;
  /** This following of the file: unique to one add() of one tailer. */
  source: string;
  /** No data: the rank's tail was read to its end (its exit said output_follows). */
  last?: boolean;
  /** Sent again to a new coordinator after one before it had it (and counted it). */
  resent?: boolean;
}

/** How far into a rank's log files a flush's reply counted its output (sent, or said to be held back). */
export interface CountedOutput {
  rank: number;
  out: { path: string; upTo: number };
  err: { path: string; upTo: number };
}

interface TailedFile {
  jobId: string;
  rank: number;
  stream: RankOutput_Stream;
  path: string;
  source: string;
  /** How far the file was handed to the sink. */
  offset: number;
  /** How far the coordinator has it for sure (acknowledge). */
  acked: number;
  /** How far its followers took it (acknowledge): a new coordinator gets the rest again. */
  taken: number;
  /** A coordinator may have had everything before this (and counted it): what goes again below it is `resent`. */
  resentBelow: number;
}

interface TailedRank {
  files: [TailedFile, TailedFile];
  /** The rank ended: its files grow no more; kept until its exit is acknowledged (forget) and its output taken. */
  finished: boolean;
  /**
   * Its files were not read to their end when it ended (its job paused, or the connection had a backlog):
   * the rest goes after its exit, at the poll's pace (tail), then a `last` chunk. Kept then until its exit
   * is acknowledged and so is all of its output.
   */
  tail: boolean;
  /** The tail is still being read (and is read again after a rewind). */
  tailOpen: boolean;
  exitAcked: boolean;
}

/** Where a rank's output stands: how far its files were sent and taken, in which following of them. */
export interface OutputPosition {
  sent: { out: number; err: number };
  /** How far the followers took them (a new coordinator needs the rest again). */
  taken: { out: number; err: number };
  /** The following of the files these offsets belong to (OutputChunk.source). */
  source: string;
}

/** The offsets of every followed file at one moment (snapshot), to acknowledge later. */
export type OutputSnapshot = Map<TailedFile, number>;

export class OutputTailer {
  private readonly files = new Map<string, TailedRank>();
  private timer: NodeJS.Timeout | undefined;
  private held = false;
  /** Jobs whose files are not read until then (ms since the epoch): the coordinator's followers are behind. */
  private readonly paused = new Map<string, number>();
  private readonly buffer = Buffer.alloc(OUTPUT_CHUNK_BYTES);
  private followings = 0;

  /**
   * `name`: this tailer among all that send to the coordinator (the agent's instance id). `canRead`:
   * whether the periodic poll may read now (false while the connection has a backlog).
   */
  constructor(
    private readonly sink: (chunk: OutputChunk) => void,
    private readonly name = '',
    private readonly canRead: () => boolean = () => true,
  ) {}

  /**
   * Starts following a rank's files from their current end (earlier runs' output
   * is not repeated), or from `from`: a restarted agent goes on where the one
   * before it stood. From where the followers took the files then, in the same
   * source, as the coordinator may have been replaced too (it lost what they had
   * not taken): the coordinator, and then `ferry run`, pass on each byte once.
   * What the agent before had sent goes as `resent`. (A rank table written
   * before the taken offsets were kept: from what was sent, in a new source.)
   * `named`: the new source's name, when the coordinator gave one (a rollback's restored rank:
   * ImageSource.output_source); otherwise the tailer names it.
   */
  add(jobId: string, rank: number, paths: { out: string; err: string }, from?: Partial<OutputPosition> & { sent: { out: number; err: number } }, named?: string): void {
    // A tail of the copy of the rank before (its job paused, its followers behind) is not read on: the rank
    // restored here writes on into the same files, followed from where they end now. Its `last` tells the
    // coordinator not to wait for the rest, which stays in the log files.
    const before = this.files.get(`${jobId}/${rank}`);
    if (before?.tailOpen) {
      trace(`${jobId}/${rank}: the tail of its copy before ends unread at ${before.files.map((f) => f.offset).join(',')}: a new copy is followed`);
      this.endTail(before);
    }
    const sent = from ? from.sent : logEnds(paths);
    const resumed = from?.source && from.taken ? { source: from.source, taken: from.taken } : undefined;
    const start = resumed ? resumed.taken : sent;
    const source = resumed ? resumed.source : named || `${this.name}.${++this.followings}`;
    const file = (stream: RankOutput_Stream, path: string, at: number, sentTo: number): TailedFile => ({
      jobId,
      rank,
      stream,
      path,
      source,
      offset: at,
      acked: at,
      taken: at,
      resentBelow: Math.max(at, sentTo),
    });
    this.files.set(`${jobId}/${rank}`, {
      files: [file(RankOutput_Stream.STDOUT, paths.out, start.out, sent.out), file(RankOutput_Stream.STDERR, paths.err, start.err, sent.err)],
      finished: false,
      tail: false,
      tailOpen: false,
      exitAcked: false,
    });
    if (!this.timer) {
      this.timer = setInterval(() => this.poll(), OUTPUT_POLL_MS);
      this.timer.unref?.();
    }
  }

  /**
   * A rank that had ended, its exit acknowledged, before this tailer's agent was restarted, and whose
   * followers had not taken all of its output: the rest goes from `from` as a tail (its exit goes again,
   * saying output_follows; a `last` chunk ends it), and it is let go once all of it was taken.
   */
  addEnded(jobId: string, rank: number, paths: { out: string; err: string }, from: Partial<OutputPosition> & { sent: { out: number; err: number } }): void {
    this.add(jobId, rank, paths, from);
    const entry = this.files.get(`${jobId}/${rank}`)!;
    Object.assign(entry, { finished: true, tail: true, tailOpen: true, exitAcked: true });
  }

  /**
   * The rank ended: reads what is left of its files (now, or when released if
   * held), unless its job is paused or the connection has a backlog: then the
   * rest is a tail, read at the poll's pace after its exit. They stay until forget().
   */
  finish(jobId: string, rank: number): void {
    const entry = this.files.get(`${jobId}/${rank}`);
    if (!entry || entry.finished) return;
    entry.finished = true;
    if (!this.held) this.settleFinished(entry);
  }

  /**
   * Whether the output of an ended rank goes on after its exit (the exit says so: output_follows): a tail not
   * read to its end yet. (One whose `last` went already, before the exit: the exit goes after all of it, and a
   * coordinator waits for no tail. Until 2026-12-08 such an exit said a tail followed, after a cut: the
   * coordinator, which had taken that `last` for a stray, waited for another, and the job's follow never ended.)
   */
  outputFollows(jobId: string, rank: number): boolean {
    const entry = this.files.get(`${jobId}/${rank}`);
    return !!entry?.finished && entry.tailOpen;
  }

  /**
   * The ended rank's exit was acknowledged, and with it all its output sent before: its files are let go
   * once its followers took all of it (acknowledge), and a tail was read to its end.
   */
  forget(jobId: string, rank: number): void {
    const key = `${jobId}/${rank}`;
    const entry = this.files.get(key);
    // (a copy of the rank started here since is followed under the same key, not finished)
    if (!entry?.finished) return;
    entry.exitAcked = true;
    this.removeIfDone(key, entry);
  }

  /** Whether the tailer still follows the files of this ended rank whose exit was acknowledged (forget). */
  keepsEnded(jobId: string, rank: number): boolean {
    const entry = this.files.get(`${jobId}/${rank}`);
    return !!entry?.finished && entry.exitAcked;
  }

  /**
   * Before a registration that rewinds (held): every ended rank with output its followers may not have
   * taken, or a tail not read to its end, becomes a tail (read after its exit, which the registration
   * carries saying output_follows; a `last` chunk ends it, also when there is nothing to send again).
   */
  reopenTails(): void {
    for (const entry of this.files.values()) {
      if (!entry.finished || (!entry.tailOpen && entry.files.every((f) => f.taken >= f.offset))) continue;
      entry.tail = true;
      entry.tailOpen = true;
    }
  }

  /** Where a rank's output stands (what the agent keeps in its rank table: a restarted agent goes on from it). */
  position(jobId: string, rank: number): OutputPosition | undefined {
    const entry = this.files.get(`${jobId}/${rank}`);
    if (!entry) return undefined;
    const [out, err] = entry.files;
    return { sent: { out: out.offset, err: err.offset }, taken: { out: out.taken, err: err.taken }, source: out.source };
  }

  /** The ranks followed now, "job/rank". */
  followed(): { jobId: string; rank: number }[] {
    return [...this.files.values()].map((e) => ({ jobId: e.files[0].jobId, rank: e.files[0].rank }));
  }

  /** How far every file was sent now: acknowledge() it once the coordinator answered something sent after. */
  snapshot(): OutputSnapshot {
    const snap: OutputSnapshot = new Map();
    for (const entry of this.files.values()) for (const f of entry.files) snap.set(f, f.offset);
    return snap;
  }

  /**
   * The coordinator has what was sent up to `snap`; `untaken` (from a heartbeat's answer): where, per
   * source and stream, the output it has that its followers have not taken yet starts (the rest of `snap`
   * is taken). Without it, nothing more counts as taken.
   */
  acknowledge(snap: OutputSnapshot, untaken?: readonly { source: string; stream: RankOutput_Stream; offset: number }[]): void {
    const waiting = new Map((untaken ?? []).map((u) => [`${u.source}\0${u.stream}`, u.offset]));
    for (const [f, offset] of snap) {
      if (offset > f.acked) f.acked = offset;
      if (untaken) f.taken = Math.max(f.taken, Math.min(offset, waiting.get(`${f.source}\0${f.stream}`) ?? offset));
    }
    for (const [key, entry] of this.files) this.removeIfDone(key, entry);
  }

  /** An ended rank is let go once its exit was acknowledged, its tail read and all its output taken. */
  private removeIfDone(key: string, entry: TailedRank): void {
    if (entry.finished && entry.exitAcked && !entry.tailOpen && entry.files.every((f) => f.taken >= f.offset)) this.remove(key);
  }

  /** Whether the tailer holds (hold() until release()). */
  get holding(): boolean {
    return this.held;
  }

  /** Reads nothing until release(): the agent has no coordinator to send to. */
  hold(): void {
    this.held = true;
  }

  /**
   * Sends again, at the next release or poll, from the acknowledged offsets, or from the taken ones if the
   * coordinator was `replaced` (a tail ends with `last` again).
   */
  rewind(replaced = false): void {
    for (const entry of this.files.values()) {
      for (const f of entry.files) {
        if (replaced) {
          // All that was sent, not only what was acknowledged: a coordinator that stopped (an upgrade) got it
          // and saved its count, and a new one counting it again would drop that much new output after a
          // later rollback. One that crashed may not have had it: then a rollback shows it twice at worst.
          f.resentBelow = Math.max(f.resentBelow, f.offset);
          f.acked = f.taken;
        }
        f.offset = f.acked;
      }
      if (entry.tail) entry.tailOpen = true;
    }
  }

  /**
   * Jobs with output their followers had not taken (a new coordinator holds it for them: RegisterRequest):
   * also what the agent before this one had sent, and they had not taken (resumed by add()).
   */
  untakenJobs(): string[] {
    const jobs = new Set<string>();
    for (const entry of this.files.values()) for (const f of entry.files) if (f.taken < Math.max(f.acked, f.resentBelow)) jobs.add(f.jobId);
    return [...jobs];
  }

  /**
   * Reads on: ended ranks' files to their end now (their exits wait for that; a paused job's are tails),
   * the others as at each poll (a long disconnection's backlog goes out at the poll's pace, and not while
   * its job is paused).
   */
  release(): void {
    this.held = false;
    for (const entry of this.files.values()) if (entry.finished && !entry.tail) this.settleFinished(entry);
    this.poll();
  }

  /**
   * A checkpoint flushed the job's ranks: reads their files to the end now, unless the job is paused, the
   * connection has a backlog or the tailer holds. Returns, per rank, what is left unsent then (it goes
   * later; the epoch's output marks count it), and how far into its files that counts (`counted`: a rank
   * that computes outside MPI prints on until its dump; late-output.ts).
   */
  readForFlush(jobId: string): { unsent: { rank: number; stdout_bytes: number; stderr_bytes: number }[]; counted: CountedOutput[] } {
    const unsent = [];
    const counted: CountedOutput[] = [];
    const reading = !this.held && !this.isPaused(jobId) && this.canRead();
    for (const entry of this.files.values()) {
      const [out, err] = entry.files;
      if (out.jobId !== jobId) continue;
      if (reading) for (const f of entry.files) this.drain(f);
      const [outSize, errSize] = [sizeOf(out.path), sizeOf(err.path)];
      const rank = { rank: out.rank, stdout_bytes: Math.max(0, outSize - out.offset), stderr_bytes: Math.max(0, errSize - err.offset) };
      if (rank.stdout_bytes + rank.stderr_bytes > 0) unsent.push(rank);
      counted.push({ rank: out.rank, out: { path: out.path, upTo: Math.max(outSize, out.offset) }, err: { path: err.path, upTo: Math.max(errSize, err.offset) } });
    }
    return { unsent, counted };
  }

  /** Holds back a job's output for `ms` (0: reads on now). */
  pause(jobId: string, ms: number): void {
    if (ms > 0) this.paused.set(jobId, Date.now() + ms);
    else if (this.paused.delete(jobId)) this.poll();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.files.clear();
  }

  private poll(): void {
    if (this.held) return;
    const now = Date.now();
    for (const [jobId, until] of this.paused) if (until <= now) this.paused.delete(jobId);
    for (const entry of this.files.values()) {
      if ((entry.finished && !entry.tailOpen) || this.paused.has(entry.files[0].jobId)) continue;
      let atEnd = true;
      for (const f of entry.files) {
        if (!this.canRead()) return;
        if (!this.drain(f, OUTPUT_POLL_MAX_BYTES)) atEnd = false;
      }
      if (entry.finished && atEnd) this.endTail(entry);
    }
  }

  /** An ended rank's files: read to their end now, or a tail if its job is paused or the connection has a backlog. */
  private settleFinished(entry: TailedRank): void {
    if (this.isPaused(entry.files[0].jobId) || !this.canRead()) {
      entry.tail = true;
      entry.tailOpen = true;
      return;
    }
    for (const f of entry.files) this.drain(f);
  }

  /** A tail read to its end: the `last` chunk says so. */
  private endTail(entry: TailedRank): void {
    entry.tailOpen = false;
    const out = entry.files[0];
    this.sink({ jobId: out.jobId, rank: out.rank, stream: out.stream, data: Buffer.alloc(0), offset: out.offset, source: out.source, last: true });
  }

  private isPaused(jobId: string): boolean {
    const until = this.paused.get(jobId);
    return until !== undefined && until > Date.now();
  }

  private remove(key: string): void {
    this.files.delete(key);
    if (this.files.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Reads `f` on from its offset, up to `maxBytes`; whether it got to the file's end. */
  private drain(f: TailedFile, maxBytes = Infinity): boolean {
    let fd: number;
    try {
      fd = openSync(f.path, 'r');
    } catch {
      return true; // not created yet
    }
    try {
      for (let read = 0; read < maxBytes; ) {
        // (a chunk is all resent or not at all)
        const resent = f.offset < f.resentBelow;
        const n = readSync(fd, this.buffer, 0, resent ? Math.min(this.buffer.length, f.resentBelow - f.offset) : this.buffer.length, f.offset);
        if (n <= 0) return true;
        const offset = f.offset;
        f.offset += n;
        read += n;
        this.sink({ jobId: f.jobId, rank: f.rank, stream: f.stream, data: Buffer.from(this.buffer.subarray(0, n)), offset, source: f.source, ...(resent ? { resent } : {}) });
      }
      return false;
    } catch (err) {
      trace(`reading ${f.path}: ${(err as Error).message}`);
      return true;
    } finally {
      closeSync(fd);
    }
  }
}

/** Where a rank's log files end now (0: not there). */
export function logEnds(paths: { out: string; err: string }): { out: number; err: number } {
  return { out: sizeOf(paths.out), err: sizeOf(paths.err) };
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
