// A flush that arrives while 8 ranks open their connections to each other at
// once (PROTOCOL-NOTES.md: a connection being set up when the flush starts;
// two ranks connecting to each other at once). Each round starts from no
// connections (the previous flush closed them all); where the flush lands
// varies by round: before any connect, amid connects, after data flowed.
// Payload checks in the program and the runtime's per-channel sequence
// numbers prove nothing was lost, duplicated or reordered.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RankChannelServer } from '../../src/agent/rank-channel.js';
import { RankJob, compileProgram, makeTempDir, sockets, uniqueSocketName, until } from './rank-harness.js';

const STORM_RANKS = 8;
const STORM_ROUNDS = 4;

describe('rank runtime: flush during a connect storm', () => {
  const tmp = makeTempDir();
  let server: RankChannelServer;
  let socketName: string;
  const jobs: RankJob[] = [];
  let storm: string;

  beforeAll(async () => {
    storm = compileProgram('connect-storm', tmp.dir);
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

  it(`${STORM_RANKS} ranks connecting to each other at once while a flush arrives lose nothing, ${STORM_ROUNDS} times`, async () => {
    const job = new RankJob(server, socketName, 'connect-storm', STORM_RANKS);
    jobs.push(job);
    job.start(storm, [tmp.dir, String(STORM_ROUNDS)]);
    for (let r = 0; r < STORM_RANKS; r++) await job.waitForOutput(r, 'ready\n');
    await until(() => job.hellos.length === 1);
    for (let round = 0; round < STORM_ROUNDS; round++) {
      // every rank starts its first messages to all others now; the flush goes out at once,
      // so it meets connects in progress, crossing connects and data (which one varies by round)
      writeFileSync(join(tmp.dir, `go-${round}`), '');
      const reports = await server.flush(job.jobId, round + 1);
      expect(reports.map((r) => r.rank)).toEqual([...Array(STORM_RANKS).keys()]);
      for (const p of job.procs) expect(sockets(p.pid!)).toEqual([]);
      job.resumeAll();
      await until(() => job.hellos.length === round + 2);
      for (let r = 0; r < STORM_RANKS; r++) await job.waitForOutput(r, `round ${round} ok\n`);
    }
    const results = await job.wait();
    expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual(Array(STORM_RANKS).fill(0));
    const expected = 'ready\n' + [...Array(STORM_ROUNDS).keys()].map((k) => `round ${k} ok\n`).join('');
    for (let r = 0; r < STORM_RANKS; r++) expect(job.stdout[r]).toBe(expected);
  });
});
