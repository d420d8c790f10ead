// Writes the output of a job's ranks to this terminal, each line tagged with
// its rank ("[3] ..."), whole lines at a time so ranks never interleave within
// a line. Partial lines wait for their newline, or for the end of the job.
// Each write says when its output has gone to the file, pipe or terminal (or
// into a partial line): the follower counts output as taken then, so a pipe
// not read holds the job's output back (follower-link.ts), not in this process.
import { RankOutput_Stream } from '../gen/proto.js';

export class RankOutputWriter {
  private readonly partial = new Map<string, Buffer>();

  constructor(
    private readonly tag: boolean,
    private readonly out: (stream: RankOutput_Stream, data: Buffer, written: () => void) => void = (stream, data, written) =>
      (stream === RankOutput_Stream.STDERR ? process.stderr : process.stdout).write(data, () => written()),
  ) {}

  /** Writes a chunk of a rank's output; `written` once it is out (at once if it only waits for its newline). */
  write(rank: number, stream: RankOutput_Stream, data: Uint8Array, written: () => void = () => {}): void {
    if (!this.tag) {
      this.out(stream, Buffer.from(data), written);
      return;
    }
    const key = `${rank}/${stream}`;
    let buf = Buffer.concat([this.partial.get(key) ?? Buffer.alloc(0), data]);
    const lastNewline = buf.lastIndexOf(0x0a);
    if (lastNewline >= 0) {
      this.out(stream, this.tagLines(rank, buf.subarray(0, lastNewline + 1)), written);
      buf = buf.subarray(lastNewline + 1);
    } else written();
    if (buf.length > 0) this.partial.set(key, Buffer.from(buf));
    else this.partial.delete(key);
  }

  /** Writes what is left of unfinished lines (the job ended). */
  flush(): void {
    for (const [key, buf] of this.partial) {
      const [rank, stream] = key.split('/').map(Number);
      this.out(stream as RankOutput_Stream, Buffer.concat([this.tagLines(rank, buf), Buffer.from('\n')]), () => {});
    }
    this.partial.clear();
  }

  private tagLines(rank: number, text: Buffer): Buffer {
    const prefix = Buffer.from(`[${rank}] `);
    const parts: Buffer[] = [];
    let start = 0;
    while (start < text.length) {
      const nl = text.indexOf(0x0a, start);
      const end = nl < 0 ? text.length : nl + 1;
      parts.push(prefix, text.subarray(start, end));
      start = end;
    }
    return Buffer.concat(parts);
  }
}
