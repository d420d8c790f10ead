// A signal for one copy of a rank (the coordinator killing a stale copy names
// its pid) reaches that copy only: a later copy of the rank running on the
// host now is left alone. A real rank under ferry-init.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RankExitedInit } from '../../src/gen/proto.js';
import { RankSupervisor } from '../../src/agent/rank-supervisor.js';

const FERRY_INIT = resolve('build', 'bin', 'ferry-init');

let dir = '';
let ranks: RankSupervisor;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-test-signal-'));
  ranks = new RankSupervisor({ host: 'h', logsDir: join(dir, 'logs'), stateDir: join(dir, 'state'), initPath: FERRY_INIT, agentSocketName: `ferry-test-signal-${process.pid}` });
});
afterEach(() => {
  ranks.signalJob('j', 'SIGKILL');
  ranks.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('signalling one copy of a rank', () => {
  it('leaves the rank alone when its process is another pid, and ends it when the pid is its own', async () => {
    const exited = new Promise<RankExitedInit>((res) => ranks.on('exit', res));
    const p = ranks.start({ jobId: 'j', rank: 0, worldSize: 1, argv: ['/bin/sleep', '60'], cwd: '/', env: { PATH: '/usr/bin:/bin' } });
    expect(p.pid).toBeGreaterThan(0);

    expect(ranks.signalRanks('j', [0], 'SIGKILL', p.pid! + 1)).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(ranks.has('j', 0)).toBe(true);

    expect(ranks.signalRanks('j', [0], 'SIGKILL', p.pid!)).toBe(1);
    const end = await exited;
    expect(end.pid).toBe(p.pid);
    expect(end.signal).toBe('SIGKILL');
  });
});
