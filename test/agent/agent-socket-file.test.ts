// The file that names a rank's agent (rank-init-dir.ts): written by the agent
// that starts the rank and handed to it in FERRY_AGENT_SOCKET_FILE, and
// written again by an agent that takes the rank back under another socket
// name (the rank's runtime reads it at each connect). Real ranks under
// ferry-init; the agents are two RankSupervisors on one state directory.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AGENT_SOCKET_FILE, RANK_INIT_ROOT_ENV } from '../../src/agent/rank-init-dir.js';
import { RankSupervisor } from '../../src/agent/rank-supervisor.js';

const FERRY_INIT = resolve('build', 'bin', 'ferry-init');

let dir = '';
const savedRoot = process.env[RANK_INIT_ROOT_ENV];
const supervisors: RankSupervisor[] = [];
const supervisor = (socket: string) => {
  const s = new RankSupervisor({ host: 'h', logsDir: join(dir, 'logs'), stateDir: join(dir, 'state'), initPath: FERRY_INIT, agentSocketName: socket });
  supervisors.push(s);
  return s;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-test-socket-file-'));
  process.env[RANK_INIT_ROOT_ENV] = join(dir, 'rank-init');
});
afterEach(async () => {
  const all = supervisors.splice(0);
  for (const s of all) s.signalJob('j', 'SIGKILL');
  for (let i = 0; i < 250 && all.some((s) => s.running().length > 0); i++) await new Promise((r) => setTimeout(r, 20));
  for (const s of all) s.close();
  if (savedRoot === undefined) delete process.env[RANK_INIT_ROOT_ENV];
  else process.env[RANK_INIT_ROOT_ENV] = savedRoot;
  rmSync(dir, { recursive: true, force: true });
});

async function until<T>(what: string, probe: () => T | undefined): Promise<T> {
  for (let i = 0; i < 250; i++) {
    const v = probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe("the file naming a rank's agent", () => {
  it('is handed to the rank by the agent that starts it, and names the agent that takes it back', async () => {
    const first = supervisor('ferry-test-first');
    // The rank prints where the file is and what it says, then waits.
    first.start({ jobId: 'j', rank: 0, worldSize: 1, argv: ['/bin/sh', '-c', 'echo "$FERRY_AGENT_SOCKET_FILE"; cat "$FERRY_AGENT_SOCKET_FILE"; exec sleep 60'], cwd: '/', env: { PATH: '/usr/bin:/bin' } });
    const out = join(dir, 'logs', 'j', 'rank-0.out');
    const [file, named] = await until('the rank to print', () => {
      const lines = (() => {
        try {
          return readFileSync(out, 'utf8').split('\n');
        } catch {
          return [];
        }
      })();
      return lines.length >= 3 ? lines : undefined;
    });
    expect(file.startsWith(join(dir, 'rank-init', 'j.0.'))).toBe(true);
    expect(file.endsWith(`/${AGENT_SOCKET_FILE}`)).toBe(true);
    expect(named).toBe('ferry-test-first');

    // The agent dies; the next one, listening under another name, takes the rank back.
    const next = supervisor('ferry-test-next');
    expect(next.readopt().alive.map((a) => a.process.rank)).toEqual([0]);
    expect(readFileSync(file, 'utf8')).toBe('ferry-test-next\n');
  });
});
