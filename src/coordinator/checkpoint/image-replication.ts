// Image replicas (a job's --image-replicas N, else the coordinator's): once an
// epoch is committed and its ranks run again, each rank's image is copied to N hosts other than
// the one that wrote it, so the job can be restarted after that host is lost
// with its disk (an automatic restart, or the operator's). A replica host
// fetches the image from its writer with the FETCH step, like a restart's
// target: every file checked against the manifest, fsynced, the manifest last;
// a writer whose agent ends meanwhile is asked again where it serves next
// (fetch-again.ts).
//
// - The copies run after the checkpoint, as the job's next operation: the
//   job's ranks are not held for them, and no restart, migration or newer
//   checkpoint of the job starts under them (those are refused as busy, or
//   wait if they are the coordinator's own).
// - A replica counts as a source only once its host reported it verified
//   ('stored' in the catalog). One whose copy failed, or whose coordinator died
//   during the copy ('copying'), is removed like a deleted epoch's images.
// - Replicas go with their epoch: retention and ferry delete remove them on
//   their hosts (EpochRetention), and a host that is down then removes them
//   when it registers again.
// - Replica hosts are the live hosts that do not see the image's store, taken
//   in name order after the writer (each writer's images go to the hosts
//   after it, like a ring), one per store. An image in a store another known
//   host shares is not copied: it outlives its writer already.
import { ErrorCode, RoundStep, type ImageSourceInit } from '../../gen/proto.js';
import { FerryError, errorMessage } from '../../common/ferry-error.js';
import { tracer } from '../../common/trace.js';
import { EPOCH_COMMITTED, type EpochImageRow, type ImageReplicaRow, type JobRow } from '../catalog-types.js';
import { MAX_IMAGE_REPLICAS } from '../coordinator-config.js';
import type { Coordinator } from '../coordinator.js';
import { describeRoundFailure, runRound } from '../round-runner.js';
import { fetchAgainFromNewSources } from './fetch-again.js';
import { chooseImageSource, seesImage, type ImageSourceHost, type StoredImage } from './image-source-choice.js';

const trace = tracer('checkpoint');

/** The key of one replica a FETCH is making now. */
const replicaKey = (jobId: string, epoch: number, rank: number, host: string) => `${jobId}/${epoch}/${rank}/${host}`;

export interface ReplicaPlan {
  /** host -> the sources of the images it is to copy */
  copies: Map<string, ImageSourceInit[]>;
  /** Images that get fewer replicas than asked for, and why. */
  short: string[];
}

/**
 * Which host copies which image: for each image, up to `replicas` live hosts
 * (not drained) that do not see it, after its writer in name order, no two of one store,
 * none that holds (or is making) a copy of it already.
 */
export function planReplicas(
  images: readonly StoredImage[],
  hosts: readonly ImageSourceHost[],
  /** Replicas each image is to have (a number, or per image). */
  replicas: number | ((image: StoredImage) => number),
  /** rank -> hosts whose replica counts toward that number (and that copy nothing more). */
  existing: ReadonlyMap<number, readonly string[]>,
  /**
   * rank -> hosts that must not copy it: a restart's copy there is listed for
   * removal (it would take the replica along), or a replica row there does not count.
   */
  exclude: ReadonlyMap<number, readonly string[]> = new Map(),
): ReplicaPlan {
  const copies = new Map<string, ImageSourceInit[]>();
  const short: string[] = [];
  const byName = [...hosts].sort((a, b) => a.name.localeCompare(b.name));
  for (const image of images) {
    if (byName.some((h) => h.name !== image.host && seesImage(h, image))) continue; // a shared store
    const want = typeof replicas === 'number' ? replicas : replicas(image);
    const have = existing.get(image.rank) ?? [];
    const stores = new Set(have.map((name) => storeOf(byName.find((h) => h.name === name), name)));
    const after = byName.findIndex((h) => h.name.localeCompare(image.host) > 0);
    const ring = after < 0 ? byName : [...byName.slice(after), ...byName.slice(0, after)];
    let count = have.length;
    for (const host of ring) {
      if (count >= want) break;
      if (host.state !== 'up' || host.name === image.host || seesImage(host, image) || have.includes(host.name)) continue;
      if (exclude.get(image.rank)?.includes(host.name)) continue;
      if (stores.has(storeOf(host, host.name))) continue;
      const choice = chooseImageSource(image, host, hosts);
      if (!choice.source) {
        short.push(`rank ${image.rank}: ${choice.why}`);
        count = want; // no source for any host
        break;
      }
      if (choice.inPlace) {
        // It sees a replica's store already (its holder is down): that copy is reachable, nothing to make.
        stores.add(storeOf(host, host.name));
        count++;
        continue;
      }
      if (host.drained) continue; // it may go away soon: no new copies there
      copies.set(host.name, [...(copies.get(host.name) ?? []), choice.source]);
      stores.add(storeOf(host, host.name));
      count++;
    }
    if (count < want) short.push(`rank ${image.rank}: ${count} of ${want} replica${want > 1 ? 's' : ''}: no other live host with an images directory of its own`);
  }
  return { copies, short };
}

/** rank -> the hosts of these replica rows. */
function hostsByRank(rows: readonly ImageReplicaRow[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const r of rows) out.set(r.rank, [...(out.get(r.rank) ?? []), r.host]);
  return out;
}

/** Hosts of one store hold one copy between them; a host with no store id is its own. */
function storeOf(host: ImageSourceHost | undefined, name: string): string {
  return host?.imageStore ? `store:${host.imageStore}` : `host:${name}`;
}

export class ImageReplication {
  /** Replicas a FETCH is making right now (job/epoch/rank/host): not removed under it. */
  private readonly copying = new Set<string>();

  constructor(private readonly c: Coordinator) {}

  /** True while a FETCH makes this replica. */
  isCopying(jobId: string, epoch: number, rank: number, host: string): boolean {
    return this.copying.has(replicaKey(jobId, epoch, rank, host));
  }

  /** Copies each committed image of the job is to have: its own number, else the coordinator's. */
  replicasOf(jobId: string): number {
    const job = this.c.catalog.getJob(jobId);
    return job ? this.replicasOfRow(job) : this.c.config.imageReplicas;
  }

  replicasOfRow(job: JobRow): number {
    return job.imageReplicas ?? this.c.config.imageReplicas;
  }

  /** Refuses a number a job cannot be given. */
  checkReplicas(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_IMAGE_REPLICAS) {
      throw new FerryError(ErrorCode.BAD_REQUEST, `a job keeps 0 to ${MAX_IMAGE_REPLICAS} copies of each image on other hosts; got ${n}`);
    }
  }

  /**
   * Sets the job's own number (null: back to the coordinator's). More copies
   * than its newest epoch has are made at once; fewer leave the copies there
   * are until their epoch is deleted.
   */
  set(jobId: string, n: number | null): void {
    if (!this.c.catalog.getJob(jobId)) throw new FerryError(ErrorCode.UNKNOWN_JOB, `no job "${jobId}" in the catalog`);
    if (n !== null) this.checkReplicas(n);
    this.c.catalog.setImageReplicas(jobId, n);
    this.topUp(jobId);
  }

  /** After a commit: the copies run as the job's next operation. */
  afterCommit(jobId: string, epoch: number): void {
    if (this.replicasOf(jobId) === 0) return;
    this.c.operations.queueBackground(jobId, () => `the images of epoch ${epoch} are being copied to other hosts`, () => this.replicate(jobId, epoch));
  }

  /**
   * A host went down or came up, or a job was restarted: the newest epoch of
   * each job that may still be restarted (running, stopped, failed) gets new
   * copies where it has fewer live ones than it should (a replica host or the
   * writer lost; too few hosts at its commit). A copy on a host that is down
   * does not count; one on a host not heard from since a coordinator restart
   * ('unknown') does. Left alone: a job whose automatic restart is due, or
   * that runs with ranks on a host that is not up (its restart comes first,
   * and its next checkpoint gets copies of its own).
   */
  topUp(onlyJob?: string): string[] {
    const queued: string[] = [];
    for (const job of this.c.catalog.listJobs({ all: true })) {
      if (onlyJob !== undefined && job.id !== onlyJob) continue;
      if (this.replicasOfRow(job) === 0) continue;
      if (!['running', 'stopped', 'failed'].includes(job.state) || this.toppingUp.has(job.id) || job.autoRestartDue) continue;
      if (job.state === 'running' && this.c.catalog.listRanks(job.id).some((r) => r.state !== 'exited' && this.c.hosts.get(r.host)?.state !== 'up')) continue;
      const epoch = this.c.catalog.lastCommittedEpoch(job.id)?.epoch;
      if (epoch === undefined || !this.short(job.id, epoch)) continue;
      this.toppingUp.add(job.id);
      queued.push(job.id);
      this.c.operations.queueBackground(job.id, () => `the images of epoch ${epoch} are being copied to other hosts (too few live copies)`, () =>
        this.replicate(job.id, epoch, true).finally(() => this.toppingUp.delete(job.id)),
      );
    }
    return queued; // the jobs whose copies are queued now
  }

  /** Jobs whose top-up is queued or running. */
  private readonly toppingUp = new Set<string>();

  /** Live copies an image is to have: its replicas, plus the original when no host that is not down sees it. */
  private wanted(replicas: number, image: StoredImage): number {
    const originalLive = !image.originalGone && this.c.hosts.all().some((h) => h.state !== 'down' && seesImage(h, image));
    return replicas + (originalLive ? 0 : 1);
  }

  /** Whether some image of the epoch has fewer live copies than wanted, and a live host could take one. */
  private short(jobId: string, epoch: number): boolean {
    return this.plan(jobId, epoch, true).copies.size > 0;
  }

  /** Which host copies which image of the epoch now (`topUp`: counting live copies only). */
  private plan(jobId: string, epoch: number, topUp: boolean): ReplicaPlan {
    const rows = this.c.catalog.epochReplicas(jobId, epoch);
    // Hosts with a row copy nothing more, nor those where a restart's copy waits for removal.
    const exclude = hostsByRank(rows);
    // (and every host of its store: in a shared images directory the copy and a replica are one folder, and
    // removing the copy took a replica marked stored along, until 2026-12-08)
    const hosts = this.c.hosts.all();
    const storeMates = (name: string) => {
      const store = hosts.find((h) => h.name === name)?.imageStore;
      return store ? hosts.filter((h) => h.imageStore === store).map((h) => h.name) : [name];
    };
    for (const x of this.c.catalog.restartCopies()) if (x.jobId === jobId && x.epoch === epoch) exclude.set(x.rank, [...(exclude.get(x.rank) ?? []), ...storeMates(x.host)]);
    const stored = rows.filter((r) => r.state === 'stored');
    // Topping up, only stored copies on hosts not down count; else every row does.
    const existing = topUp ? hostsByRank(stored.filter((r) => this.c.hosts.get(r.host)?.state !== 'down')) : hostsByRank(rows);
    const replicas = hostsByRank(stored);
    const images = this.c.catalog.epochImages(jobId, epoch).map((img) => this.storedImage(img, replicas));
    const n = this.replicasOf(jobId);
    const want = topUp ? (image: StoredImage) => this.wanted(n, image) : n;
    return planReplicas(images, this.c.hosts.all(), want, existing, exclude);
  }

  /** Where `host` would fetch the epoch's image of `rank` from now. */
  private sourceNow(jobId: string, epoch: number, rank: number, host: string): ImageSourceInit | undefined {
    const img = this.c.catalog.epochImages(jobId, epoch).find((i) => i.rank === rank);
    const target = this.c.hosts.get(host);
    return img && target ? chooseImageSource(this.storedImage(img, this.storedHosts(jobId, epoch)), target, this.c.hosts.all()).source : undefined;
  }

  /** The stored replicas of an epoch's images: rank -> hosts. */
  storedHosts(jobId: string, epoch: number): Map<number, string[]> {
    return hostsByRank(this.c.catalog.epochReplicas(jobId, epoch).filter((r) => r.state === 'stored'));
  }

  /** An epoch's image as the source choice sees it, with its stored replicas. */
  storedImage(img: EpochImageRow, replicas: ReadonlyMap<number, readonly string[]>): StoredImage {
    return { ...img, manifestSha256: img.sha256, replicaHosts: [...(replicas.get(img.rank) ?? [])], originalGone: img.removedMs !== null };
  }

  /**
   * Copies the images of a committed epoch to their replica hosts (`topUp`:
   * only the copies that bring each image back to its number of live copies).
   * Never throws: what fails is an event.
   */
  async replicate(jobId: string, epoch: number, topUp = false): Promise<void> {
    const e = this.c.catalog.getEpoch(jobId, epoch);
    if (!e || e.state !== EPOCH_COMMITTED) return; // retired (or the job deleted) before its turn
    const t0 = this.c.now();
    const plan = this.plan(jobId, epoch, topUp);
    if (plan.short.length > 0 && (!topUp || plan.copies.size > 0)) {
      this.c.event('checkpoint.replicas-short', `job ${jobId}: epoch ${epoch}: ${plan.short.join('; ')}`, { jobId });
    }
    if (plan.copies.size === 0) return;
    const byHost = new Map([...plan.copies].map(([host, sources]) => [host, sources.map((s) => s.rank!)]));
    const keys = [...byHost].flatMap(([host, ranks]) => ranks.map((rank) => replicaKey(jobId, epoch, rank, host)));
    try {
      for (const [host, ranks] of byHost) this.c.catalog.recordReplicasCopying(jobId, epoch, host, ranks, this.c.now());
      for (const k of keys) this.copying.add(k);
      // Host by host: each one's copies count as soon as it has verified them.
      const failed: string[] = [];
      let bytes = 0;
      await Promise.all(
        [...byHost].map(async ([host, ranks]) => {
          const request = { job_id: jobId, epoch, image_set: String(epoch), step: RoundStep.FETCH };
          const target = new Map([[host, ranks]]);
          let fetch = await runRound(this.c, request, target, this.c.config.dumpTimeoutMs, () => ({ sources: plan.copies.get(host)! }));
          if (!fetch.ok) {
            // A writer whose agent ended meanwhile serves its images again from its next agent's address.
            const sources = new Map(plan.copies.get(host)!.map((s) => [s.rank!, s]));
            fetch = (await fetchAgainFromNewSources(this.c, request, target, fetch, sources, (rank) => this.sourceNow(jobId, epoch, rank, host), this.c.config.dumpTimeoutMs)).result;
          }
          const done = ranks.filter((rank) => !fetch.failures.has(rank));
          if (done.length > 0) this.c.catalog.markReplicasStored(jobId, epoch, host, done, this.c.now());
          bytes += Number(fetch.replies.get(host)?.bytes_fetched ?? 0);
          if (!fetch.ok) failed.push(describeRoundFailure('FETCH', fetch));
        }),
      );
      const hosts = [...byHost].map(([host, ranks]) => `${host} (rank${ranks.length > 1 ? 's' : ''} ${ranks.join(',')})`).join(', ');
      if (failed.length === 0) {
        this.c.event('checkpoint.replicated', `job ${jobId}: epoch ${epoch}: images copied to ${hosts}, ${bytes} bytes in ${this.c.now() - t0} ms`, { jobId });
      } else {
        this.c.event('checkpoint.replicate-failed', `job ${jobId}: epoch ${epoch}: not every replica was made: ${failed.join('; ')}`, { jobId });
      }
    } catch (err) {
      this.c.event('checkpoint.replicate-failed', `job ${jobId}: epoch ${epoch}: ${errorMessage(err)}`, { jobId });
    } finally {
      for (const k of keys) this.copying.delete(k);
    }
    // A copy that failed (or was half made) goes like a deleted epoch's images.
    if (this.c.catalog.replicasToRemove(jobId).length > 0) this.c.retention.removeInBackground(jobId);
    trace(`job ${jobId}: epoch ${epoch}: replication took ${this.c.now() - t0} ms`);
  }
}
