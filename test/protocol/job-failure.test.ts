// How a job's failure is told when one rank's failure makes others fail too.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RoundStep } from '../../src/gen/proto.js';
import { ControlPlaneHarness } from './control-plane-harness.js';
import { failRanks } from './simulated-node.js';

let h: ControlPlaneHarness;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);
/** A submit's outcome, reply or error, without an unhandled rejection while timers advance. */
const settleSubmit = (p: Promise<unknown>) => p.then((v) => v, (e: unknown) => e);

beforeEach(async () => {
  vi.useFakeTimers();
  h = new ControlPlaneHarness();
  h.startCoordinator();
  h.startAgent('a');
  h.startAgent('b');
  await advance(50);
  await h.submit({ world_size: 3, hosts: ['a', 'b'] });
  await advance(10);
});

afterEach(async () => {
  await h.close();
  vi.useRealTimers();
});

describe('job failure', () => {
  it('names the rank that really failed, not a peer that only lost its connection to it', async () => {
    const lost = 'MPI_Abort with error code 1: lost the connection to rank 2 (connection closed): it exited without MPI_Finalize or was killed';
    h.nodes.get('a')!.ranks.exit('j', 0, 1, lost); // arrives first
    await advance(20);
    h.nodes.get('b')!.ranks.exit('j', 2, 7, 'MPI_Abort with error code 7: bad input');
    await advance(2_000);
    const job = h.catalog!.getJob('j')!;
    expect(job.state).toBe('failed');
    expect(job.exitCode).toBe(7);
    expect(job.detail).toMatch(/^rank 2 on b exited with status 7 \(MPI_Abort with error code 7: bad input\)/);
  });

  it('keeps the first real failure when several ranks fail for real', async () => {
    h.nodes.get('a')!.ranks.exit('j', 1, 3);
    await advance(20);
    h.nodes.get('b')!.ranks.exit('j', 2, 5);
    await advance(2_000);
    const job = h.catalog!.getJob('j')!;
    expect(job.exitCode).toBe(3);
    expect(job.detail).toMatch(/^rank 1 on a exited with status 3/);
  });

  it('refuses to checkpoint or migrate a job that is ending: its ranks have its SIGTERM, a restored copy would not', async () => {
    // A rank that cannot resume after a checkpoint fails the job; its ranks are still there for a moment.
    h.nodes.get('b')!.steps.scripts.set(RoundStep.RESUME, () => failRanks([2], 'rank 2 would not wake'));
    void h.coordinator!.checkpoints.checkpoint('j', { stop: false });
    await advance(20);
    expect(h.catalog!.getJob('j')!.state).toBe('running'); // until its last rank ends
    expect(h.catalog!.listRanks('j').map((r) => r.state)).toEqual(['running', 'running', 'running']);
    const ending = 'job j is ending (after committing epoch 1: RESUME failed: rank 2: host b: rank 2 would not wake)';
    await expect(h.coordinator!.moves.migrate('j', new Map([[0, 'b']]))).rejects.toThrow(`${ending}: nothing to migrate`);
    await expect(h.coordinator!.checkpoints.checkpoint('j', { stop: false })).rejects.toThrow(`${ending}: nothing to checkpoint`);
    await advance(2_000);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'failed', detail: 'after committing epoch 1: RESUME failed: rank 2: host b: rank 2 would not wake' });
  });

  it('a start that fails for a later rank of a host kills the ranks it did start there: all or nothing, the job fails with 127', async () => {
    h.nodes.get('a')!.ranks.refuse.set('k/1', 'rank 1 cannot start here');
    const started = await settleSubmit(h.submit({ job_id: 'k', world_size: 4, rank_hosts: { 0: 'a', 1: 'a', 2: 'b', 3: 'b' } }));
    await advance(2_000);
    // Rank 0 had started on a before rank 1 failed: it is killed, not left running without its job.
    expect([...h.nodes.get('a')!.ranks.live.keys()].filter((k) => k.startsWith('k/'))).toEqual([]);
    expect([...h.nodes.get('b')!.ranks.live.keys()].filter((k) => k.startsWith('k/'))).toEqual([]);
    const job = h.catalog!.getJob('k')!;
    expect(job.state).toBe('failed');
    expect(job.exitCode).toBe(127);
    expect(job.detail).toContain('rank 1 cannot start here');
    expect(started).toBeDefined();
  });
  it('a coordinator restarted while a failed job ends ends it with the failure, not with the SIGKILL its last rank got', async () => {
    const hostOf0 = h.catalog!.listRanks('j')[0]!.host;
    h.nodes.get(hostOf0)!.ranks.ignoreTerm.add('j/0'); // its agent kills it 10 s after the SIGTERM
    h.nodes.get('b')!.ranks.exit('j', 2, 7, 'bad input');
    await advance(1_000);
    expect(h.catalog!.getJob('j')!.ending).toMatchObject({ exitCode: 7 });
    await h.crashCoordinator();
    h.startCoordinator();
    await advance(2_000); // the agents register again: rank 0 is there, its job ending
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    await advance(10_000);
    const job = h.catalog!.getJob('j')!;
    expect(job).toMatchObject({ state: 'failed', exitCode: 7, detail: 'rank 2 on b exited with status 7 (bad input)', ending: null });
    expect(h.nodes.get(hostOf0)!.ranks.has('j', 0)).toBe(false);
  });

  it('a coordinator restarted while the operator cancels a job ends it cancelled', async () => {
    const hostOf0 = h.catalog!.listRanks('j')[0]!.host;
    h.nodes.get(hostOf0)!.ranks.ignoreTerm.add('j/0');
    await h.coordinator!.jobs.signal('j', 'SIGINT');
    await advance(1_000);
    await h.crashCoordinator();
    h.startCoordinator();
    await advance(12_000);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'cancelled', exitCode: 130, detail: 'cancelled by the operator (SIGINT)' });
  });
});
