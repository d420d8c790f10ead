// `ferry events --follow` against a real coordinator: the newest events, then
// each new one once, across a restart of the coordinator (said on stderr when it
// stops answering and when it answers again), JSON Lines with --json, and a
// clean end on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FERRY_CLI } from '../helpers/cluster.js';
import { DaemonProcess } from '../helpers/daemon-process.js';
import { freePort } from '../helpers/free-port.js';

interface Follower {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

const followers: Follower[] = [];

function follow(args: string[]): Follower {
  const child = spawn(process.execPath, [FERRY_CLI, 'events', '--follow', '--coordinator', address, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const f = { child, stdout: () => stdout, stderr: () => stderr, exit };
  followers.push(f);
  return f;
}

async function until(what: string, f: Follower, predicate: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms; stdout:\n${f.stdout()}\nstderr:\n${f.stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let dir = '';
let address = '';
let coordinator: DaemonProcess;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-events-follow-'));
  address = `tcp://127.0.0.1:${await freePort()}`;
  coordinator = new DaemonProcess('coordinator', [process.execPath, FERRY_CLI, 'coordinator', '--listen', address, '--state', join(dir, 'state')], join(dir, 'coordinator.log'));
  coordinator.start();
  await coordinator.waitForOutput(/listening on/, 20_000);
});

afterAll(async () => {
  for (const f of followers) f.child.kill('SIGKILL');
  await coordinator?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const starts = (text: string) => text.split('\n').filter((l) => /^\d+ +\S+ \S+ +coordinator\.start /.test(l));

describe('ferry events --follow', () => {
  it('prints the newest events, then each new one once across a coordinator restart, and ends with status 0 on Ctrl-C', async () => {
    const text = follow([]);
    const json = follow(['--json']);
    await until('first coordinator.start', text, () => starts(text.stdout()).length === 1);
    expect(text.stdout().split('\n')[0]).toMatch(/^SEQ +TIME +KIND +HOST +JOB +MESSAGE$/);
    await until('first JSON event', json, () => json.stdout().includes('\n'));

    await coordinator.kill('SIGKILL');
    await until('the note that the coordinator does not answer', text, () => /waiting for it, Ctrl-C ends/.test(text.stderr()));
    coordinator.start();
    await coordinator.waitForOutput(/listening on/, 20_000);
    await until('second coordinator.start', text, () => starts(text.stdout()).length === 2);
    await until('the note that it answers again', text, () => /answers again/.test(text.stderr()));
    await until('second JSON event', json, () => json.stdout().trim().split('\n').length === 2);

    const seqs = starts(text.stdout()).map((l) => Number(l.split(' ')[0]));
    expect(seqs[1]).toBeGreaterThan(seqs[0]!);
    const lines = json.stdout().trim().split('\n').map((l) => JSON.parse(l) as { seq: number; kind: string });
    expect(lines.map((e) => [e.seq, e.kind])).toEqual([
      [seqs[0], 'coordinator.start'],
      [seqs[1], 'coordinator.start'],
    ]);
    // nothing twice, though the follow asked every second all along
    await new Promise((r) => setTimeout(r, 2_500));
    expect(starts(text.stdout())).toHaveLength(2);
    expect(text.stderr().trim().split('\n')).toHaveLength(2);

    text.child.kill('SIGINT');
    json.child.kill('SIGINT');
    expect([await text.exit, await json.exit]).toEqual([0, 0]);
  });

  it('ends quietly with status 141 when its standard output is closed (| head)', async () => {
    const f = follow([]);
    f.child.stdout!.destroy();
    expect(await f.exit).toBe(141);
    expect(f.stderr()).not.toMatch(/EPIPE|\n\s+at /);
  });

  it('with --after SEQ starts after that event; an unknown job is named at once, not followed', async () => {
    const all = follow(['--json']);
    await until('the events so far', all, () => all.stdout().trim().split('\n').length >= 2);
    const [firstSeq] = all.stdout().trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq);
    const after = follow(['--json', '--after', String(firstSeq)]);
    await until('the events after the first', after, () => after.stdout().trim().split('\n').length >= 1 && after.stdout().endsWith('\n'));
    await new Promise((r) => setTimeout(r, 1_500));
    expect(after.stdout().trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual(
      all.stdout().trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq).filter((s) => s > firstSeq!),
    );
    all.child.kill('SIGINT');
    after.child.kill('SIGINT');

    const unknown = follow(['--job', 'no-such-job']);
    expect(await unknown.exit).toBe(1);
    expect(unknown.stderr()).toMatch(/no-such-job/);
  });
});
