// `ferry forget HOST`: the operator says a host that is down is gone for good
// (a dead disk, a node taken out of the cluster). Until then the coordinator
// waits for it: its ranks for the rejoin grace, the images only it holds
// count as restorable until a restart finds it down, and a deleted job stays
// in the catalog until that host removes its images. Forgetting it settles
// all of that at once:
// - a host that is up is refused (drain it, stop its agent, then forget it);
// - so is one a checkpoint, restart or migration is using right now (copies
//   of images in the background are waited for, briefly, as by any operation);
// - in the catalog (one transaction): images it alone held are gone, a
//   committed epoch that needed one of them becomes 'lost', its replicas and
//   copies are forgotten (Catalog.forgetHost);
// - its live ranks are lost now: their jobs fail (or restart automatically
//   from the newest epoch they can still read, with --auto-restart);
// - images that lost a copy get new ones (--image-replicas), and the images
//   and jobs that waited for it to be removed are removed.
// An agent that later registers under the same name is a new host.
import { ErrorCode, type ForgetHostReplyInit } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';
import type { Coordinator } from './coordinator.js';
import { WAIT_FOR_COPIES_MS } from './coordinator-config.js';

export async function forgetHost(c: Coordinator, name: string): Promise<ForgetHostReplyInit> {
  const host = c.hosts.get(name);
  if (!name || !host) throw new FerryError(ErrorCode.UNKNOWN_HOST, `host "${name}" is not known to the coordinator`);
  if (host.state === 'up') {
    throw new FerryError(
      ErrorCode.BAD_REQUEST,
      `host ${name} is up (its agent is registered and answering): only a host that is down can be forgotten; ` +
        `move its ranks away with \`ferry drain ${name}\` and stop its agent first`,
    );
  }
  const involved = new Set<string>([
    ...c.catalog.ranksOnHost(name).map((r) => r.jobId),
    ...c.catalog.restartCopies(name).map((x) => x.jobId),
    ...c.catalog.rankMoves().filter((m) => m.toHost === name || m.fromHost === name).map((m) => m.jobId),
  ]);
  for (const jobId of involved) await c.operations.afterBackground(jobId, WAIT_FOR_COPIES_MS);
  if (c.hosts.get(name)?.state === 'up') throw new FerryError(ErrorCode.BAD_REQUEST, `host ${name} registered again meanwhile: it is not forgotten`);
  for (const jobId of involved) {
    if (c.operations.busy(jobId)) {
      throw new FerryError(ErrorCode.BUSY, `job ${jobId}, which has ranks or images on host ${name}, is busy; forget the host once its operation is done`);
    }
  }
  const lost = c.catalog.forgetHost(name, c.now());
  c.hosts.forget(name);
  const failedJobs = c.jobs.hostForgotten(name);
  const kept = lost.lostImages.filter((i) => i.replicated).length;
  const epochs = lost.lostEpochs.map((e) => `job ${e.jobId} epoch ${e.epoch} (rank${e.ranks.length > 1 ? 's' : ''} ${e.ranks.join(',')})`);
  c.event(
    'host.forgotten',
    `host ${name} forgotten by the operator: ` +
      (lost.sharedStore ? `its images stay in image store ${lost.sharedStore}, which other hosts share; ` : '') +
      `${lost.lostImages.length} image${lost.lostImages.length === 1 ? '' : 's'} of committed epochs were there only` +
      (kept > 0 ? ` (${kept} kept by replicas elsewhere)` : '') +
      (epochs.length > 0 ? `; lost: ${epochs.join(', ')}` : '; no committed epoch is lost') +
      (lost.droppedReplicas > 0 ? `; ${lost.droppedReplicas} replica${lost.droppedReplicas === 1 ? '' : 's'} there forgotten` : '') +
      (lost.droppedCopies > 0 ? `; ${lost.droppedCopies} restart or migration cop${lost.droppedCopies === 1 ? 'y' : 'ies'} there forgotten` : '') +
      (failedJobs.length > 0 ? `; ranks lost of job${failedJobs.length > 1 ? 's' : ''} ${failedJobs.join(', ')}` : ''),
    { host: name },
  );
  for (const e of lost.lostEpochs) {
    c.event('checkpoint.lost', `job ${e.jobId}: epoch ${e.epoch} is lost: rank${e.ranks.length > 1 ? 's' : ''} ${e.ranks.join(',')} had no image but on host ${name}, which was forgotten`, { jobId: e.jobId });
  }
  const copying = c.replication.topUp();
  c.retention.removeInBackground(); // the other images of lost epochs; deleted jobs that waited for this host
  return {
    host: name,
    lost_epochs: lost.lostEpochs.map((e) => ({ job_id: e.jobId, epoch: e.epoch, ranks: e.ranks })),
    images_lost: lost.lostImages.length,
    images_kept_by_replicas: kept,
    replicas_dropped: lost.droppedReplicas,
    failed_jobs: failedJobs,
    shared_store: lost.sharedStore,
    jobs_getting_copies: copying,
  };
}
