// A rank's exit that the agent saw but no coordinator acknowledged yet stays
// in the rank table: an agent killed in between leaves it to the next one,
// which reports it, instead of a rank that vanished (and a job failed of a
// "lost" rank that had exited 0: soak seed 116). Real ranks under ferry-init;
// the agents are two RankSupervisors on one state directory, the first one
// dropped without a word as a SIGKILLed agent would be.
import { mkdirSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RankExitedInit } from '../../src/gen/proto.js';
import { RANK_TABLE_FILE } from '../../src/agent/rank-table.js';
import { TestSupervisors } from '../helpers/test-supervisors.js';

const supervisors = new TestSupervisors('exit');
const supervisor = () => supervisors.make();
const table = () => (JSON.parse(readFileSync(join(supervisors.dir, 'state', RANK_TABLE_FILE), 'utf8')) as { ranks: { rank: number; exit?: RankExitedInit }[] }).ranks;

beforeEach(() => supervisors.begin());
// (their ends are written to the table as they come: the folder goes after the last one)
afterEach(() => supervisors.end());

describe('an exit no coordinator acknowledged yet', () => {
  it('is kept in the rank table, reported by the next agent, and dropped once acknowledged', async () => {
    const first = supervisor();
    const exited = new Promise<RankExitedInit>((res) => first.on('exit', res));
    first.start({ jobId: 'j', rank: 0, worldSize: 2, argv: ['/bin/sh', '-c', 'exit 0'], cwd: '/', env: { PATH: '/usr/bin:/bin' } });
    first.start({ jobId: 'j', rank: 1, worldSize: 2, argv: ['/bin/sh', '-c', 'exec sleep 60'], cwd: '/', env: { PATH: '/usr/bin:/bin' } });
    const exit = await exited;
    expect(exit).toMatchObject({ job_id: 'j', rank: 0, exit_code: 0, signal: '' });
    expect(table().map((t) => [t.rank, t.exit?.exit_code])).toEqual([[1, undefined], [0, 0]]);

    // The agent dies before the coordinator acknowledged the exit; the next one reads the table.
    const next = supervisor();
    const r = next.readopt();
    expect(r.alive.map((a) => a.process.rank)).toEqual([1]);
    expect(r.ended.map((d) => d.exit)).toEqual([exit]);
    expect(table().map((t) => t.rank)).toEqual([1, 0]); // still kept: not acknowledged yet

    next.exitReported(exit);
    expect(table().map((t) => t.rank)).toEqual([1]);
  });

  it("keeps the rank's exit status file until the table has its exit: the next agent reports the real exit, not a lost rank", async () => {
    // An agent killed between the two writes (the table's waits for an fsync) is played by a table write
    // that fails: a directory where its temporary file goes.
    const first = supervisor();
    const exited = new Promise<RankExitedInit>((res) => first.on('exit', res));
    first.start({ jobId: 'j', rank: 0, worldSize: 1, argv: ['/bin/sh', '-c', 'sleep 0.3; exit 3'], cwd: '/', env: { PATH: '/usr/bin:/bin' } });
    const blocker = join(supervisors.dir, 'state', `${RANK_TABLE_FILE}.tmp`);
    mkdirSync(blocker);
    expect((await exited).exit_code).toBe(3);
    expect(table().map((t) => [t.rank, t.exit])).toEqual([[0, undefined]]); // (the table could not take the exit)
    rmdirSync(blocker);
    const r = supervisor().readopt();
    expect(r.ended.map((d) => [d.exit.exit_code, d.exit.signal])).toEqual([[3, '']]);
  });

  it('reports a rank gone with its ferry-init and no exit status while no agent ran (its host restarted) as lost with its host', async () => {
    const first = supervisor();
    const exited = new Promise<RankExitedInit>((res) => first.on('exit', res));
    first.start({ jobId: 'j', rank: 0, worldSize: 1, argv: ['/bin/sh', '-c', 'exec sleep 60'], cwd: '/', env: { PATH: '/usr/bin:/bin' } });
    const path = join(supervisors.dir, 'state', RANK_TABLE_FILE);
    const beforeTheReboot = readFileSync(path, 'utf8');
    first.signalJob('j', 'SIGKILL');
    await exited;
    // The host restarted: the table as it was, the processes gone, no status left.
    writeFileSync(path, beforeTheReboot);
    const statusFile = (JSON.parse(beforeTheReboot) as { ranks: { statusFile: string }[] }).ranks[0]!.statusFile;
    rmSync(statusFile, { force: true });
    const r = supervisor().readopt();
    expect(r.ended.map((d) => [d.exit.signal, d.exit.lost_with_host])).toEqual([['LOST', true]]);
  });

  it('leaves the table once acknowledged, so the next agent has nothing to report of it', async () => {
    const first = supervisor();
    const exited = new Promise<RankExitedInit>((res) => first.on('exit', res));
    first.start({ jobId: 'j', rank: 0, worldSize: 1, argv: ['/bin/sh', '-c', 'exit 3'], cwd: '/', env: { PATH: '/usr/bin:/bin' } });
    const exit = await exited;
    expect(exit.exit_code).toBe(3);
    first.exitReported(exit);
    expect(table()).toEqual([]);
    expect(supervisor().readopt()).toEqual({ alive: [], ended: [], owingOutput: [] });
  });

  it('stays in the table, acknowledged, while its output is owed: the next agent follows the rest, from where it was taken', async () => {
    const first = supervisor();
    const exited = new Promise<RankExitedInit>((res) => first.on('exit', res));
    first.start({ jobId: 'j', rank: 0, worldSize: 1, argv: ['/bin/sh', '-c', 'echo last words; sleep 0.2'], cwd: '/', env: { PATH: '/usr/bin:/bin' } });
    first.recordOutputPosition('j', 0, { sent: { out: 0, err: 0 }, taken: { out: 0, err: 0 }, source: 's1' }); // (as the agent does at its start)
    const exit = await exited;
    first.recordOutputPosition('j', 0, { sent: { out: 11, err: 0 }, taken: { out: 4, err: 0 }, source: 's1' });
    first.exitReported(exit, true);
    first.recordOutputPosition('j', 0, { sent: { out: 11, err: 0 }, taken: { out: 6, err: 0 }, source: 's1' });
    first.close(); // (writes the position it was waiting to write)
    expect(table().map((t) => [t.rank, t.exit?.exit_code, (t as { exitAcked?: boolean }).exitAcked])).toEqual([[0, 0, true]]);

    // The agent dies before the followers took it all; the next one follows the rest, without reporting it as new.
    const next = supervisor();
    const r = next.readopt();
    expect(r.ended).toEqual([]);
    expect(r.owingOutput).toEqual([{ exit, logs: next.logPaths('j', 0), offsets: { out: 11, err: 0 }, output: { source: 's1', taken: { out: 6, err: 0 } } }]);
    expect(table()).toHaveLength(1);
    next.outputTaken(exit);
    expect(table()).toEqual([]);
  });
});
