// Restart and migration over the in-memory transport with scripted agents:
// the steps each host sees, what happens on each failure, and that a failed
// move loses nothing.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode, RoundStep, type MoveReplyInit } from '../../src/gen/proto.js';
import { ControlPlaneHarness, settle } from './control-plane-harness.js';
import { failRanks, type SimulatedRanks } from './simulated-node.js';
import { HOST_REJOIN_GRACE_MS } from '../../src/coordinator/coordinator-config.js';
import { RANK_KILL_GRACE_MS } from '../../src/agent/rank-supervisor.js';
import type { MoveProgress } from '../../src/coordinator/checkpoint/move-service.js';
import { FerryError } from '../../src/common/ferry-error.js';

let h: ControlPlaneHarness;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

beforeEach(async () => {
  h = await ControlPlaneHarness.started(['a', 'b', 'c', 'd']);
  await h.submit({ world_size: 4, hosts: ['a', 'b'] });
  await advance(10);
});

afterEach(() => h.stop());


const steps = (host: string) => h.nodes.get(host)!.steps.stepsSeen();
const rankHosts = () => h.catalog!.listRanks('j').map((r) => r.host);
const clearSeen = () => ['a', 'b', 'c', 'd'].forEach((x) => (h.nodes.get(x)!.steps.seen.length = 0));

describe('restart', () => {
  it('restarts a stopped job from its last committed epoch on other hosts', async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    expect(h.catalog!.getJob('j')!.state).toBe('stopped');
    clearSeen();
    const { value, error } = await settle<MoveReplyInit>(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(error).toBeUndefined();
    expect(value!.epoch).toBe(1);
    expect(steps('c')).toEqual([RoundStep.FETCH, RoundStep.RESTORE, RoundStep.RESUME, RoundStep.DISCARD]);
    expect(steps('a')).toEqual([]);
    // c fetches ranks 0,1 from a's image server, and removes its copies once they run again.
    const fetchC = h.nodes.get('c')!.steps.seen[0];
    expect(fetchC.ranks).toEqual([0, 1]);
    expect(fetchC.transient).toBe(true); // a copy for this restore only: not fsynced
    expect(h.nodes.get('c')!.steps.seen[3]).toMatchObject({ step: RoundStep.DISCARD, ranks: [0, 1], epoch: 1 });
    expect(h.catalog!.restartCopies()).toEqual([]);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    expect(rankHosts()).toEqual(['c', 'c', 'd', 'd']);
    expect(h.catalog!.listRanks('j').every((r) => r.state === 'running')).toBe(true);
  });

  it("fetches again from the agent started again on a source host when the one serving the images ended during the FETCH", async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    clearSeen();
    h.nodes.get('c')!.steps.scripts.set(RoundStep.FETCH, (req) => {
      if (req.sources.every((x) => x.server === 'tcp://images.a:2')) {
        return { failed: new Map(), bytesFetched: 500, filesCutBack: [{ rank: 1, path: '/run/log.1', from_bytes: 90, to_bytes: 40 }] };
      }
      void h.crashAgent('a');
      setTimeout(() => h.startAgent('a', { imageServer: 'tcp://images.a:2' }, undefined, undefined, () => 0), 300); // (tries every 100 ms)
      return { ...failRanks([1], 'image server tcp://images.a:1: no connection for 3000 ms', ErrorCode.UNAVAILABLE), bytesFetched: 1000 };
    });
    const { value, error } = await settle<MoveReplyInit>(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(error).toBeUndefined();
    // Rank 0 came in the first FETCH; only rank 1 is asked again, from the new address.
    expect(h.nodes.get('c')!.steps.seen.filter((x) => x.step === RoundStep.FETCH).map((x) => x.sources)).toEqual([
      [{ rank: 0, host: 'a', server: 'tcp://images.a:1' }, { rank: 1, host: 'a', server: 'tcp://images.a:1' }],
      [{ rank: 1, host: 'a', server: 'tcp://images.a:2' }],
    ]);
    expect(h.nodes.get('c')!.steps.seen.find((x) => x.step === RoundStep.RESTORE)!.sources.map((x) => x.server)).toEqual(['tcp://images.a:1', 'tcp://images.a:2']);
    expect(value!.bytes_shipped).toBe(1500 + 2000); // c's two attempts, and d's
    expect(value!.notes).toEqual(['rank 1 on c: /run/log.1: cut back from 90 to 40 bytes, its size at epoch 1 (written after that checkpoint)']);
    expect(rankHosts()).toEqual(['c', 'c', 'd', 'd']);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it("rolls back the files the ranks wrote after the epoch, and tells the operator each file its agents cut back", async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    clearSeen();
    h.nodes.get('d')!.steps.scripts.set(RoundStep.FETCH, () => ({
      failed: new Map(),
      filesCutBack: [{ rank: 3, path: '/home/u/run/history.3', from_bytes: 9000, to_bytes: 4500 }],
    }));
    const { value, error } = await settle<MoveReplyInit>(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(error).toBeUndefined();
    expect(value!.notes).toEqual(['rank 3 on d: /home/u/run/history.3: cut back from 9000 to 4500 bytes, its size at epoch 1 (written after that checkpoint)']);
    // Every target cuts in FETCH, before any RESTORE (whose roll_back_files only marks the ranks' host logs);
    // a migration cuts nothing and marks nothing (its rank wrote nothing after its dump).
    for (const host of ['c', 'd']) {
      expect(h.nodes.get(host)!.steps.seen.find((x) => x.step === RoundStep.FETCH)).toMatchObject({ rollBackFiles: true });
      expect(h.nodes.get(host)!.steps.seen.find((x) => x.step === RoundStep.RESTORE)).toMatchObject({ rollBackFiles: true });
    }
    const events = h.catalog!.listEvents({ limit: 500 }).filter((e) => e.kind === 'restart.file-cut-back').map((e) => e.message);
    expect(events).toEqual([`job j: ${value!.notes![0]}`]);
    clearSeen();
    h.nodes.get('d')!.steps.scripts.delete(RoundStep.FETCH);
    expect((await settle(h.coordinator!.moves.migrate('j', new Map([[1, 'a']])))).error).toBeUndefined();
    expect(h.nodes.get('a')!.steps.seen.find((x) => x.step === RoundStep.FETCH)).toMatchObject({ rollBackFiles: false });
    expect(h.nodes.get('a')!.steps.seen.find((x) => x.step === RoundStep.RESTORE)).toMatchObject({ rollBackFiles: false });
  });

  it("cuts an append-only file the ranks share back to the largest size any rank's dump recorded for it", async () => {
    // Ranks 0,1 (host a) and 2,3 (host b) append to one log; each dump saw it at another size (dumped one after the other).
    const sizes: Record<number, number> = { 0: 100, 1: 340, 2: 220, 3: 90 };
    for (const host of ['a', 'b']) {
      h.nodes.get(host)!.steps.scripts.set(RoundStep.STORE, (req) => ({
        failed: new Map(),
        images: h.nodes.get(host)!.steps.dumpImages(req).map((img) => ({
          ...img,
          appended_files: [
            { path: '/run/shared.log', size_bytes: sizes[img.rank!] },
            ...(img.rank === 2 ? [{ path: '/run/rank-2.log', size_bytes: 7 }] : []),
          ],
        })),
      }));
    }
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    expect(h.catalog!.epochImages('j', 1).map((i) => i.appendedFiles.map((f) => f.sizeBytes))).toEqual([[100], [340], [220, 7], [90]]);
    clearSeen();
    expect((await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }))).error).toBeUndefined();
    for (const host of ['c', 'd']) {
      expect(h.nodes.get(host)!.steps.seen.find((x) => x.step === RoundStep.FETCH)!.appendedSizes).toEqual([
        ['/run/shared.log', 340],
        ['/run/rank-2.log', 7],
      ]);
    }
  });

  it('names the files already cut back when a restore fails after it, has them put back, and leaves the job stopped', async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    h.nodes.get('d')!.steps.scripts.set(RoundStep.FETCH, () => ({ failed: new Map(), filesCutBack: [{ rank: 2, path: '/run/out.2', from_bytes: 80, to_bytes: 40 }] }));
    h.nodes.get('d')!.steps.scripts.set(RoundStep.RESTORE, () => failRanks([2], 'criu restore failed', ErrorCode.CRIU_FAILED));
    h.nodes.get('d')!.steps.scripts.set(RoundStep.PUT_BACK, () => ({ failed: new Map(), filesPutBack: [{ rank: 2, path: '/run/out.2', from_bytes: 40, to_bytes: 80 }] }));
    const { error } = await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(error?.message).toMatch(
      /rank 2: host d: criu restore failed \(files cut back before it: rank 2 on d: \/run\/out\.2: cut back from 80 to 40 bytes, its size at epoch 1 \(written after that checkpoint\); put back as it was after the restart failed\)/,
    );
    expect(h.catalog!.getJob('j')!.state).toBe('stopped');
    expect(h.catalog!.listEvents({ limit: 500 }).filter((e) => e.kind.startsWith('restart.file-')).map((e) => e.message)).toEqual([
      'job j: rank 2 on d: /run/out.2: cut back from 80 to 40 bytes, its size at epoch 1 (written after that checkpoint)',
      'job j: rank 2 on d: /run/out.2: put back from 40 to 80 bytes',
    ]);
    // Only the host that cut, last (after the STOP of what was restored and the removal of its copies).
    expect(steps('d').at(-1)).toBe(RoundStep.PUT_BACK);
    expect(steps('c')).not.toContain(RoundStep.PUT_BACK);
  });

  it('leaves a job whose restart failed stopped, not ending, also when a restored rank died during it', async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    const c = h.nodes.get('c')!;
    // On c its ranks come back and one dies at once (the job is failing); d cannot restore its own.
    c.steps.scripts.set(RoundStep.RESTORE, (req) => {
      const started = c.steps.restoreRanks(req);
      setTimeout(() => c.ranks.exit('j', started[0]!.rank!, 137), 10);
      return new Promise((r) => setTimeout(() => r({ failed: new Map(), started }), 200));
    });
    h.nodes.get('d')!.steps.scripts.set(RoundStep.RESTORE, (req) => new Promise((r) => setTimeout(() => r(failRanks(req.sources.map((x) => x.rank), 'criu restore failed')), 400)));
    const { error } = await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(error?.message).toMatch(/restart of job j from epoch 1 failed: RESTORE failed: .*criu restore failed/);
    await advance(1_000);
    expect(h.catalog!.getJob('j')).toMatchObject({ state: 'stopped', ending: null });
    c.steps.scripts.delete(RoundStep.RESTORE);
    h.nodes.get('d')!.steps.scripts.delete(RoundStep.RESTORE);
    expect((await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }))).error).toBeUndefined();
    await advance(1_000);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it('says which files stay cut when a failed FETCH cannot have them put back, and where their bytes are', async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    h.nodes.get('d')!.steps.scripts.set(RoundStep.FETCH, () => ({
      failed: new Map([[3, new FerryError(ErrorCode.IMAGE_CORRUPT, 'sha256 mismatch')]]),
      filesCutBack: [{ rank: 2, path: '/run/out.2', from_bytes: 80, to_bytes: 40 }],
    }));
    h.nodes.get('d')!.steps.scripts.set(RoundStep.PUT_BACK, () => ({ failed: new Map(), putBackProblems: ['rank 2: /run/out.2: not put back: it is 50 bytes now; its 40 cut bytes are kept in /x/0.tail'] }));
    const { error } = await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(error?.message).toMatch(/; after the restart failed, 0 of the 1 were put back; left cut: on d: rank 2: \/run\/out\.2: not put back: it is 50 bytes now; its 40 cut bytes are kept in \/x\/0\.tail\)/);
    expect(h.nodes.get('d')!.steps.seen.filter((s) => s.step === RoundStep.PUT_BACK).map((s) => s.ranks)).toEqual([[2]]);
  });

  it('asks a target that did not answer its FETCH to put back too (its agent does once that FETCH ends), and says what it did', async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    h.nodes.get('d')!.steps.scripts.set(RoundStep.FETCH, () => 'hang');
    h.nodes.get('d')!.steps.scripts.set(RoundStep.PUT_BACK, () => ({ failed: new Map(), filesPutBack: [{ rank: 2, path: '/run/out.2', from_bytes: 40, to_bytes: 80 }] }));
    const { error } = await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(error?.message).toContain('(cut back by a FETCH that had not answered, and put back: rank 2 on d: /run/out.2: put back from 40 to 80 bytes)');
    expect(h.nodes.get('d')!.steps.seen.filter((x) => x.step === RoundStep.PUT_BACK).map((x) => x.ranks)).toEqual([[2, 3]]);
    expect(steps('c')).not.toContain(RoundStep.PUT_BACK); // it answered, having cut nothing
    expect(h.catalog!.listEvents({ limit: 500 }).filter((e) => e.kind === 'restart.file-put-back').map((e) => e.message)).toEqual([
      'job j: rank 2 on d: /run/out.2: put back from 40 to 80 bytes',
    ]);
    h.nodes.get('d')!.steps.scripts.delete(RoundStep.FETCH);
    h.nodes.get('d')!.steps.scripts.delete(RoundStep.PUT_BACK);
  });

  it('says where a target that answered neither its FETCH nor the PUT_BACK keeps what it may have cut', async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    h.nodes.get('d')!.steps.scripts.set(RoundStep.FETCH, () => 'hang');
    h.nodes.get('d')!.steps.scripts.set(RoundStep.PUT_BACK, () => 'hang');
    const { error } = await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    const note =
      'host d answered neither its FETCH nor the PUT_BACK after it: what it cut back for ranks 2,3, if anything, it puts back once that FETCH ends, ' +
      'if the PUT_BACK reached it; until then the bytes are kept on d in IMAGES/.cut-back/d/j/1';
    expect(error?.message).toContain(`(${note})`);
    expect(h.catalog!.listEvents({ limit: 500 }).filter((e) => e.kind === 'restart.file-left-cut').map((e) => e.message)).toEqual([`job j: ${note}`]);
    h.nodes.get('d')!.steps.scripts.delete(RoundStep.FETCH);
    h.nodes.get('d')!.steps.scripts.delete(RoundStep.PUT_BACK);
  });

  it('puts each rank back on the host that holds its image when it names no hosts: nothing is shipped', async () => {
    await h.submit({ job_id: 'k', world_size: 4, rank_hosts: { 0: 'a', 1: 'b', 2: 'a', 3: 'b' } });
    await advance(10);
    await settle(h.coordinator!.checkpoints.checkpoint('k', { stop: true }));
    await advance(1_000);
    const seen: MoveProgress[] = [];
    const { value, error } = await settle<MoveReplyInit>(h.coordinator!.moves.restart('k', { progress: (p) => seen.push(p) }));
    expect(error).toBeUndefined();
    // By capacity alone the job's hosts would take blocks of ranks (0,1 on a; 2,3 on b) and ranks 1 and 2 would travel.
    expect(value!.moves!.map((m) => `${m.rank}:${m.from_host}->${m.to_host}`)).toEqual(['0:a->a', '1:b->b', '2:a->a', '3:b->b']);
    expect(seen.map((p) => p.bytesTotal)).toEqual([0, 0, 0, 0]); // every image read where it is
  });

  it('keeps the restarted job when a target agent is lost during RESUME: the RESUME goes again to the agent that comes back', async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    h.nodes.get('c')!.steps.scripts.set(RoundStep.RESUME, () => 'hang');
    const restart = settle<MoveReplyInit>(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    await advance(300);
    expect(steps('c').at(-1)).toBe(RoundStep.RESUME);
    const ranksOfC = h.nodes.get('c')!.ranks;
    await h.crashAgent('c');
    const { error } = await restart;
    expect(error).toBeUndefined();
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    // c's copies of the images could not be removed: the catalog keeps them listed.
    expect(h.catalog!.restartCopies().map((x) => [x.host, x.rank])).toEqual([['c', 0], ['c', 1]]);
    h.startAgent('c', {}, ranksOfC); // re-adopts the restored ranks 0 and 1
    await advance(500);
    // The RESUME it missed, then the DISCARD of its copies.
    expect(h.nodes.get('c')!.steps.seen.map((x) => [x.step, x.ranks])).toEqual([[RoundStep.RESUME, [0, 1]], [RoundStep.DISCARD, [0, 1]]]);
    expect(h.catalog!.restartCopies()).toEqual([]);
    await advance(HOST_REJOIN_GRACE_MS + 1_000);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    expect(rankHosts()).toEqual(['c', 'c', 'd', 'd']);
  });

  it('reports its phases with the image bytes to ship and shipped', async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    const seen: MoveProgress[] = [];
    const { error } = await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'], progress: (p) => seen.push(p) }));
    expect(error).toBeUndefined();
    expect(seen.map((p) => p.phase)).toEqual(['fetching', 'fetched', 'restoring', 'resuming']);
    const total = h.catalog!.epochImages('j', 1).reduce((n, i) => n + i.sizeBytes, 0);
    expect(total).toBeGreaterThan(0);
    expect(seen.every((p) => p.jobId === 'j' && p.bytesTotal === total)).toBe(true);
    // the simulated agents ship 1000 bytes per image
    expect(seen.map((p) => p.bytesDone)).toEqual([0, 4000, 4000, 4000]);
  });

  it('refuses, with nothing started, when an image is on a host that is down', async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    await h.agents.get([...h.agents.keys()].find((k) => k.startsWith('b#'))!)!.stop();
    await advance(1_000);
    expect(h.hostState('b')).toBe('down');
    clearSeen();
    const { error } = await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(error!.code).toBe(ErrorCode.HOST_DOWN);
    expect(error!.message).toMatch(/epoch 1 of job j: the image of rank 2 is on host b, which is down, and there is no other copy; nothing was started/);
    expect(steps('c')).toEqual([]);
    expect(h.catalog!.getJob('j')!.state).toBe('stopped');
  });

  it('leaves the job stopped and the epoch as it was when a target cannot restore', async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    h.nodes.get('d')!.steps.scripts.set(RoundStep.RESTORE, () => failRanks([3], 'criu restore failed: no such file /usr/lib/libfoo.so on host d'));
    clearSeen();
    const { error } = await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(error!.message).toMatch(/RESTORE failed: rank 3: host d: criu restore failed: no such file \/usr\/lib\/libfoo.so on host d; nothing of it runs, epoch 1 is unchanged/);
    // what came back is stopped, the fetched copies removed; the epoch's own images stay on a and b
    expect(steps('c')).toEqual([RoundStep.FETCH, RoundStep.RESTORE, RoundStep.STOP, RoundStep.DISCARD]);
    expect(steps('a')).toEqual([]);
    expect(h.catalog!.getJob('j')!.state).toBe('stopped');
    expect(h.catalog!.getEpoch('j', 1)!.state).toBe('committed');
  });

  it('stops the ranks a target restored when its answer never came but it stays up', async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    const d = h.nodes.get('d')!;
    d.steps.scripts.set(RoundStep.RESTORE, (req) => {
      d.steps.restoreRanks(req); // its ranks come up, and the answer is lost
      return 'hang';
    });
    clearSeen();
    const { error } = await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }), 30_000);
    expect(error!.message).toMatch(/RESTORE failed: ranks 2,3: host d: round to host d: no answer within \d+ ms; nothing of it runs, epoch 1 is unchanged/);
    expect(h.hostState('d')).toBe('up');
    expect(steps('d')).toEqual([RoundStep.FETCH, RoundStep.RESTORE, RoundStep.STOP, RoundStep.DISCARD]);
    expect(d.ranks.running()).toEqual([]);
    expect(h.catalog!.restartCopies()).toEqual([]);
    expect(h.catalog!.getJob('j')!.state).toBe('stopped');
    expect(h.catalog!.getEpoch('j', 1)!.state).toBe('committed');
  });

  it("gives the operator the agents' own error code: IMAGE_CORRUPT for a checksum mismatch, UNAVAILABLE when the causes differ", async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    const corrupt = () => failRanks([1], 'epoch 1 rank 1: pages-1.img: sha256 mismatch', ErrorCode.IMAGE_CORRUPT);
    h.nodes.get('c')!.steps.scripts.set(RoundStep.FETCH, corrupt);
    let r = await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(r.error!.code).toBe(ErrorCode.IMAGE_CORRUPT);
    expect(r.error!.message).toMatch(/FETCH failed: rank 1: host c: epoch 1 rank 1: pages-1.img: sha256 mismatch; nothing of it runs, epoch 1 is unchanged/);
    expect(h.catalog!.getJob('j')!.state).toBe('stopped');
    h.nodes.get('d')!.steps.scripts.set(RoundStep.FETCH, () => failRanks([3], 'epoch 1 rank 3: no manifest', ErrorCode.IMAGE_MISSING));
    r = await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(r.error!.code).toBe(ErrorCode.UNAVAILABLE);
    expect(r.error!.message).toMatch(/rank 1: host c: .*sha256 mismatch; rank 3: host d: epoch 1 rank 3: no manifest/);
    h.nodes.get('c')!.steps.scripts.delete(RoundStep.FETCH);
    h.nodes.get('d')!.steps.scripts.delete(RoundStep.FETCH);
    h.nodes.get('d')!.steps.scripts.set(RoundStep.RESTORE, () => failRanks([2], 'host d lacks /opt/app/lib.so', ErrorCode.RESTORE_PRECHECK_FAILED));
    r = await settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(r.error!.code).toBe(ErrorCode.RESTORE_PRECHECK_FAILED);
    expect(h.catalog!.getEpoch('j', 1)!.state).toBe('committed');
  });

  it('refuses a running job and a job without a committed epoch', async () => {
    const running = await settle(h.coordinator!.moves.restart('j', {}));
    expect(running.error!.message).toMatch(/job j is running: stop it with "ferry checkpoint j --stop" first/);
  });
});

describe('a coordinator restart in the middle of a start or a move', () => {
  it('holds the ranks of a restart cut short before every rank was restored, then stops the job at its epoch', async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    h.nodes.get('d')!.steps.scripts.set(RoundStep.RESTORE, () => 'hang');
    h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }).catch(() => {});
    await advance(300);
    expect(steps('c').at(-1)).toBe(RoundStep.RESTORE); // c restored ranks 0 and 1; d never restores 2 and 3
    await h.crashCoordinator();
    h.nodes.get('d')!.steps.scripts.delete(RoundStep.RESTORE);
    clearSeen();
    h.startCoordinator();
    await advance(5_000);
    // c's restored ranks are not resumed without their peers; the copies c and d fetched go.
    expect(h.catalog!.getJob('j')!.state).toBe('pending');
    expect(steps('c')).toEqual([RoundStep.DISCARD]);
    expect(h.nodes.get('d')!.steps.seen.map((x) => [x.step, x.epoch, x.ranks])).toEqual([[RoundStep.DISCARD, 1, [2, 3]]]);
    expect(h.catalog!.restartCopies()).toEqual([]);
    expect([...h.nodes.get('c')!.ranks.live.keys()]).toEqual(['j/0', 'j/1']);
    await advance(HOST_REJOIN_GRACE_MS);
    expect(steps('c')).toEqual([RoundStep.DISCARD]);
    expect([...h.nodes.get('c')!.ranks.live.keys()]).toEqual([]);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'stopped', detail: 'stopped after checkpoint epoch 1; ferry restart j continues it' });
    const stopping = h.catalog!.listEvents({ limit: 200 }).find((e) => e.kind === 'job.stopping');
    expect(stopping?.message).toBe('job j: restarting from epoch 1 was cut short by a coordinator restart: ranks 2,3 never started; stopping it at epoch 1');
    // Nothing is lost: the restart can be asked again.
    const again = await settle<MoveReplyInit>(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(again.error).toBeUndefined();
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it('kills the ranks that a restore cut short by a coordinator restart brings up after the job was stopped', async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    const d = h.nodes.get('d')!;
    d.steps.scripts.set(RoundStep.RESTORE, async (req) => {
      await new Promise((r) => setTimeout(r, HOST_REJOIN_GRACE_MS + 5_000)); // long after the new coordinator gave up on them
      return { failed: new Map(), started: d.steps.restoreRanks(req) };
    });
    h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }).catch(() => {});
    await advance(300);
    await h.crashCoordinator();
    h.startCoordinator();
    await advance(HOST_REJOIN_GRACE_MS + 2_000);
    expect(h.catalog!.getJob('j')!.state).toBe('stopped');
    await advance(5_000); // d's restore ends: its agent registers again with ranks 2,3, with the coordinator that stopped the job
    expect([...d.ranks.live.keys()]).toEqual([]);
    expect([...h.nodes.get('c')!.ranks.live.keys()]).toEqual([]);
    expect(h.catalog!.listEvents({ limit: 500 }).filter((e) => e.kind === 'rank.stale-copy').map((e) => e.message)).toEqual([
      'job j rank 2: host d came back with a copy of it alive, but the job counts the rank as ended; killing that copy',
      'job j rank 3: host d came back with a copy of it alive, but the job counts the rank as ended; killing that copy',
    ]);
    expect(h.catalog!.getJob('j')!.state).toBe('stopped');
  });

  it('ends a job cancelled while restored ranks die of it before their restore is answered', async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    const c = h.nodes.get('c')!;
    c.steps.scripts.set(RoundStep.RESTORE, async (req) => {
      const started = c.steps.restoreRanks(req);
      await new Promise((r) => setTimeout(r, 500)); // the reply lags: the cancel's SIGTERM ends them first
      return { failed: new Map(), started };
    });
    const d = h.nodes.get('d')!;
    d.steps.scripts.set(RoundStep.RESTORE, async (req) => {
      await new Promise((r) => setTimeout(r, 900)); // d restores its ranks after the cancel: the job goes on ending
      return { failed: new Map(), started: d.steps.restoreRanks(req) };
    });
    const restart = settle(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    await advance(50);
    expect(h.catalog!.getJob('j')!.state).toBe('pending');
    await h.coordinator!.jobs.signal('j', 'SIGTERM');
    await restart;
    await advance(1_000);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'cancelled', detail: 'cancelled by the operator (SIGTERM)' });
    expect(h.catalog!.listRanks('j').map((r) => r.state)).toEqual(['exited', 'exited', 'exited', 'exited']);
    for (const host of ['c', 'd']) expect(h.nodes.get(host)!.ranks.running()).toEqual([]);
  });

  it('fails a job whose launch was cut short, naming the ranks that never started', async () => {
    h.hub.severed = true; // the coordinator creates the job; its start requests are lost, and then it dies
    h.coordinator!.jobs
      .submit('op', 2, { argv: ['/app'], cwd: '/', env: {}, world_size: 2, hosts: ['c'], rank_hosts: {}, follow: false, job_id: 'k', checkpoint_every_ms: 0, keep_epochs: 0, auto_restarts: 0, own_image_replicas: false, image_replicas: 0, stdin: new Uint8Array(0) })
      .catch(() => {});
    await advance(50);
    await h.crashCoordinator();
    h.startCoordinator();
    expect(h.catalog!.getJob('k')!.state).toBe('pending');
    await advance(HOST_REJOIN_GRACE_MS + 10_000);
    expect(h.catalog!.getJob('k')!).toMatchObject({ state: 'failed', exitCode: 1, detail: 'its launch was cut short by a coordinator restart: ranks 0,1 never started' });
    expect(h.catalog!.getJob('j')!.state).toBe('running'); // the job that had started is left alone
  });

  it('a restart asked of a restarted coordinator before the agents registered waits for them, and places ranks on them', async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    await h.crashCoordinator();
    h.startCoordinator();
    expect(['a', 'b', 'c', 'd'].map((host) => h.hostState(host))).toEqual(['unknown', 'unknown', 'unknown', 'unknown']);
    const { error } = await settle<MoveReplyInit>(h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }));
    expect(error).toBeUndefined();
    expect(rankHosts()).toEqual(['c', 'c', 'd', 'd']);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it('finishes a restart whose restored ranks were waiting for RESUME: they resume and the job runs', async () => {
    await settle(h.coordinator!.checkpoints.checkpoint('j', { stop: true }));
    await advance(1_000);
    for (const host of ['c', 'd']) h.nodes.get(host)!.steps.scripts.set(RoundStep.RESUME, () => 'hang');
    h.coordinator!.moves.restart('j', { hosts: ['c', 'd'] }).catch(() => {}); // dies with the coordinator
    await advance(300);
    for (const host of ['c', 'd']) expect(steps(host).at(-1)).toBe(RoundStep.RESUME);
    await h.crashCoordinator();
    for (const host of ['c', 'd']) h.nodes.get(host)!.steps.scripts.delete(RoundStep.RESUME);
    h.startCoordinator();
    expect(h.catalog!.getJob('j')!.state).toBe('pending');
    await advance(2_000);
    // Each target: the RESUME its ranks waited for, and the DISCARD of the copies it fetched.
    expect(h.nodes.get('c')!.steps.seen.slice(-2)).toMatchObject([{ step: RoundStep.RESUME, ranks: [0, 1], epoch: 1 }, { step: RoundStep.DISCARD, ranks: [0, 1], epoch: 1 }]);
    expect(h.nodes.get('d')!.steps.seen.slice(-2)).toMatchObject([{ step: RoundStep.RESUME, ranks: [2, 3], epoch: 1 }, { step: RoundStep.DISCARD, ranks: [2, 3], epoch: 1 }]);
    expect(h.catalog!.restartCopies()).toEqual([]);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'running', detail: 'restarted from epoch 1' });
    expect(rankHosts()).toEqual(['c', 'c', 'd', 'd']);
  });

  it('resumes every rank where it was when a migration was cut short before its rank moved', async () => {
    h.nodes.get('a')!.steps.scripts.set(RoundStep.DUMP, () => 'hang');
    h.coordinator!.moves.migrate('j', new Map([[1, 'c']])).catch(() => {});
    await advance(300);
    expect(steps('a')).toEqual([RoundStep.PREPARE, RoundStep.DUMP]);
    await h.crashCoordinator();
    h.nodes.get('a')!.steps.scripts.delete(RoundStep.DUMP);
    h.startCoordinator();
    await advance(2_000);
    // Each host drops its ranks' folders of the migration's image set (a's dump of rank 1), then they resume.
    expect(steps('a')).toEqual([RoundStep.PREPARE, RoundStep.DUMP, RoundStep.DISCARD, RoundStep.RESUME]);
    expect(h.nodes.get('a')!.steps.seen[2]).toMatchObject({ epoch: 1, ranks: [0, 1] });
    expect(steps('b')).toEqual([RoundStep.PREPARE, RoundStep.DISCARD, RoundStep.RESUME]);
    expect(h.nodes.get('a')!.steps.seen.at(-1)!.epoch).toBe(1); // the migration's image set
    expect(rankHosts()).toEqual(['a', 'a', 'b', 'b']);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    const late = h.catalog!.listEvents({ limit: 200 }).filter((e) => e.kind === 'job.resumed-late');
    expect(late.map((e) => e.message)).toContain('job j: ranks 0,1 on host a, flushed for migration 1 when its agent registered, were sent RESUME');
  });
});

describe("a coordinator restart in a migration's PREPARE", () => {
  it('finishes the flush on every rank before any resumes; the rank stays where it was, and the next migration moves it', async () => {
    // a's ranks flush; b's request is never passed on (the coordinator dies while it waits).
    h.nodes.get('b')!.steps.scripts.set(RoundStep.PREPARE, () => 'hang');
    h.coordinator!.moves.migrate('j', new Map([[1, 'c']])).catch(() => {});
    await advance(300);
    await h.crashCoordinator();
    h.nodes.get('b')!.steps.scripts.delete(RoundStep.PREPARE);
    clearSeen();
    h.startCoordinator();
    const owed = h.catalog!.listEvents({ limit: 200 }).filter((e) => e.kind === 'flush.owed').map((e) => e.message);
    expect(owed).toEqual([
      'job j: migration 1: the coordinator restarted before the flush was known to have reached every rank; the job waits until the agents on a, b are up (within 30000 ms, or the job fails) to finish it, then resumes',
    ]);
    await advance(2_000);
    expect(steps('a')).toEqual([RoundStep.PREPARE, RoundStep.RESUME]);
    expect(steps('b')).toEqual([RoundStep.PREPARE, RoundStep.RESUME]);
    expect(steps('c')).toEqual([]);
    expect(h.nodes.get('b')!.steps.seen[0]).toMatchObject({ ranks: [2, 3], epoch: 1 });
    expect(h.catalog!.openFlushes()).toEqual([]);
    expect(rankHosts()).toEqual(['a', 'a', 'b', 'b']);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    const { value, error } = await settle<MoveReplyInit>(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error).toBeUndefined();
    expect(value!.moves).toHaveLength(1);
    expect(rankHosts()).toEqual(['a', 'c', 'b', 'b']);
    expect(h.catalog!.openFlushes()).toEqual([]);
  });
});

describe('a coordinator restart between a migration copying a rank and stopping it', () => {
  /** Migrates rank 1 from a to c, and crashes the coordinator while c fetches its image. */
  async function crashWhileFetching(): Promise<void> {
    h.nodes.get('c')!.steps.scripts.set(RoundStep.FETCH, () => 'hang');
    h.coordinator!.moves.migrate('j', new Map([[1, 'c']])).catch(() => {});
    await advance(300);
    expect(steps('a')).toEqual([RoundStep.PREPARE, RoundStep.DUMP]);
    expect(steps('c')).toEqual([RoundStep.FETCH]);
    await h.crashCoordinator();
    h.nodes.get('c')!.steps.scripts.delete(RoundStep.FETCH);
  }
  /** As crashWhileFetching, and c is down when the coordinator comes back; returns c's ranks, for its next agent. */
  async function crashWhileFetchingWithTargetDown(): Promise<SimulatedRanks> {
    await crashWhileFetching();
    const ranksOfC = h.nodes.get('c')!.ranks;
    await h.crashAgent('c');
    h.startCoordinator();
    keptMove();
    await advance(3_000);
    return ranksOfC;
  }
  /** The catalog kept the move, not stopped yet. */
  const keptMove = () => expect(h.catalog!.rankMoves('j').map((m) => [m.rank, m.toHost, m.stopped])).toEqual([[1, 'c', false]]);
  const discardsOf = (host: string) => h.nodes.get(host)!.steps.seen.filter((x) => x.step === RoundStep.DISCARD).map((x) => [x.epoch, x.ranks]);

  it("keeps the rank on its source, resumes every rank, and removes the target's copy", async () => {
    await crashWhileFetching();
    h.startCoordinator();
    keptMove();
    await advance(3_000);
    expect(rankHosts()).toEqual(['a', 'a', 'b', 'b']);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    expect(steps('a')).toContain(RoundStep.RESUME);
    expect(steps('b')).toContain(RoundStep.RESUME);
    expect(steps('a')).not.toContain(RoundStep.STOP);
    expect(discardsOf('c')).toEqual([[1, [1]]]); // the copy it fetched
    expect(discardsOf('a')).toContainEqual([1, [1]]); // the dump
    expect(h.catalog!.rankMoves('j')).toEqual([]);
    const cleaned = h.catalog!.listEvents({ limit: 200 }).filter((e) => e.kind === 'migration.cleaned-late').map((e) => e.message);
    expect(cleaned).toEqual([
      "job j: migration 1 of rank 1 (a -> c), cut short by a coordinator restart before rank 1 was stopped: it stays on a; the migration's images are removed",
    ]);
  });

  it('removes the copy once the target, down when the coordinator came back, registers again', async () => {
    const ranksOfC = await crashWhileFetchingWithTargetDown();
    expect(h.catalog!.getJob('j')!.state).toBe('running'); // the ranks resumed on a and b
    expect(rankHosts()).toEqual(['a', 'a', 'b', 'b']);
    expect(h.catalog!.rankMoves('j').map((m) => m.rank)).toEqual([1]); // c's copy is still to remove
    // A later migration of that rank that fails before its FETCH does not forget it.
    h.nodes.get('a')!.steps.scripts.set(RoundStep.PREPARE, () => failRanks([0], 'refused'));
    const refused = await settle(h.coordinator!.moves.migrate('j', new Map([[1, 'd']])));
    expect(refused.error!.message).toMatch(/PREPARE failed/);
    h.nodes.get('a')!.steps.scripts.delete(RoundStep.PREPARE);
    expect(h.catalog!.rankMoves('j').map((m) => [m.rank, m.toHost])).toEqual([[1, 'c']]);
    h.startAgent('c', {}, ranksOfC);
    await advance(1_000);
    expect(discardsOf('c')).toEqual([[1, [1]]]);
    expect(h.catalog!.rankMoves('j')).toEqual([]);
  });

  it("a later migration of that rank that completes does not forget the target's copy either", async () => {
    const ranksOfC = await crashWhileFetchingWithTargetDown();
    const moved = await settle(h.coordinator!.moves.migrate('j', new Map([[1, 'd']])));
    expect(moved.error).toBeUndefined();
    expect(rankHosts()).toEqual(['a', 'd', 'b', 'b']);
    // The completed migration (image set 2) cleared its own move only.
    expect(h.catalog!.rankMoves('j').map((m) => [m.rank, m.imageSet, m.toHost, m.stopped])).toEqual([[1, 1, 'c', false]]);
    h.startAgent('c', {}, ranksOfC);
    await advance(1_000);
    expect(discardsOf('c')).toEqual([[1, [1]]]);
    expect(h.catalog!.rankMoves('j')).toEqual([]);
    expect(rankHosts()).toEqual(['a', 'd', 'b', 'b']); // removing the old copy moved nothing
  });
});

describe('a coordinator restart between a migration stopping a rank and restoring it', () => {
  /** Migrates rank 1 from a to c, and crashes the coordinator while c restores it (its first RESTORE never answers). */
  async function crashWhileRestoring(): Promise<void> {
    let first = true;
    h.nodes.get('c')!.steps.scripts.set(RoundStep.RESTORE, (req) => {
      if (first) return (first = false), 'hang';
      const again = h.nodes.get('c')!.steps.scripts.get(RoundStep.RESTORE + 100);
      return again ? again(req) : { failed: new Map(), started: h.nodes.get('c')!.steps.restoreRanks(req) };
    });
    h.coordinator!.moves.migrate('j', new Map([[1, 'c']])).catch(() => {});
    await advance(300);
    expect(steps('a')).toEqual([RoundStep.PREPARE, RoundStep.DUMP, RoundStep.STOP]); // rank 1's old copy is gone
    expect(steps('c').at(-1)).toBe(RoundStep.RESTORE);
    await h.crashCoordinator();
    h.startCoordinator();
    // The catalog kept the move: where rank 1 goes, and the image c fetched.
    expect(h.catalog!.rankMoves('j').map((m) => [m.rank, m.imageSet, m.fromHost, m.toHost, JSON.parse(m.sourceJson).host])).toEqual([[1, 1, 'a', 'c', 'a']]);
  }
  const seen = (host: string) => h.nodes.get(host)!.steps.seen.map((x) => [RoundStep[x.step], x.ranks.join(',')]);

  it('restores the rank on its target from the copy it fetched, and resumes every rank', async () => {
    await crashWhileRestoring();
    await advance(3_000);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    expect(rankHosts()).toEqual(['a', 'c', 'b', 'b']);
    expect(h.catalog!.listRanks('j').every((r) => r.state === 'running')).toBe(true);
    // c: its RESTORE again (from the same source), the RESUME of rank 1, then the migration's images go
    expect(seen('c').slice(2)).toEqual([['RESTORE', '1'], ['RESUME', '1'], ['DISCARD', '1']]);
    expect(h.nodes.get('c')!.steps.seen[2].epoch).toBe(1);
    // a and b: their flushed ranks resumed; a also drops its dump of rank 1
    expect(seen('a').slice(3)).toEqual(expect.arrayContaining([['RESUME', '0'], ['DISCARD', '1']]));
    expect(seen('b').slice(1)).toEqual([['RESUME', '2,3']]);
    expect(h.catalog!.rankMoves('j')).toEqual([]);
    const late = h.catalog!.listEvents({ limit: 200 }).filter((e) => e.kind === 'migration.finished-late').map((e) => e.message);
    expect(late).toEqual(['job j: migration 1 of rank 1 (a -> c), cut short by a coordinator restart: rank 1 restored on c and resumed']);
  });

  it('counts the rank lost when its target comes back without the copy restored there', async () => {
    h.nodes.get('c')!.steps.scripts.set(RoundStep.RESUME, () => 'hang');
    await crashWhileRestoring();
    await advance(300); // the new coordinator restores rank 1 on c again (its pid known); its RESUME hangs
    expect(h.catalog!.getRank('j', 1)).toMatchObject({ host: 'c', state: 'running' });
    const ranksOfC = h.nodes.get('c')!.ranks;
    await h.crashAgent('c');
    ranksOfC.exit('j', 1, 143); // while no agent is there
    await advance(450);
    // A new agent with no rank 1 and no record of it (its rank table lost): the random schedules' seed 6081
    // has it take over before c is seen down.
    h.startAgent('c');
    await advance(5_000);
    expect(h.catalog!.getRank('j', 1)).toMatchObject({ state: 'exited' });
    expect(h.catalog!.getJob('j')!.state).toBe('failed');
    expect(h.catalog!.getJob('j')!.detail).toBe('rank 1 lost: the agent on host c came back without it');
  });

  it('restores it back on its source, from its own dump, when the target cannot', async () => {
    h.nodes.get('c')!.steps.scripts.set(RoundStep.RESTORE + 100, () => failRanks([1], 'criu restore failed: host c lacks /opt/lib.so'));
    await crashWhileRestoring();
    await advance(3_000);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    expect(rankHosts()).toEqual(['a', 'a', 'b', 'b']);
    const back = h.nodes.get('a')!.steps.seen.find((x) => x.step === RoundStep.RESTORE)!;
    expect(back.ranks).toEqual([1]);
    expect(h.catalog!.rankMoves('j')).toEqual([]);
  });

  it('fails the job naming both reasons when neither host can restore the rank', async () => {
    h.nodes.get('c')!.steps.scripts.set(RoundStep.RESTORE + 100, () => failRanks([1], 'criu restore failed on c'));
    h.nodes.get('a')!.steps.scripts.set(RoundStep.RESTORE, () => failRanks([1], 'criu restore failed on a'));
    await crashWhileRestoring();
    await advance(3_000);
    const job = h.catalog!.getJob('j')!;
    expect(job.state).toBe('failed');
    expect(job.detail).toBe(
      'migration 1 of rank 1 (a -> c), cut short by a coordinator restart: RESTORE failed: rank 1: host c: criu restore failed on c, ' +
        'and restoring it on a failed too: RESTORE failed: rank 1: host a: criu restore failed on a',
    );
    expect(h.catalog!.rankMoves('j')).toEqual([]);
  });
});

describe('migration', () => {
  it('moves one rank: every rank flushes, only it is dumped, shipped, stopped, restored, then all resume', async () => {
    const { value, error } = await settle<MoveReplyInit>(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error).toBeUndefined();
    expect(value!.moves).toEqual([{ job_id: 'j', rank: 1, from_host: 'a', to_host: 'c' }]);
    expect(steps('a')).toEqual([RoundStep.PREPARE, RoundStep.DUMP, RoundStep.STOP, RoundStep.RESUME, RoundStep.DISCARD]);
    expect(steps('b')).toEqual([RoundStep.PREPARE, RoundStep.RESUME]);
    expect(steps('c')).toEqual([RoundStep.FETCH, RoundStep.RESTORE, RoundStep.RESUME, RoundStep.DISCARD]);
    expect(h.nodes.get('a')!.steps.seen[1].dumpRanks).toEqual([1]);
    // The images of a migration only travel: neither the source's dump nor the target's copy is fsynced.
    expect(h.nodes.get('a')!.steps.seen[1].transient).toBe(true);
    // The old copy stays stopped from its dump to its STOP (a rank computing outside MPI would print and write on).
    expect(h.nodes.get('a')!.steps.seen[1].leaveStopped).toBe(true);
    expect(h.nodes.get('c')!.steps.seen[0]).toMatchObject({ step: RoundStep.FETCH, transient: true });
    expect(rankHosts()).toEqual(['a', 'c', 'b', 'b']);
    await advance(1_000);
    // The old copy's end is not the job's.
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    // And back.
    const back = await settle<MoveReplyInit>(h.coordinator!.moves.migrate('j', new Map([[1, 'a']])));
    expect(back.error).toBeUndefined();
    expect(rankHosts()).toEqual(['a', 'a', 'b', 'b']);
  });

  it('asks the target again when its answer to the final RESUME is lost: the migration succeeds and no rank stays flushed', async () => {
    let lost = 0;
    h.nodes.get('c')!.steps.scripts.set(RoundStep.RESUME, () => (lost++ === 0 ? 'hang' : { failed: new Map() }));
    const { error } = await settle<MoveReplyInit>(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error).toBeUndefined();
    expect(steps('c')).toEqual([RoundStep.FETCH, RoundStep.RESTORE, RoundStep.RESUME, RoundStep.RESUME, RoundStep.DISCARD]);
    expect(['a', 'b', 'c'].map((host) => [...h.nodes.get(host)!.ranks.flushed.keys()])).toEqual([[], [], []]);
    expect(rankHosts()).toEqual(['a', 'c', 'b', 'b']);
    await advance(1_000);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it('aborts when the source never answers its DUMP but stays up (a dump stuck, an answer lost): every rank resumes where it was', async () => {
    h.nodes.get('a')!.steps.scripts.set(RoundStep.DUMP, () => 'hang');
    const { error } = await settle<MoveReplyInit>(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error!.message).toMatch(/^migration of job j aborted: DUMP failed: rank 1: host a: round to host a: no answer within \d+ ms; every rank resumed where it was$/);
    expect(h.hostState('a')).toBe('up');
    // a's agent will not register again, so nothing else would wake its ranks: it is asked like b.
    expect(steps('a')).toEqual([RoundStep.PREPARE, RoundStep.DUMP, RoundStep.RESUME, RoundStep.DISCARD]);
    expect(steps('b')).toEqual([RoundStep.PREPARE, RoundStep.RESUME]);
    expect(['a', 'b'].map((host) => [...h.nodes.get(host)!.ranks.flushed.keys()])).toEqual([[], []]);
    expect(rankHosts()).toEqual(['a', 'a', 'b', 'b']);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it("kills the old copy of a migrated rank that its source's agent, restarted before it got the STOP, comes back with", async () => {
    const ranksOfA = h.nodes.get('a')!.ranks;
    h.nodes.get('a')!.steps.scripts.set(RoundStep.STOP, () => {
      void h.crashAgent('a');
      setTimeout(() => h.startAgent('a', {}, ranksOfA), 500); // back while the migration restores rank 1 on c
      return 'hang';
    });
    const { error } = await settle(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error).toBeUndefined();
    await advance(3_000);
    expect([...ranksOfA.live.keys()]).toEqual(['j/0']); // not two copies of rank 1
    expect([...h.nodes.get('c')!.ranks.live.keys()]).toEqual(['j/1']);
    expect(rankHosts()).toEqual(['a', 'c', 'b', 'b']);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    expect(h.catalog!.listEvents({ limit: 200 }).map((e) => e.message)).toContain(
      'job j rank 1: host a came back with a copy of it alive, but the rank runs on c; killing that copy',
    );
  });

  it("fetches again from the source's agent started again when the one serving the image ended during the FETCH", async () => {
    const ranksOfA = h.nodes.get('a')!.ranks;
    h.nodes.get('c')!.steps.scripts.set(RoundStep.FETCH, (req) => {
      if (req.sources[0]!.server === 'tcp://images.a:2') return { failed: new Map(), bytesFetched: 600 };
      // a's agent ends; a supervisor starts it again 300 ms later, its image server at a new address
      void h.crashAgent('a');
      setTimeout(() => h.startAgent('a', { imageServer: 'tcp://images.a:2' }, ranksOfA, undefined, () => 0), 300); // (tries every 100 ms)
      return { ...failRanks([1], 'image server tcp://images.a:1: no connection for 3000 ms', ErrorCode.UNAVAILABLE), bytesFetched: 400 };
    });
    const { value, error } = await settle<MoveReplyInit>(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error).toBeUndefined();
    expect(value!.bytes_shipped).toBe(1000); // both attempts' bytes
    const fetches = h.nodes.get('c')!.steps.seen.filter((x) => x.step === RoundStep.FETCH);
    expect(fetches.map((x) => x.sources)).toEqual([[{ rank: 1, host: 'a', server: 'tcp://images.a:1' }], [{ rank: 1, host: 'a', server: 'tcp://images.a:2' }]]);
    await advance(2_000);
    expect([...ranksOfA.live.keys()]).toEqual(['j/0']); // the old copy of rank 1 was stopped by a's new agent
    expect([...h.nodes.get('c')!.ranks.live.keys()]).toEqual(['j/1']);
    expect(['a', 'b', 'c'].flatMap((host) => [...h.nodes.get(host)!.ranks.flushed.keys()])).toEqual([]);
    expect(rankHosts()).toEqual(['a', 'c', 'b', 'b']);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    expect(h.catalog!.rankMoves('j')).toEqual([]);
    expect(h.catalog!.listEvents({ limit: 200 }).filter((e) => e.kind === 'fetch.again').map((e) => e.message)).toEqual([
      'job j: FETCH failed: rank 1: host c: image server tcp://images.a:1: no connection for 3000 ms; fetching again: rank 1 on c from a (tcp://images.a:2)',
    ]);
    // a's new agent reported rank 0 flushed; the migration's RESUME woke it, and no second RESUME follows
    // (the DISCARD of a migration's folders, the second one for rank 0, which it did not dump, finds none).
    expect(h.nodes.get('a')!.steps.seen.map((x) => `${RoundStep[x.step]} ${x.ranks.join(',')}`)).toEqual(['STOP 1', 'RESUME 0', 'DISCARD 1', 'DISCARD 0']);
    expect(h.catalog!.listEvents({ limit: 200 }).filter((e) => e.kind === 'job.resumed-late')).toEqual([]);
  });

  it("has the target's agent started again fetch the image when the one asked was lost during the FETCH", async () => {
    h.nodes.get('c')!.steps.scripts.set(RoundStep.FETCH, () => {
      void h.crashAgent('c');
      setTimeout(() => h.startAgent('c', {}, undefined, undefined, () => 0), 300); // its supervisor starts it again (it tries every 100 ms)
      return 'hang';
    });
    const { error } = await settle<MoveReplyInit>(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error).toBeUndefined();
    // The new agent got the FETCH (its script is the default one), then the RESTORE.
    expect(steps('c')).toEqual([RoundStep.FETCH, RoundStep.RESTORE, RoundStep.RESUME, RoundStep.DISCARD]);
    expect(h.catalog!.listEvents({ limit: 200 }).filter((e) => e.kind === 'fetch.again').map((e) => e.message)).toEqual([
      expect.stringMatching(/^job j: FETCH failed: rank 1: host c: .*; fetching again: rank 1 on c from a \(tcp:\/\/images.a:1\)$/),
    ]);
    await advance(2_000);
    expect([...h.nodes.get('c')!.ranks.live.keys()]).toEqual(['j/1']);
    expect([...h.nodes.get('a')!.ranks.live.keys()]).toEqual(['j/0']);
    expect(rankHosts()).toEqual(['a', 'c', 'b', 'b']);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
    expect(h.catalog!.rankMoves('j')).toEqual([]);
  });

  it("does not ask a target's agent that was only unheard for a while (it may still be fetching): the migration aborts", async () => {
    h.nodes.get('c')!.steps.scripts.set(RoundStep.FETCH, () => {
      h.partition('c', true);
      setTimeout(() => h.partition('c', false), 550); // heard again soon after it was seen down: the same agent
      return 'hang';
    });
    const { error } = await settle(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error!.message).toMatch(/^migration of job j aborted: FETCH failed: rank 1: host c: /);
    expect(h.nodes.get('c')!.steps.seen.filter((x) => x.step === RoundStep.FETCH)).toHaveLength(1);
    expect(h.catalog!.listEvents({ limit: 200 }).map((e) => e.message)).toContain('host c: down -> up: re-registered (same agent)');
    expect(h.catalog!.listEvents({ limit: 200 }).filter((e) => e.kind === 'fetch.again')).toEqual([]);
    expect(rankHosts()).toEqual(['a', 'a', 'b', 'b']);
  });

  it('does not wait for another source when the source agent is alive: the FETCH failure aborts the migration at once', async () => {
    h.nodes.get('c')!.steps.scripts.set(RoundStep.FETCH, () => failRanks([1], 'image server tcp://images.a:1: no connection for 3000 ms', ErrorCode.UNAVAILABLE));
    const t0 = Date.now(); // (the fake clock: no timing noise)
    const { error } = await settle(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error!.message).toMatch(/^migration of job j aborted: FETCH failed: rank 1: host c: image server tcp:\/\/images.a:1: no connection for 3000 ms; every rank resumed where it was$/);
    // a's agent was heard from after the failure, at the same address: nothing to wait for (else up to 2 heartbeat timeouts)
    expect(Date.now() - t0).toBeLessThan(h.coordinator!.config.heartbeatTimeoutMs);
    expect(h.nodes.get('c')!.steps.seen.filter((x) => x.step === RoundStep.FETCH)).toHaveLength(1);
    expect(rankHosts()).toEqual(['a', 'a', 'b', 'b']);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it('ends a rank that a failed migration restores where it was after the job was cancelled: the job ends', async () => {
    h.nodes.get('c')!.steps.scripts.set(RoundStep.RESTORE, async () => {
      await h.coordinator!.jobs.signal('j', 'SIGTERM'); // ferry cancel j, from another terminal, while c restores
      return failRanks([1], 'criu restore failed');
    });
    const { error } = await settle(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error!.message).toMatch(/the ranks were restored where they were/);
    await advance(2_000);
    expect([...h.nodes.get('a')!.ranks.live.keys()]).toEqual([]); // rank 1, back on a after the SIGTERM went out, got one too
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'cancelled', detail: 'cancelled by the operator (SIGTERM)' });
  });

  it('reports its phases, and the bytes shipped once the images are known', async () => {
    const seen: MoveProgress[] = [];
    const { error } = await settle(h.coordinator!.moves.migrate('j', new Map([[1, 'c']]), (p) => seen.push(p)));
    expect(error).toBeUndefined();
    expect(seen.map((p) => p.phase)).toEqual(['flushing', 'dumping', 'fetching', 'fetched', 'restoring', 'resuming']);
    expect(seen[0].bytesTotal).toBe(0);
    expect(seen[2].bytesTotal).toBeGreaterThan(0);
    expect(seen.at(-1)!.bytesDone).toBe(1000);
  });

  it('loses nothing when the transfer fails: every rank resumes where it was', async () => {
    h.nodes.get('c')!.steps.scripts.set(RoundStep.FETCH, () => failRanks([1], 'image server of a: pages-1.img: sha256 mismatch'));
    const { error } = await settle(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error!.message).toMatch(/migration of job j aborted: FETCH failed: rank 1: host c: image server of a: pages-1.img: sha256 mismatch; every rank resumed where it was/);
    expect(steps('a')).toEqual([RoundStep.PREPARE, RoundStep.DUMP, RoundStep.RESUME, RoundStep.DISCARD]);
    expect(rankHosts()).toEqual(['a', 'a', 'b', 'b']);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it('finishes a flush that did not reach every rank before it resumes any: the ranks that flushed wait for the others', async () => {
    const b = h.nodes.get('b')!.steps.scripts;
    b.set(RoundStep.PREPARE, () => {
      b.delete(RoundStep.PREPARE);
      return failRanks([2, 3], 'rank 2 of job j is not connected (it lost its connection to the agent)', ErrorCode.UNKNOWN_RANK);
    });
    const { error } = await settle(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error!.message).toMatch(/migration of job j aborted: PREPARE failed: ranks 2,3: host b: rank 2 of job j is not connected .*; every rank resumed where it was/);
    expect(steps('a')).toEqual([RoundStep.PREPARE, RoundStep.PREPARE, RoundStep.RESUME, RoundStep.DISCARD]);
    expect(steps('b')).toEqual([RoundStep.PREPARE, RoundStep.PREPARE, RoundStep.RESUME]);
    expect(rankHosts()).toEqual(['a', 'a', 'b', 'b']);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it('fails the job when the abort cannot wake a rank: left flushed, it would hang the job', async () => {
    h.nodes.get('c')!.steps.scripts.set(RoundStep.FETCH, () => failRanks([1], 'image server of a: pages-1.img: sha256 mismatch'));
    h.nodes.get('b')!.steps.scripts.set(RoundStep.RESUME, () => failRanks([2], 'rank 2 did not answer its wake-up'));
    const { error } = await settle(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error!.message).toMatch(/migration of job j aborted: FETCH failed: .*; and RESUME failed: rank 2: host b: rank 2 did not answer its wake-up: the job fails$/);
    await advance(1_000);
    const job = h.catalog!.getJob('j')!;
    expect(job).toMatchObject({ state: 'failed', exitCode: 1 });
    expect(job.detail).toMatch(/^migration 1 aborted \(FETCH failed: .*\), and RESUME failed: rank 2: host b: rank 2 did not answer its wake-up$/);
    for (const host of ['a', 'b', 'c']) expect(h.nodes.get(host)!.ranks.running()).toEqual([]);
  });

  it('is given up when the job is cancelled meanwhile: nothing is restored, the job stays cancelled, the rank ended', async () => {
    h.nodes.get('a')!.steps.scripts.set(RoundStep.DUMP, async (req) => {
      await new Promise((r) => setTimeout(r, 500));
      return { failed: new Map(), images: h.nodes.get('a')!.steps.dumpImages(req) };
    });
    const migration = settle(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    await advance(100);
    await h.coordinator!.jobs.signal('j', 'SIGTERM'); // while rank 1 is being dumped
    const { error } = await migration;
    expect(error!.message).toBe('migration of job j given up: job j is cancelled, not running');
    expect(steps('c')).toEqual([RoundStep.DISCARD]); // no FETCH, no RESTORE: only the clean-up
    expect(steps('a')).toEqual([RoundStep.PREPARE, RoundStep.DUMP, RoundStep.DISCARD]); // no RESUME of the ending job's ranks
    await advance(1_000);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'cancelled' });
    expect(h.catalog!.getRank('j', 1)).toMatchObject({ state: 'exited' });
    for (const host of ['a', 'b', 'c']) expect(h.nodes.get(host)!.ranks.running()).toEqual([]);
  });

  it('is given up when the job fails of another rank during its FETCH; the ranks that ignore SIGTERM end of the SIGKILL after it', async () => {
    h.nodes.get('b')!.ranks.ignoreTerm.add('j/2');
    h.nodes.get('c')!.steps.scripts.set(RoundStep.FETCH, async () => {
      h.nodes.get('b')!.ranks.exit('j', 3, 3); // dies flushed (its host's OOM killer, say) while c fetches rank 1
      await new Promise((r) => setTimeout(r, 300));
      return { failed: new Map(), bytesFetched: 1000 };
    });
    const { error } = await settle(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error!.message).toBe('migration of job j given up: job j is ending (rank 3 on b exited with status 3)');
    expect(steps('c')).toEqual([RoundStep.FETCH, RoundStep.DISCARD]);
    expect(steps('a')).toEqual([RoundStep.PREPARE, RoundStep.DUMP, RoundStep.DISCARD]);
    expect(h.catalog!.rankMoves('j')).toEqual([]);
    expect(rankHosts()).toEqual(['a', 'a', 'b', 'b']);
    await advance(RANK_KILL_GRACE_MS + 1_000);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'failed', exitCode: 3 });
    for (const host of ['a', 'b', 'c']) expect(h.nodes.get(host)!.ranks.running()).toEqual([]);
  });

  it("given up after its FETCH with a target that does not answer the DISCARD: the target's copy goes when its agent is back", async () => {
    h.nodes.get('c')!.steps.scripts.set(RoundStep.FETCH, () => {
      h.coordinator!.jobs.signal('j', 'SIGKILL'); // ferry cancel --signal SIGKILL while c fetches
      return { failed: new Map(), bytesFetched: 1000 };
    });
    h.nodes.get('c')!.steps.scripts.set(RoundStep.DISCARD, () => 'hang');
    const { error } = await settle(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error!.message).toMatch(/^migration of job j given up: job j is (ending|cancelled)/);
    expect(h.catalog!.rankMoves('j').map((m) => [m.rank, m.toHost, m.stopped])).toEqual([[1, 'c', false]]);
    const ranksOfC = h.nodes.get('c')!.ranks;
    await h.crashAgent('c');
    await advance(1_000);
    h.startAgent('c', {}, ranksOfC);
    await advance(3_000);
    expect(h.nodes.get('c')!.steps.stepsSeen()).toEqual([RoundStep.DISCARD]);
    expect(h.catalog!.rankMoves('j')).toEqual([]);
  });

  it('restores the rank where it was when the target cannot', async () => {
    h.nodes.get('c')!.steps.scripts.set(RoundStep.RESTORE, () => failRanks([1], 'criu restore failed'));
    const { error } = await settle(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error!.message).toMatch(/the ranks were restored where they were and the job goes on/);
    expect(steps('a')).toEqual([RoundStep.PREPARE, RoundStep.DUMP, RoundStep.STOP, RoundStep.RESTORE, RoundStep.RESUME]);
    expect(rankHosts()).toEqual(['a', 'a', 'b', 'b']);
    await advance(1_000);
    expect(h.catalog!.getJob('j')!.state).toBe('running');
  });

  it('fails the job when, the rank restored where it was, a rank cannot be woken', async () => {
    h.nodes.get('c')!.steps.scripts.set(RoundStep.RESTORE, () => failRanks([1], 'criu restore failed'));
    h.nodes.get('b')!.steps.scripts.set(RoundStep.RESUME, () => failRanks([3], 'rank 3 did not answer its wake-up'));
    const { error } = await settle(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error!.message).toBe(
      'migration of job j failed (RESTORE failed: rank 1: host c: criu restore failed); the ranks were restored where they were, but RESUME failed: rank 3: host b: rank 3 did not answer its wake-up: the job fails',
    );
    await advance(1_000);
    expect(h.catalog!.getJob('j')!).toMatchObject({ state: 'failed', exitCode: 1 });
    for (const host of ['a', 'b', 'c']) expect(h.nodes.get(host)!.ranks.running()).toEqual([]);
  });

  it('fails the job, and lets it end, when the rank can be restored neither on the target nor where it was', async () => {
    h.nodes.get('c')!.steps.scripts.set(RoundStep.RESTORE, () => failRanks([1], 'criu restore failed on c'));
    h.nodes.get('a')!.steps.scripts.set(RoundStep.RESTORE, () => failRanks([1], 'criu restore failed on a'));
    const { error } = await settle(h.coordinator!.moves.migrate('j', new Map([[1, 'c']])));
    expect(error!.message).toMatch(/the ranks could not be restored where they were: RESTORE failed: rank 1: host a: criu restore failed on a/);
    await advance(1_000); // the other ranks end on SIGTERM; rank 1 has no copy left anywhere
    const job = h.catalog!.getJob('j')!;
    expect(job.state).toBe('failed');
    expect(job.detail).toMatch(/^migration 1: RESTORE failed: rank 1: host c: criu restore failed on c, and restoring where they were failed too/);
    expect(h.catalog!.getRank('j', 1)).toMatchObject({ host: 'a', state: 'exited', signal: 'LOST' });
    expect(h.catalog!.rankMoves('j')).toEqual([]);
  });

  it('drains a host: its ranks go to the least loaded others of the job\'s hosts', async () => {
    h.catalog!.setJobHosts('j', null); // any host (job-hosts.test.ts has a job that keeps to its own)
    const { value, error } = await settle<MoveReplyInit>(h.coordinator!.moves.drain('a'));
    expect(error).toBeUndefined();
    expect(value!.moves!.map((m) => [m.rank, m.from_host])).toEqual([
      [0, 'a'],
      [1, 'a'],
    ]);
    expect(rankHosts().slice(0, 2).every((x) => x === 'c' || x === 'd')).toBe(true);
    expect(new Set(rankHosts().slice(0, 2)).size).toBe(2);
  });

  it('is refused while a checkpoint runs, and names bad arguments', async () => {
    h.nodes.get('a')!.steps.scripts.set(RoundStep.DUMP, () => new Promise((r) => setTimeout(() => r({ failed: new Map(), images: [] }), 1_000)));
    const cp = h.coordinator!.checkpoints.checkpoint('j', { stop: false }).catch((e) => e);
    await advance(200);
    await expect(h.coordinator!.moves.migrate('j', new Map([[1, 'c']]))).rejects.toThrow(/job j is busy: checkpoint epoch 1 is dumping/);
    await advance(5_000);
    await cp;
    await expect(h.coordinator!.moves.migrate('j', new Map([[9, 'c']]))).rejects.toThrow(/job j has no rank 9/);
    await expect(h.coordinator!.moves.migrate('j', new Map([[1, 'zz']]))).rejects.toThrow(/host "zz" is not known/);
    await expect(h.coordinator!.moves.migrate('j', new Map([[1, 'a']]))).rejects.toThrow(/already runs on a/);
  });
});
