import { describe, expect, it } from 'vitest';
import { useRankRuntime } from './rank-harness.js';

describe('rank runtime: bootstrap and point to point', () => {
  const rt = useRankRuntime('p2p-suite');

  for (const n of [1, 2, 4]) {
    it(`passes the p2p suite on ${n} ranks and reports exits to the agent`, async () => {
      const job = rt.job(`p2p-${n}`, n);
      const exits: number[] = [];
      const finalized: number[] = [];
      const onExit = (jobId: string, rank: number, code: number) => jobId === job.jobId && exits.push(rank * 1000 + code);
      const onFin = (jobId: string, rank: number) => jobId === job.jobId && finalized.push(rank);
      rt.server.on('exit', onExit);
      rt.server.on('finalized', onFin);
      job.start(rt.program('p2p-suite'));
      const results = await job.wait();
      rt.server.off('exit', onExit);
      rt.server.off('finalized', onFin);
      expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual(new Array(n).fill(0));
      expect(job.stdout[0]).toBe(`p2p ok size ${n}\n`);
      expect(job.hellos).toHaveLength(1);
      expect(job.hellos[0].map((h) => h.rank)).toEqual([...Array(n).keys()]);
      expect(finalized.sort()).toEqual([...Array(n).keys()]);
      expect(exits.sort((a, b) => a - b)).toEqual([...Array(n).keys()].map((r) => r * 1000));
    });
  }
});
