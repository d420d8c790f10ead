// A FETCH whose source went away while it ran: the agent that served the
// images ended, so nothing accepts connections at its image server's address
// any more (the target's fetch fails UNAVAILABLE, image-client.ts), or its
// whole host went silent (TIMEOUT). The images are still on that host's disk.
// An agent started again there (a supervisor restarts it) serves them from a
// new address, and a live host that sees the same image store serves them
// too. The ranks whose fetch failed so are fetched once more, from where
// their images are served now; the target goes on from the part it already
// has (image-fetcher.ts resumes a file from its .part). For a migration, a
// restart and an image replica's copy alike.
//
// For a migration, also a FETCH whose target's agent was replaced while it
// ran (killed and started again): the new agent is asked the same FETCH.
// Not for a restart: the catalog has its ranks starting on their targets,
// and a target's agent that comes back without them has lost them.
import { ErrorCode, type ImageSourceInit, type RoundReply, type RoundRequestInit } from '../../gen/proto.js';
import type { Coordinator } from '../coordinator.js';
import { byHostOf, describeRoundFailure, runRound, type RoundResult } from '../round-runner.js';

/** The codes a target gives when its source stopped answering (not when the image was wrong, or the target failed). */
const SOURCE_LOST = new Set<ErrorCode>([ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT]);

/** Why a rank's FETCH is waited on to be asked again. */
type Lost = 'source' | 'target';
/** How often the wait for a new source looks at the hosts. */
const SOURCE_POLL_MS = 100;

export interface FetchAgainResult {
  /** The FETCH's result, the ranks fetched again with the outcome of their second attempt. */
  result: RoundResult;
  /** Rank -> the source it was fetched from the second time. */
  newSources: Map<number, ImageSourceInit>;
}

/**
 * After the FETCH round `first` (to the targets `targets`, host -> ranks, each rank from `sources`):
 * its ranks that failed because their source stopped answering are fetched again, once, from
 * `sourceNow(rank)` (where the image is served now, or undefined), as soon as that is somewhere else.
 * It waits for that up to twice the heartbeat timeout: by then a dead agent's host is down, or its
 * agent started again has registered with its new address. A source host heard from since the
 * failure, at the same address, is not gone: there is nothing to wait for.
 * With `targetAgents` (each target's agent instance when the FETCH was sent): also the ranks whose
 * target's agent was lost, once an agent of another instance is up there (the same agent heard from
 * again may still be fetching: it is not asked twice).
 */
export async function fetchAgainFromNewSources(
  c: Coordinator,
  request: Omit<RoundRequestInit, 'ranks'>,
  targets: Map<string, number[]>,
  first: RoundResult,
  sources: ReadonlyMap<number, ImageSourceInit>,
  sourceNow: (rank: number) => ImageSourceInit | undefined,
  timeoutMs: number,
  targetAgents?: ReadonlyMap<string, string | undefined>,
): Promise<FetchAgainResult> {
  const newSources = new Map<number, ImageSourceInit>();
  const targetOf = new Map([...targets].flatMap(([host, ranks]) => ranks.map((r) => [r, host] as const)));
  const waiting = new Map<number, Lost>();
  for (const r of first.failures.keys()) {
    const target = targetOf.get(r);
    if (target === undefined) continue;
    const code = first.codes.get(r)!;
    if (SOURCE_LOST.has(code) && !!sources.get(r)?.server && first.replies.has(target)) waiting.set(r, 'source');
    else if (targetAgents && code === ErrorCode.HOST_DOWN && first.silentHosts.includes(target)) waiting.set(r, 'target');
  }
  if (waiting.size === 0) return { result: first, newSources };

  const failedAt = c.now();
  for (;;) {
    for (const [r, lost] of waiting) {
      const old = sources.get(r)!;
      const now = sourceNow(r);
      // (another image server: a target that reads an image in place read it so from the start)
      const moved = !!now?.server && (now.host !== old.host || now.server !== old.server);
      if (lost === 'target') {
        const target = c.hosts.get(targetOf.get(r)!);
        if (target?.state === 'up' && target.agentInstance !== targetAgents!.get(target.name)) {
          newSources.set(r, moved ? now! : old);
          waiting.delete(r);
        }
        continue;
      }
      if (moved) {
        newSources.set(r, now!);
        waiting.delete(r);
        continue;
      }
      const host = c.hosts.get(old.host ?? '');
      if (host?.state === 'up' && host.imageServer === old.server && host.lastHeardMs > failedAt) waiting.delete(r); // alive, same server
    }
    if (waiting.size === 0 || c.now() - failedAt >= 2 * c.config.heartbeatTimeoutMs) break;
    await new Promise((resolve) => setTimeout(resolve, SOURCE_POLL_MS));
  }
  if (newSources.size === 0) return { result: first, newSources };

  const again = byHostOf(new Map([...newSources.keys()].map((r) => [r, targetOf.get(r)!])));
  c.event(
    'fetch.again',
    `job ${request.job_id}: ${describeRoundFailure('FETCH', pick(first, [...newSources.keys()]))}; fetching again: ` +
      [...newSources].map(([r, s]) => `rank ${r} on ${targetOf.get(r)} from ${s.host}${s.server ? ` (${s.server})` : ''}`).join(', '),
    { jobId: request.job_id },
  );
  const retry = await runRound(c, request, again, timeoutMs, (ranks) => ({ sources: ranks.map((r) => newSources.get(r)!) }));
  return { result: merged(first, retry, [...newSources.keys()]), newSources };
}

/** `r` with only the failures of `ranks`. */
function pick(r: RoundResult, ranks: number[]): RoundResult {
  const failures = new Map([...r.failures].filter(([rank]) => ranks.includes(rank)));
  return { ...r, failures, ok: failures.size === 0 };
}

/** `first` with `ranks` taken from `retry`; a target's two replies add up (bytes fetched, files cut back). */
function merged(first: RoundResult, retry: RoundResult, ranks: number[]): RoundResult {
  const failures = new Map([...first.failures].filter(([r]) => !ranks.includes(r)));
  const codes = new Map([...first.codes].filter(([r]) => !ranks.includes(r)));
  for (const [r, why] of retry.failures) failures.set(r, `${why} (asked again)`);
  for (const [r, code] of retry.codes) codes.set(r, code);
  const replies = new Map(first.replies);
  for (const [host, second] of retry.replies) {
    const one: RoundReply | undefined = replies.get(host);
    replies.set(
      host,
      one
        ? {
            ...second,
            bytes_fetched: Number(one.bytes_fetched) + Number(second.bytes_fetched),
            files_cut_back: [...one.files_cut_back, ...second.files_cut_back],
            acknowledged: one.acknowledged + second.acknowledged,
            failed: [...one.failed.filter((f) => !ranks.includes(f.rank)), ...second.failed],
          }
        : second,
    );
  }
  // (a target asked again is silent only if it did not answer the second time)
  const askedAgain = new Set([...retry.replies.keys(), ...retry.silentHosts]);
  const silentHosts = [...new Set([...first.silentHosts.filter((host) => !askedAgain.has(host)), ...retry.silentHosts])];
  return { ok: failures.size === 0, failures, codes, silentHosts, replies };
}
