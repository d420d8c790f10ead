// STORE on an agent that did not run the DUMP itself (it was restarted in
// between: nothing hashed while CRIU wrote is in its memory): it hashes every
// file CRIU left, writes the manifest, and refuses a rank with no dump there.
// Real files; the image directory laid out as a DUMP leaves it.
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RoundStep } from '../../src/gen/proto.js';
import { LocalRankSteps } from '../../src/agent/local-rank-steps.js';
import type { RankSupervisor } from '../../src/agent/rank-supervisor.js';
import type { CriuInstall } from '../../src/criu/criu-install.js';
import { rankImageDir } from '../../src/images/image-paths.js';
import { readManifest, verifyImageDir } from '../../src/images/manifest.js';
import { roundRequest } from '../helpers/round-request.js';

let dir = '';
let steps: LocalRankSteps;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-test-store-step-'));
  steps = new LocalRankSteps({ host: 'h', imagesDir: join(dir, 'images'), ranks: new EventEmitter() as unknown as RankSupervisor, criu: { version: '4.1.1' } as CriuInstall });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('STORE', () => {
  it('hashes every file of a dump it did not watch, writes the manifest, and names a rank with no dump', async () => {
    const image = rankImageDir(join(dir, 'images'), 'j', 4, 0);
    mkdirSync(image, { recursive: true });
    const pages = Buffer.from(Array.from({ length: 3 * 1024 * 1024 + 17 }, (_, i) => (i * 31) % 251));
    writeFileSync(join(image, 'pages-1.img'), pages);
    writeFileSync(join(image, 'inventory.img'), 'inventory');

    const out = await steps.run(roundRequest(RoundStep.STORE, { job_id: 'j', epoch: 4, dump_ranks: [0, 1] }));
    expect([...out.failed.keys()]).toEqual([1]);
    expect(out.failed.get(1)!.message).toMatch(/no dump of rank 1 of j for image set 4 on h/);
    expect(out.images).toHaveLength(1);
    expect(out.images![0]).toMatchObject({ rank: 0, location: image, files: 2, size_bytes: pages.length + 'inventory'.length });
    const manifest = await readManifest(image);
    expect(manifest.files.find((f) => f.name === 'pages-1.img')!.sha256).toBe(createHash('sha256').update(pages).digest('hex'));
    expect(createHash('sha256').update(readFileSync(join(image, 'manifest.ferry'))).digest('hex')).toBe(out.images![0]!.manifest_sha256);
    await verifyImageDir(image, manifest);
  });
});
