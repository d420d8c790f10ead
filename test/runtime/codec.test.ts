// The C codec generated from proto/rank.proto (scripts/gen-c-proto.mjs +
// src/runtime/fmpi-pb.c) against protobufjs: decode what protobufjs encoded,
// re-encode, and get the same message back (compared as protobufjs objects
// with defaults: protobufjs writes explicitly set zero fields, the C codec
// omits default values as proto3 allows, so bytes differ only by those).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, RankMessage_TYPE, type RankMessage, type RankMessageInit } from '../../src/gen/proto.js';
import { Codec } from '../../src/protocol/codec.js';
import { protoRoot } from '../../src/protocol/proto-root.js';
import { BUILD_DIR, ROOT, buildRuntime, makeTempDir } from './rank-harness.js';

describe('rank protocol: C codec is byte-compatible with protobufjs', () => {
  const tmp = makeTempDir();
  const codec = new Codec<RankMessage, RankMessageInit>(RankMessage_TYPE);
  let program: string;

  beforeAll(() => {
    buildRuntime();
    program = join(tmp.dir, 'codec-roundtrip');
    const obj = join(BUILD_DIR, 'obj', 'runtime');
    execFileSync('gcc', ['-O2', '-Wall', '-Werror', join(ROOT, 'test/runtime/programs/codec-roundtrip.c'),
      '-I', join(ROOT, 'src/runtime'), join(obj, 'fmpi-pb.o'), join(obj, 'rank-proto.o'), '-o', program]);
  });
  afterAll(() => tmp.remove());

  const messages: [string, RankMessageInit][] = [
    ['hello', { version: { major: 1, minor: 0 }, request_id: 7, hello: { job_id: 'jöb-1', rank: 3, size: 8, pid: 1, listen_port: 40001, runtime_version: 'x', resumed_epoch: 2 ** 40 } }],
    ['endpoints', { version: { major: 1, minor: 2 }, reply_to: 7, status: { ok: true, code: ErrorCode.OK, message: '' },
      endpoints: { job_id: 'j', endpoints: [{ rank: 0, address: '198.18.0.1', port: 1 }, { rank: 1, address: '127.0.0.1', port: 65535 }] } }],
    ['exit', { version: { major: 1, minor: 0 }, request_id: 9, exit: { exit_code: -1 } }],
    ['error reply', { version: { major: 1, minor: 0 }, reply_to: 3, status: { ok: false, code: ErrorCode.VERSION_MISMATCH, message: 'no' }, flush_reply: { epoch: 5, drained_messages: 12, drained_bytes: 2 ** 33, channels_closed: 6, unexpected_messages: 1 } }],
    ['empty body', { version: { major: 1, minor: 0 }, request_id: 1, finalized: {} }],
  ];

  it('round-trips every body kind to the same bytes', () => {
    const hex = messages.map(([, m]) => Buffer.from(codec.encode(m)).toString('hex'));
    const type = protoRoot().lookupType(RankMessage_TYPE);
    const asObject = (h: string) => type.toObject(type.decode(Buffer.from(h, 'hex')), { defaults: true, oneofs: true });
    const out = execFileSync(program, hex, { encoding: 'utf8' }).trim().split('\n');
    expect(out).toHaveLength(messages.length);
    out.forEach((line, i) => {
      const cHex = line.replace(/^.* hex=/, '');
      expect(asObject(cHex), messages[i][0]).toEqual(asObject(hex[i]));
    });
    expect(out[1]).toContain('endpoints=2 last=127.0.0.1:65535 status=1/0/');
    expect(out[2]).toContain('exit_code=-1');
    expect(out[3]).toContain(`status=0/${ErrorCode.VERSION_MISMATCH}/no`);
  });

  it('skips unknown fields and refuses truncated input', () => {
    // field 99 (varint) is unknown to the schema; a truncated length-delimited field is malformed
    const known = Buffer.from(codec.encode({ request_id: 5, exit: { exit_code: 3 } }));
    const withUnknown = Buffer.concat([Buffer.from([0x98, 0x06, 0x01]), known]);
    const out = execFileSync(program, [withUnknown.toString('hex'), known.subarray(0, known.length - 1).toString('hex')], { encoding: 'utf8' }).trim().split('\n');
    expect(out[0]).toBe(`case=12 request_id=5 exit_code=3 hex=${known.toString('hex')}`);
    expect(out[1]).toBe('malformed');
  });
});
