// The agent's malloc tuning (src/native/ferry-malloc-tuning.c): it loads into
// Node, glibc accepts it, and memory freed between two bursts of 1 MiB
// allocations (as libzmq makes for received image chunks) is used again
// instead of being faulted in afresh. Page faults are counted, not timed.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { mallocTuningPath, tuneMallocForImageTransfers } from '../../src/images/malloc-tuning.js';

/**
 * Four rounds: 32 buffers of 1 MiB written and dropped, then a full GC; prints each round's minor faults.
 * V8 frees the buffers' memory on a background thread after the GC: each round waits until it has (on a
 * busy machine the next round otherwise began before, and faulted in what was not free yet).
 */
const CHURN = `
if (process.argv[1]) process.dlopen({ exports: {} }, process.argv[1]);
(async () => {
  const faults = [];
  for (let round = 0; round < 4; round++) {
    const f0 = process.resourceUsage().minorPageFault;
    let bufs = [];
    for (let i = 0; i < 32; i++) bufs.push(Buffer.allocUnsafeSlow(1 << 20).fill(i));
    bufs = null;
    globalThis.gc();
    faults.push(process.resourceUsage().minorPageFault - f0);
    for (let waited = 0; process.memoryUsage().arrayBuffers > (4 << 20); waited += 5) {
      if (waited > 10000) throw new Error('the buffers were not freed within 10 s of a full GC');
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  console.log(JSON.stringify(faults));
})();
`;

function churnFaults(modulePath: string): number[] {
  return JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', CHURN, modulePath], { encoding: 'utf8' })) as number[];
}

describe('malloc tuning of the agent', () => {
  it('loads, and glibc takes both thresholds', () => {
    expect(tuneMallocForImageTransfers()).toEqual({ mmapThreshold: 4 * 1024 * 1024, trimThreshold: 64 * 1024 * 1024 });
  });

  it('is only a speed-up: a missing module is reported and the agent goes on', () => {
    expect(tuneMallocForImageTransfers('/nonexistent/ferry-malloc-tuning.node')).toBeNull();
  });

  it('memory freed after a burst of 1 MiB buffers serves the next bursts without new page faults', () => {
    const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
    const plain = churnFaults('');
    const tuned = churnFaults(mallocTuningPath());
    const pagesPerRound = (32 * 1024 * 1024) / 4096;
    // The first round faults its 32 MiB in either way. After it, the defaults
    // fault at least another round's worth; tuned, the rounds reuse the heap.
    expect(plain[0]).toBeGreaterThan(pagesPerRound * 0.9);
    expect(tuned[0]).toBeGreaterThan(pagesPerRound * 0.9);
    expect(sum(plain.slice(1)), `plain ${plain}`).toBeGreaterThan(pagesPerRound * 0.9);
    expect(sum(tuned.slice(1)), `tuned ${tuned}`).toBeLessThan(pagesPerRound * 0.25);
  });
});
