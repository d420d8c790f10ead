// Tunables of the coordinator, with their defaults.
export const HEARTBEAT_INTERVAL_MS = 1_000;
export const HEARTBEAT_TIMEOUT_MS = 5_000;
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;
export const AGENT_REQUEST_TIMEOUT_MS = 10_000;
export const EVENTS_KEEP = 100_000;
/** Checkpoint steps: how long every agent gets to answer one step for all of its ranks. */
export const FLUSH_TIMEOUT_MS = 30_000;
export const DUMP_TIMEOUT_MS = 600_000;
export const RESUME_TIMEOUT_MS = 30_000;
/** A coordinator asked to stop waits this long for the operations under way to end. */
export const STOP_DRAIN_MS = 30_000;

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
  /** What `ferry status` shows as the listening address. */
  listen: string;
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
    listen: '',
    ...overrides,
  };
}
