// A DISCARD of an image set that arrives while a FETCH still copies into it
// (a coordinator that restarted mid-migration removes the copy its target was
// fetching) waits for the FETCH, so no file of it is left behind.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RoundStep, type RoundRequest } from '../../src/gen/proto.js';
import { LocalRankSteps } from '../../src/agent/local-rank-steps.js';
import { RankSupervisor } from '../../src/agent/rank-supervisor.js';
import { ImageServer } from '../../src/images/image-server.js';
import { writeManifest } from '../../src/images/manifest.js';
import { FIXTURE_META, makeRankImage, tempDirs } from '../images/image-dir-fixture.js';
import { imageSource, roundRequest } from '../helpers/round-request.js';

const temps = tempDirs();
const servers: ImageServer[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  await temps.removeAll();
});

const request = (step: RoundStep, extra: Partial<RoundRequest> = {}): RoundRequest =>
  roundRequest(step, { job_id: FIXTURE_META.jobId, epoch: FIXTURE_META.epoch, ranks: [FIXTURE_META.rank], world_size: 2, ...extra });

describe('DISCARD on an agent', () => {
  it('waits for a FETCH into the same image set, then removes what it copied', async () => {
    const root = await temps.make('src');
    const manifest = await writeManifest(await makeRankImage(root, 8 * 1024 * 1024), FIXTURE_META);
    // Each chunk leaves the server 30 ms late: the FETCH takes a while.
    const pause = new Int32Array(new SharedArrayBuffer(4));
    const server = await ImageServer.bind('tcp://127.0.0.1:0', root, { tamperChunk: () => void Atomics.wait(pause, 0, 0, 30) });
    servers.push(server);
    const dir = await temps.make('agent');
    const images = join(dir, 'images');
    const ranks = new RankSupervisor({ host: 'h', logsDir: join(dir, 'logs'), stateDir: join(dir, 'state'), initPath: '/nonexistent/ferry-init', agentSocketName: 'ferry-test-discard-fetch' });
    const steps = new LocalRankSteps({ host: 'h', imagesDir: images, ranks, criu: null });
    const source = imageSource({ rank: FIXTURE_META.rank, epoch: FIXTURE_META.epoch, host: 'src', server: server.address, manifest_sha256: manifest.manifestSha256 });
    const fetch = steps.run(request(RoundStep.FETCH, { sources: [source] }));
    await new Promise((r) => setTimeout(r, 50)); // the FETCH is under way
    const discard = steps.run(request(RoundStep.DISCARD));
    const [fetched] = await Promise.all([fetch, discard]);
    expect(fetched.failed.size).toBe(0);
    expect(fetched.bytesFetched).toBeGreaterThan(8 * 1024 * 1024);
    expect(existsSync(join(images, FIXTURE_META.jobId))).toBe(false);
  });
});
