// A flush that arrives while 8 ranks open their connections to each other at
// once (PROTOCOL-NOTES.md: a connection being set up when the flush starts;
// two ranks connecting to each other at once). Each round starts from no
// connections (the previous flush closed them all); where the flush lands
// varies by round: before any connect, amid connects, after data flowed.
// Payload checks in the program and the runtime's per-channel sequence
// numbers prove nothing was lost, duplicated or reordered.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { until, useRankRuntime } from './rank-harness.js';

const STORM_RANKS = 8;
const STORM_ROUNDS = 4;

describe('rank runtime: flush during a connect storm', () => {
  const rt = useRankRuntime('connect-storm');

  it(`${STORM_RANKS} ranks connecting to each other at once while a flush arrives lose nothing, ${STORM_ROUNDS} times`, async () => {
    const job = rt.job('connect-storm', STORM_RANKS);
    job.start(rt.program('connect-storm'), [rt.dir, String(STORM_ROUNDS)]);
    for (let r = 0; r < STORM_RANKS; r++) await job.waitForOutput(r, 'ready\n');
    await until(() => job.hellos.length === 1);
    for (let round = 0; round < STORM_ROUNDS; round++) {
      // every rank starts its first messages to all others now; the flush goes out at once,
      // so it meets connects in progress, crossing connects and data (which one varies by round)
      writeFileSync(join(rt.dir, `go-${round}`), '');
      const reports = await rt.server.flush(job.jobId, round + 1);
      expect(reports.map((r) => [r.rank, r.finalized ?? false])).toEqual([...Array(STORM_RANKS).keys()].map((r) => [r, false]));
      for (let r = 0; r < STORM_RANKS; r++) expect(job.socketsOf(r)).toEqual([]);
      job.resumeAll();
      await until(() => job.hellos.length === round + 2);
      for (let r = 0; r < STORM_RANKS; r++) await job.waitForOutput(r, `round ${round} ok\n`);
    }
    writeFileSync(join(rt.dir, 'end'), '');
    const results = await job.wait();
    expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual(Array(STORM_RANKS).fill(0));
    const expected = 'ready\n' + [...Array(STORM_ROUNDS).keys()].map((k) => `round ${k} ok\n`).join('');
    for (let r = 0; r < STORM_RANKS; r++) expect(job.stdout[r]).toBe(expected);
  });
});
