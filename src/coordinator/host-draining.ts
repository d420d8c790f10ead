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
    return await c.moves.drain(name, progress);
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
