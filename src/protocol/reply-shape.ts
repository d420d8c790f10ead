// Which reply answers which request on the agent channel. A reply is accepted
// only if it is an error with a known code, or a success carrying the body that
// answers the request; anything else (a corrupt frame that happens to carry a
// pending id) is a stray and is ignored.
import { ErrorCode, type AgentMessage, type AgentMessageInit } from '../gen/proto.js';

const REPLY_BODY: Record<string, string> = {
  register: 'register_reply',
  heartbeat: 'heartbeat_ack',
  rank_started: 'ack',
  rank_exited: 'ack',
  rank_endpoint: 'ack',
  start_ranks: 'start_ranks_reply',
  signal_job: 'ack',
  endpoint_table: 'ack',
  remove_job_logs: 'remove_job_logs_reply',
  round: 'round_reply',
  process_state: 'process_state_reply',
  output_flow: 'ack',
};

/** The body field of a request (its oneof member). */
export function requestBody(body: AgentMessageInit): string {
  return Object.keys(body).find((k) => k in REPLY_BODY) ?? 'request';
}

export function acceptsReply(request: string): (reply: AgentMessage) => boolean {
  const expected = REPLY_BODY[request];
  return (reply) => {
    const s = reply.status;
    if (!s) return false;
    if (!s.ok) return s.code !== ErrorCode.OK && ErrorCode[s.code] !== undefined;
    return reply.body === expected;
  };
}
