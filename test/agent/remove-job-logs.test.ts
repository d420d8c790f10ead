// An agent removes a deleted job's output logs (ferry delete), never while a
// rank of the job still runs on it: a real rank under ferry-init.
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/gen/proto.js';
import { FerryError } from '../../src/common/ferry-error.js';
import { RankSupervisor } from '../../src/agent/rank-supervisor.js';

const FERRY_INIT = resolve('build', 'bin', 'ferry-init');

let dir = '';
let ranks: RankSupervisor;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-test-logs-'));
  ranks = new RankSupervisor({ host: 'h', logsDir: join(dir, 'logs'), stateDir: join(dir, 'state'), initPath: FERRY_INIT, agentSocketName: `ferry-test-logs-${process.pid}` });
});
afterEach(() => {
  ranks.signalJob('j', 'SIGKILL');
  ranks.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('removing a job’s output logs', () => {
  it('refuses while a rank of the job runs, then removes them and says how much', async () => {
    const exited = new Promise<void>((res) => ranks.on('exit', () => res()));
    ranks.start({ jobId: 'j', rank: 0, worldSize: 1, argv: ['/bin/sh', '-c', 'echo twelve bytes; exec sleep 60'], cwd: '/', env: { PATH: '/usr/bin:/bin' } });
    const logs = join(dir, 'logs', 'j');
    const written = () => (statSync(join(logs, 'rank-0.out'), { throwIfNoEntry: false })?.size ?? 0) > 0;
    for (let i = 0; i < 500 && !written(); i++) await new Promise((r) => setTimeout(r, 20));
    let refused: unknown;
    try {
      ranks.removeJobLogs('j');
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(FerryError);
    expect((refused as FerryError).code).toBe(ErrorCode.BUSY);
    expect((refused as FerryError).message).toBe('rank 0 of job j still runs on host h: its logs stay');
    expect(existsSync(logs)).toBe(true);

    ranks.signalJob('j', 'SIGKILL');
    await exited;
    expect(ranks.removeJobLogs('j')).toEqual({ removed: true, bytes: 'twelve bytes\n'.length });
    expect(existsSync(logs)).toBe(false);
    expect(ranks.removeJobLogs('j')).toEqual({ removed: false, bytes: 0 });
    expect(ranks.removeJobLogs('other')).toEqual({ removed: false, bytes: 0 });
  });
});
