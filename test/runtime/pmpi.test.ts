// Profiling interposition (issue 3: every MPI_ name also as PMPI_): a program
// that defines some MPI_ functions itself and forwards to PMPI_ links against
// libferrympi, its definitions are the ones called, and the calls still work.
import { describe, expect, it } from 'vitest';
import { useRankRuntime } from './rank-harness.js';

describe('rank runtime: PMPI_ interposition', () => {
  const rt = useRankRuntime('pmpi-persistent');

  it('a profiling layer over the persistent-request calls sees every call, and the exchange works through PMPI_', async () => {
    const job = rt.job('pmpi-persistent', 3);
    job.start(rt.program('pmpi-persistent'));
    const results = await job.wait();
    expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual([0, 0, 0]);
    expect(job.stdout[0]).toBe('send_init 1 recv_init 1 start 2 startall 3\n');
  });
});
