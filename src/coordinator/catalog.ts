// The coordinator's durable catalog: hosts, jobs, ranks, checkpoint epochs with
// their per-rank images, and an event log, in one SQLite file
// (STATE_DIR/catalog.db) so that a restarted coordinator loses nothing.
//
// Synchronous by design (better-sqlite3): every call is one short local
// transaction, and the coordinator's event loop stays simple. Writes use
// synchronous=NORMAL (WAL: safe against a coordinator crash, may lose the last
// commits on power loss); the epoch writes that must survive power loss
// (beginEpoch: ids never reused; commitEpoch) switch to synchronous=FULL,
// whose fsync of the WAL also covers every earlier write.
import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { ErrorCode } from '../gen/proto.js';
import { tracer } from '../common/trace.js';
import { CATALOG_SCHEMA_VERSION, migrateCatalog, newerSchemaError, readSchemaVersion } from './catalog-migrations.js';
import type { OutputMarks, OutputRepeat } from './output-replay.js';
import {
  EPOCH_ABORTED,
  EPOCH_COMMITTED,
  EPOCH_DELETED,
  EPOCH_LOST,
  EPOCH_PREPARING,
  EPOCH_REMOVED_STATES,
  EPOCH_TERMINAL_STATES,
  JOB_ENDED_STATES,
  type EpochImageFile,
  type AppendedFileRecord,
  type EpochImageInput,
  type EpochImageRow,
  type EpochPhase,
  type EpochRow,
  type EventInput,
  type EventQuery,
  type EventRow,
  type ForgottenHost,
  type HostCatalogState,
  type HostDrain,
  type HostRegistration,
  type HostRow,
  type JobCatalogState,
  type JobRow,
  type JobSpec,
  type JobStateExtra,
  type RankCatalogState,
  type OpenFlushRow,
  type RankMoveRow,
  type RestartCopyRow,
  type ImageReplicaRow,
  type JobEnding,
  type RankRow,
  type RankUpdate,
} from './catalog-types.js';

const trace = tracer('catalog');

export const CATALOG_FILE_NAME = 'catalog.db';
export const EVENTS_DEFAULT_LIMIT = 100;
export const EVENTS_MAX_LIMIT = 10_000;
/** How long a write waits for a lock held by another connection before failing. */
const CATALOG_BUSY_TIMEOUT_MS = 5_000;
/** The first 16 bytes of every SQLite 3 database file. */
const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

const HOST_STATES: readonly HostCatalogState[] = ['up', 'down', 'unknown'];
const JOB_STATES: readonly JobCatalogState[] = ['pending', 'running', 'stopped', 'succeeded', 'failed', 'cancelled'];
const RANK_STATES: readonly RankCatalogState[] = ['starting', 'running', 'exited'];
const SHA256_HEX = /^[0-9a-f]{64}$/;

type Row = Record<string, unknown>;
type Stmt = Database.Statement;

export class Catalog {
  readonly schemaVersion: number;
  readonly file: string;
  private readonly db: Database.Database;
  private readonly st: ReturnType<typeof prepareStatements>;

  private constructor(db: Database.Database, file: string, schemaVersion: number) {
    this.db = db;
    this.file = file;
    this.schemaVersion = schemaVersion;
    this.st = prepareStatements(db);
  }

  /**
   * Opens (creating it and `stateDir` when missing) STATE_DIR/catalog.db and
   * migrates it to the current schema. Refuses, without writing to it, a file
   * that is not a SQLite database, a corrupt one, or one from a newer schema.
   */
  static open(stateDir: string): Catalog {
    mkdirSync(stateDir, { recursive: true });
    const file = join(stateDir, CATALOG_FILE_NAME);
    checkLooksLikeSqlite(file);
    let db: Database.Database;
    try {
      db = new Database(file, { timeout: CATALOG_BUSY_TIMEOUT_MS });
    } catch (err) {
      throw new FerryError(ErrorCode.INTERNAL, `cannot open catalog ${file}: ${errorMessage(err)}`);
    }
    try {
      // Read-only checks first, so a refused file is left exactly as found.
      const check = db.pragma('quick_check', { simple: true }) as string;
      if (check !== 'ok') {
        throw new FerryError(ErrorCode.INTERNAL, `catalog ${file} is corrupt (quick_check: ${check}); refusing to use it`);
      }
      const found = readSchemaVersion(db);
      if (found > CATALOG_SCHEMA_VERSION) throw newerSchemaError(file, found, CATALOG_SCHEMA_VERSION);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      const version = migrateCatalog(db, file);
      trace(`opened ${file} at schema version ${version} (found ${found})`);
      return new Catalog(db, file, version);
    } catch (err) {
      db.close();
      if (err instanceof FerryError) throw err;
      const code = (err as { code?: unknown }).code;
      if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
        throw new FerryError(ErrorCode.INTERNAL, `catalog ${file} is not a usable SQLite database (${errorMessage(err)}); refusing to use it`);
      }
      throw new FerryError(ErrorCode.INTERNAL, `cannot open catalog ${file}: ${errorMessage(err)}`);
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // ---- hosts -------------------------------------------------------------

  /**
   * Marks a host drained (ferry drain: no new ranks go there) or, with
   * `drain` undefined, takes it back (ferry undrain). A host that registers
   * again stays as it was; one that was forgotten comes back undrained.
   */
  setHostDrained(name: string, drain: HostDrain | undefined): void {
    if (drain) requireMs(drain.atMs, 'drain.atMs');
    const r = this.st.setHostDrained.run({ name, atMs: drain?.atMs ?? null, reason: drain?.reason ?? '' });
    if (r.changes === 0) throw new FerryError(ErrorCode.UNKNOWN_HOST, `host "${name}" is not in the catalog`);
  }

  /**
   * Rank folders (job, image set, rank) that `host` held when it was forgotten
   * and that nothing in the catalog refers to now (its own images, replicas,
   * restart copies and migrations since then are left out): what to remove
   * when it registers again.
   */
  forgottenImageDirs(host: string): { jobId: string; imageSet: number; rank: number }[] {
    const h = this.st.getHost.get(host) as Row | undefined;
    const store = (h?.image_store as string | undefined) ?? '';
    const inUse = new Set<string>();
    const key = (jobId: string, set: number, rank: number) => `${jobId}/${set}/${rank}`;
    for (const i of this.st.imagesSeenBy.all({ name: host, store }) as Row[]) inUse.add(key(i.job_id as string, i.epoch as number, i.rank as number));
    for (const r of this.st.replicasOnHost.all(host) as Row[]) inUse.add(key(r.job_id as string, r.epoch as number, r.rank as number));
    for (const x of this.st.restartCopiesOnHost.all(host) as Row[]) inUse.add(key(x.job_id as string, x.epoch as number, x.rank as number));
    for (const m of this.st.rankMoves.all() as Row[]) {
      if (m.to_host === host || m.from_host === host) inUse.add(key(m.job_id as string, m.image_set as number, m.rank as number));
    }
    return (this.st.forgottenDirs.all(host) as Row[])
      .map((r) => ({ jobId: r.job_id as string, imageSet: r.image_set as number, rank: r.rank as number }))
      .filter((d) => !inUse.has(key(d.jobId, d.imageSet, d.rank)));
  }

  /** The forgotten folders that were removed (or are in use again: forgottenImageDirs leaves them out). */
  clearForgottenImageDirs(host: string, jobId: string, imageSet: number, ranks: readonly number[]): void {
    this.durably(() => {
      for (const rank of ranks) this.st.deleteForgottenDir.run(host, jobId, imageSet, rank);
    });
  }

  /** Records a registration; a registered host is 'up'. Heartbeats are not stored. */
  upsertHost(h: HostRegistration): void {
    requireName(h.name, 'host name');
    requireUint(h.cpus, 'cpus');
    requireMs(h.registeredMs, 'registeredMs');
    this.st.upsertHost.run({
      name: h.name,
      address: h.address,
      cpus: h.cpus,
      criuVersion: h.criuVersion,
      criuCheckOk: h.criuCheckOk ? 1 : 0,
      criuCheckDetail: h.criuCheckDetail,
      agentInstance: h.agentInstance,
      registeredMs: h.registeredMs,
      imageStore: h.imageStore ?? '',
    });
  }

  setHostState(name: string, state: HostCatalogState, atMs: number): void {
    requireOneOf(state, HOST_STATES, 'host state');
    requireMs(atMs, 'atMs');
    if (this.st.setHostState.run({ name, state, atMs }).changes === 0) {
      throw new FerryError(ErrorCode.UNKNOWN_HOST, `unknown host '${name}'`);
    }
  }

  getHost(name: string): HostRow | undefined {
    const r = this.st.getHost.get(name) as Row | undefined;
    return r && hostRow(r);
  }

  listHosts(): HostRow[] {
    return (this.st.listHosts.all() as Row[]).map(hostRow);
  }

  /**
   * The operator says `name` is gone for good (ferry forget), in one durable
   * transaction. What only it held is lost:
   * - images it was the only reader of (its own, or its image store's when no
   *   other host shares that store) are marked removed, whatever their epoch;
   * - a committed epoch that loses an image without a stored replica elsewhere
   *   becomes 'lost' (never restored; its other images are removed);
   * - its replicas, the restart copies on it and migrations to it that had not
   *   stopped their rank yet are forgotten (their files went with it); in a
   *   shared store, another host of that store takes its replicas and copies over.
   * The host's row stays (ranks name it), left out of listHosts() until an
   * agent registers under that name again.
   */
  forgetHost(name: string, atMs: number): ForgottenHost {
    requireMs(atMs, 'atMs');
    return this.durably(() => {
      const host = this.st.getHost.get(name) as Row | undefined;
      if (!host || host.forgotten_ms !== null) throw new FerryError(ErrorCode.UNKNOWN_HOST, `host "${name}" is not known to the coordinator`);
      const store = host.image_store as string;
      const sharer = store === '' ? undefined : (this.st.storeSharers.get(store, name) as Row | undefined)?.name as string | undefined;
      const shared = sharer !== undefined;
      if (sharer) {
        // Its replicas and restart copies are files in the shared store: another host of it takes them over.
        this.st.moveReplicasToHost.run(sharer, name);
        this.st.moveRestartCopiesToHost.run(sharer, name);
      }
      const replicas = (this.st.replicasOnHost.all(name) as Row[]).map(replicaRow);
      // Every rank folder left in its images directory, to remove should it register again with that disk.
      const leftDir = (jobId: string, imageSet: number, rank: number) => this.st.insertForgottenDir.run({ host: name, jobId, imageSet, rank });
      for (const r of replicas) leftDir(r.jobId, r.epoch, r.rank);
      for (const x of this.st.restartCopiesOnHost.all(name) as Row[]) leftDir(x.job_id as string, x.epoch as number, x.rank as number);
      for (const m of this.st.unstoppedMovesTo.all(name) as Row[]) leftDir(m.job_id as string, m.image_set as number, m.rank as number);
      this.st.deleteReplicasOnHost.run(name);
      const lostImages: ForgottenHost['lostImages'] = [];
      const lostEpochs = new Map<string, ForgottenHost['lostEpochs'][number]>();
      // Images with no store id are its alone; those of its store are lost only if no host shares it.
      for (const r of this.st.imagesSeenBy.all({ name, store: shared ? '' : store }) as Row[]) {
        const jobId = r.job_id as string;
        const epoch = r.epoch as number;
        const rank = r.rank as number;
        leftDir(jobId, epoch, rank);
        this.st.markImageRemoved.run({ jobId, epoch, rank, atMs });
        if (r.epoch_state !== EPOCH_COMMITTED) continue;
        const replicated = this.st.storedReplicaOf.get(jobId, epoch, rank) !== undefined;
        lostImages.push({ jobId, epoch, rank, replicated });
        if (replicated) continue;
        const key = `${jobId}/${epoch}`;
        const lost = lostEpochs.get(key) ?? { jobId, epoch, ranks: [] };
        lost.ranks.push(rank);
        lostEpochs.set(key, lost);
      }
      // Committed epochs whose only other copy of an image was a replica there.
      for (const rp of replicas) {
        const key = `${rp.jobId}/${rp.epoch}`;
        if (rp.state !== 'stored' || lostEpochs.get(key)?.ranks.includes(rp.rank)) continue;
        const epoch = this.st.getEpoch.get(rp.jobId, rp.epoch) as Row | undefined;
        const original = (this.st.epochImages.all(rp.jobId, rp.epoch) as Row[]).find((i) => i.rank === rp.rank);
        if (epoch?.state !== EPOCH_COMMITTED || !original || original.removed_ms === null) continue;
        if (this.st.storedReplicaOf.get(rp.jobId, rp.epoch, rp.rank) !== undefined) continue;
        const lost = lostEpochs.get(key) ?? { jobId: rp.jobId, epoch: rp.epoch, ranks: [] };
        lost.ranks.push(rp.rank);
        lostEpochs.set(key, lost);
      }
      for (const e of lostEpochs.values()) {
        e.ranks.sort((a, b) => a - b);
        const detail = `lost: the image${e.ranks.length > 1 ? 's' : ''} of rank${e.ranks.length > 1 ? 's' : ''} ${e.ranks.join(',')} had no copy but on host ${name}, which the operator forgot`;
        this.st.setEpochState.run({ jobId: e.jobId, epoch: e.epoch, state: EPOCH_LOST, atMs, detail });
        this.st.insertPhase.run({ jobId: e.jobId, epoch: e.epoch, state: EPOCH_LOST, atMs, detail });
      }
      const restartCopies = this.st.deleteRestartCopiesOnHost.run(name).changes;
      const moves = this.st.deleteUnstoppedMovesTo.run(name).changes;
      this.st.deleteGivenUpCopiesOnHost.run(name); // (it never comes back with them)
      this.st.forgetHost.run({ name, atMs });
      trace(`host ${name} forgotten: ${lostImages.length} images, ${lostEpochs.size} epochs lost, ${replicas.length} replicas`);
      return {
        lostImages,
        lostEpochs: [...lostEpochs.values()],
        droppedReplicas: replicas.length,
        droppedCopies: restartCopies + moves,
        sharedStore: shared ? store : '',
      };
    });
  }

  // ---- jobs --------------------------------------------------------------

  createJob(j: JobSpec): void {
    requireName(j.id, 'job id');
    if (!Number.isSafeInteger(j.worldSize) || j.worldSize < 1) {
      throw new FerryError(ErrorCode.BAD_REQUEST, `job '${j.id}': world size must be a positive integer, got ${j.worldSize}`);
    }
    requireMs(j.createdMs, 'createdMs');
    if (j.checkpointEveryMs !== undefined) requireUint(j.checkpointEveryMs, 'checkpointEveryMs');
    if (j.keepEpochs !== undefined) requireUint(j.keepEpochs, 'keepEpochs');
    if (j.autoRestarts !== undefined) requireUint(j.autoRestarts, 'autoRestarts');
    if (j.imageReplicas !== undefined && j.imageReplicas !== null) requireUint(j.imageReplicas, 'imageReplicas');
    try {
      this.st.createJob.run({
        id: j.id,
        worldSize: j.worldSize,
        argvJson: JSON.stringify(j.argv),
        cwd: j.cwd,
        envJson: JSON.stringify(j.env),
        createdMs: j.createdMs,
        checkpointEveryMs: j.checkpointEveryMs ?? null,
        keepEpochs: j.keepEpochs ?? 0,
        autoRestarts: j.autoRestarts ?? 0,
        imageReplicas: j.imageReplicas ?? null,
        hostsJson: j.hosts ? JSON.stringify([...new Set(j.hosts)]) : null,
      });
    } catch (err) {
      if ((err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        if (this.st.getDeletedJob.get(j.id)) {
          throw new FerryError(ErrorCode.BUSY, `job '${j.id}' was deleted and its images are still being removed; its id is free once they are`);
        }
        throw new FerryError(ErrorCode.BAD_REQUEST, `job '${j.id}' already exists`);
      }
      throw err;
    }
  }

  /** Sets a job's state; fields of `extra` that are given replace the stored ones. */
  setJobState(id: string, state: JobCatalogState, extra: JobStateExtra = {}): void {
    requireOneOf(state, JOB_STATES, 'job state');
    if (extra.startedMs !== undefined) requireMs(extra.startedMs, 'startedMs');
    if (extra.endedMs !== undefined) requireMs(extra.endedMs, 'endedMs');
    if (extra.exitCode !== undefined) requireInt(extra.exitCode, 'exitCode');
    const changed = this.st.setJobState.run({
      id,
      state,
      startedMs: extra.startedMs ?? null,
      endedMs: extra.endedMs ?? null,
      exitCode: extra.exitCode ?? null,
      detail: extra.detail ?? null,
    }).changes;
    if (changed === 0) throw unknownJob(id);
  }

  /** Records, durably, that the job's launcher is suspended, its ranks stopped (or no longer: false). */
  setLauncherSuspended(id: string, suspended: boolean): void {
    this.durably(() => {
      if (this.st.setLauncherSuspended.run(suspended ? 1 : 0, id).changes === 0) throw unknownJob(id);
    });
  }

  /** Records (epoch) or clears (0) that the job is being stopped after a checkpoint --stop committed `epoch`. */
  setStopAfterEpoch(id: string, epoch: number): void {
    requireUint(epoch, 'epoch');
    if (this.st.setStopAfterEpoch.run(epoch, id).changes === 0) throw unknownJob(id);
  }

  /** Records, durably, that the job now runs restored from `epoch` (see JobRow.branchFrom). */
  setBranch(id: string, epoch: number): void {
    requireUint(epoch, 'epoch');
    this.durably(() => {
      const job = this.requireJob(id);
      this.st.setBranch.run(epoch, job.last_epoch as number, id);
    });
  }

  /** Sets (or, with null, clears) the job's periodic checkpoint interval. */
  setCheckpointEvery(id: string, everyMs: number | null): void {
    if (everyMs !== null) requireUint(everyMs, 'checkpointEveryMs');
    this.requireJob(id);
    this.st.setCheckpointEvery.run(everyMs, id);
  }

  /** Sets how many committed epochs of the job keep their images (0: the coordinator's default). */
  setKeepEpochs(id: string, keep: number): void {
    requireUint(keep, 'keepEpochs');
    if (this.st.setKeepEpochs.run(keep, id).changes === 0) throw unknownJob(id);
  }

  /** Sets how many copies of each committed image the job keeps on other hosts (null: the coordinator's default). */
  setImageReplicas(id: string, n: number | null): void {
    if (n !== null) requireUint(n, 'imageReplicas');
    if (this.st.setImageReplicas.run(n, id).changes === 0) throw unknownJob(id);
  }

  /** Sets the hosts the job runs on (JobRow.hosts; null: any). */
  setJobHosts(id: string, hosts: readonly string[] | null): void {
    for (const h of hosts ?? []) requireName(h, 'host name');
    if (this.st.setJobHosts.run(hosts ? JSON.stringify([...new Set(hosts)]) : null, id).changes === 0) throw unknownJob(id);
  }

  /** Sets, durably, how many automatic restarts the job has left (see JobRow.autoRestarts). */
  setAutoRestarts(id: string, n: number): void {
    requireUint(n, 'autoRestarts');
    this.durably(() => {
      if (this.st.setAutoRestarts.run(n, id).changes === 0) throw unknownJob(id);
    });
  }

  /** Records, durably, (or clears, null) the failure or cancel that is ending the job (JobRow.ending). */
  setEnding(id: string, ending: JobEnding | null): void {
    if (ending) requireInt(ending.exitCode, 'exitCode');
    this.durably(() => {
      if (this.st.setEnding.run(ending ? JSON.stringify(ending) : null, id).changes === 0) throw unknownJob(id);
    });
  }

  /** Records, durably, that the job's automatic restart is due (or no longer is). */
  setAutoRestartDue(id: string, due: boolean): void {
    this.durably(() => {
      if (this.st.setAutoRestartDue.run(due ? 1 : 0, id).changes === 0) throw unknownJob(id);
    });
  }

  /**
   * Records that the job's endpoint table went out (every rank's endpoint gathered), or that a new one is
   * being gathered. Not fsynced: it must outlive the coordinator's process, not the machine.
   */
  setEndpointsPublished(id: string, published: boolean): void {
    if (this.st.setEndpointsPublished.run(published ? 1 : 0, id).changes === 0) throw unknownJob(id);
  }

  /** Uses up one automatic restart, durably, as it starts: the count goes down and it is no longer due. Returns what is left. */
  useAutoRestart(id: string): number {
    return this.durably(() => {
      const job = this.requireJob(id);
      const left = Math.max(0, (job.auto_restarts as number) - 1);
      this.st.setAutoRestarts.run(left, id);
      this.st.setAutoRestartDue.run(0, id);
      return left;
    });
  }

  getJob(id: string): JobRow | undefined {
    const r = this.st.getJob.get(id) as Row | undefined;
    return r && jobRow(r);
  }

  /** Jobs by creation time; only those not ended unless `all`. */
  listJobs(opts: { all?: boolean } = {}): JobRow[] {
    const rows = (opts.all ? this.st.listAllJobs.all() : this.st.listLiveJobs.all()) as Row[];
    return rows.map(jobRow);
  }

  // ---- ranks -------------------------------------------------------------

  upsertRank(r: RankUpdate): void {
    const job = this.requireJob(r.jobId);
    requireRank(job, r.rank);
    if (this.st.getHost.get(r.host) === undefined) {
      throw new FerryError(ErrorCode.UNKNOWN_HOST, `rank ${r.rank} of job '${r.jobId}': unknown host '${r.host}'`);
    }
    requireOneOf(r.state, RANK_STATES, 'rank state');
    requireInt(r.pid, 'pid');
    requireMs(r.updatedMs, 'updatedMs');
    if (r.exitCode !== undefined) requireInt(r.exitCode, 'exitCode');
    this.st.upsertRank.run({
      jobId: r.jobId,
      rank: r.rank,
      host: r.host,
      pid: r.pid,
      endpoint: r.endpoint,
      state: r.state,
      exitCode: r.exitCode ?? null,
      signal: r.signal ?? null,
      updatedMs: r.updatedMs,
    });
  }

  getRank(jobId: string, rank: number): RankRow | undefined {
    const row = this.st.getRank.get(jobId, rank) as Row | undefined;
    return row ? rankRow(row) : undefined;
  }

  listRanks(jobId: string): RankRow[] {
    this.requireJob(jobId);
    return (this.st.listRanks.all(jobId) as Row[]).map(rankRow);
  }

  ranksOnHost(host: string): RankRow[] {
    if (this.st.getHost.get(host) === undefined) throw new FerryError(ErrorCode.UNKNOWN_HOST, `unknown host '${host}'`);
    return (this.st.ranksOnHost.all(host) as Row[]).map(rankRow);
  }

  // ---- checkpoint epochs -------------------------------------------------

  /**
   * Reserves an image-set number of `jobId` without an epoch (a migration's
   * images): it comes from the same counter as epoch ids, so image folders of
   * epochs and migrations never collide, and epoch ids still only grow. The
   * migration's flush is open from now on (openFlushes).
   */
  reserveImageSet(jobId: string): number {
    return this.durably(() => {
      this.requireJob(jobId);
      const imageSet = (this.st.bumpEpochCounter.get(jobId) as Row).last_epoch as number;
      this.st.openFlush.run(jobId, imageSet, 'migration');
      return imageSet;
    });
  }

  /**
   * Flushes begun (an epoch begun, a migration's image set reserved, in the
   * same durable transaction, before any PREPARE is sent) and not closed:
   * after a coordinator restart, flushes that may have reached only some ranks.
   */
  openFlushes(): OpenFlushRow[] {
    return (this.st.openFlushes.all() as Row[]).map((r) => ({ jobId: r.job_id as string, imageSet: r.image_set as number, kind: r.kind as OpenFlushRow['kind'] }));
  }

  /** The flush of image set `imageSet` ended on every rank, or will not be finished (the job fails or ends). */
  closeFlush(jobId: string, imageSet: number): void {
    this.st.closeFlush.run(jobId, imageSet);
  }

  /**
   * Starts a new epoch of `jobId` in state 'preparing' and returns its id: one
   * more than any id this job ever had, also after deletes and restarts.
   * Refused with BUSY while another epoch of the job is in flight.
   */
  beginEpoch(jobId: string, startedMs: number): number {
    requireMs(startedMs, 'startedMs');
    return this.durably(() => {
      this.requireJob(jobId);
      const open = this.st.inFlightEpochOfJob.get(jobId) as Row | undefined;
      if (open) {
        throw new FerryError(
          ErrorCode.BUSY,
          `job '${jobId}' already has epoch ${open.epoch} in flight (state '${open.state}'); abort or commit it first`,
        );
      }
      const epoch = (this.st.bumpEpochCounter.get(jobId) as Row).last_epoch as number;
      this.st.insertEpoch.run({ jobId, epoch, state: EPOCH_PREPARING, atMs: startedMs });
      this.st.insertPhase.run({ jobId, epoch, state: EPOCH_PREPARING, atMs: startedMs, detail: null });
      this.st.openFlush.run(jobId, epoch, 'checkpoint');
      trace(`job ${jobId}: epoch ${epoch} begun`);
      return epoch;
    });
  }

  /**
   * Moves an in-flight epoch to `state` (any name but 'committed', which only
   * commitEpoch() sets). 'aborted' is final; 'committed' leaves only for
   * 'deleted', by retireEpochs().
   */
  setEpochState(jobId: string, epoch: number, state: string, atMs: number, detail?: string): void {
    requireName(state, 'epoch state');
    requireMs(atMs, 'atMs');
    if (state === EPOCH_COMMITTED) {
      throw new FerryError(ErrorCode.BAD_REQUEST, `epoch ${epoch} of job '${jobId}': use commitEpoch() to commit`);
    }
    this.db.transaction(() => {
      const cur = this.requireInFlightEpoch(jobId, epoch);
      this.st.setEpochState.run({ jobId, epoch, state, atMs, detail: detail ?? null });
      this.st.insertPhase.run({ jobId, epoch, state, atMs, detail: detail ?? null });
      trace(`job ${jobId} epoch ${epoch}: ${cur.state} -> ${state}`);
    }).immediate();
  }

  /**
   * Records (or replaces) the image of one rank in an in-flight epoch. Its
   * image store, when not given, is the one its host registered with.
   */
  recordEpochImage(i: EpochImageInput): void {
    requireName(i.host, 'host');
    requireName(i.location, 'image location');
    requireUint(i.sizeBytes, 'sizeBytes');
    requireSha256(i.sha256, 'sha256');
    for (const f of i.appendedFiles ?? []) {
      requireName(f.path, 'appended file path');
      requireUint(f.sizeBytes, `size of ${f.path}`);
    }
    for (const f of i.manifest ?? []) {
      requireName(f.path, 'manifest path');
      requireUint(f.sizeBytes, `size of ${f.path}`);
      requireSha256(f.sha256, `sha256 of ${f.path}`);
    }
    this.db.transaction(() => {
      requireRank(this.requireJob(i.jobId), i.rank);
      this.requireInFlightEpoch(i.jobId, i.epoch);
      this.st.upsertImage.run({
        jobId: i.jobId,
        epoch: i.epoch,
        rank: i.rank,
        host: i.host,
        location: i.location,
        sizeBytes: i.sizeBytes,
        sha256: i.sha256,
        manifestJson: i.manifest === undefined ? null : JSON.stringify(i.manifest),
        appendedJson: i.appendedFiles?.length ? JSON.stringify(i.appendedFiles) : null,
        imageStore: i.imageStore ?? null,
      });
    }).immediate();
  }

  /**
   * Marks an epoch committed, durably (fsync before returning). Refused unless
   * the epoch is in flight and holds an image of every rank of the job.
   */
  commitEpoch(jobId: string, epoch: number, atMs: number): void {
    requireMs(atMs, 'atMs');
    this.durably(() => {
      const job = this.requireJob(jobId);
      this.requireInFlightEpoch(jobId, epoch);
      const have = new Set((this.st.imageRanks.all(jobId, epoch) as Row[]).map((r) => r.rank as number));
      if (have.size !== job.world_size) {
        const missing: number[] = [];
        for (let r = 0; r < (job.world_size as number) && missing.length < 10; r++) if (!have.has(r)) missing.push(r);
        throw new FerryError(
          ErrorCode.BAD_REQUEST,
          `epoch ${epoch} of job '${jobId}' has images of ${have.size} of ${job.world_size} ranks ` +
            `(missing ${missing.join(', ')}${have.size + missing.length < (job.world_size as number) ? ', ...' : ''}); not committed`,
        );
      }
      this.st.commitEpoch.run({ jobId, epoch, state: EPOCH_COMMITTED, atMs });
      this.st.insertPhase.run({ jobId, epoch, state: EPOCH_COMMITTED, atMs, detail: null });
      trace(`job ${jobId}: epoch ${epoch} committed`);
    });
  }

  /** Records how much of each rank's output was passed on when the epoch's ranks were flushed (output-replay.ts). */
  setOutputMarks(jobId: string, epoch: number, marks: OutputMarks): void {
    if (this.st.setOutputMarks.run(JSON.stringify(marks), jobId, epoch).changes === 0) throw unknownEpoch(jobId, epoch);
  }

  /**
   * Saves how many bytes of each rank's stdout and stderr were passed on (OutputReplay's counts);
   * rows of jobs no longer in the catalog are skipped.
   */
  saveOutputCounts(rows: readonly { jobId: string; rank: number; stdout: number; stderr: number }[]): void {
    if (rows.length === 0) return;
    this.db.transaction(() => {
      for (const r of rows) {
        requireUint(r.stdout, 'stdout bytes');
        requireUint(r.stderr, 'stderr bytes');
        this.st.saveOutputCount.run(r.jobId, r.rank, r.stdout, r.stderr, r.jobId);
      }
    })();
  }

  /**
   * The saved output counts of jobs that may run again (not succeeded, cancelled or deleted):
   * job -> rank -> [stdout, stderr] bytes passed on.
   */
  outputCounts(): Map<string, Map<number, [number, number]>> {
    const out = new Map<string, Map<number, [number, number]>>();
    for (const r of this.st.outputCounts.all() as Row[]) {
      const jobId = r.job_id as string;
      if (!out.has(jobId)) out.set(jobId, new Map());
      out.get(jobId)!.set(r.rank as number, [r.stdout_bytes as number, r.stderr_bytes as number]);
    }
    return out;
  }

  /** The epoch's output marks; undefined when none were taken. */
  outputMarks(jobId: string, epoch: number): OutputMarks | undefined {
    const r = this.st.getOutputMarks.get(jobId, epoch) as Row | undefined;
    return r?.output_marks ? (JSON.parse(r.output_marks as string) as OutputMarks) : undefined;
  }

  /** Forgets an epoch and its images (e.g. after its image files were removed). Ids are not reused. */
  deleteEpoch(jobId: string, epoch: number): void {
    this.requireJob(jobId);
    if (this.st.deleteEpoch.run(jobId, epoch).changes === 0) throw unknownEpoch(jobId, epoch);
  }

  /**
   * Forgets (with their phases and image rows) the epochs of a job that ended
   * without being kept (aborted, deleted, lost) but the newest `keep` of them,
   * so a job checkpointed every few minutes for weeks does not grow its
   * catalog, nor `ferry epochs`, without bound. An epoch still waiting for an
   * image, a replica or a restart's copy to be removed stays until it is.
   * The events keep their story. Ids are not reused. Returns them, oldest first.
   */
  forgetEndedEpochs(jobId: string, keep: number): number[] {
    requireUint(keep, 'keep');
    return this.db.transaction(() => {
      const ended = this.st.endedEpochsNewestFirst.all(jobId) as Row[];
      const gone = ended
        .slice(keep)
        .filter((r) => r.waiting === 0)
        .map((r) => r.epoch as number);
      for (const epoch of gone) this.st.deleteEpoch.run(jobId, epoch);
      return gone.reverse();
    })();
  }

  /**
   * Retention: every committed epoch of the job but the newest `keep` becomes
   * 'deleted', in one durable transaction, before any of its files go (so no
   * restart picks an epoch whose images are being removed). Returns them, oldest first.
   */
  retireEpochs(jobId: string, keep: number, atMs: number, detail: string): number[] {
    if (!Number.isSafeInteger(keep) || keep < 1) throw new FerryError(ErrorCode.BAD_REQUEST, `a job keeps at least 1 committed epoch, got ${keep}`);
    requireMs(atMs, 'atMs');
    return this.durably(() => {
      const job = this.requireJob(jobId);
      const from = job.branch_from as number;
      const at = job.branch_at as number;
      const committed = (this.st.committedEpochsNewestFirst.all(jobId, EPOCH_COMMITTED) as Row[]).map((r) => r.epoch as number);
      // Epochs a restart from an older one left behind never count among the `keep` newest: the run's own
      // are kept, the one it came from first. Once the job has committed one of its own since, they are no
      // fallback for it (another history), and they go whatever `keep` says. (Until 2026-12-08 they counted
      // before that commit: a lower `keep` then retired the very epoch the job had restarted from.)
      const leftBehind = from > 0 ? committed.filter((e) => e > from && e <= at) : [];
      const abandoned = committed.some((e) => e > at) ? leftBehind : [];
      const old = committed.filter((e) => !leftBehind.includes(e)).slice(keep);
      const retire = (epoch: number, why: string) => {
        this.st.setEpochState.run({ jobId, epoch, state: EPOCH_DELETED, atMs, detail: why });
        this.st.insertPhase.run({ jobId, epoch, state: EPOCH_DELETED, atMs, detail: why });
      };
      for (const epoch of abandoned) retire(epoch, `deleted: left behind when the job was restarted from epoch ${from}`);
      for (const epoch of old) retire(epoch, detail);
      const all = [...abandoned, ...old].sort((a, b) => a - b);
      if (all.length > 0) trace(`job ${jobId}: epochs ${all.join(',')} deleted`);
      return all;
    });
  }

  /**
   * Deletes a job (ferry delete): from now on it is unknown to every lookup,
   * and each of its committed epochs is 'deleted', so its images are removed
   * like those retention deletes. Returns those epochs, oldest first. Its row
   * stays until purgeJob(). Deleting a deleted job again returns [].
   */
  deleteJob(jobId: string, atMs: number, detail: string): number[] {
    requireMs(atMs, 'atMs');
    return this.durably(() => {
      if (this.st.getDeletedJob.get(jobId)) return [];
      this.requireJob(jobId);
      const open = this.st.inFlightEpochOfJob.get(jobId) as Row | undefined;
      if (open) throw new FerryError(ErrorCode.BUSY, `job '${jobId}' has epoch ${open.epoch} in flight (state '${open.state}')`);
      const epochs = (this.st.committedEpochsNewestFirst.all(jobId, EPOCH_COMMITTED) as Row[]).map((r) => r.epoch as number).reverse();
      for (const epoch of epochs) {
        this.st.setEpochState.run({ jobId, epoch, state: EPOCH_DELETED, atMs, detail });
        this.st.insertPhase.run({ jobId, epoch, state: EPOCH_DELETED, atMs, detail });
      }
      this.st.markJobDeleted.run(atMs, jobId);
      trace(`job ${jobId} deleted${epochs.length > 0 ? ` with epochs ${epochs.join(',')}` : ''}`);
      return epochs;
    });
  }

  /** Whether the job was deleted (ferry delete) and its rows are still here. */
  isDeletedJob(id: string): boolean {
    return this.st.getDeletedJob.get(id) !== undefined;
  }

  /** Jobs deleted whose rows are still here (some image of theirs not removed yet). */
  deletedJobs(): string[] {
    return (this.st.listDeletedJobs.all() as Row[]).map((r) => r.id as string);
  }

  /**
   * Removes a deleted job's rows (ranks, epochs, images, moves: cascaded) once
   * no image of it, nor a restart's copy, waits for removal; its events stay.
   * True if it is gone.
   */
  purgeJob(jobId: string): boolean {
    return this.durably(() => {
      if (!this.st.getDeletedJob.get(jobId)) return false;
      if (this.st.imagesToRemoveOfJob.all(jobId).length > 0) return false;
      if (this.st.restartCopiesOfJob.get(jobId)) return false; // a restart's copy still to remove
      if (this.st.replicasOfJob.get(jobId)) return false; // a replica still to remove
      if (this.st.givenUpCopiesOfJob.get(jobId)) return false; // a copy given up on a host not back yet
      return this.st.purgeJob.run(jobId).changes > 0;
    });
  }

  /** Images of deleted (or lost) epochs whose files no agent has removed yet (of one job, or of all). */
  imagesToRemove(jobId?: string): EpochImageRow[] {
    const rows = (jobId ? this.st.imagesToRemoveOfJob.all(jobId) : this.st.imagesToRemove.all()) as Row[];
    return rows.map(imageRow);
  }

  /** Records that an agent removed the files of these images of a deleted epoch. */
  markImagesRemoved(jobId: string, epoch: number, ranks: readonly number[], atMs: number): void {
    requireMs(atMs, 'atMs');
    this.db.transaction(() => {
      for (const rank of ranks) this.st.markImageRemoved.run({ jobId, epoch, rank, atMs });
    }).immediate();
  }

  /** Records, durably, the ranks a migration is about to copy to their targets, stop and restore there. */
  recordRankMoves(moves: readonly RankMoveRow[]): void {
    for (const m of moves) {
      requireName(m.fromHost, 'from host');
      requireName(m.toHost, 'to host');
      requireUint(m.imageSet, 'image set');
    }
    this.durably(() => {
      for (const m of moves) {
        requireRank(this.requireJob(m.jobId), m.rank);
        this.st.upsertRankMove.run({ ...m, stopped: m.stopped ? 1 : 0 });
      }
    });
  }

  /** Records, durably, that migration `imageSet` is about to stop these ranks' old copies. */
  markRankMovesStopped(jobId: string, imageSet: number, ranks: readonly number[]): void {
    this.durably(() => {
      for (const rank of ranks) this.st.markRankMoveStopped.run(jobId, imageSet, rank);
    });
  }

  /** Records, durably, the replicas a FETCH is about to make on `host` ('copying'). */
  recordReplicasCopying(jobId: string, epoch: number, host: string, ranks: readonly number[], atMs: number): void {
    requireName(host, 'host');
    requireMs(atMs, 'atMs');
    this.durably(() => {
      const job = this.requireJob(jobId);
      if (!this.st.getEpoch.get(jobId, epoch)) throw new FerryError(ErrorCode.BAD_REQUEST, `job ${jobId} has no epoch ${epoch}`);
      for (const rank of ranks) {
        requireRank(job, rank);
        this.st.upsertReplica.run({ jobId, epoch, rank, host, state: 'copying', atMs });
      }
    });
  }

  /** Records, durably, that `host` holds verified, fsynced replicas of these images. */
  markReplicasStored(jobId: string, epoch: number, host: string, ranks: readonly number[], atMs: number): void {
    requireMs(atMs, 'atMs');
    this.durably(() => {
      for (const rank of ranks) this.st.setReplicaState.run({ jobId, epoch, rank, host, state: 'stored', atMs });
    });
  }

  /** Replicas of one epoch (every state), by rank and host. */
  epochReplicas(jobId: string, epoch: number): ImageReplicaRow[] {
    return (this.st.replicasOfEpoch.all(jobId, epoch) as Row[]).map(replicaRow);
  }

  /**
   * Replicas whose copies are to be removed (of one job, or of all): those of
   * deleted epochs, and every 'copying' one (its caller skips those a FETCH is
   * making right now).
   */
  replicasToRemove(jobId?: string): ImageReplicaRow[] {
    const rows = (jobId ? this.st.replicasToRemoveOfJob.all(jobId) : this.st.replicasToRemove.all()) as Row[];
    return rows.map(replicaRow);
  }

  /** Records that `host` removed these replicas (or never made them). */
  removeReplicas(jobId: string, epoch: number, host: string, ranks: readonly number[]): void {
    this.db.transaction(() => {
      for (const rank of ranks) this.st.deleteReplica.run({ jobId, epoch, rank, host });
    }).immediate();
  }

  /** Records, durably, the image copies a restart's FETCH is about to make on its targets (rank -> host). */
  recordRestartCopies(jobId: string, epoch: number, copies: ReadonlyMap<number, string>): void {
    for (const host of copies.values()) requireName(host, 'host');
    this.durably(() => {
      const job = this.requireJob(jobId);
      for (const [rank, host] of copies) {
        requireRank(job, rank);
        this.st.insertRestartCopy.run({ jobId, epoch, host, rank });
      }
    });
  }

  /** Restart copies not known to be removed (on one host, or on all), by job, epoch and rank. */
  restartCopies(host?: string): RestartCopyRow[] {
    const rows = (host ? this.st.restartCopiesOnHost.all(host) : this.st.restartCopies.all()) as Row[];
    return rows.map((r) => ({ jobId: r.job_id as string, epoch: r.epoch as number, host: r.host as string, rank: r.rank as number }));
  }

  /** Records that a host removed these restart copies. */
  clearRestartCopies(jobId: string, epoch: number, host: string, ranks: readonly number[]): void {
    this.db.transaction(() => {
      for (const rank of ranks) this.st.deleteRestartCopy.run({ jobId, epoch, host, rank });
    }).immediate();
  }

  /** Replaces the job's output repeats (output-replay.ts). */
  saveOutputRepeats(jobId: string, repeats: readonly OutputRepeat[]): void {
    this.db.transaction(() => {
      this.st.deleteOutputRepeats.run(jobId);
      for (const r of repeats) {
        requireUint(r.bytes, 'repeat bytes');
        this.st.insertOutputRepeat.run({ jobId, rank: r.rank, stream: r.stream, bytes: r.bytes, beforeSource: r.beforeSource ?? null, source: r.source ?? null, from: r.from ?? null });
      }
    }).immediate();
  }

  /** Where the repeat of the rank's stream starts: its restored copy's first output came. */
  bindOutputRepeat(jobId: string, rank: number, stream: 0 | 1, source: string, from: number): void {
    requireUint(from, 'repeat offset');
    this.st.bindOutputRepeat.run({ jobId, rank, stream, source, from });
  }

  /** The output repeats of jobs that may run again (as outputCounts): `source` without `from`, not come yet. */
  outputRepeats(): (OutputRepeat & { jobId: string })[] {
    return (this.st.outputRepeats.all() as Row[]).map((r) => ({
      jobId: r.job_id as string,
      rank: r.rank as number,
      stream: r.stream as 0 | 1,
      bytes: r.bytes as number,
      ...(r.before_source !== null ? { beforeSource: r.before_source as string } : {}),
      ...(r.source !== null ? { source: r.source as string } : {}),
      ...(r.from_offset !== null ? { from: r.from_offset as number } : {}),
    }));
  }

  /** Records that rank `rank` of the job was given up with `host` (given-up-copies.ts). */
  addGivenUpCopy(jobId: string, rank: number, host: string): void {
    requireName(host, 'host');
    this.st.insertGivenUpCopy.run({ jobId, rank, host });
  }

  /** Forgets the given-up copy of rank `rank` of the job on `host`. */
  removeGivenUpCopy(jobId: string, rank: number, host: string): void {
    this.st.deleteGivenUpCopy.run({ jobId, rank, host });
  }

  /**
   * Forgets the given-up copies of deleted jobs on `host`, which registered: a copy of them it came back
   * with is killed (JobService.killStaleCopies), and the job may leave the catalog (purgeJob).
   */
  removeDeletedJobCopiesOn(host: string): number {
    return this.st.deleteDeletedJobCopiesOnHost.run(host).changes;
  }

  /** The given-up copies of jobs not deleted. */
  givenUpCopies(): { jobId: string; rank: number; host: string }[] {
    return (this.st.givenUpCopies.all() as Row[]).map((r) => ({ jobId: r.job_id as string, rank: r.rank as number, host: r.host as string }));
  }

  /** The rank moves recorded (of one job, or of all), by job, migration and rank. */
  rankMoves(jobId?: string): RankMoveRow[] {
    return ((jobId ? this.st.rankMovesOfJob.all(jobId) : this.st.rankMoves.all()) as Row[]).map(rankMoveRow);
  }

  /** Forgets the moves of these ranks by migration `imageSet` (finished, or their copies removed). */
  clearRankMoves(jobId: string, imageSet: number, ranks: readonly number[]): void {
    this.db.transaction(() => {
      for (const rank of ranks) this.st.deleteRankMove.run(jobId, imageSet, rank);
    }).immediate();
  }

  getEpoch(jobId: string, epoch: number): EpochRow | undefined {
    const r = this.st.getEpoch.get(jobId, epoch) as Row | undefined;
    return r && epochRow(r, (this.st.phasesOfEpoch.all(jobId, epoch) as Row[]).map(phaseRow));
  }

  listEpochs(jobId: string): EpochRow[] {
    this.requireJob(jobId);
    return this.withPhases(this.st.listEpochs.all(jobId) as Row[]);
  }

  /** The newest committed epoch of the job's current run (runEpochs), if any. */
  lastCommittedEpoch(jobId: string): EpochRow | undefined {
    const newest = this.runEpochs(jobId)[0];
    return newest === undefined ? undefined : this.getEpoch(jobId, newest);
  }

  /**
   * The committed epochs of the job's current run, newest first. After a
   * restart from an older epoch, the committed epochs taken after it belong to
   * the history that restart left behind (JobRow.branchFrom): not the current
   * run's, though they stay until retention deletes them.
   */
  runEpochs(jobId: string): number[] {
    const job = this.requireJob(jobId);
    const from = job.branch_from as number;
    const at = job.branch_at as number;
    return (this.st.committedEpochsNewestFirst.all(jobId, EPOCH_COMMITTED) as Row[])
      .map((r) => r.epoch as number)
      .filter((epoch) => !(from > 0 && epoch > from && epoch <= at));
  }

  /** Epochs of every job neither committed nor aborted: a restarted coordinator aborts these. */
  inFlightEpochs(): EpochRow[] {
    return (this.st.inFlightEpochs.all() as Row[]).map((r) =>
      epochRow(r, (this.st.phasesOfEpoch.all(r.job_id, r.epoch) as Row[]).map(phaseRow)),
    );
  }

  epochImages(jobId: string, epoch: number): EpochImageRow[] {
    if (this.st.getEpoch.get(jobId, epoch) === undefined) {
      this.requireJob(jobId);
      throw unknownEpoch(jobId, epoch);
    }
    return (this.st.epochImages.all(jobId, epoch) as Row[]).map(imageRow);
  }

  // ---- events ------------------------------------------------------------

  /** Appends an event and returns its sequence number (increasing, never reused). */
  appendEvent(e: EventInput): number {
    requireMs(e.timeMs, 'timeMs');
    requireName(e.kind, 'event kind');
    const info = this.st.appendEvent.run({
      timeMs: e.timeMs,
      kind: e.kind,
      host: e.host ?? null,
      jobId: e.jobId ?? null,
      message: e.message,
    });
    return Number(info.lastInsertRowid);
  }

  /** Events with seq > afterSeq, ascending; limit 0 or absent: 100, at most 10,000. */
  listEvents(q: EventQuery = {}): EventRow[] {
    const afterSeq = q.afterSeq ?? 0;
    requireUint(afterSeq, 'afterSeq');
    let limit = q.limit ?? 0;
    requireUint(limit, 'limit');
    if (limit === 0) limit = EVENTS_DEFAULT_LIMIT;
    limit = Math.min(limit, EVENTS_MAX_LIMIT);
    const rows = (
      q.newest
        ? q.jobId
          ? this.st.listNewestEventsOfJob.all(afterSeq, q.jobId, limit)
          : this.st.listNewestEvents.all(afterSeq, limit)
        : q.jobId
          ? this.st.listEventsOfJob.all(afterSeq, q.jobId, limit)
          : this.st.listEvents.all(afterSeq, limit)
    ) as Row[];
    return rows.map(eventRow);
  }

  /** Deletes all but the newest `keepLast` events. */
  pruneEvents(keepLast: number): void {
    requireUint(keepLast, 'keepLast');
    this.st.pruneEvents.run(keepLast);
  }

  // ---- internals ---------------------------------------------------------

  /** Runs `fn` in one immediate transaction whose commit is fsynced (synchronous=FULL). */
  private durably<T>(fn: () => T): T {
    // Not a prepared statement: SQLite applies `PRAGMA synchronous = X` when the
    // statement is compiled, so re-running a prepared one does nothing.
    this.db.pragma('synchronous = FULL');
    try {
      return this.db.transaction(fn).immediate();
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  private requireJob(id: string): Row {
    const r = this.st.getJob.get(id) as Row | undefined;
    if (!r) throw unknownJob(id);
    return r;
  }

  private requireInFlightEpoch(jobId: string, epoch: number): Row {
    const r = this.st.getEpoch.get(jobId, epoch) as Row | undefined;
    if (!r) {
      this.requireJob(jobId);
      throw unknownEpoch(jobId, epoch);
    }
    if (EPOCH_TERMINAL_STATES.includes(r.state as string)) {
      throw new FerryError(ErrorCode.BAD_REQUEST, `epoch ${epoch} of job '${jobId}' is already ${r.state}`);
    }
    return r;
  }

  private withPhases(rows: Row[]): EpochRow[] {
    if (rows.length === 0) return [];
    const byEpoch = new Map<number, EpochPhase[]>();
    for (const p of this.st.phasesOfJob.all(rows[0]!.job_id) as Row[]) {
      const list = byEpoch.get(p.epoch as number) ?? [];
      list.push(phaseRow(p));
      byEpoch.set(p.epoch as number, list);
    }
    return rows.map((r) => epochRow(r, byEpoch.get(r.epoch as number) ?? []));
  }
}

// Every statement is prepared once per Catalog, here.
function prepareStatements(db: Database.Database) {
  const p = (sql: string): Stmt => db.prepare(sql);
  const epochCols = 'job_id, epoch, state, started_ms, updated_ms, committed_ms, detail';
  const terminal = EPOCH_TERMINAL_STATES.map((s) => `'${s}'`).join(', ');
  const ended = JOB_ENDED_STATES.map((s) => `'${s}'`).join(', ');
  const removed = EPOCH_REMOVED_STATES.map((s) => `'${s}'`).join(', ');
  const unkept = [EPOCH_ABORTED, ...EPOCH_REMOVED_STATES].map((s) => `'${s}'`).join(', ');
  return {
    upsertHost: p(`
      INSERT INTO hosts (name, address, cpus, criu_version, criu_check_ok, criu_check_detail, agent_instance,
                         registered_ms, first_seen_ms, state, state_changed_ms, image_store)
      VALUES (@name, @address, @cpus, @criuVersion, @criuCheckOk, @criuCheckDetail, @agentInstance,
              @registeredMs, @registeredMs, 'up', @registeredMs, @imageStore)
      ON CONFLICT (name) DO UPDATE SET
        address = excluded.address, cpus = excluded.cpus, criu_version = excluded.criu_version,
        criu_check_ok = excluded.criu_check_ok, criu_check_detail = excluded.criu_check_detail,
        agent_instance = excluded.agent_instance, registered_ms = excluded.registered_ms,
        image_store = excluded.image_store, forgotten_ms = NULL,
        drained_ms = CASE WHEN hosts.forgotten_ms IS NULL THEN hosts.drained_ms END,
        drain_reason = CASE WHEN hosts.forgotten_ms IS NULL THEN hosts.drain_reason ELSE '' END,
        state_changed_ms = CASE WHEN hosts.state = 'up' THEN hosts.state_changed_ms ELSE excluded.registered_ms END,
        state = 'up'`),
    setHostState: p(`
      UPDATE hosts SET state_changed_ms = CASE WHEN state = @state THEN state_changed_ms ELSE @atMs END, state = @state
      WHERE name = @name`),
    getHost: p('SELECT * FROM hosts WHERE name = ?'),
    listHosts: p('SELECT * FROM hosts WHERE forgotten_ms IS NULL ORDER BY name'),
    setHostDrained: p('UPDATE hosts SET drained_ms = @atMs, drain_reason = @reason WHERE name = @name'),
    forgetHost: p("UPDATE hosts SET forgotten_ms = @atMs, state = 'down', state_changed_ms = @atMs WHERE name = @name"),
    storeSharers: p("SELECT name FROM hosts WHERE image_store = ? AND image_store != '' AND name != ? AND forgotten_ms IS NULL ORDER BY name"),
    moveReplicasToHost: p('UPDATE OR IGNORE image_replicas SET host = ? WHERE host = ?'),
    moveRestartCopiesToHost: p('UPDATE OR IGNORE restart_copies SET host = ? WHERE host = ?'),
    imagesSeenBy: p(`
      SELECT i.*, e.state AS epoch_state FROM epoch_images i JOIN epochs e USING (job_id, epoch)
      WHERE i.removed_ms IS NULL AND ((i.image_store = '' AND i.host = @name) OR (i.image_store != '' AND i.image_store = @store))
      ORDER BY i.job_id, i.epoch, i.rank`),
    replicasOnHost: p('SELECT * FROM image_replicas WHERE host = ? ORDER BY job_id, epoch, rank'),
    storedReplicaOf: p("SELECT 1 FROM image_replicas WHERE job_id = ? AND epoch = ? AND rank = ? AND state = 'stored' LIMIT 1"),
    deleteReplicasOnHost: p('DELETE FROM image_replicas WHERE host = ?'),
    deleteRestartCopiesOnHost: p('DELETE FROM restart_copies WHERE host = ?'),
    deleteUnstoppedMovesTo: p('DELETE FROM rank_moves WHERE to_host = ? AND stopped = 0'),
    unstoppedMovesTo: p('SELECT * FROM rank_moves WHERE to_host = ? AND stopped = 0'),
    insertForgottenDir: p('INSERT OR IGNORE INTO forgotten_image_dirs (host, job_id, image_set, rank) VALUES (@host, @jobId, @imageSet, @rank)'),
    forgottenDirs: p('SELECT * FROM forgotten_image_dirs WHERE host = ? ORDER BY job_id, image_set, rank'),
    deleteForgottenDir: p('DELETE FROM forgotten_image_dirs WHERE host = ? AND job_id = ? AND image_set = ? AND rank = ?'),

    createJob: p(`
      INSERT INTO jobs (id, state, world_size, argv_json, cwd, env_json, created_ms, checkpoint_every_ms, keep_epochs, auto_restarts, image_replicas, hosts_json)
      VALUES (@id, 'pending', @worldSize, @argvJson, @cwd, @envJson, @createdMs, @checkpointEveryMs, @keepEpochs, @autoRestarts, @imageReplicas, @hostsJson)`),
    setJobState: p(`
      UPDATE jobs SET state = @state,
        started_ms = COALESCE(@startedMs, started_ms), ended_ms = COALESCE(@endedMs, ended_ms),
        exit_code = COALESCE(@exitCode, exit_code), detail = COALESCE(@detail, detail)
      WHERE id = @id`),
    getJob: p('SELECT * FROM jobs WHERE id = ? AND deleted_ms IS NULL'),
    getDeletedJob: p('SELECT * FROM jobs WHERE id = ? AND deleted_ms IS NOT NULL'),
    listAllJobs: p('SELECT * FROM jobs WHERE deleted_ms IS NULL ORDER BY created_ms, id'),
    listLiveJobs: p(`SELECT * FROM jobs WHERE deleted_ms IS NULL AND state NOT IN (${ended}) ORDER BY created_ms, id`),
    listDeletedJobs: p('SELECT id FROM jobs WHERE deleted_ms IS NOT NULL ORDER BY deleted_ms, id'),
    markJobDeleted: p('UPDATE jobs SET deleted_ms = ? WHERE id = ?'),
    insertRestartCopy: p('INSERT OR IGNORE INTO restart_copies (job_id, epoch, host, rank) VALUES (@jobId, @epoch, @host, @rank)'),
    restartCopies: p('SELECT * FROM restart_copies ORDER BY job_id, epoch, host, rank'),
    restartCopiesOnHost: p('SELECT * FROM restart_copies WHERE host = ? ORDER BY job_id, epoch, rank'),
    restartCopiesOfJob: p('SELECT 1 FROM restart_copies WHERE job_id = ? LIMIT 1'),
    deleteRestartCopy: p('DELETE FROM restart_copies WHERE job_id = @jobId AND epoch = @epoch AND host = @host AND rank = @rank'),
    deleteOutputRepeats: p('DELETE FROM output_repeats WHERE job_id = ?'),
    insertOutputRepeat: p(`
      INSERT INTO output_repeats (job_id, rank, stream, bytes, before_source, source, from_offset)
      SELECT @jobId, @rank, @stream, @bytes, @beforeSource, @source, @from WHERE EXISTS (SELECT 1 FROM jobs WHERE id = @jobId)`),
    bindOutputRepeat: p('UPDATE output_repeats SET source = @source, from_offset = @from WHERE job_id = @jobId AND rank = @rank AND stream = @stream'),
    outputRepeats: p(`
      SELECT o.* FROM output_repeats o JOIN jobs j ON j.id = o.job_id
      WHERE j.deleted_ms IS NULL AND j.state NOT IN ('succeeded', 'cancelled') ORDER BY o.job_id, o.rank, o.stream`),
    insertGivenUpCopy: p(`
      INSERT OR IGNORE INTO given_up_copies (job_id, rank, host)
      SELECT @jobId, @rank, @host WHERE EXISTS (SELECT 1 FROM jobs WHERE id = @jobId)`),
    deleteGivenUpCopy: p('DELETE FROM given_up_copies WHERE job_id = @jobId AND rank = @rank AND host = @host'),
    deleteGivenUpCopiesOnHost: p('DELETE FROM given_up_copies WHERE host = ?'),
    deleteDeletedJobCopiesOnHost: p('DELETE FROM given_up_copies WHERE host = ? AND job_id IN (SELECT id FROM jobs WHERE deleted_ms IS NOT NULL)'),
    givenUpCopiesOfJob: p('SELECT 1 FROM given_up_copies WHERE job_id = ? LIMIT 1'),

    givenUpCopies: p(`
      SELECT g.* FROM given_up_copies g JOIN jobs j ON j.id = g.job_id
      WHERE j.deleted_ms IS NULL ORDER BY g.job_id, g.rank, g.host`),
    upsertReplica: p(`
      INSERT INTO image_replicas (job_id, epoch, rank, host, state, updated_ms) VALUES (@jobId, @epoch, @rank, @host, @state, @atMs)
      ON CONFLICT (job_id, epoch, rank, host) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms`),
    setReplicaState: p('UPDATE image_replicas SET state = @state, updated_ms = @atMs WHERE job_id = @jobId AND epoch = @epoch AND rank = @rank AND host = @host'),
    replicasOfEpoch: p('SELECT * FROM image_replicas WHERE job_id = ? AND epoch = ? ORDER BY rank, host'),
    replicasOfJob: p('SELECT 1 FROM image_replicas WHERE job_id = ? LIMIT 1'),
    replicasToRemove: p(`
      SELECT r.* FROM image_replicas r JOIN epochs e USING (job_id, epoch)
      WHERE e.state IN (${removed}) OR r.state = 'copying' ORDER BY r.job_id, r.epoch, r.host, r.rank`),
    replicasToRemoveOfJob: p(`
      SELECT r.* FROM image_replicas r JOIN epochs e USING (job_id, epoch)
      WHERE (e.state IN (${removed}) OR r.state = 'copying') AND r.job_id = ? ORDER BY r.epoch, r.host, r.rank`),
    deleteReplica: p('DELETE FROM image_replicas WHERE job_id = @jobId AND epoch = @epoch AND rank = @rank AND host = @host'),
    setBranch: p('UPDATE jobs SET branch_from = ?, branch_at = ? WHERE id = ?'),
    purgeJob: p('DELETE FROM jobs WHERE id = ? AND deleted_ms IS NOT NULL'),

    upsertRank: p(`
      INSERT INTO ranks (job_id, rank, host, pid, endpoint, state, exit_code, signal, updated_ms)
      VALUES (@jobId, @rank, @host, @pid, @endpoint, @state, @exitCode, @signal, @updatedMs)
      ON CONFLICT (job_id, rank) DO UPDATE SET
        host = excluded.host, pid = excluded.pid, endpoint = excluded.endpoint, state = excluded.state,
        exit_code = excluded.exit_code, signal = excluded.signal, updated_ms = excluded.updated_ms`),
    getRank: p('SELECT * FROM ranks WHERE job_id = ? AND rank = ?'),
    setCheckpointEvery: p('UPDATE jobs SET checkpoint_every_ms = ? WHERE id = ?'),
    setStopAfterEpoch: p('UPDATE jobs SET stop_after_epoch = ? WHERE id = ?'),
    setKeepEpochs: p('UPDATE jobs SET keep_epochs = ? WHERE id = ?'),
    setImageReplicas: p('UPDATE jobs SET image_replicas = ? WHERE id = ? AND deleted_ms IS NULL'),
    setJobHosts: p('UPDATE jobs SET hosts_json = ? WHERE id = ? AND deleted_ms IS NULL'),
    setAutoRestarts: p('UPDATE jobs SET auto_restarts = ? WHERE id = ?'),
    setAutoRestartDue: p('UPDATE jobs SET auto_restart_due = ? WHERE id = ?'),
    setEndpointsPublished: p('UPDATE jobs SET endpoints_published = ? WHERE id = ?'),
    setEnding: p('UPDATE jobs SET ending_json = ? WHERE id = ?'),
    setLauncherSuspended: p('UPDATE jobs SET launcher_suspended = ? WHERE id = ?'),
    listRanks: p('SELECT * FROM ranks WHERE job_id = ? ORDER BY rank'),
    ranksOnHost: p('SELECT * FROM ranks WHERE host = ? ORDER BY job_id, rank'),

    bumpEpochCounter: p('UPDATE jobs SET last_epoch = last_epoch + 1 WHERE id = ? RETURNING last_epoch'),
    openFlush: p('INSERT INTO open_flushes (job_id, image_set, kind) VALUES (?, ?, ?)'),
    openFlushes: p('SELECT job_id, image_set, kind FROM open_flushes ORDER BY job_id, image_set'),
    closeFlush: p('DELETE FROM open_flushes WHERE job_id = ? AND image_set = ?'),
    insertEpoch: p(`
      INSERT INTO epochs (job_id, epoch, state, started_ms, updated_ms)
      VALUES (@jobId, @epoch, @state, @atMs, @atMs)`),
    insertPhase: p(`
      INSERT INTO epoch_phases (job_id, epoch, state, at_ms, detail)
      VALUES (@jobId, @epoch, @state, @atMs, @detail)`),
    setEpochState: p(`
      UPDATE epochs SET state = @state, updated_ms = @atMs, detail = COALESCE(@detail, detail)
      WHERE job_id = @jobId AND epoch = @epoch`),
    commitEpoch: p(`
      UPDATE epochs SET state = @state, updated_ms = @atMs, committed_ms = @atMs
      WHERE job_id = @jobId AND epoch = @epoch`),
    deleteEpoch: p('DELETE FROM epochs WHERE job_id = ? AND epoch = ?'),
    setOutputMarks: p('UPDATE epochs SET output_marks = ? WHERE job_id = ? AND epoch = ?'),
    getOutputMarks: p('SELECT output_marks FROM epochs WHERE job_id = ? AND epoch = ?'),
    saveOutputCount: p(`
      INSERT INTO output_counts (job_id, rank, stdout_bytes, stderr_bytes) SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?)
      ON CONFLICT (job_id, rank) DO UPDATE SET stdout_bytes = excluded.stdout_bytes, stderr_bytes = excluded.stderr_bytes`),
    outputCounts: p(`
      SELECT o.* FROM output_counts o JOIN jobs j ON j.id = o.job_id
      WHERE j.deleted_ms IS NULL AND j.state NOT IN ('succeeded', 'cancelled')`),
    getEpoch: p(`SELECT ${epochCols} FROM epochs WHERE job_id = ? AND epoch = ?`),
    listEpochs: p(`SELECT ${epochCols} FROM epochs WHERE job_id = ? ORDER BY epoch`),
    committedEpochsNewestFirst: p('SELECT epoch FROM epochs WHERE job_id = ? AND state = ? ORDER BY epoch DESC'),
    endedEpochsNewestFirst: p(`
      SELECT e.epoch,
        (e.state IN (${removed}) AND EXISTS (SELECT 1 FROM epoch_images i WHERE i.job_id = e.job_id AND i.epoch = e.epoch AND i.removed_ms IS NULL))
        OR EXISTS (SELECT 1 FROM image_replicas r WHERE r.job_id = e.job_id AND r.epoch = e.epoch)
        OR EXISTS (SELECT 1 FROM restart_copies c WHERE c.job_id = e.job_id AND c.epoch = e.epoch) AS waiting
      FROM epochs e WHERE e.job_id = ? AND e.state IN (${unkept}) ORDER BY e.epoch DESC`),
    imagesToRemove: p(`
      SELECT i.* FROM epoch_images i JOIN epochs e USING (job_id, epoch)
      WHERE e.state IN (${removed}) AND i.removed_ms IS NULL ORDER BY i.job_id, i.epoch, i.rank`),
    imagesToRemoveOfJob: p(`
      SELECT i.* FROM epoch_images i JOIN epochs e USING (job_id, epoch)
      WHERE e.state IN (${removed}) AND i.job_id = ? AND i.removed_ms IS NULL ORDER BY i.epoch, i.rank`),
    upsertRankMove: p(`
      INSERT INTO rank_moves (job_id, rank, image_set, from_host, to_host, source_json, stopped)
      VALUES (@jobId, @rank, @imageSet, @fromHost, @toHost, @sourceJson, @stopped)
      ON CONFLICT (job_id, rank, image_set) DO UPDATE SET from_host = excluded.from_host,
        to_host = excluded.to_host, source_json = excluded.source_json, stopped = excluded.stopped`),
    markRankMoveStopped: p('UPDATE rank_moves SET stopped = 1 WHERE job_id = ? AND image_set = ? AND rank = ?'),
    rankMoves: p('SELECT * FROM rank_moves ORDER BY job_id, image_set, rank'),
    rankMovesOfJob: p('SELECT * FROM rank_moves WHERE job_id = ? ORDER BY image_set, rank'),
    deleteRankMove: p('DELETE FROM rank_moves WHERE job_id = ? AND image_set = ? AND rank = ?'),
    markImageRemoved: p('UPDATE epoch_images SET removed_ms = @atMs WHERE job_id = @jobId AND epoch = @epoch AND rank = @rank'),
    inFlightEpochOfJob: p(`SELECT epoch, state FROM epochs WHERE job_id = ? AND state NOT IN (${terminal}) LIMIT 1`),
    inFlightEpochs: p(`SELECT ${epochCols} FROM epochs WHERE state NOT IN (${terminal}) ORDER BY job_id, epoch`),
    phasesOfEpoch: p('SELECT epoch, state, at_ms, detail FROM epoch_phases WHERE job_id = ? AND epoch = ? ORDER BY seq'),
    phasesOfJob: p('SELECT epoch, state, at_ms, detail FROM epoch_phases WHERE job_id = ? ORDER BY seq'),
    upsertImage: p(`
      INSERT INTO epoch_images (job_id, epoch, rank, host, location, size_bytes, sha256, manifest_json, image_store, appended_json)
      VALUES (@jobId, @epoch, @rank, @host, @location, @sizeBytes, @sha256, @manifestJson,
              COALESCE(@imageStore, (SELECT image_store FROM hosts WHERE name = @host), ''), @appendedJson)
      ON CONFLICT (job_id, epoch, rank) DO UPDATE SET
        host = excluded.host, location = excluded.location, size_bytes = excluded.size_bytes,
        sha256 = excluded.sha256, manifest_json = excluded.manifest_json, image_store = excluded.image_store,
        appended_json = excluded.appended_json`),
    imageRanks: p('SELECT rank FROM epoch_images WHERE job_id = ? AND epoch = ?'),
    epochImages: p('SELECT * FROM epoch_images WHERE job_id = ? AND epoch = ? ORDER BY rank'),

    appendEvent: p(`
      INSERT INTO events (time_ms, kind, host, job_id, message) VALUES (@timeMs, @kind, @host, @jobId, @message)`),
    listEvents: p('SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?'),
    listEventsOfJob: p('SELECT * FROM events WHERE seq > ? AND job_id = ? ORDER BY seq LIMIT ?'),
    listNewestEvents: p('SELECT * FROM (SELECT * FROM events WHERE seq > ? ORDER BY seq DESC LIMIT ?) ORDER BY seq'),
    listNewestEventsOfJob: p('SELECT * FROM (SELECT * FROM events WHERE seq > ? AND job_id = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq'),
    // The (keepLast+1)-th newest event and everything older go; no row there: nothing to prune.
    pruneEvents: p('DELETE FROM events WHERE seq <= (SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?)'),
  };
}

/** Refuses, without opening it, an existing file that does not start with SQLite's header. */
function checkLooksLikeSqlite(file: string): void {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new FerryError(ErrorCode.INTERNAL, `catalog ${file} exists but is not a regular file`);
    size = st.size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (size === 0) return; // SQLite treats an empty file as an empty database
  const head = Buffer.alloc(SQLITE_HEADER.length);
  const fd = openSync(file, 'r');
  let n: number;
  try {
    n = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (n < head.length || !head.equals(SQLITE_HEADER)) {
    throw new FerryError(
      ErrorCode.INTERNAL,
      `catalog ${file} is not a SQLite database (${size} bytes, no SQLite header); refusing to use or overwrite it`,
    );
  }
}

function hostRow(r: Row): HostRow {
  return {
    name: r.name as string,
    address: r.address as string,
    cpus: r.cpus as number,
    criuVersion: r.criu_version as string,
    criuCheckOk: r.criu_check_ok === 1,
    criuCheckDetail: r.criu_check_detail as string,
    agentInstance: r.agent_instance as string,
    registeredMs: r.registered_ms as number,
    firstSeenMs: r.first_seen_ms as number,
    state: r.state as HostCatalogState,
    stateChangedMs: r.state_changed_ms as number,
    imageStore: r.image_store as string,
    drained: r.drained_ms === null ? undefined : { atMs: r.drained_ms as number, reason: r.drain_reason as string },
  };
}

function jobRow(r: Row): JobRow {
  return {
    id: r.id as string,
    state: r.state as JobCatalogState,
    worldSize: r.world_size as number,
    argv: JSON.parse(r.argv_json as string) as string[],
    cwd: r.cwd as string,
    env: JSON.parse(r.env_json as string) as Record<string, string>,
    createdMs: r.created_ms as number,
    checkpointEveryMs: r.checkpoint_every_ms as number | null,
    startedMs: r.started_ms as number | null,
    endedMs: r.ended_ms as number | null,
    exitCode: r.exit_code as number | null,
    detail: r.detail as string | null,
    lastEpoch: r.last_epoch as number,
    stopAfterEpoch: r.stop_after_epoch as number,
    keepEpochs: r.keep_epochs as number,
    imageReplicas: r.image_replicas as number | null,
    branchFrom: r.branch_from as number,
    branchAt: r.branch_at as number,
    autoRestarts: r.auto_restarts as number,
    autoRestartDue: r.auto_restart_due === 1,
    endpointsPublished: r.endpoints_published === 1,
    hosts: r.hosts_json ? (JSON.parse(r.hosts_json as string) as string[]) : null,
    ending: r.ending_json ? (JSON.parse(r.ending_json as string) as JobEnding) : null,
    launcherSuspended: r.launcher_suspended === 1,
  };
}

function rankRow(r: Row): RankRow {
  return {
    jobId: r.job_id as string,
    rank: r.rank as number,
    host: r.host as string,
    pid: r.pid as number,
    endpoint: r.endpoint as string,
    state: r.state as RankCatalogState,
    exitCode: r.exit_code as number | null,
    signal: r.signal as string | null,
    updatedMs: r.updated_ms as number,
  };
}

function phaseRow(r: Row): EpochPhase {
  return { state: r.state as string, atMs: r.at_ms as number, detail: r.detail as string | null };
}

function epochRow(r: Row, phases: EpochPhase[]): EpochRow {
  return {
    jobId: r.job_id as string,
    epoch: r.epoch as number,
    state: r.state as string,
    startedMs: r.started_ms as number,
    updatedMs: r.updated_ms as number,
    committedMs: r.committed_ms as number | null,
    detail: r.detail as string | null,
    phases,
  };
}

function imageRow(r: Row): EpochImageRow {
  return {
    jobId: r.job_id as string,
    epoch: r.epoch as number,
    rank: r.rank as number,
    host: r.host as string,
    location: r.location as string,
    sizeBytes: r.size_bytes as number,
    sha256: r.sha256 as string,
    manifest: r.manifest_json === null ? null : (JSON.parse(r.manifest_json as string) as EpochImageFile[]),
    imageStore: r.image_store as string,
    removedMs: (r.removed_ms as number | null) ?? null,
    appendedFiles: r.appended_json === null || r.appended_json === undefined ? [] : (JSON.parse(r.appended_json as string) as AppendedFileRecord[]),
  };
}

function replicaRow(r: Row): ImageReplicaRow {
  return {
    jobId: r.job_id as string,
    epoch: r.epoch as number,
    rank: r.rank as number,
    host: r.host as string,
    state: r.state as ImageReplicaRow['state'],
    updatedMs: r.updated_ms as number,
  };
}

function rankMoveRow(r: Row): RankMoveRow {
  return {
    jobId: r.job_id as string,
    rank: r.rank as number,
    imageSet: r.image_set as number,
    fromHost: r.from_host as string,
    toHost: r.to_host as string,
    sourceJson: r.source_json as string,
    stopped: r.stopped === 1,
  };
}

function eventRow(r: Row): EventRow {
  return {
    seq: r.seq as number,
    timeMs: r.time_ms as number,
    kind: r.kind as string,
    host: r.host as string | null,
    jobId: r.job_id as string | null,
    message: r.message as string,
  };
}

function unknownJob(id: string): FerryError {
  return new FerryError(ErrorCode.UNKNOWN_JOB, `unknown job '${id}'`);
}

function unknownEpoch(jobId: string, epoch: number): FerryError {
  return new FerryError(ErrorCode.BAD_REQUEST, `job '${jobId}' has no epoch ${epoch}`);
}

function requireRank(job: Row, rank: number): void {
  if (!Number.isSafeInteger(rank) || rank < 0 || rank >= (job.world_size as number)) {
    throw new FerryError(ErrorCode.UNKNOWN_RANK, `job '${job.id}' has ranks 0..${(job.world_size as number) - 1}, not ${rank}`);
  }
}

function requireName(v: unknown, what: string): void {
  if (typeof v !== 'string' || v.length === 0) throw new FerryError(ErrorCode.BAD_REQUEST, `${what} must be a non-empty string`);
}

function requireInt(v: number, what: string): void {
  if (!Number.isSafeInteger(v)) throw new FerryError(ErrorCode.BAD_REQUEST, `${what} must be an integer, got ${v}`);
}

function requireUint(v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new FerryError(ErrorCode.BAD_REQUEST, `${what} must be a non-negative integer, got ${v}`);
}

function requireMs(v: number, what: string): void {
  requireUint(v, `${what} (epoch milliseconds)`);
}

function requireSha256(v: string, what: string): void {
  if (!SHA256_HEX.test(v)) throw new FerryError(ErrorCode.BAD_REQUEST, `${what} must be 64 lowercase hex digits`);
}

function requireOneOf<T extends string>(v: T, allowed: readonly T[], what: string): void {
  if (!allowed.includes(v)) throw new FerryError(ErrorCode.BAD_REQUEST, `${what} must be one of ${allowed.join(', ')}, got '${v}'`);
}
