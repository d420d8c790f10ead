// A rank over a raw connection to an agent's rank channel (src/agent/rank-channel.ts): the frames the
// runtime would send (a little-endian length, then a RankMessage), for tests that drive the channel
// without a C rank.
import net from 'node:net';
import { RankMessage_TYPE, type RankMessage, type RankMessageInit } from '../../src/gen/proto.js';
import { Codec } from '../../src/protocol/codec.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';

const codec = new Codec<RankMessage, RankMessageInit>(RankMessage_TYPE);

function frame(m: RankMessageInit): Buffer {
  const body = codec.encode({ version: PROTOCOL_VERSION, ...m });
  const h = Buffer.alloc(4);
  h.writeUInt32LE(body.length);
  return Buffer.concat([h, body]);
}

/** Connects to the channel at abstract socket `socketName`, sends `first` (a hello, an attach), and hands each message it gets to `onMessage`. */
export function rawRank(socketName: string, first: RankMessageInit, onMessage: (m: RankMessage, send: (reply: RankMessageInit) => void, socket: net.Socket) => void): net.Socket {
  const s = net.connect({ path: '\0' + socketName });
  const send = (m: RankMessageInit) => void s.write(frame(m));
  let rx = Buffer.alloc(0);
  s.on('data', (d) => {
    rx = Buffer.concat([rx, d]);
    while (rx.length >= 4 && rx.length >= 4 + rx.readUInt32LE(0)) {
      const m = codec.decode(rx.subarray(4, 4 + rx.readUInt32LE(0)));
      rx = rx.subarray(4 + rx.readUInt32LE(0));
      onMessage(m, send, s);
    }
  });
  send(first);
  return s;
}
