// What an agent does to its ranks at each step of the checkpoint protocol
// (docs/checkpoint-protocol.md). The agent answers one RoundRequest for all of
// its ranks of a job with one StepOutcome. The protocol tests give the agent a
// scripted RankSteps; the daemon gives it LocalRankSteps (local-rank-steps.ts).
import type { CutBackFileInit, FlushStatsInit, RankImageInit, RankProcessInit, RoundRequest } from '../gen/proto.js';
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
  /**
   * RESTORE: where each restored rank's log files ended before it ran again. Its output is followed from
   * there: a rank that computes outside MPI prints on from the moment it is restored, before RESUME.
   */
  logStarts?: Map<number, { out: number; err: number }>;
  /** FETCH: bytes shipped to this host. */
  bytesFetched?: number;
  /** FETCH of a rollback: the files cut back to their size at the epoch. */
  filesCutBack?: CutBackFileInit[];
  /** PUT_BACK: the files whole again, and those left cut (with why and where their bytes are). */
  filesPutBack?: CutBackFileInit[];
  putBackProblems?: string[];
}

export interface RankSteps {
  run(req: RoundRequest): Promise<StepOutcome>;
  /**
   * Ranks flushed (or flushing) that no RESUME has reached, keyed job/rank, with
   * the epoch or image set they were flushed for. The agent reports them when it
   * registers, so a coordinator that lost the operation (it restarted, or this
   * host was cut off) can settle them (JobService.settleFlushed).
   */
  awaitingResume(): Map<string, number>;
  /** A re-adopted rank that the previous agent left flushed for `epoch`: it waits for RESUME like one flushed here. */
  adoptFlushed(jobId: string, rank: number, epoch: number): void;
  /** A re-adopted rank that runs: it connects to this agent again by itself, and a PREPARE waits for that. */
  expectReattach?(jobId: string, rank: number): void;
  /** The job is deleted (ferry delete): what this node kept for it outside its images (a restart's cut bytes) goes. */
  forgetJob?(jobId: string): Promise<void>;
  /** The agent stops: what runs on its behalf between steps (dumps started ahead of time) is called off. */
  close?(): void;
}
