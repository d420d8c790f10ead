// Tunables of the coordinator, with their defaults.
import { LAUNCHER_LEASE_MS } from './launcher-leases.js';
import { FOLLOWER_WAITING_LIMIT_BYTES } from './follower-link.js';

export const HEARTBEAT_INTERVAL_MS = 1_000;
export const HEARTBEAT_TIMEOUT_MS = 5_000;
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;
/**
 * The most standard input a job's rank 0 is given (SubmitJobRequest.stdin): it
 * travels in one message to the coordinator and one to rank 0's agent, within
 * MAX_FRAME_BYTES, and then with every image of rank 0.
 */
export const MAX_STDIN_BYTES = 2 * 1024 * 1024;
export const AGENT_REQUEST_TIMEOUT_MS = 10_000;
export const EVENTS_KEEP = 100_000;
/** Checkpoint steps: how long every agent gets to answer one step for all of its ranks. */
export const FLUSH_TIMEOUT_MS = 30_000;
export const DUMP_TIMEOUT_MS = 600_000;
export const RESUME_TIMEOUT_MS = 30_000;
/**
 * How long a host that went down with running ranks may take to come back (an
 * agent restarted after a crash re-adopts the ranks that kept running) before
 * their jobs fail, or are restarted automatically (ferry run --auto-restart).
 */
export const HOST_REJOIN_GRACE_MS = 30_000;
/** A coordinator asked to stop waits this long for the operations under way to end. */
export const STOP_DRAIN_MS = 30_000;
/**
 * Committed epochs of a job whose images are kept, unless the job says
 * otherwise: the newest, and one to fall back on should the newest turn out
 * unreadable. Older ones are deleted after each commit, so a job checkpointed
 * every few minutes for a week does not fill the disk.
 */
export const KEEP_EPOCHS = 2;
/**
 * Epochs of a job that ended without being kept (aborted, deleted by retention,
 * lost) that the catalog, and `ferry epochs`, still list: the newest of them.
 * Older ones are forgotten once nothing of them waits for removal; the events
 * keep their story.
 */
export const ENDED_EPOCHS_LISTED = 10;
/**
 * How long an operator's checkpoint, restart, migration or delete waits for the
 * job's image copies (--image-replicas) to end before it is refused as busy.
 */
export const WAIT_FOR_COPIES_MS = 60_000;
/** The most replicas of an image the coordinator can be told to keep: a bound on bad input. */
export const MAX_IMAGE_REPLICAS = 8;

export interface CoordinatorConfig {
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  /** Frames above this get FRAME_TOO_LARGE without being decoded. */
  maxFrameBytes: number;
  agentRequestTimeoutMs: number;
  flushTimeoutMs: number;
  dumpTimeoutMs: number;
  resumeTimeoutMs: number;
  stopDrainMs: number;
  hostRejoinGraceMs: number;
  /** How long a launched job's rank may go without its launcher process renewing its follow (launcher-leases.ts). */
  launcherLeaseMs: number;
  /** Output kept for one follower that does not take it; past it the oldest goes, with a notice (follower-link.ts). */
  followerWaitingLimitBytes: number;
  /** Committed epochs a job keeps when it sets no number itself (>= 1). */
  keepEpochs: number;
  /**
   * Hosts besides its writer that get a verified copy of each image of a
   * committed epoch (0: none). Images in a store other live hosts share are
   * not copied: they outlive their writer already.
   */
  imageReplicas: number;
  /** What `ferry status` shows as the listening address. */
  listen: string;
  /** Whether its socket needs the cluster key (what `ferry status` shows). */
  clusterKey: boolean;
}

export function defaultCoordinatorConfig(overrides: Partial<CoordinatorConfig> = {}): CoordinatorConfig {
  return {
    heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
    heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
    maxFrameBytes: MAX_FRAME_BYTES,
    agentRequestTimeoutMs: AGENT_REQUEST_TIMEOUT_MS,
    flushTimeoutMs: FLUSH_TIMEOUT_MS,
    dumpTimeoutMs: DUMP_TIMEOUT_MS,
    resumeTimeoutMs: RESUME_TIMEOUT_MS,
    stopDrainMs: STOP_DRAIN_MS,
    hostRejoinGraceMs: HOST_REJOIN_GRACE_MS,
    launcherLeaseMs: LAUNCHER_LEASE_MS,
    followerWaitingLimitBytes: FOLLOWER_WAITING_LIMIT_BYTES,
    keepEpochs: KEEP_EPOCHS,
    imageReplicas: 0,
    listen: '',
    clusterKey: false,
    ...overrides,
  };
}
