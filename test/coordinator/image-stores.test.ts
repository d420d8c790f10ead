// Image stores in the coordinator: the catalog keeps each host's store and
// each image's (migration 3 leaves older rows without one), and the choice of
// where a restart target gets an image from.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog, CATALOG_FILE_NAME } from '../../src/coordinator/catalog.js';
import { CATALOG_MIGRATIONS, migrateCatalog } from '../../src/coordinator/catalog-migrations.js';
import type { HostRegistration } from '../../src/coordinator/catalog-types.js';
import { chooseImageSource, type ImageSourceHost, type StoredImage } from '../../src/coordinator/checkpoint/image-source-choice.js';

const SHA = 'c'.repeat(64);
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-stores-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function host(name: string, imageStore?: string): HostRegistration {
  return { name, address: '198.18.0.9', cpus: 2, criuVersion: '4.1.1', criuCheckOk: true, criuCheckDetail: '', agentInstance: `i-${name}`, registeredMs: 1_000, imageStore };
}

describe('catalog', () => {
  it("records a host's store, and an image's store as given or else as its host's", () => {
    const c = Catalog.open(dir);
    try {
      c.upsertHost(host('h1', 'store-1'));
      c.upsertHost(host('h2'));
      expect(c.getHost('h1')!.imageStore).toBe('store-1');
      expect(c.getHost('h2')!.imageStore).toBe('');
      c.createJob({ id: 'j', worldSize: 3, argv: ['/a'], cwd: '/', env: {}, createdMs: 1 });
      const e = c.beginEpoch('j', 2);
      c.recordEpochImage({ jobId: 'j', epoch: e, rank: 0, host: 'h1', location: '/i/0', sizeBytes: 1, sha256: SHA });
      c.recordEpochImage({ jobId: 'j', epoch: e, rank: 1, host: 'h1', location: '/i/1', sizeBytes: 1, sha256: SHA, imageStore: 'store-9' });
      c.recordEpochImage({ jobId: 'j', epoch: e, rank: 2, host: 'h2', location: '/i/2', sizeBytes: 1, sha256: SHA });
      // A host that re-registers with another directory changes no image already recorded.
      c.upsertHost(host('h1', 'store-2'));
      expect(c.getHost('h1')!.imageStore).toBe('store-2');
      expect(c.epochImages('j', e).map((i) => i.imageStore)).toEqual(['store-1', 'store-9', '']);
    } finally {
      c.close();
    }
  });

  it('migration 3 gives hosts and images of an older catalog no store', () => {
    const file = join(dir, CATALOG_FILE_NAME);
    const raw = new Database(file);
    migrateCatalog(raw, file, CATALOG_MIGRATIONS.slice(0, 2));
    raw.prepare(`INSERT INTO hosts VALUES ('h1', '198.18.0.1', 2, '4.1.1', 1, 'ok', 'i1', 100, 100, 'up', 100)`).run();
    raw.prepare(`INSERT INTO jobs (id, state, world_size, argv_json, cwd, env_json, created_ms, last_epoch) VALUES ('old', 'stopped', 1, '[]', '/', '{}', 1, 1)`).run();
    raw.prepare(`INSERT INTO epochs VALUES ('old', 1, 'committed', 1, 2, 2, NULL)`).run();
    raw.prepare(`INSERT INTO epoch_images VALUES ('old', 1, 0, 'h1', '/i', 5, '${SHA}', NULL)`).run();
    raw.close();
    const c = Catalog.open(dir);
    try {
      expect(c.getHost('h1')!.imageStore).toBe('');
      expect(c.epochImages('old', 1)).toMatchObject([{ rank: 0, host: 'h1', imageStore: '' }]);
    } finally {
      c.close();
    }
  });
});

describe('chooseImageSource', () => {
  const image = (over: Partial<StoredImage> = {}): StoredImage => ({ rank: 3, epoch: 2, host: 'w', location: '/i/j/2/rank-3', manifestSha256: SHA, imageStore: 'S', ...over });
  const h = (name: string, imageStore: string, state = 'up'): ImageSourceHost => ({ name, state, imageServer: `tcp://${name}:1`, imageStore });
  const pick = (img: StoredImage, target: ImageSourceHost, hosts: ImageSourceHost[]) => {
    const c = chooseImageSource(img, target, hosts);
    return c.source ? [c.source.host, c.source.server, c.inPlace] : `${c.why} | ${c.note}`;
  };

  it('reads in place on the same store, whatever the state of the writer', () => {
    expect(pick(image(), h('t', 'S'), [h('w', 'S', 'down'), h('t', 'S')])).toEqual(['w', '', true]);
    expect(pick(image(), h('w', 'S'), [h('w', 'S')])).toEqual(['w', '', true]);
  });

  it('fetches from the writer first, then from another live host of its store', () => {
    const hosts = [h('a', 'S'), h('w', 'S'), h('t', 'T')];
    expect(pick(image(), h('t', 'T'), hosts)).toEqual(['w', 'tcp://w:1', false]);
    hosts[1] = h('w', 'S', 'down');
    expect(pick(image(), h('t', 'T'), hosts)).toEqual(['a', 'tcp://a:1', false]);
  });

  it('does not fetch from a writer whose agent now registers another store', () => {
    expect(pick(image(), h('t', 'T'), [h('w', 'S2'), h('t', 'T')])).toBe('the image of rank 3 is on host w, which is up, and there is no other copy | no live host shares its image store S');
  });

  it('treats an image without a store as readable on its writer only', () => {
    const legacy = image({ imageStore: '' });
    expect(pick(legacy, h('t', ''), [h('w', ''), h('t', '')])).toEqual(['w', 'tcp://w:1', false]);
    expect(pick(legacy, h('w', 'S'), [h('w', 'S')])).toEqual(['w', '', true]);
    expect(pick(legacy, h('t', ''), [h('w', '', 'down'), h('x', '')])).toBe('the image of rank 3 is on host w, which is down, and there is no other copy | ');
  });
});
