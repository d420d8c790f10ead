// Where the ranks of a new job go. Pure: it sees the candidate hosts and their
// free slots, and answers rank -> host or an error naming what is missing.
import { ErrorCode } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';

export interface PlacementHost {
  name: string;
  freeSlots: number; // cpus minus ranks already running there (may be <= 0)
}

/**
 * Explicit placement wins; otherwise ranks go in contiguous blocks over the
 * candidate hosts, each host taking ranks in proportion to its free slots
 * (every host gets at least one block when there are more ranks than slots:
 * oversubscription is allowed, as with mpiexec, but spread evenly).
 */
export function placeRanks(worldSize: number, hosts: PlacementHost[], explicit: Map<number, string>): string[] {
  if (!Number.isInteger(worldSize) || worldSize < 1) {
    throw new FerryError(ErrorCode.BAD_REQUEST, `the number of ranks must be a positive integer, got ${worldSize}`);
  }
  const placement: string[] = new Array(worldSize);
  if (explicit.size > 0) {
    for (let r = 0; r < worldSize; r++) {
      const host = explicit.get(r);
      if (!host) throw new FerryError(ErrorCode.BAD_REQUEST, `the rank map names no host for rank ${r}`);
      placement[r] = host;
    }
    for (const r of explicit.keys()) {
      if (r >= worldSize) throw new FerryError(ErrorCode.BAD_REQUEST, `the rank map names rank ${r}, but the job has ${worldSize} ranks`);
    }
    return placement;
  }
  if (hosts.length === 0) throw new FerryError(ErrorCode.NO_CAPACITY, 'no live host to place the ranks on');
  const free = hosts.map((h) => Math.max(0, h.freeSlots));
  const totalFree = free.reduce((a, b) => a + b, 0);
  // Shares proportional to free slots when they suffice, else an even split.
  const weights = totalFree >= worldSize ? free : hosts.map(() => 1);
  const weightSum = weights.reduce((a, b) => a + b, 0);
  const counts = weights.map((w) => Math.floor((w * worldSize) / weightSum));
  let left = worldSize - counts.reduce((a, b) => a + b, 0);
  // Hand out the remainder to the hosts with the most spare weight, in order.
  const order = weights.map((w, i) => ({ i, spare: w - counts[i] })).sort((a, b) => b.spare - a.spare || a.i - b.i);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) counts[order[k].i]++;
  let r = 0;
  hosts.forEach((h, i) => {
    for (let c = 0; c < counts[i]; c++) placement[r++] = h.name;
  });
  return placement;
}
