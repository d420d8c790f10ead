// Agent-to-agent image transfer over real ZeroMQ on 127.0.0.1.
import { execFile } from 'node:child_process';
import { open, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import * as zmq from 'zeromq';
import { FerryError } from '../../src/common/ferry-error.js';
import { ErrorCode } from '../../src/gen/proto.js';
import { hashFile } from '../../src/images/file-durability.js';
import { ImageClient, dirRef } from '../../src/images/image-client.js';
import { IMAGE_CHUNK_ATTEMPTS, fetchImageDir } from '../../src/images/image-fetcher.js';
import { IMAGE_CRCS_MAX_CHUNKS, IMAGE_MAX_CHUNK_BYTES, imageTransferCodec } from '../../src/images/image-messages.js';
import { MANIFEST_FILE_NAME, PART_SUFFIX, rankImageDir } from '../../src/images/image-paths.js';
import { ImageServer, type ImageServerOptions } from '../../src/images/image-server.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { readManifest, verifyImageDir, writeManifest, type Manifest } from '../../src/images/manifest.js';
import { BIG_FILE_BYTES, BIG_FILE_NAME, FIXTURE_META, makeRankImage, tempDirs } from './image-dir-fixture.js';

const execFileP = promisify(execFile);
const temps = tempDirs();
const servers: ImageServer[] = [];
const LOOPBACK = 'tcp://127.0.0.1:0';
/** Short, so a dead peer fails the test quickly; not an assertion on timing. */
const TEST_REQUEST_TIMEOUT_MS = 1_500;

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  await temps.removeAll();
});

async function serve(root: string, options: ImageServerOptions = {}): Promise<ImageServer> {
  const s = await ImageServer.bind(LOOPBACK, root, options);
  servers.push(s);
  return s;
}

async function storedImage(bigBytes = BIG_FILE_BYTES): Promise<{ root: string; dir: string; manifest: Manifest }> {
  const root = await temps.make('src');
  const dir = await makeRankImage(root, bigBytes);
  const manifest = await writeManifest(dir, FIXTURE_META);
  return { root, dir, manifest };
}

async function expectSameFiles(a: string, b: string, manifest: Manifest): Promise<void> {
  for (const f of manifest.files) {
    const same = (await readFile(join(a, f.name))).equals(await readFile(join(b, f.name)));
    expect(same, f.name).toBe(true);
  }
}

async function caught(p: Promise<unknown>): Promise<FerryError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(FerryError);
    return err as FerryError;
  }
  throw new Error('expected a rejection');
}

/** Flips one byte of a stored file. Flipped, not overwritten: the file is random, and a fixed byte is already there once in 256 runs. */
async function flipByteAt(path: string, at: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] = b[0]! ^ 0x5a;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
}

const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

describe('image transfer between agents', () => {
  it('round trip: every file arrives identical and verified, manifest last; throughput against cp', async () => {
    const { root, dir, manifest } = await storedImage();
    const server = await serve(root);
    expect(server.address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    const into = join(await temps.make('dst'), 'rank-1');
    const wrong = await caught(
      fetchImageDir({ from: server.address, ...FIXTURE_META, into, manifestSha256: 'ab'.repeat(32) }),
    );
    expect(wrong.message).toContain(`epoch 3 rank 1: image server ${server.address} holds manifest`);
    expect(server.bytesServed).toBe(0);
    const progress: Array<[number, number]> = [];
    const t0 = performance.now();
    const result = await fetchImageDir({
      from: server.address, ...FIXTURE_META, into, concurrency: 3, manifestSha256: manifest.manifestSha256,
      onProgress: (done, total) => progress.push([done, total]),
    });
    const fetchMs = performance.now() - t0;
    expect(result.alreadyComplete).toBe(false);
    expect(result.bytesReceived).toBe(manifest.totalBytes);
    expect(result.bytesResumed).toBe(0);
    expect(result.manifest).toEqual(manifest);
    expect(progress.at(-1)).toEqual([manifest.totalBytes, manifest.totalBytes]);
    for (let i = 1; i < progress.length; i++) expect(progress[i]![0]).toBeGreaterThanOrEqual(progress[i - 1]![0]);
    expect(await readFile(join(into, MANIFEST_FILE_NAME))).toEqual(await readFile(join(dir, MANIFEST_FILE_NAME)));
    expect((await readdir(into)).filter((n) => n.endsWith(PART_SUFFIX) || n.startsWith('.'))).toEqual([]);
    await verifyImageDir(into, await readManifest(into));
    await expectSameFiles(dir, into, manifest);
    expect((await stat(join(into, 'empty.img'))).size).toBe(0);

    // A second fetch into the complete directory transfers nothing.
    const again = await fetchImageDir({ from: server.address, ...FIXTURE_META, into });
    expect(again.alreadyComplete).toBe(true);
    expect(again.bytesReceived).toBe(0);

    // Throughput, measured in this run against a plain cp of the same big file (printed, not asserted).
    const big = join(dir, BIG_FILE_NAME);
    const cpTo = join(await temps.make('cp'), BIG_FILE_NAME);
    let t = performance.now();
    await execFileP('cp', [big, cpTo]);
    const cpMs = performance.now() - t;
    t = performance.now();
    await hashFile(big);
    const hashMs = performance.now() - t;
    const cp = mbps(BIG_FILE_BYTES, cpMs);
    const hash = mbps(BIG_FILE_BYTES, hashMs);
    const fetch = mbps(manifest.totalBytes, fetchMs);
    console.log(
      `images throughput (64 MiB file): cp ${cp.toFixed(0)} MB/s; sha256 ${hash.toFixed(0)} MB/s (${(hash / cp).toFixed(2)}x cp); ` +
        `fetch over ZeroMQ loopback with sha256, fsync ${fetch.toFixed(0)} MB/s (${(fetch / cp).toFixed(2)}x cp)`,
    );
  });

  it('a chunk damaged on the way is detected by its CRC and asked for again', async () => {
    const { root, dir, manifest } = await storedImage(8 * 1024 * 1024);
    let tampered = 0;
    const server = await serve(root, {
      tamperChunk: (name, offset, data) => {
        if (name === BIG_FILE_NAME && offset === 2 * 1024 * 1024 && tampered === 0) {
          data[100] = data[100]! ^ 0x40;
          tampered++;
        }
      },
    });
    const into = join(await temps.make('dst'), 'rank-1');
    const result = await fetchImageDir({ from: server.address, ...FIXTURE_META, into });
    expect(tampered).toBe(1);
    expect(result.chunksRetried).toBe(1);
    expect(result.bytesReceived).toBe(manifest.totalBytes + 1024 * 1024);
    await verifyImageDir(into, await readManifest(into));
    await expectSameFiles(dir, into, manifest);
  });

  it('a repair asks for the CRCs IMAGE_CRCS_MAX_CHUNKS at a time and finds a damaged chunk past the first of them', async () => {
    const chunkBytes = 16 * 1024;
    const damagedAt = (IMAGE_CRCS_MAX_CHUNKS + 44) * chunkBytes;
    const { root, dir, manifest } = await storedImage(8 * 1024 * 1024);
    let tampered = 0;
    const server = await serve(root, {
      tamperChunk: (name, offset, data) => {
        if (name === BIG_FILE_NAME && offset === damagedAt && tampered++ === 0) data[5] = data[5]! ^ 0x08;
      },
    });
    const into = join(await temps.make('dst'), 'rank-1');
    const result = await fetchImageDir({ from: server.address, ...FIXTURE_META, into, chunkBytes });
    expect(tampered).toBe(2); // the stream's copy, then the repair's
    expect(result.chunksRetried).toBe(1);
    expect(result.bytesReceived).toBe(manifest.totalBytes + chunkBytes);
    await expectSameFiles(dir, into, manifest);
  });

  it('a resumed file whose kept part was damaged on this disk gets only the damaged chunk again', async () => {
    const { root, dir, manifest } = await storedImage();
    const server = await serve(root);
    const into = join(await temps.make('dst'), 'rank-1');
    let closing: Promise<void> | undefined;
    await caught(
      fetchImageDir({
        from: server.address, ...FIXTURE_META, into, requestTimeoutMs: TEST_REQUEST_TIMEOUT_MS,
        onProgress: (done) => {
          if (done >= 20 * 1024 * 1024 && !closing) closing = server.close();
        },
      }),
    );
    const partPath = join(into, BIG_FILE_NAME + PART_SUFFIX);
    const kept = (await stat(partPath)).size;
    expect(kept).toBeGreaterThan(3 * 1024 * 1024);
    await flipByteAt(partPath, 2 * 1024 * 1024 + 17); // in the third 1 MiB chunk

    const restarted = await serve(root);
    const result = await fetchImageDir({ from: restarted.address, ...FIXTURE_META, into });
    expect(result.chunksRetried).toBe(1);
    expect(result.bytesResumed).toBeGreaterThanOrEqual(kept);
    expect(result.bytesReceived + result.bytesResumed).toBe(manifest.totalBytes + 1024 * 1024);
    await verifyImageDir(into, await readManifest(into));
    await expectSameFiles(dir, into, manifest);
  });

  it('chunks carry a CRC-32 only when asked; the server gives the CRCs of a range of chunks and refuses other ranges', async () => {
    const size = 3 * 1024 * 1024 + 5;
    const { root, dir } = await storedImage(size);
    const server = await serve(root);
    const client = new ImageClient(server.address, TEST_REQUEST_TIMEOUT_MS, 1024 * 1024);
    const bytes = await readFile(join(dir, BIG_FILE_NAME));
    const MiB = 1024 * 1024;
    try {
      const ref = dirRef(FIXTURE_META.jobId, FIXTURE_META.epoch, FIXTURE_META.rank);
      const chunk = (with_crc32: boolean) => client.request('chunk', { chunk_request: { dir: ref, name: BIG_FILE_NAME, offset: MiB, length: MiB, with_crc32 } });
      expect((await chunk(false)).message.chunk_reply?.crc32).toBe(0);
      expect((await chunk(true)).message.chunk_reply?.crc32).toBe(crc32(bytes.subarray(MiB, 2 * MiB)));
      const crcs = (first_chunk: number, chunks: number, chunk_bytes = MiB) =>
        client.request('crcs', { chunk_crcs_request: { dir: ref, name: BIG_FILE_NAME, chunk_bytes, first_chunk, chunks } });
      const all = (await crcs(0, 4)).message.chunk_crcs_reply?.crc32;
      expect(all).toEqual([0, 1, 2, 3].map((i) => crc32(bytes.subarray(i * MiB, Math.min(size, (i + 1) * MiB)))));
      expect((await crcs(3, 1)).message.chunk_crcs_reply?.crc32).toEqual([crc32(bytes.subarray(3 * MiB))]);
      for (const [first, n, cb] of [[0, 5, MiB], [4, 1, MiB], [0, 0, MiB], [0, 1, 0], [0, 1, IMAGE_MAX_CHUNK_BYTES + 1], [0, IMAGE_CRCS_MAX_CHUNKS + 1, 1]] as const) {
        const err = await caught(crcs(first, n, cb));
        expect(err.code, `${first} ${n} ${cb}`).toBe(ErrorCode.BAD_REQUEST);
        expect(err.message).toContain(BIG_FILE_NAME);
      }
    } finally {
      await client.close();
    }
  });

  it('a chunk damaged every time it is sent fails the fetch after IMAGE_CHUNK_ATTEMPTS, naming the chunk', async () => {
    const { root } = await storedImage(4 * 1024 * 1024);
    let sent = 0;
    const server = await serve(root, {
      tamperChunk: (name, offset, data) => {
        if (name === BIG_FILE_NAME && offset === 1024 * 1024) {
          data[7] = data[7]! ^ 0x01;
          sent++;
        }
      },
    });
    const into = join(await temps.make('dst'), 'rank-1');
    const err = await caught(fetchImageDir({ from: server.address, ...FIXTURE_META, into }));
    expect(err.code).toBe(ErrorCode.IMAGE_CORRUPT);
    expect(err.message).toContain(`epoch 3 rank 1: ${BIG_FILE_NAME}: chunk at ${1024 * 1024}: CRC-32 mismatch, ${IMAGE_CHUNK_ATTEMPTS} times`);
    expect(sent).toBe(1 + IMAGE_CHUNK_ATTEMPTS); // the stream's copy, then each attempt of the repair
    await expect(readFile(join(into, MANIFEST_FILE_NAME))).rejects.toThrow(/ENOENT/);
    await expect(stat(join(into, BIG_FILE_NAME))).rejects.toThrow(/ENOENT/);
    await expect(stat(join(into, BIG_FILE_NAME + PART_SUFFIX))).rejects.toThrow(/ENOENT/); // it holds the damaged chunk
  });

  it('a stored file damaged on the holding host fails the fetch, naming epoch, rank, file and peer', async () => {
    const { root, dir } = await storedImage(4 * 1024 * 1024);
    await flipByteAt(join(dir, BIG_FILE_NAME), 3_000_000);
    const server = await serve(root);
    const into = join(await temps.make('dst'), 'rank-1');
    const err = await caught(fetchImageDir({ from: server.address, ...FIXTURE_META, into }));
    expect(err.code).toBe(ErrorCode.IMAGE_CORRUPT);
    expect(err.message).toContain('epoch 3 rank 1: pages-1.img: sha256 mismatch');
    expect(err.message).toContain(server.address);
    await expect(readFile(join(into, MANIFEST_FILE_NAME))).rejects.toThrow(/ENOENT/);
    await expect(stat(join(into, BIG_FILE_NAME))).rejects.toThrow(/ENOENT/);
  });

  it('a migration\'s copy (durable: false) is verified like any other but never fsynced; by default every file is', async () => {
    const { root, dir, manifest } = await storedImage(40 * 1024 * 1024); // past one writeback step
    const server = await serve(root);
    const probe = await open(join(dir, MANIFEST_FILE_NAME), 'r');
    const handle = Object.getPrototypeOf(probe) as { sync: () => Promise<void>; datasync: () => Promise<void> };
    await probe.close();
    const sync = vi.spyOn(handle, 'sync');
    const datasync = vi.spyOn(handle, 'datasync');
    try {
      const transient = join(await temps.make('dst'), 'rank-1');
      await fetchImageDir({ from: server.address, ...FIXTURE_META, into: transient, durable: false });
      expect(sync).not.toHaveBeenCalled();
      expect(datasync).not.toHaveBeenCalled();
      await verifyImageDir(transient, await readManifest(transient));
      await expectSameFiles(dir, transient, manifest);

      const durable = join(await temps.make('dst'), 'rank-1');
      await fetchImageDir({ from: server.address, ...FIXTURE_META, into: durable });
      // each file, the directory and the manifest (temp file and directory)
      expect(sync.mock.calls.length).toBeGreaterThanOrEqual(manifest.files.length + 3);
      expect(datasync).toHaveBeenCalled();

      // Not fsynced is not unchecked: a damaged file still fails the fetch.
      await flipByteAt(join(dir, BIG_FILE_NAME), 1_000_000);
      const err = await caught(fetchImageDir({ from: server.address, ...FIXTURE_META, into: join(await temps.make('dst'), 'rank-1'), durable: false }));
      expect(err.code).toBe(ErrorCode.IMAGE_CORRUPT);
      expect(err.message).toContain('pages-1.img: sha256 mismatch');
    } finally {
      sync.mockRestore();
      datasync.mockRestore();
    }
  });

  it('never serves a path outside the root, nor a file the manifest does not list', async () => {
    const { root, dir } = await storedImage(1024);
    await writeFile(join(root, 'secret.txt'), 'outside the image');
    await writeFile(join(dir, 'extra.txt'), 'in the dir but not in the manifest');
    const server = await serve(root);
    const client = new ImageClient(server.address, TEST_REQUEST_TIMEOUT_MS, 1024 * 1024);
    try {
      const ref = dirRef(FIXTURE_META.jobId, FIXTURE_META.epoch, FIXTURE_META.rank);
      const chunk = (name: string, r = ref) => client.request(`chunk of ${name}`, { chunk_request: { dir: r, name, offset: 0, length: 100 } });
      for (const name of ['../../../secret.txt', '/etc/passwd', '..', 'sub/core-1.img', '']) {
        const err = await caught(chunk(name));
        expect(err.code, name).toBe(ErrorCode.BAD_REQUEST);
        expect(err.message).toContain('not a plain name');
      }
      let err = await caught(chunk('extra.txt'));
      expect(err.message).toContain('extra.txt: not in the manifest');
      for (const jobId of ['..', '../job-7', '/tmp']) {
        err = await caught(client.request('manifest', { manifest_request: { dir: dirRef(jobId, 3, 1) } }));
        expect(err.code, jobId).toBe(ErrorCode.BAD_REQUEST);
      }
      // an image without a manifest (a dump that did not finish) is not served
      err = await caught(client.request('manifest', { manifest_request: { dir: dirRef(FIXTURE_META.jobId, 4, 1) } }));
      expect(err.code).toBe(ErrorCode.IMAGE_MISSING);
      expect(err.message).toContain('no complete image');
      // and the real file still comes through the same client
      const ok = await chunk('core-1.img');
      expect(ok.data?.length).toBe(100);
    } finally {
      await client.close();
    }
    const err = await caught(fetchImageDir({ from: server.address, jobId: '..', epoch: 3, rank: 1, into: join(await temps.make('dst'), 'x') }));
    expect(err.code).toBe(ErrorCode.BAD_REQUEST);
    expect(rankImageDir(root, 'job-7', 3, 1)).toBe(dir);
  });

  it('the server refills a chunk buffer only after the fetcher reported that chunk received', async () => {
    const { root, dir, manifest } = await storedImage(12 * 1024 * 1024);
    const server = await serve(root);
    // Chunks of 256 KiB to 1 MiB go through the buffers: 12 of pages-1.img, 3 of mm-1.img.
    const pooledPerFetch = 15;
    for (const n of [1, 2]) {
      const into = join(await temps.make('dst'), `rank-${n}`);
      await fetchImageDir({ from: server.address, ...FIXTURE_META, into });
      await expectSameFiles(dir, into, manifest);
      const st = server.chunkBuffers.stats();
      expect(st.allocated + st.reused, `fetch ${n}`).toBe(n * pooledPerFetch);
      expect(st.lent, `fetch ${n}: the last receipts came with the fetch's end`).toBe(0);
      expect(st.dropped).toBe(0);
    }
    // At most the chunks in flight at once were ever allocated (two files, 8 each).
    expect(server.chunkBuffers.stats().allocated).toBeLessThanOrEqual(16);
    expect(server.chunkBuffers.stats().reused).toBeGreaterThanOrEqual(2 * pooledPerFetch - 16);

    // A fetcher that never reports receipts (or reports another fetcher's) never gets a refilled buffer.
    const before = server.chunkBuffers.stats();
    const silent = new zmq.Dealer({ linger: 0 });
    const other = new zmq.Dealer({ linger: 0 });
    silent.connect(server.address);
    other.connect(server.address);
    try {
      const ask = async (socket: zmq.Dealer, id: number, offset: number, received: number[] = []) => {
        await socket.send(
          Buffer.from(
            imageTransferCodec.encode({
              version: PROTOCOL_VERSION,
              request_id: id,
              received,
              chunk_request: { dir: dirRef(FIXTURE_META.jobId, FIXTURE_META.epoch, FIXTURE_META.rank), name: BIG_FILE_NAME, offset, length: 1024 * 1024 },
            }),
          ),
        );
        const [envelope, data] = await socket.receive();
        expect(Number(imageTransferCodec.decode(envelope!).reply_to)).toBe(id);
        expect(data!.equals((await readFile(join(dir, BIG_FILE_NAME))).subarray(offset, offset + 1024 * 1024))).toBe(true);
      };
      const free = before.free;
      for (let i = 0; i < free + 2; i++) await ask(silent, 100 + i, (i % 12) * 1024 * 1024);
      await ask(other, 1, 0, [100, 101, 102]);
      const after = server.chunkBuffers.stats();
      expect(after.reused - before.reused, 'only the free buffers were used, none lent to the silent fetcher').toBe(free);
      expect(after.allocated - before.allocated).toBe(3);
      expect(after.lent).toBe(free + 3);
    } finally {
      silent.close();
      other.close();
    }
  });

  it('a peer that is up but does not answer is a clear TIMEOUT naming it and the request, not a hang', async () => {
    const silent = new zmq.Router({ linger: 0 });
    await silent.bind(LOOPBACK);
    try {
      const into = join(await temps.make('dst'), 'rank-1');
      // Connected, so never unreachable, however short unreachableMs: only the request's own timeout ends it.
      const err = await caught(
        fetchImageDir({ from: silent.lastEndpoint!, ...FIXTURE_META, into, requestTimeoutMs: TEST_REQUEST_TIMEOUT_MS, unreachableMs: 200 }),
      );
      expect(err.code).toBe(ErrorCode.TIMEOUT);
      expect(err.message).toContain(`image server ${silent.lastEndpoint}: manifest of epoch 3 rank 1 of job job-7: no answer within`);
    } finally {
      silent.close();
    }
  });

  it('a client whose process was too busy to hear its connection being made is not taken for unreachable', async () => {
    const { root } = await storedImage(1024 * 1024);
    const server = await serve(root);
    const client = new ImageClient(server.address, 10_000, 1024 * 1024, undefined, 300);
    try {
      const reply = client.request('manifest', { manifest_request: { dir: dirRef(FIXTURE_META.jobId, FIXTURE_META.epoch, FIXTURE_META.rank) } });
      // Busy past unreachableMs: the connection is made meanwhile (libzmq's own thread), its event not heard yet.
      const until = performance.now() + 700;
      while (performance.now() < until) {
        /* busy */
      }
      expect((await reply).message.manifest_reply?.manifest_file?.length).toBeGreaterThan(0);
    } finally {
      await client.close();
    }
  });

  it('an address where nothing listens fails as UNAVAILABLE once unreachable for unreachableMs, not at the request timeout', async () => {
    const probe = await ImageServer.bind(LOOPBACK, await temps.make('none'));
    const address = probe.address;
    await probe.close(); // nothing listens there any more
    const into = join(await temps.make('dst'), 'rank-1');
    // A request timeout longer than the test's own: only the unreachable server can end the fetch in time.
    const err = await caught(fetchImageDir({ from: address, ...FIXTURE_META, into, requestTimeoutMs: 10 * 60_000, unreachableMs: 300 }));
    expect(err.code).toBe(ErrorCode.UNAVAILABLE);
    expect(err.message).toContain(`image server ${address}: no connection for 300 ms`);
  });

  it('a server gone mid-transfer fails the fetch as UNAVAILABLE, and a fetch from where it serves again resumes', async () => {
    const { root, dir, manifest } = await storedImage();
    const server = await serve(root);
    const into = join(await temps.make('dst'), 'rank-1');
    let closing: Promise<void> | undefined;
    const err = await caught(
      fetchImageDir({
        from: server.address, ...FIXTURE_META, into, requestTimeoutMs: 10 * 60_000, unreachableMs: 300,
        onProgress: (done) => {
          if (done >= 20 * 1024 * 1024 && !closing) closing = server.close();
        },
      }),
    );
    expect(closing).toBeDefined();
    expect(err.code).toBe(ErrorCode.UNAVAILABLE);
    expect(err.message).toContain(`image server ${server.address}: no connection for 300 ms`);
    await expect(readFile(join(into, MANIFEST_FILE_NAME))).rejects.toThrow(/ENOENT/);
    const part = await stat(join(into, BIG_FILE_NAME + PART_SUFFIX));
    expect(part.size).toBeGreaterThan(0);
    expect(part.size).toBeLessThan(BIG_FILE_BYTES);

    const restarted = await serve(root); // its agent started again: the same images, a new port
    const result = await fetchImageDir({ from: restarted.address, ...FIXTURE_META, into });
    expect(result.bytesResumed).toBeGreaterThanOrEqual(part.size);
    expect(result.bytesReceived).toBeLessThan(manifest.totalBytes);
    expect(result.bytesReceived + result.bytesResumed).toBe(manifest.totalBytes);
    expect(restarted.bytesServed).toBe(result.bytesReceived);
    await verifyImageDir(into, await readManifest(into));
    await expectSameFiles(dir, into, manifest);
  });
});
