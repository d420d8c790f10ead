// Profiling interposition (issue 3: every MPI_ name also as PMPI_): a program
// that defines some MPI_ functions itself and forwards to PMPI_ links against
// libferrympi, its definitions are the ones called, and the calls still work.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RankChannelServer } from '../../src/agent/rank-channel.js';
import { RankJob, compileProgram, makeTempDir, uniqueSocketName } from './rank-harness.js';

describe('rank runtime: PMPI_ interposition', () => {
  const tmp = makeTempDir();
  let server: RankChannelServer;
  let socketName: string;
  const jobs: RankJob[] = [];
  let program: string;

  beforeAll(async () => {
    program = compileProgram('pmpi-persistent', tmp.dir);
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

  it('a profiling layer over the persistent-request calls sees every call, and the exchange works through PMPI_', async () => {
    const job = new RankJob(server, socketName, 'pmpi-persistent', 3);
    jobs.push(job);
    job.start(program);
    const results = await job.wait();
    expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual([0, 0, 0]);
    expect(job.stdout[0]).toBe('send_init 1 recv_init 1 start 2 startall 3\n');
  });
});
