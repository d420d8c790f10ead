// `ferry drain HOST` takes a node out of service: its ranks move away and no
// new ranks are placed there (new jobs, restarts, migrations, automatic
// restarts, later drains, image replicas) until `ferry undrain HOST`. The mark
// is in the catalog: it outlives agent and coordinator restarts. Over the
// in-memory transport, with the operator's requests on the wire; every host
// has an image store of its own.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode, RoundStep, type HostsReply, type MoveReply, type OperatorRequestInit, type UndrainHostReply } from '../../src/gen/proto.js';
import { HOST_REJOIN_GRACE_MS } from '../../src/coordinator/coordinator-config.js';
import { RANK_KILL_GRACE_MS } from '../../src/agent/rank-supervisor.js';
import { ControlPlaneHarness, settle } from './control-plane-harness.js';

let h: ControlPlaneHarness;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);
const HOSTS = ['a', 'b', 'c', 'd'];

async function setUp(config: { imageReplicas?: number } = {}): Promise<void> {
  vi.useFakeTimers();
  h = new ControlPlaneHarness({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 500, flushTimeoutMs: 2_000, dumpTimeoutMs: 3_000, resumeTimeoutMs: 2_000, ...config });
  h.startCoordinator();
  for (const host of HOSTS) h.startAgent(host, { imageStore: `store-${host}` });
  await advance(50);
}

afterEach(async () => {
  await h.close();
  vi.useRealTimers();
});

const ask = (req: Omit<OperatorRequestInit, 'version' | 'request_id'>) => settle(h.ask(req));

const drain = async (host: string, reason = '') => {
  const r = await ask({ drain: { host, reason } });
  return { value: r.value?.move as MoveReply | undefined, error: r.error };
};
const undrain = async (host: string) => {
  const r = await ask({ undrain_host: { host } });
  return { value: r.value?.undrain_host as UndrainHostReply | undefined, error: r.error };
};
const hostList = async () => ((await ask({ hosts: {} })).value!.hosts as HostsReply).hosts;
const rankHosts = (jobId: string) => h.catalog!.listRanks(jobId).map((r) => r.host);
const events = (kind: string) => h.catalog!.listEvents({ limit: 1000 }).filter((e) => e.kind === kind).map((e) => e.message);

async function stopAgent(host: string): Promise<void> {
  await h.crashAgent(host);
}

describe('ferry drain HOST / ferry undrain HOST', () => {
  it('moves the ranks off the host and places no new job there, named or not, until it is undrained', async () => {
    await setUp();
    await h.submit({ job_id: 'j', world_size: 4, rank_hosts: { 0: 'a', 1: 'a', 2: 'b', 3: 'b' } });
    await advance(10);
    const notices = h.followNotices('j');
    const { value, error } = await drain('a', 'disk swap');
    expect(error).toBeUndefined();
    expect(value!.moves.map((m) => `${m.rank}:${m.from_host}->${m.to_host}`)).toEqual(['0:a->c', '1:a->d']);
    // The job's ferry run hears why it paused.
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatch(/^ranks 0 a -> c, 1 a -> d migrated \(paused \d+ ms\)$/);
    expect(rankHosts('j')).toEqual(['c', 'd', 'b', 'b']);
    const a = (await hostList()).find((x) => x.name === 'a')!;
    expect([Number(a.drained_ms) > 0, a.drain_reason]).toEqual([true, 'disk swap']);
    expect(events('host.drained')).toEqual(['host a drained by the operator (disk swap): no new ranks go there']);
    // 12 ranks over the hosts: a has the most free slots, yet gets none.
    await h.submit({ job_id: 'k', world_size: 12 });
    expect(new Set(rankHosts('k'))).toEqual(new Set(['b', 'c', 'd']));
    const named = await settle(h.submit({ job_id: 'n', world_size: 2, hosts: ['a', 'b'] }));
    expect(named.error!.code).toBe(ErrorCode.HOST_DRAINED);
    expect(named.error!.message).toBe('host "a" is drained (disk swap): no new ranks go there until `ferry undrain a`');
    const mapped = await settle(h.submit({ job_id: 'm', world_size: 2, rank_hosts: { 0: 'b', 1: 'a' } }));
    expect(mapped.error!.code).toBe(ErrorCode.HOST_DRAINED);
    expect(h.catalog!.getJob('n')).toBeUndefined();
    const back = await undrain('a');
    expect(back.value!.was_drained).toBe(true);
    expect((await undrain('a')).value!.was_drained).toBe(false);
    expect(events('host.undrained')).toHaveLength(1);
    const again = await settle(h.submit({ job_id: 'n', world_size: 2, rank_hosts: { 0: 'a', 1: 'b' } }));
    expect(again.error).toBeUndefined();
    expect(rankHosts('n')).toEqual(['a', 'b']);
    expect((await hostList()).every((x) => Number(x.drained_ms) === 0)).toBe(true);
  });

  it('waits for a checkpoint that holds a job whose ranks it moves, instead of stopping half done', async () => {
    await setUp();
    await h.submit({ job_id: 'j', world_size: 2, rank_hosts: { 0: 'a', 1: 'b' } });
    await advance(10);
    h.nodes.get('b')!.steps.scripts.set(RoundStep.DUMP, (req) =>
      new Promise((r) => setTimeout(() => r({ failed: new Map(), images: req.dump_ranks.map((rank) => ({ rank, location: `/i/${rank}`, size_bytes: 1, manifest_sha256: 'b'.repeat(64), files: 1 })) }), 2_000)),
    );
    const cp = h.coordinator!.checkpoints.checkpoint('j', { stop: false });
    await advance(200);
    const drained = settle(h.ask({ drain: { host: 'a', reason: '' } }));
    await advance(200);
    expect((await cp).epoch?.epoch).toBe(1);
    h.nodes.get('b')!.steps.scripts.delete(RoundStep.DUMP);
    const { value, error } = await drained;
    expect(error).toBeUndefined();
    expect(value!.move!.moves.map((m) => `${m.rank}:${m.from_host}->${m.to_host}`)).toEqual(['0:a->c']);
  });

  it('refuses a migration to it, and leaves it out of restarts and of later drains', async () => {
    await setUp();
    await h.submit({ job_id: 'j', world_size: 4, rank_hosts: { 0: 'a', 1: 'b', 2: 'c', 3: 'd' } });
    await advance(10);
    expect((await drain('a')).error).toBeUndefined();
    const to = await settle(h.coordinator!.moves.migrate('j', new Map([[1, 'a']])));
    expect(to.error!.code).toBe(ErrorCode.HOST_DRAINED);
    expect(to.error!.message).toBe('host "a" is drained: no new ranks go there until `ferry undrain a`');
    expect(rankHosts('j')).toEqual(['b', 'b', 'c', 'd']);
    // Draining b now: its ranks go to c and d, never back to the drained a with its free slots.
    const second = await drain('b');
    expect(second.error).toBeUndefined();
    expect(rankHosts('j')).toEqual(['c', 'd', 'c', 'd']);
    // A stopped job's restart spreads over the hosts that are not drained.
    const cp = await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    expect(cp.error).toBeUndefined();
    const restart = await settle(h.coordinator!.moves.restart('j', {}));
    expect(restart.error).toBeUndefined();
    expect(new Set(rankHosts('j'))).toEqual(new Set(['c', 'd']));
  });

  it('says the host stays drained when its ranks cannot move, and drains a host that is down', async () => {
    await setUp();
    await h.submit({ job_id: 'j', world_size: 2, rank_hosts: { 0: 'a', 1: 'b' } });
    await advance(10);
    for (const other of ['b', 'c', 'd']) expect((await drain(other)).error).toBeUndefined();
    expect(rankHosts('j')).toEqual(['a', 'a']); // b's rank went to a, the only host not drained then
    const full = await drain('a');
    expect(full.error!.code).toBe(ErrorCode.NO_CAPACITY);
    expect(full.error!.message).toBe(
      'no other live host that is not drained to move the ranks of a to; host a stays drained (`ferry drain a` again moves what is left)',
    );
    expect((await undrain('d')).error).toBeUndefined();
    const retry = await drain('a');
    expect(retry.error).toBeUndefined();
    expect(rankHosts('j')).toEqual(['d', 'd']);
    // A host that is down with ranks is marked, and the operator told why they stay.
    await stopAgent('d');
    await advance(1_000);
    expect(h.hostState('d')).toBe('down');
    const down = await drain('d');
    expect(down.error!.code).toBe(ErrorCode.HOST_DOWN);
    expect(down.error!.message).toMatch(/^host d is drained now, but it is down: the ranks of job j there cannot be moved while it is; /);
    expect(h.coordinator!.hosts.get('d')!.drained).toBeDefined();
  });

  it('leaves the ranks of a job that is ending where they are, saying so, and moves the others', async () => {
    await setUp();
    await h.submit({ job_id: 'j', world_size: 2, rank_hosts: { 0: 'a', 1: 'b' } });
    await h.submit({ job_id: 'k', world_size: 2, rank_hosts: { 0: 'a', 1: 'b' } });
    await advance(10);
    h.nodes.get('a')!.ranks.ignoreTerm.add('j/0'); // it outlives the SIGTERM: j is ending, not ended, during the drain
    h.nodes.get('b')!.ranks.exit('j', 1, 4);
    await advance(200);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    const { value, error } = await drain('a');
    expect(error).toBeUndefined();
    expect(value!.moves.map((m) => `${m.job_id}/${m.rank}:${m.from_host}->${m.to_host}`)).toEqual(['k/0:a->c']);
    expect(value!.notes).toEqual(['job j is ending (rank 1 on b exited with status 4): its rank 0 on a ends with it, not moved']);
    await advance(RANK_KILL_GRACE_MS + 1_000);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'failed', exitCode: 4 });
    expect(rankHosts('k')).toEqual(['c', 'b']);
  });

  it('leaves a job that begins to end while its ranks move: the migration is given up, the drain goes on', async () => {
    await setUp();
    await h.submit({ job_id: 'j', world_size: 2, rank_hosts: { 0: 'a', 1: 'b' } });
    await h.submit({ job_id: 'k', world_size: 2, rank_hosts: { 0: 'a', 1: 'b' } });
    await advance(10);
    h.nodes.get('a')!.ranks.ignoreTerm.add('j/0');
    let failedJ = false;
    h.nodes.get('a')!.steps.scripts.set(RoundStep.DUMP, (req) => {
      if (req.job_id === 'j' && !failedJ) (failedJ = true), h.nodes.get('b')!.ranks.exit('j', 1, 4); // j fails of rank 1 while rank 0 is dumped
      return { failed: new Map(), images: h.nodes.get('a')!.steps.dumpImages(req) };
    });
    const { value, error } = await drain('a');
    expect(error).toBeUndefined();
    expect(value!.moves.map((m) => `${m.job_id}/${m.rank}`)).toEqual(['k/0']);
    expect(value!.notes).toEqual(['job j is ending (rank 1 on b exited with status 4): its rank 0 on a ends with it, not moved']);
    expect(events('migration.abort')).toEqual([expect.stringMatching(/^job j: migration \d+ given up: job j is ending \(rank 1 on b exited with status 4\)$/)]);
    await advance(RANK_KILL_GRACE_MS + 1_000);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'failed', exitCode: 4 });
  });

  it("drops a launcher's launch with a rank on a drained host, naming it", async () => {
    await setUp();
    expect((await drain('b', 'memory errors')).error).toBeUndefined();
    const join = (rank: number, host: string) =>
      ask({ join_launched_rank: { launch_key: 'test:1', rank, world_size: 2, host, argv: ['/app'], cwd: '/', env: {}, launcher: 'test', wait_ms: 5_000, job_id: 'launched' } });
    const [r0, r1] = await Promise.all([join(0, 'a'), join(1, 'b')]);
    for (const r of [r0, r1]) {
      expect(r.error!.message).toBe(
        'launch test:1 dropped: rank 1 runs on host b, which is drained (memory errors): no new ranks go there until `ferry undrain b`',
      );
    }
    expect(h.catalog!.getJob('launched')).toBeUndefined();
  });

  it('keeps the mark when the agent registers again and when the coordinator restarts', async () => {
    await setUp();
    expect((await drain('a', 'bad fan')).error).toBeUndefined();
    await stopAgent('a');
    await advance(1_000);
    h.startAgent('a', { imageStore: 'store-a' });
    await advance(200);
    expect(h.hostState('a')).toBe('up');
    expect(h.coordinator!.hosts.get('a')!.drained?.reason).toBe('bad fan');
    await h.stopCoordinator();
    h.startCoordinator();
    await advance(500);
    expect(h.hostState('a')).toBe('up');
    expect(h.coordinator!.hosts.get('a')!.drained?.reason).toBe('bad fan');
    const refused = await settle(h.submit({ job_id: 'j', world_size: 1, hosts: ['a'] }));
    expect(refused.error!.code).toBe(ErrorCode.HOST_DRAINED);
    expect((await undrain('zz')).error!.message).toBe('host "zz" is not known to the coordinator');
    expect((await drain('zz')).error!.code).toBe(ErrorCode.UNKNOWN_HOST);
  });

  it('an automatic restart after a lost host puts the lost ranks elsewhere than on the drained host that holds their copies', async () => {
    await setUp({ imageReplicas: 1 });
    await h.submit({ job_id: 'j', world_size: 4, rank_hosts: { 0: 'a', 1: 'a', 2: 'b', 3: 'b' }, auto_restarts: 1 });
    await advance(10);
    expect((await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: false }))).error).toBeUndefined();
    await advance(500);
    expect(h.catalog!.epochReplicas('j', 1).filter((r) => r.rank >= 2).map((r) => `${r.rank}@${r.host}`)).toEqual(['2@c', '3@c']);
    expect((await drain('c')).error).toBeUndefined(); // nothing runs there; it still serves its copies
    await stopAgent('b');
    await advance(1_000 + HOST_REJOIN_GRACE_MS);
    for (let t = 0; t < 20_000 && h.catalog!.getJob('j')!.state !== 'running'; t += 100) await advance(100);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    expect(rankHosts('j')).toEqual(['a', 'a', 'd', 'd']);
  });

  it('names the epochs whose only copy is on the drained host, and says nothing of those with a copy elsewhere', async () => {
    await setUp();
    await h.submit({ job_id: 'j', world_size: 2, rank_hosts: { 0: 'a', 1: 'b' } });
    await h.submit({ job_id: 'k', world_size: 2, rank_hosts: { 0: 'b', 1: 'b' } });
    await advance(10);
    for (const job of ['j', 'j', 'k']) expect((await settle(h.coordinator!.checkpoints.checkpoint(job, { stop: job === 'k' }))).error).toBeUndefined();
    const { value } = await drain('a');
    expect(value!.notes).toEqual([
      'host a holds the only copy of images of job j (epochs 1, 2): a restart from them needs host a up; `ferry checkpoint JOB --image-replicas 1` copies a job\'s newest epoch to another host',
    ]);
    // k's images are all on b; with a copy of j's newest epoch elsewhere, only epoch 1 stays a's alone.
    h.coordinator!.replication.set('j', 1);
    await advance(500);
    expect((await drain('a')).value!.notes).toEqual([
      'host a holds the only copy of images of job j (epoch 1): a restart from it needs host a up; `ferry checkpoint JOB --image-replicas 1` copies a job\'s newest epoch to another host',
    ]);
    expect((await drain('c')).value!.notes).toEqual([]);
  });

  it('copies no image replica to a drained host; undraining it makes the missing copies', async () => {
    await setUp({ imageReplicas: 1 });
    for (const other of ['b', 'c', 'd']) expect((await drain(other)).error).toBeUndefined();
    await h.submit({ job_id: 'j', world_size: 2, rank_hosts: { 0: 'a', 1: 'a' } });
    await advance(10);
    const cp = await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: false }));
    expect(cp.error).toBeUndefined();
    await advance(500);
    expect(h.catalog!.epochReplicas('j', 1)).toEqual([]);
    expect((await undrain('b')).error).toBeUndefined();
    await advance(500);
    expect(h.catalog!.epochReplicas('j', 1).map((r) => `${r.rank}@${r.host}:${r.state}`)).toEqual(['0@b:stored', '1@b:stored']);
  });
});
