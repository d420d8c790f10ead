// 10,000 random and mutated frames from hostile "ranks" to a real agent rank
// channel on an abstract unix socket: the channel neither crashes nor leaks
// the bad connections' ranks, and a well-behaved rank connected before, during
// and after the storm is served throughout.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RankChannelServer } from '../../src/agent/rank-channel.js';
import { RankMessage_TYPE, type RankMessage, type RankMessageInit } from '../../src/gen/proto.js';
import { Codec } from '../../src/protocol/codec.js';
import { uniqueSocketName, until } from '../runtime/rank-harness.js';
import { mulberry32, mutate, randomBytesFrom } from './fuzz-input.js';

const FRAMES = 10_000;
const FRAMES_PER_CONNECTION = 20;
const codec = new Codec<RankMessage, RankMessageInit>(RankMessage_TYPE);
const V = { major: 1, minor: 0 };

function framed(body: Uint8Array): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32LE(body.length);
  return Buffer.concat([h, body]);
}

/** Valid messages a rank could send, as material for mutations. */
function validBodies(rank: number): Uint8Array[] {
  const hello = { job_id: 'fz', rank, size: 64, pid: 1000 + rank, listen_port: 4000 + rank, runtime_version: 'fuzz' };
  return [
    codec.encode({ version: V, request_id: 1, hello }),
    codec.encode({ version: V, finalized: { sent_messages: 3, received_messages: 3 } }),
    codec.encode({ version: V, exit: { exit_code: 0 } }),
    codec.encode({ version: V, abort: { error_code: 3, message: 'x' } }),
    codec.encode({ version: V, reply_to: 7, status: { ok: true }, flush_reply: { drained_messages: 1, drained_bytes: 8 } }),
    codec.encode({ version: V, request_id: 2, endpoints: { job_id: 'fz', endpoints: [{ rank: 0, address: '127.0.0.1', port: 1 }] } }),
  ];
}

/** Connects, writes the bytes in a few chunks, closes after a short while; resolves once closed. */
function hostile(name: string, chunks: Buffer[]): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ path: '\0' + name });
    s.on('error', () => undefined);
    s.on('close', () => resolve());
    s.on('connect', () => {
      for (const c of chunks) s.write(c);
      setTimeout(() => s.destroy(), 20);
    });
  });
}

describe('rank channel under random and mutated frames', () => {
  const name = uniqueSocketName();
  const server = new RankChannelServer({ socketName: name, maxFrameBytes: 64 * 1024 });
  let protocolErrors = 0;
  server.on('protocolError', () => protocolErrors++);
  beforeAll(() => server.listen());
  afterAll(() => server.close());

  it('serves a well-behaved rank before, during and after 10,000 bad frames', async () => {
    const good = net.connect({ path: '\0' + name });
    let goodReplies = Buffer.alloc(0);
    good.on('data', (d) => (goodReplies = Buffer.concat([goodReplies, d])));
    good.write(framed(codec.encode({ version: V, request_id: 1, hello: { job_id: 'good', rank: 0, size: 1, pid: 42, listen_port: 5000, runtime_version: 't' } })));
    await until(() => server.ranks('good').length === 1);

    const rand = mulberry32(0xf3a7);
    const connections: Promise<void>[] = [];
    for (let sent = 0, conn = 0; sent < FRAMES; conn++) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < FRAMES_PER_CONNECTION && sent < FRAMES; i++, sent++) {
        const bodies = validBodies(conn % 64);
        const kind = rand();
        if (kind < 0.3) chunks.push(randomBytesFrom(rand, Math.floor(rand() * 64)));          // garbage, unframed
        else if (kind < 0.6) chunks.push(framed(randomBytesFrom(rand, Math.floor(rand() * 64)))); // framed garbage
        else if (kind < 0.9) chunks.push(framed(mutate(rand, bodies[Math.floor(rand() * bodies.length)])));
        else chunks.push(mutate(rand, framed(bodies[Math.floor(rand() * bodies.length)])));        // broken framing
      }
      connections.push(hostile(name, chunks));
      if (connections.length % 50 === 0) await Promise.all(connections.splice(0));
    }
    await Promise.all(connections);

    // Every hostile connection is gone with whatever rank it claimed to be.
    await until(() => server.ranks('fz').length === 0);
    expect(protocolErrors).toBeGreaterThan(0);
    // The good rank is still there and still served: the endpoint table reaches it.
    expect(server.ranks('good').map((r) => r.rank)).toEqual([0]);
    expect(server.sendEndpoints('good', [{ rank: 0, address: '127.0.0.1', port: 5000 }])).toEqual([0]);
    await until(() => goodReplies.length >= 4 && goodReplies.length >= 4 + goodReplies.readUInt32LE(0));
    const reply = codec.decode(goodReplies.subarray(4, 4 + goodReplies.readUInt32LE(0)));
    expect(reply.reply_to).toBe(1);
    expect(reply.endpoints?.endpoints).toEqual([{ rank: 0, address: '127.0.0.1', port: 5000 }]);
    // And a rank arriving after the storm is accepted.
    const late = net.connect({ path: '\0' + name });
    late.write(framed(codec.encode({ version: V, request_id: 1, hello: { job_id: 'good', rank: 1, size: 2, pid: 43, listen_port: 5001, runtime_version: 't' } })));
    await until(() => server.ranks('good').length === 2);
    good.destroy();
    late.destroy();
    await until(() => server.ranks('good').length === 0);
  }, 120_000);
});
