// A rank re-adopted running from a killed agent connects to the new agent by
// itself (its runtime tries again with a backoff of up to 2 s). A coordinator
// finishing the flush that the agent's death cut short sends its PREPARE as
// soon as the new agent registers, which can be before that: the rank refused
// it as "not in MPI_Init yet", and its peers waited out the flush timeout for
// its end-of-channel markers (soak seed 118: a migration took 32 s to abort).
// The PREPARE now waits for it. A rank taken back flushed that attaches, or
// says hello, runs: it is asked to flush. A real RankChannelServer; the rank is a raw client.
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalRankSteps } from '../../src/agent/local-rank-steps.js';
import { RankChannelServer } from '../../src/agent/rank-channel.js';
import type { RankSupervisor } from '../../src/agent/rank-supervisor.js';
import { RoundStep } from '../../src/gen/proto.js';
import { rawRank } from '../helpers/raw-rank.js';
import { roundRequest } from '../helpers/round-request.js';
import { uniqueSocketName } from '../runtime/rank-harness.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-test-reattach-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Rank 0 of job j connecting again (an attach, as src/runtime/agent.c after a lost agent; or a hello, as a rank
 * that lost its agent while it waited for its endpoint table): flushes at its first request.
 */
function reattachingRank(name: string, how: 'attach' | 'hello' = 'attach'): { flushRequests: () => number } {
  let requests = 0;
  const rank = { job_id: 'j', rank: 0, size: 1, pid: process.pid, listen_port: 1, runtime_version: 'test' };
  const first = how === 'attach' ? { request_id: 1, attach: rank } : { request_id: 1, hello: { ...rank, repeated: true } };
  rawRank(name, first, (m, send, s) => {
    if (!m.flush) return;
    requests++;
    send({ reply_to: m.request_id, status: { ok: true }, flush_reply: { epoch: m.flush.epoch, drained_messages: 2, drained_bytes: 64 } });
    s.end();
  });
  return { flushRequests: () => requests };
}

const prepare = (epoch: number) => roundRequest(RoundStep.PREPARE, { job_id: 'j', epoch, ranks: [0] });

async function started(reattachWaitMs: number): Promise<{ server: RankChannelServer; steps: LocalRankSteps; name: string; table: Map<string, number> }> {
  const name = uniqueSocketName();
  const server = new RankChannelServer({ socketName: name });
  await server.listen();
  const table = new Map<string, number>(); // the flush epochs the rank table would keep
  const ranks = Object.assign(new EventEmitter(), {
    signalRanks: () => 0,
    recordFlush: (jobId: string, rank: number, epoch: number) => table.set(`${jobId}/${rank}`, epoch),
    recordFlushAsked: (jobId: string, ranks: number[], epoch: number) => ranks.forEach((r) => table.set(`${jobId}/${r}`, epoch)),
  }) as unknown as RankSupervisor;
  const steps = new LocalRankSteps({ host: 'h', imagesDir: join(dir, 'images'), ranks, rankChannel: server, reattachWaitMs });
  return { server, steps, name, table };
}

describe('a PREPARE for a rank re-adopted from a killed agent', () => {
  it('waits for the rank to connect again, then flushes it', async () => {
    const { server, steps, name } = await started(5_000);
    try {
      steps.expectReattach('j', 0);
      const t0 = Date.now();
      const flushing = steps.run(prepare(2));
      await new Promise((r) => setTimeout(r, 300)); // the rank's next try
      reattachingRank(name);
      const out = await flushing;
      expect(out.failed).toEqual(new Map());
      expect(out.flush).toMatchObject({ drained_messages: 2, drained_bytes: 64 });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    } finally {
      steps.close?.();
      await server.close();
    }
  });

  it('fails at the end of its wait, naming the rank, when the rank does not come back', async () => {
    const { server, steps } = await started(200);
    try {
      steps.expectReattach('j', 0);
      const out = await steps.run(prepare(2));
      expect(out.failed.get(0)?.message).toBe("rank 0 of job j, re-adopted from host h's previous agent, did not connect to its new one within 200 ms (one not linked with Ferry's MPI runtime never does)");
    } finally {
      steps.close?.();
      await server.close();
    }
  });

  it('does not wait for a rank that connected before the agent took it back', async () => {
    const { server, steps, name } = await started(60_000);
    try {
      reattachingRank(name);
      for (let i = 0; i < 100 && !server.isConnected('j', 0); i++) await new Promise((r) => setTimeout(r, 10));
      steps.expectReattach('j', 0);
      const out = await steps.run(prepare(2));
      expect(out.failed).toEqual(new Map());
    } finally {
      steps.close?.();
      await server.close();
    }
  });

  it.each(['attach', 'hello'] as const)('asks a rank taken back flushed from a stale rank table entry once it connects running (%s), instead of answering for it', async (how) => {
    const { server, steps, name, table } = await started(5_000);
    try {
      steps.adoptFlushed('j', 0, 2); // the rank table said it was flushed for epoch 2; it runs
      expect(steps.awaitingResume()).toEqual(new Map([['j/0', 2]]));
      const rank = reattachingRank(name, how);
      for (let i = 0; i < 100 && !server.isConnected('j', 0); i++) await new Promise((r) => setTimeout(r, 10));
      expect(steps.awaitingResume()).toEqual(new Map());
      expect(table).toEqual(new Map([['j/0', 0]]));
      const out = await steps.run(prepare(2));
      expect(out.failed).toEqual(new Map());
      expect(rank.flushRequests()).toBe(1); // its peers get its end-of-channel markers
    } finally {
      steps.close?.();
      await server.close();
    }
  });
});
