// The runtime's channels between namespace hosts: a channel to a rank on
// another host limits the bytes its socket holds untransmitted
// (TCP_NOTSENT_LOWAT, src/runtime/channel.c limit_unsent); one between ranks on
// the same host keeps the kernel's default. The ranks read their own sockets'
// options (test/runtime/programs/channel-sockets.c); the test counts them
// against where the coordinator placed the ranks.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { compileProgram } from './rank-harness.js';

/** FMPI_REMOTE_NOTSENT_BYTES in src/runtime/fmpi.h. */
const REMOTE_NOTSENT_BYTES = 128 * 1024;
const RANKS = 4;

let c: TestCluster;
let program: string;

beforeAll(async () => {
  c = await startTestCluster({ hosts: 2 });
  const bin = join(c.tempDir, 'bin');
  mkdirSync(bin, { recursive: true });
  program = compileProgram('channel-sockets', bin);
}, 120_000);

afterAll(async () => {
  await c?.stop();
});

describe('rank runtime: channel sockets', () => {
  it('limit the untransmitted bytes of a channel to another host, and only there', async () => {
    const run = await c.ferry(['run', '-n', String(RANKS), '--raw', '--hosts', 'host1,host2', '--job-id', 'sockets', program], { timeoutMs: 60_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('sockets done\n');
    const job = await c.ferry(['job', 'sockets', '--json']);
    expect(job.code, job.stderr).toBe(0);
    const hostOf = new Map((JSON.parse(job.stdout) as { ranks: { rank: number; host: string }[] }).ranks.map((r) => [r.rank, r.host]));
    expect(hostOf.size).toBe(RANKS);

    // what each rank should see: one socket per other rank, "other" where that rank's host differs
    const expected: string[] = [];
    for (let r = 0; r < RANKS; r++)
      for (let peer = 0; peer < RANKS; peer++)
        if (peer !== r) {
          const other = hostOf.get(r) !== hostOf.get(peer);
          expected.push(`rank ${r} peer-host ${other ? 'other' : 'same'} notsent-lowat ${other ? REMOTE_NOTSENT_BYTES : 0}`);
        }
    const seen = run.stdout.split('\n').filter((l) => l.startsWith('rank '));
    // Every socket has the limit where its peer is on another host, and the default where it is not.
    for (const l of seen) expect(l).toMatch(new RegExp(`^rank \\d+ peer-host (other notsent-lowat ${REMOTE_NOTSENT_BYTES}|same notsent-lowat 0)$`));
    // And each rank has a socket for every peer. It may hold one more for a moment: when two ranks connect to
    // each other at once, one attempt is refused and closed, and a rank may list its sockets before it closes
    // it (one fresh-clone CI run saw rank 0 with two sockets to its same-host peer).
    const count = (lines: string[], rank: number, kind: string) => lines.filter((l) => l.startsWith(`rank ${rank} peer-host ${kind} `)).length;
    for (let r = 0; r < RANKS; r++)
      for (const kind of ['other', 'same']) expect(count(seen, r, kind), `rank ${r}, ${kind} host`).toBeGreaterThanOrEqual(count(expected, r, kind));
    // the placement spans both hosts and puts two ranks together somewhere, so both kinds were checked
    expect(expected.some((l) => l.includes('other'))).toBe(true);
    expect(expected.some((l) => l.includes('same'))).toBe(true);
  });
});
