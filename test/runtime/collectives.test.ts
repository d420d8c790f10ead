import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RankChannelServer } from '../../src/agent/rank-channel.js';
import { RankJob, compileProgram, makeTempDir, uniqueSocketName } from './rank-harness.js';

describe('rank runtime: communicators, collectives, datatypes', () => {
  const tmp = makeTempDir();
  let server: RankChannelServer;
  let socketName: string;
  const jobs: RankJob[] = [];
  let suite: string;

  beforeAll(async () => {
    suite = compileProgram('coll-suite', tmp.dir);
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

  for (const n of [1, 2, 3, 5, 8]) {
    it(`passes the collectives suite on ${n} ranks`, async () => {
      const job = new RankJob(server, socketName, `coll-${n}`, n);
      jobs.push(job);
      job.start(suite);
      const results = await job.wait();
      expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual(new Array(n).fill(0));
      expect(job.stdout[0]).toBe(`coll ok size ${n}\n`);
    });
  }
});
