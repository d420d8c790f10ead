// What the end-to-end tests share: the examples (src/local-cluster/examples.ts)
// and ferry commands that must succeed.
import { expect } from 'vitest';
import type { TestCluster } from './cluster.js';

export { buildExample, checksumLine } from '../../src/local-cluster/examples.js';

/** A `ferry ARGS` on `c` that must exit 0 (else the test fails with its stderr and the daemons' logs); its stdout. */
export function ferryOkOn(c: () => TestCluster, timeoutMs: number): (args: string[]) => Promise<string> {
  return async (args) => {
    const r = await c().ferry(args, { timeoutMs });
    expect(r.code, `ferry ${args.join(' ')}: ${r.stderr}\n${c().logTails(20)}`).toBe(0);
    return r.stdout;
  };
}

