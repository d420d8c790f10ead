// A RESTORE whose restored rank the supervisor refuses to take over (a copy of
// the rank turned up here while CRIU ran) fails for that rank, and the copy
// CRIU restored is killed rather than left running unsupervised. Real CRIU,
// a real rank dumped as a migration dumps it, the agent's RESTORE step.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, RoundStep, type RankProcessInit } from '../../src/gen/proto.js';
import { FerryError } from '../../src/common/ferry-error.js';
import { LocalRankSteps } from '../../src/agent/local-rank-steps.js';
import { RankSupervisor, type RankStartSpec } from '../../src/agent/rank-supervisor.js';
import type { CriuInstall } from '../../src/criu/criu-install.js';
import { ensureCriu } from '../../src/criu/criu-provision.js';
import { dumpRank } from '../../src/criu/criu-dump.js';
import { rankImageDir } from '../../src/images/image-paths.js';
import { writeManifest } from '../../src/images/manifest.js';
import { imageSource, roundRequest } from '../helpers/round-request.js';
import { FERRY_INIT, RankFixture, logLines, waitFor } from './criu-rank-fixture.js';

const TEST_TIMEOUT_MS = 180_000;

/** A supervisor that finds the rank already running when the restore hands it over. */
class RefusingSupervisor extends RankSupervisor {
  adopted: ChildProcessLike[] = [];
  override adopt(spec: RankStartSpec, child: ChildProcessLike): RankProcessInit {
    this.adopted.push(child);
    throw new FerryError(ErrorCode.BAD_REQUEST, `rank ${spec.jobId}/${spec.rank} already runs on h`);
  }
}
type ChildProcessLike = Parameters<RankSupervisor['adopt']>[1];

/** Pids of live processes whose command line names `program`. */
function processesOf(program: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').includes(program)) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

describe('a restored rank the supervisor does not take over', () => {
  const fx = new RankFixture();
  let criu: CriuInstall;
  let counter: string;

  beforeAll(async () => {
    criu = await ensureCriu();
    counter = fx.build();
  }, TEST_TIMEOUT_MS);

  afterAll(() => fx.cleanup());

  it('fails the RESTORE for that rank and is killed, not left running', { timeout: TEST_TIMEOUT_MS }, async () => {
    const dir = fx.tmp('ferry-criu-unadopted-');
    const imagesDir = join(dir, 'images');
    const ranks = new RefusingSupervisor({ host: 'h', logsDir: join(dir, 'logs'), stateDir: join(dir, 'state'), initPath: FERRY_INIT, agentSocketName: `ferry-test-unadopted-${process.pid}` });
    const logs = ranks.logPaths('j', 1);
    const data = join(dir, 'input.dat');
    writeFileSync(data, 'input data\n');
    const rank = await fx.startRank([counter, data, '5', '1'], logs.out, logs.err);
    await waitFor('the counter to write 5 lines', () => logLines(logs.out).length >= 5);

    // Dumped as a migration dumps it (the original ends), with the manifest STORE writes.
    const image = rankImageDir(imagesDir, 'j', 5, 1);
    await dumpRank({ criu, initPid: rank.initPid, imagesDir: image, leaveRunning: false });
    await waitFor('the dumped original to end', () => processesOf(counter).length === 0);
    await writeManifest(image, { jobId: 'j', epoch: 5, rank: 1, host: 'h', criuVersion: criu.version });
    const manifestSha = createHash('sha256').update(readFileSync(join(image, 'manifest.ferry'))).digest('hex');

    const steps = new LocalRankSteps({ host: 'h', imagesDir, ranks, criu });
    const source = imageSource({ rank: 1, epoch: 5, host: 'h', manifest_sha256: manifestSha });
    const out = await steps.run(roundRequest(RoundStep.RESTORE, { job_id: 'j', epoch: 5, ranks: [1], world_size: 2, sources: [source] }));

    expect(out.failed.get(1)?.message).toBe('rank j/1 already runs on h');
    expect(ranks.adopted).toHaveLength(1); // CRIU did restore it
    for (const c of ranks.adopted) if (c.pid) fx.track(c.pid);
    await waitFor('the restored copy to be killed', () => processesOf(counter).length === 0 && ranks.adopted[0].signalCode !== null);
    expect(ranks.adopted[0].signalCode).toBe('SIGKILL');
    ranks.close();
  });
});
