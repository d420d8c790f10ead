// A RESTORE of a rank whose earlier copy still runs on this host (a stale copy
// the coordinator is killing: the host came back while the job failed of its
// loss, and the restart put the rank here again) waits for that copy to end
// before CRIU runs, and fails for that rank, saying why, if it does not end:
// CRIU would restore a second copy the supervisor cannot take over.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RoundStep } from '../../src/gen/proto.js';
import { LocalRankSteps } from '../../src/agent/local-rank-steps.js';
import { RankSupervisor } from '../../src/agent/rank-supervisor.js';
import type { CriuInstall } from '../../src/criu/criu-install.js';
import { tempDirs } from '../images/image-dir-fixture.js';
import { imageSource, roundRequest } from '../helpers/round-request.js';

const temps = tempDirs();
afterEach(() => temps.removeAll());

/** A supervisor that runs (as far as has() tells) the ranks in `copies` until end() ends one. */
class SupervisorWithCopies extends RankSupervisor {
  readonly copies = new Set<string>();
  override has(jobId: string, rank: number): boolean {
    return this.copies.has(`${jobId}/${rank}`);
  }
  end(jobId: string, rank: number): void {
    this.copies.delete(`${jobId}/${rank}`);
    this.emit('exit', { job_id: jobId, rank, pid: 4242, exit_code: 137, signal: 'SIGKILL', exited_ms: Date.now(), reason: '' });
  }
}

async function setUp(): Promise<{ ranks: SupervisorWithCopies; restore: () => ReturnType<LocalRankSteps['run']> }> {
  const dir = await temps.make('agent');
  const ranks = new SupervisorWithCopies({ host: 'h', logsDir: join(dir, 'logs'), stateDir: join(dir, 'state'), initPath: '/nonexistent/ferry-init', agentSocketName: 'ferry-test-earlier-copy' });
  ranks.copies.add('j/1');
  // CRIU is never reached: the image the restore would read first is not there.
  const steps = new LocalRankSteps({ host: 'h', imagesDir: join(dir, 'images'), ranks, criu: {} as CriuInstall, earlierCopyWaitMs: 300 });
  const source = imageSource({ rank: 1, epoch: 5, host: 'h', manifest_sha256: 'ab'.repeat(32) });
  return { ranks, restore: () => steps.run(roundRequest(RoundStep.RESTORE, { job_id: 'j', epoch: 5, ranks: [1], world_size: 2, sources: [source] })) };
}

describe('RESTORE of a rank whose earlier copy still runs here', () => {
  it('fails for that rank, naming it and the host, when the copy does not end', async () => {
    const { restore } = await setUp();
    const t0 = Date.now();
    const out = await restore();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(out.failed.get(1)?.message).toBe('an earlier copy of rank 1 of job j still runs on host h (not ended 300 ms after the restore began)');
  });

  it('goes on once the copy has ended', async () => {
    const { ranks, restore } = await setUp();
    setTimeout(() => ranks.end('j', 1), 50);
    const out = await restore();
    // past the wait: the restore reads the image, which this test has none of
    expect(out.failed.get(1)?.message).not.toMatch(/earlier copy/);
    expect(out.failed.get(1)?.message).toMatch(/rank-1|manifest|no such file|ENOENT/i);
  });
});
