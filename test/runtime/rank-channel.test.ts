// RankChannelServer against raw clients: frame validation and refusals.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RankChannelServer } from '../../src/agent/rank-channel.js';
import { ErrorCode, RankMessage_TYPE, type RankMessage, type RankMessageInit } from '../../src/gen/proto.js';
import { Codec } from '../../src/protocol/codec.js';
import type { FerryError } from '../../src/common/ferry-error.js';
import { uniqueSocketName, until } from './rank-harness.js';

const codec = new Codec<RankMessage, RankMessageInit>(RankMessage_TYPE);

function frame(m: RankMessageInit): Buffer {
  const body = codec.encode(m);
  const h = Buffer.alloc(4);
  h.writeUInt32LE(body.length);
  return Buffer.concat([h, body]);
}

/** A raw client: sends bytes, collects decoded replies until the server closes. */
async function exchange(name: string, data: Buffer): Promise<RankMessage[]> {
  const s = net.connect({ path: '\0' + name });
  let rx = Buffer.alloc(0);
  s.on('data', (d) => (rx = Buffer.concat([rx, d])));
  s.write(data);
  await new Promise((r) => s.on('close', r));
  const out: RankMessage[] = [];
  while (rx.length >= 4) {
    const len = rx.readUInt32LE(0);
    out.push(codec.decode(rx.subarray(4, 4 + len)));
    rx = rx.subarray(4 + len);
  }
  return out;
}

describe('RankChannelServer: protocol checks', () => {
  const name = uniqueSocketName();
  const server = new RankChannelServer({ socketName: name, maxFrameBytes: 4096 });
  const errors: FerryError[] = [];
  server.on('protocolError', (e) => errors.push(e));
  beforeAll(() => server.listen());
  afterAll(() => server.close());

  const hello = { job_id: 'j', rank: 0, size: 2, pid: 5, listen_port: 1234, runtime_version: 't' };

  it('refuses another major version with VERSION_MISMATCH and closes', async () => {
    const replies = await exchange(name, frame({ version: { major: 2, minor: 0 }, request_id: 1, hello }));
    expect(replies).toHaveLength(1);
    expect(replies[0].reply_to).toBe(1);
    expect(replies[0].status?.code).toBe(ErrorCode.VERSION_MISMATCH);
    expect(replies[0].status?.message).toMatch(/speaks Ferry protocol 2\.0/);
    expect(errors.at(-1)?.code).toBe(ErrorCode.VERSION_MISMATCH);
  });

  it('closes on a frame above the size limit and on a malformed frame', async () => {
    const big = Buffer.alloc(4);
    big.writeUInt32LE(5000);
    expect(await exchange(name, big)).toEqual([]);
    expect(errors.at(-1)?.code).toBe(ErrorCode.FRAME_TOO_LARGE);
    expect(await exchange(name, Buffer.from([2, 0, 0, 0, 0x0a, 0x05]))).toEqual([]);
    expect(errors.at(-1)?.code).toBe(ErrorCode.MALFORMED);
  });

  it('refuses a second connection for a rank that is connected', async () => {
    const first = net.connect({ path: '\0' + name });
    first.write(frame({ version: { major: 1, minor: 0 }, request_id: 1, hello }));
    await until(() => server.ranks('j').length === 1);
    const replies = await exchange(name, frame({ version: { major: 1, minor: 0 }, request_id: 1, hello }));
    expect(replies[0].status?.ok).toBe(false);
    expect(replies[0].status?.message).toMatch(/already connected/);
    first.destroy();
    await until(() => server.ranks('j').length === 0);
  });
});

describe('RankChannelServer: rank tokens', () => {
  const name = uniqueSocketName();
  const server = new RankChannelServer({
    socketName: name,
    authenticate: (jobId, rank, token) => (token === `secret-${jobId}` ? undefined : `no token for rank ${rank} of ${jobId}`),
  });
  const hellos: string[] = [];
  server.on('hello', (info) => hellos.push(`${info.jobId}/${info.rank}`));
  beforeAll(() => server.listen());
  afterAll(() => server.close());

  const hello = (token: string) => frame({ version: { major: 1, minor: 0 }, request_id: 1, hello: { job_id: 'j', rank: 0, size: 2, pid: 5, listen_port: 1234, runtime_version: 't', token } });

  it('refuses a hello without the token before it takes the rank, and closes; the rank itself then gets in', async () => {
    const replies = await exchange(name, hello('guess'));
    expect(replies.map((r) => [r.status?.code, r.status?.message])).toEqual([[ErrorCode.PERMISSION_DENIED, 'no token for rank 0 of j']]);
    expect(hellos).toEqual([]);
    const rank = net.connect({ path: '\0' + name });
    rank.write(hello('secret-j'));
    await until(() => server.ranks('j').length === 1);
    expect(hellos).toEqual(['j/0']);
    rank.destroy();
    await until(() => server.ranks('j').length === 0);
  });

  it('checks again, once asked, a hello let in before its rank was known (a restarted agent), and closes it if refused now', async () => {
    const name2 = uniqueSocketName();
    let known = false; // until the agent has taken its ranks back, nothing is known to refuse
    const early = new RankChannelServer({ socketName: name2, authenticate: (_j, r, token) => (known && token !== 'secret' ? `no token for rank ${r}` : undefined) });
    await early.listen();
    try {
      const replies = exchange(name2, hello('guess'));
      await until(() => early.ranks('j').length === 1);
      known = true;
      expect(early.revalidate('j', 0)).toBe(false);
      expect((await replies).map((r) => [r.status?.code, r.status?.message])).toEqual([[ErrorCode.PERMISSION_DENIED, 'no token for rank 0']]);
      expect(early.ranks('j')).toEqual([]);
      expect(early.revalidate('j', 0)).toBe(true); // nothing connected as it: nothing to refuse
    } finally {
      await early.close();
    }
  });

  it('closes a connection whose hello the agent refuses, so it keeps no rank from saying hello later', async () => {
    server.once('hello', (info) => server.refuseHello(info.jobId, info.rank, ErrorCode.UNKNOWN_RANK, 'not here'));
    const replies = await exchange(name, hello('secret-j')); // resolves once the server has closed it
    expect(replies.map((r) => r.status?.code)).toEqual([ErrorCode.UNKNOWN_RANK]);
    expect(server.ranks('j')).toEqual([]);
    const again = net.connect({ path: '\0' + name });
    again.write(hello('secret-j'));
    await until(() => server.ranks('j').length === 1);
    again.destroy();
    await until(() => server.ranks('j').length === 0);
  });
});

describe('RankChannelServer: a flush of a rank that is not connected', () => {
  const name = uniqueSocketName();
  const server = new RankChannelServer({ socketName: name });
  beforeAll(() => server.listen());
  afterAll(() => server.close());

  it('says whether the rank never connected (not in MPI_Init, or not built with ferry mpicc) or lost its connection', async () => {
    await expect(server.flush('n', 1, [0])).rejects.toThrow(
      "rank 0 of job n has not connected to Ferry's MPI runtime here: it is not in MPI_Init yet (try again once it is), or its program is not linked with the runtime (build it with ferry mpicc)",
    );
    const rank = net.connect({ path: '\0' + name });
    rank.write(frame({ version: { major: 1, minor: 0 }, request_id: 1, hello: { job_id: 'n', rank: 0, size: 1, pid: 5, listen_port: 1234, runtime_version: 't' } }));
    await until(() => server.ranks('n').length === 1);
    rank.destroy();
    await until(() => server.ranks('n').length === 0);
    await expect(server.flush('n', 1, [0])).rejects.toThrow('rank 0 of job n is not connected (it lost its connection to the agent)');
    server.forgetRank('n', 0); // it ended
    await expect(server.flush('n', 1, [0])).rejects.toThrow(/has not connected/);
  });

  it('says that a rank is ending when its connection closed after its finalized or exit notice', async () => {
    const notices: [RankMessageInit, string][] = [
      [{ finalized: { sent_messages: 3, received_messages: 3 } }, 'has finished (past MPI_Finalize, its process is exiting)'],
      [{ exit: { exit_code: 3 } }, 'is exiting (it reported exit status 3)'],
    ];
    for (const [i, [notice, how]] of notices.entries()) {
      const rank = net.connect({ path: '\0' + name });
      rank.write(frame({ version: { major: 1, minor: 0 }, request_id: 1, hello: { job_id: 'e', rank: i, size: 2, pid: 6 + i, listen_port: 1234, runtime_version: 't' } }));
      rank.write(frame({ version: { major: 1, minor: 0 }, ...notice }));
      await until(() => server.ranks('e').some((r) => r.rank === i));
      rank.destroy();
      await until(() => !server.ranks('e').some((r) => r.rank === i));
      await expect(server.flush('e', 1, [i])).rejects.toThrow(`rank ${i} of job e ${how}`);
      server.forgetRank('e', i); // its exit was seen
      await expect(server.flush('e', 1, [i])).rejects.toThrow(/has not connected/);
    }
  });
});
