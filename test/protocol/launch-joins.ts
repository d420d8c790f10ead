// A `ferry rank-exec` as the coordinator sees it, for the launched-job model
// tests: one join_launched_rank request on the wire of a ControlPlaneHarness.
import type { LauncherProcessInit, OperatorReply } from '../../src/gen/proto.js';
import { coordinatorInboundCodec, operatorReplyCodec } from '../../src/protocol/messages.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import type { ControlPlaneHarness } from './control-plane-harness.js';

export interface JoinOptions {
  argv?: string[];
  worldSize?: number;
  /** --job-id; '' for none (the coordinator names the job). */
  jobId?: string;
  /** The rank-exec process its join and renewals name (LauncherProcess). */
  process?: LauncherProcessInit;
}

/** One rank-exec joining launch `key` from `host`: the replies its join request got (filled as they come). */
export function joinLaunch(h: ControlPlaneHarness, key: string, rank: number, host: string, o: JoinOptions = {}): OperatorReply[] {
  const client = h.hub.connect();
  const got: OperatorReply[] = [];
  client.onMessage((frames) => got.push(operatorReplyCodec.decode(frames[0])));
  const join = { launch_key: key, rank, world_size: o.worldSize ?? 2, host, argv: o.argv ?? ['/app'], cwd: '/', env: {}, launcher: 'test', wait_ms: 5_000, job_id: o.jobId ?? '', ...(o.process ? { launcher_process: o.process } : {}) };
  client.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: 1, join_launched_rank: join } }));
  return got;
}

/** The job a join was told it is part of, once told. */
export const joined = (got: OperatorReply[]) => got.find((r) => r.join_launched_rank?.job)?.join_launched_rank?.job?.id;
/** The reason a join was refused, once refused. */
export const refused = (got: OperatorReply[]) => got.find((r) => r.final && !r.status?.ok)?.status?.message;

/** A rank-exec that joined and renews its follow as ferry rank-exec does, until it is killed. */
export interface FollowingRankExec {
  got: OperatorReply[];
  /** SIGKILL: no more renewals, nothing said. */
  kill(): void;
  /** Renewals stop (a stopped process) or go on. */
  pause(paused: boolean): void;
  /** Passes the launcher's `signal` on, its `nth` (signal_launched_job). */
  signal(signal: string, nth: number): void;
}

/**
 * One rank-exec joining launch `key` from `host` and, once its job is named,
 * renewing a launcher follow of its rank every `renewMs` from the same client
 * (the coordinator's view of `ferry rank-exec`; `launcher: false` for a
 * follower that is not a launcher's, like `ferry attach`).
 */
export function followingRankExec(
  h: ControlPlaneHarness,
  key: string,
  rank: number,
  host: string,
  renewMs: number,
  o: JoinOptions & { launcher?: boolean } = {},
): FollowingRankExec {
  const client = h.hub.connect();
  const got: OperatorReply[] = [];
  client.onMessage((frames) => got.push(operatorReplyCodec.decode(frames[0])));
  const join = { launch_key: key, rank, world_size: o.worldSize ?? 2, host, argv: o.argv ?? ['/app'], cwd: '/', env: {}, launcher: 'test', wait_ms: 5_000, job_id: o.jobId ?? '', ...(o.process ? { launcher_process: o.process } : {}) };
  client.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: 1, join_launched_rank: join } }));
  let requestId = 1;
  let paused = false;
  const timer = setInterval(() => {
    const jobId = joined(got);
    if (!jobId || paused) return;
    const follow_job = { job_id: jobId, ranks: [rank], launcher: o.launcher ?? true, ...(o.process ? { launcher_process: o.process } : {}) };
    client.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: ++requestId, follow_job } }));
  }, renewMs);
  return {
    got,
    kill: () => {
      clearInterval(timer);
      void client.close();
    },
    pause: (p) => (paused = p),
    signal: (signal, nth) => {
      const signal_launched_job = { job_id: joined(got) ?? '', signal, rank, nth };
      client.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: ++requestId, signal_launched_job } }));
    },
  };
}
