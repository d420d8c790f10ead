// A rank that refuses a flush (it still waits for its endpoint table, after a
// resume or a coordinator restart) is not flushing. A RESUME that the abort of
// that operation sends must not mark it to be woken when its next flush
// completes: that woke it in the middle of the next operation, after its
// PREPARE and before its DUMP, and CRIU found the rank's new sockets (found by
// the soak, seed 103). Nor may the rank table say it is flushed: the next
// agent, should this one die, would take a running rank back as flushed and
// never ask it to flush. And a rank that a RESUME reached while it flushed,
// woken once flushed, no longer counts as flushed. A real RankChannelServer;
// the rank is a raw client.
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalRankSteps } from '../../src/agent/local-rank-steps.js';
import { RankChannelServer } from '../../src/agent/rank-channel.js';
import type { RankSupervisor } from '../../src/agent/rank-supervisor.js';
import { ErrorCode, RoundStep, type RoundRequest } from '../../src/gen/proto.js';
import { rawRank } from '../helpers/raw-rank.js';
import { uniqueSocketName, until } from '../runtime/rank-harness.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-test-refused-flush-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


/** Rank 0 of job j over a raw connection: refuses its first flush request, flushes (replies, then closes) at the next. */
function refusingRank(name: string): { flushRequests: () => number } {
  let requests = 0;
  const hello = { request_id: 1, hello: { job_id: 'j', rank: 0, size: 1, pid: process.pid, listen_port: 1, runtime_version: 'test' } };
  rawRank(name, hello, (m, send, s) => {
    if (!m.flush) return;
    if (++requests === 1) {
      // as src/runtime/agent.c's reply_error: an empty flush reply with the error
      const status = { ok: false, code: ErrorCode.UNAVAILABLE, message: 'rank is not running yet (waiting for its endpoint table)' };
      send({ reply_to: m.request_id, status, flush_reply: {} });
    } else {
      send({ reply_to: m.request_id, status: { ok: true }, flush_reply: { epoch: m.flush.epoch } });
      s.end();
    }
  });
  return { flushRequests: () => requests };
}

const round = (step: RoundStep, epoch: number): RoundRequest =>
  ({ job_id: 'j', epoch, image_set: String(epoch), step, ranks: [0], dump_ranks: [], sources: [], appended_sizes: [] }) as unknown as RoundRequest;

/** A rank channel and the steps over it; the signals sent to ranks, and the flush epochs the rank table would keep. */
async function agentSide(): Promise<{ name: string; server: RankChannelServer; steps: LocalRankSteps; signals: string[]; table: Map<string, number> }> {
  const name = uniqueSocketName();
  const server = new RankChannelServer({ socketName: name });
  await server.listen();
  const signals: string[] = [];
  const table = new Map<string, number>();
  const ranks = Object.assign(new EventEmitter(), {
    signalRanks: (jobId: string, list: number[], signal: string) => (signals.push(`${jobId} ${list.join(',')} ${signal}`), list.length),
    recordFlush: (jobId: string, rank: number, epoch: number) => table.set(`${jobId}/${rank}`, epoch),
    recordFlushAsked: (jobId: string, list: number[], epoch: number) => list.forEach((r) => table.set(`${jobId}/${r}`, epoch)),
  }) as unknown as RankSupervisor;
  const steps = new LocalRankSteps({ host: 'h', imagesDir: join(dir, 'images'), ranks, rankChannel: server });
  return { name, server, steps, signals, table };
}

describe('a rank that refused a flush', () => {
  it('is not woken by the end of its next flush because of a RESUME sent in between', async () => {
    const { name, server, steps, signals, table } = await agentSide();
    try {
      const rank = refusingRank(name);
      await until(() => server.ranks('j').length === 1);

      const refused = await steps.run(round(RoundStep.PREPARE, 3));
      expect(refused.failed.get(0)?.message).toMatch(/refused the flush: rank is not running yet/);
      expect(steps.awaitingResume()).toEqual(new Map()); // not flushing
      expect(table).toEqual(new Map([['j/0', 0]])); // an agent killed now leaves the next one a running rank, not a flushed one
      await steps.run(round(RoundStep.RESUME, 3)); // the abort's RESUME: nothing to wake
      expect(signals).toEqual([]);

      const flushed = await steps.run(round(RoundStep.PREPARE, 4)); // the next operation's flush
      expect(flushed.failed.size).toBe(0);
      expect(rank.flushRequests()).toBe(2);
      expect(signals).toEqual([]); // still flushed: its operation goes on to DUMP
      expect(steps.awaitingResume()).toEqual(new Map([['j/0', 4]]));
      expect(table).toEqual(new Map([['j/0', 4]]));
      await steps.run(round(RoundStep.RESUME, 4));
      expect(signals).toEqual(['j 0 SIGUSR2']);
    } finally {
      await server.close();
    }
  });
});

describe('a rank that a RESUME reached while it flushed', () => {
  it('is woken once flushed, and then no longer counts as flushed', async () => {
    const { name, server, steps, signals } = await agentSide();
    try {
      let finish = () => {};
      const hello = { request_id: 1, hello: { job_id: 'j', rank: 0, size: 1, pid: process.pid, listen_port: 1, runtime_version: 'test' } };
      rawRank(name, hello, (m, send, s) => {
        if (!m.flush) return;
        finish = () => {
          send({ reply_to: m.request_id, status: { ok: true }, flush_reply: { epoch: m.flush!.epoch } });
          s.end();
        };
      });
      await until(() => server.ranks('j').length === 1);
      const prepare = steps.run(round(RoundStep.PREPARE, 5));
      await until(() => steps.awaitingResume().has('j/0')); // flushing
      await steps.run(round(RoundStep.RESUME, 5)); // (an abort's RESUME, while the rank still flushes)
      expect(signals).toEqual([]);
      finish();
      expect((await prepare).failed.size).toBe(0);
      expect(signals).toEqual(['j 0 SIGUSR2']);
      // Woken: a PREPARE again must ask it, and a registration must not report it flushed.
      expect(steps.awaitingResume()).toEqual(new Map());
    } finally {
      await server.close();
    }
  });
});
