// The rank table says a rank is flushing before the rank is asked. Written
// after the request (on the next microtask, and a write waits for an fsync),
// an agent killed in between left ranks flushing with no agent to tell while
// the table said they ran: the next agent waited for them to connect again,
// which a flushed rank never does, and the job's flush could not be finished
// (a CI run of agent-restart.test.ts, 2026-12-06). A real RankChannelServer
// and a raw rank for the order; real RankSupervisors on one state directory
// (the first dropped as a SIGKILLed agent would be) for the table on disk.
import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalRankSteps } from '../../src/agent/local-rank-steps.js';
import { RankChannelServer } from '../../src/agent/rank-channel.js';
import { RANK_TABLE_SAVE_INTERVAL_MS, RankSupervisor } from '../../src/agent/rank-supervisor.js';
import { FerryError } from '../../src/common/ferry-error.js';
import { RANK_TABLE_FILE } from '../../src/agent/rank-table.js';
import { ErrorCode, RoundStep, type RankMessageInit } from '../../src/gen/proto.js';
import { rawRank } from '../helpers/raw-rank.js';
import { roundRequest } from '../helpers/round-request.js';
import { uniqueSocketName, until } from '../runtime/rank-harness.js';

const FERRY_INIT = resolve('build', 'bin', 'ferry-init');
const dir = mkdtempSync(join(tmpdir(), 'ferry-test-flush-record-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("a flush request's record in the rank table", () => {
  it('is made before the request is written to the rank', async () => {
    const name = uniqueSocketName();
    const server = new RankChannelServer({ socketName: name });
    await server.listen();
    const table = new Map<string, number>(); // what the rank table has on disk
    const ranks = Object.assign(new EventEmitter(), {
      signalRanks: () => 0,
      recordFlush: () => {}, // (deferred: not on disk yet when the agent could die)
      recordFlushAsked: (jobId: string, list: number[], epoch: number) => list.forEach((r) => table.set(`${jobId}/${r}`, epoch)),
    }) as unknown as RankSupervisor;
    const steps = new LocalRankSteps({ host: 'h', imagesDir: join(dir, 'images'), ranks, rankChannel: server });
    // What the table had as each flush request went out.
    const atRequest: (number | undefined)[] = [];
    const channel = server as unknown as { send: (c: unknown, m: RankMessageInit) => void };
    const send = channel.send.bind(server);
    channel.send = (c, m) => {
      if (m.flush) atRequest.push(table.get('j/0'));
      send(c, m);
    };
    try {
      const hello = { request_id: 1, hello: { job_id: 'j', rank: 0, size: 1, pid: process.pid, listen_port: 1, runtime_version: 'test' } };
      rawRank(name, hello, (m, reply, s) => {
        if (!m.flush) return;
        reply({ reply_to: m.request_id, status: { ok: true }, flush_reply: { epoch: m.flush.epoch } });
        s.end();
      });
      await until(() => server.ranks('j').length === 1);
      const out = await steps.run(roundRequest(RoundStep.PREPARE, { job_id: 'j', epoch: 4, ranks: [0] }));
      expect(out.failed).toEqual(new Map());
      expect(atRequest).toEqual([4]);
    } finally {
      steps.close?.();
      await server.close();
    }
  });

  it('that cannot be written fails the PREPARE, naming the host and the table, and no rank is asked', async () => {
    const name = uniqueSocketName();
    const server = new RankChannelServer({ socketName: name });
    await server.listen();
    const ranks = Object.assign(new EventEmitter(), {
      signalRanks: () => 0,
      recordFlush: () => {},
      recordFlushAsked: () => {
        throw new FerryError(ErrorCode.STATE_UNWRITABLE, 'host h cannot write its rank table /x/ranks.json (ENOSPC: no space left on device): no rank of job j was asked to flush');
      },
    }) as unknown as RankSupervisor;
    const steps = new LocalRankSteps({ host: 'h', imagesDir: join(dir, 'images'), ranks, rankChannel: server });
    let asked = 0;
    try {
      const hello = { request_id: 1, hello: { job_id: 'j', rank: 0, size: 1, pid: process.pid, listen_port: 1, runtime_version: 'test' } };
      rawRank(name, hello, (m) => {
        if (m.flush) asked++;
      });
      await until(() => server.ranks('j').length === 1);
      const out = await steps.run(roundRequest(RoundStep.PREPARE, { job_id: 'j', epoch: 4, ranks: [0] }));
      expect(out.failed.get(0)?.code).toBe(ErrorCode.STATE_UNWRITABLE);
      expect(out.failed.get(0)?.message).toMatch(/^host h cannot write its rank table .*ENOSPC/);
      await new Promise((r) => setTimeout(r, 100));
      expect(asked).toBe(0);
    } finally {
      steps.close?.();
      await server.close();
    }
  });

  it('is refused while the table cannot be written (its disk full), said once, and the table is written again once there is room', async () => {
    const stateDir = join(dir, 'small-state');
    mkdirSync(stateDir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'ferry-test-rank-table', stateDir]);
    const warnings: string[] = [];
    const s = new RankSupervisor({ host: 'h', logsDir: join(dir, 'logs'), stateDir, initPath: FERRY_INIT, agentSocketName: `ferry-test-flush-record-${process.pid}`, warn: (m) => warnings.push(m) });
    const filler = join(stateDir, 'filler');
    try {
      s.start({ jobId: 'j', rank: 0, worldSize: 1, argv: ['/bin/sh', '-c', 'exec sleep 60'], cwd: '/', env: { PATH: '/usr/bin:/bin' } });
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k'], { stdio: 'ignore' });
      } catch {
        // (dd ends with ENOSPC)
      }
      let refused: unknown;
      try {
        s.recordFlushAsked('j', [0], 3);
      } catch (err) {
        refused = err;
      }
      expect((refused as FerryError)?.code).toBe(ErrorCode.STATE_UNWRITABLE);
      expect((refused as Error).message).toMatch(/^host h cannot write its rank table .*ranks\.json \(ENOSPC: no space left on device.*\): no rank of job j was asked to flush$/);
      expect(() => s.recordFlushAsked('j', [0], 3)).toThrow(/cannot write its rank table/);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/^cannot write the rank table .*ENOSPC.*; an agent restarted now would not know what became of its ranks since; checkpoints of them fail$/);
      rmSync(filler);
      await new Promise((r) => setTimeout(r, RANK_TABLE_SAVE_INTERVAL_MS + 500));
      expect(warnings.at(-1)).toMatch(/^the rank table .* is written again$/);
      const onDisk = (JSON.parse(readFileSync(join(stateDir, RANK_TABLE_FILE), 'utf8')) as { ranks: { rank: number; flushEpoch?: number }[] }).ranks;
      expect(onDisk.map((r) => [r.rank, r.flushEpoch])).toEqual([[0, 0]]); // (not asked: not flushing)
      s.recordFlushAsked('j', [0], 3);
    } finally {
      s.signalJob('j', 'SIGKILL');
      for (let i = 0; i < 250 && s.running().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
      s.close();
      execFileSync('umount', [stateDir]);
    }
  });

  it('is on disk when recordFlushAsked returns, for the next agent to take the rank back flushed', async () => {
    const stateDir = join(dir, 'state');
    const supervisor = () => new RankSupervisor({ host: 'h', logsDir: join(dir, 'logs'), stateDir, initPath: FERRY_INIT, agentSocketName: `ferry-test-flush-record-${process.pid}` });
    const first = supervisor();
    let next: RankSupervisor | undefined;
    try {
      first.start({ jobId: 'j', rank: 0, worldSize: 1, argv: ['/bin/sh', '-c', 'exec sleep 60'], cwd: '/', env: { PATH: '/usr/bin:/bin' } });
      first.recordFlushAsked('j', [0], 7);
      // (read before this tick ends: a save deferred to a microtask or a timer would not be there yet)
      const onDisk = (JSON.parse(readFileSync(join(stateDir, RANK_TABLE_FILE), 'utf8')) as { ranks: { rank: number; flushEpoch?: number }[] }).ranks;
      expect(onDisk.map((r) => [r.rank, r.flushEpoch])).toEqual([[0, 7]]);
      next = supervisor(); // the first is dropped without a word, as a SIGKILLed agent would be
      expect(next.readopt().alive.map((a) => [a.process.rank, a.flushEpoch])).toEqual([[0, 7]]);
    } finally {
      first.signalJob('j', 'SIGKILL');
      // (its end is written to the table as it comes: the folder goes after it)
      for (let i = 0; i < 250 && first.running().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
      first.close();
      next?.close();
    }
  });
});
