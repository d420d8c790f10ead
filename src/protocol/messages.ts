// The codecs of each channel's envelope, and helpers to build replies.
import {
  ErrorCode,
  type AgentMessage,
  type AgentMessageInit,
  type CoordinatorInbound,
  type CoordinatorInboundInit,
  type OperatorReply,
  type OperatorReplyInit,
  type OperatorRequest,
  type OperatorRequestInit,
  type StatusInit,
} from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { Codec } from './codec.js';

export const agentMessageCodec = new Codec<AgentMessage, AgentMessageInit>('ferry.v1.AgentMessage');
export const coordinatorInboundCodec = new Codec<CoordinatorInbound, CoordinatorInboundInit>('ferry.v1.CoordinatorInbound');
export const operatorRequestCodec = new Codec<OperatorRequest, OperatorRequestInit>('ferry.v1.OperatorRequest');
export const operatorReplyCodec = new Codec<OperatorReply, OperatorReplyInit>('ferry.v1.OperatorReply');

export const OK_STATUS: StatusInit = { ok: true, code: ErrorCode.OK, message: '' };

/** The Status for an error: FerryErrors keep their code, anything else is INTERNAL. */
export function errorStatus(err: unknown): StatusInit {
  if (err instanceof FerryError) return { ok: false, code: err.code, message: err.message };
  return { ok: false, code: ErrorCode.INTERNAL, message: errorMessage(err) };
}

/** Turns a failed Status back into a FerryError. */
export function statusError(status: { code: ErrorCode; message: string } | null | undefined): FerryError {
  if (!status) return new FerryError(ErrorCode.MALFORMED, 'reply carries no status');
  return new FerryError(status.code, status.message);
}
