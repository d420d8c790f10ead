// A flush while persistent requests are started (PROTOCOL-NOTES.md: pending
// nonblocking requests survive): a synchronous send whose request-to-send is
// drained into the receiver's memory, a rendezvous receive and a wildcard
// receive, all completed after the resume and started again. Payload checks in
// the program and the runtime's per-channel sequence numbers prove nothing
// was lost, duplicated or reordered.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { until, useRankRuntime } from './rank-harness.js';

describe('rank runtime: persistent requests across a flush', () => {
  const rt = useRankRuntime('flush-persistent');

  it('keeps started persistent requests (a synchronous send, a rendezvous and a wildcard receive) across a flush', async () => {
    const go = join(rt.dir, 'go-persistent');
    const job = rt.job('flush-persistent', 2);
    job.start(rt.program('flush-persistent'), [go]);
    await job.waitForOutput(0, 'started\n');
    await job.waitForOutput(1, 'posted\n');

    const reports = await rt.server.flush(job.jobId, 1);
    expect(reports.map((r) => r.rank)).toEqual([0, 1]);
    // the request-to-send of rank 0's started synchronous send waits in rank 1's memory
    expect(reports[1].unexpectedMessages).toBe(1);
    for (const r of job.procs.keys()) expect(job.socketsOf(r)).toEqual([]);

    job.resumeAll();
    await until(() => job.hellos.length === 2);
    writeFileSync(go, '');
    const results = await job.wait();
    expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual([0, 0]);
    expect(job.stdout[1]).toBe('posted\nrank 1 ok\n');
  });

});
