// The fetching side of the image channel: a DEALER to one ImageServer, with
// every request under a deadline (an unreachable or dead peer becomes a
// TIMEOUT naming the peer, never a hang). A server that is gone (its agent
// ended: nothing accepts connections at its address any more) fails the
// requests sooner, as UNAVAILABLE, once no connection to it was up for
// SERVER_UNREACHABLE_MS. Each request also tells the server which chunk
// replies have arrived, so it can refill their buffers (image-chunk-buffers.ts).
import * as zmq from 'zeromq';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { PendingRequests } from '../common/pending-requests.js';
import { tracer } from '../common/trace.js';
import { ErrorCode, type ImageDirRefInit, type ImageTransferMessage, type ImageTransferMessageInit } from '../gen/proto.js';
import { statusError } from '../protocol/messages.js';
import { PROTOCOL_VERSION, checkPeerVersion } from '../protocol/version.js';
import { type ClusterKey, keyOrProcessKey } from '../transport/cluster-key.js';
import { curveClientOptions } from '../transport/curve-security.js';
import { Outbox } from '../transport/outbox.js';
import { IMAGE_REPLY_OVERHEAD_BYTES, imageTransferCodec } from './image-messages.js';

const trace = tracer('images');

export const RECONNECT_INTERVAL_MS = 100;
export const RECONNECT_MAX_INTERVAL_MS = 2_000;
/** How long the last receipts of a fetch wait for their answer: the fetch is complete by then, only the server's buffers are at stake. */
export const RECEIPTS_TIMEOUT_MS = 1_000;
/**
 * How long a client goes without a connection to its server before its requests fail (UNAVAILABLE).
 * A server that is up accepts a TCP connection at once (its kernel does, however busy the agent is),
 * and libzmq reconnects 100 ms after a connection breaks: only a server that is gone stays
 * unreachable this long, and its requests would otherwise wait out their timeout for nothing.
 */
export const SERVER_UNREACHABLE_MS = 3_000;

export interface ImageReply {
  message: ImageTransferMessage;
  data: Buffer | undefined;
}

export class ImageClient {
  private readonly dealer: zmq.Dealer;
  private readonly outbox: Outbox<Buffer>;
  private readonly pending = new PendingRequests<ImageReply>();
  /** Request ids of chunk replies received and not yet reported to the server. */
  private receipts: number[] = [];
  private closed = false;
  /** Set while no connection to the server is up, once that lasted unreachableMs: why requests fail now. */
  private unreachable: FerryError | undefined;
  private unreachableTimer: NodeJS.Timeout | undefined;

  /**
   * `key`: the cluster key (null: none); default the process's (cluster-key.ts).
   * `unreachableMs`: see SERVER_UNREACHABLE_MS.
   */
  constructor(
    readonly peer: string,
    private readonly requestTimeoutMs: number,
    maxChunkBytes: number,
    key?: ClusterKey | null,
    private readonly unreachableMs = SERVER_UNREACHABLE_MS,
  ) {
    this.dealer = new zmq.Dealer({
      linger: 0,
      immediate: true,
      reconnectInterval: RECONNECT_INTERVAL_MS,
      reconnectMaxInterval: RECONNECT_MAX_INTERVAL_MS,
      maxMessageSize: maxChunkBytes + IMAGE_REPLY_OVERHEAD_BYTES,
      ...curveClientOptions(keyOrProcessKey(key)),
    });
    this.dealer.events.on('connect', () => {
      clearTimeout(this.unreachableTimer);
      this.unreachableTimer = undefined;
      this.unreachable = undefined;
    });
    this.dealer.events.on('disconnect', () => this.watchUnreachable());
    this.watchUnreachable(); // until the first connection
    this.dealer.connect(peer);
    this.outbox = new Outbox((m) => this.dealer.send(m));
    void this.receiveLoop();
  }

  /** No connection is up (from now): unless one comes within unreachableMs, the open requests fail then, and new ones at once. */
  private watchUnreachable(): void {
    if (this.closed || this.unreachableTimer) return;
    const timer = setTimeout(() => {
      // Timers run before the socket events of the same turn of the event loop: after a turn that took long
      // (a busy process), a connection made meanwhile has its event waiting. It is heard first.
      setImmediate(() => {
        if (this.closed || this.unreachableTimer !== timer) return;
        this.unreachable = new FerryError(
          ErrorCode.UNAVAILABLE,
          `image server ${this.peer}: no connection for ${this.unreachableMs} ms (nothing accepts connections there: its agent has ended, or the host is gone)`,
        );
        this.pending.failAll(this.unreachable);
      });
    }, this.unreachableMs);
    timer.unref();
    this.unreachableTimer = timer;
  }

  /** Sends a request and resolves with the reply; a failed Status rejects with its code, naming the peer. */
  async request(
    what: string,
    body: Omit<ImageTransferMessageInit, 'version' | 'request_id' | 'received'>,
    timeoutMs = this.requestTimeoutMs,
  ): Promise<ImageReply> {
    if (this.closed) throw new FerryError(ErrorCode.UNAVAILABLE, `image server ${this.peer}: ${what}: transfer closed`);
    if (this.unreachable) throw this.unreachable;
    const { id, reply } = this.pending.open(`image server ${this.peer}: ${what}`, timeoutMs);
    const received = this.receipts;
    this.receipts = [];
    this.outbox.push(Buffer.from(imageTransferCodec.encode({ version: PROTOCOL_VERSION, request_id: id, received, ...body })));
    const r = await reply;
    checkPeerVersion(r.message.version, `image server ${this.peer}`);
    if (!r.message.status?.ok) {
      const e = statusError(r.message.status);
      throw new FerryError(e.code, `image server ${this.peer}: ${e.message}`);
    }
    return r;
  }

  /**
   * Reports the chunk replies received since the last request, so the server
   * can use their buffers again. Never fails: at worst the server drops those
   * buffers after a while instead of reusing them.
   */
  async sendReceipts(): Promise<void> {
    if (this.receipts.length === 0 || this.closed) return;
    try {
      await this.request('receipts', { receipts_request: {} }, Math.min(RECEIPTS_TIMEOUT_MS, this.requestTimeoutMs));
    } catch (err) {
      trace(`receipts to ${this.peer} not delivered: ${errorMessage(err)}`);
    }
  }

  /** Rejects every open request with `err` (a transfer that gave up). */
  failAll(err: Error): void {
    this.pending.failAll(err);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.unreachableTimer);
    this.pending.failAll(new FerryError(ErrorCode.UNAVAILABLE, `image server ${this.peer}: transfer closed`));
    this.outbox.close();
    this.dealer.close();
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const [frame, data] of this.dealer) {
        if (!frame) continue;
        let message: ImageTransferMessage;
        try {
          message = imageTransferCodec.decode(frame);
        } catch (err) {
          trace(`reply from ${this.peer} dropped: ${errorMessage(err)}`);
          continue;
        }
        // Late or not, a chunk that arrived has left the server's buffer.
        if (data && Number(message.reply_to) > 0) this.receipts.push(Number(message.reply_to));
        if (!this.pending.settle(Number(message.reply_to), { message, data })) {
          trace(`late or unknown reply ${message.reply_to} from ${this.peer}`);
        }
      }
    } catch (err) {
      if (!this.closed) trace(`image client receive loop ended: ${errorMessage(err)}`);
    }
  }
}

export function dirRef(jobId: string, epoch: number, rank: number): ImageDirRefInit {
  return { job_id: jobId, epoch, rank };
}
