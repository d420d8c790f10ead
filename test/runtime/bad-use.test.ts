import { describe, expect, it } from 'vitest';
import { compileWithWireVersion, until, useRankRuntime } from './rank-harness.js';

describe('rank runtime: MPI_Abort and fatal errors reach the agent', () => {
  const rt = useRankRuntime('abort', 'p2p-suite');

  for (const [mode, code, text] of [
    ['abort', 7, /MPI_Abort\(comm 1, 7\) called by rank 1/],
    ['fatal', 6, /error in MPI_Send: Invalid rank/],
    ['spawn', 0, /error in MPI_Comm_spawn: Spawning processes is not supported: a Ferry job's ranks are fixed when it starts/],
  ] as const) {
    it(`${mode}: the agent hears the abort with its code, the rank exits with it, its peer does not hang`, async () => {
      const job = rt.job(`bad-${mode}`, 2);
      const aborts: [number, number, string][] = [];
      const disconnects: string[] = [];
      const onAbort = (jobId: string, rank: number, c: number, msg: string) => jobId === job.jobId && aborts.push([rank, c, msg]);
      const onDisc = (jobId: string, rank: number, how: string) => jobId === job.jobId && disconnects.push(`${rank}:${how}`);
      rt.server.on('abort', onAbort);
      rt.server.on('disconnect', onDisc);
      job.start(rt.program('abort'), [mode]);
      const results = await job.wait();
      await until(() => disconnects.length === 2);
      rt.server.off('abort', onAbort);
      rt.server.off('disconnect', onDisc);
      const mine = aborts.find((a) => a[0] === 1);
      expect(mine?.[2]).toMatch(text);
      if (mode === 'abort') expect(mine?.[1]).toBe(code);
      expect(results[1].code).toBe(mode === 'abort' ? 7 : 1);
      expect(results[0].code).toBe(1); // lost its peer: fails instead of hanging
      expect(job.stderr[0]).toMatch(/lost the connection to rank 1/);
      expect(disconnects.sort()).toEqual(['0:aborted', '1:aborted']);
    });
  }

  it('a rank linked with a runtime of another channel version is refused with an error naming both versions', async () => {
    // Version 1 runtimes sent request-to-send frames without the message's
    // first bytes; a mix would misread each other's frames.
    const older = compileWithWireVersion('p2p-suite', rt.dir, 1);
    const job = rt.job('bad-wire', 2);
    job.start((rank) => (rank === 0 ? older : rt.program('p2p-suite')));
    const results = await job.wait();
    expect(results.map((r) => r.code)).not.toEqual([0, 0]);
    const said = job.stderr.join('\n');
    expect(said).toMatch(/rank [01] runs a Ferry MPI runtime with channel version [12], this rank [12]: build every program of the job with the same Ferry/);
  });
});
