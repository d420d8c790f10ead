// ferry-init as PID 1 of a real PID namespace: exit status, signal forwarding,
// orphan reaping, exec failure. Every test runs it the way the agent does:
// `unshare --pid --fork setsid ferry-init PROGRAM ARGS`.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const BUILD_DIR = join(ROOT, 'build');
const FERRY_INIT = join(BUILD_DIR, 'bin', 'ferry-init');
const WAIT_LIMIT_MS = 20_000;
const POLL_MS = 20;
const TEST_TIMEOUT_MS = 30_000;

interface ProcInfo {
  pid: number;
  ppid: number;
  state: string;
}

function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, ppid: Number(rest[1]), state: rest[0]! };
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` is stopped: state T, or a SIGSTOP pending while it waits in vfork() for a child that was
 * stopped before its exec (dash starts commands with vfork: the parent shows D until the child goes on).
 */
function isStopped(pid: number): boolean {
  const state = readProc(pid)?.state;
  if (state === 'T') return true;
  if (state !== 'D') return false;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const pending = (field: string) => BigInt(`0x${status.match(new RegExp(`^${field}:\\s*([0-9a-f]+)`, 'm'))?.[1] ?? '0'}`);
    return ((pending('SigPnd') | pending('ShdPnd')) & (1n << 18n)) !== 0n; // SIGSTOP is signal 19
  } catch {
    return false;
  }
}

// The PID a process has inside its own PID namespace (last NSpid field).
function nsPid(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('NSpid:'));
  return Number(line?.trim().split(/\s+/).pop());
}

function childrenOf(pid: number): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = readProc(Number(name));
    if (info && info.ppid === pid) out.push(info);
  }
  return out;
}

async function waitFor<T>(what: string, probe: () => T | undefined | false): Promise<T> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

interface Launched {
  child: ChildProcess;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

const launched: Launched[] = [];
let tmp = '';

function launch(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Launched {
  const child = spawn('unshare', ['--pid', '--fork', 'setsid', FERRY_INIT, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.on('close', (code, signal) => res({ code, signal })),
  );
  const l = { child, exit, stderr: () => err };
  launched.push(l);
  return l;
}

// The host PID of ferry-init: the only child of `unshare --fork`.
async function initPid(l: Launched): Promise<number> {
  return waitFor('ferry-init to start', () => childrenOf(l.child.pid!)[0]?.pid);
}

beforeAll(() => {
  execFileSync('make', ['-s', '-C', join(ROOT, 'src', 'native'), `BUILD_DIR=${BUILD_DIR}`], { stdio: 'inherit' });
  tmp = mkdtempSync(join(tmpdir(), 'ferry-init-test-'));
});

afterEach(async () => {
  // Killing PID 1 of a namespace kills everything in it; then unshare exits.
  for (const l of launched.splice(0)) {
    if (l.child.exitCode !== null || l.child.signalCode !== null) continue;
    for (const c of childrenOf(l.child.pid!)) process.kill(c.pid, 'SIGKILL');
    l.child.kill('SIGKILL');
    await l.exit;
  }
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('ferry-init', () => {
  it('exits with the program exit code', async () => {
    expect((await launch(['sh', '-c', 'exit 7']).exit).code).toBe(7);
    expect((await launch(['true']).exit).code).toBe(0);
  });

  it('runs the program as PID 1 child, i.e. itself is PID 1 of the namespace', async () => {
    const out = join(tmp, 'ppid');
    expect((await launch(['sh', '-c', `echo $$ $PPID > ${out}`]).exit).code).toBe(0);
    // The program is PID 2, its parent (ferry-init) PID 1.
    expect(readFileSync(out, 'utf8').trim()).toBe('2 1');
  });

  it('reports a program killed by signal N as 128+N', async () => {
    expect((await launch(['sh', '-c', 'kill -KILL $$']).exit).code).toBe(128 + 9);
    expect((await launch(['sh', '-c', 'kill -SEGV $$']).exit).code).toBe(128 + 11);
  });

  const FORWARDED: [NodeJS.Signals, number][] = [
    ['SIGTERM', 40],
    ['SIGINT', 41],
    ['SIGHUP', 42],
    ['SIGQUIT', 43],
    ['SIGUSR1', 44],
    ['SIGUSR2', 45],
  ];

  it.each(FORWARDED)('forwards %s sent from outside the namespace to the program', async (sig, code) => {
    const ready = join(tmp, `ready-${sig}`);
    const traps = FORWARDED.map(([s, c]) => `trap 'exit ${c}' ${s.slice(3)}`).join('; ');
    const l = launch(['sh', '-c', `${traps}; touch ${ready}; while :; do sleep 0.02; done`]);
    const pid = await initPid(l);
    await waitFor('the program to be ready', () => existsSync(ready));
    process.kill(pid, sig);
    expect((await l.exit).code).toBe(code);
  }, TEST_TIMEOUT_MS);

  it('stops the program at SIGTSTP (as SIGSTOP: it cannot ignore it) and continues it at SIGCONT', async () => {
    const ready = join(tmp, 'ready-tstp');
    const l = launch(['sh', '-c', `trap '' TSTP; touch ${ready}; while :; do sleep 0.02; done`]);
    const pid = await initPid(l);
    await waitFor('the program to be ready', () => existsSync(ready));
    const program = childrenOf(pid)[0]!.pid;
    process.kill(pid, 'SIGTSTP');
    await waitFor('the program to be stopped', () => isStopped(program));
    expect(readProc(pid)?.state).not.toBe('T'); // the init itself goes on (it reaps, it forwards)
    process.kill(pid, 'SIGCONT');
    await waitFor('the program to run again', () => !isStopped(program));
    process.kill(pid, 'SIGTERM');
    expect((await l.exit).code).toBe(128 + 15);
  }, TEST_TIMEOUT_MS);

  it("stops and continues the program's own children too (a wrapper script's MPI program) at SIGTSTP and SIGCONT", async () => {
    const ready = join(tmp, 'ready-tstp-wrapper');
    // the "MPI program" is a child of the program, which waits for it, as a wrapper script does
    const l = launch(['sh', '-c', `sh -c 'trap "" TSTP; touch ${ready}; while :; do sleep 0.02; done' & wait`]);
    const pid = await initPid(l);
    await waitFor('the program to be ready', () => existsSync(ready));
    const wrapper = childrenOf(pid)[0]!.pid;
    const inner = await waitFor('the wrapped program', () => childrenOf(wrapper).find((c) => c.state !== 'Z')?.pid);
    process.kill(pid, 'SIGTSTP');
    await waitFor('the wrapped program to be stopped', () => isStopped(inner));
    await waitFor('the wrapper to be stopped', () => isStopped(wrapper));
    expect(readProc(pid)?.state).not.toBe('T');
    process.kill(pid, 'SIGCONT');
    await waitFor('the wrapped program to run again', () => !isStopped(inner));
    await waitFor('the wrapper to run again', () => !isStopped(wrapper));
    process.kill(pid, 'SIGKILL');
    await l.exit;
  }, TEST_TIMEOUT_MS);

  it.each([['SIGTERM', 'TERM'], ['SIGINT', 'INT']] as const)(
    "passes %s to a wrapper script's MPI program too, and ends once it has: its handler runs",
    async (sig, name) => {
      const ready = join(tmp, `ready-wrapped-${name}`);
      const handled = join(tmp, `handled-${name}`);
      // The wrapper runs its child in the foreground; the child catches the signal, takes its time, writes a
      // file, exits; the wrapper (dash) dies of the signal at once.
      const inner = `trap "sleep 0.3; echo handled > ${handled}; exit 5" ${name}; touch ${ready}; while :; do sleep 0.02; done`;
      const l = launch(['sh', '-c', `sh -c '${inner}'; exit $?`]);
      const pid = await initPid(l);
      await waitFor('the program to be ready', () => existsSync(ready));
      process.kill(pid, sig);
      // the status is the program's (the wrapper's), as before
      expect((await l.exit).code).toBe(128 + (sig === 'SIGTERM' ? 15 : 2));
      expect(readFileSync(handled, 'utf8')).toBe('handled\n');
    },
    TEST_TIMEOUT_MS,
  );

  it('forwards a SIGTERM sent to PID 1 from inside the namespace', async () => {
    const l = launch(['sh', '-c', `trap 'exit 33' TERM; kill -TERM 1; while :; do sleep 0.02; done`]);
    expect((await l.exit).code).toBe(33);
  }, TEST_TIMEOUT_MS);

  it('SIGTERM kills a program without a handler: 128+15', async () => {
    const ready = join(tmp, 'ready-plain');
    const l = launch(['sh', '-c', `touch ${ready}; while :; do sleep 0.02; done`]);
    const pid = await initPid(l);
    await waitFor('the program to be ready', () => existsSync(ready));
    process.kill(pid, 'SIGTERM');
    expect((await l.exit).code).toBe(128 + 15);
  }, TEST_TIMEOUT_MS);

  it('reaps orphans re-parented to it, leaving no zombies', async () => {
    const ready = join(tmp, 'ready-orphans');
    const go = join(tmp, 'go-orphans');
    const ORPHANS = 5;
    // Each `( ... & )` subshell exits at once, so its background loop is
    // orphaned and re-parented to PID 1; the loops exit when `go` appears.
    const orphan = `( while [ ! -e ${go} ]; do sleep 0.02; done & )`;
    const script = `for i in $(seq ${ORPHANS}); do ${orphan}; done; touch ${ready}; while :; do sleep 0.02; done`;
    const l = launch(['sh', '-c', script]);
    const pid = await initPid(l);
    await waitFor('the program to be ready', () => existsSync(ready));
    // The orphans are ferry-init's children now, besides the program itself.
    await waitFor('orphans to be adopted', () => childrenOf(pid).length >= ORPHANS + 1);
    writeFileSync(go, '');
    // Once they exit, every one must be reaped: only the program is left.
    await waitFor('orphans to be reaped', () => {
      const kids = childrenOf(pid);
      return kids.length === 1 && kids[0]!.state !== 'Z' ? kids : undefined;
    });
    const left = childrenOf(pid);
    expect(left.filter((c) => c.state === 'Z')).toEqual([]);
    // What is left is the program itself: PID 2 inside the namespace.
    expect(nsPid(left[0]!.pid)).toBe(2);
    process.kill(pid, 'SIGTERM');
    expect((await l.exit).code).toBe(128 + 15);
  }, TEST_TIMEOUT_MS);

  it('moves itself into FERRY_INIT_DIR, leaving the program where it started and without the variable', async () => {
    const own = join(tmp, 'init-dir');
    const jobDir = join(tmp, 'job-dir');
    mkdirSync(own);
    mkdirSync(jobDir);
    const l = launch(['sleep', '30'], { env: { FERRY_INIT_DIR: own }, cwd: jobDir });
    const init = await initPid(l);
    const program = await waitFor('the program to start', () => childrenOf(init)[0]?.pid);
    await waitFor('ferry-init to enter its directory', () => readlinkSync(`/proc/${init}/cwd`) === own);
    expect(readlinkSync(`/proc/${program}/cwd`)).toBe(jobDir);
    await waitFor('the program to exec', () => readFileSync(`/proc/${program}/cmdline`, 'utf8').startsWith('sleep'));
    expect(readFileSync(`/proc/${program}/environ`, 'utf8')).not.toContain('FERRY_INIT_DIR=');
  });

  it('exits 127 with a message naming the program when exec fails', async () => {
    const l = launch(['/nonexistent/ferry-program', 'arg']);
    expect((await l.exit).code).toBe(127);
    expect(l.stderr()).toContain('/nonexistent/ferry-program');
    expect(l.stderr()).toMatch(/No such file or directory \(errno 2\)/);
  });

  it('exits 2 with a usage line when given no program', async () => {
    const r = spawn(FERRY_INIT, [], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    r.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await new Promise<number | null>((res) => r.on('close', res));
    expect(code).toBe(2);
    expect(err).toMatch(/usage: ferry-init PROGRAM/);
  });
});
