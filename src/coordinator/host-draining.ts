// `ferry drain HOST` and `ferry undrain HOST`: an operator takes a node out of
// service (maintenance, a failing disk) and puts it back. Draining marks the
// host first, durably in the catalog, then moves its ranks away; from the mark
// on no new ranks are placed there:
// - new jobs and restarts leave it out when they spread ranks, and refuse it
//   when the operator names it (--hosts, --map, migrate --to, a launcher's rank);
// - automatic restarts and the ranks of later drains go elsewhere;
// - no new image replicas are copied there.
// A drained host stays up: its ranks that did not move run on, and it serves
// its images to restarts and copies. The mark outlives agent and coordinator
// restarts; only `ferry undrain` (or forgetting the host) clears it.
import { ErrorCode, type MoveReplyInit, type UndrainHostReplyInit } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';
import type { Coordinator } from './coordinator.js';
import type { MoveProgressFn } from './checkpoint/move-service.js';
import { copiesOf, seesImage } from './checkpoint/image-source-choice.js';
import { EPOCH_COMMITTED } from './catalog-types.js';

/** Marks the host drained (kept if it was already; a new reason replaces the old one), then moves its ranks off it. */
export async function drainHost(c: Coordinator, name: string, reason: string, progress?: MoveProgressFn): Promise<MoveReplyInit> {
  const host = c.hosts.get(name);
  if (!name || !host) throw new FerryError(ErrorCode.UNKNOWN_HOST, `host "${name}" is not known to the coordinator`);
  if (!host.drained || (reason && reason !== host.drained.reason)) {
    const drain = { atMs: host.drained?.atMs ?? c.now(), reason: reason || (host.drained?.reason ?? '') };
    c.catalog.setHostDrained(name, drain);
    c.hosts.setDrained(name, drain);
    c.event('host.drained', `host ${name} drained by the operator${drain.reason ? ` (${drain.reason})` : ''}: no new ranks go there`, { host: name });
  }
  const stranded = [...new Set(c.catalog.ranksOnHost(name).filter((r) => r.state !== 'exited').map((r) => r.jobId))];
  if (host.state !== 'up' && stranded.length > 0) {
    throw new FerryError(
      ErrorCode.HOST_DOWN,
      `host ${name} is drained now, but it is ${host.state}: the ranks of job${stranded.length > 1 ? 's' : ''} ${stranded.join(', ')} ` +
        `there cannot be moved while it is; they run on if it comes back (drain it again then), else they are lost after the rejoin grace`,
    );
  }
  try {
    const reply = await c.moves.drain(name, progress);
    return { ...reply, notes: [...(reply.notes ?? []), ...onlyCopiesNote(c, name)] };
  } catch (err) {
    if (!(err instanceof FerryError)) throw err;
    throw new FerryError(err.code, `${err.message}; host ${name} stays drained (\`ferry drain ${name}\` again moves what is left)`);
  }
}

/** Takes a drained host back: ranks may be placed there again, and images short of replicas may be copied there. */
export function undrainHost(c: Coordinator, name: string): UndrainHostReplyInit {
  const host = c.hosts.get(name);
  if (!name || !host) throw new FerryError(ErrorCode.UNKNOWN_HOST, `host "${name}" is not known to the coordinator`);
  if (!host.drained) return { host: name, was_drained: false };
  c.catalog.setHostDrained(name, undefined);
  c.hosts.setDrained(name, undefined);
  c.event('host.undrained', `host ${name} undrained by the operator: new ranks may go there again`, { host: name });
  c.replication.topUp();
  return { host: name, was_drained: true };
}

/**
 * The committed epochs with an image no other host can read (no replica
 * elsewhere, no other host of its store): restarting from them needs this
 * host. Said when it is drained, before the operator takes it away.
 */
function onlyCopiesNote(c: Coordinator, name: string): string[] {
  const hosts = c.hosts.all();
  const self = hosts.find((h) => h.name === name);
  if (!self) return [];
  const byJob: string[] = [];
  for (const job of c.catalog.listJobs({ all: true })) {
    const epochs: number[] = [];
    for (const e of c.catalog.listEpochs(job.id)) {
      if (e.state !== EPOCH_COMMITTED) continue;
      const replicas = c.replication.storedHosts(job.id, e.epoch);
      const onlyHere = c.catalog.epochImages(job.id, e.epoch).some((img) => {
        const image = c.replication.storedImage(img, replicas);
        const copies = copiesOf(image, hosts).map((copy) => ({ ...image, ...copy }));
        return copies.some((copy) => seesImage(self, copy)) && !hosts.some((h) => h.name !== name && copies.some((copy) => seesImage(h, copy)));
      });
      if (onlyHere) epochs.push(e.epoch);
    }
    if (epochs.length > 0) byJob.push(`job ${job.id} (epoch${epochs.length > 1 ? 's' : ''} ${epochs.join(', ')})`);
  }
  if (byJob.length === 0) return [];
  return [
    `host ${name} holds the only copy of images of ${byJob.join(', ')}: a restart from ${byJob.length > 1 || byJob[0]!.includes('epochs') ? 'them' : 'it'} ` +
      `needs host ${name} up; \`ferry checkpoint JOB --image-replicas 1\` copies a job's newest epoch to another host`,
  ];
}
