// The CLI's connection to the coordinator: one request, its notifications, and
// a final reply, all under a deadline, so an unreachable coordinator gives one
// clear line within seconds instead of a hang.
import {
  ErrorCode,
  type OperatorReply,
  type OperatorRequestInit,
} from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';
import { coordinatorInboundCodec, operatorReplyCodec, statusError } from '../protocol/messages.js';
import { PROTOCOL_VERSION, checkPeerVersion } from '../protocol/version.js';
import { ZmqClientTransport } from '../transport/zmq-transport.js';

export const OPERATOR_TIMEOUT_MS = 3_000;
export const DEFAULT_COORDINATOR = 'tcp://127.0.0.1:7470';

export class OperatorClient {
  private readonly transport: ZmqClientTransport;
  private nextId = 1;

  constructor(readonly address: string) {
    this.transport = new ZmqClientTransport(address);
  }

  /**
   * Sends one request. `onNotice` sees the non-final replies (progress, output);
   * the promise settles with the final one. Without notices within
   * `timeoutMs` (re-armed by each notice when `follow`), it fails with UNAVAILABLE.
   */
  request(body: OperatorRequestInit, opts: { timeoutMs?: number; follow?: boolean; onNotice?: (r: OperatorReply) => void } = {}): Promise<OperatorReply> {
    const id = this.nextId++;
    const timeoutMs = opts.timeoutMs ?? OPERATOR_TIMEOUT_MS;
    return new Promise<OperatorReply>((resolve, reject) => {
      let heard = false;
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        if (timer) clearTimeout(timer);
        if (opts.follow && heard) return; // a followed job may run for days
        timer = setTimeout(() => {
          reject(
            new FerryError(
              ErrorCode.UNAVAILABLE,
              `no answer from the coordinator at ${this.address} within ${timeoutMs / 1000} s (is it running? is the address right?)`,
            ),
          );
        }, timeoutMs);
      };
      arm();
      this.transport.onMessage((frames) => {
        let reply: OperatorReply;
        try {
          reply = operatorReplyCodec.decode(frames[0]);
          checkPeerVersion(reply.version, `the coordinator at ${this.address}`);
        } catch (err) {
          if (timer) clearTimeout(timer);
          reject(err);
          return;
        }
        if (reply.reply_to !== id && reply.reply_to !== 0) return;
        heard = true;
        if (!reply.status?.ok) {
          if (timer) clearTimeout(timer);
          reject(statusError(reply.status));
          return;
        }
        if (!reply.final) {
          opts.onNotice?.(reply);
          arm();
          return;
        }
        if (timer) clearTimeout(timer);
        resolve(reply);
      });
      this.transport.send(
        coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: id, ...body } }),
      );
    });
  }

  /** Sends without waiting (e.g. a signal on Ctrl-C). */
  post(body: OperatorRequestInit): void {
    this.transport.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: this.nextId++, ...body } }));
  }

  async close(): Promise<void> {
    await this.transport.close();
  }
}
