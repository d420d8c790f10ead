// Removes host networks left behind by runs whose creating process died
// without destroy() (a crashed or SIGKILLed test). The owner's pid is in every
// name (see run-tag.ts). A dead owner whose pid was reused by a live process
// leaves its pieces in place until that process too is gone: the sweeper
// errs on the side of never touching a live run.
import { tracer } from '../common/trace.js';
import { assertNamespaceHostsUsable } from './ip-command.js';
import { listRunPieces, removeRunPieces } from './host-network.js';

const trace = tracer('netns');

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface SweepResult {
  removed: string[]; // run tags whose pieces were removed
  kept: string[]; // run tags whose owner is alive
}

export async function sweepStaleHostNetworks(): Promise<SweepResult> {
  assertNamespaceHostsUsable();
  const result: SweepResult = { removed: [], kept: [] };
  for (const [tag, run] of await listRunPieces()) {
    if (processAlive(run.ownerPid)) {
      result.kept.push(tag);
      continue;
    }
    trace(`sweeping ${tag} (owner pid ${run.ownerPid} is gone): ${[...run.netns, ...run.links].join(' ')}`);
    await removeRunPieces(run);
    result.removed.push(tag);
  }
  return result;
}
