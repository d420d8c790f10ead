// 10,000 random and mutated frames from a hostile "coordinator" to a real
// agent over real ZeroMQ: the agent neither crashes nor hangs, and answers
// every well-formed request sent among them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { LocalRankSteps } from '../../src/agent/local-rank-steps.js';
import { RankSupervisor } from '../../src/agent/rank-supervisor.js';
import { ErrorCode, RoundStep, type AgentMessage } from '../../src/gen/proto.js';
import { agentMessageCodec, coordinatorInboundCodec, OK_STATUS } from '../../src/protocol/messages.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { ZmqClientTransport } from '../../src/transport/zmq-transport.js';
import { mulberry32, mutate, randomBytesFrom } from './fuzz-input.js';

const FRAMES = 10_000;
const dir = mkdtempSync(join(tmpdir(), 'ferry-agent-fuzz-'));
const cleanups: (() => Promise<void> | void)[] = [];

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

describe('agent under random and mutated frames', () => {
  it('answers every well-formed request among 10,000 bad frames', async () => {
    const router = new zmq.Router({ linger: 0, sendHighWaterMark: 0 });
    await router.bind('tcp://127.0.0.1:0');
    cleanups.push(() => router.close());
    const ranks = new RankSupervisor({ host: 'f1', logsDir: join(dir, 'logs'), initPath: '/bin/false', agentSocketName: 'ferry-fuzz-f1' });
    const fatal: string[] = [];
    const agent = new Agent(
      { host: 'f1', address: '127.0.0.1', cpus: 1, criuVersion: '', criuCheckOk: false, criuCheckDetail: '', version: 'test' },
      () => new ZmqClientTransport(router.lastEndpoint!),
      ranks,
      { fatal: (e) => fatal.push(e.message) },
      new LocalRankSteps({ host: 'f1', imagesDir: join(dir, 'images'), ranks }),
    );
    agent.start();
    cleanups.push(() => agent.stop());

    // zeromq.js allows one send at a time: chain them.
    let chain: Promise<void> = Promise.resolve();
    const send = (frames: Buffer[] | [Buffer, Uint8Array]) => (chain = chain.then(() => router.send(frames)));
    // Play a coordinator that registers the agent, acks its heartbeats, and
    // collects the replies to our requests.
    const replies = new Map<number, AgentMessage>();
    let agentId: Buffer | undefined;
    let registered = 0;
    let stop = false;
    router.receiveTimeout = 200;
    const loop = (async () => {
      while (!stop) {
        let id: Buffer, frame: Buffer;
        try {
          [id, frame] = await router.receive();
        } catch {
          continue;
        }
        const msg = coordinatorInboundCodec.decode(frame).agent!;
        agentId = id;
        if (msg.reply_to) replies.set(msg.reply_to, msg);
        else if (msg.body === 'register') {
          registered++;
          await send([id, agentMessageCodec.encode({ version: PROTOCOL_VERSION, reply_to: msg.request_id, status: OK_STATUS, register_reply: { coordinator_instance: 'fuzz', heartbeat_interval_ms: 100, heartbeat_timeout_ms: 60_000 } })]);
        } else if (msg.body === 'heartbeat') {
          await send([id, agentMessageCodec.encode({ version: PROTOCOL_VERSION, reply_to: msg.request_id, status: OK_STATUS, heartbeat_ack: { coordinator_instance: 'fuzz' } })]);
        }
      }
    })();
    const deadline = Date.now() + 10_000;
    while (!agentId || registered === 0) {
      if (Date.now() > deadline) throw new Error('the agent never registered');
      await new Promise((r) => setTimeout(r, 20));
    }
    const rand = mulberry32(0xa9e7);
    const request = (id: number) =>
      agentMessageCodec.encode({ version: PROTOCOL_VERSION, request_id: id, round: { job_id: 'nojob', epoch: 1, step: RoundStep.PREPARE, ranks: [0, 1] } });
    const sample = request(1);
    const wanted: number[] = [];
    for (let i = 0; i < FRAMES; i++) {
      const frame = i % 3 === 0 ? randomBytesFrom(rand, Math.floor(rand() * 300)) : mutate(rand, sample);
      await send([agentId, frame]);
      if (i % 100 === 0) {
        const id = 1_000_000 + i;
        wanted.push(id);
        await send([agentId, request(id)]);
      }
    }
    const until = Date.now() + 60_000;
    while (Date.now() < until && wanted.some((id) => !replies.has(id))) await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await loop;
    expect(wanted.filter((id) => !replies.has(id))).toEqual([]);
    for (const id of wanted) {
      const r = replies.get(id)!;
      expect(r.status?.ok).toBe(true);
      // The agent runs no rank of that job: it says so, rank by rank.
      expect(r.round_reply?.failed.map((x) => x.status?.code)).toEqual([ErrorCode.UNKNOWN_RANK, ErrorCode.UNKNOWN_RANK]);
      expect(r.round_reply?.acknowledged).toBe(0);
    }
    expect(fatal).toEqual([]);
    expect(agent.state).toBe('registered');
  });
});
