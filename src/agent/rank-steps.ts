// What an agent does to its ranks at each step of the checkpoint protocol
// (docs/checkpoint-protocol.md). The agent answers one RoundRequest for all of
// its ranks of a job with one StepOutcome. The protocol tests give the agent a
// scripted RankSteps; the daemon gives it LocalRankSteps (local-rank-steps.ts).
import type { FlushStatsInit, RankImageInit, RankProcessInit, RoundRequest } from '../gen/proto.js';
import type { FerryError } from '../common/ferry-error.js';

export interface StepOutcome {
  /** The ranks of the request that failed, with why. */
  failed: Map<number, FerryError>;
  /** DUMP: the images written. */
  images?: RankImageInit[];
  /** PREPARE: what the flush drained. */
  flush?: FlushStatsInit;
  /** RESTORE: the ranks now running here. */
  started?: RankProcessInit[];
  /** FETCH: bytes shipped to this host. */
  bytesFetched?: number;
}

export interface RankSteps {
  run(req: RoundRequest): Promise<StepOutcome>;
}
