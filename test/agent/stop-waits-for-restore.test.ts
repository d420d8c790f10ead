// A STOP of a rank whose RESTORE still runs on this host (the coordinator gave
// up waiting for that RESTORE's answer, and a failed restart stops what its
// targets restored) kills the copies running now at once, waits for the
// restore, and kills what it brought up too; only then does it answer.
// Killed first, the running copy no longer holds back a restore that waits
// for it to end (earlierCopyEnded).
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

/** A supervisor whose ranks are the names in `copies`; a SIGKILL ends them, and every signal is recorded in order. */
class RecordingSupervisor extends RankSupervisor {
  readonly copies = new Set<string>();
  readonly log: string[] = [];
  override has(jobId: string, rank: number): boolean {
    return this.copies.has(`${jobId}/${rank}`);
  }
  override signalRanks(jobId: string, ranks: number[], signal: NodeJS.Signals): number {
    this.log.push(`${signal} ${jobId} ${ranks.join(',')}`);
    let n = 0;
    for (const rank of ranks) {
      if (!this.copies.delete(`${jobId}/${rank}`)) continue;
      n++;
      setTimeout(() => this.emit('exit', { job_id: jobId, rank, pid: 4242, exit_code: 137, signal: 'SIGKILL', exited_ms: Date.now(), reason: '' }), 20);
    }
    return n;
  }
}

describe('STOP of a rank whose RESTORE runs here', () => {
  it('kills the running copy at once, answers once the restore has ended, and kills again after it', async () => {
    const dir = await temps.make('agent');
    const ranks = new RecordingSupervisor({ host: 'h', logsDir: join(dir, 'logs'), stateDir: join(dir, 'state'), initPath: '/nonexistent/ferry-init', agentSocketName: 'ferry-test-stop-restore' });
    // The restore waits for this earlier copy to end before it reads its image (which this test has none of:
    // CRIU is never reached, and the restore fails once past that wait).
    ranks.copies.add('j/1');
    const steps = new LocalRankSteps({ host: 'h', imagesDir: join(dir, 'images'), ranks, criu: {} as CriuInstall, earlierCopyWaitMs: 5_000 });
    const source = imageSource({ rank: 1, epoch: 5, host: 'h', manifest_sha256: 'ab'.repeat(32) });
    const restore = steps.run(roundRequest(RoundStep.RESTORE, { job_id: 'j', epoch: 5, ranks: [1], world_size: 2, sources: [source] }));
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    const stop = await steps.run(roundRequest(RoundStep.STOP, { job_id: 'j', epoch: 5, ranks: [1], dump_ranks: [1] }));
    const stopMs = Date.now() - t0;
    expect(stop.failed.size).toBe(0);
    // The STOP killed the running copy, waited for the restore (which went on once that copy's exit came, 20 ms
    // later, and failed at the image), and killed again whatever it had brought up.
    expect(ranks.log).toEqual(['SIGKILL j 1', 'SIGKILL j 1']);
    expect(stopMs).toBeGreaterThanOrEqual(15);
    // Not the restore's 5 s wait for the earlier copy: the STOP killed that copy first.
    expect(stopMs).toBeLessThan(4_000);
    expect((await restore).failed.get(1)?.message).toMatch(/rank-1|manifest|no such file|ENOENT/i);
  });

  it('answers at once when no restore of the rank runs here', async () => {
    const dir = await temps.make('agent');
    const ranks = new RecordingSupervisor({ host: 'h', logsDir: join(dir, 'logs'), stateDir: join(dir, 'state'), initPath: '/nonexistent/ferry-init', agentSocketName: 'ferry-test-stop-plain' });
    ranks.copies.add('j/1');
    const steps = new LocalRankSteps({ host: 'h', imagesDir: join(dir, 'images'), ranks, criu: {} as CriuInstall });
    const stop = await steps.run(roundRequest(RoundStep.STOP, { job_id: 'j', epoch: 5, ranks: [1], dump_ranks: [1] }));
    expect(stop.failed.size).toBe(0);
    expect(ranks.log).toEqual(['SIGKILL j 1']);
  });
});
