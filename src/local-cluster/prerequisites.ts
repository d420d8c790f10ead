// What a local cluster that checkpoints MPI jobs needs of this machine.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../common/ferry-error.js';
import { findCriu } from '../criu/criu-install.js';
import { assertNamespaceHostsUsable } from '../netns/index.js';
import { packageRoot } from '../protocol/proto-root.js';

/** What this machine lacks for a local cluster's MPI jobs (the demo, the soak), each with what to do about it. */
export async function whatIsMissing(): Promise<string[]> {
  const missing: string[] = [];
  try {
    assertNamespaceHostsUsable();
  } catch (err) {
    missing.push(`network-namespace hosts: ${errorMessage(err)}`);
  }
  const criu = await findCriu().catch(() => null);
  if (!criu) missing.push('a working CRIU: none found on PATH, in FERRY_CRIU or in the cache (npm run setup as root provisions CRIU 4.1)');
  if (!existsSync(join(packageRoot(), 'build', 'lib', 'libferrympi.a'))) missing.push('Ferry\'s MPI library: run "npm run build"');
  return missing;
}
