// A process on a compute node that is not a rank but says it is one: run inside
// a namespace host by test/integration/rank-token.test.ts. Prints one JSON line.
//   spoof-rank.mjs agent SOCKET JOB RANK SIZE TOKEN   hello on the agent's rank socket; prints the reply's status
//   spoof-rank.mjs peer HOST PORT JOB SRC              a peer HELLO frame to a rank's data listener, its hash made
//                                                      from the job id alone; prints the bytes that came back
import net from 'node:net';
import { Codec } from '../../dist/src/protocol/codec.js';
import { RankMessage_TYPE } from '../../dist/src/gen/proto.js';
import { PROTOCOL_VERSION } from '../../dist/src/protocol/version.js';

const [mode, ...args] = process.argv.slice(2);
const TIMEOUT_MS = 10_000;

function done(result) {
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
}
setTimeout(() => done({ timedOut: true }), TIMEOUT_MS).unref();

if (mode === 'agent') {
  const [socketName, jobId, rank, size, token] = args;
  const codec = new Codec(RankMessage_TYPE);
  const body = codec.encode({
    version: PROTOCOL_VERSION,
    request_id: 1,
    hello: { job_id: jobId, rank: Number(rank), size: Number(size), pid: process.pid, listen_port: 1, runtime_version: 'spoof', token },
  });
  const header = Buffer.alloc(4);
  header.writeUInt32LE(body.length);
  const s = net.connect({ path: '\0' + socketName });
  let rx = Buffer.alloc(0);
  const reply = () => {
    if (rx.length < 4 || rx.length < 4 + rx.readUInt32LE(0)) return { replies: 0 };
    const m = codec.decode(rx.subarray(4, 4 + rx.readUInt32LE(0)));
    return { code: m.status?.code ?? 0, message: m.status?.message ?? '', endpoints: Boolean(m.endpoints) };
  };
  s.on('data', (d) => (rx = Buffer.concat([rx, d])));
  s.on('error', (e) => done({ error: e.message }));
  s.on('close', () => done({ closed: true, ...reply() }));
  s.write(Buffer.concat([header, body]));
  // A hello that is let in is answered only once the job's table is complete: the connection stays open.
  setTimeout(() => done({ closed: false, ...reply() }), 3000).unref();
} else if (mode === 'peer') {
  const [host, port, jobId, src] = args;
  // The job hash exactly as src/runtime/init.c makes it from the job id alone (its FNV-1a style loop and
  // starting value); the runtime goes on over a separator and the rank token when it has one.
  let hash = 1469598103934665603n;
  for (const b of Buffer.from(jobId)) hash = ((hash ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  const hello = Buffer.alloc(64); // fmpi_hdr (src/runtime/fmpi.h), host byte order
  hello.writeUInt32LE(1, 0); // FMPI_F_HELLO
  hello.writeInt32LE(Number(src), 8);
  hello.writeBigUInt64LE(hash, 48); // offset: the job hash
  const s = net.connect({ host, port: Number(port) });
  let bytes = 0;
  s.on('data', (d) => (bytes += d.length));
  s.on('error', (e) => done({ error: e.message, bytes }));
  s.on('close', () => done({ closed: true, bytes }));
  s.on('connect', () => s.write(hello));
  setTimeout(() => done({ closed: false, bytes }), 3000).unref();
} else {
  process.stderr.write('usage: spoof-rank.mjs agent SOCKET JOB RANK SIZE TOKEN | peer HOST PORT JOB SRC\n');
  process.exit(2);
}
