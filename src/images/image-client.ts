// The fetching side of the image channel: a DEALER to one ImageServer, with
// every request under a deadline (an unreachable or dead peer becomes a
// TIMEOUT naming the peer, never a hang).
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

export interface ImageReply {
  message: ImageTransferMessage;
  data: Buffer | undefined;
}

export class ImageClient {
  private readonly dealer: zmq.Dealer;
  private readonly outbox: Outbox<Buffer>;
  private readonly pending = new PendingRequests<ImageReply>();
  private closed = false;

  /** `key`: the cluster key (null: none); default the process's (cluster-key.ts). */
  constructor(
    readonly peer: string,
    private readonly requestTimeoutMs: number,
    maxChunkBytes: number,
    key?: ClusterKey | null,
  ) {
    this.dealer = new zmq.Dealer({
      linger: 0,
      immediate: true,
      reconnectInterval: RECONNECT_INTERVAL_MS,
      reconnectMaxInterval: RECONNECT_MAX_INTERVAL_MS,
      maxMessageSize: maxChunkBytes + IMAGE_REPLY_OVERHEAD_BYTES,
      ...curveClientOptions(keyOrProcessKey(key)),
    });
    this.dealer.connect(peer);
    this.outbox = new Outbox((m) => this.dealer.send(m));
    void this.receiveLoop();
  }

  /** Sends a request and resolves with the reply; a failed Status rejects with its code, naming the peer. */
  async request(what: string, body: Omit<ImageTransferMessageInit, 'version' | 'request_id'>): Promise<ImageReply> {
    if (this.closed) throw new FerryError(ErrorCode.UNAVAILABLE, `image server ${this.peer}: ${what}: transfer closed`);
    const { id, reply } = this.pending.open(`image server ${this.peer}: ${what}`, this.requestTimeoutMs);
    this.outbox.push(Buffer.from(imageTransferCodec.encode({ version: PROTOCOL_VERSION, request_id: id, ...body })));
    const r = await reply;
    checkPeerVersion(r.message.version, `image server ${this.peer}`);
    if (!r.message.status?.ok) {
      const e = statusError(r.message.status);
      throw new FerryError(e.code, `image server ${this.peer}: ${e.message}`);
    }
    return r;
  }

  /** Rejects every open request with `err` (a transfer that gave up). */
  failAll(err: Error): void {
    this.pending.failAll(err);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
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
