// Checkpoint side of the runtime without CRIU: flush every rank through the
// agent channel (drain, close every socket, report), check the processes hold
// no sockets, wake them with SIGUSR2, rewire with new endpoints, and let the
// same processes go on. Message contents and per-channel sequence numbers
// (checked by the runtime itself) prove nothing was lost, duplicated or reordered.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { RankChannelServer, type RankInfo } from '../../src/agent/rank-channel.js';
import { RankJob, uniqueSocketName, until, useRankRuntime } from './rank-harness.js';

const SIGUSR2_BIT = 1n << 11n; // signal 12
/** The process-wide pending signal mask (ShdPnd in /proc/PID/status). */
function sharedPending(pid: number): bigint {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('ShdPnd:'))!;
  return BigInt('0x' + line.split(/\s+/)[1]);
}

/** The resident memory of a process (VmRSS in /proc/PID/status), in KiB. */
function residentKiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]);
}

describe('rank runtime: flush, close, rewire', () => {
  const rt = useRankRuntime('flush-pending', 'flush-stream', 'finalize-exit', 'flush-nbc', 'flush-rma', 'flush-scratch', 'flush-file');

  it('holds an MPI-IO write made while the rank is flushed until the resume', async () => {
    const data = join(rt.dir, 'flush-file.dat');
    const go = join(rt.dir, 'go-file');
    const job = rt.job('flush-file', 2);
    job.start(rt.program('flush-file'), [data, go]);
    for (const r of [0, 1]) await job.waitForOutput(r, 'ready\n');
    await rt.server.flush(job.jobId, 1);
    writeFileSync(go, ''); // each rank now calls MPI_File_write_at
    await sleep(500);
    expect(statSync(data).size).toBe(0);
    expect(job.stdout).toEqual(['ready\n', 'ready\n']);

    job.resumeAll();
    const results = await job.wait();
    expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual([0, 0]);
    expect(job.stdout).toEqual(['ready\nwrote\n', 'ready\nwrote\n']);
    expect(readFileSync(data, 'latin1')).toBe('a'.repeat(1024) + 'b'.repeat(1024));
  });

  it('keeps drained messages and a half-done rendezvous across a flush; the same processes continue', async () => {
    const go = join(rt.dir, 'go-pending');
    const job = rt.job('flush-pending', 3);
    job.start(rt.program('flush-pending'), [go]);
    await job.waitForOutput(0, 'sent\n');
    await job.waitForOutput(1, 'ready\n');
    await job.waitForOutput(2, 'posted\n');
    // a stray SIGUSR2 before the flush must not end the coming wait: flush discards it
    job.resumeAll();
    for (const p of job.procs) await until(() => (sharedPending(p.pid!) & SIGUSR2_BIT) !== 0n);

    const reports = await rt.server.flush(job.jobId, 1);
    for (const p of job.procs) expect(sharedPending(p.pid!) & SIGUSR2_BIT).toBe(0n);
    expect(reports.map((r) => r.rank)).toEqual([0, 1, 2]);
    expect(reports.every((r) => r.epoch === 1)).toBe(true);
    // rank 1 holds 19 eager messages and the request-to-send of the large one
    // (the first eager message matched its wildcard receive posted before the flush)
    expect(reports[1].unexpectedMessages).toBe(20);
    expect(reports[0].channelsClosed).toBeGreaterThan(0);
    for (const r of job.procs.keys()) expect(job.socketsOf(r)).toEqual([]); // alive, and dump-safe: not even the agent connection
    expect(rt.server.ranks(job.jobId)).toEqual([]);

    job.resumeAll();
    await until(() => job.hellos.length === 2);
    expect(job.hellos[1].map((h) => h.resumedEpoch)).toEqual([1, 1, 1]);
    writeFileSync(go, '');
    const results = await job.wait();
    expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual([0, 0, 0]);
    expect(job.stdout[0]).toBe('sent\nrank 0 done reply 21\n');
    expect(job.stdout[1]).toBe('ready\nrank 1 received 21 messages in order\n');
    expect(job.stdout[2]).toBe('posted\nrank 2 late 4242\n');
  });

  it('keeps half-done nonblocking collectives (a Comm_idup among them) across a flush; they complete after the resume', async () => {
    const go = join(rt.dir, 'go-nbc');
    const job = rt.job('flush-nbc', 3);
    job.start(rt.program('flush-nbc'), [go]);
    await job.waitForOutput(0, 'started\n');
    await job.waitForOutput(1, 'started\n');
    await job.waitForOutput(2, 'ready\n');
    const reports = await rt.server.flush(job.jobId, 1);
    expect(reports.map((r) => r.rank)).toEqual([0, 1, 2]);
    for (const r of job.procs.keys()) expect(job.socketsOf(r)).toEqual([]);
    job.resumeAll();
    await until(() => job.hellos.length === 2);
    writeFileSync(go, '');
    const results = await job.wait();
    expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual([0, 0, 0]);
    expect(job.stdout).toEqual(['started\nrank 0 collectives ok\n', 'started\nrank 1 collectives ok\n', 'ready\nrank 2 collectives ok\n']);
  });

  it("gives the collectives' kept temporaries back at a flush: the dump does not carry them", async () => {
    const go = join(rt.dir, 'go-scratch');
    const job = rt.job('flush-scratch', 2);
    job.start(rt.program('flush-scratch'), [go]);
    for (const r of job.procs.keys()) await job.waitForOutput(r, 'ready\n');
    const before = job.procs.map((p) => residentKiB(p.pid!));
    await rt.server.flush(job.jobId, 1);
    const after = job.procs.map((p) => residentKiB(p.pid!));
    // each rank kept its Allreduce's 40 MiB temporary for the next call; the flush gave it back
    for (const r of job.procs.keys()) expect(before[r]! - after[r]!, `rank ${r}: VmRSS ${before[r]} -> ${after[r]} KiB`).toBeGreaterThan(36 * 1024);
    job.resumeAll();
    await until(() => job.hellos.length === 2);
    writeFileSync(go, '');
    const results = await job.wait();
    expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual([0, 0]);
    expect(job.stdout).toEqual(['ready\nrank 0 sum 3\n', 'ready\nrank 1 sum 3\n']);
  });

  it('survives three flush and resume cycles under continuous traffic on 4 ranks', async () => {
    const stop = join(rt.dir, 'stop-stream');
    const job = rt.job('flush-stream', 4);
    job.start(rt.program('flush-stream'), [stop]);
    await job.waitForOutput(0, 'started\n');
    await until(() => job.hellos.length === 1);
    let drained = 0;
    for (let epoch = 1; epoch <= 3; epoch++) {
      const reports = await job.within(`flush ${epoch}`, rt.server.flush(job.jobId, epoch));
      expect(reports).toHaveLength(4);
      drained += reports.reduce((n, r) => n + r.drainedMessages, 0);
      for (const r of job.procs.keys()) expect(job.socketsOf(r)).toEqual([]);
      job.resumeAll();
      await job.within(`the hellos after resume ${epoch}`, until(() => job.hellos.length === epoch + 1));
      expect(job.hellos[epoch].every((h) => h.resumedEpoch === epoch)).toBe(true);
    }
    writeFileSync(stop, '');
    const results = await job.within('the exits', job.wait());
    expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual([0, 0, 0, 0]);
    expect(job.stdout[0]).toMatch(/^started\nstream ok rounds \d+ messages \d+\n$/);
    expect(drained).toBeGreaterThanOrEqual(0);
  });

  it('serves a flush request that comes in the same read as the endpoint table, and wakes from it', async () => {
    const stop = join(rt.dir, 'stop-table-and-flush');
    const job = rt.job('flush-table-and-flush', 1);
    job.start(rt.program('flush-stream'), [stop]);
    await job.waitForOutput(0, 'started\n');
    await until(() => job.hellos.length === 1);
    await job.within('flush 1', rt.server.flush(job.jobId, 1));
    // The rank is stopped as soon as it says hello after the resume, before the
    // endpoint table goes out: the table and the next flush request then wait
    // in its socket together, and it reads them in one go.
    const pid = job.procs[0].pid!;
    const stopAtHello = (info: RankInfo) => {
      if (info.jobId === job.jobId && info.resumedEpoch === 1) process.kill(pid, 'SIGSTOP');
    };
    rt.server.prependListener('hello', stopAtHello);
    try {
      job.resumeAll();
      await until(() => job.hellos.length === 2);
      const second = rt.server.flush(job.jobId, 2);
      await sleep(100);
      process.kill(pid, 'SIGCONT');
      await job.within('flush 2', second);
    } finally {
      rt.server.off('hello', stopAtHello);
      process.kill(pid, 'SIGCONT');
    }
    expect(job.socketsOf(0)).toEqual([]);
    job.resumeAll();
    await job.within('the hello after resume 2', until(() => job.hellos.length === 3), 10_000);
    writeFileSync(stop, '');
    const results = await job.within('the exit', job.wait());
    expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual([0]);
  });

  it('keeps one-sided traffic (locks, fetch-and-op, accumulates, 1 MiB puts and gets) to a rank that computes without calling MPI across three flushes', async () => {
    const stop = join(rt.dir, 'stop-rma');
    const job = rt.job('flush-rma', 4);
    job.start(rt.program('flush-rma'), [stop]);
    for (const r of [0, 1, 2, 3]) await job.waitForOutput(r, 'started\n');
    await until(() => job.hellos.length === 1);
    let drained = 0;
    for (let epoch = 1; epoch <= 3; epoch++) {
      await sleep(150);
      const reports = await rt.server.flush(job.jobId, epoch);
      expect(reports).toHaveLength(4);
      drained += reports.reduce((n, r) => n + r.drainedMessages, 0);
      for (const r of job.procs.keys()) expect(job.socketsOf(r)).toEqual([]);
      job.resumeAll();
      await until(() => job.hellos.length === epoch + 1);
    }
    await sleep(150);
    writeFileSync(stop, '');
    const results = await job.wait();
    expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual([0, 0, 0, 0]);
    expect(job.stdout[0]).toMatch(/^started\nrma ok rounds \d+\n$/);
    expect(Number(/rounds (\d+)/.exec(job.stdout[0])![1])).toBeGreaterThan(0);
    expect(drained, 'messages drained by the flushes').toBeGreaterThan(0);
  });

  it('refuses a second flush while one runs and reports a rank that dies during a flush', async () => {
    const go = join(rt.dir, 'go-refuse');
    const job = rt.job('flush-dies', 2);
    job.start(rt.program('flush-pending'), [go]);
    await job.waitForOutput(0, 'sent\n');
    await job.waitForOutput(1, 'ready\n');
    // rank 1 waits for the marker of rank 0, which is not asked to flush
    const first = rt.server.flush(job.jobId, 1, [1]);
    await expect(rt.server.flush(job.jobId, 2, [1])).rejects.toThrow(/already flushing/);
    job.procs[0].kill('SIGKILL');
    await expect(first).rejects.toThrow(/rank 1 of job flush-dies disconnected \(aborted\)/);
    const results = await job.wait();
    expect(results[1].code).toBe(1);
    expect(job.stderr[1]).toMatch(/lost the connection to rank 0/);
  });

  it('ranks outlive their agent: they keep communicating, attach to the next agent, flush through it and report their exits to it', async () => {
    const stop = join(rt.dir, 'stop-agent-lost');
    const name = uniqueSocketName();
    const first = new RankChannelServer({ socketName: name });
    await first.listen();
    const job = new RankJob(first, name, 'agent-lost', 3);
    rt.track(job);
    let second: RankChannelServer | undefined;
    let rewire: RankJob | undefined;
    try {
      job.start(rt.program('flush-stream'), [stop]);
      await job.waitForOutput(0, 'started\n');
      await until(() => job.hellos.length === 1);
      // The agent crashes: every rank loses its connection while traffic flows.
      await first.close();
      for (let r = 0; r < 3; r++) await until(() => job.stderr[r].includes('lost the connection to the agent; reconnecting'));
      for (const p of job.procs) expect(p.exitCode).toBeNull();

      // A new agent takes the socket name: the ranks say who they are (attach), with no new endpoint table.
      second = new RankChannelServer({ socketName: name });
      const attached: number[] = [];
      second.on('attach', (info) => {
        attached.push(info.rank);
        second!.answerAttach(info.jobId, info.rank);
      });
      const exits = new Map<number, number>();
      second.on('exit', (jobId, rank, code) => jobId === job.jobId && exits.set(rank, code));
      rewire = new RankJob(second, name, 'agent-lost', 3); // answers the hellos after the flush
      await second.listen();
      await until(() => attached.length === 3);
      expect(attached.sort()).toEqual([0, 1, 2]);
      expect(second.ranks(job.jobId).map((r) => [r.rank, r.listenPort])).toEqual(job.hellos[0].map((h) => [h.rank, h.listenPort]));

      // The new agent can flush them, wake them and rewire them.
      const reports = await second.flush(job.jobId, 1);
      expect(reports.map((r) => r.rank)).toEqual([0, 1, 2]);
      for (const r of job.procs.keys()) expect(job.socketsOf(r)).toEqual([]);
      job.resumeAll();
      await until(() => rewire!.hellos.length === 1);
      expect(rewire.hellos[0].map((h) => h.resumedEpoch)).toEqual([1, 1, 1]);

      writeFileSync(stop, '');
      const results = await job.wait();
      expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual([0, 0, 0]);
      expect(job.stdout[0]).toMatch(/^started\nstream ok rounds \d+ messages \d+\n$/);
      await until(() => exits.size === 3);
      expect([...exits.values()]).toEqual([0, 0, 0]);
    } finally {
      rewire?.kill();
      await second?.close();
      await first.close();
    }
  });

  it('a rank whose agent dies before it hands over the endpoint table says hello again to the next agent', async () => {
    const stop = join(rt.dir, 'stop-hello-again');
    const name = uniqueSocketName();
    const first = new RankChannelServer({ socketName: name });
    const asked: RankInfo[] = [];
    first.on('hello', (info) => asked.push(info));
    await first.listen();
    const job = new RankJob(first, name, 'hello-again', 2);
    rt.track(job);
    job.kill(); // this agent never answers: the job's table comes from the next one
    let second: RankChannelServer | undefined;
    let rewire: RankJob | undefined;
    try {
      job.start(rt.program('flush-stream'), [stop]);
      await until(() => asked.length === 2);
      expect(asked.map((h) => h.repeated)).toEqual([false, false]);
      await first.close();
      second = new RankChannelServer({ socketName: name });
      rewire = new RankJob(second, name, 'hello-again', 2);
      await second.listen();
      await until(() => rewire!.hellos.length === 1);
      expect(rewire.hellos[0].map((h) => [h.rank, h.repeated, h.listenPort])).toEqual(
        [...asked].sort((a, b) => a.rank - b.rank).map((h) => [h.rank, true, h.listenPort]),
      );
      await until(() => job.stdout[0].includes('started\n'));
      writeFileSync(stop, '');
      const results = await Promise.all(job.exits);
      expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual([0, 0]);
      expect(job.stdout[0]).toMatch(/^started\nstream ok rounds \d+ messages \d+\n$/);
    } finally {
      rewire?.kill();
      for (const p of job.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      await second?.close();
      await first.close();
    }
  });

  it('a flush racing MPI_Finalize completes either way, and exit codes reach the agent', async () => {
    const go = join(rt.dir, 'go-finalize');
    const job = rt.job('flush-finalize', 3);
    const exits = new Map<number, number>();
    const onExit = (jobId: string, rank: number, code: number) => jobId === job.jobId && exits.set(rank, code);
    rt.server.on('exit', onExit);
    job.start(rt.program('finalize-exit'), [go]);
    for (let r = 0; r < 3; r++) await job.waitForOutput(r, 'finalizing\n');
    // each rank is before, inside or past MPI_Finalize: a flushed one waits for SIGUSR2,
    // a finalized one is reported without being asked
    const reports = await rt.server.flush(job.jobId, 1);
    expect(reports.map((r) => r.rank)).toEqual([0, 1, 2]);
    for (const r of reports) if (!r.finalized) RankChannelServer.resume(job.procs[r.rank].pid!);
    for (let r = 0; r < 3; r++) await job.waitForOutput(r, 'finalized\n');
    writeFileSync(go, '');
    const results = await job.wait();
    // Every rank's exit notice reaches the agent, also from a rank flushed
    // inside MPI_Finalize: woken, it connects again (attach) before it exits.
    await until(() => exits.size === 3);
    rt.server.off('exit', onExit);
    expect(results.map((r) => r.code), job.stderr.join('\n')).toEqual([3, 4, 5]);
    for (const [rank, code] of exits) expect(code).toBe(rank + 3);
  });
});
