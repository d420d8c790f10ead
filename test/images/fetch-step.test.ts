// An agent's FETCH of several ranks' images from another host's image server,
// on real files over real ZeroMQ: what it reports as fetched is every rank's
// bytes. The ranks' fetches run side by side (p-queue), and their sum was once
// taken as `bytes += await fetch(...)`, which reads `bytes` before the await:
// a drain of 2 ranks reported one rank's bytes.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalRankSteps } from '../../src/agent/local-rank-steps.js';
import { RankSupervisor } from '../../src/agent/rank-supervisor.js';
import { RoundStep } from '../../src/gen/proto.js';
import { ImageServer } from '../../src/images/image-server.js';
import { writeManifest } from '../../src/images/manifest.js';
import { FIXTURE_META, makeRankImage, tempDirs } from './image-dir-fixture.js';
import { imageSource, roundRequest } from '../helpers/round-request.js';

const temps = tempDirs();
const servers: ImageServer[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  await temps.removeAll();
});

describe('FETCH of several ranks', () => {
  it("reports the bytes of every rank's image it received", async () => {
    const rootA = await temps.make('host-a');
    const rootB = await temps.make('host-b');
    const logs = await temps.make('logs');
    const server = await ImageServer.bind('tcp://127.0.0.1:0', rootA);
    servers.push(server);
    const sources = [];
    let total = 0;
    for (const [rank, big] of [[0, 3 * 1024 * 1024], [1, 1024 * 1024], [2, 5 * 1024 * 1024]]) {
      const dir = await makeRankImage(rootA, big, rank);
      const manifest = await writeManifest(dir, { ...FIXTURE_META, rank });
      for (const f of manifest.files) total += (await stat(join(dir, f.name))).size;
      sources.push(imageSource({ rank, host: 'host-a', server: server.address, manifest_sha256: manifest.manifestSha256, epoch: FIXTURE_META.epoch }));
    }
    const ranks = new RankSupervisor({ host: 'host-b', logsDir: logs, initPath: '/nonexistent/ferry-init', agentSocketName: 'ferry-test-host-b' });
    const b = new LocalRankSteps({ host: 'host-b', imagesDir: rootB, ranks, criu: { command: '/nonexistent/criu', version: '4.1.1', source: 'PATH' } });
    const out = await b.run(roundRequest(RoundStep.FETCH, { job_id: FIXTURE_META.jobId, epoch: FIXTURE_META.epoch, world_size: 3, sources, transient: true }));
    expect(out.failed).toEqual(new Map());
    expect(server.bytesServed).toBeGreaterThanOrEqual(total);
    expect(out.bytesFetched).toBe(total);
  });
});
