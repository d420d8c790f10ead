// The CLI's coordinator client against a real ZeroMQ peer on loopback: an
// unreachable coordinator fails after OPERATOR_TIMEOUT_MS; one that is
// connected but slow to answer (a loaded machine) is waited for; one that dies
// while a request is under way fails it at once.
import * as zmq from 'zeromq';
import { afterEach, describe, expect, it } from 'vitest';
import { JobFollower } from '../../src/cli/job-follower.js';
import { OPERATOR_TIMEOUT_MS, OperatorClient } from '../../src/cli/operator-client.js';
import { RankOutputWriter } from '../../src/cli/rank-output-writer.js';
import { RankOutput_Stream } from '../../src/gen/proto.js';
import { OK_STATUS, coordinatorInboundCodec, operatorReplyCodec } from '../../src/protocol/messages.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { freePort } from '../helpers/free-port.js';

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** A coordinator stand-in that answers every operator request after `delayMs`. */
async function slowCoordinator(delayMs: number): Promise<string> {
  const address = `tcp://127.0.0.1:${await freePort()}`;
  const router = new zmq.Router({ linger: 0 });
  await router.bind(address);
  closers.push(() => router.close());
  void (async () => {
    try {
      for await (const [peer, frame] of router) {
        const request = coordinatorInboundCodec.decode(frame!).operator!;
        setTimeout(() => {
          const reply = operatorReplyCodec.encode({ version: PROTOCOL_VERSION, reply_to: request.request_id, status: OK_STATUS, final: true });
          void router.send([peer!, reply]).catch(() => undefined);
        }, delayMs);
      }
    } catch {
      // closed
    }
  })();
  return address;
}

describe('operator client deadlines', () => {
  it('waits past the short deadline for a coordinator that is connected but slow', async () => {
    const client = new OperatorClient(await slowCoordinator(OPERATOR_TIMEOUT_MS + 1_500));
    closers.push(() => client.close());
    const t0 = Date.now();
    const reply = await client.request({ cluster_status: {} });
    expect(reply.status?.ok).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(OPERATOR_TIMEOUT_MS);
  }, 20_000);

  it('fails after the short deadline, saying so, when nothing listens', async () => {
    const client = new OperatorClient(`tcp://127.0.0.1:${await freePort()}`);
    closers.push(() => client.close());
    await expect(client.request({ cluster_status: {} })).rejects.toThrow(/no answer from the coordinator at tcp:\/\/127\.0\.0\.1:\d+ within 3 s \(is it running/);
  }, 20_000);

  it('fails a long request (a checkpoint) when nothing listens, after OPERATOR_UNREACHED_TIMEOUT_MS', async () => {
    const client = new OperatorClient(`tcp://127.0.0.1:${await freePort()}`);
    closers.push(() => client.close());
    // (Before, it waited out the checkpoint's 15 min deadline: far past this test's timeout.)
    await expect(client.request({ cluster_status: {} }, { timeoutMs: 15 * 60_000 })).rejects.toThrow(/no answer from the coordinator at tcp:\/\/127\.0\.0\.1:\d+ within 10 s \(is it running/);
  }, 20_000);

  it('waits out a long request of a coordinator that is connected but slow, past the connected deadline', async () => {
    const client = new OperatorClient(await slowCoordinator(OPERATOR_TIMEOUT_MS + 1_500));
    closers.push(() => client.close());
    const reply = await client.request({ cluster_status: {} }, { timeoutMs: 15 * 60_000 });
    expect(reply.status?.ok).toBe(true);
  }, 20_000);

  it('fails at once, saying so, when the coordinator dies in the middle of a long request', async () => {
    const address = `tcp://127.0.0.1:${await freePort()}`;
    const router = new zmq.Router({ linger: 0 });
    await router.bind(address);
    closers.push(() => (router.closed ? undefined : router.close()));
    // It takes the request, says it is under way, and dies.
    void (async () => {
      const [peer, frame] = await router.receive();
      const request = coordinatorInboundCodec.decode(frame!).operator!;
      await router.send([peer!, operatorReplyCodec.encode({ version: PROTOCOL_VERSION, reply_to: request.request_id, status: OK_STATUS, final: false })]);
      setTimeout(() => router.close(), 200);
    })();
    const client = new OperatorClient(address);
    closers.push(() => client.close());
    const notices: unknown[] = [];
    // (Without noticing, it would wait out the 15 min deadline: far past this test's timeout.)
    await expect(client.request({ cluster_status: {} }, { timeoutMs: 15 * 60_000, onNotice: (r) => notices.push(r) })).rejects.toThrow(
      /lost the connection to the coordinator at tcp:\/\/127\.0\.0\.1:\d+ before it answered \(it stopped or restarted\)/,
    );
    expect(notices).toHaveLength(1);
  }, 20_000);
});

describe('a job follower', () => {
  it('forgets the follows its renewals replaced, and hears the output of the newest', async () => {
    // The coordinator keeps the newest follow per client and job: it answers each renewal with a
    // notice, then sends output for it (and only for it), never a final reply: the job runs on.
    const address = `tcp://127.0.0.1:${await freePort()}`;
    const router = new zmq.Router({ linger: 0 });
    await router.bind(address);
    closers.push(() => router.close());
    let renewals = 0;
    void (async () => {
      try {
        for await (const [peer, frame] of router) {
          const request = coordinatorInboundCodec.decode(frame!).operator!;
          if (request.body !== 'follow_job') continue; // (the follower's counts of output received)
          renewals++;
          const notice = (extra: object) => operatorReplyCodec.encode({ version: PROTOCOL_VERSION, reply_to: request.request_id, status: OK_STATUS, final: false, ...extra });
          await router.send([peer!, notice({ job: { job: { id: 'j' } } })]);
          await router.send([peer!, notice({ job_output: { job_id: 'j', rank: 0, stream: RankOutput_Stream.STDOUT, data: Buffer.from(`line ${renewals}\n`) } })]);
        }
      } catch {
        // closed
      }
    })();
    const client = new OperatorClient(address);
    closers.push(() => client.close());
    const lines: string[] = [];
    const follower = new JobFollower(client, new RankOutputWriter(false, (_stream, data) => lines.push(data.toString())), true, 'test', 50);
    closers.push(() => follower.stop());
    follower.follow('j');
    await new Promise((r) => setTimeout(r, 1_500));
    expect(renewals).toBeGreaterThan(5);
    // Only the newest follow, and perhaps one renewal not answered yet, are still open.
    expect(client.openRequests).toBeLessThanOrEqual(2);
    expect(lines.join('')).toContain(`line ${renewals - 1}\n`);
    follower.stop();
    expect(client.openRequests).toBe(0);
  }, 20_000);

  it('counts output as taken once it is written out, not when it arrives (a stdout pipe not read holds the job back)', async () => {
    const address = `tcp://127.0.0.1:${await freePort()}`;
    const router = new zmq.Router({ linger: 0 });
    await router.bind(address);
    closers.push(() => router.close());
    const counts: number[] = [];
    const chunk = Buffer.alloc(512 * 1024, 'x');
    let sent = false;
    void (async () => {
      try {
        for await (const [peer, frame] of router) {
          const request = coordinatorInboundCodec.decode(frame!).operator!;
          if (request.body === 'output_received') counts.push(Number(request.output_received!.bytes));
          if (request.body !== 'follow_job' || sent) continue;
          sent = true;
          const notice = (extra: object) => operatorReplyCodec.encode({ version: PROTOCOL_VERSION, reply_to: request.request_id, status: OK_STATUS, final: false, ...extra });
          for (let i = 0; i < 6; i++) await router.send([peer!, notice({ job_output: { job_id: 'j', rank: 0, stream: RankOutput_Stream.STDOUT, data: chunk } })]);
        }
      } catch {
        // closed
      }
    })();
    const client = new OperatorClient(address);
    closers.push(() => client.close());
    const pending: (() => void)[] = [];
    const follower = new JobFollower(client, new RankOutputWriter(false, (_stream, _data, written) => pending.push(written)), true, 'test', 50);
    closers.push(() => follower.stop());
    follower.follow('j');
    await new Promise((r) => setTimeout(r, 600));
    expect(pending).toHaveLength(6); // all arrived, none written out yet
    expect(Math.max(...counts)).toBe(0);
    for (const written of pending.splice(0)) written();
    await new Promise((r) => setTimeout(r, 300));
    expect(Math.max(...counts)).toBe(6 * chunk.length);
  }, 20_000);

});
