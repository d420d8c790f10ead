// A launch that names an existing job (`srun ferry rank-exec --job-id J ./app`
// in the next allocation of a batch job that was stopped at its time limit)
// continues it from its last committed epoch, each rank restored on the host
// its rank-exec joined from; a job that runs, succeeded, or has other ranks or
// another command drops the launch with the reason. Over the in-memory
// transport, with the joins on the wire.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { JobState, RoundStep } from '../../src/gen/proto.js';
import { ControlPlaneHarness, settle } from './control-plane-harness.js';
import { joinLaunch, joined, refused } from './launch-joins.js';

let h: ControlPlaneHarness;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

beforeEach(async () => {
  h = await ControlPlaneHarness.started({ a: 'store-a', b: 'store-b', c: 'store-c', d: 'store-d' });
});

afterEach(() => h.stop());

/** One rank-exec of a launch with --job-id L. */
const rankExec = (key: string, rank: number, host: string, argv = ['/app'], worldSize = 2) => joinLaunch(h, key, rank, host, { argv, worldSize, jobId: 'L' });

/** Job L launched on a and b, checkpointed and stopped (the time limit's warning). */
async function launchedAndStopped(): Promise<void> {
  const first = [rankExec('slurm:1.0', 0, 'a'), rankExec('slurm:1.0', 1, 'b')];
  await advance(50);
  expect(first.map(joined)).toEqual(['L', 'L']);
  expect(h.coordinator!.jobs.jobInfo('L').hosts).toEqual(['a', 'b']); // the launcher's nodes are the job's
  const cp = await settle(h.coordinator!.checkpoints.checkpoint('L', { stop: true }));
  expect(cp.error).toBeUndefined();
  await advance(50);
  expect(h.catalog!.getJob('L')!.state).toBe('stopped');
}

describe('a launch that names an existing job', () => {
  it('continues a stopped job from its last epoch, each rank restored where its rank-exec runs', async () => {
    await launchedAndStopped();
    const next = [rankExec('slurm:2.0', 0, 'c'), rankExec('slurm:2.0', 1, 'd')];
    for (let t = 0; t < 10_000 && !next.every(joined); t += 100) await advance(100);
    expect(next.map(joined)).toEqual(['L', 'L']);
    // Each joiner heard first that the job is being continued (its request then waits without a deadline).
    for (const got of next) expect(got.find((r) => r.job_notice)?.job_notice?.message).toBe('continuing job L from its last committed epoch');
    expect(h.catalog!.getJob('L')!.state).toBe('running');
    expect(h.catalog!.listRanks('L').map((r) => `${r.rank}@${r.host}`)).toEqual(['0@c', '1@d']);
    expect(h.coordinator!.jobs.jobInfo('L').hosts).toEqual(['c', 'd']); // this allocation's, not the last one's
    for (const host of ['c', 'd']) expect(h.nodes.get(host)!.steps.seen.some((s) => s.step === RoundStep.RESTORE && s.epoch === 1)).toBe(true);
    const events = h.catalog!.listEvents({ limit: 100 }).filter((e) => e.kind === 'launch.resume').map((e) => e.message);
    expect(events).toEqual(['launch slurm:2.0: 2 ranks joined (test); job L stopped before, restarted from epoch 1']);
  });

  it('drops the launch, saying why, for a job that runs, one with other ranks or another command, and one that succeeded', async () => {
    const running = [rankExec('slurm:1.0', 0, 'a'), rankExec('slurm:1.0', 1, 'b')];
    await advance(50);
    expect(running.map(joined)).toEqual(['L', 'L']);
    const again = [rankExec('slurm:2.0', 0, 'c'), rankExec('slurm:2.0', 1, 'd')];
    await advance(50);
    expect(refused(again[0]!)).toBe('launch slurm:2.0 dropped: job L exists and is running: a new run with its id continues it only once it is stopped (ferry checkpoint L --stop)');
    expect(again[0]!.some((r) => r.job_notice)).toBe(false); // nothing announced for a launch that is refused
    expect((await settle(h.coordinator!.checkpoints.checkpoint('L', { stop: true }))).error).toBeUndefined();
    const other = [rankExec('slurm:3.0', 0, 'c', ['/other']), rankExec('slurm:3.0', 1, 'd', ['/other'])];
    await advance(50);
    expect(refused(other[1]!)).toBe('launch slurm:3.0 dropped: job L runs "/app", this run "/other": a new run with its id continues a job with the same command');
    const three = [0, 1, 2].map((rank) => rankExec('slurm:4.0', rank, 'c', ['/app'], 3));
    await advance(50);
    expect(refused(three[2]!)).toBe('launch slurm:4.0 dropped: job L has 2 ranks, this run 3: a new run with its id continues a job with the same ranks');
    expect(h.catalog!.getJob('L')!.state).toBe('stopped');
    // Continued once, then run to its end: a later launch with its id finds nothing to continue.
    const next = [rankExec('slurm:5.0', 0, 'c'), rankExec('slurm:5.0', 1, 'd')];
    for (let t = 0; t < 10_000 && !next.every(joined); t += 100) await advance(100);
    h.nodes.get('c')!.ranks.exit('L', 0, 0);
    h.nodes.get('d')!.ranks.exit('L', 1, 0);
    for (let t = 0; t < 5_000 && h.catalog!.getJob('L')!.state !== 'succeeded'; t += 100) await advance(100);
    expect(h.catalog!.getJob('L')!.state).toBe('succeeded');
    const done = [rankExec('slurm:6.0', 0, 'c'), rankExec('slurm:6.0', 1, 'd')];
    await advance(50);
    expect(refused(done[0]!)).toBe('launch slurm:6.0 dropped: job L exists and succeeded: there is nothing to continue; give another job id');
  });
});

describe('a run with the id of an existing job (ferry run --job-id J)', () => {
  it('continues a stopped job from its last epoch on the hosts it names, and refuses one that runs', async () => {
    await h.submit({ job_id: 'r', world_size: 2, hosts: ['a', 'b'] });
    await advance(10);
    const busy = await settle(h.submit({ job_id: 'r', world_size: 2, hosts: ['c', 'd'] }));
    expect(busy.error!.message).toBe('job r exists and is running: a new run with its id continues it only once it is stopped (ferry checkpoint r --stop)');
    expect((await settle(h.coordinator!.checkpoints.checkpoint('r', { stop: true }))).error).toBeUndefined();
    const again = await settle(h.submit({ job_id: 'r', world_size: 2, hosts: ['c', 'd'], checkpoint_every_ms: 60_000, auto_restarts: 3 }));
    expect(again.error).toBeUndefined();
    // The settings the new run gives are the job's now.
    expect(again.value!.auto_restarts).toBe(3);
    expect(h.catalog!.getJob('r')!.checkpointEveryMs).toBe(60_000);
    expect(again.value!.state).toBe(JobState.JOB_RUNNING);
    expect(h.catalog!.listRanks('r').map((x) => `${x.rank}@${x.host}`)).toEqual(['0@c', '1@d']);
    expect(h.catalog!.listEpochs('r').map((e) => e.epoch)).toEqual([1]); // restored from epoch 1, nothing new
  });
});
