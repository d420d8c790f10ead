import { describe, expect, it } from 'vitest';
import { useRankRuntime } from './rank-harness.js';

describe('rank runtime: communicators, collectives, datatypes', () => {
  const rt = useRankRuntime('coll-suite');

  for (const n of [1, 2, 3, 5, 8]) {
    it(`passes the collectives suite on ${n} ranks`, async () => {
      const job = rt.job(`coll-${n}`, n);
      job.start(rt.program('coll-suite'));
      const results = await job.wait();
      expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual(new Array(n).fill(0));
      expect(job.stdout[0]).toBe(`coll ok size ${n}\n`);
    });
  }
});
