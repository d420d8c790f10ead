// The image server's chunk buffers, used again from one chunk to the next.
//
// Why: a fresh 1 MiB buffer per chunk costs 256 page faults when the file is
// read into it, and page faults are slow on virtual machines (12-35 us each
// measured here): about 5 ms per chunk, more than the chunk takes to cross the
// network. Reusing a few buffers took a 64 MiB fetch between two agents from
// 372-499 ms to 291-421 ms (and further once the server ran in a process that
// does not fork, image-transfer-worker.ts).
//
// Why the receipts: ZeroMQ sends a Buffer without copying it and lets go of it
// on its own I/O thread, some time after; zeromq.js tells JavaScript nothing.
// A buffer may be refilled only when nothing will read it again, and the one
// sure sign of that is the fetcher saying it has received the chunk in full
// (over TCP, the bytes left this process before they arrived there). So each
// buffer is lent to one peer for one request id, and comes back to the free
// list only when that same peer lists that id as received. A buffer whose
// receipt never comes (the fetcher died, timed out, or is an old version) is
// dropped, never refilled: the garbage collector frees it once ZeroMQ has let
// go of it.
import { tracer } from '../common/trace.js';

const trace = tracer('images');

/** Chunks shorter than this get a buffer of their own: they fault little, and would hold a large buffer. */
export const POOLED_CHUNK_MIN_BYTES = 256 * 1024;
/** Free buffers kept at most. */
export const CHUNK_BUFFERS_MAX_FREE = 32;
/** Lent buffers whose peer has sent nothing for this long are dropped; free ones too, when none was lent for this long. */
export const CHUNK_BUFFERS_IDLE_MS = 30_000;
/**
 * Buffers lent to one peer at most: past it, its oldest loan is dropped. A
 * fetcher has at most 32 chunk requests in flight (8 per file, 4 files) and
 * reports receipts with its next request; a peer that never does would
 * otherwise have the server hold a buffer for every chunk it asked for.
 */
export const CHUNK_BUFFERS_MAX_LENT_PER_PEER = 64;

export interface ChunkBufferStats {
  /** Buffers allocated since the start. */
  allocated: number;
  /** Chunks sent from a buffer used before. */
  reused: number;
  /** Lent buffers dropped without a receipt. */
  dropped: number;
  free: number;
  lent: number;
}

interface PeerLoans {
  /** request id -> the whole buffer lent for its reply. */
  byRequest: Map<number, Buffer>;
  lastHeardMs: number;
}

export class ImageChunkBuffers {
  private readonly free: Buffer[] = [];
  private readonly peers = new Map<string, PeerLoans>();
  private sweeper: NodeJS.Timeout | undefined;
  private lastLentMs = 0;
  private readonly counts = { allocated: 0, reused: 0, dropped: 0 };

  /**
   * `bufferBytes`: the size of each pooled buffer (the usual chunk size);
   * chunks longer than that, or shorter than POOLED_CHUNK_MIN_BYTES, are not pooled.
   */
  constructor(
    private readonly bufferBytes: number,
    private readonly maxFree = CHUNK_BUFFERS_MAX_FREE,
    private readonly idleMs = CHUNK_BUFFERS_IDLE_MS,
    private readonly maxLentPerPeer = CHUNK_BUFFERS_MAX_LENT_PER_PEER,
  ) {}

  /**
   * A buffer of `length` bytes for the reply to `requestId` from `peer`, lent
   * to that peer until it acknowledges the reply (receive()).
   */
  lend(peer: string, requestId: number, length: number): Buffer {
    if (length < POOLED_CHUNK_MIN_BYTES || length > this.bufferBytes) return Buffer.allocUnsafe(length);
    let whole = this.free.pop();
    if (whole) this.counts.reused++;
    else {
      whole = Buffer.allocUnsafe(this.bufferBytes);
      this.counts.allocated++;
    }
    const loans = this.loansOf(peer);
    if (loans.byRequest.has(requestId)) {
      this.counts.dropped++; // a request id used twice: never refill the first one's buffer
      loans.byRequest.delete(requestId);
    } else if (loans.byRequest.size >= this.maxLentPerPeer) {
      const [oldest] = loans.byRequest.keys();
      loans.byRequest.delete(oldest!); // never refilled: the garbage collector has it once ZeroMQ lets go
      this.counts.dropped++;
      trace(`image server: a fetcher holds ${this.maxLentPerPeer} chunk buffers without receipts; dropping its oldest`);
    }
    loans.byRequest.set(requestId, whole);
    this.lastLentMs = Date.now();
    this.startSweeping();
    return whole.subarray(0, length);
  }

  /** A buffer lent for a reply that was never sent (the read failed): free again at once. */
  unsent(peer: string, requestId: number): void {
    this.giveBack(peer, requestId);
  }

  /** `peer` says it has received the replies to these requests (maybe none): their buffers are free again. */
  receive(peer: string, requestIds: readonly number[]): void {
    const loans = this.peers.get(peer);
    if (!loans) return;
    loans.lastHeardMs = Date.now();
    for (const id of requestIds) this.giveBack(peer, id);
  }

  stats(): ChunkBufferStats {
    let lent = 0;
    for (const l of this.peers.values()) lent += l.byRequest.size;
    return { ...this.counts, free: this.free.length, lent };
  }

  /** Drops everything (the server closed). */
  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.free.length = 0;
    this.peers.clear();
  }

  /** Drops the loans of peers idle past idleMs, and the free list once nothing was lent for idleMs. */
  sweep(now = Date.now()): void {
    for (const [peer, loans] of this.peers) {
      if (now - loans.lastHeardMs < this.idleMs) continue;
      if (loans.byRequest.size > 0) trace(`image server: ${loans.byRequest.size} chunk buffers lent to an idle fetcher dropped`);
      this.counts.dropped += loans.byRequest.size;
      this.peers.delete(peer);
    }
    if (this.peers.size === 0 && now - this.lastLentMs >= this.idleMs) {
      this.free.length = 0;
      if (this.sweeper) clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private giveBack(peer: string, requestId: number): void {
    const loans = this.peers.get(peer);
    const whole = loans?.byRequest.get(requestId);
    if (!loans || !whole) return; // not lent to this peer (or already back): nothing to free
    loans.byRequest.delete(requestId);
    if (loans.byRequest.size === 0) this.peers.delete(peer);
    if (this.free.length < this.maxFree) this.free.push(whole);
  }

  private loansOf(peer: string): PeerLoans {
    let loans = this.peers.get(peer);
    if (!loans) {
      loans = { byRequest: new Map(), lastHeardMs: Date.now() };
      this.peers.set(peer, loans);
    }
    return loans;
  }

  private startSweeping(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, this.idleMs / 2));
    this.sweeper.unref();
  }
}
