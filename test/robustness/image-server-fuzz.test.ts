// 10,000 random and mutated frames from a hostile "fetcher" to a real
// ImageServer over real ZeroMQ: the server neither crashes nor hangs, answers
// every well-formed request sent among them with the right bytes, and serves a
// whole fetch afterwards.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import * as zmq from 'zeromq';
import { afterAll, describe, expect, it } from 'vitest';
import type { ImageTransferMessage, ImageTransferMessageInit } from '../../src/gen/proto.js';
import { dirRef } from '../../src/images/image-client.js';
import { fetchImageDir } from '../../src/images/image-fetcher.js';
import { imageTransferCodec } from '../../src/images/image-messages.js';
import { ImageServer } from '../../src/images/image-server.js';
import { readManifest, verifyImageDir, writeManifest } from '../../src/images/manifest.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { BIG_FILE_NAME, FIXTURE_META, makeRankImage, tempDirs } from '../images/image-dir-fixture.js';
import { mulberry32, mutate, randomBytesFrom } from './fuzz-input.js';

const FRAMES = 10_000;
const SEED = 0x1ea6e;
/** Every this many frames, one well-formed chunk request whose reply is checked. */
const GOOD_EVERY = 100;
const GOOD_CHUNK_BYTES = 64 * 1024;
const BIG_BYTES = 4 * 1024 * 1024;
const temps = tempDirs();
const cleanups: (() => Promise<void> | void)[] = [];

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await temps.removeAll();
});

describe('image server under random and mutated frames', () => {
  it('answers every well-formed request among 10,000 bad frames, and serves a whole fetch after them', async () => {
    const root = await temps.make('fuzz');
    const dir = await makeRankImage(root, BIG_BYTES);
    await writeManifest(dir, FIXTURE_META);
    const big = await readFile(join(dir, BIG_FILE_NAME));
    const server = await ImageServer.bind('tcp://127.0.0.1:0', root);
    cleanups.push(() => server.close());
    const dealer = new zmq.Dealer({ linger: 0, receiveTimeout: 200 });
    dealer.connect(server.address);
    cleanups.push(() => dealer.close());

    const ref = dirRef(FIXTURE_META.jobId, FIXTURE_META.epoch, FIXTURE_META.rank);
    const encode = (m: ImageTransferMessageInit) => Buffer.from(imageTransferCodec.encode({ version: PROTOCOL_VERSION, ...m }));
    // What mutations start from: one of each request the server knows, with ids and receipts.
    const templates: ImageTransferMessageInit[] = [
      { request_id: 11, manifest_request: { dir: ref } },
      { request_id: 12, received: [3, 4], chunk_request: { dir: ref, name: BIG_FILE_NAME, offset: 1024 * 1024, length: 1024 * 1024 } },
      { request_id: 13, chunk_request: { dir: ref, name: 'mm-1.img', offset: 0, length: 300 * 1024, with_crc32: true } },
      { request_id: 14, chunk_crcs_request: { dir: ref, name: BIG_FILE_NAME, chunk_bytes: 256 * 1024, first_chunk: 2, chunks: 8 } },
      { request_id: 15, received: [12, 13, 99], receipts_request: {} },
    ].map((m) => ({ ...m }));

    const replies = new Map<number, { message: ImageTransferMessage; data?: Buffer }>();
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        let frames: Buffer[];
        try {
          frames = await dealer.receive();
        } catch {
          continue; // receiveTimeout: look at `stop` again
        }
        const message = imageTransferCodec.decode(frames[0]!);
        replies.set(Number(message.reply_to), { message, data: frames[1] });
      }
    })();

    const rand = mulberry32(SEED);
    const good = new Map<number, number>(); // request id -> offset asked for
    for (let i = 0; i < FRAMES; i++) {
      let frame: Buffer;
      if (i % GOOD_EVERY === 0) {
        const id = 1_000_000 + i;
        const offset = Math.floor(rand() * (BIG_BYTES / GOOD_CHUNK_BYTES)) * GOOD_CHUNK_BYTES;
        good.set(id, offset);
        // (its receipt comes with the next good request, as a fetcher's would)
        frame = encode({ request_id: id, received: [id - GOOD_EVERY], chunk_request: { dir: ref, name: BIG_FILE_NAME, offset, length: GOOD_CHUNK_BYTES } });
      } else if (rand() < 0.25) {
        frame = randomBytesFrom(rand, Math.floor(rand() * 200));
      } else {
        frame = mutate(rand, encode(templates[Math.floor(rand() * templates.length)]!));
      }
      await dealer.send(frame);
    }

    const deadline = Date.now() + 20_000;
    while ([...good.keys()].some((id) => !replies.has(id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await loop;
    for (const [id, offset] of good) {
      const r = replies.get(id);
      expect(r, `request ${id}`).toBeDefined();
      expect(r!.message.status?.ok, `request ${id}: ${r!.message.status?.message}`).toBe(true);
      expect(r!.message.chunk_reply?.offset).toBe(offset);
      expect(crc32(r!.data!)).toBe(crc32(big.subarray(offset, offset + GOOD_CHUNK_BYTES)));
    }
    // Every reply answers a request: a refusal says why.
    for (const [id, r] of replies) if (!r.message.status?.ok) expect(r.message.status?.message, `reply to ${id}`).toBeTruthy();

    const into = join(await temps.make('dst'), 'rank-1');
    await fetchImageDir({ from: server.address, ...FIXTURE_META, into });
    await verifyImageDir(into, await readManifest(into));
    const stats = server.chunkBuffers.stats();
    console.log(`image server fuzz: ${replies.size} replies to ${FRAMES} frames; chunk buffers ${JSON.stringify(stats)}; rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
  }, 120_000);
});
