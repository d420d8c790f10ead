// One images directory shared by several agents (as over NFS), on real files:
// the store id they agree on, FETCH reading another host's image in place
// (every file verified against the recorded manifest, nothing copied), the
// same through an image server that serves that very directory, and DISCARD
// removing only the discarding host's ranks. Also: RESTORE checks every file of
// a copy the agent did not write or verify itself (a migration's copies are not
// fsynced, so after a crash they may be torn).
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalRankSteps } from '../../src/agent/local-rank-steps.js';
import { RankSupervisor } from '../../src/agent/rank-supervisor.js';
import { ErrorCode, RoundStep, type ImageSource, type RoundRequest } from '../../src/gen/proto.js';
import { rankImageDir } from '../../src/images/image-paths.js';
import { ImageServer } from '../../src/images/image-server.js';
import { IMAGE_STORE_ID_FILE, ensureImageStoreId, readImageStoreId } from '../../src/images/image-store-id.js';
import { writeManifest, type Manifest } from '../../src/images/manifest.js';
import { BIG_FILE_NAME, FIXTURE_META, makeRankImage, tempDirs } from './image-dir-fixture.js';
import { imageSource, roundRequest } from '../helpers/round-request.js';

const temps = tempDirs();
const servers: ImageServer[] = [];
const SMALL_BIG_FILE_BYTES = 2 * 1024 * 1024;

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  await temps.removeAll();
});

/**
 * The steps of an agent on `host` whose --images is `imagesDir`; FETCH and DISCARD use no rank process.
 * Its CRIU does not exist: a RESTORE that gets as far as running it fails.
 */
function stepsOn(host: string, imagesDir: string, logsDir: string): LocalRankSteps {
  const ranks = new RankSupervisor({ host, logsDir, initPath: '/nonexistent/ferry-init', agentSocketName: `ferry-test-${host}` });
  return new LocalRankSteps({ host, imagesDir, ranks, criu: { command: '/nonexistent/criu', version: '4.1.1', source: 'PATH' } });
}

function request(step: RoundStep, over: Partial<RoundRequest> = {}): RoundRequest {
  return roundRequest(step, { job_id: FIXTURE_META.jobId, epoch: FIXTURE_META.epoch, world_size: 4, ...over });
}

function source(over: Partial<ImageSource>): ImageSource {
  return imageSource({ rank: FIXTURE_META.rank, host: 'host-a', epoch: FIXTURE_META.epoch, ...over });
}

/** A shared images root with host-a's image of job-7 epoch 3 rank 1 in it. */
async function sharedStoreWithImage(): Promise<{ root: string; store: string; dir: string; manifest: Manifest; logs: string }> {
  const root = await temps.make('shared');
  const logs = await temps.make('logs');
  const store = await ensureImageStoreId(root);
  const dir = await makeRankImage(root, SMALL_BIG_FILE_BYTES);
  const manifest = await writeManifest(dir, FIXTURE_META);
  return { root, store, dir, manifest, logs };
}

async function flipByte(path: string): Promise<void> {
  const bytes = await readFile(path);
  bytes[Math.floor(bytes.length / 2)] ^= 0x20;
  await writeFile(path, bytes);
}

describe('image store id', () => {
  it('agents starting at once on one directory agree on one id, and leave no temp file', async () => {
    const root = await temps.make('ids');
    const ids = await Promise.all(Array.from({ length: 16 }, () => ensureImageStoreId(root)));
    expect(new Set(ids).size).toBe(1);
    expect(ids[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(await readdir(root)).toEqual([IMAGE_STORE_ID_FILE]);
    expect(await ensureImageStoreId(root)).toBe(ids[0]);
    expect(await readImageStoreId(await temps.make('none'))).toBeUndefined();
  });

  it('refuses a damaged or newer id file, naming it', async () => {
    const root = await temps.make('bad');
    await writeFile(join(root, IMAGE_STORE_ID_FILE), 'hello\n');
    await expect(ensureImageStoreId(root)).rejects.toMatchObject({ code: ErrorCode.IMAGE_CORRUPT, message: expect.stringContaining(`${root}/${IMAGE_STORE_ID_FILE} is not a Ferry image store id`) });
    await writeFile(join(root, IMAGE_STORE_ID_FILE), `ferry-image-store 2 ${'a'.repeat(32)}\n`);
    await expect(readImageStoreId(root)).rejects.toMatchObject({ code: ErrorCode.IMAGE_CORRUPT, message: expect.stringContaining('format version 2') });
  });
});

describe('FETCH from a shared images directory', () => {
  it('reads another host\'s image in place, verified, with nothing copied', async () => {
    const { root, store, manifest, logs } = await sharedStoreWithImage();
    const b = stepsOn('host-b', root, logs);
    const before = await readdir(root, { recursive: true });
    const out = await b.run(request(RoundStep.FETCH, { sources: [source({ image_store: store, manifest_sha256: manifest.manifestSha256 })] }));
    expect(out.failed).toEqual(new Map());
    expect(out.bytesFetched).toBe(0);
    expect(await readdir(root, { recursive: true })).toEqual(before);
  });

  it('refuses an image of another store, another manifest, or a damaged file', async () => {
    const { root, store, dir, manifest, logs } = await sharedStoreWithImage();
    const b = stepsOn('host-b', root, logs);
    const fetchWith = async (over: Partial<ImageSource>) => (await b.run(request(RoundStep.FETCH, { sources: [source(over)] }))).failed.get(FIXTURE_META.rank);
    const otherStore = await fetchWith({ image_store: 'f'.repeat(32), manifest_sha256: manifest.manifestSha256 });
    expect(otherStore?.code).toBe(ErrorCode.IMAGE_MISSING);
    expect(otherStore?.message).toContain(`epoch 3 rank 1: written by host host-a into image store ${'f'.repeat(32)}, but the images directory of host host-b (${root}) is store ${store}`);
    const otherManifest = await fetchWith({ image_store: store, manifest_sha256: 'e'.repeat(64) });
    expect(otherManifest?.code).toBe(ErrorCode.IMAGE_CORRUPT);
    expect(otherManifest?.message).toMatch(/epoch 3 rank 1: .*manifest.ferry is manifest [0-9a-f]{16}\.\.\., not the committed one \(eeeeeeeeeeeeeeee\.\.\.\)/);
    await flipByte(join(dir, BIG_FILE_NAME));
    const damaged = await fetchWith({ image_store: store, manifest_sha256: manifest.manifestSha256 });
    expect(damaged?.code).toBe(ErrorCode.IMAGE_CORRUPT);
    expect(damaged?.message).toContain(`epoch 3 rank 1: ${BIG_FILE_NAME}: sha256 mismatch`);
  });

  it('through a server that serves the same directory: nothing is transferred or removed, and every file is still verified', async () => {
    const { root, manifest, dir, logs } = await sharedStoreWithImage();
    const server = await ImageServer.bind('tcp://127.0.0.1:0', root);
    servers.push(server);
    const b = stepsOn('host-b', root, logs);
    // As a coordinator that does not know the two hosts share the directory would ask.
    const req = request(RoundStep.FETCH, { sources: [source({ host: 'host-c', server: server.address, manifest_sha256: manifest.manifestSha256 })] });
    const out = await b.run(req);
    expect(out.failed).toEqual(new Map());
    expect(out.bytesFetched).toBe(0);
    expect(server.bytesServed).toBe(0);
    expect((await readdir(dir)).sort()).toEqual([...manifest.files.map((f) => f.name), 'manifest.ferry'].sort());
    await flipByte(join(dir, 'mm-1.img'));
    const damaged = (await b.run(req)).failed.get(FIXTURE_META.rank);
    expect(damaged?.code).toBe(ErrorCode.IMAGE_CORRUPT);
    expect(damaged?.message).toContain('epoch 3 rank 1: mm-1.img: sha256 mismatch');
  });
});

describe('DISCARD in a shared images directory', () => {
  it("removes the discarding host's ranks only, and the set's and job's folders once the last is gone", async () => {
    const { root, logs } = await sharedStoreWithImage();
    const other = rankImageDir(root, FIXTURE_META.jobId, FIXTURE_META.epoch, 2);
    await mkdir(other, { recursive: true });
    await writeFile(join(other, 'pages-1.img'), 'rank 2 of host b');
    const setDir = join(root, FIXTURE_META.jobId, String(FIXTURE_META.epoch));
    const a = stepsOn('host-a', root, logs);
    expect((await a.run(request(RoundStep.DISCARD, { ranks: [1] }))).failed).toEqual(new Map());
    expect(await readdir(setDir)).toEqual(['rank-2']);
    const b = stepsOn('host-b', root, logs);
    await b.run(request(RoundStep.DISCARD, { ranks: [2] }));
    expect(await readdir(root)).not.toContain(FIXTURE_META.jobId);
    expect(await readImageStoreId(root)).toBeDefined();
  });
});

describe('RESTORE of a copy', () => {
  it('checks every file first when this agent did not write or verify it (a copy from before a crash)', async () => {
    const { root, dir, manifest, logs } = await sharedStoreWithImage();
    const src = source({ host: 'host-b', manifest_sha256: manifest.manifestSha256 });
    await flipByte(join(dir, BIG_FILE_NAME));
    const fresh = stepsOn('host-b', root, logs); // an agent that started after the copy was written
    const failed = (await fresh.run(request(RoundStep.RESTORE, { sources: [src] }))).failed.get(FIXTURE_META.rank);
    expect(failed?.code).toBe(ErrorCode.IMAGE_CORRUPT);
    expect(failed?.message).toContain(`epoch 3 rank 1: ${BIG_FILE_NAME}: sha256 mismatch`);
  });

  it('trusts what this agent verified itself: no second pass over the files', async () => {
    const { root, store, dir, manifest, logs } = await sharedStoreWithImage();
    const b = stepsOn('host-b', root, logs);
    const src = source({ image_store: store, manifest_sha256: manifest.manifestSha256 });
    expect((await b.run(request(RoundStep.FETCH, { sources: [src] }))).failed).toEqual(new Map());
    await flipByte(join(dir, BIG_FILE_NAME)); // after the check: only a second pass would see it
    const failed = (await b.run(request(RoundStep.RESTORE, { sources: [src] }))).failed.get(FIXTURE_META.rank);
    expect(failed?.message).toBeDefined(); // the fixture is no CRIU image
    expect(failed?.message).not.toContain('sha256');
  });
});
