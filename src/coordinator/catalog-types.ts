// Row and input shapes of the coordinator's catalog (src/coordinator/catalog.ts).
// Times are epoch milliseconds. A column that may be empty is `T | null` in a
// row; inputs take such fields as optional.

export type HostCatalogState = 'up' | 'down' | 'unknown';
export type JobCatalogState = 'pending' | 'running' | 'stopped' | 'succeeded' | 'failed' | 'cancelled';
export type RankCatalogState = 'starting' | 'running' | 'exited';

/** Job states after which a job counts as ended (left out of listJobs() by default). */
export const JOB_ENDED_STATES: readonly JobCatalogState[] = ['succeeded', 'failed', 'cancelled'];
/** Job states in which its run is over, none of its ranks running: the ended ones, and stopped (restartable). */
export const JOB_RUN_OVER_STATES: ReadonlySet<string> = new Set<JobCatalogState>(['stopped', ...JOB_ENDED_STATES]);

/** An epoch's first state; beginEpoch() creates it in this state. */
export const EPOCH_PREPARING = 'preparing';
/** Only commitEpoch() sets it: the epoch's images are the truth from then on. */
export const EPOCH_COMMITTED = 'committed';
/** A failed or abandoned epoch; it changes nothing (PROTOCOL-NOTES invariant 3). */
export const EPOCH_ABORTED = 'aborted';
/** A committed epoch the job's retention no longer keeps: never restored again, its images removed host by host. */
export const EPOCH_DELETED = 'deleted';
/**
 * A committed epoch one of whose images is gone with a host the operator forgot (ferry forget): never
 * restored again, the images it has left are removed like a deleted epoch's.
 */
export const EPOCH_LOST = 'lost';
/** States in which an epoch runs no protocol step; any other state is "in flight". */
export const EPOCH_TERMINAL_STATES: readonly string[] = [EPOCH_COMMITTED, EPOCH_ABORTED, EPOCH_DELETED, EPOCH_LOST];
/** States whose images (and replicas) are removed host by host, then forgotten. */
export const EPOCH_REMOVED_STATES: readonly string[] = [EPOCH_DELETED, EPOCH_LOST];

export interface HostRegistration {
  name: string;
  address: string;
  cpus: number;
  criuVersion: string;
  criuCheckOk: boolean;
  criuCheckDetail: string;
  agentInstance: string;
  registeredMs: number;
  /** The image store its agent writes to (RegisterRequest.image_store); '' or absent: not known. */
  imageStore?: string;
}

/** The operator drained a host (ferry drain): no new ranks are placed there until ferry undrain. */
export interface HostDrain {
  atMs: number;
  reason: string;
}

export interface HostRow extends HostRegistration {
  imageStore: string;
  drained: HostDrain | undefined;
  state: HostCatalogState;
  stateChangedMs: number;
  /** When the catalog first heard of this host (its first registration). */
  firstSeenMs: number;
}

/** What forgetting a host lost (Catalog.forgetHost). */
export interface ForgottenHost {
  /** Images of committed epochs that were there only; `replicated`: a stored replica elsewhere keeps the epoch. */
  lostImages: { jobId: string; epoch: number; rank: number; replicated: boolean }[];
  /** Committed epochs now 'lost', with the ranks whose images had no other copy. */
  lostEpochs: { jobId: string; epoch: number; ranks: number[] }[];
  /** Replicas that were on it (their rows are gone). */
  droppedReplicas: number;
  /** Restart copies and unfinished migrations' copies that were on it. */
  droppedCopies: number;
  /** Its image store when other hosts share it (then its images are not lost), else ''. */
  sharedStore: string;
}

export interface JobSpec {
  id: string;
  worldSize: number;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  createdMs: number;
  checkpointEveryMs?: number;
  /** Committed epochs whose images are kept; absent or 0: the coordinator's default. */
  keepEpochs?: number;
  /** Automatic restarts after a lost host (absent or 0: none). */
  autoRestarts?: number;
  /** Copies of each committed image on other hosts; absent or null: the coordinator's default. */
  imageReplicas?: number | null;
  /** The hosts the job runs on (JobRow.hosts); absent or null: any. */
  hosts?: string[] | null;
}

export interface JobStateExtra {
  startedMs?: number;
  endedMs?: number;
  exitCode?: number;
  detail?: string;
}

export interface JobRow {
  id: string;
  state: JobCatalogState;
  worldSize: number;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  createdMs: number;
  checkpointEveryMs: number | null;
  startedMs: number | null;
  endedMs: number | null;
  exitCode: number | null;
  detail: string | null;
  /** The last epoch id handed out for this job (0: none yet); never decreases. */
  lastEpoch: number;
  /** The epoch a checkpoint --stop committed while the job's ranks are being stopped (0: none). */
  stopAfterEpoch: number;
  /** Committed epochs whose images are kept (0: the coordinator's default). */
  keepEpochs: number;
  /** Copies of each committed image on other hosts (null: the coordinator's default). */
  imageReplicas: number | null;
  /**
   * The epoch the job's current run was restored from (0: never restarted) and
   * the newest epoch id when it was: committed epochs in between belong to a
   * branch that restart left behind.
   */
  branchFrom: number;
  branchAt: number;
  /** Automatic restarts left: each one a failure by a lost host uses up (0: the job just fails). */
  autoRestarts: number;
  /** The job failed by a lost host and its automatic restart has not started yet. */
  autoRestartDue: boolean;
  /**
   * The endpoint table of the ranks' current endpoints went out to their hosts; false while a new one is
   * gathered (and for a job that never had one).
   */
  endpointsPublished: boolean;
  /**
   * The hosts the job runs on, as the operator or its launcher named them (--hosts, --map, the hosts
   * its launched ranks joined from): restarts that name none, automatic restarts and drains keep its
   * ranks there (a batch allocation). null: any host.
   */
  hosts: string[] | null;
  /** The failure (or the operator's cancel) that is ending the job until its last rank ends; null: none. */
  ending: JobEnding | null;
  /** Its launcher is suspended (a rank-exec passed on SIGTSTP, no SIGCONT yet): its ranks are stopped. */
  launcherSuspended: boolean;
}

/** Why a job that still has ranks is ending: its status and message once they have ended. */
export interface JobEnding {
  exitCode: number;
  detail: string;
  /** A rank that only lost its connection to the one that failed: a real failure reported later replaces it. */
  secondary: boolean;
  /** Ranks were lost with their host, which an automatic restart may repair (auto-restarts.ts). */
  lostHost: boolean;
}

export interface RankUpdate {
  jobId: string;
  rank: number;
  host: string;
  pid: number;
  endpoint: string;
  state: RankCatalogState;
  exitCode?: number;
  signal?: string;
  updatedMs: number;
}

export interface RankRow {
  jobId: string;
  rank: number;
  host: string;
  pid: number;
  endpoint: string;
  state: RankCatalogState;
  exitCode: number | null;
  signal: string | null;
  updatedMs: number;
}

/** One state an epoch entered, in the order entered. */
export interface EpochPhase {
  state: string;
  atMs: number;
  detail: string | null;
}

export interface EpochRow {
  jobId: string;
  epoch: number;
  state: string;
  startedMs: number;
  updatedMs: number;
  committedMs: number | null;
  detail: string | null;
  phases: EpochPhase[];
}

/** One file of a rank's image, for an optional per-file manifest. */
export interface EpochImageFile {
  path: string;
  sizeBytes: number;
  sha256: string;
}

export interface EpochImageInput {
  jobId: string;
  epoch: number;
  rank: number;
  host: string;
  location: string;
  sizeBytes: number;
  sha256: string;
  manifest?: EpochImageFile[];
  /** The image store it was written to; absent: the store its host registered with. */
  imageStore?: string;
  /** Files the rank had open write-only with O_APPEND, with their size at the dump. */
  appendedFiles?: AppendedFileRecord[];
}

export interface AppendedFileRecord {
  path: string;
  sizeBytes: number;
}

export interface EpochImageRow {
  jobId: string;
  epoch: number;
  rank: number;
  host: string;
  location: string;
  sizeBytes: number;
  sha256: string;
  manifest: EpochImageFile[] | null;
  /** The image store it was written to; '' for images recorded before stores were known (only its host has them). */
  imageStore: string;
  /** When an agent removed its files (its epoch was deleted); null: still on disk. */
  removedMs: number | null;
  /** Files the rank had open write-only with O_APPEND, with their size at the dump ([]: none recorded). */
  appendedFiles: AppendedFileRecord[];
}

/** A flush begun and not known to be finished on every rank (Catalog.openFlushes). */
export interface OpenFlushRow {
  jobId: string;
  /** The checkpoint's epoch or the migration's image set: the epoch its PREPARE names. */
  imageSet: number;
  kind: 'checkpoint' | 'migration';
}

/** A rank of a migration between the stop of its old copy and the answer to its RESTORE. */
export interface RankMoveRow {
  jobId: string;
  rank: number;
  /** The migration's image set (its images on both hosts). */
  imageSet: number;
  fromHost: string;
  toHost: string;
  /** The image source the target fetched from (a proto ImageSource, as JSON). */
  sourceJson: string;
  /**
   * Whether the migration got as far as stopping the rank's old copy. Before
   * that (recorded before FETCH) the rank still lives on its source, and only
   * the target's fetched copy is left to remove.
   */
  stopped: boolean;
}

export interface EventInput {
  timeMs: number;
  kind: string;
  host?: string;
  jobId?: string;
  message: string;
}

export interface EventRow {
  seq: number;
  timeMs: number;
  kind: string;
  host: string | null;
  jobId: string | null;
  message: string;
}

export interface EventQuery {
  afterSeq?: number;
  limit?: number;
  jobId?: string;
  /** The newest `limit` events (after afterSeq), still in sequence order, rather than the first ones. */
  newest?: boolean;
}

/**
 * A replica: a verified, fsynced copy of one rank's image of a committed epoch
 * on a host other than its writer, so a restart survives the writer's loss.
 */
export interface ImageReplicaRow {
  jobId: string;
  epoch: number;
  rank: number;
  host: string;
  /** 'copying' until the host's FETCH has verified it; only 'stored' ones are restart sources. */
  state: 'copying' | 'stored';
  updatedMs: number;
}

/** An image copy a restart's target fetched (it is not where the epoch keeps its images). */
export interface RestartCopyRow {
  jobId: string;
  epoch: number;
  host: string;
  rank: number;
}
