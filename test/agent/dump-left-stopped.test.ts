// A DUMP that leaves its ranks stopped (RoundRequest.leave_stopped: a
// migration's, checkpoint --stop's), with real CRIU and real ranks under
// ferry-init in their own PID namespaces: the rank's tree stops where it was
// dumped, the rank table says so, and a RESUME (the step after the dump
// failed) continues it, also from the next agent after this one was killed.
// A rank left stopped that is dumped again is continued first: CRIU would
// record it stopped, and a restore bring it back stopped. A RESUME waits for
// a dump still running; a mark the table cannot take fails the DUMP; a SIGTERM
// continues the rank to end it.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, RoundStep } from '../../src/gen/proto.js';
import { LocalRankSteps } from '../../src/agent/local-rank-steps.js';
import { initPidOf, type RankSupervisor } from '../../src/agent/rank-supervisor.js';
import { RANK_TABLE_FILE } from '../../src/agent/rank-table.js';
import { childrenOf } from '../../src/agent/runtime-processes.js';
import { processStateCode } from '../../src/common/proc-stat.js';
import { readImages } from '../../src/criu/criu-images.js';
import type { CriuInstall } from '../../src/criu/criu-install.js';
import { ensureCriu } from '../../src/criu/criu-provision.js';
import { roundRequest } from '../helpers/round-request.js';
import { TestSupervisors } from '../helpers/test-supervisors.js';

const SLEEPER = { argv: ['/bin/sh', '-c', 'exec sleep 60'], cwd: '/', env: { PATH: '/usr/bin:/bin' } };

let criu: CriuInstall;
const supervisors = new TestSupervisors('dump-stopped');
const supervisor = () => supervisors.make();
const steps = (s: RankSupervisor) => new LocalRankSteps({ host: 'h', imagesDir: join(supervisors.dir, 'images'), ranks: s, criu });
const stoppedInTable = () =>
  (JSON.parse(readFileSync(join(supervisors.dir, 'state', RANK_TABLE_FILE), 'utf8')) as { ranks: { rank: number; stoppedByDump?: boolean }[] }).ranks.filter((t) => t.stoppedByDump).map((t) => t.rank);

/** The state of rank 0's program (the child of its ferry-init), polled until it is one of `states` (5 s at most). */
async function until(s: RankSupervisor, states: string[]): Promise<string> {
  let state = '';
  for (let i = 0; i < 250; i++) {
    const unshare = s.running().find((p) => p.job_id === 'j' && p.rank === 0)?.pid ?? 0;
    const init = initPidOf(unshare);
    const program = init ? childrenOf(init)[0] : undefined;
    try {
      state = program ? processStateCode(readFileSync(`/proc/${program}/stat`, 'utf8')) : '';
    } catch {
      state = '';
    }
    if (states.includes(state)) return state;
    await new Promise((r) => setTimeout(r, 20));
  }
  return state;
}

const dump = (s: RankSupervisor, epoch: number) => steps(s).run(roundRequest(RoundStep.DUMP, { job_id: 'j', epoch, ranks: [0], dump_ranks: [0], store_separately: true, leave_stopped: true }));
const resume = (s: RankSupervisor) => steps(s).run(roundRequest(RoundStep.RESUME, { job_id: 'j', epoch: 1, ranks: [0] }));

beforeAll(async () => {
  criu = await ensureCriu();
}, 10 * 60_000);

beforeEach(() => supervisors.begin());
afterEach(() => supervisors.end());

describe('a DUMP that leaves its ranks stopped', () => {
  it('stops the rank where it was dumped, and a RESUME continues it', async () => {
    const s = supervisor();
    s.start({ jobId: 'j', rank: 0, worldSize: 1, ...SLEEPER });
    expect(await until(s, ['S'])).toBe('S');
    const out = await dump(s, 1);
    expect([...out.failed.values()]).toEqual([]);
    expect(out.images!.map((i) => i.rank)).toEqual([0]);
    expect(await until(s, ['T'])).toBe('T');
    expect(stoppedInTable()).toEqual([0]);
    // The image has it running: its restored copy runs.
    expect((await readImages(out.images![0]!.location!)).processes.map((p) => p.stopped)).toEqual([false, false]);
    await resume(s);
    expect(await until(s, ['S', 'R'])).not.toBe('T');
    expect(stoppedInTable()).toEqual([]);
  });

  it('is kept in the rank table: a RESUME through the next agent continues the rank', async () => {
    const first = supervisor();
    first.start({ jobId: 'j', rank: 0, worldSize: 1, ...SLEEPER });
    expect(await until(first, ['S'])).toBe('S');
    await dump(first, 1);
    expect(await until(first, ['T'])).toBe('T');
    // The agent is killed; the next one takes the rank back, stopped, and the migration fails: RESUME.
    const next = supervisor();
    expect(next.readopt().alive.map((a) => a.process.rank)).toEqual([0]);
    await resume(next);
    expect(await until(next, ['S', 'R'])).not.toBe('T');
    expect(stoppedInTable()).toEqual([]);
  });

  it('has the mark on disk before CRIU runs: an agent killed during the dump leaves it to the next one', async () => {
    // A CRIU that copies the rank table as it starts, then runs the real one.
    const seen = join(supervisors.dir, 'table-as-criu-started.json');
    const wrapper = join(supervisors.dir, 'criu-wrapper');
    writeFileSync(wrapper, `#!/bin/sh\ncp '${join(supervisors.dir, 'state', RANK_TABLE_FILE)}' '${seen}'\nexec '${criu.command}' "$@"\n`, { mode: 0o755 });
    const s = supervisor();
    s.start({ jobId: 'j', rank: 0, worldSize: 1, ...SLEEPER });
    expect(await until(s, ['S'])).toBe('S');
    const steps = new LocalRankSteps({ host: 'h', imagesDir: join(supervisors.dir, 'images'), ranks: s, criu: { ...criu, command: wrapper } });
    const out = await steps.run(roundRequest(RoundStep.DUMP, { job_id: 'j', epoch: 1, ranks: [0], dump_ranks: [0], store_separately: true, leave_stopped: true }));
    expect([...out.failed.values()]).toEqual([]);
    const table = JSON.parse(readFileSync(seen, 'utf8')) as { ranks: { rank: number; stoppedByDump?: boolean }[] };
    expect(table.ranks.filter((t) => t.stoppedByDump).map((t) => t.rank)).toEqual([0]);
    expect(await until(s, ['T'])).toBe('T');
  });

  it('has a RESUME that comes while the dump still runs wait for it: the rank runs on after', async () => {
    // A CRIU that starts 1 s late: the coordinator gave up on the DUMP meanwhile and resumes the ranks.
    const wrapper = join(supervisors.dir, 'criu-late');
    writeFileSync(wrapper, `#!/bin/sh\nsleep 1\nexec '${criu.command}' "$@"\n`, { mode: 0o755 });
    const s = supervisor();
    s.start({ jobId: 'j', rank: 0, worldSize: 1, ...SLEEPER });
    expect(await until(s, ['S'])).toBe('S');
    const late = new LocalRankSteps({ host: 'h', imagesDir: join(supervisors.dir, 'images'), ranks: s, criu: { ...criu, command: wrapper } });
    const dumping = late.run(roundRequest(RoundStep.DUMP, { job_id: 'j', epoch: 1, ranks: [0], dump_ranks: [0], store_separately: true, leave_stopped: true }));
    await new Promise((r) => setTimeout(r, 200));
    const resumed = late.run(roundRequest(RoundStep.RESUME, { job_id: 'j', epoch: 1, ranks: [0] }));
    let resumedFirst = false;
    void resumed.then(() => (resumedFirst = true));
    const out = await dumping;
    expect([...out.failed.values()]).toEqual([]);
    expect(resumedFirst).toBe(false);
    await resumed;
    expect(await until(s, ['S', 'R'])).not.toBe('T');
    expect(stoppedInTable()).toEqual([]);
  });

  it('dumps no rank when the rank table cannot take the mark (its disk full): the DUMP fails saying so', async () => {
    const state = join(supervisors.dir, 'state');
    mkdirSync(state, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'ferry-test-dump-stopped', state]);
    try {
      const s = supervisor();
      s.start({ jobId: 'j', rank: 0, worldSize: 1, ...SLEEPER });
      expect(await until(s, ['S'])).toBe('S');
      spawnSync('dd', ['if=/dev/zero', `of=${join(state, 'filler')}`, 'bs=4k', 'count=1000'], { stdio: 'ignore' });
      // (the agent answers a step that throws with every rank of it failed, this error)
      await expect(dump(s, 1)).rejects.toMatchObject({ code: ErrorCode.STATE_UNWRITABLE, message: expect.stringMatching(/^host h cannot write its rank table .*ENOSPC.*no rank of job j was dumped/) });
      expect(existsSync(join(supervisors.dir, 'images', 'j', '1', 'rank-0', 'core-1.img'))).toBe(false);
      expect(await until(s, ['S'])).toBe('S');
    } finally {
      // (the ranks are killed and the folder removed after: afterEach)
      execFileSync('umount', ['-l', state]);
    }
  });

  it('ends a rank its dump left stopped at a SIGTERM, not at the SIGKILL after it', async () => {
    const s = supervisor();
    const exits: number[] = [];
    s.on('exit', (e) => exits.push(e.exit_code ?? -1));
    s.start({ jobId: 'j', rank: 0, worldSize: 1, ...SLEEPER });
    expect(await until(s, ['S'])).toBe('S');
    await dump(s, 1);
    expect(await until(s, ['T'])).toBe('T');
    s.signalJob('j', 'SIGTERM');
    for (let i = 0; i < 250 && exits.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(exits).toEqual([128 + 15]); // ferry-init's status for a program ended by SIGTERM (SIGKILL: 137)
  });

  it('dumps again a rank an earlier dump left stopped as running: continued first, stopped again after', async () => {
    const s = supervisor();
    s.start({ jobId: 'j', rank: 0, worldSize: 1, ...SLEEPER });
    expect(await until(s, ['S'])).toBe('S');
    await dump(s, 1);
    expect(await until(s, ['T'])).toBe('T');
    const again = await dump(s, 2);
    expect([...again.failed.values()]).toEqual([]);
    expect((await readImages(again.images![0]!.location!)).processes.map((p) => p.stopped)).toEqual([false, false]);
    expect(await until(s, ['T'])).toBe('T');
    expect(stoppedInTable()).toEqual([0]);
  });
});
