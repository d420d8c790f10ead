// One coordinated round over a job: every agent holding ranks of the job gets
// one RoundRequest for all of its ranks and answers once, naming only the ranks
// that failed. The cost grows with the number of agents, not of ranks.
import { ErrorCode, RoundStep, type AgentMessage, type RoundReply, type RoundRequestInit } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import type { Coordinator } from './coordinator.js';
import { tracer } from '../common/trace.js';

const trace = tracer('coordinator');

export interface RoundResult {
  ok: boolean;
  /** Per failed rank: the reason, naming the host. */
  failures: Map<number, string>;
  /** Per failed rank: the error code its agent gave (TIMEOUT/HOST_DOWN-like codes for silent hosts). */
  codes: Map<number, ErrorCode>;
  /** Hosts that did not answer at all (timeout, down). */
  silentHosts: string[];
  replies: Map<string, RoundReply>;
}

/** Groups rank -> host into host -> ranks (the shape a round takes), each host's ranks in order. */
export function byHostOf(placement: Map<number, string>): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const [rank, host] of [...placement].sort((a, b) => a[0] - b[0])) m.set(host, [...(m.get(host) ?? []), rank]);
  return m;
}

export async function runRound(
  c: Coordinator,
  request: Omit<RoundRequestInit, 'ranks'>,
  byHost: Map<string, number[]>,
  timeoutMs: number,
  /** Per-host additions to the request (e.g. which of its ranks to dump). */
  perHost: (ranks: number[], host: string) => Partial<RoundRequestInit> = () => ({}),
  /**
   * The round ends as soon as one host is silent: the hosts that have not answered yet count as failed
   * (TIMEOUT), their late answers unheard. For a PREPARE: ranks flushing wait for the lost host's ranks,
   * so the others' answers could only come at their own flush timeout (flush-completion.ts asks again).
   */
  options: {
    endWhenSilent?: boolean;
    /**
     * A host that answers with failed ranks while other hosts have not answered yet is asked the same
     * again after this many ms, until it answers for every rank, all the others have answered (or
     * failed), or the round's time is up. For a PREPARE: a rank that refused for a moment (not
     * connected to its agent yet) holds up its peers, which wait for its end-of-channel markers until
     * their agents' flush timeout; asked again, it flushes, they finish, and the checkpoint goes on. Asked
     * again in vain, the host's last answer counts, with the reasons of its first.
     */
    askAgainMs?: number;
    /**
     * Sees each host's answer as the coordinator takes it, before that agent's next message (the output its
     * ranks print on after a PREPARE reply, say): what the coordinator had of the host then.
     */
    onReply?: (host: string, reply: RoundReply) => void;
  } = {},
): Promise<RoundResult> {
  const failures = new Map<number, string>();
  const codes = new Map<number, ErrorCode>();
  const replies = new Map<string, RoundReply>();
  const silentHosts: string[] = [];
  const stepName = RoundStep[request.step ?? 0] ?? String(request.step);
  const answered = new Set<string>();
  let ended = false;
  let endNow = () => {};
  const cut = new Promise<void>((r) => (endNow = r));
  const deadline = c.now() + timeoutMs;
  // Hosts that answered with failed ranks at least once (asked again or not).
  const failedOnce = new Set<string>();
  // Whether `host` is to be asked again (options.askAgainMs) after this answer: while another host has not
  // answered at all (one that failed too does not count, or two such hosts would keep each other asking).
  const askAgain = (host: string, rr: RoundReply | null | undefined): boolean => {
    if (options.askAgainMs === undefined || !rr || rr.failed.length === 0) return false;
    failedOnce.add(host);
    return [...byHost.keys()].some((h) => h !== host && !answered.has(h) && !failedOnce.has(h)) && c.now() + options.askAgainMs < deadline;
  };
  const all = Promise.all(
    [...byHost].map(async ([host, ranks]) => {
      try {
        const onAnswer = options.onReply && ((m: AgentMessage) => m.round_reply && options.onReply!(host, m.round_reply));
        const first = await c.requestAgent(host, { round: { ...request, ranks, ...perHost(ranks, host) } }, timeoutMs, onAnswer);
        let reply = first;
        while (!ended && askAgain(host, reply.round_reply)) {
          trace(`${stepName} of ${request.job_id}: host ${host} failed ranks ${reply.round_reply!.failed.map((f) => f.rank).join(',')}; asking again while others have not answered`);
          await new Promise((r) => setTimeout(r, options.askAgainMs));
          if (ended) return;
          reply = await c.requestAgent(host, { round: { ...request, ranks, ...perHost(ranks, host) } }, Math.max(1, deadline - c.now()), onAnswer);
        }
        if (ended) return;
        answered.add(host);
        const rr = reply.round_reply;
        if (!rr) throw new FerryError(ErrorCode.MALFORMED, `host ${host} answered ${stepName} without a round reply`);
        replies.set(host, rr);
        // Asked again in vain: the last answer says what the host's ranks are doing now (one may be flushing
        // since, which decides how the flush is finished), the first why they failed (a later answer may only
        // say that the rank is gone by now).
        const firstWhy = new Map(reply === first ? [] : (first.round_reply?.failed ?? []).map((f) => [f.rank, f.status?.message]));
        for (const res of rr.failed) {
          failures.set(res.rank, `host ${host}: ${firstWhy.get(res.rank) || res.status?.message || 'failed'}`);
          codes.set(res.rank, res.status?.code || ErrorCode.INTERNAL);
        }
        if (rr.failed.length + rr.acknowledged !== ranks.length) {
          for (const r of ranks) {
            if (failures.has(r)) continue;
            failures.set(r, `host ${host} answered for ${rr.acknowledged + rr.failed.length} of ${ranks.length} ranks`);
            codes.set(r, ErrorCode.MALFORMED);
          }
        }
      } catch (err) {
        if (ended) return;
        answered.add(host);
        silentHosts.push(host);
        for (const r of ranks) {
          failures.set(r, `host ${host}: ${errorMessage(err)}`);
          codes.set(r, err instanceof FerryError ? err.code : ErrorCode.UNAVAILABLE);
        }
        if (options.endWhenSilent) endNow();
      }
    }),
  );
  await Promise.race([all, cut]);
  ended = true;
  for (const [host, ranks] of byHost) {
    if (answered.has(host)) continue;
    for (const r of ranks) {
      failures.set(r, `host ${host}: no answer yet when host ${silentHosts[0]} was lost`);
      codes.set(r, ErrorCode.TIMEOUT);
    }
  }
  return { ok: failures.size === 0, failures, codes, silentHosts, replies };
}

/**
 * How many times a RESUME goes to an agent that is up but did not answer it in time: its request or its
 * answer was lost (a connection cut and re-established within the heartbeat timeout), or it came late.
 * Waking a rank twice is harmless; a rank that nothing wakes holds its job for ever, so the job fails.
 */
export const RESUME_ATTEMPTS = 3;

/**
 * A RESUME round (resumeTimeoutMs per attempt). A host that is still up but did not answer in time is
 * asked again, up to RESUME_ATTEMPTS times in all; a host that is down is not (its agent, once back,
 * reports its ranks flushed and gets the RESUME then). The result is that of each host's last attempt.
 */
export async function runResumeRound(c: Coordinator, request: Omit<RoundRequestInit, 'ranks' | 'step'>, byHost: Map<string, number[]>): Promise<RoundResult> {
  const round = { ...request, step: RoundStep.RESUME };
  let result = await runRound(c, round, byHost, c.config.resumeTimeoutMs);
  for (let attempt = 2; attempt <= RESUME_ATTEMPTS; attempt++) {
    const again = new Map([...byHost].filter(([host, ranks]) => c.hosts.get(host)?.state === 'up' && ranks.some((r) => result.codes.get(r) === ErrorCode.TIMEOUT)));
    if (again.size === 0) break;
    c.event('round.resume-again', `job ${request.job_id}: RESUME again to ${[...again.keys()].join(',')} (attempt ${attempt} of ${RESUME_ATTEMPTS}): ${describeRoundFailure('RESUME', result)}`, { jobId: request.job_id });
    const retry = await runRound(c, round, again, c.config.resumeTimeoutMs);
    result = mergeRetry(result, retry, again, attempt);
  }
  c.jobs.noteResumed(request.job_id!, byHost, result);
  return result;
}

/** `first` with the hosts of `again` taken from `retry`, their `attempt`th (a timeout says how many). */
function mergeRetry(first: RoundResult, retry: RoundResult, again: Map<string, number[]>, attempt: number): RoundResult {
  const failures = new Map(first.failures);
  const codes = new Map(first.codes);
  for (const ranks of again.values()) {
    for (const r of ranks) {
      failures.delete(r);
      codes.delete(r);
    }
  }
  for (const [r, why] of retry.failures) failures.set(r, retry.codes.get(r) === ErrorCode.TIMEOUT ? `${why} (asked ${attempt} times)` : why);
  for (const [r, code] of retry.codes) codes.set(r, code);
  const replies = new Map([...first.replies].filter(([host]) => !again.has(host)));
  for (const [host, reply] of retry.replies) replies.set(host, reply);
  const silentHosts = [...first.silentHosts.filter((host) => !again.has(host)), ...retry.silentHosts];
  return { ok: failures.size === 0, failures, codes, silentHosts, replies };
}

/**
 * The hosts of round `r` that did not answer and are down now. What an operation owes their ranks (a
 * RESUME, a DISCARD) waits for their agents to register again (JobService.settleFlushed). A host that
 * did not answer but is up (its answer was lost, or came after the timeout) is asked like the others:
 * its agent will not register again, so nothing else would ever wake its ranks.
 */
export function hostsDown(c: Coordinator, r: RoundResult | undefined): Set<string> {
  return new Set((r?.silentHosts ?? []).filter((host) => c.hosts.get(host)?.state !== 'up'));
}

/**
 * The code an operator gets for a failed round: the agents' own code when every
 * failed rank has the same specific one (IMAGE_CORRUPT for a flipped byte), else
 * `fallback` (INTERNAL says nothing more than the fallback does).
 */
export function roundFailureCode(r: RoundResult, fallback: ErrorCode = ErrorCode.UNAVAILABLE): ErrorCode {
  const distinct = new Set(r.codes.values());
  const only = distinct.size === 1 ? [...distinct][0] : undefined;
  return only === undefined || only === ErrorCode.INTERNAL ? fallback : only;
}

/** "STEP failed: ranks 1,2: reason; rank 3: other reason": the failures of a round, grouped by reason. */
export function describeRoundFailure(step: string, r: RoundResult): string {
  const byReason = new Map<string, number[]>();
  for (const [rank, reason] of r.failures) byReason.set(reason, [...(byReason.get(reason) ?? []), rank]);
  return (
    `${step} failed: ` +
    [...byReason].map(([reason, ranks]) => `rank${ranks.length > 1 ? 's' : ''} ${ranks.sort((a, b) => a - b).join(',')}: ${reason}`).join('; ')
  );
}
