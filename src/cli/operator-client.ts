// The CLI's connection to the coordinator: requests, their notifications and
// final replies, each under a deadline, so an unreachable coordinator gives
// one clear line within seconds instead of a hang.
import { ErrorCode, type OperatorReply, type OperatorRequestInit } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';
import { coordinatorInboundCodec, operatorReplyCodec, statusError } from '../protocol/messages.js';
import { PROTOCOL_VERSION, checkPeerVersion } from '../protocol/version.js';
import { ZmqClientTransport } from '../transport/zmq-transport.js';

export const OPERATOR_TIMEOUT_MS = 3_000;
/**
 * How long a request waits in all when the coordinator is connected but slow
 * to answer (a loaded machine; its catalog waiting for the disk): past
 * OPERATOR_TIMEOUT_MS, an unreachable coordinator fails at once, a connected
 * one gets this long.
 */
export const OPERATOR_CONNECTED_TIMEOUT_MS = 30_000;
/**
 * How long a long request (a checkpoint, a submit) waits for a coordinator it
 * never reached, as one that is restarting: past it, the command fails saying
 * so rather than at its own deadline (a checkpoint's is 15 min).
 */
export const OPERATOR_UNREACHED_TIMEOUT_MS = 10_000;
/** How long a lost connection waits for the failed security handshake that may have caused it. */
const REFUSAL_GRACE_MS = 50;
export const DEFAULT_COORDINATOR = 'tcp://127.0.0.1:7470';

export interface RequestOptions {
  timeoutMs?: number;
  /** Once a first answer came, wait without a deadline (a followed job may run for days). */
  follow?: boolean;
  onNotice?: (r: OperatorReply) => void;
  /** Told the request's id as it is sent (to forget() it later). */
  onId?: (id: number) => void;
}

interface Open {
  resolve: (r: OperatorReply) => void;
  reject: (e: Error) => void;
  options: RequestOptions;
  timer: NodeJS.Timeout | undefined;
  heard: boolean;
}

export class OperatorClient {
  private readonly transport: ZmqClientTransport;
  private nextId = 1;
  private readonly open = new Map<number, Open>();

  constructor(readonly address: string) {
    this.transport = new ZmqClientTransport(address, { watchConnection: true });
    this.transport.onMessage((frames) => this.onReply(frames));
    this.transport.onDisconnect(() => this.connectionLost());
  }

  /**
   * Sends one request. `onNotice` sees the non-final replies (progress,
   * output); the promise settles with the final one, or fails with
   * UNAVAILABLE when nothing came within the deadline.
   */
  request(body: OperatorRequestInit, options: RequestOptions = {}): Promise<OperatorReply> {
    const id = this.nextId++;
    return new Promise<OperatorReply>((resolve, reject) => {
      const o: Open = { resolve, reject, options, timer: undefined, heard: false };
      this.open.set(id, o);
      options.onId?.(id);
      this.arm(id, o);
      this.transport.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: id, ...body } }));
    });
  }

  /** Sends without waiting for an answer (e.g. a signal on Ctrl-C). */
  post(body: OperatorRequestInit): void {
    this.transport.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: this.nextId++, ...body } }));
  }

  /**
   * Drops a request without settling it: nothing the coordinator still sends
   * for it is heard. For a follow the coordinator replaced with a newer one.
   */
  forget(id: number): void {
    const o = this.open.get(id);
    if (o) this.settle(id, o);
  }

  /** How many requests wait for their final reply. */
  get openRequests(): number {
    return this.open.size;
  }

  async close(): Promise<void> {
    for (const [id, o] of this.open) this.settle(id, o);
    await this.transport.close();
  }

  private arm(id: number, o: Open): void {
    if (o.timer) clearTimeout(o.timer);
    o.timer = undefined;
    if (o.options.follow && o.heard) return;
    const timeoutMs = o.options.timeoutMs ?? OPERATOR_TIMEOUT_MS;
    // A connected coordinator gets the request's own deadline, and at least OPERATOR_CONNECTED_TIMEOUT_MS;
    // one never reached fails at the request's deadline, OPERATOR_UNREACHED_TIMEOUT_MS at most.
    const connectedLimit = Math.max(timeoutMs, OPERATOR_CONNECTED_TIMEOUT_MS);
    const armedAt = Date.now();
    const expire = () => {
      const waited = Date.now() - armedAt;
      if (this.transport.connected && !this.transport.refused && waited < connectedLimit) {
        o.timer = setTimeout(expire, Math.min(1_000, connectedLimit - waited));
        return;
      }
      this.settle(id, o);
      o.reject(
        new FerryError(
          ErrorCode.UNAVAILABLE,
          this.transport.refused
            ? `the coordinator at ${this.address} did not let this command in: ${this.transport.refused}`
            : this.transport.connected
              ? `the coordinator at ${this.address} is connected but did not answer within ${Math.round(waited / 1000)} s`
              : `no answer from the coordinator at ${this.address} within ${Math.round(waited / 1000)} s (is it running? is the address right?)`,
        ),
      );
    };
    o.timer = setTimeout(expire, Math.min(timeoutMs, OPERATOR_UNREACHED_TIMEOUT_MS));
  }

  /**
   * The connection broke: the coordinator died or restarted, and whatever it
   * was doing for a request is lost with it (a new one would not answer it).
   * A long operation (a checkpoint: 15 min deadline) fails now rather than at
   * its deadline. Follows are left to their follower, which renews them.
   */
  private connectionLost(): void {
    // A failed security handshake (no shared cluster key) also ends in a disconnect; its own event may
    // come just after, and then the request never reached the coordinator: wait for it briefly.
    const cut = [...this.open].filter(([, o]) => !o.options.follow);
    setTimeout(() => {
      const refused = this.transport.refused;
      for (const [id, o] of cut) {
        if (this.open.get(id) !== o) continue; // answered meanwhile
        this.settle(id, o);
        o.reject(
          new FerryError(
            ErrorCode.UNAVAILABLE,
            refused
              ? `the coordinator at ${this.address} did not let this command in: ${refused}`
              : `lost the connection to the coordinator at ${this.address} before it answered (it stopped or restarted); ` +
                  `what the request did is not known here: check with "ferry events"`,
          ),
        );
      }
    }, REFUSAL_GRACE_MS);
  }

  private settle(id: number, o: Open): void {
    if (o.timer) clearTimeout(o.timer);
    this.open.delete(id);
  }

  private onReply(frames: Uint8Array[]): void {
    let reply: OperatorReply;
    try {
      reply = operatorReplyCodec.decode(frames[0]);
      checkPeerVersion(reply.version, `the coordinator at ${this.address}`);
    } catch (err) {
      // Nothing sensible can follow: fail every open request with the reason.
      for (const [id, o] of this.open) {
        this.settle(id, o);
        o.reject(err as Error);
      }
      return;
    }
    const o = this.open.get(reply.reply_to);
    if (!o) return;
    o.heard = true;
    if (!reply.status?.ok) {
      this.settle(reply.reply_to, o);
      o.reject(statusError(reply.status));
    } else if (!reply.final) {
      o.options.onNotice?.(reply);
      this.arm(reply.reply_to, o);
    } else {
      this.settle(reply.reply_to, o);
      o.resolve(reply);
    }
  }
}
