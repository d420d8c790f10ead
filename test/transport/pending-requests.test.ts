// A request's deadline, with real timers and a real socket: an unanswered request
// fails with TIMEOUT naming what was asked; but when this process stood still
// past the deadline while the reply already waited in its socket (Node runs the
// late timer before it reads the socket), the reply that is read next settles it.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/gen/proto.js';
import { PendingRequests } from '../../src/common/pending-requests.js';

const sockets: Socket[] = [];
let server: Server | undefined;
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

/** A loopback pair: `onData` gets what the client writes. */
async function pair(onData: (text: string) => void): Promise<Socket> {
  server = createServer((s) => {
    sockets.push(s);
    s.setEncoding('utf8').on('data', onData);
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const client = connect(port, '127.0.0.1');
  sockets.push(client);
  await new Promise<void>((r) => client.once('connect', () => r()));
  await new Promise((r) => setTimeout(r, 50)); // the server side has accepted
  return client;
}

function standStill(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // the event loop is blocked, as by a synchronous write to a slow disk
  }
}

describe('a request deadline', () => {
  it('fails an unanswered request with TIMEOUT naming it', async () => {
    const requests = new PendingRequests<string>();
    const { reply } = requests.open('heartbeat', 100);
    await expect(reply).rejects.toMatchObject({ code: ErrorCode.TIMEOUT, message: 'heartbeat: no answer within 100 ms' });
    expect(requests.size).toBe(0);
  });

  it('is settled by a reply that waited unread in the socket while this process stood still past the deadline', async () => {
    const requests = new PendingRequests<string>();
    let id = 0;
    const client = await pair((text) => requests.settle(id, text));
    // From the check phase: the loop's next turn runs the late timer before it polls the socket.
    const outcome = await new Promise<Promise<string>>((resolve) =>
      setImmediate(() => {
        const opened = requests.open('heartbeat', 200);
        id = opened.id;
        client.write('ack');
        standStill(700); // the reply arrives meanwhile; the deadline passes
        resolve(
          opened.reply.then(
            (r) => `reply ${r}`,
            (err: Error) => `error ${err.message}`,
          ),
        );
      }),
    );
    expect(await outcome).toBe('reply ack');
  });
});
