// The coordinator's SQLite catalog, on real files in temporary state dirs.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Catalog, CATALOG_FILE_NAME } from '../../src/coordinator/catalog.js';
import { CATALOG_MIGRATIONS, CATALOG_SCHEMA_VERSION, migrateCatalog } from '../../src/coordinator/catalog-migrations.js';
import type { HostRegistration, JobSpec } from '../../src/coordinator/catalog-types.js';
import { FerryError } from '../../src/common/ferry-error.js';
import { ErrorCode } from '../../src/gen/proto.js';

const SHA_A = 'a'.repeat(64);
const SHA_B = '0123456789abcdef'.repeat(4);

let dir: string;
let open: Catalog[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-catalog-'));
  open = [];
});

afterEach(() => {
  for (const c of open) c.close();
  rmSync(dir, { recursive: true, force: true });
});

function openCatalog(stateDir = dir): Catalog {
  const c = Catalog.open(stateDir);
  open.push(c);
  return c;
}

function host(name: string, over: Partial<HostRegistration> = {}): HostRegistration {
  return {
    name,
    address: `198.18.0.${name.length}`,
    cpus: 2,
    criuVersion: '4.1.1',
    criuCheckOk: true,
    criuCheckDetail: 'Looks good.',
    agentInstance: `inst-${name}`,
    registeredMs: 1_000,
    ...over,
  };
}

function job(id: string, over: Partial<JobSpec> = {}): JobSpec {
  return {
    id,
    worldSize: 2,
    argv: ['/bin/ring', '--size', '1 MiB'],
    cwd: '/work',
    env: { OMP_NUM_THREADS: '1', 'WITH=EQUALS': 'a=b' },
    createdMs: 2_000,
    ...over,
  };
}

function codeOf(fn: () => unknown): ErrorCode | string {
  try {
    fn();
  } catch (err) {
    return err instanceof FerryError ? err.code : `not a FerryError: ${String(err)}`;
  }
  return 'no error';
}

/** Fills one job with everything the catalog keeps: hosts, ranks, a committed and an aborted epoch, events. */
function populate(c: Catalog): void {
  c.upsertHost(host('h1'));
  c.upsertHost(host('h2', { criuCheckOk: false, criuVersion: '', criuCheckDetail: 'no criu' }));
  c.setHostState('h2', 'down', 1_500);
  c.createJob(job('j1', { checkpointEveryMs: 60_000 }));
  c.setJobState('j1', 'running', { startedMs: 2_100 });
  c.upsertRank({ jobId: 'j1', rank: 0, host: 'h1', pid: 101, endpoint: '198.18.0.2:4000', state: 'running', updatedMs: 2_200 });
  c.upsertRank({ jobId: 'j1', rank: 1, host: 'h2', pid: 102, endpoint: '198.18.0.2:4001', state: 'exited', exitCode: -1, signal: 'SIGKILL', updatedMs: 2_300 });
  const e1 = c.beginEpoch('j1', 3_000);
  c.setEpochState('j1', e1, 'flushed', 3_100, 'channels empty');
  c.recordEpochImage({ jobId: 'j1', epoch: e1, rank: 0, host: 'h1', location: '/img/j1/1/0', sizeBytes: 5_000_000_000, sha256: SHA_A,
    manifest: [{ path: 'pages-1.img', sizeBytes: 4_999_999_000, sha256: SHA_B }, { path: 'core-1.img', sizeBytes: 1_000, sha256: SHA_A }],
    appendedFiles: [{ path: '/scratch/j1/app.log', sizeBytes: 1_234 }] });
  c.recordEpochImage({ jobId: 'j1', epoch: e1, rank: 1, host: 'h2', location: '/img/j1/1/1', sizeBytes: 42, sha256: SHA_B });
  c.commitEpoch('j1', e1, 3_200);
  const e2 = c.beginEpoch('j1', 4_000);
  c.setEpochState('j1', e2, 'aborted', 4_100, 'rank 1 died');
  c.appendEvent({ timeMs: 1_000, kind: 'host-up', host: 'h1', message: 'registered' });
  c.appendEvent({ timeMs: 2_000, kind: 'job-created', jobId: 'j1', message: 'world size 2' });
}

function snapshot(c: Catalog) {
  return {
    hosts: c.listHosts(),
    jobs: c.listJobs({ all: true }),
    ranks: c.listRanks('j1'),
    epochs: c.listEpochs('j1'),
    images: c.listEpochs('j1').map((e) => c.epochImages('j1', e.epoch)),
    events: c.listEvents({}),
  };
}

describe('catalog round trips', () => {
  it('keeps hosts with registration data and state changes', () => {
    const c = openCatalog();
    c.upsertHost(host('h1'));
    expect(c.getHost('h1')).toEqual({ ...host('h1'), state: 'up', stateChangedMs: 1_000, firstSeenMs: 1_000, imageStore: '', drained: undefined });
    c.setHostState('h1', 'down', 5_000);
    c.setHostState('h1', 'down', 6_000); // no change: the time of the change stays
    expect(c.getHost('h1')).toMatchObject({ state: 'down', stateChangedMs: 5_000 });
    c.upsertHost(host('h1', { registeredMs: 7_000, agentInstance: 'new', cpus: 8 }));
    expect(c.getHost('h1')).toMatchObject({ state: 'up', stateChangedMs: 7_000, firstSeenMs: 1_000, cpus: 8, agentInstance: 'new' });
    c.upsertHost(host('a0'));
    expect(c.listHosts().map((h) => h.name)).toEqual(['a0', 'h1']);
    expect(c.getHost('nope')).toBeUndefined();
  });

  it('keeps a drain mark across registrations; a forgotten host comes back without it', () => {
    const c = openCatalog();
    c.upsertHost(host('h1'));
    c.setHostDrained('h1', { atMs: 2_000, reason: 'fan' });
    c.upsertHost(host('h1', { registeredMs: 3_000, agentInstance: 'new' }));
    expect(c.getHost('h1')!.drained).toEqual({ atMs: 2_000, reason: 'fan' });
    c.setHostDrained('h1', undefined);
    expect(c.getHost('h1')!.drained).toBeUndefined();
    c.setHostDrained('h1', { atMs: 4_000, reason: '' });
    c.setHostState('h1', 'down', 5_000);
    c.forgetHost('h1', 6_000);
    c.upsertHost(host('h1', { registeredMs: 7_000 }));
    expect(c.getHost('h1')!.drained).toBeUndefined();
    expect(() => c.setHostDrained('zz', { atMs: 1, reason: '' })).toThrow(/host "zz" is not in the catalog/);
  });

  it("lists a forgotten host's image folders for removal, leaving out what the catalog uses there again", () => {
    const c = openCatalog();
    populate(c); // j1 epoch 1: rank 0 on h1, rank 1 on h2 (down)
    c.setHostState('h1', 'down', 5_000);
    c.forgetHost('h1', 6_000);
    c.upsertHost(host('h1', { registeredMs: 7_000 }));
    expect(c.forgottenImageDirs('h1')).toEqual([{ jobId: 'j1', imageSet: 1, rank: 0 }]);
    // A restart copy made there since (the same folder) is in use: not listed, and not lost with the row.
    c.recordRestartCopies('j1', 1, new Map([[0, 'h1']]));
    expect(c.forgottenImageDirs('h1')).toEqual([]);
    c.clearRestartCopies('j1', 1, 'h1', [0]);
    expect(c.forgottenImageDirs('h1')).toEqual([{ jobId: 'j1', imageSet: 1, rank: 0 }]);
    c.clearForgottenImageDirs('h1', 'j1', 1, [0]);
    expect(c.forgottenImageDirs('h1')).toEqual([]);
    expect(c.forgottenImageDirs('h2')).toEqual([]);
  });

  it('keeps the output counts of each rank, updated in place; counts of a job not in the catalog are skipped', () => {
    let c = openCatalog();
    c.createJob(job('j1'));
    c.saveOutputCounts([
      { jobId: 'j1', rank: 0, stdout: 10, stderr: 2 },
      { jobId: 'j1', rank: 1, stdout: 7, stderr: 0 },
      { jobId: 'gone', rank: 0, stdout: 1, stderr: 1 },
    ]);
    c.saveOutputCounts([{ jobId: 'j1', rank: 0, stdout: 25, stderr: 3 }]);
    c.close();
    c = openCatalog();
    expect(c.outputCounts()).toEqual(new Map([['j1', new Map([[0, [25, 3]], [1, [7, 0]]])]]));
    c.setJobState('j1', 'succeeded', { endedMs: 9 });
    expect(c.outputCounts().size).toBe(0); // a job that cannot run again needs none
    expect(() => c.saveOutputCounts([{ jobId: 'j1', rank: 0, stdout: -1, stderr: 0 }])).toThrow(/stdout bytes/);
  });

  it("keeps a job's own hosts, once each, until they are replaced or cleared", () => {
    const c = openCatalog();
    c.createJob(job('j3', { hosts: ['a', 'b', 'a'] }));
    expect(c.getJob('j3')!.hosts).toEqual(['a', 'b']);
    c.setJobHosts('j3', ['c', 'd', 'c']);
    expect(c.getJob('j3')!.hosts).toEqual(['c', 'd']);
    c.setJobHosts('j3', null);
    expect(c.getJob('j3')!.hosts).toBeNull();
    expect(() => c.setJobHosts('nope', ['a'])).toThrow(/nope/);
    expect(() => c.setJobHosts('j3', [''])).toThrow(/host name/);
  });

  it('keeps jobs and lists only live ones by default', () => {
    const c = openCatalog();
    c.createJob(job('j1'));
    c.createJob(job('j2', { createdMs: 2_500, worldSize: 4 }));
    expect(c.getJob('j1')).toEqual({
      ...job('j1'), state: 'pending', checkpointEveryMs: null, startedMs: null, endedMs: null, exitCode: null, detail: null, lastEpoch: 0, stopAfterEpoch: 0, keepEpochs: 0, imageReplicas: null,
      branchFrom: 0, branchAt: 0, autoRestarts: 0, autoRestartDue: false, endpointsPublished: false, hosts: null, ending: null, launcherSuspended: false,
    });
    c.setEndpointsPublished('j1', true);
    expect(c.getJob('j1')!.endpointsPublished).toBe(true);
    c.setEndpointsPublished('j1', false);
    expect(c.getJob('j1')!.endpointsPublished).toBe(false);
    expect(() => c.setEndpointsPublished('nope', true)).toThrow(/nope/);
    const ending = { exitCode: 7, detail: 'rank 2 on b exited with status 7', secondary: false, lostHost: true };
    c.setEnding('j1', ending);
    expect(c.getJob('j1')!.ending).toEqual(ending);
    c.setEnding('j1', null);
    expect(c.getJob('j1')!.ending).toBeNull();
    expect(() => c.setEnding('nope', ending)).toThrow(/nope/);
    c.setLauncherSuspended('j1', true);
    expect(c.getJob('j1')!.launcherSuspended).toBe(true);
    c.setLauncherSuspended('j1', false);
    expect(c.getJob('j1')!.launcherSuspended).toBe(false);
    expect(() => c.setLauncherSuspended('nope', true)).toThrow(/nope/);
    c.setAutoRestarts('j1', 3);
    expect(c.getJob('j1')!.autoRestarts).toBe(3);
    expect(() => c.setAutoRestarts('nope', 1)).toThrow(/nope/);
    c.setAutoRestartDue('j1', true);
    expect(c.getJob('j1')!.autoRestartDue).toBe(true);
    expect(c.useAutoRestart('j1')).toBe(2);
    expect(c.getJob('j1')).toMatchObject({ autoRestarts: 2, autoRestartDue: false });
    c.setAutoRestarts('j1', 0);
    expect(c.useAutoRestart('j1')).toBe(0); // never below 0
    expect(() => c.setAutoRestartDue('nope', true)).toThrow(/nope/);
    c.setStopAfterEpoch('j1', 4);
    expect(c.getJob('j1')!.stopAfterEpoch).toBe(4);
    c.setStopAfterEpoch('j1', 0);
    expect(c.getJob('j1')!.stopAfterEpoch).toBe(0);
    expect(() => c.setStopAfterEpoch('nope', 1)).toThrow(/nope/);
    c.setJobState('j1', 'running', { startedMs: 2_100 });
    c.setJobState('j1', 'failed', { endedMs: 9_000, exitCode: 3, detail: 'rank 1 exited with 3' });
    expect(c.getJob('j1')).toMatchObject({ state: 'failed', startedMs: 2_100, endedMs: 9_000, exitCode: 3, detail: 'rank 1 exited with 3' });
    expect(c.listJobs().map((j) => j.id)).toEqual(['j2']);
    expect(c.listJobs({ all: true }).map((j) => j.id)).toEqual(['j1', 'j2']);
  });

  it('keeps ranks, updated in place, by job and by host', () => {
    const c = openCatalog();
    c.upsertHost(host('h1'));
    c.upsertHost(host('h2'));
    c.createJob(job('j1'));
    c.upsertRank({ jobId: 'j1', rank: 0, host: 'h1', pid: 10, endpoint: '', state: 'starting', updatedMs: 1 });
    c.upsertRank({ jobId: 'j1', rank: 0, host: 'h1', pid: 10, endpoint: 'x:1', state: 'running', updatedMs: 2 });
    c.upsertRank({ jobId: 'j1', rank: 1, host: 'h2', pid: 11, endpoint: 'y:1', state: 'exited', exitCode: 0, updatedMs: 3 });
    expect(c.listRanks('j1')).toEqual([
      { jobId: 'j1', rank: 0, host: 'h1', pid: 10, endpoint: 'x:1', state: 'running', exitCode: null, signal: null, updatedMs: 2 },
      { jobId: 'j1', rank: 1, host: 'h2', pid: 11, endpoint: 'y:1', state: 'exited', exitCode: 0, signal: null, updatedMs: 3 },
    ]);
    // a rank that moved (restored on another host)
    c.upsertRank({ jobId: 'j1', rank: 0, host: 'h2', pid: 1, endpoint: 'y:2', state: 'running', updatedMs: 4 });
    expect(c.ranksOnHost('h1')).toEqual([]);
    expect(c.ranksOnHost('h2').map((r) => r.rank)).toEqual([0, 1]);
  });

  it('keeps epochs with their phases and per-rank images', () => {
    const c = openCatalog();
    populate(c);
    const [e1, e2] = c.listEpochs('j1');
    expect(e1).toEqual({
      jobId: 'j1', epoch: 1, state: 'committed', startedMs: 3_000, updatedMs: 3_200, committedMs: 3_200, detail: 'channels empty',
      phases: [
        { state: 'preparing', atMs: 3_000, detail: null },
        { state: 'flushed', atMs: 3_100, detail: 'channels empty' },
        { state: 'committed', atMs: 3_200, detail: null },
      ],
    });
    expect(e2).toMatchObject({ epoch: 2, state: 'aborted', committedMs: null, detail: 'rank 1 died' });
    expect(c.getEpoch('j1', 1)).toEqual(e1);
    expect(c.getEpoch('j1', 99)).toBeUndefined();
    expect(c.lastCommittedEpoch('j1')).toEqual(e1);
    const images = c.epochImages('j1', 1);
    expect(images).toHaveLength(2);
    expect(images[0]).toEqual({
      jobId: 'j1', epoch: 1, rank: 0, host: 'h1', location: '/img/j1/1/0', sizeBytes: 5_000_000_000, sha256: SHA_A,
      manifest: [{ path: 'pages-1.img', sizeBytes: 4_999_999_000, sha256: SHA_B }, { path: 'core-1.img', sizeBytes: 1_000, sha256: SHA_A }],
      imageStore: '',
      removedMs: null,
      appendedFiles: [{ path: '/scratch/j1/app.log', sizeBytes: 1_234 }],
    });
    expect(images[1]).toMatchObject({ rank: 1, sizeBytes: 42, sha256: SHA_B, manifest: null, appendedFiles: [] });
    expect(c.epochImages('j1', 2)).toEqual([]);
    expect(c.inFlightEpochs()).toEqual([]);
    expect(c.getJob('j1')!.lastEpoch).toBe(2);
  });

  it('guards epochs: one in flight per job, complete before commit, final once committed or aborted', () => {
    const c = openCatalog();
    c.createJob(job('j1'));
    const e = c.beginEpoch('j1', 1);
    expect(codeOf(() => c.beginEpoch('j1', 2))).toBe(ErrorCode.BUSY);
    expect(c.inFlightEpochs().map((x) => [x.jobId, x.epoch, x.state])).toEqual([['j1', e, 'preparing']]);
    c.recordEpochImage({ jobId: 'j1', epoch: e, rank: 0, host: 'h1', location: '/i/0', sizeBytes: 1, sha256: SHA_A });
    expect(codeOf(() => c.commitEpoch('j1', e, 3))).toBe(ErrorCode.BAD_REQUEST); // rank 1 has no image
    expect(c.getEpoch('j1', e)!.state).toBe('preparing');
    expect(codeOf(() => c.setEpochState('j1', e, 'committed', 3))).toBe(ErrorCode.BAD_REQUEST);
    expect(codeOf(() => c.recordEpochImage({ jobId: 'j1', epoch: e, rank: 2, host: 'h1', location: '/i/2', sizeBytes: 1, sha256: SHA_A })))
      .toBe(ErrorCode.UNKNOWN_RANK);
    expect(codeOf(() => c.recordEpochImage({ jobId: 'j1', epoch: e, rank: 1, host: 'h1', location: '/i/1', sizeBytes: 1, sha256: 'xyz' })))
      .toBe(ErrorCode.BAD_REQUEST);
    c.recordEpochImage({ jobId: 'j1', epoch: e, rank: 1, host: 'h1', location: '/i/1', sizeBytes: 1, sha256: SHA_B });
    c.commitEpoch('j1', e, 4);
    expect(codeOf(() => c.commitEpoch('j1', e, 5))).toBe(ErrorCode.BAD_REQUEST);
    expect(codeOf(() => c.setEpochState('j1', e, 'aborted', 5))).toBe(ErrorCode.BAD_REQUEST);
    expect(codeOf(() => c.recordEpochImage({ jobId: 'j1', epoch: e, rank: 1, host: 'h9', location: '/x', sizeBytes: 1, sha256: SHA_A })))
      .toBe(ErrorCode.BAD_REQUEST);
    expect(c.epochImages('j1', e).map((i) => i.location)).toEqual(['/i/0', '/i/1']);
    const e2 = c.beginEpoch('j1', 6);
    c.setEpochState('j1', e2, 'aborted', 7);
    expect(codeOf(() => c.setEpochState('j1', e2, 'dumping', 8))).toBe(ErrorCode.BAD_REQUEST);
    expect(c.lastCommittedEpoch('j1')!.epoch).toBe(e);
  });

  it('pages the event log in sequence order, per job, gives the newest events, and prunes old ones', () => {
    const c = openCatalog();
    const seqs: number[] = [];
    for (let i = 0; i < 250; i++) {
      seqs.push(c.appendEvent({ timeMs: 10_000 + i, kind: 'tick', jobId: i % 2 === 0 ? 'even' : undefined, message: `event ${i}` }));
    }
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
    const first = c.listEvents({});
    expect(first).toHaveLength(100);
    expect(first[0]).toEqual({ seq: seqs[0], timeMs: 10_000, kind: 'tick', host: null, jobId: 'even', message: 'event 0' });
    // walk every page
    const seen: string[] = [];
    let after = 0;
    for (;;) {
      const page = c.listEvents({ afterSeq: after, limit: 30 });
      if (page.length === 0) break;
      seen.push(...page.map((e) => e.message));
      after = page[page.length - 1]!.seq;
    }
    expect(seen).toEqual(Array.from({ length: 250 }, (_, i) => `event ${i}`));
    expect(c.listEvents({ afterSeq: seqs[199], jobId: 'even' }).map((e) => e.message)).toEqual(
      Array.from({ length: 25 }, (_, i) => `event ${200 + 2 * i}`),
    );
    // the newest ones, in sequence order (what `ferry events` shows without --after)
    expect(c.listEvents({ newest: true, limit: 3 }).map((e) => e.message)).toEqual(['event 247', 'event 248', 'event 249']);
    expect(c.listEvents({ newest: true, limit: 2, jobId: 'even' }).map((e) => e.message)).toEqual(['event 246', 'event 248']);
    expect(c.listEvents({ newest: true, afterSeq: seqs[248] }).map((e) => e.message)).toEqual(['event 249']);
    expect(c.listEvents({ newest: true })).toHaveLength(100);
    expect(c.listEvents({ limit: 1_000_000 })).toHaveLength(250); // capped at 10,000, more than there are
    expect(codeOf(() => c.listEvents({ limit: -1 }))).toBe(ErrorCode.BAD_REQUEST);

    c.pruneEvents(10);
    const left = c.listEvents({});
    expect(left.map((e) => e.message)).toEqual(Array.from({ length: 10 }, (_, i) => `event ${240 + i}`));
    // sequence numbers are not reused after pruning
    c.pruneEvents(0);
    expect(c.listEvents({})).toEqual([]);
    expect(c.appendEvent({ timeMs: 1, kind: 'k', message: 'm' })).toBeGreaterThan(seqs[249]!);
  });
});

describe('catalog identity errors', () => {
  it('gives the right ErrorCode for unknown and duplicate ids', () => {
    const c = openCatalog();
    c.upsertHost(host('h1'));
    c.createJob(job('j1'));
    expect(codeOf(() => c.setHostState('ghost', 'down', 1))).toBe(ErrorCode.UNKNOWN_HOST);
    expect(codeOf(() => c.ranksOnHost('ghost'))).toBe(ErrorCode.UNKNOWN_HOST);
    expect(codeOf(() => c.createJob(job('j1')))).toBe(ErrorCode.BAD_REQUEST);
    expect(codeOf(() => c.setJobState('ghost', 'running'))).toBe(ErrorCode.UNKNOWN_JOB);
    expect(codeOf(() => c.listRanks('ghost'))).toBe(ErrorCode.UNKNOWN_JOB);
    const rank = { jobId: 'j1', rank: 0, host: 'h1', pid: 1, endpoint: '', state: 'running' as const, updatedMs: 1 };
    expect(codeOf(() => c.upsertRank({ ...rank, jobId: 'ghost' }))).toBe(ErrorCode.UNKNOWN_JOB);
    expect(codeOf(() => c.upsertRank({ ...rank, host: 'ghost' }))).toBe(ErrorCode.UNKNOWN_HOST);
    expect(codeOf(() => c.upsertRank({ ...rank, rank: 2 }))).toBe(ErrorCode.UNKNOWN_RANK);
    expect(codeOf(() => c.beginEpoch('ghost', 1))).toBe(ErrorCode.UNKNOWN_JOB);
    expect(codeOf(() => c.setEpochState('ghost', 1, 'x', 1))).toBe(ErrorCode.UNKNOWN_JOB);
    expect(codeOf(() => c.commitEpoch('ghost', 1, 1))).toBe(ErrorCode.UNKNOWN_JOB);
    expect(codeOf(() => c.listEpochs('ghost'))).toBe(ErrorCode.UNKNOWN_JOB);
    expect(codeOf(() => c.lastCommittedEpoch('ghost'))).toBe(ErrorCode.UNKNOWN_JOB);
    expect(codeOf(() => c.epochImages('ghost', 1))).toBe(ErrorCode.UNKNOWN_JOB);
    expect(codeOf(() => c.recordEpochImage({ jobId: 'ghost', epoch: 1, rank: 0, host: 'h1', location: '/x', sizeBytes: 1, sha256: SHA_A })))
      .toBe(ErrorCode.UNKNOWN_JOB);
    // a known job without that epoch
    expect(codeOf(() => c.setEpochState('j1', 7, 'x', 1))).toBe(ErrorCode.BAD_REQUEST);
    expect(codeOf(() => c.epochImages('j1', 7))).toBe(ErrorCode.BAD_REQUEST);
    expect(codeOf(() => c.deleteEpoch('j1', 7))).toBe(ErrorCode.BAD_REQUEST);
    expect(c.lastCommittedEpoch('j1')).toBeUndefined();
    // nothing above left a trace
    expect(c.listRanks('j1')).toEqual([]);
    expect(c.listEpochs('j1')).toEqual([]);
    expect(c.getJob('j1')!.lastEpoch).toBe(0);
  });

  it('retires all but the newest N committed epochs, durably, and tracks which images were removed', () => {
    let c = openCatalog();
    c.createJob(job('j1', { worldSize: 2, keepEpochs: 2 }));
    expect(c.getJob('j1')!.keepEpochs).toBe(2);
    const commit = (t: number) => {
      const e = c.beginEpoch('j1', t);
      for (const rank of [0, 1]) c.recordEpochImage({ jobId: 'j1', epoch: e, rank, host: `h${rank}`, location: `/i/${e}/${rank}`, sizeBytes: 10, sha256: SHA_A });
      c.commitEpoch('j1', e, t + 1);
      return e;
    };
    commit(10);
    const aborted = c.beginEpoch('j1', 20);
    c.setEpochState('j1', aborted, 'aborted', 21);
    commit(30);
    commit(40);
    // epochs 1, 3 and 4 committed, 2 aborted: keeping 2 retires epoch 1 only
    expect(() => c.retireEpochs('j1', 0, 50, 'x')).toThrow(/at least 1/);
    expect(c.retireEpochs('j1', 2, 50, 'deleted: keeps 2')).toEqual([1]);
    expect(c.getEpoch('j1', 1)).toMatchObject({ state: 'deleted', detail: 'deleted: keeps 2' });
    expect(c.getEpoch('j1', 1)!.phases.at(-1)).toEqual({ state: 'deleted', atMs: 50, detail: 'deleted: keeps 2' });
    expect(c.getEpoch('j1', 2)!.state).toBe('aborted');
    expect(c.retireEpochs('j1', 2, 51, 'again')).toEqual([]);
    // a deleted epoch is neither in flight nor restartable, and blocks no new epoch
    expect(c.inFlightEpochs()).toEqual([]);
    expect(c.lastCommittedEpoch('j1')!.epoch).toBe(4);
    expect(() => c.setEpochState('j1', 1, 'dumping', 52)).toThrow(/already deleted/);
    expect(c.imagesToRemove().map((i) => [i.epoch, i.rank, i.host])).toEqual([[1, 0, 'h0'], [1, 1, 'h1']]);
    c.markImagesRemoved('j1', 1, [1], 60);
    c.close();
    c = openCatalog();
    expect(c.imagesToRemove('j1').map((i) => i.rank)).toEqual([0]);
    expect(c.epochImages('j1', 1).map((i) => i.removedMs)).toEqual([null, 60]);
    c.setKeepEpochs('j1', 1);
    expect(c.retireEpochs('j1', 1, 70, 'keeps 1')).toEqual([3]);
    expect(c.imagesToRemove().map((i) => [i.epoch, i.rank])).toEqual([[1, 0], [3, 0], [3, 1]]);
    expect(() => c.setKeepEpochs('nope', 1)).toThrow(/nope/);
  });

  it('keeps each flush open from its epoch or image set until it is closed, across a reopen', () => {
    let c = openCatalog();
    c.createJob(job('j1', { worldSize: 2 }));
    c.createJob(job('j2', { worldSize: 1 }));
    const e1 = c.beginEpoch('j1', 10);
    const m2 = c.reserveImageSet('j1');
    const e3 = c.beginEpoch('j2', 11);
    expect(c.openFlushes()).toEqual([
      { jobId: 'j1', imageSet: e1, kind: 'checkpoint' },
      { jobId: 'j1', imageSet: m2, kind: 'migration' },
      { jobId: 'j2', imageSet: e3, kind: 'checkpoint' },
    ]);
    c.closeFlush('j1', e1);
    c.closeFlush('j1', e1); // twice: nothing more
    c.close();
    c = openCatalog();
    expect(c.openFlushes().map((f) => [f.jobId, f.imageSet])).toEqual([['j1', m2], ['j2', e3]]);
    c.setEpochState('j2', e3, 'aborted', 12);
    c.setJobState('j2', 'stopped', { endedMs: 13 });
    c.deleteJob('j2', 14, 'deleted: by the operator');
    expect(c.purgeJob('j2')).toBe(true);
    expect(c.openFlushes().map((f) => [f.jobId, f.imageSet])).toEqual([['j1', m2]]); // gone with its job
  });

  it('deletes a job: unknown at once, its epochs deleted durably, its rows purged once its images are removed', () => {
    let c = openCatalog();
    c.createJob(job('j1', { worldSize: 2 }));
    c.createJob(job('j2', { worldSize: 1 }));
    c.upsertHost(host('h0'));
    c.upsertRank({ jobId: 'j1', rank: 0, host: 'h0', pid: 1, endpoint: '', state: 'exited', updatedMs: 1 });
    for (const t of [10, 20]) {
      const e = c.beginEpoch('j1', t);
      for (const rank of [0, 1]) c.recordEpochImage({ jobId: 'j1', epoch: e, rank, host: `h${rank}`, location: `/i/${e}/${rank}`, sizeBytes: 10, sha256: SHA_A });
      c.commitEpoch('j1', e, t + 1);
    }
    c.setEpochState('j1', c.beginEpoch('j1', 30), 'aborted', 31);
    c.setJobState('j1', 'stopped', { endedMs: 32 });
    c.recordRestartCopies('j1', 2, new Map([[1, 'h9']])); // a restart's copy its coordinator could not remove
    c.appendEvent({ timeMs: 33, kind: 'job.end', jobId: 'j1', message: 'stopped' });
    c.saveOutputCounts([{ jobId: 'j1', rank: 0, stdout: 5, stderr: 1 }]);
    const inFlight = c.beginEpoch('j2', 5);
    expect(codeOf(() => c.deleteJob('j2', 6, 'x'))).toBe(ErrorCode.BUSY); // an epoch in flight
    c.setEpochState('j2', inFlight, 'aborted', 7);

    expect(c.deleteJob('j1', 40, 'deleted: by the operator')).toEqual([1, 2]);
    expect(c.deleteJob('j1', 41, 'again')).toEqual([]); // a second delete changes nothing
    c.close();
    c = openCatalog();
    expect(c.getJob('j1')).toBeUndefined();
    expect(c.listJobs({ all: true }).map((j) => j.id)).toEqual(['j2']);
    expect(codeOf(() => c.listEpochs('j1'))).toBe(ErrorCode.UNKNOWN_JOB);
    expect(c.deletedJobs()).toEqual(['j1']);
    expect(c.imagesToRemove('j1').map((i) => [i.epoch, i.rank])).toEqual([[1, 0], [1, 1], [2, 0], [2, 1]]);
    // its id stays taken, with the reason, until it is purged
    expect(() => c.createJob(job('j1', { worldSize: 1 }))).toThrow(/was deleted and its images are still being removed/);
    c.markImagesRemoved('j1', 1, [0, 1], 50);
    c.markImagesRemoved('j1', 2, [0], 50);
    expect(c.purgeJob('j1')).toBe(false); // one image left
    expect(c.purgeJob('j2')).toBe(false); // not deleted
    c.markImagesRemoved('j1', 2, [1], 51);
    expect(c.purgeJob('j1')).toBe(false); // the restart's copy on h9 is left
    c.clearRestartCopies('j1', 2, 'h9', [1]);
    expect(c.purgeJob('j1')).toBe(true);
    expect(c.deletedJobs()).toEqual([]);
    expect(c.listEvents({ jobId: 'j1' }).map((e) => e.kind)).toEqual(['job.end']); // its history stays
    c.createJob(job('j1', { worldSize: 1 })); // a new job under the old id starts from nothing
    expect(c.outputCounts().has('j1')).toBe(false); // the old job's output counts went with it
    expect(c.listEpochs('j1')).toEqual([]);
    expect(c.listRanks('j1')).toEqual([]);
    expect(c.beginEpoch('j1', 60)).toBe(1);
  });

  it('retires the epochs a restart from an older one left behind, at the first commit after it', () => {
    let c = openCatalog();
    c.createJob(job('j1', { worldSize: 1 }));
    const commit = (t: number) => {
      const e = c.beginEpoch('j1', t);
      c.recordEpochImage({ jobId: 'j1', epoch: e, rank: 0, host: 'h0', location: `/i/${e}`, sizeBytes: 1, sha256: SHA_A });
      c.commitEpoch('j1', e, t + 1);
      return e;
    };
    for (const t of [10, 20, 30, 40]) commit(t); // epochs 1..4
    c.setEpochState('j1', c.beginEpoch('j1', 50), 'aborted', 51); // 5, aborted
    c.setBranch('j1', 3); // the job runs again from epoch 3; 4 was taken after it
    c.close();
    c = openCatalog();
    expect(c.getJob('j1')).toMatchObject({ branchFrom: 3, branchAt: 5 });
    // Until the restarted run commits, epoch 4 is still there to go back to (by its number), but the
    // run's last epoch, which a restart without one and an automatic restart take, is the one it came from:
    // the epochs kept are the run's own, epoch 4 not counted among them.
    expect(c.retireEpochs('j1', 2, 60, 'keeps 2')).toEqual([1]);
    expect(c.retireEpochs('j1', 1, 65, 'keeps 1')).toEqual([2]);
    expect(c.getEpoch('j1', 4)!.state).toBe('committed');
    expect(c.lastCommittedEpoch('j1')!.epoch).toBe(3);
    expect(commit(70)).toBe(6);
    expect(c.lastCommittedEpoch('j1')!.epoch).toBe(6);
    // Now it goes, whatever the number kept; the ancestor, epoch 3, counts among the 2 kept.
    expect(c.retireEpochs('j1', 2, 80, 'keeps 2')).toEqual([4]);
    expect(c.getEpoch('j1', 4)).toMatchObject({ state: 'deleted', detail: 'deleted: left behind when the job was restarted from epoch 3' });
    expect(c.listEpochs('j1').filter((e) => e.state === 'committed').map((e) => e.epoch)).toEqual([3, 6]);
    expect(() => c.setBranch('nope', 1)).toThrow(/nope/);
  });

  it("keeps a restart's image copies across a restart until they are cleared", () => {
    let c = openCatalog();
    c.createJob(job('j1', { worldSize: 3 }));
    c.recordRestartCopies('j1', 2, new Map([[0, 'h1'], [1, 'h1'], [2, 'h2']]));
    expect(() => c.recordRestartCopies('j1', 2, new Map([[3, 'h1']]))).toThrow(/has ranks 0..2, not 3/);
    c.close();
    c = openCatalog();
    expect(c.restartCopies('h1').map((x) => [x.jobId, x.epoch, x.rank])).toEqual([['j1', 2, 0], ['j1', 2, 1]]);
    c.clearRestartCopies('j1', 2, 'h1', [1]);
    expect(c.restartCopies().map((x) => [x.host, x.rank])).toEqual([['h1', 0], ['h2', 2]]);
  });

  it("keeps a migration's rank moves across a restart until they are cleared", () => {
    let c = openCatalog();
    c.createJob(job('j1', { worldSize: 2 }));
    const move = { jobId: 'j1', rank: 1, imageSet: 3, fromHost: 'h1', toHost: 'h2', sourceJson: '{"host":"h1"}', stopped: false };
    c.recordRankMoves([move]);
    expect(() => c.recordRankMoves([{ ...move, rank: 2 }])).toThrow(/has ranks 0..1, not 2/);
    expect(() => c.recordRankMoves([{ ...move, jobId: 'nope' }])).toThrow(/nope/);
    c.close();
    c = openCatalog();
    expect(c.rankMoves()).toEqual([move]);
    // A later migration of the same rank is a move of its own: the first one is neither replaced nor cleared with it.
    const later = { ...move, imageSet: 5, toHost: 'h3' };
    c.recordRankMoves([later]);
    c.markRankMovesStopped('j1', 5, [1]);
    c.close();
    c = openCatalog();
    expect(c.rankMoves('j1')).toEqual([move, { ...later, stopped: true }]);
    c.clearRankMoves('j1', 5, [1]);
    expect(c.rankMoves()).toEqual([move]);
    c.markRankMovesStopped('j1', 3, [1]);
    expect(c.rankMoves('j1')).toEqual([{ ...move, stopped: true }]);
    c.clearRankMoves('j1', 3, [1]);
    expect(c.rankMoves()).toEqual([]);
  });

  it('hands out epoch ids that only grow, across deletes and restarts', () => {
    let c = openCatalog();
    c.createJob(job('j1', { worldSize: 1 }));
    c.createJob(job('j2', { worldSize: 1 }));
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const e = c.beginEpoch('j1', 10 + i);
      c.setEpochState('j1', e, 'aborted', 20 + i);
      ids.push(e);
    }
    expect(ids).toEqual([1, 2, 3]);
    expect(c.beginEpoch('j2', 1)).toBe(1); // per job
    c.deleteEpoch('j1', 3);
    c.deleteEpoch('j1', 2);
    expect(c.listEpochs('j1').map((e) => e.epoch)).toEqual([1]);
    const e4 = c.beginEpoch('j1', 30);
    expect(e4).toBe(4);
    c.recordEpochImage({ jobId: 'j1', epoch: e4, rank: 0, host: 'h1', location: '/i', sizeBytes: 0, sha256: SHA_A });
    c.deleteEpoch('j1', e4); // its images go with it
    c.close();
    c = openCatalog();
    expect(c.listEpochs('j1').map((e) => e.epoch)).toEqual([1]);
    expect(c.beginEpoch('j1', 40)).toBe(5);
  });

  it('forgets the epochs that ended unkept but the newest N, once nothing of them waits for removal; committed and in-flight ones stay', () => {
    let c = openCatalog();
    c.createJob(job('j1', { worldSize: 1 }));
    c.createJob(job('j2', { worldSize: 1 }));
    const commit = (at: number) => {
      const e = c.beginEpoch('j1', at);
      c.recordEpochImage({ jobId: 'j1', epoch: e, rank: 0, host: 'h1', location: `/i/${e}`, sizeBytes: 1, sha256: SHA_A });
      c.commitEpoch('j1', e, at + 1);
      return e;
    };
    const abort = (at: number) => {
      const e = c.beginEpoch('j1', at);
      c.recordEpochImage({ jobId: 'j1', epoch: e, rank: 0, host: 'h1', location: `/i/${e}`, sizeBytes: 1, sha256: SHA_A });
      c.setEpochState('j1', e, 'aborted', at + 1);
      return e;
    };
    // 1 aborted (partial image never removed: it does not wait), 2..7 committed, 8 aborted, 9 committed.
    abort(10);
    for (let i = 0; i < 6; i++) commit(20 + i * 10);
    abort(90);
    commit(100);
    expect(c.retireEpochs('j1', 2, 110, 'deleted: keep 2')).toEqual([2, 3, 4, 5, 6]);
    const other = c.beginEpoch('j2', 5);
    c.setEpochState('j2', other, 'aborted', 6);
    // Epochs 2..6 wait for their images' removal. Epoch 1 is beyond the newest 2 ended ones (8, 6).
    expect(c.forgetEndedEpochs('j1', 2)).toEqual([1]);
    c.markImagesRemoved('j1', 2, [0], 120);
    c.markImagesRemoved('j1', 3, [0], 120);
    c.markImagesRemoved('j1', 4, [0], 120);
    // A replica of 3 and a restart's copy of 4 not yet removed hold them.
    c.recordReplicasCopying('j1', 3, 'h2', [0], 121);
    c.markReplicasStored('j1', 3, 'h2', [0], 122);
    c.recordRestartCopies('j1', 4, new Map([[0, 'h3']]));
    const inFlight = c.beginEpoch('j1', 130);
    expect(c.forgetEndedEpochs('j1', 2)).toEqual([2]);
    c.removeReplicas('j1', 3, 'h2', [0]);
    c.clearRestartCopies('j1', 4, 'h3', [0]);
    expect(c.forgetEndedEpochs('j1', 2)).toEqual([3, 4]);
    expect(c.listEpochs('j1').map((e) => `${e.epoch}:${e.state}`)).toEqual(['5:deleted', '6:deleted', '7:committed', '8:aborted', '9:committed', `${inFlight}:preparing`]);
    expect(() => c.epochImages('j1', 4)).toThrow(/job 'j1' has no epoch 4/);
    expect(c.imagesToRemove('j1').map((i) => i.epoch)).toEqual([5, 6]);
    // Once removed, 5 goes too (the newest 2 ended are 8 and 6); 0 keeps no ended one; other jobs are left alone.
    c.markImagesRemoved('j1', 5, [0], 140);
    c.markImagesRemoved('j1', 6, [0], 140);
    c.close();
    c = openCatalog();
    expect(c.forgetEndedEpochs('j1', 2)).toEqual([5]);
    expect(c.forgetEndedEpochs('j1', 0)).toEqual([6, 8]);
    expect(c.listEpochs('j1').map((e) => e.epoch)).toEqual([7, 9, inFlight]);
    expect(c.listEpochs('j2').map((e) => e.epoch)).toEqual([other]);
    c.setEpochState('j1', inFlight, 'aborted', 150);
    expect(c.beginEpoch('j1', 160)).toBe(inFlight + 1); // ids are not reused
  });
});

describe('catalog file', () => {
  it('creates the state dir and keeps everything across a restart', () => {
    const stateDir = join(dir, 'nested', 'state');
    const c = openCatalog(stateDir);
    expect(c.schemaVersion).toBe(CATALOG_SCHEMA_VERSION);
    populate(c);
    const before = snapshot(c);
    expect(before.images[0].map((i) => i.appendedFiles)).toEqual([[{ path: '/scratch/j1/app.log', sizeBytes: 1_234 }], []]);
    c.close();
    // a coordinator killed without close() must not lose committed writes: simulate by not
    // closing this second connection before reading through a third
    const c2 = openCatalog(stateDir);
    expect(snapshot(c2)).toEqual(before);
    c2.appendEvent({ timeMs: 9, kind: 'restart', message: 'coordinator restarted' });
    const c3 = openCatalog(stateDir);
    expect(c3.listEvents({}).map((e) => e.kind)).toEqual(['host-up', 'job-created', 'restart']);
    const raw = new Database(join(stateDir, CATALOG_FILE_NAME), { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(raw.pragma('user_version', { simple: true })).toBe(CATALOG_SCHEMA_VERSION);
    } finally {
      raw.close();
    }
  });

  it('migrates an empty database and one at version N-1, keeping its rows', () => {
    expect(CATALOG_MIGRATIONS.map((m) => m.version)).toEqual(
      Array.from({ length: CATALOG_MIGRATIONS.length }, (_, i) => i + 1),
    );
    expect(CATALOG_MIGRATIONS.length).toBeGreaterThanOrEqual(2);
    const file = join(dir, CATALOG_FILE_NAME);
    const raw = new Database(file);
    raw.pragma('foreign_keys = ON');
    expect(migrateCatalog(raw, file, CATALOG_MIGRATIONS.slice(0, -1))).toBe(CATALOG_SCHEMA_VERSION - 1);
    expect(raw.pragma('user_version', { simple: true })).toBe(CATALOG_SCHEMA_VERSION - 1);
    // rows written by the older schema, through plain SQL as an older Ferry would have
    raw.prepare(`INSERT INTO hosts (name, address, cpus, criu_version, criu_check_ok, criu_check_detail, agent_instance,
                                    registered_ms, first_seen_ms, state, state_changed_ms)
                 VALUES ('h1', '198.18.0.1', 2, '4.1.1', 1, 'ok', 'i1', 100, 100, 'up', 100)`).run();
    raw.prepare(`INSERT INTO jobs (id, state, world_size, argv_json, cwd, env_json, created_ms)
                 VALUES ('old', 'running', 1, '["/bin/true"]', '/', '{}', 200)`).run();
    raw.prepare(`INSERT INTO ranks VALUES ('old', 0, 'h1', 7, 'e:1', 'running', NULL, NULL, 300)`).run();
    raw.prepare(`INSERT INTO events (time_ms, kind, message) VALUES (400, 'old-event', 'from version N-1')`).run();
    raw.prepare(`INSERT INTO rank_moves (job_id, rank, image_set, from_host, to_host, source_json, stopped)
                 VALUES ('old', 0, 2, 'h1', 'h2', '{}', 0)`).run();
    raw.close();

    const c = openCatalog();
    expect(c.schemaVersion).toBe(CATALOG_SCHEMA_VERSION);
    expect(c.getHost('h1')).toMatchObject({ address: '198.18.0.1', criuCheckOk: true, state: 'up' });
    expect(c.getJob('old')).toMatchObject({ state: 'running', argv: ['/bin/true'], lastEpoch: 0, stopAfterEpoch: 0 });
    expect(c.listRanks('old')).toEqual([
      { jobId: 'old', rank: 0, host: 'h1', pid: 7, endpoint: 'e:1', state: 'running', exitCode: null, signal: null, updatedMs: 300 },
    ]);
    expect(c.listEvents({}).map((e) => e.kind)).toEqual(['old-event']);
    expect(c.rankMoves('old')).toEqual([{ jobId: 'old', rank: 0, imageSet: 2, fromHost: 'h1', toHost: 'h2', sourceJson: '{}', stopped: false }]);
    // the new version's tables work on the migrated file
    const e = c.beginEpoch('old', 500);
    c.recordEpochImage({ jobId: 'old', epoch: e, rank: 0, host: 'h1', location: '/i', sizeBytes: 3, sha256: SHA_A });
    c.commitEpoch('old', e, 600);
    expect(c.lastCommittedEpoch('old')!.epoch).toBe(1);

    // from empty: every migration runs, and running them again is a no-op
    const emptyDir = join(dir, 'empty');
    const fresh = openCatalog(emptyDir);
    expect(fresh.schemaVersion).toBe(CATALOG_SCHEMA_VERSION);
    fresh.close();
    const again = new Database(join(emptyDir, CATALOG_FILE_NAME));
    try {
      expect(migrateCatalog(again, 'again')).toBe(CATALOG_SCHEMA_VERSION);
    } finally {
      again.close();
    }
  });

  it('rolls back a migration that fails, leaving the previous version', () => {
    const file = join(dir, CATALOG_FILE_NAME);
    const raw = new Database(file);
    try {
      const broken = [
        ...CATALOG_MIGRATIONS.slice(0, 1),
        { version: 2, description: 'fails half way', up: (db: Database.Database) => {
          db.exec('CREATE TABLE half_done (x INTEGER)');
          db.exec('THIS IS NOT SQL');
        } },
      ];
      expect(() => migrateCatalog(raw, file, broken)).toThrow();
      expect(raw.pragma('user_version', { simple: true })).toBe(1);
      expect(raw.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE name = 'half_done'`).get()).toEqual({ n: 0 });
      expect(codeOf(() => migrateCatalog(raw, file, [CATALOG_MIGRATIONS[1]!]))).toBe(ErrorCode.INTERNAL); // out of order
    } finally {
      raw.close();
    }
  });

  it('refuses a database from a newer schema version, naming both versions, and leaves it unchanged', () => {
    const file = join(dir, CATALOG_FILE_NAME);
    const raw = new Database(file);
    raw.exec('CREATE TABLE future (x INTEGER)');
    raw.pragma(`user_version = ${CATALOG_SCHEMA_VERSION + 5}`);
    raw.close();
    const bytes = readFileSync(file);
    let err: unknown;
    try {
      Catalog.open(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).code).toBe(ErrorCode.VERSION_MISMATCH);
    expect((err as FerryError).message).toContain(file);
    expect((err as FerryError).message).toContain(`version ${CATALOG_SCHEMA_VERSION + 5}`);
    expect((err as FerryError).message).toContain(`version ${CATALOG_SCHEMA_VERSION} `);
    expect(readFileSync(file).equals(bytes)).toBe(true);
    expect(existsSync(`${file}-wal`)).toBe(false);
  });

  it('refuses a file that is not a SQLite database and leaves it untouched', () => {
    const file = join(dir, CATALOG_FILE_NAME);
    const garbage = Buffer.from('this is a coordinator log, not a database\n'.repeat(200));
    writeFileSync(file, garbage);
    const mtime = statSync(file).mtimeMs;
    let err: unknown;
    try {
      Catalog.open(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).message).toContain(file);
    expect((err as FerryError).message).toMatch(/not a SQLite database/);
    expect(readFileSync(file).equals(garbage)).toBe(true);
    expect(statSync(file).mtimeMs).toBe(mtime);
    expect(existsSync(`${file}-wal`)).toBe(false);
  });

  it('refuses a SQLite file whose pages are corrupt, and leaves it untouched', () => {
    const c = openCatalog();
    populate(c);
    c.close();
    const file = join(dir, CATALOG_FILE_NAME);
    // fold the WAL into the main file so the damage below is what SQLite reads
    const raw = new Database(file);
    raw.pragma('journal_mode = DELETE');
    raw.close();
    const bytes = readFileSync(file);
    const pageSize = bytes.readUInt16BE(16);
    expect(bytes.length).toBeGreaterThan(3 * pageSize);
    bytes.fill(0xa5, pageSize + 8, 3 * pageSize); // the header stays valid, b-tree pages do not
    writeFileSync(file, bytes);
    let err: unknown;
    try {
      Catalog.open(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).message).toContain(file);
    expect(readFileSync(file).equals(bytes)).toBe(true);
  });
});
