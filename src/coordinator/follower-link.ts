// What goes to one follower of a job (ferry run, attach, rank-exec): its
// output, notices and final reply, in order, with at most OUTPUT_WINDOW_BYTES
// of output in flight. The coordinator's ZeroMQ ROUTER drops messages for a
// peer whose pipe is full, without a word; a chatty job (4 ranks printing 300
// MB) lost half its lines and cut others in two on their way to `ferry run`.
// A follower that counts what it received (OutputReceived) gets more only as
// it takes it; the rest waits here, in order. One that never counted (a CLI
// from before this) is sent everything at once, as before.
import type { JobOutputInit, OperatorReplyInit, OutputUntakenInit } from '../gen/proto.js';

/**
 * Output bytes, and output messages, sent to a counting follower and not yet counted by it: well under
 * what ZeroMQ holds for one peer before it drops (1,000 messages; chunks are up to 64 KiB).
 */
export const OUTPUT_WINDOW_BYTES = 16 * 1024 * 1024;
export const OUTPUT_WINDOW_MESSAGES = 500;

/**
 * Output bytes kept for one follower that does not take them (a `ferry run` stopped with Ctrl-Z, a slow
 * terminal): past it the oldest go, and the follower is told how much, where they were.
 */
export const FOLLOWER_WAITING_LIMIT_BYTES = 256 * 1024 * 1024;

/**
 * The same for a follower silent for LAPSED_FOLLOWER_TRIM_MS while another follows the job (a `ferry
 * attach` left with Ctrl-C, whose coordinator never hears it go): it no longer holds the job's output back,
 * so what waits for it only grows, and until 2026-12-08 every such follower kept its full limit until the
 * job ended. (A `ferry run` stopped for a few minutes still gets all of it when continued.)
 */
export const LAPSED_FOLLOWER_WAITING_BYTES = 16 * 1024 * 1024;
export const LAPSED_FOLLOWER_TRIM_MS = 10 * 60_000;

/** A reply for the follower, without its request id (the follow's newest, given when it goes). */
export type FollowerReply = Omit<OperatorReplyInit, 'reply_to'>;

export class FollowerLink {
  private sent = 0;
  private counted = 0;
  private counting = false;
  /**
   * The follower's count when this coordinator sent nothing: its first count
   * may include output an earlier coordinator sent it; what this one sent is
   * taken as received then.
   */
  private base = 0;
  /**
   * For each output message in flight, the follower's count once it has it (oldest first), and where its
   * output came from (source, stream, offset: not its data, which went out with it).
   */
  private readonly inFlight: { count: number; from: Pick<JobOutputInit, 'source' | 'stream' | 'offset'> }[] = [];
  private readonly queue: FollowerReply[] = [];
  private queuedBytes = 0;
  /** untaken()'s marks, kept until the link changes (every agent's heartbeat asks for them). */
  private marks: Map<string, OutputUntakenInit> | undefined;

  /** `send` hands one reply to the transport, addressed to the follow's request id now. */
  constructor(
    private readonly send: (reply: FollowerReply) => void,
    private readonly jobId: string,
    private limitBytes = FOLLOWER_WAITING_LIMIT_BYTES,
  ) {}

  /** Keeps at most `bytes` of output waiting from now on; past it the oldest go (dropOldest). */
  limit(bytes: number): void {
    this.limitBytes = bytes;
    if (this.queuedBytes > bytes) this.dropOldest();
  }

  /** Sends `reply` now if the window allows and nothing waits, else after what waits. */
  push(reply: FollowerReply): void {
    this.marks = undefined;
    if (this.queue.length > 0 || !this.fits(reply)) {
      this.queue.push(reply);
      this.queuedBytes += outputBytes(reply);
      if (this.queuedBytes > this.limitBytes) this.dropOldest();
      return;
    }
    this.go(reply);
  }

  /** The follower's count of output bytes received: what waits goes on as far as the window allows. */
  received(bytes: number): void {
    this.marks = undefined;
    if (!this.counting) this.base = bytes - this.sent;
    this.counting = true;
    this.counted = Math.max(this.counted, bytes - this.base);
    while (this.inFlight.length > 0 && this.inFlight[0]!.count <= this.counted) this.inFlight.shift();
    while (this.queue.length > 0 && this.fits(this.queue[0]!)) {
      const reply = this.queue.shift()!;
      this.queuedBytes -= outputBytes(reply);
      this.go(reply);
    }
  }

  /** Output bytes waiting here for the follower to take what it was sent. */
  get waitingBytes(): number {
    return this.queuedBytes;
  }

  /** The notices among the replies waiting (for a follower given up: told when it comes back). */
  get waitingNotices(): string[] {
    return this.queue.flatMap((r) => (r.job_notice ? [r.job_notice.message ?? ''] : []));
  }

  /** Replies (output or not) waiting. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Adds, per source and stream of the output sent or waiting here that the follower has not taken,
   * where the oldest of it starts (the smaller offset where `into` has one already). A follower that does
   * not count takes what it is sent.
   */
  untaken(into: Map<string, OutputUntakenInit>, ofSource: (source: string) => boolean): void {
    if (!this.marks) {
      const marks = new Map<string, OutputUntakenInit>();
      // (in order: the first of each source and stream starts where the follower stopped taking it)
      for (const out of [...this.inFlight.map((f) => f.from), ...this.queue.map((r) => r.job_output)]) {
        const key = `${out?.source}\0${out?.stream ?? 0}`;
        if (out?.source && !marks.has(key)) marks.set(key, { source: out.source, stream: out.stream ?? 0, offset: out.offset ?? 0 });
      }
      this.marks = marks;
    }
    for (const [key, mark] of this.marks) {
      if (!ofSource(mark.source ?? '')) continue;
      const had = into.get(key);
      if (!had || (had.offset ?? 0) > (mark.offset ?? 0)) into.set(key, mark);
    }
  }

  /** A renewed follow goes on from the one it replaces: its counts and what waits for it. */
  takeOver(from: FollowerLink): void {
    this.marks = undefined;
    this.sent = from.sent;
    this.counted = from.counted;
    this.counting = from.counting;
    this.base = from.base;
    this.inFlight.push(...from.inFlight.splice(0));
    this.queue.push(...from.queue.splice(0), ...this.queue.splice(0));
    this.queuedBytes += from.queuedBytes;
    from.queuedBytes = 0;
  }

  /** Drops the oldest waiting output down to half the limit; a notice says so where it was. */
  private dropOldest(): void {
    let dropped = 0;
    const kept = this.queue.splice(0).filter((r) => {
      const bytes = outputBytes(r);
      if (bytes === 0 || this.queuedBytes <= this.limitBytes / 2) return true;
      this.queuedBytes -= bytes;
      dropped += bytes;
      return false;
    });
    const message = `${dropped} bytes of its output left out: this follower did not take them in time (all of it is in the agents' logs)`;
    this.queue.push({ status: { ok: true }, final: false, job_notice: { job_id: this.jobId, message } }, ...kept);
  }

  private fits(reply: FollowerReply): boolean {
    const bytes = outputBytes(reply);
    // (one chunk always goes when nothing is in flight: the window is not smaller than a chunk)
    if (!this.counting || bytes === 0 || this.sent === this.counted) return true;
    return this.sent - this.counted + bytes <= OUTPUT_WINDOW_BYTES && this.inFlight.length < OUTPUT_WINDOW_MESSAGES;
  }

  private go(reply: FollowerReply): void {
    const bytes = outputBytes(reply);
    this.sent += bytes;
    if (bytes > 0 && this.counting) {
      const out = reply.job_output!;
      this.inFlight.push({ count: this.sent, from: { source: out.source, stream: out.stream, offset: out.offset } });
    }
    this.send(reply);
  }
}

function outputBytes(reply: FollowerReply): number {
  return reply.job_output?.data?.length ?? 0;
}
