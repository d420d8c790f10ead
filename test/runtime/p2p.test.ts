import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RankChannelServer } from '../../src/agent/rank-channel.js';
import { RankJob, compileProgram, makeTempDir, uniqueSocketName } from './rank-harness.js';

describe('rank runtime: bootstrap and point to point', () => {
  const tmp = makeTempDir();
  let server: RankChannelServer;
  let socketName: string;
  const jobs: RankJob[] = [];
  let suite: string;

  beforeAll(async () => {
    suite = compileProgram('p2p-suite', tmp.dir);
    socketName = uniqueSocketName();
    server = new RankChannelServer({ socketName });
    await server.listen();
  });
  afterEach(() => {
    for (const j of jobs.splice(0)) j.kill();
  });
  afterAll(async () => {
    tmp.remove();
    await server?.close(); // undefined when beforeAll failed
  });

  for (const n of [1, 2, 4]) {
    it(`passes the p2p suite on ${n} ranks and reports exits to the agent`, async () => {
      const job = new RankJob(server, socketName, `p2p-${n}`, n);
      jobs.push(job);
      const exits: number[] = [];
      const finalized: number[] = [];
      const onExit = (jobId: string, rank: number, code: number) => jobId === job.jobId && exits.push(rank * 1000 + code);
      const onFin = (jobId: string, rank: number) => jobId === job.jobId && finalized.push(rank);
      server.on('exit', onExit);
      server.on('finalized', onFin);
      job.start(suite);
      const results = await job.wait();
      server.off('exit', onExit);
      server.off('finalized', onFin);
      expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual(new Array(n).fill(0));
      expect(job.stdout[0]).toBe(`p2p ok size ${n}\n`);
      expect(job.hellos).toHaveLength(1);
      expect(job.hellos[0].map((h) => h.rank)).toEqual([...Array(n).keys()]);
      expect(finalized.sort()).toEqual([...Array(n).keys()]);
      expect(exits.sort((a, b) => a - b)).toEqual([...Array(n).keys()].map((r) => r * 1000));
    });
  }
});
