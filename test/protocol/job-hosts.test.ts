// A job's own hosts (JobRow.hosts): `ferry run --hosts a,b` (or a launcher's
// nodes) is where the job runs, like a batch allocation. Restarts that name no
// hosts, automatic restarts and drains keep its ranks there; a restart that
// names hosts makes them the job's, `ferry migrate --to` adds one. A job
// submitted without hosts may go anywhere. Over the in-memory transport; a and
// b share an image store.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode } from '../../src/gen/proto.js';
import { HOST_REJOIN_GRACE_MS } from '../../src/coordinator/coordinator-config.js';
import { ControlPlaneHarness, settle } from './control-plane-harness.js';

let h: ControlPlaneHarness;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

beforeEach(async () => {
  // a and b share an image store (as over NFS): a restart on a reads b's images in place.
  h = await ControlPlaneHarness.started({ a: 'store-ab', b: 'store-ab', c: 'store-c', d: 'store-d' });
});

afterEach(() => h.stop());

const rankHosts = (jobId = 'j') => h.catalog!.listRanks(jobId).map((r) => r.host);
const jobHosts = (jobId = 'j') => h.coordinator!.jobs.jobInfo(jobId).hosts;

async function checkpoint(stop = false): Promise<void> {
  const cp = await settle(h.coordinator!.checkpoints.checkpoint('j', { stop }));
  expect(cp.error).toBeUndefined();
  await advance(1_000);
}

/** The host's agent stops and stays away past the grace period: its ranks are lost. */
async function lose(host: string): Promise<void> {
  await h.crashAgent(host);
  await advance(1_000);
  expect(h.hostState(host)).toBe('down');
  await advance(HOST_REJOIN_GRACE_MS);
}

describe("a job's own hosts", () => {
  it('are its --hosts; a job without them has none and may go anywhere', async () => {
    await h.submit({ world_size: 4, hosts: ['a', 'b'] });
    await h.submit({ job_id: 'k', world_size: 2 });
    await advance(10);
    expect(jobHosts()).toEqual(['a', 'b']);
    expect(h.catalog!.getJob('j')!.hosts).toEqual(['a', 'b']); // kept in the catalog, not in memory only
    expect(jobHosts('k')).toEqual([]);
  });

  it('keep a drain on them: the ranks go to the job\'s other host even when hosts outside are idle', async () => {
    await h.submit({ world_size: 4, hosts: ['a', 'b'] });
    await h.submit({ job_id: 'k', world_size: 2, rank_hosts: { 0: 'a', 1: 'b' } }); // no hosts of its own
    await advance(10);
    const { error } = await settle(h.coordinator!.moves.drain('a'));
    expect(error).toBeUndefined();
    expect(rankHosts()).toEqual(['b', 'b', 'b', 'b']);
    expect(rankHosts('k')[0]).toMatch(/^[cd]$/); // the least loaded of any host
  });

  it('refuse a drain of the only host of a job, saying how to move it elsewhere', async () => {
    await h.submit({ world_size: 2, hosts: ['a'] });
    await advance(10);
    const { error } = await settle(h.coordinator!.moves.drain('a'));
    expect(error).toMatchObject({ code: ErrorCode.NO_CAPACITY });
    expect((error as Error).message).toContain('job j runs on a only (its hosts); `ferry migrate j --rank R --to HOST` moves its ranks elsewhere');
    expect(rankHosts()).toEqual(['a', 'a']);
  });

  it('keep an automatic restart on them, and fail it saying so when none is left', async () => {
    await h.submit({ world_size: 4, hosts: ['a', 'b'], auto_restarts: 2 });
    await advance(10);
    expect(rankHosts()).toEqual(['a', 'a', 'b', 'b']);
    await checkpoint();
    await lose('b');
    for (let t = 0; t < 20_000 && h.catalog!.getJob('j')!.state !== 'running'; t += 100) await advance(100);
    expect(h.catalog!.getJob('j')!.state, h.catalog!.getJob('j')!.detail ?? '').toBe('running');
    expect(rankHosts()).toEqual(['a', 'a', 'a', 'a']); // not on c or d, idle as they are
    const told = h.catalog!.listEvents({ limit: 1000 }).filter((e) => e.kind === 'job.auto-restart').map((e) => e.message);
    expect(told[0]).toMatch(/; restarting it from epoch 1 on the live ones of its hosts a,b \(automatic restarts left: 1\)$/);
    await checkpoint();
    await lose('a');
    for (let t = 0; t < 20_000 && h.catalog!.getJob('j')!.state === 'running'; t += 100) await advance(100);
    await advance(5_000);
    const job = h.catalog!.getJob('j')!;
    expect(job.state).toBe('failed');
    const why = h.catalog!.listEvents({ limit: 1000 }).map((e) => e.message).filter((m) => m.includes('none of job j'));
    expect(why.join('\n')).toContain("none of job j's hosts (a, b) is up and not drained (a down, b down); name others with --hosts or --map");
  });

  it('are where a restart that names none goes; a restart\'s --hosts become the job\'s, its map and a migration add theirs', async () => {
    await h.submit({ world_size: 4, hosts: ['a', 'b'] });
    await advance(10);
    await checkpoint(true);
    expect(h.catalog!.getJob('j')!.state).toBe('stopped');
    expect((await settle(h.coordinator!.moves.restart('j', {}))).error).toBeUndefined();
    expect(new Set(rankHosts())).toEqual(new Set(['a', 'b']));
    await checkpoint(true);
    expect((await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }))).error).toBeUndefined();
    expect(jobHosts()).toEqual(['c', 'd']);
    await checkpoint(true);
    expect((await settle(h.coordinator!.moves.restart('j', {}))).error).toBeUndefined();
    expect(new Set(rankHosts())).toEqual(new Set(['c', 'd'])); // the next allocation's
    expect((await settle(h.coordinator!.moves.migrate('j', new Map([[0, 'a']])))).error).toBeUndefined();
    expect(jobHosts()).toEqual(['c', 'd', 'a']);
    await checkpoint(true);
    expect((await settle(h.coordinator!.moves.restart('j', { rankHosts: new Map([[0, 'b'], [1, 'c'], [2, 'c'], [3, 'd']]) }))).error).toBeUndefined();
    expect(jobHosts()).toEqual(['c', 'd', 'a', 'b']);
  });

  it('are set on a running job by ferry checkpoint --hosts: known hosts only, none of its live ranks left out; none means any', async () => {
    await h.submit({ world_size: 4, hosts: ['a', 'b'] });
    await advance(10);
    const set = (hosts: string[]) => h.ask({ checkpoint: { job_id: 'j', set_hosts: true, hosts } });
    expect((await set(['a', 'b', 'c'])).job!.job!.hosts).toEqual(['a', 'b', 'c']);
    await expect(set(['a', 'zz'])).rejects.toThrow('host "zz" is not known to the coordinator');
    await expect(set(['a', 'c'])).rejects.toThrow('job j: rank 2 runs on b, rank 3 runs on b, which the list leaves out; migrate them first');
    await expect(h.ask({ checkpoint: { job_id: 'nope', set_hosts: true, hosts: ['a'] } })).rejects.toThrow('no job "nope" in the catalog');
    expect(h.catalog!.getJob('j')!.hosts).toEqual(['a', 'b', 'c']); // the refusals changed nothing
    // A drain of b may now use c.
    expect((await settle(h.coordinator!.moves.drain('b'))).error).toBeUndefined();
    expect(rankHosts().slice(2)).toEqual(['c', 'c']);
    expect((await set([])).job!.job!.hosts).toEqual([]);
    expect(h.catalog!.getJob('j')!.hosts).toBeNull();
  });

  it('refuse a restart that names none when every one of them is down, naming each', async () => {
    await h.submit({ world_size: 2, hosts: ['c'] });
    await advance(10);
    await checkpoint(true);
    await lose('c');
    const { error } = await settle(h.coordinator!.moves.restart('j', {}));
    expect(error).toMatchObject({ code: ErrorCode.NO_CAPACITY });
    expect((error as Error).message).toBe("none of job j's hosts (c) is up and not drained (c down); name others with --hosts or --map");
  });
});
