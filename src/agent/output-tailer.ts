// Follows the per-rank log files and hands new bytes to a sink, in order, in
// bounded chunks. Ranks write to files (not pipes) so their output survives a
// dump and restore; the agent reads it back from there for `ferry run`.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { RankOutput_Stream } from '../gen/proto.js';
import { tracer } from '../common/trace.js';

const trace = tracer('output');

export const OUTPUT_POLL_MS = 100;
export const OUTPUT_CHUNK_BYTES = 64 * 1024;

export interface OutputChunk {
  jobId: string;
  rank: number;
  stream: RankOutput_Stream;
  data: Buffer;
}

interface TailedFile {
  jobId: string;
  rank: number;
  stream: RankOutput_Stream;
  path: string;
  offset: number;
}

export class OutputTailer {
  private readonly files = new Map<string, TailedFile[]>();
  private timer: NodeJS.Timeout | undefined;
  private readonly buffer = Buffer.alloc(OUTPUT_CHUNK_BYTES);

  constructor(private readonly sink: (chunk: OutputChunk) => void) {}

  /**
   * Starts following a rank's files from their current end (earlier runs' output
   * is not repeated), or from `from` (a restarted agent goes on where the one
   * before it stopped).
   */
  add(jobId: string, rank: number, paths: { out: string; err: string }, from?: { out: number; err: number }): void {
    const entry: TailedFile[] = [
      { jobId, rank, stream: RankOutput_Stream.STDOUT, path: paths.out, offset: from ? from.out : sizeOf(paths.out) },
      { jobId, rank, stream: RankOutput_Stream.STDERR, path: paths.err, offset: from ? from.err : sizeOf(paths.err) },
    ];
    this.files.set(`${jobId}/${rank}`, entry);
    if (!this.timer) {
      this.timer = setInterval(() => this.poll(), OUTPUT_POLL_MS);
      this.timer.unref?.();
    }
  }

  /** Reads what is left of a rank's files and stops following them. */
  finish(jobId: string, rank: number): void {
    const key = `${jobId}/${rank}`;
    const entry = this.files.get(key);
    if (!entry) return;
    for (const f of entry) this.drain(f);
    this.files.delete(key);
    if (this.files.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** How far a rank's files have been handed to the sink. */
  offsets(jobId: string, rank: number): { out: number; err: number } | undefined {
    const entry = this.files.get(`${jobId}/${rank}`);
    return entry ? { out: entry[0].offset, err: entry[1].offset } : undefined;
  }

  /** Reads what is new in every followed file now. */
  pollNow(): void {
    this.poll();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.files.clear();
  }

  private poll(): void {
    for (const entry of this.files.values()) for (const f of entry) this.drain(f);
  }

  private drain(f: TailedFile): void {
    let fd: number;
    try {
      fd = openSync(f.path, 'r');
    } catch {
      return; // not created yet
    }
    try {
      for (;;) {
        const n = readSync(fd, this.buffer, 0, this.buffer.length, f.offset);
        if (n <= 0) break;
        f.offset += n;
        this.sink({ jobId: f.jobId, rank: f.rank, stream: f.stream, data: Buffer.from(this.buffer.subarray(0, n)) });
      }
    } catch (err) {
      trace(`reading ${f.path}: ${(err as Error).message}`);
    } finally {
      closeSync(fd);
    }
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
