// 10,000 random and mutated frames at a real coordinator over real ZeroMQ:
// no crash, no hang, every well-formed request interleaved with them still
// answered, oversized frames refused.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/coordinator/catalog.js';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import { defaultCoordinatorConfig } from '../../src/coordinator/coordinator-config.js';
import { ErrorCode } from '../../src/gen/proto.js';
import { coordinatorInboundCodec, operatorReplyCodec } from '../../src/protocol/messages.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { ZmqServerTransport } from '../../src/transport/zmq-transport.js';
import { mulberry32, mutate, randomBytesFrom } from './fuzz-input.js';

const MAX_FRAME = 64 * 1024;
const FRAMES = 10_000;

let dir: string;
let catalog: Catalog;
let coordinator: Coordinator;
let address: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-fuzz-'));
  catalog = Catalog.open(dir);
  const transport = await ZmqServerTransport.bind('tcp://127.0.0.1:0', { maxMessageBytes: MAX_FRAME * 4 });
  address = transport.address;
  coordinator = new Coordinator(transport, catalog, defaultCoordinatorConfig({ maxFrameBytes: MAX_FRAME, listen: address }));
  coordinator.start();
});

afterAll(async () => {
  await coordinator?.stop();
  catalog?.close();
  rmSync(dir, { recursive: true, force: true });
});

type Reply = ReturnType<typeof operatorReplyCodec.decode>;

/**
 * Reads replies in the background while the test sends (the ROUTER drops
 * replies to a peer that reads nothing once its queue is full).
 */
function replyReader(sock: zmq.Dealer) {
  const got = new Map<number, Reply>();
  const other: Reply[] = [];
  let stop = false;
  sock.receiveTimeout = 200;
  const loop = (async () => {
    while (!stop) {
      let frames: Buffer[];
      try {
        frames = await sock.receive();
      } catch {
        continue;
      }
      try {
        const r = operatorReplyCodec.decode(frames[0]);
        // Mutated frames may carry any id: only a reply with a body counts as an answer.
        if (r.reply_to >= 77 && (r.cluster_status || r.hosts)) got.set(r.reply_to, r);
        else other.push(r);
      } catch {
        /* an agent-channel reply to a mutated agent frame */
      }
    }
  })();
  return {
    got,
    other,
    async until(ids: number[], ms: number) {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline && ids.some((id) => !got.has(id))) await new Promise((r) => setTimeout(r, 20));
      stop = true;
      await loop;
    },
  };
}

describe('coordinator under random and mutated frames', () => {
  it('answers every well-formed request among 10,000 bad frames and keeps running', async () => {
    const rand = mulberry32(0xfe77);
    const good = coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: 1, hosts: {} } });
    const agentGood = coordinatorInboundCodec.encode({
      agent: { version: PROTOCOL_VERSION, request_id: 5, register: { host: 'fuzz', agent_instance: 'x', address: '127.0.0.1', cpus: 1 } },
    });
    const sock = new zmq.Dealer({ linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
    sock.connect(address);
    const reader = replyReader(sock);
    const wanted = new Set<number>();
    let nextId = 1000;
    for (let i = 0; i < FRAMES; i++) {
      const kind = i % 4;
      const frame =
        kind === 0
          ? randomBytesFrom(rand, Math.floor(rand() * 512))
          : kind === 1
            ? mutate(rand, good)
            : kind === 2
              ? mutate(rand, agentGood)
              : randomBytesFrom(rand, Math.floor(rand() * 8));
      // Some fuzz frames come as several parts.
      if (rand() < 0.02) await sock.send([frame, frame]);
      else await sock.send(frame);
      if (i % 100 === 0) {
        const id = nextId++;
        wanted.add(id);
        await sock.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: id, cluster_status: {} } }));
      }
    }
    // A last request after every fuzz frame: frames of one connection arrive in order.
    wanted.add(nextId);
    await sock.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: nextId, cluster_status: {} } }));
    await reader.until([...wanted], 60_000);
    const got = reader.got;
    const missing = [...wanted].filter((id) => !got.has(id));
    expect(missing).toEqual([]);
    for (const r of got.values()) {
      expect(r.status?.ok).toBe(true);
      expect(r.cluster_status?.coordinator_instance).toBe(coordinator.instance);
    }
    expect(coordinator.stats.frames).toBeGreaterThanOrEqual(FRAMES);
    expect(coordinator.stats.malformed).toBeGreaterThan(FRAMES / 10);
    // Unreadable frames were answered only up to the per-second budget.
    expect(coordinator.stats.unanswered).toBeGreaterThan(0);
    sock.close();
  });

  it('refuses a frame over the limit with FRAME_TOO_LARGE and still serves the sender', async () => {
    const sock = new zmq.Dealer({ linger: 0 });
    sock.connect(address);
    const reader = replyReader(sock);
    await sock.send(Buffer.alloc(MAX_FRAME + 1, 7));
    await sock.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: 77, hosts: {} } }));
    await reader.until([77], 10_000);
    const { got, other } = reader;
    expect(other.map((r) => r.status?.code)).toContain(ErrorCode.FRAME_TOO_LARGE);
    expect(other.find((r) => r.status?.code === ErrorCode.FRAME_TOO_LARGE)?.status?.message).toMatch(
      new RegExp(`${MAX_FRAME + 1} bytes exceeds the limit of ${MAX_FRAME} bytes`),
    );
    expect(got.get(77)?.status?.ok).toBe(true);
    sock.close();
  });

  it('drops a connection that sends far over the limit, and others go on', async () => {
    const before = coordinator.stats.frames;
    const big = new zmq.Dealer({ linger: 0 });
    big.connect(address);
    await big.send(Buffer.alloc(MAX_FRAME * 8, 1)); // libzmq's hard cap: never reaches the coordinator
    const sock = new zmq.Dealer({ linger: 0 });
    sock.connect(address);
    const reader = replyReader(sock);
    await sock.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: 78, cluster_status: {} } }));
    await reader.until([78], 10_000);
    const { got } = reader;
    expect(got.get(78)?.status?.ok).toBe(true);
    expect(coordinator.stats.frames).toBe(before + 1);
    big.close();
    sock.close();
  });
});
