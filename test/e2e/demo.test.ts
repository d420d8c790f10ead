// The README's first command, `npm run demo`, as its second (`npm test`) finds
// it: the demo (already built by the test setup) runs every step to its OK line
// and leaves no namespace host behind. The steps themselves are tested closer
// to their code (checkpoint-restart.test.ts and the rest of test/e2e); this
// keeps the command a new user runs first from breaking unseen.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/protocol/proto-root.js';

const DEMO = join(packageRoot(), 'dist', 'src', 'demo', 'main.js');
const DEMO_TIMEOUT_MS = 900_000;

let running: ChildProcess | undefined;
// A demo cut short (the test timed out, say) is stopped as Ctrl-C stops it: it removes its hosts on SIGTERM.
afterEach(async () => {
  const child = running;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const closed = new Promise((r) => child.once('close', r));
  child.kill('SIGTERM');
  await Promise.race([closed, new Promise((r) => setTimeout(r, 30_000))]);
});

function runDemo(): Promise<{ code: number | null; out: string; pid: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DEMO], { stdio: ['ignore', 'pipe', 'pipe'] });
    running = child;
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, pid: child.pid ?? 0 }));
  });
}

const namespaces = (): string[] => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.trim());

describe('npm run demo', () => {
  it('runs every step and checks the restarted job against the uninterrupted run', { timeout: DEMO_TIMEOUT_MS }, async () => {
    const { code, out, pid } = await runDemo();
    expect(code, out.slice(-4000)).toBe(0);
    expect(out).toMatch(/^ {4}OK: checkpointed, survived a lost host, stopped, restarted on other hosts, migrated and drained, bit for bit/m);
    const checksums = [...out.matchAll(/^ {4}(uninterrupted|restarted): +(jacobi: .*checksum=0x[0-9a-f]+)$/gm)].map((m) => [m[1], m[2]]);
    expect(checksums.map(([which]) => which)).toEqual(['uninterrupted', 'restarted']);
    expect(checksums[0][1]).toBe(checksums[1][1]);
    expect(out).toMatch(/^==> stop the daemons and remove the hosts \.\.\. done/m);
    // Its hosts are gone: the namespaces named after its pid (src/netns/run-tag.ts).
    expect(namespaces().filter((n) => n.startsWith(`fy${pid.toString(36)}-`))).toEqual([]);
  });
});
