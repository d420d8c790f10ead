// `ferry events --follow`: the coordinator's events as they are recorded, until
// Ctrl-C, for an operator watching a cluster through a maintenance. It asks for
// the events after the last one it printed every EVENTS_POLL_MS (event numbers
// only grow, also across coordinator restarts: catalog-migrations.ts), so
// nothing is printed twice or skipped. While the coordinator does not answer
// (restarting, say) it says so once, keeps asking, and says when it answers
// again: the events of the restart come next.
import { ErrorCode, type EventInfo } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';
import { OperatorClient } from './operator-client.js';
import { formatTime } from './table.js';

/** How often a follow asks for new events. */
export const EVENTS_POLL_MS = 1_000;
/** How many events one request of a follow asks for: a backlog comes in pages of this many. */
const EVENTS_PAGE = 1_000;

export interface EventsQuery {
  jobId: string;
  /** Print the events after this one first; 0: the newest `limit`. */
  afterSeq: number;
  limit: number;
}

export interface EventsFollowOutput {
  /** One event: a line of text, or one JSON object per line (JSON Lines) with --json. */
  event(e: EventInfo): void;
  /** What the follow has to say about itself (stderr). */
  note(line: string): void;
}

/**
 * Follows the events until `signal` aborts (the normal end) or the coordinator
 * refuses the query (an unknown job: thrown).
 */
export async function followEvents(address: string, q: EventsQuery, output: EventsFollowOutput, signal: AbortSignal, pollMs = EVENTS_POLL_MS): Promise<void> {
  const client = new OperatorClient(address);
  let last = q.afterSeq;
  let first = q.afterSeq === 0;
  let unanswered = false;
  try {
    while (!signal.aborted) {
      let full = false;
      try {
        const events = (
          await client.request({
            events: { job_id: q.jobId, after_seq: last, limit: first ? q.limit : EVENTS_PAGE, newest: first },
          })
        ).events!.events;
        if (unanswered) output.note(`the coordinator at ${address} answers again`);
        unanswered = false;
        first = false;
        for (const e of events) {
          if (e.seq <= last) continue; // (never expected: numbers only grow)
          output.event(e);
          last = e.seq;
        }
        full = events.length >= EVENTS_PAGE;
      } catch (err) {
        if (!(err instanceof FerryError && err.code === ErrorCode.UNAVAILABLE)) throw err;
        if (!unanswered) output.note(`${err.message}; waiting for it, Ctrl-C ends`);
        unanswered = true;
      }
      if (!full) await sleep(pollMs, signal);
    }
  } finally {
    await client.close();
  }
}

/** Text lines of a follow: the columns of `ferry events`, at fixed widths (a long value pushes the rest right). */
export function eventLine(e: EventInfo): string {
  return columns(String(e.seq), formatTime(e.time_ms), e.kind, e.host || '-', e.job_id || '-', e.message);
}

export const EVENTS_FOLLOW_HEADER = columns('SEQ', 'TIME', 'KIND', 'HOST', 'JOB', 'MESSAGE');

function columns(seq: string, time: string, kind: string, host: string, job: string, message: string): string {
  return [seq.padEnd(6), time.padEnd(20), kind.padEnd(22), host.padEnd(8), job.padEnd(10), message].join('  ');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
